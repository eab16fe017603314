//! Events of a followed stream (the registry's licence events) that keep failing to be
//! handled, made loud and resolvable.
//!
//! A consumer handles events in order, each in the transaction that moves its cursor, so
//! an event that fails holds every event behind it: their effects may depend on it (a
//! licence suspended, then revoked), and handling them past it would break the order the
//! stream promises. So the events behind it **wait**, and the stall is made visible:
//!
//! - each failed attempt is recorded in the service's own `event_stall` table (attempts,
//!   first and last failure time, last error), logged with the sequence and the error,
//!   and counted in `event_handling_failures_total{stream}`;
//! - `event_stalled_sequence{stream}` is the sequence stalled on (0 when none), and the
//!   health entry [`Stalls::health_name`] (`mosharekat.licence_events`) is NOT_SERVING
//!   while it lasts; the service's own entries stay SERVING, since every other call works;
//! - the attempt is retried after a capped exponential [`Backoff`];
//! - `mosharekat.common.v1.StalledEventService` lists it ("licence event N stalled since
//!   T: error"; ADMIN, AUDITOR) and resolves it (ADMIN): RETRY now, once the cause is
//!   fixed, or SKIP with a mandatory reason, audited and kept with the event, after which
//!   the consumer moves its cursor past it without handling it, ever. RETRY wakes the
//!   consumer of this process; another replica retries at its next backoff.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, FromQueryResult};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use mosharekat_api::common::v1 as pb;
use pb::resolve_stalled_event_request::Action;
use pb::stalled_event_service_server::{StalledEventService, StalledEventServiceServer};

use crate::auth::Role;
use crate::ctx::CallContext;
use crate::db::{Db, WriteTxn, db_error, to_timestamp};
use crate::error::{ApiError, Violations};
use crate::metrics::Metrics;
use crate::pagination;

/// The health entry of the licence event consumer: NOT_SERVING while it is stalled.
pub const LICENCE_EVENTS_HEALTH: &str = "mosharekat.licence_events";

/// How long to wait before retrying a failed event: doubling from `initial`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait after the `attempts`-th failure (from 1).
    pub fn after(&self, attempts: i64) -> Duration {
        let doublings = attempts.clamp(1, 32) as u32 - 1;
        self.initial
            .checked_mul(1u32 << doublings.min(20))
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// What a stall records of its event.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub sequence: i64,
    /// e.g. `LICENCE_EVENT_KIND_SUSPENDED`
    pub kind: &'a str,
    /// The resource it is about.
    pub subject: &'a str,
}

/// One row of `event_stall`.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Stall {
    pub stream: String,
    pub sequence: i64,
    pub kind: String,
    pub subject: String,
    pub attempts: i64,
    pub first_failure_us: i64,
    pub last_failure_us: i64,
    pub last_error: String,
    pub skipped: bool,
    pub skip_reason: String,
    pub resolved_by: String,
    pub resolved_us: Option<i64>,
}

impl Stall {
    /// The one line an operator reads.
    pub fn detail(&self) -> String {
        let since = chrono::DateTime::from_timestamp_micros(self.first_failure_us)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        if self.skipped {
            format!(
                "event {} of {} skipped by {}: {}",
                self.sequence, self.stream, self.resolved_by, self.skip_reason
            )
        } else {
            format!(
                "event {} of {} stalled since {since} after {} attempts: {}",
                self.sequence, self.stream, self.attempts, self.last_error
            )
        }
    }

    fn into_pb(self) -> pb::StalledEvent {
        pb::StalledEvent {
            detail: self.detail(),
            stream: self.stream,
            sequence: self.sequence,
            kind: self.kind,
            subject: self.subject,
            attempts: self.attempts,
            first_failure_time: Some(to_timestamp(self.first_failure_us)),
            last_failure_time: Some(to_timestamp(self.last_failure_us)),
            last_error: self.last_error,
            state: if self.skipped {
                pb::stalled_event::State::Skipped
            } else {
                pb::stalled_event::State::Stalled
            } as i32,
            skip_reason: self.skip_reason,
            resolved_by: self.resolved_by,
            resolve_time: self.resolved_us.map(to_timestamp),
        }
    }
}

