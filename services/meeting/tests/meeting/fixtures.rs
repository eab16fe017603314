//! Databases written by the release before the meeting service's own storage (v1: every
//! resource kept as the prost encoding of its API message), kept in
//! `tests/fixtures/v1/`, and what that release answered for them.
//!
//! `write_v1_fixtures` (ignored: run it by hand, and only with that release's code: commit
//! 1ee23d2, "Meeting: fixtures of the current release"; later releases store records, not
//! bodies, and it fails on them) made
//! them: it starts the three services in-process as the other tests do, writes through the
//! API a working group with every seat kind (a representative's seat vacant after their
//! institution's licence was revoked, a member whose term ended), meetings in every state,
//! agenda items pointing at an institution, a filing and a referral, attendance of every
//! kind, resolutions with votes (adopted, not adopted, overdue, cancelled), follow-up
//! notes, and minutes approved under both hash versions; then it writes
//!
//! - `meeting.sqlite`: the SQLite database (`VACUUM INTO`);
//! - `meeting.pg.sql`: `pg_dump --no-owner --no-privileges --inserts` of the same story
//!   written on PostgreSQL;
//! - `expected.json`: per backend, the answers of the Get/List RPCs, `VerifyMinutes` and
//!   `ExportMinutes` for every resource, each as the hex of the response's protobuf
//!   encoding (compared decoded, so a field added to the API later does not break it) and
//!   its debug text for a reader.
//!
//! That release approved minutes only in hash version 2; version 1 minutes are what the
//! release before it wrote. So meeting 2 is approved through the API and then its row is
//! rewritten as that release wrote it: `content_sha256` the SHA-256 of the prost encoding
//! of the approved message ([`super::previous_release_sha256`]) and the
//! `minutes_hash_version` column 1 (the column's default for rows approved before it).

use std::path::{Path, PathBuf};

use super::*;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

/// What a resource's RPC answered.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    pub rpc: String,
    pub name: String,
    /// Hex of the response message's protobuf encoding.
    pub response: String,
    /// For a reader; not compared.
    pub debug: String,
}

/// The names the answers are about.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Names {
    pub groups: Vec<String>,
    pub meetings: Vec<String>,
    pub closed: Vec<String>,
    pub resolutions: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Expected {
    pub names: Names,
    pub answers: Vec<Answer>,
}

fn answer<M: prost::Message + std::fmt::Debug>(rpc: &str, name: &str, m: &M) -> Answer {
    Answer {
        rpc: rpc.into(),
        name: name.into(),
        response: hex::encode(m.encode_to_vec()),
        debug: format!("{m:?}"),
    }
}

/// Decodes `a` as `rpc`'s response and compares it with `got`, as messages.
fn same<M: prost::Message + Default + PartialEq + std::fmt::Debug>(expected: &Answer, got: &M) {
    let want = M::decode(hex::decode(&expected.response).unwrap().as_slice()).unwrap();
    assert_eq!(&want, got, "{} {}", expected.rpc, expected.name);
}

