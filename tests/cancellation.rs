//! Thread cancellation and pthread_exit under `ckpt run`: glibc ends the
//! thread by forced unwinding through ckpt's wrapper frames (sleep, poll,
//! nanosleep, pthread_cond_wait, open of a FIFO, open/close); the program's cleanup
//! handlers must run and the process must not abort. Output compared with
//! a plain run.
//!
//! Also the calls whose wrappers make the system call themselves (dup,
//! dup2, dup3, single-threaded open/openat): same results and errno as the
//! C library's, and a self-cancelled thread is still cancelled in open().

mod common;

use common::*;

/// Run `bin` plainly and under `ckpt run` (each with its own extra
/// argument, if any), both must succeed with the same stdout; returns it.
fn same_output(
    tmp: &TempDir,
    bin: &std::path::Path,
    args: Option<[&std::path::Path; 2]>,
) -> String {
    let label = bin.file_name().unwrap().to_string_lossy().into_owned();
    let spawn = |i: usize| {
        let s = Spawn::new(bin, tmp.path());
        match args {
            Some(a) => s.arg(a[i]),
            None => s,
        }
    };
    let mut plain = spawn(0).plain(&format!("{label} (plain)"));
    let mut run = spawn(1).under_ckpt(&tmp.sub("images"), &format!("{label} (ckpt run)"));
    let pst = plain.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let st = run.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(pst.success(), "{}", plain.describe());
    assert!(st.success(), "under ckpt: {st}\n{}", run.describe());
    let want = plain.stdout();
    assert_eq!(run.stdout(), want, "{}", run.describe());
    want
}

#[test]
fn cancellation_and_pthread_exit_pass_through_wrappers() {
    require_shim();
    let tmp = TempDir::new("cancel");
    let bin = compile_c("cancel.c", tmp.path());
    let out = same_output(&tmp, &bin, None);
    assert!(
        out.contains("thread 4: cancelled=1 cleanup=1") && out.contains("pthread_exit value 7"),
        "{out}"
    );
}

#[test]
fn direct_system_calls_match_the_c_library() {
    require_shim();
    let tmp = TempDir::new("direct");
    let bin = compile_c("direct_calls.c", tmp.path());
    let (a, b) = (tmp.sub("plain"), tmp.sub("ckpt"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let out = same_output(&tmp, &bin, Some([&a, &b]));
    assert!(
        out.contains("errno=ENOENT") && out.ends_with("cancelled in open\n"),
        "{out}"
    );
}
