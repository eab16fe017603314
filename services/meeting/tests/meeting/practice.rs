//! The working group's practice (issue 17): recusals for an agenda item (automatic for a
//! member whose institution the item is about, as the owning service answers; declared by
//! a member), the item's quorum and votes without them; the minutes reviewed, then signed
//! (open → comment → close → approve → sign), each step refused out of order and by the
//! wrong role or member; the comment window on the legal calendar as the clock moves and
//! a late closure moves it; resolutions numbered per meeting and their extracts.

use mosharekat_calendar::{Scope, SharedCalendar};
use mosharekat_platform::clock::Clock;

use super::deadlines::{
    ardabil, closure, env_clocked, meeting_in_session, notifications, small_group, tehran,
};
use super::*;

on_both_databases!(
    recusals_leave_members_out_of_an_items_quorum_and_votes,
    the_minutes_are_reviewed_then_signed,
    the_comment_window_is_a_legal_calendar_deadline,
);

impl Env {
    fn member_req<T>(&self, m: &pb::Member, msg: T) -> Request<T> {
        let id = m.name.rsplit('/').next().unwrap().to_owned();
        authed(
            self.keys.bearer_with(Role::Member, |t| t.member = Some(id)),
            msg,
        )
    }

    async fn declare(
        &self,
        as_member: Option<&pb::Member>,
        meeting: &str,
        item: i32,
        member: &str,
    ) -> Result<pb::Meeting, tonic::Status> {
        let msg = pb::DeclareConflictRequest {
            name: meeting.into(),
            etag: String::new(),
            agenda_item: item,
            member: member.into(),
            reason: "خویشاوندی با طرف پرونده".into(),
        };
        let req = match as_member {
            Some(m) => self.member_req(m, msg),
            None => self.sec(msg),
        };
        self.wg
            .clone()
            .declare_conflict(req)
            .await
            .map(|r| r.into_inner().meeting.unwrap())
    }

    async fn vote(
        &self,
        meeting: &str,
        item: i32,
        for_: &[&pb::Member],
        against: &[&pb::Member],
    ) -> Result<pb::Resolution, tonic::Status> {
        let cast = |ms: &[&pb::Member], v: pb::Vote| -> Vec<pb::CastVote> {
            ms.iter()
                .map(|m| pb::CastVote {
                    member: m.name.clone(),
                    vote: v as i32,
                })
                .collect()
        };
        let mut votes = cast(for_, pb::Vote::For);
        votes.extend(cast(against, pb::Vote::Against));
        self.wg
            .clone()
            .record_resolution(self.sec(pb::RecordResolutionRequest {
                name: meeting.into(),
                text: format!("مصوبهٔ بند {item}"),
                responsible_body: "ادارهٔ کل زندان‌ها".into(),
                deadline_days: 30,
                votes,
                agenda_item: item,
                ..Default::default()
            }))
            .await
            .map(|r| r.into_inner().resolution.unwrap())
    }
}

fn code(s: &tonic::Status) -> (Code, String) {
    (s.code(), reason(s))
}

fn precondition(r: &str) -> (Code, String) {
    (Code::FailedPrecondition, r.to_owned())
}

