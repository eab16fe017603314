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
    ardabil_institution, ardabil_licence, authed, fields, from_now, invalid_field, lazy, legal_id,
    on_both_databases, reason, register, victim_and_accused,
};
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

mod addressees;
mod bad_input;
mod calendar_follow;
mod deadlines;
mod filings;
mod idempotency;
mod law;
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
    env_with(b, clock, |_| {}).await
}

/// The services, the registry's settings adjusted by `tune` before it starts.
async fn env_with(
    b: Backend,
    clock: Clock,
    tune: impl FnOnce(&mut mosharekat_registry::Settings),
) -> Env {
    let keys = TestKeys::new().unwrap();
    let reg_db = TestDb::new(b).await.unwrap();
    let ref_db = TestDb::new(b).await.unwrap();
    let mut settings = RunningRegistry::settings(&reg_db.url, &keys.public_key);
    tune(&mut settings);
    let registry = RunningRegistry::start(settings).await.unwrap();
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
            ardabil_institution(
                format!("کانون صلح و سازش {n}"),
                legal_id(15, 20_000 + n),
                n.to_string(),
                areas.clone(),
            ),
            Some(ardabil_licence(areas, actions)),
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

    /// An institution licensed to file complaints and to accept referrals.
    async fn filer(&self, n: u32) -> Inst {
        self.institution(
            n,
            &[
                reg::PermittedAction::FileComplaint,
                reg::PermittedAction::AcceptReferrals,
            ],
        )
        .await
    }

    /// An institution licensed to accept referrals only.
    async fn acceptor(&self, n: u32) -> Inst {
        self.institution(n, &[reg::PermittedAction::AcceptReferrals])
            .await
    }

    /// The referral `name` as `role` reads it.
    async fn referral(&self, role: Role, name: &str) -> pb::Referral {
        self.cases
            .clone()
            .get_referral(self.as_role(role, pb::GetReferralRequest { name: name.into() }))
            .await
            .unwrap()
            .into_inner()
            .referral
            .unwrap()
    }

    /// The centre reassigns `r` to `to`.
    async fn reassign(&self, r: &pb::Referral, to: &Inst) -> Result<pb::Referral, tonic::Status> {
        self.cases
            .clone()
            .reassign_referral(self.as_role(
                Role::CenterOfficer,
                pb::ReassignReferralRequest {
                    name: r.name.clone(),
                    etag: String::new(),
                    institution: to.name.clone(),
                    ..Default::default()
                },
            ))
            .await
            .map(|r| r.into_inner().referral.unwrap())
    }

    /// The referral `name` as the institution `inst` reads it.
    async fn read_as(&self, inst: &Inst, name: &str) -> Result<pb::Referral, tonic::Status> {
        let req = pb::GetReferralRequest { name: name.into() };
        let r = self
            .cases
            .clone()
            .get_referral(self.as_inst(inst, req))
            .await;
        r.map(|r| r.into_inner().referral.unwrap())
    }

    /// `inst` accepts `r` (at its etag).
    async fn accept(&self, inst: &Inst, r: &pb::Referral) -> pb::Referral {
        self.cases
            .clone()
            .accept_referral(self.as_inst(
                inst,
                pb::AcceptReferralRequest {
                    name: r.name.clone(),
                    etag: r.etag.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .referral
            .unwrap()
    }

    /// `filing` created by `inst`: its draft.
    async fn draft(&self, inst: &Inst, filing: pb::Filing) -> pb::Filing {
        self.cases
            .clone()
            .create_filing(self.as_inst(
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
            .unwrap()
    }

    /// `inst` submits `f`, with its etag when `with_etag` (otherwise unconditionally).
    async fn submit(
        &self,
        inst: &Inst,
        f: &pb::Filing,
        with_etag: bool,
    ) -> Result<pb::Filing, tonic::Status> {
        let etag = if with_etag {
            f.etag.clone()
        } else {
            String::new()
        };
        self.cases
            .clone()
            .submit_filing(self.as_inst(
                inst,
                pb::SubmitFilingRequest {
                    name: f.name.clone(),
                    etag,
                },
            ))
            .await
            .map(|r| r.into_inner().filing.unwrap())
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

/// The two neighbours of the tests' disputes; the first with his national code.
fn disputants() -> Vec<Party> {
    vec![
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
    ]
}

fn dispute(to: &Inst) -> pb::Referral {
    pb::Referral {
        source: pb::ReferralSource::DisputeResolutionCenter as i32,
        source_case_number: "۱۴۰۵-۱۲۳".into(),
        kind: pb::ReferralKind::Reconciliation as i32,
        activity_area: ActivityArea::Family as i32,
        province: "اردبیل".into(),
        parties: disputants(),
        summary: "اختلاف ملکی میان همسایگان".into(),
        institution: to.name.clone(),
        // Reconciliation: offered only with every party's agreement (art. 82).
        agreements: agreements(0..2),
        ..Default::default()
    }
}

/// The recorded agreement of each party of `parties` (by index), with its document.
fn agreements(parties: std::ops::Range<i32>) -> Vec<pb::PartyAgreement> {
    parties
        .map(|i| pb::PartyAgreement {
            party_index: i,
            given_by: "طرف دعوا".into(),
            time: Some(from_now(Duration::ZERO)),
            document: Some(DocumentRef {
                title: "موافقت‌نامه".into(),
                sha256: "ef".repeat(32),
                size_bytes: 10,
                media_type: "application/pdf".into(),
            }),
        })
        .collect()
}

fn complaint(kind: pb::FilingKind, with_consent: bool) -> pb::Filing {
    pb::Filing {
        kind: kind as i32,
        activity_area: ActivityArea::Women as i32,
        authority: "دادسرای عمومی و انقلاب اردبیل".into(),
        province: "اردبیل".into(),
        subject: "شکایت از خشونت خانگی".into(),
        description: "شرح ماجرا".into(),
        parties: victim_and_accused("مریم"),
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
    let mut filing = complaint(pb::FilingKind::Complaint, true);
    filing.parties[0].national_code = "0076229645".into();
    // `sealed` is not the filing institution's to set: ignored on input.
    filing.parties[0].sealed = true;
    let f = e.draft(inst, filing).await;
    assert!(!f.parties[0].sealed);
    e.submit(inst, &f, true).await.unwrap()
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
