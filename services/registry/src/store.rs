//! The registry's tables, read and written as its domain types: the repositories the
//! change path uses ([`Institutions`], [`Licences`]), the inserts of the create path, the
//! lists, and the licence event log. Every statement uses `$n` placeholders, which both
//! SQLite and PostgreSQL accept; writes run inside a [`WriteTxn`].
//!
//! Columns are the registry's own storage: enumerations as their domain codes, area and
//! action lists and representatives as JSON arrays (the areas also as rows of
//! `institution_areas`, for the list filter).

use std::collections::HashMap;

use mosharekat_persian::{LegalEntityId, NationalCode, fold_for_search};
use mosharekat_platform::auth::Role;
use mosharekat_platform::change::Versioned;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::{WriteTxn, db_error};
use mosharekat_platform::error::ApiError;
use mosharekat_platform::sql::{Where, children_of};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use serde::{Deserialize, Serialize};

pub mod calendar;

use crate::names::{InstitutionId, InstitutionName, LicenceId, LicenceName};
use crate::rules::{
    ActivityArea, HistoryEntry, Institution, InstitutionFields, InstitutionKind, InstitutionState,
    Licence, LicenceEvent, LicenceEventKind, LicenceState, LicenceTerms, PermittedAction,
    Representative,
};

fn stmt<C: ConnectionTrait, I: IntoIterator<Item = Value>>(
    c: &C,
    sql: &str,
    values: I,
) -> Statement {
    Statement::from_sql_and_values(c.get_database_backend(), sql, values)
}

