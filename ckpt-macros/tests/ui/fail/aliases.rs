use ckpt_macros::interpose;

#[interpose(aliases(open64, open))]
unsafe fn open(path: *const libc::c_char, flags: libc::c_int) -> libc::c_int {}

#[interpose(aliases(creat64, creat64))]
unsafe fn creat(path: *const libc::c_char, flags: libc::c_int) -> libc::c_int {}

#[interpose(aliases(fcntl64 = 1))]
unsafe fn fcntl(fd: libc::c_int, cmd: libc::c_int) -> libc::c_int {}

fn main() {}
