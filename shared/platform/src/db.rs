//! Persistence: one URL, SQLite or PostgreSQL, set up the way judicial records need.
//!
//! - SQLite: WAL, `synchronous=FULL`, `busy_timeout`, foreign keys; every write
//!   transaction is `BEGIN IMMEDIATE`, so a transaction that reads then writes waits for
//!   the write lock instead of failing with `SQLITE_BUSY`.
//! - PostgreSQL: pooled; every write transaction first takes a transaction-scoped advisory
//!   lock, which serialises writers across replicas (the audit chain and event sequences
//!   are gap-free because of it).
//! - Migrations run under the same lock, so replicas starting together both succeed.
//! - Group commit: writers that queue for their turn together share one transaction, each
//!   in its own savepoint, and one commit (see [`WriteGate`]); each is answered once the
//!   commit has made its write durable.
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
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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

mod deferred;

/// Pool settings.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub busy_timeout: Duration,
    /// Key of the advisory lock that serialises writers on PostgreSQL.
    pub lock_key: i64,
    /// How many writers may share one commit, and for how long.
    pub batch: BatchLimits,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(10),
            lock_key: 0x6d6f_7368,
            batch: BatchLimits::default(),
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
    /// lock (SQLite's busy handler otherwise polls with sleeps of up to 100 ms, and on
    /// PostgreSQL every waiter would hold a pooled connection that readers need); and
    /// writers that queue together share one commit.
    gate: Arc<WriteGate>,
    clock: Clock,
}

/// Group commit. Writers take turns, as before; but a writer that finishes while others
/// wait for their turn does not commit: it leaves the transaction open for the next one
/// and waits, and the last writer of the batch commits for all of them, so that a batch
/// pays one commit (one fsync, and on PostgreSQL one advisory lock) instead of one each.
/// Every writer after the first works inside its own savepoint, so one that fails rolls
/// back alone. Nobody is answered before the commit that makes their write durable, and
/// a commit that fails fails every writer of its batch.
#[derive(Debug)]
struct WriteGate {
    /// The turn, and the batch left open between its writers.
    turn: Arc<tokio::sync::Mutex<Option<Batch>>>,
    /// Writers waiting for the turn: a finished writer leaves the batch open only for them.
    waiting: AtomicUsize,
    next_batch: AtomicU64,
    /// Every batch up to this id has ended (committed or failed).
    ended: AtomicU64,
    /// Writes per commit: its count is the commits, its sum the writes (exported by the
    /// service's metrics once it registers it).
    batch_sizes: prometheus::Histogram,
    limits: BatchLimits,
}

/// How many writes this process has committed, and in how many commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    pub writes: u64,
    pub commits: u64,
}

/// How large a batch may grow: each writer of a batch waits for its last one, so these
/// bound the latency batching adds.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_writers: usize,
    pub max_age: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            // PostgreSQL keeps up to 64 subtransactions of a transaction in shared memory.
            max_writers: 32,
            max_age: Duration::from_millis(10),
        }
    }
}

/// A database transaction shared by the writers of one batch.
#[derive(Debug)]
struct Batch {
    id: u64,
    txn: DatabaseTransaction,
    began: Instant,
    /// The writers that finished and wait for the commit.
    parked: Vec<tokio::sync::oneshot::Sender<Result<(), DbErr>>>,
    /// The audit chain's head as this batch's writers left it, once one has appended:
    /// the batch holds the database's write lock, so no other writer can move it, and
    /// the next writer need not read it again.
    audit_head: std::sync::Mutex<Option<AuditHead>>,
    /// The request ids (idempotency keys, see [`crate::idempotency::Key`]) this batch's
    /// writers recorded: their answers are not committed, so only a writer of this batch
    /// can see them.
    request_keys: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// The newest record of the audit chain: its sequence number and hash.
pub(crate) type AuditHead = (i64, String);

impl Batch {
    fn audit_head(&self) -> Option<AuditHead> {
        self.audit_head.lock().ok().and_then(|h| h.clone())
    }

    fn set_audit_head(&self, head: Option<AuditHead>) {
        if let Ok(mut h) = self.audit_head.lock() {
            *h = head;
        }
    }
}

/// The name of each writer's savepoint. It is never released: a rollback goes to the
/// newest savepoint of the name, which is the failing writer's own, and the commit takes
/// every one.
const SAVEPOINT: &str = "mosharekat_write";

type Turn = tokio::sync::OwnedMutexGuard<Option<Batch>>;

impl WriteGate {
    fn new(limits: BatchLimits) -> Self {
        Self {
            turn: Arc::new(tokio::sync::Mutex::new(None)),
            waiting: AtomicUsize::new(0),
            next_batch: AtomicU64::new(1),
            ended: AtomicU64::new(0),
            batch_sizes: prometheus::Histogram::with_opts(
                prometheus::HistogramOpts::new(
                    "db_write_batch_size",
                    "writes committed together in one database commit (group commit)",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0]),
            )
            .expect("valid metric"),
            limits,
        }
    }

