// The post-hook body runs inside `guard.record`: it sees `ret` and the
// parameters, not the wrapper's own locals.
use ckpt_macros::interpose;

#[interpose]
unsafe fn dup(fd: libc::c_int) -> libc::c_int {
    let _ = (fd, ret);
    drop(guard);
    let _ = saved_errno;
}

fn main() {}
