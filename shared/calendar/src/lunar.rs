//! The official lunar holidays, and a provisional list of them for any Solar Hijri year
//! computed with an Islamic calendar, for an administrator to confirm or correct.
//!
//! Iran's lunar months follow the official calendar, prepared by the Calendar Center of the
//! University of Tehran's Geophysics Institute from predicted crescent sightings in Iran and
//! announced for each year; no arithmetic reproduces it exactly. The estimate used here is
//! ICU4X's **Umm al-Qura** calendar **one day later**, measured (in this crate's tests)
//! against the Calendar Center's 92 recorded month starts of 1440–1447 AH:
//!
//! | calendar | same day | a day early | a day late |
//! |---|---|---|---|
//! | Umm al-Qura | 34 | 58 | 0 |
//! | Umm al-Qura, one day later (chosen) | 58 | 0 | 34 |
//! | tabular, civil (Friday epoch) | 58 | 21 | 13 |
//! | tabular, astronomical (Thursday epoch) | 13 | 58 (and 21 two days early) | 0 |
//!
//! Umm al-Qura is, like Iran's, a prediction of each month from the moon (KACST's, for
//! Mecca), not a fixed 30-year cycle that drifts from the sky; its months never begin
//! after Iran's, and begin a day before them more often than not (the new crescent becomes
//! visible in Iran about a day after the conjunction criterion is met in Mecca). Shifted by
//! a day, it is right as often as the civil tabular calendar and is never early: every
//! provisional holiday is on the official day or the day after it, so the correction an
//! administrator makes is always the same, one day earlier. Against the official 1404 list,
//! 13 of its 18 lunar holidays are on the day and 5 a day late. A computed list is only
//! ever **provisional**.

use chrono::{Datelike, NaiveDate};
use icu_calendar::Date;
use icu_calendar::cal::Hijri;
use icu_calendar::cal::hijri::{TabularAlgorithmEpoch, TabularAlgorithmLeapYears};

use crate::closed::{Holiday, HolidayKind};
use crate::date::SolarDate;

/// A lunar holiday: its Hijri month and day, and its name in the official calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LunarOccasion {
    pub month: u8,
    /// The day of the month; [`LAST_DAY`] for the last day of the month (29 or 30).
    pub day: u8,
    pub name: &'static str,
}

/// Stands for "the last day of the month" in [`LunarOccasion::day`].
pub const LAST_DAY: u8 = 0;

/// The official lunar holidays (domain.md, "Deadlines and the legal calendar").
pub const LUNAR_HOLIDAYS: [LunarOccasion; 17] = [
    LunarOccasion {
        month: 1,
        day: 9,
        name: "تاسوعای حسینی",
    },
    LunarOccasion {
        month: 1,
        day: 10,
        name: "عاشورای حسینی",
    },
    LunarOccasion {
        month: 2,
        day: 20,
        name: "اربعین حسینی",
    },
    LunarOccasion {
        month: 2,
        day: 28,
        name: "رحلت حضرت رسول اکرم (ص) و شهادت امام حسن مجتبی (ع)",
    },
    LunarOccasion {
        month: 2,
        day: LAST_DAY,
        name: "شهادت امام رضا (ع)",
    },
    LunarOccasion {
        month: 3,
        day: 8,
        name: "شهادت امام حسن عسکری (ع)",
    },
    LunarOccasion {
        month: 3,
        day: 17,
        name: "میلاد حضرت رسول اکرم (ص) و امام جعفر صادق (ع)",
    },
    LunarOccasion {
        month: 6,
        day: 3,
        name: "شهادت حضرت فاطمه زهرا (س)",
    },
    LunarOccasion {
        month: 7,
        day: 13,
        name: "ولادت امام علی (ع) و روز پدر",
    },
    LunarOccasion {
        month: 7,
        day: 27,
        name: "مبعث حضرت رسول اکرم (ص)",
    },
    LunarOccasion {
        month: 8,
        day: 15,
        name: "ولادت حضرت قائم (عج) و جشن نیمه شعبان",
    },
    LunarOccasion {
        month: 9,
        day: 21,
        name: "شهادت حضرت علی (ع)",
    },
    LunarOccasion {
        month: 10,
        day: 1,
        name: "عید سعید فطر",
    },
    LunarOccasion {
        month: 10,
        day: 2,
        name: "تعطیل به مناسبت عید سعید فطر",
    },
    LunarOccasion {
        month: 10,
        day: 25,
        name: "شهادت امام جعفر صادق (ع)",
    },
    LunarOccasion {
        month: 12,
        day: 10,
        name: "عید سعید قربان",
    },
    LunarOccasion {
        month: 12,
        day: 18,
        name: "عید سعید غدیر خم",
    },
];

