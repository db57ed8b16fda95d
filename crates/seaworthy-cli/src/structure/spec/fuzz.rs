//! Bad input for the spec parser, as properties: any text is refused without a panic, and a valid
//! spec from `tests/specs/` broken the ways people break YAML by hand (a line deleted, duplicated
//! or indented differently, a value of the wrong type, an unknown key, the file cut short) either
//! still parses or is refused with an error that names the file and a line inside it, and the key
//! when one key was wrong.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::{load_text, SpecError};

/// The example specs (valid ones, and the `errors/` ones that are refused as they are).
const EXAMPLES: &[&str] = &[
    "fixture.yaml",
    "fixture-mismatch.yaml",
    "fixture-daemon.yaml",
    "daemon.yaml",
    "run-options.yaml",
    "privileged.yaml",
    "scratch.yaml",
    "spec30.yaml",
    "errors/bad-regex.yaml",
    "errors/bad-env-regex.yaml",
    "errors/bad-header-regex.yaml",
    "errors/bad-values.yaml",
    "errors/empty-command.yaml",
    "errors/malformed.yaml",
    "errors/unknown-field.yaml",
];

/// Values of types a spec field may not expect (each well-formed YAML on its own).
const WRONG_VALUES: &[&str] = &[
    "[1, 2]",
    "{a: 1}",
    "-5",
    "true",
    "~",
    "1.5",
    "18446744073709551616",
    "'text'",
    "''",
    "[[]]",
];

/// The key every inserted unknown key has (no spec uses it).
const UNKNOWN_KEY: &str = "seaworthyNoSuchKey";

fn example_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/specs")
        .join(name)
}

/// One way of breaking a spec; line numbers are taken modulo the number of lines.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    /// Adds (or removes, when negative) leading spaces.
    Indent(usize, i8),
    /// Replaces the value of a `key: value` line.
    WrongValue(usize, usize),
    /// Inserts `seaworthyNoSuchKey: 1` next to the key of a line, at its indentation.
    UnknownKey(usize),
    /// Cuts the text at this fraction (in thousandths) of its length.
    Truncate(u16),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), -4i8..=4).prop_map(|(l, d)| Mutation::Indent(l, d)),
        (any::<usize>(), 0..WRONG_VALUES.len()).prop_map(|(l, v)| Mutation::WrongValue(l, v)),
        any::<usize>().prop_map(Mutation::UnknownKey),
        (0u16..1000).prop_map(Mutation::Truncate),
    ]
}

/// The key of a `key: value` line whose value is all on the line (after a `- ` of a sequence
/// item), with the column where the key starts.
fn key_of(line: &str) -> Option<(usize, &str)> {
    let indent = line.len() - line.trim_start().len();
    let mut rest = &line[indent..];
    let mut at = indent;
    if let Some(after) = rest.strip_prefix("- ") {
        rest = after;
        at += 2;
    }
    let (key, value) = rest.split_once(": ")?;
    let value = value.trim();
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    // Not a block scalar, nor a flow collection continued on the next lines.
    let unclosed = |open: char, close: char| value.starts_with(open) && !value.ends_with(close);
    let inline = !value.is_empty()
        && !value.starts_with(['|', '>', '#'])
        && !unclosed('[', ']')
        && !unclosed('{', '}');
    (plain && inline).then_some((at, key))
}

/// Applies `m` to `lines`; the key a lone wrong value or unknown key should be blamed on.
fn apply(lines: &mut Vec<String>, m: &Mutation) -> Option<String> {
    if lines.is_empty() {
        return None;
    }
    let n = lines.len();
    match *m {
        Mutation::Delete(l) => {
            lines.remove(l % n);
        }
        Mutation::Duplicate(l) => lines.insert(l % n, lines[l % n].clone()),
        Mutation::Indent(l, delta) => {
            let line = &mut lines[l % n];
            if delta >= 0 {
                line.insert_str(0, &" ".repeat(delta as usize));
            } else {
                let spaces = line.len() - line.trim_start_matches(' ').len();
                line.drain(..spaces.min(delta.unsigned_abs() as usize));
            }
        }
        Mutation::WrongValue(l, v) => {
            let line = &lines[l % n];
            let (at, key) = key_of(line)?;
            let key = key.to_string();
            lines[l % n] = format!("{}{key}: {}", &line[..at], WRONG_VALUES[v]);
            return Some(key);
        }
        Mutation::UnknownKey(l) => {
            let (at, _) = key_of(&lines[l % n])?;
            lines.insert(l % n + 1, format!("{}{UNKNOWN_KEY}: 1", " ".repeat(at)));
            return Some(UNKNOWN_KEY.to_string());
        }
        Mutation::Truncate(_) => {}
    }
    None
}

