//! The registry served for real: in-process on an ephemeral port, a fresh database per
//! test, called over gRPC. Every test runs on SQLite and on PostgreSQL.

use std::time::Duration;

use futures::StreamExt;
use mosharekat_api::common::v1::audit_service_client::AuditServiceClient;
use mosharekat_api::common::v1::{self as common, ActivityArea};
use mosharekat_api::registry::v1 as pb;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use mosharekat_persian::ids::{legal_entity_check_digit, national_code_check_digit};
use mosharekat_platform::auth::Role;
use mosharekat_platform::clock::Clock;
use mosharekat_platform::testing::{Backend, TestDb, TestKeys};
use mosharekat_registry::testing::RunningRegistry;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

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
        let mut r = Request::new(msg);
        r.metadata_mut()
            .insert("authorization", bearer.parse().unwrap());
        r
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
    let ten = format!("14{:08}", 10_000 + n);
    format!("{ten}{}", legal_entity_check_digit(&ten).unwrap())
}

fn national_code(n: u32) -> String {
    let nine = format!("{:09}", 123_456 + n * 7);
    format!("{nine}{}", national_code_check_digit(&nine).unwrap())
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

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn ts(secs: i64, nanos: i32) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: secs,
        nanos,
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

fn code<T>(r: Result<T, tonic::Status>) -> Code {
    r.err().map_or(Code::Ok, |s| s.code())
}

fn reason_of(s: &tonic::Status) -> String {
    s.get_error_details()
        .error_info()
        .map(|e| e.reason.clone())
        .unwrap_or_default()
}

fn bad_fields(s: &tonic::Status) -> Vec<String> {
    s.get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await
                }
            )*
        }
    };
}

on_both_databases!(
    licence_life_cycle_with_eligibility_at_each_step,
    licence_expires_once,
    duplicate_national_id_is_already_exists,
    retried_create_makes_one_row,
    stale_etag_is_aborted,
    paging_through_1000_institutions_returns_each_once,
    list_filters_and_folded_search,
    event_stream_resumes_after_restart,
    every_role_against_every_rpc,
    no_token_is_unauthenticated,
    tampered_audit_record_is_named,
    concurrent_writers_all_succeed,
    oversized_request_is_resource_exhausted,
    health_turns_not_serving_before_the_drain,
    bad_input_names_the_field,
    arbitrary_unicode_never_yields_internal,
    dissolving_ends_licences,
    statute_cannot_shrink_below_a_live_licence,
    statute_change_and_licence_application_race_safely,
    typed_query_is_folded_as_the_stored_name,
    control_characters_in_queries_and_names_are_refused,
    request_ids_belong_to_their_caller,
    malformed_bodies_are_invalid_argument,
    licence_events_name_who_changed_them,
    every_rpc_against_every_role,
    batch_eligibility_answers_in_order,
    listed_licences_carry_their_own_histories,
);

