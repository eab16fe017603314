//! The legal calendar: one way, the same in every service, to count a period and to know
//! which days are closed. Pure: no database, no network, no clock (callers pass instants).
//!
//! - [`date`]: Solar Hijri days ([`SolarDate`], by ICU4X's Persian calendar), the day an
//!   instant falls on in Tehran, the first and last instant of a day, and the Persian
//!   renderings for notices («۱۴۰۴/۰۱/۱۴», «۱۴ فروردین ۱۴۰۴»).
//! - [`closed`]: what closes a day — a province's weekly rest day, an official
//!   [`Holiday`] (solar or lunar, possibly provisional), a [`Closure`] of one province or
//!   all (who published it, when, why) — and the [`ClosedReason`] recorded for it.
//! - [`calendar`]: the [`Calendar`] holding them, with `is_open`, `closed_reasons` and
//!   `next_open_day`; `Calendar::suite`, what every service starts from (shipped years,
//!   then computed ones); and the [`Publication`] of a holiday or closure after the fact.
//! - [`deadline`]: periods counted as the Civil Procedure Code counts them (arts. 443–445:
//!   a month is 30 days, the act's day is not counted, a closed last day moves to the next
//!   open day), the [`Deadline`] with its [`RuleApplied`] (serialisable, for the service to
//!   store), and the deadlines a late publication moves (`Calendar::moved_by`,
//!   `Calendar::publish`). A deadline ends at the end of its last day, 23:59:59.999999
//!   `Asia/Tehran` (see the module for why).
//! - [`data`]: holiday lists as data files (`data/holidays-1404.toml`, `-1405.toml`, with
//!   their source), parsed with errors that name the entry.
//! - [`lunar`]: the official lunar holidays, and a provisional list for any Solar Hijri year
//!   computed with ICU4X's Umm al-Qura calendar, to be confirmed by an administrator.
//! - [`change`]: a published [`Change`] (holiday, confirmation, correction, closure) and
//!   `Calendar::apply`, the one folding of them in every service.
//! - [`shared`]: the [`SharedCalendar`] a running service holds and its calendar follower
//!   updates.
#![forbid(unsafe_code)]

pub mod calendar;
pub mod change;
pub mod closed;
pub mod data;
pub mod date;
pub mod deadline;
pub mod lunar;
pub mod shared;

pub use calendar::{Calendar, CalendarError, Publication};
pub use change::{Change, ChangeError};
pub use closed::{ClosedReason, Closure, ClosureError, Holiday, HolidayKind, Province, Scope};
pub use date::{DateError, SolarDate};
pub use deadline::{
    Article, Deadline, DeadlineError, LateMove, Moved, Period, PeriodError, RuleApplied, SkippedDay,
};
pub use lunar::provisional_lunar_holidays;
pub use shared::SharedCalendar;
