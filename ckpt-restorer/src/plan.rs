//! Restore plan layout (little-endian, `#[repr(C)]`, u64-aligned):
//!
//! ```text
//! PlanHeader
//! PlanRegion  x n_regions    (sorted, non-overlapping, page aligned)
//! PlanExtent  x n_extents    (each inside one region; copied from its fd)
//! PlanSpecial x n_specials   ([vdso], [vvar], [vvar_vclock] as the image expects them)
//! PlanFinal   x n_finals     (guard pages and seals the restarted program puts back)
//! ```
//!
//! [`Plan::parse`] checks everything the restorer relies on before it destroys
//! anything, so the binary only has to compare the specials with the running
//! kernel's.

use core::mem::size_of;

/// The restorer is linked here and keeps everything it owns (text, data,
/// bss, its stack, the plan mapping, scratch room for the specials) inside
/// `[RESTORER_BASE, RESTORER_BASE + RESERVE_LEN)`.
pub const RESTORER_BASE: u64 = 0x7e00_0000_0000;
/// Length of the restorer's reserved range.
pub const RESERVE_LEN: u64 = 64 << 20;
/// Where the restorer maps the plan, inside the reserved range.
pub const PLAN_MAP_ADDR: u64 = RESTORER_BASE + (32 << 20);
/// The largest plan the restorer accepts (it must fit behind `PLAN_MAP_ADDR`).
pub const PLAN_MAX_LEN: u64 = 32 << 20;
/// Where the restorer parks the special mappings while moving them.
pub const SPECIAL_SCRATCH_ADDR: u64 = RESTORER_BASE + (16 << 20);
/// Room for each parked special mapping (so at most 16 MiB / 1 MiB of them).
pub const SPECIAL_SCRATCH_STRIDE: u64 = 1 << 20;
/// Most special mappings a plan may name.
pub const MAX_SPECIALS: u64 = 8;

/// `b"CKPTPLAN"` as a little-endian u64.
pub const PLAN_MAGIC: u64 = u64::from_le_bytes(*b"CKPTPLAN");
/// The only plan version this restorer reads.
pub const PLAN_VERSION: u32 = 4;
/// [`PlanRegion::paged`]: the restart command (the pager) fills this
/// region's stored pages through a userfaultfd the restorer hands it.
pub const REGION_PAGED: u32 = 1;

pub const PAGE_SIZE: u64 = 4096;
/// First address above x86_64 user space (4-level paging).
pub const USER_TOP: u64 = 0x7fff_ffff_f000;
/// Words in [`MmFields::auxv`].
pub const AUXV_WORDS: usize = 128;

pub const PROT_READ: u32 = 0x1;
pub const PROT_WRITE: u32 = 0x2;
pub const PROT_EXEC: u32 = 0x4;
pub const MAP_SHARED: u32 = 0x01;
pub const MAP_PRIVATE: u32 = 0x02;
pub const MAP_ANONYMOUS: u32 = 0x20;
pub const MAP_GROWSDOWN: u32 = 0x0100;
pub const MAP_NORESERVE: u32 = 0x4000;
/// The `flags` bits a [`PlanRegion`] may carry.
pub const REGION_FLAGS_ALLOWED: u32 =
    MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_NORESERVE;

/// Fixed-size start of a plan.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanHeader {
    pub magic: u64,
    pub version: u32,
    /// [`PlanFinal`] records after the specials.
    pub n_finals: u32,
    pub n_regions: u64,
    pub n_extents: u64,
    pub n_specials: u64,
    /// Open descriptor of the image file that extents are read from.
    pub image_fd: i32,
    /// A Unix socket to the pager (the restart command), or -1: the
    /// restorer sends it the userfaultfd of the regions marked
    /// [`REGION_PAGED`] and waits for its status byte (0: all filled).
    pub pager_fd: i32,
    /// Address to jump to (inside restored memory).
    pub entry: u64,
    /// Passed in rdi.
    pub entry_arg: u64,
    /// 16-byte-aligned stack top to use for the jump.
    pub entry_stack: u64,
    pub mm: MmFields,
    /// NUL-padded thread name for PR_SET_NAME.
    pub comm: [u8; 16],
    /// An open /dev/userfaultfd (USERFAULTFD_IOC_NEW makes a userfaultfd
    /// that also handles faults the kernel takes), or -1: the restorer
    /// uses the userfaultfd syscall with UFFD_USER_MODE_ONLY instead.
    pub uffd_dev: i32,
    /// 0, or 1: a lazy restart. The pager answers as soon as the restorer
    /// copied its own extents and fills the paged regions while the
    /// program runs; the userfaultfd reports unmaps, removals and remaps
    /// (the pager follows them), and the pager socket stays open in the
    /// program (post-restart code is told its number) until the fill is
    /// done. Faults the kernel takes must reach the pager too (a read(2)
    /// into a page not yet filled): from `uffd_dev`, else from the
    /// syscall without UFFD_USER_MODE_ONLY (the command saw the system
    /// allows it).
    pub lazy: u32,
}

