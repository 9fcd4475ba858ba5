//! Kernel state that only exists in the process, across a restart: an epoll
//! instance (with the data words of what it watches), a timerfd, a
//! signalfd, inotify watches, file locks, a socket pair, a memfd and a deleted file, memory advised
//! MADV_DONTFORK / MADV_WIPEONFORK, 72 MiB of memory (copied back by two
//! threads), locked memory, prctl attributes, monotonic clocks, threads' CPU affinity and nice values; and python's asyncio, which also needs its pid
//! to stay the same. Each program is
//! checkpointed mid-loop, killed, restarted, and must print exactly what
//! an uninterrupted run prints.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{
    checkpoint_and_kill, plain_cmd, reference_output, restart_and_compare, restart_cmd, run_cmd,
    start, wait_file, Area, Out, RESTART_TIMEOUT,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `cycle` for C program `src` (tests/programs), checkpointed once it
/// printed "step 19".
fn cycle_c(tag: &str, src: &str) {
    cycle_c_with(tag, src, &[], Duration::ZERO);
}

/// `cycle_c` with arguments, and `downtime` between the kill and the restart.
fn cycle_c_with(tag: &str, src: &str, args: &[&str], downtime: Duration) {
    let dir = common::TempDir::new(&format!("{tag}-bin"));
    let prog = common::compile_c(src, dir.path());
    cycle_after(tag, &prog, args, "step 19", downtime);
}

/// Reference run, then checkpoint once `marker` is in the output, kill,
/// restart, and compare the whole output.
fn cycle(tag: &str, prog: &Path, args: &[&str], marker: &str) {
    cycle_after(tag, prog, args, marker, Duration::ZERO);
}

/// `cycle`, waiting `downtime` between the kill and the restart.
fn cycle_after(tag: &str, prog: &Path, args: &[&str], marker: &str, downtime: Duration) {
    cycle_n(tag, prog, args, marker, downtime, 2)
}

/// `cycle_after` with `checkpoints` checkpoints before the kill.
fn cycle_n(
    tag: &str,
    prog: &Path,
    args: &[&str],
    marker: &str,
    downtime: Duration,
    checkpoints: usize,
) {
    let area = Area::new(tag);
    let want = reference_output(&area, prog, args);
    let out = area.file("out");
    let err = area.file("err");
    let mut kid = start(
        run_cmd(prog, args, area.path(), &area.images),
        Out::File(&out),
        &err,
        "under ckpt",
    );
    wait_file(
        &mut kid,
        &out,
        |d| String::from_utf8_lossy(d).contains(marker),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let image = rs::checkpoint_n_and_kill(&mut kid, &area.images, checkpoints);
    std::thread::sleep(downtime);
    let warnings = restart_and_compare(restart_cmd(&image, &[], area.path()), &out, &want, &area);
    assert!(
        !warnings.contains("cannot be restored"),
        "a descriptor did not come back: {warnings}"
    );
}

#[test]
fn epoll_timerfd_signalfd_come_back() {
    let dir = common::TempDir::new("events-bin");
    let prog = common::compile_c("restart_events.c", dir.path());
    cycle("events", &prog, &[], "tick 10");
}

#[test]
fn python_asyncio_continues_with_its_pid() {
    let script = common::programs_dir().join("restart_asyncio.py");
    let script = script.to_string_lossy().into_owned();
    cycle("asyncio", &common::python3(), &[&script], "step 12 ");
}

/// A vfork child's signal handler changes are its own: CPython's
/// subprocess resets every handled signal in its vfork child, and under
/// ckpt that reset the parent's handlers too (SIGTERM, SIGINT, SIGUSR1
/// swallowed, no checkpoint needed). Handlers work before and after a
/// restart, with a subprocess each step.
#[test]
fn signal_handlers_survive_vfork_children_and_a_restart() {
    let script = common::programs_dir().join("restart_vfork_signals.py");
    let script = script.to_string_lossy().into_owned();
    cycle("vfork-signals", &common::python3(), &[&script], "step 12 ");
}

#[test]
fn memfd_and_deleted_file_come_back_with_their_contents() {
    cycle_c("unnamed", "restart_unnamed.c");
}

#[test]
fn inotify_watches_come_back_at_their_numbers() {
    cycle_c("inotify", "restart_inotify.c");
}

/// A watch on a directory renamed after it was added follows the
/// directory: the checkpoint finds where it is now through the file
/// handle fdinfo shows (it was called pathless and not watched).
#[test]
fn an_inotify_watch_on_a_renamed_directory_comes_back() {
    cycle_c("inotify-moved", "restart_inotify_moved.c");
}

/// A program that dropped a capability from its bounding set, set a
/// securebit and raised an ambient capability finds all three as it left
/// them after a restart. Before, the bounding set came back whole (a
/// privilege the program had given up for good) and the other two were
/// cleared, without a word. Needs root (as in CI); elsewhere the program
/// cannot set them up, says so, and the test says it proved nothing.
#[test]
fn bounding_set_securebits_and_ambient_capabilities_come_back() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: the program cannot set its capabilities up; nothing to check");
        return;
    }
    cycle_c("caps", "restart_caps.c");
}

