//! The seed's story against the real binaries: `registry`, `referral` and `meeting` run as
//! three separate processes, each with its own database (SQLite files, then PostgreSQL
//! databases), exporting their spans to a test OTLP collector. The test drives them over
//! gRPC as the judiciary's users would, then checks what only the running system shows:
//! one trace per action across the processes, database spans, no national code in any
//! span or log line, the licence-event consumers linked to the licence change, metrics by
//! method and code, and SIGTERM with calls in flight. Then once more with TLS and mutual
//! TLS on: the services call each other over TLS with their own certificates, the test's
//! end users connect with server-side TLS only, the peer RPC it makes itself (statistics)
//! with a client certificate, and health answers on the plaintext health ports.

mod common;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::collector::{self, Collector, Span};
use common::workload::{families_ngo, legal_entity_id, national_code, victims_filing};
use common::{authed, free_port, http_get, service_binary, sigterm, wait_exit, wait_serving};
use mosharekat_api::common::v1 as cm;
use mosharekat_api::common::v1::notification_service_client::NotificationServiceClient;
use mosharekat_api::common::v1::{ActivityArea, Party, PartyRole};
use mosharekat_api::meeting::v1 as mt;
use mosharekat_api::meeting::v1::meeting_service_client::MeetingServiceClient;
use mosharekat_api::referral::v1 as rf;
use mosharekat_api::referral::v1::referral_service_client::ReferralServiceClient;
use mosharekat_api::registry::v1 as reg;
use mosharekat_api::registry::v1::calendar_service_client::CalendarServiceClient;
use mosharekat_api::registry::v1::public_record_service_client::PublicRecordServiceClient;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use mosharekat_platform::auth::Role;
use mosharekat_platform::client::channel_with;
use mosharekat_platform::testing::{Backend, TestDb, TestKeys, TestPki};
use prost_types::Timestamp;
use tonic::transport::Channel;

const PROVINCE: &str = "اردبیل";
const REGISTRY: usize = 0;
const REFERRAL: usize = 1;
const MEETING: usize = 2;
const NAMES: [&str; 3] = ["registry", "referral", "meeting"];
const GRPC_NAMES: [&str; 3] = [
    "mosharekat.registry.v1.RegistryService",
    "mosharekat.referral.v1.ReferralService",
    "mosharekat.meeting.v1.MeetingService",
];

struct Proc {
    child: Child,
    port: u16,
    metrics_port: u16,
    /// The plaintext health port (TLS on).
    health_port: Option<u16>,
    log: PathBuf,
}

/// The three services as separate processes.
struct Suite {
    procs: Vec<Proc>,
    keys: TestKeys,
    dbs: Vec<TestDb>,
    /// The suite's CA, with TLS and mutual TLS on.
    pki: Option<TestPki>,
    _dir: tempfile::TempDir,
}

impl Suite {
    async fn start(backend: Backend, otlp: &str, tls: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = TestKeys::new().unwrap();
        let mut dbs = Vec::new();
        for _ in 0..3 {
            dbs.push(TestDb::new(backend).await.unwrap());
        }
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let pki = tls.then(|| TestPki::new().unwrap());
        let scheme = if tls { "https" } else { "http" };
        let mut procs = Vec::new();
        for (i, name) in NAMES.iter().enumerate() {
            let metrics_port = free_port();
            let log = dir.path().join(format!("{name}.log"));
            let mut command = Command::new(service_binary(name));
            let health_port = pki.as_ref().map(|pki| {
                let files = pki.issue(name);
                let port = free_port();
                command
                    .env("TLS_CERT", &files.cert)
                    .env("TLS_KEY", &files.key)
                    .env("TLS_CA", &pki.ca_file)
                    .env("MTLS", "true")
                    .env("HEALTH_LISTEN", format!("127.0.0.1:{port}"));
                port
            });
            let child = command
                .env("LISTEN_ADDR", format!("127.0.0.1:{}", ports[i]))
                .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
                .env("DATABASE_URL", &dbs[i].url)
                .env("TOKEN_PUBLIC_KEYS", &keys.public_key)
                .env("SERVICE_SIGNING_KEY", &keys.private_key)
                .env(
                    "REGISTRY_URL",
                    format!("{scheme}://127.0.0.1:{}", ports[REGISTRY]),
                )
                .env(
                    "REFERRAL_URL",
                    format!("{scheme}://127.0.0.1:{}", ports[REFERRAL]),
                )
                .env("SHUTDOWN_DRAIN_DELAY", "1s")
                // Due reminders fire within a second (the story's two-day licence below).
                .env("REMINDER_INTERVAL", "1s")
                // The public record on (the registry's licence verification below); the
                // referral service has none and reads neither.
                .env("PUBLIC_RECORD", "true")
                .env("PUBLIC_LISTEN", "127.0.0.1:0")
                .env("LOG_FORMAT", "json")
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
                .env("OTEL_BSP_SCHEDULE_DELAY", "200")
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(Stdio::from(File::create(&log).unwrap()))
                .spawn()
                .unwrap();
            procs.push(Proc {
                child,
                port: ports[i],
                metrics_port,
                health_port,
                log,
            });
        }
        let suite = Self {
            procs,
            keys,
            dbs,
            pki,
            _dir: dir,
        };
        for (i, grpc) in GRPC_NAMES.iter().enumerate() {
            let uri = suite.health_uri(i);
            // wait_serving's own limit is longer: this one fails first, saying why.
            let serving = wait_serving(&uri, grpc, Duration::from_secs(120));
            if tokio::time::timeout(Duration::from_secs(60), serving)
                .await
                .is_err()
            {
                suite.not_serving(i);
            }
        }
        suite
    }

