//! Quiesce: stop every thread of the program at a consistent point, and
//! let them go again.
//!
//! Each thread gets the reserved signal with `tgkill`; its handler records
//! where it stands and waits on a futex until the generation counter moves
//! on. A thread inside a recording hook defers (see `interpose`), so no
//! table entry is half-written while frozen. Threads that block every
//! signal (glibc's SIGEV_THREAD helper) never stop: they are listed as
//! such and re-created from the recorded timers on restart.

use crate::image::ThreadState;
use crate::signals::RealSigaction;
use crate::{interpose, signals, sys, threads};
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering::*};
use std::ffi::CString;

/// Odd while a freeze is in progress.
static GEN: AtomicU32 = AtomicU32::new(0);
/// Threads currently parked in the handler.
static PARKED: AtomicU32 = AtomicU32::new(0);
/// ckpt's own control thread, never signalled.
static CONTROL_TID: AtomicI32 = AtomicI32::new(0);

/// Install the freeze handler for the reserved signal.
///
/// `real_sigaction` is libc's sigaction (not the shim's wrapper).
pub fn install(real_sigaction: RealSigaction) -> Result<(), String> {
    // SAFETY: a zeroed sigaction is valid; fields are set below.
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = on_freeze_signal as *const () as usize;
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    // Block everything while parked: the program's handlers wait for thaw.
    // SAFETY: filling a sigset we own.
    unsafe { libc::sigfillset(&mut sa.sa_mask) };
    // SAFETY: installing our handler for the reserved signal.
    if unsafe { real_sigaction(signals::reserved(), &sa, core::ptr::null_mut()) } != 0 {
        return Err(format!("cannot install the handler for signal {}", signals::reserved()));
    }
    interpose::set_freeze_hook(park_self_now);
    Ok(())
}

/// The control thread announces itself.
pub fn set_control_thread(tid: i32) {
    CONTROL_TID.store(tid, Relaxed);
}

/// A freeze was deferred while this thread recorded: take it now.
extern "C" fn park_self_now() {
    let _ = sys::tgkill(sys::getpid(), sys::gettid(), signals::reserved());
}

/// The reserved signal's handler. Signal context: no allocation, no
/// locks, no panics.
extern "C" fn on_freeze_signal(_sig: c_int, _info: *mut libc::siginfo_t, uc: *mut c_void) {
    let saved_errno = interpose::errno();
    let gen = GEN.load(Acquire);
    if gen & 1 == 0 || !interpose::may_park_or_defer() {
        interpose::set_errno(saved_errno);
        return;
    }
    // The interrupted code's mask, as the program sees it.
    let mask = if uc.is_null() {
        0
    } else {
        // SAFETY: the kernel passes a valid ucontext_t to SA_SIGINFO handlers.
        signals::mask_of(unsafe { &(*(uc as *mut libc::ucontext_t)).uc_sigmask })
    } & !signals::bit(signals::reserved());
    if let Some(slot) = threads::self_slot() {
        threads::park_note(slot, gen, mask, uc as u64);
    }
    PARKED.fetch_add(1, AcqRel);
    sys::futex_wake_all(&PARKED);
    while GEN.load(Acquire) == gen {
        sys::futex_wait(&GEN, gen, 0);
    }
    PARKED.fetch_sub(1, AcqRel);
    sys::futex_wake_all(&PARKED);
    interpose::note_freeze();
    interpose::set_errno(saved_errno);
}

/// The program, stopped.
pub struct Frozen {
    gen: u32,
    started_ns: u64,
    threads: Vec<(i32, ThreadState)>,
}

impl Frozen {
    /// How the thread `tid` was found, if it belongs to the program.
    pub fn state_of(&self, tid: i32) -> Option<ThreadState> {
        self.threads.iter().find(|t| t.0 == tid).map(|t| t.1)
    }

    /// Every thread of the program with its state.
    pub fn threads(&self) -> &[(i32, ThreadState)] {
        &self.threads
    }

    /// When the freeze began (CLOCK_MONOTONIC ns).
    pub fn started_ns(&self) -> u64 {
        self.started_ns
    }
}

