//! The spec file: container-structure-test schema 2.0.0, read unchanged, plus Seaworthy's
//! `daemonTests` extension.
//!
//! Everything is checked while parsing (unknown fields, types, regexes — `isRegex` values
//! included —, empty commands, permission strings, durations, the env file and bind mounts of
//! `containerRunOptions`), so every spec error carries the file, line and column, and the path of
//! the field (`commandTests[2].exitCode`).

mod env_var;
mod extension;
#[cfg(test)]
mod fuzz;
mod json;
mod values;

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::Deserializer;
use serde::Deserialize;

pub use extension::{DaemonTest, HttpCheck, LogExpectation, ProcessCheck, StreamName, WaitSpec};
use values::{bool11, parse_str, program};
pub use values::{
    one_line, parse_duration, Argv, BindMount, EnvFile, Pattern, Permissions, Timeout,
};

/// A spec file, parsed.
#[derive(Debug, Clone)]
pub struct SpecFile {
    /// The path as given on the command line.
    pub path: PathBuf,
    /// Its contents.
    pub spec: Spec,
}

/// A spec file that could not be used: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file.
    pub file: String,
    /// Line and column (1-based), when known.
    pub location: Option<(usize, usize)>,
    /// What is wrong, starting with the field's path.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, column)) => write!(f, "{}:{line}:{column}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for SpecError {}

thread_local! {
    /// The directory of the spec being parsed: relative paths inside it resolve against it.
    static SPEC_DIR: RefCell<PathBuf> = RefCell::new(PathBuf::from("."));
    /// Whether the spec being parsed declared schemaVersion 1.0.0 (so far).
    static SCHEMA_V1: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Reads and checks a spec file.
pub fn load(path: &Path) -> Result<SpecFile, SpecError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SpecError {
        file: file.clone(),
        location: None,
        message: format!("cannot read the spec: {e}"),
    })?;
    load_text(path, &text)
}

/// Checks `text` as the contents of the spec file at `path` (relative paths in it resolve
/// against the file's directory).
pub fn load_text(path: &Path, text: &str) -> Result<SpecFile, SpecError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    SPEC_DIR.with(|d| *d.borrow_mut() = dir);
    // As container-structure-test: a `.json` spec is read by a JSON reader (lenient), any other
    // by the strict YAML one.
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let parsed = if is_json {
        json::parse(text)
    } else {
        parse(text)
    };
    let spec = parsed.map_err(|(location, message)| SpecError {
        file: path.display().to_string(),
        location,
        message,
    })?;
    Ok(SpecFile {
        path: path.to_path_buf(),
        spec,
    })
}

