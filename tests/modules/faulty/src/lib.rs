//! A module that misbehaves on purpose, for the server's bad-input tests.

use procyon::{procedure, ProcedureContext, ProcyonType, Timestamp};
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

/// Never returns: the host's CPU deadline must stop it.
#[procedure]
fn spins(_ctx: &mut ProcedureContext) -> u64 {
    let mut n: u64 = 0;
    loop {
        // Volatile, so the optimiser cannot prove the loop does nothing.
        unsafe { std::ptr::write_volatile(&mut n, std::ptr::read_volatile(&n).wrapping_add(1)) };
    }
}

/// CPU-bound: formats `n` numbers through `core::fmt` (whose indirect calls Asyncify instruments)
/// and sums their lengths, so what the rewrite costs at run time shows.
#[procedure]
fn crunches(_ctx: &mut ProcedureContext, n: u32) -> u64 {
    use std::fmt::Write;
    let mut text = String::new();
    (0..n)
        .map(|i| {
            text.clear();
            write!(text, "{} {:?}", i, i as f64 / 7.0).expect("a String takes any text");
            text.len() as u64
        })
        .sum()
}

/// Allocates `megabytes` and touches every page: beyond the instance's memory limit it traps.
#[procedure]
fn allocates(_ctx: &mut ProcedureContext, megabytes: u32) -> u32 {
    let block = vec![1u8; megabytes as usize * 1024 * 1024];
    block.iter().step_by(4096).map(|&b| b as u32).sum()
}

/// Recurses `depth` times; deep enough, it overflows the wasm stack.
#[procedure]
fn recurses(_ctx: &mut ProcedureContext, depth: u32) -> u32 {
    #[inline(never)]
    fn down(n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let frame = [n as u8; 128];
        // Volatile, so the frame stays on the stack and the recursion stays a recursion.
        down(n - 1) + unsafe { std::ptr::read_volatile(&frame[(n % 128) as usize]) } as u32
    }
    down(depth)
}

/// A list that ends: a type that refers to itself through an option, which every walk of the
/// host's over types and values (OpenAPI, JSON in, JSON out) must get through.
#[derive(ProcyonType)]
pub struct Node {
    pub v: i32,
    pub next: Option<Box<Node>>,
}

#[procedure]
fn echo_chain(_ctx: &mut ProcedureContext, node: Node) -> Node {
    node
}

#[procedure]
fn chain_length(_ctx: &mut ProcedureContext, node: Node) -> u32 {
    let mut length = 1;
    let mut at = &node;
    while let Some(next) = &at.next {
        length += 1;
        at = next;
    }
    length
}

/// Costs the module nothing (units take no bytes), but the host would write a `null` for each.
#[procedure]
fn many_units(_ctx: &mut ProcedureContext, log2: u32) -> Vec<()> {
    vec![(); 1usize << log2]
}

/// Holds `megabytes` of touched memory while it sleeps: what sleeping calls cost the host.
#[procedure]
fn hoards(ctx: &mut ProcedureContext, megabytes: u32, millis: u64) -> u32 {
    let block = vec![1u8; megabytes as usize * 1024 * 1024];
    ctx.sleep_until(ctx.timestamp + Duration::from_millis(millis));
    block.iter().step_by(4096).map(|&b| b as u32).sum()
}

/// Logs `times` lines of `length` characters each.
#[procedure]
fn shouts(_ctx: &mut ProcedureContext, times: u32, length: u32) {
    let line = "x".repeat(length as usize);
    for _ in 0..times {
        log::info!("{}", line);
    }
}
