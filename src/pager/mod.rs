//! The pager: `ckpt restart` fills the restored program's anonymous
//! memory itself, on every core, through a userfaultfd of the program's
//! address space.
//!
//! ```text
//! ckpt restart ─fork─▶ pager                restorer (the program's process)
//!   socketpair, /dev/userfaultfd  ───exec──▶ userfaultfd of its own mm
//!                                            (USERFAULTFD_IOC_NEW, or the
//!                                            syscall, user-mode faults only)
//!                                            maps regions, registers the
//!                                            paged ones (missing pages)
//!          recvmsg ◀──── uffd (SCM_RIGHTS) ── copies the other extents
//!   (lazy) ◀─ a copy of the uffd ─┤
//!          UFFDIO_COPY every stored page (see `fill`)
//!                  ◀──────── 'D' ─────────── its own copies done
//!          cut files back (`then`)
//!          status byte 0 ────────────────────▶ goes on (final protections,
//!                                             jump into the program)
//! ```
//!
//! **Eager** (`ckpt restart --eager`, or without /dev/userfaultfd): the
//! pager fills everything before its status byte; the program starts
//! with all its memory in.
//!
//! **Lazy** (the default where it can be): the status byte comes as soon
//! as the restorer's own copies are done, and the program runs within
//! milliseconds whatever its size while the pager fills in the background
//! and serves first what the program touches. The pager socket stays
//! open in the program until the fill is done: forks and checkpoints wait
//! for that (`ckpt::memory::lazy`). This command keeps a copy of the
//! userfaultfd while the pager works: should the pager die, faults stay
//! blocked (the program never reads a page the image had as zeros) and
//! this command kills the program, saying why. Lazy needs a userfaultfd
//! that also serves faults the kernel takes (a read(2) into a page not
//! filled yet): from /dev/userfaultfd, or from the syscall where
//! vm.unprivileged_userfaultfd is 1; the syscall's user-mode-only one
//! would make such a read fail with EFAULT, so without either the
//! restart is eager.
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

mod fill;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use ckpt::image::{Meta, Region, RegionKind};

use crate::Failure;

const UFFD_USER_MODE_ONLY: libc::c_int = 1;
/// Test-only: behave as if /dev/userfaultfd could not be opened.
pub const TEST_NO_DEV: &str = "CKPT_TEST_NO_DEV_USERFAULTFD";
/// Test-only: the pager appends what it did to this file
/// (`uffd=kernel|user lazy|eager bytes=N faults=N removed=N moved=N
/// ok|failed`), so tests can tell it served.
const TEST_LOG: &str = "CKPT_TEST_PAGER_LOG";

/// Whether the pager fills region `r`: anonymous memory (private or
/// shared) with stored pages; when `lazy`, only regions with more than
/// [`LAZY_MIN`] stored. [`crate::cmd_restart::write_plan`] marks exactly
/// these regions paged and leaves their extents out of the plan.
pub fn paged_region(r: &Region, lazy: bool) -> bool {
    matches!(r.kind, RegionKind::Anonymous | RegionKind::SharedAnonymous)
        && !r.extents.is_empty()
        && (!lazy || r.extents.iter().map(|e| e.len).sum::<u64>() > LAZY_MIN)
}

/// In a lazy restart, regions holding at most this much are copied in by
/// the restorer before the program runs: stacks, heaps, the data of
/// libraries and of ckpt, what a program touches first. Served by faults
/// (a round trip and a piece of the image each), they made a 1 GiB
/// program answer later than an eager restart did.
pub const LAZY_MIN: u64 = 8 << 20;

/// Below this much anonymous memory to fill, starting a pager (a fork,
/// threads, a handshake) costs more than it saves: the restorer copies.
pub const MIN_BYTES: u64 = 16 << 20;

/// Whether a restart of `meta` in a namespace takes a pager.
pub fn worth_it(meta: &Meta) -> bool {
    let bytes: u64 = meta
        .regions
        .iter()
        .filter(|r| paged_region(r, false))
        .flat_map(|r| &r.extents)
        .map(|e| e.len)
        .sum();
    bytes >= MIN_BYTES
}

/// Whether a lazy restart can be had here: a userfaultfd taking kernel
/// faults (see [`Pager::start`], which decides for good).
pub fn lazy_possible() -> bool {
    let dev = std::env::var_os(TEST_NO_DEV).is_none()
        // SAFETY: access(2) of a NUL-terminated path.
        && unsafe { libc::access(c"/dev/userfaultfd".as_ptr(), libc::R_OK | libc::W_OK) } == 0;
    dev || unprivileged_kernel_faults()
}

