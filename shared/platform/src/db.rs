//! Persistence: one URL, SQLite or PostgreSQL, set up the way judicial records need.
//!
//! - SQLite: WAL, `synchronous=FULL`, `busy_timeout`, foreign keys; every write
//!   transaction is `BEGIN IMMEDIATE`, so a transaction that reads then writes waits for
//!   the write lock instead of failing with `SQLITE_BUSY`.
//! - PostgreSQL: pooled; every write transaction first takes a transaction-scoped advisory
//!   lock, which serialises writers across replicas (the audit chain and event sequences
//!   are gap-free because of it).
//! - Migrations run under the same lock, so replicas starting together both succeed.
//! - A connection is never handed out again in a state its driver does not know: after a
//!   failed COMMIT, SQLite may already have rolled the transaction back itself (disk full,
//!   I/O error), so the driver's ROLLBACK fails and its count of open transactions stays at
//!   one; reused, that connection would run every later "transaction" as a savepoint of a
//!   transaction that never commits. Such a connection is closed on release, and after
//!   any storage fault every connection opened before it is replaced on its next acquire.
//! - Storage faults are named (`STORAGE_FULL`, `STORAGE_READ_ONLY`, …), and the service's
//!   health follows whether a write can be made: after a fault, a probe write decides.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

use crate::clock::Clock;
use crate::error::{ApiError, StorageFault};

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

/// What the service knows of its database's storage: whether the last write could be
/// made, and when a storage fault was last seen (the pool's hooks read it).
#[derive(Debug)]
struct StorageState {
    epoch: Instant,
    /// Microseconds after `epoch` of the last storage fault or recovery, plus one; 0 for none.
    last_fault_us: AtomicU64,
    writable: AtomicBool,
    changed: tokio::sync::Notify,
}

impl StorageState {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_fault_us: AtomicU64::new(0),
            writable: AtomicBool::new(true),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Records the outcome of a database call made for a write.
    fn observe<T>(&self, r: &Result<T, DbErr>) {
        if let Err(e) = r
            && let Some(fault) = classify(e).filter(|f| f.is_of_storage())
        {
            let at = self.epoch.elapsed().as_micros() as u64 + 1;
            self.last_fault_us.store(at, Ordering::Release);
            if self.writable.swap(false, Ordering::AcqRel) {
                tracing::warn!(?fault, "the database cannot take writes");
                self.changed.notify_waiters();
            }
        }
    }

    /// Records that a probe write committed. Every connection opened until now is
    /// replaced as if a fault had just been seen: one SQLite opened while its file could
    /// not be written fell back to read-only, and stays so after the file is writable.
    fn recovered(&self) {
        let at = self.epoch.elapsed().as_micros() as u64 + 1;
        self.last_fault_us.store(at, Ordering::Release);
        self.writable.store(true, Ordering::Release);
    }

    /// Whether a pooled connection of age `age` was opened before the last storage fault:
    /// its state (an open transaction the driver has lost count of, a file handle of a
    /// database since made read-only) is not to be trusted.
    fn predates_last_fault(&self, age: Duration) -> bool {
        let at = self.last_fault_us.load(Ordering::Acquire);
        if at == 0 {
            return false;
        }
        let since = self
            .epoch
            .elapsed()
            .saturating_sub(Duration::from_micros(at - 1));
        age >= since
    }
}

/// A service's database.
#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    storage: Arc<StorageState>,
    lock_key: i64,
    /// Writers queue here, in the process, before they ask the database for its write
    /// lock: SQLite's busy handler otherwise polls with sleeps of up to 100 ms, and on
    /// PostgreSQL every waiter would hold a pooled connection that readers need.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    clock: Clock,
}

/// A write transaction holding this process's write turn until it commits or rolls back.
/// Derefs to the transaction, and is a [`ConnectionTrait`] itself. Dropped without a
/// commit (an error, an early answer), it rolls back before it gives the turn up: the
/// database's own lock is only released by the rollback, and the next writer should not
/// wait for it while holding a pooled connection.
#[derive(Debug)]
pub struct WriteTxn {
    inner: Option<(DatabaseTransaction, tokio::sync::OwnedMutexGuard<()>)>,
    storage: Arc<StorageState>,
    clock: Clock,
}

impl WriteTxn {
    /// The clock of the database this transaction writes to.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Now, by that clock, in stored microseconds.
    pub fn now_micros(&self) -> i64 {
        self.clock.now_micros()
    }

    fn txn(&self) -> &DatabaseTransaction {
        match &self.inner {
            Some((txn, _)) => txn,
            // Only `commit`/`rollback` (which consume the value) and `drop` take it.
            None => unreachable!("a WriteTxn is used after it ended"),
        }
    }

