//! Reminders fire at their instants, once each, and move with their deadline; the clock is
//! moved, never slept on.

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};

use mosharekat_calendar::SolarDate;
use mosharekat_notify::reminders::{self, fire_due, reminders_of, reschedule, schedule};
use mosharekat_notify::store;
use mosharekat_notify::{
    Addressee, Delivery, Office, Offset, Recipient, Reference, ReminderPlan, STANDARD_OFFSETS,
    Sequence, Topic,
};
use mosharekat_platform::testing::Backend;

use crate::support::{Env, email_to, env, institution};

on_both_databases!(
    reminders_fire_at_their_instants_once_and_move_with_the_deadline,
    a_rolled_back_schedule_stores_nothing_and_a_past_reminder_is_not_stored,
    the_loop_fires_by_the_databases_clock,
    a_reminder_whose_deadline_passed_before_it_fired_is_skipped,
    a_deadline_set_inside_every_window_is_reminded_of_at_once,
);

const KEY: &str = "referrals/1234/due";

fn plan() -> ReminderPlan {
    ReminderPlan {
        deadline_key: KEY.into(),
        topic: Topic::ReferralDue,
        resource: "referrals/1234".into(),
        reference: Reference::new("ارجاع", 1234).unwrap(),
        office: Office::Center,
        recipients: vec![
            Addressee {
                recipient: institution(),
                delivery: Delivery::Sms,
            },
            Addressee {
                recipient: institution(),
                delivery: email_to("info@mehr.example", ""),
            },
        ],
        offsets: STANDARD_OFFSETS.to_vec(),
    }
}

fn day(y: i32, m: u8, d: u8) -> SolarDate {
    SolarDate::new(y, m, d).unwrap()
}

fn at8(d: SolarDate) -> DateTime<Utc> {
    d.at_tehran_time(NaiveTime::from_hms_opt(8, 0, 0).unwrap())
}

async fn fire_now(e: &Env) -> Vec<Sequence> {
    fire_due(&e.db, e.db.clock().now()).await.unwrap()
}

async fn texts(e: &Env, seqs: &[Sequence]) -> Vec<String> {
    let mut out = Vec::new();
    for s in seqs {
        out.push(
            store::get(e.db.conn(), *s)
                .await
                .unwrap()
                .unwrap()
                .value
                .text,
        );
    }
    out
}

