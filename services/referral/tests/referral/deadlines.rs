//! Deadlines on the legal calendar: an offer's answer time and a referral's due time
//! counted as arts. 443–445 count them, against dates checked by hand (the Gregorian
//! dates below are counted from 1 Farvardin 1405 = Saturday 21 March 2026, months 1–6 of
//! 31 days, not by the calendar under test); the rule stored and shown; the lists'
//! "due within N days" and "overdue"; a closure published late moving open deadlines.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use mosharekat_calendar::{Closure, Province, Publication, Scope};

use super::*;

on_both_databases!(
    the_answer_time_follows_the_legal_calendar,
    the_due_time_records_its_rule_and_lists_filter_on_it,
    a_closure_published_late_moves_open_deadlines_once,
);

/// 10:00 in Tehran (UTC+03:30) on a Gregorian day.
fn tehran_10(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 6, 30, 0).unwrap()
}

/// The end of a Gregorian day in Tehran: 23:59:59.999999 local is 20:29:59.999999 UTC.
fn end_of(y: i32, m: u32, d: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_micro_opt(20, 29, 59, 999_999)
        .unwrap()
        .and_utc()
        .timestamp_micros()
}

fn micros(t: &prost_types::Timestamp) -> i64 {
    t.seconds * 1_000_000 + i64::from(t.nanos) / 1000
}

