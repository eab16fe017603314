//! The one change path and the one idempotent-create path, used by every resource of every
//! service.
//!
//! A change goes: load (in the write transaction) → authorise (a resource the caller may
//! not see is `NOT_FOUND`) → check the etag → apply the rules → save if the version still
//! matches → timeline, events, notifications → audit → commit. Each step is a type, so the
//! compiler keeps the order: only a [`Checked`] resource can be saved, only a [`Saved`]
//! one committed, and every step holds the [`WriteTxn`], the service's write turn.
//!
//! ```text
//! let open = change::open(&db, ctx, &store::Filings, &id).await?;   // Open: loaded
//! let mut filing = open.authorise(|f| rules::visible(ctx, f))?      // Authorised
//!     .check_etag(etag)?                                            // Checked
//!     ...;
//! let saved = checked.save(next).await?;                             // Saved: version + 1
//! store::append_timeline(saved.txn(), ...).await?;                   // effects
//! let filing = saved.commit().await?;                                // audit, commit
//! ```
//!
//! A create goes: a retried `request_id` answers what it answered the first time → begin
//! the write → insert → effects → remember the answer → audit → commit ([`begin_create`]).

use std::future::Future;

use crate::ctx::CallContext;
use crate::db::{Db, WriteTxn, check_etag};
use crate::error::ApiError;
use crate::idempotency::{self, Key};

/// A resource as stored, with the version its etag is taken from.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub version: i64,
    pub value: T,
}

impl<T> Versioned<T> {
    /// The etag a response carries: the version, in decimal.
    pub fn etag(&self) -> String {
        self.version.to_string()
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Versioned<U> {
        Versioned {
            version: self.version,
            value: f(self.value),
        }
    }
}

/// How the change path reaches one kind of resource in a service's store.
pub trait Repository: Sync {
    /// The resource, as the service's domain has it.
    type Resource: Send + Sync;
    /// Its id as the service's domain has it.
    type Id: Send + Sync + ?Sized;

    /// The kind of resource, as errors name it (`"filing"`).
    const KIND: &'static str;

    /// The resource name of `id` (`filings/…`), as errors name it.
    fn name(&self, id: &Self::Id) -> String;

    /// The resource at `id` with its version, read in the write transaction.
    fn load(
        &self,
        txn: &WriteTxn,
        id: &Self::Id,
    ) -> impl Future<Output = Result<Option<Versioned<Self::Resource>>, ApiError>> + Send;

    /// Writes `value` over the resource at `id` if it is still at `version`, making it
    /// `version + 1`; false when it is not.
    fn save(
        &self,
        txn: &WriteTxn,
        id: &Self::Id,
        version: i64,
        value: &Self::Resource,
    ) -> impl Future<Output = Result<bool, ApiError>> + Send;
}

/// A [`Repository`] whose three parts are already functions of the store: one frame for
/// every table instead of a copy of it per table. `name` is `fn(&Id) -> String`, `load`
/// `async fn(&WriteTxn, &Id) -> Result<Option<Versioned<Resource>>, ApiError>` and `save`
/// `async fn(&WriteTxn, &Id, version, &Resource) -> Result<bool, ApiError>` (the write
/// guarded by the version, true when it took).
///
/// ```ignore
/// mosharekat_platform::repository! {
///     /// Members, for the change path.
///     pub struct Members: "member", MemberName => Kept<Member>;
///     name = ToString::to_string, load = member, save = save_member
/// }
/// ```
#[macro_export]
macro_rules! repository {
    (
        $(#[$meta:meta])*
        $vis:vis struct $repo:ident: $kind:literal, $id:ty => $resource:ty;
        name = $name:path, load = $load:path, save = $save:path $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $repo;

        impl $crate::change::Repository for $repo {
            type Resource = $resource;
            type Id = $id;
            const KIND: &'static str = $kind;

            fn name(&self, id: &$id) -> String {
                $name(id)
            }

            async fn load(
                &self,
                txn: &$crate::db::WriteTxn,
                id: &$id,
            ) -> Result<Option<$crate::change::Versioned<$resource>>, $crate::error::ApiError> {
                $load(txn, id).await
            }

            async fn save(
                &self,
                txn: &$crate::db::WriteTxn,
                id: &$id,
                version: i64,
                value: &$resource,
            ) -> Result<bool, $crate::error::ApiError> {
                $save(txn, id, version, value).await
            }
        }
    };
}

/// The write transaction a change runs in: its own, committed by [`Saved::commit`], or
/// one the caller holds (an event consumer handling one event in one transaction), which
/// the caller commits.
enum Txn<'a> {
    Own(WriteTxn),
    Within(&'a WriteTxn),
}

impl Txn<'_> {
    fn get(&self) -> &WriteTxn {
        match self {
            Txn::Own(t) => t,
            Txn::Within(t) => t,
        }
    }
}

/// Step 1: the resource is loaded in the write transaction.
#[must_use = "a change is rolled back unless it is saved and committed"]
pub struct Open<'a, R: Repository> {
    txn: Txn<'a>,
    ctx: &'a CallContext,
    repo: &'a R,
    id: &'a R::Id,
    current: Versioned<R::Resource>,
}

