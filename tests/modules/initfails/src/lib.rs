//! A module whose init reducer writes a row and then fails: publishing it must change nothing.

use procyon::{procedure, reducer, table, ProcedureContext, ReducerContext, Table};

#[table(name = counter, public)]
pub struct Counter {
    #[primary_key]
    id: u32,
    value: i64,
}

#[reducer(init)]
fn init(ctx: &ReducerContext) -> Result<(), String> {
    ctx.db.counter().insert(Counter { id: 1, value: 99 });
    Err("the init reducer refuses this database".into())
}

#[procedure]
fn counter_value(ctx: &mut ProcedureContext) -> i64 {
    ctx.with_tx(|tx| tx.db.counter().iter().map(|c| c.value).sum())
}
