//! `ckpt checkpoint PID`: ask a running program for a checkpoint.

use crate::cli::CheckpointArgs;
use crate::human::{fmt_bytes, fmt_duration_ns};
use crate::Failure;
use ckpt::control::{self, Request, Response};
use std::time::Duration;

pub fn checkpoint(mut args: CheckpointArgs) -> Result<(), Failure> {
    let answer_fd = args.answer_fd;
    let pid = args.pid;
    let delegated = args.control_name.is_some();
    if let Some(name) = &args.control_name {
        control::name_socket(pid, name).map_err(Failure::new)?;
    }
    // A program started with `ckpt run --store` checkpoints into it
    // unless told otherwise.
    if args.store.is_none() && args.dir.is_none() && args.answer_fd.is_none() {
        if let Some((spec, keep)) = program_store(pid) {
            args.store = Some(spec.into());
            args.keep = args.keep.or(Some(keep));
        }
    }
    let r = match args.store.take() {
        Some(spec) => into_store(&spec, args),
        None => checkpoint_inner(args),
    };
    if r.is_ok() {
        for w in crate::tree_checkpoint::strays(pid) {
            eprintln!("ckpt: warning: {w}");
        }
    }
    if let Some(fd) = answer_fd {
        answer(fd, &r);
    }
    // A periodic checkpoint the program's own timer started (named
    // socket, nobody waiting for the answer) of a job that has ended
    // meanwhile: nothing was lost, nothing to say.
    if r.is_err() && answer_fd.is_none() && delegated && crate::tree_checkpoint::ended(pid) {
        return Ok(());
    }
    r.map(|path| crate::print_stdout(&format!("{}\n", path.display())))?
}

/// The store process `pid` was started with (`ckpt run --store`), and its
/// --keep.
fn program_store(pid: i32) -> Option<(String, u32)> {
    match control::request(pid, &Request::Ping, Duration::from_secs(5)) {
        Ok(Response::Pong { store, keep, .. }) if !store.is_empty() => Some((store, keep.max(1))),
        _ => None,
    }
}

/// `--store sqlite:PATH`: the image written into the store's staging
/// directory, imported in one transaction, then removed; older
/// generations beyond `--keep` go once it is in.
fn into_store(
    spec: &std::ffi::OsStr,
    mut args: CheckpointArgs,
) -> Result<std::path::PathBuf, Failure> {
    let (db, name) = crate::store::parse(spec).ok_or_else(|| {
        Failure::new(format!(
            "--store {}: not a store (write sqlite:PATH)",
            spec.to_string_lossy()
        ))
    })?;
    if name.is_some() {
        return Err(Failure::new("--store: a generation is named by the checkpoint itself; give sqlite:PATH without #NAME".to_string()));
    }
    let mut store = crate::store::Store::open(&db, true).map_err(Failure::new)?;
    let staging = store.staging().map_err(Failure::new)?;
    crate::tree_checkpoint::set_seq_floor(store.max_seq().map_err(Failure::new)?);
    args.dir = Some(staging.clone());
    let keep = args.keep;
    let staged = checkpoint_inner(args)?;
    let listed = crate::cmd_list::entries(&staging)?
        .into_iter()
        .find(|e| e.path == staged)
        .ok_or_else(|| Failure::new(format!("{}: the staged image vanished", staged.display())))?;
    let name = store.import(&staged, &listed, keep).map_err(Failure::new)?;
    let _ = std::fs::remove_dir_all(&staging);
    store.settle().map_err(Failure::new)?;
    Ok(std::path::PathBuf::from(format!(
        "{}{}#{name}",
        crate::store::PREFIX,
        db.display()
    )))
}

/// Write the outcome for the shim that started this command.
fn answer(fd: i32, r: &Result<std::path::PathBuf, Failure>) {
    let resp = match r {
        Ok(path) => Response::Checkpointed {
            path: path.display().to_string(),
            bytes: 0,
            seq: 0,
            freeze_us: 0,
            total_us: 0,
            nonce: 0,
            unforked: 0,
        },
        Err(f) => Response::Error {
            message: f.message.clone(),
            nonce: 0,
        },
    };
    if let Ok(bytes) = rmp_serde::to_vec_named(&resp) {
        // SAFETY: writing a live buffer to the descriptor we were given.
        unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    }
}