async fn recusals_leave_members_out_of_an_items_quorum_and_votes(b: Backend) {
    let e = env(b).await;
    let (g, members, institutions) = e.seed_group().await;
    // members[6] represents institutions[0], members[7] institutions[1].
    let referral = e.refer(&institutions[1].0, "اختلاف خانوادگی").await;
    let m = e.schedule(&g, "جلسهٔ دوم").await;
    let item = |title: &str, subject: &str| pb::AgendaItem {
        title: title.into(),
        subject: subject.into(),
        ..Default::default()
    };
    let set = e
        .set_agenda(
            &m,
            vec![
                item("گزارش نهاد یکم", &institutions[0].0),
                item("ارجاع به نهاد دوم", &referral.name),
                item("برنامهٔ سال", ""),
            ],
        )
        .await
        .unwrap();
    // Whose each subject is, as the registry and the referral service answered.
    assert_eq!(set.agenda[0].subject_institution, institutions[0].0);
    assert_eq!(set.agenda[1].subject_institution, institutions[1].0);
    assert_eq!(set.agenda[2].subject_institution, "");
    // Before the agenda is final a conflict cannot be declared (its items may move).
    let err = e
        .declare(None, &m.name, 3, &members[8].name)
        .await
        .unwrap_err();
    assert_eq!(code(&err), precondition("AGENDA_NOT_FINAL"));

    // Nine of twelve voting members present: the chair, five officials, three representatives.
    let present: Vec<&pb::Member> = members[..9].iter().collect();
    e.attend(&m.name, &present).await.unwrap();
    let started = e.start(&m.name).await;
    let recused = |mt: &pb::Meeting| -> Vec<(i32, String, bool)> {
        mt.recusals
            .iter()
            .map(|r| (r.agenda_item, r.member.clone(), r.automatic))
            .collect()
    };
    assert_eq!(
        recused(&started),
        vec![
            (1, members[6].name.clone(), true),
            (2, members[7].name.clone(), true)
        ]
    );

    // A recused member's vote is refused.
    let err = e
        .vote(&m.name, 1, &[&members[0], &members[6]], &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err), precondition("RECUSED_MEMBER_VOTE"));

    // The same four and members[6] for, out of nine: adopted for the meeting as a whole;
    // on item 1, without members[6], four of eight is no majority: the recusal turns it.
    let five: Vec<&pb::Member> = [0, 1, 2, 3, 6].iter().map(|i| &members[*i]).collect();
    let whole = e.vote(&m.name, 0, &five, &[]).await.unwrap();
    assert!(whole.adopted);
    let on_item = e.vote(&m.name, 1, &five[..4], &[]).await.unwrap();
    assert!(!on_item.adopted, "{on_item:?}");
    assert_eq!((on_item.votes_for, on_item.agenda_item), (4, 1));

    // Declared conflicts: a member for themself; not for another; not twice; not after voting.
    let err = e
        .declare(Some(&members[4]), &m.name, 3, &members[5].name)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let after = e.declare(Some(&members[4]), &m.name, 3, "").await.unwrap();
    assert!(after.recusals.iter().any(|r| r.agenda_item == 3
        && r.member == members[4].name
        && !r.automatic
        && !r.reason.is_empty()));
    let err = e
        .declare(None, &m.name, 1, &members[6].name)
        .await
        .unwrap_err();
    assert_eq!(code(&err), precondition("ALREADY_RECUSED"));
    let err = e
        .declare(None, &m.name, 1, &members[1].name)
        .await
        .unwrap_err();
    assert_eq!(code(&err), precondition("CONFLICT_AFTER_VOTE"));
    invalid_field(
        e.declare(None, &m.name, 4, &members[1].name).await,
        "agenda_item",
    );

    // Item 3: nine present, members[4] recused: eight, quorum (seven). members[5] declares
    // too: seven, still quorum; members[8] declares: six, and the item has no quorum,
    // which members[8] would otherwise have made.
    e.vote(&m.name, 3, &[&members[0]], &[]).await.unwrap();
    e.declare(None, &m.name, 3, &members[5].name).await.unwrap();
    e.vote(&m.name, 3, &[&members[0]], &[]).await.unwrap();
    e.declare(Some(&members[8]), &m.name, 3, "").await.unwrap();
    let err = e.vote(&m.name, 3, &[&members[0]], &[]).await.unwrap_err();
    assert_eq!(code(&err), precondition("NO_QUORUM_FOR_ITEM"));
    // The meeting as a whole still has its quorum.
    e.vote(&m.name, 0, &[&members[0]], &[]).await.unwrap();

    // Numbered per meeting: ۲-۱ to ۲-۵ (the group's first meeting was not held: this is its
    // first, number 1).
    let listed = e.get(&m.name).await;
    let numbers: Vec<String> = listed
        .resolutions
        .iter()
        .map(|r| r.display_number.clone())
        .collect();
    assert_eq!(numbers, ["۱-۱", "۱-۲", "۱-۳", "۱-۴", "۱-۵"]);

    // The minutes name the recused members, per item, and the hash covers them.
    let closed = e.approve(&m.name, "بحث").await;
    assert_eq!(closed.minutes_hash_version, 3);
    assert_eq!(
        closed.content_sha256,
        MinutesContentV3::of(&closed).unwrap().sha256()
    );
    let html = e.export(&m.name).await.html;
    assert!(html.contains("کناره‌گیری به سبب تعارض منافع"), "{html}");
    // Names are printed as a Persian reader reads them (the document kit's numerals).
    assert!(
        html.contains(&mosharekat_persian::digits::to_persian_digits(
            &members[6].full_name
        ))
    );
    assert!(html.contains("۱. گزارش نهاد یکم") && html.contains("۳. برنامهٔ سال"));
    assert!(!html.contains("<li>1."));
}

