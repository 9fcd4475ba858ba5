//! The control channel between the `ckpt` command and a running program.
//!
//! Each process under ckpt binds a Unix *datagram* socket named
//! `<runtime dir>/<pid>.sock`. Datagrams need no `accept`, so the program's
//! descriptor numbers are never touched by a connection: the shim keeps one
//! descriptor, near the descriptor limit, for its whole life. Requests and
//! answers are MessagePack. The kernel stamps every datagram with the
//! sender's credentials (SO_PASSCRED), which both sides check.

use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::fmt;
use std::io;
use std::mem;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the command asks of the program.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Request {
    /// Take a checkpoint, into `dir` when given (else the run's directory).
    /// Every answer carries `nonce` back: the final one comes from the
    /// image writer, a process of its own.
    Checkpoint {
        dir: Option<String>,
        #[serde(default)]
        nonce: u64,
        /// A pre-copy when there is nothing to build on (see
        /// `checkpoint::take_precopy`).
        #[serde(default)]
        precopy: bool,
    },
    /// Is anybody there?
    Ping,
    /// Take this process's part of a tree checkpoint (see `crate::tree`):
    /// freeze, answer [`Response::Frozen`], wait for a `TreeContinue`;
    /// gather and start the writer (into `dir`, as `PID.img`), answer
    /// [`Response::Gathered`], wait for the next `TreeContinue`, thaw. No
    /// word from the command for `timeout_ms` at either wait: the process
    /// thaws (and, at the first, gives up). `published`: the directory
    /// `dir` becomes once the tree is complete (where the next tree
    /// checkpoint finds this image to build on).
    TreeCheckpoint {
        dir: String,
        #[serde(default)]
        published: String,
        seq: u64,
        nonce: u64,
        timeout_ms: u64,
    },
    /// Go on (`go`) or give up (only meaningful after `Frozen`).
    TreeContinue { nonce: u64, go: bool },
    /// From the writer of a pre-copy (the first half of a checkpoint, see
    /// `memory::stage::stage_live`), to the program: take the second half
    /// into `dir`, answering the command at address `to` (a
    /// `sockaddr_un`'s bytes) with `nonce`.
    Precopied {
        dir: String,
        nonce: u64,
        #[serde(with = "serde_bytes")]
        to: Vec<u8>,
    },
}

/// What the program answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Response {
    /// The image is complete and in place (sent by the image writer).
    Checkpointed {
        path: String,
        bytes: u64,
        seq: u64,
        freeze_us: u64,
        total_us: u64,
        #[serde(default)]
        nonce: u64,
        /// Bytes of memory the writer's fork left out: regions that
        /// changed little since the image this one builds on (their
        /// written pages were copied while frozen instead).
        #[serde(default)]
        unforked: u64,
    },
    /// The program runs on; the image writer (the sender) writes the image.
    Writing {
        seq: u64,
        #[serde(default)]
        nonce: u64,
    },
    Pong {
        pid: i32,
        /// Where its images go unless told otherwise.
        #[serde(default)]
        dir: String,
        /// How many generations it keeps.
        #[serde(default)]
        keep: u32,
        /// The store its checkpoints go to (`sqlite:PATH`, from `ckpt run
        /// --store`), or empty.
        #[serde(default)]
        store: String,
    },
    /// Every thread of this process is frozen (tree checkpoint).
    Frozen { nonce: u64, pid: i32 },
    /// This process gathered its state and its writer runs (tree
    /// checkpoint); it thaws at the next `TreeContinue`.
    Gathered { nonce: u64, writer: i32 },
    Error {
        message: String,
        #[serde(default)]
        nonce: u64,
    },
}

impl Response {
    /// The nonce of the checkpoint request this answers (0: none).
    pub fn nonce(&self) -> u64 {
        match self {
            Response::Checkpointed { nonce, .. }
            | Response::Writing { nonce, .. }
            | Response::Error { nonce, .. }
            | Response::Frozen { nonce, .. }
            | Response::Gathered { nonce, .. } => *nonce,
            Response::Pong { .. } => 0,
        }
    }
}

