//! The endpoints `.ci/engines` sets up for the tests (`bash .ci/engines start`): a test that
//! needs one that is missing fails saying which, and how to start it.

/// Fails the test: `endpoint` (`the TLS engine at tcp://127.0.0.1:2376`...) is not set up on
/// this machine, because `why`. The message says how to set it up; in CI (`SEAWORTHY_CI=1`) and
/// out of it alike, a missing endpoint is a failure, never a skip.
pub fn endpoint_missing(endpoint: &str, why: impl std::fmt::Display) -> ! {
    panic!(
        "{endpoint} is not set up here ({why}): `bash .ci/engines start` starts the test \
         endpoints (as root, on Debian, with the packages `.ci/run` installs; see the README's \
         test command), and the SEAWORTHY_TEST_* variables point the tests at others"
    )
}

/// The private registry user's password (written by `.ci/engines` to
/// `/var/lib/seaworthy-ci/registry/password`, or the file `SEAWORTHY_TEST_REGISTRY_PASSWORD_FILE`
/// names); a clear failure naming the registry when it was never set up.
pub fn registry_password() -> String {
    let path = std::env::var("SEAWORTHY_TEST_REGISTRY_PASSWORD_FILE")
        .unwrap_or_else(|_| "/var/lib/seaworthy-ci/registry/password".into());
    match std::fs::read_to_string(&path) {
        Ok(password) => password.trim().to_string(),
        Err(e) => endpoint_missing("the private registry", format!("{path}: {e}")),
    }
}
