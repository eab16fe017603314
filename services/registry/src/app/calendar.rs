//! The calendar's use cases: publishing a holiday or closure, confirming or correcting a
//! provisional holiday, and the reads. Each change is one transaction: the change with its
//! sequence, who, when and why; every open licence expiry it moves (the licence saved
//! through the change path's repository, a history entry and event, its reminders moved,
//! the institution notified); the audit records; then the commit, after which the
//! registry's own calendar folds it in and live streams are woken.

use mosharekat_calendar::{Calendar, Change, ChangeError, Closure, Holiday, Province, SolarDate};
use mosharekat_platform::change::{self, Begun, Create, Repository};
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::WriteTxn;
use mosharekat_platform::error::ApiError;
use mosharekat_platform::telemetry::current_traceparent;

use super::{Registry, Result, notices};
use crate::calendar::{CalendarChange, ListedHoliday, fold};
use crate::error::RegistryError;
use crate::rules::{HistoryEntry, LicenceEventKind};
use crate::store::{self, Actor, Licences};

impl Registry {
    /// Folds in every change stored after the last one the registry's calendar holds
    /// (its own, and another replica's).
    pub async fn refresh_calendar(&self) -> Result<()> {
        let fresh =
            store::calendar::after(self.db.conn(), self.calendar.applied(), u64::MAX >> 1).await?;
        self.calendar.catch_up(&fresh);
        if let Some(last) = fresh.last() {
            self.calendar_changes.send_if_modified(|cur| {
                let newer = last.seq > *cur;
                if newer {
                    *cur = last.seq;
                }
                newer
            });
        }
        Ok(())
    }

    /// The calendar as of `txn`: the registry's, with any change stored since folded in.
    pub(crate) async fn calendar_in(&self, txn: &WriteTxn) -> Result<Calendar> {
        let applied = self.calendar.applied();
        let mut cal = self.calendar.shared.read(Calendar::clone);
        fold(
            &mut cal,
            &store::calendar::after(txn, applied, u64::MAX >> 1).await?,
        );
        Ok(cal)
    }

    /// Records `change` in `txn` and moves the licence expiries it closes; returns the
    /// change as stored and the last licence event written (0 for none).
    async fn record_change(
        &self,
        txn: &WriteTxn,
        ctx: &CallContext,
        change: Change,
        reason: &str,
    ) -> Result<(CalendarChange, i64)> {
        let mut cal = self.calendar_in(txn).await?;
        let published = cal.apply(&change).map_err(refusal)?;
        let now = txn.now_micros();
        let seq = store::calendar::append(
            txn,
            &change,
            &ctx.principal.subject,
            ctx.principal.role.as_str(),
            reason,
            now,
        )
        .await?;
        mosharekat_platform::audit::append(txn, &ctx.audit(format!("calendar/changes/{seq}")))
            .await?;
        let mut last_event = 0;
        if let Some(published) = published {
            let open = store::licences_with_expiry(txn, now).await?;
            let with_rule: Vec<_> = open
                .iter()
                .filter_map(|l| l.value.expiry.as_ref().map(|d| (l, d)))
                .collect();
            let moved = cal
                .moved_by(&published, with_rule.iter().map(|(l, d)| (*l, *d)))
                .map_err(|e| refusal(ChangeError::Calendar(e)))?;
            for m in moved {
                let (version, lic) = (m.key.version, &m.key.value);
                let why = m
                    .after
                    .rule
                    .late_moves
                    .last()
                    .map(|mv| mv.explain_persian())
                    .unwrap_or_default();
                let entry = HistoryEntry {
                    kind: LicenceEventKind::ExpiryMoved,
                    from: Some(lic.state),
                    to: lic.state,
                    actor: ctx.principal.subject.clone(),
                    time_us: now,
                    reason: why.clone(),
                };
                let mut next = lic.clone();
                next.terms.valid_until_us = m.after.ends_at.timestamp_micros();
                next.expiry = Some(m.after.clone());
                next.update_us = now;
                if !Licences.save(txn, &lic.name, version, &next).await? {
                    return Err(ApiError::stale(&lic.name.to_string()).into());
                }
                last_event = store::append_event(
                    txn,
                    &lic.name,
                    &entry,
                    Actor::REGISTRY.role,
                    &current_traceparent(),
                )
                .await?;
                mosharekat_platform::audit::append(txn, &ctx.audit(lic.name.to_string())).await?;
                notices::expiry_moved(txn, &lic.name, &m.after, &why).await?;
                tracing::info!(licence = %lic.name, to = %m.after.last_day, "licence expiry moved by the calendar");
            }
        }
        let stored = CalendarChange {
            seq,
            change,
            actor: ctx.principal.subject.clone(),
            actor_role: ctx.principal.role.as_str().to_owned(),
            reason: reason.to_owned(),
            time_us: now,
        };
        Ok((stored, last_event))
    }

