//! The registry, as the use cases ask it: its answers turned into this service's terms
//! at this boundary.

use mosharekat_api::registry::v1 as reg;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::error::ApiError;
use mosharekat_registry_client::RegistryPeer;

use crate::app::Candidate;
use crate::model::{ActivityArea, Contact, Permission, Unknown};
use crate::names::InstitutionId;

fn action(p: Permission) -> reg::PermittedAction {
    match p {
        Permission::FileLawsuit => reg::PermittedAction::FileLawsuit,
        Permission::ReportCrime => reg::PermittedAction::ReportCrime,
        Permission::FileComplaint => reg::PermittedAction::FileComplaint,
        Permission::AcceptReferrals => reg::PermittedAction::AcceptReferrals,
    }
}

/// `None` when the registry finds `institution` eligible for `permission` now; else its
/// reason (an `EligibilityReason`).
pub async fn eligibility(
    registry: &RegistryPeer,
    ctx: &CallContext,
    institution: &InstitutionId,
    permission: Permission,
    area: ActivityArea,
    province: &str,
) -> Result<Option<i32>, ApiError> {
    let answer = registry
        .eligibility(
            ctx,
            &institution.name(),
            action(permission),
            area.code(),
            province,
        )
        .await?;
    Ok((!answer.eligible).then_some(answer.reason))
}

/// The institution's display name and e-mail as the registry shows them (the addressee of
/// its notices); `None` when the registry does not know it.
pub async fn contact(
    registry: &RegistryPeer,
    ctx: &CallContext,
    institution: &InstitutionId,
) -> Result<Option<Contact>, ApiError> {
    Ok(registry
        .get_institution(ctx, &institution.name())
        .await?
        .map(|i| Contact {
            institution: institution.clone(),
            display_name: i.display_name,
            email: i.email,
            unknown: Unknown::default(),
        }))
}

/// Every institution of the province holding an active licence in the area.
pub async fn licensed_institutions(
    registry: &RegistryPeer,
    ctx: &CallContext,
    province: &str,
    area: ActivityArea,
) -> Result<Vec<Candidate>, ApiError> {
    Ok(registry
        .licensed_institutions(ctx, province, area.code())
        .await?
        .into_iter()
        .filter_map(|i| {
            Some(Candidate {
                institution: InstitutionId::from_name(&i.name)?,
                display_name: i.display_name,
                judicial_district: String::new(),
            })
        })
        .collect())
}

/// The most questions the registry answers in one `BatchCheckEligibility`.
const BATCH: usize = 100;

/// Those of `candidates` eligible now to take referrals in the area and province: one
/// batched question to the registry per hundred candidates, answered in order.
pub async fn eligible_candidates(
    registry: &RegistryPeer,
    ctx: &CallContext,
    candidates: Vec<Candidate>,
    area: ActivityArea,
    province: &str,
) -> Result<Vec<Candidate>, ApiError> {
    let mut out = Vec::with_capacity(candidates.len());
    let mut rest = candidates.into_iter().peekable();
    while rest.peek().is_some() {
        let chunk: Vec<Candidate> = rest.by_ref().take(BATCH).collect();
        let questions = chunk
            .iter()
            .map(|c| reg::CheckEligibilityRequest {
                institution: c.institution.name(),
                action: action(Permission::AcceptReferrals) as i32,
                activity_area: area.code(),
                province: province.to_owned(),
            })
            .collect();
        let answers = registry.eligibility_batch(ctx, questions).await?;
        out.extend(
            chunk
                .into_iter()
                .zip(answers)
                .filter(|(_, a)| a.eligible)
                // The district of the licence the answer rests on (mediation regulation art. 9).
                .map(|(c, a)| Candidate {
                    judicial_district: a.licence_judicial_district,
                    ..c
                }),
        );
    }
    Ok(out)
}
