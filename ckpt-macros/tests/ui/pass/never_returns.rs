// Functions that never return, in both forms; attributes carried over.
#![deny(warnings)]

use ckpt_macros::interpose;
use libc::c_int;

#[interpose(around)]
unsafe fn _exit(status: c_int) -> ! {
    drop(guard);
    real(status)
}

#[interpose]
#[cfg(target_os = "linux")]
unsafe fn abort() -> ! {}

#[interpose]
#[cfg(not(target_os = "linux"))]
unsafe fn no_such_function() {}

fn main() {
    let _: unsafe extern "C" fn(c_int) -> ! = _exit;
    let _: unsafe extern "C" fn() -> ! = abort;
}
