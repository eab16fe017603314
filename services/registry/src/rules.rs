//! The registry's domain, free of I/O: institutions and licences as the registry has them,
//! the licence life cycle, eligibility, the statute subset rule and expiry. Rules take and
//! return these types; the API converts them at its edge and the store maps them to
//! columns.
//!
//! Enumerations carry the codes the tables store (fixed forever, as a table's data is);
//! they happen to equal the API's enum numbers, which the API layer checks in a test.

use mosharekat_persian::{LegalEntityId, NationalCode};

use crate::names::{InstitutionName, LicenceId, LicenceName};

macro_rules! coded_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident = $n:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $v = $n),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];

            /// The code the tables store.
            pub fn code(self) -> i32 {
                self as i32
            }

            /// The value a stored (or wire) code stands for; `None` for an unknown one.
            pub fn from_code(code: i32) -> Option<Self> {
                match code {
                    $($n => Some(Self::$v),)*
                    _ => None,
                }
            }
        }
    };
}

coded_enum! {
    /// The 23 activity areas of the law (حوزه‌های فعالیت).
    pub enum ActivityArea {
        PublicRights = 1, CitizenRights = 2, AntiCorruption = 3, LegitimateFreedoms = 4,
        CrimePrevention = 5, Mediation = 6, Reconciliation = 7, LegalPsychologicalAid = 8,
        SocialWork = 9, SocialEntrepreneurship = 10, HumanRights = 11, Health = 12, Women = 13,
        Family = 14, Children = 15, Disability = 16, Environment = 17, CulturalHeritage = 18,
        NaturalResources = 19, PromotingVirtue = 20, VictimSupport = 21,
        AlternativeSentences = 22, ConvictSupport = 23,
    }
}

coded_enum! {
    /// What a licence permits an institution to do directly.
    pub enum PermittedAction { FileLawsuit = 1, ReportCrime = 2, FileComplaint = 3, AcceptReferrals = 4 }
}

coded_enum! {
    /// What kind of body an institution is.
    pub enum InstitutionKind {
        Ngo = 1, Charity = 2, Foundation = 3, Cooperative = 4, ReligiousBoard = 5, Other = 6,
    }
}

coded_enum! {
    /// A licence's state as stored; [`Licence::state_at`] reads ACTIVE past its end as
    /// EXPIRED.
    pub enum LicenceState {
        Pending = 1, Active = 2, Suspended = 3, Revoked = 4, Rejected = 5, Expired = 6,
    }
}

coded_enum! {
    /// What happened to a licence, as its event and history say.
    pub enum LicenceEventKind {
        Applied = 1, Approved = 2, Rejected = 3, Suspended = 4, Reinstated = 5, Revoked = 6,
        Renewed = 7, Expired = 8, ExpiryMoved = 9,
    }
}

coded_enum! {
    /// Why an institution may or may not act.
    pub enum EligibilityReason {
        Eligible = 1, NoLicence = 2, LicencePending = 3, LicenceSuspended = 4,
        LicenceRevoked = 5, LicenceExpired = 6, AreaNotLicensed = 7, ActionNotLicensed = 8,
        InstitutionDissolved = 9,
    }
}

impl LicenceState {
    /// The state's name as the API spells it after its prefix (`PENDING`).
    pub fn token(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
            Self::Revoked => "REVOKED",
            Self::Rejected => "REJECTED",
            Self::Expired => "EXPIRED",
        }
    }
}

/// A person authorised to act for an institution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Representative {
    pub full_name: String,
    pub national_code: NationalCode,
    pub role: String,
    pub phone: String,
}

/// Every field of an institution an officer may change, checked and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstitutionFields {
    pub display_name: String,
    pub kind: InstitutionKind,
    pub registration_number: String,
    pub registering_authority: String,
    pub province: String,
    pub city: String,
    pub address: String,
    pub phone: String,
    pub email: String,
    /// The statute's areas, sorted, without duplicates.
    pub activity_areas: Vec<ActivityArea>,
    pub representatives: Vec<Representative>,
}

/// An institution asked to be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstitution {
    pub national_id: LegalEntityId,
    pub fields: InstitutionFields,
}