impl<R: Repository> std::fmt::Debug for Open<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Open")
            .field("resource", &self.repo.name(self.id))
            .field("version", &self.current.version)
            .finish()
    }
}

/// Begins a change of the resource at `id`: takes the write turn and loads it.
/// `NOT_FOUND` when there is none.
pub async fn open<'a, R: Repository>(
    db: &Db,
    ctx: &'a CallContext,
    repo: &'a R,
    id: &'a R::Id,
) -> Result<Open<'a, R>, ApiError> {
    let txn = db.begin_write().await?;
    load(Txn::Own(txn), ctx, repo, id).await
}

/// Begins a change of the resource at `id` inside `txn`, a write transaction the caller
/// holds and commits (an event consumer's): the same steps, and [`Saved::commit`] writes
/// the audit record without committing.
pub async fn open_in<'a, R: Repository>(
    txn: &'a WriteTxn,
    ctx: &'a CallContext,
    repo: &'a R,
    id: &'a R::Id,
) -> Result<Open<'a, R>, ApiError> {
    load(Txn::Within(txn), ctx, repo, id).await
}

async fn load<'a, R: Repository>(
    txn: Txn<'a>,
    ctx: &'a CallContext,
    repo: &'a R,
    id: &'a R::Id,
) -> Result<Open<'a, R>, ApiError> {
    let current = repo
        .load(txn.get(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(R::KIND, repo.name(id)))?;
    Ok(Open {
        txn,
        ctx,
        repo,
        id,
        current,
    })
}

impl<'a, R: Repository> Open<'a, R> {
    /// Step 2: a resource the caller may not see is `NOT_FOUND`, as if it did not exist.
    pub fn authorise(
        self,
        visible: impl FnOnce(&R::Resource) -> bool,
    ) -> Result<Authorised<'a, R>, ApiError> {
        if !visible(&self.current.value) {
            return Err(ApiError::not_found(R::KIND, self.repo.name(self.id)));
        }
        Ok(Authorised(self))
    }
}

/// Step 2 done: the caller may see the resource.
#[must_use = "a change is rolled back unless it is saved and committed"]
pub struct Authorised<'a, R: Repository>(Open<'a, R>);

impl<R: Repository> std::fmt::Debug for Authorised<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'a, R: Repository> Authorised<'a, R> {
    /// The resource as stored, for a rule that must see it before the etag is checked.
    pub fn current(&self) -> &R::Resource {
        &self.0.current.value
    }

    /// Step 3: `ABORTED` when the caller sent an etag that is not the current one; an
    /// empty etag means "whatever the current version is".
    pub fn check_etag(self, etag: &str) -> Result<Checked<'a, R>, ApiError> {
        check_etag(etag, self.0.current.version, &self.0.repo.name(self.0.id))?;
        Ok(Checked(self.0))
    }
}

