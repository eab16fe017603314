//! The registry's eligibility reasons, as its peers pass them on to their callers: each
//! reason's stable token and its Persian text, written once here.

use mosharekat_api::registry::v1 as reg;
use mosharekat_platform::error::ApiError;

/// The stable reason token of an eligibility answer (`LICENCE_SUSPENDED`, …).
pub fn reason_token(r: i32) -> String {
    reg::EligibilityReason::try_from(r)
        .map(|r| {
            r.as_str_name()
                .trim_start_matches("ELIGIBILITY_REASON_")
                .to_owned()
        })
        .unwrap_or_else(|_| "UNSPECIFIED".into())
}

/// Refuses with `FAILED_PRECONDITION` and the registry's reason unless eligible.
pub fn require_eligible(
    answer: &reg::CheckEligibilityResponse,
    what: &str,
) -> Result<(), ApiError> {
    if answer.eligible {
        return Ok(());
    }
    let reason = reason_token(answer.reason);
    let persian = match reason.as_str() {
        "NO_LICENCE" => "نهاد مجوزی از دستگاه قضایی ندارد.",
        "LICENCE_PENDING" => "مجوز نهاد هنوز در انتظار تأیید است.",
        "LICENCE_SUSPENDED" => "مجوز نهاد تعلیق شده است.",
        "LICENCE_REVOKED" => "مجوز نهاد لغو شده است.",
        "LICENCE_EXPIRED" => "اعتبار مجوز نهاد به پایان رسیده است.",
        "AREA_NOT_LICENSED" => "مجوز نهاد این حوزهٔ فعالیت را در بر نمی‌گیرد.",
        "ACTION_NOT_LICENSED" => "مجوز نهاد این اقدام را در بر نمی‌گیرد.",
        "INSTITUTION_DISSOLVED" => "نهاد منحل شده است.",
        _ => "نهاد مجاز به این اقدام نیست.",
    };
    Err(ApiError::precondition(
        reason.clone(),
        format!("the institution may not {what}: {reason}"),
        persian,
    ))
}
