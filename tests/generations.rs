//! Periodic checkpoints as generations: `--interval 200ms --keep 3` leaves
//! exactly the newest three images, `ckpt list` shows them whole and in
//! order, and after a SIGKILL at any moment `ckpt restart --latest DIR`
//! brings the program back from the newest whole one (passing over a
//! damaged newer one) with the output of an uninterrupted run.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{
    bases, images, reference_output, restart_and_compare, restart_cmd, settled, start, wait_file,
    Area, Out,
};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `ckpt run --interval INTERVAL --keep KEEP` of `prog args` in `area`,
/// until its output holds `marker`. Returns it and its output file.
fn run_periodic(
    area: &Area,
    prog: &Path,
    args: &[String],
    interval: &str,
    keep: &str,
    marker: &str,
) -> (rs::Kid, std::path::PathBuf) {
    run_periodic_with(
        area,
        prog,
        args,
        &["--interval", interval, "--keep", keep],
        marker,
    )
}

/// [`run_periodic`] with `ckpt run` options of the caller's.
fn run_periodic_with(
    area: &Area,
    prog: &Path,
    args: &[String],
    opts: &[&str],
    marker: &str,
) -> (rs::Kid, std::path::PathBuf) {
    let out = area.file("out");
    let mut run = Command::new(common::ckpt_bin());
    run.arg("run")
        .args(opts)
        .arg("--dir")
        .arg(&area.images)
        .arg("--")
        .arg(prog)
        .args(args)
        .current_dir(area.path());
    common::require_shim();
    let mut kid = start(run, Out::File(&out), &area.file("err"), "under ckpt");
    wait_file(
        &mut kid,
        &out,
        |d| String::from_utf8_lossy(d).contains(marker),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (kid, out)
}

#[test]
fn interval_keep_list_and_restart_latest() {
    let bin = common::TempDir::new("gens-bin");
    let prog = common::compile_c("restart_counter.c", bin.path());
    let area = Area::new("gens");
    let ctl = area.sub("ctl");
    let args = [
        ctl.to_string_lossy().into_owned(),
        "400".into(),
        "10".into(),
    ];
    let want = reference_output(&area, &prog, &args);
    let (mut kid, out) = run_periodic(&area, &prog, &args, "200ms", "3", "line 250 ");
    kid.kill();
    // The image being written when the program died is still finished
    // (and older ones pruned): wait until the directory is settled.
    let mut names = images(&area.images);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let again = images(&area.images);
        if again == names {
            break;
        }
        names = again;
    }
    let listed = common::ckpt(
        area.path(),
        ["list".as_ref(), "--json".as_ref(), area.images.as_os_str()],
    );
    assert!(listed.status.success(), "{}", listed.stderr);
    let rows: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), names.len(), "{}", listed.stdout);
    // The newest 3, and the earlier images those take unchanged pages
    // from (incremental), nothing else.
    let name_of = |r: &serde_json::Value| {
        let p = r["path"].as_str().unwrap();
        Path::new(p)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let newest = &rows[rows.len().saturating_sub(3)..];
    let mut kept: Vec<String> = newest.iter().map(name_of).collect();
    for r in newest {
        for d in r["needs"].as_array().unwrap() {
            kept.push(d.as_str().unwrap().to_string());
        }
    }
    kept.sort();
    kept.dedup();
    // What they need may be a base (`.base`, not a generation).
    let mut on_disk: Vec<String> = names.iter().cloned().chain(bases(&area.images)).collect();
    on_disk.sort();
    assert_eq!(on_disk, kept, "--keep 3: the newest 3 and what they need");
    assert!(names.len() >= 3, "--keep 3 left {names:?}");
    let times: Vec<u64> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["whole"], true, "{r}");
            r["created_unix_ms"].as_u64().unwrap()
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "not oldest first: {times:?}"
    );
    let human = common::ckpt(area.path(), ["list".as_ref(), area.images.as_os_str()]);
    assert!(
        human.stdout.contains("restart_counter") && human.stdout.contains("whole"),
        "{}",
        human.stdout
    );

    // The newest is damaged: --latest takes the one before, and says so.
    let newest = rows[rows.len() - 1]["path"].as_str().unwrap().to_string();
    let mut bytes = std::fs::read(&newest).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0xff;
    std::fs::write(&newest, &bytes).unwrap();
    let said = restart_and_compare(
        restart_cmd(&area.images, &["--latest"], area.path()),
        &out,
        &want,
        &area,
    );
    assert!(
        said.contains("passing over"),
        "no word about the damaged image: {said}"
    );
}

