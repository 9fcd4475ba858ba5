//! POSIX timers: recorded into `ckpt::timers` (the kernel reports their
//! remaining time and interval at checkpoint).

use ckpt::timers::{self as rec, Sigevent};
use ckpt_macros::interpose;
use libc::{c_int, clockid_t, sigevent, timer_t};

/// SIGEV_THREAD timers are run by ckpt (see `timer_threads`); the others
/// go to glibc and are recorded.
#[interpose(around)]
unsafe fn timer_create(clock: clockid_t, sev: *mut sigevent, timerid: *mut timer_t) -> c_int {
    if !sev.is_null() && (*sev).sigev_notify == libc::SIGEV_THREAD {
        return crate::timer_threads::create(clock, sev, timerid, &guard);
    }
    let r = real(clock, sev, timerid);
    if r == 0 {
        guard.record(|| rec::record_create(*timerid as u64, clock, &Sigevent::from_raw(sev)));
    }
    r
}

#[interpose]
unsafe fn timer_delete(timerid: timer_t) -> c_int {
    if ret == 0 {
        crate::timer_threads::deleted(timerid as u64);
        rec::record_delete(timerid as u64);
    }
}
