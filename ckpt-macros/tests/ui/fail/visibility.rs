use ckpt_macros::interpose;

#[interpose]
pub(crate) unsafe fn dup(fd: libc::c_int) -> libc::c_int {
    let _ = (fd, ret);
}

fn main() {}