    /// Fails the test for service `i`, with why: whether it exited, and its log's end.
    fn not_serving(mut self, i: usize) -> ! {
        let exited = self.procs[i].child.try_wait().ok().flatten();
        let log = std::fs::read_to_string(&self.procs[i].log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        panic!(
            "{} is not SERVING; exited: {exited:?}; the end of its log, newest first:\n{}",
            NAMES[i],
            tail.join("\n")
        );
    }

    fn uri(&self, i: usize) -> String {
        let scheme = if self.pki.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.procs[i].port)
    }

    /// Where health answers in plaintext: the gRPC port, or with TLS on its own port.
    fn health_uri(&self, i: usize) -> String {
        let port = self.procs[i].health_port.unwrap_or(self.procs[i].port);
        format!("http://127.0.0.1:{port}")
    }

    /// A channel as an end user's: with TLS on, server-side TLS only.
    async fn channel(&self, i: usize) -> Channel {
        match &self.pki {
            None => Channel::from_shared(self.uri(i))
                .unwrap()
                .connect()
                .await
                .unwrap(),
            Some(pki) => channel_with(&self.uri(i), Some(&pki.client(NAMES[i], None))).unwrap(),
        }
    }

    /// A channel for the peer RPCs: with mutual TLS on, with a client certificate of the
    /// suite's CA (an operator's, as grpcurl's -cert/-key).
    async fn peer_channel(&self, i: usize) -> Channel {
        match &self.pki {
            None => self.channel(i).await,
            Some(pki) => {
                let operator = pki.issue("operator");
                channel_with(&self.uri(i), Some(&pki.client(NAMES[i], Some(&operator)))).unwrap()
            }
        }
    }

    async fn metrics(&self, i: usize) -> String {
        http_get(
            &format!("127.0.0.1:{}", self.procs[i].metrics_port),
            "/metrics",
        )
        .await
    }

    fn logs(&self) -> String {
        self.procs
            .iter()
            .map(|p| std::fs::read_to_string(&p.log).unwrap_or_default())
            .collect()
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.kill();
        }
    }
}

fn ts(from_now: Duration, ahead: bool) -> Timestamp {
    let now = SystemTime::now();
    let t = if ahead {
        now + from_now
    } else {
        now - from_now
    };
    let d = t.duration_since(UNIX_EPOCH).unwrap();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: 0,
    }
}

fn now() -> Timestamp {
    ts(Duration::ZERO, true)
}

const DAY: Duration = Duration::from_secs(86_400);

fn trace_of<T>(r: &tonic::Response<T>) -> String {
    r.metadata()
        .get("x-trace-id")
        .expect("every response names its trace")
        .to_str()
        .unwrap()
        .to_owned()
}

/// What the story leaves behind for the checks after it.
struct Told {
    /// National codes sent to the services: none may appear in a span or a log line.
    national_codes: Vec<String>,
    /// Trace ids of cross-service actions: (trace, caller, its RPC, callee, the peer RPC).
    crossings: Vec<(String, usize, &'static str, usize, &'static str)>,
    /// The trace of the licence suspension.
    suspension: String,
    some_institution: String,
}

