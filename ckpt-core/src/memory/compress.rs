//! Compressed extents (`ckpt run --compress[=lz4|zstd]`).
//!
//! Verbs: `configure` (start-up, from `CKPT_COMPRESS`, or the API),
//! `Compressor::compress` (writer: one extent, at most 1 MiB, at a time),
//! `read_extent` / `decompress` (restart: back to the bytes the program had).
//!
//! Each stored run of pages is compressed on its own into one block that
//! starts on a page of the image and is padded with zeros to the next
//! one: unchanged blocks stay byte-identical and page-aligned across
//! generations (the database store shares them), and an incremental image
//! can refer to any page of a block of an earlier one (`Extent::skip`).
//! A block that would not save at least a page is stored as it is.
//!
//! Writer context (a fork of the frozen program): no libc malloc. lz4 is
//! pure Rust and allocates its small hash table from the writer's arena
//! (freed at once, which the arena takes back); zstd's context lives in a
//! workspace mapped here (`ZSTD_initStaticCCtx`), so it never allocates.

use crate::image::{Codec, Extent, PAGE};
use crate::sys;
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::*,
};
use zstd_safe::zstd_sys;

/// zstd's level: its fastest regular one. Level 3 (the library's default)
/// compresses a few percent better at about half the speed, and the
/// writer's time is what the user waits for.
pub const ZSTD_LEVEL: i32 = 1;

/// Largest block the writer makes (one extent's run).
pub const MAX_BLOCK: u64 = 1 << 20;

static CODEC: AtomicU8 = AtomicU8::new(0);

/// The codec for images from now on (`None`: stored as they are).
pub fn configure(codec: Option<Codec>) {
    CODEC.store(codec.map_or(0, |c| c as u8), Relaxed);
}

/// The codec set by [`configure`].
pub fn current() -> Option<Codec> {
    Codec::from_u8(CODEC.load(Relaxed))
}

/// Start-up: `CKPT_COMPRESS` = `lz4`, `zstd` (or `1`: zstd), `none`/`0`.
/// Returns what was wrong with a value it did not take.
pub fn configure_from_env() -> Result<(), String> {
    let Some(v) = std::env::var_os("CKPT_COMPRESS") else {
        return Ok(());
    };
    let v = v.to_string_lossy();
    let codec = match v.as_ref() {
        "" | "0" => None,
        "1" => Some(Codec::Zstd),
        s => Codec::parse(s).map_err(|e| format!("CKPT_COMPRESS: {e}"))?,
    };
    configure(codec);
    Ok(())
}

/// Compresses extents for one image (writer context; see the module).
pub struct Compressor {
    codec: Codec,
    out: &'static mut [u8],
    zstd: *mut zstd_sys::ZSTD_CCtx,
}

/// Bytes of output room for a block of `n` bytes, either codec.
fn bound(n: usize) -> usize {
    // SAFETY: a pure function of its argument.
    let z = unsafe { zstd_sys::ZSTD_compressBound(n) };
    z.max(lz4_flex::block::get_maximum_output_size(n))
}

/// An anonymous private mapping of `len` bytes (writer context: no malloc).
fn map(len: usize) -> Result<&'static mut [u8], String> {
    sys::map_anon(len).ok_or_else(|| "cannot map the compression buffers".to_string())
}

