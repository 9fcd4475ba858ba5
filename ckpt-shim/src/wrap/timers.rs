//! POSIX timers: recorded into `ckpt::timers` (the kernel reports their
//! remaining time and interval at checkpoint).

use ckpt::timers::{self as rec, Sigevent};
use ckpt_macros::interpose;
use libc::{c_int, clockid_t, sigevent, timer_t};

#[interpose]
unsafe fn timer_create(clock: clockid_t, sev: *mut sigevent, timerid: *mut timer_t) -> c_int {
    if ret == 0 {
        rec::record_create(*timerid as u64, clock, &Sigevent::from_raw(sev));
    }
}

#[interpose]
unsafe fn timer_delete(timerid: timer_t) -> c_int {
    if ret == 0 {
        rec::record_delete(timerid as u64);
    }
}
