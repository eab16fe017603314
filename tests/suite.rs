//! The whole suite as operators run it: the launcher binary as a separate process, driven
//! over gRPC. Checks what only the assembled suite shows: the services find each other,
//! every response names its trace, metrics count calls by method and code, and SIGTERM
//! ends the process cleanly.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{authed, free_port, http_get, sigterm, wait_exit};

use mosharekat_api::common::v1::ActivityArea;
use mosharekat_api::referral::v1 as rf;
use mosharekat_api::referral::v1::referral_service_client::ReferralServiceClient;
use mosharekat_api::registry::v1 as reg;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// Four consecutive free ports for the metrics endpoints (registry, referral, meeting).
fn free_port_run() -> u16 {
    loop {
        let base = free_port();
        if base < 65000 && (1..3).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
}

/// The institution the suite's tests register (an NGO of Ardabil working for families).
fn family_centre() -> reg::Institution {
    reg::Institution {
        display_name: "کانون حمایت از خانواده".into(),
        kind: reg::InstitutionKind::Ngo as i32,
        national_id: "10380284790".into(),
        registration_number: "1".into(),
        registering_authority: "اداره ثبت".into(),
        province: "اردبیل".into(),
        city: "اردبیل".into(),
        activity_areas: vec![ActivityArea::Family as i32],
        ..Default::default()
    }
}

/// A lawsuit drafted by `agent`'s institution, then submitted: the submission's answer.
async fn submit_a_lawsuit(
    referral: &mut ReferralServiceClient<Channel>,
    agent: &str,
) -> Result<tonic::Response<rf::SubmitFilingResponse>, tonic::Status> {
    let filing = referral
        .create_filing(authed(agent, draft_lawsuit()))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    referral
        .submit_filing(authed(
            agent,
            rf::SubmitFilingRequest {
                name: filing.name,
                etag: String::new(),
            },
        ))
        .await
}

struct Suite {
    child: Child,
    ports: [u16; 3],
    metrics: u16,
    dir: tempfile::TempDir,
}

impl Suite {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports = [free_port(), free_port(), free_port()];
        let metrics = free_port_run();
        let child = Command::new(env!("CARGO_BIN_EXE_mosharekat"))
            .args(["--data", dir.path().join("data").to_str().unwrap()])
            .args(["--registry-port", &ports[0].to_string()])
            .args(["--referral-port", &ports[1].to_string()])
            .args(["--meeting-port", &ports[2].to_string()])
            .args(["--public-port", "0"])
            .args([
                "--metrics-port",
                &metrics.to_string(),
                "--log-format",
                "json",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            ports,
            metrics,
            dir,
        }
    }

    fn uri(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    fn token(&self, args: &[&str]) -> String {
        let key = self.dir.path().join("data/signing.key.pem");
        let out = Command::new(env!("CARGO_BIN_EXE_mosharekat"))
            .args(["token", "--key", key.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("Bearer {}", String::from_utf8(out.stdout).unwrap().trim())
    }

    async fn wait_serving(&self) {
        for i in 0..3 {
            common::wait_serving(&self.uri(i), "", Duration::from_secs(60)).await;
        }
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_runs_as_one_system_and_stops_cleanly() {
    let mut suite = Suite::start();
    suite.wait_serving().await;
    let admin = std::fs::read_to_string(suite.dir.path().join("data/admin.token")).unwrap();
    let admin = format!("Bearer {}", admin.trim());
    let mut registry = RegistryServiceClient::new(
        Channel::from_shared(suite.uri(0))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let mut referral = ReferralServiceClient::new(
        Channel::from_shared(suite.uri(1))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );

    // A licensed institution files a complaint: referral → registry, over real gRPC.
    let inst = registry
        .create_institution(authed(
            &admin,
            reg::CreateInstitutionRequest {
                request_id: "suite-1".into(),
                institution: Some(family_centre()),
            },
        ))
        .await
        .unwrap();
    // Every response names its trace.
    let trace_header = inst
        .metadata()
        .get("x-trace-id")
        .expect("x-trace-id header")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(trace_header.len(), 32, "{trace_header}");
    let inst = inst.into_inner().institution.unwrap();
    let id = inst.name.trim_start_matches("institutions/").to_owned();
    let agent = suite.token(&["--role", "INSTITUTION", "--institution", &id]);
    // Not licensed yet: the registry's reason comes back, and the error names its trace.
    let err = submit_a_lawsuit(&mut referral, &agent).await.unwrap_err();
    let details = err.get_error_details();
    assert_eq!(details.error_info().unwrap().reason, "NO_LICENCE");
    let request_id = details.request_info().unwrap().request_id.clone();
    assert_eq!(request_id.len(), 32);
    assert_eq!(
        err.metadata().get("x-trace-id").unwrap().to_str().unwrap(),
        request_id
    );

    // Metrics count the calls by method and code.
    let text = http_get(&format!("127.0.0.1:{}", suite.metrics + 1), "/metrics").await;
    assert!(
        text.contains(r#"grpc_code="9",grpc_method="SubmitFiling""#),
        "{text}"
    );
    assert!(
        text.contains("mosharekat_grpc_server_handling_seconds_bucket"),
        "{text}"
    );
    let registry_metrics = http_get(&format!("127.0.0.1:{}", suite.metrics), "/metrics").await;
    assert!(
        registry_metrics.contains(r#"grpc_method="CheckEligibility""#),
        "the referral service called the registry"
    );

    // SIGTERM: the process ends by itself, with success.
    sigterm(&suite.child);
    let status = wait_exit(&mut suite.child, Duration::from_secs(30)).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// `--tls`: a local CA and certificates in the data folder, health in plaintext on the
/// health ports, end users over server-side TLS with the CA, the peer RPCs with the
/// operator's client certificate only, and the services calling each other over mutual
/// TLS (a filing submitted reaches the registry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launcher_runs_the_suite_over_mutual_tls() {
    use mosharekat_platform::client::channel_with;
    use mosharekat_platform::tls::ClientTls;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ports = [free_port(), free_port(), free_port()];
    let (metrics, health) = (free_port_run(), free_port_run());
    let mut child = Command::new(env!("CARGO_BIN_EXE_mosharekat"))
        .args(["--data", data.to_str().unwrap(), "--tls"])
        .args(["--registry-port", &ports[0].to_string()])
        .args(["--referral-port", &ports[1].to_string()])
        .args(["--meeting-port", &ports[2].to_string()])
        .args(["--public-port", "0"])
        .args(["--metrics-port", &metrics.to_string()])
        .args(["--health-port", &health.to_string()])
        .args(["--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for i in 0..3 {
        common::wait_serving(
            &format!("http://127.0.0.1:{}", health + i),
            "",
            Duration::from_secs(60),
        )
        .await;
    }
    let tls = data.join("tls");
    let (ca, cert, key) = (
        tls.join("ca.pem"),
        tls.join("operator.pem"),
        tls.join("operator.key.pem"),
    );
    let admin = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let admin = format!("Bearer {}", admin.trim());
    let url = |i: usize| format!("https://127.0.0.1:{}", ports[i]);
    let end_user = ClientTls::from_files(&ca, None, "registry").unwrap();
    let operator = ClientTls::from_files(&ca, Some((&cert, &key)), "registry").unwrap();
    let mut registry = RegistryServiceClient::new(channel_with(&url(0), Some(&end_user)).unwrap());
    let eligibility = reg::CheckEligibilityRequest {
        institution: "institutions/0192f0c8-0000-7000-8000-000000000001".into(),
        action: reg::PermittedAction::FileLawsuit as i32,
        activity_area: ActivityArea::Family as i32,
        province: String::new(),
    };
    let refused = registry
        .check_eligibility(authed(&admin, eligibility.clone()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let answered = RegistryServiceClient::new(channel_with(&url(0), Some(&operator)).unwrap())
        .check_eligibility(authed(&admin, eligibility))
        .await;
    assert!(
        !matches!(&answered, Err(s) if s.code() == tonic::Code::Unauthenticated),
        "{answered:?}"
    );

    let inst = registry
        .create_institution(authed(
            &admin,
            reg::CreateInstitutionRequest {
                request_id: "tls-1".into(),
                institution: Some(family_centre()),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    let id = inst.name.trim_start_matches("institutions/").to_owned();
    let key_file = data.join("signing.key.pem");
    let out = Command::new(env!("CARGO_BIN_EXE_mosharekat"))
        .args(["token", "--key", key_file.to_str().unwrap()])
        .args(["--role", "INSTITUTION", "--institution", &id])
        .output()
        .unwrap();
    let agent = format!("Bearer {}", String::from_utf8(out.stdout).unwrap().trim());
    let referral_tls = ClientTls::from_files(&ca, None, "referral").unwrap();
    let mut referral =
        ReferralServiceClient::new(channel_with(&url(1), Some(&referral_tls)).unwrap());
    // The referral service asked the registry over mutual TLS: its answer comes back.
    let err = submit_a_lawsuit(&mut referral, &agent).await.unwrap_err();
    assert_eq!(
        err.get_error_details()
            .error_info()
            .map(|e| e.reason.clone())
            .as_deref(),
        Some("NO_LICENCE"),
        "{err:?}"
    );

    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30)).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut printed).unwrap();
    assert!(
        printed.contains(&format!("-cacert {}", ca.display()))
            && printed.contains(&format!("-cert {} -key {}", cert.display(), key.display())),
        "{printed}"
    );
}

#[test]
fn every_binary_documents_every_setting() {
    let dir = Path::new(env!("CARGO_BIN_EXE_mosharekat"))
        .parent()
        .unwrap()
        .to_owned();
    let common = [
        "LISTEN_ADDR",
        "METRICS_ADDR",
        "DATABASE_URL",
        "DB_MAX_CONNECTIONS",
        "TOKEN_PUBLIC_KEYS",
        "SERVICE_SIGNING_KEY",
        "MAX_MESSAGE_BYTES",
        "MAX_CONCURRENT_REQUESTS",
        "REQUEST_TIMEOUT",
        "MAX_CONNECTION_AGE",
        "SHUTDOWN_DRAIN_DELAY",
        "SHUTDOWN_GRACE",
        "HEALTH_CHECK_INTERVAL",
        "REFLECTION",
        "REFLECTION_REQUIRES_AUTH",
        "LOG_FORMAT",
        "TLS_CERT",
        "TLS_KEY",
        "TLS_CA",
        "MTLS",
        "HEALTH_LISTEN",
    ];
    for (bin, own) in [
        ("registry", &["EXPIRY_SWEEP_INTERVAL"][..]),
        (
            "referral",
            &[
                "REGISTRY_URL",
                "PEER_TIMEOUT",
                "REFERRAL_DUE_DAYS",
                "REFERRAL_DEFAULT_DUE_DAYS",
            ][..],
        ),
        (
            "meeting",
            &["REGISTRY_URL", "REFERRAL_URL", "PEER_TIMEOUT"][..],
        ),
    ] {
        let path = dir.join(bin);
        // Built with the service's own package: `cargo nextest run --workspace` builds it.
        assert!(
            path.exists(),
            "{bin} is not built at {}; run the tests with --workspace",
            path.display()
        );
        let out = Command::new(&path).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        for var in common.iter().chain(own) {
            assert!(
                help.contains(&format!("[env: {var}=")),
                "{bin} --help does not document {var}"
            );
        }
        for sub in ["serve", "migrate", "keys", "token"] {
            assert!(
                help.contains(&format!("  {sub} ")),
                "{bin} --help does not list {sub}"
            );
        }
    }
}

/// The unlicensed institution's draft lawsuit both launcher tests file.
fn draft_lawsuit() -> rf::CreateFilingRequest {
    rf::CreateFilingRequest {
        request_id: String::new(),
        filing: Some(rf::Filing {
            kind: rf::FilingKind::Lawsuit as i32,
            activity_area: ActivityArea::Family as i32,
            authority: "دادگاه خانواده اردبیل".into(),
            province: "اردبیل".into(),
            subject: "دعوای نفقه".into(),
            ..Default::default()
        }),
    }
}
