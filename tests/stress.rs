//! Issue acceptance 4: 100 checkpoints of a program whose 8 threads
//! open/dup/close descriptors as fast as they can: no deadlock (each
//! checkpoint answers within 20 s), no crash; once the storm stops, the
//! image's descriptor table equals /proc/PID/fd (less ckpt's own).

mod common;

use common::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const STORM_CHECKPOINTS: usize = 100;

#[test]
fn checkpoints_during_a_descriptor_storm() {
    require_shim();
    let tmp = TempDir::new("storm");
    let bin = compile_c("storm.c", tmp.path());
    let ctl = tmp.sub("ctl");
    let images = tmp.sub("images");
    let mut run = Spawn::new(&bin, tmp.path())
        .arg(&ctl)
        .under_ckpt(&images, "storm (ckpt run)");
    let kv =
        wait_marker(&mut run, &ctl.join("ready"), READY_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let pid = kv_num(&kv, "pid") as i32;
    run.adopt(pid);
    let initial: BTreeSet<i32> = kv
        .get("initial")
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();
    assert!(
        initial.contains(&1),
        "the storm's initial descriptors lack stdout: {kv:?}"
    );

    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut prev: Option<std::path::PathBuf> = None;
    for i in 1..=STORM_CHECKPOINTS {
        let t = Instant::now();
        let img = checkpoint(pid, Some(&images)).unwrap_or_else(|e| {
            panic!(
                "checkpoint {i} of {STORM_CHECKPOINTS} during the storm: {e}\n{}\n{}",
                threads_report(pid),
                run.describe()
            )
        });
        slowest = slowest.max(t.elapsed());
        if let Some(st) = run.exited() {
            panic!(
                "the storm program died after checkpoint {i} ({st})\n{}",
                run.describe()
            );
        }
        // Look inside some of them; the storm keeps changing the table, so
        // only its shape is checked.
        if i % 25 == 0 {
            let j = inspect_json(&img).unwrap_or_else(|e| panic!("checkpoint {i}: {e}"));
            assert_eq!(
                at(&j, "seq").as_u64(),
                Some(i as u64),
                "seq of checkpoint {i}"
            );
            let threads = arr(&j, "threads");
            let created = threads
                .iter()
                .filter(|t| t["origin"].as_str() == Some("pthread_create"))
                .count();
            assert_eq!(
                created, 8,
                "checkpoint {i}: 8 storm threads must be listed: {threads:?}"
            );
            let soft = nofile_soft(pid).unwrap_or_else(|e| panic!("{e}")) as i64;
            for f in arr(&j, "fds") {
                let n = f["fd"].as_i64().unwrap_or(-1);
                assert!(
                    n >= 0 && n + 16 < soft,
                    "checkpoint {i}: odd descriptor in the image (ckpt's own?): {f}"
                );
            }
        }
        // Keep the disk use flat whatever the naming scheme.
        if let Some(p) = prev.replace(img.clone()) {
            if p != img {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let storm_time = start.elapsed();

    // Stop the storm; the threads keep their last descriptors open.
    touch(&ctl.join("stop"));
    let stopped = wait_marker(&mut run, &ctl.join("stopped"), READY_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let ops = kv_num(&stopped, "ops");
    let held: BTreeSet<i32> = stopped
        .get("fds")
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();

    let img = checkpoint(pid, Some(&images)).unwrap_or_else(|e| {
        panic!(
            "final checkpoint: {e}\n{}\n{}",
            threads_report(pid),
            run.describe()
        )
    });
    let j = inspect_json(&img).unwrap_or_else(|e| panic!("final checkpoint: {e}"));
    let proc_fds = program_fds(pid).unwrap_or_else(|e| panic!("{e}"));
    let soft = nofile_soft(pid).unwrap_or_else(|e| panic!("{e}"));
    let image = image_fds(&j);

    let mut c = Checks::new();
    c.check(
        ops > 10_000,
        format!("the storm did only {ops} operations: it did not really run"),
    );
    c.num(
        "failures in the storm (failed open/dup/close/write)",
        &serde_json::json!(kv_num(&stopped, "failures")),
        0,
    );
    c.eq(
        "image fds (number -> path) vs /proc/PID/fd less ckpt's own",
        image.clone(),
        proc_fds.clone(),
    );
    for fd in &held {
        c.check(
            image.contains_key(fd),
            format!("fd {fd}, held by a storm thread, is missing from the image"),
        );
    }
    // Anything else in the image was there from the start.
    let mut want: BTreeSet<i32> = initial
        .iter()
        .copied()
        .filter(|&n| (n as u64) + 16 < soft)
        .collect();
    want.extend(held.iter().copied());
    c.eq(
        "image fds vs the program's initial descriptors + those the storm threads hold",
        image.keys().copied().collect::<BTreeSet<i32>>(),
        want,
    );
    for f in arr(&j, "fds") {
        let n = f["fd"].as_i64().unwrap_or(-1) as i32;
        c.check(
            (n as u64) + 16 < soft,
            format!("ckpt's own descriptor {n} (limit {soft}) is listed in the image"),
        );
        // What the image says about each held descriptor matches the kernel.
        if held.contains(&n) {
            let fdinfo =
                std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{n}")).unwrap_or_default();
            let kflags = fdinfo
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|v| i64::from_str_radix(v.trim(), 8).ok());
            if let Some(kf) = kflags {
                c.eq(
                    format!("fd {n} cloexec vs /proc fdinfo"),
                    f["cloexec"].as_bool(),
                    Some(kf & 0o2000000 != 0),
                );
                c.eq(
                    format!("fd {n} access mode vs /proc fdinfo"),
                    f["flags"].as_i64().map(|x| x & 3),
                    Some(kf & 3),
                );
                c.eq(
                    format!("fd {n} O_APPEND vs /proc fdinfo"),
                    f["flags"].as_i64().map(|x| x & 0o2000),
                    Some(kf & 0o2000),
                );
            }
            let pos = fdinfo
                .lines()
                .find_map(|l| l.strip_prefix("pos:"))
                .and_then(|v| v.trim().parse::<i64>().ok());
            if let Some(pos) = pos {
                c.num(format!("fd {n} offset vs /proc fdinfo"), &f["offset"], pos);
            }
        }
    }
    let threads = arr(&j, "threads");
    c.eq("threads after the storm (joined)", threads.len(), 1);

    touch(&ctl.join("go"));
    let st = run.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    c.check(st.success(), format!("storm exited with {st}"));
    c.eq("storm stdout", run.stdout(), "storm ok\n".to_string());
    eprintln!("storm: {STORM_CHECKPOINTS} checkpoints in {storm_time:?}, slowest {slowest:?}, {ops} operations");
    c.finish(&run.describe());
}
