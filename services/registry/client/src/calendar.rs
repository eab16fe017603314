//! Following the registry's legal calendar: every service counts its deadlines by the
//! same calendar, which the registry owns and changes (holidays and closures published,
//! provisional holidays confirmed or corrected).
//!
//! [`follow_calendar`] keeps the caller's [`SharedCalendar`] equal to the registry's and
//! tells the caller of each day newly closed, so that it moves the open deadlines that end
//! on it:
//!
//! - on start it replays every change from sequence 1 into the calendar (the calendar is
//!   in memory: it starts each time the process starts from what the registry starts
//!   from, `SharedCalendar::suite()`, which the caller must pass, perhaps with its own
//!   provinces' rest days set: changes fold into it as into the registry's);
//! - for each change after the caller's cursor (`event_cursor`, stream
//!   [`CALENDAR_STREAM`], in the caller's own database: the platform's migration makes the
//!   table) that closes a day, it calls the caller's handler with the [`Publication`],
//!   after the calendar holds it (`Calendar::moved_by` needs that), and then advances the
//!   cursor. A handler that fails is retried with a capped backoff, and the changes behind
//!   it wait: order matters. The cursor is advanced after the handler, in a transaction
//!   of its own, so a crash between them hands the same publication to the handler again:
//!   the handler must be idempotent (moving a deadline already moved past the day moves
//!   nothing, as `Calendar::moved_by` skips deadlines that do not end on a closed day);
//! - while the registry is down or restarting it keeps reconnecting (capped backoff),
//!   and resumes from the last change folded in, nothing lost or repeated.
//!
//! Wiring (the lead's): `tokio::spawn(follow_calendar(channel, token, db.clone(),
//! calendar.clone(), move |p| { let svc = svc.clone(); async move { svc.apply_publication(p).await } }))`.

use std::future::Future;
use std::time::Duration;

use mosharekat_api::registry::v1 as pb;
use mosharekat_api::registry::v1::calendar_service_client::CalendarServiceClient;
use mosharekat_calendar::{
    Change, Closure, Holiday, HolidayKind, Province, Publication, Scope, SharedCalendar, SolarDate,
};
use mosharekat_platform::client::{PeerInterceptor, ServiceToken};
use mosharekat_platform::db::{Db, db_error};
use mosharekat_platform::error::ApiError;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// The caller's cursor of the calendar changes it has handled, in `event_cursor`.
pub const CALENDAR_STREAM: &str = "registry.calendar_changes";

/// A change as the registry streams it, as the calendar folds it in; an error names what
/// does not decode (a newer registry's change this release does not know).
pub fn change_from_pb(c: &pb::CalendarChange) -> Result<Change, String> {
    use pb::CalendarChangeKind as K;
    let date = |raw: &str, what: &str| -> Result<SolarDate, String> {
        raw.parse()
            .map_err(|e| format!("change {}: {what}: {e}", c.sequence))
    };
    let holiday = || -> Result<Holiday, String> {
        let h = c
            .holiday
            .as_ref()
            .ok_or_else(|| format!("change {} has no holiday", c.sequence))?;
        Ok(Holiday {
            date: date(&h.date, "holiday.date")?,
            name: h.name.clone(),
            kind: match pb::HolidayKind::try_from(h.kind) {
                Ok(pb::HolidayKind::Lunar) => HolidayKind::Lunar,
                Ok(pb::HolidayKind::Solar) => HolidayKind::Solar,
                _ => return Err(format!("change {}: unknown holiday kind", c.sequence)),
            },
            hijri: None,
            provisional: h.provisional,
        })
    };
    match K::try_from(c.kind) {
        Ok(K::HolidayPublished) => Ok(Change::HolidayPublished {
            holiday: holiday()?,
        }),
        Ok(K::HolidayConfirmed) => {
            let h = c
                .holiday
                .as_ref()
                .ok_or_else(|| format!("change {} has no holiday", c.sequence))?;
            Ok(Change::HolidayConfirmed {
                date: date(&h.date, "holiday.date")?,
                name: h.name.clone(),
            })
        }
        Ok(K::HolidayCorrected) => Ok(Change::HolidayCorrected {
            from: date(&c.corrected_from, "corrected_from")?,
            holiday: holiday()?,
        }),
        Ok(K::ClosurePublished) => {
            let p = c
                .closure
                .as_ref()
                .ok_or_else(|| format!("change {} has no closure", c.sequence))?;
            let scope = if p.nationwide {
                Scope::Nationwide
            } else {
                Scope::Province(
                    Province::new(&p.province)
                        .map_err(|e| format!("change {}: closure.province: {e}", c.sequence))?,
                )
            };
            let published_at = p
                .publish_time
                .as_ref()
                .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
                .ok_or_else(|| format!("change {}: closure.publish_time", c.sequence))?;
            Ok(Change::ClosurePublished {
                closure: Closure {
                    scope,
                    first_day: date(&p.first_day, "closure.first_day")?,
                    last_day: date(&p.last_day, "closure.last_day")?,
                    reason: p.reason.clone(),
                    published_by: p.published_by.clone(),
                    published_at,
                },
            })
        }
        _ => Err(format!(
            "change {} is of a kind this release does not know ({})",
            c.sequence, c.kind
        )),
    }
}

