//! The licence event stream, and the sweep that records expiries.
//!
//! A watcher first replays every stored event after its sequence, then follows new ones:
//! it wakes when this process commits an event and, so that events written by another
//! replica are not missed, at least once a second.

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use mosharekat_api::registry::v1 as pb;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::error::ApiError;
use mosharekat_platform::follow::{Wakers, follow};
use tonic::Status;

use crate::app::Registry;
use crate::store;

const BATCH: u64 = 256;
const POLL: Duration = Duration::from_secs(1);

type EventStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchLicenceEventsResponse, Status>> + Send>>;

/// Every event after `after`, then each new one, in sequence order without gaps.
pub fn watch(registry: Registry, after: i64) -> EventStream {
    let wakers = Wakers {
        committed: Some(registry.event_notifier()),
        stopping: Some(registry.stopping()),
    };
    Box::pin(follow(after, BATCH as usize, POLL, wakers, move |last| {
        let registry = registry.clone();
        async move {
            let events = store::events_after(registry.db().conn(), last, BATCH).await?;
            Ok(events
                .iter()
                .map(|e| {
                    let msg = pb::WatchLicenceEventsResponse {
                        event: Some(pb::LicenceEvent::from(e)),
                    };
                    (e.sequence, msg)
                })
                .collect())
        }
    }))
}

/// Records every ACTIVE licence past its end as EXPIRED, with its event, once; each
/// through the change path, by the registry. Returns how many it recorded.
pub async fn sweep_expired(registry: &Registry) -> Result<usize, ApiError> {
    let ctx = CallContext::system("registry/expiry-sweep");
    let mut total = 0;
    loop {
        let now = registry.db().now_micros();
        let due = store::due_for_expiry(registry.db().conn(), now, 100).await?;
        if due.is_empty() {
            return Ok(total);
        }
        let mut recorded = 0;
        for name in &due {
            if registry.expire(&ctx, name).await?.is_some() {
                recorded += 1;
            }
        }
        total += recorded;
        // Every one found was changed meanwhile by someone else: nothing more is due.
        if recorded == 0 {
            return Ok(total);
        }
    }
}

/// Sweeps every `every` until the process ends.
pub async fn run_expiry_sweeper(registry: Registry, every: Duration) {
    loop {
        let span = tracing::info_span!("registry.expiry_sweep");
        match tracing::Instrument::instrument(sweep_expired(&registry), span).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "licences expired"),
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed; will retry"),
        }
        tokio::time::sleep(every).await;
    }
}