/// Issue "Speed": a program checkpointed every 300 ms while it writes its
/// memory hard (the writers copy it while it changes), SIGKILLed, comes
/// back from its newest image with the output of an uninterrupted run.
#[test]
fn checkpointed_often_while_writing_its_memory_hard() {
    often_while_writing_hard("hard", &[]);
}

/// The same with compressed images (incremental ones take unchanged
/// pages from inside earlier images' blocks), lz4 and zstd.
#[test]
fn checkpointed_often_while_writing_its_memory_hard_compressed() {
    often_while_writing_hard("hardlz4", &["--compress=lz4"]);
    often_while_writing_hard("hardzstd", &["--compress=zstd"]);
}

fn often_while_writing_hard(tag: &str, extra: &[&str]) {
    let bin = common::TempDir::new("hard-bin");
    let prog = common::compile_c("writer_hard.c", bin.path());
    let area = Area::new(tag);
    let want = reference_output(&area, &prog, &[] as &[&str]);
    let mut opts = vec!["--interval", "300ms", "--keep", "2"];
    opts.extend_from_slice(extra);
    let (mut kid, out) = run_periodic_with(&area, &prog, &[], &opts, "step 150 ");
    kid.kill();
    // A writer of the killed program may still finish its image and prune.
    let left = settled(&area.images);
    assert!(!left.is_empty(), "no periodic image was written");
    if !extra.is_empty() {
        // The pages are really stored compressed.
        let any_block = left.iter().any(|n| {
            let v = common::inspect_json(&area.images.join(n)).unwrap_or_else(|e| panic!("{e}"));
            common::arr(&v, "regions").iter().any(|r| {
                r["extents"]
                    .as_array()
                    .is_some_and(|x| x.iter().any(|e| e["codec"].as_u64().unwrap_or(0) != 0))
            })
        });
        assert!(any_block, "{extra:?}: no compressed block in the images");
    }
    restart_and_compare(
        restart_cmd(&area.images, &["--latest"], area.path()),
        &out,
        &want,
        &area,
    );
}

/// The header's metadata checksum of image `p` (bytes 40..48).
fn meta_hash(p: &Path) -> u64 {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    u64::from_le_bytes(b[40..48].try_into().unwrap())
}

/// Every image in `dir` refers only to images there with the metadata it
/// names (what `ckpt restart` checks before it maps anything).
fn assert_consistent(dir: &Path, ctx: &str) {
    for n in images(dir) {
        let v = common::inspect_json(&dir.join(&n)).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        for d in common::arr(&v, "deps") {
            let name = d["name"].as_str().unwrap();
            let dep = dir.join(name);
            assert!(
                dep.is_file(),
                "{ctx}: {n} needs {name}, which is gone: {:?}",
                images(dir)
            );
            assert_eq!(
                d["meta_hash"].as_u64(),
                Some(meta_hash(&dep)),
                "{ctx}: {n} needs another {name} than the one there"
            );
        }
    }
}

/// A copy of the images of `dir` and the bases they need in a new
/// directory `to` (a restarted program checkpoints into its own
/// directory again, and prunes there).
fn copy_images(dir: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for n in images(dir).into_iter().chain(bases(dir)) {
        std::fs::copy(dir.join(&n), to.join(&n)).unwrap();
    }
}

/// The image of `dir` taken last (by its metadata: copies lose the times).
fn newest_image(dir: &Path) -> std::path::PathBuf {
    images(dir)
        .into_iter()
        .map(|n| dir.join(n))
        .max_by_key(|p| {
            let v = common::inspect_json(p).unwrap_or_else(|e| panic!("{e}"));
            v["created_unix_ms"].as_u64().unwrap_or(0)
        })
        .expect("no image")
}

