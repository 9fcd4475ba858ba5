//! Thin raw-syscall helpers used where libc wrappers would be wrong:
//! inside signal handlers, while the program's threads are frozen, or
//! where libc caches (tids). One small function per call, errors as values.

use core::ffi::{c_int, c_void};
use core::sync::atomic::AtomicU32;

/// The calling thread's kernel tid.
#[inline]
pub fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The process id (from the kernel, never a cached value).
#[inline]
pub fn getpid() -> i32 {
    // SAFETY: getpid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_getpid) as i32 }
}

/// Send `sig` to thread `tid` of process `pid`. Signal-safe.
pub fn tgkill(pid: i32, tid: i32, sig: c_int) -> Result<(), i32> {
    // SAFETY: tgkill takes plain integers.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) };
    if r < 0 {
        Err(crate::interpose::errno())
    } else {
        Ok(())
    }
}

/// Wait while `*word == val`, at most `timeout_ns` (0 = forever). Signal-safe.
pub fn futex_wait(word: &AtomicU32, val: u32, timeout_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as i64,
        tv_nsec: (timeout_ns % 1_000_000_000) as i64,
    };
    let tsp = if timeout_ns == 0 {
        core::ptr::null()
    } else {
        &ts as *const libc::timespec
    };
    // SAFETY: `word` is a live, aligned u32; the kernel only reads it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            val,
            tsp,
        )
    };
}

/// Wake every waiter on `word`. Signal-safe.
pub fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        )
    };
}

/// A fresh private anonymous read-write mapping of `len` bytes, never
/// unmapped: buffers of a writer or of post-restart code, which may not
/// use malloc. None when the kernel refuses.
pub fn map_anon(len: usize) -> Option<&'static mut [u8]> {
    // SAFETY: anonymous private mapping, no hint.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the mapping is ours, `len` bytes, never unmapped, unaliased.
    Some(unsafe { core::slice::from_raw_parts_mut(p as *mut u8, len) })
}

/// CLOCK_MONOTONIC now, in nanoseconds.
#[inline]
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Any clock now, in nanoseconds (0 when the clock is unreadable).
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writing into a live timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A timespec from nanoseconds.
pub fn timespec(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_nsec: (ns % 1_000_000_000) as i64,
    }
}

/// Nanoseconds of a timespec (negative values clamp to 0).
pub fn ts_ns(ts: &libc::timespec) -> u64 {
    if ts.tv_sec < 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec.max(0) as u64)
}

/// A system call with up to four arguments made here, not through the C
/// library's `syscall()` (which the shim interposes): the raw result,
/// -errno on failure. Signal-safe.
///
/// # Safety
/// The arguments must be valid for system call `nr`.
pub unsafe fn raw_syscall4(nr: i64, a: u64, b: u64, c: u64, d: u64) -> i64 {
    let r: i64;
    // SAFETY (caller): valid arguments. The kernel clobbers rcx and r11;
    // memory may change (buffers).
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr => r,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        )
    };
    r
}

/// Start a thread of this process running `f(arg)` on the stack that ends
/// at `stack_top` (16-byte aligned, the caller's to keep mapped until the
/// thread ended), which then ends. It has no TLS of its own (it shares
/// the caller's FS base): `f` must not use libc, TLS or errno. It starts
/// with the caller's signal mask. The kernel stores its tid at `tid` (a
/// live, aligned word) and clears it, waking futex waiters, once it has
/// ended. Err(-errno).
///
/// # Safety
/// As above: the stack is the thread's alone, and `f(arg)` is sound on
/// any thread of this process.
pub unsafe fn spawn_raw_thread(
    stack_top: usize,
    tid: *mut i32,
    f: extern "C" fn(usize),
    arg: usize,
) -> Result<(), i64> {
    let flags = libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID;
    let ret: isize;
    // SAFETY: clone of this thread onto the given stack. The child touches
    // nothing of the parent's frame: it calls `f(arg)` from registers the
    // kernel preserved (r12, r13), then ends the thread; the kernel clears
    // `tid` when it has ended.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r13",
            "call r12",
            "mov eax, 60",
            "xor edi, edi",
            "syscall",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone as isize => ret,
            in("rdi") flags as usize,
            in("rsi") stack_top,
            in("rdx") tid,
            in("r10") tid,
            in("r8") 0usize,
            in("r12") f as *const () as usize,
            in("r13") arg,
            lateout("rcx") _,
            lateout("r11") _,
        )
    };
    if ret < 0 {
        return Err(ret as i64);
    }
    Ok(())
}

