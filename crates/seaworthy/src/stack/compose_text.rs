//! The small languages inside a compose file: durations (`1m30s`), command strings split into
//! words, `${VAR:-default}` interpolation, env files and byte sizes (`64m`).
//!
//! Every function returns `Err(reason)` with a message meant to follow the name of the field.

use std::time::Duration;

/// Parses a duration as compose writes them (Go's format): one or more `NUMBER UNIT` with units
/// `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, and decimals allowed (`1m30s`, `1.5s`, `500ms`); `0` alone
/// is zero.
pub(crate) fn parse_duration(input: &str) -> Result<Duration, String> {
    let text = input.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("{input:?} is not a duration (write it like 30s, 1m30s, 500ms or 1.5h)");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// Splits a command string into words the way a POSIX shell would, without running one: blanks
/// separate words, `'...'` is literal, `"..."` allows `\"`, `\\`, `\$` and `` \` ``, and a
/// backslash outside quotes escapes the next character.
pub(crate) fn split_words(input: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("{input:?} has an unterminated ' quote")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("{input:?} has an unterminated \" quote")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("{input:?} has an unterminated \" quote")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => word.push('\\'),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Replaces `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`,
/// `${VAR?message}`, `${VAR:+alternative}` and `${VAR+alternative}` with values from `lookup`
/// (defaults may hold further interpolations); `$$` is a literal `$`. An unset variable without a
/// default becomes the empty string, as with compose. `unset` collects the names of such variables.
pub(crate) fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, String> {
    if !input.contains('$') {
        return Ok(input.to_string());
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = closing_brace(r).ok_or_else(|| {
                format!("{input:?} has a ${{ without its closing }} (write $$ for a literal $)")
            })?;
            out.push_str(&braced(&r[..end], input, lookup, unset)?);
            rest = &r[end + 1..];
        } else if after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            out.push_str(&value_of(&after[..len], lookup, unset));
            rest = &after[len..];
        } else {
            return Err(format!(
                "{input:?} has a '$' that starts no variable (write $$ for a literal $)"
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing a `${` whose content starts `text`, counting nested `${`.
fn closing_brace(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn value_of(
    name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> String {
    lookup(name).unwrap_or_else(|| {
        unset.push(name.to_string());
        String::new()
    })
}

/// The value of the inside of `${...}`.
fn braced(
    inner: &str,
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, String> {
    let len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, op) = inner.split_at(len);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "{input:?} has ${{{inner}}}, which names no variable"
        ));
    }
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let nested = |text: &str, unset: &mut Vec<String>| interpolate(text, lookup, unset);
    match op {
        "" => Ok(value_of(name, lookup, unset)),
        _ if op.starts_with(":-") => match value {
            Some(v) if non_empty => Ok(v),
            _ => nested(&op[2..], unset),
        },
        _ if op.starts_with(":?") => match value {
            Some(v) if non_empty => Ok(v),
            _ => Err(format!("variable {name} is required: {}", &op[2..])),
        },
        _ if op.starts_with(":+") => {
            if non_empty {
                nested(&op[2..], unset)
            } else {
                Ok(String::new())
            }
        }
        _ if op.starts_with('-') => match value {
            Some(v) => Ok(v),
            None => nested(&op[1..], unset),
        },
        _ if op.starts_with('?') => {
            value.ok_or_else(|| format!("variable {name} is required: {}", &op[1..]))
        }
        _ if op.starts_with('+') => {
            if set {
                nested(&op[1..], unset)
            } else {
                Ok(String::new())
            }
        }
        _ => Err(format!(
            "{input:?} has ${{{inner}}}: after the name, use :-, -, :?, ?, :+ or +"
        )),
    }
}

/// Parses an env file: `KEY=value` lines (an optional `export ` before), `#` comments and blank
/// lines; values may be `"double quoted"` (with `\n`, `\t`, `\"`, `\\`) or `'single quoted'`;
/// unquoted values lose trailing blanks and a ` #comment`. A line with a key alone takes the value
/// from the environment (`None`). Errors name the line.
pub(crate) fn parse_env_file(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = |reason: String| format!("line {}: {reason}", n + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim_start())),
            None => (line, None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(at(format!("{line:?} is not KEY=value")));
        }
        let value = match value {
            None => None,
            Some(v) if v.starts_with('"') => {
                let mut out = String::new();
                let mut chars = v[1..].chars();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some('n') => out.push('\n'),
                            Some('t') => out.push('\t'),
                            Some('r') => out.push('\r'),
                            Some(c) => out.push(c),
                            None => out.push('\\'),
                        },
                        c => out.push(c),
                    }
                }
                if !closed {
                    return Err(at(format!(
                        "the value of {key} has an unterminated \" quote"
                    )));
                }
                Some(out)
            }
            Some(v) if v.starts_with('\'') => match v[1..].find('\'') {
                Some(end) => Some(v[1..1 + end].to_string()),
                None => {
                    return Err(at(format!(
                        "the value of {key} has an unterminated ' quote"
                    )))
                }
            },
            Some(v) => {
                let v = match v.find(" #") {
                    Some(i) => &v[..i],
                    None => v,
                };
                Some(v.trim_end().to_string())
            }
        };
        entries.push((key.to_string(), value));
    }
    Ok(entries)
}

