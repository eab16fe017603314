//! Transport security: TLS on the gRPC port, mutual TLS between the suite's services, and
//! the peer clients' side of both.
//!
//! - The certificate and key come from PEM files and are re-read when the files change
//!   (cert-manager rotates them in place): each handshake looks at the files' metadata, at
//!   most once a second, and a changed pair that loads replaces the old one; one that does
//!   not (a key that does not match yet, half way through a rotation) is retried at the next
//!   change, and the old pair serves meanwhile. The CA bundle is read at start.
//! - **A certificate's identity** is the first label of its first DNS subject alternative
//!   name: `referral` for `referral`, `referral.mosharekat.svc`, …. A service's certificate
//!   names it first; further names (`localhost`, IP addresses) may follow.
//! - Under mutual TLS a service asks every client for a certificate but also admits those
//!   without one (end users' tools, with server-side TLS only); the edge then requires a
//!   certificate the CA signed on the peer RPCs, and a `SERVICE` token is honoured only
//!   from a certificate whose identity is the token's `service` (see `server.rs`).
//! - Peer clients verify the server's certificate for the URL's host, as any TLS client
//!   does, and that its identity is the peer they mean to call; under mutual TLS they
//!   present the service's own certificate (re-read like the server's).
//!
//! tonic's own TLS takes a fixed identity, so the server accepts TLS itself (rustls via
//! tokio-rustls) and hands tonic the decrypted streams, and the clients connect through a
//! connector of their own.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::Connected;

/// How often, at most, the certificate files are looked at for a change.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The longest a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS settings of a service. All off by default: plaintext, as before.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// PEM certificate chain of this service (its own certificate first): turns TLS on for
    /// the gRPC port, and is the client certificate under --mtls. Its first DNS name must
    /// be the service's name (registry, referral, meeting). Re-read when the file changes.
    #[arg(long = "tls-cert", env = "TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1). Re-read when it changes.
    #[arg(long = "tls-key", env = "TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificates that verify the peers: the servers this service calls over
    /// https:// and, under --mtls, the client certificates of its callers.
    #[arg(long = "tls-ca", env = "TLS_CA")]
    pub tls_ca: Option<PathBuf>,

    /// Mutual TLS between services: peer RPCs need a client certificate signed by --tls-ca,
    /// a SERVICE token must come with the certificate of the service it names, and this
    /// service presents its own certificate to its peers (whose URLs must be https://).
    /// Needs --tls-cert, --tls-key and --tls-ca.
    #[arg(long = "mtls", env = "MTLS", default_value_t = false, action = clap::ArgAction::Set)]
    pub mtls: bool,

    /// Plaintext address serving only grpc.health.v1.Health, without authentication, for
    /// Kubernetes' gRPC probes (which cannot speak TLS) [default with TLS on: 0.0.0.0 and
    /// the service's health port: registry 50061, referral 50062, meeting 50063; off
    /// otherwise].
    #[arg(long = "health-listen", env = "HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
}

