//! Post-restart: the code the restorer jumps into, inside the restored
//! image. Memory is back; the kernel state is not. This thread (the
//! process's only one, its leader) becomes the main thread again,
//! re-creates the other threads, replays the recorded kernel state, and
//! then every thread returns through the signal frame it was parked in —
//! exactly where the checkpoint stopped it.
//!
//! The checkpoint left its gathered [`Meta`] in the scratch arena and its
//! address in [`PENDING`]; the restored memory still holds both, so no
//! decoding happens here.
//!
//! Context: no thread of the program runs until the end, but a frozen
//! thread may have held malloc's lock at the checkpoint, so allocation is
//! routed to the scratch arena throughout. No panics (the shim aborts).

use crate::image::{Meta, Thread};
use crate::restart_report::{fail, warn};
use crate::{
    alloc, files, glibc, interpose, memory, process, quiesce, signals, sys, threads, timers,
};
use core::ffi::c_void;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};

/// The metadata of the checkpoint in progress (valid in its image).
static PENDING: AtomicPtr<Meta> = AtomicPtr::new(core::ptr::null_mut());
/// Top of the stack the restorer jumps onto.
static STACK_TOP: AtomicU64 = AtomicU64::new(0);
/// The shim's work after the replay (control channel, mailbox).
static AFTER: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
/// The pid of the `ckpt restart` command, which users may hand to
/// `ckpt checkpoint` (the program itself may have another, in its own pid
/// namespace). 0 = none.
static ALIAS_PID: AtomicI32 = AtomicI32::new(0);
/// Re-created threads that are ready.
static STARTED: AtomicU32 = AtomicU32::new(0);
/// 1 once every thread may return to the program.
static GO: AtomicU32 = AtomicU32::new(0);
/// Logical id of a thread let go before every other one (the shim's hook
/// thread, which runs the program's on-restore hooks and then lets the
/// rest go with [`release_all`]); 0 = none.
static FIRST: AtomicU32 = AtomicU32::new(0);
static FIRST_GO: AtomicU32 = AtomicU32::new(0);
/// How long the other threads wait for the on-restore hooks at most.
const HOOKS_PATIENCE_NS: u64 = 60_000_000_000;

/// Let thread `id` go on first after a restart; it must call
/// [`release_all`] once it is done (0: no such thread).
pub fn set_first_thread(id: u32) {
    FIRST.store(id, Release);
}

/// The thread let go first is done: every other thread goes on.
pub fn release_all() {
    GO.store(1, Release);
    sys::futex_wake_all(&GO);
}

const ENTRY_STACK: usize = 1 << 20;
const THREAD_STACK: usize = 64 << 10;

/// Map the stack post-restart code runs on and remember the shim's hook.
/// Called once at start-up.
pub fn prepare(after_restart: extern "C" fn()) -> Result<(), String> {
    // SAFETY: anonymous private mapping, no hint.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            ENTRY_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err("cannot map the restart stack".into());
    }
    STACK_TOP.store((p as u64 + ENTRY_STACK as u64) & !15, Release);
    AFTER.store(after_restart as *mut c_void, Release);
    Ok(())
}

/// The process `entry` restarted (its getpid()).
static RESTARTED_PID: AtomicI32 = AtomicI32::new(0);

/// The name of this process's control socket. Normally its pid. A
/// program restarted in a pid namespace uses the pid of its `ckpt restart`
/// command (its own pid means nothing outside); other processes in such a
/// namespace (its children, what it execs) add the namespace's identity to
/// their pid, so no name can clash with a process outside.
pub fn control_name() -> String {
    let alias = ALIAS_PID.load(Acquire);
    let me = sys::getpid();
    if alias > 0 && alias != me && me == RESTARTED_PID.load(Acquire) {
        return alias.to_string();
    }
    match restart_namespace() {
        Some(ns) => format!("{me}-ns{ns}"),
        None => me.to_string(),
    }
}