/// Whether an institution may still act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstitutionState {
    Active,
    Dissolved { reason: String, at_us: i64 },
}

/// A registered institution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Institution {
    pub name: InstitutionName,
    pub national_id: LegalEntityId,
    pub fields: InstitutionFields,
    pub state: InstitutionState,
    pub create_us: i64,
    pub update_us: i64,
}

impl Institution {
    pub fn dissolved(&self) -> bool {
        matches!(self.state, InstitutionState::Dissolved { .. })
    }

    /// A new institution as `CreateInstitution` registers it at `now_us`.
    pub fn register(name: InstitutionName, new: NewInstitution, now_us: i64) -> Self {
        Self {
            name,
            national_id: new.national_id,
            fields: new.fields,
            state: InstitutionState::Active,
            create_us: now_us,
            update_us: now_us,
        }
    }
}

/// A licence application, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceTerms {
    /// Sorted, without duplicates.
    pub activity_areas: Vec<ActivityArea>,
    /// Sorted, without duplicates.
    pub permitted_actions: Vec<PermittedAction>,
    pub province: String,
    pub valid_from_us: i64,
    pub valid_until_us: i64,
    /// The judicial district (حوزهٔ قضایی) it lists the institution in; empty if not given.
    pub judicial_district: String,
}

/// One change of a licence's state: who, when and why. An application has no `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub kind: LicenceEventKind,
    pub from: Option<LicenceState>,
    pub to: LicenceState,
    pub actor: String,
    pub time_us: i64,
    pub reason: String,
}

/// The judiciary's permission for one institution to act (مجوز).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Licence {
    pub name: LicenceName,
    pub terms: LicenceTerms,
    /// As stored: see [`Licence::state_at`].
    pub state: LicenceState,
    /// Oldest first. Loaded where the licence itself is read (get, list, a change);
    /// empty where only the rules look at it (eligibility, the statute rule).
    pub history: Vec<HistoryEntry>,
    pub create_us: i64,
    pub update_us: i64,
    /// The expiry as the legal calendar counted it when the licence was put in force
    /// (approved, renewed), moved by later publications; `terms.valid_until_us` is its
    /// end. `None` while pending, and for licences put in force before it was recorded.
    pub expiry: Option<mosharekat_calendar::Deadline>,
}

impl Licence {
    /// The state as read at `now_us`: ACTIVE past its end is EXPIRED.
    pub fn state_at(&self, now_us: i64) -> LicenceState {
        effective_state(self.state, self.terms.valid_until_us, now_us)
    }

    /// The licence as read at `now_us` (its state, for a response).
    pub fn as_of(mut self, now_us: i64) -> Self {
        self.state = self.state_at(now_us);
        self
    }

    /// What eligibility needs to know of it at `now_us`.
    pub fn facts(&self, now_us: i64) -> LicenceFacts {
        LicenceFacts {
            id: self.name.id.clone(),
            state: self.state_at(now_us),
            province_key: mosharekat_persian::fold_for_search(&self.terms.province),
            areas: self.terms.activity_areas.clone(),
            actions: self.terms.permitted_actions.clone(),
            valid_from_us: self.terms.valid_from_us,
        }
    }

    /// A new application, PENDING, with its first history entry.
    pub fn apply(name: LicenceName, terms: LicenceTerms, actor: &str, now_us: i64) -> Self {
        Self {
            name,
            terms,
            state: LicenceState::Pending,
            history: vec![HistoryEntry {
                kind: LicenceEventKind::Applied,
                from: None,
                to: LicenceState::Pending,
                actor: actor.to_owned(),
                time_us: now_us,
                reason: String::new(),
            }],
            create_us: now_us,
            update_us: now_us,
            expiry: None,
        }
    }

