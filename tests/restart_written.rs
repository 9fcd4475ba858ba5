//! Files the program writes go back with it: after a checkpoint, more
//! work, SIGKILL and a restart, an O_APPEND log and a truncated-then-written
//! file are byte-identical to an uninterrupted run's (the killed run's
//! appends are cut away, and named); `--keep-files` leaves them (and the
//! log then holds those records twice); a file changed in place or cut
//! shorter after the checkpoint is put back from the image (small files'
//! contents are kept in it); without them (`CKPT_SAVE_FILES=0`) a file cut
//! shorter than the program's position is refused before anything starts.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{restart_cmd, run_cmd, start, start_until, Area, Out};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Run restart_written under ckpt in `area`, checkpoint it at step 20,
/// let it work 0.3 s more, kill it. Returns the image.
fn checkpointed_then_more_work(area: &Area, prog: &Path) -> PathBuf {
    checkpointed_then_more_work_env(area, prog, &[])
}

/// The same with environment variables for the program.
fn checkpointed_then_more_work_env(area: &Area, prog: &Path, env: &[(&str, &str)]) -> PathBuf {
    let out = area.file("stdout");
    let mut cmd = run_cmd(prog, &[] as &[&str], area.path(), &area.images);
    cmd.envs(env.iter().copied());
    let mut kid = start_until(cmd, &out, &area.file("err"), "under ckpt", "step 20\n");
    let pid = kid.pid();
    let image = common::checkpoint(pid, Some(&area.images)).unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_millis(300));
    kid.kill();
    image
}

fn reference(prog: &Path) -> (Vec<u8>, Vec<u8>) {
    let area = Area::new("written-ref");
    let st = rs::reference(
        rs::plain_cmd(prog, &[] as &[&str], area.path()),
        &area.file("stdout"),
        &area.file("err"),
        "plain",
    );
    rs::assert_success(st, "the uninterrupted run", "");
    (
        std::fs::read(area.file("written.log")).unwrap(),
        std::fs::read(area.file("written.out")).unwrap(),
    )
}

fn restart(area: &Area, image: &Path, extra: &[&str]) -> String {
    restart_to(area, image, extra, Out::Null)
}

