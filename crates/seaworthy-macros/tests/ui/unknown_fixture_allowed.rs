// An `allow(deprecated)` around the test does not let a missing declaration through.
#![allow(deprecated)]

use seaworthy::GenericFixture;

#[seaworthy::test]
async fn uses_the_cache(cache: &GenericFixture) {
    let _ = cache;
}

fn main() {}
