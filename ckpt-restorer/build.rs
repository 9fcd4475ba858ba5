//! Link the `ckpt-restorer` binary as a static, non-PIE ET_EXEC at the fixed
//! base 0x7e0000000000 with no C runtime. These arguments go to the binary
//! only (`rustc-link-arg-bins`); the library and the tests link normally.
//!
//! - `--image-base` rather than `-Ttext-segment` (the latter is rejected with
//!   the default `cc` linker driver);
//! - codegen stays PIC (`relocation-model=static` emits R_X86_64_32, which
//!   cannot reach above 2 GiB); `-no-pie` makes ld resolve everything at link
//!   time, so there are no dynamic relocations;
//! - `-static`, or the program gets a PT_INTERP and crashes in ld.so.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os != "linux" || arch != "x86_64" {
        return;
    }
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--image-base=0x7e0000000000",
        "-Wl,--build-id=none",
        "-Wl,-z,noexecstack",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
