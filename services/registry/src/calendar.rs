//! The legal calendar as the registry owns it, free of I/O: the calendar it starts from
//! (the shipped official holidays, and for the years after them the fixed solar holidays
//! and provisional lunar ones), the changes published through the API, and where each
//! holiday listed comes from.

use std::collections::HashMap;

use mosharekat_calendar::{Calendar, Change, Holiday, SharedCalendar, SolarDate};

/// Who computed a list the suite does not ship, as listed.
pub const COMPUTED_BY: &str = "محاسبه‌شده: تعطیلات ثابت خورشیدی، و تعطیلات قمری با تقویم ام‌القری (ICU4X) به‌علاوهٔ یک روز، تا تأیید مدیر";

/// One change as stored: its sequence, who, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarChange {
    pub seq: i64,
    pub change: Change,
    pub actor: String,
    pub actor_role: String,
    pub reason: String,
    pub time_us: i64,
}

/// The last Solar Hijri year the suite ships an official list of.
pub fn last_shipped_year() -> i32 {
    mosharekat_calendar::data::shipped()
        .iter()
        .map(|y| y.year)
        .max()
        .unwrap_or(1405)
}

/// The calendar before any published change: [`Calendar::suite`], as every service
/// that follows the registry starts from.
pub fn starting_calendar() -> Calendar {
    Calendar::suite()
}

/// The calendar after `changes`, in sequence order. A stored change that does not apply
/// (it could not have been stored so) is logged and skipped rather than stopping the
/// service.
pub fn fold(calendar: &mut Calendar, changes: &[CalendarChange]) {
    for c in changes {
        if let Err(e) = calendar.apply(&c.change) {
            tracing::error!(seq = c.seq, error = %e, "a stored calendar change does not apply");
        }
    }
}

/// Where a listed holiday comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Shipped {
        source: String,
    },
    Computed,
    /// Published, confirmed or corrected by `actor` at `time_us` because of `reason`.
    Published {
        actor: String,
        time_us: i64,
        reason: String,
    },
}

/// A holiday with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedHoliday {
    pub holiday: Holiday,
    pub origin: Origin,
}

/// The holidays of `year` in `calendar`, each with its origin: the last change that
/// touched it (date and name) if any, else the shipped list's source or "computed".
pub fn holidays_of(
    calendar: &Calendar,
    changes: &[CalendarChange],
    year: i32,
) -> Vec<ListedHoliday> {
    let mut last_touch: HashMap<(SolarDate, &str), &CalendarChange> = HashMap::new();
    for c in changes {
        let key = match &c.change {
            Change::HolidayPublished { holiday } | Change::HolidayCorrected { holiday, .. } => {
                (holiday.date, holiday.name.as_str())
            }
            Change::HolidayConfirmed { date, name } => (*date, name.as_str()),
            Change::ClosurePublished { .. } => continue,
        };
        last_touch.insert(key, c);
    }
    let sources: HashMap<i32, String> = mosharekat_calendar::data::shipped()
        .into_iter()
        .map(|y| (y.year, y.source))
        .collect();
    calendar
        .holidays()
        .filter(|h| h.date.year() == year)
        .map(|h| {
            let origin = match last_touch.get(&(h.date, h.name.as_str())) {
                Some(c) => Origin::Published {
                    actor: c.actor.clone(),
                    time_us: c.time_us,
                    reason: c.reason.clone(),
                },
                None => match sources.get(&year) {
                    Some(source) => Origin::Shipped {
                        source: source.clone(),
                    },
                    None => Origin::Computed,
                },
            };
            ListedHoliday {
                holiday: h.clone(),
                origin,
            }
        })
        .collect()
}

/// The calendar a running registry counts by, and the last change folded into it.
#[derive(Debug, Clone)]
pub struct LiveCalendar {
    pub shared: SharedCalendar,
    applied: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl LiveCalendar {
    pub fn new(changes: &[CalendarChange]) -> Self {
        let mut c = starting_calendar();
        fold(&mut c, changes);
        let last = changes.last().map_or(0, |c| c.seq);
        Self {
            shared: SharedCalendar::new(c),
            applied: std::sync::Arc::new(std::sync::atomic::AtomicI64::new(last)),
        }
    }

    /// The last sequence folded in.
    pub fn applied(&self) -> i64 {
        self.applied.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Folds in the changes after [`LiveCalendar::applied`] (read by the caller, in
    /// order); those at or before it are already in.
    pub fn catch_up(&self, changes: &[CalendarChange]) {
        self.shared.update(|cal| {
            let from = self.applied();
            let fresh: Vec<_> = changes.iter().filter(|c| c.seq > from).cloned().collect();
            fold(cal, &fresh);
            if let Some(last) = fresh.last() {
                self.applied
                    .store(last.seq, std::sync::atomic::Ordering::SeqCst);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosharekat_calendar::HolidayKind;

    #[test]
    fn later_years_have_the_fixed_solar_days_and_provisional_lunar_ones() {
        let c = starting_calendar();
        let last = last_shipped_year();
        let nowruz = SolarDate::new(last + 1, 1, 1).unwrap();
        assert!(
            c.holidays_on(nowruz)
                .iter()
                .any(|h| h.kind == HolidayKind::Solar && !h.provisional)
        );
        let lunar: Vec<_> = c
            .holidays()
            .filter(|h| h.date.year() == last + 1 && h.kind == HolidayKind::Lunar)
            .collect();
        assert!(lunar.len() >= 17, "{}", lunar.len());
        assert!(lunar.iter().all(|h| h.provisional));
        assert!(!c.knows_holidays_of(last + 1));
        assert!(c.knows_holidays_of(last));
        let listed = holidays_of(&c, &[], last + 1);
        assert!(listed.iter().all(|l| l.origin == Origin::Computed));
        let listed = holidays_of(&c, &[], last);
        assert!(
            listed
                .iter()
                .all(|l| matches!(&l.origin, Origin::Shipped { source } if !source.is_empty()))
        );
    }
}
