//! What the working group's members are told (issue 16), with the meeting service on a
//! manual clock: every meeting change to every member seated, a resolution to its
//! responsible member, reminders of its deadline firing once each as the clock passes
//! their instants (and none once it is done), nothing for a change that rolled back, and
//! every text within the SMS rules.

use mosharekat_api::common::v1 as common;
use mosharekat_calendar::SharedCalendar;
use mosharekat_platform::clock::Clock;

use super::deadlines::{
    env_clocked, meeting_in_session, notifications, pbts, resolution, small_group, tehran,
};
use super::*;

on_both_databases!(
    every_meeting_change_is_told_to_every_member,
    a_change_rolled_back_tells_nobody,
    reminders_fire_once_each_as_the_clock_passes_them,
    an_sms_gateway_follows_and_acknowledges_the_meeting_services_notices,
);

fn id_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap()
}

/// The SMS rules for one of this service's texts: no link, no national code, the short
/// reference, the recipient's own name; and a Solar Hijri date in Persian digits where it
/// names one.
fn check_sms(n: &common::Notification, members: &[pb::Member], codes: &[String]) {
    assert_eq!(n.channel, common::NotificationChannel::Sms as i32, "{n:?}");
    mosharekat_notify::content::check_sms(&n.text, &n.reference)
        .unwrap_or_else(|e| panic!("{e}: {}", n.text));
    assert!(n.text.contains(&n.reference), "{}", n.text);
    assert!(!n.text.chars().any(|c| c.is_ascii_digit()), "{}", n.text);
    for c in codes {
        assert!(!n.text.contains(c.as_str()), "{}", n.text);
    }
    let me = members
        .iter()
        .find(|m| id_of(&m.name) == n.recipient_id)
        .expect("a member of the group");
    assert!(
        n.text.starts_with(&format!("{} گرامی", n.recipient_name)),
        "{}",
        n.text
    );
    // Only their own name: no other member's.
    for other in members.iter().filter(|m| m.name != me.name) {
        assert!(!n.text.contains(&other.full_name), "{}", n.text);
    }
}

