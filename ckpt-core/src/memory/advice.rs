//! Advice the kernel keeps on a mapping, other than fork's (see
//! `fork_advice`): MADV_DONTDUMP (OpenSSL's secure heap keeps secrets out
//! of core dumps), MADV_HUGEPAGE and MADV_NOHUGEPAGE, MADV_SEQUENTIAL and
//! MADV_RANDOM (readahead), MADV_MERGEABLE (KSM). A restart maps memory
//! anew, without it; so the ranges carrying each are found at checkpoint
//! and advised again after a restart.
//!
//! Verbs: `record` (the madvise wrapper: such advice was given), `snapshot`
//! (frozen: the ranges, from smaps, read only once advice was given),
//! `restore` (post-restart).
//!
//! Advice given by the C library's own calls (not through its exported
//! `madvise`, as malloc's hugetlb tunable does) is not seen.

use crate::image::RangeAdvice;
use core::sync::atomic::{AtomicBool, Ordering::*};

/// Set once the program gave such advice: only then is the costly
/// /proc/self/smaps (a page-table walk, ~10 ms per GiB) read.
static GIVEN: AtomicBool = AtomicBool::new(false);

/// smaps VmFlags mnemonics and the advice that sets each.
const KEPT: [(&str, i32); 6] = [
    ("dd", libc::MADV_DONTDUMP),
    ("hg", libc::MADV_HUGEPAGE),
    ("nh", libc::MADV_NOHUGEPAGE),
    ("sr", libc::MADV_SEQUENTIAL),
    ("rr", libc::MADV_RANDOM),
    ("mg", libc::MADV_MERGEABLE),
];

/// Whether a madvise of `advice` is one this module keeps.
pub fn kept(advice: i32) -> bool {
    KEPT.iter().any(|&(_, a)| a == advice)
}

/// The program gave advice this module keeps. Signal-safe: one store.
pub fn record() {
    GIVEN.store(true, Relaxed);
}

/// The ranges carrying kept advice. Frozen context (scratch allocation).
pub fn snapshot() -> Vec<RangeAdvice> {
    if !GIVEN.load(Relaxed) {
        return Vec::new();
    }
    let Ok(smaps) = crate::names::read_proc("/proc/self/smaps") else {
        return Vec::new();
    };
    let own: Vec<(usize, usize)> = super::locked::own_mappings().collect();
    parse(&smaps)
        .into_iter()
        .filter(|a| {
            !own.iter()
                .any(|&(s, e)| (a.start as usize) < e && (a.end as usize) > s)
        })
        .collect()
}

/// Give the recorded advice again. Post-restart; a refusal is said.
pub fn restore(ranges: &[RangeAdvice]) {
    for a in ranges {
        for &advice in &a.advice {
            // SAFETY: advice about how the kernel treats these pages (not
            // their contents or protection); the range is the program's.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_madvise,
                    a.start,
                    a.end.saturating_sub(a.start),
                    advice,
                )
            };
            if r != 0 {
                crate::restart_report::warn(&format!(
                    "memory {:#x}-{:#x}: its advice {} cannot be given again: {}",
                    a.start,
                    a.end,
                    name(advice),
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    if !ranges.is_empty() {
        record();
    }
}

fn name(advice: i32) -> &'static str {
    match advice {
        libc::MADV_DONTDUMP => "MADV_DONTDUMP",
        libc::MADV_HUGEPAGE => "MADV_HUGEPAGE",
        libc::MADV_NOHUGEPAGE => "MADV_NOHUGEPAGE",
        libc::MADV_SEQUENTIAL => "MADV_SEQUENTIAL",
        libc::MADV_RANDOM => "MADV_RANDOM",
        libc::MADV_MERGEABLE => "MADV_MERGEABLE",
        _ => "?",
    }
}

/// The ranges of smaps `text` with kept advice. The kernel's own mappings
/// ([vvar], [vdso]: don't-dump by nature) and device mappings (`io`,
/// `pf`) are not the program's advice.
fn parse(text: &str) -> Vec<RangeAdvice> {
    let kernels: Vec<u64> = text
        .lines()
        .filter(|l| {
            l.ends_with("[vvar]")
                || l.ends_with("[vdso]")
                || l.ends_with("[vsyscall]")
                || l.ends_with("[vvar_vclock]")
        })
        .filter_map(|l| u64::from_str_radix(l.split('-').next()?, 16).ok())
        .collect();
    super::vm_flags(text)
        .into_iter()
        .filter(|(start, _, flags)| {
            !kernels.contains(start) && !flags.iter().any(|f| *f == "io" || *f == "pf")
        })
        .filter_map(|(start, end, flags)| {
            let advice: Vec<i32> = KEPT
                .iter()
                .filter(|(m, _)| flags.contains(m))
                .map(|&(_, a)| a)
                .collect();
            (!advice.is_empty()).then_some(RangeAdvice { start, end, advice })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_is_read_from_smaps_flags() {
        let text = "\
7f0000000000-7f0000400000 rw-p 00000000 00:00 0 
Size:               4096 kB
VmFlags: rd wr mr mw me dd ac 
7f0000400000-7f0000800000 rw-p 00000000 00:00 0 
VmFlags: rd wr mr mw me ac hg sr 
7f0000800000-7f0000801000 rw-p 00000000 00:00 0 
VmFlags: rd wr mr mw me ac 
7ffc00000000-7ffc00002000 r--p 00000000 00:00 0                          [vvar]
VmFlags: rd mr pf io de dd 
7ffc00002000-7ffc00004000 r-xp 00000000 00:00 0                          [vdso]
VmFlags: rd ex mr mw me de dd 
";
        assert_eq!(
            parse(text),
            [
                RangeAdvice {
                    start: 0x7f00_0000_0000,
                    end: 0x7f00_0040_0000,
                    advice: vec![libc::MADV_DONTDUMP],
                },
                RangeAdvice {
                    start: 0x7f00_0040_0000,
                    end: 0x7f00_0080_0000,
                    advice: vec![libc::MADV_HUGEPAGE, libc::MADV_SEQUENTIAL],
                },
            ]
        );
    }
}
