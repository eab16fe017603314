//! Bad input: INVALID_ARGUMENT naming the field.

use super::*;

on_both_databases!(
    bad_input_names_the_field,
    malformed_bodies_are_invalid_argument,
);

async fn bad_input_names_the_field(b: Backend) {
    let e = env(b).await;
    let inst = e.filer(11).await;
    let mut c = e.cases.clone();
    let filing = |f: &dyn Fn(&mut pb::Filing)| {
        let mut x = complaint(pb::FilingKind::Complaint, true);
        f(&mut x);
        pb::CreateFilingRequest {
            request_id: String::new(),
            filing: Some(x),
        }
    };
    let cases: Vec<(pb::CreateFilingRequest, &str)> = vec![
        (filing(&|f| f.kind = 0), "filing.kind"),
        (filing(&|f| f.kind = 9), "filing.kind"),
        (filing(&|f| f.activity_area = 100), "filing.activity_area"),
        (filing(&|f| f.authority = String::new()), "filing.authority"),
        (
            filing(&|f| f.province = "\u{202E}".into()),
            "filing.province",
        ),
        (filing(&|f| f.subject = "س".repeat(201)), "filing.subject"),
        (
            filing(&|f| f.description = "x".repeat(10_001)),
            "filing.description",
        ),
        (
            filing(&|f| f.parties[0].national_code = "1111111111".into()),
            "filing.parties[0].national_code",
        ),
        (
            filing(&|f| f.parties[0].role = 42),
            "filing.parties[0].role",
        ),
        (
            filing(&|f| f.parties[1].full_name = String::new()),
            "filing.parties[1].full_name",
        ),
        (
            filing(&|f| f.documents[0].sha256 = "zz".into()),
            "filing.documents[0].sha256",
        ),
        (
            filing(&|f| f.documents[0].size_bytes = -1),
            "filing.documents[0].size_bytes",
        ),
        (
            filing(&|f| f.documents[0].media_type = "pdf".into()),
            "filing.documents[0].media_type",
        ),
        (
            filing(&|f| f.consents[0].party_index = 7),
            "filing.consents[0].party_index",
        ),
        (
            filing(&|f| f.consents[0].basis = 0),
            "filing.consents[0].basis",
        ),
        (
            filing(&|f| f.consents[0].time = None),
            "filing.consents[0].time",
        ),
        (
            filing(&|f| f.consents[0].document = None),
            "filing.consents[0].document",
        ),
        (
            pb::CreateFilingRequest {
                request_id: "a b".into(),
                filing: Some(complaint(pb::FilingKind::Complaint, true)),
            },
            "request_id",
        ),
        (
            pb::CreateFilingRequest {
                request_id: String::new(),
                filing: None,
            },
            "filing",
        ),
    ];
    for (req, field) in cases {
        invalid_field(
            c.create_filing(e.as_inst(&inst, req)).await.map(|_| ()),
            field,
        );
    }
    let referral = |f: &dyn Fn(&mut pb::Referral)| {
        let mut x = dispute(&inst);
        f(&mut x);
        pb::CreateReferralRequest {
            request_id: String::new(),
            referral: Some(x),
        }
    };
    let cases: Vec<(pb::CreateReferralRequest, &str)> = vec![
        (referral(&|r| r.kind = 0), "referral.kind"),
        (referral(&|r| r.activity_area = 0), "referral.activity_area"),
        (
            referral(&|r| r.province = String::new()),
            "referral.province",
        ),
        (referral(&|r| r.parties.clear()), "referral.parties"),
        (
            referral(&|r| r.institution = "nope".into()),
            "referral.institution",
        ),
        (
            referral(&|r| r.source_case_number = String::new()),
            "referral.source_case_number",
        ),
        (
            referral(&|r| r.summary = "\u{0007}".into()),
            "referral.summary",
        ),
    ];
    for (req, field) in cases {
        invalid_field(
            c.create_referral(e.as_role(Role::Admin, req))
                .await
                .map(|_| ()),
            field,
        );
    }
    for name in ["", "filings/", "referrals/x", "filings/a b"] {
        invalid_field(
            c.get_filing(e.as_role(Role::Admin, pb::GetFilingRequest { name: name.into() }))
                .await
                .map(|_| ()),
            "name",
        );
        invalid_field(
            c.submit_filing(e.as_role(
                Role::Admin,
                pb::SubmitFilingRequest {
                    name: name.into(),
                    etag: String::new(),
                },
            ))
            .await
            .map(|_| ()),
            "name",
        );
    }
    for name in ["", "referrals/", "filings/x"] {
        invalid_field(
            c.get_referral(e.as_role(Role::Admin, pb::GetReferralRequest { name: name.into() }))
                .await
                .map(|_| ()),
            "name",
        );
        invalid_field(
            c.accept_referral(e.as_role(
                Role::Admin,
                pb::AcceptReferralRequest {
                    name: name.into(),
                    etag: String::new(),
                },
            ))
            .await
            .map(|_| ()),
            "name",
        );
    }
    let r = e.offer(&inst).await.unwrap();
    invalid_field(
        c.decline_referral(e.as_inst(
            &inst,
            pb::DeclineReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                reason: String::new(),
            },
        ))
        .await
        .map(|_| ()),
        "reason",
    );
    invalid_field(
        c.record_progress(e.as_inst(
            &inst,
            pb::RecordProgressRequest {
                name: r.name.clone(),
                etag: String::new(),
                entry: None,
            },
        ))
        .await
        .map(|_| ()),
        "entry",
    );
    invalid_field(
        c.record_progress(e.as_inst(
            &inst,
            pb::RecordProgressRequest {
                name: r.name.clone(),
                etag: String::new(),
                entry: Some(pb::ProgressEntry::default()),
            },
        ))
        .await
        .map(|_| ()),
        "entry.session_time",
    );
    invalid_field(
        c.resolve_referral(e.as_inst(
            &inst,
            pb::ResolveReferralRequest {
                name: r.name.clone(),
                outcome: 9,
                ..Default::default()
            },
        ))
        .await
        .map(|_| ()),
        "outcome",
    );
    invalid_field(
        c.extend_referral(e.as_role(
            Role::Admin,
            pb::ExtendReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                due_time: None,
                reason: "x".into(),
            },
        ))
        .await
        .map(|_| ()),
        "due_time",
    );
    invalid_field(
        c.reassign_referral(e.as_role(
            Role::Admin,
            pb::ReassignReferralRequest {
                name: r.name.clone(),
                etag: String::new(),
                institution: "x".into(),
                ..Default::default()
            },
        ))
        .await
        .map(|_| ()),
        "institution",
    );
    invalid_field(
        c.list_filings(e.as_role(
            Role::Admin,
            pb::ListFilingsRequest {
                kind: 77,
                ..Default::default()
            },
        ))
        .await
        .map(|_| ()),
        "kind",
    );
    invalid_field(
        c.list_filings(e.as_role(
            Role::Admin,
            pb::ListFilingsRequest {
                page_token: "bad".into(),
                ..Default::default()
            },
        ))
        .await
        .map(|_| ()),
        "page_token",
    );
    invalid_field(
        c.list_filings(e.as_role(
            Role::Admin,
            pb::ListFilingsRequest {
                institution: "x".into(),
                ..Default::default()
            },
        ))
        .await
        .map(|_| ()),
        "institution",
    );
    invalid_field(
        c.list_referrals(e.as_role(
            Role::Admin,
            pb::ListReferralsRequest {
                state: 99,
                ..Default::default()
            },
        ))
        .await
        .map(|_| ()),
        "state",
    );
    invalid_field(
        c.list_referrals(e.as_role(
            Role::Admin,
            pb::ListReferralsRequest {
                page_size: -5,
                ..Default::default()
            },
        ))
        .await
        .map(|_| ()),
        "page_size",
    );
    invalid_field(
        c.get_statistics(e.as_role(
            Role::Admin,
            pb::GetStatisticsRequest {
                province: "اردبیل".into(),
                start_time: None,
                end_time: None,
            },
        ))
        .await
        .map(|_| ()),
        "start_time",
    );
    invalid_field(
        c.suggest_institutions(e.as_role(
            Role::Admin,
            pb::SuggestInstitutionsRequest {
                activity_area: 0,
                province: "اردبیل".into(),
                max_results: 1,
                ..Default::default()
            },
        ))
        .await
        .map(|_| ()),
        "activity_area",
    );
    // Overdue is queryable (none yet).
    let over = c
        .list_referrals(e.as_role(
            Role::CenterOfficer,
            pb::ListReferralsRequest {
                overdue_only: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(over.referrals.is_empty());
}

/// Bytes that decode to no message, sent to every method of the referral service and of
/// its audit service, are INVALID_ARGUMENT with the usual details, never INTERNAL.
async fn malformed_bodies_are_invalid_argument(b: Backend) {
    let e = env(b).await;
    let ch = lazy(&e.referral.as_ref().unwrap().uri());
    let bearer = e.keys.bearer(Role::Admin, None);
    let services = [
        "mosharekat.referral.v1.ReferralService",
        "mosharekat.common.v1.AuditService",
    ];
    let n =
        mosharekat_platform::testing::malformed_bodies_are_invalid_argument(ch, &bearer, &services)
            .await;
    assert!(n >= 40, "{n} calls checked");
}
