//! Reminders of deadlines: stored with the change that sets the deadline, moved when it
//! moves, cancelled when the case closes, and each turned into a queued notification
//! exactly once when its instant comes ([`fire_due`], one write transaction: the reminder
//! is marked fired in the transaction that queues its notification, so a crash between
//! them is not possible).
//!
//! A reminder "N days before" is at 08:00 Tehran time on the Nth day before the deadline's
//! last day (as `mosharekat_calendar::Deadline::reminder_at`); "passed" is the first
//! instant after the deadline ends. The text is rendered when it fires, with the deadline
//! as it then stands.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

use mosharekat_calendar::SolarDate;
use mosharekat_platform::db::{Db, WriteTxn, db_error};
use mosharekat_platform::error::ApiError;

use crate::content::ContentError;
use crate::model::{
    Delivery, NewNotification, NoticeDate, Office, Recipient, Reference, Sequence, Template, Topic,
};
use crate::store::{self, stmt};

/// When, relative to a deadline, a reminder fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offset {
    /// At 08:00 Tehran time this many days before the last day (1 to 366).
    DaysBefore(u32),
    /// Once the deadline has passed.
    Passed,
}

/// 7 days before, 1 day before, and passed: what the suite reminds of by default.
pub const STANDARD_OFFSETS: [Offset; 3] =
    [Offset::DaysBefore(7), Offset::DaysBefore(1), Offset::Passed];

/// The hour of a day-before reminder, Tehran time: when the offices open.
const REMINDER_TIME: NaiveTime = match NaiveTime::from_hms_opt(8, 0, 0) {
    Some(t) => t,
    None => panic!("08:00 is a time"),
};

impl Offset {
    fn code(self) -> String {
        match self {
            Self::DaysBefore(n) => format!("D{n}"),
            Self::Passed => "PASSED".into(),
        }
    }

    fn parse(s: &str) -> Option<Self> {
        if s == "PASSED" {
            return Some(Self::Passed);
        }
        s.strip_prefix('D')?.parse().ok().map(Self::DaysBefore)
    }

    /// The instant this offset of a deadline ending at `due` fires.
    fn fire_at(self, due: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
        match self {
            Self::Passed => Ok(due + chrono::TimeDelta::microseconds(1)),
            Self::DaysBefore(n) => {
                let last_day = SolarDate::from_instant(due)
                    .map_err(|e| ApiError::invalid("due", e.to_string()))?;
                Ok(last_day
                    .add_days(-i64::from(n))
                    .at_tehran_time(REMINDER_TIME))
            }
        }
    }

    fn template(self, topic: Topic) -> Template {
        match self {
            Self::DaysBefore(_) => Template::DeadlineApproaching(topic),
            Self::Passed => Template::DeadlinePassed(topic),
        }
    }
}

/// Who a reminder goes to, and how. A reminder's e-mail carries the fixed text only (the
/// `more` of [`Delivery::Email`] is not kept): it is rendered when it fires, from columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressee {
    pub recipient: Recipient,
    pub delivery: Delivery,
}

/// The reminders of one deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderPlan {
    /// Names the deadline in the service, e.g. `referrals/1234/due`; reschedule and
    /// cancel find its reminders by it.
    pub deadline_key: String,
    pub topic: Topic,
    pub resource: String,
    pub reference: Reference,
    pub office: Office,
    pub recipients: Vec<Addressee>,
    pub offsets: Vec<Offset>,
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > 200 || key.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::invalid(
            "deadline_key",
            "must be 1 to 200 characters without spaces",
        ));
    }
    Ok(())
}

fn due_micros(due: DateTime<Utc>) -> Result<i64, ApiError> {
    SolarDate::from_instant(due).map_err(|e| ApiError::invalid("due", e.to_string()))?;
    Ok(due.timestamp_micros())
}

/// The notification a reminder becomes, for a deadline ending at `due`.
fn notification(
    plan: &ReminderPlan,
    who: &Addressee,
    offset: Offset,
    due: DateTime<Utc>,
) -> Result<NewNotification, ContentError> {
    let last_day = SolarDate::from_instant(due).map_err(|e| ContentError::Date(e.to_string()))?;
    Ok(NewNotification {
        recipient: who.recipient.clone(),
        resource: plan.resource.clone(),
        reference: plan.reference.clone(),
        office: plan.office.clone(),
        template: offset.template(plan.topic),
        dates: vec![NoticeDate::Day(last_day)],
        place: None,
        delivery: who.delivery.clone(),
    })
}

