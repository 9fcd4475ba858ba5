//! A restore plan as the restorer reads it: parse and validate, then
//! every record the restorer would look at. Must never panic.
#![no_main]
use ckpt_restorer::plan::Plan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = Plan::parse(data) {
        let _ = view.header();
        for r in view.regions() {
            let _ = (r.len(), r.is_shared_file());
            let _ = view.region_containing(r.start);
        }
        for e in view.extents() {
            let _ = e;
        }
        for s in view.specials() {
            let _ = s.name_bytes();
        }
    }
});
