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
