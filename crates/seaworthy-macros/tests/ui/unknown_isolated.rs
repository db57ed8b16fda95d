use seaworthy::{ConnectionInfo, Container, Fixture, Isolated, Isolation};

/// A fixture with namespaces, declared but never shared in a `static`.
struct Tenants(Container);

impl Fixture for Tenants { type Error = seaworthy::Error;
    fn kind(&self) -> &str {
        "tenants"
    }
    fn container(&self) -> &Container {
        &self.0
    }
    async fn clean(&self) -> seaworthy::Result<()> {
        Ok(())
    }
    fn connection(&self) -> ConnectionInfo {
        ConnectionInfo::new("tenant", "localhost", 1)
    }
}

impl Isolation for Tenants {
    type Isolated = ();
    async fn isolate(&self) -> seaworthy::Result<()> {
        Ok(())
    }
}

#[seaworthy::test]
async fn uses_a_tenant(tenant: &Isolated<Tenants>) {
    let _ = tenant;
}

fn main() {}
