//! `--keep N` with incremental images: exactly N stay (and, beside them,
//! the bases they take most of their pages from).
//!
//! An incremental image takes unchanged pages from earlier images
//! ([`Meta::deps`]). When the images beyond the newest N go, the kept
//! ones must first stop referring to them. A whole image they still take
//! at least half of its pages from is not copied into them: it stays as
//! a base (`STEM.base`, see [`Bases`]). Each kept image that refers to
//! another image being dropped is rewritten ("folded") so that
//!
//! - the pages it took from a dropped image are its own now (copied from
//!   there, after checking them against their checksum), unless an older
//!   kept image, rewritten before it, already holds the very same stored
//!   bytes: then it refers to that one instead (so the pages of the base
//!   are copied once, into the oldest kept image, not into every one);
//! - references into a kept image that is rewritten too name its new
//!   version (same data offsets: a rewritten image keeps its own data
//!   section as it was and appends what it takes over), and references
//!   into a new base its new name (a hard link made first: the same
//!   file, the same metadata).
//!
//! A reference into part of a compressed block of a dropped image cannot
//! become the image's own extent (an own block holds exactly its extent's
//! pages, see `verify::structure`): those pages are decompressed and
//! compressed again as a block of their own (or stored as they are when
//! that saves nothing); a reference to a whole block copies the block.
//!
//! Crash safety. A dependency names a file and the checksum of its
//! metadata, so rewriting an image changes what its dependents must name:
//! no set of renames over the old names is atomic. So a rewritten image
//! that some image refers to gets a NEW name (`NAME.f.img`, back to
//! `NAME.img` at its next fold, ...), and only images nobody refers to
//! (the newest, always) are replaced under their own name. The order:
//!
//! 1. every new version is written under a temporary name, fsynced, its
//!    times set to the old one's (generations are ordered by time);
//! 2. oldest first, each is given its name: a new one (never replacing a
//!    file), or its own (replacing an image nobody refers to); a new
//!    version only refers to files already in place;
//! 3. the old versions of renamed images go, newest first, then the
//!    dropped images (and the old names of new bases), newest first.
//!
//! At every step each image in the directory refers only to files that
//! exist with the metadata it names, and the newest one is restartable. A
//! writer killed half-way leaves extra, consistent files, which the next
//! prune removes. Anything failing before step 2 removes what it wrote and
//! leaves every file as it was.
//!
//! Writer context: a fork of the frozen program, one thread; allocation
//! goes to ckpt's arena; no libc malloc (zstd decompresses in a static
//! context on a workspace mapped here).

use crate::image::{self, Dep, Extent, Header, Meta, DATA_OFFSET};
use crate::memory::compress::{Compressor, MAX_BLOCK};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// What a fold did, for the writer's message and for tests.
#[derive(Debug, Default)]
pub struct Folded {
    /// Images rewritten.
    pub rewritten: usize,
    /// Bytes of pages copied out of dropped images.
    pub absorbed: u64,
    /// Dropped images kept as bases.
    pub based: usize,
}

/// One image read for the fold.
struct Img {
    path: PathBuf,
    name: String,
    header: Header,
    meta: Meta,
    file: std::fs::File,
}