impl Request {
    /// The nonce the answers to this request carry (0: none).
    pub fn nonce(&self) -> u64 {
        match self {
            Request::Checkpoint { nonce, .. }
            | Request::TreeCheckpoint { nonce, .. }
            | Request::TreeContinue { nonce, .. }
            | Request::Precopied { nonce, .. } => *nonce,
            Request::Ping => 0,
        }
    }
}

/// A fresh nonce for a request (never 0).
pub fn new_nonce() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom into a local buffer.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    let v = if n == 8 {
        u64::from_ne_bytes(b)
    } else {
        // SAFETY: getpid cannot fail.
        let pid = unsafe { libc::getpid() } as u64;
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ pid.rotate_left(32)
    };
    v.max(1)
}

/// Why a request could not be answered; each is one clear line.
#[derive(Debug)]
pub enum ControlError {
    NoSuchProcess(i32),
    NotUnderCkpt(i32),
    PermissionDenied(i32),
    Exited(i32),
    Timeout(i32),
    Io(String),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::NoSuchProcess(p) => write!(f, "no such process: {p}"),
            ControlError::NotUnderCkpt(p) => {
                write!(
                    f,
                    "process {p} is not running under ckpt (start it with `ckpt run -- PROG`)"
                )
            }
            ControlError::PermissionDenied(p) => {
                write!(f, "permission denied: process {p} belongs to another user")
            }
            ControlError::Exited(p) => write!(f, "process {p} exited before it answered"),
            ControlError::Timeout(p) => write!(f, "process {p} did not answer in time"),
            ControlError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ControlError {}

/// The per-user directory holding control sockets: `$CKPT_RUNTIME_DIR`, or
/// `/run/user/<uid>/ckpt` when that user directory exists, else
/// `/tmp/ckpt-<uid>`. Both sides compute it the same way from the uid.
pub fn runtime_dir(uid: u32) -> PathBuf {
    if let Some(d) = std::env::var_os("CKPT_RUNTIME_DIR") {
        return PathBuf::from(d);
    }
    let run = PathBuf::from(format!("/run/user/{uid}"));
    if run.is_dir() {
        return run.join("ckpt");
    }
    PathBuf::from(format!("/tmp/ckpt-{uid}"))
}

/// Create the runtime directory (mode 0700) or check that the existing one
/// belongs to `uid`, is a real directory and is private.
pub fn ensure_runtime_dir(dir: &Path, uid: u32) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    match std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(false)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(dir)?;
        }
        Err(e) => return Err(e),
    }
    let m = std::fs::symlink_metadata(dir)?;
    if !m.is_dir() || m.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not a directory owned by uid {uid}", dir.display()),
        ));
    }
    if m.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The control socket of process `pid` owned by `uid`.
pub fn socket_path(uid: u32, pid: i32) -> PathBuf {
    runtime_dir(uid).join(format!("{pid}.sock"))
}

/// A `sockaddr_un` for a filesystem path (or, with a leading NUL, an
/// abstract name).
pub fn sockaddr(path: &[u8]) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut a: libc::sockaddr_un = unsafe { mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if path.len() >= a.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    for (d, s) in a.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    let len =
        mem::size_of::<libc::sa_family_t>() + path.len() + usize::from(path.first() != Some(&0));
    Ok((a, len as libc::socklen_t))
}

/// A datagram from a peer, with the peer's kernel-checked credentials.
pub struct Datagram {
    pub len: usize,
    pub pid: i32,
    pub uid: u32,
    pub from: libc::sockaddr_un,
    pub from_len: libc::socklen_t,
}

/// Receive one datagram into `buf` with its sender's credentials.
pub fn recv_with_creds(fd: i32, buf: &mut [u8]) -> io::Result<Datagram> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: plain data, zero is valid.
    let mut from: libc::sockaddr_un = unsafe { mem::zeroed() };
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_un).cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_un>() as u32;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&cbuf);
    // SAFETY: msg describes valid buffers owned by this frame.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let (mut pid, mut uid) = (0, u32::MAX);
    // SAFETY: walking the control messages the kernel filled in `msg`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                let cred = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::ucred);
                pid = cred.pid;
                uid = cred.uid;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(Datagram {
        len: n as usize,
        pid,
        uid,
        from,
        from_len: msg.msg_namelen,
    })
}

