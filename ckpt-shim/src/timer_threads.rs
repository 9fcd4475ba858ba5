//! SIGEV_THREAD timers, done by ckpt instead of glibc.
//!
//! glibc runs SIGEV_THREAD timers through a helper thread that blocks
//! every signal, so a checkpoint can never stop it, and the `timer_t` it
//! hands out points into its private record. Here the timer is a plain
//! kernel timer aimed (SIGEV_THREAD_ID) at a helper thread of ours that
//! stops for checkpoints like any other; the program's `timer_t` is the
//! kernel id, which glibc's timer_settime/gettime/delete accept as is.
//! On each expiry the helper starts a detached thread running the
//! program's function, as glibc would. A restart re-creates the kernel
//! timer (same id) aimed at the restored helper.

use ckpt::timers::{self as rec, Sigevent};
use ckpt::{interpose, signals, sys, threads};
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU8, Ordering::*};

/// The signal the helper waits for (glibc's own SIGTIMER, which programs
/// cannot use: SIGRTMIN is 34 for them).
const SIGTIMER: i32 = 32;
/// SIGEV_THREAD timers alive at once.
const MAX: usize = 256;
/// Marks our sigev values (the low bits are the record index).
const VALUE_MAGIC: u64 = 0x636b_7074_0000_0000;

struct Record {
    used: AtomicU8,
    function: UnsafeCell<u64>,
    value: UnsafeCell<u64>,
    has_attr: UnsafeCell<bool>,
    attr: UnsafeCell<libc::pthread_attr_t>,
}

// SAFETY: a record's cells are written by the creating thread before
// `used` becomes 1 (Release) and only read by the helper after it sees 1
// (Acquire); deletion only flips `used` back.
unsafe impl Sync for Record {}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Record = Record {
    used: AtomicU8::new(0),
    function: UnsafeCell::new(0),
    value: UnsafeCell::new(0),
    has_attr: UnsafeCell::new(false),
    // SAFETY: an all-zero pthread_attr_t is a valid byte pattern; it is
    // only used after being overwritten with the program's attributes.
    attr: UnsafeCell::new(unsafe { core::mem::zeroed() }),
};

static RECORDS: [Record; MAX] = [EMPTY; MAX];
/// 0 not started, 1 starting, 2 running.
static HELPER_STATE: AtomicU32 = AtomicU32::new(0);
static HELPER_TID: AtomicI32 = AtomicI32::new(0);

/// timer_create(clock, sev with SIGEV_THREAD, timerid).
///
/// # Safety
/// `sev` points to a valid sigevent with SIGEV_THREAD; `timerid` is writable.
pub unsafe fn create(
    clock: libc::clockid_t,
    sev: *const libc::sigevent,
    timerid: *mut libc::timer_t,
    guard: &interpose::Guard,
) -> i32 {
    let ev = Sigevent::from_raw(sev);
    let Some(tid) = helper_tid() else {
        interpose::set_errno(libc::EAGAIN);
        return -1;
    };
    let Some(idx) = RECORDS
        .iter()
        .position(|r| r.used.compare_exchange(0, 2, Acquire, Relaxed).is_ok())
    else {
        interpose::set_errno(libc::EAGAIN);
        return -1;
    };
    let r = &RECORDS[idx];
    *r.function.get() = ev.function;
    *r.value.get() = ev.value;
    // glibc's union: sigev_notify_function at 16, sigev_notify_attributes at 24.
    let attr = ((sev as *const u8).add(24) as *const *const libc::pthread_attr_t).read();
    *r.has_attr.get() = !attr.is_null();
    if !attr.is_null() {
        core::ptr::copy_nonoverlapping(attr, r.attr.get(), 1);
    }
    r.used.store(1, Release);
    let value = VALUE_MAGIC | idx as u64;
    let mut kev = [0u8; 64];
    kev[0..8].copy_from_slice(&value.to_ne_bytes());
    kev[8..12].copy_from_slice(&SIGTIMER.to_ne_bytes());
    kev[12..16].copy_from_slice(&libc::SIGEV_THREAD_ID.to_ne_bytes());
    kev[16..20].copy_from_slice(&tid.to_ne_bytes());
    let mut kid: i32 = 0;
    if libc::syscall(libc::SYS_timer_create, clock, kev.as_ptr(), &mut kid) < 0 {
        let e = interpose::errno();
        r.used.store(0, Release);
        interpose::set_errno(e);
        return -1;
    }
    *timerid = kid as usize as libc::timer_t;
    let recorded = Sigevent {
        notify: libc::SIGEV_THREAD,
        signo: SIGTIMER,
        value: ev.value,
        tid,
        function: ev.function,
        kernel_value: value,
    };
    guard.record(|| rec::record_create(kid as u64, clock, &recorded));
    0
}

