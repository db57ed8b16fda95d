//! Values of a spec that are checked while parsing: regexes, permission strings, durations, env
//! files, bind mounts and commands. Each is read through a visitor, so an error carries the
//! line and column of the value itself.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::SPEC_DIR;

/// Deserializes a string through `parse`. Errors raised inside the visitor carry the line and
/// column of the value itself (raised after it, they would point at the enclosing mapping).
pub(super) fn parse_str<'de, D: Deserializer<'de>, T>(
    d: D,
    what: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct ParseStr<T> {
        what: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> Visitor<'_> for ParseStr<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.what)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(ParseStr { what, parse })
}

/// An env file (`KEY=value` lines, `#` comments, `KEY` alone passes the host's value through).
/// A file that cannot be read gives no variables and a warning, as in container-structure-test
/// (which logs "Unable to load envFile" and goes on).
#[derive(Debug, Clone)]
pub struct EnvFile {
    /// The entries, in order.
    pub entries: Vec<(String, String)>,
    /// Why the file gave no variables, when it could not be read.
    pub unreadable: Option<String>,
}

impl<'de> Deserialize<'de> for EnvFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "the path of an env file", EnvFile::read)
    }
}

impl EnvFile {
    fn read(given: &str) -> Result<EnvFile, String> {
        // Like `docker run --env-file`: relative to the working directory; Seaworthy also looks
        // next to the spec.
        let here = PathBuf::from(&given);
        let path = if here.is_absolute() || here.exists() {
            here
        } else {
            SPEC_DIR.with(|dir| dir.borrow().join(given))
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                return Ok(EnvFile {
                    entries: Vec::new(),
                    unreadable: Some(format!("cannot read env file {given:?}: {e}")),
                })
            }
        };
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    entries.push((k.trim().to_string(), v.to_string()))
                }
                Some(_) => {
                    return Err(format!(
                        "env file {given:?} line {}: no variable name before `=`",
                        n + 1
                    ))
                }
                None => {
                    if let Ok(v) = std::env::var(line.trim()) {
                        entries.push((line.trim().to_string(), v));
                    }
                }
            }
        }
        Ok(EnvFile {
            entries,
            unreadable: None,
        })
    }
}

/// A bind mount, `host:container[:ro|rw]`, with the host path made absolute. A host path that
/// does not exist is accepted: the run creates it as an empty directory before the first
/// container, as the engine does for container-structure-test's `-v`-style binds.
#[derive(Debug, Clone)]
pub struct BindMount {
    /// The mount in Seaworthy's short form, host path absolute.
    pub spec: String,
    /// The host path, absolute.
    pub host: PathBuf,
    /// Whether the host path was missing when the spec was read.
    pub missing: bool,
}

impl<'de> Deserialize<'de> for BindMount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a bind mount host:container[:ro]", BindMount::parse)
    }
}

