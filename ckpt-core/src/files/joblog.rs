//! Files the job's processes opened for writing, in a log the whole job
//! shares. A process that ended before the checkpoint takes its own
//! records with it: a shell's `date >> log` writes the log from a child
//! that is gone by then, and a restart that did not roll the log back got
//! those lines twice. So every process of a `ckpt run` job appends the
//! absolute path of each regular file it opens for writing to one file in
//! the runtime directory (`job-TAG.written`), and the job's root reads it
//! at checkpoint: the files named there that are not open join the files
//! the program wrote and closed (`closed`), and roll back alike.
//!
//! Verbs: [`configure`] (start-up: the job and its log), [`append`] (the
//! open wrappers, through `files::record_written`, the first time a
//! process opens a path for writing: [`opened_before`]), [`snapshot`] (the root,
//! frozen: the paths logged and the files they name now), [`restore`]
//! (`ckpt restart`, before the program runs: the log as it was at the
//! checkpoint, so files written only after it are not taken for the
//! job's). `ckpt run` starts the log empty.
//!
//! Cost: a process appends each path once (open, write, close of the
//! log: a few microseconds), then finds it in a table of hashes
//! ([`opened_before`], for the process's own table of written files too).
//! A relative path counts again after a chdir.
//!
//! `opened_before` and `append` run on the program's threads: atomics and
//! raw system calls, no allocation, no locks, no panics.

use crate::image::{ClosedFile, Fd, FdKind};
use crate::sys;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering::*};

/// Most bytes of a log path kept.
const LOG_PATH_MAX: usize = 256;
/// Paths (hashes) a process remembers having logged.
const SEEN: usize = 1024;
/// Slots looked at for one hash before giving up remembering it.
const PROBES: usize = 16;
/// Distinct files the root takes from the log at a checkpoint; past that
/// they are counted, and the checkpoint says so.
pub const MAX_FILES: usize = 4096;

/// The job's id (`CKPT_JOB`: the pid `ckpt run` gave its program), 0
/// when not in a job.
static JOB: AtomicI32 = AtomicI32::new(0);
/// The rest of the job's tag (`CKPT_JOB=PID.TAG`): tells this job from
/// another whose root had the same pid.
static TAG: AtomicU64 = AtomicU64::new(0);
/// This process is the job's root (its pid is the job's id).
static ROOT: AtomicBool = AtomicBool::new(false);
static LOG_LEN: AtomicUsize = AtomicUsize::new(0);
static LOG: [AtomicU64; LOG_PATH_MAX / 8] = [const { AtomicU64::new(0) }; LOG_PATH_MAX / 8];
static SEEN_TABLE: [AtomicU64; SEEN] = [const { AtomicU64::new(0) }; SEEN];

/// The log of the job tagged `tag` (see [`tag`]) in runtime directory
/// `dir`: named by the whole tag, so a job whose root had the same pid
/// never takes another's log.
pub fn log_path(dir: &std::path::Path, tag: &str) -> std::path::PathBuf {
    dir.join(format!("job-{tag}.written"))
}

/// A job's tag as `ckpt run` gives it (`CKPT_JOB`): the pid of its
/// program (the job's root) and a number no other job has.
pub fn tag(root: i32, unique: u64) -> String {
    format!("{root}.{unique:x}")
}

/// The parts of a job's tag (`PID` alone: unique 0).
pub fn parse_tag(tag: &str) -> Option<(i32, u64)> {
    let (pid, unique) = tag.split_once('.').unwrap_or((tag, "0"));
    let pid: i32 = pid.parse().ok().filter(|&p| p > 0)?;
    Some((pid, u64::from_str_radix(unique, 16).ok()?))
}

/// The job this process belongs to, as its tag (`CKPT_JOB`), if any.
pub fn current() -> Option<String> {
    let job = JOB.load(Relaxed);
    (job > 0).then(|| tag(job, TAG.load(Relaxed)))
}

