//! Where ckpt's companions live: libckpt_shim.so (the interceptor `ckpt
//! run` preloads and `ckpt::checkpoint()` loads), the `ckpt` command and
//! ckpt-restorer. Used by the command and by the API alike.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub const SHIM_NAME: &str = "libckpt_shim.so";
pub const RESTORER_NAME: &str = "ckpt-restorer";
pub const COMMAND_NAME: &str = "ckpt";

/// The places looked at, in order, for an executable living in `exe_dir`:
/// next to it (a `cargo build` tree or a flat install), an installed
/// `<prefix>/lib/ckpt/`, and the cargo tree seen from `deps/` or
/// `examples/` (test binaries and examples live one level below the shim).
pub fn candidates(exe_dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut places = vec![
        exe_dir.join(name),
        exe_dir.join("../lib/ckpt").join(name),
        exe_dir.join("deps").join(name),
    ];
    if exe_dir
        .file_name()
        .is_some_and(|n| n == "deps" || n == "examples")
    {
        places.push(exe_dir.join("..").join(name));
    }
    places
}

/// Find companion `name`: `$<env_name>` when set (it must exist), else
/// the first candidate next to `exe`. The result is absolute and free of
/// `..` (the dynamic linker resolves LD_PRELOAD entries in the program's
/// own working directory).
pub fn find_companion(
    name: &str,
    env_name: &str,
    env_value: Option<OsString>,
    exe: &Path,
) -> Result<PathBuf, String> {
    if let Some(p) = env_value.filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(format!("{env_name}={}: no such file", p.display()));
        }
        return p
            .canonicalize()
            .map_err(|e| format!("{env_name}={}: {e}", p.display()));
    }
    let exe_dir = exe.parent().unwrap_or(Path::new("/"));
    let places = candidates(exe_dir, name);
    for place in &places {
        if place.is_file() {
            return place
                .canonicalize()
                .map_err(|e| format!("{}: {e}", place.display()));
        }
    }
    let looked: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "cannot find {name} (looked in {}); build it with `cargo build --workspace` or set {env_name} to its path",
        looked.join(", ")
    ))
}

/// The `ckpt` command on `$PATH`, if any.
pub fn command_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(COMMAND_NAME))
        .find(|p| p.is_file())
}

/// Find companion `name` for a program that is not `ckpt` itself (one
/// calling `ckpt::checkpoint()`): `$<env_name>`, else beside the program
/// (a cargo tree), else beside the `ckpt` command on `$PATH`.
pub fn find_for_program(name: &str, env_name: &str) -> Result<PathBuf, String> {
    let env = std::env::var_os(env_name);
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this program: {e}"))?;
    if env.as_ref().is_some_and(|v| !v.is_empty()) {
        return find_companion(name, env_name, env, &exe);
    }
    let beside_program = find_companion(name, env_name, None, &exe);
    if beside_program.is_ok() {
        return beside_program;
    }
    if let Some(cmd) = command_on_path().and_then(|c| c.canonicalize().ok()) {
        if let Ok(p) = find_companion(name, env_name, None, &cmd) {
            return Ok(p);
        }
    }
    Err(format!(
        "cannot find {name} beside this program or beside `ckpt` on PATH; install ckpt or set {env_name} to its path"
    ))
}
