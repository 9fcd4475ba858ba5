use ckpt_macros::interpose;

#[interpose]
struct Open;

fn main() {}
