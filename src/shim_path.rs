//! Where `ckpt` finds its companions: libckpt_shim.so, the interceptor
//! `ckpt run` preloads, and ckpt-restorer, which `ckpt restart` runs (the
//! search itself is `ckpt::companions`, shared with the API).

use ckpt::companions::{find_companion, RESTORER_NAME, SHIM_NAME};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Find the shim: `$CKPT_SHIM` when set (it must exist), else the first
/// candidate next to the executable.
pub fn find_shim(env_shim: Option<OsString>, exe: &Path) -> Result<PathBuf, String> {
    find_companion(SHIM_NAME, "CKPT_SHIM", env_shim, exe)
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
