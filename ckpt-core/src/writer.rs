//! The image writer: a copy-on-write copy of the frozen program that
//! writes the image, makes it visible, and answers whoever asked for it,
//! while the program already runs on.
//!
//! The writer is a fork of the coordinating thread (one page-table copy:
//! the only cost the program feels) made with no exit signal, so the
//! program never sees it: not with `wait(-1)`, not as a SIGCHLD; ckpt
//! reaps it, and the shim's wait wrappers hide it from `__WALL` waits.
//! It blocks every signal (the program's handlers must never run in it),
//! leaves the program's session so a terminal's ^C does not cut an image
//! short, and closes every descriptor of the program it does not need (a
//! pipe or connection the program closes while the image is written ends
//! at once, not when the writer does). If the program ends first, the
//! writer still finishes.
//!
//! The image is written into an unnamed file (`O_TMPFILE`) when the file
//! system allows: a writer that dies for any reason leaves nothing behind.
//! It is given a name only once complete and synced, then renamed over the
//! previous image, and the directory synced. Writers publish in the order
//! their checkpoints were taken: each waits for its predecessor to end
//! before its rename, so an older image never replaces a newer one.
//!
//! Writer context: one thread, a copy of the program frozen with locks
//! possibly held, allocation routed to ckpt's scratch arena; it ends with
//! `exit_group`, never running any of the program's exit code.

use crate::control::Response;
use crate::{image, memory, sys};
use core::sync::atomic::{AtomicI32, Ordering::*};
use std::ffi::CString;
use std::path::{Path, PathBuf};

pub mod fold;

/// Who asked for the checkpoint, so the writer can answer.
#[derive(Clone, Copy)]
pub enum Requester {
    /// `ckpt checkpoint` over the control socket `sock`, answering to
    /// `from`; `nonce` is echoed in every answer (the writer's pid is not
    /// the one the command asked).
    Socket {
        sock: i32,
        from: libc::sockaddr_un,
        from_len: libc::socklen_t,
        nonce: u64,
    },
    /// `ckpt::checkpoint()`: the verdict goes back over the link.
    Api,
    /// The periodic timer: only failures are told (on stderr).
    Timer,
}

/// Where the image is being written.
pub(crate) struct Output {
    pub fd: i32,
    /// Named temporary file, when the directory refused `O_TMPFILE`.
    pub named: Option<CString>,
}

impl Output {
    /// An unnamed file in `dir`, or else the named `tmp`. Mode 0600
    /// regardless of the program's umask.
    pub fn open(dir: &CString, tmp: &CString) -> Result<Output, String> {
        let raw_open = |path: &CString, flags: i32| {
            // SAFETY: openat with a valid C path; raw (open is interposed).
            unsafe {
                libc::syscall(
                    libc::SYS_openat,
                    libc::AT_FDCWD,
                    path.as_ptr(),
                    flags | libc::O_CLOEXEC,
                    0o600,
                )
            }
        };
        let mut fd = raw_open(dir, libc::O_TMPFILE | libc::O_RDWR) as i32;
        let mut named = None;
        if fd < 0 {
            fd = raw_open(tmp, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL) as i32;
            if fd < 0 {
                let errno = crate::interpose::errno();
                // SAFETY: geteuid cannot fail.
                let euid = unsafe { libc::geteuid() };
                return Err(format!(
                    "cannot create {}: {}{}",
                    tmp.to_string_lossy(),
                    std::io::Error::from_raw_os_error(errno),
                    if errno == libc::EACCES {
                        format!(
                            " (the program writes its own image, as uid {euid}: give it a \
                             directory that uid can write, `ckpt run --dir`)"
                        )
                    } else {
                        String::new()
                    }
                ));
            }
            named = Some(tmp.clone());
        }
        let fd = sys::move_high(fd).map_err(|_| "no free descriptor for the image".to_string())?;
        crate::files::set_own(fd, true);
        Ok(Output { fd, named })
    }

    /// Give up this output (a writer that will not finish it).
    pub fn discard(&self) {
        close_own(self.fd);
        if let Some(n) = &self.named {
            // SAFETY: unlink of a C path.
            unsafe { libc::unlink(n.as_ptr()) };
        }
    }
}

/// Close one of ckpt's own descriptors.
pub(crate) fn close_own(fd: i32) {
    if fd >= 0 {
        crate::files::set_own(fd, false);
        sys::close(fd);
    }
}

