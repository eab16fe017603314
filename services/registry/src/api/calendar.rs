//! `mosharekat.registry.v1.CalendarService`, the tonic edge of the legal calendar: the
//! role check, request → domain types, the use case, domain → response; and the stream of
//! calendar changes (replayed after a sequence, then followed live, like the licence
//! events).

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use mosharekat_api::registry::v1 as pb;
use mosharekat_api::registry::v1::calendar_service_server::CalendarService;
use mosharekat_calendar::{Change, Closure, Holiday, HolidayKind, Province, Scope, SolarDate};
use mosharekat_platform::auth::Role;
use mosharekat_platform::db::to_timestamp;
use mosharekat_platform::error::ApiError;
use mosharekat_platform::follow::{Wakers, follow};
use tonic::{Request, Response, Status};

use super::{allow, convert};
use crate::app::Registry;
use crate::calendar::{CalendarChange, ListedHoliday, Origin};

/// Who publishes the calendar.
pub const PUBLISHERS: &[Role] = &[Role::Admin];
/// Who reads and follows it: everyone authenticated (every deadline depends on it).
pub const CALENDAR_READERS: &[Role] = &Role::ALL;

const MAX_NAME: usize = 200;
const DEFAULT_PAGE: i32 = 100;
const MAX_PAGE: i32 = 1000;
const BATCH: u64 = 256;
const POLL: Duration = Duration::from_secs(1);

fn date(raw: &str, field: &str) -> Result<SolarDate, ApiError> {
    if raw.trim().is_empty() {
        return Err(ApiError::invalid(
            field,
            "is required (YYYY/MM/DD, Solar Hijri)",
        ));
    }
    raw.trim()
        .parse()
        .map_err(|e: mosharekat_calendar::DateError| ApiError::invalid(field, e.to_string()))
}

fn name(raw: &str) -> Result<String, ApiError> {
    let n = mosharekat_persian::normalize_name(raw, MAX_NAME)
        .map_err(|e| ApiError::invalid("name", e.to_string()))?;
    if n.is_empty() {
        return Err(ApiError::invalid("name", "is required"));
    }
    Ok(n)
}

fn kind(raw: i32) -> Result<HolidayKind, ApiError> {
    match pb::HolidayKind::try_from(raw) {
        Ok(pb::HolidayKind::Solar) => Ok(HolidayKind::Solar),
        Ok(pb::HolidayKind::Lunar) => Ok(HolidayKind::Lunar),
        _ => Err(ApiError::invalid(
            "kind",
            "must be HOLIDAY_KIND_SOLAR or HOLIDAY_KIND_LUNAR",
        )),
    }
}

fn kind_to_pb(k: HolidayKind) -> pb::HolidayKind {
    match k {
        HolidayKind::Solar => pb::HolidayKind::Solar,
        HolidayKind::Lunar => pb::HolidayKind::Lunar,
    }
}

fn province(raw: &str, field: &str) -> Result<Province, ApiError> {
    Province::new(raw).map_err(|e| ApiError::invalid(field, e.to_string()))
}

fn holiday_to_pb(h: &Holiday, origin: &Origin) -> pb::Holiday {
    let (origin, by, time, reason) = match origin {
        Origin::Shipped { source } => (
            pb::HolidayOrigin::Shipped,
            source.clone(),
            None,
            String::new(),
        ),
        Origin::Computed => (
            pb::HolidayOrigin::Computed,
            crate::calendar::COMPUTED_BY.to_owned(),
            None,
            String::new(),
        ),
        Origin::Published {
            actor,
            time_us,
            reason,
        } => (
            pb::HolidayOrigin::Published,
            actor.clone(),
            Some(to_timestamp(*time_us)),
            reason.clone(),
        ),
    };
    pb::Holiday {
        date: h.date.to_string(),
        name: h.name.clone(),
        kind: kind_to_pb(h.kind) as i32,
        provisional: h.provisional,
        origin: origin as i32,
        published_by: by,
        publish_time: time,
        reason,
        date_persian: h.date.to_persian_long(),
    }
}

