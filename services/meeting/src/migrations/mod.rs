//! The meeting service's schema, after the platform's own tables.

use mosharekat_platform::migrations as platform;
use sea_orm_migration::prelude::*;

mod m20261129_000004_meeting;
mod m20261210_000006_minutes_hash_version;
mod m20261220_000007_own_records;
mod m20261230_000008_deadlines;
mod m20270105_000009_minutes_review;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(platform::m20261129_000001_platform::Migration),
            Box::new(m20261129_000004_meeting::Migration),
            Box::new(platform::m20261201_000001_idempotency_per_caller::Migration),
            Box::new(platform::m20261201_000002_write_probe::Migration),
            Box::new(m20261210_000006_minutes_hash_version::Migration),
            Box::new(m20261220_000007_own_records::Migration),
            // after every migration released before it, so existing databases take it last
            Box::new(platform::m20261202_000001_event_stalls::Migration),
            // issue 16: notifications and reminders, then the deadlines' indexes
            Box::new(mosharekat_notify::migrations::m20261202_000001_notifications::Migration),
            Box::new(mosharekat_notify::migrations::m20261223_000001_reminders_by_key::Migration),
            Box::new(m20261230_000008_deadlines::Migration),
            // issue 17: the minutes' comment window
            Box::new(m20270105_000009_minutes_review::Migration),
        ]
    }
}
