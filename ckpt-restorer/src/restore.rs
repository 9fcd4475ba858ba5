//! The restore steps, in order. Up to [`destroy_point`] nothing is changed and
//! any error exits with [`EXIT_REFUSED`]; after it, with [`EXIT_FAILED`].

use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicBool, Ordering};

use ckpt_restorer::plan::{
    MmFields, Plan, PlanHeader, PlanView, MAX_SPECIALS, PLAN_MAP_ADDR, PLAN_MAX_LEN, PROT_READ,
    PROT_WRITE, RESERVE_LEN, RESTORER_BASE, SPECIAL_SCRATCH_ADDR, SPECIAL_SCRATCH_STRIDE,
};

use crate::maps;
use crate::sys::{self, Errno, Line};

/// Exit status when the restorer refuses before touching anything.
pub const EXIT_REFUSED: i32 = 70;
/// Exit status when restoring fails after the old address space is gone.
pub const EXIT_FAILED: i32 = 71;

const RESERVE_END: u64 = RESTORER_BASE + RESERVE_LEN;
const SCRATCH_END: u64 = SPECIAL_SCRATCH_ADDR + MAX_SPECIALS * SPECIAL_SCRATCH_STRIDE;
/// Kernel special mappings the restorer moves (and compares with the image's).
const KNOWN_SPECIALS: [&[u8]; 3] = [b"[vdso]", b"[vvar]", b"[vvar_vclock]"];

static DESTROYED: AtomicBool = AtomicBool::new(false);

/// The exit status for an error now: 70 before the point of no return, 71 after.
pub fn exit_code() -> i32 {
    if DESTROYED.load(Ordering::Relaxed) {
        EXIT_FAILED
    } else {
        EXIT_REFUSED
    }
}

fn refuse(what: &str) -> ! {
    Line::new().s(what).die(EXIT_REFUSED)
}

fn fail(what: &str, e: Errno) -> ! {
    Line::new().s(what).errno(e).die(EXIT_FAILED)
}

/// A special mapping as this kernel placed it.
#[derive(Clone, Copy)]
struct Current<'a> {
    name: &'a [u8],
    start: u64,
    len: u64,
}

extern "C" {
    /// End of .bss, defined by the linker.
    static _end: u8;
}

/// Step 1 (continued): the binary must end below the scratch area and the plan mapping.
fn check_own_extent() {
    // Only the address of the linker-defined symbol is taken, never its value.
    let end = core::ptr::addr_of!(_end) as u64;
    if !(RESTORER_BASE..=SPECIAL_SCRATCH_ADDR).contains(&end) {
        Line::new()
            .s("this restorer binary is not linked at 0x7e0000000000 or is too large (ends at ")
            .hex(end)
            .s(")")
            .die(EXIT_REFUSED);
    }
}

/// Step 2: map the plan read-only at PLAN_MAP_ADDR and validate it.
fn map_plan(fd: i32) -> PlanView<'static> {
    let mut st = sys::Stat::zeroed();
    if let Err(e) = sys::fstat(fd, &mut st) {
        Line::new()
            .s("cannot fstat plan descriptor ")
            .dec(fd as u64)
            .errno(e)
            .die(EXIT_REFUSED);
    }
    let size = st.size();
    if st.mode() & 0o170000 != 0o100000 || size == 0 {
        Line::new()
            .s("plan descriptor ")
            .dec(fd as u64)
            .s(" is not a non-empty regular file or memfd")
            .die(EXIT_REFUSED);
    }
    if size > PLAN_MAX_LEN {
        Line::new()
            .s("plan is too large (")
            .dec(size)
            .s(" bytes, at most 32 MiB)")
            .die(EXIT_REFUSED);
    }
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping, and the
    // range lies in our reserved range above the binary (checked by check_own_extent).
    let got = unsafe {
        sys::mmap(
            PLAN_MAP_ADDR,
            size,
            PROT_READ,
            0x02 | sys::MAP_FIXED_NOREPLACE,
            fd,
            0,
        )
    };
    match got {
        Ok(a) if a == PLAN_MAP_ADDR => {}
        Ok(_) => refuse("the kernel ignored MAP_FIXED_NOREPLACE for the plan mapping"),
        Err(e) => Line::new()
            .s("cannot map the plan at ")
            .hex(PLAN_MAP_ADDR)
            .errno(e)
            .die(EXIT_REFUSED),
    }
    // SAFETY: [PLAN_MAP_ADDR, +size) is now a private read-only mapping that
    // stays mapped (never unmapped or written) until the jump.
    let bytes = unsafe { core::slice::from_raw_parts(PLAN_MAP_ADDR as *const u8, size as usize) };
    match Plan::parse(bytes) {
        Ok(v) => v,
        Err(e) => Line::new().s("invalid plan: ").s(e).die(EXIT_REFUSED),
    }
}

