//! The registry's errors and their one conversion to the API's: each reason code, its
//! English and its Persian text are written here once (the eligibility reasons' texts are
//! the registry client's table, which the peers pass on).

use mosharekat_platform::error::ApiError;
use mosharekat_registry_client::eligibility;

use crate::api::convert;
use crate::names::{InstitutionId, InstitutionName, LicenceName};
use crate::rules::{ActivityArea, LicenceState, Refusal};

/// What a dissolved institution was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhileDissolved {
    /// Apply for a licence.
    Licensing,
    /// Change its record.
    Changing,
    /// Be dissolved again.
    Dissolving,
    /// Put a licence in force (approve, reinstate, renew).
    PuttingInForce,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A rule of the licence life cycle or the statute refuses, for this institution.
    #[error("refused: {1:?}")]
    Refused(InstitutionId, Refusal),
    #[error("the institution is dissolved")]
    Dissolved(WhileDissolved),
    #[error("{0} not found")]
    InstitutionNotFound(InstitutionName),
    #[error("{0} not found")]
    LicenceNotFound(LicenceName),
    /// An institution with this national ID is registered already.
    #[error("{0} already exists")]
    DuplicateNationalId(InstitutionName),
    /// Bad input (fields named), a stale etag, the database: as the platform says them.
    #[error(transparent)]
    Api(#[from] ApiError),
}

fn area_tokens(areas: &[ActivityArea]) -> Vec<&'static str> {
    areas.iter().map(|a| convert::area_token(*a)).collect()
}

fn with_metadata(mut e: ApiError, entries: &[(&str, String)]) -> ApiError {
    if let ApiError::FailedPrecondition { metadata, .. } = &mut e {
        for (k, v) in entries {
            metadata.insert((*k).into(), v.clone());
        }
    }
    e
}

fn state_conflict(from: LicenceState, verb: &str) -> ApiError {
    ApiError::precondition(
        "LICENCE_STATE_CONFLICT",
        format!("cannot {verb} a licence that is {}", from.token()),
        format!("این اقدام برای مجوزی در وضعیت {} ممکن نیست.", from.token()),
    )
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use RegistryError as E;
        match e {
            E::Refused(_, Refusal::StateConflict { from, action }) => {
                state_conflict(from, action.verb())
            }
            E::Refused(_, Refusal::AreasNotInStatute(outside)) => {
                let areas = area_tokens(&outside);
                with_metadata(
                    ApiError::precondition(
                        "AREA_NOT_IN_STATUTE",
                        format!(
                            "licence.activity_areas must be among the institution's statute areas; not: {}",
                            areas.join(", ")
                        ),
                        "حوزه‌های مجوز باید از حوزه‌های فعالیت مندرج در اساسنامهٔ نهاد باشند.",
                    ),
                    &[("areas", areas.join(","))],
                )
            }
            E::Refused(inst, Refusal::AreasCoveredByLicence { areas, licences }) => {
                let areas = area_tokens(&areas);
                let licences: Vec<String> = licences
                    .into_iter()
                    .map(|id| {
                        LicenceName {
                            institution: inst.clone(),
                            id,
                        }
                        .to_string()
                    })
                    .collect();
                with_metadata(
                    ApiError::precondition(
                        "AREAS_COVERED_BY_LICENCE",
                        format!(
                            "institution.activity_areas cannot drop {}: covered by {} (pending, active or \
                             suspended); revoke or reject the licence first, or keep the areas",
                            areas.join(", "),
                            licences.join(", ")
                        ),
                        format!(
                            "حوزه‌های {} را نمی‌توان از اساسنامهٔ نهاد حذف کرد، زیرا مجوزِ در انتظار، معتبر یا \
                             تعلیق‌شدهٔ نهاد آن‌ها را در بر می‌گیرد.",
                            areas.join("، ")
                        ),
                    ),
                    &[("areas", areas.join(",")), ("licences", licences.join(","))],
                )
            }
            E::Refused(institution, Refusal::AlreadyInForce(id)) => ApiError::precondition(
                "LICENCE_ALREADY_IN_FORCE",
                format!(
                    "the institution already holds licence {} in this province",
                    LicenceName { institution, id }
                ),
                "این نهاد در این استان مجوز معتبر یا تعلیق‌شدهٔ دیگری دارد.",
            ),
            E::Dissolved(what) => {
                let reason =
                    convert::reason_to_pb(crate::rules::EligibilityReason::InstitutionDissolved);
                let english = match what {
                    WhileDissolved::Licensing => "a dissolved institution cannot be licensed",
                    WhileDissolved::Changing => "a dissolved institution cannot be changed",
                    WhileDissolved::Dissolving => "the institution is already dissolved",
                    WhileDissolved::PuttingInForce => "the institution is dissolved",
                };
                ApiError::precondition(
                    eligibility::token(reason),
                    english,
                    eligibility::persian(reason),
                )
            }
            E::InstitutionNotFound(name) => ApiError::not_found("institution", name.to_string()),
            E::LicenceNotFound(name) => ApiError::not_found("licence", name.to_string()),
            E::DuplicateNationalId(name) => {
                ApiError::already_exists("institution", name.to_string())
            }
            E::Api(e) => e,
        }
    }
}

impl From<RegistryError> for tonic::Status {
    fn from(e: RegistryError) -> Self {
        ApiError::from(e).into()
    }
}
