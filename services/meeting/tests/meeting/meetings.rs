//! Meetings: the seed's first meeting held, and the minutes keeping the meeting's roster.

use mosharekat_persian::digits::to_persian_number;

use super::*;

on_both_databases!(
    the_seeds_first_meeting,
    the_minutes_keep_the_roster_of_the_meeting,
);

async fn the_seeds_first_meeting(b: Backend) {
    let e = env(b).await;
    let mut wg = e.wg.clone();
    let (g, members, _) = e.seed_group().await;
    assert_eq!(members.len(), 13);
    assert!(
        !members.last().unwrap().voting,
        "the secretary does not vote"
    );
    // A seventh representative is refused.
    let seventh = e.institution(6, true).await;
    let err = e
        .seat(
            &g,
            30,
            pb::Seat::InstitutionRepresentative,
            pb::Position::Unspecified,
            &seventh.0,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "REPRESENTATIVES_FULL")
    );
    // A representative of an unlicensed institution is refused with the registry's reason.
    let g2 = e.group().await;
    let unlicensed = e.institution(7, false).await;
    let err = e
        .seat(
            &g2,
            31,
            pb::Seat::InstitutionRepresentative,
            pb::Position::Unspecified,
            &unlicensed.0,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "NO_LICENCE")
    );
    // A second chair is refused.
    let err = e
        .seat(&g, 32, pb::Seat::Chair, pb::Position::Unspecified, "")
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "CHAIR_TAKEN");

    // A referral to point the agenda at.
    let (inst, _) = e.institution(8, true).await;
    let referral = e.refer(&inst, "اختلاف").await;

    let m = e
        .schedule_at(&g, "نخستین جلسه", "دادگستری استان اردبیل", 3600)
        .await;
    assert_eq!((m.number, m.name.ends_with("/meetings/1")), (1, true));
    let item = |title: &str, subject: &str, standing: bool| pb::AgendaItem {
        title: title.into(),
        subject: subject.into(),
        standing_report: standing,
        ..Default::default()
    };
    // A pointer to nothing is refused, naming the item.
    let err = e
        .set_agenda(&m, vec![item("x", "referrals/0000", false)])
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["items[0].subject"]);
    e.set_agenda(
        &m,
        vec![
            item("گزارش ارجاع‌ها", "", true),
            item("پروندهٔ ارجاعی", &referral.name, false),
            item("نهاد همکار", &inst, false),
        ],
    )
    .await
    .unwrap();
    let m = wg
        .finalize_agenda(e.sec(pb::FinalizeAgendaRequest {
            name: m.name.clone(),
            etag: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert!(m.agenda_final);
    assert!(
        m.agenda[0]
            .figures
            .iter()
            .any(|f| f.label == "ارجاع‌ها به نهادها" && f.value == "1"),
        "{:?}",
        m.agenda[0].figures
    );

    // Attendance: six of twelve voting members is exactly half — no quorum.
    let attend = |ids: &[usize], status: pb::AttendanceStatus| -> Vec<pb::Attendance> {
        ids.iter()
            .map(|i| pb::Attendance {
                member: members[*i].name.clone(),
                status: status as i32,
                substitute_name: if status == pb::AttendanceStatus::Represented {
                    "جانشین".into()
                } else {
                    String::new()
                },
            })
            .collect()
    };
    wg.record_attendance(e.sec(pb::RecordAttendanceRequest {
        name: m.name.clone(),
        etag: String::new(),
        attendance: attend(&[0, 1, 2, 3, 4, 5, 12], pb::AttendanceStatus::Present),
        deputy_chair: String::new(),
    }))
    .await
    .unwrap();
    let err = wg
        .start_meeting(e.sec(pb::StartMeetingRequest {
            name: m.name.clone(),
            etag: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "NO_QUORUM");
    let m = wg
        .record_attendance(
            e.sec(pb::RecordAttendanceRequest {
                name: m.name.clone(),
                etag: String::new(),
                attendance: [
                    attend(&[6, 7], pb::AttendanceStatus::Present),
                    attend(&[8], pb::AttendanceStatus::Represented),
                    attend(&[9], pb::AttendanceStatus::Excused),
                ]
                .concat(),
                deputy_chair: members[1].name.clone(),
            }),
        )
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    let q = m.quorum.clone().unwrap();
    assert_eq!(
        (q.voting_members, q.voting_present, q.required, q.met),
        (12, 9, 7, true),
        "{q:?}"
    );
    let m = wg
        .start_meeting(e.sec(pb::StartMeetingRequest {
            name: m.name.clone(),
            etag: m.etag.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(m.state, pb::MeetingState::InSession as i32);

    // A resolution, voted by the present voting members.
    let votes: Vec<pb::CastVote> = [0, 1, 2, 3, 4, 5, 6, 7, 8]
        .iter()
        .map(|i| pb::CastVote {
            member: members[*i].name.clone(),
            vote: if *i < 7 {
                pb::Vote::For
            } else {
                pb::Vote::Abstain
            } as i32,
        })
        .collect();
    let r = wg
        .record_resolution(e.sec(pb::RecordResolutionRequest {
            name: m.name.clone(),
            request_id: String::new(),
            text: "ایجاد سامانهٔ ارجاع پرونده به نهادهای مردمی".into(),
            responsible_member: members[4].name.clone(),
            responsible_body: String::new(),
            deadline: Some(secs_from_now(90 * 86400)),
            votes,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .resolution
        .unwrap();
    assert!(r.adopted);
    assert_eq!(
        (r.votes_for, r.abstentions, r.state),
        (7, 2, pb::ResolutionState::Open as i32)
    );
    // The secretary does not vote.
    let err = wg
        .record_resolution(e.sec(pb::RecordResolutionRequest {
            name: m.name.clone(),
            text: "x".into(),
            votes: vec![pb::CastVote {
                member: members[12].name.clone(),
                vote: pb::Vote::For as i32,
            }],
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["votes[0].member"]);

    let m = e.approve(&m.name, "گزارش دبیر و بحث اعضا").await;
    assert_eq!(m.state, pb::MeetingState::Closed as i32);
    assert_eq!(m.content_sha256.len(), 64);
    let v = wg
        .verify_minutes(e.sec(pb::VerifyMinutesRequest {
            name: m.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(v.intact && v.stored_sha256 == m.content_sha256);
    // Any change now is refused.
    let refused = [
        wg.record_attendance(e.sec(pb::RecordAttendanceRequest {
            name: m.name.clone(),
            etag: String::new(),
            attendance: attend(&[10], pb::AttendanceStatus::Present),
            deputy_chair: String::new(),
        }))
        .await
        .map(|_| ()),
        e.set_agenda(&m, vec![]).await.map(|_| ()),
        wg.record_resolution(e.sec(pb::RecordResolutionRequest {
            name: m.name.clone(),
            text: "x".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        wg.cancel_meeting(e.sec(pb::CancelMeetingRequest {
            name: m.name.clone(),
            etag: String::new(),
            reason: "x".into(),
        }))
        .await
        .map(|_| ()),
        wg.approve_minutes(e.sec(pb::ApproveMinutesRequest {
            name: m.name.clone(),
            etag: String::new(),
            discussion: "y".into(),
        }))
        .await
        .map(|_| ()),
        wg.reschedule_meeting(e.sec(pb::RescheduleMeetingRequest {
            name: m.name.clone(),
            etag: String::new(),
            scheduled_time: Some(secs_from_now(7200)),
            place: String::new(),
        }))
        .await
        .map(|_| ()),
    ];
    for r in refused {
        assert_eq!(r.unwrap_err().code(), Code::FailedPrecondition);
    }

    // The export: right-to-left Persian HTML with the Jalali date and every attendee.
    let html = wg
        .export_minutes(e.sec(pb::ExportMinutesRequest {
            name: m.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .html;
    assert!(html.contains("<html lang=\"fa\" dir=\"rtl\">"));
    let jalali = mosharekat_persian::jalali::format_instant(
        chrono::DateTime::from_timestamp(m.scheduled_time.unwrap().seconds, 0).unwrap(),
    );
    assert!(html.contains(&jalali), "no Jalali date {jalali}");
    for i in [0usize, 1, 2, 3, 4, 5, 6, 7, 9] {
        assert!(
            // Names typed with Latin digits are printed with Persian ones.
            html.contains(&to_persian_number(&members[i].full_name)),
            "{} missing",
            members[i].full_name
        );
    }
    assert!(html.contains("جانشین"), "the substitute is named");
    assert!(html.contains("ایجاد سامانهٔ ارجاع"));

    // Follow-up: the responsible member reports progress; another member may not.
    let member_token = |m: &pb::Member| {
        e.keys.bearer_with(Role::Member, |r| {
            r.member = Some(m.name.rsplit('/').next().unwrap().to_owned())
        })
    };
    let err = wg
        .report_resolution_progress(authed(
            member_token(&members[3]),
            pb::ReportResolutionProgressRequest {
                name: r.name.clone(),
                etag: String::new(),
                progress: 10,
                note: "x".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let r2 = wg
        .report_resolution_progress(authed(
            member_token(&members[4]),
            pb::ReportResolutionProgressRequest {
                name: r.name.clone(),
                etag: String::new(),
                progress: 40,
                note: "پیش‌نویس آماده شد".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .resolution
        .unwrap();
    assert_eq!(
        (r2.state, r2.progress, r2.notes.len()),
        (pb::ResolutionState::InProgress as i32, 40, 1)
    );
    // Follow-up does not touch the approved minutes.
    let v = wg
        .verify_minutes(e.sec(pb::VerifyMinutesRequest {
            name: m.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(v.intact);
    let listed = wg
        .list_resolutions(e.sec(pb::ListResolutionsRequest {
            parent: g.name.clone(),
            state: pb::ResolutionState::InProgress as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.resolutions.len(), 1);
    // The etag a change returns is the stored one; a cancelled resolution takes no more progress.
    let read = wg
        .get_resolution(e.sec(pb::GetResolutionRequest {
            name: r.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .resolution
        .unwrap();
    assert_eq!(read, r2);
    let cancelled = wg
        .cancel_resolution(e.sec(pb::CancelResolutionRequest {
            name: r.name.clone(),
            etag: r2.etag.clone(),
            reason: "دیگر لازم نیست".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .resolution
        .unwrap();
    assert_eq!(cancelled.state, pb::ResolutionState::Cancelled as i32);
    let err = wg
        .report_resolution_progress(e.sec(pb::ReportResolutionProgressRequest {
            name: r.name.clone(),
            etag: String::new(),
            progress: 50,
            note: "x".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "RESOLUTION_STATE_CONFLICT");
    let second = e.schedule_at(&g, "دومین جلسه", "همان", 86400).await;
    assert_eq!(second.number, 2);
}

async fn the_minutes_keep_the_roster_of_the_meeting(b: Backend) {
    let e = env(b).await;
    let mut wg = e.wg.clone();
    let (g, members, institutions) = e.seed_group().await;
    // members[6] represents institutions[0].
    assert_eq!(members[6].institution, institutions[0].0);
    let m = e.schedule(&g, "نخستین جلسه").await;
    let voters: Vec<&pb::Member> = members[..9].iter().collect();
    let mut present = voters.clone();
    present.push(&members[12]);
    e.attend(&m.name, &present).await.unwrap();
    let started = e.start(&m.name).await;
    let q = started.quorum.clone().unwrap();
    assert_eq!((q.voting_members, q.voting_present, q.met), (12, 9, true));
    let r = e.resolve(&m.name, &voters, &members[4].name).await.unwrap();
    assert_eq!((r.votes_for, r.adopted), (9, true));

    // The first institution's licence is suspended: its representative's seat falls vacant,
    // as the licence-event consumer flags it.
    e.reg
        .clone()
        .suspend_licence(e.admin(reg::SuspendLicenceRequest {
            name: institutions[0].1.clone(),
            etag: String::new(),
            reason: "عدم ارائهٔ گزارش سالانه".into(),
        }))
        .await
        .unwrap();
    e.vacated(&g, &members[6].name, Duration::from_secs(10))
        .await;

    // The meeting in session still counts the seats it started with: the representative
    // sat and votes in it.
    let during = e.get(&m.name).await;
    let q = during.quorum.clone().unwrap();
    assert_eq!((q.voting_members, q.voting_present), (12, 9), "{q:?}");
    let r2 = e.resolve(&m.name, &voters, "").await.unwrap();
    assert_eq!((r2.votes_for, r2.adopted), (9, true));

    let closed = e.approve(&m.name, "گزارش دبیر").await;
    let q = closed.quorum.clone().unwrap();
    assert_eq!(
        (q.voting_members, q.voting_present, q.required, q.met),
        (12, 9, 7, true),
        "{q:?}"
    );
    assert!(
        q.explanation.starts_with("9 of 12 voting members present"),
        "{}",
        q.explanation
    );
    // The roster the meeting was held with is part of the minutes, without national codes.
    assert_eq!(closed.roster.len(), 13);
    let rep = closed
        .roster
        .iter()
        .find(|x| x.name == members[6].name)
        .unwrap();
    assert!(!rep.vacant, "the seat was held at the meeting");
    assert!(closed.roster.iter().all(|x| x.national_code.is_empty()));
    assert_eq!(closed.resolutions.len(), 2);
    assert!(closed.resolutions.iter().all(|r| r.votes_for == 9));
    let v = wg
        .verify_minutes(e.sec(pb::VerifyMinutesRequest {
            name: m.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(v.intact && v.stored_sha256 == closed.content_sha256);
    let read = e.get(&m.name).await;
    assert_eq!(read.quorum, closed.quorum);
    let html = wg
        .export_minutes(e.sec(pb::ExportMinutesRequest {
            name: m.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .html;
    assert!(html.contains("حد نصاب: ۹ نفر از ۱۲ عضو"), "{html}");
    assert!(html.contains(&to_persian_number(&members[6].full_name)));

    // A meeting scheduled after the vacancy sees the new roster: eleven voting seats.
    let next = e.schedule(&g, "دومین جلسه").await;
    assert_eq!(next.quorum.unwrap().voting_members, 11);
    let next = e.attend(&next.name, &present).await.unwrap();
    let q = next.quorum.unwrap();
    assert_eq!(
        (q.voting_members, q.voting_present, q.required),
        (11, 8, 6),
        "{q:?}"
    );
    assert!(
        next.roster.is_empty(),
        "no roster before the meeting starts"
    );
}
