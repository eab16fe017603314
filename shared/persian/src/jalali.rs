//! Solar Hijri (Jalali) dates, in Tehran time, for what people read.
//!
//! The conversion is ICU4X's Persian calendar, which follows the 33-year arithmetic that
//! matches the official calendar (1403 is a leap year), not the 2820-year cycle.

use std::fmt;

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Asia::Tehran;
use icu_calendar::Date;
use icu_calendar::cal::Persian;

/// The Solar Hijri month names, فروردین to اسفند.
pub const MONTH_NAMES: [&str; 12] = [
    "فروردین",
    "اردیبهشت",
    "خرداد",
    "تیر",
    "مرداد",
    "شهریور",
    "مهر",
    "آبان",
    "آذر",
    "دی",
    "بهمن",
    "اسفند",
];

/// A day of the Solar Hijri calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct JalaliDate {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl JalaliDate {
    /// The Jalali day of a Gregorian date; `None` for a date that does not exist.
    pub fn from_gregorian(year: i32, month: u8, day: u8) -> Option<Self> {
        let iso = Date::try_new_iso(year, month, day).ok()?;
        let p = iso.to_calendar(Persian);
        Some(Self {
            year: p.era_year().year,
            month: p.month().ordinal,
            day: p.day_of_month().0,
        })
    }

    /// The day it is in Tehran at instant `t`.
    pub fn from_instant(t: DateTime<Utc>) -> Self {
        let local = t.with_timezone(&Tehran).date_naive();
        // Every date chrono can represent is within ICU's range; fall back defensively.
        Self::from_gregorian(local.year(), local.month() as u8, local.day() as u8).unwrap_or(Self {
            year: 1,
            month: 1,
            day: 1,
        })
    }

    /// The Gregorian (year, month, day) of this Jalali day; `None` if it does not exist.
    pub fn to_gregorian(self) -> Option<(i32, u8, u8)> {
        let p = Date::try_new_persian(self.year, self.month, self.day).ok()?;
        let iso = p.to_calendar(icu_calendar::Iso);
        Some((
            iso.era_year().extended_year,
            iso.month().ordinal,
            iso.day_of_month().0,
        ))
    }

    pub fn month_name(self) -> &'static str {
        MONTH_NAMES[usize::from(self.month.clamp(1, 12)) - 1]
    }

    /// `۱۴۰۳/۱۲/۳۰`: the date as people write it.
    pub fn to_persian_string(self) -> String {
        crate::digits::to_persian_digits(&self.to_string())
    }

    /// `۳۰ اسفند ۱۴۰۳`: the long form for documents.
    pub fn to_long_persian_string(self) -> String {
        crate::digits::to_persian_digits(&format!(
            "{} {} {}",
            self.day,
            self.month_name(),
            self.year
        ))
    }
}

impl fmt::Display for JalaliDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}/{:02}/{:02}", self.year, self.month, self.day)
    }
}

/// `۱۴۰۳/۱۲/۳۰ ۱۴:۰۵`: date and time in Tehran, as minutes and messages show them.
pub fn format_instant(t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&Tehran);
    let d = JalaliDate::from_instant(t);
    crate::digits::to_persian_digits(&format!("{} {}", d, local.format("%H:%M")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(year: i32, month: u8, day: u8) -> JalaliDate {
        JalaliDate { year, month, day }
    }

    #[test]
    fn leap_year_1403_follows_the_official_calendar() {
        assert_eq!(
            JalaliDate::from_gregorian(2025, 3, 20),
            Some(day(1403, 12, 30))
        );
        assert_eq!(
            JalaliDate::from_gregorian(2025, 3, 21),
            Some(day(1404, 1, 1))
        );
        assert_eq!(day(1403, 12, 30).to_gregorian(), Some((2025, 3, 20)));
    }

    #[test]
    fn non_leap_year_has_no_30_esfand() {
        // 1404 is a common year: 1404/12/30 does not exist.
        assert_eq!(day(1404, 12, 30).to_gregorian(), None);
        assert_eq!(
            JalaliDate::from_gregorian(2026, 3, 20),
            Some(day(1404, 12, 29))
        );
    }

    #[test]
    fn known_days() {
        assert_eq!(
            JalaliDate::from_gregorian(1979, 2, 11),
            Some(day(1357, 11, 22))
        );
        assert_eq!(
            JalaliDate::from_gregorian(2026, 11, 29),
            Some(day(1405, 9, 8))
        );
    }

    #[test]
    fn tehran_midnight_decides_the_day() {
        // 21:00 UTC on 20 March 2025 is 00:30 on 21 March in Tehran (UTC+3:30): Nowruz.
        let t = Utc.with_ymd_and_hms(2025, 3, 20, 21, 0, 0).unwrap();
        assert_eq!(JalaliDate::from_instant(t), day(1404, 1, 1));
        let t = Utc.with_ymd_and_hms(2025, 3, 20, 20, 0, 0).unwrap();
        assert_eq!(JalaliDate::from_instant(t), day(1403, 12, 30));
    }

    #[test]
    fn persian_renderings() {
        let d = JalaliDate {
            year: 1403,
            month: 12,
            day: 30,
        };
        assert_eq!(d.to_persian_string(), "۱۴۰۳/۱۲/۳۰");
        assert_eq!(d.to_long_persian_string(), "۳۰ اسفند ۱۴۰۳");
        let t = Utc.with_ymd_and_hms(2025, 3, 20, 10, 35, 0).unwrap();
        assert_eq!(format_instant(t), "۱۴۰۳/۱۲/۳۰ ۱۴:۰۵");
    }
}