/// Step 3 done: the change applies to the version the caller saw.
#[must_use = "a change is rolled back unless it is saved and committed"]
pub struct Checked<'a, R: Repository>(Open<'a, R>);

impl<R: Repository> std::fmt::Debug for Checked<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'a, R: Repository> Checked<'a, R> {
    /// The resource as stored, which the rules turn into its next value.
    pub fn current(&self) -> &R::Resource {
        &self.0.current.value
    }

    pub fn version(&self) -> i64 {
        self.0.current.version
    }

    /// The write transaction, for a rule that must read more under the write turn.
    pub fn txn(&self) -> &WriteTxn {
        self.0.txn.get()
    }

    /// Step 5: saves `next` if the stored version is still the one loaded (else
    /// `ABORTED`, the resource changed meanwhile). Nothing is read back: the saved value
    /// is `next` at `version + 1`.
    pub async fn save(self, next: R::Resource) -> Result<Saved<'a, R>, ApiError> {
        let o = self.0;
        if !o
            .repo
            .save(o.txn.get(), o.id, o.current.version, &next)
            .await?
        {
            return Err(ApiError::stale(&o.repo.name(o.id)));
        }
        Ok(Saved {
            txn: o.txn,
            ctx: o.ctx,
            name: o.repo.name(o.id),
            before: o.current.value,
            saved: Versioned {
                version: o.current.version + 1,
                value: next,
            },
        })
    }
}

/// Step 5 done: the new value is written, not yet committed.
#[must_use = "a change is rolled back unless it is committed"]
pub struct Saved<'a, R: Repository> {
    txn: Txn<'a>,
    ctx: &'a CallContext,
    name: String,
    before: R::Resource,
    saved: Versioned<R::Resource>,
}

impl<R: Repository> Saved<'_, R> {
    /// The write transaction, for the change's timeline entry, events and notifications
    /// (step 6), which commit with it or not at all.
    pub fn txn(&self) -> &WriteTxn {
        self.txn.get()
    }

    /// The value before the change.
    pub fn before(&self) -> &R::Resource {
        &self.before
    }

    /// The value as saved.
    pub fn saved(&self) -> &Versioned<R::Resource> {
        &self.saved
    }

    /// Steps 7 and 8: the audit record of the change, then the commit. Only an `Ok` means
    /// the change is durable. A change opened with [`open_in`] is durable when its
    /// caller commits the transaction.
    pub async fn commit(self) -> Result<Versioned<R::Resource>, ApiError> {
        crate::audit::append(self.txn.get(), &self.ctx.audit(self.name)).await?;
        if let Txn::Own(txn) = self.txn {
            crate::db::commit(txn).await?;
        }
        Ok(self.saved)
    }
}

/// What beginning a create found.
#[derive(Debug)]
pub enum Begun<'a, Resp> {
    /// The caller sent this request before: its answer, as it was.
    Replay(Resp),
    /// A first request: create it (boxed: a write turn is large, an answer small).
    Fresh(Box<Create<'a>>),
}

/// A create under way, holding the write turn.
#[derive(Debug)]
#[must_use = "a create is rolled back unless it is committed"]
pub struct Create<'a> {
    txn: WriteTxn,
    ctx: &'a CallContext,
    key: Option<Key>,
}

/// Begins the create that `req` asks for: checks its `request_id` (field `request_id`),
/// answers a retry of a request this caller sent before from what it answered then, and
/// takes the write turn. The answer is looked for before the turn, on a read connection,
/// and again under it only if a writer of the turn's batch recorded that request (its
/// answer is not committed, so only the batch sees it): the turn is not held for a
/// read that nearly always finds nothing. A copy of the request committed between the two
/// (a concurrent call) makes this one's commit fail with `ABORTED` (the key is unique),
/// and its retry is answered: two copies never both create.
pub async fn begin_create<'a, Req: prost::Message, Resp: prost::Message + Default>(
    db: &Db,
    ctx: &'a CallContext,
    request_id: &str,
    req: &Req,
) -> Result<Begun<'a, Resp>, ApiError> {
    let key = key_of(ctx, request_id, req)?;
    if let Some(key) = &key
        && let Some(answer) = key.lookup(db.conn()).await?
    {
        return Ok(Begun::Replay(answer));
    }
    begin_looked_up(db, ctx, key).await
}