/// The name audit records give a stalled event.
fn resource_name(stream: &str, sequence: i64) -> String {
    format!("stalled-events/{stream}/{sequence}")
}

const COLUMNS: &str = "stream, sequence, kind, subject, attempts, first_failure_us, \
     last_failure_us, last_error, skipped, skip_reason, resolved_by, resolved_us";

async fn load<C: ConnectionTrait>(
    c: &C,
    stream: &str,
    sequence: i64,
) -> Result<Option<Stall>, ApiError> {
    Stall::find_by_statement(sea_orm::Statement::from_sql_and_values(
        c.get_database_backend(),
        format!("SELECT {COLUMNS} FROM event_stall WHERE stream = $1 AND sequence = $2"),
        [stream.into(), sequence.into()],
    ))
    .one(c)
    .await
    .map_err(db_error)
}

/// What an error says for the record: an internal error's cause too (only ADMIN and
/// AUDITOR read it), bounded.
fn describe(e: &ApiError) -> String {
    let mut s = match e {
        ApiError::Internal(cause) => format!("internal error: {cause:#}"),
        other => other.to_string(),
    };
    if s.len() > 2000 {
        let mut end = 2000;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The stall record, metrics, health and retry signal of one followed stream.
#[derive(Clone)]
pub struct Stalls {
    db: Db,
    stream: &'static str,
    health_name: &'static str,
    metrics: Metrics,
    health: Option<HealthReporter>,
    retry: Arc<Notify>,
    backoff: Backoff,
}

impl std::fmt::Debug for Stalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stalls")
            .field("stream", &self.stream)
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl Stalls {
    /// The stalls of `stream` in `db`, reported in `metrics` and, under `health_name`, in
    /// `health` (none in tests that serve no health).
    pub fn new(
        db: Db,
        stream: &'static str,
        health_name: &'static str,
        metrics: Metrics,
        health: Option<HealthReporter>,
    ) -> Self {
        Self {
            db,
            stream,
            health_name,
            metrics,
            health,
            retry: Arc::new(Notify::new()),
            backoff: Backoff::default(),
        }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn stream(&self) -> &'static str {
        self.stream
    }

    pub fn health_name(&self) -> &'static str {
        self.health_name
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `mosharekat.common.v1.StalledEventService` over this database's stalls.
    pub fn api(&self) -> StalledEventsApi {
        StalledEventsApi {
            db: self.db.clone(),
            retry: self.retry.clone(),
        }
    }

    async fn report(&self, stalled_on: i64) {
        self.metrics.set_event_stalled(self.stream, stalled_on);
        if let Some(h) = &self.health {
            let status = if stalled_on == 0 {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            h.set_service_status(self.health_name, status).await;
        }
    }

    /// Reports what the database holds when the consumer starts: a stall left by the last
    /// run stays visible until its event is handled or skipped.
    pub async fn start(&self) {
        let open = Stall::find_by_statement(self.db.stmt(
            &format!(
                "SELECT {COLUMNS} FROM event_stall WHERE stream = $1 AND skipped = $2 \
                 ORDER BY sequence LIMIT 1"
            ),
            [self.stream.into(), false.into()],
        ))
        .one(self.db.conn())
        .await;
        match open {
            Ok(Some(s)) => {
                tracing::warn!(stream = self.stream, sequence = s.sequence, detail = %s.detail(), "a followed event is still stalled");
                self.report(s.sequence).await;
            }
            Ok(None) => self.report(0).await,
            Err(e) => tracing::warn!(error = %e, "cannot read the stalled events"),
        }
    }

    /// Records the `attempt`-th failure to handle `event` (in a write transaction of its
    /// own: the handling one was rolled back), logs it, reports it, and returns how long
    /// to wait before the next attempt. A failure to record it (the database down) is
    /// logged; the stall is still reported.
    pub async fn failed(&self, event: EventRef<'_>, attempt: i64, error: &ApiError) -> Duration {
        let text = describe(error);
        let attempts = match self.record(event, &text).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, sequence = event.sequence, "cannot record the failed event");
                attempt
            }
        };
        let wait = self.backoff.after(attempts);
        self.metrics.event_failed(self.stream);
        tracing::warn!(
            stream = self.stream,
            sequence = event.sequence,
            kind = event.kind,
            attempts,
            error = %text,
            retry_in = ?wait,
            "handling a followed event failed; the events behind it wait until it is handled or skipped"
        );
        self.report(event.sequence).await;
        wait
    }

    async fn record(&self, e: EventRef<'_>, error: &str) -> Result<i64, ApiError> {
        let txn = self.db.begin_write().await?;
        let now = txn.now_micros();
        let backend = txn.get_database_backend();
        let updated = txn
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                "UPDATE event_stall SET attempts = attempts + 1, last_failure_us = $1, \
                 last_error = $2 WHERE stream = $3 AND sequence = $4",
                [
                    now.into(),
                    error.into(),
                    self.stream.into(),
                    e.sequence.into(),
                ],
            ))
            .await
            .map_err(db_error)?;
        if updated.rows_affected() == 0 {
            txn.execute_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                "INSERT INTO event_stall (stream, sequence, kind, subject, attempts, \
                 first_failure_us, last_failure_us, last_error) \
                 VALUES ($1, $2, $3, $4, 1, $5, $5, $6)",
                [
                    self.stream.into(),
                    e.sequence.into(),
                    e.kind.into(),
                    e.subject.into(),
                    now.into(),
                    error.into(),
                ],
            ))
            .await
            .map_err(db_error)?;
        }
        let attempts = load(&txn, self.stream, e.sequence)
            .await?
            .map_or(1, |s| s.attempts);
        crate::db::commit(txn).await?;
        Ok(attempts)
    }

    /// Whether an administrator skipped `sequence` (read in the handling transaction).
    pub async fn is_skipped(&self, txn: &WriteTxn, sequence: i64) -> Result<bool, ApiError> {
        Ok(load(txn, self.stream, sequence)
            .await?
            .is_some_and(|s| s.skipped))
    }

    /// In the transaction that handles `sequence`: its stall, if it had one, is over (a
    /// skipped one is kept, as the record of the skip).
    pub async fn handled(&self, txn: &WriteTxn, sequence: i64) -> Result<(), ApiError> {
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            txn.get_database_backend(),
            "DELETE FROM event_stall WHERE stream = $1 AND sequence = $2 AND skipped = $3",
            [self.stream.into(), sequence.into(), false.into()],
        ))
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// After the stalled event was handled or skipped and committed.
    pub async fn cleared(&self, sequence: i64) {
        tracing::info!(
            stream = self.stream,
            sequence,
            "the stalled event is resolved; the events behind it go on"
        );
        self.report(0).await;
    }

    /// Waits `wait`, or less if an administrator asks for a retry (or skips) meanwhile.
    pub async fn wait(&self, wait: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.retry.notified() => {}
        }
    }
}

