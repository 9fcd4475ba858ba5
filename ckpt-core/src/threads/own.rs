//! What one thread holds apart from its process: its own credentials and
//! capabilities (a raw setresuid or capset changes only the calling
//! thread; glibc's setuid changes them all), its own working directory
//! and umask (`unshare(CLONE_FS)`), its own descriptor table
//! (`unshare(CLONE_FILES)`). Snapshot while frozen, restore on the thread
//! itself after the restart; a thread's own table does not come back (the
//! checkpoint says so).

use crate::image::{Process, Thread, ThreadFs, ThreadOwn};
use crate::sys;
use std::ffi::CString;

const KCMP_FILES: i32 = 2;
const KCMP_FS: i32 = 3;

/// Whether thread `tid` has its own object of `kind` (kcmp: 0 same, 1..3
/// different; an error, say kcmp missing, counts as shared).
fn apart(tid: i32, kind: i32) -> bool {
    // SAFETY: kcmp compares two tasks' kernel objects; no memory is passed.
    unsafe { libc::syscall(libc::SYS_kcmp, sys::getpid(), tid, kind, 0, 0) > 0 }
}

/// What thread `tid` (its /proc status text `status`) holds apart from
/// process `p`; None when it shares all (always for the main thread).
/// Frozen context: raw calls and scratch-arena allocation only.
pub fn snapshot(tid: i32, status: &[u8], p: &Process) -> Option<ThreadOwn> {
    if tid == sys::getpid() {
        return None;
    }
    let creds = crate::process::credentials(status).filter(|c| p.creds.as_ref() != Some(c));
    let caps = crate::process::capability_sets(status);
    let capabilities = (p.capabilities.len() == 4 && caps != p.capabilities).then_some(caps);
    let fs = apart(tid, KCMP_FS).then(|| {
        let mut buf = [0u8; 4096];
        let cwd = CString::new(format!("/proc/self/task/{tid}/cwd"))
            .ok()
            .and_then(|path| sys::readlinkat(libc::AT_FDCWD, &path, &mut buf))
            .map(|n| crate::names::from_bytes(&buf[..n]))
            .unwrap_or_default();
        let umask = sys::field(status, b"Umask:")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            .unwrap_or(p.umask);
        ThreadFs { cwd, umask }
    });
    let files = apart(tid, KCMP_FILES);
    (creds.is_some() || capabilities.is_some() || fs.is_some() || files).then_some(ThreadOwn {
        creds,
        capabilities,
        fs,
        files,
    })
}

/// Give the calling thread its own working directory and umask back, if
/// it had them. Post-restart context, on the thread, before its identity
/// (which may lose the right to enter the directory).
pub fn restore_fs(t: &Thread) {
    let Some(fs) = t.own.as_ref().and_then(|o| o.fs.as_ref()) else {
        return;
    };
    // SAFETY: unshare of the calling thread's fs struct; no memory passed.
    if unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_FS) } != 0 {
        crate::restart_report::warn(&format!(
            "thread {} ({}): cannot have its own working directory again (unshare: {})",
            t.id,
            t.name,
            std::io::Error::last_os_error()
        ));
        return;
    }
    // SAFETY: umask of the calling thread's own fs struct.
    unsafe { libc::syscall(libc::SYS_umask, fs.umask) };
    let entered = crate::names::c(&fs.cwd)
        // SAFETY: chdir with a NUL-terminated path.
        .is_some_and(|c| unsafe { libc::syscall(libc::SYS_chdir, c.as_ptr()) } == 0);
    if !entered {
        crate::restart_report::warn(&format!(
            "thread {} ({}): cannot enter its own working directory {} again: it stays in the \
             process's",
            t.id,
            t.name,
            crate::names::shown(&fs.cwd)
        ));
    }
}
