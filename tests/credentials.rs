//! Never more than the program had: a program run as `nobody`,
//! checkpointed, SIGKILLed and restarted by root comes back as `nobody`
//! (uids, gids, groups, no access to root's files), byte-identical to an
//! uninterrupted run as nobody; an image that does not belong to the user
//! it ran as, or that others can write, is refused; an unprivileged user
//! cannot restart another user's image. Needs root (CI runs as root).

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{checkpoint_and_kill, plain_cmd, restart_and_compare, restart_cmd, start_until, Area};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const NOBODY: &str = "65534";

fn root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `cmd` as nobody (setpriv: uid and gid 65534, no supplementary groups).
fn as_nobody(cmd: &Command) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

fn open_up(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Copies of the program, `ckpt` and the shim that nobody can run, in a
/// directory nobody can enter (the build tree may not be).
fn public_copies(area: &Area) -> (PathBuf, PathBuf, PathBuf) {
    common::require_shim();
    let bin = area.sub("bin");
    open_up(area.path(), 0o755);
    open_up(&bin, 0o755);
    let prog = common::compile_c("restart_identity.c", &bin);
    let ckpt = bin.join("ckpt");
    let shim = bin.join("libckpt_shim.so");
    std::fs::copy(common::ckpt_bin(), &ckpt).unwrap();
    std::fs::copy(common::shim_path(), &shim).unwrap();
    for p in [&prog, &ckpt, &shim] {
        open_up(p, 0o755);
    }
    (prog, ckpt, shim)
}

#[test]
fn a_program_run_as_nobody_and_restarted_by_root_runs_as_nobody() {
    if !root() {
        eprintln!("needs root: not run");
        return;
    }
    let area = Area::new("creds");
    let (prog, ckpt, shim) = public_copies(&area);
    let work = area.sub("work");
    open_up(&work, 0o777);
    std::fs::create_dir_all(&area.images).unwrap();
    open_up(&area.images, 0o777);

    let want_path = work.join("want");
    let st = rs::reference(
        as_nobody(&plain_cmd(&prog, &[] as &[&str], &work)),
        &want_path,
        &area.file("want.err"),
        "plain, as nobody",
    );
    rs::assert_success(st, "the uninterrupted run as nobody", "");
    let want = std::fs::read(&want_path).unwrap();
    assert!(
        String::from_utf8_lossy(&want).contains("uid 65534 65534 65534 fs 65534"),
        "setpriv did not make the program nobody"
    );

    let mut run = Command::new(&ckpt);
    run.args(["run", "--dir"])
        .arg(&area.images)
        .arg("--")
        .arg(&prog)
        .current_dir(&work)
        .env("CKPT_SHIM", &shim)
        .env_remove("CKPT_RUNTIME_DIR");
    let out = work.join("out");
    let mut kid = start_until(
        as_nobody(&run),
        &out,
        &area.file("err"),
        "as nobody under ckpt",
        "step 15 ",
    );
    let image = checkpoint_and_kill(&mut kid, &area.images);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&image).unwrap().uid(),
        65534,
        "the image is not nobody's"
    );
    // Restarted by root: as nobody again, byte for byte.
    restart_and_compare(restart_cmd(&image, &[], &work), &out, &want, &area);
}

fn refused(image: &Path, cwd: &Path, as_user: bool, want: &str) {
    let mut c = restart_cmd(image, &[], cwd);
    if as_user {
        c = as_nobody(&c);
    }
    let r = common::run_cmd(&mut c, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status.code(), Some(1), "restart went ahead: {}", r.stderr);
    assert!(
        r.stderr.contains(want),
        "expected {want:?}, got: {}",
        r.stderr
    );
}

#[test]
fn images_of_another_owner_or_writable_by_others_are_refused() {
    if !root() {
        eprintln!("needs root: not run");
        return;
    }
    let area = Area::new("creds-owner");
    let bin = common::TempDir::new("creds-owner-bin");
    let prog = common::compile_c("restart_identity.c", bin.path());
    let out = area.file("out");
    let mut kid = start_until(
        rs::run_cmd(&prog, &[] as &[&str], area.path(), &area.images),
        &out,
        &area.file("err"),
        "under ckpt",
        "step 5 ",
    );
    let image = checkpoint_and_kill(&mut kid, &area.images);
    let c = |p: &Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // Others may write it.
    open_up(&image, 0o666);
    refused(&image, area.path(), false, "can be written by other users");
    // Someone else's file claiming to be root's program.
    open_up(&image, 0o644);
    // SAFETY: chown of a file we own to nobody.
    assert_eq!(unsafe { libc::chown(c(&image).as_ptr(), 65534, 65534) }, 0);
    refused(&image, area.path(), false, "belongs to uid 65534");
    // An unprivileged user restarting root's program.
    // SAFETY: as above, back to root.
    assert_eq!(unsafe { libc::chown(c(&image).as_ptr(), 0, 0) }, 0);
    open_up(area.path(), 0o755);
    open_up(&area.images, 0o755);
    refused(
        &image,
        area.path(),
        true,
        "only root can restart a program as another user",
    );
}

/// A daemon started by root that dropped to nobody (and so became not
/// dumpable: its /proc/self files are root's) is checkpointed by root and
/// restarted: it runs as nobody, not dumpable, byte-identical to an
/// uninterrupted run. Before, `ckpt checkpoint` said it was "not running
/// under ckpt" (its control socket is in its starter's directory, and
/// /proc/PID is nobody's now), and the checkpoint itself could not open
/// the process's own pagemap.
#[test]
fn a_program_that_dropped_privileges_is_checkpointed_and_restarted() {
    if !root() {
        eprintln!("needs root: not run");
        return;
    }
    let area = Area::new("creds-drop");
    let bin = area.sub("bin");
    let prog = common::compile_c("drop_privileges.c", &bin);
    let work = area.sub("work");
    open_up(&work, 0o777);
    std::fs::create_dir_all(&area.images).unwrap();
    open_up(&area.images, 0o777);
    let want_path = work.join("want");
    let st = rs::reference(
        plain_cmd(&prog, &[] as &[&str], &work),
        &want_path,
        &area.file("want.err"),
        "plain",
    );
    rs::assert_success(st, "the uninterrupted run", "");
    let want = std::fs::read(&want_path).unwrap();
    assert!(
        String::from_utf8_lossy(&want)
            .contains("uid 65534 65534 65534 gid 65534 dumpable 0 root file refused"),
        "the program did not drop its privileges"
    );
    let out = work.join("out");
    let mut kid = start_until(
        rs::run_cmd(&prog, &[] as &[&str], &work, &area.images),
        &out,
        &area.file("err"),
        "under ckpt",
        "step 15:",
    );
    let image = checkpoint_and_kill(&mut kid, &area.images);
    restart_and_compare(restart_cmd(&image, &[], &work), &out, &want, &area);
}
