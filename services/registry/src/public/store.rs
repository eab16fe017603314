//! The public record's own table, `licence_codes` (each approved licence's verification
//! code), and the reads the public record makes of the registry's tables. Every
//! statement uses `$n` placeholders, which SQLite and PostgreSQL both accept.

use std::collections::HashMap;

use mosharekat_platform::db::{WriteTxn, db_error};
use mosharekat_platform::error::ApiError;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

use super::code::VerificationCode;
use crate::names::{InstitutionId, LicenceId, LicenceName};
use crate::rules::LicenceEventKind;

fn stmt<C: ConnectionTrait, I: IntoIterator<Item = Value>>(
    c: &C,
    sql: &str,
    values: I,
) -> Statement {
    Statement::from_sql_and_values(c.get_database_backend(), sql, values)
}

/// The kinds of licence event the public record tells: grants, suspensions,
/// reinstatements and revocations.
pub const PUBLIC_KINDS: [LicenceEventKind; 4] = [
    LicenceEventKind::Approved,
    LicenceEventKind::Suspended,
    LicenceEventKind::Reinstated,
    LicenceEventKind::Revoked,
];

/// Draws a code nobody holds: a clash of 40 random bits is all but impossible, and
/// drawn again if it happens.
async fn unused_code<C: ConnectionTrait>(c: &C) -> Result<VerificationCode, ApiError> {
    for _ in 0..8 {
        let code = VerificationCode::generate()
            .map_err(|e| ApiError::internal(anyhow::anyhow!("no randomness: {e}")))?;
        if licence_of_code(c, &code).await?.is_none() {
            return Ok(code);
        }
    }
    Err(ApiError::internal(anyhow::anyhow!(
        "eight verification codes drawn in a row are taken"
    )))
}

/// Gives `licence` its verification code, in the transaction that approves it (or, once,
/// in the migration that gave the licences approved before codes theirs). A licence that
/// has one keeps it. Returns the licence's code.
pub async fn assign<C: ConnectionTrait>(
    c: &C,
    licence: &LicenceName,
    now_us: i64,
) -> Result<VerificationCode, ApiError> {
    if let Some(code) = code_of(c, &licence.id).await? {
        return Ok(code);
    }
    let code = unused_code(c).await?;
    c.execute_raw(stmt(
        c,
        "INSERT INTO licence_codes (code, licence_id, institution_id, create_us) VALUES ($1, $2, $3, $4)",
        [
            code.as_str().into(),
            licence.id.as_str().into(),
            licence.institution.as_str().into(),
            now_us.into(),
        ],
    ))
    .await
    .map_err(db_error)?;
    Ok(code)
}

/// [`assign`] in the change path's write transaction.
pub async fn assign_in(
    txn: &WriteTxn,
    licence: &LicenceName,
) -> Result<VerificationCode, ApiError> {
    assign(txn, licence, txn.now_micros()).await
}

#[derive(Debug, FromQueryResult)]
struct CodeRow {
    code: String,
    licence_id: String,
    institution_id: String,
}

/// The code of the licence `id`, if it has one.
pub async fn code_of<C: ConnectionTrait>(
    c: &C,
    id: &LicenceId,
) -> Result<Option<VerificationCode>, ApiError> {
    Ok(codes_of(c, std::slice::from_ref(id)).await?.remove(id))
}

/// The codes of the licences `ids` that have one, in one query.
pub async fn codes_of<C: ConnectionTrait>(
    c: &C,
    ids: &[LicenceId],
) -> Result<HashMap<LicenceId, VerificationCode>, ApiError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let rows = CodeRow::find_by_statement(stmt(
        c,
        &format!(
            "SELECT code, licence_id, institution_id FROM licence_codes WHERE licence_id IN ({})",
            marks.join(", ")
        ),
        ids.iter()
            .map(|i| i.as_str().into())
            .collect::<Vec<Value>>(),
    ))
    .all(c)
    .await
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                LicenceId::stored(r.licence_id),
                VerificationCode::stored(r.code),
            )
        })
        .collect())
}

/// The licence a code was given to.
pub async fn licence_of_code<C: ConnectionTrait>(
    c: &C,
    code: &VerificationCode,
) -> Result<Option<LicenceName>, ApiError> {
    let row = CodeRow::find_by_statement(stmt(
        c,
        "SELECT code, licence_id, institution_id FROM licence_codes WHERE code = $1",
        [code.as_str().into()],
    ))
    .one(c)
    .await
    .map_err(db_error)?;
    Ok(row.map(|r| LicenceName {
        institution: InstitutionId::stored(r.institution_id),
        id: LicenceId::stored(r.licence_id),
    }))
}

/// One licence event of the public record: what happened to which licence, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicEvent {
    pub sequence: i64,
    pub kind: LicenceEventKind,
    pub time_us: i64,
    pub licence: LicenceName,
}

#[derive(Debug, FromQueryResult)]
struct EventRow {
    seq: i64,
    kind: i32,
    time_us: i64,
    licence_id: String,
    institution_id: String,
}

/// The public record's licence events after `after`, oldest first, at most `limit`
/// (neither who made them nor why: those are not read).
pub async fn public_events<C: ConnectionTrait>(
    c: &C,
    after: i64,
    limit: u64,
) -> Result<Vec<PublicEvent>, ApiError> {
    let kinds: Vec<String> = PUBLIC_KINDS.iter().map(|k| k.code().to_string()).collect();
    let rows = EventRow::find_by_statement(stmt(
        c,
        &format!(
            "SELECT seq, kind, time_us, licence_id, institution_id FROM licence_events \
             WHERE kind IN ({}) AND seq > $1 ORDER BY seq LIMIT $2",
            kinds.join(", ")
        ),
        [after.into(), (limit as i64).into()],
    ))
    .all(c)
    .await
    .map_err(db_error)?;
    rows.into_iter()
        .map(|r| {
            let kind = LicenceEventKind::from_code(r.kind).ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!(
                    "stored event {} has an unknown kind",
                    r.seq
                ))
            })?;
            Ok(PublicEvent {
                sequence: r.seq,
                kind,
                time_us: r.time_us,
                licence: LicenceName {
                    institution: InstitutionId::stored(r.institution_id),
                    id: LicenceId::stored(r.licence_id),
                },
            })
        })
        .collect()
}
