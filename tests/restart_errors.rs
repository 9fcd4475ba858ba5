//! `ckpt restart` refuses what it cannot restore faithfully: each refusal
//! is one clear line on stderr naming the cause, a non-zero exit, no
//! program left running, and no file of the program touched.
//!
//! Every case checkpoints a real program (tests/programs/restart_victim.c,
//! copied under a name of its own so its processes can be looked for by
//! name), kills it, damages the image or the program's files, creates the
//! program's `go` file (so a restart that wrongly proceeds would change
//! the output files at once), and runs `ckpt restart`.

mod common;
#[path = "common/restart.rs"]
mod rs;

use ckpt::image::{self, Header, HEADER_LEN};
use common::{ckpt_cmd, touch, CmdOut, CLI_TIMEOUT};
use rs::{
    assert_same, assert_success, compile_named, pids_named, plain_cmd, reference, run_cmd, start,
    wait_marker, Area, Out,
};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const INPUT: &[u8] = b"the input the program read before the checkpoint\n";

/// A checkpointed and killed victim, its `go` file created.
struct Victim {
    area: Area,
    comm: String,
    ctl: PathBuf,
    image: PathBuf,
    out: PathBuf,
    log: PathBuf,
    out_before: Vec<u8>,
    log_before: Vec<u8>,
}

fn victim(tag: &str) -> Victim {
    victim_with(tag, &[])
}

fn victim_with(tag: &str, extra: &[&str]) -> Victim {
    victim_try(tag, extra).unwrap_or_else(|e| panic!("{e}"))
}

/// As [`victim_with`]; a refused checkpoint is an `Err` with its message.
fn victim_try(tag: &str, extra: &[&str]) -> Result<Victim, String> {
    let area = Area::new(tag);
    // comm is at most 15 bytes.
    let comm: String = format!("rv_{tag}").chars().take(15).collect();
    let prog = compile_named("restart_victim.c", area.path(), &comm);
    let ctl = area.sub("ctl");
    std::fs::write(ctl.join("input.txt"), INPUT).unwrap();
    let out = area.file("prog.out");
    let mut kid = start(
        run_cmd(
            &prog,
            &[ctl.as_os_str()]
                .into_iter()
                .chain(extra.iter().map(|s| s.as_ref()))
                .collect::<Vec<_>>(),
            area.path(),
            &area.images,
        ),
        Out::File(&out),
        &area.file("prog.err"),
        "victim under ckpt run",
    );
    wait_marker(&mut kid, &ctl.join("ready")).unwrap_or_else(|e| panic!("{e}"));
    let image = common::checkpoint(kid.pid(), Some(&area.images));
    kid.kill();
    drop(kid);
    let image = image?;
    touch(&ctl.join("go"));
    let log = ctl.join("log.txt");
    let out_before = std::fs::read(&out).unwrap();
    let log_before = std::fs::read(&log).unwrap();
    assert!(
        String::from_utf8_lossy(&out_before).contains("before 19"),
        "victim output before the checkpoint: {:?}",
        String::from_utf8_lossy(&out_before)
    );
    Ok(Victim {
        area,
        comm,
        ctl,
        image,
        out,
        log,
        out_before,
        log_before,
    })
}

