//! Process trees (issue 7): a job is its root and every descendant.
//! `ckpt checkpoint PID` of any process of a job with descendants freezes
//! them all at one moment and writes a `ckpt-COMM-ROOTPID.SEQ.tree`
//! directory (a `manifest`, one `PID.img` per live process); `ckpt restart`
//! of that directory brings the whole tree back in a pid namespace: same
//! pids, parents, groups and sessions, zombies, pipes and socket pairs
//! between the processes with their bytes, files shared across fork with
//! one offset, shared anonymous memory shared again. A job holding a
//! process that does not run the shim is refused, untouched.
//!
//! Each test runs a real job under `ckpt run`, checkpoints it, SIGKILLs
//! every process of it, restarts the tree and compares what it produces
//! with an uninterrupted run, byte for byte.

mod common;
#[path = "common/restart.rs"]
mod rs;

use common::touch;
use common::tree::{self, TreeImage};
use rs::{
    assert_same, assert_success, plain_cmd, reference, restart_cmd, run_cmd, start, Area, Kid, Out,
};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// How long a restarted job may take to its end (each runs a few seconds).
const END: Duration = Duration::from_secs(30);

fn read(p: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
}

/// An executable on PATH, as an absolute path.
fn which(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not on PATH"))
}

/// What a failure message needs: the job's and every restart's stderr and
/// stdout (the restart command's own), tails.
fn context(area: &Area) -> String {
    let mut s = String::new();
    let mut names: Vec<String> = std::fs::read_dir(area.path())
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".err") || n.starts_with("restart"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for n in names {
        let text = read(&area.file(&n));
        if !text.is_empty() {
            s.push_str(&format!("--- {n} ---\n{}\n", rs::tail(&text, 2500)));
        }
    }
    s
}

/// Run `prog args` plainly in `cwd` to its end, stdout and stderr into
/// the area's ref.out and ref.err: its stdout, which a restarted job must
/// reproduce.
fn uninterrupted<S: AsRef<std::ffi::OsStr>>(
    area: &Area,
    prog: &Path,
    args: &[S],
    cwd: &Path,
    label: &str,
) -> Vec<u8> {
    let st = reference(
        plain_cmd(prog, args, cwd),
        &area.file("ref.out"),
        &area.file("ref.err"),
        label,
    );
    assert_success(
        st,
        &format!("the uninterrupted run ({label})"),
        &read(&area.file("ref.err")),
    );
    std::fs::read(area.file("ref.out")).unwrap()
}

/// Program `src` (a CTL-driven C program) compiled as `name`, and its
/// uninterrupted output (CTL/go there from the start).
fn with_reference(area: &Area, src: &str, name: &str) -> (PathBuf, Vec<u8>) {
    let prog = rs::compile_named(src, &area.sub("bin"), name);
    let ctlr = area.sub("ctl-ref");
    touch(&ctlr.join("go"));
    let args = [ctlr.to_string_lossy().into_owned()];
    let want = uninterrupted(area, &prog, &args, area.path(), &format!("plain {name}"));
    (prog, want)
}

/// [`start_job`], guarded, until `text` is in `out`.
fn job_until(
    area: &Area,
    prog: &Path,
    args: &[String],
    cwd: &Path,
    out: &Path,
    text: &str,
) -> (Kid, JobGuard) {
    let mut kid = start_job(area, prog, args, cwd, out);
    let guard = JobGuard(kid.pid());
    rs::wait_file(
        &mut kid,
        out,
        |d| String::from_utf8_lossy(d).contains(text),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", context(area)));
    (kid, guard)
}

/// Start `prog args` under `ckpt run --dir IMAGES` in `cwd`, stdout into
/// `out`, stderr into the area's prog.err.
fn start_job(area: &Area, prog: &Path, args: &[String], cwd: &Path, out: &Path) -> Kid {
    start(
        run_cmd(prog, args, cwd, &area.images),
        Out::File(out),
        &area.file("prog.err"),
        &format!("{} under ckpt run", prog.display()),
    )
}

/// Run `prog CTL` as a job until it marks CTL/ready, checkpoint it (what
/// the checkpoint said goes to `check`), kill it, touch CTL/go, restart
/// it and compare the first process's output with `want`.
fn ready_checkpoint_go_restart(area: &Area, prog: &Path, want: &[u8], check: &dyn Fn(&TreeImage)) {
    let (mut kid, ctl, out) = start_until_ready(area, prog);
    let root = kid.pid();
    let _guard = JobGuard(root);
    let img = checkpoint_and_kill_tree(area, &mut kid, root, root);
    check(&img);
    touch(&ctl.join("go"));
    let mut r = restart_tree(area, &img, 1);
    let st = wait_end(area, &mut r);
    assert_success(st, "the restarted job", &context(area));
    rs::assert_same(
        &std::fs::read(&out).unwrap(),
        want,
        "the parent's output after restart",
    );
}

/// Start `prog CTL` as a job (stdout into the area's `out`) and wait
/// until it marks CTL/ready. Returns it, CTL and `out`.
fn start_until_ready(area: &Area, prog: &Path) -> (Kid, PathBuf, PathBuf) {
    let ctl = area.sub("ctl");
    let out = area.file("out");
    let mut kid = start_job(
        area,
        prog,
        &[ctl.to_string_lossy().into_owned()],
        area.path(),
        &out,
    );
    rs::wait_marker(&mut kid, &ctl.join("ready")).unwrap_or_else(|e| {
        let _ = tree::kill_job(kid.pid());
        panic!("{e}\n{}", context(area))
    });
    (kid, ctl, out)
}

/// Checkpoint the job whose top is `root` through `pid` (any process of
/// it), check the job went on, then SIGKILL every process of it and reap
/// `kid` (the command whose pid is `root`).
fn checkpoint_and_kill_tree(area: &Area, kid: &mut Kid, pid: i32, root: i32) -> TreeImage {
    let before = tree::tree_report(root);
    let img = tree::checkpoint_tree(area.path(), pid, &area.images).unwrap_or_else(|e| {
        panic!(
            "{e}\n(before the checkpoint) {before}(now) {}{}",
            tree::tree_report(root),
            context(area)
        )
    });
    eprintln!(
        "checkpoint of {pid}: {}\nit said: {}",
        img.listing(),
        img.stderr
    );
    if let Some(s) = kid.exited() {
        panic!(
            "{} exited ({s}) right after the checkpoint\n{}{}",
            kid.label,
            kid.describe(),
            context(area)
        );
    }
    tree::kill_job(root).unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    assert!(
        !common::alive(root),
        "{} (pid {root}) still exists after SIGKILL and reaping",
        kid.label
    );
    img
}

/// `ckpt restart TREE_DIR` in the area, its stdout and stderr into
/// restartN.out / restartN.err.
fn restart_tree(area: &Area, img: &TreeImage, n: usize) -> Kid {
    start(
        restart_cmd(&img.dir, &[], area.path()),
        Out::File(&area.file(&format!("restart{n}.out"))),
        &area.file(&format!("restart{n}.err")),
        &format!("ckpt restart #{n} {}", img.dir.display()),
    )
}

/// Wait for a restarted job's end; its status.
/// Restart tree image `img` and wait for its end: it must succeed (`what`
/// names it) and leave in `out` exactly `want`.
fn restart_to_same(area: &Area, img: &TreeImage, out: &Path, want: &[u8], what: &str) {
    let mut r = restart_tree(area, img, 1);
    let st = wait_end(area, &mut r);
    assert_success(st, what, &context(area));
    assert_same(&std::fs::read(out).unwrap(), want, &context(area));
}

fn wait_end(area: &Area, r: &mut Kid) -> ExitStatus {
    let pid = r.pid();
    let t = Instant::now();
    loop {
        if let Some(s) = r.exited() {
            return s;
        }
        if t.elapsed() > END {
            let report = tree::tree_report(pid);
            let _ = tree::kill_job(pid);
            r.kill();
            panic!(
                "{} did not end within {END:?} (killed)\n{report}{}",
                r.label,
                context(area)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn kv(text: &str, key: &str) -> i32 {
    let m = common::parse_kv(text);
    m.get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("marker has no numeric {key}: {text:?}"))
}

/// Kill a job (and reap its command) whatever state the test is in, so a
/// failed test leaves no process behind.
struct JobGuard(i32);
impl Drop for JobGuard {
    fn drop(&mut self) {
        if self.0 > 0 && common::alive(self.0) {
            let _ = tree::kill_job(self.0);
        }
    }
}

// ---------------------------------------------------------------------------
// 1. A bash pipeline.

const PIPELINE: &str =
    "for i in $(seq 1 60); do echo line$i; sleep 0.05; done | tr a-z A-Z | cat > out";

/// bash, its loop subshell (forking seq and sleep), tr (holding what it
/// read in its stdio buffer: it writes to a pipe only at its end) and cat:
/// checkpointed after a second, killed, restarted; `out` holds LINE1 to
/// LINE60, as in an uninterrupted run.
#[test]
fn bash_pipeline_comes_back_whole() {
    let area = Area::new("tpipe");
    let bash = which("bash");
    let want: String = (1..=60).map(|i| format!("LINE{i}\n")).collect();
    let args = vec!["-c".to_string(), PIPELINE.to_string()];

    let refdir = area.sub("ref");
    let st = reference(
        plain_cmd(&bash, &args, &refdir),
        &area.file("ref.stdout"),
        &area.file("ref.err"),
        "plain bash pipeline",
    );
    assert_success(
        st,
        "the uninterrupted pipeline",
        &read(&area.file("ref.err")),
    );
    assert_same(
        &std::fs::read(refdir.join("out")).unwrap(),
        want.as_bytes(),
        "uninterrupted run",
    );

    let run = area.sub("run");
    let mut kid = start_job(&area, &bash, &args, &run, &area.file("job.stdout"));
    let root = kid.pid();
    let _guard = JobGuard(root);
    // Wait a second, until tr and cat are there.
    let t = Instant::now();
    let (mut tr, mut cat) = (None, None);
    while t.elapsed() < Duration::from_millis(1000) || tr.is_none() || cat.is_none() {
        if let Some(s) = kid.exited() {
            panic!(
                "the pipeline ended ({s}) before the checkpoint\n{}",
                context(&area)
            );
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no tr and cat below bash after 20 s\n{}",
            tree::tree_report(root)
        );
        for p in tree::descendants(root) {
            match tree::info(p).map(|i| i.comm) {
                Some(c) if c == "tr" => tr = Some(p),
                Some(c) if c == "cat" => cat = Some(p),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (tr, cat) = (tr.unwrap(), cat.unwrap());
    let img = checkpoint_and_kill_tree(&area, &mut kid, root, root);
    img.require(&[root, tr, cat])
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));

    let mut r = restart_tree(&area, &img, 1);
    let st = wait_end(&area, &mut r);
    assert_success(st, "the restarted pipeline", &context(&area));
    assert_same(
        &std::fs::read(run.join("out")).unwrap_or_default(),
        want.as_bytes(),
        &format!("run/out after restart\n{}", context(&area)),
    );
}

// ---------------------------------------------------------------------------
// 2. A parent and child sharing memory, a pipe, a socket pair and stdout.

/// tree_family's uninterrupted transcript (all go files there from the
/// start).
fn family_reference(area: &Area, prog: &Path, rounds: u32) -> Vec<u8> {
    let ctl = area.sub("ctl-ref");
    for r in 1..=rounds {
        touch(&ctl.join(format!("go{r}")));
    }
    let out = area.file("ref.out");
    let st = reference(
        plain_cmd(
            prog,
            &[ctl.to_string_lossy().into_owned(), rounds.to_string()],
            area.path(),
        ),
        &out,
        &area.file("ref.err"),
        "plain tree_family",
    );
    assert_success(
        st,
        "the uninterrupted tree_family",
        &read(&area.file("ref.err")),
    );
    let want = std::fs::read(&out).unwrap();
    let text = String::from_utf8_lossy(&want);
    assert!(
        text.contains("child exited 7") && text.contains(&format!("counter {}", 4000 * rounds)),
        "the uninterrupted tree_family did not do its work: {text}"
    );
    want
}

/// Where the job's stdout goes.
#[derive(Clone, Copy, PartialEq)]
enum Stdout {
    /// A file the test created: `prog > out` (a regular file both
    /// processes write through one shared offset).
    File,
    /// A pipe the test reads: after the restart, the restart command's.
    Pipe,
}

/// What a killed job wrote into its stdout pipe, once nothing more comes
/// (at most 3 s).
fn drained(kid: &Kid) -> Vec<u8> {
    let t = Instant::now();
    let mut last = kid.out_bytes();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = kid.out_bytes();
        if now == last || t.elapsed() > Duration::from_secs(3) {
            return now;
        }
        last = now;
    }
}

/// Run tree_family under ckpt to its first stop, checkpoint it through the
/// parent or the child, kill it, restart, let it finish: same transcript.
fn family_cycle(tag: &str, through_child: bool, stdout: Stdout) {
    let area = Area::new(tag);
    let prog = rs::compile_named("tree_family.c", &area.sub("bin"), "tree_family");
    let want = family_reference(&area, &prog, 2);

    let ctl = area.sub("ctl");
    let out = area.file("out");
    let args = [ctl.to_string_lossy().into_owned()];
    let mut kid = match stdout {
        Stdout::File => start_job(&area, &prog, &args, area.path(), &out),
        Stdout::Pipe => start(
            run_cmd(&prog, &args, area.path(), &area.images),
            Out::Pipe,
            &area.file("prog.err"),
            "tree_family under ckpt run, stdout a pipe",
        ),
    };
    let _guard = JobGuard(kid.pid());
    let m = rs::wait_marker(&mut kid, &ctl.join("ready1"))
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    let (parent, child) = (kv(&m, "parent"), kv(&m, "child"));
    assert_eq!(parent, kid.pid(), "the program is the `ckpt run` process");
    let via = if through_child { child } else { parent };
    let img = checkpoint_and_kill_tree(&area, &mut kid, via, parent);
    img.require(&[parent, child])
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    let name = img.dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("ckpt-tree_family-{parent}.")),
        "the tree is named by its root's comm and pid (ckpt-tree_family-{parent}.SEQ.tree), got {name}"
    );
    assert_eq!(
        img.image_pids().len(),
        2,
        "one PID.img per process of the job (parent and child), no more: {}",
        img.listing()
    );
    let before = if stdout == Stdout::Pipe {
        drained(&kid)
    } else {
        Vec::new()
    };

    touch(&ctl.join("go1"));
    touch(&ctl.join("go2"));
    let mut r = match stdout {
        Stdout::File => restart_tree(&area, &img, 1),
        Stdout::Pipe => start(
            restart_cmd(&img.dir, &[], area.path()),
            Out::Pipe,
            &area.file("restart1.err"),
            "ckpt restart #1, stdout a pipe",
        ),
    };
    let st = wait_end(&area, &mut r);
    assert_success(st, "the restarted tree_family", &context(&area));
    let got = match stdout {
        Stdout::File => std::fs::read(&out).unwrap(),
        Stdout::Pipe => {
            let _ = r.wait(Duration::from_secs(5));
            let mut all = before;
            all.extend(r.out_bytes());
            all
        }
    };
    assert_same(&got, &want, &context(&area));
}

/// Parent and child: a shared anonymous counter, a pipe with 48 unread
/// bytes, a socket pair with 30, stdout shared through one offset, the
/// child's exit status 7 reaped after the restart.
#[test]
fn parent_and_child_share_memory_pipe_socketpair_and_status() {
    family_cycle("tfamily", false, Stdout::File);
}

/// `ckpt checkpoint` of the child's pid takes the whole job, named after
/// its root.
#[test]
fn checkpoint_through_a_child_takes_the_whole_job() {
    family_cycle("tfamkid", true, Stdout::File);
}

/// Both processes' stdout is a pipe the test reads: after the restart both
/// write into the restart command's stdout; what came before the
/// checkpoint and after the restart make the uninterrupted transcript.
#[test]
fn stdout_pipe_of_the_test_becomes_the_restart_commands() {
    family_cycle("tfampipe", false, Stdout::Pipe);
}

// ---------------------------------------------------------------------------
// 3. A zombie, a session and a process group.

#[test]
fn zombie_session_and_process_group_come_back() {
    let area = Area::new("tgroup");
    let (prog, want) = with_reference(&area, "tree_group.c", "tree_group");
    assert!(
        !String::from_utf8_lossy(&want).contains("NO"),
        "the uninterrupted tree_group failed a check: {}",
        String::from_utf8_lossy(&want)
    );

    let ctl = area.sub("ctl");
    let out = area.file("out");
    let mut kid = start_job(
        &area,
        &prog,
        &[ctl.to_string_lossy().into_owned()],
        area.path(),
        &out,
    );
    let _guard = JobGuard(kid.pid());
    let m = rs::wait_marker(&mut kid, &ctl.join("ready"))
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    let (parent, a, b, c) = (kv(&m, "parent"), kv(&m, "a"), kv(&m, "b"), kv(&m, "c"));
    assert_eq!(parent, kid.pid());
    // What the checkpoint must see: A a zombie, B leading a group C is in,
    // all in the parent's session.
    let ia = tree::info(a).unwrap_or_else(|| panic!("A ({a}) is gone"));
    assert_eq!(
        ia.state, 'Z',
        "A must be a zombie before the checkpoint: {ia:?}"
    );
    let (ib, ic) = (tree::info(b).unwrap(), tree::info(c).unwrap());
    assert!(
        ib.pgid == b && ic.pgid == b && ib.sid == parent && ic.sid == parent,
        "B and C before the checkpoint: {ib:?} {ic:?}"
    );
    let img = checkpoint_and_kill_tree(&area, &mut kid, parent, parent);
    img.require(&[parent, b, c])
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));

    touch(&ctl.join("go"));
    restart_to_same(&area, &img, &out, &want, "the restarted tree_group");
}

