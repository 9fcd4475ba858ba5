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
    cycle(tag, src, env, false).unwrap_or_default()
}

/// The cycle, as root or (`nobody`) as an unprivileged user, for whom
/// /proc/self/map_files cannot be opened. `None`: skipped (not root, or
/// `nobody` cannot run what was built).
fn cycle(tag: &str, src: &str, env: &[(&str, &str)], nobody: bool) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // SAFETY: getuid never fails.
    if nobody && unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: needs root to act as nobody");
        return None;
    }
    let area = Area::new(tag);
    let open_up = |p: &std::path::Path| {
        if nobody {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777));
        }
    };
    open_up(area.path());
    std::fs::create_dir_all(&area.images).unwrap();
    open_up(&area.images);
    let bin = area.sub("bin");
    open_up(&bin);
    let prog = common::compile_c(src, &bin);
    let user = |mut c: std::process::Command| {
        c.envs(env.iter().copied());
        if nobody {
            c.uid(65534).gid(65534).env_remove("CKPT_RUNTIME_DIR");
        }
        c
    };
    let file = |name: &str| {
        let f = area.file(name);
        std::fs::write(&f, b"").unwrap();
        open_up(&f);
        f
    };
    let want_out = file("want.out");
    let st = rs::reference(
        user(rs::plain_cmd(&prog, &[] as &[&str], area.path())),
        &want_out,
        &file("want.err"),
        "plain",
    );
    if nobody && !st.success() {
        eprintln!("skipped: `nobody` cannot run {}", prog.display());
        return None;
    }
    rs::assert_success(st, "the uninterrupted run", "");
    let want = std::fs::read(&want_out).unwrap();
    let out = file("out");
    let err = file("err");
    let cmd = user(run_cmd(&prog, &[] as &[&str], area.path(), &area.images));
    let mut kid = start(cmd, Out::File(&out), &err, "under ckpt");
    wait_file(
        &mut kid,
        &out,
        |d| String::from_utf8_lossy(d).contains("step 19"),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let image = if nobody {
        let mut ck = user(std::process::Command::new(common::ckpt_bin()));
        ck.arg("checkpoint")
            .arg(kid.pid().to_string())
            .arg("--dir")
            .arg(&area.images);
        let r = ck.output().expect("ckpt checkpoint runs");
        assert!(
            r.status.success(),
            "checkpoint as nobody: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        kid.kill();
        std::path::PathBuf::from(String::from_utf8_lossy(&r.stdout).trim())
    } else {
        checkpoint_and_kill(&mut kid, &area.images)
    };
    Some(restart_and_compare(
        user(restart_cmd(&image, &[], area.path())),
        &out,
        &want,
        &area,
    ))
}

/// A job started under a limit on its address space (`ulimit -v 300000`,
/// as shared clusters set it) is checkpointed and restarted under the
/// same limit, and runs on as an uninterrupted run does, starting threads
/// and mapping memory. Before, the shim's 1 GiB scratch arena did not fit:
/// "checkpoints disabled", and then "the address range ... is already
/// in use", which it was not.
#[test]
fn a_job_under_an_address_space_limit_is_checkpointed() {
    use std::os::unix::process::CommandExt;
    let limited = |mut c: std::process::Command| {
        // SAFETY: setrlimit in the child before exec; no allocation.
        unsafe {
            c.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 300_000 << 10,
                    rlim_max: 300_000 << 10,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            })
        };
        c
    };
    let area = Area::new("aslimit");
    let prog = common::compile_c("address_limit.c", &area.sub("bin"));
    let want_out = area.file("want.out");
    let st = rs::reference(
        limited(rs::plain_cmd(&prog, &[] as &[&str], area.path())),
        &want_out,
        &area.file("want.err"),
        "plain, limited",
    );
    rs::assert_success(st, "the uninterrupted run", "");
    let want = std::fs::read(&want_out).unwrap();
    let out = area.file("out");
    let cmd = limited(run_cmd(&prog, &[] as &[&str], area.path(), &area.images));
    let mut kid = start(
        cmd,
        Out::File(&out),
        &area.file("err"),
        "under ckpt, limited",
    );
    wait_file(
        &mut kid,
        &out,
        |d| String::from_utf8_lossy(d).contains("step 19"),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let image = checkpoint_and_kill(&mut kid, &area.images);
    restart_and_compare(
        limited(restart_cmd(&image, &[], area.path())),
        &out,
        &want,
        &area,
    );
}

/// A region mapped MAP_GROWSDOWN comes back growing down: the program
/// goes on writing below it, a page a step, as in an uninterrupted run.
/// Before, it came back a plain region ("gd" gone, merged with its
/// neighbours): the next such write was a segmentation fault.
#[test]
fn a_region_that_grows_down_still_grows_down() {
    cycle_c("growsdown", "restart_growsdown.c");
}

/// A 2 TiB MAP_NORESERVE region and a 1 TiB PROT_NONE reservation (with a
/// read-write window) come back with their protection, NORESERVE and
/// contents; neither is committed at restart.
#[test]
fn large_reservations_come_back_as_they_were() {
    cycle_c("reserve", "restart_reserve.c");
}

/// Guard pages (MADV_GUARD_INSTALL) in a small region and in a large one
/// the pager fills, and sealed mappings (mseal: read-write small and
/// large, read-only, a private mapping of a file) come back as they were:
/// the guard pages fault for the kernel's reads, the seals refuse
/// mprotect, the contents are the same. Before, a restart put neither
/// back (said at checkpoint for guard pages, silent for seals).
#[test]
fn guard_pages_and_seals_come_back() {
    cycle_c("guards-seals", "restart_guards_seals.c");
}

/// NUMA memory policies come back: the main thread's, another thread's
/// own, and the regions' (mbind), one of them left out of an incremental
/// checkpoint's fork. Before, all came back as the default, silently.
#[test]
fn numa_memory_policies_come_back() {
    cycle_c("mempolicy", "restart_mempolicy.c");
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

/// The same unprivileged: the pages are found without the mapped objects
/// (/proc/self/map_files needs CAP_CHECKPOINT_RESTORE).
#[test]
fn shared_memory_comes_back_shared_unprivileged() {
    cycle("sharednobody", "restart_shared.c", &[], true);
}

/// Private mappings of unlinked files and of a memfd (descriptors
/// closed) come back with the file's pages and the program's own.
#[test]
fn private_mappings_of_unlinked_files_come_back() {
    cycle_c("unlinkedmap", "restart_unlinked_map.c");
}

/// The same unprivileged (every page of the unlinked files is read).
#[test]
fn private_mappings_of_unlinked_files_come_back_unprivileged() {
    cycle("unlinkednobody", "restart_unlinked_map.c", &[], true);
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
