//! The registry's rules, free of I/O: the licence life cycle, eligibility, and what makes
//! an institution or a licence well formed.

use mosharekat_api::common::v1::ActivityArea;
use mosharekat_api::registry::v1::{
    EligibilityReason, LicenceEventKind, LicenceState, PermittedAction,
};

/// A change asked of a licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenceAction {
    Approve,
    Reject,
    Suspend,
    Reinstate,
    Revoke,
    Renew,
    /// By the registry itself, when `valid_until` has passed.
    Expire,
}

impl LicenceAction {
    pub const ALL: [LicenceAction; 7] = [
        Self::Approve,
        Self::Reject,
        Self::Suspend,
        Self::Reinstate,
        Self::Revoke,
        Self::Renew,
        Self::Expire,
    ];

    pub fn event_kind(self) -> LicenceEventKind {
        match self {
            Self::Approve => LicenceEventKind::Approved,
            Self::Reject => LicenceEventKind::Rejected,
            Self::Suspend => LicenceEventKind::Suspended,
            Self::Reinstate => LicenceEventKind::Reinstated,
            Self::Revoke => LicenceEventKind::Revoked,
            Self::Renew => LicenceEventKind::Renewed,
            Self::Expire => LicenceEventKind::Expired,
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Suspend => "suspend",
            Self::Reinstate => "reinstate",
            Self::Revoke => "revoke",
            Self::Renew => "renew",
            Self::Expire => "expire",
        }
    }

    /// Whether the action needs a reason from the officer.
    pub fn needs_reason(self) -> bool {
        matches!(self, Self::Reject | Self::Suspend | Self::Revoke)
    }
}

/// The licence life cycle of `domain.md`: the state `action` leads to from `from` (as
/// read now, so an expired licence is `Expired`), or `None` when it is not allowed.
pub fn next_state(from: LicenceState, action: LicenceAction) -> Option<LicenceState> {
    use LicenceAction as A;
    use LicenceState as S;
    match (from, action) {
        (S::Pending, A::Approve) => Some(S::Active),
        (S::Pending, A::Reject) => Some(S::Rejected),
        (S::Active, A::Suspend) => Some(S::Suspended),
        (S::Suspended, A::Reinstate) => Some(S::Active),
        (S::Active | S::Suspended, A::Revoke) => Some(S::Revoked),
        (S::Active | S::Expired, A::Renew) => Some(S::Active),
        (S::Active, A::Expire) => Some(S::Expired),
        _ => None,
    }
}

/// The state a stored licence reads as at `now_us`: ACTIVE past its end is EXPIRED.
pub fn effective_state(stored: LicenceState, valid_until_us: i64, now_us: i64) -> LicenceState {
    if stored == LicenceState::Active && valid_until_us <= now_us {
        LicenceState::Expired
    } else {
        stored
    }
}

/// What eligibility needs to know of one licence.
#[derive(Debug, Clone)]
pub struct LicenceFacts {
    pub id: String,
    pub state: LicenceState,
    pub province_key: String,
    pub areas: Vec<ActivityArea>,
    pub actions: Vec<PermittedAction>,
    pub valid_from_us: i64,
}

/// May an institution do `action` in `area` now? `province_key`, when given, limits the
/// answer to licences valid in that province. Returns the reason and the licence it rests
/// on, if any.
pub fn decide_eligibility(
    dissolved: bool,
    licences: &[LicenceFacts],
    action: PermittedAction,
    area: ActivityArea,
    province_key: Option<&str>,
    now_us: i64,
) -> (EligibilityReason, Option<String>) {
    decide(
        dissolved,
        licences,
        Some((action, area)),
        province_key,
        now_us,
    )
}

/// Does an institution hold a licence in force now, for anything? The same reasons as
/// eligibility, without the area and action checks.
pub fn decide_licensed(
    dissolved: bool,
    licences: &[LicenceFacts],
    province_key: Option<&str>,
    now_us: i64,
) -> (EligibilityReason, Option<String>) {
    decide(dissolved, licences, None, province_key, now_us)
}

