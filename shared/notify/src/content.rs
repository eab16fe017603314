//! The content rules, checked when a notification is built (a breach is an error, never a
//! message sent):
//!
//! - an **SMS** carries no link (official SMS never do: citizens are told that any SMS
//!   with a link is a fraud), no personal data beyond the recipient's own name (no run of
//!   ten or more digits — a national code, a legal-entity id, a phone number — in ASCII,
//!   Persian or Arabic-Indic digits, grouped or not), and names the resource by its short
//!   reference. It is built only from a [`crate::Template`] whose free fields are the
//!   recipient's own name, the reference and dates, so no other person's name can enter;
//!   the rules below check the result again.
//! - an **e-mail** (and an e-notice) may carry more, but never a national code: every
//!   run of exactly ten digits whose check digit is valid is refused.

use mosharekat_persian::digits::ascii_digit;
use mosharekat_persian::ids::NationalCode;

/// Why a notification's content was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("an SMS may not carry a link ({found:?})")]
    Link { found: String },
    #[error(
        "an SMS may not carry a number of ten or more digits (a national code, an id or a phone number)"
    )]
    LongNumber,
    #[error("may not carry a national code")]
    NationalCode,
    #[error("an SMS must name the resource by its short reference")]
    NoReference,
    #[error("the recipient's name {0}")]
    Name(String),
    #[error("the reference {0}")]
    Reference(String),
    #[error("the template {template} takes {expected} dates, got {got}")]
    Dates {
        template: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("the e-mail {0}")]
    Email(String),
    #[error("the resource {0}")]
    Resource(String),
    #[error("the office {0}")]
    Office(String),
    #[error("a date {0}")]
    Date(String),
    #[error("the meeting's place {0}")]
    Place(String),
    #[error("the e-mail's further text {0}")]
    More(String),
}

impl ContentError {
    /// The field of the notification the error is about, as an `INVALID_ARGUMENT` names it.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Link { .. } | Self::LongNumber | Self::NationalCode | Self::NoReference => {
                "notification.text"
            }
            Self::Name(_) => "notification.recipient_name",
            Self::Reference(_) => "notification.reference",
            Self::Dates { .. } | Self::Date(_) => "notification.dates",
            Self::Email(_) => "notification.address",
            Self::Resource(_) => "notification.resource",
            Self::Office(_) => "notification.office",
            Self::More(_) => "notification.more",
            Self::Place(_) => "notification.place",
        }
    }
}

impl From<ContentError> for mosharekat_platform::error::ApiError {
    fn from(e: ContentError) -> Self {
        Self::invalid(e.field(), e.to_string())
    }
}

/// Dots people and spammers use in place of `.` (Arabic decimal and full stop, full-width,
/// ideographic, one-dot leader).
fn is_dot(c: char) -> bool {
    matches!(
        c,
        '.' | '\u{066B}' | '\u{06D4}' | '\u{FF0E}' | '\u{3002}' | '\u{2024}'
    )
}

