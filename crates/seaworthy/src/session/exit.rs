//! Teardown at process exit: an `atexit` hook (which also runs after a panicking or failing test,
//! libtest exiting through `process::exit`), SIGINT/SIGTERM turned into an exit, and the reaper
//! started for SIGKILL, with a sweep of what earlier, killed runs left behind.

use std::time::Duration;

use super::handle::{Session, EXIT_HOOK, SESSIONS};
use crate::runtime::runtime;

/// How long teardown at exit waits for removals before giving up.
const EXIT_TEARDOWN_DEADLINE: Duration = Duration::from_secs(60);

impl Session {
    fn teardown_at_exit(&self) {
        if self.0.keep {
            let live = self
                .0
                .tracker
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for (kind, items) in live.iter() {
                for name in items.values() {
                    eprintln!("seaworthy: SEAWORTHY_KEEP is set; keeping {kind:?} {name}");
                }
            }
            return;
        }
        self.wait_for_background_removals(EXIT_TEARDOWN_DEADLINE);
        let session = self.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        runtime().spawn(async move {
            let _ = tx.send(session.teardown_here().await);
        });
        match rx.recv_timeout(EXIT_TEARDOWN_DEADLINE) {
            Ok(errors) => {
                for e in errors {
                    eprintln!("seaworthy: teardown at exit: {e}");
                }
            }
            Err(_) => eprintln!(
                "seaworthy: teardown at exit did not finish within {EXIT_TEARDOWN_DEADLINE:?}; `seaworthy gc` removes what is left"
            ),
        }
    }
}

pub(super) fn install_exit_hooks(session: &Session) {
    EXIT_HOOK.call_once(|| {
        if !session.0.keep {
            crate::reaper::spawn_reaper(
                session.0.engine.endpoint(),
                &session.0.run_id,
                &session.0.owner,
                &session.0.runner,
            );
            // Sweep what earlier, killed runs left behind, without holding anything up.
            let engine = session.0.engine.clone();
            runtime().spawn(async move {
                match crate::gc::collect(&engine, crate::gc::GcOptions::default()).await {
                    Ok(report) if !report.removed.is_empty() => {
                        tracing::info!(
                            removed = report.removed.len(),
                            "removed resources of dead test processes"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "startup sweep failed"),
                }
            });
        }
        extern "C" fn at_exit() {
            teardown_all_sessions();
        }
        // SAFETY: registering a plain `extern "C" fn()` with the C library's atexit is sound; the
        // handler only uses the library's own statics, which are never dropped.
        unsafe {
            libc::atexit(at_exit);
        }
        runtime().spawn(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            let code = tokio::select! {
                _ = int.recv() => 130,
                _ = term.recv() => 143,
            };
            eprintln!("seaworthy: signal received; removing this process's containers");
            // exit() runs the atexit hook, which tears everything down.
            std::thread::spawn(move || std::process::exit(code));
        });
    });
}

fn teardown_all_sessions() {
    let sessions: Vec<Session> = SESSIONS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for session in sessions {
        session.teardown_at_exit();
    }
}
