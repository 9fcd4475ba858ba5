//! Threads: a fixed table of the program's threads with a stable logical
//! identity (1 = main thread, then creation order), the attributes they
//! were created with, and — while a checkpoint holds them — where each one
//! is parked.
//!
//! Verbs: `record_*` from the pthread wrappers, `park_*` from the freeze
//! handler, `snapshot` while frozen, `reset_after_fork` in a child.
//! Everything here is lock-free and allocation-free (signal-safe).

pub mod own;

use crate::image::{AltStack, Thread, ThreadOwn, ThreadState};
use crate::sys;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering::*};

/// Threads ckpt can track at once; more are still frozen and checkpointed
/// but recorded without their creation attributes.
pub const MAX_THREADS: usize = 8192;

const FREE: u8 = 0;
const CLAIMED: u8 = 1;
const ALIVE: u8 = 2;

/// How a thread came to exist.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Origin {
    Main = 0,
    PthreadCreate = 1,
    Unknown = 2,
    /// ckpt's helper that runs SIGEV_THREAD timers (in place of glibc's).
    TimerHelper = 3,
}

/// Attributes recorded by the pthread_create wrapper.
#[derive(Clone, Copy, Default, Debug)]
pub struct Attrs {
    pub detached: bool,
    pub stack_size: u64,
    pub guard_size: u64,
    pub sched_policy: i32,
    pub sched_priority: i32,
    pub inherit_sched: bool,
}

struct Slot {
    state: AtomicU8,
    origin: AtomicU8,
    id: AtomicU32,
    tid: AtomicI32,
    pthread: AtomicU64,
    start: AtomicU64,
    arg: AtomicU64,
    detached: AtomicBool,
    stack_size: AtomicU64,
    guard_size: AtomicU64,
    sched_policy: AtomicI32,
    sched_priority: AtomicI32,
    /// `!Attrs::inherit_sched`: zero by default, so the table is all
    /// zeros (.bss).
    explicit_sched: AtomicBool,
    // Written by the thread itself when it parks.
    parked_gen: AtomicU32,
    sigmask: AtomicU64,
    alt_sp: AtomicU64,
    alt_size: AtomicU64,
    alt_flags: AtomicI32,
    ucontext: AtomicU64,
    errno: AtomicI32,
    fs_base: AtomicU64,
    gs_base: AtomicU64,
    robust_head: AtomicU64,
    robust_len: AtomicU64,
    rseq: AtomicU64,
    rseq_len: AtomicU32,
    rseq_sig: AtomicU32,
    /// An rseq area is registered that neither glibc nor a recorded
    /// rseq call made (found at the freeze, cannot come back).
    rseq_unknown: AtomicBool,
    /// The thread has a thread keyring (noted as it parks).
    keyring: AtomicBool,
    /// The area the program registered itself (the `syscall` wrapper),
    /// its length and signature; 0: none.
    own_rseq: AtomicU64,
    own_rseq_len: AtomicU32,
    own_rseq_sig: AtomicU32,
    run_policy: AtomicI32,
    run_priority: AtomicI32,
    nice: AtomicI32,
    affinity: [AtomicU64; AFFINITY_WORDS],
    /// Timer slack (ns) and parent-death signal (prctl, per thread).
    timer_slack: AtomicU64,
    pdeathsig: AtomicI32,
    /// I/O priority plus one (ioprio_get of the thread; 0: not noted).
    /// Stored shifted so that `EMPTY` is all zeros: the table then lives
    /// in .bss (anonymous memory, tracked incrementally) rather than in
    /// .data, a private file mapping stored whole in every image.
    ioprio: AtomicI32,
    /// Memory-failure kill policy plus one (PR_MCE_KILL_GET; 0: not noted).
    mce_kill: AtomicI32,
    /// NUMA memory policy mode plus one (get_mempolicy; 0: not noted),
    /// and its nodes.
    mempolicy: AtomicI32,
    mempolicy_nodes: [AtomicU64; NODE_WORDS],
    /// CPUID faulting on (arch_prctl ARCH_SET_CPUID 0: its cpuid
    /// instructions raise SIGSEGV, as emulators and record/replay tools
    /// ask).
    cpuid_faulting: AtomicBool,
    /// Syscall user dispatch turned on (prctl PR_SET_SYSCALL_USER_DISPATCH
    /// through the C library or `syscall()`): see `syscall_dispatch_thread`.
    syscall_dispatch: AtomicBool,
}

