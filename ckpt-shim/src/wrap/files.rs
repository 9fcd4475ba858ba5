//! Descriptor-creating calls: recorded into `ckpt::files`.
//! ckpt's own descriptors are invisible: closing or duplicating them fails
//! with EBADF as if they were not open, and close_range skips them.

use crate::wrap::direct;
use ckpt::files::{self as rec, Origin};
use ckpt::interpose::{c_str, set_errno};
use ckpt_macros::interpose;
use libc::{c_char, c_int, c_uint, c_ulong, mode_t, FILE};

#[interpose(aliases(open64), variadic = 2, around)]
unsafe fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    let fd = direct::openat(libc::AT_FDCWD, path, flags, mode, || {
        real(path, flags, mode)
    });
    guard.record(|| {
        rec::record_open_c(fd, Origin::Open, path, flags);
        written(fd, libc::AT_FDCWD, path, flags);
    });
    fd
}

#[interpose(aliases(__open64_2))]
unsafe fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    rec::record_open(ret, Origin::Open, c_str(path), flags);
    written(ret, libc::AT_FDCWD, path, flags);
}

#[interpose(aliases(openat64), variadic = 3, around)]
unsafe fn openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    let fd = direct::openat(dirfd, path, flags, mode, || real(dirfd, path, flags, mode));
    guard.record(|| {
        rec::record_open_c(fd, Origin::Openat, path, flags);
        written(fd, dirfd, path, flags);
    });
    fd
}

#[interpose(aliases(__openat64_2))]
unsafe fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    rec::record_open(ret, Origin::Openat, c_str(path), flags);
    written(ret, dirfd, path, flags);
}

#[interpose(aliases(creat64))]
unsafe fn creat(path: *const c_char, mode: mode_t) -> c_int {
    rec::record_open(
        ret,
        Origin::Creat,
        c_str(path),
        libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
    );
    written(ret, libc::AT_FDCWD, path, libc::O_WRONLY);
}

/// An open for writing: the file is remembered as written (`closed`, and
/// the job's log); an open for reading costs one compare.
///
/// # Safety
/// `path` is null or a NUL-terminated string.
#[inline(always)]
unsafe fn written(fd: c_int, dirfd: c_int, path: *const c_char, flags: c_int) {
    if flags & libc::O_ACCMODE != libc::O_RDONLY && fd >= 0 {
        rec::record_written(fd, dirfd, c_str(path));
    }
}

#[interpose(around)]
unsafe fn close(fd: c_int) -> c_int {
    if rec::is_own(fd) {
        set_errno(libc::EBADF);
        return -1;
    }
    guard.record(|| rec::record_close(fd));
    // The original last, as a tail call: nothing of the wrapper runs after
    // the kernel returns (see `direct`), and errno is the original's.
    drop(guard);
    close::real(fd)
}

/// Close the program's part of descriptors `first..=last` with `part`
/// (lowest, highest), stepping around ckpt's own; the last failure, or 0.
fn around_own(first: u64, last: u64, mut part: impl FnMut(u64, u64) -> c_int) -> c_int {
    let (mut lo, hi) = (first, last);
    let mut result = 0;
    while lo <= hi {
        let mut end = hi;
        let mut own = None;
        for fd in lo..=hi.min(lo + (1 << 20)) {
            if rec::is_own(fd as c_int) {
                end = fd.saturating_sub(1);
                own = Some(fd);
                break;
            }
        }
        if own != Some(lo) {
            let r = part(lo, end.min(u32::MAX as u64));
            if r != 0 {
                result = r;
            }
        }
        match own {
            Some(fd) => lo = fd + 1,
            None => break,
        }
    }
    result
}

#[interpose(around)]
unsafe fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    // Close the program's part of the range, stepping around ours.
    around_own(first as u64, last as u64, |lo, hi| {
        guard.record(|| rec::record_close_range(lo as c_uint, hi as c_uint));
        real(lo as c_uint, hi as c_uint, flags)
    })
}

