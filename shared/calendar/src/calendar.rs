//! The calendar of closed days: weekly rest per province, official holidays, closures.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Weekday, WeekdaySet};

use crate::closed::{ClosedReason, Closure, ClosureError, Holiday, Province, Scope};
use crate::date::SolarDate;

/// Every closed day the suite knows, for every province.
///
/// A value, not a service: each service builds it from the shipped data and what
/// administrators published, and asks it questions.
#[derive(Debug, Clone)]
pub struct Calendar {
    default_rest: WeekdaySet,
    rest_by_province: BTreeMap<Province, WeekdaySet>,
    holidays: BTreeMap<SolarDate, Vec<Holiday>>,
    /// The Solar Hijri years whose holiday list the calendar holds.
    holiday_years: BTreeSet<i32>,
    closures: Vec<Closure>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("every day of the week would be a rest day; at least one must be open")]
    NoWorkingDay,
    #[error(transparent)]
    Closure(#[from] ClosureError),
    #[error("no open day within {0} days after {1}")]
    NoOpenDay(i64, SolarDate),
}

/// How far `next_open_day` looks: closures are at most a year each, so only a run of many
/// of them could exhaust this, and that is an error to report, not a loop to hang in.
const SEARCH_DAYS: i64 = 3 * 366;

/// How many years after the last shipped one [`Calendar::suite`] computes: long enough for
/// the deadlines the suite sets (licences run a few years), short enough to compute at start.
pub const COMPUTED_YEARS: i32 = 10;

impl Default for Calendar {
    fn default() -> Self {
        Self::new()
    }
}

impl Calendar {
    /// A calendar with Friday as every province's rest day and nothing else closed.
    pub fn new() -> Self {
        Self {
            default_rest: WeekdaySet::single(Weekday::Fri),
            rest_by_province: BTreeMap::new(),
            holidays: BTreeMap::new(),
            holiday_years: BTreeSet::new(),
            closures: Vec::new(),
        }
    }

    /// The calendar with the official holidays the suite ships (1404 and 1405).
    pub fn shipped() -> Self {
        let mut c = Self::new();
        for year in crate::data::shipped() {
            c.add_holiday_year(year.year, year.holidays);
        }
        c
    }

    /// What every service of the suite starts from, the same everywhere (the registry's
    /// published changes are folded in on top): the shipped years, then for each of the
    /// [`COMPUTED_YEARS`] after the last of them the solar holidays of that last year on the
    /// same days (they are fixed by law) and the provisional lunar ones. Those years stay
    /// "not known" (`knows_holidays_of` is false), so a deadline ending in them records
    /// that its holidays were not yet official.
    pub fn suite() -> Self {
        let mut c = Self::shipped();
        let Some(last) = c.holiday_years.iter().next_back().copied() else {
            return c;
        };
        let solar: Vec<Holiday> = c
            .holidays()
            .filter(|h| h.kind == crate::closed::HolidayKind::Solar && h.date.year() == last)
            .cloned()
            .collect();
        for year in last + 1..=last + COMPUTED_YEARS {
            for h in &solar {
                if let Ok(date) = SolarDate::new(year, h.date.month(), h.date.day()) {
                    c.add_holiday(Holiday {
                        date,
                        provisional: false,
                        ..h.clone()
                    });
                }
            }
            for h in crate::lunar::provisional_lunar_holidays(year).unwrap_or_default() {
                c.add_holiday(h);
            }
        }
        c
    }

    fn check_rest(days: WeekdaySet) -> Result<(), CalendarError> {
        if days.len() >= 7 {
            return Err(CalendarError::NoWorkingDay);
        }
        Ok(())
    }

    /// Sets the weekly rest days of every province without its own setting.
    pub fn set_default_rest_days(
        &mut self,
        days: impl IntoIterator<Item = Weekday>,
    ) -> Result<(), CalendarError> {
        let days = weekday_set(days);
        Self::check_rest(days)?;
        self.default_rest = days;
        Ok(())
    }