/// Everything the writer needs, built by the coordinator while frozen
/// (the writer reads its own copy).
pub(crate) struct Job {
    pub meta: *mut image::Meta,
    pub out: Output,
    pub dir: PathBuf,
    pub final_path: PathBuf,
    pub seq: u64,
    /// When the checkpoint began (CLOCK_MONOTONIC ns).
    pub t0: u64,
    /// The writer's end of its link with the program: it reads how long
    /// the program was frozen, and writes its verdict.
    pub link: i32,
    /// Held open until the writer ends: its end tells the next writer.
    pub done: i32,
    /// The previous writer's `done` (read end), or -1: wait for its end
    /// before publishing.
    pub prev_done: i32,
    pub requester: Requester,
    /// How many generations of this program to keep in `dir`.
    pub keep: u32,
    /// The name every image of this program starts with.
    pub prefix: String,
}

/// The writers still to be reaped (pids; 0: free). A writer is a child of
/// the program without an exit signal: `wait(-1)` and SIGCHLD never show
/// it; ckpt reaps it, and the wait wrappers keep `__WALL` waits from
/// seeing it (see [`claim`]).
const MAX_WRITERS: usize = 16;
static WRITERS: [AtomicI32; MAX_WRITERS] = [const { AtomicI32::new(0) }; MAX_WRITERS];

/// Reap the writers that ended. Signal-safe.
pub fn reap_finished() {
    for w in WRITERS.iter() {
        let pid = w.load(Acquire);
        if pid > 0 && try_reap(pid) {
            let _ = w.compare_exchange(pid, 0, AcqRel, Relaxed);
        }
    }
}

/// Whether `pid` is one of ckpt's writers; if so, a wait of the program's
/// that returned it has reaped it (or, with `reap`, ckpt reaps it now):
/// the caller must hide it and wait again.
pub fn claim(pid: i32, reap: bool) -> bool {
    if pid <= 0 {
        return false;
    }
    for w in WRITERS.iter() {
        if w.load(Acquire) == pid {
            if reap {
                try_reap(pid);
            }
            let _ = w.compare_exchange(pid, 0, AcqRel, Relaxed);
            return true;
        }
    }
    false
}

/// Whether every child the process has left is one of ckpt's writers
/// (and there is at least one): a program's `__WALL` wait that found
/// nothing then answers as if they did not exist. Reads /proc; for the
/// wait wrappers' rare path only.
pub fn only_writers_left() -> bool {
    let (writers, others) = children();
    writers > 0 && others == 0
}

/// This process's children: (ckpt's writers and commands, the others).
/// Reads /proc without allocating.
pub fn children() -> (usize, usize) {
    let Ok(dir) = sys::openat(
        libc::AT_FDCWD,
        c"/proc/self/task",
        libc::O_RDONLY | libc::O_DIRECTORY,
    ) else {
        return (0, 0);
    };
    let (mut writers, mut others) = (0, 0);
    sys::for_each_numeric_entry(dir, |tid| {
        let mut path = [0u8; 64];
        let mut w = sys::Cursor::new(&mut path);
        let _ = core::fmt::Write::write_fmt(&mut w, format_args!("{tid}/children\0"));
        let Ok(name) = core::ffi::CStr::from_bytes_until_nul(&path) else {
            return;
        };
        let mut buf = [0u8; 4096];
        let n = sys::read_small(dir, name, &mut buf).unwrap_or(0);
        for p in buf[..n]
            .split(|b| b.is_ascii_whitespace())
            .filter(|p| !p.is_empty())
        {
            match sys::parse_i64(p) {
                Some(pid) if WRITERS.iter().any(|w| w.load(Relaxed) as i64 == pid) => writers += 1,
                _ => others += 1,
            }
        }
    });
    sys::close(dir);
    (writers, others)
}

/// Put a child of ckpt's own (started with no exit signal, like a
/// writer: the `ckpt checkpoint` command of a tree, see
/// `tree::request`) in the table, so the program's waits never see it and
/// ckpt reaps it. Signal-safe.
pub fn adopt(pid: i32) {
    for w in WRITERS.iter() {
        if w.compare_exchange(0, pid, AcqRel, Relaxed).is_ok() {
            return;
        }
    }
}

/// Whether `pid` is in the table (a writer or a command of ckpt's own,
/// not yet reaped).
pub fn is_ours(pid: i32) -> bool {
    pid > 0 && WRITERS.iter().any(|w| w.load(Relaxed) == pid)
}

/// Whether any writer may still be running or unreaped.
pub fn any() -> bool {
    WRITERS.iter().any(|w| w.load(Relaxed) > 0)
}

