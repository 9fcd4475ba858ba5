//! The pager: `ckpt restart` fills the restored program's anonymous
//! memory itself, on every core, through a userfaultfd of the program's
//! address space.
//!
//! ```text
//! ckpt restart (pager)                    restorer (the program's process)
//!   socketpair, /dev/userfaultfd  ──exec──▶ userfaultfd of its own mm
//!                                           (USERFAULTFD_IOC_NEW, or the
//!                                           syscall, user-mode faults only)
//!                                           maps regions, registers the
//!                                           paged ones (missing pages)
//!   recvmsg ◀──────── uffd (SCM_RIGHTS) ──── copies the other extents
//!   UFFDIO_COPY every stored page:
//!     raw: from a mapping of the image
//!     compressed: each block decompressed
//!     into a per-thread buffer
//!   close uffd          ◀──────── 'D' ───── its own copies done
//!   cut files back (`then`)
//!   status byte 0 ────────────────────────▶ goes on (final protections,
//!                                           jump into the program)
//! ```
//!
//! UFFDIO_COPY allocates each page and fills it in one step (no zeroing
//! first) and reads its source from this process: a compressed image is
//! decompressed straight into the program, without the memfd (and its
//! zeroed pages and second copy) of [`crate::staging`].
//!
//! Only for a single process restarted in a pid namespace (this command
//! stays as the program's parent there), with at least [`MIN_BYTES`] of
//! anonymous memory to fill. `--no-namespace` (this command
//! becomes the restorer) and trees (each process's restorer is a child of
//! another process of the tree) take the restorer's own copy and
//! `staging`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

use ckpt::image::{Meta, Region, RegionKind};

use crate::Failure;

const UFFD_USER_MODE_ONLY: libc::c_int = 1;
/// `_IOWR(0xAA, 0x03, struct uffdio_copy)`.
const UFFDIO_COPY: libc::c_ulong = 0xc028_aa03;
/// Raw extents are copied in pieces of at most this (work for each core,
/// progress).
const PIECE: u64 = 4 << 20;
/// Test-only: behave as if /dev/userfaultfd could not be opened.
pub const TEST_NO_DEV: &str = "CKPT_TEST_NO_DEV_USERFAULTFD";
/// Test-only: the pager appends what it did to this file
/// (`uffd=kernel|user bytes=N ok|failed`), so tests can tell it served.
const TEST_LOG: &str = "CKPT_TEST_PAGER_LOG";

/// Whether the pager fills region `r`: anonymous memory (private or
/// shared) with stored pages. [`crate::cmd_restart::write_plan`] marks
/// exactly these regions paged and leaves their extents out of the plan.
pub fn paged_region(r: &Region) -> bool {
    matches!(r.kind, RegionKind::Anonymous | RegionKind::SharedAnonymous) && !r.extents.is_empty()
}

/// Below this much anonymous memory to fill, starting a pager (a fork,
/// threads, a handshake) costs more than it saves: the restorer copies.
pub const MIN_BYTES: u64 = 16 << 20;

/// Whether a restart of `meta` in a namespace takes a pager.
pub fn worth_it(meta: &Meta) -> bool {
    let bytes: u64 = meta
        .regions
        .iter()
        .filter(|r| paged_region(r))
        .flat_map(|r| &r.extents)
        .map(|e| e.len)
        .sum();
    bytes >= MIN_BYTES
}

/// A pager process, waiting for a restorer's userfaultfd.
///
/// It is a child of the restart command forked before the command
/// unshares its namespaces: a process whose pid namespace for children
/// (or time namespace) differs from its own cannot make threads, and the
/// fill wants one per core. It dies with the command (PR_SET_PDEATHSIG);
/// the restorer then reads EOF instead of its status byte and fails.
pub struct Pager {
    /// The restorer's end of the socket (inherited across exec).
    theirs: RawFd,
    /// /dev/userfaultfd for the restorer (inherited), or -1.
    dev: RawFd,
    /// The pager process.
    pid: libc::pid_t,
}

