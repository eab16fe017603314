//! Bad input: INVALID_ARGUMENT naming the field, never INTERNAL.

use super::*;

on_both_databases!(
    bad_input_names_the_field,
    arbitrary_unicode_never_yields_internal,
    control_characters_in_queries_and_names_are_refused,
    malformed_bodies_are_invalid_argument,
    oversized_request_is_resource_exhausted,
);

async fn oversized_request_is_resource_exhausted(b: Backend) {
    let app = app(b).await;
    let mut inst = institution(15);
    inst.address = "x".repeat(5 * 1024 * 1024);
    let e = app
        .client
        .clone()
        .create_institution(app.admin(pb::CreateInstitutionRequest {
            request_id: String::new(),
            institution: Some(inst),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
}

async fn bad_input_names_the_field(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let inst = app.create(16).await;
    let l = app.apply(&inst, now_secs() + 86400).await;
    let create = |f: &dyn Fn(&mut pb::Institution)| {
        let mut i = institution(17);
        f(&mut i);
        pb::CreateInstitutionRequest {
            request_id: String::new(),
            institution: Some(i),
        }
    };
    let cases: Vec<(pb::CreateInstitutionRequest, &str)> = vec![
        (
            create(&|i| i.display_name = String::new()),
            "institution.display_name",
        ),
        (
            create(&|i| i.display_name = "ن".repeat(201)),
            "institution.display_name",
        ),
        (
            create(&|i| i.display_name = "نام\u{202E}معکوس".into()),
            "institution.display_name",
        ),
        (create(&|i| i.kind = 0), "institution.kind"),
        (create(&|i| i.kind = 42), "institution.kind"),
        (
            create(&|i| i.national_id = "10380284791".into()),
            "institution.national_id",
        ),
        (
            create(&|i| i.national_id = "abc".into()),
            "institution.national_id",
        ),
        (
            create(&|i| i.registration_number = String::new()),
            "institution.registration_number",
        ),
        (
            create(&|i| i.registering_authority = "\u{0000}".into()),
            "institution.registering_authority",
        ),
        (
            create(&|i| i.province = String::new()),
            "institution.province",
        ),
        (create(&|i| i.city = "x".repeat(101)), "institution.city"),
        (
            create(&|i| i.address = "y".repeat(2001)),
            "institution.address",
        ),
        (create(&|i| i.phone = "call me".into()), "institution.phone"),
        (create(&|i| i.email = "@@".into()), "institution.email"),
        (
            create(&|i| i.activity_areas = vec![]),
            "institution.activity_areas",
        ),
        (
            create(&|i| i.activity_areas = vec![99]),
            "institution.activity_areas[0]",
        ),
        (
            create(&|i| i.representatives[0].national_code = "0076229646".into()),
            "institution.representatives[0].national_code",
        ),
        (
            create(&|i| i.representatives[0].full_name = String::new()),
            "institution.representatives[0].full_name",
        ),
        (
            create(&|i| i.representatives[0].role = String::new()),
            "institution.representatives[0].role",
        ),
        (
            pb::CreateInstitutionRequest {
                request_id: "bad id".into(),
                institution: Some(institution(17)),
            },
            "request_id",
        ),
        (
            pb::CreateInstitutionRequest {
                request_id: String::new(),
                institution: None,
            },
            "institution",
        ),
    ];
    for (req, field) in cases {
        invalid_field(
            c.create_institution(app.admin(req)).await.map(|_| ()),
            field,
        );
    }
    for name in [
        "",
        "institutions/",
        "licences/x",
        "institutions/a b",
        "institutions/😀",
    ] {
        invalid_field(
            c.get_institution(app.admin(pb::GetInstitutionRequest { name: name.into() }))
                .await
                .map(|_| ()),
            "name",
        );
        invalid_field(
            c.get_licence(app.admin(pb::GetLicenceRequest { name: name.into() }))
                .await
                .map(|_| ()),
            "name",
        );
        invalid_field(
            c.approve_licence(app.admin(pb::ApproveLicenceRequest {
                name: name.into(),
                ..Default::default()
            }))
            .await
            .map(|_| ()),
            "name",
        );
        invalid_field(
            c.dissolve_institution(app.admin(pb::DissolveInstitutionRequest {
                name: name.into(),
                etag: String::new(),
                reason: "x".into(),
            }))
            .await
            .map(|_| ()),
            "name",
        );
    }
    invalid_field(
        c.list_institutions(app.admin(pb::ListInstitutionsRequest {
            page_size: -1,
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "page_size",
    );
    invalid_field(
        c.list_institutions(app.admin(pb::ListInstitutionsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "page_token",
    );
    invalid_field(
        c.list_institutions(app.admin(pb::ListInstitutionsRequest {
            activity_area: 99,
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "activity_area",
    );
    invalid_field(
        c.list_institutions(app.admin(pb::ListInstitutionsRequest {
            licence_state: 99,
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "licence_state",
    );
    invalid_field(
        c.list_licences(app.admin(pb::ListLicencesRequest {
            parent: "nope".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "parent",
    );
    invalid_field(
        c.list_licences(app.admin(pb::ListLicencesRequest {
            parent: "institutions/-".into(),
            state: 42,
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "state",
    );
    let elig = |f: &dyn Fn(&mut pb::CheckEligibilityRequest)| {
        let mut r = pb::CheckEligibilityRequest {
            institution: inst.name.clone(),
            action: pb::PermittedAction::FileComplaint as i32,
            activity_area: ActivityArea::Mediation as i32,
            province: String::new(),
        };
        f(&mut r);
        r
    };
    invalid_field(
        c.check_eligibility(app.admin(elig(&|r| r.institution = "x".into())))
            .await
            .map(|_| ()),
        "institution",
    );
    invalid_field(
        c.check_eligibility(app.admin(elig(&|r| r.action = 0)))
            .await
            .map(|_| ()),
        "action",
    );
    invalid_field(
        c.check_eligibility(app.admin(elig(&|r| r.activity_area = -3)))
            .await
            .map(|_| ()),
        "activity_area",
    );
    let lic = |f: &dyn Fn(&mut pb::Licence)| {
        let mut l = licence(now_secs() + 86400);
        f(&mut l);
        pb::CreateLicenceRequest {
            parent: inst.name.clone(),
            request_id: String::new(),
            licence: Some(l),
        }
    };
    invalid_field(
        c.create_licence(app.admin(lic(&|l| l.activity_areas = vec![])))
            .await
            .map(|_| ()),
        "licence.activity_areas",
    );
    invalid_field(
        c.create_licence(app.admin(lic(&|l| l.permitted_actions = vec![9])))
            .await
            .map(|_| ()),
        "licence.permitted_actions[0]",
    );
    invalid_field(
        c.create_licence(app.admin(lic(&|l| l.province = String::new())))
            .await
            .map(|_| ()),
        "licence.province",
    );
    // The judicial district is optional, but a name when given.
    invalid_field(
        c.create_licence(app.admin(lic(&|l| l.judicial_district = "ح".repeat(101))))
            .await
            .map(|_| ()),
        "licence.judicial_district",
    );
    invalid_field(
        c.create_licence(app.admin(lic(&|l| l.valid_until = None)))
            .await
            .map(|_| ()),
        "licence.valid_until",
    );
    invalid_field(
        c.create_licence(app.admin(lic(&|l| l.valid_until = Some(ts(i64::MAX, 0)))))
            .await
            .map(|_| ()),
        "licence.valid_until",
    );
    invalid_field(
        c.create_licence(app.admin(lic(&|l| l.valid_from = Some(ts(0, -5)))))
            .await
            .map(|_| ()),
        "licence.valid_from",
    );
    invalid_field(
        c.create_licence(app.admin(pb::CreateLicenceRequest {
            parent: "bad".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "parent",
    );
    invalid_field(
        c.renew_licence(app.admin(pb::RenewLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "valid_until",
    );
    invalid_field(
        c.reject_licence(app.admin(pb::RejectLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "reason",
    );
    invalid_field(
        c.revoke_licence(app.admin(pb::RevokeLicenceRequest {
            name: l.name.clone(),
            etag: String::new(),
            reason: "\u{202E}".into(),
        }))
        .await
        .map(|_| ()),
        "reason",
    );
    invalid_field(
        c.watch_licence_events(app.admin(pb::WatchLicenceEventsRequest { after_sequence: -1 }))
            .await
            .map(|_| ()),
        "after_sequence",
    );
    invalid_field(
        c.update_institution(app.admin(pb::UpdateInstitutionRequest {
            institution: Some(inst.clone()),
            update_mask: None,
        }))
        .await
        .map(|_| ()),
        "update_mask",
    );
    invalid_field(
        c.update_institution(app.admin(pb::UpdateInstitutionRequest {
            institution: Some(inst.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["national_id".into()],
            }),
        }))
        .await
        .map(|_| ()),
        "update_mask.paths[0]",
    );
    let mut a = app.audit.clone();
    invalid_field(
        a.list_audit_records(app.admin(common::ListAuditRecordsRequest {
            page_token: "x.y".into(),
            ..Default::default()
        }))
        .await
        .map(|_| ()),
        "page_token",
    );
    // Absent things are NOT_FOUND, not INVALID_ARGUMENT.
    let e = c
        .get_institution(app.admin(pb::GetInstitutionRequest {
            name: "institutions/0000".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

async fn arbitrary_unicode_never_yields_internal(b: Backend) {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let app = app(b).await;
    let mut c = app.client.clone();
    let mut runner = TestRunner::deterministic();
    let strings = proptest::collection::vec(proptest::arbitrary::any::<String>(), 4);
    for n in 0..48u32 {
        let s = strings.new_tree(&mut runner).unwrap().current();
        let mut i = institution(3000 + n);
        i.display_name = s[0].clone();
        i.representatives[0].full_name = s[1].clone();
        i.city = s[2].clone();
        i.address = s[3].clone();
        let r = c
            .create_institution(app.admin(pb::CreateInstitutionRequest {
                request_id: String::new(),
                institution: Some(i),
            }))
            .await;
        if let Err(e) = &r {
            assert_eq!(e.code(), Code::InvalidArgument, "{s:?} gave {e:?}");
        }
        let r = c
            .list_institutions(app.admin(pb::ListInstitutionsRequest {
                query: s[0].chars().take(200).collect(),
                province: s[2].chars().take(100).collect(),
                ..Default::default()
            }))
            .await;
        // Controls and bidi characters are refused in a query as in a name, by field.
        if let Err(e) = &r {
            assert_eq!(e.code(), Code::InvalidArgument, "{s:?} gave {e:?}");
            assert!(
                fields(e).iter().all(|f| f == "query" || f == "province"),
                "{s:?} gave {e:?}"
            );
        }
        let r = c
            .get_institution(app.admin(pb::GetInstitutionRequest {
                name: format!("institutions/{}", s[1]),
            }))
            .await;
        assert!(
            matches!(
                r.as_ref().map_err(|e| e.code()),
                Err(Code::InvalidArgument | Code::NotFound)
            ),
            "{r:?}"
        );
    }
}

async fn control_characters_in_queries_and_names_are_refused(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let inst = app.create(70).await;
    app.create(71).await;
    let refused = |e: tonic::Status, field: &str, what: &str| {
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert_eq!(fields(&e), [field], "{what}");
    };
    let list = |query: &str, province: &str| {
        let mut c = app.client.clone();
        let req = app.admin(pb::ListInstitutionsRequest {
            query: query.into(),
            province: province.into(),
            ..Default::default()
        });
        async move { c.list_institutions(req).await }
    };
    // A NUL alone used to fold to no filter and list every institution in the province.
    for (query, what) in [
        ("\u{0000}", "NUL only"),
        ("حمایت\u{0007}", "C0 in a query"),
        ("\u{007F}کانون", "DEL in a query"),
        ("کانون\u{0085}میانجیگری", "C1 in a query"),
        ("ـــ", "folds to nothing"),
        ("\u{202E}کانون", "bidi override in a query"),
    ] {
        refused(list(query, "").await.unwrap_err(), "query", what);
    }
    refused(
        list("", "\u{0000}").await.unwrap_err(),
        "province",
        "NUL province",
    );
    assert_eq!(
        list("", "").await.unwrap().into_inner().institutions.len(),
        2
    );
    let e = c
        .check_eligibility(app.admin(pb::CheckEligibilityRequest {
            institution: inst.name.clone(),
            action: pb::PermittedAction::FileComplaint as i32,
            activity_area: ActivityArea::Mediation as i32,
            province: "\u{0000}".into(),
        }))
        .await
        .unwrap_err();
    refused(e, "province", "NUL province to CheckEligibility");
    let e = c
        .check_licensed(app.admin(pb::CheckLicensedRequest {
            institution: inst.name.clone(),
            province: "\u{0085}".into(),
        }))
        .await
        .unwrap_err();
    refused(e, "province", "C1 province to CheckLicensed");

    // U+0085 NEXT LINE in a name used to become a space.
    let mut i = institution(72);
    i.display_name = "کانون\u{0085}میانجیگری".into();
    let e = c
        .create_institution(app.admin(pb::CreateInstitutionRequest {
            request_id: String::new(),
            institution: Some(i),
        }))
        .await
        .unwrap_err();
    refused(e, "institution.display_name", "C1 in a new name");
    let mut i = institution(72);
    i.representatives[0].full_name = "زهرا\u{0085}رضایی".into();
    i.address = "خیابان\u{000B}امام".into();
    let e = c
        .create_institution(app.admin(pb::CreateInstitutionRequest {
            request_id: String::new(),
            institution: Some(i),
        }))
        .await
        .unwrap_err();
    let mut fields = fields(&e);
    fields.sort();
    assert_eq!(
        fields,
        [
            "institution.address",
            "institution.representatives[0].full_name"
        ]
    );
    let mut renamed = inst.clone();
    renamed.display_name = "نام\u{0085}تازه".into();
    let e = c
        .update_institution(app.admin(pb::UpdateInstitutionRequest {
            institution: Some(renamed),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        }))
        .await
        .unwrap_err();
    refused(e, "institution.display_name", "C1 in a renamed institution");
    let e = c
        .dissolve_institution(app.admin(pb::DissolveInstitutionRequest {
            name: inst.name.clone(),
            etag: String::new(),
            reason: "انحلال\u{0085}".into(),
        }))
        .await
        .unwrap_err();
    refused(e, "reason", "C1 in a reason");
}

/// Bytes that decode to no message, sent to every method of the registry and of its audit
/// service, are INVALID_ARGUMENT with the usual details, never INTERNAL.
async fn malformed_bodies_are_invalid_argument(b: Backend) {
    let app = app(b).await;
    let ch = Channel::from_shared(app.reg.uri())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let bearer = app.keys.bearer(Role::Admin, None);
    let services = [
        "mosharekat.registry.v1.RegistryService",
        "mosharekat.common.v1.AuditService",
    ];
    let n =
        mosharekat_platform::testing::malformed_bodies_are_invalid_argument(ch, &bearer, &services)
            .await;
    assert!(n >= 40, "{n} calls checked");
}
