//! Progress on standard error: live bars on a terminal, one plain line per
//! finished file otherwise, never both. The scheduler refreshes it from a
//! libuv timer, so all drawing happens on the loop thread.

use std::fmt;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{
    HumanBytes, HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle,
};

use crate::cli::Verbosity;

/// Most transfers shown with a bar of their own at once.
const MAX_BARS: usize = 8;

/// A transfer in flight, as the progress display sees it.
#[derive(Debug, Clone)]
pub struct Active {
    /// Identifies it across refreshes.
    pub id: u64,
    /// Its output name.
    pub name: String,
    /// Bytes of its file so far.
    pub bytes: u64,
    /// Its expected length, if known.
    pub total: Option<u64>,
    /// Its mean receive rate so far, in bytes per second.
    pub rate: u64,
}

/// Everything one refresh shows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Files finished (saved or failed).
    pub files_done: u64,
    /// Files in the run.
    pub files_total: u64,
    /// Body bytes received so far.
    pub bytes: u64,
    /// Transfers in flight.
    pub active: Vec<Active>,
}

/// Where progress goes.
pub enum Progress {
    /// Nothing (`--quiet`): failures are listed in the summary.
    Quiet,
    /// One line per finished file (standard error is not a terminal).
    Lines {
        /// Also print notes.
        verbose: bool,
    },
    /// Live bars (standard error is a terminal).
    Bars(Box<Bars>),
}

impl Progress {
    /// The display suited to `verbosity` and to what standard error is.
    pub fn new(verbosity: Verbosity, files_total: u64) -> Progress {
        let verbose = verbosity == Verbosity::Verbose;
        match verbosity {
            Verbosity::Quiet => Progress::Quiet,
            _ if std::io::stderr().is_terminal() => {
                Progress::Bars(Box::new(Bars::new(files_total, verbose)))
            }
            _ => Progress::Lines { verbose },
        }
    }

    /// A side remark (retries, resumes, names): shown only when verbose.
    pub fn note(&self, text: &str) {
        match self {
            Progress::Lines { verbose: true } => eprintln!("{text}"),
            Progress::Bars(bars) if bars.verbose => bars.println(text),
            _ => {}
        }
    }

    /// A file was saved (formatted only if shown: most runs save many).
    pub fn saved(&self, text: fmt::Arguments) {
        match self {
            Progress::Lines { .. } => eprintln!("{text}"),
            Progress::Bars(bars) if bars.verbose => bars.println(&text.to_string()),
            _ => {}
        }
    }

    /// A file failed for good.
    pub fn failed(&self, text: &str) {
        match self {
            Progress::Lines { .. } => eprintln!("{text}"),
            Progress::Bars(bars) => bars.println(text),
            Progress::Quiet => {}
        }
    }

    /// Whether [`Progress::refresh`] draws anything (only bars do), so that
    /// a snapshot is worth taking.
    pub fn draws(&self) -> bool {
        matches!(self, Progress::Bars(_))
    }

    /// Redraws from `snapshot` (bars only).
    pub fn refresh(&mut self, snapshot: &Snapshot) {
        if let Progress::Bars(bars) = self {
            bars.refresh(snapshot);
        }
    }

    /// Removes the bars before the summary is printed.
    pub fn clear(&mut self) {
        if let Progress::Bars(bars) = self {
            bars.clear();
        }
    }
}

/// The indicatif display: an overall bar and one bar per shown transfer.
pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    slots: Vec<Slot>,
    started: Instant,
    verbose: bool,
}

