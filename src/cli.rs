//! Command-line syntax of `ckpt`: every command, flag and its help text.

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

const LONG_ABOUT: &str = "\
ckpt takes checkpoints of unmodified Linux x86_64 programs and restarts them
from those checkpoints.

A program started under `ckpt run` runs with an interceptor library
(libckpt_shim.so) preloaded. The library records the calls that create
kernel state (open, dup, pthread_create, timer_create, sigaction, ...), so
that a checkpoint can save memory, registers and that state to an image
file while the program keeps running. `ckpt restart` brings the program
back from an image after a crash, a kill or a reboot.

Typical flow:
  ckpt run --dir /var/tmp/imgs -- ./long-job --input data   # start it
  img=$(ckpt checkpoint 12345)    # checkpoint pid 12345; prints the image path
  ckpt inspect \"$img\"             # see what the image holds
  ckpt restart \"$img\"             # later: it goes on from the checkpoint

Exit status: 0 on success, 1 on errors, 2 on usage errors. `ckpt run` and
`ckpt restart` replace themselves with the program, so their exit status
is the program's (`ckpt run`: 127 when the program is not found, 126 when
it cannot be executed).";

/// The `ckpt` command.
#[derive(Debug, Parser)]
#[command(
    name = "ckpt",
    version,
    about = "Transparent checkpoint/restart for unmodified Linux x86_64 programs",
    long_about = LONG_ABOUT
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Run(RunArgs),
    Checkpoint(CheckpointArgs),
    Inspect(InspectArgs),
    List(ListArgs),
    /// Restart a program from an image: same memory, threads, files,
    /// timers and signal handlers; it continues where it was stopped
    Restart(RestartArgs),
}

/// Start a program under ckpt (the interceptor preloaded), replacing ckpt
/// itself with it.
///
/// ckpt execs PROG directly: the pid, exit status and signals are PROG's,
/// exactly as with the shell's `exec`. PROG is looked up in PATH like a
/// shell does. The environment gets LD_PRELOAD (libckpt_shim.so prepended),
/// CKPT_DIR (absolute image directory) and, with --interval, CKPT_INTERVAL.
/// The shim is taken from $CKPT_SHIM when set, else looked for next to the
/// ckpt executable.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example: ckpt run --dir /var/tmp/imgs --interval 60 -- ./simulate --steps 1000000"
)]
pub struct RunArgs {
    /// Directory where the program's checkpoint images are written (created
    /// if missing) [default: the current directory]
    #[arg(long, value_name = "DIR", conflicts_with = "store")]
    pub dir: Option<PathBuf>,

    /// Keep the program's checkpoints (periodic, `ckpt checkpoint PID`,
    /// `ckpt::checkpoint()`) in a database instead: `sqlite:PATH` (made if
    /// missing); --keep applies to it
    #[arg(long, value_name = "sqlite:PATH")]
    pub store: Option<std::ffi::OsString>,

    /// Take a checkpoint every INTERVAL: seconds (fractions allowed, e.g.
    /// 0.5) or with a unit: 500ms, 30s, 5m, 1h
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    pub interval: Option<f64>,

    /// Keep the newest N images of the program (each checkpoint is a new
    /// generation; older ones are removed only once a newer one is
    /// complete). Images after the first store only the pages written
    /// since the previous one; a whole image they still take at least
    /// half of their pages from stays beside them as PROG-PID.SEQ.base
    /// (not a generation: copy it with them)
    #[arg(long, value_name = "N", default_value = "1", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: u32,

