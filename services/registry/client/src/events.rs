//! Following the registry's licence events durably: the last sequence handled is stored
//! in the consumer's own database in the same transaction as the event's effects, so
//! that a restart of either side resumes exactly where it stopped, and nothing is handled
//! twice. While the registry is down it keeps retrying.

use std::time::Duration;

use mosharekat_api::registry::v1::LicenceEvent;
use mosharekat_api::registry::v1::WatchLicenceEventsRequest;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use sea_orm::{ConnectionTrait, Statement};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use mosharekat_platform::client::{PeerInterceptor, ServiceToken};
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::{Db, WriteTxn, db_error};
use mosharekat_platform::error::ApiError;
use mosharekat_platform::metrics::Metrics;

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

async fn set_cursor(txn: &WriteTxn, stream: &str, seq: i64) -> Result<(), ApiError> {
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

/// Handles one event exactly once: skipped if the cursor is past it.
async fn apply<H: LicenceEventHandler>(
    db: &Db,
    stream: &str,
    handler: &H,
    e: &LicenceEvent,
) -> Result<(), ApiError> {
    let txn = db.begin_write().await?;
    if cursor(&txn, stream).await? >= e.sequence {
        return Ok(());
    }
    handler.handle(&txn, e).await?;
    set_cursor(&txn, stream, e.sequence).await?;
    txn.commit().await.map_err(db_error)
}

/// Follows the registry's licence events until the process ends.
pub async fn follow_licence_events<H: LicenceEventHandler>(
    db: Db,
    registry: Channel,
    token: ServiceToken,
    stream: &'static str,
    handler: H,
    metrics: Metrics,
) {
    let mut client = RegistryServiceClient::with_interceptor(registry, PeerInterceptor::new(token));
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
        match client
            .watch_licence_events(WatchLicenceEventsRequest {
                after_sequence: after,
            })
            .await
        {
            Ok(resp) => {
                tracing::info!(after, "following licence events");
                backoff = Duration::from_millis(200);
                let mut s = resp.into_inner();
                while let Some(item) = s.next().await {
                    let Ok(msg) = item else { break };
                    let Some(e) = msg.event else { continue };
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
                    let mut done = apply(&db, stream, &handler, &e)
                        .instrument(span.clone())
                        .await;
                    while let Err(err) = done {
                        span.in_scope(|| tracing::warn!(error = %err, seq = e.sequence, "handling a licence event failed; retrying"));
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        done = apply(&db, stream, &handler, &e)
                            .instrument(span.clone())
                            .await;
                    }
                    metrics.set_gauge("licence_events_handled", e.sequence);
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
}
