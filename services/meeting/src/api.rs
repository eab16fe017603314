//! The edge: API messages into domain types (errors name the field) and domain types into
//! API messages. Nothing below this module sees a protobuf type of the meeting API.

use mosharekat_api::meeting::v1 as pb;
use mosharekat_persian::NationalCode;
use mosharekat_platform::error::ApiError;

use crate::domain::{self as d, Time};
use crate::names::{GroupName, MeetingName, MemberName, ResolutionName};

pub fn timestamp(t: Time) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.seconds,
        nanos: t.nanos as i32,
    }
}

fn ts(t: &Option<Time>) -> Option<prost_types::Timestamp> {
    t.map(timestamp)
}

/// A time as sent; `None` when absent.
pub fn time(t: &Option<prost_types::Timestamp>, field: &str) -> Result<Option<Time>, ApiError> {
    t.as_ref()
        .map(|t| {
            Time::new(t.seconds, t.nanos)
                .ok_or_else(|| ApiError::invalid(field, "is not a valid time"))
        })
        .transpose()
}

macro_rules! enum_edge {
    ($pb:ident <-> $d:ident, $what:literal { $($v:ident),* $(,)? }) => {
        impl From<d::$d> for pb::$pb {
            fn from(v: d::$d) -> Self {
                match v { $(d::$d::$v => pb::$pb::$v),* }
            }
        }
        impl From<d::$d> for i32 {
            fn from(v: d::$d) -> Self {
                pb::$pb::from(v) as i32
            }
        }
        impl d::$d {
            /// The value an API message carries in `field`; unspecified or unknown is
            /// INVALID_ARGUMENT naming it.
            pub fn from_api(n: i32, field: &str) -> Result<Self, ApiError> {
                match pb::$pb::try_from(n) {
                    $(Ok(pb::$pb::$v) => Ok(d::$d::$v),)*
                    _ => Err(ApiError::invalid(field, concat!("must be ", $what))),
                }
            }
        }
    };
}

enum_edge!(Seat <-> Seat, "CHAIR, OFFICIAL, INSTITUTION_REPRESENTATIVE or SECRETARY" {
    Chair, Official, InstitutionRepresentative, Secretary
});
enum_edge!(Position <-> Position, "a known position" {
    SocialPreventionDeputy, ChiefInspector, ProsecutorDeputy, PrisonsDirectorGeneral,
    DisputeResolutionHead, PopularParticipationDirector, InstitutionRepresentative, Secretariat
});
enum_edge!(MeetingState <-> MeetingState, "a known meeting state" {
    Scheduled, Postponed, Cancelled, InSession, Closed
});
enum_edge!(AttendanceStatus <-> AttendanceStatus, "PRESENT, ABSENT, EXCUSED or REPRESENTED" {
    Present, Absent, Excused, Represented
});
enum_edge!(Vote <-> Vote, "FOR, AGAINST or ABSTAIN" { For, Against, Abstain });
enum_edge!(ResolutionState <-> ResolutionState, "a known resolution state" {
    NotAdopted, Open, InProgress, Done, Cancelled
});

// ---------- domain → API ----------

impl From<&d::Group> for pb::WorkingGroup {
    fn from(g: &d::Group) -> Self {
        Self {
            name: g.name.to_string(),
            province: g.province.clone(),
            title: g.title.clone(),
            founding_time: ts(&g.founding_time),
            create_time: ts(&g.create_time),
            update_time: ts(&g.update_time),
            etag: String::new(),
        }
    }
}

impl From<&d::Member> for pb::Member {
    fn from(m: &d::Member) -> Self {
        Self {
            name: m.name.to_string(),
            full_name: m.full_name.clone(),
            national_code: m
                .national_code
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
            seat: m.seat.into(),
            position: m.position.into(),
            position_title: m.position_title.clone(),
            institution: m.institution.clone(),
            term_start: ts(&m.term_start),
            term_end: ts(&m.term_end),
            voting: m.voting,
            vacant: m.vacant,
            vacancy_reason: m.vacancy_reason.clone(),
            etag: String::new(),
        }
    }
}

