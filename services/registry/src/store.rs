//! The registry's tables, read and written. Every statement uses `$n` placeholders, which
//! both SQLite and PostgreSQL accept; writes run inside a transaction from
//! `Db::begin_write`.

use mosharekat_api::registry::v1 as pb;
use mosharekat_persian::{fold_for_search, mask};
use mosharekat_platform::auth::Role;
use mosharekat_platform::ctx::CallContext;
use mosharekat_platform::db::{db_error, to_timestamp};
use mosharekat_platform::error::ApiError;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

use crate::domain::{self, LicenceFacts};
use crate::input::{self, InstitutionFields, LicenceFields, Representative};

fn stmt<C: ConnectionTrait, I: IntoIterator<Item = Value>>(
    c: &C,
    sql: &str,
    values: I,
) -> Statement {
    Statement::from_sql_and_values(c.get_database_backend(), sql, values)
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct InstitutionRow {
    pub id: String,
    pub display_name: String,
    pub kind: i32,
    pub national_id: String,
    pub registration_number: String,
    pub registering_authority: String,
    pub province: String,
    pub province_key: String,
    pub city: String,
    pub address: String,
    pub phone: String,
    pub email: String,
    pub activity_areas: String,
    pub representatives: String,
    pub state: i32,
    pub dissolution_reason: String,
    pub create_us: i64,
    pub update_us: i64,
    pub dissolve_us: Option<i64>,
    pub version: i64,
}

const INSTITUTION_COLUMNS: &str = "id, display_name, kind, national_id, registration_number, \
    registering_authority, province, province_key, city, address, phone, email, activity_areas, \
    representatives, state, dissolution_reason, create_us, update_us, dissolve_us, version";

impl InstitutionRow {
    /// The row [`insert_institution`] writes, without reading it back.
    pub fn inserted(id: &str, f: &InstitutionFields, now: i64) -> Self {
        Self {
            id: id.to_owned(),
            display_name: f.display_name.clone(),
            kind: f.kind,
            national_id: f.national_id.clone(),
            registration_number: f.registration_number.clone(),
            registering_authority: f.registering_authority.clone(),
            province: f.province.clone(),
            province_key: fold_for_search(&f.province),
            city: f.city.clone(),
            address: f.address.clone(),
            phone: f.phone.clone(),
            email: f.email.clone(),
            activity_areas: json(&f.activity_areas),
            representatives: json(&f.representatives),
            state: pb::InstitutionState::Active as i32,
            dissolution_reason: String::new(),
            create_us: now,
            update_us: now,
            dissolve_us: None,
            version: 1,
        }
    }

    pub fn areas(&self) -> Vec<i32> {
        serde_json::from_str(&self.activity_areas).unwrap_or_default()
    }

    pub fn reps(&self) -> Vec<Representative> {
        serde_json::from_str(&self.representatives).unwrap_or_default()
    }

    pub fn dissolved(&self) -> bool {
        self.state == pb::InstitutionState::Dissolved as i32
    }

    pub fn fields(&self) -> InstitutionFields {
        InstitutionFields {
            display_name: self.display_name.clone(),
            kind: self.kind,
            national_id: self.national_id.clone(),
            registration_number: self.registration_number.clone(),
            registering_authority: self.registering_authority.clone(),
            province: self.province.clone(),
            city: self.city.clone(),
            address: self.address.clone(),
            phone: self.phone.clone(),
            email: self.email.clone(),
            activity_areas: self.areas(),
            representatives: self.reps(),
        }
    }

    /// The API view; representatives' national codes masked unless `personal_data`.
    pub fn to_pb(&self, personal_data: bool) -> pb::Institution {
        pb::Institution {
            name: input::institution_name(&self.id),
            display_name: self.display_name.clone(),
            kind: self.kind,
            national_id: self.national_id.clone(),
            registration_number: self.registration_number.clone(),
            registering_authority: self.registering_authority.clone(),
            province: self.province.clone(),
            city: self.city.clone(),
            address: self.address.clone(),
            phone: self.phone.clone(),
            email: self.email.clone(),
            activity_areas: self.areas(),
            representatives: self
                .reps()
                .into_iter()
                .map(|r| pb::Representative {
                    full_name: r.full_name,
                    national_code: if personal_data {
                        r.national_code
                    } else {
                        mask(&r.national_code)
                    },
                    role: r.role,
                    phone: r.phone,
                })
                .collect(),
            state: self.state,
            dissolution_reason: self.dissolution_reason.clone(),
            create_time: Some(to_timestamp(self.create_us)),
            update_time: Some(to_timestamp(self.update_us)),
            dissolve_time: self.dissolve_us.map(to_timestamp),
            etag: self.version.to_string(),
        }
    }
}

pub async fn get_institution<C: ConnectionTrait>(
    c: &C,
    id: &str,
) -> Result<Option<InstitutionRow>, ApiError> {
    InstitutionRow::find_by_statement(stmt(
        c,
        &format!("SELECT {INSTITUTION_COLUMNS} FROM institutions WHERE id = $1"),
        [id.into()],
    ))
    .one(c)
    .await
    .map_err(db_error)
}

pub async fn institution_by_national_id<C: ConnectionTrait>(
    c: &C,
    national_id: &str,
) -> Result<Option<String>, ApiError> {
    let row = c
        .query_one_raw(stmt(
            c,
            "SELECT id FROM institutions WHERE national_id = $1",
            [national_id.into()],
        ))
        .await
        .map_err(db_error)?;
    row.map(|r| r.try_get::<String>("", "id"))
        .transpose()
        .map_err(db_error)
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

async fn replace_areas<C: ConnectionTrait>(c: &C, id: &str, areas: &[i32]) -> Result<(), ApiError> {
    c.execute_raw(stmt(
        c,
        "DELETE FROM institution_areas WHERE institution_id = $1",
        [id.into()],
    ))
    .await
    .map_err(db_error)?;
    for a in areas {
        c.execute_raw(stmt(
            c,
            "INSERT INTO institution_areas (area, institution_id) VALUES ($1, $2)",
            [(*a).into(), id.into()],
        ))
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

pub async fn insert_institution<C: ConnectionTrait>(
    c: &C,
    id: &str,
    f: &InstitutionFields,
    now: i64,
) -> Result<(), ApiError> {
    c.execute_raw(stmt(
        c,
        "INSERT INTO institutions (id, display_name, name_key, kind, national_id, registration_number, \
         registering_authority, province, province_key, city, address, phone, email, activity_areas, \
         representatives, state, dissolution_reason, create_us, update_us, dissolve_us, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, '', $17, $17, NULL, 1)",
        [
            id.into(),
            f.display_name.clone().into(),
            fold_for_search(&f.display_name).into(),
            f.kind.into(),
            f.national_id.clone().into(),
            f.registration_number.clone().into(),
            f.registering_authority.clone().into(),
            f.province.clone().into(),
            fold_for_search(&f.province).into(),
            f.city.clone().into(),
            f.address.clone().into(),
            f.phone.clone().into(),
            f.email.clone().into(),
            json(&f.activity_areas).into(),
            json(&f.representatives).into(),
            (pb::InstitutionState::Active as i32).into(),
            now.into(),
        ],
    ))
    .await
    .map_err(|e| {
        if mosharekat_platform::db::is_unique_violation(&e) {
            ApiError::already_exists("institution", format!("national_id {}", f.national_id))
        } else {
            db_error(e)
        }
    })?;
    replace_areas(c, id, &f.activity_areas).await
}

/// Writes new field values if the row is still at `version`; false when it is not.
pub async fn update_institution<C: ConnectionTrait>(
    c: &C,
    id: &str,
    version: i64,
    f: &InstitutionFields,
    now: i64,
) -> Result<bool, ApiError> {
    let r = c
        .execute_raw(stmt(
            c,
            "UPDATE institutions SET display_name = $1, name_key = $2, kind = $3, registration_number = $4, \
             registering_authority = $5, province = $6, province_key = $7, city = $8, address = $9, phone = $10, \
             email = $11, activity_areas = $12, representatives = $13, update_us = $14, version = version + 1 \
             WHERE id = $15 AND version = $16",
            [
                f.display_name.clone().into(),
                fold_for_search(&f.display_name).into(),
                f.kind.into(),
                f.registration_number.clone().into(),
                f.registering_authority.clone().into(),
                f.province.clone().into(),
                fold_for_search(&f.province).into(),
                f.city.clone().into(),
                f.address.clone().into(),
                f.phone.clone().into(),
                f.email.clone().into(),
                json(&f.activity_areas).into(),
                json(&f.representatives).into(),
                now.into(),
                id.into(),
                version.into(),
            ],
        ))
        .await
        .map_err(db_error)?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    replace_areas(c, id, &f.activity_areas).await?;
    Ok(true)
}

pub async fn dissolve_institution<C: ConnectionTrait>(
    c: &C,
    id: &str,
    version: i64,
    reason: &str,
    now: i64,
) -> Result<bool, ApiError> {
    let r = c
        .execute_raw(stmt(
            c,
            "UPDATE institutions SET state = $1, dissolution_reason = $2, dissolve_us = $3, update_us = $3, \
             version = version + 1 WHERE id = $4 AND version = $5",
            [
                (pb::InstitutionState::Dissolved as i32).into(),
                reason.into(),
                now.into(),
                id.into(),
                version.into(),
            ],
        ))
        .await
        .map_err(db_error)?;
    Ok(r.rows_affected() == 1)
}

/// The filters of `ListInstitutions`, already checked.
#[derive(Debug, Clone, Default)]
pub struct InstitutionFilter {
    pub only_id: Option<String>,
    pub province_key: Option<String>,
    pub area: Option<i32>,
    pub licence_state: Option<pb::LicenceState>,
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

/// Builds a WHERE clause with numbered placeholders.
struct Where {
    conds: Vec<String>,
    values: Vec<Value>,
}

impl Where {
    fn new() -> Self {
        Self {
            conds: Vec::new(),
            values: Vec::new(),
        }
    }
    /// Adds a condition; `?` in it stands for the next placeholder.
    fn add(&mut self, cond: &str, values: impl IntoIterator<Item = Value>) {
        let mut out = String::new();
        let mut vals = values.into_iter();
        for ch in cond.chars() {
            if ch == '?' {
                if let Some(v) = vals.next() {
                    self.values.push(v);
                    out.push_str(&format!("${}", self.values.len()));
                }
            } else {
                out.push(ch);
            }
        }
        self.conds.push(out);
    }
    fn next(&self) -> usize {
        self.values.len() + 1
    }
    fn sql(&self) -> String {
        if self.conds.is_empty() {
            "TRUE".into()
        } else {
            self.conds.join(" AND ")
        }
    }
}

fn licence_state_condition(state: pb::LicenceState, now: i64) -> (String, Vec<Value>) {
    use pb::LicenceState as S;
    let active = S::Active as i32;
    match state {
        S::Active => (
            format!("(l.state = {active} AND l.valid_until_us > ?)"),
            vec![now.into()],
        ),
        S::Expired => (
            format!(
                "(l.state = {} OR (l.state = {active} AND l.valid_until_us <= ?))",
                S::Expired as i32
            ),
            vec![now.into()],
        ),
        other => (format!("l.state = {}", other as i32), vec![]),
    }
}

pub async fn list_institutions<C: ConnectionTrait>(
    c: &C,
    f: &InstitutionFilter,
    after_id: Option<&str>,
    limit: u64,
    now: i64,
) -> Result<Vec<InstitutionRow>, ApiError> {
    let mut w = Where::new();
    if let Some(id) = &f.only_id {
        w.add("i.id = ?", [id.clone().into()]);
    }
    if !f.include_dissolved {
        w.add(
            "i.state = ?",
            [(pb::InstitutionState::Active as i32).into()],
        );
    }
    if let Some(p) = &f.province_key {
        w.add("i.province_key = ?", [p.clone().into()]);
    }
    if let Some(a) = f.area {
        w.add(
            "EXISTS (SELECT 1 FROM institution_areas a WHERE a.institution_id = i.id AND a.area = ?)",
            [a.into()],
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
    if let Some(after) = after_id {
        w.add("i.id > ?", [after.into()]);
    }
    let sql = format!(
        "SELECT {} FROM institutions i WHERE {} ORDER BY i.id LIMIT ${}",
        INSTITUTION_COLUMNS
            .split(", ")
            .map(|c| format!("i.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
        w.sql(),
        w.next()
    );
    let mut values = w.values;
    values.push((limit as i64).into());
    InstitutionRow::find_by_statement(stmt(c, &sql, values))
        .all(c)
        .await
        .map_err(db_error)
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct LicenceRow {
    pub id: String,
    pub institution_id: String,
    pub province: String,
    pub province_key: String,
    pub activity_areas: String,
    pub permitted_actions: String,
    pub valid_from_us: i64,
    pub valid_until_us: i64,
    pub state: i32,
    pub create_us: i64,
    pub update_us: i64,
    pub version: i64,
}

const LICENCE_COLUMNS: &str = "id, institution_id, province, province_key, activity_areas, permitted_actions, \
    valid_from_us, valid_until_us, state, create_us, update_us, version";

impl LicenceRow {
    pub fn stored_state(&self) -> pb::LicenceState {
        pb::LicenceState::try_from(self.state).unwrap_or(pb::LicenceState::Unspecified)
    }

    pub fn state_at(&self, now: i64) -> pb::LicenceState {
        domain::effective_state(self.stored_state(), self.valid_until_us, now)
    }

    pub fn facts(&self, now: i64) -> LicenceFacts {
        let areas: Vec<i32> = serde_json::from_str(&self.activity_areas).unwrap_or_default();
        let actions: Vec<i32> = serde_json::from_str(&self.permitted_actions).unwrap_or_default();
        LicenceFacts {
            id: self.id.clone(),
            state: self.state_at(now),
            province_key: self.province_key.clone(),
            areas: areas
                .into_iter()
                .filter_map(|a| a.try_into().ok())
                .collect(),
            actions: actions
                .into_iter()
                .filter_map(|a| a.try_into().ok())
                .collect(),
            valid_from_us: self.valid_from_us,
        }
    }

    pub fn to_pb(&self, history: Vec<EventRow>, now: i64) -> pb::Licence {
        pb::Licence {
            name: input::licence_name(&self.institution_id, &self.id),
            activity_areas: serde_json::from_str(&self.activity_areas).unwrap_or_default(),
            permitted_actions: serde_json::from_str(&self.permitted_actions).unwrap_or_default(),
            province: self.province.clone(),
            valid_from: Some(to_timestamp(self.valid_from_us)),
            valid_until: Some(to_timestamp(self.valid_until_us)),
            state: self.state_at(now) as i32,
            history: history
                .into_iter()
                .map(|e| pb::LicenceTransition {
                    from_state: e.from_state,
                    to_state: e.to_state,
                    actor: e.actor,
                    time: Some(to_timestamp(e.time_us)),
                    reason: e.reason,
                })
                .collect(),
            create_time: Some(to_timestamp(self.create_us)),
            update_time: Some(to_timestamp(self.update_us)),
            etag: self.version.to_string(),
        }
    }
}

pub async fn get_licence<C: ConnectionTrait>(
    c: &C,
    institution_id: &str,
    id: &str,
) -> Result<Option<LicenceRow>, ApiError> {
    LicenceRow::find_by_statement(stmt(
        c,
        &format!("SELECT {LICENCE_COLUMNS} FROM licences WHERE id = $1 AND institution_id = $2"),
        [id.into(), institution_id.into()],
    ))
    .one(c)
    .await
    .map_err(db_error)
}

pub async fn licences_of<C: ConnectionTrait>(
    c: &C,
    institution_id: &str,
) -> Result<Vec<LicenceRow>, ApiError> {
    LicenceRow::find_by_statement(stmt(
        c,
        &format!("SELECT {LICENCE_COLUMNS} FROM licences WHERE institution_id = $1 ORDER BY id"),
        [institution_id.into()],
    ))
    .all(c)
    .await
    .map_err(db_error)
}

pub async fn insert_licence<C: ConnectionTrait>(
    c: &C,
    id: &str,
    institution_id: &str,
    f: &LicenceFields,
    now: i64,
) -> Result<(), ApiError> {
    c.execute_raw(stmt(
        c,
        "INSERT INTO licences (id, institution_id, province, province_key, activity_areas, permitted_actions, \
         valid_from_us, valid_until_us, state, create_us, update_us, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, 1)",
        [
            id.into(),
            institution_id.into(),
            f.province.clone().into(),
            fold_for_search(&f.province).into(),
            json(&f.activity_areas).into(),
            json(&f.permitted_actions).into(),
            f.valid_from_us.into(),
            f.valid_until_us.into(),
            (pb::LicenceState::Pending as i32).into(),
            now.into(),
        ],
    ))
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Moves a licence to `to` if it is still at `version`; false when it is not.
pub async fn set_licence_state<C: ConnectionTrait>(
    c: &C,
    id: &str,
    version: i64,
    to: pb::LicenceState,
    valid_until_us: Option<i64>,
    now: i64,
) -> Result<bool, ApiError> {
    let r = match valid_until_us {
        Some(vu) => c
            .execute_raw(stmt(
                c,
                "UPDATE licences SET state = $1, valid_until_us = $2, update_us = $3, version = version + 1 \
                 WHERE id = $4 AND version = $5",
                [(to as i32).into(), vu.into(), now.into(), id.into(), version.into()],
            ))
            .await,
        None => c
            .execute_raw(stmt(
                c,
                "UPDATE licences SET state = $1, update_us = $2, version = version + 1 WHERE id = $3 AND version = $4",
                [(to as i32).into(), now.into(), id.into(), version.into()],
            ))
            .await,
    }
    .map_err(db_error)?;
    Ok(r.rows_affected() == 1)
}

pub async fn list_licences<C: ConnectionTrait>(
    c: &C,
    institution_id: Option<&str>,
    state: Option<pb::LicenceState>,
    after_id: Option<&str>,
    limit: u64,
    now: i64,
) -> Result<Vec<LicenceRow>, ApiError> {
    let mut w = Where::new();
    if let Some(i) = institution_id {
        w.add("l.institution_id = ?", [i.into()]);
    }
    if let Some(s) = state {
        let (cond, vals) = licence_state_condition(s, now);
        w.add(&cond, vals);
    }
    if let Some(a) = after_id {
        w.add("l.id > ?", [a.into()]);
    }
    let sql = format!(
        "SELECT {} FROM licences l WHERE {} ORDER BY l.id LIMIT ${}",
        LICENCE_COLUMNS
            .split(", ")
            .map(|c| format!("l.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
        w.sql(),
        w.next()
    );
    let mut values = w.values;
    values.push((limit as i64).into());
    LicenceRow::find_by_statement(stmt(c, &sql, values))
        .all(c)
        .await
        .map_err(db_error)
}

/// ACTIVE licences whose end has passed, not yet recorded as expired.
pub async fn due_for_expiry<C: ConnectionTrait>(
    c: &C,
    now: i64,
    limit: u64,
) -> Result<Vec<LicenceRow>, ApiError> {
    LicenceRow::find_by_statement(stmt(
        c,
        &format!(
            "SELECT {LICENCE_COLUMNS} FROM licences WHERE state = $1 AND valid_until_us <= $2 ORDER BY id LIMIT $3"
        ),
        [(pb::LicenceState::Active as i32).into(), now.into(), (limit as i64).into()],
    ))
    .all(c)
    .await
    .map_err(db_error)
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct EventRow {
    pub seq: i64,
    pub licence_id: String,
    pub institution_id: String,
    pub kind: i32,
    pub from_state: i32,
    pub to_state: i32,
    pub actor: String,
    /// Empty for events stored before the role was.
    pub actor_role: String,
    pub reason: String,
    pub time_us: i64,
    pub traceparent: String,
}

impl EventRow {
    pub fn to_pb(&self) -> pb::LicenceEvent {
        pb::LicenceEvent {
            sequence: self.seq,
            kind: self.kind,
            licence: input::licence_name(&self.institution_id, &self.licence_id),
            institution: input::institution_name(&self.institution_id),
            from_state: self.from_state,
            to_state: self.to_state,
            actor: self.actor.clone(),
            actor_role: self.actor_role.clone(),
            reason: self.reason.clone(),
            time: Some(to_timestamp(self.time_us)),
            traceparent: self.traceparent.clone(),
        }
    }
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

/// A licence event to append.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub licence_id: &'a str,
    pub institution_id: &'a str,
    pub kind: pb::LicenceEventKind,
    pub from: pb::LicenceState,
    pub to: pb::LicenceState,
    pub actor: Actor<'a>,
    pub reason: &'a str,
    pub traceparent: &'a str,
}

/// Appends an event with the next sequence number. Gap-free because writers are
/// serialised and a rolled-back transaction takes its number with it.
pub async fn append_event<C: ConnectionTrait>(
    c: &C,
    e: &NewEvent<'_>,
    now: i64,
) -> Result<i64, ApiError> {
    let row = c
        .query_one_raw(stmt(
            c,
            "SELECT COALESCE(MAX(seq), 0) AS last FROM licence_events",
            [],
        ))
        .await
        .map_err(db_error)?;
    let last: i64 = match row {
        Some(r) => r.try_get("", "last").map_err(db_error)?,
        None => 0,
    };
    let seq = last + 1;
    c.execute_raw(stmt(
        c,
        "INSERT INTO licence_events (seq, licence_id, institution_id, kind, from_state, to_state, actor, actor_role, \
         reason, time_us, traceparent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        [
            seq.into(),
            e.licence_id.into(),
            e.institution_id.into(),
            (e.kind as i32).into(),
            (e.from as i32).into(),
            (e.to as i32).into(),
            e.actor.subject.into(),
            e.actor.role.as_str().into(),
            e.reason.into(),
            now.into(),
            e.traceparent.into(),
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
) -> Result<Vec<EventRow>, ApiError> {
    EventRow::find_by_statement(stmt(
        c,
        &format!("SELECT {EVENT_COLUMNS} FROM licence_events WHERE seq > $1 ORDER BY seq LIMIT $2"),
        [after.into(), (limit as i64).into()],
    ))
    .all(c)
    .await
    .map_err(db_error)
}

pub async fn history<C: ConnectionTrait>(
    c: &C,
    licence_id: &str,
) -> Result<Vec<EventRow>, ApiError> {
    EventRow::find_by_statement(stmt(
        c,
        &format!("SELECT {EVENT_COLUMNS} FROM licence_events WHERE licence_id = $1 ORDER BY seq"),
        [licence_id.into()],
    ))
    .all(c)
    .await
    .map_err(db_error)
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
