//! The baseline: the state every `clean()` returns to and every isolated database starts from.
//!
//! It is built once per container (the init steps run against the fixture's database) and kept
//! in the container, so every process that attaches to a container shared per run finds it:
//!
//! * the template database `<db>_baseline`, a copy of the database right after the init steps
//!   (the source of isolated databases, and of `<db>` itself when a clean must re-create it);
//! * a JSON record ([`Meta`]) of what the template cannot say, kept by the kit's
//!   [`Baseline`] in a file of the container (loaded, or recorded under the run's lock): the
//!   highest object id at baseline time (anything created later has a higher one), digests of the
//!   schema and of the cluster-wide state (roles, settings, databases), and statements that
//!   restore the baseline's roles, and the clean function: the template's row data and
//!   sequence positions compiled into one PL/pgSQL function (see [`clean_function`]) that a
//!   `clean()` calls in one round trip. The record is stored once the template is complete: a
//!   template without one is built again.
//!
//! Once read, the template is closed to connections (`ALLOW_CONNECTIONS false`; cloning needs
//! none): a process that attaches later (another of the run, a later run reusing the container)
//! takes the clean function from the record without reading the template. A template found open
//! again (changed by hand) is read again and the record's clean function replaced.

use std::fmt::Write as _;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, SimpleQueryMessage};

use seaworthy::kit::{Baseline, Revision};
use seaworthy::Container;

use crate::connect;
use crate::definition::{InitContext, InitStep, Postgres, PORT};
use crate::error::{Error, Result};

const SCHEMA_DIGEST: &str = include_str!("sql/schema_fingerprint.sql");
const GLOBAL_DIGEST: &str = include_str!("sql/global_fingerprint.sql");
const ROLES_RESTORE: &str = include_str!("sql/roles_restore.sql");
pub(crate) const DROP_NEW_OBJECTS: &str = include_str!("sql/drop_new_objects.sql");
pub(crate) const REVOKE_MEMBERSHIPS: &str = include_str!("sql/revoke_memberships.sql");

/// Bumped when the record's meaning changes: a template with another format is rebuilt.
const FORMAT: u32 = 1;
/// The other client sessions of the current database.
const OTHERS: &str = "pg_stat_get_activity(NULL) a \
    WHERE a.datid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
    AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'";
/// Empty-in-baseline tables larger than this are emptied with TRUNCATE rather than DELETE.
const TRUNCATE_ABOVE_BYTES: u64 = 256 * 1024;

/// The names the fixture derives from its database's.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) database: String,
    pub(crate) template: String,
    pub(crate) pool_prefix: String,
    pub(crate) iso_prefix: String,
}

impl Names {
    pub(crate) fn new(database: &str) -> Names {
        Names {
            database: database.to_string(),
            template: format!("{database}_baseline"),
            pool_prefix: format!("{database}_pool_"),
            iso_prefix: format!("{database}_iso_"),
        }
    }

    /// Whether `name` is one of the databases Seaworthy manages for this fixture.
    pub(crate) fn is_internal(&self, name: &str) -> bool {
        name == self.template
            || name.starts_with(&self.pool_prefix)
            || name.starts_with(&self.iso_prefix)
    }

    /// The cluster-wide digest query, with this fixture's names filled in.
    pub(crate) fn global_digest_sql(&self) -> String {
        GLOBAL_DIGEST
            .replace("{template}", &literal(&self.template))
            .replace("{pool_prefix}", &literal(&self.pool_prefix))
            .replace("{iso_prefix}", &literal(&self.iso_prefix))
    }
}

/// The baseline's record: what the template cannot say.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// Every object of the baseline has an id at most this; later ones have higher ids.
    pub(crate) max_oid: u32,
    pub(crate) schema_digest: String,
    pub(crate) global_digest: String,
    /// Restores the baseline roles' attributes, passwords, settings and memberships.
    pub(crate) roles_sql: String,
    /// `server_version_num`.
    pub(crate) server_version: i32,
    /// The databases of the baseline besides the fixture's own and Seaworthy's.
    #[serde(default)]
    pub(crate) databases: Vec<String>,
    /// The clean function compiled from the template (see [`clean_function`]); `None` in a
    /// record of an older version (compiled then, and stored).
    #[serde(default)]
    pub(crate) clean_sql: Option<String>,
    /// The statements that put the rows of each seeded table back, in the order of the clean
    /// function's numbers (see [`clean_function`]; empty in a record whose clean function
    /// restores the rows itself).
    #[serde(default)]
    pub(crate) restores: Vec<String>,
}

