//! Writes the fault tests make, each with its own `request_id` and the same bytes every
//! time it is sent (a retry must be the same request), and the accounting after a fault:
//! which acknowledged writes are there, which retries found their first result, how many
//! rows exist, whether the audit chain and the licence events are whole.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mosharekat_api::common::v1 as common_pb;
use mosharekat_api::common::v1::audit_service_client::AuditServiceClient;
use mosharekat_api::common::v1::{ActivityArea, DocumentRef};
use mosharekat_api::meeting::v1 as mt;
use mosharekat_api::meeting::v1::meeting_service_client::MeetingServiceClient;
use mosharekat_api::referral::v1 as rf;
use mosharekat_api::referral::v1::referral_service_client::ReferralServiceClient;
use mosharekat_api::registry::v1 as reg;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use mosharekat_platform::auth::Role;
use mosharekat_platform::testing::TestKeys;
use prost_types::Timestamp;
use tonic::transport::Channel;
use tonic::{Code, Status};

use super::authed;

pub const PROVINCE: &str = "اردبیل";
/// A fixed instant (2025-03-21), so that a request is byte-for-byte the same when retried.
const FIXED_PAST: i64 = 1_742_515_200;
/// 2035-01-01: licences made by the tests stay valid through any run.
const FIXED_FUTURE: i64 = 2_051_222_400;
/// The longest one call of the tests may take before it counts as hung.
pub const CALL_LIMIT: Duration = Duration::from_secs(30);

pub fn legal_entity_id(first_ten: &str) -> String {
    let d = mosharekat_persian::ids::legal_entity_check_digit(first_ten).unwrap();
    format!("{first_ten}{d}")
}

pub fn national_code(first_nine: &str) -> String {
    let d = mosharekat_persian::ids::national_code_check_digit(first_nine).unwrap();
    format!("{first_nine}{d}")
}

/// Institution `n` (distinct national IDs for distinct `n` below a million; the trailing
/// nines keep the serial digits from being all zero, which is never issued).
pub fn institution_request(request_id: String, n: usize) -> reg::CreateInstitutionRequest {
    let areas = vec![ActivityArea::Women as i32, ActivityArea::Family as i32];
    reg::CreateInstitutionRequest {
        request_id,
        institution: Some(families_ngo(
            n,
            legal_entity_id(&format!("17{n:06}99")),
            areas,
        )),
    }
}

/// NGO `n` of Ardabil helping families, with `national_id` and `activity_areas`.
pub fn families_ngo(n: usize, national_id: String, activity_areas: Vec<i32>) -> reg::Institution {
    reg::Institution {
        display_name: format!("انجمن همیاران خانواده {n}"),
        kind: reg::InstitutionKind::Ngo as i32,
        national_id,
        registration_number: n.to_string(),
        registering_authority: "اداره ثبت شرکت‌ها و مؤسسات غیرتجاری".into(),
        province: PROVINCE.into(),
        city: "اردبیل".into(),
        activity_areas,
        ..Default::default()
    }
}

/// A licence for filing complaints in the women's area (pending until approved).
pub fn licence_request(parent: &str, request_id: String) -> reg::CreateLicenceRequest {
    reg::CreateLicenceRequest {
        parent: parent.to_owned(),
        request_id,
        licence: Some(reg::Licence {
            activity_areas: vec![ActivityArea::Women as i32],
            permitted_actions: vec![
                reg::PermittedAction::FileComplaint as i32,
                reg::PermittedAction::AcceptReferrals as i32,
            ],
            province: PROVINCE.into(),
            valid_until: Some(Timestamp {
                seconds: FIXED_FUTURE,
                nanos: 0,
            }),
            ..Default::default()
        }),
    }
}

/// A complaint for `institution`, with the victim's recorded consent (so it may be submitted).
pub fn filing_request(institution: &str, request_id: String, n: usize) -> rf::CreateFilingRequest {
    let victim_code = national_code(&format!("{:09}", 400_000 + n));
    let consented = Timestamp {
        seconds: FIXED_PAST,
        nanos: 0,
    };
    rf::CreateFilingRequest {
        request_id,
        filing: Some(rf::Filing {
            institution: institution.to_owned(),
            ..victims_filing(
                rf::FilingKind::Complaint,
                format!("خشونت خانگی {n}"),
                victim_code,
                consented,
            )
        }),
    }
}

