//! Licences: the life cycle with eligibility at each step, expiry, and listed licences with their histories.

use super::*;

on_both_databases!(
    licence_life_cycle_with_eligibility_at_each_step,
    licence_expires_once,
    listed_licences_carry_their_own_histories,
);

async fn licence_life_cycle_with_eligibility_at_each_step(b: Backend) {
    use pb::EligibilityReason as R;
    use pb::PermittedAction as P;
    let app = app(b).await;
    let mut c = app.client.clone();
    let inst = app.create(1).await;
    let m = ActivityArea::Mediation;
    assert_eq!(
        app.eligibility(&inst, P::FileComplaint, m).await,
        R::NoLicence
    );

    let l = app.apply(&inst, now_secs() + 365 * 86400).await;
    assert_eq!(l.state, pb::LicenceState::Pending as i32);
    assert_eq!(l.province, "اردبیل", "folded to Persian yeh");
    assert_eq!(
        app.eligibility(&inst, P::FileComplaint, m).await,
        R::LicencePending
    );

    let licensed = |inst: &pb::Institution| {
        let mut c = app.client.clone();
        let req = app.as_role(
            Role::Service,
            pb::CheckLicensedRequest {
                institution: inst.name.clone(),
                province: String::new(),
            },
        );
        async move { c.check_licensed(req).await.unwrap().into_inner() }
    };
    assert_eq!(licensed(&inst).await.reason, R::LicencePending as i32);
    let l = app.approve(&l).await;
    assert_eq!(l.state, pb::LicenceState::Active as i32);
    // Named under another institution, the licence is not found (the name as sent), and a
    // transition on that name changes nothing.
    let other = app.create(2).await;
    let foreign = format!(
        "{}/licences/{}",
        other.name,
        l.name.rsplit('/').next().unwrap()
    );
    let e = c
        .get_licence(app.admin(pb::GetLicenceRequest {
            name: foreign.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (
            e.code(),
            e.get_error_details()
                .resource_info()
                .map(|i| i.resource_name.clone())
        ),
        (Code::NotFound, Some(foreign.clone()))
    );
    let e = c
        .suspend_licence(app.admin(pb::SuspendLicenceRequest {
            name: foreign.clone(),
            etag: String::new(),
            reason: "x".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let answer = licensed(&inst).await;
    assert!(answer.licensed);
    assert_eq!(answer.licence, l.name);
    assert_eq!(
        app.eligibility(&inst, P::FileComplaint, m).await,
        R::Eligible
    );
    assert_eq!(
        app.eligibility(&inst, P::ReportCrime, m).await,
        R::ActionNotLicensed
    );
    assert_eq!(
        app.eligibility(&inst, P::FileComplaint, ActivityArea::Women)
            .await,
        R::AreaNotLicensed
    );

    let e = c
        .suspend_licence(app.admin(pb::SuspendLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), fields(&e)),
        (Code::InvalidArgument, vec!["reason".to_string()])
    );
    let l = c
        .suspend_licence(app.admin(pb::SuspendLicenceRequest {
            name: l.name.clone(),
            etag: l.etag.clone(),
            reason: "گزارش بازرسی".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    assert_eq!(l.state, pb::LicenceState::Suspended as i32);
    assert_eq!(
        app.eligibility(&inst, P::FileComplaint, m).await,
        R::LicenceSuspended
    );
    let e = c
        .approve_licence(app.admin(pb::ApproveLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), reason(&e).as_str()),
        (Code::FailedPrecondition, "LICENCE_STATE_CONFLICT")
    );

    let l = app.reinstate(&l).await.unwrap();
    assert_eq!(l.state, pb::LicenceState::Active as i32);
    assert_eq!(
        app.eligibility(&inst, P::AcceptReferrals, ActivityArea::Reconciliation)
            .await,
        R::Eligible
    );

    let later = now_secs() + 2 * 365 * 86400;
    let l = c
        .renew_licence(app.admin(pb::RenewLicenceRequest {
            name: l.name.clone(),
            valid_until: Some(ts(later, 0)),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .licence
        .unwrap();
    // The end is counted by the legal calendar: a closed last day moves it to the end of
    // the next open day (art. 444).
    let expiry = l.expiry.as_ref().expect("a renewal counts the expiry");
    if !expiry.moves.is_empty() {
        assert!(
            l.valid_until.as_ref().unwrap().seconds > later,
            "{expiry:?}"
        );
    } else {
        assert_eq!(l.valid_until.as_ref().unwrap().seconds, later);
    }

    // A second licence in the same province cannot be in force beside it.
    let second = app.apply(&inst, now_secs() + 86400).await;
    let e = c
        .approve_licence(app.admin(pb::ApproveLicenceRequest {
            name: second.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "LICENCE_ALREADY_IN_FORCE");

    let l = app.revoke(&l, "تخلف").await.unwrap();
    assert_eq!(l.state, pb::LicenceState::Revoked as i32);
    assert_eq!(
        app.eligibility(&inst, P::FileComplaint, m).await,
        R::LicencePending,
        "the second is pending"
    );
    let e = app.reinstate(&l).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let to_states: Vec<i32> = l.history.iter().map(|h| h.to_state).collect();
    use pb::LicenceState as S;
    assert_eq!(
        to_states,
        [
            S::Pending,
            S::Active,
            S::Suspended,
            S::Active,
            S::Active,
            S::Revoked
        ]
        .map(|s| s as i32)
    );
    assert!(
        l.history
            .iter()
            .all(|h| h.actor == "test-admin" && h.time.is_some())
    );

    // Areas outside the statute are refused.
    let mut outside = licence(now_secs() + 86400);
    outside.activity_areas = vec![ActivityArea::Environment as i32];
    let e = c
        .create_licence(app.admin(pb::CreateLicenceRequest {
            parent: inst.name.clone(),
            request_id: String::new(),
            licence: Some(outside),
        }))
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "AREA_NOT_IN_STATUTE");

    let v = app
        .audit
        .clone()
        .verify_audit_chain(app.as_role(Role::Auditor, common::VerifyAuditChainRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(v.intact, "{v:?}");
    assert!(v.records_checked >= 8);
}

async fn licence_expires_once(b: Backend) {
    // The registry reads a manual clock: the licence expires when the test moves it, not
    // after a wait.
    let keys = TestKeys::new().unwrap();
    let db = TestDb::new(b).await.expect("a fresh database");
    // A Wednesday morning in Tehran: the end, an hour later, is on an open day, so the
    // legal calendar does not move it.
    let start = chrono::DateTime::from_timestamp(1_795_586_400, 0).unwrap(); // 2026-11-25T06:00Z
    let clock = Clock::manual(start);
    let mut settings = RunningRegistry::settings(&db.url, &keys.public_key);
    settings.registry.clock = clock.clone();
    let app = app_with(keys, db, settings).await;
    let inst = app.create(2).await;
    let l = app.apply(&inst, start.timestamp() + 3600).await;
    app.approve(&l).await;
    assert_eq!(
        app.may_complain(&inst).await,
        pb::EligibilityReason::Eligible
    );
    clock.advance(chrono::Duration::hours(2));
    assert_eq!(
        app.may_complain(&inst).await,
        pb::EligibilityReason::LicenceExpired
    );
    assert_eq!(
        mosharekat_registry::events::sweep_expired(&app.reg.registry)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        mosharekat_registry::events::sweep_expired(&app.reg.registry)
            .await
            .unwrap(),
        0
    );
    let kinds = events(&app, 0, 3).await;
    use pb::LicenceEventKind as K;
    assert_eq!(
        kinds.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [K::Applied, K::Approved, K::Expired].map(|k| k as i32)
    );
    // No caller expired it: the registry did, and the event says so.
    assert_eq!(
        (kinds[2].actor.as_str(), kinds[2].actor_role.as_str()),
        ("system", "SERVICE")
    );
    assert!(no_more_events(&app, 3).await);
}

/// A page of licences carries each licence's own history (read for the whole page at
/// once), the same as reading each alone.
async fn listed_licences_carry_their_own_histories(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let mut names = Vec::new();
    for n in 0..3 {
        let inst = app.create(40 + n).await;
        let l = app.apply(&inst, now_secs() + 86400).await;
        if n > 0 {
            app.approve(&l).await;
        }
        if n > 1 {
            app.suspend(&l, "بازرسی").await.unwrap();
        }
        names.push(l.name);
    }
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_licences(app.admin(pb::ListLicencesRequest {
                parent: "institutions/-".into(),
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.licences);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(listed.len(), 3);
    for l in &listed {
        let alone = app.read_licence(&l.name).await;
        assert_eq!(l, &alone);
    }
    let lengths: Vec<usize> = names
        .iter()
        .map(|n| {
            listed
                .iter()
                .find(|l| &l.name == n)
                .map_or(0, |l| l.history.len())
        })
        .collect();
    assert_eq!(lengths, [1, 2, 3]);
}
