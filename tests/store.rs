//! Checkpoints kept in an SQLite store (`--store sqlite:PATH`), on real
//! processes: restart from the store equals an uninterrupted run, `--keep`
//! and `list` work on it, ten generations of a program changing 1% of its
//! memory between them take little more than one, and a SIGKILL during an
//! import leaves the store consistent with the previous generation
//! restartable.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{Area, Out};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn store_spec(db: &Path) -> String {
    format!("sqlite:{}", db.display())
}

fn checkpoint_into(area: &Area, pid: i32, db: &Path, keep: Option<&str>) -> Result<String, String> {
    let spec = store_spec(db);
    let mut args: Vec<String> = vec!["checkpoint".into(), "--store".into(), spec];
    if let Some(k) = keep {
        args.extend(["--keep".to_string(), k.to_string()]);
    }
    args.push(pid.to_string());
    let out = common::ckpt(area.path(), args);
    if out.status.success() {
        Ok(out.stdout.trim().to_string())
    } else {
        Err(out.stderr)
    }
}

fn generations(area: &Area, db: &Path) -> Vec<serde_json::Value> {
    let spec = store_spec(db);
    let out = common::ckpt(area.path(), ["list", "--json", spec.as_str()]);
    assert!(out.status.success(), "{}", out.stderr);
    serde_json::from_str::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// `store_memory ARGS` under `ckpt run` in `area`, once it printed
/// `lines` steps (its stdout: `area`'s "out").
fn store_memory_under_ckpt(area: &Area, args: &[&str], lines: usize) -> rs::Kid {
    let prog = store_memory(area);
    let out = area.file("out");
    let mut kid = rs::start(
        rs::run_cmd(&prog, args, area.path(), &area.images),
        Out::File(&out),
        &area.file("err"),
        "under ckpt",
    );
    rs::wait_file(
        &mut kid,
        &out,
        |d| rs::lines(d) >= lines,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    kid
}

fn store_memory(area: &Area) -> std::path::PathBuf {
    let prog = area.file("store_memory");
    if !prog.exists() {
        return rs::compile_named("store_memory.c", area.path(), "store_memory");
    }
    prog
}

#[test]
fn a_restart_from_the_store_equals_an_uninterrupted_run() {
    let area = Area::new("store");
    let args = ["16", "120"];
    let want = rs::reference_output(&area, &store_memory(&area), &args);
    let mut kid = store_memory_under_ckpt(&area, &args, 10);
    let out = area.file("out");
    let db = area.file("ckpt.db");
    let mut names = Vec::new();
    for _ in 0..3 {
        names.push(
            checkpoint_into(&area, kid.pid(), &db, Some("2")).unwrap_or_else(|e| panic!("{e}")),
        );
        std::thread::sleep(Duration::from_millis(60));
    }
    kid.kill();
    let gens = generations(&area, &db);
    let listed: Vec<&str> = gens.iter().map(|g| g["path"].as_str().unwrap()).collect();
    assert_eq!(
        listed,
        names[1..].iter().map(String::as_str).collect::<Vec<_>>(),
        "--keep 2"
    );
    let spec = store_spec(&db);
    let inspected = common::ckpt(area.path(), ["inspect", spec.as_str()]);
    assert!(
        inspected.status.success() && inspected.stdout.contains("store_memory"),
        "{}",
        inspected.stderr
    );
    rs::restart_and_compare(
        rs::restart_cmd(Path::new(&spec), &[], area.path()),
        &out,
        &want,
        &area,
    );
    // The export the restart read from is gone with the command.
    let left: Vec<String> = std::fs::read_dir(area.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".export-") || n.contains(".staging"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The bench program (benches/programs/memory.c): `c` changes 1% of its
/// memory (a word in every 100th page).
fn memory_program(dir: &Path) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/programs/memory.c");
    let out = dir.join("memory");
    let st = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap();
    assert!(st.success());
    out
}

fn send(child: &mut std::process::Child, c: &[u8]) {
    use std::io::Write;
    let i = child.stdin.as_mut().unwrap();
    i.write_all(c).unwrap();
    i.flush().unwrap();
}

fn wait_line(r: &mut impl std::io::BufRead, want: &str) {
    let mut l = String::new();
    loop {
        l.clear();
        assert!(r.read_line(&mut l).unwrap() > 0, "no {want}");
        if l.starts_with(want) {
            return;
        }
    }
}

#[test]
fn ten_generations_changing_one_percent_take_little_more_than_one() {
    common::require_shim();
    let area = Area::new("store-space");
    let prog = memory_program(area.path());
    std::fs::create_dir_all(&area.images).unwrap();
    let mut child = Command::new(common::ckpt_bin())
        .args(["run", "--dir"])
        .arg(&area.images)
        .arg("--")
        .arg(&prog)
        // CKPT_STORE_TEST_MIB=256 for the figure (64 by default: fast).
        .arg(std::env::var("CKPT_STORE_TEST_MIB").unwrap_or_else(|_| "64".into()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    wait_line(&mut out, "ready");
    send(&mut child, b"q");
    let db = area.file("ckpt.db");
    let size = || std::fs::metadata(&db).unwrap().len() as f64;
    checkpoint_into(&area, pid, &db, None).unwrap_or_else(|e| panic!("{e}"));
    let one = size();
    for _ in 1..10 {
        send(&mut child, b"c");
        wait_line(&mut out, "changed");
        checkpoint_into(&area, pid, &db, None).unwrap_or_else(|e| panic!("{e}"));
    }
    let ten = size();
    child.kill().ok();
    child.wait().ok();
    assert_eq!(generations(&area, &db).len(), 10);
    println!(
        "store: 1 generation {:.1} MiB, 10 generations {:.1} MiB ({:.2}x)",
        one / 1048576.0,
        ten / 1048576.0,
        ten / one
    );
    assert!(
        ten < 1.5 * one,
        "10 generations take {:.2}x the space of one",
        ten / one
    );
}

#[test]
fn a_sigkill_during_an_import_leaves_the_store_consistent() {
    let area = Area::new("store-kill");
    let mut kid = store_memory_under_ckpt(&area, &["64", "100000"], 3);
    let out = area.file("out");
    let db = area.file("ckpt.db");
    let first = checkpoint_into(&area, kid.pid(), &db, None).unwrap_or_else(|e| panic!("{e}"));
    let spec = store_spec(&db);
    // Kill the command at moments spread over its work (the checkpoint,
    // then the import of 64 MiB), as long as a whole one takes here.
    let t = std::time::Instant::now();
    checkpoint_into(&area, kid.pid(), &db, Some("2")).unwrap_or_else(|e| panic!("{e}"));
    let whole_ms = t.elapsed().as_millis() as u64;
    let journal = area.file("ckpt.db-journal");
    let mut killed_mid_import = 0;
    // At moments spread over the whole; then, four times, once the
    // import's transaction is seen under way (its journal exists).
    let timed = [5u64, 15, 30, 45, 60, 75, 90].map(|pc| Some(whole_ms * pc / 100));
    for delay_ms in timed.into_iter().chain([None; 4]) {
        let mut c = Command::new(common::ckpt_bin())
            .args(["checkpoint", "--store", &spec])
            .arg(kid.pid().to_string())
            .current_dir(area.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        match delay_ms {
            Some(ms) => std::thread::sleep(Duration::from_millis(ms)),
            None => {
                let t = std::time::Instant::now();
                while !journal.exists()
                    && c.try_wait().unwrap().is_none()
                    && t.elapsed() < Duration::from_secs(60)
                {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        }
        c.kill().ok();
        c.wait().ok();
        let delay_ms = delay_ms.unwrap_or(0);
        // A journal left behind: the kill cut a transaction short (the
        // next opening rolls it back).
        if journal.exists() {
            killed_mid_import += 1;
        }
        let conn = rusqlite::Connection::open(&db).unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok", "after a kill {delay_ms} ms in");
        let gens = generations(&area, &db);
        assert!(
            gens.iter().any(|g| g["path"] == first.as_str()),
            "the first generation is gone after a kill {delay_ms} ms in"
        );
    }
    assert!(
        killed_mid_import > 0,
        "no kill landed while the store was being written"
    );
    kid.kill();
    // The first generation restarts: the program prints its steps again
    // from where that checkpoint was.
    let want_lines = std::fs::read_to_string(&out).unwrap();
    let first_spec = Path::new(&first);
    let mut r = rs::start(
        rs::restart_cmd(first_spec, &[], area.path()),
        Out::Null,
        &area.file("restart.err"),
        "ckpt restart",
    );
    rs::wait_file(&mut r, &out, |d| rs::lines(d) >= 8, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    r.kill();
    let after = std::fs::read_to_string(&out).unwrap();
    // Same steps as the killed run printed, up to where both got.
    let n = after.lines().count().min(want_lines.lines().count());
    assert!(n >= 3);
    assert_eq!(
        after.lines().take(n).collect::<Vec<_>>(),
        want_lines.lines().take(n).collect::<Vec<_>>()
    );
}

#[test]
fn a_run_with_a_store_checkpoints_into_it_periodically_and_on_demand() {
    common::require_shim();
    let area = Area::new("store-run");
    let prog = rs::compile_named("store_memory.c", area.path(), "store_memory");
    let args = ["8", "150"];
    let want = rs::reference_output(&area, &prog, &args);
    let db = area.file("ckpt.db");
    let spec = store_spec(&db);
    let mut c = Command::new(common::ckpt_bin());
    c.args([
        "run",
        "--store",
        &spec,
        "--interval",
        "300ms",
        "--keep",
        "3",
        "--",
    ])
    .arg(&prog)
    .args(args)
    .current_dir(area.path());
    let out = area.file("out");
    let mut kid = rs::start(c, Out::File(&out), &area.file("err"), "ckpt run --store");
    rs::wait_file(
        &mut kid,
        &out,
        |d| rs::lines(d) >= 80,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // `ckpt checkpoint PID` with no --dir goes to the run's store.
    let said = checkpoint_into_default(&area, kid.pid());
    assert!(said.starts_with(&format!("{spec}#")), "{said}");
    kid.kill();
    let gens = generations(&area, &db);
    assert_eq!(gens.len(), 3, "--keep 3: {gens:?}");
    rs::restart_and_compare(
        rs::restart_cmd(Path::new(&spec), &[], area.path()),
        &out,
        &want,
        &area,
    );
}

fn checkpoint_into_default(area: &Area, pid: i32) -> String {
    let out = common::ckpt(area.path(), ["checkpoint".to_string(), pid.to_string()]);
    assert!(out.status.success(), "{}", out.stderr);
    out.stdout.trim().to_string()
}

/// A program using the crate alone (no `ckpt run`) sends its periodic
/// checkpoints to a store (`Checkpointer::store`), and comes back from it.
#[test]
fn a_program_using_the_crate_checkpoints_into_a_store() {
    let area = Area::new("store-api");
    let prog = common::build_example("periodic", "periodic");
    let db = area.file("ckpt.db");
    let spec = store_spec(&db);
    let images = area.images.to_str().unwrap().to_string();
    let args = ["150", images.as_str(), spec.as_str()];
    let want = rs::reference_output(&area, &prog, &args);
    std::fs::remove_file(&db).ok();
    let out = area.file("out");
    let mut kid = rs::start(
        rs::plain_cmd(&prog, &args, area.path()),
        Out::File(&out),
        &area.file("err"),
        "periodic",
    );
    rs::wait_file(
        &mut kid,
        &out,
        |d| rs::lines(d) >= 60,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    let gens = generations(&area, &db);
    assert!(!gens.is_empty() && gens.len() <= 2, "keep(2): {gens:?}");
    // Simply run again: ckpt::resume(store) restarts its newest generation.
    let mut again = rs::start(
        rs::plain_cmd(&prog, &args, area.path()),
        Out::Null,
        &area.file("again.err"),
        "run again",
    );
    let st = again
        .wait(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    rs::assert_success(st, "the resumed run", &again.describe());
    rs::assert_same(
        &std::fs::read(&out).unwrap(),
        &want,
        "stdout of the resumed run",
    );
}
