//! What every context (`ReducerContext`, `ProcedureContext`) offers besides its own methods.

/// The methods both contexts have, written once: a macro rather than a trait, so that they are
/// inherent and `ctx.sender()` needs no import. The context has `sender`, `connection_id` and
/// `rng` fields.
macro_rules! context_methods {
    () => {
        /// The caller's identity (the `sender` field, as SpacetimeDB's current bindings spell it).
        pub fn sender(&self) -> Identity {
            self.sender
        }

        /// The hub connection the call came over; `None` for HTTP calls, scheduled runs and the
        /// init reducer. Read when the call starts, so it stays the same across sleeps.
        pub fn connection_id(&self) -> Option<ConnectionId> {
            self.connection_id
        }

        /// Random numbers for this call: `ctx.rng().gen_range(1..=6)` with `procyon::rand::Rng`.
        pub fn rng(&self) -> &CallRng {
            &self.rng
        }

        /// A random (version 4) UUID drawn from `ctx.rng()`. A `Result` as in SpacetimeDB's
        /// bindings, so `ctx.new_uuid_v4()?` ports unchanged; it never fails.
        pub fn new_uuid_v4(&self) -> Result<crate::Uuid, std::convert::Infallible> {
            Ok(crate::uuid::new_v4(&self.rng))
        }

        /// A time-ordered (version 7) UUID: each one this server makes for the database sorts
        /// after every one it made for it before, in any call on any instance (the README's
        /// "UUIDs" says what holds across servers). A `Result` as in SpacetimeDB's bindings; it
        /// never fails.
        pub fn new_uuid_v7(&self) -> Result<crate::Uuid, std::convert::Infallible> {
            Ok(crate::uuid::new_v7(&self.rng))
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
    };
}

pub(crate) use context_methods;