/// The fields of `prctl(PR_SET_MM, PR_SET_MM_MAP)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmFields {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    /// Number of u64 words used in `auxv` (even, <= 128). The kernel keeps at
    /// most AT_VECTOR_SIZE words (56 on x86_64 Linux 6.18) and PR_SET_MM_MAP
    /// fails with EINVAL beyond that; /proc/PID/auxv never holds more.
    pub auxv_len: u64,
    pub auxv: [u64; AUXV_WORDS],
}

/// One mapping to re-create.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanRegion {
    /// Page aligned.
    pub start: u64,
    /// Page aligned, exclusive.
    pub end: u64,
    /// Final PROT_* bits.
    pub prot: u32,
    /// MAP_PRIVATE or MAP_SHARED, plus MAP_ANONYMOUS when fd < 0, maybe MAP_GROWSDOWN.
    pub flags: u32,
    /// -1: anonymous; else an open fd to map from.
    pub fd: i32,
    /// 0, or [`REGION_PAGED`] (anonymous regions only, with a pager):
    /// the plan has no extents here, the pager fills the region.
    pub paged: u32,
    /// File offset for fd mappings (page aligned).
    pub offset: u64,
}

/// Copy `len` bytes from image `fd` at `file_offset` to `addr` (all page
/// aligned). `fd` is the image's own descriptor, or that of an earlier
/// image an incremental one takes unchanged pages from.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanExtent {
    pub addr: u64,
    pub len: u64,
    pub file_offset: u64,
    pub fd: i32,
    pub _pad: u32,
}

/// [`PlanFinal::kind`]: install guard pages (MADV_GUARD_INSTALL) on the range.
pub const FINAL_GUARD: u32 = 1;
/// [`PlanFinal::kind`]: seal the range (mseal), one whole region.
pub const FINAL_SEAL: u32 = 2;
/// [`PlanFinal::kind`]: give the range its NUMA policy (mbind: `mode`
/// over `nodes`), one whole region.
pub const FINAL_POLICY: u32 = 3;

/// What the restarted program's own code does to its memory once every
/// mapping is in place (the restorer only checks these: shared memory is
/// mapped again after it, and a sealed range could not be).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanFinal {
    pub start: u64,
    pub len: u64,
    /// [`FINAL_GUARD`], [`FINAL_SEAL`] or [`FINAL_POLICY`].
    pub kind: u32,
    /// [`FINAL_POLICY`]: the MPOL_* mode (with its flags); else 0.
    pub mode: i32,
    /// [`FINAL_POLICY`]: its first 64 nodes; else 0.
    pub nodes: u64,
}

/// Where the image expects a kernel special mapping (`[vdso]`, `[vvar]`, ...).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanSpecial {
    /// NUL-padded name as in /proc/PID/maps, brackets included.
    pub name: [u8; 16],
    pub start: u64,
    pub len: u64,
}

// The records are written and read as raw bytes: they must have no implicit
// padding, and their sizes are part of the format.
const _: () = assert!(size_of::<MmFields>() == 12 * 8 + AUXV_WORDS * 8);
const _: () = assert!(size_of::<PlanHeader>() == 72 + size_of::<MmFields>() + 16 + 8);
const _: () = assert!(size_of::<PlanRegion>() == 40);
const _: () = assert!(size_of::<PlanExtent>() == 32);
const _: () = assert!(size_of::<PlanSpecial>() == 32);
const _: () = assert!(size_of::<PlanFinal>() == 32);
const _: () = assert!(core::mem::align_of::<PlanHeader>() == 8);

impl MmFields {
    pub const fn zeroed() -> Self {
        MmFields {
            start_code: 0,
            end_code: 0,
            start_data: 0,
            end_data: 0,
            start_brk: 0,
            brk: 0,
            start_stack: 0,
            arg_start: 0,
            arg_end: 0,
            env_start: 0,
            env_end: 0,
            auxv_len: 0,
            auxv: [0; AUXV_WORDS],
        }
    }
}

