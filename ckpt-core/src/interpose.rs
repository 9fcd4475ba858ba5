//! Runtime support for the wrappers that `#[ckpt_macros::interpose]` generates.
//!
//! A generated wrapper does, in order: [`enter`] (pass straight through when
//! the shim is not ready, when this thread is already inside a wrapper, or
//! when it is one of ckpt's own threads), call the original through its
//! [`Original`], save `errno`, run the recording hook inside
//! [`Guard::record`], restore `errno`, return the original's result.
//!
//! Everything here runs on the program's threads, on the hot path and
//! possibly inside signal handlers: no allocation, no locks, no panics.

use core::cell::Cell;
use core::ffi::{c_char, c_int, c_void, CStr};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicIsize, AtomicPtr, AtomicU8, Ordering};

/// Set by the shim once its tables and its control channel exist; before
/// that every wrapper is a plain pass-through.
static READY: AtomicBool = AtomicBool::new(false);

/// Called (on the program's thread) when a freeze was requested while the
/// thread was recording: the shim parks the thread there.
static FREEZE_HOOK: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

/// Per-thread state of the interposition layer. One `thread_local!` with a
/// const initialiser and no destructor: in a preloaded library it lives in
/// static TLS, so reaching it never allocates.
///
/// Each flag is its own byte, written by one side only: the wrapper writes
/// `in_wrapper` and `recording`, the freeze handler writes `pending`. A
/// read-modify-write of shared bits could lose a flag set by a signal
/// that lands in between; separate bytes cannot. `in_wrapper` and
/// `internal` come first and side by side: `enter` tests both with one
/// two-byte load.
#[repr(C)]
struct ThreadState {
    in_wrapper: Cell<bool>,
    internal: Cell<bool>,
    recording: Cell<bool>,
    pending: Cell<bool>,
    /// Handlers of the program that ran on this thread (see `signals`).
    program_signals: Cell<u32>,
    /// Times this thread was parked by a checkpoint.
    freezes: Cell<u32>,
    /// 1 + index of this thread's slot in the thread table, 0 = unknown.
    slot: Cell<u32>,
}

impl ThreadState {
    // Copied into each TLS block and late slot: never shared as such.
    #[allow(clippy::declare_interior_mutable_const)]
    const NEW: ThreadState = ThreadState {
        in_wrapper: Cell::new(false),
        internal: Cell::new(false),
        recording: Cell::new(false),
        pending: Cell::new(false),
        program_signals: Cell::new(0),
        freezes: Cell::new(0),
        slot: Cell::new(0),
    };
}

thread_local! {
    static STATE: ThreadState = const { ThreadState::NEW };
}

/// Set when the shim was loaded after the program started (`dlopen` by
/// `ckpt::checkpoint()` in a program not run by `ckpt run`): its TLS block
/// is then dynamic, and glibc allocates it with malloc on a thread's first
/// access, which the checkpoint signal handler must never do (the thread
/// it interrupts may hold malloc's lock). Thread states are then kept in
/// [`LATE`], found by thread id.
static LOADED_LATE: AtomicBool = AtomicBool::new(false);

/// One thread's state when the shim was loaded late: `tid` 0 = free.
struct LateState {
    tid: AtomicI32,
    state: ThreadState,
}

// SAFETY: a LateState's `state` is only touched by the thread whose tid
// claimed it (the Cells are per-thread, as in TLS); `tid` is atomic.
unsafe impl Sync for LateState {}

const LATE_LEN: usize = 4096;

static LATE: [LateState; LATE_LEN] = [const {
    LateState {
        tid: AtomicI32::new(0),
        state: ThreadState::NEW,
    }
}; LATE_LEN];

/// Keep thread states by thread id from now on (see [`LOADED_LATE`]).
/// Call once, from the shim's constructor, before any other thread can
/// reach the shim.
pub fn use_late_states() {
    LOADED_LATE.store(true, Ordering::Release);
}

/// Whether the shim was loaded after the program started.
pub fn loaded_late() -> bool {
    LOADED_LATE.load(Ordering::Relaxed)
}

