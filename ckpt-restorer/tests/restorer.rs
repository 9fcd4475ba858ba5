//! Runs the real `ckpt-restorer` binary on hand-made "processes": a few bytes
//! of machine code and data in an image file, a plan in a memfd, and checks
//! what the restored code prints and how it exits. Also checks the refusals
//! and the binary's ELF layout.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use ckpt_restorer::plan::*;

const BIN: &str = env!("CARGO_BIN_EXE_ckpt-restorer");

const CODE: u64 = 0x5555_0000_0000;
const DATA: u64 = 0x5555_0001_0000;
const DATA_PAGES: u64 = 4;
const STACK_LO: u64 = 0x5555_0010_0000;
const STACK_HI: u64 = STACK_LO + 0x10000;
const SPECIAL_BASE: u64 = 0x6000_0000_0000;
const MSG: &[u8] = b"hello from restored memory\n";

// ---------------------------------------------------------------- assembler

const RAX: u8 = 0;
const RBX: u8 = 3;
const RSP: u8 = 4;
const RBP: u8 = 5;
const RSI: u8 = 6;
const RDI: u8 = 7;
const RDX: u8 = 2;
const R12: u8 = 12;
const R13: u8 = 13;
const R14: u8 = 14;
const R15: u8 = 15;

/// Just enough x86_64 encoding for the test programs.
#[derive(Default)]
struct Asm(Vec<u8>);

impl Asm {
    fn mov32(&mut self, reg: u8, imm: u32) -> &mut Self {
        if reg >= 8 {
            self.0.push(0x41);
        }
        self.0.push(0xb8 + (reg & 7));
        self.0.extend_from_slice(&imm.to_le_bytes());
        self
    }
    fn movabs(&mut self, reg: u8, imm: u64) -> &mut Self {
        self.0.push(0x48 | (reg >> 3));
        self.0.push(0xb8 + (reg & 7));
        self.0.extend_from_slice(&imm.to_le_bytes());
        self
    }
    /// mov dst, src (64-bit registers).
    fn mov(&mut self, dst: u8, src: u8) -> &mut Self {
        self.0.push(0x48 | ((src >> 3) << 2) | (dst >> 3));
        self.0
            .extend_from_slice(&[0x89, 0xc0 | ((src & 7) << 3) | (dst & 7)]);
        self
    }
    /// mov [rbp + disp8], src
    fn store_rbp(&mut self, disp: i8, src: u8) -> &mut Self {
        self.0.push(0x48 | ((src >> 3) << 2));
        self.0
            .extend_from_slice(&[0x89, 0x45 | ((src & 7) << 3), disp as u8]);
        self
    }
    /// mov rbx, [rsp]
    fn load_rbx_from_rsp(&mut self) -> &mut Self {
        self.0.extend_from_slice(&[0x48, 0x8b, 0x1c, 0x24]);
        self
    }
    fn sub_rsp8(&mut self) -> &mut Self {
        self.0.extend_from_slice(&[0x48, 0x83, 0xec, 0x08]);
        self
    }
    fn call_rax(&mut self) -> &mut Self {
        self.0.extend_from_slice(&[0xff, 0xd0]);
        self
    }
    fn syscall(&mut self) -> &mut Self {
        self.0.extend_from_slice(&[0x0f, 0x05]);
        self
    }
    fn write(&mut self, fd: u32, addr: u64, len: u32) -> &mut Self {
        self.mov32(RAX, 1)
            .mov32(RDI, fd)
            .movabs(RSI, addr)
            .mov32(RDX, len)
            .syscall()
    }
    fn exit(&mut self, code: u32) -> &mut Self {
        self.mov32(RAX, 231).mov32(RDI, code).syscall()
    }
    /// Copies the file at `path` (NUL-terminated, in restored memory) to fd 1
    /// through a buffer at `buf` of `len` bytes.
    fn cat(&mut self, path: u64, buf: u64, len: u32) -> &mut Self {
        // openat(AT_FDCWD, path, O_RDONLY); mov ebx, eax
        self.mov32(RAX, 257)
            .mov32(RDI, (-100i32) as u32)
            .movabs(RSI, path)
            .mov32(RDX, 0)
            .syscall();
        self.0.extend_from_slice(&[0x89, 0xc3]);
        let top = self.0.len();
        // read(ebx, buf, len)
        self.0.extend_from_slice(&[0x89, 0xdf]); // mov edi, ebx
        self.movabs(RSI, buf)
            .mov32(RDX, len)
            .mov32(RAX, 0)
            .syscall();
        self.0.extend_from_slice(&[0x48, 0x85, 0xc0, 0x7e, 0]); // test rax, rax; jle end
        let jle = self.0.len() - 1;
        self.0.extend_from_slice(&[0x89, 0xc2]); // mov edx, eax
        self.mov32(RDI, 1).movabs(RSI, buf).mov32(RAX, 1).syscall();
        self.0.extend_from_slice(&[0xeb, 0]); // jmp top
        let jmp = self.0.len() - 1;
        self.0[jmp] = (top as isize - (jmp as isize + 1)) as i8 as u8;
        self.0[jle] = (self.0.len() - (jle + 1)) as u8;
        self
    }
}