/// Start-up: this process belongs to job `job` (its tag's parts), whose
/// log is `log`; it is the job's root when its pid is the job's id.
pub fn configure((job, unique): (i32, u64), log: &[u8]) {
    if job <= 0 || log.len() >= LOG_PATH_MAX || log.contains(&0) {
        return;
    }
    TAG.store(unique, Relaxed);
    super::store_path(&LOG, log);
    LOG_LEN.store(log.len(), Relaxed);
    JOB.store(job, Relaxed);
    ROOT.store(sys::getpid() == job, Relaxed);
}

/// In a fork child: not the root, and it remembers no path (its files go
/// to its own table of written files, `closed`).
pub fn reset_after_fork() {
    ROOT.store(false, Relaxed);
    for k in SEEN_TABLE.iter() {
        k.store(0, Relaxed);
    }
}

/// This process (ckpt's image writer, a copy of the program) logs
/// nothing for the job.
pub fn leave() {
    JOB.store(0, Relaxed);
    ROOT.store(false, Relaxed);
}

/// Whether this process belongs to a `ckpt run` job (and logs for it).
pub fn in_job() -> bool {
    JOB.load(Relaxed) != 0
}

/// The log's path as a C string in `buf`, if this process is in a job.
fn log_c(buf: &mut [u8; LOG_PATH_MAX]) -> Option<&core::ffi::CStr> {
    let len = LOG_LEN.load(Relaxed);
    if JOB.load(Relaxed) == 0 || len == 0 {
        return None;
    }
    for (k, w) in LOG.iter().enumerate() {
        buf[k * 8..k * 8 + 8].copy_from_slice(&w.load(Relaxed).to_le_bytes());
    }
    buf[len] = 0;
    core::ffi::CStr::from_bytes_until_nul(&buf[..=len]).ok()
}

/// Whether absolute `path` is one of ckpt's control sockets, in the
/// runtime directory of the job's log `log` (`PID.sock`, `PID-nsINODE.sock`):
/// named by pids, never the job's own files. Signal-safe.
pub fn is_control_socket(log: &[u8], path: &[u8]) -> bool {
    let Some(slash) = log.iter().rposition(|&b| b == b'/') else {
        return false;
    };
    if path.len() <= slash + 1 || path[..=slash] != log[..=slash] {
        return false;
    }
    let Some(stem) = path[slash + 1..].strip_suffix(b".sock") else {
        return false;
    };
    let (pid, ns) = match stem.iter().position(|&b| b == b'-') {
        Some(k) => (&stem[..k], stem[k + 1..].strip_prefix(b"ns")),
        None => (stem, Some(&b"0"[..])),
    };
    let digits = |d: &[u8]| !d.is_empty() && d.iter().all(u8::is_ascii_digit);
    digits(pid) && ns.is_some_and(digits)
}

/// Whether `path` is one of ckpt's control sockets in this job's runtime
/// directory (see [`is_control_socket`]). Signal-safe.
pub fn is_own_control_socket(path: &[u8]) -> bool {
    let mut buf = [0u8; LOG_PATH_MAX];
    log_c(&mut buf).is_some_and(|log| is_control_socket(log.to_bytes(), path))
}

/// FNV-1a of `bytes`, never 0 (0 marks a free slot).
fn hash(bytes: &[u8], salt: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ salt;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h | 1
}

/// Whether `key` was remembered already; remembers it otherwise (unless
/// `peek`).
fn seen_before(key: u64, peek: bool) -> bool {
    let start = (key >> 7) as usize % SEEN;
    for i in 0..PROBES {
        let slot = &SEEN_TABLE[(start + i) % SEEN];
        let k = slot.load(Relaxed);
        if k == key {
            return true;
        }
        if k != 0 {
            continue;
        }
        if peek {
            return false;
        }
        match slot.compare_exchange(0, key, Relaxed, Relaxed) {
            Ok(_) => return false,
            Err(k) if k == key => return true,
            Err(_) => {}
        }
    }
    // The table is full around it: logged again each time (costs only time).
    false
}

/// Whether the program opened `path` (relative to `dirfd`) for writing
/// before, as far as this process remembers; remembers it otherwise.
/// Signal-safe.
pub fn opened_before(dirfd: i32, path: &[u8]) -> bool {
    remembered(dirfd, path, WRITTEN, false)
}