fn checkpoint_inner(args: CheckpointArgs) -> Result<std::path::PathBuf, Failure> {
    // The program resolves relative paths against its own cwd, not ours.
    let dir = match &args.dir {
        Some(d) => Some(crate::cmd_run::image_dir(Some(d)).map_err(Failure::new)?),
        None => None,
    };
    let timeout = Duration::from_secs_f64(args.timeout);
    // One checkpoint of a job at a time; a later one waits its turn.
    let _turn = crate::tree_checkpoint::lock_job(args.pid, args.quiet || args.answer_fd.is_some());
    // A job of several processes is checkpointed whole (also when the
    // process forked since it was looked at).
    if !crate::tree_checkpoint::has_descendants(args.pid) {
        if let Some(why) = crate::tree_checkpoint::single_refusal(args.pid) {
            return Err(Failure::new(format!(
                "checkpoint of {} failed: {why}",
                args.pid
            )));
        }
        match single(&args, dir.clone(), timeout) {
            Err(f) if f.message.contains(ckpt::checkpoint::NOW_A_TREE) => {}
            other => return other,
        }
    }
    {
        let done = crate::tree_checkpoint::checkpoint(args.pid, dir, timeout)
            .map_err(|e| Failure::new(format!("checkpoint of {} failed: {e}", args.pid)))?;
        for w in tree_losses(&done.path) {
            eprintln!("ckpt: warning: {w}");
        }
        if args.verbose {
            eprintln!(
                "checkpoint of the job of process {} ({} processes): {}, frozen {}",
                args.pid,
                done.processes,
                fmt_bytes(done.bytes),
                fmt_duration_ns(done.freeze_us.saturating_mul(1000)),
            );
        }
        Ok(done.path)
    }
}

/// Checkpoint one process (it has no children).
fn single(
    args: &CheckpointArgs,
    dir: Option<std::path::PathBuf>,
    timeout: Duration,
) -> Result<std::path::PathBuf, Failure> {
    let req = Request::Checkpoint {
        dir: dir.map(|d| d.to_string_lossy().into_owned()),
        nonce: control::new_nonce(),
        precopy: args.precopy,
    };
    let pid = args.pid;
    let mut bar = crate::progress::Bar::new(
        crate::progress::wanted(args.quiet),
        "writing",
        crate::progress::memory_of(pid),
    );
    let mut tick = |writer: Option<i32>| {
        if let Some(n) = writer.and_then(crate::progress::written_by) {
            bar.set(n);
        }
    };
    let asked = std::time::Instant::now();
    let answer = control::request_watching(pid, &req, timeout, &mut tick);
    // The total as the user waited: a pre-copy's writer came first.
    let waited_us = asked.elapsed().as_micros() as u64;
    bar.finish();
    match answer.map_err(|e| Failure::new(e.to_string()))? {
        Response::Checkpointed {
            path,
            bytes,
            seq,
            freeze_us,
            total_us,
            unforked,
            ..
        } => {
            if args.verbose {
                let mut line = verbose_line(pid, seq, bytes, freeze_us, total_us.max(waited_us));
                if unforked > 0 {
                    line += &format!(
                        ", {} left out of the fork (changed little)",
                        fmt_bytes(unforked)
                    );
                }
                eprintln!("{line}");
            }
            for w in restart_losses(std::path::Path::new(&path)) {
                eprintln!("ckpt: warning: {w}");
            }
            Ok(std::path::PathBuf::from(path))
        }
        Response::Error { message, .. } => Err(Failure::new(format!(
            "checkpoint of {pid} failed: {message}"
        ))),
        other => Err(Failure::new(format!(
            "checkpoint of {pid} failed: unexpected answer {other:?}"
        ))),
    }
}

/// What a restart from the image at `path` will not bring back as it was
/// (told now, not only when it is too late): descriptors that become
/// /dev/null, connections that come back closed.
fn restart_losses(path: &std::path::Path) -> Vec<String> {
    let Ok(image) = crate::loaded::load(path) else {
        return Vec::new();
    };
    let mut said = losses(
        &image.meta,
        &|_| false,
        &[image.meta.process.pid],
        &pty_masters([&image.meta]),
        &connection_ends([&image.meta]),
        &|_, _| false,
    );
    said.extend(reachable_from_outside(std::iter::once(&image.meta)));
    said.extend(ctty_loss(&image.meta, &pty_masters([&image.meta])));
    said
}

/// The pseudo-terminals whose master the job holds (their numbers).
fn pty_masters<'a>(metas: impl IntoIterator<Item = &'a ckpt::image::Meta>) -> Vec<u32> {
    metas
        .into_iter()
        .flat_map(|m| &m.fds)
        .filter_map(|f| f.tty.as_ref()?.pty_index)
        .collect()
}

