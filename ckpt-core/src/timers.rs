//! POSIX timers and interval timers. The table keeps what `timer_create`
//! was asked (clock, how to notify, the target thread as a logical thread
//! id rather than a tid that changes across restarts); the kernel tells
//! the remaining time and interval at snapshot.
//!
//! glibc (2.34+) hands out the kernel's timer id as the `timer_t` for
//! SIGEV_SIGNAL/NONE/THREAD_ID timers; for SIGEV_THREAD it hands out a
//! pointer to its own record, shifted right by one with the top bit set,
//! whose first field is the kernel id. [`kernel_id`] decodes both.

use crate::image::{Itimer, Notify, Timer};
use crate::sys;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering::*};

/// POSIX timers tracked at once.
pub const MAX_TIMERS: usize = 1024;

struct Slot {
    seq: AtomicU32,
    used: AtomicU8,
    timer_id: AtomicU64,
    clock: AtomicI32,
    notify: AtomicI32,
    signo: AtomicI32,
    value: AtomicU64,
    target_id: AtomicU32,
    target_tid: AtomicI32,
    function: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    seq: AtomicU32::new(0),
    used: AtomicU8::new(0),
    timer_id: AtomicU64::new(0),
    clock: AtomicI32::new(0),
    notify: AtomicI32::new(0),
    signo: AtomicI32::new(0),
    value: AtomicU64::new(0),
    target_id: AtomicU32::new(0),
    target_tid: AtomicI32::new(0),
    function: AtomicU64::new(0),
};

static SLOTS: [Slot; MAX_TIMERS] = [EMPTY; MAX_TIMERS];

/// The kernel's id behind a glibc `timer_t`.
pub fn kernel_id(timer_id: u64) -> i32 {
    if (timer_id as i64) < 0 {
        let rec = (timer_id << 1) as *const i32;
        // SAFETY: glibc encodes SIGEV_THREAD timers as a pointer to its
        // live record, whose first field is the kernel timer id.
        unsafe { rec.read_volatile() }
    } else {
        timer_id as i32
    }
}

/// What `timer_create` was given (decoded from its `sigevent`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sigevent {
    pub notify: i32,
    pub signo: i32,
    pub value: u64,
    pub tid: i32,
    pub function: u64,
}

impl Sigevent {
    /// Decode a C `struct sigevent` (null = SIGEV_SIGNAL with SIGALRM).
    ///
    /// # Safety
    /// `sev` is null or points to a valid `struct sigevent`.
    pub unsafe fn from_raw(sev: *const libc::sigevent) -> Sigevent {
        if sev.is_null() {
            return Sigevent {
                notify: libc::SIGEV_SIGNAL,
                signo: libc::SIGALRM,
                ..Sigevent::default()
            };
        }
        let s = &*sev;
        // glibc's union after the three fixed fields: the tid for
        // SIGEV_THREAD_ID, the function pointer for SIGEV_THREAD.
        let tail = (sev as *const u8).add(16);
        Sigevent {
            notify: s.sigev_notify,
            signo: s.sigev_signo,
            value: s.sigev_value.sival_ptr as u64,
            tid: if s.sigev_notify == libc::SIGEV_THREAD_ID {
                (tail as *const i32).read()
            } else {
                0
            },
            function: if s.sigev_notify == libc::SIGEV_THREAD {
                (tail as *const u64).read()
            } else {
                0
            },
        }
    }
}

/// timer_create succeeded with `timer_id`.
pub fn record_create(timer_id: u64, clock: i32, ev: &Sigevent) {
    let target_id = if ev.notify == libc::SIGEV_THREAD_ID {
        crate::threads::id_of_tid(ev.tid).unwrap_or(0)
    } else {
        0
    };
    for s in SLOTS.iter() {
        if s.used.load(Relaxed) == 0 && s.used.compare_exchange(0, 2, Acquire, Relaxed).is_ok() {
            s.seq.fetch_add(1, Acquire);
            s.timer_id.store(timer_id, Relaxed);
            s.clock.store(clock, Relaxed);
            s.notify.store(ev.notify, Relaxed);
            s.signo.store(ev.signo, Relaxed);
            s.value.store(ev.value, Relaxed);
            s.target_tid.store(ev.tid, Relaxed);
            s.target_id.store(target_id, Relaxed);
            s.function.store(ev.function, Relaxed);
            s.seq.fetch_add(1, Release);
            s.used.store(1, Release);
            return;
        }
    }
}

