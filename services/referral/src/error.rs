//! The referral service's errors, and their one conversion to the API's: each reason code
//! and its English and Persian texts are written here and nowhere else (the eligibility
//! reasons' texts are the registry's, from `mosharekat_registry_client::eligibility`).

use mosharekat_api::registry::v1 as reg;
use mosharekat_platform::error::ApiError;

use crate::model::ConsentBasis;

/// Why a use case refused, in the domain's words.
#[derive(Debug)]
pub enum ReferralError {
    /// The action is not one the resource's state allows.
    StateConflict {
        /// `filing` or `referral`.
        kind: &'static str,
        /// The state it is in (`SUBMITTED`).
        from: &'static str,
        /// What was asked (`withdraw`).
        action: &'static str,
    },
    /// A victim's consent (article 66 note 1) is missing: `party` is the victim's index,
    /// `needs` who may give it.
    ConsentRequired {
        party: usize,
        needs: &'static [ConsentBasis],
    },
    /// The registry says the institution may not do this (`reason` is its
    /// `EligibilityReason`); `what` says what was asked, in English.
    NotEligible { reason: i32, what: &'static str },
    /// Only a minor or a victim can be sealed.
    PartyNotSealable,
    /// The due time is extended once at most (mediation regulation art. 28).
    AlreadyExtended,
    /// A mediation or reconciliation is offered only with every party's agreement
    /// (Criminal Procedure Code art. 82); `party` is the first without one.
    AgreementRequired { party: usize },
    /// A referral still offered is reassigned only once its answer time has passed.
    AnswerNotOverdue,
    /// The one extension was already asked for (its request's state).
    ExtensionAlreadyRequested(&'static str),
    /// No extension is asked for and not yet answered.
    NoExtensionRequested,
    /// The case number is already given at that authority.
    CaseNumberTaken {
        case_number: String,
        authority: String,
    },
    /// The legal calendar cannot count this deadline (a day beyond the years it accepts).
    Deadline(String),
    /// A field of the request that the rules refuse, once the resource is known.
    Invalid { field: String, message: String },
    /// The caller's role may not do this to this resource.
    Forbidden(String),
    /// What the platform refused (storage, etag, not found, the peer).
    Api(ApiError),
}

impl From<ApiError> for ReferralError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<mosharekat_calendar::DeadlineError> for ReferralError {
    fn from(e: mosharekat_calendar::DeadlineError) -> Self {
        Self::Deadline(e.to_string())
    }
}

impl From<mosharekat_calendar::CalendarError> for ReferralError {
    fn from(e: mosharekat_calendar::CalendarError) -> Self {
        Self::Deadline(e.to_string())
    }
}

impl ReferralError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Reason codes of the rules of `domain.md` "Referrals: more of the law".
pub const REASON_AGREEMENT_REQUIRED: &str = "PARTY_AGREEMENT_REQUIRED";
pub const REASON_ANSWER_NOT_OVERDUE: &str = "ANSWER_NOT_OVERDUE";
pub const REASON_EXTENSION_ALREADY_REQUESTED: &str = "EXTENSION_ALREADY_REQUESTED";
pub const REASON_NO_EXTENSION_REQUESTED: &str = "NO_EXTENSION_REQUESTED";

/// The one conversion.
impl From<ReferralError> for ApiError {
    fn from(e: ReferralError) -> Self {
        use ReferralError as E;
        match e {
            E::StateConflict { kind, from, action } => ApiError::precondition(
                format!("{}_STATE_CONFLICT", kind.to_uppercase()),
                format!("cannot {action} a {kind} that is {from}"),
                format!("این اقدام در وضعیت کنونی ({from}) ممکن نیست."),
            ),
            E::ConsentRequired { party, needs } => {
                let who = needs
                    .iter()
                    .map(|b| b.as_str().to_lowercase().replace('_', " "))
                    .collect::<Vec<_>>()
                    .join(" or ");
                ApiError::precondition(
                    "VICTIM_CONSENT_REQUIRED",
                    format!(
                        "the victim's consent is required (Criminal Procedure Code art. 66, note 1): \
                         victim parties[{party}] needs the recorded consent of: {who}"
                    ),
                    "برای این شکایت یا اعلام جرم رضایت بزه‌دیده (یا ولی یا قیم او) باید ثبت شود.",
                )
            }
            E::NotEligible { reason, what } => {
                let answer = reg::CheckEligibilityResponse {
                    eligible: false,
                    reason,
                    ..Default::default()
                };
                match mosharekat_registry_client::require_eligible(&answer, what) {
                    Err(e) => e,
                    // Not reached: an answer that is not eligible is always refused.
                    Ok(()) => {
                        ApiError::internal(anyhow::anyhow!("eligibility refused without a reason"))
                    }
                }
            }
            E::PartyNotSealable => ApiError::precondition(
                "PARTY_NOT_SEALABLE",
                "only a party who is a minor or a victim can be sealed",
                "فقط طرفی که کودک یا بزه‌دیده است محرمانه می‌شود.",
            ),
            E::AlreadyExtended => ApiError::precondition(
                "ALREADY_EXTENDED",
                "the due time may be extended only once (mediation regulation art. 28)",
                "مهلت رسیدگی فقط یک بار قابل تمدید است.",
            ),
            E::AgreementRequired { party } => {
                let mut e = ApiError::precondition(
                    REASON_AGREEMENT_REQUIRED,
                    format!(
                        "every party's agreement to mediation or reconciliation is required \
                         (Criminal Procedure Code art. 82): parties[{party}] has none recorded"
                    ),
                    format!(
                        "ارجاع به میانجیگری یا صلح و سازش بدون موافقت همهٔ طرفین ممکن نیست؛ موافقت طرف {} ثبت نشده است.",
                        mosharekat_persian::digits::to_persian_digits(&(party + 1).to_string())
                    ),
                );
                if let ApiError::FailedPrecondition { metadata, .. } = &mut e {
                    metadata.insert("party_index".into(), party.to_string());
                }
                e
            }
            E::AnswerNotOverdue => ApiError::precondition(
                REASON_ANSWER_NOT_OVERDUE,
                "an offered referral may be reassigned only once its answer time has passed",
                "ارجاعی که هنوز مهلت پاسخ آن نگذشته است به نهاد دیگری سپرده نمی‌شود.",
            ),
            E::ExtensionAlreadyRequested(state) => ApiError::precondition(
                REASON_EXTENSION_ALREADY_REQUESTED,
                format!(
                    "the one extension was already asked for (mediation regulation art. 28); the request is {state}"
                ),
                "درخواست تمدید مهلت پیش‌تر داده شده است.",
            ),
            E::NoExtensionRequested => ApiError::precondition(
                REASON_NO_EXTENSION_REQUESTED,
                "no extension is asked for and awaiting an answer",
                "درخواست تمدیدی در انتظار پاسخ نیست.",
            ),
            E::CaseNumberTaken {
                case_number,
                authority,
            } => ApiError::already_exists("case number", format!("{case_number} at {authority}")),
            E::Deadline(why) => ApiError::precondition(
                "DEADLINE_NOT_COMPUTABLE",
                format!("the legal calendar cannot count this deadline: {why}"),
                "این مهلت را با تقویم رسمی نمی‌توان محاسبه کرد.",
            ),
            E::Invalid { field, message } => ApiError::invalid(field, message),
            E::Forbidden(why) => ApiError::PermissionDenied(why),
            E::Api(e) => e,
        }
    }
}

impl From<ReferralError> for tonic::Status {
    fn from(e: ReferralError) -> Self {
        ApiError::from(e).into()
    }
}

pub type Result<T, E = ReferralError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(e: ReferralError) -> String {
        match ApiError::from(e) {
            ApiError::FailedPrecondition { reason, .. } => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_refusal_has_its_reason_code() {
        assert_eq!(
            reason(ReferralError::StateConflict {
                kind: "referral",
                from: "OFFERED",
                action: "resolve"
            }),
            "REFERRAL_STATE_CONFLICT"
        );
        assert_eq!(
            reason(ReferralError::ConsentRequired {
                party: 0,
                needs: &[ConsentBasis::Victim]
            }),
            "VICTIM_CONSENT_REQUIRED"
        );
        assert_eq!(
            reason(ReferralError::PartyNotSealable),
            "PARTY_NOT_SEALABLE"
        );
        assert_eq!(reason(ReferralError::AlreadyExtended), "ALREADY_EXTENDED");
        assert_eq!(
            reason(ReferralError::AgreementRequired { party: 1 }),
            "PARTY_AGREEMENT_REQUIRED"
        );
        assert_eq!(
            reason(ReferralError::AnswerNotOverdue),
            "ANSWER_NOT_OVERDUE"
        );
        assert_eq!(
            reason(ReferralError::ExtensionAlreadyRequested("PENDING")),
            "EXTENSION_ALREADY_REQUESTED"
        );
        assert_eq!(
            reason(ReferralError::NoExtensionRequested),
            "NO_EXTENSION_REQUESTED"
        );
        assert_eq!(
            reason(ReferralError::Deadline("year 1700".into())),
            "DEADLINE_NOT_COMPUTABLE"
        );
        assert_eq!(
            reason(ReferralError::NotEligible {
                reason: reg::EligibilityReason::LicenceSuspended as i32,
                what: "file this"
            }),
            "LICENCE_SUSPENDED"
        );
    }
}
