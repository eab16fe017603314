//! Platform guarantees seen through the registry: migrations under a lock, and no
//! personal data in logs.

use std::io;
use std::sync::{Arc, Mutex};

use mosharekat_api::common::v1::ActivityArea;
use mosharekat_api::registry::v1 as pb;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use mosharekat_platform::auth::Role;
use mosharekat_platform::testing::{Backend, TestDb, TestKeys};
use mosharekat_registry::testing::RunningRegistry;
use tonic::Request;
use tonic::transport::Channel;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_registries_migrating_one_fresh_postgres_database_both_start() {
    let keys = TestKeys::new().unwrap();
    let db = TestDb::new(Backend::Postgres).await.unwrap();
    let settings = || RunningRegistry::settings(&db.url, &keys.public_key);
    let (a, b) = tokio::join!(
        RunningRegistry::start(settings()),
        RunningRegistry::start(settings())
    );
    let (a, b) = (a.expect("first starts"), b.expect("second starts"));
    for r in [&a, &b] {
        let mut c = RegistryServiceClient::new(
            Channel::from_shared(r.uri())
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
        let mut req = Request::new(pb::ListInstitutionsRequest::default());
        req.metadata_mut().insert(
            "authorization",
            keys.bearer(Role::Auditor, None).parse().unwrap(),
        );
        c.list_institutions(req).await.expect("both serve");
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// A national code sent in requests, valid or not, appears in no log line, at any level.
#[tokio::test(flavor = "current_thread")]
async fn a_canary_national_code_appears_in_no_log_line() {
    const CANARY: &str = "1583250689";
    const BAD_CANARY: &str = "1583250680";
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("trace"))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .with_writer(capture.clone()),
        );
    let _guard = tracing::subscriber::set_default(subscriber);

    let keys = TestKeys::new().unwrap();
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let reg = RunningRegistry::start(RunningRegistry::settings(&db.url, &keys.public_key))
        .await
        .unwrap();
    let mut c = RegistryServiceClient::new(
        Channel::from_shared(reg.uri())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let auth = |role: Role| {
        keys.bearer(role, None)
            .parse::<tonic::metadata::MetadataValue<_>>()
            .unwrap()
    };
    let institution = |code: &str| pb::Institution {
        display_name: "کانون صلح".into(),
        kind: pb::InstitutionKind::Charity as i32,
        national_id: "10380284790".into(),
        registration_number: "77".into(),
        registering_authority: "ثبت".into(),
        province: "اردبیل".into(),
        city: "اردبیل".into(),
        activity_areas: vec![ActivityArea::Reconciliation as i32],
        representatives: vec![pb::Representative {
            full_name: "علی".into(),
            national_code: code.into(),
            role: "رئیس".into(),
            phone: String::new(),
        }],
        ..Default::default()
    };
    for code in [BAD_CANARY, CANARY] {
        let mut req = Request::new(pb::CreateInstitutionRequest {
            request_id: String::new(),
            institution: Some(institution(code)),
        });
        req.metadata_mut()
            .insert("authorization", auth(Role::Admin));
        let _ = c.create_institution(req).await;
    }
    let mut req = Request::new(pb::ListInstitutionsRequest::default());
    req.metadata_mut()
        .insert("authorization", auth(Role::RegistryOfficer));
    let listed = c.list_institutions(req).await.unwrap().into_inner();
    assert_eq!(
        listed.institutions[0].representatives[0].national_code, CANARY,
        "the data itself is kept"
    );
    reg.stop().await.unwrap();

    let logs = capture.text();
    assert!(
        logs.contains("institution registered"),
        "logs were captured: {}",
        &logs[..logs.len().min(2000)]
    );
    assert!(
        !logs.contains(CANARY),
        "the national code leaked into the logs"
    );
    assert!(
        !logs.contains(BAD_CANARY),
        "the invalid national code leaked into the logs"
    );
}

/// Health follows the database: each service's name turns NOT_SERVING while PostgreSQL
/// refuses connections and SERVING when it takes them again; the process-wide "" entry,
/// which liveness probes ask, stays SERVING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_database() {
    use sea_orm::ConnectionTrait;
    use std::time::{Duration, Instant};
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let keys = TestKeys::new().unwrap();
    let db = TestDb::new(Backend::Postgres).await.unwrap();
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let reg = RunningRegistry::start(RunningRegistry::settings(&db.url, &keys.public_key))
        .await
        .unwrap();
    let h = HealthClient::new(
        Channel::from_shared(reg.uri())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let admin = sea_orm::Database::connect(mosharekat_platform::testing::postgres_admin_url())
        .await
        .unwrap();
    let status = |h: &HealthClient<Channel>, service: &'static str| {
        let mut h = h.clone();
        async move {
            h.check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
        }
    };
    let wait_for = |want: ServingStatus| {
        let h = h.clone();
        async move {
            let start = Instant::now();
            loop {
                if status(&h, "mosharekat.registry.v1.RegistryService").await == want as i32 {
                    return;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "health did not turn {want:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for(ServingStatus::Serving).await;
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
        ))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await
        .unwrap();
    wait_for(ServingStatus::NotServing).await;
    assert_eq!(
        status(&h, "").await,
        ServingStatus::Serving as i32,
        "liveness is not the database's"
    );
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
    wait_for(ServingStatus::Serving).await;
    reg.stop().await.unwrap();
}

/// Keys rotate under a running registry: a new public key put in the key folder is
/// trusted within a reload interval, and a key removed from it is refused, also for a
/// token the registry had already checked and remembered; a token for another service's
/// audience is refused, one for the registry's or the suite's accepted.
async fn signing_keys_rotate_without_a_restart(b: Backend) {
    use mosharekat_platform::auth::{TokenRequest, TokenSigner, generate_keypair};
    use std::time::{Duration, Instant};
    let db = TestDb::new(b).await.unwrap();
    // The test keys' folder: its public key is the old one (the private key beside it is
    // passed over).
    let keys = TestKeys::new().unwrap();
    let folder = keys.public_key.parent().unwrap().to_owned();
    let old_private = std::fs::read_to_string(&keys.private_key).unwrap();
    let (new_private, new_public) = generate_keypair().unwrap();
    let mut settings = RunningRegistry::settings(&db.url, &keys.public_key);
    settings.server.token_public_keys = vec![folder.clone()];
    settings.server.token_keys_reload_interval = Duration::from_millis(100).into();
    let reg = RunningRegistry::start(settings).await.unwrap();
    let client = RegistryServiceClient::new(
        Channel::from_shared(reg.uri())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let token = |private: &str, audience: Option<&str>| {
        TokenSigner::from_pem(private.as_bytes())
            .unwrap()
            .mint(
                Role::Auditor,
                &TokenRequest {
                    subject: "inspector".into(),
                    lifetime: Duration::from_secs(600),
                    audience: audience.map(str::to_owned),
                    ..Default::default()
                },
            )
            .unwrap()
    };
    let call = |t: String| {
        let mut c = client.clone();
        async move {
            let mut req = Request::new(pb::ListInstitutionsRequest::default());
            req.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
            c.list_institutions(req)
                .await
                .map(|_| ())
                .map_err(|s| s.code())
        }
    };
    let wait_until = |t: String, want: Result<(), tonic::Code>| {
        let call = &call;
        async move {
            let start = Instant::now();
            loop {
                let got = call(t.clone()).await;
                if got == want {
                    return;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "still {got:?}, not {want:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let old = token(&old_private, None);
    let new = token(&new_private, None);
    assert_eq!(call(old.clone()).await, Ok(()));
    assert_eq!(call(new.clone()).await, Err(tonic::Code::Unauthenticated));
    // The audience: the registry's own or the suite's, not another service's.
    assert_eq!(call(token(&old_private, Some("registry"))).await, Ok(()));
    assert_eq!(call(token(&old_private, Some("mosharekat"))).await, Ok(()));
    assert_eq!(
        call(token(&old_private, Some("meeting"))).await,
        Err(tonic::Code::Unauthenticated)
    );
    // The new key rolls out beside the old one.
    std::fs::write(folder.join("issuer-2.pub.pem"), &new_public).unwrap();
    wait_until(new.clone(), Ok(())).await;
    assert_eq!(call(old.clone()).await, Ok(()), "both while it rolls out");
    // The old one is retired.
    std::fs::remove_file(&keys.public_key).unwrap();
    wait_until(old.clone(), Err(tonic::Code::Unauthenticated)).await;
    assert_eq!(call(new).await, Ok(()));
    reg.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_rotate_without_a_restart_on_sqlite() {
    signing_keys_rotate_without_a_restart(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_rotate_without_a_restart_on_postgres() {
    signing_keys_rotate_without_a_restart(Backend::Postgres).await
}
