//! Parse and check: the attribute's arguments and the declared function.
//! Everything the expansion needs is validated here, so `expand` only emits.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{
    parenthesized, Attribute, Block, FnArg, Ident, ItemFn, LitInt, LitStr, Pat, ReturnType, Token,
    Type,
};

/// The arguments of `#[interpose(...)]`.
#[derive(Default)]
pub struct Args {
    /// Further exported symbols with the same signature and body.
    pub aliases: Vec<Ident>,
    /// `variadic = N`: the C original takes N fixed parameters, then `...`.
    pub variadic: Option<usize>,
    /// `version = "..."`: resolve the original with `dlvsym`.
    pub version: Option<LitStr>,
    /// `around`: the body is the whole wrapper, not a post-hook.
    pub around: bool,
    /// `when = <expr>`: only calls for which the expression (over the
    /// parameters) holds go through the wrapper; others go straight to the
    /// original, at the cost of one test.
    pub when: Option<syn::Expr>,
}

/// One parameter: `name: Type`.
pub struct Param {
    pub name: Ident,
    pub ty: Type,
}

/// The checked declaration the wrappers are generated from.
pub struct Interposed {
    pub args: Args,
    /// Outer attributes of the declaration (docs, `cfg`, lints), copied onto
    /// every wrapper.
    pub attrs: Vec<Attribute>,
    pub name: Ident,
    pub params: Vec<Param>,
    pub output: ReturnType,
    pub body: Block,
}

impl Interposed {
    /// Every exported symbol: the function's own name, then the aliases.
    pub fn symbols(&self) -> impl Iterator<Item = &Ident> {
        core::iter::once(&self.name).chain(&self.args.aliases)
    }
}

/// Parse `#[interpose(<attr>)] <item>` and check every rule.
pub fn parse(attr: TokenStream, item: TokenStream) -> syn::Result<Interposed> {
    let mut args = Args::default();
    let variadic = parse_args(attr, &mut args)?;
    let func: ItemFn = syn::parse2(item)?;
    if !matches!(func.vis, syn::Visibility::Inherited) {
        return Err(err(
            &func.vis,
            "remove the visibility: every wrapper is exported as `pub`",
        ));
    }
    let params = check_signature(&func)?;
    check_attrs(&func.attrs)?;
    check_aliases(&func.sig.ident, &args.aliases)?;
    if let Some(lit) = variadic {
        args.variadic = Some(check_variadic(&lit, params.len())?);
    }
    check_hidden_names(&params, args.around)?;
    Ok(Interposed {
        args,
        attrs: func.attrs,
        name: func.sig.ident,
        params,
        output: func.sig.output,
        body: *func.block,
    })
}

const EXPECTED: &str =
    "expected `aliases(name, ...)`, `variadic = N`, `version = \"...\"`, `when = <expr>` or `around`";

/// Fill `args`; returns the `variadic` literal, checked once the parameters
/// are known.
fn parse_args(attr: TokenStream, args: &mut Args) -> syn::Result<Option<LitInt>> {
    let mut variadic: Option<LitInt> = None;
    let mut seen: Vec<String> = Vec::new();
    let parser = syn::meta::parser(|meta| {
        let Some(key) = meta.path.get_ident().map(Ident::to_string) else {
            return Err(meta.error(format!("unknown argument; {EXPECTED}")));
        };
        if seen.contains(&key) {
            return Err(meta.error(format!("`{key}` is given twice")));
        }
        match key.as_str() {
            "aliases" => {
                let list;
                parenthesized!(list in meta.input);
                args.aliases = Punctuated::<Ident, Token![,]>::parse_terminated(&list)?
                    .into_iter()
                    .collect();
            }
            "variadic" => variadic = Some(meta.value()?.parse()?),
            "version" => {
                let version: LitStr = meta.value()?.parse()?;
                let text = version.value();
                if text.is_empty() || text.contains('\0') {
                    return Err(syn::Error::new(
                        version.span(),
                        "the version must be a non-empty symbol version such as \"GLIBC_2.3.3\"",
                    ));
                }
                args.version = Some(version);
            }
            "when" => args.when = Some(meta.value()?.parse()?),
            "around" => {
                if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                    return Err(meta.error("`around` takes no value"));
                }
                args.around = true;
            }
            _ => return Err(meta.error(format!("unknown argument `{key}`; {EXPECTED}"))),
        }
        seen.push(key);
        Ok(())
    });
    parser.parse2(attr)?;
    Ok(variadic)
}

