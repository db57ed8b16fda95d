//! The baseline: the state every `clean()` returns to and every isolated database starts from.
//!
//! It is built once per container (the init steps run against the fixture's database) and kept
//! in the server, in the database `<db>_baseline`, so every process that attaches to a container
//! shared per run finds it:
//!
//! * a shadow copy of every table of the database (same columns, rows as at the baseline), and
//!   of the server's privilege tables (`mysql.global_priv`, `mysql.db`...: users, passwords,
//!   grants, roles);
//! * the stored procedure `seaworthy_clean`, generated from the baseline, which a `clean()`
//!   calls in one round trip (see [`clean_procedure`]);
//! * the table `seaworthy_meta`, a JSON record ([`Meta`]) of what the shadow copies cannot say:
//!   each object's `SHOW CREATE` statement, AUTO_INCREMENT counters, the other databases;
//!   written last, so a baseline without it is an incomplete one and is rebuilt;
//! * the isolation pool's bookkeeping (`seaworthy_pool`, `seaworthy_checkout`).

use std::fmt::Write as _;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use serde::{Deserialize, Serialize};

use crate::connect;
use crate::definition::{InitContext, InitStep, MariaDb, SYSTEM_DATABASES};
use crate::error::{Error, Result};
use crate::sql::{column, ident, like_prefix, literal, named, qualified, text};

/// Bumped when the record's meaning changes: a baseline with another format is rebuilt.
const FORMAT: u32 = 4;
/// The server's privilege tables: shadowed, compared and restored like the data.
pub(crate) const PRIVILEGE_TABLES: &[&str] = &[
    "global_priv",
    "db",
    "tables_priv",
    "columns_priv",
    "procs_priv",
    "proxies_priv",
    "roles_mapping",
];
/// How long a process waits for another one building the baseline of the same container.
const BASELINE_LOCK_SECONDS: u32 = 300;

/// The names the fixture derives from its database's.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) database: String,
    pub(crate) baseline: String,
    pub(crate) iso_prefix: String,
}

impl Names {
    pub(crate) fn new(database: &str) -> Names {
        Names {
            database: database.to_string(),
            baseline: format!("{database}_baseline"),
            iso_prefix: format!("{database}_iso_"),
        }
    }

    /// Whether `name` is one of the databases Seaworthy manages for this fixture.
    pub(crate) fn is_internal(&self, name: &str) -> bool {
        name == self.baseline || name.starts_with(&self.iso_prefix)
    }
}

/// One table of the baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TableMeta {
    pub(crate) name: String,
    /// `SHOW CREATE TABLE`, without its `AUTO_INCREMENT=` option.
    pub(crate) create_sql: String,
    /// The columns a row is copied through (generated columns left out), quoted, comma-separated.
    pub(crate) columns: String,
    /// The AUTO_INCREMENT counter, for a table that has one.
    pub(crate) auto_increment: Option<u64>,
}

/// An object of the baseline other than a table: a view, sequence, trigger, routine or event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ObjectMeta {
    /// `VIEW`, `SEQUENCE`, `TRIGGER`, `PROCEDURE`, `FUNCTION` or `EVENT`.
    pub(crate) kind: String,
    pub(crate) name: String,
    /// Its `SHOW CREATE` statement.
    pub(crate) create_sql: String,
}

/// What `seaworthy_meta` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub(crate) format: u32,
    pub(crate) tables: Vec<TableMeta>,
    pub(crate) objects: Vec<ObjectMeta>,
    /// The databases of the baseline besides the fixture's own, Seaworthy's and the system's.
    pub(crate) databases: Vec<String>,
    /// The schema digest (see [`schema_digest_sql`]).
    pub(crate) schema_digest: String,
}

impl Meta {
    /// The order objects are created in: what others depend on first.
    fn creation_rank(kind: &str) -> u8 {
        match kind {
            "SEQUENCE" => 0,
            "VIEW" => 1,
            "FUNCTION" => 2,
            "PROCEDURE" => 3,
            "TRIGGER" => 4,
            _ => 5,
        }
    }

