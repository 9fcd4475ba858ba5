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

#[test]
fn cancellation_and_pthread_exit_pass_through_wrappers() {
    require_shim();
    let tmp = TempDir::new("cancel");
    let bin = compile_c("cancel.c", tmp.path());
    let images = tmp.sub("images");
    let mut plain = Spawn::new(&bin, tmp.path()).plain("cancel (plain)");
    let mut run = Spawn::new(&bin, tmp.path()).under_ckpt(&images, "cancel (ckpt run)");
    let pst = plain.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let st = run.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(pst.success(), "{}", plain.describe());
    assert!(st.success(), "under ckpt: {st}\n{}", run.describe());
    let want = plain.stdout();
    assert!(
        want.contains("thread 4: cancelled=1 cleanup=1") && want.contains("pthread_exit value 7"),
        "{want}"
    );
    assert_eq!(run.stdout(), want, "{}", run.describe());
}

#[test]
fn direct_system_calls_match_the_c_library() {
    require_shim();
    let tmp = TempDir::new("direct");
    let bin = compile_c("direct_calls.c", tmp.path());
    let images = tmp.sub("images");
    let (a, b) = (tmp.sub("plain"), tmp.sub("ckpt"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let mut plain = Spawn::new(&bin, tmp.path())
        .arg(&a)
        .plain("direct_calls (plain)");
    let mut run = Spawn::new(&bin, tmp.path())
        .arg(&b)
        .under_ckpt(&images, "direct_calls (ckpt run)");
    let pst = plain.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let st = run.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(pst.success(), "{}", plain.describe());
    assert!(st.success(), "under ckpt: {st}\n{}", run.describe());
    let want = plain.stdout();
    assert!(
        want.contains("errno=ENOENT") && want.ends_with("cancelled in open\n"),
        "{want}"
    );
    assert_eq!(run.stdout(), want, "{}", run.describe());
}
