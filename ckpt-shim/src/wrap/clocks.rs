//! CPU-time clocks go on across a restart (see `ckpt::cputime`): what the
//! kernel answers for this process's and its threads' CPU time is given
//! back with the time used before the restart added, and absolute
//! deadlines on those clocks lose it again before they reach the kernel.
//! Before a first restart nothing is added.
//!
//! A thread can be parked, and the process restarted, between the kernel's
//! answer and the addition: each wrapper reads again when that happened
//! (`between_freezes`), or the old reading would get the new difference.
//!
//! `clock_gettime` is on many programs' hottest path: only CPU-time clock
//! ids reach the wrapper's body (a compare and a tail jump for the
//! others). `clock()` is wrapped because glibc's calls its own
//! clock_gettime directly.

use ckpt::cputime::{self, adjust_rusage, adjust_times, adjust_timespec, is_cpu_clock};
use ckpt::interpose::between_freezes;
use ckpt_macros::interpose;
use libc::{c_int, clock_t, clockid_t, itimerspec, rusage, timer_t, timespec, tms};

#[interpose(around, when = is_cpu_clock(clock))]
unsafe fn clock_gettime(clock: clockid_t, ts: *mut timespec) -> c_int {
    between_freezes(|| {
        let r = real(clock, ts);
        if r == 0 && !ts.is_null() {
            adjust_timespec(clock, &mut *ts);
        }
        r
    })
}

#[interpose(around)]
unsafe fn clock() -> clock_t {
    if !cputime::active() {
        return real();
    }
    // As glibc's: the process's CPU time in microseconds (CLOCKS_PER_SEC).
    match between_freezes(cputime::process_ns) {
        Some(ns) => ns / 1000,
        None => -1,
    }
}

#[interpose(around)]
unsafe fn getrusage(who: c_int, usage: *mut rusage) -> c_int {
    between_freezes(|| {
        let r = real(who, usage);
        if r == 0 && !usage.is_null() {
            adjust_rusage(who, &mut *usage);
        }
        r
    })
}

#[interpose(around)]
unsafe fn times(buf: *mut tms) -> clock_t {
    between_freezes(|| adjust_times(real(buf), buf.as_mut()))
}

/// An absolute expiry on a CPU-time clock timer is given in the program's
/// count; the kernel needs its own.
#[interpose(around, when = flags & libc::TIMER_ABSTIME != 0)]
unsafe fn timer_settime(
    timer: timer_t,
    flags: c_int,
    new: *const itimerspec,
    old: *mut itimerspec,
) -> c_int {
    let clock = ckpt::timers::clock_of(timer as u64);
    match clock {
        Some(c) if is_cpu_clock(c) && !new.is_null() => between_freezes(|| {
            let mut v = *new;
            if cputime::active() && (v.it_value.tv_sec != 0 || v.it_value.tv_nsec != 0) {
                v.it_value = cputime::kernel_deadline(c, &v.it_value);
            }
            real(timer, flags, &v, old)
        }),
        _ => {
            let r = real(timer, flags, new, old);
            if r == 0 && !new.is_null() {
                ckpt::timers::record_absolute(timer as u64, &(*new).it_value);
            }
            r
        }
    }
}