// ---------------------------------------------------------------- fixture

/// Offset of `name` in this process's vdso (the restorer's is the same
/// kernel's), read from the vdso's own ELF section headers.
fn vdso_symbol(name: &str) -> u64 {
    // SAFETY: getauxval has no preconditions.
    let base = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as usize;
    assert_ne!(base, 0, "no vdso");
    let len = own_specials()
        .iter()
        .find(|s| s.name_bytes() == b"[vdso]")
        .unwrap()
        .len as usize;
    // SAFETY: the vdso is mapped readable at `base` for `len` bytes for the
    // whole life of the process.
    let elf = unsafe { std::slice::from_raw_parts(base as *const u8, len) };
    let u16at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum) = (u64at(0x28), u16at(0x3a), u16at(0x3c));
    let sh = |i: usize| shoff + i * shentsize;
    for i in 0..shnum {
        if u32at(sh(i) + 4) != 11 {
            continue; // not SHT_DYNSYM
        }
        let (symoff, symsize, entsize) = (
            u64at(sh(i) + 0x18),
            u64at(sh(i) + 0x20),
            u64at(sh(i) + 0x38),
        );
        let stroff = u64at(sh(u32at(sh(i) + 0x28)) + 0x18);
        for k in 0..symsize / entsize {
            let sym = symoff + k * entsize;
            let n = stroff + u32at(sym);
            let end = n + elf[n..].iter().position(|&c| c == 0).unwrap();
            if &elf[n..end] == name.as_bytes() {
                return u64at(sym + 8) as u64;
            }
        }
    }
    panic!("{name} not in the vdso");
}

/// The test process's own special mappings, moved to SPECIAL_BASE keeping
/// their relative layout (the vdso finds its data pages by offset).
fn own_specials() -> Vec<PlanSpecial> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut found = Vec::new();
    for line in maps.lines() {
        let name = line.split_whitespace().nth(5).unwrap_or("");
        if ["[vdso]", "[vvar]", "[vvar_vclock]"].contains(&name) {
            let (a, b) = line
                .split_whitespace()
                .next()
                .unwrap()
                .split_once('-')
                .unwrap();
            let a = u64::from_str_radix(a, 16).unwrap();
            let b = u64::from_str_radix(b, 16).unwrap();
            found.push((name.to_string(), a, b - a));
        }
    }
    assert!(found.iter().any(|f| f.0 == "[vdso]"), "no [vdso] in {maps}");
    let low = found.iter().map(|f| f.1).min().unwrap();
    found
        .iter()
        .map(|(n, a, l)| PlanSpecial::new(n.as_bytes(), SPECIAL_BASE + (a - low), *l))
        .collect()
}

fn anon(start: u64, end: u64, prot: u32) -> PlanRegion {
    PlanRegion {
        start,
        end,
        prot,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
        fd: -1,
        paged: 0,
        offset: 0,
    }
}