impl PlanHeader {
    /// A header with magic and version set and everything else zero
    /// (`image_fd` = -1). The counts are filled in by [`write_plan`].
    pub const fn new() -> Self {
        PlanHeader {
            magic: PLAN_MAGIC,
            version: PLAN_VERSION,
            n_finals: 0,
            n_regions: 0,
            n_extents: 0,
            n_specials: 0,
            image_fd: -1,
            pager_fd: -1,
            entry: 0,
            entry_arg: 0,
            entry_stack: 0,
            mm: MmFields::zeroed(),
            comm: [0; 16],
            uffd_dev: -1,
            lazy: 0,
        }
    }

    /// Sets `comm` from `name`, cut to 15 bytes and NUL padded.
    pub fn set_comm(&mut self, name: &[u8]) {
        self.comm = [0; 16];
        let n = name.len().min(15);
        self.comm[..n].copy_from_slice(&name[..n]);
    }
}

impl Default for PlanHeader {
    fn default() -> Self {
        Self::new()
    }
}

impl PlanRegion {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// A file-backed MAP_SHARED region: its content is the file's.
    pub fn is_shared_file(&self) -> bool {
        self.fd >= 0 && self.flags & MAP_SHARED != 0
    }

    /// The pager fills this region (see [`REGION_PAGED`]).
    pub fn is_paged(&self) -> bool {
        self.paged == REGION_PAGED
    }
}

impl PlanSpecial {
    /// `name` is cut to 15 bytes.
    pub fn new(name: &[u8], start: u64, len: u64) -> Self {
        let mut n = [0u8; 16];
        let k = name.len().min(15);
        n[..k].copy_from_slice(&name[..k]);
        PlanSpecial {
            name: n,
            start,
            len,
        }
    }

    /// The name without its NUL padding.
    pub fn name_bytes(&self) -> &[u8] {
        let n = self.name.iter().position(|&b| b == 0).unwrap_or(16);
        &self.name[..n]
    }

    pub fn end(&self) -> u64 {
        self.start.wrapping_add(self.len)
    }
}

/// Types that are plain old data: `#[repr(C)]`, no padding, any bit pattern valid.
///
/// # Safety
/// Implementors must have no implicit padding and accept every bit pattern.
unsafe trait Pod: Copy {}
// SAFETY: all five are repr(C) made of integers and integer arrays, with sizes
// asserted above equal to the sum of their fields (no padding).
unsafe impl Pod for PlanHeader {}
// SAFETY: as above.
unsafe impl Pod for PlanRegion {}
// SAFETY: as above.
unsafe impl Pod for PlanExtent {}
// SAFETY: as above.
unsafe impl Pod for PlanSpecial {}
// SAFETY: as above.
unsafe impl Pod for PlanFinal {}

fn bytes_of<T: Pod>(v: &[T]) -> &[u8] {
    // SAFETY: T is Pod (no padding, so every byte is initialised); the byte
    // slice covers exactly the same memory and lifetime as `v`.
    unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<u8>(), core::mem::size_of_val(v)) }
}

/// Reads a `T` at byte offset `off`; the caller has checked the bounds.
fn read_at<T: Pod>(bytes: &[u8], off: usize) -> T {
    let b = &bytes[off..off + size_of::<T>()];
    // SAFETY: `b` holds exactly size_of::<T>() bytes (the slice above is
    // bounds-checked) and T is Pod, so any bytes form a valid T; the read is
    // unaligned-safe.
    unsafe { b.as_ptr().cast::<T>().read_unaligned() }
}

impl PlanHeader {
    /// The header's bytes as they go into the plan.
    pub fn as_bytes(&self) -> &[u8] {
        bytes_of(core::slice::from_ref(self))
    }
}

/// Bytes of a slice of regions, as they go into the plan.
pub fn regions_bytes(r: &[PlanRegion]) -> &[u8] {
    bytes_of(r)
}

/// Bytes of a slice of extents, as they go into the plan.
pub fn extents_bytes(e: &[PlanExtent]) -> &[u8] {
    bytes_of(e)
}

/// Bytes of a slice of specials, as they go into the plan.
pub fn specials_bytes(s: &[PlanSpecial]) -> &[u8] {
    bytes_of(s)
}