fn list_tasks(out: &mut Vec<i32>) {
    out.clear();
    if let Ok(dir) = sys::openat(libc::AT_FDCWD, c"/proc/self/task", libc::O_RDONLY | libc::O_DIRECTORY) {
        sys::for_each_numeric_entry(dir, |t| out.push(t as i32));
        sys::close(dir);
    }
}

fn blocks_reserved(tid: i32) -> bool {
    let Ok(path) = CString::new(format!("/proc/self/task/{tid}/status")) else { return false };
    let mut buf = [0u8; 4096];
    let n = sys::read_small(libc::AT_FDCWD, &path, &mut buf).unwrap_or(0);
    sys::field(&buf[..n], b"SigBlk:")
        .and_then(sys::parse_hex)
        .is_some_and(|m| m & signals::bit(signals::reserved()) != 0)
}

/// Stop every thread of the program but the caller and ckpt's own.
/// Allocation must already be routed to the scratch arena.
pub fn freeze(timeout_ns: u64) -> Result<Frozen, String> {
    let started_ns = sys::monotonic_ns();
    let gen = GEN.fetch_add(1, AcqRel) + 1;
    let (pid, me, control) = (sys::getpid(), sys::gettid(), CONTROL_TID.load(Relaxed));
    let mut signaled: Vec<(i32, Option<ThreadState>)> = Vec::with_capacity(64);
    let mut tasks = Vec::with_capacity(64);
    loop {
        list_tasks(&mut tasks);
        let mut new = false;
        for &tid in &tasks {
            if tid == me || tid == control || signaled.iter().any(|s| s.0 == tid) {
                continue;
            }
            new = true;
            match sys::tgkill(pid, tid, signals::reserved()) {
                Ok(()) => signaled.push((tid, None)),
                Err(_) => continue, // exited meanwhile
            }
        }
        // Threads that ended are no longer waited for.
        signaled.retain(|s| tasks.contains(&s.0));
        let waited = sys::monotonic_ns() - started_ns;
        for s in signaled.iter_mut() {
            if s.1.is_none() && threads::is_parked(s.0, gen) {
                s.1 = Some(ThreadState::Frozen);
            } else if s.1.is_none() && waited > 20_000_000 && blocks_reserved(s.0) {
                s.1 = Some(ThreadState::BlocksSignals);
            }
        }
        if !new && signaled.iter().all(|s| s.1.is_some()) {
            break;
        }
        if waited > timeout_ns {
            let stuck = signaled.iter().find(|s| s.1.is_none()).map_or(0, |s| s.0);
            thaw_gen(gen);
            return Err(format!("thread {stuck} did not stop within {} ms", timeout_ns / 1_000_000));
        }
        let seen = PARKED.load(Acquire);
        sys::futex_wait(&PARKED, seen, 1_000_000);
    }
    threads::reap(|tid| tasks.contains(&tid));
    let threads: Vec<(i32, ThreadState)> = signaled.into_iter().map(|(t, s)| (t, s.unwrap_or(ThreadState::Frozen))).collect();
    for &(tid, state) in &threads {
        if state == ThreadState::BlocksSignals {
            threads::record_foreign(tid);
        }
    }
    Ok(Frozen {
        gen,
        started_ns,
        threads,
    })
}

fn thaw_gen(gen: u32) {
    GEN.store(gen + 1, Release);
    sys::futex_wake_all(&GEN);
    // Wait (bounded) until every parked thread left the handler, so the
    // next freeze starts clean.
    let until = sys::monotonic_ns() + 2_000_000_000;
    loop {
        let n = PARKED.load(Acquire);
        if n == 0 || sys::monotonic_ns() > until {
            break;
        }
        sys::futex_wait(&PARKED, n, 1_000_000);
    }
}

/// Let every thread go on. Returns how long they were stopped (ns).
pub fn thaw(f: Frozen) -> u64 {
    let ns = sys::monotonic_ns() - f.started_ns;
    thaw_gen(f.gen);
    ns
}
