//! Code generation for Procyon modules. The output is small: it registers each function with
//! the SDK (`procyon::rt`), which does the work.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::quote;
use syn::{parse_macro_input, spanned::Spanned, FnArg, ItemFn, Pat};

/// Exports `fn f(ctx: &mut ProcedureContext, args..) -> R` as a procedure named `f`.
#[proc_macro_attribute]
pub fn procedure(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = parse_macro_input!(item as ItemFn);
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new(attr.span(), "#[procedure] takes no arguments").to_compile_error().into();
    }
    match register(&function, "procedure") {
        Ok(registration) => quote!(#function #registration).into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The exported registration function the host calls before describing the module.
fn register(function: &ItemFn, kind: &str) -> syn::Result<proc_macro2::TokenStream> {
    let name = &function.sig.ident;
    let mut inputs = function.sig.inputs.iter();
    if inputs.next().is_none() {
        return Err(syn::Error::new(
            function.sig.span(),
            format!("a {} takes a context as its first parameter", kind),
        ));
    }
    let param_names = inputs.map(param_name).collect::<syn::Result<Vec<_>>>()?;
    let export = format!("__procyon_preinit__20_{}_{}", kind, name);
    let register = syn::Ident::new(&format!("register_{}", kind), Span::call_site());
    Ok(quote! {
        const _: () = {
            #[export_name = #export]
            extern "C" fn __procyon_register() {
                ::procyon::rt::#register(stringify!(#name), &[#(#param_names),*], #name);
            }
        };
    })
}

fn param_name(arg: &FnArg) -> syn::Result<String> {
    if let FnArg::Typed(typed) = arg {
        if let Pat::Ident(ident) = &*typed.pat {
            return Ok(ident.ident.to_string());
        }
    }
    Err(syn::Error::new(arg.span(), "parameters of exported functions must be plain names"))
}