fn check_signature(func: &ItemFn) -> syn::Result<Vec<Param>> {
    let sig = &func.sig;
    if let Some(constness) = &sig.constness {
        return Err(err(constness, "an interposed function cannot be `const`"));
    }
    if let Some(asyncness) = &sig.asyncness {
        return Err(err(asyncness, "an interposed function cannot be `async`"));
    }
    if let Some(abi) = &sig.abi {
        return Err(err(
            abi,
            "remove the ABI: #[interpose] exports the wrapper as `pub unsafe extern \"C\" fn`",
        ));
    }
    if sig.unsafety.is_none() {
        return Err(err(
            sig.fn_token,
            "an interposed function must be declared `unsafe fn`: it is exported as \
             `pub unsafe extern \"C\" fn`",
        ));
    }
    let generic = "an interposed function cannot be generic: it is exported to C";
    if !sig.generics.params.is_empty() {
        return Err(err(&sig.generics, generic));
    }
    if let Some(clause) = &sig.generics.where_clause {
        return Err(err(clause, generic));
    }
    if let Some(dots) = &sig.variadic {
        return Err(err(
            dots,
            "declare the variadic part as fixed parameters and add `variadic = N` \
             (N = number of fixed parameters of the C function)",
        ));
    }
    sig.inputs.iter().map(param).collect()
}

fn param(arg: &FnArg) -> syn::Result<Param> {
    let typed = match arg {
        FnArg::Receiver(receiver) => {
            return Err(err(receiver, "an interposed function cannot take `self`"))
        }
        FnArg::Typed(typed) => typed,
    };
    if let Some(attr) = typed.attrs.first() {
        return Err(err(attr, "attributes on parameters are not supported"));
    }
    match &*typed.pat {
        Pat::Ident(pat)
            if pat.attrs.is_empty()
                && pat.by_ref.is_none()
                && pat.mutability.is_none()
                && pat.subpat.is_none() =>
        {
            Ok(Param {
                name: pat.ident.clone(),
                ty: (*typed.ty).clone(),
            })
        }
        pat => Err(err(
            pat,
            "parameters must be plain `name: Type` (no patterns, `mut` or `ref`)",
        )),
    }
}

/// The macro adds the export attribute itself.
fn check_attrs(attrs: &[Attribute]) -> syn::Result<()> {
    for attr in attrs {
        let path = attr.path();
        let inner = match &attr.meta {
            // `#[unsafe(no_mangle)]`
            syn::Meta::List(list) if path.is_ident("unsafe") => list.parse_args::<syn::Path>().ok(),
            _ => None,
        };
        let path = inner.as_ref().unwrap_or(path);
        if ["no_mangle", "export_name", "link_name"]
            .iter()
            .any(|name| path.is_ident(name))
        {
            return Err(err(
                attr,
                "remove this attribute: #[interpose] exports every wrapper with `#[no_mangle]`",
            ));
        }
    }
    Ok(())
}

fn check_aliases(name: &Ident, aliases: &[Ident]) -> syn::Result<()> {
    for (i, alias) in aliases.iter().enumerate() {
        if alias == name || aliases[..i].contains(alias) {
            return Err(err(alias, format!("duplicate symbol `{alias}`")));
        }
    }
    Ok(())
}

fn check_variadic(lit: &LitInt, params: usize) -> syn::Result<usize> {
    let fixed: usize = lit.base10_parse()?;
    if fixed == 0 {
        return Err(err(
            lit,
            "`variadic = N` needs N >= 1: the number of fixed parameters of the C function",
        ));
    }
    if fixed > params {
        return Err(err(
            lit,
            format!(
                "`variadic = {fixed}` but the function declares only {params} parameter{}",
                if params == 1 { "" } else { "s" }
            ),
        ));
    }
    Ok(fixed)
}

/// A parameter must not be shadowed by a name the expansion binds for the
/// body: `ret` (post-hook form), `guard` and `real` (around form).
fn check_hidden_names(params: &[Param], around: bool) -> syn::Result<()> {
    let bound: &[&str] = if around { &["guard", "real"] } else { &["ret"] };
    for p in params {
        if bound.iter().any(|name| p.name == name) {
            let form = if around { "around" } else { "post-hook" };
            return Err(err(
                &p.name,
                format!(
                    "rename this parameter: the {form} form binds `{}` for the body",
                    p.name
                ),
            ));
        }
    }
    Ok(())
}

/// An error covering all of `tokens`.
fn err(tokens: impl ToTokens, message: impl std::fmt::Display) -> syn::Error {
    syn::Error::new_spanned(tokens, message)
}
