//! The meeting service's tables. Each resource is kept as its domain record in JSON
//! (`record`, see [`Stored`]) beside the columns lists filter on, which are derived from it
//! on every write. Nothing here is an API message's encoding, except the bytes of minutes
//! approved under hash version 1, kept verbatim for their verification alone
//! (`meetings.minutes_v1`, see [`crate::canonical`]).
//!
//! # The stored form
//!
//! `{"schema": 1, ...the record's fields...}`. Decoding is forward-compatible: a field this
//! release does not know (written by a newer one during a rolling upgrade) is kept in
//! [`Extra`] and written back unchanged when this release changes the record, so an older
//! replica's read-modify-write does not erase it. Unknown fields are kept at the top level
//! of a record; a newer release adds its fields there. A record written under a higher
//! `schema` keeps that number.

use std::collections::HashMap;

use mosharekat_persian::fold_for_search;
use mosharekat_platform::db::{db_error, is_unique_violation};
use mosharekat_platform::error::ApiError;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain;
use crate::names::{GroupName, MeetingName, MemberName, ResolutionName};

/// The version of the stored form this release writes.
pub const SCHEMA: u32 = 1;

/// What a stored record holds besides the fields this release knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extra {
    pub schema: u32,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Extra {
    /// A record this release creates.
    pub fn new() -> Self {
        Self {
            schema: SCHEMA,
            fields: Default::default(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Stored<T> {
    schema: u32,
    #[serde(flatten)]
    value: T,
    // Declared last: it takes what the fields before it leave.
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

/// The stored text of `value`, keeping `extra`.
pub fn encode<T: Serialize>(value: &T, extra: &Extra) -> Result<String, ApiError> {
    #[derive(Serialize)]
    struct Out<'a, T> {
        schema: u32,
        #[serde(flatten)]
        value: &'a T,
        #[serde(flatten)]
        extra: &'a serde_json::Map<String, serde_json::Value>,
    }
    serde_json::to_string(&Out {
        schema: extra.schema.max(SCHEMA),
        value,
        extra: &extra.fields,
    })
    .map_err(ApiError::internal)
}

/// A stored text decoded, with what this release does not know.
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<(T, Extra), ApiError> {
    let s: Stored<T> = serde_json::from_str(text).map_err(ApiError::internal)?;
    Ok((
        s.value,
        Extra {
            schema: s.schema,
            fields: s.extra,
        },
    ))
}

/// A resource as stored: its row id, the version its etag comes from, its record, and
/// what the record holds that this release does not know.
#[derive(Debug, Clone)]
pub struct Record<T> {
    pub id: String,
    pub version: i64,
    pub body: T,
    pub extra: Extra,
}

async fn exec<C: ConnectionTrait>(c: &C, sql: &str, values: Vec<Value>) -> Result<u64, ApiError> {
    c.execute_raw(Statement::from_sql_and_values(
        c.get_database_backend(),
        sql,
        values,
    ))
    .await
    .map(|r| r.rows_affected())
    .map_err(|e| {
        if is_unique_violation(&e) {
            ApiError::Aborted("a concurrent change took the same number; retry".into())
        } else {
            db_error(e)
        }
    })
}

pub fn last_segment(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or_default()
}

/// A WHERE clause with numbered placeholders (`$1`, which SQLite and PostgreSQL both
/// accept); in a condition, `?` stands for the next one.
#[derive(Debug, Default)]
pub struct Where {
    conds: Vec<String>,
    values: Vec<Value>,
}

impl Where {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, cond: &str, values: impl IntoIterator<Item = Value>) -> &mut Self {
        let mut vals = values.into_iter();
        let mut out = String::with_capacity(cond.len() + 8);
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
        self
    }

    /// `id IN (…)`-style: `column` is one of `values` (false when there are none).
    pub fn any_of(&mut self, column: &str, values: Vec<Value>) -> &mut Self {
        if values.is_empty() {
            return self.add("FALSE", []);
        }
        let marks = vec!["?"; values.len()].join(", ");
        self.add(&format!("{column} IN ({marks})"), values)
    }

    fn sql(mut self, columns: &str, table: &str, order: &str, limit: u64) -> (String, Vec<Value>) {
        let w = if self.conds.is_empty() {
            "TRUE".into()
        } else {
            self.conds.join(" AND ")
        };
        self.values.push((limit.min(i64::MAX as u64) as i64).into());
        (
            format!(
                "SELECT {columns} FROM {table} WHERE {w} ORDER BY {order} LIMIT ${}",
                self.values.len()
            ),
            self.values,
        )
    }
}

#[derive(Debug, FromQueryResult)]
struct Row {
    id: String,
    version: i64,
    record: String,
}

/// The records of `table` matching `w`, in `order`, at most `limit`, each decoded as `D`
/// and handed to the caller as `T`.
async fn select<C: ConnectionTrait, D: DeserializeOwned, T>(
    c: &C,
    table: &str,
    w: Where,
    order: &str,
    limit: u64,
    into: impl Fn(&D) -> T,
) -> Result<Vec<Record<T>>, ApiError> {
    let (sql, values) = w.sql("id, version, record", table, order, limit);
    Row::find_by_statement(Statement::from_sql_and_values(
        c.get_database_backend(),
        sql,
        values,
    ))
    .all(c)
    .await
    .map_err(db_error)?
    .into_iter()
    .map(|r| {
        let (d, extra) = decode::<D>(&r.record)?;
        Ok(Record {
            id: r.id,
            version: r.version,
            body: into(&d),
            extra,
        })
    })
    .collect()
}

const ALL: u64 = u64::MAX >> 1;

// ---------- the edge between the store's records and what the handlers hold ----------
//
// The handlers still hold API messages; the store keeps domain records. These are the
// conversions, both ways, in one place.

use mosharekat_api::meeting::v1 as pb;

fn domain_of<T>(r: Result<T, ApiError>) -> Result<T, ApiError> {
    // What the service writes was validated as it came in: a failure here is a bug.
    r.map_err(|e| ApiError::internal(anyhow::anyhow!("not a storable record: {e:?}")))
}

fn group_pb(g: &domain::Group) -> pb::WorkingGroup {
    g.into()
}
fn member_pb(m: &domain::Member) -> pb::Member {
    m.into()
}
fn resolution_pb(r: &domain::Resolution) -> pb::Resolution {
    r.into()
}

// ---------- working groups ----------

// Every resource is loaded by its typed name, and a child only under the working group
// its name gives: the row's group is part of the lookup, so the id of another group's
// child finds nothing, and the caller gets NOT_FOUND naming what they sent.

pub async fn group<C: ConnectionTrait>(
    c: &C,
    name: &GroupName,
) -> Result<Record<pb::WorkingGroup>, ApiError> {
    let mut w = Where::new();
    w.add("id = ?", [name.id().into()]);
    select(c, "working_groups", w, "id", 1, group_pb)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("working group", name.to_string()))
}

pub async fn groups<C: ConnectionTrait>(
    c: &C,
    w: Where,
    limit: u64,
) -> Result<Vec<Record<pb::WorkingGroup>>, ApiError> {
    select(c, "working_groups", w, "id", limit, group_pb).await
}

pub async fn insert_group<C: ConnectionTrait>(
    c: &C,
    id: &str,
    g: &pb::WorkingGroup,
) -> Result<(), ApiError> {
    let d = domain_of(crate::api::group_from(g, ""))?;
    exec(
        c,
        "INSERT INTO working_groups (id, province_key, version, record) VALUES ($1, $2, 1, $3)",
        vec![
            id.into(),
            fold_for_search(&d.province).into(),
            encode(&d, &Extra::new())?.into(),
        ],
    )
    .await
    .map(|_| ())
}

pub async fn save_group<C: ConnectionTrait>(
    c: &C,
    id: &str,
    version: i64,
    g: &pb::WorkingGroup,
    extra: &Extra,
) -> Result<bool, ApiError> {
    let d = domain_of(crate::api::group_from(g, ""))?;
    exec(
        c,
        "UPDATE working_groups SET province_key = $1, record = $2, version = version + 1 WHERE id = $3 AND version = $4",
        vec![fold_for_search(&d.province).into(), encode(&d, extra)?.into(), id.into(), version.into()],
    )
    .await
    .map(|n| n == 1)
}

// ---------- members ----------

async fn child<C: ConnectionTrait, D: DeserializeOwned, T>(
    c: &C,
    table: &str,
    group: &GroupName,
    id: &str,
    into: impl Fn(&D) -> T,
) -> Result<Option<Record<T>>, ApiError> {
    let mut w = Where::new();
    w.add(
        "id = ? AND working_group_id = ?",
        [id.into(), group.id().into()],
    );
    Ok(select(c, table, w, "id", 1, into).await?.into_iter().next())
}

pub async fn member<C: ConnectionTrait>(
    c: &C,
    name: &MemberName,
) -> Result<Record<pb::Member>, ApiError> {
    child(c, "members", name.group(), name.id(), member_pb)
        .await?
        .ok_or_else(|| ApiError::not_found("member", name.to_string()))
}

fn member_columns(m: &domain::Member) -> Vec<Value> {
    vec![
        last_segment(&m.institution).to_owned().into(),
        m.term_end.is_none().into(),
    ]
}

pub async fn insert_member<C: ConnectionTrait>(
    c: &C,
    id: &str,
    group: &str,
    m: &pb::Member,
) -> Result<(), ApiError> {
    let d = domain_of(crate::api::member_from(m, ""))?;
    let mut v: Vec<Value> = vec![id.into(), group.into()];
    v.extend(member_columns(&d));
    v.push(encode(&d, &Extra::new())?.into());
    exec(
        c,
        "INSERT INTO members (id, working_group_id, institution_id, seated, record, version) VALUES ($1, $2, $3, $4, $5, 1)",
        v,
    )
    .await
    .map(|_| ())
}

pub async fn save_member<C: ConnectionTrait>(
    c: &C,
    id: &str,
    version: i64,
    m: &pb::Member,
    extra: &Extra,
) -> Result<bool, ApiError> {
    let d = domain_of(crate::api::member_from(m, ""))?;
    let mut v = member_columns(&d);
    v.extend([encode(&d, extra)?.into(), id.into(), version.into()]);
    exec(
        c,
        "UPDATE members SET institution_id = $1, seated = $2, record = $3, version = version + 1 WHERE id = $4 AND version = $5",
        v,
    )
    .await
    .map(|n| n == 1)
}

/// The members holding a seat now (vacant ones included) of a working group.
pub async fn seated<C: ConnectionTrait>(
    c: &C,
    group: &str,
) -> Result<Vec<Record<pb::Member>>, ApiError> {
    let mut w = Where::new();
    w.add(
        "working_group_id = ? AND seated = ?",
        [group.into(), true.into()],
    );
    select(c, "members", w, "id", ALL, member_pb).await
}

/// Every member a working group has had, seated now or not.
pub async fn members_ever<C: ConnectionTrait>(
    c: &C,
    group: &str,
) -> Result<Vec<Record<pb::Member>>, ApiError> {
    let mut w = Where::new();
    w.add("working_group_id = ?", [group.into()]);
    select(c, "members", w, "id", ALL, member_pb).await
}

/// The seated representatives of an institution, in every working group.
pub async fn representatives_of<C: ConnectionTrait>(
    c: &C,
    institution_id: &str,
) -> Result<Vec<Record<pb::Member>>, ApiError> {
    let mut w = Where::new();
    w.add(
        "institution_id = ? AND seated = ?",
        [institution_id.into(), true.into()],
    );
    select(c, "members", w, "id", ALL, member_pb).await
}

// ---------- meetings ----------

pub fn meeting_id(group: &str, number: i32) -> String {
    format!("{group}/{number}")
}

/// A meeting row: its record, and beside it the form its minutes' hash was taken over.
#[derive(Debug, FromQueryResult)]
struct MeetingRow {
    id: String,
    version: i64,
    record: String,
    minutes_hash_version: i32,
}

impl MeetingRow {
    fn record(self) -> Result<Record<pb::Meeting>, ApiError> {
        let (d, extra) = decode::<domain::Meeting>(&self.record)?;
        let mut body = pb::Meeting::from(&d);
        // The column names the form of a hash once there is one (its default is for rows
        // hashed before it existed).
        body.minutes_hash_version = if body.content_sha256.is_empty() {
            0
        } else {
            self.minutes_hash_version
        };
        Ok(Record {
            id: self.id,
            version: self.version,
            body,
            extra,
        })
    }
}

async fn meetings_where<C: ConnectionTrait>(
    c: &C,
    condition_and_order: &str,
    values: Vec<Value>,
) -> Result<Vec<Record<pb::Meeting>>, ApiError> {
    MeetingRow::find_by_statement(Statement::from_sql_and_values(
        c.get_database_backend(),
        format!(
            "SELECT id, version, record, minutes_hash_version FROM meetings WHERE {condition_and_order}"
        ),
        values,
    ))
    .all(c)
    .await
    .map_err(db_error)?
    .into_iter()
    .map(MeetingRow::record)
    .collect()
}

pub async fn meeting<C: ConnectionTrait>(
    c: &C,
    name: &MeetingName,
) -> Result<Record<pb::Meeting>, ApiError> {
    let id = meeting_id(name.group().id(), name.number());
    meetings_where(
        c,
        "id = $1 AND working_group_id = $2",
        vec![id.into(), name.group().id().into()],
    )
    .await?
    .into_iter()
    .next()
    .ok_or_else(|| ApiError::not_found("meeting", name.to_string()))
}

/// The bytes of a meeting's minutes as approved under hash version 1 (the prost encoding
/// the previous releases stored), if it was.
pub async fn minutes_v1<C: ConnectionTrait>(
    c: &C,
    name: &MeetingName,
) -> Result<Option<Vec<u8>>, ApiError> {
    let row = c
        .query_one_raw(Statement::from_sql_and_values(
            c.get_database_backend(),
            "SELECT minutes_v1 FROM meetings WHERE id = $1 AND working_group_id = $2",
            [
                meeting_id(name.group().id(), name.number()).into(),
                name.group().id().into(),
            ],
        ))
        .await
        .map_err(db_error)?;
    match row {
        Some(r) => r.try_get("", "minutes_v1").map_err(db_error),
        None => Ok(None),
    }
}

/// A page of a working group's meetings in number order, after number `after` (`None`:
/// from the first).
pub async fn meetings_page<C: ConnectionTrait>(
    c: &C,
    group: &str,
    after: Option<i32>,
    limit: u64,
) -> Result<Vec<Record<pb::Meeting>>, ApiError> {
    meetings_where(
        c,
        "working_group_id = $1 AND number > $2 ORDER BY number LIMIT $3",
        vec![
            group.into(),
            after.unwrap_or(i32::MIN).into(),
            (limit as i64).into(),
        ],
    )
    .await
}

pub async fn next_meeting_number<C: ConnectionTrait>(c: &C, group: &str) -> Result<i32, ApiError> {
    let row = c
        .query_one_raw(Statement::from_sql_and_values(
            c.get_database_backend(),
            "SELECT COALESCE(MAX(number), 0) AS last FROM meetings WHERE working_group_id = $1",
            [group.into()],
        ))
        .await
        .map_err(db_error)?;
    let last: i32 = match row {
        Some(r) => r.try_get("", "last").map_err(db_error)?,
        None => 0,
    };
    Ok(last + 1)
}

pub async fn insert_meeting<C: ConnectionTrait>(
    c: &C,
    group: &str,
    m: &pb::Meeting,
) -> Result<(), ApiError> {
    let d = domain_of(crate::api::meeting_from(m, ""))?;
    exec(
        c,
        "INSERT INTO meetings (id, working_group_id, number, version, record) VALUES ($1, $2, $3, 1, $4)",
        vec![meeting_id(group, m.number).into(), group.into(), m.number.into(), encode(&d, &Extra::new())?.into()],
    )
    .await
    .map(|_| ())
}

/// Saves a meeting if its version is still `version`. A `minutes_hash_version` set on it
/// is written to its column (the column, not the record, is the record of it); 0 leaves
/// the column as it is.
pub async fn save_meeting<C: ConnectionTrait>(
    c: &C,
    id: &str,
    version: i64,
    m: &pb::Meeting,
    extra: &Extra,
) -> Result<bool, ApiError> {
    let hash_version = (m.minutes_hash_version != 0).then_some(m.minutes_hash_version);
    let d = domain_of(crate::api::meeting_from(m, ""))?;
    exec(
        c,
        "UPDATE meetings SET record = $1, minutes_hash_version = COALESCE($2, minutes_hash_version), \
         version = version + 1 WHERE id = $3 AND version = $4",
        vec![
            encode(&d, extra)?.into(),
            hash_version.into(),
            id.into(),
            version.into(),
        ],
    )
    .await
    .map(|n| n == 1)
}

// ---------- resolutions ----------

pub async fn resolution<C: ConnectionTrait>(
    c: &C,
    name: &ResolutionName,
) -> Result<Record<pb::Resolution>, ApiError> {
    child(c, "resolutions", name.group(), name.id(), resolution_pb)
        .await?
        .ok_or_else(|| ApiError::not_found("resolution", name.to_string()))
}

pub async fn resolutions<C: ConnectionTrait>(
    c: &C,
    w: Where,
    limit: u64,
) -> Result<Vec<Record<pb::Resolution>>, ApiError> {
    select(c, "resolutions", w, "id", limit, resolution_pb).await
}

fn resolution_columns(r: &domain::Resolution) -> Vec<Value> {
    vec![
        i32::from(r.state).into(),
        r.deadline.map(domain::Time::micros).into(),
        r.responsible_member.clone().into(),
    ]
}

pub async fn insert_resolution<C: ConnectionTrait>(
    c: &C,
    id: &str,
    group: &str,
    meeting: &str,
    r: &pb::Resolution,
) -> Result<(), ApiError> {
    let d = domain_of(crate::api::resolution_from(r, ""))?;
    let mut v: Vec<Value> = vec![id.into(), group.into(), meeting.into()];
    v.extend(resolution_columns(&d));
    v.push(encode(&d, &Extra::new())?.into());
    exec(
        c,
        "INSERT INTO resolutions (id, working_group_id, meeting_id, state, deadline_us, responsible_member, record, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1)",
        v,
    )
    .await
    .map(|_| ())
}

pub async fn save_resolution<C: ConnectionTrait>(
    c: &C,
    id: &str,
    version: i64,
    r: &pb::Resolution,
    extra: &Extra,
) -> Result<bool, ApiError> {
    let d = domain_of(crate::api::resolution_from(r, ""))?;
    let mut v = resolution_columns(&d);
    v.extend([encode(&d, extra)?.into(), id.into(), version.into()]);
    exec(
        c,
        "UPDATE resolutions SET state = $1, deadline_us = $2, responsible_member = $3, record = $4, \
         version = version + 1 WHERE id = $5 AND version = $6",
        v,
    )
    .await
    .map(|n| n == 1)
}

/// The resolutions recorded in a meeting, in order.
pub async fn resolutions_of<C: ConnectionTrait>(
    c: &C,
    meeting_id: &str,
) -> Result<Vec<Record<pb::Resolution>>, ApiError> {
    let mut w = Where::new();
    w.add("meeting_id = ?", [meeting_id.into()]);
    resolutions(c, w, ALL).await
}

/// The resolutions of each of `meeting_ids`, in one query, each meeting's in order.
pub async fn resolutions_of_each<C: ConnectionTrait>(
    c: &C,
    meeting_ids: &[String],
) -> Result<HashMap<String, Vec<Record<pb::Resolution>>>, ApiError> {
    #[derive(Debug, FromQueryResult)]
    struct R {
        id: String,
        meeting_id: String,
        version: i64,
        record: String,
    }
    let mut w = Where::new();
    w.any_of(
        "meeting_id",
        meeting_ids.iter().map(|m| m.clone().into()).collect(),
    );
    let (sql, values) = w.sql(
        "id, meeting_id, version, record",
        "resolutions",
        "meeting_id, id",
        ALL,
    );
    let mut out: HashMap<String, Vec<Record<pb::Resolution>>> = HashMap::new();
    for r in R::find_by_statement(Statement::from_sql_and_values(
        c.get_database_backend(),
        sql,
        values,
    ))
    .all(c)
    .await
    .map_err(db_error)?
    {
        let (d, extra) = decode::<domain::Resolution>(&r.record)?;
        out.entry(r.meeting_id).or_default().push(Record {
            id: r.id,
            version: r.version,
            body: resolution_pb(&d),
            extra,
        });
    }
    Ok(out)
}