impl Pager {
    /// Start a pager for `meta`'s paged regions (read from `sources`: the
    /// image, then its earlier images), or `None` when this kernel gives
    /// this user no userfaultfd at all (then the restorer copies, as
    /// before pagers).
    ///
    /// `then` runs in the pager once every page is in and the restorer
    /// copied its own extents, before the restorer may go on (the
    /// restart's file rollbacks: so a block that fails to decompress
    /// leaves every file as it was); its error fails the restart.
    pub fn start(
        meta: &Meta,
        sources: &[i32],
        then: &dyn Fn() -> Result<(), String>,
    ) -> Result<Option<Pager>, Failure> {
        let dev = if std::env::var_os(TEST_NO_DEV).is_some() {
            -1
        } else {
            // SAFETY: open of a NUL-terminated path. Not CLOEXEC: the
            // restorer makes its userfaultfd with it.
            unsafe { libc::open(c"/dev/userfaultfd".as_ptr(), libc::O_RDWR) }
        };
        if dev < 0 {
            // The restorer will use the syscall (user-mode faults only):
            // see that this kernel and user may.
            // SAFETY: userfaultfd takes flags only.
            let probe = unsafe {
                libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | UFFD_USER_MODE_ONLY)
            };
            if probe < 0 {
                return Ok(None);
            }
            // SAFETY: closing the probe we just made.
            unsafe { libc::close(probe as i32) };
        }
        let close_dev = || {
            if dev >= 0 {
                // SAFETY: our own descriptor.
                unsafe { libc::close(dev) };
            }
        };
        let mut sv = [-1; 2];
        // SAFETY: socketpair into a local array.
        if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) } != 0 {
            let e = std::io::Error::last_os_error();
            close_dev();
            return Err(Failure::new(format!("cannot make a socket pair: {e}")));
        }
        let (ours, theirs) = (sv[0], sv[1]);
        // SAFETY: getpid cannot fail.
        let me = unsafe { libc::getpid() };
        // SAFETY: fork of this process, single-threaded now (the threads
        // that checked the image were joined).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            let e = std::io::Error::last_os_error();
            close_dev();
            // SAFETY: our own descriptors.
            unsafe {
                libc::close(ours);
                libc::close(theirs);
            }
            return Err(Failure::new(format!("cannot start the pager: {e}")));
        }
        if pid == 0 {
            // SAFETY: attributes of this new process, then closing the
            // descriptors meant for the restorer.
            unsafe {
                libc::prctl(libc::PR_SET_NAME, c"ckpt-pager".as_ptr());
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != me {
                    libc::_exit(1);
                }
                libc::close(theirs);
                if dev >= 0 {
                    libc::close(dev);
                }
            }
            serve(ours, meta, sources, then);
            // SAFETY: ending the pager without running the command's exit code.
            unsafe { libc::_exit(0) }
        }
        // SAFETY: the pager's end, closed here.
        unsafe { libc::close(ours) };
        Ok(Some(Pager { theirs, dev, pid }))
    }

    /// (the restorer's socket, /dev/userfaultfd or -1), for the plan.
    pub fn plan_fds(&self) -> (i32, i32) {
        (self.theirs, self.dev)
    }

    /// Once the restorer's process exists (it has its own copies of the
    /// descriptors meant for it): close ours and wait until the pager
    /// is done, which is when the memory is filled, or the restorer
    /// ended without handing its userfaultfd over.
    pub fn wait(mut self) {
        self.close_theirs();
        let mut st = 0;
        // SAFETY: waiting for our own child.
        while unsafe { libc::waitpid(self.pid, &mut st, 0) } < 0
            && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {}
        self.pid = -1;
    }

    /// Not used after all: the pager sees EOF and ends.
    pub fn abandon(self) {
        self.wait();
    }

    fn close_theirs(&mut self) {
        for fd in [self.theirs, self.dev] {
            if fd >= 0 {
                // SAFETY: descriptors this pager made.
                unsafe { libc::close(fd) };
            }
        }
        self.theirs = -1;
        self.dev = -1;
    }
}

