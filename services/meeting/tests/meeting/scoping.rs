//! A child of another working group is not found.

use super::*;

on_both_databases!(a_child_of_another_group_is_not_found,);

async fn a_child_of_another_group_is_not_found(b: Backend) {
    use pb::Position as P;
    use pb::Seat as S;
    let e = env(b).await;
    let mut wg = e.wg.clone();
    let a = e.group().await;
    let other = e.group().await;
    let a_chair = e.seat(&a, 0, S::Chair, P::Unspecified, "").await.unwrap();
    let a_official = e
        .seat(&a, 1, S::Official, P::ChiefInspector, "")
        .await
        .unwrap();
    let b_chair = e
        .seat(&other, 2, S::Chair, P::Unspecified, "")
        .await
        .unwrap();
    let b_official = e
        .seat(&other, 3, S::Official, P::ChiefInspector, "")
        .await
        .unwrap();
    // A holds one meeting; B two, the second in session with a resolution.
    let a1 = e.schedule(&a, "جلسهٔ الف").await;
    e.schedule(&other, "جلسهٔ ب ۱").await;
    let b2 = e.schedule(&other, "جلسهٔ ب ۲").await;
    assert_eq!(b2.number, 2);
    e.attend(&b2.name, &[&b_chair, &b_official]).await.unwrap();
    e.start(&b2.name).await;
    let res = e
        .resolve(&b2.name, &[&b_chair, &b_official], &b_official.name)
        .await
        .unwrap();
    assert!(res.adopted);

    let member = under(&a, "members", &b_official.name);
    let resolution = under(&a, "resolutions", &res.name);
    let meeting = format!("{}/meetings/2", a.name);
    let not_found = |r: Result<(), tonic::Status>, name: &str, call: &str| {
        let err = r.expect_err(call);
        assert_eq!(err.code(), Code::NotFound, "{call}: {err:?}");
        assert_eq!(
            err.get_error_details()
                .resource_info()
                .map(|i| i.resource_name.clone()),
            Some(name.to_owned()),
            "{call}: the name as sent"
        );
    };

    // Resolutions: read, follow-up and cancel.
    not_found(
        wg.get_resolution(e.sec(pb::GetResolutionRequest {
            name: resolution.clone(),
        }))
        .await
        .map(|_| ()),
        &resolution,
        "GetResolution",
    );
    not_found(
        wg.report_resolution_progress(e.sec(pb::ReportResolutionProgressRequest {
            name: resolution.clone(),
            etag: String::new(),
            progress: 50,
            note: "x".into(),
        }))
        .await
        .map(|_| ()),
        &resolution,
        "ReportResolutionProgress",
    );
    not_found(
        wg.cancel_resolution(e.sec(pb::CancelResolutionRequest {
            name: resolution.clone(),
            etag: String::new(),
            reason: "x".into(),
        }))
        .await
        .map(|_| ()),
        &resolution,
        "CancelResolution",
    );
    // Members.
    not_found(
        wg.unseat_member(e.sec(pb::UnseatMemberRequest {
            name: member.clone(),
            etag: String::new(),
            reason: "x".into(),
        }))
        .await
        .map(|_| ()),
        &member,
        "UnseatMember",
    );
    // Meetings: every method that takes a meeting's name.
    let calls: Vec<(&str, Result<(), tonic::Status>)> = vec![
        (
            "GetMeeting",
            wg.get_meeting(e.sec(pb::GetMeetingRequest {
                name: meeting.clone(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "RescheduleMeeting",
            wg.reschedule_meeting(e.sec(pb::RescheduleMeetingRequest {
                name: meeting.clone(),
                etag: String::new(),
                scheduled_time: Some(secs_from_now(7200)),
                place: String::new(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "PostponeMeeting",
            wg.postpone_meeting(e.sec(pb::PostponeMeetingRequest {
                name: meeting.clone(),
                etag: String::new(),
                reason: "x".into(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "CancelMeeting",
            wg.cancel_meeting(e.sec(pb::CancelMeetingRequest {
                name: meeting.clone(),
                etag: String::new(),
                reason: "x".into(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "SetAgenda",
            wg.set_agenda(e.sec(pb::SetAgendaRequest {
                name: meeting.clone(),
                etag: String::new(),
                items: vec![],
            }))
            .await
            .map(|_| ()),
        ),
        (
            "FinalizeAgenda",
            wg.finalize_agenda(e.sec(pb::FinalizeAgendaRequest {
                name: meeting.clone(),
                etag: String::new(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "RecordAttendance",
            e.attend(&meeting, &[&b_chair]).await.map(|_| ()),
        ),
        (
            "StartMeeting",
            wg.start_meeting(e.sec(pb::StartMeetingRequest {
                name: meeting.clone(),
                etag: String::new(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "RecordResolution",
            e.resolve(&meeting, &[], "").await.map(|_| ()),
        ),
        (
            "ApproveMinutes",
            wg.approve_minutes(e.sec(pb::ApproveMinutesRequest {
                name: meeting.clone(),
                etag: String::new(),
                discussion: String::new(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "VerifyMinutes",
            wg.verify_minutes(e.sec(pb::VerifyMinutesRequest {
                name: meeting.clone(),
            }))
            .await
            .map(|_| ()),
        ),
        (
            "ExportMinutes",
            wg.export_minutes(e.sec(pb::ExportMinutesRequest {
                name: meeting.clone(),
            }))
            .await
            .map(|_| ()),
        ),
    ];
    for (call, r) in calls {
        not_found(r, &meeting, call);
    }
    // B's resources are untouched.
    let kept = wg
        .get_resolution(e.sec(pb::GetResolutionRequest {
            name: res.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .resolution
        .unwrap();
    assert_eq!(
        (kept.state, kept.notes.len()),
        (pb::ResolutionState::Open as i32, 0)
    );
    let b_seated = e.members(&other, true).await;
    assert_eq!(b_seated.len(), 2, "B's official is still seated");

    // Fields that point at members: a member of B, under either group's name, is no
    // member of A's meeting.
    for foreign in [&member, &b_official.name] {
        let err = wg
            .record_attendance(e.sec(pb::RecordAttendanceRequest {
                name: a1.name.clone(),
                etag: String::new(),
                attendance: vec![pb::Attendance {
                    member: foreign.clone(),
                    status: pb::AttendanceStatus::Present as i32,
                    substitute_name: String::new(),
                }],
                deputy_chair: foreign.clone(),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{foreign}");
        assert_eq!(
            fields(&err),
            ["attendance[0].member", "deputy_chair"],
            "{foreign}"
        );
    }
    e.attend(&a1.name, &[&a_chair, &a_official]).await.unwrap();
    e.start(&a1.name).await;
    for foreign in [&member, &b_official.name] {
        let err = wg
            .record_resolution(e.sec(pb::RecordResolutionRequest {
                name: a1.name.clone(),
                text: "t".into(),
                responsible_member: foreign.clone(),
                votes: vec![pb::CastVote {
                    member: foreign.clone(),
                    vote: pb::Vote::For as i32,
                }],
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{foreign}");
        assert_eq!(
            fields(&err),
            ["votes[0].member", "responsible_member"],
            "{foreign}"
        );
    }
    // A list of A's resolutions filtered on a member of B is refused, not answered from B.
    let err = wg
        .list_resolutions(e.sec(pb::ListResolutionsRequest {
            parent: a.name.clone(),
            responsible_member: b_official.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["responsible_member"]);
    let none = wg
        .list_resolutions(e.sec(pb::ListResolutionsRequest {
            parent: a.name.clone(),
            responsible_member: member.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(none.resolutions.is_empty());
}