fn is_special_name(plan: &PlanView, name: &[u8]) -> bool {
    KNOWN_SPECIALS.contains(&name) || plan.specials().any(|s| s.name_bytes() == name)
}

/// Step 3: find this kernel's special mappings and compare them with the plan's.
/// Also checks that the scratch area is free.
fn check_specials<'m>(
    plan: &PlanView,
    maps_buf: &'m [u8],
    out: &mut [Option<Current<'m>>; MAX_SPECIALS as usize],
) {
    let mut n = 0;
    for m in maps::iter(maps_buf) {
        let m = match m {
            Ok(m) => m,
            Err(line) => Line::new()
                .s("cannot parse /proc/self/maps line: ")
                .b(line)
                .die(EXIT_REFUSED),
        };
        if m.start < SCRATCH_END && SPECIAL_SCRATCH_ADDR < m.end {
            Line::new()
                .s("the restorer's scratch range is in use: ")
                .hex(m.start)
                .s("-")
                .hex(m.end)
                .s(" ")
                .b(m.name)
                .die(EXIT_REFUSED);
        }
        if !is_special_name(plan, m.name) {
            continue;
        }
        if m.start < RESERVE_END && RESTORER_BASE < m.end {
            Line::new()
                .s("special mapping ")
                .b(m.name)
                .s(" lies in the restorer's reserved range")
                .die(EXIT_REFUSED);
        }
        if out[..n].iter().flatten().any(|c| c.name == m.name) {
            Line::new()
                .s("special mapping ")
                .b(m.name)
                .s(" appears twice in /proc/self/maps")
                .die(EXIT_REFUSED);
        }
        if n == out.len() {
            refuse("too many special mappings in /proc/self/maps");
        }
        out[n] = Some(Current {
            name: m.name,
            start: m.start,
            len: m.end - m.start,
        });
        n += 1;
    }
    const DIFFERS: &str = "this kernel's vdso layout differs from the image's: ";
    for c in out.iter().flatten() {
        match plan.specials().find(|s| s.name_bytes() == c.name) {
            None => Line::new()
                .s(DIFFERS)
                .s("this kernel has ")
                .b(c.name)
                .s(" (")
                .dec(c.len)
                .s(" bytes), the image has none")
                .die(EXIT_REFUSED),
            Some(s) if s.len != c.len => Line::new()
                .s(DIFFERS)
                .b(c.name)
                .s(" is ")
                .dec(c.len)
                .s(" bytes here, ")
                .dec(s.len)
                .s(" bytes in the image")
                .die(EXIT_REFUSED),
            Some(_) => {}
        }
    }
    for s in plan.specials() {
        if !out.iter().flatten().any(|c| c.name == s.name_bytes()) {
            Line::new()
                .s(DIFFERS)
                .s("the image has ")
                .b(s.name_bytes())
                .s(" (")
                .dec(s.len)
                .s(" bytes), this kernel has none")
                .die(EXIT_REFUSED);
        }
    }
}

/// Step 5: unmap everything outside the reserved range except the specials
/// and [vsyscall] (the kernel's stack included: we run on the .bss stack).
fn unmap_all(maps_buf: &[u8], specials: &[Option<Current>]) {
    for m in maps::iter(maps_buf).flatten() {
        if m.name == b"[vsyscall]" || specials.iter().flatten().any(|c| c.start == m.start) {
            continue;
        }
        let pieces = [
            (m.start, m.end.min(RESTORER_BASE)),
            (m.start.max(RESERVE_END), m.end),
        ];
        for (a, b) in pieces {
            if a < b {
                // SAFETY: [a, b) lies outside the reserved range, which holds
                // everything the restorer uses (code, data, stack, plan).
                if let Err(e) = unsafe { sys::munmap(a, b - a) } {
                    Line::new()
                        .s("cannot unmap ")
                        .hex(a)
                        .s("-")
                        .hex(b)
                        .s(" ")
                        .b(m.name)
                        .errno(e)
                        .die(EXIT_FAILED);
                }
            }
        }
    }
}