    /// Statements that create the baseline's tables (empty), in `target`, with their counters.
    pub(crate) fn create_table_sql(&self, table: &TableMeta) -> String {
        match table.auto_increment {
            Some(n) => format!("{} AUTO_INCREMENT={n}", table.create_sql),
            None => table.create_sql.clone(),
        }
    }

    /// Statements that build a copy of the whole baseline in database `target` (which must
    /// exist): tables, rows, then the other objects. Runs as one batch.
    pub(crate) fn clone_sql(&self, names: &Names, target: &str) -> String {
        let mut sql = format!("USE {};\nSET foreign_key_checks = 0;\n", ident(target));
        for table in &self.tables {
            let _ = writeln!(sql, "{};", self.create_table_sql(table));
            let _ = writeln!(
                sql,
                "INSERT INTO {} ({cols}) SELECT {cols} FROM {};",
                qualified(target, &table.name),
                qualified(&names.baseline, &table.name),
                cols = table.columns
            );
        }
        for object in self.objects_in_order() {
            let _ = writeln!(sql, "{};", object.create_sql_in(&names.database, target));
        }
        let _ = writeln!(
            sql,
            "SET foreign_key_checks = 1;\nUSE {};",
            ident(&names.baseline)
        );
        sql
    }

    pub(crate) fn objects_in_order(&self) -> Vec<&ObjectMeta> {
        let mut objects: Vec<&ObjectMeta> = self.objects.iter().collect();
        objects.sort_by_key(|o| Meta::creation_rank(&o.kind));
        objects
    }
}

impl ObjectMeta {
    /// The create statement for database `target` (a view names its tables with their
    /// database: those of the fixture's database are renamed).
    pub(crate) fn create_sql_in(&self, database: &str, target: &str) -> String {
        if self.kind == "VIEW" && database != target {
            self.create_sql.replace(
                &format!("{}.", ident(database)),
                &format!("{}.", ident(target)),
            )
        } else {
            self.create_sql.clone()
        }
    }
}

/// Removes the ` AUTO_INCREMENT=n` table option from a `SHOW CREATE TABLE` statement.
pub(crate) fn without_counter(create: &str) -> String {
    const OPTION: &str = " AUTO_INCREMENT=";
    match create.find(OPTION) {
        Some(start) => {
            let rest = &create[start + OPTION.len()..];
            let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
            format!("{}{}", &create[..start], &rest[digits..])
        }
        None => create.to_string(),
    }
}

/// One query whose single value digests the schema of `database`: its tables and their columns,
/// indexes and constraints, views, triggers, routines and events.
///
/// Every `information_schema` table is filtered on the column the server looks tables up by
/// (`TABLE_SCHEMA`, `EVENT_OBJECT_SCHEMA`): filtered on `CONSTRAINT_SCHEMA` or `TRIGGER_SCHEMA`
/// alone, the server opens every table of every database (the baseline's shadow copies and the
/// isolation pool's clones too) — 10 ms of a 20-table clean.
pub(crate) fn schema_digest_sql(database: &str) -> String {
    let db = literal(database);
    format!(
        "SELECT MD5(CONCAT_WS('|', \
         IFNULL((SELECT GROUP_CONCAT(CONCAT_WS(',', TABLE_NAME, TABLE_TYPE, IFNULL(ENGINE, '')) ORDER BY TABLE_NAME SEPARATOR ';') FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db}), ''), \
         IFNULL((SELECT GROUP_CONCAT(CONCAT_WS(',', TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, IFNULL(COLUMN_DEFAULT, '~'), EXTRA, IFNULL(COLLATION_NAME, '')) ORDER BY TABLE_NAME, ORDINAL_POSITION SEPARATOR ';') FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {db}), ''), \
         IFNULL((SELECT GROUP_CONCAT(CONCAT_WS(',', TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, IFNULL(COLUMN_NAME, ''), NON_UNIQUE) ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX SEPARATOR ';') FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = {db}), ''), \
         IFNULL((SELECT GROUP_CONCAT(CONCAT_WS(',', TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE) ORDER BY TABLE_NAME, CONSTRAINT_NAME SEPARATOR ';') FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = {db} AND TABLE_SCHEMA = {db}), ''), \
         IFNULL((SELECT GROUP_CONCAT(CONCAT_WS(',', TRIGGER_NAME, MD5(ACTION_STATEMENT)) ORDER BY TRIGGER_NAME SEPARATOR ';') FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {db} AND EVENT_OBJECT_SCHEMA = {db}), ''), \
         IFNULL((SELECT GROUP_CONCAT(CONCAT_WS(',', ROUTINE_TYPE, ROUTINE_NAME, MD5(IFNULL(ROUTINE_DEFINITION, ''))) ORDER BY ROUTINE_TYPE, ROUTINE_NAME SEPARATOR ';') FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {db}), ''), \
         IFNULL((SELECT GROUP_CONCAT(CONCAT_WS(',', TABLE_NAME, MD5(VIEW_DEFINITION)) ORDER BY TABLE_NAME SEPARATOR ';') FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {db}), ''), \
         IFNULL((SELECT GROUP_CONCAT(EVENT_NAME ORDER BY EVENT_NAME SEPARATOR ';') FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {db}), ''), \
         (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {db})))"
    )
}

