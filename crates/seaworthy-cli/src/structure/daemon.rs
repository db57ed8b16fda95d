//! `daemonTests` (Seaworthy's extension): the image started as it runs in production — its own
//! entrypoint and command, the image's exposed ports published — then checked while it runs.
//!
//! Each daemon test reports one result for becoming ready (its `waitFor`, within
//! `startupTimeout`), then one per check: expected log lines (each within its timeout, read from
//! the log stream, not polled), HTTP requests, processes (read by the engine, no `ps` needed,
//! once when the daemon is ready, before any request or command adds its own), commands run in the daemon's container, and finally log lines that must not have appeared. When
//! the daemon does not become ready, its checks fail with "not run".

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use seaworthy::{Container, LogPattern, LogStream, Wait};

use super::commands::{result_of, run_steps};
use super::env::added_env;
use super::report::{Kind, TestResult};
use super::spec::{
    DaemonTest, HttpCheck, LogExpectation, ProcessCheck, SpecFile, StreamName, WaitSpec,
};
use super::Context;

/// How long an expected log line is waited for by default.
const DEFAULT_LOG_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a daemon may take to start by default.
const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the daemon tests of `spec`.
pub async fn run(ctx: &Context, spec: &SpecFile, file_index: usize) -> Vec<TestResult> {
    stream::iter(spec.spec.daemon_tests.iter().enumerate())
        .map(|(i, t)| run_one(ctx, spec, file_index, i, t))
        .buffer_unordered(ctx.jobs)
        .flat_map(stream::iter)
        .collect()
        .await
}

