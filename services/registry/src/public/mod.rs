//! The registry's public record (domain.md, "The public record"), behind the deployment
//! switch `--public-record` ([`mosharekat_platform::public::PublicArgs`], off by
//! default):
//!
//! - [`code`]: each approved licence's verification code (pure);
//! - [`store`]: the codes' table and the public record's reads of the registry's tables;
//! - the use cases here, on domain types: verifying a licence by code or national ID,
//!   the change feed of licence grants, suspensions, reinstatements and revocations, and
//!   the certificate;
//! - [`api`]: `mosharekat.registry.v1.PublicRecordService` (no token: the edge lets its
//!   methods through when the switch is on) and the certificate's RPC of the
//!   `RegistryService` (authenticated);
//! - [`csv`]: the change feed as open-data CSV on the public HTTP port;
//! - [`certificate`]: the printable certificate and its QR code.
//!
//! What the public sees is chosen field by field, never filtered out of a fuller record:
//! an institution's name and national ID, a licence's terms, state and code; never a
//! representative, an address, a phone, an e-mail, an officer or a reason given.

pub mod api;
pub mod certificate;
pub mod code;
pub mod csv;
pub mod store;

use std::collections::HashMap;

use mosharekat_persian::LegalEntityId;
use mosharekat_platform::auth::Role;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::error::ApiError;

use crate::app::Registry;
use crate::names::{InstitutionId, LicenceName};
use crate::rules::{Institution, Licence, LicenceEventKind, LicenceState};
use code::VerificationCode;

/// The public HTTP port's default (`--public-listen`).
pub const PUBLIC_HTTP_PORT: u16 = 8051;

/// The gRPC package whose `PublicRecordService` is the registry's public record.
pub const PACKAGE: &str = "mosharekat.registry.v1";

/// The public methods (`/package.Service/Method`), from the API's descriptors: what the
/// edge lets through without a token when the switch is on.
pub fn methods() -> Vec<String> {
    mosharekat_platform::public::public_methods(PACKAGE)
}

/// Roles that may print a licence's certificate (an institution its own only).
pub const CERTIFICATE_READERS: &[Role] = &[Role::Admin, Role::Institution];

/// The public record's refusals, each with its reason code, English and Persian.
#[derive(Debug, thiserror::Error)]
pub enum PublicError {
    /// No licence has this code, or the institution has no licence ever granted.
    #[error("no licence found")]
    NoLicence,
    /// A certificate asked for a licence not in force.
    #[error("the licence is {0:?}, not in force")]
    NotInForce(LicenceState),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// The reason code of a certificate asked for a licence not in force.
pub const LICENCE_NOT_IN_FORCE: &str = "LICENCE_NOT_IN_FORCE";

impl From<PublicError> for ApiError {
    fn from(e: PublicError) -> Self {
        match e {
            PublicError::NoLicence => {
                ApiError::not_found("licence", "of this verification code or national ID")
            }
            PublicError::NotInForce(s) => ApiError::precondition(
                LICENCE_NOT_IN_FORCE,
                format!(
                    "a certificate is issued for a licence in force; this one is {}",
                    s.token()
                ),
                format!(
                    "گواهی فقط برای مجوز معتبر صادر می‌شود؛ این مجوز در وضعیت {} است.",
                    s.token()
                ),
            ),
            PublicError::Api(e) => e,
        }
    }
}

impl From<PublicError> for tonic::Status {
    fn from(e: PublicError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<crate::error::RegistryError> for PublicError {
    fn from(e: crate::error::RegistryError) -> Self {
        PublicError::Api(e.into())
    }
}

/// A licence as the public may know it.
#[derive(Debug, Clone)]
pub struct Verified {
    pub code: VerificationCode,
    /// As of now.
    pub licence: Licence,
    pub institution_display_name: String,
}

impl Verified {
    pub fn in_force(&self) -> bool {
        self.licence.state == LicenceState::Active
    }
}

/// One licence change of the public record.
#[derive(Debug, Clone)]
pub struct Change {
    pub sequence: i64,
    pub kind: LicenceEventKind,
    pub time_us: i64,
    pub institution_display_name: String,
    pub institution_national_id: String,
    pub code: Option<VerificationCode>,
    /// The licence's terms (areas, actions, province), as they are.
    pub licence: Licence,
}

/// The rendered certificate and the code it shows.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub html: String,
    pub code: VerificationCode,
}

impl Registry {
    /// The licence of `code`, as of now.
    pub async fn verify_by_code(
        &self,
        code: &VerificationCode,
    ) -> Result<Vec<Verified>, PublicError> {
        let c = self.db().conn();
        let name = store::licence_of_code(c, code)
            .await?
            .ok_or(PublicError::NoLicence)?;
        let out = self
            .verified(std::slice::from_ref(&name.institution), |l| l.name == name)
            .await?;
        if out.is_empty() {
            return Err(PublicError::NoLicence);
        }
        Ok(out)
    }