impl Drop for Pager {
    fn drop(&mut self) {
        if self.pid > 0 {
            self.close_theirs();
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// The pager process's work: take the restorer's userfaultfd from
/// `sock`, fill every paged region, wait until the restorer copied the
/// rest, run `then`, answer with the status byte. Errors are said here;
/// the restorer then ends with status 71.
fn serve(sock: RawFd, meta: &Meta, sources: &[i32], then: &dyn Fn() -> Result<(), String>) {
    let (uffd, tag) = match recv_fd(sock) {
        Ok(Some(got)) => got,
        // The restorer ended before (its exit status says why).
        Ok(None) => return,
        Err(e) => {
            eprintln!("ckpt restart: cannot take the restorer's userfaultfd: {e}");
            return;
        }
    };
    let mut filled = fill(uffd.as_raw_fd(), meta, sources);
    // Closed before the answer: the regions are plain memory again
    // when the program runs.
    drop(uffd);
    if filled.is_ok() {
        // The restorer's byte once its own copies are done.
        let mut b = [0u8; 1];
        let n = loop {
            // SAFETY: read into a local byte.
            let n = unsafe { libc::read(sock, b.as_mut_ptr().cast(), 1) };
            if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break n;
            }
        };
        if n != 1 {
            // The restorer ended (its exit status says why): no rollback.
            return;
        }
        if let Err(why) = then() {
            filled = Err(why);
        }
    }
    if let Some(log) = std::env::var_os(TEST_LOG) {
        let line = format!(
            "uffd={} bytes={} {}\n",
            if tag == b'K' { "kernel" } else { "user" },
            filled.as_ref().map_or(0, |n| *n),
            if filled.is_ok() { "ok" } else { "failed" }
        );
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    }
    let status = match filled {
        Ok(_) => 0u8,
        Err(why) => {
            eprintln!("ckpt restart: cannot fill the program's memory: {why}");
            1
        }
    };
    // SAFETY: one byte from a live buffer to our socket.
    unsafe { libc::write(sock, [status].as_ptr().cast(), 1) };
}

/// One byte and a descriptor (SCM_RIGHTS) from `sock`; `None` at EOF.
fn recv_fd(sock: RawFd) -> std::io::Result<Option<(OwnedFd, u8)>> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // Room for one cmsghdr with one int (CMSG_SPACE(4) = 24), u64-aligned.
    let mut control = [0u64; 4];
    loop {
        // SAFETY: an all-zero msghdr is valid; the pointers set below
        // stay live across the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: recvmsg into the buffers `msg` describes.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(None);
        }
        // SAFETY: walking the control messages recvmsg filled in.
        let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        // SAFETY: `cmsg` is null or a header inside `control`.
        let Some(c) = (unsafe { cmsg.as_ref() }) else {
            return Err(std::io::Error::other("no descriptor came with the message"));
        };
        if c.cmsg_level != libc::SOL_SOCKET || c.cmsg_type != libc::SCM_RIGHTS {
            return Err(std::io::Error::other("an unexpected control message came"));
        }
        // SAFETY: an SCM_RIGHTS message carries at least one int.
        let fd = unsafe { (libc::CMSG_DATA(cmsg) as *const i32).read_unaligned() };
        // SAFETY: the kernel installed `fd` in this process for us.
        return Ok(Some((unsafe { OwnedFd::from_raw_fd(fd) }, byte[0])));
    }
}

/// A read-only mapping of a whole file.
struct Mapped {
    base: *const u8,
    len: usize,
}

// SAFETY: a read-only mapping: sharing it between threads only reads.
unsafe impl Sync for Mapped {}

impl Mapped {
    fn new(fd: RawFd) -> Result<Mapped, String> {
        // SAFETY: a zeroed stat is valid; fstat fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat into a local struct.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return Err(format!(
                "cannot stat an image: {}",
                std::io::Error::last_os_error()
            ));
        }
        let len = st.st_size as usize;
        if len == 0 {
            return Ok(Mapped {
                base: std::ptr::null(),
                len: 0,
            });
        }
        // SAFETY: a fresh read-only private mapping of the whole file.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                fd,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "cannot map an image: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: advice on our own mapping.
        unsafe { libc::madvise(base, len, libc::MADV_SEQUENTIAL) };
        Ok(Mapped {
            base: base as *const u8,
            len,
        })
    }

    /// The address of `[off, off+len)` of the file, if it lies inside.
    fn at(&self, off: u64, len: u64) -> Option<*const u8> {
        let end = off.checked_add(len)?;
        (end <= self.len as u64).then(|| self.base.wrapping_add(off as usize))
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: our own mapping, no longer used.
            unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
        }
    }
}

