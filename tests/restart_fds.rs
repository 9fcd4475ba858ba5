//! Descriptors whose state lives only in the kernel, across a restart:
//! timerfds that fired unread, namespace descriptors, socket pairs, pipes
//! whose other end is closed or whose numbers were reused, named FIFOs
//! (with bytes, or unlinked), datagram and seqpacket pairs with queued
//! messages. Each program is checkpointed mid-loop, killed, restarted, and
//! must print exactly what an uninterrupted run prints; what the checkpoint
//! and the restart warn about is checked too.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{restart_and_compare, restart_cmd, run_cmd, start_until, Area};
use std::path::PathBuf;

/// What `ckpt checkpoint` and `ckpt restart` said on stderr.
struct Said {
    checkpoint: String,
    restart: String,
}

impl Said {
    /// The restart's warning lines only (not, say, a cut-back notice that
    /// names a file whose path holds any word).
    fn restart_warnings(&self) -> String {
        self.restart
            .lines()
            .filter(|l| l.contains("warning:"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Compile tests/programs/`src`, run it plainly for the reference, run it
/// under ckpt, checkpoint it once it printed "step 19", kill it, restart
/// it and compare its whole output with the reference.
fn cycle_c(tag: &str, src: &str) -> Said {
    cycle_c_with(tag, src, &[], &|| {})
}

/// As [`cycle_c`], the program given `args`; `before_restart` runs once
/// it is killed.
fn cycle_c_with(tag: &str, src: &str, args: &[&str], before_restart: &dyn Fn()) -> Said {
    cycle_c_n(tag, src, args, 1, before_restart)
}

/// As [`cycle_c_with`], checkpointed `n` times in a row (the restart is
/// from the last image; `Said::checkpoint` is the last one's stderr).
fn cycle_c_n(tag: &str, src: &str, args: &[&str], n: usize, before_restart: &dyn Fn()) -> Said {
    cycle(tag, src, args, n, before_restart, &|_| false)
}

/// As [`cycle_c_n`]; a checkpoint whose stderr `retake` rejects (taken at
/// an instant the test does not mean to test) is taken again, up to ten
/// times.
fn cycle(
    tag: &str,
    src: &str,
    args: &[&str],
    n: usize,
    before_restart: &dyn Fn(),
    retake: &dyn Fn(&str) -> bool,
) -> Said {
    let c = rs::Compiled::new(tag, src, args);
    let mut kid = c.run_until(args, "step 19");
    let (area, want, out) = (c.area, c.want, c.out);
    let pid = kid.pid();
    let take = || {
        let r = checkpoint_said(&area, pid);
        assert!(
            r.status.success(),
            "checkpoint failed: {}\n{}",
            r.stderr,
            kid.describe()
        );
        r
    };
    let mut r = take();
    for _ in 1..n {
        r = take();
    }
    for _ in 0..10 {
        if !retake(&r.stderr) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(7));
        r = take();
    }
    let image = PathBuf::from(r.stdout.trim());
    kid.kill();
    before_restart();
    let restart = restart_and_compare(restart_cmd(&image, &[], area.path()), &out, &want, &area);
    eprintln!(
        "{tag}: checkpoint said: {}\n{tag}: restart said: {restart}",
        r.stderr
    );
    Said {
        checkpoint: r.stderr,
        restart,
    }
}

/// The multicast program restarted, checkpointed again while it runs,
/// killed and restarted again: the sender that named its interface by
/// index still sends there. Before, the restarted socket (a new one) was
/// not kept, and after the second restart its datagrams went out by the
/// default route, unheard.
#[test]
fn a_multicast_interface_named_by_index_survives_a_second_restart() {
    let none: &[&str] = &[];
    let c = rs::Compiled::new("mcagain", "restart_multicast.c", none);
    let mut kid = c.run_until(none, "step 19");
    let rs::Compiled {
        area,
        prog,
        want,
        out,
        ..
    } = &c;
    let first = checkpoint_said(area, kid.pid());
    assert!(first.status.success(), "checkpoint: {}", first.stderr);
    kid.kill();
    // The program writes on into `out`, reopened at its offset.
    let mut again = rs::start(
        restart_cmd(&PathBuf::from(first.stdout.trim()), &[], area.path()),
        rs::Out::Null,
        &area.file("restart1.err"),
        "ckpt restart",
    );
    rs::wait_file(
        &mut again,
        out,
        |d| String::from_utf8_lossy(d).contains("step 29"),
        std::time::Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let second = checkpoint_said(area, again.pid());
    assert!(
        second.status.success(),
        "checkpoint after restart: {}",
        second.stderr
    );
    again.kill();
    // Its program goes with it, but not at once: until then it holds the
    // port the next restart binds again.
    let gone = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < gone && runs(prog) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let image = PathBuf::from(second.stdout.trim());
    restart_and_compare(restart_cmd(&image, &[], area.path()), out, want, area);
}

/// Whether a process runs the program at `path`.
fn runs(path: &std::path::Path) -> bool {
    std::fs::read_dir("/proc").is_ok_and(|d| {
        d.flatten()
            .any(|e| std::fs::read_link(e.path().join("exe")).is_ok_and(|x| x == path))
    })
}

/// A TCP connection half closed before the checkpoint (the client shut
/// its sending side down): after the restart the server still reads the
/// request, then end of file, and answers. Before, the rebuilt connection
/// lacked the FIN and the server's read waited forever.
#[test]
fn a_half_closed_tcp_connection_stays_half_closed() {
    cycle_c("halfclose", "restart_halfclose.c");
}

/// Netlink sockets come back bound to their port id and multicast
/// groups (past 32 too) with their options, and one never bound stays
/// unbound: link dumps after the restart are answered to the port id the
/// program kept. Before, a bound one came back as a connection closed by
/// its peer (EPIPE; SIGPIPE killed a program that did not ignore it).
#[test]
fn netlink_sockets_come_back_bound_to_their_port_and_groups() {
    let said = cycle_c("netlink", "restart_netlink.c");
    assert!(
        !said.checkpoint.contains("descriptor") && !said.restart.contains("descriptor"),
        "a netlink socket was said lost: {}\n{}",
        said.checkpoint,
        said.restart
    );
}

/// A program that called glibc's closefrom() (OpenSSH, sudo, daemons)
/// is checkpointed and restarted with its own descriptors as they were.
/// Before, closefrom closed ckpt's control socket, and the checkpoint
/// said the program was not run under ckpt.
/// A directory read part way with readdir (3000 entries, several
/// getdents calls) goes on after a restart from where it was: each entry
/// read once. Before, the restart opened it at its start and the program
/// read hundreds of entries again.
#[test]
fn a_directory_read_part_way_goes_on_where_it_was() {
    let said = cycle_c("readdir", "restart_readdir.c");
    assert!(!said.restart.contains("directory"), "{}", said.restart);
}

/// Socket options beyond the common ones (TCP segment size, deferred
/// accept, fast open, cork, congestion control; UDP packet info, error
/// queue, MTU discovery, free bind, multicast TTL and loop; a pair's peek
/// offset) and a classic BPF filter, locked, come back on the sockets a
/// restart makes again. Before, all came back at their defaults: the
/// filter let datagrams through and a peek read the same bytes again.
#[test]
fn socket_options_and_filters_come_back() {
    let said = cycle_c("sockfilter", "restart_sockopt_filter.c");
    assert!(!said.restart.contains("option"), "{}", said.restart);
}

#[test]
fn a_program_that_called_closefrom_is_checkpointed() {
    cycle_c("closefrom", "restart_closefrom.c");
}

/// Names that are not UTF-8 (a Latin-1 directory, file and memfd name)
/// come back as the same bytes. Before, they were read lossily: the
/// restart made a new file under the mangled name and wrote there, the
/// program's file untouched (said only as "made again ... it was gone"),
/// and a mapping of such a file failed the checkpoint.
#[test]
fn names_that_are_not_utf8_come_back_exactly() {
    let said = cycle_c("names", "restart_names.c");
    assert!(!said.restart.contains("made again"), "{}", said.restart);
}

/// `ckpt checkpoint PID --dir IMAGES` of the area: its status, stdout
/// (the image) and stderr (what it said).
fn checkpoint_said(area: &Area, pid: i32) -> common::CmdOut {
    let mut c = common::ckpt_cmd(
        area.path(),
        [
            "checkpoint".to_string(),
            pid.to_string(),
            "--dir".to_string(),
            area.images.to_string_lossy().into_owned(),
        ],
    );
    common::run_cmd(&mut c, common::CHECKPOINT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// A periodic timerfd that fired and was not read is due, armed with its
/// interval, and its unread expirations are still there; so are a fired
/// one-shot's, and a fast timer keeps counting on top of what it had.
#[test]
fn fired_unread_timerfds_stay_armed_with_their_expirations() {
    let said = cycle_c("timerfd", "restart_timerfd.c");
    assert!(
        !said.checkpoint.contains("warning"),
        "checkpoint warned: {}",
        said.checkpoint
    );
    assert!(
        !said.restart_warnings().contains("timerfd"),
        "restart warned about a timerfd: {}",
        said.restart
    );
}

/// Descriptors of /proc/self/ns/* files come back as the restarted
/// process's own namespaces of the same kinds, never failing the restart.
#[test]
fn namespace_descriptors_come_back_as_own_namespaces() {
    let said = cycle_c("nsfd", "restart_nsfd.c");
    assert!(
        !said.restart.contains("cannot be restored"),
        "a namespace descriptor did not come back: {}",
        said.restart
    );
}

/// Socket pairs the program holds both ends of come back connected with
/// their bytes, found by the kernel's pairing (not by the numbers
/// socketpair() returned), and nobody calls them connections to another
/// process; so does a connection it made to a socket it listens on and
/// accepted itself (before: both ends came back closed).
#[test]
fn own_socket_pairs_come_back_without_false_warnings() {
    let said = cycle_c("sockpair", "restart_socketpair.c");
    for (who, text) in [("checkpoint", &said.checkpoint), ("restart", &said.restart)] {
        assert!(
            !text.contains("connection"),
            "{who} called a socket pair a connection: {text}"
        );
    }
    assert!(
        said.restart.contains("carried descriptors"),
        "restart did not say that a queued descriptor is lost: {}",
        said.restart
    );
}

/// A second descriptor of an unlinked file (a dup) comes back with the
/// first, so the checkpoint does not say it cannot (it said "/dev/null
/// takes its place", falsely).
#[test]
fn a_dup_of_an_unlinked_file_is_not_called_lost() {
    let said = cycle_c("unlinked-dup", "restart_shared.c");
    assert!(
        !said.checkpoint.contains("cannot come back"),
        "checkpoint: {}",
        said.checkpoint
    );
}

/// Pipes are paired by inode: a read end whose writer was closed comes
/// back with its bytes then end of file, a write end whose reader was
/// closed gives EPIPE, reused numbers do not cross-wire two pipes, and a
/// second open file of a pipe keeps its own flags.
#[test]
fn pipes_are_paired_by_inode_not_by_number() {
    let said = cycle_c("pipes", "restart_pipes.c");
    for (who, text) in [("checkpoint", &said.checkpoint), ("restart", &said.restart)] {
        assert!(!text.contains("pipe:"), "{who} warned about a pipe: {text}");
    }
}

/// A file whose own name ends in " (deleted)" is not a removed file: it
/// is opened again by its name, and what the program writes after the
/// restart reaches it.
#[test]
fn a_file_named_as_if_deleted_is_opened_again_by_its_name() {
    cycle_c("deleted-name", "restart_deleted_name.c");
}

/// Files of the process's own /proc held open (its status, its stat by
/// pid, its task directory) read the restarted process after a restart;
/// before, the restart refused: the killed process's /proc was gone.
#[test]
fn descriptors_of_the_process_own_proc_read_the_restarted_process() {
    cycle_c("procfd", "restart_procfd.c");
}

/// A named FIFO keeps the bytes it held; one whose path was unlinked
/// comes back (as a pipe) with its bytes and its ends connected.
#[test]
fn fifos_keep_their_bytes_even_unlinked() {
    let said = cycle_c("fifo", "restart_fifo.c");
    assert!(
        !said.restart.contains("cannot be restored"),
        "a FIFO did not come back: {}",
        said.restart
    );
}

/// Datagram and seqpacket socket pairs: every queued message comes back,
/// in order, with its boundary (an empty one too).
#[test]
fn every_queued_message_of_a_datagram_pair_comes_back() {
    let said = cycle_c("dgram", "restart_dgram.c");
    assert!(
        !said.restart_warnings().contains("socket"),
        "restart warned about a socket: {}",
        said.restart
    );
}

/// The same after two checkpoints in a row: the kernel hides an empty
/// message from every peek once one peek has seen it, so the second
/// checkpoint found nothing where the first had found it (and the
/// restarted program lost it silently). ckpt now puts such a queue back
/// fresh after reading it.
#[test]
fn empty_datagrams_survive_a_second_checkpoint() {
    let said = cycle_c_n("dgram2", "restart_dgram.c", &[], 2, &|| {});
    assert!(
        !said.restart_warnings().contains("socket"),
        "restart warned about a socket: {}",
        said.restart
    );
}

/// Socket-pair ends shut down before the checkpoint are shut down again
/// after their unread data: a reader gets its bytes then end of file
/// (before, it waited forever), a write to a shut side fails with EPIPE.
/// An empty datagram the checkpoint cannot queue again fresh (its sender
/// is shut down) is saved, and the checkpoint says a later one would not
/// see it.
#[test]
fn shut_down_socket_ends_come_back_shut_down() {
    let said = cycle_c("shutdown", "restart_shutdown.c");
    let empty: Vec<&str> = said
        .checkpoint
        .lines()
        .filter(|l| l.contains("empty message"))
        .collect();
    assert_eq!(empty.len(), 1, "{}", said.checkpoint);
    assert!(
        !said.restart_warnings().contains("socket") && !said.restart_warnings().contains("shut"),
        "restart warned: {}",
        said.restart
    );
}

/// POSIX message queues: a named one opened twice, and one unlinked but
/// held open, each with its attributes and every message in receive
/// order. Before, a queue was taken for a file at /NAME: the restart
/// refused ("needs /NAME, which is gone"), its messages unsaved. A
/// notification registered on a queue cannot come back: said, once.
#[test]
fn message_queues_come_back_with_every_message() {
    let said = cycle_c("mqueue", "restart_mqueue.c");
    // The queue still named is said to be the restart's own (a process
    // outside the job opening that name reaches another); the unlinked
    // ones are not.
    let (outside, warned): (Vec<&str>, Vec<&str>) = said
        .checkpoint
        .lines()
        .filter(|l| l.contains("warning"))
        .partition(|l| l.contains("outside the job"));
    assert!(
        warned.len() == 1 && warned[0].contains("mq_notify"),
        "{}",
        said.checkpoint
    );
    assert!(
        outside.len() == 1 && outside[0].contains("queue /ckpt-test-mq comes back"),
        "{}",
        said.checkpoint
    );
    assert!(
        !said.restart_warnings().contains("queue"),
        "{}",
        said.restart
    );
}

/// inotify events queued unread cannot be saved (a read takes them): the
/// checkpoint says so, naming the descriptor (before: silent).
#[test]
fn unread_inotify_events_are_said_at_checkpoint() {
    let (said, all) = checkpoint_lines("inotify-unread", "inotify_unread.c", "inotify");
    assert!(said.len() == 1 && said[0].contains("not read"), "{all}");
}

/// Run C program `src` (tagged `tag`) under ckpt until its step 19,
/// checkpoint it, kill it: the checkpoint's stderr lines that mention
/// `word`, and its whole stderr.
fn checkpoint_lines(tag: &str, src: &str, word: &str) -> (Vec<String>, String) {
    checkpoint_lines_with(tag, src, &[], word)
}

/// As [`checkpoint_lines`], the program given `args`.
fn checkpoint_lines_with(tag: &str, src: &str, args: &[&str], word: &str) -> (Vec<String>, String) {
    let area = Area::new(tag);
    let dir = common::TempDir::new(&format!("{tag}-bin"));
    let prog = common::compile_c(src, dir.path());
    let mut kid = start_until(
        run_cmd(&prog, args, area.path(), &area.images),
        &area.file("out"),
        &area.file("err"),
        "under ckpt",
        "step 19",
    );
    let r = checkpoint_said(&area, kid.pid());
    kid.kill();
    assert!(r.status.success(), "{}", r.stderr);
    let said = r
        .stderr
        .lines()
        .filter(|l| l.contains(word))
        .map(str::to_string)
        .collect();
    (said, r.stderr)
}

/// A periodic POSIX timer whose signal is pending at the checkpoint is
/// named (its signal can come twice: the checkpoint takes it to read it
/// and puts a copy back, and the timer queues its own at its next
/// expiry); a one-shot timer's pending signal is not. Before, nothing
/// was said (sweep C F8).
#[test]
fn a_periodic_timers_pending_signal_is_said_at_checkpoint() {
    let (said, all) = checkpoint_lines("timer-pending", "timer_signal_pending.c", "POSIX timer");
    assert!(
        said.len() == 1 && said[0].contains("(signal 35)") && said[0].contains("twice"),
        "{all}"
    );
}

/// A TCP connection whose two ends the process holds itself (a server
/// and its own client on 127.0.0.1) comes back connected between the same
/// addresses, with the line its server had not read yet and its options
/// (TCP_NODELAY), and the listener still takes new clients, sharing its
/// port with the connection. Before, both ends came back closed by their
/// peer and the checkpoint called it "a connection to another process".
#[test]
fn a_tcp_connection_to_itself_comes_back_connected() {
    quiet(&cycle_c("tcp-self", "tcp_self.c"), "TCP connection");
}

/// Neither the checkpoint said `word` nor the restart warned about a
/// descriptor.
fn quiet(said: &Said, word: &str) {
    assert!(
        !said.checkpoint.contains(word),
        "the checkpoint said: {}",
        said.checkpoint
    );
    assert!(
        !said.restart_warnings().contains("descriptor"),
        "the restart said: {}",
        said.restart
    );
}

/// Unix sockets keep their names: datagram ends bound to paths and
/// connected to each other (recvfrom's source, getsockname, getpeername),
/// a stream connection accepted on a listener's path from a client bound
/// to its own, the listener file's mode, a listener whose path the
/// program removed (removed again). Before, connected pairs came back as
/// an unnamed socketpair, without a word.
#[test]
fn unix_sockets_keep_their_names() {
    quiet(&cycle_c("unix-names", "unix_names.c"), "descriptor");
}

/// A UDP socket connected to its destination (as DNS resolvers and
/// statsd clients make them) comes back connected to it, its own port
/// kept, and the conversation goes on. Before, it came back as a stand-in
/// "closed by its peer" (said at checkpoint and restart) and the program
/// failed at its next send.
#[test]
fn a_connected_udp_socket_comes_back_connected() {
    quiet(&cycle_c("udp-conn", "udp_connected.c"), "descriptor");
}

/// A descriptor in flight (sent with SCM_RIGHTS, not received yet) cannot
/// be saved: the checkpoint says so, naming the socket (before, only the
/// restart did, once it was too late).
#[test]
fn descriptors_in_flight_are_said_at_checkpoint() {
    let (said, all) = checkpoint_lines("scm-inflight", "scm_inflight.c", "SCM_RIGHTS");
    assert!(
        said.len() == 1 && said[0].contains("descriptor 4 ") && said[0].contains("1 unread"),
        "{all}"
    );
}

/// A one-shot dnotify watch may have fired (the kernel then drops it and
/// says so nowhere): the checkpoint says that a restart watches the
/// directory again; a multishot watch comes back exactly and is not named.
#[test]
fn one_shot_dnotify_watches_are_said_at_checkpoint() {
    let (said, all) = checkpoint_lines("dnotify-oneshot", "dnotify_oneshot.c", "dnotify");
    assert!(
        said.len() == 1 && said[0].contains("/once") && said[0].contains("one-shot"),
        "{all}"
    );
}

/// Datagrams waiting on a bound datagram socket and connections waiting
/// on a listening one are not in the image (a restart makes the socket
/// again, empty): the checkpoint names each such socket, and not one with
/// nothing waiting.
#[test]
fn what_waits_on_a_remade_socket_is_said_at_checkpoint() {
    let (said, all) = checkpoint_lines("sockets-waiting", "sockets_waiting.c", "waiting");
    assert_eq!(said.len(), 2, "{all}");
    assert!(
        said.iter()
            .any(|l| l.contains("datagrams waiting to be read"))
            && said
                .iter()
                .any(|l| l.contains("connections waiting to be accepted")),
        "{all}"
    );
}

/// Kinds ckpt does not restore (or has not met) are never silent: each is
/// named at checkpoint and at restart, and comes back as /dev/null; a
/// mapping of such an object (an io_uring's ring) comes back as plain
/// memory with its bytes, said at both too.
#[test]
fn unknown_kinds_of_descriptor_are_warned_about() {
    let said = cycle_c("unknown-fd", "restart_unknown_fd.c");
    // struct io_uring_params, zeroed.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup into a local, zeroed parameter block.
    let ring = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4, params.as_mut_ptr()) };
    let mut named = vec!["descriptor 40", "descriptor 41"];
    if ring >= 0 {
        // SAFETY: closing the ring just made.
        unsafe { libc::close(ring as i32) };
        named.push("descriptor 42");
        named.push("(anon_inode:[io_uring]) comes back with its contents as plain memory");
    }
    for what in named {
        assert!(
            said.checkpoint.contains(what),
            "checkpoint silent about {what}: {}",
            said.checkpoint
        );
        assert!(
            said.restart.contains(what),
            "restart silent about {what}: {}",
            said.restart
        );
    }
}

/// System V semaphore sets, message queues and shared memory segments
/// live in the kernel: saved at the checkpoint (values; messages copied,
/// not taken; the segment's pages with the memory) and made again at
/// restart at their very ids, in an IPC namespace of the restarted
/// program's own — same values, same messages in order, same mode, the
/// mapping the segment itself again.
#[test]
fn system_v_objects_come_back_at_their_ids() {
    let ids = std::env::temp_dir().join(format!("ckpt-sysv-ids-{}", std::process::id()));
    let _ = std::fs::remove_file(&ids);
    let ids_arg = ids.to_string_lossy().into_owned();
    // The objects runs left in this namespace: removed once the run under
    // ckpt is killed (so only a restart that makes them again finds them),
    // and at the end.
    let remove_all = || {
        for line in std::fs::read_to_string(&ids).unwrap_or_default().lines() {
            let v: Vec<i32> = line
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if let [sem, msg, shm] = v[..] {
                // SAFETY: removing System V objects by id (gone already: EINVAL).
                unsafe {
                    libc::semctl(sem, 0, libc::IPC_RMID);
                    libc::msgctl(msg, libc::IPC_RMID, std::ptr::null_mut());
                    libc::shmctl(shm, libc::IPC_RMID, std::ptr::null_mut());
                }
            }
        }
    };
    let said = cycle_c_with("sysv", "sysv_ipc.c", &[&ids_arg], &remove_all);
    remove_all();
    let _ = std::fs::remove_file(&ids);
    assert!(
        !said.checkpoint.contains("System V") && !said.restart_warnings().contains("System V"),
        "checkpoint said: {}\nrestart said: {}",
        said.checkpoint,
        said.restart
    );
}

/// A timerfd set for an absolute wall-clock time expires at that time
/// even when the program was down for a while in between (restarted 1.5 s
/// after it was killed): its deadline, not its remaining time, comes back.
#[test]
fn wall_clock_timerfd_keeps_its_deadline_across_downtime() {
    let said = cycle_c_with("tfdwall", "restart_timerfd_wall.c", &[], &|| {
        std::thread::sleep(std::time::Duration::from_millis(1500))
    });
    assert!(
        !said.restart_warnings().contains("timerfd"),
        "restart said: {}",
        said.restart
    );
}

/// Socket options come back: a pair's enlarged buffers (before the bytes
/// it held are put back: more than default buffers take), a listener's
/// TCP_NODELAY, keep-alive settings, smaller receive buffer, SO_LINGER
/// and receive timeout, its SO_MARK, a UDP socket's IPV6_TCLASS. Without
/// them, the pair's bytes no longer fit.
#[test]
fn socket_options_and_buffer_sizes_come_back() {
    let said = cycle_c("sockopts", "restart_sockopts.c");
    let w = said.restart_warnings();
    assert!(!w.contains("socket option"), "an option was lost: {w}");
}

/// Two pseudo-terminal pairs a process holds both ends of come back as
/// pairs: lines written into the master reach the slave and answers come
/// back, through the master and a dup of it, with the settings (echo off,
/// canonical) and window size the program gave them. Bytes nobody read
/// (pair B) cannot be kept: the checkpoint says so. Before, the master
/// came back as a new pair connected to nothing and the slave was opened
/// by its path (the checkpoint said the restart fails).
#[test]
fn a_pseudo_terminal_pair_of_the_process_comes_back() {
    // Bytes of pair A in flight (between a write and its read) at the
    // checkpoint are lost too, and said; a checkpoint taken just then is
    // taken again: that instant is not what this test is about.
    let in_flight = |said: &str| {
        said.lines()
            .any(|l| l.contains("pseudo-terminal") && !l.contains("descriptor 6 "))
    };
    let said = cycle("pty-pair", "restart_pty_pair.c", &[], 1, &|| {}, &in_flight);
    assert!(
        said.checkpoint
            .lines()
            .any(|l| l.contains("descriptor 6 ") && l.contains("7 bytes in its pseudo-terminal")),
        "the checkpoint did not say pair B's unread bytes are lost: {}",
        said.checkpoint
    );
    assert!(
        !said.restart_warnings().contains("/dev/null"),
        "a terminal came back as /dev/null: {}",
        said.restart
    );
}

/// The slave's settings now (TCGETS), or set them (TCSETS).
fn termios(tty: &std::fs::File, set: Option<&libc::termios>) -> libc::termios {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero termios is valid; TCGETS/TCSETS on our own tty.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        match set {
            Some(s) => assert_eq!(libc::tcsetattr(tty.as_raw_fd(), libc::TCSANOW, s), 0),
            None => assert_eq!(libc::tcgetattr(tty.as_raw_fd(), &mut t), 0),
        }
        t
    }
}

/// A program that set its terminal raw (an editor does) finds it raw
/// again after a restart, though the shell had put it back to cooked
/// when the program was killed; and a window size changed meanwhile is
/// told to it with SIGWINCH. Before, the restarted program ran on a
/// cooked terminal (echo, line editing) without a word.
#[test]
fn a_terminal_comes_back_as_the_program_had_set_it() {
    use std::os::fd::AsRawFd;
    use std::process::{Command, Stdio};
    let area = Area::new("tty");
    let dir = common::TempDir::new("tty-bin");
    let prog = common::compile_c("restart_tty.c", dir.path());
    let (master, slave_path) = common::pty();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&slave_path)
        .unwrap();
    let cooked = termios(&slave, None);
    assert_ne!(cooked.c_lflag & libc::ICANON, 0, "a new terminal is cooked");
    let set_size = |rows: u16, cols: u16| {
        let w = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ from a live winsize on our own master.
        assert_eq!(
            unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &w) },
            0
        );
    };
    set_size(24, 80);
    let out = area.file("out");
    let mut run = Command::new(common::ckpt_bin());
    run.args(["run", "--dir"])
        .arg(&area.images)
        .arg("--")
        .arg(&prog)
        .current_dir(area.path())
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::create(area.file("err")).unwrap(),
        ));
    let mut kid = run.spawn().unwrap();
    let pid = kid.id() as i32;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !std::fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("step 19")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the program never got to step 19"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        termios(&slave, None).c_lflag & libc::ICANON,
        0,
        "the program set it raw"
    );
    let image = common::checkpoint(pid, Some(&area.images)).unwrap_or_else(|e| panic!("{e}"));
    kid.kill().unwrap();
    kid.wait().unwrap();
    // As a shell does once its job is gone, and a resize meanwhile.
    termios(&slave, Some(&cooked));
    set_size(40, 120);
    let st = Command::new(common::ckpt_bin())
        .arg("restart")
        .arg(&image)
        .current_dir(area.path())
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(area.file("restart.err")).unwrap(),
        ))
        .status()
        .unwrap();
    let said = std::fs::read_to_string(area.file("restart.err")).unwrap_or_default();
    assert!(st.success(), "restart failed: {said}");
    let got = std::fs::read_to_string(&out).unwrap();
    let tail: Vec<&str> = got.lines().filter(|l| !l.starts_with("step")).collect();
    assert_eq!(
        tail,
        [
            "canonical 0, echo 0, signals 0, output processing 0",
            "resized to 40 rows, 120 columns"
        ],
        "{got}\n{said}"
    );
    drop(master);
}

