//! Real-process acceptance tests of `ckpt restart`: each program runs once
//! uninterrupted (the reference), then under `ckpt run`; it is checkpointed
//! mid-work, killed with SIGKILL, restarted from the image with
//! `ckpt restart`, and what it produced is compared with the reference,
//! byte for byte or through the program's own verdict.
//!
//! Programs write to a file the test opened as their stdout (`prog > out`)
//! so that the restarted program goes on writing at the right offset.

mod common;
#[path = "common/restart.rs"]
mod rs;

use common::{compile_c, touch};
use rs::{
    assert_same, assert_success, checkpoint_and_kill, lines, plain_cmd, reference, restart_cmd,
    run_cmd, start, wait_file, wait_marker, Area, Out, RESTART_TIMEOUT,
};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Build a C program once per test (each test has its own temp dir).
fn build(area: &Area, src: &str) -> PathBuf {
    compile_c(src, &area.sub("bin"))
}

/// The program's arguments, given its control dir.
type Args<'a> = Box<dyn Fn(&Path) -> Vec<String> + 'a>;

/// Is the program mid-work? Given the watched output file, the control
/// dir, and (under ckpt only) the reference output.
type Ready<'a> = Box<dyn Fn(&Path, &Path, Option<&[u8]>) -> bool + 'a>;

/// The whole cycle for one program: reference run, run under ckpt until
/// `ready` holds, checkpoint, kill, `between`, restart (`restarts` times
/// over), compare the output (stdout `> out`, or the file `compare` in the
/// control dir) with the reference.
struct Cycle<'a> {
    prog: &'a Path,
    /// The program's arguments, given its control dir.
    args: Args<'a>,
    /// Compare this file (in the control dir) instead of stdout.
    compare: Option<&'a str>,
    ready: Ready<'a>,
    /// Run between the kill and the restart (given the control dir); in
    /// the reference run, at the same point of the program.
    between: Box<dyn Fn(&Path) + 'a>,
    restarts: usize,
    /// Extra arguments of `ckpt restart`.
    restart_args: &'a [&'a str],
}