/// CPUs whose affinity is kept (64 per word).
const AFFINITY_WORDS: usize = 16;
/// NUMA nodes a memory policy is kept for (64 per word).
pub const NODE_WORDS: usize = 16;
/// arch_prctl: whether the cpuid instruction is allowed (1) or faults (0).
const ARCH_GET_CPUID: i32 = 0x1011;
const ARCH_SET_CPUID: i32 = 0x1012;

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    state: AtomicU8::new(FREE),
    origin: AtomicU8::new(0),
    id: AtomicU32::new(0),
    tid: AtomicI32::new(0),
    pthread: AtomicU64::new(0),
    start: AtomicU64::new(0),
    arg: AtomicU64::new(0),
    detached: AtomicBool::new(false),
    stack_size: AtomicU64::new(0),
    guard_size: AtomicU64::new(0),
    sched_policy: AtomicI32::new(0),
    sched_priority: AtomicI32::new(0),
    explicit_sched: AtomicBool::new(false),
    parked_gen: AtomicU32::new(0),
    sigmask: AtomicU64::new(0),
    alt_sp: AtomicU64::new(0),
    alt_size: AtomicU64::new(0),
    alt_flags: AtomicI32::new(0),
    ucontext: AtomicU64::new(0),
    errno: AtomicI32::new(0),
    fs_base: AtomicU64::new(0),
    gs_base: AtomicU64::new(0),
    robust_head: AtomicU64::new(0),
    robust_len: AtomicU64::new(0),
    rseq: AtomicU64::new(0),
    rseq_len: AtomicU32::new(0),
    rseq_sig: AtomicU32::new(0),
    rseq_unknown: AtomicBool::new(false),
    keyring: AtomicBool::new(false),
    own_rseq: AtomicU64::new(0),
    own_rseq_len: AtomicU32::new(0),
    own_rseq_sig: AtomicU32::new(0),
    run_policy: AtomicI32::new(0),
    run_priority: AtomicI32::new(0),
    nice: AtomicI32::new(0),
    timer_slack: AtomicU64::new(0),
    pdeathsig: AtomicI32::new(0),
    ioprio: AtomicI32::new(0),
    mce_kill: AtomicI32::new(0),
    mempolicy: AtomicI32::new(0),
    mempolicy_nodes: [const { AtomicU64::new(0) }; NODE_WORDS],
    cpuid_faulting: AtomicBool::new(false),
    syscall_dispatch: AtomicBool::new(false),
    affinity: [const { AtomicU64::new(0) }; AFFINITY_WORDS],
};

static SLOTS: [Slot; MAX_THREADS] = [EMPTY; MAX_THREADS];
static NEXT_ID: AtomicU32 = AtomicU32::new(2);

fn claim(origin: Origin) -> Option<usize> {
    for (i, s) in SLOTS.iter().enumerate() {
        if s.state.load(Relaxed) == FREE
            && s.state
                .compare_exchange(FREE, CLAIMED, Acquire, Relaxed)
                .is_ok()
        {
            s.origin.store(origin as u8, Relaxed);
            s.tid.store(0, Relaxed);
            s.pthread.store(0, Relaxed);
            s.start.store(0, Relaxed);
            s.arg.store(0, Relaxed);
            s.set_attrs(&Attrs::default());
            s.parked_gen.store(0, Relaxed);
            // A new thread has no rseq area of its own yet.
            s.own_rseq.store(0, Relaxed);
            s.syscall_dispatch.store(false, Relaxed);
            crate::cputime::forget_thread(i);
            let id = if origin == Origin::Main {
                1
            } else {
                NEXT_ID.fetch_add(1, Relaxed)
            };
            s.id.store(id, Relaxed);
            return Some(i);
        }
    }
    None
}

impl Slot {
    fn set_attrs(&self, a: &Attrs) {
        self.detached.store(a.detached, Relaxed);
        self.stack_size.store(a.stack_size, Relaxed);
        self.guard_size.store(a.guard_size, Relaxed);
        self.sched_policy.store(a.sched_policy, Relaxed);
        self.sched_priority.store(a.sched_priority, Relaxed);
        self.explicit_sched.store(!a.inherit_sched, Relaxed);
    }
}

