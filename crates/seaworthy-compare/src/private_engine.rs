//! A private Docker engine of this process, for the test that stops and restarts the engine
//! mid-suite without touching the machine's own engine (whose containers belong to other tests).
//!
//! [`PrivateEngine::start`] runs a second `dockerd` with directories, socket and pid file of its
//! own under [`PrivateEngine::ROOT`] and [`PrivateEngine::DATA_ROOT`], its own managed containerd,
//! no default bridge, no iptables rules and address pools that stay clear of the usual ones, and
//! waits until its socket answers `GET /_ping`. [`PrivateEngine::stop`] sends SIGTERM and waits
//! for the process to exit (the engine stops its containers first); [`PrivateEngine::restart`]
//! starts it again with the same command line. Dropping the value stops the engine if it runs and
//! removes its directories.
//!
//! Needs root and a `dockerd` binary (Debian's `docker.io`); [`PrivateEngine::start`] says which
//! is missing.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `dockerd` of this process's own.
#[derive(Debug)]
pub struct PrivateEngine {
    dockerd: PathBuf,
    child: Option<Child>,
}

impl PrivateEngine {
    /// The directory of its socket, pid file, exec root and log.
    pub const ROOT: &'static str = "/run/seaworthy-restart";
    /// Its data root (images, containers): on disk, not on the `/run` tmpfs.
    pub const DATA_ROOT: &'static str = "/var/lib/seaworthy-restart";
    /// Its endpoint, for `DOCKER_HOST` or [`seaworthy::Engine::connect_to`].
    pub const ENDPOINT: &'static str = "unix:///run/seaworthy-restart/docker.sock";
    /// How long the engine gives a container to stop on SIGTERM when the engine itself stops.
    pub const SHUTDOWN_TIMEOUT_SECS: u32 = 3;

    /// Starts a private engine and waits (at most `timeout`) until it answers; fails with the
    /// reason when this process may not (not root, no `dockerd`). A private engine left running
    /// by an earlier, killed run of this test is stopped first.
    pub fn start(timeout: Duration) -> io::Result<PrivateEngine> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("a private dockerd needs root (running as uid {euid})"),
            ));
        }
        let dockerd = find_in_path("dockerd").ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no dockerd binary in {} (Debian: apt-get install docker.io)",
                    system_path()
                ),
            )
        })?;
        stop_stale(timeout)?;
        // Whatever an earlier run left: the engine re-creates it.
        remove_dir(Path::new(Self::DATA_ROOT))?;
        remove_dir(Path::new(Self::ROOT))?;
        std::fs::create_dir_all(Self::ROOT)?;
        std::fs::create_dir_all(Self::DATA_ROOT)?;
        let mut engine = PrivateEngine {
            dockerd,
            child: None,
        };
        engine.spawn(timeout)?;
        Ok(engine)
    }

    /// The socket's path.
    pub fn socket() -> PathBuf {
        Path::new(Self::ROOT).join("docker.sock")
    }

    /// The engine's output (appended across restarts).
    pub fn log_file() -> PathBuf {
        Path::new(Self::ROOT).join("dockerd.log")
    }

    /// The pid of the running engine, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM to the engine and waits until it has exited (at most `timeout`); returns how
    /// long that took.
    pub fn stop(&mut self, timeout: Duration) -> io::Result<Duration> {
        let started = Instant::now();
        let Some(child) = self.child.as_mut() else {
            return Err(io::Error::other("the private engine is not running"));
        };
        terminate(child, timeout)?;
        self.child = None;
        Ok(started.elapsed())
    }

    /// Starts the engine again with the same command line and waits (at most `timeout`) until it
    /// answers; returns how long that took.
    pub fn restart(&mut self, timeout: Duration) -> io::Result<Duration> {
        if self.child.is_some() {
            return Err(io::Error::other("the private engine is already running"));
        }
        let started = Instant::now();
        self.spawn(timeout)?;
        Ok(started.elapsed())
    }

    fn spawn(&mut self, timeout: Duration) -> io::Result<()> {
        let started = Instant::now();
        let root = Path::new(Self::ROOT);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Self::log_file())?;
        let mut command = Command::new(&self.dockerd);
        command
            .arg(format!("--data-root={}", Self::DATA_ROOT))
            .arg(format!("--exec-root={}", root.join("exec").display()))
            .arg(format!("--pidfile={}", root.join("docker.pid").display()))
            .arg(format!("--host={}", Self::ENDPOINT))
            // The machine's engine owns docker0 and the firewall rules: keep out of both.
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .arg("--ip-forward=false")
            // Networks this engine creates stay out of the usual 172.17-31/16 and 192.168/16.
            .arg("--default-address-pool=base=10.213.0.0/16,size=24")
            .arg(format!(
                "--shutdown-timeout={}",
                Self::SHUTDOWN_TIMEOUT_SECS
            ))
            .env("PATH", system_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        {
            use std::os::unix::process::CommandExt;
            // Its own process group: a ^C of the test reaches the test, not the engine.
            command.process_group(0);
        }
        // A dockerd started with `--bridge=none` deletes `docker0`, the machine engine's default
        // bridge, as it starts: note it now and put it back once this engine answers.
        let docker0 = docker0_addresses();
        let mut child = command.spawn()?;
        loop {
            if ping(&Self::socket()).is_ok() {
                if let Some(addresses) = &docker0 {
                    restore_docker0(addresses)?;
                }
                break;
            }
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "the private dockerd exited with {status} before answering (see {})",
                    Self::log_file().display()
                )));
            }
            if started.elapsed() > timeout {
                let _ = terminate(&mut child, Duration::from_secs(30));
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the private dockerd did not answer on {} within {timeout:?} (see {})",
                        Self::ENDPOINT,
                        Self::log_file().display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Err(e) = terminate(child, Duration::from_secs(60)) {
                eprintln!("could not stop the private dockerd: {e}");
                return;
            }
        }
        for dir in [Self::DATA_ROOT, Self::ROOT] {
            if let Err(e) = remove_dir(Path::new(dir)) {
                eprintln!("could not remove {dir}: {e}");
            }
        }
    }
}

