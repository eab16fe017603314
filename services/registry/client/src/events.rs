//! Following the registry's licence events durably: the last sequence handled is stored
//! in the consumer's own database in the same transaction as the event's effects, so
//! that a restart of either side resumes exactly where it stopped, and nothing is handled
//! twice. While the registry is down it keeps retrying. An event that fails to be handled
//! holds the events behind it (order matters) and is made loud and resolvable through
//! `mosharekat_platform::stalls`: recorded, retried with a capped backoff, counted, logged,
//! NOT_SERVING under `mosharekat.licence_events`, and listed for an administrator to
//! RETRY or SKIP.

use std::time::Duration;

use mosharekat_api::registry::v1::WatchLicenceEventsRequest;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use mosharekat_api::registry::v1::{LicenceEvent, LicenceEventKind};
use sea_orm::{ConnectionTrait, Statement};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use mosharekat_platform::client::{PeerInterceptor, ServiceToken};
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::{WriteTxn, db_error};
use mosharekat_platform::error::ApiError;
use mosharekat_platform::stalls::{EventRef, Stalls};

/// What a service does with each licence event, inside the transaction that also moves
/// its cursor.
#[async_trait::async_trait]
pub trait LicenceEventHandler: Send + Sync + 'static {
    async fn handle(&self, txn: &WriteTxn, event: &LicenceEvent) -> Result<(), ApiError>;
}

/// The context a consumer handles `event` in: the service itself (`system`, `SERVICE`),
/// on behalf of whoever changed the licence (the event's actor, a subject as for peer
/// calls), so that the audit records of what the event causes name them. An event with
/// no actor names no one.
pub fn context_for(method: &str, event: &LicenceEvent) -> CallContext {
    let mut ctx = CallContext::system(method);
    ctx.principal.on_behalf_of = (!event.actor.is_empty()).then(|| event.actor.clone());
    ctx
}

/// The last sequence of `stream` this database has handled.
pub async fn cursor<C: ConnectionTrait>(c: &C, stream: &str) -> Result<i64, ApiError> {
    let row = c
        .query_one_raw(Statement::from_sql_and_values(
            c.get_database_backend(),
            "SELECT last_sequence FROM event_cursor WHERE stream = $1",
            [stream.into()],
        ))
        .await
        .map_err(db_error)?;
    match row {
        Some(r) => r.try_get("", "last_sequence").map_err(db_error),
        None => Ok(0),
    }
}

pub(crate) async fn set_cursor(txn: &WriteTxn, stream: &str, seq: i64) -> Result<(), ApiError> {
    let backend = txn.get_database_backend();
    let updated = txn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE event_cursor SET last_sequence = $1 WHERE stream = $2",
            [seq.into(), stream.into()],
        ))
        .await
        .map_err(db_error)?;
    if updated.rows_affected() == 0 {
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "INSERT INTO event_cursor (stream, last_sequence) VALUES ($1, $2)",
            [stream.into(), seq.into()],
        ))
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    Handled,
    /// An administrator skipped it: the cursor moved past it, unhandled.
    Skipped,
    /// The cursor was past it already.
    Before,
}

/// Handles one event exactly once: nothing if the cursor is past it; past it unhandled if
/// an administrator skipped it; otherwise handled, its stall (if any) cleared, and the
/// cursor moved, all in one transaction.
async fn apply<H: LicenceEventHandler>(
    stalls: &Stalls,
    handler: &H,
    e: &LicenceEvent,
) -> Result<Applied, ApiError> {
    let stream = stalls.stream();
    let txn = stalls.db().begin_write().await?;
    if cursor(&txn, stream).await? >= e.sequence {
        return Ok(Applied::Before);
    }
    let applied = if stalls.is_skipped(&txn, e.sequence).await? {
        Applied::Skipped
    } else {
        handler.handle(&txn, e).await?;
        stalls.handled(&txn, e.sequence).await?;
        Applied::Handled
    };
    set_cursor(&txn, stream, e.sequence).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(applied)
}

