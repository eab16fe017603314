use sea_orm_migration::prelude::*;

/// Deadlines on the legal calendar (issue 16): the offer's answer time beside the due
/// time, indexes that keep "due within N days" and "overdue" bounded, and the short
/// reference numbers that notifications quote («ارجاع ۱۲»), back-filled in creation order
/// (ids are UUID v7, so id order is creation order).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = manager.get_connection();
        for sql in [
            "ALTER TABLE referrals ADD COLUMN answer_us BIGINT NULL",
            "ALTER TABLE referrals ADD COLUMN ref_no BIGINT NULL",
            "ALTER TABLE filings ADD COLUMN ref_no BIGINT NULL",
            // Portable on SQLite and PostgreSQL; run once, on the rows of the release before.
            "UPDATE referrals SET ref_no = (SELECT COUNT(*) FROM referrals r2 WHERE r2.id <= referrals.id)",
            "UPDATE filings SET ref_no = (SELECT COUNT(*) FROM filings f2 WHERE f2.id <= filings.id)",
            "CREATE UNIQUE INDEX referrals_ref_no ON referrals (ref_no)",
            "CREATE UNIQUE INDEX filings_ref_no ON filings (ref_no)",
            "CREATE INDEX referrals_state_due ON referrals (state, due_us)",
            "CREATE INDEX referrals_state_answer ON referrals (state, answer_us)",
        ] {
            c.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
