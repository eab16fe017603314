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
            // As stored: 0 names the default.
            minutes_comment_days: g.minutes_comment_days.unwrap_or(0) as i32,
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
            subject_institution: a.subject_institution.clone(),
        }
    }
}

impl From<&d::Recusal> for pb::Recusal {
    fn from(r: &d::Recusal) -> Self {
        Self {
            agenda_item: r.agenda_item as i32,
            member: r.member.clone(),
            automatic: r.automatic,
            reason: r.reason.clone(),
            declare_time: ts(&r.declare_time),
        }
    }
}

impl From<&d::MinutesReview> for pb::MinutesReview {
    fn from(r: &d::MinutesReview) -> Self {
        Self {
            state: match r.state {
                d::ReviewState::Open => pb::MinutesReviewState::Open,
                d::ReviewState::Closed => pb::MinutesReviewState::Closed,
            } as i32,
            open_time: ts(&r.open_time),
            window: Some((&r.window).into()),
            close_time: ts(&r.close_time),
            comments: r
                .comments
                .iter()
                .map(|c| pb::MinutesComment {
                    member: c.member.clone(),
                    text: c.text.clone(),
                    create_time: ts(&c.create_time),
                })
                .collect(),
            draft_discussion: r.draft_discussion.clone(),
        }
    }
}

impl From<&d::Signature> for pb::MinutesSignature {
    fn from(s: &d::Signature) -> Self {
        Self {
            member: s.member.clone(),
            sign_time: ts(&s.sign_time),
            content_sha256: s.content_sha256.clone(),
            minutes_hash_version: s.minutes_hash_version,
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
            legal_deadline: r.legal_deadline.as_ref().map(Into::into),
            agenda_item: r.agenda_item as i32,
            display_number: r.display_number(),
            extract_send_time: ts(&r.extract_send_time),
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
            recusals: m.recusals.iter().map(Into::into).collect(),
            review: m.review.as_ref().map(Into::into),
            signatures: m.signatures.iter().map(Into::into).collect(),
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
        minutes_comment_days: None,
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
        // Records of that release had no calendar deadline: they keep the one stored.
        legal_deadline: None,
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
        // That release had neither.
        agenda_item: 0,
        extract_send_time: None,
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
                subject_institution: String::new(),
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
        // Its own column, not the message's.
        minutes_hash_version: None,
        // The releases this reads had no recusals, review or signatures.
        recusals: Vec::new(),
        review: None,
        signatures: Vec::new(),
    })
}

macro_rules! try_from_message {
    ($($pb:ident => $d:ident by $f:ident),*) => {$(
        impl TryFrom<&pb::$pb> for d::$d {
            type Error = ApiError;
            fn try_from(m: &pb::$pb) -> Result<Self, ApiError> {
                $f(m, "")
            }
        }
    )*};
}
try_from_message!(
    WorkingGroup => Group by group_from,
    Member => Member by member_from,
    Meeting => Meeting by meeting_from,
    Resolution => Resolution by resolution_from
);

// ---------- the service: request → domain → use case → response ----------

use mosharekat_api::meeting::v1::meeting_service_server::MeetingService;
use mosharekat_persian::{normalize_name, normalize_text};
use mosharekat_platform::auth::Role;
use mosharekat_platform::change::Versioned;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::from_timestamp;
use mosharekat_platform::error::Violations;
use mosharekat_platform::{idempotency, pagination};
use tonic::{Request, Response, Status};

use crate::app::{
    CreateRequest, GroupChange, MeetingView, Meetings, NewGroup, NewMeeting, NewMember,
    NewResolution, ResolutionView,
};
use crate::names::valid_id;
use crate::rules::MeetingAction;

pub const MANAGERS: &[Role] = &[Role::Admin, Role::Secretary];
pub const READERS: &[Role] = &[
    Role::Admin,
    Role::Secretary,
    Role::Member,
    Role::Auditor,
    Role::Service,
];
/// Who reports a resolution's progress (a member only on their own, see the use case);
/// who declares a conflict of interest (a member only for themself).
pub const REPORTERS: &[Role] = &[Role::Admin, Role::Secretary, Role::Member];
/// Who comments on draft minutes and signs approved ones: members, each for themself.
pub const COMMENTERS: &[Role] = &[Role::Member];

/// The calling member's id (from their token).
fn own_member(ctx: &CallContext) -> Result<String, ApiError> {
    ctx.principal
        .member
        .clone()
        .filter(|m| valid_id(m))
        .ok_or_else(|| ApiError::PermissionDenied("the token names no member".into()))
}

/// The caller, checked against the roles the RPC admits: the one role check of each RPC.
fn caller<T>(request: &Request<T>, roles: &[Role]) -> Result<CallContext, ApiError> {
    let ctx = CallContext::from_request(request)?;
    ctx.require(roles)?;
    Ok(ctx)
}

