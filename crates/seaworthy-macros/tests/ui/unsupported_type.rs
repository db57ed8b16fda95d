#[seaworthy::test]
async fn takes_bytes(bytes: &[u8]) {
    let _ = bytes;
}

fn main() {}