impl BindMount {
    fn parse(given: &str) -> Result<BindMount, String> {
        let mut parts = given.splitn(3, ':');
        let (Some(host), Some(target)) = (parts.next(), parts.next()) else {
            return Err(format!("bind mount {given:?} is not host:container[:ro]"));
        };
        let mode = parts.next();
        if !matches!(mode, None | Some("ro" | "rw")) {
            return Err(format!("bind mount {given:?}: the mode must be ro or rw"));
        }
        if !target.starts_with('/') {
            return Err(format!(
                "bind mount {given:?}: the container path must be absolute"
            ));
        }
        if !(host.starts_with('/') || host.starts_with("./") || host.starts_with("../")) {
            return Err(format!(
                "bind mount {given:?}: the host path must be absolute or start with ./ or ../ (named volumes are not supported)"
            ));
        }
        let host = PathBuf::from(host);
        let host = if host.is_absolute() {
            host
        } else {
            SPEC_DIR.with(|dir| dir.borrow().join(&host))
        };
        let (host, missing) = match host.canonicalize() {
            Ok(host) => (host, false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (normalise(&host), true),
            Err(e) => return Err(format!("bind mount {given:?}: {e}")),
        };
        let mut spec = format!("{}:{target}", host.display());
        if mode == Some("ro") {
            spec.push_str(":ro");
        }
        Ok(BindMount {
            spec,
            host,
            missing,
        })
    }
}

/// A boolean as container-structure-test's YAML parser (gopkg.in/yaml.v2, YAML 1.1) reads one:
/// `true`/`false` and also `yes`/`no`, `on`/`off`, `y`/`n`, each lowercase, capitalised or in
/// capitals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bool11(pub bool);

impl Bool11 {
    fn parse(text: &str) -> Result<bool, String> {
        match text {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
                Ok(true)
            }
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False"
            | "FALSE" => Ok(false),
            _ => Err(format!(
                "invalid boolean {text:?} (true, false, yes, no, on, off)"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Bool11 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bool11;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean (true, false, yes, no, on, off)")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Bool11, E> {
                Ok(Bool11(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bool11, E> {
                Bool11::parse(v).map(Bool11).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A `bool` field read as YAML 1.1 does ([`Bool11`]).
pub(super) fn bool11<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Bool11::deserialize(d).map(|b| b.0)
}

/// `path` made absolute with its `.` and `..` components resolved by name (for a path that does
/// not exist yet, which `canonicalize` refuses).
fn normalise(path: &std::path::Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A regex, checked while parsing: Go's RE2 syntax, as container-structure-test reads it (see
/// [`from_go`]), compiled for Rust's `regex`; with the source as written.
#[derive(Debug, Clone)]
pub struct Pattern(pub Regex, String);

impl Pattern {
    /// Whether it matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }

    /// The regex as the spec wrote it.
    pub fn source(&self) -> &str {
        &self.1
    }
}

/// A Go regex (RE2 syntax) in Rust `regex` syntax, where the two read the same text
/// differently: Go's `\d`, `\w`, `\s` (and `\D`, `\W`, `\S`) are ASCII classes and its `\b`,
/// `\B` ASCII word boundaries (Rust's are Unicode); `\Q...\E` quotes literal text (Rust has no
/// such escape); inside a class, `[` and `&`, `~` are literal characters (Rust reads nested
/// classes and set operations there). Everything else is passed as written.
pub fn from_go(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 8);
    let mut chars = source.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                None => out.push('\\'),
                Some('d') => out.push_str("[0-9]"),
                Some('D') => out.push_str("[^0-9]"),
                Some('w') => out.push_str("[0-9A-Za-z_]"),
                Some('W') => out.push_str("[^0-9A-Za-z_]"),
                Some('s') => out.push_str("[\\t\\n\\f\\r ]"),
                Some('S') => out.push_str("[^\\t\\n\\f\\r ]"),
                Some(b @ ('b' | 'B')) if !in_class => {
                    out.push_str("(?-u:\\");
                    out.push(b);
                    out.push(')');
                }
                Some('Q') => {
                    let mut literal = String::new();
                    while let Some(q) = chars.next() {
                        if q == '\\' && chars.peek() == Some(&'E') {
                            chars.next();
                            break;
                        }
                        literal.push(q);
                    }
                    out.push_str(&regex::escape(&literal));
                }
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
            },
            '[' if in_class => {
                if chars.peek() == Some(&':') {
                    // A POSIX class, `[:alpha:]`, copied whole.
                    out.push('[');
                    while let Some(p) = chars.next() {
                        out.push(p);
                        if p == ':' && chars.peek() == Some(&']') {
                            out.push(']');
                            chars.next();
                            break;
                        }
                    }
                } else {
                    out.push_str("\\[");
                }
            }
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            '[' => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                // A `]` first in a class is one of its characters.
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

impl fmt::Display for Pattern {
    /// `/source/`, on one line: line breaks and other control characters in the source are
    /// written as escapes (`\n`, `\r`, `\t`, `\u{1b}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/", one_line(&self.1))
    }
}

/// `text` with line breaks, tabs and other control characters written as escapes, so that a
/// value shows on one line.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

impl Pattern {
    /// Compiles `source`; the error says which regex and why, on one line.
    pub fn compile(source: &str) -> Result<Pattern, String> {
        Regex::new(&from_go(source))
            .map(|r| Pattern(r, source.to_string()))
            .map_err(|e| {
                let why = e.to_string();
                let why = why.lines().last().unwrap_or_default().trim();
                let why = why.strip_prefix("error: ").unwrap_or(why);
                format!("invalid regex {source:?}: {why}")
            })
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, "a regex", Pattern::compile)
    }
}

/// A program and its arguments (a `setup` or `teardown` step), checked while parsing: neither
/// the list nor the program may be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argv(pub Vec<String>);

impl std::ops::Deref for Argv {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Argv;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command: a list of a program and its arguments")
            }
            // Raised here, inside the list's own visitor, an error carries the list's line.
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Argv, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                match argv.first() {
                    None => Err(de::Error::custom(
                        "an empty command: a step is a program and its arguments, like [\"rm\", \"/tmp/state\"]",
                    )),
                    Some(program) if program.is_empty() => Err(de::Error::custom(
                        "the program of the command is an empty string",
                    )),
                    Some(_) => Ok(Argv(argv)),
                }
            }
        }
        d.deserialize_seq(V)
    }
}

/// A command test's `command`: a program, which cannot be empty. Under schemaVersion 1.0.0 it is
/// a list, the program and its arguments, returned each after a NUL character (which no argument
/// can hold) for [`super::Spec`] to split into `command` and `args`.
pub(super) fn program<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a program")
        }
        fn visit_unit<E: de::Error>(self) -> Result<String, E> {
            self.visit_str("")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            if v.is_empty() {
                Err(E::custom("an empty command: name the program to run"))
            } else {
                Ok(v.to_string())
            }
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
            let mut argv: Vec<String> = Vec::new();
            while let Some(arg) = seq.next_element::<String>()? {
                argv.push(arg);
            }
            if !super::SCHEMA_V1.with(std::cell::Cell::get) {
                let (program, args) = argv
                    .split_first()
                    .map_or(("", &[][..]), |(p, a)| (p.as_str(), a));
                return Err(de::Error::custom(format!(
                    "a list is how schemaVersion 1.0.0 writes a command; with 2.0.0 write \
                     `command: {program:?}` and `args: {args:?}`"
                )));
            }
            match argv.first() {
                None => Err(de::Error::custom(
                    "an empty command: name the program to run",
                )),
                Some(program) if program.is_empty() || argv.iter().any(|a| a.contains('\0')) => {
                    Err(de::Error::custom(
                        "the program of the command is an empty string",
                    ))
                }
                Some(_) => Ok(format!("\0{}", argv.join("\0"))),
            }
        }
    }
    d.deserialize_any(V)
}

