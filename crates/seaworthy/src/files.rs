//! Files inside a container, through the engine's archive API: no shell, `ls` or `cat` needed in the
//! image, and it works on created-but-not-started containers too.
//!
//! The one exception is a tmpfs mount: the archive API sees the directory *under* the mount, where
//! the container never looks. Paths in a tmpfs mount of a running container are read and written
//! with `tar` run inside the container (the image needs one: busybox, Debian, Alpine... have it);
//! without it, or when the container is not running, they are refused with an error naming the
//! container, the path and the mount.

use std::io::Read;
use std::path::Path;

use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use futures_util::StreamExt;

use crate::container::{inspect_here, Container, Inner};
use crate::error::{status_of, Error, Result};
use crate::exec::{exec_here, Exec, ExecOutput};
use crate::runtime::on_runtime;
use crate::spec::MountSource;

/// What kind of filesystem entry a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A hard link to an earlier entry of the archive.
    HardLink,
    /// Anything else (device, FIFO...).
    Other,
}

/// The metadata of a path in a container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileMetadata {
    /// The entry's name (the last path component).
    pub name: String,
    /// What it is.
    pub kind: FileKind,
    /// Permission bits, with setuid/setgid/sticky (`0o644`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u64,
    /// Owner group id.
    pub gid: u64,
    /// Size in bytes (0 for directories and links).
    pub size: u64,
    /// The target of a symbolic or hard link.
    pub link_target: Option<String>,
}

impl FileMetadata {
    /// The mode as `ls -l` prints it: `-rw-r--r--`, `drwxr-xr-x`, `lrwxrwxrwx`.
    pub fn mode_string(&self) -> String {
        let kind = match self.kind {
            FileKind::Directory => 'd',
            FileKind::Symlink => 'l',
            FileKind::File | FileKind::HardLink => '-',
            FileKind::Other => '?',
        };
        let mut s = String::with_capacity(10);
        s.push(kind);
        let bits = [
            (0o400, 'r'),
            (0o200, 'w'),
            (0o100, 'x'),
            (0o040, 'r'),
            (0o020, 'w'),
            (0o010, 'x'),
            (0o004, 'r'),
            (0o002, 'w'),
            (0o001, 'x'),
        ];
        for (i, (bit, c)) in bits.iter().enumerate() {
            let set = self.mode & bit != 0;
            let special = match i {
                2 => self.mode & 0o4000 != 0,
                5 => self.mode & 0o2000 != 0,
                8 => self.mode & 0o1000 != 0,
                _ => false,
            };
            s.push(match (set, special) {
                (true, false) => *c,
                (false, false) => '-',
                (true, true) if i == 8 => 't',
                (false, true) if i == 8 => 'T',
                (true, true) => 's',
                (false, true) => 'S',
            });
        }
        s
    }
}

fn metadata_of(header: &tar::Header, name: String) -> Result<FileMetadata> {
    let io = |e| Error::io("read a tar header from the engine", e);
    let kind = match header.entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => FileKind::File,
        tar::EntryType::Directory => FileKind::Directory,
        tar::EntryType::Symlink => FileKind::Symlink,
        tar::EntryType::Link => FileKind::HardLink,
        _ => FileKind::Other,
    };
    Ok(FileMetadata {
        name,
        kind,
        mode: header.mode().map_err(io)? & 0o7777,
        uid: header.uid().map_err(io)?,
        gid: header.gid().map_err(io)?,
        size: header.size().map_err(io)?,
        link_target: header
            .link_name()
            .map_err(io)?
            .map(|p| p.to_string_lossy().into_owned()),
    })
}

/// The path's components, without empty ones and `.`.
fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// The target of the tmpfs mount that `path` lies in (or, with `or_contains`, that lies in `path`).
fn tmpfs_mount<'a>(inner: &'a Inner, path: &str, or_contains: bool) -> Option<&'a str> {
    let path = components(path);
    inner
        .definition
        .mounts
        .iter()
        .filter(|m| matches!(m.source, MountSource::Tmpfs { .. }))
        .map(|m| m.target.as_str())
        .find(|target| {
            let target = components(target);
            path.starts_with(&target) || (or_contains && target.starts_with(&path))
        })
}