/// Institution `i` (working in `areas`) registered by `officer`, given `licence` in the
/// story's province, and the licence approved.
async fn licensed(
    registry: &mut RegistryServiceClient<Channel>,
    officer: &str,
    i: usize,
    areas: Vec<i32>,
    licence: reg::Licence,
) -> (reg::Institution, reg::Licence) {
    let inst = registry
        .create_institution(authed(
            officer,
            reg::CreateInstitutionRequest {
                request_id: format!("story-inst-{i}"),
                institution: Some(families_ngo(
                    i,
                    legal_entity_id(&format!("170{i}234567")),
                    areas,
                )),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    let lic = registry
        .create_licence(authed(
            officer,
            reg::CreateLicenceRequest {
                parent: inst.name.clone(),
                request_id: format!("story-lic-{i}"),
                licence: Some(reg::Licence {
                    province: PROVINCE.into(),
                    ..licence
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    registry
        .approve_licence(authed(
            officer,
            reg::ApproveLicenceRequest {
                name: lic.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    (inst, lic)
}

/// The story of the seed document, over gRPC.
async fn tell_the_story(suite: &Suite) -> Told {
    let k = &suite.keys;
    let officer = k.bearer(Role::RegistryOfficer, None);
    let secretary = k.bearer(Role::Secretary, None);
    let centre = k.bearer(Role::CenterOfficer, None);
    let clerk = k.bearer(Role::JudicialOfficer, None);
    let admin = k.bearer(Role::Admin, None);
    let mut registry = RegistryServiceClient::new(suite.channel(REGISTRY).await);
    let mut referral = ReferralServiceClient::new(suite.channel(REFERRAL).await);
    let mut meeting = MeetingServiceClient::new(suite.channel(MEETING).await);
    let mut national_codes = Vec::new();
    let mut crossings = Vec::new();

    // Six popular institutions are registered and licensed. The first works for women
    // and families and may file complaints, report crimes and take referrals.
    let mut institutions = Vec::new();
    let mut licences = Vec::new();
    for i in 1..=6 {
        let first = i == 1;
        let areas = if first {
            vec![
                ActivityArea::Women as i32,
                ActivityArea::Family as i32,
                ActivityArea::Reconciliation as i32,
            ]
        } else {
            vec![ActivityArea::Family as i32]
        };
        let actions = if first {
            vec![
                reg::PermittedAction::FileComplaint as i32,
                reg::PermittedAction::ReportCrime as i32,
                reg::PermittedAction::AcceptReferrals as i32,
            ]
        } else {
            vec![reg::PermittedAction::AcceptReferrals as i32]
        };
        let licence_areas = if first {
            vec![ActivityArea::Women as i32, ActivityArea::Family as i32]
        } else {
            areas.clone()
        };
        let (inst, lic) = licensed(
            &mut registry,
            &officer,
            i,
            areas,
            reg::Licence {
                activity_areas: licence_areas,
                permitted_actions: actions,
                valid_until: Some(ts(3 * 365 * DAY, true)),
                ..Default::default()
            },
        )
        .await;
        let state = registry
            .get_licence(authed(
                &officer,
                reg::GetLicenceRequest {
                    name: lic.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .licence
            .unwrap()
            .state;
        assert_eq!(state, reg::LicenceState::Active as i32, "licence {i}");
        institutions.push(inst.name);
        licences.push(lic.name);
    }
    let first = institutions[0].clone();
    let agent = k.bearer(
        Role::Institution,
        Some(first.trim_start_matches("institutions/")),
    );
    // Anyone verifies the first licence by the code on its certificate, without a token.
    let code = registry
        .export_licence_certificate(authed(
            &agent,
            reg::ExportLicenceCertificateRequest {
                name: licences[0].clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .verification_code;
    let verified = PublicRecordServiceClient::new(suite.channel(REGISTRY).await)
        .verify_licence(reg::VerifyLicenceRequest {
            code,
            national_id: String::new(),
        })
        .await
        .expect("verified without a token")
        .into_inner();
    assert!(
        verified.licences[0].in_force,
        "the first licence is in force"
    );

    // The Ardabil working group is seated: the chair, five officials, six
    // representatives of licensed institutions, and the secretary.
    let group = meeting
        .create_working_group(authed(
            &secretary,
            mt::CreateWorkingGroupRequest {
                request_id: "story-group".into(),
                working_group: Some(mosharekat_testkit::ardabil_working_group()),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .working_group
        .unwrap()
        .name;
    let mut seats: Vec<(mt::Seat, mt::Position, String)> = vec![(
        mt::Seat::Chair,
        mt::Position::SocialPreventionDeputy,
        String::new(),
    )];
    for p in [
        mt::Position::ChiefInspector,
        mt::Position::ProsecutorDeputy,
        mt::Position::PrisonsDirectorGeneral,
        mt::Position::DisputeResolutionHead,
        mt::Position::PopularParticipationDirector,
    ] {
        seats.push((mt::Seat::Official, p, String::new()));
    }
    for inst in &institutions {
        seats.push((
            mt::Seat::InstitutionRepresentative,
            mt::Position::InstitutionRepresentative,
            inst.clone(),
        ));
    }
    seats.push((
        mt::Seat::Secretary,
        mt::Position::Secretariat,
        String::new(),
    ));
    let mut members = Vec::new();
    for (i, (seat, position, institution)) in seats.into_iter().enumerate() {
        let code = national_code(&format!("{:09}", 123_450 + i));
        national_codes.push(code.clone());
        let r = meeting
            .seat_member(authed(
                &secretary,
                mt::SeatMemberRequest {
                    parent: group.clone(),
                    request_id: format!("story-seat-{i}"),
                    member: Some(mt::Member {
                        full_name: format!("عضو شماره {i}"),
                        national_code: code,
                        seat: seat as i32,
                        position: position as i32,
                        position_title: format!("{position:?}"),
                        institution: institution.clone(),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .unwrap();
        if !institution.is_empty() && crossings.iter().all(|c: &(_, _, _, _, _)| c.1 != MEETING) {
            crossings.push((
                trace_of(&r),
                MEETING,
                "SeatMember",
                REGISTRY,
                "CheckLicensed",
            ));
        }
        members.push(r.into_inner().member.unwrap().name);
    }
    let secretary_member = members.pop().unwrap();
    assert_eq!(members.len(), 12);

    // The institution files a complaint and reports a crime, each with the victim's
    // recorded consent; the prosecutor's office registers the complaint.
    let mut filings = Vec::new();
    for (n, kind) in [rf::FilingKind::Complaint, rf::FilingKind::CrimeReport]
        .into_iter()
        .enumerate()
    {
        let victim_code = national_code(&format!("{:09}", 987_650 + n));
        national_codes.push(victim_code.clone());
        let filing = referral
            .create_filing(authed(
                &agent,
                rf::CreateFilingRequest {
                    request_id: format!("story-filing-{n}"),
                    filing: Some(victims_filing(
                        kind,
                        "خشونت خانگی".into(),
                        victim_code,
                        now(),
                    )),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .filing
            .unwrap();
        let r = referral
            .submit_filing(authed(
                &agent,
                rf::SubmitFilingRequest {
                    name: filing.name.clone(),
                    etag: String::new(),
                },
            ))
            .await
            .unwrap();
        if n == 0 {
            crossings.push((
                trace_of(&r),
                REFERRAL,
                "SubmitFiling",
                REGISTRY,
                "CheckEligibility",
            ));
        }
        assert_eq!(
            r.into_inner().filing.unwrap().state,
            rf::FilingState::Submitted as i32
        );
        filings.push(filing.name);
    }
    let registered = referral
        .register_filing(authed(
            &clerk,
            rf::RegisterFilingRequest {
                name: filings[0].clone(),
                etag: String::new(),
                case_number: "۱۴۰۵-۷۷".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(registered.case_number, "1405-77");
    assert_eq!(registered.state, rf::FilingState::Registered as i32);

    // The Dispute Resolution Development centre refers a family dispute for
    // reconciliation; the institution accepts, holds two sessions and reconciles them.
    let dispute = |n: u32| rf::CreateReferralRequest {
        request_id: format!("story-referral-{n}"),
        referral: Some(rf::Referral {
            source: rf::ReferralSource::DisputeResolutionCenter as i32,
            source_case_number: format!("۹۸۷{n}"),
            kind: rf::ReferralKind::Reconciliation as i32,
            activity_area: ActivityArea::Family as i32,
            province: PROVINCE.into(),
            parties: vec![
                Party {
                    full_name: "حسن".into(),
                    role: PartyRole::Disputant as i32,
                    ..Default::default()
                },
                Party {
                    full_name: "رضا".into(),
                    role: PartyRole::Disputant as i32,
                    ..Default::default()
                },
            ],
            summary: "اختلاف خانوادگی بر سر نفقه".into(),
            institution: first.clone(),
            // Both parties agreed to reconciliation (art. 82).
            agreements: mosharekat_testkit::agreements_of(2),
            ..Default::default()
        }),
    };
    let case = referral
        .create_referral(authed(&centre, dispute(1)))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap()
        .name;
    let accepted = referral
        .accept_referral(authed(
            &agent,
            rf::AcceptReferralRequest {
                name: case.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert!(accepted.due_time.is_some());
    // A moved deadline: the courts of Ardabil closed on its last day, published late on
    // the registry's calendar; the referral service follows the calendar and moves it.
    let due_day = accepted
        .due
        .as_ref()
        .expect("a due deadline")
        .last_day
        .clone();
    CalendarServiceClient::new(suite.channel(REGISTRY).await)
        .publish_closure(authed(
            &admin,
            reg::PublishClosureRequest {
                request_id: "story-closure".into(),
                province: "اردبیل".into(),
                nationwide: false,
                first_day: due_day.clone(),
                last_day: due_day.clone(),
                reason: "گرمای شدید هوا".into(),
            },
        ))
        .await
        .unwrap();
    let limit = Instant::now() + Duration::from_secs(30);
    let moved = loop {
        let r = referral
            .get_referral(authed(
                &centre,
                rf::GetReferralRequest { name: case.clone() },
            ))
            .await
            .unwrap()
            .into_inner()
            .referral
            .unwrap();
        if r.due.as_ref().unwrap().last_day != due_day {
            break r;
        }
        assert!(Instant::now() < limit, "the due day {due_day} did not move");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(moved.due.as_ref().unwrap().last_day > due_day);
    assert!(
        moved
            .timeline
            .last()
            .is_some_and(|t| t.note.contains("منتقل شد")),
        "{:?}",
        moved.timeline.last()
    );
    // An SMS gateway follows the referral service's queued notices from the start and
    // acknowledges the first delivered (under mutual TLS a SERVICE token needs its
    // service's certificate, which a gateway here has not).
    if suite.pki.is_none() {
        let gateway = k.bearer_with(Role::Service, |r| r.service = Some("sms-gateway".into()));
        let mut notices = NotificationServiceClient::new(suite.channel(REFERRAL).await);
        let mut stream = notices
            .stream_notifications(authed(
                &gateway,
                cm::StreamNotificationsRequest {
                    after_sequence: 0,
                    channel: cm::NotificationChannel::Sms as i32,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let first = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .expect("a queued SMS")
            .unwrap()
            .and_then(|m| m.notification)
            .expect("a notification");
        drop(stream);
        let acked = notices
            .acknowledge_notification(authed(
                &gateway,
                cm::AcknowledgeNotificationRequest {
                    name: first.name.clone(),
                    state: cm::NotificationState::Delivered as i32,
                    failure_reason: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .notification
            .unwrap();
        assert_eq!(acked.state, cm::NotificationState::Delivered as i32);
    }
    for (n, notes) in ["جلسهٔ نخست: شنیدن طرفین", "جلسهٔ دوم: توافق"]
        .into_iter()
        .enumerate()
    {
        referral
            .record_progress(authed(
                &agent,
                rf::RecordProgressRequest {
                    name: case.clone(),
                    etag: String::new(),
                    entry: Some(rf::ProgressEntry {
                        session_time: Some(ts(Duration::from_secs(3600 * (2 - n as u64)), false)),
                        attendees: vec!["حسن".into(), "رضا".into()],
                        notes: notes.into(),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .unwrap();
    }
    let resolved = referral
        .resolve_referral(authed(
            &agent,
            rf::ResolveReferralRequest {
                name: case.clone(),
                outcome: rf::ReferralOutcome::Reconciled as i32,
                settlement_text: "صلح‌نامهٔ طرفین".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(resolved.state, rf::ReferralState::Resolved as i32);
    assert_eq!(resolved.progress.len(), 2);

    // The statistics show it (a peer RPC: over mutual TLS, with a client certificate).
    let stats_request = rf::GetStatisticsRequest {
        province: PROVINCE.into(),
        start_time: Some(ts(30 * DAY, false)),
        end_time: Some(ts(DAY, true)),
    };
    if suite.pki.is_some() {
        let refused = referral
            .get_statistics(authed(&admin, stats_request.clone()))
            .await
            .expect_err("a peer RPC needs a client certificate");
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    }
    let stats = ReferralServiceClient::new(suite.peer_channel(REFERRAL).await)
        .get_statistics(authed(&admin, stats_request))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.filings_total, 2, "{stats:?}");
    assert_eq!(stats.referrals_total, 1, "{stats:?}");
    assert_eq!(stats.resolved_count, 1, "{stats:?}");
    assert!((stats.reconciliation_rate - 1.0).abs() < 1e-9, "{stats:?}");

    // The group's first meeting: the agenda holds the standing report and the referral,
    // quorum is met, and a resolution is adopted.
    let m = meeting
        .schedule_meeting(authed(
            &secretary,
            mt::ScheduleMeetingRequest {
                parent: group.clone(),
                request_id: "story-meeting-1".into(),
                meeting: Some(mt::Meeting {
                    title: "نخستین جلسهٔ کارگروه".into(),
                    place: "دادگستری استان اردبیل".into(),
                    scheduled_time: Some(ts(DAY, true)),
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap()
        .name;
    assert!(m.ends_with("/meetings/1"), "{m}");
    let r = meeting
        .set_agenda(authed(
            &secretary,
            mt::SetAgendaRequest {
                name: m.clone(),
                etag: String::new(),
                items: vec![
                    mt::AgendaItem {
                        title: "گزارش ارجاع‌ها و پرونده‌ها".into(),
                        standing_report: true,
                        ..Default::default()
                    },
                    mt::AgendaItem {
                        title: "گزارش نخستین صلح".into(),
                        subject: case.clone(),
                        ..Default::default()
                    },
                ],
            },
        ))
        .await
        .unwrap();
    crossings.push((trace_of(&r), MEETING, "SetAgenda", REFERRAL, "GetReferral"));
    let r = meeting
        .finalize_agenda(authed(
            &secretary,
            mt::FinalizeAgendaRequest {
                name: m.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    crossings.push((
        trace_of(&r),
        MEETING,
        "FinalizeAgenda",
        REFERRAL,
        "GetStatistics",
    ));
    let finalised = r.into_inner().meeting.unwrap();
    assert!(finalised.agenda_final);
    assert!(
        !finalised.agenda[0].figures.is_empty(),
        "the standing report holds the referral statistics"
    );
    let mut attendance: Vec<mt::Attendance> = members[..9]
        .iter()
        .map(|m| mt::Attendance {
            member: m.clone(),
            status: mt::AttendanceStatus::Present as i32,
            ..Default::default()
        })
        .collect();
    attendance.push(mt::Attendance {
        member: secretary_member.clone(),
        status: mt::AttendanceStatus::Present as i32,
        ..Default::default()
    });
    let present = meeting
        .record_attendance(authed(
            &secretary,
            mt::RecordAttendanceRequest {
                name: m.clone(),
                attendance,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert!(present.quorum.unwrap().met);
    let started = meeting
        .start_meeting(authed(
            &secretary,
            mt::StartMeetingRequest {
                name: m.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    // The second item is the first institution's referral (as the referral service
    // answers): its representative is recused for it, and their vote on it is refused.
    assert!(
        started
            .recusals
            .iter()
            .any(|r| r.agenda_item == 2 && r.member == members[6] && r.automatic),
        "{:?}",
        started.recusals
    );
    let refused = meeting
        .record_resolution(authed(
            &secretary,
            mt::RecordResolutionRequest {
                name: m.clone(),
                text: "تقدیر از نهاد".into(),
                responsible_body: "دبیرخانه".into(),
                agenda_item: 2,
                votes: vec![mt::CastVote {
                    member: members[6].clone(),
                    vote: mt::Vote::For as i32,
                }],
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    let resolution = meeting
        .record_resolution(authed(
            &secretary,
            mt::RecordResolutionRequest {
                name: m.clone(),
                request_id: "story-resolution-1".into(),
                text: "ایجاد سامانهٔ ارجاع پرونده به نهادهای مردمی".into(),
                responsible_member: members[4].clone(),
                deadline: Some(ts(90 * DAY, true)),
                votes: members[..9]
                    .iter()
                    .map(|m| mt::CastVote {
                        member: m.clone(),
                        vote: mt::Vote::For as i32,
                    })
                    .collect(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .resolution
        .unwrap();
    assert!(resolution.adopted);

    // A second dispute is with the institution when its licence is suspended: the
    // referral is recalled and its seat on the group falls vacant.
    let open = referral
        .create_referral(authed(&centre, dispute(2)))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap()
        .name;
    referral
        .accept_referral(authed(
            &agent,
            rf::AcceptReferralRequest {
                name: open.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    let r = registry
        .suspend_licence(authed(
            &officer,
            reg::SuspendLicenceRequest {
                name: licences[0].clone(),
                etag: String::new(),
                reason: "عدم ارائهٔ گزارش سالانه".into(),
            },
        ))
        .await
        .unwrap();
    let suspension = trace_of(&r);
    let start = Instant::now();
    loop {
        let state = referral
            .get_referral(authed(
                &centre,
                rf::GetReferralRequest { name: open.clone() },
            ))
            .await
            .unwrap()
            .into_inner()
            .referral
            .unwrap()
            .state;
        if state == rf::ReferralState::Recalled as i32 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the open referral was not recalled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        let seated = meeting
            .list_members(authed(
                &secretary,
                mt::ListMembersRequest {
                    parent: group.clone(),
                    include_vacant: true,
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .members;
        if seated.iter().any(|s| s.institution == first && s.vacant) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the representative's seat did not fall vacant"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The minutes are approved, verified and exported.
    let closed = meeting
        .approve_minutes(authed(
            &secretary,
            mt::ApproveMinutesRequest {
                name: m.clone(),
                etag: String::new(),
                discussion: "گزارش دبیر و بحث اعضا".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(closed.state, mt::MeetingState::Closed as i32);
    // The minutes count the seats the meeting was held with: the seat that fell vacant
    // since is still one of twelve, its holder one of the nine present.
    let q = closed.quorum.clone().unwrap();
    assert_eq!((q.voting_members, q.voting_present), (12, 9), "{q:?}");
    let verified = meeting
        .verify_minutes(authed(
            &secretary,
            mt::VerifyMinutesRequest { name: m.clone() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(verified.intact);
    let html = meeting
        .export_minutes(authed(
            &secretary,
            mt::ExportMinutesRequest { name: m.clone() },
        ))
        .await
        .unwrap()
        .into_inner()
        .html;
    assert!(html.contains(r#"dir="rtl""#));
    assert!(html.contains("ایجاد سامانهٔ ارجاع پرونده"));
    // The chair signs the approved minutes (the hash they read): the export shows it.
    let chair = k.bearer_with(Role::Member, |r| {
        r.member = members[0].rsplit('/').next().map(str::to_owned)
    });
    let signed = meeting
        .sign_minutes(authed(
            &chair,
            mt::SignMinutesRequest {
                name: m.clone(),
                etag: String::new(),
                content_sha256: closed.content_sha256.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(signed.signatures.len(), 1);
    assert_eq!(signed.signatures[0].member, members[0]);
    let html = meeting
        .export_minutes(authed(
            &secretary,
            mt::ExportMinutesRequest { name: m.clone() },
        ))
        .await
        .unwrap()
        .into_inner()
        .html;
    assert!(html.contains("امضا شد") && html.contains("هنوز امضا نشده"));

    // A reminder: a seventh institution licensed for two days only. Every "days before"
    // reminder of its end has gone by, so the most urgent is due at once, and the
    // registry's reminder loop sends it to the institution; its officers list it.
    let (brief, short) = licensed(
        &mut registry,
        &officer,
        7,
        vec![ActivityArea::Family as i32],
        reg::Licence {
            activity_areas: vec![ActivityArea::Family as i32],
            permitted_actions: vec![reg::PermittedAction::AcceptReferrals as i32],
            valid_until: Some(ts(2 * DAY, true)),
            ..Default::default()
        },
    )
    .await;
    let mut registry_notices = NotificationServiceClient::new(suite.channel(REGISTRY).await);
    let deadline = Instant::now() + Duration::from_secs(20);
    let reminder = loop {
        let listed = registry_notices
            .list_notifications(authed(
                &officer,
                cm::ListNotificationsRequest {
                    resource: short.name.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .notifications;
        if let Some(n) = listed.into_iter().find(|n| n.text.contains("به سر می‌رسد")) {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "no reminder of the end of {} within 20 s",
            short.name
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        !reminder.recipient_id.is_empty() && brief.name.ends_with(&reminder.recipient_id),
        "the reminder is for the institution: {reminder:?}"
    );

    Told {
        national_codes,
        crossings,
        suspension,
        some_institution: institutions[1].clone(),
    }
}

fn ancestors<'a>(spans: &'a [Span], s: &'a Span) -> Vec<&'a Span> {
    let mut out = Vec::new();
    let mut cur = s;
    while let Some(p) = spans
        .iter()
        .find(|p| p.trace_id == cur.trace_id && p.span_id == cur.parent_span_id)
    {
        out.push(p);
        cur = p;
    }
    out
}

/// One cross-service action is one trace: the caller's server span, its client span, the
/// callee's server span as that client span's child, and database spans in both.
fn check_crossing(
    spans: &[Span],
    (trace, caller, rpc, callee, peer_rpc): &(String, usize, &'static str, usize, &'static str),
) {
    let what = format!("{} {rpc} → {} {peer_rpc}", NAMES[*caller], NAMES[*callee]);
    let trace: Vec<&Span> = spans.iter().filter(|s| &s.trace_id == trace).collect();
    let find = |service: usize, kind: i32, name: String| {
        trace
            .iter()
            .find(|s| s.service == NAMES[service] && s.kind == kind && s.name == name)
            .copied()
            .unwrap_or_else(|| {
                panic!(
                    "{what}: no span {name} (kind {kind}) from {} in trace {}; have {:#?}",
                    NAMES[service],
                    trace.first().map_or("", |s| s.trace_id.as_str()),
                    trace
                        .iter()
                        .map(|s| (&s.service, &s.name, s.kind))
                        .collect::<Vec<_>>()
                )
            })
    };
    let server = find(
        *caller,
        collector::SERVER,
        format!("{}/{rpc}", GRPC_NAMES[*caller]),
    );
    let client = find(
        *caller,
        collector::CLIENT,
        format!("{}/{peer_rpc}", GRPC_NAMES[*callee]),
    );
    let peer = find(
        *callee,
        collector::SERVER,
        format!("{}/{peer_rpc}", GRPC_NAMES[*callee]),
    );
    assert!(
        server.parent_span_id.is_empty(),
        "{what}: the action is the root"
    );
    assert!(
        ancestors(spans, client)
            .iter()
            .any(|a| a.span_id == server.span_id),
        "{what}: the client span is inside the caller's server span"
    );
    assert_eq!(
        peer.parent_span_id, client.span_id,
        "{what}: the callee's server span is the client span's child"
    );
    for (s, method) in [(server, *rpc), (client, *peer_rpc), (peer, *peer_rpc)] {
        assert_eq!(s.attr("rpc.system"), Some("grpc"), "{what}: {s:?}");
        assert_eq!(s.attr("rpc.method"), Some(method), "{what}: {s:?}");
        assert!(s.attr("rpc.service").is_some(), "{what}: {s:?}");
        assert_eq!(s.attr("rpc.grpc.status_code"), Some("0"), "{what}: {s:?}");
    }
    for (service, root) in [(*caller, server), (*callee, peer)] {
        let db = trace
            .iter()
            .filter(|s| s.service == NAMES[service] && s.attr("db.system").is_some())
            .find(|s| {
                ancestors(spans, s)
                    .iter()
                    .any(|a| a.span_id == root.span_id)
            })
            .unwrap_or_else(|| panic!("{what}: no database span under {}", root.name));
        assert!(
            matches!(db.attr("db.system"), Some("sqlite" | "postgresql")),
            "{db:?}"
        );
        assert!(db.attr("db.operation").is_some(), "{db:?}");
        assert_eq!(db.kind, collector::CLIENT, "{db:?}");
    }
}

/// Calls in flight when SIGTERM arrives finish, and so do calls made during the drain
/// delay (1 s here; checked for its first half, leaving a margin for a slow machine);
/// only later calls may be refused (the connection closes), and the process exits 0.
async fn sigterm_with_calls_in_flight(suite: &mut Suite, institution: &str) {
    let bearer = suite.keys.bearer(Role::RegistryOfficer, None);
    let channel = suite.channel(REGISTRY).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let epoch = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let mut client = RegistryServiceClient::new(channel.clone());
        let bearer = bearer.clone();
        let calls = calls.clone();
        let name = institution.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0usize;
            loop {
                calls.fetch_add(1, Ordering::SeqCst);
                let sent = epoch.elapsed();
                let r = client
                    .get_institution(authed(
                        &bearer,
                        reg::GetInstitutionRequest { name: name.clone() },
                    ))
                    .await;
                match r {
                    Ok(_) => ok += 1,
                    Err(s) => return (ok, sent, s),
                }
            }
        }));
    }
    let warming = Instant::now();
    while calls.load(Ordering::SeqCst) < 500 {
        assert!(
            warming.elapsed() < Duration::from_secs(30) && tasks.iter().any(|t| !t.is_finished()),
            "the calls before SIGTERM did not get going"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let registry = &mut suite.procs[REGISTRY].child;
    let sigterm_at = epoch.elapsed();
    sigterm(registry);
    let mut ok = 0;
    for t in tasks {
        let (o, sent, status) = tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("calls end after shutdown")
            .unwrap();
        ok += o;
        assert!(
            sent > sigterm_at + Duration::from_millis(500),
            "a call made {:?} after SIGTERM failed: {status:?}",
            sent.saturating_sub(sigterm_at)
        );
        // How the client reports a stream the server never took depends on the moment:
        // connection refused, closed, or a GOAWAY it raced with. None is an answer from
        // the service.
        // Over TLS a write to the closed socket also surfaces as UNKNOWN "transport error"
        // (a broken pipe): the client's own transport, never a status the service sent.
        let transport = status.message().starts_with("h2 protocol error")
            || status.message().contains("connection")
            || status.message() == "transport error";
        assert!(
            matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::Cancelled
            ) || (matches!(status.code(), tonic::Code::Internal | tonic::Code::Unknown)
                && transport),
            "refused after the drain, not failed: {status:?}"
        );
    }
    assert!(ok > 0);
    let status = wait_exit(registry, Duration::from_secs(30)).expect("the registry exits");
    assert!(status.success(), "{status:?}");
}

/// A service's health turns `NOT_SERVING` while its database refuses connections, and
/// `SERVING` again when it accepts them (PostgreSQL: the database is closed to new
/// connections and the service's are ended).
async fn health_follows_the_database(suite: &Suite, i: usize) {
    use sea_orm::ConnectionTrait;
    use tonic_health::pb::health_check_response::ServingStatus;
    let name = suite.dbs[i].url.rsplit('/').next().unwrap().to_owned();
    let admin = sea_orm::Database::connect(mosharekat_platform::testing::postgres_admin_url())
        .await
        .unwrap();
    let wait_for = |want: ServingStatus| async move {
        let start = Instant::now();
        while common::health(&suite.health_uri(i), GRPC_NAMES[i]).await != Some(want as i32) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{} health did not turn {want:?}",
                NAMES[i]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    for sql in [
        format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"),
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
    ] {
        admin.execute_unprepared(&sql).await.unwrap();
    }
    wait_for(ServingStatus::NotServing).await;
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
    wait_for(ServingStatus::Serving).await;
}

async fn the_story_as_separate_processes(backend: Backend, tls: bool) {
    let (collector, endpoint) = Collector::start().await;
    let mut suite = Suite::start(backend, &endpoint, tls).await;
    let told = tell_the_story(&suite).await;

    // Metrics after the story: counts and latency histograms by method and code.
    for (i, method) in [
        (REGISTRY, "CheckEligibility"),
        (REFERRAL, "SubmitFiling"),
        (MEETING, "FinalizeAgenda"),
    ] {
        let text = suite.metrics(i).await;
        for family in [
            "mosharekat_grpc_server_requests_total",
            "mosharekat_grpc_server_handling_seconds_bucket",
        ] {
            let line = format!(
                r#"{family}{{grpc_code="0",grpc_method="{method}",grpc_service="{}""#,
                GRPC_NAMES[i]
            );
            assert!(
                text.contains(&line),
                "{} metrics lack {line}:\n{text}",
                NAMES[i]
            );
        }
        // Every service has written during the story: its commits and the writes they
        // carried are exported.
        let commits = text
            .lines()
            .find(|l| l.starts_with("mosharekat_db_write_batch_size_count"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
        assert!(
            commits.is_some_and(|n| n > 0),
            "{} metrics lack the commits:\n{text}",
            NAMES[i]
        );
    }

    // Operations: health follows the database (PostgreSQL can be taken away and given
    // back; a SQLite file cannot), then SIGTERM with calls in flight, and the other two
    // stop cleanly.
    if backend == Backend::Postgres {
        health_follows_the_database(&suite, REFERRAL).await;
    }
    sigterm_with_calls_in_flight(&mut suite, &told.some_institution).await;
    for i in [REFERRAL, MEETING] {
        let child = &mut suite.procs[i].child;
        sigterm(child);
        let status = wait_exit(child, Duration::from_secs(30)).expect("exits after SIGTERM");
        assert!(status.success(), "{} {status:?}", NAMES[i]);
    }

    // The exporters flushed at shutdown: check the traces.
    let spans = collector.spans();
    assert!(!spans.is_empty(), "no spans arrived at the collector");
    for crossing in &told.crossings {
        check_crossing(&spans, crossing);
    }

    // The licence-event consumers link to the suspension's trace.
    for service in [REFERRAL, MEETING] {
        let linked = spans.iter().find(|s| {
            s.service == NAMES[service]
                && s.kind == collector::CONSUMER
                && s.links.iter().any(|(t, _)| t == &told.suspension)
        });
        let linked = linked.unwrap_or_else(|| {
            panic!(
                "{}: no consumer span links to the suspension's trace {}",
                NAMES[service], told.suspension
            )
        });
        // The work the event caused is inside the consumer span's own trace.
        assert!(
            spans.iter().any(|s| s.trace_id == linked.trace_id
                && s.attr("db.system").is_some()
                && ancestors(&spans, s)
                    .iter()
                    .any(|a| a.span_id == linked.span_id)),
            "{}: the event's database work is under its consumer span",
            NAMES[service]
        );
    }

    // No national code in any span or log line.
    let logs = suite.logs();
    assert!(logs.contains("\"level\""), "the logs are JSON lines");
    for code in &told.national_codes {
        assert!(
            !logs.contains(code.as_str()),
            "a national code is in the logs"
        );
        for s in &spans {
            assert!(
                !s.name.contains(code.as_str())
                    && s.attributes.iter().all(|(_, v)| !v.contains(code.as_str())),
                "a national code is in span {s:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_story_on_sqlite() {
    the_story_as_separate_processes(Backend::Sqlite, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_story_on_postgres() {
    the_story_as_separate_processes(Backend::Postgres, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_story_on_sqlite_over_mutual_tls() {
    the_story_as_separate_processes(Backend::Sqlite, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_story_on_postgres_over_mutual_tls() {
    the_story_as_separate_processes(Backend::Postgres, true).await;
}
