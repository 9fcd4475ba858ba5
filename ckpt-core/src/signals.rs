//! Signals: the program's dispositions, the reserved checkpoint signal and
//! the handler trampoline.
//!
//! Every handler the program installs is recorded here and the kernel is
//! given [`trampoline`] instead, which counts the delivery (so an EINTR
//! caused only by a checkpoint can be told apart from one the program must
//! see) and calls the program's handler with the same arguments. The
//! program always sees its own handler in `sigaction`'s old action.
//!
//! The reserved signal is invisible: it cannot be blocked, waited for or
//! replaced, and never appears in a returned mask or action.

use crate::image::{signal_name, KernelAction, QueuedSignal, SignalAction};
use core::ffi::{c_int, c_void};
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::*,
};

/// libc's `sigaction` (the original, never the shim's wrapper).
pub type RealSigaction = unsafe fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;

/// Signal numbers 1..=64.
pub const NSIG: usize = 65;

/// The checkpoint signal (SIGRTMAX-7 unless CKPT_SIGNAL says otherwise).
static RESERVED: AtomicI32 = AtomicI32::new(62);

struct Entry {
    /// 0 = not recorded (kernel default), 1 = recorded.
    recorded: AtomicU8,
    handler: AtomicU64,
    flags: AtomicU64,
    mask: AtomicU64,
    restorer: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Entry = Entry {
    recorded: AtomicU8::new(0),
    handler: AtomicU64::new(0),
    flags: AtomicU64::new(0),
    mask: AtomicU64::new(0),
    restorer: AtomicU64::new(0),
};

static TABLE: [Entry; NSIG] = [EMPTY; NSIG];

/// The reserved checkpoint signal.
#[inline]
pub fn reserved() -> c_int {
    RESERVED.load(Relaxed)
}

/// Choose the reserved signal (at start-up, before anything is installed).
pub fn set_reserved(sig: c_int) {
    RESERVED.store(sig, Relaxed);
}

/// Bit of `sig` in a 64-bit kernel mask.
#[inline]
pub fn bit(sig: c_int) -> u64 {
    1u64 << (sig - 1)
}

/// The first 64 bits of a glibc `sigset_t`.
#[inline]
pub fn mask_of(set: &libc::sigset_t) -> u64 {
    // SAFETY: sigset_t is at least 8 bytes; the kernel's view is its first word.
    unsafe { (set as *const libc::sigset_t as *const u64).read() }
}

/// `set` without the reserved signal (a copy to hand to the kernel).
///
/// # Safety
/// `set` is null or points to a valid sigset_t.
#[inline]
pub unsafe fn without_reserved(set: *const libc::sigset_t) -> Option<libc::sigset_t> {
    if set.is_null() {
        return None;
    }
    let mut copy = *set;
    libc::sigdelset(&mut copy, reserved());
    Some(copy)
}

/// Remove the reserved signal from a mask the program receives.
///
/// # Safety
/// `set` is null or points to a writable sigset_t.
#[inline]
pub unsafe fn hide_reserved(set: *mut libc::sigset_t) {
    if !set.is_null() {
        libc::sigdelset(set, reserved());
    }
}

/// What the program asked `sigaction` for (decoded from its C struct).
#[derive(Clone, Copy, Debug, Default)]
pub struct Action {
    pub handler: u64,
    pub flags: u64,
    pub mask: u64,
    pub restorer: u64,
}

impl Action {
    /// Decode a C `struct sigaction`.
    pub fn from_raw(a: &libc::sigaction) -> Action {
        Action {
            handler: a.sa_sigaction as u64,
            flags: a.sa_flags as u64,
            mask: mask_of(&a.sa_mask),
            restorer: a.sa_restorer.map_or(0, |f| f as usize as u64),
        }
    }