    /// Commits. An error means nothing of the transaction is durable (the caller must
    /// not acknowledge it); the connection is then rolled back or closed, never reused
    /// inside a transaction.
    pub async fn commit(mut self) -> Result<(), DbErr> {
        match self.inner.take() {
            Some((txn, _turn)) => {
                let r = txn.commit().await;
                self.storage.observe(&r);
                r
            }
            None => Ok(()),
        }
    }

    pub async fn rollback(mut self) -> Result<(), DbErr> {
        match self.inner.take() {
            Some((txn, _turn)) => txn.rollback().await,
            None => Ok(()),
        }
    }

    fn observed<T>(&self, r: Result<T, DbErr>) -> Result<T, DbErr> {
        self.storage.observe(&r);
        r
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
        self.observed(self.txn().execute_raw(stmt).await)
    }
    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        self.observed(self.txn().execute_unprepared(sql).await)
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
        let storage = Arc::new(StorageState::new());
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
            let pool = guarded(SqlitePoolOptions::new(), &storage)
                .max_connections(opts.max_connections)
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(o)
                .await?;
            sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let o = PgConnectOptions::from_str(url)
                .map_err(|e| anyhow::anyhow!("bad PostgreSQL URL: {e}"))?
                .disable_statement_logging();
            let pool = guarded(PgPoolOptions::new(), &storage)
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
            storage,
            lock_key: opts.lock_key,
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
            clock: Clock::system(),
        })
    }

    /// This database with `clock` as the time source of everything written through it.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The time source of this service (see [`crate::clock`]).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Now, by this database's clock, in stored microseconds.
    pub fn now_micros(&self) -> i64 {
        self.clock.now_micros()
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
        let begun = self.begin_locked().await;
        self.storage.observe(&begun);
        Ok(WriteTxn {
            inner: Some((begun.map_err(db_error)?, turn)),
            storage: self.storage.clone(),
            clock: self.clock.clone(),
        })
    }

    async fn begin_locked(&self) -> Result<DatabaseTransaction, DbErr> {
        Ok(match self.backend() {
            DbBackend::Sqlite => {
                self.conn
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..Default::default()
                    })
                    .await?
            }
            _ => {
                let txn = self.conn.begin().await?;
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_advisory_xact_lock($1)",
                    [self.lock_key.into()],
                ))
                .await?;
                txn
            }
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

    /// Whether the last write could be made (no storage fault since, or a probe write
    /// has succeeded after it).
    pub fn writable(&self) -> bool {
        self.storage.writable.load(Ordering::Acquire)
    }

    /// Resolves when writability may have changed (a write just met a storage fault).
    pub async fn storage_changed(&self) {
        self.storage.changed.notified().await;
    }

    /// Whether the database can serve: it answers, and, after a storage fault, a probe
    /// write (a small row of the platform's own, rewritten) commits again.
    pub async fn healthy(&self) -> bool {
        if self.writable() {
            return self.ping().await;
        }
        let probe = async {
            if self.backend() == DbBackend::Sqlite {
                // The write-ahead log only shrinks at a checkpoint, and by default that
                // waits for 1000 pages: on a full disk, fold it back into the database
                // and truncate it, so that the room it held serves the next writes.
                let _ = self
                    .conn
                    .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                    .await;
            }
            let txn = self.begin_write().await?;
            txn.execute_raw(self.stmt(
                "UPDATE write_probe SET at_us = $1, pad = $2 WHERE id = 1",
                [now_micros().into(), vec![0u8; WRITE_PROBE_BYTES].into()],
            ))
            .await
            .map_err(db_error)?;
            commit(txn).await
        };
        match tokio::time::timeout(Duration::from_secs(2), probe).await {
            Ok(Ok(())) => {
                self.storage.recovered();
                tracing::info!("a probe write committed: the database takes writes again");
                true
            }
            _ => false,
        }
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

/// The size of the probe write: enough pages that a disk with no room for a real write
/// does not pass it on space the write-ahead log already holds.
const WRITE_PROBE_BYTES: usize = 64 * 1024;

/// Pool hooks that keep connections of unknown state out of use: one released inside a
/// transaction (after its queued rollback has run) is closed; one opened before the last
/// storage fault is replaced when next acquired.
fn guarded<DB: sea_orm::sqlx::Database>(
    opts: sea_orm::sqlx::pool::PoolOptions<DB>,
    storage: &Arc<StorageState>,
) -> sea_orm::sqlx::pool::PoolOptions<DB>
where
    DB::Connection: sea_orm::sqlx::Connection<Database = DB>,
{
    use sea_orm::sqlx::Connection as _;
    let before = storage.clone();
    opts.before_acquire(move |_conn, meta| {
        let stale = before.predates_last_fault(meta.age);
        Box::pin(async move { Ok(!stale) })
    })
    .after_release(|conn, _meta| {
        Box::pin(async move {
            if !conn.is_in_transaction() {
                return Ok(true);
            }
            // A dropped transaction's rollback may still be queued: let it run, then ask
            // again. Still inside one means the driver's count is off.
            conn.ping().await?;
            let clean = !conn.is_in_transaction();
            if !clean {
                tracing::warn!("a connection was released inside a transaction: closed");
            }
            Ok(clean)
        })
    })
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

/// The storage fault behind a database error, if it is one (not a bug, not a conflict).
pub fn classify(e: &DbErr) -> Option<StorageFault> {
    use sea_orm::sqlx::Error as X;
    if matches!(e, DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) {
        return Some(StorageFault::Unreachable);
    }
    let x = sqlx_error(e)?;
    match x {
        X::Io(io) if io.raw_os_error() == Some(28) => Some(StorageFault::Full), // ENOSPC
        X::Io(io) if io.raw_os_error() == Some(30) => Some(StorageFault::ReadOnly), // EROFS
        X::Io(_)
        | X::Tls(_)
        | X::Protocol(_)
        | X::PoolTimedOut
        | X::PoolClosed
        | X::WorkerCrashed => Some(StorageFault::Unreachable),
        X::Database(d) => {
            let code = d.code()?;
            if let Ok(n) = code.parse::<u32>() {
                // SQLite: the primary result code is the low byte of the extended one.
                return match n & 0xff {
                    13 => Some(StorageFault::Full),                   // SQLITE_FULL
                    8 => Some(StorageFault::ReadOnly),                // SQLITE_READONLY
                    10 | 11 | 14 | 26 => Some(StorageFault::Failing), // IOERR, CORRUPT, CANTOPEN, NOTADB
                    5 | 6 => Some(StorageFault::Busy),                // SQLITE_BUSY, SQLITE_LOCKED
                    _ => None,
                };
            }
            match code.as_ref() {
                // disk_full, insufficient_resources, out_of_memory
                "53100" | "53000" | "53200" => Some(StorageFault::Full),
                // read_only_sql_transaction (a standby, or default_transaction_read_only)
                "25006" => Some(StorageFault::ReadOnly),
                // io_error, data_corrupted, index_corrupted
                "58030" | "XX001" | "XX002" => Some(StorageFault::Failing),
                // admin_shutdown, crash_shutdown, cannot_connect_now, connection exceptions
                c if c.starts_with("57P") || c.starts_with("08") => Some(StorageFault::Unreachable),
                // lock_not_available
                "55P03" => Some(StorageFault::Busy),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Maps a database error to what the caller should see: a storage fault by its name
/// (`UNAVAILABLE` or, for a full disk, `RESOURCE_EXHAUSTED`, with its reason), a
/// serialisation conflict `ABORTED`, anything else a logged, opaque `INTERNAL`.
pub fn db_error(e: DbErr) -> ApiError {
    if let Some(fault) = classify(&e) {
        if fault.is_of_storage() {
            tracing::warn!(?fault, error = %e, "storage fault");
        }
        return ApiError::Storage(fault);
    }
    if let Some(sea_orm::sqlx::Error::Database(d)) = sqlx_error(&e)
        // serialization_failure, deadlock_detected
        && matches!(d.code().as_deref(), Some("40001" | "40P01"))
    {
        return ApiError::Aborted("a concurrent change conflicted; retry".into());
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
pub(crate) mod tests {
    use super::*;
    use crate::testing::PlatformTables;
    use tonic_types::StatusExt as _;

    /// The rule of the recovery (`faults::read_only_store_sqlite` shows it end to end): a
    /// probe's commit retires every pooled connection opened before it, those opened while
    /// the fault lasted too, which the fault's own mark does not retire.
    #[test]
    fn a_recovery_retires_the_connections_opened_during_the_fault() {
        let ago = |s| Duration::from_secs(s);
        let s = StorageState {
            epoch: Instant::now().checked_sub(ago(10)).unwrap(),
            ..StorageState::new()
        };
        assert!(
            !s.predates_last_fault(ago(3600)),
            "no fault: none is retired"
        );
        // A storage fault seen ten seconds ago (at the epoch).
        s.last_fault_us.store(1, Ordering::Release);
        s.writable.store(false, Ordering::Release);
        assert!(s.predates_last_fault(ago(20)), "opened before the fault");
        assert!(
            !s.predates_last_fault(ago(5)),
            "opened after the fault was seen"
        );
        s.recovered();
        assert!(s.writable.load(Ordering::Acquire));
        assert!(
            s.predates_last_fault(ago(5)),
            "opened while the fault lasted"
        );
        assert!(s.predates_last_fault(ago(20)));
    }

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

    /// A folder on its own small tmpfs, unmounted when dropped; `None` where mounting is
    /// not permitted (not root).
    struct SmallDisk {
        path: std::path::PathBuf,
        _dir: tempfile::TempDir,
    }

    impl SmallDisk {
        fn mount(size: &str) -> Option<Self> {
            let dir = tempfile::tempdir().ok()?;
            let path = dir.path().join("disk");
            std::fs::create_dir(&path).ok()?;
            let ok = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(&path)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            ok.then_some(Self { path, _dir: dir })
        }

        /// Fills what is left of the disk with one file, and returns its path.
        fn fill(&self) -> std::path::PathBuf {
            use std::io::Write;
            let filler = self.path.join("filler");
            let mut f = std::fs::File::create(&filler).unwrap();
            let chunk = vec![0u8; 16 * 1024];
            // Bounded by the disk's size: at most 64 MiB of tries.
            for _ in 0..4096 {
                if f.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = f.sync_all();
            filler
        }
    }

    impl Drop for SmallDisk {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.path)
                .status();
        }
    }

    /// SQLite on a full disk, then with room again: no write is acknowledged that is not
    /// durable, every failure is named (never INTERNAL), health follows, the next writes
    /// after the fault succeed and last, and no connection is left inside a transaction
    /// (an outside connection takes the write lock).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_loses_no_acknowledged_write() {
        let Some(disk) = SmallDisk::mount("1m") else {
            eprintln!("SKIP: mounting a tmpfs needs root");
            return;
        };
        let url = format!("sqlite://{}", disk.path.join("t.db").display());
        let opts = DbOptions {
            max_connections: 3,
            ..DbOptions::default()
        };
        let db = Db::connect(&url, &opts).await.unwrap();
        db.migrate::<PlatformTables>().await.unwrap();
        db.conn()
            .execute_unprepared("CREATE TABLE t (n BIGINT PRIMARY KEY, pad BLOB NOT NULL)")
            .await
            .unwrap();
        let write = |n: i64| {
            let db = db.clone();
            async move {
                let txn = db.begin_write().await?;
                txn.execute_raw(db.stmt(
                    "INSERT INTO t (n, pad) VALUES ($1, $2)",
                    [n.into(), vec![7u8; 6000].into()],
                ))
                .await
                .map_err(db_error)?;
                commit(txn).await
            }
        };
        let mut acked = Vec::new();
        for n in 0..10 {
            write(n).await.unwrap();
            acked.push(n);
        }
        let filler = disk.fill();
        let mut refused = std::collections::BTreeMap::<String, usize>::new();
        for n in 100..140 {
            match write(n).await {
                Ok(()) => acked.push(n),
                Err(e) => {
                    let s = e.to_status("t");
                    assert_ne!(s.code(), tonic::Code::Internal, "{e:?}");
                    let reason = s.get_error_details().error_info().map(|i| i.reason.clone());
                    *refused.entry(reason.unwrap_or_default()).or_default() += 1;
                }
            }
        }
        println!(
            "disk full: {} acknowledged, refused {refused:?}",
            acked.len() - 10
        );
        assert!(refused.contains_key("STORAGE_FULL"), "{refused:?}");
        assert!(!db.healthy().await, "not healthy while the disk is full");
        std::fs::remove_file(&filler).unwrap();
        for n in 200..220 {
            write(n)
                .await
                .expect("writes succeed once there is room again");
            acked.push(n);
        }
        assert!(db.healthy().await, "healthy again by itself");
        // No connection of this process holds a transaction open.
        let outside = Db::connect(&url, &DbOptions::default()).await.unwrap();
        let txn = tokio::time::timeout(Duration::from_secs(5), outside.begin_write())
            .await
            .expect("an outside connection takes the write lock")
            .unwrap();
        txn.rollback().await.unwrap();
        outside.conn().clone().close().await.unwrap();
        db.conn().clone().close().await.unwrap();
        // After a restart, every acknowledged write is there.
        let again = Db::connect(&url, &DbOptions::default()).await.unwrap();
        let rows = again
            .conn()
            .query_all_raw(again.stmt("SELECT n FROM t ORDER BY n", []))
            .await
            .unwrap();
        let stored: Vec<i64> = rows.iter().map(|r| r.try_get("", "n").unwrap()).collect();
        let missing: Vec<_> = acked.iter().filter(|n| !stored.contains(n)).collect();
        assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
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