/// Parses spec text; the error is `(line and column, message)`.
pub fn parse(text: &str) -> Result<Spec, (Option<(usize, usize)>, String)> {
    if let Some(merged) = as_yaml_v2_reads(text, true) {
        return parse_yaml(&merged).map_err(|(_, message)| {
            (
                None,
                format!("{message} (in the spec with its `<<` merge keys applied)"),
            )
        });
    }
    let error = match parse_yaml(text) {
        Ok(spec) => return Ok(spec),
        // An explicit null where a list is expected: the empty list, as there.
        Err(e)
            if e.1
                .contains("invalid type: unit value, expected a sequence") =>
        {
            match as_yaml_v2_reads(text, false).map(|t| parse_yaml(&t)) {
                Some(Ok(spec)) => return Ok(spec),
                _ => return Err(e),
            }
        }
        Err(e) => e,
    };
    let (None, message) = error else {
        return Err(error);
    };
    // A few errors come without a location (a second YAML document, most often made by a line
    // indented less than the first): the first line at which the text fails the same way.
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let fails_the_same =
        |n: usize| matches!(parse_yaml(&lines[..n].concat()), Err((_, m)) if m == message);
    let (mut low, mut high) = (1, lines.len().max(1));
    while low < high {
        let middle = (low + high) / 2;
        if fails_the_same(middle) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    let line = lines.get(high - 1).copied().unwrap_or_default();
    let column = line.len() - line.trim_start_matches(' ').len() + 1;
    let message = if message.contains("more than one document") {
        "a second YAML document starts here, and a spec is one document (is this line indented \
         less than the lines before it, or does a `---` or `...` precede it?)"
            .to_string()
    } else {
        message
    };
    Err((Some((high, column)), message))
}

/// `text` as container-structure-test's parser (gopkg.in/yaml.v2) reads it where serde_norway
/// reads it otherwise, written out again: YAML merge keys (`<<: *anchor`) applied, and keys
/// whose value is `null` (`~`, or nothing after an explicit `null`) dropped, as a null list
/// is an empty one there. `None` when the text is not YAML (the parse says why), or when
/// `merges_only` and it has no merge key.
fn as_yaml_v2_reads(text: &str, merges_only: bool) -> Option<String> {
    use serde_norway::Value;
    fn has_merge_key(v: &Value) -> bool {
        match v {
            Value::Mapping(m) => m
                .iter()
                .any(|(k, v)| k.as_str() == Some("<<") || has_merge_key(v)),
            Value::Sequence(s) => s.iter().any(has_merge_key),
            Value::Tagged(t) => has_merge_key(&t.value),
            _ => false,
        }
    }
    fn drop_nulls(v: &mut Value) {
        match v {
            Value::Mapping(m) => {
                m.retain(|_, v| !v.is_null());
                m.values_mut().for_each(drop_nulls);
            }
            Value::Sequence(s) => s.iter_mut().for_each(drop_nulls),
            _ => {}
        }
    }
    if merges_only && !text.contains("<<") {
        return None;
    }
    let mut value: Value = serde_norway::from_str(text).ok()?;
    if merges_only && !has_merge_key(&value) {
        return None;
    }
    value.apply_merge().ok()?;
    drop_nulls(&mut value);
    serde_norway::to_string(&value).ok()
}

/// The spec in `text`, or serde_norway's error: `(line and column, when known, message)`.
fn parse_yaml(text: &str) -> Result<Spec, (Option<(usize, usize)>, String)> {
    // Known before the commands are read, wherever the file puts the version (CST reads the
    // version in a first pass).
    let v1 = text.contains("1.0.0")
        && serde_norway::from_str::<serde_norway::Value>(text)
            .ok()
            .is_some_and(|v| v["schemaVersion"].as_str() == Some("1.0.0"));
    SCHEMA_V1.with(|v| v.set(v1));
    let parsed = env_var::parse_located(|| serde_norway::from_str::<Spec>(text)).map_err(|e| {
        let location = e.location().map(|l| (l.line(), l.column()));
        let mut message = e.to_string();
        // The location is reported in front; drop serde_norway's " at line L column C".
        if let Some((line, column)) = location {
            message = message.replacen(&format!(" at line {line} column {column}"), "", 1);
        }
        (location, message)
    })?;
    parsed.finish().map_err(|message| (None, message))
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    /// `2.0.0` or `1.0.0`.
    pub schema_version: SchemaVersion,
    /// Environment variables of every command (and daemon) test.
    #[serde(default)]
    pub global_env_vars: Vec<EnvVar>,
    /// How containers of the image are run.
    #[serde(default)]
    pub container_run_options: RunOptions,
    /// Commands to run, with expectations on their output and exit code.
    #[serde(default)]
    pub command_tests: Vec<CommandTest>,
    /// Paths that must (not) exist, with their mode and owner.
    #[serde(default)]
    pub file_existence_tests: Vec<FileExistenceTest>,
    /// Files whose contents must (not) match regexes.
    #[serde(default)]
    pub file_content_tests: Vec<FileContentTest>,
    /// Expectations on the image's configuration.
    #[serde(default)]
    pub metadata_test: Option<MetadataTest>,
    /// Copyright files to check, as container-structure-test checks them.
    #[serde(default)]
    pub license_tests: Vec<LicenseTest>,
    /// Seaworthy's extension: tests of the image running as a daemon.
    #[serde(default)]
    pub daemon_tests: Vec<DaemonTest>,
    /// What this spec relies on that reads differently from container-structure-test (or from
    /// its current release), one line each, printed before the run.
    #[serde(skip)]
    pub notices: Vec<String>,
}

impl Spec {
    /// Splits schema 1.0.0's command lists into `command` and `args`, and refuses the fields
    /// 1.0.0 does not have (container-structure-test reads each version strictly), saying how
    /// 2.0.0 spells them.
    fn finish(mut self) -> Result<Spec, String> {
        if let Some(m) = &mut self.metadata_test {
            for (old, new, legacy, list) in [
                ("env", "envVars", &mut m.env, &mut m.env_vars),
                (
                    "unboundEnv",
                    "unboundEnvVars",
                    &mut m.unbound_env,
                    &mut m.unbound_env_vars,
                ),
            ] {
                if !legacy.is_empty() {
                    list.append(legacy);
                    self.notices.push(format!(
                        "metadataTest.{old} is container-structure-test's spelling before \
                         1.13 (its releases since refuse it): read as metadataTest.{new}"
                    ));
                }
            }
        }
        let v1 = self.schema_version == SchemaVersion::V1;
        let commands = self.command_tests.iter_mut().chain(
            self.daemon_tests
                .iter_mut()
                .flat_map(|d| d.command_tests.iter_mut()),
        );
        for (i, t) in commands.enumerate() {
            let Some(list) = t.command.strip_prefix('\0') else {
                if v1 {
                    return Err(format!(
                        "commandTests[{i}].command: schemaVersion 1.0.0 writes a command as a list, \
                         [{:?}, ...]; set `schemaVersion: 2.0.0` for `command: {:?}` and `args`",
                        t.command, t.command
                    ));
                }
                continue;
            };
            if !t.args.is_empty() {
                return Err(format!(
                    "commandTests[{i}].args: schemaVersion 1.0.0 has no `args` (its `command` \
                     list holds them); set `schemaVersion: 2.0.0` to use `args`"
                ));
            }
            let mut argv: Vec<String> = list.split('\0').map(str::to_string).collect();
            t.args = argv.split_off(1);
            t.command = argv.pop().unwrap_or_default();
        }
        if !v1 {
            return Ok(self);
        }
        let run = &self.container_run_options;
        let only_v2 = [
            ("metadataTest", self.metadata_test.is_some()),
            (
                "containerRunOptions",
                run.user.is_some()
                    || run.privileged
                    || run.allocate_tty
                    || run.env_file.is_some()
                    || !run.env_vars.is_empty()
                    || !run.capabilities.is_empty()
                    || !run.bind_mounts.is_empty(),
            ),
            ("daemonTests", !self.daemon_tests.is_empty()),
        ];
        if let Some((field, _)) = only_v2.iter().find(|(_, used)| *used) {
            return Err(format!(
                "{field}: schemaVersion 1.0.0 has no `{field}` (a 2.0.0 field): set \
                 `schemaVersion: 2.0.0` to use it"
            ));
        }
        for (i, t) in self.file_existence_tests.iter().enumerate() {
            let used = [
                ("uid", t.uid.is_some()),
                ("gid", t.gid.is_some()),
                ("isExecutableBy", t.is_executable_by.is_some()),
            ];
            if let Some((field, _)) = used.iter().find(|(_, used)| *used) {
                return Err(format!(
                    "fileExistenceTests[{i}].{field}: schemaVersion 1.0.0 has no `{field}` (a \
                     2.0.0 field): set `schemaVersion: 2.0.0` to use it"
                ));
            }
        }
        Ok(self)
    }
}

/// The schema version: `2.0.0`, or `1.0.0` (read as container-structure-test reads it: command
/// lists, no metadata or run options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaVersion {
    /// `1.0.0`.
    V1,
    /// `2.0.0`.
    V2,
}

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "the schema version", |v| match v {
            "2.0.0" => Ok(SchemaVersion::V2),
            "1.0.0" => {
                SCHEMA_V1.with(|v1| v1.set(true));
                Ok(SchemaVersion::V1)
            }
            _ => Err(format!(
                "unsupported schemaVersion {v:?} (seaworthy reads 2.0.0 and 1.0.0)"
            )),
        })
    }
}