/// Record the main thread (logical id 1, tid = pid). Usually the caller;
/// a shim loaded late (by `ckpt::checkpoint()`) may start on another one.
pub fn record_main(attrs: &Attrs) {
    if let Some(i) = claim(Origin::Main) {
        let s = &SLOTS[i];
        s.set_attrs(attrs);
        let on_main = sys::gettid() == sys::getpid();
        if on_main {
            // SAFETY: pthread_self has no preconditions.
            s.pthread
                .store(unsafe { libc::pthread_self() } as u64, Relaxed);
        }
        s.tid.store(sys::getpid(), Relaxed);
        s.state.store(ALIVE, Release);
        if on_main {
            crate::interpose::set_cached_slot(i as u32 + 1);
        }
    }
}

/// Record the calling thread as ckpt's timer helper; returns its slot.
pub fn record_timer_helper() -> Option<usize> {
    let i = claim(Origin::TimerHelper)?;
    let s = &SLOTS[i];
    s.tid.store(sys::gettid(), Relaxed);
    // SAFETY: pthread_self has no preconditions.
    s.pthread
        .store(unsafe { libc::pthread_self() } as u64, Relaxed);
    s.state.store(ALIVE, Release);
    crate::interpose::set_cached_slot(i as u32 + 1);
    Some(i)
}

/// pthread_create is about to start a thread: reserve its slot and record
/// what it will run. Returns the slot to hand to the start trampoline.
pub fn record_create(start: u64, arg: u64, attrs: &Attrs) -> Option<usize> {
    let i = claim(Origin::PthreadCreate)?;
    let s = &SLOTS[i];
    s.start.store(start, Relaxed);
    s.arg.store(arg, Relaxed);
    s.set_attrs(attrs);
    Some(i)
}

/// pthread_create failed: give the slot back.
pub fn record_create_failed(slot: usize) {
    SLOTS[slot].state.store(FREE, Release);
}

/// pthread_create succeeded: remember the pthread_t.
pub fn record_created(slot: usize, pthread: u64) {
    SLOTS[slot].pthread.store(pthread, Relaxed);
}

/// The new thread runs (called first thing on it). Returns (start, arg).
pub fn record_started(slot: usize) -> (u64, u64) {
    let s = &SLOTS[slot];
    s.tid.store(sys::gettid(), Relaxed);
    // SAFETY: pthread_self has no preconditions.
    s.pthread
        .store(unsafe { libc::pthread_self() } as u64, Relaxed);
    s.state.store(ALIVE, Release);
    crate::interpose::set_cached_slot(slot as u32 + 1);
    (s.start.load(Relaxed), s.arg.load(Relaxed))
}

/// pthread_detach on a recorded thread.
pub fn record_detach(pthread: u64) {
    for s in SLOTS.iter() {
        if s.state.load(Acquire) == ALIVE && s.pthread.load(Relaxed) == pthread {
            s.detached.store(true, Relaxed);
        }
    }
}

/// The thread in `slot` is ending (however it ends). Signal-safe.
pub fn record_exit(slot: usize) {
    if slot < MAX_THREADS {
        let s = &SLOTS[slot];
        s.tid.store(0, Relaxed);
        s.state.store(FREE, Release);
    }
}

/// The calling thread's slot, registering it as "unknown" when it was
/// created past the wrappers (e.g. by glibc itself). Signal-safe.
pub fn self_slot() -> Option<usize> {
    let cached = crate::interpose::cached_slot();
    let tid = sys::gettid();
    if cached != 0 {
        let i = cached as usize - 1;
        if SLOTS[i].state.load(Acquire) == ALIVE && SLOTS[i].tid.load(Relaxed) == tid {
            return Some(i);
        }
    }
    if let Some(i) = slot_of_tid(tid) {
        crate::interpose::set_cached_slot(i as u32 + 1);
        return Some(i);
    }
    let i = claim(Origin::Unknown)?;
    let s = &SLOTS[i];
    s.tid.store(tid, Relaxed);
    // SAFETY: pthread_self has no preconditions.
    s.pthread
        .store(unsafe { libc::pthread_self() } as u64, Relaxed);
    s.state.store(ALIVE, Release);
    crate::interpose::set_cached_slot(i as u32 + 1);
    Some(i)
}