impl Compressor {
    pub fn new(codec: Codec) -> Result<Compressor, String> {
        let out = map(bound(MAX_BLOCK as usize))?;
        let mut zstd = core::ptr::null_mut();
        if codec == Codec::Zstd {
            // SAFETY: pure size computation.
            let need = unsafe { zstd_sys::ZSTD_estimateCCtxSize(ZSTD_LEVEL) };
            let work = map(need)?;
            // SAFETY: `work` is `need` bytes, 8-byte aligned (a fresh
            // mapping), kept for the writer's life.
            zstd = unsafe { zstd_sys::ZSTD_initStaticCCtx(work.as_mut_ptr().cast(), need) };
            if zstd.is_null() {
                return Err("cannot set up zstd".into());
            }
        }
        Ok(Compressor { codec, out, zstd })
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// `input` compressed, when that saves at least a page once padded.
    pub fn compress(&mut self, input: &[u8]) -> Option<&[u8]> {
        let n = match self.codec {
            Codec::Lz4 => lz4_flex::block::compress_into(input, self.out).ok()?,
            Codec::Zstd => {
                // SAFETY: the context was made by initStaticCCtx; both
                // buffers are live with the lengths given.
                let r = unsafe {
                    zstd_sys::ZSTD_compressCCtx(
                        self.zstd,
                        self.out.as_mut_ptr().cast(),
                        self.out.len(),
                        input.as_ptr().cast(),
                        input.len(),
                        ZSTD_LEVEL,
                    )
                };
                // SAFETY: a pure function of the code.
                if unsafe { zstd_sys::ZSTD_isError(r) } != 0 {
                    return None;
                }
                r
            }
        };
        let padded = (n as u64).div_ceil(PAGE) * PAGE;
        (padded + PAGE <= input.len() as u64).then(|| &self.out[..n])
    }
}

// ---- the writer's compressing threads ----
//
// The writer is one thread (a fork of the program's checkpointing thread);
// compressing is the slow part of a compressed checkpoint, so it starts
// threads of its own, one per CPU it may run on: it copies each run of
// pages into a free slot of a ring, a thread compresses it, and the writer
// writes the slots out in order. The threads are raw clones sharing the
// writer's memory (no libc thread: a fork of a program whose other threads
// were frozen may hold libc's locks); they run only `Compressor::compress`
// on their slots, take nothing but the arena (lz4's table), and end before
// `Pool::finish` returns.

/// A slot's life: free → filled (the writer) → taken (a thread) → done →
/// written out and free again (the writer).
const FREE: u32 = 0;
const FILLED: u32 = 1;
const TAKEN: u32 = 2;
const DONE: u32 = 3;

struct Slot {
    state: AtomicU32,
    addr: AtomicU64,
    len: AtomicUsize,
    /// Compressed length, 0: store as is.
    packed: AtomicUsize,
    input: *mut u8,
    out: *mut u8,
}

/// What the writer and its threads share.
struct Shared {
    slots: Vec<Slot>,
    codec: Codec,
    out_len: usize,
    /// Bumped when a slot is filled (the threads wait on it).
    work: AtomicU32,
    /// Bumped when a slot is done (the writer waits on it).
    done: AtomicU32,
    stop: AtomicBool,
    /// Each thread's tid, cleared by the kernel when it ends.
    tids: Vec<AtomicI32>,
}

// SAFETY: the raw buffers of a slot are touched only by whoever owns the
// slot's current state (the writer when free or done, one thread when
// taken), handed over with Release/Acquire on `state`.
unsafe impl Sync for Shared {}

/// A writer's compressing threads and their ring of slots.
pub struct Pool {
    shared: &'static Shared,
    /// Inline compressor when no thread could be started.
    inline: Option<Compressor>,
    next_fill: usize,
    next_out: usize,
}

/// A run of pages written out in order: its address, its bytes, and its
/// compressed form when that saves space.
pub struct Packed<'a> {
    pub addr: u64,
    pub plain: &'a [u8],
    pub packed: Option<&'a [u8]>,
    pub codec: Codec,
}

/// CPUs this process may run on (1 when unknown).
fn cpus() -> usize {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    // SAFETY: as above, with its exact size.
    let r =
        unsafe { libc::sched_getaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return 1;
    }
    // SAFETY: `set` was filled by the kernel.
    (unsafe { libc::CPU_COUNT(&set) }).max(1) as usize
}

