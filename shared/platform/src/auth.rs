//! Who is calling: JWT bearer tokens (EdDSA or RSA), the roles of `domain.md`, and the
//! keys and tokens an operator makes with the `keys` and `token` subcommands.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The `iss` and `aud` of every token of the suite.
pub const ISSUER: &str = "mosharekat";
pub const AUDIENCE: &str = "mosharekat";

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

/// Checks bearer tokens against the configured public keys.
///
/// A token whose signature has been checked is remembered (by its exact text) until it
/// expires: callers send the same token on every call, and an Ed25519 check costs more
/// CPU than the rest of a simple read.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Vec<(DecodingKey, Algorithm)>,
    verified: Arc<Mutex<HashMap<String, (Principal, u64)>>>,
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

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenVerifier({} keys)", self.keys.len())
    }
}

impl TokenVerifier {
    /// Loads PEM public keys: Ed25519 (`PUBLIC KEY`) or RSA (`PUBLIC KEY`/`RSA PUBLIC KEY`).
    pub fn from_pem_files(paths: &[PathBuf]) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        for p in paths {
            let pem = std::fs::read(p)
                .map_err(|e| anyhow::anyhow!("reading public key {}: {e}", p.display()))?;
            keys.push(Self::decode_pem(&pem).map_err(|e| {
                anyhow::anyhow!("public key {} is neither Ed25519 nor RSA: {e}", p.display())
            })?);
        }
        anyhow::ensure!(!keys.is_empty(), "no token verification key is configured");
        Ok(Self {
            keys,
            verified: Arc::default(),
        })
    }

    pub fn from_pem(pems: &[&[u8]]) -> anyhow::Result<Self> {
        let keys = pems
            .iter()
            .map(|p| Self::decode_pem(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            keys,
            verified: Arc::default(),
        })
    }

    fn decode_pem(pem: &[u8]) -> Result<(DecodingKey, Algorithm), jsonwebtoken::errors::Error> {
        match DecodingKey::from_ed_pem(pem) {
            Ok(k) => Ok((k, Algorithm::EdDSA)),
            Err(_) => DecodingKey::from_rsa_pem(pem).map(|k| (k, Algorithm::RS256)),
        }
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let mut last = None;
        for (key, alg) in &self.keys {
            let mut v = Validation::new(*alg);
            v.set_issuer(&[ISSUER]);
            v.set_audience(&[AUDIENCE]);
            v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            v.validate_nbf = true;
            v.leeway = CLOCK_LEEWAY_SECS;
            match jsonwebtoken::decode::<Claims>(token, key, &v) {
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
            Some(ErrorKind::ExpiredSignature) => "the token has expired",
            Some(ErrorKind::ImmatureSignature) => "the token is not valid yet",
            Some(ErrorKind::InvalidSignature) => "the token's signature is not valid",
            Some(ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer) => {
                "the token is not for this suite"
            }
            _ => "the token is malformed or not signed by a trusted key",
        };
        Err(ApiError::Unauthenticated(why.into()))
    }

    /// The principal of a verified token: remembered, or verified now and remembered.
    fn principal_of(&self, token: &str) -> Result<Principal, ApiError> {
        let now = unix_now();
        if let Ok(cache) = self.verified.lock()
            && let Some((p, exp)) = cache.get(token)
            && now < *exp
        {
            return Ok(p.clone());
        }
        let claims = self.verify(token)?;
        let exp = claims.exp;
        let p = Principal::from_claims(claims)?;
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= VERIFIED_TOKENS {
                cache.retain(|_, (_, e)| now < *e);
                if cache.len() >= VERIFIED_TOKENS {
                    cache.clear();
                }
            }
            cache.insert(token.to_owned(), (p.clone(), exp));
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

/// Signs tokens with an Ed25519 private key (PKCS#8 PEM).
#[derive(Clone)]
pub struct TokenSigner {
    key: EncodingKey,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSigner(..)")
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
}

impl TokenSigner {
    pub fn from_pem(pem: &[u8]) -> anyhow::Result<Self> {
        Ok(Self {
            key: EncodingKey::from_ed_pem(pem)?,
        })
    }

    pub fn from_pem_file(path: &Path) -> anyhow::Result<Self> {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("reading signing key {}: {e}", path.display()))?;
        Self::from_pem(&pem)
    }

    pub fn mint(&self, role: Role, req: &TokenRequest) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: req.subject.clone(),
            role,
            institution: req.institution.clone(),
            member: req.member.clone(),
            service: req.service.clone(),
            authority: req.authority.clone(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            nbf: None,
            exp: now + req.lifetime.as_secs().max(1),
        };
        // Refuse to mint what the verifier would refuse.
        Principal::from_claims(claims.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            &self.key,
        )?)
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
                sub: "agent".into(),
                role: Role::Admin,
                institution: None,
                member: None,
                service: None,
                authority: None,
                iss: ISSUER.into(),
                aud: AUDIENCE.into(),
                iat,
                nbf,
                exp: now + 7200,
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
        assert_eq!(v.verified.lock().unwrap().len(), 1);
        // A token that differs in one signature character is checked, and refused.
        let mut forged = t.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(v.authenticate(&header("eve", &forged)).is_err());
        // A remembered entry past its expiry goes back to the signature check.
        v.verified
            .lock()
            .unwrap()
            .values_mut()
            .for_each(|(_, exp)| *exp = 0);
        assert!(
            v.principal_of(&t).is_ok(),
            "checked again: the token is still valid"
        );
        assert!(v.verified.lock().unwrap().values().all(|(_, exp)| *exp > 0));
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