/// The (local, peer) addresses of the job's connected sockets.
fn connection_ends<'a>(
    metas: impl IntoIterator<Item = &'a ckpt::image::Meta>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    metas
        .into_iter()
        .flat_map(|m| &m.fds)
        .filter_map(|f| f.socket.as_ref())
        .filter(|s| s.connected && !s.peer.is_empty())
        .map(|s| (s.address.clone(), s.peer.clone()))
        .collect()
}

/// One line for a connection that comes back closed by its peer: which
/// connection (its addresses, when the kernel gave them), and whether its
/// other end is the job's own (`ends`: the job's connected sockets).
fn connection_loss(f: &ckpt::image::Fd, ends: &[(Vec<u8>, Vec<u8>)]) -> String {
    let Some(s) = f.socket.as_ref().filter(|s| !s.peer.is_empty()) else {
        return format!(
            "descriptor {} ({}) is a connection to another process: it comes back closed by its peer",
            f.fd, f.path
        );
    };
    let show = |a: &[u8]| ckpt::files::endpoint(a).unwrap_or_else(|| "?".into());
    let what = match s.domain {
        libc::AF_INET | libc::AF_INET6 if s.socket_type == libc::SOCK_STREAM => "a TCP connection",
        libc::AF_INET | libc::AF_INET6 => "a connected datagram socket",
        libc::AF_UNIX => "a unix socket connection",
        _ => "a connection",
    };
    let own = ends
        .iter()
        .any(|(local, peer)| *local == s.peer && *peer == s.address);
    format!(
        "descriptor {} is {what} from {} to {}{}: it comes back closed by its peer",
        f.fd,
        show(&s.address),
        show(&s.peer),
        if own {
            " (its other end is the job's own, but ckpt does not make such a connection again)"
        } else {
            ""
        }
    )
}

/// Whether `f` is an end of a pseudo-terminal of the job's own
/// (`masters`: the numbers of those whose master it holds): a restart
/// makes the pair again.
fn own_pty(f: &ckpt::image::Fd, masters: &[u32]) -> bool {
    f.tty.as_ref().is_some_and(|t| t.pty_index.is_some())
        || ckpt::files::tty::slave_index(f).is_some_and(|n| masters.contains(&n))
}

/// What of a pseudo-terminal of the job's own does not come back: bytes
/// waiting to be read at one of its ends (reading them to save them would
/// take them from the program).
fn pty_unread(f: &ckpt::image::Fd) -> Option<String> {
    let t = f.tty.as_ref().filter(|t| t.pending > 0)?;
    Some(format!(
        "descriptor {} ({}) has {} bytes in its pseudo-terminal the program has not read: a \
         restart makes the pair again, empty",
        f.fd, f.path, t.pending
    ))
}

/// A process's controlling terminal that is a pseudo-terminal of its
/// own: a restart of the process alone makes the pair again but cannot
/// make it its controlling terminal (a tree's restart does, in the
/// session leader).
fn ctty_loss(meta: &ckpt::image::Meta, masters: &[u32]) -> Option<String> {
    let n = ckpt::files::tty::pts_of_tty_nr(meta.process.tty_nr)?;
    masters.contains(&n).then(|| {
        format!(
            "the program's controlling terminal is its own pseudo-terminal /dev/pts/{n}: a \
             restart makes the pair again, but not as its controlling terminal"
        )
    })
}

