// `variadic = N`: the original is called through a C-variadic pointer.
#![deny(warnings)]

use ckpt_macros::interpose;
use libc::{c_char, c_int, c_uint, c_ulong, c_void};

#[interpose(variadic = 2)]
unsafe fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    let _ = (path, flags, mode, ret);
}

#[interpose(variadic = 2)]
unsafe fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    let _ = (fd, request, arg);
}

/// Every parameter fixed: N may equal the number of parameters.
#[interpose(variadic = 1, around)]
unsafe fn printf(format: *const c_char) -> c_int {
    real(format)
}

fn main() {
    let _: unsafe extern "C" fn(*const c_char, c_int, c_uint) -> c_int = open;
    let _: unsafe extern "C" fn(c_int, c_ulong, *mut c_void) -> c_int = ioctl;
    let _: unsafe extern "C" fn(*const c_char) -> c_int = printf;
}
