//! The gRPC server every service runs: its routes behind the edge, health, reflection,
//! the metrics endpoint, and graceful shutdown.
//!
//! The edge is a stack of layers, one per concern ([`edge_stack`]), outermost first:
//! 1. a server span continuing the caller's W3C trace (RPC semantic conventions);
//! 2. metrics by method and code, and the trace id in an `x-trace-id` response header;
//! 3. admission: past the concurrency limit the call is refused with
//!    `RESOURCE_EXHAUSTED` at once instead of queueing (health and reflection are
//!    always admitted);
//! 4. authentication of the bearer token (health, reflection and, when the public record
//!    is on, its methods are public), and under mutual TLS the client certificate: the
//!    peer RPCs need one the CA signed, and a `SERVICE` token must come with the
//!    certificate of the service it names;
//! 5. the deadline: the earlier of the caller's `grpc-timeout` and the server's limit;
//! 6. tonic's own refusals of a request (too large, undecodable) as the suite's errors,
//!    told apart by their shape, not their text.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tonic::server::NamedService;
use tonic::service::{Routes, RoutesBuilder};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::auth::{Principal, Role, TokenVerifier};
use crate::config::ServerArgs;
use crate::ctx::{Deadline, RpcMethod};
use crate::db::Db;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::telemetry::{current_trace_id, extract_context};
use crate::tls::{Tls, TlsPeer};

/// Response header that carries the trace id of every call.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

const PUBLIC_PREFIXES: &[&str] = &["/grpc.health.v1.Health/"];
const REFLECTION_PREFIXES: &[&str] = &[
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

struct Edge {
    verifier: TokenVerifier,
    admission: Arc<Semaphore>,
    request_timeout: Duration,
    reflection_public: bool,
    metrics: Metrics,
    /// Mutual TLS is on: client certificates are checked.
    mtls: bool,
    /// The RPCs (`/package.Service/Method`) only the suite's services make.
    peer_rpcs: Vec<&'static str>,
    /// The public record's methods, served without a token (empty when it is off).
    public_rpcs: Vec<String>,
}

/// Under mutual TLS, what the connection's client certificate must show for a call: one
/// the CA signed on a peer RPC, and, for a `SERVICE` token (on any RPC), one whose
/// identity is the service the token names, so that a leaked token is of no use without
/// the service's key.
fn check_certificate(
    peer_rpc: bool,
    principal: Option<&Principal>,
    tls: Option<&TlsPeer>,
) -> Result<(), ApiError> {
    if peer_rpc && !tls.is_some_and(|t| t.certified) {
        return Err(ApiError::Unauthenticated(
            "this RPC is for the suite's services: it needs a client certificate signed by the suite's CA (mutual TLS)".into(),
        ));
    }
    if let Some(p) = principal.filter(|p| p.role == Role::Service) {
        let identity = tls.and_then(|t| t.identity.as_deref());
        if identity.is_none() || identity != p.service.as_deref() {
            return Err(ApiError::Unauthenticated(format!(
                "a SERVICE token for {:?} is honoured only with that service's client certificate; this connection presents {}",
                p.service.as_deref().unwrap_or_default(),
                identity.map_or("none".to_owned(), |i| format!("{i:?}'s")),
            )));
        }
    }
    Ok(())
}

/// Parses a `grpc-timeout` header value (`100m`, `5S`, …).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn error_response(e: ApiError, trace_id: &str) -> Response {
    e.to_status(trace_id).into_http::<axum::body::Body>()
}

fn grpc_code(resp: &Response) -> &str {
    // A call that failed before sending a message answers "trailers-only": the status is
    // in the headers. Otherwise it is in the trailers, and a started response is OK here.
    resp.headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0")
}

fn is_health(path: &str) -> bool {
    PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p))
}

