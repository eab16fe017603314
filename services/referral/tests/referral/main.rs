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
use mosharekat_platform::auth::Role;
use mosharekat_platform::clock::Clock;
use mosharekat_platform::testing::{Backend, TestDb, TestKeys};
use mosharekat_referral::testing::RunningReferral;
use mosharekat_registry::testing::RunningRegistry;
use mosharekat_testkit::{
    authed, fields, from_now, lazy, legal_id, on_both_databases, reason, register,
};
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

mod bad_input;
mod deadlines;
mod filings;
mod idempotency;
mod notifications;
mod peers;
mod read_log;
mod recalls;
mod referrals;
mod roles;
mod sealing;
mod storage_v1;

struct Env {
    keys: TestKeys,
    reg_db: TestDb,
    ref_db: TestDb,
    registry: Option<RunningRegistry>,
    referral: Option<RunningReferral>,
    reg: RegistryServiceClient<Channel>,
    cases: ReferralServiceClient<Channel>,
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
        let areas = vec![
            ActivityArea::Reconciliation as i32,
            ActivityArea::Women as i32,
            ActivityArea::Family as i32,
        ];
        let r = register(
            &self.reg,
            &self.keys.bearer(Role::RegistryOfficer, None),
            reg::Institution {
                display_name: format!("کانون صلح و سازش {n}"),
                kind: reg::InstitutionKind::Ngo as i32,
                national_id: legal_id(15, 20_000 + n),
                registration_number: n.to_string(),
                registering_authority: "اداره ثبت".into(),
                province: "اردبیل".into(),
                city: "اردبیل".into(),
                activity_areas: areas.clone(),
                ..Default::default()
            },
            Some(reg::Licence {
                activity_areas: areas,
                permitted_actions: actions.iter().map(|a| *a as i32).collect(),
                province: "اردبیل".into(),
                valid_until: Some(from_now(Duration::from_secs(365 * 86400))),
                ..Default::default()
            }),
        )
        .await;
        Inst {
            id: r.id().to_owned(),
            licence: r.licence_name(),
            name: r.institution.name,
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
                time: Some(from_now(Duration::ZERO)),
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
