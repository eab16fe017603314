//! The meeting service's tables: each resource stored whole (see
//! `mosharekat_platform::records`), its filter columns derived on every write.

use mosharekat_api::meeting::v1 as pb;
use mosharekat_persian::fold_for_search;
use mosharekat_platform::db::{db_error, from_timestamp, is_unique_violation};
use mosharekat_platform::error::ApiError;
use mosharekat_platform::records::get;
pub use mosharekat_platform::records::{Record, Where, select};
use prost::Message;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

use crate::names::{GroupName, MeetingName, MemberName, ResolutionName};

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

// Every resource is loaded by its typed name, and a child only under the working group
// its name gives: the row's group is part of the lookup, so the id of another group's
// child finds nothing, and the caller gets NOT_FOUND naming what they sent.

pub async fn group<C: ConnectionTrait>(
    c: &C,
    name: &GroupName,
) -> Result<Record<pb::WorkingGroup>, ApiError> {
    get(c, "working_groups", name.id())
        .await?
        .ok_or_else(|| ApiError::not_found("working group", name.to_string()))
}

async fn child<C: ConnectionTrait, T: Message + Default>(
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
    Ok(select(c, table, w, "id", 1).await?.into_iter().next())
}

pub async fn member<C: ConnectionTrait>(
    c: &C,
    name: &MemberName,
) -> Result<Record<pb::Member>, ApiError> {
    child(c, "members", name.group(), name.id())
        .await?
        .ok_or_else(|| ApiError::not_found("member", name.to_string()))
}

/// A meeting row: its body, and beside it the form its minutes' hash was taken over.
#[derive(Debug, FromQueryResult)]
struct MeetingRow {
    id: String,
    version: i64,
    body: Vec<u8>,
    minutes_hash_version: i32,
}

impl MeetingRow {
    fn record(self) -> Result<Record<pb::Meeting>, ApiError> {
        let mut body = pb::Meeting::decode(self.body.as_slice()).map_err(ApiError::internal)?;
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
            "SELECT id, version, body, minutes_hash_version FROM meetings WHERE {condition_and_order}"
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

pub async fn resolution<C: ConnectionTrait>(
    c: &C,
    name: &ResolutionName,
) -> Result<Record<pb::Resolution>, ApiError> {
    child(c, "resolutions", name.group(), name.id())
        .await?
        .ok_or_else(|| ApiError::not_found("resolution", name.to_string()))
}

pub async fn insert_group<C: ConnectionTrait>(
    c: &C,
    id: &str,
    g: &pb::WorkingGroup,
) -> Result<(), ApiError> {
    exec(
        c,
        "INSERT INTO working_groups (id, province_key, version, body) VALUES ($1, $2, 1, $3)",
        vec![
            id.into(),
            fold_for_search(&g.province).into(),
            g.encode_to_vec().into(),
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
) -> Result<bool, ApiError> {
    exec(
        c,
        "UPDATE working_groups SET province_key = $1, body = $2, version = version + 1 WHERE id = $3 AND version = $4",
        vec![fold_for_search(&g.province).into(), g.encode_to_vec().into(), id.into(), version.into()],
    )
    .await
    .map(|n| n == 1)
}

fn member_columns(m: &pb::Member) -> Vec<Value> {
    vec![
        last_segment(&m.institution).to_owned().into(),
        m.term_end.is_none().into(),
        m.encode_to_vec().into(),
    ]
}

pub async fn insert_member<C: ConnectionTrait>(
    c: &C,
    id: &str,
    group: &str,
    m: &pb::Member,
) -> Result<(), ApiError> {
    let mut v: Vec<Value> = vec![id.into(), group.into()];
    v.extend(member_columns(m));
    exec(
        c,
        "INSERT INTO members (id, working_group_id, institution_id, seated, body, version) VALUES ($1, $2, $3, $4, $5, 1)",
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
) -> Result<bool, ApiError> {
    let mut v = member_columns(m);
    v.extend([id.into(), version.into()]);
    exec(
        c,
        "UPDATE members SET institution_id = $1, seated = $2, body = $3, version = version + 1 WHERE id = $4 AND version = $5",
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
    select(c, "members", w, "id", u64::MAX >> 1).await
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
    select(c, "members", w, "id", u64::MAX >> 1).await
}

pub fn meeting_id(group: &str, number: i32) -> String {
    format!("{group}/{number}")
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
    exec(
        c,
        "INSERT INTO meetings (id, working_group_id, number, version, body) VALUES ($1, $2, $3, 1, $4)",
        vec![meeting_id(group, m.number).into(), group.into(), m.number.into(), m.encode_to_vec().into()],
    )
    .await
    .map(|_| ())
}

/// Saves a meeting if its version is still `version`. A `minutes_hash_version` set on it
/// is written to its column (the column, not the body, is the record of it); 0 leaves the
/// column as it is.
pub async fn save_meeting<C: ConnectionTrait>(
    c: &C,
    id: &str,
    version: i64,
    m: &pb::Meeting,
) -> Result<bool, ApiError> {
    let hash_version = (m.minutes_hash_version != 0).then_some(m.minutes_hash_version);
    let body = pb::Meeting {
        minutes_hash_version: 0,
        ..m.clone()
    };
    exec(
        c,
        "UPDATE meetings SET body = $1, minutes_hash_version = COALESCE($2, minutes_hash_version), \
         version = version + 1 WHERE id = $3 AND version = $4",
        vec![
            body.encode_to_vec().into(),
            hash_version.into(),
            id.into(),
            version.into(),
        ],
    )
    .await
    .map(|n| n == 1)
}

fn resolution_columns(r: &pb::Resolution) -> Vec<Value> {
    vec![
        r.state.into(),
        r.deadline.as_ref().and_then(from_timestamp).into(),
        r.responsible_member.clone().into(),
        r.encode_to_vec().into(),
    ]
}

pub async fn insert_resolution<C: ConnectionTrait>(
    c: &C,
    id: &str,
    group: &str,
    meeting: &str,
    r: &pb::Resolution,
) -> Result<(), ApiError> {
    let mut v: Vec<Value> = vec![id.into(), group.into(), meeting.into()];
    v.extend(resolution_columns(r));
    exec(
        c,
        "INSERT INTO resolutions (id, working_group_id, meeting_id, state, deadline_us, responsible_member, body, version) \
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
) -> Result<bool, ApiError> {
    let mut v = resolution_columns(r);
    v.extend([id.into(), version.into()]);
    exec(
        c,
        "UPDATE resolutions SET state = $1, deadline_us = $2, responsible_member = $3, body = $4, \
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
    select(c, "resolutions", w, "id", u64::MAX >> 1).await
}