fn is_reflection(path: &str) -> bool {
    REFLECTION_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// `/pkg.Service/Method` as (`pkg.Service`, `Method`).
fn rpc_of(path: &str) -> (String, String) {
    path.trim_start_matches('/')
        .split_once('/')
        .map(|(s, m)| (s.to_owned(), m.to_owned()))
        .unwrap_or_else(|| (path.to_owned(), String::new()))
}

/// An error answered by the edge itself, with the call's trace id.
fn refuse(e: ApiError) -> Response {
    error_response(e, &current_trace_id())
}

/// The edge: one layer per concern, outermost first; each layer's comment says why.
fn edge_stack(routes: axum::Router, edge: Arc<Edge>) -> axum::Router {
    use axum::middleware::{from_fn, from_fn_with_state};
    routes.layer(
        tower::ServiceBuilder::new()
            .layer(from_fn(trace_span))
            .layer(from_fn_with_state(edge.clone(), metrics_and_trace_id))
            .layer(from_fn_with_state(edge.clone(), admission))
            .layer(from_fn_with_state(edge.clone(), authentication))
            .layer(from_fn_with_state(edge, deadline))
            .layer(from_fn(tonic_refusals)),
    )
}

/// A server span continuing the caller's W3C trace (RPC semantic conventions), every
/// other layer inside it, closed with the call's final status code.
async fn trace_span(req: Request, next: Next) -> Response {
    let (service, method) = rpc_of(req.uri().path());
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = format!("{service}/{method}"),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service.as_str(),
        rpc.method = method.as_str(),
        rpc.grpc.status_code = Empty,
        otel.status_code = Empty,
    );
    let _ = span.set_parent(extract_context(req.headers()));
    let resp = next.run(req).instrument(span.clone()).await;
    let code = grpc_code(&resp);
    span.record("rpc.grpc.status_code", code);
    // The caller's mistakes are not the server's errors.
    if !matches!(
        code,
        "0" | "1" | "3" | "5" | "6" | "7" | "9" | "10" | "11" | "16"
    ) {
        span.record("otel.status_code", "ERROR");
    }
    resp
}

/// Metrics by method and code, and the trace id in an `x-trace-id` response header, for
/// every call, refused or answered.
async fn metrics_and_trace_id(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    let (service, method) = rpc_of(req.uri().path());
    let started = Instant::now();
    let mut resp = next.run(req).await;
    if let Ok(v) = http::HeaderValue::from_str(&current_trace_id()) {
        resp.headers_mut().insert(TRACE_ID_HEADER, v);
    }
    edge.metrics
        .observe_rpc(&service, &method, grpc_code(&resp), started.elapsed());
    resp
}

/// Admission: past the concurrency limit a call is refused with `RESOURCE_EXHAUSTED` at
/// once instead of queueing. Probes and reflection are cheap and never queue on the
/// database: refusing them under load would take a busy replica out of rotation.
async fn admission(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if is_health(path) || is_reflection(path) {
        return next.run(req).await;
    }
    match edge.admission.clone().try_acquire_owned() {
        Ok(_permit) => next.run(req).await,
        Err(_) => refuse(ApiError::ResourceExhausted(
            "the server is at its concurrency limit".into(),
        )),
    }
}

/// The admission of the public HTTP port: the gRPC port's semaphore, refused with 429.
async fn public_admission(
    State(admission): State<Arc<Semaphore>>,
    req: Request,
    next: Next,
) -> Response {
    match admission.try_acquire_owned() {
        Ok(_permit) => next.run(req).await,
        Err(_) => crate::public::http_error(ApiError::ResourceExhausted(
            "the server is at its concurrency limit".into(),
        )),
    }
}

