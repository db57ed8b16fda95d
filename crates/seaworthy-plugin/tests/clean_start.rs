//! Tests start clean by construction with a plugin fixture too: a test that dirties the shared
//! memcached plugin fixture and then fails hands nothing to the next one, in either order
//! (threads or nextest's processes: the fixture is shared per run).

mod common;

use seaworthy::{Fixture, Shared};
use seaworthy_plugin::{PluginFixture, PluginFixtureDefinition};

static MEMCACHED: Shared<PluginFixtureDefinition> = Shared::per_run(common::memcached_definition);

fn address(memcached: &PluginFixture) -> String {
    let c = memcached.connection();
    format!("{}:{}", c.host, c.port)
}

async fn dirty(memcached: &PluginFixture) {
    let stored = common::memcached(
        &address(memcached),
        "set left-behind 0 0 5\r\ndirty\r\n",
        |l| l == "STORED",
    )
    .await;
    assert_eq!(stored, "STORED\r\n");
}

async fn assert_baseline(memcached: &PluginFixture) -> anyhow::Result<()> {
    let got = common::memcached(&address(memcached), "get left-behind\r\n", |l| l == "END").await;
    anyhow::ensure!(got == "END\r\n", "the key survived: {got:?}");
    Ok(())
}

#[seaworthy::test]
#[should_panic(expected = "deliberately")]
async fn plugin_1_dirties_then_panics(memcached: &PluginFixture) {
    dirty(memcached).await;
    panic!("deliberately, after dirtying the fixture");
}

#[seaworthy::test]
async fn plugin_2_starts_at_the_baseline(memcached: &PluginFixture) -> anyhow::Result<()> {
    assert_baseline(memcached).await
}

#[seaworthy::test]
async fn plugin_3_starts_at_the_baseline(memcached: &PluginFixture) -> anyhow::Result<()> {
    assert_baseline(memcached).await
}

#[seaworthy::test]
#[should_panic(expected = "deliberately")]
async fn plugin_4_dirties_then_panics(memcached: &PluginFixture) {
    dirty(memcached).await;
    panic!("deliberately, after dirtying the fixture");
}