impl Bars {
    fn new(files_total: u64, verbose: bool) -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let overall = multi.add(ProgressBar::new(files_total));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} files  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.set_prefix("total");
        Bars {
            multi,
            overall,
            slots: Vec::new(),
            started: Instant::now(),
            verbose,
        }
    }

    fn println(&self, text: &str) {
        // Printing above the bars only fails if standard error is gone.
        let _ = self.multi.println(text);
    }

    fn refresh(&mut self, snapshot: &Snapshot) {
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = (snapshot.bytes as f64 / elapsed) as u64;
        let eta = eta(snapshot, self.started.elapsed());
        self.overall.set_position(snapshot.files_done);
        self.overall.set_message(format!(
            "{}  {}/s  ETA {eta}",
            HumanBytes(snapshot.bytes),
            HumanBytes(rate)
        ));
        let shown = &snapshot.active[..snapshot.active.len().min(MAX_BARS)];
        // Bars are never removed while the run lasts (indicatif redraws
        // badly when they are): a slot that has no transfer to show blanks.
        while self.slots.len() < shown.len() {
            let bar = self
                .multi
                .add(ProgressBar::no_length().with_style(blank_style()));
            self.slots.push(Slot { bar, showing: None });
        }
        for (index, slot) in self.slots.iter_mut().enumerate() {
            match shown.get(index) {
                Some(active) => slot.show(active),
                None => slot.blank(),
            }
        }
    }

    fn clear(&mut self) {
        for slot in self.slots.drain(..) {
            slot.bar.finish_and_clear();
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

/// Time left. When every file still to come is in flight with a known
/// length, from the bytes left at the mean rate so far (under `--max-speed`
/// that is the limited rate, not a burst); otherwise from the share of files
/// done.
fn eta(snapshot: &Snapshot, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let files_left = snapshot.files_total.saturating_sub(snapshot.files_done);
    let lengths_known = snapshot.active.len() as u64 == files_left
        && snapshot.active.iter().all(|a| a.total.is_some());
    if lengths_known && snapshot.bytes > 0 {
        let bytes_left: u64 = snapshot
            .active
            .iter()
            .map(|a| a.total.unwrap_or(0).saturating_sub(a.bytes))
            .sum();
        let rate = snapshot.bytes as f64 / secs;
        return HumanDuration(Duration::from_secs_f64(bytes_left as f64 / rate)).to_string();
    }
    if snapshot.files_done == 0 || snapshot.files_total == 0 {
        return "-".to_owned();
    }
    let per_file = secs / snapshot.files_done as f64;
    HumanDuration(Duration::from_secs_f64(files_left as f64 * per_file)).to_string()
}

/// One line of the display, showing one transfer at a time.
struct Slot {
    bar: ProgressBar,
    /// The transfer shown, and whether its length is known.
    showing: Option<(u64, bool)>,
}

impl Slot {
    /// Shows `active`, switching style when the transfer or its length changed.
    fn show(&mut self, active: &Active) {
        let state = (active.id, active.total.is_some());
        if self.showing != Some(state) {
            if self.showing.map(|(id, _)| id) != Some(active.id) {
                self.bar.reset();
            }
            self.bar.set_style(transfer_style(active.total.is_some()));
            self.bar.set_message(active.name.clone());
            self.showing = Some(state);
        }
        match active.total {
            Some(total) => self.bar.set_length(total),
            None => self.bar.unset_length(),
        }
        // set_position alone may skip drawing; set_prefix always draws.
        self.bar.set_position(active.bytes);
        self.bar
            .set_prefix(format!("{}/s", HumanBytes(active.rate)));
    }

    /// Shows nothing.
    fn blank(&mut self) {
        if self.showing.take().is_some() {
            self.bar.set_style(blank_style());
            self.bar.reset();
        }
    }
}

/// The style of a transfer's bar, with or without a known length.
fn transfer_style(known_length: bool) -> ProgressStyle {
    let template = if known_length {
        "  {msg:32!} [{bar:20}] {bytes:>10}/{total_bytes:<10} {prefix:>12}"
    } else {
        "  {msg:32!} {bytes:>10} {prefix:>12}"
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// An empty line.
fn blank_style() -> ProgressStyle {
    ProgressStyle::with_template(" ").unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(bytes: u64, total: Option<u64>) -> Active {
        Active {
            id: 1,
            name: "big.iso".into(),
            bytes,
            total,
            rate: 0,
        }
    }

    #[test]
    fn eta_counts_bytes_when_the_lengths_are_known() {
        // Half of a 1 GiB file in 3 s (about 179 MB/s): about 3 s left, not
        // "1 second" from a count of files.
        let snapshot = Snapshot {
            files_done: 1,
            files_total: 2,
            bytes: (512 << 20) + 10,
            active: vec![active(512 << 20, Some(1 << 30))],
        };
        assert_eq!(eta(&snapshot, Duration::from_secs(3)), "3 seconds");
        // An unknown length: by files.
        let unknown = Snapshot {
            active: vec![active(512 << 20, None)],
            ..snapshot.clone()
        };
        assert_eq!(eta(&unknown, Duration::from_secs(3)), "3 seconds");
        let none_done = Snapshot {
            files_done: 0,
            ..unknown
        };
        assert_eq!(eta(&none_done, Duration::from_secs(3)), "-");
        // A limited rate (1 MiB/s on average) over 10 MiB left: 10 s.
        let limited = Snapshot {
            files_done: 0,
            files_total: 1,
            bytes: 5 << 20,
            active: vec![active(5 << 20, Some(15 << 20))],
        };
        assert_eq!(eta(&limited, Duration::from_secs(5)), "10 seconds");
    }
}