/// A table's content digest: row count, and two aggregates of per-row hashes (the sum of each
/// row's CRC32, the xor of the CRC32 of its bytes reversed, which is not a function of the
/// first), as `SELECT ... INTO` targets `v_n, v_s, v_x` (or plain columns when `into` is false).
/// A row is its columns' values and a NULL marker per column. Two CRC32s cost half what an MD5
/// per row did (3.5 against 6.5 ms for 20 tables of 100 rows).
fn checksum_sql(db: &str, table: &str, all_columns: &[String], into: bool) -> String {
    let values = all_columns.join(", ");
    let nulls = all_columns
        .iter()
        .map(|c| format!("ISNULL({c})"))
        .collect::<Vec<_>>()
        .join(", ");
    let row = if all_columns.is_empty() {
        "''".to_string()
    } else {
        format!("CONCAT_WS(0x1f, {values}, CONCAT({nulls}))")
    };
    format!(
        "SELECT CAST(COUNT(*) AS DECIMAL(65,0)), CAST(IFNULL(SUM(CRC32({row})), 0) AS DECIMAL(65,0)), \
         CAST(IFNULL(BIT_XOR(CRC32(REVERSE({row}))), 0) AS DECIMAL(65,0)){} FROM {}",
        if into { " INTO v_n, v_s, v_x" } else { "" },
        qualified(db, table)
    )
}

/// A table whose content the clean procedure compares and restores.
struct Watched {
    /// Where it lives (`db` or `mysql`).
    schema: String,
    name: String,
    /// Its shadow copy in the baseline database.
    shadow: String,
    /// Copy-through columns.
    columns: String,
    checksum: [String; 3],
    all_columns: Vec<String>,
}

/// Makes sure the baseline exists (building it from the init steps if this is the first process
/// to attach to a fresh container) and returns its record. `conn` has no default database.
pub(crate) async fn ensure(
    conn: &mut Conn,
    def: &MariaDb,
    names: &Names,
    fixture: &str,
    host: &str,
    port: u16,
) -> Result<Meta> {
    let lock = literal(&format!("seaworthy-baseline:{}", names.database));
    let got: Option<Option<i64>> = conn
        .query_first(format!("SELECT GET_LOCK({lock}, {BASELINE_LOCK_SECONDS})"))
        .await
        .map_err(|e| Error::query(fixture, "take the baseline lock", e))?;
    if got.flatten() != Some(1) {
        return Err(Error::fixture(
            fixture,
            format!("another process kept the baseline lock for {BASELINE_LOCK_SECONDS} s"),
        ));
    }
    let result = ensure_locked(conn, def, names, fixture, host, port).await;
    let unlocked = conn.query_drop(format!("DO RELEASE_LOCK({lock})")).await;
    let meta = result?;
    unlocked.map_err(|e| Error::query(fixture, "release the baseline lock", e))?;
    Ok(meta)
}

