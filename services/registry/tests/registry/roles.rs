//! Who may call what: every RPC against every role, and no token at all.

use super::*;

on_both_databases!(
    every_role_against_every_rpc,
    every_rpc_against_every_role,
    the_audit_rpcs_against_every_role,
    no_token_is_unauthenticated,
);

async fn every_role_against_every_rpc(b: Backend) {
    let app = app(b).await;
    let own = app.create(9).await;
    let other = app.create(10).await;
    let own_id = own.name.trim_start_matches("institutions/").to_owned();
    let other_licence = app.apply(&other, now_secs() + 86400).await;
    for role in Role::ALL {
        let mut c = app.client.clone();
        let registrar = matches!(role, Role::Admin | Role::RegistryOfficer);

        let got = code(
            c.create_institution(app.who(
                role,
                &own_id,
                pb::CreateInstitutionRequest {
                    request_id: String::new(),
                    institution: Some(institution(200 + role as u32)),
                },
            ))
            .await,
        );
        assert_eq!(
            got,
            if registrar {
                Code::Ok
            } else {
                Code::PermissionDenied
            },
            "{role} CreateInstitution"
        );

        let got = code(
            c.get_institution(app.who(
                role,
                &own_id,
                pb::GetInstitutionRequest {
                    name: other.name.clone(),
                },
            ))
            .await,
        );
        assert_eq!(
            got,
            if role == Role::Institution {
                Code::NotFound
            } else {
                Code::Ok
            },
            "{role} GetInstitution(other)"
        );
        if role == Role::Institution {
            let mine = c
                .get_institution(app.who(
                    role,
                    &own_id,
                    pb::GetInstitutionRequest {
                        name: own.name.clone(),
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                mine.institution.unwrap().representatives[0].national_code,
                own.representatives[0].national_code
            );
            let listed = c
                .list_institutions(app.who(role, &own_id, pb::ListInstitutionsRequest::default()))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                listed
                    .institutions
                    .iter()
                    .map(|i| i.name.clone())
                    .collect::<Vec<_>>(),
                std::slice::from_ref(&own.name)
            );
        }

        let got = code(
            c.list_institutions(app.who(role, &own_id, pb::ListInstitutionsRequest::default()))
                .await,
        );
        assert_eq!(got, Code::Ok, "{role} ListInstitutions");

        let got = code(
            c.update_institution(app.who(
                role,
                &own_id,
                pb::UpdateInstitutionRequest {
                    institution: Some(other.clone()),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["city".into()],
                    }),
                },
            ))
            .await,
        );
        let expected = if registrar {
            Code::Ok
        } else {
            Code::PermissionDenied
        };
        // The first registrar's update moves the etag on; later ones send a stale etag.
        if !(registrar && got == Code::Aborted) {
            assert_eq!(got, expected, "{role} UpdateInstitution");
        }

        let got = code(
            c.create_licence(app.who(
                role,
                &own_id,
                pb::CreateLicenceRequest {
                    parent: other.name.clone(),
                    request_id: String::new(),
                    licence: Some(licence(now_secs() + 86400)),
                },
            ))
            .await,
        );
        let expected = match role {
            Role::Admin | Role::RegistryOfficer => Code::Ok,
            Role::Institution => Code::NotFound,
            _ => Code::PermissionDenied,
        };
        assert_eq!(got, expected, "{role} CreateLicence(other)");

        let got = code(
            c.get_licence(app.who(
                role,
                &own_id,
                pb::GetLicenceRequest {
                    name: other_licence.name.clone(),
                },
            ))
            .await,
        );
        assert_eq!(
            got,
            if role == Role::Institution {
                Code::NotFound
            } else {
                Code::Ok
            },
            "{role} GetLicence(other)"
        );

        if !registrar {
            let got = code(
                c.approve_licence(app.who(
                    role,
                    &own_id,
                    pb::ApproveLicenceRequest {
                        name: other_licence.name.clone(),
                        ..Default::default()
                    },
                ))
                .await,
            );
            assert_eq!(got, Code::PermissionDenied, "{role} ApproveLicence");
            let got = code(
                c.revoke_licence(app.who(
                    role,
                    &own_id,
                    pb::RevokeLicenceRequest {
                        name: other_licence.name.clone(),
                        etag: String::new(),
                        reason: "x".into(),
                    },
                ))
                .await,
            );
            assert_eq!(got, Code::PermissionDenied, "{role} RevokeLicence");
        }

        let got = code(
            c.check_eligibility(app.who(
                role,
                &own_id,
                pb::CheckEligibilityRequest {
                    institution: other.name.clone(),
                    action: pb::PermittedAction::FileComplaint as i32,
                    activity_area: ActivityArea::Mediation as i32,
                    province: String::new(),
                },
            ))
            .await,
        );
        let expected = match role {
            Role::Member => Code::PermissionDenied,
            Role::Institution => Code::NotFound,
            _ => Code::Ok,
        };
        assert_eq!(got, expected, "{role} CheckEligibility(other)");

        let got = code(
            c.watch_licence_events(app.who(
                role,
                &own_id,
                pb::WatchLicenceEventsRequest { after_sequence: 0 },
            ))
            .await
            .map(|_| ()),
        );
        let expected = if matches!(role, Role::Admin | Role::Auditor | Role::Service) {
            Code::Ok
        } else {
            Code::PermissionDenied
        };
        assert_eq!(got, expected, "{role} WatchLicenceEvents");

        let mut a = app.audit.clone();
        let got = code(
            a.list_audit_records(app.who(
                role,
                &own_id,
                common::ListAuditRecordsRequest::default(),
            ))
            .await,
        );
        let expected = if matches!(role, Role::Admin | Role::Auditor) {
            Code::Ok
        } else {
            Code::PermissionDenied
        };
        assert_eq!(got, expected, "{role} ListAuditRecords");
        let got = code(
            a.verify_audit_chain(app.who(role, &own_id, common::VerifyAuditChainRequest {}))
                .await,
        );
        assert_eq!(got, expected, "{role} VerifyAuditChain");
    }
    // A registry officer approves.
    let l = app
        .client
        .clone()
        .approve_licence(app.as_role(
            Role::RegistryOfficer,
            pb::ApproveLicenceRequest {
                name: other_licence.name.clone(),
                ..Default::default()
            },
        ))
        .await;
    assert!(l.is_ok());
}

