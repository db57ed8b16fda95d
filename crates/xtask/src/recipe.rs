//! Recipe hashes: what decides whether an image must be rebuilt.
//!
//! An image's recipe is everything its build reads from the repository: the
//! files of its directory under `tests/images/` (names, contents and
//! executable bits), the fixed build parameters that live in the xtask code
//! (for example the `docker import --change` instructions), and the recipe
//! hash of its base image. The SHA-256 over all of it is stored in the
//! image's `io.seaworthy.recipe` label; an image whose label matches is up
//! to date.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// Bump to rebuild every image after a change in how images are built that
/// the recipe files and build parameters do not capture.
const RECIPE_FORMAT: &str = "seaworthy-test recipe v1";

/// Computes the recipe hash (64 hex digits) of the image whose recipe files
/// are in `dir`, built with `parameters` on top of a base image with recipe
/// hash `base`.
pub fn hash(dir: &Path, parameters: &[String], base: Option<&str>) -> Result<String> {
    let mut hasher = Sha256::new();
    field(&mut hasher, "format", RECIPE_FORMAT.as_bytes());
    for parameter in parameters {
        field(&mut hasher, "parameter", parameter.as_bytes());
    }
    for (relative, path) in files(dir)? {
        let metadata =
            fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let executable = metadata.permissions().mode() & 0o111 != 0;
        let contents =
            fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        field(&mut hasher, "file", relative.as_bytes());
        field(
            &mut hasher,
            "executable",
            if executable { b"yes" } else { b"no" },
        );
        field(&mut hasher, "contents", &contents);
    }
    if let Some(base) = base {
        field(&mut hasher, "base", base.as_bytes());
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Feeds one length-prefixed, named field to the hasher, so that different
/// recipes cannot produce the same byte stream.
fn field(hasher: &mut Sha256, name: &str, value: &[u8]) {
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update((value.len() as u64).to_le_bytes());
    hasher.update(value);
}

/// All regular files under `dir`, as (`/`-separated relative path, path),
/// sorted by relative path. Symbolic links are refused: their meaning
/// depends on what they point to.
fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    let mut pending = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, current)) = pending.pop() {
        let entries =
            fs::read_dir(&current).with_context(|| format!("cannot list {}", current.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", current.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = format!("{prefix}{name}");
            let file_type = entry
                .file_type()
                .with_context(|| format!("cannot read {}", entry.path().display()))?;
            if file_type.is_dir() {
                pending.push((format!("{relative}/"), entry.path()));
            } else if file_type.is_file() {
                found.push((relative, entry.path()));
            } else {
                bail!(
                    "{}: recipes may only contain regular files and directories",
                    entry.path().display()
                );
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, empty directory, removed when dropped.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("xtask-recipe-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn hash_depends_on_every_input() {
        let scratch = ScratchDir::new("inputs");
        let dir = &scratch.0;
        fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::create_dir(dir.join("sub")).unwrap();
        fs::write(dir.join("sub/script.sh"), "echo hi\n").unwrap();

        let params = vec!["CMD [\"sh\"]".to_string()];
        let first = hash(dir, &params, None).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(first, hash(dir, &params, None).unwrap(), "deterministic");
        assert_ne!(first, hash(dir, &[], None).unwrap(), "parameters");
        assert_ne!(first, hash(dir, &params, Some("00")).unwrap(), "base");

        fs::set_permissions(dir.join("sub/script.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        let executable = hash(dir, &params, None).unwrap();
        assert_ne!(first, executable, "executable bit");

        fs::write(dir.join("sub/script.sh"), "echo bye\n").unwrap();
        assert_ne!(executable, hash(dir, &params, None).unwrap(), "contents");
    }

    #[test]
    fn files_are_sorted_and_relative() {
        let scratch = ScratchDir::new("sorted");
        let dir = &scratch.0;
        fs::create_dir(dir.join("b")).unwrap();
        fs::write(dir.join("b/x"), "").unwrap();
        fs::write(dir.join("a"), "").unwrap();
        fs::write(dir.join("c"), "").unwrap();
        let names: Vec<String> = files(dir)
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["a", "b/x", "c"]);
    }
}
