//! Deferred statements: the tail INSERTs of a write (its audit record, its idempotency
//! answer, its timeline entry, its notices), which nobody reads back and no rule of the
//! change refuses, handed to the database together instead of one by one.
//!
//! Under the write turn a write's time is mostly hand-offs: each statement is a round trip
//! to PostgreSQL or a hop to SQLite's worker thread, while every other writer waits. So
//! queued INSERTs run as one execution of several statements on SQLite, and on PostgreSQL
//! (whose extended protocol takes one statement at a time) as one statement per group:
//! `WITH d1 AS (INSERT …), d2 AS (INSERT …) INSERT …`. Data-modifying `WITH`s all run on
//! one snapshot, so an INSERT that writes or reads a table written earlier in its group
//! (the next notice's `MAX(seq)`, say) starts another group.
//!
//! A statement is queued only if its form is understood: it begins `INSERT INTO table`,
//! is one statement, and numbers its parameters `$1`, `$2`, … (the suite's form), which
//! are renumbered to follow those queued before it.

use std::sync::{Mutex, PoisonError};

use sea_orm::{DbBackend, Statement, Value};

/// The most parameters one combined statement binds: under SQLite's 32 766 and
/// PostgreSQL's 65 535.
const MAX_PARAMS: usize = 30_000;

#[derive(Debug)]
struct Queued {
    stmt: Statement,
    /// The table it writes, lowercase.
    table: String,
}

/// One writer's queue of deferred statements.
#[derive(Debug, Default)]
pub(super) struct Queue(Mutex<Vec<Queued>>);

impl Queue {
    /// Queues `stmt`, or gives it back when it cannot be combined (run it now).
    pub(super) fn push(&self, stmt: Statement) -> Option<Statement> {
        let Some(table) = inserted_table(&stmt.sql) else {
            return Some(stmt);
        };
        let params = stmt.values.as_ref().map_or(0, |v| v.0.len());
        match renumber(&stmt.sql, 0) {
            Some((_, highest)) if highest <= params && params <= MAX_PARAMS => {}
            _ => return Some(stmt),
        }
        self.lock().push(Queued { stmt, table });
        None
    }

    /// Whether a query of `sql` must wait for the queue: it names a table that a queued
    /// statement writes, or it is not a plain SELECT (an `INSERT … RETURNING` may write
    /// what a queued statement reads).
    pub(super) fn blocks(&self, sql: &str) -> bool {
        let queued = self.lock();
        let select = sql
            .trim_start()
            .get(..7)
            .is_some_and(|w| w.eq_ignore_ascii_case("SELECT "));
        !queued.is_empty() && (!select || words(sql).any(|w| queued.iter().any(|q| q.table == w)))
    }

