//! Solar Hijri days, converted by ICU4X's Persian calendar, and their Persian rendering.
//!
//! ICU4X follows the 33-year arithmetic that matches the official calendar (1403 is a leap
//! year: 2025-03-20 is 1403/12/30 and 2025-03-21 is 1404/01/01), not the 2820-year cycle; the
//! tests check it against those anchors and against an independent library.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc, Weekday};
use chrono_tz::Asia::Tehran;
use icu_calendar::Date;
use icu_calendar::cal::Persian;
use mosharekat_persian::digits::{to_ascii_digits, to_persian_digits};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The Solar Hijri month names, فروردین to اسفند: the persian crate's, written once.
pub use mosharekat_persian::jalali::MONTH_NAMES;

/// The Persian weekday names, شنبه (Saturday, the first day of the week) to جمعه.
pub fn weekday_name(w: Weekday) -> &'static str {
    match w {
        Weekday::Sat => "شنبه",
        Weekday::Sun => "یکشنبه",
        Weekday::Mon => "دوشنبه",
        Weekday::Tue => "سه‌شنبه",
        Weekday::Wed => "چهارشنبه",
        Weekday::Thu => "پنجشنبه",
        Weekday::Fri => "جمعه",
    }
}

/// A day of the Solar Hijri calendar that exists (1404/12/30 does not: 1404 is a common year).
///
/// Stored and exchanged as `"1404/01/14"` with ASCII digits; shown with Persian digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SolarDate {
    year: i32,
    month: u8,
    day: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("«{0}» is not a Solar Hijri date written YYYY/MM/DD")]
    Syntax(String),
    #[error("{0:04}/{1:02}/{2:02} does not exist in the Solar Hijri calendar")]
    NoSuchDay(i32, u8, u8),
    #[error("{0} is outside the Solar Hijri years the suite accepts (1300–1500)")]
    OutOfRange(String),
}

/// The years the suite accepts from outside (dates, instants): wide enough for any act or
/// deadline, narrow enough that the arithmetic on them (at most a few decades) stays far
/// inside ICU4X's and chrono's ranges.
const YEARS: std::ops::RangeInclusive<i32> = 1300..=1500;

