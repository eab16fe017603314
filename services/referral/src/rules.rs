//! The case-referral rules, free of I/O and of the API's types: the filing and referral
//! life cycles, who may see and do what, the victim-consent rule of article 66, sealing,
//! due times and overdue.

use chrono::{DateTime, Utc};
use mosharekat_calendar::{Deadline, Period, Province, SolarDate};
use mosharekat_persian::fold_for_search;
use mosharekat_platform::auth::Role;
use mosharekat_platform::ctx::CallContext;

use crate::app::{FilingPatch, Suggestion};
use crate::error::{ReferralError, Result};
use crate::model::{
    Consent, ConsentBasis, ExtensionRequest, ExtensionRequestState, Filing, FilingKind,
    FilingState, Party, PartyAgreement, PartyRole, Permission, Referral, ReferralKind,
    ReferralSource, ReferralState,
};
use crate::names::InstitutionId;

pub const FILING_READERS: &[Role] = &[
    Role::Admin,
    Role::Auditor,
    Role::Service,
    Role::Institution,
    Role::JudicialOfficer,
];
pub const FILERS: &[Role] = &[Role::Admin, Role::Institution];
pub const CLERKS: &[Role] = &[Role::Admin, Role::JudicialOfficer];
pub const REFERRAL_READERS: &[Role] = &[
    Role::Admin,
    Role::Auditor,
    Role::Service,
    Role::Institution,
    Role::JudicialOfficer,
    Role::CenterOfficer,
];
pub const REFERRERS: &[Role] = &[Role::Admin, Role::JudicialOfficer, Role::CenterOfficer];
pub const HANDLERS: &[Role] = &[Role::Admin, Role::Institution];
pub const SUGGESTION_READERS: &[Role] = &[
    Role::Admin,
    Role::CenterOfficer,
    Role::JudicialOfficer,
    Role::Auditor,
    Role::Service,
];
pub const STATISTICS_READERS: &[Role] = &[
    Role::Service,
    Role::Admin,
    Role::Auditor,
    Role::CenterOfficer,
    Role::Secretary,
];
/// Who may list the record of reads.
pub const READ_LOG_READERS: &[Role] = &[Role::Admin, Role::Auditor];

/// What can be done to a filing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilingAction {
    Submit,
    Withdraw,
    Register,
    Reject,
    Close,
    Update,
    /// Seal a party (the state stays).
    Seal,
}

impl FilingAction {
    pub const ALL: [FilingAction; 7] = [
        Self::Submit,
        Self::Withdraw,
        Self::Register,
        Self::Reject,
        Self::Close,
        Self::Update,
        Self::Seal,
    ];

    pub fn verb(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Withdraw => "withdraw",
            Self::Register => "register",
            Self::Reject => "reject",
            Self::Close => "close",
            Self::Update => "change",
            Self::Seal => "seal a party of",
        }
    }
}

/// The filing life cycle of `domain.md`.
pub fn next_filing_state(from: FilingState, action: FilingAction) -> Option<FilingState> {
    use FilingAction as A;
    use FilingState as S;
    match (from, action) {
        (S::Draft, A::Update) => Some(S::Draft),
        (S::Draft, A::Submit) => Some(S::Submitted),
        (S::Draft | S::Submitted, A::Withdraw) => Some(S::Withdrawn),
        (S::Submitted, A::Register) => Some(S::Registered),
        (S::Submitted, A::Reject) => Some(S::Rejected),
        (S::Registered, A::Close) => Some(S::Closed),
        // The addressed authority sees a filing once it is submitted; a draft's parties
        // are still the institution's to rewrite.
        (s, A::Seal) if s != S::Draft => Some(s),
        _ => None,
    }
}

/// The state `action` takes the filing to, or why it may not.
pub fn filing_transition(from: FilingState, action: FilingAction) -> Result<FilingState> {
    next_filing_state(from, action).ok_or(ReferralError::StateConflict {
        kind: "filing",
        from: from.as_str(),
        action: action.verb(),
    })
}

/// The licence permission a filing of `kind` needs.
pub fn permission_for(kind: FilingKind) -> Permission {
    match kind {
        FilingKind::Lawsuit => Permission::FileLawsuit,
        FilingKind::CrimeReport => Permission::ReportCrime,
        FilingKind::Complaint => Permission::FileComplaint,
    }
}

/// Refuses a filing that lacks the consent article 66, note 1 requires. A crime report or
/// complaint naming a victim needs, for each victim: the victim's own consent; for a minor
/// or incapacitated victim, the guardian's; and where the guardian is among the accused, a
/// temporary guardian's consent or the prosecutor's approval.
pub fn require_consent(kind: FilingKind, parties: &[Party], consents: &[Consent]) -> Result<()> {
    if kind == FilingKind::Lawsuit {
        return Ok(());
    }
    for (i, p) in parties.iter().enumerate() {
        if p.role != PartyRole::Victim {
            continue;
        }
        let acceptable: &'static [ConsentBasis] = if !(p.minor || p.legally_incapacitated) {
            &[ConsentBasis::Victim]
        } else if p.guardian_is_accused {
            &[
                ConsentBasis::TemporaryGuardian,
                ConsentBasis::ProsecutorApproval,
            ]
        } else {
            &[ConsentBasis::Guardian]
        };
        let ok = consents.iter().any(|c| {
            c.party_index == i && acceptable.contains(&c.basis) && !c.document.sha256.is_empty()
        });
        if !ok {
            return Err(ReferralError::ConsentRequired {
                party: i,
                needs: acceptable,
            });
        }
    }
    Ok(())
}