/// glibc's closefrom calls the kernel's close_range itself (not through
/// the wrapper above): it would close ckpt's control socket, and every
/// later checkpoint would call the program not run under ckpt.
#[interpose(around)]
unsafe fn closefrom(lowfd: c_int) {
    let _ = real;
    around_own(lowfd.max(0) as u64, u32::MAX as u64, |lo, hi| {
        guard.record(|| rec::record_close_range(lo as c_uint, hi as c_uint));
        // SAFETY: close_range of the program's own descriptors.
        let r = unsafe { libc::syscall(libc::SYS_close_range, lo as c_uint, hi as c_uint, 0) };
        if r != 0 {
            // A kernel without close_range: one by one, up to the limit.
            let top = sys_open_max().min(hi);
            for fd in lo..=top {
                // SAFETY: close of a program descriptor number.
                unsafe { libc::syscall(libc::SYS_close, fd as c_int) };
            }
        }
        0
    });
}

/// The descriptor limit (RLIMIT_NOFILE's soft value).
fn sys_open_max() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit into a live struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    lim.rlim_cur.min(1 << 20)
}

#[interpose(around)]
unsafe fn dup(old: c_int) -> c_int {
    if rec::is_own(old) {
        set_errno(libc::EBADF);
        return -1;
    }
    let r = direct::dup(old, || real(old));
    guard.record(|| rec::record_dup(r, old, Origin::Dup));
    r
}

#[interpose(around)]
unsafe fn dup2(old: c_int, new: c_int) -> c_int {
    if rec::is_own(old) || (rec::is_own(new) && !rec::make_way(new)) {
        set_errno(libc::EBADF);
        return -1;
    }
    let r = direct::dup2(old, new, || real(old, new));
    guard.record(|| rec::record_dup(r, old, Origin::Dup2));
    r
}

#[interpose(around)]
unsafe fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if rec::is_own(old) || (rec::is_own(new) && !rec::make_way(new)) {
        set_errno(libc::EBADF);
        return -1;
    }
    let r = direct::dup3(old, new, flags, || real(old, new, flags));
    guard.record(|| rec::record_dup(r, old, Origin::Dup3));
    r
}

#[interpose(aliases(fcntl64), variadic = 2, when = cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC || cmd == libc::F_NOTIFY || cmd == libc::F_SETOWN || cmd == F_SETOWN_EX || rec::maybe_own(fd))]
unsafe fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    if rec::is_own(fd) {
        // ckpt's descriptors do not exist for the program.
        let _ = (ret, arg);
        return;
    }
    match cmd {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => rec::record_dup(ret, fd, Origin::FcntlDupfd),
        // The kernel shows dnotify registrations nowhere: keep them.
        libc::F_NOTIFY if ret == 0 => rec::dnotify::record(fd, arg as u32),
        libc::F_SETOWN | F_SETOWN_EX if ret == 0 => rec::record_owner_set(),
        _ => {}
    }
}

const F_SETOWN_EX: c_int = 15;
/// ioctl requests that set who gets a socket's SIGIO and SIGURG.
const FIOSETOWN: c_ulong = 0x8901;
const SIOCSPGRP: c_ulong = 0x8902;

/// Only the requests that give a descriptor an owner reach the body (the
/// kernel shows a socket's owner nowhere else: see `files::owner_set`).
#[interpose(variadic = 2, when = req == FIOSETOWN || req == SIOCSPGRP)]
unsafe fn ioctl(fd: c_int, req: c_ulong, arg: c_ulong) -> c_int {
    let _ = (fd, arg);
    if ret == 0 {
        rec::record_owner_set();
    }
}

/// The open(2) flags an fopen mode string means.
unsafe fn fopen_flags(mode: *const c_char) -> c_int {
    let m = c_str(mode);
    let plus = m.contains(&b'+');
    let mut f = match m.first() {
        Some(b'w') => {
            libc::O_CREAT | libc::O_TRUNC | if plus { libc::O_RDWR } else { libc::O_WRONLY }
        }
        Some(b'a') => {
            libc::O_CREAT | libc::O_APPEND | if plus { libc::O_RDWR } else { libc::O_WRONLY }
        }
        _ => {
            if plus {
                libc::O_RDWR
            } else {
                libc::O_RDONLY
            }
        }
    };
    if m.contains(&b'e') {
        f |= libc::O_CLOEXEC;
    }
    if m.contains(&b'x') {
        f |= libc::O_EXCL;
    }
    f
}