/// A SQL string literal (standard_conforming_strings is on, the default since PostgreSQL 9.1).
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A quoted identifier.
pub(crate) fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// What [`ensure`] hands the fixture.
pub(crate) struct Ensured {
    pub(crate) meta: Meta,
    /// The clean function (see [`clean_function`]), as a statement that creates it.
    pub(crate) clean_sql: String,
    /// The clean function comes from the stored record, checked when it was recorded: it is
    /// created without checking its body again.
    pub(crate) stored: bool,
    /// The baseline was built now: the sessions of the fixture's database were closed.
    pub(crate) built: bool,
}

/// Makes sure the baseline exists (building it from the init steps if this is the first process
/// to attach to a fresh container) and returns its record, kept in the container by the kit
/// (under the run's lock for the container: a process attaching meanwhile waits and loads it).
/// `client` is connected to the server (any database).
///
/// The record holds the clean function compiled from the template's rows, so a process that
/// attaches later (a reused container, another process of the run) does not read the template
/// again. The template is closed to connections once read: a template found open (changed by
/// hand, or left by an older version) is read again and its clean function compiled anew.
pub(crate) async fn ensure(
    container: &Container,
    client: &Client,
    def: &Postgres,
    names: &Names,
    fixture: &str,
) -> Result<Ensured> {
    let host = container.host().to_string();
    let port = container.host_port(PORT)?;
    let host = host.as_str();
    let mut built = false;
    // A record kept (from the container, or its host copy) holds a clean function checked when
    // it was compiled; one compiled now is checked when it is created.
    let mut stored = true;
    let (built_flag, stored_flag) = (&mut built, &mut stored);
    // Building the baseline closes the sessions of the fixture's database, `client`'s too: the
    // stamp taken after it is read on a connection of its own.
    let stamp = || async move {
        match template_stamp(client, names, fixture).await {
            Err(_) => {
                let config = connect::config(host, port, &def.user, &def.password, "postgres");
                let maint = connect::connect(&config)
                    .await
                    .map_err(|e| Error::query(fixture, "connect to database postgres", e))?;
                template_stamp(&maint, names, fixture).await
            }
            stamped => stamped,
        }
    };
    let mut meta: Meta = baseline_file(names)
        .load_or_revise_stamped::<Meta, Error, _, _, _, _>(container, stamp, |record| async move {
            let template = template_allows_connections(client, names, fixture).await?;
            match (record, template) {
                (Some(meta), Some(false)) if meta.clean_sql.is_some() => Ok(Revision::Kept(meta)),
                (Some(mut meta), Some(_)) => {
                    *stored_flag = false;
                    tracing::info!(template = %names.template, "the baseline template is open to connections (changed by hand?): compiling the clean from it again");
                    // The fixture's database may hold rows written before now that the
                    // template does not have: no transaction id tells them apart.
                    let (sql, restores) =
                        compile_clean(&meta, def, names, fixture, host, port, false).await?;
                    meta.clean_sql = Some(sql);
                    meta.restores = restores;
                    seal_template(client, names, fixture).await?;
                    Ok(Revision::Store(meta))
                }
                (record, _) => {
                    if record.is_some() {
                        // A data directory on a tmpfs is empty after a restart of the container;
                        // the record in the container's /tmp is not.
                        tracing::info!(template = %names.template, "the template a stored baseline describes is gone; recording it again");
                    }
                    *built_flag = true;
                    *stored_flag = false;
                    let maint_config =
                        connect::config(host, port, &def.user, &def.password, "postgres");
                    let maint = connect::connect(&maint_config)
                        .await
                        .map_err(|e| Error::query(fixture, "connect to database postgres", e))?;
                    // A template without a record: left half-built by a process that died, or
                    // by another version of the fixture. Built again.
                    drop_template(&maint, names, fixture).await?;
                    let started = Instant::now();
                    let mut meta = build(&maint, def, names, fixture, host, port).await?;
                    // The fixture's database was cloned from the template just now.
                    let (sql, restores) =
                        compile_clean(&meta, def, names, fixture, host, port, true).await?;
                    meta.clean_sql = Some(sql);
                    meta.restores = restores;
                    seal_template(&maint, names, fixture).await?;
                    tracing::debug!(fixture, elapsed = ?started.elapsed(), "baseline recorded");
                    Ok(Revision::Store(meta))
                }
            }
        })
        .await?;
    let clean_sql = meta
        .clean_sql
        .take()
        .ok_or_else(|| Error::fixture(fixture, "the baseline record has no clean function"))?;
    Ok(Ensured {
        meta,
        clean_sql,
        stored,
        built,
    })
}

