//! Why the working group refuses a change, as the rules say it, and the one conversion to
//! the API's error: each reason code, its English and its Persian text written here once.

use mosharekat_api::registry::v1 as reg;
use mosharekat_platform::error::ApiError;

use crate::domain::MeetingState;
use crate::rules::{MeetingAction, SeatRefusal};

/// A refusal by the meeting service's rules (FAILED_PRECONDITION with a reason code).
#[derive(Debug, Clone, PartialEq)]
pub enum MeetingError {
    /// The seat cannot be taken beside those held.
    SeatRefusal(SeatRefusal),
    /// A representative's institution holds no licence in force; the registry's
    /// eligibility reason (its number in the registry's API), whose token and Persian
    /// text the registry's client owns.
    NotLicensed {
        registry_reason: i32,
    },
    /// The member's term has already ended.
    MemberNotSeated,
    /// The meeting's life cycle does not allow `action` in state `from`.
    StateConflict {
        from: MeetingState,
        action: MeetingAction,
    },
    /// Not enough voting members present, or nobody to chair.
    NoQuorum {
        voting_present: i32,
        required: i32,
        explanation: String,
    },
    /// The agenda is final: it cannot be set again.
    AgendaFinal,
    /// The agenda is final already: it cannot be finalised again.
    AgendaAlreadyFinal,
    MinutesNotApproved,
    /// The minutes were hashed in a form this release does not know.
    MinutesHashVersionUnknown(i32),
    /// Progress is reported only on an open or in-progress resolution.
    ProgressRefused,
    /// Only an open or in-progress resolution can be cancelled.
    CancelRefused,
    /// A deadline the legal calendar cannot count (INVALID_ARGUMENT naming the field).
    Deadline {
        field: &'static str,
        why: String,
    },
}

fn state_text(s: MeetingState) -> String {
    s.to_string()
}

