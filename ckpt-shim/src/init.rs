//! Start-up: runs from `.init_array` when the dynamic linker loads the
//! shim, before the program's `main`. Until it finishes every wrapper is a
//! plain pass-through.

use crate::{config, control, wrap};
use ckpt::{interpose, process, quiesce, signals, sys, threads};

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;

#[used]
#[link_section = ".fini_array"]
static FINI: extern "C" fn() = fini;

ckpt_macros::originals_registry!();

extern "C" fn init() {
    // The program starts with the floating-point state it would have had
    // without ckpt: what runs here (Rust's and glibc's arithmetic) sets
    // exception flags (inexact, denormal) a numerical program reads with
    // fetestexcept, and a checkpoint would carry them on.
    let fp = FpStatus::now();
    start_shim();
    fp.restore();
}

/// The SSE control and status register and the x87 status word.
struct FpStatus {
    mxcsr: u32,
    x87: u16,
}

impl FpStatus {
    fn now() -> FpStatus {
        let mut mxcsr = 0u32;
        let x87: u16;
        // SAFETY: stmxcsr stores 4 bytes into a live local; fnstsw reads
        // the x87 status word into ax; neither changes any state.
        unsafe {
            core::arch::asm!("stmxcsr [{}]", in(reg) &mut mxcsr, options(nostack));
            core::arch::asm!("fnstsw ax", out("ax") x87, options(nomem, nostack));
        }
        FpStatus { mxcsr, x87 }
    }

    fn restore(&self) {
        // SAFETY: ldmxcsr loads the value read at entry (valid: it was
        // the register's); fnclex only clears x87 exception flags, done
        // when none were set at entry.
        unsafe {
            core::arch::asm!("ldmxcsr [{}]", in(reg) &self.mxcsr, options(nostack, readonly));
            if self.x87 & 0x3f == 0 {
                core::arch::asm!("fnclex", options(nomem, nostack));
            }
        }
    }
}

fn start_shim() {
    if !preloaded() {
        // Loaded by `ckpt::checkpoint()` in a running program: thread
        // states by thread id, never in (malloc-allocated) dynamic TLS.
        interpose::use_late_states();
    }
    interpose::internally(|| {
        if let Err(e) = start() {
            // The program still runs; it just cannot be checkpointed.
            eprintln!("ckpt: checkpoints disabled: {e}");
        }
    });
    if interpose::is_ready() {
        crate::plugins::run_waiting();
    }
}

