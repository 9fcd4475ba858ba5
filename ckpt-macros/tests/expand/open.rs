// Post-hook form with aliases and a variadic original.
use libc::{c_char, c_int, c_uint};

#[interpose(aliases(open64), variadic = 2)]
unsafe fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    crate::record_open(ret, path, flags, mode);
}