/// The pid namespace's inode when this process runs inside the namespace
/// of a `ckpt restart` (its pid 1 is ckpt-init).
pub fn restart_namespace() -> Option<u64> {
    let mut buf = [0u8; 64];
    let n = sys::read_small(libc::AT_FDCWD, c"/proc/1/comm", &mut buf)?;
    if buf[..n].trim_ascii_end() != b"ckpt-init" {
        return None;
    }
    let n = sys::readlinkat(libc::AT_FDCWD, c"/proc/self/ns/pid", &mut buf)?;
    // "pid:[4026531836]"
    let text = core::str::from_utf8(&buf[..n]).ok()?;
    text.trim_start_matches("pid:[")
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Top of the restart stack (for the image).
pub fn stack_top() -> u64 {
    STACK_TOP.load(Acquire)
}

/// Called by the checkpoint right before the writer forks.
pub fn set_pending(meta: &Meta) {
    PENDING.store(meta as *const Meta as *mut Meta, Release);
}

/// The restorer jumps here: `rdi` = its argument (unused), `rsi` = the
/// image descriptor, `rdx` = the plan (in the restorer's range).
pub extern "C" fn entry(arg: u64, _image_fd: i32, plan: u64) -> ! {
    let (alias_pid, entry_fd) = crate::tree::unpack_entry_arg(arg);
    let handoff_fd = match entry_fd {
        Some(crate::tree::EntryFd::Handoff(fd)) => Some(fd),
        _ => None,
    };
    ALIAS_PID.store(alias_pid, Release);
    RESTARTED_PID.store(sys::getpid(), Release);
    // SAFETY: PENDING points into the restored scratch arena (set before
    // the writer forked, so the image holds both the pointer and the Meta).
    let Some(meta) = (unsafe { PENDING.load(Acquire).as_ref() }) else {
        fail("the image holds no checkpoint state");
    };
    let leader = meta
        .threads
        .iter()
        .find(|t| t.id == 1 && t.ucontext != 0)
        .or_else(|| meta.threads.iter().find(|t| t.ucontext != 0))
        .unwrap_or_else(|| fail("no thread of the image can be resumed"));
    // SAFETY: the leader's descriptor is not used by any other thread
    // (none exists yet).
    unsafe { glibc::set_thread_pointer(leader.fs_base) };
    // TLS works from here on.
    sys::sigprocmask(libc::SIG_SETMASK, !0);
    alloc::scratch_resume();
    // Descriptors 0-2 are still the restart command's: which of them is
    // a file the program writes on through (see `files::shared_stream`).
    files::note_shared_streams();
    let tid_addr = leader.fs_base + meta.restart.tid_offset;
    // SAFETY: tid_addr is the cached tid in the leader's struct pthread;
    // set_tid_address makes the kernel clear it when this thread exits.
    unsafe {
        (tid_addr as *mut i32).write(sys::gettid());
        libc::syscall(libc::SYS_set_tid_address, tid_addr);
    }
    // Extended CPU state (AMX tiles) the program was allowed: before any
    // thread's saved state, which may hold it, is restored.
    let refused = glibc::request_xcomp_perm(meta.process.xcomp_perm);
    if refused != 0 {
        warn(&format!(
            "the program was allowed extended CPU state features {refused:#x} (AMX: 0x40000) that this machine refuses: code using them dies with SIGILL"
        ));
    }
    thread_setup(leader);
    let finals = memory::guards::from_plan(plan);
    memory::re_reserve_restorer_range();
    memory::fork_advice::restore(&meta.fork_advice);
    // Nothing is write-protected in a restored process: the next image is whole.
    memory::dirty::forget();
    memory::stage::forget();
    let top = meta.fds.iter().map(|f| f.fd).max().unwrap_or(2);
    // SAFETY: F_DUPFD_CLOEXEC of our inherited stderr above every program fd.
    let report =
        unsafe { libc::syscall(libc::SYS_fcntl, 2, libc::F_DUPFD_CLOEXEC, top + 64) } as i32;
    crate::restart_report::set_fd(report);
    // A lazy restart: the pager still fills memory; forks and checkpoints
    // wait for it (see `memory::lazy`).
    let lazy = match entry_fd {
        Some(crate::tree::EntryFd::Lazy(fd)) => memory::lazy::adopt(fd, top + 66),
        _ => -1,
    };
    // In a tree: what this process shares with others, made once by the
    // restart command and inherited (see `tree::restore`).
    let handoff = handoff_fd
        .map(|fd| crate::tree::restore::take_handoff(fd, top + 65))
        .unwrap_or_default();
    crate::restart_report::set_fail_fd(handoff.barrier.map_or(-1, |b| b.0));
    let inherited = handoff.inherited();
    let keep: Vec<i32> = inherited
        .iter()
        .copied()
        .chain([report, lazy].into_iter().filter(|&fd| fd >= 0))
        .collect();
    if let Err(e) = files::restore(&meta.fds, &keep, &handoff) {
        fail(&e);
    }
    // Each shared memory object is one again, shared with its descriptor.
    if memory::shared::restore(&meta.fds, &handoff, &meta.process.sysv_ipc) {
        memory::fork_advice::restore(&meta.fork_advice);
    }
    memory::advice::restore(&meta.advice);
    // Last of the memory: a sealed range cannot be changed after this.
    memory::guards::restore(&finals);
    let barrier: Vec<i32> = handoff.barrier.iter().flat_map(|b| [b.0, b.1]).collect();
    for fd in inherited.into_iter().filter(|fd| !barrier.contains(fd)) {
        sys::close(fd);
    }
    files::seal_again(&meta.fds);
    process::restore(&meta.process);
    // After the resource limits (RLIMIT_MEMLOCK) are back.
    memory::locked::restore(&meta.locked);
    signals::restore(&meta.signals_kernel);
    quiesce::reset_after_restart();
    let others: Vec<&Thread> = meta.threads.iter().filter(|t| t.id != leader.id).collect();
    let first = FIRST.load(Acquire);
    let first_is_back = first != 0 && others.iter().any(|t| t.id == first && t.ucontext != 0);
    if !first_is_back {
        FIRST.store(0, Release);
    }
    spawn_threads(meta, &others);
    let tids: Vec<(u32, i32)> = meta.threads.iter().map(|t| (t.id, t.tid)).collect();
    files::restore::signal_io_again(&meta.fds, meta.process.pid, &tids);
    timers::restore(&meta.timers, &meta.itimers);
    let pending: Vec<(u32, u64, &[crate::image::QueuedSignal])> = meta
        .threads
        .iter()
        .map(|t| (t.id, t.pending, t.queued.as_slice()))
        .collect();
    signals::restore_pending(meta.process.pending, &meta.process.queued, &pending);
    // Its terminal as it had set it; told of a size that changed, as a
    // resize would (after the pending signals: those are set exactly).
    if files::tty::restore(&meta.fds) {
        // SAFETY: a signal to this process; it stays pending until the
        // program runs with its own mask.
        unsafe { libc::syscall(libc::SYS_kill, sys::getpid(), libc::SIGWINCH) };
    }
    // Last of the descriptors' state: no descriptor is closed after this.
    files::restore::take_locks_again(&meta.fds);
    let after = AFTER.load(Acquire);
    if !after.is_null() {
        // SAFETY: only `prepare` stores here, always an `extern "C" fn()`.
        let f: extern "C" fn() = unsafe { core::mem::transmute(after) };
        f();
    }
    let report = crate::restart_report::take_fd();
    if report >= 0 {
        sys::close(report);
    }
    // In a tree: nobody goes on before every process is back.
    handoff.wait_for_the_tree();
    // The CPU time used so far goes on from the checkpoint's (not
    // counting the restart's own work).
    if let Some(cpu) = &meta.cpu {
        crate::cputime::restore(cpu);
    }
    if handoff.barrier.is_some() {
        // Every process of the tree holds its queues now.
        files::mqueue::unlink_hidden(&meta.fds, true);
    }
    if first_is_back {
        // The hook thread first; it lets the others go when done.
        FIRST_GO.store(1, Release);
        sys::futex_wake_all(&FIRST_GO);
        let since = sys::monotonic_ns();
        while GO.load(Acquire) == 0 {
            sys::futex_wait(&GO, 0, 1_000_000_000);
            // A hook waiting for something only a held thread can give
            // would hold the program for good: after a minute, say so and
            // let them go.
            if GO.load(Acquire) == 0 && sys::monotonic_ns() - since > HOOKS_PATIENCE_NS {
                warn("the program's on-restore hooks have run for a minute; its other threads go on now");
                release_all();
            }
        }
    } else {
        release_all();
    }
    resume(leader, &meta.process)
}

/// Per-thread kernel state that lives in the thread itself.
fn thread_setup(t: &Thread) {
    threads::restore_tid(t.id, sys::gettid());
    threads::restore_name(t);
    threads::restore_scheduling(t);
    if t.gs_base != 0 {
        if let Err(e) = glibc::set_gs_base(t.gs_base) {
            warn(&format!(
                "thread {}: its GS base {:#x} cannot be set again (errno {e})",
                t.id, t.gs_base
            ));
        }
    }
    if t.robust_head != 0 {
        // SAFETY: the head lies in the thread's restored descriptor.
        unsafe { libc::syscall(libc::SYS_set_robust_list, t.robust_head, t.robust_len) };
    }
    if let Err(e) = glibc::register_rseq(t.rseq, t.rseq_len, t.rseq_sig) {
        warn(&format!(
            "thread {}: rseq registration failed (errno {e})",
            t.id
        ));
    }
    if t.rseq_unknown {
        warn(&format!(
            "thread {} ({}) had an rseq area registered past ckpt's wrappers (not through \
             syscall()); it is not registered again",
            t.id, t.name
        ));
    }
    interpose::note_freeze();
}

/// Return to the program through the thread's parked signal frame.
fn resume(t: &Thread, p: &crate::image::Process) -> ! {
    if let Some(slot) = threads::self_slot() {
        crate::cputime::restore_thread(slot, t.cpu.as_ref());
    }
    signals::requeue_own(&t.queued);
    threads::restore_ioprio(t);
    threads::restore_mce_kill(t);
    threads::restore_mempolicy(t);
    let own = t.own.as_ref();
    threads::own::restore_fs(t);
    process::restore_credentials(p, own.and_then(|o| o.creds.as_ref()));
    process::restore_capabilities(p, own.and_then(|o| o.capabilities.as_deref()));
    threads::restore_cpuid_faulting(t);
    alloc::scratch_end();
    interpose::set_errno(t.errno);
    // SAFETY: t.ucontext is the rt_sigframe's ucontext the kernel built
    // when this thread was stopped, restored intact with its stack;
    // rt_sigreturn with rsp there restores registers, FP state, signal
    // mask and alternate stack exactly as the kernel would have.
    unsafe {
        core::arch::asm!(
            "mov rsp, {uc}",
            "mov eax, 15",
            "syscall",
            "ud2",
            uc = in(reg) t.ucontext,
            options(noreturn),
        )
    }
}

/// Re-create every other thread with its own descriptor, clear-tid
/// address and robust list; each waits for [`GO`] before it resumes.
fn spawn_threads(meta: &Meta, others: &[&Thread]) {
    let resumable: Vec<&Thread> = others
        .iter()
        .copied()
        .filter(|t| {
            if t.ucontext == 0 {
                warn(&format!(
                    "thread {} ({}) was not stopped at the checkpoint (it blocks every signal) and is not re-created",
                    t.id, t.name
                ));
            }
            t.ucontext != 0
        })
        .collect();
    if resumable.is_empty() {
        return;
    }
    let len = THREAD_STACK * resumable.len();
    let Some(stacks) = sys::map_anon(len) else {
        fail("cannot map stacks for the threads");
    };
    let stacks = stacks.as_mut_ptr();
    for (i, t) in resumable.iter().enumerate() {
        let base = stacks as u64 + (i * THREAD_STACK) as u64;
        let top = base + THREAD_STACK as u64;
        let ctid = t.fs_base + meta.restart.tid_offset;
        let arg = *t as *const Thread as usize;
        // SAFETY: the new thread gets its own stack and its own restored
        // descriptor as TLS; `arg` points into the Meta, alive for good.
        let r = unsafe { clone_thread(base, top, ctid, t.fs_base, t.tid, thread_main, arg) };
        if r < 0 {
            fail(&format!("cannot re-create thread {}: errno {}", t.id, -r));
        }
    }
    let want = resumable.len() as u32;
    loop {
        let n = STARTED.load(Acquire);
        if n >= want {
            break;
        }
        sys::futex_wait(&STARTED, n, 0);
    }
}

/// First code of a re-created thread.
extern "C" fn thread_main(arg: usize) -> ! {
    // SAFETY: `arg` is the &Thread handed over by spawn_threads.
    let t: &Thread = unsafe { &*(arg as *const Thread) };
    alloc::scratch_resume();
    thread_setup(t);
    STARTED.fetch_add(1, AcqRel);
    sys::futex_wake_all(&STARTED);
    let gate = if t.id == FIRST.load(Acquire) {
        &FIRST_GO
    } else {
        &GO
    };
    while gate.load(Acquire) == 0 {
        sys::futex_wait(gate, 0, 0);
    }
    // SAFETY: PENDING was checked by `entry` before any thread was made.
    let meta = unsafe { &*PENDING.load(Acquire) };
    resume(t, &meta.process)
}

/// Start a thread sharing everything, with TLS `tls`, clear-tid at
/// `ctid`, running `f(arg)` on the stack `[base, top)`. With `tid`, ask
/// for that thread id (clone3 `set_tid`: possible inside the pid namespace
/// `ckpt restart` makes, where the process has CAP_SYS_ADMIN); where the
/// kernel refuses, the thread gets whatever id comes.
///
/// # Safety
/// `[base, top)` must be a writable stack nobody else uses, and `tls` a
/// thread descriptor no running thread uses.
unsafe fn clone_thread(
    base: u64,
    top: u64,
    ctid: u64,
    tls: u64,
    tid: i32,
    f: extern "C" fn(usize) -> !,
    arg: usize,
) -> i64 {
    let flags = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_CHILD_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    let sp = (top & !15) - 16;
    (sp as *mut u64).write(f as usize as u64);
    ((sp + 8) as *mut u64).write(arg as u64);
    let set_tid = [tid as libc::pid_t];
    let args = sys::clone_args(flags, ctid, 0, base, sp - base, tls, &set_tid);
    let r = raw_clone(libc::SYS_clone3, args.as_ptr() as u64, 88, 0, 0, 0);
    if r >= 0 || tid <= 0 {
        return r;
    }
    raw_clone(libc::SYS_clone, flags, sp, 0, ctid, tls)
}

/// The clone/clone3 system call `nr`; in the child, pop `f` and `arg`
/// from the new stack and call `f(arg)`.
///
/// # Safety
/// The new stack's top must hold `f` and `arg` (see `clone_thread`).
unsafe fn raw_clone(nr: i64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    let ret: i64;
    core::arch::asm!(
        "syscall",
        "test rax, rax",
        "jnz 2f",
        // child: the new stack holds f and arg
        "pop rax",
        "pop rdi",
        "call rax",
        "ud2",
        "2:",
        inlateout("rax") nr => ret,
        in("rdi") a1,
        in("rsi") a2,
        in("rdx") a3,
        in("r10") a4,
        in("r8") a5,
        lateout("rcx") _,
        lateout("r11") _,
    );
    ret
}
