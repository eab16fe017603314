//! The minutes' hash: what it covers, the form it is taken over, and the version of that
//! form, kept with the record so that minutes approved years ago still verify after the
//! API or the storage changes.
//!
//! Approved minutes carry `content_sha256`, the lowercase hex SHA-256 of their content in a
//! canonical form, and `minutes_hash_version`, the form it was taken over (stored in the
//! `meetings.minutes_hash_version` column). `VerifyMinutes` recomputes with the record's
//! version; new approvals use [`MinutesHashVersion::CURRENT`].
//!
//! - **Version 1** (minutes approved before version 2): the SHA-256 of the prost encoding of
//!   the API message `mosharekat.meeting.v1.Meeting` as approved, with `etag`,
//!   `content_sha256` and `minutes_hash_version` cleared and, in each resolution, `etag`,
//!   `overdue`, `state`, `progress` and `notes` cleared. It depends on the proto's field
//!   numbers and on how prost encodes them, so it is kept only to verify those records:
//!   since the service keeps its own records (not the API message), their approved bytes
//!   are kept verbatim beside the record (`meetings.minutes_v1`), and verification hashes
//!   those bytes and checks that the record still says what they say ([`verify_v1`]).
//! - **Version 2** (every approval since): the SHA-256 of the UTF-8 bytes of the canonical
//!   JSON text of [`MinutesContent`], written as below. Nothing in it depends on the proto.
//!
//! # The version 2 canonical form
//!
//! JSON (RFC 8259) written as RFC 8785 (JCS) writes the only kinds of value it holds:
//!
//! - no whitespace anywhere outside strings;
//! - objects with their members sorted by key; every key is ASCII `snake_case`, so byte
//!   order is the UTF-16 code-unit order JCS prescribes;
//! - strings in UTF-8 as stored (names and texts are NFC already); `"` and `\` escaped as
//!   `\"` and `\\`; U+0008, U+0009, U+000A, U+000C, U+000D as `\b`, `\t`, `\n`, `\f`, `\r`;
//!   the other characters below U+0020 as `\u00xx` (lowercase hex); every other character,
//!   `/` and U+007F included, as itself;
//! - integers in decimal, without leading zeros or `+`, negatives with `-`; there are no
//!   fractional numbers;
//! - `true` and `false`; `null` for a time or the quorum that is absent;
//! - times as strings `YYYY-MM-DDTHH:MM:SS.fffffffffZ`: RFC 3339 in UTC with exactly nine
//!   fractional digits, e.g. `"2025-03-20T10:00:00.000000000Z"` (a protobuf `Timestamp` of
//!   `seconds` since the Unix epoch, leap seconds not counted, plus `nanos`). A timestamp
//!   whose `nanos` is outside 0..=999999999 or whose year is outside 0001..=9999 has no
//!   canonical form (validation admits only years 1900 to 2200): minutes holding one are
//!   not approved, and do not verify;
//! - enum values as their names in the tables of this module (the proto's value names, e.g.
//!   `"SEAT_CHAIR"`, written here so that a proto rename cannot change the form); a number
//!   no table names is written as that number, a JSON integer;
//! - lists in the order the minutes keep them: the agenda as set, the roster as seated at
//!   the start, attendance as recorded, resolutions and their votes as recorded.
//!
//! (Python's `json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
//! writes the same text from the same document; the golden vector was checked so.)
//!
//! The document is one object with these members (`time` a time or `null`, `enum` an enum
//! value as above):
//!
//! ```text
//! { "form": "mosharekat.meeting.minutes.v2",
//!   "name": string (working-groups/{wg}/meetings/{number}: the group and the meeting),
//!   "number": integer, "title": string, "place": string, "state": enum MeetingState,
//!   "state_reason": string, "scheduled_time": time, "start_time": time, "close_time": time,
//!   "agenda_final": bool,
//!   "agenda": [ { "title": string, "description": string, "subject": string,
//!                 "standing_report": bool,
//!                 "figures": [ { "label": string, "value": string } ] } ],
//!   "roster": [ { "name": string, "full_name": string, "seat": enum Seat,
//!                 "position": enum Position, "position_title": string,
//!                 "institution": string, "term_start": time, "term_end": time,
//!                 "voting": bool, "vacant": bool, "vacancy_reason": string } ],
//!   "attendance": [ { "member": string, "status": enum AttendanceStatus,
//!                     "substitute_name": string } ],
//!   "deputy_chair": string,
//!   "quorum": null | { "met": bool, "voting_members": integer, "voting_present": integer,
//!                      "required": integer, "chair_present": bool,
//!                      "deputy_present": bool, "explanation": string },
//!   "resolutions": [ { "name": string, "meeting": string, "number": integer,
//!                      "text": string, "responsible_member": string,
//!                      "responsible_body": string, "deadline": time,
//!                      "votes": [ { "member": string, "vote": enum Vote } ],
//!                      "votes_for": integer, "votes_against": integer,
//!                      "abstentions": integer, "adopted": bool } ],
//!   "discussion": string }
//! ```
//!
//! # Version 3
//!
//! Version 3 (every approval since issue 17) is version 2's document with `"form"` set to
//! `"mosharekat.meeting.minutes.v3"` and three additions, written by the same rules:
//!
//! ```text
//!   "agenda": [ { ...as version 2, "subject_institution": string } ],
//!   "resolutions": [ { ...as version 2, "agenda_item": integer } ],
//!   "recusals": [ { "agenda_item": integer, "member": string, "automatic": bool,
//!                   "reason": string, "declare_time": time } ]
//! ```
//!
//! Who was recused for which item decides each item's quorum and votes, so it is part of
//! what the minutes say. The draft's **review** (its comment window and the comments) is
//! not: comments are review material, kept with the minutes but not in them (what they
//! changed is in the approved text itself). The **signatures** are not either: they come
//! after approval and each records the hash it signed, so a hash covering them could not
//! be signed. Versions 1 and 2 cover none of the three additions and verify as before.
//!
//! It covers what version 1 covers, except the roster's national codes and etags, which the
//! roster never holds (see [`crate::rules::roster_snapshot`]; the minutes must not carry
//! personal data).
//! Follow-up of a resolution after the meeting (state, progress, notes) is not part of its
//! minutes. The test `golden_vector` pins the text and the hash of a fixed document: if it
//! fails, the form has changed, and the change needs a new version, not a new vector.