// ---------------------------------------------------------------------------
// 4. A child without the shim: refused, untouched.

#[test]
fn job_with_a_static_child_is_refused_and_runs_on() {
    let area = Area::new("tstatic");
    let bin = area.sub("bin");
    let st_prog = match tree::compile_c_static("tree_static.c", &bin, "tree_static_child") {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED job_with_a_static_child_is_refused_and_runs_on: cannot build a static program here: {why}");
            return;
        }
    };
    let prog = rs::compile_named("tree_static.c", &bin, "tree_static");
    let argv = |ctl: &Path| {
        vec![
            ctl.to_string_lossy().into_owned(),
            "parent".to_string(),
            st_prog.to_string_lossy().into_owned(),
        ]
    };
    let ctlr = area.sub("ctl-ref");
    touch(&ctlr.join("go"));
    let want = uninterrupted(&area, &prog, &argv(&ctlr), area.path(), "plain tree_static");

    let ctl = area.sub("ctl");
    let out = area.file("out");
    let mut kid = start_job(&area, &prog, &argv(&ctl), area.path(), &out);
    let root = kid.pid();
    let _guard = JobGuard(root);
    let m = rs::wait_marker(&mut kid, &ctl.join("ready"))
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    let child = kv(&m, "pid");
    let before = tree::tree_report(root);
    let r = tree::checkpoint_raw(area.path(), root, &area.images).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut checks = common::Checks::new();
    checks.check(
        !r.status.success(),
        format!(
            "`ckpt checkpoint {root}` of a job with a static child must fail, got {}",
            r.status
        ),
    );
    checks.check(
        lines.len() == 1,
        format!("the refusal must be one line on stderr, got {lines:?}"),
    );
    checks.check(
        r.stderr.contains(&child.to_string()),
        format!(
            "the refusal must name the static child {child}: {:?}",
            r.stderr
        ),
    );
    checks.check(
        r.stderr.contains("shim"),
        format!(
            "the refusal must say why: the child does not run ckpt's shim: {:?}",
            r.stderr
        ),
    );
    checks.check(
        r.stdout.trim().is_empty(),
        format!("a refused checkpoint prints no path: {:?}", r.stdout),
    );
    // Untouched: both still there, neither stopped, no tree written.
    for (who, p) in [("root", root), ("static child", child)] {
        match tree::info(p) {
            Some(i) => checks.check(
                i.state != 'T' && i.state != 't' && i.state != 'Z',
                format!("the {who} ({p}) after the refusal: {i:?}"),
            ),
            None => checks.fail(format!("the {who} ({p}) is gone after the refusal")),
        }
    }
    let trees: Vec<String> = std::fs::read_dir(&area.images)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    checks.check(
        trees.is_empty(),
        format!("a refused checkpoint leaves nothing in the images dir: {trees:?}"),
    );
    touch(&ctl.join("go"));
    let st = kid.wait(END).unwrap_or_else(|e| panic!("{e}"));
    checks.eq(
        "the job's exit status after the refusal",
        st.code(),
        Some(0),
    );
    let got = std::fs::read(&out).unwrap();
    checks.check(
        got == want,
        format!(
            "the job's output after the refusal differs: {}",
            common::diff_summary(&got, &want)
        ),
    );
    checks.finish(&format!(
        "checkpoint said: stdout={:?} stderr={:?}\n(before) {before}{}",
        r.stdout,
        r.stderr,
        context(&area)
    ));
    eprintln!("refusal: {}", r.stderr.trim());
}

// ---------------------------------------------------------------------------
// 5. Chains: checkpoint, kill, restart, checkpoint the restarted job again.

/// Checkpoint the job a `ckpt restart` (pid `cmd`) runs: through the
/// command's pid first (as for a single process); should that be refused,
/// through the restored root's pid as seen here (the process whose
/// innermost pid is `inner_root`), saying so.
fn checkpoint_restarted(
    area: &Area,
    cmd: i32,
    inner_root: i32,
) -> Result<(TreeImage, i32), String> {
    match tree::checkpoint_tree(area.path(), cmd, &area.images) {
        Ok(img) => Ok((img, cmd)),
        Err(e) => {
            let Some(outer) = tree::outer_pid(cmd, inner_root) else {
                return Err(format!(
                    "{e}\n(and no process below {cmd} has inner pid {inner_root})\n{}",
                    tree::tree_report(cmd)
                ));
            };
            eprintln!(
                "NOTE: `ckpt checkpoint {cmd}` (the restart command) was refused: {e}\n\
                 trying the restored root's outer pid {outer}"
            );
            tree::checkpoint_tree(area.path(), outer, &area.images)
                .map(|img| (img, outer))
                .map_err(|e2| {
                    format!(
                        "through the restart command: {e}\nthrough the restored root {outer}: {e2}"
                    )
                })
        }
    }
}

#[test]
fn chain_checkpoint_restart_checkpoint_restart() {
    chain("tchain", false);
}

/// As above, the second checkpoint taken through the restored child's pid
/// as seen from outside its namespace: the whole restored job is taken.
#[test]
fn chain_through_the_restored_childs_outer_pid() {
    chain("tchainkid", true);
}

