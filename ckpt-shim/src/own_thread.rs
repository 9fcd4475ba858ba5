//! Threads the shim starts in the program (the SIGEV_THREAD timer helper,
//! the hook thread): each is started once, on first need, by whichever
//! thread needs it first; the others wait until it runs.

use ckpt::sys;
use core::ffi::c_void;
use core::sync::atomic::{AtomicU32, Ordering::*};

/// Start `f` as a detached thread unless `state` says it runs already.
/// `state`: 0 not started, 1 starting, 2 running (`f` stores 2, and wakes
/// the futex, once it is ready). Returns whether the thread runs.
pub fn start_once(state: &AtomicU32, f: extern "C" fn(*mut c_void) -> *mut c_void) -> bool {
    loop {
        match state.compare_exchange(0, 1, AcqRel, Acquire) {
            Ok(_) => {
                let mut th: libc::pthread_t = 0;
                // SAFETY: a thread with default attributes running `f`.
                let r = unsafe {
                    libc::pthread_create(&mut th, core::ptr::null(), f, core::ptr::null_mut())
                };
                if r != 0 {
                    state.store(0, Release);
                    return false;
                }
                // SAFETY: our threads are never joined.
                unsafe { libc::pthread_detach(th) };
            }
            Err(2) => return true,
            Err(_) => sys::futex_wait(state, 1, 1_000_000),
        }
    }
}

/// In `f`, once ready: mark the thread running and wake who waits.
pub fn running(state: &AtomicU32) {
    state.store(2, Release);
    sys::futex_wake_all(state);
}
