//! `ckpt restart` in a pid namespace of its own (and a mount namespace
//! with that namespace's /proc), so the program gets its pid back and
//! every thread its tid (glibc, mutex owners and the program itself hold
//! them):
//!
//! ```text
//! ckpt restart    unshares the namespaces (its children go in the new
//!   │             pid namespace), waits, forwards SIGTERM/SIGHUP/SIGUSR1/
//!   │             SIGUSR2, ends with the program's exit status or signal
//!   ├─ ckpt-init  pid 1 of the new namespace: mounts its /proc, reaps
//!   └─ the program, at its old pid (clone3 set_tid), execs the restorer;
//!                 post-restart code re-creates the threads at their old
//!                 tids the same way
//! ```
//!
//! Unprivileged, the namespace comes with a user namespace mapping the
//! user to itself; the program runs with CAP_SYS_ADMIN there only until its
//! threads exist (post-restart code drops it). When the kernel refuses any
//! of this, [`run`] says why and `ckpt restart` restarts without a
//! namespace (new pid and tids; getpid() still answers the old pid).

use std::ffi::CStr;
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

/// Where forwarded signals go (init in the parent, the program in init).
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

const CAP_SYS_ADMIN: u32 = 21;

extern "C" fn forward(sig: libc::c_int) {
    let to = FORWARD_TO.load(Relaxed);
    if to > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(to, sig) };
    }
}

/// Install `forward` for the signals a user sends the restart command.
/// SIGINT and SIGQUIT from a terminal reach the program directly (same
/// process group): here they must do nothing.
fn install_forwarding() {
    for (sig, f) in [
        (
            libc::SIGTERM,
            forward as extern "C" fn(libc::c_int) as usize,
        ),
        (libc::SIGHUP, forward as extern "C" fn(libc::c_int) as usize),
        (
            libc::SIGUSR1,
            forward as extern "C" fn(libc::c_int) as usize,
        ),
        (
            libc::SIGUSR2,
            forward as extern "C" fn(libc::c_int) as usize,
        ),
        (libc::SIGINT, nothing as extern "C" fn(libc::c_int) as usize),
        (
            libc::SIGQUIT,
            nothing as extern "C" fn(libc::c_int) as usize,
        ),
    ] {
        // SAFETY: installing a plain handler (reset to default by exec).
        unsafe { libc::signal(sig, f) };
    }
}

extern "C" fn nothing(_: libc::c_int) {}

/// Set in the namespace's init when the command let the processes left
/// run on (see `let_run_on`).
static RUN_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Init's SIGUSR1 handler: it no longer ends with the command. Signal
/// context: one raw call and an atomic store.
extern "C" fn run_on(_: libc::c_int) {
    // SAFETY: prctl with integer arguments on ourselves, and a write of a
    // static byte to init's end of the pipe.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, 0);
        libc::write(INIT_PIPE.load(Relaxed), b"K".as_ptr().cast(), 1);
    }
    RUN_ON.store(true, Relaxed);
}

/// The pipe between the command and the namespace's init: the command's
/// read end in the command, init's write end in init.
static INIT_PIPE: AtomicI32 = AtomicI32::new(-1);

/// Run the restorer (`argv`) as the program at `pid` in a new pid
/// namespace, as a child of this process. Returns only when that could not
/// be set up (nothing was started); otherwise this process ends with the
/// program's status.
/// `in_parent` runs here once the program's process exists (its pid).
pub fn run(
    argv: &[&CStr],
    pid: i32,
    session_leader: bool,
    clocks: Option<ckpt::image::Clocks>,
    ipc: Ipc,
    in_parent: &mut dyn FnMut(i32),
) -> String {
    let mut child = || {
        // (This child of the command leads no group: setsid cannot fail.)
        lead_session(session_leader);
        exec_restorer(argv)
    };
    run_with(pid, clocks, ipc, &mut child, in_parent)
}

/// A program that led a session of its own (a daemon, off any terminal)
/// leads one again, or the restarter's terminal's hangup would reach it.
/// In the process about to become the program.
pub fn lead_session(session_leader: bool) {
    // SAFETY: setsid of ourselves.
    if session_leader && unsafe { libc::setsid() } < 0 {
        eprintln!(
            "ckpt restart: warning: the program led a session of its own and cannot again ({}): it is in this command's session",
            std::io::Error::last_os_error()
        );
    }
}

/// The program's IPC objects: System V objects to make again at their
/// ids, and whether it held POSIX message queues (made again by name):
/// either gets an IPC namespace of the restart's own.
pub struct Ipc<'a> {
    pub sysv: &'a [ckpt::image::SysvObject],
    pub mqueues: bool,
}