    /// The end of a publishing create: the change recorded, the answer remembered for a
    /// retry under the change's name, committed, then the calendar catches up.
    async fn record_created<Resp: prost::Message>(
        &self,
        create: Create<'_>,
        ctx: &CallContext,
        change: Change,
        reason: &str,
        respond: impl FnOnce(&CalendarChange) -> Resp,
    ) -> Result<Resp> {
        let (stored, last_event) = self
            .record_change(create.txn(), ctx, change, reason)
            .await?;
        let answer = respond(&stored);
        create
            .commit(format!("calendar/changes/{}", stored.seq), &answer)
            .await?;
        self.after_calendar_commit(last_event).await;
        Ok(answer)
    }

    /// After a commit: the registry's calendar and streams catch up. A failure to read
    /// is logged: the next change or read catches up instead.
    async fn after_calendar_commit(&self, last_event: i64) {
        if let Err(e) = self.refresh_calendar().await {
            tracing::warn!(error = %e, "the calendar could not be refreshed after a change");
        }
        self.announce(last_event);
    }

    /// Publishes a holiday; a retried `request_id` answers as the first time.
    pub async fn publish_holiday<Req, Resp>(
        &self,
        ctx: &CallContext,
        request_id: &str,
        req: &Req,
        holiday: Holiday,
        reason: String,
        respond: impl FnOnce(&CalendarChange) -> Resp,
    ) -> Result<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let create = match change::begin_create(&self.db, ctx, request_id, req).await? {
            Begun::Replay(answer) => return Ok(answer),
            Begun::Fresh(c) => c,
        };
        let cal = self.calendar_in(create.txn()).await?;
        if cal
            .holidays_on(holiday.date)
            .iter()
            .any(|h| h.name == holiday.name)
        {
            return Err(ApiError::already_exists(
                "holiday",
                format!("{} {}", holiday.date, holiday.name),
            )
            .into());
        }
        self.record_created(
            *create,
            ctx,
            Change::HolidayPublished { holiday },
            &reason,
            respond,
        )
        .await
    }

    /// Confirms the provisional holiday `name` on `date` as listed, or moves it to
    /// `corrected` (confirmed there).
    pub async fn confirm_holiday(
        &self,
        ctx: &CallContext,
        date: SolarDate,
        name: &str,
        corrected: Option<SolarDate>,
        reason: String,
    ) -> Result<CalendarChange> {
        let txn = self.db.begin_write().await?;
        let cal = self.calendar_in(&txn).await?;
        let Some(current) = cal
            .holidays_on(date)
            .iter()
            .find(|h| h.name == name)
            .cloned()
        else {
            return Err(ApiError::not_found("holiday", format!("{date} {name}")).into());
        };
        let change = match corrected.filter(|to| *to != date) {
            None => {
                if !current.provisional {
                    return Err(RegistryError::Api(ApiError::precondition(
                        "HOLIDAY_NOT_PROVISIONAL",
                        format!("the holiday {name} on {date} is confirmed already"),
                        "این تعطیلی پیش‌تر تأیید شده است.",
                    )));
                }
                Change::HolidayConfirmed {
                    date,
                    name: name.to_owned(),
                }
            }
            Some(to) => {
                if cal.holidays_on(to).iter().any(|h| h.name == name) {
                    return Err(ApiError::already_exists("holiday", format!("{to} {name}")).into());
                }
                Change::HolidayCorrected {
                    from: date,
                    holiday: Holiday {
                        date: to,
                        provisional: false,
                        ..current
                    },
                }
            }
        };
        let (stored, last_event) = self.record_change(&txn, ctx, change, &reason).await?;
        mosharekat_platform::db::commit(txn).await?;
        self.after_calendar_commit(last_event).await;
        Ok(stored)
    }

    /// Publishes a closure (by the caller, now); the answer as [`Registry::publish_holiday`].
    pub async fn publish_closure<Req, Resp>(
        &self,
        ctx: &CallContext,
        request_id: &str,
        req: &Req,
        mut closure: Closure,
        respond: impl FnOnce(&CalendarChange) -> Resp,
    ) -> Result<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let create = match change::begin_create(&self.db, ctx, request_id, req).await? {
            Begun::Replay(answer) => return Ok(answer),
            Begun::Fresh(c) => c,
        };
        closure.published_by = ctx.principal.subject.clone();
        closure.published_at = create.txn().clock().now();
        let reason = closure.reason.clone();
        self.record_created(
            *create,
            ctx,
            Change::ClosurePublished { closure },
            &reason,
            respond,
        )
        .await
    }

    /// The holidays of `year`, and whether its official list is known.
    pub async fn list_holidays(&self, year: i32) -> Result<(Vec<ListedHoliday>, bool)> {
        self.refresh_calendar().await?;
        let changes = store::calendar::all(self.db.conn()).await?;
        Ok(self.calendar.shared.read(|c| {
            (
                crate::calendar::holidays_of(c, &changes, year),
                c.knows_holidays_of(year),
            )
        }))
    }

    /// The closures published, oldest first, with the sequence that published each;
    /// only those covering `province` when it is given.
    pub async fn list_closures(&self, province: Option<&Province>) -> Result<Vec<(i64, Closure)>> {
        Ok(store::calendar::all(self.db.conn())
            .await?
            .into_iter()
            .filter_map(|c| match c.change {
                Change::ClosurePublished { closure } => Some((c.seq, closure)),
                _ => None,
            })
            .filter(|(_, c)| province.is_none_or(|p| c.scope.covers(p)))
            .collect())
    }

    pub async fn calendar_changes_after(
        &self,
        after: i64,
        limit: u64,
    ) -> Result<Vec<CalendarChange>> {
        Ok(store::calendar::after(self.db.conn(), after, limit).await?)
    }

    pub(crate) fn calendar_notifier(&self) -> tokio::sync::watch::Receiver<i64> {
        self.calendar_changes.subscribe()
    }
}

