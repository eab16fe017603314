//! Calling peer services: channels with connect timeouts and keepalive, the service's own
//! token and the W3C trace context on every call, deadlines that never exceed what the
//! incoming call has left, and bounded, jittered retries of `UNAVAILABLE`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::Request;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};

use crate::auth::{ON_BEHALF_OF_HEADER, Role, TokenRequest, TokenSigner};
use crate::ctx::CallContext;
use crate::error::ApiError;

/// Kept back from the caller's remaining budget, so an answer can still travel back.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(50);

/// A lazily connected channel to a peer at `uri` (`http://host:port`).
pub fn channel(uri: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(uri.to_owned())?
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .connect_lazy())
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

/// Retries an idempotent call while the peer answers `UNAVAILABLE`: at most `attempts`
/// tries, with jittered exponential backoff, never past `deadline`.
pub async fn retry_unavailable<T, F, Fut>(
    attempts: u32,
    deadline: Option<Instant>,
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
            Err(s) if s.code() == tonic::Code::Unavailable && attempt < attempts => {
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

/// Calls a peer on behalf of `ctx` with an idempotent request: the request carries what
/// is left of `ctx`'s deadline (at most `timeout`) and the end user, and is retried while
/// the peer is `UNAVAILABLE`. `send` makes the call, owning what it needs (a client clone).
/// Each attempt is a client span named after `rpc` (`package.Service/Method`); the peer's
/// server span is its child.
pub async fn call<T, R, F, Fut>(
    ctx: &CallContext,
    rpc: &'static str,
    timeout: Duration,
    msg: &T,
    send: F,
) -> Result<R, tonic::Status>
where
    T: Clone,
    F: Fn(Request<T>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    use tracing::Instrument as _;
    let (service, method) = rpc.split_once('/').unwrap_or((rpc, ""));
    retry_unavailable(3, ctx.deadline, || {
        let sent = peer_request(msg.clone(), ctx, timeout).map(&send);
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
            let code = r.as_ref().map_or_else(|s| s.code(), |_| tonic::Code::Ok);
            span.record("rpc.grpc.status_code", code as i32);
            if code != tonic::Code::Ok {
                span.record("otel.status_code", "ERROR");
            }
            r
        }
    })
    .await
}

fn rand_u16() -> u16 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    u16::from_le_bytes(b)
}

/// Maps a peer's status for this service's caller: the peer being down or slow is
/// `UNAVAILABLE` here; other codes pass through with the peer's message.
pub fn peer_error(peer: &str, s: tonic::Status) -> ApiError {
    use tonic::Code::*;
    match s.code() {
        Unavailable | Unknown | Cancelled => {
            ApiError::Unavailable(format!("{peer} is unavailable"))
        }
        DeadlineExceeded => ApiError::DeadlineExceeded(format!("{peer} did not answer in time")),
        NotFound => ApiError::not_found("resource", s.message().to_owned()),
        PermissionDenied | Unauthenticated => ApiError::internal(anyhow::anyhow!(
            "{peer} refused this service's credentials: {}",
            s.message()
        )),
        InvalidArgument => ApiError::invalid("", s.message().to_owned()),
        _ => ApiError::internal(anyhow::anyhow!(
            "{peer} answered {:?}: {}",
            s.code(),
            s.message()
        )),
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
}