fn start() -> Result<(), String> {
    let cfg = config::get();
    ckpt::process::note_own_pid();
    ckpt::process::keyrings::note_session();
    // What the program before exec kept of sockets it still holds.
    ckpt::files::across_exec::import_from_env();
    ckpt::files::packet::note_inherited();
    signals::set_reserved(cfg.signal);
    // Every written file's contents in the image, not only small ones.
    ckpt::files::written::configure(std::env::var_os("CKPT_SAVE_FILES").as_deref());
    // Incremental images unless told otherwise (a program using
    // userfaultfd write-protection itself needs them off).
    ckpt::memory::dirty::configure(std::env::var_os("CKPT_INCREMENTAL").is_none_or(|v| v != "0"));
    ckpt::memory::stage::configure(std::env::var_os("CKPT_UNFORKED").is_none_or(|v| v != "0"));
    // A process of a `ckpt run` job logs the files it writes for the
    // job's root (a process that ends before a checkpoint cannot tell it).
    let tag = std::env::var("CKPT_JOB").ok();
    if let Some((tag, job)) = tag
        .as_deref()
        .and_then(|t| Some((t, ckpt::files::joblog::parse_tag(t)?)))
    {
        // SAFETY: getuid cannot fail.
        let dir = ckpt::control::runtime_dir(unsafe { libc::getuid() });
        let log = ckpt::files::joblog::log_path(&dir, tag);
        ckpt::files::joblog::configure(job, log.as_os_str().as_encoded_bytes());
    }
    // Compressed extents (`--compress`); a bad value is refused, not ignored.
    ckpt::memory::compress::configure_from_env()?;
    resolve_all_originals();
    if preloaded() {
        // Loaded at start-up: its TLS block is static.
        interpose::use_static_tls();
    }
    // Every fork's child gets its own control channel from an atfork
    // handler, registered before the program's own (so it runs first in
    // the child): glibc forks inside forkpty and daemon without calling
    // `fork` through the wrapper, and a shim loaded later sees no fork.
    // SAFETY: registering plain extern "C" fns with no arguments.
    unsafe { libc::pthread_atfork(Some(before_fork), None, Some(child_after_fork)) };
    ckpt::glibc::init()?;
    {
        use wrap::files::{dup, dup2, dup3, open, open64, openat, openat64};
        wrap::direct::init(
            [&dup::ORIGINAL, &dup2::ORIGINAL, &dup3::ORIGINAL],
            [
                &open::ORIGINAL,
                &open64::ORIGINAL,
                &openat::ORIGINAL,
                &openat64::ORIGINAL,
            ],
        );
    }
    threads::record_main(&main_thread_attrs());
    ckpt::process::note_mount_namespace();
    ckpt::process::note_uts_namespace();
    ckpt::files::record_inherited();
    // SAFETY: umask is read by setting and restoring it (no other thread yet).
    let mask = unsafe {
        let m = libc::umask(0o022);
        libc::umask(m);
        m
    };
    process::record_umask(mask);
    let real_sigaction: signals::RealSigaction = ckpt::real!(wrap::signals::sigaction);
    signals::adopt_existing(real_sigaction);
    // Map the scratch arena and the coordinator's stack now: a request
    // is served in a signal handler, where mmap is fine but failing is not.
    // The restorer's range first: under a limit on the address space the
    // arena takes what is left of ckpt's share.
    ckpt::memory::reserve_restorer_range()?;
    ckpt::alloc::scratch_begin()?;
    ckpt::alloc::scratch_end();
    quiesce::set_coordinator_stack(4 << 20)?;
    ckpt::restart::prepare(control::after_restart)?;
    quiesce::install(real_sigaction)?;
    unblock_reserved();
    control::start()?;
    interpose::set_ready(true);
    Ok(())
}

/// Another library or the parent may have left the reserved signal
/// blocked; this thread must be freezable.
fn unblock_reserved() {
    sys::sigprocmask(libc::SIG_UNBLOCK, signals::bit(signals::reserved()));
}

/// Whether the shim was preloaded (by `ckpt run`, or an inherited
/// LD_PRELOAD), rather than loaded by a running program.
fn preloaded() -> bool {
    std::env::var_os("LD_PRELOAD").is_some_and(|p| p.to_string_lossy().contains("libckpt_shim"))
}

extern "C" fn before_fork() {
    // Restarted lazily: the child would read zeros for pages the pager
    // has not filled yet.
    ckpt::memory::lazy::wait_filled();
}

extern "C" fn child_after_fork() {
    after_fork_in_child();
}

fn main_thread_attrs() -> threads::Attrs {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit into a live struct.
    unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut lim) };
    threads::Attrs {
        detached: false,
        stack_size: if lim.rlim_cur == libc::RLIM_INFINITY {
            0
        } else {
            lim.rlim_cur
        },
        guard_size: 4096,
        sched_policy: libc::SCHED_OTHER,
        sched_priority: 0,
        inherit_sched: true,
    }
}

extern "C" fn fini() {
    if interpose::is_ready() {
        interpose::set_ready(false);
        control::remove_socket();
    }
}

/// In the child of a fork: one thread, no timers, a new control channel.
pub fn after_fork_in_child() {
    interpose::internally(|| {
        threads::reset_after_fork();
        ckpt::cputime::reset_after_fork();
        ckpt::files::closed::reset();
        ckpt::files::joblog::reset_after_fork();
        ckpt::timers::reset();
        crate::timer_threads::reset_after_fork();
        process::reset_after_fork();
        control::restart_in_child();
        crate::hooks::after_fork_in_child();
        let _ = sys::gettid();
    });
}