fn chain(tag: &str, through_restored_child: bool) {
    let area = Area::new(tag);
    let prog = rs::compile_named("tree_family.c", &area.sub("bin"), "tree_family");
    let want = family_reference(&area, &prog, 2);

    let ctl = area.sub("ctl");
    let out = area.file("out");
    let mut kid = start_job(
        &area,
        &prog,
        &[ctl.to_string_lossy().into_owned()],
        area.path(),
        &out,
    );
    let _guard = JobGuard(kid.pid());
    let m = rs::wait_marker(&mut kid, &ctl.join("ready1"))
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    let (parent, child) = (kv(&m, "parent"), kv(&m, "child"));
    let img1 = checkpoint_and_kill_tree(&area, &mut kid, parent, parent);
    img1.require(&[parent, child])
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));

    // First restart: let round 1 finish, stop at round 2.
    let mut r1 = restart_tree(&area, &img1, 1);
    let _guard1 = JobGuard(r1.pid());
    touch(&ctl.join("go1"));
    let m2 = rs::wait_marker(&mut r1, &ctl.join("ready2"))
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    assert_eq!(
        (kv(&m2, "parent"), kv(&m2, "child")),
        (parent, child),
        "the restored processes see the pids they had"
    );
    let cmd = r1.pid();
    let before = tree::tree_report(cmd);
    let second = if through_restored_child {
        let outer = tree::outer_pid(cmd, child)
            .unwrap_or_else(|| panic!("no process below {cmd} has inner pid {child}\n{before}"));
        tree::checkpoint_tree(area.path(), outer, &area.images).map(|img| (img, outer))
    } else {
        checkpoint_restarted(&area, cmd, parent)
    };
    let (img2, via) = second.unwrap_or_else(|e| {
        panic!(
            "second checkpoint: {e}\n(before) {before}{}",
            context(&area)
        )
    });
    assert_ne!(
        img2.dir, img1.dir,
        "the second checkpoint is a tree of its own"
    );
    assert_eq!(
        img2.image_pids().len(),
        2,
        "the restarted job (checkpointed through {via}) is two processes, parent and child, not ckpt's own: {}",
        img2.listing()
    );
    if let Some(s) = r1.exited() {
        panic!(
            "the restarted job ended ({s}) right after its checkpoint\n{}",
            context(&area)
        );
    }
    tree::kill_job(cmd).unwrap_or_else(|e| panic!("{e}"));
    r1.kill();

    touch(&ctl.join("go2"));
    let mut r2 = restart_tree(&area, &img2, 2);
    let st = wait_end(&area, &mut r2);
    assert_success(st, "the twice restarted tree_family", &context(&area));
    assert_same(&std::fs::read(&out).unwrap(), &want, &context(&area));
}

// ---------------------------------------------------------------------------
// 6. python3 multiprocessing.Pool(2).

const POOL_PY: &str = r#"
import multiprocessing as mp, sys, time

def sq(x):
    return x * x

if __name__ == "__main__":
    with mp.Pool(2) as pool:
        for i in range(40):
            print(i, pool.apply(sq, (i,)), sum(pool.map(sq, range(i))), flush=True)
            time.sleep(0.05)
    print("done", flush=True)
"#;

/// A Pool of two forked workers (pipes, a semaphore in unlinked shared
/// memory, the parent's handler threads): checkpointed mid-way, killed,
/// restarted, same output.
#[test]
fn python_multiprocessing_pool_continues() {
    let area = Area::new("tpool");
    let script = area.file("pool.py");
    std::fs::write(&script, POOL_PY).unwrap();
    let args = vec![script.to_string_lossy().into_owned()];
    same_after_restart(&area, &common::python3(), &args, "pool.py", |d| {
        rs::lines(d) >= 12
    });
}

/// The forkserver start method (the default on Linux from Python 3.14):
/// the workers are forked by a server that listens on a unix socket in
/// the program's own temporary directory. Checkpointed mid-way and left
/// to end (which removes that directory and its semaphores' files), the
/// job restarts: its directory is made again (said, with its mode), each
/// semaphore's file once (said once, not by every process mapping it),
/// and the output is the uninterrupted run's. Before, the restart stopped: "cannot listen
/// again where socket 11 listened".
#[test]
fn a_forkserver_pool_restarts_after_the_job_removed_its_directory() {
    let area = Area::new("tforksrv");
    let script = area.file("pool.py");
    std::fs::write(
        &script,
        POOL_PY.replace(
            "if __name__ == \"__main__\":\n",
            "if __name__ == \"__main__\":\n    mp.set_start_method(\"forkserver\")\n",
        ),
    )
    .unwrap();
    let err = checkpoint_let_end_restart(&area, &script, "forkserver pool", 12, 4);
    assert!(
        err.contains("was gone (removed since the checkpoint): made again, mode 700"),
        "the directory made again was not said: {err}"
    );
    // Connections accepted from the listener there come back with their
    // names (its directory made again before them).
    assert!(
        !err.contains("connected but unnamed"),
        "a connection lost its name: {err}"
    );
    // Its semaphores' files (gone too) are made again once, and said
    // once: not again by each process that maps them.
    assert!(
        !err.contains("is not the file the program mapped"),
        "a file this restart made was taken for another: {err}"
    );
}