/// Whether this process logged before that something was renamed over
/// `path` (relative to `dirfd`, see [`REPLACED_MARK`]); remembers it
/// otherwise. Signal-safe.
pub fn replaced_before(dirfd: i32, path: &[u8]) -> bool {
    remembered(dirfd, path, REPLACED, false)
}

/// Whether this process logged `path` (relative to `dirfd`) as written
/// and as renamed over both: a rename to it has nothing to ask or log.
/// Remembers nothing. Signal-safe.
pub fn renamed_over_before(dirfd: i32, path: &[u8]) -> bool {
    remembered(dirfd, path, WRITTEN, true) && remembered(dirfd, path, REPLACED, true)
}

/// Whether this process made `path` (relative to `dirfd`) before (see
/// `files::record_made`); remembers it otherwise. Signal-safe.
pub fn made_before(dirfd: i32, path: &[u8]) -> bool {
    remembered(dirfd, path, MADE, false)
}

/// What a path is remembered for (a salt of its hash).
const WRITTEN: u64 = 0;
const REPLACED: u64 = 0x5bd1_e995;
const MADE: u64 = 0xc2b2_ae35;

/// Whether `path` (relative to `dirfd`) is remembered under `kind`;
/// remembers it otherwise (unless `peek`).
fn remembered(dirfd: i32, path: &[u8], kind: u64, peek: bool) -> bool {
    let key = if path.first() == Some(&b'/') {
        hash(path, kind)
    } else if dirfd == libc::AT_FDCWD {
        hash(
            path,
            kind ^ crate::process::chdirs().wrapping_mul(0x9e37_79b9_7f4a_7c15),
        )
    } else {
        // Relative to another directory, which a number does not name.
        return false;
    };
    seen_before(key, peek)
}

/// Ends the record of a directory a process of the job made (mkdir): a
/// restart removes one made after the checkpoint, once empty.
pub const DIR_MARK: u8 = b'/';

/// Ends a second record of a path something was renamed over (an atomic
/// save of a file the job had not written before): a restart never
/// removes it, though born after the checkpoint (a file was there at the
/// checkpoint, and it is not in the image: a warning says so). A
/// canonical path never ends so.
pub const REPLACED_MARK: &[u8] = b"/.";

/// Append `path` (absolute; a directory's ending in [`DIR_MARK`]) to the
/// job's log, when in a job; whether it is there. Raw system calls:
/// signal-safe.
pub fn append(path: &[u8]) -> bool {
    path.len() < 4096 && !path.contains(&0) && append_parts(&[path])
}

/// Append a record of `parts` (their bytes one after the other) to the
/// job's log, when in a job; whether it is there. Raw system calls:
/// signal-safe.
fn append_parts(parts: &[&[u8]]) -> bool {
    let n: usize = parts.iter().map(|p| p.len()).sum();
    // A record: its length (two bytes, little-endian), its bytes.
    let mut rec = [0u8; 2 + RECORD_MAX];
    if JOB.load(Relaxed) == 0 || n == 0 || n > RECORD_MAX {
        return false;
    }
    rec[..2].copy_from_slice(&(n as u16).to_le_bytes());
    let mut at = 2;
    for p in parts {
        rec[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    let mut buf = [0u8; LOG_PATH_MAX];
    let Some(log) = log_c(&mut buf) else {
        return false;
    };
    let lfd = open_private(log, libc::O_APPEND);
    if lfd < 0 {
        return false;
    }
    // One write: appends of a few KiB to a local file are not interleaved.
    // SAFETY: writing from a live buffer to our own descriptor.
    let w = unsafe { libc::syscall(libc::SYS_write, lfd, rec.as_ptr(), 2 + n) };
    sys::close(lfd as i32);
    w == (2 + n) as i64
}

/// Longest record: a rename's two paths, a NUL and a mark.
const RECORD_MAX: usize = 2 * 4096 + 8;

/// Records that are not a path hold a NUL (a path never does): a
/// checkpoint's mark starts so, a rename is `FROM \0 TO` (TO ending in
/// [`REPLACED_MARK`] when it replaced a file).
const MARK: &[u8] = b"/\0ckpt:";

/// `from` (absolute) was renamed to `to` (absolute), over a file that was
/// there when `replaced`: logged on every rename a process of the job
/// makes, in order, so a restart undoes those made after the checkpoint
/// (see [`renames_after`]). Signal-safe.
pub fn append_rename(from: &[u8], to: &[u8], replaced: bool) -> bool {
    if from.first() != Some(&b'/') || to.first() != Some(&b'/') {
        return false;
    }
    let mark: &[u8] = if replaced { REPLACED_MARK } else { b"" };
    append_parts(&[from, b"\0", to, mark])
}

/// A rename made by a process of the job (see [`append_rename`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renamed {
    pub from: String,
    pub to: String,
    /// `to` named a file before (its contents went with the rename).
    pub replaced: bool,
}

/// The records of a log's bytes, in order (a damaged tail is left out).
fn records(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    core::iter::from_fn(move || {
        let n = u16::from_le_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]) as usize;
        let p = bytes.get(at + 2..at + 2 + n)?;
        if n == 0 || p[0] != b'/' {
            // Not a record: the rest cannot be trusted.
            return None;
        }
        at += 2 + n;
        Some(p)
    })
}

