use seaworthy::GenericFixture;

#[seaworthy::test]
async fn uses_the_cache(cache: &GenericFixture) {
    let _ = cache;
}

fn main() {}
