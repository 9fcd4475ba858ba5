//! CPU time across a restart. The kernel lets nobody set a process's or a
//! thread's CPU time, and a restarted process counts from zero: without
//! this a program that subtracts a CPU time read before the checkpoint
//! from one read after gets a smaller, even negative, difference.
//!
//! - snapshot: each thread notes its own CPU time as it parks
//!   ([`note_thread`], in the freeze handler); the frozen process's
//!   totals go into the image ([`snapshot`]).
//! - restore: after a restart each thread keeps the difference between
//!   what it had and what the kernel now counts ([`restore_thread`], as it
//!   resumes), the process likewise ([`restore`], before any program code
//!   runs).
//! - The clock wrappers (the shim's `wrap/clocks.rs`) add those
//!   differences to what the kernel answers: `clock_gettime` of the
//!   CPU-time clocks (2, 3 and the ids `clock_getcpuclockid` and
//!   `pthread_getcpuclockid` give for this process and its threads),
//!   `clock`, `times`, `getrusage`, and they take them off absolute
//!   deadlines given on those clocks (`clock_nanosleep`, `timer_settime`).
//!
//! - RLIMIT_CPU is checked by the kernel against its own count: after a
//!   restart its limits are lowered by the seconds used before
//!   ([`CPU_LIMIT_SHIFT`]), so SIGXCPU and the hard limit's SIGKILL come
//!   when the program's CPU time reaches them; the rlimit wrappers show
//!   and take the program's values ([`cpu_limit_to_program`],
//!   [`cpu_limit_to_kernel`]), and a checkpoint saves those.
//!
//! Before a first restart every difference is zero and [`ACTIVE`] is
//! false: the wrappers return the kernel's answer untouched.
//!
//! Everything here runs on the program's threads, in wrappers and in the
//! freeze handler: atomics and raw system calls only, no allocation, no
//! lock, no panic.

use crate::image::{CpuTimes, ThreadCpu};
use crate::threads::MAX_THREADS;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

/// Some difference is not zero (the process was restarted).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// CLOCK_PROCESS_CPUTIME_ID: what the program saw minus the kernel's count.
static PROCESS_NS: AtomicI64 = AtomicI64::new(0);
/// getrusage(RUSAGE_SELF) and (RUSAGE_CHILDREN), field by field as in
/// [`CpuTimes::usage`]; for ru_maxrss (index 2) the value at the
/// checkpoint, kept as a floor (a maximum cannot be offset).
static SELF_USAGE: [AtomicI64; 16] = [const { AtomicI64::new(0) }; 16];
static CHILD_USAGE: [AtomicI64; 16] = [const { AtomicI64::new(0) }; 16];
/// times(): as in [`CpuTimes::tms`].
static TMS: [AtomicI64; 5] = [const { AtomicI64::new(0) }; 5];

/// Whole seconds of CPU time the program had used when it was restarted
/// (rounded to the nearest): the kernel's RLIMIT_CPU values are lower by
/// this much than the program's.
static CPU_LIMIT_SHIFT: AtomicU64 = AtomicU64::new(0);

/// One thread's CPU time at its last park (what the program saw) and,
/// after a restart, its differences. Indexed like the thread table.
struct Thread {
    saved_ns: AtomicI64,
    saved_user_us: AtomicI64,
    saved_system_us: AtomicI64,
    /// 0: nothing noted since the slot was taken.
    noted: AtomicBool,
    ns: AtomicI64,
    user_us: AtomicI64,
    system_us: AtomicI64,
}

#[allow(clippy::declare_interior_mutable_const)]
const THREAD: Thread = Thread {
    saved_ns: AtomicI64::new(0),
    saved_user_us: AtomicI64::new(0),
    saved_system_us: AtomicI64::new(0),
    noted: AtomicBool::new(false),
    ns: AtomicI64::new(0),
    user_us: AtomicI64::new(0),
    system_us: AtomicI64::new(0),
};

static THREADS: [Thread; MAX_THREADS] = [THREAD; MAX_THREADS];

const RUSAGE_THREAD: i32 = 1;
/// Index of ru_maxrss in the usage arrays.
const MAXRSS: usize = 2;

/// Whether `clock` counts CPU time of this process or one of its threads
/// (the ids the wrappers look at; the others pass straight through).
#[inline(always)]
pub fn is_cpu_clock(clock: i32) -> bool {
    clock == libc::CLOCK_PROCESS_CPUTIME_ID || clock == libc::CLOCK_THREAD_CPUTIME_ID || clock < 0
}