/// `ckpt run --interval 200ms --keep 3` of keep_rewrite (16 MiB, a few
/// pages of it rewritten every step: every image after the first is
/// incremental) with environment `env`, until it printed `marker`.
fn run_rewriting(
    area: &Area,
    prog: &Path,
    steps: &str,
    env: &[(&str, &str)],
    marker: &str,
) -> (rs::Kid, std::path::PathBuf) {
    let out = area.file("out");
    let ctl = area.sub("ctl");
    let mut run = Command::new(common::ckpt_bin());
    run.args(["run", "--interval", "200ms", "--keep", "3", "--dir"])
        .arg(&area.images)
        .arg("--")
        .arg(prog)
        .arg(&ctl)
        .args([steps, "20"])
        .envs(env.iter().copied())
        .current_dir(area.path());
    common::require_shim();
    let mut kid = start(run, Out::File(&out), &area.file("err"), "under ckpt");
    wait_file(
        &mut kid,
        &out,
        |d| String::from_utf8_lossy(d).contains(marker),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (kid, out)
}

/// Issue 8, point 5: `--interval 200ms --keep 3` over many intervals
/// leaves exactly 3 images although each is incremental (the kept ones
/// are folded so they no longer need the removed ones), `ckpt list`
/// shows 3, and each of them, the oldest too, restarts on its own to the
/// output of an uninterrupted run.
#[test]
fn keep_3_leaves_exactly_3_images_each_restartable() {
    let bin = common::TempDir::new("keep3-bin");
    let prog = common::compile_c("keep_rewrite.c", bin.path());
    let area = Area::new("keep3");
    let want = reference_output(
        &area,
        &prog,
        &[area.sub("plain").to_string_lossy().as_ref(), "130", "20"],
    );
    let (mut kid, out) = run_rewriting(&area, &prog, "130", &[], "step 110 ");
    kid.kill();
    let names = settled(&area.images);
    assert_eq!(names.len(), 3, "--keep 3 left {names:?}");
    let err = std::fs::read_to_string(area.file("err")).unwrap_or_default();
    assert!(!err.contains("cannot fold"), "a fold failed: {err}");
    assert_consistent(&area.images, "after the run");
    let listed = common::ckpt(
        area.path(),
        ["list".as_ref(), "--json".as_ref(), area.images.as_os_str()],
    );
    let rows: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3, "{}", listed.stdout);
    // Folding did happen: the newer images still take pages from older
    // ones (kept ones), and the program checkpointed more than 3 times.
    let seqs: Vec<u64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    // More than 3 checkpoints (an image was dropped); under load, ticks
    // that come while an image is still being written are skipped.
    assert!(seqs[0] > 1, "too few checkpoints to prune: {seqs:?}");
    assert!(
        rows.as_array().unwrap()[2]["needs"]
            .as_array()
            .is_some_and(|n| !n.is_empty()),
        "the newest image is not incremental: {}",
        listed.stdout
    );
    // Copies first: a restarted program checkpoints (and prunes) again.
    let snaps: Vec<_> = (0..names.len())
        .map(|k| {
            let snap = area.sub(&format!("snap{k}"));
            copy_images(&area.images, &snap);
            snap
        })
        .collect();
    for (n, snap) in names.iter().zip(&snaps) {
        let said = restart_and_compare(
            restart_cmd(&snap.join(n), &[], area.path()),
            &out,
            &want,
            &area,
        );
        assert!(!said.contains("missing"), "{n}: {said}");
    }
}

