//! Incremental checkpoints on real programs: a second checkpoint stores
//! only the pages written since the first and takes the rest from it; a
//! restart from that chain is byte-identical to an uninterrupted run,
//! whatever the program did to its memory in between (writes, mremap,
//! MADV_DONTNEED, new mappings, a forked child writing its copy, the
//! kernel writing through read(2)); `--keep 1` keeps one image and the
//! whole one it builds on as a base, and a missing earlier image is named
//! at restart.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{restart_and_compare, restart_cmd, run_cmd, start, wait_marker, Area, Out};
use std::path::{Path, PathBuf};

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// restart_incremental.c under ckpt: a whole checkpoint after phase 1, an
/// incremental one after phase 2, SIGKILL. Returns the images and the
/// program's output file.
fn two_checkpoints(area: &Area, keep: Option<&str>) -> (PathBuf, PathBuf, PathBuf, Vec<u8>) {
    let prog = common::compile_c("restart_incremental.c", &area.sub("bin"));
    let plain_ctl = area.sub("plain");
    common::touch(&plain_ctl.join("go1"));
    common::touch(&plain_ctl.join("go2"));
    let want = rs::reference_output(area, &prog, &[&plain_ctl]);
    let ctl = area.sub("ctl");
    let out = area.file("out");
    let mut cmd = run_cmd(&prog, &[&ctl], area.path(), &area.images);
    if let Some(k) = keep {
        // `ckpt run ... --keep N` instead of run_cmd's own --keep.
        let mut args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
        let at = args
            .iter()
            .position(|a| a == "--keep")
            .expect("run_cmd sets --keep");
        args[at + 1] = k.into();
        cmd = std::process::Command::new(common::ckpt_bin());
        cmd.args(&args).current_dir(area.path());
    }
    let kid = start(cmd, Out::File(&out), &area.file("err"), "under ckpt");
    let (first, second) = rs::checkpoint_at_phases(kid, &ctl, &area.images);
    (first, second, out, want)
}

/// The second image holds a fraction of the first (16 MiB of random bytes,
/// a few pages changed), names the first as the one it takes the rest
/// from, and restarts to exactly the uninterrupted run's output: every
/// way the memory changed in between is seen.
#[test]
fn second_checkpoint_stores_only_what_changed_and_restarts_exact() {
    let area = Area::new("incr");
    let (first, second, out, want) = two_checkpoints(&area, Some("2"));
    let name = first.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        common::image_deps(&second),
        [name],
        "the second image refers to the first"
    );
    assert!(
        common::image_deps(&first).is_empty(),
        "the first image is whole"
    );
    assert!(
        size(&second) * 8 < size(&first),
        "incremental image {} bytes, whole one {} bytes",
        size(&second),
        size(&first)
    );
    let list = common::ckpt(area.path(), ["list".as_ref(), area.images.as_os_str()]);
    assert!(
        list.stdout.contains("incremental (needs 1 earlier)"),
        "ckpt list:\n{}",
        list.stdout
    );
    restart_and_compare(restart_cmd(&second, &[], area.path()), &out, &want, &area);
}

/// With `--keep 1` (the default) exactly one generation stays, and it is
/// incremental too: the whole first image, which it takes most of its
/// pages from, stays beside it as a base (not a generation), and the
/// restart from it is exact.
#[test]
fn keep_1_leaves_one_incremental_image_and_its_base() {
    let area = Area::new("incrkeep");
    let (first, second, out, want) = two_checkpoints(&area, Some("1"));
    let dir = &area.images;
    rs::settled(dir);
    let second_name = second.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        rs::images(dir),
        std::slice::from_ref(&second_name),
        "--keep 1 left other images"
    );
    assert!(
        !first.exists(),
        "the first image keeps its generation's name"
    );
    let bases = rs::bases(dir);
    assert_eq!(bases.len(), 1, "no base beside the kept image");
    assert_eq!(
        common::image_deps(&second),
        bases,
        "the kept image does not take pages from the base"
    );
    assert!(
        size(&second) * 8 < size(&dir.join(&bases[0])),
        "the kept image ({} bytes) is not incremental",
        size(&second)
    );
    restart_and_compare(restart_cmd(&second, &[], area.path()), &out, &want, &area);
}

