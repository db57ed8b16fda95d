use seaworthy::GenericFixture;

static CACHE: &str = "not a fixture";

#[seaworthy::test]
async fn uses_the_cache(cache: &GenericFixture) {
    let _ = cache;
}

fn main() {}