/// Authentication of the bearer token (health, and reflection unless configured
/// otherwise, are public), and under mutual TLS the client certificate
/// ([`check_certificate`]); the principal goes into the request for the handlers.
async fn authentication(State(edge): State<Arc<Edge>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if is_health(&path) || (edge.reflection_public && is_reflection(&path)) {
        return next.run(req).await;
    }
    // The public record's methods: anyone may call them, and a token, if sent, is not
    // read (they answer the same to everyone). Only those served: with the record off
    // the list is empty and such a path is refused here like any other without a token.
    if edge.public_rpcs.contains(&path) {
        return next.run(req).await;
    }
    let principal = match edge.verifier.authenticate(req.headers()) {
        Ok(p) => p,
        Err(e) => return refuse(e),
    };
    if edge.mtls
        && let Err(e) = check_certificate(
            edge.peer_rpcs.contains(&path.as_str()),
            Some(&principal),
            req.extensions().get::<TlsPeer>(),
        )
    {
        return refuse(e);
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// The deadline: the earlier of the caller's `grpc-timeout` and the server's limit, given
/// to the handler (which passes it on to peers) and enforced here.
async fn deadline(State(edge): State<Arc<Edge>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let budget = req
        .headers()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        .map_or(edge.request_timeout, |t| t.min(edge.request_timeout));
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(Deadline(started + budget));
    req.extensions_mut().insert(RpcMethod(path));
    match tokio::time::timeout(budget, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => refuse(ApiError::DeadlineExceeded(format!(
            "no answer within {budget:?}"
        ))),
    }
}

/// tonic's own refusals of a request, made before any handler runs, as the suite's
/// errors. They are told apart by their shape, never their text: every error of the
/// suite carries rich details, so a trailers-only status without them is tonic's. Its
/// OUT_OF_RANGE is a request over the size limit (the suite raises no OUT_OF_RANGE),
/// which the suite's contract and gRPC's guidance call RESOURCE_EXHAUSTED; its INTERNAL
/// is a request it could not read (framing, compression, or a message prost cannot
/// decode, whose field the codec names), the caller's fault, so INVALID_ARGUMENT.
async fn tonic_refusals(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if resp.headers().contains_key("grpc-status-details-bin") {
        return resp;
    }
    match grpc_code(&resp) {
        "11" => {
            let said = tonic::Status::from_header_map(resp.headers())
                .map(|s| s.message().to_owned())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "the request is larger than the server accepts".into());
            refuse(ApiError::ResourceExhausted(said))
        }
        "13" => {
            let field = resp
                .headers()
                .get(mosharekat_api::codec::UNDECODABLE_FIELD)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("request");
            refuse(ApiError::invalid(
                field,
                "could not be decoded: it is not valid for its type (for example, text that is not UTF-8, or a truncated or malformed message)",
            ))
        }
        _ => resp,
    }
}

/// A bound, not yet serving, gRPC server of one service.
pub struct GrpcServer {
    listener: TcpListener,
    metrics_listener: TcpListener,
    /// The plaintext port serving health alone (with TLS on).
    health_listener: Option<TcpListener>,
    tls: Tls,
    peer_rpcs: Vec<&'static str>,
    routes: RoutesBuilder,
    service_names: Vec<&'static str>,
    health: HealthReporter,
    args: ServerArgs,
    metrics: Metrics,
    verifier: TokenVerifier,
    public_rpcs: Vec<String>,
    /// The public record's HTTP port and what it serves (the record on).
    public_http: Option<(TcpListener, axum::Router)>,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("addr", &self.listener.local_addr().ok())
            .finish()
    }
}