async fn is_running(inner: &Inner) -> Result<bool> {
    let info = inspect_here(inner).await?;
    Ok(info.state.and_then(|s| s.running).unwrap_or(false))
}

/// Runs `tar` (as root) in the container for `path` in the tmpfs at `mount`; a failure names the
/// container, the path and the mount, and says when the image has no `tar`.
async fn tar_in_container(
    inner: &Inner,
    doing: &str,
    path: &str,
    mount: &str,
    exec: Exec,
) -> Result<ExecOutput> {
    let out = exec_here(inner.docker(), &inner.name, &inner.name, exec.user("0")).await?;
    if out.success() {
        return Ok(out);
    }
    let why = match out.exit_code {
        126 | 127 => "the image has no `tar` to reach it with".to_string(),
        code => format!(
            "`tar` in the container exited with code {code}: {}",
            out.stderr_text().trim()
        ),
    };
    Err(Error::Container {
        container: inner.name.clone(),
        reason: format!("cannot {doing} {path} in the tmpfs mount {mount}: {why}"),
    })
}

/// Downloads the archive of `path`; with `limit`, stops once that many bytes have arrived. A path
/// in a tmpfs mount of a running container is archived by `tar` inside the container.
async fn download(inner: &Inner, path: &str, limit: Option<usize>) -> Result<Option<Vec<u8>>> {
    if let Some(mount) = tmpfs_mount(inner, path, false) {
        if is_running(inner).await? {
            return download_from_tmpfs(inner, path, mount).await;
        }
    }
    let mut stream = inner.docker().download_from_container(
        &inner.name,
        Some(DownloadFromContainerOptions {
            path: path.to_string(),
        }),
    );
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(e) if status_of(&e) == Some(404) => return Ok(None),
            Err(e) => {
                return Err(Error::docker(
                    format!("read {path} from container {}", inner.name),
                    e,
                ))
            }
        }
        if limit.is_some_and(|l| bytes.len() >= l) {
            break;
        }
    }
    Ok(Some(bytes))
}

/// The archive of `path` (in the tmpfs at `mount`), as the archive API would make it: one entry
/// named after the last component, a directory's contents under it; `None` when it does not exist.
async fn download_from_tmpfs(inner: &Inner, path: &str, mount: &str) -> Result<Option<Vec<u8>>> {
    let parts = components(path);
    let Some((base, parents)) = parts.split_last() else {
        return Ok(None);
    };
    let parent = format!("/{}", parents.join("/"));
    let tar = Exec::new(["tar", "-c", "-f", "-", "-C", &parent, base]);
    match tar_in_container(inner, "read", path, mount, tar).await {
        Ok(out) => Ok(Some(out.stdout)),
        // tar's exit status does not tell a missing path from other failures: `test -e` does
        // (1: it does not exist). Asked only once tar failed; without `test`, tar's error stands.
        Err(e) => {
            let test = Exec::new(["test", "-e", path]).user("0");
            match exec_here(inner.docker(), &inner.name, &inner.name, test).await {
                Ok(out) if out.exit_code == 1 => Ok(None),
                _ => Err(e),
            }
        }
    }
}

fn not_found(inner: &Inner, path: &str) -> Error {
    Error::NotFound {
        container: inner.name.clone(),
        path: path.to_string(),
    }
}

fn tar_error(inner: &Inner, path: &str, e: std::io::Error) -> Error {
    Error::io(
        format!("read the archive of {path} from container {}", inner.name),
        e,
    )
}

/// Entries of a directory archive: `(path inside the archive, metadata)`.
fn archive_entries(
    bytes: &[u8],
    stop_after_first: bool,
) -> std::io::Result<Vec<(String, FileMetadata)>> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries()? {
        let entry = match entry {
            Ok(e) => e,
            // A truncated download (metadata only) ends mid-entry.
            Err(_) if stop_after_first && !out.is_empty() => break,
            Err(e) => return Err(e),
        };
        let path = entry
            .path()?
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let name = path.rsplit('/').next().unwrap_or(&path).to_string();
        let meta = metadata_of(entry.header(), name).map_err(std::io::Error::other)?;
        out.push((path, meta));
        if stop_after_first {
            break;
        }
    }
    Ok(out)
}

