//! The referral service's tables. A filing or referral is stored whole, as its encoded
//! message; the columns beside it are derived from it on every write and serve the lists'
//! filters and order. Timelines live in their own table.

use mosharekat_api::common::v1::TimelineEntry;
use mosharekat_api::referral::v1 as pb;
use mosharekat_persian::fold_for_search;
use mosharekat_platform::db::{db_error, from_timestamp, is_unique_violation, to_timestamp};
use mosharekat_platform::error::ApiError;
use prost::Message;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

fn stmt<C: ConnectionTrait, I: IntoIterator<Item = Value>>(
    c: &C,
    sql: &str,
    values: I,
) -> Statement {
    Statement::from_sql_and_values(c.get_database_backend(), sql, values)
}

use mosharekat_platform::records;
pub use mosharekat_platform::records::{Record, Where};

// ---- filings ----

pub fn institution_id(name: &str) -> &str {
    name.trim_start_matches("institutions/")
}

pub async fn get_filing<C: ConnectionTrait>(
    c: &C,
    id: &str,
) -> Result<Option<Record<pb::Filing>>, ApiError> {
    records::get(c, "filings", id).await
}

fn filing_columns(f: &pb::Filing) -> Vec<Value> {
    vec![
        institution_id(&f.institution).to_owned().into(),
        f.kind.into(),
        f.activity_area.into(),
        fold_for_search(&f.authority).into(),
        fold_for_search(&f.province).into(),
        f.state.into(),
        Some(f.case_number.clone()).filter(|c| !c.is_empty()).into(),
        f.submit_time.as_ref().and_then(from_timestamp).into(),
    ]
}

fn case_number_conflict(e: sea_orm::DbErr, f: &pb::Filing) -> ApiError {
    if is_unique_violation(&e) {
        ApiError::already_exists(
            "case number",
            format!("{} at {}", f.case_number, f.authority),
        )
    } else {
        db_error(e)
    }
}

pub async fn insert_filing<C: ConnectionTrait>(
    c: &C,
    id: &str,
    f: &pb::Filing,
    now: i64,
) -> Result<(), ApiError> {
    let mut values: Vec<Value> = vec![id.into()];
    values.extend(filing_columns(f));
    values.extend([now.into(), f.encode_to_vec().into()]);
    c.execute_raw(stmt(
        c,
        "INSERT INTO filings (id, institution_id, kind, area, authority_key, province_key, state, case_number, \
         submit_us, create_us, update_us, version, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, 1, $11)",
        values,
    ))
    .await
    .map_err(|e| case_number_conflict(e, f))?;
    Ok(())
}

/// Writes `f` over the stored filing if it is still at `version`; false when it is not.
pub async fn save_filing<C: ConnectionTrait>(
    c: &C,
    id: &str,
    version: i64,
    f: &pb::Filing,
    now: i64,
) -> Result<bool, ApiError> {
    let mut values = filing_columns(f);
    values.extend([
        now.into(),
        f.encode_to_vec().into(),
        id.into(),
        version.into(),
    ]);
    let r = c
        .execute_raw(stmt(
            c,
            "UPDATE filings SET institution_id = $1, kind = $2, area = $3, authority_key = $4, province_key = $5, \
             state = $6, case_number = $7, submit_us = $8, update_us = $9, body = $10, version = version + 1 \
             WHERE id = $11 AND version = $12",
            values,
        ))
        .await
        .map_err(|e| case_number_conflict(e, f))?;
    Ok(r.rows_affected() == 1)
}

pub async fn case_number_taken<C: ConnectionTrait>(
    c: &C,
    authority: &str,
    case_number: &str,
) -> Result<bool, ApiError> {
    let row = c
        .query_one_raw(stmt(
            c,
            "SELECT id FROM filings WHERE authority_key = $1 AND case_number = $2",
            [fold_for_search(authority).into(), case_number.into()],
        ))
        .await
        .map_err(db_error)?;
    Ok(row.is_some())
}

pub async fn list_filings<C: ConnectionTrait>(
    c: &C,
    w: Where,
    limit: u64,
) -> Result<Vec<Record<pb::Filing>>, ApiError> {
    records::select(c, "filings", w, "id", limit).await
}

// ---- referrals ----

pub async fn get_referral<C: ConnectionTrait>(
    c: &C,
    id: &str,
) -> Result<Option<Record<pb::Referral>>, ApiError> {
    records::get(c, "referrals", id).await
}