/// Stores the reminders of a deadline ending at `due`, in the caller's transaction (so a
/// rolled-back change schedules nothing). Scheduling a key again replaces its unfired
/// reminders; those already fired stay fired. A "days before" reminder whose instant has
/// already come is not stored: "7 days left" sent with 3 left would be wrong. Returns how
/// many were stored.
pub async fn schedule(
    txn: &WriteTxn,
    plan: &ReminderPlan,
    due: DateTime<Utc>,
) -> Result<usize, ApiError> {
    store_plan(txn, plan, due, false).await
}

/// As [`schedule`] for a key never scheduled before (the deadline of a resource created
/// in this transaction): nothing to replace or to find fired, so two statements fewer.
pub async fn schedule_new(
    txn: &WriteTxn,
    plan: &ReminderPlan,
    due: DateTime<Utc>,
) -> Result<usize, ApiError> {
    store_plan(txn, plan, due, true).await
}

async fn store_plan(
    txn: &WriteTxn,
    plan: &ReminderPlan,
    due: DateTime<Utc>,
    new_key: bool,
) -> Result<usize, ApiError> {
    let Some((sql, values, n)) = reminder_insert(txn, &[(plan, due)], new_key).await? else {
        return Ok(0);
    };
    txn.execute_raw(stmt(txn, &sql, values))
        .await
        .map_err(db_error)?;
    Ok(n)
}

/// The notices of a change and the reminders of the deadlines it sets on a resource
/// created in the same transaction (as [`schedule_new`], each plan with the instant its
/// deadline ends), after their checks, written deferred (see [`WriteTxn::defer`]): with
/// the change's other tail statements, not as two hand-offs of their own. A failure of
/// theirs fails the change's commit.
pub async fn enqueue_with_new_reminders(
    txn: &WriteTxn,
    notices: Vec<NewNotification>,
    plans: &[(&ReminderPlan, DateTime<Utc>)],
) -> Result<(), ApiError> {
    store::enqueue_all(txn, notices).await?;
    if let Some((sql, values, _)) = reminder_insert(txn, plans, true).await? {
        txn.defer(stmt(txn, &sql, values)).await.map_err(db_error)?;
    }
    Ok(())
}

/// The parameters of a reminder's row.
const PER_ROW: usize = 14;

/// The one INSERT of the plans' reminders (each plan with the instant its deadline ends;
/// parameters from `$1`) and how many rows it writes, or none when there is nothing to
/// write; after the checks, and (unless `new_key`) after replacing each key's unfired
/// reminders.
async fn reminder_insert(
    txn: &WriteTxn,
    plans: &[(&ReminderPlan, DateTime<Utc>)],
    new_key: bool,
) -> Result<Option<(String, Vec<sea_orm::Value>, usize)>, ApiError> {
    let mut rows = Vec::new();
    let mut values: Vec<sea_orm::Value> = Vec::new();
    for (plan, due) in plans {
        plan_rows(txn, plan, *due, new_key, &mut rows, &mut values).await?;
    }
    debug_assert_eq!(values.len(), rows.len() * PER_ROW);
    if rows.is_empty() {
        return Ok(None);
    }
    // One statement for all of them: scheduling is in every change that sets a deadline.
    let sql = format!(
        "INSERT INTO notification_reminder (id, state, deadline_key, offset_code, due_us, \
         fire_us, topic, resource, reference_label, reference_number, office, \
         recipient_kind, recipient_id, recipient_name, channel, address, fired_seq, \
         done_us, note) {}",
        rows.join(" UNION ALL ")
    );
    Ok(Some((sql, values, rows.len())))
}

