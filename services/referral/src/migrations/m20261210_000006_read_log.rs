use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

/// Who read what: one row per filing or referral read by anyone but its own institution
/// (domain.md, "Who read what"), kept as long as the case (never deleted). Auditors list
/// it per resource and per reader, in `seq` order.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let seq = match manager.get_database_backend() {
            DbBackend::Postgres => "BIGSERIAL PRIMARY KEY",
            // SQLite's rowid: never reused, as rows are never deleted.
            _ => "INTEGER PRIMARY KEY",
        };
        let statements = [
            format!(
                "CREATE TABLE read_log (
                    seq {seq},
                    time_us BIGINT NOT NULL,
                    reader TEXT NOT NULL,
                    role TEXT NOT NULL,
                    on_behalf_of TEXT NOT NULL,
                    method TEXT NOT NULL,
                    resource TEXT NOT NULL,
                    trace_id TEXT NOT NULL
                )"
            ),
            "CREATE INDEX read_log_resource ON read_log (resource, seq)".into(),
            "CREATE INDEX read_log_reader ON read_log (reader, seq)".into(),
        ];
        for s in statements {
            manager.get_connection().execute_unprepared(&s).await?;
        }
        Ok(())
    }
}
