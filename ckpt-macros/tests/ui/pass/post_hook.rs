// Post-hook form: the body sees `ret` and the parameters; its value is
// discarded; the return type may be omitted.
#![deny(warnings, unsafe_op_in_unsafe_fn)]

use ckpt_macros::interpose;
use libc::{c_int, pid_t};

fn note(_: c_int) {}

/// Documentation goes onto the exported wrapper.
#[interpose]
unsafe fn getpgid(pid: pid_t) -> pid_t {
    note(pid);
    ret + 1 // discarded
}

#[interpose]
unsafe fn sync() {
    let () = ret;
}

#[interpose]
unsafe fn close(fd: c_int) -> c_int {
    if ret != 0 {
        return;
    }
    note(fd);
}

fn main() {
    let _: unsafe extern "C" fn(pid_t) -> pid_t = getpgid;
    let _: unsafe extern "C" fn() = sync;
    let _: &ckpt::interpose::Original = &close::ORIGINAL;
    let group = unsafe { ckpt::real!(getpgid)(0) };
    assert_eq!(group, unsafe { libc::getpgid(0) });
}
