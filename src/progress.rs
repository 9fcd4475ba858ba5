//! Progress of long checkpoints and restarts: a bar on stderr (bytes,
//! rate, time left) when stderr is a terminal and `--quiet` was not
//! given, drawn only once the work has taken half a second (a quick one
//! shows nothing), and cleared when done.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How long work runs before its bar appears.
const SHOW_AFTER: Duration = Duration::from_millis(500);

pub struct Bar {
    what: &'static str,
    total: u64,
    enabled: bool,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Bar {
    /// A bar for `what` ("writing", "checking", ...) of `total` bytes;
    /// nothing is drawn unless `enabled` (see [`wanted`]).
    pub fn new(enabled: bool, what: &'static str, total: u64) -> Bar {
        Bar {
            what,
            total,
            enabled,
            started: Instant::now(),
            bar: None,
        }
    }

    /// `done` bytes so far (the total grows when passed).
    pub fn set(&mut self, done: u64) {
        if !self.enabled || self.started.elapsed() < SHOW_AFTER {
            return;
        }
        if self.total < done {
            self.total = done;
            if let Some(b) = &self.bar {
                b.set_length(done);
            }
        }
        let bar = self.bar.get_or_insert_with(|| {
            // Hidden until it knows where it is (no first frame at 0).
            let b = ProgressBar::with_draw_target(Some(self.total), ProgressDrawTarget::hidden());
            b.set_position(done);
            b.reset_eta();
            b.set_style(
                ProgressStyle::with_template(
                    "ckpt: {msg:9} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} left {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_message(self.what);
            b.set_draw_target(ProgressDrawTarget::stderr());
            b
        });
        bar.set_position(done);
    }

    /// The work is over: the bar goes away.
    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Whether bars are wanted: stderr is a terminal and not `--quiet`.
pub fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// Bytes process `pid` has written so far (`wchar` of /proc/PID/io).
pub fn written_by(pid: i32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Anonymous and shared memory process `pid` holds (RssAnon + RssShmem
/// of /proc/PID/status): about what its image will hold.
pub fn memory_of(pid: i32) -> u64 {
    let status = ckpt::names::read_proc(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .filter_map(|l| {
            l.strip_prefix("RssAnon:")
                .or_else(|| l.strip_prefix("RssShmem:"))
        })
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .sum::<u64>()
        * 1024
}

static WANTED: AtomicBool = AtomicBool::new(false);

/// Set once by a command: whether its long steps show bars.
pub fn set_wanted(on: bool) {
    WANTED.store(on, Relaxed);
}

/// What [`set_wanted`] said.
pub fn is_wanted() -> bool {
    WANTED.load(Relaxed)
}

/// While the restorer (process `pid`) copies `total` bytes of memory in:
/// its resident anonymous memory against that, until it hands over to
/// the program (its name changes) or ends.
pub fn watch_restore(pid: i32, total: u64) {
    if !is_wanted() {
        return;
    }
    let mut bar = Bar::new(true, "restoring", total);
    let started = Instant::now();
    let mut seen = false;
    while let Ok(comm) = ckpt::names::read_proc(format!("/proc/{pid}/comm")) {
        // Before its exec the process is still this command.
        let restoring = comm.trim_end() == "ckpt-restorer";
        seen |= restoring;
        if (seen && !restoring) || (!seen && started.elapsed() > Duration::from_secs(5)) {
            break;
        }
        if restoring {
            bar.set(memory_of(pid).min(total));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