async fn no_token_is_unauthenticated(b: Backend) {
    let app = app(b).await;
    let mut c = app.client.clone();
    let e = c
        .list_institutions(Request::new(pb::ListInstitutionsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = c
        .list_institutions(app.req(
            "Bearer not.a.jwt".into(),
            pb::ListInstitutionsRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let foreign = TestKeys::new().unwrap();
    let e = c
        .list_institutions(app.req(
            foreign.bearer(Role::Admin, None),
            pb::ListInstitutionsRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert_eq!(
        e.get_error_details().localized_message().unwrap().locale,
        "fa-IR"
    );
}

/// Calls `rpc` as `role` (an institution's token is for `own`), aimed at `other` and its
/// licence `lic`. Changes carry a stale etag, so that an allowed role reaches the etag
/// check (ABORTED) without changing anything; creates create.
async fn call_as(
    app: &App,
    rpc: &str,
    role: Role,
    own: &str,
    other: &pb::Institution,
    lic: &pb::Licence,
) -> Code {
    let mut c = app.client.clone();
    macro_rules! r {
        ($m:expr) => {
            app.who(role, own, $m)
        };
    }
    let question = || pb::CheckEligibilityRequest {
        institution: other.name.clone(),
        action: pb::PermittedAction::FileComplaint as i32,
        activity_area: ActivityArea::Mediation as i32,
        province: String::new(),
    };
    let stale = "999".to_owned();
    let name = lic.name.clone();
    match rpc {
        "CreateInstitution" => code(
            c.create_institution(r!(pb::CreateInstitutionRequest {
                request_id: String::new(),
                institution: Some(institution(300 + role as u32)),
            }))
            .await,
        ),
        "GetInstitution" => code(
            c.get_institution(r!(pb::GetInstitutionRequest {
                name: other.name.clone(),
            }))
            .await,
        ),
        "ListInstitutions" => code(
            c.list_institutions(r!(pb::ListInstitutionsRequest::default()))
                .await,
        ),
        "UpdateInstitution" => {
            let mut i = other.clone();
            i.etag = stale;
            code(
                c.update_institution(r!(pb::UpdateInstitutionRequest {
                    institution: Some(i),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["city".into()],
                    }),
                }))
                .await,
            )
        }
        "DissolveInstitution" => code(
            c.dissolve_institution(r!(pb::DissolveInstitutionRequest {
                name: other.name.clone(),
                etag: stale,
                reason: "x".into(),
            }))
            .await,
        ),
        "CreateLicence" => code(
            c.create_licence(r!(pb::CreateLicenceRequest {
                parent: other.name.clone(),
                request_id: String::new(),
                licence: Some(licence(now_secs() + 86400)),
            }))
            .await,
        ),
        "GetLicence" => code(c.get_licence(r!(pb::GetLicenceRequest { name })).await),
        "ListLicences" => code(
            c.list_licences(r!(pb::ListLicencesRequest {
                parent: "institutions/-".into(),
                ..Default::default()
            }))
            .await,
        ),
        "ApproveLicence" => code(
            c.approve_licence(r!(pb::ApproveLicenceRequest {
                name,
                etag: stale,
                reason: String::new(),
            }))
            .await,
        ),
        "RejectLicence" => code(
            c.reject_licence(r!(pb::RejectLicenceRequest {
                name,
                etag: stale,
                reason: "x".into(),
            }))
            .await,
        ),
        "SuspendLicence" => code(
            c.suspend_licence(r!(pb::SuspendLicenceRequest {
                name,
                etag: stale,
                reason: "x".into(),
            }))
            .await,
        ),
        "ReinstateLicence" => code(
            c.reinstate_licence(r!(pb::ReinstateLicenceRequest {
                name,
                etag: stale,
                ..Default::default()
            }))
            .await,
        ),
        "RevokeLicence" => code(
            c.revoke_licence(r!(pb::RevokeLicenceRequest {
                name,
                etag: stale,
                reason: "x".into(),
            }))
            .await,
        ),
        "RenewLicence" => code(
            c.renew_licence(r!(pb::RenewLicenceRequest {
                name,
                etag: stale,
                valid_until: Some(ts(now_secs() + 2 * 86400, 0)),
                reason: String::new(),
            }))
            .await,
        ),
        "CheckEligibility" => code(c.check_eligibility(r!(question())).await),
        "BatchCheckEligibility" => code(
            c.batch_check_eligibility(r!(pb::BatchCheckEligibilityRequest {
                requests: vec![question(), question()],
            }))
            .await,
        ),
        "CheckLicensed" => code(
            c.check_licensed(r!(pb::CheckLicensedRequest {
                institution: other.name.clone(),
                province: String::new(),
            }))
            .await,
        ),
        "WatchLicenceEvents" => code(
            c.watch_licence_events(r!(pb::WatchLicenceEventsRequest { after_sequence: 0 }))
                .await
                .map(|_| ()),
        ),
        "ExportLicenceCertificate" => code(
            c.export_licence_certificate(r!(pb::ExportLicenceCertificateRequest { name }))
                .await,
        ),
        other => panic!("no call written for {other}"),
    }
}

/// Every RPC of the registry (checked against its descriptor, so a new one cannot be
/// left out) × every role: PERMISSION_DENIED exactly for the roles the spec denies; an
/// allowed role gets past the role check (an institution then finds another's record
/// NOT_FOUND; a stale etag is ABORTED).
async fn every_rpc_against_every_role(b: Backend) {
    use Role::*;
    const ALL: &[Role] = &Role::ALL;
    const REGISTRARS: &[Role] = &[Admin, RegistryOfficer];
    const ASKERS: &[Role] = &[
        Admin,
        RegistryOfficer,
        JudicialOfficer,
        CenterOfficer,
        Secretary,
        Auditor,
        Service,
        Institution,
    ];
    let matrix: &[(&str, &[Role])] = &[
        ("CreateInstitution", REGISTRARS),
        ("GetInstitution", ALL),
        ("ListInstitutions", ALL),
        ("UpdateInstitution", REGISTRARS),
        ("DissolveInstitution", REGISTRARS),
        ("CreateLicence", &[Admin, RegistryOfficer, Institution]),
        ("GetLicence", ALL),
        ("ListLicences", ALL),
        ("ApproveLicence", REGISTRARS),
        ("RejectLicence", REGISTRARS),
        ("SuspendLicence", REGISTRARS),
        ("ReinstateLicence", REGISTRARS),
        ("RevokeLicence", REGISTRARS),
        ("RenewLicence", REGISTRARS),
        ("CheckEligibility", ASKERS),
        ("BatchCheckEligibility", ASKERS),
        ("CheckLicensed", ASKERS),
        ("WatchLicenceEvents", &[Admin, Auditor, Service]),
        // The certificate of a licence: its institution's own, and administrators.
        ("ExportLicenceCertificate", &[Admin, Institution]),
    ];
    let set = <prost_types::FileDescriptorSet as prost::Message>::decode(
        mosharekat_api::FILE_DESCRIPTOR_SET,
    )
    .unwrap();
    let mut methods: Vec<String> = set
        .file
        .iter()
        .filter(|f| f.package() == "mosharekat.registry.v1")
        .flat_map(|f| f.service.iter())
        .filter(|s| s.name() == "RegistryService")
        .flat_map(|s| s.method.iter().map(|m| m.name().to_owned()))
        .collect();
    methods.sort();
    let mut covered: Vec<String> = matrix.iter().map(|(m, _)| (*m).to_owned()).collect();
    covered.sort();
    assert_eq!(
        covered, methods,
        "the matrix covers every RPC of the registry"
    );

    let app = app(b).await;
    let own = app.create(11).await;
    let other = app.create(12).await;
    let own_id = own.name.trim_start_matches("institutions/").to_owned();
    let lic = app.apply(&other, now_secs() + 86400).await;
    for (rpc, allowed) in matrix {
        for role in Role::ALL {
            let got = call_as(&app, rpc, role, &own_id, &other, &lic).await;
            if allowed.contains(&role) {
                assert!(
                    matches!(
                        got,
                        Code::Ok | Code::NotFound | Code::Aborted | Code::FailedPrecondition
                    ),
                    "{role} {rpc}: allowed, but {got:?}"
                );
                // An institution sees nothing of another's but its register entry in lists.
                if role == Institution
                    && !rpc.starts_with("List")
                    && *rpc != "CreateInstitution"
                    && *rpc != "WatchLicenceEvents"
                {
                    assert_eq!(got, Code::NotFound, "{role} {rpc} of another institution");
                }
            } else {
                assert_eq!(got, Code::PermissionDenied, "{role} {rpc}");
            }
        }
    }
}

/// The audit service the registry serves beside it, every RPC × every role, driven by the
/// descriptors like the registry's own matrix: admins and auditors only.
async fn the_audit_rpcs_against_every_role(b: Backend) {
    use Role::*;
    let table: &[mosharekat_testkit::Row] = &[
        ("ListAuditRecords", &[Admin, Auditor]),
        ("VerifyAuditChain", &[Admin, Auditor]),
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
    let app = app(b).await;
    let own = app.create(13).await;
    let cells = mosharekat_testkit::every_rpc_against_every_role(
        mosharekat_testkit::lazy(&app.reg.uri()),
        &app.keys,
        own.name.trim_start_matches("institutions/"),
        &[
            "mosharekat.common.v1.AuditService",
            "mosharekat.common.v1.NotificationService",
        ],
        table,
    )
    .await;
    assert_eq!(cells, table.len() * Role::ALL.len());
}
