//! What the services' integration tests share, so that each test file says only what it
//! tests: requests with a role's bearer, what a refused call's status carries, timestamps,
//! the `on_both_databases!` macro, the sample institution, licence and parties the tests
//! of every service build on, an institution registered (and licensed) through the
//! registry's API, and the role × RPC matrix driven by the descriptors; with the `browser`
//! feature, printable documents checked in headless Chromium ([`browser`]).
//!
//! It holds no service crate (a service's own tests would then build that service twice);
//! starting a service is each service's `testing` module.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mosharekat_api::common::v1::{Party, PartyRole};
use mosharekat_api::meeting::v1 as mt;
use mosharekat_api::registry::v1 as reg;
use mosharekat_api::registry::v1::registry_service_client::RegistryServiceClient;
use mosharekat_platform::auth::Role;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;

pub use mosharekat_platform::testing::{Backend, TestDb, TestKeys};

#[cfg(feature = "browser")]
pub mod browser;

/// Runs each named `async fn(Backend)` of the calling module as two tests,
/// `sqlite::<name>` and `postgres::<name>`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}

// ---------- requests ----------

/// `msg` with `bearer` as its `authorization`.
pub fn authed<T>(bearer: String, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", bearer.parse().expect("an ASCII token"));
    r
}

/// The bearer a test uses for `role`: an institution's is for institution `institution`.
pub fn bearer_of(keys: &TestKeys, role: Role, institution: &str) -> String {
    keys.bearer(role, (role == Role::Institution).then_some(institution))
}

/// A channel to `uri` that connects on its first call.
pub fn lazy(uri: &str) -> Channel {
    Channel::from_shared(uri.to_owned())
        .expect("a service URI")
        .connect_lazy()
}

// ---------- what a status carries ----------

/// The code of a call's outcome, `OK` when it succeeded.
pub fn code<T>(r: Result<T, Status>) -> Code {
    r.err().map_or(Code::Ok, |s| s.code())
}

/// The fields the status's `BadRequest` names, in order.
pub fn fields(s: &Status) -> Vec<String> {
    s.get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Fails unless `r` was refused INVALID_ARGUMENT with `field` among the violations.
pub fn invalid_field<T: std::fmt::Debug>(r: Result<T, Status>, field: &str) {
    let err = r.expect_err(field);
    assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
    assert!(
        fields(&err).iter().any(|f| f == field),
        "{field} not in {:?}",
        fields(&err)
    );
}

/// The reason code of the status's `ErrorInfo`, empty when it has none.
pub fn reason(s: &Status) -> String {
    s.get_error_details()
        .error_info()
        .map(|e| e.reason.clone())
        .unwrap_or_default()
}

/// The locale and text of the status's `LocalizedMessage`, if it has one.
pub fn localized(s: &Status) -> Option<(String, String)> {
    s.get_error_details()
        .localized_message()
        .map(|l| (l.locale.clone(), l.message.clone()))
}

// ---------- time ----------

/// Seconds since the epoch, by the test's wall clock.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs() as i64
}

/// The timestamp `secs` seconds and `nanos` nanoseconds after the epoch.
pub fn ts(secs: i64, nanos: i32) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: secs,
        nanos,
    }
}

/// The whole second `d` from now.
pub fn from_now(d: Duration) -> prost_types::Timestamp {
    ts(now_secs() + d.as_secs() as i64, 0)
}

/// The whole second `secs` seconds from now (before now when negative).
pub fn secs_from_now(secs: i64) -> prost_types::Timestamp {
    ts(now_secs() + secs, 0)
}

// ---------- identifiers ----------

/// A valid 11-digit legal-entity national id: `prefix` (two digits) and `n`.
pub fn legal_id(prefix: u32, n: u32) -> String {
    let ten = format!("{prefix:02}{n:08}");
    let digit = mosharekat_persian::ids::legal_entity_check_digit(&ten).expect("ten digits");
    format!("{ten}{digit}")
}

/// A valid 10-digit personal national code from `n` (at most nine digits).
pub fn national_code(n: u32) -> String {
    let nine = format!("{n:09}");
    let digit = mosharekat_persian::ids::national_code_check_digit(&nine).expect("nine digits");
    format!("{nine}{digit}")
}

// ---------- sample resources ----------

/// The province (and city) the tests' institutions, licences and cases are in.
pub const PROVINCE: &str = "اردبیل";

/// An NGO of Ardabil registered at the registration office, with `activity_areas`; the
/// rest of its fields empty.
pub fn ardabil_institution(
    display_name: String,
    national_id: String,
    registration_number: String,
    activity_areas: Vec<i32>,
) -> reg::Institution {
    reg::Institution {
        display_name,
        kind: reg::InstitutionKind::Ngo as i32,
        national_id,
        registration_number,
        registering_authority: "اداره ثبت".into(),
        province: PROVINCE.into(),
        city: PROVINCE.into(),
        activity_areas,
        ..Default::default()
    }
}