/// What can be done to a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralAction {
    Accept,
    Decline,
    Progress,
    Resolve,
    Return,
    Recall,
    Withdraw,
    Reassign,
    Extend,
    /// Seal a party (the state stays).
    Seal,
    /// The institution asks for the one extension (the state stays).
    RequestExtension,
    /// The source refuses the extension asked for (the state stays).
    RefuseExtension,
}

impl ReferralAction {
    pub const ALL: [ReferralAction; 12] = [
        Self::Accept,
        Self::Decline,
        Self::Progress,
        Self::Resolve,
        Self::Return,
        Self::Recall,
        Self::Withdraw,
        Self::Reassign,
        Self::Extend,
        Self::Seal,
        Self::RequestExtension,
        Self::RefuseExtension,
    ];

    pub fn verb(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Decline => "decline",
            Self::Progress => "record progress on",
            Self::Resolve => "resolve",
            Self::Return => "return",
            Self::Recall => "recall",
            Self::Withdraw => "withdraw",
            Self::Reassign => "reassign",
            Self::Extend => "extend",
            Self::Seal => "seal a party of",
            Self::RequestExtension => "ask for an extension of",
            Self::RefuseExtension => "refuse the extension of",
        }
    }

    /// Done by the assigned institution (the others by the source).
    fn by_institution(self) -> bool {
        use ReferralAction as A;
        matches!(
            self,
            A::Accept | A::Decline | A::Progress | A::Resolve | A::Return | A::RequestExtension
        )
    }
}

/// Open referrals: the institution or the source still has work to do.
pub fn is_open(s: ReferralState) -> bool {
    matches!(
        s,
        ReferralState::Offered | ReferralState::Accepted | ReferralState::InProgress
    )
}

/// The referral life cycle of `domain.md`.
pub fn next_referral_state(from: ReferralState, action: ReferralAction) -> Option<ReferralState> {
    use ReferralAction as A;
    use ReferralState as S;
    match (from, action) {
        (S::Offered, A::Accept) => Some(S::Accepted),
        (S::Offered, A::Decline) => Some(S::Declined),
        (S::Accepted | S::InProgress, A::Progress) => Some(S::InProgress),
        (S::InProgress, A::Resolve) => Some(S::Resolved),
        (S::Accepted | S::InProgress, A::Return) => Some(S::Returned),
        (s, A::Recall) if is_open(s) => Some(S::Recalled),
        (s, A::Withdraw) if is_open(s) => Some(S::Withdrawn),
        (S::Declined | S::Returned | S::Recalled, A::Reassign) => Some(S::Offered),
        // Only past its answer time: see [`check_reassign`].
        (S::Offered, A::Reassign) => Some(S::Offered),
        (S::Accepted | S::InProgress, A::Extend | A::RequestExtension | A::RefuseExtension) => {
            Some(from)
        }
        // Identities stay protected after the case is closed too.
        (s, A::Seal) => Some(s),
        _ => None,
    }
}

/// The state `action` takes the referral to, or why it may not.
pub fn referral_transition(from: ReferralState, action: ReferralAction) -> Result<ReferralState> {
    next_referral_state(from, action).ok_or(ReferralError::StateConflict {
        kind: "referral",
        from: from.as_str(),
        action: action.verb(),
    })
}

/// The periods of referrals, counted on the legal calendar (arts. 443–445), from
/// configuration: each kind's time from acceptance, the one extension's longest, and each
/// kind's time to answer an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePolicy {
    /// From acceptance, per kind; a kind not named takes `default_due`.
    pub due: Vec<(ReferralKind, Period)>,
    pub default_due: Period,
    /// The longest the one extension may add (mediation regulation art. 28: three months).
    pub extension: Period,
    /// From the offer, per kind; a kind not named takes `default_answer`.
    pub answer: Vec<(ReferralKind, Period)>,
    pub default_answer: Period,
}

/// Mediation and reconciliation: three months from acceptance (Criminal Procedure Code
/// art. 82), a month being 30 days (Civil Procedure Code art. 443).
pub const LEGAL_DUE: Period = Period::Months(3);

impl Default for DuePolicy {
    fn default() -> Self {
        Self {
            due: vec![
                (ReferralKind::Mediation, LEGAL_DUE),
                (ReferralKind::Reconciliation, LEGAL_DUE),
            ],
            default_due: Period::Days(60),
            extension: Period::Months(3),
            answer: Vec::new(),
            default_answer: Period::Days(7),
        }
    }
}

fn days_in(what: &str, days: u32, max: u32) -> std::result::Result<Period, String> {
    if !(1..=max).contains(&days) {
        return Err(format!("{what}: {days} days is outside 1 to {max}"));
    }
    Ok(Period::Days(days))
}

/// Parses `KIND=DAYS,…` (e.g. `VICTIM_SUPPORT=30,LEGAL_AID=45`).
fn parse_kinds(spec: &str) -> std::result::Result<Vec<(ReferralKind, u32)>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, d) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not KIND=DAYS"))?;
        let wanted = k.trim().to_uppercase();
        let kind = ReferralKind::ALL
            .iter()
            .copied()
            .find(|x| x.as_str() == wanted)
            .ok_or_else(|| format!("{k:?} is not a referral kind"))?;
        let days: u32 = d
            .trim()
            .parse()
            .map_err(|_| format!("{d:?} is not a number of days"))?;
        out.push((kind, days));
    }
    Ok(out)
}

