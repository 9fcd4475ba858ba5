//! Plugins on a real process: `examples/session_plugin.rs` (a cdylib built
//! with `#[interpose]`) makes a client of `examples/session/libsession`
//! survive a restart. The client holds a connection to a server (another
//! program, which ckpt cannot bring back); loaded with `ckpt run --plugin`,
//! the plugin remembers the library's handle and reconnects it in an
//! on-restore hook, so the restarted client's output equals an
//! uninterrupted run's. The same client without the plugin loses its
//! session at the restart: the plugin is what makes the difference.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{Area, Out};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const STEPS: &str = "60";

/// The plugin, built with the same profile as `ckpt`.
fn plugin() -> PathBuf {
    common::build_example("session_plugin", "libsession_plugin.so")
}

/// libsession.so and the client linked with it, in `dir`.
fn client(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/session");
    let cc = |args: &[&std::ffi::OsStr]| {
        let st = Command::new("cc")
            .args(args)
            .current_dir(dir)
            .status()
            .expect("cc runs");
        assert!(st.success(), "cc {args:?} failed");
    };
    cc(&[
        "-shared".as_ref(),
        "-fPIC".as_ref(),
        "-o".as_ref(),
        "libsession.so".as_ref(),
        src.join("libsession.c").as_os_str(),
    ]);
    cc(&[
        "-o".as_ref(),
        "client".as_ref(),
        src.join("client.c").as_os_str(),
        "-L.".as_ref(),
        "-lsession".as_ref(),
        "-Wl,-rpath,$ORIGIN".as_ref(),
    ]);
    dir.join("client")
}

/// The server, listening on `sock` until dropped.
fn server(area: &Area, sock: &Path) -> rs::Kid {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/session/server.py");
    let mut c = Command::new(common::python3());
    c.arg(script).arg(sock);
    let log = area.file("server.out");
    let mut k = rs::start(c, Out::File(&log), &area.file("server.err"), "server");
    rs::wait_file(
        &mut k,
        &log,
        |d| d.starts_with(b"listening"),
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    k
}

/// Start the client under `ckpt run` (with `extra` options), let it make
/// a few calls, checkpoint it twice, SIGKILL it; then `ckpt restart`.
/// Returns the restarted run's exit status and the client's stderr.
fn cycle(area: &Area, prog: &Path, sock: &Path, extra: &[&std::ffi::OsStr]) -> (bool, String) {
    cycle_via(area, &[], prog, sock, extra)
}

/// `cycle`, the client started through `via` (e.g. `env -i`).
fn cycle_via(
    area: &Area,
    via: &[&str],
    prog: &Path,
    sock: &Path,
    extra: &[&std::ffi::OsStr],
) -> (bool, String) {
    let mut c = Command::new(common::ckpt_bin());
    c.arg("run")
        .arg("--dir")
        .arg(&area.images)
        .args(extra)
        .arg("--")
        .args(via)
        .arg(prog);
    c.arg(sock).arg(STEPS).current_dir(area.path());
    common::require_shim();
    let out = area.file("out");
    let err = area.file("err");
    let mut kid = rs::start(c, Out::File(&out), &err, "client under ckpt");
    rs::wait_file(
        &mut kid,
        &out,
        |d| rs::lines(d) >= 5,
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let image = rs::checkpoint_and_kill(&mut kid, &area.images);
    let mut r = rs::start(
        rs::restart_cmd(&image, &[], area.path()),
        Out::Null,
        &area.file("restart.err"),
        "ckpt restart",
    );
    let st = r
        .wait(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    (
        st.success(),
        std::fs::read_to_string(&err).unwrap_or_default(),
    )
}

#[test]
fn a_plugin_reconnects_a_library_handle_after_a_restart() {
    let plugin = plugin();
    let area = Area::new("plugin");
    let prog = client(area.path());
    let sock = area.file("sock");
    let _server = server(&area, &sock);
    let want = rs::reference_output(&area, &prog, &[sock.as_os_str(), STEPS.as_ref()]);

    let (ok, err) = cycle(
        &area,
        &prog,
        &sock,
        &["--plugin".as_ref(), plugin.as_os_str()],
    );
    assert!(ok, "the restarted client failed: {err}");
    assert!(err.contains("session plugin: session reconnected"), "{err}");
    rs::assert_same(
        &std::fs::read(area.file("out")).unwrap(),
        &want,
        "stdout after restart",
    );

    // Through `env -i` (an exec with an environment of its own, without
    // LD_PRELOAD): the shim puts itself and the plugin back.
    let via = Area::new("plugin-env");
    let (ok, err) = cycle_via(
        &via,
        &["env", "-i"],
        &prog,
        &sock,
        &["--plugin".as_ref(), plugin.as_os_str()],
    );
    assert!(ok, "through env -i, the restarted client failed: {err}");
    assert!(err.contains("session plugin: session reconnected"), "{err}");
    rs::assert_same(
        &std::fs::read(via.file("out")).unwrap(),
        &want,
        "stdout after restart (env -i)",
    );

    // The same without the plugin: the session is gone after the restart.
    let bare = Area::new("plugin-none");
    // (Its write to the dead connection fails, or SIGPIPE ends it.)
    let (ok, err) = cycle(&bare, &prog, &sock, &[]);
    assert!(
        !ok,
        "without the plugin the restarted client went on: {err}"
    );
    assert_ne!(std::fs::read(bare.file("out")).unwrap(), want);
}

#[test]
fn a_bad_plugin_is_refused_before_the_program_starts() {
    let area = Area::new("plugin-bad");
    let not_lib = area.file("notes.txt");
    std::fs::write(&not_lib, "hello").unwrap();
    for (arg, said) in [
        (area.file("missing.so"), "No such file"),
        (not_lib, "not a shared library"),
    ] {
        let out = Command::new(common::ckpt_bin())
            .arg("run")
            .arg("--plugin")
            .arg(&arg)
            .args(["--", "true"])
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && e.contains(said), "{arg:?}: {e}");
    }
}
