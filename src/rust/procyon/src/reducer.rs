use crate::random::CallRng;
use crate::table::Db;
use crate::{Identity, Timestamp};

/// What a reducer (and a procedure's `with_tx` closure) gets: the time, the caller and the
/// tables, all inside one transaction.
pub struct ReducerContext {
    pub timestamp: Timestamp,
    pub sender: Identity,
    pub db: Db,
    rng: CallRng,
}

/// What a procedure's `with_tx` closure gets (SpacetimeDB's name for it): a reducer's context.
pub type TxContext = ReducerContext;

impl ReducerContext {
    pub(crate) fn new(timestamp: Timestamp, sender: Identity) -> Self {
        ReducerContext { timestamp, sender, db: Db::new(), rng: CallRng::new() }
    }

    crate::context::context_methods!();
}