/// As [`restart_losses`], for every process of a tree image (what the
/// restart makes once for several processes is not lost).
fn tree_losses(dir: &std::path::Path) -> Vec<String> {
    let Ok(m) = ckpt::tree::Manifest::read(dir) else {
        return Vec::new();
    };
    let metas: Vec<(i32, ckpt::image::Meta)> = m
        .processes
        .iter()
        .filter_map(|p| {
            let image = crate::loaded::load(&dir.join(p.image.as_ref()?)).ok()?;
            Some((p.pid, image.meta))
        })
        .collect();
    let parts: Vec<(i32, &ckpt::image::Meta)> = metas.iter().map(|(p, m)| (*p, m)).collect();
    let between = ckpt::tree::restore::between_processes(&parts);
    let members: Vec<i32> = metas.iter().map(|m| m.0).collect();
    let masters = pty_masters(metas.iter().map(|m| &m.1));
    let ends = connection_ends(metas.iter().map(|m| &m.1));
    let fd_of = |pid: i32, fd: i32| {
        metas
            .iter()
            .find(|m| m.0 == pid)
            .and_then(|m| m.1.fds.iter().find(|f| f.fd == fd))
    };
    // One object in several processes that a restart makes once per
    // process (see `ckpt::tree::restore::make_shared`).
    let split = m.shared.iter().filter_map(|g| {
        let (pid, fd) = *g.first()?;
        let f = fd_of(pid, fd)?;
        use ckpt::image::FdKind::*;
        let once = matches!(
            f.kind,
            File | Directory
                | Pipe
                | Socket
                | CharDevice
                | Tty
                | EventFd
                | MemFd
                | SignalFd
                | TimerFd
                | Inotify
                | Epoll
        );
        let who: Vec<String> = g.iter().map(|(p, fd)| format!("{p}:{fd}")).collect();
        if f.kind == MQueue || f.kind == Fifo {
            return Some(format!(
                "{} {} is one open file in processes {}: at restart each opens the same {} \
                 again (a change of its non-blocking flag is then no longer shared)",
                if f.kind == Fifo {
                    "FIFO"
                } else {
                    "message queue"
                },
                f.path,
                who.join(", "),
                if f.kind == Fifo { "FIFO" } else { "queue" },
            ));
        }
        (!once).then(|| {
            format!(
                "{} ({}) is one open file in processes {}: each gets a copy of its own at restart",
                f.path,
                format!("{:?}", f.kind).to_lowercase(),
                who.join(", ")
            )
        })
    });
    let sysv = metas.iter().flat_map(|(pid, meta)| {
        meta.regions
            .iter()
            .filter(|r| {
                r.path.starts_with("/SYSV")
                    && !meta
                        .process
                        .sysv_ipc
                        .iter()
                        .any(|o| o.shm_size.is_some() && o.saved && o.id == r.ino as i32)
            })
            .map(move |r| {
                format!(
                    "process {pid}: System V shared memory at {:#x} comes back with its contents, shared by the job's processes again, but as ckpt's own memory: no longer the segment (shmctl on its id fails)",
                    r.start
                )
            })
    });
    metas
        .iter()
        .flat_map(|(pid, meta)| {
            losses(
                meta,
                &|fd| between.contains(&(*pid, fd)),
                &members,
                &masters,
                &ends,
                &|f, w| watched_by_another(&m.shared, &metas, *pid, f, w),
            )
            .into_iter()
            .map(move |w| format!("process {pid}: {w}"))
        })
        .chain(split)
        .chain(sysv)
        .chain(reachable_from_outside(metas.iter().map(|m| &m.1)))
        .collect()
}

/// Whether epoll `e` of process `pid`, one open file with descriptors of
/// other processes (`shared`: the manifest's groups), has watch `w` in one
/// of them that is not lost there (a tree's restart makes that epoll once:
/// the other process adds the watch).
fn watched_by_another(
    shared: &[Vec<(i32, i32)>],
    metas: &[(i32, ckpt::image::Meta)],
    pid: i32,
    e: &ckpt::image::Fd,
    w: &ckpt::image::EpollWatch,
) -> bool {
    let primary = e.shares_with.unwrap_or(e.fd);
    let Some(group) = shared
        .iter()
        .find(|g| g.contains(&(pid, e.fd)) || g.contains(&(pid, primary)))
    else {
        return false;
    };
    group.iter().filter(|h| h.0 != pid).any(|&(q, qfd)| {
        metas
            .iter()
            .find(|m| m.0 == q)
            .and_then(|m| m.1.fds.iter().find(|f| f.fd == qfd))
            .and_then(|f| f.epoll.as_ref())
            .is_some_and(|ws| {
                ws.iter()
                    .any(|x| !x.lost && x.fd == w.fd && x.data == w.data)
            })
    })
}

