use crate::random::CallRng;
use crate::table::Db;
use crate::{ConnectionId, Identity, Timestamp};

/// What a reducer (and a procedure's `with_tx` closure) gets: the time, the caller and the
/// tables, all inside one transaction.
pub struct ReducerContext {
    pub timestamp: Timestamp,
    pub sender: Identity,
    pub db: Db,
    connection_id: Option<ConnectionId>,
    rng: CallRng,
}

/// What a procedure's `with_tx` closure gets (SpacetimeDB's name for it): a reducer's context.
pub type TxContext = ReducerContext;

impl ReducerContext {
    pub(crate) fn new(timestamp: Timestamp, sender: Identity, connection_id: Option<ConnectionId>) -> Self {
        ReducerContext { timestamp, sender, db: Db::new(), connection_id, rng: CallRng::new() }
    }

    crate::context::context_methods!();
}
