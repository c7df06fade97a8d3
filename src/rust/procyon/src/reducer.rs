use crate::table::Db;
use crate::{Identity, Timestamp};

/// What a reducer (and a procedure's `with_tx` closure) gets: the time, the caller and the
/// tables, all inside one transaction.
pub struct ReducerContext {
    pub timestamp: Timestamp,
    pub sender: Identity,
    pub db: Db,
}

/// What a procedure's `with_tx` closure gets (SpacetimeDB's name for it): a reducer's context.
pub type TxContext = ReducerContext;

impl ReducerContext {
    pub(crate) fn new(timestamp: Timestamp, sender: Identity) -> Self {
        ReducerContext { timestamp, sender, db: Db::new() }
    }

    /// The caller's identity (the `sender` field, as SpacetimeDB's current bindings spell it).
    pub fn sender(&self) -> Identity {
        self.sender
    }
}
