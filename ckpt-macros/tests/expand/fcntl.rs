// `when` filter: calls that cannot create state jump straight to the
// original; the recording wrapper is a separate, never-inlined function.
use libc::{c_int, c_ulong};

#[interpose(variadic = 2, when = cmd == libc::F_DUPFD)]
unsafe fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    crate::record_dup(ret, fd);
}
