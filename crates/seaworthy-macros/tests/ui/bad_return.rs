#[seaworthy::test]
async fn returns_a_number() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
