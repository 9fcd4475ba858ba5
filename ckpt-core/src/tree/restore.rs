//! Restart of a tree: the objects its processes share, made once.
//!
//! - [`make_shared`] runs in the `ckpt restart` command before any process
//!   exists: for every pipe, socket pair, open file and shared anonymous
//!   memory object that two processes of the tree held, it makes one
//!   object, puts back what was in flight (pipe bytes, unread socket data,
//!   the memory's pages) and says, per process, which descriptor the
//!   command holds for each of its descriptors ([`Handoff`]). The processes
//!   are forks of the command: they inherit them.
//! - [`take_handoff`] runs post-restart in each process: it reads its
//!   handoff and moves the inherited descriptors out of the way of the
//!   program's numbers; `files::restore` and `memory::shared::restore` then
//!   use them instead of making objects of their own.

use super::Handoff;
use crate::files::restore::{
    another_open_file, move_to_at_least, rebuild, refill_pipe, refill_socket, set_status,
    shut_again,
};
use crate::files::{stdio_rule, Passthrough};
use crate::image::{Fd, FdKind, Meta, RegionKind};
use std::collections::{BTreeMap, HashMap};

/// One process of the tree as [`make_shared`] needs it.
pub struct Part<'a> {
    pub pid: i32,
    pub meta: &'a Meta,
    /// Its image file (for the pages of shared memory).
    pub image_fd: i32,
}

/// What [`make_shared`] made.
#[derive(Default)]
pub struct Made {
    pub handoffs: BTreeMap<i32, Handoff>,
    /// Every descriptor made (the command keeps them until the processes
    /// exist; each is close-on-exec).
    pub fds: Vec<i32>,
    pub warnings: Vec<String>,
    /// Each pseudo-terminal that was a process's controlling terminal:
    /// (number at the checkpoint, a slave descriptor of the new pair, its
    /// foreground process group then).
    pub ttys: Vec<(u32, i32, Option<i32>)>,
}

/// Lowest number the command gives the objects it makes (out of the way
/// of its own standard descriptors).
const BASE: i32 = 64;

