//! Exec results, process trees and directory listings, normalised for snapshots.

use seaworthy::{Container, Exec, ExecOutput, FileKind, FileMetadata, ProcessTree};

/// A command run in a container and what it produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExecSnapshot {
    /// The command line.
    pub command: String,
    /// The exit code.
    pub exit_code: i64,
    /// Standard output (invalid UTF-8 replaced).
    pub stdout: String,
    /// Standard error (invalid UTF-8 replaced).
    pub stderr: String,
}

impl ExecSnapshot {
    /// Runs `exec` in `container` and records the result.
    pub async fn run(
        container: &Container,
        exec: impl Into<Exec>,
    ) -> seaworthy::Result<ExecSnapshot> {
        let exec = exec.into();
        let command = exec.command_line();
        let output = container.exec(exec).await?;
        Ok(ExecSnapshot::from_output(command, &output))
    }

    /// Records an output already obtained for `command`.
    pub fn from_output(command: impl Into<String>, output: &ExecOutput) -> ExecSnapshot {
        ExecSnapshot {
            command: command.into(),
            exit_code: output.exit_code,
            stdout: output.stdout_text(),
            stderr: output.stderr_text(),
        }
    }
}

/// A process and its children: user and command line, children sorted by command line then user.
/// Process ids are left out (they change every run); the shape and the command lines are what a
/// snapshot should pin down.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProcessSnapshot {
    /// The user the process runs as.
    pub user: String,
    /// Its command line.
    pub args: String,
    /// Its children.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ProcessSnapshot>,
}

impl ProcessSnapshot {
    /// Reads the process tree of `container` (from the engine, no `ps` needed in the image).
    pub async fn of(container: &Container) -> seaworthy::Result<ProcessSnapshot> {
        Ok(ProcessSnapshot::from_tree(&container.process_tree().await?))
    }

    /// Normalises a process tree.
    pub fn from_tree(tree: &ProcessTree) -> ProcessSnapshot {
        let mut children: Vec<ProcessSnapshot> = tree
            .children
            .iter()
            .map(ProcessSnapshot::from_tree)
            .collect();
        children.sort_by(|a, b| (&a.args, &a.user).cmp(&(&b.args, &b.user)));
        ProcessSnapshot {
            user: tree.process.user.clone(),
            args: tree.process.args.clone(),
            children,
        }
    }
}

/// The entries directly inside a directory, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirSnapshot {
    /// The directory.
    pub path: String,
    /// Its entries.
    pub entries: Vec<DirEntrySnapshot>,
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirEntrySnapshot {
    /// The name.
    pub name: String,
    /// The mode as `ls -l` prints it (`-rw-r--r--`, `drwxr-xr-x`, `lrwxrwxrwx`).
    pub mode: String,
    /// Owner user id.
    pub uid: u64,
    /// Owner group id.
    pub gid: u64,
    /// Size in bytes (files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The target of a link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}

impl DirSnapshot {
    /// Lists directory `path` of `container` through the archive API (works on created and
    /// stopped containers, and on images without `ls`).
    pub async fn of(container: &Container, path: &str) -> seaworthy::Result<DirSnapshot> {
        let entries = container.list_dir(path).await?;
        Ok(DirSnapshot::from_entries(path, &entries))
    }

    /// Normalises a listing.
    pub fn from_entries(path: impl Into<String>, entries: &[FileMetadata]) -> DirSnapshot {
        let mut entries: Vec<DirEntrySnapshot> = entries
            .iter()
            .map(|m| DirEntrySnapshot {
                name: m.name.clone(),
                mode: m.mode_string(),
                uid: m.uid,
                gid: m.gid,
                size: matches!(m.kind, FileKind::File).then_some(m.size),
                link_target: m.link_target.clone(),
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        DirSnapshot {
            path: path.into(),
            entries,
        }
    }
}
