//! Raw Linux x86_64 system calls: one small function per call, errors as
//! values. Calls that only read or write memory the caller hands in as slices
//! are safe; calls that change the address space are `unsafe`.

use core::arch::asm;

const SYS_READ: usize = 0;
const SYS_WRITE: usize = 1;
const SYS_CLOSE: usize = 3;
const SYS_FSTAT: usize = 5;
const SYS_MMAP: usize = 9;
const SYS_MPROTECT: usize = 10;
const SYS_MADVISE: usize = 28;
/// Fault a range in writable, in one call (Linux 5.14+).
pub const MADV_POPULATE_WRITE: usize = 23;
const SYS_MUNMAP: usize = 11;
const SYS_PREAD64: usize = 17;
const SYS_MREMAP: usize = 25;
const SYS_PRCTL: usize = 157;
const SYS_EXIT_GROUP: usize = 231;
const SYS_OPENAT: usize = 257;
const SYS_SENDMSG: usize = 46;
const SOL_SOCKET: i32 = 1;
const SCM_RIGHTS: i32 = 1;

pub const EINTR: i32 = 4;
pub const EAGAIN: i32 = 11;
pub const PROT_READ: u32 = 1;
pub const MAP_PRIVATE: u32 = 2;
pub const AT_FDCWD: i32 = -100;
pub const O_RDONLY: usize = 0;
pub const O_CLOEXEC: usize = 0o2000000;
pub const MAP_FIXED: u32 = 0x10;
pub const MAP_FIXED_NOREPLACE: u32 = 0x10_0000;
pub const MREMAP_MAYMOVE: usize = 1;
pub const MREMAP_FIXED: usize = 2;
pub const PR_SET_NAME: usize = 15;
pub const PR_SET_MM: usize = 35;
pub const PR_SET_MM_MAP: usize = 14;

/// A positive errno value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

pub type Result<T> = core::result::Result<T, Errno>;

/// Issues a system call with up to six arguments.
///
/// # Safety
/// The call may read or write any memory its arguments point at and may change
/// the address space: the caller upholds the contract of syscall `n`.
#[inline(always)]
pub unsafe fn syscall6(
    n: usize,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the caller upholds syscall `n`'s contract; the kernel clobbers
    // only rax (result), rcx and r11, which are declared.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a1, in("rsi") a2, in("rdx") a3,
            in("r10") a4, in("r8") a5, in("r9") a6,
            lateout("rcx") _, lateout("r11") _,
            options(nostack)
        );
    }
    ret
}

pub fn check(ret: isize) -> Result<usize> {
    if (-4095..0).contains(&ret) {
        Err(Errno(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: the kernel writes at most buf.len() bytes into buf, which we borrow mutably.
    check(unsafe {
        syscall6(
            SYS_READ,
            fd as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
            0,
            0,
            0,
        )
    })
}

/// Reads up to `len` bytes at file offset `off` into `dst`.
///
/// # Safety
/// `[dst, dst+len)` must be writable memory that nothing else references.
pub unsafe fn pread64(fd: i32, dst: *mut u8, len: usize, off: u64) -> Result<usize> {
    // SAFETY: the caller guarantees dst..dst+len is writable and unaliased.
    check(unsafe {
        syscall6(
            SYS_PREAD64,
            fd as usize,
            dst as usize,
            len,
            off as usize,
            0,
            0,
        )
    })
}

pub fn write(fd: i32, buf: &[u8]) -> Result<usize> {
    // SAFETY: the kernel only reads buf.len() bytes from buf.
    check(unsafe {
        syscall6(
            SYS_WRITE,
            fd as usize,
            buf.as_ptr() as usize,
            buf.len(),
            0,
            0,
            0,
        )
    })
}

/// Writes all of `buf`, retrying short writes and EINTR; gives up silently on
/// other errors (used for diagnostics only).
pub fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(0) => return,
            Ok(n) => buf = &buf[n..],
            Err(Errno(EINTR)) => {}
            Err(_) => return,
        }
    }
}