    /// The licence after `action` by `actor` at `now_us` (to `to`, with the new end for a
    /// renewal), its history entry appended; the caller has checked it is allowed.
    pub fn after(
        &self,
        action: LicenceAction,
        to: LicenceState,
        valid_until_us: Option<i64>,
        actor: &str,
        reason: &str,
        now_us: i64,
    ) -> (Self, HistoryEntry) {
        let entry = HistoryEntry {
            kind: action.event_kind(),
            from: Some(self.state),
            to,
            actor: actor.to_owned(),
            time_us: now_us,
            reason: reason.to_owned(),
        };
        let mut next = self.clone();
        next.state = to;
        if let Some(vu) = valid_until_us {
            next.terms.valid_until_us = vu;
        }
        next.update_us = now_us;
        next.history.push(entry.clone());
        (next, entry)
    }
}

/// The licence life cycle's refusals and the statute rule, as the registry's error says
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `action` is not allowed from `from`.
    StateConflict {
        from: LicenceState,
        action: LicenceAction,
    },
    /// Areas of a licence application outside the institution's statute.
    AreasNotInStatute(Vec<ActivityArea>),
    /// A statute change would drop areas live licences cover: the areas, and those
    /// licences' ids, sorted.
    AreasCoveredByLicence {
        areas: Vec<ActivityArea>,
        licences: Vec<LicenceId>,
    },
    /// The institution already holds another licence in force in the province.
    AlreadyInForce(LicenceId),
}

/// One licence change as the stream tells the other services, in the order the registry
/// made them (gap-free sequence from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceEvent {
    pub sequence: i64,
    pub licence: LicenceName,
    pub entry: HistoryEntry,
    /// The role of the actor; empty for events stored before the role was.
    pub actor_role: String,
    pub traceparent: String,
}

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

    /// Whether the action puts a licence in force, which a dissolved institution and
    /// another licence in force in the province refuse.
    pub fn puts_in_force(self) -> bool {
        matches!(self, Self::Approve | Self::Reinstate | Self::Renew)
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

/// [`next_state`], or the refusal naming the state and the action.
pub fn transition(from: LicenceState, action: LicenceAction) -> Result<LicenceState, Refusal> {
    next_state(from, action).ok_or(Refusal::StateConflict { from, action })
}

/// What a dissolution does to a licence in `state`: revoke one in force or suspended,
/// reject an application; the others are over already.
pub fn on_dissolution(state: LicenceState) -> Option<LicenceAction> {
    match state {
        LicenceState::Active | LicenceState::Suspended => Some(LicenceAction::Revoke),
        LicenceState::Pending => Some(LicenceAction::Reject),
        _ => None,
    }
}

/// Whether a licence stored in `stored` with end `valid_until_us` is due to be recorded
/// as EXPIRED at `now_us` (once: it is then stored EXPIRED).
pub fn due_for_expiry(stored: LicenceState, valid_until_us: i64, now_us: i64) -> bool {
    stored == LicenceState::Active
        && effective_state(stored, valid_until_us, now_us) == LicenceState::Expired
}

/// The state a stored licence reads as at `now_us`: ACTIVE past its end is EXPIRED.
pub fn effective_state(stored: LicenceState, valid_until_us: i64, now_us: i64) -> LicenceState {
    if stored == LicenceState::Active && valid_until_us <= now_us {
        LicenceState::Expired
    } else {
        stored
    }
}

/// A renewal's new end must be later than now and than the current end.
pub fn renewal_extends(new_until_us: i64, current_until_us: i64, now_us: i64) -> bool {
    new_until_us > now_us.max(current_until_us)
}

/// Refuses putting `licence` in force while the institution holds another ACTIVE or
/// SUSPENDED licence in the same province (`others`: all its licences, with their
/// folded provinces).
pub fn one_in_force(
    licence: &LicenceId,
    province_key: &str,
    others: &[LicenceFacts],
) -> Result<(), Refusal> {
    match others.iter().find(|o| {
        &o.id != licence
            && o.province_key == province_key
            && matches!(o.state, LicenceState::Active | LicenceState::Suspended)
    }) {
        Some(o) => Err(Refusal::AlreadyInForce(o.id.clone())),
        None => Ok(()),
    }
}

/// Refuses a licence application whose areas are not all among the statute's.
pub fn within_statute(areas: &[ActivityArea], statute: &[ActivityArea]) -> Result<(), Refusal> {
    let outside: Vec<ActivityArea> = areas
        .iter()
        .filter(|a| !statute.contains(a))
        .copied()
        .collect();
    if outside.is_empty() {
        Ok(())
    } else {
        Err(Refusal::AreasNotInStatute(outside))
    }
}

/// Refuses a statute change from `old` to `new` areas that would drop areas a PENDING,
/// ACTIVE or SUSPENDED licence covers: a licence's areas stay within the statute.
pub fn statute_keeps_licensed_areas(
    old: &[ActivityArea],
    new: &[ActivityArea],
    licences: &[LicenceFacts],
) -> Result<(), Refusal> {
    let in_use = dropped_areas_in_use(old, new, licences);
    if in_use.is_empty() {
        return Ok(());
    }
    let areas = in_use.iter().map(|(a, _)| *a).collect();
    let mut ids: Vec<LicenceId> = in_use.into_iter().flat_map(|(_, ids)| ids).collect();
    ids.sort_unstable();
    ids.dedup();
    Err(Refusal::AreasCoveredByLicence {
        areas,
        licences: ids,
    })
}

/// An eligibility question, checked: what `CheckEligibility` and each entry of
/// `BatchCheckEligibility` ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibilityQuestion {
    pub institution: InstitutionName,
    pub action: PermittedAction,
    pub area: ActivityArea,
    /// The folded province, when the answer is limited to it.
    pub province_key: Option<String>,
}

