//! fork, the exec family, resource limits, and the program's own pid.
//!
//! A child keeps the shim: after fork it gets its own control channel;
//! before exec, an environment that lost LD_PRELOAD (programs building
//! their own envp, `env -i`) gets it back. The exec wrappers may run in a
//! vfork child that shares our memory: they build the new environment on
//! the stack and never allocate.

use crate::config;
use ckpt::process as rec;
use ckpt_macros::interpose;
use libc::{c_char, c_int, c_ulong, pid_t, rlimit};

/// The child's part (a control channel of its own) and waiting for a lazy
/// restart's pages are done by the atfork handlers `init` registers,
/// which also serve the forks glibc makes without this wrapper.
#[interpose(around)]
unsafe fn fork() -> pid_t {
    let r = real();
    if r > 0 {
        guard.record(rec::record_fork);
    }
    r
}

const MAX_ENV: usize = 1024;
const VAR_LEN: usize = 4096;

/// Environment entries `env` lacks, on the stack.
struct Fixed {
    ptrs: [*const c_char; MAX_ENV],
    preload: [u8; VAR_LEN],
    dir: [u8; VAR_LEN],
    /// What ckpt kept of the sockets, for the new program's shim
    /// (`ckpt::files::across_exec`).
    sockopts: [u8; VAR_LEN],
}

unsafe fn entry_value<'a>(e: *const c_char, name: &[u8]) -> Option<&'a [u8]> {
    let s = ckpt::interpose::c_str(e);
    (s.len() > name.len() && s.starts_with(name) && s[name.len()] == b'=')
        .then(|| &s[name.len() + 1..])
}

/// Build `NAME=value` into `buf` (NUL-terminated); false if it does not fit.
fn put(buf: &mut [u8], parts: &[&[u8]]) -> bool {
    let mut n = 0;
    for p in parts {
        if n + p.len() >= buf.len() {
            return false;
        }
        buf[n..n + p.len()].copy_from_slice(p);
        n += p.len();
    }
    buf[n] = 0;
    true
}

/// `envp` with LD_PRELOAD naming the shim and CKPT_DIR set (and
/// CKPT_SOCKOPTS, in place of any it had, when ckpt kept anything of
/// sockets), or `envp` itself when nothing is missing (or the environment
/// is too large to copy on the stack).
unsafe fn with_shim(envp: *const *const c_char, fixed: &mut Fixed) -> *const *const c_char {
    if envp.is_null() {
        return envp;
    }
    let cfg = config::get();
    let shim = cfg.shim_path.as_slice();
    // The shim and the run's plugins.
    let head = cfg.preload_head.as_slice();
    let (mut has_shim, mut has_dir, mut had_sockopts, mut n) = (false, false, false, 0);
    while !(*envp.add(n)).is_null() {
        let e = *envp.add(n);
        if let Some(v) = entry_value(e, b"LD_PRELOAD") {
            has_shim |= v.split(|&c| c == b':' || c == b' ').any(|p| p == shim);
        }
        has_dir |= entry_value(e, b"CKPT_DIR").is_some();
        had_sockopts |= entry_value(e, ckpt::files::across_exec::VAR).is_some();
        n += 1;
    }
    let sockopts = ckpt::files::across_exec::export(&mut fixed.sockopts);
    if (has_shim && has_dir && !sockopts && !had_sockopts) || n + 4 > MAX_ENV {
        return envp;
    }
    let mut out = 0;
    for i in 0..n {
        let e = *envp.add(i);
        if entry_value(e, ckpt::files::across_exec::VAR).is_some() {
            continue; // the program's own copy is not ours to pass on
        }
        if let Some(v) = entry_value(e, b"LD_PRELOAD") {
            if !has_shim && put(&mut fixed.preload, &[b"LD_PRELOAD=", head, b":", v]) {
                continue; // replaced below
            }
        }
        fixed.ptrs[out] = e;
        out += 1;
    }
    if !has_shim {
        if fixed.preload[0] == 0 && !put(&mut fixed.preload, &[b"LD_PRELOAD=", head]) {
            return envp;
        }
        fixed.ptrs[out] = fixed.preload.as_ptr().cast();
        out += 1;
    }
    if !has_dir
        && put(
            &mut fixed.dir,
            &[b"CKPT_DIR=", cfg.dir.as_os_str().as_encoded_bytes()],
        )
    {
        fixed.ptrs[out] = fixed.dir.as_ptr().cast();
        out += 1;
    }
    if sockopts {
        fixed.ptrs[out] = fixed.sockopts.as_ptr().cast();
        out += 1;
    }
    fixed.ptrs[out] = core::ptr::null();
    fixed.ptrs.as_ptr()
}

