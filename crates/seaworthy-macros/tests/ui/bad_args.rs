#[seaworthy::test(flavour = "multi_thread")]
async fn misspelt() {}

#[seaworthy::test(flavor = "single")]
async fn unknown_flavor() {}

#[seaworthy::test(multi_thread)]
async fn not_a_key_value() {}

fn main() {}