/// The first column of what `sql` (a query of `pg_database` whose `$1` is the template's name)
/// returns; `None` when it returns no row.
async fn template_query<T>(
    client: &Client,
    names: &Names,
    fixture: &str,
    sql: &str,
) -> Result<Option<T>>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    // Typed: parse, bind and execute in one round trip (no prepare first).
    let found = client
        .query_typed_opt(sql, &[(&names.template, Type::NAME)])
        .await
        .map_err(|e| {
            Error::query(
                fixture,
                format!("look for the template {}", names.template),
                e,
            )
        })?;
    Ok(found.map(|row| row.get(0)))
}

/// Whether the template database allows connections; `None` when there is none.
async fn template_allows_connections(
    client: &Client,
    names: &Names,
    fixture: &str,
) -> Result<Option<bool>> {
    let sql = "SELECT datallowconn FROM pg_database WHERE datname = $1";
    template_query(client, names, fixture, sql).await
}

/// What identifies the baseline a record describes, for its host copy (see
/// [`Baseline::load_or_revise_stamped`]): the server's start time, and the template database's
/// id and row version (a rebuilt template is another database; closing it again after it was
/// opened, as every store of a record does, writes a new row version). `None` when there is no
/// template or it is open to connections: no copy is trusted then.
async fn template_stamp(client: &Client, names: &Names, fixture: &str) -> Result<Option<String>> {
    let sql = "SELECT oid::text || '/' || xmin::text || '/' || pg_postmaster_start_time()::text \
               FROM pg_database WHERE datname = $1 AND NOT datallowconn";
    template_query(client, names, fixture, sql).await
}

/// Whether the template database exists.
async fn template_exists(client: &Client, names: &Names, fixture: &str) -> Result<bool> {
    Ok(template_allows_connections(client, names, fixture)
        .await?
        .is_some())
}

/// Reads the template's rows and sequence positions and compiles the clean function and the
/// restores of the seeded tables. `cloned`: the fixture's database holds the template's rows
/// and nothing else (cloned from it, no test has run), so a transaction id taken now tells
/// the baseline's rows from every later one (see [`clean_function`]).
#[allow(clippy::too_many_arguments)]
async fn compile_clean(
    meta: &Meta,
    def: &Postgres,
    names: &Names,
    fixture: &str,
    host: &str,
    port: u16,
    cloned: bool,
) -> Result<(String, Vec<String>)> {
    let config = connect::config(host, port, &def.user, &def.password, &names.template);
    let template = connect::connect(&config).await.map_err(|e| {
        Error::query(
            fixture,
            format!("connect to the template {}", names.template),
            e,
        )
    })?;
    let (tables, sequences, horizon) = read_data(&template).await.map_err(|e| {
        Error::query(
            fixture,
            format!("read the baseline from {}", names.template),
            e,
        )
    })?;
    drop(template);
    tracing::debug!(
        fixture,
        tables = tables.len(),
        sequences = sequences.len(),
        "clean function compiled from the template"
    );
    let horizon = if cloned { horizon.as_str() } else { "" };
    Ok((
        clean_function(meta, names, &tables, &sequences, horizon),
        restores(&tables),
    ))
}