/// A POSIX timer and a timerfd set for an absolute wall-clock time fire at
/// that time after a restart 1.5 s later, not 1.5 s late. Before, the
/// POSIX timer was armed again with the time left at the checkpoint.
#[test]
fn timers_set_for_a_wall_clock_time_keep_it_across_downtime() {
    cycle_c_with(
        "abstime",
        "restart_abstime.c",
        &[],
        Duration::from_millis(1500),
    );
}

/// Periodic timers on the clocks a restart carries on (a POSIX timer and
/// a timerfd on CLOCK_MONOTONIC, a timerfd on CLOCK_BOOTTIME, the real
/// interval timer) keep their phase: each expires where its start and
/// period put it on the program's clock. Before, each was armed again for
/// the time it had left once the restart got to it, and so expired about
/// 2 ms later than that (per restart; one tick in 400 of a 10 ms timer
/// went missing).
#[test]
fn periodic_timers_keep_their_phase() {
    cycle_c("phase", "restart_timer_phase.c");
}

/// Writes and receives blocked while the program is checkpointed return
/// all they asked for (a pipe write and a stream send of 300000 bytes, a
/// recv with MSG_WAITALL), and calls on sockets with a receive timeout do
/// not fail with EINTR (recv, accept). Before, the checkpoint alone cut
/// them short: 65536 and 219264 bytes written, 1 byte received, two
/// EINTRs.
#[test]
fn blocked_writes_and_receives_are_not_cut_short() {
    cycle_c("transfer", "restart_transfer.c");
}

/// A program finds its floating-point exception flags clear at main, as
/// without ckpt, and as it left them after a checkpoint and a restart.
#[test]
fn floating_point_flags_are_the_programs_own() {
    cycle_c("fpflags", "restart_fpflags.c");
}

/// A program standing in a removed directory stands in one again after a
/// restart: getcwd and relative creates fail as before (they succeeded in
/// the restart command's directory, writing files there).
#[test]
fn a_removed_working_directory_is_removed_again() {
    cycle_c("removed-cwd", "restart_removed_cwd.c");
}

/// Each thread's own I/O priority comes back (the main thread idle, a
/// worker best-effort 4), and its memory-failure kill policy (early,
/// late). Before, every thread got the main thread's I/O priority, and
/// the kill policy was lost.
#[test]
fn each_threads_io_priority_comes_back() {
    cycle_c("ioprio", "restart_ioprio.c");
}

#[test]
fn file_locks_are_taken_again() {
    cycle_c("locks", "restart_locks.c");
}

#[test]
fn memory_kept_out_of_forks_is_stored_and_advised_again() {
    cycle_c("forkadvice", "restart_fork_advice.c");
}

