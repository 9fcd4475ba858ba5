//! Compile tests: what `#[interpose]` accepts (`tests/ui/pass`, built and
//! run) and how it refuses the rest (`tests/ui/fail`, with the expected
//! compiler output beside each file). `TRYBUILD=overwrite` rewrites those.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