// Temporary files and directories the C library makes (it opens them
// itself, past the open wrappers): `template` holds the name made.

/// The file mkstemp & co. opened at `template`, with `flags` besides.
///
/// # Safety
/// `template` is null or a NUL-terminated string.
unsafe fn made_temp(fd: c_int, template: *const c_char, flags: c_int) {
    if fd >= 0 {
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | flags;
        rec::record_open(fd, Origin::Open, c_str(template), flags);
        written(fd, libc::AT_FDCWD, template, flags);
    }
}

#[interpose(aliases(mkstemp64))]
unsafe fn mkstemp(template: *mut c_char) -> c_int {
    made_temp(ret, template, 0);
}

#[interpose(aliases(mkostemp64))]
unsafe fn mkostemp(template: *mut c_char, flags: c_int) -> c_int {
    made_temp(ret, template, flags);
}

#[interpose(aliases(mkstemps64))]
unsafe fn mkstemps(template: *mut c_char, suffixlen: c_int) -> c_int {
    made_temp(ret, template, 0);
}

#[interpose(aliases(mkostemps64))]
unsafe fn mkostemps(template: *mut c_char, suffixlen: c_int, flags: c_int) -> c_int {
    made_temp(ret, template, flags);
}

#[interpose]
unsafe fn mkdtemp(template: *mut c_char) -> *mut c_char {
    if !ret.is_null() {
        rec::record_made(libc::AT_FDCWD, ret, true);
    }
}

extern "C" {
    fn fileno_unlocked(stream: *mut FILE) -> c_int;
}

#[interpose(aliases(fopen64))]
unsafe fn fopen(path: *const c_char, mode: *const c_char) -> *mut FILE {
    if !ret.is_null() {
        rec::record_open(
            fileno_unlocked(ret),
            Origin::Fopen,
            c_str(path),
            fopen_flags(mode),
        );
        written(
            fileno_unlocked(ret),
            libc::AT_FDCWD,
            path,
            fopen_flags(mode),
        );
    }
}

#[interpose(aliases(freopen64))]
unsafe fn freopen(path: *const c_char, mode: *const c_char, stream: *mut FILE) -> *mut FILE {
    if !ret.is_null() && !path.is_null() {
        rec::record_open(
            fileno_unlocked(ret),
            Origin::Freopen,
            c_str(path),
            fopen_flags(mode),
        );
        written(
            fileno_unlocked(ret),
            libc::AT_FDCWD,
            path,
            fopen_flags(mode),
        );
    }
}

#[interpose]
unsafe fn fdopen(fd: c_int, mode: *const c_char) -> *mut FILE {
    // No new descriptor: fdopen only wraps `fd` in a stream.
    let _ = (ret, fd, mode);
}

#[interpose(around)]
unsafe fn fclose(stream: *mut FILE) -> c_int {
    if !stream.is_null() {
        let fd = fileno_unlocked(stream);
        guard.record(|| rec::record_close(fd));
    }
    real(stream)
}

#[interpose]
unsafe fn pipe(fds: *mut c_int) -> c_int {
    if ret == 0 {
        rec::record_pipe([*fds, *fds.add(1)], 0);
    }
}

#[interpose]
unsafe fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    if ret == 0 {
        rec::record_pipe([*fds, *fds.add(1)], flags);
    }
}

#[interpose]
unsafe fn socketpair(domain: c_int, typ: c_int, protocol: c_int, fds: *mut c_int) -> c_int {
    if ret == 0 && domain == libc::AF_UNIX {
        rec::record_socketpair(
            [*fds, *fds.add(1)],
            typ & (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC),
        );
    }
}