/// Wait until every writer of this process has ended and is reaped, at
/// most `timeout_ns`; whether none is left. Program context (not while
/// frozen: it sleeps).
pub fn wait_all(timeout_ns: u64) -> bool {
    let t0 = sys::monotonic_ns();
    loop {
        reap_finished();
        if !any() {
            return true;
        }
        if sys::monotonic_ns() - t0 > timeout_ns {
            return false;
        }
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 5_000_000,
        };
        // SAFETY: nanosleep with a live timespec.
        unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
    }
}

/// In a fork child, or after a restart: the writers are not our children.
pub fn forget_all() {
    for w in WRITERS.iter() {
        w.store(0, Relaxed);
    }
}

/// Reap writer `pid` if it ended; true when it is gone.
fn try_reap(pid: i32) -> bool {
    loop {
        // __WALL: a writer has no exit signal (a clone child), but a
        // `ckpt checkpoint` started the same way gets SIGCHLD back when it
        // execs (a plain child then).
        match waitid_raw(pid, libc::WEXITED | libc::WNOHANG | libc::__WALL) {
            Ok(got) => return got == pid,
            Err(libc::EINTR) => continue,
            // Not ours any more (reaped elsewhere).
            Err(_) => return true,
        }
    }
}

/// waitid(P_PID, pid) straight to the kernel (the shim wraps waitid):
/// the pid reaped, or 0 (WNOHANG, still running).
fn waitid_raw(pid: i32, options: i32) -> Result<i32, i32> {
    // SAFETY: a zeroed siginfo is valid; the kernel fills it.
    let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
    // SAFETY: raw waitid into a live siginfo, no rusage.
    let r = unsafe {
        libc::syscall(
            libc::SYS_waitid,
            libc::P_PID,
            pid,
            &mut info as *mut libc::siginfo_t,
            options,
            0usize,
        )
    };
    if r < 0 {
        return Err(crate::interpose::errno());
    }
    // SAFETY: si_pid is valid for a CLD_* siginfo (0 when none).
    Ok(unsafe { info.si_pid() })
}

/// Start the writer for `job` (frozen program): a fork of this thread
/// with no exit signal. Returns its pid.
pub(crate) fn spawn(job: &Job) -> Result<i32, String> {
    reap_finished();
    let Some(slot) = WRITERS.iter().find(|w| w.load(Acquire) == 0) else {
        return Err(format!(
            "{MAX_WRITERS} images of this process are being written already"
        ));
    };
    // SAFETY: clone without CLONE_VM: the child gets a private copy of
    // this thread only and returns here on its own copy of the stack.
    let pid = unsafe { libc::syscall(libc::SYS_clone, 0, 0, 0, 0, 0) };
    if pid < 0 {
        return Err(format!(
            "cannot fork the image writer: {}",
            std::io::Error::from_raw_os_error(crate::interpose::errno())
        ));
    }
    if pid == 0 {
        writer_main(job);
    }
    slot.store(pid as i32, Release);
    Ok(pid as i32)
}

/// Kill a writer that must not finish (its output is discarded).
pub(crate) fn kill(pid: i32) {
    // SAFETY: killing our own clone child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    while waitid_raw(pid, libc::WEXITED | libc::__WCLONE) == Err(libc::EINTR) {}
    claim(pid, false);
}

// ---- writer process from here on ----

