//! Suite `start`: Seaworthy's start-to-ready and teardown against the bare engine calls they need.
//!
//! `cargo bench -p seaworthy --bench start` (needs `cargo xtask images`).

mod common;

use std::time::Instant;

use common::{bare_remove, bare_start, IMAGE, SCRIPT};
use seaworthy::{ContainerDefinition, Session, Wait};
use seaworthy_benchkit::{Suite, Target};

fn seaworthy_definition() -> ContainerDefinition {
    ContainerDefinition::new(IMAGE)
        .with_cmd(["sh", "-c", SCRIPT])
        .with_wait(Wait::log("^ready$"))
}

fn main() {
    let mut suite = Suite::new("start");
    let session = suite.block_on(Session::global()).expect("a Docker engine");
    let network = suite
        .block_on(session.network_name())
        .expect("session network");
    // Warm up both paths (image cache, network, first connections).
    suite.block_on(async {
        seaworthy_definition()
            .start()
            .await
            .expect("warm-up")
            .remove()
            .await
            .expect("remove");
        let id = bare_start(&session, Some(&network), Some(0)).await;
        bare_remove(&session, &id).await;
    });

    let mut n = 0;
    suite.compare(
        "busybox.start_to_ready",
        "bare engine: create, start, follow log",
        20,
        || async {
            let t = Instant::now();
            let c = seaworthy_definition().start().await.expect("start");
            let elapsed = t.elapsed();
            c.remove().await.expect("remove");
            elapsed
        },
        || {
            n += 1;
            let (session, network) = (session.clone(), network.clone());
            async move {
                let t = Instant::now();
                let id = bare_start(&session, Some(&network), Some(n)).await;
                let elapsed = t.elapsed();
                bare_remove(&session, &id).await;
                elapsed
            }
        },
    );
    suite.target(Target::RatioAtMost(1.05));

    let mut n = 1000;
    suite.compare(
        "busybox.teardown",
        "bare engine: remove (force, volumes)",
        20,
        || async {
            let c = seaworthy_definition().start().await.expect("start");
            let t = Instant::now();
            c.remove().await.expect("remove");
            t.elapsed()
        },
        || {
            n += 1;
            let (session, network) = (session.clone(), network.clone());
            async move {
                let id = bare_start(&session, Some(&network), Some(n)).await;
                let t = Instant::now();
                bare_remove(&session, &id).await;
                t.elapsed()
            }
        },
    );
    suite.finish();
}
