//! The referral service served for real beside a real registry, both in-process on
//! ephemeral ports with fresh databases, called over gRPC; on SQLite and on PostgreSQL.

use std::time::{Duration, Instant};

use mosharekat_api::common::v1::audit_service_client::AuditServiceClient;
use mosharekat_api::common::v1::{
    ActivityArea, DocumentRef, ListAuditRecordsRequest, Party, PartyRole,
};
use mosharekat_api::referral::v1 as pb;
use mosharekat_api::referral::v1::referral_service_client::ReferralServiceClient;
use mosharekat_api::registry::v1 as reg;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use mosharekat_persian::ids::legal_entity_check_digit;
use mosharekat_platform::auth::Role;
use mosharekat_platform::clock::Clock;
use mosharekat_platform::testing::{Backend, TestDb, TestKeys};
use mosharekat_referral::testing::RunningReferral;
use mosharekat_registry::testing::RunningRegistry;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

struct Env {
    keys: TestKeys,
    reg_db: TestDb,
    ref_db: TestDb,
    registry: Option<RunningRegistry>,
    referral: Option<RunningReferral>,
    reg: RegistryServiceClient<Channel>,
    cases: ReferralServiceClient<Channel>,
}

fn lazy(uri: &str) -> Channel {
    Channel::from_shared(uri.to_owned()).unwrap().connect_lazy()
}

async fn env(b: Backend) -> Env {
    env_with_clock(b, Clock::system()).await
}

/// The services, the referral service reading the time of day from `clock`.
async fn env_with_clock(b: Backend, clock: Clock) -> Env {
    let keys = TestKeys::new().unwrap();
    let reg_db = TestDb::new(b).await.unwrap();
    let ref_db = TestDb::new(b).await.unwrap();
    let registry = RunningRegistry::start(RunningRegistry::settings(&reg_db.url, &keys.public_key))
        .await
        .unwrap();
    let referral = RunningReferral::start_with_clock(
        RunningReferral::settings(
            &ref_db.url,
            &keys.public_key,
            &keys.private_key,
            &registry.uri(),
        ),
        clock,
    )
    .await
    .unwrap();
    Env {
        reg: RegistryServiceClient::new(lazy(&registry.uri())),
        cases: ReferralServiceClient::new(lazy(&referral.uri())),
        keys,
        reg_db,
        ref_db,
        registry: Some(registry),
        referral: Some(referral),
    }
}

async fn start_referral(keys: &TestKeys, db: &TestDb, registry_uri: &str) -> RunningReferral {
    RunningReferral::start(RunningReferral::settings(
        &db.url,
        &keys.public_key,
        &keys.private_key,
        registry_uri,
    ))
    .await
    .unwrap()
}

fn authed<T>(bearer: String, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", bearer.parse().unwrap());
    r
}

