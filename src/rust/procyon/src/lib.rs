//! The Procyon module SDK. Write `#[procedure]` functions; the host calls them over HTTP and
//! SignalR. See the repository README for the whole picture.

mod alloc;
mod identity;
mod procedure;
#[doc(hidden)]
pub mod rt;
pub mod sats;
mod time;

pub use identity::Identity;
pub use procedure::{ProcedureContext, ProcedureFn};
pub use procyon_macros::procedure;
pub use sats::ProcyonType;
pub use time::{ScheduleAt, TimeDuration, Timestamp};

#[global_allocator]
static ALLOCATOR: alloc::ReportingAllocator = alloc::ReportingAllocator;