impl Ipc<'_> {
    /// Whether the image `meta` holds a message queue descriptor.
    pub fn has_mqueues(meta: &ckpt::image::Meta) -> bool {
        meta.fds
            .iter()
            .any(|f| f.kind == ckpt::image::FdKind::MQueue)
    }
}

/// Run the restorer `argv` (in the program's process, inside the
/// namespace). Never returns.
pub fn exec_restorer(argv: &[&CStr]) -> ! {
    // SAFETY: getuid/geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        keep_sys_admin_across_exec();
    }
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: execv with NUL-terminated strings and a null-terminated argv.
    unsafe {
        libc::execv(ptrs[0], ptrs.as_ptr());
        libc::_exit(127)
    }
}

/// Start `child` as the process at `pid` in a new pid namespace, as a
/// child of this process (the first process of a tree, which makes the
/// others). Returns only when that could not be set up (nothing was
/// started); otherwise this process ends with that process's status.
/// `in_parent` runs here once the child exists (given its pid).
pub fn run_with(
    pid: i32,
    clocks: Option<ckpt::image::Clocks>,
    ipc: Ipc,
    child: &mut dyn FnMut(),
    in_parent: &mut dyn FnMut(i32),
) -> String {
    if pid <= 1 {
        return format!("the program had pid {pid}");
    }
    // SAFETY: getters without preconditions.
    let (uid, gid, root) = unsafe { (libc::getuid(), libc::getgid(), libc::geteuid() == 0) };
    let mut flags = libc::CLONE_NEWPID | libc::CLONE_NEWNS;
    if !root {
        flags |= libc::CLONE_NEWUSER;
    }
    // System V objects the program had come back at their ids in an IPC
    // namespace of its own (where those ids are free), as do its message
    // queues (by name, with their messages, not a queue left since).
    let mqueues = ipc.mqueues;
    let ipc: Vec<ckpt::image::SysvObject> = ipc.sysv.iter().filter(|o| o.saved).cloned().collect();
    if !ipc.is_empty() || mqueues {
        flags |= libc::CLONE_NEWIPC;
    }
    // This process stays in its pid namespace; its next children are in
    // the new one. (Unprivileged, the user namespace is made first and
    // owns the others.)
    // SAFETY: unshare with namespace flags only.
    if unsafe { libc::unshare(flags) } != 0 {
        return format!(
            "cannot make the namespaces: {}",
            std::io::Error::last_os_error()
        );
    }
    if !root {
        for (path, text) in [
            ("/proc/self/setgroups", "deny".to_string()),
            ("/proc/self/uid_map", format!("{uid} {uid} 1")),
            ("/proc/self/gid_map", format!("{gid} {gid} 1")),
        ] {
            if let Err(e) = std::fs::write(path, text) {
                return format!("cannot write {path}: {e}");
            }
        }
    }
    // SAFETY: a recursive propagation change of our own mount namespace
    // (slave: mounts made outside still show up).
    if unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        )
    } != 0
    {
        return format!(
            "cannot make / a slave mount: {}",
            std::io::Error::last_os_error()
        );
    }
    if let Err(e) = ckpt::process::restore_sysv(&ipc) {
        return e;
    }
    if let Some(c) = clocks {
        if let Err(e) = time_namespace(c) {
            eprintln!(
                "ckpt restart: warning: the program's monotonic and boot clocks jump by the time it was stopped: {e}"
            );
        }
    }
    let init = match start_init() {
        Ok(i) => i,
        Err(e) => return e,
    };
    let run_child = child;
    let child = fork_at(pid);
    if child < 0 {
        let e = std::io::Error::last_os_error();
        stop(init);
        return format!("cannot take pid {pid} again: {e}");
    }
    if child == 0 {
        run_child();
        // SAFETY: ending the child if its work ever returns.
        unsafe { libc::_exit(127) }
    }
    FORWARD_TO.store(child as i32, Relaxed);
    install_forwarding();
    in_parent(child as i32);
    let mut st = 0;
    // SAFETY: waiting for our own child.
    while unsafe { libc::waitpid(child as i32, &mut st, 0) } < 0
        && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
    {}
    wait_for_writers(init);
    if GAVE_UP.load(Relaxed) || adopted(init).is_empty() {
        stop(init);
    } else {
        let_run_on(init);
    }
    if GAVE_UP.load(Relaxed) {
        std::process::exit(71);
    }
    end_like(st)
}

/// Set when the restart gave up on a program it had started (see
/// [`give_up`]): this process then ends with status 71.
static GAVE_UP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// In `run_with`'s `in_parent`: the program at `child` (our child) cannot
/// go on (a process of its tree was not restored): kill it; the rest of
/// the namespace goes when `run_with` stops its init.
pub fn give_up(child: i32) {
    GAVE_UP.store(true, Relaxed);
    // SAFETY: kill of our own child.
    unsafe { libc::kill(child, libc::SIGKILL) };
}