/// Step 6: move each special to its planned address via a scratch spot.
fn move_specials(plan: &PlanView, current: &[Option<Current>]) {
    let flags = sys::MREMAP_MAYMOVE | sys::MREMAP_FIXED;
    for (i, s) in plan.specials().enumerate() {
        let Some(c) = current.iter().flatten().find(|c| c.name == s.name_bytes()) else {
            Line::new()
                .s("internal error: special mapping vanished")
                .die(EXIT_FAILED);
        };
        let scratch = SPECIAL_SCRATCH_ADDR + i as u64 * SPECIAL_SCRATCH_STRIDE;
        // SAFETY: the special is not used by the restorer; the scratch spot is
        // inside the reserved range and was checked free in step 3.
        if let Err(e) = unsafe { sys::mremap(c.start, c.len, c.len, flags, scratch) } {
            Line::new()
                .s("cannot move ")
                .b(c.name)
                .s(" from ")
                .hex(c.start)
                .s(" to scratch ")
                .hex(scratch)
                .errno(e)
                .die(EXIT_FAILED);
        }
    }
    for (i, s) in plan.specials().enumerate() {
        let scratch = SPECIAL_SCRATCH_ADDR + i as u64 * SPECIAL_SCRATCH_STRIDE;
        // SAFETY: the target was validated outside the reserved range and the
        // regions, and everything else there was unmapped in step 5.
        if let Err(e) = unsafe { sys::mremap(scratch, s.len, s.len, flags, s.start) } {
            Line::new()
                .s("cannot move ")
                .b(s.name_bytes())
                .s(" to ")
                .hex(s.start)
                .errno(e)
                .die(EXIT_FAILED);
        }
    }
}

