//! The container keeps running for a while.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{Checking, Condition, Wait};
use crate::container::Inner;

struct RunningFor(Duration);

impl Wait {
    /// The container keeps running for `duration`.
    pub fn running_for(duration: Duration) -> Wait {
        Wait::on(RunningFor(duration))
    }
}

impl Condition for RunningFor {
    fn check<'a>(&'a self, _inner: &'a Arc<Inner>) -> Checking<'a> {
        // The exit watch beside every wait that does not expect the exit fails it meanwhile.
        Box::pin(async move {
            tokio::time::sleep(self.0).await;
            Ok(())
        })
    }
}

impl fmt::Display for RunningFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "running for {:?}", self.0)
    }
}
