//! Quoting, and the few query helpers every module uses.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

/// A quoted identifier (`` `name` ``).
pub(crate) fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// A string literal (backslashes escaped: the default `sql_mode` treats them as escapes).
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A `LIKE` pattern matching names that start with `prefix`.
pub(crate) fn like_prefix(prefix: &str) -> String {
    let escaped = prefix
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    literal(&format!("{escaped}%"))
}

/// `` `db`.`name` ``.
pub(crate) fn qualified(db: &str, name: &str) -> String {
    format!("{}.{}", ident(db), ident(name))
}

/// The first column of every row, as text.
pub(crate) async fn column(conn: &mut Conn, sql: &str) -> Result<Vec<String>, mysql_async::Error> {
    let rows: Vec<Row> = conn.query(sql).await?;
    Ok(rows
        .into_iter()
        .map(|row| text(&row, 0).unwrap_or_default())
        .collect())
}

/// A column of a row as text (`None` for NULL).
pub(crate) fn text(row: &Row, index: usize) -> Option<String> {
    match row.as_ref(index)? {
        mysql_async::Value::NULL => None,
        mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

/// A named column of a row as text.
pub(crate) fn named(row: &Row, name: &str) -> Option<String> {
    let index = row
        .columns_ref()
        .iter()
        .position(|c| c.name_str().eq_ignore_ascii_case(name))?;
    text(row, index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes() {
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(literal("it's a \\"), "'it''s a \\\\'");
        assert_eq!(like_prefix("t_iso_"), "'t\\\\_iso\\\\_%'");
    }
}