/// Turn on SO_PASSCRED so received datagrams carry their sender's creds.
pub fn pass_credentials(fd: i32) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with a pointer to a live c_int.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&one as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

struct OwnedFd(i32);
impl Drop for OwnedFd {
    fn drop(&mut self) {
        // SAFETY: closing a descriptor this value owns.
        unsafe { libc::close(self.0) };
    }
}

fn process_uid(pid: i32) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|m| m.uid())
}

fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks existence.
    unsafe {
        libc::kill(pid, 0) == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
}

/// The image writers of process `pid` (its children named ckpt-writer, as
/// this process sees their pids), ended ones (zombies) included.
fn writer_children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| crate::names::read_proc(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|k| k.parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|&k| {
            crate::names::read_proc(format!("/proc/{k}/comm"))
                .is_ok_and(|c| c.trim_end() == "ckpt-writer")
        })
        .collect()
}

/// Whether `pid` exists and has not ended (a zombie has).
fn running(pid: i32) -> bool {
    match crate::names::read_proc(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Whether `child` is the program a `ckpt restart` with pid `command`
/// runs (its child).
fn restarted_under(child: i32, command: i32) -> bool {
    let ppid = |p: i32| -> Option<i32> {
        crate::names::read_proc(format!("/proc/{p}/status"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))?
            .trim()
            .parse()
            .ok()
    };
    ppid(child) == Some(command)
}

/// A process in the pid namespace of a `ckpt restart` answers on a socket
/// named after the restart command (its parent) when it is the restarted
/// program, or after its pid inside the namespace and the namespace
/// (`<pid>-ns<inode>`) when the program started it: find either from the
/// process's pid as seen here.
fn restart_command_socket(owner: u32, pid: i32) -> Option<PathBuf> {
    let status = |p: i32| crate::names::read_proc(format!("/proc/{p}/status")).ok();
    let field = |text: &str, key: &str| -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
    };
    // Only for a process in a pid namespace below ours.
    let nspids = field(&status(pid)?, "NSpid:")?;
    if nspids.split_whitespace().count() < 2 {
        return None;
    }
    let parent: i32 = field(&status(pid)?, "PPid:")?.parse().ok()?;
    let path = socket_path(owner, parent);
    if path.exists() {
        return Some(path);
    }
    let inner = nspids.split_whitespace().last()?;
    let ns = pid_namespace(&format!("/proc/{pid}"))?;
    let path = runtime_dir(owner).join(format!("{inner}-ns{ns}.sock"));
    path.exists().then_some(path)
}

/// Remove the sockets of processes that no longer exist (a SIGKILLed
/// program cannot remove its own). Not from inside a restart's pid
/// namespace, whose pids are not the ones the names use.
pub fn sweep_stale(dir: &Path) {
    if crate::restart::restart_namespace().is_some() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut live_namespaces: Option<Option<Vec<u64>>> = None;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".sock")) else {
            continue;
        };
        // "<pid>-ns<inode>": stale once no process lives in that namespace
        // (the namespaces are listed once, and only when such a name exists).
        if let Some((_, ns)) = stem.split_once("-ns") {
            let live = live_namespaces.get_or_insert_with(live_pid_namespaces);
            let gone = ns
                .parse::<u64>()
                .is_ok_and(|ns| live.as_ref().is_some_and(|l| !l.contains(&ns)));
            if gone {
                let _ = std::fs::remove_file(e.path());
            }
            continue;
        }
        // "<pid>": stale once that process is gone.
        if let Ok(pid) = stem.parse::<i32>() {
            // SAFETY: kill with signal 0 only checks existence.
            let gone = pid > 0
                && unsafe { libc::kill(pid, 0) } != 0
                && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
            if gone {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The pid namespaces (inode numbers) of the `ckpt restart`s still
/// running: each has its init (pid 1, named ckpt-init) for as long as it
/// lives. `None` when an init's namespace cannot be told: then no
/// namespace counts as gone.
fn live_pid_namespaces() -> Option<Vec<u64>> {
    let procs = std::fs::read_dir("/proc").ok()?;
    let mut v = Vec::new();
    for p in procs.flatten() {
        if !p
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            continue;
        }
        let comm = crate::names::read_proc(p.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != "ckpt-init" {
            continue;
        }
        match std::fs::metadata(p.path().join("ns/pid")) {
            Ok(m) => v.push(std::os::unix::fs::MetadataExt::ino(&m)),
            // Ended meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
    }
    Some(v)
}

/// The pid namespace (its inode number) of the process at `proc_dir`.
fn pid_namespace(proc_dir: &str) -> Option<u64> {
    let m = std::fs::metadata(format!("{proc_dir}/ns/pid")).ok()?;
    Some(std::os::unix::fs::MetadataExt::ino(&m))
}

/// A datagram socket of the command's, autobound to a unique abstract
/// address so that programs can answer, passing credentials.
fn answer_socket() -> Result<OwnedFd, ControlError> {
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(ControlError::Io(format!(
            "socket: {}",
            io::Error::last_os_error()
        )));
    }
    let fd = OwnedFd(fd);
    let (any, _) = sockaddr(&[]).map_err(|e| ControlError::Io(e.to_string()))?;
    // SAFETY: binding with only the family set requests autobind.
    let r = unsafe {
        libc::bind(
            fd.0,
            (&any as *const libc::sockaddr_un).cast(),
            mem::size_of::<libc::sa_family_t>() as u32,
        )
    };
    if r < 0 {
        return Err(ControlError::Io(format!(
            "bind: {}",
            io::Error::last_os_error()
        )));
    }
    pass_credentials(fd.0).map_err(|e| ControlError::Io(e.to_string()))?;
    Ok(fd)
}

/// Send `req` to process `pid` and wait (at most `timeout`) for its answer.
pub fn request(pid: i32, req: &Request, timeout: Duration) -> Result<Response, ControlError> {
    request_watching(pid, req, timeout, &mut |_| {})
}

/// `request`, calling `tick` with the image writer's pid (once known)
/// every 0.1 s while the answer is awaited (for a progress bar).
pub fn request_watching(
    pid: i32,
    req: &Request,
    timeout: Duration,
    tick: &mut dyn FnMut(Option<i32>),
) -> Result<Response, ControlError> {
    let server = server_socket(pid)?;
    let owner = process_uid(pid).ok_or(ControlError::NoSuchProcess(pid))?;
    let fd = answer_socket()?;
    let body = rmp_serde::to_vec_named(req).map_err(|e| ControlError::Io(e.to_string()))?;
    // Writers that were there before this request (ended or not).
    let before = if req.nonce() != 0 {
        writer_children(pid)
    } else {
        Vec::new()
    };
    let (addr, len) =
        sockaddr(server.as_os_str().as_bytes()).map_err(|e| ControlError::Io(e.to_string()))?;
    // SAFETY: sending a live buffer to a valid address.
    let r = unsafe {
        libc::sendto(
            fd.0,
            body.as_ptr().cast(),
            body.len(),
            0,
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ECONNREFUSED) | Some(libc::ENOENT) => not_under_ckpt(pid),
            Some(libc::EACCES) | Some(libc::EPERM) => ControlError::PermissionDenied(pid),
            _ => ControlError::Io(format!("send to {}: {e}", server.display())),
        });
    }
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: setsockopt with a pointer to a live timeval.
    unsafe {
        libc::setsockopt(
            fd.0,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            mem::size_of::<libc::timeval>() as u32,
        )
    };
    let start = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let nonce = req.nonce();
    // The image writer, once it said it writes (as seen from here).
    let mut writer: Option<i32> = None;
    let mut writer_gone: Option<Instant> = None;
    let mut seen_writer: Option<i32> = None;
    loop {
        match recv_with_creds(fd.0, &mut buf) {
            Ok(d) => {
                if d.uid != owner && d.uid != 0 {
                    continue; // not from the user we asked
                }
                let Ok(resp) = rmp_serde::from_slice::<Response>(&buf[..d.len]) else {
                    if d.pid == pid {
                        return Err(ControlError::Io(format!("bad answer from process {pid}")));
                    }
                    continue;
                };
                let from_target = d.pid == pid || restarted_under(d.pid, pid);
                if !from_target && (nonce == 0 || resp.nonce() != nonce) {
                    continue; // not an answer to this request
                }
                if let Response::Writing { .. } = resp {
                    writer = Some(d.pid);
                    writer_gone = None;
                    continue;
                }
                return Ok(resp);
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) => {
                // A writer that has not said so yet is still seen as the
                // program's child (one that was there before the request
                // is another checkpoint's).
                if writer.is_none() {
                    if let Some(&w) = writer_children(pid).iter().find(|w| !before.contains(w)) {
                        seen_writer = Some(w);
                    }
                }
                tick(writer.or(seen_writer));
                match writer.or(seen_writer) {
                    // A writer that ended without its answer may have been
                    // replaced (the checkpoint starts it again when it
                    // missed memory): a moment's grace for the next one.
                    Some(w)
                        if !running(w)
                            && !writer_children(pid)
                                .iter()
                                .any(|&k| k != w && !before.contains(&k) && running(k)) =>
                    {
                        let since = *writer_gone.get_or_insert_with(Instant::now);
                        if since.elapsed() > Duration::from_secs(2) {
                            return Err(ControlError::Io(format!(
                                "the image writer of process {pid} (process {w}) ended without finishing the image"
                            )));
                        }
                    }
                    Some(_) => writer_gone = None,
                    // (A zombie has exited too: its parent may be waiting on us.)
                    None if !running(pid) => return Err(ControlError::Exited(pid)),
                    None => {}
                }
                if start.elapsed() > timeout {
                    return Err(ControlError::Timeout(pid));
                }
            }
            Err(e) => return Err(ControlError::Io(format!("receive: {e}"))),
        }
    }
}

