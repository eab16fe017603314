use sea_orm_migration::prelude::*;

/// Notifications and deadline reminders, as columns (never an API message's encoding).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // `seq` is gap-free: written as max + 1 under the write turn, so a gateway that
        // has seen N has seen everything before N.
        db.execute_unprepared(
            "CREATE TABLE notification (
                seq BIGINT PRIMARY KEY,
                version BIGINT NOT NULL,
                recipient_kind TEXT NOT NULL,
                recipient_id TEXT NOT NULL,
                recipient_name TEXT NOT NULL,
                channel TEXT NOT NULL,
                address TEXT NOT NULL,
                resource TEXT NOT NULL,
                reference TEXT NOT NULL,
                office TEXT NOT NULL,
                template TEXT NOT NULL,
                subject TEXT NOT NULL,
                body TEXT NOT NULL,
                state TEXT NOT NULL,
                failure_reason TEXT NOT NULL,
                attempts BIGINT NOT NULL,
                next_attempt_us BIGINT,
                queued_us BIGINT NOT NULL,
                sent_us BIGINT,
                delivered_us BIGINT,
                failed_us BIGINT
            )",
        )
        .await?;
        for index in [
            "CREATE INDEX notification_channel ON notification (channel, seq)",
            "CREATE INDEX notification_due ON notification (channel, state, next_attempt_us)",
            "CREATE INDEX notification_recipient ON notification (recipient_kind, recipient_id, seq)",
            "CREATE INDEX notification_office ON notification (office, state, seq)",
        ] {
            db.execute_unprepared(index).await?;
        }
        db.execute_unprepared(
            "CREATE TABLE notification_reminder (
                id BIGINT PRIMARY KEY,
                deadline_key TEXT NOT NULL,
                offset_code TEXT NOT NULL,
                due_us BIGINT NOT NULL,
                fire_us BIGINT NOT NULL,
                state TEXT NOT NULL,
                topic TEXT NOT NULL,
                resource TEXT NOT NULL,
                reference_label TEXT NOT NULL,
                reference_number BIGINT NOT NULL,
                office TEXT NOT NULL,
                recipient_kind TEXT NOT NULL,
                recipient_id TEXT NOT NULL,
                recipient_name TEXT NOT NULL,
                channel TEXT NOT NULL,
                address TEXT NOT NULL,
                fired_seq BIGINT,
                done_us BIGINT,
                note TEXT NOT NULL,
                UNIQUE (deadline_key, offset_code, recipient_kind, recipient_id, channel)
            )",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX notification_reminder_due ON notification_reminder (state, fire_us)",
        )
        .await?;
        Ok(())
    }
}