/// `ckpt restart` with its stdout as `out`, to its end. Its stderr.
fn restart_to(area: &Area, image: &Path, extra: &[&str], out: Out) -> String {
    let rerr = area.file("restart.err");
    let mut r = start(
        restart_cmd(image, extra, area.path()),
        out,
        &rerr,
        "ckpt restart",
    );
    let st = r
        .wait(rs::RESTART_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    rs::assert_success(st, "restarted program", &r.describe());
    std::fs::read_to_string(&rerr).unwrap_or_default()
}

/// Files written and closed again at once go back with the program: a
/// shell's `>>` for every line and `>` rewriting a state file, python's
/// open(..., "a") per record and a JSON file rewritten with "w", and a log
/// appended to by processes that ended before the checkpoint (an external
/// command's `>>`, a python subprocess's shell), and files replaced by
/// renaming a new version over them (`mv`, `os.replace`). After a checkpoint, more
/// work, SIGKILL and a restart, each is byte-identical to an
/// uninterrupted run's. Before, the logs held the records written after
/// the checkpoint twice.
#[test]
fn files_written_and_closed_match_an_uninterrupted_run() {
    let bash = (
        PathBuf::from("/bin/bash"),
        common::programs_dir().join("written_closed.sh"),
        &["log.txt", "state.txt", "ext.log", "moved.txt"][..],
    );
    let python = (
        common::python3(),
        common::programs_dir().join("written_closed.py"),
        &["py.log", "state.json", "child.log", "snap.json"][..],
    );
    for (tag, (prog, script, files)) in [("sh", bash), ("py", python)] {
        let args = [script.to_string_lossy().into_owned()];
        let plain = Area::new(&format!("written-closed-{tag}-ref"));
        let st = rs::reference(
            rs::plain_cmd(&prog, &args, plain.path()),
            &plain.file("stdout"),
            &plain.file("err"),
            "plain",
        );
        rs::assert_success(st, "the uninterrupted run", "");
        let area = Area::new(&format!("written-closed-{tag}"));
        let mut kid = start_until(
            run_cmd(&prog, &args, area.path(), &area.images),
            &area.file("stdout"),
            &area.file("err"),
            "under ckpt",
            "step 20\n",
        );
        let image =
            common::checkpoint(kid.pid(), Some(&area.images)).unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(Duration::from_millis(300));
        // The whole job: a child the program just started (`sh -c "echo
        // child N >> child.log"`) outlived its parent's SIGKILL and
        // appended after the restart cut the log back (CI).
        let _ = common::tree::kill_job(kid.pid());
        kid.kill();
        let said = restart(&area, &image, &[]);
        assert!(
            said.contains(files[0]),
            "{tag}: the log's rollback is not named: {said}"
        );
        for f in files {
            let want = std::fs::read(plain.file(f)).unwrap();
            let got = std::fs::read(area.file(f)).unwrap_or_default();
            common::assert_same_output(&got, &want, &format!("{tag}: {f}"));
        }
    }
}

#[test]
fn append_log_and_written_file_are_cut_back_and_match_an_uninterrupted_run() {
    let bin = common::TempDir::new("written-bin");
    let prog = common::compile_c("restart_written.c", bin.path());
    let (want_log, want_out) = reference(&prog);

    let area = Area::new("written");
    let image = checkpointed_then_more_work(&area, &prog);
    let grown = std::fs::metadata(area.file("written.log")).unwrap().len();
    let said = restart(&area, &image, &[]);
    assert!(
        said.contains("written.log: cut back from") && said.contains(&format!("from {grown} to")),
        "the log cut back is not named: {said}"
    );
    rs::assert_same(
        &std::fs::read(area.file("written.log")).unwrap(),
        &want_log,
        "O_APPEND log",
    );
    rs::assert_same(
        &std::fs::read(area.file("written.out")).unwrap(),
        &want_out,
        "written file",
    );

    // --keep-files: the killed run's records stay, and come again.
    let area = Area::new("written-keep");
    let image = checkpointed_then_more_work(&area, &prog);
    let said = restart(&area, &image, &["--keep-files"]);
    assert!(
        said.contains("grew by"),
        "no word about the kept file: {said}"
    );
    let log = std::fs::read(area.file("written.log")).unwrap();
    assert!(log.len() > want_log.len(), "--keep-files cut the log");
}

/// Issue "Nothing comes back silently wrong": files changed in place
/// after the checkpoint (bytes overwritten, a file cut short) are put
/// back from the image, named, and end as an uninterrupted run's.
#[test]
fn a_written_file_changed_in_place_or_cut_short_is_put_back() {
    let bin = common::TempDir::new("written-inplace-bin");
    let prog = common::compile_c("restart_written.c", bin.path());
    let (want_log, want_out) = reference(&prog);
    let area = Area::new("written-inplace");
    let image = checkpointed_then_more_work(&area, &prog);
    // In place: the log's first bytes overwritten; the other file cut short.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(area.file("written.log"))
            .unwrap();
        f.write_all_at(b"XXXX", 0).unwrap();
    }
    std::fs::write(
        area.file("written.out"),
        b"step 0
",
    )
    .unwrap();
    let said = restart(&area, &image, &[]);
    assert!(
        said.contains("written.log: put back") && said.contains("written.out: put back"),
        "the files put back are not named: {said}"
    );
    rs::assert_same(
        &std::fs::read(area.file("written.log")).unwrap(),
        &want_log,
        "O_APPEND log changed in place",
    );
    rs::assert_same(
        &std::fs::read(area.file("written.out")).unwrap(),
        &want_out,
        "written file cut short",
    );
}

#[test]
fn a_written_file_now_shorter_than_the_programs_position_is_refused() {
    let bin = common::TempDir::new("written-short-bin");
    let prog = common::compile_c("restart_written.c", bin.path());
    let area = Area::new("written-short");
    // No file contents in the image: nothing could put it back.
    let image = checkpointed_then_more_work_env(&area, &prog, &[("CKPT_SAVE_FILES", "0")]);
    std::fs::write(area.file("written.out"), b"step 0\n").unwrap();
    let before_log = std::fs::read(area.file("written.log")).unwrap();
    let r = common::ckpt(area.path(), ["restart".as_ref(), image.as_os_str()]);
    assert!(!r.status.success(), "restart went ahead: {}", r.stderr);
    assert!(
        r.stderr.contains("written.out")
            && r.stderr.contains("shorter than the program's position"),
        "unclear refusal: {}",
        r.stderr
    );
    assert_eq!(
        std::fs::read(area.file("written.log")).unwrap(),
        before_log,
        "a refused restart touched another file"
    );
}

/// A Python program committing to an sqlite database in a loop,
/// checkpointed, working 0.5 s more (committing rows past the checkpoint),
/// SIGKILLed and restarted: the database is put back as it was at the
/// checkpoint, so the program goes on to the same output as an
/// uninterrupted run (left as the killed run left it, the restarted
/// program fails with "UNIQUE constraint failed").
#[test]
fn an_sqlite_database_committing_in_a_loop_comes_back_consistent() {
    let script = common::programs_dir().join("restart_sqlite.py");
    let python = common::python3();
    let area = Area::new("written-sqlite");
    let want = rs::reference_output(&area, &python, &[&script]);
    std::fs::remove_file(area.file("t.db")).unwrap();
    let out = area.file("out");
    let mut kid = start_until(
        run_cmd(&python, &[&script], area.path(), &area.images),
        &out,
        &area.file("err"),
        "under ckpt",
        "row 50 ",
    );
    let image = common::checkpoint(kid.pid(), Some(&area.images)).unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_millis(500));
    kid.kill();
    let said = rs::restart_and_compare(restart_cmd(&image, &[], area.path()), &out, &want, &area);
    assert!(
        said.contains("t.db: put back"),
        "the database put back is not named: {said}"
    );
}