/// Send datagram `bytes` from `sock` to `to`, waiting while the
/// receiver's queue is full (a command that asked many processes at once
/// gets their answers together; the kernel queues only a few datagrams per
/// socket, net.unix.max_dgram_qlen). Gives up after `patience_ms`.
/// Signal-safe: raw calls only.
pub fn send_to(
    sock: i32,
    bytes: &[u8],
    to: &libc::sockaddr_un,
    to_len: libc::socklen_t,
    patience_ms: u64,
) -> bool {
    for _ in 0..patience_ms.max(1) {
        // SAFETY: sending a live buffer to a valid address; never blocks.
        let r = unsafe {
            libc::sendto(
                sock,
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_DONTWAIT,
                (to as *const libc::sockaddr_un).cast(),
                to_len,
            )
        };
        if r >= 0 {
            return true;
        }
        let e = crate::interpose::errno();
        if e != libc::EAGAIN && e != libc::EINTR && e != libc::ENOBUFS {
            return false;
        }
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        // SAFETY: raw nanosleep on a local timespec.
        unsafe {
            libc::syscall(
                libc::SYS_nanosleep,
                &ts as *const libc::timespec,
                core::ptr::null_mut::<libc::timespec>(),
            )
        };
    }
    false
}

/// The name of one process's control socket as that process gave it
/// (`ckpt checkpoint --control-name`, passed by the shim: a program
/// restarted in a pid namespace answers on a socket named after its
/// restart command, a pid that means nothing inside the namespace).
static NAMED: std::sync::OnceLock<(i32, String)> = std::sync::OnceLock::new();

