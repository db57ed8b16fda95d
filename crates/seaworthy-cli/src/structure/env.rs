//! Environment variables (with `$VAR` substitution) and the container definitions every kind of
//! test starts from.

use seaworthy::ContainerDefinition;

use super::spec::{EnvVar, RunOptions};

/// Label on every container the structure runner creates (besides the session's labels).
pub const LABEL_RUNNER: &str = "io.seaworthy.structure";

/// Replaces `$NAME` and `${NAME}` in `value` with `lookup(NAME)` (empty when unset), like the
/// Unix-style substitution container-structure-test applies to env values. A `$` not followed by
/// a name is kept.
pub fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            if let Some(end) = braced.find('}') {
                out.push_str(&lookup(&braced[..end]).unwrap_or_default());
                rest = &braced[end + 1..];
                continue;
            }
        }
        let len = after
            .char_indices()
            .take_while(|(i, c)| {
                c.is_ascii_alphanumeric() && !(*i == 0 && c.is_ascii_digit()) || *c == '_'
            })
            .count();
        if len == 0 {
            out.push('$');
            rest = after;
        } else {
            out.push_str(&lookup(&after[..len]).unwrap_or_default());
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
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
/// the run options'): `globalEnvVars`, then the test's own, each value expanded against what is
/// defined before it.
pub fn added_env(
    base: &[(String, String)],
    global: &[EnvVar],
    own: &[EnvVar],
) -> Vec<(String, String)> {
    let mut current: Vec<(String, String)> = base.to_vec();
    let mut added = Vec::new();
    for var in global.iter().chain(own) {
        let value = {
            let lookup = |name: &str| {
                current
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            expand(&var.value, &lookup)
        };
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
    fn substitution_is_unix_style() {
        let lookup = |name: &str| match name {
            "PATH" => Some("/bin".to_string()),
            "A_1" => Some("x".to_string()),
            _ => None,
        };
        assert_eq!(expand("/env/bin:$PATH", &lookup), "/env/bin:/bin");
        assert_eq!(expand("${A_1}y$A_1-z", &lookup), "xyx-z");
        assert_eq!(expand("$UNSET.", &lookup), ".");
        assert_eq!(expand("cost: 5$ or $1", &lookup), "cost: 5$ or $1");
        assert_eq!(expand("${unterminated", &lookup), "${unterminated");
    }

    #[test]
    fn later_variables_see_earlier_ones() {
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
                ("PATH".into(), "/env/bin:/bin".into()),
                ("GREETING".into(), "hi from /env".into()),
            ]
        );
    }
}
