#[seaworthy::test]
async fn runs_for_any<T: Default>() {
    let _ = T::default();
}

fn main() {}
