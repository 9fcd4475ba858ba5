use ckpt_macros::interpose;

#[interpose]
const unsafe fn getpid() -> libc::pid_t {}

#[interpose]
async unsafe fn getppid() -> libc::pid_t {}

fn main() {}