async fn ensure_locked(
    conn: &mut Conn,
    def: &MariaDb,
    names: &Names,
    fixture: &str,
    host: &str,
    port: u16,
) -> Result<Meta> {
    let existing: Result<Option<String>, _> = conn
        .query_first(format!(
            "SELECT v FROM {} WHERE k = 'meta'",
            qualified(&names.baseline, "seaworthy_meta")
        ))
        .await;
    match existing {
        Ok(Some(json)) => {
            if let Ok(meta) = serde_json::from_str::<Meta>(&json) {
                if meta.format == FORMAT {
                    return Ok(meta);
                }
            }
            tracing::info!(baseline = %names.baseline, "rebuilding a baseline of another format");
        }
        Ok(None) => {}
        // No baseline database (1049) or no record table (1146): none yet.
        Err(mysql_async::Error::Server(e)) if e.code == 1049 || e.code == 1146 => {}
        Err(e) => return Err(Error::query(fixture, "look for the baseline", e)),
    }
    let exists: Option<String> = conn
        .query_first(format!(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
            literal(&names.baseline)
        ))
        .await
        .map_err(|e| Error::query(fixture, "look for the baseline database", e))?;
    if exists.is_some() {
        // Left half-built by a process that died: the init steps ran already, the rows in the
        // database are the baseline's. Record it again.
        conn.query_drop(format!("DROP DATABASE {}", ident(&names.baseline)))
            .await
            .map_err(|e| Error::query(fixture, "drop an incomplete baseline", e))?;
    } else {
        run_init(def, names, fixture, host, port).await?;
    }
    let started = std::time::Instant::now();
    let meta = record(conn, names, fixture).await?;
    tracing::debug!(fixture, elapsed = ?started.elapsed(), tables = meta.tables.len(), "baseline recorded");
    Ok(meta)
}

/// Runs the init steps against the fixture's database.
async fn run_init(
    def: &MariaDb,
    names: &Names,
    fixture: &str,
    host: &str,
    port: u16,
) -> Result<()> {
    let opts = connect::opts(host, port, "root", &def.root_password, &names.database);
    let connection = seaworthy::ConnectionInfo::new("mysql", host, port)
        .with_credentials("root", Some(def.root_password.clone()))
        .with_path(&names.database);
    for (i, step) in def.init.iter().enumerate() {
        let mut conn = connect::connect(&opts).await.map_err(|e| {
            Error::query(
                fixture,
                format!("connect for init step {}", step.name(i)),
                e,
            )
        })?;
        match step {
            InitStep::Sql(sql) => {
                let sql = sql.clone();
                seaworthy::runtime::run(async move {
                    let r = conn.query_drop(sql).await;
                    let _ = conn.disconnect().await;
                    r
                })
                .await
                .map_err(|e| Error::query(fixture, format!("init step {}", step.name(i)), e))?;
            }
            InitStep::Closure { name, run } => {
                let ctx = InitContext {
                    conn,
                    connection: connection.clone(),
                };
                run(ctx).await.map_err(|source| Error::Init {
                    fixture: fixture.to_string(),
                    step: name.clone(),
                    source,
                })?;
            }
        }
    }
    Ok(())
}

/// The rows of a `SHOW CREATE ...`: the named column of its only row.
async fn show_create(
    conn: &mut Conn,
    sql: &str,
    column_name: &str,
) -> Result<String, mysql_async::Error> {
    let row: Option<Row> = conn.query_first(sql).await?;
    Ok(row.and_then(|r| named(&r, column_name)).unwrap_or_default())
}

/// The objects of `kind` (`TRIGGER`, `EVENT`) of `database` that the query `names` lists, each
/// with its `SHOW CREATE` statement (in the column `statement` of its result).
async fn named_objects(
    conn: &mut Conn,
    database: &str,
    kind: &str,
    names: &str,
    statement: &str,
) -> Result<Vec<ObjectMeta>, mysql_async::Error> {
    let mut objects = Vec::new();
    for name in column(conn, names).await? {
        let sql = format!("SHOW CREATE {kind} {}", qualified(database, &name));
        objects.push(ObjectMeta {
            kind: kind.into(),
            create_sql: show_create(conn, &sql, statement).await?,
            name,
        });
    }
    Ok(objects)
}

