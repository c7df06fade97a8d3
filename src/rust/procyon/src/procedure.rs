use crate::rt::sys;
use crate::sats::{AlgebraicType, DecodeError, ProcyonType, Typespace};
use crate::{Identity, Timestamp};

/// What a procedure gets: the time (updated after each sleep) and who called.
pub struct ProcedureContext {
    pub timestamp: Timestamp,
    pub sender: Identity,
    _private: (),
}

impl ProcedureContext {
    pub(crate) fn new(timestamp: Timestamp, sender: Identity) -> Self {
        ProcedureContext { timestamp, sender, _private: () }
    }

    /// Suspends this procedure until `target` without holding a host thread. A target in the
    /// past returns at once. Afterwards `self.timestamp` is the time it woke.
    pub fn sleep_until(&mut self, target: Timestamp) {
        let woke = unsafe { sys::sleep_until(target.to_micros_since_unix_epoch()) };
        self.timestamp = Timestamp::from_micros_since_unix_epoch(woke);
    }
}

/// A function `#[procedure]` can export: `fn(&mut ProcedureContext, A, B, ..) -> R`.
pub trait ProcedureFn<Args>: 'static {
    fn param_types(typespace: &mut Typespace) -> Vec<AlgebraicType>;
    fn return_type(typespace: &mut Typespace) -> AlgebraicType;
    fn invoke(&self, ctx: &mut ProcedureContext, args: &mut &[u8]) -> Result<Vec<u8>, DecodeError>;
}

macro_rules! impl_procedure_fn {
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
            fn invoke(&self, ctx: &mut ProcedureContext, args: &mut &[u8]) -> Result<Vec<u8>, DecodeError> {
                $(let $arg = $arg::decode(args)?;)*
                if !args.is_empty() {
                    return Err(DecodeError(format!("{} bytes left over after the arguments", args.len())));
                }
                let mut out = Vec::new();
                self(ctx, $($arg),*).encode(&mut out);
                Ok(out)
            }
        }
    };
}

impl_procedure_fn!();
impl_procedure_fn!(A1);
impl_procedure_fn!(A1, A2);
impl_procedure_fn!(A1, A2, A3);
impl_procedure_fn!(A1, A2, A3, A4);
impl_procedure_fn!(A1, A2, A3, A4, A5);
impl_procedure_fn!(A1, A2, A3, A4, A5, A6);
impl_procedure_fn!(A1, A2, A3, A4, A5, A6, A7);
impl_procedure_fn!(A1, A2, A3, A4, A5, A6, A7, A8);
