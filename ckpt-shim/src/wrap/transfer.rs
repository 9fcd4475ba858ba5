//! Calls that move data and end early when a signal handler runs: a
//! blocking write to a pipe or a stream socket returns what it wrote so
//! far, a receive with MSG_WAITALL what it received so far, and a socket
//! with a timeout (SO_RCVTIMEO, SO_SNDTIMEO) fails the call with EINTR
//! instead of restarting it (signal(7)). A checkpoint runs a handler on
//! every thread of the job, so without these wrappers a checkpoint alone,
//! with no restart, would show the program a short count (300000 bytes
//! written to a pipe came back as 65536) or an EINTR it never sees
//! without ckpt. When the only handler that ran during the call was
//! ckpt's (the thread was frozen: its count of freezes moved, its count
//! of the program's handlers did not), the call goes on with what remains; when a handler of the
//! program ran, the program gets what the kernel gave, as without ckpt.
//!
//! The cost on every call is one look at the thread's state before the
//! system call (about 5 ns; a write to /dev/null costs 110 ns here).

use ckpt::interpose::{errno, Guard};
use ckpt_macros::interpose;
use libc::{c_int, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

/// Counters read before a call.
#[derive(Clone, Copy)]
struct Mark {
    freezes: u32,
    program: u32,
}

impl Mark {
    #[inline(always)]
    fn now(guard: &Guard) -> Mark {
        let (freezes, program) = guard.freezes_and_program_signals();
        Mark { freezes, program }
    }

    /// Whether the call since `self` was cut short by a checkpoint only
    /// (looked at only when it was cut short).
    #[cold]
    fn checkpoint_only(self, guard: &Guard) -> bool {
        let (freezes, program) = guard.freezes_and_program_signals();
        freezes != self.freezes && program == self.program
    }
}

/// `call(done)` moves bytes from offset `done` of `len`; called again
/// while a checkpoint alone cut it short (a short count, or EINTR with
/// nothing moved). Returns the total moved, or the failure of a first
/// call, as the kernel would have without the checkpoint.
#[inline]
unsafe fn whole(guard: &Guard, len: usize, mut call: impl FnMut(usize) -> ssize_t) -> ssize_t {
    let mut done = 0usize;
    loop {
        let mark = Mark::now(guard);
        let r = call(done);
        if r < 0 {
            if errno() == libc::EINTR && mark.checkpoint_only(guard) {
                continue;
            }
            // Bytes moved before the failure are what the caller gets.
            return if done > 0 { done as ssize_t } else { r };
        }
        done += r as usize;
        if r == 0 || done >= len || !mark.checkpoint_only(guard) {
            return done as ssize_t;
        }
    }
}

/// `call()` again while it fails with EINTR that only a checkpoint caused
/// (a socket with a receive timeout: accept, recvmsg, read).
#[inline]
unsafe fn again<R: Copy + PartialOrd + Default>(guard: &Guard, mut call: impl FnMut() -> R) -> R {
    loop {
        let mark = Mark::now(guard);
        let r = call();
        if r >= R::default() || errno() != libc::EINTR || !mark.checkpoint_only(guard) {
            return r;
        }
    }
}

#[interpose(around)]
unsafe fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    whole(&guard, n, |done| {
        real(fd, buf.cast::<u8>().add(done).cast(), n - done)
    })
}

#[interpose(around)]
unsafe fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    whole(&guard, n, |done| {
        real(fd, buf.cast::<u8>().add(done).cast(), n - done, flags)
    })
}

/// A destination is given only to datagram (or unconnected) sockets, where
/// a call is all or nothing; stream sockets ignore it.
#[interpose(around)]
unsafe fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    to: *const sockaddr,
    to_len: socklen_t,
) -> ssize_t {
    whole(&guard, n, |done| {
        real(
            fd,
            buf.cast::<u8>().add(done).cast(),
            n - done,
            flags,
            to,
            to_len,
        )
    })
}

/// MSG_WAITALL asks for all `n` bytes: a checkpoint must not end it early.
#[interpose(around)]
unsafe fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    if flags & libc::MSG_WAITALL == 0 {
        return again(&guard, || real(fd, buf, n, flags));
    }
    whole(&guard, n, |done| {
        real(fd, buf.cast::<u8>().add(done).cast(), n - done, flags)
    })
}