impl<'a> Cycle<'a> {
    fn new(prog: &'a Path) -> Cycle<'a> {
        Cycle {
            prog,
            args: Box::new(|ctl| vec![ctl.to_string_lossy().into_owned()]),
            compare: None,
            ready: Box::new(|_, _, _| true),
            between: Box::new(|_| {}),
            restarts: 1,
            restart_args: &[],
        }
    }

    /// Arguments: the control dir, then `extra`.
    fn ctl_args(mut self, extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        self.args = Box::new(move |ctl| {
            let mut v = vec![ctl.to_string_lossy().into_owned()];
            v.extend(extra.iter().cloned());
            v
        });
        self
    }

    fn watched(&self, ctl: &Path, stdout: &Path) -> PathBuf {
        match self.compare {
            Some(f) => ctl.join(f),
            None => stdout.to_path_buf(),
        }
    }

    /// Returns (reference output, output after restart(s)).
    fn run(&self, area: &Area) -> (Vec<u8>, Vec<u8>) {
        // Reference: the same program, same control protocol, no ckpt.
        let ctl_ref = area.sub("ctl-ref");
        let out_ref = area.file("ref.out");
        let mut k = start(
            plain_cmd(self.prog, &(self.args)(&ctl_ref), area.path()),
            Out::File(&out_ref),
            &area.file("ref.err"),
            "reference",
        );
        let w_ref = self.watched(&ctl_ref, &out_ref);
        wait_file(
            &mut k,
            &w_ref,
            |_| (self.ready)(&w_ref, &ctl_ref, None),
            common::READY_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        (self.between)(&ctl_ref);
        let st = k.wait(rs::RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        assert_success(st, "the reference run", &k.describe());
        let want = std::fs::read(&w_ref).unwrap();

        // Under ckpt.
        let ctl = area.sub("ctl");
        let out = area.file("prog.out");
        let watched = self.watched(&ctl, &out);
        let mut kid = start(
            run_cmd(self.prog, &(self.args)(&ctl), area.path(), &area.images),
            Out::File(&out),
            &area.file("prog.err"),
            "under ckpt run",
        );
        wait_file(
            &mut kid,
            &watched,
            |_| (self.ready)(&watched, &ctl, Some(&want)),
            common::READY_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for round in 0..self.restarts {
            let img = checkpoint_and_kill(&mut kid, &area.images);
            if round == 0 {
                (self.between)(&ctl);
            }
            kid = start(
                restart_cmd(&img, self.restart_args, area.path()),
                Out::Null,
                &area.file(&format!("restart{round}.err")),
                &format!("ckpt restart #{round}"),
            );
            if round + 1 < self.restarts {
                // Let it get some work done before the next checkpoint.
                let before = std::fs::read(&watched).unwrap_or_default().len();
                wait_file(
                    &mut kid,
                    &watched,
                    |d| d.len() > before + 200,
                    common::READY_TIMEOUT,
                )
                .unwrap_or_else(|e| {
                    panic!(
                        "restarted program made no progress: {e}\nprogram stderr:\n{}",
                        read(&area.file("prog.err"))
                    )
                });
            }
        }
        let st = kid.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        let ctx = format!(
            "{}\nprogram stderr:\n{}\n--- program output after restart (tail) ---\n{}",
            kid.describe(),
            rs::tail(&read(&area.file("prog.err")), 3000),
            rs::tail(&read(&watched), 2000)
        );
        assert_success(st, "ckpt restart", &ctx);
        let got = std::fs::read(&watched).unwrap();
        assert_same(&got, &want, &ctx);
        if self.compare.is_some() {
            // stdout too.
            let so = std::fs::read(&out).unwrap();
            let so_ref = std::fs::read(&out_ref).unwrap();
            assert_same(&so, &so_ref, &ctx);
        }
        (want, got)
    }
}

fn read(p: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
}

fn has_lines(n: usize) -> Ready<'static> {
    Box::new(move |out, _, _| lines(&std::fs::read(out).unwrap_or_default()) >= n)
}

fn has_marker(name: &'static str) -> Ready<'static> {
    Box::new(move |_, ctl, _| ctl.join(name).exists())
}

/// Under ckpt: the output has reached `num/den` of the reference's size.
fn has_fraction(num: usize, den: usize) -> Ready<'static> {
    Box::new(move |out, _, want| match want {
        None => true,
        Some(w) => {
            std::fs::metadata(out)
                .map(|m| m.len() as usize)
                .unwrap_or(0)
                >= w.len() * num / den
        }
    })
}

fn touch_go(ctl: &Path) {
    touch(&ctl.join("go"));
}

// ---------------------------------------------------------------------------
// 1. A C counter writing to `> out`.

#[test]
fn c_counter_to_file_is_byte_identical() {
    let area = Area::new("rcnt");
    let prog = build(&area, "restart_counter.c");
    let mut c = Cycle::new(&prog).ctl_args(&["150", "10"]);
    c.ready = has_lines(40);
    let (want, _) = c.run(&area);
    assert!(String::from_utf8_lossy(&want).contains("done lines=150"));
}

// ---------------------------------------------------------------------------
// 8. Chain: checkpoint → kill → restart, three times over.

#[test]
fn chain_of_three_restarts_is_byte_identical() {
    let area = Area::new("rchain");
    let prog = build(&area, "restart_counter.c");
    let mut c = Cycle::new(&prog).ctl_args(&["300", "8"]);
    c.ready = has_lines(30);
    c.restarts = 3;
    c.run(&area);
    // Each SIGKILLed `ckpt restart` took its namespace along: no init of
    // one (they run in the area, as the command did) is left.
    let left: Vec<i32> = rs::pids_named("ckpt-init")
        .into_iter()
        .filter(|p| {
            std::fs::read_link(format!("/proc/{p}/cwd")).ok().as_deref() == Some(area.path())
        })
        .collect();
    assert!(left.is_empty(), "namespace inits left behind: {left:?}");
}

// ---------------------------------------------------------------------------
// Programs that stop at a `ready` marker and wait for `go`.

/// Run restart_stage (or another program following the ready/go protocol)
/// under ckpt with stdout to `out`, checkpoint it at `ready`, kill it,
/// create `go`, and start `ckpt restart` (stdout: `rout`).
fn staged_restart(area: &Area, prog: &Path, args: &[&str], rout: Out) -> rs::Kid {
    let ctl = area.sub("ctl");
    let mut argv = vec![ctl.to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let mut kid = start(
        run_cmd(prog, &argv, area.path(), &area.images),
        Out::File(&area.file("prog.out")),
        &area.file("prog.err"),
        "under ckpt run",
    );
    wait_marker(&mut kid, &ctl.join("ready")).unwrap_or_else(|e| panic!("{e}"));
    let img = checkpoint_and_kill(&mut kid, &area.images);
    touch_go(&ctl);
    start(
        restart_cmd(&img, &[], area.path()),
        rout,
        &area.file("restart.err"),
        "ckpt restart",
    )
}

/// The uninterrupted run of a ready/go program: `go` exists from the start.
fn staged_reference(
    area: &Area,
    prog: &Path,
    args: &[&str],
) -> (std::process::ExitStatus, Vec<u8>) {
    let ctl = area.sub("ctl-ref");
    touch_go(&ctl);
    touch(&ctl.join("go2"));
    let mut argv = vec![ctl.to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let out = area.file("ref.out");
    let st = reference(
        plain_cmd(prog, &argv, area.path()),
        &out,
        &area.file("ref.err"),
        "reference",
    );
    (st, std::fs::read(&out).unwrap())
}

fn program_stderr(area: &Area) -> String {
    format!(
        "program stderr:\n{}\nrestart stderr:\n{}",
        rs::tail(&read(&area.file("prog.err")), 3000),
        rs::tail(&read(&area.file("restart.err")), 3000)
    )
}

// ---------------------------------------------------------------------------
// 11. Exit status.

#[test]
fn exit_status_7_after_restart_is_restarts_status() {
    let area = Area::new("rexit");
    let prog = build(&area, "restart_stage.c");
    let (st_ref, want) = staged_reference(&area, &prog, &["exit7"]);
    assert_eq!(st_ref.code(), Some(7), "reference run");
    let mut r = staged_restart(&area, &prog, &["exit7"], Out::Null);
    let st = r.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        st.code(),
        Some(7),
        "ckpt restart must end with the program's exit status 7, got {st}\n{}",
        program_stderr(&area)
    );
    assert_same(
        &std::fs::read(area.file("prog.out")).unwrap(),
        &want,
        &program_stderr(&area),
    );
}

/// A process the restarted program forks lives in the restart's pid
/// namespace; `ckpt checkpoint` reaches it by its pid as seen outside.
#[test]
fn child_of_a_restarted_program_is_checkpointable_by_its_outer_pid() {
    let area = Area::new("rforkchild");
    let prog = rs::compile_named("restart_stage.c", &area.sub("bin"), "rstage_forker");
    let mut r = staged_restart(&area, &prog, &["fork"], Out::Null);
    let ctl = area.sub("ctl");
    let inner = wait_marker(&mut r, &ctl.join("child")).unwrap_or_else(|e| panic!("{e}"));
    let inner = common::parse_kv(&inner)["pid"].clone();
    // The child: our process of that name whose innermost pid is `inner`.
    let outer = rs::pids_named("rstage_forker")
        .into_iter()
        .find(|p| {
            let status = read(Path::new(&format!("/proc/{p}/status")));
            status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|v| v.split_whitespace().last().map(str::to_string))
                == Some(inner.clone())
        })
        .unwrap_or_else(|| panic!("no process with inner pid {inner}"));
    let img = common::checkpoint(outer, Some(&area.sub("child-images")))
        .unwrap_or_else(|e| panic!("checkpoint of the forked child {outer}: {e}"));
    assert!(img.exists(), "{}", img.display());
    touch(&ctl.join("stop"));
    let st = r.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_success(st, "restarted program", &program_stderr(&area));
}

/// A Rust program (std threads, channels, atomics, files) checkpointed
/// while its threads work, killed, restarted: same output. (Whether its
/// threads got to work before `go` depends on timing in the reference run,
/// where `go` exists from the start; under restart they always did.)
#[test]
fn rust_program_with_threads_continues() {
    let area = Area::new("rrust");
    let prog = common::compile_rust("worker.rs", &area.sub("bin"));
    let (st_ref, want) = staged_reference(&area, &prog, &[]);
    assert_success(st_ref, "the reference run", "");
    let mut r = staged_restart(&area, &prog, &[], Out::Null);
    let st = r.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_success(st, "restarted Rust program", &program_stderr(&area));
    let got = String::from_utf8_lossy(&std::fs::read(area.file("prog.out")).unwrap()).into_owned();
    assert!(
        got.contains(" worked true"),
        "the threads did not work: {got}"
    );
    let timing_free = |s: &str| s.replace(" worked false", " worked true");
    assert_same(
        timing_free(&got).as_bytes(),
        timing_free(&String::from_utf8_lossy(&want)).as_bytes(),
        &program_stderr(&area),
    );
}

#[test]
fn killed_by_sigterm_after_restart_is_restarts_status() {
    let area = Area::new("rterm");
    let prog = build(&area, "restart_stage.c");
    let (st_ref, want) = staged_reference(&area, &prog, &["sigterm"]);
    assert_eq!(st_ref.signal(), Some(libc::SIGTERM), "reference run");
    let mut r = staged_restart(&area, &prog, &["sigterm"], Out::Null);
    let st = r.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        st.signal(),
        Some(libc::SIGTERM),
        "ckpt restart must report death by SIGTERM, got {st}\n{}",
        program_stderr(&area)
    );
    assert_same(
        &std::fs::read(area.file("prog.out")).unwrap(),
        &want,
        &program_stderr(&area),
    );
}

// ---------------------------------------------------------------------------
// 10. The restarted process is the program: its comm, its pid as it sees
// it, and it can be checkpointed again.

/// The program a `ckpt restart` (pid `cmd`) runs: its child that is not
/// the namespace's ckpt-init nor the pager filling its memory.
fn program_under(cmd: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{cmd}/task/{cmd}/children"))
        .ok()?
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| !matches!(c.trim(), "ckpt-init" | "ckpt-pager"))
        })
}

