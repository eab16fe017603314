use sea_orm_migration::prelude::*;

/// Reminders found by their deadline's key: `schedule`, `reschedule` and `cancel` run in
/// the write transaction of every change that sets or ends a deadline, and without this
/// index each scanned every reminder the service ever scheduled (the referral service's
/// notify benchmark). Each service adds it after `m20261202_000001_notifications`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX notification_reminder_key ON notification_reminder (deadline_key, state)",
            )
            .await?;
        Ok(())
    }
}