fn sees_personal_data(ctx: &CallContext) -> bool {
    matches!(ctx.role(), Role::Admin | Role::Secretary | Role::Auditor)
}

fn group_out(g: &Versioned<d::Group>) -> pb::WorkingGroup {
    pb::WorkingGroup {
        etag: g.etag(),
        ..(&g.value).into()
    }
}

fn member_out(ctx: &CallContext, m: &Versioned<d::Member>) -> pb::Member {
    let mut out = pb::Member::from(&m.value);
    out.etag = m.etag();
    if !sees_personal_data(ctx) {
        out.national_code = mosharekat_persian::mask(&out.national_code);
    }
    out
}

fn resolution_out(r: &ResolutionView) -> pb::Resolution {
    pb::Resolution {
        etag: r.version.map(|v| v.to_string()).unwrap_or_default(),
        overdue: r.overdue,
        ..(&r.resolution).into()
    }
}

fn meeting_out(v: &MeetingView) -> pb::Meeting {
    pb::Meeting {
        etag: v.version.to_string(),
        resolutions: v.resolutions.iter().map(resolution_out).collect(),
        minutes_hash_version: v.meeting.minutes_hash_version.unwrap_or(0),
        ..(&v.meeting).into()
    }
}

/// A time sent in a request, in the range people use (years 1900 to 2200).
fn checked_time(
    t: &Option<prost_types::Timestamp>,
    field: &str,
    v: &mut Violations,
) -> Option<Time> {
    let t = t.as_ref()?;
    match from_timestamp(t).and(Time::new(t.seconds, t.nanos)) {
        Some(x) => Some(x),
        None => {
            v.add(field, "must be a time between 1900 and 2200");
            None
        }
    }
}

/// The minutes' comment window a group asks for: 0 is the default; 1 to 30 days.
fn comment_days(n: i32, v: &mut Violations) -> Option<u32> {
    match n {
        0 => None,
        1..=30 => Some(n as u32),
        _ => {
            v.add(
                "working_group.minutes_comment_days",
                "must be from 1 to 30 days (0: the default, 3)",
            );
            None
        }
    }
}

fn required_reason(raw: &str, field: &str) -> Result<String, ApiError> {
    let r = normalize_text(raw, 2000).map_err(|e| ApiError::invalid(field, e.to_string()))?;
    if r.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    Ok(r)
}

fn request_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        Ok(())
    } else {
        idempotency::validate_request_id(id, "request_id")
    }
}

/// An agenda as sent: titles and texts normalised, pointers well formed (their existence
/// is the use case's to check, with the services that own them).
fn agenda(items: &[pb::AgendaItem]) -> Result<Vec<d::AgendaItem>, ApiError> {
    let mut v = Violations::new();
    let mut out = Vec::with_capacity(items.len());
    if items.len() > 100 {
        v.add("items", "must be at most 100");
    }
    for (i, it) in items.iter().enumerate() {
        let title = v
            .check(format!("items[{i}].title"), normalize_name(&it.title, 300))
            .unwrap_or_default();
        let description = v
            .check(
                format!("items[{i}].description"),
                normalize_text(&it.description, 5000),
            )
            .unwrap_or_default();
        let subject = it.subject.trim().to_owned();
        let well_formed = subject.is_empty()
            || ["institutions/", "filings/", "referrals/"]
                .iter()
                .any(|p| subject.strip_prefix(p).is_some_and(valid_id));
        if !well_formed {
            v.add(
                format!("items[{i}].subject"),
                "must be institutions/{id}, filings/{id} or referrals/{id}",
            );
        }
        out.push(d::AgendaItem {
            title,
            description,
            subject,
            standing_report: it.standing_report,
            figures: Vec::new(),
            subject_institution: String::new(),
        });
    }
    v.into_result()?;
    Ok(out)
}

