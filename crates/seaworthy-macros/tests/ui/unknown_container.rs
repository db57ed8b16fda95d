use seaworthy::Container;

#[seaworthy::test]
async fn serves_a_page(web: &Container) {
    let _ = web;
}

fn main() {}