pub(crate) fn read_file_here<'a>(
    inner: &'a Inner,
    path: &'a str,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u8>>> + Send + 'a>> {
    Box::pin(async move {
        let bytes = download(inner, path, None)
            .await?
            .ok_or_else(|| not_found(inner, path))?;
        // Either the file's bytes, or the target of the symbolic link named by `path`.
        let outcome: std::result::Result<Vec<u8>, String> = {
            let mut archive = tar::Archive::new(bytes.as_slice());
            let mut entries = archive.entries().map_err(|e| tar_error(inner, path, e))?;
            let mut entry = entries
                .next()
                .ok_or_else(|| not_found(inner, path))?
                .map_err(|e| tar_error(inner, path, e))?;
            match entry.header().entry_type() {
                tar::EntryType::Directory => {
                    return Err(Error::Container {
                        container: inner.name.clone(),
                        reason: format!("{path} is a directory, not a file"),
                    })
                }
                tar::EntryType::Symlink => Err(entry
                    .link_name()
                    .map_err(|e| tar_error(inner, path, e))?
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()),
                _ => {
                    let mut data = Vec::new();
                    entry
                        .read_to_end(&mut data)
                        .map_err(|e| tar_error(inner, path, e))?;
                    Ok(data)
                }
            }
        };
        match outcome {
            Ok(data) => Ok(data),
            Err(_) if depth >= 16 => Err(Error::Container {
                container: inner.name.clone(),
                reason: format!("{path}: too many levels of symbolic links"),
            }),
            Err(target) => {
                // The engine does not follow a link named by the last component: read its target.
                let resolved = if target.starts_with('/') {
                    target
                } else {
                    let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
                    format!("{parent}/{target}")
                };
                read_file_here(inner, &resolved, depth + 1).await
            }
        }
    })
}

impl Container {
    /// Whether `path` exists (a dangling symlink exists).
    pub async fn file_exists(&self, path: &str) -> Result<bool> {
        match self.file_metadata(path).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Mode, owner, size and link target of `path` (links are not followed).
    pub async fn file_metadata(&self, path: &str) -> Result<FileMetadata> {
        let inner = self.inner.clone();
        let path = path.to_string();
        on_runtime(async move {
            // The first entry is the path itself; a directory's contents need not be downloaded.
            let bytes = download(&inner, &path, Some(64 * 1024))
                .await?
                .ok_or_else(|| not_found(&inner, &path))?;
            let mut entries =
                archive_entries(&bytes, true).map_err(|e| tar_error(&inner, &path, e))?;
            if entries.is_empty() {
                return Err(not_found(&inner, &path));
            }
            Ok(entries.swap_remove(0).1)
        })
        .await
    }

    /// The contents of the file at `path` (symbolic links are followed).
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        let inner = self.inner.clone();
        let path = path.to_string();
        on_runtime(async move { read_file_here(&inner, &path, 0).await }).await
    }

    /// The contents of the file at `path` as text (invalid UTF-8 replaced).
    pub async fn read_file_text(&self, path: &str) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.read_file(path).await?).into_owned())
    }

    /// The entries directly inside directory `path`, sorted by name, with their metadata.
    pub async fn list_dir(&self, path: &str) -> Result<Vec<FileMetadata>> {
        let inner = self.inner.clone();
        let path = path.to_string();
        on_runtime(async move {
            let bytes = download(&inner, &path, None)
                .await?
                .ok_or_else(|| not_found(&inner, &path))?;
            let entries =
                archive_entries(&bytes, false).map_err(|e| tar_error(&inner, &path, e))?;
            let Some((root, meta)) = entries.first() else {
                return Err(not_found(&inner, &path));
            };
            if meta.kind != FileKind::Directory {
                return Err(Error::Container {
                    container: inner.name.clone(),
                    reason: format!("{path} is not a directory"),
                });
            }
            let prefix = format!("{root}/");
            let mut children: Vec<FileMetadata> = entries
                .iter()
                .filter(|(p, _)| {
                    p.strip_prefix(&prefix)
                        .is_some_and(|rest| !rest.contains('/'))
                })
                .map(|(_, m)| m.clone())
                .collect();
            children.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(children)
        })
        .await
    }

    /// Writes `contents` to `path` with permission `mode` (parent directories are created).
    pub async fn write_file(
        &self,
        path: &str,
        contents: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Result<()> {
        self.copy_source(
            path,
            CopySource::Bytes {
                data: contents.into(),
                mode,
            },
        )
        .await
    }

    /// Copies a host file or directory (recursively) to `path` in the container.
    pub async fn copy_into(&self, host_path: impl AsRef<Path>, path: &str) -> Result<()> {
        self.copy_source(path, CopySource::HostPath(host_path.as_ref().to_path_buf()))
            .await
    }

    async fn copy_source(&self, path: &str, source: CopySource) -> Result<()> {
        let inner = self.inner.clone();
        let path = path.to_string();
        on_runtime(async move { copy_source_here(&inner, &path, &source).await }).await
    }
}