impl TlsArgs {
    /// Whether the gRPC port speaks TLS.
    pub fn is_on(&self) -> bool {
        self.tls_cert.is_some() || self.tls_key.is_some()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The identity of a certificate: the first label of its first DNS name, lower-case;
/// `None` when it has no DNS name (or starts with a wildcard).
pub fn certificate_identity(der: &CertificateDer<'_>) -> Option<String> {
    let cert = webpki::EndEntityCert::try_from(der).ok()?;
    let first = cert.valid_dns_names().next()?;
    let label = first.split('.').next()?;
    (!label.is_empty() && label != "*").then(|| label.to_ascii_lowercase())
}

fn read_file(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {what} {}: {e}", path.display()))
}

/// Every certificate of a PEM file (at least one).
pub fn read_certificates(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = read_file(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{what} {} is not valid PEM: {e}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{what} {} holds no PEM CERTIFICATE",
        path.display()
    );
    Ok(certs)
}

/// The CA certificates of a PEM file, as trust anchors.
pub fn read_roots(path: &Path) -> anyhow::Result<RootCertStore> {
    let certs = read_certificates(path, "TLS CA")?;
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    anyhow::ensure!(
        added > 0 && ignored == 0,
        "TLS CA {}: {ignored} of its certificates cannot be parsed",
        path.display()
    );
    Ok(roots)
}

/// A certificate chain and its private key, checked to belong together.
fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> anyhow::Result<Arc<CertifiedKey>> {
    let certs = read_certificates(cert_path, "TLS certificate")?;
    webpki::EndEntityCert::try_from(&certs[0]).map_err(|e| {
        anyhow::anyhow!(
            "TLS certificate {} cannot be parsed: {e:?}",
            cert_path.display()
        )
    })?;
    let pem = read_file(key_path, "TLS key")?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        anyhow::anyhow!(
            "TLS key {} holds no usable PEM private key: {e}",
            key_path.display()
        )
    })?;
    let signing = provider.key_provider.load_private_key(key).map_err(|e| {
        anyhow::anyhow!(
            "TLS key {} is not a key this server can use: {e}",
            key_path.display()
        )
    })?;
    let pair = CertifiedKey::new(certs, signing);
    match pair.keys_match() {
        Ok(()) => Ok(Arc::new(pair)),
        // A key type whose public half rustls cannot derive: the handshake will tell.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(pair))
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            anyhow::bail!(
                "TLS key {} does not match the certificate {}",
                key_path.display(),
                cert_path.display()
            )
        }
        Err(e) => anyhow::bail!(
            "TLS certificate {} cannot be used with its key: {e}",
            cert_path.display()
        ),
    }
}

/// What tells that a file changed: its modification time, length and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp(Option<SystemTime>, u64, u64);

fn stamp(path: &Path) -> io::Result<FileStamp> {
    let m = std::fs::metadata(path)?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Ok(FileStamp(m.modified().ok(), m.len(), ino))
}

#[derive(Debug)]
struct CertState {
    pair: Arc<CertifiedKey>,
    stamps: (FileStamp, FileStamp),
    /// Stamps of a change that did not load, not tried again until the files change again.
    failed: Option<(FileStamp, FileStamp)>,
    checked: Instant,
}

/// A certificate and key from files, re-read when they change: the server's certificate
/// and, under mutual TLS, the client certificate the service presents to its peers.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    state: Mutex<CertState>,
}

impl ReloadingCert {
    /// Loads the pair, with a clear error for a missing file or a key that does not match.
    pub fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<Arc<Self>> {
        let provider = provider();
        let stamps = (
            stamp(cert_path).map_err(|e| {
                anyhow::anyhow!("reading TLS certificate {}: {e}", cert_path.display())
            })?,
            stamp(key_path)
                .map_err(|e| anyhow::anyhow!("reading TLS key {}: {e}", key_path.display()))?,
        );
        let pair = load_pair(cert_path, key_path, &provider)?;
        Ok(Arc::new(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            state: Mutex::new(CertState {
                pair,
                stamps,
                failed: None,
                checked: Instant::now(),
            }),
        }))
    }

    /// The pair in force, re-read first if the files changed (looked at once a second at
    /// most).
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
            s.checked = Instant::now();
            if let (Ok(c), Ok(k)) = (stamp(&self.cert_path), stamp(&self.key_path)) {
                let now = (c, k);
                if now != s.stamps && Some(now) != s.failed {
                    match load_pair(&self.cert_path, &self.key_path, &self.provider) {
                        Ok(pair) => {
                            tracing::info!(
                                cert = %self.cert_path.display(),
                                identity = pair.end_entity_cert().ok().and_then(certificate_identity),
                                "TLS certificate reloaded"
                            );
                            s.pair = pair;
                            s.stamps = now;
                            s.failed = None;
                        }
                        Err(e) => {
                            tracing::warn!(
                                error = format!("{e:#}"),
                                "the TLS certificate files changed but do not load; the previous certificate stays in force"
                            );
                            s.failed = Some(now);
                        }
                    }
                }
            }
        }
        s.pair.clone()
    }

    /// The identity of the certificate in force.
    pub fn identity(&self) -> Option<String> {
        self.current()
            .end_entity_cert()
            .ok()
            .and_then(certificate_identity)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for ReloadingCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A service's TLS, loaded from its settings: off, server-side, or mutual.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    cert: Option<Arc<ReloadingCert>>,
    roots: Option<Arc<RootCertStore>>,
    mtls: bool,
}

