//! The registry served for real: in-process on an ephemeral port, a fresh database per
//! test, called over gRPC. Every test runs on SQLite and on PostgreSQL.

use std::time::Duration;

use futures::StreamExt;
use mosharekat_api::common::v1::audit_service_client::AuditServiceClient;
use mosharekat_api::common::v1::{self as common, ActivityArea};
use mosharekat_api::registry::v1 as pb;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use mosharekat_platform::auth::Role;
use mosharekat_platform::clock::Clock;
use mosharekat_platform::testing::{Backend, TestDb, TestKeys};
use mosharekat_registry::testing::RunningRegistry;
use mosharekat_testkit::{
    authed, code, fields, invalid_field, now_secs, on_both_databases, reason, ts,
};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

mod audit;
mod bad_input;
mod browser;
mod calendar;
mod eligibility;
mod events;
mod idempotency;
mod institutions;
mod licences;
mod listing;
mod public_record;
mod roles;
mod serving;
mod tls;

struct App {
    keys: TestKeys,
    db: TestDb,
    reg: RunningRegistry,
    client: RegistryServiceClient<Channel>,
    audit: AuditServiceClient<Channel>,
}

async fn start(db: &TestDb, keys: &TestKeys) -> RunningRegistry {
    RunningRegistry::start(RunningRegistry::settings(&db.url, &keys.public_key))
        .await
        .expect("registry starts")
}

async fn app(backend: Backend) -> App {
    let keys = TestKeys::new().unwrap();
    let db = TestDb::new(backend).await.expect("a fresh database");
    let settings = RunningRegistry::settings(&db.url, &keys.public_key);
    app_with(keys, db, settings).await
}

async fn app_with(keys: TestKeys, db: TestDb, settings: mosharekat_registry::Settings) -> App {
    let reg = RunningRegistry::start(settings)
        .await
        .expect("registry starts");
    let ch = Channel::from_shared(reg.uri())
        .unwrap()
        .connect()
        .await
        .unwrap();
    App {
        keys,
        db,
        reg,
        client: RegistryServiceClient::new(ch.clone()).max_decoding_message_size(64 << 20),
        audit: AuditServiceClient::new(ch),
    }
}

impl App {
    fn as_role<T>(&self, role: Role, msg: T) -> Request<T> {
        let inst = (role == Role::Institution).then_some("none");
        self.req(self.keys.bearer(role, inst), msg)
    }
    /// A request by `role`; an institution's token is for institution `own`.
    fn who<T>(&self, role: Role, own: &str, msg: T) -> Request<T> {
        if role == Role::Institution {
            self.as_institution(own, msg)
        } else {
            self.as_role(role, msg)
        }
    }
    fn admin<T>(&self, msg: T) -> Request<T> {
        self.as_role(Role::Admin, msg)
    }
    fn as_institution<T>(&self, id: &str, msg: T) -> Request<T> {
        self.req(self.keys.bearer(Role::Institution, Some(id)), msg)
    }
    fn req<T>(&self, bearer: String, msg: T) -> Request<T> {
        authed(bearer, msg)
    }

    async fn create(&self, n: u32) -> pb::Institution {
        let mut c = self.client.clone();
        c.create_institution(self.admin(pb::CreateInstitutionRequest {
            request_id: String::new(),
            institution: Some(institution(n)),
        }))
        .await
        .expect("institution created")
        .into_inner()
        .institution
        .unwrap()
    }

    async fn apply(&self, inst: &pb::Institution, until_secs: i64) -> pb::Licence {
        let mut c = self.client.clone();
        c.create_licence(self.admin(pb::CreateLicenceRequest {
            parent: inst.name.clone(),
            request_id: String::new(),
            licence: Some(licence(until_secs)),
        }))
        .await
        .expect("licence applied for")
        .into_inner()
        .licence
        .unwrap()
    }

