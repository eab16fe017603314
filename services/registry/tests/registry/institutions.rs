//! Institutions: registering, duplicates, stale etags, concurrent writers, dissolving, and statute changes against live licences.

use super::*;

on_both_databases!(
    duplicate_national_id_is_already_exists,
    stale_etag_is_aborted,
    concurrent_writers_all_succeed,
    dissolving_ends_licences,
    statute_cannot_shrink_below_a_live_licence,
    statute_change_and_licence_application_race_safely,
);

async fn duplicate_national_id_is_already_exists(b: Backend) {
    let app = app(b).await;
    let first = app.create(3).await;
    let mut again = institution(3);
    again.national_id = format!("۱۴{}", &legal_id(3)[2..]); // the same ID in Persian digits
    let e = app
        .client
        .clone()
        .create_institution(app.admin(pb::CreateInstitutionRequest {
            request_id: String::new(),
            institution: Some(again),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert_eq!(
        e.get_error_details().resource_info().unwrap().resource_name,
        first.name
    );
}

async fn stale_etag_is_aborted(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let inst = app.create(5).await;
    let mask = |p: &str| {
        Some(prost_types::FieldMask {
            paths: vec![p.into()],
        })
    };
    let mut changed = inst.clone();
    changed.city = "مشگین‌شهر".into();
    let updated = c
        .update_institution(app.admin(pb::UpdateInstitutionRequest {
            institution: Some(changed.clone()),
            update_mask: mask("city"),
        }))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    assert_eq!(updated.city, "مشگین‌شهر");
    assert_ne!(updated.etag, inst.etag);
    // The old etag is stale now.
    let e = c
        .update_institution(app.admin(pb::UpdateInstitutionRequest {
            institution: Some(changed),
            update_mask: mask("city"),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    let l = app.apply(&updated, now_secs() + 86400).await;
    let e = c
        .approve_licence(app.admin(pb::ApproveLicenceRequest {
            name: l.name.clone(),
            etag: "999".into(),
            reason: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
}

async fn concurrent_writers_all_succeed(b: Backend) {
    let app = app(b).await;
    let mut tasks = Vec::new();
    for w in 0..16u32 {
        let mut c = app.client.clone();
        let bearer = app.keys.bearer(Role::Admin, None);
        tasks.push(tokio::spawn(async move {
            for i in 0..5u32 {
                let mut r = Request::new(pb::CreateInstitutionRequest {
                    request_id: String::new(),
                    institution: Some(institution(2000 + w * 10 + i)),
                });
                r.metadata_mut()
                    .insert("authorization", bearer.parse().unwrap());
                c.create_institution(r)
                    .await
                    .map_err(|s| format!("{:?} {}", s.code(), s.message()))?;
            }
            Ok::<_, String>(())
        }));
    }
    for t in tasks {
        t.await
            .unwrap()
            .expect("no writer fails (no 'database is locked')");
    }
    let v = app
        .audit
        .clone()
        .verify_audit_chain(app.admin(common::VerifyAuditChainRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (v.intact, v.records_checked),
        (true, 80),
        "the chain stays gap-free under concurrency"
    );
}

async fn dissolving_ends_licences(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let inst = app.create(18).await;
    let l = app.apply(&inst, now_secs() + 86400).await;
    app.approve(&l).await;
    let d = c
        .dissolve_institution(app.admin(pb::DissolveInstitutionRequest {
            name: inst.name.clone(),
            etag: String::new(),
            reason: "انحلال به حکم دادگاه".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    assert_eq!(d.state, pb::InstitutionState::Dissolved as i32);
    assert_eq!(
        app.may_complain(&inst).await,
        pb::EligibilityReason::InstitutionDissolved
    );
    let l = app.read_licence(&l.name).await;
    assert_eq!(l.state, pb::LicenceState::Revoked as i32);
    let kinds: Vec<i32> = events(&app, 0, 3).await.iter().map(|e| e.kind).collect();
    assert_eq!(kinds[2], pb::LicenceEventKind::Revoked as i32);
    // Dissolved institutions are listed only when asked for.
    let listed = c
        .list_institutions(app.admin(pb::ListInstitutionsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.institutions.is_empty());
    let listed = c
        .list_institutions(app.admin(pb::ListInstitutionsRequest {
            include_dissolved: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.institutions.len(), 1);
}

/// An `UpdateInstitution` of `inst`'s statute to `areas`, whatever its etag now is.
fn statute_update(inst: &pb::Institution, areas: &[ActivityArea]) -> pb::UpdateInstitutionRequest {
    let mut i = inst.clone();
    i.etag = String::new();
    i.activity_areas = areas.iter().map(|a| *a as i32).collect();
    pb::UpdateInstitutionRequest {
        institution: Some(i),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["activity_areas".into()],
        }),
    }
}

async fn statute_cannot_shrink_below_a_live_licence(b: Backend) {
    use ActivityArea as A;
    let app = app(b).await;
    let mut c = app.client.clone();
    // Statute: MEDIATION, RECONCILIATION, WOMEN; the licence covers the first two.
    let inst = app.create(40).await;
    let refused = |r: Result<tonic::Response<pb::UpdateInstitutionResponse>, tonic::Status>,
                   lic: &pb::Licence,
                   state: &str| {
        let e = r.expect_err(state);
        assert_eq!(e.code(), Code::FailedPrecondition, "{state}: {e:?}");
        assert_eq!(reason(&e), "AREAS_COVERED_BY_LICENCE", "{state}");
        let details = e.get_error_details();
        let info = details.error_info().unwrap();
        assert_eq!(
            info.metadata["areas"], "ACTIVITY_AREA_MEDIATION,ACTIVITY_AREA_RECONCILIATION",
            "{state}"
        );
        assert_eq!(info.metadata["licences"], lic.name, "{state}");
        assert!(
            e.message().contains("MEDIATION") && e.message().contains("RECONCILIATION"),
            "{state}: {}",
            e.message()
        );
        assert!(e.get_error_details().localized_message().is_some());
    };
    let l = app.apply(&inst, now_secs() + 86400).await;
    refused(
        c.update_institution(app.admin(statute_update(&inst, &[A::Women])))
            .await,
        &l,
        "PENDING",
    );
    // Only a covered area refuses: RECONCILIATION alone is named when only it goes.
    let e = c
        .update_institution(app.admin(statute_update(&inst, &[A::Mediation, A::Women])))
        .await
        .unwrap_err();
    assert_eq!(
        e.get_error_details().error_info().unwrap().metadata["areas"],
        "ACTIVITY_AREA_RECONCILIATION"
    );
    let l = app.approve(&l).await;
    refused(
        c.update_institution(app.admin(statute_update(&inst, &[A::Women])))
            .await,
        &l,
        "ACTIVE",
    );
    let l = app.suspend(&l, "بازرسی").await.unwrap();
    refused(
        c.update_institution(app.admin(statute_update(&inst, &[A::Women])))
            .await,
        &l,
        "SUSPENDED",
    );
    // The refused updates changed nothing.
    let stored = c
        .get_institution(app.admin(pb::GetInstitutionRequest {
            name: inst.name.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    assert_eq!(stored.etag, inst.etag);
    assert_eq!(stored.activity_areas, inst.activity_areas);
    // An area no licence covers may go, and the statute may grow.
    let updated = c
        .update_institution(app.admin(statute_update(
            &inst,
            &[A::Mediation, A::Reconciliation, A::Children],
        )))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    assert_eq!(
        updated.activity_areas,
        [A::Mediation, A::Reconciliation, A::Children].map(|a| a as i32)
    );
    // Once the licence is revoked it holds nothing.
    app.revoke(&l, "تخلف").await.unwrap();
    let updated = c
        .update_institution(app.admin(statute_update(&inst, &[A::Women])))
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    assert_eq!(updated.activity_areas, [A::Women as i32]);
}

async fn statute_change_and_licence_application_race_safely(b: Backend) {
    use ActivityArea as A;
    let app = app(b).await;
    for n in 0..8 {
        let inst = app.create(50 + n).await;
        let (mut c1, mut c2) = (app.client.clone(), app.client.clone());
        let (update, create) = tokio::join!(
            c1.update_institution(app.admin(statute_update(&inst, &[A::Women]))),
            c2.create_licence(app.admin(pb::CreateLicenceRequest {
                parent: inst.name.clone(),
                request_id: String::new(),
                licence: Some(licence(now_secs() + 86400)),
            })),
        );
        // Whichever commits first, the other is refused: never a licence outside its statute.
        match (&update, &create) {
            (Ok(_), Err(e)) => assert_eq!(reason(e), "AREA_NOT_IN_STATUTE", "{e:?}"),
            (Err(e), Ok(_)) => assert_eq!(reason(e), "AREAS_COVERED_BY_LICENCE", "{e:?}"),
            other => panic!("round {n}: {other:?}"),
        }
    }
}
