//! The Solar Hijri conversion (ICU4X) against an independent implementation (`parsidate`,
//! the 33-year arithmetic) and against the suite's older hand-written `JalaliDate`.

use chrono::{Datelike, NaiveDate, TimeDelta};
use mosharekat_calendar::SolarDate;
use mosharekat_persian::JalaliDate;

#[test]
fn every_day_from_1395_to_1420_agrees_with_independent_conversions() {
    // 1395/01/01 is 2016-03-20; 1421/01/01 is 2042-03-21.
    let mut g = NaiveDate::from_ymd_opt(2016, 3, 20).unwrap();
    let end = NaiveDate::from_ymd_opt(2042, 3, 21).unwrap();
    assert_eq!(
        SolarDate::from_gregorian(g).unwrap(),
        "1395/01/01".parse().unwrap()
    );
    assert_eq!(
        SolarDate::from_gregorian(end).unwrap(),
        "1421/01/01".parse().unwrap()
    );
    let mut days = 0;
    while g < end {
        let ours = SolarDate::from_gregorian(g).unwrap();
        let theirs = parsidate::ParsiDate::from_gregorian(g).unwrap();
        assert_eq!(
            (ours.year(), u32::from(ours.month()), u32::from(ours.day())),
            (theirs.year(), theirs.month(), theirs.day()),
            "{g}"
        );
        let older = JalaliDate::from_gregorian(g.year(), g.month() as u8, g.day() as u8).unwrap();
        assert_eq!(
            (ours.year(), ours.month(), ours.day()),
            (older.year, older.month, older.day),
            "{g}"
        );
        assert_eq!(ours.to_gregorian(), g);
        g += TimeDelta::days(1);
        days += 1;
    }
    assert_eq!(days, 9497);
}

#[test]
fn leap_years_are_those_of_the_official_calendar() {
    // 1399, 1403 and 1408 have a 30 Esfand; 1404, 1405, 1406 and 1407 do not.
    for (year, leap) in [
        (1399, true),
        (1403, true),
        (1404, false),
        (1405, false),
        (1406, false),
        (1407, false),
        (1408, true),
    ] {
        assert_eq!(SolarDate::new(year, 12, 30).is_ok(), leap, "{year}");
        assert_eq!(
            parsidate::ParsiDate::is_persian_leap_year(year),
            leap,
            "{year}"
        );
    }
}
