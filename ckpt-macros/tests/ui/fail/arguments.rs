use ckpt_macros::interpose;

#[interpose(aroud)]
unsafe fn dup(fd: libc::c_int) -> libc::c_int {}

#[interpose(around, around)]
unsafe fn dup2(fd: libc::c_int, new: libc::c_int) -> libc::c_int {}

#[interpose(around = true)]
unsafe fn dup3(fd: libc::c_int, new: libc::c_int, flags: libc::c_int) -> libc::c_int {}

#[interpose(version = "")]
unsafe fn close(fd: libc::c_int) -> libc::c_int {}

#[interpose(version = GLIBC_2_3_3)]
unsafe fn fsync(fd: libc::c_int) -> libc::c_int {}

#[interpose(libc::aliases(x))]
unsafe fn fdatasync(fd: libc::c_int) -> libc::c_int {}

fn main() {}
