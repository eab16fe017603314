//! Resources kept whole as their encoded protobuf message in a `body` column, with the
//! columns beside it derived from the message on every write for filtering and order.
//! (The referral and meeting services keep their resources this way.)

use prost::Message;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

use crate::db::db_error;
use crate::error::ApiError;

/// A resource as stored, with the version its etag comes from.
#[derive(Debug, Clone)]
pub struct Record<T> {
    pub id: String,
    pub version: i64,
    pub body: T,
}

#[derive(Debug, FromQueryResult)]
struct BodyRow {
    id: String,
    version: i64,
    body: Vec<u8>,
}

fn decode<T: Message + Default>(row: BodyRow) -> Result<Record<T>, ApiError> {
    let body = T::decode(row.body.as_slice()).map_err(ApiError::internal)?;
    Ok(Record {
        id: row.id,
        version: row.version,
        body,
    })
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

    /// `SELECT id, version, body FROM table WHERE … ORDER BY order LIMIT n`.
    fn select(mut self, table: &str, order: &str, limit: u64) -> (String, Vec<Value>) {
        let w = if self.conds.is_empty() {
            "TRUE".into()
        } else {
            self.conds.join(" AND ")
        };
        self.values.push((limit as i64).into());
        (
            format!(
                "SELECT id, version, body FROM {table} WHERE {w} ORDER BY {order} LIMIT ${}",
                self.values.len()
            ),
            self.values,
        )
    }
}

/// The records of `table` matching `w`, in `order`, at most `limit`.
pub async fn select<C: ConnectionTrait, T: Message + Default>(
    c: &C,
    table: &str,
    w: Where,
    order: &str,
    limit: u64,
) -> Result<Vec<Record<T>>, ApiError> {
    let (sql, values) = w.select(table, order, limit);
    BodyRow::find_by_statement(Statement::from_sql_and_values(
        c.get_database_backend(),
        sql,
        values,
    ))
    .all(c)
    .await
    .map_err(db_error)?
    .into_iter()
    .map(decode)
    .collect()
}

/// The record of `table` with `id`, if any.
pub async fn get<C: ConnectionTrait, T: Message + Default>(
    c: &C,
    table: &str,
    id: &str,
) -> Result<Option<Record<T>>, ApiError> {
    let mut w = Where::new();
    w.add("id = ?", [id.into()]);
    Ok(select(c, table, w, "id", 1).await?.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut w = Where::new();
        w.add("a = ?", [1i64.into()])
            .add("b IN (?, ?)", [2i64.into(), 3i64.into()])
            .add("c IS NULL", []);
        let (sql, values) = w.select("t", "id", 10);
        assert_eq!(
            sql,
            "SELECT id, version, body FROM t WHERE a = $1 AND b IN ($2, $3) AND c IS NULL ORDER BY id LIMIT $4"
        );
        assert_eq!(values.len(), 4);
        let (sql, _) = Where::new().select("t", "id", 1);
        assert!(sql.contains("WHERE TRUE"));
    }
}
