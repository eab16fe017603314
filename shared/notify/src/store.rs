//! The notification table: writing a notification in the caller's transaction, and the
//! reads and state changes of delivery.

use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

use mosharekat_platform::change::{Repository, Versioned};
use mosharekat_platform::db::{WriteTxn, db_error};
use mosharekat_platform::error::ApiError;

use crate::model::{Built, Channel, NewNotification, Office, Recipient, Sequence, State};

/// A notification as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub seq: Sequence,
    pub recipient: Recipient,
    pub channel: Channel,
    pub address: String,
    pub resource: String,
    pub reference: String,
    pub office: Office,
    pub template: String,
    pub subject: String,
    pub text: String,
    pub state: State,
    pub failure_reason: String,
    pub attempts: i64,
    pub next_attempt_us: Option<i64>,
    pub queued_us: i64,
    pub sent_us: Option<i64>,
    pub delivered_us: Option<i64>,
    pub failed_us: Option<i64>,
}

#[derive(Debug, Clone, FromQueryResult)]
pub(crate) struct Row {
    seq: i64,
    version: i64,
    recipient_kind: String,
    recipient_id: String,
    recipient_name: String,
    channel: String,
    address: String,
    resource: String,
    reference: String,
    office: String,
    template: String,
    subject: String,
    body: String,
    state: String,
    failure_reason: String,
    attempts: i64,
    next_attempt_us: Option<i64>,
    queued_us: i64,
    sent_us: Option<i64>,
    delivered_us: Option<i64>,
    failed_us: Option<i64>,
}

pub(crate) const COLUMNS: &str = "seq, version, recipient_kind, recipient_id, recipient_name, \
     channel, address, resource, reference, office, template, subject, body, state, \
     failure_reason, attempts, next_attempt_us, queued_us, sent_us, delivered_us, failed_us";

impl Row {
    pub(crate) fn into_domain(self) -> Result<Versioned<Notification>, ApiError> {
        let bad = |what: &str| {
            ApiError::internal(anyhow::anyhow!(
                "notification {} has an unknown {what}",
                self.seq
            ))
        };
        Ok(Versioned {
            version: self.version,
            value: Notification {
                seq: Sequence(self.seq),
                recipient: Recipient::from_stored(
                    &self.recipient_kind,
                    &self.recipient_id,
                    &self.recipient_name,
                )
                .ok_or_else(|| bad("recipient"))?,
                channel: Channel::parse(&self.channel).ok_or_else(|| bad("channel"))?,
                address: self.address.clone(),
                resource: self.resource.clone(),
                reference: self.reference.clone(),
                office: Office::parse(&self.office).ok_or_else(|| bad("office"))?,
                template: self.template.clone(),
                subject: self.subject.clone(),
                text: self.body.clone(),
                state: State::parse(&self.state).ok_or_else(|| bad("state"))?,
                failure_reason: self.failure_reason.clone(),
                attempts: self.attempts,
                next_attempt_us: self.next_attempt_us,
                queued_us: self.queued_us,
                sent_us: self.sent_us,
                delivered_us: self.delivered_us,
                failed_us: self.failed_us,
            },
        })
    }
}

pub(crate) fn stmt(
    c: &impl ConnectionTrait,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
) -> Statement {
    Statement::from_sql_and_values(c.get_database_backend(), sql, values)
}

/// Writes a notification in the caller's write transaction, after the content rules (a
/// breach is `INVALID_ARGUMENT` naming the field, and nothing is written). It is queued
/// only if that transaction commits: a rolled-back change notifies nobody.
pub async fn enqueue(txn: &WriteTxn, n: NewNotification) -> Result<Sequence, ApiError> {
    let built = n.build()?;
    insert(txn, &built).await
}

/// As [`enqueue`] for the notices of one change (one per channel, say), in one INSERT
/// deferred (see [`WriteTxn::defer`]): with the change's other tail statements, not a
/// hand-off of its own; a failure of it fails the change's commit. All pass the content
/// rules or none is written.
pub async fn enqueue_all(txn: &WriteTxn, ns: Vec<NewNotification>) -> Result<(), ApiError> {
    let built = ns
        .iter()
        .map(NewNotification::build)
        .collect::<Result<Vec<_>, _>>()?;
    if built.is_empty() {
        return Ok(());
    }
    let (sql, values) = insert_sql(&built, txn.now_micros(), false);
    txn.defer(stmt(txn, &sql, values)).await.map_err(db_error)
}

/// Writes an already built notification (the reminders build theirs when they fire).
pub(crate) async fn insert(txn: &WriteTxn, b: &Built) -> Result<Sequence, ApiError> {
    let seqs = insert_all(txn, std::slice::from_ref(b)).await?;
    seqs.into_iter()
        .next()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no notification written")))
}

async fn insert_all(txn: &WriteTxn, bs: &[Built]) -> Result<Vec<Sequence>, ApiError> {
    if bs.is_empty() {
        return Ok(vec![]);
    }
    let (sql, values) = insert_sql(bs, txn.now_micros(), true);
    returned_seqs(txn, sql, values).await
}