/// Process `pid` answers on the control socket `name` (as
/// [`crate::restart::control_name`] made it: digits, `-ns` and digits).
pub fn name_socket(pid: i32, name: &str) -> Result<(), String> {
    let (p, ns) = name.split_once("-ns").unwrap_or((name, "0"));
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(p) || !digits(ns) {
        return Err(format!("not a control socket name: {name:?}"));
    }
    let _ = NAMED.set((pid, name.to_string()));
    Ok(())
}

/// The control socket of process `pid` (as this process sees pids).
pub fn server_socket(pid: i32) -> Result<PathBuf, ControlError> {
    if pid <= 0 || !alive(pid) {
        return Err(ControlError::NoSuchProcess(pid));
    }
    // SAFETY: getuid never fails.
    let me = unsafe { libc::getuid() };
    let owner = process_uid(pid).ok_or(ControlError::NoSuchProcess(pid))?;
    if owner != me && me != 0 {
        return Err(ControlError::PermissionDenied(pid));
    }
    if let Some((p, name)) = NAMED.get() {
        let named = runtime_dir(owner).join(format!("{name}.sock"));
        if *p == pid && named.exists() {
            return Ok(named);
        }
    }
    // Asked from inside a restart's pid namespace (a tree's command
    // started by its root): pids are the namespace's, and a name that is
    // a pid alone is a process's outside it (or a stale one).
    if let Some(ns) = crate::restart::restart_namespace() {
        let inner = runtime_dir(owner).join(format!("{pid}-ns{ns}.sock"));
        return if inner.exists() {
            Ok(inner)
        } else {
            Err(not_under_ckpt(pid))
        };
    }
    // The shim made its socket under the uid it started with: a program
    // that dropped privileges since (setresuid) answers in its starter's
    // directory, which is ours when we started it.
    let mut owners = vec![owner];
    if me != owner {
        owners.push(me);
    }
    owners
        .iter()
        .find_map(|&o| {
            let server = socket_path(o, pid);
            if server.exists() {
                Some(server)
            } else {
                restart_command_socket(o, pid)
            }
        })
        .ok_or_else(|| not_under_ckpt(pid))
}