/// A key and a value (`envVars`, `labels`, `globalEnvVars`, HTTP `headers`), the value a regex
/// when `isRegex`, compiled while parsing (see [`env_var`]).
#[derive(Debug, Clone)]
pub struct EnvVar {
    /// The name.
    pub key: String,
    /// The value (empty when not given).
    pub value: String,
    /// Whether `value` is a regex.
    pub is_regex: bool,
    /// `value` compiled, when `is_regex`.
    pub pattern: Option<Pattern>,
}

impl EnvVar {
    /// Whether `actual` is what this entry expects: equal to the value, or matching it when it is
    /// a regex.
    pub fn accepts(&self, actual: &str) -> bool {
        match &self.pattern {
            Some(p) => p.is_match(actual),
            None => actual == self.value,
        }
    }
}

/// `containerRunOptions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunOptions {
    /// `--user`.
    pub user: Option<String>,
    /// `--privileged`.
    #[serde(default, deserialize_with = "bool11")]
    pub privileged: bool,
    /// `--tty`: command tests run their command (not their setup or teardown steps) with a
    /// terminal, as `docker exec --tty`, so what it writes to stderr is part of its stdout (with
    /// the terminal's `\r\n` line endings) and its stderr is empty.
    #[serde(default, deserialize_with = "bool11")]
    pub allocate_tty: bool,
    /// `--env-file`, read while parsing.
    #[serde(default)]
    pub env_file: Option<EnvFile>,
    /// Names of host environment variables to pass through (`-e NAME`); unset ones are skipped.
    #[serde(default)]
    pub env_vars: Vec<String>,
    /// `--cap-add`.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// `-v host:container[:ro]`; `./` and `../` host paths resolve against the spec's directory.
    #[serde(default)]
    pub bind_mounts: Vec<BindMount>,
}

