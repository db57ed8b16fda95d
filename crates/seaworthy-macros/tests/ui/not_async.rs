#[seaworthy::test]
fn starts_a_container() {}

fn main() {}
