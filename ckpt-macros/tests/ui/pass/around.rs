// Around form: `guard` and `real` are bound; the body's value is returned.
#![deny(warnings, unsafe_op_in_unsafe_fn)]

use ckpt::interpose::set_errno;
use ckpt_macros::interpose;
use libc::{c_int, c_uint, sigset_t};

#[interpose(around)]
unsafe fn sigprocmask(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int {
    if how > 2 {
        set_errno(libc::EINVAL);
        return -1;
    }
    let r = real(how, set, old);
    guard.record(|| r == 0);
    r
}

/// Neither `guard` nor `real` used: no warning.
#[interpose(around)]
unsafe fn srand(seed: c_uint) {
    let _ = seed;
}

/// `real` is `Copy` and may be called several times; `guard` may be
/// dropped early.
#[interpose(around)]
unsafe fn dup(fd: c_int) -> c_int {
    let call = real;
    drop(guard);
    let first = call(fd);
    if first >= 0 {
        return first;
    }
    real(fd)
}

fn main() {
    let _: unsafe extern "C" fn(c_int, *const sigset_t, *mut sigset_t) -> c_int = sigprocmask;
    let _: unsafe extern "C" fn(c_uint) = srand;
    let _: unsafe extern "C" fn(c_int) -> c_int = dup;
}
