//! The three services started as processes on fresh databases, the fixtures the
//! scenarios need, and the calls the scenarios make.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mosharekat_api::common::v1::{ActivityArea, DocumentRef, Party, PartyRole};
use mosharekat_api::meeting::v1 as mt;
use mosharekat_api::meeting::v1::meeting_service_client::MeetingServiceClient;
use mosharekat_api::referral::v1 as rf;
use mosharekat_api::referral::v1::referral_service_client::ReferralServiceClient;
use mosharekat_api::registry::v1 as reg;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use mosharekat_platform::auth::{Role, TokenRequest, TokenSigner};
use mosharekat_platform::db::{Db, DbOptions};
use prost_types::Timestamp;
use sea_orm::ConnectionTrait;
use tonic::Request;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::load::{self, Sample, Spec};
use crate::procs::{Memory, Proc, bin_dir, free_port};

pub const PROVINCE: &str = "اردبیل";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A fresh database: a file in a temporary folder, or a PostgreSQL database dropped at
/// the end.
pub struct FreshDb {
    pub url: String,
    admin: Option<(String, String)>,
}

impl FreshDb {
    pub async fn new(
        backend: Backend,
        dir: &Path,
        name: &str,
        pg_admin: &str,
    ) -> anyhow::Result<Self> {
        match backend {
            Backend::Sqlite => Ok(Self {
                url: format!("sqlite://{}", dir.join(format!("{name}.db")).display()),
                admin: None,
            }),
            Backend::Postgres => {
                let db = format!("bench_{name}_{}", uuid::Uuid::now_v7().simple());
                let conn = sea_orm::Database::connect(pg_admin).await?;
                conn.execute_unprepared(&format!("CREATE DATABASE {db}"))
                    .await?;
                conn.close().await?;
                let base = pg_admin.rsplit_once('/').map_or(pg_admin, |(b, _)| b);
                Ok(Self {
                    url: format!("{base}/{db}"),
                    admin: Some((pg_admin.to_owned(), db)),
                })
            }
        }
    }

    pub async fn drop_database(&self) -> anyhow::Result<()> {
        if let Some((admin, db)) = &self.admin {
            let conn = sea_orm::Database::connect(admin.as_str()).await?;
            conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .await?;
            conn.close().await?;
        }
        Ok(())
    }
}

/// A bearer token, ready to be put on requests.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    fn mint(signer: &TokenSigner, role: Role, institution: Option<&str>) -> anyhow::Result<Self> {
        let t = signer.mint(
            role,
            &TokenRequest {
                subject: format!("bench-{}", role.as_str().to_lowercase()),
                institution: institution.map(str::to_owned),
                lifetime: Duration::from_secs(6 * 3600),
                ..Default::default()
            },
        )?;
        Ok(Self(format!("Bearer {t}").parse()?))
    }

    pub fn on<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.metadata_mut().insert("authorization", self.0.clone());
        r
    }
}

fn err(s: tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

fn ts(from_now: Duration) -> Timestamp {
    let d = (SystemTime::now() + from_now)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: 0,
    }
}

pub const NAMES: [&str; 3] = ["registry", "referral", "meeting"];
const GRPC: [&str; 3] = [
    "mosharekat.registry.v1.RegistryService",
    "mosharekat.referral.v1.ReferralService",
    "mosharekat.meeting.v1.MeetingService",
];

pub struct Suite {
    pub procs: Vec<Proc>,
    pub dbs: Vec<FreshDb>,
    pub idle: Vec<Memory>,
    registry: Vec<Channel>,
    referral: Vec<Channel>,
    meeting: Vec<Channel>,
    officer: Bearer,
    centre: Bearer,
    secretary: Bearer,
    agent: Bearer,
    /// A judicial officer of every authority: registers the listed filings.
    judge: Bearer,
    filer: String,
    members: Vec<String>,
    secretary_member: String,
    group: String,
    pub fixture_ids: Vec<String>,
    /// Bulk rows written so far (the ids kept above are capped).
    fixtures: u64,
    national_ids: Arc<std::sync::atomic::AtomicU64>,
    /// What restarting the referral service needs: its database kind, the PostgreSQL
    /// admin URL, the keys, the ports.
    backend: Backend,
    pg_admin: String,
    keys: (std::path::PathBuf, std::path::PathBuf),
    ports: [u16; 3],
    connections: usize,
    restarts: u32,
    _dir: tempfile::TempDir,
}