async fn the_minutes_are_reviewed_then_signed(b: Backend) {
    let clock = Clock::manual(tehran(2025, 5, 3, 9, 0));
    let e = env_clocked(b, clock.clone(), SharedCalendar::shipped()).await;
    let (g, members) = small_group(&e).await;
    // The chair and the first official attend; the second official does not.
    let m = meeting_in_session(&e, &g, &members[..2], tehran(2025, 5, 3, 10, 0)).await;
    let (chair, attendee, absent) = (&members[0], &members[1], &members[2]);
    let adopted = e.vote(&m.name, 0, &[chair, attendee], &[]).await.unwrap();
    let mut responsible = pb::RecordResolutionRequest {
        name: m.name.clone(),
        text: "پیگیری".into(),
        responsible_member: attendee.name.clone(),
        deadline_days: 10,
        votes: vec![
            pb::CastVote {
                member: chair.name.clone(),
                vote: pb::Vote::For as i32,
            },
            pb::CastVote {
                member: attendee.name.clone(),
                vote: pb::Vote::For as i32,
            },
        ],
        ..Default::default()
    };
    let assigned =
        e.wg.clone()
            .record_resolution(e.sec(responsible.clone()))
            .await
            .unwrap()
            .into_inner()
            .resolution
            .unwrap();
    responsible.votes.clear();
    let rejected =
        e.wg.clone()
            .record_resolution(e.sec(responsible))
            .await
            .unwrap()
            .into_inner()
            .resolution
            .unwrap();
    assert!(!rejected.adopted);
    assert_eq!(
        [&adopted, &assigned, &rejected].map(|r| r.display_number.clone()),
        ["۱-۱", "۱-۲", "۱-۳"]
    );

    let mut wg = e.wg.clone();
    let open = |discussion: &str| pb::OpenMinutesReviewRequest {
        name: m.name.clone(),
        etag: String::new(),
        discussion: discussion.into(),
    };
    let comment = |text: &str| pb::CommentOnMinutesRequest {
        name: m.name.clone(),
        etag: String::new(),
        text: text.into(),
    };
    let close = || pb::CloseMinutesReviewRequest {
        name: m.name.clone(),
        etag: String::new(),
    };
    let sign = |sha: &str| pb::SignMinutesRequest {
        name: m.name.clone(),
        etag: String::new(),
        content_sha256: sha.into(),
    };
    let approve = || pb::ApproveMinutesRequest {
        name: m.name.clone(),
        etag: String::new(),
        discussion: String::new(),
    };

    // Out of order: nothing to comment on, close or sign yet.
    let err = wg
        .comment_on_minutes(e.member_req(attendee, comment("نظر")))
        .await
        .unwrap_err();
    assert_eq!(code(&err), precondition("MINUTES_REVIEW_NOT_OPEN"));
    let err = wg.close_minutes_review(e.sec(close())).await.unwrap_err();
    assert_eq!(code(&err), precondition("MINUTES_REVIEW_NOT_OPEN"));
    let err = wg
        .sign_minutes(e.member_req(chair, sign(&"ab".repeat(32))))
        .await
        .unwrap_err();
    assert_eq!(code(&err), precondition("MEETING_STATE_CONFLICT"));

    // Opened by the secretary, not by a member.
    let err = wg
        .open_minutes_review(e.member_req(chair, open("پیش‌نویس")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let opened = wg
        .open_minutes_review(e.sec(open("پیش‌نویس مذاکرات")))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    let review = opened.review.clone().unwrap();
    assert_eq!(review.state, pb::MinutesReviewState::Open as i32);
    let err = wg
        .open_minutes_review(e.sec(open("دوباره")))
        .await
        .unwrap_err();
    assert_eq!(code(&err), precondition("MINUTES_REVIEW_ALREADY_OPENED"));
    // What the draft records is fixed now.
    let err = e.vote(&m.name, 0, &[chair], &[]).await.unwrap_err();
    assert_eq!(code(&err), precondition("MINUTES_UNDER_REVIEW"));
    // The attendees are told until when.
    let told = notifications(&e, &m.name).await;
    let open_notices: Vec<_> = told
        .iter()
        .filter(|n| n.text.contains("برای اظهارنظر باز است"))
        .map(|n| n.recipient_name.clone())
        .collect();
    assert_eq!(
        open_notices,
        [chair.full_name.clone(), attendee.full_name.clone()]
    );

    // Comments: by an attendee, not by a member who was absent, not by the secretariat.
    let err = wg
        .comment_on_minutes(e.member_req(absent, comment("نظر")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = wg
        .comment_on_minutes(e.sec(comment("نظر")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let commented = wg
        .comment_on_minutes(e.member_req(attendee, comment("بند دو اصلاح شود")))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    let comments = commented.review.unwrap().comments;
    assert_eq!(comments.len(), 1);
    assert_eq!(
        (comments[0].member.as_str(), comments[0].text.as_str()),
        (attendee.name.as_str(), "بند دو اصلاح شود")
    );

    // Approval waits for the window to be closed; a member cannot close it.
    let err = wg.approve_minutes(e.sec(approve())).await.unwrap_err();
    assert_eq!(code(&err), precondition("MINUTES_REVIEW_OPEN"));
    let err = wg
        .close_minutes_review(e.member_req(chair, close()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    wg.close_minutes_review(e.sec(close())).await.unwrap();
    let err = wg
        .comment_on_minutes(e.member_req(attendee, comment("دیر")))
        .await
        .unwrap_err();
    assert_eq!(code(&err), precondition("MINUTES_REVIEW_NOT_OPEN"));
    // The chair approves (the secretariat may, for them); no other member.
    let err = wg
        .approve_minutes(e.member_req(attendee, approve()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let closed = wg
        .approve_minutes(e.member_req(chair, approve()))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(
        closed.discussion, "پیش‌نویس مذاکرات",
        "the draft, as reviewed"
    );
    assert_eq!(closed.minutes_hash_version, 3);
    let sha = closed.content_sha256.clone();
    let told = notifications(&e, &m.name).await;
    let asked: Vec<_> = told
        .iter()
        .filter(|n| n.text.contains("منتظر امضای شماست"))
        .map(|n| n.recipient_name.clone())
        .collect();
    assert_eq!(asked, [chair.full_name.clone(), attendee.full_name.clone()]);

    // Signatures: the hash signed must be the minutes'; present members only, once each.
    let err = wg
        .sign_minutes(e.member_req(chair, sign(&"ab".repeat(32))))
        .await
        .unwrap_err();
    assert_eq!(code(&err), precondition("SIGNED_HASH_MISMATCH"));
    let err = wg
        .sign_minutes(e.member_req(absent, sign(&sha)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = wg.sign_minutes(e.sec(sign(&sha))).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    invalid_field(
        wg.sign_minutes(e.member_req(chair, sign("not a hash")))
            .await,
        "content_sha256",
    );
    clock.set(tehran(2025, 5, 4, 11, 0));
    let signed = wg
        .sign_minutes(e.member_req(chair, sign(&sha)))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(signed.signatures.len(), 1);
    let s = &signed.signatures[0];
    assert_eq!(
        (
            s.member.as_str(),
            s.content_sha256.as_str(),
            s.minutes_hash_version
        ),
        (chair.name.as_str(), sha.as_str(), 3)
    );
    assert_eq!(
        s.sign_time.as_ref().unwrap().seconds,
        tehran(2025, 5, 4, 11, 0).timestamp()
    );
    let err = wg
        .sign_minutes(e.member_req(chair, sign(&sha)))
        .await
        .unwrap_err();
    assert_eq!(code(&err), precondition("ALREADY_SIGNED"));
    // Signing changes nothing the hash covers.
    let v = e.verify(&m.name).await.unwrap();
    assert!(v.intact && v.stored_sha256 == sha, "{v:?}");
    // The export shows who signed and when, and who has not yet.
    let html = e.export(&m.name).await.html;
    assert!(html.contains("امضا شد: ۱۴۰۴/۰۲/۱۴ ۱۱:۰۰"), "{html}");
    assert!(html.contains("هنوز امضا نشده"));
    assert!(
        html.contains("بند دو اصلاح شود"),
        "the comments are kept with the minutes"
    );

    // Extracts: of an adopted resolution, addressed to the body or member responsible.
    let extract = |name: &str| pb::ExportResolutionExtractRequest { name: name.into() };
    let x = wg
        .export_resolution_extract(e.sec(extract(&adopted.name)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(x.display_number, "۱-۱");
    for want in [
        "dir=\"rtl\"",
        "ابلاغیهٔ مصوبه",
        "۱-۱",
        "به: ادارهٔ کل زندان‌ها",
        "مصوبهٔ بند",
        "۱۴۰۴/۰۲/۱۳",
        &sha,
    ] {
        assert!(x.html.contains(want), "{want}: {}", x.html);
    }
    let x = wg
        .export_resolution_extract(e.member_req(attendee, extract(&assigned.name)))
        .await
        .unwrap()
        .into_inner();
    assert!(
        x.html.contains(&format!("به: {}", attendee.full_name)),
        "{}",
        x.html
    );
    let err = wg
        .export_resolution_extract(e.sec(extract(&rejected.name)))
        .await
        .unwrap_err();
    assert_eq!(code(&err), precondition("RESOLUTION_NOT_ADOPTED"));
    // Sent on approval: recorded, and the member responsible told.
    let got = wg
        .get_resolution(e.sec(pb::GetResolutionRequest {
            name: assigned.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .resolution
        .unwrap();
    assert!(got.extract_send_time.is_some());
    let told = notifications(&e, &assigned.name).await;
    assert!(
        told.iter()
            .any(|n| n.text.contains("ابلاغیهٔ") && n.recipient_name == attendee.full_name),
        "{told:?}"
    );
}

async fn the_comment_window_is_a_legal_calendar_deadline(b: Backend) {
    // Saturday 1404/02/13: a window of three days ends with Tuesday 02/16.
    let clock = Clock::manual(tehran(2025, 5, 3, 9, 0));
    let calendar = SharedCalendar::shipped();
    let e = env_clocked(b, clock.clone(), calendar.clone()).await;
    let (g, members) = small_group(&e).await;
    let m = meeting_in_session(&e, &g, &members[..2], tehran(2025, 5, 3, 10, 0)).await;
    let mut wg = e.wg.clone();
    let opened = wg
        .open_minutes_review(e.sec(pb::OpenMinutesReviewRequest {
            name: m.name.clone(),
            etag: String::new(),
            discussion: "پیش‌نویس".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    let window = opened.review.unwrap().window.unwrap();
    assert_eq!(
        (window.last_day.as_str(), window.days_counted),
        ("1404/02/16", 3)
    );
    let comment = |text: &str| {
        e.member_req(
            &members[1],
            pb::CommentOnMinutesRequest {
                name: m.name.clone(),
                etag: String::new(),
                text: text.into(),
            },
        )
    };
    // The last minute of its last day, then the first after it.
    clock.set(tehran(2025, 5, 6, 23, 59));
    wg.comment_on_minutes(comment("به موقع")).await.unwrap();
    clock.set(tehran(2025, 5, 7, 0, 0));
    let err = wg.comment_on_minutes(comment("دیر")).await.unwrap_err();
    assert_eq!(code(&err), precondition("COMMENT_WINDOW_PASSED"));

    // Ardabil closed on 02/16, published late: the window ends with Wednesday 02/17, the
    // attendees are told, and the comment is on time again.
    clock.set(tehran(2025, 5, 5, 10, 0));
    let app = &e.services.2.meetings;
    app.apply_publication(&closure(Scope::Province(ardabil()), 1404, 2, 16))
        .await
        .unwrap();
    let moved = e.get(&m.name).await.review.unwrap().window.unwrap();
    assert_eq!(moved.last_day, "1404/02/17");
    assert!(!moved.explanation.is_empty());
    let told = notifications(&e, &m.name).await;
    assert!(
        told.iter().any(|n| n.text.contains("مهلت اظهارنظر")),
        "{told:?}"
    );
    clock.set(tehran(2025, 5, 7, 0, 0));
    wg.comment_on_minutes(comment("پس از جابه‌جایی"))
        .await
        .unwrap();
    // A second time changes nothing.
    app.apply_publication(&closure(Scope::Province(ardabil()), 1404, 2, 16))
        .await
        .unwrap();
    assert_eq!(
        e.get(&m.name)
            .await
            .review
            .unwrap()
            .window
            .unwrap()
            .last_day,
        "1404/02/17"
    );
}