impl From<&d::AgendaItem> for pb::AgendaItem {
    fn from(a: &d::AgendaItem) -> Self {
        Self {
            title: a.title.clone(),
            description: a.description.clone(),
            subject: a.subject.clone(),
            standing_report: a.standing_report,
            figures: a
                .figures
                .iter()
                .map(|f| pb::StatisticFigure {
                    label: f.label.clone(),
                    value: f.value.clone(),
                })
                .collect(),
        }
    }
}

impl From<&d::Attendance> for pb::Attendance {
    fn from(a: &d::Attendance) -> Self {
        Self {
            member: a.member.clone(),
            status: a.status.into(),
            substitute_name: a.substitute_name.clone(),
        }
    }
}

impl From<&d::Quorum> for pb::Quorum {
    fn from(q: &d::Quorum) -> Self {
        Self {
            met: q.met,
            voting_members: q.voting_members,
            voting_present: q.voting_present,
            required: q.required,
            chair_present: q.chair_present,
            deputy_present: q.deputy_present,
            explanation: q.explanation.clone(),
        }
    }
}

impl From<&d::Resolution> for pb::Resolution {
    fn from(r: &d::Resolution) -> Self {
        Self {
            name: r.name.to_string(),
            meeting: r.meeting.clone(),
            number: r.number,
            text: r.text.clone(),
            responsible_member: r.responsible_member.clone(),
            responsible_body: r.responsible_body.clone(),
            deadline: ts(&r.deadline),
            votes: r
                .votes
                .iter()
                .map(|v| pb::CastVote {
                    member: v.member.clone(),
                    vote: v.vote.into(),
                })
                .collect(),
            votes_for: r.votes_for,
            votes_against: r.votes_against,
            abstentions: r.abstentions,
            adopted: r.adopted,
            state: r.state.into(),
            progress: r.progress,
            notes: r
                .notes
                .iter()
                .map(|n| pb::ProgressNote {
                    time: ts(&n.time),
                    progress: n.progress,
                    note: n.note.clone(),
                    reported_by: n.reported_by.clone(),
                })
                .collect(),
            overdue: false,
            etag: String::new(),
        }
    }
}

impl From<&d::Meeting> for pb::Meeting {
    fn from(m: &d::Meeting) -> Self {
        Self {
            name: m.name.to_string(),
            number: m.name.number(),
            title: m.title.clone(),
            scheduled_time: ts(&m.scheduled_time),
            place: m.place.clone(),
            state: m.state.into(),
            agenda: m.agenda.iter().map(Into::into).collect(),
            agenda_final: m.agenda_final,
            attendance: m.attendance.iter().map(Into::into).collect(),
            deputy_chair: m.deputy_chair.clone(),
            quorum: m.quorum.as_ref().map(Into::into),
            resolutions: m.resolutions.iter().map(Into::into).collect(),
            discussion: m.discussion.clone(),
            start_time: ts(&m.start_time),
            close_time: ts(&m.close_time),
            content_sha256: m.content_sha256.clone(),
            state_reason: m.state_reason.clone(),
            etag: String::new(),
            roster: m.roster.iter().map(Into::into).collect(),
            minutes_hash_version: 0,
        }
    }
}

// ---------- whole resources, API → domain ----------
//
// A whole resource as the API (and the release before this storage) wrote it, each
// error naming its field under `at`.

fn join(at: &str, field: &str) -> String {
    if at.is_empty() {
        field.to_owned()
    } else {
        format!("{at}.{field}")
    }
}

pub fn group_from(g: &pb::WorkingGroup, at: &str) -> Result<d::Group, ApiError> {
    Ok(d::Group {
        name: GroupName::parse(&g.name, &join(at, "name"))?,
        province: g.province.clone(),
        title: g.title.clone(),
        founding_time: time(&g.founding_time, &join(at, "founding_time"))?,
        create_time: time(&g.create_time, &join(at, "create_time"))?,
        update_time: time(&g.update_time, &join(at, "update_time"))?,
    })
}