impl Suite {
    /// Starts the three services on fresh databases, one after the other (so each
    /// start-up is timed alone), and records their idle memory.
    pub async fn start(
        backend: Backend,
        pg_admin: &str,
        connections: usize,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (private_key, public_key) = mosharekat_platform::auth::ensure_keypair(dir.path())?;
        let signer = TokenSigner::from_pem_file(&private_key)?;
        let ports = [free_port()?, free_port()?, free_port()?];
        let mut procs = Vec::new();
        let mut dbs = Vec::new();
        let keys = (private_key.clone(), public_key.clone());
        for (i, name) in NAMES.iter().enumerate() {
            let (p, db) =
                start_one(i, backend, pg_admin, dir.path(), &keys, &ports, name, &[]).await?;
            procs.push(p);
            dbs.push(db);
        }
        // Idle: serving, an empty database, and nothing asked of it yet.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle = procs.iter().map(Proc::memory).collect();
        let officer = Bearer::mint(&signer, Role::RegistryOfficer, None)?;
        let centre = Bearer::mint(&signer, Role::CenterOfficer, None)?;
        let secretary = Bearer::mint(&signer, Role::Secretary, None)?;
        let judge = Bearer::mint(&signer, Role::JudicialOfficer, None)?;
        let registry = procs[0].connections(connections).await?;
        let referral = procs[1].connections(connections).await?;
        let meeting = procs[2].connections(connections).await?;

        // Fixtures over the API: six licensed institutions (the first may file and take
        // referrals), and the working group with all its seats.
        let mut institutions = Vec::new();
        for i in 0..FIXTURE_INSTITUTIONS {
            let first = i == 0;
            let areas = if first {
                vec![ActivityArea::Women as i32, ActivityArea::Family as i32]
            } else {
                vec![ActivityArea::Family as i32]
            };
            let mut c = RegistryServiceClient::new(registry[0].clone());
            let inst = c
                .create_institution(officer.on(reg::CreateInstitutionRequest {
                    request_id: format!("fixture-{i}"),
                    institution: Some(institution(7_000_000 + i, areas.clone())),
                }))
                .await?
                .into_inner()
                .institution
                .ok_or_else(|| anyhow::anyhow!("no institution"))?;
            let actions = if first {
                vec![
                    reg::PermittedAction::FileComplaint as i32,
                    reg::PermittedAction::ReportCrime as i32,
                    reg::PermittedAction::AcceptReferrals as i32,
                ]
            } else {
                vec![reg::PermittedAction::AcceptReferrals as i32]
            };
            let lic = c
                .create_licence(officer.on(reg::CreateLicenceRequest {
                    parent: inst.name.clone(),
                    request_id: format!("fixture-lic-{i}"),
                    licence: Some(reg::Licence {
                        activity_areas: areas,
                        permitted_actions: actions,
                        province: PROVINCE.into(),
                        valid_until: Some(ts(Duration::from_secs(3 * 365 * 86_400))),
                        ..Default::default()
                    }),
                }))
                .await?
                .into_inner()
                .licence
                .ok_or_else(|| anyhow::anyhow!("no licence"))?;
            c.approve_licence(officer.on(reg::ApproveLicenceRequest {
                name: lic.name,
                ..Default::default()
            }))
            .await?;
            institutions.push(inst.name);
        }
        let filer = institutions[0].clone();
        let agent = Bearer::mint(
            &signer,
            Role::Institution,
            Some(filer.trim_start_matches("institutions/")),
        )?;
        let mut m = MeetingServiceClient::new(meeting[0].clone());
        let group = m
            .create_working_group(secretary.on(mt::CreateWorkingGroupRequest {
                request_id: "fixture-group".into(),
                working_group: Some(mt::WorkingGroup {
                    province: PROVINCE.into(),
                    title: "کارگروه استانی مشارکت".into(),
                    ..Default::default()
                }),
            }))
            .await?
            .into_inner()
            .working_group
            .ok_or_else(|| anyhow::anyhow!("no group"))?
            .name;
        let mut seats = vec![(
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
        for (i, (seat, position, inst)) in seats.into_iter().enumerate() {
            let nine = format!("{:09}", 300_000 + i);
            let d = mosharekat_persian::ids::national_code_check_digit(&nine)
                .ok_or_else(|| anyhow::anyhow!("check digit"))?;
            members.push(
                m.seat_member(secretary.on(mt::SeatMemberRequest {
                    parent: group.clone(),
                    request_id: format!("fixture-seat-{i}"),
                    member: Some(mt::Member {
                        full_name: format!("عضو {i}"),
                        national_code: format!("{nine}{d}"),
                        seat: seat as i32,
                        position: position as i32,
                        position_title: format!("{position:?}"),
                        institution: inst,
                        ..Default::default()
                    }),
                }))
                .await?
                .into_inner()
                .member
                .ok_or_else(|| anyhow::anyhow!("no member"))?
                .name,
            );
        }
        let secretary_member = members.pop().unwrap_or_default();
        Ok(Self {
            procs,
            dbs,
            idle,
            registry,
            referral,
            meeting,
            officer,
            centre,
            secretary,
            agent,
            judge,
            filer,
            members,
            secretary_member,
            group,
            fixture_ids: Vec::new(),
            fixtures: 0,
            national_ids: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            backend,
            pg_admin: pg_admin.to_owned(),
            keys,
            ports,
            connections,
            restarts: 0,
            _dir: dir,
        })
    }

    /// Restarts the referral service on a fresh database of its own with
    /// `REFERRAL_NOTIFY=notify` (`none` turns its notifications off), on the same port:
    /// the same service and data shape, notifying or not.
    pub async fn restart_referral(&mut self, notify: &str) -> anyhow::Result<()> {
        self.procs.remove(1).stop();
        self.dbs.remove(1).drop_database().await?;
        self.restarts += 1;
        let name = format!("referral{}", self.restarts);
        let (p, db) = start_one(
            1,
            self.backend,
            &self.pg_admin,
            self._dir.path(),
            &self.keys,
            &self.ports,
            &name,
            &[("REFERRAL_NOTIFY", notify.to_owned())],
        )
        .await?;
        self.referral = p.connections(self.connections).await?;
        self.procs.insert(1, p);
        self.dbs.insert(1, db);
        Ok(())
    }

    /// CreateReferral as fast as it goes: each offer writes the referral, its timeline
    /// entry, and (notifying) its notices and its answer time's reminders.
    pub async fn create_referrals(&self, spec: Spec) -> Sample {
        let who = self.centre.clone();
        let filer = self.filer.clone();
        load::run(spec, &self.referral, move |ch, n| {
            let who = who.clone();
            let filer = filer.clone();
            async move {
                ReferralServiceClient::new(ch)
                    .create_referral(who.on(dispute(n, filer)))
                    .await
                    .map(drop)
                    .map_err(err)
            }
        })
        .await
    }

    /// Grows the registry to `total` institutions with bulk fixture rows.
    pub async fn grow_registry(&mut self, total: u64) -> anyhow::Result<()> {
        let have = self.fixtures;
        if total <= have {
            return Ok(());
        }
        let db = Db::connect(&self.dbs[0].url, &DbOptions::default()).await?;
        let ids = mosharekat_registry::seed::institutions(
            &db,
            have,
            total,
            PROVINCE,
            ActivityArea::Family,
        )
        .await?;
        // GetInstitution picks among the first 10,000; keep no more than that in memory.
        let room = 10_000usize.saturating_sub(self.fixture_ids.len());
        self.fixture_ids.extend(ids.into_iter().take(room));
        self.fixtures = total;
        if db.backend() == sea_orm::DbBackend::Postgres {
            db.conn().execute_unprepared("ANALYZE").await?;
        }
        Ok(())
    }

    pub async fn get_institution(&self, spec: Spec) -> Sample {
        let ids = Arc::new(self.fixture_ids.clone());
        let who = self.officer.clone();
        load::run(spec, &self.registry, move |ch, n| {
            let name = format!("institutions/{}", ids[n as usize % ids.len()]);
            let who = who.clone();
            async move {
                RegistryServiceClient::new(ch)
                    .get_institution(who.on(reg::GetInstitutionRequest { name }))
                    .await
                    .map(drop)
                    .map_err(err)
            }
        })
        .await
    }

    /// `Health/Check` on the registry: the service's edge (span, admission, metrics) with
    /// no token check and no database, to split a read's cost from the echo's.
    pub async fn health_check(&self, spec: Spec) -> Sample {
        load::run(spec, &self.registry, |ch, _| async move {
            tonic_health::pb::health_client::HealthClient::new(ch)
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(drop)
                .map_err(err)
        })
        .await
    }

    pub async fn check_eligibility(&self, spec: Spec) -> Sample {
        let who = self.officer.clone();
        let inst = self.filer.clone();
        load::run(spec, &self.registry, move |ch, _| {
            let who = who.clone();
            let inst = inst.clone();
            async move {
                let r = RegistryServiceClient::new(ch)
                    .check_eligibility(who.on(reg::CheckEligibilityRequest {
                        institution: inst,
                        action: reg::PermittedAction::FileComplaint as i32,
                        activity_area: ActivityArea::Women as i32,
                        province: PROVINCE.into(),
                    }))
                    .await
                    .map_err(err)?;
                if r.get_ref().eligible {
                    Ok(())
                } else {
                    Err("not eligible".into())
                }
            }
        })
        .await
    }

    /// A page token about `fraction` of the way through the whole listing, reached the
    /// way a client would: by paging (500 at a time).
    pub async fn deep_page_token(&self, fraction: f64) -> anyhow::Result<String> {
        let total = self.fixture_ids_total().await?;
        let target = (total as f64 * fraction) as u64;
        let mut c = RegistryServiceClient::new(self.registry[0].clone());
        let mut token = String::new();
        let mut seen = 0u64;
        while seen + 500 <= target {
            let page = c
                .list_institutions(self.officer.on(reg::ListInstitutionsRequest {
                    page_size: 500,
                    page_token: token.clone(),
                    ..Default::default()
                }))
                .await?
                .into_inner();
            seen += page.institutions.len() as u64;
            token = page.next_page_token;
            anyhow::ensure!(!token.is_empty(), "the listing ended at {seen}");
        }
        Ok(token)
    }

    async fn fixture_ids_total(&self) -> anyhow::Result<u64> {
        let db = Db::connect(&self.dbs[0].url, &DbOptions::default()).await?;
        #[derive(sea_orm::FromQueryResult)]
        struct N {
            n: i64,
        }
        use sea_orm::FromQueryResult;
        let n = N::find_by_statement(db.stmt("SELECT COUNT(*) AS n FROM institutions", []))
            .one(db.conn())
            .await?
            .map_or(0, |r| r.n);
        Ok(n as u64)
    }

    pub async fn list_institutions(&self, spec: Spec, page_token: String) -> Sample {
        let who = self.officer.clone();
        load::run(spec, &self.registry, move |ch, _| {
            let who = who.clone();
            let page_token = page_token.clone();
            async move {
                let r = RegistryServiceClient::new(ch)
                    .list_institutions(who.on(reg::ListInstitutionsRequest {
                        page_size: 50,
                        page_token,
                        ..Default::default()
                    }))
                    .await
                    .map_err(err)?;
                if r.get_ref().institutions.len() == 50 {
                    Ok(())
                } else {
                    Err(format!("a page of {}", r.get_ref().institutions.len()))
                }
            }
        })
        .await
    }

    pub async fn create_institution(&self, spec: Spec) -> Sample {
        let who = self.officer.clone();
        let next = self.national_ids.clone();
        load::run(spec, &self.registry, move |ch, _| {
            let who = who.clone();
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                RegistryServiceClient::new(ch)
                    .create_institution(who.on(reg::CreateInstitutionRequest {
                        request_id: format!("bench-create-{n}"),
                        institution: Some(institution(n, vec![ActivityArea::Family as i32])),
                    }))
                    .await
                    .map(drop)
                    .map_err(err)
            }
        })
        .await
    }

    /// `count` filings of the filer institution, each created, submitted and registered
    /// (a timeline of three entries), made ahead through the API (not measured): the
    /// referral service owns its tables and has no bulk seed path.
    pub async fn seed_filings(&self, count: u64, concurrency: usize) -> anyhow::Result<()> {
        let (agent, judge) = (self.agent.clone(), self.judge.clone());
        prepare(count, concurrency, &self.referral, move |ch, n| {
            let (agent, judge) = (agent.clone(), judge.clone());
            async move {
                let mut c = ReferralServiceClient::new(ch);
                let name = c
                    .create_filing(agent.on(complaint(n)))
                    .await
                    .map_err(err)?
                    .into_inner()
                    .filing
                    .map(|f| f.name)
                    .ok_or_else(|| "no filing".to_owned())?;
                c.submit_filing(agent.on(rf::SubmitFilingRequest {
                    name: name.clone(),
                    etag: String::new(),
                }))
                .await
                .map_err(err)?;
                c.register_filing(judge.on(rf::RegisterFilingRequest {
                    name: name.clone(),
                    etag: String::new(),
                    case_number: format!("bench-{n}"),
                }))
                .await
                .map_err(err)?;
                Ok(name)
            }
        })
        .await
        .map(drop)
    }

    /// `count` referrals to the filer institution, each offered, accepted and with two
    /// sessions recorded (a timeline of four entries), made ahead through the API.
    pub async fn seed_referrals(&self, count: u64, concurrency: usize) -> anyhow::Result<()> {
        let (centre, agent, filer) = (self.centre.clone(), self.agent.clone(), self.filer.clone());
        prepare(count, concurrency, &self.referral, move |ch, n| {
            let (centre, agent, filer) = (centre.clone(), agent.clone(), filer.clone());
            async move {
                let mut c = ReferralServiceClient::new(ch);
                let name = c
                    .create_referral(centre.on(dispute(n, filer)))
                    .await
                    .map_err(err)?
                    .into_inner()
                    .referral
                    .map(|r| r.name)
                    .ok_or_else(|| "no referral".to_owned())?;
                c.accept_referral(agent.on(rf::AcceptReferralRequest {
                    name: name.clone(),
                    etag: String::new(),
                }))
                .await
                .map_err(err)?;
                for session in 1..=2 {
                    c.record_progress(agent.on(rf::RecordProgressRequest {
                        name: name.clone(),
                        etag: String::new(),
                        entry: Some(rf::ProgressEntry {
                            session_time: Some(ts(Duration::ZERO)),
                            attendees: vec!["حسن".into(), "رضا".into()],
                            notes: format!("جلسهٔ گفت‌وگوی شماره {session}"),
                            ..Default::default()
                        }),
                    }))
                    .await
                    .map_err(err)?;
                }
                Ok(name)
            }
        })
        .await
        .map(drop)
    }

    /// A licence for each of the first `count` bulk institutions, applied for, approved,
    /// suspended and reinstated (a history of four entries), made ahead through the API.
    pub async fn seed_licences(&self, count: u64, concurrency: usize) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.fixture_ids.len() as u64 >= count,
            "{count} licences need as many bulk institutions, not {}",
            self.fixture_ids.len()
        );
        let ids = Arc::new(self.fixture_ids[..count as usize].to_vec());
        let officer = self.officer.clone();
        prepare(count, concurrency, &self.registry, move |ch, n| {
            let officer = officer.clone();
            let parent = format!("institutions/{}", ids[n as usize]);
            async move {
                let mut c = RegistryServiceClient::new(ch);
                let name = c
                    .create_licence(officer.on(reg::CreateLicenceRequest {
                        parent,
                        request_id: format!("bench-licence-{}", uuid::Uuid::now_v7()),
                        licence: Some(reg::Licence {
                            activity_areas: vec![ActivityArea::Family as i32],
                            permitted_actions: vec![reg::PermittedAction::AcceptReferrals as i32],
                            province: PROVINCE.into(),
                            valid_until: Some(ts(Duration::from_secs(3 * 365 * 86_400))),
                            ..Default::default()
                        }),
                    }))
                    .await
                    .map_err(err)?
                    .into_inner()
                    .licence
                    .map(|l| l.name)
                    .ok_or_else(|| "no licence".to_owned())?;
                c.approve_licence(officer.on(reg::ApproveLicenceRequest {
                    name: name.clone(),
                    ..Default::default()
                }))
                .await
                .map_err(err)?;
                c.suspend_licence(officer.on(reg::SuspendLicenceRequest {
                    name: name.clone(),
                    etag: String::new(),
                    reason: "بازرسی دوره‌ای".into(),
                }))
                .await
                .map_err(err)?;
                c.reinstate_licence(officer.on(reg::ReinstateLicenceRequest {
                    name: name.clone(),
                    etag: String::new(),
                    reason: "رفع نقص".into(),
                }))
                .await
                .map_err(err)?;
                Ok(name)
            }
        })
        .await
        .map(drop)
    }

    /// ListFilings pages of 50 by the filer institution (its own: no read is recorded);
    /// a page that is short, or a filing whose timeline is, fails the call.
    pub async fn list_filings(&self, spec: Spec) -> Sample {
        let who = self.agent.clone();
        load::run(spec, &self.referral, move |ch, _| {
            let who = who.clone();
            async move {
                let r = ReferralServiceClient::new(ch)
                    .list_filings(who.on(rf::ListFilingsRequest {
                        page_size: 50,
                        ..Default::default()
                    }))
                    .await
                    .map_err(err)?
                    .into_inner();
                full_page(r.filings.iter().map(|f| f.timeline.len()), FILING_TIMELINE)
            }
        })
        .await
    }

    /// ListReferrals pages of 50, by the assigned institution (no read recorded) or by
    /// the centre (each page's reads recorded, in one durable commit).
    pub async fn list_referrals(&self, spec: Spec, by_centre: bool) -> Sample {
        let who = if by_centre {
            self.centre.clone()
        } else {
            self.agent.clone()
        };
        load::run(spec, &self.referral, move |ch, _| {
            let who = who.clone();
            async move {
                let r = ReferralServiceClient::new(ch)
                    .list_referrals(who.on(rf::ListReferralsRequest {
                        page_size: 50,
                        ..Default::default()
                    }))
                    .await
                    .map_err(err)?
                    .into_inner();
                full_page(
                    r.referrals.iter().map(|f| f.timeline.len()),
                    REFERRAL_TIMELINE,
                )
            }
        })
        .await
    }

    /// The token of the ListLicences page just past the six fixture licences (whose
    /// histories are two entries long), so the measured pages hold seeded ones only.
    pub async fn licences_past_fixtures(&self) -> anyhow::Result<String> {
        let page = RegistryServiceClient::new(self.registry[0].clone())
            .list_licences(self.officer.on(reg::ListLicencesRequest {
                parent: "institutions/-".into(),
                page_size: FIXTURE_INSTITUTIONS as i32,
                ..Default::default()
            }))
            .await?
            .into_inner();
        anyhow::ensure!(
            !page.next_page_token.is_empty(),
            "no licence past the fixtures"
        );
        Ok(page.next_page_token)
    }

    /// ListLicences pages of 50 across every institution, each licence with its history.
    pub async fn list_licences(&self, spec: Spec, page_token: String) -> Sample {
        let who = self.officer.clone();
        load::run(spec, &self.registry, move |ch, _| {
            let who = who.clone();
            let page_token = page_token.clone();
            async move {
                let r = RegistryServiceClient::new(ch)
                    .list_licences(who.on(reg::ListLicencesRequest {
                        parent: "institutions/-".into(),
                        page_size: 50,
                        page_token,
                        ..Default::default()
                    }))
                    .await
                    .map_err(err)?
                    .into_inner();
                full_page(r.licences.iter().map(|l| l.history.len()), LICENCE_HISTORY)
            }
        })
        .await
    }

    /// `count` draft complaints with the victim's consent, made ahead (not measured).
    pub async fn draft_filings(
        &self,
        count: u64,
        concurrency: usize,
    ) -> anyhow::Result<Vec<String>> {
        let who = self.agent.clone();
        prepare(count, concurrency, &self.referral, move |ch, n| {
            let who = who.clone();
            async move {
                ReferralServiceClient::new(ch)
                    .create_filing(who.on(complaint(n)))
                    .await
                    .map_err(err)?
                    .into_inner()
                    .filing
                    .map(|f| f.name)
                    .ok_or_else(|| "no filing".into())
            }
        })
        .await
    }

    pub async fn submit_filings(&self, spec: Spec, drafts: Vec<String>) -> Sample {
        let who = self.agent.clone();
        each_once(spec, &self.referral, drafts, move |ch, name| {
            let who = who.clone();
            async move {
                ReferralServiceClient::new(ch)
                    .submit_filing(who.on(rf::SubmitFilingRequest {
                        name,
                        etag: String::new(),
                    }))
                    .await
                    .map(drop)
                    .map_err(err)
            }
        })
        .await
    }

    /// `count` disputes referred to the filer institution, made ahead (not measured).
    pub async fn offer_referrals(
        &self,
        count: u64,
        concurrency: usize,
    ) -> anyhow::Result<Vec<String>> {
        let who = self.centre.clone();
        let filer = self.filer.clone();
        prepare(count, concurrency, &self.referral, move |ch, n| {
            let who = who.clone();
            let filer = filer.clone();
            async move {
                ReferralServiceClient::new(ch)
                    .create_referral(who.on(dispute(n, filer)))
                    .await
                    .map_err(err)?
                    .into_inner()
                    .referral
                    .map(|r| r.name)
                    .ok_or_else(|| "no referral".into())
            }
        })
        .await
    }

    pub async fn accept_referrals(&self, spec: Spec, offered: Vec<String>) -> Sample {
        let who = self.agent.clone();
        each_once(spec, &self.referral, offered, move |ch, name| {
            let who = who.clone();
            async move {
                ReferralServiceClient::new(ch)
                    .accept_referral(who.on(rf::AcceptReferralRequest {
                        name,
                        etag: String::new(),
                    }))
                    .await
                    .map(drop)
                    .map_err(err)
            }
        })
        .await
    }

    /// `count` meetings of the group, scheduled for tomorrow.
    pub async fn schedule_meetings(&self, count: usize) -> anyhow::Result<Vec<String>> {
        let mut c = MeetingServiceClient::new(self.meeting[0].clone());
        let mut out = Vec::new();
        for i in 0..count {
            out.push(
                c.schedule_meeting(self.secretary.on(mt::ScheduleMeetingRequest {
                    parent: self.group.clone(),
                    request_id: format!("bench-meeting-{}", uuid::Uuid::now_v7()),
                    meeting: Some(mt::Meeting {
                        title: format!("جلسهٔ {i}"),
                        place: "دادگستری استان".into(),
                        scheduled_time: Some(ts(Duration::from_secs(86_400))),
                        ..Default::default()
                    }),
                }))
                .await?
                .into_inner()
                .meeting
                .ok_or_else(|| anyhow::anyhow!("no meeting"))?
                .name,
            );
        }
        Ok(out)
    }

    fn attendance(&self) -> Vec<mt::Attendance> {
        let mut a: Vec<mt::Attendance> = self.members[..9]
            .iter()
            .map(|m| mt::Attendance {
                member: m.clone(),
                status: mt::AttendanceStatus::Present as i32,
                ..Default::default()
            })
            .collect();
        a.push(mt::Attendance {
            member: self.secretary_member.clone(),
            status: mt::AttendanceStatus::Present as i32,
            ..Default::default()
        });
        a
    }

    pub async fn record_attendance(&self, spec: Spec, meetings: &[String]) -> Sample {
        let who = self.secretary.clone();
        let meetings = Arc::new(meetings.to_vec());
        let attendance = self.attendance();
        load::run(spec, &self.meeting, move |ch, n| {
            let who = who.clone();
            let name = meetings[n as usize % meetings.len()].clone();
            let attendance = attendance.clone();
            async move {
                MeetingServiceClient::new(ch)
                    .record_attendance(who.on(mt::RecordAttendanceRequest {
                        name,
                        attendance,
                        ..Default::default()
                    }))
                    .await
                    .map(drop)
                    .map_err(err)
            }
        })
        .await
    }

    /// Records attendance (quorum) and opens each meeting.
    pub async fn open_meetings(&self, meetings: &[String]) -> anyhow::Result<()> {
        let mut c = MeetingServiceClient::new(self.meeting[0].clone());
        for m in meetings {
            c.record_attendance(self.secretary.on(mt::RecordAttendanceRequest {
                name: m.clone(),
                attendance: self.attendance(),
                ..Default::default()
            }))
            .await?;
            c.start_meeting(self.secretary.on(mt::StartMeetingRequest {
                name: m.clone(),
                etag: String::new(),
            }))
            .await?;
        }
        Ok(())
    }

    pub async fn record_resolutions(&self, spec: Spec, meetings: &[String]) -> Sample {
        let who = self.secretary.clone();
        let meetings = Arc::new(meetings.to_vec());
        let voters: Vec<String> = self.members[..9].to_vec();
        let responsible = self.members[4].clone();
        load::run(spec, &self.meeting, move |ch, n| {
            let who = who.clone();
            let name = meetings[n as usize % meetings.len()].clone();
            let votes = voters
                .iter()
                .map(|m| mt::CastVote {
                    member: m.clone(),
                    vote: mt::Vote::For as i32,
                })
                .collect();
            let responsible = responsible.clone();
            async move {
                MeetingServiceClient::new(ch)
                    .record_resolution(who.on(mt::RecordResolutionRequest {
                        name,
                        request_id: format!("bench-resolution-{}", uuid::Uuid::now_v7()),
                        text: format!("مصوبهٔ شماره {n}"),
                        responsible_member: responsible,
                        deadline: Some(ts(Duration::from_secs(90 * 86_400))),
                        votes,
                        ..Default::default()
                    }))
                    .await
                    .map(drop)
                    .map_err(err)
            }
        })
        .await
    }

    /// Peak resident memory of each service so far.
    pub fn memory(&self) -> Vec<Memory> {
        self.procs.iter().map(Proc::memory).collect()
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        for p in self.procs {
            p.stop();
        }
        for db in &self.dbs {
            db.drop_database().await?;
        }
        Ok(())
    }
}