/// Closes the template to connections: nothing changes it behind the record's back without
/// opening it again first (which the next attach sees). Cloning it needs no connection.
async fn seal_template(client: &Client, names: &Names, fixture: &str) -> Result<()> {
    client
        .batch_execute(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
            ident(&names.template)
        ))
        .await
        .map_err(|e| {
            Error::query(
                fixture,
                format!("close the template {} to connections", names.template),
                e,
            )
        })
}

/// Where the container keeps the baseline's record (the format's version in the name: a record
/// of another version is not read, and the template is built again).
fn baseline_file(names: &Names) -> Baseline {
    Baseline::new(format!(
        "/tmp/.seaworthy-postgres-v{FORMAT}-{}-baseline.json",
        names.database
    ))
}

/// Drops the template database if there is one.
async fn drop_template(maint: &Client, names: &Names, fixture: &str) -> Result<()> {
    if !template_exists(maint, names, fixture).await? {
        return Ok(());
    }
    tracing::info!(template = %names.template, "rebuilding a baseline template that has no record");
    let t = ident(&names.template);
    maint
        .batch_execute(&format!("ALTER DATABASE {t} WITH IS_TEMPLATE false"))
        .await
        .map_err(|e| {
            Error::query(
                fixture,
                format!("unmark the template {}", names.template),
                e,
            )
        })?;
    maint
        .batch_execute(&format!("DROP DATABASE IF EXISTS {t} WITH (FORCE)"))
        .await
        .map_err(|e| Error::query(fixture, format!("drop the template {}", names.template), e))
}

/// Runs the init steps, records the baseline and creates the template.
async fn build(
    maint: &Client,
    def: &Postgres,
    names: &Names,
    fixture: &str,
    host: &str,
    port: u16,
) -> Result<Meta> {
    let db_config = connect::config(host, port, &def.user, &def.password, &names.database);
    let connection = seaworthy::ConnectionInfo::new("postgres", host, port)
        .with_credentials(&def.user, Some(def.password.clone()))
        .with_path(&names.database);
    for (i, step) in def.init.iter().enumerate() {
        let client = connect::connect(&db_config).await.map_err(|e| {
            Error::query(
                fixture,
                format!("connect to database {} for the init steps", names.database),
                e,
            )
        })?;
        match step {
            InitStep::Sql(sql) => client
                .batch_execute(sql)
                .await
                .map_err(|e| Error::query(fixture, format!("init step {:?}", step.name(i)), e))?,
            InitStep::Closure { run, .. } => run(InitContext {
                client,
                connection: connection.clone(),
            })
            .await
            .map_err(|source| Error::Init {
                fixture: fixture.to_string(),
                step: step.name(i),
                source,
            })?,
        }
    }
    // Record what the template cannot say, from inside the database.
    let client = connect::connect(&db_config).await.map_err(|e| {
        Error::query(
            fixture,
            format!("connect to database {}", names.database),
            e,
        )
    })?;
    let record = async {
        // A large object takes the next object id: everything of the baseline has a lower one.
        let probe: u32 = client.query_one("SELECT lo_create(0)", &[]).await?.get(0);
        client.execute("SELECT lo_unlink($1)", &[&probe]).await?;
        let schema_digest = single_text(&client, SCHEMA_DIGEST).await?;
        let global_digest = single_text(&client, &names.global_digest_sql()).await?;
        let roles_sql = single_text(&client, ROLES_RESTORE).await?;
        let version = single_text(&client, "SHOW server_version_num").await?;
        let databases: Vec<String> = client
            .query("SELECT datname::text FROM pg_database WHERE datname <> current_database() ORDER BY 1", &[])
            .await?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|d| !names.is_internal(d))
            .collect();
        Ok::<_, tokio_postgres::Error>(Meta {
            max_oid: probe,
            schema_digest,
            global_digest,
            roles_sql,
            server_version: version.parse().unwrap_or(0),
            databases,
            clean_sql: None,
            restores: Vec::new(),
        })
    }
    .await
    .map_err(|e| {
        Error::query(
            fixture,
            format!("record the baseline of database {}", names.database),
            e,
        )
    })?;
    drop(client);
    create_database_from(maint, &names.template, &names.database, names, fixture).await?;
    let t = ident(&names.template);
    maint
        .batch_execute(&format!("ALTER DATABASE {t} WITH IS_TEMPLATE true"))
        .await
        .map_err(|e| {
            Error::query(
                fixture,
                format!("mark {} as the baseline template", names.template),
                e,
            )
        })?;
    Ok(record)
}

