//! [`read_migrations`]: a directory of SQL migrations, as the common migration tools lay them
//! out, read into the ordered list of what brings an empty database up to date.
//!
//! A fixture's `with_migrations(dir)` points at the migrations directory of the user's project,
//! made by their migration tool. Each tool has its own file names, its own way of keeping the
//! *down* part (reverting a migration) apart from the *up* part, and its own ordering; running
//! every `*.sql` file in name order runs the down parts too and orders `V10` before `V2`.
//! [`read_migrations`] knows these layouts (detected per file, so a directory may mix them as
//! long as every migration has a version):
//!
//! | Layout ([`Layout`]) | Tools | Files | What runs |
//! |---|---|---|---|
//! | `Plain` | sqlx (simple), numbered files | `20220101000000_init.sql`, `001_users.sql`, `1_init.sql`, `001-init.sql` | the whole file |
//! | `UpDown` | sqlx (reversible), golang-migrate | `<version>_<name>.up.sql` + `.down.sql` | the `.up.sql` file |
//! | `Diesel` | diesel | `<version>_<name>/up.sql` + `down.sql` (version `2021-01-01-000000`: dashes ignored) | `up.sql` |
//! | `Flyway` | Flyway, refinery | `V<version>__<name>.sql` (version `1`, `1.1`, `1_1`), refinery's `U<version>__` | the file; Flyway's undo `U<version>__` (same version as a `V`) never |
//! | `FlywayBaseline` | Flyway | `B<version>__<name>.sql` | the latest one, then the `V` files above its version |
//! | `FlywayRepeatable` | Flyway | `R__<name>.sql` | after every versioned one, in name order |
//! | `Dbmate` | dbmate | `<version>_<name>.sql` with `-- migrate:up` … `-- migrate:down` | the up section |
//! | `Goose` | goose | `<version>_<name>.sql` with `-- +goose Up` … `-- +goose Down` | the up section |
//!
//! Versions are compared as numbers (`2` before `10`; Flyway's `1.1` before `1.10`, part by
//! part), whatever their padding. Two migrations with the same version are an error naming both
//! files; so is a file without a version in a directory whose other migrations have one (it
//! cannot be ordered). A directory where **no** file has a version runs its files in name order.
//! Missing down files are fine. Subdirectories are read for diesel's migrations (a directory with
//! an `up.sql`) and for Flyway/refinery files (they search their locations recursively); other
//! files (`README.md`, `.keep`, `metadata.toml`, a tool's `.go`/`.rs` migrations) are ignored.
//!
//! goose's `-- +goose ENVSUB ON` expands environment variables (`${VAR}`, `${VAR:-default}`,
//! `${VAR?message}`, a set `$VAR`) in the up lines after it, as goose does. Their values are not
//! part of a baseline cache's key: a cached baseline built with other values is used as is.
//!
//! A migration that must run outside a transaction ([`Migration::transaction`] is `false`) says
//! so as its tool does: sqlx's `-- no-transaction` first line, goose's
//! `-- +goose NO TRANSACTION`, dbmate's `-- migrate:up transaction:false`, diesel's
//! `run_in_transaction = false` in `metadata.toml`, Flyway's `executeInTransaction=false` in
//! `<file>.sql.conf`. A fixture then runs it statement by statement
//! ([`Migration::statements`]).
//!
//! ```
//! use seaworthy::kit::migrations::{read_migrations, Layout};
//!
//! let dir = std::env::temp_dir().join(format!("sw-doc-migrations-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! std::fs::write(dir.join("V2__orders.sql"), "CREATE TABLE orders (id int);")?;
//! std::fs::write(dir.join("V10__index.sql"), "CREATE INDEX ON orders (id);")?;
//! std::fs::write(dir.join("V1__users.sql"), "CREATE TABLE users (id int);")?;
//! let migrations = read_migrations(&dir)?;
//! let names: Vec<_> = migrations.iter().map(|m| m.description.as_str()).collect();
//! assert_eq!(names, ["users", "orders", "index"]);
//! assert_eq!(migrations[2].layout, Layout::Flyway);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};

/// A migration's version: one or more numbers (`20220101000000`; Flyway's `1.2.10` has three),
/// compared part by part as numbers, a missing part counting as 0 (`1.0` is `1`).
#[derive(Debug, Clone)]
pub struct Version {
    parts: Vec<u128>,
    text: String,
}

