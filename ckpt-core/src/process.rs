//! Process-wide settings: cwd, umask, resource limits, prctl attributes
//! (prctl.rs), and the fork/exec history. The kernel is authoritative for
//! current values at snapshot; the record says which limits the program
//! set itself.

pub mod keyrings;
pub(crate) mod prctl;
mod sysv;

pub use sysv::{record_semctl, record_semop, record_sysv, restore_sysv, shm_objects};

use crate::image::{Credentials, Process, Rlimit};
use crate::sys;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering::*};

static UMASK: AtomicU32 = AtomicU32::new(u32::MAX);
static RLIMITS_SET: AtomicU32 = AtomicU32::new(0);
static FORKS: AtomicU64 = AtomicU64::new(0);
static EXECS: AtomicU64 = AtomicU64::new(0);
static CHDIRS: AtomicU64 = AtomicU64::new(0);
/// The pid the program knows itself by when it differs from the kernel's:
/// after a restart, the pid it had when it was first started (0: none).
/// Programs keep their pid (asyncio checks it on every call, to tell a
/// fork child from its parent), so `getpid` answers this one and `kill`
/// and friends translate it back.
static PROGRAM_PID: AtomicI32 = AtomicI32::new(0);

/// The kernel pid of the process whose shim this memory is: noted at
/// start, in a fork's child and after a restart. A vfork child (on its
/// parent's memory until it execs; no atfork handler runs in it) has
/// another.
static OWN_PID: AtomicI32 = AtomicI32::new(0);

/// Note the kernel pid of the process this memory belongs to.
pub fn note_own_pid() {
    OWN_PID.store(sys::getpid(), Relaxed);
}

/// The caller is a vfork child (or a raw clone sharing the memory of a
/// process, not its thread): what it records would land in its parent's
/// tables. One getpid system call; signal-safe.
#[inline]
pub fn in_vfork_child() -> bool {
    let own = OWN_PID.load(Relaxed);
    own != 0 && own != sys::getpid()
}

/// The parent pid the program saw at its checkpoint, after a restart
/// whose parent is outside the restart's pid namespace (the kernel says
/// 0 then; 0: no such parent).
static PROGRAM_PPID: AtomicI32 = AtomicI32::new(0);

/// What `getppid` tells the program, given the kernel's answer: a parent
/// outside the restart's pid namespace (0) is the one it had.
#[inline]
pub fn program_ppid(kernel: i32) -> i32 {
    match (kernel, PROGRAM_PPID.load(Relaxed)) {
        (0, p) => p,
        (k, _) => k,
    }
}

/// What `getpid` tells the program, given the kernel's pid.
#[inline]
pub fn program_pid(kernel: i32) -> i32 {
    match PROGRAM_PID.load(Relaxed) {
        0 => kernel,
        p => p,
    }
}

/// The kernel's pid for a pid the program passes (its own old pid maps to
/// the process itself; anything else is left alone).
#[inline]
pub fn kernel_pid(pid: i32) -> i32 {
    match PROGRAM_PID.load(Relaxed) {
        p if p != 0 && pid == p => sys::getpid(),
        _ => pid,
    }
}

/// umask(mask) ran.
pub fn record_umask(mask: u32) {
    UMASK.store(mask & 0o777, Relaxed);
}

/// chdir/fchdir succeeded (the kernel tells the directory at snapshot).
pub fn record_chdir() {
    CHDIRS.fetch_add(1, Relaxed);
}

/// How many times the program changed its working directory.
pub fn chdirs() -> u64 {
    CHDIRS.load(Relaxed)
}

/// setrlimit/prlimit on ourselves succeeded for `resource`.
pub fn record_setrlimit(resource: i32) {
    if (0..32).contains(&resource) {
        RLIMITS_SET.fetch_or(1 << resource, Relaxed);
    }
}

