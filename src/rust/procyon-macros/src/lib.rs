//! Code generation for Procyon modules. The output is small: it registers each function with
//! the SDK (`procyon::rt`), which does the work.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::quote;
use syn::{parse_macro_input, spanned::Spanned, FnArg, ItemFn, Pat};

/// Exports `fn f(ctx: &mut ProcedureContext, args..) -> R` as a procedure named `f`. Its results
/// reach the caller and the database's owner; `#[procedure(public)]` sends them to every subscriber.
#[proc_macro_attribute]
pub fn procedure(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = parse_macro_input!(item as ItemFn);
    let options = match FunctionOptions::parse(attr, &["public"]) {
        Ok(options) => options,
        Err(e) => return e.to_compile_error().into(),
    };
    let public = options.has("public");
    match register(&function, "procedure", quote!(#public,)) {
        Ok(registration) => quote!(#function #registration).into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Exports `fn f(ctx: &ReducerContext, args..)` (returning `()` or `Result<(), E>` for any `E: Display`) as a
/// reducer: it runs in one transaction. `#[reducer(init)]` runs once, in the transaction that
/// creates the database's tables; `#[reducer(client_connected)]` and
/// `#[reducer(client_disconnected)]` run when a hub connection to the database opens and closes
/// (an `Err` from the first refuses the connection); `#[reducer(public)]` sends its results to
/// every subscriber.
#[proc_macro_attribute]
pub fn reducer(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = parse_macro_input!(item as ItemFn);
    let lifecycles = ["init", "client_connected", "client_disconnected"];
    let allowed: Vec<&str> = lifecycles.iter().copied().chain(["public"]).collect();
    let options = match FunctionOptions::parse(attr, &allowed) {
        Ok(options) => options,
        Err(e) => return e.to_compile_error().into(),
    };
    let kind = match lifecycles.iter().filter(|l| options.has(l)).collect::<Vec<_>>()[..] {
        [] => quote!(::procyon::rt::KIND_REDUCER),
        [&"init"] => quote!(::procyon::rt::KIND_INIT_REDUCER),
        [&"client_connected"] => quote!(::procyon::rt::KIND_CLIENT_CONNECTED),
        [&"client_disconnected"] => quote!(::procyon::rt::KIND_CLIENT_DISCONNECTED),
        _ => return syn::Error::new(function.sig.ident.span(), "a reducer runs in one lifecycle at most: init, client_connected or client_disconnected").to_compile_error().into(),
    };
    let public = options.has("public");
    match register(&function, "reducer", quote!(#kind, #public,)) {
        Ok(registration) => quote!(#function #registration).into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The words inside `#[procedure(...)]` or `#[reducer(...)]`, separated by commas.
struct FunctionOptions(Vec<String>);

impl FunctionOptions {
    fn parse(attr: TokenStream, allowed: &[&str]) -> syn::Result<Self> {
        let words = syn::parse::Parser::parse(syn::punctuated::Punctuated::<syn::Ident, syn::Token![,]>::parse_terminated, attr)?;
        let mut options = Vec::new();
        for word in words {
            let text = word.to_string();
            if !allowed.contains(&text.as_str()) {
                return Err(syn::Error::new(word.span(), format!("expected one of: {}", allowed.join(", "))));
            }
            options.push(text);
        }
        Ok(FunctionOptions(options))
    }

    fn has(&self, option: &str) -> bool {
        self.0.iter().any(|o| o == option)
    }
}

/// The exported registration function the host calls before describing the module.
fn register(function: &ItemFn, kind: &str, extra: proc_macro2::TokenStream) -> syn::Result<proc_macro2::TokenStream> {
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
                ::procyon::rt::#register(stringify!(#name), #extra &[#(#param_names),*], #name);
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

/// Gives a struct with named fields (a product) or an enum (a sum) an algebraic type and a BSATN
/// encoding, so it can be an argument, a return value or a column. A variant carries nothing, one
/// value, named fields (`Rect { w: u16, h: u16 }`) or several values (`Pair(u8, u8)`, fields
/// `_0`, `_1`): the last two as an anonymous product. The type is named in the module's
/// typespace after the Rust type.
#[proc_macro_derive(ProcyonType)]
pub fn derive_procyon_type(item: TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as syn::DeriveInput);
    match derive_type(&input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn derive_type(input: &syn::DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(input.generics.span(), "#[derive(ProcyonType)] does not support generic types"));
    }
    let name = &input.ident;
    let name_text = name.to_string();
    let (definition, encode, decode) = match &input.data {
        syn::Data::Struct(data) => derive_struct(name, data)?,
        syn::Data::Enum(data) => derive_enum(name, &name_text, data)?,
        syn::Data::Union(data) => {
            return Err(syn::Error::new(data.union_token.span, "#[derive(ProcyonType)] does not support unions"))
        }
    };
    Ok(quote! {
        impl ::procyon::ProcyonType for #name {
            fn algebraic_type(typespace: &mut ::procyon::sats::Typespace) -> ::procyon::sats::AlgebraicType {
                typespace.named::<Self>(#name_text, |typespace| { let _ = &typespace; #definition })
            }
            fn encode(&self, out: &mut ::std::vec::Vec<u8>) {
                #encode
            }
            fn decode(input: &mut &[u8]) -> ::std::result::Result<Self, ::procyon::sats::DecodeError> {
                #decode
            }
        }
    })
}

type Derived = (proc_macro2::TokenStream, proc_macro2::TokenStream, proc_macro2::TokenStream);

fn derive_struct(name: &syn::Ident, data: &syn::DataStruct) -> syn::Result<Derived> {
    let fields: Vec<&syn::Field> = match &data.fields {
        syn::Fields::Named(named) => named.named.iter().collect(),
        syn::Fields::Unit => Vec::new(),
        syn::Fields::Unnamed(unnamed) => {
            return Err(syn::Error::new(unnamed.span(), "#[derive(ProcyonType)] needs named fields (they become JSON keys)"))
        }
    };
    let idents: Vec<&syn::Ident> = fields.iter().filter_map(|f| f.ident.as_ref()).collect();
    let names: Vec<String> = idents.iter().map(|i| i.to_string()).collect();
    let types: Vec<&syn::Type> = fields.iter().map(|f| &f.ty).collect();
    let construct = if matches!(data.fields, syn::Fields::Unit) {
        quote!(#name)
    } else {
        quote!(#name { #(#idents: <#types as ::procyon::ProcyonType>::decode(input)?),* })
    };
    Ok((
        quote!(::procyon::sats::AlgebraicType::Product(::std::vec![
            #(::procyon::sats::Element::named(#names, <#types as ::procyon::ProcyonType>::algebraic_type(typespace))),*
        ])),
        quote!(let _ = &out; #(::procyon::ProcyonType::encode(&self.#idents, out);)*),
        quote!(let _ = &input; ::std::result::Result::Ok(#construct)),
    ))
}

fn derive_enum(name: &syn::Ident, name_text: &str, data: &syn::DataEnum) -> syn::Result<Derived> {
    if data.variants.len() > 256 {
        return Err(syn::Error::new(data.brace_token.span, "an enum may have at most 256 variants"));
    }
    let mut elements = Vec::new();
    let mut encodes = Vec::new();
    let mut decodes = Vec::new();
    for (index, variant) in data.variants.iter().enumerate() {
        let tag = index as u8;
        let ident = &variant.ident;
        let text = ident.to_string();
        match &variant.fields {
            syn::Fields::Unit => {
                elements.push(quote!(::procyon::sats::Element::named(#text, ::procyon::sats::AlgebraicType::unit())));
                encodes.push(quote!(#name::#ident => out.push(#tag)));
                decodes.push(quote!(#tag => ::std::result::Result::Ok(#name::#ident)));
            }
            syn::Fields::Unnamed(fields) if fields.unnamed.len() == 1 => {
                let ty = &fields.unnamed[0].ty;
                elements.push(quote!(::procyon::sats::Element::named(#text, <#ty as ::procyon::ProcyonType>::algebraic_type(typespace))));
                encodes.push(quote!(#name::#ident(value) => { out.push(#tag); ::procyon::ProcyonType::encode(value, out); }));
                decodes.push(quote!(#tag => ::std::result::Result::Ok(#name::#ident(<#ty as ::procyon::ProcyonType>::decode(input)?))));
            }
            // Named fields, or several unnamed ones (named `_0`, `_1`, ..): an anonymous product.
            syn::Fields::Named(_) | syn::Fields::Unnamed(_) => {
                let named = matches!(variant.fields, syn::Fields::Named(_));
                let binds: Vec<syn::Ident> = variant
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| f.ident.clone().unwrap_or_else(|| syn::Ident::new(&format!("field{}", i), Span::call_site())))
                    .collect();
                let names: Vec<String> = variant
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| f.ident.as_ref().map_or_else(|| format!("_{}", i), |ident| ident.to_string()))
                    .collect();
                let types: Vec<&syn::Type> = variant.fields.iter().map(|f| &f.ty).collect();
                let (pattern, construct) = if named {
                    (quote!(#name::#ident { #(#binds),* }), quote!(#name::#ident { #(#binds: <#types as ::procyon::ProcyonType>::decode(input)?),* }))
                } else {
                    (quote!(#name::#ident(#(#binds),*)), quote!(#name::#ident(#(<#types as ::procyon::ProcyonType>::decode(input)?),*)))
                };
                elements.push(quote!(::procyon::sats::Element::named(#text, ::procyon::sats::AlgebraicType::Product(::std::vec![
                    #(::procyon::sats::Element::named(#names, <#types as ::procyon::ProcyonType>::algebraic_type(typespace))),*
                ]))));
                encodes.push(quote!(#pattern => { out.push(#tag); #(::procyon::ProcyonType::encode(#binds, out);)* }));
                decodes.push(quote!(#tag => ::std::result::Result::Ok(#construct)));
            }
        }
    }
    let empty = if data.variants.is_empty() { quote!(match *self {}) } else { quote!(match self { #(#encodes),* }) };
    Ok((
        quote!(::procyon::sats::AlgebraicType::Sum(::std::vec![#(#elements),*])),
        empty,
        quote! {
            match ::procyon::sats::decode_tag(input)? {
                #(#decodes,)*
                tag => ::std::result::Result::Err(::procyon::sats::unknown_variant(#name_text, tag)),
            }
        },
    ))
}

/// Arguments of `#[table(accessor = person, public)]` (or `name = person`).
struct TableArgs {
    name: syn::Ident,
    public: bool,
    scheduled: Option<ScheduledArgs>,
    indexes: Vec<IndexArgs>,
}

/// `scheduled(function)` or `scheduled(function, retries = 3, backoff = "2s")`.
struct ScheduledArgs {
    function: syn::Ident,
    retries: u32,
    /// The first retry's delay, in microseconds (1 s unless given).
    backoff: i64,
}

impl syn::parse::Parse for ScheduledArgs {
    fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<Self> {
        let function = input.parse::<syn::Ident>()?;
        let (mut retries, mut backoff) = (None, None);
        while !input.is_empty() {
            input.parse::<syn::Token![,]>()?;
            let key: syn::Ident = input.parse()?;
            input.parse::<syn::Token![=]>()?;
            match key.to_string().as_str() {
                "retries" => retries = Some(input.parse::<syn::LitInt>()?.base10_parse::<u32>()?),
                "backoff" => backoff = Some(parse_duration(input.parse::<syn::Lit>().map(|l| quote!(#l))?)?),
                _ => return Err(syn::Error::new(key.span(), "expected `retries = n` or `backoff = \"2s\"`")),
            }
        }
        if retries.is_none() && backoff.is_some() {
            return Err(input.error("`backoff` needs `retries = n`"));
        }
        Ok(ScheduledArgs { function, retries: retries.unwrap_or(0), backoff: backoff.unwrap_or(1_000_000) })
    }
}

/// `index(accessor = by_a_b, btree(columns = [a, b]))` (or `name = by_a_b`) in `#[table(...)]`.
struct IndexArgs {
    name: syn::Ident,
    columns: Vec<syn::Ident>,
}

/// The most columns an index may have: `filter` takes their values as a tuple of at most this many.
const MAX_INDEX_COLUMNS: usize = 6;

/// Reads comma-separated options `key …`, handing each key to `option` to read what follows it.
fn parse_options(input: syn::parse::ParseStream<'_>, mut option: impl FnMut(syn::Ident, syn::parse::ParseStream<'_>) -> syn::Result<()>) -> syn::Result<()> {
    while !input.is_empty() {
        let key: syn::Ident = input.parse()?;
        option(key, input)?;
        if !input.is_empty() {
            input.parse::<syn::Token![,]>()?;
        }
    }
    Ok(())
}

/// The name after `= ` in `accessor = x` (or `name = x`).
fn parse_assigned(input: syn::parse::ParseStream<'_>) -> syn::Result<syn::Ident> {
    input.parse::<syn::Token![=]>()?;
    input.parse()
}

impl syn::parse::Parse for IndexArgs {
    fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<Self> {
        const EXPECTED: &str = "expected `index(accessor = name, btree(columns = [a, b]))`";
        let mut name = None;
        let mut columns = None;
        parse_options(input, |key, input| {
            match key.to_string().as_str() {
                "name" | "accessor" => name = Some(parse_assigned(input)?),
                "btree" => {
                    let content;
                    syn::parenthesized!(content in input);
                    let word: syn::Ident = content.parse()?;
                    if word != "columns" {
                        return Err(syn::Error::new(word.span(), EXPECTED));
                    }
                    content.parse::<syn::Token![=]>()?;
                    let list;
                    syn::bracketed!(list in content);
                    let parsed = syn::punctuated::Punctuated::<syn::Ident, syn::Token![,]>::parse_terminated(&list)?;
                    if parsed.is_empty() || parsed.len() > MAX_INDEX_COLUMNS {
                        return Err(syn::Error::new(key.span(), format!("an index has 1 to {} columns", MAX_INDEX_COLUMNS)));
                    }
                    columns = Some(parsed.into_iter().collect());
                }
                _ => return Err(syn::Error::new(key.span(), EXPECTED)),
            }
            Ok(())
        })?;
        match (name, columns) {
            (Some(name), Some(columns)) => Ok(IndexArgs { name, columns }),
            _ => Err(input.error(EXPECTED)),
        }
    }
}

impl syn::parse::Parse for TableArgs {
    fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<Self> {
        let mut name = None;
        let mut public = false;
        let mut scheduled = None;
        let mut indexes = Vec::new();
        parse_options(input, |key, input| {
            match key.to_string().as_str() {
                // `accessor` is SpacetimeDB 2.x's spelling; `name` its earlier one.
                "name" | "accessor" => name = Some(parse_assigned(input)?),
                "public" => public = true,
                "scheduled" => {
                    let content;
                    syn::parenthesized!(content in input);
                    scheduled = Some(content.parse::<ScheduledArgs>()?);
                }
                "index" => {
                    let content;
                    syn::parenthesized!(content in input);
                    indexes.push(content.parse::<IndexArgs>()?);
                }
                _ => {
                    return Err(syn::Error::new(
                        key.span(),
                        "expected `accessor = ...` (or `name = ...`), `public`, `scheduled(function, retries = n, backoff = \"2s\")` or `index(accessor = ..., btree(columns = [...]))`",
                    ))
                }
            }
            Ok(())
        })?;
        let name = name.ok_or_else(|| input.error("#[table] needs `accessor = ...` (or `name = ...`)"))?;
        Ok(TableArgs { name, public, scheduled, indexes })
    }
}

/// Column attributes and the SDK constants (`procyon::rt::COLUMN_*`, the ABI's column flags) they set.
const COLUMN_ATTRIBUTES: [(&str, &str); 4] =
    [("primary_key", "COLUMN_PRIMARY_KEY"), ("auto_inc", "COLUMN_AUTO_INC"), ("unique", "COLUMN_UNIQUE"), ("index", "COLUMN_INDEXED")];

/// `#[default(value)]`: the value, of the field's type, that a republish adding the column fills
/// existing rows with. A string literal becomes a `String` (`#[default("")]`, as in SpacetimeDB).
fn column_default(attr: &syn::Attribute, ty: &syn::Type) -> syn::Result<proc_macro2::TokenStream> {
    let value: syn::Expr = attr
        .parse_args()
        .map_err(|e| syn::Error::new(e.span(), "expected `#[default(value)]` with a value of the column's type, such as `#[default(0)]` or `#[default(\"\")]`"))?;
    let value = match &value {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(_), .. }) => quote!(::std::convert::Into::into(#value)),
        _ => quote!(#value),
    };
    Ok(quote!(::procyon::rt::column_default::<#ty>(#value)))
}

/// Stores a struct as a Postgres table: `#[table(accessor = person, public)]` (or `name = person`) on a struct with named
/// fields, which may be marked `#[primary_key]`, `#[auto_inc]`, `#[unique]`, `#[index(btree)]` or
/// `#[default(value)]` (what a republish adding the column fills existing rows with).
/// Generates `ctx.db.person()` (with `insert`, `iter`, `count`, `delete` from `procyon::Table`),
/// for each unique column `ctx.db.person().<column>()` with `find`, `update`, `delete`, and for each
/// `#[index(btree)]` column (not unique) and each `index(accessor = x, btree(columns = [a, b]))` of
/// the table a `procyon::RangedIndex` with `filter` and `delete`.
#[proc_macro_attribute]
pub fn table(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(attr as TableArgs);
    let mut row = parse_macro_input!(item as syn::ItemStruct);
    match derive_table(&args, &mut row) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn derive_table(args: &TableArgs, row: &mut syn::ItemStruct) -> syn::Result<proc_macro2::TokenStream> {
    let fields = match &mut row.fields {
        syn::Fields::Named(named) => &mut named.named,
        other => return Err(syn::Error::new(other.span(), "a table row needs named fields (they become columns)")),
    };
    let mut columns = Vec::new();
    let mut unique = Vec::new();
    // Each index's accessor, column types and (for the table's `index(...)`) column positions;
    // its position in this list is the index number the host knows it by.
    let mut indexes: Vec<(syn::Ident, Vec<syn::Type>, Option<Vec<u32>>)> = Vec::new();
    for (index, field) in fields.iter_mut().enumerate() {
        let mut attributes = Vec::new();
        let mut default = None;
        for attr in std::mem::take(&mut field.attrs) {
            if attr.path.is_ident("default") {
                default = Some(column_default(&attr, &field.ty)?);
            } else if let Some(&(name, constant)) = COLUMN_ATTRIBUTES.iter().find(|(name, _)| attr.path.is_ident(name)) {
                if name == "index" && !matches!(attr.parse_args::<syn::Ident>(), Ok(kind) if kind == "btree") {
                    return Err(syn::Error::new(attr.span(), "expected #[index(btree)]"));
                }
                attributes.push((name, syn::Ident::new(constant, Span::call_site())));
            } else {
                field.attrs.push(attr);
            }
        }
        let ident = field.ident.clone().expect("named field");
        let column = ident.to_string();
        let has = |wanted: &str| attributes.iter().any(|(name, _)| *name == wanted);
        if has("primary_key") || has("unique") {
            unique.push((ident, field.ty.clone(), index as u32));
        } else if has("index") {
            indexes.push((ident, vec![field.ty.clone()], None));
        }
        let flags = attributes.iter().map(|(_, constant)| quote!(::procyon::rt::#constant));
        let default = default.unwrap_or_else(|| quote!(::std::option::Option::None));
        columns.push(quote!((#column, 0 #(| #flags)*, #default)));
    }
    for declared in &args.indexes {
        let mut positions = Vec::new();
        let mut types = Vec::new();
        for column in &declared.columns {
            let position = fields
                .iter()
                .position(|f| f.ident.as_ref() == Some(column))
                .ok_or_else(|| syn::Error::new(column.span(), format!("index {}: the row has no field `{}`", declared.name, column)))?;
            if positions.contains(&(position as u32)) {
                return Err(syn::Error::new(column.span(), format!("index {} names `{}` twice", declared.name, column)));
            }
            positions.push(position as u32);
            types.push(fields[position].ty.clone());
        }
        indexes.push((declared.name.clone(), types, Some(positions)));
    }
    let row_name = &row.ident;
    let vis = &row.vis;
    let (scheduled, scheduled_check) = match &args.scheduled {
        Some(ScheduledArgs { function, retries, backoff }) => {
            for (column, wanted) in [("scheduled_id", "u64"), ("scheduled_at", "ScheduleAt")] {
                let found = fields.iter().any(|f| f.ident.as_ref().map_or(false, |i| i == column) && quote!(#f).to_string().contains(wanted));
                if !found {
                    return Err(syn::Error::new(
                        row.ident.span(),
                        format!("a scheduled table needs `#[primary_key] #[auto_inc] scheduled_id: u64` and `scheduled_at: ScheduleAt`; `{}: {}` is missing", column, wanted),
                    ));
                }
            }
            let text = function.to_string();
            (
                quote!(::std::option::Option::Some((#text, #retries, #backoff))),
                quote! {
                    const _: () = {
                        #[allow(dead_code)]
                        fn __procyon_check_scheduled_function() {
                            ::procyon::rt::scheduled_function::<#row_name, _, _>(&#function);
                        }
                    };
                },
            )
        }
        None => (quote!(::std::option::Option::None), quote!()),
    };
    let table = &args.name;
    let table_text = table.to_string();
    let public = args.public;
    let export = format!("__procyon_preinit__10_table_{}", table_text);
    let unique_trait = syn::Ident::new(&format!("{}__columns", table_text), table.span());
    let unique_methods = unique.iter().map(|(ident, ty, _)| quote!(fn #ident(&self) -> ::procyon::UniqueColumn<#row_name, #ty>;));
    let unique_impls = unique
        .iter()
        .map(|(ident, ty, index)| quote!(fn #ident(&self) -> ::procyon::UniqueColumn<#row_name, #ty> { ::procyon::UniqueColumn::new(#table_text, #index) }));
    let index_methods = indexes.iter().map(|(ident, types, _)| quote!(fn #ident(&self) -> ::procyon::RangedIndex<#row_name, (#(#types,)*)>;));
    let index_impls = indexes.iter().enumerate().map(|(number, (ident, types, _))| {
        let number = number as u32;
        quote!(fn #ident(&self) -> ::procyon::RangedIndex<#row_name, (#(#types,)*)> { ::procyon::RangedIndex::new(#table_text, #number) })
    });
    let declared = indexes.iter().filter_map(|(ident, _, positions)| {
        let name = ident.to_string();
        positions.as_ref().map(|positions| quote!((#name, &[#(#positions),*])))
    });
    Ok(quote! {
        #[derive(::procyon::ProcyonType)]
        #row

        const _: () = {
            #[export_name = #export]
            extern "C" fn __procyon_register() {
                ::procyon::rt::register_table::<#row_name>(#table_text, #public, ::std::vec![#(#columns),*], #scheduled, &[#(#declared),*]);
            }
        };

        #scheduled_check

        #[allow(non_camel_case_types)]
        #vis trait #table {
            fn #table(&self) -> ::procyon::TableHandle<#row_name>;
        }

        impl #table for ::procyon::Db {
            fn #table(&self) -> ::procyon::TableHandle<#row_name> {
                ::procyon::TableHandle::new(#table_text)
            }
        }

        #[allow(non_camel_case_types)]
        #vis trait #unique_trait {
            #(#unique_methods)*
            #(#index_methods)*
        }

        impl #unique_trait for ::procyon::TableHandle<#row_name> {
            #(#unique_impls)*
            #(#index_impls)*
        }
    })
}

/// A `TimeDuration` written with a unit, checked at compile time: `duration!("1500ms")`,
/// `duration!(2s)`. Units: `us`, `ms`, `s`, `m` (minutes), `h`, `d`; the number is a whole one.
#[proc_macro]
pub fn duration(input: TokenStream) -> TokenStream {
    match parse_duration(input.into()) {
        Ok(micros) => quote!(::procyon::TimeDuration::from_micros(#micros)).into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn parse_duration(input: proc_macro2::TokenStream) -> syn::Result<i64> {
    let literal: syn::Lit = syn::parse2(input)?;
    let (text, span) = match &literal {
        syn::Lit::Str(text) => (text.value(), text.span()),
        syn::Lit::Int(int) => (format!("{}{}", int.base10_digits(), int.suffix()), int.span()),
        other => return Err(syn::Error::new(other.span(), "expected a duration such as \"1500ms\" or 2s")),
    };
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '_').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let per_unit: i64 = match unit.trim() {
        "us" | "µs" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" | "min" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        other => return Err(syn::Error::new(span, format!("unknown unit `{}`: use us, ms, s, m, h or d", other))),
    };
    number
        .replace('_', "")
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit))
        .ok_or_else(|| syn::Error::new(span, format!("`{}` is not a whole number of {} that fits in 64 bits of microseconds", number, unit)))
}