impl GrpcServer {
    /// Binds the gRPC, metrics and (if configured) plaintext health ports (port 0 picks a
    /// free one, as tests do); the gRPC port speaks `tls` when it is on.
    pub async fn bind(
        args: &ServerArgs,
        verifier: TokenVerifier,
        metrics: Metrics,
        tls: &Tls,
    ) -> anyhow::Result<Self> {
        let listen = args
            .listen
            .ok_or_else(|| anyhow::anyhow!("no --listen address"))?;
        let metrics_listen = args
            .metrics_listen
            .ok_or_else(|| anyhow::anyhow!("no --metrics-listen address"))?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("binding gRPC port {listen}: {e}"))?;
        let metrics_listener = TcpListener::bind(metrics_listen)
            .await
            .map_err(|e| anyhow::anyhow!("binding metrics port {metrics_listen}: {e}"))?;
        let health_listener = match args.tls.health_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("binding health port {addr}: {e}"))?,
            ),
            None => None,
        };
        let (health, health_server) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_server);
        Ok(Self {
            listener,
            metrics_listener,
            health_listener,
            tls: tls.clone(),
            peer_rpcs: Vec::new(),
            routes,
            service_names: Vec::new(),
            health,
            args: args.clone(),
            metrics,
            verifier,
            public_rpcs: Vec::new(),
            public_http: None,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The plaintext health port, when there is one.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Whether the gRPC port speaks TLS.
    pub fn tls_on(&self) -> bool {
        self.tls.is_on()
    }

    /// Names the RPCs (`/package.Service/Method`) that only the suite's services make:
    /// under mutual TLS they need a client certificate signed by the CA.
    pub fn peer_rpcs(&mut self, rpcs: &[&'static str]) -> &mut Self {
        self.peer_rpcs.extend_from_slice(rpcs);
        self
    }

    /// Serves the public record: `rpcs` (`/package.Service/Method`, the public gRPC
    /// service's methods, added with [`GrpcServer::add_service`] by the caller) pass the
    /// edge without a token, and `http` (its open-data CSV) is served on `listen`, behind
    /// the same admission limit as the gRPC port. Returns the HTTP port's address.
    pub async fn public(
        &mut self,
        rpcs: Vec<String>,
        listen: SocketAddr,
        http: axum::Router,
    ) -> anyhow::Result<SocketAddr> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("binding the public HTTP port {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        self.public_rpcs.extend(rpcs);
        self.public_http = Some((listener, http));
        Ok(addr)
    }

    /// The largest message, in bytes, a service should decode or encode.
    pub fn max_message_bytes(&self) -> usize {
        self.args.max_message_bytes
    }

    /// Adds a gRPC service; its name is reported by health.
    pub fn add_service<S>(&mut self, svc: S) -> &mut Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.service_names.push(S::NAME);
        self.routes.add_service(svc);
        self
    }

    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    async fn set_health(&self, status: ServingStatus) {
        self.health.set_service_status("", status).await;
        for name in &self.service_names {
            self.health.set_service_status(*name, status).await;
        }
    }

    /// Serves until `shutdown` resolves, then: health turns `NOT_SERVING`, the listener
    /// closes after `drain_delay`, in-flight calls get up to `shutdown_grace` to finish.
    /// While serving, health follows the database.
    pub async fn run_until_stopped(
        self,
        db: Db,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let edge = Arc::new(Edge {
            verifier: self.verifier.clone(),
            admission: Arc::new(Semaphore::new(self.args.max_concurrent_requests)),
            request_timeout: self.args.request_timeout.into(),
            reflection_public: !self.args.reflection_requires_auth,
            metrics: self.metrics.clone(),
            mtls: self.tls.mtls(),
            peer_rpcs: self.peer_rpcs.clone(),
            public_rpcs: self.public_rpcs.clone(),
        });
        let tls_config = self.tls.server_config()?;
        let mut routes = self.routes.clone();
        if self.args.reflection {
            let v1 = reflection(&self.service_names).build_v1()?;
            let v1alpha = reflection(&self.service_names).build_v1alpha()?;
            routes.add_service(v1);
            routes.add_service(v1alpha);
        }
        let admission = edge.admission.clone();
        let router = edge_stack(routes.routes().into_axum_router(), edge);
        let routes = Routes::from(router);

        self.set_health(ServingStatus::Serving).await;
        let health_task = tokio::spawn(watch_database(
            db.clone(),
            self.health.clone(),
            self.service_names.clone(),
            self.args.health_check_interval.into(),
        ));

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let metrics_router = self.metrics.router();
        let mut metrics_stop = stop_rx.clone();
        let metrics_task = tokio::spawn(async move {
            let _ = axum::serve(self.metrics_listener, metrics_router)
                .with_graceful_shutdown(async move {
                    let _ = metrics_stop.changed().await;
                })
                .await;
        });

        // The public record's CSV, on its own port, admitted as the gRPC calls are (one
        // limit for the whole process): past it, 429 at once.
        let public_task = self.public_http.map(|(listener, router)| {
            let router = router.layer(axum::middleware::from_fn_with_state(
                admission.clone(),
                public_admission,
            ));
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stop.changed().await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the public HTTP port stopped");
                }
            })
        });

        // Kubernetes' gRPC probes speak no TLS: with TLS on, health alone is also served in
        // plaintext on a port of its own (no edge: nothing there needs a token).
        let probe_task = self.health_listener.map(|listener| {
            let svc = tonic_health::pb::health_server::HealthServer::new(
                tonic_health::server::HealthService::from_health_reporter(self.health.clone()),
            );
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                let served = tonic::transport::Server::builder()
                    .add_service(svc)
                    .serve_with_incoming_shutdown(incoming, async move {
                        let _ = stop.changed().await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the health port stopped");
                }
            })
        });

        let health = self.health.clone();
        let names = self.service_names.clone();
        let drain_delay: Duration = self.args.shutdown_drain_delay.into();
        let grace: Duration = self.args.shutdown_grace.into();
        let mut stop_for_serve = stop_rx.clone();
        let signal_task = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: health NOT_SERVING, then draining");
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            for n in &names {
                health
                    .set_service_status(*n, ServingStatus::NotServing)
                    .await;
            }
            tokio::time::sleep(drain_delay).await;
            let _ = stop_tx.send(true);
        });

        let router = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .max_connection_age(self.args.max_connection_age.into())
            .add_routes(routes);
        let stopped = async move {
            let _ = stop_for_serve.changed().await;
        };
        type Serving = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), tonic::transport::Error>> + Send>,
        >;
        let (mut server, accept_task): (Serving, _) = match tls_config {
            Some(config) => {
                let (incoming, task) = crate::tls::incoming(self.listener, config, stop_rx.clone());
                (
                    Box::pin(router.serve_with_incoming_shutdown(incoming, stopped)),
                    Some(task),
                )
            }
            None => {
                // The builder's `tcp_nodelay` only reaches sockets it accepts itself:
                // without it here, Nagle holds the last segment of a large response for
                // the client's delayed ACK (40 ms).
                let incoming = tonic::transport::server::TcpIncoming::from(self.listener)
                    .with_nodelay(Some(true));
                (
                    Box::pin(router.serve_with_incoming_shutdown(incoming, stopped)),
                    None,
                )
            }
        };
        let mut stop_for_grace = stop_rx.clone();
        let result = tokio::select! {
            r = &mut server => r.map_err(anyhow::Error::from),
            _ = async {
                let _ = stop_for_grace.changed().await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(?grace, "in-flight calls did not finish within the grace period");
                Ok(())
            }
        };
        signal_task.abort();
        health_task.abort();
        if let Some(t) = accept_task {
            t.abort();
        }
        let _ = metrics_task.await;
        if let Some(t) = public_task {
            let _ = t.await;
        }
        if let Some(t) = probe_task {
            let _ = t.await;
        }
        result
    }
}

