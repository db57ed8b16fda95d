//! `key`/`value`/`isRegex` entries (`envVars`, `labels`, `globalEnvVars`, HTTP `headers`), read
//! so that a value marked `isRegex: true` is compiled while parsing and a bad one is refused at
//! the value's own line.
//!
//! The value may come before or after `isRegex`. When `isRegex: true` comes first, the value is
//! read as a regex where it stands. When it comes after, the value was already read as text: the
//! entry is refused, its position among the entries of the file is noted, and
//! [`parse_located`] parses the file again, reading that entry's value as a regex, so the error
//! names the value's line and field path rather than the entry's.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::values::Bool11;
use super::{EnvVar, Pattern};

thread_local! {
    /// How many entries the current parse has read.
    static SEEN: Cell<usize> = const { Cell::new(0) };
    /// The entry (by position) whose value is to be read as a regex wherever it stands.
    static CHECK_AT: Cell<Option<usize>> = const { Cell::new(None) };
    /// The entry (by position) refused for a bad regex read before its `isRegex: true`.
    static REFUSED_AT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Runs `parse` (one parse of a whole file); when it refused an entry whose bad regex it could
/// only blame on the entry, runs it again to blame the value.
pub(super) fn parse_located<T, E>(parse: impl Fn() -> Result<T, E>) -> Result<T, E> {
    let once = |check_at: Option<usize>| {
        SEEN.with(|n| n.set(0));
        CHECK_AT.with(|c| c.set(check_at));
        REFUSED_AT.with(|r| r.set(None));
        let result = parse();
        CHECK_AT.with(|c| c.set(None));
        result
    };
    let first = once(None);
    match REFUSED_AT.with(Cell::take) {
        Some(at) if first.is_err() => once(Some(at)).and(first),
        _ => first,
    }
}

const FIELDS: &[&str] = &["key", "value", "isRegex"];

enum Field {
    Key,
    Value,
    IsRegex,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`key`, `value` or `isRegex`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                match v {
                    "key" => Ok(Field::Key),
                    "value" => Ok(Field::Value),
                    "isRegex" => Ok(Field::IsRegex),
                    _ => Err(E::unknown_field(v, FIELDS)),
                }
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de> Deserialize<'de> for EnvVar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct("EnvVar", FIELDS, EnvVarVisitor)
    }
}

struct EnvVarVisitor;

impl<'de> Visitor<'de> for EnvVarVisitor {
    type Value = EnvVar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an entry with `key`, `value` and `isRegex`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EnvVar, A::Error> {
        let at = SEEN.with(|n| n.replace(n.get() + 1));
        let check_here = CHECK_AT.with(Cell::get) == Some(at);
        let mut key: Option<String> = None;
        let mut value: Option<String> = None;
        let mut pattern: Option<Pattern> = None;
        let mut is_regex: Option<bool> = None;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Key if key.is_some() => return Err(de::Error::duplicate_field("key")),
                Field::Value if value.is_some() => return Err(de::Error::duplicate_field("value")),
                Field::IsRegex if is_regex.is_some() => {
                    return Err(de::Error::duplicate_field("isRegex"))
                }
                Field::Key => key = Some(map.next_value()?),
                // Known to be a regex: compiled here, so an error names this line.
                Field::Value if is_regex == Some(true) || check_here => {
                    let p: Pattern = map.next_value()?;
                    value = Some(p.source().to_string());
                    pattern = Some(p);
                }
                Field::Value => value = Some(map.next_value()?),
                Field::IsRegex => is_regex = Some(map.next_value::<Bool11>()?.0),
            }
        }
        let key = key.ok_or_else(|| de::Error::missing_field("key"))?;
        let value = value.unwrap_or_default();
        let is_regex = is_regex.unwrap_or(false);
        let pattern = match pattern {
            Some(p) => Some(p),
            None if is_regex => match Pattern::compile(&value) {
                Ok(p) => Some(p),
                Err(e) => {
                    REFUSED_AT.with(|r| r.set(Some(at)));
                    return Err(de::Error::custom(format!("value: {e} (isRegex is true)")));
                }
            },
            None => None,
        };
        Ok(EnvVar {
            key,
            value,
            is_regex,
            pattern: pattern.filter(|_| is_regex),
        })
    }
}