    /// Whether this disposition runs a function (not SIG_DFL/SIG_IGN).
    pub fn is_handler(&self) -> bool {
        self.handler != libc::SIG_DFL as u64 && self.handler != libc::SIG_IGN as u64
    }
}

/// Record the program's new disposition for `sig`.
pub fn record(sig: c_int, a: &Action) {
    let Some(e) = TABLE.get(sig as usize) else {
        return;
    };
    e.handler.store(a.handler, Relaxed);
    e.flags.store(a.flags, Relaxed);
    e.mask.store(a.mask, Relaxed);
    e.restorer.store(a.restorer, Relaxed);
    e.recorded.store(1, Release);
}

/// The program's recorded disposition of `sig`, if any.
pub fn recorded(sig: c_int) -> Option<Action> {
    let e = TABLE.get(sig as usize)?;
    (e.recorded.load(Acquire) == 1).then(|| Action {
        handler: e.handler.load(Relaxed),
        flags: e.flags.load(Relaxed),
        mask: e.mask.load(Relaxed),
        restorer: e.restorer.load(Relaxed),
    })
}

/// Fill a C `struct sigaction` as the program should see it.
pub fn to_raw(a: &Action, out: &mut libc::sigaction) {
    out.sa_sigaction = a.handler as usize;
    out.sa_flags = a.flags as c_int;
    // SAFETY: writing the first word of a sigset_t the caller owns.
    unsafe {
        libc::sigemptyset(&mut out.sa_mask);
        (&mut out.sa_mask as *mut libc::sigset_t as *mut u64).write(a.mask);
    }
    // SAFETY: the restorer value came from a real sigaction of this process.
    out.sa_restorer = (a.restorer != 0)
        .then(|| unsafe { core::mem::transmute::<u64, extern "C" fn()>(a.restorer) });
}

/// The kernel-side action to install for the program's `a`: the same, with
/// the trampoline in place of a handler function, always SA_SIGINFO.
pub fn kernel_action(a: &libc::sigaction) -> libc::sigaction {
    let mut k = *a;
    if Action::from_raw(a).is_handler() {
        k.sa_sigaction = trampoline as *const () as usize;
        k.sa_flags |= libc::SA_SIGINFO;
    }
    k
}

/// Runs in place of every handler of the program. Signal context: no
/// allocation, no locks. Plain "C" (no landing pads under panic=abort) so
/// a forced unwind (thread cancellation from the handler) passes through.
pub extern "C" fn trampoline(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let Some(e) = TABLE.get(sig as usize) else {
        return;
    };
    let handler = e.handler.load(Relaxed);
    let flags = e.flags.load(Relaxed);
    if flags & libc::SA_RESETHAND as u64 != 0 {
        // The kernel already reset the disposition; mirror it.
        e.handler.store(libc::SIG_DFL as u64, Relaxed);
        e.flags.store(0, Relaxed);
    }
    if handler == libc::SIG_DFL as u64 || handler == libc::SIG_IGN as u64 {
        return;
    }
    let saved = crate::interpose::before_program_handler();
    // SAFETY: `handler` is the function the program installed for `sig`,
    // called with the arguments its SA_SIGINFO flag promises.
    unsafe {
        if flags & libc::SA_SIGINFO as u64 != 0 {
            let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                core::mem::transmute(handler);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(c_int) = core::mem::transmute(handler);
            f(sig);
        }
    }
    crate::interpose::after_program_handler(saved);
}

/// At start-up: adopt handlers installed before the shim (by other
/// libraries' constructors) so they go through the trampoline too.
///
/// `real_sigaction` is libc's sigaction (not the wrapper).
pub fn adopt_existing(real_sigaction: RealSigaction) {
    for sig in 1..NSIG as c_int {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == reserved() {
            continue;
        }
        // SAFETY: zeroed sigaction is a valid out-parameter.
        let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
        // SAFETY: querying only.
        if unsafe { real_sigaction(sig, core::ptr::null(), &mut old) } != 0 {
            continue;
        }
        let a = Action::from_raw(&old);
        if a.handler == libc::SIG_DFL as u64 {
            continue;
        }
        record(sig, &a);
        if a.is_handler() {
            let k = kernel_action(&old);
            // SAFETY: installing the trampoline with the program's own flags/mask.
            unsafe { real_sigaction(sig, &k, core::ptr::null_mut()) };
        }
    }
}

/// The program's dispositions, as it sees them, for every signal that is
/// not at its default. The kernel is asked too: a disposition changed
/// past the wrappers (raw syscall) wins over the record.
pub fn snapshot() -> Vec<SignalAction> {
    let mut out = Vec::new();
    for sig in 1..NSIG as c_int {
        if sig == reserved() || sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let Some(k) = crate::sys::kernel_sigaction(sig, None) else {
            continue;
        };
        let kernel = Action {
            handler: k[0],
            flags: k[1],
            restorer: k[2],
            mask: k[3],
        };
        let a = if kernel.handler == trampoline as *const () as u64 {
            match recorded(sig) {
                Some(mut a) => {
                    a.restorer = kernel.restorer;
                    a
                }
                None => kernel,
            }
        } else {
            kernel
        };
        let disposition = if a.handler == libc::SIG_DFL as u64 {
            continue;
        } else if a.handler == libc::SIG_IGN as u64 {
            "ignore"
        } else {
            "handler"
        };
        out.push(SignalAction {
            signo: sig,
            name: signal_name(sig),
            disposition: disposition.into(),
            handler: a.handler,
            flags: a.flags,
            mask: a.mask & !bit(reserved()),
            restorer: a.restorer,
        });
    }
    out
}

/// What the kernel has installed for every signal (our trampoline and
/// glibc's internal handlers included): restart puts back exactly this.
pub fn snapshot_kernel() -> Vec<KernelAction> {
    let mut out = Vec::new();
    for sig in 1..NSIG as c_int {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        if let Some(k) = crate::sys::kernel_sigaction(sig, None) {
            out.push(KernelAction {
                signo: sig,
                handler: k[0],
                flags: k[1],
                restorer: k[2],
                mask: k[3],
            });
        }
    }
    out
}

/// Install the recorded kernel actions again. Post-restart context.
pub fn restore(actions: &[KernelAction]) {
    for a in actions {
        // Handlers and restorers point into the restored image.
        crate::sys::kernel_sigaction(a.signo, Some(&[a.handler, a.flags, a.restorer, a.mask]));
    }
}

/// Read the process-wide queue of the signals in `pending`, with their
/// siginfo, by taking each out and putting it straight back (same order
/// per signal, which is all the kernel keeps). Coordinator, frozen: every
/// signal is blocked on this thread.
pub fn snapshot_queue(pending: u64) -> Vec<QueuedSignal> {
    let pid = crate::sys::getpid();
    let mut out = Vec::new();
    for sig in 1..NSIG as c_int {
        if pending & bit(sig) == 0 || sig == reserved() {
            continue;
        }
        let set = bit(sig);
        let first = out.len();
        loop {
            let mut info = [0u8; 128];
            if take_pending(set, &mut info) != sig as i64 {
                break;
            }
            out.push(QueuedSignal {
                signo: sig,
                info: info.to_vec(),
            });
        }
        for q in &out[first..] {
            requeue(pid, q);
        }
    }
    out
}

/// Take one pending signal of `set` (a 64-bit mask) without waiting, its
/// siginfo into `info`: the signal number, or a negative value when none
/// was pending. Signal-safe.
pub fn take_pending(set: u64, info: &mut [u8; 128]) -> i64 {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: rt_sigtimedwait with a zero timeout into a live siginfo.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &set as *const u64,
            info.as_mut_ptr(),
            &zero as *const libc::timespec,
            8,
        )
    }
}

