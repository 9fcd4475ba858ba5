//! `ckpt run`: exec the program with the interceptor preloaded.

use crate::cli::RunArgs;
use crate::shim_path;
use crate::Failure;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Exit statuses a shell uses when it cannot start a command.
const EXIT_NOT_FOUND: i32 = 127;
const EXIT_CANNOT_EXEC: i32 = 126;

/// What a PATH lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(PathBuf),
    NotFound,
    NotExecutable,
    IsDirectory,
}

/// Replace this process with the program; returns only on failure.
pub fn run(args: RunArgs) -> Failure {
    let prog = args.command[0].clone();
    let shown = Path::new(&prog).display().to_string();
    let path = match find_program(&prog, std::env::var_os("PATH").as_deref()) {
        Lookup::Found(p) => p,
        Lookup::NotFound => {
            return Failure::with_code(EXIT_NOT_FOUND, format!("{shown}: command not found"))
        }
        Lookup::NotExecutable => {
            return Failure::with_code(EXIT_CANNOT_EXEC, format!("{shown}: permission denied"))
        }
        Lookup::IsDirectory => {
            return Failure::with_code(EXIT_CANNOT_EXEC, format!("{shown}: is a directory"))
        }
    };
    let shim = match shim_path::find_for_current_exe() {
        Ok(s) => s,
        Err(e) => return Failure::new(e),
    };
    // With a store, images are staged beside it and imported by the
    // `ckpt checkpoint --store` the shim starts for each checkpoint.
    let store = match args.store.as_deref().map(run_store).transpose() {
        Ok(s) => s,
        Err(e) => return Failure::new(e),
    };
    let staging = store.as_ref().map(|(_, staging)| staging.clone());
    let dir = match image_dir(staging.as_deref().or(args.dir.as_deref())) {
        Ok(d) => d,
        Err(e) => return Failure::new(e),
    };
    let plugins = match args
        .plugin
        .iter()
        .map(|p| plugin_path(p))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(p) => p,
        Err(e) => return Failure::new(e),
    };
    let mut ours = vec![
        (
            "LD_PRELOAD".into(),
            with_plugins(
                preload_value(std::env::var_os("LD_PRELOAD").as_deref(), &shim),
                &plugins,
            ),
        ),
        ("CKPT_DIR".into(), dir.into_os_string()),
    ];
    ours.push(("CKPT_KEEP".into(), args.keep.to_string().into()));
    if let Some((spec, _)) = store {
        ours.push(("CKPT_STORE".into(), spec));
    }
    if !plugins.is_empty() {
        // So an exec that lost LD_PRELOAD gets the plugins back too.
        let list: Vec<&OsStr> = plugins.iter().map(|p| p.as_os_str()).collect();
        ours.push(("CKPT_PLUGINS".into(), list.join(OsStr::new(":"))));
    }
    if let Some(crate::cli::Compression(codec)) = args.compress {
        let name = codec.map_or("none", |c| c.name());
        ours.push(("CKPT_COMPRESS".into(), name.into()));
    }
    if args.save_files {
        ours.push(("CKPT_SAVE_FILES".into(), "1".into()));
    }
    if args.precopy {
        ours.push(("CKPT_PRECOPY".into(), "1".into()));
    }
    // Every process of the job inherits it: one that leaves the job (its
    // parent ended) is still known as the job's at a checkpoint.
    // Its tag tells it from a job whose root had the same pid (a restart
    // keeps it: `ckpt restart` refuses while processes with it run).
    let tag = ckpt::files::joblog::tag(std::process::id() as i32, ckpt::control::new_nonce());
    ours.push(("CKPT_JOB".into(), tag.clone().into()));
    // Its log of the files its processes write starts empty (see
    // `ckpt::files::joblog`; a pid used again must not inherit one).
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let rt = ckpt::control::runtime_dir(uid);
    if ckpt::control::ensure_runtime_dir(&rt, uid).is_ok() {
        ckpt::files::joblog::sweep(&rt);
        let _ = std::fs::write(ckpt::files::joblog::log_path(&rt, &tag), b"");
    }
    // The shim starts this command to checkpoint a whole tree.
    if let Ok(me) = std::env::current_exe() {
        ours.push(("CKPT_BIN".into(), me.into_os_string()));
    }
    if let Some(secs) = args.interval {
        ours.push(("CKPT_INTERVAL".into(), interval_value(secs).into()));
    }
    let env = merge_env(std::env::vars_os(), ours);
    let err = exec(&path, &args.command, &env);
    let code = if err.raw_os_error() == Some(libc::ENOENT) {
        EXIT_NOT_FOUND
    } else {
        EXIT_CANNOT_EXEC
    };
    Failure::with_code(code, format!("{shown}: cannot execute: {err}"))
}