async fn accept(e: &Env, inst: &Inst, r: &pb::Referral) -> pb::Referral {
    e.cases
        .clone()
        .accept_referral(e.as_inst(
            inst,
            pb::AcceptReferralRequest {
                name: r.name.clone(),
                etag: r.etag.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap()
}

async fn get(e: &Env, name: &str) -> pb::Referral {
    e.cases
        .clone()
        .get_referral(e.as_role(
            Role::CenterOfficer,
            pb::GetReferralRequest { name: name.into() },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap()
}

async fn the_answer_time_follows_the_legal_calendar(b: Backend) {
    let clock = Clock::manual(tehran_10(2026, 5, 9));
    let e = env_with_clock(b, clock.clone()).await;
    let inst = e
        .institution(61, &[reg::PermittedAction::AcceptReferrals])
        .await;
    // (offered on, Gregorian; last day Solar Hijri; last day Gregorian; days passed)
    type Day = (i32, u32, u32);
    let table: [(Day, &str, Day, usize); 4] = [
        // Friday 25 Ordibehesht 1405 is the weekly rest day: Saturday 26th.
        ((2026, 5, 8), "1405/02/26", (2026, 5, 16), 1),
        // 29 Esfand 1404 (a Friday and the oil nationalisation day), then Nowruz and
        // Eid al-Fitr 1–4 Farvardin: Wednesday 5 Farvardin 1405.
        ((2026, 3, 13), "1405/01/05", (2026, 3, 25), 5),
        // Tasua and Ashura (3 and 4 Tir 1405, lunar), then Friday: Saturday 6 Tir.
        ((2026, 6, 17), "1405/04/06", (2026, 6, 27), 3),
        // 1403 is a leap year: its 30 Esfand (Thursday 20 March 2025) is a day like any.
        ((2025, 3, 13), "1403/12/30", (2025, 3, 20), 0),
    ];
    for ((y, m, d), last_day, (gy, gm, gd), passed) in table {
        clock.set(tehran_10(y, m, d));
        let r = e.offer(&inst).await.unwrap();
        let a = r.answer.clone().expect("an offer has its answer time");
        assert_eq!(a.last_day, last_day, "offered {y}-{m}-{d}");
        assert_eq!(
            micros(a.time.as_ref().unwrap()),
            end_of(gy, gm, gd),
            "{last_day}"
        );
        let skipped = a.moves.iter().filter(|m| !m.late).count();
        assert_eq!(
            skipped,
            usize::from(passed > 0),
            "{last_day}: {:?}",
            a.moves
        );
        assert!(a.explanation.contains("مهلت ۷ روز"), "{}", a.explanation);
        assert!(a.explanation.contains("پایان مهلت"), "{}", a.explanation);
        assert!(
            a.articles
                .contains(&(mosharekat_api::common::v1::DeadlineArticle::CivilProcedure445 as i32))
        );
        assert_eq!(
            a.articles
                .contains(&(mosharekat_api::common::v1::DeadlineArticle::CivilProcedure444 as i32)),
            passed > 0,
            "{last_day}"
        );
        // The days passed, each with why it was closed.
        assert_eq!(
            a.explanation.matches("تعطیل بود").count(),
            passed,
            "{}",
            a.explanation
        );
        assert!(a.last_day_persian.contains('۱'), "{}", a.last_day_persian);
        assert_eq!(get(&e, &r.name).await.answer, Some(a), "stored as shown");
    }
}

async fn the_due_time_records_its_rule_and_lists_filter_on_it(b: Backend) {
    // Saturday 19 Ordibehesht 1405.
    let clock = Clock::manual(tehran_10(2026, 5, 9));
    let e = env_with_clock(b, clock.clone()).await;
    let inst = e
        .institution(62, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let offered = e.offer(&inst).await.unwrap();
    let accepted = accept(&e, &inst, &e.offer(&inst).await.unwrap()).await;
    // Three months = 90 days (art. 443) from 19 Ordibehesht: Friday 16 Mordad, the
    // weekly rest day, so Saturday 17 Mordad 1405 (8 August 2026).
    let due = accepted.due.clone().unwrap();
    assert_eq!(due.last_day, "1405/05/17");
    assert_eq!(micros(due.time.as_ref().unwrap()), end_of(2026, 8, 8));
    assert_eq!(
        accepted.due_time, due.time,
        "the due time is the deadline's"
    );
    assert!(
        due.explanation.contains("مهلت ۳ ماه"),
        "{}",
        due.explanation
    );
    assert_eq!(due.moves.len(), 1);
    assert_eq!(due.moves[0].from_last_day, "1405/05/16");
    assert_eq!(due.moves[0].to_last_day, "1405/05/17");
    assert!(
        due.moves[0].reason.contains("جمعه"),
        "{}",
        due.moves[0].reason
    );
    assert!(accepted.answer.is_none(), "answered: no answer time shown");
    let list = |within: Option<i32>, overdue: bool| {
        let req = e.as_role(
            Role::CenterOfficer,
            pb::ListReferralsRequest {
                due_within_days: within,
                overdue_only: overdue,
                ..Default::default()
            },
        );
        let mut c = e.cases.clone();
        async move {
            let mut names: Vec<String> = c
                .list_referrals(req)
                .await
                .unwrap()
                .into_inner()
                .referrals
                .into_iter()
                .map(|r| r.name)
                .collect();
            names.sort();
            names
        }
    };
    let mut both = vec![offered.name.clone(), accepted.name.clone()];
    both.sort();
    // The offer's answer time is 7 days away, the due time 91 (moved past the Friday).
    assert_eq!(
        list(Some(7), false).await,
        std::slice::from_ref(&offered.name)
    );
    assert_eq!(list(Some(6), false).await, Vec::<String>::new());
    assert_eq!(
        list(Some(90), false).await,
        std::slice::from_ref(&offered.name)
    );
    assert_eq!(list(Some(91), false).await, both);
    assert!(list(None, true).await.is_empty());
    // The last instant of 17 Mordad, then the first after it.
    clock.set(DateTime::from_timestamp_micros(end_of(2026, 8, 8)).unwrap());
    assert_eq!(
        list(Some(0), false).await,
        std::slice::from_ref(&accepted.name)
    );
    assert!(list(None, true).await.is_empty());
    clock.advance(chrono::Duration::microseconds(1));
    assert_eq!(list(None, true).await, std::slice::from_ref(&accepted.name));
    assert!(list(Some(0), false).await.is_empty(), "passed is not due");
    assert!(get(&e, &accepted.name).await.overdue);
    for bad in [-1, 3661] {
        let err = e
            .cases
            .clone()
            .list_referrals(e.as_role(
                Role::CenterOfficer,
                pb::ListReferralsRequest {
                    due_within_days: Some(bad),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(fields(&err), ["due_within_days"]);
    }
}

fn closure(province: Scope, day: &str) -> Publication {
    let day = day.parse().unwrap();
    Publication::Closure(Closure {
        scope: province,
        first_day: day,
        last_day: day,
        reason: "گرمای شدید هوا".into(),
        published_by: "استانداری".into(),
        published_at: Utc::now(),
    })
}

async fn a_closure_published_late_moves_open_deadlines_once(b: Backend) {
    let clock = Clock::manual(tehran_10(2026, 5, 9));
    let e = env_with_clock(b, clock.clone()).await;
    let inst = e
        .institution(63, &[reg::PermittedAction::AcceptReferrals])
        .await;
    // Its answer time ends Saturday 26 Ordibehesht; the other's due time 17 Mordad.
    let offered = e.offer(&inst).await.unwrap();
    let accepted = accept(&e, &inst, &e.offer(&inst).await.unwrap()).await;
    let app = &e.referral.as_ref().unwrap().app;
    let ardabil = Scope::Province(Province::new("اردبیل").unwrap());
    // A closure of another province moves nothing here.
    let tehran = Scope::Province(Province::new("تهران").unwrap());
    assert_eq!(
        app.apply_publication(&closure(tehran, "1405/02/26"))
            .await
            .unwrap(),
        0
    );
    let p = closure(ardabil.clone(), "1405/02/26");
    assert_eq!(app.apply_publication(&p).await.unwrap(), 1);
    let moved = get(&e, &offered.name).await;
    let a = moved.answer.clone().unwrap();
    // Sunday 27 Ordibehesht 1405, 17 May 2026.
    assert_eq!(a.last_day, "1405/02/27");
    assert_eq!(micros(a.time.as_ref().unwrap()), end_of(2026, 5, 17));
    let late: Vec<_> = a.moves.iter().filter(|m| m.late).collect();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].from_last_day, "1405/02/26");
    assert!(
        late[0].reason.contains("گرمای شدید هوا"),
        "{}",
        late[0].reason
    );
    assert!(
        a.articles
            .contains(&(mosharekat_api::common::v1::DeadlineArticle::CivilProcedure444 as i32))
    );
    let entry = moved.timeline.last().unwrap();
    assert!(entry.note.contains("منتقل شد"), "{}", entry.note);
    assert_eq!(moved.timeline.len(), offered.timeline.len() + 1);
    // Twice is once: nothing ends on the closed day any more.
    assert_eq!(app.apply_publication(&p).await.unwrap(), 0);
    assert_eq!(get(&e, &offered.name).await, moved);
    // The due time, by a nationwide closure of its last day.
    let p = closure(Scope::Nationwide, "1405/05/17");
    assert_eq!(app.apply_publication(&p).await.unwrap(), 1);
    let r = get(&e, &accepted.name).await;
    assert_eq!(r.due.as_ref().unwrap().last_day, "1405/05/18");
    assert_eq!(micros(r.due_time.as_ref().unwrap()), end_of(2026, 8, 9));
    assert_eq!(app.apply_publication(&p).await.unwrap(), 0);
    // New deadlines count the closure too.
    clock.set(tehran_10(2026, 5, 9));
    let again = e.offer(&inst).await.unwrap();
    assert_eq!(again.answer.unwrap().last_day, "1405/02/27");
}
