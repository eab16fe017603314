//! Persistence: one URL, SQLite or PostgreSQL, set up the way judicial records need.
//!
//! - SQLite: WAL, `synchronous=FULL`, `busy_timeout`, foreign keys; every write
//!   transaction is `BEGIN IMMEDIATE`, so a transaction that reads then writes waits for
//!   the write lock instead of failing with `SQLITE_BUSY`.
//! - PostgreSQL: pooled; every write transaction first takes a transaction-scoped advisory
//!   lock, which serialises writers across replicas (the audit chain and event sequences
//!   are gap-free because of it).
//! - Migrations run under the same lock, so replicas starting together both succeed.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::ConnectOptions as _;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, RuntimeErr, SqlErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::error::ApiError;

/// Pool settings.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub busy_timeout: Duration,
    /// Key of the advisory lock that serialises writers on PostgreSQL.
    pub lock_key: i64,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(10),
            lock_key: 0x6d6f_7368,
        }
    }
}

/// A service's database.
#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    lock_key: i64,
    /// Writers queue here, in the process, before they ask the database for its write
    /// lock: SQLite's busy handler otherwise polls with sleeps of up to 100 ms, and on
    /// PostgreSQL every waiter would hold a pooled connection that readers need.
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction holding this process's write turn until it commits or rolls back.
/// Derefs to the transaction, and is a [`ConnectionTrait`] itself. Dropped without a
/// commit (an error, an early answer), it rolls back before it gives the turn up: the
/// database's own lock is only released by the rollback, and the next writer should not
/// wait for it while holding a pooled connection.
#[derive(Debug)]
pub struct WriteTxn {
    inner: Option<(DatabaseTransaction, tokio::sync::OwnedMutexGuard<()>)>,
}

impl WriteTxn {
    fn txn(&self) -> &DatabaseTransaction {
        match &self.inner {
            Some((txn, _)) => txn,
            // Only `commit`/`rollback` (which consume the value) and `drop` take it.
            None => unreachable!("a WriteTxn is used after it ended"),
        }
    }

    pub async fn commit(mut self) -> Result<(), DbErr> {
        match self.inner.take() {
            Some((txn, _turn)) => txn.commit().await,
            None => Ok(()),
        }
    }

    pub async fn rollback(mut self) -> Result<(), DbErr> {
        match self.inner.take() {
            Some((txn, _turn)) => txn.rollback().await,
            None => Ok(()),
        }
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        if let Some((txn, turn)) = self.inner.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move {
                        let _ = txn.rollback().await;
                        drop(turn);
                    });
                }
                Err(_) => drop((txn, turn)),
            }
        }
    }
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        self.txn()
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.txn().get_database_backend()
    }
    async fn execute_raw(&self, stmt: Statement) -> Result<sea_orm::ExecResult, DbErr> {
        self.txn().execute_raw(stmt).await
    }
    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        self.txn().execute_unprepared(sql).await
    }
    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<sea_orm::QueryResult>, DbErr> {
        self.txn().query_one_raw(stmt).await
    }
    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        self.txn().query_all_raw(stmt).await
    }
}

/// The database URL with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Db {
    pub async fn connect(url: &str, opts: &DbOptions) -> anyhow::Result<Self> {
        let conn = if url.starts_with("sqlite:") {
            let mut o = SqliteConnectOptions::from_str(url)
                .map_err(|e| anyhow::anyhow!("bad SQLite URL: {e}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(opts.busy_timeout)
                .foreign_keys(true);
            o = o.disable_statement_logging();
            if let Some(dir) = o.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(o)
                .await?;
            sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let o = PgConnectOptions::from_str(url)
                .map_err(|e| anyhow::anyhow!("bad PostgreSQL URL: {e}"))?
                .disable_statement_logging();
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(opts.acquire_timeout)
                // Connect on demand: a database that is down at start-up is reported by
                // health, and the service recovers by itself when it returns.
                .connect_lazy_with(o);
            sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
        } else {
            anyhow::bail!("database URL must start with sqlite: or postgres://");
        };
        Ok(Self {
            conn,
            lock_key: opts.lock_key,
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Begins a write transaction, serialised with every other writer of this database:
    /// first in this process, then (the database's lock) across processes.
    pub async fn begin_write(&self) -> Result<WriteTxn, ApiError> {
        let turn = self.write_gate.clone().lock_owned().await;
        let txn = match self.backend() {
            DbBackend::Sqlite => self
                .conn
                .begin_with_options(TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..Default::default()
                })
                .await
                .map_err(db_error)?,
            _ => {
                let txn = self.conn.begin().await.map_err(db_error)?;
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_advisory_xact_lock($1)",
                    [self.lock_key.into()],
                ))
                .await
                .map_err(db_error)?;
                txn
            }
        };
        Ok(WriteTxn {
            inner: Some((txn, turn)),
        })
    }

    /// Whether the database answers now.
    pub async fn ping(&self) -> bool {
        let q = self.conn.execute_unprepared("SELECT 1");
        matches!(
            tokio::time::timeout(Duration::from_secs(2), q).await,
            Ok(Ok(_))
        )
    }

    /// Applies `M`'s migrations under the write lock.
    pub async fn migrate<M: MigratorTrait>(&self) -> anyhow::Result<()> {
        let txn = self
            .begin_write()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        M::up(&*txn, None).await?;
        txn.commit().await?;
        Ok(())
    }

    /// A statement with `$1…` placeholders (they work on both backends).
    pub fn stmt<I>(&self, sql: &str, values: I) -> Statement
    where
        I: IntoIterator<Item = sea_orm::Value>,
    {
        Statement::from_sql_and_values(self.backend(), sql, values)
    }
}

/// Connects to a service's database as configured and applies its migrations `M`.
pub async fn connect_and_migrate<M: MigratorTrait>(
    server: &crate::config::ServerArgs,
    service: &str,
) -> anyhow::Result<Db> {
    let url = server.database_url()?;
    let db = Db::connect(
        url,
        &DbOptions {
            max_connections: server.db_max_connections,
            ..Default::default()
        },
    )
    .await?;
    db.migrate::<M>().await?;
    tracing::info!(service, database = %redact_url(url), "database migrated");
    Ok(db)
}

/// Commits a write transaction.
pub async fn commit(txn: WriteTxn) -> Result<(), ApiError> {
    txn.commit().await.map_err(db_error)
}

/// Refuses with `ABORTED` when the caller sent an etag and it is not the resource's
/// current one (`version`); an empty etag means "whatever the current version is".
pub fn check_etag(sent: &str, version: i64, name: &str) -> Result<(), ApiError> {
    if !sent.is_empty() && sent != version.to_string() {
        return Err(ApiError::stale(name));
    }
    Ok(())
}

/// Whether `e` is a unique-constraint violation.
pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

fn sqlx_error(e: &DbErr) -> Option<&sea_orm::sqlx::Error> {
    match e {
        DbErr::Conn(RuntimeErr::SqlxError(s))
        | DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s)) => Some(s.as_ref()),
        _ => None,
    }
}