/// The slot of thread `tid` of this process, if tracked. Signal-safe.
pub fn slot_of(tid: i32) -> Option<usize> {
    slot_of_tid(tid)
}

fn slot_of_tid(tid: i32) -> Option<usize> {
    SLOTS
        .iter()
        .position(|s| s.state.load(Acquire) == ALIVE && s.tid.load(Relaxed) == tid)
}

/// Logical id of the thread with kernel tid `tid`, if tracked.
pub fn id_of_tid(tid: i32) -> Option<u32> {
    slot_of_tid(tid).map(|i| SLOTS[i].id.load(Relaxed))
}

/// Logical id of the thread in `slot`.
pub fn id_of_slot(slot: usize) -> u32 {
    SLOTS[slot].id.load(Relaxed)
}

/// Kernel tid of the thread with logical id `id`, if alive.
pub fn tid_of_id(id: u32) -> Option<i32> {
    SLOTS
        .iter()
        .find(|s| s.state.load(Acquire) == ALIVE && s.id.load(Relaxed) == id)
        .map(|s| s.tid.load(Relaxed))
}

/// Park bookkeeping, from the freeze handler on the thread itself: what a
/// restart needs to bring this thread back. The coordinator sees the
/// thread parked only once [`mark_parked`] follows. Signal-safe.
pub fn park_note(slot: usize, sigmask: u64, ucontext: u64, errno: i32) {
    let s = &SLOTS[slot];
    let fs_base = crate::glibc::thread_pointer();
    s.fs_base.store(fs_base, Relaxed);
    s.gs_base.store(crate::glibc::gs_base(), Relaxed);
    let (head, len) = crate::glibc::robust_list();
    s.robust_head.store(head, Relaxed);
    s.robust_len.store(len, Relaxed);
    note_rseq(s, fs_base);
    s.keyring
        .store(crate::process::keyrings::thread_has_one(), Relaxed);
    s.errno.store(errno, Relaxed);
    note_scheduling(s);
    crate::cputime::note_thread(slot);
    let mut ss: libc::stack_t = libc::stack_t {
        ss_sp: core::ptr::null_mut(),
        ss_flags: 0,
        ss_size: 0,
    };
    // SAFETY: querying (not changing) the alternate stack into a local.
    unsafe {
        libc::syscall(
            libc::SYS_sigaltstack,
            core::ptr::null::<libc::stack_t>(),
            &mut ss,
        )
    };
    s.alt_sp.store(ss.ss_sp as u64, Relaxed);
    s.alt_size.store(ss.ss_size as u64, Relaxed);
    s.alt_flags.store(ss.ss_flags, Relaxed);
    s.sigmask.store(sigmask, Relaxed);
    s.ucontext.store(ucontext, Relaxed);
}

/// The thread in `slot` has noted everything for freeze `gen` and holds
/// nothing open: the coordinator may read the process now. Signal-safe.
pub fn mark_parked(slot: usize, gen: u32) {
    SLOTS[slot].parked_gen.store(gen, Release);
}

/// The calling thread registered (`unregister` false) or unregistered an
/// rseq area itself (a successful rseq system call through `syscall()`).
/// Signal-safe.
pub fn record_rseq(area: u64, len: u32, sig: u32, unregister: bool) {
    let Some(i) = self_slot() else { return };
    let s = &SLOTS[i];
    if unregister {
        s.own_rseq.store(0, Relaxed);
    } else {
        s.own_rseq_len.store(len, Relaxed);
        s.own_rseq_sig.store(sig, Relaxed);
        s.own_rseq.store(area, Release);
    }
}

/// prctl(PR_SET_SYSCALL_USER_DISPATCH, mode) succeeded on the calling
/// thread: dispatch is on for it unless `mode` is PR_SYS_DISPATCH_OFF.
pub fn record_syscall_dispatch(mode: u64) {
    let Some(i) = self_slot() else { return };
    SLOTS[i].syscall_dispatch.store(mode != 0, Release);
}