fn new_member(src: &pb::Member) -> Result<NewMember, ApiError> {
    let mut v = Violations::new();
    let full_name = v
        .check("member.full_name", normalize_name(&src.full_name, 200))
        .unwrap_or_default();
    let national_code = v.check(
        "member.national_code",
        NationalCode::parse(&src.national_code),
    );
    let seat = d::Seat::from_api(src.seat, "member.seat")
        .map_err(|_| {
            v.add(
                "member.seat",
                "must be CHAIR, OFFICIAL, INSTITUTION_REPRESENTATIVE or SECRETARY",
            )
        })
        .ok();
    let position = match (seat, pb::Position::try_from(src.position)) {
        (None, _) => None,
        (Some(d::Seat::Chair), _) => Some(d::Position::SocialPreventionDeputy),
        (Some(d::Seat::InstitutionRepresentative), _) => {
            Some(d::Position::InstitutionRepresentative)
        }
        (Some(d::Seat::Secretary), _) => Some(d::Position::Secretariat),
        (
            _,
            Ok(
                p @ (pb::Position::ChiefInspector
                | pb::Position::ProsecutorDeputy
                | pb::Position::PrisonsDirectorGeneral
                | pb::Position::DisputeResolutionHead
                | pb::Position::PopularParticipationDirector),
            ),
        ) => d::Position::from_api(p as i32, "member.position").ok(),
        _ => {
            v.add(
                "member.position",
                "an official's position must be one of the working group's official positions",
            );
            None
        }
    };
    let position_title = v
        .check(
            "member.position_title",
            normalize_text(&src.position_title, 300),
        )
        .unwrap_or_default();
    let institution = if seat == Some(d::Seat::InstitutionRepresentative) {
        match src.institution.strip_prefix("institutions/") {
            Some(i) if valid_id(i) => src.institution.clone(),
            _ => {
                v.add(
                    "member.institution",
                    "a representative's institution must be institutions/{id}",
                );
                String::new()
            }
        }
    } else {
        String::new()
    };
    let term_start = checked_time(&src.term_start, "member.term_start", &mut v);
    v.into_result()?;
    match (national_code, seat, position) {
        (Some(national_code), Some(seat), Some(position)) => Ok(NewMember {
            full_name,
            national_code,
            seat,
            position,
            position_title,
            institution,
            term_start,
        }),
        // Each is None only with its violation added above.
        _ => Err(ApiError::invalid("member", "is incomplete")),
    }
}

fn new_resolution(req: &pb::RecordResolutionRequest) -> Result<NewResolution, ApiError> {
    let mut v = Violations::new();
    let text = v
        .check("text", normalize_text(&req.text, 5000))
        .unwrap_or_default();
    if text.is_empty() {
        v.add("text", "must not be empty");
    }
    let responsible_body = v
        .check(
            "responsible_body",
            normalize_text(&req.responsible_body, 300),
        )
        .unwrap_or_default();
    let date = checked_time(&req.deadline, "deadline", &mut v);
    let mut asked = Vec::new();
    if let Some(t) = date {
        asked.push(("deadline", d::DeadlineAsked::Date(t)));
    }
    for (field, n, period) in [
        (
            "deadline_days",
            req.deadline_days,
            mosharekat_calendar::Period::Days as fn(u32) -> mosharekat_calendar::Period,
        ),
        (
            "deadline_months",
            req.deadline_months,
            mosharekat_calendar::Period::Months,
        ),
    ] {
        match u32::try_from(n) {
            Ok(0) => {}
            Ok(n) => asked.push((field, d::DeadlineAsked::Period(period(n)))),
            Err(_) => v.add(field, "must not be negative"),
        }
    }
    if asked.len() > 1 {
        for (field, _) in &asked[1..] {
            v.add(
                *field,
                "give the deadline once: a date, a number of days or a number of months",
            );
        }
    }
    let deadline = asked.first().map(|(_, a)| *a);
    let mut votes = Vec::new();
    for (i, cv) in req.votes.iter().enumerate() {
        let field = format!("votes[{i}].vote");
        match d::Vote::from_api(cv.vote, &field) {
            Ok(x) => votes.push((i, cv.member.clone(), x)),
            Err(_) => v.add(field, "must be FOR, AGAINST or ABSTAIN"),
        }
    }
    let agenda_item = match u32::try_from(req.agenda_item) {
        Ok(n) => n,
        Err(_) => {
            v.add(
                "agenda_item",
                "must be 0 (the meeting as a whole) or an item's position",
            );
            0
        }
    };
    v.into_result()?;
    Ok(NewResolution {
        text,
        responsible_member: req.responsible_member.clone(),
        responsible_body,
        deadline,
        votes,
        agenda_item,
    })
}

fn attendance(entries: &[pb::Attendance]) -> Result<Vec<d::Attendance>, ApiError> {
    let mut v = Violations::new();
    let mut out = Vec::with_capacity(entries.len());
    for (i, a) in entries.iter().enumerate() {
        let status = match d::AttendanceStatus::from_api(a.status, "") {
            Ok(s) => Some(s),
            Err(_) => {
                v.add(
                    format!("attendance[{i}].status"),
                    "must be PRESENT, ABSENT, EXCUSED or REPRESENTED",
                );
                None
            }
        };
        if status == Some(d::AttendanceStatus::Represented) && a.substitute_name.trim().is_empty() {
            v.add(
                format!("attendance[{i}].substitute_name"),
                "a represented member's substitute must be named",
            );
        }
        let substitute_name = if status == Some(d::AttendanceStatus::Represented) {
            v.check(
                format!("attendance[{i}].substitute_name"),
                normalize_name(&a.substitute_name, 200),
            )
            .unwrap_or_default()
        } else {
            String::new()
        };
        if let Some(status) = status {
            out.push(d::Attendance {
                member: a.member.clone(),
                status,
                substitute_name,
            });
        }
    }
    v.into_result()?;
    Ok(out)
}

