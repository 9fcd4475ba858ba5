//! Compressed images (`ckpt run --compress=lz4|zstd`) on real programs:
//! a whole compressed image and an incremental one that takes unchanged
//! pages from inside the first one's blocks restart byte-identical to an
//! uninterrupted run, whatever the program did to its memory in between
//! (restart_incremental.c, filled with data that compresses); the images
//! are much smaller than the memory they hold; a damaged block is refused;
//! shared memory of a process tree comes back from compressed images too.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{restart_and_compare, restart_cmd, run_cmd, start, wait_marker, Area, Out};
use std::path::{Path, PathBuf};

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// `ckpt run OPTS -- ...`: `cmd` with options put before its `--dir`.
fn with_options(cmd: std::process::Command, opts: &[&str], cwd: &Path) -> std::process::Command {
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut c = std::process::Command::new(common::ckpt_bin());
    c.arg("run").args(opts).args(&args[1..]).current_dir(cwd);
    c
}

/// The own extents of an image (inspect --json), as (codec, stored, len).
fn own_extents(image: &Path) -> Vec<(u64, u64, u64)> {
    let v = common::inspect_json(image).unwrap_or_else(|e| panic!("{e}"));
    common::arr(&v, "regions")
        .iter()
        .flat_map(|r| r["extents"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["src"].as_u64().unwrap_or(0) == 0)
        .map(|e| {
            let n = |k: &str| e[k].as_u64().unwrap_or(0);
            (n("codec"), n("stored"), n("len"))
        })
        .collect()
}

/// restart_incremental.c with smooth data under `ckpt run --compress=CODEC`:
/// a whole checkpoint, the program changes its memory in every way, an
/// incremental one, SIGKILL. Returns both images, the output file and the
/// uninterrupted run's output.
fn chain(area: &Area, codec: &str) -> (PathBuf, PathBuf, PathBuf, Vec<u8>) {
    let prog = common::compile_c("restart_incremental.c", &area.sub("bin"));
    let plain_ctl = area.sub("plain");
    common::touch(&plain_ctl.join("go1"));
    common::touch(&plain_ctl.join("go2"));
    let want = rs::reference_output(area, &prog, &[plain_ctl.as_os_str(), "smooth".as_ref()]);
    let ctl = area.sub("ctl");
    let out = area.file("out");
    let flag = format!("--compress={codec}");
    let cmd = with_options(
        run_cmd(
            &prog,
            &[ctl.as_os_str(), "smooth".as_ref()],
            area.path(),
            &area.images,
        ),
        &[&flag],
        area.path(),
    );
    let kid = start(cmd, Out::File(&out), &area.file("err"), "under ckpt");
    let (first, second) = rs::checkpoint_at_phases(kid, &ctl, &area.images);
    (first, second, out, want)
}

fn compressed_chain_restarts_exactly(codec: &str, code: u64) {
    let area = Area::new(&format!("z{codec}"));
    let (first, second, out, want) = chain(&area, codec);
    let own = own_extents(&first);
    let packed: Vec<_> = own.iter().filter(|e| e.0 == code).collect();
    assert!(
        !packed.is_empty(),
        "no {codec} block in the first image: {own:?}"
    );
    let memory: u64 = own.iter().map(|e| e.2).sum();
    assert!(
        memory >= 16 << 20 && size(&first) * 4 < memory * 3,
        "{codec}: a {} byte image for {memory} bytes of memory",
        size(&first)
    );
    // The incremental image takes most pages from inside the first one's
    // blocks: it is small, and it restarts exactly.
    assert!(
        size(&second) * 4 < size(&first),
        "{codec}: incremental image {} bytes, whole one {}",
        size(&second),
        size(&first)
    );
    let shown = common::ckpt(area.path(), ["inspect".as_ref(), first.as_os_str()]);
    assert!(
        shown.stdout.contains(&format!("compressed ({codec})")),
        "inspect names the compression:\n{}",
        shown.stdout
    );
    restart_and_compare(restart_cmd(&second, &[], area.path()), &out, &want, &area);
}

#[test]
fn lz4_images_and_their_incremental_chain_restart_exactly() {
    compressed_chain_restarts_exactly("lz4", 1);
}

#[test]
fn zstd_images_and_their_incremental_chain_restart_exactly() {
    compressed_chain_restarts_exactly("zstd", 2);
}

/// One byte changed inside a compressed block (its checksum covers the
/// stored bytes): an eager restart refuses the image before anything
/// runs, a lazy one never lets the program run on it.
#[test]
fn a_damaged_compressed_block_is_refused() {
    let area = Area::new("zbad");
    let (first, _second, _out, _want) = chain(&area, "lz4");
    let v = common::inspect_json(&first).unwrap_or_else(|e| panic!("{e}"));
    let block = common::arr(&v, "regions")
        .iter()
        .flat_map(|r| r["extents"].as_array().cloned().unwrap_or_default())
        .find(|e| e["codec"].as_u64() == Some(1))
        .expect("a compressed block");
    let at = block["file_offset"].as_u64().unwrap() + block["stored"].as_u64().unwrap() / 2;
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[at as usize] ^= 0x40;
    std::fs::write(&first, &bytes).unwrap();
    // Eager: refused before anything starts.
    let r = common::ckpt(
        area.path(),
        ["restart".as_ref(), "--eager".as_ref(), first.as_os_str()],
    );
    assert_eq!(r.code(), Some(1), "restart of a damaged image: {r:?}");
    assert!(
        r.stderr.contains("checksum"),
        "the error says why: {}",
        r.stderr
    );
    // Lazy: a large region's blocks are checked as they are copied in;
    // the program is stopped before it reads the damaged one.
    let r = common::ckpt(area.path(), ["restart".as_ref(), first.as_os_str()]);
    assert!(
        !r.status.success(),
        "lazy restart of a damaged image: {r:?}"
    );
    assert!(
        r.stderr.contains("checksum"),
        "the error says why: {}",
        r.stderr
    );
}

/// A bad codec name is refused by `ckpt run`, and by the shim from the
/// environment (checkpoints off, said once), never ignored.
#[test]
fn an_unknown_codec_is_refused() {
    let area = Area::new("zname");
    let r = common::ckpt(area.path(), ["run", "--compress=lzma", "--", "true"]);
    assert_eq!(r.code(), Some(2), "{r:?}");
    assert!(r.stderr.contains("unknown compression"), "{}", r.stderr);
    let mut c = common::ckpt_cmd(area.path(), ["run", "--", "true"]);
    c.env("CKPT_COMPRESS", "lzma");
    let r = common::run_cmd(&mut c, std::time::Duration::from_secs(30)).unwrap();
    assert!(r.stderr.contains("CKPT_COMPRESS"), "{}", r.stderr);
}

const SHARED_PY: &str = r#"
import hashlib, mmap, os, sys, time
ctl = sys.argv[1]
def wait(name):
    while not os.path.exists(os.path.join(ctl, name)):
        time.sleep(0.01)
# 4 MiB of shared anonymous memory that compresses, written by both.
m = mmap.mmap(-1, 4 << 20)
for i in range(0, 4 << 20, 4096):
    m[i:i + 4096] = b"%08d" % (i // 4096) * 512
pid = os.fork()
if pid == 0:
    m[3 << 20:(3 << 20) + 6] = b"child!"
    open(os.path.join(ctl, "child"), "w").write(str(os.getpid()))
    wait("parent")
    wait("go")
    m[(3 << 20) + 8:(3 << 20) + 14] = b"again!"
    print("child", hashlib.sha256(m[:]).hexdigest(), flush=True)
    os._exit(0)
wait("child")
m[0:7] = b"parent!"
open(os.path.join(ctl, "parent"), "w").close()
open(os.path.join(ctl, "ready"), "w").write("ok\n")
wait("go")
os.waitpid(pid, 0)
print("parent", hashlib.sha256(m[:]).hexdigest(), flush=True)
"#;

/// A parent and its forked child sharing 4 MiB of anonymous memory,
/// checkpointed as a tree with compression on: the shared pages are
/// stored compressed and come back shared and exact.
#[test]
fn shared_memory_of_a_tree_comes_back_from_compressed_images() {
    let area = Area::new("ztree");
    let script = area.file("shared.py");
    std::fs::write(&script, SHARED_PY).unwrap();
    let py = common::python3();
    let plain_ctl = area.sub("plain");
    common::touch(&plain_ctl.join("go"));
    let want = rs::reference_output(&area, &py, &[script.as_os_str(), plain_ctl.as_os_str()]);
    let ctl = area.sub("ctl");
    let out = area.file("out");
    let cmd = with_options(
        run_cmd(
            &py,
            &[script.as_os_str(), ctl.as_os_str()],
            area.path(),
            &area.images,
        ),
        &["--compress=zstd"],
        area.path(),
    );
    let mut kid = start(cmd, Out::File(&out), &area.file("err"), "under ckpt");
    wait_marker(&mut kid, &ctl.join("ready")).unwrap_or_else(|e| panic!("{e}"));
    let child: i32 = std::fs::read_to_string(ctl.join("child"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let tree = common::checkpoint(kid.pid(), Some(&area.images)).unwrap();
    // SAFETY: SIGKILL to the job's child, a process of this test.
    unsafe { libc::kill(child, libc::SIGKILL) };
    kid.kill();
    let images: Vec<PathBuf> = std::fs::read_dir(&tree)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "img"))
        .collect();
    assert_eq!(
        images.len(),
        2,
        "one image per process in {}",
        tree.display()
    );
    assert!(
        images
            .iter()
            .any(|i| own_extents(i).iter().any(|e| e.0 == 2)),
        "the shared memory is stored compressed"
    );
    common::touch(&ctl.join("go"));
    restart_and_compare(restart_cmd(&tree, &[], area.path()), &out, &want, &area);
}
