//! A module that misbehaves on purpose, for the server's bad-input tests.

use procyon::{procedure, ProcedureContext, Timestamp};
use std::time::Duration;

#[procedure]
fn add(_ctx: &mut ProcedureContext, a: i32, b: i32) -> i32 {
    a + b
}

#[procedure]
fn panics(_ctx: &mut ProcedureContext, message: String) -> u32 {
    panic!("{}", message)
}

/// Sleeps, then panics: the trap happens after the stack was unwound and rewound.
#[procedure]
fn panics_after_sleep(ctx: &mut ProcedureContext, millis: u64) {
    let target: Timestamp = ctx.timestamp + Duration::from_millis(millis);
    ctx.sleep_until(target);
    panic!("woke at {} and gave up", ctx.timestamp)
}

/// Sleeps several times in a row and reports how many microseconds each nap took.
#[procedure]
fn naps(ctx: &mut ProcedureContext, count: u32, millis: u64) -> Vec<i64> {
    (0..count)
        .map(|_| {
            let before = ctx.timestamp;
            ctx.sleep_until(before + Duration::from_millis(millis));
            ctx.timestamp.time_duration_since(before).to_micros()
        })
        .collect()
}