struct Fixture {
    header: PlanHeader,
    regions: Vec<PlanRegion>,
    extents: Vec<PlanExtent>,
    specials: Vec<PlanSpecial>,
    image: File,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn clear_cloexec(fd: i32) {
    // SAFETY: plain fcntl on a descriptor we own.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    assert_eq!(r, 0, "fcntl F_SETFD");
}

impl Fixture {
    /// Image: page 0 = code, page 1 = data page (MSG at 0, a path at 0x100,
    /// "/proc/self/comm" at 0x200). Regions: code (RX) + data (RW, 4 pages) + stack.
    fn new(code: &[u8]) -> Fixture {
        assert!(code.len() <= 4096);
        let mut img = vec![0u8; 0x2000];
        img[..code.len()].copy_from_slice(code);
        img[0x1000..0x1000 + MSG.len()].copy_from_slice(MSG);
        img[0x1100..0x1110].copy_from_slice(b"/proc/self/maps\0");
        img[0x1200..0x1210].copy_from_slice(b"/proc/self/comm\0");
        let dir = env!("CARGO_TARGET_TMPDIR");
        let path = format!(
            "{dir}/restorer-image-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        File::create(&path).unwrap().write_all(&img).unwrap();
        let image = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        clear_cloexec(image.as_raw_fd());

        let mut header = PlanHeader::new();
        header.image_fd = image.as_raw_fd();
        header.entry = CODE;
        header.entry_arg = 0x1122_3344_5566_7788;
        header.entry_stack = STACK_HI;
        header.set_comm(b"restored-prog");
        let mm = &mut header.mm;
        mm.start_code = CODE;
        mm.end_code = CODE + 0x1000;
        mm.start_data = DATA;
        mm.end_data = DATA + DATA_PAGES * 0x1000;
        mm.start_brk = mm.end_data;
        mm.brk = mm.end_data;
        mm.start_stack = STACK_HI - 0x100;
        mm.arg_start = STACK_HI - 0x80;
        mm.arg_end = STACK_HI - 0x70;
        mm.env_start = STACK_HI - 0x70;
        mm.env_end = STACK_HI - 0x60;
        mm.auxv[..4].copy_from_slice(&[6, 4096, 0, 0]); // AT_PAGESZ, AT_NULL
        mm.auxv_len = 4;
        let mut stack = anon(STACK_LO, STACK_HI, PROT_READ | PROT_WRITE);
        stack.flags |= MAP_GROWSDOWN;
        Fixture {
            header,
            regions: vec![
                anon(CODE, CODE + 0x1000, PROT_READ | PROT_EXEC),
                anon(DATA, DATA + DATA_PAGES * 0x1000, PROT_READ | PROT_WRITE),
                stack,
            ],
            extents: vec![
                PlanExtent {
                    addr: CODE,
                    len: 0x1000,
                    file_offset: 0,
                    fd: image.as_raw_fd(),
                    _pad: 0,
                },
                PlanExtent {
                    addr: DATA,
                    len: 0x1000,
                    file_offset: 0x1000,
                    fd: image.as_raw_fd(),
                    _pad: 0,
                },
            ],
            specials: own_specials(),
            image,
        }
    }

    fn plan_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_plan(
            &self.header,
            &self.regions,
            &self.extents,
            &self.specials,
            &[],
            &mut |b: &[u8]| out.extend_from_slice(b),
        );
        out
    }

    /// Runs the restorer on `plan` (written into a fresh memfd).
    fn run_raw(&self, plan: &[u8]) -> (Output, i32) {
        let name = CString::new("ckpt-plan").unwrap();
        // SAFETY: memfd_create with a valid C string; the fd is owned below.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
        assert!(fd >= 0, "memfd_create");
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let mut memfd = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        memfd.write_all(plan).unwrap();
        let out = Command::new(BIN).arg(fd.to_string()).output().unwrap();
        drop(memfd);
        (out, fd)
    }

