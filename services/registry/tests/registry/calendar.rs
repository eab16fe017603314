//! The legal calendar the registry owns: publishing, confirming and listing it, its change
//! stream, the licence expiries it counts and moves, the notices and reminders of
//! licences, and the follower the other services run.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use mosharekat_api::registry::v1::calendar_service_client::CalendarServiceClient;
use mosharekat_calendar::{
    Calendar, Closure, Province, Publication, Scope, SharedCalendar, SolarDate,
};
use sea_orm::{ConnectionTrait, Statement};
use tonic::Status;

use super::*;

on_both_databases!(
    publish_list_confirm_and_refuse,
    the_change_stream_resumes_from_a_sequence,
    a_late_closure_moves_an_open_expiry,
    notices_are_written_with_the_change_or_not_at_all,
    expiry_reminders_fire_when_the_clock_reaches_them,
    the_follower_replays_handles_and_resumes,
    the_calendar_rpcs_against_every_role,
    licence_notices_are_e_mailed_through_a_real_smtp_server,
);

/// Wednesday 1405/09/11 (2026-12-02) 09:30 in Tehran: an open day, far from holidays.
fn start_instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 6, 0, 0).unwrap()
}

async fn app_at(b: Backend, clock: &Clock) -> App {
    let keys = TestKeys::new().unwrap();
    let db = TestDb::new(b).await.expect("a fresh database");
    let mut settings = RunningRegistry::settings(&db.url, &keys.public_key);
    settings.registry.clock = clock.clone();
    // The test fires reminders itself, at the instants it moves the clock to.
    settings.registry.reminder_interval = Duration::from_secs(3600).into();
    app_with(keys, db, settings).await
}

fn calendar(app: &App) -> CalendarServiceClient<Channel> {
    CalendarServiceClient::new(mosharekat_testkit::lazy(&app.reg.uri()))
}

fn holiday(date: &str, name: &str) -> pb::PublishHolidayRequest {
    pb::PublishHolidayRequest {
        request_id: String::new(),
        date: date.into(),
        name: name.into(),
        kind: pb::HolidayKind::Solar as i32,
        reason: "ابلاغیهٔ هیئت دولت".into(),
    }
}

fn closure(province: &str, first: &str, last: &str) -> pb::PublishClosureRequest {
    pb::PublishClosureRequest {
        request_id: String::new(),
        province: province.into(),
        nationwide: province.is_empty(),
        first_day: first.into(),
        last_day: last.into(),
        reason: "گرمای شدید".into(),
    }
}