/// The settings [`DuePolicy::parse`] reads (`--due-days` and the rest).
#[derive(Debug, Clone, Copy)]
pub struct DueSpec<'a> {
    pub due_days: &'a str,
    pub default_due_days: u32,
    pub extension_days: u32,
    pub answer_days: &'a str,
    pub default_answer_days: u32,
}

impl DuePolicy {
    /// From the settings: mediation and reconciliation keep three months unless set
    /// shorter (art. 82 sets three months at most); every period is 1 to 365 days.
    pub fn parse(spec: DueSpec<'_>) -> std::result::Result<Self, String> {
        let mut p = Self {
            default_due: days_in("--default-due-days", spec.default_due_days, 365)?,
            extension: days_in("--extension-days", spec.extension_days, 90)?,
            default_answer: days_in("--default-answer-days", spec.default_answer_days, 365)?,
            ..Self::default()
        };
        for (kind, days) in parse_kinds(spec.due_days)? {
            let max = if is_legal(kind) { 90 } else { 365 };
            let period = days_in(kind.as_str(), days, max).map_err(|e| {
                if is_legal(kind) {
                    format!("{e}: mediation and reconciliation take three months at most by law (art. 82)")
                } else {
                    e
                }
            })?;
            p.due.retain(|(k, _)| *k != kind);
            p.due.push((kind, period));
        }
        for (kind, days) in parse_kinds(spec.answer_days)? {
            p.answer.push((kind, days_in(kind.as_str(), days, 365)?));
        }
        Ok(p)
    }

    /// The period of a referral of `kind` from its acceptance.
    pub fn due_period(&self, kind: ReferralKind) -> Period {
        self.due
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(self.default_due, |(_, p)| *p)
    }

    /// The period an institution has to answer an offer of `kind`.
    pub fn answer_period(&self, kind: ReferralKind) -> Period {
        self.answer
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(self.default_answer, |(_, p)| *p)
    }

    /// The days the one extension may add at most.
    pub fn extension_days(&self) -> u32 {
        self.extension.days().unwrap_or(90)
    }
}

fn is_legal(kind: ReferralKind) -> bool {
    matches!(kind, ReferralKind::Mediation | ReferralKind::Reconciliation)
}

/// Whether a referral of `kind` needs every party's agreement before it is offered
/// (Criminal Procedure Code art. 82: mediation and reconciliation).
pub fn needs_agreement(kind: ReferralKind) -> bool {
    is_legal(kind)
}

/// Refuses an offer of a mediation or reconciliation without every party's recorded
/// agreement (who, when, a document); the first party without one is named. An agreement
/// must name one of the parties (`field` names the list in errors).
pub fn require_agreements(
    kind: ReferralKind,
    parties: &[Party],
    agreements: &[PartyAgreement],
    field: &str,
) -> Result<()> {
    if let Some(i) = agreements
        .iter()
        .position(|a| a.party_index >= parties.len())
    {
        return Err(ReferralError::invalid(
            format!("{field}[{i}].party_index"),
            "must be the index of one of the referral's parties",
        ));
    }
    if !needs_agreement(kind) {
        return Ok(());
    }
    for party in 0..parties.len() {
        let agreed = agreements
            .iter()
            .any(|a| a.party_index == party && !a.document.sha256.is_empty());
        if !agreed {
            return Err(ReferralError::AgreementRequired { party });
        }
    }
    Ok(())
}

/// Adds the agreements of parties that have none yet (a party's recorded agreement
/// stands as it was given).
pub fn add_agreements(r: &mut Referral, more: Vec<PartyAgreement>) {
    for a in more {
        if !r.agreements.iter().any(|x| x.party_index == a.party_index) {
            r.agreements.push(a);
        }
    }
    r.agreements.sort_by_key(|a| a.party_index);
}

/// Offered and past its answer time at `now`: flagged to the source, which may take it
/// back and offer it to another institution.
pub fn is_answer_overdue(r: &Referral, now: DateTime<Utc>) -> bool {
    r.state == ReferralState::Offered && r.answer.as_ref().is_some_and(|a| a.ends_at < now)
}

/// A referral still offered may be reassigned only once its answer time has passed
/// (the institution never answered); the others as the life cycle says.
pub fn check_reassign(r: &Referral, now: DateTime<Utc>) -> Result<()> {
    if r.state == ReferralState::Offered && !is_answer_overdue(r, now) {
        return Err(ReferralError::AnswerNotOverdue);
    }
    Ok(())
}

/// The institution asks for the one extension (art. 28): not once extended, and only one
/// request.
pub fn request_extension(
    r: &mut Referral,
    reason: String,
    by: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    if r.extended {
        return Err(ReferralError::AlreadyExtended);
    }
    if let Some(x) = &r.extension_request {
        return Err(ReferralError::ExtensionAlreadyRequested(x.state.as_str()));
    }
    r.extension_request = Some(ExtensionRequest {
        reason,
        requested_by: by.to_owned(),
        request_time: now,
        state: ExtensionRequestState::Pending,
        answer_reason: String::new(),
        answered_by: String::new(),
        answer_time: None,
    });
    Ok(())
}

