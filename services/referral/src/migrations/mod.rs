//! The referral service's schema, after the platform's own tables.

use mosharekat_platform::migrations as platform;
use sea_orm_migration::prelude::*;

mod m20261129_000003_referral;
mod m20261210_000006_read_log;
mod m20261220_000007_referral_documents;
mod m20261221_000008_referrals_by_institution;
mod m20261222_000009_deadlines;
mod m20261226_000010_late_answers;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(platform::m20261129_000001_platform::Migration),
            Box::new(m20261129_000003_referral::Migration),
            Box::new(platform::m20261201_000001_idempotency_per_caller::Migration),
            Box::new(platform::m20261201_000002_write_probe::Migration),
            Box::new(m20261210_000006_read_log::Migration),
            Box::new(m20261220_000007_referral_documents::Migration),
            Box::new(m20261221_000008_referrals_by_institution::Migration),
            // after every migration released before it, so existing databases take it last
            Box::new(platform::m20261202_000001_event_stalls::Migration),
            Box::new(m20261222_000009_deadlines::Migration),
            Box::new(mosharekat_notify::migrations::m20261202_000001_notifications::Migration),
            Box::new(mosharekat_notify::migrations::m20261223_000001_reminders_by_key::Migration),
            Box::new(m20261226_000010_late_answers::Migration),
        ]
    }
}