    /// Every licence ever granted to the institution of `national_id`, the latest first.
    pub async fn verify_by_national_id(
        &self,
        national_id: &LegalEntityId,
    ) -> Result<Vec<Verified>, PublicError> {
        let c = self.db().conn();
        let name = crate::store::institution_by_national_id(c, national_id)
            .await?
            .ok_or(PublicError::NoLicence)?;
        let mut out = self
            .verified(std::slice::from_ref(name.id()), |_| true)
            .await?;
        if out.is_empty() {
            return Err(PublicError::NoLicence);
        }
        // Ids are UUID v7: ordered by creation.
        out.sort_by(|a, b| b.licence.name.id.cmp(&a.licence.name.id));
        Ok(out)
    }

    /// The licences of `institutions` that `keep` keeps and that have a code (were
    /// granted), as of now.
    async fn verified(
        &self,
        institutions: &[InstitutionId],
        keep: impl Fn(&Licence) -> bool,
    ) -> Result<Vec<Verified>, PublicError> {
        let c = self.db().conn();
        let now = self.db().now_micros();
        let insts = crate::store::institutions_by_id(c, institutions).await?;
        let licences: Vec<Licence> = crate::store::licences_of(c, institutions)
            .await?
            .into_iter()
            .map(|v| v.value)
            .filter(|l| keep(l))
            .collect();
        let ids: Vec<_> = licences.iter().map(|l| l.name.id.clone()).collect();
        let mut codes = store::codes_of(c, &ids).await?;
        Ok(licences
            .into_iter()
            .filter_map(|l| {
                let code = codes.remove(&l.name.id)?;
                let inst = insts.get(&l.name.institution)?;
                Some(Verified {
                    code,
                    institution_display_name: inst.fields.display_name.clone(),
                    licence: l.as_of(now),
                })
            })
            .collect())
    }

    /// The public record's licence changes after `after`, oldest first, at most `limit`.
    pub async fn licence_changes(
        &self,
        after: i64,
        limit: u64,
    ) -> Result<Vec<Change>, PublicError> {
        let c = self.db().conn();
        let events = store::public_events(c, after, limit).await?;
        let mut inst_ids: Vec<InstitutionId> = events
            .iter()
            .map(|e| e.licence.institution.clone())
            .collect();
        inst_ids.sort_unstable();
        inst_ids.dedup();
        let insts: HashMap<InstitutionId, Institution> =
            crate::store::institutions_by_id(c, &inst_ids).await?;
        let licences: HashMap<LicenceName, Licence> = crate::store::licences_of(c, &inst_ids)
            .await?
            .into_iter()
            .map(|v| (v.value.name.clone(), v.value))
            .collect();
        let ids: Vec<_> = licences.keys().map(|n| n.id.clone()).collect();
        let codes = store::codes_of(c, &ids).await?;
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let (Some(inst), Some(lic)) =
                (insts.get(&e.licence.institution), licences.get(&e.licence))
            else {
                return Err(ApiError::internal(anyhow::anyhow!(
                    "licence event {} names a licence that is not stored",
                    e.sequence
                ))
                .into());
            };
            out.push(Change {
                sequence: e.sequence,
                kind: e.kind,
                time_us: e.time_us,
                institution_display_name: inst.fields.display_name.clone(),
                institution_national_id: inst.national_id.as_str().to_owned(),
                code: codes.get(&e.licence.id).cloned(),
                licence: lic.clone(),
            });
        }
        Ok(out)
    }

    /// The certificate of `name`, in force; an institution's own only (another's does
    /// not exist for it).
    pub async fn certificate(
        &self,
        ctx: &CallContext,
        name: &LicenceName,
    ) -> Result<IssuedCertificate, PublicError> {
        let lic = self.get_licence(ctx, name).await?.value;
        if lic.state != LicenceState::Active {
            return Err(PublicError::NotInForce(lic.state));
        }
        let c = self.db().conn();
        let inst = self.get_institution(ctx, &name.parent()).await?.value;
        let code = store::code_of(c, &name.id).await?.ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "{name} is in force without a verification code"
            ))
        })?;
        let number = crate::store::licence_number(c, name).await?;
        let granted_us = lic
            .history
            .iter()
            .find(|h| h.kind == LicenceEventKind::Approved)
            .map(|h| h.time_us);
        let html = certificate::render(&certificate::Certificate {
            institution: &inst,
            licence: &lic,
            number,
            code: &code,
            granted_us,
        })
        .map_err(|e| ApiError::internal(anyhow::anyhow!("the QR code of {code}: {e}")))?;
        Ok(IssuedCertificate { html, code })
    }
}