fn decide(
    dissolved: bool,
    licences: &[LicenceFacts],
    wanted: Option<(PermittedAction, ActivityArea)>,
    province_key: Option<&str>,
    now_us: i64,
) -> (EligibilityReason, Option<String>) {
    use EligibilityReason as R;
    if dissolved {
        return (R::InstitutionDissolved, None);
    }
    let candidates: Vec<&LicenceFacts> = licences
        .iter()
        .filter(|l| province_key.is_none_or(|p| l.province_key == p))
        .collect();
    let in_force: Vec<&&LicenceFacts> = candidates
        .iter()
        .filter(|l| l.state == LicenceState::Active && l.valid_from_us <= now_us)
        .collect();
    let Some((action, area)) = wanted else {
        if let Some(l) = in_force.first() {
            return (R::Eligible, Some(l.id.clone()));
        }
        return fallback(&candidates);
    };
    if let Some(l) = in_force
        .iter()
        .find(|l| l.areas.contains(&area) && l.actions.contains(&action))
    {
        return (R::Eligible, Some(l.id.clone()));
    }
    if let Some(l) = in_force.first() {
        return if in_force.iter().any(|l| l.areas.contains(&area)) {
            (R::ActionNotLicensed, Some(l.id.clone()))
        } else {
            (R::AreaNotLicensed, Some(l.id.clone()))
        };
    }
    fallback(&candidates)
}

/// Why no licence is in force: the most telling state among the institution's licences.
fn fallback(candidates: &[&LicenceFacts]) -> (EligibilityReason, Option<String>) {
    use EligibilityReason as R;
    let find = |pred: &dyn Fn(&LicenceFacts) -> bool| {
        candidates.iter().find(|l| pred(l)).map(|l| l.id.clone())
    };
    if let Some(id) = find(&|l| l.state == LicenceState::Suspended) {
        return (R::LicenceSuspended, Some(id));
    }
    if let Some(id) = find(&|l| l.state == LicenceState::Expired) {
        return (R::LicenceExpired, Some(id));
    }
    // Approved but not yet in force reads as pending, as does an application.
    if let Some(id) = find(&|l| matches!(l.state, LicenceState::Pending | LicenceState::Active)) {
        return (R::LicencePending, Some(id));
    }
    if let Some(id) = find(&|l| l.state == LicenceState::Revoked) {
        return (R::LicenceRevoked, Some(id));
    }
    (R::NoLicence, None)
}

/// Whether a licence in `state` still holds its areas against the statute: an application
/// may yet be approved and a suspension lifted; revoked, rejected and expired ones are done.
pub fn holds_areas(state: LicenceState) -> bool {
    matches!(
        state,
        LicenceState::Pending | LicenceState::Active | LicenceState::Suspended
    )
}

/// The areas a change of statute from `old` to `new` would drop while a licence that still
/// holds its areas covers them, each with the ids of those licences, in area order. A
/// licence's areas stay within the statute (`CreateLicence` requires it), so any of these
/// refuses the change.
pub fn dropped_areas_in_use(
    old: &[i32],
    new: &[i32],
    licences: &[LicenceFacts],
) -> Vec<(ActivityArea, Vec<String>)> {
    let mut dropped: Vec<ActivityArea> = old
        .iter()
        .filter(|a| !new.contains(a))
        .filter_map(|a| ActivityArea::try_from(*a).ok())
        .collect();
    dropped.sort_unstable();
    dropped.dedup();
    dropped
        .into_iter()
        .filter_map(|area| {
            let ids: Vec<String> = licences
                .iter()
                .filter(|l| holds_areas(l.state) && l.areas.contains(&area))
                .map(|l| l.id.clone())
                .collect();
            (!ids.is_empty()).then_some((area, ids))
        })
        .collect()
}

