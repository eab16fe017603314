use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

/// One row the service rewrites to learn whether its database takes writes again after a
/// storage fault (health follows it).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let blob = match manager.get_database_backend() {
            DbBackend::Postgres => "BYTEA",
            _ => "BLOB",
        };
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "CREATE TABLE write_probe (
                id BIGINT PRIMARY KEY,
                at_us BIGINT NOT NULL,
                pad {blob}
            )"
        ))
        .await?;
        db.execute_unprepared("INSERT INTO write_probe (id, at_us) VALUES (1, 0)")
            .await?;
        Ok(())
    }
}
