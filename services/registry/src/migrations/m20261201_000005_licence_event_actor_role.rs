use sea_orm_migration::prelude::*;

/// The role of whoever made each licence change, beside its subject (`actor`), so that
/// the event tells consumers who caused what they do. Events stored before have no role
/// (''); the default also lets a replica that does not know the column yet keep writing.
#[derive(DeriveMigrationName)]
pub struct Migration;

const STATEMENTS: &[&str] =
    &["ALTER TABLE licence_events ADD COLUMN actor_role TEXT NOT NULL DEFAULT ''"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for s in STATEMENTS {
            manager.get_connection().execute_unprepared(s).await?;
        }
        Ok(())
    }
}
