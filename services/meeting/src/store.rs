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
pub use mosharekat_platform::sql::Where;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use mosharekat_platform::change::Versioned;
use mosharekat_platform::db::WriteTxn;

use crate::domain::{self, Group, Meeting, Member, Resolution};
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

/// A record as this release holds it: the domain value and what the stored record holds
/// that this release does not know, written back with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept<T> {
    pub value: T,
    pub extra: Extra,
}

impl<T> Kept<T> {
    /// A record this release creates.
    pub fn new(value: T) -> Self {
        Self {
            value,
            extra: Extra::new(),
        }
    }
}

impl<T> std::ops::Deref for Kept<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> std::ops::DerefMut for Kept<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// A record as stored, with the version its etag comes from.
pub type Record<T> = Versioned<Kept<T>>;

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

/// The change path's guarded write of one record: `columns` (the derived columns, first
/// in `sql`), then the record, then `key`, then the version it must still be at; true
/// when it took.
async fn update<T: Serialize>(
    txn: &WriteTxn,
    sql: &str,
    mut columns: Vec<Value>,
    kept: &Kept<T>,
    key: impl IntoIterator<Item = Value>,
    version: i64,
) -> Result<bool, ApiError> {
    columns.push(encode(&kept.value, &kept.extra)?.into());
    columns.extend(key);
    columns.push(version.into());
    exec(txn, sql, columns).await.map(|n| n == 1)
}

pub fn last_segment(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or_default()
}

#[derive(Debug, FromQueryResult)]
struct Row {
    version: i64,
    record: String,
}

/// The records of `table` matching `w`, in `order`, at most `limit`.
async fn select<C: ConnectionTrait, T: DeserializeOwned>(
    c: &C,
    table: &str,
    w: Where,
    order: &str,
    limit: u64,
) -> Result<Vec<Record<T>>, ApiError> {
    let (sql, values) = w.select("version, record", table, order, limit);
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
        let (value, extra) = decode::<T>(&r.record)?;
        Ok(Versioned {
            version: r.version,
            value: Kept { value, extra },
        })
    })
    .collect()
}

const ALL: u64 = u64::MAX >> 1;

// Every resource is loaded by its typed name, and a child only under the working group
// its name gives: the row's group is part of the lookup, so the id of another group's
// child finds nothing, and the caller gets NOT_FOUND naming what they sent.

fn first<T>(rows: Vec<T>) -> Option<T> {
    rows.into_iter().next()
}

// ---------- working groups ----------

pub async fn group<C: ConnectionTrait>(
    c: &C,
    name: &GroupName,
) -> Result<Option<Record<Group>>, ApiError> {
    let mut w = Where::new();
    w.add("id = ?", [name.id().into()]);
    Ok(first(select(c, "working_groups", w, "id", 1).await?))
}

/// Groups matching `w` in id order.
pub async fn groups<C: ConnectionTrait>(
    c: &C,
    w: Where,
    limit: u64,
) -> Result<Vec<Record<Group>>, ApiError> {
    select(c, "working_groups", w, "id", limit).await
}

pub async fn insert_group(txn: &WriteTxn, g: &Group) -> Result<(), ApiError> {
    exec(
        txn,
        "INSERT INTO working_groups (id, province_key, version, record) VALUES ($1, $2, 1, $3)",
        vec![
            g.name.id().into(),
            fold_for_search(&g.province).into(),
            encode(g, &Extra::new())?.into(),
        ],
    )
    .await
    .map(|_| ())
}

mosharekat_platform::repository! {
    /// Working groups, for the change path.
    pub struct Groups: "working group", GroupName => Kept<Group>;
    name = ToString::to_string, load = group, save = save_group
}

async fn save_group(
    txn: &WriteTxn,
    id: &GroupName,
    version: i64,
    g: &Kept<Group>,
) -> Result<bool, ApiError> {
    let sql = "UPDATE working_groups SET province_key = $1, record = $2, version = version + 1 WHERE id = $3 AND version = $4";
    update(
        txn,
        sql,
        vec![fold_for_search(&g.province).into()],
        g,
        [id.id().into()],
        version,
    )
    .await
}

// ---------- members ----------

