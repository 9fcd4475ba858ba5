// A symbol version other than the default one.
use libc::{c_int, clockid_t, sigevent, timer_t};

#[interpose(version = "GLIBC_2.3.3")]
unsafe fn timer_create(clock: clockid_t, event: *mut sigevent, timer: *mut timer_t) -> c_int {
    crate::timers::record_create(ret, clock, event, timer);
}
