//! The referral service's tables, read and written as its domain types.
//!
//! A filing or referral is kept whole in `doc`, as a versioned JSON document: the serde
//! form of [`crate::model`]'s types (renaming a field there is a migration) with a
//! `schema` number. Fields a newer version wrote that this one does not know are kept in
//! the value's `unknown` and written back as they were. The columns beside `doc` are
//! derived from it on every write and serve the lists' filters and order. Timelines live
//! in their own table.

use std::collections::HashMap;

use mosharekat_persian::fold_for_search;
use mosharekat_platform::change::Versioned;
use mosharekat_platform::db::{WriteTxn, db_error, is_unique_violation};
use mosharekat_platform::error::ApiError;
pub use mosharekat_platform::sql::Where;
use mosharekat_platform::sql::children_of;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ReferralError;
use crate::model::{
    Filing, Referral, ReferralOutcome, ReferralState, TimelineEntry, Unknown, instant,
};
use crate::names::{FilingId, InstitutionId, ReferralId};

/// The `schema` this version writes.
pub const SCHEMA: u64 = 2;

fn stmt<C: ConnectionTrait, I: IntoIterator<Item = Value>>(
    c: &C,
    sql: &str,
    values: I,
) -> Statement {
    Statement::from_sql_and_values(c.get_database_backend(), sql, values)
}

/// The stored form of `value`: its fields and the `schema` this version writes, in one
/// pass (no intermediate JSON value).
pub fn encode<T: Serialize>(value: &T) -> Result<String, ApiError> {
    #[derive(Serialize)]
    struct Stamped<'a, T> {
        schema: u64,
        #[serde(flatten)]
        value: &'a T,
    }
    serde_json::to_string(&Stamped {
        schema: SCHEMA,
        value,
    })
    .map_err(ApiError::internal)
}

/// A value from its stored form (of this schema or a later one), parsed once: the
/// `schema` lands with the fields this version does not know, and is dropped there.
pub fn decode<T: Stored>(doc: &str) -> Result<T, ApiError> {
    let mut value: T = serde_json::from_str(doc).map_err(ApiError::internal)?;
    value.unknown_mut().0.remove("schema");
    Ok(value)
}

#[derive(Debug, FromQueryResult)]
struct DocRow {
    version: i64,
    doc: String,
    ref_no: Option<i64>,
}

/// A stored document whose short reference lives in its row's `ref_no` column.
pub trait Stored: DeserializeOwned {
    fn set_reference(&mut self, n: u64);
    /// The top-level fields this version does not know, kept as read.
    fn unknown_mut(&mut self) -> &mut Unknown;
}

impl Stored for Filing {
    fn set_reference(&mut self, n: u64) {
        self.reference = n;
    }
    fn unknown_mut(&mut self) -> &mut Unknown {
        &mut self.unknown
    }
}

impl Stored for Referral {
    fn set_reference(&mut self, n: u64) {
        self.reference = n;
    }
    fn unknown_mut(&mut self) -> &mut Unknown {
        &mut self.unknown
    }
}

impl DocRow {
    fn decode<T: Stored>(self) -> Result<Versioned<T>, ApiError> {
        let mut value: T = decode(&self.doc)?;
        value.set_reference(self.ref_no.and_then(|n| u64::try_from(n).ok()).unwrap_or(0));
        Ok(Versioned {
            version: self.version,
            value,
        })
    }
}

/// The document of `table` with the id `id`, if there is one.
async fn by_id<C: ConnectionTrait, T: Stored>(
    c: &C,
    table: &str,
    id: &str,
) -> Result<Option<Versioned<T>>, ApiError> {
    let mut w = Where::new();
    w.add("id = ?", [id.into()]);
    Ok(select(c, table, w, 1).await?.into_iter().next())
}

async fn select<C: ConnectionTrait, T: Stored>(
    c: &C,
    table: &str,
    w: Where,
    limit: u64,
) -> Result<Vec<Versioned<T>>, ApiError> {
    let (sql, values) = w.select("version, doc, ref_no", table, "id", limit);
    DocRow::find_by_statement(stmt(c, &sql, values))
        .all(c)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(DocRow::decode)
        .collect()
}