/// Make every object the processes `parts` share (see the module doc).
/// `ofd_groups` are the manifest's open files held by several processes.
pub fn make_shared(parts: &[Part], ofd_groups: &[Vec<(i32, i32)>]) -> Result<Made, String> {
    let mut made = Made::default();
    let fd_of = |pid: i32, fd: i32| -> Option<&Fd> {
        parts
            .iter()
            .find(|p| p.pid == pid)?
            .meta
            .fds
            .iter()
            .find(|f| f.fd == fd)
    };
    // One key per open file description: its cross-process group, else
    // (pid, lowest descriptor of it in that process).
    let ofd = |pid: i32, f: &Fd| -> (i32, i32) {
        let primary = f.shares_with.unwrap_or(f.fd);
        match ofd_groups
            .iter()
            .position(|g| g.contains(&(pid, f.fd)) || g.contains(&(pid, primary)))
        {
            Some(i) => (-1, i as i32),
            None => (pid, primary),
        }
    };
    let all: Vec<(i32, &Fd)> = parts
        .iter()
        .flat_map(|p| p.meta.fds.iter().map(move |f| (p.pid, f)))
        .collect();
    let give = |made: &mut Made, pid: i32, target: i32, fd: i32| {
        made.handoffs.entry(pid).or_default().fds.push((target, fd));
    };
    for holders in shared_pipes(&all) {
        let p = crate::sys::pipe(libc::O_CLOEXEC | libc::O_NONBLOCK)
            .map_err(|e| format!("cannot make a pipe: errno {e}"))?;
        let (rd, wr) = (move_to_at_least(p[0], BASE)?, move_to_at_least(p[1], BASE)?);
        made.fds.extend([rd, wr]);
        if let Some(size) = holders.iter().find_map(|h| h.1.pipe_size) {
            // SAFETY: F_SETPIPE_SZ on our own new pipe.
            unsafe { libc::syscall(libc::SYS_fcntl, rd, libc::F_SETPIPE_SZ, size) };
        }
        if let Some((pid, g)) = holders.iter().find(|h| h.1.pipe_data.is_some()) {
            refill_pipe(wr, g).map_err(|e| format!("process {pid}: {e}"))?;
        }
        // One open file per open file description of the checkpoint.
        let mut opened: HashMap<(i32, i32), i32> = HashMap::new();
        let (mut rd_used, mut wr_used) = (false, false);
        for &(pid, g) in &holders {
            let key = ofd(pid, g);
            let fd = match opened.get(&key) {
                Some(&fd) => fd,
                None => {
                    let (end, used) = match g.flags & libc::O_ACCMODE {
                        libc::O_WRONLY => (wr, &mut wr_used),
                        _ => (rd, &mut rd_used),
                    };
                    let fd = if *used {
                        let fd = another_open_file(end, g, BASE)?;
                        made.fds.push(fd);
                        fd
                    } else {
                        *used = true;
                        end
                    };
                    opened.insert(key, fd);
                    fd
                }
            };
            give(&mut made, pid, g.fd, fd);
        }
        for (&(pid, fd0), &fd) in &opened {
            let flags = if pid == -1 {
                let (p, f) = ofd_groups[fd0 as usize][0];
                fd_of(p, f).map(|g| g.flags)
            } else {
                fd_of(pid, fd0).map(|g| g.flags)
            };
            if let Some(flags) = flags {
                set_status(fd, flags);
            }
        }
    }

    // FIFOs several processes hold: opened once more by path (a
    // read-write open keeps the bytes in flight while the others open).
    let mut fifos: BTreeMap<(u64, u64), Holders> = BTreeMap::new();
    for &(pid, f) in &all {
        if f.kind == FdKind::Fifo && !f.deleted && stdio_rule(f) == Passthrough::Rebuilt {
            fifos.entry((f.dev, f.ino)).or_default().push((pid, f));
        }
    }
    for holders in fifos.values().filter(|h| spans_processes(h)) {
        let path = crate::names::c(&holders[0].1.path).ok_or("a FIFO's name holds a NUL")?;
        let open = |flags: i32| -> Result<i32, String> {
            // SAFETY: open with a valid C path; never blocks (O_NONBLOCK,
            // and a read-write end is open before any write-only one).
            let fd =
                unsafe { libc::open(path.as_ptr(), flags | libc::O_NONBLOCK | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(format!(
                    "cannot open the FIFO {} again: {}",
                    crate::names::shown(&holders[0].1.path),
                    std::io::Error::last_os_error()
                ));
            }
            move_to_at_least(fd, BASE)
        };
        let both = open(libc::O_RDWR)?;
        made.fds.push(both);
        if let Some((pid, g)) = holders.iter().find(|h| h.1.pipe_data.is_some()) {
            refill_pipe(both, g).map_err(|e| format!("process {pid}: {e}"))?;
        }
        let mut opened: HashMap<(i32, i32), i32> = HashMap::new();
        for &(pid, g) in holders {
            let fd = match opened.get(&ofd(pid, g)) {
                Some(&fd) => fd,
                None => {
                    let fd = open(g.flags & libc::O_ACCMODE)?;
                    set_status(fd, g.flags);
                    made.fds.push(fd);
                    opened.insert(ofd(pid, g), fd);
                    fd
                }
            };
            give(&mut made, pid, g.fd, fd);
        }
    }

    // Socket pairs with their ends in different processes.
    for ((a, b), holders) in shared_pairs(&all) {
        let typ = holders
            .iter()
            .find_map(|h| {
                h.1.socket_type
                    .or(h.1.socket.as_ref().map(|s| s.socket_type))
            })
            .unwrap_or(libc::SOCK_STREAM);
        let end = |ino: u64| holders.iter().find(|h| h.1.ino == ino).map(|h| h.1);
        let (sp, said) = crate::files::sockets::unix_pair(end(a), end(b), typ)?;
        made.warnings.extend(said);
        let (sa, sb) = (
            move_to_at_least(sp[0], BASE)?,
            move_to_at_least(sp[1], BASE)?,
        );
        made.fds.extend([sa, sb]);
        // Buffer sizes and options first (the buffers must hold what was unread).
        for (ino, fd) in [(a, sa), (b, sb)] {
            if let Some((_, g)) = holders.iter().find(|h| h.1.ino == ino) {
                if let Some(s) = &g.socket {
                    crate::files::set_socket_options(fd, g, s);
                }
            }
        }
        // What was unread at one end is sent from the other.
        for (ino, from) in [(a, sb), (b, sa)] {
            if let Some((_, g)) = holders
                .iter()
                .find(|h| h.1.ino == ino && h.1.shares_with.is_none_or(|s| s == h.1.fd))
            {
                refill_socket(from, g)?;
            }
        }
        for (ino, fd) in [(a, sa), (b, sb)] {
            if let Some((_, g)) = holders.iter().find(|h| h.1.ino == ino) {
                shut_again(fd, g);
            }
        }
        let mut flags_set = [false; 2];
        for &(pid, g) in holders.iter() {
            let (fd, i) = if g.ino == a { (sa, 0) } else { (sb, 1) };
            if !flags_set[i] {
                set_status(fd, g.flags);
                flags_set[i] = true;
            }
            give(&mut made, pid, g.fd, fd);
        }
    }

    // TCP connections with their ends in different processes.
    for (a, b) in tcp_pairs(&all) {
        let (Some(&(_, fa)), Some(&(_, fb))) = (a.first(), b.first()) else {
            continue;
        };
        let (sa, sb) = match crate::files::sockets::make_tcp_pair(fa, fb) {
            Ok((sa, sb, said)) => {
                made.warnings.extend(said);
                (sa, sb)
            }
            Err(e) => {
                made.warnings.push(format!(
                    "a TCP connection between processes {} and {} cannot be made again ({e}): \
                     its ends come back closed by their peer",
                    a[0].0, b[0].0
                ));
                continue;
            }
        };
        for (end, fd) in [(&a, sa), (&b, sb)] {
            let fd = move_to_at_least(fd, BASE)?;
            made.fds.push(fd);
            for &(pid, g) in end.iter() {
                give(&mut made, pid, g.fd, fd);
            }
        }
    }

    // Pseudo-terminals of the tree's own (it holds the master) with ends
    // in several processes, or that are a process's controlling
    // terminal: one pair, made here.
    let cttys: Vec<u32> = parts
        .iter()
        .filter_map(|p| crate::files::tty::pts_of_tty_nr(p.meta.process.tty_nr))
        .collect();
    for (n, holders) in pty_pairs(&all) {
        if !spans_processes(&holders) && !cttys.contains(&n) {
            continue; // the process makes it again itself
        }
        let Some(&(_, master)) = holders
            .iter()
            .find(|h| h.1.tty.as_ref().is_some_and(|t| t.pty_index.is_some()))
        else {
            continue;
        };
        let m = move_to_at_least(crate::files::tty::make_pair(master)?, BASE)?;
        made.fds.push(m);
        let mut opened: HashMap<(i32, i32), i32> = HashMap::new();
        for &(pid, g) in &holders {
            let fd = if g.tty.as_ref().is_some_and(|t| t.pty_index.is_some()) {
                m
            } else if let Some(&fd) = opened.get(&ofd(pid, g)) {
                fd
            } else {
                let fd = move_to_at_least(crate::files::tty::open_slave(m, g)?, BASE)?;
                made.fds.push(fd);
                opened.insert(ofd(pid, g), fd);
                fd
            };
            give(&mut made, pid, g.fd, fd);
        }
        if cttys.contains(&n) {
            // For the session leader to take as its controlling terminal.
            let fd = move_to_at_least(crate::files::tty::open_slave(m, master)?, BASE)?;
            made.fds.push(fd);
            made.ttys
                .push((n, fd, master.tty.as_ref().and_then(|t| t.fg_pgrp)));
        }
        crate::files::tty::lock_again(m, master);
        if let Some(now) = crate::files::tty::number(m).filter(|&now| now != n) {
            made.warnings.push(format!(
                "pseudo-terminal /dev/pts/{n} of the job is /dev/pts/{now} now (a new pair; the \
                 kernel chooses its number)"
            ));
        }
    }

    // Unnamed files made here: (device, inode, descriptor).
    let mut files_made: Vec<(u64, u64, i32)> = Vec::new();
    // Other open files several processes share (one offset): files by
    // path; what cannot be made once comes back once per process.
    for group in ofd_groups {
        let holders: Vec<(i32, &Fd)> = group
            .iter()
            .filter_map(|&(pid, fd)| Some((pid, fd_of(pid, fd)?)))
            .collect();
        let Some(&(pid0, f)) = holders.first() else {
            continue;
        };
        // Made above, or the command's own (a terminal, a pipe to the
        // outside), which every process inherits as one already.
        if made_already(&made, pid0, f.fd)
            || f.kind == FdKind::Pipe
            || stdio_rule(f) != Passthrough::Rebuilt
        {
            continue;
        }
        match f.kind {
            FdKind::File | FdKind::Directory if !f.deleted => {
                let fd = open_again(f)?;
                made.fds.push(fd);
                for &(pid, g) in &holders {
                    give(&mut made, pid, g.fd, fd);
                }
            }
            // No offset to share; status flags rarely matter here.
            FdKind::CharDevice | FdKind::Tty => {}
            // One epoll instance, empty: each process adds the watches it
            // finds through its own descriptors (the same ones, when the
            // epoll was inherited with them; the second add is EEXIST).
            FdKind::Epoll => {
                // SAFETY: epoll_create1 with a flag.
                let e = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
                if e < 0 {
                    return Err("cannot make an epoll instance".into());
                }
                let e = move_to_at_least(e, BASE)?;
                made.fds.push(e);
                for &(pid, g) in &holders {
                    give(&mut made, pid, g.fd, e);
                }
                if let Some((pid, g)) = signal_watcher(parts, &holders) {
                    made.handoffs.entry(pid).or_default().signal_watches.push(g);
                }
            }
            // Objects of their own (their state is in the image): made
            // once here as a process would make its own.
            // (A socket here listens or is bound, or is a connection to
            // outside: the same one for every process holding it.)
            FdKind::EventFd
            | FdKind::MemFd
            | FdKind::File
            | FdKind::SignalFd
            | FdKind::TimerFd
            | FdKind::Inotify
            | FdKind::Socket => {
                // The one holding the saved state (its process's first).
                let f = holders
                    .iter()
                    .map(|h| h.1)
                    .find(|g| g.shares_with.is_none_or(|s| s == g.fd))
                    .unwrap_or(f);
                let Some(pair) = rebuild(f, std::slice::from_ref(f), BASE)? else {
                    continue;
                };
                let Some(&(_, fd)) = pair.first() else {
                    continue;
                };
                made.fds.push(fd);
                if matches!(f.kind, FdKind::MemFd | FdKind::File) {
                    files_made.push((f.dev, f.ino, fd));
                }
                for &(pid, g) in &holders {
                    give(&mut made, pid, g.fd, fd);
                }
            }
            // Made by each process in the restart's IPC namespace (the
            // first makes and fills it, the others open it).
            FdKind::MQueue => made.warnings.push(format!(
                "descriptor {} of process {pid0} (message queue {}) was one open file with \
                 descriptors of other processes; each process opens the same queue again",
                f.fd, f.path
            )),
            _ => made.warnings.push(format!(
                "descriptor {} of process {pid0} ({}) was one open file with descriptors of \
                 other processes; each process gets one of its own",
                f.fd, f.path
            )),
        }
    }

    // Shared memory mapped in several processes: one memfd.
    let mut mem: BTreeMap<(u64, u64), Vec<(usize, usize)>> = BTreeMap::new();
    for (pi, p) in parts.iter().enumerate() {
        for (ri, r) in p.meta.regions.iter().enumerate() {
            // Shared anonymous memory, memfds, unlinked files (a POSIX
            // semaphore of /dev/shm after sem_unlink): one object.
            // (System V memory whose segment was not saved too: shared
            // again, as a memfd — the restart says so.)
            let kernel_own =
                r.path.starts_with("anon_inode:") || r.path.starts_with("/anon_hugepage");
            // A System V segment saved whole is made again at its id and
            // attached by each process itself.
            let segment = r.path.starts_with("/SYSV")
                && p.meta
                    .process
                    .sysv_ipc
                    .iter()
                    .any(|o| o.shm_size.is_some() && o.saved && o.id == r.ino as i32);
            if r.kind == RegionKind::SharedAnonymous && !kernel_own && !segment {
                mem.entry((r.dev, r.ino)).or_default().push((pi, ri));
            }
        }
    }
    for (&(dev, ino), views) in &mem {
        if !views.iter().any(|v| v.0 != views[0].0) {
            continue;
        }
        // Mapped from a file several processes hold open: that one object.
        let fd = match files_made.iter().find(|m| m.0 == dev && m.1 == ino) {
            Some(m) => m.2,
            None => {
                let fd = shared_memory(parts, views)?;
                made.fds.push(fd);
                fd
            }
        };
        let mut seen = Vec::new();
        for &(pi, _) in views {
            if !seen.contains(&pi) {
                seen.push(pi);
                made.handoffs
                    .entry(parts[pi].pid)
                    .or_default()
                    .memory
                    .push((dev, ino, fd));
            }
        }
    }
    Ok(made)
}

/// The descriptors of one object, each with its process.
type Holders<'a> = Vec<(i32, &'a Fd)>;