    /// Empties the queue into the fewest statements that run it, in order.
    pub(super) fn take(&self, backend: DbBackend) -> Vec<Statement> {
        let queued = std::mem::take(&mut *self.lock());
        match queued.len() {
            0 => vec![],
            1 => queued.into_iter().map(|q| q.stmt).collect(),
            _ => combine(backend, queued),
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        // A panic while holding it cannot leave the vector half-changed.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Groups `queued` into statements: on SQLite all of them in one execution (statements
/// run in order, each seeing the ones before); on PostgreSQL, data-modifying `WITH`s of
/// distinct tables that none of the group's others reads.
fn combine(backend: DbBackend, queued: Vec<Queued>) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut group: Vec<Queued> = Vec::new();
    let mut params = 0;
    for q in queued {
        let n = q.stmt.values.as_ref().map_or(0, |v| v.0.len());
        let clashes = backend != DbBackend::Sqlite
            && group
                .iter()
                .any(|g| g.table == q.table || words(&q.stmt.sql).any(|w| w == g.table));
        if !group.is_empty() && (clashes || params + n > MAX_PARAMS) {
            out.push(joined(backend, std::mem::take(&mut group)));
            params = 0;
        }
        params += n;
        group.push(q);
    }
    if !group.is_empty() {
        out.push(joined(backend, group));
    }
    out
}

/// One statement running `group` (checked by [`Queue::push`]).
fn joined(backend: DbBackend, group: Vec<Queued>) -> Statement {
    if group.len() == 1 {
        return group.into_iter().next().map(|q| q.stmt).expect("one");
    }
    let last = group.len() - 1;
    let mut sql = String::new();
    let mut values: Vec<Value> = Vec::new();
    for (i, q) in group.into_iter().enumerate() {
        let Statement {
            sql: part,
            values: part_values,
            ..
        } = q.stmt;
        let (part, _) = renumber(&part, values.len()).expect("checked when queued");
        let part = part.trim().trim_end_matches(';');
        match backend {
            // Each part ends on a line of its own: it may end in a `--` comment.
            DbBackend::Sqlite => sql.push_str(&format!("{part}\n;\n")),
            _ if i == 0 => sql.push_str(&format!("WITH d{i} AS ({part}\n)")),
            _ if i == last => sql.push_str(&format!("\n{part}")),
            _ => sql.push_str(&format!(",\nd{i} AS ({part}\n)")),
        }
        values.extend(part_values.map(|v| v.0).unwrap_or_default());
    }
    Statement::from_sql_and_values(backend, sql, values)
}

/// The SQL-significant stretches of `sql`: what is outside strings, quoted identifiers and
/// comments, as (start, end) byte ranges; `None` if one is left open.
fn code_spans(sql: &str) -> Option<Vec<(usize, usize)>> {
    let b = sql.as_bytes();
    let (mut spans, mut start, mut i) = (Vec::new(), 0, 0);
    while i < b.len() {
        let end = match (b[i], b.get(i + 1)) {
            (b'\'', _) => find(b, i + 1, b"'")?,
            (b'"', _) => find(b, i + 1, b"\"")?,
            (b'-', Some(b'-')) => find(b, i + 2, b"\n").unwrap_or(b.len()),
            (b'/', Some(b'*')) => find(b, i + 2, b"*/")?,
            _ => {
                i += 1;
                continue;
            }
        };
        spans.push((start, i));
        start = end;
        i = end;
    }
    spans.push((start, b.len()));
    Some(spans)
}

/// The index just past the first `close` at or after `from`.
fn find(b: &[u8], from: usize, close: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(close.len())
        .position(|w| w == close)
        .map(|p| from + p + close.len())
}

/// `sql` with each `$n` outside strings and comments made `$(n + by)`, and the highest
/// `n`; `None` if it has another kind of parameter (`?`, `?n`, a `$` not followed by
/// digits) or more than one statement.
fn renumber(sql: &str, by: usize) -> Option<(String, usize)> {
    let mut out = String::with_capacity(sql.len() + 16);
    let (mut highest, mut copied) = (0, 0);
    for (start, end) in code_spans(sql)? {
        // A string or comment, as it was.
        out.push_str(&sql[copied..start]);
        let mut rest = &sql[start..end];
        while let Some(at) = rest.find(['$', '?', ';']) {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            match rest.as_bytes()[at] {
                b'$' => {
                    let len = after.bytes().take_while(u8::is_ascii_digit).count();
                    let n: usize = after[..len].parse().ok().filter(|&n| n > 0)?;
                    highest = highest.max(n);
                    out.push_str(&format!("${}", n + by));
                    rest = &after[len..];
                }
                b';' if sql[end - after.len()..].trim().is_empty() => {
                    out.push(';');
                    rest = after;
                }
                _ => return None,
            }
        }
        out.push_str(rest);
        copied = end;
    }
    out.push_str(&sql[copied..]);
    Some((out, highest))
}

/// The table an `INSERT INTO table …` writes, lowercase, unquoted.
fn inserted_table(sql: &str) -> Option<String> {
    let mut words = sql.split_ascii_whitespace();
    let (insert, into, target) = (words.next()?, words.next()?, words.next()?);
    if !insert.eq_ignore_ascii_case("INSERT") || !into.eq_ignore_ascii_case("INTO") {
        return None;
    }
    let table = target.split('(').next()?.trim_matches('"');
    let ok = !table.is_empty()
        && table
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then(|| table.to_ascii_lowercase())
}

/// The words of `sql` (runs of letters, digits and `_`), lowercase.
fn words(sql: &str) -> impl Iterator<Item = String> + '_ {
    sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(backend: DbBackend, sql: &str, n: i64) -> Statement {
        Statement::from_sql_and_values(backend, sql, (1..=n).map(Value::from))
    }

    fn values(s: &Statement) -> Vec<Value> {
        s.values.clone().map(|v| v.0).unwrap_or_default()
    }

    #[test]
    fn parameters_are_renumbered_outside_strings_and_comments() {
        assert_eq!(
            renumber("INSERT INTO t (a, b) VALUES ($1, $2)", 3),
            Some(("INSERT INTO t (a, b) VALUES ($4, $5)".into(), 2))
        );
        assert_eq!(
            renumber(
                "INSERT INTO t VALUES ($1, '$1 it''s', \"$2\", $1) -- $3\n/* $4 */ RETURNING $2",
                10
            ),
            Some((
                "INSERT INTO t VALUES ($11, '$1 it''s', \"$2\", $11) -- $3\n/* $4 */ RETURNING $12"
                    .into(),
                2
            ))
        );
        // Other parameter forms, and two statements, are not understood.
        assert_eq!(renumber("INSERT INTO t VALUES (?)", 0), None);
        assert_eq!(renumber("INSERT INTO t VALUES (?1)", 0), None);
        assert_eq!(
            renumber("INSERT INTO t VALUES ($1::bigint)", 1),
            Some(("INSERT INTO t VALUES ($2::bigint)".into(), 1))
        );
        assert_eq!(renumber("INSERT INTO t VALUES ($a)", 0), None);
        assert_eq!(
            renumber("INSERT INTO t VALUES ($1); DELETE FROM t", 0),
            None
        );
        assert_eq!(renumber("INSERT INTO t VALUES ('open)", 0), None);
        assert!(renumber("INSERT INTO t VALUES ($1);  ", 0).is_some());
    }

    #[test]
    fn only_single_inserts_in_the_suites_form_are_queued() {
        let q = Queue::default();
        let b = DbBackend::Sqlite;
        assert!(
            q.push(stmt(b, "INSERT INTO audit_log VALUES ($1)", 1))
                .is_none()
        );
        assert!(
            q.push(stmt(b, "insert into \"Timeline\"(a) values ($1)", 1))
                .is_none()
        );
        for refused in [
            stmt(b, "UPDATE t SET a = $1", 1),
            stmt(b, "DELETE FROM t WHERE a = $1", 1),
            stmt(b, "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", 0),
            stmt(b, "INSERT INTO t VALUES (?)", 1),
            // A parameter with no value.
            stmt(b, "INSERT INTO t VALUES ($1, $2)", 1),
        ] {
            assert!(q.push(refused).is_some());
        }
        assert!(q.blocks("SELECT * FROM timeline WHERE x = 1"));
        assert!(q.blocks("select seq from AUDIT_LOG"));
        assert!(q.blocks("INSERT INTO other VALUES (1) RETURNING seq"));
        assert!(!q.blocks("SELECT * FROM timelines"));
        assert!(!q.blocks("SELECT * FROM audit_log_archive"));
        assert_eq!(q.take(b).len(), 1);
        assert!(!q.blocks("SELECT * FROM timeline"));
        assert!(q.take(b).is_empty());
    }

    #[test]
    fn sqlite_runs_the_queue_as_one_execution() {
        let b = DbBackend::Sqlite;
        let q = Queue::default();
        q.push(stmt(b, "INSERT INTO a VALUES ($1, $2)", 2));
        q.push(stmt(b, "INSERT INTO a VALUES ($1)", 1));
        q.push(stmt(b, "INSERT INTO b SELECT MAX(x) + $1 FROM a", 1));
        let out = q.take(b);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].sql,
            "INSERT INTO a VALUES ($1, $2)\n;\nINSERT INTO a VALUES ($3)\n;\n\
             INSERT INTO b SELECT MAX(x) + $4 FROM a\n;\n"
        );
        assert_eq!(values(&out[0]), [1i64, 2, 1, 1].map(Value::from));
    }

    #[test]
    fn postgres_groups_inserts_of_distinct_unread_tables() {
        let b = DbBackend::Postgres;
        let q = Queue::default();
        q.push(stmt(b, "INSERT INTO idempotency VALUES ($1)", 1));
        q.push(stmt(b, "INSERT INTO audit_log VALUES ($1, $2)", 2));
        q.push(stmt(b, "INSERT INTO notification VALUES ($1)", 1));
        // Reads what the group wrote: must see it, so it starts the next group.
        q.push(stmt(
            b,
            "INSERT INTO notification SELECT MAX(seq) + $1 FROM notification",
            1,
        ));
        q.push(stmt(b, "INSERT INTO timeline VALUES ($1)", 1));
        let out = q.take(b);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].sql,
            "WITH d0 AS (INSERT INTO idempotency VALUES ($1)\n),\n\
             d1 AS (INSERT INTO audit_log VALUES ($2, $3)\n)\n\
             INSERT INTO notification VALUES ($4)"
        );
        assert_eq!(values(&out[0]), [1i64, 1, 2, 1].map(Value::from));
        assert_eq!(
            out[1].sql,
            "WITH d0 AS (INSERT INTO notification SELECT MAX(seq) + $1 FROM notification\n)\n\
             INSERT INTO timeline VALUES ($2)"
        );
    }

    #[test]
    fn a_group_stays_under_the_parameter_limit() {
        let b = DbBackend::Sqlite;
        let q = Queue::default();
        let sql = format!(
            "INSERT INTO t VALUES ({})",
            (1..=20_000)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        q.push(stmt(b, &sql, 20_000));
        q.push(stmt(b, &sql, 20_000));
        let out = q.take(b);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|s| values(s).len() == 20_000));
    }
}