/// A live thread that turned syscall user dispatch on, if any. Such a
/// thread cannot be checkpointed: while its selector says "block", every
/// system call outside its allowed range traps (SIGSYS, forced: blocked
/// in ckpt's handler, it kills the process), the handler's return
/// (rt_sigreturn) included, so ckpt can neither park it nor give it back
/// its dispatch after a restart from a handler. Refused before any thread
/// is signalled. Signal-safe.
pub fn syscall_dispatch_thread() -> Option<i32> {
    SLOTS
        .iter()
        .find(|s| s.state.load(Acquire) == ALIVE && s.syscall_dispatch.load(Acquire))
        .map(|s| s.tid.load(Relaxed))
}

/// The calling thread's rseq registration, on the thread itself while it
/// parks: the area it registered itself, or glibc's; else whether the
/// kernel has one nobody recorded (a registration probe that fails).
fn note_rseq(s: &Slot, fs_base: u64) {
    let own = s.own_rseq.load(Acquire);
    let (area, len, sig) = if own != 0 {
        (
            own,
            s.own_rseq_len.load(Relaxed),
            s.own_rseq_sig.load(Relaxed),
        )
    } else {
        let area = crate::glibc::rseq_area(fs_base);
        (area, crate::glibc::rseq_layout().1, crate::glibc::RSEQ_SIG)
    };
    s.rseq.store(area, Relaxed);
    s.rseq_len.store(len, Relaxed);
    s.rseq_sig.store(sig, Relaxed);
    s.rseq_unknown.store(
        area == 0 && crate::glibc::rseq_registered_elsewhere(),
        Relaxed,
    );
}

/// A restarted thread with logical id `id` now has kernel tid `tid`.
/// Post-restart context.
pub fn restore_tid(id: u32, tid: i32) {
    for s in SLOTS.iter() {
        if s.state.load(Acquire) == ALIVE && s.id.load(Relaxed) == id {
            s.tid.store(tid, Relaxed);
            s.parked_gen.store(0, Relaxed);
        }
    }
}

/// The calling thread's scheduling: policy, priority, nice, CPU affinity,
/// timer slack; and its parent-death signal (PR_SET_PDEATHSIG), NUMA
/// memory policy and CPUID faulting. Frozen, in the thread's own freeze
/// handler: signal-safe (raw syscalls into locals, no allocation).
fn note_scheduling(s: &Slot) {
    let mut pdeathsig: i32 = 0;
    // SAFETY: prctl queries of the calling thread (one writes an int local).
    unsafe {
        let slack = libc::syscall(libc::SYS_prctl, libc::PR_GET_TIMERSLACK, 0, 0, 0, 0);
        s.timer_slack.store(slack.max(0) as u64, Relaxed);
        libc::syscall(
            libc::SYS_prctl,
            libc::PR_GET_PDEATHSIG,
            &mut pdeathsig as *mut i32,
            0,
            0,
            0,
        );
    }
    s.pdeathsig.store(pdeathsig, Relaxed);
    // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, 0): the calling thread's own.
    let ioprio = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) } as i32;
    s.ioprio.store(ioprio.max(-1) + 1, Relaxed);
    // SAFETY: PR_MCE_KILL_GET of the calling thread, integers only.
    let mce = unsafe { libc::syscall(libc::SYS_prctl, libc::PR_MCE_KILL_GET, 0, 0, 0, 0) } as i32;
    s.mce_kill.store(mce.max(-1) + 1, Relaxed);
    let mut mode: i32 = 0;
    let mut nodes = [0u64; NODE_WORDS];
    // SAFETY: get_mempolicy of the calling thread (flags 0) into locals
    // sized for the node count given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode,
            nodes.as_mut_ptr(),
            NODE_WORDS * 64,
            0usize,
            0usize,
        )
    };
    s.mempolicy
        .store(if r == 0 { mode + 1 } else { 0 }, Relaxed);
    // SAFETY: ARCH_GET_CPUID of the calling thread: 0 when faulting is on.
    let cpuid = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_GET_CPUID, 0usize) };
    s.cpuid_faulting.store(cpuid == 0, Relaxed);
    for (w, n) in s.mempolicy_nodes.iter().zip(nodes) {
        w.store(n, Relaxed);
    }
    // SAFETY: plain queries about the calling thread into locals.
    unsafe {
        let policy = libc::syscall(libc::SYS_sched_getscheduler, 0) as i32;
        let mut param = libc::sched_param { sched_priority: 0 };
        libc::syscall(libc::SYS_sched_getparam, 0, &mut param);
        // The raw getpriority returns 20 - nice (never negative).
        let prio = libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, 0) as i32;
        let mut mask = [0u64; AFFINITY_WORDS];
        let n = libc::syscall(
            libc::SYS_sched_getaffinity,
            0,
            core::mem::size_of_val(&mask),
            mask.as_mut_ptr(),
        );
        s.run_policy.store(policy.max(0), Relaxed);
        s.run_priority.store(param.sched_priority, Relaxed);
        s.nice.store(20 - prio, Relaxed);
        for (i, w) in s.affinity.iter().enumerate() {
            w.store(if n > 0 { mask[i] } else { 0 }, Relaxed);
        }
    }
}

