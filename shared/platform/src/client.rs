//! Calling peer services: channels with connect timeouts and keepalive, the service's own
//! token and the W3C trace context on every call, deadlines that never exceed what the
//! incoming call has left, and bounded, jittered retries.
//!
//! - A call the peer never processed (its stream refused on a closing connection, the
//!   connection not made) is retried for every method; an idempotent one is also retried
//!   on any failure of the transport and on `UNAVAILABLE`.
//! - Connections are replaced before the peers' servers close them for their age, so a
//!   call rarely meets a closing one.
//! - A circuit breaker per peer: once the peer is known down (it refused connections, or
//!   timed out twice running), calls fail at once with `UNAVAILABLE` while a probe asks the
//!   peer's health every [`PROBE_EVERY`]; when it serves again, calls go through.

use std::error::Error as _;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tonic::Request;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};

use crate::auth::{ON_BEHALF_OF_HEADER, Role, TokenRequest, TokenSigner};
use crate::ctx::CallContext;
use crate::error::ApiError;
use crate::tls::ClientTls;

/// Kept back from the caller's remaining budget, so an answer can still travel back.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(50);

/// A lazily connected channel to a peer at `uri` (`http://host:port`).
pub fn channel(uri: &str) -> anyhow::Result<Channel> {
    channel_with(uri, None)
}

/// A lazily connected channel to a peer at `uri`: `http://host:port` in plaintext, or
/// `https://host:port` over `tls` (which re-reads a rotated client certificate).
pub fn channel_with(uri: &str, tls: Option<&ClientTls>) -> anyhow::Result<Channel> {
    Ok(PeerTarget::new(uri, tls)?.connect_lazy())
}

/// How a peer is reached: its endpoint and, over TLS, the connector. Makes as many
/// channels (connections) to it as the peer link needs.
#[derive(Clone)]
pub struct PeerTarget {
    endpoint: Endpoint,
    tls: Option<crate::tls::TlsConnector>,
}

impl std::fmt::Debug for PeerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTarget")
            .field("uri", self.endpoint.uri())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl PeerTarget {
    /// The peer at `uri`: `http://host:port` in plaintext, or `https://host:port` over
    /// `tls`.
    pub fn new(uri: &str, tls: Option<&ClientTls>) -> anyhow::Result<Self> {
        let endpoint = |uri: String| -> anyhow::Result<Endpoint> {
            Ok(Endpoint::from_shared(uri)?
                .connect_timeout(Duration::from_secs(1))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_timeout(Duration::from_secs(10))
                .keep_alive_while_idle(true))
        };
        match tls {
            None => {
                anyhow::ensure!(
                    !uri.starts_with("https://"),
                    "{uri} is https://, but no TLS is configured for it (--tls-ca)"
                );
                Ok(Self {
                    endpoint: endpoint(uri.to_owned())?,
                    tls: None,
                })
            }
            Some(tls) => {
                let (connector, plain) = tls.connector(uri)?;
                Ok(Self {
                    endpoint: endpoint(plain)?,
                    tls: Some(connector),
                })
            }
        }
    }

    /// A new, lazily connected channel (its own connection).
    pub fn connect_lazy(&self) -> Channel {
        match &self.tls {
            None => self.endpoint.connect_lazy(),
            Some(c) => self.endpoint.connect_with_connector_lazy(c.clone()),
        }
    }
}

/// A connection to a peer is replaced after this long: well before the suite's servers
/// close one for its age (`--max-connection-age`, 5 min by default).
pub const PEER_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// How often a peer whose circuit is open is asked for its health.
pub const PROBE_EVERY: Duration = Duration::from_millis(200);

/// Timeouts in a row after which a peer counts as down (a hung peer).
const TIMEOUTS_TO_OPEN: u32 = 2;

/// What one attempt of a call says about the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// It answered (with any status of its own).
    Answered,
    /// It could not be reached, or the transport failed.
    Down,
    /// It did not answer in time.
    Slow,
}

