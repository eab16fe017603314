//! The write ceiling: single-row insert transactions straight through the driver, on the
//! same database with the services' connection settings (SQLite: WAL, `synchronous=FULL`,
//! writers queued in the process, then `BEGIN IMMEDIATE`; PostgreSQL: plain concurrent
//! transactions, committed durably, so group commit helps them).

use mosharekat_platform::db::{Db, DbOptions};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

use crate::load::{self, Sample, Spec};

pub async fn inserts(url: &str, spec: Spec) -> anyhow::Result<Sample> {
    let db = Db::connect(url, &DbOptions::default()).await?;
    db.conn()
        .execute_unprepared(
            "CREATE TABLE IF NOT EXISTS bench_rows (id TEXT PRIMARY KEY, payload TEXT NOT NULL, created BIGINT NOT NULL)",
        )
        .await?;
    let sample = load::run(spec, std::slice::from_ref(&db), |db: Db, n| async move {
        let insert = db.stmt(
            "INSERT INTO bench_rows (id, payload, created) VALUES ($1, $2, $3)",
            [
                uuid::Uuid::now_v7().to_string().into(),
                format!("row {n}: a payload about the size of an institution's fields").into(),
                chrono::Utc::now().timestamp_micros().into(),
            ],
        );
        let e = |e: sea_orm::DbErr| e.to_string();
        if db.backend() == DbBackend::Sqlite {
            let txn = db.begin_write().await.map_err(|e| e.to_string())?;
            txn.execute_raw(insert).await.map_err(e)?;
            txn.commit().await.map_err(e)
        } else {
            let txn = db.conn().begin().await.map_err(e)?;
            txn.execute_raw(insert).await.map_err(e)?;
            txn.commit().await.map_err(e)
        }
    })
    .await;
    db.conn()
        .execute_raw(Statement::from_string(
            db.backend(),
            "DROP TABLE bench_rows",
        ))
        .await?;
    Ok(sample)
}