/// A licence in Ardabil for `activity_areas` and `actions`, valid for a year from now.
pub fn ardabil_licence(activity_areas: Vec<i32>, actions: &[reg::PermittedAction]) -> reg::Licence {
    reg::Licence {
        activity_areas,
        permitted_actions: actions.iter().map(|a| *a as i32).collect(),
        province: PROVINCE.into(),
        valid_until: Some(secs_from_now(365 * 86400)),
        ..Default::default()
    }
}

/// The provincial working group of Ardabil (the seed's), as a create request carries it.
pub fn ardabil_working_group() -> mt::WorkingGroup {
    mt::WorkingGroup {
        province: PROVINCE.into(),
        title: "کارگروه استانی مشارکت و تعامل نهادهای مردمی با قوه قضائیه".into(),
        ..Default::default()
    }
}

/// The recorded agreement (art. 82) of each of the first `parties` parties of a mediation
/// or reconciliation, each with its document: what a referral of those kinds is offered with.
pub fn agreements_of(parties: i32) -> Vec<mosharekat_api::referral::v1::PartyAgreement> {
    (0..parties)
        .map(|i| mosharekat_api::referral::v1::PartyAgreement {
            party_index: i,
            given_by: "طرف دعوا".into(),
            time: Some(from_now(Duration::ZERO)),
            document: Some(mosharekat_api::common::v1::DocumentRef {
                title: "موافقت‌نامه".into(),
                sha256: "ef".repeat(32),
                size_bytes: 10,
                media_type: "application/pdf".into(),
            }),
        })
        .collect()
}

/// A complaint's parties: the victim `victim` (party 0) and an unnamed accused.
pub fn victim_and_accused(victim: &str) -> Vec<Party> {
    vec![
        Party {
            full_name: victim.into(),
            role: PartyRole::Victim as i32,
            ..Default::default()
        },
        Party {
            full_name: "متهم".into(),
            role: PartyRole::Accused as i32,
            ..Default::default()
        },
    ]
}

// ---------- the registry, through its API ----------

/// An institution registered through the registry's API.
#[derive(Debug, Clone)]
pub struct Registered {
    pub institution: reg::Institution,
    /// Its approved licence, when one was asked for.
    pub licence: Option<reg::Licence>,
}

impl Registered {
    /// `institutions/{id}`.
    pub fn name(&self) -> &str {
        &self.institution.name
    }
    /// The id an institution's token carries.
    pub fn id(&self) -> &str {
        self.institution.name.trim_start_matches("institutions/")
    }
    /// The licence's name, empty when it has none.
    pub fn licence_name(&self) -> String {
        self.licence
            .as_ref()
            .map(|l| l.name.clone())
            .unwrap_or_default()
    }
}

