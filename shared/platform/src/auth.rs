//! Who is calling: JWT bearer tokens (EdDSA or RSA), the roles of `domain.md`, and the
//! keys and tokens an operator makes with the `keys` and `token` subcommands.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The `iss` of every token of the suite, and the `aud` of a token for all its services.
pub const ISSUER: &str = "mosharekat";
pub const AUDIENCE: &str = "mosharekat";

/// The services of the suite: each accepts tokens whose `aud` is its name or [`AUDIENCE`].
pub const SERVICES: [&str; 3] = ["registry", "referral", "meeting"];

/// Metadata key by which a service passes on the end user it acts for (audit only).
pub const ON_BEHALF_OF_HEADER: &str = "x-on-behalf-of";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Admin,
    RegistryOfficer,
    JudicialOfficer,
    CenterOfficer,
    Institution,
    Secretary,
    Member,
    Auditor,
    Service,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::Admin,
        Role::RegistryOfficer,
        Role::JudicialOfficer,
        Role::CenterOfficer,
        Role::Institution,
        Role::Secretary,
        Role::Member,
        Role::Auditor,
        Role::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::RegistryOfficer => "REGISTRY_OFFICER",
            Role::JudicialOfficer => "JUDICIAL_OFFICER",
            Role::CenterOfficer => "CENTER_OFFICER",
            Role::Institution => "INSTITUTION",
            Role::Secretary => "SECRETARY",
            Role::Member => "MEMBER",
            Role::Auditor => "AUDITOR",
            Role::Service => "SERVICE",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}

/// The claims of a suite token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    /// For `INSTITUTION`: the institution's id (not its resource name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institution: Option<String>,
    /// For `MEMBER`: the working-group member's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// For `SERVICE`: which service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// For `JUDICIAL_OFFICER`: the prosecutor's office or court the officer serves; a
    /// token without it serves every authority of the province.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    /// Not valid before (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    pub exp: u64,
}

/// The authenticated caller of one RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub role: Role,
    pub institution: Option<String>,
    pub member: Option<String>,
    pub service: Option<String>,
    pub authority: Option<String>,
    /// The end user a `SERVICE` caller acts for, as it says (kept for the audit record).
    pub on_behalf_of: Option<String>,
}

impl Principal {
    pub fn from_claims(c: Claims) -> Result<Self, ApiError> {
        let need = |v: &Option<String>, claim: &str| {
            if v.as_deref().is_none_or(str::is_empty) {
                Err(ApiError::Unauthenticated(format!(
                    "a {} token must carry the {claim} claim",
                    c.role
                )))
            } else {
                Ok(())
            }
        };
        match c.role {
            Role::Institution => need(&c.institution, "institution")?,
            Role::Member => need(&c.member, "member")?,
            Role::Service => need(&c.service, "service")?,
            _ => {}
        }
        Ok(Self {
            subject: c.sub,
            role: c.role,
            institution: c.institution,
            member: c.member,
            service: c.service,
            authority: c.authority,
            on_behalf_of: None,
        })
    }

    /// Refuses with `PERMISSION_DENIED` unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "role {} may not do this",
                self.role
            )))
        }
    }

    pub fn is(&self, role: Role) -> bool {
        self.role == role
    }

    /// For an `INSTITUTION` caller: whether the institution with id `id` is its own.
    pub fn owns_institution(&self, id: &str) -> bool {
        self.role == Role::Institution && self.institution.as_deref() == Some(id)
    }
}

/// One trusted verification key, and its id.
#[derive(Clone)]
struct TrustedKey {
    kid: String,
    key: DecodingKey,
    alg: Algorithm,
}

/// The keys trusted at one time. Every change of the set is a new generation, so that a
/// token remembered under an older set is checked again.
struct KeySet {
    generation: u64,
    keys: Vec<TrustedKey>,
}

/// A token whose signature was checked, as remembered.
struct Remembered {
    principal: Principal,
    exp: u64,
    aud: String,
    generation: u64,
}

struct Shared {
    /// Files and folders the keys come from; empty for keys given in memory.
    sources: Vec<PathBuf>,
    keys: RwLock<Arc<KeySet>>,
    verified: Mutex<HashMap<String, Remembered>>,
}