use std::fmt::{self, Write as _};

use chrono::{Datelike, Timelike};
use mosharekat_api::meeting::v1 as pb;
use prost::Message;
use sha2::{Digest, Sha256};

/// The form of a minutes' hash, as the record names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinutesHashVersion {
    /// The prost encoding of the API message: verifies minutes approved before version 2.
    V1ProstEncoding = 1,
    /// The canonical JSON of [`MinutesContent`].
    V2CanonicalJson = 2,
    /// The canonical JSON of [`MinutesContentV3`]: version 2 with the recusals.
    V3WithRecusals = 3,
}

impl MinutesHashVersion {
    /// The form new approvals use.
    pub const CURRENT: Self = Self::V3WithRecusals;

    pub fn from_number(n: i32) -> Option<Self> {
        match n {
            1 => Some(Self::V1ProstEncoding),
            2 => Some(Self::V2CanonicalJson),
            3 => Some(Self::V3WithRecusals),
            _ => None,
        }
    }

    pub fn number(self) -> i32 {
        self as i32
    }

    /// The lowercase hex SHA-256 of `meeting`'s minutes in this form.
    pub fn sha256(self, meeting: &pb::Meeting) -> Result<String, NoCanonicalForm> {
        match self {
            Self::V1ProstEncoding => Ok(v1_prost_sha256(meeting)),
            Self::V2CanonicalJson => Ok(MinutesContent::of(meeting)?.sha256()),
            Self::V3WithRecusals => Ok(MinutesContentV3::of(meeting)?.sha256()),
        }
    }
}

/// The hash of `meeting`'s minutes in the current form, taken over the API message the
/// service answers with: what a caller reads, it can hash and compare itself.
pub fn current_sha256(meeting: &crate::domain::Meeting) -> Result<String, NoCanonicalForm> {
    MinutesHashVersion::CURRENT.sha256(&pb::Meeting::from(meeting))
}

/// What `VerifyMinutes` computes for `meeting` in the form `version`: for version 1, over
/// the bytes kept from its approval (`kept_v1`, see [`verify_v1`]). Empty when nothing can
/// match (no bytes kept, the record changed since, a time without a canonical form).
pub fn recompute(
    version: MinutesHashVersion,
    meeting: &crate::domain::Meeting,
    kept_v1: Option<&[u8]>,
) -> String {
    let m = pb::Meeting::from(meeting);
    match version {
        MinutesHashVersion::V1ProstEncoding => kept_v1
            .and_then(|kept| verify_v1(kept, &m))
            .unwrap_or_default(),
        MinutesHashVersion::V2CanonicalJson | MinutesHashVersion::V3WithRecusals => {
            version.sha256(&m).unwrap_or_default()
        }
    }
}

/// Minutes holding a value the canonical form cannot write: a time out of its range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoCanonicalForm {
    /// The field path of the value, e.g. `resolutions[0].deadline`.
    pub field: String,
}

impl fmt::Display for NoCanonicalForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the minutes' {} is a time outside the years 0001 to 9999",
            self.field
        )
    }
}

impl std::error::Error for NoCanonicalForm {}

/// Version 1, frozen: minutes approved before version 2 were hashed exactly so. Fields the
/// message gained since are cleared, as they were absent (and so not encoded) then.
fn v1_prost_sha256(meeting: &pb::Meeting) -> String {
    hex::encode(Sha256::digest(v1_form(meeting).encode_to_vec()))
}

/// Verifies minutes approved under version 1 now that the service keeps its own records:
/// `kept` is the message's bytes as approved (kept verbatim by the migration to the
/// service's storage, never re-created from the new records) and `current` the minutes as
/// the record now has them. The version 1 hash of `kept`, when the record still says what
/// `kept` says (compared as messages, field by field, over what version 1 covers); `None`
/// when the record has changed since, or `kept` is not a message.
pub fn verify_v1(kept: &[u8], current: &pb::Meeting) -> Option<String> {
    let approved = pb::Meeting::decode(kept).ok()?;
    (v1_form(&approved) == v1_form(current)).then(|| v1_prost_sha256(&approved))
}

/// What version 1 covers of a meeting.
fn v1_form(meeting: &pb::Meeting) -> pb::Meeting {
    let mut m = meeting.clone();
    m.etag.clear();
    m.content_sha256.clear();
    m.minutes_hash_version = 0;
    // Fields the message gained after version 1 (issue 17).
    m.recusals.clear();
    m.review = None;
    m.signatures.clear();
    for a in &mut m.agenda {
        a.subject_institution.clear();
    }
    for r in &mut m.resolutions {
        r.agenda_item = 0;
        r.display_number.clear();
        r.extract_send_time = None;
        r.etag.clear();
        r.overdue = false;
        r.state = 0;
        r.progress = 0;
        r.notes.clear();
    }
    m
}

/// A time the canonical form can write: years 0001 to 9999, nanoseconds below a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    seconds: i64,
    nanos: u32,
}

impl Time {
    const MIN_SECONDS: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
    const END_SECONDS: i64 = 253_402_300_800; // 10000-01-01T00:00:00Z