fn new_fixed() -> Fixed {
    Fixed {
        ptrs: [core::ptr::null(); MAX_ENV],
        preload: [0; VAR_LEN],
        dir: [0; VAR_LEN],
        sockopts: [0; VAR_LEN],
    }
}

extern "C" {
    static environ: *const *const c_char;
}

/// Record an exec and run it with `envp` fixed up; the guard is left
/// before the call, which does not return on success.
unsafe fn exec_with_shim(
    guard: ckpt::interpose::Guard,
    envp: *const *const c_char,
    exec: impl FnOnce(*const *const c_char) -> c_int,
) -> c_int {
    guard.record(rec::record_exec);
    let mut fixed = new_fixed();
    let env = with_shim(envp, &mut fixed);
    drop(guard);
    // A checkpoint request may signal us while the exec is under way: a
    // pending signal survives exec, and the new program's default action
    // for it would end it. Blocked, it waits for the new program's shim,
    // which unblocks it once its handler is in place (the request itself
    // went with the old socket; `ckpt checkpoint` asks the new one).
    let reserved = ckpt::signals::bit(ckpt::signals::reserved());
    ckpt::sys::sigprocmask(libc::SIG_BLOCK, reserved);
    let r = exec(env);
    // Still here: the exec failed, the program goes on.
    ckpt::sys::sigprocmask(libc::SIG_UNBLOCK, reserved);
    r
}

#[interpose(around)]
unsafe fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    exec_with_shim(guard, envp, |env| real(path, argv, env))
}

#[interpose(around)]
unsafe fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    exec_with_shim(guard, envp, |env| real(file, argv, env))
}

#[interpose(around)]
unsafe fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    exec_with_shim(guard, environ, |env| {
        if env == environ {
            real(path, argv)
        } else {
            ckpt::real!(execve)(path, argv, env)
        }
    })
}

#[interpose(around)]
unsafe fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    exec_with_shim(guard, environ, |env| {
        if env == environ {
            real(file, argv)
        } else {
            ckpt::real!(execvpe)(file, argv, env)
        }
    })
}

#[interpose(around)]
unsafe fn posix_spawn(
    pid: *mut pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let mut fixed = new_fixed();
    let env = with_shim(envp, &mut fixed);
    real(pid, path, actions, attr, argv, env)
}

#[interpose(around)]
unsafe fn posix_spawnp(
    pid: *mut pid_t,
    file: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let mut fixed = new_fixed();
    let env = with_shim(envp, &mut fixed);
    real(pid, file, actions, attr, argv, env)
}

// RLIMIT_CPU after a restart: the kernel's limits are lower than the
// program's by the CPU time used before (see `ckpt::cputime`).

#[interpose(aliases(setrlimit64), around)]
unsafe fn setrlimit(resource: c_int, rlim: *const rlimit) -> c_int {
    let mut copy = rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let r = real(
        resource,
        ckpt::cputime::cpu_limit_taken(resource, rlim, &mut copy),
    );
    if r == 0 {
        guard.record(|| rec::record_setrlimit(resource));
    }
    r
}

#[interpose(aliases(getrlimit64))]
unsafe fn getrlimit(resource: c_int, rlim: *mut rlimit) -> c_int {
    if ret == 0 {
        ckpt::cputime::cpu_limit_shown(resource, rlim);
    }
}

#[interpose(aliases(prlimit64), around)]
unsafe fn prlimit(pid: pid_t, resource: c_int, new: *const rlimit, old: *mut rlimit) -> c_int {
    let pid = rec::kernel_pid(pid);
    let own = pid == 0 || pid == ckpt::sys::getpid();
    let mut copy = rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let given = if own {
        ckpt::cputime::cpu_limit_taken(resource, new, &mut copy)
    } else {
        new
    };
    let r = real(pid, resource, given, old);
    if r == 0 && own {
        ckpt::cputime::cpu_limit_shown(resource, old);
        if !new.is_null() {
            guard.record(|| rec::record_setrlimit(resource));
        }
    }
    r
}

// A restarted program keeps the pid it had (see `ckpt::process`): getpid
// answers it, and calls that name it reach the process itself.

#[interpose(around)]
unsafe fn getpid() -> pid_t {
    rec::program_pid(real())
}