/// Answers a pending request: granted (by the extension) or refused, with the reason.
fn answer_request(
    r: &mut Referral,
    state: ExtensionRequestState,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> bool {
    match &mut r.extension_request {
        Some(x) if x.state == ExtensionRequestState::Pending => {
            x.state = state;
            x.answer_reason = reason.to_owned();
            x.answered_by = by.to_owned();
            x.answer_time = Some(now);
            true
        }
        _ => false,
    }
}

/// The source refuses the extension asked for; refused when none is pending.
pub fn refuse_extension(
    r: &mut Referral,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    if answer_request(r, ExtensionRequestState::Refused, reason, by, now) {
        Ok(())
    } else {
        Err(ReferralError::NoExtensionRequested)
    }
}

/// The extension granted answers a pending request (an extension the source gives
/// unasked leaves none).
pub fn grant_requested_extension(r: &mut Referral, reason: &str, by: &str, now: DateTime<Utc>) {
    answer_request(r, ExtensionRequestState::Granted, reason, by, now);
}

/// The province a referral's deadlines are counted in (its weekly rest day and closures).
pub fn province_of(r: &Referral) -> Result<Province> {
    Province::new(&r.province)
        .map_err(|e| ReferralError::invalid("referral.province", e.to_string()))
}

/// The days an extension to `requested` adds after the current last day: the source names
/// the new last day; at least one day later, at most `max_days` (art. 28).
pub fn extension_days(
    current_last_day: SolarDate,
    requested: DateTime<Utc>,
    max_days: u32,
) -> Result<u32> {
    let refused = || {
        ReferralError::invalid(
            "due_time",
            format!("must be later than the current due time and at most {max_days} days after it"),
        )
    };
    let day = SolarDate::from_instant(requested).map_err(|_| refused())?;
    let days = current_last_day.days_until(day);
    if days < 1 || days > i64::from(max_days) {
        return Err(refused());
    }
    Ok(days as u32)
}

/// The last day of a referral's current due time: the deadline's, or for a due time set
/// before the calendar, the day it falls on in Tehran.
pub fn current_last_day(r: &Referral) -> Option<SolarDate> {
    match &r.due {
        Some(d) => Some(d.last_day),
        None => r.due_time.and_then(|t| SolarDate::from_instant(t).ok()),
    }
}

/// Whether a referral in `state` due at `due` is overdue at `now`.
/// (Accepted or in progress, and past its due time.)
pub fn is_overdue(state: ReferralState, due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    matches!(state, ReferralState::Accepted | ReferralState::InProgress)
        && due.is_some_and(|d| d < now)
}

/// The caller's own institution, for an INSTITUTION.
pub fn own_institution(ctx: &CallContext) -> Option<InstitutionId> {
    ctx.principal
        .institution
        .as_deref()
        .and_then(InstitutionId::from_id)
}

fn is_own(ctx: &CallContext, institution: &InstitutionId) -> bool {
    own_institution(ctx).as_ref() == Some(institution)
}

/// Case data is confidential: the filing institution, the addressed authority's officers
/// (once it is submitted) and administrators and auditors see a filing.
pub fn filing_visible(ctx: &CallContext, f: &Filing) -> bool {
    match ctx.role() {
        Role::Admin | Role::Auditor | Role::Service => true,
        Role::Institution => is_own(ctx, &f.institution),
        Role::JudicialOfficer => {
            f.state != FilingState::Draft
                && ctx
                    .principal
                    .authority
                    .as_deref()
                    .is_none_or(|a| fold_for_search(a) == fold_for_search(&f.authority))
        }
        _ => false,
    }
}

/// An institution sees only the referrals assigned to it.
pub fn referral_visible(ctx: &CallContext, r: &Referral) -> bool {
    ctx.role() != Role::Institution || is_own(ctx, &r.institution)
}

/// A sealed party of a filing is seen by the filing institution and the addressed
/// authority's officers only: not by administrators, auditors or other services.
pub fn sees_sealed_filing_parties(ctx: &CallContext, f: &Filing) -> bool {
    match ctx.role() {
        Role::Institution => is_own(ctx, &f.institution),
        Role::JudicialOfficer => filing_visible(ctx, f),
        _ => false,
    }
}

/// A sealed party of a referral is seen by its source and its assigned institution only.
pub fn sees_sealed_referral_parties(ctx: &CallContext, r: &Referral) -> bool {
    match ctx.role() {
        Role::Institution => is_own(ctx, &r.institution),
        Role::CenterOfficer | Role::JudicialOfficer => may_act_for_source(ctx, r.source),
        _ => false,
    }
}

/// Which sources a role refers for.
pub fn may_act_for_source(ctx: &CallContext, source: ReferralSource) -> bool {
    use ReferralSource as S;
    match ctx.role() {
        Role::Admin => true,
        Role::CenterOfficer => source == S::DisputeResolutionCenter,
        Role::JudicialOfficer => source == S::Prosecutor || source == S::Court,
        _ => false,
    }
}

/// Who may do what to a referral: the assigned institution handles it, the source
/// extends, withdraws and reassigns it; an administrator does all.
pub fn authorise_referral_action(
    ctx: &CallContext,
    r: &Referral,
    action: ReferralAction,
) -> Result<()> {
    let ok = match ctx.role() {
        Role::Admin => true,
        Role::Institution => action.by_institution() && referral_visible(ctx, r),
        Role::CenterOfficer | Role::JudicialOfficer => {
            !action.by_institution() && may_act_for_source(ctx, r.source)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ReferralError::Forbidden(format!(
            "role {} may not {} this referral",
            ctx.role(),
            action.verb()
        )))
    }
}

/// Only a minor or a victim can be sealed.
pub fn sealable(p: &Party) -> bool {
    p.minor || p.role == PartyRole::Victim
}

/// The party at `index`, if it can be sealed; `field` names the index in errors.
pub fn party_to_seal<'a>(parties: &'a [Party], index: usize, of: &str) -> Result<&'a Party> {
    let party = parties.get(index).ok_or_else(|| {
        ReferralError::invalid(
            "party_index",
            format!("must be the index of one of the {of}'s parties"),
        )
    })?;
    if !sealable(party) {
        return Err(ReferralError::PartyNotSealable);
    }
    Ok(party)
}