/// Signals queued to one thread, taken out and put back by the thread
/// itself while it parks (only a thread can dequeue its own): a fixed pool,
/// no allocation (signal context).
const THREAD_QUEUE_MAX: usize = 512;
struct Slot {
    /// Logical thread id + 1 (0: free).
    owner: AtomicU32,
    signo: AtomicI32,
    info: core::cell::UnsafeCell<[u8; 128]>,
}
// SAFETY: `info` is written by the one thread that claimed the slot (by
// bumping THREAD_QUEUE_LEN) before it stores `owner` (Release); read only
// after `owner` is seen (Acquire) by the coordinator, all threads parked.
unsafe impl Sync for Slot {}
static THREAD_QUEUE: [Slot; THREAD_QUEUE_MAX] = [const {
    Slot {
        owner: AtomicU32::new(0),
        signo: AtomicI32::new(0),
        info: core::cell::UnsafeCell::new([0; 128]),
    }
}; THREAD_QUEUE_MAX];
static THREAD_QUEUE_LEN: AtomicUsize = AtomicUsize::new(0);
/// Set when a thread's queue did not fit the pool.
static THREAD_QUEUE_LOST: AtomicBool = AtomicBool::new(false);

/// Before a freeze: the pool is empty. Coordinator, frozen or not.
pub fn thread_queues_reset() {
    let n = THREAD_QUEUE_LEN.swap(0, AcqRel).min(THREAD_QUEUE_MAX);
    for s in &THREAD_QUEUE[..n] {
        s.owner.store(0, Relaxed);
    }
    THREAD_QUEUE_LOST.store(false, Relaxed);
}

