//! The working group's resources as the service has them: typed names, states and kinds as
//! Rust enums, the national code as its newtype. Built from API messages at the edge
//! ([`crate::api`]) and stored as they are ([`crate::store`]: JSON under a `schema`
//! version). No protobuf type appears here.

use std::fmt;

use mosharekat_persian::NationalCode;
use serde::{Deserialize, Serialize};

use crate::names::{GroupName, MeetingName, MemberName, ResolutionName};

/// An instant, to the nanosecond (times sent by callers keep their precision: the minutes'
/// hash covers them). Stored as RFC 3339 in UTC with nine fractional digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time {
    pub seconds: i64,
    /// 0 to 999 999 999.
    pub nanos: u32,
}

impl Time {
    pub fn from_micros(us: i64) -> Self {
        Self {
            seconds: us.div_euclid(1_000_000),
            nanos: (us.rem_euclid(1_000_000) * 1000) as u32,
        }
    }

    /// `None` when `nanos` is not below a second.
    pub fn new(seconds: i64, nanos: i32) -> Option<Self> {
        let nanos = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)?;
        Some(Self { seconds, nanos })
    }

    /// Microseconds since the epoch, rounded down (what deadlines are compared in).
    pub fn micros(self) -> i64 {
        self.seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(self.nanos / 1000))
    }

    pub fn from_chrono(t: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            seconds: t.timestamp(),
            nanos: t.timestamp_subsec_nanos(),
        }
    }

    pub fn chrono(self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp(self.seconds, self.nanos)
    }
}

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self
            .chrono()
            .ok_or_else(|| serde::ser::Error::custom("a time out of range"))?;
        s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let t = chrono::DateTime::parse_from_rfc3339(&s).map_err(serde::de::Error::custom)?;
        Ok(Self {
            seconds: t.timestamp(),
            nanos: t.timestamp_subsec_nanos(),
        })
    }
}

macro_rules! stored_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant),* }
    };
}

stored_enum!(
    /// A seat in the working group.
    Seat { Chair, Official, InstitutionRepresentative, Secretary }
);
stored_enum!(
    /// The office a member holds.
    Position {
        SocialPreventionDeputy,
        ChiefInspector,
        ProsecutorDeputy,
        PrisonsDirectorGeneral,
        DisputeResolutionHead,
        PopularParticipationDirector,
        InstitutionRepresentative,
        Secretariat,
    }
);
stored_enum!(
    /// A meeting's life cycle (see [`crate::rules::next_meeting_state`]).
    MeetingState { Scheduled, Postponed, Cancelled, InSession, Closed }
);
stored_enum!(AttendanceStatus {
    Present,
    Absent,
    Excused,
    Represented
});
stored_enum!(Vote {
    For,
    Against,
    Abstain
});
stored_enum!(
    /// A resolution's follow-up.
    ResolutionState { NotAdopted, Open, InProgress, Done, Cancelled }
);

/// A resolution's deadline as the secretary gives it: a date, or a period counted from
/// the meeting's day (arts. 443–445).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineAsked {
    /// Ends with that day in Tehran (or the next open day).
    Date(Time),
    Period(mosharekat_calendar::Period),
}

impl fmt::Display for MeetingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Scheduled => "SCHEDULED",
            Self::Postponed => "POSTPONED",
            Self::Cancelled => "CANCELLED",
            Self::InSession => "IN_SESSION",
            Self::Closed => "CLOSED",
        })
    }
}

/// A provincial working group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub name: GroupName,
    pub province: String,
    pub title: String,
    pub founding_time: Option<Time>,
    pub create_time: Option<Time>,
    pub update_time: Option<Time>,
    /// The minutes' comment window in days; `None`: [`DEFAULT_COMMENT_DAYS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes_comment_days: Option<u32>,
}

/// The minutes' comment window when the group names none: three days on the legal
/// calendar (`domain.md`, "The working group: more of its practice").
pub const DEFAULT_COMMENT_DAYS: u32 = 3;

impl Group {
    pub fn comment_days(&self) -> u32 {
        self.minutes_comment_days.unwrap_or(DEFAULT_COMMENT_DAYS)
    }
}

