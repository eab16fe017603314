//! What the referral service tells people (`domain.md`, "Notifications"), written in the
//! transaction of the change that causes it (step 6 of the change path: `Saved::txn()`),
//! so a rolled-back change notifies nobody: a referral offered, withdrawn, recalled,
//! extended or moved by a late holiday (to the institution); a filing registered, rejected
//! or closed (to the filing institution); and the reminders of an offer's answer time and
//! a referral's due time (7 days and 1 day before, and passed), scheduled when the
//! deadline is set, moved when it moves, cancelled when the case no longer runs.
//!
//! A notice addresses the institution by the display name the registry gave when the
//! case came to it (asked outside the write transaction and kept on the document, see
//! `model::Contact`), on the judiciary's SMS and e-notice gateways and, where it gave an
//! address, by e-mail. A document from before that was kept, or a name the SMS rules do
//! not let through, falls back to «همکار» (colleague).

use chrono::{DateTime, Utc};
use mosharekat_calendar::SolarDate;
use mosharekat_notify::reminders::{self, Addressee, Offset, ReminderPlan, STANDARD_OFFSETS};
use mosharekat_notify::{
    Delivery, NewNotification, NoticeDate, Office, Recipient, Reference, Template, Topic, content,
    enqueue_all,
};
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::WriteTxn;
use mosharekat_platform::error::ApiError;

use crate::model::{Contact, Filing, Referral};
use crate::names::InstitutionId;

/// How this deployment notifies: the channels each notice goes out on; none turns
/// notifications off (a deployment without gateways yet, or the benchmark's baseline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    deliveries: Vec<Delivery>,
}

impl Default for Notify {
    fn default() -> Self {
        Self {
            deliveries: vec![Delivery::Sms, Delivery::ENotice],
        }
    }
}

impl Notify {
    /// `sms,e-notice` (the default), one of them, or `none`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut deliveries = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.to_lowercase().as_str() {
                "none" | "off" => return Ok(Self::off()),
                "sms" => deliveries.push(Delivery::Sms),
                "e-notice" | "enotice" | "e_notice" => deliveries.push(Delivery::ENotice),
                other => return Err(format!("{other:?} is not sms, e-notice or none")),
            }
        }
        deliveries.dedup();
        Ok(Self { deliveries })
    }

    pub fn off() -> Self {
        Self { deliveries: vec![] }
    }

    pub fn is_off(&self) -> bool {
        self.deliveries.is_empty()
    }
}

/// The name a notice addresses an institution by when its own cannot be used.
pub const ADDRESSEE: &str = "همکار";

/// Who a notice about a case goes to, and its e-mail address if it has a usable one.
struct To {
    recipient: Recipient,
    email: Option<String>,
}

/// The institution `id`, by its contact when the contact is of it.
fn addressee(id: &InstitutionId, contact: Option<&Contact>) -> To {
    let contact = contact.filter(|c| c.institution == *id);
    // Only the recipient's own name goes into an SMS, and only one the rules let through
    // (a name with digits would be refused there, and so would the whole change).
    let name = contact
        .and_then(|c| content::check_name(&c.display_name).ok())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| ADDRESSEE.to_owned());
    let email = contact
        .map(|c| c.email.trim())
        .filter(|e| content::is_email_address(e))
        .map(str::to_owned);
    To {
        recipient: Recipient::Institution {
            id: id.as_str().to_owned(),
            name,
        },
        email,
    }
}

/// The office whose work a notice caused by `ctx` is (its failure shows in that office's
/// list): the judicial officer's authority for a change one made, otherwise the centre of
/// popular institutions, which keeps the referrals and filings (a system change, a
/// service, an institution's own filing, a judicial token that names no authority).
pub fn office(ctx: &CallContext) -> Office {
    match Office::of(&ctx.principal) {
        Some(o @ Office::Authority(_)) => o,
        _ => Office::Center,
    }
}

fn reference(label: &str, n: u64) -> Result<Reference, ApiError> {
    Reference::new(label, n).map_err(ApiError::from)
}

fn referral_ref(r: &Referral) -> Result<Reference, ApiError> {
    reference("ارجاع", r.reference)
}

/// The key of an offer's answer time: per institution, so a reassignment reminds afresh.
pub fn answer_key(r: &Referral) -> String {
    format!("{}/answer/{}", r.id.name(), r.institution.as_str())
}

/// The key of the flag to the source when an offer's answer time passes unanswered: per
/// institution, as the answer time's.
pub fn answer_late_key(r: &Referral) -> String {
    format!("{}/answer-late/{}", r.id.name(), r.institution.as_str())
}