/// Parses a byte size: a number with an optional unit `b`, `k`/`kb`, `m`/`mb`, `g`/`gb`
/// (powers of 1024, any case).
pub(crate) fn parse_size(input: &str) -> Result<i64, String> {
    let text = input.trim().to_ascii_lowercase();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let multiplier: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" => 1024.0,
        "m" | "mb" => 1024.0 * 1024.0,
        "g" | "gb" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "{input:?} is not a size (write it like 65536, 64k, 64m or 1g)"
            ))
        }
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{input:?} is not a size (write it like 65536, 64k, 64m or 1g)"))?;
    Ok((number * multiplier) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s| parse_duration(s).unwrap();
        assert_eq!(d("1m30s"), Duration::from_secs(90));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("1.5s"), Duration::from_millis(1500));
        assert_eq!(d("1h2m3s4ms"), Duration::from_millis(3_723_004));
        assert_eq!(d("10us"), Duration::from_micros(10));
        assert_eq!(d("0"), Duration::ZERO);
        for bad in ["", "10", "1x", "s", "1m30", "-1s"] {
            assert!(
                parse_duration(bad).unwrap_err().contains("not a duration"),
                "{bad}"
            );
        }
    }

    #[test]
    fn words() {
        let w = |s| split_words(s).unwrap();
        assert_eq!(
            w("sh -c 'echo hi; exit 0'"),
            ["sh", "-c", "echo hi; exit 0"]
        );
        assert_eq!(
            w(r#"echo "a \"b\" $c" d\ e"#),
            ["echo", r#"a "b" $c"#, "d e"]
        );
        assert_eq!(w("  a   b "), ["a", "b"]);
        assert_eq!(w("''"), [""]);
        assert!(w("").is_empty());
        assert!(split_words("echo 'oops")
            .unwrap_err()
            .contains("unterminated"));
    }

    #[test]
    fn interpolation() {
        let lookup = |name: &str| match name {
            "USER" => Some("ann".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let mut unset = Vec::new();
        let mut i = |s: &str| interpolate(s, &lookup, &mut unset);
        assert_eq!(i("$USER and ${USER}").unwrap(), "ann and ann");
        assert_eq!(i("$$USER costs $$5").unwrap(), "$USER costs $5");
        assert_eq!(i("${NOPE:-x} ${EMPTY:-y} ${EMPTY-z}").unwrap(), "x y ");
        assert_eq!(i("${NOPE:-${USER}-2}").unwrap(), "ann-2");
        assert_eq!(i("${USER:+set} ${NOPE:+set}.").unwrap(), "set .");
        assert!(i("${NOPE:?give it}")
            .unwrap_err()
            .contains("NOPE is required: give it"));
        assert!(i("${USER").unwrap_err().contains("closing"));
        assert!(i("cost: $5").unwrap_err().contains("$$"));
        assert!(i("${USER/x}").unwrap_err().contains(":-"));
        assert_eq!(i("[$NOPE]").unwrap(), "[]");
        assert_eq!(unset, ["NOPE"]);
    }

    #[test]
    fn env_files() {
        let entries = parse_env_file(
            "# comment\n\nA=1\nexport B = two words  # note\nC=\"x\\ny \\\"q\\\"\"\nD='$raw'\nE\nF=\n",
        )
        .unwrap();
        let get = |k: &str| entries.iter().find(|(key, _)| key == k).unwrap().1.clone();
        assert_eq!(get("A").as_deref(), Some("1"));
        assert_eq!(get("B").as_deref(), Some("two words"));
        assert_eq!(get("C").as_deref(), Some("x\ny \"q\""));
        assert_eq!(get("D").as_deref(), Some("$raw"));
        assert_eq!(get("E"), None);
        assert_eq!(get("F").as_deref(), Some(""));
        let err = parse_env_file("A=1\nB=\"open\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(parse_env_file("A B=1").unwrap_err().contains("line 1"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536").unwrap(), 65536);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("1.5M").unwrap(), 1_572_864);
        assert_eq!(parse_size("1gb").unwrap(), 1 << 30);
        assert!(parse_size("12 parsecs").is_err());
    }
}
