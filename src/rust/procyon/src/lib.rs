//! The Procyon module SDK. Write `#[procedure]` functions; the host calls them over HTTP and
//! SignalR. See the repository README for the whole picture.

#[cfg(target_arch = "wasm32")]
mod alloc;
mod identity;
mod procedure;
#[doc(hidden)]
pub mod rt;
pub mod sats;
mod time;

pub use identity::Identity;
pub use procedure::{ProcedureContext, ProcedureFn};
pub use procyon_macros::{procedure, ProcyonType};
pub use sats::ProcyonType;
pub use time::{ScheduleAt, TimeDuration, Timestamp};

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: alloc::ReportingAllocator = alloc::ReportingAllocator;
