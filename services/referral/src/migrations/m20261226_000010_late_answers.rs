use sea_orm_migration::prelude::*;

/// Offers an institution answered late, or never answered before the source took the
/// case back (mediation regulation art. 29): one row per referral and institution, kept
/// after the referral has moved on, so that suggestions can count them against it.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = manager.get_connection();
        for sql in [
            "CREATE TABLE referral_late_answers (\
             referral_id TEXT NOT NULL, \
             institution_id TEXT NOT NULL, \
             answer_due_us BIGINT NOT NULL, \
             answered_us BIGINT NULL, \
             recorded_us BIGINT NOT NULL, \
             PRIMARY KEY (referral_id, institution_id))",
            "CREATE INDEX referral_late_answers_by_institution ON referral_late_answers (institution_id)",
        ] {
            c.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
