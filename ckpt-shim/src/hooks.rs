//! The program's checkpoint hooks (`ckpt::on_restore`, `ckpt_on_restore`,
//! ...): functions of the program ckpt calls before a checkpoint, after it
//! (in the process that goes on) and after a restart (in the restored
//! process), so the program can put back what no replay can: a session
//! with a server, a device, a library handle.
//!
//! Hooks are the program's own code: they may lock and allocate, so they
//! never run in the signal handler that takes a checkpoint. They run on
//! the hook thread, a thread of the program started with the first hook:
//! - a checkpoint the program asks for (`ckpt::checkpoint()`) runs the
//!   before- and after-hooks on the calling thread itself, around the call;
//! - one asked from outside (`ckpt checkpoint PID`, the periodic timer) is
//!   handed by the coordinator to the hook thread, which runs the
//!   before-hooks, takes the checkpoint, then runs the after-hooks;
//! - after a restart the hook thread goes on first, runs the on-restore
//!   hooks, and only then lets every other thread go on (after a minute
//!   at most: a hook blocked on a lock a held thread owns would otherwise
//!   hold the program for good; the restart then says so).
//!
//! A checkpoint of a whole process tree does not run before/after hooks
//! (its processes are frozen together by the command); on-restore hooks
//! run in every restored process that has them.

use ckpt::checkpoint::Requester;
use ckpt::sys;
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering::*};

/// Kinds, as in include/ckpt.h.
pub const BEFORE_CHECKPOINT: c_int = 0;
pub const AFTER_CHECKPOINT: c_int = 1;
pub const ON_RESTORE: c_int = 2;

const MAX: usize = 64;

struct Hook {
    kind: AtomicI32,
    f: AtomicUsize,
    data: AtomicUsize,
}

static HOOKS: [Hook; MAX] = [const {
    Hook {
        kind: AtomicI32::new(-1),
        f: AtomicUsize::new(0),
        data: AtomicUsize::new(0),
    }
}; MAX];
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Times this process was restored from an image.
static RESTORED: AtomicU32 = AtomicU32::new(0);

/// What the hook thread is asked to do (bits), and its futex word.
const RESTORE: u32 = 1;
const CHECKPOINT: u32 = 2;
static WORK: AtomicU32 = AtomicU32::new(0);
/// 0 not started, 1 starting, 2 running.
static RUNNER: AtomicU32 = AtomicU32::new(0);

/// A checkpoint asked from outside, handed to the hook thread.
struct Deferred {
    requester: UnsafeCell<Option<Requester>>,
    dir: UnsafeCell<([u8; 4096], usize)>,
}
// SAFETY: written by the coordinator before WORK gets CHECKPOINT (Release)
// and read by the hook thread after it sees it (Acquire); the coordinator
// hands over no second one before the hook thread clears the bit.
unsafe impl Sync for Deferred {}
static DEFERRED: Deferred = Deferred {
    requester: UnsafeCell::new(None),
    dir: UnsafeCell::new(([0; 4096], 0)),
};

/// Register hook `f(data)` of `kind`. 0, or -1 for a bad kind, a full
/// table or a hook thread that could not start.
pub fn register(kind: c_int, f: extern "C" fn(*mut c_void), data: *mut c_void) -> c_int {
    if !(BEFORE_CHECKPOINT..=ON_RESTORE).contains(&kind) {
        return -1;
    }
    if !start_runner() {
        return -1;
    }
    let i = COUNT.fetch_add(1, AcqRel);
    let Some(h) = HOOKS.get(i) else {
        COUNT.fetch_sub(1, AcqRel);
        return -1;
    };
    h.f.store(f as usize, Relaxed);
    h.data.store(data as usize, Relaxed);
    h.kind.store(kind, Release);
    0
}

fn any(kind: c_int) -> bool {
    HOOKS
        .iter()
        .take(COUNT.load(Acquire).min(MAX))
        .any(|h| h.kind.load(Acquire) == kind)
}

/// Run every hook of `kind`, in the order they were registered. Normal
/// context only (never in a signal handler).
pub fn run(kind: c_int) {
    for h in HOOKS.iter().take(COUNT.load(Acquire).min(MAX)) {
        if h.kind.load(Acquire) == kind {
            let f = h.f.load(Relaxed);
            // SAFETY: `register` stores only `extern "C" fn(*mut c_void)`s.
            let f: extern "C" fn(*mut c_void) = unsafe { core::mem::transmute(f) };
            f(h.data.load(Relaxed) as *mut c_void);
        }
    }
}

/// Times this process was restored.
pub fn restored() -> u32 {
    RESTORED.load(Acquire)
}