/// The writer's life: detach, write, publish, answer, end.
fn writer_main(job: &Job) -> ! {
    // Before anything allocates: what the arena holds now is the image's.
    crate::alloc::writer_forked();
    // ckpt's own process: what it writes (the image, its rename, a fold's)
    // is not the job's. A copy of a coordinating thread that was not
    // inside a wrapper would otherwise log the images in the job's log as
    // files the job wrote: the next checkpoint would keep an older image
    // in the newer one, and a restart would make it again, or take the
    // image itself for the killed run's leftover. (Its wrappers still run:
    // reading the program's state goes through some of them.)
    crate::files::joblog::leave();
    detach(job);
    if let Requester::Socket { .. } = job.requester {
        answer_socket(
            job,
            &Response::Writing {
                seq: job.seq,
                nonce: nonce_of(job),
            },
        );
    }
    // SAFETY: the meta lives in the coordinator's frame, copied into ours.
    let meta = unsafe { &mut *job.meta };
    // Incremental: the image taken at the previous round must be complete
    // before this one can refer to it.
    let earlier = memory::dirty::round().and_then(|round| {
        meta.dirty_round = round.id;
        round.base.as_ref()?;
        wait_end(job.prev_done);
        earlier(job, round, meta)
    });
    // A tree's member: the files `link_base` linked beside its image.
    let linked: Vec<String> = match (&earlier, job.keep) {
        (Some(_), 0) => meta.deps.iter().map(|d| d.name.clone()).collect(),
        _ => Vec::new(),
    };
    let result = write_image(job.out.fd, meta, earlier.as_ref()).and_then(|bytes| {
        wait_end(job.prev_done);
        publish(job).map(|_| bytes)
    });
    // What it linked and does not need goes (when it failed, the command
    // discards the whole tree).
    for n in linked
        .iter()
        .filter(|n| !meta.deps.iter().any(|d| &d.name == *n))
    {
        let _ = std::fs::remove_file(job.dir.join(n));
    }
    if result.is_err() {
        job.out.discard();
    }
    let published = result.is_ok();
    let freeze_us = read_freeze_ns(job.link) / 1000;
    let resp = match result {
        Ok(bytes) => Response::Checkpointed {
            path: job.final_path.display().to_string(),
            bytes,
            seq: job.seq,
            freeze_us,
            total_us: (sys::monotonic_ns() - job.t0) / 1000,
            nonce: nonce_of(job),
            unforked: memory::stage::staged()
                .1
                .iter()
                .map(|s| s.region.end - s.region.start)
                .sum(),
        },
        Err(message) => Response::Error {
            message,
            nonce: nonce_of(job),
        },
    };
    // A pre-copy's image is half of a checkpoint: the program takes the
    // other half (building on it, or whole when it failed), whose writer
    // answers. Nothing is pruned before that one is in place.
    if meta.precopy {
        if published {
            say_can_build_on(job, meta.dirty_round);
        }
        ask_second_half(job, &resp);
        // SAFETY: end this process without running any of the program's code.
        unsafe { libc::syscall(libc::SYS_exit_group, 0) };
    }
    // The next checkpoint may build on this image once this writer ends
    // (it waits for that before it reads this image, which pruning may
    // rewrite in place, with the same memory).
    if published && job.keep > 0 {
        say_can_build_on(job, meta.dirty_round);
    }
    // The requester has its verdict once the image is safe on disk, not
    // after older generations are pruned (folding them takes a while):
    // until this writer ends, the directory may hold one more image than
    // --keep says. The directory's lock is taken first, so that what the
    // requester does next through ckpt (inspect, list, restart) waits for
    // the prune, which may rewrite this very image (atomically, the same
    // memory, naming a base instead of a dropped image). A restart
    // holding it past a second: pruned at the next checkpoint instead.
    let lock = (published && job.keep > 0)
        .then(|| image::DirLock::take(&job.dir, true, 1000).ok())
        .flatten();
    answer(job, &resp);
    if let Some(lock) = lock {
        prune(job, lock);
    }
    // SAFETY: end this process without running any of the program's code.
    unsafe { libc::syscall(libc::SYS_exit_group, 0) };
    unreachable!()
}

/// A pre-copy's writer (`resp`: how its image went): ask the program, on
/// its own control socket, for the checkpoint's second half, to be
/// answered to whoever asked for the first. When the program cannot be
/// asked (it ended), they hear why.
fn ask_second_half(job: &Job, resp: &Response) {
    let Requester::Socket {
        sock,
        from,
        from_len,
        nonce,
    } = job.requester
    else {
        return;
    };
    // SAFETY: `from` is a plain sockaddr_un; its first `from_len` bytes.
    let to = unsafe {
        core::slice::from_raw_parts(
            (&from as *const libc::sockaddr_un).cast::<u8>(),
            (from_len as usize).min(core::mem::size_of::<libc::sockaddr_un>()),
        )
    };
    let req = crate::control::Request::Precopied {
        dir: job.dir.display().to_string(),
        nonce,
        to: to.to_vec(),
    };
    // SAFETY: zeroed sockaddr_un is valid; getsockname fills it.
    let mut own: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    let mut own_len = core::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: getsockname of the program's control socket into a local.
    let named = unsafe {
        libc::getsockname(
            sock,
            (&mut own as *mut libc::sockaddr_un).cast(),
            &mut own_len,
        )
    } == 0;
    let sent = named
        && rmp_serde::to_vec_named(&req)
            .is_ok_and(|out| crate::control::send_to(sock, &out, &own, own_len, 10_000));
    if !sent {
        // Why it could not be asked, for whoever reads the error.
        let why = if named {
            format!(
                "sending to its control socket {}: {}",
                String::from_utf8_lossy(&proto_path(&own, own_len)),
                std::io::Error::last_os_error()
            )
        } else {
            "its control socket has no name".to_string()
        };
        let message = match resp {
            Response::Error { message, .. } => {
                format!(
                    "{message} (and the program could not be asked for a whole checkpoint: {why})"
                )
            }
            _ => format!("the program ended before its checkpoint was complete ({why})"),
        };
        answer_socket(job, &Response::Error { message, nonce });
    }
}