/// The calling thread's own pending signals (not the process's), from
/// /proc (only when the kernel says anything is pending at all).
fn own_pending() -> u64 {
    let mut set = 0u64;
    // SAFETY: rt_sigpending into a local 8-byte set.
    unsafe { libc::syscall(libc::SYS_rt_sigpending, &mut set as *mut u64, 8) };
    if set & !bit(reserved()) == 0 {
        return 0;
    }
    let mut buf = [0u8; 4096];
    let n =
        crate::sys::read_small(libc::AT_FDCWD, c"/proc/thread-self/status", &mut buf).unwrap_or(0);
    crate::sys::field(&buf[..n], b"SigPnd:")
        .and_then(crate::sys::parse_hex)
        .unwrap_or(0)
        & !bit(reserved())
}

/// Record the calling thread's own queue of pending signals into the pool
/// under logical thread id `id`, putting each back at once, in order.
/// Freeze handler, on the thread itself: every signal is blocked, no
/// allocation, no locks.
pub fn save_own_queue(id: u32) {
    let mine = own_pending();
    if mine == 0 {
        return;
    }
    let (pid, tid) = (crate::sys::getpid(), crate::sys::gettid());
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut taken: [(c_int, [u8; 128]); 64] = [(0, [0; 128]); 64];
    for sig in 1..NSIG as c_int {
        if mine & bit(sig) == 0 {
            continue;
        }
        // Take this signal's instances while the thread's own queue holds
        // it (the kernel looks there first; the process's queue is never
        // reached).
        let mut n = 0;
        while n < taken.len() && own_pending() & bit(sig) != 0 {
            let set = bit(sig);
            // SAFETY: rt_sigtimedwait with a zero timeout into a local siginfo.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_rt_sigtimedwait,
                    &set as *const u64,
                    taken[n].1.as_mut_ptr(),
                    &zero as *const libc::timespec,
                    8,
                )
            };
            if r != sig as i64 {
                break;
            }
            taken[n].0 = sig;
            n += 1;
        }
        if n == taken.len() && own_pending() & bit(sig) != 0 {
            THREAD_QUEUE_LOST.store(true, Relaxed);
        }
        for (sig, info) in &taken[..n] {
            let i = THREAD_QUEUE_LEN.fetch_add(1, AcqRel);
            if let Some(s) = THREAD_QUEUE.get(i) {
                // SAFETY: slot i is ours alone (claimed by the bump above).
                unsafe { *s.info.get() = *info };
                s.signo.store(*sig, Relaxed);
                s.owner.store(id + 1, Release);
            } else {
                THREAD_QUEUE_LOST.store(true, Relaxed);
            }
            // SAFETY: rt_tgsigqueueinfo to this very thread (any si_code is
            // allowed to oneself) from a 128-byte siginfo.
            unsafe { libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid, tid, *sig, info.as_ptr()) };
        }
    }
}