/// Stable reason token and Persian explanation for an eligibility answer.
pub fn eligibility_text(r: EligibilityReason) -> (&'static str, &'static str) {
    use EligibilityReason as R;
    match r {
        R::Eligible => ("ELIGIBLE", "نهاد مجاز به این اقدام است."),
        R::NoLicence => ("NO_LICENCE", "نهاد مجوزی از دستگاه قضایی ندارد."),
        R::LicencePending => ("LICENCE_PENDING", "مجوز نهاد هنوز در انتظار تأیید است."),
        R::LicenceSuspended => ("LICENCE_SUSPENDED", "مجوز نهاد تعلیق شده است."),
        R::LicenceRevoked => ("LICENCE_REVOKED", "مجوز نهاد لغو شده است."),
        R::LicenceExpired => ("LICENCE_EXPIRED", "اعتبار مجوز نهاد به پایان رسیده است."),
        R::AreaNotLicensed => (
            "AREA_NOT_LICENSED",
            "مجوز نهاد این حوزهٔ فعالیت را در بر نمی‌گیرد.",
        ),
        R::ActionNotLicensed => (
            "ACTION_NOT_LICENSED",
            "مجوز نهاد این اقدام را در بر نمی‌گیرد.",
        ),
        R::InstitutionDissolved => ("INSTITUTION_DISSOLVED", "نهاد منحل شده است."),
        R::Unspecified => ("UNSPECIFIED", "نامشخص"),
    }
}