/// The tree's own pseudo-terminals (a master among its descriptors), by
/// number, each with its holders: masters and slaves.
fn pty_pairs<'a>(all: &[(i32, &'a Fd)]) -> BTreeMap<u32, Holders<'a>> {
    let mut pairs: BTreeMap<u32, Holders<'a>> = BTreeMap::new();
    for &(_, f) in all {
        if let Some(n) = f.tty.as_ref().and_then(|t| t.pty_index) {
            pairs.entry(n).or_default();
        }
    }
    for &(pid, f) in all {
        let n = f
            .tty
            .as_ref()
            .and_then(|t| t.pty_index)
            .or_else(|| crate::files::tty::slave_index(f));
        if let Some(h) = n.and_then(|n| pairs.get_mut(&n)) {
            h.push((pid, f));
        }
    }
    pairs
}

/// TCP connections whose two ends the tree holds, in different processes
/// (or one end in several): each end with its holders.
fn tcp_pairs<'a>(all: &[(i32, &'a Fd)]) -> Vec<(Holders<'a>, Holders<'a>)> {
    use crate::files::sockets::is_tcp_connection;
    let mut pairs: BTreeMap<(Vec<u8>, Vec<u8>), Holders<'a>> = BTreeMap::new();
    for &(pid, f) in all {
        let Some(s) = f.socket.as_ref().filter(|s| is_tcp_connection(s)) else {
            continue;
        };
        pairs
            .entry((s.address.clone(), s.peer.clone()))
            .or_default()
            .push((pid, f));
    }
    let mut out = Vec::new();
    for ((local, peer), a) in &pairs {
        if local >= peer {
            continue; // each connection once, from its lower end
        }
        let Some(b) = pairs.get(&(peer.clone(), local.clone())) else {
            continue;
        };
        let mut both = a.clone();
        both.extend(b.iter().copied());
        if spans_processes(&both) {
            out.push((a.clone(), b.clone()));
        }
    }
    out
}

