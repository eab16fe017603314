//! The registry's schema, after the platform's own tables.

use mosharekat_platform::migrations as platform;
use sea_orm_migration::prelude::*;

mod m20261129_000002_registry;
mod m20261201_000005_licence_event_actor_role;
mod m20261202_000010_calendar;
mod m20261226_000011_licence_judicial_district;
mod m20261231_000020_licence_codes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(platform::m20261129_000001_platform::Migration),
            Box::new(m20261129_000002_registry::Migration),
            Box::new(platform::m20261201_000001_idempotency_per_caller::Migration),
            Box::new(platform::m20261201_000002_write_probe::Migration),
            Box::new(m20261201_000005_licence_event_actor_role::Migration),
            // after every migration released before it, so existing databases take it last
            Box::new(platform::m20261202_000001_event_stalls::Migration),
            Box::new(mosharekat_notify::migrations::m20261202_000001_notifications::Migration),
            Box::new(mosharekat_notify::migrations::m20261223_000001_reminders_by_key::Migration),
            Box::new(m20261202_000010_calendar::Migration),
            Box::new(m20261226_000011_licence_judicial_district::Migration),
            Box::new(m20261231_000020_licence_codes::Migration),
        ]
    }
}
