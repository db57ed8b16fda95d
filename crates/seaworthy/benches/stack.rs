//! Suite `stack`: a stack's independent members started in parallel, against the same four
//! started one after another.
//!
//! - `parallel_start`: four independent members, against the same stack with each member
//!   depending on the previous one (the same containers, network and code path, one after
//!   another): what starting independent branches in parallel buys.
//! - `parallel_start.vs_containers`: the same four members, against four plain
//!   [`ContainerDefinition::start_in`] calls one after another on the session network (which
//!   exists already, while the stack creates a network of its own).
//! - `engine.parallel_start`: the engine's own floor, with no Seaworthy code in the way: the
//!   bare engine calls (create a network, then for each member create, start and follow the log
//!   until its line) made for the four members at once, against the same calls one member after
//!   another.
//! - `parallel_start.vs_engine_floor`: Seaworthy's parallel stack against those bare engine
//!   calls made at once, alternating in one comparison: what Seaworthy adds to the floor
//!   (target ≤ 1.0).
//!
//! `cargo bench -p seaworthy --bench stack` (needs `cargo xtask images`).

mod common;

use std::time::{Duration, Instant};

use common::{bare_network, bare_network_remove, bare_remove, bare_start, IMAGE};
use seaworthy::{ContainerDefinition, DependsOn, Session, StackDefinition, StackMember, Wait};
use seaworthy_benchkit::{Suite, Target};

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

/// The bare engine calls of a stack of the four members: a network, then each member created,
/// started and followed until its line, all at once (`parallel`) or one after another. Returns
/// the time to ready, then removes everything (not timed).
async fn time_bare(session: Session, parallel: bool, run: usize) -> Duration {
    let t = Instant::now();
    let name = format!("{}-bare-stack-{run}", session.namespace());
    let network = bare_network(&session, &name).await;
    let ids = if parallel {
        futures_util::future::join_all(
            (0..MEMBERS.len()).map(|i| bare_start(&session, Some(&name), Some(run * 10 + i))),
        )
        .await
    } else {
        let mut ids = Vec::new();
        for i in 0..MEMBERS.len() {
            ids.push(bare_start(&session, Some(&name), Some(run * 10 + i)).await);
        }
        ids
    };
    let elapsed = t.elapsed();
    for id in ids {
        bare_remove(&session, &id).await;
    }
    bare_network_remove(&session, &network).await;
    elapsed
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
        time_bare(session.clone(), true, 0).await;
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
    suite.target(Target::RatioAtMost(0.7));
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

    let (mut parallel_run, mut sequential_run) = (0, 1000);
    suite.compare(
        "engine.parallel_start",
        "the same bare engine calls, one member after another",
        RUNS,
        || {
            parallel_run += 1;
            time_bare(session.clone(), true, parallel_run)
        },
        || {
            sequential_run += 1;
            time_bare(session.clone(), false, sequential_run)
        },
    );
    suite.annotate(
        "note",
        "no Seaworthy code: the engine's own floor for parallel_start on this machine",
    );

    // "As fast as the bare calls": Seaworthy's parallel stack against the engine's floor, in one
    // alternating comparison (not the medians of two separate blocks).
    let mut floor_run = 2000;
    suite.compare(
        "parallel_start.vs_engine_floor",
        "the same bare engine calls, all members at once",
        RUNS,
        || time_stack(stack(false), session.clone()),
        || {
            floor_run += 1;
            time_bare(session.clone(), true, floor_run)
        },
    );
    suite.target(Target::RatioAtMost(1.0));
    suite.finish();
}
