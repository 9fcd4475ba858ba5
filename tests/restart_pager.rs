//! The pager (`ckpt restart` filling anonymous memory through the
//! restorer's userfaultfd) on a real program: restart_pager.c has the
//! kernel read from stored pages and write into never-stored ones after
//! the restart, forks, and hashes every byte; the restarted run must
//! print exactly what an uninterrupted run prints. Each test also reads
//! the pager's test log (CKPT_TEST_PAGER_LOG) to see that the pager,
//! not the restorer's own copy, brought the memory back, and with which
//! kind of userfaultfd.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{checkpoint_and_kill, restart_and_compare, restart_cmd, run_cmd, start, Area, Out};
use std::time::Duration;

/// Run restart_pager.c plainly, then under ckpt (`run_env` on both),
/// checkpoint at "step 19", SIGKILL, restart with `restart_env` and
/// `extra` arguments, compare. Returns the pager's log.
fn cycle(
    tag: &str,
    run_env: &[(&str, &str)],
    restart_env: &[(&str, &str)],
    extra: &[&str],
) -> String {
    let area = Area::new(tag);
    std::fs::create_dir_all(&area.images).unwrap();
    let prog = common::compile_c("restart_pager.c", &area.sub("bin"));
    let want_out = area.file("want.out");
    let mut plain = rs::plain_cmd(&prog, &[] as &[&str], area.path());
    plain.envs(run_env.iter().copied());
    let st = rs::reference(plain, &want_out, &area.file("want.err"), "plain");
    rs::assert_success(st, "the uninterrupted run", "");
    let want = std::fs::read(&want_out).unwrap();
    let text = String::from_utf8_lossy(&want);
    assert!(
        text.contains("pipe copy same")
            && text.contains("cmdline read ok")
            && text.contains("child 0"),
        "the uninterrupted run:\n{text}"
    );
    let out = area.file("out");
    let mut kid = run_to_step_19(&area, &prog, run_env, &out);
    let image = checkpoint_and_kill(&mut kid, &area.images);
    // What a killed run wrote after the checkpoint: the pager cuts it
    // back once memory is in (the comparison below sees it gone).
    append(&out, b"written after the checkpoint\n");
    if let Some((_, codec)) = run_env.iter().find(|(k, _)| *k == "CKPT_COMPRESS") {
        let shown = common::ckpt(area.path(), ["inspect".as_ref(), image.as_os_str()]);
        assert!(
            shown.stdout.contains(&format!("compressed ({codec})")),
            "the image is not compressed:\n{}",
            shown.stdout
        );
    }
    let log = area.file("pager.log");
    let mut cmd = restart_cmd(&image, extra, area.path());
    cmd.envs(restart_env.iter().copied())
        .env("CKPT_TEST_PAGER_LOG", &log);
    restart_and_compare(cmd, &out, &want, &area);
    std::fs::read_to_string(&log).unwrap_or_default()
}

