//! Seats and licences: a revocation flags the seat; a vacancy names the officer.

use super::*;

on_both_databases!(
    a_licence_revocation_flags_the_seat,
    a_vacancy_names_the_officer_who_suspended_the_licence,
);

/// A working group with institution `n`'s representative seated, and that institution's
/// licence: where both tests start.
async fn seated_representative(b: Backend, n: u32) -> (Env, pb::WorkingGroup, pb::Member, String) {
    let e = env(b).await;
    let g = e.group().await;
    let (inst, licence) = e.institution(n, true).await;
    let rep = e
        .seat(
            &g,
            n,
            pb::Seat::InstitutionRepresentative,
            pb::Position::Unspecified,
            &inst,
        )
        .await
        .unwrap();
    (e, g, rep, licence)
}

async fn a_licence_revocation_flags_the_seat(b: Backend) {
    let (e, g, rep, licence) = seated_representative(b, 40).await;
    assert!(!rep.vacant);
    e.revoke(&licence).await;
    let m = e.vacated(&g, &rep.name, Duration::from_secs(10)).await;
    assert!(m.vacancy_reason.contains("revoked"));
    let seated = e.members(&g, false).await;
    assert!(
        seated.iter().all(|m| m.name != rep.name),
        "a vacant seat is not listed as held"
    );
    // Members' national codes are masked for a member reading them.
    let as_member =
        e.wg.clone()
            .list_members(authed(
                e.keys.bearer(Role::Member, None),
                pb::ListMembersRequest {
                    parent: g.name.clone(),
                    include_vacant: true,
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .members;
    assert!(as_member[0].national_code.starts_with("******"));
}

async fn a_vacancy_names_the_officer_who_suspended_the_licence(b: Backend) {
    let (e, _g, rep, licence) = seated_representative(b, 41).await;
    let officer = e
        .keys
        .bearer_with(Role::RegistryOfficer, |t| t.subject = "officer-9".into());
    e.reg
        .clone()
        .suspend_licence(authed(
            officer,
            reg::SuspendLicenceRequest {
                name: licence,
                etag: String::new(),
                reason: "بررسی".into(),
            },
        ))
        .await
        .unwrap();
    let mut audit = AuditServiceClient::new(lazy(&e.services.2.uri()));
    let start = Instant::now();
    let vacated = loop {
        let records = audit
            .list_audit_records(authed(
                e.keys.bearer(Role::Auditor, None),
                ListAuditRecordsRequest {
                    resource: rep.name.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .records;
        if let Some(a) = records
            .into_iter()
            .find(|a| a.method == "meeting/licence-events")
        {
            break a;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the seat's vacancy was not audited"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The service flagged the seat, for the officer whose suspension caused it.
    assert_eq!(
        (
            vacated.actor.as_str(),
            vacated.role.as_str(),
            vacated.on_behalf_of.as_str()
        ),
        ("system", "SERVICE", "officer-9")
    );
}