pub fn member_from(m: &pb::Member, at: &str) -> Result<d::Member, ApiError> {
    let f = |x: &str| join(at, x);
    Ok(d::Member {
        name: MemberName::parse(&m.name, &f("name"))?,
        full_name: m.full_name.clone(),
        national_code: if m.national_code.is_empty() {
            None
        } else {
            Some(
                NationalCode::parse(&m.national_code)
                    .map_err(|e| ApiError::invalid(f("national_code"), e.to_string()))?,
            )
        },
        seat: d::Seat::from_api(m.seat, &f("seat"))?,
        position: d::Position::from_api(m.position, &f("position"))?,
        position_title: m.position_title.clone(),
        institution: m.institution.clone(),
        term_start: time(&m.term_start, &f("term_start"))?,
        term_end: time(&m.term_end, &f("term_end"))?,
        voting: m.voting,
        vacant: m.vacant,
        vacancy_reason: m.vacancy_reason.clone(),
    })
}

pub fn resolution_from(r: &pb::Resolution, at: &str) -> Result<d::Resolution, ApiError> {
    let f = |x: &str| join(at, x);
    Ok(d::Resolution {
        name: ResolutionName::parse(&r.name, &f("name"))?,
        meeting: r.meeting.clone(),
        number: r.number,
        text: r.text.clone(),
        responsible_member: r.responsible_member.clone(),
        responsible_body: r.responsible_body.clone(),
        deadline: time(&r.deadline, &f("deadline"))?,
        votes: r
            .votes
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Ok(d::CastVote {
                    member: v.member.clone(),
                    vote: d::Vote::from_api(v.vote, &f(&format!("votes[{i}].vote")))?,
                })
            })
            .collect::<Result<_, ApiError>>()?,
        votes_for: r.votes_for,
        votes_against: r.votes_against,
        abstentions: r.abstentions,
        adopted: r.adopted,
        state: d::ResolutionState::from_api(r.state, &f("state"))?,
        progress: r.progress,
        notes: r
            .notes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                Ok(d::ProgressNote {
                    time: time(&n.time, &f(&format!("notes[{i}].time")))?,
                    progress: n.progress,
                    note: n.note.clone(),
                    reported_by: n.reported_by.clone(),
                })
            })
            .collect::<Result<_, ApiError>>()?,
    })
}

pub fn meeting_from(m: &pb::Meeting, at: &str) -> Result<d::Meeting, ApiError> {
    let f = |x: &str| join(at, x);
    Ok(d::Meeting {
        name: MeetingName::parse(&m.name, &f("name"))?,
        title: m.title.clone(),
        scheduled_time: time(&m.scheduled_time, &f("scheduled_time"))?,
        place: m.place.clone(),
        state: d::MeetingState::from_api(m.state, &f("state"))?,
        state_reason: m.state_reason.clone(),
        agenda: m
            .agenda
            .iter()
            .map(|a| d::AgendaItem {
                title: a.title.clone(),
                description: a.description.clone(),
                subject: a.subject.clone(),
                standing_report: a.standing_report,
                figures: a
                    .figures
                    .iter()
                    .map(|x| d::Figure {
                        label: x.label.clone(),
                        value: x.value.clone(),
                    })
                    .collect(),
            })
            .collect(),
        agenda_final: m.agenda_final,
        attendance: m
            .attendance
            .iter()
            .enumerate()
            .map(|(i, a)| {
                Ok(d::Attendance {
                    member: a.member.clone(),
                    status: d::AttendanceStatus::from_api(
                        a.status,
                        &f(&format!("attendance[{i}].status")),
                    )?,
                    substitute_name: a.substitute_name.clone(),
                })
            })
            .collect::<Result<_, ApiError>>()?,
        deputy_chair: m.deputy_chair.clone(),
        quorum: m.quorum.as_ref().map(|q| d::Quorum {
            met: q.met,
            voting_members: q.voting_members,
            voting_present: q.voting_present,
            required: q.required,
            chair_present: q.chair_present,
            deputy_present: q.deputy_present,
            explanation: q.explanation.clone(),
        }),
        resolutions: m
            .resolutions
            .iter()
            .enumerate()
            .map(|(i, r)| resolution_from(r, &f(&format!("resolutions[{i}]"))))
            .collect::<Result<_, ApiError>>()?,
        discussion: m.discussion.clone(),
        start_time: time(&m.start_time, &f("start_time"))?,
        close_time: time(&m.close_time, &f("close_time"))?,
        content_sha256: m.content_sha256.clone(),
        roster: m
            .roster
            .iter()
            .enumerate()
            .map(|(i, r)| member_from(r, &f(&format!("roster[{i}]"))))
            .collect::<Result<_, ApiError>>()?,
    })
}