/// Maps a database error to what the caller should see: the database being unreachable
/// or busy is `UNAVAILABLE` (retryable), a serialisation conflict `ABORTED`, anything else
/// a logged, opaque `INTERNAL`.
pub fn db_error(e: DbErr) -> ApiError {
    use sea_orm::sqlx::Error as X;
    if matches!(e, DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) {
        return ApiError::Unavailable("the database is unavailable".into());
    }
    if let Some(x) = sqlx_error(&e) {
        match x {
            X::Io(_)
            | X::Tls(_)
            | X::Protocol(_)
            | X::PoolTimedOut
            | X::PoolClosed
            | X::WorkerCrashed => {
                return ApiError::Unavailable("the database is unavailable".into());
            }
            X::Database(d) => match d.code().as_deref() {
                // SQLITE_BUSY and its extended codes, SQLITE_LOCKED.
                Some("5" | "261" | "517" | "773" | "6") => {
                    return ApiError::Unavailable("the database is busy".into());
                }
                // serialization_failure, deadlock_detected
                Some("40001" | "40P01") => {
                    return ApiError::Aborted("a concurrent change conflicted; retry".into());
                }
                // admin_shutdown, crash_shutdown, cannot_connect_now
                Some("57P01" | "57P02" | "57P03") => {
                    return ApiError::Unavailable("the database is unavailable".into());
                }
                _ => {}
            },
            _ => {}
        }
    }
    ApiError::internal(e)
}

/// The current time in microseconds since the Unix epoch, as stored.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

pub fn to_timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// A timestamp from a request, as stored micros; `None` when out of the range people use
/// (years 1900 to 2200) or malformed.
pub fn from_timestamp(t: &prost_types::Timestamp) -> Option<i64> {
    const MIN: i64 = -2_208_988_800; // 1900-01-01
    const MAX: i64 = 7_258_118_400; // 2200-01-01
    if !(MIN..MAX).contains(&t.seconds) || !(0..1_000_000_000).contains(&t.nanos) {
        return None;
    }
    Some(t.seconds * 1_000_000 + i64::from(t.nanos) / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write transaction dropped without a commit (an error path) is rolled back, and
    /// the next writer gets its turn; on both databases.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_write_rolls_back_and_passes_the_turn() {
        for backend in [
            crate::testing::Backend::Sqlite,
            crate::testing::Backend::Postgres,
        ] {
            let t = crate::testing::TestDb::new(backend).await.unwrap();
            let db = Db::connect(&t.url, &DbOptions::default()).await.unwrap();
            db.conn()
                .execute_unprepared("CREATE TABLE t (n BIGINT NOT NULL)")
                .await
                .unwrap();
            let txn = db.begin_write().await.unwrap();
            txn.execute_raw(db.stmt("INSERT INTO t (n) VALUES ($1)", [1i64.into()]))
                .await
                .unwrap();
            drop(txn);
            let next = tokio::time::timeout(Duration::from_secs(10), db.begin_write())
                .await
                .expect("the next writer gets its turn")
                .unwrap();
            next.execute_raw(db.stmt("INSERT INTO t (n) VALUES ($1)", [2i64.into()]))
                .await
                .unwrap();
            next.commit().await.unwrap();
            let rows = db
                .conn()
                .query_all_raw(db.stmt("SELECT n FROM t", []))
                .await
                .unwrap();
            let ns: Vec<i64> = rows.iter().map(|r| r.try_get("", "n").unwrap()).collect();
            assert_eq!(ns, vec![2], "{backend:?}");
        }
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn timestamps_round_trip() {
        let t = prost_types::Timestamp {
            seconds: 1_742_467_200,
            nanos: 123_456_000,
        };
        assert_eq!(to_timestamp(from_timestamp(&t).unwrap()), t);
        let neg = to_timestamp(-1);
        assert_eq!((neg.seconds, neg.nanos), (-1, 999_999_000));
        assert_eq!(
            from_timestamp(&prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 0
            }),
            None
        );
        assert_eq!(
            from_timestamp(&prost_types::Timestamp {
                seconds: 0,
                nanos: -1
            }),
            None
        );
    }
}
