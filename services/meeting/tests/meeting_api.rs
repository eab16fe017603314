//! The meeting service served for real beside a real registry and referral service, each
//! in-process on an ephemeral port with its own fresh database; on SQLite and PostgreSQL.
//! The story is the seed's: the Ardabil working group seated and its first meeting held.

use std::time::{Duration, Instant};

use mosharekat_api::common::v1::audit_service_client::AuditServiceClient;
use mosharekat_api::common::v1::{ActivityArea, ListAuditRecordsRequest, Party, PartyRole};
use mosharekat_api::meeting::v1 as pb;
use mosharekat_api::meeting::v1::meeting_service_client::MeetingServiceClient;
use mosharekat_api::referral::v1 as rf;
use mosharekat_api::referral::v1::referral_service_client::ReferralServiceClient;
use mosharekat_api::registry::v1 as reg;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use mosharekat_meeting::canonical::MinutesContent;
use mosharekat_meeting::testing::RunningMeeting;
use mosharekat_persian::ids::{legal_entity_check_digit, national_code_check_digit};
use mosharekat_platform::auth::Role;
use mosharekat_platform::db::{Db, DbOptions};
use mosharekat_platform::testing::{Backend, TestDb, TestKeys};
use mosharekat_referral::testing::RunningReferral;
use mosharekat_registry::testing::RunningRegistry;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

struct Env {
    keys: TestKeys,
    _dbs: Vec<TestDb>,
    services: (RunningRegistry, RunningReferral, RunningMeeting),
    reg: RegistryServiceClient<Channel>,
    cases: ReferralServiceClient<Channel>,
    wg: MeetingServiceClient<Channel>,
}

fn lazy(uri: &str) -> Channel {
    Channel::from_shared(uri.to_owned()).unwrap().connect_lazy()
}

async fn env(b: Backend) -> Env {
    env_with(b, TestDb::new(b).await.unwrap()).await
}

/// The three services, the meeting service on `meeting_db` (which may hold data already).
async fn env_with(b: Backend, meeting_db: TestDb) -> Env {
    let keys = TestKeys::new().unwrap();
    let dbs = vec![
        TestDb::new(b).await.unwrap(),
        TestDb::new(b).await.unwrap(),
        meeting_db,
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
    let meeting = RunningMeeting::start(RunningMeeting::settings(
        &dbs[2].url,
        &keys.public_key,
        &keys.private_key,
        &registry.uri(),
        &referral.uri(),
    ))
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

fn authed<T>(bearer: String, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", bearer.parse().unwrap());
    r
}

fn reason(s: &tonic::Status) -> String {
    s.get_error_details()
        .error_info()
        .map(|e| e.reason.clone())
        .unwrap_or_default()
}

fn fields(s: &tonic::Status) -> Vec<String> {
    s.get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

fn code_for(n: u32) -> String {
    let nine = format!("{:09}", 200_000 + n * 13);
    format!("{nine}{}", national_code_check_digit(&nine).unwrap())
}

fn ts(secs_from_now: i64) -> prost_types::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    prost_types::Timestamp {
        seconds: now + secs_from_now,
        nanos: 0,
    }
}

impl Env {
    fn sec<T>(&self, msg: T) -> Request<T> {
        authed(self.keys.bearer(Role::Secretary, None), msg)
    }
    fn admin<T>(&self, msg: T) -> Request<T> {
        authed(self.keys.bearer(Role::Admin, None), msg)
    }

    /// A registered institution, licensed unless `licensed` is false; returns its name and licence.
    async fn institution(&self, n: u32, licensed: bool) -> (String, String) {
        let ten = format!("16{:08}", 30_000 + n);
        let mut c = self.reg.clone();
        let inst = c
            .create_institution(self.admin(reg::CreateInstitutionRequest {
                request_id: String::new(),
                institution: Some(reg::Institution {
                    display_name: format!("نهاد همکار {n}"),
                    kind: reg::InstitutionKind::Charity as i32,
                    national_id: format!("{ten}{}", legal_entity_check_digit(&ten).unwrap()),
                    registration_number: n.to_string(),
                    registering_authority: "اداره ثبت".into(),
                    province: "اردبیل".into(),
                    city: "اردبیل".into(),
                    activity_areas: vec![
                        ActivityArea::Reconciliation as i32,
                        ActivityArea::Family as i32,
                    ],
                    ..Default::default()
                }),
            }))
            .await
            .unwrap()
            .into_inner()
            .institution
            .unwrap();
        if !licensed {
            return (inst.name, String::new());
        }
        let l = c
            .create_licence(self.admin(reg::CreateLicenceRequest {
                parent: inst.name.clone(),
                request_id: String::new(),
                licence: Some(reg::Licence {
                    activity_areas: vec![
                        ActivityArea::Reconciliation as i32,
                        ActivityArea::Family as i32,
                    ],
                    permitted_actions: vec![reg::PermittedAction::AcceptReferrals as i32],
                    province: "اردبیل".into(),
                    valid_until: Some(ts(365 * 86400)),
                    ..Default::default()
                }),
            }))
            .await
            .unwrap()
            .into_inner()
            .licence
            .unwrap();
        c.approve_licence(self.admin(reg::ApproveLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();
        (inst.name, l.name)
    }

    async fn group(&self) -> pb::WorkingGroup {
        self.wg
            .clone()
            .create_working_group(self.sec(pb::CreateWorkingGroupRequest {
                request_id: String::new(),
                working_group: Some(pb::WorkingGroup {
                    province: "اردبیل".into(),
                    title: "کارگروه استانی مشارکت و تعامل نهادهای مردمی با قوه قضائیه".into(),
                    ..Default::default()
                }),
            }))
            .await
            .unwrap()
            .into_inner()
            .working_group
            .unwrap()
    }

    async fn seat(
        &self,
        g: &pb::WorkingGroup,
        n: u32,
        seat: pb::Seat,
        position: pb::Position,
        institution: &str,
    ) -> Result<pb::Member, tonic::Status> {
        self.wg
            .clone()
            .seat_member(self.sec(pb::SeatMemberRequest {
                parent: g.name.clone(),
                request_id: String::new(),
                member: Some(pb::Member {
                    full_name: format!("عضو شماره {n}"),
                    national_code: code_for(n),
                    seat: seat as i32,
                    position: position as i32,
                    position_title: format!("سمت {n}"),
                    institution: institution.into(),
                    ..Default::default()
                }),
            }))
            .await
            .map(|r| r.into_inner().member.unwrap())
    }

    /// The seed's group: chair, five officials, six representatives of licensed institutions, a secretary.
    async fn seed_group(&self) -> (pb::WorkingGroup, Vec<pb::Member>, Vec<(String, String)>) {
        use pb::Position as P;
        use pb::Seat as S;
        let g = self.group().await;
        let mut members = vec![
            self.seat(&g, 0, S::Chair, P::Unspecified, "")
                .await
                .unwrap(),
        ];
        for (i, p) in [
            P::ChiefInspector,
            P::ProsecutorDeputy,
            P::PrisonsDirectorGeneral,
            P::DisputeResolutionHead,
            P::PopularParticipationDirector,
        ]
        .into_iter()
        .enumerate()
        {
            members.push(
                self.seat(&g, 1 + i as u32, S::Official, p, "")
                    .await
                    .unwrap(),
            );
        }
        let mut institutions = Vec::new();
        for i in 0..6u32 {
            let inst = self.institution(i, true).await;
            members.push(
                self.seat(
                    &g,
                    10 + i,
                    S::InstitutionRepresentative,
                    P::Unspecified,
                    &inst.0,
                )
                .await
                .unwrap(),
            );
            institutions.push(inst);
        }
        members.push(
            self.seat(&g, 20, S::Secretary, P::Unspecified, "")
                .await
                .unwrap(),
        );
        (g, members, institutions)
    }
}

macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Backend::Postgres).await } )*
        }
    };
}

