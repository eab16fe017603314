//! Periods counted as the Civil Procedure Code counts them (arts. 443–445), the deadline they
//! give, the rule applied recorded on it, and the deadlines a late publication moves.
//!
//! **When a deadline ends**: at the end of its last day in Tehran, 23:59:59.999999
//! `Asia/Tehran` — not at the close of the office day. The code counts whole days and names
//! no hour; the judiciary's electronic services take filings until midnight; and an office's
//! hours vary by office and season, which would make the same period end at different
//! instants for the same people. One rule, the same everywhere: the whole last day.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, CalendarError, Publication};
use crate::closed::{ClosedReason, Province};
use crate::date::SolarDate;

/// A period as a rule names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Days(u32),
    Weeks(u32),
    /// A month is 30 days (art. 443), whatever the months it crosses.
    Months(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("a period must be at least one day")]
    Empty,
    #[error("a period of {0} days is longer than the {MAX_PERIOD_DAYS} days the suite accepts")]
    TooLong(u64),
}

/// Ten years: longer than any period the law sets, short enough that no date overflows.
pub const MAX_PERIOD_DAYS: u64 = 3660;

impl Period {
    /// The number of days the period counts (art. 443: a week is 7, a month 30).
    pub fn days(self) -> Result<u32, PeriodError> {
        let days = match self {
            Period::Days(n) => u64::from(n),
            Period::Weeks(n) => u64::from(n) * 7,
            Period::Months(n) => u64::from(n) * 30,
        };
        if days == 0 {
            return Err(PeriodError::Empty);
        }
        if days > MAX_PERIOD_DAYS {
            return Err(PeriodError::TooLong(days));
        }
        Ok(days as u32)
    }

    /// `۳ ماه`, `۱۰ روز`, `۲ هفته`.
    pub fn to_persian(self) -> String {
        let (n, unit) = match self {
            Period::Days(n) => (n, "روز"),
            Period::Weeks(n) => (n, "هفته"),
            Period::Months(n) => (n, "ماه"),
        };
        mosharekat_persian::digits::to_persian_digits(&format!("{n} {unit}"))
    }
}

/// The articles of the Civil Procedure Code (قانون آیین دادرسی مدنی) a deadline applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Article {
    /// Art. 443: a month is 30 days, a week 7, a day 24 hours.
    #[serde(rename = "civil_procedure_443")]
    CivilProcedure443,
    /// Art. 444: a last day that is a holiday or a closure does not count; the period ends
    /// on the next open day.
    #[serde(rename = "civil_procedure_444")]
    CivilProcedure444,
    /// Art. 445: the day of the act or notification is not counted.
    #[serde(rename = "civil_procedure_445")]
    CivilProcedure445,
}

impl Article {
    pub fn to_persian(self) -> &'static str {
        match self {
            Article::CivilProcedure443 => {
                "ماده ۴۴۳ قانون آیین دادرسی مدنی: ماه سی روز، هفته هفت روز و روز بیست‌وچهار ساعت است"
            }
            Article::CivilProcedure444 => {
                "ماده ۴۴۴ قانون آیین دادرسی مدنی: اگر روز آخر مهلت تعطیل باشد، مهلت در نخستین روز کاری پس از آن پایان می‌یابد"
            }
            Article::CivilProcedure445 => {
                "ماده ۴۴۵ قانون آیین دادرسی مدنی: روز ابلاغ یا اقدام جزو مهلت حساب نمی‌شود"
            }
        }
    }
}

/// A closed day a deadline's last day was moved past, and why it was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedDay {
    pub day: SolarDate,
    pub reasons: Vec<ClosedReason>,
}

/// A move of a deadline by a holiday or closure published after it was set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateMove {
    pub from_last_day: SolarDate,
    pub to_last_day: SolarDate,
    pub because: ClosedReason,
}

