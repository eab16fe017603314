use sea_orm_migration::prelude::*;

/// Deadlines through the legal calendar (issue 16): the lists' "due within N days" and
/// "overdue", and a late holiday or closure finding the open deadlines it moves, read the
/// `deadline_us` column (the end of the last day; for older rows the deadline as stored)
/// through these indexes rather than every resolution.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = manager.get_connection();
        // A group's list filtered on its deadlines.
        c.execute_unprepared(
            "CREATE INDEX resolutions_group_deadline ON resolutions (working_group_id, deadline_us)",
        )
        .await?;
        // A publication's days, across every group.
        c.execute_unprepared("CREATE INDEX resolutions_deadline ON resolutions (deadline_us)")
            .await?;
        Ok(())
    }
}