/// A `kind` filing in the women's area, to Ardabil's prosecutor's office, for the victim
/// Maryam Ahmadi (party 0, national code `victim_code`) against an unnamed accused, with
/// her consent recorded at `consented`.
pub fn victims_filing(
    kind: rf::FilingKind,
    subject: String,
    victim_code: String,
    consented: Timestamp,
) -> rf::Filing {
    rf::Filing {
        kind: kind as i32,
        activity_area: ActivityArea::Women as i32,
        authority: "دادسرای عمومی و انقلاب اردبیل".into(),
        province: PROVINCE.into(),
        subject,
        description: "به نمایندگی از بزه‌دیده".into(),
        parties: {
            let mut parties = mosharekat_testkit::victim_and_accused("مریم احمدی");
            parties[0].national_code = victim_code;
            parties
        },
        consents: vec![rf::Consent {
            party_index: 0,
            given_by: "مریم احمدی".into(),
            basis: rf::ConsentBasis::Victim as i32,
            time: Some(consented),
            document: Some(consent_document()),
        }],
        ..Default::default()
    }
}

/// The victim's signed consent, as a document reference.
pub fn consent_document() -> DocumentRef {
    DocumentRef {
        title: "رضایت‌نامه".into(),
        sha256: "ab".repeat(32),
        size_bytes: 2048,
        media_type: "application/pdf".into(),
    }
}

pub fn working_group_request(request_id: String, n: usize) -> mt::CreateWorkingGroupRequest {
    mt::CreateWorkingGroupRequest {
        request_id,
        working_group: Some(mt::WorkingGroup {
            province: PROVINCE.into(),
            title: format!("کارگروه مشارکت نهادهای مردمی {n}"),
            ..Default::default()
        }),
    }
}

/// Institution `n` created under `request_id`: its name.
async fn create_institution(
    c: &mut RegistryServiceClient<Channel>,
    bearer: &str,
    request_id: String,
    n: usize,
) -> String {
    let r = c
        .create_institution(authed(bearer, institution_request(request_id, n)))
        .await;
    r.unwrap().into_inner().institution.unwrap().name
}

