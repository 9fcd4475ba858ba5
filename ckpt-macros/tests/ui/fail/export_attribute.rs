use ckpt_macros::interpose;

#[interpose]
#[no_mangle]
unsafe fn dup(fd: libc::c_int) -> libc::c_int {}

#[interpose]
#[export_name = "dup_again"]
unsafe fn dup2(fd: libc::c_int, new: libc::c_int) -> libc::c_int {}

fn main() {}