/// Handles `e`, retrying a failure with the stalls' backoff (or at once when an
/// administrator asks) until it is handled or skipped: the events behind it wait.
async fn apply_until_done<H: LicenceEventHandler>(
    stalls: &Stalls,
    handler: &H,
    e: &LicenceEvent,
    span: &tracing::Span,
) {
    let kind = LicenceEventKind::try_from(e.kind)
        .map(|k| k.as_str_name())
        .unwrap_or("LICENCE_EVENT_KIND_UNSPECIFIED");
    let subject = if e.licence.is_empty() {
        &e.institution
    } else {
        &e.licence
    };
    let mut attempt = 0i64;
    loop {
        match apply(stalls, handler, e).instrument(span.clone()).await {
            Ok(applied) => {
                if attempt > 0 || applied == Applied::Skipped {
                    span.in_scope(|| {
                        if applied == Applied::Skipped {
                            tracing::warn!(
                                sequence = e.sequence,
                                "a licence event skipped by an administrator was not handled"
                            );
                        }
                    });
                    stalls.cleared(e.sequence).await;
                }
                return;
            }
            Err(err) => {
                attempt += 1;
                let event = EventRef {
                    sequence: e.sequence,
                    kind,
                    subject,
                };
                let wait = stalls
                    .failed(event, attempt, &err)
                    .instrument(span.clone())
                    .await;
                stalls.wait(wait).await;
            }
        }
    }
}

/// Events from the registry, from after a sequence.
pub type EventStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<LicenceEvent, tonic::Status>> + Send>>;

/// Where licence events come from: the registry's `WatchLicenceEvents`, or a test's own.
#[async_trait::async_trait]
pub trait LicenceEventSource: Send + 'static {
    /// The events after `after`, in order, until the stream ends.
    async fn watch(&mut self, after: i64) -> Result<EventStream, tonic::Status>;
}

type Registry = RegistryServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, PeerInterceptor>,
>;

struct FromRegistry(Registry);

#[async_trait::async_trait]
impl LicenceEventSource for FromRegistry {
    async fn watch(&mut self, after: i64) -> Result<EventStream, tonic::Status> {
        let s = self
            .0
            .watch_licence_events(WatchLicenceEventsRequest {
                after_sequence: after,
            })
            .await?
            .into_inner();
        Ok(Box::pin(s.filter_map(|item| match item {
            Ok(msg) => msg.event.map(Ok),
            Err(s) => Some(Err(s)),
        })))
    }
}

/// Follows the registry's licence events until the process ends, recording and reporting
/// an event that keeps failing in `stalls` (see `mosharekat_platform::stalls`).
pub async fn follow_licence_events<H: LicenceEventHandler>(
    registry: Channel,
    token: ServiceToken,
    handler: H,
    stalls: Stalls,
) {
    let client = RegistryServiceClient::with_interceptor(registry, PeerInterceptor::new(token));
    follow_events_from(FromRegistry(client), handler, stalls).await
}