/// Of the processes holding one epoll instance, the one that adds its
/// watches of signalfds (see [`super::Handoff::signal_watches`]): the
/// nearest the root of those holding such a watch, with the epoll's
/// number there.
fn signal_watcher(parts: &[Part], holders: &[(i32, &Fd)]) -> Option<(i32, i32)> {
    let meta = |pid: i32| parts.iter().find(|p| p.pid == pid).map(|p| p.meta);
    let depth = |mut pid: i32| {
        let mut d = 0;
        while let Some(m) = meta(pid).filter(|_| d < parts.len()) {
            pid = m.process.ppid;
            d += 1;
        }
        d
    };
    holders
        .iter()
        .filter(|(pid, e)| {
            let fds = meta(*pid).map_or(&[][..], |m| &m.fds[..]);
            e.epoll.iter().flatten().any(|w| {
                !w.lost
                    && fds
                        .iter()
                        .any(|f| f.fd == w.via.unwrap_or(w.fd) && f.kind == FdKind::SignalFd)
            })
        })
        .min_by_key(|(pid, _)| (depth(*pid), *pid))
        .map(|(pid, e)| (*pid, e.fd))
}

fn spans_processes(holders: &[(i32, &Fd)]) -> bool {
    holders.iter().any(|h| h.0 != holders[0].0)
}