/// Checks bearer tokens against the configured public keys.
///
/// Keys are chosen by the token's `kid` (see [`key_id`]); a token without one (minted
/// before tokens carried it) is tried against every key. The keys are read again by
/// [`TokenVerifier::reload`] (every few seconds once [`TokenVerifier::watch`] runs), so a
/// key can be added before its signer starts and retired after, without a restart.
///
/// A token whose signature has been checked is remembered (by its exact text) until it
/// expires or the key set changes: callers send the same token on every call, and an
/// Ed25519 check costs more CPU than the rest of a simple read.
#[derive(Clone)]
pub struct TokenVerifier {
    shared: Arc<Shared>,
    /// The `aud` values accepted: the suite, and the service's own name once
    /// [`TokenVerifier::for_service`] has named it.
    audiences: Arc<Vec<String>>,
}

/// The clock difference between the token's issuer and this service that is forgiven, for
/// `exp`, `nbf` and `iat` alike.
pub const CLOCK_LEEWAY_SECS: u64 = 30;

/// Verified tokens remembered at most; beyond it, expired ones go, then all.
const VERIFIED_TOKENS: usize = 10_000;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The id (`kid`) of a public key: the first 16 characters of the unpadded base64url
/// SHA-256 of its DER encoding, as its PEM file holds it (SubjectPublicKeyInfo for
/// `PUBLIC KEY`, PKCS#1 for `RSA PUBLIC KEY`). Derived from the key itself, so that the
/// signer (from its private key) and every verifier (from the public file, whatever it is
/// called) agree on it without configuration.
pub fn key_id(der: &[u8]) -> String {
    use base64::Engine;
    let digest = Sha256::digest(der);
    let mut id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    id.truncate(16);
    id
}

/// The label and DER content of the first PEM block of `pem`.
fn pem_block(pem: &[u8]) -> Option<(String, Vec<u8>)> {
    use base64::Engine;
    let text = std::str::from_utf8(pem).ok()?;
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))?
        .to_owned();
    let mut body = String::new();
    for l in lines {
        if l.starts_with("-----END ") {
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .ok()?;
            return Some((label, der));
        }
        // RFC 1421 headers ("Proc-Type: …") are not part of the key.
        if !l.contains(':') {
            body.push_str(l);
        }
    }
    None
}

fn decode_public_pem(pem: &[u8]) -> anyhow::Result<TrustedKey> {
    let (_, der) = pem_block(pem).ok_or_else(|| anyhow::anyhow!("not a PEM file"))?;
    let kid = key_id(&der);
    let (key, alg) = match DecodingKey::from_ed_pem(pem) {
        Ok(k) => (k, Algorithm::EdDSA),
        Err(_) => (
            DecodingKey::from_rsa_pem(pem)
                .map_err(|e| anyhow::anyhow!("neither Ed25519 nor RSA: {e}"))?,
            Algorithm::RS256,
        ),
    };
    Ok(TrustedKey { kid, key, alg })
}

fn is_private_pem(pem: &[u8]) -> bool {
    pem_block(pem).is_some_and(|(label, _)| label.contains("PRIVATE KEY"))
}