/// The path of unix address `a` (`len` bytes; empty when unnamed).
fn proto_path(a: &libc::sockaddr_un, len: libc::socklen_t) -> Vec<u8> {
    let n = (len as usize).saturating_sub(2).min(a.sun_path.len());
    a.sun_path[..n]
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect()
}

/// Tell whoever asked how the checkpoint went.
fn answer(job: &Job, resp: &Response) {
    match job.requester {
        Requester::Socket { .. } => answer_socket(job, resp),
        Requester::Api => {
            if let Ok(out) = rmp_serde::to_vec_named(resp) {
                send_all(job.link, &out);
            }
        }
        Requester::Timer => {
            if let Response::Error { message, .. } = resp {
                let line = format!("ckpt: periodic checkpoint failed: {message}\n");
                say(&line);
            }
        }
    }
}

/// One line on stderr.
fn say(line: &str) {
    // SAFETY: write(2) from a live buffer.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}

fn nonce_of(job: &Job) -> u64 {
    match job.requester {
        Requester::Socket { nonce, .. } => nonce,
        _ => 0,
    }
}

/// Out of the program's way: no signal reaches the program's handlers
/// here, no terminal stops or interrupts us, and only the descriptors the
/// writer uses stay open.
fn detach(job: &Job) {
    sys::sigprocmask(libc::SIG_SETMASK, !0);
    crate::threads::allow_cpuid();
    // SAFETY: setsid and prctl on ourselves (not a group leader: a new pid).
    unsafe {
        libc::syscall(libc::SYS_setsid);
        libc::prctl(libc::PR_SET_NAME, c"ckpt-writer".as_ptr());
    }

    let sock = match job.requester {
        Requester::Socket { sock, .. } => sock,
        _ => -1,
    };
    let mut keep = [
        job.out.fd,
        job.link,
        job.done,
        job.prev_done,
        sock,
        2,
        memory::shared::capture_fd(),
        memory::stage::fds()[0],
        memory::stage::fds()[1],
        memory::stage::fds()[2],
        memory::stage::fds()[3],
    ];
    close_all_but(&mut keep);
}

/// Close every descriptor not in `keep`.
fn close_all_but(keep: &mut [i32]) {
    keep.sort_unstable();
    let mut from: u32 = 0;
    for &k in keep.iter().filter(|&&k| k >= 0) {
        let k = k as u32;
        if k > from {
            close_range(from, k - 1);
        }
        from = k + 1;
    }
    close_range(from, u32::MAX);
}

fn close_range(lo: u32, hi: u32) {
    // SAFETY: close_range on our own descriptor table.
    if unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) } == 0 {
        return;
    }
    // Older kernel: one by one, as listed.
    for fd in sys::open_fds() {
        if (fd as u32) >= lo && (fd as u32) <= hi {
            sys::close(fd);
        }
    }
}

/// Most earlier images one image may refer to; past that it is whole.
const MAX_DEPS: usize = 8;

/// What this image may take from the image of the previous round, which
/// must be in the same directory (a tree's member: in the previous tree's,
/// see [`link_base`]), carry that round and not be a chain too long or too
/// wasteful already (its files holding more than twice the memory they
/// describe): else the image is whole. Sets `meta.deps` to every
/// candidate (`write_image` keeps those used).
fn earlier(
    job: &Job,
    round: &'static memory::dirty::Round,
    meta: &mut image::Meta,
) -> Option<memory::Earlier> {
    let base = round.base.as_ref()?;
    let in_tree = job.keep == 0;
    let base_dir = if in_tree { base.parent()? } else { &job.dir };
    let (header, base_meta, _) = can_build_on(base_dir, base, round.prev)?;
    let name = if in_tree {
        link_base(&job.dir, base, &base_meta)?
    } else {
        base.file_name()?.to_string_lossy().into_owned()
    };
    // This image's deps: the base first, then the base's own.
    let refer = |e: &image::Extent| image::Extent {
        src: e.src + 1,
        ..e.clone()
    };
    let mut extents = Vec::new();
    let mut kept = Vec::new();
    for r in &base_meta.regions {
        if r.kind == image::RegionKind::Anonymous && !r.shared {
            extents.extend(r.extents.iter().map(refer));
        } else if r.kind == image::RegionKind::FileShared && r.kept > 0 {
            let mut extents: Vec<image::Extent> = r.extents.iter().map(refer).collect();
            extents.sort_unstable_by_key(|e| e.addr);
            kept.push(memory::KeptBase {
                start: r.start,
                end: r.end,
                ino: r.ino,
                offset: r.offset,
                extents,
            });
        }
    }
    extents.sort_unstable_by_key(|e| e.addr);
    let mut regions: Vec<memory::EarlierRegion> = base_meta
        .regions
        .iter()
        .map(|r| memory::EarlierRegion {
            start: r.start,
            end: r.end,
            noreserve: r.noreserve,
            grows_down: r.grows_down,
            guards: r.guards.clone(),
        })
        .collect();
    regions.sort_unstable_by_key(|r| r.start);
    meta.deps = std::iter::once(image::Dep {
        name,
        meta_hash: header.meta_hash,
    })
    .chain(base_meta.deps)
    .collect();
    Some(memory::Earlier {
        round,
        extents,
        regions,
        kept,
    })
}

