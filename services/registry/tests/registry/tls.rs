//! The registry over TLS and mutual TLS, served for real on loopback: the handshakes that
//! succeed and those that must fail, what the edge asks of client certificates, the
//! plaintext health port, a certificate replaced under the running service, and the
//! start-up errors. Every test runs on SQLite and on PostgreSQL.

use std::time::{Duration, SystemTime};

use mosharekat_api::registry::v1 as pb;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use mosharekat_platform::auth::Role;
use mosharekat_platform::client::{channel, channel_with};
use mosharekat_platform::testing::{Backend, TestDb, TestKeys, TestPki};
use mosharekat_platform::tls::local::write_pair;
use mosharekat_platform::tls::{ClientTls, RELOAD_CHECK_INTERVAL, TlsArgs};
use mosharekat_registry::testing::RunningRegistry;
use tonic::transport::Channel;
use tonic::{Code, Request};

use mosharekat_testkit::on_both_databases;

/// How a call ended: answered by the service (whatever its code, but for a refusal of
/// the caller's credentials), refused by the edge as unauthenticated, or not answered by
/// the service at all (the TLS handshake failed). Every answer of the service carries
/// the trace id; a connection that never reached it does not.
#[derive(Debug, PartialEq)]
enum Outcome {
    Served,
    Unauthenticated,
    NoConnection,
}

fn outcome<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Outcome {
    match r {
        Ok(_) => Outcome::Served,
        Err(s) if s.metadata().get("x-trace-id").is_none() => Outcome::NoConnection,
        Err(s) if s.code() == Code::Unauthenticated => Outcome::Unauthenticated,
        Err(_) => Outcome::Served,
    }
}

fn req<T>(bearer: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", bearer.parse().unwrap());
    r.set_timeout(Duration::from_secs(5));
    r
}

struct Tlsd {
    keys: TestKeys,
    pki: TestPki,
    _db: TestDb,
    reg: RunningRegistry,
}

impl Tlsd {
    async fn start(backend: Backend, tls: impl FnOnce(&TestPki) -> TlsArgs) -> Self {
        let keys = TestKeys::new().unwrap();
        let pki = TestPki::new().unwrap();
        let db = TestDb::new(backend).await.unwrap();
        let mut settings = RunningRegistry::settings(&db.url, &keys.public_key);
        settings.server.tls = tls(&pki);
        let reg = RunningRegistry::start(settings)
            .await
            .expect("registry starts");
        Self {
            keys,
            pki,
            _db: db,
            reg,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.reg.addr.port())
    }

    fn client(&self, tls: &ClientTls) -> RegistryServiceClient<Channel> {
        RegistryServiceClient::new(channel_with(&self.url(), Some(tls)).unwrap())
    }

    async fn eligibility(&self, c: &RegistryServiceClient<Channel>, bearer: &str) -> Outcome {
        outcome(
            c.clone()
                .check_eligibility(req(
                    bearer,
                    pb::CheckEligibilityRequest {
                        institution: "institutions/0192f0c8-0000-7000-8000-000000000001".into(),
                        action: pb::PermittedAction::FileComplaint as i32,
                        activity_area: 1,
                        province: String::new(),
                    },
                ))
                .await,
        )
    }

    async fn list(&self, c: &RegistryServiceClient<Channel>, bearer: &str) -> Outcome {
        outcome(
            c.clone()
                .list_institutions(req(bearer, pb::ListInstitutionsRequest::default()))
                .await,
        )
    }

    fn service_bearer(&self, service: &str) -> String {
        self.keys
            .bearer_with(Role::Service, |r| r.service = Some(service.into()))
    }
}

async fn health_of(ch: Channel) -> Result<i32, tonic::Status> {
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
    let mut r = Request::new(tonic_health::pb::HealthCheckRequest {
        service: "mosharekat.registry.v1.RegistryService".into(),
    });
    r.set_timeout(Duration::from_secs(5));
    h.check(r).await.map(|r| r.into_inner().status)
}

const SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;