/// Close a descriptor, ignoring errors.
pub fn close(fd: c_int) {
    // SAFETY: closing a descriptor number; at worst EBADF.
    unsafe { libc::syscall(libc::SYS_close, fd) };
}

/// `openat` straight to the kernel (no wrapper, no recording).
pub fn openat(dirfd: c_int, path: &core::ffi::CStr, flags: c_int) -> Result<c_int, i32> {
    // SAFETY: path is NUL-terminated and outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat,
            dirfd,
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            0,
        )
    };
    if r < 0 {
        Err(crate::interpose::errno())
    } else {
        Ok(r as c_int)
    }
}

/// A pipe (read end, write end) made with `flags` (O_CLOEXEC, O_NONBLOCK).
pub fn pipe(flags: c_int) -> Result<[c_int; 2], i32> {
    let mut p = [0 as c_int; 2];
    // SAFETY: pipe2 into a local array.
    if unsafe { libc::syscall(libc::SYS_pipe2, p.as_mut_ptr(), flags) } != 0 {
        return Err(crate::interpose::errno());
    }
    Ok(p)
}

/// Read up to `buf.len()` bytes at offset 0 of `fd`.
pub fn pread_all(fd: c_int, buf: &mut [u8]) -> usize {
    pread_at(fd, buf, 0)
}

/// Read up to `buf.len()` bytes at offset `at` of `fd`.
pub fn pread_at(fd: c_int, buf: &mut [u8], at: u64) -> usize {
    let mut n = 0;
    while n < buf.len() {
        // SAFETY: writing inside `buf`.
        let r = unsafe {
            libc::pread(
                fd,
                buf[n..].as_mut_ptr() as *mut c_void,
                buf.len() - n,
                (at + n as u64) as i64,
            )
        };
        if r <= 0 {
            break;
        }
        n += r as usize;
    }
    n
}

/// Read a small file relative to `dirfd` into `buf`; returns the bytes read.
pub fn read_small(dirfd: c_int, path: &core::ffi::CStr, buf: &mut [u8]) -> Option<usize> {
    let fd = openat(dirfd, path, libc::O_RDONLY).ok()?;
    let n = pread_all(fd, buf);
    close(fd);
    Some(n)
}

/// fstat of `fd`. Raw system call: signal-safe, never interposed.
pub fn fstat(fd: c_int) -> Option<libc::stat> {
    // SAFETY: all-zero is a valid stat; fstat writes into it.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: a live stat to write; a bad descriptor fails.
    (unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st as *mut libc::stat) } == 0).then_some(st)
}

/// stat of `path` (not following a last symbolic link with `nofollow`).
/// Raw system call: signal-safe, never interposed.
pub fn stat_path(path: &core::ffi::CStr, nofollow: bool) -> Option<libc::stat> {
    // SAFETY: all-zero is a valid stat; newfstatat writes into it.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a live stat.
    let r = unsafe {
        libc::syscall(
            libc::SYS_newfstatat,
            libc::AT_FDCWD,
            path.as_ptr(),
            &mut st as *mut libc::stat,
            if nofollow {
                libc::AT_SYMLINK_NOFOLLOW
            } else {
                0
            },
        )
    };
    (r == 0).then_some(st)
}

/// A `fmt::Write` into a fixed buffer (no allocation: for paths made in
/// signal handlers and frozen code).
pub struct Cursor<'a>(&'a mut [u8], usize);

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Cursor(buf, 0)
    }
}

impl core::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.1 + s.len();
        if end > self.0.len() {
            return Err(core::fmt::Error);
        }
        self.0[self.1..end].copy_from_slice(s.as_bytes());
        self.1 = end;
        Ok(())
    }
}

/// `readlinkat` into `buf`; returns the length.
pub fn readlinkat(dirfd: c_int, path: &core::ffi::CStr, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    let r =
        unsafe { libc::readlinkat(dirfd, path.as_ptr(), buf.as_mut_ptr() as *mut _, buf.len()) };
    if r < 0 {
        None
    } else {
        Some(r as usize)
    }
}

