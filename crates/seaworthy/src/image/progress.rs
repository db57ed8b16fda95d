//! What a pull or an image build shows while it runs: a live bar on a terminal, plain lines
//! (state changes or build steps, and a summary every few seconds) otherwise, nothing with
//! `SEAWORTHY_QUIET=1`. Tracing gets every state change and step in all three.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often plain output repeats the summary.
const SUMMARY_EVERY: Duration = Duration::from_secs(5);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Display {
    /// Nothing on stderr.
    Quiet,
    /// Lines: layer state changes, and a summary every few seconds.
    Lines,
    /// A live bar redrawn in place.
    Live,
}

impl Display {
    /// `Quiet` with `SEAWORTHY_QUIET` set (not `0`), `Live` when stderr is a terminal, else
    /// `Lines`.
    pub(crate) fn from_env() -> Display {
        let quiet = std::env::var("SEAWORTHY_QUIET").is_ok_and(|v| !v.is_empty() && v != "0");
        if quiet {
            Display::Quiet
        } else if std::io::stderr().is_terminal() {
            Display::Live
        } else {
            Display::Lines
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Layer {
    status: String,
    current: u64,
    total: u64,
}

/// Shows that `what` (`pulling redis:7`) begins: a live bar (`counts`, the indicatif template
/// of its counts after the bar) on a terminal, a line otherwise.
fn begin(display: Display, what: &str, counts: &str) -> Option<ProgressBar> {
    if display == Display::Lines {
        eprintln!("seaworthy: {what}");
    }
    (display == Display::Live).then(|| {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template(&format!("seaworthy: {{msg}} [{{bar:30}}] {counts}"))
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        bar
    })
}

/// The progress of one pull.
pub(crate) struct PullProgress {
    reference: String,
    display: Display,
    layers: BTreeMap<String, Layer>,
    bar: Option<ProgressBar>,
    last_summary: Instant,
}

impl PullProgress {
    /// Starts showing the pull of `reference`.
    pub(crate) fn start(reference: &str, display: Display) -> PullProgress {
        let bar = begin(
            display,
            &format!("pulling {reference}"),
            "{bytes}/{total_bytes}",
        );
        PullProgress {
            reference: reference.to_string(),
            display,
            layers: BTreeMap::new(),
            bar,
            last_summary: Instant::now(),
        }
    }

    /// One message of the engine's pull stream.
    pub(crate) fn update(&mut self, layer: &str, status: &str, current: u64, total: u64) {
        if layer.is_empty() {
            return;
        }
        let entry = self.layers.entry(layer.to_string()).or_default();
        let changed = entry.status != status
            && !(status.starts_with("Downloading") && entry.status.starts_with("Downloading"))
            && !(status.starts_with("Extracting") && entry.status.starts_with("Extracting"));
        if status.starts_with("Downloading") {
            entry.current = current;
            entry.total = total.max(entry.total);
        } else if status.starts_with("Download complete") || status.starts_with("Pull complete") {
            entry.current = entry.total;
        }
        entry.status = status.to_string();
        if changed {
            tracing::info!(image = %self.reference, layer, status, "pull progress");
        }
        match self.display {
            Display::Quiet => {}
            Display::Live => {
                if let Some(bar) = &self.bar {
                    let (done, count, current, total) = totals(&self.layers);
                    bar.set_length(total);
                    bar.set_position(current);
                    bar.set_message(format!("pulling {}: {done}/{count} layers", self.reference));
                }
            }
            Display::Lines => {
                if changed
                    && !status.starts_with("Downloading")
                    && !status.starts_with("Extracting")
                {
                    eprintln!("seaworthy: {}: {layer}: {status}", self.reference);
                }
                if self.last_summary.elapsed() >= SUMMARY_EVERY {
                    self.last_summary = Instant::now();
                    eprintln!("seaworthy: {}: {}", self.reference, summary(&self.layers));
                }
            }
        }
    }

    /// The pull ended after `elapsed`.
    pub(crate) fn finish(self, elapsed: Duration) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.display != Display::Quiet {
            eprintln!("seaworthy: pulled {} in {elapsed:.1?}", self.reference);
        }
    }
}

impl Drop for PullProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The progress of one image build: its steps (`Step 2/5 : RUN …` of the engine's builder).
pub(crate) struct BuildProgress {
    reference: String,
    display: Display,
    bar: Option<ProgressBar>,
    step: Option<(u64, u64)>,
    started: Instant,
    last_summary: Instant,
}

impl BuildProgress {
    /// Starts showing the build of `reference`.
    pub(crate) fn start(reference: &str, display: Display) -> BuildProgress {
        let bar = begin(
            display,
            &format!("building {reference}"),
            "step {pos}/{len}",
        );
        BuildProgress {
            reference: reference.to_string(),
            display,
            bar,
            step: None,
            started: Instant::now(),
            last_summary: Instant::now(),
        }
    }

    /// One whole line of the builder's output.
    pub(crate) fn line(&mut self, line: &str) {
        if let Some((n, of, instruction)) = build_step(line) {
            self.step = Some((n, of));
            tracing::info!(image = %self.reference, step = n, of, instruction, "build progress");
            match self.display {
                Display::Quiet => {}
                Display::Live => {
                    if let Some(bar) = &self.bar {
                        bar.set_length(of);
                        bar.set_position(n.saturating_sub(1));
                        bar.set_message(format!("building {}: {instruction}", self.reference));
                    }
                }
                Display::Lines => {
                    self.last_summary = Instant::now();
                    eprintln!(
                        "seaworthy: building {}: step {n}/{of}: {instruction}",
                        self.reference
                    );
                }
            }
        } else if self.display == Display::Lines && self.last_summary.elapsed() >= SUMMARY_EVERY {
            self.last_summary = Instant::now();
            let at = match self.step {
                Some((n, of)) => format!("at step {n}/{of}"),
                None => "not at a step yet".to_string(),
            };
            eprintln!(
                "seaworthy: building {}: {at} after {:.0?}",
                self.reference,
                self.started.elapsed()
            );
        }
    }

    /// The build succeeded after `elapsed`.
    pub(crate) fn finish(self, elapsed: Duration) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.display != Display::Quiet {
            eprintln!("seaworthy: built {} in {elapsed:.1?}", self.reference);
        }
    }
}

impl Drop for BuildProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `Step 2/5 : RUN make` as (2, 5, `RUN make`).
fn build_step(line: &str) -> Option<(u64, u64, &str)> {
    let rest = line.trim_start().strip_prefix("Step ")?;
    let (counts, instruction) = rest.split_once(" : ")?;
    let (n, of) = counts.split_once('/')?;
    Some((n.parse().ok()?, of.parse().ok()?, instruction.trim()))
}

/// Layers done, layers seen, bytes downloaded, bytes to download.
fn totals(layers: &BTreeMap<String, Layer>) -> (usize, usize, u64, u64) {
    let done = layers
        .values()
        .filter(|l| l.status.starts_with("Pull complete") || l.status == "Already exists")
        .count();
    let current = layers.values().map(|l| l.current).sum();
    let total = layers.values().map(|l| l.total).sum();
    (done, layers.len(), current, total)
}

/// `3/7 layers done, 12.3/45.6 MB downloaded`.
fn summary(layers: &BTreeMap<String, Layer>) -> String {
    let (done, count, current, total) = totals(layers);
    let mb = |b: u64| b as f64 / 1_000_000.0;
    format!(
        "{done}/{count} layers done, {:.1}/{:.1} MB downloaded",
        mb(current),
        mb(total)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_layers_and_bytes() {
        let mut p = PullProgress::start("redis:7", Display::Quiet);
        p.update("a", "Pulling fs layer", 0, 0);
        p.update("b", "Already exists", 0, 0);
        p.update("a", "Downloading", 1_500_000, 3_000_000);
        assert_eq!(summary(&p.layers), "1/2 layers done, 1.5/3.0 MB downloaded");
        p.update("a", "Download complete", 0, 0);
        p.update("a", "Pull complete", 0, 0);
        assert_eq!(summary(&p.layers), "2/2 layers done, 3.0/3.0 MB downloaded");
    }

    #[test]
    fn build_steps_are_read_from_the_builder_output() {
        assert_eq!(
            build_step("Step 2/5 : RUN make -j2"),
            Some((2, 5, "RUN make -j2"))
        );
        assert_eq!(build_step(" ---> Running in 4f1c"), None);
        assert_eq!(build_step("Step x/5 : RUN make"), None);
        let mut p = BuildProgress::start("app:1", Display::Quiet);
        p.line("Step 1/2 : FROM busybox");
        p.line(" ---> 9f7cab1b2cef");
        assert_eq!(p.step, Some((1, 2)));
    }
}
