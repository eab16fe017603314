//! Resolution deadlines through the legal calendar (issue 16), with the meeting service on
//! a manual clock: periods counted as arts. 443–445 count them (hand-checked dates: a
//! Friday last day, a month over the Khordad holidays, ten days over Nowruz), a date
//! moved past a closed day, the lists' "due within N days" and "overdue" as the clock
//! moves, and a closure published late moving an open deadline once.

use chrono::{DateTime, TimeZone, Utc};
use mosharekat_api::common::v1 as common;
use mosharekat_api::common::v1::notification_service_client::NotificationServiceClient;
use mosharekat_calendar::{
    Closure, Holiday, HolidayKind, Province, Publication, Scope, SharedCalendar, SolarDate,
};
use mosharekat_platform::clock::Clock;

use super::*;

on_both_databases!(
    periods_are_counted_by_the_legal_calendar,
    due_within_and_overdue_filter_as_the_clock_moves,
    a_closure_published_late_moves_an_open_deadline_once,
    records_from_before_keep_their_stored_deadline,
    a_closure_published_on_the_registry_moves_a_resolution_deadline,
);

/// An instant given as Tehran wall time (UTC+03:30, no daylight saving since 1401).
pub(super) fn tehran(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap() - chrono::TimeDelta::minutes(210)
}

pub(super) fn pbts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// The three services, the meeting service on `clock` and `calendar`, firing reminders
/// every few milliseconds (so a test waits for a loop round, never for a time).
pub(super) async fn env_clocked(b: Backend, clock: Clock, calendar: SharedCalendar) -> Env {
    let keys = TestKeys::new().unwrap();
    let dbs = vec![
        TestDb::new(b).await.unwrap(),
        TestDb::new(b).await.unwrap(),
        TestDb::new(b).await.unwrap(),
    ];
    let registry = RunningRegistry::start(RunningRegistry::settings(&dbs[0].url, &keys.public_key))
        .await
        .unwrap();
    let referral = RunningReferral::start(RunningReferral::settings(
        &dbs[1].url,
        &keys.public_key,
        &keys.private_key,
        &registry.uri(),
    ))
    .await
    .unwrap();
    let mut settings = RunningMeeting::settings(
        &dbs[2].url,
        &keys.public_key,
        &keys.private_key,
        &registry.uri(),
        &referral.uri(),
    );
    settings.meeting.reminder_interval = Duration::from_millis(20).into();
    let meeting = RunningMeeting::start_with(settings, clock, calendar)
        .await
        .unwrap();
    Env {
        reg: RegistryServiceClient::new(lazy(&registry.uri())),
        cases: ReferralServiceClient::new(lazy(&referral.uri())),
        wg: MeetingServiceClient::new(lazy(&meeting.uri())),
        keys,
        _dbs: dbs,
        services: (registry, referral, meeting),
    }
}

/// A small working group of Ardabil: a chair, two officials and a secretary, named without
/// digits so that the SMS carry their names. Returns the group and its members.
pub(super) async fn small_group(e: &Env) -> (pb::WorkingGroup, Vec<pb::Member>) {
    let g = e.group().await;
    let mut members = Vec::new();
    for (i, (name, seat, position)) in [
        ("علی رضایی", pb::Seat::Chair, pb::Position::Unspecified),
        (
            "مریم احمدی",
            pb::Seat::Official,
            pb::Position::ChiefInspector,
        ),
        (
            "حسن کریمی",
            pb::Seat::Official,
            pb::Position::ProsecutorDeputy,
        ),
        ("زهرا موسوی", pb::Seat::Secretary, pb::Position::Unspecified),
    ]
    .into_iter()
    .enumerate()
    {
        let m =
            e.wg.clone()
                .seat_member(e.sec(pb::SeatMemberRequest {
                    parent: g.name.clone(),
                    request_id: String::new(),
                    member: Some(pb::Member {
                        full_name: name.into(),
                        national_code: code_for(500 + i as u32),
                        seat: seat as i32,
                        position: position as i32,
                        position_title: "عضو".into(),
                        ..Default::default()
                    }),
                }))
                .await
                .unwrap()
                .into_inner()
                .member
                .unwrap();
        members.push(m);
    }
    (g, members)
}