/// Whether extent `e` of a region is checked by the pager, right before
/// it copies it, rather than before the restart starts: in a lazy
/// restart, an own extent of a lazily paged region (`lazy_region`:
/// [`paged_region`] with lazy, found once per region) that is one job of
/// the pager's (at most a piece). The program then never runs on memory
/// that fails its checksum (the pager kills it, saying so), and a large
/// program need not wait for all of its image to be hashed.
pub fn checked_late(lazy_region: bool, e: &ckpt::image::Extent) -> bool {
    lazy_region && e.src == 0 && e.footprint() <= fill::PIECE
}

/// An own extent of an earlier image (a source of an incremental image)
/// that a lazy restart's pager checks right before it copies from it,
/// as it does the image's own extents ([`checked_late`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LateExtent {
    /// Where its stored bytes start in that image's file, how many there
    /// are (zeros follow them up to `footprint`), their checksum.
    pub off: u64,
    pub stored: u64,
    pub footprint: u64,
    pub hash: u64,
}

/// Which own extents of `dep`, the earlier image `meta` names as source
/// `src`, the pager checks in a lazy restart of `meta` (in file order):
/// those of at most a piece that no extent outside the lazily paged
/// regions takes pages from (the restorer copies those before the
/// program runs: they are checked first). A restart from a chain of
/// images then answers as soon as one from a whole image does.
pub fn late_in_dep(meta: &Meta, src: u32, dep: &Meta) -> Vec<LateExtent> {
    let mut now: Vec<(u64, u64)> = meta
        .regions
        .iter()
        .filter(|r| !paged_region(r, true))
        .flat_map(|r| &r.extents)
        .filter(|e| e.src == src)
        .map(|e| {
            let len = if e.codec == 0 { e.len } else { e.footprint() };
            (e.file_offset, e.file_offset.saturating_add(len))
        })
        .collect();
    now.sort_unstable();
    let mut late: Vec<LateExtent> = dep
        .regions
        .iter()
        .flat_map(|r| &r.extents)
        .filter(|d| d.src == 0 && d.footprint() <= fill::PIECE)
        .map(|d| LateExtent {
            off: d.file_offset,
            stored: if d.codec == 0 { d.len } else { d.stored },
            footprint: d.footprint(),
            hash: d.hash,
        })
        .filter(|d| {
            // The first range ending after the extent starts: it overlaps
            // the extent if it starts before the extent ends.
            let i = now.partition_point(|&(_, end)| end <= d.off);
            now.get(i)
                .is_none_or(|&(start, _)| start >= d.off + d.footprint)
        })
        .collect();
    late.sort_unstable_by_key(|d| d.off);
    late
}

/// Test-only: behave as if vm.unprivileged_userfaultfd were 1.
pub const TEST_UNPRIVILEGED_FAULTS: &str = "CKPT_TEST_UNPRIVILEGED_USERFAULTFD";

/// Whether the userfaultfd syscall gives anyone a userfaultfd that takes
/// kernel faults (vm.unprivileged_userfaultfd = 1).
fn unprivileged_kernel_faults() -> bool {
    std::env::var_os(TEST_UNPRIVILEGED_FAULTS).is_some()
        || std::fs::read_to_string("/proc/sys/vm/unprivileged_userfaultfd")
            .is_ok_and(|v| v.trim() == "1")
}

/// What the plan tells the restorer of its pager.
#[derive(Clone, Copy, Debug)]
pub struct PlanFds {
    /// The restorer's end of the pager socket.
    pub sock: i32,
    /// /dev/userfaultfd, or -1.
    pub dev: i32,
    pub lazy: bool,
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
    /// Lazy: the pager's end of the socket, kept here too (the program
    /// hears the fill is over at end of file: only once this command
    /// closed its copy of the userfaultfd), and this command's end of a
    /// socket the pager sends that copy through. -1 when eager.
    ours: RawFd,
    ctl: RawFd,
    /// The pager process.
    pid: libc::pid_t,
}

