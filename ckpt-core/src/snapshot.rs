//! Gather everything recorded plus what the kernel reports into one
//! [`Meta`]. Runs while the program is frozen: raw syscalls and Rust
//! allocation (routed to the scratch arena) only.

use crate::image::{Meta, Process, RestartInfo, ThreadOwn, ThreadState};
use crate::quiesce::Frozen;
use crate::{files, glibc, memory, process, signals, sys, threads, timers};
use std::ffi::CString;

/// Build the metadata of checkpoint number `seq`.
pub fn gather(frozen: &Frozen, seq: u64, created_unix_ms: u64) -> Meta {
    let states = |tid: i32| -> Option<ThreadState> { frozen.state_of(tid) };
    // The interval timers before the signal queue: a periodic real timer
    // that expired during the freeze is re-armed, in phase, by taking its
    // SIGALRM (see `snapshot_itimers`), which the queue then holds.
    let itimers = timers::snapshot_itimers();
    let mut process = process::snapshot(signals::reserved());
    process.queued = signals::snapshot_queue(process.pending);
    let threads = threads::snapshot(states, |tid| thread_status(tid, &process))
        .into_iter()
        .map(|mut t| {
            t.queued = signals::thread_queue(t.id);
            t
        })
        .collect();
    Meta {
        writer: format!("ckpt {}", env!("CARGO_PKG_VERSION")),
        created_unix_ms,
        seq,
        freeze_us: 0,
        process,
        threads,
        fds: files::snapshot(files::is_own),
        timers: timers::snapshot(),
        itimers,
        signals: signals::snapshot(),
        signals_kernel: signals::snapshot_kernel(),
        regions: Vec::new(),
        fork_advice: Vec::new(),
        advice: Vec::new(),
        saved_files: Vec::new(),
        locked: crate::memory::locked::snapshot(),
        cpu: Some(crate::cputime::snapshot()),
        clocks: Some(crate::image::Clocks {
            monotonic_ns: sys::clock_ns(libc::CLOCK_MONOTONIC),
            boottime_ns: sys::clock_ns(libc::CLOCK_BOOTTIME),
        }),
        restart: restart_info(),
        deps: Vec::new(),
        dirty_round: 0,
        precopy: false,
        written_files: Vec::new(),
        closed_files: Vec::new(),
        closed_files_dropped: 0,
        job_log: None,
        job_written: Vec::new(),
        job_mark: None,
        frozen_unix_ms: 0,
        job: None,
    }
}

fn restart_info() -> RestartInfo {
    let (rseq_offset, rseq_len) = glibc::rseq_layout();
    RestartInfo {
        entry: crate::restart::entry as *const () as usize as u64,
        stack_top: crate::restart::stack_top(),
        tid_offset: glibc::tid_offset(),
        rseq_len,
        rseq_offset,
        reserve_start: memory::RESTORER_BASE,
        reserve_len: memory::RESTORER_LEN,
    }
}

/// A thread's name (its comm, as prctl(PR_SET_NAME) or
/// pthread_setname_np set it, raw bytes), the signals pending for it
/// alone, and those it blocks (all as the program sees them: without the
/// reserved signal), and what it holds apart from process `p`.
fn thread_status(tid: i32, p: &Process) -> (Vec<u8>, u64, u64, Option<ThreadOwn>) {
    let (Ok(path), Ok(comm_path)) = (
        CString::new(format!("/proc/self/task/{tid}/status")),
        CString::new(format!("/proc/self/task/{tid}/comm")),
    ) else {
        return (Vec::new(), 0, 0, None);
    };
    let mut buf = [0u8; 64];
    let n = sys::read_small(libc::AT_FDCWD, &comm_path, &mut buf).unwrap_or(0);
    // The kernel ends the name with a newline it does not hold.
    let comm = buf[..n].strip_suffix(b"\n").unwrap_or(&buf[..n]).to_vec();
    let mut buf = [0u8; 4096];
    let n = sys::read_small(libc::AT_FDCWD, &path, &mut buf).unwrap_or(0);
    let text = &buf[..n];
    let pending = sys::field(text, b"SigPnd:")
        .and_then(sys::parse_hex)
        .unwrap_or(0);
    let blocked = sys::field(text, b"SigBlk:")
        .and_then(sys::parse_hex)
        .unwrap_or(0);
    let hide = !signals::bit(signals::reserved());
    let own = threads::own::snapshot(tid, text, p);
    (comm, pending & hide, blocked & hide, own)
}