/// Every object of `database` as the baseline records it.
pub(crate) async fn read_objects(
    conn: &mut Conn,
    database: &str,
) -> Result<(Vec<TableMeta>, Vec<ObjectMeta>), mysql_async::Error> {
    let db = literal(database);
    let rows: Vec<Row> = conn
        .query(format!(
            "SELECT TABLE_NAME, TABLE_TYPE, AUTO_INCREMENT FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = {db} ORDER BY TABLE_NAME"
        ))
        .await?;
    let mut tables = Vec::new();
    let mut objects = Vec::new();
    for row in rows {
        let name = text(&row, 0).unwrap_or_default();
        let kind = text(&row, 1).unwrap_or_default();
        let q = qualified(database, &name);
        match kind.as_str() {
            "VIEW" => objects.push(ObjectMeta {
                kind: "VIEW".into(),
                create_sql: show_create(conn, &format!("SHOW CREATE VIEW {q}"), "Create View")
                    .await?,
                name,
            }),
            "SEQUENCE" => objects.push(ObjectMeta {
                kind: "SEQUENCE".into(),
                create_sql: show_create(conn, &format!("SHOW CREATE SEQUENCE {q}"), "Create Table")
                    .await?,
                name,
            }),
            _ => {
                let create =
                    show_create(conn, &format!("SHOW CREATE TABLE {q}"), "Create Table").await?;
                let columns = column(
                    conn,
                    &format!(
                        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {db} \
                         AND TABLE_NAME = {} AND IS_GENERATED = 'NEVER' ORDER BY ORDINAL_POSITION",
                        literal(&name)
                    ),
                )
                .await?;
                let auto_increment = text(&row, 2).and_then(|v| v.parse().ok());
                tables.push(TableMeta {
                    create_sql: without_counter(&create),
                    columns: columns
                        .iter()
                        .map(|c| ident(c))
                        .collect::<Vec<_>>()
                        .join(", "),
                    auto_increment,
                    name,
                });
            }
        }
    }
    let triggers = format!("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {db} ORDER BY ACTION_ORDER");
    let statement = "SQL Original Statement";
    objects.extend(named_objects(conn, database, "TRIGGER", &triggers, statement).await?);
    let routines: Vec<Row> = conn
        .query(format!(
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {db} ORDER BY ROUTINE_NAME"
        ))
        .await?;
    for row in routines {
        let kind = text(&row, 0).unwrap_or_default();
        let name = text(&row, 1).unwrap_or_default();
        let column_name = if kind == "FUNCTION" {
            "Create Function"
        } else {
            "Create Procedure"
        };
        let sql = format!("SHOW CREATE {kind} {}", qualified(database, &name));
        objects.push(ObjectMeta {
            create_sql: show_create(conn, &sql, column_name).await?,
            kind,
            name,
        });
    }
    let events = format!("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {db} ORDER BY EVENT_NAME");
    objects.extend(named_objects(conn, database, "EVENT", &events, "Create Event").await?);
    Ok((tables, objects))
}

/// Every column of a table, quoted, in order (generated ones included: they are part of what a
/// row holds).
async fn all_columns(
    conn: &mut Conn,
    schema: &str,
    table: &str,
) -> Result<Vec<String>, mysql_async::Error> {
    Ok(column(
        conn,
        &format!(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
            literal(schema),
            literal(table)
        ),
    )
    .await?
    .iter()
    .map(|c| ident(c))
    .collect())
}