/// The records holding a NUL logged after the mark `mark` (its last one)
/// in a log's bytes, in order, split at the NUL; `None` when the mark is
/// not there (an image older than marks, or a log written anew since).
fn events_after<'a>(bytes: &'a [u8], mark: &str) -> Option<Vec<(&'a [u8], &'a [u8])>> {
    let mut out = None;
    for r in records(bytes) {
        if let Some(m) = r.strip_prefix(MARK) {
            if m == mark.as_bytes() {
                out = Some(Vec::new());
            }
            continue;
        }
        if let (Some(list), Some(nul)) = (out.as_mut(), r.iter().position(|&b| b == 0)) {
            list.push((&r[..nul], &r[nul + 1..]));
        }
    }
    out
}

/// The renames logged after the mark `mark` (see [`events_after`]),
/// oldest first.
pub fn renames_after(bytes: &[u8], mark: &str) -> Option<Vec<Renamed>> {
    let events = events_after(bytes, mark)?;
    Some(
        events
            .into_iter()
            // A removal's second part is not a path (see `append_removed`).
            .filter(|(_, to)| to.first() == Some(&b'/'))
            .map(|(from, to)| {
                let (to, replaced) = match to.strip_suffix(REPLACED_MARK) {
                    Some(t) => (t, true),
                    None => (to, false),
                };
                Renamed {
                    from: crate::names::from_bytes(from),
                    to: crate::names::from_bytes(to),
                    replaced,
                }
            })
            .collect(),
    )
}

/// A regular file at `path` (absolute), born at `born_ns` (ns since the
/// epoch; 0: unknown), was removed: logged on every removal a process of
/// the job makes, as `PATH \0 - BORN`. Signal-safe.
pub fn append_removed(path: &[u8], born_ns: u64) -> bool {
    if path.first() != Some(&b'/') {
        return false;
    }
    let mut num = [0u8; 24];
    let mut w = sys::Cursor::new(&mut num);
    if core::fmt::Write::write_fmt(&mut w, format_args!("{born_ns}")).is_err() {
        return false;
    }
    let len = num.iter().position(|&b| b == 0).unwrap_or(0);
    append_parts(&[path, b"\0-", &num[..len]])
}

/// The removals logged after the mark `mark` (see [`events_after`]),
/// oldest first, each with the file's birth time (ns; 0: unknown).
pub fn removed_after(bytes: &[u8], mark: &str) -> Option<Vec<(String, u64)>> {
    let events = events_after(bytes, mark)?;
    Some(
        events
            .into_iter()
            .filter_map(|(path, rest)| {
                let born = rest.strip_prefix(b"-")?;
                let born = std::str::from_utf8(born).ok().and_then(|b| b.parse().ok());
                Some((crate::names::from_bytes(path), born.unwrap_or(0)))
            })
            .collect(),
    )
}

/// The paths in a log's bytes, in order, each once.
pub fn parse(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in records(bytes).filter(|p| !p.contains(&0)) {
        if seen.insert(p) {
            out.push(p.to_vec());
        }
    }
    out
}