    /// Compress the memory in the program's images, each stored run of
    /// pages on its own: lz4 (fast, the default for a bare --compress) or
    /// zstd (smaller, slower); restart decompresses on every core. Pages
    /// that do not compress are stored as they are
    #[arg(long, value_name = "CODEC", num_args = 0..=1, require_equals = true,
          default_missing_value = "lz4", value_parser = parse_codec)]
    pub compress: Option<Compression>,

    /// Keep the contents of every file the program has open for writing
    /// in its images (up to 256 MiB in all), so a restart puts back a file
    /// changed in place after the checkpoint. Without it only files of at
    /// most 1 MiB (8 MiB in all) are kept; the others are cut back to
    /// their size at the checkpoint, or named when changed in place. The
    /// program is frozen while the files are copied (about a second per
    /// GiB)
    #[arg(long)]
    pub save_files: bool,

    /// Take `ckpt checkpoint`'s first checkpoint of the program (and the
    /// first after each restart) as a pre-copy, as `ckpt checkpoint
    /// --precopy` does
    #[arg(long)]
    pub precopy: bool,

    /// Load a plugin with the shim: a library of yours built with
    /// ckpt-macros (`#[interpose]` wrappers for your libraries' functions,
    /// hooks that put back what ckpt cannot, see `ckpt::plugin`). May be
    /// given several times
    #[arg(long, value_name = "LIB.so")]
    pub plugin: Vec<PathBuf>,

    /// The program to run and its arguments, after `--`
    #[arg(last = true, required = true, num_args = 1.., value_name = "PROG [ARGS]")]
    pub command: Vec<OsString>,
}

/// Checkpoint a running program started with `ckpt run`; print the image path.
///
/// Only the path goes to stdout, one line, so scripts can write
/// `img=$(ckpt checkpoint $pid)`. The program keeps running. What a
/// restart from the image could not bring back as it was (a pipe or a
/// connection to another process, an io_uring, ...) is told on stderr.
/// A program holding state ckpt cannot record (a thread or POSIX timer
/// beyond its tables, or made by raw system calls) is not checkpointed:
/// one line says why.
///
/// A program with children is checkpointed with its whole job (the
/// process `ckpt run` started and every descendant; PID may be any of
/// them, or a `ckpt restart` command): all frozen at one moment, the image
/// a directory `ckpt-PROG-PID.SEQ.tree` holding one image per process and
/// a manifest. A job with a process that does not run ckpt's shim (a
/// static binary, one that dropped LD_PRELOAD) is refused; it runs on.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example: img=$(ckpt checkpoint --dir /var/tmp/imgs 12345)")]
pub struct CheckpointArgs {
    /// Process id of the program (as started by `ckpt run`)
    #[arg(value_name = "PID", value_parser = clap::value_parser!(i32).range(1..))]
    pub pid: i32,

    /// Write the image into DIR instead of the directory given to `ckpt run`
    #[arg(long, value_name = "DIR", conflicts_with = "store")]
    pub dir: Option<PathBuf>,

    /// Keep the checkpoint in a database instead of a directory:
    /// `sqlite:PATH` (made if missing; one transaction per checkpoint,
    /// memory as 4 KiB chunks stored once across generations). `ckpt list`,
    /// `inspect` and `restart` take `sqlite:PATH[#NAME]` too
    #[arg(long, value_name = "sqlite:PATH")]
    pub store: Option<std::ffi::OsString>,

    /// With --store: keep the newest N generations in it, removing older
    /// ones (and the chunks only they used) once the new one is in
    #[arg(long, value_name = "N", requires = "store", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,

    /// Give up when the program has not answered after SECS seconds
    #[arg(long, value_name = "SECS", default_value = "600", value_parser = parse_positive_secs)]
    pub timeout: f64,

    /// Also print the image size, how long the program was frozen and the
    /// total time to stderr
    #[arg(short, long)]
    pub verbose: bool,

    /// When the program has no image to build on (its first checkpoint,
    /// or the first since a restart) and holds at least 64 MiB: read its
    /// memory while it runs first, then freeze it only to copy what it
    /// wrote meanwhile. It stalls for a walk of its page tables (3-4 ms
    /// per GiB) and a copy of those pages (about 10 ms at 1 GiB with 1%
    /// written) instead of a fork (20-35 ms per GiB); the checkpoint takes
    /// about as long,
    /// and a base image (`.base`) stays beside it. A program that writes
    /// all over its memory makes it give up at once (the checkpoint is
    /// then taken as usual); one that ends before it is complete loses
    /// this checkpoint (without it, the image is finished regardless)
    #[arg(long)]
    pub precopy: bool,

    /// No progress bar (on a terminal, a checkpoint that takes more than
    /// half a second shows one: bytes written, rate, time left)
    #[arg(short, long)]
    pub quiet: bool,

    /// Also write the outcome (MessagePack) to descriptor FD: used by the
    /// shim, which starts this command to checkpoint a whole tree
    #[arg(long, value_name = "FD", hide = true)]
    pub answer_fd: Option<i32>,

