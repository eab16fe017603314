//! The licence event stream: resuming after a restart, and who made each change.

use super::*;

on_both_databases!(
    event_stream_resumes_after_restart,
    licence_events_name_who_changed_them,
);

async fn licence_events_name_who_changed_them(b: Backend) {
    use pb::LicenceEventKind as K;
    use sea_orm::ConnectionTrait;
    let app = app(b).await;
    let inst = app.create(31).await;
    let l = app.apply(&inst, now_secs() + 86400).await;
    let l = app.approve(&l).await;
    let officer = app
        .keys
        .bearer_with(Role::RegistryOfficer, |r| r.subject = "officer-42".into());
    app.client
        .clone()
        .suspend_licence(app.req(
            officer,
            pb::SuspendLicenceRequest {
                name: l.name.clone(),
                etag: String::new(),
                reason: "بررسی".into(),
            },
        ))
        .await
        .unwrap();
    let got = events(&app, 0, 3).await;
    assert_eq!(
        got.iter()
            .map(|e| (e.kind, e.actor.as_str(), e.actor_role.as_str()))
            .collect::<Vec<_>>(),
        [
            (K::Applied as i32, "test-admin", "ADMIN"),
            (K::Approved as i32, "test-admin", "ADMIN"),
            (K::Suspended as i32, "officer-42", "REGISTRY_OFFICER"),
        ]
    );
    // An event stored without an actor, written as a replica that does not know the role
    // column would write it, is still served, naming no one.
    let (inst_id, lic_id) = l
        .name
        .trim_start_matches("institutions/")
        .split_once("/licences/")
        .unwrap();
    let db = mosharekat_platform::db::Db::connect(&app.db.url, &Default::default())
        .await
        .unwrap();
    db.conn()
        .execute_unprepared(&format!(
            "INSERT INTO licence_events (seq, licence_id, institution_id, kind, from_state, \
             to_state, actor, reason, time_us, traceparent) \
             VALUES (4, '{lic_id}', '{inst_id}', {}, 3, 2, '', 'old', 0, '')",
            K::Reinstated as i32
        ))
        .await
        .unwrap();
    let old = events(&app, 3, 1).await;
    assert_eq!(
        (
            old[0].sequence,
            old[0].actor.as_str(),
            old[0].actor_role.as_str()
        ),
        (4, "", "")
    );
    assert_eq!(old[0].licence, l.name);
}

async fn event_stream_resumes_after_restart(b: Backend) {
    let App {
        keys,
        db,
        reg,
        client,
        ..
    } = app(b).await;
    let app = App {
        audit: AuditServiceClient::new(
            Channel::from_shared(reg.uri())
                .unwrap()
                .connect()
                .await
                .unwrap(),
        ),
        keys,
        db,
        reg,
        client,
    };
    let inst = app.create(8).await;
    let l = app.apply(&inst, now_secs() + 86400).await;
    let l = app.approve(&l).await;
    app.client
        .clone()
        .suspend_licence(app.admin(pb::SuspendLicenceRequest {
            name: l.name.clone(),
            etag: String::new(),
            reason: "بررسی".into(),
        }))
        .await
        .unwrap();
    let App { keys, db, reg, .. } = app;
    reg.stop().await.unwrap();
    let reg = start(&db, &keys).await;
    let ch = Channel::from_shared(reg.uri())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let app = App {
        client: RegistryServiceClient::new(ch.clone()),
        audit: AuditServiceClient::new(ch),
        keys,
        db,
        reg,
    };
    app.client
        .clone()
        .reinstate_licence(app.admin(pb::ReinstateLicenceRequest {
            name: l.name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let got = events(&app, 2, 2).await;
    assert_eq!(got.iter().map(|e| e.sequence).collect::<Vec<_>>(), [3, 4]);
    use pb::LicenceEventKind as K;
    assert_eq!(
        got.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [K::Suspended as i32, K::Reinstated as i32]
    );
    assert_eq!(got[0].licence, l.name);
    assert!(no_more_events(&app, 4).await);
    // A live subscriber sees a new event as it happens.
    let mut live = app
        .client
        .clone()
        .watch_licence_events(app.as_role(
            Role::Service,
            pb::WatchLicenceEventsRequest { after_sequence: 4 },
        ))
        .await
        .unwrap()
        .into_inner();
    app.client
        .clone()
        .revoke_licence(app.admin(pb::RevokeLicenceRequest {
            name: l.name.clone(),
            etag: String::new(),
            reason: "پایان".into(),
        }))
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), live.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .event
        .unwrap();
    assert_eq!((e.sequence, e.kind), (5, K::Revoked as i32));
}