/// Run the python `script` plainly (the reference), then under `ckpt run`
/// until it printed `lines` lines; checkpoint the job (at least
/// `processes` processes), let it end, restart it: its output is the
/// reference both times. What the restart said.
fn checkpoint_let_end_restart(
    area: &Area,
    script: &Path,
    label: &str,
    lines: usize,
    processes: usize,
) -> String {
    let python = common::python3();
    let args = vec![script.to_string_lossy().into_owned()];
    let want = uninterrupted(area, &python, &args, area.path(), &format!("plain {label}"));
    let out = area.file("out");
    let mut kid = start_job(area, &python, &args, area.path(), &out);
    let root = kid.pid();
    let _guard = JobGuard(root);
    rs::wait_file(
        &mut kid,
        &out,
        |d| rs::lines(d) >= lines,
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", context(area)));
    let img = tree::checkpoint_tree(area.path(), root, &area.images)
        .unwrap_or_else(|e| panic!("{e}\n{}", context(area)));
    assert!(img.image_pids().len() >= processes, "{}", img.listing());
    let st = kid.wait(END).unwrap_or_else(|e| panic!("{e}"));
    assert_success(st, &format!("the checkpointed {label}"), &context(area));
    assert_same(&std::fs::read(&out).unwrap(), &want, &context(area));

    let mut r = restart_tree(area, &img, 1);
    let st = wait_end(area, &mut r);
    assert_success(
        st,
        &format!("the {label} restarted after it ended"),
        &context(area),
    );
    assert_same(&std::fs::read(&out).unwrap(), &want, &context(area));
    read(&area.file("restart1.err"))
}

/// A python multiprocessing Manager (a server process listening in the
/// program's own temporary directory, the main process and its workers
/// connected to it), checkpointed mid-way and left to end (which removes
/// that directory): the restart makes the directory again before the
/// connections accepted there, which come back with their names, and the
/// output is the uninterrupted run's. Before, each such connection was
/// said to "come back connected but unnamed".
#[test]
fn a_manager_job_restarts_after_it_removed_its_directory() {
    let area = Area::new("tmanager");
    let script = common::programs_dir().join("tree_manager.py");
    let err = checkpoint_let_end_restart(&area, &script, "manager job", 3, 2);
    assert!(
        !err.contains("connected but unnamed") && !err.contains("warning: descriptor"),
        "{err}"
    );
}

/// Run `prog args` plainly (the reference output), then under `ckpt run`:
/// once its output satisfies `ready`, checkpoint the job, check every
/// process of it is in the image, kill it, restart the tree; the restarted
/// job ends well and its output equals the reference. Returns what the
/// checkpoint said.
fn same_after_restart(
    area: &Area,
    prog: &Path,
    args: &[String],
    label: &str,
    ready: impl Fn(&[u8]) -> bool,
) -> String {
    let want = uninterrupted(area, prog, args, area.path(), &format!("plain {label}"));

    let out = area.file("out");
    let mut kid = start_job(area, prog, args, area.path(), &out);
    let root = kid.pid();
    let _guard = JobGuard(root);
    rs::wait_file(&mut kid, &out, ready, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", context(area)));
    // Every live process has its image (a zombie is in the manifest).
    let mut all = vec![root];
    all.extend(
        tree::job_descendants(root)
            .into_iter()
            .filter(|&p| tree::info(p).is_some_and(|i| i.state != 'Z')),
    );
    let img = checkpoint_and_kill_tree(area, &mut kid, root, root);
    img.require(&all)
        .unwrap_or_else(|e| panic!("{e}\n{}", context(area)));

    restart_to_same(area, &img, &out, &want, &format!("the restarted {label}"));
    img.stderr
}

/// [`same_after_restart`] of the C program `src` (in tests/programs),
/// checkpointed once it printed `lines` lines; the restart must not warn
/// about `kind` ("warning: KIND"). Returns what the checkpoint said.
fn c_same_after_restart(tag: &str, src: &str, args: &[String], lines: usize, kind: &str) -> String {
    let area = Area::new(tag);
    let prog = common::compile_c(src, area.path());
    let said = same_after_restart(&area, &prog, args, src, |d| rs::lines(d) >= lines);
    let err = read(&area.file("restart1.err"));
    assert!(
        !err.contains(&format!("warning: {kind}")),
        "a {kind} warning at restart: {err}"
    );
    said
}

// ---------------------------------------------------------------------------
// 7. make -j2.

const MAKEFILE: &str = "T := $(addprefix t,$(shell seq 1 24))\n\
all.txt: $(T)\n\
\tcat $(T) > $@\n\
t%:\n\
\tsleep 0.15; echo target $@ > $@\n";

/// make -j2 over two dozen targets that each sleep and write a file
/// (make, its jobserver pipe, a shell and a sleep per running recipe):
/// checkpointed with a third of them done, killed 0.4 s later (make has
/// printed more recipes by then, into its O_APPEND stdout: the restart must
/// cut that back), restarted; all.txt and make's own output are those of
/// an uninterrupted run.
#[test]
fn make_j2_finishes_after_restart() {
    let area = Area::new("tmake");
    let make = which("make");
    let args = vec!["-j2".to_string()];
    let refdir = area.sub("ref");
    std::fs::write(refdir.join("Makefile"), MAKEFILE).unwrap();
    let st = reference(
        plain_cmd(&make, &args, &refdir),
        &area.file("ref.out"),
        &area.file("ref.err"),
        "plain make -j2",
    );
    assert_success(st, "the uninterrupted make", &read(&area.file("ref.err")));
    let want_all: String = (1..=24).map(|i| format!("target t{i}\n")).collect();
    assert_same(
        &std::fs::read(refdir.join("all.txt")).unwrap(),
        want_all.as_bytes(),
        "uninterrupted make",
    );
    let want_out = std::fs::read(area.file("ref.out")).unwrap();

    let run = area.sub("run");
    std::fs::write(run.join("Makefile"), MAKEFILE).unwrap();
    let out = area.file("out");
    let mut kid = start_job(&area, &make, &args, &run, &out);
    let root = kid.pid();
    let _guard = JobGuard(root);
    let t8 = run.join("t8");
    rs::wait_file(&mut kid, &t8, |d| !d.is_empty(), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    // Killed 0.4 s after the checkpoint: make has started more recipes and
    // printed them (its stdout is O_APPEND: make sets it), which the
    // restart must cut back.
    // What make printed before the checkpoint was asked for: it held at
    // least that much when frozen (it goes on writing while the command
    // runs, so the size after the command may be more than the image's).
    let size_at_checkpoint = std::fs::metadata(&out).unwrap().len();
    let img = tree::checkpoint_tree(area.path(), root, &area.images)
        .unwrap_or_else(|e| panic!("{e}\n{}{}", tree::tree_report(root), context(&area)));
    std::thread::sleep(Duration::from_millis(400));
    tree::kill_job(root).unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    img.require(&[root])
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    eprintln!(
        "make's stdout: {size_at_checkpoint} bytes at the checkpoint, {} when killed",
        std::fs::metadata(&out).unwrap().len()
    );

    let mut r = restart_tree(&area, &img, 1);
    let st = wait_end(&area, &mut r);
    assert!(
        st.success(),
        "the restarted make ended with {st} (code {:?}, signal {:?})\n{}",
        st.code(),
        st.signal(),
        context(&area)
    );
    assert_same(
        &std::fs::read(run.join("all.txt")).unwrap_or_default(),
        want_all.as_bytes(),
        &format!("all.txt\n{}", context(&area)),
    );
    // make's stdout cannot equal the uninterrupted run's: targets the
    // killed run built after the checkpoint are still on disk (files are
    // not part of the image) and the restarted make finds them up to date
    // and does not print their recipes. What was printed up to the
    // checkpoint stays, what was printed after it is cut back.
    let got = std::fs::read(&out).unwrap();
    assert!(
        got.len() as u64 >= size_at_checkpoint
            && want_out.starts_with(&got[..size_at_checkpoint as usize]),
        "make's stdout lost what it held at the checkpoint\n{}",
        context(&area)
    );
}

// ---------------------------------------------------------------------------
// 8. Checkpoints while bash forks and execs as fast as it can.

/// bash running /usr/bin/echo a thousand times (a fork and an exec every
/// few ms): checkpoints one after another catch children between fork and
/// exec, and inside exec. Each must succeed (a tree; or a single image
/// should bash have had no child at that moment), never refuse a child of
/// the job as one without the shim; the job goes on unharmed, and a restart
/// of the last tree (after the job ended: its output file is cut back to
/// the checkpoint's size) writes the rest exactly.
#[test]
fn checkpoints_during_a_fork_exec_storm() {
    let area = Area::new("tstorm");
    let bash = which("bash");
    let echo = which("echo");
    // A daemon's double fork first: a `sleep` that leaves the job (its
    // parent subshell ends), said by checkpoints while it runs, while the
    // storm's children, forked and gone all the time, never are (they
    // were, now and then, when counted a moment after the job).
    let script = format!(
        "(sleep 4 &); for i in $(seq 1 1000); do {} line$i; done > out",
        echo.display()
    );
    let args = vec!["-c".to_string(), script];
    let want: String = (1..=1000).map(|i| format!("line{i}\n")).collect();

    let run = area.sub("run");
    let mut kid = start_job(&area, &bash, &args, &run, &area.file("job.stdout"));
    let root = kid.pid();
    let _guard = JobGuard(root);
    let mut trees = Vec::new();
    let mut singles = 0;
    let mut fails = Vec::new();
    std::thread::sleep(Duration::from_millis(300));
    while kid.exited().is_none() && trees.len() + singles < 8 {
        let r = tree::checkpoint_raw(area.path(), root, &area.images)
            .unwrap_or_else(|e| panic!("{e}\n{}", tree::tree_report(root)));
        let ended = kid.exited().is_some();
        let left = "was started by this job but left it";
        let strays: Vec<&str> = r.stderr.lines().filter(|l| l.contains(left)).collect();
        let first = trees.len() + singles == 0;
        if r.status.success()
            && (strays.len() > 1
                || strays.iter().any(|l| !l.contains("(sleep)"))
                || (first && strays.is_empty()))
        {
            fails.push(format!(
                "checkpoint #{}: want one line for the sleep that left the job (the first one \
                 at least), and no other: {:?}",
                trees.len() + singles + fails.len() + 1,
                r.stderr
            ));
        }
        let path = PathBuf::from(r.stdout.trim());
        if r.status.success() && path.is_dir() {
            trees.push(TreeImage {
                dir: path,
                stderr: r.stderr.clone(),
            });
        } else if r.status.success() && path.is_file() {
            singles += 1;
        } else if !ended {
            fails.push(format!(
                "checkpoint #{} failed ({}) while the job ran: stdout={:?} stderr={:?}",
                trees.len() + singles + fails.len() + 1,
                r.status,
                r.stdout,
                r.stderr
            ));
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let st = kid.wait(END).unwrap_or_else(|e| panic!("{e}"));
    let mut checks = common::Checks::new();
    checks.check(fails.is_empty(), format!("failed checkpoints: {fails:#?}"));
    checks.check(
        st.success(),
        format!("the checkpointed job ended with {st}"),
    );
    let got = std::fs::read(run.join("out")).unwrap_or_default();
    checks.check(
        got == want.as_bytes(),
        format!(
            "the job's output after {} checkpoints differs from an uninterrupted run's: {}",
            trees.len() + singles,
            common::diff_summary(&got, want.as_bytes())
        ),
    );
    checks.check(
        trees.len() >= 2,
        format!(
            "want at least 2 tree checkpoints while the job ran, got {} trees and {singles} single images",
            trees.len()
        ),
    );
    checks.finish(&context(&area));
    eprintln!("{} trees, {singles} single images", trees.len());

    let last = trees.last().unwrap();
    let mut r = restart_tree(&area, last, 1);
    let st = wait_end(&area, &mut r);
    assert_success(st, "the restarted storm", &context(&area));
    assert_same(
        &std::fs::read(run.join("out")).unwrap_or_default(),
        want.as_bytes(),
        &format!("run/out after restart\n{}", context(&area)),
    );
}

// ---------------------------------------------------------------------------
// 9. A checkpoint leaves the job as it was.

/// tree_family checkpointed at its first stop and not killed: it runs to
/// its end with the uninterrupted transcript (pipe and socket bytes, the
/// shared counter, the child's status all untouched by the freeze); then
/// the tree, restarted after the job is gone (stdout cut back to its size
/// at the checkpoint), writes the same transcript again.
#[test]
fn checkpoint_leaves_the_job_unharmed_and_restarts_after_it_ended() {
    let area = Area::new("tunharmed");
    let FamilyAtStop {
        want,
        ctl,
        out,
        mut kid,
        img,
        _guard,
    } = family_checkpointed_at_first_stop(&area);
    touch(&ctl.join("go1"));
    touch(&ctl.join("go2"));
    let st = kid.wait(END).unwrap_or_else(|e| panic!("{e}"));
    assert_success(
        st,
        "the checkpointed (not killed) tree_family",
        &context(&area),
    );
    assert_same(
        &std::fs::read(&out).unwrap(),
        &want,
        &format!(
            "the job that was checkpointed and went on\n{}",
            context(&area)
        ),
    );

    restart_to_same(
        &area,
        &img,
        &out,
        &want,
        "tree_family restarted after it ended",
    );
}

/// tree_family under ckpt, checkpointed (not killed) at its first stop.
struct FamilyAtStop {
    /// The uninterrupted transcript.
    want: Vec<u8>,
    ctl: PathBuf,
    out: PathBuf,
    kid: Kid,
    img: TreeImage,
    _guard: JobGuard,
}

fn family_checkpointed_at_first_stop(area: &Area) -> FamilyAtStop {
    let prog = rs::compile_named("tree_family.c", &area.sub("bin"), "tree_family");
    let want = family_reference(area, &prog, 2);
    let ctl = area.sub("ctl");
    let out = area.file("out");
    let mut kid = start_job(
        area,
        &prog,
        &[ctl.to_string_lossy().into_owned()],
        area.path(),
        &out,
    );
    let root = kid.pid();
    let guard = JobGuard(root);
    let m = rs::wait_marker(&mut kid, &ctl.join("ready1"))
        .unwrap_or_else(|e| panic!("{e}\n{}", context(area)));
    let child = kv(&m, "child");
    let img = tree::checkpoint_tree(area.path(), root, &area.images)
        .unwrap_or_else(|e| panic!("{e}\n{}{}", tree::tree_report(root), context(area)));
    img.require(&[root, child])
        .unwrap_or_else(|e| panic!("{e}\n{}", context(area)));
    FamilyAtStop {
        want,
        ctl,
        out,
        kid,
        img,
        _guard: guard,
    }
}

// ---------------------------------------------------------------------------
// 10. What the killed job wrote after the checkpoint is cut back.

/// tree_family checkpointed at its first stop, then let go on through round
/// 1 (writing ten more lines to its stdout file, shared by parent and
/// child) before it is killed: the restart cuts that file back to its size
/// at the checkpoint, saying so, and the transcript is the uninterrupted
/// one, no line twice.
#[test]
fn output_written_after_the_checkpoint_is_cut_back() {
    let area = Area::new("tcutback");
    let FamilyAtStop {
        want,
        ctl,
        out,
        mut kid,
        img,
        _guard,
    } = family_checkpointed_at_first_stop(&area);
    let size_at_checkpoint = std::fs::metadata(&out).unwrap().len();
    touch(&ctl.join("go1"));
    rs::wait_marker(&mut kid, &ctl.join("ready2"))
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    let size_killed = std::fs::metadata(&out).unwrap().len();
    assert!(size_killed > size_at_checkpoint, "round 1 wrote nothing?");
    tree::kill_job(kid.pid()).unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    std::fs::remove_file(ctl.join("ready2")).unwrap();

    touch(&ctl.join("go2"));
    let mut r = restart_tree(&area, &img, 1);
    let st = wait_end(&area, &mut r);
    assert_success(st, "the restarted tree_family", &context(&area));
    assert_same(
        &std::fs::read(&out).unwrap(),
        &want,
        &format!(
            "(stdout file: {size_at_checkpoint} bytes at the checkpoint, {size_killed} when killed)\n{}",
            context(&area)
        ),
    );
    let said = read(&area.file("restart1.err"));
    assert!(
        said.contains("cut back") && said.contains(&out.to_string_lossy().into_owned()),
        "the restart must name the file it cut back ({}): {said}",
        out.display()
    );
}

// ---------------------------------------------------------------------------
// 11. What a tree image holds, as `ckpt inspect` and `ckpt list` tell it.

/// tree_group checkpointed (not killed): `ckpt inspect TREE --json` lists
/// the four processes with their parents, A as a zombie that exited with
/// 3, B leading the group C is in; `ckpt list` shows the tree as whole;
/// the job then finishes as if nothing happened.
#[test]
fn inspect_and_list_show_the_tree() {
    let area = Area::new("tinspect");
    let prog = rs::compile_named("tree_group.c", &area.sub("bin"), "tree_group");
    let ctl = area.sub("ctl");
    let out = area.file("out");
    let mut kid = start_job(
        &area,
        &prog,
        &[ctl.to_string_lossy().into_owned()],
        area.path(),
        &out,
    );
    let _guard = JobGuard(kid.pid());
    let m = rs::wait_marker(&mut kid, &ctl.join("ready"))
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    let (parent, a, b, c) = (kv(&m, "parent"), kv(&m, "a"), kv(&m, "b"), kv(&m, "c"));
    let img = tree::checkpoint_tree(area.path(), parent, &area.images)
        .unwrap_or_else(|e| panic!("{e}\n{}{}", tree::tree_report(parent), context(&area)));
    touch(&ctl.join("go"));
    let st = kid.wait(END).unwrap_or_else(|e| panic!("{e}"));
    assert_success(st, "the checkpointed tree_group", &context(&area));

    let mut checks = common::Checks::new();
    match common::inspect_json(&img.dir) {
        Err(e) => checks.fail(format!("ckpt inspect of the tree: {e}")),
        Ok(v) => {
            let procs = common::arr(&v, "processes");
            let find = |pid: i32| {
                procs
                    .iter()
                    .find(|p| p["pid"].as_i64() == Some(pid as i64))
                    .copied()
            };
            for (who, pid, ppid) in [("A", a, parent), ("B", b, parent), ("C", c, parent)] {
                match find(pid) {
                    None => checks.fail(format!("inspect lists no {who} ({pid})")),
                    Some(p) => checks.num(format!("{who}'s parent"), &p["ppid"], ppid as i64),
                }
            }
            checks.check(
                find(parent).is_some(),
                format!("inspect lists no root ({parent})"),
            );
            if let Some(pa) = find(a) {
                let state = pa["state"].as_str().unwrap_or("");
                checks.check(
                    state.contains("zombie") && state.contains('3'),
                    format!("A is a zombie that exited with 3: state {state:?}"),
                );
            }
            for (who, pid) in [("B", b), ("C", c)] {
                if let Some(p) = find(pid) {
                    checks.num(format!("{who}'s process group"), &p["pgid"], b as i64);
                }
            }
            checks.eq("processes listed", procs.len(), 4);
        }
    }
    let listed = common::ckpt(area.path(), ["list".as_ref(), area.images.as_os_str()]);
    let name = img.dir.file_name().unwrap().to_string_lossy().into_owned();
    checks.check(
        listed.status.success() && listed.stdout.contains(&name) && listed.stdout.contains("whole"),
        format!(
            "ckpt list shows the tree {name} as whole: {}{}",
            listed.stdout, listed.stderr
        ),
    );
    checks.finish(&format!("{}\n{}", img.listing(), context(&area)));
}

// ---------------------------------------------------------------------------
// 12. Periodic checkpoints of a tree.

/// tree_family under `ckpt run --interval 200ms`: the periodic checkpoints
/// of its root take the whole tree once the child exists; killed after
/// one such tree, `ckpt restart IMAGES --latest` brings it back and the
/// transcript is the uninterrupted one.
/// A program's `wait()` sees only its own children while periodic
/// checkpoints of its job run (the `ckpt checkpoint` command the shim
/// starts for a tree is not its child: an exec would have given it an
/// exit signal `wait()` sees), and each child raises one SIGCHLD.
#[test]
fn periodic_tree_checkpoints_are_not_seen_by_the_programs_waits() {
    let area = Area::new("tperiodic-wait");
    let prog = rs::compile_named("periodic_wait.c", &area.sub("bin"), "periodic_wait");
    common::require_shim();
    let out = std::process::Command::new(common::ckpt_bin())
        .args(["run", "--interval", "100ms", "--dir"])
        .arg(&area.images)
        .arg("--")
        .arg(&prog)
        .current_dir(area.path())
        .output()
        .expect("ckpt run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.ends_with("done\n") && !text.contains("bad"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trees = std::fs::read_dir(&area.images)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "tree"))
                .count()
        })
        .unwrap_or(0);
    assert!(trees > 0, "no tree checkpoint was taken: {text}");
}

/// `ckpt run --interval I --keep K --dir IMAGES -- PROG ARGS` in `cwd`
/// (`every`: I and K), started with its stdout in the area's `out` and
/// its stderr in `prog.err`.
fn start_periodic<S: AsRef<std::ffi::OsStr>>(
    area: &Area,
    every: [&str; 2],
    prog: &Path,
    args: &[S],
    cwd: &Path,
    label: &str,
) -> Kid {
    let mut cmd = std::process::Command::new(common::ckpt_bin());
    cmd.args(["run", "--interval", every[0], "--keep", every[1], "--dir"])
        .arg(&area.images)
        .arg("--")
        .arg(prog)
        .args(args)
        .current_dir(cwd);
    common::require_shim();
    start(
        cmd,
        Out::File(&area.file("out")),
        &area.file("prog.err"),
        label,
    )
}

#[test]
fn periodic_checkpoints_take_the_tree_and_restart_latest() {
    let area = Area::new("tperiodic");
    let prog = rs::compile_named("tree_family.c", &area.sub("bin"), "tree_family");
    let want = family_reference(&area, &prog, 2);
    let ctl = area.sub("ctl");
    let out = area.file("out");
    let mut kid = start_periodic(
        &area,
        ["200ms", "2"],
        &prog,
        &[ctl.as_os_str()],
        area.path(),
        "tree_family --interval 200ms",
    );
    let root = kid.pid();
    let _guard = JobGuard(root);
    let m = rs::wait_marker(&mut kid, &ctl.join("ready1"))
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    let child = kv(&m, "child");
    // Wait for a tree holding both processes written after the stop.
    let t = Instant::now();
    let after = std::time::SystemTime::now();
    let tree_dir = loop {
        let found = std::fs::read_dir(&area.images).ok().and_then(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "tree")
                        && !p.file_name().unwrap().to_string_lossy().starts_with('.')
                        && p.metadata()
                            .and_then(|m| m.modified())
                            .is_ok_and(|m| m > after)
                })
                .find(|p| {
                    let have = tree::image_pids(p);
                    have.contains(&root) && have.contains(&child)
                })
        });
        if let Some(d) = found {
            break d;
        }
        if let Some(s) = kid.exited() {
            panic!(
                "the job ended ({s}) before any periodic tree\n{}",
                context(&area)
            );
        }
        if t.elapsed() > Duration::from_secs(10) {
            let names: Vec<String> = std::fs::read_dir(&area.images)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            panic!(
                "no periodic tree with {root} and {child} within 10 s of the stop; images dir: {names:?}\n{}{}",
                tree::tree_report(root),
                context(&area)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("periodic tree: {}", tree_dir.display());
    tree::kill_job(root).unwrap_or_else(|e| panic!("{e}"));
    kid.kill();

    touch(&ctl.join("go1"));
    touch(&ctl.join("go2"));
    let mut r = start(
        restart_cmd(&area.images, &["--latest"], area.path()),
        Out::File(&area.file("restart1.out")),
        &area.file("restart1.err"),
        "ckpt restart IMAGES --latest",
    );
    let st = wait_end(&area, &mut r);
    assert_success(
        st,
        "tree_family restarted from its latest periodic tree",
        &context(&area),
    );
    assert_same(&std::fs::read(&out).unwrap(), &want, &context(&area));
}

// ---------------------------------------------------------------------------
// 13. A wide tree.

// Each sleep lasts 5 s: under CI's load the twelve took so long to start
// that the first had ended (a zombie in the image, rightly) before the
// checkpoint froze the job, and the test wanted its image.
const WIDE: &str = "for i in $(seq 1 12); do (sleep 5; echo child $i > f$i) & done; wait; \
                    for i in $(seq 1 12); do cat f$i; done; echo all done";

/// bash with twelve background subshells, each waiting on its own sleep
/// (25 processes, more than a datagram queue holds): checkpointed while
/// all sleep, killed, restarted; every subshell finishes and bash, having
/// waited for them all, prints what they wrote.
#[test]
fn wide_tree_of_two_dozen_processes() {
    let area = Area::new("twide");
    let bash = which("bash");
    let args = vec!["-c".to_string(), WIDE.to_string()];
    let refdir = area.sub("ref");
    let want = uninterrupted(&area, &bash, &args, &refdir, "plain wide bash");

    let run = area.sub("run");
    let out = area.file("out");
    let mut kid = start_job(&area, &bash, &args, &run, &out);
    let root = kid.pid();
    let _guard = JobGuard(root);
    // Wait until the twelve sleeps run.
    let t = Instant::now();
    let procs = loop {
        let d = tree::job_descendants(root);
        let sleeps = d
            .iter()
            .filter(|&&p| tree::info(p).is_some_and(|i| i.comm == "sleep"))
            .count();
        if sleeps == 12 {
            break d;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10) && kid.exited().is_none(),
            "the twelve sleeps did not start\n{}{}",
            tree::tree_report(root),
            context(&area)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let img = checkpoint_and_kill_tree(&area, &mut kid, root, root);
    let mut all = vec![root];
    all.extend(&procs);
    img.require(&all)
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));

    restart_to_same(&area, &img, &out, &want, "the restarted wide tree");
}

// ---------------------------------------------------------------------------
// Unix sockets between processes of the job.

/// A server and its client in one job (a socket bound to a path, or to an
/// abstract name, listening in both processes; the accepted connection
/// with lines queued unread): checkpointed mid-stream, killed, restarted;
/// the connection carries on, and the listening socket accepts a second
/// client — the same output as an uninterrupted run.
#[test]
fn unix_socket_server_and_client_come_back_connected() {
    for mode in ["path", "abstract"] {
        let area = Area::new(&format!("tsrv{}", &mode[..1]));
        let prog = common::compile_c("tree_server.c", area.path());
        let name = if mode == "path" {
            area.file("sock").to_string_lossy().into_owned()
        } else {
            format!("ckpt-test-{}-{}", std::process::id(), mode)
        };
        let args = vec![name, mode.to_string()];
        same_after_restart(&area, &prog, &args, &format!("tree_server ({mode})"), |d| {
            rs::lines(d) >= 4
        });
    }
}

/// A child's stdin and stdout made by socketpair (as node's child_process
/// makes them) across exec, the parent's end of its stdin closed with a
/// payload unread in it at the checkpoint: the restarted child reads the
/// payload, then end of file. Before, a socket at 0 was taken for the
/// restart command's own stdin: the payload was lost without a word.
#[test]
fn a_childs_stdin_socket_whose_writer_closed_keeps_its_bytes() {
    c_same_after_restart("tstdsock", "tree_stdin_socket.c", &[], 5, "descriptor");
}

/// A TCP listener, a bound UDP socket and a semaphore eventfd passed to a
/// child across exec (tests/programs/tree_tcp_listener.py), the child
/// serving the parent's connections and closing each first: the restart
/// makes each once for both processes, listening again over the killed
/// run's TIME_WAIT connections (the program set SO_REUSEADDR), and the
/// transcript is the uninterrupted one. Before, the restart's check of the
/// port ran after the tree had made the listener, found the port taken,
/// and refused.
#[test]
fn a_tcp_listener_passed_across_exec_listens_again() {
    let area = Area::new("ttcplisten");
    let script = common::programs_dir().join("tree_tcp_listener.py");
    let args = vec![script.to_string_lossy().into_owned()];
    same_after_restart(
        &area,
        &common::python3(),
        &args,
        "tree_tcp_listener.py",
        |d| rs::lines(d) >= 5,
    );
}

/// A named FIFO between a parent and its child, each having opened it by
/// path, with bytes in it at the checkpoint: it is opened again once for
/// both, with those bytes, and the transcript is the uninterrupted one.
#[test]
fn named_fifo_between_processes_keeps_its_bytes() {
    let dir = common::TempDir::new("tfifo-path");
    let fifo = dir.path().join("fifo").to_string_lossy().into_owned();
    c_same_after_restart("tfifo", "tree_fifo.c", &[fifo], 3, "FIFO");
}

/// An epoll instance inherited across fork, watching a pipe between the
/// two processes: one instance again after the restart, watching the
/// same pipe (each event reaches the parent).
#[test]
fn epoll_shared_across_fork_still_sees_the_pipe() {
    let said = c_same_after_restart("tepoll", "tree_epoll.c", &[], 4, "epoll");
    // The child's copy watches a file only its parent holds: one epoll,
    // the parent adds the watch; nothing is lost, nothing to say.
    assert!(!said.contains("epoll"), "the checkpoint said: {said}");
}

/// A supervisor reading SIGCHLD through a signalfd in an epoll instance
/// its workers inherit with it (tests/programs/tree_signalfd_supervisor.c),
/// checkpointed as its first worker finished: after the restart the
/// supervisor's SIGCHLD still wakes its epoll, and it reaps every worker
/// as an uninterrupted run does. Before, a worker could add the signalfd's
/// watch to the one epoll made again, and the kernel woke it for that
/// worker's signals only: the supervisor waited 5 s and said "timeout".
#[test]
fn a_supervisors_signalfd_in_an_epoll_its_workers_inherit_still_wakes_it() {
    c_same_after_restart("tsigfd", "tree_signalfd_supervisor.c", &[], 1, "epoll");
}

/// A System V segment, removed once attached, shared by parent and child:
/// one segment again after the restart, at its id, both adding to the
/// same counter.
#[test]
fn system_v_segment_shared_across_fork_is_one_again() {
    c_same_after_restart("tshm", "tree_sysv_shm.c", &[], 4, "System V");
}

/// A datagram pair across the job's processes with an empty message
/// queued: the checkpoint saves it (the restarted parent reads "a", the
/// empty one, "b"), and says in one line that a later checkpoint taken
/// before it is read will not have it (the kernel hides an empty message
/// from every peek after the first, and the other end is in another
/// process: it cannot be put back fresh). Issue 9: never a silent loss.
/// A stream pair across the same two processes, its child end shut down
/// for sending after "bye": the restarted parent reads "bye", then end of
/// file (it waited forever before shut-down ends came back shut).
#[test]
fn an_empty_datagram_across_processes_is_saved_and_its_later_loss_said() {
    let area = Area::new("tree-empty-dgram");
    let (prog, want) = with_reference(&area, "tree_empty_dgram.c", "tree_empty_dgram");
    assert!(
        String::from_utf8_lossy(&want).contains("message 1: 0 bytes")
            && String::from_utf8_lossy(&want).contains("stream read 1: 0 (ok)"),
        "{want:?}"
    );
    ready_checkpoint_go_restart(&area, &prog, &want, &|img| {
        let said: Vec<&str> = img
            .stderr
            .lines()
            .filter(|l| l.contains("empty message"))
            .collect();
        assert_eq!(
            said.len(),
            1,
            "the checkpoint must say once that the empty message is hidden from later ones: {:?}",
            img.stderr
        );
    });
}

/// Process descriptors (pidfds) a process of a job holds, of another of
/// the job's processes and of itself, come back as pidfds of the same
/// processes: the restarted parent signals and reaps its child through
/// one. Before, each came back as /dev/null (a "kind not met" warning).
#[test]
fn pidfds_of_the_jobs_processes_come_back() {
    let area = Area::new("tree-pidfd");
    let (prog, want) = with_reference(&area, "tree_pidfd.c", "tree_pidfd");
    assert!(
        String::from_utf8_lossy(&want)
            .contains("reaped through the pidfd: 0, the child 1, killed by signal 15"),
        "{want:?}"
    );
    ready_checkpoint_go_restart(&area, &prog, &want, &|img| {
        assert!(
            !img.stderr.contains("pidfd") && !img.stderr.contains("anon_inode"),
            "the checkpoint warned: {}",
            img.stderr
        );
    });
}

/// POSIX message queues a job's processes share come back as one queue
/// each, holding what both processes queued: a named one and one unlinked
/// (before, the unlinked one came back as a queue per process, each with
/// every message, and what the child sent after the restart never reached
/// the parent).
#[test]
fn message_queues_the_jobs_processes_share_come_back_one() {
    let area = Area::new("tree-mqueue");
    let (prog, want) = with_reference(&area, "tree_mqueue.c", "tree_mqueue");
    let text = String::from_utf8_lossy(&want);
    assert!(
        text.contains("unlinked: \"child after\"") && text.contains("named: \"child after\""),
        "{text}"
    );
    ready_checkpoint_go_restart(&area, &prog, &want, &|img| {
        // One warning per queue, of its shared non-blocking flag only
        // (and, for the one still named, that it is the restart's own).
        let said: Vec<&str> = img
            .stderr
            .lines()
            .filter(|l| l.contains("warning") && !l.contains("outside the job"))
            .collect();
        assert!(
            said.len() == 2 && said.iter().all(|l| l.contains("non-blocking flag")),
            "the checkpoint warned: {}",
            img.stderr
        );
    });
}

/// Incremental checkpoints of a job (issue 10: images of a tree were
/// whole): three processes with 16 MiB each, checkpointed after each of
/// three phases (the first writes all of it, the others one page in 64).
/// The second and third trees' images store only what changed and take
/// the rest from the earlier trees' images, hard-linked beside them; with
/// the older trees pruned (`--keep 1`) the third restarts to exactly the
/// uninterrupted run's output.
#[test]
fn a_jobs_checkpoints_after_the_first_are_incremental() {
    let area = Area::new("tree-incr");
    let (prog, want) = {
        let prog = rs::compile_named("tree_incremental.c", &area.sub("bin"), "tree_incremental");
        let plain = area.sub("ctl-ref");
        for k in 1..=3 {
            touch(&plain.join(format!("go{k}")));
        }
        let want = uninterrupted(
            &area,
            &prog,
            &[plain.to_string_lossy().into_owned()],
            area.path(),
            "plain",
        );
        (prog, want)
    };
    let ctl = area.sub("ctl");
    let out = area.file("out");
    let mut run = run_cmd(
        &prog,
        &[ctl.to_string_lossy().into_owned()],
        area.path(),
        &area.images,
    );
    // The default: one generation kept.
    let args: Vec<std::ffi::OsString> = run.get_args().map(|a| a.to_owned()).collect();
    let at = args.iter().position(|a| a == "--keep").unwrap();
    let mut cmd = std::process::Command::new(common::ckpt_bin());
    cmd.args(args[..at].iter().chain(&args[at + 2..]))
        .current_dir(area.path());
    run = cmd;
    let mut kid = start(
        run,
        Out::File(&out),
        &area.file("prog.err"),
        "tree_incremental under ckpt run",
    );
    let root = kid.pid();
    let _guard = JobGuard(root);
    let mut trees = Vec::new();
    for k in 1..=3 {
        rs::wait_marker(&mut kid, &ctl.join(format!("phase{k}")))
            .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
        let img = tree::checkpoint_tree(area.path(), root, &area.images)
            .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
        eprintln!("checkpoint {k}: {}\n{}", img.listing(), img.stderr);
        assert_eq!(img.image_pids().len(), 3, "{}", img.listing());
        trees.push(img);
        if k < 3 {
            touch(&ctl.join(format!("go{k}")));
        }
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    for pid in trees[2].image_pids() {
        let first = trees[0].dir.join(format!("{pid}.img"));
        let third = trees[2].dir.join(format!("{pid}.img"));
        let deps = common::image_deps(&third);
        assert!(
            !deps.is_empty() && deps.iter().all(|d| d.starts_with(&format!("{pid}.g"))),
            "process {pid}'s third image takes pages from {deps:?}; {}",
            trees[2].listing()
        );
        for d in &deps {
            assert!(
                trees[2].dir.join(d).is_file(),
                "{d} is not beside it: {}",
                trees[2].listing()
            );
        }
        assert!(
            size(&third) * 8 < 16 << 20,
            "process {pid}'s third image is {} bytes (its first: {})",
            size(&third),
            size(&first)
        );
    }
    // --keep 1: the earlier trees went; their images live on as links.
    assert!(
        !trees[0].dir.exists() && !trees[1].dir.exists(),
        "the older trees were kept"
    );
    tree::kill_job(root).unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    touch(&ctl.join("go3"));
    let mut r = restart_tree(&area, &trees[2], 1);
    let st = wait_end(&area, &mut r);
    assert_success(st, "the restarted job", &context(&area));
    rs::assert_same(
        &std::fs::read(&out).unwrap(),
        &want,
        "the job's output after restart",
    );
}

/// A job whose root was killed alone (`kill -9 ROOT`) leaves its children
/// running. `ckpt restart` then refuses (they would write the same files
/// beside the restarted job), naming the child that still runs; with
/// --kill-old it kills them and the job's log matches an uninterrupted
/// run's.
#[test]
fn a_restart_refuses_while_the_old_jobs_children_run() {
    let area = Area::new("tstale");
    let script = area.file("job.sh");
    std::fs::write(
        &script,
        "( for i in $(seq 1 100); do echo bg $i >> bg.log; sleep 0.05; done ) &\n\
         for i in $(seq 1 30); do echo step $i; sleep 0.02; done\nwait\necho done\n",
    )
    .unwrap();
    let bash = which("bash");
    let args = [script.to_string_lossy().into_owned()];
    let plain = area.sub("plain");
    let want_out = uninterrupted(&area, &bash, &args, &plain, "plain job.sh");
    let want_log = std::fs::read(plain.join("bg.log")).unwrap();
    let run = area.sub("run");
    let out = area.file("out");
    let (mut kid, _guard) = job_until(&area, &bash, &args, &run, &out, "step 5\n");
    let root = kid.pid();
    let img = tree::checkpoint_tree(area.path(), root, &area.images)
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    let children = tree::tree_report(root);
    // The root alone, as `kill -9` of it does: the loop's subshell goes on.
    kid.kill();
    let refused = std::process::Command::new(common::ckpt_bin())
        .arg("restart")
        .arg(&img.dir)
        .current_dir(&run)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        !refused.status.success()
            && said.contains("of the checkpointed job still run")
            && said.contains("(bash)")
            && said.contains("--kill-old"),
        "the restart did not refuse while the job's child ran: {:?}\n{said}\n{children}",
        refused.status
    );
    let mut r = start(
        restart_cmd(&img.dir, &["--kill-old"], &run),
        Out::File(&area.file("restart1.out")),
        &area.file("restart1.err"),
        "ckpt restart --kill-old",
    );
    let _guard2 = JobGuard(r.pid());
    let st = wait_end(&area, &mut r);
    assert_success(st, "the restart with --kill-old", &context(&area));
    assert_same(
        &std::fs::read(&out).unwrap(),
        &want_out,
        "the job's output (its stdout file, cut back and written on)",
    );
    assert_same(
        &std::fs::read(run.join("bg.log")).unwrap(),
        &want_log,
        "the log the child wrote",
    );
}

/// `tail -f` follows a log a background loop appends to (`>>`, a file its
/// process writes and closes each line): the restart cuts the log back to
/// its size at the checkpoint and tail's read-only descriptor finds it as
/// it was, so nothing is said of that descriptor (before: "changed since
/// the checkpoint", though the restart put it back), and the output is an
/// uninterrupted run's. A file the job only reads that changed outside it
/// (appended to by the test after the kill) is still said.
#[test]
fn a_log_followed_by_tail_f_comes_back_without_a_false_warning() {
    let area = Area::new("ttailf");
    let script = area.file("job.sh");
    std::fs::write(
        &script,
        ": > log\n\
         exec 4< input.txt\n\
         ( for i in $(seq 1 40); do echo \"line $i $((i % 3))\" >> log; sleep 0.05; done; echo END >> log ) &\n\
         tail -n +1 -f log | while read -r l; do case \"$l\" in END) break;; *\" 0\") echo \"got $l\";; esac; done\n\
         wait\necho done\n",
    )
    .unwrap();
    let bash = which("bash");
    let args = [script.to_string_lossy().into_owned()];
    let plain = area.sub("plain");
    std::fs::write(plain.join("input.txt"), b"read only\n").unwrap();
    let want_out = uninterrupted(&area, &bash, &args, &plain, "plain job.sh");
    let run = area.sub("run");
    std::fs::write(run.join("input.txt"), b"read only\n").unwrap();
    let out = area.file("out");
    let (mut kid, _guard) = job_until(&area, &bash, &args, &run, &out, "got line 9 0\n");
    let img = tree::checkpoint_tree(area.path(), kid.pid(), &area.images)
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    std::thread::sleep(Duration::from_millis(400));
    tree::kill_job(kid.pid()).unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    std::fs::write(run.join("input.txt"), b"read only, and more\n").unwrap();
    let mut r = start(
        restart_cmd(&img.dir, &[], &run),
        Out::File(&area.file("restart1.out")),
        &area.file("restart1.err"),
        "ckpt restart",
    );
    let _guard2 = JobGuard(r.pid());
    let st = wait_end(&area, &mut r);
    assert_success(st, "the restarted job", &context(&area));
    assert_same(&std::fs::read(&out).unwrap(), &want_out, "the job's output");
    let said = read(&area.file("restart1.err"));
    let changed: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("changed since the checkpoint"))
        .collect();
    assert!(
        said.contains("/log: cut back")
            && changed.len() == 1
            && changed[0].contains("input.txt (descriptor 4)"),
        "want the log cut back and only input.txt said changed: {said}"
    );
}

/// A job started with --interval, restarted from a periodic tree, goes on
/// taking periodic trees (its command, inside the restart's pid namespace,
/// found the root's control socket by the root's pid, which names it only
/// outside: every one failed with "not running under ckpt"), and ends as
/// an uninterrupted run does.
#[test]
fn periodic_checkpoints_go_on_after_a_tree_restart() {
    let area = Area::new("tperiodic-after");
    let bash = which("bash");
    let script = "sleep 60 & for i in $(seq 1 100); do echo step $i; sleep 0.05; done; \
                  kill %1; wait; echo done";
    let args = vec!["-c".to_string(), script.to_string()];
    let want = uninterrupted(&area, &bash, &args, &area.sub("ref"), "plain bash");
    let run = area.sub("run");
    let out = area.file("out");
    let trees = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&area.images)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.extension().is_some_and(|x| x == "tree") && p.join("manifest").exists());
        v
    };
    let mut kid = start_periodic(
        &area,
        ["300ms", "20"],
        &bash,
        &args,
        &run,
        "bash --interval",
    );
    let root = kid.pid();
    let _guard = JobGuard(root);
    let t = Instant::now();
    while trees().is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(10) && kid.exited().is_none(),
            "no periodic tree\n{}",
            context(&area)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    tree::kill_job(root).unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    let before = trees();
    let mut r = start(
        restart_cmd(&area.images, &["--latest"], &run),
        Out::File(&area.file("restart1.out")),
        &area.file("restart1.err"),
        "ckpt restart IMAGES --latest",
    );
    let _guard2 = JobGuard(r.pid());
    let t = Instant::now();
    while trees().iter().all(|p| before.contains(p)) {
        assert!(
            t.elapsed() < Duration::from_secs(10) && r.exited().is_none(),
            "the restarted job took no periodic tree: {before:?}\n{}",
            context(&area)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = wait_end(&area, &mut r);
    assert_success(st, "the restarted job", &context(&area));
    let err = read(&area.file("prog.err"));
    assert!(
        !err.contains("failed"),
        "a periodic checkpoint failed: {err}"
    );
    assert_same(&std::fs::read(&out).unwrap(), &want, &context(&area));
}

/// A named FIFO as a job's processes' stdin and stdout (`writer > fifo &`,
/// `while read ...; done < fifo`) comes back by its path with its bytes,
/// like one at any other number: before, the writer's output went to the
/// restart command's own stdout and the reader got end of file.
#[test]
fn a_named_fifo_as_stdin_and_stdout_comes_back() {
    let area = Area::new("tfifo-stdio");
    let bash = which("bash");
    let script = "mkfifo p; (for i in $(seq 1 150); do echo w $i; sleep 0.01; done) > p & \
                  n=0; while read l; do n=$((n+1)); echo \"$l\" >> got.txt; done < p; wait; \
                  echo \"reader got $n\"";
    let args = vec!["-c".to_string(), script.to_string()];
    let plain = area.sub("plain");
    let want = uninterrupted(&area, &bash, &args, &plain, "plain fifo job");
    let want_got = std::fs::read(plain.join("got.txt")).unwrap();
    let run = area.sub("run");
    let out = area.file("out");
    let mut kid = start_job(&area, &bash, &args, &run, &out);
    let root = kid.pid();
    let _guard = JobGuard(root);
    let t = Instant::now();
    while read(&run.join("got.txt")).lines().count() < 30 {
        assert!(
            t.elapsed() < Duration::from_secs(30) && kid.exited().is_none(),
            "the reader got too little\n{}",
            context(&area)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let img = checkpoint_and_kill_tree(&area, &mut kid, root, root);
    restart_to_same(&area, &img, &out, &want, "the restarted job");
    assert_same(
        &std::fs::read(run.join("got.txt")).unwrap(),
        &want_got,
        "what the reader got",
    );
}

/// A process of the tree that cannot be restored ends the whole restart
/// at once, with its reason and status 71, and leaves no process behind
/// (before: the others waited for it in the restore barrier, for ten
/// minutes, and the restart command ignored SIGTERM). The case: the
/// child holds a terminal of the outside (a pseudo-terminal the test
/// holds the master of), freed before the restart.
#[test]
fn a_process_that_cannot_be_restored_stops_the_whole_tree() {
    let area = Area::new("tree-tty-gone");
    let prog = common::compile_c("tree_tty_gone.c", &area.sub("bin"));
    let (master, slave) = common::pty();
    let slave = slave.to_string_lossy().into_owned();
    let ctl = area.sub("ctl");
    let args = [ctl.to_string_lossy().into_owned(), slave];
    let mut kid = start_job(&area, &prog, &args, area.path(), &area.file("out"));
    rs::wait_marker(&mut kid, &ctl.join("ready")).unwrap_or_else(|e| {
        let _ = tree::kill_job(kid.pid());
        panic!("{e}\n{}", context(&area))
    });
    let root = kid.pid();
    let _guard = JobGuard(root);
    let img = checkpoint_and_kill_tree(&area, &mut kid, root, root);
    // The terminal is gone (its master closed, no slave open).
    drop(master);
    touch(&ctl.join("go"));
    let t = Instant::now();
    let mut r = restart_tree(&area, &img, 1);
    let st = wait_end(&area, &mut r);
    let err = read(&area.file("restart1.err"));
    assert_eq!(st.code(), Some(71), "restart: {err}");
    assert!(
        err.contains("the whole tree is stopped"),
        "the restart did not say so: {err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "the restart took {:?} to give up",
        t.elapsed()
    );
    let name = prog.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        rs::pids_named(&name).is_empty(),
        "processes of the tree were left behind"
    );
}

const TCP_PY: &str = r#"
import os, socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 0))
l.listen(4)
port = l.getsockname()[1]
pid = os.fork()
if pid == 0:
    l.close()
    c = socket.create_connection(("127.0.0.1", port))
    f = c.makefile("rwb", buffering=0)
    for i in range(40):
        c.sendall(b"%d\n" % i)
        back = f.readline()
        if not back:
            sys.exit(3)
        time.sleep(0.03)
    c.sendall(b"bye\n")
    sys.exit(0)