impl RunOptions {
    /// The environment these options give a container: the env file, then the passed-through
    /// host variables.
    pub fn environment(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .env_file
            .as_ref()
            .map(|f| f.entries.clone())
            .unwrap_or_default();
        for name in &self.env_vars {
            if let Ok(value) = std::env::var(name) {
                env.push((name.clone(), value));
            }
        }
        env
    }

    /// A key identifying containers created with these options (so they can be shared).
    pub fn key(&self) -> String {
        format!(
            "{:?}|{}|{:?}|{:?}|{:?}",
            self.user,
            self.privileged,
            self.environment(),
            self.capabilities,
            self.bind_mounts.iter().map(|b| &b.spec).collect::<Vec<_>>()
        )
    }
}

/// A command test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommandTest {
    /// The test's name.
    pub name: String,
    /// Commands run before, in the same container.
    #[serde(default)]
    pub setup: Vec<Argv>,
    /// Commands run after, in the same container.
    #[serde(default)]
    pub teardown: Vec<Argv>,
    /// Environment variables of this test.
    #[serde(default)]
    pub env_vars: Vec<EnvVar>,
    /// The program (never empty).
    #[serde(deserialize_with = "program")]
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Regexes stdout must match.
    #[serde(default)]
    pub expected_output: Vec<Pattern>,
    /// Regexes stdout must not match.
    #[serde(default)]
    pub excluded_output: Vec<Pattern>,
    /// Regexes stderr must match.
    #[serde(default)]
    pub expected_error: Vec<Pattern>,
    /// Regexes stderr must not match.
    #[serde(default)]
    pub excluded_error: Vec<Pattern>,
    /// The expected exit code.
    #[serde(default)]
    pub exit_code: i64,
}

impl CommandTest {
    /// The command and its arguments.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.command.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// Whether the test changes its container (so it cannot share one).
    pub fn has_setup_or_teardown(&self) -> bool {
        !self.setup.is_empty() || !self.teardown.is_empty()
    }
}

/// A file existence test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileExistenceTest {
    /// The test's name.
    pub name: String,
    /// The path.
    pub path: String,
    /// Whether it must exist (default true).
    #[serde(default = "yes", deserialize_with = "bool11")]
    pub should_exist: bool,
    /// The mode as `ls -l` (`-rw-r--r--`) or Go (`Lrwxrwxrwx`, `urwxr-xr-x`) prints it.
    #[serde(default)]
    pub permissions: Option<Permissions>,
    /// The owner's user id (`-1`, container-structure-test's default: not checked).
    #[serde(default, deserialize_with = "owner_id")]
    pub uid: Option<i64>,
    /// The owner's group id (`-1`: not checked).
    #[serde(default, deserialize_with = "owner_id")]
    pub gid: Option<i64>,
    /// Who must be able to execute it.
    #[serde(default)]
    pub is_executable_by: Option<ExecutableBy>,
}

fn yes() -> bool {
    true
}

/// A `uid` or `gid`: `-1` is container-structure-test's "not checked".
fn owner_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.filter(|id| *id != -1))
}

