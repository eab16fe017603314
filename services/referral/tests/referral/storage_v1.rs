//! The storage written by release v1 (filings and referrals kept as encoded API messages)
//! still answers as it did, after every migration since: on SQLite and on PostgreSQL.
//!
//! `tests/fixtures/v1/` holds databases written by the v1 service through its API (every
//! filing and referral state, parties with national codes, consents, sealed parties,
//! progress, outcomes, an extension, timelines, idempotency records, read-log entries),
//! and `expected.json`: the calls made then (caller, request) and what they answered, as
//! the encoded API messages in hex (exact, and blind to fields added to the API since).
//!
//! The fixtures were made, with the v1 code, by
//! `MOSHAREKAT_WRITE_FIXTURES=1 cargo nextest run -p mosharekat-referral --test storage_v1 --run-ignored only`
//! (PostgreSQL at 127.0.0.1:5432, `pg_dump` and `psql` on the path). Never regenerate them
//! with later code: they are what an upgrade meets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mosharekat_api::common::v1::{ActivityArea, DocumentRef, Party, PartyRole};
use mosharekat_api::referral::v1 as pb;
use mosharekat_api::referral::v1::referral_service_client::ReferralServiceClient;
use mosharekat_api::registry::v1 as reg;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use mosharekat_platform::auth::Role;
use mosharekat_platform::clock::Clock;
use mosharekat_platform::testing::{Backend, TestDb, TestKeys};
use mosharekat_referral::testing::RunningReferral;
use mosharekat_registry::testing::RunningRegistry;
use prost::Message;
use serde::{Deserialize, Serialize};
use tonic::Request;
use tonic::transport::Channel;

use mosharekat_testkit::{
    ardabil_institution, ardabil_licence, from_now, lazy, legal_id, on_both_databases, register,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

/// One call as made when the fixtures were written, and its answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Call {
    method: String,
    role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    institution: Option<String>,
    request: String,
    response: String,
}

