//! Periodic checkpoints as generations: `--interval 200ms --keep 3` leaves
//! exactly the newest three images, `ckpt list` shows them whole and in
//! order, and after a SIGKILL at any moment `ckpt restart --latest DIR`
//! brings the program back from the newest whole one (passing over a
//! damaged newer one) with the output of an uninterrupted run.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{reference_output, restart_and_compare, restart_cmd, start, wait_file, Area, Out};
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

fn images(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".img"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
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
    assert_eq!(names, kept, "--keep 3: the newest 3 and what they need");
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
    assert!(
        !images(&area.images).is_empty(),
        "no periodic image was written"
    );
    if !extra.is_empty() {
        // The pages are really stored compressed.
        let any_block = images(&area.images).iter().any(|n| {
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