impl Version {
    /// Parses `text`: numbers separated by `.` or `_` (diesel's `-` are ignored). `None` when it
    /// is not one (empty, another character, a number over 38 digits).
    pub fn parse(text: &str) -> Option<Version> {
        let parts = text
            .split(['.', '_'])
            .map(|part| {
                let digits: String = part.chars().filter(|c| *c != '-').collect();
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                digits.parse::<u128>().ok()
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Version {
            parts,
            text: text.to_string(),
        })
    }

    /// The numbers, in order.
    pub fn parts(&self) -> &[u128] {
        &self.parts
    }

    fn significant(&self) -> &[u128] {
        let end = self
            .parts
            .iter()
            .rposition(|p| *p != 0)
            .map_or(0, |i| i + 1);
        &self.parts[..end]
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.significant().cmp(other.significant())
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// How a migration is laid out (see the [module](self)'s table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// One file, all of it up: sqlx's simple migrations, numbered files.
    Plain,
    /// `<version>_<name>.up.sql` beside an optional `.down.sql`: sqlx, golang-migrate.
    UpDown,
    /// A directory `<version>_<name>` with `up.sql` and `down.sql`: diesel.
    Diesel,
    /// `V<version>__<name>.sql`: Flyway, refinery (and refinery's `U`, unversioned).
    Flyway,
    /// `B<version>__<name>.sql`: a Flyway baseline migration.
    FlywayBaseline,
    /// `R__<name>.sql`: a Flyway repeatable migration, run after the versioned ones.
    FlywayRepeatable,
    /// One file with `-- migrate:up` and `-- migrate:down` sections: dbmate.
    Dbmate,
    /// One file with `-- +goose Up` and `-- +goose Down` sections: goose.
    Goose,
}

/// One up-migration, read from its file.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The file its SQL comes from (diesel's `…/up.sql`).
    pub path: PathBuf,
    /// Its version; `None` for a Flyway repeatable migration, and for the files of a directory
    /// where no file has a version.
    pub version: Option<Version>,
    /// The name after the version (`create_users`).
    pub description: String,
    /// How it is laid out.
    pub layout: Layout,
    /// The up part's SQL. Its lines are the file's lines at the same numbers (the lines of
    /// other sections are blanked), so a line of it is a line of the file.
    pub sql: String,
    /// `false` when the migration asks to run outside a transaction (`CREATE INDEX
    /// CONCURRENTLY`...): run it statement by statement ([`statements`](Self::statements)).
    pub transaction: bool,
    /// goose's `StatementBegin`/`StatementEnd` blocks: 1-based first and last lines, inclusive.
    blocks: Vec<(usize, usize)>,
}

impl Migration {
    /// The migration's name in messages: its file (`migrations/V2__orders.sql`).
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// The up part as separate statements, each with the line of the file it starts on (goose's
    /// `StatementBegin`/`StatementEnd` blocks are one statement each). `dialect` says how
    /// strings, quoted names and comments are written (a `;` inside them ends nothing).
    pub fn statements(&self, dialect: Dialect) -> Vec<Statement> {
        if self.blocks.is_empty() {
            return split_statements(&self.sql, dialect);
        }
        let lines: Vec<&str> = self.sql.split_inclusive('\n').collect();
        let mut out = Vec::new();
        let mut next = 1;
        let outside = |from: usize, to: usize, out: &mut Vec<Statement>| {
            if from > to {
                return;
            }
            let text: String = lines[from - 1..to].concat();
            for mut statement in split_statements(&text, dialect) {
                statement.line += from - 1;
                out.push(statement);
            }
        };
        for &(first, last) in &self.blocks {
            outside(next, first.saturating_sub(1), &mut out);
            let text: String = lines[first - 1..last.min(lines.len())].concat();
            let skip = leading_comments(&text, dialect);
            if skip < text.len() {
                out.push(Statement {
                    sql: text[skip..].trim_end().to_string(),
                    line: first + text[..skip].matches('\n').count(),
                });
            }
            next = last + 1;
        }
        outside(next, lines.len(), &mut out);
        out
    }

    /// The line of the file holding the `position`th character (1-based, as PostgreSQL reports
    /// an error's position) of [`sql`](Self::sql).
    pub fn line_of(&self, position: usize) -> usize {
        line_of(&self.sql, position)
    }
}

/// The line (1-based) of `text` holding its `position`th character (1-based).
pub fn line_of(text: &str, position: usize) -> usize {
    1 + text
        .chars()
        .take(position.saturating_sub(1))
        .filter(|c| *c == '\n')
        .count()
}

/// One statement of a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Its text, without the `;` that ends it.
    pub sql: String,
    /// The line (1-based) it starts on.
    pub line: usize,
}

/// How a server's SQL writes strings, quoted names and comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL: `'…'` (`''` inside; `E'…'` with backslash escapes), `"…"`, `$tag$…$tag$`,
    /// `--` and nested `/* */` comments.
    Postgres,
    /// MySQL/MariaDB: `'…'` and `"…"` with backslash escapes, `` `…` ``, `--␠`, `#` and
    /// `/* */` comments, and the client's `DELIMITER` command.
    MySql,
}

/// Why a migrations directory cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// A file or directory could not be read.
    #[error("read the migrations at {path}: {source}")]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file that is not a valid migration of its layout.
    #[error("migration {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Two migrations with the same version.
    #[error("migrations {first} and {second} have the same version {version}: rename one")]
    Duplicate {
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
        /// Their version.
        version: String,
    },
    /// Files that cannot be ordered among the others: they have no version.
    #[error(
        "cannot order the migrations of {dir}: {files} have no version (name them \
         `<version>_<name>.sql`, `V<version>__<name>.sql`...) while the others have one"
    )]
    Unordered {
        /// The directory.
        dir: PathBuf,
        /// The files without a version, comma-separated.
        files: String,
    },
    /// A directory with no migration in it.
    #[error(
        "no migrations in {dir}: expected `*.sql` files (`<version>_<name>.sql`, \
         `<version>_<name>.up.sql`, `V<version>__<name>.sql`) or diesel's \
         `<version>_<name>/up.sql` directories"
    )]
    Empty {
        /// The directory.
        dir: PathBuf,
    },
}

/// A file found in the directory, before ordering.
struct Found {
    migration: Migration,
    /// Flyway's `U<version>__`: an undo when a `V`/`B` has its version, else refinery's
    /// unversioned migration.
    u_prefix: bool,
}