/// Records the baseline: shadow copies, the clean procedure, the pool's tables, then the record.
async fn record(conn: &mut Conn, names: &Names, fixture: &str) -> Result<Meta> {
    let q = |e| Error::query(fixture, "record the baseline", e);
    let (tables, objects) = read_objects(conn, &names.database).await.map_err(q)?;
    conn.query_drop("SET SESSION group_concat_max_len = 4294967295")
        .await
        .map_err(q)?;
    let digest: Option<String> = conn
        .query_first(schema_digest_sql(&names.database))
        .await
        .map_err(q)?;
    let databases: Vec<String> = column(
        conn,
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
    )
    .await
    .map_err(q)?
    .into_iter()
    .filter(|d| {
        *d != names.database
            && !names.is_internal(d)
            && !SYSTEM_DATABASES.contains(&d.to_ascii_lowercase().as_str())
    })
    .collect();
    let bl = &names.baseline;
    let mut sql = format!("CREATE DATABASE {};\n", ident(bl));
    let mut watched = Vec::new();
    for table in &tables {
        let _ = writeln!(
            sql,
            "CREATE TABLE {} LIKE {};\nINSERT INTO {} ({cols}) SELECT {cols} FROM {};",
            qualified(bl, &table.name),
            qualified(&names.database, &table.name),
            qualified(bl, &table.name),
            qualified(&names.database, &table.name),
            cols = table.columns
        );
        watched.push((
            names.database.clone(),
            table.name.clone(),
            table.name.clone(),
            table.columns.clone(),
        ));
    }
    for t in PRIVILEGE_TABLES {
        let shadow = format!("seaworthy_priv_{t}");
        let _ = writeln!(
            sql,
            "CREATE TABLE {} LIKE {};\nINSERT INTO {} SELECT * FROM {};",
            qualified(bl, &shadow),
            qualified("mysql", t),
            qualified(bl, &shadow),
            qualified("mysql", t)
        );
        let cols = all_columns(conn, "mysql", t).await.map_err(q)?.join(", ");
        watched.push(("mysql".to_string(), t.to_string(), shadow, cols));
    }
    let _ = writeln!(
        sql,
        "CREATE TABLE {} (name VARCHAR(64) PRIMARY KEY) ENGINE=InnoDB;\n\
         CREATE TABLE {} (name VARCHAR(64) PRIMARY KEY, owner VARCHAR(64) NOT NULL) ENGINE=InnoDB;\n\
         CREATE TABLE {} (k VARCHAR(64) PRIMARY KEY, v LONGTEXT NOT NULL) ENGINE=InnoDB;",
        qualified(bl, "seaworthy_pool"),
        qualified(bl, "seaworthy_checkout"),
        qualified(bl, "seaworthy_meta"),
    );
    conn.query_drop(sql)
        .await
        .map_err(|e| Error::query(fixture, "copy the baseline", e))?;
    let mut checked = Vec::new();
    for (schema, name, shadow, columns) in watched {
        let all = all_columns(conn, &schema, &name).await.map_err(q)?;
        let row: Option<Row> = conn
            .query_first(checksum_sql(&schema, &name, &all, false))
            .await
            .map_err(q)?;
        let row = row.ok_or_else(|| Error::fixture(fixture, "a checksum query returned no row"))?;
        let checksum = [0, 1, 2].map(|i| text(&row, i).unwrap_or_else(|| "0".into()));
        checked.push(Watched {
            schema,
            name,
            shadow,
            columns,
            checksum,
            all_columns: all,
        });
    }
    let mut sequences = Vec::new();
    for object in objects.iter().filter(|o| o.kind == "SEQUENCE") {
        let next: Option<String> = conn
            .query_first(format!(
                "SELECT CAST(next_not_cached_value AS CHAR) FROM {}",
                qualified(&names.database, &object.name)
            ))
            .await
            .map_err(q)?;
        sequences.push((object.name.clone(), next.unwrap_or_else(|| "1".into())));
    }
    let meta = Meta {
        format: FORMAT,
        tables,
        objects,
        databases,
        schema_digest: digest.unwrap_or_default(),
    };
    let procedures = [
        clean_procedure(&meta, names, &checked, &sequences),
        checkout_procedure(names),
    ];
    for p in procedures {
        conn.query_drop(p)
            .await
            .map_err(|e| Error::query(fixture, "create the clean procedure", e))?;
    }
    let json = serde_json::to_string(&meta)
        .map_err(|e| Error::fixture(fixture, format!("cannot encode the baseline record: {e}")))?;
    conn.query_drop(format!(
        "INSERT INTO {} (k, v) VALUES ('meta', {})",
        qualified(bl, "seaworthy_meta"),
        literal(&json)
    ))
    .await
    .map_err(|e| Error::query(fixture, "write the baseline record", e))?;
    Ok(meta)
}