/// Registers `institution` as `bearer` (an admin or a registry officer) and, when
/// `licence` is given, applies for it and approves it: an institution with an active
/// licence. Panics on a refusal, which is the test's failure.
pub async fn register(
    registry: &RegistryServiceClient<Channel>,
    bearer: &str,
    institution: reg::Institution,
    licence: Option<reg::Licence>,
) -> Registered {
    let mut c = registry.clone();
    let institution = c
        .create_institution(authed(
            bearer.to_owned(),
            reg::CreateInstitutionRequest {
                request_id: String::new(),
                institution: Some(institution),
            },
        ))
        .await
        .expect("institution created")
        .into_inner()
        .institution
        .expect("the created institution");
    let Some(licence) = licence else {
        return Registered {
            institution,
            licence: None,
        };
    };
    let applied = c
        .create_licence(authed(
            bearer.to_owned(),
            reg::CreateLicenceRequest {
                parent: institution.name.clone(),
                request_id: String::new(),
                licence: Some(licence),
            },
        ))
        .await
        .expect("licence applied for")
        .into_inner()
        .licence
        .expect("the applied licence");
    let approved = c
        .approve_licence(authed(
            bearer.to_owned(),
            reg::ApproveLicenceRequest {
                name: applied.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("licence approved")
        .into_inner()
        .licence
        .expect("the approved licence");
    Registered {
        institution,
        licence: Some(approved),
    }
}

// ---------- the role × RPC matrix ----------

/// Who may call one RPC: its method name (as in the descriptor) and the roles allowed.
pub type Row<'a> = (&'a str, &'a [Role]);

/// Calls every RPC of every service in `services` (full names, e.g.
/// `mosharekat.referral.v1.ReferralService`, read from the suite's descriptors) as every
/// role, with an empty request, and checks each cell against `table`: an allowed role
/// gets past the role check (any code but PERMISSION_DENIED or UNAUTHENTICATED; the
/// empty request then fails validation or finds nothing), any other role is
/// PERMISSION_DENIED. Every handler checks the role before it reads the request, so an
/// empty one reaches exactly that check. The table must name exactly the services'
/// RPCs: one the descriptor gains without a row fails, as does a row for no RPC. An
/// institution's token is for `institution`. Returns the number of cells checked.
pub async fn every_rpc_against_every_role(
    channel: Channel,
    keys: &TestKeys,
    institution: &str,
    services: &[&str],
    table: &[Row<'_>],
) -> usize {
    use mosharekat_platform::testing::{RawCodec, methods_of};
    let methods: Vec<_> = services.iter().flat_map(|s| methods_of(s)).collect();
    let name = |path: &str| path.rsplit('/').next().unwrap_or_default().to_owned();
    let mut served: Vec<String> = methods.iter().map(|m| name(&m.path)).collect();
    served.sort();
    let mut rows: Vec<String> = table.iter().map(|(m, _)| (*m).to_owned()).collect();
    rows.sort();
    assert_eq!(
        rows, served,
        "the matrix has one row for each RPC of {services:?}"
    );
    let mut wrong = Vec::new();
    let mut checked = 0;
    for m in &methods {
        let rpc = name(&m.path);
        let allowed = table
            .iter()
            .find(|(r, _)| *r == rpc)
            .map(|(_, roles)| *roles)
            .unwrap_or_default();
        for role in Role::ALL {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.expect("the channel is ready");
            let req = authed(bearer_of(keys, role, institution), Vec::new());
            let path = http::uri::PathAndQuery::try_from(m.path.as_str()).expect("a method path");
            let got = if m.server_streaming {
                match grpc.server_streaming(req, path, RawCodec).await {
                    Ok(mut s) => code(s.get_mut().message().await),
                    Err(s) => s.code(),
                }
            } else {
                code(grpc.unary(req, path, RawCodec).await)
            };
            let ok = if allowed.contains(&role) {
                !matches!(got, Code::PermissionDenied | Code::Unauthenticated)
            } else {
                got == Code::PermissionDenied
            };
            if !ok {
                let want = if allowed.contains(&role) {
                    "allowed"
                } else {
                    "denied"
                };
                wrong.push(format!("{rpc} as {role}: {want}, but {got:?}"));
            }
            checked += 1;
        }
    }
    assert!(wrong.is_empty(), "cells wrong:\n{}", wrong.join("\n"));
    checked
}

// ---------- reflection ----------

/// The services a server lists by reflection (v1), sorted.
pub async fn listed_services(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1 as refl;
    let req = refl::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            refl::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let answer = refl::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::once(req))
        .await
        .expect("reflection answers")
        .into_inner()
        .message()
        .await
        .expect("a reflection answer")
        .expect("one message");
    let Some(refl::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("not a list of services: {answer:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

// ---------- the public record ----------

/// Calls every method (`/package.Service/Method`) of `public` with an empty request and
/// no token. With the public record `on`, each must get past the edge: any code but
/// UNAUTHENTICATED, PERMISSION_DENIED or UNIMPLEMENTED (the empty request then fails
/// validation or finds nothing). With it off, none may exist: UNAUTHENTICATED without a
/// token (the edge tells the anonymous nothing), UNIMPLEMENTED with an administrator's.
/// Returns the number of calls checked.
pub async fn public_methods_without_a_token(
    channel: Channel,
    keys: &TestKeys,
    public: &[String],
    on: bool,
) -> usize {
    use mosharekat_platform::testing::RawCodec;
    assert!(!public.is_empty(), "there are public methods to check");
    let mut wrong = Vec::new();
    let mut checked = 0;
    for path in public {
        let tokens: Vec<Option<String>> = if on {
            vec![None]
        } else {
            vec![None, Some(keys.bearer(Role::Admin, None))]
        };
        for token in tokens {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.expect("the channel is ready");
            let req = match &token {
                Some(t) => authed(t.clone(), Vec::new()),
                None => Request::new(Vec::new()),
            };
            let p = http::uri::PathAndQuery::try_from(path.as_str()).expect("a method path");
            let got = code(grpc.unary(req, p, RawCodec).await);
            let ok = match (on, token.is_some()) {
                (true, _) => !matches!(
                    got,
                    Code::Unauthenticated | Code::PermissionDenied | Code::Unimplemented
                ),
                (false, false) => got == Code::Unauthenticated,
                (false, true) => got == Code::Unimplemented,
            };
            if !ok {
                wrong.push(format!(
                    "{path} (record {}, {}): {got:?}",
                    if on { "on" } else { "off" },
                    if token.is_some() {
                        "admin token"
                    } else {
                        "no token"
                    }
                ));
            }
            checked += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "public methods wrong:\n{}",
        wrong.join("\n")
    );
    checked
}

/// An HTTP/1.1 response as a test reads it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path_and_query` from `addr` over HTTP/1.1, as a browser asks (no client crate:
/// the public port answers with a length, and the connection is closed after).
pub async fn http_get(addr: std::net::SocketAddr, path_and_query: &str) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the public port accepts");
    let req = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/csv\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .await
        .expect("the request is sent");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("the response is read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}