    /// Sets one province's weekly rest days (for example Thursday and Friday).
    pub fn set_rest_days(
        &mut self,
        province: Province,
        days: impl IntoIterator<Item = Weekday>,
    ) -> Result<(), CalendarError> {
        let days = weekday_set(days);
        Self::check_rest(days)?;
        self.rest_by_province.insert(province, days);
        Ok(())
    }

    pub fn rest_days(&self, province: &Province) -> WeekdaySet {
        self.rest_by_province
            .get(province)
            .copied()
            .unwrap_or(self.default_rest)
    }

    /// Adds (or replaces) the holiday list of a Solar Hijri year. Each holiday belongs to
    /// the year of its date; the year is marked as known even when the list is empty.
    pub fn add_holiday_year(&mut self, year: i32, holidays: impl IntoIterator<Item = Holiday>) {
        self.holidays.retain(|d, _| d.year() != year);
        for h in holidays {
            self.holidays.entry(h.date).or_default().push(h);
        }
        self.holiday_years.insert(year);
    }

    /// Adds one holiday (a newly announced one, or a correction published as a new day).
    pub fn add_holiday(&mut self, holiday: Holiday) {
        self.holidays.entry(holiday.date).or_default().push(holiday);
    }

    /// An administrator confirms a provisional holiday as announced; `false` if there is no
    /// such holiday.
    pub fn confirm_holiday(&mut self, day: SolarDate, name: &str) -> bool {
        match self
            .holidays
            .get_mut(&day)
            .and_then(|hs| hs.iter_mut().find(|h| h.name == name))
        {
            Some(h) => {
                h.provisional = false;
                true
            }
            None => false,
        }
    }

    /// Removes a holiday (a provisional date the announcement did not confirm). Deadlines
    /// already moved past it stay as they were computed; new ones no longer skip it.
    pub fn remove_holiday(&mut self, day: SolarDate, name: &str) -> Option<Holiday> {
        let hs = self.holidays.get_mut(&day)?;
        let i = hs.iter().position(|h| h.name == name)?;
        let removed = hs.remove(i);
        if hs.is_empty() {
            self.holidays.remove(&day);
        }
        Some(removed)
    }

    /// Adds a closure after checking it.
    pub fn add_closure(&mut self, closure: Closure) -> Result<(), CalendarError> {
        closure.validate()?;
        self.closures.push(closure);
        Ok(())
    }

    /// Whether the holiday list of `year` is known (shipped or published).
    pub fn knows_holidays_of(&self, year: i32) -> bool {
        self.holiday_years.contains(&year)
    }

    /// The holidays on a day.
    pub fn holidays_on(&self, day: SolarDate) -> &[Holiday] {
        self.holidays.get(&day).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every holiday the calendar holds, in date order.
    pub fn holidays(&self) -> impl Iterator<Item = &Holiday> {
        self.holidays.values().flatten()
    }

    pub fn closures(&self) -> &[Closure] {
        &self.closures
    }

    /// Why `day` is closed in `province`; empty when it is open.
    pub fn closed_reasons(&self, province: &Province, day: SolarDate) -> Vec<ClosedReason> {
        let mut reasons = Vec::new();
        let weekday = day.weekday();
        if self.rest_days(province).contains(weekday) {
            reasons.push(ClosedReason::WeeklyRest { weekday });
        }
        for h in self.holidays_on(day) {
            reasons.push(ClosedReason::Holiday {
                name: h.name.clone(),
                provisional: h.provisional,
            });
        }
        for c in &self.closures {
            if c.contains(day) && c.scope.covers(province) {
                reasons.push(closure_reason(c));
            }
        }
        reasons
    }

    pub fn is_open(&self, province: &Province, day: SolarDate) -> bool {
        self.closed_reasons(province, day).is_empty()
    }

    /// `day` itself if it is open, else the first open day after it.
    pub fn next_open_day(
        &self,
        province: &Province,
        day: SolarDate,
    ) -> Result<SolarDate, CalendarError> {
        let mut d = day;
        for _ in 0..=SEARCH_DAYS {
            if self.is_open(province, d) {
                return Ok(d);
            }
            d = d.succ();
        }
        Err(CalendarError::NoOpenDay(SEARCH_DAYS, day))
    }
}

fn weekday_set(days: impl IntoIterator<Item = Weekday>) -> WeekdaySet {
    let mut set = WeekdaySet::EMPTY;
    for d in days {
        set.insert(d);
    }
    set
}

pub(crate) fn closure_reason(c: &Closure) -> ClosedReason {
    ClosedReason::Closure {
        scope: c.scope.clone(),
        reason: c.reason.clone(),
        published_by: c.published_by.clone(),
        published_at: c.published_at,
    }
}

/// Something published after deadlines were set: a holiday or a closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publication {
    Holiday(Holiday),
    Closure(Closure),
}

