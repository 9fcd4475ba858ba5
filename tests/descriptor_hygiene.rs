//! Issue acceptance 6: what ckpt keeps for itself stays out of the
//! program's way and out of its reach. The program gets fd 3 from its first
//! open, can close every descriptor (close_range, then close() up to the
//! limit) and still be checkpointed; blocking every signal does not block
//! the checkpoint signal (62) nor show it, and sigaction(62) either fails or
//! has no effect on checkpointing.

mod common;

use common::*;
use std::collections::BTreeMap;

const SIGUSR1: u64 = 10;

#[test]
fn program_cannot_see_or_break_ckpts_descriptors_and_signal() {
    require_shim();
    let tmp = TempDir::new("hyg");
    let bin = compile_c("hygiene.c", tmp.path());
    let ctl = tmp.sub("ctl");
    let images = tmp.sub("images");
    // The program's checks name signal 62 (SIGRTMAX-2): ckpt is told to
    // take that one (its default is another).
    let mut run = Spawn::new(&bin, tmp.path())
        .arg(&ctl)
        .env("CKPT_SIGNAL", "62")
        .under_ckpt(&images, "hygiene (ckpt run)");
    let kv =
        wait_marker(&mut run, &ctl.join("stage1"), READY_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let pid = kv_num(&kv, "pid") as i32;
    run.adopt(pid);

    let mut c = Checks::new();
    // (c) every descriptor closed: still checkpointable.
    let img1 = checkpoint(pid, Some(&images));
    match &img1 {
        Err(e) => c.fail(format!(
            "checkpoint after close_range + close(3..limit): {e}"
        )),
        Ok(img) => match inspect_json(img) {
            Err(e) => c.fail(e),
            Ok(j) => {
                let fds: Vec<i32> = image_fds(&j).keys().copied().collect();
                c.eq("image fds after closing everything", fds, vec![0, 1, 2]);
                c.num("seq of the first checkpoint", at(&j, "seq"), 1);
            }
        },
    }
    match program_fds(pid) {
        Ok(m) => c.eq(
            "/proc/PID/fd (less ckpt's own) after closing everything",
            m.keys().copied().collect::<Vec<_>>(),
            vec![0, 1, 2],
        ),
        Err(e) => c.fail(e),
    }
    // ckpt's own descriptors survived the program's closes: it answered.
    c.check(
        run.exited().is_none(),
        "the program died after closing every descriptor",
    );

    touch(&ctl.join("go1"));
    let kv2 = wait_marker(&mut run, &ctl.join("stage2"), READY_TIMEOUT);
    let kv2 = match kv2 {
        Ok(kv) => kv,
        Err(e) => {
            c.fail(e);
            c.finish(&run.describe());
            unreachable!();
        }
    };
    // (d) sigaction(62) failed, or had no visible effect on ckpt.
    let sigaction_ret = kv_num(&kv2, "sigaction_ret");
    eprintln!(
        "sigaction(62) returned {sigaction_ret} (errno {}), signal(62) failed={}",
        kv2["sigaction_errno"], kv2["signal_failed"]
    );
    let img2 = checkpoint(pid, Some(&images));
    match &img2 {
        Err(e) => c.fail(format!(
            "checkpoint after blocking every signal and sigaction(62): {e}"
        )),
        Ok(img) => match inspect_json(img) {
            Err(e) => c.fail(e),
            Ok(j) => {
                c.num("seq of the second checkpoint", at(&j, "seq"), 2);
                match thread_by_tid(&j, pid as i64) {
                    None => c.fail("main thread missing from the second image"),
                    Some(t) => {
                        let m = t["sigmask"].as_u64().unwrap_or(0);
                        c.check(
                            m & (1 << (SIGUSR1 - 1)) != 0,
                            format!("main thread sigmask {m:#x} must show SIGUSR1 blocked"),
                        );
                        c.eq("main thread sigmask shows signal 62", m & (1 << 61), 0);
                    }
                }
                let fds: BTreeMap<i32, String> = image_fds(&j);
                c.eq(
                    "image fds at stage 2",
                    fds.keys().copied().collect::<Vec<_>>(),
                    vec![0, 1, 2],
                );
            }
        },
    }

    touch(&ctl.join("go2"));
    let st = run.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    c.check(st.success(), format!("hygiene exited with {st}"));
    let out = run.stdout();
    for line in [
        "first open returned fd 3",
        "close_range(3, ~0U, 0) = 0",
        "closed 3..limit",
        "open after close_range returned fd 3",
        "dup2 onto the top 300 numbers: 0 failed",
        "after blocking everything: SIGUSR1 blocked=1 SIGRTMIN blocked=1 signal 62 blocked=0",
        "after SIG_SETMASK full: signal 62 blocked=0",
        "thread after blocking everything: signal 62 blocked=0",
        "signal 62 reached the program's handler 0 times",
        "done",
    ] {
        c.check(
            out.lines().any(|l| l == line),
            format!("stdout lacks {line:?}"),
        );
    }
    c.finish(&run.describe());
}

/// The same program without ckpt sees what a plain Linux process sees: this
/// proves the expectations above are not trivially true.
#[test]
fn hygiene_program_without_ckpt_sees_signal_62() {
    let tmp = TempDir::new("hygp");
    let bin = compile_c("hygiene.c", tmp.path());
    let ctl = tmp.sub("ctl");
    let mut p = Spawn::new(&bin, tmp.path())
        .arg(&ctl)
        .plain("hygiene (plain)");
    wait_marker(&mut p, &ctl.join("stage1"), READY_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    touch(&ctl.join("go1"));
    let kv =
        wait_marker(&mut p, &ctl.join("stage2"), READY_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    touch(&ctl.join("go2"));
    let st = p.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(st.success(), "{}", p.describe());
    let out = p.stdout();
    assert!(out.contains("first open returned fd 3"), "{}", p.describe());
    assert!(out.contains("signal 62 blocked=1"), "{}", p.describe());
    assert_eq!(kv_num(&kv, "sigaction_ret"), 0);
    assert_eq!(kv_num(&kv, "handler_is_ours"), 1);
}