/// timer_delete(timer_id) is about to run.
pub fn record_delete(timer_id: u64) {
    for s in SLOTS.iter() {
        if s.used.load(Acquire) == 1 && s.timer_id.load(Relaxed) == timer_id {
            s.used.store(0, Release);
        }
    }
}

/// Forget every timer (after exec, or in a fork child: timers are not
/// inherited by fork).
pub fn reset() {
    for s in SLOTS.iter() {
        s.used.store(0, Relaxed);
    }
}

/// Describe every live timer with the kernel's remaining time. Runs while
/// frozen (raw syscalls + Rust allocation only).
pub fn snapshot() -> Vec<Timer> {
    let mut out = Vec::new();
    for s in SLOTS.iter() {
        if s.used.load(Acquire) != 1 {
            continue;
        }
        let timer_id = s.timer_id.load(Relaxed);
        let kid = kernel_id(timer_id);
        let mut cur: libc::itimerspec = unsafe_zeroed();
        // SAFETY: timer_gettime syscall into a live itimerspec.
        if unsafe { libc::syscall(libc::SYS_timer_gettime, kid, &mut cur) } < 0 {
            continue; // deleted past the wrappers
        }
        // SAFETY: plain syscall on a kernel timer id.
        let overrun = unsafe { libc::syscall(libc::SYS_timer_getoverrun, kid) } as i32;
        let notify = match s.notify.load(Relaxed) {
            libc::SIGEV_NONE => Notify::None,
            libc::SIGEV_THREAD => Notify::Thread,
            libc::SIGEV_THREAD_ID => Notify::ThreadId,
            _ => Notify::Signal,
        };
        let target = s.target_id.load(Relaxed);
        out.push(Timer {
            timer_id,
            kernel_id: kid,
            clock: s.clock.load(Relaxed),
            notify,
            signo: s.signo.load(Relaxed),
            sigev_value: s.value.load(Relaxed),
            target_thread: (notify == Notify::ThreadId && target != 0).then_some(target),
            target_tid: (notify == Notify::ThreadId).then(|| s.target_tid.load(Relaxed)),
            function: (notify == Notify::Thread).then(|| s.function.load(Relaxed)),
            interval_ns: sys::ts_ns(&cur.it_interval),
            remaining_ns: sys::ts_ns(&cur.it_value),
            overrun: overrun.max(0),
        });
    }
    out
}

/// The three interval timers as the kernel has them.
pub fn snapshot_itimers() -> Vec<Itimer> {
    let mut out = Vec::new();
    for (which, name) in [
        (libc::ITIMER_REAL, "real"),
        (libc::ITIMER_VIRTUAL, "virtual"),
        (libc::ITIMER_PROF, "prof"),
    ] {
        let mut v: libc::itimerval = unsafe_zeroed();
        // SAFETY: getitimer into a live itimerval.
        unsafe { libc::syscall(libc::SYS_getitimer, which, &mut v) };
        let ns = |t: &libc::timeval| {
            t.tv_sec.max(0) as u64 * 1_000_000_000 + t.tv_usec.max(0) as u64 * 1000
        };
        out.push(Itimer {
            which: name.into(),
            interval_ns: ns(&v.it_interval),
            remaining_ns: ns(&v.it_value),
        });
    }
    out
}

fn unsafe_zeroed<T>() -> T {
    // SAFETY: only used for plain C structs where all-zero is valid.
    unsafe { core::mem::zeroed() }
}