/// sqlite's rollback journal, open at the checkpoint, deleted at its
/// commit and made anew by a later transaction (the one the kill comes
/// in): the restart writes the checkpoint's journal into the file there
/// now, which the program's descriptor opens, and the program goes on to
/// the output of an uninterrupted run. Before, the restart was refused
/// ("replaced by another file since the checkpoint").
#[test]
fn an_sqlite_journal_made_anew_after_the_checkpoint_comes_back() {
    let script = common::programs_dir().join("restart_sqlite_journal.py");
    let args = [script.to_string_lossy().into_owned()];
    let (said, check) = interrupted_run(
        "written-sqlite-journal",
        &common::python3(),
        &args,
        "in transaction 50",
        1200,
    );
    check(&["t.db"]);
    assert!(!said.contains("replaced"), "restart said: {said}");
}

/// A file the program wrote and removed after the checkpoint while
/// keeping it open (sqlite's rollback journal) is made again from the
/// image at restart, with its mode, and the program reads it back.
#[test]
fn a_written_file_removed_after_the_checkpoint_is_made_again() {
    removed_after_the_checkpoint_is_made_again("restart_journal.c");
}

/// The same for a file the program wrote and closed, and holds open only
/// for reading it back (sort's run files): before, the restart refused
/// ("descriptor 3 needs .../j.tmp, which is gone"), --save-files or not.
#[test]
fn a_file_written_closed_and_read_back_removed_after_the_checkpoint_is_made_again() {
    removed_after_the_checkpoint_is_made_again("restart_read_back.c");
}

