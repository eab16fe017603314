use sea_orm_migration::prelude::*;

/// Institutions, their statute areas, licences and the licence event log.
#[derive(DeriveMigrationName)]
pub struct Migration;

const STATEMENTS: &[&str] = &[
    "CREATE TABLE institutions (
        id TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        name_key TEXT NOT NULL,
        kind INTEGER NOT NULL,
        national_id TEXT NOT NULL UNIQUE,
        registration_number TEXT NOT NULL,
        registering_authority TEXT NOT NULL,
        province TEXT NOT NULL,
        province_key TEXT NOT NULL,
        city TEXT NOT NULL,
        address TEXT NOT NULL,
        phone TEXT NOT NULL,
        email TEXT NOT NULL,
        activity_areas TEXT NOT NULL,
        representatives TEXT NOT NULL,
        state INTEGER NOT NULL,
        dissolution_reason TEXT NOT NULL,
        create_us BIGINT NOT NULL,
        update_us BIGINT NOT NULL,
        dissolve_us BIGINT,
        version BIGINT NOT NULL
    )",
    "CREATE INDEX institutions_province ON institutions (province_key, id)",
    "CREATE TABLE institution_areas (
        area INTEGER NOT NULL,
        institution_id TEXT NOT NULL REFERENCES institutions (id),
        PRIMARY KEY (area, institution_id)
    )",
    "CREATE TABLE licences (
        id TEXT PRIMARY KEY,
        institution_id TEXT NOT NULL REFERENCES institutions (id),
        province TEXT NOT NULL,
        province_key TEXT NOT NULL,
        activity_areas TEXT NOT NULL,
        permitted_actions TEXT NOT NULL,
        valid_from_us BIGINT NOT NULL,
        valid_until_us BIGINT NOT NULL,
        state INTEGER NOT NULL,
        create_us BIGINT NOT NULL,
        update_us BIGINT NOT NULL,
        version BIGINT NOT NULL
    )",
    "CREATE INDEX licences_institution ON licences (institution_id, id)",
    "CREATE INDEX licences_state ON licences (state, valid_until_us)",
    "CREATE TABLE licence_events (
        seq BIGINT PRIMARY KEY,
        licence_id TEXT NOT NULL,
        institution_id TEXT NOT NULL,
        kind INTEGER NOT NULL,
        from_state INTEGER NOT NULL,
        to_state INTEGER NOT NULL,
        actor TEXT NOT NULL,
        reason TEXT NOT NULL,
        time_us BIGINT NOT NULL,
        traceparent TEXT NOT NULL
    )",
    "CREATE INDEX licence_events_licence ON licence_events (licence_id, seq)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for s in STATEMENTS {
            manager.get_connection().execute_unprepared(s).await?;
        }
        Ok(())
    }
}
