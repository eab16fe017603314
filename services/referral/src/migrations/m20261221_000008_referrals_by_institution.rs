use sea_orm_migration::prelude::*;

/// An institution's page of referrals in id order straight from an index: with only
/// `(institution_id, state)`, each page read and sorted every referral of the institution
/// (the list benchmark, BENCHMARKS.md "After the core redesign"). Filings have the same.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX referrals_institution_id ON referrals (institution_id, id)",
            )
            .await?;
        Ok(())
    }
}