/// Stored data that does not decode: a bug or a hand-edited table, never the caller's.
fn corrupt(what: &str, id: &str) -> ApiError {
    ApiError::internal(anyhow::anyhow!("stored {what} of {id} does not decode"))
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn codes<T: Copy>(v: &[T], code: impl Fn(T) -> i32) -> String {
    json(&v.iter().map(|x| code(*x)).collect::<Vec<i32>>())
}

fn decode_codes<T>(raw: &str, from: impl Fn(i32) -> Option<T>) -> Option<Vec<T>> {
    let v: Vec<i32> = serde_json::from_str(raw).ok()?;
    v.into_iter().map(from).collect()
}

/// A representative as stored in `institutions.representatives` (a JSON array).
#[derive(Debug, Serialize, Deserialize)]
struct StoredRepresentative {
    full_name: String,
    national_code: String,
    role: String,
    phone: String,
}

pub(crate) const INSTITUTION_STATE_ACTIVE: i32 = 1;
const INSTITUTION_STATE_DISSOLVED: i32 = 2;

#[derive(Debug, Clone, FromQueryResult)]
struct InstitutionRow {
    id: String,
    display_name: String,
    kind: i32,
    national_id: String,
    registration_number: String,
    registering_authority: String,
    province: String,
    city: String,
    address: String,
    phone: String,
    email: String,
    activity_areas: String,
    representatives: String,
    state: i32,
    dissolution_reason: String,
    create_us: i64,
    update_us: i64,
    dissolve_us: Option<i64>,
    version: i64,
}

const INSTITUTION_COLUMNS: &str = "id, display_name, kind, national_id, registration_number, \
    registering_authority, province, city, address, phone, email, activity_areas, \
    representatives, state, dissolution_reason, create_us, update_us, dissolve_us, version";

impl InstitutionRow {
    fn decode(self) -> Result<Versioned<Institution>, ApiError> {
        let bad = |what: &str| corrupt(what, &self.id);
        let representatives: Vec<StoredRepresentative> =
            serde_json::from_str(&self.representatives).map_err(|_| bad("representatives"))?;
        let representatives = representatives
            .into_iter()
            .map(|r| {
                Ok(Representative {
                    national_code: NationalCode::parse(&r.national_code)
                        .map_err(|_| bad("representative"))?,
                    full_name: r.full_name,
                    role: r.role,
                    phone: r.phone,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        let fields = InstitutionFields {
            kind: InstitutionKind::from_code(self.kind).ok_or_else(|| bad("kind"))?,
            activity_areas: decode_codes(&self.activity_areas, ActivityArea::from_code)
                .ok_or_else(|| bad("activity areas"))?,
            representatives,
            display_name: self.display_name,
            registration_number: self.registration_number,
            registering_authority: self.registering_authority,
            province: self.province,
            city: self.city,
            address: self.address,
            phone: self.phone,
            email: self.email,
        };
        let state = match self.state {
            INSTITUTION_STATE_ACTIVE => InstitutionState::Active,
            INSTITUTION_STATE_DISSOLVED => InstitutionState::Dissolved {
                reason: self.dissolution_reason,
                at_us: self.dissolve_us.unwrap_or(self.update_us),
            },
            _ => return Err(corrupt("state", &self.id)),
        };
        Ok(Versioned {
            version: self.version,
            value: Institution {
                national_id: LegalEntityId::parse(&self.national_id)
                    .map_err(|_| corrupt("national id", &self.id))?,
                name: InstitutionName(InstitutionId::stored(self.id)),
                fields,
                state,
                create_us: self.create_us,
                update_us: self.update_us,
            },
        })
    }
}

fn stored_representatives(reps: &[Representative]) -> String {
    json(
        &reps
            .iter()
            .map(|r| StoredRepresentative {
                full_name: r.full_name.clone(),
                national_code: r.national_code.as_str().to_owned(),
                role: r.role.clone(),
                phone: r.phone.clone(),
            })
            .collect::<Vec<_>>(),
    )
}

fn state_columns(s: &InstitutionState) -> (i32, String, Option<i64>) {
    match s {
        InstitutionState::Active => (INSTITUTION_STATE_ACTIVE, String::new(), None),
        InstitutionState::Dissolved { reason, at_us } => {
            (INSTITUTION_STATE_DISSOLVED, reason.clone(), Some(*at_us))
        }
    }
}

pub async fn get_institution<C: ConnectionTrait>(
    c: &C,
    id: &InstitutionId,
) -> Result<Option<Versioned<Institution>>, ApiError> {
    InstitutionRow::find_by_statement(stmt(
        c,
        &format!("SELECT {INSTITUTION_COLUMNS} FROM institutions WHERE id = $1"),
        [id.as_str().into()],
    ))
    .one(c)
    .await
    .map_err(db_error)?
    .map(InstitutionRow::decode)
    .transpose()
}

/// Several institutions in one query, by id.
pub async fn institutions_by_id<C: ConnectionTrait>(
    c: &C,
    ids: &[InstitutionId],
) -> Result<HashMap<InstitutionId, Institution>, ApiError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    InstitutionRow::find_by_statement(stmt(
        c,
        &format!(
            "SELECT {INSTITUTION_COLUMNS} FROM institutions WHERE id IN ({})",
            marks.join(", ")
        ),
        ids.iter().map(|i| i.as_str().into()),
    ))
    .all(c)
    .await
    .map_err(db_error)?
    .into_iter()
    .map(|r| r.decode().map(|v| (v.value.name.0.clone(), v.value)))
    .collect()
}

pub async fn institution_by_national_id<C: ConnectionTrait>(
    c: &C,
    national_id: &LegalEntityId,
) -> Result<Option<InstitutionName>, ApiError> {
    let row = c
        .query_one_raw(stmt(
            c,
            "SELECT id FROM institutions WHERE national_id = $1",
            [national_id.as_str().into()],
        ))
        .await
        .map_err(db_error)?;
    row.map(|r| {
        r.try_get::<String>("", "id")
            .map(|id| InstitutionName(InstitutionId::stored(id)))
    })
    .transpose()
    .map_err(db_error)
}

async fn replace_areas(
    txn: &WriteTxn,
    id: &InstitutionId,
    areas: &[ActivityArea],
) -> Result<(), ApiError> {
    txn.execute_raw(stmt(
        txn,
        "DELETE FROM institution_areas WHERE institution_id = $1",
        [id.as_str().into()],
    ))
    .await
    .map_err(db_error)?;
    insert_areas(txn, id, areas).await
}

/// The area index rows of a new institution (or one whose rows were just deleted), in one
/// deferred INSERT (see [`WriteTxn::defer`]).
async fn insert_areas(
    txn: &WriteTxn,
    id: &InstitutionId,
    areas: &[ActivityArea],
) -> Result<(), ApiError> {
    if areas.is_empty() {
        return Ok(());
    }
    let rows = (0..areas.len())
        .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let values = areas
        .iter()
        .flat_map(|a| [a.code().into(), id.as_str().into()]);
    txn.defer(stmt(
        txn,
        &format!("INSERT INTO institution_areas (area, institution_id) VALUES {rows}"),
        values,
    ))
    .await
    .map_err(db_error)
}

/// Writes a new institution at version 1.
pub async fn insert_institution(txn: &WriteTxn, i: &Institution) -> Result<(), ApiError> {
    let f = &i.fields;
    let (state, reason, dissolve) = state_columns(&i.state);
    txn.execute_raw(stmt(
        txn,
        "INSERT INTO institutions (id, display_name, name_key, kind, national_id, registration_number, \
         registering_authority, province, province_key, city, address, phone, email, activity_areas, \
         representatives, state, dissolution_reason, create_us, update_us, dissolve_us, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, 1)",
        [
            i.name.id().as_str().into(),
            f.display_name.clone().into(),
            fold_for_search(&f.display_name).into(),
            f.kind.code().into(),
            i.national_id.as_str().into(),
            f.registration_number.clone().into(),
            f.registering_authority.clone().into(),
            f.province.clone().into(),
            fold_for_search(&f.province).into(),
            f.city.clone().into(),
            f.address.clone().into(),
            f.phone.clone().into(),
            f.email.clone().into(),
            codes(&f.activity_areas, ActivityArea::code).into(),
            stored_representatives(&f.representatives).into(),
            state.into(),
            reason.into(),
            i.create_us.into(),
            i.update_us.into(),
            dissolve.into(),
        ],
    ))
    .await
    .map_err(|e| {
        if mosharekat_platform::db::is_unique_violation(&e) {
            ApiError::already_exists("institution", format!("national_id {}", i.national_id))
        } else {
            db_error(e)
        }
    })?;
    insert_areas(txn, i.name.id(), &f.activity_areas).await
}

mosharekat_platform::repository! {
    /// The institutions, for the change path.
    pub struct Institutions: "institution", InstitutionName => Institution;
    name = ToString::to_string, load = load_institution, save = save_institution
}

async fn load_institution(
    txn: &WriteTxn,
    id: &InstitutionName,
) -> Result<Option<Versioned<Institution>>, ApiError> {
    get_institution(txn, id.id()).await
}

async fn save_institution(
    txn: &WriteTxn,
    id: &InstitutionName,
    version: i64,
    i: &Institution,
) -> Result<bool, ApiError> {
    let f = &i.fields;
    let (state, reason, dissolve) = state_columns(&i.state);
    let r = txn
        .execute_raw(stmt(
            txn,
            "UPDATE institutions SET display_name = $1, name_key = $2, kind = $3, registration_number = $4, \
             registering_authority = $5, province = $6, province_key = $7, city = $8, address = $9, phone = $10, \
             email = $11, activity_areas = $12, representatives = $13, state = $14, dissolution_reason = $15, \
             dissolve_us = $16, update_us = $17, version = version + 1 WHERE id = $18 AND version = $19",
            [
                f.display_name.clone().into(),
                fold_for_search(&f.display_name).into(),
                f.kind.code().into(),
                f.registration_number.clone().into(),
                f.registering_authority.clone().into(),
                f.province.clone().into(),
                fold_for_search(&f.province).into(),
                f.city.clone().into(),
                f.address.clone().into(),
                f.phone.clone().into(),
                f.email.clone().into(),
                codes(&f.activity_areas, ActivityArea::code).into(),
                stored_representatives(&f.representatives).into(),
                state.into(),
                reason.into(),
                dissolve.into(),
                i.update_us.into(),
                id.id().as_str().into(),
                version.into(),
            ],
        ))
        .await
        .map_err(db_error)?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    replace_areas(txn, id.id(), &f.activity_areas).await?;
    Ok(true)
}

/// The filters of `ListInstitutions`, already checked.
#[derive(Debug, Clone, Default)]
pub struct InstitutionFilter {
    pub only_id: Option<InstitutionId>,
    pub province_key: Option<String>,
    pub area: Option<ActivityArea>,
    pub licence_state: Option<LicenceState>,
    pub query_key: Option<String>,
    pub include_dissolved: bool,
}

fn like_pattern(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

fn licence_state_condition(state: LicenceState, now: i64) -> (String, Vec<Value>) {
    use LicenceState as S;
    let active = S::Active.code();
    match state {
        S::Active => (
            format!("(l.state = {active} AND l.valid_until_us > ?)"),
            vec![now.into()],
        ),
        S::Expired => (
            format!(
                "(l.state = {} OR (l.state = {active} AND l.valid_until_us <= ?))",
                S::Expired.code()
            ),
            vec![now.into()],
        ),
        other => (format!("l.state = {}", other.code()), vec![]),
    }
}

fn prefixed(columns: &str, alias: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A page of institutions after `after` (by id), at most `limit`.
pub async fn list_institutions<C: ConnectionTrait>(
    c: &C,
    f: &InstitutionFilter,
    after: Option<&str>,
    limit: u64,
    now: i64,
) -> Result<Vec<Versioned<Institution>>, ApiError> {
    let mut w = Where::new();
    if let Some(id) = &f.only_id {
        w.add("i.id = ?", [id.as_str().into()]);
    }
    if !f.include_dissolved {
        w.add("i.state = ?", [INSTITUTION_STATE_ACTIVE.into()]);
    }
    if let Some(p) = &f.province_key {
        w.add("i.province_key = ?", [p.clone().into()]);
    }
    if let Some(a) = f.area {
        w.add(
            "EXISTS (SELECT 1 FROM institution_areas a WHERE a.institution_id = i.id AND a.area = ?)",
            [a.code().into()],
        );
    }
    if let Some(s) = f.licence_state {
        let (cond, vals) = licence_state_condition(s, now);
        w.add(
            &format!("EXISTS (SELECT 1 FROM licences l WHERE l.institution_id = i.id AND {cond})"),
            vals,
        );
    }
    if let Some(q) = &f.query_key {
        w.add("i.name_key LIKE ? ESCAPE '\\'", [like_pattern(q).into()]);
    }
    if let Some(after) = after {
        w.add("i.id > ?", [after.into()]);
    }
    let sql = format!(
        "SELECT {} FROM institutions i WHERE {} ORDER BY i.id LIMIT ${}",
        prefixed(INSTITUTION_COLUMNS, "i"),
        w.clause(),
        w.next_placeholder()
    );
    let mut values = w.into_values();
    values.push((limit as i64).into());
    InstitutionRow::find_by_statement(stmt(c, &sql, values))
        .all(c)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(InstitutionRow::decode)
        .collect()
}

#[derive(Debug, Clone, FromQueryResult)]
struct LicenceRow {
    id: String,
    institution_id: String,
    province: String,
    activity_areas: String,
    permitted_actions: String,
    valid_from_us: i64,
    valid_until_us: i64,
    state: i32,
    create_us: i64,
    update_us: i64,
    version: i64,
    expiry_rule: Option<String>,
    judicial_district: String,
}

const LICENCE_COLUMNS: &str = "id, institution_id, province, activity_areas, permitted_actions, \
    valid_from_us, valid_until_us, state, create_us, update_us, version, expiry_rule, judicial_district";

impl LicenceRow {
    /// The licence, without its history.
    fn decode(self) -> Result<Versioned<Licence>, ApiError> {
        let bad = |what: &str| corrupt(what, &self.id);
        let terms = LicenceTerms {
            activity_areas: decode_codes(&self.activity_areas, ActivityArea::from_code)
                .ok_or_else(|| bad("activity areas"))?,
            permitted_actions: decode_codes(&self.permitted_actions, PermittedAction::from_code)
                .ok_or_else(|| bad("permitted actions"))?,
            province: self.province,
            valid_from_us: self.valid_from_us,
            valid_until_us: self.valid_until_us,
            judicial_district: self.judicial_district,
        };
        let state = LicenceState::from_code(self.state).ok_or_else(|| bad("state"))?;
        let expiry = match &self.expiry_rule {
            Some(raw) => Some(serde_json::from_str(raw).map_err(|_| bad("expiry rule"))?),
            None => None,
        };
        Ok(Versioned {
            version: self.version,
            value: Licence {
                name: LicenceName {
                    institution: InstitutionId::stored(self.institution_id),
                    id: LicenceId::stored(self.id),
                },
                terms,
                state,
                history: Vec::new(),
                create_us: self.create_us,
                update_us: self.update_us,
                expiry,
            },
        })
    }
}

async fn licence_rows<C: ConnectionTrait>(
    c: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<Versioned<Licence>>, ApiError> {
    LicenceRow::find_by_statement(stmt(c, sql, values))
        .all(c)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(LicenceRow::decode)
        .collect()
}

/// Fills in the histories of `licences` with one query, whatever their number.
async fn with_histories<C: ConnectionTrait>(
    c: &C,
    mut licences: Vec<Versioned<Licence>>,
) -> Result<Vec<Versioned<Licence>>, ApiError> {
    if licences.is_empty() {
        return Ok(licences);
    }
    // One row per licence, its history gathered by the database.
    let histories: Vec<(String, Vec<StoredEntry>)> = children_of(
        c,
        "licence_events",
        "licence_id",
        "kind, from_state, to_state, actor, time_us, reason",
        "seq",
        licences
            .iter()
            .map(|l| l.value.name.id.as_str().into())
            .collect(),
    )
    .await?;
    let mut by_licence: HashMap<String, Vec<HistoryEntry>> =
        HashMap::with_capacity(histories.len());
    for (licence, stored) in histories {
        let bad = |what: &str| corrupt(what, &licence);
        let entries = stored
            .into_iter()
            .map(|(kind, from, to, actor, time_us, reason)| {
                history_entry(kind, from, to, actor, time_us, reason, bad)
            })
            .collect::<Result<_, _>>()?;
        by_licence.insert(licence, entries);
    }
    for l in &mut licences {
        l.value.history = by_licence
            .remove(l.value.name.id.as_str())
            .unwrap_or_default();
    }
    Ok(licences)
}

/// A history entry as [`with_histories`] reads it: kind, from, to, actor, time, reason.
type StoredEntry = (i32, i32, i32, String, i64, String);

/// One history entry from its stored columns; `bad` names what does not decode.
fn history_entry(
    kind: i32,
    from_state: i32,
    to_state: i32,
    actor: String,
    time_us: i64,
    reason: String,
    bad: impl Fn(&str) -> ApiError,
) -> Result<HistoryEntry, ApiError> {
    // An application has no state before it: stored as 0.
    let from = match from_state {
        0 => None,
        c => Some(LicenceState::from_code(c).ok_or_else(|| bad("from_state"))?),
    };
    Ok(HistoryEntry {
        kind: LicenceEventKind::from_code(kind).ok_or_else(|| bad("kind"))?,
        from,
        to: LicenceState::from_code(to_state).ok_or_else(|| bad("to_state"))?,
        actor,
        time_us,
        reason,
    })
}

/// One licence with its history, found only under the institution its name gives.
pub async fn get_licence<C: ConnectionTrait>(
    c: &C,
    name: &LicenceName,
) -> Result<Option<Versioned<Licence>>, ApiError> {
    let rows = licence_rows(
        c,
        &format!("SELECT {LICENCE_COLUMNS} FROM licences WHERE id = $1 AND institution_id = $2"),
        vec![name.id.as_str().into(), name.institution.as_str().into()],
    )
    .await?;
    Ok(with_histories(c, rows).await?.pop())
}

/// Every licence of the institutions `ids` with its version, without histories (for the
/// rules), in one query.
pub async fn licences_of<C: ConnectionTrait>(
    c: &C,
    ids: &[InstitutionId],
) -> Result<Vec<Versioned<Licence>>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    licence_rows(
        c,
        &format!(
            "SELECT {LICENCE_COLUMNS} FROM licences WHERE institution_id IN ({}) ORDER BY id",
            marks.join(", ")
        ),
        ids.iter().map(|i| i.as_str().into()).collect(),
    )
    .await
}

/// Writes a new licence at version 1 (its history is written as its events).
pub async fn insert_licence(txn: &WriteTxn, l: &Licence) -> Result<(), ApiError> {
    let t = &l.terms;
    txn.execute_raw(stmt(
        txn,
        "INSERT INTO licences (id, institution_id, province, province_key, activity_areas, permitted_actions, \
         valid_from_us, valid_until_us, state, create_us, update_us, version, judicial_district) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12)",
        [
            l.name.id.as_str().into(),
            l.name.institution.as_str().into(),
            t.province.clone().into(),
            fold_for_search(&t.province).into(),
            codes(&t.activity_areas, ActivityArea::code).into(),
            codes(&t.permitted_actions, PermittedAction::code).into(),
            t.valid_from_us.into(),
            t.valid_until_us.into(),
            l.state.code().into(),
            l.create_us.into(),
            l.update_us.into(),
            t.judicial_district.clone().into(),
        ],
    ))
    .await
    .map_err(db_error)?;
    Ok(())
}

mosharekat_platform::repository! {
    /// The licences, for the change path. A save writes what a change can change (state,
    /// end, update time); the history is written as events, by the change's effects.
    pub struct Licences: "licence", LicenceName => Licence;
    name = ToString::to_string, load = get_licence, save = save_licence
}

async fn save_licence(
    txn: &WriteTxn,
    id: &LicenceName,
    version: i64,
    l: &Licence,
) -> Result<bool, ApiError> {
    let r = txn
        .execute_raw(stmt(
            txn,
            "UPDATE licences SET state = $1, valid_until_us = $2, update_us = $3, expiry_rule = $4, \
             version = version + 1 WHERE id = $5 AND institution_id = $6 AND version = $7",
            [
                l.state.code().into(),
                l.terms.valid_until_us.into(),
                l.update_us.into(),
                l.expiry.as_ref().map(json).into(),
                id.id.as_str().into(),
                id.institution.as_str().into(),
                version.into(),
            ],
        ))
        .await
        .map_err(db_error)?;
    Ok(r.rows_affected() == 1)
}

/// A filter on a licence's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndFilter {
    /// In force (active or suspended), not ended, ending at or before this instant.
    EndsBy(i64),
    /// Ended: recorded EXPIRED, or ACTIVE past its end.
    Expired,
}

/// A page of licences (of one institution, or all) after `after` (by id), with their
/// histories: two queries whatever the page size.
pub async fn list_licences<C: ConnectionTrait>(
    c: &C,
    institution: Option<&InstitutionId>,
    state: Option<LicenceState>,
    ends: Option<EndFilter>,
    after: Option<&str>,
    limit: u64,
    now: i64,
) -> Result<Vec<Versioned<Licence>>, ApiError> {
    let mut w = Where::new();
    if let Some(i) = institution {
        w.add("l.institution_id = ?", [i.as_str().into()]);
    }
    if let Some(s) = state {
        let (cond, vals) = licence_state_condition(s, now);
        w.add(&cond, vals);
    }
    match ends {
        Some(EndFilter::EndsBy(by_us)) => {
            w.add(
                &format!(
                    "(l.state IN ({}, {}) AND l.valid_until_us > ? AND l.valid_until_us <= ?)",
                    LicenceState::Active.code(),
                    LicenceState::Suspended.code()
                ),
                [now.into(), by_us.into()],
            );
        }
        Some(EndFilter::Expired) => {
            let (cond, vals) = licence_state_condition(LicenceState::Expired, now);
            w.add(&cond, vals);
        }
        None => {}
    }
    if let Some(a) = after {
        w.add("l.id > ?", [a.into()]);
    }
    let sql = format!(
        "SELECT {} FROM licences l WHERE {} ORDER BY l.id LIMIT ${}",
        prefixed(LICENCE_COLUMNS, "l"),
        w.clause(),
        w.next_placeholder()
    );
    let mut values = w.into_values();
    values.push((limit as i64).into());
    let rows = licence_rows(c, &sql, values).await?;
    with_histories(c, rows).await
}

/// ACTIVE licences whose end has passed, not yet recorded as expired.
pub async fn due_for_expiry<C: ConnectionTrait>(
    c: &C,
    now: i64,
    limit: u64,
) -> Result<Vec<LicenceName>, ApiError> {
    Ok(licence_rows(
        c,
        &format!(
            "SELECT {LICENCE_COLUMNS} FROM licences WHERE state = $1 AND valid_until_us <= $2 ORDER BY id LIMIT $3"
        ),
        vec![LicenceState::Active.code().into(), now.into(), (limit as i64).into()],
    )
    .await?
    .into_iter()
    .map(|l| l.value.name)
    .collect())
}

#[derive(Debug, Clone, FromQueryResult)]
struct EventRow {
    seq: i64,
    licence_id: String,
    institution_id: String,
    kind: i32,
    from_state: i32,
    to_state: i32,
    actor: String,
    actor_role: String,
    reason: String,
    time_us: i64,
    traceparent: String,
}

impl EventRow {
    fn decode(self) -> Result<LicenceEvent, ApiError> {
        let seq = self.seq.to_string();
        let bad = |what: &str| corrupt(what, &format!("event {seq}"));
        Ok(LicenceEvent {
            sequence: self.seq,
            licence: LicenceName {
                institution: InstitutionId::stored(self.institution_id),
                id: LicenceId::stored(self.licence_id),
            },
            entry: history_entry(
                self.kind,
                self.from_state,
                self.to_state,
                self.actor,
                self.time_us,
                self.reason,
                bad,
            )?,
            actor_role: self.actor_role,
            traceparent: self.traceparent,
        })
    }
}

async fn event_rows<C: ConnectionTrait>(
    c: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<LicenceEvent>, ApiError> {
    EventRow::find_by_statement(stmt(c, sql, values))
        .all(c)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(EventRow::decode)
        .collect()
}

/// Who made a licence change, as its event tells the consumers.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub subject: &'a str,
    pub role: Role,
}

impl<'a> Actor<'a> {
    /// The registry itself, for changes no caller made (an expiry).
    pub const REGISTRY: Actor<'static> = Actor {
        subject: "system",
        role: Role::Service,
    };

    /// The caller of `ctx`.
    pub fn of(ctx: &'a CallContext) -> Self {
        Self {
            subject: &ctx.principal.subject,
            role: ctx.principal.role,
        }
    }
}

/// Appends the event of `entry` (a change of `licence` by `role`) with the next sequence
/// number. Gap-free because writers are serialised and a rolled-back transaction takes
/// its number with it.
pub async fn append_event(
    txn: &WriteTxn,
    licence: &LicenceName,
    entry: &HistoryEntry,
    role: Role,
    traceparent: &str,
) -> Result<i64, ApiError> {
    let seq = last_event_seq(txn).await? + 1;
    txn.defer(stmt(
        txn,
        "INSERT INTO licence_events (seq, licence_id, institution_id, kind, from_state, to_state, actor, actor_role, \
         reason, time_us, traceparent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        [
            seq.into(),
            licence.id.as_str().into(),
            licence.institution.as_str().into(),
            entry.kind.code().into(),
            entry.from.map_or(0, LicenceState::code).into(),
            entry.to.code().into(),
            entry.actor.clone().into(),
            role.as_str().into(),
            entry.reason.clone().into(),
            entry.time_us.into(),
            traceparent.into(),
        ],
    ))
    .await
    .map_err(db_error)?;
    Ok(seq)
}

const EVENT_COLUMNS: &str = "seq, licence_id, institution_id, kind, from_state, to_state, actor, actor_role, reason, time_us, traceparent";

pub async fn events_after<C: ConnectionTrait>(
    c: &C,
    after: i64,
    limit: u64,
) -> Result<Vec<LicenceEvent>, ApiError> {
    event_rows(
        c,
        &format!("SELECT {EVENT_COLUMNS} FROM licence_events WHERE seq > $1 ORDER BY seq LIMIT $2"),
        vec![after.into(), (limit as i64).into()],
    )
    .await
}

pub async fn last_event_seq<C: ConnectionTrait>(c: &C) -> Result<i64, ApiError> {
    let row = c
        .query_one_raw(stmt(
            c,
            "SELECT COALESCE(MAX(seq), 0) AS last FROM licence_events",
            [],
        ))
        .await
        .map_err(db_error)?;
    match row {
        Some(r) => r.try_get("", "last").map_err(db_error),
        None => Ok(0),
    }
}

/// Licences in force (active or suspended) not yet ended whose expiry the calendar
/// counted: those a late holiday or closure may move.
pub async fn licences_with_expiry<C: ConnectionTrait>(
    c: &C,
    now: i64,
) -> Result<Vec<Versioned<Licence>>, ApiError> {
    licence_rows(
        c,
        &format!(
            "SELECT {LICENCE_COLUMNS} FROM licences WHERE state IN ($1, $2) AND valid_until_us > $3 \
             AND expiry_rule IS NOT NULL ORDER BY id"
        ),
        vec![
            LicenceState::Active.code().into(),
            LicenceState::Suspended.code().into(),
            now.into(),
        ],
    )
    .await
}

/// The short number people quote for a licence («پروانه ۱۲»): the sequence of its
/// application in the licence event stream, unique and small.
pub async fn licence_number<C: ConnectionTrait>(
    c: &C,
    licence: &LicenceName,
) -> Result<i64, ApiError> {
    let r = c
        .query_one_raw(stmt(
            c,
            "SELECT MIN(seq) AS n FROM licence_events WHERE licence_id = $1",
            [licence.id.as_str().into()],
        ))
        .await
        .map_err(db_error)?;
    let n: Option<i64> = match r {
        Some(r) => r.try_get("", "n").map_err(db_error)?,
        None => None,
    };
    n.ok_or_else(|| corrupt("events", licence.id.as_str()))
}