/// `CREATE DATABASE target TEMPLATE source`, after closing the other sessions of `source`, and
/// retrying while a session connects to it in between (another process reading the template).
pub(crate) async fn create_database_from(
    client: &Client,
    target: &str,
    source: &str,
    names: &Names,
    fixture: &str,
) -> Result<()> {
    // The default strategy: WAL_LOG since PostgreSQL 15 (measured here: ~90 ms for a 20-table
    // database, against ~250 ms for FILE_COPY and its two checkpoints).
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE {}",
        ident(target),
        ident(source)
    );
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        // The fixture's database is the source when the baseline is first recorded: close its
        // sessions. The template's are left alone (another process may be reading the
        // baseline from it for a moment): the clone is retried instead.
        if source == names.database {
            close_sessions(client, source, fixture).await?;
        }
        match client.batch_execute(&sql).await {
            Ok(()) => return Ok(()),
            Err(e) if e.code() == Some(&SqlState::OBJECT_IN_USE) && Instant::now() < deadline => {
                tracing::debug!(source, target, "template busy; retrying the clone");
                seaworthy::runtime::run(tokio::time::sleep(std::time::Duration::from_millis(20)))
                    .await;
            }
            Err(e) => {
                return Err(Error::query(
                    fixture,
                    format!("create database {target} from {source}"),
                    e,
                ))
            }
        }
    }
}

/// Closes every other session of `database` and waits until they have exited (polling every
/// millisecond: `pg_terminate_backend`'s own timeout, and `DROP DATABASE ... WITH (FORCE)`, poll
/// every 100 ms).
pub(crate) async fn close_sessions(client: &Client, database: &str, fixture: &str) -> Result<()> {
    let others = format!(
        "datname = {} AND pid <> pg_backend_pid()",
        literal(database)
    );
    let sql = format!(
        "DO $seaworthy$ BEGIN\n\
         PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE {others};\n\
         FOR i IN 1..5000 LOOP\n\
         \x20 PERFORM pg_stat_clear_snapshot();\n\
         \x20 EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE {others});\n\
         \x20 PERFORM pg_sleep(0.001);\n\
         END LOOP;\n\
         END $seaworthy$"
    );
    client.batch_execute(&sql).await.map_err(|e| {
        Error::query(
            fixture,
            format!("close the sessions of database {database}"),
            e,
        )
    })
}

/// The first column of the first row of a simple query, as text.
pub(crate) async fn single_text(
    client: &Client,
    sql: &str,
) -> Result<String, tokio_postgres::Error> {
    for message in client.simple_query(sql).await? {
        if let SimpleQueryMessage::Row(row) = message {
            return Ok(row.get(0).unwrap_or_default().to_string());
        }
    }
    Ok(String::new())
}

/// A user table of the baseline.
#[derive(Debug, Clone)]
pub(crate) struct BaselineTable {
    /// `"schema"."table"`.
    pub(crate) qualified: String,
    /// The columns an INSERT may write (not generated), quoted, comma-separated.
    pub(crate) columns: String,
    /// Whether a foreign key references it (TRUNCATE would then need the referencing tables).
    pub(crate) referenced: bool,
    /// Digest of its rows (`None` when the baseline has none) and the rows as an array literal.
    pub(crate) rows: Option<(String, String)>,
    /// How many rows it has.
    pub(crate) count: i64,
}

/// A sequence of the baseline and its position.
#[derive(Debug, Clone)]
pub(crate) struct BaselineSequence {
    pub(crate) qualified: String,
    pub(crate) last_value: i64,
    pub(crate) is_called: bool,
}

const TABLES: &str = "
SELECT format('%I.%I', n.nspname, c.relname),
       coalesce((SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                   FROM pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''), ''),
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.confrelid = c.oid AND k.contype = 'f')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND c.relpersistence <> 't'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
 ORDER BY 1";

