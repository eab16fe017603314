//! Who may call what: every RPC the meeting service serves against every role.

use super::*;

on_both_databases!(every_rpc_against_every_role);

/// Every RPC of the meeting service and of the common services it serves (from the
/// descriptors, so that a new RPC without a row fails) × every role: the roles of
/// `api.rs` (MANAGERS, READERS, REPORTERS, COMMENTERS), of the audit log and of the stalled events
/// get past the role check, every other role is PERMISSION_DENIED.
async fn every_rpc_against_every_role(b: Backend) {
    use Role::*;
    const MANAGERS: &[Role] = &[Admin, Secretary];
    const READERS: &[Role] = &[Admin, Secretary, Member, Auditor, Service];
    const REPORTERS: &[Role] = &[Admin, Secretary, Member];
    const AUDITORS: &[Role] = &[Admin, Auditor];
    let table: &[mosharekat_testkit::Row] = &[
        ("CreateWorkingGroup", MANAGERS),
        ("GetWorkingGroup", READERS),
        ("ListWorkingGroups", READERS),
        ("UpdateWorkingGroup", MANAGERS),
        ("SeatMember", MANAGERS),
        ("ListMembers", READERS),
        ("UnseatMember", MANAGERS),
        ("ScheduleMeeting", MANAGERS),
        ("GetMeeting", READERS),
        ("ListMeetings", READERS),
        ("RescheduleMeeting", MANAGERS),
        ("PostponeMeeting", MANAGERS),
        ("CancelMeeting", MANAGERS),
        ("SetAgenda", MANAGERS),
        ("FinalizeAgenda", MANAGERS),
        ("RecordAttendance", MANAGERS),
        ("StartMeeting", MANAGERS),
        ("RecordResolution", MANAGERS),
        ("ApproveMinutes", REPORTERS),
        ("VerifyMinutes", READERS),
        ("ExportMinutes", READERS),
        ("DeclareConflict", REPORTERS),
        ("OpenMinutesReview", MANAGERS),
        ("CommentOnMinutes", &[Member]),
        ("CloseMinutesReview", MANAGERS),
        ("SignMinutes", &[Member]),
        ("ExportResolutionExtract", READERS),
        ("GetResolution", READERS),
        ("ListResolutions", READERS),
        ("ReportResolutionProgress", REPORTERS),
        ("CancelResolution", MANAGERS),
        ("ListAuditRecords", AUDITORS),
        ("VerifyAuditChain", AUDITORS),
        ("ListStalledEvents", AUDITORS),
        ("ResolveStalledEvent", &[Admin]),
        ("StreamNotifications", &[Service]),
        ("AcknowledgeNotification", &[Service]),
        (
            "ListNotifications",
            &[
                Admin,
                RegistryOfficer,
                JudicialOfficer,
                CenterOfficer,
                Institution,
                Member,
                Secretary,
                Auditor,
            ],
        ),
    ];
    let e = env(b).await;
    let (inst, _) = e.institution(1, true).await;
    let id = inst.trim_start_matches("institutions/");
    let cells = mosharekat_testkit::every_rpc_against_every_role(
        lazy(&e.services.2.uri()),
        &e.keys,
        id,
        &[
            "mosharekat.meeting.v1.MeetingService",
            "mosharekat.common.v1.AuditService",
            "mosharekat.common.v1.StalledEventService",
            "mosharekat.common.v1.NotificationService",
        ],
        table,
    )
    .await;
    assert_eq!(cells, table.len() * Role::ALL.len());
}