#[derive(Debug)]
enum Circuit {
    Closed { timeouts: u32 },
    Open { since: Instant },
}

/// A peer as this service reaches it: its channel, replaced before it ages, and the
/// circuit breaker that makes calls fail fast while it is down.
#[derive(Clone, Debug)]
pub struct PeerLink {
    inner: Arc<LinkInner>,
}

#[derive(Debug)]
struct LinkInner {
    /// How the peer is named in errors ("the registry").
    name: &'static str,
    /// The service name its health reports (`mosharekat.registry.v1.RegistryService`).
    health_service: &'static str,
    target: PeerTarget,
    channel: Mutex<(Channel, Instant)>,
    circuit: Mutex<Circuit>,
}

impl PeerLink {
    pub fn new(name: &'static str, health_service: &'static str, target: PeerTarget) -> Self {
        let channel = target.connect_lazy();
        Self {
            inner: Arc::new(LinkInner {
                name,
                health_service,
                target,
                channel: Mutex::new((channel, Instant::now())),
                circuit: Mutex::new(Circuit::Closed { timeouts: 0 }),
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// The channel to use now: a new one once the current has lived its lifetime (calls
    /// in flight on the old one finish on it).
    pub fn channel(&self) -> Channel {
        let mut c = self.inner.channel.lock().unwrap_or_else(|e| e.into_inner());
        if c.1.elapsed() >= PEER_CONNECTION_LIFETIME {
            *c = (self.inner.target.connect_lazy(), Instant::now());
        }
        c.0.clone()
    }

    fn renew_channel(&self) {
        let mut c = self.inner.channel.lock().unwrap_or_else(|e| e.into_inner());
        *c = (self.inner.target.connect_lazy(), Instant::now());
    }

    /// Whether a call may be sent now (the circuit is closed).
    pub fn is_up(&self) -> bool {
        matches!(
            *self.inner.circuit.lock().unwrap_or_else(|e| e.into_inner()),
            Circuit::Closed { .. }
        )
    }

    fn record(&self, outcome: Outcome) {
        let opened = {
            let mut c = self.inner.circuit.lock().unwrap_or_else(|e| e.into_inner());
            match (&mut *c, outcome) {
                (Circuit::Closed { timeouts }, Outcome::Answered) => {
                    *timeouts = 0;
                    false
                }
                (Circuit::Closed { timeouts }, Outcome::Slow)
                    if *timeouts + 1 < TIMEOUTS_TO_OPEN =>
                {
                    *timeouts += 1;
                    false
                }
                (Circuit::Closed { .. }, Outcome::Slow | Outcome::Down) => {
                    *c = Circuit::Open {
                        since: Instant::now(),
                    };
                    true
                }
                // Open: only the probe closes it.
                (Circuit::Open { .. }, _) => false,
            }
        };
        if opened {
            tracing::warn!(peer = self.inner.name, "peer is down: failing calls fast");
            self.spawn_probe();
        }
    }

    /// Asks the peer's health until it serves, then closes the circuit on a new channel.
    /// Ends when it does, or when the service that owns the link is gone.
    fn spawn_probe(&self) {
        let weak: Weak<LinkInner> = Arc::downgrade(&self.inner);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                let Some(inner) = weak.upgrade() else { return };
                let link = PeerLink { inner };
                if link.probe().await {
                    link.renew_channel();
                    let down_for = {
                        let mut c = link.inner.circuit.lock().unwrap_or_else(|e| e.into_inner());
                        let since = match &*c {
                            Circuit::Open { since } => since.elapsed(),
                            Circuit::Closed { .. } => Duration::ZERO,
                        };
                        *c = Circuit::Closed { timeouts: 0 };
                        since
                    };
                    tracing::info!(peer = link.inner.name, ?down_for, "peer serves again");
                    return;
                }
            }
        });
    }

    /// One health check of the peer, on a connection of its own.
    async fn probe(&self) -> bool {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let mut client = HealthClient::new(self.inner.target.connect_lazy());
        let mut req = Request::new(HealthCheckRequest {
            service: self.inner.health_service.to_owned(),
        });
        req.set_timeout(PROBE_EVERY * 3);
        match client.check(req).await {
            Ok(r) => r.into_inner().status == ServingStatus::Serving as i32,
            // A server that answers but does not know the name is up.
            Err(s) => s.code() == tonic::Code::NotFound && s.source().is_none(),
        }
    }

    /// The error for a call refused because the circuit is open.
    fn down(&self) -> tonic::Status {
        tonic::Status::unavailable(format!("{} is down", self.inner.name))
    }
}

/// Whether a failed call may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The call changes nothing (a read, or a create with a `request_id`): any failure of
    /// the transport, and `UNAVAILABLE`, are retried.
    Idempotent,
    /// Only a call the peer certainly never processed is retried.
    NeverProcessed,
}

