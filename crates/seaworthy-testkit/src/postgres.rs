//! PostgreSQL as the tests and benchmarks run the test image: durability off, with `CHECKPOINT`
//! as the snapshot flush.

use seaworthy::{ContainerDefinition, Exec};

/// The server's command with durability off (`fsync`, synchronous commit and full-page writes),
/// as `seaworthy-postgres` runs it (its one definition).
pub use seaworthy_postgres::DURABILITY_OFF;

/// The snapshot flush such a server needs: `CHECKPOINT` writes out what an acknowledged commit
/// may still hold in memory, so that a snapshot taken right after it has it.
pub fn checkpoint() -> Exec {
    Exec::new(["psql", "-U", "postgres", "-c", "CHECKPOINT"])
}

/// `def` running PostgreSQL with [`DURABILITY_OFF`] and the `settings` given (`name=value`, each
/// passed with `-c`), [`checkpoint`] as its snapshot flush.
pub fn durability_off(def: ContainerDefinition, settings: &[&str]) -> ContainerDefinition {
    let mut cmd: Vec<String> = DURABILITY_OFF.iter().map(|a| a.to_string()).collect();
    for setting in settings {
        cmd.extend(["-c".to_string(), setting.to_string()]);
    }
    def.with_cmd(cmd).with_snapshot_flush(checkpoint())
}