/// The pipes held in several processes of the tree, each with its
/// holders. A pipe the tree holds only one end of leads outside (a
/// terminal's pipeline, the caller's): it is the command's own, inherited,
/// and not among them.
fn shared_pipes<'a>(all: &[(i32, &'a Fd)]) -> Vec<Vec<(i32, &'a Fd)>> {
    let mut pipes: BTreeMap<(u64, u64), Vec<(i32, &Fd)>> = BTreeMap::new();
    for &(pid, f) in all {
        if f.kind == FdKind::Pipe {
            pipes.entry((f.dev, f.ino)).or_default().push((pid, f));
        }
    }
    let inside = |holders: &[(i32, &Fd)]| {
        let acc = |h: &(i32, &Fd)| h.1.flags & libc::O_ACCMODE;
        (holders.iter().any(|h| acc(h) != libc::O_WRONLY)
            && holders.iter().any(|h| acc(h) != libc::O_RDONLY))
            || holders.iter().any(|h| h.1.peer_closed)
    };
    pipes
        .into_values()
        .filter(|h| spans_processes(h) && inside(h))
        .collect()
}

/// Unnamed unix socket pairs whose ends are in different processes: the
/// two inodes (lower first) and every holder of either end.
fn shared_pairs<'a>(all: &[(i32, &'a Fd)]) -> Vec<((u64, u64), Holders<'a>)> {
    // Ends of socket pairs, and of connections between two unix sockets
    // (one end accepted from a listening socket bound to a path or an
    // abstract name): both come back as a pair with their unread data.
    let unix_pair_end = |f: &Fd| {
        f.kind == FdKind::Socket
            && f.socket
                .as_ref()
                .is_some_and(|s| s.domain == libc::AF_UNIX && !s.listening)
            && f.peer_ino.is_some_and(|p| p > 0)
    };
    let mut pairs: BTreeMap<(u64, u64), Vec<(i32, &Fd)>> = BTreeMap::new();
    for &(pid, f) in all.iter().filter(|(_, f)| unix_pair_end(f)) {
        let peer = f.peer_ino.unwrap_or(0);
        pairs
            .entry((f.ino.min(peer), f.ino.max(peer)))
            .or_default()
            .push((pid, f));
    }
    // Both ends in the tree (an end whose peer is outside is the
    // command's own to inherit, or a connection that cannot come back),
    // held by more than one process.
    pairs
        .into_iter()
        .filter(|((a, b), h)| {
            spans_processes(h) && h.iter().any(|x| x.1.ino == *a) && h.iter().any(|x| x.1.ino == *b)
        })
        .collect()
}

