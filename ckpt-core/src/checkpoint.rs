//! Take a checkpoint: freeze, gather, encode, thaw, then write the image
//! atomically (temporary name, fsync, rename, fsync of the directory) so
//! the previous good image survives anything that goes wrong.
//!
//! Runs inside the reserved signal's handler on the thread that received
//! the request (see `quiesce`), with allocation routed to the scratch
//! arena for the whole call: the interrupted code may hold any lock,
//! malloc's included.

use crate::{image, memory, quiesce, snapshot, sys};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::*};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// How long a freeze may take before the checkpoint gives up (and lets
/// the program go on untouched).
const FREEZE_TIMEOUT_NS: u64 = 10_000_000_000;

/// What a checkpoint produced.
#[derive(Debug, Clone)]
pub struct Report {
    pub path: PathBuf,
    pub bytes: u64,
    pub seq: u64,
    pub freeze_us: u64,
    pub total_us: u64,
}

/// The image file name for this process.
pub fn image_name(comm: &str, pid: i32) -> String {
    let safe: String = comm
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("ckpt-{safe}-{pid}.img")
}

/// The program's command name (for the image file name).
fn comm() -> String {
    let mut buf = [0u8; 64];
    let n = sys::read_small(libc::AT_FDCWD, c"/proc/self/comm", &mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).trim().to_string()
}

/// Take one checkpoint into directory `dir`. `self_uc` is the calling
/// (coordinating) thread's interrupted context.
///
/// The program is frozen only while its kernel state is gathered and a
/// copy-on-write child is forked; the child writes memory and metadata
/// while the program already runs on.
pub fn take(dir: &Path, self_uc: *mut core::ffi::c_void) -> Result<Report, String> {
    let t0 = sys::monotonic_ns();
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let pid = sys::getpid();
    let seq = SEQ.fetch_add(1, Relaxed) + 1;
    let final_path = dir.join(image_name(&comm(), pid));
    let tmp_path = dir.join(format!(".{}.tmp.{seq}", image_name(&comm(), pid)));
    let tmp_c = CString::new(tmp_path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    let created_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);

    let frozen = quiesce::freeze(FREEZE_TIMEOUT_NS, self_uc)?;
    // ---- frozen: no malloc, no locks a program thread may hold ----
    // A kernel timer the image would not hold could not come back.
    let untracked = crate::timers::untracked();
    if untracked > 0 {
        quiesce::thaw(frozen);
        return Err(format!(
            "{untracked} of the program's POSIX timers were not recorded (made by a raw \
             system call, or beyond the {} ckpt can record); they could not come back",
            crate::timers::MAX_TIMERS
        ));
    }
    let mut meta = snapshot::gather(&frozen, seq, created_unix_ms);
    // Memory the program keeps out of forks must reach the writer child.
    meta.fork_advice = memory::fork_advice::snapshot();
    meta.freeze_us = (sys::monotonic_ns() - frozen.started_ns()) / 1000;
    // Opened while frozen so their low numbers are never seen by the program.
    let files = open_tmp(&tmp_c, &tmp_path).and_then(|fd| match status_pipe() {
        Ok(p) => Ok((fd, p)),
        Err(e) => {
            sys::close(fd);
            Err(e)
        }
    });
    let child = files
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|&(fd, (rd, wr))| {
            crate::restart::set_pending(&meta);
            fork_writer_whole(fd, rd, wr, &mut meta)
        });
    memory::fork_advice::restore(&meta.fork_advice);
    let freeze_ns = quiesce::thaw(frozen);
    // ---- thawed ----
    let (fd, (rd, wr)) = files?;
    sys::close(wr);
    let result = child.and_then(|pid| wait_writer(pid, rd));
    sys::close(rd);
    sys::close(fd);
    for f in [fd, rd, wr] {
        crate::files::set_own(f, false);
    }
    let bytes = match result {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp_path);
            return Err(e);
        }
    };
    std::fs::rename(&tmp_path, &final_path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp_path);
        format!("cannot rename to {}: {e}", final_path.display())
    })?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(Report {
        path: final_path,
        bytes,
        seq,
        freeze_us: freeze_ns / 1000,
        total_us: (sys::monotonic_ns() - t0) / 1000,
    })
}

fn open_tmp(tmp_c: &CString, tmp_path: &Path) -> Result<i32, String> {
    // mode 0600 regardless of the program's umask
    // SAFETY: openat with a valid C path.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            tmp_c.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0o600,
        )
    } as i32;
    if fd < 0 {
        return Err(format!(
            "cannot create {}: {}",
            tmp_path.display(),
            std::io::Error::from_raw_os_error(crate::interpose::errno())
        ));
    }
    let fd = sys::move_high(fd).map_err(|_| "no free descriptor for the image".to_string())?;
    crate::files::set_own(fd, true);
    Ok(fd)
}