/// The IPv4 addresses (CIDR) of `docker0`, the machine engine's default bridge, or `None` when
/// there is no such link.
fn docker0_addresses() -> Option<Vec<String>> {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", "docker0"])
        .env("PATH", system_path())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                words.position(|word| word == "inet")?;
                words.next().map(str::to_string)
            })
            .collect(),
    )
}

/// Creates `docker0` again with `addresses` when it is gone, so the machine's engine can still
/// start containers on its default network.
fn restore_docker0(addresses: &[String]) -> io::Result<()> {
    if docker0_addresses().is_some() {
        return Ok(());
    }
    let mut steps = vec![vec!["link", "add", "docker0", "type", "bridge"]];
    steps.extend(
        addresses
            .iter()
            .map(|address| vec!["addr", "add", address.as_str(), "dev", "docker0"]),
    );
    steps.push(vec!["link", "set", "docker0", "up"]);
    for step in steps {
        let status = Command::new("ip")
            .args(&step)
            .env("PATH", system_path())
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "`ip {}` failed ({status}) while putting back docker0, which the private \
                 dockerd deleted",
                step.join(" ")
            )));
        }
    }
    Ok(())
}

/// SIGTERM, then waits for the exit; SIGKILL after `timeout`.
fn terminate(child: &mut Child, timeout: Duration) -> io::Result<()> {
    let started = Instant::now();
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    signal(child.id(), libc::SIGTERM)?;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the private dockerd (pid {}) still ran {timeout:?} after SIGTERM; killed",
                    child.id()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: kill(2) with a pid of a process we started or read from our own pid file.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Stops a private engine that a killed earlier run left behind (found by its pid file, and only
/// when that process is a `dockerd` using this engine's exec root).
fn stop_stale(timeout: Duration) -> io::Result<()> {
    let pid_file = Path::new(PrivateEngine::ROOT).join("docker.pid");
    let Ok(pid) = std::fs::read_to_string(&pid_file) else {
        return Ok(());
    };
    let Ok(pid) = pid.trim().parse::<u32>() else {
        return Ok(());
    };
    let ours = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let c = String::from_utf8_lossy(&c);
        c.contains("dockerd") && c.contains(PrivateEngine::ROOT)
    });
    if !ours {
        return Ok(());
    }
    signal(pid, libc::SIGTERM)?;
    let started = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        if started.elapsed() > timeout {
            return Err(io::Error::other(format!(
                "a private dockerd left by an earlier run (pid {pid}) does not stop"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Removes a directory tree; a missing one is fine.
fn remove_dir(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("remove {}: {e}", dir.display()),
        )),
    }
}

/// `GET /_ping` on an engine's socket: `Ok` when it answers `200 OK`.
pub fn ping(socket: &Path) -> io::Result<()> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "unexpected answer: {}",
            answer.lines().next().unwrap_or("")
        )))
    }
}

/// `program` in [`system_path`], if it is there.
fn find_in_path(program: &str) -> Option<PathBuf> {
    system_path()
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// `PATH` with the system directories first (where the engine finds containerd and runc).
fn system_path() -> String {
    let system = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    match std::env::var("PATH") {
        Ok(path) if !path.is_empty() => format!("{system}:{path}"),
        _ => system.to_string(),
    }
}
