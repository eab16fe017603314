//! The calendar's changes: `calendar_changes (seq, kind, doc, actor, actor_role, reason,
//! time_us)`, the change itself a versioned JSON document (`{"schema": 1, "change": …}`),
//! with a gap-free sequence taken under the write turn.

use mosharekat_calendar::Change;
use mosharekat_platform::db::{WriteTxn, db_error};
use mosharekat_platform::error::ApiError;
use sea_orm::{ConnectionTrait, FromQueryResult};
use serde::{Deserialize, Serialize};

use super::{corrupt, stmt};
use crate::calendar::CalendarChange;

/// The schema of the stored document written today.
const SCHEMA: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Doc {
    schema: u32,
    #[serde(flatten)]
    change: Change,
}

#[derive(Debug, FromQueryResult)]
struct Row {
    seq: i64,
    doc: String,
    actor: String,
    actor_role: String,
    reason: String,
    time_us: i64,
}

impl Row {
    fn decode(self) -> Result<CalendarChange, ApiError> {
        let doc: Doc = serde_json::from_str(&self.doc)
            .map_err(|_| corrupt("calendar change", &self.seq.to_string()))?;
        Ok(CalendarChange {
            seq: self.seq,
            change: doc.change,
            actor: self.actor,
            actor_role: self.actor_role,
            reason: self.reason,
            time_us: self.time_us,
        })
    }
}

pub async fn last_seq<C: ConnectionTrait>(c: &C) -> Result<i64, ApiError> {
    let r = c
        .query_one_raw(stmt(
            c,
            "SELECT COALESCE(MAX(seq), 0) AS last FROM calendar_changes",
            [],
        ))
        .await
        .map_err(db_error)?;
    match r {
        Some(r) => r.try_get("", "last").map_err(db_error),
        None => Ok(0),
    }
}

/// Appends `change` as the next sequence, in the caller's transaction; returns it.
pub async fn append(
    txn: &WriteTxn,
    change: &Change,
    actor: &str,
    actor_role: &str,
    reason: &str,
    time_us: i64,
) -> Result<i64, ApiError> {
    let seq = last_seq(txn).await? + 1;
    let doc = serde_json::to_string(&Doc {
        schema: SCHEMA,
        change: change.clone(),
    })
    .map_err(|e| ApiError::internal(anyhow::anyhow!("a calendar change does not encode: {e}")))?;
    txn.execute_raw(stmt(
        txn,
        "INSERT INTO calendar_changes (seq, kind, doc, actor, actor_role, reason, time_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            seq.into(),
            change.kind().into(),
            doc.into(),
            actor.into(),
            actor_role.into(),
            reason.into(),
            time_us.into(),
        ],
    ))
    .await
    .map_err(db_error)?;
    Ok(seq)
}

/// The changes after `after`, in order, at most `limit`.
pub async fn after<C: ConnectionTrait>(
    c: &C,
    after: i64,
    limit: u64,
) -> Result<Vec<CalendarChange>, ApiError> {
    Row::find_by_statement(stmt(
        c,
        "SELECT seq, doc, actor, actor_role, reason, time_us FROM calendar_changes \
         WHERE seq > $1 ORDER BY seq LIMIT $2",
        [after.into(), (limit as i64).into()],
    ))
    .all(c)
    .await
    .map_err(db_error)?
    .into_iter()
    .map(Row::decode)
    .collect()
}

/// Every change, in order (they are few: a year's announcements and closures).
pub async fn all<C: ConnectionTrait>(c: &C) -> Result<Vec<CalendarChange>, ApiError> {
    after(c, 0, i64::MAX as u64).await
}