// A restarted program's parent outside the restart's pid namespace reads
// as 0 from the kernel: the program is told the parent it had (a
// watchdog comparing getppid with the pid it noted would exit).
#[interpose(around)]
unsafe fn getppid() -> pid_t {
    rec::program_ppid(real())
}

#[interpose(around)]
unsafe fn kill(pid: pid_t, sig: c_int) -> c_int {
    real(rec::kernel_pid(pid), sig)
}

#[interpose(around)]
unsafe fn sigqueue(pid: pid_t, sig: c_int, value: libc::sigval) -> c_int {
    real(rec::kernel_pid(pid), sig, value)
}

#[interpose(around)]
unsafe fn tgkill(tgid: pid_t, tid: pid_t, sig: c_int) -> c_int {
    real(rec::kernel_pid(tgid), tid, sig)
}

// ---- waits: ckpt's image writers are the program's children (with no
// exit signal, so plain waits and SIGCHLD never see them); a wait that
// also takes clone children (__WALL, __WCLONE) must not return one. ----

/// Options under which a wait may return one of ckpt's writers.
#[inline]
fn sees_writers(options: c_int) -> bool {
    options & (libc::__WALL | libc::__WCLONE) != 0 && ckpt::writer::any()
}

// The bodies call the module's `real` (not the closure): errno is then
// the original's, or the one the body sets (ECHILD).

#[interpose(around)]
unsafe fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    let _ = real;
    if !sees_writers(options) {
        return waitpid::real(pid, status, options);
    }
    loop {
        let r = waitpid::real(pid, status, options);
        // A writer taken by this wait is reaped: hide it and wait again.
        if !ckpt::writer::claim(r, false) {
            return no_children_but_writers(pid, options, r);
        }
    }
}

/// A WNOHANG wait on any child that found none ready answers ECHILD, as it
/// would without ckpt, when ckpt's writers are the only children left.
unsafe fn no_children_but_writers(pid: pid_t, options: c_int, r: pid_t) -> pid_t {
    if r != 0 || pid != -1 || options & libc::WNOHANG == 0 {
        return r;
    }
    let saved = ckpt::interpose::errno();
    if ckpt::writer::only_writers_left() {
        ckpt::interpose::set_errno(libc::ECHILD);
        return -1;
    }
    ckpt::interpose::set_errno(saved);
    r
}

#[interpose(around)]
unsafe fn wait4(pid: pid_t, status: *mut c_int, options: c_int, usage: *mut libc::rusage) -> pid_t {
    let _ = real;
    if !sees_writers(options) {
        return wait4::real(pid, status, options, usage);
    }
    loop {
        let r = wait4::real(pid, status, options, usage);
        if !ckpt::writer::claim(r, false) {
            return no_children_but_writers(pid, options, r);
        }
    }
}

#[interpose(around)]
unsafe fn waitid(
    idtype: libc::idtype_t,
    id: libc::id_t,
    info: *mut libc::siginfo_t,
    options: c_int,
) -> c_int {
    let _ = real;
    if !sees_writers(options) || info.is_null() {
        return waitid::real(idtype, id, info, options);
    }
    loop {
        let r = waitid::real(idtype, id, info, options);
        // With WNOWAIT the writer is still there: ckpt reaps it now.
        if r != 0 || !ckpt::writer::claim((*info).si_pid(), options & libc::WNOWAIT != 0) {
            if r == 0 && (*info).si_pid() == 0 && idtype == libc::P_ALL {
                return no_children_but_writers(-1, options, 0);
            }
            return r;
        }
        // WNOHANG: "nothing yet" reads as si_pid 0 again.
        *info = core::mem::zeroed();
    }
}

/// prctl option turning syscall user dispatch on or off for the thread.
pub const PR_SET_SYSCALL_USER_DISPATCH: c_int = 59;

/// Syscall user dispatch turned on or off is noted for the calling thread:
/// a checkpoint refuses a job with it on, saying why
/// (`ckpt::threads::syscall_dispatch_thread`); every other option goes
/// straight to the original.
#[interpose(variadic = 1, when = option == PR_SET_SYSCALL_USER_DISPATCH)]
unsafe fn prctl(option: c_int, a2: c_ulong, a3: c_ulong, a4: c_ulong, a5: c_ulong) -> c_int {
    let _ = (a3, a4, a5);
    if ret == 0 {
        ckpt::threads::record_syscall_dispatch(a2);
    }
}
