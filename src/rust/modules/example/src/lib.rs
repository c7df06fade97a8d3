//! The example module: what `deploy/run-local.sh` publishes as database `example`. It has the
//! walk-through procedures, a `person` table, scheduled reminders, and procedures that echo one value
//! of every supported type, so each type can be tried from Swagger UI, HTTP and the hub. Its
//! functions are public (every subscriber sees their results) but `who_am_i`.

use procyon::{
    procedure, reducer, table, Identity, ProcedureContext, ProcyonType, ReducerContext, ScheduleAt, Table, TimeDuration, Timestamp, Uuid,
};
use std::time::Duration;

#[procedure(public)]
fn sleep_one_second(ctx: &mut ProcedureContext) {
    let prev_time = ctx.timestamp;
    let target = prev_time + Duration::from_secs(1);
    ctx.sleep_until(target);
    let new_time = ctx.timestamp;
    let actual_delta = new_time.duration_since(prev_time).unwrap();
    log::info!("Slept from {prev_time} to {new_time}, a total of {actual_delta:?}");
}

#[procedure(public)]
fn add(_ctx: &mut ProcedureContext, a: i32, b: i32) -> i32 {
    a + b
}

/// Outbound HTTP: the status and body of a `GET`, or why there was none.
#[procedure(public)]
fn fetch(ctx: &mut ProcedureContext, url: String) -> String {
    match ctx.http.get(url) {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            format!("{} {}", parts.status, body.into_string_lossy())
        }
        Err(error) => format!("error: {error}"),
    }
}

#[table(name = person, public)]
pub struct Person {
    #[primary_key]
    #[auto_inc]
    id: u64,
    name: String,
    age: u8,
}

#[reducer(public)]
fn add_person(ctx: &ReducerContext, name: String, age: u8) -> Result<(), String> {
    if name.is_empty() {
        return Err("name must not be empty".into());
    }
    ctx.db.person().insert(Person { id: 0, name, age });
    Ok(())
}

#[procedure(public)]
fn count_people(ctx: &mut ProcedureContext) -> u64 {
    ctx.with_tx(|tx| tx.db.person().count())
}

#[table(name = reminder, scheduled(send_reminder))]
pub struct Reminder {
    #[primary_key]
    #[auto_inc]
    scheduled_id: u64,
    scheduled_at: ScheduleAt,
    text: String,
}

#[reducer(public)]
fn send_reminder(_ctx: &ReducerContext, r: Reminder) {
    log::info!("reminder: {}", r.text);
}

#[table(name = slow_job, scheduled(run_slow_job))]
pub struct SlowJob {
    #[primary_key]
    #[auto_inc]
    scheduled_id: u64,
    scheduled_at: ScheduleAt,
    n: u32,
}

#[procedure(public)]
fn run_slow_job(ctx: &mut ProcedureContext, job: SlowJob) -> u32 {
    ctx.sleep_until(ctx.timestamp + Duration::from_millis(100));
    job.n * 2
}

#[reducer(public)]
fn schedule_reminder(ctx: &ReducerContext, text: String, delay_ms: u64) {
    let at = ctx.timestamp + Duration::from_millis(delay_ms);
    ctx.db.reminder().insert(Reminder { scheduled_id: 0, scheduled_at: ScheduleAt::Time(at), text });
}

/// Runs `run_slow_job(n)` after `delay_ms`.
#[reducer(public)]
fn schedule_slow_job(ctx: &ReducerContext, n: u32, delay_ms: u64) {
    let at = ctx.timestamp + Duration::from_millis(delay_ms);
    ctx.db.slow_job().insert(SlowJob { scheduled_id: 0, scheduled_at: ScheduleAt::Time(at), n });
}

/// Cancels every pending reminder.
#[reducer(public)]
fn cancel_reminders(ctx: &ReducerContext) {
    for reminder in ctx.db.reminder().iter() {
        ctx.db.reminder().delete(reminder);
    }
}

/// Says hello to `name`, `times` times.
#[procedure(public)]
fn greet(_ctx: &mut ProcedureContext, name: String, times: u32) -> String {
    vec![format!("Hello, {}!", name); times as usize].join(" ")
}

#[derive(ProcyonType, Clone, Debug, PartialEq)]
pub struct Item {
    pub name: String,
    pub qty: u8,
    pub tags: Vec<String>,
}

#[derive(ProcyonType, Clone, Debug, PartialEq)]
pub enum Status {
    Pending,
    Shipped(Timestamp),
    Cancelled(String),
}

#[derive(ProcyonType, Clone, Debug, PartialEq)]
pub struct Order {
    pub id: u64,
    pub customer: Identity,
    pub items: Vec<Item>,
    pub note: Option<String>,
    pub status: Status,
    pub placed: Timestamp,
    pub total: f64,
}

/// A recursive type: a tree of numbers.
#[derive(ProcyonType, Clone, Debug, PartialEq)]
pub struct Tree {
    pub value: i32,
    pub children: Vec<Tree>,
}

/// Every primitive and special type in one struct.
#[derive(ProcyonType, Clone, Debug, PartialEq)]
pub struct Everything {
    pub flag: bool,
    pub i8: i8,
    pub i16: i16,
    pub i32: i32,
    pub i64: i64,
    pub i128: i128,
    pub u8: u8,
    pub u16: u16,
    pub u32: u32,
    pub u64: u64,
    pub u128: u128,
    pub f32: f32,
    pub f64: f64,
    pub text: String,
    pub bytes: Vec<u8>,
    pub list: Vec<i32>,
    pub maybe: Option<u32>,
    pub who: Identity,
    pub when: Timestamp,
    pub every: TimeDuration,
    pub schedule: ScheduleAt,
    pub uuid: Uuid,
    pub nothing: (),
}

/// Returns the order unchanged.
#[procedure(public)]
fn echo_order(_ctx: &mut ProcedureContext, order: Order) -> Order {
    order
}

#[procedure(public)]
fn echo_everything(_ctx: &mut ProcedureContext, value: Everything) -> Everything {
    value
}

/// Sums every value in the tree.
#[procedure(public)]
fn tree_sum(_ctx: &mut ProcedureContext, tree: Tree) -> i64 {
    fn sum(tree: &Tree) -> i64 {
        tree.value as i64 + tree.children.iter().map(sum).sum::<i64>()
    }
    sum(&tree)
}

#[procedure(public)]
fn echo_tree(_ctx: &mut ProcedureContext, tree: Tree) -> Tree {
    tree
}

/// Counts the units across all items of an order.
#[procedure(public)]
fn count_units(_ctx: &mut ProcedureContext, order: Order) -> u32 {
    order.items.iter().map(|item| item.qty as u32).sum()
}

/// Private: only the caller (and the owner) see its results, which name the caller.
#[procedure]
fn who_am_i(ctx: &mut ProcedureContext) -> Identity {
    ctx.sender
}