/// Follows `source` until the process ends: each event handled exactly once, in order.
pub async fn follow_events_from<S: LicenceEventSource, H: LicenceEventHandler>(
    mut source: S,
    handler: H,
    stalls: Stalls,
) {
    let (db, stream) = (stalls.db().clone(), stalls.stream());
    stalls.start().await;
    // Reaching the registry: a separate, shorter backoff than a failing event's.
    let mut backoff = Duration::from_millis(200);
    loop {
        let after = match cursor(db.conn(), stream).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the event cursor; retrying");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        match source.watch(after).await {
            Ok(mut s) => {
                tracing::info!(after, "following licence events");
                backoff = Duration::from_millis(200);
                while let Some(item) = s.next().await {
                    let Ok(e) = item else { break };
                    let span = tracing::info_span!(
                        "licence_event",
                        otel.kind = "consumer",
                        messaging.system = "grpc",
                        messaging.operation = "process",
                        event.sequence = e.sequence,
                        event.kind = e.kind,
                    );
                    if let Some(cause) =
                        mosharekat_platform::telemetry::span_context_of(&e.traceparent)
                    {
                        span.add_link(cause);
                    }
                    apply_until_done(&stalls, &handler, &e, &span).await;
                    stalls
                        .metrics()
                        .set_gauge("licence_events_handled", e.sequence);
                }
                tracing::info!("the licence event stream ended; reconnecting");
            }
            Err(s) => {
                tracing::debug!(code = ?s.code(), "the registry is not reachable for events; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_acts_for_the_events_actor() {
        let e = LicenceEvent {
            actor: "officer-7".into(),
            actor_role: "REGISTRY_OFFICER".into(),
            ..Default::default()
        };
        let a = context_for("referral/licence-events", &e).audit("referrals/1");
        assert_eq!(
            (a.actor.as_str(), a.role.as_str(), a.on_behalf_of.as_str()),
            ("system", "SERVICE", "officer-7")
        );
        assert_eq!(a.method, "referral/licence-events");
        // An event stored without an actor: the record names no one, as before.
        let a = context_for("referral/licence-events", &LicenceEvent::default()).audit("x");
        assert_eq!((a.actor.as_str(), a.on_behalf_of.as_str()), ("system", ""));
    }

    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};

    use mosharekat_api::common::v1 as pb;
    use mosharekat_platform::auth::{Principal, Role};
    use mosharekat_platform::db::{Db, DbOptions};
    use mosharekat_platform::metrics::Metrics;
    use mosharekat_platform::stalls::{Backoff, LICENCE_EVENTS_HEALTH, StalledEventsApi};
    use mosharekat_platform::testing::{Backend, PlatformTables, TestDb};
    use pb::stalled_event_service_server::StalledEventService as _;
    use tonic_health::pb::health_server::Health as _;

    /// Events 1..=n, delivered again from any cursor, then a stream that stays open.
    struct Fixed(i64);

    #[async_trait::async_trait]
    impl LicenceEventSource for Fixed {
        async fn watch(&mut self, after: i64) -> Result<EventStream, tonic::Status> {
            let events: Vec<_> = (after + 1..=self.0)
                .map(|sequence| {
                    Ok(LicenceEvent {
                        sequence,
                        kind: LicenceEventKind::Suspended as i32,
                        licence: format!("institutions/1/licences/{sequence}"),
                        ..Default::default()
                    })
                })
                .collect();
            Ok(Box::pin(
                tokio_stream::iter(events).chain(tokio_stream::pending()),
            ))
        }
    }

    /// Fails on the sequences in `broken`; records the others it handles.
    #[derive(Clone, Default)]
    struct Flaky {
        broken: Arc<Mutex<HashSet<i64>>>,
        handled: Arc<Mutex<Vec<i64>>>,
    }

    #[async_trait::async_trait]
    impl LicenceEventHandler for Flaky {
        async fn handle(&self, _txn: &WriteTxn, e: &LicenceEvent) -> Result<(), ApiError> {
            if self.broken.lock().unwrap().contains(&e.sequence) {
                return Err(ApiError::internal(anyhow_free(e.sequence)));
            }
            self.handled.lock().unwrap().push(e.sequence);
            Ok(())
        }
    }

    fn anyhow_free(seq: i64) -> std::io::Error {
        std::io::Error::other(format!("the recall of event {seq} cannot be written"))
    }

    fn call<T>(role: Role, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.extensions_mut().insert(Principal {
            subject: format!("{}-1", role.as_str().to_lowercase()),
            role,
            institution: None,
            member: None,
            service: None,
            authority: None,
            on_behalf_of: None,
        });
        r
    }

    async fn list(api: &StalledEventsApi, show_skipped: bool) -> Vec<pb::StalledEvent> {
        api.list_stalled_events(call(
            Role::Auditor,
            pb::ListStalledEventsRequest {
                show_skipped,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .stalled_events
    }

    async fn resolve(
        api: &StalledEventsApi,
        role: Role,
        sequence: i64,
        action: pb::resolve_stalled_event_request::Action,
        reason: &str,
    ) -> Result<pb::StalledEvent, tonic::Status> {
        api.resolve_stalled_event(call(
            role,
            pb::ResolveStalledEventRequest {
                stream: "registry.licence_events".into(),
                sequence,
                action: action as i32,
                reason: reason.into(),
            },
        ))
        .await
        .map(|r| r.into_inner().stalled_event.unwrap())
    }

    /// Polls `f` until it holds (events are handled on another task), for at most 20 s.
    async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
        let start = std::time::Instant::now();
        while !f().await {
            assert!(start.elapsed() < Duration::from_secs(20), "never: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// An event that keeps failing holds the events behind it and is loud (the stall
    /// row, the metrics, health NOT_SERVING under `mosharekat.licence_events`, the list);
    /// RETRY after the cause is fixed handles it and those behind it; SKIP (ADMIN only,
    /// with a reason, audited) moves past it for good.
    async fn a_failing_event_stalls_loudly_and_is_resolved(backend: Backend) {
        use pb::resolve_stalled_event_request::Action;
        let t = TestDb::new(backend).await.unwrap();
        let db = Db::connect(&t.url, &DbOptions::default()).await.unwrap();
        db.migrate::<PlatformTables>().await.unwrap();
        let (health, _) = tonic_health::server::health_reporter();
        let probe = tonic_health::server::HealthService::from_health_reporter(health.clone());
        let status = async || {
            probe
                .check(tonic::Request::new(tonic_health::pb::HealthCheckRequest {
                    service: LICENCE_EVENTS_HEALTH.into(),
                }))
                .await
                .unwrap()
                .into_inner()
                .status
        };
        let metrics = Metrics::new("referral");
        let stalls = Stalls::new(
            db.clone(),
            "registry.licence_events",
            LICENCE_EVENTS_HEALTH,
            metrics.clone(),
            Some(health),
        )
        // Short, so that retries come fast; the cap is what a failing event settles at.
        .with_backoff(Backoff {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(40),
        });
        let api = stalls.api();
        let flaky = Flaky::default();
        flaky.broken.lock().unwrap().extend([2, 5]);
        let follower = tokio::spawn(follow_events_from(Fixed(6), flaky.clone(), stalls.clone()));

        // Event 2 fails: retried, recorded, counted, reported; 3.. wait behind it.
        until("event 2 failed three times", async || {
            list(&api, false)
                .await
                .first()
                .is_some_and(|s| s.attempts >= 3)
        })
        .await;
        assert_eq!(*flaky.handled.lock().unwrap(), [1]);
        let stalled = list(&api, false).await;
        assert_eq!(stalled.len(), 1);
        let s = &stalled[0];
        assert_eq!(
            (s.sequence, s.kind.as_str()),
            (2, "LICENCE_EVENT_KIND_SUSPENDED")
        );
        assert_eq!(s.subject, "institutions/1/licences/2");
        assert_eq!(s.state, pb::stalled_event::State::Stalled as i32);
        assert!(s.last_error.contains("event 2 cannot be written"), "{s:?}");
        assert!(s.first_failure_time.unwrap().seconds <= s.last_failure_time.unwrap().seconds);
        assert!(
            s.detail
                .starts_with("event 2 of registry.licence_events stalled since "),
            "{}",
            s.detail
        );
        let text = metrics.render();
        assert!(text.contains(r#"mosharekat_event_stalled_sequence{stream="registry.licence_events",service="referral"} 2"#), "{text}");
        assert!(
            text.contains("mosharekat_event_handling_failures_total"),
            "{text}"
        );
        assert_eq!(
            status().await,
            tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
        );
        assert_eq!(
            cursor(db.conn(), "registry.licence_events").await.unwrap(),
            1
        );

        // Only an administrator resolves; a skip needs its reason; an unknown event is not found.
        let denied = resolve(&api, Role::Auditor, 2, Action::Retry, "")
            .await
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        let no_reason = resolve(&api, Role::Admin, 2, Action::Skip, " ")
            .await
            .unwrap_err();
        assert_eq!(no_reason.code(), tonic::Code::InvalidArgument);
        assert!(no_reason.message().contains("reason"), "{no_reason:?}");
        let unknown = resolve(&api, Role::Admin, 9, Action::Retry, "")
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);
        let no_action = resolve(&api, Role::Admin, 2, Action::Unspecified, "")
            .await
            .unwrap_err();
        assert_eq!(no_action.code(), tonic::Code::InvalidArgument);

        // The cause is fixed and an administrator retries: 2, 3 and 4 are handled; 5 stalls.
        flaky.broken.lock().unwrap().remove(&2);
        // The consumer's own next retry (every 40 ms at most here) may handle 2 before the
        // administrator's RETRY arrives; the stall is then already gone.
        let retried = match resolve(&api, Role::Admin, 2, Action::Retry, "").await {
            Ok(_) => true,
            Err(e) => {
                assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
                false
            }
        };
        until("event 5 stalled", async || {
            list(&api, false)
                .await
                .first()
                .is_some_and(|s| s.sequence == 5)
        })
        .await;
        assert_eq!(*flaky.handled.lock().unwrap(), [1, 2, 3, 4]);

        // 5 is skipped, with its reason: never handled, and 6 goes on.
        let skipped = resolve(
            &api,
            Role::Admin,
            5,
            Action::Skip,
            "the institution was merged",
        )
        .await
        .unwrap();
        assert_eq!(skipped.state, pb::stalled_event::State::Skipped as i32);
        until("event 6 handled", async || {
            flaky.handled.lock().unwrap().contains(&6)
        })
        .await;
        assert_eq!(*flaky.handled.lock().unwrap(), [1, 2, 3, 4, 6]);
        assert!(list(&api, false).await.is_empty());
        let kept = list(&api, true).await;
        assert_eq!(kept.len(), 1);
        assert_eq!(
            (
                kept[0].sequence,
                kept[0].skip_reason.as_str(),
                kept[0].resolved_by.as_str()
            ),
            (5, "the institution was merged", "admin-1")
        );
        assert!(kept[0].resolve_time.is_some());
        until("health SERVING again", async || {
            status().await == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        })
        .await;
        assert!(metrics.render().contains(r#"mosharekat_event_stalled_sequence{stream="registry.licence_events",service="referral"} 0"#));
        let again = resolve(&api, Role::Admin, 5, Action::Retry, "")
            .await
            .unwrap_err();
        assert_eq!(again.code(), tonic::Code::FailedPrecondition);
        // Each resolution is audited under the event's name.
        let audited = db
            .conn()
            .query_all_raw(db.stmt("SELECT resource FROM audit_log ORDER BY seq", []))
            .await
            .unwrap();
        let resources: Vec<String> = audited
            .iter()
            .map(|r| r.try_get("", "resource").unwrap())
            .collect();
        let mut expected = vec!["stalled-events/registry.licence_events/5"];
        if retried {
            expected.insert(0, "stalled-events/registry.licence_events/2");
        }
        assert_eq!(resources, expected);
        follower.abort();
        let _ = follower.await;

        // After a restart, from the cursor, with the cause of 5 gone: 5 is still never handled.
        flaky.broken.lock().unwrap().clear();
        let follower = tokio::spawn(follow_events_from(Fixed(7), flaky.clone(), stalls.clone()));
        until("event 7 handled", async || {
            flaky.handled.lock().unwrap().contains(&7)
        })
        .await;
        assert_eq!(*flaky.handled.lock().unwrap(), [1, 2, 3, 4, 6, 7]);
        follower.abort();
    }

    #[tokio::test]
    async fn a_failing_event_stalls_loudly_and_is_resolved_on_sqlite() {
        a_failing_event_stalls_loudly_and_is_resolved(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn a_failing_event_stalls_loudly_and_is_resolved_on_postgres() {
        a_failing_event_stalls_loudly_and_is_resolved(Backend::Postgres).await;
    }
}