/// A tree's member builds on its image in the previous tree: that image
/// (`PID.img` there) and the earlier ones it names are hard-linked into
/// this tree's directory (`dir`), the image as `PID.gSEQ.img`, the others
/// under their own names, so that each tree holds every file its images
/// need and an older tree can go as a whole. Returns the base's name here.
fn link_base(dir: &Path, base: &Path, base_meta: &image::Meta) -> Option<String> {
    let from = base.parent()?;
    let stem = base.file_stem()?.to_string_lossy().into_owned();
    let name = format!("{stem}.g{}.img", base_meta.seq);
    let names = std::iter::once((base.to_path_buf(), name.clone())).chain(
        base_meta
            .deps
            .iter()
            .map(|d| (from.join(&d.name), d.name.clone())),
    );
    for (src, to) in names {
        match std::fs::hard_link(&src, dir.join(&to)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(_) => return None,
        }
    }
    Some(name)
}

/// Image `base` (taken at round `round`), when an image in `dir` may
/// build on it: in that directory, carrying that round, and not a chain
/// too long or too wasteful already (its files holding more than twice
/// the memory they describe).
fn can_build_on(dir: &Path, base: &Path, round: u64) -> Option<(image::Header, image::Meta, u64)> {
    if round == 0 || base.parent() != Some(dir) {
        return None;
    }
    let (header, meta) = image::read_file(base).ok()?;
    if meta.dirty_round != round || meta.deps.len() >= MAX_DEPS {
        return None;
    }
    let mut files = std::fs::metadata(base).ok()?.len();
    for d in &meta.deps {
        files += std::fs::metadata(dir.join(&d.name)).ok()?.len();
    }
    let memory = meta.memory_bytes();
    if files > 2 * memory.max(1 << 20) {
        return None;
    }
    Some((header, meta, memory))
}

/// What a writer says on its `done` pipe, last, when the next image may
/// build on the one it published: this tag and the image's round.
const BUILD_ON: [u8; 8] = *b"ckpt-on\0";

/// Writer, after publishing and pruning: tell the next checkpoint that
/// it may build on this image (it then leaves regions out of its fork).
fn say_can_build_on(job: &Job, round: u64) {
    if round == 0 {
        return;
    }
    let Some((_, _, memory)) = can_build_on(&job.dir, &job.final_path, round) else {
        return;
    };
    memory::stage::grow(memory);
    let mut rec = [0u8; 16];
    rec[..8].copy_from_slice(&BUILD_ON);
    rec[8..].copy_from_slice(&round.to_ne_bytes());
    // SAFETY: write to our own pipe from a local buffer (16 bytes: atomic).
    unsafe { libc::write(job.done, rec.as_ptr().cast(), rec.len()) };
}

