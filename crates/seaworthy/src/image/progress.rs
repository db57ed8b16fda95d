//! What a pull shows while it runs: a live bar on a terminal, plain lines (state changes and a
//! summary every few seconds) otherwise, nothing with `SEAWORTHY_QUIET=1`. Tracing gets every
//! state change in all three.

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
        let bar = (display == Display::Live).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("seaworthy: {msg} [{bar:30}] {bytes}/{total_bytes}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(format!("pulling {reference}"));
            bar
        });
        if display == Display::Lines {
            eprintln!("seaworthy: pulling {reference}");
        }
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
}