/// Advice the kernel keeps on a mapping (MADV_DONTDUMP, MADV_HUGEPAGE,
/// MADV_NOHUGEPAGE, MADV_SEQUENTIAL, MADV_RANDOM) is given again after a
/// restart, and a range locked on fault stays locked on fault (only its
/// touched page locked). Before, the advice was dropped in silence and
/// the whole range locked at once.
#[test]
fn memory_advice_and_lock_on_fault_come_back() {
    cycle_c("advice", "restart_advice.c");
}

/// The same advice given by raw system calls: the writer child lacks the
/// DONTFORK region, which the checkpoint notices and forks again.
#[test]
fn memory_kept_out_of_forks_by_raw_syscalls_is_stored_too() {
    cycle_c_with(
        "rawadvice",
        "restart_fork_advice.c",
        &["raw"],
        Duration::ZERO,
    );
}

/// Enough memory (72 MiB) that the restorer copies it with two threads:
/// every byte must come back.
#[test]
fn large_memory_comes_back_byte_for_byte() {
    cycle_c("bigmem", "restart_bigmem.c");
}

/// Three seconds pass between the kill and the restart: the monotonic
/// and boot clocks go on from where the program saw them.
#[test]
fn monotonic_clocks_go_on_from_the_checkpoint() {
    cycle_c_with("clock", "restart_clock.c", &[], Duration::from_secs(3));
}

/// CPU time goes on from what the program had used: every way to ask
/// (clock_gettime of the process, thread and pthread/pid CPU clocks,
/// clock(), times(), getrusage of the process, a thread and reaped
/// children) only goes up and grows by what was burned, and absolute
/// deadlines on the process's CPU clock come when due. Before, all of them
/// counted again from zero after a restart.
#[test]
fn cpu_time_goes_on_from_the_checkpoint() {
    cycle_c("cputime", "restart_cputime.c");
}

/// RLIMIT_CPU counts from the program's CPU time, not the restarted
/// process's: SIGXCPU comes when the program reaches its soft limit, the
/// limits read back as the program set them, and setting them again
/// keeps that. Before, the signal came a second (the CPU time used before
/// the checkpoint) late.
#[test]
fn the_cpu_time_limit_counts_the_time_used_before_the_checkpoint() {
    cycle_c("cpulimit", "restart_cpulimit.c");
}

/// getppid goes on naming the parent the program had: after a restart
/// its parent is outside the restart's pid namespace, where the kernel
/// answers 0 (a watchdog comparing it with the pid it noted exits).
#[test]
fn the_parent_pid_stays_the_one_the_program_had() {
    cycle_c("ppid", "restart_ppid.c");
}

/// A GS base the program set itself (arch_prctl ARCH_SET_GS) stays set:
/// before, the restarted program's first %gs access crashed it.
#[test]
fn a_gs_base_the_program_set_comes_back() {
    cycle_c("gsbase", "restart_gs_base.c");
}

/// A program that made a session of its own (setsid: a daemon leaving
/// its terminal) leads it again after a restart, and its process group.
#[test]
fn a_session_the_program_made_comes_back() {
    cycle_c("session", "restart_session.c");
}

/// SIGRTMAX-2 is a JVM's signal for interrupting blocking I/O, and was
/// ckpt's by default: the program's handler was refused, and every Java
/// file read failed under ckpt. Now the program installs it, reads it
/// back, and its pthread_kill interrupts a blocked read(), before and
/// after a restart.
#[test]
fn the_programs_own_use_of_ckpts_signal_works() {
    cycle_c("rtmax2", "restart_rtmax2.c");
}

#[test]
fn locked_memory_is_locked_again() {
    cycle_c("mlock", "restart_mlock.c");
}

/// A UTS namespace the program made its own comes back, with its host
/// and domain names. Before, the restarted program had the host's names.
#[test]
fn a_uts_namespace_of_the_programs_own_comes_back() {
    cycle_c("uts", "restart_uts.c");
}

#[test]
fn prctl_attributes_come_back() {
    cycle_c("prctl", "restart_prctl.c");
}

/// What a descriptor or a thread holds that reads and writes never show:
/// an eventfd's semaphore mode, who an open file signals on I/O (a
/// process with F_SETSIG, a thread), a lease, each thread's timer slack
/// and parent-death signal. Each was lost without a word before.
#[test]
fn signal_driven_io_leases_and_eventfd_modes_come_back() {
    cycle_c("fd-signals", "restart_fd_signals.c");
}