/// Give the calling thread the I/O priority `t` had (after the process's:
/// a thread's own may differ). Post-restart context.
pub fn restore_ioprio(t: &Thread) {
    let Some(want) = t.ioprio else { return };
    // SAFETY: ioprio_get/ioprio_set(IOPRIO_WHO_PROCESS, 0) of the calling
    // thread, with integers.
    unsafe {
        if libc::syscall(libc::SYS_ioprio_get, 1, 0) as i32 != want
            && libc::syscall(libc::SYS_ioprio_set, 1, 0, want) != 0
        {
            crate::restart_report::warn(&format!(
                "thread {}: cannot set its I/O priority {want:#x} again",
                t.id
            ));
        }
    }
}

/// Turn CPUID faulting on again for the calling thread if `t` had it.
/// Post-restart, last before the thread goes back to the program: from
/// here on a cpuid instruction raises SIGSEGV.
pub fn restore_cpuid_faulting(t: &Thread) {
    if !t.cpuid_faulting {
        return;
    }
    // SAFETY: ARCH_SET_CPUID of the calling thread, an integer.
    if unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_CPUID, 0usize) } != 0 {
        crate::restart_report::warn(&format!(
            "thread {}: CPUID faulting cannot be turned on again: {} (its cpuid instructions \
             run instead of raising SIGSEGV)",
            t.id,
            std::io::Error::last_os_error()
        ));
    }
}

/// Allow the cpuid instruction in the calling thread (a writer forked
/// from a thread with CPUID faulting on inherits it, and the codecs ask
/// the CPU what it has). No allocation.
pub fn allow_cpuid() {
    // SAFETY: ARCH_SET_CPUID of the calling thread, an integer.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_CPUID, 1usize) };
}

/// Give the calling thread the NUMA memory policy `t` had (set_mempolicy,
/// numactl --interleave: per thread, inherited from the thread that made
/// it). A refusal (a node this machine lacks) is said. Post-restart.
pub fn restore_mempolicy(t: &Thread) {
    let Some(p) = &t.mempolicy else { return };
    // SAFETY: set_mempolicy of the calling thread from a live node mask
    // of `nodes.len() * 64` bits.
    let r = unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            p.mode,
            p.nodes.as_ptr(),
            p.nodes.len() * 64,
        )
    };
    if r != 0 {
        crate::restart_report::warn(&format!(
            "thread {}: its NUMA memory policy (mode {}, nodes {:x?}) cannot be set again: {}",
            t.id,
            p.mode,
            p.nodes,
            std::io::Error::last_os_error()
        ));
    }
}

/// Give the calling thread the memory-failure kill policy `t` had (it is
/// per thread, inherited from the thread that made it). Post-restart.
pub fn restore_mce_kill(t: &Thread) {
    let Some(want) = t.mce_kill else { return };
    // SAFETY: PR_MCE_KILL_GET / PR_MCE_KILL of the calling thread, with
    // integers.
    unsafe {
        if libc::syscall(libc::SYS_prctl, libc::PR_MCE_KILL_GET, 0, 0, 0, 0) as i32 == want {
            return;
        }
        let r = if want == libc::PR_MCE_KILL_DEFAULT {
            libc::syscall(
                libc::SYS_prctl,
                libc::PR_MCE_KILL,
                libc::PR_MCE_KILL_CLEAR,
                0,
                0,
                0,
            )
        } else {
            libc::syscall(
                libc::SYS_prctl,
                libc::PR_MCE_KILL,
                libc::PR_MCE_KILL_SET,
                want,
                0,
                0,
            )
        };
        if r != 0 {
            crate::restart_report::warn(&format!(
                "thread {}: cannot set its memory-failure kill policy {want} again",
                t.id
            ));
        }
    }
}