/// An image a kept one needs, removed by hand: the restart names it and
/// refuses.
#[test]
fn an_image_a_kept_one_needs_is_named_when_missing() {
    let area = Area::new("incrmiss");
    let (first, second, _out, _want) = two_checkpoints(&area, Some("2"));
    assert!(first.exists(), "--keep 2 removed the first image");
    std::fs::remove_file(&first).unwrap();
    let r = common::ckpt(area.path(), ["restart".as_ref(), second.as_os_str()]);
    assert_eq!(
        r.code(),
        Some(1),
        "restart without its earlier image: {r:?}"
    );
    let name = first.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        r.stderr.contains(&name) && r.stderr.contains("missing"),
        "the error names the missing image: {}",
        r.stderr
    );
}

/// An earlier image replaced by another file of the same name is refused
/// (its metadata checksum differs), never mixed in.
#[test]
fn an_earlier_image_written_over_is_refused() {
    let area = Area::new("incrswap");
    let (first, second, _out, _want) = two_checkpoints(&area, Some("2"));
    // Another program's whole image under the first one's name.
    let prog = common::compile_c("restart_counter.c", &area.sub("bin2"));
    let ctl = area.sub("ctl2");
    let mut kid = start(
        run_cmd(
            &prog,
            &[ctl.as_os_str(), "100000".as_ref()],
            area.path(),
            &area.sub("other"),
        ),
        Out::Null,
        &area.file("err2"),
        "another program",
    );
    wait_marker(&mut kid, &ctl.join("started")).unwrap_or_else(|e| panic!("{e}"));
    let img = common::checkpoint(kid.pid(), Some(&area.sub("other"))).unwrap();
    kid.kill();
    std::fs::copy(&img, &first).unwrap();
    let r = common::ckpt(area.path(), ["restart".as_ref(), second.as_os_str()]);
    assert_eq!(
        r.code(),
        Some(1),
        "restart with a foreign earlier image: {r:?}"
    );
    assert!(
        r.stderr.contains("another image now"),
        "the error says why: {}",
        r.stderr
    );
}

/// `ckpt checkpoint -v PID --dir DIR`: the image and the verbose line.
fn checkpoint_verbose(area: &Area, pid: i32) -> (PathBuf, String) {
    let r = common::ckpt(
        area.path(),
        [
            "checkpoint".as_ref(),
            "-v".as_ref(),
            pid.to_string().as_ref(),
            "--dir".as_ref(),
            area.images.as_os_str(),
        ],
    );
    assert_eq!(r.code(), Some(0), "ckpt checkpoint -v: {r:?}");
    (area.images.join(r.stdout.trim()), r.stderr)
}

/// Regions that changed little since the previous image are left out of
/// the writer's fork (their written pages copied while frozen), twice in
/// a row: zapped pages, a page written to zeros, a region never written
/// again and a NORESERVE reservation all come back exactly from the
/// third image (built on the second, into which --keep 2 folded the
/// first), and a region mostly rewritten is forked as before.
#[test]
fn regions_left_out_of_the_fork_come_back_exact() {
    let area = Area::new("unforked");
    let prog = common::compile_c("restart_unforked.c", &area.sub("bin"));
    let plain_ctl = area.sub("plain");
    for g in ["go1", "go2", "go3"] {
        common::touch(&plain_ctl.join(g));
    }
    let want = rs::reference_output(&area, &prog, &[&plain_ctl]);
    let ctl = area.sub("ctl");
    let out = area.file("out");
    let mut kid = start(
        run_cmd(&prog, &[&ctl], area.path(), &area.images),
        Out::File(&out),
        &area.file("err"),
        "under ckpt",
    );
    let mut images = Vec::new();
    for (phase, go) in [("phase1", "go1"), ("phase2", "go2"), ("phase3", "go3")] {
        wait_marker(&mut kid, &ctl.join(phase)).unwrap_or_else(|e| panic!("{e}"));
        let (image, said) = checkpoint_verbose(&area, kid.pid());
        let unforked = said.contains("left out of the fork");
        // The first is whole; at the second A, B, D and E changed little
        // (32 + 8 + 1024 + 4 MiB left out) and C (8 MiB) changed much, so
        // is forked; at the third C too is left out.
        assert_eq!(unforked, phase != "phase1", "{phase}: {said}");
        if unforked {
            let mib = if phase == "phase2" { 1068 } else { 1076 };
            let want = format!("({} bytes) left out", mib << 20);
            assert!(said.contains(&want), "{phase}: {said}");
        }
        images.push(image);
        if phase != "phase3" {
            common::touch(&ctl.join(go));
        }
    }
    kid.kill();
    common::touch(&ctl.join("go3"));
    // (With run_cmd's --keep 2 the first was folded into the second.)
    assert!(
        !common::image_deps(&images[2]).is_empty(),
        "the third is incremental"
    );
    restart_and_compare(
        restart_cmd(&images[2], &[], area.path()),
        &out,
        &want,
        &area,
    );
}

