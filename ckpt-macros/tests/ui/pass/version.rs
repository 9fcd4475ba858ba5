// `version = "..."`: the original is looked up with `dlvsym`.
#![deny(warnings)]

use ckpt_macros::{interpose, originals_registry};
use libc::{c_int, clockid_t, sigevent, timer_t};

originals_registry!(pub(crate));

#[interpose(version = "GLIBC_2.3.3")]
unsafe fn timer_create(clock: clockid_t, event: *mut sigevent, timer: *mut timer_t) -> c_int {
    let _ = (clock, event, timer, ret);
}

fn main() {
    assert_eq!(resolve_all_originals(), 1);
    let versioned = unsafe {
        libc::dlvsym(
            libc::RTLD_NEXT,
            c"timer_create".as_ptr(),
            c"GLIBC_2.3.3".as_ptr(),
        )
    };
    assert_eq!(timer_create::ORIGINAL.get(), versioned);
}