/// What one database's fixture answered.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Answers {
    /// The time of day the answers were read at: the replay's clock stands there.
    now_us: i64,
    calls: Vec<Call>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Expected {
    sqlite: Answers,
    postgres: Answers,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Calls `method` with the encoded `request` as `role` (of `institution`), answering the
/// encoded response, or `!` and the status code of a refusal.
async fn call(
    c: &ReferralServiceClient<Channel>,
    keys: &TestKeys,
    method: &str,
    role: Role,
    institution: Option<&str>,
    request: &[u8],
) -> String {
    let bearer = keys.bearer(role, institution);
    macro_rules! dispatch {
        ($($name:literal => $rpc:ident($req:ty)),* $(,)?) => {
            match method {
                $($name => {
                    let mut r = Request::new(<$req>::decode(request).unwrap());
                    r.metadata_mut().insert("authorization", bearer.parse().unwrap());
                    match c.clone().$rpc(r).await {
                        Ok(r) => hex(&r.into_inner().encode_to_vec()),
                        Err(s) => format!("!{:?}", s.code()),
                    }
                })*
                other => panic!("no such call in the fixtures: {other}"),
            }
        };
    }
    dispatch!(
        "GetFiling" => get_filing(pb::GetFilingRequest),
        "ListFilings" => list_filings(pb::ListFilingsRequest),
        "GetReferral" => get_referral(pb::GetReferralRequest),
        "ListReferrals" => list_referrals(pb::ListReferralsRequest),
        "GetStatistics" => get_statistics(pb::GetStatisticsRequest),
        "CreateFiling" => create_filing(pb::CreateFilingRequest),
        "CreateReferral" => create_referral(pb::CreateReferralRequest),
        "ListReadRecords" => list_read_records(pb::ListReadRecordsRequest),
    )
}

/// Decodes an answer as its message, to compare messages rather than bytes.
fn decoded(method: &str, answer: &str) -> String {
    if answer.starts_with('!') {
        return answer.to_owned();
    }
    let b = &unhex(answer)[..];
    fn d<M: Message + Default + std::fmt::Debug>(b: &[u8]) -> String {
        e(M::decode(b).unwrap())
    }
    fn e<M: Message>(m: M) -> String {
        // Re-encoded: equal messages encode alike (prost writes fields in order).
        hex(&m.encode_to_vec())
    }
    // Fields added since v1 (issue 16: the short reference, deadlines on the legal
    // calendar) are not v1's answer: left out of the comparison.
    fn filing(mut f: pb::Filing) -> pb::Filing {
        f.reference = 0;
        f
    }
    fn referral(mut r: pb::Referral) -> pb::Referral {
        r.reference = 0;
        r.due = None;
        r.answer = None;
        r
    }
    match method {
        "GetFiling" => {
            let mut m = pb::GetFilingResponse::decode(b).unwrap();
            m.filing = m.filing.map(filing);
            e(m)
        }
        "ListFilings" => {
            let mut m = pb::ListFilingsResponse::decode(b).unwrap();
            m.filings = m.filings.into_iter().map(filing).collect();
            e(m)
        }
        "GetReferral" => {
            let mut m = pb::GetReferralResponse::decode(b).unwrap();
            m.referral = m.referral.map(referral);
            e(m)
        }
        "ListReferrals" => {
            let mut m = pb::ListReferralsResponse::decode(b).unwrap();
            m.referrals = m.referrals.into_iter().map(referral).collect();
            e(m)
        }
        "GetStatistics" => d::<pb::GetStatisticsResponse>(b),
        "CreateFiling" => d::<pb::CreateFilingResponse>(b),
        "CreateReferral" => d::<pb::CreateReferralResponse>(b),
        "ListReadRecords" => d::<pb::ListReadRecordsResponse>(b),
        other => panic!("{other}"),
    }
}

/// Loads `b`'s fixture into a fresh database.
async fn load_fixture(b: Backend) -> TestDb {
    let db = TestDb::new(b).await.unwrap();
    match b {
        Backend::Sqlite => {
            let path = db.url.trim_start_matches("sqlite://");
            std::fs::copy(fixtures().join("referral.sqlite"), path).unwrap();
        }
        Backend::Postgres => {
            let out = std::process::Command::new("psql")
                .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", &db.url, "-f"])
                .arg(fixtures().join("referral.pg.sql"))
                .output()
                .expect("psql runs");
            assert!(
                out.status.success(),
                "loading the dump: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    db
}

/// The v1 database, migrated and served, answers every call as v1 did.
async fn v1_data_answers_as_before(b: Backend) {
    let expected: Expected =
        serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap();
    let answers = match b {
        Backend::Sqlite => expected.sqlite,
        Backend::Postgres => expected.postgres,
    };
    let db = load_fixture(b).await;
    let keys = TestKeys::new().unwrap();
    // No registry: reads and replays must not need it.
    let clock = Clock::manual(DateTime::<Utc>::from_timestamp_micros(answers.now_us).unwrap());
    let referral = RunningReferral::start_with_clock(
        RunningReferral::settings(
            &db.url,
            &keys.public_key,
            &keys.private_key,
            "http://127.0.0.1:9",
        ),
        clock,
    )
    .await
    .unwrap();
    let c = ReferralServiceClient::new(lazy(&referral.uri()));
    // The read log first: every call below adds to it.
    let mut calls = answers.calls.clone();
    calls.sort_by_key(|c| c.method != "ListReadRecords");
    assert!(calls.len() > 40, "the fixture holds {} calls", calls.len());
    for x in &calls {
        let role: Role = x.role.parse().unwrap();
        let got = call(
            &c,
            &keys,
            &x.method,
            role,
            x.institution.as_deref(),
            &unhex(&x.request),
        )
        .await;
        assert_eq!(
            decoded(&x.method, &got),
            decoded(&x.method, &x.response),
            "{b:?}: {} as {} {:?} answers as v1 did",
            x.method,
            x.role,
            x.institution
        );
    }
    referral.stop().await.unwrap();
}

/// A field a newer version stored in a filing is still there after this version changes
/// the filing (a rolling upgrade loses nothing).
async fn a_newer_versions_field_survives_a_change(b: Backend) {
    use sea_orm::ConnectionTrait;
    let db = TestDb::new(b).await.unwrap();
    let keys = TestKeys::new().unwrap();
    let service = RunningReferral::start(RunningReferral::settings(
        &db.url,
        &keys.public_key,
        &keys.private_key,
        "http://127.0.0.1:9",
    ))
    .await
    .unwrap();
    let mut c = ReferralServiceClient::new(lazy(&service.uri()));
    let bearer = keys.bearer(Role::Institution, Some("inst-1"));
    fn with<T>(bearer: &str, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.metadata_mut()
            .insert("authorization", bearer.parse().unwrap());
        r
    }
    let f = c
        .create_filing(with(
            &bearer,
            pb::CreateFilingRequest {
                request_id: String::new(),
                filing: Some(filing(pb::FilingKind::Complaint, "موضوع")),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    let id = f.name.trim_start_matches("filings/").to_owned();
    let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    let doc = |conn: &sea_orm::DatabaseConnection| {
        let id = id.clone();
        let conn = conn.clone();
        async move {
            let row = conn
                .query_one_raw(sea_orm::Statement::from_sql_and_values(
                    conn.get_database_backend(),
                    "SELECT doc FROM filings WHERE id = $1",
                    [id.into()],
                ))
                .await
                .unwrap()
                .unwrap();
            let doc: String = row.try_get("", "doc").unwrap();
            serde_json::from_str::<serde_json::Value>(&doc).unwrap()
        }
    };
    // What a newer version would have written: one more field, a later schema.
    let mut newer = doc(&conn).await;
    newer["schema"] = 3.into();
    newer["mediator"] = serde_json::json!({"name": "میانجی", "since": 5});
    conn.execute_raw(sea_orm::Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE filings SET doc = $1 WHERE id = $2",
        [newer.to_string().into(), id.clone().into()],
    ))
    .await
    .unwrap();
    let changed = c
        .update_filing(with(
            &bearer,
            pb::UpdateFilingRequest {
                filing: Some(pb::Filing {
                    name: f.name.clone(),
                    subject: "دیگر".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["subject".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(changed.subject, "دیگر");
    let after = doc(&conn).await;
    assert_eq!(after["subject"], "دیگر", "{b:?}");
    assert_eq!(
        after["mediator"],
        serde_json::json!({"name": "میانجی", "since": 5}),
        "{b:?}: the newer version's field is kept"
    );
    conn.close().await.unwrap();
    service.stop().await.unwrap();
}

on_both_databases!(
    v1_data_answers_as_before,
    a_newer_versions_field_survives_a_change
);

// ---------------------------------------------------------------------------------------
// The generator (run once, with the v1 code).

struct Gen {
    keys: TestKeys,
    reg: RegistryServiceClient<Channel>,
    c: ReferralServiceClient<Channel>,
    calls: Vec<Call>,
}

impl Gen {
    fn req<T>(&self, role: Role, inst: Option<&str>, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.metadata_mut().insert(
            "authorization",
            self.keys.bearer(role, inst).parse().unwrap(),
        );
        r
    }

    /// An institution licensed for `actions`: (name, id, licence).
    async fn institution(
        &self,
        n: u32,
        actions: &[reg::PermittedAction],
    ) -> (String, String, String) {
        let areas = vec![
            ActivityArea::Reconciliation as i32,
            ActivityArea::Women as i32,
            ActivityArea::Family as i32,
        ];
        let national_id = legal_id(15, 30_000 + n);
        let r = register(
            &self.reg,
            &self.keys.bearer(Role::RegistryOfficer, None),
            ardabil_institution(
                format!("کانون صلح و سازش {n}"),
                national_id,
                n.to_string(),
                areas.clone(),
            ),
            Some(ardabil_licence(areas, actions)),
        )
        .await;
        (r.name().to_owned(), r.id().to_owned(), r.licence_name())
    }

    /// Makes a call and keeps it, with its answer, for the replay.
    async fn keep<M: Message>(&mut self, method: &str, role: Role, inst: Option<&str>, req: M) {
        let request = req.encode_to_vec();
        let response = call(&self.c, &self.keys, method, role, inst, &request).await;
        self.calls.push(Call {
            method: method.into(),
            role: role.as_str().into(),
            institution: inst.map(str::to_owned),
            request: hex(&request),
            response,
        });
    }
}

fn filing(kind: pb::FilingKind, subject: &str) -> pb::Filing {
    pb::Filing {
        kind: kind as i32,
        activity_area: ActivityArea::Women as i32,
        authority: "دادسرای عمومی و انقلاب اردبیل".into(),
        province: "اردبیل".into(),
        subject: subject.into(),
        description: "شرح ماجرا".into(),
        parties: vec![
            Party {
                full_name: "مریم احمدی".into(),
                role: PartyRole::Victim as i32,
                national_code: "0076229645".into(),
                ..Default::default()
            },
            Party {
                full_name: "زهرا احمدی".into(),
                role: PartyRole::Victim as i32,
                minor: true,
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
        consents: vec![
            pb::Consent {
                party_index: 0,
                given_by: "مریم احمدی".into(),
                basis: pb::ConsentBasis::Victim as i32,
                time: Some(from_now(Duration::ZERO)),
                document: Some(DocumentRef {
                    title: "رضایت‌نامه".into(),
                    sha256: "cd".repeat(32),
                    size_bytes: 10,
                    media_type: "application/pdf".into(),
                }),
            },
            pb::Consent {
                party_index: 1,
                given_by: "علی احمدی".into(),
                basis: pb::ConsentBasis::Guardian as i32,
                time: Some(from_now(Duration::ZERO)),
                document: Some(DocumentRef {
                    title: "رضایت‌نامهٔ ولی".into(),
                    sha256: "ef".repeat(32),
                    size_bytes: 12,
                    media_type: "application/pdf".into(),
                }),
            },
        ],
        ..Default::default()
    }
}

fn referral(to: &str, source: pb::ReferralSource, kind: pb::ReferralKind) -> pb::Referral {
    pb::Referral {
        source: source as i32,
        source_case_number: "۱۴۰۵-۱۲۳".into(),
        kind: kind as i32,
        activity_area: ActivityArea::Family as i32,
        province: "اردبیل".into(),
        parties: {
            // The two disputants and a minor victim.
            let mut parties = super::disputants();
            parties.push(Party {
                full_name: "سارا کریمی".into(),
                role: PartyRole::Victim as i32,
                minor: true,
                national_code: "1234567891".into(),
                ..Default::default()
            });
            parties
        },
        summary: "اختلاف ملکی میان همسایگان".into(),
        institution: to.into(),
        ..Default::default()
    }
}

async fn generate(b: Backend) -> (TestDb, Answers) {
    let keys = TestKeys::new().unwrap();
    let reg_db = TestDb::new(b).await.unwrap();
    let ref_db = TestDb::new(b).await.unwrap();
    let registry = RunningRegistry::start(RunningRegistry::settings(&reg_db.url, &keys.public_key))
        .await
        .unwrap();
    let service = RunningReferral::start(RunningReferral::settings(
        &ref_db.url,
        &keys.public_key,
        &keys.private_key,
        &registry.uri(),
    ))
    .await
    .unwrap();
    let mut g = Gen {
        reg: RegistryServiceClient::new(lazy(&registry.uri())),
        c: ReferralServiceClient::new(lazy(&service.uri())),
        keys,
        calls: vec![],
    };
    use reg::PermittedAction as P;
    let (a_name, a, _) = g
        .institution(
            1,
            &[
                P::FileComplaint,
                P::ReportCrime,
                P::FileLawsuit,
                P::AcceptReferrals,
            ],
        )
        .await;
    let (b_name, bi, _) = g.institution(2, &[P::AcceptReferrals]).await;
    let (c_name, ci, c_licence) = g.institution(3, &[P::AcceptReferrals]).await;
    let mut c = g.c.clone();
    let cc = g.c.clone();
    let inst = |id: &str| Some(id.to_owned());

    // ---- filings, one in each state ----
    let mut filings: Vec<String> = vec![];
    let new_filing = async |g: &Gen, kind, subject: &str, request_id: &str| {
        cc.clone()
            .create_filing(g.req(
                Role::Institution,
                Some(&a),
                pb::CreateFilingRequest {
                    request_id: request_id.into(),
                    filing: Some(filing(kind, subject)),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .filing
            .unwrap()
    };
    let draft = new_filing(&g, pb::FilingKind::Complaint, "پیش‌نویس", "fx-filing-1").await;
    c.update_filing(g.req(
        Role::Institution,
        Some(&a),
        pb::UpdateFilingRequest {
            filing: Some(pb::Filing {
                name: draft.name.clone(),
                subject: "پیش‌نویس بازنگری‌شده".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["subject".into()],
            }),
        },
    ))
    .await
    .unwrap();
    filings.push(draft.name.clone());
    let lawsuit = new_filing(&g, pb::FilingKind::Lawsuit, "دادخواست", "").await;
    filings.push(lawsuit.name.clone());
    let submit = async |g: &Gen, name: &str| {
        cc.clone()
            .submit_filing(g.req(
                Role::Institution,
                Some(&a),
                pb::SubmitFilingRequest {
                    name: name.into(),
                    etag: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .filing
            .unwrap()
    };
    let submitted = new_filing(&g, pb::FilingKind::CrimeReport, "اعلام جرم", "").await;
    submit(&g, &submitted.name).await;
    filings.push(submitted.name.clone());
    let registered = new_filing(&g, pb::FilingKind::Complaint, "ثبت‌شده", "").await;
    submit(&g, &registered.name).await;
    c.register_filing(g.req(
        Role::JudicialOfficer,
        None,
        pb::RegisterFilingRequest {
            name: registered.name.clone(),
            etag: String::new(),
            case_number: "۱۴۰۵/۷۷".into(),
        },
    ))
    .await
    .unwrap();
    c.seal_filing_party(g.req(
        Role::JudicialOfficer,
        None,
        pb::SealFilingPartyRequest {
            name: registered.name.clone(),
            etag: String::new(),
            party_index: 1,
        },
    ))
    .await
    .unwrap();
    filings.push(registered.name.clone());
    let rejected = new_filing(&g, pb::FilingKind::Complaint, "ردشده", "").await;
    submit(&g, &rejected.name).await;
    c.reject_filing(g.req(
        Role::JudicialOfficer,
        None,
        pb::RejectFilingRequest {
            name: rejected.name.clone(),
            etag: String::new(),
            reason: "خارج از صلاحیت".into(),
        },
    ))
    .await
    .unwrap();
    filings.push(rejected.name.clone());
    let closed = new_filing(&g, pb::FilingKind::Complaint, "مختومه", "").await;
    submit(&g, &closed.name).await;
    c.register_filing(g.req(
        Role::JudicialOfficer,
        None,
        pb::RegisterFilingRequest {
            name: closed.name.clone(),
            etag: String::new(),
            case_number: "1405/78".into(),
        },
    ))
    .await
    .unwrap();
    c.close_filing(g.req(
        Role::JudicialOfficer,
        None,
        pb::CloseFilingRequest {
            name: closed.name.clone(),
            etag: String::new(),
            outcome: "صلح و سازش".into(),
        },
    ))
    .await
    .unwrap();
    filings.push(closed.name.clone());
    let withdrawn = new_filing(&g, pb::FilingKind::Complaint, "مسترد", "").await;
    c.withdraw_filing(g.req(
        Role::Institution,
        Some(&a),
        pb::WithdrawFilingRequest {
            name: withdrawn.name.clone(),
            etag: String::new(),
            reason: "انصراف شاکی".into(),
        },
    ))
    .await
    .unwrap();
    filings.push(withdrawn.name.clone());

    // ---- referrals, one in each state ----
    let mut referrals: Vec<(String, String)> = vec![];
    let offer = async |g: &Gen, to: &str, role: Role, src, kind, request_id: &str| {
        cc.clone()
            .create_referral(g.req(
                role,
                None,
                pb::CreateReferralRequest {
                    request_id: request_id.into(),
                    referral: Some(referral(to, src, kind)),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .referral
            .unwrap()
    };
    let dispute = pb::ReferralSource::DisputeResolutionCenter;
    let recon = pb::ReferralKind::Reconciliation;
    let accept = async |g: &Gen, name: &str, by: &str| {
        cc.clone()
            .accept_referral(g.req(
                Role::Institution,
                Some(by),
                pb::AcceptReferralRequest {
                    name: name.into(),
                    etag: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .referral
            .unwrap()
    };
    let progress = async |g: &Gen, name: &str, by: &str, n: u32| {
        cc.clone()
            .record_progress(g.req(
                Role::Institution,
                Some(by),
                pb::RecordProgressRequest {
                    name: name.into(),
                    etag: String::new(),
                    entry: Some(pb::ProgressEntry {
                        session_time: Some(from_now(Duration::ZERO)),
                        attendees: vec!["حسن محمدی".into(), "سارا کریمی".into(), "میانجی".into()],
                        notes: format!("جلسهٔ {n}"),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .unwrap()
    };
    let offered = offer(
        &g,
        &a_name,
        Role::CenterOfficer,
        dispute,
        recon,
        "fx-referral-1",
    )
    .await;
    referrals.push((offered.name.clone(), a.clone()));
    let accepted = offer(
        &g,
        &a_name,
        Role::CenterOfficer,
        dispute,
        pb::ReferralKind::VictimSupport,
        "",
    )
    .await;
    accept(&g, &accepted.name, &a).await;
    referrals.push((accepted.name.clone(), a.clone()));
    let in_progress = offer(&g, &a_name, Role::CenterOfficer, dispute, recon, "").await;
    let r = accept(&g, &in_progress.name, &a).await;
    progress(&g, &in_progress.name, &a, 1).await;
    progress(&g, &in_progress.name, &a, 2).await;
    c.extend_referral(g.req(
        Role::CenterOfficer,
        None,
        pb::ExtendReferralRequest {
            name: in_progress.name.clone(),
            etag: String::new(),
            due_time: Some(prost_types::Timestamp {
                seconds: r.due_time.unwrap().seconds + 30 * 86400,
                nanos: 0,
            }),
            reason: "درخواست طرفین".into(),
        },
    ))
    .await
    .unwrap();
    c.seal_referral_party(g.req(
        Role::CenterOfficer,
        None,
        pb::SealReferralPartyRequest {
            name: in_progress.name.clone(),
            etag: String::new(),
            party_index: 2,
        },
    ))
    .await
    .unwrap();
    referrals.push((in_progress.name.clone(), a.clone()));
    for (outcome, why, text) in [
        (
            pb::ReferralOutcome::Reconciled,
            pb::NotReconciledReason::Unspecified,
            "سازش کامل",
        ),
        (
            pb::ReferralOutcome::NotReconciled,
            pb::NotReconciledReason::PartyRefused,
            "",
        ),
        (
            pb::ReferralOutcome::PartiallyReconciled,
            pb::NotReconciledReason::Unspecified,
            "سازش در بخشی",
        ),
    ] {
        let resolved = offer(
            &g,
            &a_name,
            Role::CenterOfficer,
            dispute,
            pb::ReferralKind::Mediation,
            "",
        )
        .await;
        accept(&g, &resolved.name, &a).await;
        progress(&g, &resolved.name, &a, 1).await;
        c.resolve_referral(g.req(
            Role::Institution,
            Some(&a),
            pb::ResolveReferralRequest {
                name: resolved.name.clone(),
                etag: String::new(),
                outcome: outcome as i32,
                not_reconciled_reason: why as i32,
                settlement_text: text.into(),
            },
        ))
        .await
        .unwrap();
        referrals.push((resolved.name.clone(), a.clone()));
    }
    let declined = offer(&g, &a_name, Role::CenterOfficer, dispute, recon, "").await;
    c.decline_referral(g.req(
        Role::Institution,
        Some(&a),
        pb::DeclineReferralRequest {
            name: declined.name.clone(),
            etag: String::new(),
            reason: "ظرفیت تکمیل است".into(),
        },
    ))
    .await
    .unwrap();
    referrals.push((declined.name.clone(), a.clone()));
    let returned = offer(&g, &a_name, Role::CenterOfficer, dispute, recon, "").await;
    accept(&g, &returned.name, &a).await;
    c.return_referral(g.req(
        Role::Institution,
        Some(&a),
        pb::ReturnReferralRequest {
            name: returned.name.clone(),
            etag: String::new(),
            reason: "طرفین حاضر نشدند".into(),
        },
    ))
    .await
    .unwrap();
    referrals.push((returned.name.clone(), a.clone()));
    let withdrawn = offer(
        &g,
        &a_name,
        Role::JudicialOfficer,
        pb::ReferralSource::Prosecutor,
        pb::ReferralKind::LegalAid,
        "",
    )
    .await;
    c.withdraw_referral(g.req(
        Role::JudicialOfficer,
        None,
        pb::WithdrawReferralRequest {
            name: withdrawn.name.clone(),
            etag: String::new(),
            reason: "پرونده مختومه شد".into(),
        },
    ))
    .await
    .unwrap();
    referrals.push((withdrawn.name.clone(), a.clone()));
    let reassigned = offer(&g, &a_name, Role::CenterOfficer, dispute, recon, "").await;
    c.decline_referral(g.req(
        Role::Institution,
        Some(&a),
        pb::DeclineReferralRequest {
            name: reassigned.name.clone(),
            etag: String::new(),
            reason: "تعارض منافع".into(),
        },
    ))
    .await
    .unwrap();
    c.reassign_referral(g.req(
        Role::CenterOfficer,
        None,
        pb::ReassignReferralRequest {
            name: reassigned.name.clone(),
            etag: String::new(),
            institution: b_name.clone(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    referrals.push((reassigned.name.clone(), bi.clone()));
    let court = offer(
        &g,
        &b_name,
        Role::JudicialOfficer,
        pb::ReferralSource::Court,
        pb::ReferralKind::PsychologicalSupport,
        "",
    )
    .await;
    accept(&g, &court.name, &bi).await;
    referrals.push((court.name.clone(), bi.clone()));
    // Recalled: the institution's licence is revoked while they are open.
    let recalled = offer(&g, &c_name, Role::CenterOfficer, dispute, recon, "").await;
    let recalled2 = offer(&g, &c_name, Role::CenterOfficer, dispute, recon, "").await;
    accept(&g, &recalled2.name, &ci).await;
    g.reg
        .clone()
        .revoke_licence(g.req(
            Role::RegistryOfficer,
            None,
            reg::RevokeLicenceRequest {
                name: c_licence,
                etag: String::new(),
                reason: "تخلف".into(),
            },
        ))
        .await
        .unwrap();
    for r in [&recalled, &recalled2] {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let now = c
                .get_referral(g.req(
                    Role::Institution,
                    Some(&ci),
                    pb::GetReferralRequest {
                        name: r.name.clone(),
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .referral
                .unwrap();
            if now.state == pb::ReferralState::Recalled as i32 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never recalled");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        referrals.push((r.name.clone(), ci.clone()));
    }
    // Reads recorded: an administrator's and an auditor's.
    for role in [Role::Admin, Role::Auditor] {
        c.get_filing(g.req(
            role,
            None,
            pb::GetFilingRequest {
                name: registered.name.clone(),
            },
        ))
        .await
        .unwrap();
        c.get_referral(g.req(
            role,
            None,
            pb::GetReferralRequest {
                name: in_progress.name.clone(),
            },
        ))
        .await
        .unwrap();
    }

    // ---- the answers ----
    let now_us = Utc::now().timestamp_micros();
    for name in &filings {
        for (role, who) in [
            (Role::Admin, None),
            (Role::JudicialOfficer, None),
            (Role::Institution, inst(&a)),
        ] {
            g.keep(
                "GetFiling",
                role,
                who.as_deref(),
                pb::GetFilingRequest { name: name.clone() },
            )
            .await;
        }
    }
    for (name, owner) in &referrals {
        for (role, who) in [
            (Role::Admin, None),
            (Role::CenterOfficer, None),
            (Role::JudicialOfficer, None),
            (Role::Institution, Some(owner.clone())),
        ] {
            g.keep(
                "GetReferral",
                role,
                who.as_deref(),
                pb::GetReferralRequest { name: name.clone() },
            )
            .await;
        }
    }
    for (role, who) in [
        (Role::Admin, None),
        (Role::Auditor, None),
        (Role::JudicialOfficer, None),
        (Role::Institution, inst(&a)),
    ] {
        g.keep(
            "ListFilings",
            role,
            who.as_deref(),
            pb::ListFilingsRequest {
                page_size: 100,
                ..Default::default()
            },
        )
        .await;
    }
    g.keep(
        "ListFilings",
        Role::Admin,
        None,
        pb::ListFilingsRequest {
            state: pb::FilingState::Registered as i32,
            ..Default::default()
        },
    )
    .await;
    // A page and the next, by its token.
    let first = pb::ListFilingsRequest {
        page_size: 3,
        ..Default::default()
    };
    g.keep("ListFilings", Role::Admin, None, first.clone())
        .await;
    let token =
        pb::ListFilingsResponse::decode(unhex(&g.calls.last().unwrap().response).as_slice())
            .unwrap()
            .next_page_token;
    g.keep(
        "ListFilings",
        Role::Admin,
        None,
        pb::ListFilingsRequest {
            page_token: token,
            ..first
        },
    )
    .await;
    for (role, who) in [
        (Role::Admin, None),
        (Role::CenterOfficer, None),
        (Role::JudicialOfficer, None),
        (Role::Institution, inst(&a)),
        (Role::Institution, inst(&bi)),
        (Role::Institution, inst(&ci)),
    ] {
        g.keep(
            "ListReferrals",
            role,
            who.as_deref(),
            pb::ListReferralsRequest {
                page_size: 100,
                ..Default::default()
            },
        )
        .await;
    }
    for state in [
        pb::ReferralState::Resolved,
        pb::ReferralState::Recalled,
        pb::ReferralState::InProgress,
    ] {
        g.keep(
            "ListReferrals",
            Role::Admin,
            None,
            pb::ListReferralsRequest {
                state: state as i32,
                ..Default::default()
            },
        )
        .await;
    }
    g.keep(
        "ListReferrals",
        Role::Admin,
        None,
        pb::ListReferralsRequest {
            kind: pb::ReferralKind::Mediation as i32,
            source: dispute as i32,
            ..Default::default()
        },
    )
    .await;
    let day = 86_400;
    g.keep(
        "GetStatistics",
        Role::Admin,
        None,
        pb::GetStatisticsRequest {
            province: "اردبیل".into(),
            start_time: Some(prost_types::Timestamp {
                seconds: now_us / 1_000_000 - day,
                nanos: 0,
            }),
            end_time: Some(prost_types::Timestamp {
                seconds: now_us / 1_000_000 + day,
                nanos: 0,
            }),
        },
    )
    .await;
    // Retried creates answer from their idempotency records.
    g.keep(
        "CreateFiling",
        Role::Institution,
        Some(&a),
        pb::CreateFilingRequest {
            request_id: "fx-filing-1".into(),
            filing: Some(filing(pb::FilingKind::Complaint, "پیش‌نویس")),
        },
    )
    .await;
    g.keep(
        "CreateReferral",
        Role::CenterOfficer,
        None,
        pb::CreateReferralRequest {
            request_id: "fx-referral-1".into(),
            referral: Some(referral(&a_name, dispute, recon)),
        },
    )
    .await;
    // Last: the record of every read above.
    for (resource, reader) in [("", ""), (registered.name.as_str(), ""), ("", "test-admin")] {
        g.keep(
            "ListReadRecords",
            Role::Auditor,
            None,
            pb::ListReadRecordsRequest {
                resource: resource.into(),
                reader: reader.into(),
                page_size: 1000,
                page_token: String::new(),
            },
        )
        .await;
    }
    service.stop().await.unwrap();
    registry.stop().await.unwrap();
    (
        ref_db,
        Answers {
            now_us,
            calls: g.calls,
        },
    )
}

/// Writes `tests/fixtures/v1/` (see the top of this file). Only when asked to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the v1 fixtures; run only with the v1 code"]
async fn generate_v1_fixtures() {
    if std::env::var("MOSHAREKAT_WRITE_FIXTURES").is_err() {
        return;
    }
    let dir = fixtures();
    std::fs::create_dir_all(&dir).unwrap();
    let (sqlite_db, sqlite) = generate(Backend::Sqlite).await;
    let out = dir.join("referral.sqlite");
    let _ = std::fs::remove_file(&out);
    {
        use sea_orm::ConnectionTrait;
        let conn = sea_orm::Database::connect(sqlite_db.url.as_str())
            .await
            .unwrap();
        // One clean file (the WAL folded in).
        conn.execute_unprepared(&format!("VACUUM INTO '{}'", out.display()))
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let (pg_db, postgres) = generate(Backend::Postgres).await;
    let dump = std::process::Command::new("pg_dump")
        .args([
            "--no-owner",
            "--no-privileges",
            "--inserts",
            "-d",
            &pg_db.url,
            "-f",
        ])
        .arg(dir.join("referral.pg.sql"))
        .output()
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let expected = Expected { sqlite, postgres };
    let mut json = serde_json::to_string_pretty(&expected).unwrap();
    json.push('\n');
    std::fs::write(dir.join("expected.json"), json).unwrap();
}