async fn child<C: ConnectionTrait, T: DeserializeOwned>(
    c: &C,
    table: &str,
    group: &GroupName,
    id: &str,
) -> Result<Option<Record<T>>, ApiError> {
    let mut w = Where::new();
    w.add(
        "id = ? AND working_group_id = ?",
        [id.into(), group.id().into()],
    );
    Ok(first(select(c, table, w, "id", 1).await?))
}

pub async fn member<C: ConnectionTrait>(
    c: &C,
    name: &MemberName,
) -> Result<Option<Record<Member>>, ApiError> {
    child(c, "members", name.group(), name.id()).await
}

fn member_columns(m: &Member) -> Vec<Value> {
    vec![
        last_segment(&m.institution).to_owned().into(),
        m.term_end.is_none().into(),
    ]
}

pub async fn insert_member(txn: &WriteTxn, m: &Member) -> Result<(), ApiError> {
    let mut v: Vec<Value> = vec![m.name.id().into(), m.name.group().id().into()];
    v.extend(member_columns(m));
    v.push(encode(m, &Extra::new())?.into());
    exec(
        txn,
        "INSERT INTO members (id, working_group_id, institution_id, seated, record, version) VALUES ($1, $2, $3, $4, $5, 1)",
        v,
    )
    .await
    .map(|_| ())
}

mosharekat_platform::repository! {
    /// Members, for the change path.
    pub struct Members: "member", MemberName => Kept<Member>;
    name = ToString::to_string, load = member, save = save_member
}

async fn save_member(
    txn: &WriteTxn,
    id: &MemberName,
    version: i64,
    m: &Kept<Member>,
) -> Result<bool, ApiError> {
    let sql = "UPDATE members SET institution_id = $1, seated = $2, record = $3, version = version + 1 WHERE id = $4 AND version = $5";
    update(txn, sql, member_columns(m), m, [id.id().into()], version).await
}

/// The members holding a seat now (vacant ones included) of a working group.
pub async fn seated<C: ConnectionTrait>(
    c: &C,
    group: &GroupName,
) -> Result<Vec<Record<Member>>, ApiError> {
    let mut w = Where::new();
    w.add(
        "working_group_id = ? AND seated = ?",
        [group.id().into(), true.into()],
    );
    select(c, "members", w, "id", ALL).await
}

/// Every member a working group has had, seated now or not.
pub async fn members_ever<C: ConnectionTrait>(
    c: &C,
    group: &GroupName,
) -> Result<Vec<Record<Member>>, ApiError> {
    let mut w = Where::new();
    w.add("working_group_id = ?", [group.id().into()]);
    select(c, "members", w, "id", ALL).await
}

/// The seated representatives of an institution, in every working group.
pub async fn representatives_of<C: ConnectionTrait>(
    c: &C,
    institution_id: &str,
) -> Result<Vec<Record<Member>>, ApiError> {
    let mut w = Where::new();
    w.add(
        "institution_id = ? AND seated = ?",
        [institution_id.into(), true.into()],
    );
    select(c, "members", w, "id", ALL).await
}

// ---------- meetings ----------

pub fn meeting_id(group: &str, number: i32) -> String {
    format!("{group}/{number}")
}

fn meeting_row_id(name: &MeetingName) -> String {
    meeting_id(name.group().id(), name.number())
}

/// A meeting row: its record, and beside it the form its minutes' hash was taken over.
#[derive(Debug, FromQueryResult)]
struct MeetingRow {
    version: i64,
    record: String,
    minutes_hash_version: i32,
}

impl MeetingRow {
    fn record(self) -> Result<Record<Meeting>, ApiError> {
        let (mut value, extra) = decode::<Meeting>(&self.record)?;
        // The column names the form of a hash once there is one (its default is for rows
        // hashed before it existed).
        value.minutes_hash_version =
            (!value.content_sha256.is_empty()).then_some(self.minutes_hash_version);
        Ok(Versioned {
            version: self.version,
            value: Kept { value, extra },
        })
    }
}

