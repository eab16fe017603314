//! The minutes' hash: its form named, tampering shown, older forms still verified.

use super::*;

on_both_databases!(
    the_minutes_hash_names_its_form_and_shows_tampering,
    minutes_approved_before_the_canonical_form_still_verify,
);

/// Rewrites a stored meeting's record (its JSON, see `mosharekat_meeting::store`) behind
/// the service's back.
async fn rewrite_meeting(db: &Db, meeting: &str, f: impl FnOnce(&mut serde_json::Value)) {
    use sea_orm::ConnectionTrait as _;
    let id = row_id(meeting);
    let row = db
        .conn()
        .query_one_raw(db.stmt(
            "SELECT record FROM meetings WHERE id = $1",
            [id.clone().into()],
        ))
        .await
        .unwrap()
        .unwrap();
    let record: String = row.try_get("", "record").unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&record).unwrap();
    f(&mut m);
    db.conn()
        .execute_raw(db.stmt(
            "UPDATE meetings SET record = $1 WHERE id = $2",
            [m.to_string().into(), id.into()],
        ))
        .await
        .unwrap();
}

/// `m[key] += by` for an integer member.
fn bump(m: &mut serde_json::Value, by: i64) {
    *m = (m.as_i64().unwrap() + by).into();
}

/// Minutes approved now are hashed over the canonical form (version 2), say so in every
/// answer that carries the hash, and show any change made to the stored record, its form
/// downgraded included.
async fn the_minutes_hash_names_its_form_and_shows_tampering(b: Backend) {
    use pb::Position as P;
    use pb::Seat as S;
    let e = env(b).await;
    let g = e.group().await;
    let chair = e
        .seat(&g, 0, S::Chair, P::SocialPreventionDeputy, "")
        .await
        .unwrap();
    let official = e
        .seat(&g, 1, S::Official, P::ChiefInspector, "")
        .await
        .unwrap();
    e.seat(&g, 2, S::Official, P::ProsecutorDeputy, "")
        .await
        .unwrap();
    let m = e.schedule(&g, "جلسهٔ فوق‌العاده").await;
    e.attend(&m.name, &[&chair, &official]).await.unwrap();
    let started = e.start(&m.name).await;
    assert_eq!(started.minutes_hash_version, 0, "no hash before approval");
    e.resolve(&m.name, &[&chair, &official], &official.name)
        .await
        .unwrap();
    let closed = e.approve(&m.name, "گزارش دبیر").await;
    assert_eq!(closed.minutes_hash_version, 3);
    // The hash is of the canonical form of the minutes the API returns.
    assert_eq!(
        closed.content_sha256,
        MinutesContentV3::of(&closed).unwrap().sha256()
    );
    let v = e.verify(&m.name).await.unwrap();
    assert!(v.intact, "{v:?}");
    assert_eq!(v.minutes_hash_version, 3);
    assert_eq!(
        (&v.stored_sha256, &v.computed_sha256),
        (&closed.content_sha256, &closed.content_sha256)
    );
    assert_eq!(e.get(&m.name).await.minutes_hash_version, 3);
    let listed =
        e.wg.clone()
            .list_meetings(e.sec(pb::ListMeetingsRequest {
                parent: g.name.clone(),
                page_size: 10,
                page_token: String::new(),
            }))
            .await
            .unwrap()
            .into_inner()
            .meetings;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].minutes_hash_version, 3);
    let x = e.export(&m.name).await;
    assert_eq!(
        (x.minutes_hash_version, &x.content_sha256),
        (3, &closed.content_sha256)
    );
    assert!(
        x.html.contains(&format!(
            "<span data-latin>SHA-256</span> (v۳): <code data-latin>{}</code>",
            closed.content_sha256
        )),
        "{}",
        x.html
    );

    // Changed behind the service's back: the discussion, then a vote count.
    let db = e.meeting_db().await;
    rewrite_meeting(&db, &m.name, |m| {
        m["discussion"] = format!("{} (ویرایش شده)", m["discussion"].as_str().unwrap()).into()
    })
    .await;
    let v = e.verify(&m.name).await.unwrap();
    assert!(!v.intact);
    assert_eq!(v.stored_sha256, closed.content_sha256);
    assert_ne!(v.computed_sha256, v.stored_sha256);
    rewrite_meeting(&db, &m.name, |m| {
        m["discussion"] = closed.discussion.clone().into()
    })
    .await;
    assert!(e.verify(&m.name).await.unwrap().intact, "restored");
    rewrite_meeting(&db, &m.name, |m| {
        bump(&mut m["resolutions"][0]["votes_for"], 1)
    })
    .await;
    assert!(!e.verify(&m.name).await.unwrap().intact);
    rewrite_meeting(&db, &m.name, |m| {
        bump(&mut m["resolutions"][0]["votes_for"], -1)
    })
    .await;
    assert!(e.verify(&m.name).await.unwrap().intact, "restored");

    // Naming the older form does not make the record verify in it.
    set_hash_version(&db, &m.name, 1).await;
    let v = e.verify(&m.name).await.unwrap();
    assert!(!v.intact);
    assert_eq!(v.minutes_hash_version, 1);
    // A form this release does not know is said so, not reported as tampering.
    set_hash_version(&db, &m.name, 7).await;
    let err = e.verify(&m.name).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "MINUTES_HASH_VERSION_UNKNOWN");
    set_hash_version(&db, &m.name, 3).await;
    assert!(e.verify(&m.name).await.unwrap().intact);
}