/// Reads the keys of `sources`: each a PEM public key file, or a folder whose `*.pem`
/// public keys are all trusted (private keys beside them are passed over). At start-up
/// (`startup`) a named file that is missing is an error; later it is a retired key.
fn read_keys(sources: &[PathBuf], startup: bool) -> anyhow::Result<Vec<TrustedKey>> {
    use std::io::ErrorKind::NotFound;
    let mut keys: Vec<TrustedKey> = Vec::new();
    let mut add = |path: &Path, pem: &[u8]| -> anyhow::Result<()> {
        let k = decode_public_pem(pem)
            .map_err(|e| anyhow::anyhow!("public key {}: {e}", path.display()))?;
        if !keys.iter().any(|x| x.kid == k.kid) {
            keys.push(k);
        }
        Ok(())
    };
    for src in sources {
        let meta = match std::fs::metadata(src) {
            Ok(m) => m,
            Err(e) if e.kind() == NotFound && !startup => {
                // Said once, with the key's id, when the key set changes.
                tracing::debug!(path = %src.display(), "token key file absent: its key is retired");
                continue;
            }
            Err(e) => anyhow::bail!("reading public key {}: {e}", src.display()),
        };
        if !meta.is_dir() {
            let pem = std::fs::read(src)
                .map_err(|e| anyhow::anyhow!("reading public key {}: {e}", src.display()))?;
            add(src, &pem)?;
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(src)
            .map_err(|e| anyhow::anyhow!("reading key folder {}: {e}", src.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            // Kubernetes mounts a Secret as symlinks into `..data`: follow them, and pass
            // over its dot-folders.
            .filter(|p| p.extension().is_some_and(|x| x == "pem") && p.is_file())
            .collect();
        files.sort();
        for f in files {
            let pem = match std::fs::read(&f) {
                Ok(p) => p,
                // Removed between the listing and now: retired.
                Err(e) if e.kind() == NotFound => continue,
                Err(e) => anyhow::bail!("reading public key {}: {e}", f.display()),
            };
            if !is_private_pem(&pem) {
                add(&f, &pem)?;
            }
        }
    }
    Ok(keys)
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TokenVerifier({} keys, audiences {:?})",
            self.key_set().keys.len(),
            self.audiences
        )
    }
}

impl TokenVerifier {
    fn new(sources: Vec<PathBuf>, keys: Vec<TrustedKey>) -> Self {
        Self {
            shared: Arc::new(Shared {
                sources,
                keys: RwLock::new(Arc::new(KeySet {
                    generation: 0,
                    keys,
                })),
                verified: Mutex::default(),
            }),
            audiences: Arc::new(vec![AUDIENCE.to_owned()]),
        }
    }

    /// Loads PEM public keys, Ed25519 (`PUBLIC KEY`) or RSA (`PUBLIC KEY`/`RSA PUBLIC
    /// KEY`), from files and folders (every `*.pem` public key in a folder is trusted);
    /// [`TokenVerifier::reload`] reads the same paths again.
    pub fn from_pem_files(paths: &[PathBuf]) -> anyhow::Result<Self> {
        let keys = read_keys(paths, true)?;
        anyhow::ensure!(!keys.is_empty(), "no token verification key is configured");
        Ok(Self::new(paths.to_vec(), keys))
    }

    /// Keys given in memory (tests): never reloaded.
    pub fn from_pem(pems: &[&[u8]]) -> anyhow::Result<Self> {
        let keys = pems
            .iter()
            .map(|p| decode_public_pem(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(Vec::new(), keys))
    }

    /// Accepts tokens for `service` (`aud` its name) beside those for the whole suite.
    pub fn for_service(self, service: &str) -> Self {
        Self {
            audiences: Arc::new(vec![service.to_owned(), AUDIENCE.to_owned()]),
            ..self
        }
    }

    /// The ids of the keys trusted now.
    pub fn key_ids(&self) -> Vec<String> {
        self.key_set().keys.iter().map(|k| k.kid.clone()).collect()
    }

    fn key_set(&self) -> Arc<KeySet> {
        match self.shared.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the key files and folders again. Returns whether the trusted keys changed;
    /// when they did, every remembered token is checked again on its next use, so a
    /// token of a retired key is refused from then on. A file that cannot be read or
    /// parsed leaves the keys as they were (an error); a removed one retires its key.
    pub fn reload(&self) -> anyhow::Result<bool> {
        if self.shared.sources.is_empty() {
            return Ok(false);
        }
        let keys = read_keys(&self.shared.sources, false)?;
        let kids = |ks: &[TrustedKey]| {
            let mut v: Vec<String> = ks.iter().map(|k| k.kid.clone()).collect();
            v.sort();
            v
        };
        let (added, retired) = {
            let mut current = match self.shared.keys.write() {
                Ok(k) => k,
                Err(poisoned) => poisoned.into_inner(),
            };
            let (old, new) = (kids(&current.keys), kids(&keys));
            if old == new {
                return Ok(false);
            }
            let added: Vec<String> = new.iter().filter(|k| !old.contains(k)).cloned().collect();
            let retired: Vec<String> = old.iter().filter(|k| !new.contains(k)).cloned().collect();
            *current = Arc::new(KeySet {
                generation: current.generation + 1,
                keys,
            });
            (added, retired)
        };
        if let Ok(mut cache) = self.shared.verified.lock() {
            cache.clear();
        }
        tracing::info!(?added, ?retired, "token verification keys changed");
        if self.key_set().keys.is_empty() {
            tracing::error!("no token verification key is left: every token is refused");
        }
        Ok(true)
    }

    /// Reloads the keys every `every` on a background task, which ends when the last
    /// clone of this verifier is dropped. Nothing to watch (keys given in memory, or
    /// `every` zero): `None`.
    pub fn watch(&self, every: std::time::Duration) -> Option<tokio::task::JoinHandle<()>> {
        if self.shared.sources.is_empty() || every.is_zero() {
            return None;
        }
        let shared = Arc::downgrade(&self.shared);
        let audiences = self.audiences.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(shared) = shared.upgrade() else {
                    break;
                };
                let v = TokenVerifier {
                    shared,
                    audiences: audiences.clone(),
                };
                // File reads block: off the async workers.
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || v.reload()).await {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "token keys not reloaded; the keys loaded before stay trusted"
                    );
                }
            }
        }))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        self.verify_with(&self.key_set(), token)
    }

    fn verify_with(&self, set: &KeySet, token: &str) -> Result<Claims, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            ApiError::Unauthenticated(
                "the token is malformed or not signed by a trusted key".into(),
            )
        })?;
        // By `kid` when the token names one; a token without it (minted before tokens
        // carried it) is tried against every key. Only keys of the token's algorithm.
        let candidates = set
            .keys
            .iter()
            .filter(|k| k.alg == header.alg && header.kid.as_ref().is_none_or(|kid| *kid == k.kid));
        let mut last = None;
        for k in candidates {
            let mut v = Validation::new(k.alg);
            v.set_issuer(&[ISSUER]);
            v.set_audience(&self.audiences);
            v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            v.validate_nbf = true;
            v.leeway = CLOCK_LEEWAY_SECS;
            match jsonwebtoken::decode::<Claims>(token, &k.key, &v) {
                // A token issued in the future is as little valid yet as one whose `nbf`
                // is ahead (jsonwebtoken checks `nbf`, not `iat`).
                Ok(data) if data.claims.iat > unix_now() + CLOCK_LEEWAY_SECS => {
                    return Err(ApiError::Unauthenticated(
                        "the token is not valid yet (issued in the future)".into(),
                    ));
                }
                Ok(data) => return Ok(data.claims),
                Err(e) => last = Some(e),
            }
        }
        use jsonwebtoken::errors::ErrorKind;
        let why = match last.as_ref().map(|e| e.kind()) {
            None if header.kid.is_some() => {
                "the token is signed by a key this service does not trust (unknown or retired kid)"
            }
            Some(ErrorKind::ExpiredSignature) => "the token has expired",
            Some(ErrorKind::ImmatureSignature) => "the token is not valid yet",
            Some(ErrorKind::InvalidSignature) => "the token's signature is not valid",
            Some(ErrorKind::InvalidAudience) => {
                "the token is for another audience (aud) than this service"
            }
            Some(ErrorKind::InvalidIssuer) => "the token is not issued by this suite (iss)",
            _ => "the token is malformed or not signed by a trusted key",
        };
        Err(ApiError::Unauthenticated(why.into()))
    }

    /// The principal of a verified token: remembered, or verified now and remembered.
    fn principal_of(&self, token: &str) -> Result<Principal, ApiError> {
        let now = unix_now();
        let set = self.key_set();
        if let Ok(cache) = self.shared.verified.lock()
            && let Some(r) = cache.get(token)
            && now < r.exp
            && r.generation == set.generation
            && self.audiences.contains(&r.aud)
        {
            return Ok(r.principal.clone());
        }
        let claims = self.verify_with(&set, token)?;
        let (exp, aud) = (claims.exp, claims.aud.clone());
        let p = Principal::from_claims(claims)?;
        if let Ok(mut cache) = self.shared.verified.lock() {
            if cache.len() >= VERIFIED_TOKENS {
                cache.retain(|_, r| now < r.exp);
                if cache.len() >= VERIFIED_TOKENS {
                    cache.clear();
                }
            }
            cache.insert(
                token.to_owned(),
                Remembered {
                    principal: p.clone(),
                    exp,
                    aud,
                    generation: set.generation,
                },
            );
        }
        Ok(p)
    }

    /// Reads `authorization: Bearer <jwt>` and verifies it.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<Principal, ApiError> {
        let value = headers.get(http::header::AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthenticated("missing authorization: Bearer <token>".into())
        })?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthenticated("authorization must be \"Bearer <token>\"".into())
            })?;
        let mut p = self.principal_of(token)?;
        if p.role == Role::Service {
            p.on_behalf_of = headers
                .get(ON_BEHALF_OF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(200).collect());
        }
        Ok(p)
    }
}