/// A registry institution holding an ACTIVE licence to file complaints in the women's area.
pub async fn licensed_institution(channel: Channel, bearer: &str, n: usize) -> String {
    let mut c = RegistryServiceClient::new(channel);
    let inst = create_institution(&mut c, bearer, format!("fixture-inst-{n}"), n).await;
    let lic = c
        .create_licence(authed(
            bearer,
            licence_request(&inst, format!("fixture-lic-{n}")),
        ))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap()
        .name;
    c.approve_licence(authed(
        bearer,
        reg::ApproveLicenceRequest {
            name: lic,
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    inst
}

/// The short name of a gRPC code, for figures.
pub fn code_name(c: Code) -> String {
    format!("{c:?}")
}

/// The `ErrorInfo.reason` of an error, or "".
pub fn reason(s: &Status) -> String {
    use tonic_types::StatusExt;
    s.get_error_details()
        .error_info()
        .map(|e| e.reason.clone())
        .unwrap_or_default()
}

/// Whether an error message shows the storage's own words (SQL, driver errors).
pub fn leaks_sql(s: &Status) -> bool {
    let m = s.message().to_ascii_lowercase();
    [
        "insert ",
        "select ",
        "update ",
        "delete ",
        "sqlite",
        "sqlx",
        "postgres",
        "syntax",
        "database disk",
        "error returned from",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// Which service a [`Workload`] writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Institutions and licences (each licence writes a licence event).
    Registry,
    /// Filings.
    Referral,
    /// Working groups.
    Meeting,
}

/// Creates of one kind of resource, numbered: write `i` always sends the same request.
#[derive(Clone)]
pub struct Workload {
    pub target: Target,
    channel: Channel,
    bearer: String,
    /// Resources made before the writes (registry: institutions the licences are for).
    pub fixtures: Vec<String>,
    /// Audit records the fixtures wrote.
    fixture_audits: usize,
}

/// Fixture institutions the registry's licence writes are spread over.
const REGISTRY_PARENTS: usize = 4;

impl Workload {
    /// Prepares the fixtures the writes need; `channel` reaches the target service.
    pub async fn prepare(target: Target, channel: Channel, keys: &TestKeys) -> Self {
        let bearer = keys.bearer(Role::Admin, None);
        let mut w = Self {
            target,
            channel,
            bearer,
            fixtures: Vec::new(),
            fixture_audits: 0,
        };
        if target == Target::Registry {
            let mut c = RegistryServiceClient::new(w.channel.clone());
            for n in 0..REGISTRY_PARENTS {
                let name =
                    create_institution(&mut c, &w.bearer, format!("parent-{n}"), 900_000 + n).await;
                w.fixtures.push(name);
            }
            w.fixture_audits = REGISTRY_PARENTS;
        }
        w
    }

    /// The same writes, sent over `channel` (another connection to the same service).
    pub fn on(&self, channel: Channel) -> Self {
        Self {
            channel,
            ..self.clone()
        }
    }

    /// Is write `i` a licence (registry: every odd write)?
    fn is_licence(&self, i: usize) -> bool {
        self.target == Target::Registry && i % 2 == 1
    }

    /// How many of writes `0..n` write a licence event.
    pub fn licence_events_in(&self, n: usize) -> usize {
        (0..n).filter(|i| self.is_licence(*i)).count()
    }

    /// Sends write `i`; the name of the resource on OK.
    pub async fn write(&self, i: usize) -> Result<String, Status> {
        let b = &self.bearer;
        let ch = self.channel.clone();
        let call = async move {
            match self.target {
                Target::Registry if self.is_licence(i) => {
                    let parent = &self.fixtures[i % self.fixtures.len()];
                    RegistryServiceClient::new(ch)
                        .create_licence(authed(b, licence_request(parent, format!("w-lic-{i}"))))
                        .await
                        .map(|r| r.into_inner().licence.unwrap_or_default().name)
                }
                Target::Registry => RegistryServiceClient::new(ch)
                    .create_institution(authed(b, institution_request(format!("w-inst-{i}"), i)))
                    .await
                    .map(|r| r.into_inner().institution.unwrap_or_default().name),
                Target::Referral => ReferralServiceClient::new(ch)
                    .create_filing(authed(
                        b,
                        filing_request("institutions/faults", format!("w-filing-{i}"), i),
                    ))
                    .await
                    .map(|r| r.into_inner().filing.unwrap_or_default().name),
                Target::Meeting => MeetingServiceClient::new(ch)
                    .create_working_group(authed(
                        b,
                        working_group_request(format!("w-group-{i}"), i),
                    ))
                    .await
                    .map(|r| r.into_inner().working_group.unwrap_or_default().name),
            }
        };
        match tokio::time::timeout(CALL_LIMIT, call).await {
            Ok(r) => r,
            Err(_) => Err(Status::deadline_exceeded(
                "the test's own limit for one call",
            )),
        }
    }

    /// Whether `name` reads back (NOT_FOUND is `false`; any other error is returned).
    pub async fn exists(&self, name: &str) -> Result<bool, Status> {
        let b = &self.bearer;
        let ch = self.channel.clone();
        let name = name.to_owned();
        // One read of `name` by the client and RPC that serve its kind.
        macro_rules! get {
            ($client:ident, $rpc:ident, $req:expr) => {
                $client::new(ch).$rpc(authed(b, $req)).await.map(|_| ())
            };
        }
        let r = match self.target {
            Target::Registry if name.contains("/licences/") => {
                get!(
                    RegistryServiceClient,
                    get_licence,
                    reg::GetLicenceRequest { name }
                )
            }
            Target::Registry => get!(
                RegistryServiceClient,
                get_institution,
                reg::GetInstitutionRequest { name }
            ),
            Target::Referral => get!(
                ReferralServiceClient,
                get_filing,
                rf::GetFilingRequest { name }
            ),
            Target::Meeting => get!(
                MeetingServiceClient,
                get_working_group,
                mt::GetWorkingGroupRequest { name }
            ),
        };
        match r {
            Ok(()) => Ok(true),
            Err(s) if s.code() == Code::NotFound => Ok(false),
            Err(s) => Err(s),
        }
    }

    /// Every resource of the written kinds, fixtures included, as listed (duplicates kept).
    pub async fn list_all(&self) -> Result<Vec<String>, Status> {
        let b = &self.bearer;
        let mut out = Vec::new();
        let mut token = String::new();
        // Each listing is paged by its own token; the registry lists two kinds.
        let kinds: &[&str] = match self.target {
            Target::Registry => &["institutions", "licences"],
            Target::Referral => &["filings"],
            Target::Meeting => &["groups"],
        };
        for kind in kinds {
            loop {
                let ch = self.channel.clone();
                // One page of one listing: the names on it and the next page's token.
                macro_rules! page {
                    ($client:ident, $rpc:ident, $m:ident::$req:ident { $($f:ident: $v:expr),* }, $items:ident) => {{
                        let req = $m::$req {
                            $($f: $v,)*
                            page_size: 500,
                            page_token: token.clone(),
                            ..Default::default()
                        };
                        let r = $client::new(ch).$rpc(authed(b, req)).await?.into_inner();
                        let names: Vec<String> = r.$items.into_iter().map(|x| x.name).collect();
                        (names, r.next_page_token)
                    }};
                }
                let all = "institutions/-".to_owned();
                let (names, next) = match *kind {
                    "institutions" => {
                        page!(
                            RegistryServiceClient,
                            list_institutions,
                            reg::ListInstitutionsRequest {},
                            institutions
                        )
                    }
                    "licences" => {
                        page!(
                            RegistryServiceClient,
                            list_licences,
                            reg::ListLicencesRequest { parent: all },
                            licences
                        )
                    }
                    "filings" => page!(
                        ReferralServiceClient,
                        list_filings,
                        rf::ListFilingsRequest {},
                        filings
                    ),
                    _ => {
                        page!(
                            MeetingServiceClient,
                            list_working_groups,
                            mt::ListWorkingGroupsRequest {},
                            working_groups
                        )
                    }
                };
                out.extend(names);
                token = next;
                if token.is_empty() {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub async fn verify_audit_chain(&self) -> Result<common_pb::VerifyAuditChainResponse, Status> {
        AuditServiceClient::new(self.channel.clone())
            .verify_audit_chain(authed(&self.bearer, common_pb::VerifyAuditChainRequest {}))
            .await
            .map(|r| r.into_inner())
    }

    /// The audit records `n` distinct writes (and the fixtures) should have left.
    pub fn audits_expected(&self, writes: usize) -> usize {
        self.fixture_audits + writes
    }

    /// The registry's licence event sequences from the start, read until `expect` arrive
    /// or the stream is quiet for a second.
    pub async fn licence_event_sequences(&self, expect: usize) -> Result<Vec<i64>, Status> {
        let mut stream = RegistryServiceClient::new(self.channel.clone())
            .watch_licence_events(authed(
                &self.bearer,
                reg::WatchLicenceEventsRequest { after_sequence: 0 },
            ))
            .await?
            .into_inner();
        let mut seqs = Vec::new();
        while seqs.len() < expect {
            match tokio::time::timeout(Duration::from_secs(1), stream.message()).await {
                Ok(Ok(Some(m))) => seqs.push(m.event.map_or(0, |e| e.sequence)),
                Ok(Ok(None)) | Err(_) => break,
                Ok(Err(s)) => return Err(s),
            }
        }
        // Anything past `expect` is a duplicate event: a short wait shows it.
        if let Ok(Ok(Some(m))) =
            tokio::time::timeout(Duration::from_millis(200), stream.message()).await
        {
            seqs.push(m.event.map_or(0, |e| e.sequence));
        }
        Ok(seqs)
    }
}

/// What happened to each numbered write.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Write → the name its OK answer gave.
    pub acked: BTreeMap<usize, String>,
    /// Writes whose (last) answer was not OK.
    pub unacked: BTreeSet<usize>,
    /// Error answers by code, and by code and reason.
    pub errors: BTreeMap<String, usize>,
    /// Error answers that were INTERNAL or UNKNOWN, or leaked SQL: their messages.
    pub bad_errors: Vec<String>,
}

impl Ledger {
    pub fn record(&mut self, i: usize, r: &Result<String, Status>) {
        match r {
            Ok(name) => {
                self.acked.insert(i, name.clone());
                self.unacked.remove(&i);
            }
            Err(s) => {
                self.unacked.insert(i);
                let key = match reason(s) {
                    r if r.is_empty() => code_name(s.code()),
                    r => format!("{}/{r}", code_name(s.code())),
                };
                *self.errors.entry(key).or_default() += 1;
                if matches!(s.code(), Code::Internal | Code::Unknown) || leaks_sql(s) {
                    self.bad_errors
                        .push(format!("{:?}: {}", s.code(), s.message()));
                }
            }
        }
    }

    /// `code=count,…` for a figure line (`-` when there were none).
    pub fn errors_figure(&self) -> String {
        if self.errors.is_empty() {
            return "-".into();
        }
        self.errors
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn error_total(&self) -> usize {
        self.errors.values().sum()
    }
}

/// How a writer treats a failed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Stop writing (the service is gone; the write is retried after the restart).
    Stop,
    /// Send the same write again after `pause`, until it is acknowledged or `until` passes.
    Retry { pause: Duration },
}

/// `writers` concurrent writers take writes `next..total` in turn, recording each answer.
/// Returns when every writer has stopped: all writes taken, `until` passed, or (with
/// [`OnError::Stop`]) each writer's first failure.
pub async fn run_writers(
    w: &Workload,
    ledger: &Arc<Mutex<Ledger>>,
    next: &Arc<AtomicUsize>,
    total: usize,
    writers: usize,
    on_error: OnError,
    until: Instant,
) {
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (w, ledger, next) = (w.clone(), ledger.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    // Leave the counter where the work ended, for the next round.
                    next.fetch_min(total, Ordering::SeqCst);
                    return;
                }
                loop {
                    let r = w.write(i).await;
                    let failed = r.is_err();
                    ledger.lock().unwrap().record(i, &r);
                    match (failed, on_error) {
                        (false, _) => break,
                        (true, OnError::Stop) => return,
                        (true, OnError::Retry { pause }) => {
                            if Instant::now() >= until {
                                return;
                            }
                            tokio::time::sleep(pause).await;
                        }
                    }
                }
                if Instant::now() >= until {
                    return;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Retries every unacknowledged write once with its own request_id, recording the answers;
/// the errors, by write, for the figures.
pub async fn retry_unacked(w: &Workload, ledger: &Arc<Mutex<Ledger>>) -> BTreeMap<usize, Status> {
    let pending: Vec<usize> = ledger.lock().unwrap().unacked.iter().copied().collect();
    let mut failed = BTreeMap::new();
    for i in pending {
        let r = w.write(i).await;
        ledger.lock().unwrap().record(i, &r);
        if let Err(s) = r {
            failed.insert(i, s);
        }
    }
    failed
}

/// The accounting after a fault, once every write has been retried.
#[derive(Debug, Default)]
pub struct Accounting {
    /// Acknowledged writes that do not read back.
    pub lost: Vec<String>,
    /// Writes that never got an OK, even retried.
    pub never_acked: Vec<usize>,
    /// Rows beyond one per write (and fixture): listed twice, or named by no answer.
    pub duplicated: usize,
    /// Listed names that no answer gave and no fixture has.
    pub strangers: usize,
    /// Writes acknowledged again on a resend with another name than the first time.
    pub renamed: usize,
    pub rows: usize,
    pub audit_intact: bool,
    pub audit_records: i64,
    pub audit_expected: usize,
    pub audit_problem: String,
    /// Licence events: how many were read, how many expected, and whether 1..=n in order.
    pub events: usize,
    pub events_expected: usize,
    pub events_gap_free: bool,
}

impl Accounting {
    /// Reads back every acknowledged write of `ledger` (writes `0..total`), lists every row,
    /// verifies the audit chain, and for the registry reads the licence events.
    /// `first_names` holds, for writes acknowledged before the fault, the name given then.
    pub async fn take(
        w: &Workload,
        ledger: &Arc<Mutex<Ledger>>,
        first_names: &BTreeMap<usize, String>,
        total: usize,
    ) -> Self {
        let acked = ledger.lock().unwrap().acked.clone();
        let mut a = Accounting {
            never_acked: (0..total).filter(|i| !acked.contains_key(i)).collect(),
            ..Default::default()
        };
        for name in &w.fixtures {
            if !w.exists(name).await.unwrap_or(false) {
                a.lost.push(format!("{name} (a fixture)"));
            }
        }
        for (i, name) in first_names {
            match w.exists(name).await {
                Ok(true) => {}
                Ok(false) => a.lost.push(name.clone()),
                Err(s) => a
                    .lost
                    .push(format!("{name} ({:?}: {})", s.code(), s.message())),
            }
            if acked.get(i).is_some_and(|n| n != name) {
                a.renamed += 1;
            }
        }
        let listed = w.list_all().await.unwrap_or_else(|s| {
            panic!("listing after the fault: {s:?}");
        });
        a.rows = listed.len();
        let known: BTreeSet<&String> = acked.values().chain(w.fixtures.iter()).collect();
        let distinct: BTreeSet<&String> = listed.iter().collect();
        // A retry that made a second row leaves a row whose name no answer gave.
        a.strangers = distinct.iter().filter(|n| !known.contains(*n)).count();
        a.duplicated = listed.len() - distinct.len() + a.strangers;
        match w.verify_audit_chain().await {
            Ok(v) => {
                a.audit_intact = v.intact;
                a.audit_records = v.records_checked;
                a.audit_problem = v.problem;
            }
            Err(s) => a.audit_problem = format!("{:?}: {}", s.code(), s.message()),
        }
        a.audit_expected = w.audits_expected(total);
        if w.target == Target::Registry {
            a.events_expected = w.licence_events_in(total);
            let seqs = w
                .licence_event_sequences(a.events_expected)
                .await
                .unwrap_or_default();
            a.events = seqs.len();
            a.events_gap_free = seqs.iter().enumerate().all(|(k, s)| *s == k as i64 + 1);
        } else {
            a.events_gap_free = true;
        }
        a
    }

    /// `key=value …` for a figure line.
    pub fn figure(&self) -> String {
        format!(
            "lost={} duplicated={} never_acked={} rows={} audit_records={} audit_intact={} events={} events_gap_free={}",
            self.lost.len(),
            self.duplicated,
            self.never_acked.len(),
            self.rows,
            self.audit_records,
            self.audit_intact,
            self.events,
            self.events_gap_free,
        )
    }

    /// Every promise of the accounting this run broke, in words.
    pub fn broken(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.lost.is_empty() {
            out.push(format!(
                "{} acknowledged writes are lost: {:?}",
                self.lost.len(),
                &self.lost[..self.lost.len().min(5)]
            ));
        }
        if !self.never_acked.is_empty() {
            out.push(format!(
                "{} writes were never acknowledged, even retried with their request_id: {:?}",
                self.never_acked.len(),
                &self.never_acked[..self.never_acked.len().min(5)]
            ));
        }
        if self.duplicated > 0 {
            out.push(format!(
                "{} duplicated rows ({} named by no answer)",
                self.duplicated, self.strangers
            ));
        }
        if self.renamed > 0 {
            out.push(format!(
                "{} writes answered with another resource when resent",
                self.renamed
            ));
        }
        if !self.audit_intact || self.audit_records != self.audit_expected as i64 {
            out.push(format!(
                "audit chain: intact={} with {} records, {} expected ({})",
                self.audit_intact, self.audit_records, self.audit_expected, self.audit_problem
            ));
        }
        if self.events != self.events_expected || !self.events_gap_free {
            out.push(format!(
                "licence events: {} read, {} expected, gap-free={}",
                self.events, self.events_expected, self.events_gap_free
            ));
        }
        out
    }
}

/// The median and the largest of `xs`, in milliseconds.
pub fn median_max_ms(xs: &[Duration]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let mut v: Vec<Duration> = xs.to_vec();
    v.sort();
    (ms(v[v.len() / 2]), ms(v[v.len() - 1]))
}

/// The `q` quantile (0..=1) of `xs`, in milliseconds.
pub fn quantile_ms(xs: &[Duration], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v: Vec<Duration> = xs.to_vec();
    v.sort();
    let k = ((v.len() as f64 - 1.0) * q).round() as usize;
    ms(v[k.min(v.len() - 1)])
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}