#[test]
fn restarted_process_has_programs_comm_and_can_be_checkpointed() {
    let area = Area::new("rcomm");
    let prog = build(&area, "restart_stage.c");
    let (st_ref, want) = staged_reference(&area, &prog, &["comm"]);
    assert_success(st_ref, "the reference run", "");
    let comm = "restart_stage";
    let mut r = staged_restart(&area, &prog, &["comm"], Out::Null);
    let ctl = area.path().join("ctl");
    wait_marker(&mut r, &ctl.join("resumed"))
        .unwrap_or_else(|e| panic!("{e}\n{}", program_stderr(&area)));
    let pid = r.pid();
    // The program runs in a pid namespace, as the restart command's child.
    let program = program_under(pid).unwrap_or(pid);
    let got_comm = std::fs::read_to_string(format!("/proc/{program}/comm")).unwrap_or_default();
    let resumed = read(&ctl.join("resumed"));
    let before = read(&ctl.join("ready"));
    let again = common::checkpoint(pid, Some(&area.images));
    touch(&ctl.join("go2"));
    let st = r.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let mut checks = common::Checks::new();
    checks.eq(
        "/proc/PID/comm of the restarted process",
        got_comm.trim_end(),
        comm,
    );
    // The program keeps its pid (in its pid namespace); `ckpt checkpoint`
    // takes the restart command's pid.
    checks.eq(
        "the program's getpid() after restart is its pid from before",
        resumed.trim().to_string(),
        before.trim().to_string(),
    );
    checks.check(
        again.is_ok(),
        format!("checkpointing the restarted process again: {again:?}"),
    );
    checks.check(st.success(), format!("restart exit status {st}"));
    checks.eq(
        "output",
        String::from_utf8_lossy(&std::fs::read(area.file("prog.out")).unwrap()).into_owned(),
        String::from_utf8_lossy(&want).into_owned(),
    );
    checks.finish(&program_stderr(&area));
}