impl Pager {
    /// Start a pager for `meta`'s paged regions (read from `sources`: the
    /// image, then its earlier images), or `None` when this kernel gives
    /// this user no userfaultfd at all (then the restorer copies, as
    /// before pagers). `lazy`: the program may run before every page is
    /// in (only with /dev/userfaultfd: else the fill is eager).
    ///
    /// `then` runs in the pager once the restorer copied its own extents
    /// (eager: and every page is in), before the restorer may go on: the
    /// restart's file rollbacks, so a block that fails to decompress
    /// during an eager fill leaves every file as it was; its error fails
    /// the restart.
    ///
    /// `late`: extents [`checked_late`] names were not checked before,
    /// nor those of `late_deps` (for each source, see [`late_in_dep`]);
    /// the pager checks them (only ever with `lazy`: a pager that turns
    /// out eager returns `None`, and the caller checks them itself).
    pub fn start(
        meta: &Meta,
        sources: &[i32],
        late_deps: &[Vec<LateExtent>],
        lazy: bool,
        late: bool,
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
        // Lazy needs a userfaultfd that takes kernel faults: from
        // /dev/userfaultfd, or from the syscall where the system lets
        // anyone's do so.
        let lazy = lazy && (dev >= 0 || unprivileged_kernel_faults());
        if late && !lazy {
            if dev >= 0 {
                // SAFETY: our own descriptor.
                unsafe { libc::close(dev) };
            }
            return Ok(None);
        }
        let mut fds = vec![dev];
        let close_all = |fds: &[i32]| {
            for &fd in fds.iter().filter(|&&fd| fd >= 0) {
                // SAFETY: descriptors made here.
                unsafe { libc::close(fd) };
            }
        };
        let mut pair = |cloexec: bool| -> Result<(i32, i32), Failure> {
            let mut sv = [-1; 2];
            let ty = libc::SOCK_STREAM | if cloexec { libc::SOCK_CLOEXEC } else { 0 };
            // SAFETY: socketpair into a local array.
            if unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, sv.as_mut_ptr()) } != 0 {
                let e = std::io::Error::last_os_error();
                close_all(&fds);
                return Err(Failure::new(format!("cannot make a socket pair: {e}")));
            }
            fds.extend(sv);
            Ok((sv[0], sv[1]))
        };
        // `theirs` goes to the restorer (not CLOEXEC); `ours` stays here
        // and in the pager: CLOEXEC, so the restorer never holds it.
        let (ours, theirs) = pair(false)?;
        // SAFETY: FD_CLOEXEC on our own descriptor.
        unsafe { libc::fcntl(ours, libc::F_SETFD, libc::FD_CLOEXEC) };
        let (ctl, ctl_pager) = if lazy { pair(true)? } else { (-1, -1) };
        // SAFETY: getpid cannot fail.
        let me = unsafe { libc::getpid() };
        // SAFETY: fork of this process, single-threaded now (the threads
        // that checked the image were joined).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            let e = std::io::Error::last_os_error();
            close_all(&fds);
            return Err(Failure::new(format!("cannot start the pager: {e}")));
        }
        if pid == 0 {
            // SAFETY: attributes of this new process, then closing the
            // descriptors meant for the restorer and the command.
            unsafe {
                libc::prctl(libc::PR_SET_NAME, c"ckpt-pager".as_ptr());
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != me {
                    libc::_exit(1);
                }
                for fd in [theirs, dev, ctl] {
                    if fd >= 0 {
                        libc::close(fd);
                    }
                }
            }
            let late = (lazy && late).then_some(late_deps);
            let ok = serve(ours, ctl_pager, meta, sources, late, lazy, then);
            // SAFETY: ending the pager without running the command's exit code.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        // SAFETY: the pager's ends, closed here (lazy keeps `ours`).
        unsafe {
            if !lazy {
                libc::close(ours);
            }
            if ctl_pager >= 0 {
                libc::close(ctl_pager);
            }
        }
        Ok(Some(Pager {
            theirs,
            dev,
            ours: if lazy { ours } else { -1 },
            ctl,
            pid,
        }))
    }

    /// For the plan.
    pub fn plan_fds(&self) -> PlanFds {
        PlanFds {
            sock: self.theirs,
            dev: self.dev,
            lazy: self.ctl >= 0,
        }
    }

    /// Once the restorer's process `child` exists (it has its own copies
    /// of the descriptors meant for it): close ours and wait until the
    /// pager is done, which is when the memory is filled, or the restorer
    /// ended without handing its userfaultfd over. Lazy: the program runs
    /// meanwhile; should the pager fail or die, `child` is killed (its
    /// faults stay blocked on this command's copy of the userfaultfd
    /// until then) and the restart fails.
    pub fn wait(mut self, child: libc::pid_t) {
        self.close_theirs();
        let uffd = if self.ctl >= 0 {
            let got = recv_fd(self.ctl);
            // SAFETY: our own descriptor.
            unsafe { libc::close(self.ctl) };
            self.ctl = -1;
            got.ok().flatten()
        } else {
            None
        };
        let mut st = 0;
        // SAFETY: waiting for our own child.
        while unsafe { libc::waitpid(self.pid, &mut st, 0) } < 0
            && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {}
        self.pid = -1;
        if let Some(u) = uffd {
            if child > 0 && !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
                // SAFETY: killing the restarted program, our child.
                unsafe { libc::kill(child, libc::SIGKILL) };
                let how = if libc::WIFSIGNALED(st) {
                    format!("was killed by signal {}", libc::WTERMSIG(st))
                } else {
                    "failed (it said why)".to_string()
                };
                eprintln!(
                    "ckpt restart: the program was stopped: the pager filling its memory {how}, \
                     so pages the program had not touched yet could not come back (`ckpt restart --eager` fills memory before the program runs)"
                );
            }
            // Now the regions are plain memory again.
            drop(u);
        }
        if self.ours >= 0 {
            // The program's end sees end of file: the fill is over.
            // SAFETY: our own descriptor.
            unsafe { libc::close(self.ours) };
            self.ours = -1;
        }
    }

    /// Not used after all: the pager sees EOF and ends.
    pub fn abandon(self) {
        self.wait(-1);
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
            for fd in [self.ours, self.ctl] {
                if fd >= 0 {
                    // SAFETY: descriptors this pager made.
                    unsafe { libc::close(fd) };
                }
            }
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// The pager process's work: take the restorer's userfaultfd from
/// `sock` (lazy: hand a copy to the command through `ctl`), fill every
/// paged region, run `then` once the restorer copied the rest, answer
/// with the status byte. Errors are said here; the restorer then ends
/// with status 71 (or, lazy and already running, the command kills the
/// program). Whether all went well. `late`: the pager checks what it
/// copies ([`Pager::start`]), with these extents of earlier images.
fn serve(
    sock: RawFd,
    ctl: RawFd,
    meta: &Meta,
    sources: &[i32],
    late: Option<&[Vec<LateExtent>]>,
    lazy: bool,
    then: &dyn Fn() -> Result<(), String>,
) -> bool {
    // Planned while the restorer sets the program up (it waits for the
    // pager only from the handover on).
    let (late, late_deps) = (late.is_some(), late.unwrap_or(&[]));
    let planned = fill::plan(meta, sources, late_deps, lazy, late);
    let (uffd, tag) = match recv_fd(sock) {
        Ok(Some(got)) => got,
        // The restorer ended before (its exit status says why).
        Ok(None) => return true,
        Err(e) => {
            eprintln!("ckpt restart: cannot take the restorer's userfaultfd: {e}");
            return false;
        }
    };
    if lazy {
        if let Err(e) = send_fd(ctl, uffd.as_raw_fd()) {
            eprintln!("ckpt restart: cannot hand the userfaultfd to the restart command: {e}");
            return false;
        }
        // SAFETY: our own descriptor, no longer needed.
        unsafe { libc::close(ctl) };
    }
    // The restorer's byte once its own copies are done; then the file
    // cut-backs and the status byte (0: go on).
    let answered = std::cell::Cell::new(false);
    let answer = |ok: bool| -> Result<(), String> {
        answered.set(true);
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
            return Ok(());
        }
        let r = if ok { then() } else { Err(String::new()) };
        let status = if r.is_ok() { 0u8 } else { 1 };
        // SAFETY: one byte from a live buffer to our socket.
        unsafe { libc::write(sock, [status].as_ptr().cast(), 1) };
        r
    };
    let mut verdict = Ok(());
    let mut filled = fill::fill(uffd.as_raw_fd(), planned, sources, lazy, &mut || {
        verdict = answer(true);
    });
    // Closed once all is in: the regions are plain memory again (lazy:
    // once the command closed its copy too).
    drop(uffd);
    if let (Ok(_), Err(e)) = (&filled, verdict) {
        filled = Err(e);
    }
    if !answered.get() {
        if let Err(e) = answer(filled.is_ok()) {
            if filled.is_ok() {
                filled = Err(e);
            }
        }
    }
    if let Some(log) = std::env::var_os(TEST_LOG) {
        let st = filled.as_ref().map_or(fill::Stats::default(), |s| *s);
        let line = format!(
            "uffd={} {} bytes={} faults={} removed={} moved={} {}\n",
            if tag == b'K' { "kernel" } else { "user" },
            if lazy { "lazy" } else { "eager" },
            st.bytes,
            st.faults,
            st.removed,
            st.moved,
            if filled.is_ok() { "ok" } else { "failed" }
        );
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    }
    match filled {
        Ok(_) => true,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("ckpt restart: cannot fill the program's memory: {why}");
            }
            false
        }
    }
}

/// Send descriptor `fd` (SCM_RIGHTS) with one byte over `sock`.
fn send_fd(sock: RawFd, fd: RawFd) -> std::io::Result<()> {
    let byte = [b'U'];
    let mut iov = libc::iovec {
        iov_base: byte.as_ptr() as *mut _,
        iov_len: 1,
    };
    let mut control = [0u64; 4];
    // SAFETY: an all-zero msghdr is valid; the pointers set below stay
    // live across the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a size computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as usize;
    // SAFETY: the first header of `control`, large enough for one int.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
        (libc::CMSG_DATA(c) as *mut i32).write_unaligned(fd);
    }
    // SAFETY: sendmsg of the message built above.
    if unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } != 1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