/// Give the calling thread the name `t` had (its comm; a re-created
/// thread would otherwise carry the name of the thread that made it).
/// Post-restart context.
pub fn restore_name(t: &Thread) {
    let name: &[u8] = if t.comm.is_empty() {
        t.name.as_bytes()
    } else {
        &t.comm
    };
    if name.is_empty() {
        return;
    }
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated buffer of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr()) };
}

/// Put the scheduling noted for `t` back on the calling thread, with its
/// timer slack and parent-death signal (that of the restarted parent:
/// the restart command for the job's first process). What the kernel
/// refuses (real-time policies, a lower nice, CPUs this machine
/// lacks) is left as it is. Post-restart context.
pub fn restore_scheduling(t: &Thread) {
    // SAFETY: plain settings of the calling thread from locals.
    unsafe {
        if t.affinity.iter().any(|&w| w != 0) {
            libc::syscall(
                libc::SYS_sched_setaffinity,
                0,
                t.affinity.len() * 8,
                t.affinity.as_ptr(),
            );
        }
        let param = libc::sched_param {
            sched_priority: t.run_priority,
        };
        libc::syscall(libc::SYS_sched_setscheduler, 0, t.run_policy, &param);
        libc::syscall(libc::SYS_setpriority, libc::PRIO_PROCESS, 0, t.nice);
        let slack = libc::syscall(libc::SYS_prctl, libc::PR_GET_TIMERSLACK, 0, 0, 0, 0);
        if t.timer_slack_ns != 0 && t.timer_slack_ns as i64 != slack {
            libc::syscall(
                libc::SYS_prctl,
                libc::PR_SET_TIMERSLACK,
                t.timer_slack_ns,
                0,
                0,
                0,
            );
        }
        if t.pdeathsig != 0 {
            libc::syscall(
                libc::SYS_prctl,
                libc::PR_SET_PDEATHSIG,
                t.pdeathsig,
                0,
                0,
                0,
            );
        }
    }
}

/// Is the thread with `tid` parked for freeze generation `gen`?
pub fn is_parked(tid: i32, gen: u32) -> bool {
    slot_of_tid(tid).is_some_and(|i| SLOTS[i].parked_gen.load(Acquire) == gen)
}

/// Forget threads whose tid no longer exists (they ended past every hook).
pub fn reap(alive: impl Fn(i32) -> bool) {
    for s in SLOTS.iter() {
        if s.state.load(Acquire) == ALIVE && !alive(s.tid.load(Relaxed)) {
            s.state.store(FREE, Release);
        }
    }
}

/// In a fork child: only the calling thread exists; it becomes the main
/// thread (logical id 1) of the new process.
pub fn reset_after_fork() {
    let keep = crate::interpose::cached_slot();
    for (i, s) in SLOTS.iter().enumerate() {
        // Only slots in use are written: a store to every slot would copy
        // the whole table's pages into each forked child.
        if i as u32 + 1 != keep && s.state.load(Relaxed) != FREE {
            s.state.store(FREE, Relaxed);
        }
    }
    NEXT_ID.store(2, Relaxed);
    if keep != 0 {
        let s = &SLOTS[keep as usize - 1];
        s.id.store(1, Relaxed);
        s.origin.store(Origin::Main as u8, Relaxed);
        s.tid.store(sys::gettid(), Relaxed);
        // The kernel turns syscall user dispatch off in a child.
        s.syscall_dispatch.store(false, Relaxed);
    } else {
        record_main(&Attrs::default());
    }
}

