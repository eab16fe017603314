//! The registry's eligibility reasons, as its peers pass them on to their callers: each
//! reason's stable token and its Persian text, written once here. The registry itself
//! answers with this same table (a dissolved institution's refusals).

use mosharekat_api::registry::v1 as reg;
use mosharekat_platform::error::ApiError;

use reg::EligibilityReason as R;

/// Every reason with its token (the enum's name after `ELIGIBILITY_REASON_`) and Persian
/// text.
pub const REASONS: &[(R, &str, &str)] = &[
    (R::Eligible, "ELIGIBLE", "نهاد مجاز به این اقدام است."),
    (
        R::NoLicence,
        "NO_LICENCE",
        "نهاد مجوزی از دستگاه قضایی ندارد.",
    ),
    (
        R::LicencePending,
        "LICENCE_PENDING",
        "مجوز نهاد هنوز در انتظار تأیید است.",
    ),
    (
        R::LicenceSuspended,
        "LICENCE_SUSPENDED",
        "مجوز نهاد تعلیق شده است.",
    ),
    (
        R::LicenceRevoked,
        "LICENCE_REVOKED",
        "مجوز نهاد لغو شده است.",
    ),
    (
        R::LicenceExpired,
        "LICENCE_EXPIRED",
        "اعتبار مجوز نهاد به پایان رسیده است.",
    ),
    (
        R::AreaNotLicensed,
        "AREA_NOT_LICENSED",
        "مجوز نهاد این حوزهٔ فعالیت را در بر نمی‌گیرد.",
    ),
    (
        R::ActionNotLicensed,
        "ACTION_NOT_LICENSED",
        "مجوز نهاد این اقدام را در بر نمی‌گیرد.",
    ),
    (
        R::InstitutionDissolved,
        "INSTITUTION_DISSOLVED",
        "نهاد منحل شده است.",
    ),
];

/// For a reason this table does not know (a newer registry's).
const UNKNOWN: (&str, &str) = ("UNSPECIFIED", "نهاد مجاز به این اقدام نیست.");

fn entry(r: R) -> (&'static str, &'static str) {
    REASONS
        .iter()
        .find(|(x, _, _)| *x == r)
        .map_or(UNKNOWN, |(_, t, p)| (*t, *p))
}

/// The stable token of a reason (`LICENCE_SUSPENDED`).
pub fn token(r: R) -> &'static str {
    entry(r).0
}

/// The Persian text of a reason.
pub fn persian(r: R) -> &'static str {
    entry(r).1
}

/// The stable reason token of an eligibility answer's wire value (`LICENCE_SUSPENDED`, …).
pub fn reason_token(r: i32) -> String {
    R::try_from(r).map_or(UNKNOWN.0, token).to_owned()
}

/// Refuses with `FAILED_PRECONDITION` and the registry's reason unless eligible.
pub fn require_eligible(
    answer: &reg::CheckEligibilityResponse,
    what: &str,
) -> Result<(), ApiError> {
    if answer.eligible {
        return Ok(());
    }
    let (reason, persian) = R::try_from(answer.reason).map_or(UNKNOWN, entry);
    Err(ApiError::precondition(
        reason,
        format!("the institution may not {what}: {reason}"),
        persian,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_token_and_text_once() {
        for r in [
            R::Eligible,
            R::NoLicence,
            R::LicencePending,
            R::LicenceSuspended,
            R::LicenceRevoked,
            R::LicenceExpired,
            R::AreaNotLicensed,
            R::ActionNotLicensed,
            R::InstitutionDissolved,
        ] {
            assert_eq!(
                format!("ELIGIBILITY_REASON_{}", token(r)),
                r.as_str_name(),
                "{r:?}"
            );
            assert_eq!(REASONS.iter().filter(|(x, _, _)| *x == r).count(), 1);
        }
        assert_eq!(reason_token(0), "UNSPECIFIED");
        assert_eq!(reason_token(99), "UNSPECIFIED");
        let refused = reg::CheckEligibilityResponse {
            eligible: false,
            reason: R::LicenceSuspended as i32,
            ..Default::default()
        };
        let ApiError::FailedPrecondition {
            reason, persian, ..
        } = require_eligible(&refused, "file").unwrap_err()
        else {
            panic!("not a precondition")
        };
        assert_eq!(
            (reason.as_str(), persian.as_str()),
            ("LICENCE_SUSPENDED", "مجوز نهاد تعلیق شده است.")
        );
    }
}