/// This thread's [`ThreadState`]: in TLS normally, in [`LATE`] when the
/// shim was loaded late. Signal-safe: no allocation, no lock (the late
/// table is claimed with compare-and-swap; a full table reclaims the
/// entries of threads that ended, found with `tgkill(.., 0)`).
#[inline]
fn with_state<R>(f: impl FnOnce(&ThreadState) -> R) -> Option<R> {
    let shared = SHIM_STATE.load(Ordering::Relaxed);
    if !shared.is_null() {
        return shim_state(shared).map(f);
    }
    if !LOADED_LATE.load(Ordering::Relaxed) {
        return STATE.try_with(f).ok();
    }
    late_state().map(f)
}

/// In a plugin (a library of the user's, loaded with the shim): the
/// shim's `ckpt_shim_thread_state`, so the plugin's wrappers and the
/// shim's checkpoint handler share one state per thread (a checkpoint
/// then waits for a plugin's recording hook as for the shim's own).
static SHIM_STATE: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

#[cold]
fn shim_state(f: *mut c_void) -> Option<&'static ThreadState> {
    // SAFETY: only `share_shim_state` stores here, the shim's
    // `ckpt_shim_thread_state` (an `extern "C" fn() -> *const c_void`).
    let f: extern "C" fn() -> *const c_void = unsafe { core::mem::transmute(f) };
    // SAFETY: the shim's per-thread state, of this very layout (same
    // crate), alive as long as the thread.
    unsafe { (f() as *const ThreadState).as_ref() }
}

/// The shim's side: this thread's state, for a plugin's copy of this
/// layer. Signal-safe.
pub fn thread_state_ptr() -> *const c_void {
    with_state(|s| s as *const ThreadState as *const c_void).unwrap_or(ptr::null())
}

/// The shim's freeze hook (for a plugin's copy of this layer).
pub fn freeze_hook() -> *mut c_void {
    FREEZE_HOOK.load(Ordering::Acquire)
}

/// A plugin's side: use the shim's per-thread state and freeze hook.
pub fn share_shim_state(state: *mut c_void, freeze_hook: *mut c_void) {
    FREEZE_HOOK.store(freeze_hook, Ordering::Release);
    SHIM_STATE.store(state, Ordering::Release);
}

#[cold]
fn late_state() -> Option<&'static ThreadState> {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
    if let Some(e) = LATE.iter().find(|e| e.tid.load(Ordering::Acquire) == tid) {
        return Some(&e.state);
    }
    let claim = |e: &'static LateState| {
        e.tid
            .compare_exchange(0, tid, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    };
    let fresh = |e: &'static LateState| {
        let s = &e.state;
        s.in_wrapper.set(false);
        s.internal.set(false);
        s.recording.set(false);
        s.pending.set(false);
        s.program_signals.set(0);
        s.freezes.set(0);
        s.slot.set(0);
        Some(s)
    };
    if let Some(e) = LATE.iter().find(|e| claim(e)) {
        return fresh(e);
    }
    // Full: free the entries of threads that ended, then try again.
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    for e in LATE.iter() {
        let t = e.tid.load(Ordering::Acquire);
        // SAFETY: signal 0 only checks that the thread exists.
        let gone =
            unsafe { libc::syscall(libc::SYS_tgkill, pid, t, 0) } != 0 && errno() == libc::ESRCH;
        if t != 0 && gone {
            let _ = e
                .tid
                .compare_exchange(t, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
    LATE.iter().find(|e| claim(e)).and_then(fresh)
}

/// Mark the interposition layer ready (called once by the shim's constructor).
pub fn set_ready(ready: bool) {
    READY.store(ready, Ordering::Release);
    publish_tls_offset();
}

/// Whether wrappers record (false before the shim's constructor finished).
pub fn is_ready() -> bool {
    READY.load(Ordering::Acquire)
}

/// Install the function that parks a thread whose freeze was deferred.
pub fn set_freeze_hook(hook: extern "C" fn()) {
    FREEZE_HOOK.store(hook as *mut c_void, Ordering::Release);
}

/// Proof that the current thread entered a wrapper; dropping it leaves.
/// It holds this thread's state so the wrapper reaches TLS only once.
pub struct Guard {
    state: *const ThreadState,
}

/// Where this thread's [`ThreadState`] lies relative to the thread
/// pointer, when the shim's TLS block is static (the shim was loaded at
/// start-up, as LD_PRELOAD does): the same for every thread, so the hot
/// path finds it without calling `__tls_get_addr`. 0 = not known.
static STATIC_TLS_OFFSET: AtomicIsize = AtomicIsize::new(0);

/// What every recording wrapper reads, kept in one cache line: a system
/// call leaves much of the L1 cache cold, and each further line a wrapper
/// touches after it is a miss (measured on open+close, where the kernel
/// path is long). Other modules keep their hot words here too.
#[repr(C, align(64))]
pub struct HotPath {
    /// `STATIC_TLS_OFFSET` while the layer is ready, else 0: the hot
    /// path's one test covers both (see `enter`).
    tls_offset: AtomicIsize,
    /// Where libc's `errno` lies relative to the thread pointer (libc's
    /// TLS is static: it is loaded at start-up). 0 = not known.
    errno_offset: AtomicIsize,
    /// The lowest descriptor ckpt owns (see `files::is_own`).
    pub own_min: AtomicI32,
    /// Set for good once the program called `pthread_cancel`.
    pub cancel_requested: AtomicBool,
    /// Which calls the shim may make as system calls itself (bits of the
    /// shim's `wrap::direct`).
    pub direct: AtomicU8,
    /// glibc's `__libc_single_threaded`, or null when it has none.
    pub single_threaded: AtomicPtr<c_char>,
}

/// See [`HotPath`].
pub static HOT: HotPath = HotPath {
    tls_offset: AtomicIsize::new(0),
    errno_offset: AtomicIsize::new(0),
    own_min: AtomicI32::new(i32::MAX),
    cancel_requested: AtomicBool::new(false),
    direct: AtomicU8::new(0),
    single_threaded: AtomicPtr::new(ptr::null_mut()),
};

fn publish_tls_offset() {
    let off = if READY.load(Ordering::Acquire) {
        STATIC_TLS_OFFSET.load(Ordering::Relaxed)
    } else {
        0
    };
    HOT.tls_offset.store(off, Ordering::Release);
}

#[inline(always)]
fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: on x86_64 glibc, fs:0 holds the thread pointer itself
    // (tcbhead_t.tcb); reading it has no side effect.
    unsafe {
        core::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly, preserves_flags, pure))
    };
    tp
}

