use procyon::{reducer, table, ReducerContext, ScheduleAt};

#[table(name = job, scheduled(run_job))]
pub struct Job {
    #[primary_key]
    #[auto_inc]
    scheduled_id: u64,
    scheduled_at: ScheduleAt,
    n: u32,
}

/// Wrong: a scheduled reducer takes the row (`Job`), not one of its fields.
#[reducer]
fn run_job(_ctx: &ReducerContext, n: u32) {
    let _ = n;
}

#[table(name = sample)]
pub struct Sample {
    #[primary_key]
    id: u32,
    #[index(btree)]
    weight: f64,
}

/// Wrong: floats have no total order in Rust (nor Postgres's), so an index on one cannot be range-filtered.
#[reducer]
fn heavy(ctx: &ReducerContext) {
    let _ = ctx.db.sample().weight().filter(1.0f64..).count();
}
