//! Who sees and does what: institutions see only their own, and every RPC against every role.

use super::*;

on_both_databases!(
    institutions_see_only_their_own,
    every_rpc_against_every_role
);

async fn institutions_see_only_their_own(b: Backend) {
    let e = env(b).await;
    let a = e
        .institution(
            8,
            &[
                reg::PermittedAction::FileComplaint,
                reg::PermittedAction::AcceptReferrals,
            ],
        )
        .await;
    let bb = e
        .institution(
            9,
            &[
                reg::PermittedAction::FileComplaint,
                reg::PermittedAction::AcceptReferrals,
            ],
        )
        .await;
    let mut c = e.cases.clone();
    let fb = e
        .draft(&bb, complaint(pb::FilingKind::Complaint, true))
        .await;
    let rb = e.offer(&bb).await.unwrap();
    assert_eq!(
        c.get_filing(e.as_inst(
            &a,
            pb::GetFilingRequest {
                name: fb.name.clone()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    assert_eq!(
        c.submit_filing(e.as_inst(
            &a,
            pb::SubmitFilingRequest {
                name: fb.name.clone(),
                etag: String::new()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    assert_eq!(
        c.withdraw_filing(e.as_inst(
            &a,
            pb::WithdrawFilingRequest {
                name: fb.name.clone(),
                etag: String::new(),
                reason: String::new()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    assert_eq!(
        e.read_as(&a, &rb.name).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        c.accept_referral(e.as_inst(
            &a,
            pb::AcceptReferralRequest {
                name: rb.name.clone(),
                etag: String::new()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    let lf = c
        .list_filings(e.as_inst(
            &a,
            pb::ListFilingsRequest {
                institution: bb.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(lf.filings.is_empty());
    let lr = c
        .list_referrals(e.as_inst(&a, pb::ListReferralsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(lr.referrals.is_empty());
    // Filing in another institution's name is refused.
    let mut forged = complaint(pb::FilingKind::Complaint, true);
    forged.institution = bb.name.clone();
    assert_eq!(
        c.create_filing(e.as_inst(
            &a,
            pb::CreateFilingRequest {
                request_id: String::new(),
                filing: Some(forged)
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::PermissionDenied
    );
    // B sees its own.
    let own = c
        .list_filings(e.as_inst(&bb, pb::ListFilingsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.filings.len(), 1);
    // Roles outside the case see nothing.
    assert_eq!(
        c.get_filing(e.as_role(
            Role::Secretary,
            pb::GetFilingRequest {
                name: fb.name.clone()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        c.create_referral(e.as_inst(&a, pb::CreateReferralRequest::default()))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    // A centre officer refers only for the centre.
    let mut court = dispute(&a);
    court.source = pb::ReferralSource::Court as i32;
    assert_eq!(
        c.create_referral(e.as_role(
            Role::CenterOfficer,
            pb::CreateReferralRequest {
                request_id: String::new(),
                referral: Some(court)
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::PermissionDenied
    );
}

/// Every RPC of the referral service and of the common services it serves (from the
/// descriptors, so that a new RPC without a row fails) × every role: the roles of
/// `rules.rs` (FILERS, CLERKS, REFERRERS, HANDLERS and the readers), of the audit log
/// and of the stalled events get past the role check, every other role is
/// PERMISSION_DENIED.
async fn every_rpc_against_every_role(b: Backend) {
    use Role::*;
    const FILERS: &[Role] = &[Admin, Institution];
    const FILING_READERS: &[Role] = &[Admin, Auditor, Service, Institution, JudicialOfficer];
    const CLERKS: &[Role] = &[Admin, JudicialOfficer];
    const REFERRERS: &[Role] = &[Admin, JudicialOfficer, CenterOfficer];
    const REFERRAL_READERS: &[Role] = &[
        Admin,
        Auditor,
        Service,
        Institution,
        JudicialOfficer,
        CenterOfficer,
    ];
    const HANDLERS: &[Role] = &[Admin, Institution];
    const AUDITORS: &[Role] = &[Admin, Auditor];
    let table: &[mosharekat_testkit::Row] = &[
        ("CreateFiling", FILERS),
        ("GetFiling", FILING_READERS),
        ("ListFilings", FILING_READERS),
        ("UpdateFiling", FILERS),
        ("SubmitFiling", FILERS),
        ("WithdrawFiling", FILERS),
        ("RegisterFiling", CLERKS),
        ("RejectFiling", CLERKS),
        ("CloseFiling", CLERKS),
        ("SealFilingParty", CLERKS),
        ("CreateReferral", REFERRERS),
        ("GetReferral", REFERRAL_READERS),
        ("ListReferrals", REFERRAL_READERS),
        ("AcceptReferral", HANDLERS),
        ("DeclineReferral", HANDLERS),
        ("RecordProgress", HANDLERS),
        ("ResolveReferral", HANDLERS),
        ("ReturnReferral", HANDLERS),
        ("ExtendReferral", REFERRERS),
        ("WithdrawReferral", REFERRERS),
        ("ReassignReferral", REFERRERS),
        ("RequestExtension", HANDLERS),
        ("RefuseExtension", REFERRERS),
        ("SealReferralParty", REFERRERS),
        (
            "SuggestInstitutions",
            &[Admin, CenterOfficer, JudicialOfficer, Auditor, Service],
        ),
        (
            "GetStatistics",
            &[Service, Admin, Auditor, CenterOfficer, Secretary],
        ),
        ("ListReadRecords", AUDITORS),
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
    let inst = e.filer(61).await;
    let cells = mosharekat_testkit::every_rpc_against_every_role(
        lazy(&e.referral.as_ref().unwrap().uri()),
        &e.keys,
        &inst.id,
        &[
            "mosharekat.referral.v1.ReferralService",
            "mosharekat.common.v1.AuditService",
            "mosharekat.common.v1.StalledEventService",
            "mosharekat.common.v1.NotificationService",
        ],
        table,
    )
    .await;
    assert_eq!(cells, table.len() * Role::ALL.len());
}