/// The log's bytes for `paths`.
pub fn format(paths: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in paths.iter().filter(|p| !p.is_empty() && p.len() < 4096) {
        out.extend_from_slice(&(p.len() as u16).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// What the root takes from the job's log at a checkpoint.
#[derive(Default)]
pub struct Logged {
    /// The log's path and every path in it (for `restore`).
    pub log: Option<String>,
    pub paths: Vec<String>,
    /// Regular files named there, as they are now, not open (`fds`) nor
    /// among `closed`.
    pub files: Vec<ClosedFile>,
    /// Files past [`MAX_FILES`].
    pub dropped: u64,
    /// The mark left in the log (see [`renames_after`]).
    pub mark: Option<String>,
}

/// Frozen, in the job's root: the job's log, and the files it names that
/// are not among the program's descriptors `fds` nor in `closed`. Raw
/// system calls; scratch allocation only.
pub fn snapshot(fds: &[Fd], closed: &[ClosedFile]) -> Logged {
    let mut out = Logged::default();
    let mut buf = [0u8; LOG_PATH_MAX];
    if !ROOT.load(Relaxed) {
        return out;
    }
    let Some(log) = log_c(&mut buf) else {
        return out;
    };
    out.log = Some(crate::names::from_bytes(log.to_bytes()));
    let Ok(fd) = sys::openat(libc::AT_FDCWD, log, libc::O_RDONLY | libc::O_NOFOLLOW) else {
        return out;
    };
    // SAFETY: all-zero is a valid stat; fstat of our descriptor into it.
    let size = unsafe {
        let mut st: libc::stat = core::mem::zeroed();
        if libc::syscall(libc::SYS_fstat, fd, &mut st) == 0 {
            st.st_size.max(0) as usize
        } else {
            0
        }
    };
    let mut bytes = vec![0u8; size];
    let n = sys::pread_all(fd, &mut bytes);
    sys::close(fd);
    bytes.truncate(n);
    let paths = parse(&bytes);
    // Every process of the job logs a path once, so a job starting a
    // process per line of its log logs that path as often: keep it once.
    let packed = format(&paths);
    if bytes.len() > 2 * packed.len() + (64 << 10) {
        rewrite(log, &packed);
    }
    for p in &paths {
        if out.files.len() >= MAX_FILES {
            out.dropped += 1;
            continue;
        }
        let Ok(c) = std::ffi::CString::new(p.as_slice()) else {
            continue;
        };
        let Some(st) = sys::stat_path(&c, true) else {
            continue;
        };
        let (dev, ino) = (st.st_dev, st.st_ino);
        if st.st_mode & libc::S_IFMT != libc::S_IFREG
            || fds
                .iter()
                .any(|f| f.kind == FdKind::File && f.dev == dev && f.ino == ino)
            || closed.iter().any(|c| c.dev == dev && c.ino == ino)
            || out.files.iter().any(|c| c.dev == dev && c.ino == ino)
        {
            continue;
        }
        out.files.push(ClosedFile {
            path: crate::names::from_bytes(p),
            dev,
            ino,
            size: st.st_size,
            mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
        });
    }
    out.paths = paths.iter().map(|p| crate::names::from_bytes(p)).collect();
    // Renames logged from here on are the killed run's, for a restart
    // from this image to undo. Unique to this checkpoint of this job.
    let mut mark = [0u8; 48];
    let mut w = sys::Cursor::new(&mut mark);
    let written = core::fmt::Write::write_fmt(
        &mut w,
        format_args!("{}.{}", sys::getpid(), sys::monotonic_ns()),
    )
    .is_ok();
    let len = mark.iter().position(|&b| b == 0).unwrap_or(0);
    if written && append_parts(&[MARK, &mark[..len]]) {
        out.mark = Some(crate::names::from_bytes(&mark[..len]));
    }
    out
}

/// Open `path` for writing, made if missing (mode 0600, no symlink
/// followed), with `flags` besides: raw openat (no wrapper, no record);
/// the descriptor or a negative errno.
fn open_private(path: &core::ffi::CStr, flags: i32) -> i64 {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW | flags;
    // SAFETY: a NUL-terminated path.
    unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            0o600,
        )
    }
}

/// Frozen: replace the log at `log` by `bytes` (written beside it, then
/// renamed over). Raw system calls. Every live process of the job is
/// frozen, so no record is lost in between (a process that left the job
/// could lose one).
fn rewrite(log: &core::ffi::CStr, bytes: &[u8]) {
    let mut tmp = [0u8; LOG_PATH_MAX + 8];
    let l = log.to_bytes();
    tmp[..l.len()].copy_from_slice(l);
    tmp[l.len()..l.len() + 5].copy_from_slice(b".tmp\0");
    let Ok(tmp) = core::ffi::CStr::from_bytes_until_nul(&tmp) else {
        return;
    };
    let fd = open_private(tmp, libc::O_TRUNC);
    if fd < 0 {
        return;
    }
    let mut at = 0;
    while at < bytes.len() {
        // SAFETY: writing from a live buffer to our own descriptor.
        let r =
            unsafe { libc::syscall(libc::SYS_write, fd, bytes[at..].as_ptr(), bytes.len() - at) };
        if r <= 0 {
            break;
        }
        at += r as usize;
    }
    sys::close(fd as i32);
    if at == bytes.len() {
        // SAFETY: two NUL-terminated paths.
        unsafe { libc::syscall(libc::SYS_rename, tmp.as_ptr(), log.as_ptr()) };
    } else {
        // SAFETY: a NUL-terminated path.
        unsafe { libc::syscall(libc::SYS_unlink, tmp.as_ptr()) };
    }
}

/// The job tag (`CKPT_JOB`) in process `pid`'s environment, if any (and
/// readable: another user's is not).
pub fn tag_of(pid: i32) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|&b| b == 0)
        .find_map(|v| v.strip_prefix(b"CKPT_JOB="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Every process in /proc whose environment carries a job tag (zombies
/// included: their environment reads empty, so few are), with the tag.
pub fn tagged_processes() -> Vec<(i32, String)> {
    let Ok(all) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    all.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| Some((p, tag_of(p)?)))
        .collect()
}

/// `ckpt run`: remove the logs in runtime directory `dir` of jobs no
/// process belongs to any more (a root killed, or ended by `_exit`, does
/// not remove its own; a restart writes it again), unless written in the
/// last minute.
pub fn sweep(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let logs: Vec<(String, std::path::PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let tag = name
                .to_str()?
                .strip_prefix("job-")?
                .strip_suffix(".written")?;
            parse_tag(tag)?;
            Some((tag.to_string(), e.path()))
        })
        .collect();
    if logs.is_empty() {
        return;
    }
    // The jobs of the processes alive now (those of another user are not
    // readable, and their logs are not in this directory).
    let live: std::collections::HashSet<String> =
        tagged_processes().into_iter().map(|(_, t)| t).collect();
    // A log stays a week after its job ended: a restart of one of its
    // images (after the job ended, too) finds what it made since.
    let recent = |p: &std::path::Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().map_or(true, |d| d.as_secs() < KEPT_SECS))
    };
    for (tag, path) in logs {
        if !live.contains(&tag) && !recent(&path) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// How long the log of a job that ended stays (a week).
const KEPT_SECS: u64 = 7 * 24 * 3600;

/// `ckpt restart`, before it writes the log back: the paths in the log at
/// `log` now (what the killed run logged, after the checkpoint too),
/// each once; a directory's ends in `/` (see [`DIR_MARK`]).
pub fn read(log: &str) -> Vec<String> {
    std::fs::read(crate::names::path(log))
        .map(|b| {
            parse(&b)
                .iter()
                .map(|p| crate::names::from_bytes(p))
                .collect()
        })
        .unwrap_or_default()
}

/// `ckpt restart`: the job's log at `log` as it was at the checkpoint
/// (`paths`, then the checkpoint's `mark`): written anew and renamed over, so what the killed run
/// logged after the checkpoint is not the job's any more.
pub fn restore(log: &str, paths: &[String], mark: Option<&str>) -> std::io::Result<()> {
    let log = crate::names::path(log);
    let mut bytes = format(
        &paths
            .iter()
            .map(|p| crate::names::to_bytes(p).into_owned())
            .collect::<Vec<_>>(),
    );
    // The mark again: a later restart from the same image finds what the
    // restarted run renamed after it.
    if let Some(m) = mark {
        let n = MARK.len() + m.len();
        bytes.extend_from_slice(&(n as u16).to_le_bytes());
        bytes.extend_from_slice(MARK);
        bytes.extend_from_slice(m.as_bytes());
    }
    let mut tmp = log.clone().into_os_string();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_sockets_are_told_from_the_jobs_files() {
        let log = b"/run/ckpt/job-12.34.written";
        for own in [&b"/run/ckpt/12.sock"[..], b"/run/ckpt/7-ns4026532178.sock"] {
            assert!(is_control_socket(log, own), "{own:?}");
        }
        for job in [
            &b"/run/ckpt/a12.sock"[..],
            b"/run/ckpt/12.socket",
            b"/run/ckpt/12-4.sock",
            b"/run/ckpt/-ns4.sock",
            b"/run/ckpt/.sock",
            b"/run/other/12.sock",
            b"/run/ckpt/sub/12.sock",
            b"/run/ckpt",
        ] {
            assert!(!is_control_socket(log, job), "{job:?}");
        }
    }

    #[test]
    fn a_log_reads_back_each_path_once() {
        let paths = vec![b"/a/log".to_vec(), b"/b c\n".to_vec(), b"/a/log".to_vec()];
        let bytes = format(&paths);
        assert_eq!(parse(&bytes), vec![b"/a/log".to_vec(), b"/b c\n".to_vec()]);
        // A cut-off last record is left out, the others kept.
        assert_eq!(
            parse(&bytes[..bytes.len() - 2]),
            vec![b"/a/log".to_vec(), b"/b c\n".to_vec()]
        );
        assert_eq!(parse(&bytes[..9]), vec![b"/a/log".to_vec()]);
        assert!(parse(b"\x03\x00abc").is_empty());
    }

    fn record(parts: &[&[u8]]) -> Vec<u8> {
        let body: Vec<u8> = parts.concat();
        let mut out = (body.len() as u16).to_le_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn renames_after_a_mark_read_back_in_order_and_are_no_paths() {
        let mut bytes = format(&[b"/a/log".to_vec()]);
        bytes.extend(record(&[b"/a/x", b"\0", b"/a/y"]));
        bytes.extend(record(&[MARK, b"7.1"]));
        bytes.extend(record(&[b"/a/log", b"\0", b"/a/log.1"]));
        bytes.extend(format(&[b"/a/new".to_vec()]));
        bytes.extend(record(&[b"/a/tmp", b"\0", b"/a/cfg", REPLACED_MARK]));
        assert_eq!(
            parse(&bytes),
            vec![b"/a/log".to_vec(), b"/a/new".to_vec()],
            "marks and renames are not paths"
        );
        let r = |from: &str, to: &str, replaced| Renamed {
            from: from.into(),
            to: to.into(),
            replaced,
        };
        assert_eq!(
            renames_after(&bytes, "7.1"),
            Some(vec![
                r("/a/log", "/a/log.1", false),
                r("/a/tmp", "/a/cfg", true)
            ])
        );
        assert_eq!(
            renames_after(&bytes, "7.2"),
            None,
            "another checkpoint's mark"
        );
        bytes.extend(record(&[b"/a/in/x", b"\0-", b"1234"]));
        assert_eq!(
            renames_after(&bytes, "7.1").map(|r| r.len()),
            Some(2),
            "not a rename"
        );
        assert_eq!(
            removed_after(&bytes, "7.1"),
            Some(vec![("/a/in/x".to_string(), 1234)])
        );
        assert!(!parse(&bytes).contains(&b"/a/in/x".to_vec()), "not a path");
        // The last time the mark is there counts (a restart writes it again).
        bytes.extend(record(&[MARK, b"7.1"]));
        assert_eq!(renames_after(&bytes, "7.1"), Some(Vec::new()));
    }

    #[test]
    fn hashes_are_never_zero_and_depend_on_the_salt() {
        assert_ne!(hash(b"", 0), 0);
        assert_ne!(hash(b"log", 0), hash(b"log", 1));
    }
}
