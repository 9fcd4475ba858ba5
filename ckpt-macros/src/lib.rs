//! placeholder docs

mod expand;
mod parse;
mod registry;

use proc_macro::TokenStream;

/// Generate exported C wrappers from a declared signature: see the crate docs.
#[proc_macro_attribute]
pub fn interpose(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Define `fn resolve_all_originals() -> usize`: see the crate docs.
#[proc_macro]
pub fn originals_registry(input: TokenStream) -> TokenStream {
    registry::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
