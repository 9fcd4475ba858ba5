//! `ckpt checkpoint PID` of a job with several processes: find the job
//! (the process `ckpt run` or `ckpt restart` started and every descendant),
//! freeze all of it at one moment, have each process write its image, and
//! publish them together (see `ckpt::tree`).
//!
//! ```text
//! command                    each process (in its signal handler)
//! TreeCheckpoint  ───────▶   freeze ─▶ Frozen
//! (all Frozen; the job is checked again: a process born meanwhile
//!  calls the checkpoint off and it is tried again)
//! TreeContinue    ───────▶   gather, fork the writer ─▶ Gathered
//! TreeContinue    ───────▶   thaw (the program goes on)
//!                            the writer: PID.img ─▶ Checkpointed
//! manifest, rename of the directory: the tree image is in place
//! ```

use ckpt::control::{self, Request, Response, Session};
use ckpt::tree::{self, Manifest, Member};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A process of the job as this command sees it.
#[derive(Debug, Clone)]
struct Proc {
    /// Its pid here.
    pid: i32,
    /// Its parent's pid here (0 for the root).
    ppid: i32,
    comm: String,
    /// A zombie's wait status.
    zombie: Option<i32>,
    socket: Option<PathBuf>,
}

/// A /proc file as text ("" when unreadable). Bytes that are not UTF-8
/// (a mapped file's name, a command name set by the program) are kept
/// as replacement characters: the rest of the file must still be read.
fn read(path: String) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn comm(pid: i32) -> String {
    read(format!("/proc/{pid}/comm")).trim_end().to_string()
}