    async fn approve(&self, l: &pb::Licence) -> pb::Licence {
        let mut c = self.client.clone();
        c.approve_licence(self.admin(pb::ApproveLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        }))
        .await
        .expect("approved")
        .into_inner()
        .licence
        .unwrap()
    }

    /// The licence `name`, as an administrator reads it.
    async fn read_licence(&self, name: &str) -> pb::Licence {
        let req = pb::GetLicenceRequest { name: name.into() };
        let r = self.client.clone().get_licence(self.admin(req)).await;
        r.unwrap().into_inner().licence.unwrap()
    }

    /// An administrator suspends `l`, unconditionally (no etag), for `reason`.
    async fn suspend(&self, l: &pb::Licence, reason: &str) -> Result<pb::Licence, Status> {
        let req = pb::SuspendLicenceRequest {
            name: l.name.clone(),
            etag: String::new(),
            reason: reason.into(),
        };
        let r = self.client.clone().suspend_licence(self.admin(req)).await;
        r.map(|r| r.into_inner().licence.unwrap())
    }

    /// An administrator reinstates `l`, unconditionally (no etag).
    async fn reinstate(&self, l: &pb::Licence) -> Result<pb::Licence, Status> {
        let req = pb::ReinstateLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        };
        let r = self.client.clone().reinstate_licence(self.admin(req)).await;
        r.map(|r| r.into_inner().licence.unwrap())
    }

    /// An administrator revokes `l`, unconditionally (no etag), for `reason`.
    async fn revoke(&self, l: &pb::Licence, reason: &str) -> Result<pb::Licence, Status> {
        let req = pb::RevokeLicenceRequest {
            name: l.name.clone(),
            etag: String::new(),
            reason: reason.into(),
        };
        let r = self.client.clone().revoke_licence(self.admin(req)).await;
        r.map(|r| r.into_inner().licence.unwrap())
    }

    /// Whether `inst` may file a complaint in mediation, the tests' usual question.
    async fn may_complain(&self, inst: &pb::Institution) -> pb::EligibilityReason {
        self.eligibility(
            inst,
            pb::PermittedAction::FileComplaint,
            ActivityArea::Mediation,
        )
        .await
    }

    async fn eligibility(
        &self,
        inst: &pb::Institution,
        action: pb::PermittedAction,
        area: ActivityArea,
    ) -> pb::EligibilityReason {
        let mut c = self.client.clone();
        let r = c
            .check_eligibility(self.as_role(
                Role::Service,
                pb::CheckEligibilityRequest {
                    institution: inst.name.clone(),
                    action: action as i32,
                    activity_area: area as i32,
                    province: String::new(),
                },
            ))
            .await
            .expect("eligibility answered")
            .into_inner();
        assert_eq!(
            r.eligible,
            r.reason == pb::EligibilityReason::Eligible as i32
        );
        pb::EligibilityReason::try_from(r.reason).unwrap()
    }
}

fn legal_id(n: u32) -> String {
    mosharekat_testkit::legal_id(14, 10_000 + n)
}

fn national_code(n: u32) -> String {
    mosharekat_testkit::national_code(123_456 + n * 7)
}

fn institution(n: u32) -> pb::Institution {
    pb::Institution {
        display_name: format!("کانون میانجيگری شماره {n}"),
        kind: pb::InstitutionKind::Ngo as i32,
        national_id: legal_id(n),
        registration_number: format!("{}", 1000 + n),
        registering_authority: "اداره ثبت شرکت‌ها و مؤسسات غیرتجاری".into(),
        province: "اردبیل".into(),
        city: "اردبیل".into(),
        address: "خیابان امام".into(),
        phone: "045-33333333".into(),
        email: format!("info{n}@example.org"),
        activity_areas: vec![
            ActivityArea::Mediation as i32,
            ActivityArea::Reconciliation as i32,
            ActivityArea::Women as i32,
        ],
        representatives: vec![pb::Representative {
            full_name: "زهرا رضایی".into(),
            national_code: national_code(n),
            role: "مدیرعامل".into(),
            phone: "09141234567".into(),
        }],
        ..Default::default()
    }
}

fn licence(until_secs: i64) -> pb::Licence {
    pb::Licence {
        activity_areas: vec![
            ActivityArea::Mediation as i32,
            ActivityArea::Reconciliation as i32,
        ],
        permitted_actions: vec![
            pb::PermittedAction::FileComplaint as i32,
            pb::PermittedAction::AcceptReferrals as i32,
        ],
        province: "اردبيل".into(),
        valid_until: Some(ts(until_secs, 0)),
        ..Default::default()
    }
}

/// The licence event stream after `after`, as the service role follows it.
async fn event_stream(app: &App, after: i64) -> tonic::Streaming<pb::WatchLicenceEventsResponse> {
    app.client
        .clone()
        .watch_licence_events(app.as_role(
            Role::Service,
            pb::WatchLicenceEventsRequest {
                after_sequence: after,
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn events(app: &App, after: i64, n: usize) -> Vec<pb::LicenceEvent> {
    let mut s = event_stream(app, after).await;
    let mut out = Vec::new();
    while out.len() < n {
        let e = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .expect("an event in time");
        out.push(e.unwrap().unwrap().event.unwrap());
    }
    out
}

async fn no_more_events(app: &App, after: i64) -> bool {
    let mut s = event_stream(app, after).await;
    tokio::time::timeout(Duration::from_millis(1500), s.next())
        .await
        .is_err()
}
