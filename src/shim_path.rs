//! Where `ckpt` finds its companions: libckpt_shim.so, the interceptor
//! `ckpt run` preloads, and ckpt-restorer, which `ckpt restart` runs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub const SHIM_NAME: &str = "libckpt_shim.so";
pub const RESTORER_NAME: &str = "ckpt-restorer";

/// The places looked at, in order, for an executable living in `exe_dir`:
/// next to it (a `cargo build` tree or a flat install), an installed
/// `<prefix>/lib/ckpt/`, and the cargo tree seen from `deps/` (test
/// binaries live in `target/<profile>/deps/`, the shim one level up).
pub fn candidates(exe_dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut places = vec![
        exe_dir.join(name),
        exe_dir.join("../lib/ckpt").join(name),
        exe_dir.join("deps").join(name),
    ];
    if exe_dir.file_name().is_some_and(|n| n == "deps") {
        places.push(exe_dir.join("..").join(name));
    }
    places
}

/// Find the shim: `$CKPT_SHIM` when set (it must exist), else the first
/// candidate next to the executable. The result is absolute and free of
/// `..`, because the dynamic linker resolves LD_PRELOAD entries in the
/// program's own working directory.
pub fn find_shim(env_shim: Option<OsString>, exe: &Path) -> Result<PathBuf, String> {
    find_companion(SHIM_NAME, "CKPT_SHIM", env_shim, exe)
}

/// Find companion `name`: `$<env_name>` when set (it must exist), else
/// the first candidate next to `exe`.
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
        return absolute(&p).map_err(|e| format!("{env_name}={}: {e}", p.display()));
    }
    let exe_dir = exe.parent().unwrap_or(Path::new("/"));
    let places = candidates(exe_dir, name);
    for place in &places {
        if place.is_file() {
            return absolute(place).map_err(|e| format!("{}: {e}", place.display()));
        }
    }
    let looked: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "cannot find {name} (looked in {}); build it with `cargo build --workspace` or set {env_name} to its path",
        looked.join(", ")
    ))
}

fn absolute(p: &Path) -> std::io::Result<PathBuf> {
    p.canonicalize()
}

/// The shim for this very `ckpt` executable.
pub fn find_for_current_exe() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot locate the ckpt executable: {e}"))?;
    find_shim(std::env::var_os("CKPT_SHIM"), &exe)
}

/// The restorer for this very `ckpt` executable.
pub fn find_restorer() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot locate the ckpt executable: {e}"))?;
    find_companion(
        RESTORER_NAME,
        "CKPT_RESTORER",
        std::env::var_os("CKPT_RESTORER"),
        &exe,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    fn touch(p: &Path) -> PathBuf {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"").unwrap();
        p.canonicalize().unwrap()
    }

    #[test]
    fn env_variable_wins_and_must_exist() {
        let t = TempDir::new("shim-env");
        let exe = t.path().join("bin/ckpt");
        let next_to_exe = touch(&t.path().join("bin").join(SHIM_NAME));
        let chosen = touch(&t.path().join("elsewhere/my.so"));
        assert_eq!(
            find_shim(Some(chosen.clone().into()), &exe).unwrap(),
            chosen
        );
        let e = find_shim(Some(t.path().join("missing.so").into()), &exe).unwrap_err();
        assert!(e.contains("CKPT_SHIM") && e.contains("missing.so"), "{e}");
        // An empty CKPT_SHIM counts as unset.
        assert_eq!(find_shim(Some("".into()), &exe).unwrap(), next_to_exe);
    }

    #[test]
    fn search_order_next_to_exe_then_lib_then_deps() {
        let t = TempDir::new("shim-order");
        let exe = t.path().join("bin/ckpt");
        std::fs::create_dir_all(t.path().join("bin")).unwrap();
        let err = find_shim(None, &exe).unwrap_err();
        assert!(
            err.contains("cannot find") && err.contains("lib/ckpt"),
            "{err}"
        );

        let in_deps = touch(&t.path().join("bin/deps").join(SHIM_NAME));
        assert_eq!(find_shim(None, &exe).unwrap(), in_deps);
        let in_lib = touch(&t.path().join("lib/ckpt").join(SHIM_NAME));
        assert_eq!(find_shim(None, &exe).unwrap(), in_lib);
        let beside = touch(&t.path().join("bin").join(SHIM_NAME));
        assert_eq!(find_shim(None, &exe).unwrap(), beside);
    }

    #[test]
    fn test_binaries_in_deps_find_the_shim_one_level_up() {
        let t = TempDir::new("shim-deps");
        let shim = touch(&t.path().join("debug").join(SHIM_NAME));
        std::fs::create_dir_all(t.path().join("debug/deps")).unwrap();
        let exe = t.path().join("debug/deps/ckpt-0123abcd");
        assert_eq!(find_shim(None, &exe).unwrap(), shim);
        assert!(shim.is_absolute() && !shim.to_string_lossy().contains(".."));
    }
}