    /// Whether a writer that just finished should leave `batch` open for the next one.
    fn keeps_open(&self, batch: &Batch) -> bool {
        self.waiting.load(Ordering::Acquire) > 0
            && batch.parked.len() + 1 < self.limits.max_writers
            && batch.began.elapsed() < self.limits.max_age
    }

    /// Commits the batch in `turn`, answers its parked writers, and gives the turn up;
    /// `own` is 1 when the writer holding the turn has a write in it.
    async fn flush(&self, mut turn: Turn, own: u64, storage: &StorageState) -> Result<(), DbErr> {
        let Some(batch) = turn.take() else {
            return Ok(());
        };
        let r = batch.txn.commit().await;
        storage.observe(&r);
        if r.is_ok() {
            let writes = batch.parked.len() as u64 + own;
            self.batch_sizes.observe(writes as f64);
        }
        self.end(batch.id, batch.parked, &r);
        drop(turn);
        r
    }

    /// Ends the batch in `turn` without committing it (`cause` is why), answering its
    /// parked writers with the cause.
    async fn fail(&self, mut turn: Turn, cause: &DbErr) {
        if let Some(batch) = turn.take() {
            let _ = batch.txn.rollback().await;
            self.end(batch.id, batch.parked, &Err(cause.clone()));
        }
    }

    fn end(
        &self,
        id: u64,
        parked: Vec<tokio::sync::oneshot::Sender<Result<(), DbErr>>>,
        r: &Result<(), DbErr>,
    ) {
        self.ended.fetch_max(id, Ordering::AcqRel);
        for writer in parked {
            let _ = writer.send(r.clone());
        }
    }

    /// Parks the writer holding `turn` in its batch and waits for the batch's commit.
    async fn park(
        self: &Arc<Self>,
        mut turn: Turn,
        storage: &Arc<StorageState>,
    ) -> Result<(), DbErr> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let Some(batch) = turn.as_mut() else {
            return Ok(());
        };
        batch.parked.push(tx);
        if batch.parked.len() == 1 {
            // The writers it was left open for may give up waiting (their callers gone):
            // then nobody would commit it.
            tokio::spawn(self.clone().watch(batch.id, storage.clone()));
        }
        drop(turn);
        rx.await
            .unwrap_or_else(|_| Err(DbErr::Custom("a write batch ended unanswered".into())))
    }

    /// Commits batch `id` if it is still open and nobody has the turn after its age limit.
    async fn watch(self: Arc<Self>, id: u64, storage: Arc<StorageState>) {
        // Bounded: a batch ends once its age limit has passed and its current writer finishes.
        loop {
            tokio::time::sleep(self.limits.max_age).await;
            if self.ended.load(Ordering::Acquire) >= id {
                return;
            }
            if let Ok(turn) = self.turn.clone().try_lock_owned() {
                if turn.as_ref().is_some_and(|b| b.id == id) {
                    let _ = self.flush(turn, 0, &storage).await;
                }
                return;
            }
        }
    }

    /// What a writer that gives up leaves behind: its work undone, and the batch going
    /// on (or committed) for the others.
    async fn abandon(
        &self,
        mut turn: Turn,
        savepoint: Option<Option<AuditHead>>,
        storage: &StorageState,
    ) {
        let Some(audit_head_before) = savepoint else {
            // The first writer of its batch: nobody else is in it.
            if let Some(batch) = turn.take() {
                let _ = batch.txn.rollback().await;
                self.end(batch.id, batch.parked, &Ok(()));
            }
            return;
        };
        let Some(batch) = turn.as_ref() else { return };
        let undone = batch
            .txn
            .execute_unprepared(&format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"))
            .await;
        storage.observe(&undone);
        match undone {
            // The database may have rolled the whole transaction back itself (SQLite,
            // on a full disk or an I/O error): the batch is lost, and its writers are told.
            Err(e) => self.fail(turn, &e).await,
            Ok(_) if self.keeps_open(batch) => {
                batch.set_audit_head(audit_head_before);
                drop(turn)
            }
            Ok(_) => {
                let _ = self.flush(turn, 0, storage).await;
            }
        }
    }
}

/// Runs `work` to its end even if the caller's future is dropped (its client gone, a
/// timeout): a batch's commit, or a writer's rollback to its savepoint, must not stop
/// half-way, leaving the other writers of the batch told the wrong thing or a failed
/// writer's work in the batch. `None` if the task itself failed.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    tokio::spawn(work).await.ok()
}

