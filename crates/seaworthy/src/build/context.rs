//! The build context: the archive sent to the engine and the content hash that keys the cache.
//!
//! Paths are walked in sorted order, `.dockerignore` applied (Docker's rules: the last matching
//! pattern decides, `!` re-includes, a matching directory covers its contents, the Dockerfile and
//! `.dockerignore` are always sent), and every entry is archived with owner root and its
//! permission bits. The hash covers paths, kinds, permission bits, link targets and contents, plus
//! the build's options; modification times are archived but not hashed.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Dockerfile, ImageBuild, INLINE_DOCKERFILE};
use crate::error::{Error, Result};

/// The context archive and the content hash of a build.
pub(super) struct Prepared {
    pub(super) archive: Vec<u8>,
    pub(super) hash: String,
    pub(super) dockerfile_in_archive: String,
}

/// Builds the context archive and the content hash (blocking file I/O).
pub(super) fn prepare(build: &ImageBuild) -> Result<Prepared> {
    let io = |action: String| move |e: std::io::Error| Error::io(action, e);
    let mut hasher = Sha256::new();
    let mut feed = |parts: &[&[u8]]| {
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    };
    feed(&[b"seaworthy-build-v1"]);
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(false);

    // The Dockerfile: a file of the context, a file outside it, or text.
    let (dockerfile_in_archive, extra_dockerfile): (String, Option<Vec<u8>>) =
        match (&build.dockerfile, &build.context) {
            (Dockerfile::Inline(text), _) => (
                INLINE_DOCKERFILE.to_string(),
                Some(text.as_bytes().to_vec()),
            ),
            (Dockerfile::Path(path), Some(context)) => {
                let full = if path.is_absolute() {
                    path.clone()
                } else {
                    context.join(path)
                };
                match relative_inside(context, &full) {
                    Some(rel) => {
                        if !full.is_file() {
                            return Err(Error::Build {
                                image: build.tag.clone().unwrap_or_else(|| "image".into()),
                                dockerfile: full.display().to_string(),
                                reason: "the Dockerfile does not exist".into(),
                                log_tail: Vec::new(),
                            });
                        }
                        (rel, None)
                    }
                    None => {
                        let text = std::fs::read(&full)
                            .map_err(io(format!("read the Dockerfile {}", full.display())))?;
                        (INLINE_DOCKERFILE.to_string(), Some(text))
                    }
                }
            }
            (Dockerfile::Path(path), None) => {
                let text = std::fs::read(path)
                    .map_err(io(format!("read the Dockerfile {}", path.display())))?;
                (INLINE_DOCKERFILE.to_string(), Some(text))
            }
        };
    feed(&[b"dockerfile", dockerfile_in_archive.as_bytes()]);

    if let Some(context) = &build.context {
        let meta = std::fs::metadata(context).map_err(io(format!(
            "read the build context directory {}",
            context.display()
        )))?;
        if !meta.is_dir() {
            return Err(Error::invalid(
                "build context",
                &context.display().to_string(),
                "is not a directory",
            ));
        }
        let ignore = DockerIgnore::read(context)?;
        let mut files = Vec::new();
        walk(context, "", &ignore, &dockerfile_in_archive, &mut files)
            .map_err(io(format!("read the build context {}", context.display())))?;
        for rel in files {
            add_entry(&mut archive, context, &rel, &mut feed)
                .map_err(io(format!("archive {} of the build context", rel)))?;
        }
    }
    if let Some(text) = extra_dockerfile {
        feed(&[b"inline-dockerfile", &text]);
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        archive
            .append_data(&mut header, INLINE_DOCKERFILE, text.as_slice())
            .map_err(io("archive the Dockerfile".to_string()))?;
    }
    for (k, v) in &build.build_args {
        feed(&[b"arg", k.as_bytes(), v.as_bytes()]);
    }
    if let Some(t) = &build.target {
        feed(&[b"target", t.as_bytes()]);
    }
    for (k, v) in &build.labels {
        feed(&[b"label", k.as_bytes(), v.as_bytes()]);
    }
    if let Some(n) = &build.network_mode {
        feed(&[b"network", n.as_bytes()]);
    }
    let archive = archive
        .into_inner()
        .map_err(io("finish the build context archive".to_string()))?;
    Ok(Prepared {
        archive,
        hash: hex::encode(hasher.finalize()),
        dockerfile_in_archive,
    })
}