    pub fn new(seconds: i64, nanos: i32) -> Option<Self> {
        let nanos = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)?;
        (Self::MIN_SECONDS..Self::END_SECONDS)
            .contains(&seconds)
            .then_some(Self { seconds, nanos })
    }

    fn of(
        t: &Option<prost_types::Timestamp>,
        field: &str,
    ) -> Result<Option<Self>, NoCanonicalForm> {
        match t {
            None => Ok(None),
            Some(t) => Self::new(t.seconds, t.nanos)
                .map(Some)
                .ok_or_else(|| NoCanonicalForm {
                    field: field.to_owned(),
                }),
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.fffffffffZ`.
    pub fn rfc3339(self) -> String {
        // In range by construction; the fallback is never taken.
        let t = chrono::DateTime::from_timestamp(self.seconds, self.nanos).unwrap_or_default();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            self.nanos
        )
    }
}

/// An enum value as the form writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    Name(&'static str),
    /// A number the table does not name.
    Unnamed(i32),
}

fn named(n: i32, table: &[(i32, &'static str)]) -> Named {
    table
        .iter()
        .find(|(v, _)| *v == n)
        .map_or(Named::Unnamed(n), |(_, name)| Named::Name(name))
}

// The value names of the form, fixed here: the proto's names when version 2 was defined.
const MEETING_STATES: &[(i32, &str)] = &[
    (0, "MEETING_STATE_UNSPECIFIED"),
    (1, "MEETING_STATE_SCHEDULED"),
    (2, "MEETING_STATE_POSTPONED"),
    (3, "MEETING_STATE_CANCELLED"),
    (4, "MEETING_STATE_IN_SESSION"),
    (5, "MEETING_STATE_CLOSED"),
];
const SEATS: &[(i32, &str)] = &[
    (0, "SEAT_UNSPECIFIED"),
    (1, "SEAT_CHAIR"),
    (2, "SEAT_OFFICIAL"),
    (3, "SEAT_INSTITUTION_REPRESENTATIVE"),
    (4, "SEAT_SECRETARY"),
];
const POSITIONS: &[(i32, &str)] = &[
    (0, "POSITION_UNSPECIFIED"),
    (1, "POSITION_SOCIAL_PREVENTION_DEPUTY"),
    (2, "POSITION_CHIEF_INSPECTOR"),
    (3, "POSITION_PROSECUTOR_DEPUTY"),
    (4, "POSITION_PRISONS_DIRECTOR_GENERAL"),
    (5, "POSITION_DISPUTE_RESOLUTION_HEAD"),
    (6, "POSITION_POPULAR_PARTICIPATION_DIRECTOR"),
    (7, "POSITION_INSTITUTION_REPRESENTATIVE"),
    (8, "POSITION_SECRETARIAT"),
];
const ATTENDANCE_STATUSES: &[(i32, &str)] = &[
    (0, "ATTENDANCE_STATUS_UNSPECIFIED"),
    (1, "ATTENDANCE_STATUS_PRESENT"),
    (2, "ATTENDANCE_STATUS_ABSENT"),
    (3, "ATTENDANCE_STATUS_EXCUSED"),
    (4, "ATTENDANCE_STATUS_REPRESENTED"),
];
const VOTES: &[(i32, &str)] = &[
    (0, "VOTE_UNSPECIFIED"),
    (1, "VOTE_FOR"),
    (2, "VOTE_AGAINST"),
    (3, "VOTE_ABSTAIN"),
];

/// What approved minutes say, and all the version 2 hash covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinutesContent {
    pub name: String,
    pub number: i32,
    pub title: String,
    pub place: String,
    pub state: Named,
    pub state_reason: String,
    pub scheduled_time: Option<Time>,
    pub start_time: Option<Time>,
    pub close_time: Option<Time>,
    pub agenda_final: bool,
    pub agenda: Vec<AgendaEntry>,
    pub roster: Vec<RosterEntry>,
    pub attendance: Vec<AttendanceEntry>,
    pub deputy_chair: String,
    pub quorum: Option<QuorumFigures>,
    pub resolutions: Vec<ResolutionEntry>,
    pub discussion: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgendaEntry {
    pub title: String,
    pub description: String,
    pub subject: String,
    pub standing_report: bool,
    /// (label, value)
    pub figures: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub name: String,
    pub full_name: String,
    pub seat: Named,
    pub position: Named,
    pub position_title: String,
    pub institution: String,
    pub term_start: Option<Time>,
    pub term_end: Option<Time>,
    pub voting: bool,
    pub vacant: bool,
    pub vacancy_reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceEntry {
    pub member: String,
    pub status: Named,
    pub substitute_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumFigures {
    pub met: bool,
    pub voting_members: i32,
    pub voting_present: i32,
    pub required: i32,
    pub chair_present: bool,
    pub deputy_present: bool,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolutionEntry {
    pub name: String,
    pub meeting: String,
    pub number: i32,
    pub text: String,
    pub responsible_member: String,
    pub responsible_body: String,
    pub deadline: Option<Time>,
    /// (member, vote)
    pub votes: Vec<(String, Named)>,
    pub votes_for: i32,
    pub votes_against: i32,
    pub abstentions: i32,
    pub adopted: bool,
}

/// The identifier of the form, written in the document itself.
pub const FORM: &str = "mosharekat.meeting.minutes.v2";

impl MinutesContent {
    /// The minutes of `m` as approved; what changes on reads or after the meeting is left
    /// out (see the module's comment).
    pub fn of(m: &pb::Meeting) -> Result<Self, NoCanonicalForm> {
        let roster = m
            .roster
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Ok(RosterEntry {
                    name: r.name.clone(),
                    full_name: r.full_name.clone(),
                    seat: named(r.seat, SEATS),
                    position: named(r.position, POSITIONS),
                    position_title: r.position_title.clone(),
                    institution: r.institution.clone(),
                    term_start: Time::of(&r.term_start, &format!("roster[{i}].term_start"))?,
                    term_end: Time::of(&r.term_end, &format!("roster[{i}].term_end"))?,
                    voting: r.voting,
                    vacant: r.vacant,
                    vacancy_reason: r.vacancy_reason.clone(),
                })
            })
            .collect::<Result<_, NoCanonicalForm>>()?;
        let resolutions = m
            .resolutions
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Ok(ResolutionEntry {
                    name: r.name.clone(),
                    meeting: r.meeting.clone(),
                    number: r.number,
                    text: r.text.clone(),
                    responsible_member: r.responsible_member.clone(),
                    responsible_body: r.responsible_body.clone(),
                    deadline: Time::of(&r.deadline, &format!("resolutions[{i}].deadline"))?,
                    votes: r
                        .votes
                        .iter()
                        .map(|v| (v.member.clone(), named(v.vote, VOTES)))
                        .collect(),
                    votes_for: r.votes_for,
                    votes_against: r.votes_against,
                    abstentions: r.abstentions,
                    adopted: r.adopted,
                })
            })
            .collect::<Result<_, NoCanonicalForm>>()?;
        Ok(Self {
            name: m.name.clone(),
            number: m.number,
            title: m.title.clone(),
            place: m.place.clone(),
            state: named(m.state, MEETING_STATES),
            state_reason: m.state_reason.clone(),
            scheduled_time: Time::of(&m.scheduled_time, "scheduled_time")?,
            start_time: Time::of(&m.start_time, "start_time")?,
            close_time: Time::of(&m.close_time, "close_time")?,
            agenda_final: m.agenda_final,
            agenda: m
                .agenda
                .iter()
                .map(|a| AgendaEntry {
                    title: a.title.clone(),
                    description: a.description.clone(),
                    subject: a.subject.clone(),
                    standing_report: a.standing_report,
                    figures: a
                        .figures
                        .iter()
                        .map(|f| (f.label.clone(), f.value.clone()))
                        .collect(),
                })
                .collect(),
            roster,
            attendance: m
                .attendance
                .iter()
                .map(|a| AttendanceEntry {
                    member: a.member.clone(),
                    status: named(a.status, ATTENDANCE_STATUSES),
                    substitute_name: a.substitute_name.clone(),
                })
                .collect(),
            deputy_chair: m.deputy_chair.clone(),
            quorum: m.quorum.as_ref().map(|q| QuorumFigures {
                met: q.met,
                voting_members: q.voting_members,
                voting_present: q.voting_present,
                required: q.required,
                chair_present: q.chair_present,
                deputy_present: q.deputy_present,
                explanation: q.explanation.clone(),
            }),
            resolutions,
            discussion: m.discussion.clone(),
        })
    }

    /// The canonical JSON text.
    pub fn canonical_json(&self) -> String {
        let mut out = String::new();
        self.to_json().write(&mut out);
        out
    }

    /// The lowercase hex SHA-256 of the canonical JSON's UTF-8 bytes.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_json().as_bytes()))
    }

    fn to_json(&self) -> Json {
        Json::Object(self.members())
    }

    fn members(&self) -> Vec<(&'static str, Json)> {
        use Json::*;
        vec![
            ("form", text(FORM)),
            ("name", text(&self.name)),
            ("number", Int(self.number.into())),
            ("title", text(&self.title)),
            ("place", text(&self.place)),
            ("state", self.state.into()),
            ("state_reason", text(&self.state_reason)),
            ("scheduled_time", self.scheduled_time.into()),
            ("start_time", self.start_time.into()),
            ("close_time", self.close_time.into()),
            ("agenda_final", Bool(self.agenda_final)),
            (
                "agenda",
                List(
                    self.agenda
                        .iter()
                        .map(|a| {
                            Object(vec![
                                ("title", text(&a.title)),
                                ("description", text(&a.description)),
                                ("subject", text(&a.subject)),
                                ("standing_report", Bool(a.standing_report)),
                                (
                                    "figures",
                                    List(
                                        a.figures
                                            .iter()
                                            .map(|(label, value)| {
                                                Object(vec![
                                                    ("label", text(label)),
                                                    ("value", text(value)),
                                                ])
                                            })
                                            .collect(),
                                    ),
                                ),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "roster",
                List(
                    self.roster
                        .iter()
                        .map(|r| {
                            Object(vec![
                                ("name", text(&r.name)),
                                ("full_name", text(&r.full_name)),
                                ("seat", r.seat.into()),
                                ("position", r.position.into()),
                                ("position_title", text(&r.position_title)),
                                ("institution", text(&r.institution)),
                                ("term_start", r.term_start.into()),
                                ("term_end", r.term_end.into()),
                                ("voting", Bool(r.voting)),
                                ("vacant", Bool(r.vacant)),
                                ("vacancy_reason", text(&r.vacancy_reason)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "attendance",
                List(
                    self.attendance
                        .iter()
                        .map(|a| {
                            Object(vec![
                                ("member", text(&a.member)),
                                ("status", a.status.into()),
                                ("substitute_name", text(&a.substitute_name)),
                            ])
                        })
                        .collect(),
                ),
            ),
            ("deputy_chair", text(&self.deputy_chair)),
            (
                "quorum",
                self.quorum.as_ref().map_or(Null, |q| {
                    Object(vec![
                        ("met", Bool(q.met)),
                        ("voting_members", Int(q.voting_members.into())),
                        ("voting_present", Int(q.voting_present.into())),
                        ("required", Int(q.required.into())),
                        ("chair_present", Bool(q.chair_present)),
                        ("deputy_present", Bool(q.deputy_present)),
                        ("explanation", text(&q.explanation)),
                    ])
                }),
            ),
            (
                "resolutions",
                List(
                    self.resolutions
                        .iter()
                        .map(|r| {
                            Object(vec![
                                ("name", text(&r.name)),
                                ("meeting", text(&r.meeting)),
                                ("number", Int(r.number.into())),
                                ("text", text(&r.text)),
                                ("responsible_member", text(&r.responsible_member)),
                                ("responsible_body", text(&r.responsible_body)),
                                ("deadline", r.deadline.into()),
                                (
                                    "votes",
                                    List(
                                        r.votes
                                            .iter()
                                            .map(|(member, vote)| {
                                                Object(vec![
                                                    ("member", text(member)),
                                                    ("vote", (*vote).into()),
                                                ])
                                            })
                                            .collect(),
                                    ),
                                ),
                                ("votes_for", Int(r.votes_for.into())),
                                ("votes_against", Int(r.votes_against.into())),
                                ("abstentions", Int(r.abstentions.into())),
                                ("adopted", Bool(r.adopted)),
                            ])
                        })
                        .collect(),
                ),
            ),
            ("discussion", text(&self.discussion)),
        ]
    }
}

/// The identifier of version 3's form.
pub const FORM_V3: &str = "mosharekat.meeting.minutes.v3";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecusalEntry {
    pub agenda_item: i32,
    pub member: String,
    pub automatic: bool,
    pub reason: String,
    pub declare_time: Option<Time>,
}

/// What version 3 covers: version 2's content, each item's subject institution, each
/// resolution's agenda item, and the recusals (see the module's comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinutesContentV3 {
    pub v2: MinutesContent,
    /// One per agenda item, in order.
    pub subject_institutions: Vec<String>,
    /// One per resolution, in order.
    pub resolution_items: Vec<i32>,
    pub recusals: Vec<RecusalEntry>,
}

impl MinutesContentV3 {
    pub fn of(m: &pb::Meeting) -> Result<Self, NoCanonicalForm> {
        Ok(Self {
            v2: MinutesContent::of(m)?,
            subject_institutions: m
                .agenda
                .iter()
                .map(|a| a.subject_institution.clone())
                .collect(),
            resolution_items: m.resolutions.iter().map(|r| r.agenda_item).collect(),
            recusals: m
                .recusals
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    Ok(RecusalEntry {
                        agenda_item: r.agenda_item,
                        member: r.member.clone(),
                        automatic: r.automatic,
                        reason: r.reason.clone(),
                        declare_time: Time::of(
                            &r.declare_time,
                            &format!("recusals[{i}].declare_time"),
                        )?,
                    })
                })
                .collect::<Result<_, NoCanonicalForm>>()?,
        })
    }

    pub fn canonical_json(&self) -> String {
        let mut out = String::new();
        self.to_json().write(&mut out);
        out
    }

    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_json().as_bytes()))
    }

    fn to_json(&self) -> Json {
        use Json::*;
        let mut members = self.v2.members();
        for (k, v) in members.iter_mut() {
            match (*k, v) {
                ("form", v) => *v = text(FORM_V3),
                ("agenda", List(items)) => {
                    for (item, si) in items.iter_mut().zip(&self.subject_institutions) {
                        if let Object(fields) = item {
                            fields.push(("subject_institution", text(si)));
                        }
                    }
                }
                ("resolutions", List(items)) => {
                    for (item, n) in items.iter_mut().zip(&self.resolution_items) {
                        if let Object(fields) = item {
                            fields.push(("agenda_item", Int((*n).into())));
                        }
                    }
                }
                _ => {}
            }
        }
        members.push((
            "recusals",
            List(
                self.recusals
                    .iter()
                    .map(|r| {
                        Object(vec![
                            ("agenda_item", Int(r.agenda_item.into())),
                            ("member", text(&r.member)),
                            ("automatic", Bool(r.automatic)),
                            ("reason", text(&r.reason)),
                            ("declare_time", r.declare_time.into()),
                        ])
                    })
                    .collect(),
            ),
        ));
        Object(members)
    }
}

/// The values the form holds; objects are sorted when written, not when built.
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Json>),
    Object(Vec<(&'static str, Json)>),
}

fn text(s: &str) -> Json {
    Json::Str(s.to_owned())
}

impl From<Named> for Json {
    fn from(n: Named) -> Self {
        match n {
            Named::Name(s) => Json::Str(s.to_owned()),
            Named::Unnamed(v) => Json::Int(v.into()),
        }
    }
}

impl From<Option<Time>> for Json {
    fn from(t: Option<Time>) -> Self {
        t.map_or(Json::Null, |t| Json::Str(t.rfc3339()))
    }
}

impl Json {
    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Str(s) => write_string(s, out),
            Json::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                let mut sorted: Vec<&(&str, Json)> = members.iter().collect();
                sorted.sort_by_key(|(k, _)| *k);
                out.push('{');
                for (i, (k, v)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(k, out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::{AttendanceStatus as A, Seat, Vote};

    fn at(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos })
    }

    /// Minutes with a value of every kind the form writes: Persian text with a ZWNJ,
    /// characters that need escaping, times with nanoseconds, each enum, an absent time,
    /// and an enum number no table names.
    fn fixture() -> pb::Meeting {
        let wg = "working-groups/0190f5c2-7a1e-7000-8000-000000000001";
        let member = |n: u32| format!("{wg}/members/m{n}");
        pb::Meeting {
            name: format!("{wg}/meetings/1"),
            number: 1,
            title: "نخستین جلسهٔ کارگروه".into(),
            scheduled_time: at(1_742_464_800, 0),
            place: "دادگستری استان اردبیل".into(),
            state: pb::MeetingState::Closed as i32,
            agenda: vec![pb::AgendaItem {
                title: "گزارش \"دبیرخانه\"".into(),
                description: "بند یک\nبند دو\t/ \\ \u{1}".into(),
                subject: "institutions/i1".into(),
                standing_report: true,
                figures: vec![pb::StatisticFigure {
                    label: "ارجاع‌ها".into(),
                    value: "۱۲".into(),
                }],
                subject_institution: String::new(),
            }],
            agenda_final: true,
            attendance: vec![
                pb::Attendance {
                    member: member(0),
                    status: A::Present as i32,
                    substitute_name: String::new(),
                },
                pb::Attendance {
                    member: member(1),
                    status: A::Represented as i32,
                    substitute_name: "رضا کریمی".into(),
                },
                pb::Attendance {
                    member: member(2),
                    status: 9,
                    substitute_name: String::new(),
                },
            ],
            deputy_chair: String::new(),
            quorum: Some(pb::Quorum {
                met: true,
                voting_members: 2,
                voting_present: 2,
                required: 2,
                chair_present: true,
                deputy_present: false,
                explanation: "2 of 2 voting members present".into(),
            }),
            resolutions: vec![pb::Resolution {
                name: format!("{wg}/resolutions/r1"),
                meeting: format!("{wg}/meetings/1"),
                number: 1,
                text: "ایجاد سامانهٔ ارجاع".into(),
                responsible_member: member(1),
                responsible_body: String::new(),
                deadline: at(1_750_000_000, 123_456_789),
                votes: vec![
                    pb::CastVote {
                        member: member(0),
                        vote: Vote::For as i32,
                    },
                    pb::CastVote {
                        member: member(1),
                        vote: Vote::Abstain as i32,
                    },
                ],
                votes_for: 1,
                votes_against: 0,
                abstentions: 1,
                adopted: false,
                // Follow-up: not part of the minutes.
                state: pb::ResolutionState::Done as i32,
                progress: 100,
                overdue: true,
                etag: "4".into(),
                legal_deadline: None,
                notes: vec![pb::ProgressNote {
                    progress: 100,
                    ..Default::default()
                }],
                agenda_item: 0,
                display_number: String::new(),
                extract_send_time: None,
            }],
            discussion: "گزارش دبیر".into(),
            start_time: at(1_742_465_000, 500_000),
            close_time: at(1_742_472_000, 0),
            content_sha256: "ab".repeat(32),
            state_reason: String::new(),
            recusals: vec![],
            review: None,
            signatures: vec![],
            etag: "7".into(),
            roster: vec![
                pb::Member {
                    name: member(0),
                    full_name: "علی رضایی".into(),
                    seat: Seat::Chair as i32,
                    position: pb::Position::SocialPreventionDeputy as i32,
                    position_title: "معاون اجتماعی".into(),
                    term_start: at(1_700_000_000, 0),
                    voting: true,
                    ..Default::default()
                },
                pb::Member {
                    name: member(1),
                    full_name: "مریم احمدی".into(),
                    seat: Seat::InstitutionRepresentative as i32,
                    position: pb::Position::InstitutionRepresentative as i32,
                    institution: "institutions/i1".into(),
                    term_end: at(-2_208_988_800, 0),
                    voting: true,
                    vacant: true,
                    vacancy_reason: "تعلیق پروانه".into(),
                    ..Default::default()
                },
            ],
            minutes_hash_version: 2,
        }
    }

    /// The golden vector of version 2. If this fails, the form has changed: approved
    /// minutes would stop verifying. Define a version 3 instead of editing these.
    #[test]
    fn golden_vector() {
        let c = MinutesContent::of(&fixture()).unwrap();
        let expected = concat!(
            r#"{"agenda":[{"description":"بند یک\nبند دو\t/ \\ \u0001","figures":[{"label":"ارجاع‌ها","value":"۱۲"}],"standing_report":true,"subject":"institutions/i1","title":"گزارش \"دبیرخانه\""}],"#,
            r#""agenda_final":true,"#,
            r#""attendance":[{"member":"working-groups/0190f5c2-7a1e-7000-8000-000000000001/members/m0","status":"ATTENDANCE_STATUS_PRESENT","substitute_name":""},{"member":"working-groups/0190f5c2-7a1e-7000-8000-000000000001/members/m1","status":"ATTENDANCE_STATUS_REPRESENTED","substitute_name":"رضا کریمی"},{"member":"working-groups/0190f5c2-7a1e-7000-8000-000000000001/members/m2","status":9,"substitute_name":""}],"#,
            r#""close_time":"2025-03-20T12:00:00.000000000Z","#,
            r#""deputy_chair":"","#,
            r#""discussion":"گزارش دبیر","#,
            r#""form":"mosharekat.meeting.minutes.v2","#,
            r#""name":"working-groups/0190f5c2-7a1e-7000-8000-000000000001/meetings/1","#,
            r#""number":1,"#,
            r#""place":"دادگستری استان اردبیل","#,
            r#""quorum":{"chair_present":true,"deputy_present":false,"explanation":"2 of 2 voting members present","met":true,"required":2,"voting_members":2,"voting_present":2},"#,
            r#""resolutions":[{"abstentions":1,"adopted":false,"deadline":"2025-06-15T15:06:40.123456789Z","meeting":"working-groups/0190f5c2-7a1e-7000-8000-000000000001/meetings/1","name":"working-groups/0190f5c2-7a1e-7000-8000-000000000001/resolutions/r1","number":1,"responsible_body":"","responsible_member":"working-groups/0190f5c2-7a1e-7000-8000-000000000001/members/m1","text":"ایجاد سامانهٔ ارجاع","votes":[{"member":"working-groups/0190f5c2-7a1e-7000-8000-000000000001/members/m0","vote":"VOTE_FOR"},{"member":"working-groups/0190f5c2-7a1e-7000-8000-000000000001/members/m1","vote":"VOTE_ABSTAIN"}],"votes_against":0,"votes_for":1}],"#,
            r#""roster":[{"full_name":"علی رضایی","institution":"","name":"working-groups/0190f5c2-7a1e-7000-8000-000000000001/members/m0","position":"POSITION_SOCIAL_PREVENTION_DEPUTY","position_title":"معاون اجتماعی","seat":"SEAT_CHAIR","term_end":null,"term_start":"2023-11-14T22:13:20.000000000Z","vacancy_reason":"","vacant":false,"voting":true},{"full_name":"مریم احمدی","institution":"institutions/i1","name":"working-groups/0190f5c2-7a1e-7000-8000-000000000001/members/m1","position":"POSITION_INSTITUTION_REPRESENTATIVE","position_title":"","seat":"SEAT_INSTITUTION_REPRESENTATIVE","term_end":"1900-01-01T00:00:00.000000000Z","term_start":null,"vacancy_reason":"تعلیق پروانه","vacant":true,"voting":true}],"#,
            r#""scheduled_time":"2025-03-20T10:00:00.000000000Z","#,
            r#""start_time":"2025-03-20T10:03:20.000500000Z","#,
            r#""state":"MEETING_STATE_CLOSED","#,
            r#""state_reason":"","#,
            r#""title":"نخستین جلسهٔ کارگروه"}"#,
        );
        assert_eq!(c.canonical_json(), expected);
        assert_eq!(
            c.sha256(),
            "05296a72e0c94f960a9f2f74bdf62d623e82d1f2ea32a11f565db855f86c4d75"
        );
        assert_eq!(
            MinutesHashVersion::V2CanonicalJson.sha256(&fixture()),
            Ok(c.sha256())
        );
    }

    /// Version 1 is frozen: the value the previous code pinned for these minutes (and the
    /// field added since does not enter it).
    #[test]
    fn version_1_is_unchanged() {
        let mut m = pb::Meeting {
            name: "working-groups/w/meetings/1".into(),
            title: "نخستین جلسه".into(),
            ..Default::default()
        };
        for (n, status, substitute) in [
            (0, A::Present, ""),
            (1, A::Present, ""),
            (2, A::Represented, "جانشین"),
        ] {
            m.attendance.push(pb::Attendance {
                member: format!("m{n}"),
                status: status as i32,
                substitute_name: substitute.into(),
            });
        }
        let v1 = MinutesHashVersion::V1ProstEncoding;
        let pinned = "b512dd6bb2d56b45aadde4669a80c22d512623d846a35b22787e6dc4f8115518";
        assert_eq!(v1.sha256(&m).unwrap(), pinned);
        m.minutes_hash_version = 1;
        m.etag = "3".into();
        assert_eq!(v1.sha256(&m).unwrap(), pinned);
        // And of a full record, with a roster and resolutions.
        assert_eq!(
            v1.sha256(&fixture()).unwrap(),
            "da022f2af136b5c267adfcad75c91a64a219a66100580b42b6f75341c39a1703"
        );
    }

    #[test]
    fn versions_are_numbered_as_stored() {
        use MinutesHashVersion as V;
        assert_eq!(V::CURRENT, V::V3WithRecusals);
        for v in [V::V1ProstEncoding, V::V2CanonicalJson, V::V3WithRecusals] {
            assert_eq!(V::from_number(v.number()), Some(v));
        }
        assert_eq!(
            (
                V::V1ProstEncoding.number(),
                V::V2CanonicalJson.number(),
                V::V3WithRecusals.number()
            ),
            (1, 2, 3)
        );
        assert_eq!(V::from_number(0), None);
        assert_eq!(V::from_number(4), None);
        // The two forms of the same minutes differ.
        let m = fixture();
        assert_ne!(
            V::V1ProstEncoding.sha256(&m).unwrap(),
            V::V2CanonicalJson.sha256(&m).unwrap()
        );
    }

    /// Version 3 is version 2's document with the recusals, each item's subject
    /// institution and each resolution's item; the review and the signatures are outside
    /// every version, so signing approved minutes leaves their hash as it was.
    #[test]
    fn version_3_covers_the_recusals_not_the_review_or_signatures() {
        use MinutesHashVersion as V;
        let m = fixture();
        let v2 = V::V2CanonicalJson.sha256(&m).unwrap();
        let v3 = V::V3WithRecusals.sha256(&m).unwrap();
        assert_ne!(v2, v3, "the form is named in the document");
        let text = MinutesContentV3::of(&m).unwrap().canonical_json();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["form"], FORM_V3);
        assert_eq!(doc["recusals"], serde_json::json!([]));
        assert_eq!(doc["resolutions"][0]["agenda_item"], 0);
        assert_eq!(doc["agenda"][0]["subject_institution"], "");
        // Everything version 2 says, version 3 says the same way.
        let two: serde_json::Value =
            serde_json::from_str(&MinutesContent::of(&m).unwrap().canonical_json()).unwrap();
        for (k, v) in two.as_object().unwrap() {
            if !["form", "agenda", "resolutions"].contains(&k.as_str()) {
                assert_eq!(&doc[k], v, "{k}");
            }
        }
        // A recusal changes version 3, not version 2.
        let mut recused = m.clone();
        recused.recusals.push(pb::Recusal {
            agenda_item: 1,
            member: "working-groups/x/members/m1".into(),
            automatic: true,
            reason: "نهاد متبوع".into(),
            declare_time: None,
        });
        recused.resolutions[0].agenda_item = 1;
        assert_ne!(V::V3WithRecusals.sha256(&recused).unwrap(), v3);
        assert_eq!(V::V2CanonicalJson.sha256(&recused).unwrap(), v2);
        // Review and signatures: no version covers them.
        let mut signed = m.clone();
        signed.review = Some(pb::MinutesReview {
            comments: vec![pb::MinutesComment {
                member: "m".into(),
                text: "اصلاح بند دو".into(),
                create_time: None,
            }],
            ..Default::default()
        });
        signed.signatures.push(pb::MinutesSignature {
            member: "m".into(),
            sign_time: at(1_742_480_000, 0),
            content_sha256: v3.clone(),
            minutes_hash_version: 3,
        });
        for v in [V::V1ProstEncoding, V::V2CanonicalJson, V::V3WithRecusals] {
            assert_eq!(v.sha256(&signed).unwrap(), v.sha256(&m).unwrap(), "{v:?}");
        }
    }

    /// Any JSON parser reads the text back to the same text: it is JSON, written compactly
    /// with sorted keys, escaped as serde_json (and JCS) escape.
    #[test]
    fn the_text_is_canonical_json() {
        let text = MinutesContent::of(&fixture()).unwrap().canonical_json();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), text);
        fn sorted(v: &serde_json::Value) -> bool {
            match v {
                serde_json::Value::Object(o) => {
                    o.keys().zip(o.keys().skip(1)).all(|(a, b)| a < b) && o.values().all(sorted)
                }
                serde_json::Value::Array(a) => a.iter().all(sorted),
                _ => true,
            }
        }
        assert!(sorted(&v));
        assert_eq!(
            v["agenda"][0]["description"],
            fixture().agenda[0].description.as_str()
        );
    }

    type Change = fn(&mut pb::Meeting);

    /// Every field of the minutes changes the hash; what changes on reads or after the
    /// meeting does not.
    #[test]
    fn the_hash_covers_the_minutes_and_nothing_else() {
        let h = |m: &pb::Meeting| MinutesContent::of(m).unwrap().sha256();
        let base = h(&fixture());
        let changes: Vec<(&str, Change)> = vec![
            ("name", |m| m.name.push('0')),
            ("number", |m| m.number = 2),
            ("title", |m| m.title.push('!')),
            ("place", |m| m.place.clear()),
            ("state", |m| m.state = pb::MeetingState::InSession as i32),
            ("state_reason", |m| m.state_reason = "x".into()),
            ("scheduled_time", |m| {
                m.scheduled_time = at(1_742_464_800, 1)
            }),
            ("start_time", |m| m.start_time = None),
            ("close_time", |m| m.close_time = at(1_742_472_001, 0)),
            ("agenda_final", |m| m.agenda_final = false),
            ("agenda.title", |m| m.agenda[0].title.clear()),
            ("agenda.description", |m| m.agenda[0].description.clear()),
            ("agenda.subject", |m| m.agenda[0].subject.clear()),
            ("agenda.standing_report", |m| {
                m.agenda[0].standing_report = false
            }),
            ("agenda.figures.label", |m| {
                m.agenda[0].figures[0].label.clear()
            }),
            ("agenda.figures.value", |m| {
                m.agenda[0].figures[0].value = "۱۳".into()
            }),
            ("agenda.figures", |m| m.agenda[0].figures.clear()),
            ("agenda", |m| m.agenda.push(pb::AgendaItem::default())),
            ("roster.name", |m| m.roster[0].name.push('0')),
            ("roster.full_name", |m| m.roster[0].full_name.clear()),
            ("roster.seat", |m| m.roster[0].seat = Seat::Official as i32),
            ("roster.position", |m| m.roster[0].position = 2),
            ("roster.position_title", |m| {
                m.roster[0].position_title.clear()
            }),
            ("roster.institution", |m| m.roster[1].institution.clear()),
            ("roster.term_start", |m| m.roster[0].term_start = None),
            ("roster.term_end", |m| m.roster[1].term_end = None),
            ("roster.voting", |m| m.roster[0].voting = false),
            ("roster.vacant", |m| m.roster[1].vacant = false),
            ("roster.vacancy_reason", |m| {
                m.roster[1].vacancy_reason.clear()
            }),
            ("roster order", |m| m.roster.reverse()),
            ("attendance.member", |m| m.attendance[0].member.push('0')),
            ("attendance.status", |m| {
                m.attendance[0].status = A::Absent as i32
            }),
            ("attendance.substitute_name", |m| {
                m.attendance[1].substitute_name.clear()
            }),
            ("attendance", |m| {
                m.attendance.pop();
            }),
            ("deputy_chair", |m| m.deputy_chair = "x".into()),
            ("quorum", |m| m.quorum = None),
            ("quorum.met", |m| m.quorum.as_mut().unwrap().met = false),
            ("quorum.voting_members", |m| {
                m.quorum.as_mut().unwrap().voting_members = 3
            }),
            ("quorum.voting_present", |m| {
                m.quorum.as_mut().unwrap().voting_present = 1
            }),
            ("quorum.required", |m| {
                m.quorum.as_mut().unwrap().required = 1
            }),
            ("quorum.chair_present", |m| {
                m.quorum.as_mut().unwrap().chair_present = false
            }),
            ("quorum.deputy_present", |m| {
                m.quorum.as_mut().unwrap().deputy_present = true
            }),
            ("quorum.explanation", |m| {
                m.quorum.as_mut().unwrap().explanation.clear()
            }),
            ("resolutions.name", |m| m.resolutions[0].name.push('0')),
            ("resolutions.meeting", |m| m.resolutions[0].meeting.clear()),
            ("resolutions.number", |m| m.resolutions[0].number = 2),
            ("resolutions.text", |m| m.resolutions[0].text.push('.')),
            ("resolutions.responsible_member", |m| {
                m.resolutions[0].responsible_member.clear()
            }),
            ("resolutions.responsible_body", |m| {
                m.resolutions[0].responsible_body = "x".into()
            }),
            ("resolutions.deadline", |m| m.resolutions[0].deadline = None),
            ("resolutions.votes.member", |m| {
                m.resolutions[0].votes[0].member.clear()
            }),
            ("resolutions.votes.vote", |m| {
                m.resolutions[0].votes[1].vote = Vote::Against as i32
            }),
            ("resolutions.votes", |m| {
                m.resolutions[0].votes.pop();
            }),
            ("resolutions.votes_for", |m| m.resolutions[0].votes_for = 2),
            ("resolutions.votes_against", |m| {
                m.resolutions[0].votes_against = 1
            }),
            ("resolutions.abstentions", |m| {
                m.resolutions[0].abstentions = 0
            }),
            ("resolutions.adopted", |m| m.resolutions[0].adopted = true),
            ("resolutions", |m| m.resolutions.clear()),
            ("discussion", |m| m.discussion.push(' ')),
            // Moving text between fields is a change too.
            ("title and place", |m| {
                m.title.push_str(&m.place);
                m.place.clear();
            }),
        ];
        for (what, change) in changes {
            let mut m = fixture();
            change(&mut m);
            assert_ne!(h(&m), base, "{what} is not covered");
        }
        let not_content: Vec<(&str, Change)> = vec![
            ("etag", |m| m.etag = "8".into()),
            ("content_sha256", |m| m.content_sha256.clear()),
            ("minutes_hash_version", |m| m.minutes_hash_version = 1),
            ("roster national code", |m| {
                m.roster[0].national_code = "0076229645".into()
            }),
            ("roster etag", |m| m.roster[0].etag = "2".into()),
            ("resolution state", |m| {
                m.resolutions[0].state = pb::ResolutionState::Open as i32
            }),
            ("resolution progress", |m| m.resolutions[0].progress = 10),
            ("resolution notes", |m| m.resolutions[0].notes.clear()),
            ("resolution overdue", |m| m.resolutions[0].overdue = false),
            ("resolution etag", |m| m.resolutions[0].etag.clear()),
        ];
        for (what, change) in not_content {
            let mut m = fixture();
            change(&mut m);
            assert_eq!(h(&m), base, "{what} is not content");
        }
    }

    #[test]
    fn times_outside_the_form_have_none() {
        assert!(Time::new(Time::MIN_SECONDS, 0).is_some());
        assert!(Time::new(Time::MIN_SECONDS - 1, 0).is_none());
        assert!(Time::new(Time::END_SECONDS - 1, 999_999_999).is_some());
        assert!(Time::new(Time::END_SECONDS, 0).is_none());
        assert!(Time::new(0, -1).is_none() && Time::new(0, 1_000_000_000).is_none());
        assert_eq!(
            Time::new(Time::MIN_SECONDS, 0).unwrap().rfc3339(),
            "0001-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            Time::new(Time::END_SECONDS - 1, 999_999_999)
                .unwrap()
                .rfc3339(),
            "9999-12-31T23:59:59.999999999Z"
        );
        let mut m = fixture();
        m.resolutions[0].deadline = at(0, 1_000_000_000);
        let e = MinutesHashVersion::CURRENT.sha256(&m).unwrap_err();
        assert_eq!(e.field, "resolutions[0].deadline");
        // Version 1 never needed a canonical time.
        assert!(MinutesHashVersion::V1ProstEncoding.sha256(&m).is_ok());
    }
}