/// Counts a writer as waiting for the turn until it has it, or gives up.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::AcqRel);
        Self(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One writer's turn at the database: a write transaction, or, in a batch, a savepoint of
/// one (see [`WriteGate`]); a [`ConnectionTrait`], which runs its deferred statements
/// (see [`WriteTxn::defer`]) before whatever may depend on them. Dropped without a commit
/// (an error, an early answer), its work is rolled back before the turn passes on: the database's own lock is only released by the rollback,
/// and the next writer should not wait for it while holding a pooled connection.
#[derive(Debug)]
pub struct WriteTxn {
    turn: Option<Turn>,
    /// Set when earlier writers of the batch wait in it, so that this one has a
    /// savepoint: the batch's audit head when it joined, restored if it rolls back.
    savepoint: Option<Option<AuditHead>>,
    /// Whether a statement of this writer failed. PostgreSQL then refuses every statement
    /// until a rollback, and answers a COMMIT with a silent ROLLBACK, which would take
    /// the whole batch with it; so such a writer's commit rolls it back instead.
    failed: AtomicBool,
    /// Statements run later, together (see [`WriteTxn::defer`]).
    deferred: deferred::Queue,
    gate: Arc<WriteGate>,
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
        match self.turn.as_deref() {
            Some(Some(batch)) => &batch.txn,
            // Only `commit`/`rollback` (which consume the value) and `drop` take it.
            _ => unreachable!("a WriteTxn is used after it ended"),
        }
    }

    /// Commits: returns once this write is durable, with the writes of its batch. An
    /// error means none of it is (the caller must not acknowledge it); the connection is
    /// then rolled back or closed, never reused inside a transaction.
    pub async fn commit(mut self) -> Result<(), DbErr> {
        // A failed writer's transaction (on PostgreSQL) takes no more statements.
        let flushed = match self.turn {
            Some(_) if !self.failed.load(Ordering::Acquire) => self.flush().await,
            _ => Ok(()),
        };
        let Some(turn) = self.turn.take() else {
            return Ok(());
        };
        let refused = match flushed {
            Err(e) => Some(e),
            Ok(()) if self.failed.load(Ordering::Acquire) => Some(DbErr::Custom(
                "a statement of this write failed, so it was rolled back, not committed".into(),
            )),
            Ok(()) => None,
        };
        if let Some(e) = refused {
            detached(self.abandoning(turn)).await;
            return Err(e);
        }
        let (gate, storage) = (self.gate.clone(), self.storage.clone());
        match turn.as_ref() {
            Some(batch) if gate.keeps_open(batch) => gate.park(turn, &storage).await,
            _ => detached(async move { gate.flush(turn, 1, &storage).await })
                .await
                .unwrap_or_else(|| Err(DbErr::Custom("the commit's task ended".into()))),
        }
    }

    /// Undoes this writer's work (the batch it is in goes on).
    pub async fn rollback(mut self) -> Result<(), DbErr> {
        if let Some(turn) = self.turn.take() {
            detached(self.abandoning(turn)).await;
        }
        Ok(())
    }

    /// Undoing this writer's work, as a task of its own to spawn.
    fn abandoning(&self, turn: Turn) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (gate, storage, savepoint) = (
            self.gate.clone(),
            self.storage.clone(),
            self.savepoint.clone(),
        );
        async move { gate.abandon(turn, savepoint, &storage).await }
    }

    fn batch(&self) -> Option<&Batch> {
        self.turn.as_deref().and_then(Option::as_ref)
    }

    /// The audit chain's head as this transaction last moved it, if it has.
    pub(crate) fn audit_head(&self) -> Option<AuditHead> {
        self.batch().and_then(Batch::audit_head)
    }

    /// Notes that this transaction recorded the answer of request `key`.
    pub(crate) fn note_request(&self, key: String) {
        if let Some(batch) = self.batch() {
            batch
                .request_keys
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(key);
        }
    }

    /// Whether a writer of this transaction's batch may have recorded the answer of
    /// request `key` (one that rolled back may have).
    pub(crate) fn may_hold_request(&self, key: &str) -> bool {
        self.batch().is_some_and(|batch| {
            batch
                .request_keys
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(key)
        })
    }

    /// Records the record this transaction just appended to the audit chain.
    pub(crate) fn set_audit_head(&self, head: AuditHead) {
        if let Some(batch) = self.batch() {
            batch.set_audit_head(Some(head));
        }
    }

    /// Runs `stmt`, an INSERT that no rule of the change refuses and whose result nobody
    /// reads (an audit record, an idempotency answer, a timeline entry, a notice), with
    /// this writer's other deferred ones in as few hand-offs as the database allows: before
    /// its next statement that is not deferred, before a query naming a table they write,
    /// and at the latest on commit, which then fails with their error. It is this writer's
    /// like any other of its statements, undone with it. A statement whose form the queue
    /// does not take (see [`deferred`]) runs at once.
    pub async fn defer(&self, stmt: Statement) -> Result<(), DbErr> {
        match self.deferred.push(stmt) {
            None => Ok(()),
            Some(stmt) => self.execute_raw(stmt).await.map(drop),
        }
    }

    /// Runs the deferred statements.
    async fn flush(&self) -> Result<(), DbErr> {
        for stmt in self.deferred.take(self.txn().get_database_backend()) {
            self.observed(self.txn().execute_raw(stmt).await)?;
        }
        Ok(())
    }

    /// Runs the deferred statements before another statement (`sql`, if a query: only
    /// when it may read or write what they touch). Their key clash is not that
    /// statement's (which a caller may map to "already exists"), so it is told apart.
    async fn flush_before(&self, sql: Option<&str>) -> Result<(), DbErr> {
        if sql.is_some_and(|sql| !self.deferred.blocks(sql)) {
            return Ok(());
        }
        self.flush().await.map_err(|e| {
            if is_unique_violation(&e) {
                DbErr::Custom(format!("a deferred insert of this write failed: {e}"))
            } else {
                e
            }
        })
    }

    fn observed<T>(&self, r: Result<T, DbErr>) -> Result<T, DbErr> {
        self.storage.observe(&r);
        self.noted(r)
    }

    fn noted<T>(&self, r: Result<T, DbErr>) -> Result<T, DbErr> {
        if r.is_err() {
            self.failed.store(true, Ordering::Release);
        }
        r
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        if let Some(mut turn) = self.turn.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(self.abandoning(turn));
                }
                // No runtime left (the process is ending): the batch is dropped whole,
                // its transaction rolled back by the driver and its writers unanswered.
                Err(_) => drop(turn.take()),
            }
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.txn().get_database_backend()
    }
    async fn execute_raw(&self, stmt: Statement) -> Result<sea_orm::ExecResult, DbErr> {
        self.flush_before(None).await?;
        self.observed(self.txn().execute_raw(stmt).await)
    }
    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        self.flush_before(None).await?;
        self.observed(self.txn().execute_unprepared(sql).await)
    }
    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<sea_orm::QueryResult>, DbErr> {
        self.flush_before(Some(&stmt.sql)).await?;
        self.noted(self.txn().query_one_raw(stmt).await)
    }
    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        self.flush_before(Some(&stmt.sql)).await?;
        self.noted(self.txn().query_all_raw(stmt).await)
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
            gate: Arc::new(WriteGate::new(opts.batch)),
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

    /// Begins a write, serialised with every other writer of this database: first in
    /// this process, then (the database's lock) across processes. It joins the batch the
    /// writer before it left open, if any (see [`WriteGate`]).
    pub async fn begin_write(&self) -> Result<WriteTxn, ApiError> {
        let mut turn = {
            let _waiting = Waiting::new(&self.gate.waiting);
            self.gate.turn.clone().lock_owned().await
        };
        let savepoint = match turn.as_ref() {
            Some(batch) => {
                let r = batch
                    .txn
                    .execute_unprepared(&format!("SAVEPOINT {SAVEPOINT}"))
                    .await;
                self.storage.observe(&r);
                if let Err(e) = r {
                    let gate = self.gate.clone();
                    let cause = e.clone();
                    detached(async move { gate.fail(turn, &cause).await }).await;
                    return Err(db_error(e));
                }
                Some(batch.audit_head())
            }
            None => {
                let begun = self.begin_locked().await;
                self.storage.observe(&begun);
                *turn = Some(Batch {
                    id: self.gate.next_batch.fetch_add(1, Ordering::AcqRel),
                    txn: begun.map_err(db_error)?,
                    began: Instant::now(),
                    parked: Vec::new(),
                    audit_head: std::sync::Mutex::new(None),
                    request_keys: Default::default(),
                });
                None
            }
        };
        Ok(WriteTxn {
            turn: Some(turn),
            savepoint,
            failed: AtomicBool::new(false),
            deferred: deferred::Queue::default(),
            gate: self.gate.clone(),
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

    /// Writers waiting for their turn now (tests use it to queue writers into one batch).
    #[cfg(test)]
    pub(crate) fn waiting_writers(&self) -> usize {
        self.gate.waiting.load(Ordering::Acquire)
    }

    /// How many writes have been committed, and in how many commits.
    pub fn write_stats(&self) -> WriteStats {
        WriteStats {
            // A sum of whole numbers, exact far past any count of writes.
            writes: self.gate.batch_sizes.get_sample_sum() as u64,
            commits: self.gate.batch_sizes.get_sample_count(),
        }
    }

    /// The histogram of writes per commit, which [`crate::metrics::Metrics::watch_writes`]
    /// exports.
    pub fn write_batch_sizes(&self) -> prometheus::Histogram {
        self.gate.batch_sizes.clone()
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
        self.migrate_first::<M>(None).await
    }

    /// Applies the first `steps` of `M`'s migrations not yet applied (all of them with
    /// `None`), as [`Db::migrate`]: a test's "previous release" schema.
    pub async fn migrate_first<M: MigratorTrait>(&self, steps: Option<u32>) -> anyhow::Result<()> {
        let txn = self
            .begin_write()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // Nothing is deferred yet: the migrations run on the transaction itself.
        M::up(txn.txn(), steps).await?;
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
    // The deferred idempotency INSERT runs here: its key clash is the caller's to retry.
    txn.commit().await.map_err(crate::idempotency::commit_error)
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

    /// A database with a table `t (n)`, on `backend`; `children` adds a table whose rows
    /// must name a row of `t` by the commit (a deferred foreign key: its check runs at
    /// the commit, so one writer can make a whole batch's commit fail).
    async fn table_db(backend: crate::testing::Backend) -> (crate::testing::TestDb, Db) {
        let t = crate::testing::TestDb::new(backend).await.unwrap();
        let opts = DbOptions {
            // Long enough that a test's writers queue into one batch.
            batch: BatchLimits {
                max_age: Duration::from_secs(2),
                ..BatchLimits::default()
            },
            ..DbOptions::default()
        };
        let db = Db::connect(&t.url, &opts).await.unwrap();
        db.conn()
            .execute_unprepared("CREATE TABLE t (n BIGINT PRIMARY KEY)")
            .await
            .unwrap();
        db.conn()
            .execute_unprepared(
                "CREATE TABLE children (n BIGINT NOT NULL \
                 REFERENCES t (n) DEFERRABLE INITIALLY DEFERRED)",
            )
            .await
            .unwrap();
        (t, db)
    }

    async fn stored(db: &Db, table: &str) -> Vec<i64> {
        let rows = db
            .conn()
            .query_all_raw(db.stmt(&format!("SELECT n FROM {table} ORDER BY n"), []))
            .await
            .unwrap();
        rows.iter().map(|r| r.try_get("", "n").unwrap()).collect()
    }

    /// Holds the turn while `n` other writers queue behind it, so that they are one batch;
    /// the answers, the first writer's first.
    async fn queue_behind(
        db: &Db,
        first: WriteTxn,
        n: usize,
        writers: Vec<tokio::task::JoinHandle<Result<(), ApiError>>>,
    ) -> Vec<Result<(), ApiError>> {
        wait_for_waiting(db, n).await;
        assert_eq!(
            db.gate.waiting.load(Ordering::Acquire),
            n,
            "the writers queued"
        );
        let mut out = vec![commit(first).await];
        for w in writers {
            out.push(w.await.unwrap());
        }
        out
    }

    /// The first writer of a batch, holding the turn with row 0 inserted.
    async fn first_writer(db: &Db) -> WriteTxn {
        let first = db.begin_write().await.unwrap();
        first
            .execute_raw(db.stmt("INSERT INTO t (n) VALUES ($1)", [0i64.into()]))
            .await
            .unwrap();
        first
    }

    /// The places of the answers that are errors.
    fn failed(answers: &[Result<(), ApiError>]) -> Vec<usize> {
        (0..answers.len())
            .filter(|i| answers[*i].is_err())
            .collect()
    }

    /// Waits (ten seconds at the most) until `n` writers wait for their turn.
    pub(crate) async fn wait_for_waiting(db: &Db, n: usize) {
        // Bounded: ten seconds of 1 ms polls.
        for _ in 0..10_000 {
            if db.gate.waiting.load(Ordering::Acquire) == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Inserts `n` into `t` (and, with `child`, a child row naming `child`) in one write.
    fn writer(
        db: &Db,
        n: i64,
        child: Option<i64>,
    ) -> tokio::task::JoinHandle<Result<(), ApiError>> {
        let db = db.clone();
        tokio::spawn(async move {
            let txn = db.begin_write().await?;
            txn.execute_raw(db.stmt("INSERT INTO t (n) VALUES ($1)", [n.into()]))
                .await
                .map_err(db_error)?;
            if let Some(c) = child {
                txn.execute_raw(db.stmt("INSERT INTO children (n) VALUES ($1)", [c.into()]))
                    .await
                    .map_err(db_error)?;
            }
            commit(txn).await
        })
    }

    /// Writers that queue behind one another share one commit, and each is answered only
    /// once it is durable; on both databases.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_writers_share_one_commit() {
        for backend in [
            crate::testing::Backend::Sqlite,
            crate::testing::Backend::Postgres,
        ] {
            let (_t, db) = table_db(backend).await;
            let first = first_writer(&db).await;
            let writers = (1..=10).map(|n| writer(&db, n, None)).collect();
            let answers = queue_behind(&db, first, 10, writers).await;
            assert!(
                answers.iter().all(Result::is_ok),
                "{backend:?}: {answers:?}"
            );
            assert_eq!(stored(&db, "t").await, (0..=10).collect::<Vec<_>>());
            assert_eq!(
                db.write_stats(),
                WriteStats {
                    writes: 11,
                    commits: 1
                },
                "{backend:?}: eleven writes, one commit"
            );
            // The service's metrics show the batch: one commit of eleven writes.
            let metrics = crate::metrics::Metrics::new("registry");
            metrics.watch_writes(&db);
            let text = metrics.render();
            for line in [
                "# HELP mosharekat_db_write_batch_size writes committed together in one database commit (group commit)",
                r#"mosharekat_db_write_batch_size_bucket{service="registry",le="8"} 0"#,
                r#"mosharekat_db_write_batch_size_bucket{service="registry",le="16"} 1"#,
                r#"mosharekat_db_write_batch_size_sum{service="registry"} 11"#,
                r#"mosharekat_db_write_batch_size_count{service="registry"} 1"#,
            ] {
                assert!(text.contains(line), "{backend:?}: no {line} in\n{text}");
            }
        }
    }

    /// A writer of a batch that fails (here on a duplicate key, after a first insert of
    /// its own) rolls back alone: the writers before and after it commit, and nothing of
    /// it is stored. On PostgreSQL the failed statement aborts the whole transaction but
    /// for the writer's savepoint.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_writer_of_a_batch_rolls_back_alone() {
        for backend in [
            crate::testing::Backend::Sqlite,
            crate::testing::Backend::Postgres,
        ] {
            let (_t, db) = table_db(backend).await;
            let first = first_writer(&db).await;
            let mut writers = Vec::new();
            for n in [1, 2, 3, -1, 4, 5] {
                writers.push(if n > 0 {
                    writer(&db, n, None)
                } else {
                    // Its first insert lands, its second repeats writer 1's key.
                    let db = db.clone();
                    tokio::spawn(async move {
                        let txn = db.begin_write().await?;
                        for n in [33i64, 1] {
                            txn.execute_raw(db.stmt("INSERT INTO t (n) VALUES ($1)", [n.into()]))
                                .await
                                .map_err(db_error)?;
                        }
                        commit(txn).await
                    })
                });
                // Queued in this order: the turn is first come, first served.
                wait_for_waiting(&db, writers.len()).await;
            }
            let answers = queue_behind(&db, first, 6, writers).await;
            let failed = failed(&answers);
            assert_eq!(
                failed,
                vec![4],
                "{backend:?}: only the duplicate fails: {answers:?}"
            );
            assert_eq!(
                stored(&db, "t").await,
                vec![0, 1, 2, 3, 4, 5],
                "{backend:?}"
            );
            assert_eq!(
                db.write_stats(),
                WriteStats {
                    writes: 6,
                    commits: 1
                }
            );
        }
    }

    /// Defers an insert of each of `rows` (table, n) in one write, and commits it.
    fn deferring_writer(
        db: &Db,
        rows: &'static [(&'static str, i64)],
    ) -> tokio::task::JoinHandle<Result<(), ApiError>> {
        let db = db.clone();
        tokio::spawn(async move {
            let txn = db.begin_write().await?;
            for (table, n) in rows {
                txn.defer(db.stmt(
                    &format!("INSERT INTO {table} (n) VALUES ($1)"),
                    [(*n).into()],
                ))
                .await
                .map_err(db_error)?;
            }
            commit(txn).await
        })
    }

    /// Deferred inserts wait: for a query of a table they write (which then sees them),
    /// else for the commit; a rollback or a drop discards them. On PostgreSQL a child
    /// row's foreign key may name a parent row of its own combined statement.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deferred_inserts_run_before_what_reads_them_or_at_the_commit() {
        for backend in [
            crate::testing::Backend::Sqlite,
            crate::testing::Backend::Postgres,
        ] {
            let (_t, db) = table_db(backend).await;
            db.conn()
                .execute_unprepared("CREATE TABLE kids (n BIGINT NOT NULL REFERENCES t (n))")
                .await
                .unwrap();
            let insert = |table: &str, n: i64| {
                db.stmt(&format!("INSERT INTO {table} (n) VALUES ($1)"), [n.into()])
            };
            let txn = db.begin_write().await.unwrap();
            txn.defer(insert("t", 7)).await.unwrap();
            txn.rollback().await.unwrap();
            let txn = db.begin_write().await.unwrap();
            txn.defer(insert("t", 8)).await.unwrap();
            drop(txn);

            let txn = db.begin_write().await.unwrap();
            for (table, n) in [("t", 1), ("kids", 1), ("t", 2), ("children", 2)] {
                txn.defer(insert(table, n)).await.unwrap();
            }
            txn.query_one_raw(db.stmt("SELECT 1 AS one", []))
                .await
                .unwrap();
            assert_eq!(
                txn.deferred.len(),
                4,
                "{backend:?}: a query of no such table"
            );
            let seen = txn
                .query_all_raw(db.stmt("SELECT n FROM t ORDER BY n", []))
                .await
                .unwrap();
            let seen: Vec<i64> = seen.iter().map(|r| r.try_get("", "n").unwrap()).collect();
            assert_eq!(seen, [1, 2], "{backend:?}: the query saw them");
            assert_eq!(txn.deferred.len(), 0);
            // The parent and its child in one statement on PostgreSQL.
            txn.defer(insert("t", 3)).await.unwrap();
            txn.defer(insert("kids", 3)).await.unwrap();
            commit(txn).await.unwrap();
            assert_eq!(stored(&db, "t").await, [1, 2, 3], "{backend:?}");
            assert_eq!(stored(&db, "kids").await, [1, 3], "{backend:?}");
            assert_eq!(stored(&db, "children").await, [2], "{backend:?}");
            // A statement after deferred ones runs after them.
            let txn = db.begin_write().await.unwrap();
            txn.defer(insert("t", 4)).await.unwrap();
            txn.execute_raw(db.stmt("UPDATE t SET n = n * 10 WHERE n = 4", []))
                .await
                .unwrap();
            commit(txn).await.unwrap();
            assert_eq!(stored(&db, "t").await, [1, 2, 3, 40], "{backend:?}");
        }
    }

    /// A writer of a batch whose deferred insert fails at its commit (a duplicate key: a
    /// bug, so `INTERNAL`) is refused and rolled back alone; the batch's other writers
    /// commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_deferred_insert_fails_its_writer_alone() {
        for backend in [
            crate::testing::Backend::Sqlite,
            crate::testing::Backend::Postgres,
        ] {
            let (_t, db) = table_db(backend).await;
            let first = first_writer(&db).await;
            let writers = vec![
                deferring_writer(&db, &[("t", 1), ("children", 1)]),
                // Its first row is new, its second writer 0's.
                deferring_writer(&db, &[("t", 11), ("t", 0)]),
                deferring_writer(&db, &[("t", 2)]),
            ];
            let answers = queue_behind(&db, first, 3, writers).await;
            assert_eq!(failed(&answers), [2], "{backend:?}: {answers:?}");
            assert!(
                matches!(answers[2], Err(ApiError::Internal(_))),
                "{backend:?}: {answers:?}"
            );
            assert_eq!(stored(&db, "t").await, [0, 1, 2], "{backend:?}");
            assert_eq!(stored(&db, "children").await, [1], "{backend:?}");
            assert_eq!(db.write_stats().commits, 1, "{backend:?}");
        }
    }

    /// A writer that meets a failed statement and still commits (a caller's mistake) is
    /// rolled back and told so, and the batch around it commits: on PostgreSQL its COMMIT
    /// would otherwise have been a silent ROLLBACK of the whole batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_that_commits_after_a_failed_statement_is_rolled_back() {
        for backend in [
            crate::testing::Backend::Sqlite,
            crate::testing::Backend::Postgres,
        ] {
            let (_t, db) = table_db(backend).await;
            let first = first_writer(&db).await;
            let mut writers = Vec::new();
            for n in [1, -1, 2] {
                writers.push(if n > 0 {
                    writer(&db, n, None)
                } else {
                    let db = db.clone();
                    tokio::spawn(async move {
                        let txn = db.begin_write().await?;
                        txn.execute_raw(db.stmt("INSERT INTO t (n) VALUES ($1)", [44i64.into()]))
                            .await
                            .map_err(db_error)?;
                        // A duplicate of writer 1's key, its error ignored.
                        let ignored = txn
                            .execute_raw(db.stmt("INSERT INTO t (n) VALUES ($1)", [1i64.into()]))
                            .await;
                        assert!(ignored.is_err());
                        commit(txn).await
                    })
                });
                wait_for_waiting(&db, writers.len()).await;
            }
            let answers = queue_behind(&db, first, 3, writers).await;
            let failed = failed(&answers);
            assert_eq!(failed, vec![2], "{backend:?}: {answers:?}");
            assert_eq!(stored(&db, "t").await, vec![0, 1, 2], "{backend:?}");
        }
    }

    /// A batch whose commit fails fails every writer in it, those whose own work was
    /// sound too: none is acknowledged, none is stored, and the next write succeeds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_fails_every_writer_of_its_batch() {
        for backend in [
            crate::testing::Backend::Sqlite,
            crate::testing::Backend::Postgres,
        ] {
            let (_t, db) = table_db(backend).await;
            let first = first_writer(&db).await;
            // Writer 3's child names a row nobody writes: the commit's check fails.
            let writers = (1..=5)
                .map(|n| writer(&db, n, (n == 3).then_some(999)))
                .collect();
            let answers = queue_behind(&db, first, 5, writers).await;
            assert!(
                answers.iter().all(Result::is_err),
                "{backend:?}: {answers:?}"
            );
            assert_eq!(stored(&db, "t").await, Vec::<i64>::new(), "{backend:?}");
            assert_eq!(db.write_stats().commits, 0);
            writer(&db, 7, None).await.unwrap().unwrap();
            assert_eq!(stored(&db, "t").await, vec![7], "{backend:?}");
        }
    }

    /// The batch keeps the audit chain's head for its writers, and a writer that rolls
    /// back takes its record back from the head too: the chain verifies whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_keeps_the_audit_chain_whole() {
        for backend in [
            crate::testing::Backend::Sqlite,
            crate::testing::Backend::Postgres,
        ] {
            let (_t, db) = table_db(backend).await;
            db.migrate::<PlatformTables>().await.unwrap();
            let entry = |n: i64| crate::audit::AuditEntry {
                actor: format!("writer {n}"),
                role: "ADMIN".into(),
                method: "/test".into(),
                resource: format!("t/{n}"),
                trace_id: String::new(),
                on_behalf_of: String::new(),
            };
            let audited = |n: i64, fails: bool| {
                let db = db.clone();
                tokio::spawn(async move {
                    let txn = db.begin_write().await?;
                    crate::audit::append(&txn, &entry(n)).await?;
                    if fails {
                        return Err(ApiError::Aborted("this writer gives up".into()));
                    }
                    commit(txn).await
                })
            };
            let first = db.begin_write().await.unwrap();
            crate::audit::append(&first, &entry(0)).await.unwrap();
            let mut writers = Vec::new();
            for (n, fails) in [(1, false), (2, true), (3, false)] {
                writers.push(audited(n, fails));
                wait_for_waiting(&db, writers.len()).await;
            }
            let answers = queue_behind(&db, first, 3, writers).await;
            let failed = failed(&answers);
            assert_eq!(failed, vec![2], "{backend:?}: {answers:?}");
            let v = crate::audit::verify(&db).await.unwrap();
            assert_eq!((v.checked, v.first_broken), (3, None), "{backend:?}");
            assert_eq!(
                db.write_stats(),
                WriteStats {
                    writes: 4,
                    commits: 2
                },
                "{backend:?}: the migration, then one batch"
            );
        }
    }

    /// A batch left open for a writer that then gives up waiting (its caller gone before
    /// its turn came) is still committed, by the batch's watch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_whose_next_writer_gives_up_still_commits() {
        let (_t, db) = table_db(crate::testing::Backend::Sqlite).await;
        let first = db.begin_write().await.unwrap();
        first
            .execute_raw(db.stmt("INSERT INTO t (n) VALUES ($1)", [1i64.into()]))
            .await
            .unwrap();
        // A writer counted as waiting, that never takes its turn.
        let phantom = Waiting::new(&db.gate.waiting);
        let committing = tokio::spawn(commit(first));
        // Bounded: ten seconds of 1 ms polls.
        for _ in 0..10_000 {
            let parked = db
                .gate
                .turn
                .try_lock()
                .is_ok_and(|b| b.as_ref().is_some_and(|b| !b.parked.is_empty()));
            if parked {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(
            !committing.is_finished(),
            "the writer parked for the phantom"
        );
        drop(phantom);
        let answered = tokio::time::timeout(Duration::from_secs(10), committing)
            .await
            .expect("the parked writer is answered");
        answered.unwrap().unwrap();
        assert_eq!(stored(&db, "t").await, vec![1]);
        assert_eq!(
            db.write_stats(),
            WriteStats {
                writes: 1,
                commits: 1
            }
        );
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