impl Publication {
    /// Whether it closes `day` in `province`.
    pub fn closes(&self, province: &Province, day: SolarDate) -> bool {
        match self {
            Publication::Holiday(h) => h.date == day,
            Publication::Closure(c) => c.contains(day) && c.scope.covers(province),
        }
    }

    pub fn reason(&self) -> ClosedReason {
        match self {
            Publication::Holiday(h) => ClosedReason::Holiday {
                name: h.name.clone(),
                provisional: h.provisional,
            },
            Publication::Closure(c) => closure_reason(c),
        }
    }

    pub fn scope(&self) -> Scope {
        match self {
            Publication::Holiday(_) => Scope::Nationwide,
            Publication::Closure(c) => c.scope.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closed::HolidayKind;
    use chrono::{TimeZone, Utc};

    fn d(y: i32, m: u8, day: u8) -> SolarDate {
        SolarDate::new(y, m, day).unwrap()
    }
    fn p(name: &str) -> Province {
        Province::new(name).unwrap()
    }

    #[test]
    fn friday_is_the_default_rest_day_and_a_province_may_differ() {
        let mut c = Calendar::new();
        // 1404/01/15 is Friday 2025-04-04.
        assert!(!c.is_open(&p("اردبیل"), d(1404, 1, 15)));
        assert!(c.is_open(&p("اردبیل"), d(1404, 1, 14)));
        c.set_rest_days(p("تهران"), [Weekday::Thu, Weekday::Fri])
            .unwrap();
        assert!(!c.is_open(&p("تهران"), d(1404, 1, 14)));
        assert!(c.is_open(&p("اردبیل"), d(1404, 1, 14)));
        assert_eq!(
            c.closed_reasons(&p("تهران"), d(1404, 1, 14)),
            vec![ClosedReason::WeeklyRest {
                weekday: Weekday::Thu
            }]
        );
        let all = [
            Weekday::Sat,
            Weekday::Sun,
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ];
        assert_eq!(
            c.set_rest_days(p("تهران"), all),
            Err(CalendarError::NoWorkingDay)
        );
        assert_eq!(
            c.set_default_rest_days(all),
            Err(CalendarError::NoWorkingDay)
        );
    }

    #[test]
    fn the_province_name_is_compared_after_normalisation() {
        let mut c = Calendar::new();
        c.set_rest_days(p("کرمان"), [Weekday::Thu]).unwrap();
        // The Arabic kaf in «كرمان» is folded to the Persian one.
        assert!(!c.is_open(&p("كرمان"), d(1404, 1, 14)));
    }

    #[test]
    fn holidays_and_closures_close_days() {
        let mut c = Calendar::new();
        c.add_holiday_year(
            1404,
            [Holiday {
                date: d(1404, 1, 13),
                name: "روز طبیعت".into(),
                kind: HolidayKind::Solar,
                hijri: None,
                provisional: false,
            }],
        );
        let ardabil = p("اردبیل");
        assert!(!c.is_open(&ardabil, d(1404, 1, 13)));
        assert!(c.knows_holidays_of(1404));
        assert!(!c.knows_holidays_of(1406));
        let closure = Closure {
            scope: Scope::Province(ardabil.clone()),
            first_day: d(1404, 5, 5),
            last_day: d(1404, 5, 6),
            reason: "گرمای شدید".into(),
            published_by: "استانداری اردبیل".into(),
            published_at: Utc.with_ymd_and_hms(2025, 7, 26, 10, 0, 0).unwrap(),
        };
        c.add_closure(closure).unwrap();
        assert!(!c.is_open(&ardabil, d(1404, 5, 6)));
        assert!(c.is_open(&p("تهران"), d(1404, 5, 6)));
        assert!(c.is_open(&ardabil, d(1404, 5, 7)));
        // 1404/05/04 is Saturday; the closure covers Sunday and Monday, so Tuesday is next.
        assert_eq!(
            c.next_open_day(&ardabil, d(1404, 5, 5)).unwrap(),
            d(1404, 5, 7)
        );
        assert_eq!(
            c.next_open_day(&ardabil, d(1404, 5, 4)).unwrap(),
            d(1404, 5, 4)
        );
    }

    #[test]
    fn a_provisional_holiday_is_confirmed_or_corrected() {
        let mut c = Calendar::shipped();
        let ardabil = p("اردبیل");
        let sadiq = "شهادت امام جعفر صادق (ع)";
        let day = d(1405, 1, 25);
        assert!(c.holidays_on(day)[0].provisional);
        assert!(c.confirm_holiday(day, sadiq));
        assert!(!c.holidays_on(day)[0].provisional);
        assert!(!c.confirm_holiday(day, "نام دیگر"));
        // Corrected: removed from one day (and published on another as a new holiday).
        let removed = c.remove_holiday(day, sadiq).unwrap();
        assert_eq!(removed.hijri, Some([10, 25]));
        assert!(c.is_open(&ardabil, day));
        assert!(c.holidays_on(day).is_empty());
        assert!(c.remove_holiday(day, sadiq).is_none());
    }

    #[test]
    fn a_bad_closure_is_refused_with_its_field() {
        let mut c = Calendar::new();
        let base = Closure {
            scope: Scope::Nationwide,
            first_day: d(1404, 5, 6),
            last_day: d(1404, 5, 5),
            reason: "سوگواری".into(),
            published_by: "قوه قضاییه".into(),
            published_at: Utc.with_ymd_and_hms(2025, 7, 26, 10, 0, 0).unwrap(),
        };
        assert!(matches!(
            c.add_closure(base.clone()),
            Err(CalendarError::Closure(ClosureError::Reversed { .. }))
        ));
        let long = Closure {
            first_day: d(1404, 1, 1),
            last_day: d(1406, 1, 1),
            ..base.clone()
        };
        assert!(matches!(
            c.add_closure(long),
            Err(CalendarError::Closure(ClosureError::TooLong { .. }))
        ));
        let no_reason = Closure {
            last_day: d(1404, 5, 6),
            reason: "  ".into(),
            ..base
        };
        assert_eq!(
            c.add_closure(no_reason),
            Err(CalendarError::Closure(ClosureError::Empty("reason")))
        );
        assert!(c.closures().is_empty());
    }

    #[test]
    fn a_calendar_closed_for_years_reports_instead_of_looping() {
        let mut c = Calendar::new();
        let mut first = d(1404, 1, 1);
        for _ in 0..4 {
            let last = first.add_days(Closure::MAX_DAYS - 1);
            c.add_closure(Closure {
                scope: Scope::Nationwide,
                first_day: first,
                last_day: last,
                reason: "آزمون".into(),
                published_by: "آزمون".into(),
                published_at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
            })
            .unwrap();
            first = last.succ();
        }
        assert!(matches!(
            c.next_open_day(&p("اردبیل"), d(1404, 1, 1)),
            Err(CalendarError::NoOpenDay(..))
        ));
    }
}
