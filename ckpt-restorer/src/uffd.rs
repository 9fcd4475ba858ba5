//! Copy image extents into fresh anonymous memory with userfaultfd's
//! UFFDIO_COPY: the kernel allocates each page and fills it from the image
//! in one step, where populate-then-pread first zeroes every page and then
//! copies over it (on this machine zeroing 1 GiB alone takes ~300 ms).
//! The source is a window of the image mapped inside the restorer's own
//! range. Anything the kernel refuses (no userfaultfd, an old kernel)
//! returns an error and the caller copies the plain way.

use crate::sys::{self, Errno};
use ckpt_restorer::plan::RESTORER_BASE;

const SYS_USERFAULTFD: usize = 323;
const SYS_IOCTL: usize = 16;
const UFFD_USER_MODE_ONLY: usize = 1;
const UFFD_API: u64 = 0xAA;
const UFFDIO_API: usize = 0xc018_aa3f;
const UFFDIO_REGISTER: usize = 0xc020_aa00;
const UFFDIO_COPY: usize = 0xc028_aa03;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
/// UFFD_FEATURE_EVENT_REMAP | _EVENT_REMOVE | _EVENT_UNMAP: what a lazy
/// restart's pager must hear of while the program runs (an mremap,
/// MADV_DONTNEED or munmap of pages it has not filled yet).
const LAZY_FEATURES: u64 = (1 << 2) | (1 << 3) | (1 << 6);
/// `USERFAULTFD_IOC_NEW` = _IO(0xAA, 0x00), on an open /dev/userfaultfd.
const USERFAULTFD_IOC_NEW: usize = 0xAA00;

/// Where image windows are mapped, one per copying thread: free space of
/// the restorer's range.
pub const WINDOWS: [u64; 2] = [RESTORER_BASE + (4 << 20), RESTORER_BASE + (8 << 20)];
const WINDOW_LEN: u64 = 4 << 20;

/// An open userfaultfd.
pub struct Uffd(i32);

impl Uffd {
    pub fn open() -> Result<Uffd, Errno> {
        // SAFETY: userfaultfd takes flags only.
        let fd = sys::check(unsafe {
            sys::syscall6(
                SYS_USERFAULTFD,
                sys::O_CLOEXEC | UFFD_USER_MODE_ONLY,
                0,
                0,
                0,
                0,
                0,
            )
        })? as i32;
        let u = Uffd(fd);
        // struct uffdio_api { api, features, ioctls }
        let mut api = [UFFD_API, 0, 0];
        u.ioctl(UFFDIO_API, api.as_mut_ptr() as usize)?;
        Ok(u)
    }

    /// A userfaultfd for this process's memory that the pager (another
    /// process) serves: from /dev/userfaultfd `dev` when open (faults the
    /// kernel takes, a read(2) into a missing page, are handled too:
    /// `true`), else from the syscall limited to user-mode faults
    /// (`false`). Made before anything is unmapped: it belongs to this
    /// mm, whatever becomes of its mappings. `lazy`: the program will run
    /// while the pager fills, so the pager hears of mremap, madvise
    /// removals and munmap of registered ranges.
    pub fn open_for_pager(dev: i32, lazy: bool) -> Result<(Uffd, bool), Errno> {
        let (fd, kernel) = if dev >= 0 {
            // SAFETY: USERFAULTFD_IOC_NEW takes the new descriptor's flags by value.
            let r = unsafe {
                sys::syscall6(
                    SYS_IOCTL,
                    dev as usize,
                    USERFAULTFD_IOC_NEW,
                    sys::O_CLOEXEC,
                    0,
                    0,
                    0,
                )
            };
            (sys::check(r)? as i32, true)
        } else {
            // Lazy without /dev/userfaultfd: the restart command saw that
            // this system lets anyone's userfaultfd take kernel faults
            // (vm.unprivileged_userfaultfd = 1); else user-mode only.
            let flags = if lazy {
                sys::O_CLOEXEC
            } else {
                sys::O_CLOEXEC | UFFD_USER_MODE_ONLY
            };
            // SAFETY: userfaultfd takes flags only.
            let r = unsafe { sys::syscall6(SYS_USERFAULTFD, flags, 0, 0, 0, 0, 0) };
            (sys::check(r)? as i32, lazy)
        };
        let u = Uffd(fd);
        let mut api = [UFFD_API, if lazy { LAZY_FEATURES } else { 0 }, 0];
        u.ioctl(UFFDIO_API, api.as_mut_ptr() as usize)?;
        Ok((u, kernel))
    }

    /// The descriptor (still owned by `self`).
    pub fn raw(&self) -> i32 {
        self.0
    }

    fn ioctl(&self, req: usize, arg: usize) -> Result<usize, Errno> {
        // SAFETY: a userfaultfd ioctl with a struct of the size its number encodes.
        sys::check(unsafe { sys::syscall6(SYS_IOCTL, self.0 as usize, req, arg, 0, 0, 0) })
    }

    /// Ask to fill missing pages of `[start, start+len)` ourselves.
    pub fn register(&self, start: u64, len: u64) -> Result<(), Errno> {
        // struct uffdio_register { range { start, len }, mode, ioctls }
        let mut reg = [start, len, UFFDIO_REGISTER_MODE_MISSING, 0];
        self.ioctl(UFFDIO_REGISTER, reg.as_mut_ptr() as usize)
            .map(|_| ())
    }

    /// Fill `[addr, addr+len)` (registered, still missing) from image
    /// `fd` at `file_offset`, through image window `window` (one of
    /// `WINDOWS`, used by no other thread). `mapped` says which 4 MiB of
    /// which file the window shows now ((-1, 0): nothing); extents that
    /// follow each other in one file reuse it instead of mapping again.
    pub fn copy_extent(
        &self,
        fd: i32,
        addr: u64,
        len: u64,
        file_offset: u64,
        window: u64,
        mapped: &mut (i32, u64),
    ) -> Result<(), Errno> {
        let mut done = 0;
        while done < len {
            let at = file_offset + done;
            let shown = mapped.0 == fd && at >= mapped.1 && at < mapped.1 + WINDOW_LEN;
            if !shown {
                // SAFETY: the window lies in the restorer's own range, which
                // holds nothing else there.
                unsafe {
                    sys::mmap(
                        window,
                        WINDOW_LEN,
                        sys::PROT_READ,
                        sys::MAP_PRIVATE | sys::MAP_FIXED,
                        fd,
                        at,
                    )
                }?;
                *mapped = (fd, at);
            }
            let src = window + (at - mapped.1);
            let n = (len - done).min(mapped.1 + WINDOW_LEN - at);
            let mut off = 0;
            while off < n {
                // struct uffdio_copy { dst, src, len, mode, copy }
                let mut c = [addr + done + off, src + off, n - off, 0, 0];
                let r = self.ioctl(UFFDIO_COPY, c.as_mut_ptr() as usize);
                let copied = c[4] as i64;
                match r {
                    Ok(_) => off = n,
                    Err(Errno(sys::EAGAIN)) if copied > 0 => off += copied as u64,
                    Err(e) => return Err(e),
                }
            }
            done += n;
        }
        Ok(())
    }
}

impl Drop for Uffd {
    fn drop(&mut self) {
        // Closing unregisters every range.
        let _ = sys::close(self.0);
    }
}