/// timer_delete succeeded on a timer of ours: free its record.
pub fn deleted(timer_id: u64) {
    if let Some(t) = rec::find(timer_id) {
        if t.notify == libc::SIGEV_THREAD && t.kernel_value & !0xffff_ffff == VALUE_MAGIC {
            if let Some(r) = RECORDS.get((t.kernel_value & 0xffff_ffff) as usize) {
                r.used.store(0, Release);
            }
        }
    }
}

/// In a fork child: no helper, no timers (fork does not inherit them).
pub fn reset_after_fork() {
    for r in RECORDS.iter() {
        r.used.store(0, Relaxed);
    }
    HELPER_STATE.store(0, Relaxed);
}

/// The helper's tid, starting it on first use.
fn helper_tid() -> Option<i32> {
    crate::own_thread::start_once(&HELPER_STATE, helper).then(|| HELPER_TID.load(Acquire))
}

extern "C" fn helper(_: *mut c_void) -> *mut c_void {
    // Everything blocked but the checkpoint signal and glibc's SIGSETXID
    // (setuid() in a threaded program waits for every thread to take it),
    // as glibc's own helper: program signals go to the program's threads,
    // and SIGTIMER is taken with sigtimedwait.
    let mask = !(signals::bit(signals::reserved()) | signals::bit(33));
    sys::sigprocmask(libc::SIG_SETMASK, mask);
    // Registered now, so timers can name its logical id.
    let _ = threads::record_timer_helper();
    HELPER_TID.store(sys::gettid(), Release);
    crate::own_thread::running(&HELPER_STATE);
    let wait_set = signals::bit(SIGTIMER);
    loop {
        let mut info = [0u8; 128];
        // SAFETY: rt_sigtimedwait for SIGTIMER into a local siginfo.
        let sig = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &wait_set as *const u64,
                info.as_mut_ptr(),
                core::ptr::null::<libc::timespec>(),
                8,
            )
        };
        // siginfo: si_code at 8, si_value at 24 (SI_TIMER layout).
        let code = i32::from_ne_bytes(info[8..12].try_into().unwrap_or_default());
        let value = u64::from_ne_bytes(info[24..32].try_into().unwrap_or_default());
        if sig == SIGTIMER as i64 && code == libc::SI_TIMER && value & !0xffff_ffff == VALUE_MAGIC {
            fire((value & 0xffff_ffff) as usize);
        }
    }
}

struct Start {
    function: u64,
    value: u64,
}

/// One expiry: run the program's function in a new detached thread.
fn fire(idx: usize) {
    let Some(r) = RECORDS.get(idx).filter(|r| r.used.load(Acquire) == 1) else {
        return;
    };
    // SAFETY: the record is in use; its cells were written before `used`.
    let (function, value, attr) = unsafe {
        let attr = if *r.has_attr.get() {
            *r.attr.get()
        } else {
            let mut a: libc::pthread_attr_t = core::mem::zeroed();
            libc::pthread_attr_init(&mut a);
            a
        };
        (*r.function.get(), *r.value.get(), attr)
    };
    let mut attr = attr;
    // SAFETY: a copy of the program's attributes (or fresh ones).
    unsafe { libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED) };
    let start = Box::into_raw(Box::new(Start { function, value }));
    let mut th: libc::pthread_t = 0;
    // SAFETY: `run` takes ownership of `start`.
    let rc = unsafe { libc::pthread_create(&mut th, &attr, run, start.cast()) };
    if rc != 0 {
        // SAFETY: the thread was not created; we still own `start`.
        drop(unsafe { Box::from_raw(start) });
    }
}

extern "C" fn run(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the Box made by `fire`.
    let s = unsafe { Box::from_raw(arg as *mut Start) };
    // SAFETY: the program's sigev_notify_function, called with its value.
    let f: extern "C" fn(libc::sigval) = unsafe { core::mem::transmute(s.function as usize) };
    f(libc::sigval {
        sival_ptr: s.value as *mut c_void,
    });
    core::ptr::null_mut()
}