/// Starts service `i` of [`NAMES`] (its database named `db_name`) with `extra` settings.
#[allow(clippy::too_many_arguments)]
async fn start_one(
    i: usize,
    backend: Backend,
    pg_admin: &str,
    dir: &std::path::Path,
    keys: &(std::path::PathBuf, std::path::PathBuf),
    ports: &[u16; 3],
    db_name: &str,
    extra: &[(&str, String)],
) -> anyhow::Result<(Proc, FreshDb)> {
    let name = NAMES[i];
    let (private_key, public_key) = keys;
    let db = FreshDb::new(backend, dir, db_name, pg_admin).await?;
    let mut env = vec![
        ("LISTEN_ADDR", format!("127.0.0.1:{}", ports[i])),
        ("METRICS_ADDR", format!("127.0.0.1:{}", free_port()?)),
        ("DATABASE_URL", db.url.clone()),
        ("TOKEN_PUBLIC_KEYS", public_key.display().to_string()),
        ("SERVICE_SIGNING_KEY", private_key.display().to_string()),
        ("REGISTRY_URL", format!("http://127.0.0.1:{}", ports[0])),
        ("REFERRAL_URL", format!("http://127.0.0.1:{}", ports[1])),
        ("LOG_FORMAT", "json".into()),
        ("REFLECTION", "false".into()),
    ];
    env.extend(extra.iter().cloned());
    let log = dir.join(format!("{db_name}.log"));
    let p = Proc::start(
        name,
        &bin_dir()?.join(name),
        &[],
        &env,
        ports[i],
        GRPC[i],
        &log,
    )
    .await?;
    Ok((p, db))
}