impl Tls {
    /// Loads and checks the settings of `service`: every file readable, the key matching
    /// the certificate, the certificate naming the service, mutual TLS with all it needs.
    pub fn load(args: &TlsArgs, service: &str) -> anyhow::Result<Self> {
        let cert = match (&args.tls_cert, &args.tls_key) {
            (Some(c), Some(k)) => Some(ReloadingCert::load(c, k)?),
            (None, None) => None,
            (Some(_), None) => anyhow::bail!("--tls-cert is given without --tls-key"),
            (None, Some(_)) => anyhow::bail!("--tls-key is given without --tls-cert"),
        };
        let roots = args
            .tls_ca
            .as_deref()
            .map(read_roots)
            .transpose()?
            .map(Arc::new);
        if args.mtls {
            anyhow::ensure!(
                cert.is_some() && roots.is_some(),
                "--mtls needs --tls-cert, --tls-key and --tls-ca"
            );
        }
        if let Some(cert) = &cert {
            let identity = cert.identity();
            anyhow::ensure!(
                identity.as_deref() == Some(service),
                "the TLS certificate {} names {} (its first DNS name), not this service {service:?}: peers check that name",
                args.tls_cert.as_deref().unwrap_or(Path::new("")).display(),
                identity.map_or("no one".to_owned(), |i| format!("{i:?}")),
            );
            tracing::info!(service, mtls = args.mtls, "TLS on the gRPC port");
        }
        Ok(Self {
            cert,
            roots,
            mtls: args.mtls,
        })
    }

    /// Whether the gRPC port speaks TLS.
    pub fn is_on(&self) -> bool {
        self.cert.is_some()
    }

    /// Whether mutual TLS is on.
    pub fn mtls(&self) -> bool {
        self.mtls
    }

    /// The server's rustls configuration (HTTP/2 only), `None` when TLS is off.
    pub fn server_config(&self) -> anyhow::Result<Option<Arc<ServerConfig>>> {
        let Some(cert) = &self.cert else {
            return Ok(None);
        };
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match (&self.roots, self.mtls) {
            (Some(roots), true) => {
                // Asked, not required: end users connect without one; the edge decides
                // per RPC.
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider)
                    .allow_unauthenticated()
                    .build()?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(cert.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Some(Arc::new(config)))
    }

    /// The client TLS for calling `peer` (its service name) at `url`: `None` for an
    /// http:// URL, which mutual TLS does not allow.
    pub fn client_for(&self, url: &str, peer: &str) -> anyhow::Result<Option<ClientTls>> {
        if !url.starts_with("https://") {
            anyhow::ensure!(
                !self.mtls,
                "with --mtls on, {peer} is called over TLS: its URL {url} must be https://"
            );
            return Ok(None);
        }
        let roots = self.roots.clone().ok_or_else(|| {
            anyhow::anyhow!("{peer} at {url} is https://: --tls-ca must say which CA signs it")
        })?;
        let identity = if self.mtls { self.cert.clone() } else { None };
        ClientTls::new(roots, identity, peer).map(Some)
    }
}

/// What a TLS connection tells of its client, in every request's extensions.
#[derive(Debug, Clone, Default)]
pub struct TlsPeer {
    pub remote: Option<SocketAddr>,
    /// Whether it presented a certificate the CA signed (asked for under mutual TLS only).
    pub certified: bool,
    /// That certificate's identity (see [`certificate_identity`]).
    pub identity: Option<String>,
}

/// A server-side TLS connection, as tonic serves it.
pub struct TlsConn {
    inner: tokio_rustls::server::TlsStream<TcpStream>,
    peer: TlsPeer,
}

impl Connected for TlsConn {
    type ConnectInfo = TlsPeer;
    fn connect_info(&self) -> TlsPeer {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Accepts TCP connections on `listener` and their TLS handshakes (each on its own task,
/// so a slow client holds up no other), until `stop` changes; the connections arrive on
/// the returned stream.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (
    tokio_stream::wrappers::ReceiverStream<io::Result<TlsConn>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let task = tokio::spawn(async move {
        loop {
            let (tcp, remote) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: pause rather than spin.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                // The listener closes with this task, as tonic's own would.
                _ = stop.changed() => return,
            };
            // Without it Nagle holds the last segment of a large response for the
            // client's delayed ACK (see server.rs).
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let client = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first());
                        let peer = TlsPeer {
                            remote: Some(remote),
                            certified: client.is_some(),
                            identity: client.and_then(certificate_identity),
                        };
                        let _ = tx
                            .send(Ok(TlsConn {
                                inner: stream,
                                peer,
                            }))
                            .await;
                    }
                    Ok(Err(e)) => {
                        tracing::info!(%remote, error = %e, "TLS handshake refused");
                    }
                    Err(_) => tracing::info!(%remote, "TLS handshake timed out"),
                }
            });
        }
    });
    (tokio_stream::wrappers::ReceiverStream::new(rx), task)
}

