//! The working group's rules, free of I/O, over the domain's types: seats, quorum, votes,
//! the meeting and resolution life cycles. (What the minutes' hash covers is in
//! [`crate::canonical`].)

use chrono::{DateTime, Utc};
use mosharekat_calendar::{Calendar, Deadline, Period, Province, SolarDate};

use crate::domain::{
    AgendaItem, AttendanceStatus, DeadlineAsked, Meeting, MeetingState, Member, Quorum, Recusal,
    ResolutionState, Seat, Time, Vote,
};
use crate::error::MeetingError;

/// At most this many institution representatives sit in a working group.
pub const MAX_REPRESENTATIVES: usize = 6;

/// Why a member cannot take a seat (its reason code and texts: [`crate::error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatRefusal {
    ChairTaken,
    SecretaryTaken,
    RepresentativesFull,
    InstitutionAlreadySeated,
    PersonAlreadySeated,
}

/// May `new` take a seat beside the members `seated` (current, not ended)? A vacant
/// representative's seat is free again.
pub fn check_seat(seated: &[Member], new: &Member) -> Result<(), SeatRefusal> {
    if seated
        .iter()
        .any(|m| m.national_code.is_some() && m.national_code == new.national_code)
    {
        return Err(SeatRefusal::PersonAlreadySeated);
    }
    let holding = |seat: Seat| seated.iter().filter(move |m| m.seat == seat && !m.vacant);
    match new.seat {
        Seat::Chair if holding(Seat::Chair).next().is_some() => Err(SeatRefusal::ChairTaken),
        Seat::Secretary if holding(Seat::Secretary).next().is_some() => {
            Err(SeatRefusal::SecretaryTaken)
        }
        Seat::InstitutionRepresentative => {
            if holding(Seat::InstitutionRepresentative).any(|m| m.institution == new.institution) {
                Err(SeatRefusal::InstitutionAlreadySeated)
            } else if holding(Seat::InstitutionRepresentative).count() >= MAX_REPRESENTATIVES {
                Err(SeatRefusal::RepresentativesFull)
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// Whether a seat votes: everyone but the secretary.
pub fn seat_votes(seat: Seat) -> bool {
    seat != Seat::Secretary
}

/// Present for the count: in person, or by a named substitute.
pub fn counts_present(status: AttendanceStatus) -> bool {
    matches!(
        status,
        AttendanceStatus::Present | AttendanceStatus::Represented
    )
}

fn attends(meeting: &Meeting, member: &str, counts: impl Fn(AttendanceStatus) -> bool) -> bool {
    meeting
        .attendance
        .iter()
        .any(|a| a.member == member && counts(a.status))
}

/// Whether `member` attended `meeting`: present in person or by a substitute.
pub fn attended(meeting: &Meeting, member: &str) -> bool {
    attends(meeting, member, counts_present)
}

/// The voting members of `members` who count as present at `meeting`: voting seats not
/// vacant, present in person or by a substitute. Quorum and votes both count these.
pub fn present_voters<'a>(
    members: &'a [Member],
    meeting: &'a Meeting,
) -> impl Iterator<Item = &'a Member> + 'a {
    members
        .iter()
        .filter(|m| m.voting && !m.vacant)
        .filter(move |m| attends(meeting, &m.name.to_string(), counts_present))
}

/// The quorum of a meeting: more than half of the voting members present (in person or by
/// a named substitute), the chair — or the designated deputy, if the chair is absent —
/// among them. Vacant seats do not count.
pub fn quorum(members: &[Member], meeting: &Meeting) -> Quorum {
    quorum_without(members, meeting, &[])
}

/// The quorum of agenda item `item` (1-based; 0: the meeting as a whole): the meeting's,
/// with the members recused for that item not counted as present. They still hold their
/// seats, so the number of voting members (and so the number required) stays the group's:
/// a recusal can cost an item its quorum, never lower the bar.
pub fn item_quorum(members: &[Member], meeting: &Meeting, item: u32) -> Quorum {
    let recused = recused_for(meeting, item);
    quorum_without(members, meeting, &recused)
}

fn quorum_without(members: &[Member], meeting: &Meeting, recused: &[String]) -> Quorum {
    let voting: Vec<&Member> = members.iter().filter(|m| m.voting && !m.vacant).collect();
    let counted = |name: &str| !recused.iter().any(|r| r == name);
    let in_person =
        |name: &str| counted(name) && attends(meeting, name, |s| s == AttendanceStatus::Present);
    let voting_present = present_voters(members, meeting)
        .filter(|m| counted(&m.name.to_string()))
        .count() as i32;
    let voting_members = voting.len() as i32;
    let required = voting_members / 2 + 1;
    let chair_present = members
        .iter()
        .any(|m| m.seat == Seat::Chair && !m.vacant && in_person(&m.name.to_string()));
    let deputy_present = !meeting.deputy_chair.is_empty()
        && voting
            .iter()
            .any(|m| m.name.to_string() == meeting.deputy_chair)
        && in_person(&meeting.deputy_chair);
    let enough = voting_members > 0 && voting_present >= required;
    let chaired = chair_present || deputy_present;
    let mut explanation = format!(
        "{voting_present} of {voting_members} voting members present; more than half needs {required}; {}",
        if chair_present {
            "the chair is present"
        } else if deputy_present {
            "the chair is absent, the designated deputy chairs"
        } else {
            "neither the chair nor a designated deputy is present"
        }
    );
    if !recused.is_empty() {
        let _ = std::fmt::Write::write_fmt(
            &mut explanation,
            format_args!("; {} recused for this item, not counted", recused.len()),
        );
    }
    Quorum {
        met: enough && chaired,
        voting_members,
        voting_present,
        required,
        chair_present,
        deputy_present,
        explanation,
    }
}

/// The members recused for item `item` (none for 0, the meeting as a whole).
pub fn recused_for(meeting: &Meeting, item: u32) -> Vec<String> {
    if item == 0 {
        return Vec::new();
    }
    meeting
        .recusals
        .iter()
        .filter(|r| r.agenda_item == item)
        .map(|r| r.member.clone())
        .collect()
}

/// Why a representative is recused without declaring it.
pub const OWN_INSTITUTION: &str = "موضوع این بند نهاد متبوع عضو است";

/// The automatic recusals: each seated (not vacant) member whose own institution is the
/// subject of an item (the item points at it, or at one of its filings or referrals, as
/// the owning service answered). Items are numbered from 1.
pub fn automatic_recusals(members: &[Member], agenda: &[AgendaItem]) -> Vec<Recusal> {
    let mut out = Vec::new();
    for (i, item) in agenda.iter().enumerate() {
        if item.subject_institution.is_empty() {
            continue;
        }
        for m in members
            .iter()
            .filter(|m| !m.vacant && m.institution == item.subject_institution)
        {
            out.push(Recusal {
                agenda_item: i as u32 + 1,
                member: m.name.to_string(),
                automatic: true,
                reason: OWN_INSTITUTION.into(),
                declare_time: None,
            });
        }
    }
    out
}

/// `recusals` with `more` added, one per member and item (the first recorded kept).
pub fn merge_recusals(recusals: &mut Vec<Recusal>, more: Vec<Recusal>) {
    for r in more {
        if !recusals
            .iter()
            .any(|x| x.agenda_item == r.agenda_item && x.member == r.member)
        {
            recusals.push(r);
        }
    }
}

/// The quorum, or why the meeting cannot start without it.
pub fn require_quorum(members: &[Member], meeting: &Meeting) -> Result<Quorum, MeetingError> {
    let q = quorum(members, meeting);
    if q.met {
        Ok(q)
    } else {
        Err(MeetingError::NoQuorum {
            voting_present: q.voting_present,
            required: q.required,
            explanation: q.explanation,
        })
    }
}

/// The roster a meeting is held with, fixed when it starts: the members seated then, vacant
/// seats flagged as they were then. Its attendance, quorum and votes are counted against it
/// from then on, so a seat falling vacant later changes later meetings only. It leaves out
/// what the minutes need not carry (national codes).
pub fn roster_snapshot(seated: &[Member]) -> Vec<Member> {
    seated
        .iter()
        .map(|m| Member {
            national_code: None,
            ..m.clone()
        })
        .collect()
}

/// The tally of a vote: adopted by a majority of the present voting members (abstentions
/// count as not in favour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub for_: i32,
    pub against: i32,
    pub abstain: i32,
    pub adopted: bool,
}

pub fn tally(votes: &[Vote], present_voting: i32) -> Tally {
    let count = |v: Vote| votes.iter().filter(|x| **x == v).count() as i32;
    let for_ = count(Vote::For);
    Tally {
        for_,
        against: count(Vote::Against),
        abstain: count(Vote::Abstain),
        adopted: present_voting > 0 && for_ * 2 > present_voting,
    }
}

/// What can be done to a meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetingAction {
    Reschedule,
    Postpone,
    Cancel,
    EditAgenda,
    RecordAttendance,
    Start,
    RecordResolution,
    ApproveMinutes,
    DeclareConflict,
    OpenReview,
    Comment,
    CloseReview,
    Sign,
}

impl MeetingAction {
    pub const ALL: [MeetingAction; 13] = [
        Self::Reschedule,
        Self::Postpone,
        Self::Cancel,
        Self::EditAgenda,
        Self::RecordAttendance,
        Self::Start,
        Self::RecordResolution,
        Self::ApproveMinutes,
        Self::DeclareConflict,
        Self::OpenReview,
        Self::Comment,
        Self::CloseReview,
        Self::Sign,
    ];

    pub fn verb(self) -> &'static str {
        match self {
            Self::Reschedule => "reschedule",
            Self::Postpone => "postpone",
            Self::Cancel => "cancel",
            Self::EditAgenda => "change the agenda of",
            Self::RecordAttendance => "record attendance at",
            Self::Start => "start",
            Self::RecordResolution => "record a resolution in",
            Self::ApproveMinutes => "approve the minutes of",
            Self::DeclareConflict => "declare a conflict in",
            Self::OpenReview => "open for comment the minutes of",
            Self::Comment => "comment on the minutes of",
            Self::CloseReview => "close the comment window of",
            Self::Sign => "sign the minutes of",
        }
    }
}