fn meeting_response<T>(
    ctx_result: Result<MeetingView, ApiError>,
    wrap: impl FnOnce(Option<pb::Meeting>) -> T,
) -> Result<Response<T>, Status> {
    Ok(Response::new(wrap(Some(meeting_out(&ctx_result?)))))
}

impl Meetings {
    async fn state_reason(
        &self,
        ctx: &CallContext,
        name: &str,
        etag: &str,
        reason: &str,
        action: MeetingAction,
    ) -> Result<MeetingView, ApiError> {
        let name = MeetingName::parse(name, "name")?;
        let why = required_reason(reason, "reason")?;
        self.set_state_reason(ctx, &name, etag, why, action).await
    }
}

#[tonic::async_trait]
impl MeetingService for Meetings {
    #[tracing::instrument(skip_all)]
    async fn create_working_group(
        &self,
        request: Request<pb::CreateWorkingGroupRequest>,
    ) -> Result<Response<pb::CreateWorkingGroupResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        request_id(&req.request_id)?;
        let src = req
            .working_group
            .as_ref()
            .ok_or_else(|| ApiError::invalid("working_group", "is required"))?;
        let mut v = Violations::new();
        let province = v
            .check("working_group.province", normalize_name(&src.province, 100))
            .unwrap_or_default();
        let title = v
            .check("working_group.title", normalize_name(&src.title, 300))
            .unwrap_or_default();
        let founding_time = checked_time(&src.founding_time, "working_group.founding_time", &mut v);
        let minutes_comment_days = comment_days(src.minutes_comment_days, &mut v);
        v.into_result()?;
        let out = self
            .create_group(
                &ctx,
                NewGroup {
                    province,
                    title,
                    founding_time,
                    minutes_comment_days,
                },
                CreateRequest {
                    request_id: &req.request_id,
                    request: &req,
                    answer: |g: &Versioned<d::Group>| pb::CreateWorkingGroupResponse {
                        working_group: Some(group_out(g)),
                    },
                },
            )
            .await?;
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn get_working_group(
        &self,
        request: Request<pb::GetWorkingGroupRequest>,
    ) -> Result<Response<pb::GetWorkingGroupResponse>, Status> {
        caller(&request, READERS)?;
        let name = GroupName::parse(&request.get_ref().name, "name")?;
        let g = self.get_group(&name).await?;
        Ok(Response::new(pb::GetWorkingGroupResponse {
            working_group: Some(group_out(&g)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_working_groups(
        &self,
        request: Request<pb::ListWorkingGroupsRequest>,
    ) -> Result<Response<pb::ListWorkingGroupsResponse>, Status> {
        caller(&request, READERS)?;
        let req = request.into_inner();
        let size = pagination::page_size(req.page_size, "page_size")?;
        if req.province.chars().count() > 100 {
            return Err(ApiError::invalid("province", "must be at most 100 characters").into());
        }
        let key = mosharekat_persian::fold_for_search(&req.province);
        let page = self.list_groups(&key, size, &req.page_token).await?;
        Ok(Response::new(pb::ListWorkingGroupsResponse {
            working_groups: page.items.iter().map(group_out).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_working_group(
        &self,
        request: Request<pb::UpdateWorkingGroupRequest>,
    ) -> Result<Response<pb::UpdateWorkingGroupResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        let src = req
            .working_group
            .as_ref()
            .ok_or_else(|| ApiError::invalid("working_group", "is required"))?;
        let name = GroupName::parse(&src.name, "working_group.name")?;
        let paths = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.clone())
            .unwrap_or_default();
        let mut v = Violations::new();
        if paths.is_empty() {
            v.add("update_mask", "must name at least one field to change");
        }
        let mut change = GroupChange::default();
        for (i, p) in paths.iter().enumerate() {
            match p.as_str() {
                "title" => {
                    change.title = v.check("working_group.title", normalize_name(&src.title, 300))
                }
                "founding_time" => {
                    change.founding_time =
                        checked_time(&src.founding_time, "working_group.founding_time", &mut v)
                }
                "minutes_comment_days" => {
                    change.minutes_comment_days =
                        Some(comment_days(src.minutes_comment_days, &mut v))
                }
                other => v.add(
                    format!("update_mask.paths[{i}]"),
                    format!(
                        "{other:?} is not an updatable field; use title, founding_time or minutes_comment_days"
                    ),
                ),
            }
        }
        v.into_result()?;
        let g = self.update_group(&ctx, &name, &src.etag, change).await?;
        Ok(Response::new(pb::UpdateWorkingGroupResponse {
            working_group: Some(group_out(&g)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn seat_member(
        &self,
        request: Request<pb::SeatMemberRequest>,
    ) -> Result<Response<pb::SeatMemberResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        let group = GroupName::parse(&req.parent, "parent")?;
        request_id(&req.request_id)?;
        let src = req
            .member
            .as_ref()
            .ok_or_else(|| ApiError::invalid("member", "is required"))?;
        let new = new_member(src)?;
        let out = self
            .seat(
                &ctx,
                &group,
                new,
                CreateRequest {
                    request_id: &req.request_id,
                    request: &req,
                    answer: |m: &Versioned<d::Member>| pb::SeatMemberResponse {
                        member: Some(member_out(&ctx, m)),
                    },
                },
            )
            .await?;
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let ctx = caller(&request, READERS)?;
        let req = request.into_inner();
        let group = GroupName::parse(&req.parent, "parent")?;
        let members = Meetings::list_members(self, &group, req.include_vacant).await?;
        Ok(Response::new(pb::ListMembersResponse {
            members: members.iter().map(|m| member_out(&ctx, m)).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn unseat_member(
        &self,
        request: Request<pb::UnseatMemberRequest>,
    ) -> Result<Response<pb::UnseatMemberResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        let name = MemberName::parse(&req.name, "name")?;
        let reason = normalize_text(&req.reason, 2000)
            .map_err(|e| ApiError::invalid("reason", e.to_string()))?;
        let m = self.unseat(&ctx, &name, &req.etag, reason).await?;
        Ok(Response::new(pb::UnseatMemberResponse {
            member: Some(member_out(&ctx, &m)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn schedule_meeting(
        &self,
        request: Request<pb::ScheduleMeetingRequest>,
    ) -> Result<Response<pb::ScheduleMeetingResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        let group = GroupName::parse(&req.parent, "parent")?;
        request_id(&req.request_id)?;
        let src = req
            .meeting
            .as_ref()
            .ok_or_else(|| ApiError::invalid("meeting", "is required"))?;
        let mut v = Violations::new();
        let title = v
            .check("meeting.title", normalize_name(&src.title, 300))
            .unwrap_or_default();
        let place = v
            .check("meeting.place", normalize_name(&src.place, 300))
            .unwrap_or_default();
        if src.scheduled_time.is_none() {
            v.add("meeting.scheduled_time", "is required");
        }
        let scheduled_time = checked_time(&src.scheduled_time, "meeting.scheduled_time", &mut v);
        v.into_result()?;
        let out = self
            .schedule(
                &ctx,
                &group,
                NewMeeting {
                    title,
                    place,
                    scheduled_time,
                },
                CreateRequest {
                    request_id: &req.request_id,
                    request: &req,
                    answer: |m: &MeetingView| pb::ScheduleMeetingResponse {
                        meeting: Some(meeting_out(m)),
                    },
                },
            )
            .await?;
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn get_meeting(
        &self,
        request: Request<pb::GetMeetingRequest>,
    ) -> Result<Response<pb::GetMeetingResponse>, Status> {
        caller(&request, READERS)?;
        let name = MeetingName::parse(&request.get_ref().name, "name")?;
        meeting_response(Meetings::get_meeting(self, &name).await, |meeting| {
            pb::GetMeetingResponse { meeting }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn list_meetings(
        &self,
        request: Request<pb::ListMeetingsRequest>,
    ) -> Result<Response<pb::ListMeetingsResponse>, Status> {
        caller(&request, READERS)?;
        let req = request.into_inner();
        let group = GroupName::parse(&req.parent, "parent")?;
        let size = pagination::page_size(req.page_size, "page_size")?;
        let page = Meetings::list_meetings(self, &group, size, &req.page_token).await?;
        Ok(Response::new(pb::ListMeetingsResponse {
            meetings: page.items.iter().map(meeting_out).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn reschedule_meeting(
        &self,
        request: Request<pb::RescheduleMeetingRequest>,
    ) -> Result<Response<pb::RescheduleMeetingResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        let at = req
            .scheduled_time
            .as_ref()
            .ok_or_else(|| ApiError::invalid("scheduled_time", "is required"))
            .and_then(|t| {
                from_timestamp(t)
                    .and(Time::new(t.seconds, t.nanos))
                    .ok_or_else(|| {
                        ApiError::invalid("scheduled_time", "must be a time between 1900 and 2200")
                    })
            })?;
        let place = if req.place.is_empty() {
            None
        } else {
            Some(
                normalize_name(&req.place, 300)
                    .map_err(|e| ApiError::invalid("place", e.to_string()))?,
            )
        };
        let name = MeetingName::parse(&req.name, "name")?;
        meeting_response(
            self.reschedule(&ctx, &name, &req.etag, at, place).await,
            |meeting| pb::RescheduleMeetingResponse { meeting },
        )
    }

    #[tracing::instrument(skip_all)]
    async fn postpone_meeting(
        &self,
        request: Request<pb::PostponeMeetingRequest>,
    ) -> Result<Response<pb::PostponeMeetingResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        meeting_response(
            self.state_reason(
                &ctx,
                &req.name,
                &req.etag,
                &req.reason,
                MeetingAction::Postpone,
            )
            .await,
            |meeting| pb::PostponeMeetingResponse { meeting },
        )
    }

    #[tracing::instrument(skip_all)]
    async fn cancel_meeting(
        &self,
        request: Request<pb::CancelMeetingRequest>,
    ) -> Result<Response<pb::CancelMeetingResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        meeting_response(
            self.state_reason(
                &ctx,
                &req.name,
                &req.etag,
                &req.reason,
                MeetingAction::Cancel,
            )
            .await,
            |meeting| pb::CancelMeetingResponse { meeting },
        )
    }

    #[tracing::instrument(skip_all)]
    async fn set_agenda(
        &self,
        request: Request<pb::SetAgendaRequest>,
    ) -> Result<Response<pb::SetAgendaResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        let name = MeetingName::parse(&req.name, "name")?;
        let items = agenda(&req.items)?;
        meeting_response(
            Meetings::set_agenda(self, &ctx, &name, &req.etag, items).await,
            |meeting| pb::SetAgendaResponse { meeting },
        )
    }

    #[tracing::instrument(skip_all)]
    async fn finalize_agenda(
        &self,
        request: Request<pb::FinalizeAgendaRequest>,
    ) -> Result<Response<pb::FinalizeAgendaResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        let name = MeetingName::parse(&req.name, "name")?;
        meeting_response(
            Meetings::finalize_agenda(self, &ctx, &name, &req.etag).await,
            |meeting| pb::FinalizeAgendaResponse { meeting },
        )
    }

    #[tracing::instrument(skip_all)]
    async fn record_attendance(
        &self,
        request: Request<pb::RecordAttendanceRequest>,
    ) -> Result<Response<pb::RecordAttendanceResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        let name = MeetingName::parse(&req.name, "name")?;
        let entries = attendance(&req.attendance)?;
        meeting_response(
            Meetings::record_attendance(
                self,
                &ctx,
                &name,
                &req.etag,
                entries,
                req.deputy_chair.clone(),
            )
            .await,
            |meeting| pb::RecordAttendanceResponse { meeting },
        )
    }

    #[tracing::instrument(skip_all)]
    async fn start_meeting(
        &self,
        request: Request<pb::StartMeetingRequest>,
    ) -> Result<Response<pb::StartMeetingResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        let name = MeetingName::parse(&req.name, "name")?;
        meeting_response(self.start(&ctx, &name, &req.etag).await, |meeting| {
            pb::StartMeetingResponse { meeting }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn record_resolution(
        &self,
        request: Request<pb::RecordResolutionRequest>,
    ) -> Result<Response<pb::RecordResolutionResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        let meeting = MeetingName::parse(&req.name, "name")?;
        request_id(&req.request_id)?;
        let new = new_resolution(&req)?;
        let out = Meetings::record_resolution(
            self,
            &ctx,
            &meeting,
            new,
            CreateRequest {
                request_id: &req.request_id,
                request: &req,
                answer: |r: &ResolutionView| pb::RecordResolutionResponse {
                    resolution: Some(resolution_out(r)),
                },
            },
        )
        .await?;
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn approve_minutes(
        &self,
        request: Request<pb::ApproveMinutesRequest>,
    ) -> Result<Response<pb::ApproveMinutesResponse>, Status> {
        // The chair approves; the secretariat may for them (the chair's seat is checked
        // against the meeting's roster).
        let ctx = caller(&request, REPORTERS)?;
        let chair = match ctx.role() {
            Role::Member => Some(own_member(&ctx)?),
            _ => None,
        };
        let req = request.into_inner();
        let discussion = normalize_text(&req.discussion, 50_000)
            .map_err(|e| ApiError::invalid("discussion", e.to_string()))?;
        let name = MeetingName::parse(&req.name, "name")?;
        meeting_response(
            Meetings::approve_minutes(self, &ctx, &name, &req.etag, chair.as_deref(), discussion)
                .await,
            |meeting| pb::ApproveMinutesResponse { meeting },
        )
    }

    #[tracing::instrument(skip_all)]
    async fn verify_minutes(
        &self,
        request: Request<pb::VerifyMinutesRequest>,
    ) -> Result<Response<pb::VerifyMinutesResponse>, Status> {
        caller(&request, READERS)?;
        let name = MeetingName::parse(&request.get_ref().name, "name")?;
        let (stored, computed, form) = Meetings::verify_minutes(self, &name).await?;
        Ok(Response::new(pb::VerifyMinutesResponse {
            intact: !computed.is_empty() && computed == stored,
            stored_sha256: stored,
            computed_sha256: computed,
            minutes_hash_version: form.number(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn export_minutes(
        &self,
        request: Request<pb::ExportMinutesRequest>,
    ) -> Result<Response<pb::ExportMinutesResponse>, Status> {
        caller(&request, READERS)?;
        let name = MeetingName::parse(&request.get_ref().name, "name")?;
        let (group, view, members) = Meetings::export_minutes(self, &name).await?;
        let m = meeting_out(&view);
        let members: Vec<pb::Member> = members.iter().map(Into::into).collect();
        // The printed minutes are a presentation of the API's answer.
        Ok(Response::new(pb::ExportMinutesResponse {
            html: crate::minutes::render(&(&group).into(), &m, &members),
            content_sha256: m.content_sha256,
            minutes_hash_version: m.minutes_hash_version,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn declare_conflict(
        &self,
        request: Request<pb::DeclareConflictRequest>,
    ) -> Result<Response<pb::DeclareConflictResponse>, Status> {
        let ctx = caller(&request, REPORTERS)?;
        let req = request.into_inner();
        let name = MeetingName::parse(&req.name, "name")?;
        let reason = required_reason(&req.reason, "reason")?;
        let item = u32::try_from(req.agenda_item)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                ApiError::invalid("agenda_item", "must be an item's position, from 1")
            })?;
        // A member declares for themself; the secretariat for any member it names.
        let member = if ctx.role() == Role::Member {
            let own = MemberName::new(
                name.group().clone(),
                ctx.principal.member.clone().unwrap_or_default(),
            )
            .to_string();
            if !req.member.is_empty() && req.member != own {
                return Err(ApiError::PermissionDenied(
                    "a member declares a conflict of interest for themself only".into(),
                )
                .into());
            }
            own
        } else {
            let m = MemberName::parse(&req.member, "member")?;
            if m.group() != name.group() {
                return Err(ApiError::invalid(
                    "member",
                    format!("must be a member of {}", name.group()),
                )
                .into());
            }
            m.to_string()
        };
        meeting_response(
            Meetings::declare_conflict(self, &ctx, &name, &req.etag, item, member, reason).await,
            |meeting| pb::DeclareConflictResponse { meeting },
        )
    }

    #[tracing::instrument(skip_all)]
    async fn open_minutes_review(
        &self,
        request: Request<pb::OpenMinutesReviewRequest>,
    ) -> Result<Response<pb::OpenMinutesReviewResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        let name = MeetingName::parse(&req.name, "name")?;
        let discussion = normalize_text(&req.discussion, 50_000)
            .map_err(|e| ApiError::invalid("discussion", e.to_string()))?;
        meeting_response(
            self.open_review(&ctx, &name, &req.etag, discussion).await,
            |meeting| pb::OpenMinutesReviewResponse { meeting },
        )
    }

    #[tracing::instrument(skip_all)]
    async fn comment_on_minutes(
        &self,
        request: Request<pb::CommentOnMinutesRequest>,
    ) -> Result<Response<pb::CommentOnMinutesResponse>, Status> {
        let ctx = caller(&request, COMMENTERS)?;
        let req = request.into_inner();
        let name = MeetingName::parse(&req.name, "name")?;
        let text = required_reason(&req.text, "text")?;
        let member = own_member(&ctx)?;
        meeting_response(
            self.comment(&ctx, &name, &req.etag, &member, text).await,
            |meeting| pb::CommentOnMinutesResponse { meeting },
        )
    }

    #[tracing::instrument(skip_all)]
    async fn close_minutes_review(
        &self,
        request: Request<pb::CloseMinutesReviewRequest>,
    ) -> Result<Response<pb::CloseMinutesReviewResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        let name = MeetingName::parse(&req.name, "name")?;
        meeting_response(self.close_review(&ctx, &name, &req.etag).await, |meeting| {
            pb::CloseMinutesReviewResponse { meeting }
        })
    }

    #[tracing::instrument(skip_all)]
    async fn sign_minutes(
        &self,
        request: Request<pb::SignMinutesRequest>,
    ) -> Result<Response<pb::SignMinutesResponse>, Status> {
        let ctx = caller(&request, COMMENTERS)?;
        let req = request.into_inner();
        let name = MeetingName::parse(&req.name, "name")?;
        let sha = req.content_sha256.trim();
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::invalid(
                "content_sha256",
                "must be the 64 hex digits of the minutes' hash",
            )
            .into());
        }
        let member = own_member(&ctx)?;
        meeting_response(
            self.sign(&ctx, &name, &req.etag, &member, sha).await,
            |meeting| pb::SignMinutesResponse { meeting },
        )
    }

    #[tracing::instrument(skip_all)]
    async fn export_resolution_extract(
        &self,
        request: Request<pb::ExportResolutionExtractRequest>,
    ) -> Result<Response<pb::ExportResolutionExtractResponse>, Status> {
        caller(&request, READERS)?;
        let name = ResolutionName::parse(&request.get_ref().name, "name")?;
        let (group, r, view, members) = self.export_extract(&name).await?;
        let m = meeting_out(&view);
        let members: Vec<pb::Member> = members.iter().map(Into::into).collect();
        Ok(Response::new(pb::ExportResolutionExtractResponse {
            html: crate::minutes::render_extract(&(&group).into(), &m, &(&r).into(), &members),
            display_number: r.display_number(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_resolution(
        &self,
        request: Request<pb::GetResolutionRequest>,
    ) -> Result<Response<pb::GetResolutionResponse>, Status> {
        caller(&request, READERS)?;
        let name = ResolutionName::parse(&request.get_ref().name, "name")?;
        let r = Meetings::get_resolution(self, &name).await?;
        Ok(Response::new(pb::GetResolutionResponse {
            resolution: Some(resolution_out(&r)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_resolutions(
        &self,
        request: Request<pb::ListResolutionsRequest>,
    ) -> Result<Response<pb::ListResolutionsResponse>, Status> {
        caller(&request, READERS)?;
        let req = request.into_inner();
        let group = GroupName::parse(&req.parent, "parent")?;
        let size = pagination::page_size(req.page_size, "page_size")?;
        let state = match req.state {
            0 => None,
            s => Some(
                d::ResolutionState::from_api(s, "state")
                    .map_err(|_| ApiError::invalid("state", "is not a known value"))?,
            ),
        };
        if !req.responsible_member.is_empty() {
            let who = MemberName::parse(&req.responsible_member, "responsible_member")?;
            if who.group() != &group {
                return Err(ApiError::invalid(
                    "responsible_member",
                    format!("must be a member of {group}"),
                )
                .into());
            }
        }
        let due_within_days = match req.due_within_days {
            None => None,
            Some(n) => match u32::try_from(n) {
                Ok(n) if u64::from(n) <= mosharekat_calendar::deadline::MAX_PERIOD_DAYS => Some(n),
                _ => {
                    return Err(ApiError::invalid(
                        "due_within_days",
                        format!(
                            "must be from 0 to {}",
                            mosharekat_calendar::deadline::MAX_PERIOD_DAYS
                        ),
                    )
                    .into());
                }
            },
        };
        let page = Meetings::list_resolutions(
            self,
            &group,
            crate::app::ResolutionFilter {
                state,
                overdue_only: req.overdue_only,
                due_within_days,
                responsible_member: req.responsible_member.clone(),
            },
            size,
            &req.page_token,
        )
        .await?;
        Ok(Response::new(pb::ListResolutionsResponse {
            resolutions: page.items.iter().map(resolution_out).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn report_resolution_progress(
        &self,
        request: Request<pb::ReportResolutionProgressRequest>,
    ) -> Result<Response<pb::ReportResolutionProgressResponse>, Status> {
        let ctx = caller(&request, REPORTERS)?;
        let req = request.into_inner();
        let name = ResolutionName::parse(&req.name, "name")?;
        if !(0..=100).contains(&req.progress) {
            return Err(ApiError::invalid("progress", "must be from 0 to 100").into());
        }
        let note = normalize_text(&req.note, 5000)
            .map_err(|e| ApiError::invalid("note", e.to_string()))?;
        let member =
            (ctx.role() == Role::Member).then(|| ctx.principal.member.clone().unwrap_or_default());
        let r = self
            .report_progress(&ctx, &name, &req.etag, member, req.progress, note)
            .await?;
        Ok(Response::new(pb::ReportResolutionProgressResponse {
            resolution: Some(resolution_out(&r)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn cancel_resolution(
        &self,
        request: Request<pb::CancelResolutionRequest>,
    ) -> Result<Response<pb::CancelResolutionResponse>, Status> {
        let ctx = caller(&request, MANAGERS)?;
        let req = request.into_inner();
        let name = ResolutionName::parse(&req.name, "name")?;
        let reason = required_reason(&req.reason, "reason")?;
        let r = Meetings::cancel_resolution(self, &ctx, &name, &req.etag, reason).await?;
        Ok(Response::new(pb::CancelResolutionResponse {
            resolution: Some(resolution_out(&r)),
        }))
    }
}
