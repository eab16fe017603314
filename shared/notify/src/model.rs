//! What a notification is, as the services build it and the store keeps it.

use std::fmt;

use chrono::{DateTime, Utc};
use mosharekat_calendar::SolarDate;
use mosharekat_persian::digits::to_persian_digits;
use mosharekat_platform::auth::{Principal, Role};

use crate::content::{self, ContentError};

/// A notification's position in its database: from 1, without gaps (written under the
/// write turn). Its resource name is `notifications/{n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sequence(pub i64);

impl Sequence {
    /// Reads `notifications/{n}`.
    pub fn parse_name(name: &str) -> Option<Self> {
        let n = name.strip_prefix("notifications/")?;
        if n.is_empty() || n.len() > 18 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n.parse().ok().filter(|&n| n > 0).map(Self)
    }

    pub fn name(self) -> String {
        format!("notifications/{}", self.0)
    }
}

impl fmt::Display for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// How a notification reaches its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Through the judiciary's SMS gateway.
    Sms,
    /// Through the judiciary's e-notice gateway.
    ENotice,
    /// By this service, over SMTP.
    Email,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Sms, Channel::ENotice, Channel::Email];

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "SMS",
            Self::ENotice => "E_NOTICE",
            Self::Email => "EMAIL",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether a gateway delivers it (and so follows the stream and acknowledges it).
    pub fn is_gateway(self) -> bool {
        self != Self::Email
    }
}

/// Where a notification is in its delivery: `QUEUED → SENT → DELIVERED`, or `FAILED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Queued,
    Sent,
    Delivered,
    Failed,
}

impl State {
    pub const ALL: [State; 4] = [State::Queued, State::Sent, State::Delivered, State::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Sent => "SENT",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Delivered or failed: nothing more happens to it.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Failed)
    }
}

/// An office of the judiciary: the one whose change caused a notification (a failed one is
/// its work) or the one a notification is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Office {
    /// The registry office (licences).
    Registry,
    /// The center of popular institutions (referrals, filings).
    Center,
    /// The working group's secretariat (meetings, minutes, resolutions).
    Secretariat,
    /// A prosecutor's office or court, as the judiciary's tokens name it (its `authority`
    /// claim: a name such as «دادسرای عمومی و انقلاب اردبیل» or an id).
    Authority(String),
}

impl Office {
    /// The stored form: `registry`, `center`, `secretariat`, `authorities/{id}`.
    pub fn as_stored(&self) -> String {
        match self {
            Self::Registry => "registry".into(),
            Self::Center => "center".into(),
            Self::Secretariat => "secretariat".into(),
            Self::Authority(id) => format!("authorities/{id}"),
        }
    }

    /// The office a caller works for, whose work the notices its changes cause are (the
    /// same mapping as the lists of `api.rs`: an officer sees its own office's); none for
    /// a caller that is no office (an institution, a member, an administrator, a service,
    /// a judicial officer whose token names no authority).
    pub fn of(p: &Principal) -> Option<Self> {
        match p.role {
            Role::RegistryOfficer => Some(Self::Registry),
            Role::CenterOfficer => Some(Self::Center),
            Role::Secretary => Some(Self::Secretariat),
            Role::JudicialOfficer => p
                .authority
                .as_deref()
                .filter(|a| valid_authority(a))
                .map(|a| Self::Authority(a.to_owned())),
            Role::Admin | Role::Auditor | Role::Institution | Role::Member | Role::Service => None,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "registry" => Some(Self::Registry),
            "center" => Some(Self::Center),
            "secretariat" => Some(Self::Secretariat),
            _ => s
                .strip_prefix("authorities/")
                .filter(|id| valid_authority(id))
                .map(|id| Self::Authority(id.into())),
        }
    }
}

/// An authority as a token's `authority` claim names it: 1–200 characters, not blank, no
/// control character.
pub(crate) fn valid_authority(a: &str) -> bool {
    !a.trim().is_empty() && a.chars().count() <= 200 && !a.chars().any(char::is_control)
}