/// Whether `s` was made by this side's transport (the peer sent no status).
fn from_transport(s: &tonic::Status) -> bool {
    s.source().is_some()
}

fn error_chain<'a>(
    s: &'a tonic::Status,
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> + 'a {
    std::iter::successors(s.source(), |e: &&'a (dyn std::error::Error + 'static)| {
        (*e).source()
    })
}

/// Whether the peer refused the call's stream (as on a connection closing at its age,
/// after GOAWAY): the peer is up and did not process it.
fn refused_stream(s: &tonic::Status) -> bool {
    error_chain(s).any(|e| {
        e.downcast_ref::<h2::Error>()
            .is_some_and(|h| h.reason() == Some(h2::Reason::REFUSED_STREAM))
    })
}

/// Whether no connection to the peer could be made.
fn not_connected(s: &tonic::Status) -> bool {
    error_chain(s).any(|e| {
        e.is::<tonic::ConnectError>()
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}

/// Whether the peer certainly did not process the call: its stream was refused, or no
/// connection was made.
pub fn never_processed(s: &tonic::Status) -> bool {
    refused_stream(s) || not_connected(s)
}

/// Whether `s` is this side's own timeout of the attempt.
fn timed_out(s: &tonic::Status) -> bool {
    s.code() == tonic::Code::DeadlineExceeded
        || error_chain(s).any(|e| e.is::<tonic::TimeoutExpired>())
}

fn retryable(policy: Retry, s: &tonic::Status) -> bool {
    if timed_out(s) {
        return false;
    }
    match policy {
        Retry::NeverProcessed => never_processed(s),
        Retry::Idempotent => {
            never_processed(s)
                || s.code() == tonic::Code::Unavailable
                || (from_transport(s)
                    && matches!(
                        s.code(),
                        tonic::Code::Unknown | tonic::Code::Cancelled | tonic::Code::Internal
                    ))
        }
    }
}

fn outcome_of<R>(r: &Result<R, tonic::Status>) -> Outcome {
    match r {
        Ok(_) => Outcome::Answered,
        Err(s) if timed_out(s) => Outcome::Slow,
        // A refused stream is a connection ageing out, not a peer going down: opening the
        // circuit on it would fail the very retry that recovers the call.
        Err(s) if refused_stream(s) => Outcome::Answered,
        Err(s)
            if not_connected(s) || (from_transport(s) && s.code() == tonic::Code::Unavailable) =>
        {
            Outcome::Down
        }
        Err(_) => Outcome::Answered,
    }
}

/// The service's own `SERVICE` token, minted from its signing key and renewed well
/// before it expires; for the whole suite, or for one peer ([`ServiceToken::for_audience`]).
#[derive(Clone, Debug)]
pub struct ServiceToken {
    signer: TokenSigner,
    service: String,
    audience: Option<String>,
    cached: Arc<Mutex<Option<(String, Instant)>>>,
}

const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

impl ServiceToken {
    pub fn new(signer: TokenSigner, service: &str) -> Self {
        Self {
            signer,
            service: service.to_owned(),
            audience: None,
            cached: Arc::new(Mutex::new(None)),
        }
    }

    /// The same service's token for the peer `audience` only (its `aud`), minted apart.
    pub fn for_audience(&self, audience: &str) -> Self {
        Self {
            audience: Some(audience.to_owned()),
            cached: Arc::new(Mutex::new(None)),
            ..self.clone()
        }
    }

    pub fn bearer(&self) -> Option<String> {
        let mut c = self.cached.lock().ok()?;
        if let Some((t, minted)) = c.as_ref()
            && minted.elapsed() < TOKEN_LIFETIME / 2
        {
            return Some(format!("Bearer {t}"));
        }
        let token = self
            .signer
            .mint(
                Role::Service,
                &TokenRequest {
                    subject: format!("service:{}", self.service),
                    service: Some(self.service.clone()),
                    lifetime: TOKEN_LIFETIME,
                    audience: self.audience.clone(),
                    ..Default::default()
                },
            )
            .ok()?;
        *c = Some((token.clone(), Instant::now()));
        Some(format!("Bearer {token}"))
    }
}

/// Adds the service token and the current trace context to every outgoing call.
#[derive(Clone, Debug)]
pub struct PeerInterceptor {
    token: ServiceToken,
}

impl PeerInterceptor {
    pub fn new(token: ServiceToken) -> Self {
        Self { token }
    }
}

impl Interceptor for PeerInterceptor {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, tonic::Status> {
        let bearer = self
            .token
            .bearer()
            .ok_or_else(|| tonic::Status::unauthenticated("cannot mint the service token"))?;
        let v = bearer
            .parse()
            .map_err(|_| tonic::Status::unauthenticated("the service token is not ASCII"))?;
        req.metadata_mut().insert("authorization", v);
        crate::telemetry::inject_current(req.metadata_mut().as_mut());
        Ok(req)
    }
}

/// The timeout for an outgoing call: the incoming call's remaining budget less a margin,
/// and no more than `default`. `None` when the budget is already spent.
pub fn outgoing_timeout(
    deadline: Option<Instant>,
    default: Duration,
    now: Instant,
) -> Option<Duration> {
    match deadline {
        None => Some(default),
        Some(d) => {
            let left = d
                .checked_duration_since(now)?
                .checked_sub(DEADLINE_MARGIN)?;
            (!left.is_zero()).then(|| left.min(default))
        }
    }
}

/// A request to a peer on behalf of `ctx`: its deadline bounded by `ctx`'s, and the end
/// user named for the peer's audit record.
pub fn peer_request<T>(
    msg: T,
    ctx: &CallContext,
    default: Duration,
) -> Result<Request<T>, ApiError> {
    let timeout = outgoing_timeout(ctx.deadline, default, Instant::now())
        .ok_or_else(|| ApiError::DeadlineExceeded("no time left to call a peer".into()))?;
    let mut req = Request::new(msg);
    req.set_timeout(timeout);
    if let Ok(v) = ctx.principal.subject.parse() {
        req.metadata_mut().insert(ON_BEHALF_OF_HEADER, v);
    }
    Ok(req)
}

/// Retries a call while `retryable` says so: at most `attempts` tries, with jittered
/// exponential backoff, never past `deadline`.
pub async fn retry_while<T, F, Fut>(
    attempts: u32,
    deadline: Option<Instant>,
    retryable: impl Fn(&tonic::Status) -> bool,
    mut call: F,
) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut backoff = Duration::from_millis(25);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(s) if attempt < attempts && retryable(&s) => {
                let jitter = Duration::from_micros(u64::from(rand_u16()) * 20);
                let pause = backoff + jitter;
                if deadline.is_some_and(|d| Instant::now() + pause + DEADLINE_MARGIN >= d) {
                    return Err(s);
                }
                tokio::time::sleep(pause).await;
                backoff *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Retries an idempotent call while the peer answers `UNAVAILABLE`.
pub async fn retry_unavailable<T, F, Fut>(
    attempts: u32,
    deadline: Option<Instant>,
    call: F,
) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    retry_while(
        attempts,
        deadline,
        |s| s.code() == tonic::Code::Unavailable,
        call,
    )
    .await
}

/// Calls the peer behind `link` on behalf of `ctx`: the request carries what is left of
/// `ctx`'s deadline (at most `timeout`) and the end user, and is retried as `retry`
/// allows while the peer's circuit stays closed. `send` makes the call on the channel it
/// is given. Each attempt is a client span named after `rpc` (`package.Service/Method`);
/// the peer's server span is its child.
pub async fn call<T, R, F, Fut>(
    link: &PeerLink,
    ctx: &CallContext,
    rpc: &'static str,
    timeout: Duration,
    retry: Retry,
    msg: &T,
    send: F,
) -> Result<R, tonic::Status>
where
    T: Clone,
    F: Fn(Channel, Request<T>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    use tracing::Instrument as _;
    let (service, method) = rpc.split_once('/').unwrap_or((rpc, ""));
    if !link.is_up() {
        return Err(link.down());
    }
    retry_while(
        3,
        ctx.deadline,
        |s| link.is_up() && retryable(retry, s),
        || {
            let sent = peer_request(msg.clone(), ctx, timeout).map(|req| send(link.channel(), req));
            async move {
                // No span for a call that is never sent (no time left for it).
                let fut = sent.map_err(tonic::Status::from)?;
                let span = tracing::info_span!(
                    "grpc.client",
                    otel.name = rpc,
                    otel.kind = "client",
                    rpc.system = "grpc",
                    rpc.service = service,
                    rpc.method = method,
                    rpc.grpc.status_code = tracing::field::Empty,
                    otel.status_code = tracing::field::Empty,
                );
                let r = fut
                    .instrument(span.clone())
                    .await
                    .map(tonic::Response::into_inner);
                link.record(outcome_of(&r));
                let code = r.as_ref().map_or_else(|s| s.code(), |_| tonic::Code::Ok);
                span.record("rpc.grpc.status_code", code as i32);
                if code != tonic::Code::Ok {
                    span.record("otel.status_code", "ERROR");
                    if let Err(s) = &r {
                        tracing::debug!(peer = link.name(), status = ?s, "peer call failed");
                    }
                }
                r
            }
        },
    )
    .await
}

fn rand_u16() -> u16 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    u16::from_le_bytes(b)
}

/// Maps a peer's status for this service's caller: the peer being down or slow is
/// `UNAVAILABLE` here. What the peer says of *its* request is not what this service's
/// caller asked: a peer's NOT_FOUND is `FAILED_PRECONDITION` `PEER_NOT_FOUND` (the peer
/// does not know what the call refers to; the message names no resource of this service),
/// and its INVALID_ARGUMENT is `FAILED_PRECONDITION` `PEER_REFUSED_REQUEST` carrying the
/// peer's field violations in its message, never a field violation of this request. A
/// caller that knows which of its own resources or fields the peer was asked about says
/// so with [`peer_error_about`] or [`peer_violations_at`].
pub fn peer_error(peer: &str, s: tonic::Status) -> ApiError {
    use tonic::Code::*;
    match s.code() {
        // The transport failing (a connection lost mid-call) is the peer being unreachable,
        // whatever code tonic gives it, never this service's bug.
        _ if from_transport(&s) && !timed_out(&s) => {
            ApiError::Unavailable(format!("{peer} is unavailable"))
        }
        Unavailable | Unknown | Cancelled => {
            ApiError::Unavailable(format!("{peer} is unavailable"))
        }
        DeadlineExceeded => ApiError::DeadlineExceeded(format!("{peer} did not answer in time")),
        NotFound => peer_precondition(
            "PEER_NOT_FOUND",
            peer,
            format!(
                "{peer} does not know what this call refers to: {}",
                s.message()
            ),
            "سامانهٔ دیگری که این درخواست به آن نیاز دارد، مورد مربوط را نمی‌شناسد.",
        ),
        PermissionDenied | Unauthenticated => ApiError::internal(anyhow::anyhow!(
            "{peer} refused this service's credentials: {}",
            s.message()
        )),
        InvalidArgument => {
            let fields = peer_fields(&s);
            let said = if fields.is_empty() {
                s.message().to_owned()
            } else {
                fields
                    .iter()
                    .map(|f| format!("{}: {}", f.field, f.description))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let mut e = peer_precondition(
                "PEER_REFUSED_REQUEST",
                peer,
                format!("{peer} refused the request this call made of it: {said}"),
                "سامانهٔ دیگری که این درخواست به آن نیاز دارد، درخواست را نپذیرفت.",
            );
            if let ApiError::FailedPrecondition { metadata, .. } = &mut e
                && !fields.is_empty()
            {
                let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
                metadata.insert("peer_fields".into(), names.join(","));
            }
            e
        }
        _ => ApiError::internal(anyhow::anyhow!(
            "{peer} answered {:?}: {}",
            s.code(),
            s.message()
        )),
    }
}

/// As [`peer_error`], for a call about a resource of this service's caller's request
/// (`resource_type` `name`, as the caller named it): the peer's NOT_FOUND is that
/// resource not found, which the caller can act on.
pub fn peer_error_about(
    peer: &str,
    s: tonic::Status,
    resource_type: &'static str,
    name: &str,
) -> ApiError {
    if s.code() == tonic::Code::NotFound && !from_transport(&s) {
        return ApiError::not_found(resource_type, name);
    }
    peer_error(peer, s)
}

/// A peer's INVALID_ARGUMENT as violations of this service's request, for a caller that
/// passed its field `prefix` (`filing`) to the peer as the peer's request: each of the
/// peer's fields is put under it (`filing.activity_area`); a refusal without field
/// violations is one violation of `prefix` itself. Any other status is [`peer_error`].
pub fn peer_violations_at(peer: &str, s: tonic::Status, prefix: &str) -> ApiError {
    if s.code() != tonic::Code::InvalidArgument || from_transport(&s) {
        return peer_error(peer, s);
    }
    let fields = peer_fields(&s);
    if fields.is_empty() {
        return ApiError::invalid(prefix, format!("{peer} refused it: {}", s.message()));
    }
    ApiError::InvalidArgument(
        fields
            .into_iter()
            .map(|f| crate::error::FieldViolation {
                field: match (prefix.is_empty(), f.field.is_empty()) {
                    (true, _) => f.field,
                    (false, true) => prefix.to_owned(),
                    (false, false) => format!("{prefix}.{}", f.field),
                },
                description: f.description,
            })
            .collect(),
    )
}

/// The field violations in a peer's `BadRequest` detail.
fn peer_fields(s: &tonic::Status) -> Vec<crate::error::FieldViolation> {
    use tonic_types::StatusExt as _;
    s.get_details_bad_request()
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| crate::error::FieldViolation {
                    field: v.field,
                    description: v.description,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn peer_precondition(reason: &str, peer: &str, message: String, persian: &str) -> ApiError {
    let mut e = ApiError::precondition(reason, message, persian);
    if let ApiError::FailedPrecondition { metadata, .. } = &mut e {
        metadata.insert("peer".into(), peer.to_owned());
    }
    e
}

/// Whether a peer's answer to "get this" found it: NOT_FOUND or INVALID_ARGUMENT (a name it
/// does not know) is `false`; any other failure is the peer's error.
pub fn found<T>(r: Result<T, tonic::Status>, peer: &str) -> Result<bool, ApiError> {
    match r {
        Ok(_) => Ok(true),
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::NotFound | tonic::Code::InvalidArgument
            ) =>
        {
            Ok(false)
        }
        Err(s) => Err(peer_error(peer, s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_deadline_never_exceeds_the_incoming_budget() {
        let now = Instant::now();
        let default = Duration::from_secs(5);
        // No incoming deadline: the default.
        assert_eq!(outgoing_timeout(None, default, now), Some(default));
        // Plenty left: the default.
        assert_eq!(
            outgoing_timeout(Some(now + Duration::from_secs(60)), default, now),
            Some(default)
        );
        // Little left: what is left, less the margin.
        let t = outgoing_timeout(Some(now + Duration::from_millis(300)), default, now).unwrap();
        assert_eq!(t, Duration::from_millis(250));
        for left_ms in [0u64, 1, 10, 49, 50, 120, 999, 4999, 5049, 5051, 100_000] {
            let d = now + Duration::from_millis(left_ms);
            if let Some(t) = outgoing_timeout(Some(d), default, now) {
                assert!(now + t + DEADLINE_MARGIN <= d, "{left_ms}");
            }
        }
        // Spent: no call at all.
        assert_eq!(
            outgoing_timeout(Some(now + Duration::from_millis(40)), default, now),
            None
        );
        assert_eq!(outgoing_timeout(Some(now), default, now), None);
    }

    /// What may be sent again: a stream the peer refused always; a transport failure only
    /// for an idempotent call; a status the peer itself sent never (but UNAVAILABLE for an
    /// idempotent call); this side's own timeout never.
    #[test]
    fn which_failures_are_retried() {
        let refused =
            tonic::Status::from_error(Box::new(h2::Error::from(h2::Reason::REFUSED_STREAM)));
        assert!(never_processed(&refused));
        assert!(retryable(Retry::NeverProcessed, &refused));
        let broken =
            tonic::Status::from_error(Box::new(h2::Error::from(h2::Reason::PROTOCOL_ERROR)));
        assert_eq!(broken.code(), tonic::Code::Internal);
        assert!(!never_processed(&broken));
        assert!(retryable(Retry::Idempotent, &broken));
        assert!(!retryable(Retry::NeverProcessed, &broken));
        let peer_said = tonic::Status::internal("the peer's own bug");
        assert!(!retryable(Retry::Idempotent, &peer_said));
        let peer_unavailable = tonic::Status::unavailable("database is busy");
        assert!(retryable(Retry::Idempotent, &peer_unavailable));
        assert!(!retryable(Retry::NeverProcessed, &peer_unavailable));
        let timeout = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert!(!retryable(Retry::Idempotent, &timeout));
        assert_eq!(outcome_of::<()>(&Err(timeout)), Outcome::Slow);
        assert_eq!(
            outcome_of::<()>(&Err(refused)),
            Outcome::Answered,
            "a stream refused at the connection's age leaves the circuit closed"
        );
        let not_there = tonic::Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(never_processed(&not_there));
        assert_eq!(outcome_of::<()>(&Err(not_there)), Outcome::Down);
        assert_eq!(outcome_of::<()>(&Err(peer_said)), Outcome::Answered);
    }

    /// The circuit opens on a peer that is down or twice slow, refuses calls at once
    /// while open, and closes when the probe finds the peer serving.
    #[tokio::test]
    async fn the_circuit_opens_and_the_probe_closes_it() {
        // A peer that is not there: the probe fails, so the circuit stays open.
        let link = PeerLink::new(
            "the peer",
            "test.Peer",
            PeerTarget::new("http://127.0.0.1:9", None).unwrap(),
        );
        assert!(link.is_up());
        link.record(Outcome::Slow);
        assert!(link.is_up(), "one timeout is not yet down");
        link.record(Outcome::Answered);
        link.record(Outcome::Slow);
        assert!(link.is_up(), "an answer resets the count");
        link.record(Outcome::Down);
        assert!(!link.is_up());
        let ctx = CallContext::system("test");
        let started = Instant::now();
        let r: Result<(), _> = call(
            &link,
            &ctx,
            "test.Peer/Call",
            Duration::from_secs(1),
            Retry::Idempotent,
            &(),
            |_, _| async { unreachable!("no call is sent while the circuit is open") },
        )
        .await;
        assert_eq!(r.unwrap_err().code(), tonic::Code::Unavailable);
        assert!(started.elapsed() < Duration::from_millis(100));
        tokio::time::sleep(PROBE_EVERY * 3).await;
        assert!(!link.is_up(), "still down: nothing serves there");
    }

    #[tokio::test]
    async fn retries_only_unavailable_and_stops() {
        let mut n = 0;
        let r: Result<(), _> = retry_unavailable(3, None, || {
            n += 1;
            async { Err(tonic::Status::unavailable("down")) }
        })
        .await;
        assert_eq!(r.unwrap_err().code(), tonic::Code::Unavailable);
        assert_eq!(n, 3);
        let mut n = 0;
        let r: Result<(), _> = retry_unavailable(3, None, || {
            n += 1;
            async { Err(tonic::Status::invalid_argument("bad")) }
        })
        .await;
        assert_eq!(r.unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(n, 1);
    }

    /// A peer's refusal with field violations, as the peer's API error makes it.
    fn peer_refusal(fields: &[(&str, &str)]) -> tonic::Status {
        let mut v = crate::error::Violations::new();
        for (f, d) in fields {
            v.add(*f, *d);
        }
        v.into_result().unwrap_err().to_status("peer-trace")
    }

    #[test]
    fn a_peers_not_found_names_no_resource_of_ours() {
        let s = ApiError::not_found("institution", "institutions/9").to_status("t");
        let e = peer_error("the registry", s);
        match &e {
            ApiError::FailedPrecondition {
                reason, metadata, ..
            } => {
                assert_eq!(reason, "PEER_NOT_FOUND");
                assert_eq!(metadata["peer"], "the registry");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("the registry does not know"), "{e}");
        // A caller that knows what it asked about: that resource, as it named it.
        let s = ApiError::not_found("institution", "whatever the peer said").to_status("t");
        match peer_error_about("the registry", s, "institution", "institutions/7") {
            ApiError::NotFound {
                resource_type,
                name,
            } => assert_eq!(
                (resource_type, name.as_str()),
                ("institution", "institutions/7")
            ),
            other => panic!("{other:?}"),
        }
        // Other codes are not a not-found of ours.
        let e = peer_error_about(
            "the registry",
            tonic::Status::unavailable("down"),
            "institution",
            "institutions/7",
        );
        assert_eq!(e.code(), tonic::Code::Unavailable);
    }

    #[test]
    fn a_peers_invalid_argument_is_no_empty_field_path() {
        let s = peer_refusal(&[("activity_area", "unknown area"), ("province", "empty")]);
        let e = peer_error("the registry", s);
        match &e {
            ApiError::FailedPrecondition {
                reason, metadata, ..
            } => {
                assert_eq!(reason, "PEER_REFUSED_REQUEST");
                assert_eq!(metadata["peer_fields"], "activity_area,province");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("activity_area: unknown area"), "{e}");
        // Without details, the peer's message says what was wrong.
        let e = peer_error("the registry", tonic::Status::invalid_argument("bad name"));
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        assert!(e.to_string().contains("bad name"), "{e}");
        assert!(!matches!(e, ApiError::InvalidArgument(_)));
    }

    #[test]
    fn a_peers_violations_go_under_the_callers_field() {
        let s = peer_refusal(&[("activity_area", "unknown area"), ("", "whole request")]);
        let ApiError::InvalidArgument(v) = peer_violations_at("the registry", s, "filing") else {
            panic!("violations");
        };
        let fields: Vec<_> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["filing.activity_area", "filing"]);
        assert_eq!(v[0].description, "unknown area");
        // No details: one violation of the prefix, never an empty path.
        let ApiError::InvalidArgument(v) = peer_violations_at(
            "the registry",
            tonic::Status::invalid_argument("no"),
            "filing",
        ) else {
            panic!("violations");
        };
        assert_eq!(v[0].field, "filing");
        assert!(v.iter().all(|f| !f.field.is_empty()));
        // Any other code maps as peer_error does.
        let e = peer_violations_at("the registry", tonic::Status::unavailable("x"), "filing");
        assert_eq!(e.code(), tonic::Code::Unavailable);
    }
}
