//! `#[seaworthy::test]`: an async test on its own runtime, given its fixtures by parameter.
//!
//! Use it through the `seaworthy` crate (`#[seaworthy::test]`), which documents it; this crate
//! only turns the attribute into code that calls `seaworthy::__private`.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, FnArg, ItemFn, Lit, Meta, Pat, Token, Type};

/// Runs an async test on a Tokio runtime and gives it, by parameter, what it asks for:
///
/// * `name: &F`: the fixture `static NAME: Shared<…>` at its baseline, for this test alone
///   (`NAME.fresh()`);
/// * `name: &Isolated<F>`: a namespace of its own in `static NAME: Shared<…>`
///   (`NAME.isolated()`);
/// * `name: &Container`: a container started from `fn name() -> ContainerDefinition`, removed
///   after the test.
///
/// Options: `flavor = "multi_thread"` (default `"current_thread"`), `worker_threads = N`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

enum Kind {
    Fresh,
    Isolated,
    Container,
}

struct Param {
    ident: syn::Ident,
    ty: Type,
    kind: Kind,
}

fn expand(args: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let (multi_thread, worker_threads) = parse_args(args)?;
    let function: ItemFn = syn::parse2(item)?;
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            format!(
                "#[seaworthy::test] runs an async test: write `async fn {}(...)`",
                sig.ident
            ),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "#[seaworthy::test] cannot run a generic function: give the test concrete parameter types",
        ));
    }
    let params = sig
        .inputs
        .iter()
        .map(param)
        .collect::<syn::Result<Vec<_>>>()?;
    let name = &sig.ident;
    let output = &sig.output;
    let attrs = &function.attrs;
    let vis = &function.vis;
    let body = &function.block;
    let inputs = &sig.inputs;
    let runtime = if multi_thread {
        let threads = worker_threads.unwrap_or(2);
        quote!(::seaworthy::__private::Flavor::MultiThread(#threads))
    } else {
        quote!(::seaworthy::__private::Flavor::CurrentThread)
    };
    let mut provide = Vec::new();
    let mut args = Vec::new();
    let mut used = Vec::new();
    for (n, p) in params.iter().enumerate() {
        let var = format_ident!("__seaworthy_param_{}", n);
        let source = p.source();
        let ty = &p.ty;
        let getter = match p.kind {
            Kind::Fresh => quote_spanned!(ty.span()=> ::seaworthy::__private::fresh(&#source)),
            Kind::Isolated => {
                quote_spanned!(ty.span()=> ::seaworthy::__private::isolated(&#source))
            }
            Kind::Container => {
                quote_spanned!(ty.span()=> ::seaworthy::__private::container(#source()))
            }
        };
        let getter = p.with_fallback(getter);
        provide.push(quote! {
            #[allow(unused_mut)]
            let mut #var = match #getter.await {
                ::core::result::Result::Ok(value) => value,
                ::core::result::Result::Err(error) => {
                    return ::seaworthy::__private::unavailable(__seaworthy_test, error);
                }
            };
        });
        args.push(quote!(&#var));
        used.push(quote!(::seaworthy::__private::Used::fail(&mut #var);));
    }
    // The test itself only calls the runner, which is compiled in every build (not only under
    // `cfg(test)`), so what the attribute rejects is rejected by `cargo check` too.
    let runner = format_ident!("__seaworthy_{}", name);
    // The runner exists wherever the test does.
    let cfgs: Vec<_> = attrs.iter().filter(|a| a.path().is_ident("cfg")).collect();
    Ok(quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #name() #output {
            #runner()
        }

        #(#cfgs)*
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case)]
        fn #runner() #output {
            #[allow(clippy::needless_lifetimes)]
            async fn __seaworthy_body(#inputs) #output #body
            let __seaworthy_test = ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name));
            ::seaworthy::__private::run(#runtime, async move {
                #(#provide)*
                let __seaworthy_outcome = ::seaworthy::__private::catch(__seaworthy_body(#(#args),*)).await;
                if ::seaworthy::__private::failed(&__seaworthy_outcome) {
                    #(#used)*
                }
                ::seaworthy::__private::finish(__seaworthy_outcome)
            })
        }
    })
}

impl Param {
    /// The static (or, for a container, the function) the parameter is taken from: its name,
    /// upper-cased for a static, spanned on the parameter so a missing one is pointed at.
    fn source(&self) -> TokenStream2 {
        let name = self.ident.to_string();
        let name = name.trim_start_matches('_');
        let ident = match self.kind {
            Kind::Container => syn::Ident::new(name, self.ident.span()),
            _ => syn::Ident::new(&name.to_uppercase(), self.ident.span()),
        };
        quote!(#ident)
    }
}

impl Param {
    /// `getter` in a scope where the name it takes its fixture from always resolves: to the
    /// user's static or function when there is one (the module's names, glob-imported in an inner
    /// block, come first), else to a deprecated stand-in whose use is forbidden (`forbid`: no
    /// `allow` around the test lets it through, and a crate that forbids `deprecated` accepts
    /// it), so a missing declaration is reported by its note (which names the parameter and says
    /// what to write) instead of rustc's "cannot find value". The stand-in fails the test if
    /// lints are capped.
    fn with_fallback(&self, getter: TokenStream2) -> TokenStream2 {
        let source = self.source();
        let param = self.ident.to_string();
        let stand_in = match self.kind {
            Kind::Container => {
                let note = format!(
                    "#[seaworthy::test]: the parameter `{param}` is a container started from `fn {source}() -> ContainerDefinition`, and no such function is in scope: declare it in this module (or `use` it), or name the parameter after the function you have; {WHAT_TO_WRITE}"
                );
                quote! {
                    #[deprecated(note = #note)]
                    #[allow(dead_code)]
                    fn #source() -> ::seaworthy::ContainerDefinition {
                        ::core::panic!("{}", #note)
                    }
                }
            }
            Kind::Fresh | Kind::Isolated => {
                let Some(fixture) = self.fixture_type() else {
                    return getter;
                };
                let what = match self.kind {
                    Kind::Isolated => "a namespace of its own in the fixture",
                    _ => "the fixture",
                };
                let note = format!(
                    "#[seaworthy::test]: the parameter `{param}` is given {what} `static {source}: Shared<…>`, and no such static is in scope: declare `static {source}: seaworthy::Shared<Definition> = seaworthy::Shared::per_process(definition);` in this module (or `use` it), or name the parameter after the static you have; {WHAT_TO_WRITE}"
                );
                quote! {
                    #[deprecated(note = #note)]
                    #[allow(dead_code, non_upper_case_globals)]
                    static #source: ::seaworthy::__private::Undeclared<#fixture> =
                        ::seaworthy::__private::Undeclared::new(#note);
                }
            }
        };
        quote! {
            {
                #stand_in
                {
                    #[allow(unused_imports)]
                    use self::*;
                    #[forbid(deprecated)]
                    let __seaworthy_getter = #getter;
                    __seaworthy_getter
                }
            }
        }
    }

    /// The fixture type of a `&F` or `&Isolated<F>` parameter.
    fn fixture_type(&self) -> Option<Type> {
        let Type::Reference(reference) = &self.ty else {
            return None;
        };
        match self.kind {
            Kind::Fresh => Some((*reference.elem).clone()),
            Kind::Isolated => {
                let Type::Path(path) = &*reference.elem else {
                    return None;
                };
                let syn::PathArguments::AngleBracketed(args) =
                    &path.path.segments.last()?.arguments
                else {
                    return None;
                };
                match args.args.first()? {
                    syn::GenericArgument::Type(ty) if args.args.len() == 1 => Some(ty.clone()),
                    _ => None,
                }
            }
            Kind::Container => None,
        }
    }
}

const WHAT_TO_WRITE: &str =
    "write `pg: &PostgresFixture` for the fixture `static PG: Shared<Postgres>` at its baseline, \
`db: &Isolated<PostgresFixture>` for a namespace of its own in `static DB: Shared<Postgres>`, \
or `web: &Container` for a container started from `fn web() -> ContainerDefinition`";

fn param(arg: &FnArg) -> syn::Result<Param> {
    let typed = match arg {
        FnArg::Typed(typed) => typed,
        FnArg::Receiver(r) => {
            return Err(syn::Error::new(
                r.span(),
                "#[seaworthy::test] cannot take `self`: a test is a free function",
            ))
        }
    };
    let ident = match &*typed.pat {
        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
        other => {
            return Err(syn::Error::new(
                other.span(),
                format!("#[seaworthy::test] names each parameter's fixture by the parameter's name: {WHAT_TO_WRITE}"),
            ))
        }
    };
    let Type::Reference(reference) = &*typed.ty else {
        return Err(syn::Error::new(
            typed.ty.span(),
            format!(
                "#[seaworthy::test] cannot provide a `{}` by value: {WHAT_TO_WRITE}",
                type_text(&typed.ty)
            ),
        ));
    };
    if reference.mutability.is_some() {
        return Err(syn::Error::new(
            typed.ty.span(),
            format!(
                "#[seaworthy::test] hands out shared references (`&`), not `&mut`: {WHAT_TO_WRITE}"
            ),
        ));
    }
    let last = match &*reference.elem {
        Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().map(|s| s.ident.to_string())
        }
        _ => None,
    };
    let kind = match last.as_deref() {
        Some("Isolated") => Kind::Isolated,
        Some("Container") => Kind::Container,
        Some(_) => Kind::Fresh,
        None => {
            return Err(syn::Error::new(
                typed.ty.span(),
                format!(
                    "#[seaworthy::test] cannot provide a `{}`: {WHAT_TO_WRITE}",
                    type_text(&typed.ty)
                ),
            ))
        }
    };
    Ok(Param {
        ident,
        ty: (*typed.ty).clone(),
        kind,
    })
}

fn type_text(ty: &Type) -> String {
    quote!(#ty).to_string().replace(" ", "")
}

fn parse_args(args: TokenStream2) -> syn::Result<(bool, Option<usize>)> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut multi_thread = false;
    let mut worker_threads = None;
    for meta in metas {
        let Meta::NameValue(nv) = &meta else {
            return Err(syn::Error::new(
                meta.span(),
                "#[seaworthy::test] takes `flavor = \"current_thread\" | \"multi_thread\"` and `worker_threads = N`",
            ));
        };
        let key = nv
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let lit = match &nv.value {
            Expr::Lit(l) => Some(&l.lit),
            _ => None,
        };
        match (key.as_str(), lit) {
            ("flavor", Some(Lit::Str(s))) if s.value() == "multi_thread" => multi_thread = true,
            ("flavor", Some(Lit::Str(s))) if s.value() == "current_thread" => multi_thread = false,
            ("worker_threads", Some(Lit::Int(n))) => {
                let n = n.base10_parse::<usize>()?;
                if n == 0 {
                    return Err(syn::Error::new(nv.value.span(), "worker_threads must be at least 1"));
                }
                worker_threads = Some(n);
                multi_thread = true;
            }
            _ => {
                return Err(syn::Error::new(
                    nv.span(),
                    "#[seaworthy::test] takes `flavor = \"current_thread\" | \"multi_thread\"` and `worker_threads = N`",
                ))
            }
        }
    }
    Ok((multi_thread, worker_threads))
}