on_both_databases!(
    the_seeds_first_meeting,
    a_licence_revocation_flags_the_seat,
    a_child_of_another_group_is_not_found,
    the_minutes_keep_the_roster_of_the_meeting,
    bad_input_names_the_field,
    request_ids_belong_to_their_caller,
    malformed_bodies_are_invalid_argument,
    a_vacancy_names_the_officer_who_suspended_the_licence,
    the_minutes_hash_names_its_form_and_shows_tampering,
    minutes_approved_before_the_canonical_form_still_verify,
    the_v1_fixture_answers_as_it_was_written,
    a_field_written_by_a_newer_release_survives_a_change,
);

// The databases of the previous release, kept in `tests/fixtures/v1/`.
#[path = "meeting_api/fixtures.rs"]
mod fixtures;
use fixtures::the_v1_fixture_answers_as_it_was_written;

async fn the_seeds_first_meeting(b: Backend) {
    let e = env(b).await;
    let mut wg = e.wg.clone();
    let (g, members, _) = e.seed_group().await;
    assert_eq!(members.len(), 13);
    assert!(
        !members.last().unwrap().voting,
        "the secretary does not vote"
    );
    // A seventh representative is refused.
    let seventh = e.institution(6, true).await;
    let err = e
        .seat(
            &g,
            30,
            pb::Seat::InstitutionRepresentative,
            pb::Position::Unspecified,
            &seventh.0,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "REPRESENTATIVES_FULL")
    );
    // A representative of an unlicensed institution is refused with the registry's reason.
    let g2 = e.group().await;
    let unlicensed = e.institution(7, false).await;
    let err = e
        .seat(
            &g2,
            31,
            pb::Seat::InstitutionRepresentative,
            pb::Position::Unspecified,
            &unlicensed.0,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "NO_LICENCE")
    );
    // A second chair is refused.
    let err = e
        .seat(&g, 32, pb::Seat::Chair, pb::Position::Unspecified, "")
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "CHAIR_TAKEN");

    // A referral to point the agenda at.
    let (inst, _) = e.institution(8, true).await;
    let referral = e
        .cases
        .clone()
        .create_referral(authed(
            e.keys.bearer(Role::CenterOfficer, None),
            rf::CreateReferralRequest {
                request_id: String::new(),
                referral: Some(rf::Referral {
                    source: rf::ReferralSource::DisputeResolutionCenter as i32,
                    source_case_number: "1".into(),
                    kind: rf::ReferralKind::Reconciliation as i32,
                    activity_area: ActivityArea::Family as i32,
                    province: "اردبیل".into(),
                    parties: vec![Party {
                        full_name: "الف".into(),
                        role: PartyRole::Disputant as i32,
                        ..Default::default()
                    }],
                    summary: "اختلاف".into(),
                    institution: inst.clone(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();

    let m = wg
        .schedule_meeting(e.sec(pb::ScheduleMeetingRequest {
            parent: g.name.clone(),
            request_id: String::new(),
            meeting: Some(pb::Meeting {
                title: "نخستین جلسه".into(),
                place: "دادگستری استان اردبیل".into(),
                scheduled_time: Some(ts(3600)),
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!((m.number, m.name.ends_with("/meetings/1")), (1, true));
    let item = |title: &str, subject: &str, standing: bool| pb::AgendaItem {
        title: title.into(),
        subject: subject.into(),
        standing_report: standing,
        ..Default::default()
    };
    // A pointer to nothing is refused, naming the item.
    let err = wg
        .set_agenda(e.sec(pb::SetAgendaRequest {
            name: m.name.clone(),
            etag: String::new(),
            items: vec![item("x", "referrals/0000", false)],
        }))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["items[0].subject"]);
    wg.set_agenda(e.sec(pb::SetAgendaRequest {
        name: m.name.clone(),
        etag: String::new(),
        items: vec![
            item("گزارش ارجاع‌ها", "", true),
            item("پروندهٔ ارجاعی", &referral.name, false),
            item("نهاد همکار", &inst, false),
        ],
    }))
    .await
    .unwrap();
    let m = wg
        .finalize_agenda(e.sec(pb::FinalizeAgendaRequest {
            name: m.name.clone(),
            etag: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert!(m.agenda_final);
    assert!(
        m.agenda[0]
            .figures
            .iter()
            .any(|f| f.label == "ارجاع‌ها به نهادها" && f.value == "1"),
        "{:?}",
        m.agenda[0].figures
    );

    // Attendance: six of twelve voting members is exactly half — no quorum.
    let attend = |ids: &[usize], status: pb::AttendanceStatus| -> Vec<pb::Attendance> {
        ids.iter()
            .map(|i| pb::Attendance {
                member: members[*i].name.clone(),
                status: status as i32,
                substitute_name: if status == pb::AttendanceStatus::Represented {
                    "جانشین".into()
                } else {
                    String::new()
                },
            })
            .collect()
    };
    wg.record_attendance(e.sec(pb::RecordAttendanceRequest {
        name: m.name.clone(),
        etag: String::new(),
        attendance: attend(&[0, 1, 2, 3, 4, 5, 12], pb::AttendanceStatus::Present),
        deputy_chair: String::new(),
    }))
    .await
    .unwrap();
    let err = wg
        .start_meeting(e.sec(pb::StartMeetingRequest {
            name: m.name.clone(),
            etag: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "NO_QUORUM");
    let m = wg
        .record_attendance(
            e.sec(pb::RecordAttendanceRequest {
                name: m.name.clone(),
                etag: String::new(),
                attendance: [
                    attend(&[6, 7], pb::AttendanceStatus::Present),
                    attend(&[8], pb::AttendanceStatus::Represented),
                    attend(&[9], pb::AttendanceStatus::Excused),
                ]
                .concat(),
                deputy_chair: members[1].name.clone(),
            }),
        )
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    let q = m.quorum.clone().unwrap();
    assert_eq!(
        (q.voting_members, q.voting_present, q.required, q.met),
        (12, 9, 7, true),
        "{q:?}"
    );
    let m = wg
        .start_meeting(e.sec(pb::StartMeetingRequest {
            name: m.name.clone(),
            etag: m.etag.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(m.state, pb::MeetingState::InSession as i32);

    // A resolution, voted by the present voting members.
    let votes: Vec<pb::CastVote> = [0, 1, 2, 3, 4, 5, 6, 7, 8]
        .iter()
        .map(|i| pb::CastVote {
            member: members[*i].name.clone(),
            vote: if *i < 7 {
                pb::Vote::For
            } else {
                pb::Vote::Abstain
            } as i32,
        })
        .collect();
    let r = wg
        .record_resolution(e.sec(pb::RecordResolutionRequest {
            name: m.name.clone(),
            request_id: String::new(),
            text: "ایجاد سامانهٔ ارجاع پرونده به نهادهای مردمی".into(),
            responsible_member: members[4].name.clone(),
            responsible_body: String::new(),
            deadline: Some(ts(90 * 86400)),
            votes,
        }))
        .await
        .unwrap()
        .into_inner()
        .resolution
        .unwrap();
    assert!(r.adopted);
    assert_eq!(
        (r.votes_for, r.abstentions, r.state),
        (7, 2, pb::ResolutionState::Open as i32)
    );
    // The secretary does not vote.
    let err = wg
        .record_resolution(e.sec(pb::RecordResolutionRequest {
            name: m.name.clone(),
            text: "x".into(),
            votes: vec![pb::CastVote {
                member: members[12].name.clone(),
                vote: pb::Vote::For as i32,
            }],
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["votes[0].member"]);

    let m = wg
        .approve_minutes(e.sec(pb::ApproveMinutesRequest {
            name: m.name.clone(),
            etag: String::new(),
            discussion: "گزارش دبیر و بحث اعضا".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(m.state, pb::MeetingState::Closed as i32);
    assert_eq!(m.content_sha256.len(), 64);
    let v = wg
        .verify_minutes(e.sec(pb::VerifyMinutesRequest {
            name: m.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(v.intact && v.stored_sha256 == m.content_sha256);
    // Any change now is refused.
    let refused = [
        wg.record_attendance(e.sec(pb::RecordAttendanceRequest {
            name: m.name.clone(),
            etag: String::new(),
            attendance: attend(&[10], pb::AttendanceStatus::Present),
            deputy_chair: String::new(),
        }))
        .await
        .map(|_| ()),
        wg.set_agenda(e.sec(pb::SetAgendaRequest {
            name: m.name.clone(),
            etag: String::new(),
            items: vec![],
        }))
        .await
        .map(|_| ()),
        wg.record_resolution(e.sec(pb::RecordResolutionRequest {
            name: m.name.clone(),
            text: "x".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        wg.cancel_meeting(e.sec(pb::CancelMeetingRequest {
            name: m.name.clone(),
            etag: String::new(),
            reason: "x".into(),
        }))
        .await
        .map(|_| ()),
        wg.approve_minutes(e.sec(pb::ApproveMinutesRequest {
            name: m.name.clone(),
            etag: String::new(),
            discussion: "y".into(),
        }))
        .await
        .map(|_| ()),
        wg.reschedule_meeting(e.sec(pb::RescheduleMeetingRequest {
            name: m.name.clone(),
            etag: String::new(),
            scheduled_time: Some(ts(7200)),
            place: String::new(),
        }))
        .await
        .map(|_| ()),
    ];
    for r in refused {
        assert_eq!(r.unwrap_err().code(), Code::FailedPrecondition);
    }

    // The export: right-to-left Persian HTML with the Jalali date and every attendee.
    let html = wg
        .export_minutes(e.sec(pb::ExportMinutesRequest {
            name: m.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .html;
    assert!(html.contains("<html lang=\"fa\" dir=\"rtl\">"));
    let jalali = mosharekat_persian::jalali::format_instant(
        chrono::DateTime::from_timestamp(m.scheduled_time.unwrap().seconds, 0).unwrap(),
    );
    assert!(html.contains(&jalali), "no Jalali date {jalali}");
    for i in [0usize, 1, 2, 3, 4, 5, 6, 7, 9] {
        assert!(
            html.contains(&members[i].full_name),
            "{} missing",
            members[i].full_name
        );
    }
    assert!(html.contains("جانشین"), "the substitute is named");
    assert!(html.contains("ایجاد سامانهٔ ارجاع"));

    // Follow-up: the responsible member reports progress; another member may not.
    let member_token = |m: &pb::Member| {
        e.keys.bearer_with(Role::Member, |r| {
            r.member = Some(m.name.rsplit('/').next().unwrap().to_owned())
        })
    };
    let err = wg
        .report_resolution_progress(authed(
            member_token(&members[3]),
            pb::ReportResolutionProgressRequest {
                name: r.name.clone(),
                etag: String::new(),
                progress: 10,
                note: "x".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let r2 = wg
        .report_resolution_progress(authed(
            member_token(&members[4]),
            pb::ReportResolutionProgressRequest {
                name: r.name.clone(),
                etag: String::new(),
                progress: 40,
                note: "پیش‌نویس آماده شد".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .resolution
        .unwrap();
    assert_eq!(
        (r2.state, r2.progress, r2.notes.len()),
        (pb::ResolutionState::InProgress as i32, 40, 1)
    );
    // Follow-up does not touch the approved minutes.
    let v = wg
        .verify_minutes(e.sec(pb::VerifyMinutesRequest {
            name: m.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(v.intact);
    let listed = wg
        .list_resolutions(e.sec(pb::ListResolutionsRequest {
            parent: g.name.clone(),
            state: pb::ResolutionState::InProgress as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.resolutions.len(), 1);
    // The etag a change returns is the stored one; a cancelled resolution takes no more progress.
    let read = wg
        .get_resolution(e.sec(pb::GetResolutionRequest {
            name: r.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .resolution
        .unwrap();
    assert_eq!(read, r2);
    let cancelled = wg
        .cancel_resolution(e.sec(pb::CancelResolutionRequest {
            name: r.name.clone(),
            etag: r2.etag.clone(),
            reason: "دیگر لازم نیست".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .resolution
        .unwrap();
    assert_eq!(cancelled.state, pb::ResolutionState::Cancelled as i32);
    let err = wg
        .report_resolution_progress(e.sec(pb::ReportResolutionProgressRequest {
            name: r.name.clone(),
            etag: String::new(),
            progress: 50,
            note: "x".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "RESOLUTION_STATE_CONFLICT");
    let second = wg
        .schedule_meeting(e.sec(pb::ScheduleMeetingRequest {
            parent: g.name.clone(),
            request_id: String::new(),
            meeting: Some(pb::Meeting {
                title: "دومین جلسه".into(),
                place: "همان".into(),
                scheduled_time: Some(ts(86400)),
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(second.number, 2);
}

async fn a_licence_revocation_flags_the_seat(b: Backend) {
    let e = env(b).await;
    let g = e.group().await;
    let (inst, licence) = e.institution(40, true).await;
    let rep = e
        .seat(
            &g,
            40,
            pb::Seat::InstitutionRepresentative,
            pb::Position::Unspecified,
            &inst,
        )
        .await
        .unwrap();
    assert!(!rep.vacant);
    e.reg
        .clone()
        .revoke_licence(e.admin(reg::RevokeLicenceRequest {
            name: licence,
            etag: String::new(),
            reason: "تخلف".into(),
        }))
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let all =
            e.wg.clone()
                .list_members(e.sec(pb::ListMembersRequest {
                    parent: g.name.clone(),
                    include_vacant: true,
                }))
                .await
                .unwrap()
                .into_inner()
                .members;
        let m = all.iter().find(|m| m.name == rep.name).unwrap();
        if m.vacant {
            assert!(m.vacancy_reason.contains("revoked"));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the seat was not flagged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seated =
        e.wg.clone()
            .list_members(e.sec(pb::ListMembersRequest {
                parent: g.name.clone(),
                include_vacant: false,
            }))
            .await
            .unwrap()
            .into_inner()
            .members;
    assert!(
        seated.iter().all(|m| m.name != rep.name),
        "a vacant seat is not listed as held"
    );
    // Members' national codes are masked for a member reading them.
    let as_member =
        e.wg.clone()
            .list_members(authed(
                e.keys.bearer(Role::Member, None),
                pb::ListMembersRequest {
                    parent: g.name.clone(),
                    include_vacant: true,
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .members;
    assert!(as_member[0].national_code.starts_with("******"));
}

async fn a_vacancy_names_the_officer_who_suspended_the_licence(b: Backend) {
    let e = env(b).await;
    let g = e.group().await;
    let (inst, licence) = e.institution(41, true).await;
    let rep = e
        .seat(
            &g,
            41,
            pb::Seat::InstitutionRepresentative,
            pb::Position::Unspecified,
            &inst,
        )
        .await
        .unwrap();
    let officer = e
        .keys
        .bearer_with(Role::RegistryOfficer, |t| t.subject = "officer-9".into());
    e.reg
        .clone()
        .suspend_licence(authed(
            officer,
            reg::SuspendLicenceRequest {
                name: licence,
                etag: String::new(),
                reason: "بررسی".into(),
            },
        ))
        .await
        .unwrap();
    let mut audit = AuditServiceClient::new(lazy(&e.services.2.uri()));
    let start = Instant::now();
    let vacated = loop {
        let records = audit
            .list_audit_records(authed(
                e.keys.bearer(Role::Auditor, None),
                ListAuditRecordsRequest {
                    resource: rep.name.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .records;
        if let Some(a) = records
            .into_iter()
            .find(|a| a.method == "meeting/licence-events")
        {
            break a;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the seat's vacancy was not audited"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The service flagged the seat, for the officer whose suspension caused it.
    assert_eq!(
        (
            vacated.actor.as_str(),
            vacated.role.as_str(),
            vacated.on_behalf_of.as_str()
        ),
        ("system", "SERVICE", "officer-9")
    );
}

async fn bad_input_names_the_field(b: Backend) {
    let e = env(b).await;
    let mut wg = e.wg.clone();
    let g = e.group().await;
    let check = |r: Result<(), tonic::Status>, field: &str| {
        let err = r.expect_err(field);
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(
            fields(&err).iter().any(|f| f == field),
            "{field} not in {:?}",
            fields(&err)
        );
    };
    check(
        wg.create_working_group(e.sec(pb::CreateWorkingGroupRequest {
            request_id: String::new(),
            working_group: Some(pb::WorkingGroup {
                province: String::new(),
                title: "t".into(),
                ..Default::default()
            }),
        }))
        .await
        .map(|_| ()),
        "working_group.province",
    );
    check(
        wg.create_working_group(e.sec(pb::CreateWorkingGroupRequest {
            request_id: String::new(),
            working_group: None,
        }))
        .await
        .map(|_| ()),
        "working_group",
    );
    let seat = |f: &dyn Fn(&mut pb::Member)| {
        let mut m = pb::Member {
            full_name: "نام".into(),
            national_code: code_for(50),
            seat: pb::Seat::Official as i32,
            position: pb::Position::ChiefInspector as i32,
            ..Default::default()
        };
        f(&mut m);
        pb::SeatMemberRequest {
            parent: g.name.clone(),
            request_id: String::new(),
            member: Some(m),
        }
    };
    check(
        wg.seat_member(e.sec(seat(&|m| m.full_name = String::new())))
            .await
            .map(|_| ()),
        "member.full_name",
    );
    check(
        wg.seat_member(e.sec(seat(&|m| m.national_code = "0076229646".into())))
            .await
            .map(|_| ()),
        "member.national_code",
    );
    check(
        wg.seat_member(e.sec(seat(&|m| m.seat = 9)))
            .await
            .map(|_| ()),
        "member.seat",
    );
    check(
        wg.seat_member(e.sec(seat(&|m| m.position = 0)))
            .await
            .map(|_| ()),
        "member.position",
    );
    check(
        wg.seat_member(e.sec(seat(&|m| {
            m.seat = pb::Seat::InstitutionRepresentative as i32;
            m.institution = "x".into();
        })))
        .await
        .map(|_| ()),
        "member.institution",
    );
    check(
        wg.seat_member(e.sec(pb::SeatMemberRequest {
            parent: "nope".into(),
            request_id: String::new(),
            member: None,
        }))
        .await
        .map(|_| ()),
        "parent",
    );
    check(
        wg.schedule_meeting(e.sec(pb::ScheduleMeetingRequest {
            parent: g.name.clone(),
            request_id: String::new(),
            meeting: Some(pb::Meeting {
                title: "t".into(),
                place: "p".into(),
                ..Default::default()
            }),
        }))
        .await
        .map(|_| ()),
        "meeting.scheduled_time",
    );
    let m = wg
        .schedule_meeting(e.sec(pb::ScheduleMeetingRequest {
            parent: g.name.clone(),
            request_id: String::new(),
            meeting: Some(pb::Meeting {
                title: "t".into(),
                place: "p".into(),
                scheduled_time: Some(ts(10)),
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    for name in [
        "",
        "working-groups/x/meetings/0",
        "working-groups/x/meetings/abc",
        "meetings/1",
    ] {
        check(
            wg.get_meeting(e.sec(pb::GetMeetingRequest { name: name.into() }))
                .await
                .map(|_| ()),
            "name",
        );
    }
    check(
        wg.record_attendance(e.sec(pb::RecordAttendanceRequest {
            name: m.name.clone(),
            etag: String::new(),
            attendance: vec![pb::Attendance {
                member: "working-groups/x/members/y".into(),
                status: 1,
                substitute_name: String::new(),
            }],
            deputy_chair: String::new(),
        }))
        .await
        .map(|_| ()),
        "attendance[0].member",
    );
    check(
        wg.set_agenda(e.sec(pb::SetAgendaRequest {
            name: m.name.clone(),
            etag: String::new(),
            items: vec![pb::AgendaItem {
                title: String::new(),
                ..Default::default()
            }],
        }))
        .await
        .map(|_| ()),
        "items[0].title",
    );
    check(
        wg.set_agenda(e.sec(pb::SetAgendaRequest {
            name: m.name.clone(),
            etag: String::new(),
            items: vec![pb::AgendaItem {
                title: "t".into(),
                subject: "users/1".into(),
                ..Default::default()
            }],
        }))
        .await
        .map(|_| ()),
        "items[0].subject",
    );
    check(
        wg.postpone_meeting(e.sec(pb::PostponeMeetingRequest {
            name: m.name.clone(),
            etag: String::new(),
            reason: String::new(),
        }))
        .await
        .map(|_| ()),
        "reason",
    );
    check(
        wg.reschedule_meeting(e.sec(pb::RescheduleMeetingRequest {
            name: m.name.clone(),
            etag: String::new(),
            scheduled_time: None,
            place: String::new(),
        }))
        .await
        .map(|_| ()),
        "scheduled_time",
    );
    check(
        wg.list_resolutions(e.sec(pb::ListResolutionsRequest {
            parent: g.name.clone(),
            state: 42,
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "state",
    );
    check(
        wg.report_resolution_progress(e.sec(pb::ReportResolutionProgressRequest {
            name: format!("{}/resolutions/x", g.name),
            etag: String::new(),
            progress: 101,
            note: String::new(),
        }))
        .await
        .map(|_| ()),
        "progress",
    );
    check(
        wg.update_working_group(e.sec(pb::UpdateWorkingGroupRequest {
            working_group: Some(g.clone()),
            update_mask: None,
        }))
        .await
        .map(|_| ()),
        "update_mask",
    );
    check(
        wg.update_working_group(e.sec(pb::UpdateWorkingGroupRequest {
            working_group: Some(g.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["province".into()],
            }),
        }))
        .await
        .map(|_| ()),
        "update_mask.paths[0]",
    );
    check(
        wg.update_working_group(e.sec(pb::UpdateWorkingGroupRequest {
            working_group: Some(pb::WorkingGroup {
                title: String::new(),
                ..g.clone()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["title".into()],
            }),
        }))
        .await
        .map(|_| ()),
        "working_group.title",
    );
    check(
        wg.list_working_groups(e.sec(pb::ListWorkingGroupsRequest {
            page_token: "x".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "page_token",
    );
    check(
        wg.list_members(e.sec(pb::ListMembersRequest {
            parent: "working-groups/".into(),
            include_vacant: false,
        }))
        .await
        .map(|_| ()),
        "parent",
    );
    check(
        wg.unseat_member(e.sec(pb::UnseatMemberRequest {
            name: "working-groups/x/members/".into(),
            etag: String::new(),
            reason: String::new(),
        }))
        .await
        .map(|_| ()),
        "name",
    );
    check(
        wg.record_resolution(e.sec(pb::RecordResolutionRequest {
            name: m.name.clone(),
            text: String::new(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "text",
    );
    check(
        wg.record_resolution(e.sec(pb::RecordResolutionRequest {
            name: m.name.clone(),
            text: "t".into(),
            deadline: Some(prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            }),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "deadline",
    );
    check(
        wg.record_resolution(e.sec(pb::RecordResolutionRequest {
            name: m.name.clone(),
            text: "t".into(),
            votes: vec![pb::CastVote {
                member: "x".into(),
                vote: 0,
            }],
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "votes[0].vote",
    );
    check(
        wg.record_resolution(e.sec(pb::RecordResolutionRequest {
            name: m.name.clone(),
            request_id: "bad id".into(),
            text: "t".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "request_id",
    );
    check(
        wg.approve_minutes(e.sec(pb::ApproveMinutesRequest {
            name: m.name.clone(),
            etag: String::new(),
            discussion: "\u{202E}".into(),
        }))
        .await
        .map(|_| ()),
        "discussion",
    );
    check(
        wg.cancel_resolution(e.sec(pb::CancelResolutionRequest {
            name: format!("{}/resolutions/x", g.name),
            etag: String::new(),
            reason: String::new(),
        }))
        .await
        .map(|_| ()),
        "reason",
    );
    check(
        wg.get_resolution(e.sec(pb::GetResolutionRequest {
            name: "resolutions/x".into(),
        }))
        .await
        .map(|_| ()),
        "name",
    );
    check(
        wg.verify_minutes(e.sec(pb::VerifyMinutesRequest { name: "x".into() }))
            .await
            .map(|_| ()),
        "name",
    );
    check(
        wg.export_minutes(e.sec(pb::ExportMinutesRequest { name: "x".into() }))
            .await
            .map(|_| ()),
        "name",
    );
    check(
        wg.record_attendance(e.sec(pb::RecordAttendanceRequest {
            name: m.name.clone(),
            etag: String::new(),
            attendance: vec![],
            deputy_chair: "working-groups/x/members/y".into(),
        }))
        .await
        .map(|_| ()),
        "deputy_chair",
    );
    // Stale etag.
    let err = wg
        .postpone_meeting(e.sec(pb::PostponeMeetingRequest {
            name: m.name.clone(),
            etag: "999".into(),
            reason: "x".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    // Roles.
    let err = wg
        .schedule_meeting(authed(
            e.keys.bearer(Role::Member, None),
            pb::ScheduleMeetingRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = wg
        .get_meeting(authed(
            e.keys.bearer(Role::JudicialOfficer, None),
            pb::GetMeetingRequest {
                name: m.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        wg.get_meeting(authed(
            e.keys.bearer(Role::Auditor, None),
            pb::GetMeetingRequest {
                name: m.name.clone()
            }
        ))
        .await
        .is_ok()
    );
}

impl Env {
    async fn schedule(&self, g: &pb::WorkingGroup, title: &str) -> pb::Meeting {
        self.wg
            .clone()
            .schedule_meeting(self.sec(pb::ScheduleMeetingRequest {
                parent: g.name.clone(),
                request_id: String::new(),
                meeting: Some(pb::Meeting {
                    title: title.into(),
                    place: "دادگستری استان اردبیل".into(),
                    scheduled_time: Some(ts(3600)),
                    ..Default::default()
                }),
            }))
            .await
            .unwrap()
            .into_inner()
            .meeting
            .unwrap()
    }

    async fn attend(
        &self,
        meeting: &str,
        present: &[&pb::Member],
    ) -> Result<pb::Meeting, tonic::Status> {
        self.wg
            .clone()
            .record_attendance(
                self.sec(pb::RecordAttendanceRequest {
                    name: meeting.into(),
                    etag: String::new(),
                    attendance: present
                        .iter()
                        .map(|m| pb::Attendance {
                            member: m.name.clone(),
                            status: pb::AttendanceStatus::Present as i32,
                            substitute_name: String::new(),
                        })
                        .collect(),
                    deputy_chair: String::new(),
                }),
            )
            .await
            .map(|r| r.into_inner().meeting.unwrap())
    }

    async fn start(&self, meeting: &str) -> pb::Meeting {
        self.wg
            .clone()
            .start_meeting(self.sec(pb::StartMeetingRequest {
                name: meeting.into(),
                etag: String::new(),
            }))
            .await
            .unwrap()
            .into_inner()
            .meeting
            .unwrap()
    }

    async fn resolve(
        &self,
        meeting: &str,
        voters: &[&pb::Member],
        responsible: &str,
    ) -> Result<pb::Resolution, tonic::Status> {
        self.wg
            .clone()
            .record_resolution(
                self.sec(pb::RecordResolutionRequest {
                    name: meeting.into(),
                    request_id: String::new(),
                    text: "ایجاد سامانهٔ ارجاع پرونده به نهادهای مردمی".into(),
                    responsible_member: responsible.into(),
                    responsible_body: String::new(),
                    deadline: Some(ts(90 * 86400)),
                    votes: voters
                        .iter()
                        .map(|m| pb::CastVote {
                            member: m.name.clone(),
                            vote: pb::Vote::For as i32,
                        })
                        .collect(),
                }),
            )
            .await
            .map(|r| r.into_inner().resolution.unwrap())
    }
}

/// `working-groups/A/{collection}/{id of B's child}`.
fn under(parent: &pb::WorkingGroup, collection: &str, child_of_other: &str) -> String {
    format!(
        "{}/{collection}/{}",
        parent.name,
        child_of_other.rsplit('/').next().unwrap()
    )
}

async fn a_child_of_another_group_is_not_found(b: Backend) {
    use pb::Position as P;
    use pb::Seat as S;
    let e = env(b).await;
    let mut wg = e.wg.clone();
    let a = e.group().await;
    let other = e.group().await;
    let a_chair = e.seat(&a, 0, S::Chair, P::Unspecified, "").await.unwrap();
    let a_official = e
        .seat(&a, 1, S::Official, P::ChiefInspector, "")
        .await
        .unwrap();
    let b_chair = e
        .seat(&other, 2, S::Chair, P::Unspecified, "")
        .await
        .unwrap();
    let b_official = e
        .seat(&other, 3, S::Official, P::ChiefInspector, "")
        .await
        .unwrap();
    // A holds one meeting; B two, the second in session with a resolution.
    let a1 = e.schedule(&a, "جلسهٔ الف").await;
    e.schedule(&other, "جلسهٔ ب ۱").await;
    let b2 = e.schedule(&other, "جلسهٔ ب ۲").await;
    assert_eq!(b2.number, 2);
    e.attend(&b2.name, &[&b_chair, &b_official]).await.unwrap();
    e.start(&b2.name).await;
    let res = e
        .resolve(&b2.name, &[&b_chair, &b_official], &b_official.name)
        .await
        .unwrap();
    assert!(res.adopted);

    let member = under(&a, "members", &b_official.name);
    let resolution = under(&a, "resolutions", &res.name);
    let meeting = format!("{}/meetings/2", a.name);
    let not_found = |r: Result<(), tonic::Status>, name: &str, call: &str| {
        let err = r.expect_err(call);
        assert_eq!(err.code(), Code::NotFound, "{call}: {err:?}");
        assert_eq!(
            err.get_error_details()
                .resource_info()
                .map(|i| i.resource_name.clone()),
            Some(name.to_owned()),
            "{call}: the name as sent"
        );
    };

    // Resolutions: read, follow-up and cancel.
    not_found(
        wg.get_resolution(e.sec(pb::GetResolutionRequest {
            name: resolution.clone(),
        }))
        .await
        .map(|_| ()),
        &resolution,
        "GetResolution",
    );
    not_found(
        wg.report_resolution_progress(e.sec(pb::ReportResolutionProgressRequest {
            name: resolution.clone(),
            etag: String::new(),
            progress: 50,
            note: "x".into(),
        }))
        .await
        .map(|_| ()),
        &resolution,
        "ReportResolutionProgress",
    );
    not_found(
        wg.cancel_resolution(e.sec(pb::CancelResolutionRequest {
            name: resolution.clone(),
            etag: String::new(),
            reason: "x".into(),
        }))
        .await
        .map(|_| ()),
        &resolution,
        "CancelResolution",
    );
    // Members.
    not_found(
        wg.unseat_member(e.sec(pb::UnseatMemberRequest {
            name: member.clone(),
            etag: String::new(),
            reason: "x".into(),
        }))
        .await
        .map(|_| ()),
        &member,
        "UnseatMember",
    );
    // Meetings: every method that takes a meeting's name.
    let calls: Vec<(&str, Result<(), tonic::Status>)> = vec![
        (
            "GetMeeting",
            wg.get_meeting(e.sec(pb::GetMeetingRequest {
                name: meeting.clone(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "RescheduleMeeting",
            wg.reschedule_meeting(e.sec(pb::RescheduleMeetingRequest {
                name: meeting.clone(),
                etag: String::new(),
                scheduled_time: Some(ts(7200)),
                place: String::new(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "PostponeMeeting",
            wg.postpone_meeting(e.sec(pb::PostponeMeetingRequest {
                name: meeting.clone(),
                etag: String::new(),
                reason: "x".into(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "CancelMeeting",
            wg.cancel_meeting(e.sec(pb::CancelMeetingRequest {
                name: meeting.clone(),
                etag: String::new(),
                reason: "x".into(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "SetAgenda",
            wg.set_agenda(e.sec(pb::SetAgendaRequest {
                name: meeting.clone(),
                etag: String::new(),
                items: vec![],
            }))
            .await
            .map(|_| ()),
        ),
        (
            "FinalizeAgenda",
            wg.finalize_agenda(e.sec(pb::FinalizeAgendaRequest {
                name: meeting.clone(),
                etag: String::new(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "RecordAttendance",
            e.attend(&meeting, &[&b_chair]).await.map(|_| ()),
        ),
        (
            "StartMeeting",
            wg.start_meeting(e.sec(pb::StartMeetingRequest {
                name: meeting.clone(),
                etag: String::new(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "RecordResolution",
            e.resolve(&meeting, &[], "").await.map(|_| ()),
        ),
        (
            "ApproveMinutes",
            wg.approve_minutes(e.sec(pb::ApproveMinutesRequest {
                name: meeting.clone(),
                etag: String::new(),
                discussion: String::new(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "VerifyMinutes",
            wg.verify_minutes(e.sec(pb::VerifyMinutesRequest {
                name: meeting.clone(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "ExportMinutes",
            wg.export_minutes(e.sec(pb::ExportMinutesRequest {
                name: meeting.clone(),
            }))
            .await
            .map(|_| ()),
        ),
    ];
    for (call, r) in calls {
        not_found(r, &meeting, call);
    }
    // B's resources are untouched.
    let kept = wg
        .get_resolution(e.sec(pb::GetResolutionRequest {
            name: res.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .resolution
        .unwrap();
    assert_eq!(
        (kept.state, kept.notes.len()),
        (pb::ResolutionState::Open as i32, 0)
    );
    let b_seated = wg
        .list_members(e.sec(pb::ListMembersRequest {
            parent: other.name.clone(),
            include_vacant: true,
        }))
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(b_seated.len(), 2, "B's official is still seated");

    // Fields that point at members: a member of B, under either group's name, is no
    // member of A's meeting.
    for foreign in [&member, &b_official.name] {
        let err = wg
            .record_attendance(e.sec(pb::RecordAttendanceRequest {
                name: a1.name.clone(),
                etag: String::new(),
                attendance: vec![pb::Attendance {
                    member: foreign.clone(),
                    status: pb::AttendanceStatus::Present as i32,
                    substitute_name: String::new(),
                }],
                deputy_chair: foreign.clone(),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{foreign}");
        assert_eq!(
            fields(&err),
            ["attendance[0].member", "deputy_chair"],
            "{foreign}"
        );
    }
    e.attend(&a1.name, &[&a_chair, &a_official]).await.unwrap();
    e.start(&a1.name).await;
    for foreign in [&member, &b_official.name] {
        let err = wg
            .record_resolution(e.sec(pb::RecordResolutionRequest {
                name: a1.name.clone(),
                text: "t".into(),
                responsible_member: foreign.clone(),
                votes: vec![pb::CastVote {
                    member: foreign.clone(),
                    vote: pb::Vote::For as i32,
                }],
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{foreign}");
        assert_eq!(
            fields(&err),
            ["votes[0].member", "responsible_member"],
            "{foreign}"
        );
    }
    // A list of A's resolutions filtered on a member of B is refused, not answered from B.
    let err = wg
        .list_resolutions(e.sec(pb::ListResolutionsRequest {
            parent: a.name.clone(),
            responsible_member: b_official.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["responsible_member"]);
    let none = wg
        .list_resolutions(e.sec(pb::ListResolutionsRequest {
            parent: a.name.clone(),
            responsible_member: member.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(none.resolutions.is_empty());
}

async fn the_minutes_keep_the_roster_of_the_meeting(b: Backend) {
    let e = env(b).await;
    let mut wg = e.wg.clone();
    let (g, members, institutions) = e.seed_group().await;
    // members[6] represents institutions[0].
    assert_eq!(members[6].institution, institutions[0].0);
    let m = e.schedule(&g, "نخستین جلسه").await;
    let voters: Vec<&pb::Member> = members[..9].iter().collect();
    let mut present = voters.clone();
    present.push(&members[12]);
    e.attend(&m.name, &present).await.unwrap();
    let started = e.start(&m.name).await;
    let q = started.quorum.clone().unwrap();
    assert_eq!((q.voting_members, q.voting_present, q.met), (12, 9, true));
    let r = e.resolve(&m.name, &voters, &members[4].name).await.unwrap();
    assert_eq!((r.votes_for, r.adopted), (9, true));

    // The first institution's licence is suspended: its representative's seat falls vacant,
    // as the licence-event consumer flags it.
    e.reg
        .clone()
        .suspend_licence(e.admin(reg::SuspendLicenceRequest {
            name: institutions[0].1.clone(),
            etag: String::new(),
            reason: "عدم ارائهٔ گزارش سالانه".into(),
        }))
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let all = wg
            .list_members(e.sec(pb::ListMembersRequest {
                parent: g.name.clone(),
                include_vacant: true,
            }))
            .await
            .unwrap()
            .into_inner()
            .members;
        if all.iter().any(|x| x.name == members[6].name && x.vacant) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the seat was not flagged vacant"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The meeting in session still counts the seats it started with: the representative
    // sat and votes in it.
    let during = wg
        .get_meeting(e.sec(pb::GetMeetingRequest {
            name: m.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    let q = during.quorum.clone().unwrap();
    assert_eq!((q.voting_members, q.voting_present), (12, 9), "{q:?}");
    let r2 = e.resolve(&m.name, &voters, "").await.unwrap();
    assert_eq!((r2.votes_for, r2.adopted), (9, true));

    let closed = wg
        .approve_minutes(e.sec(pb::ApproveMinutesRequest {
            name: m.name.clone(),
            etag: String::new(),
            discussion: "گزارش دبیر".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    let q = closed.quorum.clone().unwrap();
    assert_eq!(
        (q.voting_members, q.voting_present, q.required, q.met),
        (12, 9, 7, true),
        "{q:?}"
    );
    assert!(
        q.explanation.starts_with("9 of 12 voting members present"),
        "{}",
        q.explanation
    );
    // The roster the meeting was held with is part of the minutes, without national codes.
    assert_eq!(closed.roster.len(), 13);
    let rep = closed
        .roster
        .iter()
        .find(|x| x.name == members[6].name)
        .unwrap();
    assert!(!rep.vacant, "the seat was held at the meeting");
    assert!(closed.roster.iter().all(|x| x.national_code.is_empty()));
    assert_eq!(closed.resolutions.len(), 2);
    assert!(closed.resolutions.iter().all(|r| r.votes_for == 9));
    let v = wg
        .verify_minutes(e.sec(pb::VerifyMinutesRequest {
            name: m.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(v.intact && v.stored_sha256 == closed.content_sha256);
    let read = wg
        .get_meeting(e.sec(pb::GetMeetingRequest {
            name: m.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(read.quorum, closed.quorum);
    let html = wg
        .export_minutes(e.sec(pb::ExportMinutesRequest {
            name: m.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .html;
    assert!(html.contains("حد نصاب: ۹ نفر از ۱۲ عضو"), "{html}");
    assert!(html.contains(&members[6].full_name));

    // A meeting scheduled after the vacancy sees the new roster: eleven voting seats.
    let next = e.schedule(&g, "دومین جلسه").await;
    assert_eq!(next.quorum.unwrap().voting_members, 11);
    let next = e.attend(&next.name, &present).await.unwrap();
    let q = next.quorum.unwrap();
    assert_eq!(
        (q.voting_members, q.voting_present, q.required),
        (11, 8, 6),
        "{q:?}"
    );
    assert!(
        next.roster.is_empty(),
        "no roster before the meeting starts"
    );
}

/// Every create of the meeting service, sent by two secretaries under the same request id:
/// each gets its own resource, and each one's retry replays its own.
async fn request_ids_belong_to_their_caller(b: Backend) {
    use pb::Position as P;
    use pb::Seat as S;
    let e = env(b).await;
    let mut wg = e.wg.clone();
    let as_sec = |sub: &str| {
        e.keys
            .bearer_with(Role::Secretary, |r| r.subject = sub.into())
    };
    let (sa, sb) = (as_sec("secretary-a"), as_sec("secretary-b"));
    let group_req = pb::CreateWorkingGroupRequest {
        request_id: "story-group-1".into(),
        working_group: Some(pb::WorkingGroup {
            province: "اردبیل".into(),
            title: "کارگروه استانی".into(),
            ..Default::default()
        }),
    };
    let create_group = |who: &String| {
        let mut wg = e.wg.clone();
        let req = authed(who.clone(), group_req.clone());
        async move {
            wg.create_working_group(req)
                .await
                .unwrap()
                .into_inner()
                .working_group
                .unwrap()
        }
    };
    let ga = create_group(&sa).await;
    let gb = create_group(&sb).await;
    assert_ne!(ga.name, gb.name);
    assert_eq!(create_group(&sa).await.name, ga.name);

    // SeatMember: both secretaries seat a chair and an official under the same ids.
    let seat = |g: &pb::WorkingGroup, n: u32, seat: S, position: P| pb::SeatMemberRequest {
        parent: g.name.clone(),
        request_id: format!("story-seat-{n}"),
        member: Some(pb::Member {
            full_name: format!("عضو شماره {n}"),
            national_code: code_for(n),
            seat: seat as i32,
            position: position as i32,
            position_title: format!("سمت {n}"),
            ..Default::default()
        }),
    };
    let mut seated = Vec::new();
    for (g, who) in [(&ga, &sa), (&gb, &sb)] {
        let mut names = Vec::new();
        for (n, s, p) in [
            (1, S::Chair, P::Unspecified),
            (2, S::Official, P::ChiefInspector),
        ] {
            let m = wg
                .seat_member(authed(who.clone(), seat(g, n, s, p)))
                .await
                .unwrap();
            let m = m.into_inner().member.unwrap();
            assert!(m.name.starts_with(&g.name), "{} in {}", m.name, g.name);
            names.push(m.name);
        }
        seated.push(names);
    }
    let again = wg
        .seat_member(authed(sa.clone(), seat(&ga, 1, S::Chair, P::Unspecified)))
        .await;
    assert_eq!(
        again.unwrap().into_inner().member.unwrap().name,
        seated[0][0]
    );

    // ScheduleMeeting and, once each meeting is in session, RecordResolution.
    let mut resolutions = Vec::new();
    for (i, (g, who)) in [(&ga, &sa), (&gb, &sb)].into_iter().enumerate() {
        let schedule = pb::ScheduleMeetingRequest {
            parent: g.name.clone(),
            request_id: "story-meeting-1".into(),
            meeting: Some(pb::Meeting {
                title: "نخستین جلسه".into(),
                place: "دادگستری استان اردبیل".into(),
                scheduled_time: Some(ts(3600)),
                ..Default::default()
            }),
        };
        let m = wg
            .schedule_meeting(authed(who.clone(), schedule.clone()))
            .await
            .unwrap();
        let m = m.into_inner().meeting.unwrap();
        assert!(m.name.starts_with(&g.name));
        let replay = wg
            .schedule_meeting(authed(who.clone(), schedule))
            .await
            .unwrap();
        assert_eq!(replay.into_inner().meeting.unwrap().name, m.name);
        wg.set_agenda(authed(
            who.clone(),
            pb::SetAgendaRequest {
                name: m.name.clone(),
                etag: String::new(),
                items: vec![pb::AgendaItem {
                    title: "گزارش ارجاع‌ها".into(),
                    standing_report: true,
                    ..Default::default()
                }],
            },
        ))
        .await
        .unwrap();
        wg.finalize_agenda(authed(
            who.clone(),
            pb::FinalizeAgendaRequest {
                name: m.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
        let present = seated[i]
            .iter()
            .map(|member| pb::Attendance {
                member: member.clone(),
                status: pb::AttendanceStatus::Present as i32,
                substitute_name: String::new(),
            })
            .collect();
        wg.record_attendance(authed(
            who.clone(),
            pb::RecordAttendanceRequest {
                name: m.name.clone(),
                etag: String::new(),
                attendance: present,
                deputy_chair: String::new(),
            },
        ))
        .await
        .unwrap();
        wg.start_meeting(authed(
            who.clone(),
            pb::StartMeetingRequest {
                name: m.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
        let resolve = pb::RecordResolutionRequest {
            name: m.name.clone(),
            request_id: "story-resolution-1".into(),
            text: "تشکیل دبیرخانهٔ کارگروه".into(),
            votes: seated[i]
                .iter()
                .map(|member| pb::CastVote {
                    member: member.clone(),
                    vote: pb::Vote::For as i32,
                })
                .collect(),
            ..Default::default()
        };
        let r = wg
            .record_resolution(authed(who.clone(), resolve.clone()))
            .await
            .unwrap();
        let r = r.into_inner().resolution.unwrap();
        let replay = wg
            .record_resolution(authed(who.clone(), resolve))
            .await
            .unwrap();
        assert_eq!(replay.into_inner().resolution.unwrap().name, r.name);
        resolutions.push(r.name);
    }
    assert_ne!(resolutions[0], resolutions[1]);
    assert!(resolutions[1].starts_with(&gb.name));
}

/// Bytes that decode to no message, sent to every method of the meeting service and of
/// its audit service, are INVALID_ARGUMENT with the usual details, never INTERNAL.
async fn malformed_bodies_are_invalid_argument(b: Backend) {
    let e = env(b).await;
    let ch = lazy(&e.services.2.uri());
    let bearer = e.keys.bearer(Role::Admin, None);
    let services = [
        "mosharekat.meeting.v1.MeetingService",
        "mosharekat.common.v1.AuditService",
    ];
    let n =
        mosharekat_platform::testing::malformed_bodies_are_invalid_argument(ch, &bearer, &services)
            .await;
    assert!(n >= 40, "{n} calls checked");
}

// ---------- the minutes' hash, its form and its version ----------

impl Env {
    async fn verify(&self, meeting: &str) -> Result<pb::VerifyMinutesResponse, tonic::Status> {
        self.wg
            .clone()
            .verify_minutes(self.sec(pb::VerifyMinutesRequest {
                name: meeting.into(),
            }))
            .await
            .map(|r| r.into_inner())
    }

    async fn approve(&self, meeting: &str, discussion: &str) -> pb::Meeting {
        self.wg
            .clone()
            .approve_minutes(self.sec(pb::ApproveMinutesRequest {
                name: meeting.into(),
                etag: String::new(),
                discussion: discussion.into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .meeting
            .unwrap()
    }

    async fn get(&self, meeting: &str) -> pb::Meeting {
        self.wg
            .clone()
            .get_meeting(self.sec(pb::GetMeetingRequest {
                name: meeting.into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .meeting
            .unwrap()
    }

    async fn export(&self, meeting: &str) -> pb::ExportMinutesResponse {
        self.wg
            .clone()
            .export_minutes(self.sec(pb::ExportMinutesRequest {
                name: meeting.into(),
            }))
            .await
            .unwrap()
            .into_inner()
    }

    /// The meeting service's database, opened beside the service as anyone with access
    /// to its files or its server could.
    async fn meeting_db(&self) -> Db {
        Db::connect(&self._dbs[2].url, &DbOptions::default())
            .await
            .unwrap()
    }
}

/// The row id of a meeting (`{group id}/{number}`).
fn row_id(meeting: &str) -> String {
    let parts: Vec<&str> = meeting.split('/').collect();
    mosharekat_meeting::store::meeting_id(parts[1], parts[3].parse().unwrap())
}

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

async fn set_hash_version(db: &Db, meeting: &str, version: i32) {
    use sea_orm::ConnectionTrait as _;
    db.conn()
        .execute_raw(db.stmt(
            "UPDATE meetings SET minutes_hash_version = $1 WHERE id = $2",
            [version.into(), row_id(meeting).into()],
        ))
        .await
        .unwrap();
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
    assert_eq!(closed.minutes_hash_version, 2);
    // The hash is of the canonical form of the minutes the API returns.
    assert_eq!(
        closed.content_sha256,
        MinutesContent::of(&closed).unwrap().sha256()
    );
    let v = e.verify(&m.name).await.unwrap();
    assert!(v.intact, "{v:?}");
    assert_eq!(v.minutes_hash_version, 2);
    assert_eq!(
        (&v.stored_sha256, &v.computed_sha256),
        (&closed.content_sha256, &closed.content_sha256)
    );
    assert_eq!(e.get(&m.name).await.minutes_hash_version, 2);
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
    assert_eq!(listed[0].minutes_hash_version, 2);
    let x = e.export(&m.name).await;
    assert_eq!(
        (x.minutes_hash_version, &x.content_sha256),
        (2, &closed.content_sha256)
    );
    assert!(
        x.html.contains(&format!(
            "SHA-256 (v2): <code>{}</code>",
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
    set_hash_version(&db, &m.name, 2).await;
    assert!(e.verify(&m.name).await.unwrap().intact);
}

/// The minutes' hash as the release before the canonical form took it: its
/// `domain::canonical_sha256`, copied as it was.
fn previous_release_sha256(meeting: &pb::Meeting) -> String {
    use prost::Message as _;
    use sha2::{Digest, Sha256};
    let mut m = meeting.clone();
    m.etag.clear();
    m.content_sha256.clear();
    for r in &mut m.resolutions {
        r.etag.clear();
        r.overdue = false;
        r.state = 0;
        r.progress = 0;
        r.notes.clear();
    }
    hex::encode(Sha256::digest(m.encode_to_vec()))
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
    use sea_orm_migration::MigratorTrait as _;

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
            term_start: Some(ts(-400 * 86400)),
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
        scheduled_time: Some(ts(-600)),
        place: "دادگستری استان اردبیل".into(),
        state: pb::MeetingState::InSession as i32,
        attendance: vec![present(0), present(1)],
        quorum: Some(quorum),
        start_time: Some(ts(-60)),
        roster,
        ..Default::default()
    };

    // The previous release's schema and rows, written with its statements.
    let mdb = TestDb::new(b).await.unwrap();
    {
        let db = Db::connect(&mdb.url, &DbOptions::default()).await.unwrap();
        // In one write transaction, as the service migrates.
        let txn = db.begin_write().await.unwrap();
        Migrator::up(&*txn, Some(PREVIOUS_RELEASE_MIGRATIONS))
            .await
            .unwrap();
        txn.commit().await.unwrap();
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
    assert!(
        x.html
            .contains(&format!("SHA-256 (v1): <code>{old_hash}</code>"))
    );
    assert_eq!(e.get(&in_session.name).await.minutes_hash_version, 0);

    // The meeting in session during the upgrade is approved in the canonical form.
    let closed = e.approve(&in_session.name, "بحث اعضا").await;
    assert_eq!(closed.minutes_hash_version, 2);
    let v = e.verify(&in_session.name).await.unwrap();
    assert!(v.intact && v.minutes_hash_version == 2, "{v:?}");
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

/// The stored record of row `id` of `table`, as JSON.
async fn stored(db: &Db, table: &str, id: &str) -> serde_json::Value {
    use sea_orm::ConnectionTrait as _;
    let row = db
        .conn()
        .query_one_raw(db.stmt(
            &format!("SELECT record FROM {table} WHERE id = $1"),
            [id.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    serde_json::from_str(&row.try_get::<String>("", "record").unwrap()).unwrap()
}

async fn restore(db: &Db, table: &str, id: &str, v: &serde_json::Value) {
    use sea_orm::ConnectionTrait as _;
    db.conn()
        .execute_raw(db.stmt(
            &format!("UPDATE {table} SET record = $1 WHERE id = $2"),
            [v.to_string().into(), id.into()],
        ))
        .await
        .unwrap();
}

/// During a rolling upgrade a newer replica writes fields this release does not know; a
/// change made by this release keeps them, and the newer schema number, as they were.
async fn a_field_written_by_a_newer_release_survives_a_change(b: Backend) {
    use pb::Position as P;
    use pb::Seat as S;
    let e = env(b).await;
    let db = e.meeting_db().await;
    let g = e.group().await;
    let chair = e.seat(&g, 0, S::Chair, P::Unspecified, "").await.unwrap();
    let official = e
        .seat(&g, 1, S::Official, P::ChiefInspector, "")
        .await
        .unwrap();
    let m = e.schedule(&g, "جلسهٔ ارتقا").await;
    let gid = g.name.rsplit('/').next().unwrap().to_owned();
    let future = serde_json::json!({"sessions": [{"room": "۲"}], "note": "از نسخهٔ بعد"});
    for (table, id) in [
        ("working_groups", gid.clone()),
        ("meetings", row_id(&m.name)),
    ] {
        let mut v = stored(&db, table, &id).await;
        assert_eq!(v["schema"], 1, "{table}");
        v["schema"] = 2.into();
        v["from_the_future"] = future.clone();
        restore(&db, table, &id, &v).await;
    }

    // Changed by this release: the group's title, the meeting's attendance; then started.
    let mut wg = e.wg.clone();
    let updated = wg
        .update_working_group(e.sec(pb::UpdateWorkingGroupRequest {
            working_group: Some(pb::WorkingGroup {
                name: g.name.clone(),
                title: "کارگروه استانی (ویرایش)".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["title".into()],
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .working_group
        .unwrap();
    assert_eq!(updated.etag, "2");
    e.attend(&m.name, &[&chair, &official]).await.unwrap();
    e.start(&m.name).await;
    for (table, id) in [("working_groups", gid), ("meetings", row_id(&m.name))] {
        let v = stored(&db, table, &id).await;
        assert_eq!(v["from_the_future"], future, "{table}: {v}");
        assert_eq!(v["schema"], 2, "{table}");
    }
    let v = stored(&db, "working_groups", g.name.rsplit('/').next().unwrap()).await;
    assert_eq!(v["title"], "کارگروه استانی (ویرایش)");
    let v = stored(&db, "meetings", &row_id(&m.name)).await;
    assert_eq!(v["state"], "IN_SESSION");
}