s, _ = l.accept()
f = s.makefile("rwb", buffering=0)
while True:
    line = f.readline()
    if not line or line == b"bye\n":
        break
    n = int(line)
    print("server got", n, "peer is the child's end:", s.getpeername()[1] != port, flush=True)
    s.sendall(b"%d\n" % (n * n))
_, st = os.waitpid(pid, 0)
print("child exited", os.waitstatus_to_exitcode(st), flush=True)
# The listener still takes clients.
d = socket.create_connection(("127.0.0.1", port))
e, _ = l.accept()
d.sendall(b"late\n")
print("a late client said", e.makefile("rb").readline().decode().strip(), flush=True)
"#;

const UNIX_NAMES_PY: &str = r#"
import os, socket, sys, time
for p in ("srv.sock", "cli.sock", "da.sock", "db.sock"):
    try: os.unlink(p)
    except FileNotFoundError: pass
l = socket.socket(socket.AF_UNIX); l.bind("srv.sock"); l.listen(4)
da = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); da.bind("da.sock")
db = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); db.bind("db.sock")
da.connect("db.sock"); db.connect("da.sock")
pid = os.fork()
if pid == 0:
    l.close(); db.close()
    c = socket.socket(socket.AF_UNIX); c.bind("cli.sock"); c.connect("srv.sock")
    for i in range(40):
        c.sendall(b"%d\n" % i); da.send(b"d%d" % i)
        time.sleep(0.03)
    c.sendall(b"bye\n")
    print("client", c.getsockname(), c.getpeername(), da.getsockname(), da.getpeername(), flush=True)
    sys.exit(0)
