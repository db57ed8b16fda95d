//! Environment variables (with `$VAR` substitution) and the container definitions every kind of
//! test starts from.

use seaworthy::ContainerDefinition;

use super::spec::{EnvVar, RunOptions};

/// Label on every container the structure runner creates (besides the session's labels).
pub const LABEL_RUNNER: &str = "io.seaworthy.structure";

/// Replaces variables in `value` with `lookup(NAME)` (empty when unset), by the rules of Go's
/// `os.Expand`, which container-structure-test applies to env values, commands and paths:
/// `$NAME` (letters, digits, `_`), `${NAME}`, and the one-character shell names `$0`..`$9`,
/// `$*`, `$#`, `$$`, `$@`, `$!`, `$?`, `$-`; a `$` followed by anything else, or last, is kept;
/// the malformed `${}` and an unclosed `${` are dropped.
pub fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    let mut copied = 0;
    let mut j = 0;
    while j < bytes.len() {
        if bytes[j] == b'$' && j + 1 < bytes.len() {
            out.push_str(&value[copied..j]);
            let (name, width) = shell_name(&value[j + 1..]);
            match name {
                Some(name) => out.push_str(&lookup(name).unwrap_or_default()),
                // `$` not followed by a name: kept.
                None if width == 0 => out.push('$'),
                // Malformed `${`: dropped.
                None => {}
            }
            j += width;
            copied = j + 1;
        }
        j += 1;
    }
    out.push_str(&value[copied.min(value.len())..]);
    out
}

/// The variable name at the start of `s` (which follows a `$`) and how many bytes it spans.
fn shell_name(s: &str) -> (Option<&str>, usize) {
    let bytes = s.as_bytes();
    let special = |b: u8| b"*#$@!?-".contains(&b) || b.is_ascii_digit();
    if bytes[0] == b'{' {
        if bytes.len() > 2 && special(bytes[1]) && bytes[2] == b'}' {
            return (Some(&s[1..2]), 3);
        }
        return match s[1..].find('}') {
            Some(0) => (None, 2),
            Some(end) => (Some(&s[1..=end]), end + 2),
            None => (None, 1),
        };
    }
    if special(bytes[0]) {
        return (Some(&s[..1]), 1);
    }
    let len = bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    ((len > 0).then(|| &s[..len]), len)
}

/// Expands `value` against `env` (the last entry of a name wins).
pub fn expand_in(value: &str, env: &[(String, String)]) -> String {
    expand(value, &|name: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
}

/// `KEY=value` entries as pairs.
pub fn parse_env_entries(entries: &[String]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect()
}

/// The variables a test adds on top of the container's environment (`base`: the image's, then
/// the run options'): `globalEnvVars`, each value expanded against `base` alone (as
/// container-structure-test does: it sets them all at once, on top of the image), then the test's
/// own, each expanded against what is defined before it.
pub fn added_env(
    base: &[(String, String)],
    global: &[EnvVar],
    own: &[EnvVar],
) -> Vec<(String, String)> {
    let mut added: Vec<(String, String)> = global
        .iter()
        .map(|var| (var.key.clone(), expand_in(&var.value, base)))
        .collect();
    let mut current: Vec<(String, String)> = base.iter().chain(&added).cloned().collect();
    for var in own {
        let value = expand_in(&var.value, &current);
        current.push((var.key.clone(), value.clone()));
        added.push((var.key.clone(), value));
    }
    added
}

/// A container of `image` configured by `run`: its user, privileges, capabilities, environment
/// and bind mounts, on the engine's default bridge (no session network is needed).
pub fn base_definition(image: &str, run: &RunOptions) -> ContainerDefinition {
    let mut def = ContainerDefinition::new(image)
        .without_session_network()
        .with_label(LABEL_RUNNER, "true")
        .with_privileged(run.privileged);
    if let Some(user) = &run.user {
        def = def.with_user(user.clone());
    }
    for cap in &run.capabilities {
        def = def.with_capability(cap.clone());
    }
    for (k, v) in run.environment() {
        def = def.with_env(k, v);
    }
    for mount in &run.bind_mounts {
        def = def.with_mount(&mount.spec);
    }
    def
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(key: &str, value: &str) -> EnvVar {
        EnvVar {
            key: key.into(),
            value: value.into(),
            is_regex: false,
            pattern: None,
        }
    }

    #[test]
    fn substitution_follows_go_os_expand() {
        let lookup = |name: &str| match name {
            "PATH" => Some("/bin".to_string()),
            "A_1" => Some("x".to_string()),
            "1" => Some("one".to_string()),
            _ => None,
        };
        assert_eq!(expand("/env/bin:$PATH", &lookup), "/env/bin:/bin");
        assert_eq!(expand("${A_1}y$A_1-z", &lookup), "xyx-z");
        assert_eq!(expand("$UNSET.", &lookup), ".");
        // One-character shell names, `$` before a non-name kept, last `$` kept.
        assert_eq!(expand("cost: 5$ or $1", &lookup), "cost: 5$ or one");
        assert_eq!(expand("$$ and $? and ${1}", &lookup), " and  and one");
        assert_eq!(expand("a $ b $", &lookup), "a $ b $");
        // Malformed braces are dropped.
        assert_eq!(expand("${unterminated", &lookup), "unterminated");
        assert_eq!(expand("x${}y", &lookup), "xy");
        assert_eq!(expand("héllo $PATH ü", &lookup), "héllo /bin ü");
    }

    #[test]
    fn globals_see_the_image_and_test_variables_see_the_globals() {
        let base = vec![("PATH".to_string(), "/bin".to_string())];
        let added = added_env(
            &base,
            &[
                var("VIRTUAL_ENV", "/env"),
                var("PATH", "$VIRTUAL_ENV/bin:$PATH"),
            ],
            &[var("GREETING", "hi from $VIRTUAL_ENV")],
        );
        assert_eq!(
            added,
            vec![
                ("VIRTUAL_ENV".into(), "/env".into()),
                ("PATH".into(), "/bin:/bin".into()),
                ("GREETING".into(), "hi from /env".into()),
            ]
        );
    }
}
