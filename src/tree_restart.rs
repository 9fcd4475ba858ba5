//! `ckpt restart` of a tree image (a `ckpt-….tree` directory; see
//! `ckpt::tree`): every process back at its pid under its parent, with its
//! session and process group, zombies as zombies, and what the processes
//! shared made once and shared again.
//!
//! ```text
//! ckpt restart        checks every image, makes the shared objects,
//!   │                 writes each process's plan and handoff
//!   └─ root (pid R)   setsid/setpgid as recorded, forks its children at
//!        │            their pids (clone3 set_tid), each doing the same
//!        ├─ child     down the tree; a zombie exits at once with its
//!        └─ zombie    status; once the whole tree stands, every process
//!                     execs the restorer with its own image
//! ```

use crate::cli::RestartArgs;
use crate::cmd_restart::{
    check_descriptors, check_identity, check_reserved_range, check_vdso, clear_cloexec,
    open_checked, open_deps, open_mapped_files, plan_rollback, restore_job_log,
    shared_streams_said, write_plan,
};
use crate::{shim_path, Failure};
use ckpt::image::Meta;
use ckpt::tree::restore::{make_shared, Part};
use ckpt::tree::{self, Manifest};
use std::ffi::CString;
use std::os::fd::{IntoRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

/// The tree image `image` names, if it names one: a tree directory, or
/// (with `latest`, or for a run's directory) the newest image of the
/// directory when that is a tree.
pub fn tree_image(image: &Path, latest: bool) -> Result<Option<PathBuf>, Failure> {
    if image.join(tree::MANIFEST).is_file() {
        return Ok(Some(image.to_path_buf()));
    }
    if !image.is_dir() {
        return Ok(None);
    }
    if latest {
        // The newest whole generation, files and trees alike.
        let all = crate::cmd_list::entries(image)?;
        return Ok(all
            .iter()
            .rev()
            .find(|e| e.meta.is_ok())
            .map(|e| e.path.clone())
            .filter(|p| p.is_dir()));
    }
    // The newest generation of the directory, files and trees alike.
    let newest = std::fs::read_dir(image)
        .map_err(|e| Failure::new(format!("{}: {e}", image.display())))?
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("ckpt-") && (n.ends_with(".img") || n.ends_with(".tree"))
        })
        .filter(|e| !e.path().is_dir() || e.path().join(tree::MANIFEST).is_file())
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max();
    Ok(newest
        .map(|(_, p)| p)
        .filter(|p| p.join(tree::MANIFEST).is_file()))
}

/// One live process, checked and ready to be restored.
struct Ready {
    pid: i32,
    meta: Meta,
    image_fd: RawFd,
    plan_fd: RawFd,
    /// Descriptors it must inherit across exec (image, plan, mapped
    /// files, handoff and the shared objects it holds).
    keep: Vec<RawFd>,
}