/// The lunar holidays of Solar Hijri `year` as estimated for Iran (Umm al-Qura, one day
/// later), each marked provisional. `None` for a year outside the range the suite accepts.
pub fn provisional_lunar_holidays(year: i32) -> Option<Vec<Holiday>> {
    lunar_holidays_with(year, IslamicCalendar::UmmAlQuraDayLater)
}

/// ICU4X's Islamic calendars that can predict (the ones the module doc compares).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IslamicCalendar {
    /// Saudi Arabia's, from KACST's predictions for Mecca (CLDR `islamic-umalqura`).
    UmmAlQura,
    /// Tabular, Friday epoch (CLDR `islamic-civil`).
    TabularCivil,
    /// Tabular, Thursday epoch (CLDR `islamic-tbla`).
    TabularAstronomical,
    /// Umm al-Qura with every day one day later: the estimate for Iran (see the module).
    UmmAlQuraDayLater,
}

impl IslamicCalendar {
    /// The Hijri (month, day) of a Gregorian date.
    pub fn month_day(self, g: NaiveDate) -> (u8, u8) {
        let iso = Date::try_new_iso(g.year(), g.month() as u8, g.day() as u8)
            .expect("chrono dates are valid ISO dates");
        let tabular = |epoch| Hijri::new_tabular(TabularAlgorithmLeapYears::TypeII, epoch);
        match self {
            IslamicCalendar::UmmAlQura => {
                let h = iso.to_calendar(Hijri::new_umm_al_qura());
                (h.month().ordinal, h.day_of_month().0)
            }
            IslamicCalendar::TabularCivil => {
                let h = iso.to_calendar(tabular(TabularAlgorithmEpoch::Friday));
                (h.month().ordinal, h.day_of_month().0)
            }
            IslamicCalendar::TabularAstronomical => {
                let h = iso.to_calendar(tabular(TabularAlgorithmEpoch::Thursday));
                (h.month().ordinal, h.day_of_month().0)
            }
            IslamicCalendar::UmmAlQuraDayLater => {
                let before = g.pred_opt().expect("within chrono's range");
                IslamicCalendar::UmmAlQura.month_day(before)
            }
        }
    }
}

/// The lunar holidays of Solar Hijri `year` under the Islamic calendar `cal`.
pub fn lunar_holidays_with(year: i32, cal: IslamicCalendar) -> Option<Vec<Holiday>> {
    let first = SolarDate::new(year, 1, 1).ok()?;
    let next_year = SolarDate::new(year + 1, 1, 1).ok()?;
    let hijri = |g: NaiveDate| cal.month_day(g);
    let mut out = Vec::new();
    let mut day = first;
    while day < next_year {
        let g = day.to_gregorian();
        let (month, dom) = hijri(g);
        let (next_month, _) = hijri(g.succ_opt().expect("within chrono's range"));
        let is_last = next_month != month;
        for o in LUNAR_HOLIDAYS {
            if o.month == month && (o.day == dom || (o.day == LAST_DAY && is_last)) {
                out.push(Holiday {
                    date: day,
                    name: o.name.to_owned(),
                    kind: HolidayKind::Lunar,
                    hijri: Some([month, dom]),
                    provisional: true,
                });
            }
        }
        day = day.succ();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occasion_is_found_once_or_twice_a_year() {
        // A solar year is 365–366 days and a lunar one 354–355: each occasion falls once,
        // and one falling in the first 11 days of the solar year may fall again at its end.
        let hs = provisional_lunar_holidays(1404).unwrap();
        for o in LUNAR_HOLIDAYS {
            let n = hs.iter().filter(|h| h.name == o.name).count();
            assert!((1..=2).contains(&n), "{} found {n} times", o.name);
        }
        assert!(
            hs.iter()
                .all(|h| h.provisional && h.kind == HolidayKind::Lunar)
        );
        assert!(hs.windows(2).all(|w| w[0].date <= w[1].date));
    }

    #[test]
    fn a_year_out_of_range_has_no_list() {
        assert!(provisional_lunar_holidays(1200).is_none());
    }
}
