//! The shapes of function `#[procedure]` and `#[reducer]` can export, for up to 8 arguments.

use crate::procedure::ProcedureContext;
use crate::reducer::ReducerContext;
use crate::rt::Outcome;
use crate::sats::{AlgebraicType, DecodeError, ProcyonType, Typespace};

/// `fn(&mut ProcedureContext, A, B, ..) -> R`.
pub trait ProcedureFn<Args>: 'static {
    fn param_types(typespace: &mut Typespace) -> Vec<AlgebraicType>;
    fn return_type(typespace: &mut Typespace) -> AlgebraicType;
    fn invoke(&self, ctx: &mut ProcedureContext, args: &mut &[u8]) -> Result<Outcome, DecodeError>;
}

/// `fn(&ReducerContext, A, B, ..)` returning `()` or `Result<(), E>` for any `E: Display`.
pub trait ReducerFn<Args>: 'static {
    fn param_types(typespace: &mut Typespace) -> Vec<AlgebraicType>;
    fn invoke(&self, ctx: &ReducerContext, args: &mut &[u8]) -> Result<Outcome, DecodeError>;
}

/// What a reducer may return: `Err` rolls its transaction back and reaches the caller (422).
pub trait ReducerResult {
    fn into_result(self) -> Result<(), String>;
}

impl ReducerResult for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

/// A reducer may fail with any error that can be shown: its text is the error callers get.
impl<E: std::fmt::Display> ReducerResult for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|error| error.to_string())
    }
}

fn finish(args: &mut &[u8]) -> Result<(), DecodeError> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(DecodeError(format!("{} bytes left over after the arguments", args.len())))
    }
}

macro_rules! impl_functions {
    ($($arg:ident),*) => {
        impl<Func, Ret, $($arg),*> ProcedureFn<($($arg,)*)> for Func
        where
            Func: Fn(&mut ProcedureContext, $($arg),*) -> Ret + 'static,
            Ret: ProcyonType,
            $($arg: ProcyonType,)*
        {
            fn param_types(_typespace: &mut Typespace) -> Vec<AlgebraicType> {
                vec![$($arg::algebraic_type(_typespace)),*]
            }

            fn return_type(typespace: &mut Typespace) -> AlgebraicType {
                Ret::algebraic_type(typespace)
            }

            #[allow(non_snake_case)]
            fn invoke(&self, ctx: &mut ProcedureContext, args: &mut &[u8]) -> Result<Outcome, DecodeError> {
                $(let $arg = $arg::decode(args)?;)*
                finish(args)?;
                let mut out = Vec::new();
                self(ctx, $($arg),*).encode(&mut out);
                Ok(Outcome::Value(out))
            }
        }

        impl<Func, Ret, $($arg),*> ReducerFn<($($arg,)*)> for Func
        where
            Func: Fn(&ReducerContext, $($arg),*) -> Ret + 'static,
            Ret: ReducerResult,
            $($arg: ProcyonType,)*
        {
            fn param_types(_typespace: &mut Typespace) -> Vec<AlgebraicType> {
                vec![$($arg::algebraic_type(_typespace)),*]
            }

            #[allow(non_snake_case)]
            fn invoke(&self, ctx: &ReducerContext, args: &mut &[u8]) -> Result<Outcome, DecodeError> {
                $(let $arg = $arg::decode(args)?;)*
                finish(args)?;
                Ok(match self(ctx, $($arg),*).into_result() {
                    Ok(()) => Outcome::Value(Vec::new()),
                    Err(message) => Outcome::Failed(message),
                })
            }
        }
    };
}

impl_functions!();
impl_functions!(A1);
impl_functions!(A1, A2);
impl_functions!(A1, A2, A3);
impl_functions!(A1, A2, A3, A4);
impl_functions!(A1, A2, A3, A4, A5);
impl_functions!(A1, A2, A3, A4, A5, A6);
impl_functions!(A1, A2, A3, A4, A5, A6, A7);
impl_functions!(A1, A2, A3, A4, A5, A6, A7, A8);

/// What `#[table(scheduled(f))]` requires of `f`: a reducer `fn(&ReducerContext, Row)` or a
/// procedure `fn(&mut ProcedureContext, Row) -> R` taking the scheduled table's row. `Marker`
/// tells the two kinds apart, so one attribute accepts either.
pub trait ExportFunctionForScheduledTable<Row, Marker> {}

/// The marker of a reducer target.
pub struct ReducerTarget<Ret>(std::marker::PhantomData<Ret>);

/// The marker of a procedure target.
pub struct ProcedureTarget<Ret>(std::marker::PhantomData<Ret>);

impl<Row, Ret: ReducerResult, F: Fn(&ReducerContext, Row) -> Ret> ExportFunctionForScheduledTable<Row, ReducerTarget<Ret>> for F {}

impl<Row, Ret: ProcyonType, F: Fn(&mut ProcedureContext, Row) -> Ret> ExportFunctionForScheduledTable<Row, ProcedureTarget<Ret>> for F {}