/// An id as the suite's resource names carry them: 1–64 of `[A-Za-z0-9_-]`.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Who a notification is for. The name is the recipient's own, the only personal datum an
/// SMS may carry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    Institution { id: String, name: String },
    Member { id: String, name: String },
    Office { office: Office, name: String },
}

impl Recipient {
    /// The stored kind: `INSTITUTION`, `MEMBER`, `OFFICE`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Institution { .. } => "INSTITUTION",
            Self::Member { .. } => "MEMBER",
            Self::Office { .. } => "OFFICE",
        }
    }

    /// The stored id: an institution id, a member id, or the office's stored form.
    pub fn id(&self) -> String {
        match self {
            Self::Institution { id, .. } | Self::Member { id, .. } => id.clone(),
            Self::Office { office, .. } => office.as_stored(),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Institution { name, .. }
            | Self::Member { name, .. }
            | Self::Office { name, .. } => name,
        }
    }

    /// From the stored kind, id and name.
    pub fn from_stored(kind: &str, id: &str, name: &str) -> Option<Self> {
        let name = name.to_string();
        match kind {
            "INSTITUTION" => Some(Self::Institution {
                id: id.into(),
                name,
            }),
            "MEMBER" => Some(Self::Member {
                id: id.into(),
                name,
            }),
            "OFFICE" => Office::parse(id).map(|office| Self::Office { office, name }),
            _ => None,
        }
    }

    fn checked(&self) -> Result<Self, ContentError> {
        let name = content::check_name(self.name())?;
        let bad_id = || ContentError::Name("belongs to a recipient whose id is not valid".into());
        Ok(match self {
            Self::Institution { id, .. } => {
                if !valid_id(id) {
                    return Err(bad_id());
                }
                Self::Institution {
                    id: id.clone(),
                    name,
                }
            }
            Self::Member { id, .. } => {
                if !valid_id(id) {
                    return Err(bad_id());
                }
                Self::Member {
                    id: id.clone(),
                    name,
                }
            }
            Self::Office { office, .. } => {
                if let Office::Authority(id) = office
                    && !valid_authority(id)
                {
                    return Err(bad_id());
                }
                Self::Office {
                    office: office.clone(),
                    name,
                }
            }
        })
    }
}

/// The short reference people quote for a resource: a word and a number, «ارجاع ۱۲۳۴».
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    label: String,
    number: u64,
}

/// The longest reference number: eight digits, well short of the ten that the SMS rules
/// refuse as a possible national code or phone number.
const MAX_REFERENCE: u64 = 99_999_999;

impl Reference {
    /// `label` is a word or two in Persian letters (ارجاع، پرونده، پروانه، جلسه، مصوبه);
    /// `number` at most eight digits.
    pub fn new(label: &str, number: u64) -> Result<Self, ContentError> {
        let label = mosharekat_persian::text::normalize_name(label, 30)
            .map_err(|e| ContentError::Reference(e.to_string()))?;
        if !label
            .chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '\u{200C}')
        {
            return Err(ContentError::Reference("label must be letters only".into()));
        }
        if number == 0 || number > MAX_REFERENCE {
            return Err(ContentError::Reference(
                "number must be from 1 to 99999999".into(),
            ));
        }
        Ok(Self { label, number })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn number(&self) -> u64 {
        self.number
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.label,
            to_persian_digits(&self.number.to_string())
        )
    }
}

/// A date a notice names: a day, or a day and a time (a meeting), shown in Solar Hijri with
/// Persian digits in Tehran time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeDate {
    Day(SolarDate),
    At(DateTime<Utc>),
}