da.close()
s, _ = l.accept()
f = s.makefile("rb")
while True:
    line = f.readline()
    if not line or line == b"bye\n":
        break
    d, src = db.recvfrom(100)
    print("server got", line.strip(), d, "from", src, "on", s.getsockname(), "peer", s.getpeername(), db.getpeername(), flush=True)
_, st = os.waitpid(pid, 0)
print("child exited", os.waitstatus_to_exitcode(st), flush=True)
"#;

/// Unix sockets between a server and its forked client keep their names:
/// a stream connection accepted on the server's path from a client bound
/// to its own, and datagram ends bound to paths and connected to each
/// other (recvfrom's source). Before, such pairs came back as unnamed
/// socketpairs, without a word.
#[test]
fn unix_sockets_between_the_jobs_processes_keep_their_names() {
    let area = Area::new("tree-unames");
    let script = area.file("names.py");
    std::fs::write(&script, UNIX_NAMES_PY).unwrap();
    let args = vec![script.to_string_lossy().into_owned()];
    let said = same_after_restart(&area, &common::python3(), &args, "names.py", |d| {
        rs::lines(d) >= 10
    });
    assert!(!said.contains("descriptor"), "the checkpoint said: {said}");
    let err = read(&area.file("restart1.err"));
    assert!(!err.contains("warning"), "restart said: {err}");
}

