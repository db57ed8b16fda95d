struct Suite;

impl Suite {
    #[seaworthy::test]
    async fn takes_self(self) {}
}

fn main() {}