/// A writer SIGKILLed at each step of a fold (stopped there by the
/// test-only `CKPT_TEST_FOLD_STOP`, before a rename or a removal) leaves
/// every image referring to files that are there with the metadata it
/// names, and the newest restartable; the program's next prunes clean up
/// what it left, back to exactly 3.
#[test]
fn a_writer_killed_while_folding_leaves_every_image_consistent() {
    let bin = common::TempDir::new("foldkill-bin");
    let prog = common::compile_c("keep_rewrite.c", bin.path());
    // Steps of the first fold (images 2, 3 under new names, 4 in place;
    // old 3, old 2 removed; 1 removed): before the second rename, before
    // the first removal (every old and new version present), before the
    // last removal.
    for step in ["2", "4", "6"] {
        let area = Area::new(&format!("foldkill{step}"));
        let want = reference_output(
            &area,
            &prog,
            // Long enough (2.4 s) that the program outlives the stopped
            // fold under load: its next folds must clean up after it.
            &[area.sub("plain").to_string_lossy().as_ref(), "120", "20"],
        );
        let flag = area.file("stopped");
        let stop = format!("{step}:{}", flag.display());
        let (mut kid, out) = run_rewriting(
            &area,
            &prog,
            "120",
            &[("CKPT_TEST_FOLD_STOP", &stop)],
            "step 5 ",
        );
        let t0 = std::time::Instant::now();
        while !flag.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "step {step}: no fold stopped"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The writer stops itself right after making the flag. It is the
        // program's child, or init's once the program ended (a slow fold
        // can outlive the run): found by its command line, the program's.
        let area_path = area.path().to_string_lossy().into_owned();
        let writer = loop {
            let stopped: Vec<i32> = rs::pids_named("ckpt-writer")
                .into_iter()
                .filter(|p| {
                    let s = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                    let ours = std::fs::read(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&area_path));
                    ours && s
                        .rsplit_once(')')
                        .is_some_and(|(_, r)| r.trim_start().starts_with('T'))
                })
                .collect();
            if let Some(&w) = stopped.first() {
                break w;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "step {step}: no stopped writer"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let snap = area.sub("snap");
        copy_images(&area.images, &snap);
        // SAFETY: SIGKILL to the stopped writer found above.
        unsafe { libc::kill(writer, libc::SIGKILL) };
        assert_consistent(&snap, &format!("killed before step {step}"));
        assert!(
            images(&snap).len() > 3,
            "step {step}: nothing was left half-done: {:?}",
            images(&snap)
        );
        // The program goes on; its next folds clean up.
        kid.wait(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
        let names = settled(&area.images);
        assert_eq!(
            names.len(),
            3,
            "step {step}: after the next prunes {names:?}"
        );
        assert_consistent(&area.images, &format!("after step {step}"));
        // The newest image at the moment of the kill restarts exact.
        let newest = newest_image(&snap);
        restart_and_compare(restart_cmd(&newest, &[], area.path()), &out, &want, &area);
    }
}

/// `--keep 2` with small changes between checkpoints: the whole first
/// image is not copied into the kept ones (1 GiB rewritten to drop a
/// 10 MiB image, at every checkpoint) but stays beside them as a base,
/// the same file, not a generation (`ckpt list` shows 2 images and names
/// the base). Once the program rewrote three quarters of its memory and
/// no kept image uses half of the base, it is folded into them and goes.
/// The newest image restarts exact at each stage, from a copy taken then.
#[test]
fn a_whole_image_stays_as_a_base_while_half_of_it_is_used() {
    use std::os::unix::fs::MetadataExt;
    let area = Area::new("keepbase");
    let prog = common::compile_c("keep_base.c", &area.sub("bin"));
    let plain = area.sub("plain");
    for k in 1..=5 {
        common::touch(&plain.join(format!("go{k}")));
    }
    common::touch(&plain.join("end"));
    let want = reference_output(&area, &prog, &[&plain]);
    let ctl = area.sub("ctl");
    let out = area.file("out");
    let mut kid = start(
        rs::run_cmd(&prog, &[&ctl], area.path(), &area.images),
        Out::File(&out),
        &area.file("err"),
        "under ckpt",
    );
    let dir = &area.images;
    let mut step = |k: usize| -> std::path::PathBuf {
        if k > 0 {
            common::touch(&ctl.join(format!("go{k}")));
        }
        rs::wait_marker(&mut kid, &ctl.join(format!("step{k}"))).unwrap_or_else(|e| panic!("{e}"));
        let img = common::checkpoint(kid.pid(), Some(dir)).unwrap_or_else(|e| panic!("{e}"));
        settled(dir);
        img
    };
    let whole = step(0);
    step(1);
    step(2);
    // The first image is a base now: both kept images take pages from it.
    let b = bases(dir);
    assert_eq!(b.len(), 1, "no base: {:?} {b:?}", images(dir));
    assert_eq!(images(dir).len(), 2, "--keep 2 left {:?}", images(dir));
    assert!(!whole.exists(), "the base still has its generation's name");
    let base = dir.join(&b[0]);
    let ino = std::fs::metadata(&base).unwrap().ino();
    let img_bytes = |d: &Path| -> u64 {
        images(d)
            .iter()
            .map(|n| std::fs::metadata(d.join(n)).unwrap().len())
            .sum()
    };
    let base_bytes = std::fs::metadata(&base).unwrap().len();
    assert!(
        img_bytes(dir) * 4 < base_bytes,
        "the kept images ({} bytes) hold copies of the base ({base_bytes} bytes)",
        img_bytes(dir)
    );
    let listed = common::ckpt(area.path(), ["list".as_ref(), dir.as_os_str()]);
    assert!(
        listed.stdout.contains(&b[0]) && listed.stdout.contains("not a generation"),
        "ckpt list does not name the base:\n{}",
        listed.stdout
    );
    step(3);
    assert_eq!(bases(dir), b, "the base changed");
    assert_eq!(
        std::fs::metadata(&base).unwrap().ino(),
        ino,
        "the base was rewritten"
    );
    for n in images(dir) {
        assert!(
            common::image_deps(&dir.join(&n)).contains(&b[0]),
            "{n} does not use the base"
        );
    }
    let snap3 = area.sub("snap3");
    copy_images(dir, &snap3);
    assert_consistent(&snap3, "with a base");
    // Three pages in four rewritten: the image after it uses a quarter of
    // the base, the one before all of it; once that one goes, so does the
    // base (folded into the kept images).
    step(4);
    assert_eq!(
        bases(dir),
        b,
        "the base went while a kept image used all of it"
    );
    let newest = step(5);
    assert!(
        bases(dir).is_empty(),
        "a base a quarter used stays: {:?}",
        bases(dir)
    );
    assert!(!base.exists());
    assert_eq!(images(dir).len(), 2, "--keep 2 left {:?}", images(dir));
    for n in images(dir) {
        assert!(
            common::image_deps(&dir.join(&n))
                .iter()
                .all(|d| !d.ends_with(".base")),
            "{n} still refers to a base"
        );
    }
    assert_consistent(dir, "after the base was folded");
    let err = std::fs::read_to_string(area.file("err")).unwrap_or_default();
    assert!(!err.contains("cannot fold"), "a fold failed: {err}");
    kid.kill();
    common::touch(&ctl.join("end"));
    restart_and_compare(restart_cmd(&newest, &[], area.path()), &out, &want, &area);
    // The copy taken with the base, from its newest image (the output file
    // is cut back to where that checkpoint saw it).
    let n3 = newest_image(&snap3);
    restart_and_compare(restart_cmd(&n3, &[], area.path()), &out, &want, &area);
}

/// Checkpoints of one job asked for at the same moment are taken in turn:
/// each succeeds with an image of its own (the later ones say they wait),
/// for a single process and for a job of two, and the newest restarts to
/// an uninterrupted run's output. Before, the later requests met the
/// process frozen by the first and failed with wrong words ("ended during
/// the checkpoint", "did not stop within 5 s").
#[test]
fn checkpoints_asked_at_once_are_taken_in_turn() {
    let bin = common::TempDir::new("turns-bin");
    let counter = common::compile_c("restart_counter.c", bin.path());
    for tree in [false, true] {
        let area = Area::new(if tree { "turns-tree" } else { "turns" });
        let ctl = area.sub("ctl").to_string_lossy().into_owned();
        // The job of two: bash and the counter, its output through cat.
        let (prog, args) = if tree {
            let line = format!("'{}' '{ctl}' 150 | cat", counter.display());
            (Path::new("/bin/bash"), vec!["-c".to_string(), line])
        } else {
            (counter.as_path(), vec![ctl, "150".to_string()])
        };
        let want = reference_output(&area, prog, &args);
        let (mut kid, out) = run_periodic_with(&area, prog, &args, &["--keep", "4"], "line 20 ");
        let pid = kid.pid();
        let asked: Vec<_> = (0..4)
            .map(|_| {
                let dir = area.images.clone();
                std::thread::spawn(move || common::checkpoint(pid, Some(&dir)))
            })
            .collect();
        let mut made: Vec<std::path::PathBuf> = asked
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("tree {tree}: {e}"))
            })
            .collect();
        kid.kill();
        made.sort();
        made.dedup();
        assert_eq!(
            made.len(),
            4,
            "tree {tree}: four images, each its own: {made:?}"
        );
        settled(&area.images);
        let newest = made.last().unwrap();
        restart_and_compare(restart_cmd(newest, &[], area.path()), &out, &want, &area);
    }
}
