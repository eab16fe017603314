use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

/// The audit log, idempotency records and event-stream cursors.
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
        db.execute_unprepared(
            "CREATE TABLE audit_log (
                seq BIGINT PRIMARY KEY,
                time_us BIGINT NOT NULL,
                actor TEXT NOT NULL,
                role TEXT NOT NULL,
                method TEXT NOT NULL,
                resource TEXT NOT NULL,
                trace_id TEXT NOT NULL,
                on_behalf_of TEXT NOT NULL,
                previous_hash TEXT NOT NULL,
                hash TEXT NOT NULL
            )",
        )
        .await?;
        db.execute_unprepared("CREATE INDEX audit_log_resource ON audit_log (resource, seq)")
            .await?;
        db.execute_unprepared(&format!(
            "CREATE TABLE idempotency (
                method TEXT NOT NULL,
                request_id TEXT NOT NULL,
                request_hash TEXT NOT NULL,
                response {blob} NOT NULL,
                create_us BIGINT NOT NULL,
                PRIMARY KEY (method, request_id)
            )"
        ))
        .await?;
        db.execute_unprepared(
            "CREATE TABLE event_cursor (
                stream TEXT PRIMARY KEY,
                last_sequence BIGINT NOT NULL
            )",
        )
        .await?;
        Ok(())
    }
}
