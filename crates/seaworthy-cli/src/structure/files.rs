//! `fileExistenceTests`, `fileContentTests` and `licenseTests`, read through the engine's archive API from a
//! container that is created and never started: no shell, `ls` or `cat` needed in the image, and
//! no process runs. One such container serves every file test of a spec (one per test with
//! `--isolate`).

use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use seaworthy::{Container, Error, FileKind, FileMetadata};

use super::report::{Kind, TestResult};
use super::spec::{ExecutableBy, FileContentTest, FileExistenceTest, LicenseTest, SpecFile};
use super::{Context, Role};

/// Runs the file tests of `spec`.
pub async fn run(ctx: &Context, spec: &SpecFile, file_index: usize) -> Vec<TestResult> {
    let file = spec.path.display().to_string();
    let existence = &spec.spec.file_existence_tests;
    let content = &spec.spec.file_content_tests;
    let licenses = &spec.spec.license_tests;
    if existence.is_empty() && content.is_empty() && licenses.is_empty() {
        return Vec::new();
    }
    let run = &spec.spec.container_run_options;
    let shared = if ctx.isolate {
        None
    } else {
        Some(ctx.files_container(run).await)
    };
    enum Job<'a> {
        Exists(usize, &'a FileExistenceTest),
        Contents(usize, &'a FileContentTest),
        License(usize, &'a LicenseTest),
    }
    let jobs = existence
        .iter()
        .enumerate()
        .map(|(i, t)| Job::Exists(i, t))
        .chain(content.iter().enumerate().map(|(i, t)| Job::Contents(i, t)))
        .chain(licenses.iter().enumerate().map(|(i, t)| Job::License(i, t)));
    let results: Vec<TestResult> = stream::iter(jobs)
        .map(|job| {
            let shared = shared.clone();
            let file = file.clone();
            async move {
                let started = Instant::now();
                let (order, name) = match &job {
                    Job::Exists(i, t) => ((file_index, Kind::FileExistence, *i, 0), t.name.clone()),
                    Job::Contents(i, t) => ((file_index, Kind::FileContent, *i, 0), t.name.clone()),
                    Job::License(i, _) => (
                        (file_index, Kind::License, *i, 0),
                        format!("license test {}", i + 1),
                    ),
                };
                // With --isolate, a container per test, as container-structure-test does.
                let own = match &shared {
                    Some(_) => None,
                    None => Some(ctx.create_files_container(run).await),
                };
                let container: Result<&Container, String> = match (&shared, &own) {
                    (Some(Ok(c)), _) => Ok(c.as_ref()),
                    (Some(Err(e)), _) | (None, Some(Err(e))) => Err(e.clone()),
                    (None, Some(Ok(c))) => Ok(c),
                    (None, None) => Err("no container".into()),
                };
                let errors = match container {
                    Err(e) => vec![format!("cannot create a container of the image: {e}")],
                    Ok(c) => match &job {
                        Job::Exists(_, t) => check_existence(ctx, c, t).await,
                        Job::Contents(_, t) => check_contents(c, t).await,
                        Job::License(_, t) => check_licenses(ctx, c, t, &file).await,
                    },
                };
                if let Some(Ok(c)) = own {
                    ctx.remove(c).await;
                }
                let result = TestResult::new(&file, order, name, started.elapsed(), errors);
                ctx.progress.result(&result);
                result
            }
        })
        .buffer_unordered(ctx.jobs)
        .collect()
        .await;
    drop(shared);
    if !ctx.isolate {
        ctx.release(Role::Files, run).await;
    }
    results
}

async fn check_existence(ctx: &Context, c: &Container, t: &FileExistenceTest) -> Vec<String> {
    // The owner is only in the archive's tar header; everything else is in the engine's stat,
    // which costs a few milliseconds where an archive costs a hundred.
    let meta = if t.uid.is_some() || t.gid.is_some() {
        match c.file_metadata(&t.path).await {
            Ok(m) => Ok(Some(m)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    } else {
        stat(ctx, c, &t.path).await
    };
    let meta = match meta {
        Ok(m) => m,
        Err(e) => return vec![format!("cannot read {}: {e}", t.path)],
    };
    let Some(meta) = meta else {
        return if t.should_exist {
            vec![format!("{} does not exist", t.path)]
        } else {
            vec![]
        };
    };
    if !t.should_exist {
        return vec![format!("{} exists but should not", t.path)];
    }
    let mut errors = Vec::new();
    if let Some(expected) = &t.permissions {
        let ls = meta.mode_string();
        let go = go_mode_string(&meta);
        if expected.0 != ls && expected.0 != go {
            errors.push(format!(
                "{} has permissions {ls}, expected {}",
                t.path, expected.0
            ));
        }
    }
    if let Some(uid) = t.uid {
        if i64::try_from(meta.uid) != Ok(uid) {
            errors.push(format!(
                "{} is owned by uid {}, expected {uid}",
                t.path, meta.uid
            ));
        }
    }
    if let Some(gid) = t.gid {
        if i64::try_from(meta.gid) != Ok(gid) {
            errors.push(format!(
                "{} belongs to gid {}, expected {gid}",
                t.path, meta.gid
            ));
        }
    }
    if let Some(by) = t.is_executable_by {
        let bits = match by {
            ExecutableBy::Owner => 0o100,
            ExecutableBy::Group => 0o010,
            ExecutableBy::Other => 0o001,
            ExecutableBy::Any => 0o111,
        };
        if meta.mode & bits == 0 {
            errors.push(format!(
                "{} ({}) is not executable by {}",
                t.path,
                meta.mode_string(),
                match by {
                    ExecutableBy::Owner => "its owner",
                    ExecutableBy::Group => "its group",
                    ExecutableBy::Other => "others",
                    ExecutableBy::Any => "anyone",
                }
            ));
        }
    }
    errors
}

async fn check_contents(c: &Container, t: &FileContentTest) -> Vec<String> {
    let text = match c.read_file(&t.path).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(Error::NotFound { .. }) => return vec![format!("{} does not exist", t.path)],
        Err(e) => return vec![format!("cannot read {}: {e}", t.path)],
    };
    let mut errors = Vec::new();
    for p in &t.expected_contents {
        if !p.is_match(&text) {
            errors.push(format!("{} does not match {p}", t.path));
        }
    }
    for p in &t.excluded_contents {
        if p.is_match(&text) {
            errors.push(format!("{} matches excluded {p}", t.path));
        }
    }
    errors
}

/// The Debian packages' documentation, one directory per package.
const DEBIAN_DOC: &str = "/usr/share/doc";

/// Words that fail a license file, in capitals, as container-structure-test's list.
const REFUSED_LICENSES: [&str; 2] = ["AGPL", "WTFPL"];

/// A package container-structure-test never checks.
const UNCHECKED_PACKAGE: &str = "libgnutls30";

/// A license test, as container-structure-test's `pkg/types/v2/licenses.go` runs it: with
/// `debian`, each directory directly under `/usr/share/doc` (symbolic links to directories are
/// not followed, as there; `libgnutls30` is skipped) must hold a readable `copyright` file; that
/// file and each of `files` must not contain `AGPL` or `WTFPL` in any case.
async fn check_licenses(
    ctx: &Context,
    c: &Container,
    t: &LicenseTest,
    spec_file: &str,
) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    let mut errors = Vec::new();
    if t.debian {
        match c.list_dir(DEBIAN_DOC).await {
            Ok(entries) => files.extend(
                entries
                    .iter()
                    .filter(|e| e.kind == FileKind::Directory && e.name != UNCHECKED_PACKAGE)
                    .map(|e| format!("{DEBIAN_DOC}/{}/copyright", e.name)),
            ),
            Err(e) => errors.push(format!("cannot read {DEBIAN_DOC}: {e}")),
        }
    }
    files.extend(t.files.iter().cloned());
    let checks = stream::iter(files)
        .map(|path| async move { (check_license_file(ctx, c, &path).await, path) })
        .buffered(ctx.jobs.max(1))
        .collect::<Vec<_>>()
        .await;
    for ((error, relative_link), path) in checks {
        errors.extend(error);
        if let Some(target) = relative_link {
            ctx.progress.note(&format!(
                "note: {spec_file}: license file {path} is a relative symbolic link (to \
                 {target}): read from its own directory (container-structure-test reads it from \
                 `/` and fails, its issue #77)"
            ));
        }
    }
    errors
}

/// Why the license file at `path` fails, if it does, and its target if it is a relative
/// symbolic link.
async fn check_license_file(
    ctx: &Context,
    c: &Container,
    path: &str,
) -> (Option<String>, Option<String>) {
    let relative_link = match stat(ctx, c, path).await {
        // The engine's stat gives a link's target resolved; the archive's header, as written.
        Ok(Some(m)) if m.kind == FileKind::Symlink => c
            .file_metadata(path)
            .await
            .ok()
            .and_then(|m| m.link_target)
            .filter(|t| !t.starts_with('/')),
        Ok(Some(_)) => None,
        Ok(None) => return (Some(format!("license file {path} does not exist")), None),
        Err(e) => return (Some(format!("cannot read license file {path}: {e}")), None),
    };
    let error = match c.read_file(path).await {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).to_uppercase();
            REFUSED_LICENSES
                .iter()
                .find(|word| text.contains(*word))
                .map(|word| format!("license file {path} contains {word}"))
        }
        Err(Error::NotFound { .. }) => Some(format!("license file {path} does not exist")),
        Err(e) => Some(format!("cannot read license file {path}: {e}")),
    };
    (error, relative_link)
}

