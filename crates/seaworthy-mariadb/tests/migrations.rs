//! `MariaDb::with_migrations` against a real server: a Flyway directory (numeric order, a
//! `DELIMITER` trigger, the undo file never run) and a goose directory (only the up sections, a
//! `StatementBegin` procedure), and a failing migration named in the start's error.

use std::path::{Path, PathBuf};

use mysql_async::prelude::Queryable;
use seaworthy::FixtureDefinition;
use seaworthy_mariadb::MariaDb;

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/migration_dirs")
        .join(name)
}

#[tokio::test]
async fn flyway_and_goose_directories_run_their_up_migrations_in_order() -> anyhow::Result<()> {
    let db = MariaDb::default()
        .with_migrations(dir("flyway"))
        .with_migrations(dir("goose"))
        .start()
        .await?;
    let mut conn = db.conn().await?;
    // V10 (the trigger, and the orders it counts) ran after V2 (the orders table); U2 (which
    // drops it) never ran.
    let totals: Vec<(i32, i32)> = conn
        .query("SELECT user_id, total FROM order_totals")
        .await?;
    assert_eq!(totals, [(1, 12)]);
    // goose: the up sections only (the down section of the second file is not SQL).
    let notes: Vec<String> = conn.query("SELECT note FROM audit ORDER BY id").await?;
    assert_eq!(notes, ["created", "second"]);
    drop(conn);

    // A failing migration names its file.
    let failing = std::env::temp_dir().join(format!("sw-mariadb-failing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&failing);
    std::fs::create_dir_all(&failing)?;
    std::fs::write(failing.join("1_ok.sql"), "CREATE TABLE ok (id INT);")?;
    std::fs::write(
        failing.join("2_broken.sql"),
        "INSERT INTO ok VALUES (1);\nSELEC broken FROM ok;\n",
    )?;
    let result = MariaDb::default().with_migrations(&failing).start().await;
    let _ = std::fs::remove_dir_all(&failing);
    let error = match result {
        Ok(_) => anyhow::bail!("a broken migration started"),
        Err(e) => seaworthy::kit::error_chain(&e),
    };
    let file = failing.join("2_broken.sql").display().to_string();
    assert!(error.contains(&file), "{error}");
    assert!(error.contains("SELEC"), "{error}");
    Ok(())
}
