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

    /// The caller's identity (the `sender` field, as SpacetimeDB's current bindings spell it).
    pub fn sender(&self) -> Identity {
        self.sender
    }

    /// Random numbers for this call: `ctx.rng().gen_range(1..=6)` with `procyon::rand::Rng`.
    pub fn rng(&self) -> &CallRng {
        &self.rng
    }

    /// The database's own identity, the `sender` of its scheduled runs: a scheduled function
    /// that only the schedule may run checks `ctx.sender() == ctx.database_identity()`.
    pub fn database_identity(&self) -> Identity {
        crate::rt::database_identity()
    }

    #[deprecated(note = "use `database_identity()`, as SpacetimeDB's current bindings do")]
    pub fn identity(&self) -> Identity {
        self.database_identity()
    }
}
