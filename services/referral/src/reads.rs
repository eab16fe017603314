//! Who read what (domain.md): every filing or referral a call hands to anyone but its own
//! institution is recorded — reader, role, time, resource, trace id — durably before the
//! answer leaves, in one statement per call (a List page is one INSERT of all its rows),
//! the calls of a moment committed together; auditors list the record per resource and
//! per reader.

use mosharekat_platform::auth::Role;
use mosharekat_platform::clock::Clock;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::{Db, commit, db_error};
use mosharekat_platform::error::ApiError;
use mosharekat_platform::pagination;
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement, TransactionTrait, Value};
use tokio::sync::{mpsc, oneshot};

use crate::names::InstitutionId;

/// Whether `ctx` reading a record of `owner` is recorded: always, but for the owning
/// institution reading its own.
pub fn is_recorded(ctx: &CallContext, owner: &InstitutionId) -> bool {
    !(ctx.role() == Role::Institution
        && ctx
            .principal
            .institution
            .as_deref()
            .is_some_and(|own| owner.as_str() == own))
}

/// The reads of one call: what its rows share, and the resources it returned.
#[derive(Debug)]
struct Reads {
    time_us: i64,
    reader: String,
    role: &'static str,
    on_behalf_of: String,
    method: String,
    trace_id: String,
    resources: Vec<String>,
}

#[derive(Debug)]
struct Pending {
    reads: Reads,
    done: oneshot::Sender<Result<(), ApiError>>,
}

/// Calls waiting at most; beyond it, callers wait to queue (back-pressure).
const QUEUE: usize = 4096;
/// Rows committed together at most.
const BATCH_ROWS: usize = 5000;

/// The read log's writer: each call's reads become one INSERT, and the calls that queue
/// while a commit is under way are committed together in the next one (a group commit),
/// so that many readers at once share one disk flush instead of taking turns. A call is
/// answered only once its reads are committed.
#[derive(Debug, Clone)]
pub struct ReadLog {
    queue: mpsc::Sender<Pending>,
    clock: Clock,
}

impl ReadLog {
    /// Starts the writer on `db`; it stops when the last clone of the log is dropped.
    pub fn start(db: Db) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let clock = db.clock().clone();
        tokio::spawn(write_queued(db, rx));
        Self { queue, clock }
    }

    /// Records that `ctx` read `resources` (`filings/{id}`, `referrals/{id}`; a page at
    /// most), and returns once that is committed: an answer whose reads are not recorded
    /// is not sent.
    pub async fn record(&self, ctx: &CallContext, resources: &[&str]) -> Result<(), ApiError> {
        if resources.is_empty() {
            return Ok(());
        }
        let (done, committed) = oneshot::channel();
        let reads = Reads {
            time_us: self.clock.now_micros(),
            reader: ctx.principal.subject.clone(),
            role: ctx.role().as_str(),
            on_behalf_of: ctx.principal.on_behalf_of.clone().unwrap_or_default(),
            method: ctx.method.clone(),
            trace_id: ctx.trace_id.clone(),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
        };
        let stopped = || ApiError::Unavailable("the read log is not taking records".into());
        self.queue
            .send(Pending { reads, done })
            .await
            .map_err(|_| stopped())?;
        committed.await.map_err(|_| stopped())?
    }
}

async fn write_queued(db: Db, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut rows = first.reads.resources.len();
        let mut batch = vec![first];
        while rows < BATCH_ROWS
            && let Ok(p) = rx.try_recv()
        {
            rows += p.reads.resources.len();
            batch.push(p);
        }
        let r = write(&db, &batch).await;
        for p in batch {
            let _ = p.done.send(match &r {
                Ok(()) => Ok(()),
                // Every waiter is told what the storage said (the cause is logged once).
                Err(ApiError::Storage(fault)) => Err(ApiError::Storage(*fault)),
                Err(_) => Err(ApiError::Unavailable(
                    "the read could not be recorded".into(),
                )),
            });
        }
        if let Err(e) = r {
            tracing::warn!(error = %e, rows, "reads not recorded: their answers are refused");
        }
    }
}

async fn write(db: &Db, batch: &[Pending]) -> Result<(), ApiError> {
    match db.backend() {
        // SQLite has one writer: take the write turn like every other write, rather than
        // meet its busy handler.
        DbBackend::Sqlite => {
            let txn = db.begin_write().await?;
            insert(&txn, batch).await?;
            commit(txn).await
        }
        // PostgreSQL: a transaction of its own. The sequence needs none of the lock the
        // other writers share; the commit is durable (synchronous_commit) when it returns.
        _ => {
            let txn = db.conn().begin().await.map_err(db_error)?;
            insert(&txn, batch).await?;
            txn.commit().await.map_err(db_error)
        }
    }
}

/// One INSERT per call: what its rows share is bound once ($1–$6), each row adds its
/// resource.
async fn insert<C: ConnectionTrait>(c: &C, batch: &[Pending]) -> Result<(), ApiError> {
    for p in batch {
        let r = &p.reads;
        let mut sql = String::from(
            "INSERT INTO read_log (time_us, reader, role, on_behalf_of, method, trace_id, resource) VALUES ",
        );
        let mut values: Vec<Value> = vec![
            r.time_us.into(),
            r.reader.clone().into(),
            r.role.into(),
            r.on_behalf_of.clone().into(),
            r.method.clone().into(),
            r.trace_id.clone().into(),
        ];
        for (i, resource) in r.resources.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("($1, $2, $3, $4, $5, $6, ${})", i + 7));
            values.push(resource.clone().into());
        }
        c.execute_raw(Statement::from_sql_and_values(
            c.get_database_backend(),
            sql,
            values,
        ))
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

/// One read, as recorded.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct ReadRecord {
    pub seq: i64,
    pub time_us: i64,
    pub reader: String,
    pub role: String,
    pub on_behalf_of: String,
    pub method: String,
    pub resource: String,
    pub trace_id: String,
}

/// The reads recorded, oldest first, of one resource, by one reader, or both (an empty
/// one is any): a page of `size` after `page_token`, and the next page's token.
pub async fn list(
    db: &Db,
    resource: &str,
    reader: &str,
    size: u64,
    page_token: &str,
) -> Result<(Vec<ReadRecord>, String), ApiError> {
    let fp = pagination::fingerprint(&["reads", resource, reader]);
    let after: i64 = pagination::decode(page_token, &fp, "page_token")?.unwrap_or(0);
    let mut conds = vec!["seq > $1".to_owned()];
    let mut values: Vec<Value> = vec![after.into()];
    for (col, v) in [("resource", resource), ("reader", reader)] {
        if !v.is_empty() {
            values.push(v.into());
            conds.push(format!("{col} = ${}", values.len()));
        }
    }
    values.push((size as i64 + 1).into());
    let sql = format!(
        "SELECT seq, time_us, reader, role, on_behalf_of, method, resource, trace_id FROM read_log \
         WHERE {} ORDER BY seq LIMIT ${}",
        conds.join(" AND "),
        values.len()
    );
    let mut rows = ReadRecord::find_by_statement(db.stmt(&sql, values))
        .all(db.conn())
        .await
        .map_err(db_error)?;
    let next_page_token = pagination::next_page(&mut rows, size, &fp, |r| r.seq);
    Ok((rows, next_page_token))
}