/// An urgent (out-of-band) byte waiting to be read, on a TCP connection
/// and on a unix stream pair, is said at checkpoint: a restart has
/// neither it nor its mark. Before, nothing was said, and the restarted
/// program lost the TCP stream's bytes after the mark, or read the unix
/// pair's urgent byte in line with the rest.
#[test]
fn urgent_bytes_waiting_to_be_read_are_said_at_checkpoint() {
    let area = Area::new("urgent");
    let dir = common::TempDir::new("urgent-bin");
    let prog = common::compile_c("restart_urgent.c", dir.path());
    let out = area.file("out");
    let mut kid = start_until(
        run_cmd::<&str>(&prog, &[], area.path(), &area.images),
        &out,
        &area.file("err"),
        "under ckpt",
        "step 3\n",
    );
    let r = checkpoint_said(&area, kid.pid());
    kid.kill();
    assert!(r.status.success(), "checkpoint failed: {}", r.stderr);
    let unix = !std::fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("no unix out-of-band data");
    for fd in [5].into_iter().chain(unix.then_some(7)) {
        assert!(
            r.stderr
                .lines()
                .any(|l| l.contains(&format!("descriptor {fd} "))
                    && l.contains("urgent (out-of-band) byte")),
            "descriptor {fd}'s urgent byte not said: {}",
            r.stderr
        );
    }
}