fn closure_to_pb(seq: i64, c: &Closure) -> pb::Closure {
    let (province, nationwide) = match &c.scope {
        Scope::Nationwide => (String::new(), true),
        Scope::Province(p) => (p.to_string(), false),
    };
    pb::Closure {
        province,
        nationwide,
        first_day: c.first_day.to_string(),
        last_day: c.last_day.to_string(),
        reason: c.reason.clone(),
        published_by: c.published_by.clone(),
        publish_time: Some(to_timestamp(c.published_at.timestamp_micros())),
        sequence: seq,
    }
}

/// A stored change as the API shows it.
pub fn change_to_pb(c: &CalendarChange) -> pb::CalendarChange {
    use pb::CalendarChangeKind as K;
    let published = Origin::Published {
        actor: c.actor.clone(),
        time_us: c.time_us,
        reason: c.reason.clone(),
    };
    let mut out = pb::CalendarChange {
        sequence: c.seq,
        actor: c.actor.clone(),
        time: Some(to_timestamp(c.time_us)),
        reason: c.reason.clone(),
        ..Default::default()
    };
    match &c.change {
        Change::HolidayPublished { holiday } => {
            out.kind = K::HolidayPublished as i32;
            out.holiday = Some(holiday_to_pb(holiday, &published));
        }
        Change::HolidayConfirmed { date, name } => {
            out.kind = K::HolidayConfirmed as i32;
            out.holiday = Some(pb::Holiday {
                date: date.to_string(),
                name: name.clone(),
                origin: pb::HolidayOrigin::Published as i32,
                published_by: c.actor.clone(),
                publish_time: Some(to_timestamp(c.time_us)),
                reason: c.reason.clone(),
                date_persian: date.to_persian_long(),
                ..Default::default()
            });
        }
        Change::HolidayCorrected { from, holiday } => {
            out.kind = K::HolidayCorrected as i32;
            out.holiday = Some(holiday_to_pb(holiday, &published));
            out.corrected_from = from.to_string();
        }
        Change::ClosurePublished { closure } => {
            out.kind = K::ClosurePublished as i32;
            out.closure = Some(closure_to_pb(c.seq, closure));
        }
    }
    out
}

type ChangeStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchCalendarChangesResponse, Status>> + Send>>;

/// Every change after `after`, then each new one, in sequence order without gaps: woken
/// by this process's commits and, for another replica's, at least once a second.
fn watch(registry: Registry, after: i64) -> ChangeStream {
    let wakers = Wakers {
        committed: Some(registry.calendar_notifier()),
        stopping: Some(registry.stopping()),
    };
    Box::pin(follow(after, BATCH as usize, POLL, wakers, move |last| {
        let registry = registry.clone();
        async move {
            let changes = registry.calendar_changes_after(last, BATCH).await?;
            Ok(changes
                .iter()
                .map(|c| {
                    let msg = pb::WatchCalendarChangesResponse {
                        change: Some(change_to_pb(c)),
                    };
                    (c.seq, msg)
                })
                .collect())
        }
    }))
}

fn listed(l: &ListedHoliday) -> pb::Holiday {
    holiday_to_pb(&l.holiday, &l.origin)
}