/// IPC objects processes outside the job can reach by name or key (a
/// POSIX message queue not unlinked, a System V object with a key): a
/// restart makes them again in an IPC namespace of its own, with what
/// they held, so an outside process that opens the name or the key after
/// the restart reaches another object. One line each.
fn reachable_from_outside<'a>(metas: impl Iterator<Item = &'a ckpt::image::Meta>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in metas {
        let queues = m
            .fds
            .iter()
            .filter(|f| f.kind == ckpt::image::FdKind::MQueue && !f.deleted)
            .map(|f| {
                format!(
                    "message queue {} comes back in the restart's own IPC namespace: a process \
                     outside the job that opens it by name after the restart reaches another queue",
                    f.path
                )
            });
        let keyed = m
            .process
            .sysv_ipc
            .iter()
            .filter(|o| o.key != 0 && o.saved && !o.removed)
            .map(|o| {
                format!(
                    "System V {} {} (key {:#x}) comes back in the restart's own IPC namespace: a \
                     process outside the job that uses its key after the restart reaches another one",
                    o.kind(),
                    o.id,
                    o.key
                )
            });
        for w in queues.chain(keyed) {
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

/// The periodic POSIX timers whose signal was pending (expired, not yet
/// taken): the checkpoint reads queued signals by taking them, and puts a
/// copy back; the kernel then counts the timer's own signal as taken and
/// queues it again at the next expiry, so the program gets it twice (in
/// the running program and after a restart) unless it took the copy
/// first. Sweep C F8.
fn twice_pending_timer_signals(meta: &ckpt::image::Meta) -> Vec<String> {
    // siginfo: si_code at 8, a timer's si_tid (its kernel id) at 16.
    let word = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map(|w| i32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
    };
    let queued = meta
        .process
        .queued
        .iter()
        .chain(meta.threads.iter().flat_map(|t| &t.queued));
    let mut ids: Vec<i32> = queued
        .filter(|q| word(&q.info, 8) == Some(libc::SI_TIMER))
        .filter_map(|q| word(&q.info, 16))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    meta.timers
        .iter()
        .filter(|t| t.interval_ns > 0 && ids.contains(&t.kernel_id))
        .map(|t| {
            format!(
                "POSIX timer {} (signal {}) had expired with its signal pending: the checkpoint \
                 takes queued signals to read them and puts a copy back, so if the program has \
                 not taken it by the timer's next expiry, it gets the signal twice, here and \
                 after a restart (a timer's pending signal cannot be read in place)",
                t.kernel_id, t.signo
            )
        })
        .collect()
}

/// What of `meta` a restart cannot bring back as it was, but the
/// descriptors `handled` says a tree's restart makes.
fn losses(
    meta: &ckpt::image::Meta,
    handled: &dyn Fn(i32) -> bool,
    members: &[i32],
    pty_masters: &[u32],
    ends: &[(Vec<u8>, Vec<u8>)],
    watched_elsewhere: &dyn Fn(&ckpt::image::Fd, &ckpt::image::EpollWatch) -> bool,
) -> Vec<String> {
    let seccomp =
        meta.process.prctl.is_some_and(|p| p.seccomp != 0).then(|| {
            "the program runs under seccomp, which a restart cannot reinstate".to_string()
        });
    meta
        .fds
        .iter()
        .filter(|f| !handled(f.fd))
        .filter_map(|f| {
            if own_pty(f, pty_masters) {
                return pty_unread(f);
            }
            let connected = ckpt::files::loses_its_peer(f, &meta.fds);
            // A descriptor sharing its open file with another (dup) comes
            // back as that one does.
            let primary = f
                .shares_with
                .filter(|&s| s != f.fd)
                .and_then(|s| meta.fds.iter().find(|x| x.fd == s))
                .unwrap_or(f);
            match ckpt::files::stdio_rule(primary) {
                ckpt::files::Passthrough::Placeholder => Some(format!(
                    "descriptor {} ({}) cannot come back at restart (/dev/null takes its place)",
                    f.fd, f.path
                )),
                ckpt::files::Passthrough::Rebuilt if connected => Some(connection_loss(f, ends)),
                // One end of a pair: its queue is in the image, sent again
                // from the other end.
                // (A packet socket's ring: said below, with what waits in it.)
                _ if f.socket.as_ref().is_some_and(|s| s.waiting)
                    && !(f.pipe_peer.is_some()
                        && (f.messages.is_some() || f.pipe_data.is_some()))
                    && !meta.regions.iter().any(|r| r.path == f.path) =>
                {
                    Some(format!(
                    "descriptor {} ({}): {} are not in the image (a restart makes the socket \
                     again, empty)",
                    f.fd,
                    f.path,
                    match f.socket.as_ref() {
                        Some(s) if s.listening => "connections waiting to be accepted",
                        Some(s) if s.domain == libc::AF_NETLINK => {
                            "the kernel's replies and events waiting to be read (a dump not read \
                             to its end never ends after a restart)"
                        }
                        Some(s) if s.domain == libc::AF_PACKET => "packets waiting to be read",
                        _ => "datagrams waiting to be read",
                    }
                    ))
                }
                _ => None,
            }
        })
        .chain(
            meta.threads
                .iter()
                .filter(|t| t.own.as_ref().is_some_and(|o| o.files))
                .map(|t| {
                    format!(
                        "thread {} ({}) has a descriptor table of its own (unshare(CLONE_FILES)): \
                         a restart gives it the process's (descriptors only it had are gone)",
                        t.id, t.name
                    )
                }),
        )
        .chain(twice_pending_timer_signals(meta))
        .chain(meta.threads.iter().filter(|t| t.tiles_in_use).map(|t| {
            format!(
                "thread {} ({}) has AMX tile registers in use: a restart does not bring them \
                 back (its next tile instruction dies with SIGILL)",
                t.id, t.name
            )
        }))
        .chain(meta.fds.iter().filter_map(|f| {
            f.socket
                .as_ref()
                .filter(|s| s.filter.as_ref().is_some_and(|c| c.is_empty()))?;
            Some(format!(
                "descriptor {} ({}) has a socket filter that cannot be read back (an eBPF \
                 program, SO_ATTACH_BPF): a restart makes the socket again without it",
                f.fd, f.path
            ))
        }))
        .chain(meta.fds.iter().filter_map(|f| {
            f.socket.as_ref().filter(|s| {
                s.options.iter().any(|o| {
                    (o.level, o.name) == (libc::IPPROTO_IP, libc::IP_MULTICAST_IF)
                        && o.value.is_empty()
                })
            })?;
            Some(format!(
                "descriptor {} ({}) may send multicast on an interface it named by index, which \
                 ckpt could not keep (more than {} sockets named one so between two \
                 checkpoints): a restart sends on the default interface",
                f.fd,
                f.path,
                ckpt::files::MULTICAST_INTERFACES_KEPT
            ))
        }))
        .chain(packet_losses(meta))
        .chain(meta.fds.iter().filter_map(|f| {
            f.socket.as_ref().filter(|s| s.urgent)?;
            Some(format!(
                "descriptor {} ({}) has an urgent (out-of-band) byte waiting to be read: a restart \
                 has neither it nor its mark in the stream (the bytes after the mark may be lost \
                 too)",
                f.fd, f.path
            ))
        }))
        .chain(meta.fds.iter().filter_map(|f| {
            let s = f.socket.as_ref().filter(|s| s.unsent > 0)?;
            let own = ends.iter().any(|(l, p)| *l == s.peer && *p == s.address);
            own.then(|| {
                format!(
                    "descriptor {} (a TCP connection from {} to {}, both the job's) has {} bytes \
                     written that the kernel has not sent yet: they cannot be read back to be \
                     saved, a restart does not have them",
                    f.fd,
                    ckpt::files::endpoint(&s.address).unwrap_or_default(),
                    ckpt::files::endpoint(&s.peer).unwrap_or_default(),
                    s.unsent
                )
            })
        }))
        .chain(seccomp)
        .chain(meta.process.sem_undo_unknown.then(|| {
            "the program set undo values (SEM_UNDO) on more System V semaphores than ckpt \
             keeps (64): those it did not keep are not given back when the restarted process exits"
                .to_string()
        }))
        .chain(meta.process.sysv_ipc.iter().filter(|o| !o.saved).map(|o| {
            format!(
                "the program used System V {} {}, which was gone or could not be read at the \
                 checkpoint: the image does not hold it",
                o.kind(),
                o.id
            )
        }))
        .chain(meta.fds.iter().flat_map(|f| {
            f.epoll.iter().flatten().filter(|w| w.lost && !watched_elsewhere(f, w)).map(move |w| {
                format!(
                    "epoll {} watches a file (once descriptor {}) the program holds no descriptor to: that watch cannot come back",
                    f.fd, w.fd
                )
            })
        }))
        .chain(meta.fds.iter().filter_map(|f| {
            let pid = f.pidfd_pid.filter(|&p| p > 0 && !members.contains(&p))?;
            Some(format!(
                "descriptor {} is a pidfd of process {pid}, which is not in the job: it cannot \
                 come back at restart (/dev/null takes its place)",
                f.fd
            ))
        }))
        .chain(meta.fds.iter().filter(|f| f.queued_with_descriptors > 0).map(|f| {
            format!(
                "descriptor {} ({}) has {} unread message(s) carrying descriptors (SCM_RIGHTS): \
                 a restart puts their data back, not the descriptors they carry",
                f.fd, f.path, f.queued_with_descriptors
            )
        }))
        .chain(meta.fds.iter().filter_map(|f| {
            let short = ckpt::files::unnamed_shortfall(f)?;
            Some(if ckpt::files::is_secretmem(f) {
                format!(
                    "descriptor {} (memfd_secret, {} bytes): the kernel keeps what the program \
                     wrote in it from every process, ckpt too: a restart makes it again, zeros",
                    f.fd, f.size
                )
            } else {
                format!(
                    "descriptor {} ({}, no name leads to it): {short} of its {} bytes could not \
                     be read: a restart has zeros there",
                    f.fd, f.path, f.size
                )
            })
        }))
        .chain(meta.fds.iter().filter(|f| f.inotify_unread > 0).map(|f| {
            format!(
                "descriptor {} (inotify) has {} bytes of events the program has not read: they \
                 cannot be saved without taking them, a restart does not have them",
                f.fd, f.inotify_unread
            )
        }))
        .chain(meta.fds.iter().filter(|f| hides_an_empty_message(f)).map(|f| {
            format!(
                "descriptor {} ({}) has an empty message queued, which the kernel hides from \
                 every look after this checkpoint's: this image holds it, a later checkpoint \
                 taken before the program reads it will not",
                f.fd, f.path
            )
        }))
        .chain(meta.fds.iter().filter_map(|f| {
            let what = f.mqueue.as_ref()?.unsaved.as_ref()?;
            Some(format!(
                "descriptor {} (message queue {}): {what}",
                f.fd, f.path
            ))
        }))
        .chain(
            meta.fds
                .iter()
                .filter(|f| f.dnotify.is_some_and(|m| m & DN_MULTISHOT == 0))
                .map(|f| {
                    format!(
                        "descriptor {} ({}) has a one-shot dnotify watch, which the kernel drops \
                         once it fired without saying so: a restart watches the directory again",
                        f.fd, f.path
                    )
                }),
        )
        .chain((meta.closed_files_dropped > 0).then(|| {
            format!(
                "the program wrote and closed more files than ckpt keeps track of (the last {}, \
                 with paths of up to 255 bytes): if {} changed after this checkpoint, a restart \
                 does not roll it back",
                ckpt::files::closed::MAX,
                if meta.closed_files_dropped == 1 {
                    "the other one".to_string()
                } else {
                    format!("one of the {} others", meta.closed_files_dropped)
                }
            )
        }))
        .chain(keyring_losses(meta))
        .chain(meta.threads.iter().filter(|t| t.rseq_unknown).map(|t| {
            format!(
                "thread {} ({}) registered an rseq area past ckpt's wrappers (an inline system call): it is not registered again at restart",
                t.id, t.name
            )
        }))
        .chain(unkept_shared_files(meta))
        .chain(kernel_object_mappings(meta))
        .collect()
}

/// Mappings of a kernel object other than memory (an io_uring's rings, a
/// perf buffer, a device's anonymous inode) or of huge pages: a restart
/// gives plain memory with their bytes. (A packet socket's ring is said
/// with its socket.)
fn kernel_object_mappings(meta: &ckpt::image::Meta) -> Vec<String> {
    meta.regions
        .iter()
        .filter(|r| !r.path.starts_with("socket:["))
        .filter_map(|r| {
            let what = ckpt::memory::shared::kernel_object(r)?;
            Some(format!(
                "the mapping at {:#x} ({}) comes back with its contents as {what}",
                r.start, r.path
            ))
        })
        .collect()
}

/// Keyrings the program made for itself (keyctl, add_key): their keys
/// cannot be read back and a restarted process has none of them.
fn keyring_losses(meta: &ckpt::image::Meta) -> Vec<String> {
    let k = meta.process.keyrings;
    let why = "its keys cannot be read back to be saved; a restart has none of them";
    k.process
        .then(|| format!("the program has a process keyring (keyctl, add_key): {why}"))
        .into_iter()
        .chain(k.session.then(|| {
            format!(
                "the program joined a session keyring of its own (keyctl \
                 KEYCTL_JOIN_SESSION_KEYRING): {why}, and it runs in the restart's session keyring"
            )
        }))
        .chain(
            meta.threads
                .iter()
                .filter(|t| t.keyring)
                .map(|t| format!("thread {} ({}) has a thread keyring: {why}", t.id, t.name)),
        )
        .collect()
}

/// What of a packet socket does not come back: the BPF program steering
/// its fanout group, memberships ckpt found no room to keep, a ring
/// mapped from it (see `ckpt::files::packet`).
fn packet_losses(meta: &ckpt::image::Meta) -> Vec<String> {
    use ckpt::files::packet;
    let mut out = Vec::new();
    for f in &meta.fds {
        let Some(s) = f.socket.as_ref().filter(|s| s.domain == libc::AF_PACKET) else {
            continue;
        };
        let fanout = s.options.iter().find_map(|o| {
            let v = o.value.get(..4)?;
            ((o.level, o.name) == (libc::SOL_PACKET, libc::PACKET_FANOUT))
                .then(|| u32::from_ne_bytes([v[0], v[1], v[2], v[3]]))
        });
        if fanout.is_some_and(packet::fanout_by_program) {
            out.push(format!(
                "descriptor {} ({}) is in a fanout group steered by a BPF program \
                 (PACKET_FANOUT_DATA), which cannot be read back: after a restart the group \
                 sends every packet to one socket",
                f.fd, f.path
            ));
        }
        if packet::some_unknown(&s.options) {
            out.push(format!(
                "descriptor {} ({}) may hold memberships (PACKET_ADD_MEMBERSHIP: promiscuous \
                 or multicast) ckpt could not keep (set before an exec that did not pass through \
                 ckpt's exec wrappers, such as execl, or more than {} between two checkpoints): \
                 a restart does not take those again",
                f.fd,
                f.path,
                packet::MEMBERS
            ));
        }
    }
    out.extend(
        meta.regions
            .iter()
            .filter(|r| r.path.starts_with("socket:["))
            .map(|r| {
                format!(
                    "the mapping at {:#x} ({}) is a packet socket's ring (PACKET_RX_RING, \
                     PACKET_TX_RING), which cannot come back: a restart gives plain memory with \
                     its bytes and a socket without a ring (packets no longer arrive in it; \
                     those in it are not delivered)",
                    r.start, r.path
                )
            }),
    );
    out
}

/// Files mapped shared and writable whose pages the image does not keep
/// (see `Region::kept`): what the program writes through the mapping
/// after the checkpoint stays in the file. One line per file.
fn unkept_shared_files(meta: &ckpt::image::Meta) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for r in meta
        .regions
        .iter()
        .filter(|r| ckpt::memory::shared::writable_file(r) && r.kept == 0 && r.extents.is_empty())
    {
        if seen.contains(&r.path.as_str()) {
            continue;
        }
        seen.push(&r.path);
        let why = match std::fs::metadata(ckpt::names::path(&r.path)) {
            Ok(m) if m.ino() == r.ino && m.len() <= r.offset => continue,
            Ok(m) if m.ino() == r.ino => format!(
                "and beyond the {} GiB of such mappings an image keeps",
                ckpt::memory::shared::KEPT_FILES_MAX >> 30
            ),
            _ => "and its path no longer leads to it".to_string(),
        };
        out.push(format!(
            "{} is mapped shared and writable, {why}: what the program writes through the \
             mapping after this checkpoint stays in the file, and a restart maps it as it is then",
            ckpt::names::shown(&r.path)
        ));
    }
    out
}

/// fcntl(F_NOTIFY) flag: the watch stays after it fired.
const DN_MULTISHOT: u32 = 0x8000_0000;

/// A socket-pair end with an empty message queued that the checkpoint
/// could not put back fresh (see `ckpt::files::snapshot`, requeue): its
/// other end is in another process or closed, an end is shut down, or
/// the send buffer is too small.
fn hides_an_empty_message(f: &ckpt::image::Fd) -> bool {
    f.empty_hidden
}

fn verbose_line(pid: i32, seq: u64, bytes: u64, freeze_us: u64, total_us: u64) -> String {
    format!(
        "checkpoint #{seq} of process {pid}: {}, frozen {}, total {}",
        fmt_bytes(bytes),
        fmt_duration_ns(freeze_us.saturating_mul(1000)),
        fmt_duration_ns(total_us.saturating_mul(1000)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_line_is_readable() {
        assert_eq!(
            verbose_line(42, 2, 3 << 20, 1500, 250_000),
            "checkpoint #2 of process 42: 3 MiB (3145728 bytes), frozen 1.500ms, total 250ms"
        );
    }

    #[test]
    fn missing_process_is_a_clear_error() {
        let args = CheckpointArgs {
            pid: i32::MAX,
            dir: None,
            store: None,
            keep: None,
            timeout: 1.0,
            verbose: false,
            precopy: false,
            quiet: true,
            answer_fd: None,
            control_name: None,
        };
        let f = checkpoint(args).unwrap_err();
        assert_eq!(f.code, 1);
        assert!(f.message.contains("no such process"), "{}", f.message);
    }
}