/// The rows (`SELECT`s, numbered on from those in `rows`) and parameters of one plan's
/// reminders, after its checks and (unless `new_key`) the replacing of its unfired ones.
async fn plan_rows(
    txn: &WriteTxn,
    plan: &ReminderPlan,
    due: DateTime<Utc>,
    new_key: bool,
    rows: &mut Vec<String>,
    values: &mut Vec<sea_orm::Value>,
) -> Result<(), ApiError> {
    check_key(&plan.deadline_key)?;
    let due_us = due_micros(due)?;
    if plan.recipients.is_empty() {
        return Err(ApiError::invalid("recipients", "must name at least one"));
    }
    if plan.offsets.is_empty() {
        return Err(ApiError::invalid("offsets", "must name at least one"));
    }
    for o in &plan.offsets {
        if let Offset::DaysBefore(n) = o
            && !(1..=366).contains(n)
        {
            return Err(ApiError::invalid("offsets", "days before must be 1 to 366"));
        }
    }
    // Every reminder is built once now, so a breach of the content rules is the caller's
    // error today rather than a reminder that cannot fire later.
    for who in &plan.recipients {
        for o in &plan.offsets {
            notification(plan, who, *o, due)?.build()?;
        }
    }
    let mut done: Vec<(String, String, String, String)> = Vec::new();
    if !new_key {
        txn.execute_raw(stmt(
            txn,
            "DELETE FROM notification_reminder WHERE deadline_key = $1 AND state = 'PENDING'",
            [plan.deadline_key.clone().into()],
        ))
        .await
        .map_err(db_error)?;
        // Those of this key fired (or cancelled) before, read at once: each fires once.
        done = DoneRow::find_by_statement(stmt(
            txn,
            "SELECT offset_code, recipient_kind, recipient_id, channel \
             FROM notification_reminder WHERE deadline_key = $1",
            [plan.deadline_key.clone().into()],
        ))
        .all(txn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|d| (d.offset_code, d.recipient_kind, d.recipient_id, d.channel))
        .collect();
    }
    let now = txn.now_micros();
    // A deadline set so close that every "days before" reminder has gone by (a short
    // period) gets the most urgent of them at once, so that its recipient hears of it before
    // it passes; while one is still ahead, those gone by are not sent late.
    let mut urgent: Option<(i64, Offset)> = None;
    let mut one_ahead = false;
    if now < due_us {
        for o in &plan.offsets {
            if let Offset::DaysBefore(_) = o {
                let fire_us = o.fire_at(due)?.timestamp_micros();
                if fire_us > now {
                    one_ahead = true;
                } else if urgent.is_none_or(|(t, _)| fire_us > t) {
                    urgent = Some((fire_us, *o));
                }
            }
        }
    }
    if one_ahead {
        urgent = None;
    }
    for who in &plan.recipients {
        let (channel, address) = match &who.delivery {
            Delivery::Email { address, .. } => ("EMAIL", address.trim().to_string()),
            Delivery::Sms => ("SMS", String::new()),
            Delivery::ENotice => ("E_NOTICE", String::new()),
        };
        for o in &plan.offsets {
            let mut fire_us = o.fire_at(due)?.timestamp_micros();
            if matches!(o, Offset::DaysBefore(_)) && fire_us <= now {
                if urgent.map(|(_, u)| u) != Some(*o) {
                    continue;
                }
                fire_us = now;
            }
            let key = (
                o.code(),
                who.recipient.kind().to_string(),
                who.recipient.id(),
                channel.to_string(),
            );
            if done.contains(&key) {
                continue; // fired (or cancelled) before: each fires once
            }
            let i = rows.len();
            let ps = (0..PER_ROW)
                .map(|k| format!("${}", 1 + i * PER_ROW + k))
                .collect::<Vec<_>>()
                .join(", ");
            // The id is the last one plus the row's place, read in the statement (the
            // write turn serialises writers): no SELECT before it.
            rows.push(format!(
                "SELECT last.id + {}, 'PENDING', {ps}, CAST(NULL AS BIGINT), \
                 CAST(NULL AS BIGINT), '' \
                 FROM (SELECT COALESCE(MAX(id), 0) AS id FROM notification_reminder) AS last",
                i + 1
            ));
            values.extend([
                plan.deadline_key.clone().into(),
                o.code().into(),
                due_us.into(),
                fire_us.into(),
                plan.topic.as_str().into(),
                plan.resource.clone().into(),
                plan.reference.label().into(),
                (plan.reference.number() as i64).into(),
                plan.office.as_stored().into(),
                who.recipient.kind().into(),
                who.recipient.id().into(),
                who.recipient.name().into(),
                channel.into(),
                address.clone().into(),
            ]);
        }
    }
    Ok(())
}

#[derive(Debug, FromQueryResult)]
struct DoneRow {
    offset_code: String,
    recipient_kind: String,
    recipient_id: String,
    channel: String,
}

#[derive(Debug, Clone, FromQueryResult)]
struct ReminderRow {
    id: i64,
    offset_code: String,
    due_us: i64,
    topic: String,
    resource: String,
    reference_label: String,
    reference_number: i64,
    office: String,
    recipient_kind: String,
    recipient_id: String,
    recipient_name: String,
    channel: String,
    address: String,
}