/// A pipe the writer child reports through (read end, write end).
fn status_pipe() -> Result<(i32, i32), String> {
    let mut p = [0i32; 2];
    // SAFETY: pipe2 into a local array.
    if unsafe { libc::syscall(libc::SYS_pipe2, p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err("cannot create a pipe for the image writer".into());
    }
    let rd = sys::move_high(p[0]);
    let wr = sys::move_high(p[1]);
    match (rd, wr) {
        (Ok(rd), Ok(wr)) => {
            crate::files::set_own(rd, true);
            crate::files::set_own(wr, true);
            Ok((rd, wr))
        }
        _ => Err("no free descriptor for the image writer".into()),
    }
}

/// `fork_writer`, checking that the child got every region: memory kept
/// out of forks by advice the madvise wrapper did not see (a raw system
/// call) is missing there. Then that memory is found (smaps), made
/// forkable, and the writer forked again, all while still frozen.
fn fork_writer_whole(fd: i32, rd: i32, wr: i32, meta: &mut image::Meta) -> Result<i32, String> {
    // With advice found in smaps already, nothing can be missing.
    if !meta.fork_advice.is_empty() {
        return fork_writer(fd, rd, wr, meta);
    }
    let before = memory::region_starts_self();
    let pid = fork_writer(fd, rd, wr, meta)?;
    if memory::missing_in(pid, &before) == 0 {
        return Ok(pid);
    }
    // SAFETY: killing the writer child we just made.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    reap(pid);
    // Start the image and the status over.
    // SAFETY: truncating the image file we own.
    unsafe { libc::ftruncate(fd, 0) };
    drain(rd);
    memory::fork_advice::record();
    meta.fork_advice = memory::fork_advice::snapshot();
    fork_writer(fd, rd, wr, meta)
}

/// Wait for the writer child `pid` to end (it has no exit signal).
fn reap(pid: i32) {
    // SAFETY: waitid on our own clone child into a zeroed siginfo.
    unsafe {
        let mut info: libc::siginfo_t = core::mem::zeroed();
        while libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::__WCLONE,
        ) < 0
            && crate::interpose::errno() == libc::EINTR
        {}
    }
}

/// Read away whatever a killed writer left in the status pipe.
fn drain(rd: i32) {
    let mut buf = [0u8; 512];
    // SAFETY: F_GETFL/F_SETFL and reads on our own pipe end.
    unsafe {
        let fl = libc::fcntl(rd, libc::F_GETFL);
        libc::fcntl(rd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        while libc::read(rd, buf.as_mut_ptr().cast(), buf.len()) > 0 {}
        libc::fcntl(rd, libc::F_SETFL, fl);
    }
}

/// Fork the writer: a copy-on-write child holding the frozen memory. It
/// has no exit signal, so the program's own `wait()` never sees it.
fn fork_writer(fd: i32, rd: i32, wr: i32, meta: &mut image::Meta) -> Result<i32, String> {
    // SAFETY: clone without CLONE_VM: the child gets a private copy of
    // this thread only and returns here on the same (copied) stack.
    let pid = unsafe { libc::syscall(libc::SYS_clone, 0, 0, 0, 0, 0) };
    if pid < 0 {
        return Err(format!(
            "cannot fork the image writer: {}",
            std::io::Error::from_raw_os_error(crate::interpose::errno())
        ));
    }
    if pid > 0 {
        return Ok(pid as i32);
    }
    // ---- writer child: one thread, scratch allocation, raw exits ----
    sys::close(rd);
    // Named apart from the program, so `pgrep PROG` finds only the program.
    // SAFETY: PR_SET_NAME with a NUL-terminated name.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"ckpt-writer".as_ptr()) };
    let status = match write_image(fd, meta) {
        Ok(bytes) => format!("ok {bytes}"),
        Err(e) => format!("error {e}"),
    };
    // SAFETY: write to our pipe, then end this process without running
    // any of the program's exit code.
    unsafe {
        libc::write(wr, status.as_ptr().cast(), status.len());
        libc::syscall(libc::SYS_exit_group, 0);
    }
    unreachable!()
}

/// Writer child: memory extents, then metadata, then the header; fsync.
fn write_image(fd: i32, meta: &mut image::Meta) -> Result<u64, String> {
    let mut sink = memory::Sink {
        fd,
        offset: image::DATA_OFFSET,
    };
    meta.regions = memory::snapshot(&mut sink)?;
    let data_len = sink.offset - image::DATA_OFFSET;
    let meta_offset = sink.offset;
    let mut encoded = Vec::new();
    image::encode_meta(meta, &mut encoded)?;
    sink.write_all(&encoded)?;
    let header = image::header_for(&encoded, meta_offset, data_len);
    sink.pwrite_at(&header.encode(), 0)?;
    // SAFETY: fsync of the image descriptor we own.
    if unsafe { libc::fsync(fd) } != 0 {
        return Err(format!("fsync: {}", std::io::Error::last_os_error()));
    }
    Ok(sink.offset)
}

/// Wait for the writer and read its verdict.
fn wait_writer(pid: i32, rd: i32) -> Result<u64, String> {
    let mut buf = [0u8; 4096];
    let mut len = 0;
    loop {
        // SAFETY: reading into the unused tail of a local buffer.
        let n = unsafe { libc::read(rd, buf[len..].as_mut_ptr().cast(), buf.len() - len) };
        if n > 0 {
            len += n as usize;
            if len < buf.len() {
                continue;
            }
        }
        if n < 0 && crate::interpose::errno() == libc::EINTR {
            continue;
        }
        break;
    }
    reap(pid);
    let text = String::from_utf8_lossy(&buf[..len]);
    if let Some(n) = text.strip_prefix("ok ") {
        return n
            .trim()
            .parse()
            .map_err(|_| "the image writer answered nonsense".into());
    }
    Err(text
        .strip_prefix("error ")
        .map(str::to_string)
        .unwrap_or_else(|| "the image writer died".into()))
}
