ckpt_macros::originals_registry!(fn resolve);

fn main() {}
