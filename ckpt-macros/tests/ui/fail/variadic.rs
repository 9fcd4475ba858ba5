use ckpt_macros::interpose;

#[interpose(variadic = 0)]
unsafe fn open(path: *const libc::c_char, flags: libc::c_int, mode: libc::c_uint) -> libc::c_int {}

#[interpose(variadic = 4)]
unsafe fn open64(path: *const libc::c_char, flags: libc::c_int, mode: libc::c_uint) -> libc::c_int {
}

#[interpose(variadic = "2")]
unsafe fn creat(path: *const libc::c_char, mode: libc::c_uint) -> libc::c_int {}

fn main() {}