async fn meetings_where<C: ConnectionTrait>(
    c: &C,
    condition_and_order: &str,
    values: Vec<Value>,
) -> Result<Vec<Record<Meeting>>, ApiError> {
    MeetingRow::find_by_statement(Statement::from_sql_and_values(
        c.get_database_backend(),
        format!(
            "SELECT version, record, minutes_hash_version FROM meetings WHERE {condition_and_order}"
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
) -> Result<Option<Record<Meeting>>, ApiError> {
    Ok(first(
        meetings_where(
            c,
            "id = $1 AND working_group_id = $2",
            vec![meeting_row_id(name).into(), name.group().id().into()],
        )
        .await?,
    ))
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
            [meeting_row_id(name).into(), name.group().id().into()],
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
    group: &GroupName,
    after: Option<i32>,
    limit: u64,
) -> Result<Vec<Record<Meeting>>, ApiError> {
    meetings_where(
        c,
        "working_group_id = $1 AND number > $2 ORDER BY number LIMIT $3",
        vec![
            group.id().into(),
            after.unwrap_or(i32::MIN).into(),
            (limit.min(i64::MAX as u64) as i64).into(),
        ],
    )
    .await
}

pub async fn next_meeting_number(txn: &WriteTxn, group: &GroupName) -> Result<i32, ApiError> {
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "SELECT COALESCE(MAX(number), 0) AS last FROM meetings WHERE working_group_id = $1",
            [group.id().into()],
        ))
        .await
        .map_err(db_error)?;
    let last: i32 = match row {
        Some(r) => r.try_get("", "last").map_err(db_error)?,
        None => 0,
    };
    Ok(last + 1)
}

pub async fn insert_meeting(txn: &WriteTxn, m: &Meeting) -> Result<(), ApiError> {
    exec(
        txn,
        "INSERT INTO meetings (id, working_group_id, number, version, record) VALUES ($1, $2, $3, 1, $4)",
        vec![
            meeting_row_id(&m.name).into(),
            m.name.group().id().into(),
            m.name.number().into(),
            encode(m, &Extra::new())?.into(),
        ],
    )
    .await
    .map(|_| ())
}

mosharekat_platform::repository! {
    /// Meetings, for the change path. A `minutes_hash_version` set on a meeting is written
    /// to its column (the column, not the record, is the record of it); none leaves the
    /// column as it is.
    pub struct Meetings: "meeting", MeetingName => Kept<Meeting>;
    name = ToString::to_string, load = meeting, save = save_meeting
}

async fn save_meeting(
    txn: &WriteTxn,
    id: &MeetingName,
    version: i64,
    m: &Kept<Meeting>,
) -> Result<bool, ApiError> {
    let sql = "UPDATE meetings SET minutes_hash_version = COALESCE($1, minutes_hash_version), \
               review_due_us = $2, record = $3, \
               version = version + 1 WHERE id = $4 AND working_group_id = $5 AND version = $6";
    let key = [meeting_row_id(id).into(), id.group().id().into()];
    update(
        txn,
        sql,
        vec![m.minutes_hash_version.into(), review_due_us(m).into()],
        m,
        key,
        version,
    )
    .await
}

/// The end of an open comment window (the column a late publication finds it by).
fn review_due_us(m: &Meeting) -> Option<i64> {
    m.review
        .as_ref()
        .filter(|r| r.state == domain::ReviewState::Open)
        .map(|r| r.window.ends_at.timestamp_micros())
}

/// The meetings, of every group, whose open comment window ends between `from_us` and
/// `to_us` (inclusive): those a holiday or closure on those days may move.
pub async fn open_reviews_due_between<C: ConnectionTrait>(
    c: &C,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<Record<Meeting>>, ApiError> {
    meetings_where(
        c,
        "review_due_us >= $1 AND review_due_us <= $2 ORDER BY id",
        vec![from_us.into(), to_us.into()],
    )
    .await
}

// ---------- resolutions ----------

pub async fn resolution<C: ConnectionTrait>(
    c: &C,
    name: &ResolutionName,
) -> Result<Option<Record<Resolution>>, ApiError> {
    child(c, "resolutions", name.group(), name.id()).await
}

/// Resolutions matching `w` in id order.
pub async fn resolutions<C: ConnectionTrait>(
    c: &C,
    w: Where,
    limit: u64,
) -> Result<Vec<Record<Resolution>>, ApiError> {
    select(c, "resolutions", w, "id", limit).await
}

/// The open or in-progress resolutions, of every group, whose deadline ends between
/// `from_us` and `to_us` (inclusive): those a holiday or closure on those days may move.
pub async fn open_resolutions_due_between<C: ConnectionTrait>(
    c: &C,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<Record<Resolution>>, ApiError> {
    let mut w = Where::new();
    w.add(
        "deadline_us >= ? AND deadline_us <= ?",
        [from_us.into(), to_us.into()],
    );
    w.add(
        "state IN (?, ?)",
        [
            state_code(domain::ResolutionState::Open).into(),
            state_code(domain::ResolutionState::InProgress).into(),
        ],
    );
    select(c, "resolutions", w, "id", ALL).await
}

/// A resolution's state as its `state` column keeps it (the numbers the rows have always
/// held).
pub fn state_code(s: domain::ResolutionState) -> i32 {
    use domain::ResolutionState as S;
    match s {
        S::NotAdopted => 1,
        S::Open => 2,
        S::InProgress => 3,
        S::Done => 4,
        S::Cancelled => 5,
    }
}

fn resolution_columns(r: &Resolution) -> Vec<Value> {
    vec![
        state_code(r.state).into(),
        r.deadline.map(domain::Time::micros).into(),
        r.responsible_member.clone().into(),
    ]
}

pub async fn insert_resolution(
    txn: &WriteTxn,
    meeting: &MeetingName,
    r: &Resolution,
) -> Result<(), ApiError> {
    let mut v: Vec<Value> = vec![
        r.name.id().into(),
        r.name.group().id().into(),
        meeting_row_id(meeting).into(),
    ];
    v.extend(resolution_columns(r));
    v.push(encode(r, &Extra::new())?.into());
    exec(
        txn,
        "INSERT INTO resolutions (id, working_group_id, meeting_id, state, deadline_us, responsible_member, record, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1)",
        v,
    )
    .await
    .map(|_| ())
}

mosharekat_platform::repository! {
    /// Resolutions, for the change path.
    pub struct Resolutions: "resolution", ResolutionName => Kept<Resolution>;
    name = ToString::to_string, load = resolution, save = save_resolution
}

async fn save_resolution(
    txn: &WriteTxn,
    id: &ResolutionName,
    version: i64,
    r: &Kept<Resolution>,
) -> Result<bool, ApiError> {
    let sql = "UPDATE resolutions SET state = $1, deadline_us = $2, responsible_member = $3, record = $4, \
               version = version + 1 WHERE id = $5 AND version = $6";
    update(
        txn,
        sql,
        resolution_columns(r),
        r,
        [id.id().into()],
        version,
    )
    .await
}

/// The resolutions recorded in a meeting, in order.
pub async fn resolutions_of<C: ConnectionTrait>(
    c: &C,
    meeting: &MeetingName,
) -> Result<Vec<Record<Resolution>>, ApiError> {
    Ok(resolutions_of_each(c, std::slice::from_ref(meeting))
        .await?
        .remove(&meeting_row_id(meeting))
        .unwrap_or_default())
}

/// The resolutions of each of `meetings` (by row id), in one query, each meeting's in
/// order.
pub async fn resolutions_of_each<C: ConnectionTrait>(
    c: &C,
    meetings: &[MeetingName],
) -> Result<HashMap<String, Vec<Record<Resolution>>>, ApiError> {
    #[derive(Debug, FromQueryResult)]
    struct R {
        meeting_id: String,
        version: i64,
        record: String,
    }
    let mut w = Where::new();
    w.any_of(
        "meeting_id",
        meetings.iter().map(|m| meeting_row_id(m).into()).collect(),
    );
    let (sql, values) = w.select(
        "meeting_id, version, record",
        "resolutions",
        "meeting_id, id",
        ALL,
    );
    let mut out: HashMap<String, Vec<Record<Resolution>>> = HashMap::new();
    for r in R::find_by_statement(Statement::from_sql_and_values(
        c.get_database_backend(),
        sql,
        values,
    ))
    .all(c)
    .await
    .map_err(db_error)?
    {
        let (value, extra) = decode::<Resolution>(&r.record)?;
        out.entry(r.meeting_id).or_default().push(Versioned {
            version: r.version,
            value: Kept { value, extra },
        });
    }
    Ok(out)
}

/// The row id of a meeting, as [`resolutions_of_each`] keys its answer.
pub fn row_id(name: &MeetingName) -> String {
    meeting_row_id(name)
}
