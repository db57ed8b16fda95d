//! [`MariaDb::with_migrations`]: a migrations directory as the user's migration tool made it,
//! read by the core's [`seaworthy::kit::migrations`] and run against the fixture's database.

use std::path::PathBuf;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use seaworthy::kit::migrations::{read_migrations, Dialect, Migration};

use crate::definition::MariaDb;
use crate::error::BoxError;

impl MariaDb {
    /// Adds an init step that runs the migrations of `dir`, a migrations directory as your
    /// migration tool made it: the up part of each migration, in version order (as numbers:
    /// `2` before `10`), never a down part. The layouts are PostgreSQL's
    /// ([`seaworthy::kit::migrations`] has the table and every rule):
    ///
    /// | Tool | Files | Runs |
    /// |---|---|---|
    /// | sqlx, numbered files | `20220101000000_init.sql`, `001_users.sql` | the file |
    /// | sqlx (reversible), golang-migrate | `1_init.up.sql` + `1_init.down.sql` | `.up.sql` |
    /// | diesel | `2021-01-01-000000_users/up.sql` + `down.sql` | `up.sql` |
    /// | refinery, Flyway | `V1__init.sql`, `V1.1__x.sql`; Flyway's `R__views.sql`, undo `U1__x.sql` | `V` (refinery's `U` too), then `R` by name; never an undo |
    /// | dbmate | `20200101120000_x.sql` with `-- migrate:up` / `-- migrate:down` | the up section |
    /// | goose | `00001_x.sql` with `-- +goose Up` / `-- +goose Down` | the up section |
    ///
    /// Each file is sent as one multi-statement query (the server parses it: a
    /// `CREATE PROCEDURE … BEGIN …; END` needs no delimiter), unless it uses the `mysql`
    /// client's `DELIMITER` command, which a server does not know: such a file runs statement by
    /// statement, split as the client does. MariaDB commits DDL at once, so a migration that
    /// fails halfway keeps its earlier statements (the fixture's start fails anyway). A
    /// migration that fails names its file (and, statement by statement, its line). The
    /// directory is read when the step runs.
    ///
    /// ```no_run
    /// # use seaworthy_mariadb::MariaDb;
    /// let db = MariaDb::default().with_migrations("migrations");
    /// ```
    pub fn with_migrations(self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let name = format!("migrations {}", dir.display());
        self.with_init(name, move |mut ctx| {
            let dir = dir.clone();
            async move {
                let migrations = read_migrations(&dir)?;
                let result = run_all(&mut ctx.conn, &migrations).await;
                let _ = ctx.conn.disconnect().await;
                result
            }
        })
    }
}

async fn run_all(conn: &mut Conn, migrations: &[Migration]) -> Result<(), BoxError> {
    for migration in migrations {
        if !uses_client_delimiter(&migration.sql) {
            conn.query_drop(migration.sql.as_str())
                .await
                .map_err(|e| failed(&migration.name(), &e))?;
            continue;
        }
        for statement in migration.statements(Dialect::MySql) {
            conn.query_drop(statement.sql.as_str())
                .await
                .map_err(|e| failed(&format!("{}:{}", migration.name(), statement.line), &e))?;
        }
    }
    Ok(())
}

/// Whether `sql` has a line with the `mysql` client's `DELIMITER` command.
fn uses_client_delimiter(sql: &str) -> bool {
    sql.lines().any(|line| {
        let line = line.trim_start();
        line.len() > 10 && line[..10].eq_ignore_ascii_case("delimiter ")
    })
}

fn failed(place: &str, error: &mysql_async::Error) -> BoxError {
    format!(
        "migration {place} failed: {}",
        seaworthy::kit::error_chain(error)
    )
    .into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn delimiter_lines_are_found() {
        assert!(super::uses_client_delimiter(
            "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END//\nDELIMITER ;\n"
        ));
        assert!(!super::uses_client_delimiter(
            "CREATE TABLE delimiters (id int);"
        ));
    }
}
