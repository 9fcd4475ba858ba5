use ckpt_macros::interpose;

#[interpose]
unsafe fn dup(self) -> libc::c_int {}

#[interpose]
unsafe fn dup2((old, new): (libc::c_int, libc::c_int)) -> libc::c_int {}

#[interpose]
unsafe fn dup3(mut fd: libc::c_int) -> libc::c_int {}

#[interpose]
unsafe fn close(#[allow(unused)] fd: libc::c_int) -> libc::c_int {}

fn main() {}
