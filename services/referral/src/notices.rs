//! What the referral service tells people (`domain.md`, "Notifications"), written in the
//! transaction of the change that causes it (step 6 of the change path: `Saved::txn()`),
//! so a rolled-back change notifies nobody: a referral offered, withdrawn, recalled,
//! extended or moved by a late holiday (to the institution); a filing registered, rejected
//! or closed (to the filing institution); and the reminders of an offer's answer time and
//! a referral's due time (7 days and 1 day before, and passed), scheduled when the
//! deadline is set, moved when it moves, cancelled when the case no longer runs.
//!
//! The referral's documents hold the institution's id, not its name or address: the
//! addressee is named «همکار» (colleague) and the channels are the judiciary's SMS and
//! e-notice gateways. E-mail needs the institution's address from the registry, which
//! this service does not ask yet.

use chrono::{DateTime, Utc};
use mosharekat_calendar::SolarDate;
use mosharekat_notify::reminders::{self, Addressee, ReminderPlan, STANDARD_OFFSETS};
use mosharekat_notify::{
    Delivery, NewNotification, NoticeDate, Office, Recipient, Reference, Template, Topic,
    enqueue_all,
};
use mosharekat_platform::db::WriteTxn;
use mosharekat_platform::error::ApiError;

use crate::model::{Filing, Referral};
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

/// The name a notice addresses an institution by (see the module).
pub const ADDRESSEE: &str = "همکار";

fn institution(id: &InstitutionId) -> Recipient {
    Recipient::Institution {
        id: id.as_str().to_owned(),
        name: ADDRESSEE.to_owned(),
    }
}

/// The centre of popular institutions keeps the referrals and filings: a notice that
/// cannot be delivered is its work (the authorities have no id a notice could name yet).
const OFFICE: Office = Office::Center;

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

/// The key of a due time: the extended one reminds afresh (each reminder fires once per
/// key, and the first 7-days reminder may have fired before the extension).
pub fn due_key(r: &Referral) -> String {
    let which = if r.extended { "due-extended" } else { "due" };
    format!("{}/{which}/{}", r.id.name(), r.institution.as_str())
}

impl Notify {
    async fn send(
        &self,
        txn: &WriteTxn,
        to: &InstitutionId,
        resource: String,
        reference: Reference,
        template: Template,
        dates: Vec<NoticeDate>,
    ) -> Result<(), ApiError> {
        // One statement for the notices of all channels.
        let notices = self
            .deliveries
            .iter()
            .map(|delivery| NewNotification {
                recipient: institution(to),
                resource: resource.clone(),
                reference: reference.clone(),
                office: OFFICE,
                template,
                dates: dates.clone(),
                delivery: delivery.clone(),
            })
            .collect();
        enqueue_all(txn, notices).await?;
        Ok(())
    }

    /// A notice about a referral, to its institution.
    pub async fn referral(
        &self,
        txn: &WriteTxn,
        r: &Referral,
        template: Template,
        days: &[SolarDate],
    ) -> Result<(), ApiError> {
        if self.is_off() {
            return Ok(());
        }
        let dates = days.iter().copied().map(NoticeDate::Day).collect();
        self.send(
            txn,
            &r.institution,
            r.id.name(),
            referral_ref(r)?,
            template,
            dates,
        )
        .await
    }

    /// A notice about a filing, to the filing institution.
    pub async fn filing(
        &self,
        txn: &WriteTxn,
        f: &Filing,
        template: Template,
    ) -> Result<(), ApiError> {
        if self.is_off() {
            return Ok(());
        }
        self.send(
            txn,
            &f.institution,
            f.id.name(),
            reference("پرونده", f.reference)?,
            template,
            vec![],
        )
        .await
    }

    /// Schedules the reminders of a deadline of `r` ending at `due` under `key`; `new_key`
    /// when the key cannot have been scheduled before (a referral created in `txn`).
    pub async fn remind(
        &self,
        txn: &WriteTxn,
        r: &Referral,
        topic: Topic,
        key: String,
        due: DateTime<Utc>,
        new_key: bool,
    ) -> Result<(), ApiError> {
        if self.is_off() {
            return Ok(());
        }
        let plan = ReminderPlan {
            deadline_key: key,
            topic,
            resource: r.id.name(),
            reference: referral_ref(r)?,
            office: OFFICE,
            recipients: self
                .deliveries
                .iter()
                .map(|d| Addressee {
                    recipient: institution(&r.institution),
                    delivery: d.clone(),
                })
                .collect(),
            offsets: STANDARD_OFFSETS.to_vec(),
        };
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
        for key in [answer_key(r), due_key(&plain), due_key(&extended)] {
            reminders::cancel(txn, &key).await?;
        }
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