    fn run(&self) -> (Output, i32) {
        self.run_raw(&self.plan_bytes())
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---------------------------------------------------------------- restores

#[test]
fn restores_and_runs_hand_made_process() {
    let mut a = Asm::default();
    a.write(1, DATA, MSG.len() as u32).exit(42);
    let fx = Fixture::new(&a.0);
    let (out, _) = fx.run();
    assert_eq!(out.status.code(), Some(42), "stderr: {}", stderr(&out));
    assert_eq!(out.stdout, MSG);
    assert_eq!(
        stderr(&out),
        "",
        "no warning expected (PR_SET_MM_MAP, PR_SET_NAME)"
    );
}

#[test]
fn entry_registers_stack_fds_maps_and_name() {
    let out_addr = DATA + 0x1000; // data page 1: zero-filled, no extent
    let buf = DATA + 0x2000; // data pages 2-3
    let mut a = Asm::default();
    a.mov(R12, RDI)
        .mov(R13, RSI)
        .mov(R14, RDX)
        .mov(R15, RSP)
        .load_rbx_from_rsp();
    a.movabs(RBP, out_addr);
    a.store_rbp(0, R12)
        .store_rbp(8, R13)
        .store_rbp(16, R14)
        .store_rbp(24, R15)
        .store_rbp(32, RBX);
    // fcntl(plan_fd, F_GETFD), fcntl(image_fd, F_GETFD); the plan fd is patched in below.
    a.mov32(RAX, 72);
    let plan_fd_imm = a.0.len() + 1; // imm32 of the `mov edi` that follows
    a.mov32(RDI, 0xdead)
        .mov32(RSI, 1)
        .syscall()
        .store_rbp(40, RAX);
    a.mov32(RAX, 72)
        .mov(RDI, R13)
        .mov32(RSI, 1)
        .syscall()
        .store_rbp(48, RAX);
    // clock_gettime(CLOCK_MONOTONIC, out+56) through the moved vdso.
    let vdso_new = own_specials()
        .iter()
        .find(|s| s.name_bytes() == b"[vdso]")
        .unwrap()
        .start;
    a.sub_rsp8()
        .movabs(RAX, vdso_new + vdso_symbol("__vdso_clock_gettime"));
    a.mov32(RDI, 1)
        .movabs(RSI, out_addr + 56)
        .call_rax()
        .store_rbp(72, RAX);
    a.write(1, out_addr, 80).write(1, DATA, MSG.len() as u32);
    a.cat(DATA + 0x100, buf, 0x2000)
        .cat(DATA + 0x200, buf, 0x2000)
        .exit(42);

    // The plan fd number is known only once the memfd exists: create it
    // here and patch the number into the code.
    let name = CString::new("ckpt-plan").unwrap();
    // SAFETY: memfd_create with a valid C string; the fd is owned below.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    assert!(fd >= 0);
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let mut memfd = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    a.0[plan_fd_imm..plan_fd_imm + 4].copy_from_slice(&(fd as u32).to_le_bytes());

    let mut fx = Fixture::new(&a.0);
    // Map the code straight from the image file (file-backed, no extent).
    fx.extents.remove(0);
    fx.regions[0].fd = fx.image.as_raw_fd();
    fx.regions[0].flags = MAP_PRIVATE;
    fx.regions[0].offset = 0;
    memfd.write_all(&fx.plan_bytes()).unwrap();
    let out = Command::new(BIN).arg(fd.to_string()).output().unwrap();
    drop(memfd);

    assert_eq!(
        out.status.code(),
        Some(42),
        "{:?} stdout {:?} stderr: {}",
        out.status,
        out.stdout,
        stderr(&out)
    );
    assert_eq!(stderr(&out), "");
    let so = &out.stdout;
    let word = |i: usize| u64::from_le_bytes(so[i * 8..i * 8 + 8].try_into().unwrap());
    assert_eq!(word(0), 0x1122_3344_5566_7788, "rdi = entry_arg");
    assert_eq!(word(1), fx.image.as_raw_fd() as u64, "rsi = image fd");
    assert_eq!(word(2), PLAN_MAP_ADDR, "rdx = plan mapping");
    assert_eq!(
        word(3),
        STACK_HI - 8,
        "rsp = entry_stack - 8 (as after a call)"
    );
    assert_eq!(word(4), 0, "zero return address");
    assert_eq!(word(5) as i64, -9, "plan fd closed (EBADF)");
    assert_eq!(word(6), 0, "image fd still open, no FD_CLOEXEC");
    assert_eq!(
        word(9),
        0,
        "clock_gettime through the moved vdso returned 0"
    );
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `now`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let secs = word(7) as i64;
    assert!(
        secs > 0 && (now.tv_sec - secs).abs() <= 10,
        "vdso time {secs} vs {}",
        now.tv_sec
    );
    assert_eq!(&so[80..80 + MSG.len()], MSG, "data extent restored");

    let text = String::from_utf8_lossy(&so[80 + MSG.len()..]).into_owned();
    let (maps, comm) = text.trim_end().rsplit_once('\n').unwrap();
    println!("maps of the restored process:\n{maps}");
    assert_eq!(comm, "restored-prog");
    let reserve_end = RESTORER_BASE + RESERVE_LEN;
    let mut names = Vec::new();
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (a, b) = f.next().unwrap().split_once('-').unwrap();
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        let name = f.nth(4).unwrap_or("");
        if a >= RESTORER_BASE && b <= reserve_end {
            continue; // the restorer itself and the plan mapping
        }
        if name == "[vsyscall]" {
            continue;
        }
        if let Some(s) = fx
            .specials
            .iter()
            .find(|s| s.name_bytes() == name.as_bytes())
        {
            assert_eq!(
                (a, b),
                (s.start, s.end()),
                "{name} moved to the plan's address"
            );
            names.push(name.to_string());
            continue;
        }
        let r = fx
            .regions
            .iter()
            .find(|r| r.start == a && r.end == b)
            .unwrap_or_else(|| panic!("unexpected mapping left over: {line}\n{maps}"));
        let perms = &line[line.find(' ').unwrap() + 1..][..3];
        let want = format!(
            "{}{}{}",
            if r.prot & PROT_READ != 0 { 'r' } else { '-' },
            if r.prot & PROT_WRITE != 0 { 'w' } else { '-' },
            if r.prot & PROT_EXEC != 0 { 'x' } else { '-' }
        );
        assert_eq!(perms, want, "final protection of {line}");
    }
    assert_eq!(
        names.len(),
        fx.specials.len(),
        "all specials present:\n{maps}"
    );
}

// ---------------------------------------------------------------- refusals

fn refused(out: &Output, want: &str) {
    let e = stderr(out);
    assert_eq!(out.status.code(), Some(70), "stderr: {e}");
    assert!(out.stdout.is_empty());
    assert_eq!(e.lines().count(), 1, "exactly one line: {e:?}");
    assert!(e.starts_with("ckpt-restorer: "), "{e:?}");
    assert!(e.contains(want), "{e:?} should mention {want:?}");
}

fn trivial() -> Fixture {
    let mut a = Asm::default();
    a.exit(0);
    Fixture::new(&a.0)
}

#[test]
fn refuses_bad_magic() {
    let fx = trivial();
    let mut p = fx.plan_bytes();
    p[0] ^= 0xff;
    refused(&fx.run_raw(&p).0, "bad magic");
}

#[test]
fn refuses_wrong_version() {
    let mut fx = trivial();
    fx.header.version = ckpt_restorer::plan::PLAN_VERSION + 1;
    refused(&fx.run().0, "version");
}

#[test]
fn refuses_truncated_plan() {
    let fx = trivial();
    let p = fx.plan_bytes();
    refused(&fx.run_raw(&p[..p.len() - 8]).0, "truncated");
    refused(&fx.run_raw(&p[..200]).0, "truncated");
}

#[test]
fn refuses_overlapping_regions() {
    let mut fx = trivial();
    fx.regions[1].start = CODE;
    refused(&fx.run().0, "overlap");
}

#[test]
fn refuses_region_in_reserved_range() {
    let mut fx = trivial();
    fx.regions.push(anon(
        RESTORER_BASE + 0x10000,
        RESTORER_BASE + 0x20000,
        PROT_READ,
    ));
    refused(&fx.run().0, "reserved range");
}

#[test]
fn refuses_other_vdso_layout() {
    let mut fx = trivial();
    let vdso = fx
        .specials
        .iter_mut()
        .find(|s| s.name_bytes() == b"[vdso]")
        .unwrap();
    vdso.len += 0x1000;
    refused(
        &fx.run().0,
        "this kernel's vdso layout differs from the image's: [vdso] is",
    );

    let mut fx = trivial();
    fx.specials.retain(|s| s.name_bytes() != b"[vdso]");
    refused(
        &fx.run().0,
        "this kernel's vdso layout differs from the image's: this kernel has [vdso]",
    );

    let mut fx = trivial();
    fx.specials
        .push(PlanSpecial::new(b"[vfoo]", SPECIAL_BASE - 0x10000, 0x1000));
    refused(
        &fx.run().0,
        "the image has [vfoo] (4096 bytes), this kernel has none",
    );
}

#[test]
fn refuses_bad_arguments() {
    let out = Command::new(BIN).arg("12x").output().unwrap();
    refused(&out, "argument '12x' is not a plan descriptor number");
    let out = Command::new(BIN).output().unwrap();
    refused(&out, "usage");
    let out = Command::new(BIN).arg("987").output().unwrap();
    refused(&out, "cannot fstat plan descriptor 987");
}

// ---------------------------------------------------------------- ELF

#[test]
fn binary_is_static_exec_at_fixed_base() {
    let elf = std::fs::read(BIN).unwrap();
    let u16at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap());
    let u32at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "ELFCLASS64");
    assert_eq!(u16at(16), 2, "e_type ET_EXEC");
    assert_eq!(u16at(18), 62, "EM_X86_64");
    let entry = u64at(24);
    assert!(
        (RESTORER_BASE..SPECIAL_SCRATCH_ADDR).contains(&entry),
        "entry {entry:#x}"
    );
    let (phoff, phentsize, phnum) = (u64at(32) as usize, u16at(54) as usize, u16at(56) as usize);
    let mut loads = 0;
    for i in 0..phnum {
        let p = phoff + i * phentsize;
        let (ty, vaddr, memsz) = (u32at(p), u64at(p + 16), u64at(p + 40));
        assert_ne!(ty, 3, "PT_INTERP present");
        assert_ne!(ty, 2, "PT_DYNAMIC present");
        if ty == 1 {
            loads += 1;
            assert!(
                vaddr >= RESTORER_BASE && vaddr + memsz <= SPECIAL_SCRATCH_ADDR,
                "PT_LOAD {vaddr:#x}+{memsz:#x}"
            );
        }
    }
    assert!(loads >= 1);
}