const REMINDER_COLUMNS: &str = "id, offset_code, due_us, topic, resource, reference_label, \
     reference_number, office, recipient_kind, recipient_id, recipient_name, channel, address";

/// Moves the unfired reminders of `deadline_key` to a deadline now ending at `due`, in the
/// caller's transaction. A "days before" one whose new instant has already come is
/// dropped (see [`schedule`]). Returns how many were moved.
pub async fn reschedule(
    txn: &WriteTxn,
    deadline_key: &str,
    due: DateTime<Utc>,
) -> Result<usize, ApiError> {
    check_key(deadline_key)?;
    let due_us = due_micros(due)?;
    let now = txn.now_micros();
    let rows = ReminderRow::find_by_statement(stmt(
        txn,
        &format!(
            "SELECT {REMINDER_COLUMNS} FROM notification_reminder WHERE deadline_key = $1 \
             AND state = 'PENDING' ORDER BY id"
        ),
        [deadline_key.into()],
    ))
    .all(txn)
    .await
    .map_err(db_error)?;
    let mut moved = 0;
    for r in rows {
        let offset = Offset::parse(&r.offset_code).ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("reminder {} has an unknown offset", r.id))
        })?;
        let fire_us = offset.fire_at(due)?.timestamp_micros();
        if matches!(offset, Offset::DaysBefore(_)) && fire_us <= now {
            finish(
                txn,
                r.id,
                "SKIPPED",
                None,
                "its instant had come when the deadline moved",
            )
            .await?;
            continue;
        }
        txn.execute_raw(stmt(
            txn,
            "UPDATE notification_reminder SET due_us = $1, fire_us = $2 WHERE id = $3",
            [due_us.into(), fire_us.into(), r.id.into()],
        ))
        .await
        .map_err(db_error)?;
        moved += 1;
    }
    Ok(moved)
}

/// Cancels the unfired reminders of `deadline_key` (the case closed), in the caller's
/// transaction. Returns how many.
pub async fn cancel(txn: &WriteTxn, deadline_key: &str) -> Result<usize, ApiError> {
    check_key(deadline_key)?;
    let r = txn
        .execute_raw(stmt(
            txn,
            "UPDATE notification_reminder SET state = 'CANCELLED', done_us = $1 \
             WHERE deadline_key = $2 AND state = 'PENDING'",
            [txn.now_micros().into(), deadline_key.into()],
        ))
        .await
        .map_err(db_error)?;
    Ok(r.rows_affected() as usize)
}

/// As [`cancel`] for several deadlines at once, in one statement.
pub async fn cancel_all(txn: &WriteTxn, deadline_keys: &[&str]) -> Result<usize, ApiError> {
    if deadline_keys.is_empty() {
        return Ok(0);
    }
    let mut values: Vec<sea_orm::Value> = vec![txn.now_micros().into()];
    for k in deadline_keys {
        check_key(k)?;
        values.push((*k).into());
    }
    let ps = (2..=deadline_keys.len() + 1)
        .map(|k| format!("${k}"))
        .collect::<Vec<_>>()
        .join(", ");
    let r = txn
        .execute_raw(stmt(
            txn,
            &format!(
                "UPDATE notification_reminder SET state = 'CANCELLED', done_us = $1 \
                 WHERE deadline_key IN ({ps}) AND state = 'PENDING'"
            ),
            values,
        ))
        .await
        .map_err(db_error)?;
    Ok(r.rows_affected() as usize)
}

async fn finish(
    txn: &WriteTxn,
    id: i64,
    state: &str,
    seq: Option<Sequence>,
    note: &str,
) -> Result<(), ApiError> {
    txn.execute_raw(stmt(
        txn,
        "UPDATE notification_reminder SET state = $1, fired_seq = $2, done_us = $3, note = $4 \
         WHERE id = $5",
        [
            state.into(),
            seq.map(|s| s.0).into(),
            txn.now_micros().into(),
            note.into(),
            id.into(),
        ],
    ))
    .await
    .map_err(db_error)?;
    Ok(())
}