/// What eligibility needs to know of one licence.
#[derive(Debug, Clone)]
pub struct LicenceFacts {
    pub id: LicenceId,
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
) -> (EligibilityReason, Option<LicenceId>) {
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
) -> (EligibilityReason, Option<LicenceId>) {
    decide(dissolved, licences, None, province_key, now_us)
}

fn decide(
    dissolved: bool,
    licences: &[LicenceFacts],
    wanted: Option<(PermittedAction, ActivityArea)>,
    province_key: Option<&str>,
    now_us: i64,
) -> (EligibilityReason, Option<LicenceId>) {
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
fn fallback(candidates: &[&LicenceFacts]) -> (EligibilityReason, Option<LicenceId>) {
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
/// holds its areas covers them, each with the ids of those licences, in area order.
pub fn dropped_areas_in_use(
    old: &[ActivityArea],
    new: &[ActivityArea],
    licences: &[LicenceFacts],
) -> Vec<(ActivityArea, Vec<LicenceId>)> {
    let mut dropped: Vec<ActivityArea> = old.iter().filter(|a| !new.contains(a)).copied().collect();
    dropped.sort_unstable();
    dropped.dedup();
    dropped
        .into_iter()
        .filter_map(|area| {
            let ids: Vec<LicenceId> = licences
                .iter()
                .filter(|l| holds_areas(l.state) && l.areas.contains(&area))
                .map(|l| l.id.clone())
                .collect();
            (!ids.is_empty()).then_some((area, ids))
        })
        .collect()
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

    fn lid(id: &str) -> LicenceId {
        LicenceId::stored(id.into())
    }

    fn lic(id: &str, state: S, province: &str) -> LicenceFacts {
        LicenceFacts {
            id: LicenceId::stored(id.into()),
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
        let m = ActivityArea::Mediation;
        let w = ActivityArea::Women;
        let c = ActivityArea::Children;
        for state in STATES {
            let ls = [lic("a", state, "x")];
            let got = dropped_areas_in_use(&[m, w, c], &[c], &ls);
            if matches!(state, S::Pending | S::Active | S::Suspended) {
                assert_eq!(
                    got,
                    [
                        (ActivityArea::Mediation, vec![lid("a")]),
                        (ActivityArea::Women, vec![lid("a")])
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
            [(ActivityArea::Women, vec![lid("a"), lid("b")])]
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
        assert_eq!((r, id), (EligibilityReason::Eligible, Some(lid("a"))));
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

    #[test]
    fn one_licence_in_force_per_province() {
        let ls = [
            lic("a", S::Active, "x"),
            lic("b", S::Pending, "x"),
            lic("c", S::Suspended, "y"),
        ];
        let facts: Vec<_> = ls.to_vec();
        assert_eq!(
            one_in_force(&lid("b"), "x", &facts),
            Err(Refusal::AlreadyInForce(lid("a")))
        );
        // The licence itself does not count, nor one of another province.
        assert_eq!(one_in_force(&lid("a"), "x", &facts), Ok(()));
        assert_eq!(
            one_in_force(&lid("d"), "y", &facts),
            Err(Refusal::AlreadyInForce(lid("c")))
        );
        assert_eq!(one_in_force(&lid("d"), "z", &facts), Ok(()));
    }

    #[test]
    fn a_licence_stays_within_the_statute() {
        use ActivityArea as Ar;
        assert_eq!(
            within_statute(&[Ar::Women], &[Ar::Women, Ar::Family]),
            Ok(())
        );
        assert_eq!(
            within_statute(&[Ar::Women, Ar::Health], &[Ar::Women]),
            Err(Refusal::AreasNotInStatute(vec![Ar::Health]))
        );
        let ls = [lic("b", S::Active, "x"), lic("a", S::Pending, "x")];
        assert_eq!(
            statute_keeps_licensed_areas(&[Ar::Mediation, Ar::Women], &[Ar::Mediation], &ls),
            Err(Refusal::AreasCoveredByLicence {
                areas: vec![Ar::Women],
                licences: vec![lid("a"), lid("b")],
            })
        );
        assert_eq!(
            statute_keeps_licensed_areas(&[Ar::Mediation], &[Ar::Mediation, Ar::Health], &ls),
            Ok(())
        );
    }

    #[test]
    fn expiry_renewal_and_dissolution() {
        assert!(due_for_expiry(S::Active, 100, 100));
        assert!(!due_for_expiry(S::Active, 100, 99));
        assert!(!due_for_expiry(S::Suspended, 100, 200));
        assert!(!due_for_expiry(S::Expired, 100, 200));
        assert!(renewal_extends(300, 200, 100));
        assert!(!renewal_extends(200, 200, 100));
        assert!(!renewal_extends(150, 100, 150));
        assert_eq!(on_dissolution(S::Active), Some(A::Revoke));
        assert_eq!(on_dissolution(S::Suspended), Some(A::Revoke));
        assert_eq!(on_dissolution(S::Pending), Some(A::Reject));
        for s in [S::Revoked, S::Rejected, S::Expired] {
            assert_eq!(on_dissolution(s), None);
        }
        // Every action dissolution takes is one the life cycle allows.
        for s in STATES {
            if let Some(a) = on_dissolution(s) {
                assert!(next_state(s, a).is_some(), "{s:?} {a:?}");
            }
        }
        assert_eq!(
            transition(S::Revoked, A::Approve),
            Err(Refusal::StateConflict {
                from: S::Revoked,
                action: A::Approve
            })
        );
    }

    #[test]
    fn a_change_appends_its_history_entry() {
        let name = LicenceName {
            institution: crate::names::InstitutionId::stored("i".into()),
            id: lid("l"),
        };
        let terms = LicenceTerms {
            activity_areas: vec![ActivityArea::Mediation],
            permitted_actions: vec![PermittedAction::FileComplaint],
            province: "اردبیل".into(),
            valid_from_us: 0,
            valid_until_us: 100,
            judicial_district: String::new(),
        };
        let l = Licence::apply(name, terms, "officer", 5);
        assert_eq!((l.state, l.history.len()), (S::Pending, 1));
        assert_eq!(l.history[0].from, None);
        let (next, e) = l.after(A::Approve, S::Active, None, "officer", "", 7);
        assert_eq!(
            (next.state, next.update_us, next.history.len()),
            (S::Active, 7, 2)
        );
        assert_eq!(
            (e.from, e.to, e.kind),
            (Some(S::Pending), S::Active, LicenceEventKind::Approved)
        );
        let (renewed, _) = next.after(A::Renew, S::Active, Some(500), "officer", "", 8);
        assert_eq!(renewed.terms.valid_until_us, 500);
        assert_eq!(next.clone().as_of(100).state, S::Expired);
        assert_eq!(next.as_of(99).state, S::Active);
    }
}