/// Step 7: map the regions, copy the extents in, set final protections.
///
/// A region is mapped with its own protection and flags (MAP_NORESERVE
/// kept), so a huge reservation costs at restart what it cost before: a
/// 2 TiB NORESERVE or PROT_NONE region is not committed. Only the pages
/// that receive stored data are made writable for the copy.
fn map_regions(plan: &PlanView, pager: Option<(crate::uffd::Uffd, bool)>) {
    for r in plan.regions() {
        // A shared file mapping has no extents (Plan::parse refuses them) and
        // its descriptor may be read-only: map it with its final protection.
        let fill = !r.is_shared_file() && plan.extents().any(|x| r.contains(x.addr));
        let prot = if fill && r.prot & PROT_WRITE != 0 {
            PROT_READ | PROT_WRITE
        } else {
            r.prot
        };
        let off = if r.fd < 0 { 0 } else { r.offset };
        // SAFETY: the region lies outside the reserved range (validated) and
        // everything outside it but the specials was unmapped; the specials
        // do not overlap regions (validated).
        match unsafe { sys::mmap(r.start, r.len(), prot, r.flags | sys::MAP_FIXED, r.fd, off) } {
            Ok(a) if a == r.start => {}
            Ok(a) => Line::new()
                .s("region ")
                .hex(r.start)
                .s(" was mapped at ")
                .hex(a)
                .die(EXIT_FAILED),
            Err(e) => {
                let mut l = Line::new();
                l.s("cannot map region ")
                    .hex(r.start)
                    .s("-")
                    .hex(r.end)
                    .s(" (");
                if r.fd < 0 {
                    l.s("anonymous");
                } else {
                    l.s("fd ").dec(r.fd as u64);
                }
                l.s(", ")
                    .dec(r.len() >> 10)
                    .s(" KiB)")
                    .errno(e)
                    .die(EXIT_FAILED)
            }
        }
        if fill && prot != PROT_READ | PROT_WRITE {
            // Read-only or PROT_NONE with stored pages: only those pages
            // become writable (and committed) for the copy.
            for x in plan.extents().filter(|x| r.contains(x.addr)) {
                // SAFETY: the extent lies inside the region just mapped.
                if let Err(e) = unsafe { sys::mprotect(x.addr, x.len, PROT_READ | PROT_WRITE) } {
                    Line::new()
                        .s("cannot make ")
                        .hex(x.addr)
                        .s(" writable for its stored pages")
                        .errno(e)
                        .die(EXIT_FAILED);
                }
            }
        }
    }
    if let Some((u, kernel)) = pager {
        hand_to_pager(plan, u, kernel);
    }
    // Anonymous regions with stored pages are filled with UFFDIO_COPY
    // (no zeroing first), by two threads for large images; everything
    // else, or all of it when the kernel refuses userfaultfd, the plain way.
    let uffd = crate::uffd::Uffd::open().ok();
    for r in plan.regions() {
        if let Some(u) = &uffd {
            if r.fd < 0 && plan.extents().any(|x| r.contains(x.addr)) {
                let _ = u.register(r.start, r.len());
            }
        }
    }
    let n = plan.n_extents();
    // Extents [0, split) are this thread's, [split, n) the helper's; each
    // half is copied up to its first failure (`n`: none).
    let split = halfway(plan);
    let failed = match &uffd {
        Some(u) => copy_anonymous(u, plan, split),
        None => [0, 0],
    };
    // Closing it unregisters every range: a plain copy into a registered
    // range would wait for a handler forever.
    drop(uffd);
    for i in 0..n {
        let x = plan.extent(i);
        let first_failure = failed[usize::from(i >= split)];
        if i < first_failure && is_anonymous(plan, x.addr) {
            continue;
        }
        // Fault the destination in with one call rather than a trap per
        // page (an older kernel refuses the advice: pread faults instead).
        // SAFETY: the range is freshly mapped, writable and empty.
        let _ = unsafe { sys::madvise(x.addr, x.len, sys::MADV_POPULATE_WRITE) };
        let mut done = 0u64;
        while done < x.len {
            // SAFETY: [x.addr, x.addr+x.len) lies inside one region (validated),
            // now mapped writable, and nothing of ours references it.
            let r = unsafe {
                sys::pread64(
                    x.fd,
                    (x.addr + done) as *mut u8,
                    (x.len - done) as usize,
                    x.file_offset + done,
                )
            };
            match r {
                Ok(0) => Line::new()
                    .s("the image ends before extent ")
                    .hex(x.addr)
                    .s(" (file offset ")
                    .hex(x.file_offset + done)
                    .s(")")
                    .die(EXIT_FAILED),
                Ok(n) => done += n as u64,
                Err(Errno(sys::EINTR)) => {}
                Err(e) => Line::new()
                    .s("cannot read extent ")
                    .hex(x.addr)
                    .s(" from the image (fd ")
                    .dec(x.fd as u64)
                    .s(")")
                    .errno(e)
                    .die(EXIT_FAILED),
            }
        }
    }
    if plan.header().pager_fd >= 0 {
        // Our own copies are done: the pager may roll the files back.
        if let Err(e) = sys::write(plan.header().pager_fd, b"D") {
            fail("cannot tell the restart command the copy is done", e);
        }
        wait_for_pager(plan.header());
    }
    for r in plan.regions() {
        // SAFETY: the restorer does not use restored memory; the final
        // protection is the saved process's own.
        if let Err(e) = unsafe { sys::mprotect(r.start, r.len(), r.prot) } {
            Line::new()
                .s("cannot set protection of region ")
                .hex(r.start)
                .errno(e)
                .die(EXIT_FAILED);
        }
    }
}

/// Step 4 (with a pager): the userfaultfd the pager fills the paged
/// regions through, made before anything is destroyed so that a kernel
/// refusing it leaves everything as it was.
fn open_pager(h: &PlanHeader) -> Option<(crate::uffd::Uffd, bool)> {
    if h.pager_fd < 0 {
        return None;
    }
    match crate::uffd::Uffd::open_for_pager(h.uffd_dev, h.lazy == 1) {
        Ok(u) => Some(u),
        Err(e) => {
            let mut l = Line::new();
            l.s("cannot make a userfaultfd for the restart command to fill memory through");
            if h.uffd_dev < 0 {
                l.s(" (no /dev/userfaultfd; the userfaultfd syscall with UFFD_USER_MODE_ONLY)");
            } else {
                l.s(" (USERFAULTFD_IOC_NEW on /dev/userfaultfd)");
            }
            l.errno(e).die(EXIT_REFUSED)
        }
    }
}

/// Register every paged region with `u` (missing pages) and send `u` to
/// the pager, which fills them while this thread copies the other
/// extents. The byte sent says whether faults the kernel takes reach the
/// pager too ('K') or only user-mode ones ('U'). Our copy of `u` is
/// closed here: once the pager closes its own, the regions are plain
/// memory again.
fn hand_to_pager(plan: &PlanView, u: crate::uffd::Uffd, kernel: bool) {
    for r in plan.regions().filter(|r| r.is_paged()) {
        if let Err(e) = u.register(r.start, r.len()) {
            Line::new()
                .s("cannot register region ")
                .hex(r.start)
                .s("-")
                .hex(r.end)
                .s(" with the userfaultfd")
                .errno(e)
                .die(EXIT_FAILED);
        }
    }
    let tag = if kernel { b'K' } else { b'U' };
    if let Err(e) = sys::send_fd(plan.header().pager_fd, tag, u.raw()) {
        fail("cannot hand the userfaultfd to the restart command", e);
    }
}