/// The interface an IP socket sends multicast on, named by index, and a
/// packet socket's memberships: the kernel cannot say them at checkpoint
/// (see `ckpt::files::multicast`, `ckpt::files::packet`).
#[interpose]
unsafe fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const libc::c_void,
    len: libc::socklen_t,
) -> c_int {
    if ret == 0 && level == libc::IPPROTO_IP && name == libc::IP_MULTICAST_IF && !val.is_null() {
        rec::record_multicast_interface(fd, val.cast(), len);
    }
    if ret == 0 && level == libc::SOL_PACKET {
        rec::record_packet_option(fd, name, val.cast(), len);
    }
}

#[interpose]
unsafe fn eventfd(initval: c_uint, flags: c_int) -> c_int {
    rec::record_anon(ret, Origin::EventFd, b"", flags);
}

#[interpose]
unsafe fn memfd_create(name: *const c_char, flags: c_uint) -> c_int {
    rec::record_anon(ret, Origin::MemfdCreate, c_str(name), flags as c_int);
}

#[interpose]
unsafe fn inotify_init() -> c_int {
    rec::record_anon(ret, Origin::Inotify, b"", 0);
}

#[interpose]
unsafe fn inotify_init1(flags: c_int) -> c_int {
    rec::record_anon(ret, Origin::Inotify, b"", flags);
}

#[interpose]
unsafe fn inotify_add_watch(fd: c_int, path: *const c_char, mask: u32) -> c_int {
    // The kernel shows the watched inode, not the path: keep it.
    if ret >= 0 {
        rec::record_watch(fd, ret, c_str(path));
    }
}

#[interpose]
unsafe fn inotify_rm_watch(fd: c_int, wd: c_int) -> c_int {
    if ret == 0 {
        rec::record_unwatch(fd, wd);
    }
}

// A regular file removed is logged with its birth time (asked first): a
// restart names those there at the checkpoint that the killed run removed
// after it (their contents are not in the image).

#[interpose(around)]
unsafe fn unlink(path: *const c_char) -> c_int {
    let born = rec::born_if_file(libc::AT_FDCWD, path);
    let r = real(path);
    if let (0, Some(b)) = (r, born) {
        guard.record(|| rec::record_removed(libc::AT_FDCWD, path, b));
    }
    r
}

#[interpose(around)]
unsafe fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    let born = if flags & libc::AT_REMOVEDIR == 0 {
        rec::born_if_file(dirfd, path)
    } else {
        None
    };
    let r = real(dirfd, path, flags);
    if let (0, Some(b)) = (r, born) {
        guard.record(|| rec::record_removed(dirfd, path, b));
    }
    r
}

#[interpose(around)]
unsafe fn remove(path: *const c_char) -> c_int {
    let born = rec::born_if_file(libc::AT_FDCWD, path);
    let r = real(path);
    if let (0, Some(b)) = (r, born) {
        guard.record(|| rec::record_removed(libc::AT_FDCWD, path, b));
    }
    r
}

// A file renamed into place was written (an atomic save); whether one
// was there before is asked first (a restart never removes such a path).
// The program's errno is left as the rename left it.

#[interpose(around)]
unsafe fn rename(old: *const c_char, new: *const c_char) -> c_int {
    let errno = ckpt::interpose::errno();
    let replaced = rec::exists_in_job(libc::AT_FDCWD, new);
    let r = real(old, new);
    if r == 0 {
        guard.record(|| {
            rec::record_renamed(libc::AT_FDCWD, new, replaced);
            rec::record_rename_event(libc::AT_FDCWD, old, libc::AT_FDCWD, new, replaced);
        });
        set_errno(errno);
    }
    r
}

#[interpose(around)]
unsafe fn renameat(
    olddirfd: c_int,
    old: *const c_char,
    newdirfd: c_int,
    new: *const c_char,
) -> c_int {
    let errno = ckpt::interpose::errno();
    let replaced = rec::exists_in_job(newdirfd, new);
    let r = real(olddirfd, old, newdirfd, new);
    if r == 0 {
        guard.record(|| {
            rec::record_renamed(newdirfd, new, replaced);
            rec::record_rename_event(olddirfd, old, newdirfd, new, replaced);
        });
        set_errno(errno);
    }
    r
}