/// Take the static-TLS fast path from now on. Call once, at start-up, and
/// only when the shim was loaded at start-up (its TLS is then static).
pub fn use_static_tls() {
    let tp = thread_pointer();
    // Static TLS blocks lie just below the thread pointer (x86_64 TLS
    // variant II); anything else keeps the general path.
    let offset =
        |addr: usize| (addr < tp && tp - addr < 1 << 20).then(|| addr as isize - tp as isize);
    if let Some(off) = offset(STATE.with(|s| s as *const ThreadState as usize)) {
        STATIC_TLS_OFFSET.store(off, Ordering::Relaxed);
        publish_tls_offset();
    }
    // SAFETY: __errno_location has no preconditions.
    if let Some(off) = offset(unsafe { libc::__errno_location() } as usize) {
        HOT.errno_offset.store(off, Ordering::Relaxed);
    }
}

/// Enter a wrapper. `None` means: pass straight through to the original.
#[inline(always)]
pub fn enter() -> Option<Guard> {
    let off = HOT.tls_offset.load(Ordering::Relaxed);
    if off == 0 {
        return enter_general();
    }
    let state = (thread_pointer() as isize + off) as *const ThreadState;
    // SAFETY: a thread's static TLS outlives every call made on that
    // thread; `in_wrapper` and `internal` are adjacent bytes of a
    // repr(C) struct at offset 0 (2-aligned), read by their own thread.
    let busy = unsafe { (state as *const u16).read() } != 0;
    if busy {
        return None;
    }
    // SAFETY: as above.
    unsafe { &*state }.in_wrapper.set(true);
    Some(Guard { state })
}

/// `enter` when the TLS offset is unknown or the layer is not ready.
#[cold]
#[inline(never)]
fn enter_general() -> Option<Guard> {
    if !READY.load(Ordering::Acquire) {
        return None;
    }
    let state = with_state(|s| s as *const ThreadState).unwrap_or(ptr::null());
    if state.is_null() {
        return None;
    }
    // SAFETY: a thread's TLS outlives every call made on that thread.
    let s = unsafe { &*state };
    if s.in_wrapper.get() || s.internal.get() {
        return None;
    }
    s.in_wrapper.set(true);
    Some(Guard { state })
}