/// Runs an INSERT that returns the `seq` of each row it wrote; the sequences, in order.
pub(crate) async fn returned_seqs(
    txn: &WriteTxn,
    sql: String,
    values: Vec<Value>,
) -> Result<Vec<Sequence>, ApiError> {
    let rows = txn
        .query_all_raw(stmt(txn, &sql, values))
        .await
        .map_err(db_error)?;
    let mut seqs = rows
        .iter()
        .map(|r| r.try_get::<i64>("", "seq").map(Sequence))
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?;
    seqs.sort();
    Ok(seqs)
}

/// The INSERT of `bs` (`RETURNING seq` if `returning`), its parameters from `$1`. Each row's
/// sequence is the last one written plus its place, read in the statement itself: no
/// SELECT before it, and no gap, as the write turn serialises every writer of the table
/// (one statement also reads its own snapshot, so the rows cannot collide).
pub(crate) fn insert_sql(bs: &[Built], now: i64, returning: bool) -> (String, Vec<Value>) {
    const PER_ROW: usize = 13;
    let mut rows = Vec::with_capacity(bs.len());
    let mut values: Vec<Value> = Vec::with_capacity(bs.len() * PER_ROW);
    for (i, b) in bs.iter().enumerate() {
        let ps = (0..PER_ROW)
            .map(|k| format!("${}", 1 + i * PER_ROW + k))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(format!(
            "SELECT last.seq + {}, 1, {ps}, 'QUEUED', '', 0, CAST(NULL AS BIGINT), \
             CAST(NULL AS BIGINT), CAST(NULL AS BIGINT) \
             FROM (SELECT COALESCE(MAX(seq), 0) AS seq FROM notification) AS last",
            i + 1
        ));
        values.extend([
            b.recipient.kind().into(),
            b.recipient.id().into(),
            b.recipient.name().into(),
            b.channel.as_str().into(),
            b.address.clone().into(),
            b.resource.clone().into(),
            b.reference.clone().into(),
            b.office.as_stored().into(),
            b.template.clone().into(),
            b.subject.clone().into(),
            b.text.clone().into(),
            now.into(),
            now.into(),
        ]);
    }
    (
        format!(
            "INSERT INTO notification (seq, version, recipient_kind, recipient_id, \
             recipient_name, channel, address, resource, reference, office, template, subject, \
             body, queued_us, next_attempt_us, state, failure_reason, attempts, sent_us, \
             delivered_us, failed_us) {}{}",
            rows.join(" UNION ALL "),
            if returning { " RETURNING seq" } else { "" }
        ),
        values,
    )
}

/// Rows read by `sql` (which selects [`COLUMNS`]).
pub(crate) async fn query(
    c: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<Versioned<Notification>>, ApiError> {
    let rows = Row::find_by_statement(stmt(c, sql, values))
        .all(c)
        .await
        .map_err(db_error)?;
    rows.into_iter().map(Row::into_domain).collect()
}

/// One notification.
pub async fn get(
    c: &impl ConnectionTrait,
    seq: Sequence,
) -> Result<Option<Versioned<Notification>>, ApiError> {
    Ok(query(
        c,
        &format!("SELECT {COLUMNS} FROM notification WHERE seq = $1"),
        vec![seq.0.into()],
    )
    .await?
    .pop())
}

/// The notifications of a gateway's channel after `after`, not yet delivered or failed,
/// in sequence order.
pub(crate) async fn for_gateway(
    c: &impl ConnectionTrait,
    channel: Channel,
    after: i64,
    limit: i64,
) -> Result<Vec<Notification>, ApiError> {
    Ok(query(
        c,
        &format!(
            "SELECT {COLUMNS} FROM notification WHERE channel = $1 AND seq > $2 \
             AND state IN ('QUEUED', 'SENT') ORDER BY seq LIMIT $3"
        ),
        vec![channel.as_str().into(), after.into(), limit.into()],
    )
    .await?
    .into_iter()
    .map(|v| v.value)
    .collect())
}

/// The change path's view of the notification table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Notifications;

impl Repository for Notifications {
    type Resource = Notification;
    type Id = Sequence;
    const KIND: &'static str = "notification";

    fn name(&self, id: &Sequence) -> String {
        id.name()
    }

    async fn load(
        &self,
        txn: &WriteTxn,
        id: &Sequence,
    ) -> Result<Option<Versioned<Notification>>, ApiError> {
        get(txn, *id).await
    }

    async fn save(
        &self,
        txn: &WriteTxn,
        id: &Sequence,
        version: i64,
        n: &Notification,
    ) -> Result<bool, ApiError> {
        save(txn, *id, version, n).await
    }
}

/// Writes the delivery fields of `n` if it is still at `version`.
pub(crate) async fn save(
    txn: &WriteTxn,
    id: Sequence,
    version: i64,
    n: &Notification,
) -> Result<bool, ApiError> {
    let r = txn
        .execute_raw(stmt(
            txn,
            "UPDATE notification SET version = version + 1, state = $1, failure_reason = $2, \
             attempts = $3, next_attempt_us = $4, sent_us = $5, delivered_us = $6, \
             failed_us = $7 WHERE seq = $8 AND version = $9",
            [
                n.state.as_str().into(),
                n.failure_reason.clone().into(),
                n.attempts.into(),
                n.next_attempt_us.into(),
                n.sent_us.into(),
                n.delivered_us.into(),
                n.failed_us.into(),
                id.0.into(),
                version.into(),
            ],
        ))
        .await
        .map_err(db_error)?;
    Ok(r.rows_affected() == 1)
}