/// The migrations of the release before the canonical form: the platform's first, the
/// meeting tables, idempotency per caller, the write probe.
const PREVIOUS_RELEASE_MIGRATIONS: u32 = 4;

/// A database the previous release wrote (its schema, a meeting it approved and one in
/// session), then the service upgraded on it: the old minutes verify in their own form
/// and stay tamper-evident; the meeting in session is approved in the canonical form.
async fn minutes_approved_before_the_canonical_form_still_verify(b: Backend) {
    use mosharekat_meeting::migrations::Migrator;
    use prost::Message as _;
    use sea_orm::ConnectionTrait as _;

    let gid = "0190f5c2-7a1e-7000-8000-0000000000aa";
    let group = format!("working-groups/{gid}");
    let member = |n: u32| format!("{group}/members/0190f5c2-7a1e-7000-8000-00000000010{n}");
    let roster = vec![
        pb::Member {
            name: member(0),
            full_name: "علی رضایی".into(),
            seat: pb::Seat::Chair as i32,
            position: pb::Position::SocialPreventionDeputy as i32,
            position_title: "معاون اجتماعی و پیشگیری از وقوع جرم".into(),
            term_start: Some(secs_from_now(-400 * 86400)),
            voting: true,
            ..Default::default()
        },
        pb::Member {
            name: member(1),
            full_name: "مریم احمدی".into(),
            seat: pb::Seat::Official as i32,
            position: pb::Position::ChiefInspector as i32,
            voting: true,
            ..Default::default()
        },
        pb::Member {
            name: member(2),
            full_name: "حسن کریمی".into(),
            seat: pb::Seat::Secretary as i32,
            position: pb::Position::Secretariat as i32,
            ..Default::default()
        },
    ];
    let present = |n: u32| pb::Attendance {
        member: member(n),
        status: pb::AttendanceStatus::Present as i32,
        substitute_name: String::new(),
    };
    let quorum = pb::Quorum {
        met: true,
        voting_members: 2,
        voting_present: 2,
        required: 2,
        chair_present: true,
        deputy_present: false,
        explanation: "2 of 2 voting members present; more than half needs 2; the chair is present"
            .into(),
    };
    let mut approved = pb::Meeting {
        name: format!("{group}/meetings/1"),
        number: 1,
        title: "نخستین جلسه".into(),
        scheduled_time: Some(prost_types::Timestamp {
            seconds: 1_764_403_200,
            nanos: 0,
        }),
        place: "دادگستری استان اردبیل".into(),
        state: pb::MeetingState::Closed as i32,
        agenda: vec![pb::AgendaItem {
            title: "گزارش دبیرخانه".into(),
            standing_report: true,
            figures: vec![pb::StatisticFigure {
                label: "ارجاع‌ها".into(),
                value: "۱۲".into(),
            }],
            ..Default::default()
        }],
        agenda_final: true,
        attendance: vec![present(0), present(1), present(2)],
        quorum: Some(quorum.clone()),
        resolutions: vec![pb::Resolution {
            name: format!("{group}/resolutions/0190f5c2-7a1e-7000-8000-000000000201"),
            meeting: format!("{group}/meetings/1"),
            number: 1,
            text: "ایجاد سامانهٔ ارجاع پرونده به نهادهای مردمی".into(),
            responsible_member: member(1),
            deadline: Some(prost_types::Timestamp {
                seconds: 1_772_179_200,
                nanos: 0,
            }),
            votes: vec![
                pb::CastVote {
                    member: member(0),
                    vote: pb::Vote::For as i32,
                },
                pb::CastVote {
                    member: member(1),
                    vote: pb::Vote::For as i32,
                },
            ],
            votes_for: 2,
            adopted: true,
            state: pb::ResolutionState::Open as i32,
            ..Default::default()
        }],
        discussion: "گزارش دبیر و بحث اعضا".into(),
        start_time: Some(prost_types::Timestamp {
            seconds: 1_764_403_500,
            nanos: 123_456_000,
        }),
        close_time: Some(prost_types::Timestamp {
            seconds: 1_764_410_400,
            nanos: 0,
        }),
        roster: roster.clone(),
        ..Default::default()
    };
    let old_hash = previous_release_sha256(&approved);
    approved.content_sha256 = old_hash.clone();
    let in_session = pb::Meeting {
        name: format!("{group}/meetings/2"),
        number: 2,
        title: "دومین جلسه".into(),
        scheduled_time: Some(secs_from_now(-600)),
        place: "دادگستری استان اردبیل".into(),
        state: pb::MeetingState::InSession as i32,
        attendance: vec![present(0), present(1)],
        quorum: Some(quorum),
        start_time: Some(secs_from_now(-60)),
        roster,
        ..Default::default()
    };

    // The previous release's schema and rows, written with its statements.
    let mdb = TestDb::new(b).await.unwrap();
    {
        let db = Db::connect(&mdb.url, &DbOptions::default()).await.unwrap();
        // In one write transaction, as the service migrates.
        db.migrate_first::<Migrator>(Some(PREVIOUS_RELEASE_MIGRATIONS))
            .await
            .unwrap();
        let wg = pb::WorkingGroup {
            name: group.clone(),
            title: "کارگروه استانی مشارکت".into(),
            province: "اردبیل".into(),
            ..Default::default()
        };
        db.conn()
            .execute_raw(db.stmt(
                "INSERT INTO working_groups (id, province_key, version, body) VALUES ($1, $2, 1, $3)",
                [
                    gid.into(),
                    mosharekat_persian::fold_for_search(&wg.province).into(),
                    wg.encode_to_vec().into(),
                ],
            ))
            .await
            .unwrap();
        for m in [&approved, &in_session] {
            db.conn()
                .execute_raw(db.stmt(
                    "INSERT INTO meetings (id, working_group_id, number, version, body) VALUES ($1, $2, $3, 1, $4)",
                    [
                        format!("{gid}/{}", m.number).into(),
                        gid.into(),
                        m.number.into(),
                        m.encode_to_vec().into(),
                    ],
                ))
                .await
                .unwrap();
        }
    }

    // Upgraded: the service migrates the database as it starts.
    let e = env_with(b, mdb).await;
    let read = e.get(&approved.name).await;
    assert_eq!(
        (read.minutes_hash_version, &read.content_sha256),
        (1, &old_hash)
    );
    let v = e.verify(&approved.name).await.unwrap();
    assert!(v.intact, "{v:?}");
    assert_eq!(v.minutes_hash_version, 1);
    assert_eq!(
        (&v.stored_sha256, &v.computed_sha256),
        (&old_hash, &old_hash)
    );
    let x = e.export(&approved.name).await;
    assert_eq!(x.minutes_hash_version, 1);
    assert!(x.html.contains(&format!(
        "<span data-latin>SHA-256</span> (v۱): <code data-latin>{old_hash}</code>"
    )));
    assert_eq!(e.get(&in_session.name).await.minutes_hash_version, 0);

    // The meeting in session during the upgrade is approved in the canonical form.
    let closed = e.approve(&in_session.name, "بحث اعضا").await;
    assert_eq!(closed.minutes_hash_version, 3);
    let v = e.verify(&in_session.name).await.unwrap();
    assert!(v.intact && v.minutes_hash_version == 3, "{v:?}");
    assert_eq!(e.get(&approved.name).await.minutes_hash_version, 1);

    // The old minutes stay tamper-evident in their own form.
    let db = e.meeting_db().await;
    rewrite_meeting(&db, &approved.name, |m| {
        m["resolutions"][0]["adopted"] = false.into()
    })
    .await;
    let v = e.verify(&approved.name).await.unwrap();
    assert!(!v.intact);
    assert_eq!((v.minutes_hash_version, &v.stored_sha256), (1, &old_hash));
    rewrite_meeting(&db, &approved.name, |m| {
        m["resolutions"][0]["adopted"] = true.into()
    })
    .await;
    assert!(e.verify(&approved.name).await.unwrap().intact, "restored");
    // And so do the bytes kept from their approval.
    let mut forged = approved.clone();
    forged.discussion.push_str(" (ویرایش شده)");
    db.conn()
        .execute_raw(db.stmt(
            "UPDATE meetings SET minutes_v1 = $1 WHERE id = $2",
            [forged.encode_to_vec().into(), row_id(&approved.name).into()],
        ))
        .await
        .unwrap();
    assert!(!e.verify(&approved.name).await.unwrap().intact);
}
