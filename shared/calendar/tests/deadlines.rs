//! Deadline computations against hand-checked dates.
//!
//! Each case gives the act, the period and the expected last day twice, hand-checked: as a
//! Solar Hijri date and as a Gregorian one. Neither is derived from the crate: the Solar
//! Hijri one is converted with `parsidate` (an independent implementation of the 33-year
//! arithmetic), which must give the Gregorian one; the end instant is computed here from
//! the Gregorian date with chrono-tz; and the unmoved last day is the act's Tehran day plus
//! the period's days in plain Gregorian arithmetic.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Asia::Tehran;
use mosharekat_calendar::{
    Article, Calendar, ClosedReason, Closure, Deadline, DeadlineError, Holiday, HolidayKind,
    Period, Province, Publication, Scope, SolarDate,
};

fn sd(s: &str) -> SolarDate {
    s.parse().unwrap()
}

fn province(name: &str) -> Province {
    Province::new(name).unwrap()
}

/// The Gregorian date of a Solar Hijri date, by the independent library.
fn independent_gregorian(solar: &str) -> NaiveDate {
    let mut it = solar.split('/').map(|p| p.parse::<u32>().unwrap());
    let (y, m, d) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    parsidate::ParsiDate::new(y as i32, m, d)
        .unwrap()
        .to_gregorian()
        .unwrap()
}

/// The last microsecond of a Gregorian day in Tehran, computed here.
fn end_of_tehran_day(g: NaiveDate) -> DateTime<Utc> {
    let next = (g + TimeDelta::days(1)).and_hms_opt(0, 0, 0).unwrap();
    Tehran
        .from_local_datetime(&next)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
        - TimeDelta::microseconds(1)
}