/// The path `ckpt checkpoint` printed stays usable: with `--keep 2`, the
/// third checkpoint drops the first and folds its pages into the second,
/// which others refer to and so gets a new name (`X.f.img`). `ckpt
/// restart` and `ckpt inspect` of the printed path find it, say so, and
/// the restart is exact. (Before: "No such file or directory".)
#[test]
fn the_printed_path_of_a_folded_image_still_restarts() {
    let area = Area::new("incrfolded");
    let prog = common::compile_c("restart_counter.c", &area.sub("bin"));
    // "pages": pages the second image holds stay unchanged in the third,
    // which so refers to it.
    let args = [
        area.sub("plain").to_string_lossy().into_owned(),
        "400".into(),
        "10".into(),
        "pages".into(),
    ];
    let want = rs::reference_output(&area, &prog, &args);
    let ctl = area.sub("ctl").to_string_lossy().into_owned();
    let args = [ctl, "400".into(), "10".into(), "pages".into()];
    let out = area.file("out");
    let mut kid = rs::start_until(
        run_cmd(&prog, &args, area.path(), &area.images),
        &out,
        &area.file("err"),
        "under ckpt",
        "line 20 ",
    );
    let mut printed = Vec::new();
    for _ in 0..3 {
        printed.push(common::checkpoint(kid.pid(), Some(&area.images)).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    kid.kill();
    rs::settled(&area.images);
    let second = &printed[1];
    assert!(
        !second.exists(),
        "the second image kept its name (no fold happened: the test's premise is gone): {:?}",
        rs::images(&area.images)
    );
    let inspect = common::ckpt(area.path(), ["inspect".as_ref(), second.as_os_str()]);
    assert!(
        inspect.code() == Some(0) && inspect.stderr.contains("is now"),
        "inspect: {inspect:?}"
    );
    let said = restart_and_compare(restart_cmd(second, &[], area.path()), &out, &want, &area);
    assert!(
        said.contains("is now"),
        "the restart did not say where: {said}"
    );
}

/// The shim's own tables are zero-initialised, so they live in .bss:
/// anonymous memory, which incremental checkpoints track page by page.
/// A table given a non-zero initial value moves to .data, a private file
/// mapping that every image stores whole once a page of it is copied
/// (a fork's child writes to every table): 2.5 MiB per process per
/// checkpoint, which is how a thread table's `-1` default was caught.
#[test]
fn the_shims_initialised_data_stays_small() {
    common::require_shim();
    let elf = std::fs::read(common::shim_path()).expect("read the shim");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(&elf[..5], b"\x7fELF\x02", "not a 64-bit ELF file");
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let section = |i: usize| shoff + i * shentsize;
    let names = u64_at(section(shstrndx) + 0x18);
    let mut data = None;
    for i in 0..shnum {
        let h = section(i);
        let name_at = names + u32::from_le_bytes(elf[h..h + 4].try_into().unwrap()) as usize;
        let end = elf[name_at..].iter().position(|&b| b == 0).unwrap();
        if &elf[name_at..name_at + end] == b".data" {
            data = Some(u64_at(h + 0x20));
        }
    }
    let data = data.expect("the shim has a .data section");
    assert!(
        data < 256 << 10,
        "the shim's .data is {data} bytes: a large static with a non-zero \
         initial value (see `nm -S --size-sort` of the shim, type d) is stored \
         whole in every incremental image of a forked child"
    );
}

/// restart_precopy.c (`how`: "hot" or "everywhere") under ckpt,
/// checkpointed once after "step 19" by `ckpt checkpoint --precopy`, SIGKILLed and
/// restarted from the image the command named: its output must be the
/// uninterrupted run's. Returns the area, that image, and the names in
/// the image directory right after the checkpoint.
fn precopy_cycle(tag: &str, how: &str) -> (Area, PathBuf, Vec<String>) {
    let area = Area::new(tag);
    let prog = common::compile_c("restart_precopy.c", &area.sub("bin"));
    let want = rs::reference_output(&area, &prog, &[how]);
    let out = area.file("out");
    let mut kid = start(
        run_cmd(&prog, &[how], area.path(), &area.images),
        Out::File(&out),
        &area.file("err"),
        "under ckpt",
    );
    rs::wait_file(
        &mut kid,
        &out,
        |d| String::from_utf8_lossy(d).contains("step 19\n"),
        std::time::Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let pid = kid.pid().to_string();
    let r = common::ckpt(
        area.path(),
        [
            "checkpoint".as_ref(),
            pid.as_ref(),
            "--dir".as_ref(),
            area.images.as_os_str(),
            "--precopy".as_ref(),
        ],
    );
    assert!(r.status.success(), "checkpoint failed: {}", r.stderr);
    let image = PathBuf::from(r.stdout.trim());
    kid.kill();
    let mut names: Vec<String> = std::fs::read_dir(&area.images)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ckpt-"))
        .collect();
    names.sort();
    restart_and_compare(restart_cmd(&image, &[], area.path()), &out, &want, &area);
    (area, image, names)
}

/// `ckpt checkpoint --precopy` of a program holding 160 MiB that writes a
/// few pages as it runs: a base read while the program ran
/// (`STEM.base`, not a generation), then the image the command names,
/// which holds what the program wrote meanwhile and takes the rest from
/// the base; the restart is exact, and the base alone is refused. (The
/// program's stall is the second half's freeze, a page-table walk and a
/// copy of the pages written, instead of a fork of all its memory:
/// `cargo bench --bench checkpoint_restart`.)
#[test]
fn a_first_checkpoint_of_much_memory_is_a_precopy_and_restarts_exact() {
    let (area, image, names) = precopy_cycle("precopy-hot", "hot");
    let bases: Vec<&String> = names.iter().filter(|n| n.ends_with(".base")).collect();
    assert_eq!(
        bases.len(),
        1,
        "one pre-copy base beside the image: {names:?}"
    );
    let base = area.images.join(bases[0]);
    assert_eq!(
        common::image_deps(&image),
        [bases[0].clone()],
        "the image takes what was not written from the base"
    );
    assert!(
        size(&image) * 8 < size(&base),
        "the image holds what the program wrote during the pre-copy: {} bytes, base {} bytes",
        size(&image),
        size(&base)
    );
    let r = common::ckpt(area.path(), ["restart".as_ref(), base.as_os_str()]);
    assert!(
        !r.status.success() && r.stderr.contains("first half of a checkpoint"),
        "the base alone must be refused: {}",
        r.stderr
    );
}

/// A program writing all over its memory makes a pre-copy worthless (the
/// checkpoint after it would copy nearly everything again): it gives up
/// at once, the checkpoint is whole, and no base stays behind.
#[test]
fn a_precopy_gives_up_on_a_program_writing_everywhere() {
    let (_area, image, names) = precopy_cycle("precopy-all", "everywhere");
    assert!(
        !names.iter().any(|n| n.ends_with(".base")),
        "no base left: {names:?}"
    );
    assert!(common::image_deps(&image).is_empty(), "the image is whole");
}

/// A checkpoint that gathers far less than the one before it (the program
/// closed thousands of descriptors in between) restarts from its
/// incremental image to exactly the uninterrupted run's output. ckpt
/// gathers the state in its own arena while the program is frozen, partly
/// after the round that finds the written pages (the calls that fork the
/// writer), and the restarted thread returns through those values: taken
/// from the earlier image instead, they were the first checkpoint's (seen:
/// 1000 descriptors, the restart printed nothing; 8000, it had one
/// descriptor too many).
#[test]
fn a_checkpoint_gathering_less_than_the_one_before_restarts_exact() {
    for n in ["1000", "8000"] {
        let area = Area::new(&format!("incrless{n}"));
        let prog = common::compile_c("restart_gathers_less.c", &area.sub("bin"));
        let plain_ctl = area.sub("plain");
        common::touch(&plain_ctl.join("go1"));
        common::touch(&plain_ctl.join("go2"));
        let want = rs::reference_output(&area, &prog, &[plain_ctl.as_os_str(), n.as_ref()]);
        let ctl = area.sub("ctl");
        let out = area.file("out");
        let cmd = run_cmd(
            &prog,
            &[ctl.as_os_str(), n.as_ref()],
            area.path(),
            &area.images,
        );
        let kid = start(cmd, Out::File(&out), &area.file("err"), "under ckpt");
        let (first, second) = rs::checkpoint_at_phases(kid, &ctl, &area.images);
        let name = first.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            common::image_deps(&second),
            [name],
            "{n} descriptors: the second image refers to the first"
        );
        restart_and_compare(restart_cmd(&second, &[], area.path()), &out, &want, &area);
    }
}