/// A meeting of `g` scheduled at `at`, its voting members present, started (its day is
/// the clock's).
pub(super) async fn meeting_in_session(
    e: &Env,
    g: &pb::WorkingGroup,
    members: &[pb::Member],
    at: DateTime<Utc>,
) -> pb::Meeting {
    let m =
        e.wg.clone()
            .schedule_meeting(e.sec(pb::ScheduleMeetingRequest {
                parent: g.name.clone(),
                request_id: String::new(),
                meeting: Some(pb::Meeting {
                    title: "جلسهٔ کارگروه".into(),
                    place: "دادگستری استان اردبیل".into(),
                    scheduled_time: Some(pbts(at)),
                    ..Default::default()
                }),
            }))
            .await
            .unwrap()
            .into_inner()
            .meeting
            .unwrap();
    let voters: Vec<&pb::Member> = members.iter().filter(|m| m.voting).collect();
    e.attend(&m.name, &voters).await.unwrap();
    e.start(&m.name).await
}

/// A resolution with `deadline` set by `set`, the chair responsible, adopted by all.
pub(super) async fn resolution(
    e: &Env,
    meeting: &str,
    members: &[pb::Member],
    set: impl FnOnce(&mut pb::RecordResolutionRequest),
) -> Result<pb::Resolution, tonic::Status> {
    let mut req = pb::RecordResolutionRequest {
        name: meeting.into(),
        request_id: String::new(),
        text: "پیگیری ارجاع پرونده‌ها".into(),
        responsible_member: members[0].name.clone(),
        votes: members
            .iter()
            .filter(|m| m.voting)
            .map(|m| pb::CastVote {
                member: m.name.clone(),
                vote: pb::Vote::For as i32,
            })
            .collect(),
        ..Default::default()
    };
    set(&mut req);
    e.wg.clone()
        .record_resolution(e.sec(req))
        .await
        .map(|r| r.into_inner().resolution.unwrap())
}