impl Guard {
    #[inline(always)]
    fn state(&self) -> &ThreadState {
        // SAFETY: see `enter`; a Guard never leaves its thread (!Send).
        unsafe { &*self.state }
    }

    /// This thread's counts of freezes and of the program's signal
    /// handlers run ([`freezes`], [`program_signals`]), read directly.
    #[inline(always)]
    pub fn freezes_and_program_signals(&self) -> (u32, u32) {
        let s = self.state();
        (s.freezes.get(), s.program_signals.get())
    }

    /// Run a recording hook. A checkpoint signal that arrives meanwhile is
    /// deferred to the end of the hook, so no thread is ever frozen with a
    /// half-written table entry.
    #[inline(always)]
    pub fn record<R>(&self, hook: impl FnOnce() -> R) -> R {
        let s = self.state();
        s.recording.set(true);
        let r = hook();
        // From here a checkpoint signal parks this thread directly.
        s.recording.set(false);
        if s.pending.get() {
            s.pending.set(false);
            run_freeze_hook();
        }
        r
    }
}

impl Drop for Guard {
    #[inline(always)]
    fn drop(&mut self) {
        self.state().in_wrapper.set(false);
    }
}

#[cold]
fn run_freeze_hook() {
    let hook = FREEZE_HOOK.load(Ordering::Acquire);
    if !hook.is_null() {
        // SAFETY: only `set_freeze_hook` stores here, always an `extern "C" fn()`.
        let f: extern "C" fn() = unsafe { core::mem::transmute(hook) };
        f();
    }
}

/// Called from the checkpoint signal handler. Returns true when the thread
/// may be parked now; false when it is recording (the freeze is then run
/// when the hook ends) or is one of ckpt's own threads.
/// Signal-safe: touches only this thread's TLS.
pub fn may_park_or_defer() -> bool {
    with_state(|s| {
        if s.internal.get() {
            return false;
        }
        if s.recording.get() {
            s.pending.set(true);
            return false;
        }
        true
    })
    .unwrap_or(false)
}

/// Mark the current thread as one of ckpt's own: every wrapper passes
/// through for it and checkpoints never freeze it.
pub fn set_internal(internal: bool) {
    let _ = with_state(|s| s.internal.set(internal));
}

/// Whether the current thread is one of ckpt's own.
pub fn is_internal() -> bool {
    with_state(|s| s.internal.get()).unwrap_or(false)
}

/// Run `f` as ckpt's own code on a program thread: wrappers reached from it
/// pass straight through.
pub fn internally<R>(f: impl FnOnce() -> R) -> R {
    let was = is_internal();
    set_internal(true);
    let r = f();
    set_internal(was);
    r
}

/// Around a program's signal handler: the handler may call wrapped
/// functions (and may never return, with `siglongjmp`), so it must not
/// inherit "inside a wrapper" unless a hook is half-way through recording.
/// Returns what to give back to [`after_program_handler`].
#[inline]
pub fn before_program_handler() -> bool {
    with_state(|s| {
        s.program_signals
            .set(s.program_signals.get().wrapping_add(1));
        let was = s.in_wrapper.get();
        if !s.recording.get() {
            s.in_wrapper.set(false);
        }
        was
    })
    .unwrap_or(false)
}

/// See [`before_program_handler`].
#[inline]
pub fn after_program_handler(in_wrapper: bool) {
    let _ = with_state(|s| s.in_wrapper.set(in_wrapper));
}

/// Number of program signal handlers that ran on this thread so far. A
/// blocking call that failed with EINTR while this did not move was
/// interrupted by a checkpoint only, and is resumed transparently.
#[inline]
pub fn program_signals() -> u32 {
    with_state(|s| s.program_signals.get()).unwrap_or(0)
}

/// Count one freeze of this thread (called by the park code).
pub fn note_freeze() {
    let _ = with_state(|s| s.freezes.set(s.freezes.get().wrapping_add(1)));
}

/// Times this thread was frozen so far.
pub fn freezes() -> u32 {
    with_state(|s| s.freezes.get()).unwrap_or(0)
}

