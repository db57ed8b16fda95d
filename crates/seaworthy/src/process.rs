//! The processes of a container, read by the engine from the host (`GET /containers/{id}/top`),
//! so the image needs no `ps` and no shell.

use crate::container::Container;
use crate::error::{Error, Result};
use crate::runtime::on_runtime;

/// One process in a container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Process {
    /// Process id, as seen from the host.
    pub pid: u32,
    /// Parent process id, as seen from the host.
    pub ppid: u32,
    /// The id of the user it runs as.
    pub uid: u32,
    /// The user it runs as, named from the container's own `/etc/passwd` (the engine's `ps`
    /// runs on the host, whose names may differ); the uid as text when the container has no
    /// such user (or no `/etc/passwd`).
    pub user: String,
    /// Its command line.
    pub args: String,
}

/// A process and its children, ordered by pid.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProcessTree {
    /// The process.
    #[serde(flatten)]
    pub process: Process,
    /// Its children.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ProcessTree>,
}

impl ProcessTree {
    /// Builds the trees of `processes`: every process whose parent is not in the list is a root.
    pub fn build(processes: &[Process]) -> Vec<ProcessTree> {
        fn node(p: &Process, all: &[Process]) -> ProcessTree {
            let mut children: Vec<ProcessTree> = all
                .iter()
                .filter(|c| c.ppid == p.pid && c.pid != p.pid)
                .map(|c| node(c, all))
                .collect();
            children.sort_by_key(|c| c.process.pid);
            ProcessTree {
                process: p.clone(),
                children,
            }
        }
        let mut roots: Vec<ProcessTree> = processes
            .iter()
            .filter(|p| !processes.iter().any(|q| q.pid == p.ppid))
            .map(|p| node(p, processes))
            .collect();
        roots.sort_by_key(|r| r.process.pid);
        roots
    }

    /// The number of processes in this tree.
    pub fn len(&self) -> usize {
        1 + self.children.iter().map(ProcessTree::len).sum::<usize>()
    }

    /// Always false: a tree holds at least its root.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The depth of the tree (1 for a lone process).
    pub fn depth(&self) -> usize {
        1 + self
            .children
            .iter()
            .map(ProcessTree::depth)
            .max()
            .unwrap_or(0)
    }

    /// The tree's command lines, indented two spaces per level, one per line.
    pub fn render(&self) -> String {
        fn walk(t: &ProcessTree, level: usize, out: &mut String) {
            out.push_str(&"  ".repeat(level));
            out.push_str(&t.process.args);
            out.push('\n');
            for c in &t.children {
                walk(c, level + 1, out);
            }
        }
        let mut out = String::new();
        walk(self, 0, &mut out);
        out
    }

    /// Whether this tree and `other` have the same command lines in the same shape, ignoring pids
    /// and the order of children.
    pub fn same_shape(&self, other: &ProcessTree) -> bool {
        if self.process.args != other.process.args || self.children.len() != other.children.len() {
            return false;
        }
        let mut unmatched: Vec<&ProcessTree> = other.children.iter().collect();
        for child in &self.children {
            match unmatched.iter().position(|o| child.same_shape(o)) {
                Some(i) => {
                    unmatched.swap_remove(i);
                }
                None => return false,
            }
        }
        true
    }
}

impl Container {
    /// The processes running in the container (read by the engine; no `ps` needed inside).
    pub async fn processes(&self) -> Result<Vec<Process>> {
        let inner = self.inner.clone();
        on_runtime(async move {
            let top = inner
                .docker()
                .top_processes(
                    &inner.name,
                    Some(bollard::query_parameters::TopOptions {
                        ps_args: "-o pid,ppid,uid,args".into(),
                    }),
                )
                .await
                .map_err(|e| {
                    Error::docker(format!("list the processes of container {}", inner.name), e)
                })?;
            let titles = top.titles.unwrap_or_default();
            let column = |name: &str| {
                titles
                    .iter()
                    .position(|t| t.eq_ignore_ascii_case(name))
                    .ok_or_else(|| Error::Container {
                        container: inner.name.clone(),
                        reason: format!(
                            "the engine's process list has no {name} column (titles: {titles:?})"
                        ),
                    })
            };
            let (pid, ppid, uid, args) = (
                column("PID")?,
                column("PPID")?,
                column("UID")?,
                column("COMMAND")?,
            );
            let rows = top.processes.unwrap_or_default();
            // Names from the container's own accounts; a container without /etc/passwd (FROM
            // scratch) shows uids.
            let passwd = crate::files::read_file_here(&inner, "/etc/passwd", 0)
                .await
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default();
            let names: std::collections::HashMap<u32, &str> = passwd
                .lines()
                .filter_map(|line| {
                    let mut fields = line.split(':');
                    let name = fields.next()?;
                    let uid = fields.nth(1)?.parse().ok()?;
                    Some((uid, name))
                })
                .collect();
            let mut out = Vec::new();
            for row in rows {
                let get = |i: usize| row.get(i).cloned().unwrap_or_default();
                let uid: u32 = get(uid).parse().unwrap_or(u32::MAX);
                out.push(Process {
                    pid: get(pid).parse().unwrap_or(0),
                    ppid: get(ppid).parse().unwrap_or(0),
                    uid,
                    user: names
                        .get(&uid)
                        .map_or_else(|| uid.to_string(), |n| n.to_string()),
                    args: get(args),
                });
            }
            out.sort_by_key(|p| p.pid);
            Ok(out)
        })
        .await
    }

    /// The container's process tree: its main process and descendants.
    pub async fn process_tree(&self) -> Result<ProcessTree> {
        let processes = self.processes().await?;
        let mut roots = ProcessTree::build(&processes);
        match roots.len() {
            1 => Ok(roots.remove(0)),
            0 => Err(Error::Container {
                container: self.name().to_string(),
                reason: "no process is running".into(),
            }),
            // Exec'd processes have the engine's shim as parent: show them under the main process.
            _ => {
                let mut root = roots.remove(0);
                root.children.extend(roots);
                Ok(root)
            }
        }
    }
}