/// Fields of /proc/PID/stat after the command name (state is [0]).
fn stat_fields(pid: i32) -> Vec<String> {
    let s = read(format!("/proc/{pid}/stat"));
    s.rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn ppid(pid: i32) -> i32 {
    stat_fields(pid)
        .get(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut v: Vec<i32> = tasks
        .flatten()
        .flat_map(|t| {
            read(t.path().join("children").display().to_string())
                .split_whitespace()
                .filter_map(|k| k.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The pid of `pid` inside its own pid namespace.
fn inner_pid(pid: i32) -> i32 {
    read(format!("/proc/{pid}/status"))
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| v.split_whitespace().last()?.parse().ok())
        .unwrap_or(pid)
}

/// The job's root for a process the user named: the `ckpt restart`
/// command stands for the program it runs (waited for a moment: just
/// restarted, the program makes its control socket again, and the
/// command is never the job: taken for it, its children made a "tree"
/// of the one program); otherwise the highest ancestor that still runs
/// the shim.
pub(crate) fn job_root(pid: i32) -> i32 {
    if comm(pid) == "ckpt" {
        let until = Instant::now() + Duration::from_secs(2);
        loop {
            if let Some(&k) = children(pid)
                .iter()
                .find(|&&k| comm(k) != "ckpt-init" && control::server_socket(k).is_ok())
            {
                return k;
            }
            if Instant::now() >= until || !Path::new(&format!("/proc/{pid}")).exists() {
                return pid;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let mut p = pid;
    loop {
        let up = ppid(p);
        if up <= 1 || matches!(comm(up).as_str(), "ckpt" | "ckpt-init") {
            return p;
        }
        if control::server_socket(up).is_err() {
            return p;
        }
        p = up;
    }
}

/// Held while one `ckpt checkpoint` works on a job: a later one for the
/// same job waits for it (its request would otherwise meet processes
/// frozen by the first and fail with misleading words), then takes its
/// own. An abstract Unix socket name bound by the holder: no file is left
/// behind, and the kernel frees the name when the holder dies.
pub struct JobLock(#[allow(dead_code)] std::os::unix::net::UnixListener);

/// Take the checkpoint lock of the job of process `pid` (its root and
/// the root's start time name it), waiting while another command holds
/// it; says so once, unless `quiet`. None: the name could not be bound
/// for another reason (the checkpoint goes on unlocked, as before).
pub fn lock_job(pid: i32, quiet: bool) -> Option<JobLock> {
    use std::os::linux::net::SocketAddrExt;
    let root = job_root(pid);
    let started = stat_fields(root).get(19).cloned().unwrap_or_default();
    let name = format!("ckpt-checkpoint-job-{root}-{started}");
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).ok()?;
    let mut said = quiet;
    loop {
        match std::os::unix::net::UnixListener::bind_addr(&addr) {
            Ok(l) => return Some(JobLock(l)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                if !said {
                    eprintln!(
                        "ckpt: a checkpoint of the job of process {root} is under way; this \
                         one is taken once it is done"
                    );
                    said = true;
                }
                if ended(root) {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return None,
        }
    }
}

/// Every process of the job below `root` (included), parents first.
/// Image writers are ckpt's own, not the job's.
fn job(root: i32) -> Vec<Proc> {
    let mut out = Vec::new();
    let mut todo = vec![(root, 0)];
    while let Some((pid, parent)) = todo.pop() {
        let f = stat_fields(pid);
        let Some(state) = f.first() else { continue };
        let c = comm(pid);
        // Image writers are ckpt's, and so is this command when the job
        // started it (a periodic checkpoint of a tree).
        if pid != root && (c == "ckpt-writer" || pid == std::process::id() as i32) {
            continue;
        }
        // Nor another `ckpt checkpoint` (the shim starts one for each
        // checkpoint into a store): a checkpoint is not part of the job.
        if pid != root && c == "ckpt" && (is_checkpoint_command(pid) || state == "Z") {
            // (One that ended and is not reaped yet has no command line
            // left: a zombie named ckpt is taken for one too.)
            continue;
        }
        let zombie = (state == "Z").then(|| {
            // exit_code, field 52 of stat (index 49 here).
            f.get(49).and_then(|x| x.parse().ok()).unwrap_or(0)
        });
        out.push(Proc {
            pid,
            ppid: parent,
            comm: c,
            zombie,
            socket: runs_shim(pid)
                .then(|| control::server_socket(pid).ok())
                .flatten(),
        });
        let mut kids = children(pid);
        kids.reverse();
        todo.extend(kids.into_iter().map(|k| (k, pid)));
    }
    out
}

/// Whether process `pid` runs `ckpt checkpoint ...`.
fn is_checkpoint_command(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|&b| b == 0).nth(1) == Some(b"checkpoint"))
}

/// Whether process `pid` has ckpt's shim loaded (a control socket file
/// alone proves nothing: a process that exec'd a static binary leaves
/// its socket behind). One with the shim but no socket is ending: the
/// shim's fini removes the socket before the exit is over.
fn runs_shim(pid: i32) -> bool {
    read(format!("/proc/{pid}/maps")).contains("libckpt_shim")
}

/// Processes that the job started but that are no longer in it (their
/// parent ended and they were adopted outside it: a daemon's double
/// fork): found by the `CKPT_JOB` tag `ckpt run` gave the job. They are
/// not in its image; one line each. Asked once the job runs again: one
/// whose parents lead to the job's root is in the job (forked since the
/// job was counted: make's next recipe shell), not a stray (before, a
/// list of the job's processes made a moment earlier called such a one
/// "left it").
pub fn strays(pid: i32) -> Vec<String> {
    let root = job_root(pid);
    let Some(mine) = ckpt::files::joblog::tag_of(root) else {
        return Vec::new();
    };
    let in_job = |mut p: i32| {
        for _ in 0..4096 {
            if p == root {
                return true;
            }
            p = ppid(p);
            if p <= 1 {
                return false;
            }
        }
        false
    };
    ckpt::files::joblog::tagged_processes()
        .into_iter()
        .filter(|(p, t)| *t == mine && !in_job(*p) && *p != std::process::id() as i32)
        .map(|(p, _)| p)
        .filter(|&p| stat_fields(p).first().is_some_and(|s| s != "Z") && comm(p) != "ckpt-writer")
        .map(|p| {
            format!(
                "process {p} ({}) was started by this job but left it (its parent ended): it is not in the image",
                comm(p)
            )
        })
        .collect()
}

/// Whether `pid` has descendants that belong to the job (not only image
/// writers): then a checkpoint must take the whole tree.
pub fn has_descendants(pid: i32) -> bool {
    job(job_root(pid)).len() > 1
}

/// Whether process `pid` is stopped (SIGSTOP, SIGTSTP: a shell's job
/// control, or a debugger's): it runs none of its code, ckpt's included,
/// until it is continued.
fn stopped(pid: i32) -> bool {
    stat_fields(pid)
        .first()
        .is_some_and(|s| s == "T" || s == "t")
}

/// Why process `pid` cannot be checkpointed: it changed its root
/// directory (chroot) away from ckpt's. Its files are named from its own
/// root, and a restart would open them from ckpt's: outside its jail.
fn chrooted(pid: i32) -> Option<String> {
    let own = std::fs::read_link("/proc/self/root").ok()?;
    let its = std::fs::read_link(format!("/proc/{pid}/root")).ok()?;
    (its != own).then(|| {
        format!(
            "process {pid} ({}) changed its root directory (chroot) to {}: a restart would \
             open its files from {} instead, outside it; nothing was stopped",
            comm(pid),
            its.display(),
            own.display()
        )
    })
}

/// Why the job of `pid`, when it is one process, cannot be
/// checkpointed now: it chrooted, or it is stopped (it would never
/// answer).
pub fn single_refusal(pid: i32) -> Option<String> {
    let root = job_root(pid);
    if let Some(why) = chrooted(root) {
        return Some(why);
    }
    stopped(root).then(|| {
        stopped_refusal(&Proc {
            pid: root,
            ppid: ppid(root),
            comm: comm(root),
            zombie: None,
            socket: None,
        })
    })
}

/// Why the job cannot be checkpointed now, if one of its processes
/// shares its parent's address space (kcmp KCMP_VM): a vfork child
/// before its exec, or a clone with CLONE_VM.
fn memory_sharer(procs: &[Proc]) -> Option<String> {
    const KCMP_VM: i32 = 1;
    let p = procs.iter().find(|p| {
        p.zombie.is_none()
            && p.ppid > 0
            // SAFETY: kcmp compares two processes' objects; no memory is passed.
            && unsafe { libc::syscall(libc::SYS_kcmp, p.pid, p.ppid, KCMP_VM, 0, 0) } == 0
    })?;
    Some(format!(
        "process {} ({}), a child of {}, shares its parent's memory (a vfork child that has \
         not called exec, or a clone with CLONE_VM): neither can be checkpointed until it \
         calls exec or ends; the job runs on untouched",
        p.pid, p.comm, p.ppid
    ))
}

/// Why a stopped process keeps the job from being checkpointed.
fn stopped_refusal(p: &Proc) -> String {
    format!(
        "process {} ({}), a child of {}, is stopped (SIGSTOP or SIGTSTP: job control, or a \
         debugger): it cannot take part in a checkpoint until it runs again (kill -CONT {}); \
         the job runs on untouched",
        p.pid, p.comm, p.ppid, p.pid
    )
}

/// Why a job cannot be checkpointed whole, if it cannot.
fn refusal(procs: &[Proc]) -> Option<String> {
    let p = procs
        .iter()
        .find(|p| p.zombie.is_none() && p.socket.is_none())?;
    if stopped(p.pid) {
        return Some(stopped_refusal(p));
    }
    if runs_shim(p.pid) {
        return Some(format!(
            "process {} ({}), a child of {}, runs ckpt's shim but has no control socket: its \
             exit began and has not finished (the shim shuts down first; stdio flushing into \
             a full pipe, say), or the shim could not start (see the job's stderr); the job \
             cannot be checkpointed whole until it ends; nothing was stopped",
            p.pid, p.comm, p.ppid
        ));
    }
    Some(format!(
        "process {} ({}), a child of {}, does not run ckpt's shim (a static binary, a setuid \
         program, or one that dropped LD_PRELOAD): the job cannot be checkpointed whole; \
         nothing was stopped",
        p.pid, p.comm, p.ppid
    ))
}

pub struct Done {
    pub path: PathBuf,
    pub processes: usize,
    pub bytes: u64,
    pub freeze_us: u64,
}

/// Checkpoint the whole job `pid` belongs to.
pub fn checkpoint(pid: i32, dir: Option<PathBuf>, timeout: Duration) -> Result<Done, String> {
    let root = job_root(pid);
    // The root must answer (a moment after an exec it has no socket yet).
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        let procs = job(root);
        match procs.first() {
            Some(r) if r.socket.is_some() => break,
            _ if ended(root) && !runs_shim(root) => return Err(ended_refusal(root)),
            _ if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            _ if ended(root) => return Err(ended_refusal(root)),
            _ => return Err(format!("process {root} does not run ckpt's shim")),
        }
    }
    take(root, dir.as_deref(), timeout)
}

/// Whether process `pid` has ended or is ending: gone, a zombie, or
/// running ckpt's shim without its control socket (the shim's fini
/// removed it: the exit is under way).
pub fn ended(pid: i32) -> bool {
    let stat = read(format!("/proc/{pid}/stat"));
    match stat.rsplit_once(") ") {
        None => true,
        Some((_, rest)) if rest.starts_with(['Z', 'X']) => true,
        _ => runs_shim(pid) && control::server_socket(pid).is_err(),
    }
}

fn ended_refusal(pid: i32) -> String {
    format!(
        "process {pid} has ended (or its exit is under way): there is no job left to checkpoint"
    )
}

/// Whether process `pid`'s exit has begun (PF_EXITING in its stat
/// flags): its memory may already be gone (no maps, so no shim seen in
/// them) though it is not a zombie yet.
fn exiting(pid: i32) -> bool {
    const PF_EXITING: u64 = 0x4;
    stat_fields(pid)
        .get(6)
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|f| f & PF_EXITING != 0)
}

/// A process started less than a second ago.
fn young(pid: i32) -> bool {
    let start: u64 = stat_fields(pid)
        .get(19)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf without side effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let uptime: f64 = read("/proc/uptime".into())
        .split_whitespace()
        .next()
        .and_then(|u| u.parse().ok())
        .unwrap_or(0.0);
    uptime - (start as f64 / hz as f64) < 1.0
}

/// Freeze every process of the job, then have each gather and write.
///
/// The freeze converges even while the job forks and execs: a frozen
/// process cannot fork, so asking every live process not yet frozen, again
/// and again (the job counted anew each time), ends with every process
/// frozen or a zombie its frozen parent cannot reap. A process found
/// without the shim for more than a moment (not one in the middle of an
/// exec) refuses the checkpoint; every process asked then thaws untouched.
fn take(root: i32, dir: Option<&Path>, timeout: Duration) -> Result<Done, String> {
    // A vfork child before its exec (its parent waits for it: it can
    // neither answer nor freeze) is given a moment to exec or end.
    let until = Instant::now() + Duration::from_secs(2);
    while let Some(why) = memory_sharer(&job(root)) {
        if Instant::now() > until {
            return Err(why);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut session = Session::new().map_err(|e| e.to_string())?;
    // The root says where its images go.
    let (run_dir, keep) = match control::request(root, &Request::Ping, Duration::from_secs(5)) {
        Ok(Response::Pong { dir, keep, .. }) => (PathBuf::from(dir), keep.max(1)),
        Ok(other) => return Err(format!("unexpected answer {other:?}")),
        Err(e) => return Err(e.to_string()),
    };
    let dir = dir.map(Path::to_path_buf).unwrap_or(run_dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let root_inner = inner_pid(root);
    let prefix = ckpt::checkpoint::image_prefix(&comm(root), root_inner);
    let seq = next_seq(&dir, &prefix);
    let final_path = dir.join(format!("{prefix}{seq}.tree"));
    let tmp = dir.join(format!(".{prefix}{seq}.tree.tmp.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let cleanup = |tmp: &Path| {
        let _ = std::fs::remove_dir_all(tmp);
    };
    let nonce = control::new_nonce();
    let wait_ms = 10_000u64;
    let mut members = MemberDirs::new(&tmp);
    let request = |dir: &Path| Request::TreeCheckpoint {
        dir: dir.to_string_lossy().into_owned(),
        published: final_path.to_string_lossy().into_owned(),
        seq,
        nonce,
        timeout_ms: wait_ms,
    };
    // Phase 1. `asked`: process -> (command, socket inode) when asked (an
    // exec makes both new: ask again); `inner`: frozen process -> its pid
    // as the program sees it.
    let mut asked: HashMap<i32, (String, u64, PathBuf)> = HashMap::new();
    let mut inner: HashMap<i32, i32> = HashMap::new();
    let mut unshimmed: HashMap<i32, Instant> = HashMap::new();
    let deadline = Instant::now() + timeout.min(Duration::from_millis(wait_ms / 2));
    let call_off_all = |session: &Session, asked: &HashMap<i32, (String, u64, PathBuf)>| {
        for (_, _, sock) in asked.values() {
            let _ = session.send(sock, &Request::TreeContinue { nonce, go: false });
        }
    };
    let mut procs = loop {
        let procs = job(root);
        let mut waiting: Vec<&Proc> = Vec::new();
        for p in procs
            .iter()
            .filter(|p| p.zombie.is_none() && !inner.contains_key(&p.pid))
        {
            waiting.push(p);
            let why = chrooted(p.pid).or_else(|| stopped(p.pid).then(|| stopped_refusal(p)));
            if let Some(why) = why {
                call_off_all(&session, &asked);
                cleanup(&tmp);
                return Err(why);
            }
            let Some(sock) = &p.socket else {
                let since = *unshimmed.entry(p.pid).or_insert_with(Instant::now);
                // One that is ending is waited for (until the deadline).
                // (CI: one whose exit had just released its memory was
                // called "does not run ckpt's shim".)
                if since.elapsed() > Duration::from_secs(1)
                    && !young(p.pid)
                    && !runs_shim(p.pid)
                    && !exiting(p.pid)
                {
                    call_off_all(&session, &asked);
                    cleanup(&tmp);
                    return Err(refusal(std::slice::from_ref(p)).unwrap_or_default());
                }
                continue;
            };
            let ino = std::fs::metadata(sock).map(|m| m.ino()).unwrap_or(0);
            let seen = (p.comm.clone(), ino, sock.clone());
            if asked.get(&p.pid) != Some(&seen)
                && session.send(sock, &request(&members.of(p.pid))).is_ok()
            {
                asked.insert(p.pid, seen);
            }
        }
        if waiting.is_empty() {
            break procs;
        }
        if Instant::now() > deadline {
            call_off_all(&session, &asked);
            cleanup(&tmp);
            if let Some(why) = waiting
                .iter()
                .find(|p| p.socket.is_none())
                .and_then(|p| refusal(std::slice::from_ref(*p)))
            {
                return Err(why);
            }
            let silent: Vec<String> = waiting
                .iter()
                .map(|p| format!("{} ({})", p.pid, p.comm))
                .collect();
            return Err(format!(
                "process(es) {} did not stop within {:.1} s; the job runs on untouched",
                silent.join(", "),
                timeout
                    .min(Duration::from_millis(wait_ms / 2))
                    .as_secs_f64()
            ));
        }
        while let Some((from, r)) = session.recv(nonce, Duration::from_millis(20)) {
            match r {
                Response::Frozen { pid, .. } => {
                    inner.insert(from, pid);
                    // All the ones counted: count again at once.
                    if waiting.iter().all(|p| inner.contains_key(&p.pid)) {
                        break;
                    }
                }
                Response::Error { message, .. } => {
                    call_off_all(&session, &asked);
                    cleanup(&tmp);
                    return Err(format!("process {from} ({}): {message}", comm(from)));
                }
                _ => {}
            }
        }
    };
    // (A vfork made since.)
    if let Some(why) = memory_sharer(&procs) {
        call_off_all(&session, &asked);
        cleanup(&tmp);
        return Err(why);
    }
    // The root ended before it froze (it answered nothing): no image.
    if procs.iter().all(|p| p.pid != root || p.zombie.is_some()) {
        call_off_all(&session, &asked);
        cleanup(&tmp);
        return Err(format!(
            "process {root} ended during the checkpoint: there is no job left to checkpoint"
        ));
    }
    // A frozen process is told to go on through the socket it answered
    // from (it cannot have exec'd since): the last count, which found its
    // shim and socket again in /proc and the runtime directory, could
    // have missed them once (seen under load, the process then waiting
    // frozen for a word that never came).
    for p in procs.iter_mut().filter(|p| inner.contains_key(&p.pid)) {
        if let Some((_, _, sock)) = asked.get(&p.pid) {
            p.socket = Some(sock.clone());
        }
    }
    // Asked, frozen, then gone (killed from outside) would be missed.
    let live: Vec<&Proc> = procs.iter().filter(|p| p.zombie.is_none()).collect();
    let manifest = describe(&procs, &inner, root, seq);
    // Phase 2: every process gathers and starts its writer.
    send_all(&session, &live, &Request::TreeContinue { nonce, go: true });
    let mut gathered: std::collections::HashSet<i32> = std::collections::HashSet::new();
    let mut failed: Option<String> = None;
    let mut results: BTreeMap<i32, (String, u64, u64)> = BTreeMap::new();
    let mut errors: Vec<String> = Vec::new();
    while gathered.len() < live.len() {
        match session.recv(nonce, Duration::from_millis(wait_ms / 2)) {
            Some((from, Response::Gathered { .. })) => {
                gathered.insert(from);
            }
            Some((from, Response::Error { message, .. })) => {
                gathered.insert(from);
                failed.get_or_insert(format!("process {from}: {message}"));
            }
            Some((from, r @ Response::Checkpointed { .. })) => {
                results.insert(from, written(r));
            }
            Some(_) => {}
            None => {
                let silent: Vec<String> = live
                    .iter()
                    .filter(|p| !gathered.contains(&p.pid))
                    .map(|p| {
                        let sock = match &p.socket {
                            Some(s) if s.exists() => "its socket there",
                            Some(_) => "its socket gone",
                            None => "no socket",
                        };
                        format!("{} ({}, {sock}, {})", p.pid, comm(p.pid), state_of(p.pid))
                    })
                    .collect();
                failed.get_or_insert(format!(
                    "process(es) {} did not gather their state within {:.1} s",
                    silent.join(", "),
                    wait_ms as f64 / 2000.0
                ));
                break;
            }
        }
    }
    // Phase 3: everybody thaws.
    send_all(&session, &live, &Request::TreeContinue { nonce, go: true });
    if let Some(f) = failed {
        cleanup(&tmp);
        return Err(f);
    }
    // The writers answer once their image is in place.
    let until = Instant::now() + timeout;
    while results.len() < live.len() {
        match session.recv(nonce, until.saturating_duration_since(Instant::now())) {
            Some((from, r @ Response::Checkpointed { .. })) => {
                results.insert(from, written(r));
            }
            Some((from, Response::Error { message, .. })) => {
                errors.push(format!("writer {from}: {message}"));
                break;
            }
            Some(_) => {}
            None => {
                errors.push("the image writers did not all finish in time".into());
                break;
            }
        }
    }
    if let Some(e) = errors.first() {
        cleanup(&tmp);
        return Err(e.clone());
    }
    // Every image is there (each writer synced its own).
    members.gather();
    for m in manifest.processes.iter().filter(|m| m.image.is_some()) {
        let p = tmp.join(tree::image_name(m.pid));
        if !p.is_file() {
            cleanup(&tmp);
            return Err(format!("the image of process {} is missing", m.pid));
        }
    }
    let bytes: u64 = results.values().map(|r| r.1).sum();
    let freeze_us = results.values().map(|r| r.2).max().unwrap_or(0);
    let mut manifest = manifest;
    manifest.freeze_us = freeze_us;
    publish(&tmp, &final_path, &manifest).inspect_err(|_| cleanup(&tmp))?;
    prune(&dir, &prefix, &final_path, keep);
    Ok(Done {
        path: final_path,
        processes: procs.len(),
        bytes,
        freeze_us,
    })
}

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};

/// Where each process of the job writes its image. Its writer is a fork
/// of the process, with its credentials: a process that runs as another
/// user than the command (a worker that dropped root's privileges) cannot
/// write into the command's 0700 directory. Root's command gives each
/// such user a directory of its own inside (0700, the user's), lets it
/// through the tree's directory (0711: no listing; the images are 0600),
/// and moves the images up once written. The tree directory keeps 0711,
/// so that the next checkpoint's writer reaches its image there to build
/// on it.
struct MemberDirs<'a> {
    tmp: &'a Path,
    /// fs uid -> its directory (None: could not be made).
    made: HashMap<u32, Option<PathBuf>>,
}

impl<'a> MemberDirs<'a> {
    fn new(tmp: &'a Path) -> Self {
        MemberDirs {
            tmp,
            made: HashMap::new(),
        }
    }

    /// The directory process `pid` writes its image into.
    fn of(&mut self, pid: i32) -> PathBuf {
        // SAFETY: getter without preconditions.
        let me = unsafe { libc::geteuid() };
        let status = read(format!("/proc/{pid}/status"));
        let fs_id = |key: &str| -> Option<u32> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(4)?.parse().ok()
        };
        let (Some(uid), Some(gid)) = (fs_id("Uid:"), fs_id("Gid:")) else {
            return self.tmp.to_path_buf();
        };
        if me != 0 || uid == me {
            return self.tmp.to_path_buf();
        }
        let tmp = self.tmp;
        let made = self.made.entry(uid).or_insert_with(|| {
            let d = tmp.join(format!(".uid-{uid}"));
            std::fs::DirBuilder::new().mode(0o700).create(&d).ok()?;
            std::os::unix::fs::chown(&d, Some(uid), Some(gid)).ok()?;
            std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o711)).ok()?;
            Some(d)
        });
        made.clone().unwrap_or_else(|| tmp.to_path_buf())
    }

    /// Move every image written in a user's directory up into the tree's
    /// (whatever else is left there goes).
    fn gather(&self) {
        for d in self.made.values().flatten() {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                let name = e.file_name();
                if !name.to_string_lossy().starts_with('.') {
                    let _ = std::fs::rename(e.path(), self.tmp.join(&name));
                }
            }
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// What /proc says process `pid`'s threads are doing: each one's state
/// letter and where it waits in the kernel ("gone" when it has ended).
fn state_of(pid: i32) -> String {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return "gone".into();
    };
    let threads: Vec<String> = tasks
        .flatten()
        .map(|t| {
            let at = t.path();
            let stat = read(at.join("stat").to_string_lossy().into_owned());
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, r)| r.split(' ').next())
                .unwrap_or("?")
                .to_string();
            let wchan = read(at.join("wchan").to_string_lossy().into_owned());
            match wchan.as_str() {
                "" | "0" => state,
                w => format!("{state} in {w}"),
            }
        })
        .collect();
    format!("threads: {}", threads.join(", "))
}

/// A writer's answer: (path, bytes, how long its process was frozen).
fn written(r: Response) -> (String, u64, u64) {
    match r {
        Response::Checkpointed {
            path,
            bytes,
            freeze_us,
            ..
        } => (path, bytes, freeze_us),
        _ => (String::new(), 0, 0),
    }
}

/// A failed send is tried again for a moment (0.2 s): a word lost here
/// leaves that process frozen until it gives up on the checkpoint.
fn send_all(session: &Session, live: &[&Proc], req: &Request) {
    for p in live {
        if let Some(s) = &p.socket {
            for _ in 0..100 {
                if session.send(s, req).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// Generation numbers already taken elsewhere (a store's: its images
/// are staged in an empty directory). See [`next_seq`].
static SEQ_FLOOR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Tree images made by this command get a number above `seq`.
pub fn set_seq_floor(seq: u64) {
    SEQ_FLOOR.store(seq, std::sync::atomic::Ordering::Relaxed);
}

/// The next generation number for tree images named `prefix…`.
fn next_seq(dir: &Path, prefix: &str) -> u64 {
    let floor = SEQ_FLOOR.load(std::sync::atomic::Ordering::Relaxed);
    floor.max(next_seq_in(dir, prefix) - 1) + 1
}

fn next_seq_in(dir: &Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_prefix(prefix)?
                        .split('.')
                        .next()?
                        .parse::<u64>()
                        .ok()
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
        + 1
}

/// The manifest of the frozen job (pids as the programs see them).
fn describe(procs: &[Proc], inner: &HashMap<i32, i32>, root: i32, seq: u64) -> Manifest {
    let to_inner = |p: i32| -> i32 { inner.get(&p).copied().unwrap_or_else(|| inner_pid(p)) };
    let members: Vec<i32> = procs.iter().map(|p| p.pid).collect();
    let root_f = stat_fields(root);
    let root_sid: i32 = root_f.get(3).and_then(|x| x.parse().ok()).unwrap_or(0);
    // A root that made a session of its own makes one again (leader of
    // its group too). Otherwise its group and session are the ones the
    // restart gives it — a group of its own would leave the terminal's
    // foreground —, `None`, like a group or session from outside the job.
    let own_session = root_sid == root;
    let in_job = |x: i32| -> Option<i32> {
        if x == root {
            own_session.then(|| to_inner(x))
        } else {
            members.contains(&x).then(|| to_inner(x))
        }
    };
    let processes = procs
        .iter()
        .map(|p| {
            let f = stat_fields(p.pid);
            let pgid: i32 = f.get(2).and_then(|x| x.parse().ok()).unwrap_or(0);
            let sid: i32 = f.get(3).and_then(|x| x.parse().ok()).unwrap_or(0);
            let me = to_inner(p.pid);
            Member {
                pid: me,
                ppid: if p.pid == root { 0 } else { to_inner(p.ppid) },
                pgid: in_job(pgid),
                sid: in_job(sid),
                comm: p.comm.clone(),
                image: p.zombie.is_none().then(|| tree::image_name(me)),
                zombie_status: p.zombie,
            }
        })
        .collect();
    Manifest {
        version: tree::MANIFEST_VERSION,
        root: to_inner(root),
        seq,
        created_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        processes,
        shared: shared_files(procs, &to_inner),
        freeze_us: 0,
    }
}

/// Open file descriptions held by several processes of the job (kcmp
/// KCMP_FILE says whether two descriptors are one), as (pid, fd) lists
/// with the programs' pids. The job is frozen.
fn shared_files(procs: &[Proc], to_inner: &dyn Fn(i32) -> i32) -> Vec<Vec<(i32, i32)>> {
    use std::os::unix::fs::MetadataExt;
    // (dev, ino) -> [(pid here, fd)]
    let mut by_file: BTreeMap<(u64, u64), Vec<(i32, i32)>> = BTreeMap::new();
    for p in procs.iter().filter(|p| p.zombie.is_none()) {
        let Ok(d) = std::fs::read_dir(format!("/proc/{}/fd", p.pid)) else {
            continue;
        };
        for e in d.flatten() {
            let Some(fd) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if let Ok(m) = std::fs::metadata(e.path()) {
                by_file
                    .entry((m.dev(), m.ino()))
                    .or_default()
                    .push((p.pid, fd));
            }
        }
    }
    let mut groups: Vec<Vec<(i32, i32)>> = Vec::new();
    for holders in by_file.values() {
        if !holders.iter().any(|h| h.0 != holders[0].0) {
            continue;
        }
        let mut done = vec![false; holders.len()];
        for i in 0..holders.len() {
            if done[i] {
                continue;
            }
            let mut g = vec![holders[i]];
            for j in i + 1..holders.len() {
                if done[j] {
                    continue;
                }
                let (a, b) = (holders[i], holders[j]);
                // SAFETY: kcmp of two descriptors of processes of our user.
                let same = unsafe { libc::syscall(libc::SYS_kcmp, a.0, b.0, 0, a.1, b.1) } == 0;
                if same {
                    done[j] = true;
                    g.push(b);
                }
            }
            if g.iter().any(|h| h.0 != g[0].0) {
                groups.push(g.into_iter().map(|(p, fd)| (to_inner(p), fd)).collect());
            }
        }
    }
    groups
}

/// Write the manifest, sync, and rename the directory into place.
fn publish(tmp: &Path, final_path: &Path, manifest: &Manifest) -> Result<(), String> {
    use std::io::Write;
    let bytes = rmp_serde::to_vec_named(manifest).map_err(|e| e.to_string())?;
    let mpath = tmp.join(tree::MANIFEST);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&mpath)
        .map_err(|e| format!("{}: {e}", mpath.display()))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", mpath.display()))?;
    sync_dir(tmp);
    // A directory cannot be renamed over a non-empty one: the older tree
    // of the same name (a generation number used again after a restart)
    // goes first, only now that the new one is complete.
    if final_path.exists() {
        let _ = std::fs::remove_dir_all(final_path);
    }
    std::fs::rename(tmp, final_path).map_err(|e| format!("{}: {e}", final_path.display()))?;
    if let Some(parent) = final_path.parent() {
        sync_dir(parent);
    }
    Ok(())
}

fn sync_dir(p: &Path) {
    if let Ok(d) = std::fs::File::open(p) {
        let _ = d.sync_all();
    }
}

/// Keep the newest `keep` tree images of this job (the new one included).
fn prune(dir: &Path, prefix: &str, newest: &Path, keep: u32) {
    let Ok(d) = std::fs::read_dir(dir) else {
        return;
    };
    let mut gens: Vec<(std::time::SystemTime, PathBuf)> = d
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(prefix) && n.ends_with(".tree")
        })
        .filter(|e| e.path() != newest)
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    gens.sort();
    let extra = (gens.len() + 1).saturating_sub(keep.max(1) as usize);
    for (_, p) in gens.into_iter().take(extra) {
        let _ = std::fs::remove_dir_all(p);
    }
}
