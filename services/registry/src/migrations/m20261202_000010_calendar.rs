use sea_orm_migration::prelude::*;

/// The legal calendar's changes published through the API (holidays, confirmations,
/// corrections, closures), each with its gap-free sequence, who, when and why; the
/// change itself is a versioned JSON document (`schema`), never an API message's
/// encoding. And each licence's expiry as the calendar counted it (the rule applied, a
/// JSON document; NULL for licences put in force before).
#[derive(DeriveMigrationName)]
pub struct Migration;

const STATEMENTS: &[&str] = &[
    "CREATE TABLE calendar_changes (
        seq BIGINT PRIMARY KEY,
        kind TEXT NOT NULL,
        doc TEXT NOT NULL,
        actor TEXT NOT NULL,
        actor_role TEXT NOT NULL,
        reason TEXT NOT NULL,
        time_us BIGINT NOT NULL
    )",
    "ALTER TABLE licences ADD COLUMN expiry_rule TEXT",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for s in STATEMENTS {
            manager.get_connection().execute_unprepared(s).await?;
        }
        Ok(())
    }
}