/// `path`'s metadata from the engine's stat (`HEAD /containers/{id}/archive`): kind, mode, size
/// and link target, the link not followed; the owner is not part of it (reported as 0).
async fn stat(ctx: &Context, c: &Container, path: &str) -> Result<Option<FileMetadata>, String> {
    let options = seaworthy::bollard::query_parameters::ContainerArchiveInfoOptions {
        path: path.to_string(),
    };
    let info = match ctx
        .session
        .engine()
        .docker()
        .get_container_archive_info(&c.id(), Some(options))
        .await
    {
        Ok(info) => info,
        Err(seaworthy::bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    Ok(Some(from_go_mode(
        info.name,
        info.file_mode,
        u64::try_from(info.size).unwrap_or(0),
        Some(info.link_target).filter(|t| !t.is_empty()),
    )))
}

/// Go's `os.FileMode` bits (what the engine's stat reports) as [`FileMetadata`].
fn from_go_mode(name: String, go: u32, size: u64, link_target: Option<String>) -> FileMetadata {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const OTHER: u32 = (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19);
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const STICKY: u32 = 1 << 20;
    let kind = if go & DIR != 0 {
        FileKind::Directory
    } else if go & SYMLINK != 0 {
        FileKind::Symlink
    } else if go & OTHER != 0 {
        FileKind::Other
    } else {
        FileKind::File
    };
    let mut mode = go & 0o777;
    for (bit, unix) in [(SETUID, 0o4000), (SETGID, 0o2000), (STICKY, 0o1000)] {
        if go & bit != 0 {
            mode |= unix;
        }
    }
    FileMetadata {
        name,
        kind,
        mode,
        uid: 0,
        gid: 0,
        size,
        link_target,
    }
}

/// The mode as Go's `os.FileMode` prints it (what container-structure-test compares):
/// type and special-bit letters (`d`, `L`, `u`, `g`, `t`...), then `rwxrwxrwx`.
pub fn go_mode_string(meta: &FileMetadata) -> String {
    let mut s = String::new();
    match meta.kind {
        FileKind::Directory => s.push('d'),
        FileKind::Symlink => s.push('L'),
        FileKind::Other => s.push('?'),
        FileKind::File | FileKind::HardLink => {}
    }
    if meta.mode & 0o4000 != 0 {
        s.push('u');
    }
    if meta.mode & 0o2000 != 0 {
        s.push('g');
    }
    if meta.mode & 0o1000 != 0 {
        s.push('t');
    }
    if s.is_empty() {
        s.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        s.push(if meta.mode & (1 << (8 - i)) != 0 {
            c
        } else {
            '-'
        });
    }
    s
}

/// Shared containers are handed out as `Arc`s.
pub type SharedContainer = Result<Arc<Container>, String>;

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kind: FileKind, mode: u32) -> FileMetadata {
        FileMetadata {
            name: "x".into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            size: 0,
            link_target: None,
        }
    }

    #[test]
    fn the_engine_stat_mode_is_read_like_a_tar_header() {
        let dir = from_go_mode("d".into(), (1 << 31) | (1 << 20) | 0o777, 0, None);
        assert_eq!(
            (dir.kind, dir.mode_string()),
            (FileKind::Directory, "drwxrwxrwt".into())
        );
        let suid = from_go_mode("f".into(), (1 << 23) | 0o750, 2, None);
        assert_eq!(
            (suid.kind, suid.mode_string()),
            (FileKind::File, "-rwsr-x---".into())
        );
        let link = from_go_mode("l".into(), (1 << 27) | 0o777, 0, Some("t".into()));
        assert_eq!(link.kind, FileKind::Symlink);
        assert_eq!(go_mode_string(&link), "Lrwxrwxrwx");
    }

    #[test]
    fn go_mode_strings() {
        assert_eq!(go_mode_string(&meta(FileKind::File, 0o644)), "-rw-r--r--");
        assert_eq!(
            go_mode_string(&meta(FileKind::Directory, 0o755)),
            "drwxr-xr-x"
        );
        assert_eq!(
            go_mode_string(&meta(FileKind::Symlink, 0o777)),
            "Lrwxrwxrwx"
        );
        assert_eq!(go_mode_string(&meta(FileKind::File, 0o4755)), "urwxr-xr-x");
        assert_eq!(
            go_mode_string(&meta(FileKind::Directory, 0o1777)),
            "dtrwxrwxrwx"
        );
    }
}