async fn reminders_fire_at_their_instants_once_and_move_with_the_deadline(b: Backend) {
    let e = env(b).await;
    // Due at the end of 1404/12/20 (a Wednesday).
    let due = day(1404, 12, 20).end_instant();
    let txn = e.db.begin_write().await.unwrap();
    assert_eq!(schedule(&txn, &plan(), due).await.unwrap(), 6);
    txn.commit().await.unwrap();
    let stored = reminders_of(e.db.conn(), KEY).await.unwrap();
    let instants: Vec<(String, i64)> = stored
        .iter()
        .filter(|r| r.channel == "SMS")
        .map(|r| (r.offset_code.clone(), r.fire_us))
        .collect();
    assert_eq!(
        instants,
        [
            ("D7".into(), at8(day(1404, 12, 13)).timestamp_micros()),
            ("D1".into(), at8(day(1404, 12, 19)).timestamp_micros()),
            (
                "PASSED".into(),
                (due + TimeDelta::microseconds(1)).timestamp_micros()
            ),
        ]
    );

    // Nothing before the first instant.
    e.clock
        .set(at8(day(1404, 12, 13)) - TimeDelta::microseconds(1));
    assert!(fire_now(&e).await.is_empty());
    // At it: the SMS and the e-mail, once.
    e.clock.set(at8(day(1404, 12, 13)));
    let fired = fire_now(&e).await;
    assert_eq!(fired, [Sequence(1), Sequence(2)]);
    assert_eq!(
        texts(&e, &fired[..1]).await,
        ["موسسه خیریه مهر گرامی، مهلت انجام ارجاع ۱۲۳۴ پایان ۲۰ اسفند ۱۴۰۴ به سر می‌رسد."]
    );
    let mail = store::get(e.db.conn(), Sequence(2))
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(mail.subject, "یادآوری مهلت انجام ارجاع ۱۲۳۴");
    assert_eq!(mail.address, "info@mehr.example");
    assert!(fire_now(&e).await.is_empty(), "each fires once");
    e.clock.advance(TimeDelta::hours(5));
    assert!(fire_now(&e).await.is_empty(), "each fires once");

    // A closure published late moves the deadline to the end of 1404/12/27.
    let moved = day(1404, 12, 27).end_instant();
    let txn = e.db.begin_write().await.unwrap();
    assert_eq!(
        reschedule(&txn, KEY, moved).await.unwrap(),
        4,
        "the unfired ones"
    );
    txn.commit().await.unwrap();
    // The old day-before instant passes with nothing.
    e.clock.set(at8(day(1404, 12, 19)));
    assert!(fire_now(&e).await.is_empty());
    // The new one fires, with the new date.
    e.clock.set(at8(day(1404, 12, 26)));
    let fired = fire_now(&e).await;
    assert_eq!(fired, [Sequence(3), Sequence(4)]);
    assert!(
        texts(&e, &fired).await[0].contains("پایان ۲۷ اسفند ۱۴۰۴"),
        "{:?}",
        texts(&e, &fired).await
    );
    // Passed: one microsecond after the new end, not before.
    e.clock.set(moved);
    assert!(fire_now(&e).await.is_empty());
    e.clock.set(moved + TimeDelta::microseconds(1));
    let fired = fire_now(&e).await;
    assert_eq!(fired.len(), 2);
    assert!(texts(&e, &fired).await[0].contains("به سر رسید"));
    e.clock.advance(TimeDelta::days(400));
    assert!(fire_now(&e).await.is_empty());
    let states: Vec<String> = reminders_of(e.db.conn(), KEY)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.state)
        .collect();
    assert_eq!(states, ["FIRED"; 6]);
    assert_eq!(e.count().await, 6);
}

async fn a_rolled_back_schedule_stores_nothing_and_a_past_reminder_is_not_stored(b: Backend) {
    let e = env(b).await;
    let due = day(1404, 12, 20).end_instant();
    let txn = e.db.begin_write().await.unwrap();
    schedule(&txn, &plan(), due).await.unwrap();
    txn.rollback().await.unwrap();
    assert!(reminders_of(e.db.conn(), KEY).await.unwrap().is_empty());

    // Five days before the deadline: "7 days before" has gone by, and is not sent late.
    e.clock.set(at8(day(1404, 12, 15)));
    let mut p = plan();
    p.recipients.truncate(1);
    let txn = e.db.begin_write().await.unwrap();
    assert_eq!(schedule(&txn, &p, due).await.unwrap(), 2);
    txn.commit().await.unwrap();
    let codes: Vec<String> = reminders_of(e.db.conn(), KEY)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.offset_code)
        .collect();
    assert_eq!(codes, ["D1", "PASSED"]);

    // The case closes: nothing more fires.
    let txn = e.db.begin_write().await.unwrap();
    assert_eq!(reminders::cancel(&txn, KEY).await.unwrap(), 2);
    txn.commit().await.unwrap();
    e.clock.advance(TimeDelta::days(30));
    assert!(fire_now(&e).await.is_empty());
    assert_eq!(e.count().await, 0);

    // A plan whose texts would break the content rules is refused when scheduled.
    let mut bad = plan();
    bad.deadline_key = "referrals/9/due".into();
    bad.recipients[0].recipient = Recipient::Member {
        id: "m1".into(),
        name: "رضا 09123456789".into(),
    };
    let txn = e.db.begin_write().await.unwrap();
    let err = schedule(&txn, &bad, day(1405, 2, 1).end_instant())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, mosharekat_platform::error::ApiError::InvalidArgument(v) if v[0].field == "notification.recipient_name"),
        "{err:?}"
    );
    let mut bad = plan();
    bad.offsets = vec![Offset::DaysBefore(0)];
    assert!(schedule(&txn, &bad, due).await.is_err());
}

