use ckpt_macros::interpose;

#[interpose]
unsafe fn printf(format: *const libc::c_char, args: ...) -> libc::c_int {}

fn main() {}