const SEQUENCES: &str = "
SELECT format('%I.%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' AND c.relpersistence <> 't'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
 ORDER BY 1";

/// What [`read_data`] reads: the tables, the sequences, and the transaction id after which
/// every row a test writes is numbered.
pub(crate) type BaselineData = (Vec<BaselineTable>, Vec<BaselineSequence>, String);

/// Reads the baseline's tables, rows and sequence positions from the template, and a
/// transaction id newer than every row of the baseline (each row a test inserts or updates
/// later, in the fixture's database or one re-created from the template, has a newer one).
pub(crate) async fn read_data(template: &Client) -> Result<BaselineData, tokio_postgres::Error> {
    let mut tables = Vec::new();
    for row in template.query(TABLES, &[]).await? {
        tables.push(BaselineTable {
            qualified: row.get(0),
            columns: row.get(1),
            referenced: row.get(2),
            rows: None,
            count: 0,
        });
    }
    // Pipelined on the one connection: about one round trip of waiting for all the tables.
    let contents = futures_util::future::join_all(tables.iter().map(|t| {
        let sql = format!(
            "SELECT md5(string_agg(x::text, E'\\n' ORDER BY x::text)), quote_literal(array_agg(x)::text), count(*) FROM ONLY {} x",
            t.qualified
        );
        async move { template.query_one(&sql, &[]).await }
    }))
    .await;
    for (table, row) in tables.iter_mut().zip(contents) {
        let row = row?;
        let digest: Option<String> = row.get(0);
        let rows: Option<String> = row.get(1);
        table.rows = digest.zip(rows);
        table.count = row.get(2);
    }
    let names: Vec<String> = template
        .query(SEQUENCES, &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let positions = futures_util::future::join_all(names.iter().map(|q| {
        let sql = format!("SELECT last_value, is_called FROM {q}");
        async move { template.query_one(&sql, &[]).await }
    }))
    .await;
    let mut sequences = Vec::new();
    for (qualified, row) in names.into_iter().zip(positions) {
        let row = row?;
        sequences.push(BaselineSequence {
            qualified,
            last_value: row.get(0),
            is_called: row.get(1),
        });
    }
    // 32 bits, as the `xmin` of a row (the epoch is not part of it).
    let horizon = single_text(template, "SELECT (txid_current() % 4294967296)::text").await?;
    Ok((tables, sequences, horizon))
}

/// The PL/pgSQL function one `clean()` calls, as a `CREATE FUNCTION pg_temp.seaworthy_clean()`
/// statement. In one call, inside one transaction, it:
///
/// 1. closes every other client session of the database, and waits (up to 5 s) until those that
///    were in a transaction have exited, so their changes are rolled back and their locks
///    released;
/// 2. compares the schema digest with the baseline's and returns `schema` when it differs,
///    having changed nothing (the caller then removes new objects, or re-creates the database);
/// 3. with triggers and foreign-key checks off (`session_replication_role = replica`): empties
///    every table that is empty in the baseline (DELETE, or TRUNCATE when it grew large and
///    nothing references it); finds the seeded tables whose rows differ from the baseline's;
///    moves every sequence whose position differs back with `setval`;
/// 4. returns `global` when roles, settings or the set of databases differ from the baseline,
///    else `ok`; either followed by the numbers of the seeded tables to restore (in the order of
///    [`restores`], whose statements the caller then runs).
///
/// A seeded table's rows are the baseline's when it has as many and none was written after
/// `horizon` (a transaction id newer than every row of the baseline: a row inserted or updated
/// later has a newer `xmin`; one deleted lowers the count unless another is inserted, which is
/// newer). That costs one pass over the rows; only when it fails are the rows' digest compared
/// (a sort of every row), and the table restored when it differs. The rows themselves are not
/// in the function (a seed of 10,000 rows makes a statement of most of a megabyte, sent and
/// parsed at every connection): the caller restores the tables the function names.
///
/// The function lives in the session's temporary schema: it disappears with the connection and
/// is invisible to other sessions; its plans are cached for the session's later calls.
pub(crate) fn clean_function(
    meta: &Meta,
    names: &Names,
    tables: &[BaselineTable],
    sequences: &[BaselineSequence],
    horizon: &str,
) -> String {
    // Not a transaction id: no pass over the rows, the digest is compared.
    let horizon = horizon.trim().parse::<u32>().ok();
    let mut body = String::new();
    let _ = writeln!(body, "PERFORM set_config('lock_timeout', '30s', true);");
    // Close the other sessions. Wait (polling every millisecond: pg_terminate_backend's own
    // timeout polls every 100 ms) for those in a transaction or a statement to exit, so their
    // changes are rolled back and their locks released; an idle session has neither.
    let _ = writeln!(
        body,
        "IF EXISTS (SELECT 1 FROM {OTHERS}) THEN\n\
         \x20 PERFORM pg_terminate_backend(a.pid) FROM {OTHERS};\n\
         \x20 FOR i IN 1..5000 LOOP\n\
         \x20   PERFORM pg_stat_clear_snapshot();\n\
         \x20   EXIT WHEN NOT EXISTS (SELECT 1 FROM {OTHERS} AND a.state IS DISTINCT FROM 'idle');\n\
         \x20   PERFORM pg_sleep(0.001);\n\
         \x20 END LOOP;\n\
         END IF;"
    );
    let _ = writeln!(
        body,
        "IF ({}) IS DISTINCT FROM {} THEN RETURN 'schema'; END IF;",
        SCHEMA_DIGEST.trim(),
        literal(&meta.schema_digest)
    );
    let _ = writeln!(
        body,
        "PERFORM set_config('session_replication_role', 'replica', true);"
    );
    let mut seeded = 0;
    for t in tables {
        let q = &t.qualified;
        match &t.rows {
            None if t.referenced => {
                let _ = writeln!(body, "DELETE FROM ONLY {q};");
            }
            None => {
                let _ = writeln!(
                    body,
                    "IF pg_relation_size({}) > {TRUNCATE_ABOVE_BYTES} THEN TRUNCATE ONLY {q}; ELSE DELETE FROM ONLY {q}; END IF;",
                    literal(q)
                );
            }
            Some((digest, _)) => {
                let differs = format!(
                    "IF (SELECT md5(string_agg(x::text, E'\\n' ORDER BY x::text)) FROM ONLY {q} x) IS DISTINCT FROM {} THEN seaworthy_restored := seaworthy_restored || ' {seeded}'; END IF;",
                    literal(digest)
                );
                match horizon {
                    Some(horizon) => {
                        let _ = writeln!(
                            body,
                            "IF NOT (SELECT count(*) = {} AND NOT coalesce(bool_or(age(x.xmin) < age('{horizon}'::xid)), false) FROM ONLY {q} x) THEN\n  {differs}\nEND IF;",
                            t.count
                        );
                    }
                    None => {
                        let _ = writeln!(body, "{differs}");
                    }
                }
                seeded += 1;
            }
        }
    }
    for s in sequences {
        let _ = writeln!(
            body,
            "IF (SELECT (last_value, is_called) FROM {q}) IS DISTINCT FROM ({v}::bigint, {c}) THEN PERFORM setval({l}, {v}, {c}); END IF;",
            q = s.qualified,
            l = literal(&s.qualified),
            v = s.last_value,
            c = s.is_called
        );
    }
    let _ = writeln!(
        body,
        "PERFORM set_config('session_replication_role', 'origin', true);"
    );
    let _ = writeln!(
        body,
        "IF ({}) IS DISTINCT FROM {} THEN RETURN 'global' || seaworthy_restored; END IF;",
        names.global_digest_sql().trim(),
        literal(&meta.global_digest)
    );
    let _ = writeln!(body, "RETURN 'ok' || seaworthy_restored;");
    format!(
        "CREATE OR REPLACE FUNCTION pg_temp.seaworthy_clean() RETURNS text LANGUAGE plpgsql AS $seaworthy$\nDECLARE seaworthy_restored text := '';\nBEGIN\n{body}END\n$seaworthy$"
    )
}

/// The statements that put the rows of each seeded table back (emptied, then filled with the
/// baseline's rows), in the order of the numbers [`clean_function`] returns. Each runs with
/// triggers and foreign-key checks off, in the transaction [`restore_sql`] makes.
pub(crate) fn restores(tables: &[BaselineTable]) -> Vec<String> {
    tables
        .iter()
        .filter_map(|t| {
            let (_, rows) = t.rows.as_ref()?;
            let q = &t.qualified;
            let mut sql = format!("DELETE FROM ONLY {q};");
            if !t.columns.is_empty() {
                let c = &t.columns;
                let _ = write!(
                    sql,
                    " INSERT INTO {q} ({c}) OVERRIDING SYSTEM VALUE SELECT {c} FROM unnest({rows}::{q}[]);"
                );
            }
            Some(sql)
        })
        .collect()
}

/// One transaction that runs `statements` (some of [`restores`]) with triggers and foreign-key
/// checks off.
pub(crate) fn restore_sql<'a>(statements: impl IntoIterator<Item = &'a str>) -> String {
    let mut sql = String::from(
        "BEGIN; SET LOCAL lock_timeout = '30s'; SET LOCAL session_replication_role = replica;\n",
    );
    for statement in statements {
        sql.push_str(statement);
        sql.push('\n');
    }
    sql.push_str("COMMIT;");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_identifiers_are_quoted() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn internal_names_are_recognised() {
        let n = Names::new("app");
        assert!(n.is_internal("app_baseline"));
        assert!(n.is_internal("app_pool_1a2b"));
        assert!(n.is_internal("app_iso_s3_ffff"));
        assert!(!n.is_internal("app"));
        assert!(!n.is_internal("app_other"));
        assert!(n.global_digest_sql().contains("'app_pool_'"));
    }

    #[test]
    fn the_clean_function_covers_every_table_and_sequence() {
        let meta = Meta {
            max_oid: 20000,
            schema_digest: "abc".into(),
            global_digest: "def".into(),
            roles_sql: String::new(),
            server_version: 150000,
            databases: vec!["postgres".into()],
            clean_sql: None,
            restores: Vec::new(),
        };
        let tables = vec![
            BaselineTable {
                qualified: "public.a".into(),
                columns: "id".into(),
                referenced: false,
                rows: None,
                count: 0,
            },
            BaselineTable {
                qualified: "public.b".into(),
                columns: "id".into(),
                referenced: true,
                rows: None,
                count: 0,
            },
            BaselineTable {
                qualified: "public.c".into(),
                columns: "id, name".into(),
                referenced: false,
                rows: Some(("h".into(), "'{\"(1,x)\"}'".into())),
                count: 1,
            },
        ];
        let sequences = vec![BaselineSequence {
            qualified: "public.a_id_seq".into(),
            last_value: 1,
            is_called: false,
        }];
        let f = clean_function(&meta, &Names::new("app"), &tables, &sequences, "1234");
        assert!(f.contains("TRUNCATE ONLY public.a"));
        assert!(f.contains("DELETE FROM ONLY public.b;"));
        assert!(!f.contains("TRUNCATE ONLY public.b"));
        // The seeded table: its rows are checked (count and transaction ids first), and
        // restored by the caller, with the rows kept out of the function.
        assert!(f.contains("count(*) = 1 AND NOT coalesce(bool_or(age(x.xmin) < age('1234'::xid)), false) FROM ONLY public.c x"));
        assert!(f.contains("seaworthy_restored || ' 0'"));
        assert!(!f.contains("(1,x)"));
        assert_eq!(
            restores(&tables),
            ["DELETE FROM ONLY public.c; INSERT INTO public.c (id, name) OVERRIDING SYSTEM VALUE SELECT id, name FROM unnest('{\"(1,x)\"}'::public.c[]);"]
        );
        // Without a transaction id, the digest alone.
        let f = clean_function(&meta, &Names::new("app"), &tables, &sequences, "");
        assert!(!f.contains("xmin") && f.contains("seaworthy_restored || ' 0'"));
        assert!(f.contains("PERFORM setval('public.a_id_seq', 1, false)"));
        assert!(f.contains("RETURN 'schema'") && f.contains("RETURN 'global'"));
    }
}
