//! The outcome of a run: a summary for people on standard error, or JSON on
//! standard output, and the exit status.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::HumanBytes;
use serde_json::json;

use crate::cli::Verbosity;

/// A file saved under its final name.
#[derive(Debug, Clone)]
pub struct SavedFile {
    /// Its position in the URL list.
    pub id: u64,
    /// Where it came from.
    pub url: String,
    /// Where it is.
    pub path: PathBuf,
    /// Its length.
    pub bytes: u64,
}

/// A URL that could not be downloaded.
#[derive(Debug, Clone)]
pub struct FailedUrl {
    /// Its position in the URL list.
    pub id: u64,
    /// The URL.
    pub url: String,
    /// Why, after the last attempt.
    pub reason: String,
}

/// Everything a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// How many files were saved.
    pub saved_count: u64,
    /// The files saved, in URL-list order once [`Report::sort`] ran; only
    /// when the settings ask for the list (`--json`, the demo).
    pub saved: Vec<SavedFile>,
    /// URLs that failed.
    pub failed: Vec<FailedUrl>,
    /// URLs never started because the run was interrupted.
    pub not_started: u64,
    /// Body bytes received over all attempts.
    pub bytes: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Whether Ctrl-C stopped the run.
    pub interrupted: bool,
}

impl Report {
    /// Puts both lists in URL-list order.
    pub fn sort(&mut self) {
        self.saved.sort_by_key(|s| s.id);
        self.failed.sort_by_key(|f| f.id);
    }

    /// Mean download rate in bytes per second.
    fn rate(&self) -> u64 {
        (self.bytes as f64 / self.elapsed.as_secs_f64().max(0.001)) as u64
    }

    /// Prints the summary on standard error: one line of totals and each
    /// failure; only the failures when quiet.
    pub fn print_summary(&self, verbosity: Verbosity) {
        if verbosity != Verbosity::Quiet {
            eprintln!(
                "{} ok, {} failed: {} in {:.2}s ({}/s)",
                self.saved_count,
                self.failed.len(),
                HumanBytes(self.bytes),
                self.elapsed.as_secs_f64(),
                HumanBytes(self.rate())
            );
        }
        if self.interrupted {
            eprintln!("interrupted: {} URL(s) were not started", self.not_started);
        }
        for failure in &self.failed {
            eprintln!("failed: {}: {}", failure.url, failure.reason);
        }
    }

    /// The machine-readable summary.
    pub fn to_json(&self) -> serde_json::Value {
        let failures: Vec<_> = self
            .failed
            .iter()
            .map(|f| json!({ "url": f.url, "error": f.reason }))
            .collect();
        let files: Vec<_> = self
            .saved
            .iter()
            .map(
                |s| json!({ "url": s.url, "path": s.path.display().to_string(), "bytes": s.bytes }),
            )
            .collect();
        json!({
            "ok": self.saved_count,
            "failed": self.failed.len(),
            "bytes": self.bytes,
            "seconds": self.elapsed.as_secs_f64(),
            "interrupted": self.interrupted,
            "not_started": self.not_started,
            "failures": failures,
            "files": files,
        })
    }

    /// 130 when interrupted, 1 when anything failed, 0 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        if self.interrupted {
            ExitCode::from(130)
        } else if self.failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }
}
