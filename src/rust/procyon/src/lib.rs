//! The Procyon module SDK. Write `#[procedure]` functions; the host calls them over HTTP and
//! SignalR. See the repository README for the whole picture.

#[cfg(target_arch = "wasm32")]
mod alloc;
mod context;
mod function;
pub mod http;
mod identity;
mod index;
mod procedure;
mod random;
mod reducer;
mod table;
#[doc(hidden)]
pub mod rt;
pub mod sats;
mod time;
pub mod uuid;

pub use identity::{ConnectionId, Identity};
pub use index::{FilterableValue, IndexScanRangeBounds, IndexScanRangeBoundsTerminator, RangedIndex, SingleBound};
pub use function::{ExportFunctionForScheduledTable, ProcedureFn, ProcedureTarget, ReducerFn, ReducerResult, ReducerTarget};
pub use procedure::ProcedureContext;
/// The `rand` crate (0.8), for `use procyon::rand::Rng;` and `ctx.rng().gen_range(..)`.
pub use rand;
pub use random::CallRng;
pub use procyon_macros::{duration, procedure, reducer, table, ProcyonType};
pub use reducer::{ReducerContext, TxContext};
pub use table::{AutoIncOverflow, Db, Table, TableHandle, TableIter, TryInsertError, UniqueColumn, UniqueConstraintViolation};
pub use sats::ProcyonType;
pub use time::{CronExpression, ScheduleAt, TimeDuration, Timestamp};
pub use uuid::{ParseUuidError, Uuid};

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: alloc::ReportingAllocator = alloc::ReportingAllocator;
