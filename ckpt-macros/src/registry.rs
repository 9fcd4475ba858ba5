//! `originals_registry!()`: a function that walks the `ckpt_originals`
//! section, where every `#[interpose]` module registers its `ORIGINAL`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Visibility;

use crate::expand::SECTION;

/// `originals_registry!(<visibility>)` → `<visibility> fn resolve_all_originals() -> usize`.
pub fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let vis: Visibility = syn::parse2(input).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected nothing or a visibility (`pub`, `pub(crate)`): \
             originals_registry!() defines `fn resolve_all_originals() -> usize`",
        )
    })?;
    let start = format_ident!("__start_{}", SECTION);
    let stop = format_ident!("__stop_{}", SECTION);
    let section = SECTION;
    Ok(quote! {
        /// Resolves the original of every `#[interpose]` wrapper linked into
        /// this executable or shared object; returns how many were found.
        /// The others stay unresolved: using one aborts with its name.
        #vis fn resolve_all_originals() -> usize {
            type Entry = ::core::option::Option<&'static ::ckpt::interpose::Original>;
            // Defined by the linker around the section's contents.
            #[allow(non_upper_case_globals)]
            extern "C" {
                static #start: [u8; 0];
                static #stop: [u8; 0];
            }
            // Keeps the section (and its bounds) present when nothing is interposed.
            #[used]
            #[link_section = #section]
            static EMPTY: Entry = ::core::option::Option::None;

            let entries: &[Entry] = unsafe {
                let start = ::core::ptr::addr_of!(#start) as usize;
                let stop = ::core::ptr::addr_of!(#stop) as usize;
                let len = (stop - start) / ::core::mem::size_of::<Entry>();
                ::core::slice::from_raw_parts(start as *const Entry, len)
            };
            entries
                .iter()
                .flatten()
                .filter(|original| !original.resolve().is_null())
                .count()
        }
    })
}
