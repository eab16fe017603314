//! What the registry tells institutions about their licences (domain.md,
//! "Notifications"): approved, suspended, reinstated, revoked, the expiry moved by the
//! calendar, and reminders 30 and 7 days before it ends. Each is written in the
//! transaction of the change that causes it, by SMS to the institution and, when it gave
//! an address, by e-mail.

use chrono::{DateTime, Utc};
use mosharekat_calendar::{Calendar, Deadline, Period, Province, SolarDate};
use mosharekat_notify::reminders::{self, Offset};
use mosharekat_notify::{
    Addressee, Delivery, NewNotification, NoticeDate, Office, Recipient, Reference, ReminderPlan,
    Template, Topic,
};
use mosharekat_platform::db::WriteTxn;
use mosharekat_platform::error::ApiError;

use crate::names::LicenceName;
use crate::rules::Institution;
use crate::store;

/// When an institution is reminded of its licence's end (domain.md: 30 and 7 days before).
pub const EXPIRY_REMINDERS: [Offset; 2] = [Offset::DaysBefore(30), Offset::DaysBefore(7)];

/// The word a licence's short reference starts with: «پروانه ۱۲».
const REFERENCE_LABEL: &str = "پروانه";

/// The name an SMS may greet an institution by: its own name without digits or address
/// characters (an SMS carries no number but the reference), or a generic greeting when
/// nothing is left of it.
pub fn notice_name(display_name: &str) -> String {
    let kept: String = display_name
        .chars()
        .map(|c| {
            if c.is_numeric() || matches!(c, '/' | '\\' | ':' | '@' | '.') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let kept = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    match mosharekat_notify::content::check_name(&kept) {
        Ok(n) if !n.is_empty() => n,
        _ => "نهاد مردمی".to_owned(),
    }
}

/// The deadline key of a licence's expiry, by which its reminders are found.
pub fn expiry_key(licence: &LicenceName) -> String {
    format!("{licence}/expiry")
}

fn recipient(inst: &Institution) -> Recipient {
    Recipient::Institution {
        id: inst.name.id().as_str().to_owned(),
        name: notice_name(&inst.fields.display_name),
    }
}

/// SMS always; e-mail when the institution gave an address the mail system accepts.
fn deliveries(inst: &Institution, more: &str) -> Vec<Delivery> {
    let mut d = vec![Delivery::Sms];
    let address = inst.fields.email.trim();
    if !address.is_empty() {
        d.push(Delivery::Email {
            address: address.to_owned(),
            more: more.to_owned(),
        });
    }
    d
}

async fn reference(txn: &WriteTxn, licence: &LicenceName) -> Result<Reference, ApiError> {
    let n = store::licence_number(txn, licence).await?;
    Reference::new(REFERENCE_LABEL, u64::try_from(n).unwrap_or(0))
        .map_err(|e| ApiError::internal(anyhow::anyhow!("licence reference {n}: {e}")))
}

/// Queues `template` about `licence` to its institution, in `txn`. An e-mail address the
/// mail system refuses (the registry's own check is looser) drops that e-mail, logged,
/// rather than the change.
pub async fn notify(
    txn: &WriteTxn,
    inst: &Institution,
    licence: &LicenceName,
    template: Template,
    dates: Vec<NoticeDate>,
    more: &str,
) -> Result<(), ApiError> {
    let reference = reference(txn, licence).await?;
    let mut notices = Vec::new();
    for delivery in deliveries(inst, more) {
        let n = NewNotification {
            recipient: recipient(inst),
            resource: licence.to_string(),
            reference: reference.clone(),
            office: Office::Registry,
            template,
            dates: dates.clone(),
            place: None,
            delivery,
        };
        if let Err(e) = n.build() {
            if matches!(n.delivery, Delivery::Email { .. }) {
                tracing::warn!(licence = %licence, error = %e, "e-mail notice not sent: address refused");
                continue;
            }
            return Err(ApiError::internal(anyhow::anyhow!(
                "a licence notice breaks the content rules: {e}"
            )));
        }
        notices.push(n);
    }
    mosharekat_notify::enqueue_all(txn, notices).await
}

/// Schedules (or replaces) the reminders of `licence`'s expiry ending at `ends`.
pub async fn schedule_expiry(
    txn: &WriteTxn,
    inst: &Institution,
    licence: &LicenceName,
    ends: DateTime<Utc>,
) -> Result<(), ApiError> {
    let reference = reference(txn, licence).await?;
    let plan = ReminderPlan {
        deadline_key: expiry_key(licence),
        topic: Topic::LicenceExpiry,
        resource: licence.to_string(),
        reference: reference.clone(),
        office: Office::Registry,
        recipients: deliveries(inst, "")
            .into_iter()
            .filter(|d| {
                // A reminder's e-mail is built when scheduled: an address refused drops it.
                NewNotification {
                    recipient: recipient(inst),
                    resource: licence.to_string(),
                    reference: reference.clone(),
                    office: Office::Registry,
                    template: Template::LicenceApproved,
                    dates: vec![],
                    place: None,
                    delivery: d.clone(),
                }
                .build()
                .is_ok()
            })
            .map(|delivery| Addressee {
                recipient: recipient(inst),
                delivery,
            })
            .collect(),
        offsets: EXPIRY_REMINDERS.to_vec(),
    };
    reminders::schedule(txn, &plan, ends).await?;
    Ok(())
}

/// The licence's end moved by a late publication: its reminders move, and the
/// institution is told.
pub async fn expiry_moved(
    txn: &WriteTxn,
    licence: &LicenceName,
    after: &Deadline,
    why: &str,
) -> Result<(), ApiError> {
    reminders::reschedule(txn, &expiry_key(licence), after.ends_at).await?;
    let Some(inst) = store::get_institution(txn, &licence.institution).await? else {
        return Ok(());
    };
    notify(
        txn,
        &inst.value,
        licence,
        Template::DeadlineMoved(Topic::LicenceExpiry),
        vec![NoticeDate::Day(after.last_day)],
        why,
    )
    .await
}

/// A licence's expiry as the legal calendar counts it, when it is put in force at
/// `act_us` to end at `valid_until_us`: a period of the days from the act's day to the
/// end's day, the act's day not counted (art. 445), a closed last day moved to the next
/// open day (art. 444). It ends at the instant set when its last day is open, else at
/// the end of the open day it moved to. `None` when there is no whole day to count (it
/// ends the day it is put in force, or has ended) or the end is beyond the periods the
/// calendar counts; the licence then ends at `valid_until_us` with no rule recorded.
pub fn licence_expiry(
    calendar: &Calendar,
    act_us: i64,
    valid_until_us: i64,
    province: &str,
) -> Option<Deadline> {
    let act = DateTime::from_timestamp_micros(act_us)?;
    let until = DateTime::from_timestamp_micros(valid_until_us)?;
    let days = SolarDate::from_instant(act)
        .ok()?
        .days_until(SolarDate::from_instant(until).ok()?);
    let days = u32::try_from(days).ok().filter(|d| *d >= 1)?;
    let province = Province::new(province).ok()?;
    let mut d = calendar.deadline(act, Period::Days(days), &province).ok()?;
    if d.last_day == d.rule.nominal_last_day {
        d.ends_at = until;
    }
    Some(d)
}
