//! Who sees what: institutions see only their own.

use super::*;

on_both_databases!(institutions_see_only_their_own);

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
    let fb = c
        .create_filing(e.as_inst(
            &bb,
            pb::CreateFilingRequest {
                request_id: String::new(),
                filing: Some(complaint(pb::FilingKind::Complaint, true)),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
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
        c.get_referral(e.as_inst(
            &a,
            pb::GetReferralRequest {
                name: rb.name.clone()
            }
        ))
        .await
        .unwrap_err()
        .code(),
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
