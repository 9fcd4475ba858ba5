use super::*;

const CODE: u64 = 0x5555_0000_0000;
const DATA: u64 = 0x5555_0001_0000;
const STACK: u64 = 0x5555_0010_0000;

fn sample() -> (
    PlanHeader,
    Vec<PlanRegion>,
    Vec<PlanExtent>,
    Vec<PlanSpecial>,
) {
    let mut h = PlanHeader::new();
    h.image_fd = 3;
    h.entry = CODE + 0x10;
    h.entry_arg = 7;
    h.entry_stack = STACK + 0x4000;
    h.mm.auxv_len = 2;
    h.mm.auxv[0] = 6;
    h.mm.auxv[1] = 4096;
    h.set_comm(b"a-rather-long-program-name");
    let regions = vec![
        PlanRegion {
            start: CODE,
            end: CODE + 0x1000,
            prot: PROT_READ | PROT_EXEC,
            flags: MAP_PRIVATE | MAP_ANONYMOUS,
            fd: -1,
            paged: 0,
            offset: 0,
        },
        PlanRegion {
            start: DATA,
            end: DATA + 0x2000,
            prot: PROT_READ | PROT_WRITE,
            flags: MAP_PRIVATE | MAP_ANONYMOUS,
            fd: -1,
            paged: 0,
            offset: 0,
        },
        PlanRegion {
            start: STACK,
            end: STACK + 0x4000,
            prot: PROT_READ | PROT_WRITE,
            flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN,
            fd: -1,
            paged: 0,
            offset: 0,
        },
    ];
    let extents = vec![
        PlanExtent {
            addr: CODE,
            len: 0x1000,
            file_offset: 0,
            fd: 3,
            _pad: 0,
        },
        PlanExtent {
            addr: DATA + 0x1000,
            len: 0x1000,
            file_offset: 0x1000,
            fd: 3,
            _pad: 0,
        },
    ];
    let specials = vec![
        PlanSpecial::new(b"[vvar]", 0x6000_0000_0000, 0x4000),
        PlanSpecial::new(b"[vdso]", 0x6000_0000_4000, 0x2000),
    ];
    (h, regions, extents, specials)
}

fn build(h: &PlanHeader, r: &[PlanRegion], e: &[PlanExtent], s: &[PlanSpecial]) -> Vec<u8> {
    let mut out = Vec::new();
    write_plan(h, r, e, s, &[], &mut |b: &[u8]| out.extend_from_slice(b));
    out
}

#[test]
fn roundtrip() {
    let (h, r, e, s) = sample();
    let bytes = build(&h, &r, &e, &s);
    assert_eq!(bytes.len() as u64, plan_len(3, 2, 2, 0).unwrap());
    let v = Plan::parse(&bytes).expect("valid plan");
    assert_eq!(v.n_regions(), 3);
    assert_eq!(v.header().n_extents, 2);
    assert_eq!(v.header().entry, h.entry);
    assert_eq!(v.header().mm, h.mm);
    assert_eq!(&v.header().comm, b"a-rather-long-p\0");
    assert_eq!(v.regions().collect::<Vec<_>>(), r);
    assert_eq!(v.extents().collect::<Vec<_>>(), e);
    assert_eq!(v.specials().collect::<Vec<_>>(), s);
    assert_eq!(v.special(1).name_bytes(), b"[vdso]");
    assert_eq!(v.region_containing(DATA + 0x1fff), Some(r[1]));
    assert_eq!(v.region_containing(DATA + 0x2000), None);
}

#[test]
fn parse_accepts_unaligned_buffers() {
    let (h, r, e, s) = sample();
    let bytes = build(&h, &r, &e, &s);
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(&bytes);
    let v = Plan::parse(&shifted[1..]).expect("valid plan at odd address");
    assert_eq!(v.region(2), r[2]);
}

fn expect_err(bytes: &[u8], want: &str) {
    match Plan::parse(bytes) {
        Ok(_) => panic!("plan accepted, wanted error containing {want:?}"),
        Err(e) => assert!(e.contains(want), "error {e:?} does not contain {want:?}"),
    }
}

fn with(
    f: impl FnOnce(&mut PlanHeader, &mut Vec<PlanRegion>, &mut Vec<PlanExtent>, &mut Vec<PlanSpecial>),
) -> Vec<u8> {
    let (mut h, mut r, mut e, mut s) = sample();
    f(&mut h, &mut r, &mut e, &mut s);
    build(&h, &r, &e, &s)
}

#[test]
fn rejects_bad_header() {
    let good = with(|_, _, _, _| {});
    expect_err(&good[..100], "shorter than its header");
    expect_err(&good[..good.len() - 1], "truncated");
    let mut longer = good.clone();
    longer.push(0);
    expect_err(&longer, "trailing bytes");
    expect_err(&with(|h, _, _, _| h.magic = 1), "bad magic");
    expect_err(&with(|h, _, _, _| h.version = PLAN_VERSION + 1), "version");
    let mut huge = good.clone();
    huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes()); // n_regions
    expect_err(&huge, "overflow");
    let mut many = good;
    many[16..24].copy_from_slice(&1000u64.to_le_bytes());
    expect_err(&many, "truncated");
}