/// Applies the fields of `patch` that are set to a filing; a consent must name one of
/// the parties the filing then has.
pub fn apply_filing_patch(f: &mut Filing, patch: FilingPatch) -> Result<()> {
    let FilingPatch {
        kind,
        activity_area,
        authority,
        province,
        subject,
        description,
        parties,
        documents,
        consents,
    } = patch;
    if let Some(k) = kind {
        f.kind = k;
    }
    if let Some(a) = activity_area {
        f.activity_area = a;
    }
    for (dst, src) in [
        (&mut f.authority, authority),
        (&mut f.province, province),
        (&mut f.subject, subject),
        (&mut f.description, description),
    ] {
        if let Some(v) = src {
            *dst = v;
        }
    }
    if let Some(p) = parties {
        f.parties = p;
    }
    if let Some(d) = documents {
        f.documents = d;
    }
    if let Some(c) = consents {
        f.consents = c;
    }
    if let Some(i) = f
        .consents
        .iter()
        .position(|c| c.party_index >= f.parties.len())
    {
        return Err(ReferralError::invalid(
            format!("filing.consents[{i}].party_index"),
            "must be the index of one of the filing's parties",
        ));
    }
    Ok(())
}

/// Extends the due time once, to `deadline` (counted from the current last day by
/// [`extension_days`]; mediation regulation arts. 28–29).
pub fn extend(r: &mut Referral, deadline: Deadline) -> Result<()> {
    if r.extended {
        return Err(ReferralError::AlreadyExtended);
    }
    r.due_time = Some(deadline.ends_at);
    r.due = Some(deadline);
    r.extended = true;
    Ok(())
}

/// Whether a suggestion ranks last (art. 29 lets the judge skip a mediator who let a
/// referral run overdue without an extension, or was late in answering).
fn ranks_last(s: &Suggestion) -> bool {
    s.has_unextended_overdue || s.late_answers > 0
}