/// Iterate the numeric entries of an open directory (e.g. /proc/self/task)
/// with getdents64, from its start. Calls `f` for each number.
pub fn for_each_numeric_entry(dirfd: c_int, mut f: impl FnMut(i64)) {
    for_each_entry(dirfd, |_, name| {
        if let Some(v) = parse_i64(name) {
            f(v);
        }
    });
}

/// Iterate the entries of an open directory with getdents64, from its
/// start: `f` gets each one's inode number and name.
pub fn for_each_entry(dirfd: c_int, mut f: impl FnMut(u64, &[u8])) {
    // SAFETY: rewinding a directory descriptor (raw: `lseek` is interposed).
    unsafe { libc::syscall(libc::SYS_lseek, dirfd, 0, libc::SEEK_SET) };
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: the kernel fills at most buf.len() bytes of dirents.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, dirfd, buf.as_mut_ptr(), buf.len()) };
        if n <= 0 {
            return;
        }
        let mut off = 0usize;
        while off < n as usize {
            // linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name
            let ino = u64::from_ne_bytes(buf[off..off + 8].try_into().unwrap_or([0; 8]));
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = &buf[off + 19..off + reclen];
            let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
            f(ino, &name[..end]);
            off += reclen;
        }
    }
}

/// Parse a decimal integer (no sign).
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
    }
    Some(v)
}

/// Find `key` at the start of a line in `text` and return the rest of that
/// line, trimmed (for /proc status-like files).
pub fn field<'a>(text: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    for line in text.split(|&c| c == b'\n') {
        if line.starts_with(key) {
            let rest = &line[key.len()..];
            let start = rest
                .iter()
                .position(|c| !c.is_ascii_whitespace())
                .unwrap_or(rest.len());
            return Some(&rest[start..]);
        }
    }
    None
}

/// Parse a hexadecimal number.
pub fn parse_hex(s: &[u8]) -> Option<u64> {
    let s = s.split(|c| c.is_ascii_whitespace()).next()?;
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        let d = (c as char).to_digit(16)? as u64;
        v = v.checked_mul(16)?.checked_add(d)?;
    }
    Some(v)
}

/// Parse an octal number.
pub fn parse_oct(s: &[u8]) -> Option<u64> {
    let s = s.split(|c| c.is_ascii_whitespace()).next()?;
    let mut v: u64 = 0;
    for &c in s {
        let d = (c as char).to_digit(8)? as u64;
        v = v.checked_mul(8)?.checked_add(d)?;
    }
    Some(v)
}

/// Move descriptor `fd` to the highest free number below the soft
/// descriptor limit (so it never takes a number the program would get)
/// and mark it close-on-exec. Returns the new number.
pub fn move_high(fd: c_int) -> Result<c_int, i32> {
    let high = dup_high(fd)?;
    close(fd);
    Ok(high)
}

/// A copy of `fd` (close-on-exec) at a free number near the descriptor
/// limit; when the program holds all of the top 256, the lowest free one
/// above half the limit.
pub fn dup_high(fd: c_int) -> Result<c_int, i32> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: writing into a live rlimit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let top = (lim.rlim_cur.min(1 << 20) as c_int).max(64) - 1;
    let mut cand = top;
    while cand > fd && cand > top - 256 {
        // SAFETY: F_GETFD only probes whether `cand` is open (raw: `fcntl` is interposed).
        let used = unsafe { libc::syscall(libc::SYS_fcntl, cand, libc::F_GETFD) } >= 0;
        if !used {
            // SAFETY: dup3 onto a free number, atomically with O_CLOEXEC.
            let r = unsafe { libc::syscall(libc::SYS_dup3, fd, cand, libc::O_CLOEXEC) };
            if r >= 0 {
                return Ok(cand);
            }
        }
        cand -= 1;
    }
    // SAFETY: F_DUPFD_CLOEXEC of a descriptor we own.
    let r = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_DUPFD_CLOEXEC, top / 2) };
    if r >= 0 {
        Ok(r as c_int)
    } else {
        Err(libc::EMFILE)
    }
}

/// rt_sigprocmask on the calling thread with a 64-bit mask. Signal-safe.
pub fn sigprocmask(how: c_int, set: u64) {
    // SAFETY: rt_sigprocmask with an 8-byte set and no old set.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            &set as *const u64,
            core::ptr::null_mut::<u64>(),
            8,
        )
    };
}

