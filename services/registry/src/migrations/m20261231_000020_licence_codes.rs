use sea_orm::{ConnectionTrait, FromQueryResult, Statement};
use sea_orm_migration::prelude::*;

use crate::names::{InstitutionId, LicenceId, LicenceName};

/// Each approved licence's verification code (the public record), given in the
/// transaction that approves it. The licences approved before codes existed get theirs
/// here, once, dated by their approval: so that every approved licence has one in the
/// table, and the public record's reads, which anyone may make without a token, never
/// write.
#[derive(DeriveMigrationName)]
pub struct Migration;

const STATEMENTS: &[&str] = &["CREATE TABLE licence_codes (
        code TEXT PRIMARY KEY,
        licence_id TEXT NOT NULL UNIQUE,
        institution_id TEXT NOT NULL,
        create_us BIGINT NOT NULL
    )"];

#[derive(Debug, FromQueryResult)]
struct Approved {
    licence_id: String,
    institution_id: String,
    approved_us: i64,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = manager.get_connection();
        for s in STATEMENTS {
            c.execute_unprepared(s).await?;
        }
        let approved = Approved::find_by_statement(Statement::from_string(
            c.get_database_backend(),
            format!(
                "SELECT licence_id, institution_id, MIN(time_us) AS approved_us FROM licence_events \
                 WHERE kind = {} GROUP BY licence_id, institution_id ORDER BY licence_id",
                crate::rules::LicenceEventKind::Approved.code()
            ),
        ))
        .all(c)
        .await?;
        for a in approved {
            let name = LicenceName {
                institution: InstitutionId::stored(a.institution_id),
                id: LicenceId::stored(a.licence_id),
            };
            crate::public::store::assign(c, &name, a.approved_us)
                .await
                .map_err(|e| DbErr::Migration(format!("giving {name} its code: {e}")))?;
        }
        Ok(())
    }
}