fn micros(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

/// The next short reference of `table` (`filings` or `referrals`): under the write turn,
/// so two creates cannot take the same one (the unique index would refuse it anyway).
pub async fn next_reference(txn: &WriteTxn, table: &str) -> Result<u64, ApiError> {
    let row = txn
        .query_one_raw(stmt(
            txn,
            &format!("SELECT COALESCE(MAX(ref_no), 0) AS last FROM {table}"),
            [],
        ))
        .await
        .map_err(db_error)?;
    let last: i64 = match row {
        Some(r) => r.try_get("", "last").map_err(db_error)?,
        None => 0,
    };
    Ok(u64::try_from(last).unwrap_or(0) + 1)
}

// ---- filings ----

mosharekat_platform::repository! {
    /// The filings' table, for the change path.
    pub struct Filings: "filing", FilingId => Filing;
    name = FilingId::name, load = get_filing, save = save_filing
}

pub async fn get_filing<C: ConnectionTrait>(
    c: &C,
    id: &FilingId,
) -> Result<Option<Versioned<Filing>>, ApiError> {
    by_id(c, "filings", id.as_str()).await
}

fn filing_columns(f: &Filing) -> Result<Vec<Value>, ApiError> {
    Ok(vec![
        f.institution.as_str().into(),
        f.kind.code().into(),
        f.activity_area.code().into(),
        fold_for_search(&f.authority).into(),
        fold_for_search(&f.province).into(),
        f.state.code().into(),
        f.case_number.clone().into(),
        f.submit_time.map(micros).into(),
        micros(f.update_time).into(),
        encode(f)?.into(),
    ])
}

fn case_number_conflict(e: sea_orm::DbErr, f: &Filing) -> ApiError {
    if is_unique_violation(&e) {
        ReferralError::CaseNumberTaken {
            case_number: f.case_number.clone().unwrap_or_default(),
            authority: f.authority.clone(),
        }
        .into()
    } else {
        db_error(e)
    }
}

/// Inserts a new filing at version 1.
pub async fn insert_filing(txn: &WriteTxn, f: &Filing) -> Result<(), ApiError> {
    let mut values: Vec<Value> = vec![f.id.as_str().into()];
    values.extend(filing_columns(f)?);
    values.push(micros(f.create_time).into());
    values.push((f.reference as i64).into());
    txn.execute_raw(stmt(
        txn,
        "INSERT INTO filings (id, institution_id, kind, area, authority_key, province_key, state, case_number, \
         submit_us, update_us, doc, create_us, ref_no, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1)",
        values,
    ))
    .await
    .map_err(|e| case_number_conflict(e, f))?;
    Ok(())
}

/// Writes `f` over the stored filing if it is still at `version`; false when it is not.
pub async fn save_filing(
    txn: &WriteTxn,
    _id: &FilingId,
    version: i64,
    f: &Filing,
) -> Result<bool, ApiError> {
    let mut values = filing_columns(f)?;
    values.extend([f.id.as_str().into(), version.into()]);
    let r = txn
        .execute_raw(stmt(
            txn,
            "UPDATE filings SET institution_id = $1, kind = $2, area = $3, authority_key = $4, province_key = $5, \
             state = $6, case_number = $7, submit_us = $8, update_us = $9, doc = $10, version = version + 1 \
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
) -> Result<Vec<Versioned<Filing>>, ApiError> {
    select(c, "filings", w, limit).await
}

// ---- referrals ----

mosharekat_platform::repository! {
    /// The referrals' table, for the change path.
    pub struct Referrals: "referral", ReferralId => Referral;
    name = ReferralId::name, load = get_referral, save = save_referral
}

pub async fn get_referral<C: ConnectionTrait>(
    c: &C,
    id: &ReferralId,
) -> Result<Option<Versioned<Referral>>, ApiError> {
    by_id(c, "referrals", id.as_str()).await
}

fn referral_columns(r: &Referral) -> Result<Vec<Value>, ApiError> {
    Ok(vec![
        r.institution.as_str().into(),
        r.source.code().into(),
        r.kind.code().into(),
        r.activity_area.code().into(),
        fold_for_search(&r.province).into(),
        r.state.code().into(),
        r.due_time.map(micros).into(),
        r.extended.into(),
        r.accept_time.map(micros).into(),
        r.resolve_time.map(micros).into(),
        r.outcome.map_or(0, ReferralOutcome::code).into(),
        micros(r.update_time).into(),
        encode(r)?.into(),
        r.answer
            .as_ref()
            .filter(|_| r.state == ReferralState::Offered)
            .map(|a| micros(a.ends_at))
            .into(),
    ])
}

/// Inserts a new referral at version 1, deferred (see [`WriteTxn::defer`]): nothing in
/// it can clash (its id is new, its reference number taken under the write turn).
pub async fn insert_referral(txn: &WriteTxn, r: &Referral) -> Result<(), ApiError> {
    let mut values: Vec<Value> = vec![r.id.as_str().into()];
    values.extend(referral_columns(r)?);
    values.push(micros(r.create_time).into());
    values.push((r.reference as i64).into());
    txn.defer(stmt(
        txn,
        "INSERT INTO referrals (id, institution_id, source, kind, area, province_key, state, due_us, extended, \
         accept_us, resolve_us, outcome, update_us, doc, answer_us, create_us, ref_no, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 1)",
        values,
    ))
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Writes `r` over the stored referral if it is still at `version`; false when it is not.
pub async fn save_referral(
    txn: &WriteTxn,
    _id: &ReferralId,
    version: i64,
    r: &Referral,
) -> Result<bool, ApiError> {
    let mut values = referral_columns(r)?;
    values.extend([r.id.as_str().into(), version.into()]);
    let res = txn
        .execute_raw(stmt(
            txn,
            "UPDATE referrals SET institution_id = $1, source = $2, kind = $3, area = $4, province_key = $5, \
             state = $6, due_us = $7, extended = $8, accept_us = $9, resolve_us = $10, outcome = $11, \
             update_us = $12, doc = $13, answer_us = $14, version = version + 1 WHERE id = $15 AND version = $16",
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
) -> Result<Vec<Versioned<Referral>>, ApiError> {
    select(c, "referrals", w, limit).await
}

/// The open referrals of an institution (for recalls).
pub async fn open_referrals_of<C: ConnectionTrait>(
    c: &C,
    institution: &InstitutionId,
) -> Result<Vec<Versioned<Referral>>, ApiError> {
    let mut w = Where::new();
    w.add(
        "institution_id = ? AND state IN (?, ?, ?)",
        [
            institution.as_str().into(),
            ReferralState::Offered.code().into(),
            ReferralState::Accepted.code().into(),
            ReferralState::InProgress.code().into(),
        ],
    );
    select(c, "referrals", w, u64::MAX).await
}

/// The open referrals whose running deadline (the answer time while offered, the due
/// time once accepted) ends in `[from_us, to_us]`: those a holiday or closure of those
/// days may move. Bounded by the `(state, answer_us)` and `(state, due_us)` indexes.
pub async fn deadlines_ending_between<C: ConnectionTrait>(
    c: &C,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<Versioned<Referral>>, ApiError> {
    let mut w = Where::new();
    w.add(
        "((state = ? AND answer_us >= ? AND answer_us <= ?) OR \
         (state IN (?, ?) AND due_us >= ? AND due_us <= ?))",
        [
            ReferralState::Offered.code().into(),
            from_us.into(),
            to_us.into(),
            ReferralState::Accepted.code().into(),
            ReferralState::InProgress.code().into(),
            from_us.into(),
            to_us.into(),
        ],
    );
    select(c, "referrals", w, u64::MAX).await
}

/// What ranking an institution for a new referral reads of its referrals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    pub open: i64,
    pub resolved: i64,
    pub reconciled: i64,
    /// Accepted or in progress, past due and never extended.
    pub unextended_overdue: i64,
    /// Offers answered late or never answered (recorded), and those offered to it now
    /// past their answer time.
    pub late_answers: i64,
}

#[derive(Debug, FromQueryResult)]
struct LoadRow {
    institution_id: String,
    open: i64,
    resolved: i64,
    reconciled: i64,
    overdue: i64,
    late: i64,
}

#[derive(Debug, FromQueryResult)]
struct LateRow {
    institution_id: String,
    late: i64,
}

/// Records that `institution` answered the offer of `referral` late (`answered_us`) or
/// never (`None`: the source took it back), its answer time having ended at
/// `answer_due_us`. Once per referral and institution.
pub async fn record_late_answer(
    txn: &WriteTxn,
    referral: &ReferralId,
    institution: &InstitutionId,
    answer_due_us: i64,
    answered_us: Option<i64>,
) -> Result<(), ApiError> {
    txn.execute_raw(stmt(
        txn,
        "INSERT INTO referral_late_answers (referral_id, institution_id, answer_due_us, answered_us, recorded_us) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (referral_id, institution_id) DO NOTHING",
        [
            referral.as_str().into(),
            institution.as_str().into(),
            answer_due_us.into(),
            answered_us.into(),
            txn.now_micros().into(),
        ],
    ))
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The load of each of `institutions` at `now_us`, in one aggregate query; an institution
/// with no referral is absent.
pub async fn loads<C: ConnectionTrait>(
    c: &C,
    institutions: &[InstitutionId],
    now_us: i64,
) -> Result<HashMap<InstitutionId, Load>, ApiError> {
    if institutions.is_empty() {
        return Ok(HashMap::new());
    }
    use ReferralState as S;
    let mut values: Vec<Value> = vec![now_us.into()];
    let mut marks = Vec::with_capacity(institutions.len());
    for i in institutions {
        values.push(i.as_str().into());
        marks.push(format!("${}", values.len()));
    }
    let sql = format!(
        "SELECT institution_id, \
         SUM(CASE WHEN state IN ({o}, {a}, {p}) THEN 1 ELSE 0 END) AS open, \
         SUM(CASE WHEN state = {r} THEN 1 ELSE 0 END) AS resolved, \
         SUM(CASE WHEN state = {r} AND outcome = {rec} THEN 1 ELSE 0 END) AS reconciled, \
         SUM(CASE WHEN state IN ({a}, {p}) AND due_us < $1 AND NOT extended THEN 1 ELSE 0 END) AS overdue, \
         SUM(CASE WHEN state = {o} AND answer_us < $1 THEN 1 ELSE 0 END) AS late \
         FROM referrals WHERE institution_id IN ({}) GROUP BY institution_id",
        marks.join(", "),
        o = S::Offered.code(),
        a = S::Accepted.code(),
        p = S::InProgress.code(),
        r = S::Resolved.code(),
        rec = ReferralOutcome::Reconciled.code(),
    );
    // The institutions again, without the time: $1 onwards.
    let late_values: Vec<Value> = values[1..].to_vec();
    let late_marks: Vec<String> = (1..=late_values.len()).map(|i| format!("${i}")).collect();
    let late_sql = format!(
        "SELECT institution_id, COUNT(*) AS late FROM referral_late_answers \
         WHERE institution_id IN ({}) GROUP BY institution_id",
        late_marks.join(", "),
    );
    let rows = LoadRow::find_by_statement(stmt(c, &sql, values))
        .all(c)
        .await
        .map_err(db_error)?;
    let late = LateRow::find_by_statement(stmt(c, &late_sql, late_values))
        .all(c)
        .await
        .map_err(db_error)?;
    let mut out: HashMap<InstitutionId, Load> = rows
        .into_iter()
        .filter_map(|r| {
            Some((
                InstitutionId::from_id(&r.institution_id)?,
                Load {
                    open: r.open,
                    resolved: r.resolved,
                    reconciled: r.reconciled,
                    unextended_overdue: r.overdue,
                    late_answers: r.late,
                },
            ))
        })
        .collect();
    for r in late {
        if let Some(id) = InstitutionId::from_id(&r.institution_id) {
            out.entry(id).or_default().late_answers += r.late;
        }
    }
    Ok(out)
}

/// Referrals or filings of a province created in `[start, end)`.
pub async fn in_period<C: ConnectionTrait, T: Stored>(
    c: &C,
    table: &str,
    province_key: &str,
    start: i64,
    end: i64,
) -> Result<Vec<T>, ApiError> {
    let mut w = Where::new();
    w.add(
        "province_key = ? AND create_us >= ? AND create_us < ?",
        [province_key.into(), start.into(), end.into()],
    );
    Ok(select(c, table, w, u64::MAX)
        .await?
        .into_iter()
        .map(|v: Versioned<T>| v.value)
        .collect())
}

// ---- timelines ----

/// Appends `entry` to the timeline of `resource`, deferred (see [`WriteTxn::defer`]).
pub async fn append_timeline(
    txn: &WriteTxn,
    resource: &str,
    entry: &TimelineEntry,
) -> Result<(), ApiError> {
    txn.defer(stmt(
        txn,
        "INSERT INTO timeline (resource, seq, from_state, to_state, actor, time_us, note) VALUES \
         ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM timeline WHERE resource = $1), $2, $3, $4, $5, $6)",
        [
            resource.into(),
            entry.from.clone().into(),
            entry.to.clone().into(),
            entry.actor.clone().into(),
            micros(entry.time).into(),
            entry.note.clone().into(),
        ],
    ))
    .await
    .map_err(db_error)?;
    Ok(())
}

/// A timeline entry as [`timelines`] reads it: from, to, actor, time, note.
type StoredEntry = (String, String, String, i64, String);

/// The timelines of `resources` (names), in one query: each in order, a resource with
/// none absent. One row per resource, its entries gathered by the database (see
/// [`children_of`]).
pub async fn timelines<C: ConnectionTrait>(
    c: &C,
    resources: &[String],
) -> Result<HashMap<String, Vec<TimelineEntry>>, ApiError> {
    let mut out: HashMap<String, Vec<TimelineEntry>> = HashMap::new();
    if resources.is_empty() {
        return Ok(out);
    }
    let stored: Vec<(String, Vec<StoredEntry>)> = children_of(
        c,
        "timeline",
        "resource",
        "from_state, to_state, actor, time_us, note",
        "seq",
        resources.iter().map(|r| Value::from(r.clone())).collect(),
    )
    .await?;
    for (resource, entries) in stored {
        let entries = entries
            .into_iter()
            .map(|(from, to, actor, time_us, note)| TimelineEntry {
                from,
                to,
                actor,
                time: instant(time_us),
                note,
            })
            .collect();
        out.insert(resource, entries);
    }
    Ok(out)
}

/// The timeline of one resource.
pub async fn timeline<C: ConnectionTrait>(
    c: &C,
    resource: &str,
) -> Result<Vec<TimelineEntry>, ApiError> {
    Ok(timelines(c, &[resource.to_owned()])
        .await?
        .remove(resource)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document as a later version might write it: a field this one does not know, at
    /// the top and a later schema number.
    const FROM_A_NEWER_VERSION: &str = r#"{
        "schema": 3,
        "id": "0191-a", "institution": "i-1", "kind": "COMPLAINT", "activity_area": 7,
        "authority": "دادسرا", "province": "اردبیل", "subject": "s", "description": "d",
        "parties": [{"full_name": "مریم", "national_code": "0076229645", "role": "VICTIM"}],
        "documents": [], "consents": [], "state": "DRAFT",
        "create_time": 1000000, "update_time": 1000000,
        "mediator": {"name": "x", "since": 5}
    }"#;

    #[test]
    fn a_field_written_by_a_newer_version_survives_a_change() {
        let mut f: Filing = decode(FROM_A_NEWER_VERSION).unwrap();
        assert_eq!(f.state, crate::model::FilingState::Draft);
        assert_eq!(
            f.parties[0].national_code.as_ref().map(|c| c.as_str()),
            Some("0076229645")
        );
        f.subject = "changed".into();
        let text = encode(&f).unwrap();
        // The newer version's schema number was dropped on reading: one `schema`, this one's.
        assert_eq!(text.matches("\"schema\"").count(), 1, "{text}");
        let written: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            written["mediator"],
            serde_json::json!({"name": "x", "since": 5})
        );
        assert_eq!(written["subject"], "changed");
        assert_eq!(written["schema"], SCHEMA);
        // And read again, it is the same value.
        let again: Filing = decode(&written.to_string()).unwrap();
        assert_eq!(again, f);
    }

    #[test]
    fn a_document_that_is_not_one_is_an_internal_error_not_a_panic() {
        assert!(decode::<Filing>("{\"schema\": 2}").is_err());
        assert!(decode::<Filing>("not json").is_err());
    }
}