pub fn state_name(s: LicenceState) -> &'static str {
    match s {
        LicenceState::Unspecified => "UNSPECIFIED",
        LicenceState::Pending => "PENDING",
        LicenceState::Active => "ACTIVE",
        LicenceState::Suspended => "SUSPENDED",
        LicenceState::Revoked => "REVOKED",
        LicenceState::Rejected => "REJECTED",
        LicenceState::Expired => "EXPIRED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LicenceAction as A;
    use LicenceState as S;

    const STATES: [S; 6] = [
        S::Pending,
        S::Active,
        S::Suspended,
        S::Revoked,
        S::Rejected,
        S::Expired,
    ];

    #[test]
    fn every_transition_allowed_and_refused() {
        let allowed = [
            (S::Pending, A::Approve, S::Active),
            (S::Pending, A::Reject, S::Rejected),
            (S::Active, A::Suspend, S::Suspended),
            (S::Suspended, A::Reinstate, S::Active),
            (S::Active, A::Revoke, S::Revoked),
            (S::Suspended, A::Revoke, S::Revoked),
            (S::Active, A::Renew, S::Active),
            (S::Expired, A::Renew, S::Active),
            (S::Active, A::Expire, S::Expired),
        ];
        for from in STATES {
            for action in A::ALL {
                let expected = allowed
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|(_, _, to)| *to);
                assert_eq!(
                    next_state(from, action),
                    expected,
                    "{from:?} --{action:?}-->"
                );
            }
        }
    }

    #[test]
    fn revoked_and_rejected_are_final() {
        for action in A::ALL {
            assert_eq!(next_state(S::Revoked, action), None);
            assert_eq!(next_state(S::Rejected, action), None);
        }
    }

    #[test]
    fn active_past_its_end_reads_expired() {
        assert_eq!(effective_state(S::Active, 100, 99), S::Active);
        assert_eq!(effective_state(S::Active, 100, 100), S::Expired);
        assert_eq!(effective_state(S::Suspended, 100, 200), S::Suspended);
    }

    fn lic(id: &str, state: S, province: &str) -> LicenceFacts {
        LicenceFacts {
            id: id.into(),
            state,
            province_key: province.into(),
            areas: vec![ActivityArea::Mediation, ActivityArea::Women],
            actions: vec![
                PermittedAction::FileComplaint,
                PermittedAction::AcceptReferrals,
            ],
            valid_from_us: 0,
        }
    }

    fn decide(
        ls: &[LicenceFacts],
        action: PermittedAction,
        area: ActivityArea,
    ) -> EligibilityReason {
        decide_eligibility(false, ls, action, area, None, 10).0
    }

    #[test]
    fn eligibility_reasons() {
        use EligibilityReason as R;
        use PermittedAction as P;
        let m = ActivityArea::Mediation;
        assert_eq!(decide(&[], P::FileComplaint, m), R::NoLicence);
        assert_eq!(
            decide(&[lic("a", S::Active, "x")], P::FileComplaint, m),
            R::Eligible
        );
        assert_eq!(
            decide(&[lic("a", S::Active, "x")], P::ReportCrime, m),
            R::ActionNotLicensed
        );
        assert_eq!(
            decide(
                &[lic("a", S::Active, "x")],
                P::FileComplaint,
                ActivityArea::Environment
            ),
            R::AreaNotLicensed
        );
        assert_eq!(
            decide(&[lic("a", S::Pending, "x")], P::FileComplaint, m),
            R::LicencePending
        );
        assert_eq!(
            decide(&[lic("a", S::Suspended, "x")], P::FileComplaint, m),
            R::LicenceSuspended
        );
        assert_eq!(
            decide(&[lic("a", S::Revoked, "x")], P::FileComplaint, m),
            R::LicenceRevoked
        );
        assert_eq!(
            decide(&[lic("a", S::Expired, "x")], P::FileComplaint, m),
            R::LicenceExpired
        );
        assert_eq!(
            decide(&[lic("a", S::Rejected, "x")], P::FileComplaint, m),
            R::NoLicence
        );
        // An active licence wins over an old revoked one.
        assert_eq!(
            decide(
                &[lic("a", S::Revoked, "x"), lic("b", S::Active, "x")],
                P::FileComplaint,
                m
            ),
            R::Eligible
        );
        // Dissolution outranks everything.
        assert_eq!(
            decide_eligibility(
                true,
                &[lic("a", S::Active, "x")],
                P::FileComplaint,
                m,
                None,
                10
            )
            .0,
            R::InstitutionDissolved
        );
    }

    #[test]
    fn licensed_at_all() {
        use EligibilityReason as R;
        assert_eq!(
            decide_licensed(false, &[lic("a", S::Active, "x")], None, 10).0,
            R::Eligible
        );
        assert_eq!(
            decide_licensed(false, &[lic("a", S::Suspended, "x")], None, 10).0,
            R::LicenceSuspended
        );
        assert_eq!(decide_licensed(false, &[], None, 10).0, R::NoLicence);
        assert_eq!(
            decide_licensed(true, &[lic("a", S::Active, "x")], None, 10).0,
            R::InstitutionDissolved
        );
        assert_eq!(
            decide_licensed(false, &[lic("a", S::Active, "x")], Some("y"), 10).0,
            R::NoLicence
        );
    }

    #[test]
    fn not_yet_in_force_reads_pending() {
        let mut l = lic("a", S::Active, "x");
        l.valid_from_us = 11;
        assert_eq!(
            decide(
                &[l],
                PermittedAction::FileComplaint,
                ActivityArea::Mediation
            ),
            EligibilityReason::LicencePending
        );
    }

    #[test]
    fn statute_cannot_drop_an_area_a_live_licence_covers() {
        let m = ActivityArea::Mediation as i32;
        let w = ActivityArea::Women as i32;
        let c = ActivityArea::Children as i32;
        for state in STATES {
            let ls = [lic("a", state, "x")];
            let got = dropped_areas_in_use(&[m, w, c], &[c], &ls);
            if matches!(state, S::Pending | S::Active | S::Suspended) {
                assert_eq!(
                    got,
                    [
                        (ActivityArea::Mediation, vec!["a".to_string()]),
                        (ActivityArea::Women, vec!["a".to_string()])
                    ],
                    "{state:?}"
                );
            } else {
                assert!(got.is_empty(), "{state:?} does not hold its areas");
            }
        }
        let ls = [
            lic("a", S::Active, "x"),
            lic("b", S::Pending, "y"),
            lic("c", S::Revoked, "x"),
        ];
        // Dropping an area no licence covers, or adding one, is free.
        assert!(dropped_areas_in_use(&[m, w, c], &[m, w], &ls).is_empty());
        assert!(dropped_areas_in_use(&[m, w], &[m, w, c], &ls).is_empty());
        assert_eq!(
            dropped_areas_in_use(&[m, w], &[m], &ls),
            [(ActivityArea::Women, vec!["a".to_string(), "b".to_string()])]
        );
    }

    #[test]
    fn province_limits_the_answer() {
        let ls = [lic("a", S::Active, "اردبیل")];
        let (r, id) = decide_eligibility(
            false,
            &ls,
            PermittedAction::FileComplaint,
            ActivityArea::Mediation,
            Some("اردبیل"),
            10,
        );
        assert_eq!((r, id.as_deref()), (EligibilityReason::Eligible, Some("a")));
        let (r, _) = decide_eligibility(
            false,
            &ls,
            PermittedAction::FileComplaint,
            ActivityArea::Mediation,
            Some("تهران"),
            10,
        );
        assert_eq!(r, EligibilityReason::NoLicence);
    }
}