/// `path` must end with a NUL byte.
pub fn openat(dirfd: i32, path: &[u8], flags: usize) -> Result<i32> {
    if path.last() != Some(&0) {
        return Err(Errno(22));
    }
    // SAFETY: path is a NUL-terminated string that lives across the call.
    check(unsafe {
        syscall6(
            SYS_OPENAT,
            dirfd as usize,
            path.as_ptr() as usize,
            flags,
            0,
            0,
            0,
        )
    })
    .map(|fd| fd as i32)
}

pub fn close(fd: i32) -> Result<()> {
    // SAFETY: closing a descriptor touches no memory of ours.
    check(unsafe { syscall6(SYS_CLOSE, fd as usize, 0, 0, 0, 0, 0) }).map(|_| ())
}

/// `struct msghdr` of x86_64.
#[repr(C)]
struct MsgHdr {
    name: usize,
    namelen: u32,
    _pad0: u32,
    iov: usize,
    iovlen: usize,
    control: usize,
    controllen: usize,
    flags: i32,
    _pad1: u32,
}

/// A `struct cmsghdr` carrying one descriptor (CMSG_SPACE(4) = 24 bytes).
#[repr(C)]
struct OneFd {
    len: usize,
    level: i32,
    kind: i32,
    fd: i32,
    _pad: u32,
}

/// Sends `byte` with descriptor `fd` attached (SCM_RIGHTS) on socket `sock`.
pub fn send_fd(sock: i32, byte: u8, fd: i32) -> Result<()> {
    let data = [byte];
    let iov = [data.as_ptr() as usize, 1usize];
    let cmsg = OneFd {
        len: 16 + 4, // CMSG_LEN(sizeof(int))
        level: SOL_SOCKET,
        kind: SCM_RIGHTS,
        fd,
        _pad: 0,
    };
    let msg = MsgHdr {
        name: 0,
        namelen: 0,
        _pad0: 0,
        iov: iov.as_ptr() as usize,
        iovlen: 1,
        control: &cmsg as *const OneFd as usize,
        controllen: core::mem::size_of::<OneFd>(),
        flags: 0,
        _pad1: 0,
    };
    loop {
        // SAFETY: sendmsg only reads `msg`, the iovec and the control
        // message, all live on this stack frame across the call.
        let r = check(unsafe {
            syscall6(
                SYS_SENDMSG,
                sock as usize,
                &msg as *const MsgHdr as usize,
                0,
                0,
                0,
                0,
            )
        });
        match r {
            Ok(_) => return Ok(()),
            Err(Errno(EINTR)) => {}
            Err(e) => return Err(e),
        }
    }
}

/// `struct stat` of x86_64 (144 bytes).
#[repr(C)]
pub struct Stat {
    words: [u64; 18],
}

impl Stat {
    pub const fn zeroed() -> Self {
        Stat { words: [0; 18] }
    }

    pub fn size(&self) -> u64 {
        self.words[6]
    }

    pub fn mode(&self) -> u32 {
        self.words[3] as u32
    }
}

pub fn fstat(fd: i32, st: &mut Stat) -> Result<()> {
    // SAFETY: the kernel writes exactly sizeof(struct stat) = 144 bytes into *st.
    check(unsafe { syscall6(SYS_FSTAT, fd as usize, st as *mut Stat as usize, 0, 0, 0, 0) })
        .map(|_| ())
}

/// # Safety
/// With MAP_FIXED this replaces whatever is mapped at `[addr, addr+len)`: the
/// caller guarantees nothing live (its own code, data, stack) is there.
pub unsafe fn mmap(addr: u64, len: u64, prot: u32, flags: u32, fd: i32, off: u64) -> Result<u64> {
    // SAFETY: the caller guarantees the target range holds nothing in use.
    check(unsafe {
        syscall6(
            SYS_MMAP,
            addr as usize,
            len as usize,
            prot as usize,
            flags as usize,
            fd as isize as usize,
            off as usize,
        )
    })
    .map(|a| a as u64)
}