/// Verifies a peer server as any TLS client does (chain to the CA, the URL's host), and
/// that its certificate's identity is the service meant.
#[derive(Debug)]
struct PeerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    peer: String,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ok = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        match certificate_identity(end_entity) {
            Some(id) if id == self.peer => Ok(ok),
            other => Err(rustls::Error::General(format!(
                "the server's certificate is {}, not {:?}'s",
                other.map_or("no service's".to_owned(), |i| format!("{i:?}'s")),
                self.peer
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// How a client calls one peer over TLS.
#[derive(Clone, Debug)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
}

impl ClientTls {
    /// Trusting `roots`, expecting `peer`'s certificate, presenting `identity` if given.
    pub fn new(
        roots: Arc<RootCertStore>,
        identity: Option<Arc<ReloadingCert>>,
        peer: &str,
    ) -> anyhow::Result<Self> {
        let provider = provider();
        let verifier = PeerVerifier {
            inner: WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build()?,
            peer: peer.to_owned(),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
        let mut config = match identity {
            Some(cert) => builder.with_client_cert_resolver(cert),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// From files: the CA, and a client certificate and key to present, if any.
    pub fn from_files(
        ca: &Path,
        identity: Option<(&Path, &Path)>,
        peer: &str,
    ) -> anyhow::Result<Self> {
        let roots = Arc::new(read_roots(ca)?);
        let identity = identity
            .map(|(c, k)| ReloadingCert::load(c, k))
            .transpose()?;
        Self::new(roots, identity, peer)
    }

    /// A connector to the `https://host:port` of `url`, and the plain URI tonic is to be
    /// given for it (tonic would refuse https:// without its own TLS).
    pub fn connector(&self, url: &str) -> anyhow::Result<(TlsConnector, String)> {
        let uri: http::Uri = url.parse()?;
        anyhow::ensure!(
            uri.scheme_str() == Some("https"),
            "{url} is not an https:// URL"
        );
        let host = uri
            .host()
            .ok_or_else(|| anyhow::anyhow!("{url} names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let server_name = ServerName::try_from(host.clone())
            .map_err(|e| anyhow::anyhow!("{url}: {host} is not a server name: {e}"))?;
        let authority = uri
            .authority()
            .map(|a| a.host().to_owned())
            .unwrap_or_default();
        Ok((
            TlsConnector {
                config: self.config.clone(),
                server_name,
                host,
                port,
            },
            format!("http://{authority}:{port}"),
        ))
    }
}

/// Connects over TCP (no Nagle) and TLS to one peer, whatever URI tonic passes.
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    host: String,
    port: u16,
}

impl tower::Service<http::Uri> for TlsConnector {
    type Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let (name, host, port) = (self.server_name.clone(), self.host.clone(), self.port);
        Box::pin(async move {
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let tls = connector.connect(name, tcp).await?;
            Ok(hyper_util::rt::TokioIo::new(tls))
        })
    }
}

/// A local certificate authority and the certificates it signs: the launcher's `--tls`
/// and the tests.
#[cfg(any(test, feature = "local-ca"))]
pub mod local {
    use std::net::IpAddr;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, SystemTime};

    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };

    /// A certificate and key written as PEM files.
    #[derive(Debug, Clone)]
    pub struct CertFiles {
        pub cert: PathBuf,
        pub key: PathBuf,
    }

    /// A CA that signs certificates for the names given.
    pub struct LocalCa {
        issuer: Issuer<'static, KeyPair>,
        pem: String,
    }

    impl std::fmt::Debug for LocalCa {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("LocalCa(..)")
        }
    }

    fn at(t: SystemTime) -> time::OffsetDateTime {
        time::OffsetDateTime::from(t)
    }

    impl LocalCa {
        /// A new CA named `name`, valid ten years.
        pub fn new(name: &str) -> anyhow::Result<Self> {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name.push(DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let now = SystemTime::now();
            params.not_before = at(now - Duration::from_secs(3600));
            params.not_after = at(now + Duration::from_secs(10 * 365 * 86_400));
            let cert = params.self_signed(&key)?;
            Ok(Self {
                pem: cert.pem(),
                issuer: Issuer::new(params, key),
            })
        }

        /// The CA certificate, PEM.
        pub fn pem(&self) -> &str {
            &self.pem
        }

        /// A certificate for both server and client use, for `names` (DNS names or IP
        /// addresses; the first is its identity), valid from `not_before` to `not_after`:
        /// (certificate PEM, key PEM).
        pub fn issue_between(
            &self,
            names: &[&str],
            not_before: SystemTime,
            not_after: SystemTime,
        ) -> anyhow::Result<(String, String)> {
            let key = KeyPair::generate()?;
            let mut params =
                CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
            if let Some(first) = names.first().filter(|n| n.parse::<IpAddr>().is_err()) {
                params.distinguished_name.push(DnType::CommonName, *first);
            }
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.not_before = at(not_before);
            params.not_after = at(not_after);
            let cert = params.signed_by(&key, &self.issuer)?;
            Ok((cert.pem(), key.serialize_pem()))
        }

        /// A certificate valid a year from an hour ago.
        pub fn issue(&self, names: &[&str]) -> anyhow::Result<(String, String)> {
            let now = SystemTime::now();
            self.issue_between(
                names,
                now - Duration::from_secs(3600),
                now + Duration::from_secs(365 * 86_400),
            )
        }

        /// Writes the CA certificate to `path`.
        pub fn write_ca(&self, path: &Path) -> anyhow::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, &self.pem)?;
            Ok(())
        }

        /// Issues a certificate (see [`LocalCa::issue`]) into `dir/<stem>.pem` and
        /// `dir/<stem>.key.pem` (mode 0600).
        pub fn issue_files(
            &self,
            dir: &Path,
            stem: &str,
            names: &[&str],
        ) -> anyhow::Result<CertFiles> {
            let (cert, key) = self.issue(names)?;
            write_pair(dir, stem, &cert, &key)
        }
    }

    /// Writes a certificate and its key as `dir/<stem>.pem` and `dir/<stem>.key.pem`.
    pub fn write_pair(dir: &Path, stem: &str, cert: &str, key: &str) -> anyhow::Result<CertFiles> {
        std::fs::create_dir_all(dir)?;
        let files = CertFiles {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}.key.pem")),
        };
        std::fs::write(&files.cert, cert)?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        std::io::Write::write_all(&mut opts.open(&files.key)?, key.as_bytes())?;
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::local::LocalCa;
    use super::*;

    fn args(cert: &Path, key: &Path, ca: Option<&Path>, mtls: bool) -> TlsArgs {
        TlsArgs {
            tls_cert: Some(cert.to_owned()),
            tls_key: Some(key.to_owned()),
            tls_ca: ca.map(Path::to_owned),
            mtls,
            health_listen: None,
        }
    }

    fn err(r: anyhow::Result<Tls>) -> String {
        format!("{:#}", r.expect_err("refused"))
    }

    /// Start-up refuses, saying why: a missing file, a key of another certificate, an
    /// unreadable CA, mutual TLS without a CA, a certificate of another service.
    #[test]
    fn clear_start_up_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca = LocalCa::new("test CA").unwrap();
        ca.write_ca(&d.join("ca.pem")).unwrap();
        let reg = ca
            .issue_files(d, "registry", &["registry", "localhost"])
            .unwrap();
        let other = ca.issue_files(d, "other", &["referral"]).unwrap();
        let ca_path = d.join("ca.pem");

        assert!(Tls::load(&args(&reg.cert, &reg.key, Some(&ca_path), true), "registry").is_ok());

        let e = err(Tls::load(
            &args(&d.join("missing.pem"), &reg.key, None, false),
            "registry",
        ));
        assert!(
            e.contains("missing.pem") && e.contains("reading TLS certificate"),
            "{e}"
        );
        let e = err(Tls::load(
            &args(&reg.cert, &other.key, None, false),
            "registry",
        ));
        assert!(e.contains("does not match the certificate"), "{e}");
        std::fs::write(d.join("garbage.pem"), "not a key").unwrap();
        let e = err(Tls::load(
            &args(&reg.cert, &d.join("garbage.pem"), None, false),
            "registry",
        ));
        assert!(e.contains("no usable PEM private key"), "{e}");
        let e = err(Tls::load(
            &args(&reg.cert, &reg.key, Some(&d.join("nope.pem")), true),
            "registry",
        ));
        assert!(
            e.contains("reading TLS CA") && e.contains("nope.pem"),
            "{e}"
        );
        let e = err(Tls::load(
            &args(&reg.cert, &reg.key, Some(&d.join("garbage.pem")), true),
            "registry",
        ));
        assert!(e.contains("no PEM CERTIFICATE"), "{e}");
        let e = err(Tls::load(
            &args(&reg.cert, &reg.key, None, true),
            "registry",
        ));
        assert!(e.contains("--mtls needs"), "{e}");
        let e = err(Tls::load(
            &args(&other.cert, &other.key, None, false),
            "registry",
        ));
        assert!(e.contains("names \"referral\""), "{e}");
        let mut half = args(&reg.cert, &reg.key, None, false);
        half.tls_key = None;
        assert!(err(Tls::load(&half, "registry")).contains("without --tls-key"));

        // Peer URLs: https needs the CA; mutual TLS needs https.
        let plain = Tls::load(&args(&reg.cert, &reg.key, None, false), "registry").unwrap();
        assert!(
            plain
                .client_for("http://x:1", "referral")
                .unwrap()
                .is_none()
        );
        assert!(plain.client_for("https://x:1", "referral").is_err());
        let mutual =
            Tls::load(&args(&reg.cert, &reg.key, Some(&ca_path), true), "registry").unwrap();
        assert!(mutual.client_for("http://x:1", "referral").is_err());
        assert!(
            mutual
                .client_for("https://x:1", "referral")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn identity_is_the_first_label_of_the_first_dns_name() {
        let ca = LocalCa::new("test CA").unwrap();
        let id = |names: &[&str]| {
            let (pem, _) = ca.issue(names).unwrap();
            let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
            certificate_identity(&der)
        };
        assert_eq!(
            id(&["referral.mosharekat.svc", "referral"]).as_deref(),
            Some("referral")
        );
        assert_eq!(
            id(&["meeting", "localhost", "127.0.0.1"]).as_deref(),
            Some("meeting")
        );
        assert_eq!(id(&["127.0.0.1", "registry"]).as_deref(), Some("registry"));
        assert_eq!(id(&["127.0.0.1"]), None);
    }

    /// A pair replaced on disk is in force after the next check; one whose key does not
    /// match is not, and the previous stays.
    #[test]
    fn a_replaced_certificate_is_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::new("test CA").unwrap();
        let first = ca.issue_files(dir.path(), "svc", &["registry"]).unwrap();
        let cert = ReloadingCert::load(&first.cert, &first.key).unwrap();
        let der = |c: &ReloadingCert| c.current().cert[0].as_ref().to_vec();
        let before = der(&cert);
        // Half a rotation: a new certificate, the old key.
        let (new_cert, new_key) = ca.issue(&["registry"]).unwrap();
        std::fs::write(&first.cert, &new_cert).unwrap();
        std::thread::sleep(RELOAD_CHECK_INTERVAL + Duration::from_millis(50));
        assert_eq!(der(&cert), before, "a mismatched pair is not taken");
        // The rest of it.
        std::fs::write(&first.key, &new_key).unwrap();
        std::thread::sleep(RELOAD_CHECK_INTERVAL + Duration::from_millis(50));
        let after = der(&cert);
        assert_ne!(after, before, "the new pair is in force");
        assert_eq!(
            after,
            CertificateDer::from_pem_slice(new_cert.as_bytes())
                .unwrap()
                .as_ref()
        );
    }
}
