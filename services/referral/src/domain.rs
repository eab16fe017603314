//! The case-referral rules, free of I/O: the filing and referral life cycles, the
//! victim-consent rule of article 66, due times and overdue.

use chrono::{DateTime, Months, TimeZone, Utc};
use chrono_tz::Asia::Tehran;
use mosharekat_api::common::v1::{Party, PartyRole};
use mosharekat_api::referral::v1::{
    Consent, ConsentBasis, FilingKind, FilingState, ReferralKind, ReferralState,
};
use mosharekat_api::registry::v1::PermittedAction;

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
        (s, A::Seal) if s != S::Draft && s != S::Unspecified => Some(s),
        _ => None,
    }
}

/// The licence permission a filing of `kind` needs.
pub fn action_for(kind: FilingKind) -> PermittedAction {
    match kind {
        FilingKind::Lawsuit => PermittedAction::FileLawsuit,
        FilingKind::CrimeReport => PermittedAction::ReportCrime,
        FilingKind::Complaint | FilingKind::Unspecified => PermittedAction::FileComplaint,
    }
}

/// Why a filing lacks the consent article 66, note 1 requires; `None` when it has it.
/// A crime report or complaint naming a victim needs, for each victim: the victim's own
/// consent; for a minor or incapacitated victim, the guardian's; and where the guardian is
/// among the accused, a temporary guardian's consent or the prosecutor's approval.
pub fn missing_consent(
    kind: FilingKind,
    parties: &[Party],
    consents: &[Consent],
) -> Option<String> {
    if kind == FilingKind::Lawsuit {
        return None;
    }
    for (i, p) in parties.iter().enumerate() {
        if p.role != PartyRole::Victim as i32 {
            continue;
        }
        let acceptable: &[ConsentBasis] = if !(p.minor || p.legally_incapacitated) {
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
            c.party_index == i as i32
                && acceptable.iter().any(|b| *b as i32 == c.basis)
                && c.time.is_some()
                && c.document.as_ref().is_some_and(|d| !d.sha256.is_empty())
        });
        if !ok {
            let who = acceptable
                .iter()
                .map(|b| {
                    b.as_str_name()
                        .trim_start_matches("CONSENT_BASIS_")
                        .to_lowercase()
                        .replace('_', " ")
                })
                .collect::<Vec<_>>()
                .join(" or ");
            return Some(format!(
                "victim parties[{i}] needs the recorded consent of: {who}"
            ));
        }
    }
    None
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
}

impl ReferralAction {
    pub const ALL: [ReferralAction; 10] = [
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
        }
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
        (S::Accepted | S::InProgress, A::Extend) => Some(from),
        // Identities stay protected after the case is closed too.
        (s, A::Seal) if s != S::Unspecified => Some(s),
        _ => None,
    }
}

/// How long an institution has for a referral of each kind, from acceptance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePolicy {
    /// For kinds other than mediation and reconciliation, in days.
    pub other_days: Vec<(ReferralKind, u32)>,
    pub default_days: u32,
}

impl Default for DuePolicy {
    fn default() -> Self {
        Self {
            other_days: Vec::new(),
            default_days: 60,
        }
    }
}

impl DuePolicy {
    /// Parses `KIND=DAYS,…` (e.g. `VICTIM_SUPPORT=30,LEGAL_AID=45`).
    pub fn parse(spec: &str, default_days: u32) -> Result<Self, String> {
        let mut other_days = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, d) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not KIND=DAYS"))?;
            let kind =
                ReferralKind::from_str_name(&format!("REFERRAL_KIND_{}", k.trim().to_uppercase()))
                    .filter(|k| *k != ReferralKind::Unspecified)
                    .ok_or_else(|| format!("{k:?} is not a referral kind"))?;
            if matches!(kind, ReferralKind::Mediation | ReferralKind::Reconciliation) {
                return Err(
                    "mediation and reconciliation take three months by law (art. 82)".into(),
                );
            }
            let days: u32 = d
                .trim()
                .parse()
                .map_err(|_| format!("{d:?} is not a number of days"))?;
            if !(1..=365).contains(&days) {
                return Err(format!("{days} days is outside 1 to 365"));
            }
            other_days.push((kind, days));
        }
        Ok(Self {
            other_days,
            default_days,
        })
    }

    /// The due time of a referral of `kind` accepted at `accepted`: three calendar months
    /// in Tehran for mediation and reconciliation (Criminal Procedure Code art. 82), the
    /// configured days otherwise.
    pub fn due(&self, kind: ReferralKind, accepted: DateTime<Utc>) -> DateTime<Utc> {
        match kind {
            ReferralKind::Mediation | ReferralKind::Reconciliation => {
                add_months_tehran(accepted, 3)
            }
            k => {
                let days = self
                    .other_days
                    .iter()
                    .find(|(x, _)| *x == k)
                    .map_or(self.default_days, |(_, d)| *d);
                accepted + chrono::Duration::days(i64::from(days))
            }
        }
    }
}

