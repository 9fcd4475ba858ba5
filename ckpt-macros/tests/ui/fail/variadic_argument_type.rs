// The variadic part must have a type C's default promotions allow.
use ckpt_macros::interpose;

#[interpose(variadic = 2)]
unsafe fn open(path: *const libc::c_char, flags: libc::c_int, mode: u16) -> libc::c_int {}

fn main() {}