/// The meeting life cycle; after the minutes are approved nothing changes.
pub fn next_meeting_state(from: MeetingState, action: MeetingAction) -> Option<MeetingState> {
    use MeetingAction as A;
    use MeetingState as S;
    match (from, action) {
        (S::Scheduled | S::Postponed, A::Reschedule) => Some(S::Scheduled),
        (S::Scheduled, A::Postpone) => Some(S::Postponed),
        (S::Scheduled | S::Postponed, A::Cancel) => Some(S::Cancelled),
        (S::Scheduled | S::Postponed, A::EditAgenda) => Some(from),
        (S::Scheduled | S::InSession, A::RecordAttendance) => Some(from),
        (S::Scheduled, A::Start) => Some(S::InSession),
        (S::InSession, A::RecordResolution) => Some(S::InSession),
        (S::InSession, A::ApproveMinutes) => Some(S::Closed),
        (S::Scheduled | S::Postponed | S::InSession, A::DeclareConflict) => Some(from),
        (S::InSession, A::OpenReview | A::Comment | A::CloseReview) => Some(S::InSession),
        // Signatures come after approval and change nothing the hash covers.
        (S::Closed, A::Sign) => Some(S::Closed),
        _ => None,
    }
}

/// The state `action` leads to, or the conflict.
pub fn transition(from: MeetingState, action: MeetingAction) -> Result<MeetingState, MeetingError> {
    next_meeting_state(from, action).ok_or(MeetingError::StateConflict { from, action })
}