/// Signs tokens with an Ed25519 private key (PKCS#8 PEM), naming the key's id (`kid`).
#[derive(Clone)]
pub struct TokenSigner {
    key: EncodingKey,
    kid: String,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSigner(kid {})", self.kid)
    }
}

/// What a minted token says about its holder.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub subject: String,
    pub institution: Option<String>,
    pub member: Option<String>,
    pub service: Option<String>,
    pub authority: Option<String>,
    pub lifetime: std::time::Duration,
    /// The `aud`: one service's name (see [`SERVICES`]) or the whole suite (the default,
    /// [`AUDIENCE`]).
    pub audience: Option<String>,
}

/// Whether `aud` names the suite or one of its services.
pub fn is_audience(aud: &str) -> bool {
    aud == AUDIENCE || SERVICES.contains(&aud)
}

impl TokenSigner {
    pub fn from_pem(pem: &[u8]) -> anyhow::Result<Self> {
        use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePublicKey};
        let text = std::str::from_utf8(pem)
            .map_err(|_| anyhow::anyhow!("the signing key is not a PEM file"))?;
        let public = ed25519_dalek::SigningKey::from_pkcs8_pem(text)
            .map_err(|e| anyhow::anyhow!("the signing key is not an Ed25519 PKCS#8 key: {e}"))?
            .verifying_key()
            .to_public_key_der()?;
        Ok(Self {
            key: EncodingKey::from_ed_pem(pem)?,
            kid: key_id(public.as_bytes()),
        })
    }

    pub fn from_pem_file(path: &Path) -> anyhow::Result<Self> {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("reading signing key {}: {e}", path.display()))?;
        Self::from_pem(&pem)
    }

    /// The id of this key, as its tokens name it and verifiers find it ([`key_id`]).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn mint(&self, role: Role, req: &TokenRequest) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let aud = req.audience.clone().unwrap_or_else(|| AUDIENCE.into());
        anyhow::ensure!(
            is_audience(&aud),
            "audience {aud:?} is neither the suite ({AUDIENCE}) nor one of its services ({})",
            SERVICES.join(", ")
        );
        let claims = Claims {
            sub: req.subject.clone(),
            role,
            institution: req.institution.clone(),
            member: req.member.clone(),
            service: req.service.clone(),
            authority: req.authority.clone(),
            iss: ISSUER.into(),
            aud,
            iat: now,
            nbf: None,
            exp: now + req.lifetime.as_secs().max(1),
        };
        // Refuse to mint what the verifier would refuse.
        Principal::from_claims(claims.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let header = Header {
            kid: Some(self.kid.clone()),
            ..Header::new(Algorithm::EdDSA)
        };
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}

