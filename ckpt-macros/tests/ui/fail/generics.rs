use ckpt_macros::interpose;

#[interpose]
unsafe fn dup<T: Copy>(fd: T) -> libc::c_int {
    let _ = (fd, ret);
}

#[interpose]
unsafe fn dup2(fd: libc::c_int, new: libc::c_int) -> libc::c_int
where
    libc::c_int: Copy,
{
    let _ = (fd, new, ret);
}

fn main() {}
