//! The audit chain names a tampered record.

use super::*;

on_both_databases!(tampered_audit_record_is_named,);

async fn tampered_audit_record_is_named(b: Backend) {
    let app = app(b).await;
    for n in 11..14 {
        app.create(n).await;
    }
    let mut a = app.audit.clone();
    let v = verify(&app).await;
    assert!(v.intact && v.records_checked == 3, "{v:?}");
    let records = a
        .list_audit_records(app.as_role(Role::Auditor, common::ListAuditRecordsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(records.records.len(), 3);
    assert_eq!(records.records[1].previous_hash, records.records[0].hash);
    assert!(records.records[0].method.ends_with("/CreateInstitution"));
    let db = mosharekat_platform::db::Db::connect(&app.db.url, &Default::default())
        .await
        .unwrap();
    let v = tamper_and_verify(
        &app,
        &db,
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2",
    )
    .await;
    assert!(!v.intact);
    assert_eq!(v.first_broken_sequence, 2);
    assert_eq!(v.records_checked, 1);
    let v = tamper_and_verify(&app, &db, "DELETE FROM audit_log WHERE seq = 2").await;
    assert_eq!((v.intact, v.first_broken_sequence), (false, 2));
    assert!(v.problem.contains("missing"), "{}", v.problem);
}

async fn verify(app: &App) -> common::VerifyAuditChainResponse {
    app.audit
        .clone()
        .verify_audit_chain(app.admin(common::VerifyAuditChainRequest {}))
        .await
        .unwrap()
        .into_inner()
}

/// `sql` run on the registry's database behind its back, then the chain verified.
async fn tamper_and_verify(
    app: &App,
    db: &mosharekat_platform::db::Db,
    sql: &str,
) -> common::VerifyAuditChainResponse {
    use sea_orm::ConnectionTrait;
    db.conn().execute_unprepared(sql).await.unwrap();
    verify(app).await
}