/// `prog` under ckpt in `area` (with `env`), its stdout in `out`, once it
/// printed "step 19".
fn run_to_step_19(
    area: &Area,
    prog: &std::path::Path,
    env: &[(&str, &str)],
    out: &std::path::Path,
) -> rs::Kid {
    let mut run = run_cmd(prog, &[] as &[&str], area.path(), &area.images);
    run.envs(env.iter().copied());
    let mut kid = start(run, Out::File(out), &area.file("err"), "under ckpt");
    rs::wait_file(
        &mut kid,
        out,
        |d| String::from_utf8_lossy(d).contains("step 19"),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    kid
}

fn append(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// Filled bytes named in a log line, which must say `uffd` and ok.
fn filled(log: &str, uffd: &str) -> u64 {
    let line = log
        .lines()
        .next()
        .unwrap_or_else(|| panic!("the pager did not serve: log {log:?}"));
    assert!(
        line.starts_with(&format!("uffd={uffd} ")) && line.ends_with(" ok"),
        "pager log: {log:?}"
    );
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("bytes="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A plain image: the pager fills the program's memory (a userfaultfd
/// from /dev/userfaultfd, kernel faults included), and the kernel reads
/// and writes it correctly afterwards.
#[test]
fn the_pager_fills_memory_the_kernel_then_uses() {
    let log = cycle("pager", &[], &[], &[]);
    assert!(filled(&log, "kernel") >= 20 << 20, "pager log: {log}");
    assert!(log.contains(" lazy "), "not a lazy restart: {log}");
}

/// `--eager`: every page is in before the program runs.
#[test]
fn an_eager_restart_fills_memory_before_the_program_runs() {
    let log = cycle("pagereager", &[("CKPT_COMPRESS", "lz4")], &[], &["--eager"]);
    assert!(filled(&log, "kernel") >= 20 << 20, "pager log: {log}");
    assert!(log.contains(" eager "), "not an eager restart: {log}");
}

/// Compressed images (lz4 and zstd): decompressed by the pager straight
/// into the program.
#[test]
fn the_pager_decompresses_into_the_program() {
    for codec in ["lz4", "zstd"] {
        let log = cycle(
            &format!("pager{codec}"),
            &[("CKPT_TEST_PAGER_SMOOTH", "1"), ("CKPT_COMPRESS", codec)],
            &[],
            &[],
        );
        assert!(
            filled(&log, "kernel") >= 20 << 20,
            "{codec}: pager log: {log}"
        );
    }
}

/// Without /dev/userfaultfd (simulated) the restorer makes its
/// userfaultfd with the syscall, user-mode faults only: still filled,
/// eagerly.
#[test]
fn without_dev_userfaultfd_the_syscall_serves() {
    let log = cycle(
        "pagernodev",
        &[],
        &[("CKPT_TEST_NO_DEV_USERFAULTFD", "1")],
        &[],
    );
    assert!(filled(&log, "user") >= 20 << 20, "pager log: {log}");
    // A read(2) into a page not filled yet would fail: eager.
    assert!(log.contains(" eager "), "not an eager restart: {log}");
}

/// Without /dev/userfaultfd on a system whose vm.unprivileged_userfaultfd
/// is 1 (simulated; run as root, whose syscall may take kernel faults):
/// the syscall's userfaultfd, kernel faults included, and a lazy restart.
#[test]
fn without_dev_userfaultfd_a_permissive_system_restarts_lazily() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root for a userfaultfd taking kernel faults");
        return;
    }
    let log = cycle(
        "pagersysctl",
        &[],
        &[
            ("CKPT_TEST_NO_DEV_USERFAULTFD", "1"),
            ("CKPT_TEST_UNPRIVILEGED_USERFAULTFD", "1"),
        ],
        &[],
    );
    assert!(filled(&log, "kernel") >= 20 << 20, "pager log: {log}");
    assert!(log.contains(" lazy "), "not a lazy restart: {log}");
}

/// `--no-namespace`: the restart command becomes the restorer, which
/// copies the memory itself (no pager).
#[test]
fn no_namespace_restarts_without_the_pager() {
    let log = cycle(
        "pagernons",
        &[("CKPT_COMPRESS", "lz4")],
        &[],
        &["--no-namespace"],
    );
    assert!(log.is_empty(), "a pager served: {log}");
}

/// restart_pager.c under ckpt with lz4 images, checkpointed at "step 19"
/// and killed; then its largest compressed block of anonymous memory made
/// garbage with a checksum to match (only a crafted image is like this),
/// and a line appended to its output as the killed run would have.
/// Returns (image, output file, its contents now).
fn crafted_image(area: &Area) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    std::fs::create_dir_all(&area.images).unwrap();
    let prog = common::compile_c("restart_pager.c", &area.sub("bin"));
    let out = area.file("out");
    let env = [("CKPT_TEST_PAGER_SMOOTH", "1"), ("CKPT_COMPRESS", "lz4")];
    let mut kid = run_to_step_19(area, &prog, &env, &out);
    let image = rs::checkpoint_n_and_kill(&mut kid, &area.images, 1);
    let (header, mut meta) = ckpt::image::read_file(&image).unwrap();
    let mut bytes = std::fs::read(&image).unwrap();
    // In the program's 48 MiB buffer (a region a lazy restart pages).
    let e = meta
        .regions
        .iter_mut()
        .filter(|r| r.kind == ckpt::image::RegionKind::Anonymous)
        .max_by_key(|r| r.extents.iter().map(|e| e.len).sum::<u64>())
        .into_iter()
        .flat_map(|r| r.extents.iter_mut())
        .filter(|e| e.codec == 1)
        .max_by_key(|e| e.stored)
        .expect("a compressed block");
    let at = e.file_offset as usize;
    let stored = &mut bytes[at..at + e.stored as usize];
    for (i, b) in stored.iter_mut().enumerate() {
        *b = 0xf0 | (i as u8 & 0x0f);
    }
    e.hash = xxhash_rust::xxh3::xxh3_64(stored);
    let mut m = Vec::new();
    ckpt::image::encode_meta(&meta, &mut m).unwrap();
    bytes.truncate(header.meta_offset as usize);
    bytes.extend_from_slice(&m);
    let h = ckpt::image::header_for(&m, header.meta_offset, header.data_len);
    bytes[..ckpt::image::HEADER_LEN].copy_from_slice(&h.encode());
    std::fs::write(&image, &bytes).unwrap();
    append(&out, b"written after the checkpoint\n");
    let before = std::fs::read(&out).unwrap();
    (image, out, before)
}

/// Eager: a block that does not decompress is found by the pager after
/// the restorer destroyed its address space but before anything else;
/// the restart fails with 71 and says why, and the file the killed run
/// wrote after the checkpoint is left as it is (no rollback).
#[test]
fn a_block_that_does_not_decompress_fails_before_files_are_touched() {
    let area = Area::new("pagerbad");
    let (image, out, before) = crafted_image(&area);
    let r = common::run_cmd(
        &mut restart_cmd(&image, &["--eager"], area.path()),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(r.code(), Some(71), "restart of a crafted image: {r:?}");
    assert!(
        r.stderr.contains("cannot be decompressed"),
        "the error says why: {}",
        r.stderr
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "the output file was touched"
    );
}

/// Lazy: the program already runs when the pager finds the block; the
/// program is killed before it reads a page of it (its faults wait on
/// the command's copy of the userfaultfd) and the restart says why.
#[test]
fn a_block_that_does_not_decompress_stops_a_lazily_restarted_program() {
    let area = Area::new("pagerbadlazy");
    let (image, out, _) = crafted_image(&area);
    let r = common::run_cmd(
        &mut restart_cmd(&image, &[], area.path()),
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(!r.status.success(), "restart of a crafted image: {r:?}");
    assert!(
        r.stderr.contains("cannot be decompressed") && r.stderr.contains("the program was stopped"),
        "the error says why: {}",
        r.stderr
    );
    let text = String::from_utf8_lossy(&std::fs::read(&out).unwrap()).into_owned();
    assert!(
        !text.contains("hash ") && !text.contains("written after"),
        "the program went on, or the output was not cut back:\n{text}"
    );
}

/// A byte of the program's memory flipped in its image (bit rot): an
/// eager restart refuses the image before anything starts; a lazy one,
/// which checks a large region's pieces as it copies them in (so that a
/// program answers within milliseconds whatever its size), stops the
/// program before it could read the damaged piece and says why.
#[test]
fn a_flipped_byte_of_memory_is_never_run_on() {
    flipped_byte_is_never_run_on("pagerflip", 1);
}

/// The same in the earlier image an incremental one takes the damaged
/// piece from: a lazy restart from the chain checks the earlier image's
/// pieces as it copies them too (so it answers as soon as a restart from
/// a whole image does), and still never runs on a damaged one.
#[test]
fn a_flipped_byte_in_an_earlier_image_is_never_run_on() {
    flipped_byte_is_never_run_on("pagerflipchain", 2);
}

/// restart_pager.c checkpointed `n` times at "step 19", killed, a byte of
/// its buffer flipped in the first image; restarts from the last image,
/// eager and lazy.
fn flipped_byte_is_never_run_on(tag: &str, n: usize) {
    let area = Area::new(tag);
    std::fs::create_dir_all(&area.images).unwrap();
    let prog = common::compile_c("restart_pager.c", &area.sub("bin"));
    let out = area.file("out");
    let mut kid = run_to_step_19(&area, &prog, &[], &out);
    let image = rs::checkpoint_n_and_kill(&mut kid, &area.images, n);
    let (_, last) = ckpt::image::read_file(&image).unwrap();
    let first = match last.deps.last() {
        Some(d) => area.images.join(&d.name),
        None => image.clone(),
    };
    assert_eq!(last.deps.len(), n - 1, "a chain of {n} images");
    let (_, meta) = ckpt::image::read_file(&first).unwrap();
    let e = meta
        .regions
        .iter()
        .filter(|r| r.kind == ckpt::image::RegionKind::Anonymous)
        .max_by_key(|r| r.extents.iter().map(|e| e.len).sum::<u64>())
        .and_then(|r| r.extents.iter().filter(|e| e.src == 0).nth(5))
        .expect("a stored piece of the program's buffer");
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[e.file_offset as usize + 100] ^= 0x40;
    std::fs::write(&first, &bytes).unwrap();
    let r = common::run_cmd(
        &mut restart_cmd(&image, &["--eager"], area.path()),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(r.code(), Some(1), "eager restart of a damaged image: {r:?}");
    assert!(r.stderr.contains("checksum mismatch"), "{}", r.stderr);
    let before = std::fs::read(&out).unwrap();
    let r = common::run_cmd(
        &mut restart_cmd(&image, &[], area.path()),
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(
        !r.status.success(),
        "lazy restart of a damaged image: {r:?}"
    );
    assert!(
        r.stderr.contains("checksum mismatch") && r.stderr.contains("the program was stopped"),
        "the error says why: {}",
        r.stderr
    );
    let after = String::from_utf8_lossy(&std::fs::read(&out).unwrap()).into_owned();
    assert!(
        !after.contains("hash ") && after.len() <= before.len() + 200,
        "the program went on:\n{after}"
    );
}

/// restart_lazy.c: its reference output, and an image of it taken at
/// "step 19" (then killed), with the file "hold" made so that the
/// restarted program waits at step 20 (see [`held`]). Returns (reference
/// output, image, output file).
fn lazy_image(area: &Area) -> (Vec<u8>, std::path::PathBuf, std::path::PathBuf) {
    std::fs::create_dir_all(&area.images).unwrap();
    let prog = common::compile_c("restart_lazy.c", &area.sub("bin"));
    let want = rs::reference_output(area, &prog, &[] as &[&str]);
    let text = String::from_utf8_lossy(&want);
    assert!(
        text.contains("dropped zero")
            && text.contains("pipe copy same")
            && text.contains("mapped again zero")
            && text.contains("two threads zero")
            && text.contains("child 0"),
        "the uninterrupted run:\n{text}"
    );
    let out = area.file("out");
    let pause = area.file("pause");
    std::fs::write(&pause, b"").unwrap();
    let mut kid = run_to_step_19(area, &prog, &[], &out);
    let image = checkpoint_and_kill(&mut kid, &area.images);
    std::fs::remove_file(&pause).unwrap();
    std::fs::write(area.file("hold"), b"").unwrap();
    (want, image, out)
}

/// Once the restarted restart_lazy.c (`kid`, the restart command) waits
/// at step 20 because of the file "hold" (made by `lazy_image`).
fn held(kid: &mut rs::Kid, area: &Area) {
    let held = area.file("held");
    let t = std::time::Instant::now();
    while !held.exists() {
        assert!(
            kid.exited().is_none(),
            "the restart ended:\n{}",
            kid.describe()
        );
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the program never got to step 20"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A number `key=N` of a pager log line.
fn logged(log: &str, key: &str) -> u64 {
    log.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Lazy, with the background fill slowed down: right after the restart
/// the program drops pages, unmaps and maps again, moves a region, has
/// the kernel read and write pages not filled yet, and forks; its output
/// equals an uninterrupted run's, and the pager saw the removals, the
/// move and the faults.
#[test]
fn a_lazily_restarted_program_drops_moves_and_forks_memory_not_yet_filled() {
    let area = Area::new("lazyevents");
    let (want, image, out) = lazy_image(&area);
    let log = area.file("pager.log");
    let mut cmd = restart_cmd(&image, &[], area.path());
    cmd.env("CKPT_TEST_PAGER_LOG", &log)
        .env("CKPT_TEST_PAGER_SLOW_MS", "100");
    let rerr = area.file("restart.err");
    let mut kid = start(cmd, Out::Null, &rerr, "ckpt restart");
    held(&mut kid, &area);
    assert!(
        std::fs::read_to_string(&log).unwrap_or_default().is_empty(),
        "the slowed fill ended before the program could act"
    );
    std::fs::remove_file(area.file("hold")).unwrap();
    let st = kid
        .wait(rs::RESTART_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    rs::assert_success(st, "restarted program", &kid.describe());
    rs::assert_same(&std::fs::read(&out).unwrap(), &want, "stdout after restart");
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!("pager log: {log}");
    assert!(
        log.contains(" lazy ") && log.trim_end().ends_with(" ok"),
        "pager log: {log}"
    );
    assert!(logged(&log, "removed") >= 2, "no removal seen: {log}");
    assert!(logged(&log, "moved") >= 1, "no move seen: {log}");
    assert!(logged(&log, "faults") >= 1, "no fault served: {log}");
}

/// A checkpoint asked for while a lazy fill goes on waits until every
/// page is in (the pager has ended and logged when `ckpt checkpoint`
/// answers), and its image restarts to an uninterrupted run's output.
#[test]
fn a_checkpoint_during_a_lazy_fill_waits_for_every_page() {
    let area = Area::new("lazyckpt");
    let (want, image, out) = lazy_image(&area);
    let log = area.file("pager.log");
    let mut cmd = restart_cmd(&image, &[], area.path());
    cmd.env("CKPT_TEST_PAGER_LOG", &log)
        .env("CKPT_TEST_PAGER_SLOW_MS", "100");
    let mut kid = start(cmd, Out::Null, &area.file("restart1.err"), "ckpt restart");
    held(&mut kid, &area);
    assert!(
        std::fs::read_to_string(&log).unwrap_or_default().is_empty(),
        "the slowed fill ended before the checkpoint could be asked for"
    );
    let image2 = rs::checkpoint_n_and_kill(&mut kid, &area.images, 1);
    std::fs::remove_file(area.file("hold")).unwrap();
    let first = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        first.contains(" lazy ") && first.trim_end().ends_with(" ok"),
        "the checkpoint did not wait for the fill: pager log {first:?}"
    );
    restart_and_compare(restart_cmd(&image2, &[], area.path()), &out, &want, &area);
}

/// Should the pager die while the program runs, the program is killed
/// (it never reads a page of its image as zeros) and the restart says
/// why.
#[test]
fn a_lazily_restarted_program_is_stopped_when_its_pager_dies() {
    let area = Area::new("lazypagerdies");
    let (_, image, out) = lazy_image(&area);
    let mut cmd = restart_cmd(&image, &[], area.path());
    cmd.env("CKPT_TEST_PAGER_SLOW_MS", "200");
    let err = area.file("restart.err");
    let mut kid = start(cmd, Out::Null, &err, "ckpt restart");
    held(&mut kid, &area);
    let pagers: Vec<i32> = rs::pids_named("ckpt-pager")
        .into_iter()
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.to_string()))
                .and_then(|r| {
                    r.split_whitespace()
                        .nth(1)
                        .and_then(|pp| pp.parse::<i32>().ok())
                })
                == Some(kid.pid())
        })
        .collect();
    assert_eq!(pagers.len(), 1, "the restart's pager: {pagers:?}");
    // SAFETY: killing the pager process found above.
    unsafe { libc::kill(pagers[0], libc::SIGKILL) };
    let st = kid
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!st.success(), "the restart succeeded without its pager");
    let said = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(
        said.contains("the program was stopped"),
        "restart said: {said}"
    );
    let text = String::from_utf8_lossy(&std::fs::read(&out).unwrap()).into_owned();
    assert!(!text.contains("hash "), "the program went on:\n{text}");
}

/// As an unprivileged user (`nobody`, when run as root): /dev/userfaultfd
/// cannot be opened and the restart makes a user namespace; the restorer
/// makes its userfaultfd with the syscall (user-mode faults only) and
/// the pager, forked before the namespaces, serves it.
#[test]
fn an_unprivileged_restart_is_paged_too() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if common::not_root("to act as nobody") {
        return;
    }
    let area = Area::new("pagernobody");
    let open_up = |p: &std::path::Path| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    };
    open_up(area.path());
    std::fs::create_dir_all(&area.images).unwrap();
    open_up(&area.images);
    let bin = area.sub("bin");
    open_up(&bin);
    let prog = common::compile_c("restart_pager.c", &bin);
    let nobody = |mut c: std::process::Command| {
        c.uid(65534).gid(65534).env_remove("CKPT_RUNTIME_DIR");
        c
    };
    let file = |name: &str| {
        let f = area.file(name);
        std::fs::write(&f, b"").unwrap();
        open_up(&f);
        f
    };
    let want_out = file("want.out");
    let st = rs::reference(
        nobody(rs::plain_cmd(&prog, &[] as &[&str], area.path())),
        &want_out,
        &file("want.err"),
        "plain",
    );
    if !st.success() {
        eprintln!("skipped: `nobody` cannot run {}", prog.display());
        return;
    }
    let want = std::fs::read(&want_out).unwrap();
    let out = file("out");
    let mut kid = start(
        nobody(run_cmd(&prog, &[] as &[&str], area.path(), &area.images)),
        Out::File(&out),
        &file("err"),
        "under ckpt",
    );
    rs::wait_file(
        &mut kid,
        &out,
        |d| String::from_utf8_lossy(d).contains("step 19"),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut ck = nobody(std::process::Command::new(common::ckpt_bin()));
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
    kid.kill();
    let image = std::path::PathBuf::from(String::from_utf8_lossy(&r.stdout).trim());
    let log = file("pager.log");
    let mut cmd = nobody(restart_cmd(&image, &[], area.path()));
    cmd.env("CKPT_TEST_PAGER_LOG", &log);
    restart_and_compare(cmd, &out, &want, &area);
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(filled(&log, "user") >= 20 << 20, "pager log: {log}");
}
