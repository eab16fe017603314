//! Bad input: INVALID_ARGUMENT naming the field.

use super::*;

on_both_databases!(
    bad_input_names_the_field,
    malformed_bodies_are_invalid_argument,
);

async fn bad_input_names_the_field(b: Backend) {
    let e = env(b).await;
    let mut wg = e.wg.clone();
    let g = e.group().await;
    invalid_field(
        wg.create_working_group(e.sec(pb::CreateWorkingGroupRequest {
            request_id: String::new(),
            working_group: Some(pb::WorkingGroup {
                province: String::new(),
                title: "t".into(),
                ..Default::default()
            }),
        }))
        .await
        .map(|_| ()),
        "working_group.province",
    );
    invalid_field(
        wg.create_working_group(e.sec(pb::CreateWorkingGroupRequest {
            request_id: String::new(),
            working_group: None,
        }))
        .await
        .map(|_| ()),
        "working_group",
    );
    let seat = |f: &dyn Fn(&mut pb::Member)| {
        let mut m = pb::Member {
            full_name: "نام".into(),
            national_code: code_for(50),
            seat: pb::Seat::Official as i32,
            position: pb::Position::ChiefInspector as i32,
            ..Default::default()
        };
        f(&mut m);
        pb::SeatMemberRequest {
            parent: g.name.clone(),
            request_id: String::new(),
            member: Some(m),
        }
    };
    invalid_field(
        wg.seat_member(e.sec(seat(&|m| m.full_name = String::new())))
            .await
            .map(|_| ()),
        "member.full_name",
    );
    invalid_field(
        wg.seat_member(e.sec(seat(&|m| m.national_code = "0076229646".into())))
            .await
            .map(|_| ()),
        "member.national_code",
    );
    invalid_field(
        wg.seat_member(e.sec(seat(&|m| m.seat = 9)))
            .await
            .map(|_| ()),
        "member.seat",
    );
    invalid_field(
        wg.seat_member(e.sec(seat(&|m| m.position = 0)))
            .await
            .map(|_| ()),
        "member.position",
    );
    invalid_field(
        wg.seat_member(e.sec(seat(&|m| {
            m.seat = pb::Seat::InstitutionRepresentative as i32;
            m.institution = "x".into();
        })))
        .await
        .map(|_| ()),
        "member.institution",
    );
    invalid_field(
        wg.seat_member(e.sec(pb::SeatMemberRequest {
            parent: "nope".into(),
            request_id: String::new(),
            member: None,
        }))
        .await
        .map(|_| ()),
        "parent",
    );
    invalid_field(
        wg.schedule_meeting(e.sec(pb::ScheduleMeetingRequest {
            parent: g.name.clone(),
            request_id: String::new(),
            meeting: Some(pb::Meeting {
                title: "t".into(),
                place: "p".into(),
                ..Default::default()
            }),
        }))
        .await
        .map(|_| ()),
        "meeting.scheduled_time",
    );
    let m = e.schedule_at(&g, "t", "p", 10).await;
    for name in [
        "",
        "working-groups/x/meetings/0",
        "working-groups/x/meetings/abc",
        "meetings/1",
    ] {
        invalid_field(
            wg.get_meeting(e.sec(pb::GetMeetingRequest { name: name.into() }))
                .await
                .map(|_| ()),
            "name",
        );
    }
    invalid_field(
        wg.record_attendance(e.sec(pb::RecordAttendanceRequest {
            name: m.name.clone(),
            etag: String::new(),
            attendance: vec![pb::Attendance {
                member: "working-groups/x/members/y".into(),
                status: 1,
                substitute_name: String::new(),
            }],
            deputy_chair: String::new(),
        }))
        .await
        .map(|_| ()),
        "attendance[0].member",
    );
    invalid_field(
        e.set_agenda(
            &m,
            vec![pb::AgendaItem {
                title: String::new(),
                ..Default::default()
            }],
        )
        .await
        .map(|_| ()),
        "items[0].title",
    );
    invalid_field(
        e.set_agenda(
            &m,
            vec![pb::AgendaItem {
                title: "t".into(),
                subject: "users/1".into(),
                ..Default::default()
            }],
        )
        .await
        .map(|_| ()),
        "items[0].subject",
    );
    invalid_field(
        wg.postpone_meeting(e.sec(pb::PostponeMeetingRequest {
            name: m.name.clone(),
            etag: String::new(),
            reason: String::new(),
        }))
        .await
        .map(|_| ()),
        "reason",
    );
    invalid_field(
        wg.reschedule_meeting(e.sec(pb::RescheduleMeetingRequest {
            name: m.name.clone(),
            etag: String::new(),
            scheduled_time: None,
            place: String::new(),
        }))
        .await
        .map(|_| ()),
        "scheduled_time",
    );
    invalid_field(
        wg.list_resolutions(e.sec(pb::ListResolutionsRequest {
            parent: g.name.clone(),
            state: 42,
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "state",
    );
    invalid_field(
        wg.report_resolution_progress(e.sec(pb::ReportResolutionProgressRequest {
            name: format!("{}/resolutions/x", g.name),
            etag: String::new(),
            progress: 101,
            note: String::new(),
        }))
        .await
        .map(|_| ()),
        "progress",
    );
    invalid_field(
        wg.update_working_group(e.sec(pb::UpdateWorkingGroupRequest {
            working_group: Some(g.clone()),
            update_mask: None,
        }))
        .await
        .map(|_| ()),
        "update_mask",
    );
    invalid_field(
        wg.update_working_group(e.sec(pb::UpdateWorkingGroupRequest {
            working_group: Some(g.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["province".into()],
            }),
        }))
        .await
        .map(|_| ()),
        "update_mask.paths[0]",
    );
    invalid_field(
        wg.update_working_group(e.sec(pb::UpdateWorkingGroupRequest {
            working_group: Some(pb::WorkingGroup {
                title: String::new(),
                ..g.clone()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["title".into()],
            }),
        }))
        .await
        .map(|_| ()),
        "working_group.title",
    );
    invalid_field(
        wg.list_working_groups(e.sec(pb::ListWorkingGroupsRequest {
            page_token: "x".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "page_token",
    );
    invalid_field(
        wg.list_members(e.sec(pb::ListMembersRequest {
            parent: "working-groups/".into(),
            include_vacant: false,
        }))
        .await
        .map(|_| ()),
        "parent",
    );
    invalid_field(
        wg.unseat_member(e.sec(pb::UnseatMemberRequest {
            name: "working-groups/x/members/".into(),
            etag: String::new(),
            reason: String::new(),
        }))
        .await
        .map(|_| ()),
        "name",
    );
    invalid_field(
        wg.record_resolution(e.sec(pb::RecordResolutionRequest {
            name: m.name.clone(),
            text: String::new(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "text",
    );
    invalid_field(
        wg.record_resolution(e.sec(pb::RecordResolutionRequest {
            name: m.name.clone(),
            text: "t".into(),
            deadline: Some(prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            }),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "deadline",
    );
    invalid_field(
        wg.record_resolution(e.sec(pb::RecordResolutionRequest {
            name: m.name.clone(),
            text: "t".into(),
            votes: vec![pb::CastVote {
                member: "x".into(),
                vote: 0,
            }],
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "votes[0].vote",
    );
    invalid_field(
        wg.record_resolution(e.sec(pb::RecordResolutionRequest {
            name: m.name.clone(),
            request_id: "bad id".into(),
            text: "t".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "request_id",
    );
    invalid_field(
        wg.approve_minutes(e.sec(pb::ApproveMinutesRequest {
            name: m.name.clone(),
            etag: String::new(),
            discussion: "\u{202E}".into(),
        }))
        .await
        .map(|_| ()),
        "discussion",
    );
    invalid_field(
        wg.cancel_resolution(e.sec(pb::CancelResolutionRequest {
            name: format!("{}/resolutions/x", g.name),
            etag: String::new(),
            reason: String::new(),
        }))
        .await
        .map(|_| ()),
        "reason",
    );
    invalid_field(
        wg.get_resolution(e.sec(pb::GetResolutionRequest {
            name: "resolutions/x".into(),
        }))
        .await
        .map(|_| ()),
        "name",
    );
    invalid_field(
        wg.verify_minutes(e.sec(pb::VerifyMinutesRequest { name: "x".into() }))
            .await
            .map(|_| ()),
        "name",
    );
    invalid_field(
        wg.export_minutes(e.sec(pb::ExportMinutesRequest { name: "x".into() }))
            .await
            .map(|_| ()),
        "name",
    );
    invalid_field(
        wg.record_attendance(e.sec(pb::RecordAttendanceRequest {
            name: m.name.clone(),
            etag: String::new(),
            attendance: vec![],
            deputy_chair: "working-groups/x/members/y".into(),
        }))
        .await
        .map(|_| ()),
        "deputy_chair",
    );
    // Stale etag.
    let err = wg
        .postpone_meeting(e.sec(pb::PostponeMeetingRequest {
            name: m.name.clone(),
            etag: "999".into(),
            reason: "x".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    // Roles.
    let err = wg
        .schedule_meeting(authed(
            e.keys.bearer(Role::Member, None),
            pb::ScheduleMeetingRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = wg
        .get_meeting(authed(
            e.keys.bearer(Role::JudicialOfficer, None),
            pb::GetMeetingRequest {
                name: m.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        wg.get_meeting(authed(
            e.keys.bearer(Role::Auditor, None),
            pb::GetMeetingRequest {
                name: m.name.clone()
            }
        ))
        .await
        .is_ok()
    );
}

/// Bytes that decode to no message, sent to every method of the meeting service and of
/// its audit service, are INVALID_ARGUMENT with the usual details, never INTERNAL.
async fn malformed_bodies_are_invalid_argument(b: Backend) {
    let e = env(b).await;
    let ch = lazy(&e.services.2.uri());
    let bearer = e.keys.bearer(Role::Admin, None);
    let services = [
        "mosharekat.meeting.v1.MeetingService",
        "mosharekat.common.v1.AuditService",
    ];
    let n =
        mosharekat_platform::testing::malformed_bodies_are_invalid_argument(ch, &bearer, &services)
            .await;
    assert!(n >= 40, "{n} calls checked");
}