/// C program `src` makes j.tmp, removes it at step 40 and reads it after:
/// checkpointed at step 20, killed at step 45, restarted.
fn removed_after_the_checkpoint_is_made_again(src: &str) {
    let none: &[&str] = &[];
    let c = rs::Compiled::new("written-gone", src, none);
    std::fs::remove_file(c.area.file("j.tmp")).ok();
    let mut kid = c.run_until(none, "step 20\n");
    let rs::Compiled {
        area, want, out, ..
    } = &c;
    let image = common::checkpoint(kid.pid(), Some(&area.images)).unwrap_or_else(|e| panic!("{e}"));
    rs::wait_file(
        &mut kid,
        out,
        |d| String::from_utf8_lossy(d).contains("step 45\n"),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    assert!(
        !area.file("j.tmp").exists(),
        "the program did not remove it"
    );
    let said = rs::restart_and_compare(restart_cmd(&image, &[], area.path()), out, want, area);
    assert!(said.contains("j.tmp: made again"), "not named: {said}");
}

/// A file the job wrote before the checkpoint, removed after it together
/// with its directory: the restart makes the directory and the file
/// again and says so, and the run's output is an uninterrupted run's.
/// Before, the restart stopped half way ("cannot cut .../sub/obj back to
/// its size at the checkpoint: No such file or directory"), with some
/// files already rolled back.
#[test]
fn a_written_file_removed_with_its_directory_is_made_again() {
    let script = common::programs_dir().join("removed_dir.sh");
    let (said, check) = interrupted_run(
        "written-gone-dir",
        Path::new("/bin/bash"),
        &[script.to_string_lossy().into_owned()],
        "step 5\n",
        1800,
    );
    assert!(said.contains("directory made again"), "not said: {said}");
    assert!(said.contains("sub/obj: made again"), "not said: {said}");
    check(&[]);
}

/// `prog` run under ckpt in `area` (stdout and err there) until its
/// stdout holds `at`.
fn run_until(area: &Area, prog: &Path, args: &[String], at: &str) -> rs::Kid {
    start_until(
        run_cmd(prog, args, area.path(), &area.images),
        &area.file("stdout"),
        &area.file("err"),
        "under ckpt",
        at,
    )
}

/// `prog` run under ckpt in `area` until its stdout holds `at`,
/// checkpointed, run on until its stdout holds `until`, and killed: the
/// image. After the checkpoint the file `CKPT_TEST_GO` names is made (a
/// script may wait for it).
fn checkpoint_at_kill_at(
    area: &Area,
    prog: &Path,
    args: &[String],
    at: &str,
    until: &str,
) -> PathBuf {
    let out = area.file("stdout");
    let go = area.file("go");
    let mut cmd = run_cmd(prog, args, area.path(), &area.images);
    cmd.env("CKPT_TEST_GO", &go);
    let mut kid = start_until(cmd, &out, &area.file("err"), "under ckpt", at);
    let image = common::checkpoint(kid.pid(), Some(&area.images)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&go, "").unwrap();
    rs::wait_file(
        &mut kid,
        &out,
        |d| String::from_utf8_lossy(d).contains(until),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    image
}

/// Files and directories the killed run made after the checkpoint (a
/// shell's `>>` to a new file, an external `mkdir`, `mkfifo` and `ln -s`,
/// a python child's open(..., "x"), a unix socket's bind, mkstemp and
/// mkdtemp through the C library) are removed
/// by the restart, and named: the restarted job makes each again, and its
/// files hold each line once, as in an uninterrupted run. A file renamed
/// over one that was there (an atomic save) is left, and said. `--keep-files` leaves them and
/// says so.
#[test]
fn what_the_killed_run_made_after_the_checkpoint_is_removed() {
    let bash = PathBuf::from("/bin/bash");
    let script = common::programs_dir().join("leftovers.sh");
    let args = [script.to_string_lossy().into_owned()];
    let plain = Area::new("leftovers-ref");
    std::fs::write(plain.file("config.txt"), "version 0\n").unwrap();
    let st = rs::reference(
        rs::plain_cmd(&bash, &args, plain.path()),
        &plain.file("stdout"),
        &plain.file("err"),
        "plain",
    );
    rs::assert_success(st, "the uninterrupted run", "");
    let want = std::fs::read(plain.file("stdout")).unwrap();
    for keep in [false, true] {
        let area = Area::new(if keep { "leftovers-keep" } else { "leftovers" });
        std::fs::write(area.file("config.txt"), "version 0\n").unwrap();
        let out = area.file("stdout");
        let image = checkpoint_at_kill_at(&area, &bash, &args, "step 15\n", "step 32\n");
        assert!(area.file("d3").is_dir(), "the killed run made no d3");
        let extra: &[&str] = if keep { &["--keep-files"] } else { &[] };
        let said = restart(&area, &image, extra);
        let got = std::fs::read(&out).unwrap();
        if keep {
            assert!(
                said.contains("made after the checkpoint")
                    && said.contains("--keep-files")
                    && said.contains("/d2/"),
                "--keep-files: what was kept is not named: {said}"
            );
            assert!(
                String::from_utf8_lossy(&got).contains("mkdir d3 failed"),
                "--keep-files: d3 was not kept"
            );
        } else {
            for made in [
                "d2/new.txt: removed",
                "d3/part.txt: removed",
                "d3/fifo: removed",
                "d3/link: removed",
                "d3/sock: removed",
                "d3/tmpf",
                "d3/tmpd",
                "d3: removed",
            ] {
                assert!(said.contains(made), "not said: {made:?}\n{said}");
            }
            common::assert_same_output(&got, &want, "the job's output after a restart");
            // Renamed over a file that was there: left, and said.
            assert!(
                !said.contains("config.txt: removed")
                    && said.contains("written after it (by the run this restart replaces)")
                    && said.contains("config.txt"),
                "config.txt, saved over after the checkpoint: {said}"
            );
            assert_eq!(
                std::fs::read(area.file("config.txt")).unwrap(),
                std::fs::read(plain.file("config.txt")).unwrap()
            );
        }
    }
}

/// A killed run that made many files after the checkpoint (a `make -j`
/// killed mid-build): every one is removed, the first twenty named, the
/// rest counted in one line; the restarted job makes each again.
#[test]
fn many_files_made_after_the_checkpoint_are_removed_and_counted() {
    let bash = PathBuf::from("/bin/bash");
    let args = [
        "-c".to_string(),
        "for i in $(seq 1 70); do echo $i > f$i.o; echo step $i; sleep 0.02; done; cat f*.o | md5sum"
            .to_string(),
    ];
    let area = Area::new("many-leftovers");
    let image = checkpoint_at_kill_at(&area, &bash, &args, "step 10\n", "step 50\n");
    assert!(area.file("f45.o").exists(), "the killed run made no f45.o");
    let said = restart(&area, &image, &[]);
    let named = said
        .lines()
        .filter(|l| l.contains(".o: removed (made after"))
        .count();
    let more = said
        .lines()
        .find_map(|l| {
            l.strip_prefix("ckpt restart: removed ")?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    // The killed run made f11.o (or a later one) up to f50.o at least.
    assert_eq!(named, 20, "{said}");
    assert!(
        more >= 20 && said.contains("more files made after the checkpoint"),
        "{said}"
    );
    let out = std::fs::read_to_string(area.file("stdout")).unwrap();
    assert_eq!(out.matches("step 50\n").count(), 1, "{out}");
    assert!(out.contains("step 70\n") && out.ends_with("  -\n"), "{out}");
}

/// A large file open for reading and writing (not appending) that grew
/// after the checkpoint is cut back, and the restart says that what the
/// killed run changed before its old end cannot be put back (it was cut
/// back alone, in silence: the counter at its start came back too high).
#[test]
fn a_large_file_changed_anywhere_and_grown_is_said() {
    let area = Area::new("rmw-large");
    let script = common::programs_dir().join("rmw_large.py");
    let args = [script.to_string_lossy().into_owned()];
    let mut kid = start_until(
        run_cmd(&common::python3(), &args, area.path(), &area.images),
        &area.file("stdout"),
        &area.file("err"),
        "under ckpt",
        "step 20 ",
    );
    let image = common::checkpoint(kid.pid(), Some(&area.images)).unwrap_or_else(|e| panic!("{e}"));
    rs::wait_file(
        &mut kid,
        &area.file("stdout"),
        |d| String::from_utf8_lossy(d).contains("step 30 "),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    let said = restart(&area, &image, &[]);
    assert!(
        said.contains("f.bin (descriptor")
            && said.contains("open for reading and writing anywhere in it")
            && said.contains("f.bin: cut back from"),
        "the file changed in place and grown is not said: {said}"
    );
}

/// ckpt's own image writes are not the job's files: a program computing
/// outside every wrapper (so the thread that coordinates a checkpoint,
/// whose copy writes the image, was in none) is checkpointed three times
/// (the third folds the first away, `--keep 2`), killed and restarted
/// from the newest image. The restart neither makes an older image
/// again from the newer one nor names an image as a file written after
/// the checkpoint (it names no image), and the program's output matches
/// an uninterrupted run's. Before, each writer logged its image in the
/// job's log.
#[test]
fn the_images_themselves_are_not_files_the_job_wrote() {
    let dir = common::TempDir::new("spin-images-bin");
    let prog = common::compile_c("spin_images.c", dir.path());
    let plain = Area::new("spin-images-ref");
    let want = rs::reference_output(&plain, &prog, &[plain.path()]);
    let area = Area::new("spin-images");
    let out = area.file("stdout");
    let mut kid = start_until(
        run_cmd(&prog, &[area.path()], area.path(), &area.images),
        &out,
        &area.file("err"),
        "under ckpt",
        "started\n",
    );
    let image = rs::checkpoint_n_and_kill(&mut kid, &area.images, 3);
    // (The last writer may still be folding older images meanwhile: the
    // directory's listing is not compared.)
    let said = restart(&area, &image, &[]);
    assert!(
        !said.contains(".img"),
        "the restart took an image for the job's file: {said}"
    );
    common::assert_same_output(&std::fs::read(&out).unwrap(), &want, "stdout");
}

/// A file mapped shared and writable (larger than the files whose
/// contents a checkpoint keeps otherwise) comes back as it was at the
/// checkpoint: the killed run's stores through the mapping after it are
/// undone. A C program (a file with a hole, its descriptor closed) and
/// python's mmap (a file whose end falls inside a page) each store into
/// pseudo-random pages; after a checkpoint, more work, SIGKILL and a
/// restart, stdout and the file are byte-identical to an uninterrupted
/// run's, and the restart does not call the file changed. Before, the
/// restarted program saw the killed run's later stores (silently).
#[test]
fn a_file_mapped_shared_and_writable_comes_back_as_it_was() {
    let dir = common::TempDir::new("mmap-shared-bin");
    let c_prog = common::compile_c("mmap_shared_file.c", dir.path());
    let script = common::programs_dir().join("mmap_shared_file.py");
    let cases: [(&str, PathBuf, Vec<String>, &str); 2] = [
        (
            "c",
            c_prog,
            vec![".".into(), "data.bin".into(), "8".into(), "80".into()],
            "data.bin",
        ),
        (
            "py",
            common::python3(),
            vec![script.to_string_lossy().into_owned()],
            "py.bin",
        ),
    ];
    for (tag, prog, args, file) in cases {
        let (said, check) =
            interrupted_run(&format!("mmap-shared-{tag}"), &prog, &args, "step 20 ", 300);
        assert!(
            !said.contains(file),
            "{tag}: the restart speaks of {file}: {said}"
        );
        check(&[file]);
    }
}

/// Run `prog` `args` plainly, then under ckpt in another area until its
/// stdout holds `at`; checkpoint, let it work `more_ms` more, SIGKILL it,
/// restart. Returns what the restart said, and a check that stdout and
/// the files named (in each area) are byte-identical to the plain run's.
fn interrupted_run(
    tag: &str,
    prog: &Path,
    args: &[String],
    at: &str,
    more_ms: u64,
) -> (String, impl Fn(&[&str])) {
    let (said, check, _) = interrupted_after(tag, prog, args, at, 1, more_ms);
    (said, check)
}

/// `interrupted_run` with `checkpoints` checkpoints, `more_ms` apart (the
/// restart from the last); also returns the images' paths.
fn interrupted_after(
    tag: &str,
    prog: &Path,
    args: &[String],
    at: &str,
    checkpoints: usize,
    more_ms: u64,
) -> (String, impl Fn(&[&str]), Vec<PathBuf>) {
    let plain = Area::new(&format!("{tag}-ref"));
    let want = rs::reference_output(&plain, prog, args);
    let area = Area::new(tag);
    let out = area.file("stdout");
    let mut kid = run_until(&area, prog, args, at);
    let mut images = Vec::new();
    for _ in 0..checkpoints {
        images.push(
            common::checkpoint(kid.pid(), Some(&area.images)).unwrap_or_else(|e| panic!("{e}")),
        );
        std::thread::sleep(Duration::from_millis(more_ms));
    }
    kid.kill();
    let said = restart(&area, images.last().unwrap(), &[]);
    let tag = tag.to_string();
    let check = move |files: &[&str]| {
        common::assert_same_output(
            &std::fs::read(&out).unwrap(),
            &want,
            &format!("{tag}: stdout"),
        );
        for f in files {
            common::assert_same_output(
                &std::fs::read(area.file(f)).unwrap_or_default(),
                &std::fs::read(plain.file(f)).unwrap(),
                &format!("{tag}: {f}"),
            );
        }
    };
    (said, check, images)
}

/// A writable shared file mapping checkpointed again and again: each
/// image after the first holds only the pages changed since the one
/// before (found by their fingerprints; the rest is taken from it), and
/// the restart from the last, a chain, puts the file back byte-identical
/// to an uninterrupted run's. Before, every image held the whole mapping
/// again.
#[test]
fn a_writable_shared_file_mapping_is_kept_incrementally() {
    let dir = common::TempDir::new("mmap-shared-incr-bin");
    let prog = common::compile_c("mmap_shared_file.c", dir.path());
    let args: Vec<String> = [".", "dense.bin", "16", "160", "dense"]
        .map(String::from)
        .to_vec();
    let (said, check, images) =
        interrupted_after("mmap-shared-incr", &prog, &args, "step 20 ", 3, 250);
    assert!(
        !said.contains("dense.bin"),
        "the restart speaks of dense.bin: {said}"
    );
    check(&["dense.bin"]);
    // The first image holds the 16 MiB; the last (still there: the
    // newest) only what changed in 250 ms, a page every 10 ms.
    let last = std::fs::metadata(images.last().unwrap()).unwrap().len();
    assert!(
        last < 4 << 20,
        "the last image holds {last} bytes: the mapping was copied whole again"
    );
}

/// Writable shared file mappings past what an image keeps (1 GiB per
/// process: their copy is part of the pause) are named by the checkpoint,
/// one line per file, instead of being left silently to the file.
#[test]
fn a_writable_shared_file_mapping_over_the_limit_is_said() {
    let area = Area::new("mmap-shared-huge");
    let script = "import mmap, os, sys, time\n\
        f = open('huge.bin', 'wb'); f.truncate(1100 << 20); f.close()\n\
        fd = os.open('huge.bin', os.O_RDWR); m = mmap.mmap(fd, 1100 << 20); os.close(fd)\n\
        m[0] = 1\n\
        print('step 1', flush=True)\n\
        time.sleep(60)\n";
    let mut kid = start_until(
        run_cmd(
            &common::python3(),
            &["-c", script],
            area.path(),
            &area.images,
        ),
        &area.file("stdout"),
        &area.file("err"),
        "under ckpt",
        "step 1\n",
    );
    let mut c = common::ckpt_cmd(
        area.path(),
        ["checkpoint".to_string(), kid.pid().to_string()],
    );
    c.arg("--dir").arg(&area.images);
    let r = common::run_cmd(&mut c, Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    assert!(r.status.success(), "checkpoint failed: {}", r.stderr);
    let said: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("huge.bin"))
        .collect();
    assert_eq!(said.len(), 1, "{}", r.stderr);
    assert!(
        said[0].contains("mapped shared and writable") && said[0].contains("stays in the file"),
        "{}",
        said[0]
    );
}

/// Renames the killed run made after the checkpoint are undone: python's
/// RotatingFileHandler rotated its log (app.log renamed to app.log.1, the
/// backups moved along, the oldest removed, a new app.log begun: the
/// restart refused, "replaced by another file"), and a bash spool
/// consumer moved its jobs from in/ to done/ with `mv` (the restarted run
/// found them gone). After a checkpoint, more work, SIGKILL and a
/// restart, stdout and every file are byte-identical to an uninterrupted
/// run's, and each rename undone is said.
#[test]
fn renames_after_the_checkpoint_are_undone() {
    let python = (
        common::python3(),
        common::programs_dir().join("rotate_logs.py"),
        &["app.log", "app.log.1", "app.log.2", "app.log.3"][..],
        "step 100\n",
    );
    let bash = (
        PathBuf::from("/bin/bash"),
        common::programs_dir().join("spool_move.sh"),
        &["processed.log"][..],
        "step 20\n",
    );
    for (tag, (prog, script, files, at)) in [("py", python), ("sh", bash)] {
        let args = [script.to_string_lossy().into_owned()];
        // The killed run rotates about twice (moves some 25 jobs) more.
        let (said, check) = interrupted_run(&format!("renames-{tag}"), &prog, &args, at, 700);
        // A killed run that rotated past every backup (a slow checkpoint:
        // the program runs on while its writer compresses) has no file of
        // the checkpoint left to rename back: its own are removed and the
        // image's made again.
        assert!(
            said.contains("renamed back to") || said.contains("made again from the image"),
            "{tag}: no rename undone: {said}"
        );
        check(files);
    }
}

/// Files renamed into place over one the image holds, the way git
/// updates its index and refs (`state.lock` made exclusively, renamed
/// over `state`; every 10th step `state` packed and removed, so the next
/// rename replaces nothing), and names swapped through a third: after a
/// checkpoint, more work, SIGKILL and a restart, every file and stdout
/// are byte-identical to an uninterrupted run's, without a warning.
/// Before, each rename over `state` was "not undone" (its contents were
/// in the image all along), and a lock renamed into place where nothing
/// was went back to its old name and stayed: git's next commit failed,
/// "index.lock: File exists", its HEAD naming a commit the restart had
/// removed.
#[test]
fn files_renamed_over_a_file_the_image_holds_come_back() {
    let script = common::programs_dir().join("lock_rename.sh");
    let args = [script.to_string_lossy().into_owned()];
    for (tag, at) in [("locks-a", "step 20\n"), ("locks-b", "step 27\n")] {
        let (said, check) = interrupted_run(tag, Path::new("/bin/bash"), &args, at, 700);
        assert!(!said.contains("warning"), "{tag}: {said}");
        check(&["state", "packed", "a", "b"]);
    }
}

/// The job killed with a lock file made after the checkpoint, under a
/// name it had used before it (`state.lock`, made exclusively at each
/// step; the checkpoint is taken between two steps, so no rename of it
/// follows): the restart removes it, and the restarted run takes its lock
/// and ends as an uninterrupted run. Before, the lock stayed (the job's
/// log named it before the checkpoint), and the restarted run stopped:
/// "state.lock is there".
#[test]
fn a_lock_file_made_after_the_checkpoint_is_removed() {
    let bash = PathBuf::from("/bin/bash");
    let script = common::programs_dir().join("lock_rename.sh");
    let args = [script.to_string_lossy().into_owned()];
    let plain = Area::new("lock-held-ref");
    let want = rs::reference_output(&plain, &bash, &args);
    let area = Area::new("lock-held");
    let out = area.file("stdout");
    let image = checkpoint_at_kill_at(&area, &bash, &args, "step 29\n", "step 30: locked\n");
    assert!(
        area.file("state.lock").exists(),
        "the killed run held no lock"
    );
    let said = restart(&area, &image, &[]);
    assert!(said.contains("state.lock: removed"), "{said}");
    assert!(!said.contains("warning"), "{said}");
    common::assert_same_output(&std::fs::read(&out).unwrap(), &want, "stdout");
    for f in ["state", "packed", "a", "b"] {
        common::assert_same_output(
            &std::fs::read(area.file(f)).unwrap_or_default(),
            &std::fs::read(plain.file(f)).unwrap(),
            f,
        );
    }
}

/// Files there at the checkpoint that the killed run removed after it,
/// and that the image does not hold (a spool's input made before the job
/// began, consumed with `rm`), are named by the restart: the restarted
/// run will not find them. A temporary file each step makes and removes
/// is not named (born after the checkpoint, or removed before it).
#[test]
fn files_removed_after_the_checkpoint_are_said() {
    let area = Area::new("removed");
    std::fs::create_dir(area.file("in")).unwrap();
    for i in 1..=60 {
        std::fs::write(area.file(&format!("in/j{i}")), format!("job {i}\n")).unwrap();
    }
    // kept.txt, written and closed before the checkpoint (in the image),
    // removed after it by a path through "." as `sort -T .` removes its
    // run files: made again, and not named as lost (the job's log once
    // named it ".../area/./kept.txt", which no descriptor of the image
    // matched).
    let script = "echo keep > kept.txt; for i in $(seq 1 60); do cat in/j$i >> processed.log; \
                  rm in/j$i; echo t > tmp.$i; rm tmp.$i; [ $i = 17 ] && rm ./kept.txt; \
                  echo step $i; sleep 0.02; done";
    let mut kid = start_until(
        run_cmd(
            Path::new("/bin/bash"),
            &["-c", script],
            area.path(),
            &area.images,
        ),
        &area.file("stdout"),
        &area.file("err"),
        "under ckpt",
        "step 15\n",
    );
    let image = common::checkpoint(kid.pid(), Some(&area.images)).unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_millis(500));
    kid.kill();
    let said = restart(&area, &image, &[]);
    let line = said
        .lines()
        .find(|l| l.contains("removed by the killed run after it"))
        .unwrap_or_else(|| panic!("the removals are not said: {said}"));
    assert!(line.contains("/in/j"), "{line}");
    assert!(!said.contains("/tmp."), "a temporary file is named: {said}");
    assert!(
        !line.contains("kept.txt"),
        "a file the image holds is named: {line}"
    );
    // (The restarted run removes it again at its step 17.)
    assert!(
        said.contains("kept.txt: made again from the image"),
        "kept.txt is not made again: {said}"
    );
}

/// A file the program writes at descriptor 1 that the restart command
/// writes too, without O_APPEND (a script's `> log`, which every command
/// it runs inherits, the script writing its own lines between them): the
/// program goes on through the restart's descriptor, the file is not cut
/// back, and the growth is said. Before, the restart cut the log back to
/// its size at the checkpoint beneath the script's position, so the
/// script's next lines left a hole of zeros, and its lines between the
/// checkpoint and the restart were gone. A restart appending to the file
/// the program wrote with `>` (`ckpt restart IMAGE >> out`) is the
/// program's output continued: cut back and byte-identical to an
/// uninterrupted run's.
#[test]
fn a_log_the_restart_command_shares_is_written_on_not_cut_back() {
    use std::io::Write;
    let bin = common::TempDir::new("written-shared-bin");
    let prog = common::compile_c("restart_written.c", bin.path());
    // Its stdout is what it writes to written.out.
    let (_, want_out) = reference(&prog);

    let area = Area::new("written-shared");
    let log_path = area.file("script.log");
    let mut log = std::fs::File::create(&log_path).unwrap();
    log.write_all(b"script: start\n").unwrap();
    let (mut kid, image) = at_step_20(&area, &prog, Out::Shared(&log), &log_path);
    log.write_all(b"script: checkpointed\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    kid.kill();
    log.write_all(b"script: killed\n").unwrap();
    let said = restart_to(&area, &image, &[], Out::Shared(&log));
    log.write_all(b"script: end\n").unwrap();
    let text = String::from_utf8(std::fs::read(&log_path).unwrap()).unwrap();
    assert!(
        !text.contains('\0'),
        "a hole of zeros in the log:\n{text:?}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let at = |l: &str| {
        lines
            .iter()
            .position(|x| *x == l)
            .unwrap_or_else(|| panic!("{l:?} is not in the log:\n{text}"))
    };
    let (checkpointed, killed, end) = (
        at("script: checkpointed"),
        at("script: killed"),
        at("script: end"),
    );
    assert!(
        at("script: start") == 0 && checkpointed < killed && killed < end && end == lines.len() - 1,
        "the script's lines are not all there in order:\n{text}"
    );
    // After the kill: the restarted program's steps from where it was
    // checkpointed to its last, in order.
    let after: Vec<&str> = lines[killed + 1..end].to_vec();
    let first: usize = after
        .first()
        .and_then(|l| l.strip_prefix("step "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the restarted program wrote nothing after the kill:\n{text}"));
    let last_before = lines[..killed]
        .iter()
        .filter_map(|l| l.strip_prefix("step ")?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    let want: Vec<String> = (first..120).map(|i| format!("step {i}")).collect();
    assert!(
        (21..=last_before + 1).contains(&first) && after == want,
        "the restarted program's lines are not steps {first}..119:\n{text}"
    );
    assert!(
        said.contains("script.log is this command's own standard output too")
            && said.contains("not cut back"),
        "the growth of the shared log is not said: {said}"
    );
    assert!(
        !said.contains("script.log: cut back"),
        "the shared log was cut back: {said}"
    );

    // `ckpt restart IMAGE >> out`: the program's `> out` continued.
    let area = Area::new("written-appended");
    let out = area.file("out");
    let (mut kid, image) = at_step_20(&area, &prog, Out::File(&out), &out);
    std::thread::sleep(Duration::from_millis(300));
    kid.kill();
    let appending = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
    let said = restart_to(&area, &image, &[], Out::Shared(&appending));
    assert!(
        said.contains("out: cut back from"),
        "the appended-to output was not cut back: {said}"
    );
    rs::assert_same(&std::fs::read(&out).unwrap(), &want_out, "`>> out` restart");
}

/// restart_written under ckpt with its stdout as `out`, checkpointed once
/// `watch` holds its step 20. The running program and its image.
fn at_step_20(area: &Area, prog: &Path, out: Out, watch: &Path) -> (rs::Kid, PathBuf) {
    let mut kid = start(
        run_cmd(prog, &[] as &[&str], area.path(), &area.images),
        out,
        &area.file("err"),
        "under ckpt",
    );
    rs::wait_file(
        &mut kid,
        watch,
        |d| String::from_utf8_lossy(d).contains("step 20\n"),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let image = common::checkpoint(kid.pid(), Some(&area.images)).unwrap_or_else(|e| panic!("{e}"));
    (kid, image)
}