/// A thread with a descriptor table of its own (unshare(CLONE_FILES))
/// gets the process's at a restart: the checkpoint names that thread, and
/// not the one that shares the table.
#[test]
fn a_threads_own_descriptor_table_is_said_at_checkpoint() {
    let (said, all) = checkpoint_lines("thread-files", "thread_own_files.c", "descriptor table");
    assert!(
        said.len() == 1 && said[0].contains("thread 2 ") && said[0].contains("CLONE_FILES"),
        "{all}"
    );
}

/// A packet socket bound to the loopback interface, with its TPACKET
/// version and auxdata options, comes back bound there and sees the
/// program's datagrams. Before, the checkpoint said nothing and the
/// restart failed ("cannot listen where it listened").
#[test]
fn a_packet_socket_comes_back_bound_to_its_interface() {
    if common::not_root("packet sockets") {
        return;
    }
    cycle_c("packet", "restart_packet.c");
}

/// Packet sockets' memberships (promiscuous and all-multicast modes, a
/// link multicast address added twice), each with its count, and a
/// fanout group of two sockets come back: the interface's flags and
/// multicast list, each membership dropped as often as it was added,
/// and the group settings print as in an uninterrupted run. Before, the
/// restarted sockets had none of them, and nothing was said.
#[test]
fn packet_socket_memberships_and_fanout_come_back() {
    if common::not_root("packet sockets") {
        return;
    }
    let _lo = LO_FLAGS.lock().unwrap_or_else(|e| e.into_inner());
    cycle_saying_nothing("packet-members", "restart_packet_members.c");
}