/// A directory watched with fcntl(F_NOTIFY) is watched again (ckpt's
/// fcntl wrapper records it: the kernel shows it nowhere); one whose
/// descriptor was closed is not. Before, the watch was lost silently.
#[test]
fn a_directory_watched_with_dnotify_is_watched_again() {
    cycle_c("dnotify", "restart_dnotify.c");
}

#[test]
fn thread_affinity_and_nice_come_back() {
    cycle_c("sched", "restart_sched.c");
}

#[test]
fn thread_ids_pid_and_mutex_owners_are_kept() {
    cycle_c("tids", "restart_tids.c");
}

/// The crash-recovery flow: periodic checkpoints (`--interval`), SIGKILL
/// at an arbitrary moment, `ckpt restart DIR` takes the newest image.
#[test]
fn periodic_checkpoints_then_restart_of_the_directory() {
    let area = Area::new("periodic");
    let dir = common::TempDir::new("periodic-bin");
    let prog = common::compile_c("restart_counter.c", dir.path());
    let ctl = area.sub("ctl");
    let ctl = ctl.to_string_lossy().into_owned();
    // 150 lines, 20 ms apart: about 3 s.
    let args = [ctl.as_str(), "150", "20"];
    let want = reference_output(&area, &prog, &args);
    let out = area.file("out");
    let mut cmd = std::process::Command::new(common::ckpt_bin());
    cmd.arg("run")
        .arg("--dir")
        .arg(&area.images)
        .args(["--interval", "0.2", "--"])
        .arg(&prog)
        .args(args)
        .current_dir(area.path());
    let mut kid = start(
        cmd,
        Out::File(&out),
        &area.file("err"),
        "ckpt run --interval",
    );
    let has_image = || {
        std::fs::read_dir(&area.images)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".img"))
            })
            .unwrap_or(false)
    };
    wait_file(
        &mut kid,
        &out,
        |d| d.len() > want.len() / 2 && has_image(),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    restart_and_compare(
        restart_cmd(&area.images, &[], area.path()),
        &out,
        &want,
        &area,
    );
}