/// One check of a daemon test, before it runs.
enum Check<'a> {
    Log(&'a LogExpectation),
    Http(&'a HttpCheck),
    Process(&'a ProcessCheck),
}

async fn run_one(
    ctx: &Context,
    spec: &SpecFile,
    file_index: usize,
    index: usize,
    t: &DaemonTest,
) -> Vec<TestResult> {
    let file = spec.path.display().to_string();
    let order = |sub: usize| (file_index, Kind::Daemon, index, sub);
    let named = |check: &str| format!("{}: {check}", t.name);
    let checks: Vec<(String, Check)> =
        t.expected_logs
            .iter()
            .map(|l| (format!("log {}", l.pattern), Check::Log(l)))
            .chain(t.http_tests.iter().map(|h| {
                let name = h.name.clone().unwrap_or_else(|| {
                    format!("{} {}", h.method.as_deref().unwrap_or("GET"), h.path)
                });
                (name, Check::Http(h))
            }))
            .chain(t.process_tests.iter().map(|p| {
                let name = p
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("process {}", p.args));
                (name, Check::Process(p))
            }))
            .collect();
    // Results: 0 = ready, then checks, then command tests, then excluded logs.
    let command_base = 1 + checks.len();
    let excluded_base = command_base + t.command_tests.len();

    let run = &spec.spec.container_run_options;
    let env = added_env(&ctx.base_env(run), &spec.spec.global_env_vars, &t.env_vars);
    let mut def = ctx
        .definition(run)
        .with_startup_timeout(t.startup_timeout.map_or(DEFAULT_STARTUP_TIMEOUT, |d| d.0));
    for (k, v) in env {
        def = def.with_env(k, v);
    }
    if let Some(entrypoint) = &t.entrypoint {
        def = def.with_entrypoint(entrypoint.clone());
    }
    if let Some(cmd) = &t.cmd {
        def = def.with_cmd(cmd.clone());
    }
    for port in ports_to_publish(ctx, t) {
        def = def.with_port(port);
    }
    if let Some(wait) = t.wait_for.as_ref().and_then(wait_of) {
        def = def.with_wait(wait);
    }

    let started = Instant::now();
    ctx.count_started();
    let container = def.start_in(&ctx.session).await;
    let ready = TestResult::new(
        &file,
        order(0),
        named("ready"),
        started.elapsed(),
        container
            .as_ref()
            .err()
            .map(|e| e.to_string())
            .into_iter()
            .collect(),
    );
    ctx.progress.result(&ready);
    let mut results = vec![ready];
    let c = match container {
        Ok(c) => c,
        Err(_) => {
            let not_run = |sub: usize, name: String| {
                let r = TestResult::new(
                    &file,
                    order(sub),
                    named(&name),
                    Duration::ZERO,
                    vec!["not run: the daemon did not become ready".to_string()],
                );
                ctx.progress.result(&r);
                r
            };
            for (i, (name, _)) in checks.iter().enumerate() {
                results.push(not_run(1 + i, name.clone()));
            }
            for (i, ct) in t.command_tests.iter().enumerate() {
                results.push(not_run(command_base + i, ct.name.clone()));
            }
            for (i, p) in t.excluded_logs.iter().enumerate() {
                results.push(not_run(excluded_base + i, format!("no log {p}")));
            }
            return results;
        }
    };

    // Processes are listed once, as the daemon is when it has become ready, before any HTTP
    // request or command runs: a server that forks per request (or a command's own process) would
    // otherwise change the count a process check sees.
    let processes = if t.process_tests.is_empty() {
        Ok(Vec::new())
    } else {
        c.processes()
            .await
            .map_err(|e| format!("cannot list the processes of {}: {e}", c.name()))
    };
    // Log and HTTP checks run concurrently; commands run in order meanwhile.
    let check_results = join_all(checks.iter().enumerate().map(|(i, (name, check))| {
        let (file, c, processes) = (&file, &c, &processes);
        async move {
            let started = Instant::now();
            let errors = match check {
                Check::Log(l) => check_log(c, l).await,
                Check::Http(h) => check_http(c, h).await,
                Check::Process(p) => check_process(processes, p),
            };
            let r = TestResult::new(file, order(1 + i), named(name), started.elapsed(), errors);
            ctx.progress.result(&r);
            r
        }
    }));
    let command_results = async {
        let base_env = ctx.base_env(run);
        let mut out = Vec::new();
        for (i, ct) in t.command_tests.iter().enumerate() {
            let started = Instant::now();
            let env = added_env(&base_env, &spec.spec.global_env_vars, &ct.env_vars);
            let outcome = run_steps(ctx, &c, ct, &env, run.allocate_tty).await;
            let r = result_of(
                &file,
                order(command_base + i),
                &named(&ct.name),
                ct,
                outcome,
                started.elapsed(),
            );
            ctx.progress.result(&r);
            out.push(r);
        }
        out
    };
    let (check_results, command_results) = futures_util::join!(check_results, command_results);
    results.extend(check_results);
    results.extend(command_results);

    if !t.excluded_logs.is_empty() {
        let started = Instant::now();
        let logs = c.logs().await;
        for (i, p) in t.excluded_logs.iter().enumerate() {
            let errors = match &logs {
                Err(e) => vec![format!("cannot read the log: {e}")],
                Ok(logs) => logs
                    .lines
                    .iter()
                    .filter(|l| p.is_match(&l.text))
                    .take(3)
                    .map(|l| format!("{} line matches excluded {p}: {}", l.stream, l.text))
                    .collect(),
            };
            let r = TestResult::new(
                &file,
                order(excluded_base + i),
                named(&format!("no log {p}")),
                started.elapsed(),
                errors,
            );
            ctx.progress.result(&r);
            results.push(r);
        }
    }
    ctx.remove(c).await;
    results
}

/// The image's exposed TCP ports, plus those the test's checks and waits use.
fn ports_to_publish(ctx: &Context, t: &DaemonTest) -> BTreeSet<u16> {
    let mut ports: BTreeSet<u16> = ctx
        .image_config
        .exposed_ports
        .iter()
        .flatten()
        .filter_map(|p| match p.split_once('/') {
            Some((port, "tcp")) => port.parse().ok(),
            None => p.parse().ok(),
            _ => None,
        })
        .collect();
    ports.extend(t.http_tests.iter().map(|h| h.port));
    if let Some(w) = &t.wait_for {
        ports.extend(w.http.as_ref().map(|h| h.port));
        ports.extend(w.tcp);
    }
    ports
}

/// The wait for `waitFor`: every condition given must hold.
fn wait_of(w: &WaitSpec) -> Option<Wait> {
    let mut all = Vec::new();
    if let Some(p) = &w.log {
        all.push(Wait::log_times(p.0.as_str(), w.log_times.unwrap_or(1)));
    }
    if let Some(h) = &w.http {
        all.push(match h.status {
            Some(status) => Wait::http_status(h.port, h.path.clone(), status),
            None => Wait::http(h.port, h.path.clone()),
        });
    }
    if let Some(port) = w.tcp {
        all.push(Wait::tcp(port));
    }
    if w.healthy {
        all.push(Wait::healthy());
    }
    if let Some(d) = w.running_for {
        all.push(Wait::running_for(d.0));
    }
    match all.len() {
        0 => None,
        1 => all.pop(),
        _ => Some(Wait::all(all)),
    }
}

async fn check_log(c: &Container, l: &LogExpectation) -> Vec<String> {
    let pattern = match LogPattern::new(l.pattern.0.as_str()) {
        Ok(p) => p.times(l.times.unwrap_or(1)),
        Err(e) => return vec![e.to_string()],
    };
    let pattern = match l.stream {
        Some(StreamName::Stdout) => pattern.on(LogStream::Stdout),
        Some(StreamName::Stderr) => pattern.on(LogStream::Stderr),
        None => pattern,
    };
    let timeout = l.timeout.map_or(DEFAULT_LOG_TIMEOUT, |d| d.0);
    match c
        .wait_for(&Wait::logs_in_order(vec![pattern]), timeout)
        .await
    {
        Ok(()) => vec![],
        Err(e) => vec![e.to_string()],
    }
}

async fn check_http(c: &Container, h: &HttpCheck) -> Vec<String> {
    let method = h.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let method = match seaworthy::reqwest::Method::from_bytes(method.as_bytes()) {
        Ok(m) => m,
        Err(_) => return vec![format!("invalid HTTP method {method:?}")],
    };
    let client = match c.http(h.port) {
        Ok(client) => client,
        Err(e) => return vec![e.to_string()],
    };
    let response = match client.request(method.clone(), &h.path).send().await {
        Ok(r) => r,
        Err(e) => return vec![format!("{method} {} failed: {e}", h.path)],
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = match response.text().await {
        Ok(b) => b,
        Err(e) => return vec![format!("cannot read the body of {method} {}: {e}", h.path)],
    };
    let mut errors = Vec::new();
    let expected = h.status.unwrap_or(200);
    if status != expected {
        errors.push(format!(
            "{method} {} answered {status}, expected {expected}",
            h.path
        ));
    }
    for p in &h.expected_body {
        if !p.is_match(&body) {
            errors.push(format!("the body does not match {p}"));
        }
    }
    for p in &h.excluded_body {
        if p.is_match(&body) {
            errors.push(format!("the body matches excluded {p}"));
        }
    }
    for header in &h.headers {
        let Some(value) = headers.get(header.key.as_str()) else {
            errors.push(format!("no {} header", header.key));
            continue;
        };
        let value = String::from_utf8_lossy(value.as_bytes());
        // Header regexes are compiled while the spec is read.
        if !header.accepts(&value) {
            errors.push(format!(
                "header {} is {value:?}, expected {}{:?}",
                header.key,
                if header.is_regex { "a match of " } else { "" },
                header.value
            ));
        }
    }
    if !errors.is_empty() {
        let excerpt: String = body.chars().take(200).collect();
        errors.push(format!("body: {excerpt:?}"));
    }
    errors
}

/// Checks `p` against the processes listed when the daemon became ready (users are named from
/// the container's own `/etc/passwd`, by the core's process list).
fn check_process(
    processes: &Result<Vec<seaworthy::Process>, String>,
    p: &ProcessCheck,
) -> Vec<String> {
    let processes = match processes {
        Ok(list) => list,
        Err(e) => return vec![e.clone()],
    };
    let matching: Vec<_> = processes
        .iter()
        .filter(|proc| p.args.is_match(&proc.args))
        .filter(|proc| {
            p.user
                .as_ref()
                .is_none_or(|u| *u == proc.user || *u == proc.uid.to_string())
        })
        .collect();
    let who = p
        .user
        .as_ref()
        .map(|u| format!(" run by {u}"))
        .unwrap_or_default();
    let listing = || {
        processes
            .iter()
            .map(|proc| format!("{} {}", proc.user, proc.args))
            .collect::<Vec<_>>()
            .join("; ")
    };
    match (p.should_exist, p.count) {
        (false, _) if !matching.is_empty() => vec![format!(
            "{} process(es) matching {}{who} run but none should: {}",
            matching.len(),
            p.args,
            matching
                .iter()
                .map(|m| m.args.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )],
        (false, _) => vec![],
        (true, Some(n)) if matching.len() != n => vec![format!(
            "{} process(es) match {}{who}, expected {n}; processes: {}",
            matching.len(),
            p.args,
            listing()
        )],
        (true, None) if matching.is_empty() => vec![format!(
            "no process matches {}{who}; processes: {}",
            p.args,
            listing()
        )],
        (true, _) => vec![],
    }
}