/// The mount namespace the process was started (or restarted) in, by its
/// inode (0: not known).
static MOUNT_NS: AtomicU64 = AtomicU64::new(0);
/// Its root directory then (device, inode; 0: not known).
static ROOT_DEV: AtomicU64 = AtomicU64::new(0);
static ROOT_INO: AtomicU64 = AtomicU64::new(0);

/// The device and inode of the process's root directory ((0, 0): unknown).
fn root_id() -> (u64, u64) {
    let mut st: libc::stat = unsafe_zeroed_stat();
    // SAFETY: stat of a NUL-terminated path into a live local.
    if unsafe { libc::syscall(libc::SYS_stat, c"/".as_ptr(), &mut st) } != 0 {
        return (0, 0);
    }
    (st.st_dev, st.st_ino)
}

/// The inode of this process's mount namespace (0: unknown). Raw stat.
fn mount_ns() -> u64 {
    namespace(c"/proc/self/ns/mnt")
}

/// The inode of the namespace link at `path` (0: unknown). Raw stat.
fn namespace(path: &core::ffi::CStr) -> u64 {
    let mut st: libc::stat = unsafe_zeroed_stat();
    // SAFETY: stat of a NUL-terminated path into a live local.
    if unsafe { libc::syscall(libc::SYS_stat, path.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    st.st_ino
}

/// The UTS namespace the program started in (or a restart gave it).
static UTS_NS: AtomicU64 = AtomicU64::new(0);
/// A restart made the program a UTS namespace of its own again.
static OWN_UTS: AtomicBool = AtomicBool::new(false);

/// At start-up and after a restart: the UTS namespace that is not the
/// program's own.
pub fn note_uts_namespace() {
    UTS_NS.store(namespace(c"/proc/self/ns/uts"), Release);
}

/// Frozen: the host and domain names of a UTS namespace the program made
/// its own since it started (unshare(CLONE_NEWUTS), setns), to be set in
/// a namespace made again at restart. None: the one it started in.
fn own_uts() -> Option<(String, String)> {
    let (then, now) = (UTS_NS.load(Acquire), namespace(c"/proc/self/ns/uts"));
    if !OWN_UTS.load(Relaxed) && (then == 0 || now == 0 || then == now) {
        return None;
    }
    // SAFETY: all-zero utsname is valid; uname fills it.
    let mut u: libc::utsname = unsafe { core::mem::zeroed() };
    // SAFETY: uname into a live local.
    if unsafe { libc::syscall(libc::SYS_uname, &mut u) } != 0 {
        return None;
    }
    let text = |f: &[libc::c_char]| {
        let b: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    Some((text(&u.nodename), text(&u.domainname)))
}

/// Post-restart: a UTS namespace of the program's own again, with its
/// names; what the kernel refuses is said.
fn restore_uts(uts: &Option<(String, String)>) {
    let Some((host, domain)) = uts else {
        return;
    };
    let said = |what: &str| {
        crate::restart_report::warn(&format!(
            "the program's own UTS namespace (host name {host:?}) cannot come back: {what}: {}",
            std::io::Error::last_os_error()
        ))
    };
    // SAFETY: unshare of this (single-threaded, restoring) process's UTS
    // namespace; sethostname/setdomainname from live buffers.
    unsafe {
        if libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUTS) != 0 {
            return said("unshare");
        }
        if libc::syscall(libc::SYS_sethostname, host.as_ptr(), host.len()) != 0 {
            said("sethostname");
        }
        if libc::syscall(libc::SYS_setdomainname, domain.as_ptr(), domain.len()) != 0 {
            said("setdomainname");
        }
    }
    OWN_UTS.store(true, Relaxed);
}

fn unsafe_zeroed_stat() -> libc::stat {
    // SAFETY: all-zero is a valid stat.
    unsafe { core::mem::zeroed() }
}

/// At start-up and after a restart: the mount namespace the program's
/// paths mean what they say in.
pub fn note_mount_namespace() {
    MOUNT_NS.store(mount_ns(), Release);
    let (dev, ino) = root_id();
    ROOT_DEV.store(dev, Release);
    ROOT_INO.store(ino, Release);
}

/// Frozen: why the process cannot be checkpointed because it changed its
/// root directory (chroot) since it started: its files' paths name files
/// inside that root, and a restart would open them from the one outside
/// (the command's check sees only a job's processes; this one holds for
/// `ckpt::checkpoint()` and the periodic timer too). None: the same root.
pub fn root_refusal() -> Option<&'static str> {
    let then = (ROOT_DEV.load(Acquire), ROOT_INO.load(Acquire));
    let now = root_id();
    (then != (0, 0) && now != (0, 0) && then != now).then_some(
        "the program changed its root directory (chroot) since it started: a restart would \
         open its files from the root outside it",
    )
}

/// Frozen: why the process cannot be checkpointed because it made a
/// mount namespace of its own since (unshare or setns): its mounts cannot
/// come back, and the paths of its files name other files outside it (a
/// restart would put back, over a host file, what the program wrote to
/// one of its mounts). None: the same namespace.
pub fn mount_namespace_refusal() -> Option<&'static str> {
    let then = MOUNT_NS.load(Acquire);
    let now = mount_ns();
    (then != 0 && now != 0 && then != now).then_some(
        "the program moved to a mount namespace of its own (unshare or setns): its mounts \
         cannot come back, and its files' paths name other files outside it",
    )
}

