use crate::http::HttpClient;
use crate::random::CallRng;
use crate::reducer::TxContext;
use crate::rt::{sys, TX_RETRY};
use crate::{ConnectionId, Identity, Timestamp};

/// What a procedure gets: the time (updated after each sleep), who called, and outbound HTTP.
pub struct ProcedureContext {
    pub timestamp: Timestamp,
    pub sender: Identity,
    /// Outbound HTTP requests (`ctx.http.get(uri)`); refused inside `with_tx`.
    pub http: HttpClient,
    connection_id: Option<ConnectionId>,
    rng: CallRng,
}

/// How often `with_tx` runs a closure whose transaction Postgres could not serialize.
const TX_ATTEMPTS: u32 = 5;

impl ProcedureContext {
    pub(crate) fn new(timestamp: Timestamp, sender: Identity, connection_id: Option<ConnectionId>) -> Self {
        ProcedureContext { timestamp, sender, http: HttpClient {}, connection_id, rng: CallRng::new() }
    }

    crate::context::context_methods!();

    /// Suspends this procedure until `target` without holding a host thread. A target in the
    /// past returns at once. Afterwards `self.timestamp` is the time it woke.
    pub fn sleep_until(&mut self, target: Timestamp) {
        let woke = unsafe { sys::sleep_until(target.to_micros_since_unix_epoch()) };
        self.timestamp = Timestamp::from_micros_since_unix_epoch(woke);
    }

    /// Runs `body` in a serializable transaction and commits it. If Postgres cannot serialize
    /// the transaction, it is rolled back and `body` runs again (up to 5 times), so `body`
    /// should only touch the database.
    pub fn with_tx<R>(&mut self, body: impl Fn(&TxContext) -> R) -> R {
        match self.try_with_tx(|tx| Ok::<R, std::convert::Infallible>(body(tx))) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// Like `with_tx`, but an `Err` from `body` rolls the transaction back and is returned.
    pub fn try_with_tx<T, E>(&mut self, body: impl Fn(&TxContext) -> Result<T, E>) -> Result<T, E> {
        for _ in 0..TX_ATTEMPTS {
            unsafe { sys::tx_begin() };
            let tx = TxContext::new(self.timestamp, self.sender, self.connection_id);
            match body(&tx) {
                Ok(value) => {
                    if unsafe { sys::tx_commit() } != TX_RETRY {
                        return Ok(value);
                    }
                }
                Err(error) => {
                    unsafe { sys::tx_rollback() };
                    return Err(error);
                }
            }
        }
        panic!("the transaction could not be serialized after {} attempts", TX_ATTEMPTS)
    }
}
