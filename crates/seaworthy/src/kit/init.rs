//! [`InitStep`]: the steps that build a fixture's baseline (SQL, or a closure of the user's).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The error an init closure returns: any error (`?` works on all of them).
pub type InitError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An init closure: it gets the fixture's context `C` (a connection to the database, where it
/// is) and runs once per container.
pub type InitFn<C> =
    Arc<dyn Fn(C) -> Pin<Box<dyn Future<Output = Result<(), InitError>> + Send>> + Send + Sync>;

/// One step that builds a native fixture's baseline: statements in the service's language, or a
/// closure of the user's (run a migration tool, load a dump). A definition keeps them in order
/// (`Vec<InitStep<C>>`), runs them once per container before the baseline is recorded, and puts
/// [`init_key`] of them in its key.
///
/// ```
/// use seaworthy::kit::{init_key, InitStep};
///
/// struct Context; // what the fixture hands a closure: a connection, a URL...
/// let steps: Vec<InitStep<Context>> = vec![
///     InitStep::Sql("CREATE TABLE users (id int)".into()),
///     InitStep::closure("seed users", |_ctx: Context| async { Ok(()) }),
/// ];
/// assert_eq!(steps[0].name(0), "sql #1");
/// assert!(init_key(&steps).ends_with(",fn:seed users"));
/// ```
pub enum InitStep<C> {
    /// Statements (one or more), run as one batch.
    Sql(String),
    /// A closure of the user's.
    Closure {
        /// Names the step in messages and in the definition's key: renamed when the step
        /// changes, since a closure's code cannot be read.
        name: String,
        /// The step.
        run: InitFn<C>,
    },
}

impl<C: 'static> InitStep<C> {
    /// A closure step named `name`.
    pub fn closure<F, Fut>(name: impl Into<String>, step: F) -> Self
    where
        F: Fn(C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), InitError>> + Send + 'static,
    {
        InitStep::Closure {
            name: name.into(),
            run: Arc::new(move |ctx| Box::pin(step(ctx))),
        }
    }
}

impl<C> InitStep<C> {
    /// The step's name for keys and messages: the closure's, or `sql #N` for the `index`th step
    /// (counted from 0).
    pub fn name(&self, index: usize) -> String {
        match self {
            InitStep::Sql(_) => format!("sql #{}", index + 1),
            InitStep::Closure { name, .. } => name.clone(),
        }
    }
}

impl<C> Clone for InitStep<C> {
    fn clone(&self) -> Self {
        match self {
            InitStep::Sql(sql) => InitStep::Sql(sql.clone()),
            InitStep::Closure { name, run } => InitStep::Closure {
                name: name.clone(),
                run: run.clone(),
            },
        }
    }
}

impl<C> fmt::Debug for InitStep<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitStep::Sql(sql) => f.debug_tuple("Sql").field(sql).finish(),
            InitStep::Closure { name, .. } => {
                f.debug_struct("Closure").field("name", name).finish()
            }
        }
    }
}

/// The part of a definition's key that stands for its init steps: each SQL step's
/// [`key_hash`](super::key_hash), each closure's name (`sql:…,fn:seed users`).
pub fn init_key<C>(steps: &[InitStep<C>]) -> String {
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| match step {
            InitStep::Sql(sql) => format!("sql:{}", super::key_hash(sql)),
            InitStep::Closure { .. } => format!("fn:{}", step.name(i)),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Adds the content of `steps` to a [baseline cache](crate::baseline_cache) digest, for a
/// definition's [`hash_init`](crate::baseline_cache::CachedBaseline::hash_init): each
/// statement step's text, each closure's name (a closure's code cannot be read: its name stands
/// for it, and the files it reads are the cache's
/// [inputs](crate::baseline_cache::BaselineCache::with_input)).
pub fn hash_init_steps<C>(steps: &[InitStep<C>], digest: &mut crate::baseline_cache::InitDigest) {
    for (i, step) in steps.iter().enumerate() {
        match step {
            InitStep::Sql(sql) => digest.add("sql", sql.as_bytes()),
            InitStep::Closure { .. } => digest.add("closure", step.name(i).as_bytes()),
        }
    }
}
