use mosharekat_api::meeting::v1 as pb;
use prost::Message;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::prelude::*;

use crate::api;
use crate::store::{Extra, encode};

/// The service's own storage: every row's `body`, the prost encoding of its API message,
/// becomes `record`, its domain record in JSON (see [`crate::store`]). This is the one
/// place that still reads the old encoding. Minutes approved under hash version 1 keep
/// the bytes they were hashed over, verbatim, in `meetings.minutes_v1`, for their
/// verification alone (see [`crate::canonical::verify_v1`]).
#[derive(DeriveMigrationName)]
pub struct Migration;

fn fail(table: &str, id: &str, e: impl std::fmt::Debug) -> DbErr {
    DbErr::Custom(format!(
        "{table} {id}: cannot convert the stored message: {e:?}"
    ))
}

async fn rows<C: ConnectionTrait>(c: &C, sql: &str) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    c.query_all_raw(Statement::from_string(c.get_database_backend(), sql))
        .await
}

async fn set<C: ConnectionTrait>(
    c: &C,
    table: &str,
    id: String,
    record: String,
) -> Result<(), DbErr> {
    c.execute_raw(Statement::from_sql_and_values(
        c.get_database_backend(),
        format!("UPDATE {table} SET record = $1 WHERE id = $2"),
        [record.into(), id.into()],
    ))
    .await
    .map(|_| ())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = manager.get_connection();
        let blob = match manager.get_database_backend() {
            DbBackend::Postgres => "BYTEA",
            _ => "BLOB",
        };
        const TABLES: [&str; 4] = ["working_groups", "members", "meetings", "resolutions"];
        for t in TABLES {
            c.execute_unprepared(&format!(
                "ALTER TABLE {t} ADD COLUMN record TEXT NOT NULL DEFAULT ''"
            ))
            .await?;
        }
        c.execute_unprepared(&format!(
            "ALTER TABLE meetings ADD COLUMN minutes_v1 {blob}"
        ))
        .await?;

        for t in ["working_groups", "members", "resolutions"] {
            for r in rows(c, &format!("SELECT id, body FROM {t}")).await? {
                let id: String = r.try_get("", "id")?;
                let body: Vec<u8> = r.try_get("", "body")?;
                let record = match t {
                    "working_groups" => pb::WorkingGroup::decode(body.as_slice())
                        .map_err(|e| fail(t, &id, e))
                        .and_then(|m| api::group_from(&m, "").map_err(|e| fail(t, &id, e)))
                        .and_then(|d| encode(&d, &Extra::new()).map_err(|e| fail(t, &id, e))),
                    "members" => pb::Member::decode(body.as_slice())
                        .map_err(|e| fail(t, &id, e))
                        .and_then(|m| api::member_from(&m, "").map_err(|e| fail(t, &id, e)))
                        .and_then(|d| encode(&d, &Extra::new()).map_err(|e| fail(t, &id, e))),
                    _ => pb::Resolution::decode(body.as_slice())
                        .map_err(|e| fail(t, &id, e))
                        .and_then(|m| api::resolution_from(&m, "").map_err(|e| fail(t, &id, e)))
                        .and_then(|d| encode(&d, &Extra::new()).map_err(|e| fail(t, &id, e))),
                }?;
                set(c, t, id, record).await?;
            }
        }
        for r in rows(c, "SELECT id, body, minutes_hash_version FROM meetings").await? {
            let id: String = r.try_get("", "id")?;
            let body: Vec<u8> = r.try_get("", "body")?;
            let hash_version: i32 = r.try_get("", "minutes_hash_version")?;
            let m = pb::Meeting::decode(body.as_slice()).map_err(|e| fail("meetings", &id, e))?;
            let d = api::meeting_from(&m, "").map_err(|e| fail("meetings", &id, e))?;
            let record = encode(&d, &Extra::new()).map_err(|e| fail("meetings", &id, e))?;
            set(c, "meetings", id.clone(), record).await?;
            if hash_version == 1 && !m.content_sha256.is_empty() {
                c.execute_raw(Statement::from_sql_and_values(
                    c.get_database_backend(),
                    "UPDATE meetings SET minutes_v1 = $1 WHERE id = $2",
                    [body.into(), id.into()],
                ))
                .await?;
            }
        }
        for t in TABLES {
            c.execute_unprepared(&format!("ALTER TABLE {t} DROP COLUMN body"))
                .await?;
        }
        Ok(())
    }
}
