//! Building the WHERE clauses of list queries, with numbered placeholders (`$1`, which
//! SQLite and PostgreSQL both accept) and the values bound to them, never spliced in.

use sea_orm::Value;

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

#[cfg(test)]
mod tests {
    use super::*;

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