async fn the_loop_fires_by_the_databases_clock(b: Backend) {
    let e = env(b).await;
    let due = day(1404, 12, 20).end_instant();
    let txn = e.db.begin_write().await.unwrap();
    schedule(&txn, &plan(), due).await.unwrap();
    txn.commit().await.unwrap();
    let lp = reminders::spawn_reminder_loop(e.db.clone(), std::time::Duration::from_millis(20));
    e.clock.set(at8(day(1404, 12, 13)));
    // The loop's rounds run on a real interval; the reminders' time is the manual clock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while e.count().await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the loop fired nothing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    lp.abort();
    let states: Vec<(String, String)> = reminders_of(e.db.conn(), KEY)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.offset_code, r.state))
        .filter(|(_, s)| s != "PENDING")
        .collect();
    assert_eq!(
        states,
        [("D7".into(), "FIRED".into()), ("D7".into(), "FIRED".into())]
    );
}

async fn a_reminder_whose_deadline_passed_before_it_fired_is_skipped(b: Backend) {
    let e = env(b).await;
    let due = day(1404, 12, 20).end_instant();
    let txn = e.db.begin_write().await.unwrap();
    schedule(&txn, &plan(), due).await.unwrap();
    txn.commit().await.unwrap();
    // The service was down from before the first reminder until after the deadline:
    // "7 days left" and "1 day left" would be false now; "passed" is sent.
    e.clock.set(due + TimeDelta::days(2));
    let fired = fire_now(&e).await;
    assert_eq!(fired.len(), 2);
    assert!(
        texts(&e, &fired)
            .await
            .iter()
            .all(|t| t.contains("به سر رسید"))
    );
    let mut states: Vec<(String, String)> = reminders_of(e.db.conn(), KEY)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.offset_code, r.state))
        .collect();
    states.sort();
    assert_eq!(
        states,
        [
            ("D1".into(), "SKIPPED".into()),
            ("D1".into(), "SKIPPED".into()),
            ("D7".into(), "SKIPPED".into()),
            ("D7".into(), "SKIPPED".into()),
            ("PASSED".into(), "FIRED".into()),
            ("PASSED".into(), "FIRED".into()),
        ]
    );
}

async fn a_deadline_set_inside_every_window_is_reminded_of_at_once(b: Backend) {
    let e = env(b).await;
    // Noon on the day before the last day: "7 days" and "1 day before" (08:00) have both
    // gone by, so the most urgent, "1 day before", is due now; "7 days" is never sent.
    let due = day(1404, 12, 20).end_instant();
    e.clock.set(at8(day(1404, 12, 19)) + TimeDelta::hours(4));
    let mut p = plan();
    p.recipients.truncate(1);
    let txn = e.db.begin_write().await.unwrap();
    assert_eq!(schedule(&txn, &p, due).await.unwrap(), 2);
    txn.commit().await.unwrap();
    let codes: Vec<String> = reminders_of(e.db.conn(), KEY)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.offset_code)
        .collect();
    assert_eq!(codes, ["D1", "PASSED"]);
    let fired = fire_now(&e).await;
    assert_eq!(fired.len(), 1, "the one-day reminder fires at once");
    assert!(fire_now(&e).await.is_empty(), "and once");

    // A deadline already passed gets no "days before" reminder at all.
    let mut late = plan();
    late.deadline_key = "referrals/5/due".into();
    late.recipients.truncate(1);
    let txn = e.db.begin_write().await.unwrap();
    let stored = schedule(&txn, &late, day(1404, 12, 18).end_instant())
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(stored, 1, "only PASSED");
}