async fn every_meeting_change_is_told_to_every_member(b: Backend) {
    let clock = Clock::manual(tehran(2025, 5, 3, 9, 0));
    let e = env_clocked(b, clock.clone(), SharedCalendar::shipped()).await;
    let (g, mut members) = small_group(&e).await;
    // A member whose recorded name the SMS rules refuse (a digit) is addressed without it.
    members.push(
        e.seat(
            &g,
            7,
            pb::Seat::Official,
            pb::Position::PrisonsDirectorGeneral,
            "",
        )
        .await
        .unwrap(),
    );
    let codes: Vec<String> = (0..4)
        .map(|i| code_for(500 + i))
        .chain([code_for(7)])
        .collect();
    let every: Vec<String> = {
        let mut v: Vec<String> = members.iter().map(|m| id_of(&m.name).to_owned()).collect();
        v.sort();
        v
    };
    let told = |ns: &[common::Notification], template_word: &str| -> Vec<String> {
        let mut v: Vec<String> = ns
            .iter()
            .filter(|n| n.text.contains(template_word))
            .map(|n| n.recipient_id.clone())
            .collect();
        v.sort();
        v
    };

    // Scheduled for Monday 1404/02/15 at 10:30.
    let m =
        e.wg.clone()
            .schedule_meeting(e.sec(pb::ScheduleMeetingRequest {
                parent: g.name.clone(),
                request_id: String::new(),
                meeting: Some(pb::Meeting {
                    title: "جلسهٔ کارگروه".into(),
                    place: "دادگستری استان اردبیل".into(),
                    scheduled_time: Some(pbts(tehran(2025, 5, 5, 10, 30))),
                    ..Default::default()
                }),
            }))
            .await
            .unwrap()
            .into_inner()
            .meeting
            .unwrap();
    let ns = notifications(&e, &m.name).await;
    assert_eq!(ns.len(), every.len(), "{ns:?}");
    assert_eq!(told(&ns, "برگزار می‌شود"), every);
    for n in &ns {
        check_sms(n, &members, &codes);
        assert!(n.text.contains("جلسه ۱"), "{}", n.text);
        assert!(
            n.text
                .contains("۱۵ اردیبهشت ۱۴۰۴ ساعت ۱۰:۳۰ در دادگستری استان اردبیل برگزار"),
            "date, time and place: {}",
            n.text
        );
        assert_eq!(n.state, common::NotificationState::Queued as i32);
        assert_eq!(n.office, "secretariat");
        assert_eq!(n.queue_time, Some(pbts(tehran(2025, 5, 3, 9, 0))));
    }
    let named = ns
        .iter()
        .find(|n| n.recipient_id == id_of(&members[1].name))
        .unwrap();
    assert!(named.text.starts_with("مریم احمدی گرامی"), "{}", named.text);
    let nameless = ns
        .iter()
        .find(|n| n.recipient_id == id_of(&members[4].name))
        .unwrap();
    assert!(
        nameless.text.starts_with(&format!(
            "{} گرامی",
            mosharekat_meeting::notices::NAMELESS_MEMBER
        )),
        "{}",
        nameless.text
    );

    // Moved to Tuesday 02/16 at 09:00; postponed; moved again; then, in session, its
    // minutes approved.
    e.wg.clone()
        .reschedule_meeting(e.sec(pb::RescheduleMeetingRequest {
            name: m.name.clone(),
            scheduled_time: Some(pbts(tehran(2025, 5, 6, 9, 0))),
            ..Default::default()
        }))
        .await
        .unwrap();
    let ns = notifications(&e, &m.name).await;
    assert_eq!(told(&ns, "منتقل شد"), every);
    for n in ns.iter().filter(|n| n.text.contains("منتقل شد")) {
        check_sms(n, &members, &codes);
        // The place kept from the schedule, as the SMS names it.
        assert!(
            n.text
                .contains("۱۶ اردیبهشت ۱۴۰۴ ساعت ۰۹:۰۰ در دادگستری استان اردبیل منتقل"),
            "{}",
            n.text
        );
    }
    e.wg.clone()
        .postpone_meeting(e.sec(pb::PostponeMeetingRequest {
            name: m.name.clone(),
            reason: "نبود حد نصاب".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let ns = notifications(&e, &m.name).await;
    assert_eq!(told(&ns, "به تعویق افتاد"), every);

    // A second meeting, cancelled.
    let m2 = e.schedule(&g, "جلسهٔ فوق‌العاده").await;
    e.wg.clone()
        .cancel_meeting(e.sec(pb::CancelMeetingRequest {
            name: m2.name.clone(),
            reason: "ادغام با جلسهٔ عادی".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let ns2 = notifications(&e, &m2.name).await;
    assert_eq!(told(&ns2, "لغو شد"), every);
    for n in &ns2 {
        check_sms(n, &members, &codes);
        assert!(n.text.contains("جلسه ۲"), "{}", n.text);
    }

    // A third, held: its resolution told to the responsible member, its minutes to all.
    let m3 = meeting_in_session(&e, &g, &members, tehran(2025, 5, 3, 11, 0)).await;
    let r = resolution(&e, &m3.name, &members, |r| {
        r.responsible_member = members[1].name.clone();
        r.deadline_days = 10;
    })
    .await
    .unwrap();
    let rs = notifications(&e, &r.name).await;
    assert_eq!(rs.len(), 1, "{rs:?}");
    check_sms(&rs[0], &members, &codes);
    assert_eq!(rs[0].recipient_id, id_of(&members[1].name));
    assert_eq!(rs[0].reference, "مصوبه ۳۰۱");
    assert_eq!(
        rs[0].text,
        "مریم احمدی گرامی، اجرای مصوبه ۳۰۱ به شما سپرده شد؛ مهلت تا پایان ۲۳ اردیبهشت ۱۴۰۴."
    );
    // Without a responsible member, nobody is assigned anything.
    let unassigned = resolution(&e, &m3.name, &members, |r| {
        r.responsible_member.clear();
        r.responsible_body = "دادگستری استان".into();
        r.deadline_days = 10;
    })
    .await
    .unwrap();
    assert!(notifications(&e, &unassigned.name).await.is_empty());

    e.approve(&m3.name, "گزارش دبیر").await;
    let ns3 = notifications(&e, &m3.name).await;
    assert_eq!(told(&ns3, "تصویب شد"), every);
    for n in ns3.iter().filter(|n| n.text.contains("تصویب شد")) {
        check_sms(n, &members, &codes);
        assert!(n.text.contains("صورتجلسه ۳"), "{}", n.text);
    }

    // A member lists their own, and only theirs.
    let me = id_of(&members[1].name).to_owned();
    let mine =
        mosharekat_api::common::v1::notification_service_client::NotificationServiceClient::new(
            lazy(&e.services.2.uri()),
        )
        .list_notifications(authed(
            e.keys
                .bearer_with(Role::Member, |t| t.member = Some(me.clone())),
            common::ListNotificationsRequest {
                page_size: 500,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .notifications;
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|n| n.recipient_id == me), "{mine:?}");
}

async fn count_notifications(db: &Db) -> i64 {
    use sea_orm::ConnectionTrait as _;
    db.conn()
        .query_one_raw(db.stmt("SELECT COUNT(*) AS n FROM notification", []))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap()
}

async fn a_change_rolled_back_tells_nobody(b: Backend) {
    let clock = Clock::manual(tehran(2025, 5, 3, 9, 0));
    let e = env_clocked(b, clock, SharedCalendar::shipped()).await;
    let (g, members) = small_group(&e).await;
    let m = e.schedule(&g, "جلسهٔ کارگروه").await;
    let db = e.meeting_db().await;
    let queued = count_notifications(&db).await;
    assert_eq!(queued, members.len() as i64);

    // Refused at the etag: not saved, nobody told.
    let err =
        e.wg.clone()
            .reschedule_meeting(e.sec(pb::RescheduleMeetingRequest {
                name: m.name.clone(),
                etag: "99".into(),
                scheduled_time: Some(pbts(tehran(2025, 5, 6, 9, 0))),
                ..Default::default()
            }))
            .await
            .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(count_notifications(&db).await, queued);

    // The notices are written in the change's own transaction: a transaction that writes
    // them and is then rolled back leaves none, and queues none for the gateways.
    let name = mosharekat_meeting::names::MeetingName::parse(&m.name, "name").unwrap();
    let meeting = mosharekat_meeting::store::meeting(db.conn(), &name)
        .await
        .unwrap()
        .unwrap()
        .value
        .value;
    let txn = db.begin_write().await.unwrap();
    let n = mosharekat_meeting::notices::meeting_changed(
        &txn,
        mosharekat_notify::Template::MeetingMoved,
        &meeting,
    )
    .await
    .unwrap();
    assert_eq!(n, members.len());
    {
        use sea_orm::ConnectionTrait as _;
        let inside: i64 = txn
            .query_one_raw(db.stmt("SELECT COUNT(*) AS n FROM notification", []))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "n")
            .unwrap();
        assert_eq!(inside, queued + n as i64);
    }
    txn.rollback().await.unwrap();
    assert_eq!(count_notifications(&db).await, queued);
    assert!(
        notifications(&e, &m.name)
            .await
            .iter()
            .all(|n| !n.text.contains("منتقل شد"))
    );
}

/// The notifications about `resource` once at least `n` are there: the reminder loop runs
/// every few milliseconds by the manual clock; this waits for its round, not for a time.
async fn at_least(e: &Env, resource: &str, n: usize) -> Vec<common::Notification> {
    for _ in 0..1000 {
        let ns = notifications(e, resource).await;
        if ns.len() >= n {
            return ns;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} notifications about {resource}");
}

async fn reminders_fire_once_each_as_the_clock_passes_them(b: Backend) {
    // Saturday 1404/02/13.
    let clock = Clock::manual(tehran(2025, 5, 3, 9, 0));
    let e = env_clocked(b, clock.clone(), SharedCalendar::shipped()).await;
    let (g, members) = small_group(&e).await;
    let codes: Vec<String> = (0..4).map(|i| code_for(500 + i)).collect();
    let m = meeting_in_session(&e, &g, &members, tehran(2025, 5, 3, 10, 0)).await;
    // Ten days: last day Tuesday 02/23; reminders 02/16 08:00, 02/22 08:00, and passed.
    let r = resolution(&e, &m.name, &members, |r| r.deadline_days = 10)
        .await
        .unwrap();
    // Another, done before its reminders come: they never fire.
    let done = resolution(&e, &m.name, &members, |r| r.deadline_days = 10)
        .await
        .unwrap();
    e.wg.clone()
        .report_resolution_progress(e.sec(pb::ReportResolutionProgressRequest {
            name: done.name.clone(),
            etag: String::new(),
            progress: 100,
            note: String::new(),
        }))
        .await
        .unwrap();
    let db = e.meeting_db().await;
    let key = format!("{}/deadline", r.name);
    let plan = mosharekat_notify::reminders::reminders_of(db.conn(), &key)
        .await
        .unwrap();
    let fire: Vec<(String, i64)> = plan
        .iter()
        .map(|x| (x.offset_code.clone(), x.fire_us))
        .collect();
    let last_day = mosharekat_calendar::SolarDate::new(1404, 2, 23).unwrap();
    assert_eq!(
        fire,
        vec![
            ("D7".into(), tehran(2025, 5, 6, 8, 0).timestamp_micros()),
            ("D1".into(), tehran(2025, 5, 12, 8, 0).timestamp_micros()),
            (
                "PASSED".into(),
                last_day.end_instant().timestamp_micros() + 1
            ),
        ]
    );
    let cancelled =
        mosharekat_notify::reminders::reminders_of(db.conn(), &format!("{}/deadline", done.name))
            .await
            .unwrap();
    assert_eq!(cancelled.len(), 3);
    assert!(
        cancelled.iter().all(|x| x.state == "CANCELLED"),
        "{cancelled:?}"
    );

    // Just before 7 days before: nothing more than the assignment.
    clock.set(tehran(2025, 5, 6, 7, 59));
    assert!(
        mosharekat_notify::reminders::fire_due(&db, clock.now())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(notifications(&e, &r.name).await.len(), 1);

    // 7 days before, 08:00: «… پایان ۲۳ اردیبهشت ۱۴۰۴ به سر می‌رسد».
    clock.set(tehran(2025, 5, 6, 8, 0));
    let ns = at_least(&e, &r.name, 2).await;
    assert!(
        ns[1].text.contains("مهلت اجرای مصوبه ۱۰۱"),
        "{}",
        ns[1].text
    );
    assert!(
        ns[1].text.contains("پایان ۲۳ اردیبهشت ۱۴۰۴ به سر می‌رسد"),
        "{}",
        ns[1].text
    );
    assert_eq!(ns[1].queue_time, Some(pbts(tehran(2025, 5, 6, 8, 0))));

    // 1 day before, then passed (past midnight at the end of the last day).
    clock.set(tehran(2025, 5, 12, 8, 0));
    let ns = at_least(&e, &r.name, 3).await;
    assert!(ns[2].text.contains("به سر می‌رسد"), "{}", ns[2].text);
    clock.set(tehran(2025, 5, 14, 0, 0));
    let ns = at_least(&e, &r.name, 4).await;
    assert!(
        ns[3].text.contains("پایان ۲۳ اردیبهشت ۱۴۰۴ به سر رسید"),
        "{}",
        ns[3].text
    );
    for n in &ns {
        check_sms(n, &members, &codes);
        assert_eq!(n.recipient_id, id_of(&members[0].name));
    }

    // Each fired once: a later round finds nothing, and the done one told nobody more.
    clock.set(tehran(2025, 6, 1, 0, 0));
    assert!(
        mosharekat_notify::reminders::fire_due(&db, clock.now())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(notifications(&e, &r.name).await.len(), 4);
    assert_eq!(notifications(&e, &done.name).await.len(), 1);
    let states: Vec<String> = mosharekat_notify::reminders::reminders_of(db.conn(), &key)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.state)
        .collect();
    assert_eq!(states, ["FIRED", "FIRED", "FIRED"]);
}

/// The judiciary's SMS gateway follows the meeting service's queued notices from the last
/// one it saw, and acknowledges each.
async fn an_sms_gateway_follows_and_acknowledges_the_meeting_services_notices(b: Backend) {
    use mosharekat_api::common::v1::notification_service_client::NotificationServiceClient;
    let clock = Clock::manual(tehran(2025, 5, 3, 9, 0));
    let e = env_clocked(b, clock, SharedCalendar::shipped()).await;
    let (g, members) = small_group(&e).await;
    let m = e.schedule(&g, "جلسهٔ کارگروه").await;
    let gateway = || e.keys.bearer(Role::Service, None);
    let mut client = NotificationServiceClient::new(lazy(&e.services.2.uri()));
    let follow = |after: i64| {
        let mut c = client.clone();
        let req = authed(
            gateway(),
            common::StreamNotificationsRequest {
                after_sequence: after,
                channel: common::NotificationChannel::Sms as i32,
            },
        );
        async move { c.stream_notifications(req).await.unwrap().into_inner() }
    };
    let mut stream = follow(0).await;
    let mut seen = Vec::new();
    while seen.len() < members.len() {
        let n = stream
            .message()
            .await
            .unwrap()
            .unwrap()
            .notification
            .unwrap();
        assert_eq!(n.resource, m.name);
        seen.push(n);
    }
    drop(stream);
    let seqs: Vec<i64> = seen.iter().map(|n| n.sequence).collect();
    assert_eq!(seqs, (1..=members.len() as i64).collect::<Vec<_>>());
    // Resumed after the second: the third comes next, nothing repeated.
    let mut resumed = follow(seqs[1]).await;
    let next = resumed
        .message()
        .await
        .unwrap()
        .unwrap()
        .notification
        .unwrap();
    assert_eq!(next.sequence, seqs[2]);
    drop(resumed);
    let ack = client
        .acknowledge_notification(authed(
            gateway(),
            common::AcknowledgeNotificationRequest {
                name: seen[0].name.clone(),
                state: common::NotificationState::Delivered as i32,
                failure_reason: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .notification
        .unwrap();
    assert_eq!(ack.state, common::NotificationState::Delivered as i32);
    assert_eq!(ack.deliver_time, Some(pbts(tehran(2025, 5, 3, 9, 0))));
}