/// A file or directory to place in the container before it starts.
#[derive(Debug, Clone)]
pub(crate) enum CopySource {
    Bytes {
        data: Vec<u8>,
        mode: u32,
    },
    HostPath(std::path::PathBuf),
    /// A tar archive (a snapshot's volume data), unpacked as it is in the directory it is copied
    /// to.
    Archive(std::path::PathBuf),
}

/// Uploads `source` to `path` (an archive: unpacked in the directory `path`); runs on the
/// library's runtime.
pub(crate) async fn copy_source_here(inner: &Inner, path: &str, source: &CopySource) -> Result<()> {
    if !path.starts_with('/') {
        return Err(Error::invalid("container path", path, "must be absolute"));
    }
    let name = inner.name.clone();
    // Where the archive's entries are unpacked: `/` for one built here (its entries carry the
    // whole path), the directory itself for a given archive.
    let (archive, at) = match source {
        CopySource::Archive(file) => {
            let data = tokio::fs::read(file)
                .await
                .map_err(|e| Error::io(format!("read {}", file.display()), e))?;
            (data, path.to_string())
        }
        source => (
            build_archive(path, source.clone(), &name).await?,
            "/".to_string(),
        ),
    };
    if let Some(mount) = tmpfs_mount(inner, path, true) {
        if !is_running(inner).await? {
            return Err(Error::Container {
                container: name,
                reason: format!(
                    "cannot write {path}: the tmpfs mount {mount} exists only while the container \
                     runs (write it after the container has started)"
                ),
            });
        }
        let tar = Exec::new(["tar", "-x", "-o", "-f", "-", "-C", &at]).stdin(archive);
        return tar_in_container(inner, "write", path, mount, tar)
            .await
            .map(|_| ());
    }
    inner
        .docker()
        .upload_to_container(
            &inner.name,
            Some(UploadToContainerOptions {
                path: at,
                ..Default::default()
            }),
            bollard::body_full(archive.into()),
        )
        .await
        .map_err(|e| Error::docker(format!("copy {path} into container {name}"), e))
}

/// The tar archive that places `source` at `path` (entries relative to `/`).
async fn build_archive(path: &str, source: CopySource, container: &str) -> Result<Vec<u8>> {
    let relative = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string();
    tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        match source {
            CopySource::Bytes { data, mode } => {
                let mut header = tar::Header::new_gnu();
                header.set_size(data.len() as u64);
                header.set_mode(mode);
                header.set_uid(0);
                header.set_gid(0);
                header.set_mtime(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                );
                header.set_entry_type(tar::EntryType::Regular);
                builder.append_data(&mut header, &relative, data.as_slice())?;
            }
            CopySource::HostPath(host) => {
                if host.is_dir() {
                    builder.append_dir_all(&relative, &host)?;
                } else {
                    builder.append_path_with_name(&host, &relative)?;
                }
            }
            CopySource::Archive(file) => return std::fs::read(file),
        }
        builder.into_inner()
    })
    .await
    .map_err(|e| {
        Error::io(
            format!("build the archive for {path}"),
            std::io::Error::other(e),
        )
    })?
    .map_err(|e| {
        Error::io(
            format!("build the archive for {path} in container {container}"),
            e,
        )
    })
}
