//! A field written by a newer release survives a change.

use super::*;

on_both_databases!(a_field_written_by_a_newer_release_survives_a_change,);

async fn restore(db: &Db, table: &str, id: &str, v: &serde_json::Value) {
    use sea_orm::ConnectionTrait as _;
    db.conn()
        .execute_raw(db.stmt(
            &format!("UPDATE {table} SET record = $1 WHERE id = $2"),
            [v.to_string().into(), id.into()],
        ))
        .await
        .unwrap();
}

/// During a rolling upgrade a newer replica writes fields this release does not know; a
/// change made by this release keeps them, and the newer schema number, as they were.
async fn a_field_written_by_a_newer_release_survives_a_change(b: Backend) {
    use pb::Position as P;
    use pb::Seat as S;
    let e = env(b).await;
    let db = e.meeting_db().await;
    let g = e.group().await;
    let chair = e.seat(&g, 0, S::Chair, P::Unspecified, "").await.unwrap();
    let official = e
        .seat(&g, 1, S::Official, P::ChiefInspector, "")
        .await
        .unwrap();
    let m = e.schedule(&g, "جلسهٔ ارتقا").await;
    let gid = g.name.rsplit('/').next().unwrap().to_owned();
    let future = serde_json::json!({"sessions": [{"room": "۲"}], "note": "از نسخهٔ بعد"});
    for (table, id) in [
        ("working_groups", gid.clone()),
        ("meetings", row_id(&m.name)),
    ] {
        let mut v = stored(&db, table, &id).await;
        assert_eq!(v["schema"], 1, "{table}");
        v["schema"] = 2.into();
        v["from_the_future"] = future.clone();
        restore(&db, table, &id, &v).await;
    }

    // Changed by this release: the group's title, the meeting's attendance; then started.
    let mut wg = e.wg.clone();
    let updated = wg
        .update_working_group(e.sec(pb::UpdateWorkingGroupRequest {
            working_group: Some(pb::WorkingGroup {
                name: g.name.clone(),
                title: "کارگروه استانی (ویرایش)".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["title".into()],
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .working_group
        .unwrap();
    assert_eq!(updated.etag, "2");
    e.attend(&m.name, &[&chair, &official]).await.unwrap();
    e.start(&m.name).await;
    for (table, id) in [("working_groups", gid), ("meetings", row_id(&m.name))] {
        let v = stored(&db, table, &id).await;
        assert_eq!(v["from_the_future"], future, "{table}: {v}");
        assert_eq!(v["schema"], 2, "{table}");
    }
    let v = stored(&db, "working_groups", g.name.rsplit('/').next().unwrap()).await;
    assert_eq!(v["title"], "کارگروه استانی (ویرایش)");
    let v = stored(&db, "meetings", &row_id(&m.name)).await;
    assert_eq!(v["state"], "IN_SESSION");
}