/// Timeline entries of a seeded filing (created, submitted, registered), a seeded
/// referral's (offered, accepted, two sessions), and a seeded licence's history entries
/// (applied, approved, suspended, reinstated).
const FILING_TIMELINE: usize = 3;
const REFERRAL_TIMELINE: usize = 4;
const LICENCE_HISTORY: usize = 4;
/// Institutions (each with one licence) made over the API at start-up.
const FIXTURE_INSTITUTIONS: u64 = 6;

/// A measured list call succeeds only on a full page of 50 whose every item carries at
/// least `children` children: a listing that stopped loading them would not pass as fast.
fn full_page(children: impl ExactSizeIterator<Item = usize>, want: usize) -> Result<(), String> {
    let n = children.len();
    if n != 50 {
        return Err(format!("a page of {n}"));
    }
    match children.into_iter().min() {
        Some(c) if c < want => Err(format!("an item with {c} children, not {want}")),
        _ => Ok(()),
    }
}

/// Loads `call` once on each of `names` (resources made ahead): the run ends when they
/// run out, if the time does not end it first.
async fn each_once<F, Fut>(spec: Spec, clients: &[Channel], names: Vec<String>, call: F) -> Sample
where
    F: Fn(Channel, String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let names = Arc::new(names);
    let spec = Spec {
        max_requests: spec.max_requests.min(names.len() as u64),
        ..spec
    };
    load::run(spec, clients, move |ch, n| {
        call(ch, names[n as usize].clone())
    })
    .await
}