fn rebuild(r: &ReminderRow) -> Result<(ReminderPlan, Addressee, Offset, DateTime<Utc>), String> {
    let topic = Topic::parse(&r.topic).ok_or("unknown topic")?;
    let offset = Offset::parse(&r.offset_code).ok_or("unknown offset")?;
    let recipient = Recipient::from_stored(&r.recipient_kind, &r.recipient_id, &r.recipient_name)
        .ok_or("unknown recipient")?;
    let delivery = match r.channel.as_str() {
        "SMS" => Delivery::Sms,
        "E_NOTICE" => Delivery::ENotice,
        "EMAIL" => Delivery::Email {
            address: r.address.clone(),
            more: String::new(),
        },
        _ => return Err("unknown channel".into()),
    };
    let reference = Reference::new(
        &r.reference_label,
        u64::try_from(r.reference_number).map_err(|_| "bad reference")?,
    )
    .map_err(|e| e.to_string())?;
    let office = Office::parse(&r.office).ok_or("unknown office")?;
    let due = DateTime::from_timestamp_micros(r.due_us).ok_or("bad due time")?;
    let who = Addressee {
        recipient,
        delivery,
    };
    let plan = ReminderPlan {
        deadline_key: String::new(),
        topic,
        resource: r.resource.clone(),
        reference,
        office,
        recipients: vec![who.clone()],
        offsets: vec![offset],
    };
    Ok((plan, who, offset, due))
}

/// Queues a notification for every reminder whose instant is at or before `now`, and marks
/// it fired, all in one write transaction: each fires exactly once. Returns the
/// notifications queued. A "days before" reminder whose deadline has already passed
/// (the service was down through both) is marked `SKIPPED`: only "passed" is still true. A reminder that can no longer be built is marked `SKIPPED` with
/// why, so that it does not stop the others.
pub async fn fire_due(db: &Db, now: DateTime<Utc>) -> Result<Vec<Sequence>, ApiError> {
    const BATCH: i64 = 500;
    let mut queued = Vec::new();
    loop {
        let txn = db.begin_write().await?;
        let rows = ReminderRow::find_by_statement(stmt(
            &txn,
            &format!(
                "SELECT {REMINDER_COLUMNS} FROM notification_reminder WHERE state = 'PENDING' \
                 AND fire_us <= $1 ORDER BY fire_us, id LIMIT $2"
            ),
            [now.timestamp_micros().into(), BATCH.into()],
        ))
        .all(&txn)
        .await
        .map_err(db_error)?;
        let n = rows.len() as i64;
        for r in &rows {
            // "N days left" after the deadline passed (the service was down) is false.
            if r.offset_code != "PASSED" && now.timestamp_micros() > r.due_us {
                finish(
                    &txn,
                    r.id,
                    "SKIPPED",
                    None,
                    "the deadline passed before it fired",
                )
                .await?;
                continue;
            }
            let built = rebuild(r).and_then(|(plan, who, offset, due)| {
                notification(&plan, &who, offset, due)
                    .and_then(|n| n.build())
                    .map_err(|e| e.to_string())
            });
            match built {
                Ok(b) => {
                    let seq = store::insert(&txn, &b).await?;
                    finish(&txn, r.id, "FIRED", Some(seq), "").await?;
                    queued.push(seq);
                }
                Err(why) => {
                    tracing::warn!(reminder = r.id, %why, "a reminder could not be built");
                    finish(&txn, r.id, "SKIPPED", None, &why).await?;
                }
            }
        }
        mosharekat_platform::db::commit(txn).await?;
        if n < BATCH {
            return Ok(queued);
        }
    }
}

/// A reminder as stored, for a service's timeline or a test.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct StoredReminder {
    pub offset_code: String,
    pub recipient_id: String,
    pub channel: String,
    pub fire_us: i64,
    pub due_us: i64,
    pub state: String,
    pub fired_seq: Option<i64>,
}

/// The reminders of `deadline_key`, by when they fire.
pub async fn reminders_of(
    c: &impl ConnectionTrait,
    deadline_key: &str,
) -> Result<Vec<StoredReminder>, ApiError> {
    StoredReminder::find_by_statement(stmt(
        c,
        "SELECT offset_code, recipient_id, channel, fire_us, due_us, state, fired_seq \
         FROM notification_reminder WHERE deadline_key = $1 ORDER BY fire_us, id",
        [deadline_key.into()],
    ))
    .all(c)
    .await
    .map_err(db_error)
}

/// Spawns the loop that fires due reminders every `every`, at the time of the database's
/// clock. Errors are logged and tried again on the next round.
pub fn spawn_reminder_loop(db: Db, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match fire_due(&db, db.clock().now()).await {
                Ok(q) if !q.is_empty() => tracing::info!(queued = q.len(), "reminders fired"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "firing reminders failed; will retry"),
            }
        }
    })
}
