//! The referral service's domain: filings and referrals as this service has them, with
//! typed ids, states and kinds as Rust enums and national codes as the checked newtype.
//! Built from requests and turned into responses in [`crate::api`]; stored by
//! [`crate::store`], whose stored form is these types' serde form (see there).

use std::fmt;

use chrono::{DateTime, Utc};
use mosharekat_calendar::Deadline;
use mosharekat_persian::NationalCode;
use serde::{Deserialize, Serialize};

use crate::names::{FilingId, InstitutionId, ReferralId};

/// An enum of the domain with its stored number (the lists' filter columns hold it; it is
/// also the API's number, which [`crate::api`] checks in a test) and its name (as the
/// timelines and statistics write it).
macro_rules! domain_enum {
    ($(#[$doc:meta])* $name:ident { $($v:ident = $code:literal $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $v),*
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$v),*];

            /// The stored (and API) number.
            pub fn code(self) -> i32 {
                match self { $(Self::$v => $code),* }
            }

            pub fn from_code(code: i32) -> Option<Self> {
                match code { $($code => Some(Self::$v),)* _ => None }
            }

            /// The name, as timelines and statistics write it (`IN_PROGRESS`).
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

domain_enum!(FilingKind {
    Lawsuit = 1 "LAWSUIT",
    CrimeReport = 2 "CRIME_REPORT",
    Complaint = 3 "COMPLAINT",
});

domain_enum!(FilingState {
    Draft = 1 "DRAFT",
    Submitted = 2 "SUBMITTED",
    Registered = 3 "REGISTERED",
    Rejected = 4 "REJECTED",
    Closed = 5 "CLOSED",
    Withdrawn = 6 "WITHDRAWN",
});

domain_enum!(
    /// On what footing a victim's consent was given (Criminal Procedure Code art. 66 note 1).
    ConsentBasis {
        Victim = 1 "VICTIM",
        Guardian = 2 "GUARDIAN",
        TemporaryGuardian = 3 "TEMPORARY_GUARDIAN",
        ProsecutorApproval = 4 "PROSECUTOR_APPROVAL",
    }
);

domain_enum!(PartyRole {
    Victim = 1 "VICTIM",
    Accused = 2 "ACCUSED",
    Respondent = 3 "RESPONDENT",
    Claimant = 4 "CLAIMANT",
    Disputant = 5 "DISPUTANT",
    Other = 6 "OTHER",
});

domain_enum!(ReferralSource {
    DisputeResolutionCenter = 1 "DISPUTE_RESOLUTION_CENTER",
    Prosecutor = 2 "PROSECUTOR",
    Court = 3 "COURT",
    Prisons = 4 "PRISONS",
});

domain_enum!(ReferralKind {
    Reconciliation = 1 "RECONCILIATION",
    Mediation = 2 "MEDIATION",
    VictimSupport = 3 "VICTIM_SUPPORT",
    LegalAid = 4 "LEGAL_AID",
    PsychologicalSupport = 5 "PSYCHOLOGICAL_SUPPORT",
    SocialWork = 6 "SOCIAL_WORK",
});

domain_enum!(ReferralState {
    Offered = 1 "OFFERED",
    Accepted = 2 "ACCEPTED",
    InProgress = 3 "IN_PROGRESS",
    Resolved = 4 "RESOLVED",
    Declined = 5 "DECLINED",
    Returned = 6 "RETURNED",
    Recalled = 7 "RECALLED",
    Withdrawn = 8 "WITHDRAWN",
});

domain_enum!(
    /// Where the institution's request for the one extension stands (art. 28).
    ExtensionRequestState {
        Pending = 1 "PENDING",
        Granted = 2 "GRANTED",
        Refused = 3 "REFUSED",
    }
);

domain_enum!(ReferralOutcome {
    Reconciled = 1 "RECONCILED",
    PartiallyReconciled = 2 "PARTIALLY_RECONCILED",
    NotReconciled = 3 "NOT_RECONCILED",
});

domain_enum!(NotReconciledReason {
    PartyRefused = 1 "PARTY_REFUSED",
    PartyUnreachable = 2 "PARTY_UNREACHABLE",
    OutsideCapacity = 3 "OUTSIDE_CAPACITY",
    NoLongerNeeded = 4 "NO_LONGER_NEEDED",
    Other = 5 "OTHER",
});

/// One of the 23 activity areas of the registry's licences, by its number (checked at the
/// edge against the API's list; the list is the registry's, and grows there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActivityArea(pub(crate) i32);

impl ActivityArea {
    pub fn code(self) -> i32 {
        self.0
    }
}

/// What a licence must permit, as this service asks the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    FileLawsuit,
    ReportCrime,
    FileComplaint,
    AcceptReferrals,
}

