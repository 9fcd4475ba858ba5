//! Memory the program asked fork() to leave out (MADV_DONTFORK: V8's heap
//! in node, RDMA buffers) or to hand over zeroed (MADV_WIPEONFORK). The
//! image is written by a forked child, which would miss those bytes; so
//! while the program is frozen such ranges are made ordinary for the one
//! fork of the writer, then advised back. After a restart the advice is
//! given again, so the program's own forks behave as before.
//!
//! Verbs: `record` (the madvise wrapper: some advice of this kind was
//! given), `snapshot` (find the ranges, expose them to the fork), `restore`
//! (advise them again: after the fork, and after a restart).

use crate::image::ForkAdvice;
use core::sync::atomic::{AtomicBool, Ordering::*};

/// Set once the program gave either advice: only then is the costly
/// /proc/self/smaps (a page-table walk, ~10 ms per GiB) read at checkpoint.
static GIVEN: AtomicBool = AtomicBool::new(false);

/// The program called madvise(MADV_DONTFORK or MADV_WIPEONFORK).
/// Signal-safe: one atomic store.
pub fn record() {
    GIVEN.store(true, Relaxed);
}

/// Find the ranges that carry either advice and make them fork like any
/// other memory. Runs while the program is frozen (allocates from the
/// scratch arena only). Returns what `restore` must put back.
pub fn snapshot() -> Vec<ForkAdvice> {
    if !GIVEN.load(Relaxed) {
        return Vec::new();
    }
    let Ok(smaps) = crate::names::read_proc("/proc/self/smaps") else {
        return Vec::new();
    };
    let ranges = parse_smaps(&smaps);
    for a in &ranges {
        let undo = if a.wipe {
            libc::MADV_KEEPONFORK
        } else {
            libc::MADV_DOFORK
        };
        // Device mappings refuse (EINVAL) and stay out of the fork: they
        // cannot be restored anyway.
        advise(a, undo);
    }
    ranges
}

/// Give the recorded advice again.
pub fn restore(ranges: &[ForkAdvice]) {
    for a in ranges {
        let advice = if a.wipe {
            libc::MADV_WIPEONFORK
        } else {
            libc::MADV_DONTFORK
        };
        advise(a, advice);
    }
    if !ranges.is_empty() {
        record();
    }
}

fn advise(a: &ForkAdvice, advice: i32) {
    // SAFETY: changes only how fork() treats these pages (not their
    // contents or protection); the range comes from the kernel's list.
    unsafe {
        libc::syscall(
            libc::SYS_madvise,
            a.start,
            a.end.saturating_sub(a.start),
            advice,
        )
    };
}

/// The ranges whose VmFlags hold `dc` (don't copy) or `wf` (wipe on fork).
fn parse_smaps(text: &str) -> Vec<ForkAdvice> {
    super::vm_flags(text)
        .into_iter()
        .filter_map(|(start, end, flags)| {
            if flags.contains(&"wf") {
                Some(ForkAdvice {
                    start,
                    end,
                    wipe: true,
                })
            } else if flags.contains(&"dc") {
                Some(ForkAdvice {
                    start,
                    end,
                    wipe: false,
                })
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaps_flags_are_found() {
        let text = "\
13b04f80000-13b04fc0000 rw-p 00000000 00:00 0 
Size:                256 kB
VmFlags: rd wr mr mw me dc nr 
3ba3c600000-3ba3c640000 rw-p 00000000 00:00 0 
Size:                256 kB
VmFlags: rd wr mr mw me ac 
7f0000000000-7f0000001000 rw-p 00000000 00:00 0 
VmFlags: rd wr mr mw me wf 
";
        let r = parse_smaps(text);
        assert_eq!(
            r,
            [
                ForkAdvice {
                    start: 0x13b04f80000,
                    end: 0x13b04fc0000,
                    wipe: false
                },
                ForkAdvice {
                    start: 0x7f0000000000,
                    end: 0x7f0000001000,
                    wipe: true
                }
            ]
        );
    }
}
