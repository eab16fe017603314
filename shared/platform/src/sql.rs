//! Building the WHERE clauses of list queries, with numbered placeholders (`$1`, which
//! SQLite and PostgreSQL both accept) and the values bound to them, never spliced in.

use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement, Value};
use serde::de::DeserializeOwned;

use crate::db::db_error;
use crate::error::ApiError;

/// A WHERE clause being built: each condition is ANDed to the others; in a condition, `?`
/// stands for the next placeholder.
#[derive(Debug, Default)]
pub struct Where {
    conds: Vec<String>,
    values: Vec<Value>,
}

impl Where {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `cond`, its `?`s bound in order to `values`.
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

    /// `column IN (…)`: `column` is one of `values` (never true when there are none).
    pub fn any_of(&mut self, column: &str, values: Vec<Value>) -> &mut Self {
        if values.is_empty() {
            return self.add("FALSE", []);
        }
        let marks = vec!["?"; values.len()].join(", ");
        self.add(&format!("{column} IN ({marks})"), values)
    }

    /// The conditions joined (`TRUE` when there are none).
    pub fn clause(&self) -> String {
        if self.conds.is_empty() {
            "TRUE".into()
        } else {
            self.conds.join(" AND ")
        }
    }

    /// The number of the next placeholder, for a statement that binds more after these.
    pub fn next_placeholder(&self) -> usize {
        self.values.len() + 1
    }

    /// The values bound so far, in placeholder order.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }

    /// `SELECT columns FROM table WHERE … ORDER BY order LIMIT n`, and its values.
    pub fn select(
        mut self,
        columns: &str,
        table: &str,
        order: &str,
        limit: u64,
    ) -> (String, Vec<Value>) {
        let w = self.clause();
        self.values
            .push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        (
            format!(
                "SELECT {columns} FROM {table} WHERE {w} ORDER BY {order} LIMIT ${}",
                self.values.len()
            ),
            self.values,
        )
    }
}

/// The children of each of `parents` (values of the column `parent` of `table`), read as
/// one row per parent: the `elements` of its rows (columns, comma-separated) in `order`,
/// decoded into `T`, a tuple of them; a parent with no child is absent. A list reads a
/// page's children this way because each row read costs the SQLite driver a hand-off
/// between threads: a page of 50 licences with four history entries each read 250 rows.
pub async fn children_of<C: ConnectionTrait, T: DeserializeOwned>(
    c: &C,
    table: &str,
    parent: &str,
    elements: &str,
    order: &str,
    parents: Vec<Value>,
) -> Result<Vec<(String, Vec<T>)>, ApiError> {
    let mut w = Where::new();
    w.any_of(parent, parents);
    let sql = format!(
        "SELECT {parent} AS parent, {} AS children FROM {table} WHERE {} GROUP BY {parent}",
        json_rows(c.get_database_backend(), elements, order),
        w.clause()
    );
    ChildrenRow::find_by_statement(Statement::from_sql_and_values(
        c.get_database_backend(),
        sql,
        w.into_values(),
    ))
    .all(c)
    .await
    .map_err(db_error)?
    .into_iter()
    .map(|r| match serde_json::from_str(&r.children) {
        Ok(children) => Ok((r.parent, children)),
        Err(e) => Err(ApiError::internal(anyhow::anyhow!(
            "stored {table} of {} does not decode: {e}",
            r.parent
        ))),
    })
    .collect()
}

#[derive(Debug, FromQueryResult)]
struct ChildrenRow {
    parent: String,
    children: String,
}

/// An aggregate of `elements` over a group's rows in `order`: one JSON array of arrays,
/// as text.
fn json_rows(backend: DbBackend, elements: &str, order: &str) -> String {
    match backend {
        DbBackend::Postgres => {
            format!("json_agg(json_build_array({elements}) ORDER BY {order})::text")
        }
        _ => format!("json_group_array(json_array({elements}) ORDER BY {order})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both databases gather each parent's rows in order, with text that needs escaping
    /// and integers past 2^53 intact; a parent with none is absent.
    #[tokio::test]
    async fn children_come_one_row_per_parent_in_order_on_both_databases() {
        for backend in [
            crate::testing::Backend::Sqlite,
            crate::testing::Backend::Postgres,
        ] {
            let t = crate::testing::TestDb::new(backend).await.unwrap();
            let db = crate::db::Db::connect(&t.url, &crate::db::DbOptions::default())
                .await
                .unwrap();
            let c = db.conn();
            c.execute_unprepared(
                "CREATE TABLE kids (parent TEXT NOT NULL, seq BIGINT NOT NULL, note TEXT NOT NULL)",
            )
            .await
            .unwrap();
            let odd = "«ترک» \"quoted\" \\ back\nline \u{1}";
            let big = 9_007_199_254_740_993_i64;
            for (parent, seq, note) in [("b", 2, "second"), ("a", big, odd), ("b", 1, "first")] {
                c.execute_raw(Statement::from_sql_and_values(
                    c.get_database_backend(),
                    "INSERT INTO kids (parent, seq, note) VALUES ($1, $2, $3)",
                    [parent.into(), seq.into(), note.into()],
                ))
                .await
                .unwrap();
            }
            let mut got: Vec<(String, Vec<(i64, String)>)> = children_of(
                c,
                "kids",
                "parent",
                "seq, note",
                "seq",
                vec!["a".into(), "b".into(), "none".into()],
            )
            .await
            .unwrap();
            got.sort();
            assert_eq!(
                got,
                [
                    ("a".to_owned(), vec![(big, odd.to_owned())]),
                    (
                        "b".to_owned(),
                        vec![(1, "first".to_owned()), (2, "second".to_owned())]
                    ),
                ],
                "{backend:?}"
            );
        }
    }

    #[test]
    fn placeholders_are_numbered_in_order_and_values_bound_not_spliced() {
        let mut w = Where::new();
        w.add("state = ?", [3i32.into()])
            .add("name LIKE ? OR code = ?", ["x%".into(), "c'; DROP".into()])
            .any_of("id", vec!["a".into(), "b".into()]);
        assert_eq!(w.next_placeholder(), 6);
        let (sql, values) = w.select("id, version", "things", "id", 50);
        assert_eq!(
            sql,
            "SELECT id, version FROM things WHERE state = $1 AND name LIKE $2 OR code = $3 \
             AND id IN ($4, $5) ORDER BY id LIMIT $6"
        );
        assert_eq!(values.len(), 6);
        assert!(!sql.contains("DROP"));
    }

    #[test]
    fn no_condition_is_true_and_an_empty_set_matches_nothing() {
        assert_eq!(Where::new().clause(), "TRUE");
        let mut w = Where::new();
        w.any_of("id", vec![]);
        assert_eq!(w.clause(), "FALSE");
        let (_, values) = Where::new().select("id", "t", "id", u64::MAX);
        assert_eq!(values, vec![Value::from(i64::MAX)]);
    }
}
