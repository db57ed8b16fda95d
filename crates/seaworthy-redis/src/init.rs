//! Init steps: what builds a Redis fixture's baseline (seed commands, a file of them, closures of
//! the user's), run once per container before the baseline is recorded.

use std::path::Path;

use redis::aio::ConnectionManager;
use redis::Value;

use crate::baseline::first_error;
use crate::definition::{InitStep, Redis};
use crate::error::{Error, Result};

/// What an init closure ([`Redis::with_init`]) gets: the server it builds the baseline in.
#[derive(Clone)]
#[non_exhaustive]
pub struct InitContext {
    /// A connection to database 0 (its task on Seaworthy's runtime); `SELECT` on a connection
    /// of your own ([`client`](Self::client)) for other databases.
    pub connection: ConnectionManager,
    /// A client for the server, to open connections of your own.
    pub client: redis::Client,
    /// The container, for messages.
    container: String,
}

impl std::fmt::Debug for InitContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitContext").finish_non_exhaustive()
    }
}

/// One command of a seed text: its words, and the line it starts on (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeedCommand {
    pub(crate) line: usize,
    pub(crate) words: Vec<Vec<u8>>,
}

/// Parses seed commands as `redis-cli` reads them: one command a line, words separated by
/// blanks, `"double quoted"` words with `\n`, `\r`, `\t`, `\"`, `\\` and `\xHH` escapes,
/// `'single quoted'` words taken as they are; blank lines and lines starting with `#` skipped.
/// The error names the line.
pub(crate) fn parse_commands(text: &str) -> std::result::Result<Vec<SeedCommand>, String> {
    let mut commands = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let words = split_words(trimmed).map_err(|reason| format!("line {line_no}: {reason}"))?;
        commands.push(SeedCommand {
            line: line_no,
            words,
        });
    }
    Ok(commands)
}

fn split_words(line: &str) -> std::result::Result<Vec<Vec<u8>>, String> {
    let bytes = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let mut word = Vec::new();
        match bytes[i] {
            b'"' => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err("unterminated \"quoted\" word".into()),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let escaped = bytes.get(i + 1).copied();
                            i += 2;
                            match escaped {
                                Some(b'n') => word.push(b'\n'),
                                Some(b'r') => word.push(b'\r'),
                                Some(b't') => word.push(b'\t'),
                                Some(b'x') => {
                                    let hex = line.get(i..i + 2).unwrap_or("");
                                    let byte = u8::from_str_radix(hex, 16).map_err(|_| {
                                        format!("`\\x` needs two hex digits, found {hex:?}")
                                    })?;
                                    word.push(byte);
                                    i += 2;
                                }
                                Some(c) => word.push(c),
                                None => return Err("unterminated \"quoted\" word".into()),
                            }
                        }
                        Some(&c) => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err("unterminated 'quoted' word".into()),
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
            }
            _ => {
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    word.push(bytes[i]);
                    i += 1;
                }
            }
        }
        if i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            return Err("a quoted word must be followed by a blank".into());
        }
        words.push(word);
    }
    Ok(words)
}

/// Runs seed commands pipelined (one round trip); the first command the server refuses fails
/// the step, naming its line.
async fn run_commands(
    container: &str,
    what: &str,
    text: &str,
    manager: &ConnectionManager,
) -> Result<()> {
    let commands = parse_commands(text)
        .map_err(|reason| Error::fixture(container, format!("{what}: {reason}")))?;
    if commands.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for command in &commands {
        let mut cmd = redis::cmd(&String::from_utf8_lossy(&command.words[0]));
        for word in &command.words[1..] {
            cmd.arg(word.as_slice());
        }
        pipe.add_command(cmd);
    }
    let mut conn = manager.clone();
    let answers: Vec<Value> =
        seaworthy::runtime::run(async move { pipe.query_async(&mut conn).await })
            .await
            .map_err(|e| Error::redis(container, what, e))?;
    if let Some((i, e)) = first_error(&answers) {
        let line = commands.get(i).map(|c| c.line).unwrap_or(0);
        return Err(Error::redis(container, format!("{what}, line {line}"), e));
    }
    Ok(())
}

/// Runs the seed commands of the file at `path` (see [`Redis::with_seed_file`]).
pub(crate) async fn run_file(
    path: &Path,
    ctx: &InitContext,
) -> std::result::Result<(), seaworthy::kit::InitError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("read the seed file {}: {e}", path.display()))?;
    let what = format!("seed file {}", path.display());
    run_commands(&ctx.container, &what, &text, &ctx.connection)
        .await
        .map_err(|e| seaworthy::kit::error_chain(&e).into())
}

/// Runs the definition's init steps in order; an error names the step. When the baseline is
/// to be cached, the server then writes its data to disk (`SAVE`), where the cache's image keeps
/// it.
pub(crate) async fn run(
    definition: &Redis,
    container: &str,
    client: &redis::Client,
    manager: &ConnectionManager,
) -> Result<()> {
    for (i, step) in definition.init.iter().enumerate() {
        let name = step.name(i);
        match step {
            InitStep::Sql(text) => {
                run_commands(container, &format!("init step `{name}`"), text, manager).await?
            }
            InitStep::Closure { run, .. } => {
                let ctx = InitContext {
                    connection: manager.clone(),
                    client: client.clone(),
                    container: container.to_string(),
                };
                run(ctx).await.map_err(|e| {
                    Error::fixture(container, format!("init step `{name}` failed: {e}"))
                })?;
            }
        }
    }
    if definition.persistent() {
        let mut conn = manager.clone();
        seaworthy::runtime::run(
            async move { redis::cmd("SAVE").query_async::<()>(&mut conn).await },
        )
        .await
        .map_err(|e| Error::redis(container, "SAVE the baseline for the cache", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Vec<String>> {
        parse_commands(text)
            .unwrap()
            .into_iter()
            .map(|c| {
                c.words
                    .into_iter()
                    .map(|w| String::from_utf8(w).unwrap())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn seed_commands_are_read_like_redis_cli() {
        let text = "# users\nSET user:1 ada\n\n  HSET h 'a b' \"c\\\"d\\x41\\n\"\nRPUSH l x y z";
        assert_eq!(
            words(text),
            vec![
                vec!["SET", "user:1", "ada"],
                vec!["HSET", "h", "a b", "c\"dA\n"],
                vec!["RPUSH", "l", "x", "y", "z"],
            ]
        );
        assert_eq!(parse_commands(text).unwrap()[1].line, 4);
    }

    #[test]
    fn bad_quoting_names_the_line() {
        let err = parse_commands("SET a 1\nSET b \"open").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(parse_commands("SET a \"x\"y")
            .unwrap_err()
            .contains("blank"));
        assert!(parse_commands("SET a \"\\xZZ\"")
            .unwrap_err()
            .contains("hex"));
    }
}
