//! The container exits, with a given code or any, seen through the engine's wait API.

use std::fmt;
use std::sync::Arc;

use super::{watch_exit, Checking, Condition, Impossible, Wait};
use crate::container::Inner;

struct Exited {
    code: Option<i64>,
}

impl Wait {
    /// The container exits with `code`.
    pub fn exit_code(code: i64) -> Wait {
        Wait::on(Exited { code: Some(code) })
    }

    /// The container exits, with any code.
    pub fn exited() -> Wait {
        Wait::on(Exited { code: None })
    }
}

impl Condition for Exited {
    fn check<'a>(&'a self, inner: &'a Arc<Inner>) -> Checking<'a> {
        Box::pin(async move {
            match watch_exit(inner).await {
                Some(got) if self.code.is_none_or(|c| c == got) => Ok(()),
                Some(got) => Err(Impossible(format!(
                    "because the container exited with code {got}"
                ))),
                None => Err(Impossible("because its exit could not be observed".into())),
            }
        })
    }

    fn expects_exit(&self) -> bool {
        true
    }
}

impl fmt::Display for Exited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(c) => write!(f, "exit with code {c}"),
            None => f.write_str("exit"),
        }
    }
}
