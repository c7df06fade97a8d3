//! The example module: what `deploy/run-local.sh` publishes as database `example`.

use procyon::{procedure, ProcedureContext};
use std::time::Duration;

#[procedure]
fn sleep_one_second(ctx: &mut ProcedureContext) {
    let prev_time = ctx.timestamp;
    let target = prev_time + Duration::from_secs(1);
    ctx.sleep_until(target);
    let new_time = ctx.timestamp;
    let actual_delta = new_time.duration_since(prev_time).unwrap();
    log::info!("Slept from {prev_time} to {new_time}, a total of {actual_delta:?}");
}

#[procedure]
fn add(_ctx: &mut ProcedureContext, a: i32, b: i32) -> i32 {
    a + b
}

/// Says hello to `name`, `times` times.
#[procedure]
fn greet(_ctx: &mut ProcedureContext, name: String, times: u32) -> String {
    vec![format!("Hello, {}!", name); times as usize].join(" ")
}
