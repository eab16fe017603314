use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

/// Working groups, members, meetings and resolutions, each kept whole as its encoded
/// message in `body` beside the columns lists filter on.
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
                "CREATE TABLE working_groups (id TEXT PRIMARY KEY, province_key TEXT NOT NULL,
                 version BIGINT NOT NULL, body {blob} NOT NULL)"
            ),
            format!(
                "CREATE TABLE members (id TEXT PRIMARY KEY, working_group_id TEXT NOT NULL,
                 institution_id TEXT NOT NULL, seated BOOLEAN NOT NULL,
                 version BIGINT NOT NULL, body {blob} NOT NULL)"
            ),
            "CREATE INDEX members_group ON members (working_group_id, seated)".into(),
            "CREATE INDEX members_institution ON members (institution_id, seated)".into(),
            // id is "{working_group_id}/{number}": numbers are per working group.
            format!(
                "CREATE TABLE meetings (id TEXT PRIMARY KEY, working_group_id TEXT NOT NULL,
                 number INTEGER NOT NULL, version BIGINT NOT NULL, body {blob} NOT NULL,
                 UNIQUE (working_group_id, number))"
            ),
            format!(
                "CREATE TABLE resolutions (id TEXT PRIMARY KEY, working_group_id TEXT NOT NULL,
                 meeting_id TEXT NOT NULL, state INTEGER NOT NULL, deadline_us BIGINT, responsible_member TEXT NOT NULL,
                 version BIGINT NOT NULL, body {blob} NOT NULL)"
            ),
            "CREATE INDEX resolutions_group ON resolutions (working_group_id, id)".into(),
            "CREATE INDEX resolutions_meeting ON resolutions (meeting_id, id)".into(),
        ];
        for s in statements {
            manager.get_connection().execute_unprepared(&s).await?;
        }
        Ok(())
    }
}
