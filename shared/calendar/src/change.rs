//! A change of the calendar as it is published, stored and streamed: the same folding in
//! the service that owns the calendar and in every service that follows it, so that all
//! of them hold the same calendar after the same changes.

use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, CalendarError, Publication};
use crate::closed::{Closure, Holiday};
use crate::date::SolarDate;

/// One published change. A versioned storage type: variants and fields are only added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum Change {
    /// A holiday announced (or one a year's list lacked).
    HolidayPublished { holiday: Holiday },
    /// A provisional holiday confirmed as it was listed.
    HolidayConfirmed { date: SolarDate, name: String },
    /// A holiday moved from `from` to `holiday.date` (the announcement differed).
    HolidayCorrected { from: SolarDate, holiday: Holiday },
    /// A closure of one province or all.
    ClosurePublished { closure: Closure },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("there is no holiday «{name}» on {date}")]
    NoSuchHoliday { date: SolarDate, name: String },
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}

impl Change {
    /// The stored kind: `HOLIDAY_PUBLISHED`, `HOLIDAY_CONFIRMED`, `HOLIDAY_CORRECTED`,
    /// `CLOSURE_PUBLISHED`.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::HolidayPublished { .. } => "HOLIDAY_PUBLISHED",
            Change::HolidayConfirmed { .. } => "HOLIDAY_CONFIRMED",
            Change::HolidayCorrected { .. } => "HOLIDAY_CORRECTED",
            Change::ClosurePublished { .. } => "CLOSURE_PUBLISHED",
        }
    }
}

impl Calendar {
    /// Folds `change` in; returns the day it newly closes as a [`Publication`] (for the
    /// deadlines it moves), or `None` for a confirmation, which closes nothing new. A
    /// change that does not apply leaves the calendar as it was.
    pub fn apply(&mut self, change: &Change) -> Result<Option<Publication>, ChangeError> {
        match change {
            Change::HolidayPublished { holiday } => {
                self.add_holiday(holiday.clone());
                Ok(Some(Publication::Holiday(holiday.clone())))
            }
            Change::HolidayConfirmed { date, name } => {
                if self.confirm_holiday(*date, name) {
                    Ok(None)
                } else {
                    Err(ChangeError::NoSuchHoliday {
                        date: *date,
                        name: name.clone(),
                    })
                }
            }
            Change::HolidayCorrected { from, holiday } => {
                if self.remove_holiday(*from, &holiday.name).is_none() {
                    return Err(ChangeError::NoSuchHoliday {
                        date: *from,
                        name: holiday.name.clone(),
                    });
                }
                self.add_holiday(holiday.clone());
                Ok(Some(Publication::Holiday(holiday.clone())))
            }
            Change::ClosurePublished { closure } => {
                self.add_closure(closure.clone())?;
                Ok(Some(Publication::Closure(closure.clone())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closed::{HolidayKind, Scope};
    use chrono::{TimeZone, Utc};

    #[test]
    fn changes_fold_in_and_say_what_they_close() {
        let mut c = Calendar::shipped();
        let day = SolarDate::new(1405, 1, 25).unwrap();
        let name = "شهادت امام جعفر صادق (ع)".to_string();
        let confirm = Change::HolidayConfirmed {
            date: day,
            name: name.clone(),
        };
        assert_eq!(c.apply(&confirm), Ok(None));
        assert!(!c.holidays_on(day)[0].provisional);
        let moved_to = SolarDate::new(1405, 1, 24).unwrap();
        let holiday = Holiday {
            date: moved_to,
            name: name.clone(),
            kind: HolidayKind::Lunar,
            hijri: Some([10, 25]),
            provisional: false,
        };
        let correct = Change::HolidayCorrected {
            from: day,
            holiday: holiday.clone(),
        };
        assert_eq!(
            c.apply(&correct),
            Ok(Some(Publication::Holiday(holiday.clone())))
        );
        assert!(c.holidays_on(day).is_empty());
        // Applied twice: there is nothing left on the old day to move.
        assert!(matches!(
            c.apply(&correct),
            Err(ChangeError::NoSuchHoliday { .. })
        ));
        let bad = Change::ClosurePublished {
            closure: Closure {
                scope: Scope::Nationwide,
                first_day: day,
                last_day: moved_to,
                reason: "آزمون".into(),
                published_by: "admin".into(),
                published_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            },
        };
        assert!(matches!(c.apply(&bad), Err(ChangeError::Calendar(_))));
        assert!(c.closures().is_empty());
        // Stored as JSON with its tag, and read back the same.
        let json = serde_json::to_string(&correct).unwrap();
        assert!(json.contains("\"change\":\"holiday_corrected\""), "{json}");
        assert_eq!(serde_json::from_str::<Change>(&json).unwrap(), correct);
        assert_eq!(correct.kind(), "HOLIDAY_CORRECTED");
    }
}