/// The kernel keeps at most AT_VECTOR_SIZE (56 on x86_64 6.18) auxv words:
/// a longer auxv makes PR_SET_MM_MAP fail, which must only warn.
#[test]
fn mm_map_failure_is_only_a_warning() {
    let mut a = Asm::default();
    a.write(1, DATA, MSG.len() as u32).exit(42);
    let mut fx = Fixture::new(&a.0);
    fx.header.mm.auxv_len = 56;
    let (out, _) = fx.run();
    assert_eq!((out.status.code(), stderr(&out).as_str()), (Some(42), ""));
    fx.header.mm.auxv_len = 128;
    let (out, _) = fx.run();
    assert_eq!(out.status.code(), Some(42), "stderr: {}", stderr(&out));
    assert_eq!(out.stdout, MSG);
    assert_eq!(
        stderr(&out),
        "ckpt-restorer: warning: PR_SET_MM_MAP: errno 22\n"
    );
}

/// Errors after the old address space is gone exit 71 with one line.
#[test]
fn fails_with_71_after_point_of_no_return() {
    let mut fx = trivial();
    fx.extents[1].file_offset = 0x10_0000; // past the end of the image
    let (out, _) = fx.run();
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(71), "stderr: {e}");
    assert_eq!(e.lines().count(), 1, "{e:?}");
    assert!(
        e.starts_with("ckpt-restorer: the image ends before extent 0x555500010000"),
        "{e:?}"
    );

    let mut fx = trivial();
    fx.regions[1].fd = 999;
    fx.regions[1].flags = MAP_PRIVATE;
    let (out, _) = fx.run();
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(71), "stderr: {e}");
    assert!(
        e.starts_with(
            "ckpt-restorer: cannot map region 0x555500010000-0x555500014000 (fd 999, 16 KiB): errno 9"
        ),
        "{e:?}"
    );
}
