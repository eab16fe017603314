//! `mosharekat.registry.v1.PublicRecordService`, the tonic edge of the public record:
//! no role check (the edge lets these methods through without a token, and only when the
//! switch is on), the request into domain types, the use case, the answer built field by
//! field from what the public may know. And the certificate's RPC of the
//! `RegistryService`, which is authenticated.

use mosharekat_api::registry::v1 as pb;
use mosharekat_api::registry::v1::public_record_service_server::PublicRecordService;
use mosharekat_calendar::SolarDate;
use mosharekat_persian::LegalEntityId;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::to_timestamp;
use mosharekat_platform::error::ApiError;
use mosharekat_platform::pagination;
use tonic::{Request, Response, Status};

use super::code::VerificationCode;
use super::{CERTIFICATE_READERS, Change, Verified};
use crate::api::convert;
use crate::app::Registry;
use crate::names::{self, LicenceName};
use crate::rules::{Licence, LicenceEventKind};

/// The day of `us` in Tehran, Solar Hijri: `YYYY/MM/DD` and the Persian long form.
pub fn solar_day(us: i64) -> (String, String) {
    chrono::DateTime::from_timestamp_micros(us)
        .and_then(|t| SolarDate::from_instant(t).ok())
        .map(|d| (d.to_string(), d.to_persian_long()))
        .unwrap_or_default()
}

fn areas(l: &Licence) -> Vec<i32> {
    l.terms
        .activity_areas
        .iter()
        .map(|a| convert::area_to_pb(*a))
        .collect()
}

fn actions(l: &Licence) -> Vec<i32> {
    l.terms.permitted_actions.iter().map(|a| a.code()).collect()
}

fn verified_to_pb(v: &Verified) -> pb::VerifiedLicence {
    let (date, text) = solar_day(v.licence.terms.valid_until_us);
    pb::VerifiedLicence {
        verification_code: v.code.to_string(),
        in_force: v.in_force(),
        state: v.licence.state.code(),
        institution_display_name: v.institution_display_name.clone(),
        activity_areas: areas(&v.licence),
        permitted_actions: actions(&v.licence),
        province: v.licence.terms.province.clone(),
        valid_until: Some(to_timestamp(v.licence.terms.valid_until_us)),
        valid_until_date: date,
        valid_until_text: text,
    }
}

/// The public record's name of a licence event's kind.
pub fn change_kind(k: LicenceEventKind) -> pb::LicenceChangeKind {
    match k {
        LicenceEventKind::Approved => pb::LicenceChangeKind::Granted,
        LicenceEventKind::Suspended => pb::LicenceChangeKind::Suspended,
        LicenceEventKind::Reinstated => pb::LicenceChangeKind::Reinstated,
        LicenceEventKind::Revoked => pb::LicenceChangeKind::Revoked,
        _ => pb::LicenceChangeKind::Unspecified,
    }
}

fn change_to_pb(c: &Change) -> pb::LicenceChange {
    pb::LicenceChange {
        sequence: c.sequence,
        kind: change_kind(c.kind) as i32,
        time: Some(to_timestamp(c.time_us)),
        date: solar_day(c.time_us).0,
        institution_display_name: c.institution_display_name.clone(),
        institution_national_id: c.institution_national_id.clone(),
        verification_code: c.code.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        activity_areas: areas(&c.licence),
        permitted_actions: actions(&c.licence),
        province: c.licence.terms.province.clone(),
    }
}

/// The filters' fingerprint of the change feed's page tokens (it has none).
pub const CHANGES_FINGERPRINT_PARTS: &[&str] = &["public-licence-changes"];

/// A page of the change feed after `page_token`: the changes and the next page's token.
pub async fn changes_page(
    registry: &Registry,
    size: u64,
    page_token: &str,
) -> Result<(Vec<Change>, String), ApiError> {
    let fp = pagination::fingerprint(CHANGES_FINGERPRINT_PARTS);
    let after: i64 = pagination::decode(page_token, &fp, "page_token")?.unwrap_or(0);
    let mut rows = registry.licence_changes(after, size + 1).await?;
    let next = pagination::next_page(&mut rows, size, &fp, |c| c.sequence);
    Ok((rows, next))
}

#[tonic::async_trait]
impl PublicRecordService for Registry {
    #[tracing::instrument(skip_all)]
    async fn verify_licence(
        &self,
        request: Request<pb::VerifyLicenceRequest>,
    ) -> Result<Response<pb::VerifyLicenceResponse>, Status> {
        let req = request.into_inner();
        let found = match (
            req.code.trim().is_empty(),
            req.national_id.trim().is_empty(),
        ) {
            (false, true) => {
                let code = VerificationCode::parse(&req.code)
                    .map_err(|e| ApiError::invalid("code", e.describe()))?;
                self.verify_by_code(&code).await?
            }
            (true, false) => {
                let id = LegalEntityId::parse(&req.national_id)
                    .map_err(|e| ApiError::invalid("national_id", e.to_string()))?;
                self.verify_by_national_id(&id).await?
            }
            (true, true) => {
                return Err(
                    ApiError::invalid("code", "one of code and national_id is required").into(),
                );
            }
            (false, false) => {
                return Err(ApiError::invalid(
                    "national_id",
                    "must not be given with code: one of the two",
                )
                .into());
            }
        };
        Ok(Response::new(pb::VerifyLicenceResponse {
            licences: found.iter().map(verified_to_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_licence_changes(
        &self,
        request: Request<pb::ListLicenceChangesRequest>,
    ) -> Result<Response<pb::ListLicenceChangesResponse>, Status> {
        let req = request.into_inner();
        let size = pagination::page_size(req.page_size, "page_size")?;
        let (rows, next_page_token) = changes_page(self, size, &req.page_token).await?;
        Ok(Response::new(pb::ListLicenceChangesResponse {
            changes: rows.iter().map(change_to_pb).collect(),
            next_page_token,
        }))
    }
}

/// `RegistryService/ExportLicenceCertificate`: ADMIN, or the institution's own.
pub async fn export_certificate(
    registry: &Registry,
    request: Request<pb::ExportLicenceCertificateRequest>,
) -> Result<Response<pb::ExportLicenceCertificateResponse>, Status> {
    let ctx = CallContext::from_request(&request)?;
    ctx.require(CERTIFICATE_READERS)?;
    let name: LicenceName = names::parse(&request.get_ref().name, "name")?;
    let c = registry.certificate(&ctx, &name).await?;
    Ok(Response::new(pb::ExportLicenceCertificateResponse {
        html: c.html,
        verification_code: c.code.to_string(),
    }))
}