pub fn record_fork() {
    FORKS.fetch_add(1, Relaxed);
}

/// An exec is about to run.
pub fn record_exec() {
    EXECS.fetch_add(1, Relaxed);
}

/// In a fork child: its own history starts now, with its own pid.
pub fn reset_after_fork() {
    note_own_pid();
    PROGRAM_PPID.store(0, Relaxed);
    FORKS.store(0, Relaxed);
    EXECS.store(0, Relaxed);
    PROGRAM_PID.store(0, Relaxed);
    sysv::forget_undo();
}

const RLIMIT_NAMES: [&str; 16] = [
    "cpu",
    "fsize",
    "data",
    "stack",
    "core",
    "rss",
    "nproc",
    "nofile",
    "memlock",
    "as",
    "locks",
    "sigpending",
    "msgqueue",
    "nice",
    "rtprio",
    "rttime",
];

/// Read the process settings. Runs while frozen: raw syscalls + Rust
/// allocation only (`getcwd` and friends via the kernel).
pub fn snapshot(ckpt_signal: i32) -> Process {
    let pid = sys::getpid();
    let (undo, undo_unknown) = sysv::undo_snapshot();
    let mut buf = vec![0u8; 8192];
    let cwd = {
        // SAFETY: the kernel writes at most buf.len() bytes.
        let n = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
        if n > 0 {
            crate::names::from_bytes(&buf[..n as usize - 1])
        } else {
            String::new()
        }
    };
    // A removed working directory: getcwd fails; the kernel still names
    // it, with " (deleted)".
    let (cwd, cwd_deleted) = if cwd.is_empty() {
        sys::readlinkat(libc::AT_FDCWD, c"/proc/self/cwd", &mut buf)
            .map(|n| {
                let name = &buf[..n];
                match name.strip_suffix(b" (deleted)") {
                    Some(d) => (crate::names::from_bytes(d), true),
                    None => (crate::names::from_bytes(name), false),
                }
            })
            .unwrap_or_default()
    } else {
        (cwd, false)
    };
    let exe = sys::readlinkat(libc::AT_FDCWD, c"/proc/self/exe", &mut buf)
        .map(|n| crate::names::from_bytes(&buf[..n]))
        .unwrap_or_default();
    let cmdline = sys::read_small(libc::AT_FDCWD, c"/proc/self/cmdline", &mut buf)
        .map(|n| {
            buf[..n]
                .split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default();
    let n = sys::read_small(libc::AT_FDCWD, c"/proc/self/status", &mut buf).unwrap_or(0);
    let status = &buf[..n];
    let umask = sys::field(status, b"Umask:")
        .and_then(sys::parse_oct)
        .map(|v| v as u32)
        .unwrap_or_else(|| UMASK.load(Relaxed));
    let comm = sys::field(status, b"Name:")
        .map(crate::names::from_bytes)
        .unwrap_or_default();
    let ppid = program_ppid(
        sys::field(status, b"PPid:")
            .and_then(sys::parse_i64)
            .unwrap_or(0) as i32,
    );
    let set = RLIMITS_SET.load(Relaxed);
    let rlimits = (0..16)
        .map(|r| {
            let mut l = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: prlimit64 query of our own process into a live rlimit.
            unsafe {
                libc::syscall(
                    libc::SYS_prlimit64,
                    0,
                    r,
                    core::ptr::null::<libc::rlimit>(),
                    &mut l,
                )
            };
            if r == libc::RLIMIT_CPU as i32 {
                // SAFETY: a live rlimit.
                unsafe { crate::cputime::cpu_limit_shown(libc::RLIMIT_CPU as i32, &mut l) };
            }
            let lim = |v: u64| (v != libc::RLIM_INFINITY).then_some(v);
            Rlimit {
                resource: r,
                name: RLIMIT_NAMES[r as usize].into(),
                soft: lim(l.rlim_cur),
                hard: lim(l.rlim_max),
                set_by_program: set & (1 << r) != 0,
            }
        })
        .collect();
    Process {
        pid,
        ppid,
        exe,
        cmdline,
        comm,
        cwd,
        cwd_deleted,
        // SAFETY: getsid of ourselves, a plain query.
        session_leader: unsafe { libc::syscall(libc::SYS_getsid, 0) } == pid as i64,
        xcomp_perm: crate::glibc::xcomp_perm(),
        uts: own_uts(),
        umask,
        rlimits,
        forks: FORKS.load(Relaxed),
        execs: EXECS.load(Relaxed),
        ckpt_signal,
        mm: crate::memory::mm_info(),
        pending: sys::field(status, b"ShdPnd:")
            .and_then(sys::parse_hex)
            .unwrap_or(0)
            & !crate::signals::bit(ckpt_signal),
        queued: Vec::new(),
        capabilities: capability_sets(status),
        prctl: Some(prctl::snapshot(status)),
        creds: credentials(status),
        sysv_ipc: sysv::snapshot(),
        sem_undo: undo,
        sem_undo_unknown: undo_unknown,
        keyrings: {
            let (process, session) = keyrings::snapshot();
            crate::image::Keyrings { process, session }
        },
        bounding: sys::field(status, b"CapBnd:").and_then(sys::parse_hex),
        tty_nr: controlling_tty(&mut [0u8; 1024]),
        // SAFETY: PR_GET_SECUREBITS takes no pointer.
        securebits: Some(unsafe {
            libc::syscall(libc::SYS_prctl, libc::PR_GET_SECUREBITS, 0, 0, 0, 0)
        } as i32)
        .filter(|&b| b >= 0),
    }
}

/// Field 7 of /proc/self/stat: the controlling terminal's device number.
fn controlling_tty(buf: &mut [u8]) -> u32 {
    let n = sys::read_small(libc::AT_FDCWD, c"/proc/self/stat", buf).unwrap_or(0);
    // Fields after the ")" of comm: state, ppid, pgrp, session, tty_nr.
    let after = buf[..n]
        .iter()
        .rposition(|&b| b == b')')
        .map_or(&[][..], |i| &buf[i + 1..n]);
    after
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .nth(4)
        .and_then(|w| std::str::from_utf8(w).ok()?.parse::<i64>().ok())
        .unwrap_or(0) as u32
}

/// CapInh:, CapPrm:, CapEff: and CapAmb: of a /proc status text (0 for
/// one missing).
pub fn capability_sets(status: &[u8]) -> Vec<u64> {
    [&b"CapInh:"[..], b"CapPrm:", b"CapEff:", b"CapAmb:"]
        .iter()
        .map(|k| sys::field(status, k).and_then(sys::parse_hex).unwrap_or(0))
        .collect()
}

/// Uid:, Gid: (real, effective, saved, filesystem) and Groups: of a
/// /proc status text.
pub fn credentials(status: &[u8]) -> Option<Credentials> {
    let four = |key: &[u8]| -> Option<[u32; 4]> {
        let mut out = [0u32; 4];
        let mut it = sys::field(status, key)?
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty());
        for o in out.iter_mut() {
            *o = u32::try_from(sys::parse_i64(it.next()?)?).ok()?;
        }
        Some(out)
    };
    let groups = sys::field(status, b"Groups:")
        .map(|g| {
            g.split(|b| b.is_ascii_whitespace())
                .filter_map(|w| sys::parse_i64(w).and_then(|v| u32::try_from(v).ok()))
                .collect()
        })
        .unwrap_or_default();
    Some(Credentials {
        uids: four(b"Uid:")?,
        gids: four(b"Gid:")?,
        groups,
    })
}

/// Give the calling thread the program's identity back (credentials are
/// per thread in the kernel; every thread calls this): `ckpt restart` run
/// by root must not leave the program root. Capabilities the program had
/// survive the change (set again by [`restore_capabilities`] after it).
/// A thread with an identity of its own gets that (`own`). Post-restart
/// context, on every thread, before its capabilities.
pub fn restore_credentials(p: &Process, own: Option<&Credentials>) {
    let Some(c) = own.or(p.creds.as_ref()) else {
        return;
    };
    let (mut r, mut e, mut s) = (0u32, 0u32, 0u32);
    // SAFETY: getresuid into locals.
    unsafe { libc::syscall(libc::SYS_getresuid, &mut r, &mut e, &mut s) };
    let same_uids = [r, e, s] == [c.uids[0], c.uids[1], c.uids[2]];
    // SAFETY: raw credential calls on the calling thread only, with values
    // the image recorded (the CLI refused any an unprivileged restarter
    // could not give); failures leave the thread as it was.
    unsafe {
        if !same_uids || e == 0 {
            libc::syscall(libc::SYS_prctl, libc::PR_SET_KEEPCAPS, 1, 0, 0, 0);
            if e == 0 {
                libc::syscall(libc::SYS_setgroups, c.groups.len(), c.groups.as_ptr());
            }
            libc::syscall(libc::SYS_setresgid, c.gids[0], c.gids[1], c.gids[2]);
            libc::syscall(libc::SYS_setfsgid, c.gids[3]);
            libc::syscall(libc::SYS_setresuid, c.uids[0], c.uids[1], c.uids[2]);
            libc::syscall(libc::SYS_setfsuid, c.uids[3]);
            libc::syscall(libc::SYS_prctl, libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
            // A change of identity resets "dumpable": put the program's back.
            let dumpable = p.prctl.map_or(1, |x| x.dumpable);
            libc::syscall(libc::SYS_prctl, libc::PR_SET_DUMPABLE, dumpable, 0, 0, 0);
        }
        // Keep capabilities across a change of uid, as the program had it.
        if p.prctl.is_some_and(|x| x.keepcaps) {
            libc::syscall(libc::SYS_prctl, libc::PR_SET_KEEPCAPS, 1, 0, 0, 0);
        }
    }
}

/// Stand in a removed directory again, as the program did: a directory
/// made at its old path (when that is free, else in /tmp), entered, and
/// removed. Post-restart context.
fn removed_cwd_again(p: &Process) {
    let at_path = crate::names::c(&p.cwd).filter(|_| !p.cwd.is_empty());
    let tmp = format!("/tmp/.ckpt-removed-cwd-{}", sys::getpid());
    for dir in at_path.into_iter().chain(crate::names::c(&tmp)) {
        // SAFETY: mkdir, chdir and rmdir with valid C paths.
        unsafe {
            if libc::syscall(libc::SYS_mkdir, dir.as_ptr(), 0o700) != 0 {
                continue;
            }
            let entered = libc::syscall(libc::SYS_chdir, dir.as_ptr()) == 0;
            libc::syscall(libc::SYS_rmdir, dir.as_ptr());
            if entered {
                return;
            }
        }
    }
    crate::restart_report::warn(&format!(
        "cannot stand in a removed directory again (the program's working directory {} was removed)",
        crate::names::shown(&p.cwd)
    ));
}

/// Put the process settings back: working directory, umask, resource
/// limits (those the kernel lets an unprivileged process set), and
/// /proc/self/exe where the kernel allows it. Post-restart context, after
/// the restorer's own mapping is gone.
pub fn restore(p: &Process) {
    note_own_pid();
    // The restart's session keyring is the program's from here on (its
    // own, if it had joined one, was said at the checkpoint).
    keyrings::note_session();
    PROGRAM_PPID.store(p.ppid, Relaxed);
    // The first restart fixes the program's pid for good (later images
    // record the kernel pid of a restarted process, which is not it).
    if PROGRAM_PID.load(Relaxed) == 0 && p.pid != sys::getpid() {
        PROGRAM_PID.store(p.pid, Relaxed);
    }
    set_exe(p);
    restore_uts(&p.uts);
    sysv::restore_undo(&p.sem_undo);
    if p.cwd_deleted {
        removed_cwd_again(p);
    } else if let Some(cwd) = crate::names::c(&p.cwd) {
        // SAFETY: chdir with a valid C path.
        if unsafe { libc::syscall(libc::SYS_chdir, cwd.as_ptr()) } != 0 {
            crate::restart_report::warn(&format!(
                "cannot return to directory {}",
                crate::names::shown(&p.cwd)
            ));
        }
    }
    // SAFETY: umask cannot fail.
    unsafe { libc::syscall(libc::SYS_umask, p.umask) };
    UMASK.store(p.umask, Relaxed);
    for r in &p.rlimits {
        let l = libc::rlimit {
            rlim_cur: r.soft.unwrap_or(libc::RLIM_INFINITY),
            rlim_max: r.hard.unwrap_or(libc::RLIM_INFINITY),
        };
        // SAFETY: prlimit64 on our own process from a live rlimit.
        let ok = unsafe {
            libc::syscall(
                libc::SYS_prlimit64,
                0,
                r.resource,
                &l as *const libc::rlimit,
                core::ptr::null_mut::<libc::rlimit>(),
            )
        } == 0;
        if !ok && r.set_by_program {
            crate::restart_report::warn(&format!("cannot set the {} limit again", r.name));
        }
    }
    if let Some(s) = &p.prctl {
        prctl::restore(s);
    }
}

/// Point /proc/self/exe at the program again: PR_SET_MM_MAP with an
/// exe_fd needs CAP_SYS_ADMIN in the user namespace (PR_SET_MM_EXE_FILE
/// would need CAP_SYS_RESOURCE too); without it, it keeps naming
/// ckpt-restorer. The layout fields are the ones the restorer set.
fn set_exe(p: &Process) {
    let Some(exe) = crate::names::c(&p.exe) else {
        return;
    };
    // SAFETY: openat with a valid C path.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            exe.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    } as i32;
    if fd < 0 {
        return;
    }
    let m = &p.mm;
    let used = m
        .auxv
        .chunks(2)
        .position(|w| w[0] == 0)
        .map_or(m.auxv.len(), |i| 2 * i + 2)
        .min(m.auxv.len());
    // struct prctl_mm_map: eleven u64 fields, the auxv pointer, its size
    // in bytes and the exe descriptor.
    let mut map = [0u64; 13];
    map[..11].copy_from_slice(&[
        m.start_code,
        m.end_code,
        m.start_data,
        m.end_data,
        m.start_brk,
        m.brk,
        m.start_stack,
        m.arg_start,
        m.arg_end,
        m.env_start,
        m.env_end,
    ]);
    map[11] = m.auxv.as_ptr() as u64;
    map[12] = ((used * 8) as u64) | ((fd as u32 as u64) << 32);
    // SAFETY: prctl(PR_SET_MM_MAP) reads the 104-byte struct and the
    // auxv words it points at; failure changes nothing.
    unsafe {
        libc::syscall(
            libc::SYS_prctl,
            libc::PR_SET_MM,
            libc::PR_SET_MM_MAP,
            map.as_ptr(),
            core::mem::size_of_val(&map),
            0,
        )
    };
    crate::sys::close(fd);
}

/// Give the calling thread the capabilities the program had: a restart in
/// a pid namespace lends CAP_SYS_ADMIN (to choose thread ids); the program
/// must not keep it; a thread with sets of its own (`own`) gets those.
/// Post-restart context, on every thread.
/// The bounding set and securebits as the program had them come first
/// (both need CAP_SETPCAP, which the restart may hold and the program may
/// not), then the three sets, then the ambient set (raised from them).
/// What the kernel refuses is said (once: the first thread).
pub fn restore_capabilities(p: &Process, own: Option<&[u64]>) {
    let [inh, prm, eff, amb] = own.unwrap_or(&p.capabilities)[..] else {
        return;
    };
    let prctl = |op: i32, a: u64, b: u64| -> bool {
        // SAFETY: prctl with integer arguments on the calling thread.
        unsafe { libc::syscall(libc::SYS_prctl, op, a, b, 0, 0) >= 0 }
    };
    let mut lost: Vec<String> = Vec::new();
    let (_, now_prm, now_inh) = sys::capabilities();
    // What the restart holds, effective for the two calls below.
    sys::set_capabilities(now_prm, now_prm, now_inh);
    if let Some(bits) = p.securebits {
        // SAFETY: PR_GET_SECUREBITS takes no pointer.
        let now = unsafe { libc::syscall(libc::SYS_prctl, libc::PR_GET_SECUREBITS, 0, 0, 0, 0) };
        if now != bits as i64 && !prctl(libc::PR_SET_SECUREBITS, bits as u64, 0) {
            lost.push(format!("its securebits ({bits:#x})"));
        }
    }
    if let Some(bounding) = p.bounding {
        let mut kept = 0u64;
        for cap in 0..64u64 {
            // SAFETY: PR_CAPBSET_READ with integers: 1 or 0, or -1 past
            // the kernel's last capability.
            let on = unsafe { libc::syscall(libc::SYS_prctl, libc::PR_CAPBSET_READ, cap, 0, 0, 0) };
            if on < 0 {
                break;
            }
            if on == 1 && bounding & (1 << cap) == 0 && !prctl(libc::PR_CAPBSET_DROP, cap, 0) {
                kept |= 1 << cap;
            }
        }
        if kept != 0 {
            lost.push(format!(
                "capabilities {kept:#x} it had dropped from its bounding set (dropping them needs \
                 CAP_SETPCAP): they stay in it"
            ));
        }
    }
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as u64,
        0,
    );
    sys::set_capabilities(eff, prm, inh);
    let mut missing = 0u64;
    for cap in (0..64).filter(|c| amb & (1u64 << c) != 0) {
        if !prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE as u64, cap) {
            missing |= 1 << cap;
        }
    }
    if missing != 0 {
        lost.push(format!("ambient capabilities {missing:#x}"));
    }
    if !lost.is_empty() && !CAPS_SAID.swap(true, Relaxed) {
        crate::restart_report::warn(&format!(
            "the restarted program does not get back {}",
            lost.join(", ")
        ));
    }
}

/// Whether a thread said what of the capabilities did not come back.
static CAPS_SAID: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