impl NoticeDate {
    /// «۱۴ فروردین ۱۴۰۴», or «۱۴ فروردین ۱۴۰۴ ساعت ۱۰:۳۰».
    pub fn to_persian(self) -> Result<String, ContentError> {
        match self {
            Self::Day(d) => Ok(d.to_persian_long()),
            Self::At(t) => {
                let day =
                    SolarDate::from_instant(t).map_err(|e| ContentError::Date(e.to_string()))?;
                let local = t.with_timezone(&chrono_tz::Asia::Tehran);
                Ok(format!(
                    "{} ساعت {}",
                    day.to_persian_long(),
                    to_persian_digits(&local.format("%H:%M").to_string())
                ))
            }
        }
    }
}

/// What a deadline reminder is about: the words the fixed text names it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// An offered referral's answer time.
    ReferralAnswer,
    /// A referral's due time.
    ReferralDue,
    /// A licence's expiry.
    LicenceExpiry,
    /// A resolution's deadline.
    ResolutionDeadline,
    /// The minutes' comment window.
    MinutesComment,
}

impl Topic {
    pub const ALL: [Topic; 5] = [
        Topic::ReferralAnswer,
        Topic::ReferralDue,
        Topic::LicenceExpiry,
        Topic::ResolutionDeadline,
        Topic::MinutesComment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReferralAnswer => "REFERRAL_ANSWER",
            Self::ReferralDue => "REFERRAL_DUE",
            Self::LicenceExpiry => "LICENCE_EXPIRY",
            Self::ResolutionDeadline => "RESOLUTION_DEADLINE",
            Self::MinutesComment => "MINUTES_COMMENT",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    fn persian(self) -> &'static str {
        match self {
            Self::ReferralAnswer => "مهلت پاسخ به",
            Self::ReferralDue => "مهلت انجام",
            Self::LicenceExpiry => "اعتبار",
            Self::ResolutionDeadline => "مهلت اجرای",
            Self::MinutesComment => "مهلت اظهارنظر درباره",
        }
    }
}

/// The fixed texts a notification is built from. The free fields are only `{name}` (the
/// recipient's own), `{ref}` (the short reference), `{date}`s and a meeting's `{place}`
/// (the venue, checked by [`content::check_place`]); so no text can carry another person's
/// name, a long number or a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    ReferralOffered,
    ReferralWithdrawn,
    ReferralRecalled,
    ReferralExtended,
    /// To the source: the institution asks for the one extension.
    ReferralExtensionRequested,
    /// To the institution: the source refused the extension it asked for.
    ReferralExtensionRefused,
    FilingRegistered,
    FilingRejected,
    FilingClosed,
    LicenceApproved,
    LicenceSuspended,
    LicenceReinstated,
    LicenceRevoked,
    MeetingScheduled,
    MeetingMoved,
    MeetingPostponed,
    MeetingCancelled,
    ResolutionAssigned,
    MinutesOpenForComment,
    MinutesApproved,
    /// Approved minutes awaiting the member's signature.
    MinutesSignatureRequested,
    /// A resolution's extract sent to the member responsible.
    ResolutionExtractSent,
    /// A deadline approaching (7 or 1 days before, or 30 for a licence).
    DeadlineApproaching(Topic),
    /// A deadline passed.
    DeadlinePassed(Topic),
    /// A deadline moved by a holiday or closure published after it was set.
    DeadlineMoved(Topic),
}