/// `mosharekat.common.v1.StalledEventService`: ADMIN and AUDITOR list, ADMIN resolves.
#[derive(Debug, Clone)]
pub struct StalledEventsApi {
    db: Db,
    retry: Arc<Notify>,
}

impl StalledEventsApi {
    pub fn into_server(self) -> StalledEventServiceServer<Self> {
        StalledEventServiceServer::new(self)
    }
}

const READERS: &[Role] = &[Role::Admin, Role::Auditor];
const RESOLVERS: &[Role] = &[Role::Admin];
const MAX_REASON_CHARS: usize = 1000;

#[tonic::async_trait]
impl StalledEventService for StalledEventsApi {
    #[tracing::instrument(skip_all)]
    async fn list_stalled_events(
        &self,
        request: Request<pb::ListStalledEventsRequest>,
    ) -> Result<Response<pb::ListStalledEventsResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(READERS)?;
        let req = request.into_inner();
        let size = pagination::page_size(req.page_size, "page_size")?;
        let filters = pagination::fingerprint(&["stalls", &req.show_skipped.to_string()]);
        let (stream, after): (String, i64) =
            pagination::decode(&req.page_token, &filters, "page_token")?.unwrap_or_default();
        // `skipped = $3 OR $4`: only the stalled ones unless the skipped are asked for.
        let mut rows = Stall::find_by_statement(self.db.stmt(
            &format!(
                "SELECT {COLUMNS} FROM event_stall \
                 WHERE (stream > $1 OR (stream = $1 AND sequence > $2)) \
                 AND (skipped = $3 OR $4) ORDER BY stream, sequence LIMIT $5"
            ),
            [
                stream.into(),
                after.into(),
                false.into(),
                req.show_skipped.into(),
                (size as i64 + 1).into(),
            ],
        ))
        .all(self.db.conn())
        .await
        .map_err(db_error)?;
        let next_page_token = pagination::next_page(&mut rows, size, &filters, |s| {
            (s.stream.clone(), s.sequence)
        });
        Ok(Response::new(pb::ListStalledEventsResponse {
            stalled_events: rows.into_iter().map(Stall::into_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn resolve_stalled_event(
        &self,
        request: Request<pb::ResolveStalledEventRequest>,
    ) -> Result<Response<pb::ResolveStalledEventResponse>, Status> {
        let ctx = CallContext::from_request(&request)?;
        ctx.require(RESOLVERS)?;
        let req = request.into_inner();
        let reason = req.reason.trim();
        let mut v = Violations::new();
        if req.stream.trim().is_empty() {
            v.add(
                "stream",
                "must name the stream, e.g. registry.licence_events",
            );
        }
        if req.sequence <= 0 {
            v.add("sequence", "must be the stalled event's sequence (from 1)");
        }
        let action = Action::try_from(req.action).unwrap_or(Action::Unspecified);
        match action {
            Action::Unspecified => v.add("action", "must be ACTION_RETRY or ACTION_SKIP"),
            Action::Skip if reason.is_empty() => {
                v.add("reason", "a skip needs the reason it is skipped")
            }
            _ => {}
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            v.add("reason", format!("at most {MAX_REASON_CHARS} characters"));
        }
        v.into_result()?;
        let name = resource_name(&req.stream, req.sequence);
        let txn = self.db.begin_write().await?;
        let mut stall = load(&txn, &req.stream, req.sequence)
            .await?
            .ok_or_else(|| ApiError::not_found("stalled event", name.clone()))?;
        if stall.skipped {
            return Err(ApiError::precondition(
                "EVENT_ALREADY_SKIPPED",
                format!("{name} was skipped already: it is never handled"),
                "این رویداد پیش‌تر کنار گذاشته شده است و دیگر پردازش نمی‌شود.",
            )
            .into());
        }
        if action == Action::Skip {
            let now = txn.now_micros();
            txn.execute_raw(self.db.stmt(
                "UPDATE event_stall SET skipped = $1, skip_reason = $2, resolved_by = $3, \
                 resolved_us = $4 WHERE stream = $5 AND sequence = $6",
                [
                    true.into(),
                    reason.into(),
                    ctx.principal.subject.clone().into(),
                    now.into(),
                    req.stream.clone().into(),
                    req.sequence.into(),
                ],
            ))
            .await
            .map_err(db_error)?;
            stall.skipped = true;
            stall.skip_reason = reason.to_owned();
            stall.resolved_by = ctx.principal.subject.clone();
            stall.resolved_us = Some(now);
        }
        crate::audit::append(&txn, &ctx.audit(name.clone())).await?;
        crate::db::commit(txn).await?;
        tracing::warn!(stream = %req.stream, sequence = req.sequence, action = action.as_str_name(), by = %ctx.principal.subject, reason, "a stalled event was resolved");
        // The consumer waiting on it tries again (or moves past the skip) now.
        self.retry.notify_one();
        Ok(Response::new(pb::ResolveStalledEventResponse {
            stalled_event: Some(stall.into_pb()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let waits: Vec<_> = [1, 2, 3, 4, 5, 1000]
            .into_iter()
            .map(|n| b.after(n).as_millis())
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.after(0), Duration::from_millis(100));
    }
}