impl From<MeetingError> for ApiError {
    fn from(e: MeetingError) -> Self {
        use MeetingError as E;
        fn p(reason: &str, english: impl Into<String>, persian: impl Into<String>) -> ApiError {
            ApiError::precondition(reason, english, persian)
        }
        match e {
            E::SeatRefusal(r) => {
                let (reason, english, persian) = match r {
                    SeatRefusal::ChairTaken => (
                        "CHAIR_TAKEN",
                        "the working group already has a chair",
                        "کارگروه رئیس دارد.",
                    ),
                    SeatRefusal::SecretaryTaken => (
                        "SECRETARY_TAKEN",
                        "the working group already has a secretary",
                        "کارگروه دبیر دارد.",
                    ),
                    SeatRefusal::RepresentativesFull => (
                        "REPRESENTATIVES_FULL",
                        "the working group already has six institution representatives",
                        "شش نمایندهٔ نهادهای مردمی پیش‌تر عضو شده‌اند.",
                    ),
                    SeatRefusal::InstitutionAlreadySeated => (
                        "INSTITUTION_ALREADY_SEATED",
                        "this institution is already represented",
                        "این نهاد پیش‌تر نماینده دارد.",
                    ),
                    SeatRefusal::PersonAlreadySeated => (
                        "PERSON_ALREADY_SEATED",
                        "this person already holds a seat",
                        "این شخص پیش‌تر عضو کارگروه است.",
                    ),
                };
                p(reason, english, persian)
            }
            E::NotLicensed { registry_reason } => {
                // The registry's reason, its token and text, as its client passes them on.
                let answer = reg::CheckEligibilityResponse {
                    eligible: false,
                    reason: registry_reason,
                    ..Default::default()
                };
                mosharekat_registry_client::require_eligible(
                    &answer,
                    "have a representative in the working group",
                )
                .err()
                .unwrap_or_else(|| {
                    ApiError::internal(anyhow::anyhow!("a refusal without a reason"))
                })
            }
            E::MemberNotSeated => p(
                "MEMBER_NOT_SEATED",
                "the member's term has already ended",
                "دورهٔ عضویت این عضو پیش‌تر پایان یافته است.",
            ),
            E::StateConflict {
                from,
                action: MeetingAction::RecordResolution,
            } => p(
                "MEETING_STATE_CONFLICT",
                format!(
                    "resolutions are recorded in a meeting in session, not one that is {}",
                    state_text(from)
                ),
                "مصوبه فقط در جلسهٔ در حال برگزاری ثبت می‌شود.",
            ),
            E::StateConflict { from, action } => p(
                "MEETING_STATE_CONFLICT",
                format!(
                    "cannot {} a meeting that is {}",
                    action.verb(),
                    state_text(from)
                ),
                if from == MeetingState::Closed {
                    "صورتجلسه تأیید شده و جلسه دیگر تغییرپذیر نیست.".to_owned()
                } else {
                    format!(
                        "این اقدام در وضعیت کنونی جلسه ({}) ممکن نیست.",
                        state_text(from)
                    )
                },
            ),
            E::NoQuorum {
                voting_present,
                required,
                explanation,
            } => {
                let mut e = p(
                    "NO_QUORUM",
                    format!("the meeting cannot start without quorum: {explanation}"),
                    "جلسه به حد نصاب نرسیده است.",
                );
                if let ApiError::FailedPrecondition { metadata, .. } = &mut e {
                    metadata.insert("voting_present".into(), voting_present.to_string());
                    metadata.insert("required".into(), required.to_string());
                }
                e
            }
            E::AgendaFinal => p(
                "AGENDA_FINAL",
                "the agenda is final",
                "دستور جلسه نهایی شده است.",
            ),
            E::AgendaAlreadyFinal => p(
                "AGENDA_FINAL",
                "the agenda is already final",
                "دستور جلسه پیش‌تر نهایی شده است.",
            ),
            E::MinutesNotApproved => p(
                "MINUTES_NOT_APPROVED",
                "the minutes of this meeting are not approved yet",
                "صورتجلسهٔ این جلسه هنوز تأیید نشده است.",
            ),
            E::MinutesHashVersionUnknown(v) => p(
                "MINUTES_HASH_VERSION_UNKNOWN",
                format!("the minutes were hashed in form {v}, which this release does not know"),
                "نسخهٔ درهم‌سازی این صورتجلسه برای این نسخهٔ سامانه ناشناخته است.",
            ),
            E::ProgressRefused => p(
                "RESOLUTION_STATE_CONFLICT",
                "progress is reported only on an adopted resolution that is open or in progress",
                "گزارش پیشرفت فقط برای مصوبهٔ باز ثبت می‌شود.",
            ),
            E::CancelRefused => p(
                "RESOLUTION_STATE_CONFLICT",
                "only an open resolution can be cancelled",
                "فقط مصوبهٔ باز لغو می‌شود.",
            ),
            E::Deadline { field, why } => ApiError::invalid(field, why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(e: MeetingError) -> String {
        match ApiError::from(e) {
            ApiError::FailedPrecondition {
                reason, persian, ..
            } => {
                assert!(!persian.is_empty());
                reason
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_refusal_has_its_reason_code() {
        use MeetingError as E;
        for (e, want) in [
            (E::SeatRefusal(SeatRefusal::ChairTaken), "CHAIR_TAKEN"),
            (E::NotLicensed { registry_reason: 2 }, "NO_LICENCE"),
            (E::MemberNotSeated, "MEMBER_NOT_SEATED"),
            (
                E::StateConflict {
                    from: MeetingState::Closed,
                    action: MeetingAction::Start,
                },
                "MEETING_STATE_CONFLICT",
            ),
            (
                E::NoQuorum {
                    voting_present: 1,
                    required: 2,
                    explanation: String::new(),
                },
                "NO_QUORUM",
            ),
            (E::AgendaFinal, "AGENDA_FINAL"),
            (E::MinutesNotApproved, "MINUTES_NOT_APPROVED"),
            (
                E::MinutesHashVersionUnknown(7),
                "MINUTES_HASH_VERSION_UNKNOWN",
            ),
            (E::CancelRefused, "RESOLUTION_STATE_CONFLICT"),
        ] {
            assert_eq!(reason(e), want);
        }
    }
}