impl Template {
    /// The stored form: `REFERRAL_OFFERED`, `DEADLINE_APPROACHING:REFERRAL_DUE`, ….
    pub fn code(self) -> String {
        let simple = match self {
            Self::ReferralOffered => "REFERRAL_OFFERED",
            Self::ReferralWithdrawn => "REFERRAL_WITHDRAWN",
            Self::ReferralRecalled => "REFERRAL_RECALLED",
            Self::ReferralExtended => "REFERRAL_EXTENDED",
            Self::ReferralExtensionRequested => "REFERRAL_EXTENSION_REQUESTED",
            Self::ReferralExtensionRefused => "REFERRAL_EXTENSION_REFUSED",
            Self::FilingRegistered => "FILING_REGISTERED",
            Self::FilingRejected => "FILING_REJECTED",
            Self::FilingClosed => "FILING_CLOSED",
            Self::LicenceApproved => "LICENCE_APPROVED",
            Self::LicenceSuspended => "LICENCE_SUSPENDED",
            Self::LicenceReinstated => "LICENCE_REINSTATED",
            Self::LicenceRevoked => "LICENCE_REVOKED",
            Self::MeetingScheduled => "MEETING_SCHEDULED",
            Self::MeetingMoved => "MEETING_MOVED",
            Self::MeetingPostponed => "MEETING_POSTPONED",
            Self::MeetingCancelled => "MEETING_CANCELLED",
            Self::ResolutionAssigned => "RESOLUTION_ASSIGNED",
            Self::MinutesOpenForComment => "MINUTES_OPEN_FOR_COMMENT",
            Self::MinutesApproved => "MINUTES_APPROVED",
            Self::MinutesSignatureRequested => "MINUTES_SIGNATURE_REQUESTED",
            Self::ResolutionExtractSent => "RESOLUTION_EXTRACT_SENT",
            Self::DeadlineApproaching(t) => return format!("DEADLINE_APPROACHING:{}", t.as_str()),
            Self::DeadlinePassed(t) => return format!("DEADLINE_PASSED:{}", t.as_str()),
            Self::DeadlineMoved(t) => return format!("DEADLINE_MOVED:{}", t.as_str()),
        };
        simple.into()
    }

    /// The text with its placeholders, and the subject of its e-mail.
    fn text(self) -> (&'static str, &'static str) {
        match self {
            Self::ReferralOffered => (
                "{name} گرامی، {ref} به شما پیشنهاد شد؛ مهلت پاسخ تا پایان {date}.",
                "پیشنهاد {ref}",
            ),
            Self::ReferralWithdrawn => ("{name} گرامی، پیشنهاد {ref} پس گرفته شد.", "پس‌گیری {ref}"),
            Self::ReferralRecalled => ("{name} گرامی، {ref} بازخوانده شد.", "بازخوانی {ref}"),
            Self::ReferralExtended => (
                "{name} گرامی، مهلت {ref} تا پایان {date} تمدید شد.",
                "تمدید مهلت {ref}",
            ),
            Self::ReferralExtensionRequested => (
                "{name} گرامی، برای {ref} درخواست تمدید مهلت رسیده است.",
                "درخواست تمدید مهلت {ref}",
            ),
            Self::ReferralExtensionRefused => (
                "{name} گرامی، درخواست تمدید مهلت {ref} پذیرفته نشد.",
                "رد درخواست تمدید مهلت {ref}",
            ),
            Self::FilingRegistered => ("{name} گرامی، {ref} ثبت شد.", "ثبت {ref}"),
            Self::FilingRejected => ("{name} گرامی، {ref} رد شد.", "رد {ref}"),
            Self::FilingClosed => ("{name} گرامی، {ref} مختومه شد.", "مختومه شدن {ref}"),
            Self::LicenceApproved => ("{name} گرامی، {ref} صادر شد.", "صدور {ref}"),
            Self::LicenceSuspended => ("{name} گرامی، {ref} تعلیق شد.", "تعلیق {ref}"),
            Self::LicenceReinstated => ("{name} گرامی، تعلیق {ref} برداشته شد.", "رفع تعلیق {ref}"),
            Self::LicenceRevoked => ("{name} گرامی، {ref} لغو شد.", "لغو {ref}"),
            Self::MeetingScheduled => (
                "{name} گرامی، {ref} در {date}{place} برگزار می‌شود.",
                "برگزاری {ref}",
            ),
            Self::MeetingMoved => (
                "{name} گرامی، {ref} به {date}{place} منتقل شد.",
                "تغییر زمان {ref}",
            ),
            Self::MeetingPostponed => ("{name} گرامی، {ref} به تعویق افتاد.", "تعویق {ref}"),
            Self::MeetingCancelled => ("{name} گرامی، {ref} لغو شد.", "لغو {ref}"),
            Self::ResolutionAssigned => (
                "{name} گرامی، اجرای {ref} به شما سپرده شد؛ مهلت تا پایان {date}.",
                "سپردن {ref}",
            ),
            Self::MinutesOpenForComment => (
                "{name} گرامی، {ref} تا پایان {date} برای اظهارنظر باز است.",
                "اظهارنظر درباره {ref}",
            ),
            Self::MinutesApproved => ("{name} گرامی، {ref} تصویب شد.", "تصویب {ref}"),
            Self::MinutesSignatureRequested => (
                "{name} گرامی، {ref} تأیید شد و منتظر امضای شماست.",
                "امضای {ref}",
            ),
            Self::ResolutionExtractSent => (
                "{name} گرامی، ابلاغیهٔ {ref} برای شما فرستاده شد.",
                "ابلاغیهٔ {ref}",
            ),
            Self::DeadlineApproaching(_) => (
                "{name} گرامی، {topic} {ref} پایان {date} به سر می‌رسد.",
                "یادآوری {topic} {ref}",
            ),
            Self::DeadlinePassed(_) => (
                "{name} گرامی، {topic} {ref} پایان {date} به سر رسید.",
                "پایان {topic} {ref}",
            ),
            Self::DeadlineMoved(_) => (
                "{name} گرامی، {topic} {ref} به پایان {date} منتقل شد.",
                "تغییر {topic} {ref}",
            ),
        }
    }