fn referral_columns(r: &pb::Referral) -> Vec<Value> {
    vec![
        institution_id(&r.institution).to_owned().into(),
        r.source.into(),
        r.kind.into(),
        r.activity_area.into(),
        fold_for_search(&r.province).into(),
        r.state.into(),
        r.due_time.as_ref().and_then(from_timestamp).into(),
        r.extended.into(),
        r.accept_time.as_ref().and_then(from_timestamp).into(),
        r.resolve_time.as_ref().and_then(from_timestamp).into(),
        r.outcome.into(),
    ]
}

pub async fn insert_referral<C: ConnectionTrait>(
    c: &C,
    id: &str,
    r: &pb::Referral,
    now: i64,
) -> Result<(), ApiError> {
    let mut values: Vec<Value> = vec![id.into()];
    values.extend(referral_columns(r));
    values.extend([now.into(), r.encode_to_vec().into()]);
    c.execute_raw(stmt(
        c,
        "INSERT INTO referrals (id, institution_id, source, kind, area, province_key, state, due_us, extended, \
         accept_us, resolve_us, outcome, create_us, update_us, version, body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, 1, $14)",
        values,
    ))
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn save_referral<C: ConnectionTrait>(
    c: &C,
    id: &str,
    version: i64,
    r: &pb::Referral,
    now: i64,
) -> Result<bool, ApiError> {
    let mut values = referral_columns(r);
    values.extend([
        now.into(),
        r.encode_to_vec().into(),
        id.into(),
        version.into(),
    ]);
    let res = c
        .execute_raw(stmt(
            c,
            "UPDATE referrals SET institution_id = $1, source = $2, kind = $3, area = $4, province_key = $5, \
             state = $6, due_us = $7, extended = $8, accept_us = $9, resolve_us = $10, outcome = $11, \
             update_us = $12, body = $13, version = version + 1 WHERE id = $14 AND version = $15",
            values,
        ))
        .await
        .map_err(db_error)?;
    Ok(res.rows_affected() == 1)
}

pub async fn list_referrals<C: ConnectionTrait>(
    c: &C,
    w: Where,
    limit: u64,
) -> Result<Vec<Record<pb::Referral>>, ApiError> {
    records::select(c, "referrals", w, "id", limit).await
}

/// Every referral of an institution in one of `states` (for recalls and rankings).
pub async fn referrals_of<C: ConnectionTrait>(
    c: &C,
    institution: &str,
) -> Result<Vec<Record<pb::Referral>>, ApiError> {
    let mut w = Where::new();
    w.add("institution_id = ?", [institution.into()]);
    records::select(c, "referrals", w, "id", i64::MAX as u64).await
}

/// Referrals and filings of a province created in `[start, end)`.
pub async fn in_period<C: ConnectionTrait, T: Message + Default>(
    c: &C,
    table: &str,
    province_key: &str,
    start: i64,
    end: i64,
) -> Result<Vec<Record<T>>, ApiError> {
    let mut w = Where::new();
    w.add(
        "province_key = ? AND create_us >= ? AND create_us < ?",
        [province_key.into(), start.into(), end.into()],
    );
    records::select(c, table, w, "id", i64::MAX as u64).await
}

// ---- timelines ----

pub async fn append_timeline<C: ConnectionTrait>(
    c: &C,
    resource: &str,
    from: &str,
    to: &str,
    actor: &str,
    note: &str,
    now: i64,
) -> Result<(), ApiError> {
    c.execute_raw(stmt(
        c,
        "INSERT INTO timeline (resource, seq, from_state, to_state, actor, time_us, note) VALUES \
         ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM timeline WHERE resource = $1), $2, $3, $4, $5, $6)",
        [resource.into(), from.into(), to.into(), actor.into(), now.into(), note.into()],
    ))
    .await
    .map_err(db_error)?;
    Ok(())
}

#[derive(Debug, FromQueryResult)]
struct TimelineRow {
    from_state: String,
    to_state: String,
    actor: String,
    time_us: i64,
    note: String,
}

pub async fn timeline<C: ConnectionTrait>(
    c: &C,
    resource: &str,
) -> Result<Vec<TimelineEntry>, ApiError> {
    let rows = TimelineRow::find_by_statement(stmt(
        c,
        "SELECT from_state, to_state, actor, time_us, note FROM timeline WHERE resource = $1 ORDER BY seq",
        [resource.into()],
    ))
    .all(c)
    .await
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|r| TimelineEntry {
            from_state: r.from_state,
            to_state: r.to_state,
            actor: r.actor,
            time: Some(to_timestamp(r.time_us)),
            note: r.note,
        })
        .collect())
}