/// # Safety
/// Nothing in `[addr, addr+len)` may be in use.
pub unsafe fn munmap(addr: u64, len: u64) -> Result<()> {
    // SAFETY: the caller guarantees the range is unused.
    check(unsafe { syscall6(SYS_MUNMAP, addr as usize, len as usize, 0, 0, 0, 0) }).map(|_| ())
}

/// # Safety
/// The old range must be unused, and with MREMAP_FIXED the new range's old
/// contents are discarded.
pub unsafe fn mremap(
    old: u64,
    old_len: u64,
    new_len: u64,
    flags: usize,
    new_addr: u64,
) -> Result<u64> {
    // SAFETY: the caller guarantees both ranges hold nothing in use.
    check(unsafe {
        syscall6(
            SYS_MREMAP,
            old as usize,
            old_len as usize,
            new_len as usize,
            flags,
            new_addr as usize,
            0,
        )
    })
    .map(|a| a as u64)
}

/// madvise(2).
///
/// # Safety
/// The advice must not discard memory anybody still needs.
pub unsafe fn madvise(addr: u64, len: u64, advice: usize) -> Result<()> {
    // SAFETY: the caller guarantees the advice is harmless for the range.
    check(unsafe { syscall6(SYS_MADVISE, addr as usize, len as usize, advice, 0, 0, 0) })
        .map(|_| ())
}

/// mprotect(2).
///
/// # Safety
/// Removing access from memory still in use faults later.
pub unsafe fn mprotect(addr: u64, len: u64, prot: u32) -> Result<()> {
    // SAFETY: the caller guarantees the range's users agree with `prot`.
    check(unsafe {
        syscall6(
            SYS_MPROTECT,
            addr as usize,
            len as usize,
            prot as usize,
            0,
            0,
            0,
        )
    })
    .map(|_| ())
}

/// # Safety
/// Pointer arguments must be valid for what `op` reads or writes.
pub unsafe fn prctl(op: usize, a2: usize, a3: usize, a4: usize, a5: usize) -> Result<usize> {
    // SAFETY: the caller guarantees the pointer arguments suit `op`.
    check(unsafe { syscall6(SYS_PRCTL, op, a2, a3, a4, a5, 0) })
}

pub fn exit_group(code: i32) -> ! {
    loop {
        // SAFETY: exit_group ends the process; it touches no memory.
        unsafe {
            syscall6(SYS_EXIT_GROUP, code as usize, 0, 0, 0, 0, 0);
        }
    }
}

/// A one-line diagnostic built without allocation; starts with "ckpt-restorer: ".
pub struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    pub fn new() -> Self {
        let mut l = Line {
            buf: [0; 512],
            len: 0,
        };
        l.s("ckpt-restorer: ");
        l
    }

    /// Appends bytes (cut at the buffer's end, leaving room for the newline).
    pub fn b(&mut self, bytes: &[u8]) -> &mut Self {
        for &c in bytes {
            if self.len >= self.buf.len() - 1 {
                break;
            }
            self.buf[self.len] = if c == b'\n' { b' ' } else { c };
            self.len += 1;
        }
        self
    }

    pub fn s(&mut self, s: &str) -> &mut Self {
        self.b(s.as_bytes())
    }

    pub fn dec(&mut self, mut v: u64) -> &mut Self {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.b(&tmp[i..])
    }

    pub fn hex(&mut self, mut v: u64) -> &mut Self {
        let mut tmp = [0u8; 18];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b"0123456789abcdef"[(v & 15) as usize];
            v >>= 4;
            if v == 0 {
                break;
            }
        }
        i -= 2;
        tmp[i] = b'0';
        tmp[i + 1] = b'x';
        self.b(&tmp[i..])
    }

    /// Appends ": errno N".
    pub fn errno(&mut self, e: Errno) -> &mut Self {
        self.s(": errno ").dec(e.0 as u64)
    }

    /// Writes the line and a newline to fd 2.
    pub fn emit(&mut self) {
        self.buf[self.len] = b'\n';
        write_all(2, &self.buf[..self.len + 1]);
    }

    /// Writes the line and exits with `code`.
    pub fn die(&mut self, code: i32) -> ! {
        self.emit();
        exit_group(code)
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}