impl Pool {
    /// Threads for `codec`, as many as CPUs (at most 8); none on one CPU.
    pub fn new(codec: Codec) -> Result<Pool, String> {
        let threads = cpus().min(8);
        let n_slots = 2 * threads + 2;
        let out_len = bound(MAX_BLOCK as usize);
        let mut slots = Vec::with_capacity(n_slots);
        for _ in 0..n_slots {
            slots.push(Slot {
                state: AtomicU32::new(FREE),
                addr: AtomicU64::new(0),
                len: AtomicUsize::new(0),
                packed: AtomicUsize::new(0),
                input: map(MAX_BLOCK as usize)?.as_mut_ptr(),
                out: map(out_len)?.as_mut_ptr(),
            });
        }
        let mut tids = Vec::with_capacity(threads);
        tids.resize_with(if threads > 1 { threads } else { 0 }, || AtomicI32::new(0));
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            slots,
            codec,
            out_len,
            work: AtomicU32::new(0),
            done: AtomicU32::new(0),
            stop: AtomicBool::new(false),
            tids,
        }));
        let mut started = 0;
        for i in 0..shared.tids.len() {
            let Ok(c) = Compressor::new(codec) else { break };
            // The thread's own compressor, handed over through a leaked box.
            let job: &'static mut Job = Box::leak(Box::new(Job { shared, c, me: i }));
            if spawn(job).is_err() {
                break;
            }
            started += 1;
        }
        let inline = if started == 0 {
            Some(Compressor::new(codec)?)
        } else {
            None
        };
        Ok(Pool {
            shared,
            inline,
            next_fill: 0,
            next_out: 0,
        })
    }

    /// Queue `len` bytes at `addr` (`fill` writes them into the slot);
    /// runs queued before are handed to `emit` in order as they finish.
    pub fn submit(
        &mut self,
        addr: u64,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
        emit: &mut dyn FnMut(Packed) -> Result<(), String>,
    ) -> Result<(), String> {
        let n = self.shared.slots.len();
        if let Some(c) = self.inline.as_mut() {
            let slot = &self.shared.slots[0];
            // SAFETY: no thread runs: the writer owns every slot.
            let input = unsafe { core::slice::from_raw_parts_mut(slot.input, len) };
            fill(input);
            let codec = c.codec();
            let packed = c.compress(input);
            return emit(Packed {
                addr,
                plain: input,
                packed,
                codec,
            });
        }
        while self.next_fill - self.next_out >= n {
            self.write_one(emit)?;
        }
        let slot = &self.shared.slots[self.next_fill % n];
        // SAFETY: the slot is free (written out): the writer owns it.
        let input = unsafe { core::slice::from_raw_parts_mut(slot.input, len) };
        fill(input);
        slot.addr.store(addr, Relaxed);
        slot.len.store(len, Relaxed);
        slot.state.store(FILLED, Release);
        self.next_fill += 1;
        self.shared.work.fetch_add(1, Release);
        sys::futex_wake_all(&self.shared.work);
        Ok(())
    }

    /// Hand every queued run to `emit`, in order.
    pub fn drain(
        &mut self,
        emit: &mut dyn FnMut(Packed) -> Result<(), String>,
    ) -> Result<(), String> {
        while self.next_out < self.next_fill {
            self.write_one(emit)?;
        }
        Ok(())
    }

    /// Wait for the oldest queued run and hand it to `emit`.
    fn write_one(
        &mut self,
        emit: &mut dyn FnMut(Packed) -> Result<(), String>,
    ) -> Result<(), String> {
        let sh = self.shared;
        let slot = &sh.slots[self.next_out % sh.slots.len()];
        loop {
            let seen = sh.done.load(Acquire);
            if slot.state.load(Acquire) == DONE {
                break;
            }
            sys::futex_wait(&sh.done, seen, 0);
        }
        let (len, packed) = (slot.len.load(Relaxed), slot.packed.load(Relaxed));
        // SAFETY: the slot is done: its thread has let go of it (Acquire above).
        let plain = unsafe { core::slice::from_raw_parts(slot.input, len) };
        // SAFETY: as above; `packed` bytes were written by the thread.
        let z = (packed > 0).then(|| unsafe { core::slice::from_raw_parts(slot.out, packed) });
        let r = emit(Packed {
            addr: slot.addr.load(Relaxed),
            plain,
            packed: z,
            codec: sh.codec,
        });
        slot.state.store(FREE, Release);
        self.next_out += 1;
        r
    }

    /// Stop the threads and wait until every one has ended.
    pub fn finish(self) {
        let sh = self.shared;
        sh.stop.store(true, Release);
        sh.work.fetch_add(1, Release);
        sys::futex_wake_all(&sh.work);
        for t in &sh.tids {
            while t.load(Acquire) != 0 {
                // SAFETY: sched_yield takes no argument.
                unsafe { libc::sched_yield() };
            }
        }
    }
}

/// One thread's start: the ring and its compressor.
struct Job {
    shared: &'static Shared,
    c: Compressor,
    me: usize,
}

const STACK_LEN: usize = 1 << 20;

/// Start a raw thread running `worker(job)`. Writer context.
fn spawn(job: &'static mut Job) -> Result<(), String> {
    let stack = map(STACK_LEN)?;
    let top = stack.as_mut_ptr() as usize + STACK_LEN;
    let tid = &job.shared.tids[job.me];
    // SAFETY: a fresh stack of our own; `worker` uses no libc, TLS or
    // errno, and `job` lives for the whole writer.
    unsafe { sys::spawn_raw_thread(top, tid.as_ptr(), worker, job as *mut Job as usize) }
        .map_err(|e| format!("cannot start a compressing thread: errno {}", -e))
}

