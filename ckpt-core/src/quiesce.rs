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
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicUsize, Ordering::*};
use std::ffi::CString;

/// Odd while a freeze is in progress.
static GEN: AtomicU32 = AtomicU32::new(0);
/// Threads currently parked in the handler.
static PARKED: AtomicU32 = AtomicU32::new(0);
/// 1 while a thread coordinates a checkpoint.
static COORDINATING: AtomicU32 = AtomicU32::new(0);
/// A request arrived while it could not be served at once.
static REQUEST_MISSED: AtomicU32 = AtomicU32::new(0);
/// The coordinator, set by the shim: called with the coordinating
/// thread's ucontext and why it was woken, on ckpt's stack.
static COORDINATOR: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
/// errno of the code the coordinator interrupted.
static COORDINATOR_ERRNO: AtomicI32 = AtomicI32::new(0);
/// Top of ckpt's coordinator stack (0: run on the thread's own stack).
static STACK_TOP: AtomicUsize = AtomicUsize::new(0);

/// `sigev_value` / `sival` marking ckpt's own checkpoint requests.
pub const REQUEST_MAGIC: u64 = 0x636b_7074_7265_7130; // "ckptreq0"
/// si_value of the signal that tells a thread to park: any other delivery
/// of the reserved signal is the program's own (a program that took
/// ckpt's signal for itself) and runs the program's handler.
const FREEZE_MAGIC: u64 = 0x636b_7074_6672_7a30; // "ckptfrz0"

/// Why a coordinator runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Wake {
    /// A datagram arrived on the control socket.
    Socket = 1,
    /// The periodic timer fired.
    Timer = 2,
    /// The program called `ckpt::checkpoint()` (or a request was deferred).
    Api = 3,
}

/// The coordinator's signature (see [`set_coordinator`]).
pub type Coordinator = extern "C" fn(uc: *mut c_void, why: u32);

/// Install the function that serves checkpoint requests.
pub fn set_coordinator(f: Coordinator) {
    COORDINATOR.store(f as *mut c_void, Release);
}

/// Give the coordinator a stack of its own (mapped once at start-up), so
/// a request landing on a thread with a small stack is still safe.
pub fn set_coordinator_stack(len: usize) -> Result<(), String> {
    // SAFETY: anonymous private mapping, no hint.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err("cannot map the coordinator stack".into());
    }
    STACK_TOP.store((p as usize + len) & !15, Release);
    STACK_MAP.store(p as usize, Release);
    STACK_LEN.store(len, Release);
    Ok(())
}

/// The coordinator's stack mapping (it ends at about `STACK_TOP`).
static STACK_MAP: AtomicUsize = AtomicUsize::new(0);
static STACK_LEN: AtomicUsize = AtomicUsize::new(0);

/// The coordinator stack's mapping (address, length), once mapped.
pub fn coordinator_stack_range() -> Option<(usize, usize)> {
    let (base, len) = (STACK_MAP.load(Acquire), STACK_LEN.load(Acquire));
    (base != 0).then_some((base, len))
}

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
        return Err(format!(
            "cannot install the handler for signal {}",
            signals::reserved()
        ));
    }
    interpose::set_freeze_hook(park_self_now);
    Ok(())
}

/// Queue a checkpoint request to the calling thread itself (the
/// programmatic API, or a request that could not be served when it came).
pub fn request_self() {
    let _ = send_own(sys::gettid(), REQUEST_MAGIC);
}

/// The reserved signal to thread `tid` of this process, marked with
/// `magic` as ckpt's own (SI_QUEUE from this process, si_value `magic`).
/// Signal-safe.
fn send_own(tid: i32, magic: u64) -> Result<(), i32> {
    // siginfo for SI_QUEUE: si_pid at 16, si_uid at 20, si_value at 24.
    let mut info = [0u8; 128];
    info[0..4].copy_from_slice(&signals::reserved().to_ne_bytes());
    info[8..12].copy_from_slice(&libc::SI_QUEUE.to_ne_bytes());
    info[16..20].copy_from_slice(&sys::getpid().to_ne_bytes());
    // SAFETY: getuid cannot fail.
    info[20..24].copy_from_slice(&unsafe { libc::getuid() }.to_ne_bytes());
    info[24..32].copy_from_slice(&magic.to_ne_bytes());
    // SAFETY: rt_tgsigqueueinfo to a thread of our own process with a
    // well-formed siginfo (the kernel allows any code to oneself).
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            sys::getpid(),
            tid,
            signals::reserved(),
            info.as_ptr(),
        )
    };
    if r < 0 {
        Err(interpose::errno())
    } else {
        Ok(())
    }
}