// ---------------------------------------------------------------------------
// stdout a pipe to the test: after restart the program's stdout is the
// restart command's own stdout.

#[test]
fn stdout_pipe_becomes_restart_commands_stdout() {
    let area = Area::new("rpipe");
    let prog = build(&area, "restart_stage.c");
    let (st_ref, want) = staged_reference(&area, &prog, &["pipe"]);
    assert_success(st_ref, "the reference run", "");

    let ctl = area.sub("ctl");
    let mut kid = start(
        run_cmd(
            &prog,
            &[ctl.to_str().unwrap(), "pipe"],
            area.path(),
            &area.images,
        ),
        Out::Pipe,
        &area.file("prog.err"),
        "under ckpt run",
    );
    wait_marker(&mut kid, &ctl.join("ready")).unwrap_or_else(|e| panic!("{e}"));
    let img = checkpoint_and_kill(&mut kid, &area.images);
    let _ = kid.wait(Duration::from_secs(5));
    let first = kid.out_bytes();
    touch_go(&ctl);
    let mut r = start(
        restart_cmd(&img, &[], area.path()),
        Out::Pipe,
        &area.file("restart.err"),
        "ckpt restart",
    );
    let st = r.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let ctx = program_stderr(&area);
    assert_success(st, "ckpt restart", &ctx);
    let mut got = first;
    got.extend_from_slice(&r.out_bytes());
    assert_same(&got, &want, &ctx);
}