fn restart(image: &Path, extra: &[&str], cwd: &Path) -> CmdOut {
    let mut c = ckpt_cmd(cwd, ["restart".as_ref(), image.as_os_str()]);
    c.args(extra).env_remove("LD_PRELOAD");
    common::run_cmd(&mut c, CLI_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// Processes named `comm` must be gone (bounded wait: a wrongly started
/// program would still be running).
fn none_running(comm: &str) -> Vec<i32> {
    let t = Instant::now();
    loop {
        let v = pids_named(comm);
        if v.is_empty() || t.elapsed() > Duration::from_secs(2) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ckpt restart IMAGE EXTRA...` must be refused: non-zero exit, one line
/// on stderr holding one of `causes` (case-insensitive), nothing running,
/// the program's files unchanged.
fn assert_refused(v: &Victim, image: &Path, extra: &[&str], causes: &[&str]) {
    let r = restart(image, extra, v.area.path());
    let mut c = common::Checks::new();
    c.check(
        matches!(r.code(), Some(code) if code != 0),
        format!("exit status must be a non-zero code, got {}", r.status),
    );
    let lines = r.stderr_lines();
    c.eq("number of stderr lines", lines.len(), 1);
    let low = r.stderr.to_lowercase();
    c.check(
        causes.iter().any(|k| low.contains(&k.to_lowercase())),
        format!(
            "stderr must name the cause (one of {causes:?}): {:?}",
            r.stderr
        ),
    );
    let left = none_running(&v.comm);
    for &p in &left {
        // SAFETY: kill(2) of a leftover process of this test.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    c.check(
        left.is_empty(),
        format!("processes named {} left running: {left:?}", v.comm),
    );
    c.check(
        std::fs::read(&v.out).unwrap_or_default() == v.out_before,
        "the program's stdout file was modified",
    );
    c.check(
        std::fs::read(&v.log).unwrap_or_default() == v.log_before,
        "the program's log.txt was modified",
    );
    c.finish(&format!(
        "ckpt restart {} {extra:?}: status {}\nstdout: {:?}\nstderr: {:?}",
        image.display(),
        r.status,
        r.stdout,
        r.stderr
    ));
}

/// A copy of the image to damage.
fn copy_image(v: &Victim, name: &str) -> PathBuf {
    let p = v.area.file(name);
    std::fs::copy(&v.image, &p).unwrap();
    p
}

fn flip_byte(path: &Path, at: u64) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x5a;
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&b).unwrap();
}

/// Rewrite the image's header through `edit` (the checksum is recomputed
/// by `Header::encode`).
fn rewrite_header(path: &Path, edit: impl FnOnce(&mut Header)) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; HEADER_LEN];
    f.read_exact(&mut b).unwrap();
    let mut h = Header::decode(&b).expect("a good image's header decodes");
    edit(&mut h);
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(&h.encode()).unwrap();
}

// ---------------------------------------------------------------------------
// The image.

#[test]
fn missing_image_is_refused() {
    let v = victim("missing");
    let p = v.area.file("no-such.img");
    assert_refused(&v, &p, &[], &["no such file"]);
}

#[test]
fn truncated_image_is_refused() {
    let v = victim("trunc");
    let p = copy_image(&v, "trunc.img");
    let len = std::fs::metadata(&p).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    assert_refused(&v, &p, &[], &["truncated"]);
}

#[test]
fn corrupted_data_byte_is_refused_by_extent_checksum() {
    let v = victim("datacor");
    let p = copy_image(&v, "data.img");
    let (h, meta) = image::read_file(&p).unwrap();
    // A byte in the middle of the largest stored extent.
    let e = meta
        .regions
        .iter()
        .flat_map(|r| r.extents.iter())
        .max_by_key(|e| e.len)
        .expect("the image stores some memory");
    assert!(e.file_offset >= h.data_offset);
    flip_byte(&p, e.file_offset + e.len / 2);
    assert_refused(&v, &p, &[], &["checksum"]);
}

#[test]
fn corrupted_metadata_is_refused() {
    let v = victim("metacor");
    let p = copy_image(&v, "meta.img");
    let (h, _) = image::read_file(&p).unwrap();
    flip_byte(&p, h.meta_offset + h.meta_len / 2);
    assert_refused(&v, &p, &[], &["metadata", "checksum"]);
}

#[test]
fn foreign_architecture_image_is_refused() {
    let v = victim("arch");
    let p = copy_image(&v, "arch.img");
    rewrite_header(&p, |h| h.arch = 183); // EM_AARCH64
    assert_refused(&v, &p, &[], &["architecture"]);
}

#[test]
fn other_format_version_is_refused() {
    let v = victim("version");
    let p = copy_image(&v, "version.img");
    rewrite_header(&p, |h| h.version = image::FORMAT_INCREMENTAL + 1);
    assert_refused(&v, &p, &[], &["version"]);
}

// ---------------------------------------------------------------------------
// The program's files.

#[test]
fn deleted_open_file_is_refused() {
    let v = victim("deleted");
    std::fs::remove_file(v.ctl.join("input.txt")).unwrap();
    assert_refused(&v, &v.image, &[], &["input.txt"]);
}

#[test]
fn replaced_open_file_is_refused() {
    let v = victim("replaced");
    let input = v.ctl.join("input.txt");
    std::fs::rename(&input, v.ctl.join("input.old")).unwrap();
    std::fs::write(&input, INPUT).unwrap();
    assert_refused(&v, &v.image, &[], &["replaced"]);
}

/// Rewrite input.txt in place: same inode, new content.
fn change_in_place(v: &Victim) {
    use std::os::unix::fs::MetadataExt;
    let input = v.ctl.join("input.txt");
    let ino = std::fs::metadata(&input).unwrap().ino();
    // mtime has a coarse clock on some file systems: make sure it moves.
    std::thread::sleep(Duration::from_millis(20));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&input)
        .unwrap();
    f.write_all(b"different content, and longer than before: changed since\n")
        .unwrap();
    drop(f);
    assert_eq!(std::fs::metadata(&input).unwrap().ino(), ino);
}

#[test]
fn read_only_file_changed_is_refused_with_strict() {
    let v = victim("strict");
    change_in_place(&v);
    assert_refused(&v, &v.image, &["--strict"], &["changed"]);
}

#[test]
fn read_only_file_changed_warns_and_restarts() {
    let v = victim("changed");
    // The uninterrupted run, for the comparison.
    let ctl_ref = v.area.sub("ctl-ref");
    std::fs::write(ctl_ref.join("input.txt"), INPUT).unwrap();
    touch(&ctl_ref.join("go"));
    let out_ref = v.area.file("ref.out");
    let st = reference(
        plain_cmd(&v.area.path().join(&v.comm), &[&ctl_ref], v.area.path()),
        &out_ref,
        &v.area.file("ref.err"),
        "reference",
    );
    assert_success(st, "the reference run", "");

    change_in_place(&v);
    let r = restart(&v.image, &[], v.area.path());
    let ctx = format!("status {}\nstderr: {:?}", r.status, r.stderr);
    assert_success(r.status, "ckpt restart", &ctx);
    let low = r.stderr.to_lowercase();
    assert!(
        low.contains("warning") && low.contains("input.txt") && low.contains("changed"),
        "a warning naming input.txt as changed is expected on stderr: {ctx}"
    );
    assert_same(
        &std::fs::read(&v.out).unwrap(),
        &std::fs::read(&out_ref).unwrap(),
        &ctx,
    );
    assert_same(
        &std::fs::read(&v.log).unwrap(),
        &std::fs::read(ctl_ref.join("log.txt")).unwrap(),
        &ctx,
    );
    assert!(none_running(&v.comm).is_empty());
}

// ---------------------------------------------------------------------------
// The restorer's address range.

#[test]
fn memory_straddling_restorer_range_is_refused() {
    let v = victim_with("squat", &["squat"]);
    assert_refused(&v, &v.image, &[], &["restorer"]);
}

/// Memory wholly inside the range: refusing at checkpoint time (with a
/// message naming the range) is as good as refusing at restart.
#[test]
fn memory_inside_restorer_range_is_refused() {
    match victim_try("squatin", &["squat-inside"]) {
        Ok(v) => assert_refused(&v, &v.image, &[], &["restorer"]),
        Err(e) => assert!(
            e.contains("0x7e0000000000") || e.contains("restorer") || e.contains("reserved"),
            "the checkpoint failed without naming the restorer's range: {e}"
        ),
    }
}
