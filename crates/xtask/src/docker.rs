//! The few Docker CLI calls the image builds need.

use std::process::Command;

use anyhow::{bail, Result};

use crate::cmd::{self, Log};

/// The label holding the hash of the recipe an image was built from.
pub const RECIPE_LABEL: &str = "io.seaworthy.recipe";

/// The standard label holding an image's human-readable title.
pub const TITLE_LABEL: &str = "org.opencontainers.image.title";

/// What the Docker engine has under an image tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageState {
    /// No image has this tag.
    Missing,
    /// An image has this tag.
    Present {
        /// The image ID (`sha256:...`).
        id: String,
        /// The image's size in bytes.
        size: u64,
        /// The value of its [`RECIPE_LABEL`] label, if it has one.
        recipe: Option<String>,
    },
}

/// Fails with a clear message unless the Docker engine answers.
pub fn ensure_engine() -> Result<()> {
    let output =
        cmd::query(Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(
            "the Docker engine does not answer (`docker version` failed); is dockerd running?\n  | {}",
            stderr.trim().replace('\n', "\n  | ")
        );
    }
    Ok(())
}

/// Looks up the image tagged `tag`.
pub fn inspect(tag: &str) -> Result<ImageState> {
    let format =
        format!("{{{{.Id}}}} {{{{.Size}}}} {{{{ index .Config.Labels \"{RECIPE_LABEL}\" }}}}");
    let output =
        cmd::query(Command::new("docker").args(["image", "inspect", "--format", &format, tag]))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        if stderr.contains("No such image") || stderr.contains("no such image") {
            return Ok(ImageState::Missing);
        }
        bail!("`docker image inspect {tag}` failed: {}", stderr.trim());
    }
    parse_inspect(&stdout)
        .ok_or_else(|| anyhow::anyhow!("unexpected `docker image inspect` output: {stdout:?}"))
}

/// Parses the output of the `docker image inspect` format used by [`inspect`].
fn parse_inspect(stdout: &str) -> Option<ImageState> {
    let mut fields = stdout.split_whitespace();
    let id = fields.next()?.to_string();
    let size = fields.next()?.parse().ok()?;
    // A missing label prints as `<no value>` or nothing at all.
    let recipe = fields
        .next()
        .filter(|value| value.len() == 64 && value.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string);
    Some(ImageState::Present { id, size, recipe })
}

/// Tags the image `id` as `tag`.
pub fn tag(id: &str, tag: &str, log: &Log) -> Result<()> {
    cmd::run_logged(Command::new("docker").args(["tag", id, tag]), log)
}

/// Removes the image `id` if nothing uses it any more (no tag, no child
/// image, no container). Failures are only logged: a stale image left
/// behind is harmless.
pub fn remove_if_unused(id: &str, log: &Log) -> Result<()> {
    let mut rm = Command::new("docker");
    rm.args(["image", "rm", id]);
    log.note(&format!("\n$ {}", cmd::display(&rm)))?;
    let output = cmd::query(&mut rm)?;
    log.note(String::from_utf8_lossy(&output.stdout).trim())?;
    log.note(String::from_utf8_lossy(&output.stderr).trim())?;
    Ok(())
}

/// A `docker import --change`/Dockerfile `LABEL` instruction for `key=value`.
pub fn label_instruction(key: &str, value: &str) -> String {
    format!("LABEL {key}=\"{value}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_inspect_output() {
        let hash = "ab".repeat(32);
        assert_eq!(
            parse_inspect(&format!("sha256:123 4096 {hash}\n")),
            Some(ImageState::Present {
                id: "sha256:123".into(),
                size: 4096,
                recipe: Some(hash),
            })
        );
        assert_eq!(
            parse_inspect("sha256:123 4096 <no value>\n"),
            Some(ImageState::Present {
                id: "sha256:123".into(),
                size: 4096,
                recipe: None,
            })
        );
        assert_eq!(
            parse_inspect("sha256:123 4096 \n"),
            Some(ImageState::Present {
                id: "sha256:123".into(),
                size: 4096,
                recipe: None,
            })
        );
        assert_eq!(parse_inspect(""), None);
    }

    #[test]
    fn formats_label_instructions() {
        assert_eq!(
            label_instruction(TITLE_LABEL, "seaworthy-test/base"),
            "LABEL org.opencontainers.image.title=\"seaworthy-test/base\""
        );
    }
}
