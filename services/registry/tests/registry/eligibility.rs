//! Eligibility asked many at a time.

use super::*;

on_both_databases!(batch_eligibility_answers_in_order,);

/// Many eligibility questions at once: answered in order, each as `CheckEligibility`
/// answers it; more than 100, or a bad entry, is INVALID_ARGUMENT naming the field.
async fn batch_eligibility_answers_in_order(b: Backend) {
    use pb::EligibilityReason as R;
    let app = app(b).await;
    let licensed = app.create(21).await;
    let pending = app.create(22).await;
    let none = app.create(23).await;
    let l = app.apply(&licensed, now_secs() + 86400).await;
    app.approve(&l).await;
    app.apply(&pending, now_secs() + 86400).await;
    let q = |i: &pb::Institution, action: pb::PermittedAction| pb::CheckEligibilityRequest {
        institution: i.name.clone(),
        action: action as i32,
        activity_area: ActivityArea::Mediation as i32,
        province: String::new(),
    };
    use pb::PermittedAction as P;
    let questions = vec![
        q(&none, P::FileComplaint),
        q(&licensed, P::FileComplaint),
        q(&pending, P::FileComplaint),
        q(&licensed, P::ReportCrime),
        q(&licensed, P::FileComplaint),
    ];
    let mut c = app.client.clone();
    let answers = c
        .batch_check_eligibility(app.as_role(
            Role::Service,
            pb::BatchCheckEligibilityRequest {
                requests: questions.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .responses;
    let reasons: Vec<i32> = answers.iter().map(|a| a.reason).collect();
    assert_eq!(
        reasons,
        [
            R::NoLicence,
            R::Eligible,
            R::LicencePending,
            R::ActionNotLicensed,
            R::Eligible
        ]
        .map(|r| r as i32)
    );
    assert_eq!(answers[1].licence, l.name);
    // Each answer is the one CheckEligibility gives.
    for (question, answer) in questions.iter().zip(&answers) {
        let one = c
            .check_eligibility(app.as_role(Role::Service, question.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&one, answer);
    }
    // Through the typed client, as the referral service asks.
    let peer = mosharekat_registry_client::RegistryPeer::new(
        mosharekat_platform::client::PeerTarget::new(&app.reg.uri(), None).unwrap(),
        mosharekat_platform::client::ServiceToken::new(app.keys.signer.clone(), "referral"),
        Duration::from_secs(5),
    );
    let typed = peer
        .eligibility_batch(
            &mosharekat_platform::ctx::CallContext::system("test"),
            questions.clone(),
        )
        .await
        .unwrap();
    assert_eq!(typed, answers);

    let too_many = c
        .batch_check_eligibility(app.as_role(
            Role::Service,
            pb::BatchCheckEligibilityRequest {
                requests: vec![q(&none, P::FileComplaint); 101],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument);
    assert_eq!(fields(&too_many), ["requests"]);
    let mut bad = questions.clone();
    bad[1].action = 0;
    bad[3].institution = "nonsense".into();
    let e = c
        .batch_check_eligibility(app.as_role(
            Role::Service,
            pb::BatchCheckEligibilityRequest { requests: bad },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(fields(&e), ["requests[1].action"]);
    // An institution asks about itself only.
    let own = none.name.trim_start_matches("institutions/").to_owned();
    let hidden = c
        .batch_check_eligibility(app.as_institution(
            &own,
            pb::BatchCheckEligibilityRequest {
                requests: vec![q(&none, P::FileComplaint), q(&licensed, P::FileComplaint)],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
}