/// No control socket answers for `pid`: it is not under ckpt, or it has
/// ended (a zombie its parent has not reaped keeps its pid).
fn not_under_ckpt(pid: i32) -> ControlError {
    let stat = crate::names::read_proc(format!("/proc/{pid}/stat")).unwrap_or_default();
    match stat.rsplit_once(") ") {
        Some((_, rest)) if rest.starts_with('Z') => ControlError::Io(format!(
            "process {pid} has ended (its parent has not reaped it yet): there is nothing to checkpoint"
        )),
        _ => ControlError::NotUnderCkpt(pid),
    }
}

/// One command talking to several processes at once (a tree checkpoint):
/// requests out to any control socket, answers in from any of them.
pub struct Session {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Session {
    pub fn new() -> Result<Session, ControlError> {
        let fd = answer_socket()?;
        Ok(Session {
            fd,
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Send `req` to the control socket at `server`.
    pub fn send(&self, server: &Path, req: &Request) -> Result<(), String> {
        let body = rmp_serde::to_vec_named(req).map_err(|e| e.to_string())?;
        let (addr, len) = sockaddr(server.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: sending a live buffer to a valid address.
        let r = unsafe {
            libc::sendto(
                self.fd.0,
                body.as_ptr().cast(),
                body.len(),
                0,
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        if r < 0 {
            return Err(format!(
                "send to {}: {}",
                server.display(),
                io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    /// The next answer carrying `nonce`, from a process of our user (its
    /// pid as the kernel reports it here), within `timeout`.
    pub fn recv(&mut self, nonce: u64, timeout: Duration) -> Option<(i32, Response)> {
        let until = Instant::now() + timeout;
        // SAFETY: getuid never fails.
        let me = unsafe { libc::getuid() };
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let mut p = libc::pollfd {
                fd: self.fd.0,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll of one live pollfd.
            let n = unsafe { libc::poll(&mut p, 1, left.as_millis().clamp(1, 1000) as i32) };
            if n <= 0 {
                continue;
            }
            let Ok(d) = recv_with_creds(self.fd.0, &mut self.buf) else {
                continue;
            };
            if d.uid != me && d.uid != 0 && me != 0 {
                continue;
            }
            match rmp_serde::from_slice::<Response>(&self.buf[..d.len]) {
                Ok(r) if r.nonce() == nonce => return Some((d.pid, r)),
                _ => continue,
            }
        }
    }
}

/// A C string from a path (for the shim's raw calls).
pub fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_sockets_are_swept_live_ones_kept() {
        let dir = std::env::temp_dir().join(format!("ckpt-sweep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let me = format!("{}.sock", std::process::id());
        // No process has pid i32::MAX; no ckpt-init lives in namespace 1.
        let names = [me.as_str(), "2147483647.sock", "5-ns1.sock", "notes.txt"];
        for n in names {
            std::fs::write(dir.join(n), b"").unwrap();
        }
        sweep_stale(&dir);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let _ = std::fs::remove_dir_all(&dir);
        let mut want = vec![me, "notes.txt".to_string()];
        want.sort();
        assert_eq!(left, want);
    }
}