/// As [`begin_create`] for a create whose caller asked [`replayed`] already (before a
/// peer call): the read before the turn is not made again.
pub async fn begin_create_replayed<'a, Req: prost::Message, Resp: prost::Message + Default>(
    db: &Db,
    ctx: &'a CallContext,
    request_id: &str,
    req: &Req,
) -> Result<Begun<'a, Resp>, ApiError> {
    begin_looked_up(db, ctx, key_of(ctx, request_id, req)?).await
}

/// Takes the write turn for a create whose answer was looked for before it.
async fn begin_looked_up<'a, Resp: prost::Message + Default>(
    db: &Db,
    ctx: &'a CallContext,
    key: Option<Key>,
) -> Result<Begun<'a, Resp>, ApiError> {
    let txn = db.begin_write().await?;
    if let Some(key) = &key
        && txn.may_hold_request(&key.id())
        && let Some(answer) = key.lookup(&txn).await?
    {
        // Another writer's of this write batch, not yet committed: it is given only
        // once the batch's commit has made it durable.
        crate::db::commit(txn).await?;
        return Ok(Begun::Replay(answer));
    }
    Ok(Begun::Fresh(Box::new(Create { txn, ctx, key })))
}

/// The answer to a request this caller sent before, read without the write turn: for a
/// create that must call a peer before it writes, so that a retry does not call it again.
/// [`begin_create`] still decides (it reads again).
pub async fn replayed<Req: prost::Message, Resp: prost::Message + Default>(
    db: &Db,
    ctx: &CallContext,
    request_id: &str,
    req: &Req,
) -> Result<Option<Resp>, ApiError> {
    match key_of(ctx, request_id, req)? {
        Some(key) => key.lookup(db.conn()).await,
        None => Ok(None),
    }
}

fn key_of<Req: prost::Message>(
    ctx: &CallContext,
    request_id: &str,
    req: &Req,
) -> Result<Option<Key>, ApiError> {
    if !request_id.is_empty() {
        idempotency::validate_request_id(request_id, "request_id")?;
    }
    Ok(Key::of(ctx, request_id, req))
}