/// Wait for the pager's status byte (0: every paged region is filled,
/// its userfaultfd closed and the files rolled back; lazy: the files
/// rolled back and the pager serving faults), then close
/// /dev/userfaultfd and, unless lazy, the pager's socket.
fn wait_for_pager(h: &PlanHeader) {
    let mut b = [0u8; 1];
    let got = loop {
        match sys::read(h.pager_fd, &mut b) {
            Err(Errno(sys::EINTR)) => {}
            r => break r,
        }
    };
    match got {
        Ok(1) if b[0] == 0 => {}
        Ok(1) => Line::new()
            .s("the restart command could not fill the program's memory (it said why)")
            .die(EXIT_FAILED),
        Ok(_) => Line::new()
            .s("the restart command ended before the program's memory was filled")
            .die(EXIT_FAILED),
        Err(e) => fail("cannot hear from the restart command", e),
    }
    // A lazy restart's pager socket stays: post-restart code waits on it
    // for the end of the fill (see `ckpt::memory::lazy`).
    let pager_fd = if h.lazy == 1 { -1 } else { h.pager_fd };
    for fd in [pager_fd, h.uffd_dev] {
        if fd >= 0 {
            if let Err(e) = sys::close(fd) {
                fail("cannot close the pager's descriptors", e);
            }
        }
    }
}

/// Whether `addr` lies in an anonymous region of the plan.
fn is_anonymous(plan: &PlanView, addr: u64) -> bool {
    plan.regions().any(|r| r.fd < 0 && r.contains(addr))
}

/// Where to split the extents so both halves hold about as many anonymous
/// bytes; `n_extents` (no helper) when there is too little to share.
fn halfway(plan: &PlanView) -> usize {
    let n = plan.n_extents();
    let anon = |i: usize| {
        let x = plan.extent(i);
        if is_anonymous(plan, x.addr) {
            x.len
        } else {
            0
        }
    };
    let total: u64 = (0..n).map(anon).sum();
    if total < HELPER_MIN_BYTES {
        return n;
    }
    let mut sum = 0;
    for i in 0..n {
        sum += anon(i);
        if sum >= total / 2 {
            return i + 1;
        }
    }
    n
}

/// Below this many anonymous bytes one thread copies alone (starting and
/// ending a thread costs more than it saves).
const HELPER_MIN_BYTES: u64 = 32 << 20;

/// What the helper thread copies.
struct CopyJob<'a> {
    uffd: &'a crate::uffd::Uffd,
    plan: &'a PlanView<'a>,
    from: usize,
    to: usize,
    /// Its first failed extent (`to`: none), set before it ends.
    failed: core::sync::atomic::AtomicUsize,
}

/// Copy every anonymous extent with `u`: [0, split) here, [split, n) on a
/// helper thread (here too if none can be started). Returns each half's
/// first failed extent (`n` when it had none).
fn copy_anonymous(u: &crate::uffd::Uffd, plan: &PlanView, split: usize) -> [usize; 2] {
    let n = plan.n_extents();
    let job = CopyJob {
        uffd: u,
        plan,
        from: split,
        to: n,
        failed: core::sync::atomic::AtomicUsize::new(n),
    };
    let helper = if split < n {
        // SAFETY: `job` outlives the helper (joined below); the helper
        // touches only extents [split, n), through window 1.
        unsafe { crate::helper::spawn(copy_job, &job as *const CopyJob as usize) }.ok()
    } else {
        None
    };
    let mine = copy_range(u, plan, 0, split, 0);
    let theirs = match helper {
        Some(h) => {
            h.join();
            job.failed.load(Ordering::Acquire)
        }
        None => copy_range(u, plan, split, n, 0),
    };
    [if mine == split { n } else { mine }, theirs]
}

/// The helper thread's body: `arg` is a `&CopyJob`.
extern "C" fn copy_job(arg: usize) {
    // SAFETY: `copy_anonymous` passes a `CopyJob` that outlives this thread.
    let job = unsafe { &*(arg as *const CopyJob) };
    let f = copy_range(job.uffd, job.plan, job.from, job.to, 1);
    job.failed.store(f, Ordering::Release);
}