/// Fields a newer version of this service stored that this one does not know: kept as
/// they were when it rewrites the record, so that a rolling upgrade loses nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Unknown(pub(crate) serde_json::Map<String, serde_json::Value>);

/// A party to a filing or referral.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Party {
    pub full_name: String,
    #[serde(with = "mosharekat_persian::ids::stored_national_code", default)]
    pub national_code: Option<NationalCode>,
    pub role: PartyRole,
    #[serde(default)]
    pub minor: bool,
    #[serde(default)]
    pub legally_incapacitated: bool,
    #[serde(default)]
    pub guardian_is_accused: bool,
    #[serde(default)]
    pub sealed: bool,
}

/// Names stay out of logs; the national code's own Debug masks it.
impl fmt::Debug for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Party")
            .field("role", &self.role)
            .field("national_code", &self.national_code)
            .field("minor", &self.minor)
            .field("sealed", &self.sealed)
            .finish_non_exhaustive()
    }
}

/// A document kept elsewhere, referred to by its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub title: String,
    /// Lower-case hex SHA-256, 64 characters.
    pub sha256: String,
    pub size_bytes: i64,
    pub media_type: String,
}

/// A victim's consent, as article 66 note 1 asks for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    /// The index of the victim in the filing's parties.
    pub party_index: usize,
    pub given_by: String,
    pub basis: ConsentBasis,
    #[serde(with = "micros")]
    pub time: DateTime<Utc>,
    pub document: Document,
}

/// A party's agreement to mediation or reconciliation (Criminal Procedure Code art. 82).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyAgreement {
    /// The index of the party in the referral's parties.
    pub party_index: usize,
    /// The party, or its guardian or attorney.
    pub given_by: String,
    #[serde(with = "micros")]
    pub time: DateTime<Utc>,
    pub document: Document,
}

/// The institution's request for the one extension, and the source's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtensionRequest {
    pub reason: String,
    pub requested_by: String,
    #[serde(with = "micros")]
    pub request_time: DateTime<Utc>,
    pub state: ExtensionRequestState,
    #[serde(default)]
    pub answer_reason: String,
    #[serde(default)]
    pub answered_by: String,
    #[serde(default, with = "micros_opt")]
    pub answer_time: Option<DateTime<Utc>>,
}

/// An institution as the registry showed it, asked outside the write transaction when
/// the institution was given the case: the name its notices address it by and the
/// address they are e-mailed to (empty when it gave none). It names the institution it
/// is of, so a document whose assignee changed (by a version that did not know this
/// field and kept it unread) does not address the new one by the old one's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub institution: InstitutionId,
    #[serde(default)]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// Fields a later version added, kept as read.
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// A filing an institution makes with the judiciary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filing {
    pub id: FilingId,
    pub institution: InstitutionId,
    pub kind: FilingKind,
    pub activity_area: ActivityArea,
    /// The prosecutor's office or court addressed, by name.
    pub authority: String,
    pub province: String,
    pub subject: String,
    pub description: String,
    pub parties: Vec<Party>,
    pub documents: Vec<Document>,
    pub consents: Vec<Consent>,
    pub state: FilingState,
    /// Given at registration, unique per authority.
    #[serde(default)]
    pub case_number: Option<String>,
    #[serde(default)]
    pub rejection_reason: String,
    #[serde(default)]
    pub outcome: String,
    #[serde(with = "micros")]
    pub create_time: DateTime<Utc>,
    #[serde(with = "micros")]
    pub update_time: DateTime<Utc>,
    #[serde(default, with = "micros_opt")]
    pub submit_time: Option<DateTime<Utc>>,
    /// The filing institution as the registry showed it at submission (its notices'
    /// addressee); none on a filing not submitted since this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// The short number people quote («پرونده ۱۲»): kept in its own column (given at
    /// creation, back-filled for older rows), not in the document.
    #[serde(skip)]
    pub reference: u64,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// A session an institution held on a referral.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressEntry {
    #[serde(with = "micros")]
    pub session_time: DateTime<Utc>,
    /// Who attended, by name.
    pub attendees: Vec<String>,
    pub notes: String,
    pub recorded_by: String,
    #[serde(with = "micros")]
    pub record_time: DateTime<Utc>,
}