/// The state a progress report leads to: 100 is done; reports on a finished resolution
/// are refused.
pub fn resolution_after_progress(from: ResolutionState, progress: i32) -> Option<ResolutionState> {
    match from {
        ResolutionState::Open | ResolutionState::InProgress => Some(if progress >= 100 {
            ResolutionState::Done
        } else {
            ResolutionState::InProgress
        }),
        _ => None,
    }
}

pub fn resolution_cancellable(from: ResolutionState) -> bool {
    matches!(from, ResolutionState::Open | ResolutionState::InProgress)
}

pub fn resolution_overdue(state: ResolutionState, deadline: Option<Time>, now_us: i64) -> bool {
    matches!(state, ResolutionState::Open | ResolutionState::InProgress)
        && deadline.is_some_and(|d| d.micros() < now_us)
}

/// A resolution's deadline through the legal calendar, counted from the meeting's day
/// (`act_at`, in Tehran; not counted, art. 445) in `province`: a period as given (a month
/// is 30 days, art. 443), or a date as the days from the meeting's day to it; either way
/// a closed last day moves to the next open day (art. 444), and the rule is recorded.
/// `field` names what the caller sent.
pub fn resolution_deadline(
    cal: &Calendar,
    act_at: DateTime<Utc>,
    province: &Province,
    asked: DeadlineAsked,
    field: &'static str,
) -> Result<Deadline, MeetingError> {
    let bad = |why: String| MeetingError::Deadline { field, why };
    let period = match asked {
        DeadlineAsked::Period(p) => p,
        DeadlineAsked::Date(t) => {
            let at = t
                .chrono()
                .ok_or_else(|| bad("is not a valid time".into()))?;
            let day = SolarDate::from_instant(at).map_err(|e| bad(e.to_string()))?;
            let act_day = SolarDate::from_instant(act_at).map_err(|e| bad(e.to_string()))?;
            let days = act_day.days_until(day);
            if days < 1 {
                return Err(bad("must be a day after the meeting's day".into()));
            }
            Period::Days(u32::try_from(days).map_err(|_| bad("is too far away".into()))?)
        }
    };
    cal.deadline(act_at, period, province)
        .map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Attendance, Position};
    use crate::names::{GroupName, MeetingName, MemberName};
    use mosharekat_persian::NationalCode;
    use mosharekat_persian::ids::national_code_check_digit;

    fn mname(n: usize) -> String {
        format!("working-groups/g/members/m{n}")
    }

    fn member(n: usize, seat: Seat) -> Member {
        let nine = format!("{:09}", 100_000 + n * 7);
        Member {
            name: MemberName::new(GroupName::new("g".into()), format!("m{n}")),
            full_name: format!("عضو {n}"),
            national_code: Some(
                NationalCode::parse(&format!(
                    "{nine}{}",
                    national_code_check_digit(&nine).unwrap()
                ))
                .unwrap(),
            ),
            seat,
            position: Position::ChiefInspector,
            position_title: String::new(),
            voting: seat_votes(seat),
            institution: if seat == Seat::InstitutionRepresentative {
                format!("institutions/{n}")
            } else {
                String::new()
            },
            term_start: None,
            term_end: None,
            vacant: false,
            vacancy_reason: String::new(),
        }
    }

    /// The seed's group: chair, five officials, six representatives, a secretary.
    fn seed_group() -> Vec<Member> {
        let mut v = vec![member(0, Seat::Chair)];
        v.extend((1..=5).map(|n| member(n, Seat::Official)));
        v.extend((6..=11).map(|n| member(n, Seat::InstitutionRepresentative)));
        v.push(member(12, Seat::Secretary));
        v
    }

    fn meeting_with(present: &[usize], represented: &[usize], deputy: Option<usize>) -> Meeting {
        let mut m = Meeting {
            name: MeetingName::new(GroupName::new("g".into()), 1),
            title: String::new(),
            scheduled_time: None,
            place: String::new(),
            state: MeetingState::Scheduled,
            state_reason: String::new(),
            agenda: vec![],
            agenda_final: false,
            attendance: vec![],
            deputy_chair: String::new(),
            quorum: None,
            resolutions: vec![],
            discussion: String::new(),
            start_time: None,
            close_time: None,
            content_sha256: String::new(),
            roster: vec![],
            minutes_hash_version: None,
            recusals: vec![],
            review: None,
            signatures: vec![],
        };
        for n in present {
            m.attendance.push(Attendance {
                member: mname(*n),
                status: AttendanceStatus::Present,
                substitute_name: String::new(),
            });
        }
        for n in represented {
            m.attendance.push(Attendance {
                member: mname(*n),
                status: AttendanceStatus::Represented,
                substitute_name: "جانشین".into(),
            });
        }
        m.deputy_chair = deputy.map(mname).unwrap_or_default();
        m
    }

    #[test]
    fn quorum_is_more_than_half_with_the_chair() {
        let g = seed_group();
        // 12 voting members: 7 needed.
        let q = quorum(&g, &meeting_with(&[0, 1, 2, 3, 4, 5, 6], &[], None));
        assert!(q.met, "{q:?}");
        assert_eq!((q.voting_members, q.voting_present, q.required), (12, 7, 7));
        // Exactly half is not enough.
        let q = quorum(&g, &meeting_with(&[0, 1, 2, 3, 4, 5], &[], None));
        assert!(!q.met);
        assert_eq!(q.voting_present, 6);
    }

    fn item(subject_institution: &str) -> AgendaItem {
        AgendaItem {
            title: "بند".into(),
            description: String::new(),
            subject: String::new(),
            standing_report: false,
            figures: vec![],
            subject_institution: subject_institution.into(),
        }
    }

    #[test]
    fn a_representative_is_recused_for_an_item_about_their_institution() {
        let g = seed_group();
        // Member 6 represents institutions/6; the second item is about it.
        let agenda = [item(""), item("institutions/6"), item("institutions/99")];
        let r = automatic_recusals(&g, &agenda);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(
            (r[0].agenda_item, r[0].member.as_str()),
            (2, "working-groups/g/members/m6")
        );
        assert!(r[0].automatic);
        // A vacant seat is not recused: it does not sit.
        let mut g2 = g.clone();
        g2[6].vacant = true;
        assert!(automatic_recusals(&g2, &agenda).is_empty());
    }

    #[test]
    fn a_recused_member_is_left_out_of_that_items_quorum_only() {
        let g = seed_group();
        // Seven of twelve present: the meeting's quorum exactly.
        let mut m = meeting_with(&[0, 1, 2, 3, 4, 5, 6], &[], None);
        merge_recusals(
            &mut m.recusals,
            automatic_recusals(&g, &[item("institutions/6")]),
        );
        assert!(quorum(&g, &m).met);
        let q = item_quorum(&g, &m, 1);
        assert!(!q.met, "member 6 would have made the quorum: {q:?}");
        assert_eq!((q.voting_members, q.voting_present, q.required), (12, 6, 7));
        // The meeting as a whole (item 0) counts everyone.
        assert!(item_quorum(&g, &m, 0).met);
        // A recused chair does not chair that item.
        let mut m = meeting_with(&[0, 1, 2, 3, 4, 5, 6, 7], &[], None);
        m.recusals.push(Recusal {
            agenda_item: 1,
            member: mname(0),
            automatic: false,
            reason: "خویشاوندی".into(),
            declare_time: None,
        });
        let q = item_quorum(&g, &m, 1);
        assert!(!q.chair_present && !q.met, "{q:?}");
    }

    #[test]
    fn recusals_merge_one_per_member_and_item() {
        let mut r = vec![Recusal {
            agenda_item: 1,
            member: mname(6),
            automatic: false,
            reason: "اعلام شخصی".into(),
            declare_time: None,
        }];
        let g = seed_group();
        merge_recusals(
            &mut r,
            automatic_recusals(&g, &[item("institutions/6"), item("institutions/6")]),
        );
        assert_eq!(r.len(), 2);
        assert!(!r[0].automatic, "the declared one is kept");
        assert_eq!((r[1].agenda_item, r[1].automatic), (2, true));
    }

    #[test]
    fn the_secretary_does_not_count() {
        let g = seed_group();
        let q = quorum(&g, &meeting_with(&[0, 1, 2, 3, 4, 5, 12], &[], None));
        assert_eq!(q.voting_present, 6);
        assert!(!q.met);
    }

    #[test]
    fn chair_absent_with_and_without_a_deputy() {
        let g = seed_group();
        let q = quorum(&g, &meeting_with(&[1, 2, 3, 4, 5, 6, 7], &[], None));
        assert_eq!(
            (q.voting_present, q.met),
            (7, false),
            "enough members but nobody chairs"
        );
        let q = quorum(&g, &meeting_with(&[1, 2, 3, 4, 5, 6, 7], &[], Some(1)));
        assert!(q.met && q.deputy_present && !q.chair_present);
        // A deputy who is not there does not chair.
        let q = quorum(&g, &meeting_with(&[2, 3, 4, 5, 6, 7, 8], &[], Some(1)));
        assert!(!q.met);
        // The secretary cannot be the deputy.
        let q = quorum(&g, &meeting_with(&[2, 3, 4, 5, 6, 7, 8, 12], &[], Some(12)));
        assert!(!q.met);
    }

    #[test]
    fn substitutes_count_but_do_not_chair() {
        let g = seed_group();
        let q = quorum(&g, &meeting_with(&[0, 1, 2, 3], &[4, 5, 6], None));
        assert!(q.met);
        assert_eq!(q.voting_present, 7);
        let q = quorum(&g, &meeting_with(&[1, 2, 3, 4, 5, 6], &[0], None));
        assert!(
            !q.met,
            "a chair represented by a substitute is not present in person"
        );
    }

    #[test]
    fn vacant_seats_do_not_count() {
        let mut g = seed_group();
        for m in g
            .iter_mut()
            .filter(|m| m.seat == Seat::InstitutionRepresentative)
            .take(2)
        {
            m.vacant = true;
        }
        // 10 voting members now: 6 needed.
        let q = quorum(&g, &meeting_with(&[0, 1, 2, 3, 4, 5], &[], None));
        assert_eq!((q.voting_members, q.required, q.met), (10, 6, true));
    }

    #[test]
    fn the_roster_keeps_the_seats_as_they_were() {
        let mut g = seed_group();
        let roster = roster_snapshot(&g);
        let m = meeting_with(&[0, 1, 2, 3, 4, 5, 6, 7, 8], &[], None);
        // A seat falling vacant after the start changes today's count, not the roster's.
        g[6].vacant = true;
        assert_eq!(
            (
                quorum(&roster, &m).voting_members,
                quorum(&roster, &m).voting_present
            ),
            (12, 9)
        );
        assert_eq!(
            (quorum(&g, &m).voting_members, quorum(&g, &m).voting_present),
            (11, 8)
        );
        assert!(roster.iter().all(|x| x.national_code.is_none()));
        assert_eq!(roster[6].name, g[6].name);
    }

    #[test]
    fn votes_need_a_majority_of_those_present() {
        use Vote::*;
        assert!(tally(&[For, For, For, For], 7).adopted);
        assert!(!tally(&[For, For, For, Against, Abstain, Abstain, Abstain], 7).adopted);
        assert!(tally(&[For, For, For, For, Against, Against, Against], 7).adopted);
        // Half for is not a majority.
        assert!(!tally(&[For, For, For, Against, Against, Against], 6).adopted);
        assert!(!tally(&[], 0).adopted);
        let t = tally(&[For, Against, Abstain, For], 5);
        assert_eq!((t.for_, t.against, t.abstain, t.adopted), (2, 1, 1, false));
    }

    #[test]
    fn seats() {
        let g = seed_group();
        assert_eq!(
            check_seat(&g, &member(20, Seat::Chair)),
            Err(SeatRefusal::ChairTaken)
        );
        assert_eq!(
            check_seat(&g, &member(21, Seat::Secretary)),
            Err(SeatRefusal::SecretaryTaken)
        );
        assert_eq!(
            check_seat(&g, &member(22, Seat::InstitutionRepresentative)),
            Err(SeatRefusal::RepresentativesFull)
        );
        assert!(check_seat(&g, &member(23, Seat::Official)).is_ok());
        let mut twice = member(24, Seat::InstitutionRepresentative);
        twice.institution = "institutions/6".into();
        assert_eq!(
            check_seat(&g[..8], &twice),
            Err(SeatRefusal::InstitutionAlreadySeated)
        );
        assert_eq!(
            check_seat(&g, &member(3, Seat::Official)),
            Err(SeatRefusal::PersonAlreadySeated)
        );
        // A vacant representative's seat is free again.
        let mut g2 = g.clone();
        g2[6].vacant = true;
        assert!(check_seat(&g2, &member(25, Seat::InstitutionRepresentative)).is_ok());
    }

    #[test]
    fn every_meeting_transition_allowed_and_refused() {
        use MeetingAction as A;
        use MeetingState as S;
        let allowed = [
            (S::Scheduled, A::Reschedule, S::Scheduled),
            (S::Postponed, A::Reschedule, S::Scheduled),
            (S::Scheduled, A::Postpone, S::Postponed),
            (S::Scheduled, A::Cancel, S::Cancelled),
            (S::Postponed, A::Cancel, S::Cancelled),
            (S::Scheduled, A::EditAgenda, S::Scheduled),
            (S::Postponed, A::EditAgenda, S::Postponed),
            (S::Scheduled, A::RecordAttendance, S::Scheduled),
            (S::InSession, A::RecordAttendance, S::InSession),
            (S::Scheduled, A::Start, S::InSession),
            (S::InSession, A::RecordResolution, S::InSession),
            (S::InSession, A::ApproveMinutes, S::Closed),
            (S::Scheduled, A::DeclareConflict, S::Scheduled),
            (S::Postponed, A::DeclareConflict, S::Postponed),
            (S::InSession, A::DeclareConflict, S::InSession),
            (S::InSession, A::OpenReview, S::InSession),
            (S::InSession, A::Comment, S::InSession),
            (S::InSession, A::CloseReview, S::InSession),
            (S::Closed, A::Sign, S::Closed),
        ];
        for from in [
            S::Scheduled,
            S::Postponed,
            S::Cancelled,
            S::InSession,
            S::Closed,
        ] {
            for a in MeetingAction::ALL {
                let expected = allowed
                    .iter()
                    .find(|(f, x, _)| *f == from && *x == a)
                    .map(|t| t.2);
                assert_eq!(next_meeting_state(from, a), expected, "{from:?} {a:?}");
            }
        }
        // Closed is immutable: only signing its approved content, which the hash does not
        // cover, is left.
        for a in MeetingAction::ALL.into_iter().filter(|a| *a != A::Sign) {
            assert_eq!(
                next_meeting_state(S::Closed, a),
                None,
                "closed is immutable"
            );
        }
    }

    #[test]
    fn resolution_follow_up() {
        use ResolutionState as R;
        assert_eq!(resolution_after_progress(R::Open, 30), Some(R::InProgress));
        assert_eq!(resolution_after_progress(R::InProgress, 100), Some(R::Done));
        assert_eq!(resolution_after_progress(R::Done, 50), None);
        assert_eq!(resolution_after_progress(R::NotAdopted, 50), None);
        assert_eq!(resolution_after_progress(R::Cancelled, 50), None);
        assert!(resolution_cancellable(R::Open) && !resolution_cancellable(R::Done));
        let t = Some(Time::from_micros(10));
        assert!(resolution_overdue(R::Open, t, 11));
        assert!(!resolution_overdue(R::Done, t, 11));
        assert!(!resolution_overdue(R::Open, t, 10));
    }

    #[test]
    fn a_resolution_deadline_as_a_date_counts_the_days_to_it() {
        use chrono::TimeZone;
        let cal = Calendar::new();
        let province = Province::new("اردبیل").unwrap();
        // Saturday 1404/02/13, 10:00 Tehran.
        let act = Utc.with_ymd_and_hms(2025, 5, 3, 6, 30, 0).unwrap();
        let at = |y, m, d, h| Time::from_chrono(Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap());
        // Any time on Tuesday 02/16 is three days, ending with that day.
        let d = resolution_deadline(
            &cal,
            act,
            &province,
            DeadlineAsked::Date(at(2025, 5, 6, 5)),
            "deadline",
        )
        .unwrap();
        assert_eq!(d.rule.period, Period::Days(3));
        assert_eq!(d.last_day, SolarDate::new(1404, 2, 16).unwrap());
        // The meeting's own day, or before it, is refused naming the field.
        for t in [at(2025, 5, 3, 18), at(2025, 5, 1, 9)] {
            let e = resolution_deadline(&cal, act, &province, DeadlineAsked::Date(t), "deadline")
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    MeetingError::Deadline {
                        field: "deadline",
                        ..
                    }
                ),
                "{e:?}"
            );
        }
        let e = resolution_deadline(
            &cal,
            act,
            &province,
            DeadlineAsked::Period(Period::Days(0)),
            "deadline_days",
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                MeetingError::Deadline {
                    field: "deadline_days",
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