/// Orders suggestions best first and keeps `max`: one that let a referral run overdue
/// without an extension or answered an offer late (or never) last (art. 29), then those
/// of the referral's judicial district first (art. 9), then the least open referrals, the
/// best reconciliation rate, the most resolved; each with its rank and the reason for it.
pub fn rank(ranked: &mut Vec<Suggestion>, max: usize) {
    ranked.sort_by(|a, b| {
        ranks_last(a)
            .cmp(&ranks_last(b))
            .then(b.in_district.cmp(&a.in_district))
            .then(a.open_referrals.cmp(&b.open_referrals))
            .then(b.reconciliation_rate.total_cmp(&a.reconciliation_rate))
            .then(b.resolved_referrals.cmp(&a.resolved_referrals))
            .then(a.institution.cmp(&b.institution))
    });
    ranked.truncate(max);
    for (i, s) in ranked.iter_mut().enumerate() {
        s.rank = i as i32 + 1;
        let district = if s.in_district {
            "in the referral's judicial district; "
        } else {
            ""
        };
        s.reason = if ranks_last(s) {
            let mut why = Vec::new();
            if s.has_unextended_overdue {
                why.push("let a referral run overdue without an extension".to_owned());
            }
            if s.late_answers > 0 {
                why.push(format!(
                    "answered {} offer(s) late or never",
                    s.late_answers
                ));
            }
            format!(
                "ranked last: {} (mediation regulation art. 29); {district}{} open referrals",
                why.join(" and "),
                s.open_referrals
            )
        } else {
            format!(
                "eligible now; {district}{} open referrals; reconciled {:.0}% of {} resolved",
                s.open_referrals,
                s.reconciliation_rate * 100.0,
                s.resolved_referrals
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Document;
    use chrono::TimeZone;

    const FILING_STATES: [FilingState; 6] = [
        FilingState::Draft,
        FilingState::Submitted,
        FilingState::Registered,
        FilingState::Rejected,
        FilingState::Closed,
        FilingState::Withdrawn,
    ];

    #[test]
    fn every_filing_transition_allowed_and_refused() {
        use FilingAction as A;
        use FilingState as S;
        let allowed = [
            (S::Draft, A::Update, S::Draft),
            (S::Draft, A::Submit, S::Submitted),
            (S::Draft, A::Withdraw, S::Withdrawn),
            (S::Submitted, A::Withdraw, S::Withdrawn),
            (S::Submitted, A::Register, S::Registered),
            (S::Submitted, A::Reject, S::Rejected),
            (S::Registered, A::Close, S::Closed),
            (S::Submitted, A::Seal, S::Submitted),
            (S::Registered, A::Seal, S::Registered),
            (S::Rejected, A::Seal, S::Rejected),
            (S::Closed, A::Seal, S::Closed),
            (S::Withdrawn, A::Seal, S::Withdrawn),
        ];
        for from in FILING_STATES {
            for a in FilingAction::ALL {
                let expected = allowed
                    .iter()
                    .find(|(f, x, _)| *f == from && *x == a)
                    .map(|t| t.2);
                assert_eq!(next_filing_state(from, a), expected, "{from:?} {a:?}");
            }
        }
    }

    const REFERRAL_STATES: [ReferralState; 8] = [
        ReferralState::Offered,
        ReferralState::Accepted,
        ReferralState::InProgress,
        ReferralState::Resolved,
        ReferralState::Declined,
        ReferralState::Returned,
        ReferralState::Recalled,
        ReferralState::Withdrawn,
    ];

    #[test]
    fn every_referral_transition_allowed_and_refused() {
        use ReferralAction as A;
        use ReferralState as S;
        let allowed = [
            (S::Offered, A::Accept, S::Accepted),
            (S::Offered, A::Decline, S::Declined),
            (S::Accepted, A::Progress, S::InProgress),
            (S::InProgress, A::Progress, S::InProgress),
            (S::InProgress, A::Resolve, S::Resolved),
            (S::Accepted, A::Return, S::Returned),
            (S::InProgress, A::Return, S::Returned),
            (S::Offered, A::Recall, S::Recalled),
            (S::Accepted, A::Recall, S::Recalled),
            (S::InProgress, A::Recall, S::Recalled),
            (S::Offered, A::Withdraw, S::Withdrawn),
            (S::Accepted, A::Withdraw, S::Withdrawn),
            (S::InProgress, A::Withdraw, S::Withdrawn),
            (S::Declined, A::Reassign, S::Offered),
            (S::Returned, A::Reassign, S::Offered),
            (S::Recalled, A::Reassign, S::Offered),
            (S::Accepted, A::Extend, S::Accepted),
            (S::InProgress, A::Extend, S::InProgress),
            (S::Offered, A::Reassign, S::Offered),
            (S::Accepted, A::RequestExtension, S::Accepted),
            (S::InProgress, A::RequestExtension, S::InProgress),
            (S::Accepted, A::RefuseExtension, S::Accepted),
            (S::InProgress, A::RefuseExtension, S::InProgress),
        ];
        let allowed: Vec<_> = allowed
            .into_iter()
            .chain(REFERRAL_STATES.map(|s| (s, A::Seal, s)))
            .collect();
        for from in REFERRAL_STATES {
            for a in ReferralAction::ALL {
                let expected = allowed
                    .iter()
                    .find(|(f, x, _)| *f == from && *x == a)
                    .map(|t| t.2);
                assert_eq!(next_referral_state(from, a), expected, "{from:?} {a:?}");
            }
        }
    }

    fn party(role: PartyRole) -> Party {
        Party {
            full_name: "طرف".into(),
            national_code: None,
            role,
            minor: false,
            legally_incapacitated: false,
            guardian_is_accused: false,
            sealed: false,
        }
    }

    fn victim(minor: bool, guardian_is_accused: bool) -> Party {
        Party {
            minor,
            guardian_is_accused,
            ..party(PartyRole::Victim)
        }
    }

    fn consent(index: usize, basis: ConsentBasis) -> Consent {
        Consent {
            party_index: index,
            given_by: "x".into(),
            basis,
            time: DateTime::from_timestamp(1, 0).unwrap(),
            document: Document {
                title: String::new(),
                sha256: "ab".repeat(32),
                size_bytes: 0,
                media_type: String::new(),
            },
        }
    }

    #[test]
    fn consent_rule_of_article_66() {
        use ConsentBasis as B;
        use FilingKind as K;
        let adult = [victim(false, false)];
        assert!(require_consent(K::Complaint, &adult, &[]).is_err());
        assert!(require_consent(K::CrimeReport, &adult, &[]).is_err());
        assert!(
            require_consent(K::Lawsuit, &adult, &[]).is_ok(),
            "lawsuits need none"
        );
        assert!(require_consent(K::Complaint, &adult, &[consent(0, B::Victim)]).is_ok());
        assert!(
            require_consent(K::Complaint, &adult, &[consent(0, B::Guardian)]).is_err(),
            "an adult consents alone"
        );
        assert!(
            require_consent(K::Complaint, &adult, &[consent(1, B::Victim)]).is_err(),
            "for the right victim"
        );
        let child = [victim(true, false)];
        assert!(require_consent(K::Complaint, &child, &[consent(0, B::Victim)]).is_err());
        assert!(require_consent(K::Complaint, &child, &[consent(0, B::Guardian)]).is_ok());
        let abused = [victim(true, true)];
        assert!(
            require_consent(K::Complaint, &abused, &[consent(0, B::Guardian)]).is_err(),
            "not the accused guardian"
        );
        assert!(
            require_consent(K::Complaint, &abused, &[consent(0, B::TemporaryGuardian)]).is_ok()
        );
        assert!(
            require_consent(K::Complaint, &abused, &[consent(0, B::ProsecutorApproval)]).is_ok()
        );
        let mut no_doc = consent(0, B::Victim);
        no_doc.document.sha256.clear();
        assert!(
            require_consent(K::Complaint, &adult, &[no_doc]).is_err(),
            "a document is recorded"
        );
        // No victim named: nothing to consent to.
        let accused = [party(PartyRole::Accused)];
        assert!(require_consent(K::CrimeReport, &accused, &[]).is_ok());
        // Every victim needs it.
        let two = [victim(false, false), victim(false, false)];
        assert!(require_consent(K::Complaint, &two, &[consent(0, B::Victim)]).is_err());
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn overdue_across_the_tehran_day() {
        let due = Some(utc(2026, 3, 31, 22, 0));
        assert!(!is_overdue(
            ReferralState::Accepted,
            due,
            utc(2026, 3, 31, 21, 59)
        ));
        assert!(is_overdue(
            ReferralState::Accepted,
            due,
            utc(2026, 3, 31, 22, 1)
        ));
        assert!(is_overdue(
            ReferralState::InProgress,
            due,
            utc(2026, 4, 1, 0, 0)
        ));
        assert!(
            !is_overdue(ReferralState::Resolved, due, utc(2027, 1, 1, 0, 0)),
            "closed is never overdue"
        );
        assert!(!is_overdue(
            ReferralState::Offered,
            None,
            utc(2027, 1, 1, 0, 0)
        ));
    }

    fn spec(due_days: &str) -> DueSpec<'_> {
        DueSpec {
            due_days,
            default_due_days: 60,
            extension_days: 90,
            answer_days: "",
            default_answer_days: 7,
        }
    }

    #[test]
    fn due_policy_is_configurable_within_the_law() {
        let p = DuePolicy::parse(spec("victim_support=30, LEGAL_AID=45")).unwrap();
        assert_eq!(p.due_period(ReferralKind::VictimSupport), Period::Days(30));
        assert_eq!(p.due_period(ReferralKind::LegalAid), Period::Days(45));
        assert_eq!(p.due_period(ReferralKind::SocialWork), Period::Days(60));
        // Three months by art. 82, 90 days by art. 443.
        assert_eq!(p.due_period(ReferralKind::Mediation), LEGAL_DUE);
        assert_eq!(LEGAL_DUE.days(), Ok(90));
        assert_eq!(p.answer_period(ReferralKind::Mediation), Period::Days(7));
        let shorter = DuePolicy::parse(spec("MEDIATION=60")).unwrap();
        assert_eq!(
            shorter.due_period(ReferralKind::Mediation),
            Period::Days(60)
        );
        assert!(DuePolicy::parse(spec("MEDIATION=91")).is_err());
        assert!(DuePolicy::parse(spec("NOPE=10")).is_err());
        assert!(DuePolicy::parse(spec("LEGAL_AID=0")).is_err());
        let mut s = spec("");
        s.extension_days = 91;
        assert!(DuePolicy::parse(s).is_err());
    }

    fn agreement(index: usize, sha: &str) -> PartyAgreement {
        PartyAgreement {
            party_index: index,
            given_by: "x".into(),
            time: DateTime::from_timestamp(1, 0).unwrap(),
            document: Document {
                title: String::new(),
                sha256: sha.into(),
                size_bytes: 0,
                media_type: String::new(),
            },
        }
    }

    #[test]
    fn agreement_rule_of_article_82() {
        use ReferralKind as K;
        let two = [party(PartyRole::Disputant), party(PartyRole::Disputant)];
        let doc = "ab".repeat(32);
        let both = [agreement(0, &doc), agreement(1, &doc)];
        for kind in [K::Reconciliation, K::Mediation] {
            assert!(require_agreements(kind, &two, &both, "a").is_ok());
            assert!(matches!(
                require_agreements(kind, &two, &[], "a"),
                Err(ReferralError::AgreementRequired { party: 0 })
            ));
            assert!(matches!(
                require_agreements(kind, &two, &both[..1], "a"),
                Err(ReferralError::AgreementRequired { party: 1 })
            ));
            assert!(
                matches!(
                    require_agreements(kind, &two, &[agreement(0, &doc), agreement(1, "")], "a"),
                    Err(ReferralError::AgreementRequired { party: 1 })
                ),
                "with its document"
            );
        }
        for kind in [K::VictimSupport, K::LegalAid, K::SocialWork] {
            assert!(require_agreements(kind, &two, &[], "a").is_ok(), "{kind:?}");
        }
        // An agreement names one of the parties, whatever the kind.
        let stray = [agreement(0, &doc), agreement(2, &doc)];
        match require_agreements(K::LegalAid, &two, &stray, "referral.agreements") {
            Err(ReferralError::Invalid { field, .. }) => {
                assert_eq!(field, "referral.agreements[1].party_index");
            }
            other => panic!("{other:?}"),
        }
    }

    fn offered(answer_ends: DateTime<Utc>) -> Referral {
        let now = utc(2026, 5, 9, 6, 30);
        let calendar = mosharekat_calendar::Calendar::shipped();
        let province = Province::new("اردبیل").unwrap();
        let mut answer = calendar.deadline(now, Period::Days(7), &province).unwrap();
        answer.ends_at = answer_ends;
        Referral {
            id: crate::names::ReferralId::generate(),
            source: ReferralSource::DisputeResolutionCenter,
            source_case_number: "1".into(),
            kind: ReferralKind::Reconciliation,
            activity_area: crate::model::ActivityArea(1),
            province: "اردبیل".into(),
            parties: vec![party(PartyRole::Disputant)],
            summary: String::new(),
            institution: InstitutionId::from_id("i").unwrap(),
            state: ReferralState::Offered,
            due_time: None,
            due: None,
            answer: Some(answer),
            extended: false,
            extension_reason: String::new(),
            progress: vec![],
            outcome: None,
            not_reconciled_reason: None,
            settlement_text: String::new(),
            state_reason: String::new(),
            create_time: now,
            update_time: now,
            accept_time: None,
            resolve_time: None,
            contact: None,
            reference: 1,
            judicial_district: String::new(),
            agreements: vec![],
            chosen_by_parties: false,
            extension_request: None,
            source_office: None,
            unknown: Default::default(),
        }
    }

    #[test]
    fn an_offer_is_reassigned_only_past_its_answer_time() {
        let ends = utc(2026, 5, 16, 20, 29);
        let r = offered(ends);
        let before = ends - chrono::Duration::seconds(1);
        let after = ends + chrono::Duration::seconds(1);
        assert!(!is_answer_overdue(&r, before) && !is_answer_overdue(&r, ends));
        assert!(is_answer_overdue(&r, after));
        assert!(matches!(
            check_reassign(&r, before),
            Err(ReferralError::AnswerNotOverdue)
        ));
        assert!(check_reassign(&r, after).is_ok());
        // Answered: no longer an offer whose answer is due.
        let mut accepted = r.clone();
        accepted.state = ReferralState::Accepted;
        assert!(!is_answer_overdue(&accepted, after));
        let mut declined = r;
        declined.state = ReferralState::Declined;
        assert!(check_reassign(&declined, before).is_ok());
    }

    #[test]
    fn the_one_extension_is_asked_for_once_and_answered_once() {
        let now = utc(2026, 6, 1, 6, 0);
        let mut r = offered(now);
        r.state = ReferralState::Accepted;
        assert!(matches!(
            refuse_extension(&mut r, "x", "c", now),
            Err(ReferralError::NoExtensionRequested)
        ));
        request_extension(&mut r, "why".into(), "inst", now).unwrap();
        let x = r.extension_request.clone().unwrap();
        assert_eq!(
            (x.state, x.requested_by.as_str()),
            (ExtensionRequestState::Pending, "inst")
        );
        assert!(matches!(
            request_extension(&mut r, "again".into(), "inst", now),
            Err(ReferralError::ExtensionAlreadyRequested("PENDING"))
        ));
        let mut granted = r.clone();
        grant_requested_extension(&mut granted, "ok", "c", now);
        assert_eq!(
            granted.extension_request.unwrap().state,
            ExtensionRequestState::Granted
        );
        refuse_extension(&mut r, "no", "c", now).unwrap();
        let x = r.extension_request.clone().unwrap();
        assert_eq!(
            (x.state, x.answer_reason.as_str()),
            (ExtensionRequestState::Refused, "no")
        );
        assert!(
            refuse_extension(&mut r, "no", "c", now).is_err(),
            "answered once"
        );
        // Once extended, nothing more to ask for.
        let mut extended = offered(now);
        extended.extended = true;
        assert!(matches!(
            request_extension(&mut extended, "x".into(), "i", now),
            Err(ReferralError::AlreadyExtended)
        ));
    }

    fn suggestion(id: &str, open: i64) -> Suggestion {
        Suggestion {
            institution: InstitutionId::from_id(id).unwrap(),
            display_name: String::new(),
            rank: 0,
            open_referrals: open,
            reconciliation_rate: 0.0,
            resolved_referrals: 0,
            has_unextended_overdue: false,
            late_answers: 0,
            in_district: false,
            judicial_district: String::new(),
            reason: String::new(),
        }
    }

    #[test]
    fn lateness_ranks_last_and_the_district_first() {
        let mut ranked = vec![
            Suggestion {
                late_answers: 2,
                ..suggestion("late", 0)
            },
            Suggestion {
                has_unextended_overdue: true,
                in_district: true,
                ..suggestion("overdue", 0)
            },
            suggestion("busy", 3),
            Suggestion {
                in_district: true,
                ..suggestion("local", 5)
            },
        ];
        rank(&mut ranked, 10);
        let order: Vec<&str> = ranked.iter().map(|s| s.institution.as_str()).collect();
        assert_eq!(order, ["local", "busy", "overdue", "late"]);
        assert_eq!(
            ranked.iter().map(|s| s.rank).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert!(ranked[0].reason.contains("judicial district"));
        assert!(!ranked[1].reason.contains("judicial district"));
        assert!(ranked[3].reason.starts_with("ranked last"));
        assert!(
            ranked[3]
                .reason
                .contains("answered 2 offer(s) late or never")
        );
        assert!(ranked[2].reason.contains("overdue without an extension"));
    }

    #[test]
    fn only_minors_and_victims_are_sealable() {
        assert!(sealable(&victim(false, false)));
        assert!(sealable(&Party {
            minor: true,
            ..party(PartyRole::Disputant)
        }));
        assert!(!sealable(&party(PartyRole::Accused)));
    }

    #[test]
    fn extension_is_bounded_from_the_current_last_day() {
        let last = SolarDate::new(1405, 3, 1).unwrap();
        let at = |y, m, d| {
            SolarDate::new(y, m, d)
                .unwrap()
                .at_tehran_time(chrono::NaiveTime::MIN)
        };
        assert_eq!(extension_days(last, at(1405, 3, 2), 90).unwrap(), 1);
        // The first six months have 31 days: 1 Khordad + 90 days is 29 Mordad.
        assert_eq!(extension_days(last, at(1405, 5, 29), 90).unwrap(), 90);
        assert!(extension_days(last, at(1405, 5, 30), 90).is_err());
        assert!(extension_days(last, at(1405, 3, 1), 90).is_err());
    }
}
