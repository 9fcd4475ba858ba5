// Aliases: one module, registration and wrapper per exported symbol.
#![deny(warnings)]

use ckpt_macros::{interpose, originals_registry};
use libc::{c_char, c_int, mode_t};

originals_registry!();

#[interpose(aliases(creat64))]
unsafe fn creat(path: *const c_char, mode: mode_t) -> c_int {
    let _ = (path, mode, ret);
}

#[interpose(around, aliases(fcntl64, __fcntl), variadic = 2)]
unsafe fn fcntl(fd: c_int, cmd: c_int, arg: libc::c_ulong) -> c_int {
    real(fd, cmd, arg)
}

fn main() {
    let _: unsafe extern "C" fn(*const c_char, mode_t) -> c_int = creat64;
    assert_eq!(creat::ORIGINAL.name(), c"creat");
    assert_eq!(creat64::ORIGINAL.name(), c"creat64");
    assert_eq!(fcntl64::ORIGINAL.name(), c"fcntl64");
    assert_eq!(__fcntl::ORIGINAL.name(), c"__fcntl");
    assert_eq!(resolve_all_originals(), 5);
    let own = unsafe { libc::dlsym(libc::RTLD_NEXT, c"__fcntl".as_ptr()) };
    assert_eq!(__fcntl::ORIGINAL.get(), own);
}