/// Run `f` again until a run of it sees no freeze of this thread: for a
/// read whose meaning a restart changes (a thread parked between reading
/// a CPU-time clock and adding what was used before a restart must not
/// add the new difference to the old reading).
#[inline]
pub fn between_freezes<R>(mut f: impl FnMut() -> R) -> R {
    loop {
        let before = freezes();
        let r = f();
        if freezes() == before {
            return r;
        }
    }
}

/// This thread's cached slot in the thread table (1-based, 0 = none).
pub fn cached_slot() -> u32 {
    with_state(|s| s.slot.get()).unwrap_or(0)
}

/// Cache this thread's slot in the thread table (1-based, 0 = none).
pub fn set_cached_slot(slot: u32) {
    let _ = with_state(|s| s.slot.set(slot));
}

/// The original of an interposed function, found with `dlsym(RTLD_NEXT)`
/// (or `dlvsym` when a symbol version is given).
pub struct Original {
    name: &'static CStr,
    version: Option<&'static CStr>,
    ptr: AtomicPtr<c_void>,
}

impl Original {
    /// A not yet resolved original.
    pub const fn new(name: &'static CStr, version: Option<&'static CStr>) -> Self {
        Original {
            name,
            version,
            ptr: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The symbol name.
    pub fn name(&self) -> &'static CStr {
        self.name
    }

    /// The address of the original; resolved on first use if the
    /// constructor has not done it yet. Aborts with a clear message when
    /// the symbol does not exist (a wrapper cannot invent a result).
    #[inline(always)]
    pub fn get(&self) -> *mut c_void {
        let p = self.ptr.load(Ordering::Relaxed);
        if !p.is_null() {
            return p;
        }
        self.resolve_or_abort()
    }

    /// The address if already resolved, else null (never resolves: for
    /// paths that must stay free of calls).
    #[inline(always)]
    pub fn resolved(&self) -> *mut c_void {
        self.ptr.load(Ordering::Relaxed)
    }

    #[cold]
    fn resolve_or_abort(&self) -> *mut c_void {
        let p = self.resolve();
        if p.is_null() {
            missing(self.name);
        }
        p
    }

    /// Resolve now (eagerly, from the shim's constructor). Returns null
    /// when the C library does not have the symbol.
    pub fn resolve(&self) -> *mut c_void {
        // SAFETY: dlsym/dlvsym with a valid NUL-terminated name; RTLD_NEXT
        // searches the objects loaded after the one holding this code.
        let p = unsafe {
            match self.version {
                Some(v) => libc::dlvsym(libc::RTLD_NEXT, self.name.as_ptr(), v.as_ptr()),
                None => libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()),
            }
        };
        if !p.is_null() {
            self.ptr.store(p, Ordering::Relaxed);
        }
        p
    }
}

/// A wrapped symbol has no original: say which, and stop.
#[cold]
pub fn missing(name: &CStr) -> ! {
    let mut buf = [0u8; 160];
    let msg = b"ckpt: the C library has no original for interposed symbol ";
    let n = msg.len().min(buf.len());
    buf[..n].copy_from_slice(&msg[..n]);
    let name = name.to_bytes();
    let m = name.len().min(buf.len() - n - 1);
    buf[n..n + m].copy_from_slice(&name[..m]);
    buf[n + m] = b'\n';
    // SAFETY: writing a stack buffer to stderr, then aborting.
    unsafe {
        libc::write(2, buf.as_ptr() as *const c_void, n + m + 1);
        libc::abort();
    }
}

/// The calling thread's `errno`.
#[inline(always)]
pub fn errno() -> c_int {
    // SAFETY: __errno_location always returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// The calling thread's `errno` slot (then plain loads/stores).
#[inline(always)]
pub fn errno_location() -> *mut c_int {
    match HOT.errno_offset.load(Ordering::Relaxed) {
        // SAFETY: __errno_location has no preconditions.
        0 => unsafe { libc::__errno_location() },
        off => (thread_pointer() as isize + off) as *mut c_int,
    }
}

/// Set the calling thread's `errno`.
#[inline(always)]
pub fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e }
}

/// Read a C string argument for recording, tolerating null.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string.
#[inline]
pub unsafe fn c_str<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        &[]
    } else {
        CStr::from_ptr(p).to_bytes()
    }
}