/// Whether a delivery of the reserved signal is ckpt's call to park.
fn is_freeze(info: *const libc::siginfo_t) -> bool {
    if info.is_null() {
        return false;
    }
    // SAFETY: the kernel passes a valid siginfo to SA_SIGINFO handlers;
    // si_value sits at offset 24 for SI_QUEUE, si_pid is valid for it.
    unsafe {
        (*info).si_code == libc::SI_QUEUE
            && ((info as *const u8).add(24) as *const u64).read_unaligned() == FREEZE_MAGIC
            && (*info).si_pid() == sys::getpid()
    }
}

/// A freeze or a request was deferred while this thread recorded: take it now.
extern "C" fn park_self_now() {
    if REQUEST_MISSED.swap(0, AcqRel) != 0 {
        request_self();
    }
    if GEN.load(Acquire) & 1 == 1 {
        let _ = send_own(sys::gettid(), FREEZE_MAGIC);
    }
}

/// What a delivery of the reserved signal means.
fn classify(info: *const libc::siginfo_t) -> Option<Wake> {
    if info.is_null() {
        return None;
    }
    // SAFETY: the kernel passes a valid siginfo to SA_SIGINFO handlers.
    let code = unsafe { (*info).si_code };
    // SAFETY: as above; si_value sits at the same place for SI_QUEUE and SI_TIMER.
    let value = || unsafe { ((info as *const u8).add(24) as *const u64).read_unaligned() };
    match code {
        // POLL_IN..POLL_HUP: signal-driven I/O on the control socket.
        1..=6 => Some(Wake::Socket),
        libc::SI_TIMER if value() == REQUEST_MAGIC => Some(Wake::Timer),
        // SAFETY: si_pid is valid for SI_QUEUE.
        libc::SI_QUEUE
            if value() == REQUEST_MAGIC && unsafe { (*info).si_pid() } == sys::getpid() =>
        {
            Some(Wake::Api)
        }
        _ => None,
    }
}

/// Run `f(uc, why)` on ckpt's stack (or this one if none was mapped).
fn on_coordinator_stack(f: Coordinator, uc: *mut c_void, why: u32) {
    let top = STACK_TOP.load(Acquire);
    if top == 0 {
        f(uc, why);
        return;
    }
    // SAFETY: switch rsp to the top of our own mapped, 16-byte aligned
    // stack, call `f` per the C ABI, then restore rsp from the value saved
    // on the new stack. Only one coordinator runs at a time (COORDINATING).
    unsafe {
        core::arch::asm!(
            "mov rax, rsp",
            "mov rsp, r8",
            "push rax",
            "sub rsp, 8",
            "call r9",
            "add rsp, 8",
            "pop rsp",
            in("r8") top,
            in("r9") f,
            out("rax") _,
            in("rdi") uc,
            in("esi") why,
            clobber_abi("C"),
        );
    }
}

/// Serve a checkpoint request on this thread, or note it for later.
/// Signal context.
fn coordinate(uc: *mut c_void, why: Wake) {
    let f = COORDINATOR.load(Acquire);
    if f.is_null() {
        return;
    }
    if !interpose::may_park_or_defer()
        || COORDINATING
            .compare_exchange(0, 1, AcqRel, Acquire)
            .is_err()
    {
        // Recording (served when the hook ends), ckpt-internal, or another
        // coordinator is busy (it drains the socket again before it ends).
        REQUEST_MISSED.store(1, Release);
        return;
    }
    // SAFETY: only `set_coordinator` stores here, always a `Coordinator`.
    let f: Coordinator = unsafe { core::mem::transmute(f) };
    on_coordinator_stack(f, uc, why as u32);
    COORDINATING.store(0, Release);
    if REQUEST_MISSED.swap(0, AcqRel) != 0 {
        request_self();
    }
}