/// Copy the anonymous extents among [from, to) through image window
/// `window`; the first that fails, or `to`.
fn copy_range(
    u: &crate::uffd::Uffd,
    plan: &PlanView,
    from: usize,
    to: usize,
    window: usize,
) -> usize {
    let w = crate::uffd::WINDOWS[window];
    let mut mapped = (-1, 0);
    for i in from..to {
        let x = plan.extent(i);
        if is_anonymous(plan, x.addr)
            && u.copy_extent(x.fd, x.addr, x.len, x.file_offset, w, &mut mapped)
                .is_err()
        {
            return i;
        }
    }
    to
}

/// `struct prctl_mm_map` of <linux/prctl.h>.
#[repr(C)]
struct PrctlMmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: u64,
    auxv_size: u32,
    exe_fd: u32,
}

/// Steps 8 and 9: mm fields and thread name; failures are only warnings.
fn set_mm_and_name(h: &PlanHeader) {
    let m = &h.mm;
    let map = PrctlMmMap {
        start_code: m.start_code,
        end_code: m.end_code,
        start_data: m.start_data,
        end_data: m.end_data,
        start_brk: m.start_brk,
        brk: m.brk,
        start_stack: m.start_stack,
        arg_start: m.arg_start,
        arg_end: m.arg_end,
        env_start: m.env_start,
        env_end: m.env_end,
        auxv: PLAN_MAP_ADDR + (offset_of!(PlanHeader, mm) + offset_of!(MmFields, auxv)) as u64,
        auxv_size: (m.auxv_len * 8) as u32,
        exe_fd: u32::MAX,
    };
    // SAFETY: `map` is a complete prctl_mm_map on our stack; its auxv pointer
    // points at the plan mapping's auxv array (auxv_len <= 128 words, validated).
    let r = unsafe {
        sys::prctl(
            sys::PR_SET_MM,
            sys::PR_SET_MM_MAP,
            &map as *const PrctlMmMap as usize,
            size_of::<PrctlMmMap>(),
            0,
        )
    };
    if let Err(e) = r {
        Line::new().s("warning: PR_SET_MM_MAP").errno(e).emit();
    }
    let mut comm = h.comm;
    comm[15] = 0;
    // SAFETY: comm is a NUL-terminated 16-byte buffer on our stack.
    if let Err(e) = unsafe { sys::prctl(sys::PR_SET_NAME, comm.as_ptr() as usize, 0, 0, 0) } {
        Line::new().s("warning: PR_SET_NAME").errno(e).emit();
    }
}

/// Step 10: jump into the restored process. Never returns.
fn jump(h: &PlanHeader) -> ! {
    let (entry, arg, stack, image_fd) = (
        h.entry,
        h.entry_arg,
        h.entry_stack,
        h.image_fd as i64 as u64,
    );
    // SAFETY: entry lies in an executable restored region and entry_stack - 8
    // in a writable one (validated); from here on the restored code owns the
    // process and the restorer's stack is abandoned.
    unsafe {
        core::arch::asm!(
            "mov rsp, {stack}",
            "push 0",
            "jmp {entry}",
            stack = in(reg) stack,
            entry = in(reg) entry,
            in("rdi") arg,
            in("rsi") image_fd,
            in("rdx") PLAN_MAP_ADDR,
            options(noreturn)
        )
    }
}

/// All the steps, given the plan descriptor from argv[1].
pub fn run(plan_fd: i32) -> ! {
    check_own_extent();
    let plan = map_plan(plan_fd);
    let mut maps_storage = [0u8; 64 * 1024];
    let maps_buf = match maps::read_self(&mut maps_storage) {
        Ok(b) => b,
        Err((what, e)) => {
            let mut l = Line::new();
            l.s(what);
            if let Some(e) = e {
                l.errno(e);
            }
            l.die(EXIT_REFUSED)
        }
    };
    let mut current = [None; MAX_SPECIALS as usize];
    check_specials(&plan, maps_buf, &mut current);
    let pager = open_pager(plan.header());

    // Point of no return.
    DESTROYED.store(true, Ordering::Relaxed);
    unmap_all(maps_buf, &current);
    move_specials(&plan, &current);
    let h = *plan.header();
    map_regions(&plan, pager);
    set_mm_and_name(&h);
    if let Err(e) = sys::close(plan_fd) {
        fail("cannot close the plan descriptor", e);
    }
    jump(&h)
}