// ---------------------------------------------------------------------------
// 2. gzip and xz.

/// Write `size` bytes of deterministic, moderately compressible data:
/// 256 KiB blocks of pseudo-random letters (16 of them), each after a
/// numbered header line.
fn generate(path: &Path, size: usize) {
    use std::io::Write;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut block = vec![0u8; 256 * 1024];
    for chunk in block.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = b'a' + ((x >> (i * 4)) & 15) as u8;
        }
    }
    let f = std::fs::File::create(path).unwrap();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut n = 0usize;
    let mut i = 0u64;
    while n < size {
        let head = format!("block {i:08}\n");
        w.write_all(head.as_bytes()).unwrap();
        w.write_all(&block).unwrap();
        // Vary the block a little so no two are the same.
        let k = (i as usize * 7919) % block.len();
        block[k] = b'A' + (i % 26) as u8;
        n += head.len() + block.len();
        i += 1;
    }
    w.flush().unwrap();
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

#[test]
fn gzip_100mib_is_byte_identical() {
    let area = Area::new("rgzip");
    let input = area.file("input.bin");
    generate(&input, 100 << 20);
    let gzip = which("gzip").expect("gzip is installed");
    let inp = input.to_string_lossy().into_owned();
    let mut c = Cycle::new(&gzip);
    c.args = Box::new(move |_| vec!["-c".into(), inp.clone()]);
    c.ready = has_fraction(1, 3);
    let (want, _) = c.run(&area);
    assert!(want.len() > 1 << 20, "gzip output is {} bytes", want.len());
}

#[test]
fn xz_40mib_is_byte_identical() {
    let Some(xz) = which("xz") else {
        eprintln!("SKIPPED: xz is not installed (CI installs it)");
        return;
    };
    let area = Area::new("rxz");
    let input = area.file("input.bin");
    generate(&input, 40 << 20);
    let inp = input.to_string_lossy().into_owned();
    let mut c = Cycle::new(&xz);
    c.args = Box::new(move |_| vec!["-c".into(), "-T1".into(), inp.clone()]);
    c.ready = has_fraction(1, 3);
    c.run(&area);
}

// ---------------------------------------------------------------------------
// 3. Threads with mutexes and condition variables.

#[test]
fn eight_threads_mutex_condvar_same_checksum() {
    let area = Area::new("rthr");
    let prog = build(&area, "restart_threads.c");
    let mut c = Cycle::new(&prog).ctl_args(&["30"]);
    c.ready = has_lines(6);
    let (want, _) = c.run(&area);
    assert!(String::from_utf8_lossy(&want).contains("verdict ok"));
}

// ---------------------------------------------------------------------------
// Programs with their own verdict, stopped at `ready` until `go`.

/// Reference run, then the staged restart; the outputs must be identical
/// and end with "verdict: ok".
fn verdict_cycle(tag: &str, src: &str, args: &[&str], between: &dyn Fn(&Path)) {
    verdict_cycle_with(tag, src, args, between, &[]);
}