impl SolarDate {
    /// The day `year/month/day`, if it exists.
    pub fn new(year: i32, month: u8, day: u8) -> Result<Self, DateError> {
        if !YEARS.contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(DateError::NoSuchDay(year, month, day));
        }
        let p = Date::try_new_persian(year, month, day)
            .map_err(|_| DateError::NoSuchDay(year, month, day))?;
        // ICU clamps nothing here, but check the round trip so that 1404/12/30 is refused
        // whatever a future version does with overflowing days.
        if p.day_of_month().0 != day || p.month().ordinal != month {
            return Err(DateError::NoSuchDay(year, month, day));
        }
        Ok(Self { year, month, day })
    }

    /// The Solar Hijri day of a Gregorian date within the accepted years.
    pub fn from_gregorian(d: NaiveDate) -> Result<Self, DateError> {
        let s = Self::from_gregorian_unchecked(d);
        if !YEARS.contains(&s.year) {
            return Err(DateError::OutOfRange(d.to_string()));
        }
        Ok(s)
    }

    /// The day it is in Tehran at instant `t`, within the accepted years.
    pub fn from_instant(t: DateTime<Utc>) -> Result<Self, DateError> {
        // Check the Gregorian year first: chrono's range is far wider than ICU4X's.
        if !(1900..=2150).contains(&t.year()) {
            return Err(DateError::OutOfRange(t.to_rfc3339()));
        }
        Self::from_gregorian(t.with_timezone(&Tehran).date_naive())
    }

    /// For dates derived from accepted ones (a few decades away at most).
    fn from_gregorian_unchecked(d: NaiveDate) -> Self {
        let iso = Date::try_new_iso(d.year(), d.month() as u8, d.day() as u8)
            .expect("every chrono date is a valid ISO date within ICU's range");
        let p = iso.to_calendar(Persian);
        Self {
            year: p.era_year().year,
            month: p.month().ordinal,
            day: p.day_of_month().0,
        }
    }

    /// The Gregorian date of this day.
    pub fn to_gregorian(self) -> NaiveDate {
        let p = Date::try_new_persian(self.year, self.month, self.day)
            .expect("a SolarDate is checked on construction");
        let iso = p.to_calendar(icu_calendar::Iso);
        NaiveDate::from_ymd_opt(
            iso.era_year().extended_year,
            u32::from(iso.month().ordinal),
            u32::from(iso.day_of_month().0),
        )
        .expect("ICU returns a real ISO date")
    }

    pub fn year(self) -> i32 {
        self.year
    }
    pub fn month(self) -> u8 {
        self.month
    }
    pub fn day(self) -> u8 {
        self.day
    }

    pub fn weekday(self) -> Weekday {
        self.to_gregorian().weekday()
    }

    /// The day `n` days later (earlier when negative); `n` is a period's length or a
    /// search for an open day, a few thousand days at most.
    pub fn add_days(self, n: i64) -> Self {
        Self::from_gregorian_unchecked(self.to_gregorian() + TimeDelta::days(n))
    }

    /// The next day.
    pub fn succ(self) -> Self {
        self.add_days(1)
    }

    /// Days from `self` to `other` (positive when `other` is later).
    pub fn days_until(self, other: SolarDate) -> i64 {
        (other.to_gregorian() - self.to_gregorian()).num_days()
    }

    /// The first instant of this day in Tehran.
    pub fn start_instant(self) -> DateTime<Utc> {
        let midnight = self
            .to_gregorian()
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists");
        // Iran kept no daylight saving after 2022, and before that it moved at midnight
        // forward (00:00 → 01:00): the earliest valid local time of the day is its start.
        match midnight.and_local_timezone(Tehran) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                t.with_timezone(&Utc)
            }
            chrono::LocalResult::None => (midnight + TimeDelta::hours(1))
                .and_local_timezone(Tehran)
                .earliest()
                .expect("an hour after a skipped midnight exists")
                .with_timezone(&Utc),
        }
    }

    /// The instant it is `time` on this day in Tehran (the earlier one if a clock change
    /// repeated it, the first valid one after if it skipped it).
    pub fn at_tehran_time(self, time: chrono::NaiveTime) -> DateTime<Utc> {
        let local = self.to_gregorian().and_time(time);
        match local.and_local_timezone(Tehran) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                t.with_timezone(&Utc)
            }
            chrono::LocalResult::None => (local + TimeDelta::hours(1))
                .and_local_timezone(Tehran)
                .earliest()
                .expect("an hour after a skipped time exists")
                .with_timezone(&Utc),
        }
    }

    /// The last instant of this day in Tehran, 23:59:59.999999 local: the microsecond before
    /// the next day starts (the suite stores microseconds).
    pub fn end_instant(self) -> DateTime<Utc> {
        self.succ().start_instant() - TimeDelta::microseconds(1)
    }

    pub fn month_name(self) -> &'static str {
        MONTH_NAMES[usize::from(self.month) - 1]
    }

    /// `۱۴۰۴/۰۱/۱۴`: the date as people write it.
    pub fn to_persian_numeric(self) -> String {
        to_persian_digits(&self.to_string())
    }

    /// `۱۴ فروردین ۱۴۰۴`: the long form for notices and documents.
    pub fn to_persian_long(self) -> String {
        to_persian_digits(&format!("{} {} {}", self.day, self.month_name(), self.year))
    }

    /// `دوشنبه ۱۴ فروردین ۱۴۰۴`: the long form with the weekday.
    pub fn to_persian_long_with_weekday(self) -> String {
        format!(
            "{} {}",
            weekday_name(self.weekday()),
            self.to_persian_long()
        )
    }
}

impl fmt::Display for SolarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}/{:02}/{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for SolarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SolarDate({self})")
    }
}

impl FromStr for SolarDate {
    type Err = DateError;

    /// `1404/01/14`, `1404-1-14`, or the same with Persian or Arabic-Indic digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ascii = to_ascii_digits(s.trim());
        let parts: Vec<&str> = ascii.split(['/', '-']).collect();
        let syntax = || DateError::Syntax(s.to_owned());
        let [y, m, d] = parts.as_slice() else {
            return Err(syntax());
        };
        let all_digits =
            |p: &str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit());
        if !(all_digits(y) && all_digits(m) && all_digits(d)) {
            return Err(syntax());
        }
        let year: i32 = y.parse().map_err(|_| syntax())?;
        let month: u8 = m.parse().map_err(|_| syntax())?;
        let day: u8 = d.parse().map_err(|_| syntax())?;
        SolarDate::new(year, month, day)
    }
}