/// Held by the tests whose programs print the loopback interface's
/// flags, which each other's memberships change.
static LO_FLAGS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// [`cycle_c`], and neither the checkpoint nor the restart warns.
fn cycle_saying_nothing(tag: &str, src: &str) {
    let said = cycle_c(tag, src);
    assert!(
        !said.checkpoint.contains("warning") && said.restart_warnings().is_empty(),
        "{}\n{}",
        said.checkpoint,
        said.restart
    );
}

/// A packet socket's memberships set before the program execs itself,
/// the socket kept open across the exec, come back after a checkpoint of
/// the new program (the wrapper's table goes across the exec in the
/// environment, taken out again by the new program's shim). Before, the
/// new program's checkpoint knew of none and the restarted socket had
/// none, silently.
#[test]
fn packet_memberships_kept_across_exec_come_back() {
    if common::not_root("packet sockets") {
        return;
    }
    let _lo = LO_FLAGS.lock().unwrap_or_else(|e| e.into_inner());
    cycle_saying_nothing("packet-exec", "restart_packet_exec.c");
}

/// The same through glibc's `execl`, which calls the kernel itself, past
/// ckpt's exec wrappers: the new program's checkpoint cannot know the
/// socket's memberships, and says so.
#[test]
fn packet_memberships_unseen_across_execl_are_said() {
    if common::not_root("packet sockets") {
        return;
    }
    let (said, all) = checkpoint_lines_with(
        "packet-execl",
        "restart_packet_exec.c",
        &["execl"],
        "warning",
    );
    assert!(
        said.len() == 1 && said[0].contains("may hold memberships") && said[0].contains("execl"),
        "{all}"
    );
}