/// `path` relative to `context` with `/` separators, when it lies inside it.
fn relative_inside(context: &Path, path: &Path) -> Option<String> {
    let context = context.canonicalize().ok()?;
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let rel = path.strip_prefix(&context).ok()?;
    Some(
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// Collects the context's paths (relative, sorted, directories before their contents).
fn walk(
    root: &Path,
    rel: &str,
    ignore: &DockerIgnore,
    dockerfile: &str,
    out: &mut Vec<String>,
) -> std::io::Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    for name in names {
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        // Docker always sends the Dockerfile and .dockerignore, even when ignored.
        let always = child == dockerfile || child == ".dockerignore";
        let meta = std::fs::symlink_metadata(root.join(&child))?;
        let ignored = !always && ignore.ignores(&child);
        if meta.is_dir() {
            // A directory may be ignored while an exception re-includes something inside it.
            if !ignored {
                out.push(child.clone());
            }
            if !ignored || ignore.has_exceptions() {
                walk(root, &child, ignore, dockerfile, out)?;
            }
        } else if !ignored {
            out.push(child);
        }
    }
    Ok(())
}

/// Appends one context entry to the archive and feeds what defines it to the hash.
fn add_entry(
    archive: &mut tar::Builder<Vec<u8>>,
    root: &Path,
    rel: &str,
    feed: &mut impl FnMut(&[&[u8]]),
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let full = root.join(rel);
    let meta = std::fs::symlink_metadata(&full)?;
    let mode = meta.permissions().mode() & 0o7777;
    let mut header = tar::Header::new_gnu();
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(
        meta.modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs()),
    );
    let mode_bytes = mode.to_le_bytes();
    if meta.is_dir() {
        feed(&[b"dir", rel.as_bytes(), &mode_bytes]);
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        archive.append_data(&mut header, format!("{rel}/"), std::io::empty())
    } else if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&full)?;
        let target_text = target.to_string_lossy().into_owned();
        feed(&[b"link", rel.as_bytes(), target_text.as_bytes()]);
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        archive.append_link(&mut header, rel, &target)
    } else if meta.is_file() {
        let data = std::fs::read(&full)?;
        feed(&[b"file", rel.as_bytes(), &mode_bytes, &data]);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        archive.append_data(&mut header, rel, data.as_slice())
    } else {
        // Sockets, FIFOs and devices cannot be sent; `docker build` skips them too.
        Ok(())
    }
}

/// The rules of a context's `.dockerignore`: the last matching rule decides, `!` re-includes.
struct DockerIgnore {
    rules: Vec<(regex::Regex, bool)>,
}

impl DockerIgnore {
    fn read(context: &Path) -> Result<Self> {
        let path = context.join(".dockerignore");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
            let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
            if pattern.is_empty() {
                continue;
            }
            let regex = regex::Regex::new(&glob_to_regex(pattern))
                .map_err(|e| Error::invalid(".dockerignore pattern", line, e.to_string()))?;
            rules.push((regex, exception));
        }
        Ok(DockerIgnore { rules })
    }

    fn ignores(&self, rel: &str) -> bool {
        let mut ignored = false;
        for (regex, exception) in &self.rules {
            if regex.is_match(rel) {
                ignored = !exception;
            }
        }
        ignored
    }

    fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(_, exception)| *exception)
    }
}

/// A `.dockerignore` glob as an anchored regex that also matches everything below a matching
/// directory: `*` and `?` stay within one path component, `**` crosses components.
fn glob_to_regex(glob: &str) -> String {
    let mut out = String::from("^");
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                // `**/` matches zero or more directories.
                if chars.get(i + 2) == Some(&'/') {
                    out.push_str("(?:.*/)?");
                    i += 3;
                } else {
                    out.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                // A character class: copy it through, turning `[!...]` into `[^...]`.
                match chars[i..].iter().position(|c| *c == ']') {
                    Some(end) if end > 1 => {
                        out.push('[');
                        let mut body: String = chars[i + 1..i + end].iter().collect();
                        if let Some(rest) = body.strip_prefix('!') {
                            body = format!("^{rest}");
                        }
                        out.push_str(&body.replace('\\', "\\\\"));
                        out.push(']');
                        i += end + 1;
                        continue;
                    }
                    _ => out.push_str("\\["),
                }
            }
            '\\' if i + 1 < chars.len() => {
                out.push_str(&regex::escape(&chars[i + 1].to_string()));
                i += 2;
                continue;
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    out.push_str("(?:/.*)?$");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(rules: &str) -> DockerIgnore {
        let dir = std::env::temp_dir().join(format!("sw-ignore-{}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(".dockerignore"), rules).unwrap();
        let ignore = DockerIgnore::read(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        ignore
    }

    #[test]
    fn dockerignore_globs_exceptions_and_directories() {
        let rules = ignore("# comment\n*.log\ntarget\n**/secret*\n!keep.log\n/docs/*.md\n");
        assert!(rules.ignores("a.log"));
        assert!(!rules.ignores("dir/a.log"), "* does not cross directories");
        assert!(!rules.ignores("keep.log"), "exceptions re-include");
        assert!(rules.ignores("target"));
        assert!(
            rules.ignores("target/debug/x"),
            "a directory covers its contents"
        );
        assert!(rules.ignores("secret.txt"));
        assert!(rules.ignores("a/b/secret.key"));
        assert!(rules.ignores("docs/readme.md"));
        assert!(!rules.ignores("docs/sub/readme.md"));
        assert!(!rules.ignores("src/main.rs"));
    }

    #[test]
    fn the_hash_ignores_modification_times_but_not_contents_or_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sw-hash-{}", rand::random::<u32>()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.join("sub/a.txt"), "a").unwrap();
        let hash = || prepare(&ImageBuild::new(&dir)).unwrap().hash;
        let first = hash();
        let file = std::fs::File::options()
            .write(true)
            .open(dir.join("sub/a.txt"))
            .unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        drop(file);
        assert_eq!(hash(), first, "mtime is not content");
        std::fs::set_permissions(
            dir.join("sub/a.txt"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let after_chmod = hash();
        assert_ne!(after_chmod, first);
        std::fs::write(dir.join("sub/a.txt"), "b").unwrap();
        assert_ne!(hash(), after_chmod);
        let with_arg = prepare(&ImageBuild::new(&dir).with_build_arg("A", "1"))
            .unwrap()
            .hash;
        assert_ne!(with_arg, hash());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