async fn licence_life_cycle_with_eligibility_at_each_step(b: Backend) {
    use pb::EligibilityReason as R;
    use pb::PermittedAction as P;
    let app = app(b).await;
    let mut c = app.client.clone();
    let inst = app.create(1).await;
    let m = ActivityArea::Mediation;
    assert_eq!(
        app.eligibility(&inst, P::FileComplaint, m).await,
        R::NoLicence
    );

    let l = app.apply(&inst, now_secs() + 365 * 86400).await;
    assert_eq!(l.state, pb::LicenceState::Pending as i32);
    assert_eq!(l.province, "اردبیل", "folded to Persian yeh");
    assert_eq!(
        app.eligibility(&inst, P::FileComplaint, m).await,
        R::LicencePending
    );

    let licensed = |inst: &pb::Institution| {
        let mut c = app.client.clone();
        let req = app.as_role(
            Role::Service,
            pb::CheckLicensedRequest {
                institution: inst.name.clone(),
                province: String::new(),
            },
        );
        async move { c.check_licensed(req).await.unwrap().into_inner() }
    };
    assert_eq!(licensed(&inst).await.reason, R::LicencePending as i32);
    let l = app.approve(&l).await;
    assert_eq!(l.state, pb::LicenceState::Active as i32);
    // Named under another institution, the licence is not found (the name as sent), and a
    // transition on that name changes nothing.
    let other = app.create(2).await;
    let foreign = format!(
        "{}/licences/{}",
        other.name,
        l.name.rsplit('/').next().unwrap()
    );
    let e = c
        .get_licence(app.admin(pb::GetLicenceRequest {
            name: foreign.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (
            e.code(),
            e.get_error_details()
                .resource_info()
                .map(|i| i.resource_name.clone())
        ),
        (Code::NotFound, Some(foreign.clone()))
    );
    let e = c
        .suspend_licence(app.admin(pb::SuspendLicenceRequest {
            name: foreign.clone(),
            etag: String::new(),
            reason: "x".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let answer = licensed(&inst).await;
    assert!(answer.licensed);
    assert_eq!(answer.licence, l.name);
    assert_eq!(
        app.eligibility(&inst, P::FileComplaint, m).await,
        R::Eligible
    );
    assert_eq!(
        app.eligibility(&inst, P::ReportCrime, m).await,
        R::ActionNotLicensed
    );
    assert_eq!(
        app.eligibility(&inst, P::FileComplaint, ActivityArea::Women)
            .await,
        R::AreaNotLicensed
    );

    let e = c
        .suspend_licence(app.admin(pb::SuspendLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), bad_fields(&e)),
        (Code::InvalidArgument, vec!["reason".to_string()])
    );
    let l = c
        .suspend_licence(app.admin(pb::SuspendLicenceRequest {
            name: l.name.clone(),
            etag: l.etag.clone(),
            reason: "گزارش بازرسی".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    assert_eq!(l.state, pb::LicenceState::Suspended as i32);
    assert_eq!(
        app.eligibility(&inst, P::FileComplaint, m).await,
        R::LicenceSuspended
    );
    let e = c
        .approve_licence(app.admin(pb::ApproveLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), reason_of(&e).as_str()),
        (Code::FailedPrecondition, "LICENCE_STATE_CONFLICT")
    );

    let l = c
        .reinstate_licence(app.admin(pb::ReinstateLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    assert_eq!(l.state, pb::LicenceState::Active as i32);
    assert_eq!(
        app.eligibility(&inst, P::AcceptReferrals, ActivityArea::Reconciliation)
            .await,
        R::Eligible
    );

    let later = now_secs() + 2 * 365 * 86400;
    let l = c
        .renew_licence(app.admin(pb::RenewLicenceRequest {
            name: l.name.clone(),
            valid_until: Some(ts(later, 0)),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    assert_eq!(l.valid_until.as_ref().unwrap().seconds, later);

    // A second licence in the same province cannot be in force beside it.
    let second = app.apply(&inst, now_secs() + 86400).await;
    let e = c
        .approve_licence(app.admin(pb::ApproveLicenceRequest {
            name: second.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(reason_of(&e), "LICENCE_ALREADY_IN_FORCE");

    let l = c
        .revoke_licence(app.admin(pb::RevokeLicenceRequest {
            name: l.name.clone(),
            etag: String::new(),
            reason: "تخلف".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    assert_eq!(l.state, pb::LicenceState::Revoked as i32);
    assert_eq!(
        app.eligibility(&inst, P::FileComplaint, m).await,
        R::LicencePending,
        "the second is pending"
    );
    let e = c
        .reinstate_licence(app.admin(pb::ReinstateLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let to_states: Vec<i32> = l.history.iter().map(|h| h.to_state).collect();
    use pb::LicenceState as S;
    assert_eq!(
        to_states,
        [
            S::Pending,
            S::Active,
            S::Suspended,
            S::Active,
            S::Active,
            S::Revoked
        ]
        .map(|s| s as i32)
    );
    assert!(
        l.history
            .iter()
            .all(|h| h.actor == "test-admin" && h.time.is_some())
    );

    // Areas outside the statute are refused.
    let mut outside = licence(now_secs() + 86400);
    outside.activity_areas = vec![ActivityArea::Environment as i32];
    let e = c
        .create_licence(app.admin(pb::CreateLicenceRequest {
            parent: inst.name.clone(),
            request_id: String::new(),
            licence: Some(outside),
        }))
        .await
        .unwrap_err();
    assert_eq!(reason_of(&e), "AREA_NOT_IN_STATUTE");

    let v = app
        .audit
        .clone()
        .verify_audit_chain(app.as_role(Role::Auditor, common::VerifyAuditChainRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(v.intact, "{v:?}");
    assert!(v.records_checked >= 8);
}

async fn licence_expires_once(b: Backend) {
    // The registry reads a manual clock: the licence expires when the test moves it, not
    // after a wait.
    let keys = TestKeys::new().unwrap();
    let db = TestDb::new(b).await.expect("a fresh database");
    let clock = Clock::manual(chrono::Utc::now());
    let mut settings = RunningRegistry::settings(&db.url, &keys.public_key);
    settings.registry.clock = clock.clone();
    let app = app_with(keys, db, settings).await;
    let inst = app.create(2).await;
    let l = app.apply(&inst, now_secs() + 3600).await;
    app.approve(&l).await;
    assert_eq!(
        app.eligibility(
            &inst,
            pb::PermittedAction::FileComplaint,
            ActivityArea::Mediation
        )
        .await,
        pb::EligibilityReason::Eligible
    );
    clock.advance(chrono::Duration::hours(2));
    assert_eq!(
        app.eligibility(
            &inst,
            pb::PermittedAction::FileComplaint,
            ActivityArea::Mediation
        )
        .await,
        pb::EligibilityReason::LicenceExpired
    );
    assert_eq!(
        mosharekat_registry::events::sweep_expired(&app.reg.registry)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        mosharekat_registry::events::sweep_expired(&app.reg.registry)
            .await
            .unwrap(),
        0
    );
    let kinds = events(&app, 0, 3).await;
    use pb::LicenceEventKind as K;
    assert_eq!(
        kinds.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [K::Applied, K::Approved, K::Expired].map(|k| k as i32)
    );
    // No caller expired it: the registry did, and the event says so.
    assert_eq!(
        (kinds[2].actor.as_str(), kinds[2].actor_role.as_str()),
        ("system", "SERVICE")
    );
    assert!(no_more_events(&app, 3).await);
}

async fn licence_events_name_who_changed_them(b: Backend) {
    use pb::LicenceEventKind as K;
    use sea_orm::ConnectionTrait;
    let app = app(b).await;
    let inst = app.create(31).await;
    let l = app.apply(&inst, now_secs() + 86400).await;
    let l = app.approve(&l).await;
    let officer = app
        .keys
        .bearer_with(Role::RegistryOfficer, |r| r.subject = "officer-42".into());
    app.client
        .clone()
        .suspend_licence(app.req(
            officer,
            pb::SuspendLicenceRequest {
                name: l.name.clone(),
                etag: String::new(),
                reason: "بررسی".into(),
            },
        ))
        .await
        .unwrap();
    let got = events(&app, 0, 3).await;
    assert_eq!(
        got.iter()
            .map(|e| (e.kind, e.actor.as_str(), e.actor_role.as_str()))
            .collect::<Vec<_>>(),
        [
            (K::Applied as i32, "test-admin", "ADMIN"),
            (K::Approved as i32, "test-admin", "ADMIN"),
            (K::Suspended as i32, "officer-42", "REGISTRY_OFFICER"),
        ]
    );
    // An event stored without an actor, written as a replica that does not know the role
    // column would write it, is still served, naming no one.
    let (inst_id, lic_id) = l
        .name
        .trim_start_matches("institutions/")
        .split_once("/licences/")
        .unwrap();
    let db = mosharekat_platform::db::Db::connect(&app.db.url, &Default::default())
        .await
        .unwrap();
    db.conn()
        .execute_unprepared(&format!(
            "INSERT INTO licence_events (seq, licence_id, institution_id, kind, from_state, \
             to_state, actor, reason, time_us, traceparent) \
             VALUES (4, '{lic_id}', '{inst_id}', {}, 3, 2, '', 'old', 0, '')",
            K::Reinstated as i32
        ))
        .await
        .unwrap();
    let old = events(&app, 3, 1).await;
    assert_eq!(
        (
            old[0].sequence,
            old[0].actor.as_str(),
            old[0].actor_role.as_str()
        ),
        (4, "", "")
    );
    assert_eq!(old[0].licence, l.name);
}

async fn events(app: &App, after: i64, n: usize) -> Vec<pb::LicenceEvent> {
    let mut s = app
        .client
        .clone()
        .watch_licence_events(app.as_role(
            Role::Service,
            pb::WatchLicenceEventsRequest {
                after_sequence: after,
            },
        ))
        .await
        .unwrap()
        .into_inner();
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
    let mut s = app
        .client
        .clone()
        .watch_licence_events(app.as_role(
            Role::Service,
            pb::WatchLicenceEventsRequest {
                after_sequence: after,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(Duration::from_millis(1500), s.next())
        .await
        .is_err()
}

async fn duplicate_national_id_is_already_exists(b: Backend) {
    let app = app(b).await;
    let first = app.create(3).await;
    let mut again = institution(3);
    again.national_id = format!("۱۴{}", &legal_id(3)[2..]); // the same ID in Persian digits
    let e = app
        .client
        .clone()
        .create_institution(app.admin(pb::CreateInstitutionRequest {
            request_id: String::new(),
            institution: Some(again),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert_eq!(
        e.get_error_details().resource_info().unwrap().resource_name,
        first.name
    );
}

async fn retried_create_makes_one_row(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let req = pb::CreateInstitutionRequest {
        request_id: "retry-0001".into(),
        institution: Some(institution(4)),
    };
    let a = c
        .create_institution(app.admin(req.clone()))
        .await
        .unwrap()
        .into_inner();
    let b2 = c
        .create_institution(app.admin(req.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a, b2);
    // What the create returned (built without reading the row back) is what is stored.
    let stored = c
        .get_institution(app.admin(pb::GetInstitutionRequest {
            name: a.institution.as_ref().unwrap().name.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.institution, stored.institution);
    let list = c
        .list_institutions(app.admin(pb::ListInstitutionsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.institutions.len(), 1);
    // The same id with another request is refused.
    let mut other = req.clone();
    other.institution.as_mut().unwrap().display_name = "دیگری".into();
    let e = c.create_institution(app.admin(other)).await.unwrap_err();
    assert_eq!(
        (e.code(), bad_fields(&e)),
        (Code::InvalidArgument, vec!["request_id".to_string()])
    );
}

async fn stale_etag_is_aborted(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let inst = app.create(5).await;
    let mask = |p: &str| {
        Some(prost_types::FieldMask {
            paths: vec![p.into()],
        })
    };
    let mut changed = inst.clone();
    changed.city = "مشگین‌شهر".into();
    let updated = c
        .update_institution(app.admin(pb::UpdateInstitutionRequest {
            institution: Some(changed.clone()),
            update_mask: mask("city"),
        }))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    assert_eq!(updated.city, "مشگین‌شهر");
    assert_ne!(updated.etag, inst.etag);
    // The old etag is stale now.
    let e = c
        .update_institution(app.admin(pb::UpdateInstitutionRequest {
            institution: Some(changed),
            update_mask: mask("city"),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    let l = app.apply(&updated, now_secs() + 86400).await;
    let e = c
        .approve_licence(app.admin(pb::ApproveLicenceRequest {
            name: l.name.clone(),
            etag: "999".into(),
            reason: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
}

async fn paging_through_1000_institutions_returns_each_once(b: Backend) {
    let app = app(b).await;
    let mut created = std::collections::BTreeSet::new();
    let mut tasks = Vec::new();
    for chunk in 0..4u32 {
        let c = app.client.clone();
        let bearer = app.keys.bearer(Role::Admin, None);
        tasks.push(tokio::spawn(async move {
            let mut c = c;
            let mut names = Vec::new();
            for i in 0..250u32 {
                let n = 100 + chunk * 250 + i;
                let mut r = Request::new(pb::CreateInstitutionRequest {
                    request_id: String::new(),
                    institution: Some(institution(n)),
                });
                r.metadata_mut()
                    .insert("authorization", bearer.parse().unwrap());
                names.push(
                    c.create_institution(r)
                        .await
                        .unwrap()
                        .into_inner()
                        .institution
                        .unwrap()
                        .name,
                );
            }
            names
        }));
    }
    for t in tasks {
        created.extend(t.await.unwrap());
    }
    assert_eq!(created.len(), 1000);
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let r = app
            .client
            .clone()
            .list_institutions(app.admin(pb::ListInstitutionsRequest {
                page_size: 77,
                page_token: token.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(r.institutions.into_iter().map(|i| i.name));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(pages, 1000usize.div_ceil(77));
    assert_eq!(seen.len(), 1000, "no row twice");
    assert_eq!(
        seen.iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        created
    );
    // A page token used with other filters is refused.
    let first = app
        .client
        .clone()
        .list_institutions(app.admin(pb::ListInstitutionsRequest {
            page_size: 10,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let e = app
        .client
        .clone()
        .list_institutions(app.admin(pb::ListInstitutionsRequest {
            page_size: 10,
            page_token: first.next_page_token,
            query: "x".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&e), ["page_token"]);
}

async fn list_filters_and_folded_search(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let a = app.create(6).await;
    let mut other = institution(7);
    other.display_name = "انجمن پيشگيري از جرم".into();
    other.province = "تهران".into();
    other.activity_areas = vec![ActivityArea::CrimePrevention as i32];
    c.create_institution(app.admin(pb::CreateInstitutionRequest {
        request_id: String::new(),
        institution: Some(other),
    }))
    .await
    .unwrap();
    let names = |r: pb::ListInstitutionsResponse| {
        r.institutions
            .into_iter()
            .map(|i| i.display_name)
            .collect::<Vec<_>>()
    };
    let found = c
        .list_institutions(app.admin(pb::ListInstitutionsRequest {
            query: "پیشگیری".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(found), ["انجمن پیشگیری از جرم"]);
    let by_province = c
        .list_institutions(app.admin(pb::ListInstitutionsRequest {
            province: "اردبيل".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_province.institutions.len(), 1);
    let by_area = c
        .list_institutions(app.admin(pb::ListInstitutionsRequest {
            activity_area: ActivityArea::Women as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_area.institutions[0].name, a.name);
    let l = app.apply(&a, now_secs() + 86400).await;
    app.approve(&l).await;
    let active = c
        .list_institutions(app.admin(pb::ListInstitutionsRequest {
            licence_state: pb::LicenceState::Active as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        active
            .institutions
            .iter()
            .map(|i| i.name.clone())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&a.name)
    );
    // A judicial officer sees representatives' codes masked.
    let seen = c
        .get_institution(app.as_role(
            Role::JudicialOfficer,
            pb::GetInstitutionRequest {
                name: a.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    assert!(seen.representatives[0].national_code.starts_with("******"));
}

async fn event_stream_resumes_after_restart(b: Backend) {
    let App {
        keys,
        db,
        reg,
        client,
        ..
    } = app(b).await;
    let app = App {
        audit: AuditServiceClient::new(
            Channel::from_shared(reg.uri())
                .unwrap()
                .connect()
                .await
                .unwrap(),
        ),
        keys,
        db,
        reg,
        client,
    };
    let inst = app.create(8).await;
    let l = app.apply(&inst, now_secs() + 86400).await;
    let l = app.approve(&l).await;
    app.client
        .clone()
        .suspend_licence(app.admin(pb::SuspendLicenceRequest {
            name: l.name.clone(),
            etag: String::new(),
            reason: "بررسی".into(),
        }))
        .await
        .unwrap();
    let App { keys, db, reg, .. } = app;
    reg.stop().await.unwrap();
    let reg = start(&db, &keys).await;
    let ch = Channel::from_shared(reg.uri())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let app = App {
        client: RegistryServiceClient::new(ch.clone()),
        audit: AuditServiceClient::new(ch),
        keys,
        db,
        reg,
    };
    app.client
        .clone()
        .reinstate_licence(app.admin(pb::ReinstateLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let got = events(&app, 2, 2).await;
    assert_eq!(got.iter().map(|e| e.sequence).collect::<Vec<_>>(), [3, 4]);
    use pb::LicenceEventKind as K;
    assert_eq!(
        got.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [K::Suspended as i32, K::Reinstated as i32]
    );
    assert_eq!(got[0].licence, l.name);
    assert!(no_more_events(&app, 4).await);
    // A live subscriber sees a new event as it happens.
    let mut live = app
        .client
        .clone()
        .watch_licence_events(app.as_role(
            Role::Service,
            pb::WatchLicenceEventsRequest { after_sequence: 4 },
        ))
        .await
        .unwrap()
        .into_inner();
    app.client
        .clone()
        .revoke_licence(app.admin(pb::RevokeLicenceRequest {
            name: l.name.clone(),
            etag: String::new(),
            reason: "پایان".into(),
        }))
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), live.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .event
        .unwrap();
    assert_eq!((e.sequence, e.kind), (5, K::Revoked as i32));
}

async fn every_role_against_every_rpc(b: Backend) {
    let app = app(b).await;
    let own = app.create(9).await;
    let other = app.create(10).await;
    let own_id = own.name.trim_start_matches("institutions/").to_owned();
    let other_licence = app.apply(&other, now_secs() + 86400).await;
    for role in Role::ALL {
        let mut c = app.client.clone();
        let registrar = matches!(role, Role::Admin | Role::RegistryOfficer);

        let got = code(
            c.create_institution(app.who(
                role,
                &own_id,
                pb::CreateInstitutionRequest {
                    request_id: String::new(),
                    institution: Some(institution(200 + role as u32)),
                },
            ))
            .await,
        );
        assert_eq!(
            got,
            if registrar {
                Code::Ok
            } else {
                Code::PermissionDenied
            },
            "{role} CreateInstitution"
        );

        let got = code(
            c.get_institution(app.who(
                role,
                &own_id,
                pb::GetInstitutionRequest {
                    name: other.name.clone(),
                },
            ))
            .await,
        );
        assert_eq!(
            got,
            if role == Role::Institution {
                Code::NotFound
            } else {
                Code::Ok
            },
            "{role} GetInstitution(other)"
        );
        if role == Role::Institution {
            let mine = c
                .get_institution(app.who(
                    role,
                    &own_id,
                    pb::GetInstitutionRequest {
                        name: own.name.clone(),
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                mine.institution.unwrap().representatives[0].national_code,
                own.representatives[0].national_code
            );
            let listed = c
                .list_institutions(app.who(role, &own_id, pb::ListInstitutionsRequest::default()))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                listed
                    .institutions
                    .iter()
                    .map(|i| i.name.clone())
                    .collect::<Vec<_>>(),
                std::slice::from_ref(&own.name)
            );
        }

        let got = code(
            c.list_institutions(app.who(role, &own_id, pb::ListInstitutionsRequest::default()))
                .await,
        );
        assert_eq!(got, Code::Ok, "{role} ListInstitutions");

        let got = code(
            c.update_institution(app.who(
                role,
                &own_id,
                pb::UpdateInstitutionRequest {
                    institution: Some(other.clone()),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["city".into()],
                    }),
                },
            ))
            .await,
        );
        let expected = if registrar {
            Code::Ok
        } else {
            Code::PermissionDenied
        };
        // The first registrar's update moves the etag on; later ones send a stale etag.
        if !(registrar && got == Code::Aborted) {
            assert_eq!(got, expected, "{role} UpdateInstitution");
        }

        let got = code(
            c.create_licence(app.who(
                role,
                &own_id,
                pb::CreateLicenceRequest {
                    parent: other.name.clone(),
                    request_id: String::new(),
                    licence: Some(licence(now_secs() + 86400)),
                },
            ))
            .await,
        );
        let expected = match role {
            Role::Admin | Role::RegistryOfficer => Code::Ok,
            Role::Institution => Code::NotFound,
            _ => Code::PermissionDenied,
        };
        assert_eq!(got, expected, "{role} CreateLicence(other)");

        let got = code(
            c.get_licence(app.who(
                role,
                &own_id,
                pb::GetLicenceRequest {
                    name: other_licence.name.clone(),
                },
            ))
            .await,
        );
        assert_eq!(
            got,
            if role == Role::Institution {
                Code::NotFound
            } else {
                Code::Ok
            },
            "{role} GetLicence(other)"
        );

        if !registrar {
            let got = code(
                c.approve_licence(app.who(
                    role,
                    &own_id,
                    pb::ApproveLicenceRequest {
                        name: other_licence.name.clone(),
                        ..Default::default()
                    },
                ))
                .await,
            );
            assert_eq!(got, Code::PermissionDenied, "{role} ApproveLicence");
            let got = code(
                c.revoke_licence(app.who(
                    role,
                    &own_id,
                    pb::RevokeLicenceRequest {
                        name: other_licence.name.clone(),
                        etag: String::new(),
                        reason: "x".into(),
                    },
                ))
                .await,
            );
            assert_eq!(got, Code::PermissionDenied, "{role} RevokeLicence");
        }

        let got = code(
            c.check_eligibility(app.who(
                role,
                &own_id,
                pb::CheckEligibilityRequest {
                    institution: other.name.clone(),
                    action: pb::PermittedAction::FileComplaint as i32,
                    activity_area: ActivityArea::Mediation as i32,
                    province: String::new(),
                },
            ))
            .await,
        );
        let expected = match role {
            Role::Member => Code::PermissionDenied,
            Role::Institution => Code::NotFound,
            _ => Code::Ok,
        };
        assert_eq!(got, expected, "{role} CheckEligibility(other)");

        let got = code(
            c.watch_licence_events(app.who(
                role,
                &own_id,
                pb::WatchLicenceEventsRequest { after_sequence: 0 },
            ))
            .await
            .map(|_| ()),
        );
        let expected = if matches!(role, Role::Admin | Role::Auditor | Role::Service) {
            Code::Ok
        } else {
            Code::PermissionDenied
        };
        assert_eq!(got, expected, "{role} WatchLicenceEvents");

        let mut a = app.audit.clone();
        let got = code(
            a.list_audit_records(app.who(
                role,
                &own_id,
                common::ListAuditRecordsRequest::default(),
            ))
            .await,
        );
        let expected = if matches!(role, Role::Admin | Role::Auditor) {
            Code::Ok
        } else {
            Code::PermissionDenied
        };
        assert_eq!(got, expected, "{role} ListAuditRecords");
        let got = code(
            a.verify_audit_chain(app.who(role, &own_id, common::VerifyAuditChainRequest {}))
                .await,
        );
        assert_eq!(got, expected, "{role} VerifyAuditChain");
    }
    // A registry officer approves.
    let l = app
        .client
        .clone()
        .approve_licence(app.as_role(
            Role::RegistryOfficer,
            pb::ApproveLicenceRequest {
                name: other_licence.name.clone(),
                ..Default::default()
            },
        ))
        .await;
    assert!(l.is_ok());
}

async fn no_token_is_unauthenticated(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let e = c
        .list_institutions(Request::new(pb::ListInstitutionsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = c
        .list_institutions(app.req(
            "Bearer not.a.jwt".into(),
            pb::ListInstitutionsRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let foreign = TestKeys::new().unwrap();
    let e = c
        .list_institutions(app.req(
            foreign.bearer(Role::Admin, None),
            pb::ListInstitutionsRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert_eq!(
        e.get_error_details().localized_message().unwrap().locale,
        "fa-IR"
    );
}

async fn tampered_audit_record_is_named(b: Backend) {
    use sea_orm::ConnectionTrait;
    let app = app(b).await;
    for n in 11..14 {
        app.create(n).await;
    }
    let mut a = app.audit.clone();
    let v = a
        .verify_audit_chain(app.admin(common::VerifyAuditChainRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(v.intact && v.records_checked == 3, "{v:?}");
    let records = a
        .list_audit_records(app.as_role(Role::Auditor, common::ListAuditRecordsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(records.records.len(), 3);
    assert_eq!(records.records[1].previous_hash, records.records[0].hash);
    assert!(records.records[0].method.ends_with("/CreateInstitution"));
    let db = mosharekat_platform::db::Db::connect(&app.db.url, &Default::default())
        .await
        .unwrap();
    db.conn()
        .execute_unprepared("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
        .await
        .unwrap();
    let v = a
        .verify_audit_chain(app.admin(common::VerifyAuditChainRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(!v.intact);
    assert_eq!(v.first_broken_sequence, 2);
    assert_eq!(v.records_checked, 1);
    db.conn()
        .execute_unprepared("DELETE FROM audit_log WHERE seq = 2")
        .await
        .unwrap();
    let v = a
        .verify_audit_chain(app.admin(common::VerifyAuditChainRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((v.intact, v.first_broken_sequence), (false, 2));
    assert!(v.problem.contains("missing"), "{}", v.problem);
}

async fn concurrent_writers_all_succeed(b: Backend) {
    let app = app(b).await;
    let mut tasks = Vec::new();
    for w in 0..16u32 {
        let mut c = app.client.clone();
        let bearer = app.keys.bearer(Role::Admin, None);
        tasks.push(tokio::spawn(async move {
            for i in 0..5u32 {
                let mut r = Request::new(pb::CreateInstitutionRequest {
                    request_id: String::new(),
                    institution: Some(institution(2000 + w * 10 + i)),
                });
                r.metadata_mut()
                    .insert("authorization", bearer.parse().unwrap());
                c.create_institution(r)
                    .await
                    .map_err(|s| format!("{:?} {}", s.code(), s.message()))?;
            }
            Ok::<_, String>(())
        }));
    }
    for t in tasks {
        t.await
            .unwrap()
            .expect("no writer fails (no 'database is locked')");
    }
    let v = app
        .audit
        .clone()
        .verify_audit_chain(app.admin(common::VerifyAuditChainRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (v.intact, v.records_checked),
        (true, 80),
        "the chain stays gap-free under concurrency"
    );
}

async fn oversized_request_is_resource_exhausted(b: Backend) {
    let app = app(b).await;
    let mut inst = institution(15);
    inst.address = "x".repeat(5 * 1024 * 1024);
    let e = app
        .client
        .clone()
        .create_institution(app.admin(pb::CreateInstitutionRequest {
            request_id: String::new(),
            institution: Some(inst),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
}

async fn health_turns_not_serving_before_the_drain(b: Backend) {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let keys = TestKeys::new().unwrap();
    let db = TestDb::new(b).await.unwrap();
    let mut s = RunningRegistry::settings(&db.url, &keys.public_key);
    s.server.shutdown_drain_delay = Duration::from_millis(1500).into();
    let reg = RunningRegistry::start(s).await.unwrap();
    let mut h = HealthClient::new(
        Channel::from_shared(reg.uri())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let check = |name: &str| HealthCheckRequest {
        service: name.into(),
    };
    for name in [
        "",
        "mosharekat.registry.v1.RegistryService",
        "mosharekat.common.v1.AuditService",
    ] {
        let st = h.check(check(name)).await.unwrap().into_inner().status;
        assert_eq!(st, ServingStatus::Serving as i32, "{name}");
    }
    let stopping = tokio::spawn(reg.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = h
        .check(check("mosharekat.registry.v1.RegistryService"))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        st,
        ServingStatus::NotServing as i32,
        "NOT_SERVING while still answering, before the drain"
    );
    stopping.await.unwrap().unwrap();
}

async fn bad_input_names_the_field(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let inst = app.create(16).await;
    let l = app.apply(&inst, now_secs() + 86400).await;
    let check = |r: Result<(), tonic::Status>, field: &str| {
        let e = r.expect_err(field);
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert!(
            bad_fields(&e).iter().any(|f| f == field),
            "{field} not in {:?}",
            bad_fields(&e)
        );
    };
    let create = |f: &dyn Fn(&mut pb::Institution)| {
        let mut i = institution(17);
        f(&mut i);
        pb::CreateInstitutionRequest {
            request_id: String::new(),
            institution: Some(i),
        }
    };
    let cases: Vec<(pb::CreateInstitutionRequest, &str)> = vec![
        (
            create(&|i| i.display_name = String::new()),
            "institution.display_name",
        ),
        (
            create(&|i| i.display_name = "ن".repeat(201)),
            "institution.display_name",
        ),
        (
            create(&|i| i.display_name = "نام\u{202E}معکوس".into()),
            "institution.display_name",
        ),
        (create(&|i| i.kind = 0), "institution.kind"),
        (create(&|i| i.kind = 42), "institution.kind"),
        (
            create(&|i| i.national_id = "10380284791".into()),
            "institution.national_id",
        ),
        (
            create(&|i| i.national_id = "abc".into()),
            "institution.national_id",
        ),
        (
            create(&|i| i.registration_number = String::new()),
            "institution.registration_number",
        ),
        (
            create(&|i| i.registering_authority = "\u{0000}".into()),
            "institution.registering_authority",
        ),
        (
            create(&|i| i.province = String::new()),
            "institution.province",
        ),
        (create(&|i| i.city = "x".repeat(101)), "institution.city"),
        (
            create(&|i| i.address = "y".repeat(2001)),
            "institution.address",
        ),
        (create(&|i| i.phone = "call me".into()), "institution.phone"),
        (create(&|i| i.email = "@@".into()), "institution.email"),
        (
            create(&|i| i.activity_areas = vec![]),
            "institution.activity_areas",
        ),
        (
            create(&|i| i.activity_areas = vec![99]),
            "institution.activity_areas[0]",
        ),
        (
            create(&|i| i.representatives[0].national_code = "0076229646".into()),
            "institution.representatives[0].national_code",
        ),
        (
            create(&|i| i.representatives[0].full_name = String::new()),
            "institution.representatives[0].full_name",
        ),
        (
            create(&|i| i.representatives[0].role = String::new()),
            "institution.representatives[0].role",
        ),
        (
            pb::CreateInstitutionRequest {
                request_id: "bad id".into(),
                institution: Some(institution(17)),
            },
            "request_id",
        ),
        (
            pb::CreateInstitutionRequest {
                request_id: String::new(),
                institution: None,
            },
            "institution",
        ),
    ];
    for (req, field) in cases {
        check(
            c.create_institution(app.admin(req)).await.map(|_| ()),
            field,
        );
    }
    for name in [
        "",
        "institutions/",
        "licences/x",
        "institutions/a b",
        "institutions/😀",
    ] {
        check(
            c.get_institution(app.admin(pb::GetInstitutionRequest { name: name.into() }))
                .await
                .map(|_| ()),
            "name",
        );
        check(
            c.get_licence(app.admin(pb::GetLicenceRequest { name: name.into() }))
                .await
                .map(|_| ()),
            "name",
        );
        check(
            c.approve_licence(app.admin(pb::ApproveLicenceRequest {
                name: name.into(),
                ..Default::default()
            }))
            .await
            .map(|_| ()),
            "name",
        );
        check(
            c.dissolve_institution(app.admin(pb::DissolveInstitutionRequest {
                name: name.into(),
                etag: String::new(),
                reason: "x".into(),
            }))
            .await
            .map(|_| ()),
            "name",
        );
    }
    check(
        c.list_institutions(app.admin(pb::ListInstitutionsRequest {
            page_size: -1,
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "page_size",
    );
    check(
        c.list_institutions(app.admin(pb::ListInstitutionsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "page_token",
    );
    check(
        c.list_institutions(app.admin(pb::ListInstitutionsRequest {
            activity_area: 99,
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "activity_area",
    );
    check(
        c.list_institutions(app.admin(pb::ListInstitutionsRequest {
            licence_state: 99,
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "licence_state",
    );
    check(
        c.list_licences(app.admin(pb::ListLicencesRequest {
            parent: "nope".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "parent",
    );
    check(
        c.list_licences(app.admin(pb::ListLicencesRequest {
            parent: "institutions/-".into(),
            state: 42,
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "state",
    );
    let elig = |f: &dyn Fn(&mut pb::CheckEligibilityRequest)| {
        let mut r = pb::CheckEligibilityRequest {
            institution: inst.name.clone(),
            action: pb::PermittedAction::FileComplaint as i32,
            activity_area: ActivityArea::Mediation as i32,
            province: String::new(),
        };
        f(&mut r);
        r
    };
    check(
        c.check_eligibility(app.admin(elig(&|r| r.institution = "x".into())))
            .await
            .map(|_| ()),
        "institution",
    );
    check(
        c.check_eligibility(app.admin(elig(&|r| r.action = 0)))
            .await
            .map(|_| ()),
        "action",
    );
    check(
        c.check_eligibility(app.admin(elig(&|r| r.activity_area = -3)))
            .await
            .map(|_| ()),
        "activity_area",
    );
    let lic = |f: &dyn Fn(&mut pb::Licence)| {
        let mut l = licence(now_secs() + 86400);
        f(&mut l);
        pb::CreateLicenceRequest {
            parent: inst.name.clone(),
            request_id: String::new(),
            licence: Some(l),
        }
    };
    check(
        c.create_licence(app.admin(lic(&|l| l.activity_areas = vec![])))
            .await
            .map(|_| ()),
        "licence.activity_areas",
    );
    check(
        c.create_licence(app.admin(lic(&|l| l.permitted_actions = vec![9])))
            .await
            .map(|_| ()),
        "licence.permitted_actions[0]",
    );
    check(
        c.create_licence(app.admin(lic(&|l| l.province = String::new())))
            .await
            .map(|_| ()),
        "licence.province",
    );
    check(
        c.create_licence(app.admin(lic(&|l| l.valid_until = None)))
            .await
            .map(|_| ()),
        "licence.valid_until",
    );
    check(
        c.create_licence(app.admin(lic(&|l| l.valid_until = Some(ts(i64::MAX, 0)))))
            .await
            .map(|_| ()),
        "licence.valid_until",
    );
    check(
        c.create_licence(app.admin(lic(&|l| l.valid_from = Some(ts(0, -5)))))
            .await
            .map(|_| ()),
        "licence.valid_from",
    );
    check(
        c.create_licence(app.admin(pb::CreateLicenceRequest {
            parent: "bad".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "parent",
    );
    check(
        c.renew_licence(app.admin(pb::RenewLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "valid_until",
    );
    check(
        c.reject_licence(app.admin(pb::RejectLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "reason",
    );
    check(
        c.revoke_licence(app.admin(pb::RevokeLicenceRequest {
            name: l.name.clone(),
            etag: String::new(),
            reason: "\u{202E}".into(),
        }))
        .await
        .map(|_| ()),
        "reason",
    );
    check(
        c.watch_licence_events(app.admin(pb::WatchLicenceEventsRequest { after_sequence: -1 }))
            .await
            .map(|_| ()),
        "after_sequence",
    );
    check(
        c.update_institution(app.admin(pb::UpdateInstitutionRequest {
            institution: Some(inst.clone()),
            update_mask: None,
        }))
        .await
        .map(|_| ()),
        "update_mask",
    );
    check(
        c.update_institution(app.admin(pb::UpdateInstitutionRequest {
            institution: Some(inst.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["national_id".into()],
            }),
        }))
        .await
        .map(|_| ()),
        "update_mask.paths[0]",
    );
    let mut a = app.audit.clone();
    check(
        a.list_audit_records(app.admin(common::ListAuditRecordsRequest {
            page_token: "x.y".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "page_token",
    );
    // Absent things are NOT_FOUND, not INVALID_ARGUMENT.
    let e = c
        .get_institution(app.admin(pb::GetInstitutionRequest {
            name: "institutions/0000".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

async fn arbitrary_unicode_never_yields_internal(b: Backend) {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let app = app(b).await;
    let mut c = app.client.clone();
    let mut runner = TestRunner::deterministic();
    let strings = proptest::collection::vec(proptest::arbitrary::any::<String>(), 4);
    for n in 0..48u32 {
        let s = strings.new_tree(&mut runner).unwrap().current();
        let mut i = institution(3000 + n);
        i.display_name = s[0].clone();
        i.representatives[0].full_name = s[1].clone();
        i.city = s[2].clone();
        i.address = s[3].clone();
        let r = c
            .create_institution(app.admin(pb::CreateInstitutionRequest {
                request_id: String::new(),
                institution: Some(i),
            }))
            .await;
        if let Err(e) = &r {
            assert_eq!(e.code(), Code::InvalidArgument, "{s:?} gave {e:?}");
        }
        let r = c
            .list_institutions(app.admin(pb::ListInstitutionsRequest {
                query: s[0].chars().take(200).collect(),
                province: s[2].chars().take(100).collect(),
                ..Default::default()
            }))
            .await;
        // Controls and bidi characters are refused in a query as in a name, by field.
        if let Err(e) = &r {
            assert_eq!(e.code(), Code::InvalidArgument, "{s:?} gave {e:?}");
            assert!(
                bad_fields(e)
                    .iter()
                    .all(|f| f == "query" || f == "province"),
                "{s:?} gave {e:?}"
            );
        }
        let r = c
            .get_institution(app.admin(pb::GetInstitutionRequest {
                name: format!("institutions/{}", s[1]),
            }))
            .await;
        assert!(
            matches!(
                r.as_ref().map_err(|e| e.code()),
                Err(Code::InvalidArgument | Code::NotFound)
            ),
            "{r:?}"
        );
    }
}

async fn dissolving_ends_licences(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let inst = app.create(18).await;
    let l = app.apply(&inst, now_secs() + 86400).await;
    app.approve(&l).await;
    let d = c
        .dissolve_institution(app.admin(pb::DissolveInstitutionRequest {
            name: inst.name.clone(),
            etag: String::new(),
            reason: "انحلال به حکم دادگاه".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    assert_eq!(d.state, pb::InstitutionState::Dissolved as i32);
    assert_eq!(
        app.eligibility(
            &inst,
            pb::PermittedAction::FileComplaint,
            ActivityArea::Mediation
        )
        .await,
        pb::EligibilityReason::InstitutionDissolved
    );
    let l = c
        .get_licence(app.admin(pb::GetLicenceRequest {
            name: l.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    assert_eq!(l.state, pb::LicenceState::Revoked as i32);
    let kinds: Vec<i32> = events(&app, 0, 3).await.iter().map(|e| e.kind).collect();
    assert_eq!(kinds[2], pb::LicenceEventKind::Revoked as i32);
    // Dissolved institutions are listed only when asked for.
    let listed = c
        .list_institutions(app.admin(pb::ListInstitutionsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.institutions.is_empty());
    let listed = c
        .list_institutions(app.admin(pb::ListInstitutionsRequest {
            include_dissolved: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.institutions.len(), 1);
}

/// An `UpdateInstitution` of `inst`'s statute to `areas`, whatever its etag now is.
fn statute_update(inst: &pb::Institution, areas: &[ActivityArea]) -> pb::UpdateInstitutionRequest {
    let mut i = inst.clone();
    i.etag = String::new();
    i.activity_areas = areas.iter().map(|a| *a as i32).collect();
    pb::UpdateInstitutionRequest {
        institution: Some(i),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["activity_areas".into()],
        }),
    }
}

async fn statute_cannot_shrink_below_a_live_licence(b: Backend) {
    use ActivityArea as A;
    let app = app(b).await;
    let mut c = app.client.clone();
    // Statute: MEDIATION, RECONCILIATION, WOMEN; the licence covers the first two.
    let inst = app.create(40).await;
    let refused = |r: Result<tonic::Response<pb::UpdateInstitutionResponse>, tonic::Status>,
                   lic: &pb::Licence,
                   state: &str| {
        let e = r.expect_err(state);
        assert_eq!(e.code(), Code::FailedPrecondition, "{state}: {e:?}");
        assert_eq!(reason_of(&e), "AREAS_COVERED_BY_LICENCE", "{state}");
        let details = e.get_error_details();
        let info = details.error_info().unwrap();
        assert_eq!(
            info.metadata["areas"], "ACTIVITY_AREA_MEDIATION,ACTIVITY_AREA_RECONCILIATION",
            "{state}"
        );
        assert_eq!(info.metadata["licences"], lic.name, "{state}");
        assert!(
            e.message().contains("MEDIATION") && e.message().contains("RECONCILIATION"),
            "{state}: {}",
            e.message()
        );
        assert!(e.get_error_details().localized_message().is_some());
    };
    let l = app.apply(&inst, now_secs() + 86400).await;
    refused(
        c.update_institution(app.admin(statute_update(&inst, &[A::Women])))
            .await,
        &l,
        "PENDING",
    );
    // Only a covered area refuses: RECONCILIATION alone is named when only it goes.
    let e = c
        .update_institution(app.admin(statute_update(&inst, &[A::Mediation, A::Women])))
        .await
        .unwrap_err();
    assert_eq!(
        e.get_error_details().error_info().unwrap().metadata["areas"],
        "ACTIVITY_AREA_RECONCILIATION"
    );
    let l = app.approve(&l).await;
    refused(
        c.update_institution(app.admin(statute_update(&inst, &[A::Women])))
            .await,
        &l,
        "ACTIVE",
    );
    let l = c
        .suspend_licence(app.admin(pb::SuspendLicenceRequest {
            name: l.name.clone(),
            etag: String::new(),
            reason: "بازرسی".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    refused(
        c.update_institution(app.admin(statute_update(&inst, &[A::Women])))
            .await,
        &l,
        "SUSPENDED",
    );
    // The refused updates changed nothing.
    let stored = c
        .get_institution(app.admin(pb::GetInstitutionRequest {
            name: inst.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    assert_eq!(stored.etag, inst.etag);
    assert_eq!(stored.activity_areas, inst.activity_areas);
    // An area no licence covers may go, and the statute may grow.
    let updated = c
        .update_institution(app.admin(statute_update(
            &inst,
            &[A::Mediation, A::Reconciliation, A::Children],
        )))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    assert_eq!(
        updated.activity_areas,
        [A::Mediation, A::Reconciliation, A::Children].map(|a| a as i32)
    );
    // Once the licence is revoked it holds nothing.
    c.revoke_licence(app.admin(pb::RevokeLicenceRequest {
        name: l.name.clone(),
        etag: String::new(),
        reason: "تخلف".into(),
    }))
    .await
    .unwrap();
    let updated = c
        .update_institution(app.admin(statute_update(&inst, &[A::Women])))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    assert_eq!(updated.activity_areas, [A::Women as i32]);
}

async fn statute_change_and_licence_application_race_safely(b: Backend) {
    use ActivityArea as A;
    let app = app(b).await;
    for n in 0..8 {
        let inst = app.create(50 + n).await;
        let (mut c1, mut c2) = (app.client.clone(), app.client.clone());
        let (update, create) = tokio::join!(
            c1.update_institution(app.admin(statute_update(&inst, &[A::Women]))),
            c2.create_licence(app.admin(pb::CreateLicenceRequest {
                parent: inst.name.clone(),
                request_id: String::new(),
                licence: Some(licence(now_secs() + 86400)),
            })),
        );
        // Whichever commits first, the other is refused: never a licence outside its statute.
        match (&update, &create) {
            (Ok(_), Err(e)) => assert_eq!(reason_of(e), "AREA_NOT_IN_STATUTE", "{e:?}"),
            (Err(e), Ok(_)) => assert_eq!(reason_of(e), "AREAS_COVERED_BY_LICENCE", "{e:?}"),
            other => panic!("round {n}: {other:?}"),
        }
    }
}

async fn typed_query_is_folded_as_the_stored_name(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    app.create(60).await;
    let mut i = institution(61);
    i.display_name = "انجمن حمايت از زنان".into();
    let created = c
        .create_institution(app.admin(pb::CreateInstitutionRequest {
            request_id: String::new(),
            institution: Some(i),
        }))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    // Tatweel, diacritics, Arabic yeh, ZWNJ and digits as people type them.
    for query in ["حمـــایت", "حِمایَت", "حمايت", "حما\u{200C}یت", "زنان  "]
    {
        let found = c
            .list_institutions(app.admin(pb::ListInstitutionsRequest {
                query: query.into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            found
                .institutions
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>(),
            [created.name.as_str()],
            "{query:?}"
        );
    }
}

async fn control_characters_in_queries_and_names_are_refused(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let inst = app.create(70).await;
    app.create(71).await;
    let refused = |e: tonic::Status, field: &str, what: &str| {
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert_eq!(bad_fields(&e), [field], "{what}");
    };
    let list = |query: &str, province: &str| {
        let mut c = app.client.clone();
        let req = app.admin(pb::ListInstitutionsRequest {
            query: query.into(),
            province: province.into(),
            ..Default::default()
        });
        async move { c.list_institutions(req).await }
    };
    // A NUL alone used to fold to no filter and list every institution in the province.
    for (query, what) in [
        ("\u{0000}", "NUL only"),
        ("حمایت\u{0007}", "C0 in a query"),
        ("\u{007F}کانون", "DEL in a query"),
        ("کانون\u{0085}میانجیگری", "C1 in a query"),
        ("ـــ", "folds to nothing"),
        ("\u{202E}کانون", "bidi override in a query"),
    ] {
        refused(list(query, "").await.unwrap_err(), "query", what);
    }
    refused(
        list("", "\u{0000}").await.unwrap_err(),
        "province",
        "NUL province",
    );
    assert_eq!(
        list("", "").await.unwrap().into_inner().institutions.len(),
        2
    );
    let e = c
        .check_eligibility(app.admin(pb::CheckEligibilityRequest {
            institution: inst.name.clone(),
            action: pb::PermittedAction::FileComplaint as i32,
            activity_area: ActivityArea::Mediation as i32,
            province: "\u{0000}".into(),
        }))
        .await
        .unwrap_err();
    refused(e, "province", "NUL province to CheckEligibility");
    let e = c
        .check_licensed(app.admin(pb::CheckLicensedRequest {
            institution: inst.name.clone(),
            province: "\u{0085}".into(),
        }))
        .await
        .unwrap_err();
    refused(e, "province", "C1 province to CheckLicensed");

    // U+0085 NEXT LINE in a name used to become a space.
    let mut i = institution(72);
    i.display_name = "کانون\u{0085}میانجیگری".into();
    let e = c
        .create_institution(app.admin(pb::CreateInstitutionRequest {
            request_id: String::new(),
            institution: Some(i),
        }))
        .await
        .unwrap_err();
    refused(e, "institution.display_name", "C1 in a new name");
    let mut i = institution(72);
    i.representatives[0].full_name = "زهرا\u{0085}رضایی".into();
    i.address = "خیابان\u{000B}امام".into();
    let e = c
        .create_institution(app.admin(pb::CreateInstitutionRequest {
            request_id: String::new(),
            institution: Some(i),
        }))
        .await
        .unwrap_err();
    let mut fields = bad_fields(&e);
    fields.sort();
    assert_eq!(
        fields,
        [
            "institution.address",
            "institution.representatives[0].full_name"
        ]
    );
    let mut renamed = inst.clone();
    renamed.display_name = "نام\u{0085}تازه".into();
    let e = c
        .update_institution(app.admin(pb::UpdateInstitutionRequest {
            institution: Some(renamed),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        }))
        .await
        .unwrap_err();
    refused(e, "institution.display_name", "C1 in a renamed institution");
    let e = c
        .dissolve_institution(app.admin(pb::DissolveInstitutionRequest {
            name: inst.name.clone(),
            etag: String::new(),
            reason: "انحلال\u{0085}".into(),
        }))
        .await
        .unwrap_err();
    refused(e, "reason", "C1 in a reason");
}

/// A request id is the caller's own: another officer sending the same id gets an answer of
/// its own (a new resource, or the refusal its own request earns), never the first caller's
/// resource and never "already used"; the first caller's retry still replays.
async fn request_ids_belong_to_their_caller(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let other = |msg| {
        app.req(
            app.keys
                .bearer_with(Role::Admin, |r| r.subject = "another-admin".into()),
            msg,
        )
    };
    let first = pb::CreateInstitutionRequest {
        request_id: "story-institution-1".into(),
        institution: Some(institution(31)),
    };
    let a = c
        .create_institution(app.admin(first.clone()))
        .await
        .unwrap()
        .into_inner();
    // The same request under the same id from another caller is processed as its own: the
    // national ID is taken, so it is ALREADY_EXISTS, not the first caller's record.
    let same = c
        .create_institution(other(first.clone()))
        .await
        .unwrap_err();
    assert_eq!(same.code(), Code::AlreadyExists, "{same:?}");
    // Another request under the same id from another caller makes its own institution.
    let b2 = c
        .create_institution(other(pb::CreateInstitutionRequest {
            request_id: "story-institution-1".into(),
            institution: Some(institution(32)),
        }))
        .await
        .unwrap()
        .into_inner();
    let (ia, ib) = (a.institution.unwrap(), b2.institution.unwrap());
    assert_ne!(ia.name, ib.name);
    assert_eq!(ib.national_id, legal_id(32));
    // Each caller's retry replays its own answer.
    let again = c
        .create_institution(app.admin(first.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.institution.unwrap().name, ia.name);
    // Another institution token with the same subject is another caller too.
    let officer = |inst: &str, msg| {
        app.req(
            app.keys.bearer_with(Role::RegistryOfficer, |r| {
                r.subject = "officer".into();
                r.authority = Some(inst.into());
            }),
            msg,
        )
    };
    // One validity for every send: a retry is the same request to the byte.
    let until = now_secs() + 365 * 86400;
    let lic = |parent: &str| pb::CreateLicenceRequest {
        parent: parent.to_owned(),
        request_id: "story-licence-1".into(),
        licence: Some(licence(until)),
    };
    let la = c
        .create_licence(officer("a", lic(&ia.name)))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    let lb = c
        .create_licence(officer("b", lic(&ib.name)))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    assert_ne!(la.name, lb.name);
    assert!(
        lb.name.starts_with(&ib.name),
        "{} under {}",
        lb.name,
        ib.name
    );
    let la2 = c
        .create_licence(officer("a", lic(&ia.name)))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    assert_eq!(la2.name, la.name);
    // The same caller reusing its id for another request is still refused, naming the field.
    let reused = c
        .create_licence(officer("a", lic(&ib.name)))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument);
    let br = reused.get_error_details().bad_request().cloned().unwrap();
    assert_eq!(br.field_violations[0].field, "request_id");
}

/// Bytes that decode to no message, sent to every method of the registry and of its audit
/// service, are INVALID_ARGUMENT with the usual details, never INTERNAL.
async fn malformed_bodies_are_invalid_argument(b: Backend) {
    let app = app(b).await;
    let ch = Channel::from_shared(app.reg.uri())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let bearer = app.keys.bearer(Role::Admin, None);
    let services = [
        "mosharekat.registry.v1.RegistryService",
        "mosharekat.common.v1.AuditService",
    ];
    let n =
        mosharekat_platform::testing::malformed_bodies_are_invalid_argument(ch, &bearer, &services)
            .await;
    assert!(n >= 40, "{n} calls checked");
}

/// Calls `rpc` as `role` (an institution's token is for `own`), aimed at `other` and its
/// licence `lic`. Changes carry a stale etag, so that an allowed role reaches the etag
/// check (ABORTED) without changing anything; creates create.
async fn call_as(
    app: &App,
    rpc: &str,
    role: Role,
    own: &str,
    other: &pb::Institution,
    lic: &pb::Licence,
) -> Code {
    let mut c = app.client.clone();
    macro_rules! r {
        ($m:expr) => {
            app.who(role, own, $m)
        };
    }
    let question = || pb::CheckEligibilityRequest {
        institution: other.name.clone(),
        action: pb::PermittedAction::FileComplaint as i32,
        activity_area: ActivityArea::Mediation as i32,
        province: String::new(),
    };
    let stale = "999".to_owned();
    let name = lic.name.clone();
    match rpc {
        "CreateInstitution" => code(
            c.create_institution(r!(pb::CreateInstitutionRequest {
                request_id: String::new(),
                institution: Some(institution(300 + role as u32)),
            }))
            .await,
        ),
        "GetInstitution" => code(
            c.get_institution(r!(pb::GetInstitutionRequest {
                name: other.name.clone(),
            }))
            .await,
        ),
        "ListInstitutions" => code(
            c.list_institutions(r!(pb::ListInstitutionsRequest::default()))
                .await,
        ),
        "UpdateInstitution" => {
            let mut i = other.clone();
            i.etag = stale;
            code(
                c.update_institution(r!(pb::UpdateInstitutionRequest {
                    institution: Some(i),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["city".into()],
                    }),
                }))
                .await,
            )
        }
        "DissolveInstitution" => code(
            c.dissolve_institution(r!(pb::DissolveInstitutionRequest {
                name: other.name.clone(),
                etag: stale,
                reason: "x".into(),
            }))
            .await,
        ),
        "CreateLicence" => code(
            c.create_licence(r!(pb::CreateLicenceRequest {
                parent: other.name.clone(),
                request_id: String::new(),
                licence: Some(licence(now_secs() + 86400)),
            }))
            .await,
        ),
        "GetLicence" => code(c.get_licence(r!(pb::GetLicenceRequest { name })).await),
        "ListLicences" => code(
            c.list_licences(r!(pb::ListLicencesRequest {
                parent: "institutions/-".into(),
                ..Default::default()
            }))
            .await,
        ),
        "ApproveLicence" => code(
            c.approve_licence(r!(pb::ApproveLicenceRequest {
                name,
                etag: stale,
                reason: String::new(),
            }))
            .await,
        ),
        "RejectLicence" => code(
            c.reject_licence(r!(pb::RejectLicenceRequest {
                name,
                etag: stale,
                reason: "x".into(),
            }))
            .await,
        ),
        "SuspendLicence" => code(
            c.suspend_licence(r!(pb::SuspendLicenceRequest {
                name,
                etag: stale,
                reason: "x".into(),
            }))
            .await,
        ),
        "ReinstateLicence" => code(
            c.reinstate_licence(r!(pb::ReinstateLicenceRequest {
                name,
                etag: stale,
                ..Default::default()
            }))
            .await,
        ),
        "RevokeLicence" => code(
            c.revoke_licence(r!(pb::RevokeLicenceRequest {
                name,
                etag: stale,
                reason: "x".into(),
            }))
            .await,
        ),
        "RenewLicence" => code(
            c.renew_licence(r!(pb::RenewLicenceRequest {
                name,
                etag: stale,
                valid_until: Some(ts(now_secs() + 2 * 86400, 0)),
                reason: String::new(),
            }))
            .await,
        ),
        "CheckEligibility" => code(c.check_eligibility(r!(question())).await),
        "BatchCheckEligibility" => code(
            c.batch_check_eligibility(r!(pb::BatchCheckEligibilityRequest {
                requests: vec![question(), question()],
            }))
            .await,
        ),
        "CheckLicensed" => code(
            c.check_licensed(r!(pb::CheckLicensedRequest {
                institution: other.name.clone(),
                province: String::new(),
            }))
            .await,
        ),
        "WatchLicenceEvents" => code(
            c.watch_licence_events(r!(pb::WatchLicenceEventsRequest { after_sequence: 0 }))
                .await
                .map(|_| ()),
        ),
        other => panic!("no call written for {other}"),
    }
}

/// Every RPC of the registry (checked against its descriptor, so a new one cannot be
/// left out) × every role: PERMISSION_DENIED exactly for the roles the spec denies; an
/// allowed role gets past the role check (an institution then finds another's record
/// NOT_FOUND; a stale etag is ABORTED).
async fn every_rpc_against_every_role(b: Backend) {
    use Role::*;
    const ALL: &[Role] = &Role::ALL;
    const REGISTRARS: &[Role] = &[Admin, RegistryOfficer];
    const ASKERS: &[Role] = &[
        Admin,
        RegistryOfficer,
        JudicialOfficer,
        CenterOfficer,
        Secretary,
        Auditor,
        Service,
        Institution,
    ];
    let matrix: &[(&str, &[Role])] = &[
        ("CreateInstitution", REGISTRARS),
        ("GetInstitution", ALL),
        ("ListInstitutions", ALL),
        ("UpdateInstitution", REGISTRARS),
        ("DissolveInstitution", REGISTRARS),
        ("CreateLicence", &[Admin, RegistryOfficer, Institution]),
        ("GetLicence", ALL),
        ("ListLicences", ALL),
        ("ApproveLicence", REGISTRARS),
        ("RejectLicence", REGISTRARS),
        ("SuspendLicence", REGISTRARS),
        ("ReinstateLicence", REGISTRARS),
        ("RevokeLicence", REGISTRARS),
        ("RenewLicence", REGISTRARS),
        ("CheckEligibility", ASKERS),
        ("BatchCheckEligibility", ASKERS),
        ("CheckLicensed", ASKERS),
        ("WatchLicenceEvents", &[Admin, Auditor, Service]),
    ];
    let set = <prost_types::FileDescriptorSet as prost::Message>::decode(
        mosharekat_api::FILE_DESCRIPTOR_SET,
    )
    .unwrap();
    let mut methods: Vec<String> = set
        .file
        .iter()
        .filter(|f| f.package() == "mosharekat.registry.v1")
        .flat_map(|f| f.service.iter())
        .filter(|s| s.name() == "RegistryService")
        .flat_map(|s| s.method.iter().map(|m| m.name().to_owned()))
        .collect();
    methods.sort();
    let mut covered: Vec<String> = matrix.iter().map(|(m, _)| (*m).to_owned()).collect();
    covered.sort();
    assert_eq!(
        covered, methods,
        "the matrix covers every RPC of the registry"
    );

    let app = app(b).await;
    let own = app.create(11).await;
    let other = app.create(12).await;
    let own_id = own.name.trim_start_matches("institutions/").to_owned();
    let lic = app.apply(&other, now_secs() + 86400).await;
    for (rpc, allowed) in matrix {
        for role in Role::ALL {
            let got = call_as(&app, rpc, role, &own_id, &other, &lic).await;
            if allowed.contains(&role) {
                assert!(
                    matches!(
                        got,
                        Code::Ok | Code::NotFound | Code::Aborted | Code::FailedPrecondition
                    ),
                    "{role} {rpc}: allowed, but {got:?}"
                );
                // An institution sees nothing of another's but its register entry in lists.
                if role == Institution
                    && !rpc.starts_with("List")
                    && *rpc != "CreateInstitution"
                    && *rpc != "WatchLicenceEvents"
                {
                    assert_eq!(got, Code::NotFound, "{role} {rpc} of another institution");
                }
            } else {
                assert_eq!(got, Code::PermissionDenied, "{role} {rpc}");
            }
        }
    }
}

/// Many eligibility questions at once: answered in order, each as `CheckEligibility`
/// answers it; more than 100, or a bad entry, is INVALID_ARGUMENT naming the field.
async fn batch_eligibility_answers_in_order(b: Backend) {
    use pb::EligibilityReason as R;
    let app = app(b).await;
    let licensed = app.create(21).await;
    let pending = app.create(22).await;
    let none = app.create(23).await;
    let l = app.apply(&licensed, now_secs() + 86400).await;
    app.approve(&l).await;
    app.apply(&pending, now_secs() + 86400).await;
    let q = |i: &pb::Institution, action: pb::PermittedAction| pb::CheckEligibilityRequest {
        institution: i.name.clone(),
        action: action as i32,
        activity_area: ActivityArea::Mediation as i32,
        province: String::new(),
    };
    use pb::PermittedAction as P;
    let questions = vec![
        q(&none, P::FileComplaint),
        q(&licensed, P::FileComplaint),
        q(&pending, P::FileComplaint),
        q(&licensed, P::ReportCrime),
        q(&licensed, P::FileComplaint),
    ];
    let mut c = app.client.clone();
    let answers = c
        .batch_check_eligibility(app.as_role(
            Role::Service,
            pb::BatchCheckEligibilityRequest {
                requests: questions.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .responses;
    let reasons: Vec<i32> = answers.iter().map(|a| a.reason).collect();
    assert_eq!(
        reasons,
        [
            R::NoLicence,
            R::Eligible,
            R::LicencePending,
            R::ActionNotLicensed,
            R::Eligible
        ]
        .map(|r| r as i32)
    );
    assert_eq!(answers[1].licence, l.name);
    // Each answer is the one CheckEligibility gives.
    for (question, answer) in questions.iter().zip(&answers) {
        let one = c
            .check_eligibility(app.as_role(Role::Service, question.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&one, answer);
    }
    // Through the typed client, as the referral service asks.
    let peer = mosharekat_registry_client::RegistryPeer::new(
        mosharekat_platform::client::PeerTarget::new(&app.reg.uri(), None).unwrap(),
        mosharekat_platform::client::ServiceToken::new(app.keys.signer.clone(), "referral"),
        Duration::from_secs(5),
    );
    let typed = peer
        .eligibility_batch(
            &mosharekat_platform::ctx::CallContext::system("test"),
            questions.clone(),
        )
        .await
        .unwrap();
    assert_eq!(typed, answers);

    let too_many = c
        .batch_check_eligibility(app.as_role(
            Role::Service,
            pb::BatchCheckEligibilityRequest {
                requests: vec![q(&none, P::FileComplaint); 101],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&too_many), ["requests"]);
    let mut bad = questions.clone();
    bad[1].action = 0;
    bad[3].institution = "nonsense".into();
    let e = c
        .batch_check_eligibility(app.as_role(
            Role::Service,
            pb::BatchCheckEligibilityRequest { requests: bad },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&e), ["requests[1].action"]);
    // An institution asks about itself only.
    let own = none.name.trim_start_matches("institutions/").to_owned();
    let hidden = c
        .batch_check_eligibility(app.as_institution(
            &own,
            pb::BatchCheckEligibilityRequest {
                requests: vec![q(&none, P::FileComplaint), q(&licensed, P::FileComplaint)],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
}

/// A page of licences carries each licence's own history (read for the whole page at
/// once), the same as reading each alone.
async fn listed_licences_carry_their_own_histories(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let mut names = Vec::new();
    for n in 0..3 {
        let inst = app.create(40 + n).await;
        let l = app.apply(&inst, now_secs() + 86400).await;
        if n > 0 {
            app.approve(&l).await;
        }
        if n > 1 {
            c.suspend_licence(app.admin(pb::SuspendLicenceRequest {
                name: l.name.clone(),
                etag: String::new(),
                reason: "بازرسی".into(),
            }))
            .await
            .unwrap();
        }
        names.push(l.name);
    }
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_licences(app.admin(pb::ListLicencesRequest {
                parent: "institutions/-".into(),
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.licences);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(listed.len(), 3);
    for l in &listed {
        let alone = c
            .get_licence(app.admin(pb::GetLicenceRequest {
                name: l.name.clone(),
            }))
            .await
            .unwrap()
            .into_inner()
            .licence
            .unwrap();
        assert_eq!(l, &alone);
    }
    let lengths: Vec<usize> = names
        .iter()
        .map(|n| {
            listed
                .iter()
                .find(|l| &l.name == n)
                .map_or(0, |l| l.history.len())
        })
        .collect();
    assert_eq!(lengths, [1, 2, 3]);
}