/// A server and its forked client talking over TCP on 127.0.0.1 (each
/// holding one end, the server its listener too) come back connected, the
/// conversation going on as in an uninterrupted run, and the listener
/// still takes clients. Before, both ends came back closed (the child
/// failed with its server gone).
#[test]
fn a_tcp_connection_between_the_jobs_processes_comes_back_connected() {
    let area = Area::new("tree-tcp");
    let script = area.file("tcp.py");
    std::fs::write(&script, TCP_PY).unwrap();
    let args = vec![script.to_string_lossy().into_owned()];
    same_after_restart(&area, &common::python3(), &args, "tcp.py", |d| {
        rs::lines(d) >= 10
    });
    let err = read(&area.file("restart1.err"));
    assert!(!err.contains("TCP"), "restart said: {err}");
}

/// A parent's fcntl lock on a file its children have open too (one by
/// the inherited descriptor, one by its own open) is still its own after a
/// restart: the child asking who holds it gets the same answer. Before,
/// the restart took the lock again, then closed its own copy of the
/// shared descriptor, which drops the process's fcntl locks on the file:
/// the lock was gone, without a word, and a waiter got it at once.
#[test]
fn an_fcntl_lock_on_a_file_the_children_hold_stays_the_parents() {
    let area = Area::new("tree-lock");
    let (prog, want) = with_reference(&area, "tree_lock.c", "tree_lock");
    ready_checkpoint_go_restart(&area, &prog, &want, &|_| {});
}

/// A job driving a child through a pseudo-terminal as `script` or expect
/// does (forkpty: the child leads its session, the slave is its
/// controlling terminal and stdio, echo off; the parent holds the master)
/// comes back whole: one pair again, the child's controlling terminal
/// (/dev/tty opens), its foreground group, echo off and the window size,
/// and the conversation goes on as in an uninterrupted run. Before, the
/// child did not even run ckpt's shim (glibc's forkpty forks without the
/// `fork` wrapper), and a split pair could not be made again.
#[test]
fn a_child_on_a_pseudo_terminal_comes_back_with_its_terminal() {
    let area = Area::new("tree-pty");
    let (prog, want) = with_reference(&area, "tree_pty.c", "tree_pty");
    ready_checkpoint_go_restart(&area, &prog, &want, &|img| {
        assert!(
            !img.stderr.contains("pseudo-terminal"),
            "the checkpoint said the terminal is lost: {}",
            img.stderr
        );
    });
    let err = read(&area.file("restart1.err"));
    assert!(!err.contains("/dev/null"), "restart said: {err}");
}

/// A child took a System V semaphore lock and raised a counter, both
/// with SEM_UNDO, and exits after the restart without giving them back:
/// the kernel undoes both at its exit (the undo values were lost: the
/// lock stayed taken and the counter high).
#[test]
fn system_v_semaphore_undo_values_come_back() {
    c_same_after_restart("tsemundo", "tree_sem_undo.c", &[], 4, "System V");
}