/// Keyrings of the program's own (a process keyring, a thread's, a
/// session keyring it joined) are said at checkpoint, one line each.
/// Before, nothing was said and the restarted program had none of them.
#[test]
fn keyrings_of_the_programs_own_are_said_at_checkpoint() {
    let (said, all) = checkpoint_lines("keyrings", "keyrings.c", "keyring");
    if all.contains("not under ckpt") {
        panic!("{all}");
    }
    assert!(
        said.len() == 3
            && said.iter().any(|l| l.contains("process keyring"))
            && said
                .iter()
                .any(|l| l.contains("thread 2 ") && l.contains("thread keyring"))
            && said
                .iter()
                .any(|l| l.contains("session keyring of its own")),
        "{all}"
    );
}

/// A packet socket's mapped receive ring and its fanout group's BPF
/// program cannot come back: the checkpoint says both. Before, it said
/// nothing and the restarted program waited for packets forever.
#[test]
fn a_packet_ring_and_a_bpf_fanout_are_said_at_checkpoint() {
    if common::not_root("packet sockets") {
        return;
    }
    let (said, all) = checkpoint_lines("packet-ring", "restart_packet_ring.c", "warning");
    assert!(
        said.len() == 2
            && said
                .iter()
                .any(|l| l.contains("socket:[") && l.contains("ring"))
            && said.iter().any(|l| l.contains("PACKET_FANOUT_DATA")),
        "{all}"
    );
}