/// Reflection over the suite's API, and the error-detail and health types grpcurl needs
/// to decode. It lists only the services this server serves (`names`), health and
/// reflection: not the other services of the suite's descriptors, nor the public record
/// where it is off.
fn reflection(names: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mosharekat_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    names
        .iter()
        .chain(&[
            tonic_health::pb::health_server::SERVICE_NAME,
            tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME,
            tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME,
        ])
        .fold(builder, |b, name| b.with_service_name(*name))
}

/// Keeps each service's health in step with the database: `NOT_SERVING` while it does not
/// answer, or, after a write met a storage fault (full disk, read-only file), until a
/// probe write commits again. A storage fault wakes the watch at once.
async fn watch_database(db: Db, health: HealthReporter, names: Vec<&'static str>, every: Duration) {
    let mut serving = true;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = db.storage_changed() => {}
        }
        let ok = db.healthy().await;
        if ok != serving {
            serving = ok;
            let status = if ok {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if ok {
                tracing::info!("the database serves again: SERVING");
            } else {
                tracing::warn!("the database cannot serve: NOT_SERVING");
            }
            // The services follow the database; the process-wide "" entry does not, so
            // that a liveness probe on it does not restart pods for a database outage.
            for n in &names {
                health.set_service_status(*n, status).await;
            }
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    /// With every admission slot taken by slow calls, health and reflection are still
    /// answered, and another call is refused at once with RESOURCE_EXHAUSTED.
    #[tokio::test]
    async fn health_and_reflection_pass_a_full_admission() {
        let (private, public) = crate::auth::generate_keypair().unwrap();
        let token = crate::auth::TokenSigner::from_pem(private.as_bytes())
            .unwrap()
            .mint(
                crate::auth::Role::Admin,
                &crate::auth::TokenRequest {
                    subject: "admin".into(),
                    lifetime: Duration::from_secs(60),
                    ..Default::default()
                },
            )
            .unwrap();
        let edge = Arc::new(Edge {
            verifier: TokenVerifier::from_pem(&[public.as_bytes()]).unwrap(),
            admission: Arc::new(Semaphore::new(2)),
            request_timeout: Duration::from_secs(30),
            reflection_public: true,
            metrics: Metrics::new("test"),
            mtls: false,
            peer_rpcs: Vec::new(),
            public_rpcs: Vec::new(),
        });
        let release = Arc::new(tokio::sync::Notify::new());
        let held = release.clone();
        let ok = || async { http::Response::new(axum::body::Body::empty()) };
        let router = axum::Router::new()
            .route(
                "/pkg.Slow/Call",
                axum::routing::post(move || {
                    let held = held.clone();
                    async move {
                        held.notified().await;
                        http::Response::new(axum::body::Body::empty())
                    }
                }),
            )
            .route("/grpc.health.v1.Health/Check", axum::routing::post(ok))
            .route(
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                axum::routing::post(ok),
            );
        let router = edge_stack(router, edge);
        let call = |path: &str| {
            http::Request::post(path)
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let slow: Vec<_> = (0..2)
            .map(|_| tokio::spawn(router.clone().oneshot(call("/pkg.Slow/Call"))))
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        for path in [
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ] {
            let resp = router.clone().oneshot(call(path)).await.unwrap();
            assert_eq!(grpc_code(&resp), "0", "{path}");
        }
        let excess = router
            .clone()
            .oneshot(call("/pkg.Slow/Call"))
            .await
            .unwrap();
        assert_eq!(
            grpc_code(&excess),
            "8",
            "the excess is RESOURCE_EXHAUSTED at once"
        );
        release.notify_waiters();
        for s in slow {
            s.await.unwrap().unwrap();
        }
    }

    /// Under mutual TLS: a peer RPC needs a certificate; a SERVICE token needs its own
    /// service's certificate on any RPC; an end user's token needs none elsewhere.
    #[test]
    fn client_certificates_under_mutual_tls() {
        let principal = |role: Role, service: Option<&str>| Principal {
            subject: "s".into(),
            role,
            institution: None,
            member: None,
            service: service.map(str::to_owned),
            authority: None,
            on_behalf_of: None,
        };
        let cert = |id: Option<&str>| TlsPeer {
            remote: None,
            certified: true,
            identity: id.map(str::to_owned),
        };
        let admin = principal(Role::Admin, None);
        let referral = principal(Role::Service, Some("referral"));
        let refused = |r: Result<(), ApiError>| matches!(r, Err(ApiError::Unauthenticated(_)));
        // End users: public RPCs without a certificate; peer RPCs with any the CA signed.
        assert!(check_certificate(false, Some(&admin), None).is_ok());
        assert!(check_certificate(false, Some(&admin), Some(&TlsPeer::default())).is_ok());
        assert!(refused(check_certificate(true, Some(&admin), None)));
        assert!(refused(check_certificate(
            true,
            Some(&admin),
            Some(&TlsPeer::default())
        )));
        assert!(check_certificate(true, Some(&admin), Some(&cert(Some("operator")))).is_ok());
        // Services: their own certificate, on every RPC.
        for peer_rpc in [false, true] {
            assert!(
                check_certificate(peer_rpc, Some(&referral), Some(&cert(Some("referral")))).is_ok()
            );
            assert!(refused(check_certificate(peer_rpc, Some(&referral), None)));
            assert!(refused(check_certificate(
                peer_rpc,
                Some(&referral),
                Some(&cert(Some("meeting")))
            )));
            assert!(refused(check_certificate(
                peer_rpc,
                Some(&referral),
                Some(&cert(None))
            )));
        }
    }

    /// tonic's refusals, told by their shape: its OUT_OF_RANGE (a request too large) is
    /// RESOURCE_EXHAUSTED, its INTERNAL (a request it could not read) INVALID_ARGUMENT
    /// naming the field the codec found; the suite's own errors pass untouched.
    #[tokio::test]
    async fn tonic_refusals_become_the_suites_errors() {
        use tonic_types::StatusExt as _;
        let undecodable = || {
            let mut s = tonic::Status::internal("whatever tonic says");
            s.metadata_mut().insert(
                mosharekat_api::codec::UNDECODABLE_FIELD,
                "filing.subject".parse().unwrap(),
            );
            s
        };
        let router = axum::Router::new()
            .route(
                "/pkg.S/TooLarge",
                axum::routing::post(|| async {
                    tonic::Status::out_of_range("too big").into_http::<axum::body::Body>()
                }),
            )
            .route(
                "/pkg.S/Undecodable",
                axum::routing::post(move || async move {
                    undecodable().into_http::<axum::body::Body>()
                }),
            )
            .route(
                "/pkg.S/Unframed",
                axum::routing::post(|| async {
                    tonic::Status::internal("eof").into_http::<axum::body::Body>()
                }),
            )
            .route(
                "/pkg.S/OwnBug",
                axum::routing::post(|| async {
                    ApiError::internal(anyhow::anyhow!("a bug"))
                        .to_status("t")
                        .into_http::<axum::body::Body>()
                }),
            )
            .layer(axum::middleware::from_fn(tonic_refusals));
        let status = |path: &'static str| {
            let router = router.clone();
            async move {
                let resp = router
                    .oneshot(
                        http::Request::post(path)
                            .body(axum::body::Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                tonic::Status::from_header_map(resp.headers()).unwrap()
            }
        };
        let s = status("/pkg.S/TooLarge").await;
        assert_eq!(
            (s.code(), s.message()),
            (tonic::Code::ResourceExhausted, "too big")
        );
        assert!(s.get_error_details().localized_message().is_some());
        let s = status("/pkg.S/Undecodable").await;
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        let fields: Vec<_> = s
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|f| f.field.clone())
            .collect();
        assert_eq!(fields, ["filing.subject"]);
        let s = status("/pkg.S/Unframed").await;
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            s.get_error_details()
                .bad_request()
                .unwrap()
                .field_violations[0]
                .field,
            "request"
        );
        assert_eq!(status("/pkg.S/OwnBug").await.code(), tonic::Code::Internal);
    }

    /// The public record's methods pass the edge without a token (a bad one is not even
    /// read); every other call still needs one, and with no public methods configured
    /// the same path is refused like any other.
    #[tokio::test]
    async fn public_methods_pass_without_a_token() {
        let (_, public) = crate::auth::generate_keypair().unwrap();
        let edge = |public_rpcs: Vec<String>| {
            Arc::new(Edge {
                verifier: TokenVerifier::from_pem(&[public.as_bytes()]).unwrap(),
                admission: Arc::new(Semaphore::new(8)),
                request_timeout: Duration::from_secs(30),
                reflection_public: true,
                metrics: Metrics::new("test"),
                mtls: false,
                peer_rpcs: Vec::new(),
                public_rpcs,
            })
        };
        let ok = || async { http::Response::new(axum::body::Body::empty()) };
        let routes = || {
            axum::Router::new()
                .route("/pkg.PublicRecordService/Verify", axum::routing::post(ok))
                .route("/pkg.Other/Call", axum::routing::post(ok))
        };
        let call = |path: &str, token: Option<&str>| {
            let mut r = http::Request::post(path);
            if let Some(t) = token {
                r = r.header("authorization", format!("Bearer {t}"));
            }
            r.body(axum::body::Body::empty()).unwrap()
        };
        let on = edge_stack(
            routes(),
            edge(vec!["/pkg.PublicRecordService/Verify".into()]),
        );
        let off = edge_stack(routes(), edge(Vec::new()));
        let code = |r: Response| grpc_code(&r).to_owned();
        let path = "/pkg.PublicRecordService/Verify";
        assert_eq!(
            code(on.clone().oneshot(call(path, None)).await.unwrap()),
            "0"
        );
        assert_eq!(
            code(on.clone().oneshot(call(path, Some("bad"))).await.unwrap()),
            "0"
        );
        assert_eq!(
            code(
                on.clone()
                    .oneshot(call("/pkg.Other/Call", None))
                    .await
                    .unwrap()
            ),
            "16"
        );
        assert_eq!(code(off.oneshot(call(path, None)).await.unwrap()), "16");
    }

    #[test]
    fn grpc_timeouts() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "5", "S", "5x", "-5S", "1234567890S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }
}

/// A service serving in the background of this process until stopped, as tests,
/// benchmarks and tools run one.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Spawns `run`, handing it the future that resolves when [`Running::stop`] is called
    /// (or the handle is dropped).
    pub fn spawn<F, Fut>(addr: SocketAddr, metrics_addr: SocketAddr, run: F) -> Self
    where
        F: FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let stopped = Box::pin(async move {
            let _ = rx.await;
        });
        Self {
            addr,
            metrics_addr,
            stop: Some(tx),
            task: Some(tokio::spawn(run(stopped))),
        }
    }

    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it as SIGTERM would, and waits until it has.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(t) => t.await?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Adds tonic-generated services to a [`GrpcServer`], each held to the server's message
/// size limit both ways: `add_limited!(server; ServiceServer::new(app), other.into_server())`.
/// A macro because the generated servers share no trait for their limits.
#[macro_export]
macro_rules! add_limited {
    ($server:expr; $($svc:expr),+ $(,)?) => {{
        let server: &mut $crate::server::GrpcServer = $server;
        let max = server.max_message_bytes();
        $(
            server.add_service(
                $svc.max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            );
        )+
    }};
}
