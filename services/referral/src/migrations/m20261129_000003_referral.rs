use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

/// Filings, referrals and their timelines. Each resource is kept whole as its encoded
/// message in `body`; the columns beside it are what lists filter and sort on.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let blob = match manager.get_database_backend() {
            DbBackend::Postgres => "BYTEA",
            _ => "BLOB",
        };
        let statements = [
            format!(
                "CREATE TABLE filings (
                    id TEXT PRIMARY KEY,
                    institution_id TEXT NOT NULL,
                    kind INTEGER NOT NULL,
                    area INTEGER NOT NULL,
                    authority_key TEXT NOT NULL,
                    province_key TEXT NOT NULL,
                    state INTEGER NOT NULL,
                    case_number TEXT,
                    submit_us BIGINT,
                    create_us BIGINT NOT NULL,
                    update_us BIGINT NOT NULL,
                    version BIGINT NOT NULL,
                    body {blob} NOT NULL
                )"
            ),
            "CREATE UNIQUE INDEX filings_case_number ON filings (authority_key, case_number)"
                .into(),
            "CREATE INDEX filings_institution ON filings (institution_id, id)".into(),
            "CREATE INDEX filings_province ON filings (province_key, create_us)".into(),
            format!(
                "CREATE TABLE referrals (
                    id TEXT PRIMARY KEY,
                    institution_id TEXT NOT NULL,
                    source INTEGER NOT NULL,
                    kind INTEGER NOT NULL,
                    area INTEGER NOT NULL,
                    province_key TEXT NOT NULL,
                    state INTEGER NOT NULL,
                    due_us BIGINT,
                    extended BOOLEAN NOT NULL,
                    accept_us BIGINT,
                    resolve_us BIGINT,
                    outcome INTEGER NOT NULL,
                    create_us BIGINT NOT NULL,
                    update_us BIGINT NOT NULL,
                    version BIGINT NOT NULL,
                    body {blob} NOT NULL
                )"
            ),
            "CREATE INDEX referrals_institution ON referrals (institution_id, state)".into(),
            "CREATE INDEX referrals_due ON referrals (state, due_us)".into(),
            "CREATE INDEX referrals_province ON referrals (province_key, create_us)".into(),
            "CREATE TABLE timeline (
                resource TEXT NOT NULL,
                seq INTEGER NOT NULL,
                from_state TEXT NOT NULL,
                to_state TEXT NOT NULL,
                actor TEXT NOT NULL,
                time_us BIGINT NOT NULL,
                note TEXT NOT NULL,
                PRIMARY KEY (resource, seq)
            )"
            .into(),
        ];
        for s in statements {
            manager.get_connection().execute_unprepared(&s).await?;
        }
        Ok(())
    }
}