/// Noon in Tehran on a Gregorian day.
fn noon(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Tehran
        .with_ymd_and_hms(y, m, d, 12, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn g(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

struct Case {
    what: &'static str,
    act_at: DateTime<Utc>,
    period: Period,
    /// Hand-checked: the act's day plus the period, before any move.
    nominal: (&'static str, NaiveDate),
    /// Hand-checked: the last day after moving past closed days.
    last: (&'static str, NaiveDate),
    /// The closed days moved past, in order.
    moved_past: &'static [&'static str],
}

fn check(calendar: &Calendar, p: &Province, c: &Case) -> Deadline {
    // The table's two forms agree, by the independent conversion.
    assert_eq!(
        independent_gregorian(c.nominal.0),
        c.nominal.1,
        "{}: nominal",
        c.what
    );
    assert_eq!(
        independent_gregorian(c.last.0),
        c.last.1,
        "{}: last",
        c.what
    );
    // The nominal day is the act's Tehran day plus the period's days (art. 443, 445).
    let days = match c.period {
        Period::Days(n) => n,
        Period::Weeks(n) => 7 * n,
        Period::Months(n) => 30 * n,
    };
    let act_local = c.act_at.with_timezone(&Tehran).date_naive();
    assert_eq!(
        act_local + TimeDelta::days(i64::from(days)),
        c.nominal.1,
        "{}: table",
        c.what
    );

    let d = calendar.deadline(c.act_at, c.period, p).unwrap();
    assert_eq!(
        d.rule.nominal_last_day,
        sd(c.nominal.0),
        "{}: nominal",
        c.what
    );
    assert_eq!(
        d.rule.nominal_last_day.to_gregorian(),
        c.nominal.1,
        "{}",
        c.what
    );
    assert_eq!(d.last_day, sd(c.last.0), "{}: last day", c.what);
    assert_eq!(d.last_day.to_gregorian(), c.last.1, "{}", c.what);
    assert_eq!(
        d.ends_at,
        end_of_tehran_day(c.last.1),
        "{}: end instant",
        c.what
    );
    assert_eq!(d.rule.days_counted, days);
    assert_eq!(d.rule.period, c.period);
    assert_eq!(d.rule.act_day.to_gregorian(), act_local);
    let moved: Vec<SolarDate> = d.rule.moved_past.iter().map(|s| s.day).collect();
    let expected: Vec<SolarDate> = c.moved_past.iter().map(|s| sd(s)).collect();
    assert_eq!(moved, expected, "{}: moved past", c.what);
    assert!(d.rule.moved_past.iter().all(|s| !s.reasons.is_empty()));
    assert_eq!(
        d.rule.articles.contains(&Article::CivilProcedure444),
        !c.moved_past.is_empty(),
        "{}: art. 444 recorded only when the last day moved",
        c.what
    );
    assert!(d.rule.articles.contains(&Article::CivilProcedure443));
    assert!(d.rule.articles.contains(&Article::CivilProcedure445));
    d
}

#[test]
fn the_table_on_the_shipped_calendar() {
    let calendar = Calendar::shipped();
    let ardabil = province("اردبیل");
    let cases = [
        Case {
            what: "10 days from 1403/12/25: Nowruz inside the period is counted",
            act_at: noon(2025, 3, 15),
            period: Period::Days(10),
            nominal: ("1404/01/05", g(2025, 3, 25)),
            last: ("1404/01/05", g(2025, 3, 25)),
            moved_past: &[],
        },
        Case {
            what: "10 days from 1403/12/22: last day on Nowruz 2 (and 21 Ramadan), 3, 4",
            act_at: noon(2025, 3, 12),
            period: Period::Days(10),
            nominal: ("1404/01/02", g(2025, 3, 22)),
            last: ("1404/01/05", g(2025, 3, 25)),
            moved_past: &["1404/01/02", "1404/01/03", "1404/01/04"],
        },
        Case {
            what: "a lunar holiday last day: Tasua, then Ashura",
            act_at: noon(2025, 6, 25),
            period: Period::Days(10),
            nominal: ("1404/04/14", g(2025, 7, 5)),
            last: ("1404/04/16", g(2025, 7, 7)),
            moved_past: &["1404/04/14", "1404/04/15"],
        },
        Case {
            what: "a Friday last day: one week from a Friday",
            act_at: noon(2025, 4, 25),
            period: Period::Weeks(1),
            nominal: ("1404/02/12", g(2025, 5, 2)),
            last: ("1404/02/13", g(2025, 5, 3)),
            moved_past: &["1404/02/12"],
        },
        Case {
            what: "a month is 30 days across Farvardin's 31: 1404/01/21 + 1 month is 02/20",
            act_at: noon(2025, 4, 10),
            period: Period::Months(1),
            nominal: ("1404/02/20", g(2025, 5, 10)),
            last: ("1404/02/20", g(2025, 5, 10)),
            moved_past: &[],
        },
        Case {
            what: "three months are 90 days: 1404/01/21 + 3 months is 04/18, not 04/21",
            act_at: noon(2025, 4, 10),
            period: Period::Months(3),
            nominal: ("1404/04/18", g(2025, 7, 9)),
            last: ("1404/04/18", g(2025, 7, 9)),
            moved_past: &[],
        },
        Case {
            what: "an act at 00:15 Tehran time (20:45 UTC the day before) is on the Tehran day",
            act_at: Utc.with_ymd_and_hms(2025, 4, 9, 20, 45, 0).unwrap(),
            period: Period::Months(1),
            nominal: ("1404/02/20", g(2025, 5, 10)),
            last: ("1404/02/20", g(2025, 5, 10)),
            moved_past: &[],
        },
        Case {
            what: "consecutive closed days: Friday 29 Esfand 1404 (oil day), then Nowruz 1405 1–4",
            act_at: noon(2026, 3, 10),
            period: Period::Days(10),
            nominal: ("1404/12/29", g(2026, 3, 20)),
            last: ("1405/01/05", g(2026, 3, 25)),
            moved_past: &[
                "1404/12/29",
                "1405/01/01",
                "1405/01/02",
                "1405/01/03",
                "1405/01/04",
            ],
        },
        Case {
            what: "the leap day 1403/12/30 is a day (1403's holidays are not shipped)",
            act_at: noon(2025, 3, 10),
            period: Period::Days(10),
            nominal: ("1403/12/30", g(2025, 3, 20)),
            last: ("1403/12/30", g(2025, 3, 20)),
            moved_past: &[],
        },
    ];
    for c in &cases {
        check(&calendar, &ardabil, c);
    }

    // The reasons are recorded: 29 Esfand 1404 is a Friday and the oil day; 1405/01/01 is
    // both Nowruz and Eid al-Fitr.
    let d = check(&calendar, &ardabil, &cases[7]);
    let reasons = &d.rule.moved_past[0].reasons;
    assert!(reasons.contains(&ClosedReason::WeeklyRest {
        weekday: Weekday::Fri
    }));
    assert!(reasons.iter().any(
        |r| matches!(r, ClosedReason::Holiday { name, .. } if name == "روز ملی شدن صنعت نفت ایران")
    ));
    assert_eq!(d.rule.moved_past[1].reasons.len(), 2);
    assert!(d.rule.holidays_known);
    // 1403's holiday list is not known: the deadline says so.
    assert!(!check(&calendar, &ardabil, &cases[8]).rule.holidays_known);
}

#[test]
fn the_leap_day_and_nowruz_1401_then_a_friday_on_a_calendar_given_them() {
    // 1403's last two days were holidays (29 Esfand, the oil day; 30 Esfand, the new year's
    // eve): with them published, 10 days from 1403/12/20 end on 1404/01/05.
    let mut calendar = Calendar::shipped();
    let holiday = |date: &str, name: &str| Holiday {
        date: sd(date),
        name: name.into(),
        kind: HolidayKind::Solar,
        hijri: None,
        provisional: false,
    };
    calendar.add_holiday_year(
        1403,
        [
            holiday("1403/12/29", "روز ملی شدن صنعت نفت ایران"),
            holiday("1403/12/30", "تعطیل به مناسبت تحویل سال"),
        ],
    );
    let ardabil = province("اردبیل");
    check(
        &calendar,
        &ardabil,
        &Case {
            what: "last day on the leap day 1403/12/30, then Friday Nowruz 1404 1–4",
            act_at: noon(2025, 3, 10),
            period: Period::Days(10),
            nominal: ("1403/12/30", g(2025, 3, 20)),
            last: ("1404/01/05", g(2025, 3, 25)),
            moved_past: &[
                "1403/12/30",
                "1404/01/01",
                "1404/01/02",
                "1404/01/03",
                "1404/01/04",
            ],
        },
    );

    // 1401 began on a Monday: Nowruz 1–4 ran Monday to Thursday, then came a Friday.
    calendar.add_holiday_year(
        1401,
        ["1401/01/01", "1401/01/02", "1401/01/03", "1401/01/04"].map(|d| holiday(d, "عید نوروز")),
    );
    check(
        &calendar,
        &ardabil,
        &Case {
            what: "Nowruz 1401 1–4, then Friday 1401/01/05",
            act_at: noon(2022, 3, 11),
            period: Period::Days(10),
            nominal: ("1401/01/01", g(2022, 3, 21)),
            last: ("1401/01/06", g(2022, 3, 26)),
            moved_past: &[
                "1401/01/01",
                "1401/01/02",
                "1401/01/03",
                "1401/01/04",
                "1401/01/05",
            ],
        },
    );
}

fn heat_wave(scope: Scope, day: &str) -> Closure {
    Closure {
        scope,
        first_day: sd(day),
        last_day: sd(day),
        reason: "گرمای شدید و صرفه‌جویی در مصرف برق".into(),
        published_by: "ستاد مدیریت بحران".into(),
        published_at: Utc.with_ymd_and_hms(2025, 7, 30, 14, 0, 0).unwrap(),
    }
}

#[test]
fn a_closure_published_late_moves_the_deadlines_that_end_in_it_and_no_other() {
    let mut calendar = Calendar::shipped();
    let ardabil = province("اردبیل");
    // Set on 1404/05/01, 05/02 and 05/05: ten days each, ending 05/11 (Saturday), 05/12
    // and 05/15.
    let ends_in_it = calendar
        .deadline(noon(2025, 7, 23), Period::Days(10), &ardabil)
        .unwrap();
    let ends_after = calendar
        .deadline(noon(2025, 7, 24), Period::Days(10), &ardabil)
        .unwrap();
    let spans_it = calendar
        .deadline(noon(2025, 7, 27), Period::Days(10), &ardabil)
        .unwrap();
    assert_eq!(ends_in_it.last_day, sd("1404/05/11"));
    assert_eq!(ends_after.last_day, sd("1404/05/12"));
    assert_eq!(spans_it.last_day, sd("1404/05/15"));

    let closure = heat_wave(Scope::Nationwide, "1404/05/11");
    let open = [("a", &ends_in_it), ("b", &ends_after), ("c", &spans_it)];
    let moved = calendar
        .publish(Publication::Closure(closure.clone()), open)
        .unwrap();
    assert_eq!(
        moved.len(),
        1,
        "only the deadline ending on the closed day moves"
    );
    let m = &moved[0];
    assert_eq!(m.key, "a");
    assert_eq!(m.before, ends_in_it);
    assert_eq!(m.after.last_day, sd("1404/05/12"));
    assert_eq!(
        m.after.last_day.to_gregorian(),
        independent_gregorian("1404/05/12")
    );
    assert_eq!(m.after.ends_at, end_of_tehran_day(g(2025, 8, 3)));
    assert_eq!(m.after.rule.late_moves.len(), 1);
    let late = &m.after.rule.late_moves[0];
    assert_eq!(
        (late.from_last_day, late.to_last_day),
        (sd("1404/05/11"), sd("1404/05/12"))
    );
    assert!(
        matches!(&late.because, ClosedReason::Closure { published_by, .. } if published_by == "ستاد مدیریت بحران")
    );
    assert!(m.after.rule.articles.contains(&Article::CivilProcedure444));
    // What was computed at the start stays as it was.
    assert_eq!(
        m.after.rule.nominal_last_day,
        ends_in_it.rule.nominal_last_day
    );
    assert!(m.after.rule.moved_past.is_empty());

    // A new deadline computed now sees the closure itself.
    let fresh = calendar
        .deadline(noon(2025, 7, 23), Period::Days(10), &ardabil)
        .unwrap();
    assert_eq!(fresh.last_day, sd("1404/05/12"));
    assert_eq!(fresh.rule.moved_past.len(), 1);
}

#[test]
fn a_late_holiday_moves_a_deadline_too() {
    let mut calendar = Calendar::shipped();
    let ardabil = province("اردبیل");
    let d = calendar
        .deadline(noon(2025, 7, 23), Period::Days(10), &ardabil)
        .unwrap();
    let holiday = Holiday {
        date: sd("1404/05/11"),
        name: "تعطیل به مناسبت سوگ ملی".into(),
        kind: HolidayKind::Solar,
        hijri: None,
        provisional: false,
    };
    let moved = calendar
        .publish(Publication::Holiday(holiday), [(1u32, &d)])
        .unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].after.last_day, sd("1404/05/12"));
}

#[test]
fn a_province_closure_moves_that_province_only() {
    let mut calendar = Calendar::shipped();
    let khuzestan = province("خوزستان");
    let ardabil = province("اردبیل");
    let in_khuzestan = calendar
        .deadline(noon(2025, 7, 23), Period::Days(10), &khuzestan)
        .unwrap();
    let in_ardabil = calendar
        .deadline(noon(2025, 7, 23), Period::Days(10), &ardabil)
        .unwrap();
    assert_eq!(in_khuzestan.last_day, in_ardabil.last_day);

    let closure = heat_wave(Scope::Province(khuzestan.clone()), "1404/05/11");
    let moved = calendar
        .publish(
            Publication::Closure(closure),
            [("khuzestan", &in_khuzestan), ("ardabil", &in_ardabil)],
        )
        .unwrap();
    assert_eq!(
        moved.iter().map(|m| m.key).collect::<Vec<_>>(),
        ["khuzestan"]
    );
    assert_eq!(moved[0].after.last_day, sd("1404/05/12"));
    assert!(calendar.is_open(&ardabil, sd("1404/05/11")));
    assert!(!calendar.is_open(&khuzestan, sd("1404/05/11")));
}

#[test]
fn a_closure_running_into_a_friday_moves_past_both() {
    let mut calendar = Calendar::shipped();
    let ardabil = province("اردبیل");
    // 1404/05/08 is a Wednesday; ten days from 1404/04/29 end on it.
    let d = calendar
        .deadline(noon(2025, 7, 20), Period::Days(10), &ardabil)
        .unwrap();
    assert_eq!(d.last_day, sd("1404/05/08"));
    let closure = Closure {
        first_day: sd("1404/05/08"),
        last_day: sd("1404/05/09"),
        ..heat_wave(Scope::Nationwide, "1404/05/08")
    };
    let moved = calendar
        .publish(Publication::Closure(closure), [((), &d)])
        .unwrap();
    // Wednesday and Thursday closed, Friday the rest day: Saturday 1404/05/11.
    assert_eq!(moved[0].after.last_day, sd("1404/05/11"));
    assert_eq!(
        moved[0].after.last_day.to_gregorian(),
        independent_gregorian("1404/05/11")
    );
}

#[test]
fn bad_periods_are_errors_not_panics() {
    let calendar = Calendar::shipped();
    let p = province("اردبیل");
    for bad in [
        Period::Days(0),
        Period::Months(0),
        Period::Weeks(0),
        Period::Months(u32::MAX),
        Period::Days(3661),
    ] {
        assert!(
            calendar.deadline(noon(2025, 7, 20), bad, &p).is_err(),
            "{bad:?}"
        );
    }
    assert!(
        calendar
            .deadline(noon(2025, 7, 20), Period::Days(3660), &p)
            .is_ok()
    );
    // An act time from a garbled timestamp is refused, not a panic.
    let garbled = Utc.with_ymd_and_hms(99_999, 1, 1, 0, 0, 0).unwrap();
    assert!(matches!(
        calendar.deadline(garbled, Period::Days(10), &p),
        Err(DeadlineError::ActAt(_))
    ));
}

#[test]
fn the_rule_applied_is_stored_and_read_back() {
    let calendar = Calendar::shipped();
    let d = calendar
        .deadline(noon(2026, 3, 10), Period::Days(10), &province("اردبیل"))
        .unwrap();
    let json = serde_json::to_value(&d.rule).unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["period"], serde_json::json!({"days": 10}));
    assert_eq!(json["nominal_last_day"], "1404/12/29");
    assert_eq!(
        json["articles"],
        serde_json::json!([
            "civil_procedure_443",
            "civil_procedure_445",
            "civil_procedure_444"
        ])
    );
    assert_eq!(
        json["moved_past"][0]["reasons"][0],
        serde_json::json!({"kind": "weekly_rest", "weekday": "Fri"})
    );
    let back: Deadline = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    assert_eq!(back, d);
    // A rule stored before late moves existed still reads.
    let mut old = json.clone();
    old.as_object_mut().unwrap().remove("late_moves");
    let read: mosharekat_calendar::RuleApplied = serde_json::from_value(old).unwrap();
    assert!(read.late_moves.is_empty());
}

#[test]
fn due_within_and_overdue_follow_the_tehran_day() {
    let calendar = Calendar::shipped();
    let d = calendar
        .deadline(noon(2025, 7, 23), Period::Days(10), &province("اردبیل"))
        .unwrap();
    assert_eq!(d.last_day, sd("1404/05/11"));
    // Seven days before, at noon: due within 7 days, not within 6.
    assert!(d.is_due_within(noon(2025, 7, 26), 7));
    assert!(!d.is_due_within(noon(2025, 7, 26), 6));
    // The last day itself, one microsecond before its end: due today, not overdue.
    let last_moment = end_of_tehran_day(g(2025, 8, 2));
    assert!(d.is_due_within(last_moment, 0));
    assert!(!d.is_passed(last_moment));
    // A microsecond later: overdue, no longer "due within".
    let after = last_moment + TimeDelta::microseconds(1);
    assert!(d.is_passed(after));
    assert!(!d.is_due_within(after, 30));
}

#[test]
fn the_rule_reads_in_persian() {
    let mut calendar = Calendar::shipped();
    let p = province("اردبیل");
    let d = calendar
        .deadline(noon(2026, 3, 10), Period::Days(10), &p)
        .unwrap();
    assert_eq!(
        d.explain_persian(),
        "مهلت ۱۰ روز از ۱۹ اسفند ۱۴۰۴ (روز اقدام شمرده نمی‌شود)؛ \
         ۲۹ اسفند ۱۴۰۴ تعطیل بود (تعطیل هفتگی جمعه، روز ملی شدن صنعت نفت ایران)؛ \
         ۱ فروردین ۱۴۰۵ تعطیل بود (آغاز نوروز، عید سعید فطر)؛ \
         ۲ فروردین ۱۴۰۵ تعطیل بود (عید نوروز، تعطیل به مناسبت عید سعید فطر)؛ \
         ۳ فروردین ۱۴۰۵ تعطیل بود (عید نوروز)؛ \
         ۴ فروردین ۱۴۰۵ تعطیل بود (عید نوروز)؛ \
         پایان مهلت: پایان روز چهارشنبه ۵ فروردین ۱۴۰۵"
    );
    let d = calendar
        .deadline(noon(2025, 7, 23), Period::Days(10), &p)
        .unwrap();
    let moved = calendar
        .publish(
            Publication::Closure(heat_wave(Scope::Province(p.clone()), "1404/05/11")),
            [((), &d)],
        )
        .unwrap();
    assert!(
        moved[0].after.explain_persian().ends_with(
            "به سبب تعطیلی استان اردبیل: گرمای شدید و صرفه‌جویی در مصرف برق، \
             مهلت از ۱۱ مرداد ۱۴۰۴ به ۱۲ مرداد ۱۴۰۴ منتقل شد؛ \
             پایان مهلت: پایان روز یکشنبه ۱۲ مرداد ۱۴۰۴"
        ),
        "{}",
        moved[0].after.explain_persian()
    );
}

#[test]
fn reminders_are_days_before_the_last_day_and_move_with_it() {
    let mut calendar = Calendar::shipped();
    let p = province("اردبیل");
    let eight = chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap();
    let d = calendar
        .deadline(noon(2025, 7, 23), Period::Days(10), &p)
        .unwrap();
    // Last day 1404/05/11 (2025-08-02): 7 days before at 08:00 Tehran is 04:30 UTC on 07-26.
    assert_eq!(
        d.reminder_at(7, eight),
        Utc.with_ymd_and_hms(2025, 7, 26, 4, 30, 0).unwrap()
    );
    assert_eq!(
        d.reminder_at(1, eight),
        Utc.with_ymd_and_hms(2025, 8, 1, 4, 30, 0).unwrap()
    );
    assert_eq!(
        d.passed_at(),
        end_of_tehran_day(g(2025, 8, 2)) + TimeDelta::microseconds(1)
    );
    let moved = calendar
        .publish(
            Publication::Closure(heat_wave(Scope::Nationwide, "1404/05/11")),
            [((), &d)],
        )
        .unwrap();
    assert_eq!(
        moved[0].after.reminder_at(1, eight),
        Utc.with_ymd_and_hms(2025, 8, 2, 4, 30, 0).unwrap()
    );
}

#[test]
fn the_stored_form_of_a_deadline_is_stable() {
    // The exact JSON a service stores: a change here is a storage migration, not a refactor.
    let mut calendar = Calendar::shipped();
    let p = province("اردبیل");
    let d = calendar
        .deadline(noon(2025, 4, 25), Period::Weeks(1), &p)
        .unwrap();
    let moved = calendar
        .publish(
            Publication::Closure(heat_wave(Scope::Province(p), "1404/02/13")),
            [((), &d)],
        )
        .unwrap();
    let golden = r#"{"act_at":"2025-04-25T08:30:00Z","province":"اردبیل","last_day":"1404/02/14","ends_at":"2025-05-04T20:29:59.999999Z","rule":{"schema":1,"period":{"weeks":1},"days_counted":7,"act_day":"1404/02/05","nominal_last_day":"1404/02/12","articles":["civil_procedure_443","civil_procedure_445","civil_procedure_444"],"moved_past":[{"day":"1404/02/12","reasons":[{"kind":"weekly_rest","weekday":"Fri"}]}],"holidays_known":true,"late_moves":[{"from_last_day":"1404/02/13","to_last_day":"1404/02/14","because":{"kind":"closure","scope":{"scope":"province","province":"اردبیل"},"reason":"گرمای شدید و صرفه‌جویی در مصرف برق","published_by":"ستاد مدیریت بحران","published_at":"2025-07-30T14:00:00Z"}}]}}"#;
    assert_eq!(serde_json::to_string(&moved[0].after).unwrap(), golden);
    assert_eq!(
        serde_json::from_str::<Deadline>(golden).unwrap(),
        moved[0].after
    );
}