    fn topic(self) -> Option<Topic> {
        match self {
            Self::DeadlineApproaching(t) | Self::DeadlinePassed(t) | Self::DeadlineMoved(t) => {
                Some(t)
            }
            _ => None,
        }
    }

    /// How many `{date}`s the text takes.
    pub fn dates(self) -> usize {
        self.text().0.matches("{date}").count()
    }

    /// The text and subject for `name`, `reference`, `dates` and `place` (only the texts of
    /// a meeting's time name it, as « در {place}»; none, an empty one or one that
    /// [`content::check_place`] refuses leaves it out).
    pub fn render(
        self,
        name: &str,
        reference: &Reference,
        dates: &[NoticeDate],
        place: Option<&str>,
    ) -> Result<(String, String), ContentError> {
        if dates.len() != self.dates() {
            return Err(ContentError::Dates {
                template: self.text().1,
                expected: self.dates(),
                got: dates.len(),
            });
        }
        let reference = reference.to_string();
        // A place the SMS rules refuse is left out, not the notice: the members are still
        // told when, and the change that notifies them is not refused for its venue.
        let place = match place.map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) if self.text().0.contains("{place}") => match content::check_place(p) {
                Ok(p) => format!(" در {p}"),
                Err(e) => {
                    tracing::warn!(error = %e, "a meeting's place left out of its notice");
                    String::new()
                }
            },
            _ => String::new(),
        };
        let fill = |t: &str| -> Result<String, ContentError> {
            let mut s = t
                .replace("{name}", name)
                .replace("{ref}", &reference)
                .replace("{place}", &place)
                .replace("{topic}", self.topic().map_or("", Topic::persian));
            for d in dates {
                s = s.replacen("{date}", &d.to_persian()?, 1);
            }
            Ok(s)
        };
        let (text, subject) = self.text();
        Ok((fill(text)?, fill(subject)?))
    }
}

/// A notification as a service asks for it, in the transaction of its change.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub recipient: Recipient,
    /// The resource it is about (`referrals/1234`).
    pub resource: String,
    pub reference: Reference,
    /// The office whose change causes it.
    pub office: Office,
    pub template: Template,
    pub dates: Vec<NoticeDate>,
    /// Where a meeting is held, for the texts of its time (`MeetingScheduled`,
    /// `MeetingMoved`); `None` for every other notice.
    pub place: Option<String>,
    pub delivery: Delivery,
}