/// Look `prog` up like a shell: a name with a `/` is used as is, otherwise
/// each PATH entry is tried in order (an empty entry is the current
/// directory); a match that is not executable is remembered so the error
/// can say "permission denied" rather than "not found".
pub fn find_program(prog: &OsStr, path_var: Option<&OsStr>) -> Lookup {
    if prog.is_empty() {
        return Lookup::NotFound;
    }
    if prog.as_bytes().contains(&b'/') {
        let p = Path::new(prog);
        return match std::fs::metadata(p) {
            Err(_) => Lookup::NotFound,
            Ok(m) if m.is_dir() => Lookup::IsDirectory,
            Ok(_) if !executable(p) => Lookup::NotExecutable,
            Ok(_) => Lookup::Found(p.to_path_buf()),
        };
    }
    let default_path = OsStr::new("/usr/local/bin:/usr/bin:/bin");
    let mut saw_unexecutable = false;
    for dir in path_var
        .unwrap_or(default_path)
        .as_bytes()
        .split(|&b| b == b':')
    {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(prog);
        match std::fs::metadata(&candidate) {
            Ok(m) if m.is_file() => {
                if executable(&candidate) {
                    return Lookup::Found(candidate);
                }
                saw_unexecutable = true;
            }
            _ => {}
        }
    }
    if saw_unexecutable {
        Lookup::NotExecutable
    } else {
        Lookup::NotFound
    }
}

fn executable(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access() only reads the NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
}

/// The absolute image directory (`dir`, or the current directory), created
/// when missing and checked to be a writable directory.
pub fn image_dir(dir: Option<&Path>) -> Result<PathBuf, String> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir()
            .map_err(|e| format!("cannot read the current directory: {e}"))?,
    };
    let shown = dir.display();
    if dir.exists() && !dir.is_dir() {
        return Err(format!("image directory {shown} is not a directory"));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create image directory {shown}: {e}"))?;
    let abs = dir
        .canonicalize()
        .map_err(|e| format!("image directory {shown}: {e}"))?;
    if !abs.is_dir() {
        return Err(format!("image directory {shown} is not a directory"));
    }
    let c = CString::new(abs.as_os_str().as_bytes())
        .map_err(|_| format!("image directory {shown}: bad path"))?;
    // SAFETY: access() only reads the NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("image directory {shown} is not writable: {e}"));
    }
    Ok(abs)
}

/// LD_PRELOAD with the shim first, then the other entries already there
/// (the dynamic linker accepts `:` or spaces between them), without
/// listing the shim twice.
pub fn preload_value(existing: Option<&OsStr>, shim: &Path) -> OsString {
    let shim = shim.as_os_str().as_bytes();
    let mut out = shim.to_vec();
    let rest = existing.map(OsStr::as_bytes).unwrap_or_default();
    for entry in rest.split(|&b| b == b':' || b == b' ') {
        if entry.is_empty() || entry == shim || same_file(entry, shim) {
            continue;
        }
        out.push(b':');
        out.extend_from_slice(entry);
    }
    OsString::from_vec(out)
}

/// `--store sqlite:PATH`: the store made (or checked) now, so a bad one
/// is refused before the program starts; `sqlite:ABSOLUTE-PATH` for the
/// shim, and the store's staging directory.
fn run_store(spec: &OsStr) -> Result<(OsString, PathBuf), String> {
    let (db, name) = crate::store::parse(spec).ok_or_else(|| {
        format!(
            "--store {}: not a store (write sqlite:PATH)",
            spec.to_string_lossy()
        )
    })?;
    if name.is_some() {
        return Err("--store: give sqlite:PATH, without #NAME".into());
    }
    let db = std::path::absolute(&db).map_err(|e| format!("{}: {e}", db.display()))?;
    crate::store::Store::open(&db, true)?;
    let mut s = OsString::from(crate::store::PREFIX);
    s.push(db.as_os_str());
    // The run's directory (for a checkpoint asked into no store): the
    // database's.
    let dir = db
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    Ok((s, dir))
}