fn fields(s: &tonic::Status) -> Vec<String> {
    s.get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

fn reason(s: &tonic::Status) -> String {
    s.get_error_details()
        .error_info()
        .map(|e| e.reason.clone())
        .unwrap_or_default()
}

fn secs(d: Duration) -> prost_types::Timestamp {
    let t = std::time::SystemTime::now() + d;
    prost_types::Timestamp {
        seconds: t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64,
        nanos: 0,
    }
}

/// A registered institution: name, id, and its licence's name.
struct Inst {
    name: String,
    id: String,
    licence: String,
}

impl Env {
    fn as_role<T>(&self, role: Role, msg: T) -> Request<T> {
        authed(self.keys.bearer(role, None), msg)
    }
    fn as_inst<T>(&self, i: &Inst, msg: T) -> Request<T> {
        authed(self.keys.bearer(Role::Institution, Some(&i.id)), msg)
    }

    async fn institution(&self, n: u32, actions: &[reg::PermittedAction]) -> Inst {
        let ten = format!("15{:08}", 20_000 + n);
        let national_id = format!("{ten}{}", legal_entity_check_digit(&ten).unwrap());
        let mut c = self.reg.clone();
        let inst = c
            .create_institution(self.as_role(
                Role::RegistryOfficer,
                reg::CreateInstitutionRequest {
                    request_id: String::new(),
                    institution: Some(reg::Institution {
                        display_name: format!("کانون صلح و سازش {n}"),
                        kind: reg::InstitutionKind::Ngo as i32,
                        national_id,
                        registration_number: n.to_string(),
                        registering_authority: "اداره ثبت".into(),
                        province: "اردبیل".into(),
                        city: "اردبیل".into(),
                        activity_areas: vec![
                            ActivityArea::Reconciliation as i32,
                            ActivityArea::Women as i32,
                            ActivityArea::Family as i32,
                        ],
                        ..Default::default()
                    }),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .institution
            .unwrap();
        let l = c
            .create_licence(self.as_role(
                Role::RegistryOfficer,
                reg::CreateLicenceRequest {
                    parent: inst.name.clone(),
                    request_id: String::new(),
                    licence: Some(reg::Licence {
                        activity_areas: vec![
                            ActivityArea::Reconciliation as i32,
                            ActivityArea::Women as i32,
                            ActivityArea::Family as i32,
                        ],
                        permitted_actions: actions.iter().map(|a| *a as i32).collect(),
                        province: "اردبیل".into(),
                        valid_until: Some(secs(Duration::from_secs(365 * 86400))),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .licence
            .unwrap();
        c.approve_licence(self.as_role(
            Role::RegistryOfficer,
            reg::ApproveLicenceRequest {
                name: l.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
        Inst {
            id: inst.name.trim_start_matches("institutions/").to_owned(),
            name: inst.name,
            licence: l.name,
        }
    }

    async fn revoke(&self, i: &Inst) {
        self.reg
            .clone()
            .revoke_licence(self.as_role(
                Role::RegistryOfficer,
                reg::RevokeLicenceRequest {
                    name: i.licence.clone(),
                    etag: String::new(),
                    reason: "تخلف".into(),
                },
            ))
            .await
            .unwrap();
    }

    async fn offer(&self, to: &Inst) -> Result<pb::Referral, tonic::Status> {
        self.cases
            .clone()
            .create_referral(self.as_role(
                Role::CenterOfficer,
                pb::CreateReferralRequest {
                    request_id: String::new(),
                    referral: Some(dispute(to)),
                },
            ))
            .await
            .map(|r| r.into_inner().referral.unwrap())
    }
}

fn dispute(to: &Inst) -> pb::Referral {
    pb::Referral {
        source: pb::ReferralSource::DisputeResolutionCenter as i32,
        source_case_number: "۱۴۰۵-۱۲۳".into(),
        kind: pb::ReferralKind::Reconciliation as i32,
        activity_area: ActivityArea::Family as i32,
        province: "اردبیل".into(),
        parties: vec![
            Party {
                full_name: "حسن محمدی".into(),
                role: PartyRole::Disputant as i32,
                national_code: "0076229645".into(),
                ..Default::default()
            },
            Party {
                full_name: "رضا کریمی".into(),
                role: PartyRole::Disputant as i32,
                ..Default::default()
            },
        ],
        summary: "اختلاف ملکی میان همسایگان".into(),
        institution: to.name.clone(),
        ..Default::default()
    }
}

fn complaint(kind: pb::FilingKind, with_consent: bool) -> pb::Filing {
    pb::Filing {
        kind: kind as i32,
        activity_area: ActivityArea::Women as i32,
        authority: "دادسرای عمومی و انقلاب اردبیل".into(),
        province: "اردبیل".into(),
        subject: "شکایت از خشونت خانگی".into(),
        description: "شرح ماجرا".into(),
        parties: vec![
            Party {
                full_name: "مریم".into(),
                role: PartyRole::Victim as i32,
                ..Default::default()
            },
            Party {
                full_name: "متهم".into(),
                role: PartyRole::Accused as i32,
                ..Default::default()
            },
        ],
        documents: vec![DocumentRef {
            title: "گزارش پزشکی قانونی".into(),
            sha256: "ab".repeat(32),
            size_bytes: 1024,
            media_type: "application/pdf".into(),
        }],
        consents: if with_consent {
            vec![pb::Consent {
                party_index: 0,
                given_by: "مریم".into(),
                basis: pb::ConsentBasis::Victim as i32,
                time: Some(secs(Duration::ZERO)),
                document: Some(DocumentRef {
                    title: "رضایت‌نامه".into(),
                    sha256: "cd".repeat(32),
                    size_bytes: 10,
                    media_type: "application/pdf".into(),
                }),
            }]
        } else {
            vec![]
        },
        ..Default::default()
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
    overdue_follows_the_services_clock,
    a_licensed_institution_files_and_the_judiciary_registers_and_closes,
    an_institution_without_report_crime_is_refused,
    a_referral_is_offered_accepted_progressed_and_resolved,
    revoking_the_licence_recalls_open_referrals,
    recall_happens_when_the_referral_service_was_down,
    a_recall_names_the_officer_who_suspended_the_licence,
    registry_down_fails_fast_and_recovers,
    institutions_see_only_their_own,
    retried_creates_make_one_row,
    bad_input_names_the_field,
    request_ids_belong_to_their_caller,
    malformed_bodies_are_invalid_argument,
    a_sealed_party_is_masked_for_every_other_role,
    every_read_is_recorded_and_auditors_list_it,
    what_recording_a_read_costs,
    a_peer_connection_reaching_its_age_fails_no_call,
);

async fn a_licensed_institution_files_and_the_judiciary_registers_and_closes(b: Backend) {
    let e = env(b).await;
    let inst = e
        .institution(
            1,
            &[
                reg::PermittedAction::FileComplaint,
                reg::PermittedAction::ReportCrime,
            ],
        )
        .await;
    let mut c = e.cases.clone();
    let f = c
        .create_filing(e.as_inst(
            &inst,
            pb::CreateFilingRequest {
                request_id: String::new(),
                filing: Some(complaint(pb::FilingKind::Complaint, false)),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(
        (f.state, f.institution.as_str()),
        (pb::FilingState::Draft as i32, inst.name.as_str())
    );
    // No consent recorded yet: refused with the article-66 reason.
    let err = c
        .submit_filing(e.as_inst(
            &inst,
            pb::SubmitFilingRequest {
                name: f.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "VICTIM_CONSENT_REQUIRED")
    );
    // The draft is completed with the victim's consent.
    let with = complaint(pb::FilingKind::Complaint, true);
    let f = c
        .update_filing(e.as_inst(
            &inst,
            pb::UpdateFilingRequest {
                filing: Some(pb::Filing {
                    name: f.name.clone(),
                    etag: f.etag.clone(),
                    ..with
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["consents".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    // A judicial officer does not see drafts.
    let err = c
        .get_filing(e.as_role(
            Role::JudicialOfficer,
            pb::GetFilingRequest {
                name: f.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let f = c
        .submit_filing(e.as_inst(
            &inst,
            pb::SubmitFilingRequest {
                name: f.name.clone(),
                etag: f.etag.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(f.state, pb::FilingState::Submitted as i32);
    // What the change returned (built without reading the row back) is what is stored.
    let stored = c
        .get_filing(e.as_inst(
            &inst,
            pb::GetFilingRequest {
                name: f.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(f, stored);
    let err = c
        .update_filing(e.as_inst(
            &inst,
            pb::UpdateFilingRequest {
                filing: Some(f.clone()),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["subject".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "FILING_STATE_CONFLICT");
    let clerk_token = e.keys.bearer_with(Role::JudicialOfficer, |r| {
        r.authority = Some("دادسرای عمومی و انقلاب اردبيل".into())
    });
    let f = c
        .register_filing(authed(
            clerk_token.clone(),
            pb::RegisterFilingRequest {
                name: f.name.clone(),
                etag: String::new(),
                case_number: "۹۸۷۶".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(
        (f.state, f.case_number.as_str()),
        (pb::FilingState::Registered as i32, "9876")
    );
    // The same case number at the same authority is taken.
    let other = c
        .create_filing(e.as_inst(
            &inst,
            pb::CreateFilingRequest {
                request_id: String::new(),
                filing: Some(complaint(pb::FilingKind::CrimeReport, true)),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    c.submit_filing(e.as_inst(
        &inst,
        pb::SubmitFilingRequest {
            name: other.name.clone(),
            etag: String::new(),
        },
    ))
    .await
    .unwrap();
    let err = c
        .register_filing(authed(
            clerk_token.clone(),
            pb::RegisterFilingRequest {
                name: other.name.clone(),
                etag: String::new(),
                case_number: "9876".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    // An officer of another authority does not see it.
    let stranger = authed(
        e.keys.bearer_with(Role::JudicialOfficer, |r| {
            r.authority = Some("دادگاه تهران".into())
        }),
        pb::GetFilingRequest {
            name: f.name.clone(),
        },
    );
    assert_eq!(
        c.get_filing(stranger).await.unwrap_err().code(),
        Code::NotFound
    );
    let f = c
        .close_filing(authed(
            clerk_token.clone(),
            pb::CloseFilingRequest {
                name: f.name.clone(),
                etag: f.etag.clone(),
                outcome: "صدور کیفرخواست".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(f.state, pb::FilingState::Closed as i32);
    let steps: Vec<_> = f.timeline.iter().map(|t| t.to_state.as_str()).collect();
    assert_eq!(steps, ["DRAFT", "SUBMITTED", "REGISTERED", "CLOSED"]);
    assert!(
        f.timeline
            .iter()
            .all(|t| !t.actor.is_empty() && t.time.is_some())
    );
}

async fn an_institution_without_report_crime_is_refused(b: Backend) {
    let e = env(b).await;
    let inst = e
        .institution(2, &[reg::PermittedAction::FileComplaint])
        .await;
    let mut c = e.cases.clone();
    let f = c
        .create_filing(e.as_inst(
            &inst,
            pb::CreateFilingRequest {
                request_id: String::new(),
                filing: Some(complaint(pb::FilingKind::CrimeReport, true)),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    let err = c
        .submit_filing(e.as_inst(
            &inst,
            pb::SubmitFilingRequest {
                name: f.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "ACTION_NOT_LICENSED")
    );
    assert_eq!(
        err.get_error_details().localized_message().unwrap().locale,
        "fa-IR"
    );
}

async fn a_referral_is_offered_accepted_progressed_and_resolved(b: Backend) {
    let e = env(b).await;
    let inst = e
        .institution(3, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let mut c = e.cases.clone();
    let r = e.offer(&inst).await.unwrap();
    assert_eq!(r.state, pb::ReferralState::Offered as i32);
    assert_eq!(r.source_case_number, "1405-123");
    let offered = c
        .get_referral(e.as_role(
            Role::CenterOfficer,
            pb::GetReferralRequest {
                name: r.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(r, offered);
    let r = c
        .accept_referral(e.as_inst(
            &inst,
            pb::AcceptReferralRequest {
                name: r.name.clone(),
                etag: r.etag.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    // What the create and the change returned (built without reading the row back) is
    // what is stored.
    let stored = c
        .get_referral(e.as_inst(
            &inst,
            pb::GetReferralRequest {
                name: r.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(r, stored);
    let accepted = r.accept_time.unwrap().seconds;
    let due = r.due_time.unwrap().seconds;
    let days = (due - accepted) as f64 / 86400.0;
    assert!((89.0..=92.0).contains(&days), "three months: {days} days");
    for n in 1..=2 {
        let session = pb::ProgressEntry {
            session_time: Some(secs(Duration::ZERO)),
            attendees: vec!["حسن محمدی".into(), "رضا کریمی".into(), "میانجی".into()],
            notes: format!("جلسهٔ {n}"),
            ..Default::default()
        };
        c.record_progress(e.as_inst(
            &inst,
            pb::RecordProgressRequest {
                name: r.name.clone(),
                etag: String::new(),
                entry: Some(session),
            },
        ))
        .await
        .unwrap();
    }
    // The source extends once; a second extension is refused.
    let later = prost_types::Timestamp {
        seconds: due + 30 * 86400,
        nanos: 0,
    };
    let ext = c
        .extend_referral(e.as_role(
            Role::CenterOfficer,
            pb::ExtendReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                due_time: Some(later),
                reason: "درخواست طرفین".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert!(ext.extended);
    let err = c
        .extend_referral(e.as_role(
            Role::CenterOfficer,
            pb::ExtendReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                due_time: Some(prost_types::Timestamp {
                    seconds: due + 40 * 86400,
                    nanos: 0,
                }),
                reason: "باز".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "ALREADY_EXTENDED");
    let err = c
        .resolve_referral(e.as_inst(
            &inst,
            pb::ResolveReferralRequest {
                name: r.name.clone(),
                outcome: pb::ReferralOutcome::NotReconciled as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["not_reconciled_reason"]);
    let r = c
        .resolve_referral(e.as_inst(
            &inst,
            pb::ResolveReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                outcome: pb::ReferralOutcome::Reconciled as i32,
                not_reconciled_reason: 0,
                settlement_text: "صلح‌نامه".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(
        (r.state, r.progress.len()),
        (pb::ReferralState::Resolved as i32, 2)
    );
    let steps: Vec<_> = r.timeline.iter().map(|t| t.to_state.as_str()).collect();
    assert_eq!(
        steps,
        [
            "OFFERED",
            "ACCEPTED",
            "IN_PROGRESS",
            "IN_PROGRESS",
            "IN_PROGRESS",
            "RESOLVED"
        ]
    );
    // Statistics show it.
    let now = secs(Duration::ZERO).seconds;
    let s = c
        .get_statistics(e.as_role(
            Role::Secretary,
            pb::GetStatisticsRequest {
                province: "اردبيل".into(),
                start_time: Some(prost_types::Timestamp {
                    seconds: now - 3600,
                    nanos: 0,
                }),
                end_time: Some(prost_types::Timestamp {
                    seconds: now + 3600,
                    nanos: 0,
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (s.referrals_total, s.resolved_count, s.reconciliation_rate),
        (1, 1, 1.0)
    );
    assert_eq!(s.referrals_by_kind[0].key, "RECONCILIATION");
    // Suggest ranks the institution with its record.
    let sug = c
        .suggest_institutions(e.as_role(
            Role::CenterOfficer,
            pb::SuggestInstitutionsRequest {
                activity_area: ActivityArea::Family as i32,
                province: "اردبیل".into(),
                max_results: 5,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sug.suggestions.len(), 1);
    assert_eq!(
        (
            sug.suggestions[0].institution.as_str(),
            sug.suggestions[0].rank
        ),
        (inst.name.as_str(), 1)
    );
    assert_eq!(sug.suggestions[0].resolved_referrals, 1);
}

/// A referral runs overdue when the service's clock passes its due time (moved, not
/// waited for): it says so, lists among the overdue, counts in the statistics, and ranks
/// its institution last until the due time is extended.
async fn overdue_follows_the_services_clock(b: Backend) {
    let clock = Clock::manual(chrono::Utc::now());
    let e = env_with_clock(b, clock.clone()).await;
    let late = e
        .institution(41, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let timely = e
        .institution(42, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let mut c = e.cases.clone();
    let r = e.offer(&late).await.unwrap();
    let r = c
        .accept_referral(e.as_inst(
            &late,
            pb::AcceptReferralRequest {
                name: r.name.clone(),
                etag: r.etag.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert!(!r.overdue);
    let get = |c: &mut ReferralServiceClient<Channel>| {
        let req = e.as_role(
            Role::CenterOfficer,
            pb::GetReferralRequest {
                name: r.name.clone(),
            },
        );
        let mut c = c.clone();
        async move {
            c.get_referral(req)
                .await
                .unwrap()
                .into_inner()
                .referral
                .unwrap()
        }
    };
    let overdue_list = |c: &mut ReferralServiceClient<Channel>| {
        let req = e.as_role(
            Role::CenterOfficer,
            pb::ListReferralsRequest {
                overdue_only: true,
                ..Default::default()
            },
        );
        let mut c = c.clone();
        async move { c.list_referrals(req).await.unwrap().into_inner().referrals }
    };
    assert!(overdue_list(&mut c).await.is_empty());
    // Three months and a week on.
    clock.advance(chrono::Duration::days(100));
    assert!(get(&mut c).await.overdue, "{b:?}");
    let listed = overdue_list(&mut c).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].overdue);
    let now = clock.now().timestamp();
    let stats = c
        .get_statistics(e.as_role(
            Role::Admin,
            pb::GetStatisticsRequest {
                province: "اردبیل".into(),
                start_time: Some(prost_types::Timestamp {
                    seconds: now - 200 * 86400,
                    nanos: 0,
                }),
                end_time: Some(prost_types::Timestamp {
                    seconds: now,
                    nanos: 0,
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.overdue_count, 1);
    let suggest = |c: &mut ReferralServiceClient<Channel>| {
        let req = e.as_role(
            Role::CenterOfficer,
            pb::SuggestInstitutionsRequest {
                activity_area: ActivityArea::Family as i32,
                province: "اردبیل".into(),
                max_results: 5,
            },
        );
        let mut c = c.clone();
        async move {
            c.suggest_institutions(req)
                .await
                .unwrap()
                .into_inner()
                .suggestions
        }
    };
    let ranked = suggest(&mut c).await;
    assert_eq!(ranked.len(), 2);
    assert_eq!(
        (
            ranked[0].institution.as_str(),
            ranked[1].institution.as_str()
        ),
        (timely.name.as_str(), late.name.as_str()),
        "the late institution ranks last"
    );
    assert!(ranked[1].has_unextended_overdue && !ranked[0].has_unextended_overdue);
    assert_eq!(ranked[1].open_referrals, 1);
    // Extended (once, within three months of the due time): no longer overdue.
    let due = r.due_time.unwrap().seconds;
    c.extend_referral(e.as_role(
        Role::CenterOfficer,
        pb::ExtendReferralRequest {
            name: r.name.clone(),
            etag: String::new(),
            due_time: Some(prost_types::Timestamp {
                seconds: due + 60 * 86400,
                nanos: 0,
            }),
            reason: "درخواست طرفین".into(),
        },
    ))
    .await
    .unwrap();
    assert!(!get(&mut c).await.overdue);
    assert!(!suggest(&mut c).await[1].has_unextended_overdue);
}

async fn wait_for_state(e: &Env, name: &str, state: pb::ReferralState) -> pb::Referral {
    let start = Instant::now();
    loop {
        let r = e
            .cases
            .clone()
            .get_referral(e.as_role(Role::Admin, pb::GetReferralRequest { name: name.into() }))
            .await
            .unwrap()
            .into_inner()
            .referral
            .unwrap();
        if r.state == state as i32 {
            return r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still {:?} after 10 s",
            r.state
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn revoking_the_licence_recalls_open_referrals(b: Backend) {
    let e = env(b).await;
    let inst = e
        .institution(4, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let other = e
        .institution(5, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let r1 = e.offer(&inst).await.unwrap();
    let r2 = e.offer(&inst).await.unwrap();
    e.cases
        .clone()
        .accept_referral(e.as_inst(
            &inst,
            pb::AcceptReferralRequest {
                name: r2.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    let kept = e.offer(&other).await.unwrap();
    e.revoke(&inst).await;
    let recalled = wait_for_state(&e, &r1.name, pb::ReferralState::Recalled).await;
    assert_eq!(recalled.state_reason, "licence revoked");
    wait_for_state(&e, &r2.name, pb::ReferralState::Recalled).await;
    let k = e
        .cases
        .clone()
        .get_referral(e.as_role(
            Role::Admin,
            pb::GetReferralRequest {
                name: kept.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(
        k.state,
        pb::ReferralState::Offered as i32,
        "another institution's referral stays"
    );
    // A recalled referral goes to another institution, which must be eligible.
    let err = e
        .cases
        .clone()
        .reassign_referral(e.as_role(
            Role::CenterOfficer,
            pb::ReassignReferralRequest {
                name: r1.name.clone(),
                etag: String::new(),
                institution: inst.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let moved = e
        .cases
        .clone()
        .reassign_referral(e.as_role(
            Role::CenterOfficer,
            pb::ReassignReferralRequest {
                name: r1.name.clone(),
                etag: String::new(),
                institution: other.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(
        (moved.state, moved.institution.as_str()),
        (pb::ReferralState::Offered as i32, other.name.as_str())
    );
    // Offering to an institution without a licence is refused with the registry's reason.
    let err = e.offer(&inst).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "LICENCE_REVOKED")
    );
}

async fn recall_happens_when_the_referral_service_was_down(b: Backend) {
    let mut e = env(b).await;
    let inst = e
        .institution(6, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let r = e.offer(&inst).await.unwrap();
    // Let the consumer catch up to the current events, then stop the service.
    tokio::time::sleep(Duration::from_millis(500)).await;
    e.referral.take().unwrap().stop().await.unwrap();
    e.revoke(&inst).await;
    let registry_uri = e.registry.as_ref().unwrap().uri();
    let back = start_referral(&e.keys, &e.ref_db, &registry_uri).await;
    e.cases = ReferralServiceClient::new(lazy(&back.uri()));
    e.referral = Some(back);
    let got = wait_for_state(&e, &r.name, pb::ReferralState::Recalled).await;
    assert_eq!(got.state_reason, "licence revoked");
}

async fn a_recall_names_the_officer_who_suspended_the_licence(b: Backend) {
    let e = env(b).await;
    let inst = e
        .institution(8, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let r = e.offer(&inst).await.unwrap();
    let officer = e
        .keys
        .bearer_with(Role::RegistryOfficer, |t| t.subject = "officer-7".into());
    e.reg
        .clone()
        .suspend_licence(authed(
            officer,
            reg::SuspendLicenceRequest {
                name: inst.licence.clone(),
                etag: String::new(),
                reason: "بررسی".into(),
            },
        ))
        .await
        .unwrap();
    wait_for_state(&e, &r.name, pb::ReferralState::Recalled).await;
    let records = AuditServiceClient::new(lazy(&e.referral.as_ref().unwrap().uri()))
        .list_audit_records(e.as_role(
            Role::Auditor,
            ListAuditRecordsRequest {
                resource: r.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .records;
    let recall = records
        .iter()
        .find(|a| a.method == "referral/licence-events")
        .expect("the recall is audited");
    // The service recalled it, for the officer whose suspension caused it.
    assert_eq!(
        (
            recall.actor.as_str(),
            recall.role.as_str(),
            recall.on_behalf_of.as_str()
        ),
        ("system", "SERVICE", "officer-7")
    );
}

async fn registry_down_fails_fast_and_recovers(b: Backend) {
    let mut e = env(b).await;
    let inst = e
        .institution(7, &[reg::PermittedAction::FileComplaint])
        .await;
    let mut c = e.cases.clone();
    let f = c
        .create_filing(e.as_inst(
            &inst,
            pb::CreateFilingRequest {
                request_id: String::new(),
                filing: Some(complaint(pb::FilingKind::Complaint, true)),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    let registry = e.registry.take().unwrap();
    let addr = registry.addr;
    registry.stop().await.unwrap();
    let mut req = e.as_inst(
        &inst,
        pb::SubmitFilingRequest {
            name: f.name.clone(),
            etag: String::new(),
        },
    );
    req.set_timeout(Duration::from_secs(10));
    let started = Instant::now();
    let err = c.submit_filing(req).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    eprintln!("failed after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failed fast: {:?}",
        started.elapsed()
    );
    // The registry returns on the same address; the referral service recovers by itself.
    let mut s = RunningRegistry::settings(&e.reg_db.url, &e.keys.public_key);
    s.server.listen = Some(addr);
    e.registry = Some(RunningRegistry::start(s).await.unwrap());
    let start = Instant::now();
    loop {
        match c
            .submit_filing(e.as_inst(
                &inst,
                pb::SubmitFilingRequest {
                    name: f.name.clone(),
                    etag: String::new(),
                },
            ))
            .await
        {
            Ok(r) => {
                eprintln!("recovered after {:?}", start.elapsed());
                assert_eq!(
                    r.into_inner().filing.unwrap().state,
                    pb::FilingState::Submitted as i32
                );
                break;
            }
            Err(s)
                if s.code() == Code::Unavailable && start.elapsed() < Duration::from_secs(10) =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(s) => panic!("did not recover: {s:?}"),
        }
    }
}

async fn institutions_see_only_their_own(b: Backend) {
    let e = env(b).await;
    let a = e
        .institution(
            8,
            &[
                reg::PermittedAction::FileComplaint,
                reg::PermittedAction::AcceptReferrals,
            ],
        )
        .await;
    let bb = e
        .institution(
            9,
            &[
                reg::PermittedAction::FileComplaint,
                reg::PermittedAction::AcceptReferrals,
            ],
        )
        .await;
    let mut c = e.cases.clone();
    let fb = c
        .create_filing(e.as_inst(
            &bb,
            pb::CreateFilingRequest {
                request_id: String::new(),
                filing: Some(complaint(pb::FilingKind::Complaint, true)),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    let rb = e.offer(&bb).await.unwrap();
    assert_eq!(
        c.get_filing(e.as_inst(
            &a,
            pb::GetFilingRequest {
                name: fb.name.clone()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    assert_eq!(
        c.submit_filing(e.as_inst(
            &a,
            pb::SubmitFilingRequest {
                name: fb.name.clone(),
                etag: String::new()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    assert_eq!(
        c.withdraw_filing(e.as_inst(
            &a,
            pb::WithdrawFilingRequest {
                name: fb.name.clone(),
                etag: String::new(),
                reason: String::new()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    assert_eq!(
        c.get_referral(e.as_inst(
            &a,
            pb::GetReferralRequest {
                name: rb.name.clone()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    assert_eq!(
        c.accept_referral(e.as_inst(
            &a,
            pb::AcceptReferralRequest {
                name: rb.name.clone(),
                etag: String::new()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    let lf = c
        .list_filings(e.as_inst(
            &a,
            pb::ListFilingsRequest {
                institution: bb.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(lf.filings.is_empty());
    let lr = c
        .list_referrals(e.as_inst(&a, pb::ListReferralsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(lr.referrals.is_empty());
    // Filing in another institution's name is refused.
    let mut forged = complaint(pb::FilingKind::Complaint, true);
    forged.institution = bb.name.clone();
    assert_eq!(
        c.create_filing(e.as_inst(
            &a,
            pb::CreateFilingRequest {
                request_id: String::new(),
                filing: Some(forged)
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::PermissionDenied
    );
    // B sees its own.
    let own = c
        .list_filings(e.as_inst(&bb, pb::ListFilingsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.filings.len(), 1);
    // Roles outside the case see nothing.
    assert_eq!(
        c.get_filing(e.as_role(
            Role::Secretary,
            pb::GetFilingRequest {
                name: fb.name.clone()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        c.create_referral(e.as_inst(&a, pb::CreateReferralRequest::default()))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    // A centre officer refers only for the centre.
    let mut court = dispute(&a);
    court.source = pb::ReferralSource::Court as i32;
    assert_eq!(
        c.create_referral(e.as_role(
            Role::CenterOfficer,
            pb::CreateReferralRequest {
                request_id: String::new(),
                referral: Some(court)
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::PermissionDenied
    );
}

async fn retried_creates_make_one_row(b: Backend) {
    let e = env(b).await;
    let inst = e
        .institution(
            10,
            &[
                reg::PermittedAction::FileComplaint,
                reg::PermittedAction::AcceptReferrals,
            ],
        )
        .await;
    let mut c = e.cases.clone();
    let req = pb::CreateFilingRequest {
        request_id: "filing-req-1".into(),
        filing: Some(complaint(pb::FilingKind::Complaint, true)),
    };
    let one = c
        .create_filing(e.as_inst(&inst, req.clone()))
        .await
        .unwrap()
        .into_inner();
    let two = c
        .create_filing(e.as_inst(&inst, req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one, two);
    assert_eq!(
        c.list_filings(e.as_role(Role::Admin, pb::ListFilingsRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .filings
            .len(),
        1
    );
    let req = pb::CreateReferralRequest {
        request_id: "referral-req-1".into(),
        referral: Some(dispute(&inst)),
    };
    let one = c
        .create_referral(e.as_role(Role::CenterOfficer, req.clone()))
        .await
        .unwrap()
        .into_inner();
    let two = c
        .create_referral(e.as_role(Role::CenterOfficer, req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one, two);
    assert_eq!(
        c.list_referrals(e.as_role(Role::Admin, pb::ListReferralsRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .referrals
            .len(),
        1
    );
}

async fn bad_input_names_the_field(b: Backend) {
    let e = env(b).await;
    let inst = e
        .institution(
            11,
            &[
                reg::PermittedAction::FileComplaint,
                reg::PermittedAction::AcceptReferrals,
            ],
        )
        .await;
    let mut c = e.cases.clone();
    let check = |r: Result<(), tonic::Status>, field: &str| {
        let err = r.expect_err(field);
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(
            fields(&err).iter().any(|f| f == field),
            "{field} not in {:?}",
            fields(&err)
        );
    };
    let filing = |f: &dyn Fn(&mut pb::Filing)| {
        let mut x = complaint(pb::FilingKind::Complaint, true);
        f(&mut x);
        pb::CreateFilingRequest {
            request_id: String::new(),
            filing: Some(x),
        }
    };
    let cases: Vec<(pb::CreateFilingRequest, &str)> = vec![
        (filing(&|f| f.kind = 0), "filing.kind"),
        (filing(&|f| f.kind = 9), "filing.kind"),
        (filing(&|f| f.activity_area = 100), "filing.activity_area"),
        (filing(&|f| f.authority = String::new()), "filing.authority"),
        (
            filing(&|f| f.province = "\u{202E}".into()),
            "filing.province",
        ),
        (filing(&|f| f.subject = "س".repeat(201)), "filing.subject"),
        (
            filing(&|f| f.description = "x".repeat(10_001)),
            "filing.description",
        ),
        (
            filing(&|f| f.parties[0].national_code = "1111111111".into()),
            "filing.parties[0].national_code",
        ),
        (
            filing(&|f| f.parties[0].role = 42),
            "filing.parties[0].role",
        ),
        (
            filing(&|f| f.parties[1].full_name = String::new()),
            "filing.parties[1].full_name",
        ),
        (
            filing(&|f| f.documents[0].sha256 = "zz".into()),
            "filing.documents[0].sha256",
        ),
        (
            filing(&|f| f.documents[0].size_bytes = -1),
            "filing.documents[0].size_bytes",
        ),
        (
            filing(&|f| f.documents[0].media_type = "pdf".into()),
            "filing.documents[0].media_type",
        ),
        (
            filing(&|f| f.consents[0].party_index = 7),
            "filing.consents[0].party_index",
        ),
        (
            filing(&|f| f.consents[0].basis = 0),
            "filing.consents[0].basis",
        ),
        (
            filing(&|f| f.consents[0].time = None),
            "filing.consents[0].time",
        ),
        (
            filing(&|f| f.consents[0].document = None),
            "filing.consents[0].document",
        ),
        (
            pb::CreateFilingRequest {
                request_id: "a b".into(),
                filing: Some(complaint(pb::FilingKind::Complaint, true)),
            },
            "request_id",
        ),
        (
            pb::CreateFilingRequest {
                request_id: String::new(),
                filing: None,
            },
            "filing",
        ),
    ];
    for (req, field) in cases {
        check(
            c.create_filing(e.as_inst(&inst, req)).await.map(|_| ()),
            field,
        );
    }
    let referral = |f: &dyn Fn(&mut pb::Referral)| {
        let mut x = dispute(&inst);
        f(&mut x);
        pb::CreateReferralRequest {
            request_id: String::new(),
            referral: Some(x),
        }
    };
    let cases: Vec<(pb::CreateReferralRequest, &str)> = vec![
        (referral(&|r| r.kind = 0), "referral.kind"),
        (referral(&|r| r.activity_area = 0), "referral.activity_area"),
        (
            referral(&|r| r.province = String::new()),
            "referral.province",
        ),
        (referral(&|r| r.parties.clear()), "referral.parties"),
        (
            referral(&|r| r.institution = "nope".into()),
            "referral.institution",
        ),
        (
            referral(&|r| r.source_case_number = String::new()),
            "referral.source_case_number",
        ),
        (
            referral(&|r| r.summary = "\u{0007}".into()),
            "referral.summary",
        ),
    ];
    for (req, field) in cases {
        check(
            c.create_referral(e.as_role(Role::Admin, req))
                .await
                .map(|_| ()),
            field,
        );
    }
    for name in ["", "filings/", "referrals/x", "filings/a b"] {
        check(
            c.get_filing(e.as_role(Role::Admin, pb::GetFilingRequest { name: name.into() }))
                .await
                .map(|_| ()),
            "name",
        );
        check(
            c.submit_filing(e.as_role(
                Role::Admin,
                pb::SubmitFilingRequest {
                    name: name.into(),
                    etag: String::new(),
                },
            ))
            .await
            .map(|_| ()),
            "name",
        );
    }
    for name in ["", "referrals/", "filings/x"] {
        check(
            c.get_referral(e.as_role(Role::Admin, pb::GetReferralRequest { name: name.into() }))
                .await
                .map(|_| ()),
            "name",
        );
        check(
            c.accept_referral(e.as_role(
                Role::Admin,
                pb::AcceptReferralRequest {
                    name: name.into(),
                    etag: String::new(),
                },
            ))
            .await
            .map(|_| ()),
            "name",
        );
    }
    let r = e.offer(&inst).await.unwrap();
    check(
        c.decline_referral(e.as_inst(
            &inst,
            pb::DeclineReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                reason: String::new(),
            },
        ))
        .await
        .map(|_| ()),
        "reason",
    );
    check(
        c.record_progress(e.as_inst(
            &inst,
            pb::RecordProgressRequest {
                name: r.name.clone(),
                etag: String::new(),
                entry: None,
            },
        ))
        .await
        .map(|_| ()),
        "entry",
    );
    check(
        c.record_progress(e.as_inst(
            &inst,
            pb::RecordProgressRequest {
                name: r.name.clone(),
                etag: String::new(),
                entry: Some(pb::ProgressEntry::default()),
            },
        ))
        .await
        .map(|_| ()),
        "entry.session_time",
    );
    check(
        c.resolve_referral(e.as_inst(
            &inst,
            pb::ResolveReferralRequest {
                name: r.name.clone(),
                outcome: 9,
                ..Default::default()
            },
        ))
        .await
        .map(|_| ()),
        "outcome",
    );
    check(
        c.extend_referral(e.as_role(
            Role::Admin,
            pb::ExtendReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                due_time: None,
                reason: "x".into(),
            },
        ))
        .await
        .map(|_| ()),
        "due_time",
    );
    check(
        c.reassign_referral(e.as_role(
            Role::Admin,
            pb::ReassignReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                institution: "x".into(),
            },
        ))
        .await
        .map(|_| ()),
        "institution",
    );
    check(
        c.list_filings(e.as_role(
            Role::Admin,
            pb::ListFilingsRequest {
                kind: 77,
                ..Default::default()
            },
        ))
        .await
        .map(|_| ()),
        "kind",
    );
    check(
        c.list_filings(e.as_role(
            Role::Admin,
            pb::ListFilingsRequest {
                page_token: "bad".into(),
                ..Default::default()
            },
        ))
        .await
        .map(|_| ()),
        "page_token",
    );
    check(
        c.list_filings(e.as_role(
            Role::Admin,
            pb::ListFilingsRequest {
                institution: "x".into(),
                ..Default::default()
            },
        ))
        .await
        .map(|_| ()),
        "institution",
    );
    check(
        c.list_referrals(e.as_role(
            Role::Admin,
            pb::ListReferralsRequest {
                state: 99,
                ..Default::default()
            },
        ))
        .await
        .map(|_| ()),
        "state",
    );
    check(
        c.list_referrals(e.as_role(
            Role::Admin,
            pb::ListReferralsRequest {
                page_size: -5,
                ..Default::default()
            },
        ))
        .await
        .map(|_| ()),
        "page_size",
    );
    check(
        c.get_statistics(e.as_role(
            Role::Admin,
            pb::GetStatisticsRequest {
                province: "اردبیل".into(),
                start_time: None,
                end_time: None,
            },
        ))
        .await
        .map(|_| ()),
        "start_time",
    );
    check(
        c.suggest_institutions(e.as_role(
            Role::Admin,
            pb::SuggestInstitutionsRequest {
                activity_area: 0,
                province: "اردبیل".into(),
                max_results: 1,
            },
        ))
        .await
        .map(|_| ()),
        "activity_area",
    );
    // Overdue is queryable (none yet).
    let over = c
        .list_referrals(e.as_role(
            Role::CenterOfficer,
            pb::ListReferralsRequest {
                overdue_only: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(over.referrals.is_empty());
}

/// Two institutions (same token subject, as tokens minted for agents often have) send the
/// same CreateFiling under the same request id: each gets a filing of its own, and neither
/// sees the other's victim. Two centre officers likewise for CreateReferral.
async fn request_ids_belong_to_their_caller(b: Backend) {
    let e = env(b).await;
    let actions = [
        reg::PermittedAction::FileComplaint,
        reg::PermittedAction::AcceptReferrals,
    ];
    let a = e.institution(41, &actions).await;
    let bi = e.institution(42, &actions).await;
    let mut c = e.cases.clone();
    let req = pb::CreateFilingRequest {
        request_id: "story-filing-1".into(),
        filing: Some(complaint(pb::FilingKind::Complaint, true)),
    };
    let fa = c
        .create_filing(e.as_inst(&a, req.clone()))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    let fb = c
        .create_filing(e.as_inst(&bi, req.clone()))
        .await
        .expect("the other institution's own filing, not a refusal")
        .into_inner()
        .filing
        .unwrap();
    assert_ne!(fa.name, fb.name);
    assert_eq!(fa.institution, a.name);
    assert_eq!(fb.institution, bi.name);
    // Each one's retry replays its own filing.
    for (inst, own) in [(&a, &fa), (&bi, &fb)] {
        let again = c
            .create_filing(e.as_inst(inst, req.clone()))
            .await
            .unwrap()
            .into_inner()
            .filing
            .unwrap();
        assert_eq!(again.name, own.name);
    }
    // B cannot read A's filing by its name either.
    let peek = c
        .get_filing(e.as_inst(
            &bi,
            pb::GetFilingRequest {
                name: fa.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(peek.code(), tonic::Code::NotFound);

    let officer = |sub: &str, msg| {
        authed(
            e.keys
                .bearer_with(Role::CenterOfficer, |r| r.subject = sub.into()),
            msg,
        )
    };
    let req = pb::CreateReferralRequest {
        request_id: "story-referral-1".into(),
        referral: Some(dispute(&a)),
    };
    let ra = c
        .create_referral(officer("officer-1", req.clone()))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    let rb = c
        .create_referral(officer("officer-2", req.clone()))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_ne!(ra.name, rb.name);
    let ra2 = c
        .create_referral(officer("officer-1", req))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(ra2.name, ra.name);
}

/// Bytes that decode to no message, sent to every method of the referral service and of
/// its audit service, are INVALID_ARGUMENT with the usual details, never INTERNAL.
async fn malformed_bodies_are_invalid_argument(b: Backend) {
    let e = env(b).await;
    let ch = lazy(&e.referral.as_ref().unwrap().uri());
    let bearer = e.keys.bearer(Role::Admin, None);
    let services = [
        "mosharekat.referral.v1.ReferralService",
        "mosharekat.common.v1.AuditService",
    ];
    let n =
        mosharekat_platform::testing::malformed_bodies_are_invalid_argument(ch, &bearer, &services)
            .await;
    assert!(n >= 40, "{n} calls checked");
}

/// The registry closes connections at a short age (1 s here, 5 min in production): the
/// referral service's calls to it, made at every moment around that age, all succeed.
async fn a_peer_connection_reaching_its_age_fails_no_call(b: Backend) {
    let keys = TestKeys::new().unwrap();
    let reg_db = TestDb::new(b).await.unwrap();
    let ref_db = TestDb::new(b).await.unwrap();
    let mut s = RunningRegistry::settings(&reg_db.url, &keys.public_key);
    s.server.max_connection_age = Duration::from_secs(1).into();
    let registry = RunningRegistry::start(s).await.unwrap();
    let referral = start_referral(&keys, &ref_db, &registry.uri()).await;
    let e = Env {
        reg: RegistryServiceClient::new(lazy(&registry.uri())),
        cases: ReferralServiceClient::new(lazy(&referral.uri())),
        keys,
        reg_db,
        ref_db,
        registry: Some(registry),
        referral: Some(referral),
    };
    let inst = e
        .institution(51, &[reg::PermittedAction::FileComplaint])
        .await;
    let mut c = e.cases.clone();
    let mut failures = Vec::new();
    // Pauses around the age, so that calls meet connections about to close, closing and
    // just closed. Bounded: 14 calls.
    for (i, pause_ms) in [
        0u64, 950, 1000, 1050, 1100, 1200, 1500, 990, 1010, 1030, 2100, 1000, 1040, 0,
    ]
    .into_iter()
    .enumerate()
    {
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        let f = c
            .create_filing(e.as_inst(
                &inst,
                pb::CreateFilingRequest {
                    request_id: String::new(),
                    filing: Some(complaint(pb::FilingKind::Complaint, true)),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .filing
            .unwrap();
        if let Err(s) = c
            .submit_filing(e.as_inst(
                &inst,
                pb::SubmitFilingRequest {
                    name: f.name.clone(),
                    etag: String::new(),
                },
            ))
            .await
        {
            failures.push(format!(
                "call {i} after {pause_ms} ms: {:?} {}",
                s.code(),
                s.message()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A complaint of `inst` whose victim (with a national code) is party 0, submitted.
async fn submitted_complaint(e: &Env, inst: &Inst) -> pb::Filing {
    let mut c = e.cases.clone();
    let mut filing = complaint(pb::FilingKind::Complaint, true);
    filing.parties[0].national_code = "0076229645".into();
    // `sealed` is not the filing institution's to set: ignored on input.
    filing.parties[0].sealed = true;
    let f = c
        .create_filing(e.as_inst(
            inst,
            pb::CreateFilingRequest {
                request_id: String::new(),
                filing: Some(filing),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert!(!f.parties[0].sealed);
    c.submit_filing(e.as_inst(
        inst,
        pb::SubmitFilingRequest {
            name: f.name.clone(),
            etag: f.etag.clone(),
        },
    ))
    .await
    .unwrap()
    .into_inner()
    .filing
    .unwrap()
}

const AUTHORITY: &str = "دادسرای عمومی و انقلاب اردبیل";

/// A bearer token for `role`; an institution's is `inst`'s, a judicial officer's serves
/// the authority the test filings are addressed to.
fn bearer_for(e: &Env, role: Role, inst: &Inst) -> String {
    e.keys.bearer_with(role, |r| match role {
        Role::Institution => r.institution = Some(inst.id.clone()),
        Role::JudicialOfficer => r.authority = Some(AUTHORITY.into()),
        _ => {}
    })
}

/// Whether `p` reads as sealed: name and national code masked.
fn masked(p: &Party) -> bool {
    p.full_name == "محرمانه"
        && (p.national_code.is_empty() || p.national_code.starts_with("******"))
}

/// The addressed authority seals a victim of a filing, and the source seals one of a
/// referral: each is then masked for every role but the source (the filing institution
/// and the addressed authority; the referring source) and the assigned institution —
/// in Get, List, and a session's attendees. Only minors and victims are sealed, only by
/// the source, with the etag; sealing twice changes nothing.
async fn a_sealed_party_is_masked_for_every_other_role(b: Backend) {
    let e = env(b).await;
    let inst = e
        .institution(
            30,
            &[
                reg::PermittedAction::FileComplaint,
                reg::PermittedAction::AcceptReferrals,
            ],
        )
        .await;
    let other = e
        .institution(31, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let mut c = e.cases.clone();
    let f = submitted_complaint(&e, &inst).await;
    let seal_filing = |role: Role, etag: &str, index: i32| {
        let mut c = e.cases.clone();
        let req = authed(
            bearer_for(&e, role, &inst),
            pb::SealFilingPartyRequest {
                name: f.name.clone(),
                etag: etag.into(),
                party_index: index,
            },
        );
        async move {
            c.seal_filing_party(req)
                .await
                .map(|r| r.into_inner().filing.unwrap())
        }
    };
    // Only the clerks, only a victim or a minor, only a party there is, only as it is.
    assert_eq!(
        seal_filing(Role::Institution, "", 0)
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let err = seal_filing(Role::JudicialOfficer, "", 1).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "PARTY_NOT_SEALABLE"),
        "the accused is neither a minor nor a victim"
    );
    let err = seal_filing(Role::JudicialOfficer, "", 5).await.unwrap_err();
    assert_eq!(
        (err.code(), fields(&err)),
        (Code::InvalidArgument, vec!["party_index".to_owned()])
    );
    let err = seal_filing(Role::JudicialOfficer, "", -1)
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["party_index"]);
    assert_eq!(
        seal_filing(Role::JudicialOfficer, "999", 0)
            .await
            .unwrap_err()
            .code(),
        Code::Aborted
    );
    // Another authority's officer does not see the filing at all.
    let mut elsewhere = authed(
        e.keys.bearer_with(Role::JudicialOfficer, |r| {
            r.authority = Some("دادگاه عمومی خلخال".into())
        }),
        pb::SealFilingPartyRequest {
            name: f.name.clone(),
            etag: String::new(),
            party_index: 0,
        },
    );
    elsewhere.set_timeout(Duration::from_secs(5));
    assert_eq!(
        c.seal_filing_party(elsewhere).await.unwrap_err().code(),
        Code::NotFound
    );
    let sealed = seal_filing(Role::JudicialOfficer, &f.etag, 0)
        .await
        .unwrap();
    assert!(sealed.parties[0].sealed);
    assert_eq!(sealed.parties[0].full_name, "مریم", "the authority sees it");
    assert_ne!(sealed.etag, f.etag);
    assert!(
        sealed
            .timeline
            .last()
            .is_some_and(|t| t.note == "parties[0] sealed" && !t.note.contains("مریم"))
    );
    let again = seal_filing(Role::JudicialOfficer, &sealed.etag, 0)
        .await
        .unwrap();
    assert_eq!(
        again.etag, sealed.etag,
        "sealing a sealed party changes nothing"
    );

    // Every role: the institution and the addressed authority see the party; every other
    // reader sees it masked (and the consent given for it); the others do not read.
    for role in Role::ALL {
        let got = c
            .get_filing(authed(
                bearer_for(&e, role, &inst),
                pb::GetFilingRequest {
                    name: f.name.clone(),
                },
            ))
            .await;
        match role {
            Role::Institution | Role::JudicialOfficer => {
                let g = got.unwrap().into_inner().filing.unwrap();
                assert_eq!(
                    (
                        g.parties[0].full_name.as_str(),
                        g.parties[0].national_code.as_str()
                    ),
                    ("مریم", "0076229645"),
                    "{role}"
                );
            }
            Role::Admin | Role::Auditor | Role::Service => {
                let g = got.unwrap().into_inner().filing.unwrap();
                assert!(masked(&g.parties[0]), "{role}: {:?}", g.parties[0]);
                assert_eq!(g.parties[0].national_code, "******9645");
                assert!(g.parties[0].sealed);
                assert_eq!(g.consents[0].given_by, "محرمانه", "{role}");
                assert_eq!(g.parties[1].full_name, "متهم", "only the sealed party");
            }
            _ => assert_eq!(got.unwrap_err().code(), Code::PermissionDenied, "{role}"),
        }
    }
    let listed = c
        .list_filings(e.as_role(Role::Admin, pb::ListFilingsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .filings;
    assert!(masked(&listed[0].parties[0]));

    // A referral: the source may seal as it refers; only a minor or a victim.
    let mut r = dispute(&inst);
    r.parties[1].sealed = true;
    let err = c
        .create_referral(e.as_role(
            Role::CenterOfficer,
            pb::CreateReferralRequest {
                request_id: String::new(),
                referral: Some(r.clone()),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["referral.parties[1].sealed"]);
    r.parties[1].minor = true;
    r.parties[0].role = PartyRole::Victim as i32;
    let r = c
        .create_referral(e.as_role(
            Role::CenterOfficer,
            pb::CreateReferralRequest {
                request_id: String::new(),
                referral: Some(r),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert!(r.parties[1].sealed && !r.parties[0].sealed);
    assert_eq!(r.parties[1].full_name, "رضا کریمی", "the source sees it");
    let seal_referral = |role: Role, index: i32| {
        let mut c = e.cases.clone();
        let req = authed(
            bearer_for(&e, role, &inst),
            pb::SealReferralPartyRequest {
                name: r.name.clone(),
                etag: String::new(),
                party_index: index,
            },
        );
        async move {
            c.seal_referral_party(req)
                .await
                .map(|r| r.into_inner().referral.unwrap())
        }
    };
    for role in [Role::JudicialOfficer, Role::Institution, Role::Auditor] {
        assert_eq!(
            seal_referral(role, 0).await.unwrap_err().code(),
            Code::PermissionDenied,
            "{role} is not this referral's source"
        );
    }
    let r = seal_referral(Role::CenterOfficer, 0).await.unwrap();
    assert!(r.parties[0].sealed);
    assert_eq!(
        r.parties[0].national_code, "0076229645",
        "the source sees it"
    );
    // The assigned institution takes it and records a session the sealed parties attend.
    let r = c
        .accept_referral(e.as_inst(
            &inst,
            pb::AcceptReferralRequest {
                name: r.name.clone(),
                etag: r.etag.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    let r = c
        .record_progress(e.as_inst(
            &inst,
            pb::RecordProgressRequest {
                name: r.name.clone(),
                etag: r.etag.clone(),
                entry: Some(pb::ProgressEntry {
                    session_time: Some(secs(Duration::ZERO)),
                    attendees: vec!["حسن محمدی".into(), "رضا كريمي".into(), "میانجی".into()],
                    notes: "جلسهٔ نخست".into(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(
        r.parties[0].full_name, "حسن محمدی",
        "the institution sees them"
    );
    for role in Role::ALL {
        let got = c
            .get_referral(authed(
                bearer_for(&e, role, &inst),
                pb::GetReferralRequest {
                    name: r.name.clone(),
                },
            ))
            .await;
        match role {
            Role::Institution | Role::CenterOfficer => {
                let g = got.unwrap().into_inner().referral.unwrap();
                assert_eq!(g.parties[0].full_name, "حسن محمدی", "{role}");
                assert_eq!(g.parties[0].national_code, "0076229645", "{role}");
                assert_eq!(g.parties[1].full_name, "رضا کریمی", "{role}");
            }
            Role::Admin | Role::Auditor | Role::Service | Role::JudicialOfficer => {
                let g = got.unwrap().into_inner().referral.unwrap();
                assert!(masked(&g.parties[0]) && masked(&g.parties[1]), "{role}");
                assert_eq!(g.parties[0].national_code, "******9645", "{role}");
                assert_eq!(
                    g.progress[0].attendees,
                    ["محرمانه", "محرمانه", "میانجی"],
                    "{role}: the attendees named as the sealed parties are"
                );
            }
            _ => assert_eq!(got.unwrap_err().code(), Code::PermissionDenied, "{role}"),
        }
    }
    // Another institution does not see it at all.
    assert_eq!(
        c.get_referral(e.as_inst(
            &other,
            pb::GetReferralRequest {
                name: r.name.clone()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    let listed = c
        .list_referrals(e.as_role(Role::Auditor, pb::ListReferralsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .referrals;
    assert!(listed.iter().all(|r| masked(&r.parties[0])));
}

fn read_log_request(
    resource: &str,
    reader: &str,
    page_size: i32,
    page_token: &str,
) -> pb::ListReadRecordsRequest {
    pb::ListReadRecordsRequest {
        page_size,
        page_token: page_token.into(),
        resource: resource.into(),
        reader: reader.into(),
    }
}

/// Every read of a filing or referral by anyone but its own institution is recorded —
/// Get, and each record a List returns — and auditors list the record per resource and
/// per reader, page by page.
async fn every_read_is_recorded_and_auditors_list_it(b: Backend) {
    let e = env(b).await;
    let inst = e
        .institution(
            32,
            &[
                reg::PermittedAction::FileComplaint,
                reg::PermittedAction::AcceptReferrals,
            ],
        )
        .await;
    let stranger = e
        .institution(33, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let mut c = e.cases.clone();
    let f = submitted_complaint(&e, &inst).await;
    let f2 = submitted_complaint(&e, &inst).await;
    let r = e.offer(&inst).await.unwrap();
    let mut audit = c.clone();
    let reads = |resource: &str, reader: &str| {
        let mut a = e.cases.clone();
        let req = e.as_role(Role::Auditor, read_log_request(resource, reader, 0, ""));
        async move { a.list_read_records(req).await.unwrap().into_inner().records }
    };
    // The institution's own reads are not recorded; nor a read that found nothing.
    c.get_filing(e.as_inst(
        &inst,
        pb::GetFilingRequest {
            name: f.name.clone(),
        },
    ))
    .await
    .unwrap();
    c.list_filings(e.as_inst(&inst, pb::ListFilingsRequest::default()))
        .await
        .unwrap();
    c.get_referral(e.as_inst(
        &inst,
        pb::GetReferralRequest {
            name: r.name.clone(),
        },
    ))
    .await
    .unwrap();
    c.list_referrals(e.as_inst(&inst, pb::ListReferralsRequest::default()))
        .await
        .unwrap();
    assert_eq!(
        c.get_filing(e.as_inst(
            &stranger,
            pb::GetFilingRequest {
                name: f.name.clone()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    assert!(reads("", "").await.is_empty(), "nothing recorded yet");

    // Each read path, by others.
    c.get_filing(authed(
        bearer_for(&e, Role::JudicialOfficer, &inst),
        pb::GetFilingRequest {
            name: f.name.clone(),
        },
    ))
    .await
    .unwrap();
    let page = c
        .list_filings(e.as_role(Role::Admin, pb::ListFilingsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .filings;
    assert_eq!(page.len(), 2);
    c.get_referral(e.as_role(
        Role::CenterOfficer,
        pb::GetReferralRequest {
            name: r.name.clone(),
        },
    ))
    .await
    .unwrap();
    c.list_referrals(e.as_role(Role::Auditor, pb::ListReferralsRequest::default()))
        .await
        .unwrap();
    let mut for_alice = e.as_role(
        Role::Service,
        pb::GetReferralRequest {
            name: r.name.clone(),
        },
    );
    for_alice
        .metadata_mut()
        .insert("x-on-behalf-of", "alice".parse().unwrap());
    c.get_referral(for_alice).await.unwrap();

    // Per resource.
    let of_f = reads(&f.name, "").await;
    let seen: Vec<(&str, &str, &str)> = of_f
        .iter()
        .map(|x| (x.reader.as_str(), x.role.as_str(), x.method.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "test-judicial_officer",
                "JUDICIAL_OFFICER",
                "/mosharekat.referral.v1.ReferralService/GetFiling"
            ),
            (
                "test-admin",
                "ADMIN",
                "/mosharekat.referral.v1.ReferralService/ListFilings"
            ),
        ]
    );
    assert!(
        of_f.iter()
            .all(|x| x.resource == f.name && x.time.is_some())
    );
    assert!(of_f[0].sequence < of_f[1].sequence);
    let of_r = reads(&r.name, "").await;
    let seen: Vec<(&str, &str, &str)> = of_r
        .iter()
        .map(|x| (x.role.as_str(), x.method.as_str(), x.on_behalf_of.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "CENTER_OFFICER",
                "/mosharekat.referral.v1.ReferralService/GetReferral",
                ""
            ),
            (
                "AUDITOR",
                "/mosharekat.referral.v1.ReferralService/ListReferrals",
                ""
            ),
            (
                "SERVICE",
                "/mosharekat.referral.v1.ReferralService/GetReferral",
                "alice"
            ),
        ]
    );
    // Per reader: the administrator's one List recorded both filings it returned.
    let by_admin = reads("", "test-admin").await;
    let mut names: Vec<&str> = by_admin.iter().map(|x| x.resource.as_str()).collect();
    names.sort();
    let mut want = [f.name.as_str(), f2.name.as_str()];
    want.sort();
    assert_eq!(names, want);
    assert_eq!(
        by_admin[0].time, by_admin[1].time,
        "one statement for the page"
    );
    assert_eq!(reads(&f2.name, "test-admin").await.len(), 1, "both filters");
    assert!(reads(&f2.name, "test-judicial_officer").await.is_empty());

    // Paged, in order, each record once.
    let all = reads("", "").await;
    assert_eq!(all.len(), 6);
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let resp = audit
            .list_read_records(e.as_role(Role::Admin, read_log_request("", "", 4, &token)))
            .await
            .unwrap()
            .into_inner();
        paged.extend(resp.records);
        if resp.next_page_token.is_empty() {
            break;
        }
        token = resp.next_page_token;
    }
    assert_eq!(paged, all);
    // Auditors and administrators only; filters and tokens checked.
    for role in [
        Role::CenterOfficer,
        Role::JudicialOfficer,
        Role::Institution,
        Role::Service,
    ] {
        let err = audit
            .list_read_records(authed(
                bearer_for(&e, role, &inst),
                read_log_request("", "", 0, ""),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role}");
    }
    let err = audit
        .list_read_records(e.as_role(Role::Auditor, read_log_request(&inst.name, "", 0, "")))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["resource"]);
    let first = audit
        .list_read_records(e.as_role(Role::Auditor, read_log_request("", "", 1, "")))
        .await
        .unwrap()
        .into_inner();
    let err = audit
        .list_read_records(e.as_role(
            Role::Auditor,
            read_log_request(&f.name, "", 1, &first.next_page_token),
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["page_token"]);
}

/// What recording a read costs: GetReferral by the assigned institution (not recorded)
/// against GetReferral by the centre (recorded), one call at a time, and a List page of
/// 50 by each. Prints the figures (`--no-capture`); asserts only that the reads were
/// recorded. See BENCHMARKS.md.
async fn what_recording_a_read_costs(b: Backend) {
    const CALLS: u32 = 200;
    let e = env(b).await;
    let inst = e
        .institution(34, &[reg::PermittedAction::AcceptReferrals])
        .await;
    let mut rs = Vec::new();
    for _ in 0..50 {
        rs.push(e.offer(&inst).await.unwrap());
    }
    let c = e.cases.clone();
    let own = e.keys.bearer(Role::Institution, Some(&inst.id));
    let centre = e.keys.bearer(Role::CenterOfficer, None);
    let get = |bearer: &str| {
        let (mut c, bearer, name) = (c.clone(), bearer.to_owned(), rs[0].name.clone());
        async move {
            let start = Instant::now();
            for _ in 0..CALLS {
                c.get_referral(authed(
                    bearer.clone(),
                    pb::GetReferralRequest { name: name.clone() },
                ))
                .await
                .unwrap();
            }
            start.elapsed() / CALLS
        }
    };
    let list = |bearer: &str| {
        let (mut c, bearer) = (c.clone(), bearer.to_owned());
        async move {
            let start = Instant::now();
            for _ in 0..CALLS / 10 {
                let page = c
                    .list_referrals(authed(bearer.clone(), pb::ListReferralsRequest::default()))
                    .await
                    .unwrap()
                    .into_inner()
                    .referrals;
                assert_eq!(page.len(), 50);
            }
            start.elapsed() / (CALLS / 10)
        }
    };
    // Calls per second of GetReferral from `TASKS` callers at once.
    const TASKS: u32 = 16;
    let concurrent = |bearer: &str| {
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS).map(|_| tokio::spawn(get(bearer))).collect();
        async move {
            for t in tasks {
                t.await.unwrap();
            }
            f64::from(TASKS * CALLS) / start.elapsed().as_secs_f64()
        }
    };
    // Warm both paths first.
    get(&own).await;
    get(&centre).await;
    let (get_plain, get_recorded) = (get(&own).await, get(&centre).await);
    let (list_plain, list_recorded) = (list(&own).await, list(&centre).await);
    let (many_plain, many_recorded) = (concurrent(&own).await, concurrent(&centre).await);
    eprintln!(
        "read log cost on {b:?}: GetReferral {get_plain:?} unrecorded, {get_recorded:?} recorded \
         (+{:?}); ListReferrals of 50: {list_plain:?} unrecorded, {list_recorded:?} recorded (+{:?}); \
         {TASKS} callers at once: {many_plain:.0}/s unrecorded, {many_recorded:.0}/s recorded",
        get_recorded.saturating_sub(get_plain),
        list_recorded.saturating_sub(list_plain),
    );
    let (mut recorded, mut token) = (0, String::new());
    loop {
        let page = c
            .clone()
            .list_read_records(e.as_role(
                Role::Auditor,
                read_log_request(&rs[0].name, "test-center_officer", 500, &token),
            ))
            .await
            .unwrap()
            .into_inner();
        recorded += page.records.len() as u32;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(recorded, (2 + TASKS) * CALLS + CALLS / 10);
}