/// A referral the judiciary makes to an institution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Referral {
    pub id: ReferralId,
    pub source: ReferralSource,
    pub source_case_number: String,
    pub kind: ReferralKind,
    pub activity_area: ActivityArea,
    pub province: String,
    pub parties: Vec<Party>,
    pub summary: String,
    /// The assignee.
    pub institution: InstitutionId,
    pub state: ReferralState,
    /// Set on acceptance: `due.ends_at` when the legal calendar computed it.
    #[serde(default, with = "micros_opt")]
    pub due_time: Option<DateTime<Utc>>,
    /// The due time with the rule applied; `None` for one computed before the calendar
    /// (its `due_time` stands as computed then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Deadline>,
    /// While offered: the time to accept or decline, on the legal calendar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Deadline>,
    #[serde(default)]
    pub extended: bool,
    #[serde(default)]
    pub extension_reason: String,
    #[serde(default)]
    pub progress: Vec<ProgressEntry>,
    #[serde(default)]
    pub outcome: Option<ReferralOutcome>,
    #[serde(default)]
    pub not_reconciled_reason: Option<NotReconciledReason>,
    #[serde(default)]
    pub settlement_text: String,
    /// Why it was declined, returned, recalled or withdrawn.
    #[serde(default)]
    pub state_reason: String,
    #[serde(with = "micros")]
    pub create_time: DateTime<Utc>,
    #[serde(with = "micros")]
    pub update_time: DateTime<Utc>,
    #[serde(default, with = "micros_opt")]
    pub accept_time: Option<DateTime<Utc>>,
    #[serde(default, with = "micros_opt")]
    pub resolve_time: Option<DateTime<Utc>>,
    /// The assignee as the registry showed it when the referral was offered to it (its
    /// notices' addressee); none on a referral offered before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// The short number people quote («ارجاع ۱۲»); see [`Filing::reference`].
    #[serde(skip)]
    pub reference: u64,
    /// The judicial district (حوزهٔ قضایی) of the case; empty when not given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub judicial_district: String,
    /// Each party's agreement to mediation or reconciliation (art. 82).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agreements: Vec<PartyAgreement>,
    /// The parties chose the institution (mediation regulation art. 5).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub chosen_by_parties: bool,
    /// The institution's request for the one extension, if it made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_request: Option<ExtensionRequest>,
    /// The office that referred it (`notify::Office`'s stored form), told when the answer
    /// time passes or an extension is asked; none on a referral from before it was kept
    /// (the centre is told).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_office: Option<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// One change of state, as the timeline keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    /// The state before (empty for a creation).
    pub from: String,
    pub to: String,
    pub actor: String,
    pub time: DateTime<Utc>,
    pub note: String,
}

/// A time as microseconds since the Unix epoch (the suite's stored form of a time).
pub(crate) fn instant(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

mod micros {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.timestamp_micros())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let us = i64::deserialize(d)?;
        DateTime::from_timestamp_micros(us)
            .ok_or_else(|| serde::de::Error::custom("time out of range"))
    }
}

mod micros_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&t.timestamp_micros()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<i64>::deserialize(d)?
            .map(|us| {
                DateTime::from_timestamp_micros(us)
                    .ok_or_else(|| serde::de::Error::custom("time out of range"))
            })
            .transpose()
    }
}
