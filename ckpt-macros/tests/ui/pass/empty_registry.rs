// The registry links and counts nothing when nothing is interposed.
#![deny(warnings)]

ckpt_macros::originals_registry!();

fn main() {
    assert_eq!(resolve_all_originals(), 0);
}