/// The reserved signal's handler. Signal context: no allocation, no
/// locks, no panics.
extern "C" fn on_freeze_signal(sig: c_int, info: *mut libc::siginfo_t, uc: *mut c_void) {
    let saved_errno = interpose::errno();
    if let Some(why) = classify(info) {
        if GEN.load(Acquire) & 1 == 0 {
            COORDINATOR_ERRNO.store(saved_errno, Relaxed);
            coordinate(uc, why);
            interpose::set_errno(saved_errno);
            return;
        }
        // A freeze is under way: the running coordinator drains requests
        // before it ends; park like any other thread.
        REQUEST_MISSED.store(1, Release);
    } else if !is_freeze(info) {
        // The program's own use of the signal: its handler, if it set one
        // (ckpt keeps the kernel's disposition, see the sigaction wrapper).
        signals::trampoline(sig, info, uc);
        interpose::set_errno(saved_errno);
        return;
    }
    let gen = GEN.load(Acquire);
    if gen & 1 == 0 || !interpose::may_park_or_defer() {
        interpose::set_errno(saved_errno);
        return;
    }
    note_context(gen, uc, saved_errno);
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

/// Record where the calling thread stands (its interrupted context).
/// Signal-safe.
fn note_context(gen: u32, uc: *mut c_void, errno: c_int) {
    // The interrupted code's mask, as the program sees it.
    let mask = if uc.is_null() {
        0
    } else {
        // SAFETY: the kernel passes a valid ucontext_t to SA_SIGINFO handlers.
        signals::mask_of(unsafe { &(*(uc as *mut libc::ucontext_t)).uc_sigmask })
    } & !signals::bit(signals::reserved());
    if let Some(slot) = threads::self_slot() {
        threads::park_note(slot, mask, uc as u64, errno);
        // Signals queued to this thread alone: only it can read them.
        signals::save_own_queue(threads::id_of_slot(slot));
        // Last: till now the thread takes its signals out and puts them
        // back, and holds its /proc status open (a snapshot taken before
        // missed signals, and saw that descriptor as the program's).
        threads::mark_parked(slot, gen);
    }
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
    if let Ok(dir) = sys::openat(
        libc::AT_FDCWD,
        c"/proc/self/task",
        libc::O_RDONLY | libc::O_DIRECTORY,
    ) {
        sys::for_each_numeric_entry(dir, |t| out.push(t as i32));
        sys::close(dir);
    }
}

fn blocks_reserved(tid: i32) -> bool {
    let Ok(path) = CString::new(format!("/proc/self/task/{tid}/status")) else {
        return false;
    };
    let mut buf = [0u8; 4096];
    let n = sys::read_small(libc::AT_FDCWD, &path, &mut buf).unwrap_or(0);
    sys::field(&buf[..n], b"SigBlk:")
        .and_then(sys::parse_hex)
        .is_some_and(|m| m & signals::bit(signals::reserved()) != 0)
}

/// Stop every other thread of the program. The caller is the coordinator,
/// itself stopped in the signal handler at `self_uc`. Allocation must
/// already be routed to the scratch arena.
pub fn freeze(timeout_ns: u64, self_uc: *mut c_void) -> Result<Frozen, String> {
    if let Some(tid) = threads::syscall_dispatch_thread() {
        return Err(format!(
            "thread {tid} turned on syscall user dispatch (prctl PR_SET_SYSCALL_USER_DISPATCH): \
             ckpt cannot stop it without its own system calls being trapped, nor turn it on \
             again after a restart"
        ));
    }
    let started_ns = sys::monotonic_ns();
    signals::thread_queues_reset();
    let gen = GEN.fetch_add(1, AcqRel) + 1;
    let me = sys::gettid();
    note_context(gen, self_uc, COORDINATOR_ERRNO.load(Relaxed));
    let mut signaled: Vec<(i32, Option<ThreadState>)> = Vec::with_capacity(64);
    signaled.push((me, Some(ThreadState::Frozen)));
    let mut tasks = Vec::with_capacity(64);
    loop {
        list_tasks(&mut tasks);
        let mut new = false;
        for &tid in &tasks {
            if signaled.iter().any(|s| s.0 == tid) {
                continue;
            }
            new = true;
            match send_own(tid, FREEZE_MAGIC) {
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
            return Err(format!(
                "thread {stuck} did not stop within {} ms",
                timeout_ns / 1_000_000
            ));
        }
        let seen = PARKED.load(Acquire);
        sys::futex_wait(&PARKED, seen, 1_000_000);
    }
    threads::reap(|tid| tasks.contains(&tid));
    let threads: Vec<(i32, ThreadState)> = signaled
        .into_iter()
        .map(|(t, s)| (t, s.unwrap_or(ThreadState::Frozen)))
        .collect();
    for &(tid, state) in &threads {
        if state == ThreadState::BlocksSignals {
            threads::record_foreign(tid);
        }
    }
    // A thread beyond the table would be missing from the image: refuse
    // rather than write one that cannot come back whole.
    let unrecorded = threads
        .iter()
        .filter(|t| !threads::is_recorded(t.0))
        .count();
    if unrecorded > 0 {
        thaw_gen(gen);
        return Err(format!(
            "{} of the program's {} threads are beyond what ckpt can record ({} threads at most)",
            unrecorded,
            threads.len(),
            threads::MAX_THREADS
        ));
    }
    Ok(Frozen {
        gen,
        started_ns,
        threads,
    })
}

/// The image was taken mid-freeze: after a restart nobody is parked and
/// no checkpoint runs. Post-restart context.
pub fn reset_after_restart() {
    let gen = GEN.load(Acquire);
    GEN.store((gen | 1) + 1, Release);
    PARKED.store(0, Release);
    COORDINATING.store(0, Release);
    REQUEST_MISSED.store(0, Release);
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