impl Env {
    /// Every read RPC's answer for `names`, as a secretary (who sees national codes).
    pub async fn answers(&self, n: &Names) -> Vec<Answer> {
        let mut wg = self.wg.clone();
        let mut out = Vec::new();
        let r = wg
            .list_working_groups(self.sec(pb::ListWorkingGroupsRequest {
                page_size: 100,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        out.push(answer("ListWorkingGroups", "", &r));
        for g in &n.groups {
            let r = wg
                .get_working_group(self.sec(pb::GetWorkingGroupRequest { name: g.clone() }))
                .await
                .unwrap()
                .into_inner();
            out.push(answer("GetWorkingGroup", g, &r));
            for include_vacant in [false, true] {
                let r = wg
                    .list_members(self.sec(pb::ListMembersRequest {
                        parent: g.clone(),
                        include_vacant,
                    }))
                    .await
                    .unwrap()
                    .into_inner();
                out.push(answer(
                    if include_vacant {
                        "ListMembers+vacant"
                    } else {
                        "ListMembers"
                    },
                    g,
                    &r,
                ));
            }
            let r = wg
                .list_meetings(self.sec(pb::ListMeetingsRequest {
                    parent: g.clone(),
                    page_size: 100,
                    page_token: String::new(),
                }))
                .await
                .unwrap()
                .into_inner();
            out.push(answer("ListMeetings", g, &r));
            let r = wg
                .list_resolutions(self.sec(pb::ListResolutionsRequest {
                    parent: g.clone(),
                    page_size: 100,
                    ..Default::default()
                }))
                .await
                .unwrap()
                .into_inner();
            out.push(answer("ListResolutions", g, &r));
        }
        for m in &n.meetings {
            let r = wg
                .get_meeting(self.sec(pb::GetMeetingRequest { name: m.clone() }))
                .await
                .unwrap()
                .into_inner();
            out.push(answer("GetMeeting", m, &r));
        }
        for m in &n.closed {
            let r = self.verify(m).await.unwrap();
            assert!(r.intact, "{m}: {r:?}");
            out.push(answer("VerifyMinutes", m, &r));
            out.push(answer("ExportMinutes", m, &self.export(m).await));
        }
        for r in &n.resolutions {
            let x = wg
                .get_resolution(self.sec(pb::GetResolutionRequest { name: r.clone() }))
                .await
                .unwrap()
                .into_inner();
            out.push(answer("GetResolution", r, &x));
        }
        out
    }

    /// An institution licensed to accept referrals and to file complaints.
    async fn filer(&self, n: u32) -> String {
        let areas = vec![
            ActivityArea::Reconciliation as i32,
            ActivityArea::Family as i32,
        ];
        let actions = [
            reg::PermittedAction::AcceptReferrals,
            reg::PermittedAction::FileComplaint,
        ];
        let inst = charity(
            format!("نهاد طرح‌کنندهٔ دعوی {n}"),
            legal_id(17, 50_000 + n),
            format!("f{n}"),
            areas.clone(),
        );
        register(
            &self.reg,
            &self.keys.bearer(Role::Admin, None),
            inst,
            Some(ardabil_licence(areas, &actions)),
        )
        .await
        .institution
        .name
    }
}

/// Rewrites a meeting's body as that release stored it (its prost encoding).
async fn rewrite_prost_body(db: &Db, meeting: &str, f: impl FnOnce(&mut pb::Meeting)) {
    use prost::Message as _;
    use sea_orm::ConnectionTrait as _;
    let id = row_id(meeting);
    let row = db
        .conn()
        .query_one_raw(db.stmt(
            "SELECT body FROM meetings WHERE id = $1",
            [id.clone().into()],
        ))
        .await
        .unwrap()
        .unwrap();
    let body: Vec<u8> = row.try_get("", "body").unwrap();
    let mut m = pb::Meeting::decode(body.as_slice()).unwrap();
    f(&mut m);
    db.conn()
        .execute_raw(db.stmt(
            "UPDATE meetings SET body = $1 WHERE id = $2",
            [m.encode_to_vec().into(), id.into()],
        ))
        .await
        .unwrap();
}

fn fixed(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// 2100-01-01: never overdue while the fixture is in use.
const FAR: i64 = 4_102_444_800;
/// 2020-01-01: always overdue while open.
const PAST: i64 = 1_577_836_800;

/// Writes the story of the module's doc on `b`, returns the names it made.
async fn write_story(e: &Env) -> Names {
    use pb::AttendanceStatus as A;
    let mut wg = e.wg.clone();
    let (g, members, institutions) = e.seed_group().await;
    // The seed group: 0 chair, 1..=5 officials, 6..=11 representatives, 12 secretary.
    let filer = e.filer(1).await;
    let referral = e.refer(&institutions[0].0, "اختلاف خانوادگی").await;
    let filing = e
        .cases
        .clone()
        .create_filing(authed(
            e.keys
                .bearer(Role::Institution, Some(filer.rsplit('/').next().unwrap())),
            rf::CreateFilingRequest {
                request_id: String::new(),
                filing: Some(rf::Filing {
                    kind: rf::FilingKind::Complaint as i32,
                    activity_area: ActivityArea::Family as i32,
                    authority: "دادسرای عمومی و انقلاب اردبیل".into(),
                    province: "اردبیل".into(),
                    subject: "شکایت از خشونت خانگی".into(),
                    description: "شرح ماجرا".into(),
                    parties: victim_and_accused("مریم"),
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();

    // The last representative's institution loses its licence: the seat is vacant.
    let (_, licence) = &institutions[5];
    e.revoke(licence).await;
    e.vacated(&g, &members[11].name, Duration::from_secs(20))
        .await;

    let item = |title: &str, subject: &str, standing: bool| pb::AgendaItem {
        title: title.into(),
        description: format!("شرح {title}"),
        subject: subject.into(),
        standing_report: standing,
        figures: vec![],
        subject_institution: String::new(),
    };
    let attendance = |rows: &[(usize, A)]| -> Vec<pb::Attendance> {
        rows.iter()
            .map(|(i, s)| pb::Attendance {
                member: members[*i].name.clone(),
                status: *s as i32,
                substitute_name: if *s == A::Represented {
                    "جانشین عضو".into()
                } else {
                    String::new()
                },
            })
            .collect()
    };
    let vote = |i: usize, v: pb::Vote| pb::CastVote {
        member: members[i].name.clone(),
        vote: v as i32,
    };
    let resolve = |meeting: String, text: &str, votes: Vec<pb::CastVote>, who: usize, d: i64| {
        let mut wg = e.wg.clone();
        let req = e.sec(pb::RecordResolutionRequest {
            name: meeting,
            request_id: String::new(),
            text: text.into(),
            responsible_member: members[who].name.clone(),
            responsible_body: "دبیرخانهٔ کارگروه".into(),
            deadline: fixed(d),
            votes,
            ..Default::default()
        });
        async move {
            wg.record_resolution(req)
                .await
                .unwrap()
                .into_inner()
                .resolution
                .unwrap()
        }
    };
    // Meetings 1 (v2 minutes) and 2 (v1 minutes): held in full.
    let mut held = Vec::new();
    let mut resolutions = Vec::new();
    for title in ["نخستین جلسه", "دومین جلسه"] {
        let m = e.schedule(&g, title).await;
        e.set_agenda(
            &m,
            vec![
                item("گزارش ارجاع‌ها", "", true),
                item("پروندهٔ ارجاعی", &referral.name, false),
                item("پروندهٔ طرح‌شده", &filing.name, false),
                item("نهاد همکار", &institutions[0].0, false),
            ],
        )
        .await
        .unwrap();
        wg.finalize_agenda(e.sec(pb::FinalizeAgendaRequest {
            name: m.name.clone(),
            etag: String::new(),
        }))
        .await
        .unwrap();
        let present: Vec<(usize, A)> = (0..8).map(|i| (i, A::Present)).collect();
        wg.record_attendance(
            e.sec(pb::RecordAttendanceRequest {
                name: m.name.clone(),
                etag: String::new(),
                attendance: attendance(
                    &[
                        present,
                        vec![(8, A::Represented), (9, A::Excused), (10, A::Absent)],
                        vec![(12, A::Present)],
                    ]
                    .concat(),
                ),
                deputy_chair: members[1].name.clone(),
            }),
        )
        .await
        .unwrap();
        e.start(&m.name).await;
        let adopted = resolve(
            m.name.clone(),
            "ایجاد سامانهٔ ارجاع پرونده به نهادهای مردمی",
            (0..9)
                .map(|i| {
                    vote(
                        i,
                        if i < 7 {
                            pb::Vote::For
                        } else {
                            pb::Vote::Abstain
                        },
                    )
                })
                .collect(),
            4,
            FAR,
        )
        .await;
        let rejected = resolve(
            m.name.clone(),
            "تعطیلی کارگروه",
            (0..9)
                .map(|i| {
                    vote(
                        i,
                        if i < 2 {
                            pb::Vote::For
                        } else {
                            pb::Vote::Against
                        },
                    )
                })
                .collect(),
            1,
            FAR,
        )
        .await;
        let overdue = resolve(
            m.name.clone(),
            "گزارش سالانه",
            (0..8).map(|i| vote(i, pb::Vote::For)).collect(),
            6,
            PAST,
        )
        .await;
        e.approve(&m.name, &format!("بحث اعضا دربارهٔ {title}"))
            .await;
        held.push(m.name.clone());
        resolutions.extend([adopted.name, rejected.name, overdue.name]);
    }
    // Meeting 2's minutes, as the release before the canonical form approved them.
    let db = e.meeting_db().await;
    let mut v1 = String::new();
    rewrite_prost_body(&db, &held[1], |m| {
        m.content_sha256 = previous_release_sha256(m);
        v1 = m.content_sha256.clone();
    })
    .await;
    set_hash_version(&db, &held[1], 1).await;
    let v = e.verify(&held[1]).await.unwrap();
    assert_eq!(
        (v.intact, v.minutes_hash_version, &v.stored_sha256),
        (true, 1, &v1)
    );

    // Follow-up of meeting 1's adopted resolution: two progress notes; its overdue one
    // cancelled.
    for (progress, note) in [(30, "طراحی سامانه آغاز شد"), (60, "نسخهٔ آزمایشی آماده است")]
    {
        wg.report_resolution_progress(e.sec(pb::ReportResolutionProgressRequest {
            name: resolutions[0].clone(),
            etag: String::new(),
            progress,
            note: note.into(),
        }))
        .await
        .unwrap();
    }
    wg.report_resolution_progress(e.sec(pb::ReportResolutionProgressRequest {
        name: resolutions[3].clone(),
        etag: String::new(),
        progress: 100,
        note: "انجام شد".into(),
    }))
    .await
    .unwrap();
    wg.cancel_resolution(e.sec(pb::CancelResolutionRequest {
        name: resolutions[2].clone(),
        etag: String::new(),
        reason: "موضوع منتفی شد".into(),
    }))
    .await
    .unwrap();

    // Meeting 3 scheduled (agenda set, not final), 4 postponed, 5 cancelled, 6 in session.
    let scheduled = e.schedule(&g, "سومین جلسه").await;
    e.set_agenda(&scheduled, vec![item("پیگیری مصوبات", "", false)])
        .await
        .unwrap();
    let postponed = e.schedule(&g, "جلسهٔ به تعویق افتاده").await;
    wg.postpone_meeting(e.sec(pb::PostponeMeetingRequest {
        name: postponed.name.clone(),
        etag: String::new(),
        reason: "تعطیلی رسمی".into(),
    }))
    .await
    .unwrap();
    let cancelled = e.schedule(&g, "جلسهٔ لغو شده").await;
    wg.cancel_meeting(e.sec(pb::CancelMeetingRequest {
        name: cancelled.name.clone(),
        etag: String::new(),
        reason: "عدم ضرورت".into(),
    }))
    .await
    .unwrap();
    let in_session = e.schedule(&g, "جلسهٔ در حال برگزاری").await;
    wg.record_attendance(e.sec(pb::RecordAttendanceRequest {
        name: in_session.name.clone(),
        etag: String::new(),
        attendance: attendance(&(0..9).map(|i| (i, A::Present)).collect::<Vec<_>>()),
        deputy_chair: String::new(),
    }))
    .await
    .unwrap();
    e.start(&in_session.name).await;
    let r = resolve(
        in_session.name.clone(),
        "برگزاری همایش استانی",
        (0..9).map(|i| vote(i, pb::Vote::For)).collect(),
        2,
        FAR,
    )
    .await;
    resolutions.push(r.name);

    // A second, small group: a member whose term ended.
    let g2 = e.group().await;
    e.seat(&g2, 50, pb::Seat::Chair, pb::Position::Unspecified, "")
        .await
        .unwrap();
    let gone = e
        .seat(
            &g2,
            51,
            pb::Seat::Official,
            pb::Position::ChiefInspector,
            "",
        )
        .await
        .unwrap();
    wg.unseat_member(e.sec(pb::UnseatMemberRequest {
        name: gone.name.clone(),
        etag: String::new(),
        reason: "پایان مأموریت".into(),
    }))
    .await
    .unwrap();

    let mut meetings = held.clone();
    meetings.extend([
        scheduled.name,
        postponed.name,
        cancelled.name,
        in_session.name,
    ]);
    Names {
        groups: vec![g.name, g2.name],
        meetings,
        closed: held,
        resolutions,
    }
}

/// Writes `tests/fixtures/v1/` (see the module's doc). Run only with the release the
/// fixtures stand for: `cargo nextest run -p mosharekat-meeting --run-ignored only
/// write_v1_fixtures`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the v1 fixtures; run by hand with the release they stand for"]
async fn write_v1_fixtures() {
    use sea_orm::ConnectionTrait as _;
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let mut expected = serde_json::Map::new();
    for b in [Backend::Sqlite, Backend::Postgres] {
        let e = env(b).await;
        let names = write_story(&e).await;
        let answers = e.answers(&names).await;
        let url = e._dbs[2].url.clone();
        let (registry, referral, meeting) = e.services;
        meeting.stop().await.unwrap();
        referral.stop().await.unwrap();
        registry.stop().await.unwrap();
        match b {
            Backend::Sqlite => {
                let out = dir.join("meeting.sqlite");
                let _ = std::fs::remove_file(&out);
                let db = Db::connect(&url, &DbOptions::default()).await.unwrap();
                db.conn()
                    .execute_unprepared(&format!("VACUUM INTO '{}'", out.display()))
                    .await
                    .unwrap();
            }
            Backend::Postgres => {
                let status = std::process::Command::new("pg_dump")
                    .args([
                        "--no-owner",
                        "--no-privileges",
                        "--inserts",
                        "-d",
                        &url,
                        "-f",
                    ])
                    .arg(dir.join("meeting.pg.sql"))
                    .status()
                    .unwrap();
                assert!(status.success());
            }
        }
        let key = match b {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        expected.insert(
            key.into(),
            serde_json::to_value(Expected { names, answers }).unwrap(),
        );
    }
    std::fs::write(
        dir.join("expected.json"),
        serde_json::to_string_pretty(&expected).unwrap() + "\n",
    )
    .unwrap();
}

pub fn expected(b: Backend) -> Expected {
    let text = std::fs::read_to_string(fixture_dir().join("expected.json")).unwrap();
    let mut all: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    let key = match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    serde_json::from_value(all.remove(key).unwrap()).unwrap()
}

/// Compares each answer with the one the fixture's release gave, decoded by its RPC.
pub fn compare(expected: &[Answer], got: &[Answer]) {
    assert_eq!(expected.len(), got.len());
    for (want, have) in expected.iter().zip(got) {
        assert_eq!((&want.rpc, &want.name), (&have.rpc, &have.name));
        let bytes = hex::decode(&have.response).unwrap();
        macro_rules! cmp {
            ($t:ty) => {
                same(
                    want,
                    &<$t as prost::Message>::decode(bytes.as_slice()).unwrap(),
                )
            };
        }
        // Fields added since the fixture's release (issue 17) are left out of the
        // comparison: the resolution's printed number, derived from what it had.
        macro_rules! cmp_without_new {
            ($t:ty, $f:expr) => {{
                let mut got = <$t as prost::Message>::decode(bytes.as_slice()).unwrap();
                let clear: fn(&mut $t) = $f;
                clear(&mut got);
                same(want, &got)
            }};
        }
        fn clear_resolution(r: &mut pb::Resolution) {
            r.display_number.clear();
        }
        fn clear_meeting(m: &mut pb::Meeting) {
            m.resolutions.iter_mut().for_each(clear_resolution);
        }
        match want.rpc.as_str() {
            "ListWorkingGroups" => cmp!(pb::ListWorkingGroupsResponse),
            "GetWorkingGroup" => cmp!(pb::GetWorkingGroupResponse),
            "ListMembers" | "ListMembers+vacant" => cmp!(pb::ListMembersResponse),
            "ListMeetings" => cmp_without_new!(pb::ListMeetingsResponse, |r| r
                .meetings
                .iter_mut()
                .for_each(clear_meeting)),
            "ListResolutions" => cmp_without_new!(pb::ListResolutionsResponse, |r| r
                .resolutions
                .iter_mut()
                .for_each(clear_resolution)),
            "GetMeeting" => cmp_without_new!(pb::GetMeetingResponse, |r| r
                .meeting
                .iter_mut()
                .for_each(clear_meeting)),
            "VerifyMinutes" => cmp!(pb::VerifyMinutesResponse),
            // The printed minutes changed by design (issue 17: the document kit, Persian
            // numbering, the recusals and signatures blocks): their hash and its form must not.
            "ExportMinutes" => {
                let want_m = <pb::ExportMinutesResponse as prost::Message>::decode(
                    hex::decode(&want.response).unwrap().as_slice(),
                )
                .unwrap();
                let got = <pb::ExportMinutesResponse as prost::Message>::decode(bytes.as_slice())
                    .unwrap();
                assert_eq!(
                    (&want_m.content_sha256, want_m.minutes_hash_version),
                    (&got.content_sha256, got.minutes_hash_version),
                    "{}",
                    want.name
                );
                assert!(got.html.contains("dir=\"rtl\""));
                assert!(got.html.contains(&got.content_sha256), "{}", got.html);
            }
            "GetResolution" => cmp_without_new!(pb::GetResolutionResponse, |r| r
                .resolution
                .iter_mut()
                .for_each(clear_resolution)),
            other => panic!("unknown rpc {other}"),
        }
    }
}

/// A fresh database holding the fixture `b`'s release wrote, not yet opened by the
/// service (which migrates it as it starts).
pub async fn load_fixture(b: Backend) -> TestDb {
    use sea_orm::ConnectionTrait as _;
    let db = TestDb::new(b).await.unwrap();
    match b {
        Backend::Sqlite => {
            let path = db.url.strip_prefix("sqlite://").unwrap();
            std::fs::copy(fixture_dir().join("meeting.sqlite"), path).unwrap();
        }
        Backend::Postgres => {
            let dump = std::fs::read_to_string(fixture_dir().join("meeting.pg.sql")).unwrap();
            // psql's meta-commands (`\restrict`) are for psql, not the server.
            let dump: String = dump
                .lines()
                .filter(|l| !l.starts_with('\\'))
                .map(|l| format!("{l}\n"))
                .collect();
            // A connection of its own: the dump empties its search_path.
            let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
            conn.execute_unprepared(&dump).await.unwrap();
            conn.close().await.unwrap();
        }
    }
    db
}

/// The fixture's database served by this release answers as the fixture's release did,
/// and both versions of its minutes verify.
pub async fn the_v1_fixture_answers_as_it_was_written(b: Backend) {
    let e = env_with(b, load_fixture(b).await).await;
    let want = expected(b);
    let got = e.answers(&want.names).await;
    compare(&want.answers, &got);
    let versions: Vec<i32> = got
        .iter()
        .filter(|a| a.rpc == "VerifyMinutes")
        .map(|a| {
            let v = <pb::VerifyMinutesResponse as prost::Message>::decode(
                hex::decode(&a.response).unwrap().as_slice(),
            )
            .unwrap();
            assert!(v.intact, "{v:?}");
            v.minutes_hash_version
        })
        .collect();
    assert_eq!(versions, [2, 1]);
}

on_both_databases!(the_v1_fixture_answers_as_it_was_written,);