pub fn restart(dir: &Path, args: &RestartArgs) -> Result<(), Failure> {
    let manifest = Manifest::read(dir).map_err(Failure::new)?;
    let mut checked = Vec::new();
    for m in &manifest.processes {
        let Some(name) = &m.image else { continue };
        let path = dir.join(name);
        let (_h, meta, file) = open_checked(&path)?;
        check_identity(&path, &meta)?;
        // Incremental: the earlier images it takes pages from, linked
        // beside it in the tree's directory (checked as its own are).
        let (deps, _, _) = open_deps(&path, &meta, false)?;
        check_reserved_range(&meta)?;
        let specials = check_vdso(&meta)?;
        if meta.process.pid != m.pid {
            return Err(Failure::new(format!(
                "{}: holds process {}, the manifest says {}",
                path.display(),
                meta.process.pid,
                m.pid
            )));
        }
        let deps: Vec<RawFd> = deps.into_iter().map(|f| f.into_raw_fd()).collect();
        checked.push((m.pid, meta, file.into_raw_fd(), deps, specials));
    }
    // Before shared objects are made or files looked at: the old job is
    // gone, and files renamed after the checkpoint have their names back.
    let job = checked
        .iter()
        .find(|c| c.0 == manifest.root)
        .and_then(|c| c.1.job.as_deref());
    crate::stale_job::check(job, args.kill_old)?;
    let metas: Vec<&Meta> = checked.iter().map(|c| &c.1).collect();
    for w in crate::renames::undo(&metas, args.keep_files)
        .into_iter()
        .chain(crate::renames::removed(&metas))
    {
        eprintln!("ckpt: warning: {w}");
    }
    let checked = checked
        .into_iter()
        .map(|(pid, meta, fd, deps, specials)| {
            let mapped = open_mapped_files(&meta)?;
            Ok((pid, meta, fd, deps, specials, mapped))
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let parts: Vec<Part> = checked
        .iter()
        .map(|(pid, meta, fd, _, _, _)| Part {
            pid: *pid,
            meta,
            image_fd: *fd,
        })
        .collect();
    let made = make_shared(&parts, &manifest.shared).map_err(Failure::new)?;
    for w in &made.warnings {
        eprintln!("ckpt: warning: {w}");
    }
    // The restore barrier (see `ckpt::tree::Handoff::barrier`).
    let pipe = || {
        ckpt::sys::pipe(libc::O_CLOEXEC)
            .map_err(|e| Failure::new(format!("cannot make a pipe: errno {e}")))
    };
    let (back, go) = (pipe()?, pipe()?);
    BACK.store(back[1], Relaxed);
    // Every process's files to put back first: one process may only read
    // what another wrote (`check_descriptors`).
    let rollbacks = checked
        .iter()
        .map(|c| plan_rollback(&c.1, args.keep_files))
        .collect::<Result<Vec<_>, Failure>>()?;
    let rolled_back = rollbacks
        .iter()
        .flat_map(|(c, _)| c.iter().map(|c| c.key()))
        .collect();
    let mut rollbacks = rollbacks.into_iter();
    let mut cuts = Vec::new();
    let mut ready: Vec<Ready> = Vec::new();
    let mut said: Vec<(String, Vec<i32>)> = Vec::new();
    let me = std::process::id() as i32;
    for (pid, meta, image_fd, deps, specials, mapped) in checked {
        let mut handoff = made.handoffs.get(&pid).cloned().unwrap_or_default();
        handoff.barrier = Some((back[1], go[0]));
        let on_descriptors =
            check_descriptors(&meta, args.strict, args.keep_files, &rolled_back, &handoff)?;
        // Files written through descriptors several processes share are
        // cut back once (see below).
        let (c, warnings) = rollbacks.next().unwrap_or_default();
        for w in on_descriptors.into_iter().chain(warnings) {
            match said.iter_mut().find(|(text, _)| *text == w) {
                Some((_, pids)) => pids.push(pid),
                None => said.push((w, vec![pid])),
            }
        }
        cuts.extend(c);
        let sources: Vec<RawFd> = std::iter::once(image_fd).chain(deps).collect();
        let mut keep: Vec<RawFd> = mapped
            .values()
            .copied()
            .chain(sources.iter().copied())
            .collect();
        keep.extend(handoff.inherited());
        let handoff_fd = handoff_memfd(&handoff)?;
        keep.push(handoff_fd);
        // Only the root answers for the restart command's pid.
        let alias = if pid == manifest.root { me } else { 0 };
        let entry_arg = tree::pack_entry_arg(alias, Some(tree::EntryFd::Handoff(handoff_fd)));
        let plan_fd = write_plan(&meta, &sources, &mapped, &specials, entry_arg, None)?;
        // Each process keeps only its own across exec (see `become_member`).
        set_cloexec(plan_fd);
        keep.push(plan_fd);
        ready.push(Ready {
            pid,
            meta,
            image_fd,
            plan_fd,
            keep,
        });
    }
    // What several processes would say alike (a file in each one's
    // list: the root's holds what the job's log names) is said once.
    for (w, pids) in said {
        let who: Vec<String> = pids.iter().map(i32::to_string).collect();
        let s = if pids.len() == 1 { "" } else { "es" };
        eprintln!("ckpt: warning: process{s} {}: {w}", who.join(", "));
    }
    let metas: Vec<&Meta> = ready.iter().map(|r| &r.meta).collect();
    let (leftovers, warnings) = crate::leftovers::plan(&metas, args.keep_files);
    for w in warnings.into_iter().chain(shared_streams_said(&metas)) {
        eprintln!("ckpt: warning: {w}");
    }
    let restorer = shim_path::find_restorer().map_err(Failure::new)?;
    let restorer =
        CString::new(restorer.as_os_str().as_bytes()).map_err(|e| Failure::new(e.to_string()))?;
    for fd in ready.iter().flat_map(|r| r.keep.iter()) {
        set_cloexec(*fd);
    }
    // Every check passed: now files may be touched (once each).
    for r in &ready {
        restore_job_log(&r.meta);
    }
    leftovers
        .iter()
        .for_each(crate::leftovers::Leftover::remove);
    crate::leftovers::say_the_rest();
    let mut cut_done: Vec<(u64, u64)> = Vec::new();
    for c in &cuts {
        if !cut_done.contains(&c.key()) {
            cut_done.push(c.key());
            c.apply()?;
        }
    }
    if args.no_namespace {
        return Err(Failure::new(
            "a tree of processes comes back only in a pid namespace of its own (without \
             --no-namespace): its processes must have their pids again",
        ));
    }
    let root_clocks = ready
        .iter()
        .find(|r| r.pid == manifest.root)
        .and_then(|r| r.meta.clocks);
    let ctx = Ctx {
        manifest: &manifest,
        ttys: &made.ttys,
        ready: &ready,
        restorer: &restorer,
        // The group the root joins: the restart command's own.
        // SAFETY: getpgrp cannot fail.
        root_pgid: unsafe { libc::getpgrp() },
    };
    // Once the tree's root exists, this command holds nothing of the
    // program's (a pipe's write end here would keep its reader waiting).
    let ours: Vec<RawFd> = ready
        .iter()
        .flat_map(|r| r.keep.iter().copied())
        .chain(made.fds.iter().copied())
        .collect();
    // Every System V object of the job, once.
    let mut ipc: Vec<ckpt::image::SysvObject> = Vec::new();
    for o in ready.iter().flat_map(|r| r.meta.process.sysv_ipc.iter()) {
        if !ipc
            .iter()
            .any(|x| x.semaphores == o.semaphores && x.id == o.id)
        {
            ipc.push(o.clone());
        }
    }
    let why = crate::restart_ns::run_with(
        manifest.root,
        root_clocks,
        crate::restart_ns::Ipc {
            sysv: &ipc,
            mqueues: ready
                .iter()
                .any(|r| crate::restart_ns::Ipc::has_mqueues(&r.meta)),
        },
        &mut || become_member(&ctx, manifest.root),
        &mut |root| {
            for &fd in &ours {
                // SAFETY: closing descriptors this command made.
                unsafe { libc::close(fd) };
            }
            wait_until_back(back[0], go[1], ready.len(), root);
        },
    );
    Err(Failure::new(format!(
        "cannot restart the tree of processes: {why}"
    )))
}

/// Wait until the `n` processes of the tree are restored (a byte each on
/// `back`), or the root ended, then let all of them go on (`go` closed).
fn wait_until_back(back: RawFd, go: RawFd, n: usize, root: i32) {
    let mut got = 0;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while got < n && std::time::Instant::now() < until {
        let mut p = libc::pollfd {
            fd: back,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll of one live pollfd.
        let r = unsafe { libc::poll(&mut p, 1, 100) };
        if r > 0 {
            let mut b = [0u8; 64];
            // SAFETY: read into a local buffer.
            let k = unsafe { libc::read(back, b.as_mut_ptr().cast(), b.len()) };
            if k <= 0 {
                break; // every process ended or is back
            }
            if b[..k as usize].contains(&b'F') {
                // A process could not be restored (it said why): the
                // others, waiting for it, go with it.
                eprintln!(
                    "ckpt restart: a process of the tree could not be restored: the whole tree is stopped"
                );
                crate::restart_ns::give_up(root);
                break;
            }
            got += k as usize;
        }
        // SAFETY: a zeroed siginfo is valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid looks at our own child without reaping it.
        let looked = unsafe {
            libc::waitid(
                libc::P_PID,
                root as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        } == 0;
        // SAFETY: si_pid of the siginfo waitid filled (0: still running).
        let gone = looked && unsafe { info.si_pid() } != 0;
        if gone {
            break;
        }
    }
    // SAFETY: closing our own descriptors.
    unsafe {
        libc::close(back);
        libc::close(go);
    }
}

/// A handoff written into a memfd (read post-restart, see
/// `ckpt::tree::restore::take_handoff`).
fn handoff_memfd(h: &tree::Handoff) -> Result<RawFd, Failure> {
    let bytes = rmp_serde::to_vec_named(h).map_err(|e| Failure::new(e.to_string()))?;
    crate::cmd_restart::memfd_holding(c"ckpt-handoff", &bytes, libc::MFD_CLOEXEC)
}

fn set_cloexec(fd: RawFd) {
    // SAFETY: fcntl(F_SETFD) on a descriptor we own.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

struct Ctx<'a> {
    manifest: &'a Manifest,
    /// Controlling terminals made again (see `ckpt::tree::restore::Made`).
    ttys: &'a [(u32, i32, Option<i32>)],
    ready: &'a [Ready],
    restorer: &'a CString,
    root_pgid: i32,
}

/// Say what went wrong in process `pid` of the tree and end it (its
/// parent, and so the whole restart, fails with it).
fn die(pid: i32, msg: &str) -> ! {
    let line = format!("ckpt restart: process {pid}: {msg}\n");
    // SAFETY: write(2) of live buffers, then _exit.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        let back = BACK.load(Relaxed);
        if back >= 0 {
            libc::write(back, b"F".as_ptr().cast(), 1);
        }
        libc::_exit(71)
    }
}

/// Runs in the new process at `pid`: take its session and group, make its
/// children (each does the same), wait for the whole tree, become the
/// program (or, for a zombie, end as it ended).
fn become_member(ctx: &Ctx, pid: i32) -> ! {
    let Some(m) = ctx.manifest.member(pid) else {
        die(pid, "not in the manifest")
    };
    let root = pid == ctx.manifest.root;
    if root {
        // Every process waits for EOF on it: once the whole tree stands,
        // the root closes the only write end.
        match ckpt::sys::pipe(libc::O_CLOEXEC) {
            Ok(p) => {
                GO[0].store(p[0], Relaxed);
                GO[1].store(p[1], Relaxed);
            }
            Err(e) => die(pid, &format!("cannot make a pipe: errno {e}")),
        }
    } else {
        // SAFETY: closing our copy of the root's write end.
        unsafe { libc::close(GO[1].load(Relaxed)) };
    }
    // SAFETY: plain process-attribute calls on ourselves.
    unsafe {
        if m.sid == Some(pid) && libc::setsid() < 0 {
            die(pid, &format!("setsid: {}", std::io::Error::last_os_error()));
        }
    }
    // A session leader takes its controlling terminal back before its
    // children are made (they inherit it).
    let ctty = (m.sid == Some(pid))
        .then(|| controlling_tty(ctx, pid))
        .flatten();
    if let Some((fd, _)) = ctty {
        // SAFETY: TIOCSCTTY with an integer on a slave this process inherited.
        if unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) } != 0 {
            die(
                pid,
                &format!(
                    "cannot take its controlling terminal again: {}",
                    std::io::Error::last_os_error()
                ),
            );
        }
    }
    let mut later = None;
    match m.pgid {
        Some(g) if g == pid => {
            // SAFETY: as above.
            unsafe { libc::setpgid(0, 0) };
        }
        // A group whose leader comes later in the tree: joined once all stand.
        // SAFETY: as above.
        Some(g) if unsafe { libc::setpgid(0, g) } != 0 => later = Some(g),
        Some(_) => {}
        // SAFETY: as above.
        None if !root && m.sid.is_none() => unsafe {
            if libc::getpgrp() != ctx.root_pgid {
                libc::setpgid(0, ctx.root_pgid);
            }
        },
        None => {}
    }
    for c in ctx.manifest.children(pid) {
        make_child(ctx, pid, c.pid);
    }
    if let Some(status) = m.zombie_status {
        end_like(&m.comm, status);
    }
    say_ready();
    if root {
        // The whole tree stands: everybody may go.
        // SAFETY: closing the last write end.
        unsafe { libc::close(GO[1].load(Relaxed)) };
    }
    let mut b = [0u8; 1];
    // SAFETY: read into a local byte; EOF once the root closed its end.
    while unsafe { libc::read(GO[0].load(Relaxed), b.as_mut_ptr().cast(), 1) } < 0
        && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
    {}
    if let Some(g) = later {
        // SAFETY: as above.
        if unsafe { libc::setpgid(0, g) } != 0 {
            eprintln!(
                "ckpt restart: warning: process {pid} cannot join process group {g} again: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    if let Some((fd, Some(fg))) = ctty {
        // Every group stands now: the terminal's foreground one again.
        // SAFETY: signal mask calls on our own thread and TIOCSPGRP from a
        // live pid_t; SIGTTOU blocked so a background caller is not stopped.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTTOU);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            if libc::tcgetpgrp(fd) != fg && libc::ioctl(fd, libc::TIOCSPGRP, &fg) != 0 {
                eprintln!(
                    "ckpt restart: warning: process {pid} cannot give its terminal back to \
                     process group {fg}: {}",
                    std::io::Error::last_os_error()
                );
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        }
    }
    let Some(r) = ctx.ready.iter().find(|r| r.pid == pid) else {
        die(pid, "no image")
    };
    for &fd in &r.keep {
        clear_cloexec(fd);
    }
    let _ = r.image_fd;
    let arg = CString::new(r.plan_fd.to_string()).unwrap_or_default();
    crate::restart_ns::exec_restorer(&[ctx.restorer, &arg])
}

/// The controlling terminal process `pid` had, when the restart made it
/// again: (a slave descriptor this process inherited, the terminal's
/// foreground process group at the checkpoint).
fn controlling_tty(ctx: &Ctx, pid: i32) -> Option<(RawFd, Option<i32>)> {
    let r = ctx.ready.iter().find(|r| r.pid == pid)?;
    let n = ckpt::files::tty::pts_of_tty_nr(r.meta.process.tty_nr)?;
    ctx.ttys
        .iter()
        .find(|t| t.0 == n)
        .map(|&(_, fd, fg)| (fd, fg))
}

/// Fork child `pid` of process `parent` at its pid and wait until its
/// part of the tree stands.
fn make_child(ctx: &Ctx, parent: i32, pid: i32) {
    let Ok(ready) = ckpt::sys::pipe(libc::O_CLOEXEC) else {
        die(parent, "cannot make a pipe")
    };
    let child = crate::restart_ns::fork_at(pid);
    if child < 0 {
        die(
            parent,
            &format!(
                "cannot make process {pid} again: {}",
                std::io::Error::last_os_error()
            ),
        );
    }
    if child == 0 {
        // SAFETY: closing the read end in the child.
        unsafe { libc::close(ready[0]) };
        READY_FD.store(ready[1], Relaxed);
        become_member(ctx, pid)
    }
    // SAFETY: closing the write end in the parent.
    unsafe { libc::close(ready[1]) };
    let mut b = [0u8; 1];
    let n = loop {
        // SAFETY: read into a local byte.
        let n = unsafe { libc::read(ready[0], b.as_mut_ptr().cast(), 1) };
        if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break n;
        }
    };
    // SAFETY: closing our end.
    unsafe { libc::close(ready[0]) };
    if n != 1 {
        die(parent, &format!("process {pid} could not be made again"));
    }
}

/// The root's "go" pipe (read end, write end), inherited down the tree.
static GO: [AtomicI32; 2] = [AtomicI32::new(-1), AtomicI32::new(-1)];

/// The write end of the restart command's barrier pipe (see
/// `wait_until_back`), where a process that cannot be made says `F`.
static BACK: AtomicI32 = AtomicI32::new(-1);

/// The ready pipe of this process (its parent waits for one byte on it).
static READY_FD: AtomicI32 = AtomicI32::new(-1);

/// Tell the parent that this process and everything below it stand.
fn say_ready() {
    let fd = READY_FD.swap(-1, Relaxed);
    if fd >= 0 {
        // SAFETY: one byte to our parent, then close.
        unsafe {
            libc::write(fd, b"R".as_ptr().cast(), 1);
            libc::close(fd);
        }
    }
}

/// End the way a zombie of the image ended (it has stood its part),
/// under its own name.
fn end_like(comm: &str, status: i32) -> ! {
    let name = CString::new(comm).unwrap_or_default();
    // SAFETY: PR_SET_NAME with a C string (cut to 15 bytes by the kernel).
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    say_ready();
    if libc::WIFSIGNALED(status) {
        crate::restart_ns::raise_like(libc::WTERMSIG(status));
    }
    // SAFETY: ending this process.
    unsafe { libc::_exit(libc::WEXITSTATUS(status)) }
}