/// `verdict_cycle` with extra `ckpt restart` arguments.
fn verdict_cycle_with(
    tag: &str,
    src: &str,
    args: &[&str],
    between: &dyn Fn(&Path),
    restart_args: &[&str],
) {
    let area = Area::new(tag);
    let prog = build(&area, src);
    let mut c = Cycle::new(&prog).ctl_args(args);
    c.restart_args = restart_args;
    c.ready = has_marker("ready");
    c.between = Box::new(|ctl| {
        between(ctl);
        touch_go(ctl);
    });
    let (want, got) = c.run(&area);
    let text = String::from_utf8_lossy(&got);
    assert!(
        String::from_utf8_lossy(&want).ends_with("verdict: ok\n")
            && text.ends_with("verdict: ok\n"),
        "no ok verdict:\n{text}"
    );
}

fn nothing(_: &Path) {}

// 4. Timers.

#[test]
fn posix_timers_signal_and_thread_id_and_itimer_keep_ticking() {
    verdict_cycle("rtim", "restart_timers.c", &["posix"], &nothing);
}

#[test]
fn alarm_armed_at_checkpoint_fires_after_restart() {
    verdict_cycle("ralrm", "restart_timers.c", &["alarm"], &nothing);
}

#[test]
fn sigev_thread_timer_keeps_ticking() {
    verdict_cycle("rtthr", "restart_timers.c", &["thread"], &nothing);
}

// 5. Signals.

#[test]
fn signal_handlers_installed_before_run_after_restart() {
    verdict_cycle("rsigh", "restart_signals.c", &["handlers"], &nothing);
}

#[test]
fn blocked_pending_signals_delivered_after_restart() {
    verdict_cycle("rsigp", "restart_signals.c", &["pending"], &nothing);
}

// 6. Files.

#[test]
fn dup_descriptors_share_offset_after_restart() {
    verdict_cycle("rdup", "restart_files.c", &["dup"], &nothing);
}

#[test]
fn o_append_stays_append_after_restart() {
    // Another writer grows the file while the program is down: with
    // --keep-files (by default a file that grew is cut back to its size at
    // the checkpoint), O_APPEND writes must land after its bytes.
    verdict_cycle_with(
        "rapp",
        "restart_files.c",
        &["append"],
        &|ctl| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(ctl.join("append.txt"))
                .unwrap();
            f.write_all(b"external\n").unwrap();
        },
        &["--keep-files"],
    );
}

#[test]
fn map_shared_file_mapping_stays_shared_after_restart() {
    verdict_cycle("rmmap", "restart_files.c", &["mmap"], &nothing);
}

#[test]
fn in_process_pipe_keeps_unread_data_across_restart() {
    verdict_cycle("rpipd", "restart_files.c", &["pipe"], &nothing);
}

// 9. rseq.

#[test]
fn rseq_registered_and_sched_getcpu_right_after_restart() {
    let area = Area::new("rrseq");
    let prog = build(&area, "restart_rseq.c");
    let mut c = Cycle::new(&prog).ctl_args(&[]);
    c.ready = has_marker("ready");
    c.between = Box::new(touch_go);
    let (_, got) = c.run(&area);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("rseq registered after restart: yes") && text.ends_with("verdict: ok\n"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// 7. Interpreters.

const PY_LOOP: &str = r#"
import hashlib, sys, time
with open(sys.argv[1] + "/py.out", "w") as f:
    for i in range(60):
        f.write("%d %s\n" % (i, hashlib.sha256(str(i).encode()).hexdigest()))
        f.flush()
        time.sleep(0.05)
print("done", flush=True)
"#;

#[test]
fn python3_loop_writing_a_file_continues() {
    let area = Area::new("rpy");
    let py = common::python3();
    let mut c = Cycle::new(&py);
    c.args = Box::new(|ctl| {
        vec![
            "-c".into(),
            PY_LOOP.into(),
            ctl.to_string_lossy().into_owned(),
        ]
    });
    c.compare = Some("py.out");
    c.ready = has_lines(15);
    c.run(&area);
}

#[test]
fn bash_loop_continues() {
    let area = Area::new("rbash");
    let bash = which("bash").expect("bash is installed");
    let mut c = Cycle::new(&bash);
    c.args = Box::new(|_| {
        vec![
            "-c".into(),
            "for i in $(seq 1 60); do echo $i; sleep 0.05; done".into(),
        ]
    });
    c.ready = has_lines(15);
    let (want, _) = c.run(&area);
    assert_eq!(lines(&want), 60);
}