/// A new Ed25519 key pair as (private PKCS#8 PEM, public SPKI PEM).
pub fn generate_keypair() -> anyhow::Result<(String, String)> {
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
    let private = sk.to_pkcs8_pem(LineEnding::LF)?.to_string();
    let public = sk.verifying_key().to_public_key_pem(LineEnding::LF)?;
    Ok((private, public))
}

/// Writes a new key pair as `signing.key.pem` (mode 0600) and `signing.pub.pem` in `dir`,
/// unless one is there already. Returns the two paths.
pub fn ensure_keypair(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let private = dir.join("signing.key.pem");
    let public = dir.join("signing.pub.pem");
    if private.exists() && public.exists() {
        return Ok((private, public));
    }
    std::fs::create_dir_all(dir)?;
    let (sk, pk) = generate_keypair()?;
    write_private(&private, sk.as_bytes())?;
    std::fs::write(&public, pk)?;
    Ok((private, public))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pair() -> (TokenSigner, TokenVerifier) {
        let (sk, pk) = generate_keypair().unwrap();
        (
            TokenSigner::from_pem(sk.as_bytes()).unwrap(),
            TokenVerifier::from_pem(&[pk.as_bytes()]).unwrap(),
        )
    }

    fn req(subject: &str) -> TokenRequest {
        TokenRequest {
            subject: subject.into(),
            lifetime: Duration::from_secs(60),
            ..Default::default()
        }
    }

    #[test]
    fn minted_token_verifies() {
        let (s, v) = pair();
        let t = s.mint(Role::Admin, &req("admin")).unwrap();
        let c = v.verify(&t).unwrap();
        assert_eq!((c.sub.as_str(), c.role), ("admin", Role::Admin));
    }

    /// Tokens not valid yet (`nbf` ahead, or issued in the future) are refused beyond the
    /// leeway, and accepted within it.
    #[test]
    fn tokens_not_yet_valid_are_refused() {
        let (s, v) = pair();
        let now = unix_now();
        let token = |iat: u64, nbf: Option<u64>| {
            let claims = Claims {
                nbf,
                ..admin_claims("agent", iat, now + 7200)
            };
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &s.key).unwrap()
        };
        let refused = |t: &str| matches!(v.verify(t), Err(ApiError::Unauthenticated(m)) if m.contains("not valid yet"));
        assert!(refused(&token(now, Some(now + 3600))), "nbf an hour ahead");
        assert!(refused(&token(now + 3600, None)), "issued an hour ahead");
        assert!(
            v.verify(&token(now, Some(now + 10))).is_ok(),
            "within the leeway"
        );
        assert!(
            v.verify(&token(now + 10, None)).is_ok(),
            "within the leeway"
        );
        assert!(v.verify(&token(now - 60, Some(now - 30))).is_ok());
    }

    /// An administrator's claims for the suite, issued at `iat`, expiring at `exp`.
    fn admin_claims(sub: &str, iat: u64, exp: u64) -> Claims {
        Claims {
            sub: sub.into(),
            role: Role::Admin,
            institution: None,
            member: None,
            service: None,
            authority: None,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat,
            nbf: None,
            exp,
        }
    }

    fn refused_because(r: Result<Principal, ApiError>, why: &str) -> bool {
        matches!(r, Err(ApiError::Unauthenticated(m)) if m.contains(why))
    }

    /// A folder of keys: a key added to it is trusted after the next reload, and a key
    /// removed from it refused after the next, even for a token already remembered.
    #[test]
    fn keys_rotate_through_a_folder_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (sk_a, pk_a) = generate_keypair().unwrap();
        let (sk_b, pk_b) = generate_keypair().unwrap();
        std::fs::write(dir.path().join("a.pub.pem"), &pk_a).unwrap();
        // A private key and other files beside them are passed over.
        std::fs::write(dir.path().join("a.key.pem"), &sk_a).unwrap();
        std::fs::write(dir.path().join("README"), "not a key").unwrap();
        let v = TokenVerifier::from_pem_files(&[dir.path().to_owned()]).unwrap();
        let a = TokenSigner::from_pem(sk_a.as_bytes()).unwrap();
        let b = TokenSigner::from_pem(sk_b.as_bytes()).unwrap();
        assert_eq!(v.key_ids(), [a.kid()]);
        let ta = a.mint(Role::Admin, &req("a")).unwrap();
        let tb = b.mint(Role::Admin, &req("b")).unwrap();
        assert!(v.principal_of(&ta).is_ok());
        assert!(refused_because(v.principal_of(&tb), "does not trust"));
        assert!(!v.reload().unwrap(), "nothing changed");

        std::fs::write(dir.path().join("b.pub.pem"), &pk_b).unwrap();
        assert!(v.reload().unwrap());
        assert!(
            v.principal_of(&tb).is_ok(),
            "the new key, without a restart"
        );
        assert!(
            v.principal_of(&ta).is_ok(),
            "the old one while the new rolls out"
        );

        std::fs::remove_file(dir.path().join("a.pub.pem")).unwrap();
        assert!(v.reload().unwrap());
        assert!(
            refused_because(v.principal_of(&ta), "retired"),
            "a remembered token of a retired key is refused"
        );
        assert!(v.principal_of(&tb).is_ok());
        assert_eq!(v.key_ids(), [b.kid()]);
    }

    /// A key file that cannot be parsed keeps the keys loaded before (a rotation caught
    /// half-way is not an outage); a named file removed retires its key; at start-up a
    /// missing file is an error.
    #[test]
    fn a_broken_key_file_keeps_the_keys_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let (sk, pk) = generate_keypair().unwrap();
        let file = dir.path().join("issuer.pub.pem");
        std::fs::write(&file, &pk).unwrap();
        let v = TokenVerifier::from_pem_files(std::slice::from_ref(&file)).unwrap();
        let t = TokenSigner::from_pem(sk.as_bytes())
            .unwrap()
            .mint(Role::Auditor, &req("x"))
            .unwrap();
        assert!(v.principal_of(&t).is_ok());
        std::fs::write(&file, "-----BEGIN PUBLIC KEY-----\nnope\n").unwrap();
        assert!(v.reload().is_err());
        assert!(v.principal_of(&t).is_ok());
        std::fs::remove_file(&file).unwrap();
        assert!(v.reload().unwrap());
        assert!(v.principal_of(&t).is_err());
        assert!(TokenVerifier::from_pem_files(&[file]).is_err());
        assert!(
            TokenVerifier::from_pem_files(&[dir.path().to_owned()]).is_err(),
            "no key"
        );
    }

    /// Tokens minted before tokens carried `kid` are tried against every key; a token
    /// naming a key picks that key only.
    #[test]
    fn keys_are_chosen_by_kid() {
        let (sk_a, pk_a) = generate_keypair().unwrap();
        let (sk_b, pk_b) = generate_keypair().unwrap();
        let v = TokenVerifier::from_pem(&[pk_a.as_bytes(), pk_b.as_bytes()]).unwrap();
        let a = TokenSigner::from_pem(sk_a.as_bytes()).unwrap();
        let b = TokenSigner::from_pem(sk_b.as_bytes()).unwrap();
        let claims = admin_claims("old", unix_now(), unix_now() + 600);
        let signed = |kid: Option<&str>, key: &EncodingKey| {
            let header = Header {
                kid: kid.map(str::to_owned),
                ..Header::new(Algorithm::EdDSA)
            };
            jsonwebtoken::encode(&header, &claims, key).unwrap()
        };
        assert!(v.verify(&signed(None, &b.key)).is_ok(), "no kid: every key");
        assert!(v.verify(&signed(Some(b.kid()), &b.key)).is_ok());
        assert!(
            v.verify(&signed(Some(a.kid()), &b.key)).is_err(),
            "the named key only"
        );
        assert!(refused_because(
            v.principal_of(&signed(Some("unknown"), &b.key)),
            "does not trust"
        ));
        // And the minted ones name their key.
        let t = a.mint(Role::Admin, &req("x")).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&t).unwrap().kid.as_deref(),
            Some(a.kid())
        );
    }

    /// The signer's `kid` (from its private key) is the verifier's (from the public file).
    #[test]
    fn the_signers_kid_is_its_public_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = ensure_keypair(dir.path()).unwrap();
        let s = TokenSigner::from_pem_file(&private).unwrap();
        let v = TokenVerifier::from_pem_files(std::slice::from_ref(&public)).unwrap();
        assert_eq!(v.key_ids(), [s.kid()]);
        let (_, der) = pem_block(&std::fs::read(&public).unwrap()).unwrap();
        assert_eq!(key_id(&der), s.kid());
        assert_eq!(s.kid().len(), 16);
    }

    /// Each service takes tokens for itself or for the suite, and no other.
    #[test]
    fn a_token_for_another_audience_is_refused() {
        let (s, v) = pair();
        let registry = v.clone().for_service("registry");
        let token = |aud: Option<&str>| {
            let mut r = req("x");
            r.audience = aud.map(str::to_owned);
            s.mint(Role::Admin, &r).unwrap()
        };
        for aud in [None, Some("mosharekat"), Some("registry")] {
            let t = token(aud);
            assert_eq!(registry.verify(&t).unwrap().aud, aud.unwrap_or(AUDIENCE));
            assert!(registry.principal_of(&t).is_ok(), "{aud:?}");
        }
        let for_meeting = token(Some("meeting"));
        assert!(refused_because(
            registry.principal_of(&for_meeting),
            "another audience"
        ));
        // Remembered for the registry is not accepted by a verifier for the meeting
        // service sharing its memory.
        let for_registry = token(Some("registry"));
        let meeting = registry.clone().for_service("meeting");
        assert!(registry.principal_of(&for_registry).is_ok());
        assert!(refused_because(
            meeting.principal_of(&for_registry),
            "another audience"
        ));
        assert!(refused_because(
            v.principal_of(&for_registry),
            "another audience"
        ));
        let mut r = req("x");
        r.audience = Some("everyone".into());
        assert!(s.mint(Role::Admin, &r).is_err(), "no such audience");
    }

    #[test]
    fn a_token_of_another_issuer_is_refused() {
        let (s, v) = pair();
        let claims = Claims {
            iss: "elsewhere".into(),
            ..admin_claims("x", unix_now(), unix_now() + 600)
        };
        let header = Header {
            kid: Some(s.kid().to_owned()),
            ..Header::new(Algorithm::EdDSA)
        };
        let t = jsonwebtoken::encode(&header, &claims, &s.key).unwrap();
        assert!(refused_because(
            v.principal_of(&t),
            "not issued by this suite"
        ));
    }

    /// The watcher reloads on its own, and ends with the last verifier.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_watcher_picks_up_a_new_key_and_ends_with_the_verifier() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pk_a) = generate_keypair().unwrap();
        let (sk_b, pk_b) = generate_keypair().unwrap();
        std::fs::write(dir.path().join("a.pub.pem"), &pk_a).unwrap();
        let v = TokenVerifier::from_pem_files(&[dir.path().to_owned()]).unwrap();
        let watcher = v.watch(Duration::from_millis(20)).unwrap();
        let tb = TokenSigner::from_pem(sk_b.as_bytes())
            .unwrap()
            .mint(Role::Admin, &req("b"))
            .unwrap();
        assert!(v.principal_of(&tb).is_err());
        std::fs::write(dir.path().join("b.pub.pem"), &pk_b).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while v.principal_of(&tb).is_err() {
            assert!(std::time::Instant::now() < deadline, "not picked up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(v);
        tokio::time::timeout(Duration::from_secs(5), watcher)
            .await
            .expect("the watcher ends")
            .unwrap();
        let memory = pair().1;
        assert!(
            memory.watch(Duration::from_secs(1)).is_none(),
            "nothing to watch"
        );
    }

    #[test]
    fn another_keys_token_is_refused() {
        let (s, _) = pair();
        let (_, v) = pair();
        let t = s.mint(Role::Admin, &req("admin")).unwrap();
        assert!(matches!(v.verify(&t), Err(ApiError::Unauthenticated(_))));
    }

    #[test]
    fn institution_token_needs_institution_claim() {
        let (s, _) = pair();
        assert!(s.mint(Role::Institution, &req("agent")).is_err());
        let mut r = req("agent");
        r.institution = Some("i1".into());
        assert!(s.mint(Role::Institution, &r).is_ok());
    }

    #[test]
    fn bearer_header_forms() {
        let (s, v) = pair();
        let t = s.mint(Role::Auditor, &req("aud")).unwrap();
        let mut h = http::HeaderMap::new();
        assert!(v.authenticate(&h).is_err());
        h.insert("authorization", format!("Token {t}").parse().unwrap());
        assert!(v.authenticate(&h).is_err());
        h.insert("authorization", format!("Bearer {t}").parse().unwrap());
        assert_eq!(v.authenticate(&h).unwrap().role, Role::Auditor);
    }

    #[test]
    fn a_remembered_token_is_the_same_token_only() {
        let (s, v) = pair();
        let mut r = req("svc");
        r.service = Some("referral".into());
        let t = s.mint(Role::Service, &r).unwrap();
        let header = |on_behalf: &str, token: &str| {
            let mut h = http::HeaderMap::new();
            h.insert("authorization", format!("Bearer {token}").parse().unwrap());
            h.insert(ON_BEHALF_OF_HEADER, on_behalf.parse().unwrap());
            h
        };
        // The per-call header is read on every call, not remembered with the token.
        let a = v.authenticate(&header("alice", &t)).unwrap();
        let b = v.authenticate(&header("bob", &t)).unwrap();
        assert_eq!(a.on_behalf_of.as_deref(), Some("alice"));
        assert_eq!(b.on_behalf_of.as_deref(), Some("bob"));
        assert_eq!(v.shared.verified.lock().unwrap().len(), 1);
        // A token that differs in one signature character is checked, and refused.
        let mut forged = t.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(v.authenticate(&header("eve", &forged)).is_err());
        // A remembered entry past its expiry goes back to the signature check.
        v.shared
            .verified
            .lock()
            .unwrap()
            .values_mut()
            .for_each(|r| r.exp = 0);
        assert!(
            v.principal_of(&t).is_ok(),
            "checked again: the token is still valid"
        );
        assert!(
            v.shared
                .verified
                .lock()
                .unwrap()
                .values()
                .all(|r| r.exp > 0)
        );
    }

    #[test]
    fn on_behalf_of_is_only_taken_from_services() {
        let (s, v) = pair();
        let mut h = http::HeaderMap::new();
        h.insert(ON_BEHALF_OF_HEADER, "someone".parse().unwrap());
        h.insert(
            "authorization",
            format!("Bearer {}", s.mint(Role::Admin, &req("a")).unwrap())
                .parse()
                .unwrap(),
        );
        assert_eq!(v.authenticate(&h).unwrap().on_behalf_of, None);
        let mut r = req("svc");
        r.service = Some("referral".into());
        h.insert(
            "authorization",
            format!("Bearer {}", s.mint(Role::Service, &r).unwrap())
                .parse()
                .unwrap(),
        );
        assert_eq!(
            v.authenticate(&h).unwrap().on_behalf_of.as_deref(),
            Some("someone")
        );
    }

    #[test]
    fn roles_parse_from_their_names() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("ROOT".parse::<Role>().is_err());
    }
}