#[tonic::async_trait]
impl CalendarService for Registry {
    #[tracing::instrument(skip_all)]
    async fn publish_holiday(
        &self,
        request: Request<pb::PublishHolidayRequest>,
    ) -> Result<Response<pb::PublishHolidayResponse>, Status> {
        let ctx = allow(&request, PUBLISHERS)?;
        let req = request.into_inner();
        let holiday = Holiday {
            date: date(&req.date, "date")?,
            name: name(&req.name)?,
            kind: kind(req.kind)?,
            hijri: None,
            provisional: false,
        };
        let reason = convert::reason(&req.reason, true, "reason")?;
        let answer = self
            .publish_holiday(&ctx, &req.request_id, &req, holiday, reason, |c| {
                pb::PublishHolidayResponse {
                    change: Some(change_to_pb(c)),
                }
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_holiday(
        &self,
        request: Request<pb::ConfirmHolidayRequest>,
    ) -> Result<Response<pb::ConfirmHolidayResponse>, Status> {
        let ctx = allow(&request, PUBLISHERS)?;
        let req = request.into_inner();
        let day = date(&req.date, "date")?;
        let name = name(&req.name)?;
        let corrected = if req.corrected_date.trim().is_empty() {
            None
        } else {
            Some(date(&req.corrected_date, "corrected_date")?)
        };
        let reason = convert::reason(&req.reason, true, "reason")?;
        let c = self
            .confirm_holiday(&ctx, day, &name, corrected, reason)
            .await?;
        Ok(Response::new(pb::ConfirmHolidayResponse {
            change: Some(change_to_pb(&c)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn publish_closure(
        &self,
        request: Request<pb::PublishClosureRequest>,
    ) -> Result<Response<pb::PublishClosureResponse>, Status> {
        let ctx = allow(&request, PUBLISHERS)?;
        let req = request.into_inner();
        let scope = match (req.nationwide, req.province.trim().is_empty()) {
            (true, true) => Scope::Nationwide,
            (true, false) => {
                return Err(ApiError::invalid(
                    "province",
                    "must be empty for a nationwide closure",
                )
                .into());
            }
            (false, true) => {
                return Err(
                    ApiError::invalid("province", "is required, unless nationwide is set").into(),
                );
            }
            (false, false) => Scope::Province(province(&req.province, "province")?),
        };
        let closure = Closure {
            scope,
            first_day: date(&req.first_day, "first_day")?,
            last_day: date(&req.last_day, "last_day")?,
            reason: convert::reason(&req.reason, true, "reason")?,
            // Set by the use case: the caller, now.
            published_by: String::new(),
            published_at: chrono::DateTime::UNIX_EPOCH,
        };
        let answer = self
            .publish_closure(&ctx, &req.request_id, &req, closure, |c| {
                pb::PublishClosureResponse {
                    change: Some(change_to_pb(c)),
                }
            })
            .await?;
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all)]
    async fn list_holidays(
        &self,
        request: Request<pb::ListHolidaysRequest>,
    ) -> Result<Response<pb::ListHolidaysResponse>, Status> {
        allow(&request, CALENDAR_READERS)?;
        let year = request.get_ref().year;
        if !(1300..=1500).contains(&year) {
            return Err(
                ApiError::invalid("year", "must be a Solar Hijri year from 1300 to 1500").into(),
            );
        }
        let (holidays, known) = self.list_holidays(year).await?;
        Ok(Response::new(pb::ListHolidaysResponse {
            holidays: holidays.iter().map(listed).collect(),
            official_list_known: known,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_closures(
        &self,
        request: Request<pb::ListClosuresRequest>,
    ) -> Result<Response<pb::ListClosuresResponse>, Status> {
        allow(&request, CALENDAR_READERS)?;
        let raw = request.get_ref().province.trim();
        let only = if raw.is_empty() {
            None
        } else {
            Some(province(raw, "province")?)
        };
        let closures = self.list_closures(only.as_ref()).await?;
        Ok(Response::new(pb::ListClosuresResponse {
            closures: closures.iter().map(|(s, c)| closure_to_pb(*s, c)).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_calendar_changes(
        &self,
        request: Request<pb::ListCalendarChangesRequest>,
    ) -> Result<Response<pb::ListCalendarChangesResponse>, Status> {
        allow(&request, CALENDAR_READERS)?;
        let req = request.into_inner();
        if req.after_sequence < 0 {
            return Err(ApiError::invalid("after_sequence", "must not be negative").into());
        }
        let size = match req.page_size {
            0 => DEFAULT_PAGE,
            n if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "page_size",
                    format!("must be from 0 to {MAX_PAGE}"),
                )
                .into());
            }
        };
        let mut changes = self
            .calendar_changes_after(req.after_sequence, size as u64 + 1)
            .await?;
        let more = changes.len() > size as usize;
        changes.truncate(size as usize);
        let next_after_sequence = if more {
            changes.last().map_or(0, |c| c.seq)
        } else {
            0
        };
        Ok(Response::new(pb::ListCalendarChangesResponse {
            changes: changes.iter().map(change_to_pb).collect(),
            next_after_sequence,
        }))
    }

    type WatchCalendarChangesStream = ChangeStream;

    #[tracing::instrument(skip_all)]
    async fn watch_calendar_changes(
        &self,
        request: Request<pb::WatchCalendarChangesRequest>,
    ) -> Result<Response<Self::WatchCalendarChangesStream>, Status> {
        allow(&request, CALENDAR_READERS)?;
        let after = request.get_ref().after_sequence;
        if after < 0 {
            return Err(ApiError::invalid("after_sequence", "must not be negative").into());
        }
        Ok(Response::new(watch(self.clone(), after)))
    }
}
