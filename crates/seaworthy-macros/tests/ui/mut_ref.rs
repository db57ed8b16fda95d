use seaworthy::{GenericFixture, Shared, SnapshotFixture};

static CACHE: Shared<SnapshotFixture> = Shared::per_process(|| {
    SnapshotFixture::new(seaworthy::ContainerDefinition::new("seaworthy-test/busybox"))
});

#[seaworthy::test]
async fn changes_the_cache(cache: &mut GenericFixture) {
    let _ = cache;
}

fn main() {}