/// How a deadline was computed: what a service stores with it, so that anyone can see why
/// it ends when it does, and the calendar can move it later.
///
/// A versioned storage struct: fields are only ever added (with serde defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleApplied {
    pub schema: u32,
    pub period: Period,
    /// The days counted (art. 443).
    pub days_counted: u32,
    /// The day of the act in Tehran, not counted (art. 445).
    pub act_day: SolarDate,
    /// The last day before any move: the act's day plus the days counted.
    pub nominal_last_day: SolarDate,
    pub articles: Vec<Article>,
    /// The closed days the last day moved past when the deadline was set (art. 444),
    /// oldest first. Days inside the period are counted even when closed, so none is here.
    #[serde(default)]
    pub moved_past: Vec<SkippedDay>,
    /// Whether the calendar held the official holiday list of the last day's year: when it
    /// did not, a holiday announced later may still move the deadline.
    pub holidays_known: bool,
    /// Moves by holidays or closures published after the deadline was set, oldest first.
    #[serde(default)]
    pub late_moves: Vec<LateMove>,
}

/// The schema of [`RuleApplied`] written today.
pub const RULE_SCHEMA: u32 = 1;

/// A deadline: when a period that started with an act ends, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub act_at: DateTime<Utc>,
    pub province: Province,
    /// The last day on which the act may be done.
    pub last_day: SolarDate,
    /// The end of the last day in Tehran (23:59:59.999999 local).
    pub ends_at: DateTime<Utc>,
    pub rule: RuleApplied,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadlineError {
    #[error(transparent)]
    Period(#[from] PeriodError),
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error("the act's time: {0}")]
    ActAt(#[from] crate::date::DateError),
}

impl Deadline {
    /// `۱۴۰۴/۰۱/۱۴`
    pub fn last_day_persian(&self) -> String {
        self.last_day.to_persian_numeric()
    }

    /// Whether it has passed at `now` ("overdue" in the lists).
    pub fn is_passed(&self, now: DateTime<Utc>) -> bool {
        now > self.ends_at
    }

    /// Whether it has not passed at `now` and its last day is within `days` days of
    /// today in Tehran ("due within N days" in the lists; 0 is "due today").
    pub fn is_due_within(&self, now: DateTime<Utc>, days: u32) -> bool {
        if self.is_passed(now) {
            return false;
        }
        match SolarDate::from_instant(now) {
            Ok(today) => today.days_until(self.last_day) <= i64::from(days),
            // A `now` beyond the accepted years is after every deadline.
            Err(_) => false,
        }
    }

    /// When to remind of it `days_before` its last day, at `time` in Tehran (e.g. 7 days
    /// before at 08:00). Derived from the last day, so a reminder moves with the deadline.
    pub fn reminder_at(&self, days_before: u32, time: chrono::NaiveTime) -> DateTime<Utc> {
        self.last_day
            .add_days(-i64::from(days_before))
            .at_tehran_time(time)
    }

    /// The first instant at which it has passed.
    pub fn passed_at(&self) -> DateTime<Utc> {
        self.ends_at + chrono::TimeDelta::microseconds(1)
    }

    /// The rule applied, in Persian, for a timeline entry or a notice:
    /// «مهلت ۱۰ روز از ۱۹ اسفند ۱۴۰۴ (روز اقدام شمرده نمی‌شود)؛ ۲۹ اسفند ۱۴۰۴ تعطیل بود
    /// (تعطیل هفتگی جمعه، روز ملی شدن صنعت نفت ایران)؛ …؛ پایان مهلت: پایان روز چهارشنبه
    /// ۵ فروردین ۱۴۰۵». Names and reasons are public (no personal data), so an SMS may
    /// carry it.
    pub fn explain_persian(&self) -> String {
        let r = &self.rule;
        let mut parts = vec![format!(
            "مهلت {} از {} (روز اقدام شمرده نمی‌شود)",
            r.period.to_persian(),
            r.act_day.to_persian_long()
        )];
        for skipped in &r.moved_past {
            let reasons: Vec<String> = skipped
                .reasons
                .iter()
                .map(ClosedReason::to_persian)
                .collect();
            parts.push(format!(
                "{} تعطیل بود ({})",
                skipped.day.to_persian_long(),
                reasons.join("، ")
            ));
        }
        for m in &r.late_moves {
            parts.push(m.explain_persian());
        }
        parts.push(format!(
            "پایان مهلت: پایان روز {}",
            self.last_day.to_persian_long_with_weekday()
        ));
        parts.join("؛ ")
    }
}

impl LateMove {
    /// «به سبب تعطیلی سراسری: …، مهلت از ۱۱ مرداد ۱۴۰۴ به ۱۲ مرداد ۱۴۰۴ منتقل شد».
    pub fn explain_persian(&self) -> String {
        format!(
            "به سبب {}، مهلت از {} به {} منتقل شد",
            self.because.to_persian(),
            self.from_last_day.to_persian_long(),
            self.to_last_day.to_persian_long()
        )
    }
}

impl Calendar {
    /// The deadline of a period that starts with an act at `act_at` in `province`.
    ///
    /// The act's day (in Tehran) is not counted; the period's days are, closed or not; a
    /// last day that is closed moves to the next open day, and each closed day passed is
    /// recorded with its reasons.
    pub fn deadline(
        &self,
        act_at: DateTime<Utc>,
        period: Period,
        province: &Province,
    ) -> Result<Deadline, DeadlineError> {
        let days = period.days()?;
        let act_day = SolarDate::from_instant(act_at)?;
        let nominal = act_day.add_days(i64::from(days));
        let last = self.next_open_day(province, nominal)?;
        let mut moved_past = Vec::new();
        let mut d = nominal;
        while d < last {
            moved_past.push(SkippedDay {
                day: d,
                reasons: self.closed_reasons(province, d),
            });
            d = d.succ();
        }
        let mut articles = vec![Article::CivilProcedure443, Article::CivilProcedure445];
        if !moved_past.is_empty() {
            articles.push(Article::CivilProcedure444);
        }
        Ok(Deadline {
            act_at,
            province: province.clone(),
            last_day: last,
            ends_at: last.end_instant(),
            rule: RuleApplied {
                schema: RULE_SCHEMA,
                period,
                days_counted: days,
                act_day,
                nominal_last_day: nominal,
                articles,
                moved_past,
                holidays_known: self.knows_holidays_of(last.year()),
                late_moves: Vec::new(),
            },
        })
    }

    /// Which of `open` deadlines a holiday or closure published after they were set moves,
    /// and to when: every one whose last day now falls in it, in its scope, moves to the
    /// next open day of this calendar (which must already hold the publication). The
    /// others stay as they were computed.
    pub fn moved_by<'a, K: Clone + 'a>(
        &self,
        published: &Publication,
        open: impl IntoIterator<Item = (K, &'a Deadline)>,
    ) -> Result<Vec<Moved<K>>, CalendarError> {
        let because = published.reason();
        let mut moved = Vec::new();
        for (key, before) in open {
            if !published.closes(&before.province, before.last_day) {
                continue;
            }
            let to = self.next_open_day(&before.province, before.last_day)?;
            if to == before.last_day {
                // Only when the calendar was not given the publication: nothing to move.
                continue;
            }
            let mut after = before.clone();
            after.last_day = to;
            after.ends_at = to.end_instant();
            after.rule.holidays_known = self.knows_holidays_of(to.year());
            if !after.rule.articles.contains(&Article::CivilProcedure444) {
                after.rule.articles.push(Article::CivilProcedure444);
            }
            after.rule.late_moves.push(LateMove {
                from_last_day: before.last_day,
                to_last_day: to,
                because: because.clone(),
            });
            moved.push(Moved {
                key,
                before: before.clone(),
                after,
            });
        }
        Ok(moved)
    }

    /// Publishes a holiday or closure and returns the open deadlines it moves.
    pub fn publish<'a, K: Clone + 'a>(
        &mut self,
        published: Publication,
        open: impl IntoIterator<Item = (K, &'a Deadline)>,
    ) -> Result<Vec<Moved<K>>, CalendarError> {
        match &published {
            Publication::Holiday(h) => self.add_holiday(h.clone()),
            Publication::Closure(c) => self.add_closure(c.clone())?,
        }
        self.moved_by(&published, open)
    }
}

/// A deadline moved by a publication: the caller's key for it, before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved<K> {
    pub key: K,
    pub before: Deadline,
    pub after: Deadline,
}
