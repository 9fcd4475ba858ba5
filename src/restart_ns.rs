//! `ckpt restart` in a pid namespace of its own (and a mount namespace
//! with that namespace's /proc), so the program gets its pid back and
//! every thread its tid (glibc, mutex owners and the program itself hold
//! them):
//!
//! ```text
//! ckpt restart    waits, forwards SIGTERM/SIGHUP/SIGUSR1/SIGUSR2, ends
//!   │             with the program's exit status or signal
//!   └─ ckpt-init  pid 1 of the new namespace: reaps, reports the status
//!        └─ the program, at its old pid (clone3 set_tid), execs the
//!           restorer; post-restart code re-creates the threads at their
//!           old tids the same way
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

/// Run the restorer (`argv`) as the program at `pid` in a new pid
/// namespace. Returns only when that could not be set up (nothing was
/// started); otherwise this process ends with the program's status.
pub fn run(argv: &[&CStr], pid: i32) -> String {
    if pid <= 1 {
        return format!("the program had pid {pid}");
    }
    // SAFETY: getters without preconditions.
    let (uid, gid, root) = unsafe { (libc::getuid(), libc::getgid(), libc::geteuid() == 0) };
    // A mount namespace too: the program gets a /proc of its namespace, so
    // /proc/self/task and /proc/<getpid()> name its own threads.
    let mut flags = libc::CLONE_NEWPID | libc::CLONE_NEWNS;
    if !root {
        flags |= libc::CLONE_NEWUSER;
    }
    let mut p = [0i32; 2];
    // SAFETY: pipe2 into a local array.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return "cannot make a pipe".into();
    }
    let (rd, wr) = (p[0], p[1]);
    // SAFETY: fork-like clone of this single-threaded process.
    let init = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags as u64 | libc::SIGCHLD as u64,
            0,
            0,
            0,
            0,
        )
    };
    if init < 0 {
        // SAFETY: closing our own pipe.
        unsafe {
            libc::close(rd);
            libc::close(wr);
        }
        return format!(
            "cannot make a pid namespace: {}",
            std::io::Error::last_os_error()
        );
    }
    if init == 0 {
        // SAFETY: closing the read end in the child.
        unsafe { libc::close(rd) };
        be_init(argv, pid, uid, gid, root, wr);
    }
    // SAFETY: closing the write end in the parent.
    unsafe { libc::close(wr) };
    FORWARD_TO.store(init as i32, Relaxed);
    install_forwarding();
    let report = read_all(rd);
    let mut st = 0;
    // SAFETY: waiting for our own child.
    while unsafe { libc::waitpid(init as i32, &mut st, 0) } < 0
        && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
    {}
    match report.split_first() {
        Some((b'S', s)) if s.len() == 4 => end_like(i32::from_ne_bytes([s[0], s[1], s[2], s[3]])),
        Some((b'E', msg)) => String::from_utf8_lossy(msg).into_owned(),
        // init itself died (SIGKILL from outside): so did the program.
        _ => end_like(st),
    }
}

/// pid 1 of the new namespace. Never returns.
fn be_init(argv: &[&CStr], pid: i32, uid: u32, gid: u32, root: bool, wr: i32) -> ! {
    let fail = |msg: String| -> ! {
        let m = format!("E{msg}");
        // SAFETY: write to our pipe, then exit without running atexit code.
        unsafe {
            libc::write(wr, m.as_ptr().cast(), m.len());
            libc::_exit(0)
        }
    };
    if !root {
        let maps = [
            ("/proc/self/setgroups", "deny".to_string()),
            ("/proc/self/uid_map", format!("{uid} {uid} 1")),
            ("/proc/self/gid_map", format!("{gid} {gid} 1")),
        ];
        for (path, text) in maps {
            if let Err(e) = std::fs::write(path, text) {
                fail(format!("cannot write {path}: {e}"));
            }
        }
    }
    // SAFETY: mount calls with valid C strings; only this new mount
    // namespace is changed (slave: mounts made outside still show up).
    unsafe {
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        ) != 0
            || libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ) != 0
        {
            fail(format!(
                "cannot mount /proc for the namespace: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    // SAFETY: PR_SET_NAME with a NUL-terminated name.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"ckpt-init".as_ptr()) };
    let set_tid = [pid];
    // struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal,
    // stack, stack_size, tls, set_tid, set_tid_size, cgroup.
    let args: [u64; 11] = [
        0,
        0,
        0,
        0,
        libc::SIGCHLD as u64,
        0,
        0,
        0,
        set_tid.as_ptr() as u64,
        1,
        0,
    ];
    // SAFETY: fork-like clone3 (no stack given) asking for pid `pid`.
    let child = unsafe { libc::syscall(libc::SYS_clone3, args.as_ptr(), 88) };
    if child < 0 {
        fail(format!(
            "cannot take pid {pid} again: {}",
            std::io::Error::last_os_error()
        ));
    }
    if child == 0 {
        if !root {
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
    FORWARD_TO.store(child as i32, Relaxed);
    install_forwarding();
    loop {
        let mut st = 0;
        // SAFETY: reaping any child (orphans of the namespace land here).
        let w = unsafe { libc::waitpid(-1, &mut st, 0) };
        if w == child as i32 {
            let m = [&b"S"[..], &st.to_ne_bytes()].concat();
            // SAFETY: write to our pipe, then exit.
            unsafe {
                libc::write(wr, m.as_ptr().cast(), m.len());
                libc::_exit(0)
            }
        }
        if w < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // SAFETY: nothing left to wait for.
            unsafe { libc::_exit(1) }
        }
    }
}

/// The program's threads need CAP_SYS_ADMIN (in our user namespace) to be
/// made at their old tids: keep it across exec as an ambient capability.
fn keep_sys_admin_across_exec() {
    let header: [u32; 2] = [0x2008_0522, 0];
    let mut data = [0u32; 6];
    // SAFETY: capget/capset on this thread with live structs.
    unsafe {
        libc::syscall(libc::SYS_capget, header.as_ptr(), data.as_mut_ptr());
        data[2] |= 1 << CAP_SYS_ADMIN; // inheritable, low word
        libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr());
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

/// End this process the way the program ended.
fn end_like(status: i32) -> ! {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // SAFETY: default action, unblocked, then the signal to ourselves.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
        }
        std::process::exit(128 + sig);
    }
    std::process::exit(libc::WEXITSTATUS(status))
}
