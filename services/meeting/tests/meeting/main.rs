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
use mosharekat_meeting::canonical::MinutesContentV3;
use mosharekat_meeting::testing::RunningMeeting;
use mosharekat_platform::auth::Role;
use mosharekat_platform::db::{Db, DbOptions};
use mosharekat_platform::testing::{Backend, TestDb, TestKeys};
use mosharekat_referral::testing::RunningReferral;
use mosharekat_registry::testing::RunningRegistry;
use mosharekat_testkit::{
    ardabil_institution, ardabil_licence, ardabil_working_group, authed, fields, invalid_field,
    lazy, legal_id, national_code, on_both_databases, reason, register, secs_from_now,
    victim_and_accused,
};
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

mod bad_input;
mod browser;
mod deadlines;
mod fixtures;
mod idempotency;
mod meetings;
mod minutes_hash;
mod notifications;
mod practice;
mod public_record;
mod roles;
mod scoping;
mod seats;
mod storage;

struct Env {
    keys: TestKeys,
    _dbs: Vec<TestDb>,
    services: (RunningRegistry, RunningReferral, RunningMeeting),
    reg: RegistryServiceClient<Channel>,
    cases: ReferralServiceClient<Channel>,
    wg: MeetingServiceClient<Channel>,
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

fn code_for(n: u32) -> String {
    national_code(200_000 + n * 13)
}

/// A charity of Ardabil: the institutions of the meeting tests.
fn charity(
    display_name: String,
    national_id: String,
    registration_number: String,
    areas: Vec<i32>,
) -> reg::Institution {
    reg::Institution {
        kind: reg::InstitutionKind::Charity as i32,
        ..ardabil_institution(display_name, national_id, registration_number, areas)
    }
}

/// Member `n` of `g` in `seat` (and `position`), asked for under `request_id`.
fn seat_request(
    g: &pb::WorkingGroup,
    n: u32,
    seat: pb::Seat,
    position: pb::Position,
    request_id: String,
) -> pb::SeatMemberRequest {
    pb::SeatMemberRequest {
        parent: g.name.clone(),
        request_id,
        member: Some(pb::Member {
            full_name: format!("عضو شماره {n}"),
            national_code: code_for(n),
            seat: seat as i32,
            position: position as i32,
            position_title: format!("سمت {n}"),
            ..Default::default()
        }),
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
        let areas = vec![
            ActivityArea::Reconciliation as i32,
            ActivityArea::Family as i32,
        ];
        let licence = licensed
            .then(|| ardabil_licence(areas.clone(), &[reg::PermittedAction::AcceptReferrals]));
        let r = register(
            &self.reg,
            &self.keys.bearer(Role::Admin, None),
            charity(
                format!("نهاد همکار {n}"),
                legal_id(16, 30_000 + n),
                n.to_string(),
                areas,
            ),
            licence,
        )
        .await;
        let licence = r.licence_name();
        (r.institution.name, licence)
    }

    async fn group(&self) -> pb::WorkingGroup {
        self.wg
            .clone()
            .create_working_group(self.sec(pb::CreateWorkingGroupRequest {
                request_id: String::new(),
                working_group: Some(ardabil_working_group()),
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
        let mut req = seat_request(g, n, seat, position, String::new());
        req.member.as_mut().unwrap().institution = institution.into();
        self.wg
            .clone()
            .seat_member(self.sec(req))
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

impl Env {
    async fn schedule(&self, g: &pb::WorkingGroup, title: &str) -> pb::Meeting {
        self.schedule_at(g, title, "دادگستری استان اردبیل", 3600)
            .await
    }

    /// A meeting of `g` at `place`, `in_secs` from now.
    async fn schedule_at(
        &self,
        g: &pb::WorkingGroup,
        title: &str,
        place: &str,
        in_secs: i64,
    ) -> pb::Meeting {
        self.wg
            .clone()
            .schedule_meeting(self.sec(pb::ScheduleMeetingRequest {
                parent: g.name.clone(),
                request_id: String::new(),
                meeting: Some(pb::Meeting {
                    title: title.into(),
                    place: place.into(),
                    scheduled_time: Some(secs_from_now(in_secs)),
                    ..Default::default()
                }),
            }))
            .await
            .unwrap()
            .into_inner()
            .meeting
            .unwrap()
    }

    /// The secretary sets the agenda of `m` (unconditionally: no etag).
    async fn set_agenda(
        &self,
        m: &pb::Meeting,
        items: Vec<pb::AgendaItem>,
    ) -> Result<pb::Meeting, tonic::Status> {
        let req = pb::SetAgendaRequest {
            name: m.name.clone(),
            etag: String::new(),
            items,
        };
        let r = self.wg.clone().set_agenda(self.sec(req)).await;
        r.map(|r| r.into_inner().meeting.unwrap())
    }

    /// The registry revokes `licence` (for a violation).
    async fn revoke(&self, licence: &str) {
        let req = reg::RevokeLicenceRequest {
            name: licence.into(),
            etag: String::new(),
            reason: "تخلف".into(),
        };
        self.reg
            .clone()
            .revoke_licence(self.admin(req))
            .await
            .unwrap();
    }

    /// The members of `g`, the vacated seats too when `include_vacant`.
    async fn members(&self, g: &pb::WorkingGroup, include_vacant: bool) -> Vec<pb::Member> {
        let req = pb::ListMembersRequest {
            parent: g.name.clone(),
            include_vacant,
        };
        let r = self.wg.clone().list_members(self.sec(req)).await;
        r.unwrap().into_inner().members
    }

    /// `member` of `g` once its seat is flagged vacant (the licence consumer does it in
    /// the background); fails the test if that takes longer than `within`.
    async fn vacated(&self, g: &pb::WorkingGroup, member: &str, within: Duration) -> pb::Member {
        let start = Instant::now();
        loop {
            let all = self.members(g, true).await;
            if let Some(m) = all.into_iter().find(|m| m.name == member && m.vacant) {
                return m;
            }
            assert!(
                start.elapsed() < within,
                "{member}: the seat was not flagged vacant"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A family dispute the centre refers to `institution`, for an agenda to point at.
    async fn refer(&self, institution: &str, summary: &str) -> rf::Referral {
        self.cases
            .clone()
            .create_referral(authed(
                self.keys.bearer(Role::CenterOfficer, None),
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
                        summary: summary.into(),
                        institution: institution.into(),
                        agreements: mosharekat_testkit::agreements_of(1),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .referral
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
                    deadline: Some(secs_from_now(90 * 86400)),
                    votes: voters
                        .iter()
                        .map(|m| pb::CastVote {
                            member: m.name.clone(),
                            vote: pb::Vote::For as i32,
                        })
                        .collect(),
                    ..Default::default()
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
