//! rseq areas the program registers itself (librseq, runtimes that turn
//! glibc's registration off): glibc has no `rseq()` function, so they come
//! through `syscall(SYS_rseq, ...)`. Every other `syscall()` goes straight
//! to the original after one comparison. A successful registration is
//! recorded for the calling thread (see `ckpt::threads::record_rseq`), so
//! a restart registers the same area again; one made past this wrapper
//! (an inline system call) is found at the checkpoint and warned about.
//! `syscall(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, ...)` is noted as
//! the C library's `prctl` is (see `process`).

use ckpt_macros::interpose;
use libc::c_long;

/// RSEQ_FLAG_UNREGISTER.
const UNREGISTER: c_long = 1;

#[interpose(variadic = 1, when = number == libc::SYS_rseq || (number == libc::SYS_prctl && a1 == super::process::PR_SET_SYSCALL_USER_DISPATCH as c_long))]
unsafe fn syscall(
    number: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    let _ = (a5, a6);
    if ret == 0 && number == libc::SYS_prctl {
        ckpt::threads::record_syscall_dispatch(a2 as u64);
    } else if ret == 0 {
        ckpt::threads::record_rseq(a1 as u64, a2 as u32, a4 as u32, a3 & UNREGISTER != 0);
    }
}