/// Unprivileged: as `nobody` the restart goes through a user namespace
/// (the user mapped to itself) around the pid namespace; the program keeps
/// its pid and comes back without any capability.
#[test]
fn unprivileged_restart_through_a_user_namespace() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if common::not_root("to act as nobody") {
        return;
    }
    let area = Area::new("nobody");
    let open_up = |p: &Path| {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777));
    };
    open_up(area.path());
    std::fs::create_dir_all(&area.images).unwrap();
    open_up(&area.images);
    let bin = area.sub("bin");
    open_up(&bin);
    let prog = common::compile_c("restart_counter.c", &bin);
    let ctl = area.sub("ctl");
    open_up(&ctl);
    let ctl = ctl.to_string_lossy().into_owned();
    let args = [ctl.as_str(), "150", "20"];
    let want = reference_output(&area, &prog, &args);
    let as_nobody = |mut c: std::process::Command| {
        c.uid(65534).gid(65534).env_remove("CKPT_RUNTIME_DIR");
        c
    };
    // Can `nobody` run the program and ckpt from where they are built?
    let mut probe = as_nobody(plain_cmd(&prog, &[ctl.as_str(), "1", "0"], area.path()));
    let mut probe_ckpt = as_nobody(std::process::Command::new(common::ckpt_bin()));
    probe_ckpt.arg("--version");
    let runs = |c: &mut std::process::Command| c.output().is_ok_and(|o| o.status.success());
    if !runs(&mut probe) || !runs(&mut probe_ckpt) {
        eprintln!(
            "skipped: `nobody` cannot run programs from {}",
            area.path().display()
        );
        return;
    }
    let out = area.file("out");
    std::fs::write(&out, b"").unwrap();
    open_up(&out);
    let err = area.file("err");
    std::fs::write(&err, b"").unwrap();
    open_up(&err);
    let mut kid = start(
        as_nobody(run_cmd(&prog, &args, area.path(), &area.images)),
        Out::File(&out),
        &err,
        "ckpt run (nobody)",
    );
    wait_file(
        &mut kid,
        &out,
        |d| d.len() > want.len() / 3,
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut ck = as_nobody(std::process::Command::new(common::ckpt_bin()));
    ck.arg("checkpoint")
        .arg(kid.pid().to_string())
        .arg("--dir")
        .arg(&area.images);
    let r = ck.output().expect("ckpt checkpoint runs");
    assert!(
        r.status.success(),
        "checkpoint as nobody: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let image = PathBuf::from(String::from_utf8_lossy(&r.stdout).trim());
    kid.kill();
    let warnings = restart_and_compare(
        as_nobody(restart_cmd(&image, &[], area.path())),
        &out,
        &want,
        &area,
    );
    assert!(
        !warnings.contains("without a pid namespace"),
        "the restart fell back: {warnings}"
    );
}

/// A TCP server: its listening socket listens again at the same port
/// after the restart, and it goes on counting connections.
#[test]
fn tcp_server_listens_again_after_restart() {
    use std::io::{Read, Write};
    let area = Area::new("server");
    let dir = common::TempDir::new("server-bin");
    let prog = common::compile_c("restart_server.c", dir.path());
    let ctl = area.sub("ctl");
    let ctl_arg = ctl.to_string_lossy().into_owned();
    let out = area.file("out");
    let mut kid = start(
        run_cmd(&prog, &[ctl_arg.as_str()], area.path(), &area.images),
        Out::File(&out),
        &area.file("err"),
        "server under ckpt",
    );
    let port_file = ctl.join("port");
    wait_file(
        &mut kid,
        &port_file,
        |d| !d.is_empty(),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let port: u16 = std::fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .trim_start_matches("port=")
        .parse()
        .unwrap();
    let ask = |line: &str| -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    assert_eq!(ask("one"), "reply 1 to one\n");
    assert_eq!(ask("two"), "reply 2 to two\n");
    let image = checkpoint_and_kill(&mut kid, &area.images);
    let rerr = area.file("restart.err");
    let mut r = start(
        restart_cmd(&image, &[], area.path()),
        Out::Null,
        &rerr,
        "restart",
    );
    // The restarted server listens again at once (the kernel queues
    // connections that come before it accepts).
    let mut answer = String::new();
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.write_all(b"three\n").unwrap();
            s.read_to_string(&mut answer).unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        answer,
        "reply 3 to three\n",
        "restart: {}\nserver output: {}",
        std::fs::read_to_string(&rerr).unwrap_or_default(),
        std::fs::read_to_string(&out).unwrap_or_default()
    );
    assert_eq!(ask("quit"), "reply 4 to quit\n");
    let st = r.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(st.success(), "{}", r.describe());
    let served = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        served,
        "served 1: one\nserved 2: two\nserved 3: three\nserved 4: quit\n"
    );
}

#[test]
fn signals_queued_to_one_thread_come_back_each_with_its_value() {
    cycle_c("thread-signals", "restart_thread_signals.c");
}

#[test]
fn memfds_and_unlinked_files_keep_mode_owner_and_seals() {
    cycle_c("unnamed-attrs", "restart_unnamed_attrs.c");
}

/// Edge-triggered watches keep their edges: one the program took before
/// the checkpoint does not come again (re-adding a watch on a ready file
/// queued it anew), one it had not taken yet still comes, and a fired
/// one-shot stays disarmed until the program arms it.
#[test]
fn edge_triggered_epoll_watches_keep_their_edges() {
    cycle_c("epoll-edges", "restart_epoll_edges.c");
}

#[test]
fn an_epoll_watch_follows_its_file_when_its_number_was_closed_and_reused() {
    cycle_c("epoll-moved", "restart_epoll_moved.c");
}