/// Changes from the registry, from after a sequence.
pub type ChangeStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<pb::CalendarChange, tonic::Status>> + Send>,
>;

/// Where calendar changes come from: the registry's `WatchCalendarChanges`, or a test's.
#[async_trait::async_trait]
pub trait CalendarSource: Send + 'static {
    /// The changes after `after`, in order, until the stream ends.
    async fn watch(&mut self, after: i64) -> Result<ChangeStream, tonic::Status>;
}

struct FromRegistry(
    CalendarServiceClient<
        tonic::service::interceptor::InterceptedService<Channel, PeerInterceptor>,
    >,
);

#[async_trait::async_trait]
impl CalendarSource for FromRegistry {
    async fn watch(&mut self, after: i64) -> Result<ChangeStream, tonic::Status> {
        let s = self
            .0
            .watch_calendar_changes(pb::WatchCalendarChangesRequest {
                after_sequence: after,
            })
            .await?
            .into_inner();
        Ok(Box::pin(s.filter_map(|item| match item {
            Ok(msg) => msg.change.map(Ok),
            Err(s) => Some(Err(s)),
        })))
    }
}

/// Follows the registry's calendar until the process ends (see the module): `calendar`
/// kept equal to the registry's, `handler` called once per day newly closed after the
/// cursor kept in `db`.
pub async fn follow_calendar<H, F>(
    registry: Channel,
    token: ServiceToken,
    db: Db,
    calendar: SharedCalendar,
    handler: H,
) where
    H: FnMut(Publication) -> F + Send,
    F: Future<Output = Result<(), ApiError>> + Send,
{
    let client = CalendarServiceClient::with_interceptor(registry, PeerInterceptor::new(token));
    follow_calendar_from(FromRegistry(client), db, calendar, handler).await
}

/// The most a failing handler or an unreachable registry waits between tries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

async fn retry<T, Fut: Future<Output = Result<T, ApiError>>>(
    what: &str,
    sequence: i64,
    mut f: impl FnMut() -> Fut,
) -> T {
    let mut wait = FIRST_BACKOFF;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => {
                tracing::warn!(sequence, error = %e, "{what} failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn set_cursor(db: &Db, seq: i64) -> Result<(), ApiError> {
    let txn = db.begin_write().await?;
    crate::events::set_cursor(&txn, CALENDAR_STREAM, seq).await?;
    txn.commit().await.map_err(db_error)
}

/// [`follow_calendar`] from any source (a test's own).
pub async fn follow_calendar_from<S, H, F>(
    mut source: S,
    db: Db,
    calendar: SharedCalendar,
    mut handler: H,
) where
    S: CalendarSource,
    H: FnMut(Publication) -> F + Send,
    F: Future<Output = Result<(), ApiError>> + Send,
{
    // The last change folded into `calendar` (this process's, not the cursor).
    let mut applied = 0i64;
    let mut backoff = FIRST_BACKOFF;
    loop {
        match source.watch(applied).await {
            Ok(mut s) => {
                tracing::info!(after = applied, "following calendar changes");
                backoff = FIRST_BACKOFF;
                while let Some(item) = s.next().await {
                    let Ok(c) = item else { break };
                    if c.sequence != applied + 1 {
                        tracing::warn!(
                            expected = applied + 1,
                            got = c.sequence,
                            "calendar changes out of order; reconnecting"
                        );
                        break;
                    }
                    let change = match change_from_pb(&c) {
                        Ok(ch) => ch,
                        Err(e) => {
                            // Not folded in: the calendar would differ from the registry's.
                            // Held here, loudly, until a release that knows it runs.
                            tracing::error!(sequence = c.sequence, error = %e, "a calendar change cannot be read");
                            break;
                        }
                    };
                    let published = match calendar.update(|cal| cal.apply(&change)) {
                        Ok(p) => p,
                        Err(e) => {
                            // The registry applied it to the same calendar; only a calendar
                            // changed by other hands refuses it.
                            tracing::error!(sequence = c.sequence, error = %e, "a calendar change does not apply here");
                            None
                        }
                    };
                    applied = c.sequence;
                    let cursor = retry("reading the calendar cursor", c.sequence, || {
                        crate::events::cursor(db.conn(), CALENDAR_STREAM)
                    })
                    .await;
                    if c.sequence <= cursor {
                        continue;
                    }
                    if let Some(p) = published {
                        retry("handling a calendar publication", c.sequence, || {
                            handler(p.clone())
                        })
                        .await;
                    }
                    retry("advancing the calendar cursor", c.sequence, || {
                        set_cursor(&db, c.sequence)
                    })
                    .await;
                }
                tracing::info!("the calendar change stream ended; reconnecting");
            }
            Err(s) => {
                tracing::debug!(code = ?s.code(), "the registry is not reachable for calendar changes; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