/// Bytes of a slice of finals, as they go into the plan.
pub fn finals_bytes(f: &[PlanFinal]) -> &[u8] {
    bytes_of(f)
}

/// Total plan length for the given counts, or None on overflow.
pub fn plan_len(n_regions: u64, n_extents: u64, n_specials: u64, n_finals: u64) -> Option<u64> {
    let r = n_regions.checked_mul(size_of::<PlanRegion>() as u64)?;
    let e = n_extents.checked_mul(size_of::<PlanExtent>() as u64)?;
    let s = n_specials.checked_mul(size_of::<PlanSpecial>() as u64)?;
    let f = n_finals.checked_mul(size_of::<PlanFinal>() as u64)?;
    (size_of::<PlanHeader>() as u64)
        .checked_add(r)?
        .checked_add(e)?
        .checked_add(s)?
        .checked_add(f)
}

/// Writes a plan: `header` (with its counts replaced by the slices' lengths),
/// then the records, through `out` (called a few times, in order).
pub fn write_plan(
    header: &PlanHeader,
    regions: &[PlanRegion],
    extents: &[PlanExtent],
    specials: &[PlanSpecial],
    finals: &[PlanFinal],
    out: &mut impl FnMut(&[u8]),
) {
    let mut h = *header;
    h.n_regions = regions.len() as u64;
    h.n_extents = extents.len() as u64;
    h.n_specials = specials.len() as u64;
    h.n_finals = finals.len() as u32;
    out(h.as_bytes());
    out(regions_bytes(regions));
    out(extents_bytes(extents));
    out(specials_bytes(specials));
    out(finals_bytes(finals));
}

/// Entry point of the reader.
pub struct Plan;

/// A validated plan over borrowed bytes (any alignment).
#[derive(Clone, Copy, Debug)]
pub struct PlanView<'a> {
    header: PlanHeader,
    bytes: &'a [u8],
}

const HDR: usize = size_of::<PlanHeader>();
const REG: usize = size_of::<PlanRegion>();
const EXT: usize = size_of::<PlanExtent>();
const SPE: usize = size_of::<PlanSpecial>();
const FIN: usize = size_of::<PlanFinal>();

fn overlaps(a0: u64, a1: u64, b0: u64, b1: u64) -> bool {
    a0 < b1 && b0 < a1
}

fn page_aligned(v: u64) -> bool {
    v & (PAGE_SIZE - 1) == 0
}

impl Plan {
    /// Checks magic, version, counts against the length, and every rule the
    /// restorer relies on (see the module doc); returns a view on success.
    pub fn parse(bytes: &[u8]) -> Result<PlanView<'_>, &'static str> {
        if bytes.len() < HDR {
            return Err("plan is truncated: shorter than its header");
        }
        let header: PlanHeader = read_at(bytes, 0);
        if header.magic != PLAN_MAGIC {
            return Err("plan has a bad magic number (not a ckpt restore plan)");
        }
        if header.version != PLAN_VERSION {
            return Err("plan version differs from this restorer's (4)");
        }
        let Some(total) = plan_len(
            header.n_regions,
            header.n_extents,
            header.n_specials,
            header.n_finals as u64,
        ) else {
            return Err("plan record counts overflow");
        };
        if (bytes.len() as u64) < total {
            return Err("plan is truncated: shorter than its record counts say");
        }
        if (bytes.len() as u64) > total {
            return Err("plan has trailing bytes after its records");
        }
        let view = PlanView { header, bytes };
        view.validate()?;
        Ok(view)
    }

    /// The whole length of the plan whose header `head` holds (at least a
    /// header's bytes), or None when it is not a plan of this version.
    pub fn len_of(head: &[u8]) -> Option<u64> {
        if head.len() < HDR {
            return None;
        }
        let h: PlanHeader = read_at(head, 0);
        if h.magic != PLAN_MAGIC || h.version != PLAN_VERSION {
            return None;
        }
        plan_len(h.n_regions, h.n_extents, h.n_specials, h.n_finals as u64)
    }

    /// A view on a plan the restorer has validated already (the restarted
    /// program reading its finals from the restorer's mapping): only its
    /// magic, version and length are checked again.
    pub fn validated(bytes: &[u8]) -> Result<PlanView<'_>, &'static str> {
        match Self::len_of(bytes) {
            Some(n) if n == bytes.len() as u64 => Ok(PlanView {
                header: read_at(bytes, 0),
                bytes,
            }),
            _ => Err("not a whole plan of this version"),
        }
    }
}