/// A plugin given to `--plugin`: an existing shared library, absolute
/// (the dynamic linker resolves LD_PRELOAD in the program's directory).
fn plugin_path(p: &Path) -> Result<PathBuf, String> {
    let abs = p
        .canonicalize()
        .map_err(|e| format!("plugin {}: {e}", p.display()))?;
    let mut magic = [0u8; 4];
    let is_elf = std::fs::File::open(&abs)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == *b"\x7fELF";
    if !is_elf {
        return Err(format!("plugin {}: not a shared library", p.display()));
    }
    if abs
        .as_os_str()
        .as_bytes()
        .iter()
        .any(|&b| b == b':' || b == b' ')
    {
        return Err(format!(
            "plugin {}: its path holds ':' or a space, which LD_PRELOAD cannot carry",
            abs.display()
        ));
    }
    Ok(abs)
}

/// LD_PRELOAD (`value`, the shim first) with the plugins right after the
/// shim: their wrappers come before the libraries they wrap.
fn with_plugins(value: OsString, plugins: &[PathBuf]) -> OsString {
    if plugins.is_empty() {
        return value;
    }
    let bytes = value.into_vec();
    let (shim, rest) = match bytes.iter().position(|&b| b == b':') {
        Some(i) => (&bytes[..i], Some(&bytes[i + 1..])),
        None => (&bytes[..], None),
    };
    let mut out = shim.to_vec();
    for p in plugins {
        out.push(b':');
        out.extend_from_slice(p.as_os_str().as_bytes());
    }
    if let Some(rest) = rest {
        out.push(b':');
        out.extend_from_slice(rest);
    }
    OsString::from_vec(out)
}

fn same_file(a: &[u8], b: &[u8]) -> bool {
    let canon = |p: &[u8]| Path::new(OsStr::from_bytes(p)).canonicalize().ok();
    matches!((canon(a), canon(b)), (Some(x), Some(y)) if x == y)
}

/// CKPT_INTERVAL as the shim reads it: whole seconds print without a
/// fraction ("5"), others as the shortest decimal ("0.5").
pub fn interval_value(secs: f64) -> String {
    if secs.fract() == 0.0 && secs < 9e15 {
        format!("{}", secs as u64)
    } else {
        format!("{secs}")
    }
}

/// The inherited environment with `ours` replacing any variable of the
/// same name, as `NAME=value` C strings for execve.
pub fn merge_env(
    inherited: impl Iterator<Item = (OsString, OsString)>,
    ours: Vec<(OsString, OsString)>,
) -> Vec<CString> {
    let names: Vec<OsString> = ours.iter().map(|(k, _)| k.clone()).collect();
    let kept = inherited.filter(|(k, _)| !names.contains(k));
    kept.chain(ours)
        .filter_map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect()
}