/// A UDP socket's IP multicast memberships come back on their interface,
/// with their source filters (one group any source, one include filter,
/// one exclude filter; an unjoined group stays unheard). Before, the
/// restarted socket had left every group, silently. And a sender that
/// named its interface by index alone (read back as 0.0.0.0) still sends
/// there: before, its datagrams went out by the default route, unheard.
#[test]
fn multicast_memberships_come_back_with_their_filters() {
    let said = cycle_c("multicast", "restart_multicast.c");
    assert!(
        !said.restart.contains("multicast"),
        "restart said: {}",
        said.restart
    );
}

/// memfd_secret descriptors come back as memfd_secret (memory mapped from
/// them after the restart is kept from the kernel, as it would have been):
/// one empty, exact; one sized but unmapped, whose contents no process can
/// read: said at checkpoint in one line, made again as long, zeros.
/// Before, both came back as ordinary unlinked files, without a word.
#[test]
fn memfd_secret_descriptors_come_back_secret() {
    // SAFETY: memfd_secret with no flags; the descriptor is closed at once.
    let fd = unsafe { libc::syscall(libc::SYS_memfd_secret, 0) } as i32;
    if fd < 0 {
        eprintln!("skipped: no memfd_secret on this kernel");
        return;
    }
    // SAFETY: closing the descriptor just made.
    unsafe { libc::close(fd) };
    let said = cycle_c("secretmem", "restart_secretmem.c");
    let lines: Vec<&str> = said
        .checkpoint
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    assert!(
        lines.len() == 1 && lines[0].contains("(memfd_secret, 8192 bytes)"),
        "want one line, of B: {}",
        said.checkpoint
    );
}
