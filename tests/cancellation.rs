//! Thread cancellation and pthread_exit under `ckpt run`: glibc ends the
//! thread by forced unwinding through ckpt's wrapper frames (sleep, poll,
//! nanosleep, pthread_cond_wait, open/close); the program's cleanup
//! handlers must run and the process must not abort. Output compared with
//! a plain run.

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
        want.contains("thread 3: cancelled=1 cleanup=1") && want.contains("pthread_exit value 7"),
        "{want}"
    );
    assert_eq!(run.stdout(), want, "{}", run.describe());
}