/// A change the calendar refuses: the field it names.
fn refusal(e: ChangeError) -> RegistryError {
    use mosharekat_calendar::{CalendarError, ClosureError};
    let api = match e {
        ChangeError::NoSuchHoliday { date, name } => {
            ApiError::not_found("holiday", format!("{date} {name}"))
        }
        ChangeError::Calendar(CalendarError::Closure(ClosureError::Reversed { .. })) => {
            ApiError::invalid("last_day", "must not be before first_day")
        }
        ChangeError::Calendar(CalendarError::Closure(ClosureError::TooLong { max, .. })) => {
            ApiError::invalid("last_day", format!("a closure spans at most {max} days"))
        }
        ChangeError::Calendar(CalendarError::Closure(ClosureError::Empty(field))) => {
            ApiError::invalid(field, "must not be empty")
        }
        ChangeError::Calendar(e @ CalendarError::NoOpenDay(..)) => ApiError::precondition(
            "CALENDAR_NO_OPEN_DAY",
            e.to_string(),
            "با این تعطیلی، روز کاری برای پایان مهلت‌ها یافت نمی‌شود.",
        ),
        ChangeError::Calendar(e @ CalendarError::NoWorkingDay) => {
            ApiError::invalid("rest_days", e.to_string())
        }
    };
    RegistryError::Api(api)
}
