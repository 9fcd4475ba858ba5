//! Snapshot test: every `tests/expand/NAME.rs` expands to the checked-in
//! `tests/expand/NAME.expanded.rs` (prettyplease-formatted, as `cargo
//! expand` would show it). `CKPT_BLESS=1 cargo test` rewrites them.

use std::path::Path;

/// Expand every `#[interpose(..)]` function of a source file.
fn expand_file(source: &str) -> String {
    let mut file: syn::File = syn::parse_str(source).expect("sample parses");
    let mut items = Vec::new();
    for item in file.items {
        let syn::Item::Fn(mut func) = item else {
            items.push(item);
            continue;
        };
        let Some(at) = func.attrs.iter().position(|a| {
            a.path()
                .segments
                .last()
                .is_some_and(|s| s.ident == "interpose")
        }) else {
            items.push(syn::Item::Fn(func));
            continue;
        };
        let attr = func.attrs.remove(at);
        let args = match attr.meta {
            syn::Meta::List(list) => list.tokens,
            _ => Default::default(),
        };
        let out = crate::expand::expand(args, quote::ToTokens::into_token_stream(func))
            .unwrap_or_else(|e| panic!("expansion failed: {e}"));
        let out: syn::File = syn::parse2(out).expect("expansion parses");
        items.extend(out.items);
    }
    file.items = items;
    prettyplease::unparse(&file)
}

#[test]
fn expansions_match_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand");
    let bless = std::env::var_os("CKPT_BLESS").is_some_and(|v| v == "1");
    let mut samples = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(stem) = name.strip_suffix(".rs") else {
            continue;
        };
        if stem.ends_with(".expanded") {
            continue;
        }
        samples += 1;
        let actual = expand_file(&std::fs::read_to_string(&path).unwrap());
        let snapshot = dir.join(format!("{stem}.expanded.rs"));
        if bless {
            std::fs::write(&snapshot, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
        assert!(
            actual == expected,
            "{} is out of date (CKPT_BLESS=1 cargo test rewrites it); expansion:\n{actual}",
            snapshot.display()
        );
    }
    assert!(samples > 0, "no samples in {}", dir.display());
}
