//! Ceilings measured straight through the driver, on the same database with the services'
//! connection settings (SQLite: WAL, `synchronous=FULL`, writers queued in the process,
//! then `BEGIN IMMEDIATE`; PostgreSQL: a pool of 8):
//!
//! - single-row insert transactions, concurrent where the database allows it (on
//!   PostgreSQL they share commits): the ceiling for any write, the baseline. On
//!   SQLite each is its own commit (the services' group commit turned off), as measured
//!   before the services shared commits, so that the ceiling stays the same measure;
//! - the same through the services' write path (`Db::begin_write`: serialised, on
//!   PostgreSQL under the advisory lock that keeps the audit chain gap-free, and sharing
//!   commits as the services do) with the
//!   statements a service write makes (three keyed reads, three inserts): the ceiling for
//!   a service write under that design;
//! - keyed single-row reads: the ceiling for any read.

use mosharekat_platform::db::{BatchLimits, Db, DbOptions};
use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};

use crate::load::{self, Sample, Spec};

const TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_rows (id TEXT PRIMARY KEY, payload TEXT NOT NULL, created BIGINT NOT NULL)";

fn e(e: sea_orm::DbErr) -> String {
    e.to_string()
}

fn insert(db: &Db, n: u64) -> sea_orm::Statement {
    db.stmt(
        "INSERT INTO bench_rows (id, payload, created) VALUES ($1, $2, $3)",
        [
            uuid::Uuid::now_v7().to_string().into(),
            format!("row {n}: a payload about the size of an institution's fields").into(),
            chrono::Utc::now().timestamp_micros().into(),
        ],
    )
}

async fn open(url: &str, batch: BatchLimits) -> anyhow::Result<Db> {
    let db = Db::connect(
        url,
        &DbOptions {
            batch,
            ..DbOptions::default()
        },
    )
    .await?;
    db.conn().execute_unprepared(TABLE).await?;
    db.conn()
        .execute_unprepared("DELETE FROM bench_rows")
        .await?;
    Ok(db)
}

pub async fn inserts(url: &str, spec: Spec) -> anyhow::Result<Sample> {
    let one_commit_each = BatchLimits {
        max_writers: 1,
        ..BatchLimits::default()
    };
    let db = open(url, one_commit_each).await?;
    Ok(
        load::run(spec, std::slice::from_ref(&db), |db: Db, n| async move {
            if db.backend() == DbBackend::Sqlite {
                let txn = db.begin_write().await.map_err(|e| e.to_string())?;
                txn.execute_raw(insert(&db, n)).await.map_err(e)?;
                txn.commit().await.map_err(e)
            } else {
                let txn = db.conn().begin().await.map_err(e)?;
                txn.execute_raw(insert(&db, n)).await.map_err(e)?;
                txn.commit().await.map_err(e)
            }
        })
        .await,
    )
}

pub async fn service_shaped_writes(url: &str, spec: Spec) -> anyhow::Result<Sample> {
    let db = open(url, BatchLimits::default()).await?;
    Ok(
        load::run(spec, std::slice::from_ref(&db), |db: Db, n| async move {
            let txn = db.begin_write().await.map_err(|e| e.to_string())?;
            for _ in 0..3 {
                let key = uuid::Uuid::now_v7().to_string();
                txn.query_one_raw(db.stmt("SELECT id FROM bench_rows WHERE id = $1", [key.into()]))
                    .await
                    .map_err(e)?;
                txn.execute_raw(insert(&db, n)).await.map_err(e)?;
            }
            txn.commit().await.map_err(e)
        })
        .await,
    )
}

pub async fn keyed_reads(url: &str, spec: Spec) -> anyhow::Result<Sample> {
    let db = open(url, BatchLimits::default()).await?;
    let mut keys = Vec::new();
    let txn = db.conn().begin().await?;
    for n in 0..1000 {
        let key = uuid::Uuid::now_v7().to_string();
        txn.execute_raw(db.stmt(
            "INSERT INTO bench_rows (id, payload, created) VALUES ($1, $2, $3)",
            [key.clone().into(), format!("row {n}").into(), 0i64.into()],
        ))
        .await?;
        keys.push(key);
    }
    txn.commit().await?;
    let keys = std::sync::Arc::new(keys);
    Ok(
        load::run(spec, std::slice::from_ref(&db), move |db: Db, n| {
            let key = keys[n as usize % keys.len()].clone();
            async move {
                db.conn()
                    .query_one_raw(db.stmt(
                        "SELECT id, payload, created FROM bench_rows WHERE id = $1",
                        [key.into()],
                    ))
                    .await
                    .map_err(e)?
                    .map(drop)
                    .ok_or_else(|| "no row".to_owned())
            }
        })
        .await,
    )
}
