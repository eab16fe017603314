use sea_orm_migration::prelude::*;

/// The judicial district of each licence (mediation regulation art. 9 keeps the list of
/// mediators per district). Licences from before have none (''); the default also lets a
/// replica that does not know the column yet keep writing.
#[derive(DeriveMigrationName)]
pub struct Migration;

const STATEMENTS: &[&str] =
    &["ALTER TABLE licences ADD COLUMN judicial_district TEXT NOT NULL DEFAULT ''"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for s in STATEMENTS {
            manager.get_connection().execute_unprepared(s).await?;
        }
        Ok(())
    }
}
