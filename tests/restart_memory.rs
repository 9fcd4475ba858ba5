//! Memory and threads across a restart, each on a real C program that is
//! checkpointed mid-loop ("step 19"), SIGKILLed, restarted, and must print
//! exactly what an uninterrupted run prints: large reservations
//! (MAP_NORESERVE, PROT_NONE), thread names, shared memory (anonymous,
//! memfd, /dev/shm), private mappings of unlinked files, and an rseq area
//! the program registered itself.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{
    checkpoint_and_kill, restart_and_compare, restart_cmd, run_cmd, start, wait_file, Area, Out,
};
use std::time::Duration;

/// Compile tests/programs/`src`, run it plainly for the reference, then
/// under ckpt: checkpoint once it printed "step 19", SIGKILL, restart,
/// and compare the whole output. Returns the restart's stderr.
fn cycle_c(tag: &str, src: &str) -> String {
    cycle_c_env(tag, src, &[])
}

/// `cycle_c` with environment variables for both runs.
fn cycle_c_env(tag: &str, src: &str, env: &[(&str, &str)]) -> String {
    let dir = common::TempDir::new(&format!("{tag}-bin"));
    let prog = common::compile_c(src, dir.path());
    let area = Area::new(tag);
    let want = {
        let out = area.file("want.out");
        let mut cmd = rs::plain_cmd(&prog, &[] as &[&str], area.path());
        cmd.envs(env.iter().copied());
        let st = rs::reference(cmd, &out, &area.file("want.err"), "plain");
        rs::assert_success(st, "the uninterrupted run", "");
        std::fs::read(&out).unwrap()
    };
    let out = area.file("out");
    let err = area.file("err");
    let mut cmd = run_cmd(&prog, &[] as &[&str], area.path(), &area.images);
    cmd.envs(env.iter().copied());
    let mut kid = start(cmd, Out::File(&out), &err, "under ckpt");
    wait_file(
        &mut kid,
        &out,
        |d| String::from_utf8_lossy(d).contains("step 19"),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let image = checkpoint_and_kill(&mut kid, &area.images);
    restart_and_compare(restart_cmd(&image, &[], area.path()), &out, &want, &area)
}

/// A 2 TiB MAP_NORESERVE region and a 1 TiB PROT_NONE reservation (with a
/// read-write window) come back with their protection, NORESERVE and
/// contents; neither is committed at restart.
#[test]
fn large_reservations_come_back_as_they_were() {
    cycle_c("reserve", "restart_reserve.c");
}

/// Each thread keeps its own name (comm) across a restart.
#[test]
fn thread_names_come_back() {
    cycle_c("threadnames", "restart_thread_names.c");
}

/// Shared anonymous memory (with a second view of it), a memfd and an
/// unlinked /dev/shm file mapped shared with their descriptors, and a
/// memfd mapped twice without one: contents come back, and every view
/// still shares its pages with the others and with the descriptor.
#[test]
fn shared_memory_comes_back_shared() {
    cycle_c("shared", "restart_shared.c");
}

/// Private mappings of unlinked files and of a memfd (descriptors
/// closed) come back with the file's pages and the program's own.
#[test]
fn private_mappings_of_unlinked_files_come_back() {
    cycle_c("unlinkedmap", "restart_unlinked_map.c");
}

/// rseq areas the program registered itself (glibc's registration turned
/// off), one per thread with its own signature, are registered again.
#[test]
fn rseq_areas_the_program_registered_come_back() {
    cycle_c_env(
        "ownrseq",
        "restart_own_rseq.c",
        &[("GLIBC_TUNABLES", "glibc.pthread.rseq=0")],
    );
}
