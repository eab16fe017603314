//! What the working group tells its members (`domain.md`, "Notifications"), written in the
//! transaction of the change that causes it (`change` step 6, `Saved::txn()`), so that a
//! change rolled back notifies nobody:
//!
//! - a meeting scheduled, moved, postponed or cancelled, and its minutes approved: to every
//!   member seated now, with the meeting's date and time in Solar Hijri;
//! - a resolution assigned: to the responsible member, with its deadline; and the reminders
//!   of that deadline (7 days and 1 day before, and passed), moved when the deadline moves
//!   and cancelled when the resolution is done or cancelled;
//! - a resolution's deadline moved by a holiday or closure published after it was set.
//!
//! Each goes by SMS (the gateways of the judiciary resolve a member to a number), under
//! the content rules of `mosharekat_notify`: the member's own name, a short reference
//! («جلسه ۳», «مصوبه ۳۰۲»), fixed text, and for a meeting's time its date, time and place
//! (the venue, under `mosharekat_notify::content::check_place`).
//!
//! - the draft minutes opened for comment: to the members who attended, with the window's
//!   last day, and the window's reminders (moved with it by a late closure, cancelled when
//!   the secretary closes it);
//! - the approved minutes awaiting signature: to the members present;
//! - a resolution's extract sent: to the responsible member, when one is (a body that is no
//!   member is written to on paper: the extract records when it was sent).

use chrono::{DateTime, Utc};
use mosharekat_notify::{
    Addressee, Delivery, NewNotification, NoticeDate, Office, Recipient, Reference, ReminderPlan,
    STANDARD_OFFSETS, Template, Topic, enqueue, reminders,
};
use mosharekat_platform::db::WriteTxn;
use mosharekat_platform::error::ApiError;

use crate::domain::{Meeting, Member, Resolution, ResolutionState};
use crate::rules;
use crate::store;

/// How an SMS addresses a member whose recorded name the SMS rules refuse (a digit in it,
/// say): «عضو کارگروه گرامی». Better a notice without the name than none.
pub const NAMELESS_MEMBER: &str = "عضو کارگروه";

/// A member as a notification's recipient: their own name, the one personal datum an SMS
/// may carry.
pub fn recipient(m: &Member) -> Recipient {
    let name = mosharekat_notify::content::check_name(&m.full_name)
        .unwrap_or_else(|_| NAMELESS_MEMBER.to_owned());
    Recipient::Member {
        id: m.name.id().to_owned(),
        name,
    }
}

/// «جلسه ۳».
pub fn meeting_reference(number: i32) -> Result<Reference, ApiError> {
    Ok(Reference::new("جلسه", u64::try_from(number).unwrap_or(0))?)
}

/// «صورتجلسه ۳».
pub fn minutes_reference(number: i32) -> Result<Reference, ApiError> {
    Ok(Reference::new(
        "صورتجلسه",
        u64::try_from(number).unwrap_or(0),
    )?)
}

/// «مصوبه ۳۰۲»: the second resolution of meeting 3, the group's `{meeting}-{n}` written as
/// one number (the meeting's number, then `n` in two digits or more), since a reference a
/// person quotes is a word and a number.
pub fn resolution_reference(r: &Resolution) -> Result<Reference, ApiError> {
    let meeting = store::last_segment(&r.meeting);
    let number: u64 = format!("{meeting}{:02}", r.number).parse().unwrap_or(0);
    Ok(Reference::new("مصوبه", number)?)
}

/// The key a resolution's deadline reminders are kept under.
pub fn deadline_key(r: &Resolution) -> String {
    format!("{}/deadline", r.name)
}

fn at(t: Option<crate::domain::Time>) -> Option<DateTime<Utc>> {
    t.and_then(crate::domain::Time::chrono)
}