/// `t` plus `months` calendar months on Tehran's wall clock (the day clamped to the end of
/// a shorter month).
pub fn add_months_tehran(t: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    let local = t.with_timezone(&Tehran).naive_local();
    let later = local
        .checked_add_months(Months::new(months))
        .unwrap_or(local);
    Tehran
        .from_local_datetime(&later)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(t + chrono::Duration::days(i64::from(months) * 30))
}

/// The longest a source may extend a due time by (mediation regulation art. 28).
pub fn max_extension(due: DateTime<Utc>) -> DateTime<Utc> {
    add_months_tehran(due, 3)
}

/// Whether a referral in `state` due at `due` is overdue at `now`.
pub fn is_overdue(state: ReferralState, due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    matches!(state, ReferralState::Accepted | ReferralState::InProgress)
        && due.is_some_and(|d| d < now)
}

/// What a sealed party's name reads as, for those who may not see it.
pub const SEALED_NAME: &str = "محرمانه";

/// Who may be sealed (the directive protects minors and victims): a minor, or a victim.
pub fn sealable(p: &Party) -> bool {
    p.minor || p.role == PartyRole::Victim as i32
}

/// Masks what identifies a sealed party: its name and national code (`******1234`), the
/// name of whoever consented for it, and its name where a session lists it among the
/// attendees. Free text (summaries, notes) is the writer's to keep clean.
pub fn mask_sealed(
    parties: &mut [Party],
    consents: &mut [Consent],
    attendees: &mut [&mut Vec<String>],
) {
    let fold = mosharekat_persian::fold_for_search;
    let mut names = Vec::new();
    for (i, p) in parties.iter_mut().enumerate() {
        if !p.sealed {
            continue;
        }
        if !p.full_name.is_empty() {
            names.push(fold(&p.full_name));
        }
        p.full_name = SEALED_NAME.to_owned();
        p.national_code = mosharekat_persian::mask(&p.national_code);
        for c in consents.iter_mut().filter(|c| c.party_index == i as i32) {
            c.given_by = SEALED_NAME.to_owned();
        }
    }
    for list in attendees.iter_mut() {
        for a in list.iter_mut() {
            if names.contains(&fold(a)) {
                *a = SEALED_NAME.to_owned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosharekat_api::common::v1::DocumentRef;

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

    fn victim(minor: bool, guardian_is_accused: bool) -> Party {
        Party {
            full_name: "بزه‌دیده".into(),
            role: PartyRole::Victim as i32,
            minor,
            guardian_is_accused,
            ..Default::default()
        }
    }

    fn consent(index: i32, basis: ConsentBasis) -> Consent {
        Consent {
            party_index: index,
            given_by: "x".into(),
            basis: basis as i32,
            time: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            }),
            document: Some(DocumentRef {
                sha256: "ab".repeat(32),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn consent_rule_of_article_66() {
        use ConsentBasis as B;
        use FilingKind as K;
        let adult = [victim(false, false)];
        assert!(missing_consent(K::Complaint, &adult, &[]).is_some());
        assert!(missing_consent(K::CrimeReport, &adult, &[]).is_some());
        assert!(
            missing_consent(K::Lawsuit, &adult, &[]).is_none(),
            "lawsuits need none"
        );
        assert!(missing_consent(K::Complaint, &adult, &[consent(0, B::Victim)]).is_none());
        assert!(
            missing_consent(K::Complaint, &adult, &[consent(0, B::Guardian)]).is_some(),
            "an adult consents alone"
        );
        assert!(
            missing_consent(K::Complaint, &adult, &[consent(1, B::Victim)]).is_some(),
            "for the right victim"
        );
        let child = [victim(true, false)];
        assert!(missing_consent(K::Complaint, &child, &[consent(0, B::Victim)]).is_some());
        assert!(missing_consent(K::Complaint, &child, &[consent(0, B::Guardian)]).is_none());
        let abused = [victim(true, true)];
        assert!(
            missing_consent(K::Complaint, &abused, &[consent(0, B::Guardian)]).is_some(),
            "not the accused guardian"
        );
        assert!(
            missing_consent(K::Complaint, &abused, &[consent(0, B::TemporaryGuardian)]).is_none()
        );
        assert!(
            missing_consent(K::Complaint, &abused, &[consent(0, B::ProsecutorApproval)]).is_none()
        );
        let mut no_doc = consent(0, B::Victim);
        no_doc.document = None;
        assert!(
            missing_consent(K::Complaint, &adult, &[no_doc]).is_some(),
            "a document is recorded"
        );
        // No victim named: nothing to consent to.
        let accused = [Party {
            role: PartyRole::Accused as i32,
            ..Default::default()
        }];
        assert!(missing_consent(K::CrimeReport, &accused, &[]).is_none());
        // Every victim needs it.
        let two = [victim(false, false), victim(false, false)];
        assert!(missing_consent(K::Complaint, &two, &[consent(0, B::Victim)]).is_some());
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn three_months_on_tehrans_calendar() {
        let p = DuePolicy::default();
        // 22:00 UTC on 31 December is 01:30 on 1 January in Tehran: three months later is
        // 01:30 on 1 April in Tehran, 22:00 UTC on 31 March — not 31 March + 3 months.
        let accepted = utc(2025, 12, 31, 22, 0);
        assert_eq!(
            p.due(ReferralKind::Reconciliation, accepted),
            utc(2026, 3, 31, 22, 0)
        );
        // A day in Tehran that has no 30th three months on clamps to the month's end.
        let accepted = utc(2026, 11, 30, 8, 0); // 30 Nov, 11:30 Tehran
        assert_eq!(
            p.due(ReferralKind::Mediation, accepted),
            utc(2027, 2, 28, 8, 0)
        );
        assert_eq!(
            p.due(ReferralKind::LegalAid, accepted),
            accepted + chrono::Duration::days(60)
        );
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

    #[test]
    fn due_policy_is_configurable_except_where_the_law_fixes_it() {
        let p = DuePolicy::parse("victim_support=30, LEGAL_AID=45", 60).unwrap();
        let t = utc(2026, 1, 1, 0, 0);
        assert_eq!(
            p.due(ReferralKind::VictimSupport, t),
            t + chrono::Duration::days(30)
        );
        assert_eq!(
            p.due(ReferralKind::LegalAid, t),
            t + chrono::Duration::days(45)
        );
        assert_eq!(
            p.due(ReferralKind::SocialWork, t),
            t + chrono::Duration::days(60)
        );
        assert!(DuePolicy::parse("MEDIATION=10", 60).is_err());
        assert!(DuePolicy::parse("NOPE=10", 60).is_err());
        assert!(DuePolicy::parse("LEGAL_AID=0", 60).is_err());
    }

    #[test]
    fn only_minors_and_victims_are_sealable() {
        assert!(sealable(&victim(false, false)));
        assert!(sealable(&Party {
            minor: true,
            role: PartyRole::Disputant as i32,
            ..Default::default()
        }));
        assert!(!sealable(&Party {
            role: PartyRole::Accused as i32,
            ..Default::default()
        }));
    }

    #[test]
    fn a_sealed_party_is_masked_wherever_it_is_named() {
        let mut parties = vec![
            Party {
                full_name: "مريم رضايي".into(),
                national_code: "0076229645".into(),
                sealed: true,
                ..victim(true, false)
            },
            Party {
                full_name: "حسن".into(),
                national_code: "1583250689".into(),
                ..Default::default()
            },
        ];
        let mut consents = vec![
            consent(0, ConsentBasis::Guardian),
            consent(1, ConsentBasis::Victim),
        ];
        let mut attendees = vec!["مریم رضایی".to_owned(), "حسن".to_owned()];
        mask_sealed(&mut parties, &mut consents, &mut [&mut attendees]);
        assert_eq!(parties[0].full_name, SEALED_NAME);
        assert_eq!(parties[0].national_code, "******9645");
        assert_eq!(
            (
                parties[1].full_name.as_str(),
                parties[1].national_code.as_str()
            ),
            ("حسن", "1583250689")
        );
        assert_eq!(consents[0].given_by, SEALED_NAME);
        assert_eq!(consents[1].given_by, "x");
        // Found under Arabic or Persian letters alike.
        assert_eq!(attendees, [SEALED_NAME, "حسن"]);
    }

    #[test]
    fn extension_is_bounded_to_three_months() {
        let due = utc(2026, 3, 31, 22, 0);
        assert_eq!(max_extension(due), utc(2026, 6, 30, 22, 0));
    }
}