/// The office that referred `r`: the one recorded when it was made, else the centre
/// (which keeps the referrals).
pub fn source_office(r: &Referral) -> Office {
    r.source_office
        .as_deref()
        .and_then(Office::parse)
        .unwrap_or(Office::Center)
}

/// The source, as a notice addresses an office.
fn source(r: &Referral) -> Recipient {
    Recipient::Office {
        office: source_office(r),
        name: ADDRESSEE.to_owned(),
    }
}

/// The key of a due time: the extended one reminds afresh (each reminder fires once per
/// key, and the first 7-days reminder may have fired before the extension).
pub fn due_key(r: &Referral) -> String {
    let which = if r.extended { "due-extended" } else { "due" };
    format!("{}/{which}/{}", r.id.name(), r.institution.as_str())
}

impl Notify {
    /// The channels a notice to `to` goes out on: the configured gateways, and e-mail
    /// where the institution gave an address.
    fn deliveries(&self, to: &To) -> Vec<Delivery> {
        let mut all = self.deliveries.clone();
        if let Some(address) = &to.email {
            all.push(Delivery::Email {
                address: address.clone(),
                more: String::new(),
            });
        }
        all
    }

    /// The channels a notice to an office goes out on: the judiciary's e-notice system
    /// (an office has no telephone of its own here), when it is configured.
    fn office_deliveries(&self) -> Vec<Delivery> {
        self.deliveries
            .iter()
            .filter(|d| matches!(d, Delivery::ENotice))
            .cloned()
            .collect()
    }

    /// A notice about a referral, to its source (an extension asked for).
    pub async fn to_source(
        &self,
        txn: &WriteTxn,
        ctx: &CallContext,
        r: &Referral,
        template: Template,
    ) -> Result<(), ApiError> {
        let reference = referral_ref(r)?;
        let notices: Vec<NewNotification> = self
            .office_deliveries()
            .into_iter()
            .map(|delivery| NewNotification {
                recipient: source(r),
                resource: r.id.name(),
                reference: reference.clone(),
                office: office(ctx),
                template,
                dates: vec![],
                place: None,
                delivery,
            })
            .collect();
        if notices.is_empty() {
            return Ok(());
        }
        enqueue_all(txn, notices).await?;
        Ok(())
    }

    /// Schedules the flag to the source for when the answer time (ending at `due`) of a
    /// referral offered again passes unanswered (a new referral's is in
    /// [`Notify::offered_new`]).
    pub async fn flag_late_answer(
        &self,
        txn: &WriteTxn,
        ctx: &CallContext,
        r: &Referral,
        due: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        if let Some(plan) = self.late_answer_plan(ctx, r)? {
            reminders::schedule(txn, &plan, due).await?;
        }
        Ok(())
    }

    /// The source's flag of an offer's answer time passing unanswered, if its office is
    /// told (on the e-notice channel).
    fn late_answer_plan(
        &self,
        ctx: &CallContext,
        r: &Referral,
    ) -> Result<Option<ReminderPlan>, ApiError> {
        let recipients: Vec<Addressee> = self
            .office_deliveries()
            .into_iter()
            .map(|delivery| Addressee {
                recipient: source(r),
                delivery,
            })
            .collect();
        if recipients.is_empty() {
            return Ok(None);
        }
        Ok(Some(ReminderPlan {
            deadline_key: answer_late_key(r),
            topic: Topic::ReferralAnswer,
            resource: r.id.name(),
            reference: referral_ref(r)?,
            office: office(ctx),
            recipients,
            offsets: vec![Offset::Passed],
        }))
    }

    fn notices(
        &self,
        office: &Office,
        to: &To,
        resource: String,
        reference: Reference,
        template: Template,
        dates: Vec<NoticeDate>,
    ) -> Vec<NewNotification> {
        self.deliveries(to)
            .into_iter()
            .map(|delivery| NewNotification {
                recipient: to.recipient.clone(),
                resource: resource.clone(),
                reference: reference.clone(),
                office: office.clone(),
                template,
                dates: dates.clone(),
                place: None,
                delivery,
            })
            .collect()
    }

    fn plan(
        &self,
        ctx: &CallContext,
        r: &Referral,
        topic: Topic,
        key: String,
    ) -> Result<ReminderPlan, ApiError> {
        Ok(ReminderPlan {
            deadline_key: key,
            topic,
            resource: r.id.name(),
            reference: referral_ref(r)?,
            office: office(ctx),
            recipients: {
                let to = addressee(&r.institution, r.contact.as_ref());
                self.deliveries(&to)
                    .into_iter()
                    .map(|delivery| Addressee {
                        recipient: to.recipient.clone(),
                        delivery,
                    })
                    .collect()
            },
            offsets: STANDARD_OFFSETS.to_vec(),
        })
    }

