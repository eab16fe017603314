use sea_orm_migration::prelude::*;

/// The events of a followed stream that failed to be handled: how often, when and why,
/// and those an administrator skipped (kept, so that a skip is never undone).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE event_stall (
                    stream TEXT NOT NULL,
                    sequence BIGINT NOT NULL,
                    kind TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    attempts BIGINT NOT NULL,
                    first_failure_us BIGINT NOT NULL,
                    last_failure_us BIGINT NOT NULL,
                    last_error TEXT NOT NULL,
                    skipped BOOLEAN NOT NULL DEFAULT FALSE,
                    skip_reason TEXT NOT NULL DEFAULT '',
                    resolved_by TEXT NOT NULL DEFAULT '',
                    resolved_us BIGINT,
                    PRIMARY KEY (stream, sequence)
                )",
            )
            .await?;
        Ok(())
    }
}
