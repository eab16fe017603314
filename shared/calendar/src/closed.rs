//! What closes a day: the weekly rest day, an official holiday, or a closure.

use chrono::{DateTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::date::SolarDate;

/// A province, by its Persian name as the suite stores it (`اردبیل`): normalised (Arabic
/// ي/ك folded, whitespace collapsed) so that the same province always compares equal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Province(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the province name is empty or not a name: {0}")]
pub struct ProvinceError(String);

impl Province {
    pub fn new(name: &str) -> Result<Self, ProvinceError> {
        let n = mosharekat_persian::normalize_name(name, 100)
            .map_err(|e| ProvinceError(e.to_string()))?;
        if n.is_empty() {
            return Err(ProvinceError("empty".into()));
        }
        Ok(Self(n))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Province {
    type Error = ProvinceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Province::new(&s)
    }
}

impl From<Province> for String {
    fn from(p: Province) -> String {
        p.0
    }
}

impl std::fmt::Display for Province {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a holiday's date is fixed in the solar year or follows the lunar (Hijri) one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolidayKind {
    Solar,
    Lunar,
}

/// An official holiday: nationwide, one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holiday {
    pub date: SolarDate,
    /// The occasion in Persian, as the official calendar names it.
    pub name: String,
    pub kind: HolidayKind,
    /// For a lunar holiday, its Hijri month and day (`[1, 10]` is Ashura).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hijri: Option<[u8; 2]>,
    /// Computed, not yet confirmed by an administrator against the official announcement.
    #[serde(default)]
    pub provisional: bool,
}

/// Where a closure applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "scope", content = "province")]
pub enum Scope {
    Nationwide,
    Province(Province),
}

impl Scope {
    pub fn covers(&self, province: &Province) -> bool {
        match self {
            Scope::Nationwide => true,
            Scope::Province(p) => p == province,
        }
    }
}

/// An ad hoc closure of the judiciary (a heat wave, a fuel shortage, mourning): a day or a
/// run of days, in one province or all, published by someone at some time for a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    pub scope: Scope,
    pub first_day: SolarDate,
    /// The last closed day, inclusive (equal to `first_day` for one day).
    pub last_day: SolarDate,
    pub reason: String,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClosureError {
    #[error("last_day {last} is before first_day {first}")]
    Reversed { first: SolarDate, last: SolarDate },
    #[error("a closure spans at most {max} days; this one spans {days}")]
    TooLong { days: i64, max: i64 },
    #[error("the {0} of a closure must not be empty")]
    Empty(&'static str),
}

impl Closure {
    /// The longest closure accepted: a mistyped year must not close the courts for a decade.
    pub const MAX_DAYS: i64 = 366;

    /// Checks the closure's fields (the day range, a reason, who published it).
    pub fn validate(&self) -> Result<(), ClosureError> {
        let days = self.first_day.days_until(self.last_day) + 1;
        if days < 1 {
            return Err(ClosureError::Reversed {
                first: self.first_day,
                last: self.last_day,
            });
        }
        if days > Self::MAX_DAYS {
            return Err(ClosureError::TooLong {
                days,
                max: Self::MAX_DAYS,
            });
        }
        if self.reason.trim().is_empty() {
            return Err(ClosureError::Empty("reason"));
        }
        if self.published_by.trim().is_empty() {
            return Err(ClosureError::Empty("published_by"));
        }
        Ok(())
    }

    pub fn contains(&self, day: SolarDate) -> bool {
        self.first_day <= day && day <= self.last_day
    }
}

/// Why a day is closed, as recorded on a deadline that it moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ClosedReason {
    /// The province's weekly rest day.
    WeeklyRest {
        #[serde(with = "weekday_serde")]
        weekday: Weekday,
    },
    Holiday {
        name: String,
        provisional: bool,
    },
    Closure {
        scope: Scope,
        reason: String,
        published_by: String,
        published_at: DateTime<Utc>,
    },
}

impl ClosedReason {
    /// The reason in Persian, for a notice: «تعطیل هفتگی جمعه», «عید سعید فطر»,
    /// «تعطیلی استان خوزستان: …».
    pub fn to_persian(&self) -> String {
        match self {
            ClosedReason::WeeklyRest { weekday } => {
                format!("تعطیل هفتگی {}", crate::date::weekday_name(*weekday))
            }
            ClosedReason::Holiday { name, .. } => name.clone(),
            ClosedReason::Closure { scope, reason, .. } => match scope {
                Scope::Nationwide => format!("تعطیلی سراسری: {reason}"),
                Scope::Province(p) => format!("تعطیلی استان {p}: {reason}"),
            },
        }
    }
}

/// Weekdays as their English names (`"Fri"`), the form chrono parses.
pub(crate) mod weekday_serde {
    use chrono::Weekday;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(w: &Weekday, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(w)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Weekday, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom(format!("not a weekday: {s}")))
    }
}
