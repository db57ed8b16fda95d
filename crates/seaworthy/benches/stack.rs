//! Suite `stack`: a stack's independent members started in parallel, against the same four
//! started one after another.
//!
//! - `parallel_start`: four independent members, against the same stack with each member
//!   depending on the previous one (the same containers, network and code path, one after
//!   another): what starting independent branches in parallel buys.
//! - `parallel_start.vs_containers`: the same four members, against four plain
//!   [`ContainerDefinition::start_in`] calls one after another on the session network (which
//!   exists already, while the stack creates a network of its own).
//!
//! `cargo bench -p seaworthy --bench stack` (needs `cargo xtask images`).

use std::time::{Duration, Instant};

use seaworthy::{ContainerDefinition, DependsOn, Session, StackDefinition, StackMember, Wait};
use seaworthy_benchkit::Suite;

const IMAGE: &str = "seaworthy-test/busybox";
const MEMBERS: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];
const RUNS: usize = 12;

/// One member: prints `ready`, then sleeps.
fn member() -> ContainerDefinition {
    ContainerDefinition::new(IMAGE)
        .with_cmd(["sh", "-c", "echo ready; exec sleep 3600"])
        .with_wait(Wait::log("^ready$"))
}

/// The four members, independent (`chained == false`) or each waiting for the previous one.
fn stack(chained: bool) -> StackDefinition {
    let mut stack = StackDefinition::new("bench");
    for (i, name) in MEMBERS.iter().enumerate() {
        let mut m = StackMember::new(*name, member());
        if chained && i > 0 {
            m = m.depends_on(MEMBERS[i - 1], DependsOn::Ready);
        }
        stack = stack.with_member(m);
    }
    stack
}

/// Starts `def`, returns the time to ready, then removes it (not timed).
async fn time_stack(def: StackDefinition, session: Session) -> Duration {
    let t = Instant::now();
    let s = def.start_in(&session).await.expect("start the stack");
    let elapsed = t.elapsed();
    s.remove().await.expect("remove the stack");
    elapsed
}

fn main() {
    let mut suite = Suite::new("stack");
    let session = suite.block_on(Session::global()).expect("a Docker engine");
    // Warm up every path (image cache, session network, first connections).
    suite.block_on(async {
        time_stack(stack(false), session.clone()).await;
        time_stack(stack(true), session.clone()).await;
        let c = member()
            .start_in(&session)
            .await
            .expect("warm-up container");
        c.remove().await.expect("remove");
    });

    suite.compare(
        "parallel_start",
        "the same stack, one after another",
        RUNS,
        || time_stack(stack(false), session.clone()),
        || time_stack(stack(true), session.clone()),
    );
    suite.annotate("members", MEMBERS.len());

    suite.compare(
        "parallel_start.vs_containers",
        "4 containers, one after another",
        RUNS,
        || time_stack(stack(false), session.clone()),
        || {
            let session = session.clone();
            async move {
                let t = Instant::now();
                let mut started = Vec::new();
                for name in MEMBERS {
                    let c = member()
                        .with_name(format!("sequential-{name}"))
                        .start_in(&session)
                        .await
                        .expect("start a container");
                    started.push(c);
                }
                let elapsed = t.elapsed();
                for c in started {
                    c.remove().await.expect("remove a container");
                }
                elapsed
            }
        },
    );
    suite.annotate(
        "note",
        "the stack's time includes creating its own network; the containers use the existing session network",
    );
    suite.finish();
}