/// Makes `count` resources ahead of a measurement with the load generator, and returns
/// their names; any failure fails the benchmark.
async fn prepare<F, Fut>(
    count: u64,
    concurrency: usize,
    clients: &[Channel],
    make: F,
) -> anyhow::Result<Vec<String>>
where
    F: Fn(Channel, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<String, String>> + Send + 'static,
{
    let names = Arc::new(Mutex::new(Vec::new()));
    let out = names.clone();
    let make = Arc::new(make);
    let s = load::run(
        Spec {
            concurrency,
            duration: Duration::from_secs(600),
            max_requests: count,
        },
        clients,
        move |ch, n| {
            let out = out.clone();
            let made = make(ch, n);
            async move {
                let name = made.await?;
                out.lock().map_err(|e| e.to_string())?.push(name);
                Ok(())
            }
        },
    )
    .await;
    anyhow::ensure!(s.errors == 0, "preparing: {:?}", s.first_error);
    let v = names.lock().map_err(|e| anyhow::anyhow!("{e}"))?.clone();
    Ok(v)
}

/// A valid institution with a national ID made from `n` (lead digit 8: apart from the
/// bulk fixtures).
fn institution(n: u64, areas: Vec<i32>) -> reg::Institution {
    reg::Institution {
        display_name: format!("انجمن خیریهٔ شماره {n}"),
        kind: reg::InstitutionKind::Charity as i32,
        national_id: mosharekat_registry::seed::fixture_national_id(8, n),
        registration_number: n.to_string(),
        registering_authority: "اداره ثبت".into(),
        province: PROVINCE.into(),
        city: "اردبیل".into(),
        activity_areas: areas,
        ..Default::default()
    }
}

fn complaint(n: u64) -> rf::CreateFilingRequest {
    rf::CreateFilingRequest {
        request_id: format!("bench-filing-{}", uuid::Uuid::now_v7()),
        filing: Some(rf::Filing {
            kind: rf::FilingKind::Complaint as i32,
            activity_area: ActivityArea::Women as i32,
            authority: "دادسرای عمومی و انقلاب اردبیل".into(),
            province: PROVINCE.into(),
            subject: format!("شکایت شماره {n}"),
            parties: vec![
                Party {
                    full_name: "بزه‌دیده".into(),
                    role: PartyRole::Victim as i32,
                    ..Default::default()
                },
                Party {
                    full_name: "متهم".into(),
                    role: PartyRole::Accused as i32,
                    ..Default::default()
                },
            ],
            consents: vec![rf::Consent {
                party_index: 0,
                given_by: "بزه‌دیده".into(),
                basis: rf::ConsentBasis::Victim as i32,
                time: Some(ts(Duration::ZERO)),
                document: Some(DocumentRef {
                    title: "رضایت‌نامه".into(),
                    sha256: "ab".repeat(32),
                    size_bytes: 1024,
                    media_type: "application/pdf".into(),
                }),
            }],
            ..Default::default()
        }),
    }
}

fn dispute(n: u64, institution: String) -> rf::CreateReferralRequest {
    rf::CreateReferralRequest {
        request_id: format!("bench-referral-{}", uuid::Uuid::now_v7()),
        referral: Some(rf::Referral {
            source: rf::ReferralSource::DisputeResolutionCenter as i32,
            source_case_number: format!("{n}"),
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
            summary: "اختلاف خانوادگی".into(),
            institution,
            // Both parties agreed to reconciliation (art. 82).
            agreements: (0..2)
                .map(|i| rf::PartyAgreement {
                    party_index: i,
                    given_by: "طرف دعوا".into(),
                    time: Some(ts(Duration::ZERO)),
                    document: Some(DocumentRef {
                        title: "موافقت‌نامه".into(),
                        sha256: "ef".repeat(32),
                        size_bytes: 10,
                        media_type: "application/pdf".into(),
                    }),
                })
                .collect(),
            ..Default::default()
        }),
    }
}