/// The up-migrations of `dir`, in the order they run (see the [module](self)'s table).
pub fn read_migrations(dir: &Path) -> Result<Vec<Migration>, MigrationError> {
    let mut found = Vec::new();
    scan(dir, 0, &mut found)?;
    if found.is_empty() {
        return Err(MigrationError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    order(dir, found)
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> MigrationError + '_ {
    move |source| MigrationError::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> MigrationError {
    MigrationError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Entries of `dir`, sorted by name.
fn entries(dir: &Path) -> Result<Vec<PathBuf>, MigrationError> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error(dir))? {
        paths.push(entry.map_err(read_error(dir))?.path());
    }
    paths.sort();
    Ok(paths)
}

/// How deep subdirectories are searched (a symbolic link to a parent would loop).
const MAX_DEPTH: usize = 16;

/// Reads the migrations of `dir`, `depth` levels below the migrations directory: every kind at
/// the top, only diesel's directories and Flyway's files below.
fn scan(dir: &Path, depth: usize, found: &mut Vec<Found>) -> Result<(), MigrationError> {
    let top = depth == 0;
    for path in entries(dir)? {
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(read_error(&path))?;
        if meta.is_dir() {
            let up = path.join("up.sql");
            if up.is_file() {
                found.push(diesel(&path, &name, &up)?);
            } else if depth < MAX_DEPTH {
                scan(&path, depth + 1, found)?;
            }
            continue;
        }
        let Some(stem) = name.strip_suffix(".sql") else {
            continue;
        };
        if let Some(f) = flyway(&path, stem)? {
            found.push(f);
        } else if !top {
            continue;
        } else if stem.ends_with(".down") {
            // A down migration: never run (a missing one is fine too).
            continue;
        } else if let Some(base) = stem.strip_suffix(".up") {
            let (version, description) = numbered(base);
            let Some(version) = version else {
                return Err(invalid(
                    &path,
                    "an `.up.sql` file needs a version: `<version>_<name>.up.sql`",
                ));
            };
            let sql = read(&path)?;
            found.push(plain(
                &path,
                Some(version),
                description,
                Layout::UpDown,
                sql,
            ));
        } else {
            let (version, description) = numbered(stem);
            let sql = read(&path)?;
            found.push(sectioned(&path, version, description, sql)?);
        }
    }
    Ok(())
}

/// A file's text, without the byte order mark some editors write first.
fn read(path: &Path) -> Result<String, MigrationError> {
    let text = std::fs::read_to_string(path).map_err(read_error(path))?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// `<digits>_<description>` (or `<digits>`): the version, if the part before the first `_` is a
/// number (dashes ignored, as diesel's `2021-01-01-000000`), and the description. Hand-made
/// names `001-create_users` and `001.create_users` (digits, then `-` or `.` and a non-digit)
/// are numbered too.
fn numbered(stem: &str) -> (Option<Version>, String) {
    let (head, rest) = stem.split_once('_').unwrap_or((stem, ""));
    let digits_and_dashes = head.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    if head.starts_with(|c: char| c.is_ascii_digit()) && digits_and_dashes {
        if let Some(version) = Version::parse(&head.replace('-', "")) {
            return (Some(version), rest.to_string());
        }
    }
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    let mut after = stem[digits..].chars();
    if digits > 0
        && matches!(after.next(), Some('-' | '.'))
        && after.next().is_some_and(|c| !c.is_ascii_digit())
    {
        if let Some(version) = Version::parse(&stem[..digits]) {
            return (Some(version), stem[digits + 1..].to_string());
        }
    }
    (None, stem.to_string())
}

/// sqlx marks a migration that must run outside a transaction with this first line.
const SQLX_NO_TRANSACTION: &str = "-- no-transaction";

fn plain(
    path: &Path,
    version: Option<Version>,
    description: String,
    layout: Layout,
    sql: String,
) -> Found {
    let transaction = !sql
        .lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_start().starts_with(SQLX_NO_TRANSACTION));
    Found {
        migration: Migration {
            path: path.to_path_buf(),
            version,
            description,
            layout,
            sql,
            transaction,
            blocks: Vec::new(),
        },
        u_prefix: false,
    }
}

/// A diesel migration: the directory `<version>_<name>` with `up.sql` (and `metadata.toml`).
fn diesel(dir: &Path, name: &str, up: &Path) -> Result<Found, MigrationError> {
    let (head, description) = name.split_once('_').unwrap_or((name, ""));
    let version = Some(head)
        .filter(|h| h.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
        .and_then(|h| Version::parse(&h.replace('-', "")))
        .ok_or_else(|| {
            invalid(
                dir,
                "a diesel migration directory is named `<version>_<name>` \
                 (`2021-01-01-000000_create_users`, `20210101000000_create_users`)",
            )
        })?;
    let sql = read(up)?;
    let mut found = plain(
        up,
        Some(version),
        description.to_string(),
        Layout::Diesel,
        sql,
    );
    let metadata = dir.join("metadata.toml");
    if metadata.is_file() {
        let text = read(&metadata)?;
        let value: toml::Table = text
            .parse()
            .map_err(|e| invalid(&metadata, format!("not valid TOML: {e}")))?;
        if let Some(run) = value.get("run_in_transaction") {
            found.migration.transaction = run.as_bool().ok_or_else(|| {
                invalid(&metadata, "`run_in_transaction` must be `true` or `false`")
            })?;
        }
    }
    Ok(found)
}

/// A Flyway/refinery file (`V1__x`, `V1.1__x`, `V1_1__x`, `U2__x`, `B5__x`, `R__x`), or `None`
/// when the name is not one.
fn flyway(path: &Path, stem: &str) -> Result<Option<Found>, MigrationError> {
    let Some((head, description)) = stem.split_once("__") else {
        return Ok(None);
    };
    let mut chars = head.chars();
    let (prefix, version) = match chars.next() {
        Some('R') if head.len() == 1 => ('R', None),
        Some(p @ ('V' | 'U' | 'B')) => match Version::parse(chars.as_str()) {
            Some(v) => (p, Some(v)),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    let layout = match prefix {
        'R' => Layout::FlywayRepeatable,
        'B' => Layout::FlywayBaseline,
        _ => Layout::Flyway,
    };
    let sql = read(path)?;
    let mut found = plain(path, version, description.to_string(), layout, sql);
    found.u_prefix = prefix == 'U';
    // Flyway's per-script configuration: `V1__x.sql.conf`.
    let mut conf = path.as_os_str().to_owned();
    conf.push(".conf");
    let conf = PathBuf::from(conf);
    if conf.is_file() {
        for line in read(&conf)?.lines() {
            if let Some((key, value)) = line.split_once('=') {
                if key.trim() == "executeInTransaction" {
                    found.migration.transaction = value.trim() != "false";
                }
            }
        }
    }
    Ok(Some(found))
}

/// A section marker of a dbmate or goose file.
enum Marker {
    Up {
        transaction: bool,
    },
    Down,
    Begin,
    End,
    NoTransaction,
    /// goose's `ENVSUB ON` / `ENVSUB OFF`.
    Envsub(bool),
}

fn dbmate_marker(line: &str) -> Option<Marker> {
    let rest = line.strip_prefix("--")?.trim_start();
    let rest = rest.strip_prefix("migrate:")?;
    if let Some(options) = rest.strip_prefix("up") {
        if !options.is_empty() && !options.starts_with(char::is_whitespace) {
            return None;
        }
        let transaction = !options
            .split_whitespace()
            .any(|o| o.eq_ignore_ascii_case("transaction:false"));
        Some(Marker::Up { transaction })
    } else if rest.starts_with("down") {
        Some(Marker::Down)
    } else {
        None
    }
}

fn goose_marker(line: &str) -> Option<Marker> {
    // goose: `-- +goose <annotation>`, at the start of the line, case-insensitive.
    let rest = line.strip_prefix("--")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let rest = rest.trim_start();
    let word = rest.get(..6)?;
    if !word.eq_ignore_ascii_case("+goose") {
        return None;
    }
    let annotation: Vec<String> = rest[6..]
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    match annotation.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["up", ..] => Some(Marker::Up { transaction: true }),
        ["down", ..] => Some(Marker::Down),
        ["statementbegin", ..] => Some(Marker::Begin),
        ["statementend", ..] => Some(Marker::End),
        ["no", "transaction", ..] => Some(Marker::NoTransaction),
        ["envsub", "on", ..] => Some(Marker::Envsub(true)),
        ["envsub", "off", ..] => Some(Marker::Envsub(false)),
        _ => None,
    }
}

/// A numbered (or unnumbered) file: dbmate's or goose's sections when it has their markers, the
/// whole file otherwise.
fn sectioned(
    path: &Path,
    version: Option<Version>,
    description: String,
    sql: String,
) -> Result<Found, MigrationError> {
    let lines: Vec<&str> = sql.split_inclusive('\n').collect();
    let (layout, marker): (Layout, fn(&str) -> Option<Marker>) =
        if lines.iter().any(|l| dbmate_marker(l).is_some()) {
            (Layout::Dbmate, dbmate_marker)
        } else if lines.iter().any(|l| goose_marker(l).is_some()) {
            (Layout::Goose, goose_marker)
        } else {
            return Ok(plain(path, version, description, Layout::Plain, sql));
        };
    let what = if layout == Layout::Dbmate {
        "dbmate's `-- migrate:up`"
    } else {
        "goose's `-- +goose Up`"
    };
    let mut up_lines: Vec<std::borrow::Cow<'_, str>> = Vec::with_capacity(lines.len());
    let mut envsub = false;
    let mut in_up = false;
    let mut seen_up = false;
    let mut transaction = true;
    let mut blocks = Vec::new();
    let mut open: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let number = i + 1;
        let keep = match marker(line) {
            Some(Marker::Up { transaction: t }) => {
                if seen_up {
                    return Err(invalid(
                        path,
                        format!("{what} appears twice (line {number})"),
                    ));
                }
                seen_up = true;
                in_up = true;
                transaction &= t;
                true
            }
            Some(Marker::Down) => {
                in_up = false;
                false
            }
            Some(Marker::NoTransaction) => {
                transaction = false;
                in_up
            }
            Some(Marker::Envsub(on)) => {
                envsub = on;
                in_up
            }
            Some(Marker::Begin) => {
                if in_up {
                    open = Some(number + 1);
                }
                in_up
            }
            Some(Marker::End) => {
                if in_up {
                    let first = open.take().ok_or_else(|| {
                        invalid(
                            path,
                            format!("`StatementEnd` without `StatementBegin` (line {number})"),
                        )
                    })?;
                    blocks.push((first, number.saturating_sub(1)));
                }
                in_up
            }
            None => in_up,
        };
        if keep && envsub && marker(line).is_none() {
            let line = substitute_env(line)
                .map_err(|reason| invalid(path, format!("line {number}: {reason}")))?;
            up_lines.push(line.into());
        } else if keep {
            up_lines.push((*line).into());
        } else {
            // Blanked, so that the up part keeps the file's line numbers.
            up_lines.push(if line.ends_with('\n') { "\n" } else { "" }.into());
        }
    }
    if !seen_up {
        return Err(invalid(
            path,
            format!("it has the tool's markers but no {what} line: nothing would run"),
        ));
    }
    if let Some(first) = open {
        return Err(invalid(
            path,
            format!(
                "`StatementBegin` (line {}) without `StatementEnd`",
                first - 1
            ),
        ));
    }
    let mut found = plain(path, version, description, layout, up_lines.concat());
    found.migration.transaction = transaction;
    found.migration.blocks = blocks;
    Ok(found)
}

/// goose's `ENVSUB ON` expansion of one line: `${VAR}`, `${VAR:-default}` (unset or empty),
/// `${VAR-default}` (unset), `${VAR?message}`/`${VAR:?message}` (an error when unset), and
/// `$VAR` when `VAR` is set (left as is otherwise: PostgreSQL's `$tag$` quotes are not
/// variables). An unset `${VAR}` is empty.
fn substitute_env(line: &str) -> Result<String, String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(inner) = after.strip_prefix('{') {
            let Some(close) = inner.find('}') else {
                return Err(format!("`${{` without `}}` in goose's ENVSUB: {line:?}"));
            };
            let expr = &inner[..close];
            let name_end = expr.find(|c: char| !is_name(c)).unwrap_or(expr.len());
            let (name, op) = expr.split_at(name_end);
            let value = std::env::var(name).ok();
            let expanded = match op {
                "" => value.unwrap_or_default(),
                _ if op.starts_with(":-") => value
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| op[2..].to_string()),
                _ if op.starts_with('-') => value.unwrap_or_else(|| op[1..].to_string()),
                _ if op.starts_with(":?") || op.starts_with('?') => match value {
                    Some(v) => v,
                    None => {
                        let message = op.trim_start_matches(':').trim_start_matches('?');
                        return Err(format!("${name} is not set: {message}"));
                    }
                },
                _ => return Err(format!("goose's ENVSUB cannot expand `${{{expr}}}`")),
            };
            out.push_str(&expanded);
            rest = &inner[close + 1..];
        } else {
            let name_end = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
            let name = &after[..name_end];
            let starts_well = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
            match std::env::var(name).ok().filter(|_| starts_well) {
                Some(value) => {
                    out.push_str(&value);
                    rest = &after[name_end..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Orders what was found, and checks it can be ordered.
fn order(dir: &Path, found: Vec<Found>) -> Result<Vec<Migration>, MigrationError> {
    // Versions that a `V` or `B` file has: a `U` file with one of them is Flyway's undo.
    let forward: Vec<Version> = found
        .iter()
        .filter(|f| {
            !f.u_prefix && matches!(f.migration.layout, Layout::Flyway | Layout::FlywayBaseline)
        })
        .filter_map(|f| f.migration.version.clone())
        .collect();
    let mut versioned = Vec::new();
    let mut repeatable = Vec::new();
    let mut unversioned = Vec::new();
    let mut baselines = Vec::new();
    for f in found {
        let m = f.migration;
        if f.u_prefix && m.version.as_ref().is_some_and(|v| forward.contains(v)) {
            continue;
        }
        match (&m.layout, &m.version) {
            (Layout::FlywayRepeatable, _) => repeatable.push(m),
            (Layout::FlywayBaseline, _) => baselines.push(m),
            (_, Some(_)) => versioned.push(m),
            (_, None) => unversioned.push(m),
        }
    }
    // Flyway starts an empty database from its latest baseline migration.
    baselines.sort_by(|a, b| a.version.cmp(&b.version));
    check_duplicates(&baselines)?;
    if let Some(baseline) = baselines.pop() {
        versioned.retain(|m| m.version > baseline.version);
        versioned.push(baseline);
    }
    versioned.sort_by(|a, b| a.version.cmp(&b.version));
    check_duplicates(&versioned)?;
    if !unversioned.is_empty() {
        if !versioned.is_empty() || !repeatable.is_empty() {
            let files: Vec<String> = unversioned.iter().map(Migration::name).collect();
            return Err(MigrationError::Unordered {
                dir: dir.to_path_buf(),
                files: files.join(", "),
            });
        }
        // No file has a version: name order (the paths are sorted already).
        return Ok(unversioned);
    }
    repeatable.sort_by(|a, b| a.description.cmp(&b.description));
    versioned.extend(repeatable);
    Ok(versioned)
}

fn check_duplicates(sorted: &[Migration]) -> Result<(), MigrationError> {
    for pair in sorted.windows(2) {
        if pair[0].version == pair[1].version {
            return Err(MigrationError::Duplicate {
                first: pair[0].path.clone(),
                second: pair[1].path.clone(),
                version: pair[1]
                    .version
                    .as_ref()
                    .map(Version::to_string)
                    .unwrap_or_default(),
            });
        }
    }
    Ok(())
}

/// Splits `sql` into statements at the `;` that end them (not those inside strings, quoted
/// names, comments or PostgreSQL's dollar quotes), each with the line (1-based) it starts on.
/// Statements that are only comments and blanks are left out. With [`Dialect::MySql`], the
/// client's `DELIMITER <d>` lines change the delimiter, as the `mysql` client does.
///
/// ```
/// use seaworthy::kit::migrations::{split_statements, Dialect};
///
/// let sql = "CREATE TABLE t (a text DEFAULT ';');\n-- a; comment\nCREATE FUNCTION f() RETURNS int\n  AS $$ SELECT 1; $$ LANGUAGE sql;\n";
/// let statements = split_statements(sql, Dialect::Postgres);
/// assert_eq!(statements.len(), 2);
/// assert_eq!(statements[1].line, 3);
/// ```
pub fn split_statements(sql: &str, dialect: Dialect) -> Vec<Statement> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut delimiter = ";".to_string();
    let mut start = 0;
    let mut i = 0;
    let mut at_line_start = true;
    // A statement starts after the comments before it: its line is its first word's.
    let push = |out: &mut Vec<Statement>, from: usize, to: usize| {
        let text = &sql[from..to];
        let skip = leading_comments(text, dialect);
        if skip == text.len() {
            return;
        }
        out.push(Statement {
            sql: text[skip..].trim_end().to_string(),
            line: 1 + sql[..from + skip].matches('\n').count(),
        });
    };
    while i < bytes.len() {
        let rest = &sql[i..];
        if dialect == Dialect::MySql && at_line_start {
            let line_end = rest.find('\n').map_or(sql.len(), |n| i + n);
            let line = sql[i..line_end].trim();
            if line.len() > 10 && line[..10].eq_ignore_ascii_case("delimiter ") {
                push(&mut out, start, i);
                delimiter = line[10..].trim().to_string();
                i = (line_end + 1).min(sql.len());
                start = i;
                continue;
            }
        }
        let c = bytes[i];
        at_line_start = false;
        if rest.starts_with(delimiter.as_str()) && !delimiter.is_empty() {
            push(&mut out, start, i);
            i += delimiter.len();
            start = i;
            continue;
        }
        i = match c {
            b'\n' => {
                at_line_start = true;
                i + 1
            }
            b'-' if rest.starts_with("--")
                && (dialect == Dialect::Postgres
                    || rest[2..].starts_with(|c: char| c.is_whitespace())
                    || rest.len() == 2) =>
            {
                rest.find('\n').map_or(sql.len(), |n| i + n)
            }
            b'#' if dialect == Dialect::MySql => rest.find('\n').map_or(sql.len(), |n| i + n),
            b'/' if rest.starts_with("/*") => i + block_comment(rest, dialect),
            b'\'' => {
                let backslashes = dialect == Dialect::MySql
                    || (i > 0
                        && matches!(bytes[i - 1], b'E' | b'e')
                        && (i < 2 || !bytes[i - 2].is_ascii_alphanumeric()));
                i + quoted(rest, b'\'', backslashes)
            }
            b'"' => i + quoted(rest, b'"', dialect == Dialect::MySql),
            b'`' if dialect == Dialect::MySql => i + quoted(rest, b'`', false),
            b'$' if dialect == Dialect::Postgres => i + dollar_quoted(rest, bytes, i),
            _ => i + rest.chars().next().map_or(1, char::len_utf8),
        };
    }
    push(&mut out, start, sql.len());
    out
}

/// The length of the blanks and comments at the start of `text`.
fn leading_comments(text: &str, dialect: Dialect) -> usize {
    let mut rest = text.trim_start();
    loop {
        if rest.starts_with("--") || (dialect == Dialect::MySql && rest.starts_with('#')) {
            rest = rest.find('\n').map_or("", |n| &rest[n..]).trim_start();
        } else if rest.starts_with("/*") {
            rest = rest[block_comment(rest, dialect)..].trim_start();
        } else {
            return text.len() - rest.len();
        }
    }
}

/// The length of the block comment at the start of `rest` (nested in PostgreSQL).
fn block_comment(rest: &str, dialect: Dialect) -> usize {
    let bytes = rest.as_bytes();
    let mut depth = 0;
    let mut i = 0;
    while i < bytes.len() {
        if rest[i..].starts_with("/*") && (depth == 0 || dialect == Dialect::Postgres) {
            depth += 1;
            i += 2;
        } else if rest[i..].starts_with("*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    rest.len()
}

/// The length of the quoted text at the start of `rest` (quote included; a doubled quote, and
/// with `backslashes` a backslash, escapes).
fn quoted(rest: &str, quote: u8, backslashes: bool) -> usize {
    let bytes = rest.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslashes => i += 2,
            b if b == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    rest.len()
}

/// The length of the dollar-quoted text at the start of `rest` (`$$…$$`, `$tag$…$tag$`), or 1
/// when the `$` starts none (a parameter `$1`, a `$` inside a name).
fn dollar_quoted(rest: &str, all: &[u8], at: usize) -> usize {
    if at > 0 && (all[at - 1].is_ascii_alphanumeric() || all[at - 1] == b'_') {
        return 1;
    }
    let bytes = rest.as_bytes();
    let mut end = 1;
    while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
        end += 1;
    }
    if bytes.get(end) != Some(&b'$') || bytes.get(1).is_some_and(u8::is_ascii_digit) {
        return 1;
    }
    let tag = &rest[..=end];
    match rest[tag.len()..].find(tag) {
        Some(n) => tag.len() + n + tag.len(),
        None => rest.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of migration files, removed when dropped.
    struct Dir(PathBuf);

    impl Dir {
        fn new(files: &[(&str, &str)]) -> Dir {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "sw-migrations-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            for (name, sql) in files {
                let path = dir.join(name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, sql).unwrap();
            }
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }

        fn read(&self) -> Result<Vec<Migration>, MigrationError> {
            read_migrations(&self.0)
        }

        /// The migrations' files, relative to the directory.
        fn order(&self) -> Vec<String> {
            self.read()
                .unwrap()
                .iter()
                .map(|m| {
                    let path = m.path.strip_prefix(&self.0).unwrap();
                    path.to_string_lossy().replace('\\', "/")
                })
                .collect()
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn versions_compare_as_numbers_part_by_part() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("2") < v("10"));
        assert!(v("1.1") < v("1.10"));
        assert!(v("1_1") < v("1.2"));
        assert_eq!(v("1.0"), v("1"));
        assert_eq!(v("001"), v("1"));
        assert!(v("20220101000000") < v("20220101000001"));
        assert_eq!(v("2021-01-01-000000").parts(), [20210101000000]);
        assert_eq!(v("1.2.10").parts(), [1, 2, 10]);
        for bad in ["", "1a", "1..2", "v1", &"9".repeat(40)] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn sqlx_reversible_runs_the_up_files_only() {
        let dir = Dir::new(&[
            ("20220101000000_init.up.sql", "CREATE TABLE a (id int);"),
            ("20220101000000_init.down.sql", "DROP TABLE a;"),
            ("20220102000000_users.up.sql", "CREATE TABLE b (id int);"),
            ("20220103000000_orders.down.sql", "DROP TABLE c;"),
        ]);
        assert_eq!(
            dir.order(),
            ["20220101000000_init.up.sql", "20220102000000_users.up.sql"]
        );
        let migrations = dir.read().unwrap();
        assert_eq!(migrations[0].layout, Layout::UpDown);
        assert_eq!(migrations[0].description, "init");
        assert_eq!(
            migrations[1].version.as_ref().unwrap().parts(),
            [20220102000000]
        );
        assert!(migrations.iter().all(|m| m.transaction));
    }

    #[test]
    fn golang_migrate_orders_by_number() {
        let mut files = Vec::new();
        let names: Vec<(String, String)> = [1, 2, 10, 11]
            .iter()
            .flat_map(|n| {
                [
                    (format!("{n}_step.up.sql"), format!("SELECT {n};")),
                    (format!("{n}_step.down.sql"), "SELECT 0;".to_string()),
                ]
            })
            .collect();
        for (name, sql) in &names {
            files.push((name.as_str(), sql.as_str()));
        }
        files.push(("000012_padded.up.sql", "SELECT 12;"));
        let dir = Dir::new(&files);
        assert_eq!(
            dir.order(),
            [
                "1_step.up.sql",
                "2_step.up.sql",
                "10_step.up.sql",
                "11_step.up.sql",
                "000012_padded.up.sql"
            ]
        );
    }

    #[test]
    fn plain_numbered_files_order_by_number_and_sqlx_no_transaction_is_read() {
        let dir = Dir::new(&[
            ("10_y.sql", "SELECT 10;"),
            ("2_x.sql", "SELECT 2;"),
            ("1_init.sql", "SELECT 1;"),
            (
                "20_index.sql",
                "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (id);\n",
            ),
            ("README.md", "not a migration"),
            (".keep", ""),
        ]);
        assert_eq!(
            dir.order(),
            ["1_init.sql", "2_x.sql", "10_y.sql", "20_index.sql"]
        );
        let migrations = dir.read().unwrap();
        assert!(migrations[..3].iter().all(|m| m.transaction));
        assert!(!migrations[3].transaction);
        assert!(migrations.iter().all(|m| m.layout == Layout::Plain));
    }

    #[test]
    fn hand_made_numbered_names_are_versions() {
        let dir = Dir::new(&[
            ("10-indexes.sql", "SELECT 10;"),
            ("2.seed.sql", "SELECT 2;"),
            ("001-create_users.sql", "SELECT 1;"),
            ("2021-01-01-000000_dated.sql", "SELECT 4;"),
        ]);
        assert_eq!(
            dir.order(),
            [
                "001-create_users.sql",
                "2.seed.sql",
                "10-indexes.sql",
                "2021-01-01-000000_dated.sql"
            ]
        );
        assert_eq!(dir.read().unwrap()[0].description, "create_users");
        // `1.2.sql` is neither: no version, and so not orderable among the others.
        let dir = Dir::new(&[("1_a.sql", "SELECT 1;"), ("1.2.sql", "SELECT 2;")]);
        assert!(matches!(dir.read(), Err(MigrationError::Unordered { .. })));
    }

    #[test]
    fn diesel_runs_every_up_sql_in_version_order() {
        let dir = Dir::new(&[
            (
                "00000000000000_diesel_initial_setup/up.sql",
                "CREATE FUNCTION diesel_manage_updated_at() RETURNS void AS $$ BEGIN END; $$ LANGUAGE plpgsql;",
            ),
            ("00000000000000_diesel_initial_setup/down.sql", "DROP FUNCTION x;"),
            ("2021-01-02-000000_create_posts/up.sql", "CREATE TABLE posts (id int);"),
            ("2021-01-02-000000_create_posts/down.sql", "DROP TABLE posts;"),
            (
                "2021-01-02-000000_create_posts/metadata.toml",
                "run_in_transaction = false\n",
            ),
            ("2021-01-01-000000_create_users/up.sql", "CREATE TABLE users (id int);"),
            ("2021-01-01-000000_create_users/down.sql", "DROP TABLE users;"),
            ("20210103000000_no_dashes/up.sql", "SELECT 3;"),
            (".keep", ""),
        ]);
        assert_eq!(
            dir.order(),
            [
                "00000000000000_diesel_initial_setup/up.sql",
                "2021-01-01-000000_create_users/up.sql",
                "2021-01-02-000000_create_posts/up.sql",
                "20210103000000_no_dashes/up.sql",
            ]
        );
        let migrations = dir.read().unwrap();
        assert_eq!(migrations[1].layout, Layout::Diesel);
        assert_eq!(migrations[1].description, "create_users");
        assert!(migrations[1].transaction);
        assert!(!migrations[2].transaction);
    }

    #[test]
    fn refinery_orders_v10_after_v9_and_runs_its_unversioned_files() {
        let mut names: Vec<String> = (1..=10).map(|n| format!("V{n}__step_{n}.sql")).collect();
        names.push("U11__unversioned.sql".into());
        let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "SELECT 1;")).collect();
        let dir = Dir::new(&files);
        let order = dir.order();
        assert_eq!(order.len(), 11);
        assert_eq!(order[8], "V9__step_9.sql");
        assert_eq!(order[9], "V10__step_10.sql");
        assert_eq!(order[10], "U11__unversioned.sql");
        assert!(dir
            .read()
            .unwrap()
            .iter()
            .all(|m| m.layout == Layout::Flyway));
    }

    #[test]
    fn flyway_skips_undo_runs_repeatables_last_and_reads_subdirectories() {
        let dir = Dir::new(&[
            ("V1__init.sql", "SELECT 1;"),
            ("V1.1__add_column.sql", "SELECT 11;"),
            ("V1_2__underscored.sql", "SELECT 12;"),
            ("V2__orders.sql", "SELECT 2;"),
            ("U2__orders.sql", "DROP TABLE orders;"),
            ("R__views.sql", "CREATE VIEW v AS SELECT 1;"),
            ("R__functions.sql", "SELECT 'f';"),
            ("V3__index.sql", "CREATE INDEX CONCURRENTLY i ON t (id);"),
            ("V3__index.sql.conf", "executeInTransaction=false\n"),
            ("release_2/V10__later.sql", "SELECT 10;"),
            (
                "release_2/notes.sql",
                "not a flyway file: ignored below the top",
            ),
        ]);
        assert_eq!(
            dir.order(),
            [
                "V1__init.sql",
                "V1.1__add_column.sql",
                "V1_2__underscored.sql",
                "V2__orders.sql",
                "V3__index.sql",
                "release_2/V10__later.sql",
                "R__functions.sql",
                "R__views.sql",
            ]
        );
        let migrations = dir.read().unwrap();
        assert!(!migrations[4].transaction);
        assert_eq!(migrations[6].layout, Layout::FlywayRepeatable);
        assert!(migrations[6].version.is_none());
    }

    #[test]
    fn flyway_starts_from_its_latest_baseline() {
        let dir = Dir::new(&[
            ("V1__a.sql", "SELECT 1;"),
            ("V2__b.sql", "SELECT 2;"),
            ("B2__baseline.sql", "SELECT 'b2';"),
            ("V3__c.sql", "SELECT 3;"),
        ]);
        assert_eq!(dir.order(), ["B2__baseline.sql", "V3__c.sql"]);
    }

    #[test]
    fn dbmate_runs_only_its_up_section_with_the_file_line_numbers() {
        // Written by an editor that puts a byte order mark first.
        let sql = "\u{feff}-- migrate:up\nCREATE TABLE users (id int);\nINSERT INTO users VALUES (1);\n\n-- migrate:down\nDROP TABLE users;\n";
        let dir = Dir::new(&[
            ("20200101120000_create_users.sql", sql),
            (
                "20200102120000_index.sql",
                "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON users (id);\n-- migrate:down\nDROP INDEX i;\n",
            ),
        ]);
        let migrations = dir.read().unwrap();
        assert_eq!(migrations[0].layout, Layout::Dbmate);
        assert!(!migrations[0].sql.contains("DROP"));
        assert!(migrations[0].sql.contains("INSERT INTO users"));
        assert_eq!(
            migrations[0].sql.lines().nth(2),
            Some("INSERT INTO users VALUES (1);")
        );
        assert!(migrations[0].transaction);
        assert!(!migrations[1].transaction);
        let statements = migrations[0].statements(Dialect::Postgres);
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[1].line, 3);
    }

    #[test]
    fn goose_runs_its_up_section_and_keeps_statement_blocks_whole() {
        let sql = "\
-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE t (id int);
-- +goose StatementBegin
CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN
  SET NEW.id = 1;
END;
-- +goose StatementEnd
CREATE INDEX CONCURRENTLY i ON t (id);

-- +goose Down
DROP TABLE t;
";
        let dir = Dir::new(&[
            ("00002_trigger.sql", sql),
            (
                "00001_init.sql",
                "-- +goose up\nCREATE TABLE a (id int);\n-- +goose down\nDROP TABLE a;\n",
            ),
        ]);
        assert_eq!(dir.order(), ["00001_init.sql", "00002_trigger.sql"]);
        let migrations = dir.read().unwrap();
        let goose = &migrations[1];
        assert_eq!(goose.layout, Layout::Goose);
        assert!(!goose.transaction);
        assert!(migrations[0].transaction);
        assert!(!goose.sql.contains("DROP"));
        let statements = goose.statements(Dialect::MySql);
        let lines: Vec<usize> = statements.iter().map(|s| s.line).collect();
        assert_eq!(lines, [3, 5, 9], "{statements:?}");
        assert!(statements[1].sql.starts_with("CREATE TRIGGER"));
        assert!(statements[1].sql.ends_with("END;"));
    }

    #[test]
    fn goose_envsub_expands_environment_variables() {
        // PATH is set in every process that runs tests.
        let path = std::env::var("PATH").unwrap();
        let sql = "\
-- +goose Up
SELECT '${PATH}';
-- +goose ENVSUB ON
SELECT '${PATH}', '$PATH', '${SW_MIGRATIONS_TEST_UNSET:-none}';
CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1 $body$ LANGUAGE sql;
-- +goose ENVSUB OFF
SELECT '${PATH}';
";
        let dir = Dir::new(&[("1_regions.sql", sql)]);
        let migrations = dir.read().unwrap();
        let lines: Vec<&str> = migrations[0].sql.lines().collect();
        assert_eq!(lines[1], "SELECT '${PATH}';");
        assert_eq!(lines[3], format!("SELECT '{path}', '{path}', 'none';"));
        assert!(lines[4].contains("$body$ SELECT 1 $body$"), "{}", lines[4]);
        assert_eq!(lines[6], "SELECT '${PATH}';");
        let dir = Dir::new(&[(
            "1_regions.sql",
            "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${SW_MIGRATIONS_TEST_UNSET?set it}';\n",
        )]);
        let error = dir.read().unwrap_err().to_string();
        assert!(
            error.contains("line 3") && error.contains("set it"),
            "{error}"
        );
    }

    #[test]
    fn sections_without_an_up_are_an_error() {
        let dir = Dir::new(&[("1_x.sql", "\u{feff}-- migrate:down\nDROP TABLE t;\n")]);
        let error = dir.read().unwrap_err().to_string();
        assert!(
            error.contains("1_x.sql") && error.contains("migrate:up"),
            "{error}"
        );
        let dir = Dir::new(&[(
            "1_x.sql",
            "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n",
        )]);
        let error = dir.read().unwrap_err().to_string();
        assert!(error.contains("StatementEnd"), "{error}");
    }

    #[test]
    fn the_same_version_twice_names_both_files() {
        let dir = Dir::new(&[("1_a.sql", "SELECT 1;"), ("001_b.sql", "SELECT 2;")]);
        let error = dir.read().unwrap_err();
        assert!(matches!(error, MigrationError::Duplicate { .. }));
        let text = error.to_string();
        assert!(
            text.contains("1_a.sql") && text.contains("001_b.sql"),
            "{text}"
        );
        let dir = Dir::new(&[("V1__a.sql", "SELECT 1;"), ("V1.0__b.sql", "SELECT 2;")]);
        assert!(matches!(dir.read(), Err(MigrationError::Duplicate { .. })));
        let dir = Dir::new(&[("1_a.up.sql", "SELECT 1;"), ("1_a.sql", "SELECT 2;")]);
        assert!(matches!(dir.read(), Err(MigrationError::Duplicate { .. })));
    }

    #[test]
    fn unversioned_files_among_versioned_ones_cannot_be_ordered() {
        let dir = Dir::new(&[("1_schema.sql", "SELECT 1;"), ("seed.sql", "SELECT 2;")]);
        let error = dir.read().unwrap_err();
        assert!(matches!(error, MigrationError::Unordered { .. }));
        assert!(error.to_string().contains("seed.sql"), "{error}");
        // With no versions at all: name order.
        let dir = Dir::new(&[("b_seed.sql", "SELECT 2;"), ("a_schema.sql", "SELECT 1;")]);
        assert_eq!(dir.order(), ["a_schema.sql", "b_seed.sql"]);
        let dir = Dir::new(&[("init.up.sql", "SELECT 1;")]);
        let error = dir.read().unwrap_err().to_string();
        assert!(
            error.contains("init.up.sql") && error.contains("version"),
            "{error}"
        );
        let dir = Dir::new(&[("create_users/up.sql", "SELECT 1;")]);
        let error = dir.read().unwrap_err().to_string();
        assert!(error.contains("create_users"), "{error}");
    }

    #[test]
    fn an_empty_or_missing_directory_is_an_error() {
        let dir = Dir::new(&[("README.md", "nothing")]);
        let error = dir.read().unwrap_err();
        assert!(matches!(error, MigrationError::Empty { .. }), "{error}");
        let missing = dir.0.join("missing");
        let error = read_migrations(&missing).unwrap_err();
        assert!(error.to_string().contains("missing"), "{error}");
    }

    #[test]
    fn postgres_statements_split_outside_strings_comments_and_dollar_quotes() {
        let sql = "\
CREATE TABLE t (a text DEFAULT 'x;y', \"b;c\" int);
/* a; /* nested; */ comment */
INSERT INTO t (a) VALUES (E'it\\'s; here');
CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;
DO $$ BEGIN PERFORM 1; END $$;
-- trailing; comment
";
        let statements = split_statements(sql, Dialect::Postgres);
        let lines: Vec<usize> = statements.iter().map(|s| s.line).collect();
        assert_eq!(lines, [1, 3, 4, 5], "{statements:?}");
        assert!(statements[1].sql.ends_with("here')"), "{statements:?}");
        assert!(statements[2].sql.ends_with("LANGUAGE sql"));
        assert_eq!(
            split_statements("SELECT $1, a$b$c;", Dialect::Postgres).len(),
            1
        );
        assert!(split_statements("-- only\n/* comments */\n", Dialect::Postgres).is_empty());
    }

    #[test]
    fn mysql_statements_follow_the_clients_delimiter() {
        let sql = "\
CREATE TABLE t (a text DEFAULT 'x\\';y'); # a; comment
DELIMITER //
CREATE PROCEDURE p() BEGIN SELECT 1; SELECT `a;b`; END//
DELIMITER ;
INSERT INTO t VALUES (\"q;\");
";
        let statements = split_statements(sql, Dialect::MySql);
        let lines: Vec<usize> = statements.iter().map(|s| s.line).collect();
        assert_eq!(lines, [1, 3, 5], "{statements:?}");
        assert!(statements[1].sql.ends_with("END"), "{statements:?}");
    }

    #[test]
    fn positions_map_to_lines() {
        assert_eq!(line_of("a\nb\nc", 1), 1);
        assert_eq!(line_of("a\nb\nc", 3), 2);
        assert_eq!(line_of("a\nb\nc", 5), 3);
    }
}