/// Frozen, in the program: whether the writer whose `done` pipe is
/// `done_rd` said its image, of round `round`, may be built on (it says
/// so last, once published and pruned). Never waits (a writer still at
/// work: false).
pub(crate) fn previous_can_be_built_on(done_rd: i32, round: u64) -> bool {
    if done_rd < 0 || round == 0 {
        return false;
    }
    let mut said = false;
    loop {
        let mut p = libc::pollfd {
            fd: done_rd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll of one descriptor, no waiting; raw (poll is
        // interposed, and the program is frozen).
        if unsafe { libc::syscall(libc::SYS_poll, &mut p as *mut libc::pollfd, 1, 0) } != 1 {
            // Nothing more yet: a writer that said so has only its
            // answer left to give.
            return said;
        }
        let mut rec = [0u8; 16];
        // SAFETY: read into a local buffer; poll said it will not block.
        let n = unsafe { libc::syscall(libc::SYS_read, done_rd, rec.as_mut_ptr(), rec.len()) };
        match n {
            0 => return said,
            16 => {
                said = rec[..8] == BUILD_ON && rec[8..] == round.to_ne_bytes();
            }
            _ => return false,
        }
    }
}

/// Keep only the earlier images some extent refers to, numbered anew.
fn keep_used_deps(meta: &mut image::Meta) {
    let mut used = vec![false; meta.deps.len()];
    for e in meta.regions.iter().flat_map(|r| &r.extents) {
        if e.src > 0 {
            used[e.src as usize - 1] = true;
        }
    }
    let mut new_src = vec![0u32; meta.deps.len()];
    let mut n = 0;
    for (i, u) in used.iter().enumerate() {
        if *u {
            n += 1;
            new_src[i] = n;
        }
    }
    for e in meta.regions.iter_mut().flat_map(|r| &mut r.extents) {
        if e.src > 0 {
            e.src = new_src[e.src as usize - 1];
        }
    }
    let mut i = 0;
    meta.deps.retain(|_| {
        i += 1;
        used[i - 1]
    });
}

/// Memory extents, then metadata, then the header; fsync.
fn write_image(
    fd: i32,
    meta: &mut image::Meta,
    earlier: Option<&memory::Earlier>,
) -> Result<u64, String> {
    let mut sink = memory::Sink::new(fd, image::DATA_OFFSET);
    meta.regions = memory::snapshot(&mut sink, earlier)?;
    keep_used_deps(meta);
    let data_len = sink.offset - image::DATA_OFFSET;
    let meta_offset = sink.offset;
    let mut encoded = Vec::new();
    image::encode_meta(meta, &mut encoded)?;
    sink.write_all(&encoded)?;
    sink.flush()?;
    let mut header = image::header_for(&encoded, meta_offset, data_len);
    if !meta.deps.is_empty() {
        header.version = image::FORMAT_INCREMENTAL;
    }
    sink.pwrite_at(&header.encode(), 0)?;
    // SAFETY: fsync of the image descriptor we own.
    if unsafe { libc::fsync(fd) } != 0 {
        return Err(format!("fsync: {}", std::io::Error::last_os_error()));
    }
    Ok(sink.offset)
}

/// Wait until the writer holding the other end of `fd` has ended.
fn wait_end(fd: i32) {
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reading into a local buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 || (n < 0 && crate::interpose::errno() == libc::EINTR) {
            continue;
        }
        return;
    }
}

/// Give the complete image its final name, atomically replacing the
/// previous one, and make that durable.
fn publish(job: &Job) -> Result<(), String> {
    let final_c = c_path(&job.final_path)?;
    let from = match &job.out.named {
        Some(n) => n.clone(),
        None => link_unnamed(job)?,
    };
    // SAFETY: rename between two C paths.
    if unsafe { libc::rename(from.as_ptr(), final_c.as_ptr()) } != 0 {
        let e = std::io::Error::last_os_error();
        // SAFETY: unlink of a C path.
        unsafe { libc::unlink(from.as_ptr()) };
        return Err(format!(
            "cannot rename to {}: {e}",
            job.final_path.display()
        ));
    }
    let dir = c_path(&job.dir)?;
    if let Ok(d) = sys::openat(libc::AT_FDCWD, &dir, libc::O_RDONLY | libc::O_DIRECTORY) {
        // SAFETY: fsync of a directory descriptor we just opened.
        unsafe { libc::fsync(d) };
        sys::close(d);
    }
    Ok(())
}

/// Remove this program's older generations beyond the newest `keep`
/// (the image just published counts and is never removed), so that
/// exactly `keep` stay: kept incremental images that take pages from one
/// being removed are folded first, or it stays as a base (see [`fold`]).
/// By time of publication: after a restart, sequence numbers may repeat.
/// `_lock`: the directory's, held throughout (no restart is between
/// opening an image and its earlier ones).
fn prune(job: &Job, _lock: image::DirLock) {
    let Ok(entries) = std::fs::read_dir(&job.dir) else {
        return;
    };
    let old_name = format!("{}img", job.prefix); // before generations
    let stale_tmp = format!(".{}", job.prefix);
    let mut gens: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    let mut bases: Vec<PathBuf> = Vec::new();
    for e in entries.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if n.starts_with(&stale_tmp) && n.contains(".img.fold.") {
            // A fold's temporary file left by a writer that was killed
            // (writers of one program prune one at a time).
            let _ = std::fs::remove_file(e.path());
            continue;
        }
        if n.starts_with(&job.prefix) && n.ends_with(".base") {
            bases.push(e.path());
            continue;
        }
        let ours = (n.starts_with(&job.prefix) && n.ends_with(".img")) || n == old_name;
        if !ours || e.path() == job.final_path {
            continue;
        }
        if let Some(t) = e.metadata().ok().and_then(|m| m.modified().ok()) {
            gens.push((t, e.path()));
        }
    }
    gens.sort();
    let extra = (gens.len() + 1).saturating_sub(job.keep.max(1) as usize);
    // (Bases nothing uses go too: a pre-copy's, when the checkpoint after
    // it was whole.)
    if extra == 0 && bases.is_empty() {
        return;
    }
    let kept: Vec<PathBuf> = gens[extra..]
        .iter()
        .map(|(_, p)| p.clone())
        .chain([job.final_path.clone()])
        .collect();
    let dropped: Vec<PathBuf> = gens[..extra].iter().map(|(_, p)| p.clone()).collect();
    let Err(why) = fold::remove_dropped(&job.dir, &kept, &dropped, &bases) else {
        return;
    };
    say(&format!(
        "ckpt: cannot fold older images into the kept ones ({why}); \
         keeping those the kept images need\n"
    ));
    // As before folding existed: an image a kept one takes pages from
    // stays (references are flattened: the kept images name every file
    // they need).
    let needed: Vec<String> = kept
        .iter()
        .filter_map(|p| image::read_file(p).ok())
        .flat_map(|(_, m)| m.deps.into_iter().map(|d| d.name))
        .collect();
    for p in dropped {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| needed.contains(&n)) {
            continue;
        }
        let _ = std::fs::remove_file(p);
    }
}

