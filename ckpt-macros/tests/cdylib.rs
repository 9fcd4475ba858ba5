//! Builds `tests/cdylib/lib.rs` as a cdylib (in its own workspace under the
//! target directory), loads it, and checks that its wrappers are exported
//! and that `resolve_all_originals` sees every registration: the linker's
//! `--gc-sections` must keep the `ckpt_originals` section of a shared object.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;

fn target_dir() -> PathBuf {
    // <target>/debug/deps/cdylib-<hash>
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

fn build_fixture() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here.parent().unwrap();
    let dir = target_dir().join("tests").join("ckpt-macros-cdylib");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = format!(
        r#"[package]
name = "ckpt-macros-cdylib-fixture"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
path = "{lib}"
crate-type = ["cdylib"]

[dependencies]
ckpt-core = {{ path = "{core}" }}
ckpt-macros = {{ path = "{macros}" }}
libc = "0.2"

[workspace]

[profile.dev]
panic = "abort"
"#,
        lib = here.join("tests/cdylib/lib.rs").display(),
        core = root.join("ckpt-core").display(),
        macros = here.display(),
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    // The workspace's lock file: same versions, no registry look-up.
    let lock = root.join("Cargo.lock");
    if lock.exists() {
        std::fs::copy(lock, dir.join("Cargo.lock")).unwrap();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.join("target"))
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .unwrap();
    assert!(status.success(), "building the cdylib fixture failed");
    dir.join("target/debug/libckpt_macros_cdylib_fixture.so")
}

fn sym(handle: *mut libc::c_void, name: &str) -> *mut libc::c_void {
    let name = CString::new(name).unwrap();
    unsafe { libc::dlsym(handle, name.as_ptr()) }
}

#[test]
fn registry_and_wrappers_work_in_a_cdylib() {
    let so = build_fixture();
    let path = CString::new(so.to_str().unwrap()).unwrap();
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen {} failed", so.display());

    // Three registrations (dup, its alias, umask); the alias has no original.
    let resolve: extern "C" fn() -> usize =
        unsafe { std::mem::transmute(sym(handle, "fixture_resolve_all_originals")) };
    assert_eq!(resolve(), 2);

    // The wrappers are exported, distinct from the C library's, and pass
    // through (the fixture's interposition layer is not ready).
    let dup = sym(handle, "dup");
    let libc_dup = sym(libc::RTLD_DEFAULT, "dup");
    assert!(!dup.is_null() && dup != libc_dup);
    assert!(!sym(handle, "ckpt_fixture_no_such_symbol").is_null());
    let dup: unsafe extern "C" fn(libc::c_int) -> libc::c_int = unsafe { std::mem::transmute(dup) };
    let fd = unsafe { dup(1) };
    assert!(fd > 2);
    assert_eq!(unsafe { libc::close(fd) }, 0);
}