/// Arm kernel timer `id`: first expiry in `value_ns`, then every
/// `interval_ns` (0: once). Signal-safe.
pub fn timer_settime(id: c_int, interval_ns: u64, value_ns: u64) {
    let spec = libc::itimerspec {
        it_interval: timespec(interval_ns),
        it_value: timespec(value_ns),
    };
    // SAFETY: timer_settime from a live itimerspec, no old value.
    unsafe {
        libc::syscall(
            libc::SYS_timer_settime,
            id,
            0,
            &spec,
            core::ptr::null_mut::<libc::itimerspec>(),
        )
    };
}

/// The kernel's action for `sig` (`struct kernel_sigaction`: handler,
/// flags, restorer, mask), after installing `new` if given. Signal-safe.
pub fn kernel_sigaction(sig: c_int, new: Option<&[u64; 4]>) -> Option<[u64; 4]> {
    let mut old = [0u64; 4];
    // SAFETY: raw rt_sigaction between buffers of the kernel's layout.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            new.map_or(core::ptr::null(), |n| n.as_ptr()),
            old.as_mut_ptr(),
            8,
        )
    };
    (r == 0).then_some(old)
}

/// Every descriptor open in this process now (from /proc/self/fd, less
/// the one used to read it), in no particular order.
pub fn open_fds() -> Vec<c_int> {
    let Ok(dir) = openat(
        libc::AT_FDCWD,
        c"/proc/self/fd",
        libc::O_RDONLY | libc::O_DIRECTORY,
    ) else {
        return Vec::new();
    };
    let mut fds = Vec::new();
    for_each_numeric_entry(dir, |n| fds.push(n as c_int));
    close(dir);
    fds.retain(|&fd| fd != dir);
    fds
}

/// `struct clone_args` for clone3, with the fields ckpt uses (the others
/// zero). `set_tid` must outlive the call it is passed to.
pub fn clone_args(
    flags: u64,
    child_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: &[libc::pid_t],
) -> [u64; 11] {
    // flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
    // tls, set_tid, set_tid_size, cgroup.
    [
        flags,
        0,
        child_tid,
        0,
        exit_signal,
        stack,
        stack_size,
        tls,
        set_tid.as_ptr() as u64,
        set_tid.len() as u64,
        0,
    ]
}

/// The calling thread's capability sets: (effective, permitted,
/// inheritable), 64-bit masks.
pub fn capabilities() -> (u64, u64, u64) {
    // _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
    let header: [u32; 2] = [0x2008_0522, 0];
    let mut d = [0u32; 6];
    // SAFETY: capget of the calling thread into a local of the kernel's layout.
    unsafe { libc::syscall(libc::SYS_capget, header.as_ptr(), d.as_mut_ptr()) };
    let word = |lo: u32, hi: u32| lo as u64 | (hi as u64) << 32;
    (word(d[0], d[3]), word(d[1], d[4]), word(d[2], d[5]))
}

/// Set the calling thread's capability sets (lowering always works;
/// raising beyond the permitted set fails, harmlessly).
pub fn set_capabilities(eff: u64, prm: u64, inh: u64) {
    let header: [u32; 2] = [0x2008_0522, 0];
    let d: [u32; 6] = [
        eff as u32,
        prm as u32,
        inh as u32,
        (eff >> 32) as u32,
        (prm >> 32) as u32,
        (inh >> 32) as u32,
    ];
    // SAFETY: capset of the calling thread from a local of the kernel's layout.
    unsafe { libc::syscall(libc::SYS_capset, header.as_ptr(), d.as_ptr()) };
}

/// fcntl commands for signal-driven I/O the libc crate lacks (x86_64).
pub const F_SETSIG: i32 = 10;
pub const F_GETSIG: i32 = 11;
pub const F_SETOWN_EX: i32 = 15;
pub const F_GETOWN_EX: i32 = 16;
pub const F_OWNER_TID: i32 = 0;
pub const F_OWNER_PID: i32 = 1;
pub const F_OWNER_PGRP: i32 = 2;

/// `struct f_owner_ex`.
#[repr(C)]
pub struct OwnerEx {
    pub kind: i32,
    pub pid: i32,
}
