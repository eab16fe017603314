//! Sealed parties, masked for every other role.

use super::*;

on_both_databases!(a_sealed_party_is_masked_for_every_other_role,);

/// Whether `p` reads as sealed: name and national code masked.
fn masked(p: &Party) -> bool {
    p.full_name == "محرمانه"
        && (p.national_code.is_empty() || p.national_code.starts_with("******"))
}

/// The addressed authority seals a victim of a filing, and the source seals one of a
/// referral: each is then masked for every role but the source (the filing institution
/// and the addressed authority; the referring source) and the assigned institution —
/// in Get, List, and a session's attendees. Only minors and victims are sealed, only by
/// the source, with the etag; sealing twice changes nothing.
async fn a_sealed_party_is_masked_for_every_other_role(b: Backend) {
    let e = env(b).await;
    let inst = e.filer(30).await;
    let other = e.acceptor(31).await;
    let mut c = e.cases.clone();
    let f = submitted_complaint(&e, &inst).await;
    let seal_filing = |role: Role, etag: &str, index: i32| {
        let mut c = e.cases.clone();
        let req = authed(
            bearer_for(&e, role, &inst),
            pb::SealFilingPartyRequest {
                name: f.name.clone(),
                etag: etag.into(),
                party_index: index,
            },
        );
        async move {
            c.seal_filing_party(req)
                .await
                .map(|r| r.into_inner().filing.unwrap())
        }
    };
    // Only the clerks, only a victim or a minor, only a party there is, only as it is.
    assert_eq!(
        seal_filing(Role::Institution, "", 0)
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let err = seal_filing(Role::JudicialOfficer, "", 1).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "PARTY_NOT_SEALABLE"),
        "the accused is neither a minor nor a victim"
    );
    let err = seal_filing(Role::JudicialOfficer, "", 5).await.unwrap_err();
    assert_eq!(
        (err.code(), fields(&err)),
        (Code::InvalidArgument, vec!["party_index".to_owned()])
    );
    let err = seal_filing(Role::JudicialOfficer, "", -1)
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["party_index"]);
    assert_eq!(
        seal_filing(Role::JudicialOfficer, "999", 0)
            .await
            .unwrap_err()
            .code(),
        Code::Aborted
    );
    // Another authority's officer does not see the filing at all.
    let mut elsewhere = authed(
        e.keys.bearer_with(Role::JudicialOfficer, |r| {
            r.authority = Some("دادگاه عمومی خلخال".into())
        }),
        pb::SealFilingPartyRequest {
            name: f.name.clone(),
            etag: String::new(),
            party_index: 0,
        },
    );
    elsewhere.set_timeout(Duration::from_secs(5));
    assert_eq!(
        c.seal_filing_party(elsewhere).await.unwrap_err().code(),
        Code::NotFound
    );
    let sealed = seal_filing(Role::JudicialOfficer, &f.etag, 0)
        .await
        .unwrap();
    assert!(sealed.parties[0].sealed);
    assert_eq!(sealed.parties[0].full_name, "مریم", "the authority sees it");
    assert_ne!(sealed.etag, f.etag);
    assert!(
        sealed
            .timeline
            .last()
            .is_some_and(|t| t.note == "parties[0] sealed" && !t.note.contains("مریم"))
    );
    let again = seal_filing(Role::JudicialOfficer, &sealed.etag, 0)
        .await
        .unwrap();
    assert_eq!(
        again.etag, sealed.etag,
        "sealing a sealed party changes nothing"
    );

    // Every role: the institution and the addressed authority see the party; every other
    // reader sees it masked (and the consent given for it); the others do not read.
    for role in Role::ALL {
        let got = c
            .get_filing(authed(
                bearer_for(&e, role, &inst),
                pb::GetFilingRequest {
                    name: f.name.clone(),
                },
            ))
            .await;
        match role {
            Role::Institution | Role::JudicialOfficer => {
                let g = got.unwrap().into_inner().filing.unwrap();
                assert_eq!(
                    (
                        g.parties[0].full_name.as_str(),
                        g.parties[0].national_code.as_str()
                    ),
                    ("مریم", "0076229645"),
                    "{role}"
                );
            }
            Role::Admin | Role::Auditor | Role::Service => {
                let g = got.unwrap().into_inner().filing.unwrap();
                assert!(masked(&g.parties[0]), "{role}: {:?}", g.parties[0]);
                assert_eq!(g.parties[0].national_code, "******9645");
                assert!(g.parties[0].sealed);
                assert_eq!(g.consents[0].given_by, "محرمانه", "{role}");
                assert_eq!(g.parties[1].full_name, "متهم", "only the sealed party");
            }
            _ => assert_eq!(got.unwrap_err().code(), Code::PermissionDenied, "{role}"),
        }
    }
    let listed = c
        .list_filings(e.as_role(Role::Admin, pb::ListFilingsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .filings;
    assert!(masked(&listed[0].parties[0]));

    // A referral: the source may seal as it refers; only a minor or a victim.
    let mut r = dispute(&inst);
    r.parties[1].sealed = true;
    let err = c
        .create_referral(e.as_role(
            Role::CenterOfficer,
            pb::CreateReferralRequest {
                request_id: String::new(),
                referral: Some(r.clone()),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["referral.parties[1].sealed"]);
    r.parties[1].minor = true;
    r.parties[0].role = PartyRole::Victim as i32;
    let r = c
        .create_referral(e.as_role(
            Role::CenterOfficer,
            pb::CreateReferralRequest {
                request_id: String::new(),
                referral: Some(r),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert!(r.parties[1].sealed && !r.parties[0].sealed);
    assert_eq!(r.parties[1].full_name, "رضا کریمی", "the source sees it");
    let seal_referral = |role: Role, index: i32| {
        let mut c = e.cases.clone();
        let req = authed(
            bearer_for(&e, role, &inst),
            pb::SealReferralPartyRequest {
                name: r.name.clone(),
                etag: String::new(),
                party_index: index,
            },
        );
        async move {
            c.seal_referral_party(req)
                .await
                .map(|r| r.into_inner().referral.unwrap())
        }
    };
    for role in [Role::JudicialOfficer, Role::Institution, Role::Auditor] {
        assert_eq!(
            seal_referral(role, 0).await.unwrap_err().code(),
            Code::PermissionDenied,
            "{role} is not this referral's source"
        );
    }
    let r = seal_referral(Role::CenterOfficer, 0).await.unwrap();
    assert!(r.parties[0].sealed);
    assert_eq!(
        r.parties[0].national_code, "0076229645",
        "the source sees it"
    );
    // The assigned institution takes it and records a session the sealed parties attend.
    let r = e.accept(&inst, &r).await;
    let r = c
        .record_progress(e.as_inst(
            &inst,
            pb::RecordProgressRequest {
                name: r.name.clone(),
                etag: r.etag.clone(),
                entry: Some(pb::ProgressEntry {
                    session_time: Some(from_now(Duration::ZERO)),
                    attendees: vec!["حسن محمدی".into(), "رضا كريمي".into(), "میانجی".into()],
                    notes: "جلسهٔ نخست".into(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(
        r.parties[0].full_name, "حسن محمدی",
        "the institution sees them"
    );
    for role in Role::ALL {
        let got = c
            .get_referral(authed(
                bearer_for(&e, role, &inst),
                pb::GetReferralRequest {
                    name: r.name.clone(),
                },
            ))
            .await;
        match role {
            Role::Institution | Role::CenterOfficer => {
                let g = got.unwrap().into_inner().referral.unwrap();
                assert_eq!(g.parties[0].full_name, "حسن محمدی", "{role}");
                assert_eq!(g.parties[0].national_code, "0076229645", "{role}");
                assert_eq!(g.parties[1].full_name, "رضا کریمی", "{role}");
            }
            Role::Admin | Role::Auditor | Role::Service | Role::JudicialOfficer => {
                let g = got.unwrap().into_inner().referral.unwrap();
                assert!(masked(&g.parties[0]) && masked(&g.parties[1]), "{role}");
                assert_eq!(g.parties[0].national_code, "******9645", "{role}");
                assert_eq!(
                    g.progress[0].attendees,
                    ["محرمانه", "محرمانه", "میانجی"],
                    "{role}: the attendees named as the sealed parties are"
                );
            }
            _ => assert_eq!(got.unwrap_err().code(), Code::PermissionDenied, "{role}"),
        }
    }
    // Another institution does not see it at all.
    assert_eq!(
        e.read_as(&other, &r.name).await.unwrap_err().code(),
        Code::NotFound
    );
    let listed = c
        .list_referrals(e.as_role(Role::Auditor, pb::ListReferralsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .referrals;
    assert!(listed.iter().all(|r| masked(&r.parties[0])));
}