/// Fork this (single-threaded) process as pid `pid` of the pid namespace
/// its children go to (clone3 `set_tid`): the child's pid is 0 here.
pub fn fork_at(pid: i32) -> i64 {
    let set_tid = [pid];
    let args = ckpt::sys::clone_args(0, 0, libc::SIGCHLD as u64, 0, 0, 0, &set_tid);
    // SAFETY: fork-like clone3 (no stack given) of this single-threaded
    // process, asking for pid `pid` in the new namespace.
    unsafe { libc::syscall(libc::SYS_clone3, args.as_ptr(), 88) }
}

/// Make this process's next children see CLOCK_MONOTONIC and
/// CLOCK_BOOTTIME go on from where the program saw them (`c`) instead of
/// from this boot's: a new time namespace, its offsets written before
/// anything enters it. Programs that keep monotonic deadlines (absolute
/// sleeps, timeouts) then behave as if no time passed while they were
/// stopped, as their timers do; after a reboot, which resets both clocks,
/// this is what keeps those deadlines from lying years ahead or behind.
fn time_namespace(c: ckpt::image::Clocks) -> Result<(), String> {
    // SAFETY: unshare with a namespace flag only.
    if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
        return Err(format!(
            "no time namespace: {}",
            std::io::Error::last_os_error()
        ));
    }
    let offset = |saved: u64, clock: libc::clockid_t| {
        let d = saved as i128 - ckpt::sys::clock_ns(clock) as i128;
        // Seconds rounded down, nanoseconds in [0, 1e9), as the kernel wants.
        (d.div_euclid(1_000_000_000), d.rem_euclid(1_000_000_000))
    };
    let (ms, mn) = offset(c.monotonic_ns, libc::CLOCK_MONOTONIC);
    let (bs, bn) = offset(c.boottime_ns, libc::CLOCK_BOOTTIME);
    std::fs::write(
        "/proc/self/timens_offsets",
        format!("monotonic {ms} {mn}\nboottime {bs} {bn}\n"),
    )
    .map_err(|e| format!("cannot set the time namespace's offsets: {e}"))
}

/// Start pid 1 of the new namespace: it mounts the namespace's /proc and
/// reaps orphans until it is killed. Returns its pid once /proc is there.
fn start_init() -> Result<i32, String> {
    let mut p = [0i32; 2];
    // SAFETY: pipe2 into a local array.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err("cannot make a pipe".into());
    }
    let (rd, wr) = (p[0], p[1]);
    // SAFETY: fork of this single-threaded process.
    let init = unsafe { libc::fork() };
    if init < 0 {
        return Err(format!(
            "cannot start the namespace's init: {}",
            std::io::Error::last_os_error()
        ));
    }
    if init == 0 {
        // SAFETY: only raw calls, then a loop that never returns.
        unsafe {
            libc::close(rd);
            // Nothing the command made for the program (a tree's shared
            // pipes, say) may stay open here: a reader would never see EOF.
            libc::syscall(libc::SYS_close_range, 3, (wr - 1).max(2) as u32, 0);
            libc::syscall(libc::SYS_close_range, (wr + 1) as u32, u32::MAX, 0);
            // Named first: the program tells a restart namespace by it.
            libc::prctl(libc::PR_SET_NAME, c"ckpt-init".as_ptr());
            // This command ending in any way (even SIGKILL) ends init, and
            // with it the namespace and the program, as with `exec`. Had it
            // ended already, the report below finds no reader (EPIPE).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let ok = libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ) == 0;
            // Orphans (image writers of a program that ended) arrive after
            // init found no child: SIGCHLD must end its wait. SIGUSR1 says
            // the command lets the processes left run on (`let_run_on`):
            // init then outlives it, and ends once it has no child. Both
            // are taken only inside sigsuspend (no wakeup lost between the
            // wait and the sleep).
            let on: libc::sighandler_t =
                nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::signal(libc::SIGCHLD, on);
            libc::signal(
                libc::SIGUSR1,
                run_on as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
            let mut both: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut both);
            libc::sigaddset(&mut both, libc::SIGCHLD);
            libc::sigaddset(&mut both, libc::SIGUSR1);
            let mut open: libc::sigset_t = std::mem::zeroed();
            libc::sigprocmask(libc::SIG_BLOCK, &both, &mut open);
            libc::sigdelset(&mut open, libc::SIGCHLD);
            libc::sigdelset(&mut open, libc::SIGUSR1);
            let msg: &[u8] = if ok {
                b"R"
            } else {
                b"Ecannot mount /proc for the namespace"
            };
            // (The pipe stays: `run_on` answers on it.)
            INIT_PIPE.store(wr, Relaxed);
            if !ok || libc::write(wr, msg.as_ptr().cast(), msg.len()) <= 0 {
                libc::_exit(1);
            }
            loop {
                let mut st = 0;
                match libc::waitpid(-1, &mut st, libc::WNOHANG) {
                    r if r > 0 => continue,
                    r if r < 0 && RUN_ON.load(Relaxed) => libc::_exit(0),
                    _ => libc::sigsuspend(&open),
                };
            }
        }
    }
    // SAFETY: closing the write end in the parent.
    unsafe { libc::close(wr) };
    let mut first = [0u8; 1];
    // SAFETY: read into a local byte.
    if unsafe { libc::read(rd, first.as_mut_ptr().cast(), 1) } == 1 && first[0] == b'R' {
        // (Kept: init answers `let_run_on` on it.)
        INIT_PIPE.store(rd, Relaxed);
        Ok(init)
    } else {
        let report = read_all(rd);
        stop(init);
        Err(String::from_utf8_lossy(&report).into_owned())
    }
}