/// Where a notification goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sms,
    ENotice,
    /// E-mail to `address`, with `more` (details an SMS may not carry, never a national
    /// code) after the template's text.
    Email {
        address: String,
        more: String,
    },
}

impl Delivery {
    pub fn channel(&self) -> Channel {
        match self {
            Self::Sms => Channel::Sms,
            Self::ENotice => Channel::ENotice,
            Self::Email { .. } => Channel::Email,
        }
    }
}

/// A notification whose content passed the rules, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub recipient: Recipient,
    pub channel: Channel,
    pub address: String,
    pub resource: String,
    pub reference: String,
    pub office: Office,
    pub template: String,
    pub subject: String,
    pub text: String,
}

impl NewNotification {
    /// Applies the content rules and renders the text: an error, never a message sent.
    pub fn build(&self) -> Result<Built, ContentError> {
        let recipient = self.recipient.checked()?;
        if self.resource.is_empty()
            || self.resource.len() > 200
            || !self.resource.contains('/')
            || self.resource.chars().any(char::is_whitespace)
        {
            return Err(ContentError::Resource(
                "must be a resource name such as referrals/1234".into(),
            ));
        }
        if let Office::Authority(id) = &self.office
            && !valid_authority(id)
        {
            return Err(ContentError::Office("is not valid".into()));
        }
        let (text, subject) = self.template.render(
            recipient.name(),
            &self.reference,
            &self.dates,
            self.place.as_deref(),
        )?;
        let reference = self.reference.to_string();
        let channel = self.delivery.channel();
        let (address, subject, text) = match &self.delivery {
            Delivery::Sms => {
                content::check_sms(&text, &reference)?;
                (String::new(), String::new(), text)
            }
            Delivery::ENotice => {
                content::check_no_national_code(&text)?;
                (String::new(), String::new(), text)
            }
            Delivery::Email { address, more } => {
                let address = address.trim();
                if !content::is_email_address(address) {
                    return Err(ContentError::Email(
                        "address is not a valid e-mail address".into(),
                    ));
                }
                let more = mosharekat_persian::text::normalize_text(more, 4000)
                    .map_err(|e| ContentError::More(e.to_string()))?;
                let body = if more.is_empty() {
                    text
                } else {
                    format!("{text}\n\n{more}")
                };
                content::check_email(&subject, &body)?;
                (address.to_string(), subject, body)
            }
        };
        Ok(Built {
            recipient,
            channel,
            address,
            resource: self.resource.clone(),
            reference,
            office: self.office.clone(),
            template: self.template.code(),
            subject,
            text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(delivery: Delivery) -> NewNotification {
        NewNotification {
            recipient: Recipient::Institution {
                id: "inst-1".into(),
                name: "موسسه خيريه مهر".into(),
            },
            resource: "referrals/1234".into(),
            reference: Reference::new("ارجاع", 1234).unwrap(),
            office: Office::Center,
            template: Template::ReferralOffered,
            dates: vec![NoticeDate::Day(SolarDate::new(1404, 1, 14).unwrap())],
            place: None,
            delivery,
        }
    }

    fn principal(role: Role, authority: Option<&str>) -> Principal {
        Principal {
            subject: "someone".into(),
            role,
            institution: None,
            member: None,
            service: None,
            authority: authority.map(str::to_owned),
            on_behalf_of: None,
        }
    }

    #[test]
    fn the_office_a_change_is_the_work_of() {
        let of = |role, authority| Office::of(&principal(role, authority));
        assert_eq!(
            of(Role::JudicialOfficer, Some("tehran-1")),
            Some(Office::Authority("tehran-1".into()))
        );
        assert_eq!(
            of(Role::JudicialOfficer, Some("tehran-1")).map(|o| o.as_stored()),
            Some("authorities/tehran-1".to_owned())
        );
        assert_eq!(of(Role::JudicialOfficer, None), None);
        assert_eq!(
            of(Role::JudicialOfficer, Some("دادسرای عمومی و انقلاب اردبیل")),
            Some(Office::Authority("دادسرای عمومی و انقلاب اردبیل".into()))
        );
        assert_eq!(
            Office::parse("authorities/دادسرای عمومی و انقلاب اردبیل"),
            Some(Office::Authority("دادسرای عمومی و انقلاب اردبیل".into()))
        );
        assert_eq!(of(Role::JudicialOfficer, Some(" ")), None);
        assert_eq!(of(Role::JudicialOfficer, Some("a\nb")), None);
        assert_eq!(of(Role::CenterOfficer, None), Some(Office::Center));
        assert_eq!(of(Role::RegistryOfficer, None), Some(Office::Registry));
        assert_eq!(of(Role::Secretary, None), Some(Office::Secretariat));
        for role in [
            Role::Admin,
            Role::Auditor,
            Role::Institution,
            Role::Member,
            Role::Service,
        ] {
            assert_eq!(of(role, Some("tehran-1")), None, "{role:?}");
        }
    }

    #[test]
    fn an_sms_is_rendered_in_persian_with_its_reference_and_solar_date() {
        let b = offered(Delivery::Sms).build().unwrap();
        assert_eq!(
            b.text,
            "موسسه خیریه مهر گرامی، ارجاع ۱۲۳۴ به شما پیشنهاد شد؛ مهلت پاسخ تا پایان ۱۴ فروردین ۱۴۰۴."
        );
        assert_eq!(b.reference, "ارجاع ۱۲۳۴");
        assert_eq!(b.template, "REFERRAL_OFFERED");
        assert_eq!(b.channel, Channel::Sms);
    }

    #[test]
    fn a_meeting_time_is_shown_in_tehran_time() {
        let mut n = offered(Delivery::Sms);
        n.template = Template::MeetingScheduled;
        // 07:00 UTC is 10:30 in Tehran.
        n.dates = vec![NoticeDate::At(
            DateTime::parse_from_rfc3339("2025-04-03T07:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        )];
        let b = n.build().unwrap();
        assert!(b.text.contains("۱۴ فروردین ۱۴۰۴ ساعت ۱۰:۳۰"), "{}", b.text);
    }

    #[test]
    fn a_meeting_notice_names_its_place_unless_the_sms_rules_refuse_it() {
        let mut n = offered(Delivery::Sms);
        n.template = Template::MeetingMoved;
        n.reference = Reference::new("جلسه", 3).unwrap();
        n.dates = vec![NoticeDate::At(
            DateTime::parse_from_rfc3339("2025-04-03T07:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        )];
        n.place = Some("دادگستری استان اردبیل، سالن ۲".into());
        assert_eq!(
            n.build().unwrap().text,
            "موسسه خیریه مهر گرامی، جلسه ۳ به ۱۴ فروردین ۱۴۰۴ ساعت ۱۰:۳۰ در دادگستری استان اردبیل، سالن ۲ منتقل شد."
        );
        for refused in [
            "سالن adliran.ir",
            "تلفن ۰۹۱۲۳۴۵۶۷۸۹",
            "دفتر 45678",
            "a@b.ir",
            "سالن\nدوم",
        ] {
            n.place = Some(refused.into());
            let text = n.build().unwrap().text;
            assert!(
                text.ends_with("ساعت ۱۰:۳۰ منتقل شد."),
                "{refused:?} gave {text}"
            );
            assert!(content::check_place(refused).is_err(), "{refused:?}");
        }
        // Only the texts of a meeting's time take it.
        let mut other = offered(Delivery::Sms);
        other.place = Some("دادگستری".into());
        assert!(!other.build().unwrap().text.contains("دادگستری"));
    }

    #[test]
    fn a_name_with_a_number_or_link_cannot_enter_an_sms() {
        for name in ["رضا 0076229645", "رضا adliran.ir", "رضا ۰۹۱۲۳۴۵۶۷۸۹"] {
            let mut n = offered(Delivery::Sms);
            n.recipient = Recipient::Member {
                id: "m1".into(),
                name: name.into(),
            };
            let e = n.build().unwrap_err();
            assert_eq!(e.field(), "notification.recipient_name", "{name}");
        }
    }

    #[test]
    fn the_wrong_number_of_dates_is_refused() {
        let mut n = offered(Delivery::Sms);
        n.dates.clear();
        assert!(matches!(n.build(), Err(ContentError::Dates { .. })));
    }

    #[test]
    fn references_are_short_and_letters_and_a_number() {
        assert_eq!(
            Reference::new("پروانه", 77).unwrap().to_string(),
            "پروانه ۷۷"
        );
        assert!(Reference::new("ارجاع", 100_000_000).is_err());
        assert!(Reference::new("ارجاع", 0).is_err());
        assert!(Reference::new("x.ir", 1).is_err());
        assert!(Reference::new("ارجاع۱", 1).is_err());
        assert!(Reference::new("", 1).is_err());
    }

    #[test]
    fn an_email_carries_more_but_no_national_code_and_needs_an_address() {
        let b = offered(Delivery::Email {
            address: "info@mehr.example".into(),
            more: "شرح: https://adliran.ir/r/1234".into(),
        })
        .build()
        .unwrap();
        assert_eq!(b.subject, "پیشنهاد ارجاع ۱۲۳۴");
        assert!(b.text.ends_with("https://adliran.ir/r/1234"));
        let e = offered(Delivery::Email {
            address: "info@mehr.example".into(),
            more: "کد ملی مدیر ۰۰۷۶۲۲۹۶۴۵".into(),
        })
        .build()
        .unwrap_err();
        assert_eq!(e, ContentError::NationalCode);
        let e = offered(Delivery::Email {
            address: "not an address".into(),
            more: String::new(),
        })
        .build()
        .unwrap_err();
        assert_eq!(e.field(), "notification.address");
    }

    #[test]
    fn every_template_renders_to_an_sms_the_rules_allow() {
        let mut all: Vec<Template> = vec![
            Template::ReferralOffered,
            Template::ReferralWithdrawn,
            Template::ReferralRecalled,
            Template::ReferralExtended,
            Template::ReferralExtensionRequested,
            Template::ReferralExtensionRefused,
            Template::FilingRegistered,
            Template::FilingRejected,
            Template::FilingClosed,
            Template::LicenceApproved,
            Template::LicenceSuspended,
            Template::LicenceReinstated,
            Template::LicenceRevoked,
            Template::MeetingScheduled,
            Template::MeetingMoved,
            Template::MeetingPostponed,
            Template::MeetingCancelled,
            Template::ResolutionAssigned,
            Template::MinutesOpenForComment,
            Template::MinutesApproved,
            Template::MinutesSignatureRequested,
            Template::ResolutionExtractSent,
        ];
        for t in Topic::ALL {
            all.extend([
                Template::DeadlineApproaching(t),
                Template::DeadlinePassed(t),
                Template::DeadlineMoved(t),
            ]);
        }
        for t in all {
            let mut n = offered(Delivery::Sms);
            n.template = t;
            n.dates = vec![NoticeDate::Day(SolarDate::new(1405, 12, 29).unwrap()); t.dates()];
            let b = n.build().unwrap_or_else(|e| panic!("{t:?}: {e}"));
            assert!(!b.text.contains('{'), "{t:?}: {}", b.text);
        }
    }

    #[test]
    fn names_of_notifications() {
        assert_eq!(Sequence::parse_name("notifications/12"), Some(Sequence(12)));
        for bad in [
            "notifications/0",
            "notifications/",
            "notifications/-1",
            "x/1",
            "notifications/1a",
        ] {
            assert_eq!(Sequence::parse_name(bad), None, "{bad}");
        }
    }
}
