// Parameters must not be shadowed by the names bound for the body.
use ckpt_macros::interpose;

#[interpose]
unsafe fn dup(ret: libc::c_int) -> libc::c_int {}

#[interpose(around)]
unsafe fn dup2(guard: libc::c_int, new: libc::c_int) -> libc::c_int {
    real(guard, new)
}

#[interpose(around)]
unsafe fn dup3(real: libc::c_int, new: libc::c_int, flags: libc::c_int) -> libc::c_int {
    let _ = (new, flags);
    real
}

fn main() {}