impl<'a> PlanView<'a> {
    pub fn header(&self) -> &PlanHeader {
        &self.header
    }

    /// The plan's bytes (header included).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn n_regions(&self) -> usize {
        self.header.n_regions as usize
    }

    pub fn n_extents(&self) -> usize {
        self.header.n_extents as usize
    }

    pub fn n_specials(&self) -> usize {
        self.header.n_specials as usize
    }

    /// Region `i` (panics if out of range).
    pub fn region(&self, i: usize) -> PlanRegion {
        assert!(i < self.n_regions());
        read_at(self.bytes, HDR + i * REG)
    }

    /// Extent `i` (panics if out of range).
    pub fn extent(&self, i: usize) -> PlanExtent {
        assert!(i < self.n_extents());
        read_at(self.bytes, HDR + self.n_regions() * REG + i * EXT)
    }

    /// Special `i` (panics if out of range).
    pub fn special(&self, i: usize) -> PlanSpecial {
        assert!(i < self.n_specials());
        read_at(
            self.bytes,
            HDR + self.n_regions() * REG + self.n_extents() * EXT + i * SPE,
        )
    }

    pub fn n_finals(&self) -> usize {
        self.header.n_finals as usize
    }

    /// Final `i` (panics if out of range).
    pub fn final_(&self, i: usize) -> PlanFinal {
        assert!(i < self.n_finals());
        read_at(
            self.bytes,
            HDR + self.n_regions() * REG
                + self.n_extents() * EXT
                + self.n_specials() * SPE
                + i * FIN,
        )
    }

    pub fn finals(&self) -> impl Iterator<Item = PlanFinal> + '_ {
        (0..self.n_finals()).map(move |i| self.final_(i))
    }

    pub fn regions(&self) -> impl Iterator<Item = PlanRegion> + '_ {
        (0..self.n_regions()).map(move |i| self.region(i))
    }

    pub fn extents(&self) -> impl Iterator<Item = PlanExtent> + '_ {
        (0..self.n_extents()).map(move |i| self.extent(i))
    }

    pub fn specials(&self) -> impl Iterator<Item = PlanSpecial> + '_ {
        (0..self.n_specials()).map(move |i| self.special(i))
    }

    /// The region containing `addr` (regions are sorted: binary search).
    pub fn region_containing(&self, addr: u64) -> Option<PlanRegion> {
        let (mut lo, mut hi) = (0usize, self.n_regions());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = self.region(mid);
            if addr < r.start {
                hi = mid;
            } else if addr >= r.end {
                lo = mid + 1;
            } else {
                return Some(r);
            }
        }
        None
    }

    fn validate(&self) -> Result<(), &'static str> {
        let h = &self.header;
        let reserve_end = RESTORER_BASE + RESERVE_LEN;
        let mut prev_end = 0u64;
        for r in self.regions() {
            if r.start >= r.end || !page_aligned(r.start) || !page_aligned(r.end) {
                return Err("a region is empty or not page aligned");
            }
            if r.end > USER_TOP {
                return Err("a region lies outside x86_64 user space");
            }
            if r.start < prev_end {
                return Err("regions overlap or are not sorted");
            }
            prev_end = r.end;
            if overlaps(r.start, r.end, RESTORER_BASE, reserve_end) {
                return Err("a region overlaps the restorer's reserved range 0x7e0000000000+64MiB");
            }
            if r.prot & !(PROT_READ | PROT_WRITE | PROT_EXEC) != 0 {
                return Err("a region has unknown PROT bits");
            }
            if r.flags & !REGION_FLAGS_ALLOWED != 0 {
                return Err("a region has unsupported MAP flags");
            }
            let kind = r.flags & (MAP_SHARED | MAP_PRIVATE);
            if kind != MAP_SHARED && kind != MAP_PRIVATE {
                return Err("a region must be exactly one of MAP_SHARED and MAP_PRIVATE");
            }
            if (r.fd < 0) != (r.flags & MAP_ANONYMOUS != 0) {
                return Err("a region must have MAP_ANONYMOUS exactly when its fd is -1");
            }
            if r.fd < 0 && r.fd != -1 {
                return Err("a region has a negative fd other than -1");
            }
            if r.fd >= 0 && !page_aligned(r.offset) {
                return Err("a file-backed region's offset is not page aligned");
            }
            if r.paged != 0 && r.paged != REGION_PAGED {
                return Err("a region has an unknown paged value");
            }
            if r.is_paged() && (r.fd >= 0 || h.pager_fd < 0) {
                return Err("a paged region must be anonymous, in a plan with a pager");
            }
        }
        if h.pager_fd < -1 || h.uffd_dev < -1 {
            return Err("plan has a negative pager or userfaultfd descriptor other than -1");
        }
        if h.uffd_dev >= 0 && h.pager_fd < 0 {
            return Err("plan has a /dev/userfaultfd descriptor but no pager");
        }
        if h.lazy > 1 || (h.lazy == 1 && h.pager_fd < 0) {
            return Err("plan asks for a lazy restart without a pager");
        }
        if h.n_extents > 0 && h.image_fd < 0 {
            return Err("plan has extents but no image fd");
        }
        for e in self.extents() {
            if e.fd < 0 {
                return Err("an extent has no image fd");
            }
            if e.len == 0
                || !page_aligned(e.addr)
                || !page_aligned(e.len)
                || !page_aligned(e.file_offset)
            {
                return Err("an extent is empty or not page aligned");
            }
            if !matches!(e.file_offset.checked_add(e.len), Some(v) if v <= i64::MAX as u64) {
                return Err("an extent's file range overflows");
            }
            let Some(end) = e.addr.checked_add(e.len) else {
                return Err("an extent's address range overflows");
            };
            match self.region_containing(e.addr) {
                Some(r) if end <= r.end => {
                    if r.is_shared_file() {
                        return Err("an extent targets a shared file mapping (copying would write the file)");
                    }
                    if r.is_paged() {
                        return Err("an extent targets a region the pager fills");
                    }
                }
                _ => return Err("an extent does not lie inside one region"),
            }
        }
        if h.n_specials > MAX_SPECIALS {
            return Err("plan names too many special mappings");
        }
        for (i, s) in self.specials().enumerate() {
            let name = s.name_bytes();
            if name.len() < 3 || name[0] != b'[' || name[name.len() - 1] != b']' {
                return Err("a special mapping's name is not of the form [name]");
            }
            if s.len == 0
                || s.len > SPECIAL_SCRATCH_STRIDE
                || !page_aligned(s.start)
                || !page_aligned(s.len)
            {
                return Err("a special mapping is empty, too large or not page aligned");
            }
            if !matches!(s.start.checked_add(s.len), Some(e) if e <= USER_TOP) {
                return Err("a special mapping lies outside x86_64 user space");
            }
            if overlaps(s.start, s.end(), RESTORER_BASE, reserve_end) {
                return Err("a special mapping overlaps the restorer's reserved range");
            }
            for r in self.regions() {
                if overlaps(s.start, s.end(), r.start, r.end) {
                    return Err("a special mapping overlaps a region");
                }
            }
            for t in self.specials().take(i) {
                if t.name_bytes() == name {
                    return Err("a special mapping is named twice");
                }
                if overlaps(s.start, s.end(), t.start, t.end()) {
                    return Err("special mappings overlap");
                }
            }
        }
        for f in self.finals() {
            if !matches!(f.kind, FINAL_GUARD | FINAL_SEAL | FINAL_POLICY) {
                return Err("a final step has an unknown kind");
            }
            if f.len == 0 || !page_aligned(f.start) || !page_aligned(f.len) {
                return Err("a final step's range is empty or not page aligned");
            }
            let Some(end) = f.start.checked_add(f.len) else {
                return Err("a final step's range overflows");
            };
            match self.region_containing(f.start) {
                Some(r) if end <= r.end => {
                    if f.kind != FINAL_GUARD && (r.start != f.start || r.end != end) {
                        return Err("a seal or policy does not cover exactly one region");
                    }
                }
                _ => return Err("a final step's range does not lie inside one region"),
            }
        }
        match self.region_containing(h.entry) {
            Some(r) if r.prot & PROT_EXEC != 0 => {}
            _ => return Err("the entry point is not inside an executable region"),
        }
        if h.entry_stack & 15 != 0 {
            return Err("the entry stack is not 16-byte aligned");
        }
        match self.region_containing(h.entry_stack.wrapping_sub(8)) {
            Some(r) if r.prot & PROT_WRITE != 0 => {}
            _ => return Err("the entry stack is not inside a writable region"),
        }
        if h.mm.auxv_len & 1 != 0 || h.mm.auxv_len > AUXV_WORDS as u64 {
            return Err("auxv length must be even and at most 128 words");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