/// A permission string, checked while parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions(pub String);

impl<'de> Deserialize<'de> for Permissions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(
            d,
            "a permission string like \"-rw-r--r--\"",
            Permissions::parse,
        )
    }
}

impl Permissions {
    fn parse(s: &str) -> Result<Permissions, String> {
        let chars: Vec<char> = s.chars().collect();
        let valid = chars.len() >= 10 && {
            let (kind, bits) = chars.split_at(chars.len() - 9);
            let kind_ok = kind.iter().all(|c| "-dalTLDpSugct?bs".contains(*c));
            let bits_ok = bits.iter().enumerate().all(|(i, c)| {
                let plain = ['r', 'w', 'x'][i % 3];
                *c == '-' || *c == plain || (i % 3 == 2 && "sStT".contains(*c))
            });
            kind_ok && bits_ok
        };
        if valid {
            Ok(Permissions(s.to_string()))
        } else {
            Err(format!(
                "invalid permissions {s:?} (expected a mode like \"-rw-r--r--\" or \"drwxr-xr-x\")"
            ))
        }
    }
}

/// A duration: seconds as a number, or a string like `500ms`, `10s`, `2m`, `1.5s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Timeout;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: seconds, or a string like \"500ms\", \"10s\", \"2m\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timeout, E> {
                Ok(Timeout(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timeout, E> {
                u64::try_from(v)
                    .map(|v| Timeout(Duration::from_secs(v)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timeout, E> {
                Duration::try_from_secs_f64(v)
                    .map(Timeout)
                    .map_err(|e| E::custom(format!("invalid duration {v}: {e}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timeout, E> {
                parse_duration(v).map(Timeout).ok_or_else(|| {
                    E::custom(format!("invalid duration {v:?} (use 500ms, 10s, 2m)"))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `500ms`, `10s`, `1.5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::super::load;
    use super::*;

    #[test]
    fn bind_mounts_are_paths_relative_to_the_spec() {
        let dir = std::env::temp_dir().join(format!("sw-spec-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let spec = dir.join("spec.yaml");
        std::fs::write(
            &spec,
            "schemaVersion: 2.0.0\ncontainerRunOptions:\n  bindMounts: ['./data:/mnt:ro']\n",
        )
        .unwrap();
        let loaded = load(&spec).unwrap();
        let mount = &loaded.spec.container_run_options.bind_mounts[0].spec;
        assert_eq!(
            *mount,
            format!(
                "{}:/mnt:ro",
                dir.join("data").canonicalize().unwrap().display()
            )
        );
        std::fs::write(
            &spec,
            "schemaVersion: 2.0.0\ncontainerRunOptions:\n  bindMounts: ['data:/mnt']\n",
        )
        .unwrap();
        let e = load(&spec).unwrap_err();
        assert_eq!(e.location, Some((3, 16)));
        assert!(e.message.contains("named volumes are not supported"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn go_regexes_read_as_go_reads_them() {
        let matches = |re: &str, text: &str| Pattern::compile(re).unwrap().is_match(text);
        // Perl classes and word boundaries are ASCII in Go.
        assert!(matches(r"^\d+$", "123") && !matches(r"^\d+$", "١٢٣"));
        assert!(matches(r"^[\d.]+$", "1.2") && !matches(r"^[\w]+$", "é"));
        assert!(matches(r"^\s$", "\t") && !matches(r"^\s$", "\u{a0}"));
        assert!(matches(r"\bab\b", "x ab y") && matches(r"\bab\b", "éab"));
        assert!(matches(r"^\D\W\S$", "a-b"));
        // \Q...\E quotes; `[`, `&` and `~` are characters inside a class; POSIX classes stay.
        assert!(matches(r"^\Qa.b*\E$", "a.b*") && !matches(r"^\Qa.b\E$", "axb"));
        assert!(matches(r"^[[]$", "[") && matches(r"^[a&&b]+$", "a&b"));
        assert!(matches(r"^[[:alpha:]~]+$", "ab~") && matches(r"^[]a]+$", "]a"));
        // Shown as written.
        assert_eq!(Pattern::compile(r"\d").unwrap().to_string(), r"/\d/");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
    }
}