impl Create<'_> {
    /// The write transaction, for the insert and the create's timeline entry and events.
    pub fn txn(&self) -> &WriteTxn {
        &self.txn
    }

    /// Remembers `answer` for a retry of the same request, writes the audit record of the
    /// new `resource` (its name), and commits. Only an `Ok` means it is durable.
    pub async fn commit<Resp: prost::Message>(
        self,
        resource: impl Into<String>,
        answer: &Resp,
    ) -> Result<(), ApiError> {
        if let Some(key) = &self.key {
            key.record(&self.txn, answer).await?;
        }
        crate::audit::append(&self.txn, &self.ctx.audit(resource)).await?;
        crate::db::commit(self.txn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Principal, Role};
    use crate::testing::{Backend, TestDb};
    use sea_orm::ConnectionTrait;

    /// A counter resource: `things (id, version, n)`.
    struct Things;

    impl Repository for Things {
        type Resource = i64;
        type Id = str;
        const KIND: &'static str = "thing";

        fn name(&self, id: &str) -> String {
            format!("things/{id}")
        }

        async fn load(&self, txn: &WriteTxn, id: &str) -> Result<Option<Versioned<i64>>, ApiError> {
            let row = txn
                .query_one_raw(sea_orm::Statement::from_sql_and_values(
                    txn.get_database_backend(),
                    "SELECT version, n FROM things WHERE id = $1",
                    [id.into()],
                ))
                .await
                .map_err(crate::db::db_error)?;
            Ok(row.map(|r| Versioned {
                version: r.try_get("", "version").unwrap(),
                value: r.try_get("", "n").unwrap(),
            }))
        }

        async fn save(
            &self,
            txn: &WriteTxn,
            id: &str,
            version: i64,
            value: &i64,
        ) -> Result<bool, ApiError> {
            let r = txn
                .execute_raw(sea_orm::Statement::from_sql_and_values(
                    txn.get_database_backend(),
                    "UPDATE things SET n = $1, version = version + 1 WHERE id = $2 AND version = $3",
                    [(*value).into(), id.into(), version.into()],
                ))
                .await
                .map_err(crate::db::db_error)?;
            Ok(r.rows_affected() == 1)
        }
    }

    fn ctx() -> CallContext {
        CallContext {
            principal: Principal {
                subject: "clerk".into(),
                role: Role::Admin,
                institution: None,
                member: None,
                service: None,
                authority: None,
                on_behalf_of: None,
            },
            method: "/test.v1.Things/Bump".into(),
            trace_id: String::new(),
            deadline: None,
        }
    }

    async fn setup(backend: Backend) -> (TestDb, Db) {
        setup_with(backend, crate::db::DbOptions::default()).await
    }

    async fn setup_with(backend: Backend, opts: crate::db::DbOptions) -> (TestDb, Db) {
        let t = TestDb::new(backend).await.unwrap();
        let db = Db::connect(&t.url, &opts).await.unwrap();
        db.migrate::<crate::testing::PlatformTables>()
            .await
            .unwrap();
        db.conn()
            .execute_unprepared(
                "CREATE TABLE things (id TEXT PRIMARY KEY, version BIGINT NOT NULL, n BIGINT NOT NULL)",
            )
            .await
            .unwrap();
        db.conn()
            .execute_unprepared("INSERT INTO things VALUES ('a', 1, 10)")
            .await
            .unwrap();
        (t, db)
    }

    async fn audit_count(db: &Db) -> i64 {
        let r = db
            .conn()
            .query_one_raw(db.stmt("SELECT COUNT(*) AS n FROM audit_log", []))
            .await
            .unwrap()
            .unwrap();
        r.try_get("", "n").unwrap()
    }

    async fn bump(db: &Db, ctx: &CallContext, etag: &str) -> Result<Versioned<i64>, ApiError> {
        let checked = open(db, ctx, &Things, "a")
            .await?
            .authorise(|_| true)?
            .check_etag(etag)?;
        let next = checked.current() + 1;
        checked.save(next).await?.commit().await
    }

    /// The path on both databases: a change saves version + 1 and audits it; a stale etag,
    /// a hidden or missing resource, and an error after the save leave nothing written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_change_path_writes_all_or_nothing() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let (_t, db) = setup(backend).await;
            let ctx = ctx();
            let v = bump(&db, &ctx, "1").await.unwrap();
            assert_eq!((v.version, v.value), (2, 11), "{backend:?}");
            assert_eq!(audit_count(&db).await, 1);

            let stale = bump(&db, &ctx, "1").await.unwrap_err();
            assert_eq!(stale.code(), tonic::Code::Aborted, "{backend:?}");
            let hidden = open(&db, &ctx, &Things, "a")
                .await
                .unwrap()
                .authorise(|_| false)
                .unwrap_err();
            assert_eq!(hidden.code(), tonic::Code::NotFound);
            let missing = open(&db, &ctx, &Things, "b").await.unwrap_err();
            assert_eq!(missing.code(), tonic::Code::NotFound);

            // Saved, then an effect fails: dropped, the change rolls back with it.
            let saved = open(&db, &ctx, &Things, "a")
                .await
                .unwrap()
                .authorise(|_| true)
                .unwrap()
                .check_etag("")
                .unwrap()
                .save(99)
                .await
                .unwrap();
            assert_eq!(*saved.before(), 11);
            drop(saved);
            let v = bump(&db, &ctx, "").await.unwrap();
            assert_eq!((v.version, v.value), (3, 12), "{backend:?}");
            assert_eq!(audit_count(&db).await, 2, "{backend:?}");
        }
    }

    /// A change inside a caller's transaction is audited but committed (or rolled back)
    /// with that transaction only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_change_within_a_transaction_commits_with_it() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let (_t, db) = setup(backend).await;
            let ctx = ctx();
            for keep in [false, true] {
                let txn = db.begin_write().await.unwrap();
                let checked = open_in(&txn, &ctx, &Things, "a")
                    .await
                    .unwrap()
                    .authorise(|_| true)
                    .unwrap()
                    .check_etag("")
                    .unwrap();
                let next = checked.current() + 5;
                let v = checked.save(next).await.unwrap().commit().await.unwrap();
                assert_eq!(v.version, 2, "{backend:?}");
                if keep {
                    txn.commit().await.unwrap();
                } else {
                    drop(txn);
                }
            }
            let v = bump(&db, &ctx, "2").await.unwrap();
            assert_eq!((v.version, v.value), (3, 16), "{backend:?}");
            assert_eq!(audit_count(&db).await, 2, "{backend:?}");
        }
    }

    /// A create answers a retry of the same request from its first answer, refuses a
    /// request id reused for another request, and a create not committed is not
    /// remembered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_create_path_answers_a_retry_once() {
        let req = prost_types::Timestamp {
            seconds: 1,
            nanos: 0,
        };
        let other = prost_types::Timestamp {
            seconds: 2,
            nanos: 0,
        };
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let (_t, db) = setup(backend).await;
            let ctx = ctx();
            let answer = prost_types::Duration {
                seconds: 7,
                nanos: 0,
            };
            match begin_create::<_, prost_types::Duration>(&db, &ctx, "r-1", &req)
                .await
                .unwrap()
            {
                Begun::Fresh(c) => drop(c),
                Begun::Replay(_) => panic!("nothing was created yet"),
            }
            match begin_create::<_, prost_types::Duration>(&db, &ctx, "r-1", &req)
                .await
                .unwrap()
            {
                Begun::Fresh(c) => c.commit("things/b", &answer).await.unwrap(),
                Begun::Replay(_) => panic!("the dropped create was remembered ({backend:?})"),
            }
            match begin_create::<_, prost_types::Duration>(&db, &ctx, "r-1", &req)
                .await
                .unwrap()
            {
                Begun::Replay(a) => assert_eq!(a, answer),
                Begun::Fresh(_) => panic!("a retry created again ({backend:?})"),
            }
            let early: Option<prost_types::Duration> =
                replayed(&db, &ctx, "r-1", &req).await.unwrap();
            assert_eq!(early, Some(answer));
            let reused = begin_create::<_, prost_types::Duration>(&db, &ctx, "r-1", &other)
                .await
                .unwrap_err();
            assert_eq!(reused.code(), tonic::Code::InvalidArgument);
            let bad = begin_create::<_, prost_types::Duration>(&db, &ctx, "has space", &req)
                .await
                .unwrap_err();
            assert_eq!(bad.code(), tonic::Code::InvalidArgument);
            assert_eq!(audit_count(&db).await, 1, "{backend:?}");
        }
    }

    /// A retry answered from its first copy's answer in the same write batch is answered
    /// only once that batch has committed: when the commit fails, the retry fails too,
    /// instead of naming a resource that was never stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retry_in_the_same_batch_waits_for_its_commit() {
        let req = prost_types::Timestamp {
            seconds: 1,
            nanos: 0,
        };
        let answer = prost_types::Duration {
            seconds: 7,
            nanos: 0,
        };
        // Long enough that the retry joins the first copy's batch however loaded the
        // machine is.
        let opts = crate::db::DbOptions {
            batch: crate::db::BatchLimits {
                max_age: std::time::Duration::from_secs(5),
                ..Default::default()
            },
            ..Default::default()
        };
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let (_t, db) = setup_with(backend, opts.clone()).await;
            db.conn()
                .execute_unprepared(
                    "CREATE TABLE things_children (id TEXT NOT NULL \
                     REFERENCES things (id) DEFERRABLE INITIALLY DEFERRED)",
                )
                .await
                .unwrap();
            let ctx = ctx();
            let Begun::Fresh(first) =
                begin_create::<_, prost_types::Duration>(&db, &ctx, "r-1", &req)
                    .await
                    .unwrap()
            else {
                panic!("nothing was created yet");
            };
            // A child naming no thing: the batch's commit fails.
            first
                .txn()
                .execute_raw(db.stmt(
                    "INSERT INTO things_children (id) VALUES ($1)",
                    ["none".into()],
                ))
                .await
                .unwrap();
            let retry = {
                let (db, ctx) = (db.clone(), ctx.clone());
                tokio::spawn(async move {
                    begin_create::<_, prost_types::Duration>(&db, &ctx, "r-1", &req)
                        .await
                        .map(|b| matches!(b, Begun::Replay(_)))
                })
            };
            crate::db::tests::wait_for_waiting(&db, 1).await;
            assert_eq!(db.waiting_writers(), 1, "the retry queued behind the first");
            assert!(
                first.commit("things/b", &answer).await.is_err(),
                "{backend:?}"
            );
            let retried = retry.await.unwrap();
            assert!(
                retried.is_err(),
                "{backend:?}: the retry was answered from a commit that failed: {retried:?}"
            );
        }
    }

    /// A copy of a request whose first copy commits in an earlier batch while it waits
    /// for its turn (so that its read before the turn found nothing) does not create
    /// again: its commit is refused `ABORTED`, and its retry answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_racing_its_first_commit_is_refused_then_answered() {
        let req = prost_types::Timestamp {
            seconds: 2,
            nanos: 0,
        };
        let answer = prost_types::Duration {
            seconds: 9,
            nanos: 0,
        };
        // One writer a batch: the copy cannot join the first's.
        let opts = crate::db::DbOptions {
            batch: crate::db::BatchLimits {
                max_writers: 1,
                ..Default::default()
            },
            ..Default::default()
        };
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let (_t, db) = setup_with(backend, opts.clone()).await;
            let ctx = ctx();
            let create = |id: &'static str| {
                let (db, ctx) = (db.clone(), ctx.clone());
                tokio::spawn(async move {
                    match begin_create::<_, prost_types::Duration>(&db, &ctx, "r-2", &req).await? {
                        Begun::Replay(a) => Ok(Some(a)),
                        Begun::Fresh(c) => {
                            c.txn()
                                .execute_raw(db.stmt(
                                    "INSERT INTO things (id, version, n) VALUES ($1, 1, 0)",
                                    [id.into()],
                                ))
                                .await
                                .map_err(crate::db::db_error)?;
                            c.commit(format!("things/{id}"), &answer).await?;
                            Ok::<_, ApiError>(None)
                        }
                    }
                })
            };
            let Begun::Fresh(first) =
                begin_create::<_, prost_types::Duration>(&db, &ctx, "r-2", &req)
                    .await
                    .unwrap()
            else {
                panic!("nothing was created yet");
            };
            first
                .txn()
                .execute_raw(db.stmt("INSERT INTO things (id, version, n) VALUES ('x', 1, 0)", []))
                .await
                .unwrap();
            let copy = create("y");
            crate::db::tests::wait_for_waiting(&db, 1).await;
            assert_eq!(db.waiting_writers(), 1, "the copy read, then queued");
            first.commit("things/x", &answer).await.unwrap();
            let copied = copy.await.unwrap();
            assert!(
                matches!(copied, Err(ApiError::Aborted(_))),
                "{backend:?}: {copied:?}"
            );
            let retried = create("z").await.unwrap().unwrap();
            assert_eq!(retried, Some(answer), "{backend:?}");
            let things = db
                .conn()
                .query_all_raw(db.stmt("SELECT id FROM things WHERE id IN ('x', 'y', 'z')", []))
                .await
                .unwrap();
            let ids: Vec<String> = things
                .iter()
                .map(|r| r.try_get("", "id").unwrap())
                .collect();
            assert_eq!(ids, ["x"], "{backend:?}: one thing created");
        }
    }
}