/// A process was restarted: the wrappers have something to add.
#[inline(always)]
pub fn active() -> bool {
    ACTIVE.load(Relaxed)
}

/// The kernel's count (a raw system call: `libc::clock_gettime` would go
/// through ckpt's own wrapper and add the differences again).
fn raw_clock(clock: i32) -> Option<i64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a local.
    let r = unsafe { libc::syscall(libc::SYS_clock_gettime, clock, &mut ts) };
    (r == 0).then(|| ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
}

fn raw_usage(who: i32) -> [i64; 16] {
    // SAFETY: rusage is plain integers; all zero is a valid value.
    let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into a local.
    unsafe { libc::syscall(libc::SYS_getrusage, who, &mut ru) };
    usage_fields(&ru)
}

fn usage_fields(ru: &libc::rusage) -> [i64; 16] {
    [
        ru.ru_utime.tv_sec * 1_000_000 + ru.ru_utime.tv_usec,
        ru.ru_stime.tv_sec * 1_000_000 + ru.ru_stime.tv_usec,
        ru.ru_maxrss,
        ru.ru_ixrss,
        ru.ru_idrss,
        ru.ru_isrss,
        ru.ru_minflt,
        ru.ru_majflt,
        ru.ru_nswap,
        ru.ru_inblock,
        ru.ru_oublock,
        ru.ru_msgsnd,
        ru.ru_msgrcv,
        ru.ru_nsignals,
        ru.ru_nvcsw,
        ru.ru_nivcsw,
    ]
}

fn set_usage_fields(ru: &mut libc::rusage, v: &[i64; 16]) {
    ru.ru_utime = timeval(v[0]);
    ru.ru_stime = timeval(v[1]);
    ru.ru_maxrss = v[2];
    ru.ru_ixrss = v[3];
    ru.ru_idrss = v[4];
    ru.ru_isrss = v[5];
    ru.ru_minflt = v[6];
    ru.ru_majflt = v[7];
    ru.ru_nswap = v[8];
    ru.ru_inblock = v[9];
    ru.ru_oublock = v[10];
    ru.ru_msgsnd = v[11];
    ru.ru_msgrcv = v[12];
    ru.ru_nsignals = v[13];
    ru.ru_nvcsw = v[14];
    ru.ru_nivcsw = v[15];
}

fn timeval(us: i64) -> libc::timeval {
    let us = us.max(0);
    libc::timeval {
        tv_sec: us / 1_000_000,
        tv_usec: us % 1_000_000,
    }
}

fn raw_times() -> [i64; 5] {
    let mut t = libc::tms {
        tms_utime: 0,
        tms_stime: 0,
        tms_cutime: 0,
        tms_cstime: 0,
    };
    // SAFETY: times writes one tms into a local.
    let ret = unsafe { libc::syscall(libc::SYS_times, &mut t) };
    [t.tms_utime, t.tms_stime, t.tms_cutime, t.tms_cstime, ret]
}

/// `raw` as the program sees it, given the differences `off` (maxrss
/// floored rather than offset).
fn seen_usage(raw: [i64; 16], off: &[AtomicI64; 16]) -> [i64; 16] {
    let mut v = raw;
    if active() {
        for (i, x) in v.iter_mut().enumerate() {
            let o = off[i].load(Relaxed);
            *x = if i == MAXRSS {
                (*x).max(o)
            } else {
                x.saturating_add(o)
            };
        }
    }
    v
}

fn keep_usage(saved: &[i64; 16], now: &[i64; 16], off: &[AtomicI64; 16]) {
    for i in 0..16 {
        off[i].store(
            if i == MAXRSS {
                saved[i]
            } else {
                saved[i] - now[i]
            },
            Relaxed,
        );
    }
}

// ---- snapshot -------------------------------------------------------