fn read_img(path: &Path) -> Result<Img, String> {
    let (header, meta) = image::read_file(path)?;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // The file opened must be the one read (no writer but us renames
    // images of this program, but be sure).
    let mut head = [0u8; image::HEADER_LEN];
    file.read_exact_at(&mut head, 0)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if Header::decode(&head).ok() != Some(header) {
        return Err(format!("{} changed while being read", path.display()));
    }
    Ok(Img {
        name: file_name(path),
        path: path.to_path_buf(),
        header,
        meta,
        file,
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A read-only mapping of a whole file.
struct Map {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Map {
    fn new(file: &std::fs::File) -> Result<Map, String> {
        let len = file.metadata().map_err(|e| e.to_string())?.len() as usize;
        if len == 0 {
            return Ok(Map {
                ptr: core::ptr::null_mut(),
                len,
            });
        }
        // SAFETY: read-only private mapping of a file we hold open.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        Ok(Map { ptr, len })
    }

    /// `len` bytes at `at`, if the file has them.
    fn get(&self, at: u64, len: u64) -> Option<&[u8]> {
        let end = at.checked_add(len)?;
        if end > self.len as u64 {
            return None;
        }
        if len == 0 {
            return Some(&[]);
        }
        // SAFETY: inside the mapping (checked above), which lives as long
        // as `self`; the images are never written in place.
        Some(unsafe {
            core::slice::from_raw_parts((self.ptr as *const u8).add(at as usize), len as usize)
        })
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: unmapping our own mapping, no slice of it outlives self.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

/// A dropped image some kept one takes pages from.
struct Dropped {
    img: Img,
    map: Map,
    /// Its own extents, by file offset, and whether each was checked.
    own: Vec<(Extent, bool)>,
}

impl Dropped {
    fn new(img: Img) -> Result<Dropped, String> {
        let map = Map::new(&img.file)?;
        let mut own: Vec<(Extent, bool)> = img
            .meta
            .regions
            .iter()
            .flat_map(|r| &r.extents)
            .filter(|e| e.src == 0)
            .map(|e| (e.clone(), false))
            .collect();
        own.sort_unstable_by_key(|(e, _)| e.file_offset);
        Ok(Dropped { img, map, own })
    }

    /// The stored bytes reference `r` points at, each extent holding
    /// them checked against its checksum (once): for pages stored as they
    /// are, exactly theirs (they may span several extents; returned with
    /// `r` itself); for part of a compressed block, the block's extent
    /// and its footprint.
    fn stored_for(&mut self, r: &Extent) -> Result<(Extent, &[u8]), String> {
        let Dropped { img, map, own } = self;
        let bad = || {
            format!(
                "{}: no stored pages at {}+{} where a kept image refers to",
                img.name, r.file_offset, r.len
            )
        };
        let whole = map.get(0, map.len as u64).unwrap_or_default();
        let check = |o: &Extent, checked: &mut bool| {
            if !*checked && !crate::verify::stored_bytes_ok(o, whole) {
                return Err(format!(
                    "{}: the memory at {:#x} does not match its checksum",
                    img.name, o.addr
                ));
            }
            *checked = true;
            Ok(())
        };
        let first = own.partition_point(|(e, _)| e.file_offset <= r.file_offset);
        let mut i = first.checked_sub(1).ok_or_else(bad)?;
        if r.codec == 0 {
            let end = r.file_offset.checked_add(r.len).ok_or_else(bad)?;
            let mut at = r.file_offset;
            while at < end {
                let (o, checked) = own.get_mut(i).ok_or_else(bad)?;
                if o.codec != 0 || o.file_offset > at || o.file_offset + o.len <= at {
                    return Err(bad());
                }
                check(o, checked)?;
                at = o.file_offset + o.len;
                i += 1;
            }
            let bytes = map.get(r.file_offset, r.len).ok_or_else(bad)?;
            return Ok((r.clone(), bytes));
        }
        let (o, checked) = &mut own[i];
        let fits = o.file_offset == r.file_offset
            && o.codec == r.codec
            && o.stored == r.stored
            && o.block == r.block;
        if !fits {
            return Err(bad());
        }
        check(o, checked)?;
        let bytes = map.get(o.file_offset, o.footprint()).ok_or_else(bad)?;
        Ok((o.clone(), bytes))
    }
}

/// Where stored bytes of a dropped image now are, keyed by
/// (dropped image, codec, block offset (0 for pages stored as they are),
/// offset: the file offset of a page stored as it is, or the offset in
/// the decompressed block).
type Key = (usize, u8, u64, u64);

#[derive(Clone)]
struct Held {
    /// Index of the kept image holding them.
    holder: usize,
    /// How many bytes from the key on.
    len: u64,
    /// The holder's own extent for the first of them (file_offset and
    /// skip point at the key's page).
    ext: Extent,
}

fn key_of(d: usize, e: &Extent) -> Key {
    if e.codec == 0 {
        (d, 0, 0, e.file_offset)
    } else {
        (d, e.codec, e.file_offset, e.skip)
    }
}

/// References to `r` (into dropped image `d`) taken from the images
/// folded before, or None if any of its pages is held by none.
fn redirect(held: &BTreeMap<Key, Held>, d: usize, r: &Extent) -> Option<Vec<(usize, Extent)>> {
    let (kd, kc, kb, start) = key_of(d, r);
    let mut out: Vec<(usize, Extent)> = Vec::new();
    let mut done = 0;
    while done < r.len {
        let off = start + done;
        let (&(hd, hc, hb, hoff), h) = held.range(..=(kd, kc, kb, off)).next_back()?;
        if (hd, hc, hb) != (kd, kc, kb) || off >= hoff + h.len {
            return None;
        }
        let take = (r.len - done).min(hoff + h.len - off);
        let delta = off - hoff;
        let mut x = h.ext.clone();
        x.addr = r.addr + done;
        x.len = take;
        x.hash = 0;
        if x.codec == 0 {
            x.file_offset += delta;
        } else {
            x.skip += delta;
        }
        match out.last_mut() {
            Some((ph, p))
                if *ph == h.holder
                    && p.codec == x.codec
                    && p.addr + p.len == x.addr
                    && if x.codec == 0 {
                        p.file_offset + p.len == x.file_offset
                    } else {
                        p.file_offset == x.file_offset && p.skip + p.len == x.skip
                    } =>
            {
                p.len += take;
            }
            _ => out.push((h.holder, x)),
        }
        done += take;
    }
    Some(out)
}

/// Decompression of blocks of dropped images (writer context: zstd in a
/// static context on a mapped workspace, lz4 pure Rust).
struct Inflater {
    zstd: *mut zstd_safe::zstd_sys::ZSTD_DCtx,
    buf: Vec<u8>,
    /// The block in `buf`: (dropped image, file offset).
    cached: Option<(usize, u64)>,
    compressors: Vec<Compressor>,
}

impl Inflater {
    fn new() -> Inflater {
        Inflater {
            zstd: core::ptr::null_mut(),
            buf: Vec::new(),
            cached: None,
            compressors: Vec::new(),
        }
    }

    /// The decompressed block `o` (stored as `stored`) of dropped image `d`.
    fn block(&mut self, d: usize, o: &Extent, stored: &[u8]) -> Result<&[u8], String> {
        if self.cached == Some((d, o.file_offset)) {
            return Ok(&self.buf[..o.block as usize]);
        }
        self.cached = None;
        if o.block > MAX_BLOCK {
            return Err(format!(
                "a block of {} bytes is larger than any written",
                o.block
            ));
        }
        if self.buf.len() < o.block as usize {
            self.buf.resize(o.block as usize, 0);
        }
        let out = &mut self.buf[..o.block as usize];
        let got = match image::Codec::from_u8(o.codec) {
            Some(image::Codec::Lz4) => {
                lz4_flex::block::decompress_into(stored, out).map_err(|e| format!("lz4: {e}"))?
            }
            Some(image::Codec::Zstd) => {
                use zstd_safe::zstd_sys;
                if self.zstd.is_null() {
                    // SAFETY: a pure size computation.
                    let need = unsafe { zstd_sys::ZSTD_estimateDCtxSize() };
                    let work = crate::sys::map_anon(need)
                        .ok_or("cannot map the decompression workspace")?
                        .as_mut_ptr();
                    // SAFETY: `work` is `need` bytes, page aligned, kept for
                    // the writer's life (never unmapped).
                    self.zstd = unsafe { zstd_sys::ZSTD_initStaticDCtx(work.cast(), need) };
                    if self.zstd.is_null() {
                        return Err("cannot set up zstd".into());
                    }
                }
                // SAFETY: a static context made above; both buffers are
                // live with the lengths given.
                let r = unsafe {
                    zstd_sys::ZSTD_decompressDCtx(
                        self.zstd,
                        out.as_mut_ptr().cast(),
                        out.len(),
                        stored.as_ptr().cast(),
                        stored.len(),
                    )
                };
                // SAFETY: a pure function of the code.
                if unsafe { zstd_sys::ZSTD_isError(r) } != 0 {
                    return Err("zstd: a block does not decompress".into());
                }
                r
            }
            None => return Err(format!("unknown compression {}", o.codec)),
        };
        if got != o.block as usize {
            return Err("a block decompresses to the wrong length".into());
        }
        self.cached = Some((d, o.file_offset));
        Ok(&self.buf[..o.block as usize])
    }

    fn compressor(&mut self, codec: image::Codec) -> Result<&mut Compressor, String> {
        let i = match self.compressors.iter().position(|c| c.codec() == codec) {
            Some(i) => i,
            None => {
                self.compressors.push(Compressor::new(codec)?);
                self.compressors.len() - 1
            }
        };
        Ok(&mut self.compressors[i])
    }
}

/// A new version of a kept image, written under a temporary name.
struct Plan {
    /// Index of the kept image.
    of: usize,
    tmp: PathBuf,
    /// Its name once in place: its own, or a new one.
    target: PathBuf,
    in_place: bool,
}

/// The test-only stop (`CKPT_TEST_FOLD_STOP=N:PATH`): before commit step
/// N (1-based: each rename, then each removal) of the first fold that
/// gets there (the one that creates PATH), the writer stops itself with
/// SIGSTOP, for a test to kill it exactly there.
struct TestStop(Option<(u32, CString)>);

impl TestStop {
    fn from_env() -> TestStop {
        // SAFETY: getenv of a C string; the environment is not changed in
        // the writer (one thread).
        let v = unsafe { libc::getenv(c"CKPT_TEST_FOLD_STOP".as_ptr()) };
        if v.is_null() {
            return TestStop(None);
        }
        // SAFETY: getenv returned a C string that lives in the environment.
        let s = unsafe { core::ffi::CStr::from_ptr(v) }.to_string_lossy();
        let parsed = s
            .split_once(':')
            .and_then(|(n, p)| Some((n.parse().ok()?, CString::new(p).ok()?)));
        TestStop(parsed)
    }

    fn at(&self, step: u32) {
        let Some((n, path)) = &self.0 else { return };
        if *n != step {
            return;
        }
        // SAFETY: open of a C path with O_EXCL (only the first fold stops).
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC,
                0o600,
            )
        };
        if fd < 0 {
            return;
        }
        crate::sys::close(fd);
        // SAFETY: stopping ourselves (SIGSTOP cannot be blocked).
        unsafe { libc::kill(crate::sys::getpid(), libc::SIGSTOP) };
    }
}

/// Remove `dropped` (images of this program beyond the kept ones, oldest
/// first) so that every image of `kept` (oldest first, the newest last)
/// stays restartable on its own: fold first where a kept image refers to
/// a dropped one. `bases` are the program's bases (see [`Bases`]): each
/// stays while it is worth it, else it is folded or, unused, removed. On
/// an error before anything is renamed, every file is as it was (and
/// nothing is removed).
pub fn remove_dropped(
    dir: &Path,
    kept: &[PathBuf],
    dropped: &[PathBuf],
    bases: &[PathBuf],
) -> Result<Folded, String> {
    let stop = TestStop::from_env();
    // A damaged kept image refers to nothing we can follow.
    let kept: Vec<Img> = kept.iter().filter_map(|p| read_img(p).ok()).collect();
    let b = Bases::choose(dir, &kept, dropped, bases)?;
    fold_and_remove(dir, &kept, &b, &stop)
}

/// Whole images the kept ones still take at least half of their pages
/// from. Folding such an image into the kept ones copies all of that,
/// at every prune, for the few pages a checkpoint changed (1 GiB copied
/// to drop a 10 MiB image). So it stays, under a name that is not a
/// generation's (`STEM.base`: `ckpt list`, `--latest` and `--keep` count
/// `.img` files), until less than half of it is used: only then is it
/// folded, and that copy is at most the pages the images written since
/// replaced (or the program unmapped): amortized, folding costs what the
/// checkpoints wrote.
struct Bases {
    /// Dropped images to fold into the kept ones (oldest first), then
    /// remove.
    fold: Vec<PathBuf>,
    fold_names: Vec<String>,
    /// Names removed once nothing refers to them (oldest first): the
    /// folded ones, unused bases, the old names of new bases.
    remove: Vec<PathBuf>,
    /// A dropped image kept as a base: its old name, and the new one.
    moved: Vec<(String, Dep)>,
    /// The new names made (removed again if nothing comes to refer to
    /// them).
    linked: Vec<PathBuf>,
}

impl Bases {
    fn choose(
        dir: &Path,
        kept: &[Img],
        dropped: &[PathBuf],
        bases: &[PathBuf],
    ) -> Result<Bases, String> {
        let mut b = Bases {
            fold: Vec::new(),
            fold_names: Vec::new(),
            remove: Vec::new(),
            moved: Vec::new(),
            linked: Vec::new(),
        };
        // The bases there are: unused ones go, those mostly unused are
        // folded, the others stay as they are.
        for p in bases {
            let name = file_name(p);
            let used = most_taken_from(kept, &name);
            let fold = used > 0 && !read_img(p).is_ok_and(|img| worth_keeping(&img, used));
            if fold {
                b.fold.push(p.clone());
                b.fold_names.push(name);
            }
            if used == 0 || fold {
                b.remove.push(p.clone());
            }
        }
        let mut taken: Vec<String> = Vec::new();
        for p in dropped {
            let name = file_name(p);
            let used = most_taken_from(kept, &name);
            let as_named = |img: &Img| {
                kept.iter()
                    .flat_map(|k| &k.meta.deps)
                    .all(|d| d.name != name || d.meta_hash == img.header.meta_hash)
            };
            let base = match read_img(p) {
                Ok(img)
                    if used > 0
                        && img.meta.deps.is_empty()
                        && as_named(&img)
                        && worth_keeping(&img, used) =>
                {
                    Some(img.header.meta_hash)
                }
                _ => None,
            };
            if let Some(meta_hash) = base {
                let new = base_name(dir, &name, &taken)?;
                let to = dir.join(&new);
                if let Err(e) = std::fs::hard_link(p, &to) {
                    b.undo();
                    return Err(format!("cannot name {}: {e}", to.display()));
                }
                taken.push(new.clone());
                b.linked.push(to);
                b.moved.push((
                    name,
                    Dep {
                        name: new,
                        meta_hash,
                    },
                ));
            } else {
                b.fold.push(p.clone());
                b.fold_names.push(name);
            }
            b.remove.push(p.clone());
        }
        Ok(b)
    }

    /// Before anything refers to the new names: they go. (After a failed
    /// rename some may be referred to: the next prune removes those
    /// nothing uses.)
    fn undo(&self) {
        for p in &self.linked {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The most bytes of memory one kept image takes from image `name`.
fn most_taken_from(kept: &[Img], name: &str) -> u64 {
    kept.iter()
        .map(|k| {
            let Some(j) = k.meta.deps.iter().position(|d| d.name == name) else {
                return 0;
            };
            k.meta
                .regions
                .iter()
                .flat_map(|r| &r.extents)
                .filter(|e| e.src as usize == j + 1)
                .map(|e| e.len)
                .sum()
        })
        .max()
        .unwrap_or(0)
}

/// Whether a whole image of which `used` bytes are taken by a kept one
/// is kept as a base: at least half of its own pages are.
fn worth_keeping(img: &Img, used: u64) -> bool {
    let own: u64 = img
        .meta
        .regions
        .iter()
        .flat_map(|r| &r.extents)
        .filter(|e| e.src == 0)
        .map(|e| e.len)
        .sum();
    img.meta.deps.is_empty() && used.saturating_mul(2) >= own
}

/// A name for a base made of image `name`: `STEM.base`, else
/// `STEM.b2.base`, ...
fn base_name(dir: &Path, name: &str, taken: &[String]) -> Result<String, String> {
    let stem = name.strip_suffix(".img").unwrap_or(name);
    let candidates = std::iter::once(format!("{stem}.base"))
        .chain((2..100).map(|k| format!("{stem}.b{k}.base")));
    for c in candidates {
        if !taken.contains(&c) && std::fs::symlink_metadata(dir.join(&c)).is_err() {
            return Ok(c);
        }
    }
    Err(format!("no free name for a base made of {name}"))
}

/// Which kept images change: those referring to a dropped one (or to a
/// new base by its old name: `goes`), or to one that changes.
/// Dependencies are older: oldest first settles it.
fn changed_images(kept: &[Img], goes: &dyn Fn(&str) -> bool) -> Result<Vec<bool>, String> {
    let kept_index = |name: &str| kept.iter().position(|k| k.name == name);
    let mut changed = vec![false; kept.len()];
    for i in 0..kept.len() {
        for d in &kept[i].meta.deps {
            if goes(&d.name) {
                changed[i] = true;
            } else if let Some(j) = kept_index(&d.name) {
                if j >= i {
                    return Err(format!(
                        "{} refers to {}, which is not older",
                        kept[i].name, d.name
                    ));
                }
                if d.meta_hash != kept[j].header.meta_hash {
                    return Err(format!(
                        "{} refers to another {} than the one in the directory",
                        kept[i].name, d.name
                    ));
                }
                changed[i] |= changed[j];
            }
        }
    }
    Ok(changed)
}

fn fold_and_remove(dir: &Path, kept: &[Img], b: &Bases, stop: &TestStop) -> Result<Folded, String> {
    let goes = |name: &str| {
        b.fold_names.iter().any(|d| d == name) || b.moved.iter().any(|(n, _)| n == name)
    };
    let changed = match changed_images(kept, &goes) {
        Ok(c) => c,
        Err(e) => {
            b.undo();
            return Err(e);
        }
    };
    let mut folded = Folded::default();
    let mut step = 0;
    if changed.iter().any(|&c| c) {
        let mut plans = Vec::new();
        let r = write_new_versions(dir, kept, b, &changed, &mut plans, &mut folded);
        if let Err(e) = r {
            for p in &plans {
                let _ = std::fs::remove_file(&p.tmp);
            }
            b.undo();
            return Err(e);
        }
        step = commit(dir, kept, &plans, stop)?;
        folded.rewritten = plans.len();
    }
    folded.based = b.moved.len();
    // Nothing kept refers to a dropped image now: they go, newest first.
    for p in b.remove.iter().rev() {
        step += 1;
        stop.at(step);
        let _ = std::fs::remove_file(p);
    }
    sync_dir(dir);
    Ok(folded)
}

/// Step 1: the new version of each changed kept image, oldest first.
fn write_new_versions(
    dir: &Path,
    kept: &[Img],
    b: &Bases,
    changed: &[bool],
    plans: &mut Vec<Plan>,
    folded: &mut Folded,
) -> Result<(), String> {
    let (dropped, dropped_names) = (&b.fold, &b.fold_names);
    let referred: Vec<&str> = kept
        .iter()
        .flat_map(|k| k.meta.deps.iter().map(|d| d.name.as_str()))
        .collect();
    let mut drops: Vec<Option<Dropped>> = (0..dropped.len()).map(|_| None).collect();
    let mut held: BTreeMap<Key, Held> = BTreeMap::new();
    // The new (name, metadata checksum) of each changed kept image.
    let mut renamed: Vec<Option<Dep>> = vec![None; kept.len()];
    let mut taken: Vec<String> = Vec::new();
    let mut inflater = Inflater::new();
    for (i, old) in kept.iter().enumerate() {
        if !changed[i] {
            continue;
        }
        let in_place = !referred.contains(&old.name.as_str());
        let target = if in_place {
            old.name.clone()
        } else {
            fresh_name(dir, &old.name, &taken)?
        };
        taken.push(target.clone());
        let tmp = dir.join(format!(".{target}.fold.{}", crate::sys::getpid()));
        let _ = std::fs::remove_file(&tmp);
        let out = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        plans.push(Plan {
            of: i,
            tmp: tmp.clone(),
            target: dir.join(&target),
            in_place,
        });

        // Its own data stays where it is.
        let data_end = DATA_OFFSET + old.header.data_len;
        copy_range(&old.file, &out, DATA_OFFSET, old.header.data_len)?;
        let mut at = data_end;
        let mut meta = old.meta.clone();
        let mut deps: Vec<Dep> = Vec::new();
        let mut dep_index = |dep: Dep| -> u32 {
            match deps.iter().position(|d| d.name == dep.name) {
                Some(k) => k as u32 + 1,
                None => {
                    deps.push(dep);
                    deps.len() as u32
                }
            }
        };
        let mut pending: Vec<(Key, Held)> = Vec::new();
        for region in meta.regions.iter_mut() {
            let mut extents = Vec::with_capacity(region.extents.len());
            for e in region.extents.drain(..) {
                if e.src == 0 {
                    extents.push(e);
                    continue;
                }
                let dep = old
                    .meta
                    .deps
                    .get(e.src as usize - 1)
                    .ok_or_else(|| format!("{}: a reference to no earlier image", old.name))?;
                if let Some((_, base)) = b.moved.iter().find(|(n, _)| *n == dep.name) {
                    extents.push(Extent {
                        src: dep_index(base.clone()),
                        ..e
                    });
                    continue;
                }
                if let Some(d) = dropped_names.iter().position(|n| *n == dep.name) {
                    if let Some(pieces) = redirect(&held, d, &e) {
                        for (h, mut x) in pieces {
                            let to = renamed[h].clone().ok_or("a holder not yet written")?;
                            x.src = dep_index(to);
                            extents.push(x);
                        }
                        continue;
                    }
                    if drops[d].is_none() {
                        let img = read_img(&dropped[d])?;
                        if img.header.meta_hash != dep.meta_hash {
                            return Err(format!(
                                "{} refers to another {} than the one in the directory",
                                old.name, dep.name
                            ));
                        }
                        drops[d] = Some(Dropped::new(img)?);
                    }
                    let Some(dr) = drops[d].as_mut() else {
                        return Err("unreachable".into());
                    };
                    let (own, key) = absorb(dr, d, &e, &out, &mut at, &mut inflater)?;
                    folded.absorbed += own.len;
                    pending.push((
                        key,
                        Held {
                            holder: i,
                            len: own.len,
                            ext: own.clone(),
                        },
                    ));
                    extents.push(own);
                    continue;
                }
                let mut x = e;
                match kept.iter().position(|k| k.name == dep.name) {
                    Some(k) if changed[k] => {
                        let to = renamed[k].clone().ok_or("a dependency not yet written")?;
                        x.src = dep_index(to);
                    }
                    _ => x.src = dep_index(dep.clone()),
                }
                extents.push(x);
            }
            region.extents = extents;
        }
        meta.deps = deps;
        let mut encoded = Vec::new();
        image::encode_meta(&meta, &mut encoded)?;
        write_all_at(&out, &encoded, at)?;
        let mut header = image::header_for(&encoded, at, at - DATA_OFFSET);
        if !meta.deps.is_empty() {
            header.version = image::FORMAT_INCREMENTAL;
        }
        write_all_at(&out, &header.encode(), 0)?;
        let len = out.metadata().map_err(|e| e.to_string())?.len();
        crate::verify::structure(&header, &meta, len)
            .map_err(|e| format!("the folded {target} would be malformed: {e}"))?;
        out.sync_all()
            .map_err(|e| format!("fsync {}: {e}", tmp.display()))?;
        same_times(&old.file, &out)?;
        renamed[i] = Some(Dep {
            name: target,
            meta_hash: header.meta_hash,
        });
        for (k, h) in pending {
            held.insert(k, h);
        }
    }
    Ok(())
}

/// Copy what reference `e` (into dropped image `d`) points at to `out` at
/// `*at`: the own extent that replaces it, and the key of its bytes.
fn absorb(
    dr: &mut Dropped,
    d: usize,
    e: &Extent,
    out: &std::fs::File,
    at: &mut u64,
    inflater: &mut Inflater,
) -> Result<(Extent, Key), String> {
    let key = key_of(d, e);
    let (o, bytes) = dr.stored_for(e)?;
    let mut own = Extent {
        src: 0,
        file_offset: *at,
        ..e.clone()
    };
    if e.codec == 0 {
        let lo = (e.file_offset - o.file_offset) as usize;
        let b = &bytes[lo..lo + e.len as usize];
        own.hash = xxhash_rust::xxh3::xxh3_64(b);
        write_all_at(out, b, *at)?;
        *at += e.len;
    } else if e.skip == 0 && e.len == e.block {
        // The whole block: copied as it is stored (with its padding).
        own.hash = xxhash_rust::xxh3::xxh3_64(&bytes[..e.stored as usize]);
        write_all_at(out, bytes, *at)?;
        *at += o.footprint();
    } else {
        // Part of a block: those pages, compressed again on their own.
        let codec = image::Codec::from_u8(e.codec).ok_or("unknown compression")?;
        let stored = &bytes[..o.stored as usize];
        let pages = inflater.block(d, &o, stored)?;
        let pages = pages
            .get(e.skip as usize..(e.skip + e.len) as usize)
            .ok_or("a reference outside its block")?
            .to_vec();
        own.skip = 0;
        own.block = e.len;
        match inflater.compressor(codec)?.compress(&pages) {
            Some(z) => {
                own.stored = z.len() as u64;
                own.hash = xxhash_rust::xxh3::xxh3_64(z);
                write_all_at(out, z, *at)?;
            }
            None => {
                own.codec = 0;
                own.stored = 0;
                own.block = 0;
                own.hash = xxhash_rust::xxh3::xxh3_64(&pages);
                write_all_at(out, &pages, *at)?;
            }
        }
        *at += own.footprint();
    }
    Ok((own, key))
}

/// Steps 2 and 3: names, then the old versions of renamed images go.
/// Returns the number of steps taken (for the test-only stop).
fn commit(dir: &Path, kept: &[Img], plans: &[Plan], stop: &TestStop) -> Result<u32, String> {
    let mut step = 0;
    let mut installed: Vec<&Path> = Vec::new();
    let mut replaced_any = false;
    for (n, p) in plans.iter().enumerate() {
        step += 1;
        stop.at(step);
        let r = if p.in_place {
            std::fs::rename(&p.tmp, &p.target).map_err(|e| e.to_string())
        } else {
            rename_new(&p.tmp, &p.target)
        };
        if let Err(e) = r {
            for q in &plans[n..] {
                let _ = std::fs::remove_file(&q.tmp);
            }
            if !replaced_any {
                // Nothing refers to the new names yet: as it was.
                for t in &installed {
                    let _ = std::fs::remove_file(t);
                }
            }
            sync_dir(dir);
            return Err(format!("cannot name {}: {e}", p.target.display()));
        }
        replaced_any |= p.in_place;
        installed.push(&p.target);
    }
    sync_dir(dir);
    for p in plans.iter().rev().filter(|p| !p.in_place) {
        step += 1;
        stop.at(step);
        let _ = std::fs::remove_file(&kept[p.of].path);
    }
    Ok(step)
}

/// The names the versions of image `name` take: `X.f.img`, `X.img`,
/// `X.f2.img`, ... (`name` is any of them).
fn version_names(name: &str) -> impl Iterator<Item = String> {
    let stem = name.strip_suffix(".img").unwrap_or(name);
    let stem = match stem.rsplit_once(".f") {
        Some((s, n)) if n.is_empty() || n.bytes().all(|b| b.is_ascii_digit()) => s,
        _ => stem,
    }
    .to_string();
    [format!("{stem}.f.img"), format!("{stem}.img")]
        .into_iter()
        .chain((2..100).map(move |k| format!("{stem}.f{k}.img")))
}

/// A name for the new version of `name` that no file has: `X.f.img` for
/// `X.img` and back, else `X.f2.img`, ...
fn fresh_name(dir: &Path, name: &str, taken: &[String]) -> Result<String, String> {
    for c in version_names(name) {
        if c != name && !taken.contains(&c) && std::fs::symlink_metadata(dir.join(&c)).is_err() {
            return Ok(c);
        }
    }
    Err(format!("no free name for a new version of {name}"))
}

/// Where the checkpoint once written as `path`, now gone, is: an image
/// that later ones refer to gets a new name each time it is folded (see
/// the module doc), so the path `ckpt checkpoint` printed may lead
/// nowhere a moment later. None when no version of it is there (pruned).
/// Read with the directory's lock held (no fold renames meanwhile).
pub fn current_version(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    if !name.ends_with(".img") || std::fs::symlink_metadata(path).is_ok() {
        return None;
    }
    let dir = path.parent()?;
    version_names(name)
        .map(|c| dir.join(c))
        .find(|p| p.is_file())
}

fn c_path(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("{} contains NUL", p.display()))
}

/// Rename `from` to `to`, never replacing a file there.
fn rename_new(from: &Path, to: &Path) -> Result<(), String> {
    let (f, t) = (c_path(from)?, c_path(to)?);
    // SAFETY: renameat2 between two C paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::ENOSYS) {
        return Err(e.to_string());
    }
    // A file system without RENAME_NOREPLACE: link (which never replaces)
    // and unlink.
    std::fs::hard_link(from, to).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(from);
    Ok(())
}

fn write_all_at(f: &std::fs::File, b: &[u8], at: u64) -> Result<(), String> {
    f.write_all_at(b, at)
        .map_err(|e| format!("cannot write a folded image: {e}"))
}

/// `len` bytes at `at` of `from` to the same offset of `to`, in the kernel
/// where it can.
fn copy_range(from: &std::fs::File, to: &std::fs::File, at: u64, len: u64) -> Result<(), String> {
    let mut done = 0u64;
    while done < len {
        let mut off_in = (at + done) as i64;
        let mut off_out = (at + done) as i64;
        // SAFETY: copy_file_range between two descriptors we hold, with
        // offsets of our own.
        let n = unsafe {
            libc::copy_file_range(
                from.as_raw_fd(),
                &mut off_in,
                to.as_raw_fd(),
                &mut off_out,
                (len - done) as usize,
                0,
            )
        };
        if n > 0 {
            done += n as u64;
            continue;
        }
        let e = std::io::Error::last_os_error();
        if n < 0 && e.kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n == 0 {
            return Err("an image is shorter than its header says".into());
        }
        // Not across these file systems: through a buffer.
        let mut buf = vec![0u8; (len - done).min(1 << 20) as usize];
        while done < len {
            let k = buf.len().min((len - done) as usize);
            from.read_exact_at(&mut buf[..k], at + done)
                .map_err(|e| format!("cannot read an image: {e}"))?;
            write_all_at(to, &buf[..k], at + done)?;
            done += k as u64;
        }
    }
    Ok(())
}

/// Give `to` the access and modification times of `from`: generations
/// are ordered by time.
fn same_times(from: &std::fs::File, to: &std::fs::File) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let m = from.metadata().map_err(|e| e.to_string())?;
    let t = [
        libc::timespec {
            tv_sec: m.atime(),
            tv_nsec: m.atime_nsec(),
        },
        libc::timespec {
            tv_sec: m.mtime(),
            tv_nsec: m.mtime_nsec(),
        },
    ];
    // SAFETY: futimens on a descriptor we hold, with two timespecs.
    if unsafe { libc::futimens(to.as_raw_fd(), t.as_ptr()) } != 0 {
        return Err(format!("futimens: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