/// The descriptors (pid, fd) a restart of the tree makes once for several
/// processes: pipes and socket pairs between them (a process alone would
/// find their other ends gone).
pub fn between_processes(parts: &[(i32, &Meta)]) -> Vec<(i32, i32)> {
    let all: Vec<(i32, &Fd)> = parts
        .iter()
        .flat_map(|&(pid, m)| m.fds.iter().map(move |f| (pid, f)))
        .collect();
    shared_pipes(&all)
        .into_iter()
        .chain(shared_pairs(&all).into_iter().map(|(_, h)| h))
        .chain(tcp_pairs(&all).into_iter().map(|(mut a, b)| {
            a.extend(b);
            a
        }))
        .flatten()
        .map(|(pid, f)| (pid, f.fd))
        .collect()
}

fn made_already(made: &Made, pid: i32, fd: i32) -> bool {
    made.handoffs
        .get(&pid)
        .is_some_and(|h| h.fd_for(fd).is_some())
}

/// Open a file again as descriptor `f` had it (never creating or
/// truncating), at its offset.
fn open_again(f: &Fd) -> Result<i32, String> {
    let path = crate::names::c(&f.path).ok_or("a file's name holds a NUL")?;
    let flags = f.flags & !(libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL) | libc::O_CLOEXEC;
    // SAFETY: open with a valid C path; no mode without O_CREAT.
    let fd = unsafe { libc::open(path.as_ptr(), flags) };
    if fd < 0 {
        return Err(format!(
            "cannot open {} again: {}",
            crate::names::shown(&f.path),
            std::io::Error::last_os_error()
        ));
    }
    let fd = move_to_at_least(fd, BASE)?;
    if f.kind == FdKind::File {
        // SAFETY: lseek on the descriptor just opened.
        unsafe { libc::lseek(fd, f.offset, libc::SEEK_SET) };
    }
    Ok(fd)
}

