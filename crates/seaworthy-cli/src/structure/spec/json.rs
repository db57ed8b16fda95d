//! `.json` specs, read as container-structure-test reads them (Go's `encoding/json`, not its
//! strict YAML reader): a key names a field whatever its case (`SchemaVersion`,
//! `FileExistenceTests`), and a key that names no field is ignored — here with a notice.

use super::{parse_yaml, Spec};

/// The fields of container-structure-test's schema (2.0.0 and 1.0.0), as Seaworthy spells them.
const FIELDS: &[&str] = &[
    "schemaVersion",
    "globalEnvVars",
    "containerRunOptions",
    "commandTests",
    "fileExistenceTests",
    "fileContentTests",
    "metadataTest",
    "licenseTests",
    "name",
    "setup",
    "teardown",
    "envVars",
    "command",
    "args",
    "expectedOutput",
    "excludedOutput",
    "expectedError",
    "excludedError",
    "exitCode",
    "path",
    "shouldExist",
    "permissions",
    "uid",
    "gid",
    "isExecutableBy",
    "expectedContents",
    "excludedContents",
    "unboundEnvVars",
    "labels",
    "exposedPorts",
    "unexposedPorts",
    "entrypoint",
    "cmd",
    "workdir",
    "volumes",
    "unmountedVolumes",
    "user",
    "key",
    "value",
    "isRegex",
    "privileged",
    "allocateTty",
    "envFile",
    "capabilities",
    "bindMounts",
    "debian",
    "files",
];

/// Parses a JSON spec; errors have no location (the text is read as a value first).
pub(super) fn parse(text: &str) -> Result<Spec, (Option<(usize, usize)>, String)> {
    let mut value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| (Some((e.line(), e.column())), format!("invalid JSON: {e}")))?;
    match_case(&mut value);
    let mut ignored: Vec<String> = Vec::new();
    loop {
        let yaml = to_yaml(&value).map_err(|e| (None, e.to_string()))?;
        let message = match parse_yaml(&yaml) {
            Ok(mut spec) => {
                let tests = value["fileExistenceTests"].as_array().map(Vec::as_slice);
                for (i, t) in tests.unwrap_or_default().iter().enumerate() {
                    if t.get("shouldExist").is_none() {
                        spec.notices.push(format!(
                            "fileExistenceTests[{i}] has no shouldExist: read as true, as in a \
                             YAML spec (container-structure-test's JSON reading leaves it false, \
                             its issue #242)"
                        ));
                    }
                }
                spec.notices.extend(ignored.iter().map(|field| {
                    format!(
                        "{field} is not a field: ignored, as container-structure-test ignores it \
                         in a JSON spec"
                    )
                }));
                return Ok(spec);
            }
            Err((_, message)) => message,
        };
        match unknown_field(&message) {
            Some((path, field)) if ignored.len() < 1000 && remove(&mut value, path, field) => {
                ignored.push(if path.is_empty() {
                    field.to_string()
                } else {
                    format!("{path}.{field}")
                });
            }
            _ => return Err((None, message)),
        }
    }
}

/// `value` as YAML text, `schemaVersion` first (how the rest is read depends on it).
fn to_yaml(value: &serde_json::Value) -> Result<String, serde_norway::Error> {
    let mut yaml = serde_norway::to_value(value)?;
    if let Some(map) = yaml.as_mapping_mut() {
        if let Some(version) = map.remove("schemaVersion") {
            let mut ordered = serde_norway::Mapping::new();
            ordered.insert("schemaVersion".into(), version);
            ordered.extend(std::mem::take(map));
            *map = ordered;
        }
    }
    serde_norway::to_string(&yaml)
}

/// Renames each key that differs from a field's name only by case to that name.
fn match_case(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let renames: Vec<(String, &str)> = map
                .keys()
                .filter_map(|k| {
                    FIELDS
                        .iter()
                        .find(|f| *f != k && f.eq_ignore_ascii_case(k))
                        .map(|f| (k.clone(), *f))
                })
                .collect();
            for (from, to) in renames {
                if !map.contains_key(to) {
                    if let Some(v) = map.remove(&from) {
                        map.insert(to.to_string(), v);
                    }
                }
            }
            map.values_mut().for_each(match_case);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(match_case),
        _ => {}
    }
}

/// The field path and the name of an "unknown field" error.
fn unknown_field(message: &str) -> Option<(&str, &str)> {
    let at = message.find("unknown field `")?;
    let field = message[at + "unknown field `".len()..].split('`').next()?;
    let path = message[..at].strip_suffix(": ").unwrap_or("");
    Some((path, field))
}

/// Removes `field` from the object at `path` (`commandTests[0].envVars[1]`); whether it was
/// there.
fn remove(value: &mut serde_json::Value, path: &str, field: &str) -> bool {
    let mut node = value;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        let name = pieces.next().unwrap_or_default();
        let Some(next) = node.get_mut(name) else {
            return false;
        };
        node = next;
        for index in pieces {
            let Some(next) = index
                .trim_end_matches(']')
                .parse::<usize>()
                .ok()
                .and_then(|i| node.get_mut(i))
            else {
                return false;
            };
            node = next;
        }
    }
    node.as_object_mut()
        .is_some_and(|map| map.remove(field).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_any_case_and_unknown_keys_are_read_as_container_structure_test_reads_json() {
        let spec = parse(
            r#"{
	"SchemaVersion": "2.0.0",
	"FileExistenceTests": [
		{"name": "root", "path": "/", "isDirectory": true, "shouldExist": true}
	],
	"commandTests": [{"Name": "a", "Command": "echo", "args": ["1"], "extra": 1}],
	"comment": "ignored"
}"#,
        )
        .unwrap();
        assert_eq!(spec.file_existence_tests[0].path, "/");
        assert_eq!(spec.command_tests[0].argv(), ["echo", "1"]);
        assert_eq!(spec.notices.len(), 3, "{:?}", spec.notices);
        for field in [
            "fileExistenceTests[0].isDirectory",
            "commandTests[0].extra",
            "comment",
        ] {
            assert!(
                spec.notices
                    .iter()
                    .any(|n| n.starts_with(&format!("{field} is not a field"))),
                "{field}: {:?}",
                spec.notices
            );
        }
        // Schema 1.0.0, its version last.
        let spec = parse(r#"{"commandTests": [{"name": "a", "command": ["echo", "hi"]}], "schemaVersion": "1.0.0"}"#).unwrap();
        assert_eq!(spec.command_tests[0].argv(), ["echo", "hi"]);
        let (location, message) =
            parse("{\"schemaVersion\": \"2.0.0\",\n \"commandTests\": [}").unwrap_err();
        assert_eq!(location.map(|l| l.0), Some(2));
        assert!(message.starts_with("invalid JSON"), "{message}");
        let (_, message) =
            parse(r#"{"schemaVersion": "2.0.0", "commandTests": [{"name": "a"}]}"#).unwrap_err();
        assert!(message.contains("missing field `command`"), "{message}");
    }
}