/// A seat held (or, in a meeting's roster, as it was held when the meeting started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub name: MemberName,
    pub full_name: String,
    /// Absent in a roster: the minutes do not carry personal data.
    #[serde(with = "mosharekat_persian::ids::stored_national_code", default)]
    pub national_code: Option<NationalCode>,
    pub seat: Seat,
    pub position: Position,
    pub position_title: String,
    /// `institutions/{id}`, for a representative.
    pub institution: String,
    pub term_start: Option<Time>,
    pub term_end: Option<Time>,
    pub voting: bool,
    pub vacant: bool,
    pub vacancy_reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgendaItem {
    pub title: String,
    pub description: String,
    /// `institutions/{id}`, `filings/{id}`, `referrals/{id}`, or empty.
    pub subject: String,
    pub standing_report: bool,
    pub figures: Vec<Figure>,
    /// The institution the subject is of, as its owning service answered when the agenda
    /// was set (`institutions/{id}`; empty without a subject).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject_institution: String,
}

/// A member left out of one agenda item's quorum and votes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recusal {
    /// 1-based position in the agenda.
    pub agenda_item: u32,
    pub member: String,
    /// The item is about the member's own institution (else declared by them).
    pub automatic: bool,
    pub reason: String,
    pub declare_time: Option<Time>,
}

stored_enum!(
    /// The draft minutes' review.
    ReviewState { Open, Closed }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinutesComment {
    pub member: String,
    pub text: String,
    pub create_time: Option<Time>,
}

/// The draft minutes opened for comment by the members who attended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinutesReview {
    pub state: ReviewState,
    pub open_time: Option<Time>,
    /// The comment window through the legal calendar, with its rule and any late moves.
    pub window: mosharekat_calendar::Deadline,
    pub close_time: Option<Time>,
    pub comments: Vec<MinutesComment>,
    pub draft_discussion: String,
}

/// A present member's signature of the approved minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    pub member: String,
    pub sign_time: Option<Time>,
    pub content_sha256: String,
    pub minutes_hash_version: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attendance {
    /// The member's name, as on the roster.
    pub member: String,
    pub status: AttendanceStatus,
    pub substitute_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quorum {
    pub met: bool,
    pub voting_members: i32,
    pub voting_present: i32,
    pub required: i32,
    pub chair_present: bool,
    pub deputy_present: bool,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CastVote {
    pub member: String,
    pub vote: Vote,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressNote {
    pub time: Option<Time>,
    pub progress: i32,
    pub note: String,
    pub reported_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub name: ResolutionName,
    /// The meeting it was voted in.
    pub meeting: String,
    pub number: i32,
    pub text: String,
    pub responsible_member: String,
    pub responsible_body: String,
    /// When it is due: the end of `legal_deadline`'s last day when there is one; for a
    /// record written before deadlines went through the calendar, as it was stored.
    pub deadline: Option<Time>,
    /// The deadline as the legal calendar computed it, with the rule applied and any
    /// later moves. Absent on older records, which keep their stored deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_deadline: Option<mosharekat_calendar::Deadline>,
    pub votes: Vec<CastVote>,
    pub votes_for: i32,
    pub votes_against: i32,
    pub abstentions: i32,
    pub adopted: bool,
    pub state: ResolutionState,
    pub progress: i32,
    pub notes: Vec<ProgressNote>,
    /// 1-based position of its agenda item; 0: the meeting as a whole.
    #[serde(default)]
    pub agenda_item: u32,
    /// When its extract was sent to the body responsible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract_send_time: Option<Time>,
}

impl Resolution {
    /// `{meeting}-{n}` in Persian digits, as documents print it (e.g. ۱-۳).
    pub fn display_number(&self) -> String {
        let meeting = self.meeting.rsplit('/').next().unwrap_or_default();
        mosharekat_persian::digits::to_persian_digits(&format!("{meeting}-{}", self.number))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meeting {
    pub name: MeetingName,
    pub title: String,
    pub scheduled_time: Option<Time>,
    pub place: String,
    pub state: MeetingState,
    pub state_reason: String,
    pub agenda: Vec<AgendaItem>,
    pub agenda_final: bool,
    pub attendance: Vec<Attendance>,
    pub deputy_chair: String,
    pub quorum: Option<Quorum>,
    /// The resolutions as voted, once the minutes are approved; before, they are read
    /// from their own records.
    pub resolutions: Vec<Resolution>,
    pub discussion: String,
    pub start_time: Option<Time>,
    pub close_time: Option<Time>,
    /// Lowercase hex, once the minutes are approved.
    pub content_sha256: String,
    /// The seats as they were when it started.
    pub roster: Vec<Member>,
    /// The form `content_sha256` was taken over ([`crate::canonical::MinutesHashVersion`]'s
    /// number), once there is one. Kept in its own column, not in the record; a number
    /// this release does not know is kept as it is.
    #[serde(skip)]
    pub minutes_hash_version: Option<i32>,
    /// Who is recused for which item: declared ones as declared, the automatic ones fixed
    /// when the meeting starts (with its roster).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recusals: Vec<Recusal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<MinutesReview>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<Signature>,
}