/// A memfd holding the pages of one shared anonymous object, taken from
/// the image of the first process that maps it.
fn shared_memory(parts: &[Part], views: &[(usize, usize)]) -> Result<i32, String> {
    let size = views
        .iter()
        .map(|&(pi, ri)| {
            let r = &parts[pi].meta.regions[ri];
            r.offset + (r.end - r.start)
        })
        .max()
        .unwrap_or(0);
    // SAFETY: memfd_create with a C name.
    let fd = unsafe { libc::memfd_create(c"ckpt-shared".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err("cannot make a memfd for shared memory".into());
    }
    let fd = move_to_at_least(fd, BASE)?;
    // SAFETY: ftruncate of our own memfd.
    if unsafe { libc::ftruncate(fd, size as i64) } != 0 {
        return Err("cannot size the memfd for shared memory".into());
    }
    let first = views[0].0;
    let mut buf = Vec::new();
    for &(pi, ri) in views.iter().filter(|v| v.0 == first) {
        let p = &parts[pi];
        let r = &p.meta.regions[ri];
        for e in &r.extents {
            // Plain or a compressed block: the pages as the program had them.
            buf.resize(e.len as usize, 0);
            crate::memory::compress::read_extent(p.image_fd, e, &mut buf).map_err(|why| {
                format!(
                    "cannot read the shared memory of process {} from its image: {why}",
                    p.pid
                )
            })?;
            let at = e.addr - r.start + r.offset;
            // SAFETY: pwrite from a live buffer of its length.
            let put = unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), at as i64) };
            if put != buf.len() as isize {
                return Err("cannot fill the memfd for shared memory".into());
            }
        }
    }
    Ok(fd)
}

/// Post-restart: read the handoff at descriptor `fd` (then closed) and
/// move every inherited descriptor to `base` or above (out of the way of
/// the program's numbers). Post-restart context.
pub fn take_handoff(fd: i32, base: i32) -> Handoff {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: read into a local buffer.
        let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), bytes.len() as i64) };
        if n <= 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n as usize]);
    }
    crate::sys::close(fd);
    let Ok(mut h) = rmp_serde::from_slice::<Handoff>(&bytes) else {
        crate::restart_report::warn(
            "the objects this process shares with others could not be read",
        );
        return Handoff::default();
    };
    let mut moved: Vec<(i32, i32)> = Vec::new();
    for old in h.inherited() {
        if let Ok(new) = move_to_at_least(old, base) {
            moved.push((old, new));
        }
    }
    let to = |x: i32| moved.iter().find(|m| m.0 == x).map_or(x, |m| m.1);
    for e in h.fds.iter_mut() {
        e.1 = to(e.1);
    }
    for m in h.memory.iter_mut() {
        m.2 = to(m.2);
    }
    h.barrier = h.barrier.map(|(r, g)| (to(r), to(g)));
    h
}