/// Post-restart, before any thread goes on: count the restart and have
/// the hook thread run the on-restore hooks first.
pub fn after_restart() {
    RESTORED.fetch_add(1, AcqRel);
    if RUNNER.load(Acquire) == 2 && any(ON_RESTORE) {
        WORK.fetch_or(RESTORE, AcqRel);
        sys::futex_wake_all(&WORK);
    } else {
        // Nobody to wait for.
        ckpt::restart::set_first_thread(0);
    }
}

/// Coordinator (signal context, no allocation): hand a checkpoint asked
/// from outside to the hook thread when there are hooks to run around it.
/// False: take it here, as without hooks.
pub fn defer(requester: Requester, dir: &[u8]) -> bool {
    if RUNNER.load(Acquire) != 2 || !(any(BEFORE_CHECKPOINT) || any(AFTER_CHECKPOINT)) {
        return false;
    }
    if WORK.load(Acquire) & CHECKPOINT != 0 {
        return false; // one is being handled: take this one as is
    }
    // SAFETY: see `Deferred`: the hook thread does not read it now.
    unsafe {
        *DEFERRED.requester.get() = Some(requester);
        let (buf, len) = &mut *DEFERRED.dir.get();
        *len = dir.len().min(buf.len());
        buf[..*len].copy_from_slice(&dir[..*len]);
    }
    WORK.fetch_or(CHECKPOINT, AcqRel);
    sys::futex_wake_all(&WORK);
    true
}

/// In a fork child: the hook thread stayed in the parent; start one.
pub fn after_fork_in_child() {
    WORK.store(0, Relaxed);
    RUNNER.store(0, Relaxed);
    ckpt::restart::set_first_thread(0);
    if COUNT.load(Acquire) > 0 {
        start_runner();
    }
}

fn start_runner() -> bool {
    crate::own_thread::start_once(&RUNNER, runner)
}

extern "C" fn runner(_: *mut c_void) -> *mut c_void {
    // SAFETY: naming our own thread with a NUL-terminated name.
    unsafe { libc::pthread_setname_np(libc::pthread_self(), c"ckpt-hooks".as_ptr()) };
    if let Some(slot) = ckpt::threads::self_slot() {
        ckpt::restart::set_first_thread(ckpt::threads::id_of_slot(slot));
    }
    crate::own_thread::running(&RUNNER);
    loop {
        let w = WORK.load(Acquire);
        if w == 0 {
            sys::futex_wait(&WORK, 0, 0);
            continue;
        }
        if w & RESTORE != 0 {
            restored_now();
        }
        if w & CHECKPOINT != 0 {
            // SAFETY: see `Deferred`: CHECKPOINT is set, the coordinator
            // does not write it now.
            let (asked, dir) = unsafe {
                let (buf, len) = &*DEFERRED.dir.get();
                ((*DEFERRED.requester.get()).take(), buf[..*len].to_vec())
            };
            run(BEFORE_CHECKPOINT);
            let restored_before = restored();
            crate::control::checkpoint_for(asked, &dir);
            WORK.fetch_and(!CHECKPOINT, AcqRel);
            if restored() != restored_before {
                // This very thread was restored from that checkpoint.
                restored_now();
            } else {
                run(AFTER_CHECKPOINT);
            }
        }
    }
}

/// The on-restore hooks, then every other thread goes on.
fn restored_now() {
    WORK.fetch_and(!RESTORE, AcqRel);
    run(ON_RESTORE);
    ckpt::restart::release_all();
}

// The C API (include/ckpt.h); the Rust API finds the same symbols.

/// `ckpt_before_checkpoint(f, data)`: call `f(data)` before each checkpoint.
#[no_mangle]
pub extern "C" fn ckpt_before_checkpoint(
    f: Option<extern "C" fn(*mut c_void)>,
    data: *mut c_void,
) -> c_int {
    f.map_or(-1, |f| register(BEFORE_CHECKPOINT, f, data))
}

/// `ckpt_after_checkpoint(f, data)`: call `f(data)` after each checkpoint,
/// in the process that goes on (not in one restored from it).
#[no_mangle]
pub extern "C" fn ckpt_after_checkpoint(
    f: Option<extern "C" fn(*mut c_void)>,
    data: *mut c_void,
) -> c_int {
    f.map_or(-1, |f| register(AFTER_CHECKPOINT, f, data))
}

/// `ckpt_on_restore(f, data)`: call `f(data)` in a restored process,
/// before any other thread of the program goes on.
#[no_mangle]
pub extern "C" fn ckpt_on_restore(
    f: Option<extern "C" fn(*mut c_void)>,
    data: *mut c_void,
) -> c_int {
    f.map_or(-1, |f| register(ON_RESTORE, f, data))
}

/// `ckpt_restored_count()`: times this process was restored from an image.
#[no_mangle]
pub extern "C" fn ckpt_restored_count() -> u32 {
    restored()
}