async fn rows(app: &App, sql: &str) -> Vec<sea_orm::QueryResult> {
    let db = app.reg.registry.db();
    db.conn()
        .query_all_raw(Statement::from_string(
            db.conn().get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
}

/// (template, channel) of every notification, in order.
async fn notices(app: &App) -> Vec<(String, String)> {
    rows(
        app,
        "SELECT template, channel FROM notification ORDER BY seq",
    )
    .await
    .iter()
    .map(|r| {
        (
            r.try_get::<String>("", "template").unwrap(),
            r.try_get::<String>("", "channel").unwrap(),
        )
    })
    .collect()
}

async fn publish_list_confirm_and_refuse(b: Backend) {
    let app = app(b).await;
    let mut c = calendar(&app);
    let mut req = holiday("1405/05/20", "تعطیلی آزمون");
    req.request_id = "hol-1".into();
    let first = c
        .publish_holiday(app.admin(req.clone()))
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(first.sequence, 1);
    assert_eq!(first.kind, pb::CalendarChangeKind::HolidayPublished as i32);
    // A retry answers as the first time and publishes nothing more.
    let again = c
        .publish_holiday(app.admin(req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.change.unwrap(), first);
    let dup = c
        .publish_holiday(app.admin(holiday("1405/05/20", "تعطیلی آزمون")))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);

    let listed = c
        .list_holidays(app.as_role(Role::Institution, pb::ListHolidaysRequest { year: 1405 }))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.official_list_known);
    let ours = listed
        .holidays
        .iter()
        .find(|h| h.name == "تعطیلی آزمون")
        .expect("the published holiday is listed");
    assert_eq!(ours.origin, pb::HolidayOrigin::Published as i32);
    assert_eq!(ours.reason, "ابلاغیهٔ هیئت دولت");
    assert!(!ours.published_by.is_empty() && ours.publish_time.is_some());
    let nowruz = listed
        .holidays
        .iter()
        .find(|h| h.date == "1405/01/01")
        .unwrap();
    assert_eq!(nowruz.origin, pb::HolidayOrigin::Shipped as i32);
    assert!(nowruz.published_by.contains("تقویم رسمی"));

    // A year after the shipped ones: computed, its lunar holidays provisional.
    let later = c
        .list_holidays(app.admin(pb::ListHolidaysRequest { year: 1407 }))
        .await
        .unwrap()
        .into_inner();
    assert!(!later.official_list_known);
    let provisional: Vec<_> = later.holidays.iter().filter(|h| h.provisional).collect();
    assert!(provisional.len() >= 17, "{}", provisional.len());
    assert!(
        later
            .holidays
            .iter()
            .all(|h| h.origin == pb::HolidayOrigin::Computed as i32)
    );
    let (a, b2) = (provisional[0].clone(), provisional[1].clone());
    let confirmed = c
        .confirm_holiday(app.admin(pb::ConfirmHolidayRequest {
            date: a.date.clone(),
            name: a.name.clone(),
            corrected_date: String::new(),
            reason: "اعلام مرکز تقویم".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(
        confirmed.kind,
        pb::CalendarChangeKind::HolidayConfirmed as i32
    );
    let twice = c
        .confirm_holiday(app.admin(pb::ConfirmHolidayRequest {
            date: a.date.clone(),
            name: a.name.clone(),
            corrected_date: String::new(),
            reason: "دوباره".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (twice.code(), reason(&twice).as_str()),
        (Code::FailedPrecondition, "HOLIDAY_NOT_PROVISIONAL")
    );
    // Corrected: a day earlier, as the announcement says.
    let earlier = b2
        .date
        .parse::<SolarDate>()
        .unwrap()
        .add_days(-1)
        .to_string();
    let corrected = c
        .confirm_holiday(app.admin(pb::ConfirmHolidayRequest {
            date: b2.date.clone(),
            name: b2.name.clone(),
            corrected_date: earlier.clone(),
            reason: "رؤیت هلال".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(corrected.corrected_from, b2.date);
    let later = c
        .list_holidays(app.admin(pb::ListHolidaysRequest { year: 1407 }))
        .await
        .unwrap()
        .into_inner();
    let find = |date: &str, name: &str| {
        later
            .holidays
            .iter()
            .find(|h| h.date == date && h.name == name)
            .cloned()
    };
    let a2 = find(&a.date, &a.name).unwrap();
    assert!(!a2.provisional);
    assert_eq!(a2.origin, pb::HolidayOrigin::Published as i32);
    assert!(find(&b2.date, &b2.name).is_none());
    assert!(!find(&earlier, &b2.name).unwrap().provisional);

    // Closures: one province, nationwide, listed with who and when.
    c.publish_closure(app.admin(closure("اردبیل", "1405/10/01", "1405/10/02")))
        .await
        .unwrap();
    c.publish_closure(app.admin(closure("", "1405/10/05", "1405/10/05")))
        .await
        .unwrap();
    c.publish_closure(app.admin(closure("تهران", "1405/10/07", "1405/10/07")))
        .await
        .unwrap();
    let ardabil = c
        .list_closures(app.as_role(
            Role::Member,
            pb::ListClosuresRequest {
                province: "اردبيل".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .closures;
    assert_eq!(ardabil.len(), 2, "{ardabil:?}");
    assert!(ardabil[1].nationwide);
    assert!(
        ardabil
            .iter()
            .all(|c| !c.published_by.is_empty() && c.publish_time.is_some())
    );
    let all = c
        .list_closures(app.admin(pb::ListClosuresRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .closures;
    assert_eq!(all.len(), 3);

    // Refused, each naming its field; nothing published by any of them.
    let before = c
        .list_calendar_changes(app.admin(pb::ListCalendarChangesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .changes
        .len();
    let bad: Vec<(Status, &str)> = vec![
        (
            c.publish_holiday(app.admin(holiday("1404/12/30", "روز")))
                .await
                .unwrap_err(),
            "date",
        ),
        (
            c.publish_holiday(app.admin(holiday("دیروز", "روز")))
                .await
                .unwrap_err(),
            "date",
        ),
        (
            c.publish_holiday(app.admin(holiday("1405/05/21", "  ")))
                .await
                .unwrap_err(),
            "name",
        ),
        (
            c.publish_holiday(app.admin(pb::PublishHolidayRequest {
                kind: 0,
                ..holiday("1405/05/21", "روز")
            }))
            .await
            .unwrap_err(),
            "kind",
        ),
        (
            c.publish_holiday(app.admin(pb::PublishHolidayRequest {
                reason: String::new(),
                ..holiday("1405/05/21", "روز")
            }))
            .await
            .unwrap_err(),
            "reason",
        ),
        (
            c.publish_closure(app.admin(closure("اردبیل", "1405/10/03", "1405/10/01")))
                .await
                .unwrap_err(),
            "last_day",
        ),
        (
            c.publish_closure(app.admin(closure("اردبیل", "1405/01/01", "1407/01/01")))
                .await
                .unwrap_err(),
            "last_day",
        ),
        (
            c.publish_closure(app.admin(pb::PublishClosureRequest {
                nationwide: true,
                ..closure("اردبیل", "1405/10/01", "1405/10/01")
            }))
            .await
            .unwrap_err(),
            "province",
        ),
        (
            c.publish_closure(app.admin(closure("اردبیل", "1405/13/01", "1405/10/01")))
                .await
                .unwrap_err(),
            "first_day",
        ),
        (
            c.confirm_holiday(app.admin(pb::ConfirmHolidayRequest {
                date: "1405/01/01".into(),
                name: "آغاز نوروز".into(),
                corrected_date: "1405/02/31x".into(),
                reason: "x".into(),
            }))
            .await
            .unwrap_err(),
            "corrected_date",
        ),
        (
            c.list_holidays(app.admin(pb::ListHolidaysRequest { year: 99 }))
                .await
                .unwrap_err(),
            "year",
        ),
        (
            c.list_calendar_changes(app.admin(pb::ListCalendarChangesRequest {
                after_sequence: -1,
                page_size: 0,
            }))
            .await
            .unwrap_err(),
            "after_sequence",
        ),
    ];
    for (e, field) in &bad {
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert_eq!(fields(e), [*field], "{e:?}");
    }
    let missing = c
        .confirm_holiday(app.admin(pb::ConfirmHolidayRequest {
            date: "1405/05/22".into(),
            name: "نبوده".into(),
            corrected_date: String::new(),
            reason: "x".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    for role in [Role::RegistryOfficer, Role::Institution, Role::Service] {
        let e = c
            .publish_holiday(app.as_role(role, holiday("1405/05/23", "روز دیگر")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{role}");
        let e = c
            .publish_closure(app.as_role(role, closure("", "1405/10/09", "1405/10/09")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{role}");
    }
    let after = c
        .list_calendar_changes(app.admin(pb::ListCalendarChangesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .changes;
    assert_eq!(after.len(), before);
    assert_eq!(
        after.iter().map(|c| c.sequence).collect::<Vec<_>>(),
        (1..=before as i64).collect::<Vec<_>>()
    );
}

async fn watched(app: &App, after: i64, n: usize) -> Vec<i64> {
    let mut s = calendar(app)
        .watch_calendar_changes(app.as_role(
            Role::Service,
            pb::WatchCalendarChangesRequest {
                after_sequence: after,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .expect("a change in time");
        out.push(m.unwrap().unwrap().change.unwrap().sequence);
    }
    // Nothing more than asked for is pending.
    assert!(
        tokio::time::timeout(Duration::from_millis(1200), s.next())
            .await
            .is_err()
    );
    out
}

async fn the_change_stream_resumes_from_a_sequence(b: Backend) {
    let app = app(b).await;
    let mut c = calendar(&app);
    for d in ["1405/10/01", "1405/10/02", "1405/10/03"] {
        c.publish_closure(app.admin(closure("اردبیل", d, d)))
            .await
            .unwrap();
    }
    assert_eq!(watched(&app, 0, 3).await, [1, 2, 3]);
    assert_eq!(watched(&app, 2, 1).await, [3]);
    // Live: a stream from 3 gets the 4th as it is published, once.
    let mut s = c
        .watch_calendar_changes(app.as_role(
            Role::Institution,
            pb::WatchCalendarChangesRequest { after_sequence: 3 },
        ))
        .await
        .unwrap()
        .into_inner();
    c.publish_holiday(app.admin(holiday("1405/11/01", "روز آزمون")))
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m.change.unwrap().sequence, 4);
    // Pages: two at a time, then the last.
    let p1 = c
        .list_calendar_changes(app.admin(pb::ListCalendarChangesRequest {
            after_sequence: 0,
            page_size: 2,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        p1.changes.iter().map(|c| c.sequence).collect::<Vec<_>>(),
        [1, 2]
    );
    let p2 = c
        .list_calendar_changes(app.admin(pb::ListCalendarChangesRequest {
            after_sequence: p1.next_after_sequence,
            page_size: 2,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        p2.changes.iter().map(|c| c.sequence).collect::<Vec<_>>(),
        [3, 4]
    );
    assert_eq!(p2.next_after_sequence, 0);
    let e = c
        .watch_calendar_changes(app.admin(pb::WatchCalendarChangesRequest { after_sequence: -5 }))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["after_sequence"]);
}

/// A licence applied for and approved at the test's clock, valid until `until`.
async fn approved_until(app: &App, n: u32, until: DateTime<Utc>) -> (pb::Institution, pb::Licence) {
    let inst = app.create(n).await;
    let l = app.apply(&inst, until.timestamp()).await;
    (inst.clone(), app.approve(&l).await)
}

fn ardabil() -> Province {
    Province::new("اردبیل").unwrap()
}

async fn a_late_closure_moves_an_open_expiry(b: Backend) {
    let clock = Clock::manual(start_instant());
    let app = app_at(b, &clock).await;
    // An end 40 days on, on an open day (checked against the shipped calendar).
    let shipped = Calendar::shipped();
    let mut until = start_instant() + chrono::Duration::days(40);
    while !shipped.is_open(&ardabil(), SolarDate::from_instant(until).unwrap()) {
        until += chrono::Duration::days(1);
    }
    let last_day = SolarDate::from_instant(until).unwrap();
    let (_inst, l) = approved_until(&app, 31, until).await;
    let expiry = l
        .expiry
        .clone()
        .expect("the expiry is counted when approved");
    assert_eq!(expiry.last_day, last_day.to_string());
    assert!(expiry.moves.is_empty(), "{expiry:?}");
    assert_eq!(
        expiry.time, l.valid_until,
        "valid_until is the expiry's end"
    );
    assert_eq!(l.valid_until.as_ref().unwrap().seconds, until.timestamp());
    let key = format!("{}/expiry", l.name);
    let before = mosharekat_notify::reminders::reminders_of(app.reg.registry.db().conn(), &key)
        .await
        .unwrap();
    assert!(!before.is_empty());

    let mut c = calendar(&app);
    // Elsewhere: nothing moves.
    c.publish_closure(app.admin(closure(
        "تهران",
        &last_day.to_string(),
        &last_day.to_string(),
    )))
    .await
    .unwrap();
    let same = app
        .client
        .clone()
        .get_licence(app.admin(pb::GetLicenceRequest {
            name: l.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    assert_eq!(same.valid_until, l.valid_until);

    // Its province closed on its last day, published late: it ends on the next open day.
    c.publish_closure(app.admin(closure(
        "اردبیل",
        &last_day.to_string(),
        &last_day.to_string(),
    )))
    .await
    .unwrap();
    let mut expected = shipped.clone();
    expected
        .add_closure(Closure {
            scope: Scope::Province(ardabil()),
            first_day: last_day,
            last_day,
            reason: "x".into(),
            published_by: "x".into(),
            published_at: start_instant(),
        })
        .unwrap();
    let to = expected.next_open_day(&ardabil(), last_day).unwrap();
    assert!(to > last_day);
    let moved = app
        .client
        .clone()
        .get_licence(app.admin(pb::GetLicenceRequest {
            name: l.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    let e = moved.expiry.clone().unwrap();
    assert_eq!(e.last_day, to.to_string());
    assert!(
        e.moves.iter().any(|m| m.late) && e.explanation.contains("منتقل شد"),
        "{e:?}"
    );
    assert_eq!(
        moved.valid_until.as_ref().unwrap().seconds,
        to.end_instant().timestamp()
    );
    let entry = moved.history.last().unwrap();
    assert!(entry.reason.contains("گرمای شدید"), "{entry:?}");
    assert_eq!(moved.state, pb::LicenceState::Active as i32);
    // The institution is told (SMS and e-mail), and the reminders moved with it.
    let n = notices(&app).await;
    assert_eq!(
        n.iter()
            .filter(|(t, _)| t == "DEADLINE_MOVED:LICENCE_EXPIRY")
            .count(),
        2,
        "{n:?}"
    );
    let after = mosharekat_notify::reminders::reminders_of(app.reg.registry.db().conn(), &key)
        .await
        .unwrap();
    assert_eq!(after.len(), before.len());
    assert!(
        after
            .iter()
            .all(|r| r.due_us == to.end_instant().timestamp_micros() && r.state == "PENDING")
    );
    // The event stream carries the move, for the services that follow licences.
    let evs = events(&app, 0, 3).await;
    assert_eq!(evs[2].kind, pb::LicenceEventKind::ExpiryMoved as i32);
    // The calendar holds it: a licence approved now to end that day ends the day after.
    let (_, l2) = approved_until(&app, 32, until).await;
    assert_eq!(l2.expiry.unwrap().last_day, to.to_string());
    // Listed as ending within the days left, and not as expired.
    let days = SolarDate::from_instant(start_instant())
        .unwrap()
        .days_until(to) as i32;
    let list = |within: Option<i32>, expired: bool| {
        let app = &app;
        async move {
            app.client
                .clone()
                .list_licences(app.admin(pb::ListLicencesRequest {
                    parent: "institutions/-".into(),
                    expires_within_days: within,
                    expired,
                    ..Default::default()
                }))
                .await
                .unwrap()
                .into_inner()
                .licences
                .len()
        }
    };
    assert_eq!(list(Some(days), false).await, 2);
    assert_eq!(list(Some(days - 1), false).await, 0);
    assert_eq!(list(None, true).await, 0);
    clock.set(to.end_instant() + chrono::Duration::seconds(1));
    assert_eq!(list(None, true).await, 2);
    assert_eq!(list(Some(3000), false).await, 0);
    let e = app
        .client
        .clone()
        .list_licences(app.admin(pb::ListLicencesRequest {
            parent: "institutions/-".into(),
            expires_within_days: Some(-1),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["expires_within_days"]);
}

async fn notices_are_written_with_the_change_or_not_at_all(b: Backend) {
    let clock = Clock::manual(start_instant());
    let app = app_at(b, &clock).await;
    let until = start_instant() + chrono::Duration::days(100);
    // An approval that fails at its last step (the audit record, refused by a trigger the
    // test installs) rolls back whole: no notice, no reminder, the licence still pending.
    let inst = app.create(41).await;
    let pending = app.apply(&inst, until.timestamp()).await;
    let db = app.reg.registry.db();
    let exec = |sql: &str| {
        let sql = sql.to_owned();
        async move { db.conn().execute_unprepared(&sql).await.unwrap() }
    };
    let sqlite = db.conn().get_database_backend() == sea_orm::DatabaseBackend::Sqlite;
    if sqlite {
        exec("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'refused by the test'); END").await;
    } else {
        exec("CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql").await;
        exec("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()").await;
    }
    let failed = app
        .client
        .clone()
        .approve_licence(app.admin(pb::ApproveLicenceRequest {
            name: pending.name.clone(),
            ..Default::default()
        }))
        .await;
    assert!(failed.is_err(), "{failed:?}");
    if sqlite {
        exec("DROP TRIGGER refuse_audit").await;
    } else {
        exec("DROP TRIGGER refuse_audit ON audit_log").await;
    }
    assert!(notices(&app).await.is_empty());
    let key = format!("{}/expiry", pending.name);
    assert!(
        mosharekat_notify::reminders::reminders_of(db.conn(), &key)
            .await
            .unwrap()
            .is_empty()
    );
    let l = app.approve(&pending).await;
    assert_eq!(
        notices(&app).await,
        [
            ("LICENCE_APPROVED".to_string(), "SMS".to_string()),
            ("LICENCE_APPROVED".to_string(), "EMAIL".to_string())
        ]
    );
    let r = rows(
        &app,
        "SELECT body, address, recipient_name FROM notification ORDER BY seq",
    )
    .await;
    let sms: String = r[0].try_get("", "body").unwrap();
    assert!(sms.contains("پروانه") && sms.contains("صادر شد"), "{sms}");
    // The name has no digit: an SMS carries no number but its reference.
    let name: String = r[0].try_get("", "recipient_name").unwrap();
    assert!(!name.chars().any(char::is_numeric), "{name}");
    assert_eq!(r[1].try_get::<String>("", "address").unwrap(), inst.email);
    let mut c = app.client.clone();
    c.suspend_licence(app.admin(pb::SuspendLicenceRequest {
        name: l.name.clone(),
        reason: "بازرسی".into(),
        ..Default::default()
    }))
    .await
    .unwrap();
    c.reinstate_licence(app.admin(pb::ReinstateLicenceRequest {
        name: l.name.clone(),
        ..Default::default()
    }))
    .await
    .unwrap();
    // A refused change notifies nobody: a stale etag.
    let stale = c
        .revoke_licence(app.admin(pb::RevokeLicenceRequest {
            name: l.name.clone(),
            etag: "1".into(),
            reason: "تخلف".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    c.revoke_licence(app.admin(pb::RevokeLicenceRequest {
        name: l.name.clone(),
        reason: "تخلف".into(),
        ..Default::default()
    }))
    .await
    .unwrap();
    let kinds: Vec<String> = notices(&app)
        .await
        .into_iter()
        .filter(|(_, ch)| ch == "SMS")
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        kinds,
        [
            "LICENCE_APPROVED",
            "LICENCE_SUSPENDED",
            "LICENCE_REINSTATED",
            "LICENCE_REVOKED"
        ]
    );
    // Revoked: its reminders are cancelled.
    let key = format!("{}/expiry", l.name);
    let rs = mosharekat_notify::reminders::reminders_of(app.reg.registry.db().conn(), &key)
        .await
        .unwrap();
    assert!(
        !rs.is_empty() && rs.iter().all(|r| r.state == "CANCELLED"),
        "{rs:?}"
    );

    // A gateway follows the registry's queued SMS, from a sequence.
    let mut gw =
        mosharekat_api::common::v1::notification_service_client::NotificationServiceClient::new(
            mosharekat_testkit::lazy(&app.reg.uri()),
        );
    let mut s = gw
        .stream_notifications(app.as_role(
            Role::Service,
            common::StreamNotificationsRequest {
                after_sequence: 0,
                channel: common::NotificationChannel::Sms as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut texts = Vec::new();
    while texts.len() < 4 {
        let m = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .expect("a notification in time")
            .unwrap()
            .unwrap();
        texts.push(m.notification.unwrap().text);
    }
    assert!(texts[3].contains("لغو شد"), "{texts:?}");

    // A change that rolls back after its notice was written leaves no notice: the notice
    // is in the change's transaction.
    let count = notices(&app).await.len();
    let inst_v = mosharekat_registry::store::get_institution(
        db.conn(),
        &mosharekat_registry::names::InstitutionId::parse(
            inst.name.trim_start_matches("institutions/"),
        )
        .unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let lic_name: mosharekat_registry::names::LicenceName =
        mosharekat_registry::names::parse(&l.name, "name").unwrap();
    for commit in [false, true] {
        let txn = db.begin_write().await.unwrap();
        mosharekat_registry::app::notices::notify(
            &txn,
            &inst_v.value,
            &lic_name,
            mosharekat_notify::Template::LicenceSuspended,
            vec![],
            "",
        )
        .await
        .unwrap();
        if commit {
            txn.commit().await.unwrap();
        } else {
            drop(txn);
        }
    }
    assert_eq!(notices(&app).await.len(), count + 2);

    // Dissolving an institution revokes its licence: it is told so, its reminders end.
    let (inst2, l2) = approved_until(&app, 42, until).await;
    let revoked =
        |n: Vec<(String, String)>| n.iter().filter(|(t, _)| t == "LICENCE_REVOKED").count();
    let before = revoked(notices(&app).await);
    c.dissolve_institution(app.admin(pb::DissolveInstitutionRequest {
        name: inst2.name.clone(),
        reason: "انحلال".into(),
        ..Default::default()
    }))
    .await
    .unwrap();
    assert_eq!(revoked(notices(&app).await), before + 2);
    let key = format!("{}/expiry", l2.name);
    let rs = mosharekat_notify::reminders::reminders_of(db.conn(), &key)
        .await
        .unwrap();
    assert!(
        !rs.is_empty() && rs.iter().all(|r| r.state == "CANCELLED"),
        "{rs:?}"
    );
}

async fn expiry_reminders_fire_when_the_clock_reaches_them(b: Backend) {
    let clock = Clock::manual(start_instant());
    let app = app_at(b, &clock).await;
    let until = start_instant() + chrono::Duration::days(45);
    let (_inst, l) = approved_until(&app, 51, until).await;
    let last_day: SolarDate = l.expiry.unwrap().last_day.parse().unwrap();
    let db = app.reg.registry.db().clone();
    let eight = chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap();
    let thirty = last_day.add_days(-30).at_tehran_time(eight);
    let seven = last_day.add_days(-7).at_tehran_time(eight);
    let fire = |at: DateTime<Utc>| {
        let db = db.clone();
        let clock = clock.clone();
        async move {
            clock.set(at);
            mosharekat_notify::reminders::fire_due(&db, at)
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(fire(thirty - chrono::Duration::seconds(1)).await, 0);
    // SMS and e-mail, once each.
    assert_eq!(fire(thirty).await, 2);
    assert_eq!(fire(thirty + chrono::Duration::hours(1)).await, 0);
    assert_eq!(fire(seven - chrono::Duration::microseconds(1)).await, 0);
    assert_eq!(fire(seven).await, 2);
    assert_eq!(fire(until).await, 0);
    let r = rows(
        &app,
        "SELECT template, body FROM notification WHERE template LIKE 'DEADLINE_APPROACHING%' ORDER BY seq",
    )
    .await;
    assert_eq!(r.len(), 4);
    let body: String = r[0].try_get("", "body").unwrap();
    assert!(
        body.contains("اعتبار") && body.contains(&last_day.to_persian_long()),
        "{body}"
    );
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Publication>>>);

impl Seen {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen in time");
}

struct PlatformTables;

impl sea_orm_migration::MigratorTrait for PlatformTables {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        use mosharekat_platform::migrations as m;
        vec![
            Box::new(m::m20261129_000001_platform::Migration),
            Box::new(m::m20261201_000001_idempotency_per_caller::Migration),
            Box::new(m::m20261201_000002_write_probe::Migration),
            Box::new(m::m20261202_000001_event_stalls::Migration),
        ]
    }
}

async fn the_follower_replays_handles_and_resumes(b: Backend) {
    use mosharekat_registry_client::calendar::{CALENDAR_STREAM, follow_calendar};
    let keys = TestKeys::new().unwrap();
    let reg_db = TestDb::new(b).await.unwrap();
    let settings = RunningRegistry::settings(&reg_db.url, &keys.public_key);
    let reg = RunningRegistry::start(settings.clone()).await.unwrap();
    let addr = reg.addr;
    let uri = reg.uri();
    let bearer = keys.bearer(Role::Admin, None);
    let mut c = CalendarServiceClient::new(mosharekat_testkit::lazy(&uri));
    c.publish_holiday(authed(bearer.clone(), holiday("1405/10/20", "یکم")))
        .await
        .unwrap();
    c.publish_closure(authed(
        bearer.clone(),
        closure("اردبیل", "1405/10/21", "1405/10/21"),
    ))
    .await
    .unwrap();

    // The caller's own database, having handled change 1 before it stopped.
    let caller = TestDb::new(b).await.unwrap();
    let cdb = mosharekat_platform::db::Db::connect(&caller.url, &Default::default())
        .await
        .unwrap();
    cdb.migrate::<PlatformTables>().await.unwrap();
    cdb.conn()
        .execute_unprepared(&format!(
            "INSERT INTO event_cursor (stream, last_sequence) VALUES ('{CALENDAR_STREAM}', 1)"
        ))
        .await
        .unwrap();
    let cal = SharedCalendar::suite();
    let seen = Seen::default();
    let fails = Arc::new(Mutex::new(1));
    let token = mosharekat_platform::client::ServiceToken::new(keys.signer.clone(), "referral");
    let follower = tokio::spawn(follow_calendar(
        mosharekat_testkit::lazy(&uri),
        token,
        cdb.clone(),
        cal.clone(),
        {
            let seen = seen.clone();
            let fails = fails.clone();
            move |p: Publication| {
                let seen = seen.clone();
                let fails = fails.clone();
                async move {
                    // The first try fails: it is retried, and the changes behind it wait.
                    let mut f = fails.lock().unwrap();
                    if *f > 0 {
                        *f -= 1;
                        return Err(mosharekat_platform::error::ApiError::internal(
                            anyhow::anyhow!("not yet"),
                        ));
                    }
                    seen.0.lock().unwrap().push(p);
                    Ok(())
                }
            }
        },
    ));
    let cursor = |db: mosharekat_platform::db::Db| async move {
        mosharekat_registry_client::events::cursor(db.conn(), CALENDAR_STREAM)
            .await
            .unwrap()
    };
    let d = |s: &str| s.parse::<SolarDate>().unwrap();
    // Both replayed into the calendar; only the one after the cursor handed over.
    eventually("the replay", || {
        cal.read(|c| !c.holidays_on(d("1405/10/20")).is_empty())
            && cal.read(|c| !c.is_open(&ardabil(), d("1405/10/21")))
            && seen.len() == 1
    })
    .await;
    assert!(matches!(
        &seen.0.lock().unwrap()[0],
        Publication::Closure(_)
    ));
    let mut n = 0;
    while cursor(cdb.clone()).await != 2 && n < 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        n += 1;
    }
    assert_eq!(cursor(cdb.clone()).await, 2);

    // The registry restarts on the same address; the follower resumes after it.
    reg.stop().await.unwrap();
    let mut restarted = None;
    for _ in 0..50 {
        let mut s = settings.clone();
        s.server.listen = Some(addr);
        match RunningRegistry::start(s).await {
            Ok(r) => {
                restarted = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let reg = restarted.expect("the registry restarts on its address");
    c.publish_holiday(authed(bearer.clone(), holiday("1405/10/22", "سوم")))
        .await
        .unwrap();
    eventually("the change after the restart", || seen.len() == 2).await;
    assert!(matches!(&seen.0.lock().unwrap()[1], Publication::Holiday(h) if h.name == "سوم"));
    let mut n = 0;
    while cursor(cdb.clone()).await != 3 && n < 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        n += 1;
    }
    assert_eq!(cursor(cdb.clone()).await, 3);
    // A confirmation closes no new day: folded in, nothing handed over, the cursor moves.
    // The follower's calendar started as the registry's did, computed years included.
    let provisional = cal.read(|c| {
        c.holidays()
            .find(|h| h.provisional && h.date.year() == 1407)
            .cloned()
            .expect("the computed years are in the follower's calendar")
    });
    c.confirm_holiday(authed(
        bearer.clone(),
        pb::ConfirmHolidayRequest {
            date: provisional.date.to_string(),
            name: provisional.name.clone(),
            corrected_date: String::new(),
            reason: "اعلام مرکز تقویم".into(),
        },
    ))
    .await
    .unwrap();
    let mut n = 0;
    while cursor(cdb.clone()).await != 4 && n < 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        n += 1;
    }
    assert_eq!(cursor(cdb.clone()).await, 4);
    assert!(cal.read(|c| {
        c.holidays_on(provisional.date)
            .iter()
            .any(|h| h.name == provisional.name && !h.provisional)
    }));
    // Nothing handed over twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.len(), 2);
    follower.abort();
    reg.stop().await.unwrap();
}

/// The calendar and notification services served beside the registry, every RPC × every
/// role, driven by the descriptors.
async fn the_calendar_rpcs_against_every_role(b: Backend) {
    use Role::*;
    let all: &[Role] = &Role::ALL;
    let table: &[mosharekat_testkit::Row] = &[
        ("PublishHoliday", &[Admin]),
        ("ConfirmHoliday", &[Admin]),
        ("PublishClosure", &[Admin]),
        ("ListHolidays", all),
        ("ListClosures", all),
        ("ListCalendarChanges", all),
        ("WatchCalendarChanges", all),
    ];
    let app = app(b).await;
    let own = app.create(61).await;
    // A change to stream: each role's watch then answers at once instead of waiting.
    calendar(&app)
        .publish_closure(app.admin(closure("", "1405/10/01", "1405/10/01")))
        .await
        .unwrap();
    let cells = mosharekat_testkit::every_rpc_against_every_role(
        mosharekat_testkit::lazy(&app.reg.uri()),
        &app.keys,
        own.name.trim_start_matches("institutions/"),
        &["mosharekat.registry.v1.CalendarService"],
        table,
    )
    .await;
    assert_eq!(cells, table.len() * Role::ALL.len());
}

/// A real SMTP server (aiosmtpd, as the notify crate's tests run it), killed when dropped.
struct Smtp {
    child: std::process::Child,
    folder: tempfile::TempDir,
}

impl Smtp {
    fn start(port: u16) -> Self {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let folder = tempfile::tempdir().unwrap();
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/notify/tests/smtp_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(folder.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the SMTP server (pip install aiosmtpd==1.4.6)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP server did not start: is aiosmtpd installed (pip install aiosmtpd==1.4.6)?"
        );
        Self { child, folder }
    }

    fn received(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<_> = std::fs::read_dir(self.folder.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn licence_notices_are_e_mailed_through_a_real_smtp_server(b: Backend) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let smtp = Smtp::start(port);
    let keys = TestKeys::new().unwrap();
    let db = TestDb::new(b).await.unwrap();
    let mut settings = RunningRegistry::settings(&db.url, &keys.public_key);
    settings.registry.smtp.host = Some("127.0.0.1".into());
    settings.registry.smtp.port = port;
    settings.registry.smtp.security = "plain".into();
    settings.registry.smtp.from = "notify@registry.example".into();
    // The delivery loop's round: how soon a queued e-mail is picked up.
    settings.registry.email_delivery_interval = Duration::from_millis(100).into();
    let app = app_with(keys, db, settings).await;
    let until = Utc::now() + chrono::Duration::days(90);
    let (inst, _l) = approved_until(&app, 71, until).await;
    eventually("the e-mail arrives", || !smtp.received().is_empty()).await;
    let got = smtp.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["rcpt_tos"], serde_json::json!([inst.email]));
    assert!(
        got[0]["subject"]
            .as_str()
            .unwrap()
            .starts_with("صدور پروانه"),
        "{}",
        got[0]["subject"]
    );
    // The e-mail may carry more than an SMS: the rule the end was counted by.
    let body = got[0]["body"].as_str().unwrap();
    assert!(body.contains("پایان مهلت"), "{body}");
    let mut delivered = false;
    for _ in 0..100 {
        let r = rows(
            &app,
            "SELECT state FROM notification WHERE channel = 'EMAIL'",
        )
        .await;
        if r[0].try_get::<String>("", "state").unwrap() == "DELIVERED" {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(delivered, "the e-mail is recorded as delivered");
}