/// execve(path, argv, env); returns only the error when it fails. A file
/// the kernel cannot run (ENOEXEC: a script without `#!`) is handed to
/// /bin/sh, as execvp and shells do.
fn exec(path: &Path, argv: &[OsString], env: &[CString]) -> std::io::Error {
    let cstr = |s: &OsStr| {
        CString::new(s.as_bytes()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
    };
    let build = || -> std::io::Result<(CString, Vec<CString>)> {
        Ok((
            cstr(path.as_os_str())?,
            argv.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?,
        ))
    };
    let (cpath, cargs) = match build() {
        Ok(v) => v,
        Err(e) => return e,
    };
    // Rust starts every program with SIGPIPE ignored, and an ignored signal
    // stays ignored across exec: give the program the default back, as
    // std's Command does. (The signal mask is left alone, as exec does.)
    // SAFETY: setting a disposition to SIG_DFL touches no memory of ours.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let envp = null_terminated(env);
    let err = execve(&cpath, &cargs, &envp);
    if err.raw_os_error() != Some(libc::ENOEXEC) {
        return err;
    }
    let sh = CString::new("/bin/sh").expect("no NUL");
    let mut sh_args = vec![sh.clone(), cpath];
    sh_args.extend(cargs.into_iter().skip(1));
    execve(&sh, &sh_args, &envp)
}

fn null_terminated(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

fn execve(path: &CString, argv: &[CString], envp: &[*const libc::c_char]) -> std::io::Error {
    let argv = null_terminated(argv);
    // SAFETY: path, argv and envp are NUL-terminated strings and
    // NULL-terminated pointer arrays that outlive the call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    std::io::Error::last_os_error()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;
    use std::os::unix::fs::PermissionsExt;

    fn file(p: &Path, mode: u32) {
        std::fs::write(p, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn preload_prepends_without_duplicates() {
        let shim = Path::new("/opt/ckpt/libckpt_shim.so");
        assert_eq!(preload_value(None, shim), "/opt/ckpt/libckpt_shim.so");
        assert_eq!(
            preload_value(Some(OsStr::new("")), shim),
            "/opt/ckpt/libckpt_shim.so"
        );
        assert_eq!(
            preload_value(Some(OsStr::new("/a.so:/b.so")), shim),
            "/opt/ckpt/libckpt_shim.so:/a.so:/b.so"
        );
        assert_eq!(
            preload_value(
                Some(OsStr::new("/a.so:/opt/ckpt/libckpt_shim.so::/b.so")),
                shim
            ),
            "/opt/ckpt/libckpt_shim.so:/a.so:/b.so"
        );
        assert_eq!(
            preload_value(Some(OsStr::new("/a.so /b.so")), shim),
            "/opt/ckpt/libckpt_shim.so:/a.so:/b.so"
        );
    }

    #[test]
    fn preload_recognises_the_shim_under_another_spelling() {
        let t = TempDir::new("preload");
        let shim = t.path().join("libckpt_shim.so");
        std::fs::write(&shim, b"").unwrap();
        let other = format!("{}/./libckpt_shim.so:/x.so", t.path().display());
        let v = preload_value(Some(OsStr::new(&other)), &shim);
        assert_eq!(v, OsString::from(format!("{}:/x.so", shim.display())));
    }

    #[test]
    fn interval_is_written_plainly() {
        assert_eq!(interval_value(5.0), "5");
        assert_eq!(interval_value(0.5), "0.5");
        assert_eq!(interval_value(2.25), "2.25");
    }

    #[test]
    fn env_overrides_replace_inherited_values() {
        let inherited = vec![
            ("PATH".into(), "/bin".into()),
            ("LD_PRELOAD".into(), "/old.so".into()),
            ("HOME".into(), "/h".into()),
        ];
        let env = merge_env(
            inherited.into_iter(),
            vec![
                ("LD_PRELOAD".into(), "/s.so:/old.so".into()),
                ("CKPT_DIR".into(), "/d".into()),
            ],
        );
        let env: Vec<_> = env.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(
            env,
            [
                "PATH=/bin",
                "HOME=/h",
                "LD_PRELOAD=/s.so:/old.so",
                "CKPT_DIR=/d"
            ]
        );
    }

    #[test]
    fn program_lookup_follows_path_like_a_shell() {
        let t = TempDir::new("lookup");
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        file(&a.join("tool"), 0o644);
        file(&b.join("tool"), 0o755);
        file(&a.join("noexec"), 0o644);
        std::fs::create_dir_all(a.join("dir")).unwrap();
        let path = OsString::from(format!("{}:{}", a.display(), b.display()));
        let path = Some(path.as_os_str());

        assert_eq!(
            find_program(OsStr::new("tool"), path),
            Lookup::Found(b.join("tool"))
        );
        assert_eq!(find_program(OsStr::new("nothere"), path), Lookup::NotFound);
        assert_eq!(find_program(OsStr::new("dir"), path), Lookup::NotFound);
        assert_eq!(find_program(OsStr::new(""), path), Lookup::NotFound);
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !root {
            assert_eq!(
                find_program(OsStr::new("noexec"), path),
                Lookup::NotExecutable
            );
        }
        let direct = a.join("noexec");
        if !root {
            assert_eq!(
                find_program(direct.as_os_str(), path),
                Lookup::NotExecutable
            );
        }
        assert_eq!(
            find_program(a.join("dir").as_os_str(), path),
            Lookup::IsDirectory
        );
        assert_eq!(
            find_program(a.join("gone").as_os_str(), path),
            Lookup::NotFound
        );
        let tool = b.join("tool");
        assert_eq!(
            find_program(tool.as_os_str(), None),
            Lookup::Found(tool.clone())
        );
        assert!(matches!(
            find_program(OsStr::new("sh"), None),
            Lookup::Found(_)
        ));
    }

    #[test]
    fn image_dir_is_created_and_made_absolute() {
        let t = TempDir::new("imgdir");
        let want = t.path().join("x/y");
        let got = image_dir(Some(&t.path().join("x/../x/y"))).unwrap();
        assert_eq!(got, want.canonicalize().unwrap());
        assert!(got.is_absolute() && got.is_dir());
        let f = t.path().join("plain");
        std::fs::write(&f, b"").unwrap();
        let e = image_dir(Some(&f.join("sub"))).unwrap_err();
        assert!(e.starts_with("cannot create image directory"), "{e}");
        assert!(image_dir(Some(&f))
            .unwrap_err()
            .ends_with("plain is not a directory"));
    }
}