/// Issue "Nothing comes back silently wrong": one program holding many
/// kinds of state at once comes back with every one intact.
#[test]
fn a_program_holding_many_kinds_of_state_at_once_comes_back_whole() {
    // Checkpointed once: a zero-length datagram peeked once (by a first
    // checkpoint) is skipped by every later MSG_PEEK (the kernel's
    // skb->peeked rule), so a second checkpoint loses it. A known loss,
    // named in issue 9; the other tests restart from two checkpoints.
    let dir = common::TempDir::new("everything-bin");
    let prog = common::compile_c("restart_everything.c", dir.path());
    cycle_n("everything", &prog, &[], "step 19", Duration::ZERO, 1);
}

/// A small file the program maps shared and that is gone at restart (a
/// JVM's hsperfdata, deleted at exit or with /tmp at a reboot) is made
/// again from the image, and the program goes on with its counters:
/// with its directory gone too, or only the file (made again in the same
/// directory, it often gets the removed file's inode number, and was
/// then refused as "replaced by another file": born after the checkpoint).
/// The program and a child holding descriptors of the file too (as
/// Python's SharedMemory in a pool), the file made again is the one they
/// open, and
/// nothing else is said: before, each descriptor was said "replaced by
/// another file since the checkpoint; its contents then are not in the
/// image (too large)" and the file "put back" (it had just been made).
#[test]
fn a_small_shared_mapped_file_that_is_gone_is_made_again() {
    let bin = common::TempDir::new("perfdata-bin");
    let prog = common::compile_c("restart_perfdata.c", bin.path());
    for (only_file, open_fds) in [(false, false), (true, false), (true, true)] {
        let area = Area::new(match (only_file, open_fds) {
            (false, _) => "perfdata",
            (true, false) => "perfdata-file",
            (true, true) => "perfdata-fds",
        });
        // On tmpfs (as /dev/shm is), where a file made again never has the
        // removed one's inode number.
        let shm = common::TempDir::new_in(Path::new("/dev/shm"), "perfdata-fds");
        let dir = if open_fds {
            shm.path().join("hsperfdata_user")
        } else {
            area.sub("hsperfdata_user")
        };
        let _ = std::fs::remove_dir_all(&dir);
        let mut args = vec![dir.to_string_lossy().into_owned()];
        if open_fds {
            args.push("keep-fd".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let want = reference_output(&area, &prog, &args);
        std::fs::remove_dir_all(&dir).unwrap();
        let out = area.file("out");
        let mut kid = rs::start_until(
            run_cmd(&prog, &args, area.path(), &area.images),
            &out,
            &area.file("err"),
            "under ckpt",
            "step 19",
        );
        let image = checkpoint_and_kill(&mut kid, &area.images);
        if only_file {
            for f in std::fs::read_dir(&dir).unwrap() {
                std::fs::remove_file(f.unwrap().path()).unwrap();
            }
        } else {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        let said = restart_and_compare(restart_cmd(&image, &[], area.path()), &out, &want, &area);
        assert!(said.contains("made again from the image"), "{said}");
        assert!(!said.contains("in its place"), "said twice: {said}");
        let perf = said
            .lines()
            .filter(|l| l.contains("hsperfdata_user"))
            .count();
        assert_eq!(perf, 1, "said more than that it was made again: {said}");
    }
}

/// A thread's own working directory and umask (unshare(CLONE_FS)) and,
/// as root, its own uids and gids (raw setresuid/setresgid: that thread
/// alone) come back on that thread; the main thread keeps the process's.
/// Before, the restarted thread had the process's.
#[test]
fn a_threads_own_directory_umask_and_identity_come_back() {
    cycle_c_with("thread-own", "restart_thread_own.c", &[], Duration::ZERO);
}

/// CPUID faulting (arch_prctl ARCH_SET_CPUID) comes back on in the thread
/// that had it and stays off in the other: the main thread's cpuid
/// instructions go on raising SIGSEGV. Before, it came back off,
/// silently.
#[test]
fn cpuid_faulting_comes_back_per_thread() {
    cycle_c("cpuid-faulting", "restart_cpuid_faulting.c");
}