/// Give the unnamed image file a temporary name beside its final one.
fn link_unnamed(job: &Job) -> Result<CString, String> {
    let name = job
        .final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = c_path(&job.dir.join(format!(".{name}.tmp.w{}", sys::getpid())))?;
    // SAFETY: unlink of a C path (a name left by a writer that had our pid).
    unsafe { libc::unlink(tmp.as_ptr()) };
    // SAFETY: linkat of our own descriptor to a C path (AT_EMPTY_PATH needs
    // CAP_DAC_READ_SEARCH; /proc/self/fd works for anyone).
    let empty = unsafe {
        libc::linkat(
            job.out.fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            tmp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    if empty == 0 {
        return Ok(tmp);
    }
    let proc_path = CString::new(format!("/proc/self/fd/{}", job.out.fd)).unwrap_or_default();
    // SAFETY: as above, through the /proc link.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc_path.as_ptr(),
            libc::AT_FDCWD,
            tmp.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r != 0 {
        return Err(format!(
            "cannot name the image in {}: {}",
            job.dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(tmp)
}

fn c_path(p: &Path) -> Result<CString, String> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("{} contains NUL", p.display()))
}

/// How long the program was frozen, as the coordinator measured it (0 if
/// it could not tell us).
fn read_freeze_ns(link: i32) -> u64 {
    let mut b = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        // SAFETY: reading into the unfilled tail of a local buffer.
        let n = unsafe { libc::read(link, b[got..].as_mut_ptr().cast(), 8 - got) };
        if n > 0 {
            got += n as usize;
        } else if n < 0 && crate::interpose::errno() == libc::EINTR {
            continue;
        } else {
            return 0;
        }
    }
    u64::from_ne_bytes(b)
}

fn send_all(fd: i32, bytes: &[u8]) {
    let mut done = 0;
    while done < bytes.len() {
        // SAFETY: send from a live slice; MSG_NOSIGNAL: a gone reader is EPIPE.
        let n = unsafe {
            libc::send(
                fd,
                bytes[done..].as_ptr().cast(),
                bytes.len() - done,
                libc::MSG_NOSIGNAL,
            )
        };
        if n > 0 {
            done += n as usize;
        } else if !(n < 0 && crate::interpose::errno() == libc::EINTR) {
            return;
        }
    }
}

/// One datagram to the `ckpt checkpoint` command that asked.
fn answer_socket(job: &Job, resp: &Response) {
    let Requester::Socket {
        sock,
        from,
        from_len,
        ..
    } = job.requester
    else {
        return;
    };
    if let Ok(out) = rmp_serde::to_vec_named(resp) {
        crate::control::send_to(sock, &out, &from, from_len, 10_000);
    }
}