/// A named POSIX semaphore made by the parent (its map names the file
/// glibc made under a temporary name, deleted: the semaphore lives on as
/// /dev/shm/sem.NAME) and opened by name by its exec'd child stays one
/// semaphore across a restart: every post reaches the child.
#[test]
fn a_named_semaphore_stays_shared() {
    let area = Area::new("tree-named-sem");
    let (prog, want) = with_reference(&area, "tree_named_sem.c", "tree_named_sem");
    ready_checkpoint_go_restart(&area, &prog, &want, &|_| {});
}

/// A process that changed its root directory (chroot) names its files
/// from inside its jail; a restart would open them from ckpt's root,
/// outside it (a program wrote the host's /data.txt). The checkpoint
/// refuses at once, naming the process and its root, and the job runs on
/// untouched: a job of one process, and a child of a job.
#[test]
fn a_chrooted_process_is_refused_at_once() {
    if common::not_root("chroot") {
        return;
    }
    let area = Area::new("tree-chroot");
    let out = area.file("out");
    let jail = area.path().join("jail");
    std::fs::create_dir_all(&jail).unwrap();
    let script = area.file("chroot.py");
    std::fs::write(
        &script,
        format!(
            "import os, time\nos.chroot({:?})\nos.chdir('/')\nprint('ready', flush=True)\ntime.sleep(30)\n",
            jail.to_string_lossy()
        ),
    )
    .unwrap();
    let script = script.to_string_lossy().into_owned();
    let py = common::python3().to_string_lossy().into_owned();
    for (tag, prog, args) in [
        ("alone", py.clone(), vec![script.clone()]),
        (
            "child",
            "/bin/bash".to_string(),
            vec!["-c".to_string(), format!("{py} {script} & wait")],
        ),
    ] {
        let _ = std::fs::remove_file(&out);
        let mut kid = start_job(&area, Path::new(&prog), &args, area.path(), &out);
        let root = kid.pid();
        let _guard = JobGuard(root);
        let t = Instant::now();
        while !read(&out).contains("ready") {
            assert!(t.elapsed() < Duration::from_secs(10), "{tag}: not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        let jail = jail.to_string_lossy();
        refused_at_once(
            &area,
            tag,
            &mut kid,
            &["changed its root directory (chroot) to", &jail],
        );
    }
}

/// A stopped process (a shell's job control: SIGSTOP, SIGTSTP) runs none
/// of its code until continued, so it cannot take part in a checkpoint:
/// the checkpoint says so at once, naming it and how to continue it, and
/// the job runs on (before: "did not stop within 5 s", "does not run
/// ckpt's shim", or, for a job of one process, ten minutes of waiting).
#[test]
fn a_stopped_process_is_named_at_once() {
    let area = Area::new("tree-stopped");
    let out = area.file("out");
    for (tag, script) in [
        ("child", "sleep 30 & kill -STOP $!; echo ready; wait"),
        ("alone", "echo ready; kill -STOP $$; sleep 30"),
    ] {
        let mut kid = start_job(
            &area,
            Path::new("/bin/bash"),
            &["-c".into(), script.into()],
            area.path(),
            &out,
        );
        let root = kid.pid();
        let _guard = JobGuard(root);
        let t = Instant::now();
        let is_stopped = |pid: i32| {
            read(&PathBuf::from(format!("/proc/{pid}/stat")))
                .rsplit_once(") ")
                .is_some_and(|(_, r)| r.starts_with('T'))
        };
        let stopped = loop {
            let found = tree::descendants(root)
                .into_iter()
                .chain([root])
                .find(|&p| is_stopped(p));
            if let Some(p) = found {
                break p;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{tag}: nothing stopped"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        refused_at_once(
            &area,
            tag,
            &mut kid,
            &[
                &format!("process {stopped}"),
                "is stopped",
                &format!("kill -CONT {stopped}"),
            ],
        );
    }
}

/// `ckpt checkpoint` of the job `kid` fails within 5 s with a message
/// holding each of `says`, and the job runs on; then it is killed.
/// A vfork child that waits before its exec blocks its parent in vfork
/// (it can neither answer nor freeze) and shares its memory: the
/// checkpoint refuses within seconds, naming the child. Before, it waited
/// for the parent and reported success with an image of nothing.
#[test]
fn a_vfork_child_before_its_exec_is_named() {
    let area = Area::new("tree-vfork");
    let prog = common::compile_c("tree_vfork_wait.c", area.path());
    let out = area.file("out");
    let (mut kid, _guard) = job_until(&area, &prog, &[], area.path(), &out, "child waits");
    refused_at_once(
        &area,
        "vfork",
        &mut kid,
        &["shares its parent's memory", "vfork", "runs on untouched"],
    );
}

fn refused_at_once(area: &Area, tag: &str, kid: &mut Kid, says: &[&str]) {
    let root = kid.pid();
    let t = Instant::now();
    let r = common::ckpt(
        area.path(),
        [
            "checkpoint".as_ref(),
            root.to_string().as_ref(),
            "--dir".as_ref(),
            area.images.as_os_str(),
        ],
    );
    assert_eq!(r.code(), Some(1), "{tag}: {r:?}");
    assert!(
        says.iter().all(|s| r.stderr.contains(s)),
        "{tag}: {} (wanted {says:?})",
        r.stderr
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "{tag}: took {:?}",
        t.elapsed()
    );
    assert!(kid.exited().is_none(), "{tag}: the job ended");
    let _ = tree::kill_job(root);
    kid.kill();
}

/// A job started as root whose worker dropped root's privileges (uid and
/// gid 65534): its writer, a fork of the worker with its credentials,
/// cannot write into root's 0700 tree directory. The command gives it a
/// directory of its own there and moves its image up: both checkpoints
/// succeed, the second builds on the first, and the restarted worker runs
/// as 65534 again, to the uninterrupted run's output.
#[test]
fn a_worker_that_dropped_root_is_checkpointed_with_the_job() {
    if common::not_root("setuid") {
        return;
    }
    let area = Area::new("tree-dropped");
    let (prog, want) = with_reference(&area, "tree_dropped_root.c", "tree_dropped_root");
    let out = area.file("out");
    let mut kid = start_job(&area, &prog, &[], area.path(), &out);
    let root = kid.pid();
    let _guard = JobGuard(root);
    let at = |step: &'static str| move |d: &[u8]| String::from_utf8_lossy(d).contains(step);
    rs::wait_file(&mut kid, &out, at("worker 10 "), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    let first = tree::checkpoint_tree(area.path(), root, &area.images)
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    assert_eq!(first.image_pids().len(), 2, "{}", first.listing());
    rs::wait_file(&mut kid, &out, at("worker 20 "), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    let img = checkpoint_and_kill_tree(&area, &mut kid, root, root);
    let worker = img
        .image_pids()
        .into_iter()
        .find(|&p| p != root)
        .unwrap_or_else(|| panic!("no worker image: {}", img.listing()));
    let worker_img = img.dir.join(format!("{worker}.img"));
    assert_eq!(
        std::fs::metadata(&worker_img).map(|m| m.uid()).ok(),
        Some(65534),
        "{}",
        img.listing()
    );
    assert!(
        !common::image_deps(&worker_img).is_empty(),
        "the worker's second image does not build on its first: {}",
        img.listing()
    );
    let names: Vec<String> = std::fs::read_dir(&img.dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "left in the tree: {names:?}"
    );
    restart_to_same(&area, &img, &out, &want, "the restarted job");
}

/// A script that exits while a background job it started runs on: as
/// without ckpt, the background job goes on after the restarted script
/// ended (`ckpt restart` returns with the script's status; the restart's
/// namespace lives until the last process the job left has ended).
/// Before, the namespace ended with the script, killing the background
/// job silently.
#[test]
fn processes_the_job_left_behind_run_on_after_its_root_ended() {
    let area = Area::new("tree-left");
    let bash = which("bash");
    // The root's sleep leaves the checkpoint 2.5 s (1 s was too little
    // once in CI, on 2 busy cores); the background job outlives the root.
    let script = "( for i in $(seq 1 10); do sleep 0.4; echo bg $i; done ) > bg.out &\n\
                  for i in 1 2 3; do echo fg $i; sleep 0.1; done\n\
                  echo MARK; sleep 2.5; echo root exits\n";
    let args = vec!["-c".to_string(), script.to_string()];
    let run = area.sub("run");
    let out = area.file("out");
    let (mut kid, _guard) = job_until(&area, &bash, &args, &run, &out, "MARK");
    let root = kid.pid();
    let img = checkpoint_and_kill_tree(&area, &mut kid, root, root);
    let mut r = restart_tree(&area, &img, 1);
    let st = wait_end(&area, &mut r);
    assert_success(st, "the restarted script", &context(&area));
    assert_same(
        &std::fs::read(&out).unwrap(),
        b"fg 1\nfg 2\nfg 3\nMARK\nroot exits\n",
        &context(&area),
    );
    let want: String = (1..=10).map(|i| format!("bg {i}\n")).collect();
    let bg = run.join("bg.out");
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20)
        && std::fs::read(&bg).unwrap_or_default().len() < want.len()
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_same(
        &std::fs::read(&bg).unwrap_or_default(),
        want.as_bytes(),
        &format!("the background job's output\n{}", context(&area)),
    );
}

/// Open the FIFO `path` for reading (waiting for its writer), wait for
/// `go`, then read it to its end.
fn drain_fifo_later(
    path: PathBuf,
    go: std::sync::mpsc::Receiver<()>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(&path).unwrap();
        let _ = go.recv();
        let mut all = Vec::new();
        f.read_to_end(&mut all).unwrap();
        all
    })
}

/// A child whose exit is under way when the checkpoint comes (its stdio
/// flush blocks on a full FIFO after ckpt's shim has shut down and removed
/// its control socket) is waited for: it ends, and the job is checkpointed
/// with it as a zombie, then restarts to the uninterrupted run's output.
/// Before, it was refused after a second as "does not run ckpt's shim";
/// and a request that reached a process right as its exit removed the
/// socket froze it unreachable ("did not gather their state within 5 s",
/// seen in CI with bash's short-lived `sleep`s).
#[test]
fn a_child_whose_exit_is_under_way_is_waited_for() {
    let area = Area::new("tree-ending");
    let prog = common::compile_c("tree_ending_child.c", area.path());
    let fifo = |name: &str| {
        let p = area.file(name);
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        p
    };
    let ref_fifo = fifo("ref.fifo");
    let (go, wait) = std::sync::mpsc::channel();
    let drain = drain_fifo_later(ref_fifo.clone(), wait);
    // Late, as below: the child fills the FIFO first.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let _ = go.send(());
    });
    let want = uninterrupted(
        &area,
        &prog,
        &[&ref_fifo],
        area.path(),
        "plain tree_ending_child",
    );
    let last = b"the child's last words\n";
    assert!(
        drain.join().unwrap().ends_with(last),
        "the child's FIFO (plain run)"
    );
    let run_fifo = fifo("run.fifo");
    let (go, wait) = std::sync::mpsc::channel();
    let drain = drain_fifo_later(run_fifo.clone(), wait);
    let out = area.file("out");
    let args = [run_fifo.to_string_lossy().into_owned()];
    let (mut kid, _guard) = job_until(&area, &prog, &args, area.path(), &out, "child is ending");
    let root = kid.pid();
    // The child is in its exit now, blocked on the full FIFO.
    std::thread::sleep(Duration::from_millis(300));
    let (cwd, images) = (area.path().to_path_buf(), area.images.clone());
    let t = Instant::now();
    let ck = std::thread::spawn(move || tree::checkpoint_tree(&cwd, root, &images));
    std::thread::sleep(Duration::from_millis(1500));
    go.send(()).unwrap();
    let img = ck
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&area)));
    assert!(
        t.elapsed() >= Duration::from_millis(1400),
        "the checkpoint did not wait for the ending child: {:?}",
        t.elapsed()
    );
    assert!(drain.join().unwrap().ends_with(last), "the child's FIFO");
    tree::kill_job(root).unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    restart_to_same(&area, &img, &out, &want, "the restarted job");
}
