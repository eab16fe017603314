use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

/// Request ids belong to their caller: the idempotency key becomes
/// `(method, caller, request_id)`. Records written before carry the caller `''`, which no
/// caller has, so they are never replayed to anyone (they cannot say whose they were); the
/// column's default keeps a replica of the previous version working during a rollout.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let blob = match manager.get_database_backend() {
            DbBackend::Postgres => "BYTEA",
            _ => "BLOB",
        };
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "CREATE TABLE idempotency_by_caller (
                method TEXT NOT NULL,
                caller TEXT NOT NULL DEFAULT '',
                request_id TEXT NOT NULL,
                request_hash TEXT NOT NULL,
                response {blob} NOT NULL,
                create_us BIGINT NOT NULL,
                PRIMARY KEY (method, caller, request_id)
            )"
        ))
        .await?;
        db.execute_unprepared(
            "INSERT INTO idempotency_by_caller \
             (method, caller, request_id, request_hash, response, create_us) \
             SELECT method, '', request_id, request_hash, response, create_us FROM idempotency",
        )
        .await?;
        db.execute_unprepared("DROP TABLE idempotency").await?;
        db.execute_unprepared("ALTER TABLE idempotency_by_caller RENAME TO idempotency")
            .await?;
        Ok(())
    }
}