/// Put the calling thread's saved queue back on itself, in order (any
/// siginfo may be given to oneself). Post-restart context, on each thread,
/// every signal blocked.
pub fn requeue_own(queued: &[QueuedSignal]) {
    let (pid, tid) = (crate::sys::getpid(), crate::sys::gettid());
    for q in queued.iter().filter(|q| q.info.len() == 128) {
        // SAFETY: rt_tgsigqueueinfo to this very thread from a 128-byte siginfo.
        unsafe {
            libc::syscall(
                libc::SYS_rt_tgsigqueueinfo,
                pid,
                tid,
                q.signo,
                q.info.as_ptr(),
            )
        };
    }
}

/// Whether some thread's queue could not be saved whole (the checkpoint
/// must then be refused).
pub fn thread_queue_lost() -> bool {
    THREAD_QUEUE_LOST.load(Acquire)
}

/// The saved queue of logical thread `id`, in order. Coordinator, frozen,
/// every thread parked.
pub fn thread_queue(id: u32) -> Vec<QueuedSignal> {
    let n = THREAD_QUEUE_LEN.load(Acquire).min(THREAD_QUEUE_MAX);
    THREAD_QUEUE[..n]
        .iter()
        .filter(|s| s.owner.load(Acquire) == id + 1)
        .map(|s| QueuedSignal {
            signo: s.signo.load(Relaxed),
            // SAFETY: owner seen: the slot's writer finished (Release).
            info: unsafe { (*s.info.get()).to_vec() },
        })
        .collect()
}

fn requeue(pid: i32, q: &QueuedSignal) {
    // SAFETY: rt_sigqueueinfo to our own process (allowed for any si_code)
    // from a 128-byte siginfo.
    unsafe { libc::syscall(libc::SYS_rt_sigqueueinfo, pid, q.signo, q.info.as_ptr()) };
}

/// Raise again the signals that were pending at the checkpoint: the
/// process queue (`queued`, with siginfo; `process` for any signal not in
/// it) and each thread's (logical id, mask, own queue: signals of the mask
/// without a saved queue are raised plainly). Every thread still blocks
/// everything, so they stay pending until it returns to the program with
/// its own mask. Post-restart context.
pub fn restore_pending(
    process: u64,
    queued: &[QueuedSignal],
    threads: &[(u32, u64, &[QueuedSignal])],
) {
    let pid = crate::sys::getpid();
    for q in queued.iter().filter(|q| q.info.len() == 128) {
        requeue(pid, q);
    }
    // (Each thread's own queue is put back by the thread itself, see
    // `requeue_own`: the kernel lets only a thread give itself a siginfo
    // that says tgkill or the kernel sent it.)
    for sig in 1..NSIG as c_int {
        if sig == reserved() {
            continue;
        }
        if process & bit(sig) != 0 && !queued.iter().any(|q| q.signo == sig) {
            // SAFETY: kill of our own process with a valid signal number.
            unsafe { libc::syscall(libc::SYS_kill, pid, sig) };
        }
        for &(id, mask, own) in threads {
            if mask & bit(sig) != 0 && !own.iter().any(|q| q.signo == sig) {
                if let Some(tid) = crate::threads::tid_of_id(id) {
                    let _ = crate::sys::tgkill(pid, tid, sig);
                }
            }
        }
    }
}

/// Forget recorded handlers that exec resets (handlers go back to default,
/// ignored signals stay ignored).
pub fn reset_after_exec() {
    for e in TABLE.iter() {
        if e.handler.load(Relaxed) != libc::SIG_IGN as u64 {
            e.recorded.store(0, Relaxed);
        }
    }
}