/// The example `name`, mutated; with the key to blame when the only mutation was a wrong value
/// or an unknown key.
fn mutated(name: &str, mutations: &[Mutation]) -> (String, Option<String>) {
    let text = std::fs::read_to_string(example_path(name)).expect("the example spec");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut blamed = None;
    for m in mutations {
        blamed = apply(&mut lines, m);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    if let [Mutation::Truncate(at)] = mutations {
        let mut cut = text.len() * usize::from(*at) / 1000;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    let blamed = if mutations.len() == 1 { blamed } else { None };
    (text, blamed)
}

/// A refused spec names its file and a line of it (1-based, at most one past the last line),
/// and says so in its message.
fn assert_located(e: &SpecError, path: &Path, text: &str) {
    let file = path.display().to_string();
    assert_eq!(e.file, file, "{e}");
    let Some((line, column)) = e.location else {
        panic!("no line in the error: {e}\n--- spec ---\n{text}");
    };
    let lines = text.lines().count();
    assert!(
        line >= 1 && line <= lines + 1 && column >= 1,
        "line {line} (column {column}) is not in the {lines}-line spec: {e}\n--- spec ---\n{text}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("{file}:{line}:{column}: ")),
        "{e}"
    );
}

/// Text made mostly of what YAML and these specs are made of.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("schemaVersion: 2.0.0\n".to_string()),
        Just("commandTests:\n".to_string()),
        Just("  - name: x\n".to_string()),
        Just("    command: echo\n".to_string()),
        Just("daemonTests:\n".to_string()),
        Just("    startupTimeout: ".to_string()),
        proptest::string::string_regex("[ \\n:\\-\\[\\]{},'\"#&*!|>%@`?a-z0-9.]{1,6}")
            .expect("a valid regex"),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_refused_with_the_file_and_a_line(text in prop_oneof![any::<String>(), yamlish()]) {
        let path = example_path("fuzzed.yaml");
        if let Err(e) = load_text(&path, &text) {
            assert_located(&e, &path, &text);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_broken_example_parses_or_names_the_file_the_line_and_the_key(
        example in proptest::sample::select(EXAMPLES),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let path = example_path(example);
        let (text, blamed) = mutated(example, &mutations);
        if let Err(e) = load_text(&path, &text) {
            assert_located(&e, &path, &text);
            // The `errors/` examples are refused for a reason of their own.
            if let Some(key) = blamed.filter(|_| !example.starts_with("errors/")) {
                prop_assert!(
                    e.message.contains(&key),
                    "{e}\nblames neither key {key:?}\n--- spec ---\n{text}"
                );
            }
        }
    }
}

#[test]
fn the_examples_parse_and_the_error_examples_do_not() {
    for name in EXAMPLES {
        let path = example_path(name);
        let text = std::fs::read_to_string(&path).unwrap();
        match load_text(&path, &text) {
            Ok(_) => assert!(!name.starts_with("errors/"), "{name} parses"),
            Err(e) => {
                assert!(name.starts_with("errors/"), "{name}: {e}");
                assert_located(&e, &path, &text);
            }
        }
    }
}

#[test]
fn a_wrong_value_and_an_unknown_key_are_blamed_on_their_key_and_line() {
    let path = example_path("fixture.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text
        .lines()
        .position(|l| l.trim_start().starts_with("uid: "))
        .expect("a uid line");
    let list = WRONG_VALUES.iter().position(|v| *v == "[1, 2]").unwrap();
    for (mutation, line) in [
        (Mutation::WrongValue(at, list), at + 1),
        (Mutation::UnknownKey(at), at + 2),
    ] {
        let (mutated, blamed) = mutated("fixture.yaml", std::slice::from_ref(&mutation));
        let key = blamed.expect("a key to blame");
        let e = load_text(&path, &mutated).expect_err("a broken spec");
        assert_located(&e, &path, &mutated);
        assert_eq!(e.location.map(|(l, _)| l), Some(line), "{mutation:?}: {e}");
        assert!(e.message.contains(&key), "{mutation:?}: {e}");
    }
}