impl Serialize for SolarDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SolarDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn g(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_spec_anchors_hold() {
        let last_of_1403 = SolarDate::new(1403, 12, 30).unwrap();
        assert_eq!(last_of_1403.to_gregorian(), g(2025, 3, 20));
        assert_eq!(
            SolarDate::from_gregorian(g(2025, 3, 21)).unwrap(),
            SolarDate::new(1404, 1, 1).unwrap()
        );
        assert_eq!(last_of_1403.succ(), SolarDate::new(1404, 1, 1).unwrap());
    }

    #[test]
    fn a_day_that_does_not_exist_is_refused() {
        assert_eq!(
            SolarDate::new(1404, 12, 30),
            Err(DateError::NoSuchDay(1404, 12, 30))
        );
        assert_eq!(
            SolarDate::new(1404, 7, 31),
            Err(DateError::NoSuchDay(1404, 7, 31))
        );
        assert_eq!(
            SolarDate::new(1404, 13, 1),
            Err(DateError::NoSuchDay(1404, 13, 1))
        );
        assert_eq!(
            SolarDate::new(1404, 1, 0),
            Err(DateError::NoSuchDay(1404, 1, 0))
        );
        assert!(SolarDate::new(1404, 6, 31).is_ok());
        assert!(SolarDate::new(9999, 1, 1).is_err());
    }

    #[test]
    fn parsing_accepts_persian_digits_and_refuses_junk() {
        let d: SolarDate = "۱۴۰۴/۰۱/۱۴".parse().unwrap();
        assert_eq!(d, SolarDate::new(1404, 1, 14).unwrap());
        assert_eq!("1404-1-14".parse::<SolarDate>().unwrap(), d);
        for bad in [
            "",
            "1404/01",
            "1404/01/14/1",
            "1404/aa/01",
            "+404/01/01",
            "1404//14",
            "99999/1/1",
        ] {
            assert!(
                matches!(bad.parse::<SolarDate>(), Err(DateError::Syntax(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "1404/12/30".parse::<SolarDate>(),
            Err(DateError::NoSuchDay(..))
        ));
    }

    #[test]
    fn instants_and_dates_far_away_are_refused() {
        let far = Utc.with_ymd_and_hms(200_000, 1, 1, 0, 0, 0).unwrap();
        assert!(matches!(
            SolarDate::from_instant(far),
            Err(DateError::OutOfRange(_))
        ));
        assert!(matches!(
            SolarDate::from_instant(DateTime::<Utc>::MIN_UTC),
            Err(DateError::OutOfRange(_))
        ));
        assert!(SolarDate::from_gregorian(g(1850, 1, 1)).is_err());
        assert!(SolarDate::from_gregorian(g(2025, 1, 1)).is_ok());
    }

    #[test]
    fn persian_rendering() {
        let d = SolarDate::new(1404, 1, 14).unwrap();
        assert_eq!(d.to_persian_numeric(), "۱۴۰۴/۰۱/۱۴");
        assert_eq!(d.to_persian_long(), "۱۴ فروردین ۱۴۰۴");
        // 1404/01/14 is 2025-04-03, a Thursday.
        assert_eq!(d.to_persian_long_with_weekday(), "پنجشنبه ۱۴ فروردین ۱۴۰۴");
        assert_eq!(
            SolarDate::new(1403, 12, 30).unwrap().to_persian_long(),
            "۳۰ اسفند ۱۴۰۳"
        );
    }

    #[test]
    fn serialises_as_its_written_form() {
        let d = SolarDate::new(1405, 3, 6).unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1405/03/06\"");
        assert_eq!(
            serde_json::from_str::<SolarDate>("\"1405/03/06\"").unwrap(),
            d
        );
        assert!(serde_json::from_str::<SolarDate>("\"1404/12/30\"").is_err());
    }

    #[test]
    fn a_day_ends_at_local_midnight() {
        // Tehran is UTC+3:30: 1404/01/01 runs from 2025-03-20T20:30Z to 2025-03-21T20:30Z.
        let d = SolarDate::new(1404, 1, 1).unwrap();
        assert_eq!(
            d.start_instant(),
            Utc.with_ymd_and_hms(2025, 3, 20, 20, 30, 0).unwrap()
        );
        assert_eq!(
            d.end_instant(),
            Utc.with_ymd_and_hms(2025, 3, 21, 20, 29, 59).unwrap()
                + TimeDelta::microseconds(999_999)
        );
        assert_eq!(SolarDate::from_instant(d.end_instant()).unwrap(), d);
        assert_eq!(
            SolarDate::from_instant(d.end_instant() + TimeDelta::microseconds(1)).unwrap(),
            d.succ()
        );
    }
}