    /// PID answers on the control socket NAME (used by the shim of a
    /// program restarted in a pid namespace: see `control::name_socket`)
    #[arg(long, value_name = "NAME", hide = true)]
    pub control_name: Option<String>,
}

/// Show what a checkpoint image holds: process, threads, descriptors,
/// timers, signal handlers, memory.
///
/// The header and metadata are checked (magic, version, architecture,
/// checksums) first; a damaged image gives one line of error and exit
/// status 1. Page data is not read.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example: ckpt inspect --json img | jq '.fds[] | {fd, path, offset}'")]
pub struct InspectArgs {
    /// The image file to read (or a tree directory; or `sqlite:PATH[#NAME]`:
    /// a generation of a store, its newest by default)
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// Print JSON instead of a report: {"image": {path, format_version,
    /// file_bytes, meta_bytes, data_bytes}} plus every metadata field
    /// (process, threads, fds, timers, ...) at the top level; byte
    /// strings longer than 64 bytes (saved file contents, pipe bytes,
    /// queued messages) print as {"bytes": LENGTH}
    #[arg(long)]
    pub json: bool,
}

/// List the checkpoint images (generations) in a directory, oldest first:
/// program, pid, when it was taken, size, threads, and whether the image
/// is whole (header, metadata and layout checked; page data is not read).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example: ckpt list /var/tmp/imgs")]
pub struct ListArgs {
    /// The directory, or a store `sqlite:PATH` [default: the current directory]
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Print JSON: one object per image
    #[arg(long)]
    pub json: bool,
}

/// A positive, finite number of seconds.
const RESTART_HELP: &str = "\
The program comes back with its pid and its threads' ids, in a pid
namespace of its own (a user namespace too when not root), as a child of
this command, which stays in the foreground, forwards SIGTERM, SIGHUP,
SIGUSR1 and SIGUSR2 to it, and ends with the program's exit status or
signal; killed in any other way (even SIGKILL), it takes the program
along. `ckpt checkpoint` of this command's pid or of the program's
reaches the program. In a time namespace of its own, its monotonic and
boot clocks go on from the values it saw at the checkpoint (even after a
reboot), as its timers do. Where the kernel allows no namespace (or with --no-namespace)
this command becomes the program itself. Its threads, memory, signal
handlers, timers and descriptors come back as they were at the checkpoint.