/// The text folded for the link check: lowercase, every digit ASCII, every dot `.`.
fn fold(text: &str) -> String {
    text.chars()
        .map(|c| {
            if let Some(d) = ascii_digit(c) {
                d
            } else if is_dot(c) {
                '.'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// The first thing in `text` that looks like a link: a scheme, `www`, a domain name
/// (`name.tld`, Latin letters), or an IPv4 address (in any digits).
pub fn find_link(text: &str) -> Option<String> {
    let t = fold(text);
    for marker in ["http", "www", "://", "ftp:", "mailto:", "t.me", "@"] {
        if let Some(i) = t.find(marker) {
            return Some(snippet(&t, i));
        }
    }
    // A dot with a Latin letter or digit before it and two Latin letters after it
    // (`bit.ly`, `example.com`), or digits on both sides three times (an IPv4 address).
    let cs: Vec<char> = t.chars().collect();
    for (i, &c) in cs.iter().enumerate() {
        if c != '.' || i == 0 {
            continue;
        }
        let before = cs[i - 1];
        let after: Vec<char> = cs[i + 1..].iter().take(2).copied().collect();
        let latin = |c: &char| c.is_ascii_lowercase();
        if (before.is_ascii_alphanumeric() || before == '-')
            && after.len() == 2
            && after.iter().all(latin)
        {
            return Some(snippet(&t, t.char_indices().nth(i).map_or(0, |(b, _)| b)));
        }
    }
    ipv4_like(&cs).map(|i| snippet(&t, t.char_indices().nth(i).map_or(0, |(b, _)| b)))
}

/// Where a run `d+.d+.d+.d+` starts, if any.
fn ipv4_like(cs: &[char]) -> Option<usize> {
    let mut i = 0;
    while i < cs.len() {
        if cs[i].is_ascii_digit() && (i == 0 || !cs[i - 1].is_ascii_digit()) {
            let start = i;
            let mut groups = 0;
            let mut j = i;
            loop {
                let g = j;
                while j < cs.len() && cs[j].is_ascii_digit() {
                    j += 1;
                }
                if j == g {
                    break;
                }
                groups += 1;
                if groups == 4 {
                    return Some(start);
                }
                if j < cs.len() && cs[j] == '.' {
                    j += 1;
                } else {
                    break;
                }
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    None
}

fn snippet(t: &str, byte: usize) -> String {
    t[byte..].chars().take(20).collect()
}

/// The runs of digits in `text`, as ASCII: each maximal run of digits, and each run of
/// digit groups joined by one space, dash or thin space (`0912 345 6789`), which people
/// type inside a number.
pub fn digit_runs(text: &str) -> Vec<String> {
    let cs: Vec<char> = text.chars().collect();
    let mut runs = Vec::new();
    let mut strict = String::new();
    let mut grouped = String::new();
    let mut grouped_parts = 0usize;
    let joins = |c: char| matches!(c, ' ' | '-' | '\u{2009}' | '\u{202F}' | '\u{00A0}');
    let mut i = 0;
    while i <= cs.len() {
        let d = cs.get(i).and_then(|&c| ascii_digit(c));
        match d {
            Some(d) => {
                strict.push(d);
                grouped.push(d);
            }
            None => {
                if !strict.is_empty() {
                    runs.push(std::mem::take(&mut strict));
                    grouped_parts += 1;
                }
                let continues = cs.get(i).is_some_and(|&c| joins(c))
                    && cs.get(i + 1).and_then(|&c| ascii_digit(c)).is_some()
                    && !grouped.is_empty();
                if !continues {
                    if grouped_parts > 1 {
                        runs.push(grouped.clone());
                    }
                    grouped.clear();
                    grouped_parts = 0;
                }
            }
        }
        i += 1;
    }
    runs
}

/// Refuses a national code anywhere in `text` (every run of exactly ten digits whose check
/// digit is valid, in any digits, grouped or not).
pub fn check_no_national_code(text: &str) -> Result<(), ContentError> {
    if digit_runs(text)
        .iter()
        .any(|r| r.len() == 10 && NationalCode::parse(r).is_ok())
    {
        return Err(ContentError::NationalCode);
    }
    Ok(())
}

/// The rules of an SMS text that must name the resource by `reference`.
pub fn check_sms(text: &str, reference: &str) -> Result<(), ContentError> {
    if let Some(found) = find_link(text) {
        return Err(ContentError::Link { found });
    }
    if digit_runs(text).iter().any(|r| r.len() >= 10) {
        return Err(ContentError::LongNumber);
    }
    if reference.is_empty() || !text.contains(reference) {
        return Err(ContentError::NoReference);
    }
    Ok(())
}

/// The rules of an e-mail's subject and body.
pub fn check_email(subject: &str, body: &str) -> Result<(), ContentError> {
    check_no_national_code(subject)?;
    check_no_national_code(body)
}

/// Whether `address` is an e-mail address the e-mail channel accepts.
pub fn is_email_address(address: &str) -> bool {
    address.len() <= 254 && address.parse::<lettre::Address>().is_ok()
}

/// A recipient's own name, the one free field of an SMS besides the reference and dates:
/// normalised (NFC, Persian letters, no control or bidirectional characters), and with no
/// digit, link or address in it (it would carry what the rules keep out).
pub fn check_name(raw: &str) -> Result<String, ContentError> {
    let name = mosharekat_persian::text::normalize_name(raw, 120)
        .map_err(|e| ContentError::Name(e.to_string()))?;
    if name.chars().any(|c| ascii_digit(c).is_some()) {
        return Err(ContentError::Name("may not contain digits".into()));
    }
    if find_link(&name).is_some() || name.contains(['/', '\\', ':']) {
        return Err(ContentError::Name(
            "may not contain a link or an address".into(),
        ));
    }
    Ok(name)
}

/// A meeting's place as an SMS names it: the venue the secretariat recorded, normalised,
/// short, with no link, address sign or number long enough to be a phone number. That it
/// names no person is the secretariat's to keep: a venue is an office, not a home.
pub fn check_place(raw: &str) -> Result<String, ContentError> {
    let place = mosharekat_persian::text::normalize_text(raw, 120)
        .map_err(|e| ContentError::Place(e.to_string()))?;
    if place.contains('\n') {
        return Err(ContentError::Place("must be one line".into()));
    }
    if find_link(&place).is_some() || place.contains(['@', '/', '\\']) {
        return Err(ContentError::Place(
            "may not contain a link or an address".into(),
        ));
    }
    if digit_runs(&place).iter().any(|r| r.len() >= 5) {
        return Err(ContentError::Place(
            "may not contain a number of five or more digits".into(),
        ));
    }
    Ok(place)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REF: &str = "ارجاع ۱۲۳۴";

    #[test]
    fn an_sms_without_link_or_number_naming_its_reference_is_allowed() {
        for ok in [
            "رضا احمدی گرامی، ارجاع ۱۲۳۴ به شما پیشنهاد شد؛ مهلت پاسخ تا پایان ۱۴ فروردین ۱۴۰۴.",
            "ارجاع ۱۲۳۴: مهلت تا ۱۴۰۴/۰۱/۱۴ ساعت ۱۰:۳۰",
            "ارجاع ۱۲۳۴ تمدید شد. با سپاس.",
        ] {
            assert_eq!(check_sms(ok, REF), Ok(()), "{ok}");
        }
    }

    #[test]
    fn an_sms_with_a_link_is_refused_in_every_form() {
        for bad in [
            "ارجاع ۱۲۳۴ را در https://adliran.ir ببینید",
            "ارجاع ۱۲۳۴ را در HTTP://x ببینید",
            "ارجاع ۱۲۳۴ www.example",
            "ارجاع ۱۲۳۴ را در adliran.ir ببینید",
            "ارجاع ۱۲۳۴ bit.ly/abc",
            "ارجاع ۱۲۳۴ ADLIRAN.IR",
            "ارجاع ۱۲۳۴ adliran\u{06D4}ir",
            "ارجاع ۱۲۳۴ adliran\u{FF0E}ir",
            "ارجاع ۱۲۳۴ ۱۹۲.۱۶۸.۱.۱",
            "ارجاع ۱۲۳۴ ١٩٢.١٦٨.١.١",
            "ارجاع ۱۲۳۴ 10.0.0.1:8080",
            "ارجاع ۱۲۳۴ t.me/fraud",
            "ارجاع ۱۲۳۴ a@b",
        ] {
            assert!(
                matches!(check_sms(bad, REF), Err(ContentError::Link { .. })),
                "{bad}: {:?}",
                check_sms(bad, REF)
            );
        }
    }

    #[test]
    fn an_sms_with_a_national_code_id_or_phone_number_is_refused() {
        for bad in [
            "ارجاع ۱۲۳۴ کد ملی 0076229645",
            "ارجاع ۱۲۳۴ کد ملی ۰۰۷۶۲۲۹۶۴۵",
            "ارجاع ۱۲۳۴ کد ملی ٠٠٧٦٢٢٩٦٤٥",
            "ارجاع ۱۲۳۴ شناسه ۱۰۳۸۰۲۸۴۷۹۰",
            "ارجاع ۱۲۳۴ تماس ۰۹۱۲۳۴۵۶۷۸۹",
            "ارجاع ۱۲۳۴ تماس 0912 345 6789",
            "ارجاع ۱۲۳۴ تماس ۰۲۱-۸۸۷۷۶۶۵۵",
            "ارجاع ۱۲۳۴ تماس +98 912 345 6789",
            // Not a valid code, but still ten digits: an SMS carries no such number at all.
            "ارجاع ۱۲۳۴ ۱۲۳۴۵۶۷۸۹۰",
        ] {
            assert_eq!(check_sms(bad, REF), Err(ContentError::LongNumber), "{bad}");
        }
    }

    #[test]
    fn an_sms_must_name_its_reference() {
        assert_eq!(
            check_sms("پرونده شما تمدید شد", REF),
            Err(ContentError::NoReference)
        );
        assert_eq!(check_sms("ارجاع ۱۲۳۴", ""), Err(ContentError::NoReference));
    }

    #[test]
    fn an_email_may_carry_more_but_never_a_national_code() {
        assert_eq!(
            check_email(
                "ارجاع ۱۲۳۴",
                "شرح کامل در https://adliran.ir؛ شناسه ملی موسسه ۱۰۳۸۰۲۸۴۷۹۰؛ تلفن ۰۲۱۸۸۷۷۶۶۵۵",
            ),
            Ok(()),
            "links, an 11-digit legal-entity id and a phone number are allowed in e-mail"
        );
        // A ten-digit number whose check digit is wrong is not a national code.
        assert_eq!(check_email("s", "شماره ۰۰۷۶۲۲۹۶۴۶"), Ok(()));
        for bad in [
            "کد ملی 0076229645",
            "کد ملی ۱۵۸۳۲۵۰۶۸۹",
            "کد ملی ٠٠٧٦٢٢٩٦٤٥",
            "کد ملی 007-622964-5",
            "کد ملی ۰۰۷ ۶۲۲ ۹۶۴۵",
            "(0076229645)",
        ] {
            assert_eq!(
                check_email("s", bad),
                Err(ContentError::NationalCode),
                "{bad}"
            );
            assert_eq!(
                check_email(bad, "b"),
                Err(ContentError::NationalCode),
                "subject {bad}"
            );
        }
    }

    #[test]
    fn digit_runs_are_read_in_every_digit_form_and_grouping() {
        assert_eq!(digit_runs("a ۱۲ b 34-56 c"), ["12", "34", "56", "3456"]);
        assert_eq!(digit_runs("۱۴۰۴/۰۱/۱۴"), ["1404", "01", "14"]);
        assert!(digit_runs("بدون عدد").is_empty());
    }

    #[test]
    fn a_name_carries_nothing_but_a_name() {
        assert_eq!(check_name("  رضا   احمدي ").unwrap(), "رضا احمدی");
        for bad in [
            "",
            "رضا ۱۲۳",
            "Reza 0076229645",
            "رضا adliran.ir",
            "a@b",
            "رضا\u{202E}",
            "x/y",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