/// The clean procedure, `CALL <db>_baseline.seaworthy_clean()`. One round trip:
///
/// 1. ends the other sessions of the database (and those with an open transaction outside
///    Seaworthy's own databases), so a transaction a test left open never blocks the clean;
/// 2. compares the schema digest with the baseline's, and answers `schema` when it differs
///    (the fixture then restores the objects, and calls it again);
/// 3. compares each table's row count and row hashes with the baseline's, and restores the
///    tables that differ from their shadow copies (foreign key checks off; again, up to three
///    passes, when a trigger of a restored table changed another one);
/// 4. resets AUTO_INCREMENT counters and sequences that moved;
/// 5. drops the databases created after the baseline, and restores the privilege tables (users,
///    passwords, grants, roles) when they differ, with `FLUSH PRIVILEGES`.
///
/// It answers one row: `ok`, the number of tables restored, and whether users or databases were.
fn clean_procedure(
    meta: &Meta,
    names: &Names,
    watched: &[Watched],
    sequences: &[(String, String)],
) -> String {
    let db = &names.database;
    let bl = &names.baseline;
    let mut kept: Vec<String> = SYSTEM_DATABASES.iter().map(|d| literal(d)).collect();
    kept.push(literal(db));
    kept.push(literal(bl));
    kept.extend(meta.databases.iter().map(|d| literal(d)));
    let kept = kept.join(", ");
    let iso = like_prefix(&names.iso_prefix);
    let mut p = format!(
        "CREATE PROCEDURE {}() SQL SECURITY INVOKER\nseaworthy: BEGIN\n\
         DECLARE v_n, v_s, v_x, v_a DECIMAL(65,0);\n\
         DECLARE v_digest VARCHAR(64);\n\
         DECLARE v_restored, v_pass, v_round, v_global INT DEFAULT 0;\n\
         DECLARE CONTINUE HANDLER FOR 1094 BEGIN END;\n\
         SET SESSION group_concat_max_len = 4294967295;\n\
         FOR k IN (SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() \
           AND COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Killed') AND USER NOT IN ('system user', 'event_scheduler') \
           AND (DB = {db_l} OR (DB IS NOT NULL AND DB NOT IN ({kept}) AND DB NOT LIKE {iso}) \
             OR (ID IN (SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX) \
                 AND (DB IS NULL OR (DB <> {bl_l} AND DB NOT LIKE {iso}))))) DO\n\
           KILL CONNECTION k.ID;\n\
         END FOR;\n\
         {digest_sql} INTO v_digest;\n\
         IF v_digest IS NULL OR v_digest <> {expected} THEN SELECT 'schema', 0, 0; LEAVE seaworthy; END IF;\n\
         SET foreign_key_checks = 0;\n\
         REPEAT\n SET v_round = 0;\n",
        qualified(bl, "seaworthy_clean"),
        db_l = literal(db),
        bl_l = literal(bl),
        digest_sql = schema_digest_sql(db),
        expected = literal(&meta.schema_digest),
    );
    let mut privileges = String::new();
    for w in watched {
        let target = qualified(&w.schema, &w.name);
        let check = checksum_sql(&w.schema, &w.name, &w.all_columns, true);
        let differs = format!(
            "v_n <> {} OR v_s <> {} OR v_x <> {}",
            w.checksum[0], w.checksum[1], w.checksum[2]
        );
        if w.schema == "mysql" {
            let _ = writeln!(
                privileges,
                "{check};\nIF {differs} THEN DELETE FROM {target}; INSERT INTO {target} SELECT * FROM {shadow}; SET v_global = 1; END IF;",
                shadow = qualified(bl, &w.shadow)
            );
        } else {
            let _ = writeln!(
                p,
                " {check};\n IF {differs} THEN DELETE FROM {target}; INSERT INTO {target} ({cols}) SELECT {cols} FROM {shadow}; SET v_round = v_round + 1; END IF;",
                cols = w.columns,
                shadow = qualified(bl, &w.shadow)
            );
        }
    }
    // Restoring a table can change another one only through a trigger (foreign key actions are
    // off): without triggers, one pass is enough.
    let passes = if meta.objects.iter().any(|o| o.kind == "TRIGGER") {
        3
    } else {
        1
    };
    let _ = writeln!(
        p,
        " SET v_restored = v_restored + v_round, v_pass = v_pass + 1;\nUNTIL v_round = 0 OR v_pass >= {passes} END REPEAT;"
    );
    // AUTO_INCREMENT counters: one query lists those that moved, and only those are reset.
    let counters: Vec<String> = meta
        .tables
        .iter()
        .filter_map(|t| {
            t.auto_increment
                .map(|n| format!("WHEN {} THEN {n}", literal(&t.name)))
        })
        .collect();
    if !counters.is_empty() {
        let _ = writeln!(
            p,
            "FOR a IN (SELECT n, v FROM (SELECT TABLE_NAME AS n, AUTO_INCREMENT AS c, CASE CAST(TABLE_NAME AS BINARY) {} END AS v \
               FROM information_schema.TABLES WHERE TABLE_SCHEMA = {}) seaworthy_counters WHERE v IS NOT NULL AND NOT (c <=> v)) DO\n\
               SET @seaworthy_sql = CONCAT({}, '`', REPLACE(a.n, '`', '``'), '` AUTO_INCREMENT = ', a.v);\n\
               PREPARE seaworthy_stmt FROM @seaworthy_sql; EXECUTE seaworthy_stmt; DEALLOCATE PREPARE seaworthy_stmt;\n\
             END FOR;",
            counters.join(" "),
            literal(db),
            literal(&format!("ALTER TABLE {}.", ident(db))),
        );
    }
    for (name, next) in sequences {
        let target = qualified(db, name);
        let _ = writeln!(
            p,
            "SELECT next_not_cached_value INTO v_a FROM {target};\n\
             IF v_a <> {next} THEN ALTER SEQUENCE {target} RESTART WITH {next}; END IF;"
        );
    }
    let _ = writeln!(
        p,
        "SET foreign_key_checks = 1;\n\
         FOR d IN (SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ({kept}) AND SCHEMA_NAME NOT LIKE {iso}) DO\n\
           SET @seaworthy_sql = CONCAT('DROP DATABASE `', REPLACE(d.n, '`', '``'), '`');\n\
           PREPARE seaworthy_stmt FROM @seaworthy_sql; EXECUTE seaworthy_stmt; DEALLOCATE PREPARE seaworthy_stmt;\n\
           SET v_global = 1;\n\
         END FOR;\n\
         {privileges}\
         IF v_global = 1 THEN FLUSH PRIVILEGES; END IF;\n\
         SELECT 'ok', v_restored, v_global;\nEND"
    );
    p
}

