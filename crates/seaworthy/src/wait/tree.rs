//! The `Wait` tree: one condition, or conditions composed with all and any; and the trait each
//! kind of condition implements.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::Impossible;
use crate::container::Inner;
use crate::error::Result;

/// A condition being checked: `Ok` once it holds, `Err` once it cannot any more.
pub(super) type Checking<'a> = Pin<Box<dyn Future<Output = Result<(), Impossible>> + Send + 'a>>;

/// One kind of readiness condition (a file of `wait/` each). The driver ([`wait_until`](super::wait_until)) calls
/// [`check`](Condition::check) once per wait and races it against the deadline and, unless the
/// condition [expects the exit](Condition::expects_exit), against the container's exit.
pub(super) trait Condition: fmt::Display + Send + Sync {
    /// Resolves once the condition holds (`Ok`) or can no longer hold (`Err`, saying why);
    /// "not yet" is waiting (a probe retries every [`PROBE_INTERVAL`](super::PROBE_INTERVAL)). Dropped at the deadline.
    fn check<'a>(&'a self, inner: &'a Arc<Inner>) -> Checking<'a>;

    /// Refuses bad input (a regex that does not compile) before anything is created.
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// Whether checking needs the published ports (the start then reads them first).
    fn needs_ports(&self) -> bool {
        false
    }

    /// Whether the condition is about the container's exit (no exit watch beside it).
    fn expects_exit(&self) -> bool {
        false
    }

    /// Whether it reads the log: after the container exited, only such a condition is checked
    /// again (output written just before the exit); probes fail at once.
    fn reads_log(&self) -> bool {
        false
    }
}

/// A readiness condition. Build one with the constructors and combine with [`Wait::all`] / [`Wait::any`].
#[derive(Clone)]
pub struct Wait {
    pub(super) node: Node,
}

#[derive(Clone)]
pub(super) enum Node {
    /// One condition.
    Leaf(Arc<dyn Condition>),
    /// All conditions (checked concurrently).
    All(Vec<Wait>),
    /// The first condition that holds.
    Any(Vec<Wait>),
}

impl Wait {
    /// A wait on one condition (the constructors of the files of `wait/`).
    pub(super) fn on(condition: impl Condition + 'static) -> Wait {
        Wait {
            node: Node::Leaf(Arc::new(condition)),
        }
    }

    /// The first error in the condition or its parts (a log regex that does not compile), as an
    /// [`Error::Invalid`](crate::Error::Invalid) naming the bad string. [`ContainerDefinition::validate`](crate::ContainerDefinition::validate)
    /// runs it, so a start refuses an invalid wait before any container, network or volume exists.
    pub fn validate(&self) -> Result<()> {
        match &self.node {
            Node::Leaf(c) => c.validate(),
            Node::All(waits) | Node::Any(waits) => waits.iter().try_for_each(Wait::validate),
        }
    }

    /// Whether checking this condition needs the published ports (HTTP, TCP, custom checks).
    pub(crate) fn needs_ports(&self) -> bool {
        match &self.node {
            Node::Leaf(c) => c.needs_ports(),
            Node::All(waits) | Node::Any(waits) => waits.iter().any(Wait::needs_ports),
        }
    }

    /// All of `waits`.
    pub fn all(waits: impl IntoIterator<Item = Wait>) -> Wait {
        Wait {
            node: Node::All(waits.into_iter().collect()),
        }
    }

    /// The first of `waits` to hold.
    pub fn any(waits: impl IntoIterator<Item = Wait>) -> Wait {
        Wait {
            node: Node::Any(waits.into_iter().collect()),
        }
    }

    /// `self` and `other`.
    pub fn and(self, other: Wait) -> Wait {
        match self.node {
            Node::All(mut v) => {
                v.push(other);
                Wait::all(v)
            }
            node => Wait::all([Wait { node }, other]),
        }
    }

    /// How many nodes the wait's tree has (itself and its parts, all the way down).
    pub(super) fn size(&self) -> usize {
        match &self.node {
            Node::All(v) | Node::Any(v) => 1 + v.iter().map(Wait::size).sum::<usize>(),
            Node::Leaf(_) => 1,
        }
    }

    pub(super) fn expects_exit(&self) -> bool {
        match &self.node {
            Node::Leaf(c) => c.expects_exit(),
            Node::All(v) | Node::Any(v) => v.iter().any(Wait::expects_exit),
        }
    }
}

impl fmt::Debug for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Wait({self})")
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, v: &[Wait], sep: &str| -> fmt::Result {
            f.write_str("(")?;
            for (i, w) in v.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{w}")?;
            }
            f.write_str(")")
        };
        match &self.node {
            Node::Leaf(c) => write!(f, "{c}"),
            Node::All(v) => list(f, v, " and "),
            Node::Any(v) => list(f, v, " or "),
        }
    }
}
