use ckpt_macros::interpose;

#[interpose]
unsafe extern "C" fn dup(fd: libc::c_int) -> libc::c_int {
    let _ = (fd, ret);
}

fn main() {}