/// The calling thread parks for a checkpoint: note its CPU time as the
/// program sees it. Signal-safe (freeze handler).
pub fn note_thread(slot: usize) {
    let Some(t) = THREADS.get(slot) else { return };
    let ns = raw_clock(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or(0);
    let u = raw_usage(RUSAGE_THREAD);
    let on = active();
    let add = |raw: i64, off: &AtomicI64| if on { raw + off.load(Relaxed) } else { raw };
    t.saved_ns.store(add(ns, &t.ns), Relaxed);
    t.saved_user_us.store(add(u[0], &t.user_us), Relaxed);
    t.saved_system_us.store(add(u[1], &t.system_us), Relaxed);
    t.noted.store(true, Relaxed);
}

/// What the thread in `slot` noted at its last park.
pub fn thread_snapshot(slot: usize) -> Option<ThreadCpu> {
    let t = THREADS.get(slot)?;
    t.noted.load(Relaxed).then(|| ThreadCpu {
        ns: t.saved_ns.load(Relaxed).max(0) as u64,
        user_us: t.saved_user_us.load(Relaxed),
        system_us: t.saved_system_us.load(Relaxed),
    })
}

/// The thread table gave `slot` to a new thread: nothing of the thread
/// that had it before applies. Signal-safe.
pub fn forget_thread(slot: usize) {
    if let Some(t) = THREADS.get(slot) {
        t.noted.store(false, Relaxed);
        t.ns.store(0, Relaxed);
        t.user_us.store(0, Relaxed);
        t.system_us.store(0, Relaxed);
    }
}

/// The process's CPU time, while it is frozen.
pub fn snapshot() -> CpuTimes {
    let raw = raw_times();
    let mut tms = raw;
    if active() {
        for (x, o) in tms.iter_mut().zip(TMS.iter()) {
            *x += o.load(Relaxed);
        }
    }
    CpuTimes {
        process_ns: process_ns().unwrap_or(0).max(0) as u64,
        usage: seen_usage(raw_usage(libc::RUSAGE_SELF), &SELF_USAGE),
        children: seen_usage(raw_usage(libc::RUSAGE_CHILDREN), &CHILD_USAGE),
        tms,
    }
}

// ---- restore --------------------------------------------------------

/// After a restart, before the program's threads run: the process goes
/// on from the CPU time it had. Post-restart context.
pub fn restore(saved: &CpuTimes) {
    if let Some(now) = raw_clock(libc::CLOCK_PROCESS_CPUTIME_ID) {
        PROCESS_NS.store(saved.process_ns as i64 - now, Relaxed);
    }
    keep_usage(&saved.usage, &raw_usage(libc::RUSAGE_SELF), &SELF_USAGE);
    keep_usage(
        &saved.children,
        &raw_usage(libc::RUSAGE_CHILDREN),
        &CHILD_USAGE,
    );
    let now = raw_times();
    for i in 0..5 {
        TMS[i].store(saved.tms[i] - now[i], Relaxed);
    }
    ACTIVE.store(true, Relaxed);
    // The limits (set to the program's values by then) count from now.
    let shift = (PROCESS_NS.load(Relaxed).max(0) as u64 + 500_000_000) / 1_000_000_000;
    let mut l = raw_cpu_limit(None);
    CPU_LIMIT_SHIFT.store(shift, Relaxed);
    l.rlim_cur = cpu_limit_to_kernel(l.rlim_cur);
    l.rlim_max = cpu_limit_to_kernel(l.rlim_max);
    raw_cpu_limit(Some(&l));
}

/// RLIMIT_CPU as the kernel has it; set to `new` first when given.
fn raw_cpu_limit(new: Option<&libc::rlimit>) -> libc::rlimit {
    let mut old = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    let new = new.map_or(core::ptr::null(), |n| n as *const libc::rlimit);
    // SAFETY: prlimit64 of our own process, from a live rlimit or none,
    // into a local.
    unsafe { libc::syscall(libc::SYS_prlimit64, 0, libc::RLIMIT_CPU, new, &mut old) };
    old
}

/// The kernel's RLIMIT_CPU value for the program's `v` (at least one
/// second: the kernel takes zero for one too). Signal-safe.
#[inline]
pub fn cpu_limit_to_kernel(v: u64) -> u64 {
    let shift = CPU_LIMIT_SHIFT.load(Relaxed);
    if v == libc::RLIM_INFINITY || shift == 0 {
        return v;
    }
    v.saturating_sub(shift).max(1)
}

/// The program's RLIMIT_CPU value for the kernel's `v`. Signal-safe.
#[inline]
pub fn cpu_limit_to_program(v: u64) -> u64 {
    let shift = CPU_LIMIT_SHIFT.load(Relaxed);
    if v == libc::RLIM_INFINITY || shift == 0 {
        return v;
    }
    v.saturating_add(shift)
}

/// The program's RLIMIT_CPU seen through `rlim` (a getrlimit's answer).
///
/// # Safety
/// `rlim` is null or points to a writable rlimit.
pub unsafe fn cpu_limit_shown(resource: i32, rlim: *mut libc::rlimit) {
    if resource != libc::RLIMIT_CPU as i32 || rlim.is_null() || CPU_LIMIT_SHIFT.load(Relaxed) == 0 {
        return;
    }
    // SAFETY: the caller's contract.
    let l = unsafe { &mut *rlim };
    l.rlim_cur = cpu_limit_to_program(l.rlim_cur);
    l.rlim_max = cpu_limit_to_program(l.rlim_max);
}

/// What to give the kernel for the program's setrlimit of `resource` to
/// `rlim`: a lowered copy in `copy` for RLIMIT_CPU after a restart,
/// else `rlim` itself.
///
/// # Safety
/// `rlim` is null or points to a readable rlimit.
pub unsafe fn cpu_limit_taken(
    resource: i32,
    rlim: *const libc::rlimit,
    copy: &mut libc::rlimit,
) -> *const libc::rlimit {
    if resource != libc::RLIMIT_CPU as i32 || rlim.is_null() || CPU_LIMIT_SHIFT.load(Relaxed) == 0 {
        return rlim;
    }
    // SAFETY: the caller's contract.
    let l = unsafe { &*rlim };
    copy.rlim_cur = cpu_limit_to_kernel(l.rlim_cur);
    copy.rlim_max = cpu_limit_to_kernel(l.rlim_max);
    copy
}

/// The calling thread (in `slot`) resumes after a restart: it goes on
/// from the CPU time it had at its park (`saved`; None: from zero).
/// Post-restart context.
pub fn restore_thread(slot: usize, saved: Option<&ThreadCpu>) {
    let Some(t) = THREADS.get(slot) else { return };
    let Some(saved) = saved else {
        forget_thread(slot);
        return;
    };
    let ns = raw_clock(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or(0);
    let u = raw_usage(RUSAGE_THREAD);
    t.ns.store(saved.ns as i64 - ns, Relaxed);
    t.user_us.store(saved.user_us - u[0], Relaxed);
    t.system_us.store(saved.system_us - u[1], Relaxed);
}

/// In a fork child: the kernel counts its CPU time from zero, and that is
/// what it should see. Signal-safe.
pub fn reset_after_fork() {
    if !ACTIVE.swap(false, Relaxed) {
        return;
    }
    // Its own CPU time counts from zero: its limits are the program's
    // again, when the kernel lets a hard limit rise (else it keeps the
    // lowered ones, and the shift that shows them as the program's).
    if CPU_LIMIT_SHIFT.load(Relaxed) != 0 {
        let k = raw_cpu_limit(None);
        let want = libc::rlimit {
            rlim_cur: cpu_limit_to_program(k.rlim_cur),
            rlim_max: cpu_limit_to_program(k.rlim_max),
        };
        // SAFETY: prlimit64 of our own process from a local.
        let r = unsafe {
            libc::syscall(
                libc::SYS_prlimit64,
                0,
                libc::RLIMIT_CPU,
                &want as *const libc::rlimit,
                core::ptr::null_mut::<libc::rlimit>(),
            )
        };
        if r == 0 {
            CPU_LIMIT_SHIFT.store(0, Relaxed);
        }
    }
    PROCESS_NS.store(0, Relaxed);
    for a in SELF_USAGE
        .iter()
        .chain(CHILD_USAGE.iter())
        .chain(TMS.iter())
    {
        a.store(0, Relaxed);
    }
    for slot in 0..MAX_THREADS {
        forget_thread(slot);
    }
}

// ---- what the wrappers add ------------------------------------------

/// Which count a CPU-time clock id reads, and what to add to it.
fn clock_offset(clock: i32) -> i64 {
    // Kernel encoding of the ids (include/linux/posix-timers.h): pid in
    // ~(id >> 3), bit 2 = one thread, bits 0-1 = PROF, VIRT or SCHED.
    let (pid, per_thread, which) = match clock {
        libc::CLOCK_PROCESS_CPUTIME_ID => (0, false, 2),
        libc::CLOCK_THREAD_CPUTIME_ID => (0, true, 2),
        // 3 in the low bits: a clock behind a descriptor (CLOCKFD).
        c if c < 0 && c & 3 != 3 => (!(c >> 3), c & 4 != 0, c & 3),
        _ => return 0,
    };
    if per_thread {
        let slot = if pid == 0 {
            crate::threads::self_slot()
        } else {
            crate::threads::slot_of(pid)
        };
        let Some(t) = slot.and_then(|i| THREADS.get(i)) else {
            return 0;
        };
        let (user, system) = (t.user_us.load(Relaxed), t.system_us.load(Relaxed));
        return match which {
            2 => t.ns.load(Relaxed),
            1 => user * 1000,
            _ => (user + system) * 1000,
        };
    }
    if pid != 0 && pid != crate::sys::getpid() {
        return 0;
    }
    let (user, system) = (SELF_USAGE[0].load(Relaxed), SELF_USAGE[1].load(Relaxed));
    match which {
        2 => PROCESS_NS.load(Relaxed),
        1 => user * 1000,
        _ => (user + system) * 1000,
    }
}

/// `clock_gettime(clock)` answered `ts`: make it what the program saw
/// before its restart plus what it used since.
pub fn adjust_timespec(clock: i32, ts: &mut libc::timespec) {
    if !active() {
        return;
    }
    let off = clock_offset(clock);
    if off != 0 {
        let ns = (ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
            .saturating_add(off)
            .max(0);
        ts.tv_sec = ns / 1_000_000_000;
        ts.tv_nsec = ns % 1_000_000_000;
    }
}

/// An absolute deadline `ts` on CPU-time clock `clock`, as the kernel
/// counts it (the program's value less what was added).
pub fn kernel_deadline(clock: i32, ts: &libc::timespec) -> libc::timespec {
    let off = if active() { clock_offset(clock) } else { 0 };
    let ns = (ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
        .saturating_sub(off)
        .max(1);
    libc::timespec {
        tv_sec: ns / 1_000_000_000,
        tv_nsec: ns % 1_000_000_000,
    }
}

/// The process's CPU time as the program sees it, nanoseconds.
pub fn process_ns() -> Option<i64> {
    let raw = raw_clock(libc::CLOCK_PROCESS_CPUTIME_ID)?;
    Some(if active() {
        raw + PROCESS_NS.load(Relaxed)
    } else {
        raw
    })
}

/// `getrusage(who)` answered `ru`: add what was used before the restart.
pub fn adjust_rusage(who: i32, ru: &mut libc::rusage) {
    if !active() {
        return;
    }
    match who {
        libc::RUSAGE_SELF => set_usage_fields(ru, &seen_usage(usage_fields(ru), &SELF_USAGE)),
        libc::RUSAGE_CHILDREN => set_usage_fields(ru, &seen_usage(usage_fields(ru), &CHILD_USAGE)),
        RUSAGE_THREAD => {
            let Some(t) = crate::threads::self_slot().and_then(|i| THREADS.get(i)) else {
                return;
            };
            let mut v = usage_fields(ru);
            v[0] += t.user_us.load(Relaxed);
            v[1] += t.system_us.load(Relaxed);
            set_usage_fields(ru, &v);
        }
        _ => {}
    }
}

/// `times()` returned `ret` and filled `buf` (may be null): add what was
/// counted before the restart. Returns the value to give the program.
pub fn adjust_times(ret: i64, buf: Option<&mut libc::tms>) -> i64 {
    if !active() || ret == -1 {
        return ret;
    }
    if let Some(b) = buf {
        b.tms_utime += TMS[0].load(Relaxed);
        b.tms_stime += TMS[1].load(Relaxed);
        b.tms_cutime += TMS[2].load(Relaxed);
        b.tms_cstime += TMS[3].load(Relaxed);
    }
    ret + TMS[4].load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_fields_round_trip() {
        // SAFETY: plain integers.
        let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
        let v: [i64; 16] = core::array::from_fn(|i| 1_000_003 * (i as i64 + 1));
        set_usage_fields(&mut ru, &v);
        assert_eq!(usage_fields(&ru), v);
    }

    #[test]
    fn cpu_clock_ids_are_told_apart() {
        assert!(is_cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID));
        assert!(is_cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID));
        let mut id: libc::clockid_t = 0;
        // SAFETY: writes one clockid into a local.
        assert_eq!(unsafe { libc::clock_getcpuclockid(0, &mut id) }, 0);
        assert!(is_cpu_clock(id) || id == libc::CLOCK_PROCESS_CPUTIME_ID);
        for c in [
            libc::CLOCK_REALTIME,
            libc::CLOCK_MONOTONIC,
            libc::CLOCK_BOOTTIME,
            libc::CLOCK_MONOTONIC_COARSE,
        ] {
            assert!(!is_cpu_clock(c));
        }
    }
}
