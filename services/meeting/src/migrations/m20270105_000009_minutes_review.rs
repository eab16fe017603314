use sea_orm_migration::prelude::*;

/// The minutes' review (issue 17): the end of a meeting's open comment window, so that a
/// holiday or closure published late finds the windows it moves through an index rather
/// than every meeting. NULL when no window is open.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = manager.get_connection();
        c.execute_unprepared("ALTER TABLE meetings ADD COLUMN review_due_us BIGINT")
            .await?;
        c.execute_unprepared("CREATE INDEX meetings_review_due ON meetings (review_due_us)")
            .await?;
        Ok(())
    }
}
