use sea_orm_migration::prelude::*;

/// The form each meeting's minutes hash was taken over (see `crate::canonical`). Every row
/// before this one was hashed in form 1, and so is any row a replica of the previous
/// release approves during a rolling upgrade (it does not know the column): hence the
/// default. Approvals since write 2.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE meetings ADD COLUMN minutes_hash_version INTEGER NOT NULL DEFAULT 1",
            )
            .await?;
        Ok(())
    }
}