#[test]
fn rejects_bad_regions() {
    expect_err(&with(|_, r, _, _| r[1].start = CODE), "overlap");
    expect_err(
        &with(|_, r, _, _| r.swap(0, 1)),
        "overlap or are not sorted",
    );
    expect_err(&with(|_, r, _, _| r[1].end += 1), "page aligned");
    expect_err(
        &with(|_, r, _, _| {
            r[2].start = RESTORER_BASE + RESERVE_LEN - 0x1000;
            r[2].end = RESTORER_BASE + RESERVE_LEN + 0x1000;
        }),
        "reserved range",
    );
    expect_err(&with(|_, r, _, _| r[0].prot = 8), "PROT");
    expect_err(&with(|_, r, _, _| r[0].flags |= MAP_SHARED), "exactly one");
    expect_err(
        &with(|_, r, _, _| r[0].fd = 5),
        "MAP_ANONYMOUS exactly when",
    );
    expect_err(
        &with(|_, r, _, _| r[0].flags |= 0x10),
        "unsupported MAP flags",
    );
    expect_err(
        &with(|_, r, _, _| {
            r[2].start = USER_TOP;
            r[2].end = USER_TOP + 0x1000;
        }),
        "user space",
    );
}

#[test]
fn rejects_bad_extents_and_specials() {
    expect_err(
        &with(|_, _, e, _| e[1].addr = DATA + 0x2000),
        "inside one region",
    );
    expect_err(&with(|_, _, e, _| e[1].len = 0x2000), "inside one region");
    expect_err(&with(|_, _, e, _| e[0].file_offset = 12), "page aligned");
    expect_err(&with(|h, _, _, _| h.image_fd = -1), "no image fd");
    expect_err(
        &with(|_, _, e, _| e[1].fd = -1),
        "an extent has no image fd",
    );
    expect_err(
        &with(|_, r, _, _| {
            r[1].flags = MAP_SHARED;
            r[1].fd = 4;
        }),
        "shared file mapping",
    );
    expect_err(&with(|_, _, _, s| s[1].start = 0x6000_0000_2000), "overlap");
    expect_err(&with(|_, _, _, s| s[1].name = s[0].name), "named twice");
    expect_err(&with(|_, _, _, s| s[1].start = DATA), "overlaps a region");
    expect_err(
        &with(|_, _, _, s| s[1].start = RESTORER_BASE),
        "reserved range",
    );
    expect_err(
        &with(|_, _, _, s| s[0] = PlanSpecial::new(b"vdso", 0x6000_0000_0000, 0x1000)),
        "[name]",
    );
}

#[test]
fn rejects_bad_entry() {
    expect_err(&with(|h, _, _, _| h.entry = DATA), "executable region");
    expect_err(
        &with(|h, _, _, _| h.entry_stack = STACK + 0x3ff8),
        "16-byte",
    );
    expect_err(&with(|h, _, _, _| h.entry_stack = STACK), "writable region");
    expect_err(&with(|h, _, _, _| h.mm.auxv_len = 3), "auxv");
    expect_err(&with(|h, _, _, _| h.mm.auxv_len = 130), "auxv");
}

#[test]
fn paged_regions() {
    // The stack region paged, with a pager and /dev/userfaultfd.
    let good = with(|h, r, _, _| {
        h.pager_fd = 9;
        h.uffd_dev = 10;
        r[2].paged = REGION_PAGED;
    });
    let v = Plan::parse(&good).expect("valid paged plan");
    assert!(v.region(2).is_paged());
    assert_eq!(v.header().pager_fd, 9);
    assert_eq!(v.header().uffd_dev, 10);
    expect_err(
        &with(|_, r, _, _| r[2].paged = REGION_PAGED),
        "in a plan with a pager",
    );
    expect_err(
        &with(|h, r, _, _| {
            h.pager_fd = 9;
            r[2].paged = 2;
        }),
        "unknown paged value",
    );
    expect_err(
        &with(|h, r, _, _| {
            h.pager_fd = 9;
            r[1].paged = REGION_PAGED;
        }),
        "region the pager fills",
    );
    expect_err(&with(|h, _, _, _| h.uffd_dev = 10), "no pager");
    expect_err(&with(|h, _, _, _| h.pager_fd = -5), "other than -1");
}

/// Guard pages and seals: read back as written; each inside one region,
/// a seal covering exactly one, a known kind.
#[test]
fn finals_are_read_back_and_checked() {
    let (h, r, e, s) = sample();
    let plan = |f: &[PlanFinal]| {
        let mut out = Vec::new();
        write_plan(&h, &r, &e, &s, f, &mut |b: &[u8]| out.extend_from_slice(b));
        out
    };
    let fin = |start, len, kind| PlanFinal {
        start,
        len,
        kind,
        mode: 0,
        nodes: 0,
    };
    let good = [
        fin(DATA + 0x1000, 0x1000, FINAL_GUARD),
        fin(CODE, 0x1000, FINAL_SEAL),
        fin(STACK, 0x4000, FINAL_POLICY),
    ];
    let bytes = plan(&good);
    assert_eq!(bytes.len() as u64, plan_len(3, 2, 2, 3).unwrap());
    let v = Plan::parse(&bytes).expect("valid plan with finals");
    assert_eq!(v.finals().collect::<Vec<_>>(), good);
    expect_err(&plan(&[fin(DATA, 0x1000, 4)]), "unknown kind");
    expect_err(
        &plan(&[fin(DATA, 0x1000, FINAL_POLICY)]),
        "exactly one region",
    );
    expect_err(
        &plan(&[fin(DATA + 1, 0x1000, FINAL_GUARD)]),
        "not page aligned",
    );
    expect_err(&plan(&[fin(DATA, 0, FINAL_GUARD)]), "empty");
    expect_err(
        &plan(&[fin(DATA + 0x1000, 0x2000, FINAL_GUARD)]),
        "inside one region",
    );
    expect_err(
        &plan(&[fin(DATA, 0x1000, FINAL_SEAL)]),
        "exactly one region",
    );
    expect_err(&plan(&[fin(!0xfff, 0x2000, FINAL_GUARD)]), "overflows");
}