/// Describe every tracked thread for the image. `states` tells, for a tid,
/// how the quiesce found it (None: not seen in /proc, skipped).
/// `status(tid)` gives the thread's name (raw comm), its pending and its blocked
/// signals from /proc, and what it holds apart from the process (the blocked set is used for threads that never
/// parked, whose mask the handler could not note).
pub fn snapshot(
    states: impl Fn(i32) -> Option<ThreadState>,
    status: impl Fn(i32) -> (Vec<u8>, u64, u64, Option<ThreadOwn>),
) -> Vec<Thread> {
    let mut out = Vec::new();
    for (i, s) in SLOTS.iter().enumerate() {
        if s.state.load(Acquire) != ALIVE {
            continue;
        }
        let tid = s.tid.load(Relaxed);
        let Some(state) = states(tid) else { continue };
        let origin = match s.origin.load(Relaxed) {
            0 => "main",
            1 => "pthread_create",
            3 => "timer_helper",
            _ => "unknown",
        };
        let (comm, pending, blocked, own) = status(tid);
        let alt_size = s.alt_size.load(Relaxed);
        let alt_flags = s.alt_flags.load(Relaxed);
        out.push(Thread {
            id: s.id.load(Relaxed),
            tid,
            name: String::from_utf8_lossy(&comm).into_owned(),
            comm,
            state,
            origin: origin.into(),
            detached: s.detached.load(Relaxed),
            stack_size: s.stack_size.load(Relaxed),
            guard_size: s.guard_size.load(Relaxed),
            sched_policy: s.sched_policy.load(Relaxed),
            sched_priority: s.sched_priority.load(Relaxed),
            inherit_sched: !s.explicit_sched.load(Relaxed),
            start_routine: s.start.load(Relaxed),
            arg: s.arg.load(Relaxed),
            sigmask: if state == ThreadState::Frozen {
                s.sigmask.load(Relaxed)
            } else {
                blocked
            },
            pending,
            queued: Vec::new(),
            altstack: (alt_flags & libc::SS_DISABLE == 0 && alt_size != 0).then(|| AltStack {
                sp: s.alt_sp.load(Relaxed),
                size: alt_size,
                flags: alt_flags,
            }),
            fs_base: s.fs_base.load(Relaxed),
            gs_base: s.gs_base.load(Relaxed),
            ucontext: if state == ThreadState::Frozen {
                s.ucontext.load(Relaxed)
            } else {
                0
            },
            // SAFETY: a frozen thread's ucontext, built by the kernel.
            tiles_in_use: state == ThreadState::Frozen
                && unsafe { crate::glibc::frame_has_tiles(s.ucontext.load(Relaxed)) },
            errno: s.errno.load(Relaxed),
            robust_head: s.robust_head.load(Relaxed),
            robust_len: s.robust_len.load(Relaxed),
            rseq: s.rseq.load(Relaxed),
            rseq_len: s.rseq_len.load(Relaxed),
            rseq_sig: s.rseq_sig.load(Relaxed),
            rseq_unknown: s.rseq_unknown.load(Relaxed),
            keyring: state == ThreadState::Frozen && s.keyring.load(Relaxed),
            run_policy: s.run_policy.load(Relaxed),
            run_priority: s.run_priority.load(Relaxed),
            nice: s.nice.load(Relaxed),
            timer_slack_ns: s.timer_slack.load(Relaxed),
            cpu: if state == ThreadState::Frozen {
                crate::cputime::thread_snapshot(i)
            } else {
                None
            },
            pdeathsig: s.pdeathsig.load(Relaxed),
            ioprio: Some(s.ioprio.load(Relaxed) - 1).filter(|&p| p >= 0),
            mce_kill: Some(s.mce_kill.load(Relaxed) - 1).filter(|&p| p >= 0),
            cpuid_faulting: state == ThreadState::Frozen && s.cpuid_faulting.load(Relaxed),
            mempolicy: crate::image::MemPolicy::of(
                s.mempolicy.load(Relaxed) - 1,
                s.mempolicy_nodes.iter().map(|w| w.load(Relaxed)),
            ),
            own,
            affinity: {
                let mut a: Vec<u64> = s.affinity.iter().map(|w| w.load(Relaxed)).collect();
                while a.last() == Some(&0) {
                    a.pop();
                }
                a
            },
        });
    }
    out.sort_by_key(|t| t.id);
    out
}

/// Register a thread found in /proc but never seen by a wrapper or the
/// freeze handler (e.g. one that blocks every signal).
/// Whether thread `tid` has a slot (every thread must, for a checkpoint:
/// one beyond the table could not come back).
pub fn is_recorded(tid: i32) -> bool {
    slot_of_tid(tid).is_some()
}

pub fn record_foreign(tid: i32) {
    if slot_of_tid(tid).is_some() {
        return;
    }
    if let Some(i) = claim(Origin::Unknown) {
        let s = &SLOTS[i];
        s.tid.store(tid, Relaxed);
        s.state.store(ALIVE, Release);
    }
}