/// A meeting's change, told to every member seated now: `MeetingScheduled` and
/// `MeetingMoved` with its date, time and place, `MeetingPostponed`, `MeetingCancelled`,
/// `MinutesApproved`. Returns how many were queued.
pub async fn meeting_changed(
    txn: &WriteTxn,
    template: Template,
    m: &Meeting,
) -> Result<usize, ApiError> {
    let with_time = matches!(
        template,
        Template::MeetingScheduled | Template::MeetingMoved
    );
    let dates = match (with_time, at(m.scheduled_time)) {
        (true, Some(t)) => vec![NoticeDate::At(t)],
        // No time to announce: the notice would say nothing true.
        (true, None) => return Ok(0),
        (false, _) => Vec::new(),
    };
    let reference = if template == Template::MinutesApproved {
        minutes_reference(m.name.number())?
    } else {
        meeting_reference(m.name.number())?
    };
    let members = store::seated(txn, m.name.group()).await?;
    let mut n = 0;
    for rec in members.iter().filter(|r| !r.value.vacant) {
        enqueue(
            txn,
            NewNotification {
                recipient: recipient(&rec.value),
                resource: m.name.to_string(),
                reference: reference.clone(),
                office: Office::Secretariat,
                template,
                dates: dates.clone(),
                place: with_time.then(|| m.place.clone()),
                delivery: Delivery::Sms,
            },
        )
        .await?;
        n += 1;
    }
    Ok(n)
}

/// The responsible member of `r`, if one is seated.
async fn responsible(txn: &WriteTxn, r: &Resolution) -> Result<Option<Member>, ApiError> {
    if r.responsible_member.is_empty() {
        return Ok(None);
    }
    Ok(store::seated(txn, r.name.group())
        .await?
        .into_iter()
        .map(|x| x.value.value)
        .find(|m| m.name.to_string() == r.responsible_member && !m.vacant))
}

fn plan(r: &Resolution, who: &Member) -> Result<ReminderPlan, ApiError> {
    Ok(ReminderPlan {
        deadline_key: deadline_key(r),
        topic: Topic::ResolutionDeadline,
        resource: r.name.to_string(),
        reference: resolution_reference(r)?,
        office: Office::Secretariat,
        recipients: vec![Addressee {
            recipient: recipient(who),
            delivery: Delivery::Sms,
        }],
        offsets: STANDARD_OFFSETS.to_vec(),
    })
}

/// An adopted resolution with a member responsible and a deadline: told to that member,
/// and its reminders scheduled. Returns whether it was told.
pub async fn resolution_assigned(txn: &WriteTxn, r: &Resolution) -> Result<bool, ApiError> {
    let Some(deadline) = &r.legal_deadline else {
        return Ok(false);
    };
    if r.state != ResolutionState::Open {
        return Ok(false);
    }
    let Some(who) = responsible(txn, r).await? else {
        return Ok(false);
    };
    let plan = plan(r, &who)?;
    enqueue(
        txn,
        NewNotification {
            recipient: recipient(&who),
            resource: r.name.to_string(),
            reference: plan.reference.clone(),
            office: Office::Secretariat,
            template: Template::ResolutionAssigned,
            dates: vec![NoticeDate::Day(deadline.last_day)],
            place: None,
            delivery: Delivery::Sms,
        },
    )
    .await?;
    reminders::schedule(txn, &plan, deadline.ends_at).await?;
    Ok(true)
}

/// A resolution's deadline moved (a late holiday or closure): its member told, its
/// reminders moved with it.
pub async fn deadline_moved(txn: &WriteTxn, r: &Resolution) -> Result<(), ApiError> {
    let Some(deadline) = &r.legal_deadline else {
        return Ok(());
    };
    reminders::reschedule(txn, &deadline_key(r), deadline.ends_at).await?;
    if let Some(who) = responsible(txn, r).await? {
        enqueue(
            txn,
            NewNotification {
                recipient: recipient(&who),
                resource: r.name.to_string(),
                reference: resolution_reference(r)?,
                office: Office::Secretariat,
                template: Template::DeadlineMoved(Topic::ResolutionDeadline),
                dates: vec![NoticeDate::Day(deadline.last_day)],
                place: None,
                delivery: Delivery::Sms,
            },
        )
        .await?;
    }
    Ok(())
}

/// A resolution followed up: done or cancelled, nobody is reminded of it any more.
pub async fn resolution_followed_up(
    txn: &WriteTxn,
    before: &Resolution,
    after: &Resolution,
) -> Result<(), ApiError> {
    let closed = matches!(
        after.state,
        ResolutionState::Done | ResolutionState::Cancelled
    );
    if closed && before.state != after.state {
        reminders::cancel(txn, &deadline_key(after)).await?;
    }
    Ok(())
}

/// The key a meeting's comment window reminders are kept under.
pub fn comment_window_key(m: &Meeting) -> String {
    format!("{}/comment-window", m.name)
}

