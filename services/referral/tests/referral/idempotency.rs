//! Retried creates make one row; request ids belong to their caller.

use super::*;

on_both_databases!(
    retried_creates_make_one_row,
    request_ids_belong_to_their_caller,
);

async fn retried_creates_make_one_row(b: Backend) {
    let e = env(b).await;
    let inst = e.filer(10).await;
    let mut c = e.cases.clone();
    let req = pb::CreateFilingRequest {
        request_id: "filing-req-1".into(),
        filing: Some(complaint(pb::FilingKind::Complaint, true)),
    };
    let one = c
        .create_filing(e.as_inst(&inst, req.clone()))
        .await
        .unwrap()
        .into_inner();
    let two = c
        .create_filing(e.as_inst(&inst, req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one, two);
    assert_eq!(
        c.list_filings(e.as_role(Role::Admin, pb::ListFilingsRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .filings
            .len(),
        1
    );
    let req = pb::CreateReferralRequest {
        request_id: "referral-req-1".into(),
        referral: Some(dispute(&inst)),
    };
    let one = c
        .create_referral(e.as_role(Role::CenterOfficer, req.clone()))
        .await
        .unwrap()
        .into_inner();
    let two = c
        .create_referral(e.as_role(Role::CenterOfficer, req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one, two);
    assert_eq!(
        c.list_referrals(e.as_role(Role::Admin, pb::ListReferralsRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .referrals
            .len(),
        1
    );
}

/// Two institutions (same token subject, as tokens minted for agents often have) send the
/// same CreateFiling under the same request id: each gets a filing of its own, and neither
/// sees the other's victim. Two centre officers likewise for CreateReferral.
async fn request_ids_belong_to_their_caller(b: Backend) {
    let e = env(b).await;
    let actions = [
        reg::PermittedAction::FileComplaint,
        reg::PermittedAction::AcceptReferrals,
    ];
    let a = e.institution(41, &actions).await;
    let bi = e.institution(42, &actions).await;
    let mut c = e.cases.clone();
    let req = pb::CreateFilingRequest {
        request_id: "story-filing-1".into(),
        filing: Some(complaint(pb::FilingKind::Complaint, true)),
    };
    let fa = c
        .create_filing(e.as_inst(&a, req.clone()))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    let fb = c
        .create_filing(e.as_inst(&bi, req.clone()))
        .await
        .expect("the other institution's own filing, not a refusal")
        .into_inner()
        .filing
        .unwrap();
    assert_ne!(fa.name, fb.name);
    assert_eq!(fa.institution, a.name);
    assert_eq!(fb.institution, bi.name);
    // Each one's retry replays its own filing.
    for (inst, own) in [(&a, &fa), (&bi, &fb)] {
        let again = c
            .create_filing(e.as_inst(inst, req.clone()))
            .await
            .unwrap()
            .into_inner()
            .filing
            .unwrap();
        assert_eq!(again.name, own.name);
    }
    // B cannot read A's filing by its name either.
    let peek = c
        .get_filing(e.as_inst(
            &bi,
            pb::GetFilingRequest {
                name: fa.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(peek.code(), tonic::Code::NotFound);

    let officer = |sub: &str, msg| {
        authed(
            e.keys
                .bearer_with(Role::CenterOfficer, |r| r.subject = sub.into()),
            msg,
        )
    };
    let req = pb::CreateReferralRequest {
        request_id: "story-referral-1".into(),
        referral: Some(dispute(&a)),
    };
    let ra = c
        .create_referral(officer("officer-1", req.clone()))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    let rb = c
        .create_referral(officer("officer-2", req.clone()))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_ne!(ra.name, rb.name);
    let ra2 = c
        .create_referral(officer("officer-1", req))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(ra2.name, ra.name);
}