/// A page-aligned buffer (an anonymous mapping).
struct Buffer {
    base: *mut u8,
    len: usize,
}

impl Buffer {
    fn new(len: usize) -> Result<Buffer, String> {
        // SAFETY: a fresh private anonymous mapping.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len.max(1),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "cannot make a buffer of {len} bytes: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Buffer {
            base: base.cast(),
            len,
        })
    }

    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` bytes, writable, owned by `self`.
        unsafe { std::slice::from_raw_parts_mut(self.base, self.len) }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used.
        unsafe { libc::munmap(self.base.cast(), self.len.max(1)) };
    }
}

/// Part of the work.
enum Job {
    /// `len` stored bytes at `off` of source `src` go to `addr`.
    Raw {
        src: usize,
        off: u64,
        addr: u64,
        len: u64,
    },
    /// A compressed block at `off` of source `src`, and the pages of it
    /// that go to memory: (address, where in the block, length).
    Block {
        src: usize,
        off: u64,
        codec: u8,
        stored: u64,
        block: u64,
        parts: Vec<(u64, u64, u64)>,
    },
}

/// The work for `meta`'s paged regions, in file order.
fn jobs(meta: &Meta, sources: &[i32]) -> Result<(Vec<Job>, u64), String> {
    use std::collections::BTreeMap;
    let mut raw = Vec::new();
    let mut blocks: BTreeMap<(usize, u64), Job> = BTreeMap::new();
    let mut total = 0;
    for e in meta
        .regions
        .iter()
        .filter(|r| paged_region(r))
        .flat_map(|r| &r.extents)
    {
        let src = e.src as usize;
        if src >= sources.len() {
            return Err(format!(
                "the memory at {:#x} refers to an earlier image the image does not name",
                e.addr
            ));
        }
        total += e.len;
        if e.codec == 0 {
            let mut done = 0;
            while done < e.len {
                let n = (e.len - done).min(PIECE);
                raw.push(Job::Raw {
                    src,
                    off: e.file_offset + done,
                    addr: e.addr + done,
                    len: n,
                });
                done += n;
            }
            continue;
        }
        if e.block > 64 * ckpt::memory::compress::MAX_BLOCK
            || e.skip.checked_add(e.len).is_none_or(|end| end > e.block)
        {
            return Err(format!(
                "the block of the memory at {:#x} is malformed",
                e.addr
            ));
        }
        let job = blocks.entry((src, e.file_offset)).or_insert(Job::Block {
            src,
            off: e.file_offset,
            codec: e.codec,
            stored: e.stored,
            block: e.block,
            parts: Vec::new(),
        });
        if let Job::Block {
            codec,
            stored,
            block,
            parts,
            ..
        } = job
        {
            if (*codec, *stored, *block) != (e.codec, e.stored, e.block) {
                return Err(format!(
                    "the memory at {:#x} describes a block another extent describes otherwise",
                    e.addr
                ));
            }
            parts.push((e.addr, e.skip, e.len));
        }
    }
    raw.extend(blocks.into_values());
    raw.sort_by_key(|j| match j {
        Job::Raw { src, off, .. } | Job::Block { src, off, .. } => (*src, *off),
    });
    Ok((raw, total))
}

/// `struct uffdio_copy`.
#[repr(C)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

/// Copy `len` bytes at `src` (in this process) to `dst` in the
/// userfaultfd's address space: its missing pages, allocated and filled.
fn copy(uffd: RawFd, dst: u64, src: *const u8, len: u64) -> Result<(), String> {
    let mut done = 0u64;
    let mut retries = 0u32;
    while done < len {
        let mut c = UffdioCopy {
            dst: dst + done,
            src: src as u64 + done,
            len: len - done,
            mode: 0,
            copy: 0,
        };
        // SAFETY: UFFDIO_COPY with a complete uffdio_copy; it reads `len`
        // bytes at `src`, which the caller keeps mapped.
        if unsafe { libc::ioctl(uffd, UFFDIO_COPY, &mut c) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if c.copy > 0 {
            done += c.copy as u64;
            continue;
        }
        if e.raw_os_error() == Some(libc::EAGAIN) && retries < 1_000_000 {
            retries += 1;
            std::thread::yield_now();
            continue;
        }
        let why = match e.raw_os_error() {
            Some(libc::EEXIST) => "a page is there already".to_string(),
            Some(libc::ESRCH) => "the program's process is gone".to_string(),
            _ => e.to_string(),
        };
        return Err(format!(
            "cannot copy memory to {:#x} ({} bytes): {why}",
            dst + done,
            len - done
        ));
    }
    Ok(())
}

/// Fill every paged region of `meta` through `uffd`, on every core;
/// the bytes filled.
fn fill(uffd: RawFd, meta: &Meta, sources: &[i32]) -> Result<u64, String> {
    let (jobs, total) = jobs(meta, sources)?;
    let maps = sources
        .iter()
        .map(|&fd| Mapped::new(fd))
        .collect::<Result<Vec<_>, _>>()?;
    let biggest = jobs
        .iter()
        .map(|j| match j {
            Job::Block { block, .. } => *block,
            Job::Raw { .. } => 0,
        })
        .max()
        .unwrap_or(0) as usize;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16)
        .min(jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let mut bar = crate::progress::Bar::new(crate::progress::is_wanted(), "restoring", total);
    let work = || -> Result<(), String> {
        let mut buf = if biggest > 0 {
            Some(Buffer::new(biggest)?)
        } else {
            None
        };
        while !stop.load(Relaxed) {
            let Some(job) = jobs.get(next.fetch_add(1, Relaxed)) else {
                return Ok(());
            };
            let r = run_job(uffd, job, &maps, buf.as_mut(), &done);
            if r.is_err() {
                stop.store(true, Relaxed);
                return r;
            }
        }
        Ok(())
    };
    // With a bar to draw this thread draws it, else it works too.
    let drawing = crate::progress::is_wanted();
    let failed = std::thread::scope(|s| {
        let spawned = if drawing { workers } else { workers - 1 };
        let handles: Vec<_> = (0..spawned).map(|_| s.spawn(work)).collect();
        let mine = if drawing { Ok(()) } else { work() };
        while drawing && !handles.iter().all(|h| h.is_finished()) {
            bar.set(done.load(Relaxed));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let theirs = handles.into_iter().map(|h| {
            h.join()
                .unwrap_or_else(|_| Err("a filling thread failed".into()))
        });
        std::iter::once(mine).chain(theirs).find_map(|r| r.err())
    });
    bar.finish();
    // The pager ends right after: unmapping a GiB of the image's page
    // table entries here would only keep the program waiting.
    std::mem::forget(maps);
    failed.map_or(Ok(total), Err)
}

fn run_job(
    uffd: RawFd,
    job: &Job,
    maps: &[Mapped],
    buf: Option<&mut Buffer>,
    done: &AtomicU64,
) -> Result<(), String> {
    match job {
        Job::Raw {
            src,
            off,
            addr,
            len,
        } => {
            let Some(from) = maps[*src].at(*off, *len) else {
                return Err(format!("the image ends before the memory at {addr:#x}"));
            };
            copy(uffd, *addr, from, *len)?;
            done.fetch_add(*len, Relaxed);
        }
        Job::Block {
            src,
            off,
            codec,
            stored,
            block,
            parts,
        } => {
            let first = parts.first().map_or(0, |p| p.0);
            let Some(from) = maps[*src].at(*off, *stored) else {
                return Err(format!("the image ends before the memory at {first:#x}"));
            };
            // SAFETY: `from` points at `stored` bytes inside the mapping
            // (checked by `at`), which lives until every job is done.
            let input = unsafe { std::slice::from_raw_parts(from, *stored as usize) };
            let Some(buf) = buf else {
                return Err("no buffer for a compressed block".into());
            };
            let out = &mut buf.as_mut()[..*block as usize];
            ckpt::memory::compress::decompress(*codec, input, out).map_err(|why| {
                format!("corrupt image: the memory at {first:#x} cannot be decompressed: {why}")
            })?;
            for &(addr, skip, len) in parts {
                copy(uffd, addr, out[skip as usize..].as_ptr(), len)?;
                done.fetch_add(len, Relaxed);
            }
        }
    }
    Ok(())
}