/// The live (not zombie) children of the namespace's init — processes
/// the program left, adopted — by command name.
fn adopted(init: i32) -> Vec<String> {
    // This command shares init's mount namespace, where /proc is the new
    // pid namespace's: init is 1 there.
    let comm = |p: &str| {
        ckpt::names::read_proc(format!("/proc/{p}/comm"))
            .map(|c| c.trim_end().to_string())
            .unwrap_or_default()
    };
    let init = if comm("1") == "ckpt-init" { 1 } else { init };
    std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter(|p| {
            !ckpt::names::read_proc(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with('Z'))
                })
                .unwrap_or(true)
        })
        .map(comm)
        .collect()
}

/// Image writers the program left behind (its checkpoints still being
/// written when it ended) belong to init now: let them finish before the
/// namespace ends, or their images would be lost.
fn wait_for_writers(init: i32) {
    let writers = || adopted(init).iter().filter(|c| *c == "ckpt-writer").count();
    let start = std::time::Instant::now();
    let mut told = false;
    while writers() > 0 && start.elapsed() < std::time::Duration::from_secs(600) {
        if !told && start.elapsed() > std::time::Duration::from_secs(1) {
            eprintln!("ckpt restart: the program ended; waiting for its last image to be written");
            told = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The program ended, but processes it left behind run on (a background
/// job of a script that exited): as without ckpt, they go on on their
/// own. Init no longer ends with this command; it ends, and with it the
/// namespace, once the last of them has.
fn let_run_on(init: i32) {
    // SAFETY: a signal to our own child, which takes it (see start_init).
    unsafe { libc::kill(init, libc::SIGUSR1) };
    // Init must have taken it before this command ends (its death would
    // kill init): it answers on the pipe.
    let mut p = libc::pollfd {
        fd: INIT_PIPE.load(Relaxed),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll of one live pollfd.
    if unsafe { libc::poll(&mut p, 1, 5000) } != 1 {
        eprintln!(
            "ckpt restart: warning: the processes the program left behind ({}) end with this command",
            adopted(init).join(", ")
        );
    }
}

/// End the namespace's init (which ends the namespace) and reap it.
fn stop(init: i32) {
    // SAFETY: killing and reaping our own child.
    unsafe {
        libc::kill(init, libc::SIGKILL);
        let mut st = 0;
        libc::waitpid(init, &mut st, 0);
    }
}

/// The program's threads need CAP_SYS_ADMIN (in our user namespace) to be
/// made at their old tids: keep it across exec as an ambient capability.
pub fn keep_sys_admin_across_exec() {
    let (eff, prm, inh) = ckpt::sys::capabilities();
    ckpt::sys::set_capabilities(eff, prm, inh | 1 << CAP_SYS_ADMIN);
    // SAFETY: raising an ambient capability that is permitted and inheritable.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE,
            CAP_SYS_ADMIN,
            0,
            0,
        );
    }
}

fn read_all(fd: i32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a local buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            out.extend_from_slice(&buf[..n as usize]);
        } else if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {
            continue;
        } else {
            break;
        }
    }
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(fd) };
    out
}

/// Die of signal `sig` (returns only if it does not kill).
pub fn raise_like(sig: i32) {
    // The program dumped its own core if it could: this process must not
    // add one of its own (same name in the same directory).
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: no core limit, default action, unblocked, then the signal
    // to ourselves.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), sig);
    }
}

/// End this process the way the program ended.
fn end_like(status: i32) -> ! {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        raise_like(sig);
        std::process::exit(128 + sig);
    }
    std::process::exit(libc::WEXITSTATUS(status))
}