/// A compressing thread: take filled slots until told to stop.
/// Writer context: no libc, no lock, no panic.
extern "C" fn worker(job: usize) {
    // SAFETY: `spawn` passes a `&'static mut Job` only this thread uses.
    let job = unsafe { &mut *(job as *mut Job) };
    let sh = job.shared;
    loop {
        let seen = sh.work.load(Acquire);
        let mut took = false;
        for slot in &sh.slots {
            if slot
                .state
                .compare_exchange(FILLED, TAKEN, Acquire, Relaxed)
                .is_err()
            {
                continue;
            }
            took = true;
            let len = slot.len.load(Relaxed);
            // SAFETY: the slot is taken by this thread: its buffers are ours
            // until `DONE` is stored.
            let input = unsafe { core::slice::from_raw_parts(slot.input, len) };
            let n = job.c.compress(input).map_or(0, |z| {
                // SAFETY: as above; `out_len` is the slot's output room and
                // `z` (at most `bound(len)` bytes) lives in this compressor.
                let out = unsafe { core::slice::from_raw_parts_mut(slot.out, sh.out_len) };
                out[..z.len()].copy_from_slice(z);
                z.len()
            });
            slot.packed.store(n, Relaxed);
            slot.state.store(DONE, Release);
            sh.done.fetch_add(1, Release);
            sys::futex_wake_all(&sh.done);
        }
        if !took {
            if sh.stop.load(Acquire) {
                return;
            }
            sys::futex_wait(&sh.work, seen, 0);
        }
    }
}

/// Decompress `input` (codec `codec`) into exactly `out.len()` bytes.
pub fn decompress(codec: u8, input: &[u8], out: &mut [u8]) -> Result<(), String> {
    let got = match Codec::from_u8(codec) {
        Some(Codec::Lz4) => {
            lz4_flex::block::decompress_into(input, out).map_err(|e| format!("lz4: {e}"))?
        }
        Some(Codec::Zstd) => zstd_safe::decompress(out, input)
            .map_err(|c| format!("zstd: {}", zstd_safe::get_error_name(c)))?,
        None => return Err(format!("unknown compression {codec}")),
    };
    if got != out.len() {
        return Err(format!(
            "a block decompresses to {got} bytes, not the {} it should",
            out.len()
        ));
    }
    Ok(())
}

/// Read `e`'s pages from `fd` (the file its `src` names) into `out`
/// (`e.len` bytes), decompressing its block if it is one.
pub fn read_extent(fd: i32, e: &Extent, out: &mut [u8]) -> Result<(), String> {
    if e.codec == 0 {
        return read_exact_at(fd, out, e.file_offset);
    }
    if e.block > 64 * MAX_BLOCK || e.skip + out.len() as u64 > e.block {
        return Err(format!(
            "the block of the memory at {:#x} is malformed",
            e.addr
        ));
    }
    let mut stored = vec![0u8; e.stored as usize];
    read_exact_at(fd, &mut stored, e.file_offset)?;
    let mut block = vec![0u8; e.block as usize];
    decompress(e.codec, &stored, &mut block)
        .map_err(|why| format!("the memory at {:#x} cannot be decompressed: {why}", e.addr))?;
    out.copy_from_slice(&block[e.skip as usize..e.skip as usize + out.len()]);
    Ok(())
}

fn read_exact_at(fd: i32, buf: &mut [u8], at: u64) -> Result<(), String> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: pread into a live buffer of the given length.
        let n = unsafe {
            libc::pread(
                fd,
                buf[done..].as_mut_ptr().cast(),
                buf.len() - done,
                (at + done as u64) as i64,
            )
        };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return Err(format!(
                "cannot read {} bytes of the image at {}",
                buf.len(),
                at + done as u64
            ));
        }
        done += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..MAX_BLOCK as usize)
            .map(|i| ((i / 7) as u8).wrapping_mul(31) & 0x3f)
            .collect()
    }

    #[test]
    fn blocks_come_back_exactly_with_either_codec() {
        for codec in [Codec::Lz4, Codec::Zstd] {
            let data = sample();
            let mut c = Compressor::new(codec).unwrap();
            let z = c.compress(&data).expect("compressible").to_vec();
            assert!(z.len() < data.len() / 2, "{codec:?}: {}", z.len());
            let mut back = vec![0u8; data.len()];
            decompress(codec as u8, &z, &mut back).unwrap();
            assert_eq!(back, data);
            // A wrong length or a damaged block is refused, never garbage.
            let mut short = vec![0u8; data.len() - 4096];
            assert!(decompress(codec as u8, &z, &mut short).is_err());
            let mut bad = z.clone();
            bad.truncate(bad.len() / 2);
            assert!(decompress(codec as u8, &bad, &mut back).is_err());
        }
    }

    #[test]
    fn incompressible_blocks_are_stored_as_they_are() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..256 << 10)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for codec in [Codec::Lz4, Codec::Zstd] {
            assert!(Compressor::new(codec).unwrap().compress(&data).is_none());
        }
    }
}