    /// The offer's notice of a referral created in `txn`, the reminders of its answer
    /// time (ending at `due`) and the source's flag of that time passing unanswered,
    /// deferred with the create's other tail statements (see `WriteTxn::defer`).
    pub async fn offered_new(
        &self,
        txn: &WriteTxn,
        ctx: &CallContext,
        r: &Referral,
        last_day: SolarDate,
        due: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        if self.is_off() {
            return Ok(());
        }
        let notices = self.notices(
            &office(ctx),
            &addressee(&r.institution, r.contact.as_ref()),
            r.id.name(),
            referral_ref(r)?,
            Template::ReferralOffered,
            vec![NoticeDate::Day(last_day)],
        );
        let late = self.late_answer_plan(ctx, r)?;
        let answer = self.plan(ctx, r, Topic::ReferralAnswer, answer_key(r))?;
        let plans: Vec<_> = late.iter().chain([&answer]).map(|p| (p, due)).collect();
        reminders::enqueue_with_new_reminders(txn, notices, &plans).await?;
        Ok(())
    }

    /// A notice about a referral, to its institution.
    pub async fn referral(
        &self,
        txn: &WriteTxn,
        ctx: &CallContext,
        r: &Referral,
        template: Template,
        days: &[SolarDate],
    ) -> Result<(), ApiError> {
        if self.is_off() {
            return Ok(());
        }
        let dates = days.iter().copied().map(NoticeDate::Day).collect();
        // One deferred statement for the notices of all channels.
        enqueue_all(
            txn,
            self.notices(
                &office(ctx),
                &addressee(&r.institution, r.contact.as_ref()),
                r.id.name(),
                referral_ref(r)?,
                template,
                dates,
            ),
        )
        .await?;
        Ok(())
    }

    /// A notice about a filing, to the filing institution.
    pub async fn filing(
        &self,
        txn: &WriteTxn,
        ctx: &CallContext,
        f: &Filing,
        template: Template,
    ) -> Result<(), ApiError> {
        if self.is_off() {
            return Ok(());
        }
        // One deferred statement for the notices of all channels.
        enqueue_all(
            txn,
            self.notices(
                &office(ctx),
                &addressee(&f.institution, f.contact.as_ref()),
                f.id.name(),
                reference("پرونده", f.reference)?,
                template,
                vec![],
            ),
        )
        .await?;
        Ok(())
    }

    /// Schedules the reminders of a deadline of `r` ending at `due` under `key`; `new_key`
    /// when the key cannot have been scheduled before (a referral created in `txn`).
    #[allow(clippy::too_many_arguments)]
    pub async fn remind(
        &self,
        txn: &WriteTxn,
        ctx: &CallContext,
        r: &Referral,
        topic: Topic,
        key: String,
        due: DateTime<Utc>,
        new_key: bool,
    ) -> Result<(), ApiError> {
        if self.is_off() {
            return Ok(());
        }
        let plan = self.plan(ctx, r, topic, key)?;
        if new_key {
            reminders::schedule_new(txn, &plan, due).await?;
        } else {
            reminders::schedule(txn, &plan, due).await?;
        }
        Ok(())
    }

    /// Moves the unfired reminders of `key` to a deadline now ending at `due`.
    pub async fn move_reminders(
        &self,
        txn: &WriteTxn,
        key: &str,
        due: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        if self.is_off() {
            return Ok(());
        }
        reminders::reschedule(txn, key, due).await?;
        Ok(())
    }

    /// Cancels the unfired reminders of `key`.
    pub async fn cancel(&self, txn: &WriteTxn, key: &str) -> Result<(), ApiError> {
        if self.is_off() {
            return Ok(());
        }
        reminders::cancel(txn, key).await?;
        Ok(())
    }

    /// Cancels every reminder `r` (as it was) may have: its answer time and due times.
    pub async fn cancel_all(&self, txn: &WriteTxn, r: &Referral) -> Result<(), ApiError> {
        if self.is_off() {
            return Ok(());
        }
        let mut plain = r.clone();
        plain.extended = false;
        let mut extended = r.clone();
        extended.extended = true;
        let keys = [
            answer_key(r),
            answer_late_key(r),
            due_key(&plain),
            due_key(&extended),
        ];
        // One statement for them all.
        reminders::cancel_all(txn, &keys.each_ref().map(String::as_str)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_from_the_settings() {
        assert_eq!(Notify::parse("sms,e-notice").unwrap(), Notify::default());
        assert!(Notify::parse("none").unwrap().is_off());
        assert!(Notify::parse("").unwrap().is_off());
        assert_eq!(
            Notify::parse("SMS").unwrap(),
            Notify {
                deliveries: vec![Delivery::Sms]
            }
        );
        assert!(Notify::parse("pigeon").is_err());
    }
}