/// The members of `roster` who attended `m` (in person or by a substitute).
fn attendees<'a>(m: &'a Meeting, roster: &'a [Member]) -> impl Iterator<Item = &'a Member> + 'a {
    roster.iter().filter(move |x| {
        let name = x.name.to_string();
        m.attendance
            .iter()
            .any(|a| a.member == name && rules::counts_present(a.status))
    })
}

fn comment_plan(m: &Meeting, roster: &[Member]) -> Result<ReminderPlan, ApiError> {
    Ok(ReminderPlan {
        deadline_key: comment_window_key(m),
        topic: Topic::MinutesComment,
        resource: m.name.to_string(),
        reference: minutes_reference(m.name.number())?,
        office: Office::Secretariat,
        recipients: attendees(m, roster)
            .map(|x| Addressee {
                recipient: recipient(x),
                delivery: Delivery::Sms,
            })
            .collect(),
        offsets: STANDARD_OFFSETS.to_vec(),
    })
}

/// The draft minutes opened for comment: each attendee told until when, and reminded
/// before the window ends. Returns how many were told.
pub async fn review_opened(
    txn: &WriteTxn,
    m: &Meeting,
    roster: &[Member],
) -> Result<usize, ApiError> {
    let Some(review) = &m.review else {
        return Ok(0);
    };
    let plan = comment_plan(m, roster)?;
    for a in &plan.recipients {
        enqueue(
            txn,
            NewNotification {
                recipient: a.recipient.clone(),
                resource: m.name.to_string(),
                reference: plan.reference.clone(),
                office: Office::Secretariat,
                template: Template::MinutesOpenForComment,
                dates: vec![NoticeDate::Day(review.window.last_day)],
                place: None,
                delivery: Delivery::Sms,
            },
        )
        .await?;
    }
    reminders::schedule(txn, &plan, review.window.ends_at).await?;
    Ok(plan.recipients.len())
}

/// The comment window moved by a late holiday or closure: the attendees told, the
/// reminders moved.
pub async fn review_window_moved(
    txn: &WriteTxn,
    m: &Meeting,
    roster: &[Member],
) -> Result<(), ApiError> {
    let Some(review) = &m.review else {
        return Ok(());
    };
    reminders::reschedule(txn, &comment_window_key(m), review.window.ends_at).await?;
    for x in attendees(m, roster) {
        enqueue(
            txn,
            NewNotification {
                recipient: recipient(x),
                resource: m.name.to_string(),
                reference: minutes_reference(m.name.number())?,
                office: Office::Secretariat,
                template: Template::DeadlineMoved(Topic::MinutesComment),
                dates: vec![NoticeDate::Day(review.window.last_day)],
                place: None,
                delivery: Delivery::Sms,
            },
        )
        .await?;
    }
    Ok(())
}

/// The window closed by the secretary: nobody is reminded of it any more.
pub async fn review_closed(txn: &WriteTxn, m: &Meeting) -> Result<(), ApiError> {
    reminders::cancel(txn, &comment_window_key(m))
        .await
        .map(|_| ())
}

/// The approved minutes: each member present asked to sign. Returns how many were asked.
pub async fn signatures_requested(
    txn: &WriteTxn,
    m: &Meeting,
    roster: &[Member],
) -> Result<usize, ApiError> {
    let mut n = 0;
    for x in attendees(m, roster).filter(|x| !x.vacant) {
        enqueue(
            txn,
            NewNotification {
                recipient: recipient(x),
                resource: m.name.to_string(),
                reference: minutes_reference(m.name.number())?,
                office: Office::Secretariat,
                template: Template::MinutesSignatureRequested,
                dates: Vec::new(),
                place: None,
                delivery: Delivery::Sms,
            },
        )
        .await?;
        n += 1;
    }
    Ok(n)
}

/// A resolution's extract sent: told to its responsible member, when one is seated.
/// Returns whether one was told.
pub async fn extract_sent(txn: &WriteTxn, r: &Resolution) -> Result<bool, ApiError> {
    let Some(who) = responsible(txn, r).await? else {
        return Ok(false);
    };
    enqueue(
        txn,
        NewNotification {
            recipient: recipient(&who),
            resource: r.name.to_string(),
            reference: resolution_reference(r)?,
            office: Office::Secretariat,
            template: Template::ResolutionExtractSent,
            dates: Vec::new(),
            place: None,
            delivery: Delivery::Sms,
        },
    )
    .await?;
    Ok(true)
}