Descriptors:
  - a regular file or directory is reopened by path at its offset (never
    created or truncated): `prog > out` goes on writing at the right byte;
    a file opened with O_APPEND goes on appending at its end (cut back
    first to its size at the checkpoint, see below);
  - descriptors that shared an open file share one again; an in-process
    pipe (its ends found by inode, with its unread bytes; an end whose
    other ends were all closed comes back so: its bytes then end of file,
    or EPIPE), a socket pair or a unix connection the program accepted
    from itself (a datagram or seqpacket pair with each queued message; an
    end shut down is shut down again), an eventfd (its semaphore mode
    too), an epoll instance (with what it watched), a timerfd (with its
    unread expirations), a signalfd and an inotify instance (its watches
    at their numbers, by the paths they were added with; events not yet
    read are lost, said at checkpoint) are re-created;
  - a POSIX message queue is made again by its name with its messages (in
    an IPC namespace of the restart's own); a pidfd names the same process
    again (the program itself, or another process of the job);
  - who a file signals on I/O (O_ASYNC, F_SETOWN, F_SETSIG), leases and
    directories watched with F_NOTIFY are set again;
  - a named FIFO is reopened by its path with the bytes it held; one whose
    path was unlinked comes back as an anonymous pipe with its bytes;
  - a namespace descriptor (/proc/self/ns/*) names the restarted program's
    own namespace of that kind (with a warning when that is another one);
  - file locks the program held (fcntl, OFD, flock) are taken again,
    without waiting: one another process took meanwhile is a warning;
  - descriptors 0, 1 and 2 that were a terminal, a pipe to another
    process, a socket leading outside the job or a device are connected
    to this command's own (a socket pair the job held both ends of, or
    whose other end it closed, comes back with its bytes instead); a
    terminal is then set as the program had it (raw mode, echo), and a
    window size not the one it had is told with SIGWINCH; so is a file
    the program wrote at 0, 1 or 2 that is this command's own descriptor
    too, open for writing without O_APPEND (a script's `> log` that the
    program and this command both inherit): the program writes on through
    it at the script's position, and it is not cut back (that would leave
    zeros under what the others wrote since); said when it grew since
    the checkpoint. `ckpt restart IMAGE >> out` continues the program's
    `> out` as any file: reopened at its offset, cut back;
  - a listening socket listens again at its address (refused up front
    when the address is taken); a TCP connection whose two ends the job
    holds is connected again between the same addresses, with its unread
    bytes; a connection to a process outside the job comes back closed
    by its peer (end-of-file, EPIPE), with a warning;
  - a pseudo-terminal pair the job made (openpty, forkpty, script) is
    made again with its settings and window size, as the controlling
    terminal of the session leader that had it (its /dev/pts number may
    change; bytes nobody had read are said at checkpoint);
  - what cannot come back otherwise (a pipe to another process, a
    fanotify, an io_uring, a pidfd of a process outside the job) is
    replaced by /dev/null, with a warning.

Checked before anything starts (one line and exit status 1 on failure,
nothing is started and no file is touched): the image's checksums, format
version and architecture, the kernel's vdso layout, and every file the
image needs (present, and the same file as at the checkpoint). A file the
program only read that changed since the checkpoint is a warning, or an
error with --strict. In a lazy restart the memory of the program's large
regions is checked piece by piece as it is copied in instead: a damaged
piece stops the program before it can read it, saying so.

Files the program had open for writing go back with it: one that grew
since the checkpoint (what the killed run wrote after it, an O_APPEND log
above all) is cut back to its size at the checkpoint, and each file cut
back is named on stderr with the bytes removed (--keep-files leaves them
as they are). One that is now shorter than the program's position in it
is refused; one changed in place (same size, newer time) is a warning:
what was overwritten cannot be put back. Files and directories the
killed run made after the checkpoint (seen by the job's log of files its
processes open for writing and directories they make) are removed, each
named (--keep-files leaves them).

Processes of the checkpointed job that still run (a `kill -9` of the
job's root leaves its children; another restart of the same job) would
write the same files: the restart waits 3 s for them to end, then
refuses, naming them (--kill-old kills them).

Examples:
  ckpt restart /var/tmp/imgs/ckpt-simulate-12345.img
  ckpt restart /var/tmp/imgs      # the newest image there (after --interval)";

/// Restart a program from an image.
#[derive(Debug, clap::Args)]
#[command(after_help = RESTART_HELP)]
pub struct RestartArgs {
    /// The image written by `ckpt checkpoint` (a file, or a
    /// `ckpt-….tree` directory: a whole job, every process back at its
    /// pid), or a directory (a run's --dir): its newest image; or a store,
    /// `sqlite:PATH[#NAME]`: that generation, by default its newest.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// IMAGE is a directory: restart its newest image that is whole,
    /// passing over damaged ones (with a warning)
    #[arg(long)]
    pub latest: bool,

    /// Refuse to restart when a file the program had open for reading
    /// changed since the checkpoint.
    #[arg(long)]
    pub strict: bool,

    /// Leave files the program had open for writing as they are, even
    /// when they grew after the checkpoint (default: cut them back to
    /// their size at the checkpoint).
    #[arg(long)]
    pub keep_files: bool,

    /// Kill (SIGKILL) processes of the checkpointed job that still run
    /// (children a killed job left behind, or another restart of it)
    /// instead of refusing. By default a restart waits 3 s for them to
    /// end, then refuses, naming them: both would write the same files.
    #[arg(long)]
    pub kill_old: bool,

    /// Copy all of the program's memory back before it runs. By default
    /// a large program runs within milliseconds while its memory arrives
    /// in the background, the pages it touches first served first (a
    /// fork or a checkpoint waits for the rest). Eager suits an image on
    /// a disk about to go away. Lazy needs /dev/userfaultfd (root, or a
    /// group given it) or vm.unprivileged_userfaultfd=1; without, and
    /// with --no-namespace or a whole job, restarts are eager.
    #[arg(long)]
    pub eager: bool,

    /// Restart as this very process instead of in a pid namespace: the
    /// program then has this command's pid and new thread ids (its
    /// getpid() still answers the old pid).
    #[arg(long)]
    pub no_namespace: bool,

    /// No progress bar (on a terminal, a restart that takes more than half
    /// a second shows one while it checks the image and copies memory in)
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn parse_positive_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("must be greater than 0 (got `{s}`)"));
    }
    if v > 1e9 {
        return Err(format!("`{s}` seconds is too long"));
    }
    Ok(v)
}

/// A checkpoint interval: seconds, or a number with a unit (ms, s, m, h);
/// positive and at least a millisecond, the shim's resolution.
pub fn parse_interval(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, scale) = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
        .iter()
        .find_map(|(u, k)| t.strip_suffix(u).map(|n| (n, *k)))
        .unwrap_or((t, 1.0));
    if num.is_empty() || num.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!(
            "`{s}` is not an interval (examples: 0.5, 30s, 5m, 1h)"
        ));
    }
    let v = parse_positive_secs(num)
        .map_err(|_| format!("`{s}` is not an interval (examples: 0.5, 30s, 5m, 1h)"))?
        * scale;
    if v < 0.001 {
        return Err(format!("must be at least 0.001 (got `{s}`)"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ckpt").chain(args.iter().copied()))
    }

    #[test]
    fn help_texts_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_program_after_double_dash() {
        let cli = parse(&[
            "run",
            "--dir",
            "/x",
            "--interval",
            "2",
            "--",
            "ls",
            "-l",
            "--all",
        ])
        .unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run")
        };
        assert_eq!(r.dir, Some(PathBuf::from("/x")));
        assert_eq!(r.interval, Some(2.0));
        assert_eq!(r.command, ["ls", "-l", "--all"]);
    }

    #[test]
    fn run_requires_double_dash_and_program() {
        assert!(parse(&["run"]).is_err());
        assert!(parse(&["run", "--"]).is_err());
        let e = parse(&["run", "ls"]).unwrap_err();
        assert_ne!(e.kind(), ErrorKind::DisplayHelp);
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn interval_must_be_positive() {
        for bad in ["0", "-1", "abc", "nan", "inf", "", "0.0001"] {
            let e = parse(&["run", "--interval", bad, "--", "ls"]);
            assert!(e.is_err(), "{bad} accepted");
            assert_eq!(e.unwrap_err().exit_code(), 2);
        }
        let cli = parse(&["run", "--interval", "0.5", "--", "ls"]).unwrap();
        let Command::Run(r) = cli.command else {
            panic!()
        };
        assert_eq!(r.interval, Some(0.5));
    }

    #[test]
    fn interval_takes_units() {
        for (text, secs) in [
            ("30s", 30.0),
            ("5m", 300.0),
            ("1h", 3600.0),
            ("500ms", 0.5),
            ("2", 2.0),
        ] {
            assert_eq!(parse_interval(text), Ok(secs), "{text}");
        }
        for bad in ["5x", "m", "1d", "ms", "-5m", "0s"] {
            assert!(parse_interval(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn checkpoint_pid_must_be_a_positive_number() {
        assert!(parse(&["checkpoint", "abc"]).is_err());
        assert!(parse(&["checkpoint", "0"]).is_err());
        assert!(parse(&["checkpoint"]).is_err());
        let cli = parse(&["checkpoint", "42", "-v"]).unwrap();
        let Command::Checkpoint(c) = cli.command else {
            panic!()
        };
        assert_eq!(
            (c.pid, c.timeout, c.verbose, c.dir),
            (42, 600.0, true, None)
        );
        assert!(parse(&["checkpoint", "42", "--timeout", "0"]).is_err());
    }

    #[test]
    fn inspect_takes_image_and_json() {
        let cli = parse(&["inspect", "a.img", "--json"]).unwrap();
        let Command::Inspect(i) = cli.command else {
            panic!()
        };
        assert!(i.json);
        assert_eq!(i.image, PathBuf::from("a.img"));
    }
}

/// `--compress=CODEC`: a codec, or none.
#[derive(Debug, Clone, Copy)]
pub struct Compression(pub Option<ckpt::image::Codec>);

/// `--compress=CODEC`: lz4, zstd, or none.
fn parse_codec(s: &str) -> Result<Compression, String> {
    ckpt::image::Codec::parse(s).map(Compression)
}
