// `when = <expr>`: calls for which the condition is false skip the wrapper.
use ckpt_macros::interpose;
use libc::{c_int, c_ulong};

static mut RECORDED: c_int = 0;

#[interpose(variadic = 2, when = cmd == libc::F_DUPFD)]
unsafe fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    let _ = (fd, arg);
    RECORDED += 1;
    let _ = ret;
}

fn main() {
    ckpt::interpose::set_ready(true);
    unsafe {
        let fl = libc::fcntl(0, libc::F_GETFL);
        let _ = fl;
        assert_eq!(RECORDED, 0);
        let d = libc::fcntl(0, libc::F_DUPFD, 10);
        assert!(d >= 10);
        assert_eq!(RECORDED, 1);
        libc::close(d);
    }
}