#[interpose(around)]
unsafe fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    from: *mut sockaddr,
    from_len: *mut socklen_t,
) -> ssize_t {
    if flags & libc::MSG_WAITALL == 0 {
        return again(&guard, || real(fd, buf, n, flags, from, from_len));
    }
    whole(&guard, n, |done| {
        real(
            fd,
            buf.cast::<u8>().add(done).cast(),
            n - done,
            flags,
            from,
            from_len,
        )
    })
}

/// The rest of a vector of buffers after `done` bytes, into `out` (at most
/// its length); the number of entries. Stack only.
fn advance(iov: &[iovec], mut done: usize, out: &mut [iovec]) -> usize {
    let mut n = 0;
    for v in iov {
        if done >= v.iov_len {
            done -= v.iov_len;
            continue;
        }
        if n == out.len() {
            break;
        }
        out[n] = iovec {
            // SAFETY: within the caller's buffer (done < iov_len).
            iov_base: unsafe { v.iov_base.cast::<u8>().add(done).cast() },
            iov_len: v.iov_len - done,
        };
        done = 0;
        n += 1;
    }
    n
}

/// Most buffers of a vector a continued call carries on with (the rest,
/// if any, is left to the caller, as a short count).
const MAX_IOV: usize = 64;

fn total(iov: *const iovec, n: c_int) -> usize {
    if iov.is_null() || n <= 0 {
        return 0;
    }
    // SAFETY: the caller passed `n` valid entries.
    unsafe { core::slice::from_raw_parts(iov, n as usize) }
        .iter()
        .map(|v| v.iov_len)
        .sum()
}

#[interpose(around)]
unsafe fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    let len = total(iov, n);
    let mut rest = [iovec {
        iov_base: core::ptr::null_mut(),
        iov_len: 0,
    }; MAX_IOV];
    whole(&guard, len, |done| {
        if done == 0 {
            return real(fd, iov, n);
        }
        let k = advance(
            core::slice::from_raw_parts(iov, n as usize),
            done,
            &mut rest,
        );
        real(fd, rest.as_ptr(), k as c_int)
    })
}

/// Ancillary data (descriptors passed) goes with the first part only.
#[interpose(around)]
unsafe fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    if msg.is_null() {
        return real(fd, msg, flags);
    }
    let m = &*msg;
    let len = total(m.msg_iov, m.msg_iovlen as c_int);
    let mut rest = [iovec {
        iov_base: core::ptr::null_mut(),
        iov_len: 0,
    }; MAX_IOV];
    whole(&guard, len, |done| {
        if done == 0 {
            return real(fd, msg, flags);
        }
        let k = advance(
            core::slice::from_raw_parts(m.msg_iov, m.msg_iovlen),
            done,
            &mut rest,
        );
        let mut more: msghdr = core::mem::zeroed();
        more.msg_name = m.msg_name;
        more.msg_namelen = m.msg_namelen;
        more.msg_iov = rest.as_mut_ptr();
        more.msg_iovlen = k;
        real(fd, &more, flags)
    })
}

/// Only the EINTR of a receive timeout: a message's parts and its
/// ancillary data are not put together from several calls.
#[interpose(around)]
unsafe fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    again(&guard, || real(fd, msg, flags))
}

/// A socket with a receive timeout fails a blocking read with EINTR.
#[interpose(around)]
unsafe fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    again(&guard, || real(fd, buf, n))
}

#[interpose(around)]
unsafe fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    again(&guard, || real(fd, addr, len))
}

#[interpose(around)]
unsafe fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    again(&guard, || real(fd, addr, len, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_skips_what_was_moved() {
        let mut a = [0u8; 10];
        let mut b = [0u8; 5];
        let iov = [
            iovec {
                iov_base: a.as_mut_ptr().cast(),
                iov_len: 10,
            },
            iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: 5,
            },
        ];
        let mut out = [iovec {
            iov_base: core::ptr::null_mut(),
            iov_len: 0,
        }; 4];
        assert_eq!(advance(&iov, 12, &mut out), 1);
        assert_eq!(out[0].iov_len, 3);
        assert_eq!(out[0].iov_base as usize, b.as_ptr() as usize + 2);
        assert_eq!(advance(&iov, 4, &mut out), 2);
        assert_eq!(out[0].iov_len, 6);
        assert_eq!(advance(&iov, 15, &mut out), 0);
    }
}
