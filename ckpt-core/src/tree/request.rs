//! A checkpoint asked for inside a process that has children of the job
//! (the periodic timer, `ckpt::checkpoint()`): one process cannot freeze
//! the others, so it hands the work to the `ckpt checkpoint` command,
//! which checkpoints the whole tree — this process included — exactly as
//! when a user runs it.
//!
//! The command is started by a child like an image writer: no exit
//! signal, in ckpt's table of writers (the program's waits never see it;
//! ckpt reaps it); the command is that child's child (an exec would give
//! it an exit signal the program's waits see), with none of the program's
//! descriptors, without the shim. Runs in the coordinator (signal context, scratch allocation).

use crate::{sys, writer};
use core::sync::atomic::{AtomicI32, Ordering::*};
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The last command started (pid), while it may run.
static RUNNING: AtomicI32 = AtomicI32::new(0);

/// Whether this process has children that belong to the job (image
/// writers and commands of ckpt's own excluded; zombies count: a tree
/// image keeps them). Reads /proc.
pub fn has_job_children() -> bool {
    writer::children().1 > 0
}

/// Whether the command started last still runs.
pub fn running() -> bool {
    writer::reap_finished();
    let pid = RUNNING.load(Acquire);
    pid > 0 && writer::is_ours(pid)
}

/// Where a delegated checkpoint goes.
pub enum Target<'a> {
    Dir(&'a Path),
    /// `sqlite:PATH` and the generations to keep there.
    Store(&'a CStr, u32),
}

/// Start `ckpt checkpoint` (the binary `ckpt`) of this process's job into
/// `target`. With `answer`, the command writes its verdict (a MessagePack
/// `control::Response`) there (it becomes its descriptor 3); its stdout
/// goes nowhere either way. Returns the command's pid.
pub fn delegate(ckpt: &CStr, target: Target, answer: Option<i32>) -> Result<i32, String> {
    let pid = sys::getpid().to_string();
    let mut args: Vec<CString> = vec![ckpt.to_owned(), c"checkpoint".to_owned()];
    match target {
        Target::Dir(dir) => {
            args.push(c"--dir".to_owned());
            args.push(CString::new(dir.as_os_str().as_bytes()).map_err(|e| e.to_string())?);
        }
        Target::Store(spec, keep) => {
            args.push(c"--store".to_owned());
            args.push(spec.to_owned());
            args.push(c"--keep".to_owned());
            args.push(CString::new(keep.max(1).to_string()).unwrap_or_default());
        }
    }
    if answer.is_some() {
        args.push(c"--answer-fd".to_owned());
        args.push(c"3".to_owned());
    }
    // Its socket's name: after a restart in a pid namespace, not its pid.
    args.push(c"--control-name".to_owned());
    args.push(CString::new(crate::restart::control_name()).unwrap_or_default());
    args.push(CString::new(pid).unwrap_or_default());
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(core::ptr::null());
    // The program's environment, without the shim.
    let mut envp: Vec<*const libc::c_char> = Vec::new();
    // SAFETY: environ is the process's NULL-terminated environment.
    unsafe {
        extern "C" {
            static environ: *const *const libc::c_char;
        }
        let mut e = environ;
        while !e.is_null() && !(*e).is_null() {
            if !CStr::from_ptr(*e).to_bytes().starts_with(b"LD_PRELOAD=") {
                envp.push(*e);
            }
            e = e.add(1);
        }
    }
    envp.push(core::ptr::null());
    // SAFETY: clone without CLONE_VM and without an exit signal (a fork
    // the program's waits do not see); the child only makes raw calls
    // and execs.
    let child = unsafe { libc::syscall(libc::SYS_clone, 0, 0, 0, 0, 0) };
    if child < 0 {
        return Err(format!(
            "cannot start `ckpt checkpoint`: errno {}",
            crate::interpose::errno()
        ));
    }
    if child == 0 {
        // The program's waits would see the command once it has exec'd
        // (an exec gives a process SIGCHLD as its exit signal again): this
        // child, unseen and named as an image writer (a checkpoint of the
        // job passes over it), starts the command as its own child and
        // ends with its status.
        // SAFETY: raw calls in the new process: every signal blocked (the
        // program's handlers are not to run here), a name, a fork, a wait.
        unsafe {
            let all: u64 = !0;
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &all,
                0usize,
                8usize,
            );
            libc::syscall(
                libc::SYS_prctl,
                libc::PR_SET_NAME,
                c"ckpt-writer".as_ptr(),
                0,
                0,
                0,
            );
            let cmd = libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0);
            if cmd < 0 {
                libc::syscall(libc::SYS_exit_group, 127);
            }
            if cmd > 0 {
                let mut st: i32 = 0;
                loop {
                    let r = libc::syscall(libc::SYS_wait4, cmd, &mut st, 0, 0usize);
                    if r == cmd {
                        break;
                    }
                    if r < 0 && crate::interpose::errno() != libc::EINTR {
                        libc::syscall(libc::SYS_exit_group, 127);
                    }
                }
                let code = if libc::WIFEXITED(st) {
                    libc::WEXITSTATUS(st)
                } else {
                    128 + libc::WTERMSIG(st)
                };
                libc::syscall(libc::SYS_exit_group, code);
            }
        }
        // SAFETY: raw calls in the new process, then execve or _exit.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if let Some(a) = answer {
                libc::dup3(a, 3, 0);
            }
            libc::dup3(null, 0, 0);
            libc::dup3(null, 1, 0);
            let first = if answer.is_some() { 4 } else { 3 };
            libc::syscall(libc::SYS_close_range, first, u32::MAX, 0);
            // Everything unblocked and default: a fresh command.
            let mut set: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, core::ptr::null_mut());
            libc::syscall(libc::SYS_execve, argv[0], argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    let child = child as i32;
    writer::adopt(child);
    RUNNING.store(child, Release);
    Ok(child)
}