/// Under mutual TLS: end users reach the public RPCs with server-side TLS only; the peer
/// RPCs need a client certificate of the CA; a SERVICE token needs its own service's
/// certificate; a wrong CA (either way), an expired client certificate, a server of
/// another identity and plaintext all fail the handshake; health is also served in
/// plaintext on its own port, and nothing else is.
async fn handshakes_under_mutual_tls(backend: Backend) {
    let t = Tlsd::start(backend, |pki| pki.server_args("registry", true)).await;
    let admin = t.keys.bearer(Role::Admin, None);
    let referral_files = t.pki.issue("referral");
    let meeting_files = t.pki.issue("meeting");
    let operator_files = t.pki.issue("operator");

    // Server-side TLS only, as an end user's tool connects.
    let anonymous = t.client(&t.pki.client("registry", None));
    assert_eq!(t.list(&anonymous, &admin).await, Outcome::Served);
    assert_eq!(
        health_of(channel_with(&t.url(), Some(&t.pki.client("registry", None))).unwrap())
            .await
            .unwrap(),
        SERVING
    );
    assert_eq!(
        t.eligibility(&anonymous, &admin).await,
        Outcome::Unauthenticated,
        "a peer RPC without a client certificate"
    );
    assert_eq!(
        t.list(&anonymous, &t.service_bearer("referral")).await,
        Outcome::Unauthenticated,
        "a SERVICE token without a client certificate, even on a public RPC"
    );

    // A client certificate of the CA: the peer RPCs open.
    let operator = t.client(&t.pki.client("registry", Some(&operator_files)));
    assert_eq!(t.eligibility(&operator, &admin).await, Outcome::Served);
    let referral = t.client(&t.pki.client("registry", Some(&referral_files)));
    assert_eq!(
        t.eligibility(&referral, &t.service_bearer("referral"))
            .await,
        Outcome::Served
    );
    assert_eq!(
        t.list(&referral, &t.service_bearer("referral")).await,
        Outcome::Served
    );
    // A SERVICE token whose name differs from the certificate.
    let meeting = t.client(&t.pki.client("registry", Some(&meeting_files)));
    assert_eq!(
        t.eligibility(&meeting, &t.service_bearer("referral")).await,
        Outcome::Unauthenticated
    );
    assert_eq!(
        t.list(&operator, &t.service_bearer("referral")).await,
        Outcome::Unauthenticated
    );

    // Handshakes that must fail.
    let other_ca = TestPki::new().unwrap();
    let wrong_trust = t.client(&other_ca.client("registry", None));
    assert_eq!(
        t.list(&wrong_trust, &admin).await,
        Outcome::NoConnection,
        "the server's certificate is not of the CA the client trusts"
    );
    let foreign = other_ca.issue("referral");
    let foreign_client = t.client(&t.pki.client("registry", Some(&foreign)));
    assert_eq!(
        t.list(&foreign_client, &admin).await,
        Outcome::NoConnection,
        "a client certificate of another CA"
    );
    let now = SystemTime::now();
    let (cert, key) = t
        .pki
        .ca
        .issue_between(
            &["referral"],
            now - Duration::from_secs(30 * 86_400),
            now - Duration::from_secs(86_400),
        )
        .unwrap();
    let expired = write_pair(&t.pki.dir, "expired", &cert, &key).unwrap();
    let expired_client = t.client(&t.pki.client("registry", Some(&expired)));
    assert_eq!(
        t.list(&expired_client, &admin).await,
        Outcome::NoConnection,
        "an expired client certificate"
    );
    let expects_another = t.client(&t.pki.client("referral", None));
    assert_eq!(
        t.list(&expects_another, &admin).await,
        Outcome::NoConnection,
        "the client meant to call the referral service, and the certificate says registry"
    );
    let plaintext = RegistryServiceClient::new(
        channel(&format!("http://127.0.0.1:{}", t.reg.addr.port())).unwrap(),
    );
    assert_eq!(t.list(&plaintext, &admin).await, Outcome::NoConnection);

    // The plaintext health port: health, without a token, and nothing else.
    let health = channel(&format!("http://{}", t.reg.health_addr.unwrap())).unwrap();
    assert_eq!(health_of(health.clone()).await.unwrap(), SERVING);
    let other = RegistryServiceClient::new(health)
        .list_institutions(req(&admin, pb::ListInstitutionsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::Unimplemented, "{other:?}");

    t.reg.stop().await.unwrap();
}

/// With server-side TLS only (no --mtls), no client certificate is asked for: the peer
/// RPCs and SERVICE tokens are served over TLS as in plaintext.
async fn server_side_tls_only(backend: Backend) {
    let t = Tlsd::start(backend, |pki| pki.server_args("registry", false)).await;
    let admin = t.keys.bearer(Role::Admin, None);
    let anonymous = t.client(&t.pki.client("registry", None));
    assert_eq!(t.eligibility(&anonymous, &admin).await, Outcome::Served);
    assert_eq!(
        t.list(&anonymous, &t.service_bearer("referral")).await,
        Outcome::Served
    );
    t.reg.stop().await.unwrap();
}

/// A service started on an expired certificate is refused by its clients; the files
/// replaced (as cert-manager rotates them) are picked up by the running service, and a
/// new connection succeeds; a broken replacement leaves the last good one in force.
async fn a_replaced_certificate_is_picked_up(backend: Backend) {
    let keys = TestKeys::new().unwrap();
    let pki = TestPki::new().unwrap();
    let db = TestDb::new(backend).await.unwrap();
    let now = SystemTime::now();
    let (cert, key) = pki
        .ca
        .issue_between(
            &["registry", "127.0.0.1"],
            now - Duration::from_secs(30 * 86_400),
            now - Duration::from_secs(86_400),
        )
        .unwrap();
    let files = write_pair(&pki.dir, "registry-live", &cert, &key).unwrap();
    let mut settings = RunningRegistry::settings(&db.url, &keys.public_key);
    settings.server.tls = TlsArgs {
        tls_cert: Some(files.cert.clone()),
        tls_key: Some(files.key.clone()),
        tls_ca: Some(pki.ca_file.clone()),
        mtls: true,
        health_listen: Some(([127, 0, 0, 1], 0).into()),
    };
    let reg = RunningRegistry::start(settings).await.unwrap();
    let url = format!("https://127.0.0.1:{}", reg.addr.port());
    let call = || async {
        // A new channel each time: a new connection, a new handshake.
        health_of(channel_with(&url, Some(&pki.client("registry", None))).unwrap()).await
    };
    let refused = call().await.unwrap_err();
    assert!(
        refused.metadata().get("x-trace-id").is_none(),
        "an expired server certificate fails the handshake: {refused:?}"
    );

    // The rotation: a fresh certificate and key written over the old files.
    let (cert, key) = pki.ca.issue(&["registry", "127.0.0.1"]).unwrap();
    std::fs::write(&files.key, key).unwrap();
    std::fs::write(&files.cert, cert).unwrap();
    tokio::time::sleep(RELOAD_CHECK_INTERVAL + Duration::from_millis(100)).await;
    // The check happens on the handshake that finds the files changed: the first may
    // still see the old pair if it raced the interval, the next one does not.
    let mut served = call().await;
    if served.is_err() {
        tokio::time::sleep(RELOAD_CHECK_INTERVAL).await;
        served = call().await;
    }
    assert_eq!(served.unwrap(), SERVING, "the new certificate is in force");

    // A broken rotation (a key of another certificate) is not taken.
    let (_, stray_key) = pki.ca.issue(&["registry"]).unwrap();
    std::fs::write(&files.key, stray_key).unwrap();
    tokio::time::sleep(RELOAD_CHECK_INTERVAL + Duration::from_millis(100)).await;
    assert_eq!(call().await.unwrap(), SERVING, "the last good pair serves");
    reg.stop().await.unwrap();
}

/// Start-up errors name the file and what is wrong with it.
async fn start_up_refuses_bad_tls(backend: Backend) {
    let keys = TestKeys::new().unwrap();
    let pki = TestPki::new().unwrap();
    let db = TestDb::new(backend).await.unwrap();
    let good = pki.server_args("registry", true);
    let other = pki.issue("stray");
    let start = |tls: TlsArgs| {
        let mut settings = RunningRegistry::settings(&db.url, &keys.public_key);
        settings.server.tls = tls;
        async move {
            format!(
                "{:#}",
                RunningRegistry::start(settings)
                    .await
                    .expect_err("refuses to start")
            )
        }
    };
    let missing = pki.dir.join("absent.pem");
    let e = start(TlsArgs {
        tls_cert: Some(missing),
        ..good.clone()
    })
    .await;
    assert!(e.contains("absent.pem"), "{e}");
    let e = start(TlsArgs {
        tls_key: Some(other.key.clone()),
        ..good.clone()
    })
    .await;
    assert!(e.contains("does not match the certificate"), "{e}");
    let e = start(TlsArgs {
        tls_ca: Some(pki.dir.join("no-ca.pem")),
        ..good.clone()
    })
    .await;
    assert!(e.contains("reading TLS CA"), "{e}");
    let e = start(TlsArgs {
        tls_cert: Some(other.cert.clone()),
        tls_key: Some(other.key.clone()),
        ..good.clone()
    })
    .await;
    assert!(e.contains("not this service \"registry\""), "{e}");
}

on_both_databases!(
    handshakes_under_mutual_tls,
    server_side_tls_only,
    a_replaced_certificate_is_picked_up,
    start_up_refuses_bad_tls,
);
