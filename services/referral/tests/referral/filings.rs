//! Filings: an institution files, the judiciary registers and closes; a licence without REPORT_CRIME is refused.

use super::*;

on_both_databases!(
    a_licensed_institution_files_and_the_judiciary_registers_and_closes,
    an_institution_without_report_crime_is_refused,
);

async fn a_licensed_institution_files_and_the_judiciary_registers_and_closes(b: Backend) {
    let e = env(b).await;
    let inst = e
        .institution(
            1,
            &[
                reg::PermittedAction::FileComplaint,
                reg::PermittedAction::ReportCrime,
            ],
        )
        .await;
    let mut c = e.cases.clone();
    let f = e
        .draft(&inst, complaint(pb::FilingKind::Complaint, false))
        .await;
    assert_eq!(
        (f.state, f.institution.as_str()),
        (pb::FilingState::Draft as i32, inst.name.as_str())
    );
    // No consent recorded yet: refused with the article-66 reason.
    let err = e.submit(&inst, &f, false).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "VICTIM_CONSENT_REQUIRED")
    );
    // The draft is completed with the victim's consent.
    let with = complaint(pb::FilingKind::Complaint, true);
    let f = c
        .update_filing(e.as_inst(
            &inst,
            pb::UpdateFilingRequest {
                filing: Some(pb::Filing {
                    name: f.name.clone(),
                    etag: f.etag.clone(),
                    ..with
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["consents".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    // A judicial officer does not see drafts.
    let err = c
        .get_filing(e.as_role(
            Role::JudicialOfficer,
            pb::GetFilingRequest {
                name: f.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let f = e.submit(&inst, &f, true).await.unwrap();
    assert_eq!(f.state, pb::FilingState::Submitted as i32);
    // What the change returned (built without reading the row back) is what is stored.
    let stored = c
        .get_filing(e.as_inst(
            &inst,
            pb::GetFilingRequest {
                name: f.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(f, stored);
    let err = c
        .update_filing(e.as_inst(
            &inst,
            pb::UpdateFilingRequest {
                filing: Some(f.clone()),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["subject".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "FILING_STATE_CONFLICT");
    let clerk_token = e.keys.bearer_with(Role::JudicialOfficer, |r| {
        r.authority = Some("دادسرای عمومی و انقلاب اردبيل".into())
    });
    let f = c
        .register_filing(authed(
            clerk_token.clone(),
            pb::RegisterFilingRequest {
                name: f.name.clone(),
                etag: String::new(),
                case_number: "۹۸۷۶".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(
        (f.state, f.case_number.as_str()),
        (pb::FilingState::Registered as i32, "9876")
    );
    // The same case number at the same authority is taken.
    let other = e
        .draft(&inst, complaint(pb::FilingKind::CrimeReport, true))
        .await;
    e.submit(&inst, &other, false).await.unwrap();
    let err = c
        .register_filing(authed(
            clerk_token.clone(),
            pb::RegisterFilingRequest {
                name: other.name.clone(),
                etag: String::new(),
                case_number: "9876".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    // An officer of another authority does not see it.
    let stranger = authed(
        e.keys.bearer_with(Role::JudicialOfficer, |r| {
            r.authority = Some("دادگاه تهران".into())
        }),
        pb::GetFilingRequest {
            name: f.name.clone(),
        },
    );
    assert_eq!(
        c.get_filing(stranger).await.unwrap_err().code(),
        Code::NotFound
    );
    let f = c
        .close_filing(authed(
            clerk_token.clone(),
            pb::CloseFilingRequest {
                name: f.name.clone(),
                etag: f.etag.clone(),
                outcome: "صدور کیفرخواست".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(f.state, pb::FilingState::Closed as i32);
    let steps: Vec<_> = f.timeline.iter().map(|t| t.to_state.as_str()).collect();
    assert_eq!(steps, ["DRAFT", "SUBMITTED", "REGISTERED", "CLOSED"]);
    assert!(
        f.timeline
            .iter()
            .all(|t| !t.actor.is_empty() && t.time.is_some())
    );
}

async fn an_institution_without_report_crime_is_refused(b: Backend) {
    let e = env(b).await;
    let inst = e
        .institution(2, &[reg::PermittedAction::FileComplaint])
        .await;
    let f = e
        .draft(&inst, complaint(pb::FilingKind::CrimeReport, true))
        .await;
    let err = e.submit(&inst, &f, false).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "ACTION_NOT_LICENSED")
    );
    assert_eq!(
        err.get_error_details().localized_message().unwrap().locale,
        "fa-IR"
    );
}
