//! Recalls: a licence revoked or suspended recalls the open referrals, even when the service was down.

use super::*;

on_both_databases!(
    revoking_the_licence_recalls_open_referrals,
    recall_happens_when_the_referral_service_was_down,
    a_recall_names_the_officer_who_suspended_the_licence,
);

async fn wait_for_state(e: &Env, name: &str, state: pb::ReferralState) -> pb::Referral {
    let start = Instant::now();
    loop {
        let r = e.referral(Role::Admin, name).await;
        if r.state == state as i32 {
            return r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still {:?} after 10 s",
            r.state
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn revoking_the_licence_recalls_open_referrals(b: Backend) {
    let e = env(b).await;
    let inst = e.acceptor(4).await;
    let other = e.acceptor(5).await;
    let r1 = e.offer(&inst).await.unwrap();
    let r2 = e.offer(&inst).await.unwrap();
    e.cases
        .clone()
        .accept_referral(e.as_inst(
            &inst,
            pb::AcceptReferralRequest {
                name: r2.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    let kept = e.offer(&other).await.unwrap();
    e.revoke(&inst).await;
    let recalled = wait_for_state(&e, &r1.name, pb::ReferralState::Recalled).await;
    assert_eq!(recalled.state_reason, "licence revoked");
    wait_for_state(&e, &r2.name, pb::ReferralState::Recalled).await;
    let k = e.referral(Role::Admin, &kept.name).await;
    assert_eq!(
        k.state,
        pb::ReferralState::Offered as i32,
        "another institution's referral stays"
    );
    // A recalled referral goes to another institution, which must be eligible.
    let err = e.reassign(&r1, &inst).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let moved = e.reassign(&r1, &other).await.unwrap();
    assert_eq!(
        (moved.state, moved.institution.as_str()),
        (pb::ReferralState::Offered as i32, other.name.as_str())
    );
    // Offering to an institution without a licence is refused with the registry's reason.
    let err = e.offer(&inst).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "LICENCE_REVOKED")
    );
}

async fn recall_happens_when_the_referral_service_was_down(b: Backend) {
    let mut e = env(b).await;
    let inst = e.acceptor(6).await;
    let r = e.offer(&inst).await.unwrap();
    // Let the consumer catch up to the current events, then stop the service.
    tokio::time::sleep(Duration::from_millis(500)).await;
    e.referral.take().unwrap().stop().await.unwrap();
    e.revoke(&inst).await;
    let registry_uri = e.registry.as_ref().unwrap().uri();
    let back = start_referral(&e.keys, &e.ref_db, &registry_uri).await;
    e.cases = ReferralServiceClient::new(lazy(&back.uri()));
    e.referral = Some(back);
    let got = wait_for_state(&e, &r.name, pb::ReferralState::Recalled).await;
    assert_eq!(got.state_reason, "licence revoked");
}

async fn a_recall_names_the_officer_who_suspended_the_licence(b: Backend) {
    let e = env(b).await;
    let inst = e.acceptor(8).await;
    let r = e.offer(&inst).await.unwrap();
    let officer = e
        .keys
        .bearer_with(Role::RegistryOfficer, |t| t.subject = "officer-7".into());
    e.reg
        .clone()
        .suspend_licence(authed(
            officer,
            reg::SuspendLicenceRequest {
                name: inst.licence.clone(),
                etag: String::new(),
                reason: "بررسی".into(),
            },
        ))
        .await
        .unwrap();
    wait_for_state(&e, &r.name, pb::ReferralState::Recalled).await;
    let records = AuditServiceClient::new(lazy(&e.referral.as_ref().unwrap().uri()))
        .list_audit_records(e.as_role(
            Role::Auditor,
            ListAuditRecordsRequest {
                resource: r.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .records;
    let recall = records
        .iter()
        .find(|a| a.method == "referral/licence-events")
        .expect("the recall is audited");
    // The service recalled it, for the officer whose suspension caused it.
    assert_eq!(
        (
            recall.actor.as_str(),
            recall.role.as_str(),
            recall.on_behalf_of.as_str()
        ),
        ("system", "SERVICE", "officer-7")
    );
}