#[interpose(around)]
unsafe fn renameat2(
    olddirfd: c_int,
    old: *const c_char,
    newdirfd: c_int,
    new: *const c_char,
    flags: c_uint,
) -> c_int {
    let errno = ckpt::interpose::errno();
    let replaced = rec::exists_in_job(newdirfd, new);
    let r = real(olddirfd, old, newdirfd, new, flags);
    // RENAME_EXCHANGE: both paths name files written (the old one, too),
    // and both were there.
    if r == 0 {
        guard.record(|| {
            rec::record_renamed(newdirfd, new, replaced);
            // An exchange is logged as a rename over a file: a restart
            // does not undo it, and says so.
            let exchange = flags & libc::RENAME_EXCHANGE != 0;
            rec::record_rename_event(olddirfd, old, newdirfd, new, replaced || exchange);
            if exchange {
                rec::record_renamed(olddirfd, old, true);
            }
        });
        set_errno(errno);
    }
    r
}

// What the job makes other than by opening for writing (see
// `record_made`): a restart removes what the killed run made after the
// checkpoint.

#[interpose]
unsafe fn mkdir(path: *const c_char, mode: mode_t) -> c_int {
    if ret == 0 {
        rec::record_made(libc::AT_FDCWD, path, true);
    }
}

#[interpose]
unsafe fn mkdirat(dirfd: c_int, path: *const c_char, mode: mode_t) -> c_int {
    if ret == 0 {
        rec::record_made(dirfd, path, true);
    }
}

#[interpose]
unsafe fn mkfifo(path: *const c_char, mode: mode_t) -> c_int {
    if ret == 0 {
        rec::record_made(libc::AT_FDCWD, path, false);
    }
}

#[interpose]
unsafe fn mkfifoat(dirfd: c_int, path: *const c_char, mode: mode_t) -> c_int {
    if ret == 0 {
        rec::record_made(dirfd, path, false);
    }
}

#[interpose]
unsafe fn mknod(path: *const c_char, mode: mode_t, dev: libc::dev_t) -> c_int {
    if ret == 0 {
        rec::record_made(libc::AT_FDCWD, path, false);
    }
}

#[interpose]
unsafe fn mknodat(dirfd: c_int, path: *const c_char, mode: mode_t, dev: libc::dev_t) -> c_int {
    if ret == 0 {
        rec::record_made(dirfd, path, false);
    }
}

#[interpose]
unsafe fn symlink(target: *const c_char, path: *const c_char) -> c_int {
    if ret == 0 {
        rec::record_made(libc::AT_FDCWD, path, false);
    }
}

#[interpose]
unsafe fn symlinkat(target: *const c_char, dirfd: c_int, path: *const c_char) -> c_int {
    if ret == 0 {
        rec::record_made(dirfd, path, false);
    }
}

#[interpose]
unsafe fn link(old: *const c_char, new: *const c_char) -> c_int {
    if ret == 0 {
        rec::record_made(libc::AT_FDCWD, new, false);
    }
}

#[interpose]
unsafe fn linkat(
    olddirfd: c_int,
    old: *const c_char,
    newdirfd: c_int,
    new: *const c_char,
    flags: c_int,
) -> c_int {
    if ret == 0 {
        rec::record_made(newdirfd, new, false);
    }
}

#[interpose]
unsafe fn bind(fd: c_int, addr: *const libc::sockaddr, len: libc::socklen_t) -> c_int {
    if ret == 0 {
        rec::record_bound(addr, len);
    }
}

#[interpose]
unsafe fn chdir(path: *const c_char) -> c_int {
    if ret == 0 {
        ckpt::process::record_chdir();
    }
}

#[interpose]
unsafe fn fchdir(fd: c_int) -> c_int {
    if ret == 0 {
        ckpt::process::record_chdir();
    }
}

#[interpose]
unsafe fn umask(mask: mode_t) -> mode_t {
    ckpt::process::record_umask(mask);
}