/// A license test, as container-structure-test runs one: with `debian`, every package directory
/// under `/usr/share/doc` must hold a `copyright` file; that file and each of `files` must not
/// name a license container-structure-test refuses (`AGPL`, `WTFPL`, in any case).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LicenseTest {
    /// Whether to check the copyright file of every Debian package.
    #[serde(default, deserialize_with = "bool11")]
    pub debian: bool,
    /// More license files to check.
    #[serde(default, deserialize_with = "strings_or_null")]
    pub files: Vec<String>,
}

/// A list of strings, where `null` (a key with nothing after it) is the empty list.
fn strings_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// `isExecutableBy`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExecutableBy {
    /// The owner.
    Owner,
    /// The group.
    Group,
    /// Others.
    Other,
    /// Anyone of the three.
    Any,
}

/// A file content test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileContentTest {
    /// The test's name.
    pub name: String,
    /// The file (symbolic links are followed).
    pub path: String,
    /// Regexes the contents must match.
    #[serde(default)]
    pub expected_contents: Vec<Pattern>,
    /// Regexes the contents must not match.
    #[serde(default)]
    pub excluded_contents: Vec<Pattern>,
}

/// The metadata test.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetadataTest {
    /// Variables that must be set, with their values.
    #[serde(default)]
    pub env_vars: Vec<EnvVar>,
    /// Variables that must not be set (only `key` is used).
    #[serde(default)]
    pub unbound_env_vars: Vec<EnvVar>,
    /// `envVars` as container-structure-test spelled it before 1.13 (moved into `env_vars`).
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// `unboundEnvVars` as spelled before 1.13 (moved into `unbound_env_vars`).
    #[serde(default)]
    pub unbound_env: Vec<EnvVar>,
    /// Labels that must be set, with their values.
    #[serde(default)]
    pub labels: Vec<EnvVar>,
    /// Ports that must be exposed (`80`: port 80 under any protocol; `53/udp`: exactly).
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// Ports that must not be exposed.
    #[serde(default)]
    pub unexposed_ports: Vec<String>,
    /// The exact entrypoint (`[]`: none).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// The exact command (`[]`: none).
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// The working directory (empty: not checked, as in container-structure-test).
    #[serde(default)]
    pub workdir: Option<String>,
    /// Volumes that must be declared.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Volumes that must not be declared.
    #[serde(default)]
    pub unmounted_volumes: Vec<String>,
    /// The user (empty: not checked, as in container-structure-test).
    #[serde(default)]
    pub user: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        let (location, message) = parse(text).unwrap_err();
        let (line, column) = location.expect("a location");
        format!("{line}:{column}: {message}")
    }

    #[test]
    fn a_full_cst_file_parses() {
        let spec = parse(
            r#"
schemaVersion: 2.0.0
globalEnvVars:
  - key: PATH
    value: "/env/bin:$PATH"
commandTests:
  - name: "gunicorn flask"
    setup: [["virtualenv", "/env"], ["pip", "install", "gunicorn", "flask"]]
    command: "which"
    args: ["gunicorn"]
    expectedOutput: ["/env/bin/gunicorn"]
fileExistenceTests:
- name: 'Root'
  path: '/'
  shouldExist: true
  permissions: '-rw-r--r--'
  uid: 1000
  gid: 1000
  isExecutableBy: 'group'
fileContentTests:
- name: 'Debian Sources'
  path: '/etc/apt/sources.list'
  expectedContents: ['.*httpredir\.debian\.org.*']
  excludedContents: ['.*gce_debian_mirror.*']
metadataTest:
  envVars:
    - key: foo
      value: baz
  labels:
    - key: 'build-date'
      value: '^\d{4}-\d{2}-\d{2}$'
      isRegex: true
  exposedPorts: ["8080", "2345"]
  volumes: ["/test"]
  entrypoint: []
  cmd: ["/bin/bash"]
  workdir: "/app"
  user: "luke"
licenseTests:
- debian: true
  files: ["/foo/bar"]
"#,
        )
        .unwrap();
        assert_eq!(spec.command_tests[0].setup.len(), 2);
        assert_eq!(
            spec.file_existence_tests[0].is_executable_by,
            Some(ExecutableBy::Group)
        );
        let metadata = spec.metadata_test.unwrap();
        assert_eq!(metadata.entrypoint, Some(vec![]));
        assert!(metadata.labels[0].is_regex);
        assert_eq!(spec.license_tests.len(), 1);
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        assert_eq!(
            error_of("schemaVersion: 2.0.0\ncommandTests:\n  - name: a\n    command: x\n    comand: y\n"),
            "5:5: commandTests[0]: unknown field `comand`, expected one of `name`, `setup`, `teardown`, `envVars`, `command`, `args`, `expectedOutput`, `excludedOutput`, `expectedError`, `excludedError`, `exitCode`"
        );
        let e = error_of("schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: a\n    path: /x\n    permissions: rw-r--r--\n");
        assert!(
            e.starts_with("5:18: fileExistenceTests[0].permissions: invalid permissions"),
            "{e}"
        );
        let e = error_of("schemaVersion: 2.0.0\ncommandTests:\n  - name: a\n    command: x\n    expectedOutput: ['(']\n");
        assert!(
            e.starts_with("5:22: commandTests[0].expectedOutput[0]: invalid regex \"(\""),
            "{e}"
        );
        let e = error_of("schemaVersion: 3.0.0\n");
        assert!(
            e.starts_with("1:16: schemaVersion: unsupported schemaVersion \"3.0.0\""),
            "{e}"
        );
        let e = error_of("schemaVersion: 2.0.0\ncommandTests:\n  - name: a\n");
        assert_eq!(e, "3:5: commandTests[0]: missing field `command`");
        let e =
            error_of("schemaVersion: 2.0.0\ndaemonTests:\n  - name: a\n    startupTimeout: soon\n");
        assert!(
            e.starts_with("4:21: daemonTests[0].startupTimeout: invalid duration"),
            "{e}"
        );
        // A second document (here made by indenting the first line) is located where it starts.
        let e = error_of(" schemaVersion: 2.0.0\ncommandTests: []\n");
        assert!(
            e.starts_with("2:1: a second YAML document starts here"),
            "{e}"
        );
        let e = error_of("schemaVersion: 2.0.0\ncommandTests: []\n---\nx: 1\n");
        assert!(e.starts_with("3:1: a second YAML document"), "{e}");
        // Malformed YAML: the scanner's error has a location too.
        let e = error_of(
            "schemaVersion: 2.0.0\ncommandTests:\n  - name: a\n    command: x\n    args: [a, b\n    exitCode: 1\n",
        );
        assert!(e.starts_with("6:"), "{e}");
    }

    /// `(line:column: message)` of the error of a spec made of `body` after the schema line.
    fn error_in(body: &str) -> String {
        error_of(&format!("schemaVersion: 2.0.0\n{body}"))
    }

    #[test]
    fn every_regex_is_checked_while_parsing_at_its_line() {
        let bad = "'(x'";
        let cases = [
            (format!("commandTests:\n  - name: a\n    command: x\n    expectedOutput: [{bad}]\n"), "commandTests[0].expectedOutput[0]"),
            (format!("commandTests:\n  - name: a\n    command: x\n    excludedOutput: [{bad}]\n"), "commandTests[0].excludedOutput[0]"),
            (format!("commandTests:\n  - name: a\n    command: x\n    expectedError: [{bad}]\n"), "commandTests[0].expectedError[0]"),
            (format!("commandTests:\n  - name: a\n    command: x\n    excludedError: [{bad}]\n"), "commandTests[0].excludedError[0]"),
            (format!("fileContentTests:\n  - name: a\n    path: /x\n    expectedContents: [{bad}]\n"), "fileContentTests[0].expectedContents[0]"),
            (format!("fileContentTests:\n  - name: a\n    path: /x\n    excludedContents: [{bad}]\n"), "fileContentTests[0].excludedContents[0]"),
            // isRegex after the value, then before it.
            (format!("metadataTest:\n  envVars:\n    - key: A\n      value: {bad}\n      isRegex: true\n"), "metadataTest.envVars[0].value"),
            (format!("metadataTest:\n  labels:\n    - key: A\n      isRegex: true\n      value: {bad}\n"), "metadataTest.labels[0].value"),
            (format!("metadataTest:\n  labels:\n    - {{key: A, value: {bad}, isRegex: true}}\n"), "metadataTest.labels[0].value"),
            (format!("globalEnvVars:\n  - {{key: A, value: ok, isRegex: true}}\n  - {{key: B, value: {bad}, isRegex: true}}\n"), "globalEnvVars[1].value"),
            (format!("commandTests:\n  - name: a\n    command: x\n    envVars: [{{isRegex: true, key: A, value: {bad}}}]\n"), "commandTests[0].envVars[0].value"),
            (format!("daemonTests:\n  - name: d\n    waitFor: {{log: {bad}}}\n"), "daemonTests[0].waitFor.log"),
            (format!("daemonTests:\n  - name: d\n    expectedLogs: [{{pattern: {bad}}}]\n"), "daemonTests[0].expectedLogs[0].pattern"),
            (format!("daemonTests:\n  - name: d\n    excludedLogs: [{bad}]\n"), "daemonTests[0].excludedLogs[0]"),
            (format!("daemonTests:\n  - name: d\n    httpTests: [{{port: 80, expectedBody: [{bad}]}}]\n"), "daemonTests[0].httpTests[0].expectedBody[0]"),
            (format!("daemonTests:\n  - name: d\n    httpTests: [{{port: 80, excludedBody: [{bad}]}}]\n"), "daemonTests[0].httpTests[0].excludedBody[0]"),
            (format!("daemonTests:\n  - name: d\n    httpTests:\n      - port: 80\n        headers:\n          - key: content-type\n            value: {bad}\n            isRegex: true\n"), "daemonTests[0].httpTests[0].headers[0].value"),
            (format!("daemonTests:\n  - name: d\n    processTests: [{{args: {bad}}}]\n"), "daemonTests[0].processTests[0].args"),
        ];
        for (body, path) in cases {
            // Located at the bad value itself.
            let (line, column) = body
                .lines()
                .enumerate()
                .find_map(|(n, l)| l.find(bad).map(|c| (n + 2, c + 1)))
                .unwrap();
            assert_eq!(
                error_in(&body),
                format!("{line}:{column}: {path}: invalid regex \"(x\": unclosed group"),
                "--- spec ---\n{body}"
            );
        }
    }

    #[test]
    fn is_regex_values_are_compiled_and_plain_values_compared() {
        let spec = parse(
            "schemaVersion: 2.0.0\nmetadataTest:\n  envVars:\n    - {key: A, value: '^/ap+$', isRegex: true}\n    - {key: B, value: '^/ap+$'}\n    - {key: C, value: '(', isRegex: false}\n",
        )
        .unwrap();
        let vars = spec.metadata_test.unwrap().env_vars;
        assert!(vars[0].accepts("/app") && !vars[0].accepts("/opt"));
        assert!(vars[1].accepts("^/ap+$") && !vars[1].accepts("/app"));
        assert!(vars[2].pattern.is_none() && vars[2].accepts("("));
        // The other errors of an entry are unchanged.
        assert_eq!(
            error_in("globalEnvVars:\n  - {key: A, valu: x}\n"),
            "3:14: globalEnvVars[0]: unknown field `valu`, expected one of `key`, `value`, `isRegex`"
        );
        assert_eq!(
            error_in("globalEnvVars:\n  - {value: x}\n"),
            "3:5: globalEnvVars[0]: missing field `key`"
        );
        assert_eq!(
            error_in("globalEnvVars:\n  - {key: A, key: B}\n"),
            "3:5: globalEnvVars[0]: duplicate field `key`"
        );
    }

    #[test]
    fn schema_1_0_0_is_read_as_container_structure_test_reads_it() {
        let spec = parse(
            "schemaVersion: \"1.0.0\"\ncommandTests:\n  - name: a\n    command: [\"echo\", \"hi $X\"]\n    expectedOutput: [hi]\nfileExistenceTests:\n  - {name: f, path: /x, shouldExist: true, permissions: '-rw-r--r--'}\n",
        )
        .unwrap();
        assert_eq!(spec.schema_version, SchemaVersion::V1);
        assert_eq!(spec.command_tests[0].argv(), ["echo", "hi $X"]);
        let refused = [
            ("commandTests:\n  - {name: a, command: echo}\n", "commandTests[0].command: schemaVersion 1.0.0 writes a command as a list, [\"echo\", ...]"),
            ("commandTests:\n  - {name: a, command: [echo], args: [hi]}\n", "commandTests[0].args: schemaVersion 1.0.0 has no `args`"),
            ("metadataTest:\n  user: root\n", "metadataTest: schemaVersion 1.0.0 has no `metadataTest` (a 2.0.0 field)"),
            ("containerRunOptions:\n  privileged: true\n", "containerRunOptions: schemaVersion 1.0.0 has no"),
            ("fileExistenceTests:\n  - {name: f, path: /x, uid: 0}\n", "fileExistenceTests[0].uid: schemaVersion 1.0.0 has no `uid`"),
        ];
        for (body, start) in refused {
            let e = error_of(&format!("schemaVersion: 1.0.0\n{body}"));
            assert!(e.contains(start), "{e}\n--- spec ---\n{body}");
        }
        // The version may come after the commands.
        let spec =
            parse("commandTests:\n  - {name: a, command: [echo, hi]}\nschemaVersion: '1.0.0'\n")
                .unwrap();
        assert_eq!(spec.command_tests[0].argv(), ["echo", "hi"]);
        // A list under 2.0.0 is refused at its line, with the 2.0.0 spelling.
        assert_eq!(
            error_in("commandTests:\n  - name: a\n    command: [echo, hi]\n"),
            "4:14: commandTests[0].command: a list is how schemaVersion 1.0.0 writes a command; with 2.0.0 write `command: \"echo\"` and `args: [\"hi\"]`"
        );
    }

    #[test]
    fn shapes_yaml_v2_reads_are_read_the_same() {
        // Explicit nulls for lists (and an absent `cmd`), without merge keys.
        let spec = parse("schemaVersion: 2.0.0\ncommandTests:\n  - name: a\n    command: echo\n    expectedOutput: ~\n    args: null\nmetadataTest:\n  cmd: null\n  envVars: null\n").unwrap();
        assert!(spec.command_tests[0].args.is_empty());
        assert_eq!(spec.metadata_test.unwrap().cmd, None);
        // Merge keys, numbers read as text, the pre-1.13 `env`, `uid: -1`.
        let spec = parse("schemaVersion: 2.0.0\ncommandTests:\n  - &a {name: a, command: echo, args: [1, true]}\n  - <<: *a\n    name: b\nfileExistenceTests:\n  - {name: f, path: /x, uid: -1, gid: 7}\nmetadataTest:\n  env: [{key: A, value: 1}]\n").unwrap();
        assert_eq!(spec.command_tests[1].argv(), ["echo", "1", "true"]);
        assert_eq!(spec.command_tests[1].name, "b");
        assert_eq!(
            (
                spec.file_existence_tests[0].uid,
                spec.file_existence_tests[0].gid
            ),
            (None, Some(7))
        );
        assert_eq!(spec.metadata_test.unwrap().env_vars[0].value, "1");
        assert_eq!(spec.notices.len(), 1);
        // An error in a spec with merge keys says so.
        let (location, message) = parse("schemaVersion: 2.0.0\ncommandTests:\n  - &a {name: a, command: echo}\n  - <<: *a\n    comand: b\n").unwrap_err();
        assert_eq!(location, None);
        assert!(
            message.contains("unknown field `comand`") && message.contains("merge keys applied"),
            "{message}"
        );
    }

    #[test]
    fn empty_commands_are_refused_at_their_line() {
        let cases = [
            ("commandTests:\n  - name: a\n    command: ''\n", "4:14: commandTests[0].command: an empty command"),
            ("commandTests:\n  - name: a\n    command:\n", "4:13: commandTests[0].command: an empty command"),
            ("commandTests:\n  - name: a\n    setup: [[]]\n    command: x\n", "4:13: commandTests[0].setup[0]: an empty command"),
            ("commandTests:\n  - name: a\n    command: x\n    teardown:\n      - [rm, /tmp/x]\n      - []\n", "7:9: commandTests[0].teardown[1]: an empty command"),
            ("commandTests:\n  - name: a\n    command: x\n    teardown: [['', x]]\n", "5:16: commandTests[0].teardown[0]: the program of the command is an empty string"),
            ("daemonTests:\n  - name: d\n    commandTests:\n      - name: a\n        setup: [[]]\n        command: x\n", "6:17: daemonTests[0].commandTests[0].setup[0]: an empty command"),
        ];
        for (body, start) in cases {
            let e = error_in(body);
            assert!(e.starts_with(start), "{e}\n--- spec ---\n{body}");
        }
        let spec = parse("schemaVersion: 2.0.0\ncommandTests:\n  - name: a\n    setup: [[sh, -c, 'true']]\n    command: x\n").unwrap();
        assert_eq!(spec.command_tests[0].setup[0].join(" "), "sh -c true");
    }
}