/// The notifications about `resource`, oldest first, as the administrator lists them.
pub(super) async fn notifications(e: &Env, resource: &str) -> Vec<common::Notification> {
    NotificationServiceClient::new(lazy(&e.services.2.uri()))
        .list_notifications(e.admin(common::ListNotificationsRequest {
            page_size: 500,
            resource: resource.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .notifications
}

fn last_day(r: &pb::Resolution) -> String {
    r.legal_deadline.as_ref().unwrap().last_day.clone()
}

/// The end of a Solar Hijri day in Tehran, as the API sends it.
fn end_of(y: i32, m: u8, d: u8) -> prost_types::Timestamp {
    pbts(SolarDate::new(y, m, d).unwrap().end_instant())
}

/// Hand-checked: 1404/02/13 is Saturday 2025-05-03; 1404/02/15 Monday 2025-05-05;
/// 14 and 15 Khordad 1404 (2025-06-04, -05) are holidays and the 16th (2025-06-06) is a
/// Friday and Eid al-Adha; 1404/12/19 is Tuesday 2026-03-10, 29 Esfand (2026-03-20) a
/// Friday and holiday, 1–4 Farvardin 1405 Nowruz (and 1 Farvardin Eid al-Fitr's second
/// day); 5 Farvardin 1405 is Wednesday 2026-03-25.
async fn periods_are_counted_by_the_legal_calendar(b: Backend) {
    let clock = Clock::manual(tehran(2025, 5, 3, 9, 0));
    let e = env_clocked(b, clock.clone(), SharedCalendar::shipped()).await;
    let (g, members) = small_group(&e).await;
    let m = meeting_in_session(&e, &g, &members, tehran(2025, 5, 3, 10, 0)).await;

    // Six days from Saturday 1404/02/13 end on Friday 02/19, the weekly rest: Saturday 02/20.
    let r = resolution(&e, &m.name, &members, |r| r.deadline_days = 6)
        .await
        .unwrap();
    let d = r.legal_deadline.clone().unwrap();
    assert_eq!(d.last_day, "1404/02/20");
    assert_eq!(r.deadline, Some(end_of(1404, 2, 20)));
    assert_eq!(d.time, r.deadline);
    assert_eq!(d.period, "۶ روز");
    assert_eq!(d.moves.len(), 1, "{d:?}");
    assert_eq!(
        (
            d.moves[0].from_last_day.as_str(),
            d.moves[0].to_last_day.as_str(),
            d.moves[0].late
        ),
        ("1404/02/19", "1404/02/20", false)
    );
    assert!(d.moves[0].reason.contains("جمعه"), "{}", d.moves[0].reason);
    assert!(
        d.explanation.contains("روز اقدام شمرده نمی‌شود"),
        "{}",
        d.explanation
    );
    assert!(d.explanation.contains("پایان مهلت"), "{}", d.explanation);

    // A date on that Friday is the same deadline: it ends on the next open day.
    let by_date = resolution(&e, &m.name, &members, |r| {
        r.deadline = Some(pbts(tehran(2025, 5, 9, 12, 0)))
    })
    .await
    .unwrap();
    assert_eq!(last_day(&by_date), "1404/02/20");
    assert_eq!(by_date.deadline, Some(end_of(1404, 2, 20)));

    // Ten days, a Tuesday: nothing to move.
    let ten = resolution(&e, &m.name, &members, |r| r.deadline_days = 10)
        .await
        .unwrap();
    assert_eq!(last_day(&ten), "1404/02/23");
    assert!(ten.legal_deadline.unwrap().moves.is_empty());

    // A month is 30 days, whatever the months' lengths (Ordibehesht has 31).
    let month = resolution(&e, &m.name, &members, |r| r.deadline_months = 1)
        .await
        .unwrap();
    assert_eq!(last_day(&month), "1404/03/12");
    assert_eq!(month.deadline, Some(end_of(1404, 3, 12)));
    assert_eq!(month.legal_deadline.unwrap().period, "۱ ماه");

    // Bad deadlines name their field.
    for (set, field) in [
        (
            Box::new(|r: &mut pb::RecordResolutionRequest| r.deadline_days = -1)
                as Box<dyn FnOnce(&mut pb::RecordResolutionRequest)>,
            "deadline_days",
        ),
        (
            Box::new(|r: &mut pb::RecordResolutionRequest| r.deadline_months = 200),
            "deadline_months",
        ),
        (
            Box::new(|r: &mut pb::RecordResolutionRequest| {
                r.deadline_days = 3;
                r.deadline_months = 1;
            }),
            "deadline_months",
        ),
        (
            Box::new(|r: &mut pb::RecordResolutionRequest| {
                r.deadline = Some(pbts(tehran(2025, 5, 3, 23, 0)))
            }),
            "deadline",
        ),
        (
            Box::new(|r: &mut pb::RecordResolutionRequest| {
                r.deadline = Some(pbts(tehran(2025, 4, 1, 12, 0)))
            }),
            "deadline",
        ),
    ] {
        let err = resolution(&e, &m.name, &members, set).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(fields(&err), vec![field.to_owned()], "{err:?}");
    }

    // A month from Monday 1404/02/15 ends on 03/14, a holiday; 03/15 too; 03/16 is a
    // Friday and a holiday: Saturday 03/17, three closed days passed.
    clock.set(tehran(2025, 5, 5, 9, 0));
    let m2 = meeting_in_session(&e, &g, &members, tehran(2025, 5, 5, 10, 0)).await;
    let khordad = resolution(&e, &m2.name, &members, |r| r.deadline_months = 1)
        .await
        .unwrap();
    let d = khordad.legal_deadline.unwrap();
    assert_eq!(d.last_day, "1404/03/17");
    // One move when it was set, from the nominal last day, naming each closed day passed.
    assert_eq!(d.moves.len(), 1, "{d:?}");
    assert_eq!(
        (
            d.moves[0].from_last_day.as_str(),
            d.moves[0].to_last_day.as_str()
        ),
        ("1404/03/14", "1404/03/17")
    );
    for day in ["۱۴ خرداد ۱۴۰۴", "۱۵ خرداد ۱۴۰۴", "۱۶ خرداد ۱۴۰۴"]
    {
        assert!(
            d.moves[0].reason.contains(day),
            "{day}: {}",
            d.moves[0].reason
        );
    }
    assert!(
        d.articles
            .contains(&(common::DeadlineArticle::CivilProcedure444 as i32))
    );

    // Ten days from Tuesday 1404/12/19 end on 29 Esfand, a Friday and a holiday, then
    // Nowruz: Wednesday 5 Farvardin 1405.
    clock.set(tehran(2026, 3, 10, 9, 0));
    let m3 = meeting_in_session(&e, &g, &members, tehran(2026, 3, 10, 10, 0)).await;
    let nowruz = resolution(&e, &m3.name, &members, |r| r.deadline_days = 10)
        .await
        .unwrap();
    let d = nowruz.legal_deadline.unwrap();
    assert_eq!(d.last_day, "1405/01/05");
    assert_eq!(d.moves.len(), 1, "{d:?}");
    assert_eq!(
        (
            d.moves[0].from_last_day.as_str(),
            d.moves[0].to_last_day.as_str()
        ),
        ("1404/12/29", "1405/01/05")
    );
    // 29 Esfand and the four days of Nowruz.
    assert_eq!(
        d.moves[0].reason.matches("؛").count(),
        4,
        "{}",
        d.moves[0].reason
    );
    assert!(d.explanation.contains("تعطیل بود"), "{}", d.explanation);
    assert!(
        d.last_day_persian.starts_with("چهارشنبه"),
        "{}",
        d.last_day_persian
    );
    assert!(
        d.explanation.contains("چهارشنبه ۵ فروردین ۱۴۰۵"),
        "{}",
        d.explanation
    );
    // The stored record keeps the rule applied.
    let again =
        e.wg.clone()
            .get_resolution(e.sec(pb::GetResolutionRequest {
                name: nowruz.name.clone(),
            }))
            .await
            .unwrap()
            .into_inner()
            .resolution
            .unwrap();
    assert_eq!(again.legal_deadline, Some(d));
}

async fn list(
    e: &Env,
    g: &pb::WorkingGroup,
    f: impl FnOnce(&mut pb::ListResolutionsRequest),
) -> Result<Vec<String>, tonic::Status> {
    let mut req = pb::ListResolutionsRequest {
        parent: g.name.clone(),
        page_size: 100,
        ..Default::default()
    };
    f(&mut req);
    let mut names: Vec<String> =
        e.wg.clone()
            .list_resolutions(e.sec(req))
            .await?
            .into_inner()
            .resolutions
            .into_iter()
            .map(|r| r.name)
            .collect();
    names.sort();
    Ok(names)
}

async fn due_within_and_overdue_filter_as_the_clock_moves(b: Backend) {
    // Saturday 1404/02/13, 09:00.
    let clock = Clock::manual(tehran(2025, 5, 3, 9, 0));
    let e = env_clocked(b, clock.clone(), SharedCalendar::shipped()).await;
    let (g, members) = small_group(&e).await;
    let m = meeting_in_session(&e, &g, &members, tehran(2025, 5, 3, 10, 0)).await;
    // Ends Monday 02/15, Tuesday 02/23, and 1404/03/12.
    let two = resolution(&e, &m.name, &members, |r| r.deadline_days = 2)
        .await
        .unwrap()
        .name;
    let ten = resolution(&e, &m.name, &members, |r| r.deadline_days = 10)
        .await
        .unwrap()
        .name;
    let month = resolution(&e, &m.name, &members, |r| r.deadline_months = 1)
        .await
        .unwrap()
        .name;

    assert_eq!(
        list(&e, &g, |r| r.due_within_days = Some(1)).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        list(&e, &g, |r| r.due_within_days = Some(2)).await.unwrap(),
        vec![two.clone()]
    );
    assert_eq!(
        list(&e, &g, |r| r.due_within_days = Some(10))
            .await
            .unwrap(),
        sorted(vec![two.clone(), ten.clone()])
    );
    assert!(
        list(&e, &g, |r| r.overdue_only = true)
            .await
            .unwrap()
            .is_empty()
    );

    // Monday 02/15 at 23:59: the first is due today, none overdue.
    clock.set(tehran(2025, 5, 5, 23, 59));
    assert_eq!(
        list(&e, &g, |r| r.due_within_days = Some(0)).await.unwrap(),
        vec![two.clone()]
    );
    assert!(
        list(&e, &g, |r| r.overdue_only = true)
            .await
            .unwrap()
            .is_empty()
    );

    // Tuesday 02/16 at 00:00: passed, overdue, no longer "due within".
    clock.set(tehran(2025, 5, 6, 0, 0));
    assert_eq!(
        list(&e, &g, |r| r.overdue_only = true).await.unwrap(),
        vec![two.clone()]
    );
    assert_eq!(
        list(&e, &g, |r| r.due_within_days = Some(7)).await.unwrap(),
        vec![ten.clone()]
    );
    let r =
        e.wg.clone()
            .get_resolution(e.sec(pb::GetResolutionRequest { name: two.clone() }))
            .await
            .unwrap()
            .into_inner()
            .resolution
            .unwrap();
    assert!(r.overdue);

    // Done, it is neither due nor overdue.
    e.wg.clone()
        .report_resolution_progress(e.sec(pb::ReportResolutionProgressRequest {
            name: two.clone(),
            etag: String::new(),
            progress: 100,
            note: "انجام شد".into(),
        }))
        .await
        .unwrap();
    assert!(
        list(&e, &g, |r| r.overdue_only = true)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        list(&e, &g, |r| r.due_within_days = Some(3660))
            .await
            .unwrap(),
        sorted(vec![ten, month])
    );

    // The filter's bounds name the field.
    for bad in [-1, 3661] {
        let err = list(&e, &g, |r| r.due_within_days = Some(bad))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(fields(&err), vec!["due_within_days".to_owned()]);
    }
}

pub(super) fn ardabil() -> Province {
    Province::new("اردبیل").unwrap()
}

pub(super) fn closure(scope: Scope, y: i32, m: u8, d: u8) -> Publication {
    Publication::Closure(Closure {
        scope,
        first_day: SolarDate::new(y, m, d).unwrap(),
        last_day: SolarDate::new(y, m, d).unwrap(),
        reason: "گرد و غبار شدید".into(),
        published_by: "دادگستری کل استان اردبیل".into(),
        published_at: tehran(2025, 5, 4, 7, 0),
    })
}

async fn a_closure_published_late_moves_an_open_deadline_once(b: Backend) {
    let clock = Clock::manual(tehran(2025, 5, 3, 9, 0));
    let calendar = SharedCalendar::shipped();
    let e = env_clocked(b, clock.clone(), calendar.clone()).await;
    let app = &e.services.2.meetings;
    let (g, members) = small_group(&e).await;
    let m = meeting_in_session(&e, &g, &members, tehran(2025, 5, 3, 10, 0)).await;
    // Both end on Saturday 1404/02/20; the second is done before the closure comes.
    let open = resolution(&e, &m.name, &members, |r| r.deadline_days = 6)
        .await
        .unwrap();
    let done = resolution(&e, &m.name, &members, |r| r.deadline_days = 7)
        .await
        .unwrap();
    assert_eq!(last_day(&done), "1404/02/20");
    e.wg.clone()
        .report_resolution_progress(e.sec(pb::ReportResolutionProgressRequest {
            name: done.name.clone(),
            etag: String::new(),
            progress: 100,
            note: String::new(),
        }))
        .await
        .unwrap();
    let key = format!("{}/deadline", open.name);
    let db = e.meeting_db().await;
    let before = mosharekat_notify::reminders::reminders_of(db.conn(), &key)
        .await
        .unwrap();
    // 7 days before had come when it was set; 1 day before and passed are kept.
    assert_eq!(before.len(), 2, "{before:?}");

    // Another province's closure, and a holiday on a day no deadline ends, move nothing.
    let elsewhere = closure(
        Scope::Province(Province::new("تهران").unwrap()),
        1404,
        2,
        20,
    );
    assert!(app.apply_publication(&elsewhere).await.unwrap().is_empty());
    let other_day = Publication::Holiday(Holiday {
        date: SolarDate::new(1404, 2, 22).unwrap(),
        name: "تعطیلی آزمون".into(),
        kind: HolidayKind::Solar,
        hijri: None,
        provisional: false,
    });
    assert!(app.apply_publication(&other_day).await.unwrap().is_empty());

    // Ardabil closed on Saturday 02/20, published on 02/14: Sunday 02/21.
    let closed = closure(Scope::Province(ardabil()), 1404, 2, 20);
    clock.set(tehran(2025, 5, 4, 10, 0));
    let moved = app.apply_publication(&closed).await.unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].to_string(), open.name);
    // The calendar holds it once.
    assert_eq!(calendar.read(|c| c.closures().len()), 2);

    let get = |name: String| {
        let mut wg = e.wg.clone();
        let req = e.sec(pb::GetResolutionRequest { name });
        async move {
            wg.get_resolution(req)
                .await
                .unwrap()
                .into_inner()
                .resolution
                .unwrap()
        }
    };
    let after = get(open.name.clone()).await;
    let d = after.legal_deadline.clone().unwrap();
    assert_eq!(d.last_day, "1404/02/21");
    assert_eq!(after.deadline, Some(end_of(1404, 2, 21)));
    let late: Vec<_> = d.moves.iter().filter(|m| m.late).collect();
    assert_eq!(late.len(), 1);
    assert_eq!(
        (late[0].from_last_day.as_str(), late[0].to_last_day.as_str()),
        ("1404/02/20", "1404/02/21")
    );
    assert!(
        late[0].reason.contains("گرد و غبار شدید"),
        "{}",
        late[0].reason
    );
    // The follow-up says why.
    let note = after.notes.last().unwrap();
    assert_eq!(note.reported_by, mosharekat_meeting::app::CALENDAR_REPORTER);
    assert!(note.note.contains("منتقل شد"), "{}", note.note);
    assert_eq!(note.time, Some(pbts(tehran(2025, 5, 4, 10, 0))));
    // The done one keeps its deadline.
    assert_eq!(last_day(&get(done.name.clone()).await), "1404/02/20");

    // The responsible member is told, and the reminders moved with the deadline.
    let told: Vec<_> = notifications(&e, &open.name)
        .await
        .into_iter()
        .filter(|n| n.text.contains("منتقل شد"))
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(
        told[0].recipient_id,
        members[0].name.rsplit('/').next().unwrap()
    );
    assert!(
        told[0].text.contains("۲۱ اردیبهشت ۱۴۰۴"),
        "{}",
        told[0].text
    );
    let rescheduled = mosharekat_notify::reminders::reminders_of(db.conn(), &key)
        .await
        .unwrap();
    let due = SolarDate::new(1404, 2, 21)
        .unwrap()
        .end_instant()
        .timestamp_micros();
    assert_eq!(rescheduled.len(), before.len());
    for r in rescheduled.iter().filter(|r| r.state == "PENDING") {
        assert_eq!(r.due_us, due, "{r:?}");
    }

    // Twice is once: nothing moves, nothing more is written or told.
    let audit_before = audit_count(&db).await;
    assert!(app.apply_publication(&closed).await.unwrap().is_empty());
    assert_eq!(get(open.name.clone()).await, after);
    assert_eq!(notifications(&e, &open.name).await.len(), told.len() + 1);
    assert_eq!(audit_count(&db).await, audit_before);
    assert_eq!(calendar.read(|c| c.closures().len()), 2);
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

pub(super) async fn audit_count(db: &Db) -> i64 {
    use sea_orm::ConnectionTrait as _;
    db.conn()
        .query_one_raw(db.stmt("SELECT COUNT(*) AS n FROM audit_log", []))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap()
}

/// The previous release's resolutions (no rule applied on them) keep their deadline as it
/// was stored, even when a holiday is published on its day, and still list by it.
async fn records_from_before_keep_their_stored_deadline(b: Backend) {
    use sea_orm::ConnectionTrait as _;
    let e = env_with(b, super::fixtures::load_fixture(b).await).await;
    let db = e.meeting_db().await;
    let rows = db
        .conn()
        .query_all_raw(db.stmt(
            "SELECT id, working_group_id, deadline_us FROM resolutions \
             WHERE state IN (2, 3) AND deadline_us IS NOT NULL ORDER BY id",
            [],
        ))
        .await
        .unwrap();
    assert!(
        !rows.is_empty(),
        "the fixture has open resolutions with deadlines"
    );
    let app = &e.services.2.meetings;
    for row in rows {
        let id: String = row.try_get("", "id").unwrap();
        let group: String = row.try_get("", "working_group_id").unwrap();
        let due: i64 = row.try_get("", "deadline_us").unwrap();
        let name = format!("working-groups/{group}/resolutions/{id}");
        let get = || {
            let mut wg = e.wg.clone();
            let req = e.sec(pb::GetResolutionRequest { name: name.clone() });
            async move {
                wg.get_resolution(req)
                    .await
                    .unwrap()
                    .into_inner()
                    .resolution
                    .unwrap()
            }
        };
        let before = get().await;
        assert_eq!(before.legal_deadline, None);
        let day = SolarDate::from_instant(DateTime::from_timestamp_micros(due).unwrap()).unwrap();
        let holiday = Publication::Holiday(Holiday {
            date: day,
            name: "تعطیلی آزمون".into(),
            kind: HolidayKind::Solar,
            hijri: None,
            provisional: false,
        });
        assert!(app.apply_publication(&holiday).await.unwrap().is_empty());
        assert_eq!(get().await, before);
        let listed = list(
            &e,
            &pb::WorkingGroup {
                name: format!("working-groups/{group}"),
                ..Default::default()
            },
            |r| r.due_within_days = Some(3660),
        )
        .await
        .unwrap();
        // Far off or passed: never "due within" ten years of today, listed by the stored time.
        let within = SolarDate::from_instant(Utc::now())
            .unwrap()
            .add_days(3660)
            .end_instant()
            .timestamp_micros();
        assert_eq!(
            listed.contains(&name),
            due >= Utc::now().timestamp_micros() && due <= within,
            "{name}"
        );
    }
}

/// The same move, the closure published on the registry by an administrator: the meeting
/// service's calendar follower hands it to `apply_publication`.
async fn a_closure_published_on_the_registry_moves_a_resolution_deadline(b: Backend) {
    let clock = Clock::manual(tehran(2025, 5, 3, 9, 0));
    let e = env_clocked(b, clock, SharedCalendar::suite()).await;
    let (g, members) = small_group(&e).await;
    let m = meeting_in_session(&e, &g, &members, tehran(2025, 5, 3, 10, 0)).await;
    let open = resolution(&e, &m.name, &members, |r| r.deadline_days = 6)
        .await
        .unwrap();
    assert_eq!(last_day(&open), "1404/02/20");
    mosharekat_api::registry::v1::calendar_service_client::CalendarServiceClient::new(lazy(
        &e.services.0.uri(),
    ))
    .publish_closure(authed(
        e.keys.bearer(Role::Admin, None),
        reg::PublishClosureRequest {
            request_id: "closure-follow-meeting".into(),
            province: "اردبیل".into(),
            nationwide: false,
            first_day: "1404/02/20".into(),
            last_day: "1404/02/20".into(),
            reason: "گرد و غبار شدید".into(),
        },
    ))
    .await
    .unwrap();
    // The follower runs beside the server: wait (bounded) for it to have moved it.
    let limit = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let r =
            e.wg.clone()
                .get_resolution(e.sec(pb::GetResolutionRequest {
                    name: open.name.clone(),
                }))
                .await
                .unwrap()
                .into_inner()
                .resolution
                .unwrap();
        if last_day(&r) != "1404/02/20" {
            break r;
        }
        assert!(Instant::now() < limit, "the deadline did not move");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(last_day(&after), "1404/02/21");
    assert_eq!(after.deadline, Some(end_of(1404, 2, 21)));
    let d = after.legal_deadline.clone().unwrap();
    let late: Vec<_> = d.moves.iter().filter(|m| m.late).collect();
    assert_eq!(late.len(), 1);
    assert!(
        late[0].reason.contains("گرد و غبار شدید"),
        "{}",
        late[0].reason
    );
    let note = after.notes.last().unwrap();
    assert_eq!(note.reported_by, mosharekat_meeting::app::CALENDAR_REPORTER);
    assert!(note.note.contains("منتقل شد"), "{}", note.note);
    let told: Vec<_> = notifications(&e, &open.name)
        .await
        .into_iter()
        .filter(|n| n.text.contains("منتقل شد"))
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
}