/// The checkout procedure, `CALL <db>_baseline.seaworthy_checkout(owner)`: takes a database
/// out of the pool for `owner` (skipping those another session is taking), or answers NULL.
fn checkout_procedure(names: &Names) -> String {
    let pool = qualified(&names.baseline, "seaworthy_pool");
    let checkout = qualified(&names.baseline, "seaworthy_checkout");
    format!(
        "CREATE PROCEDURE {}(IN p_owner VARCHAR(64)) SQL SECURITY INVOKER\nBEGIN\n\
         DECLARE v_name VARCHAR(64) DEFAULT NULL;\n\
         DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_name = NULL;\n\
         START TRANSACTION;\n\
         SELECT name INTO v_name FROM {pool} ORDER BY name LIMIT 1 FOR UPDATE SKIP LOCKED;\n\
         IF v_name IS NOT NULL THEN\n\
           DELETE FROM {pool} WHERE name = v_name;\n\
           INSERT INTO {checkout} (name, owner) VALUES (v_name, p_owner);\n\
         END IF;\n\
         COMMIT;\n\
         SELECT v_name;\nEND",
        qualified(&names.baseline, "seaworthy_checkout_one"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_left_out_of_create_statements() {
        let create = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4";
        assert_eq!(
            without_counter(create),
            "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
    }

    #[test]
    fn views_are_renamed_into_clones() {
        let view = ObjectMeta {
            kind: "VIEW".into(),
            name: "v".into(),
            create_sql: "CREATE VIEW `v` AS select `test`.`t`.`id` AS `id` from `test`.`t`".into(),
        };
        assert_eq!(
            view.create_sql_in("test", "test_iso_1"),
            "CREATE VIEW `v` AS select `test_iso_1`.`t`.`id` AS `id` from `test_iso_1`.`t`"
        );
    }
}
