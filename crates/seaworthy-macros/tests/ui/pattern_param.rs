#[seaworthy::test]
async fn takes_a_pair((left, right): &(u8, u8)) {
    let _ = (left, right);
}

fn main() {}
