//! A module with tables, for the server's storage and transaction tests.

use procyon::{procedure, reducer, table, CronExpression, Identity, ProcedureContext, ProcyonType, ReducerContext, ScheduleAt, Table, Timestamp};
use std::time::Duration;

#[table(name = counter, public)]
pub struct Counter {
    #[primary_key]
    id: u32,
    value: i64,
}

#[reducer(init)]
fn init(ctx: &ReducerContext) {
    ctx.db.counter().insert(Counter { id: 1, value: 0 });
}

/// Read-modify-write of one row: concurrent calls must serialize.
#[reducer]
fn increment(ctx: &ReducerContext, by: i64) {
    let mut counter = ctx.db.counter().id().find(&1).expect("the init reducer made counter 1");
    counter.value += by;
    ctx.db.counter().id().update(counter);
}

/// Read-modify-write in a procedure's transaction, reading again after the write: concurrent
/// calls conflict in the middle of the closure, which must never see made-up rows.
#[procedure]
fn bump(ctx: &mut ProcedureContext, email: String) -> i64 {
    ctx.with_tx(|tx| {
        let mut account = tx.db.account().email().find(&email).expect("the account exists");
        account.balance += 1;
        tx.db.account().email().update(account);
        tx.db.account().email().find(&email).expect("the account still exists after the update").balance
    })
}

/// Public: every subscriber sees its results, so tests can tell that a subscription is live.
#[procedure(public)]
fn ping(_ctx: &mut ProcedureContext) {}

#[procedure]
fn counter_value(ctx: &mut ProcedureContext) -> i64 {
    ctx.with_tx(|tx| tx.db.counter().id().find(&1).map(|c| c.value).unwrap_or(-1))
}

#[table(name = account, public)]
pub struct Account {
    #[primary_key]
    #[auto_inc]
    pub id: u64,
    #[unique]
    pub email: String,
    pub balance: i64,
    #[index(btree)]
    pub owner: Identity,
    pub opened: Timestamp,
    pub nickname: Option<String>,
    pub tags: Vec<String>,
    pub big: u128,
}

#[reducer]
fn open_account(ctx: &ReducerContext, email: String, balance: i64, nickname: Option<String>) -> Result<(), String> {
    let account = Account { id: 0, email, balance, owner: ctx.sender, opened: ctx.timestamp, nickname, tags: vec!["new".into()], big: u128::MAX };
    match ctx.db.account().try_insert(account) {
        Ok(inserted) => {
            log::info!("opened account {}", inserted.id);
            Ok(())
        }
        Err(violation) => Err(format!("taken: {}", violation)),
    }
}

/// What `open_or_note` refused, written after the violation in the same transaction.
#[table(name = refusal)]
pub struct Refusal {
    #[primary_key]
    #[auto_inc]
    id: u64,
    reason: String,
}

/// Opens an account, or, when the email is taken, notes why and carries on writing.
#[reducer]
fn open_or_note(ctx: &ReducerContext, email: String) {
    let account = Account { id: 0, email, balance: 0, owner: ctx.sender, opened: ctx.timestamp, nickname: None, tags: vec![], big: 0 };
    if let Err(violation) = ctx.db.account().try_insert(account) {
        ctx.db.refusal().insert(Refusal { id: 0, reason: violation.to_string() });
    }
}

/// Moves money; refuses (after having written both rows) when `from` would go negative.
#[reducer]
fn transfer(ctx: &ReducerContext, from: String, to: String, amount: i64) -> Result<(), String> {
    let accounts = ctx.db.account();
    let mut source = accounts.email().find(&from).ok_or("no such source account")?;
    let mut target = accounts.email().find(&to).ok_or("no such target account")?;
    source.balance -= amount;
    target.balance += amount;
    let overdrawn = source.balance < 0;
    accounts.email().update(source);
    accounts.email().update(target);
    if overdrawn {
        return Err("insufficient funds".into());
    }
    Ok(())
}

/// Writes, then panics: nothing it wrote may remain.
#[reducer]
fn transfer_then_panic(ctx: &ReducerContext, from: String, amount: i64) {
    let mut source = ctx.db.account().email().find(&from).expect("source");
    source.balance -= amount;
    ctx.db.account().email().update(source);
    panic!("the ledger caught fire");
}

#[reducer]
fn close_account(ctx: &ReducerContext, email: String) -> Result<(), String> {
    if ctx.db.account().email().delete(&email) {
        Ok(())
    } else {
        Err(format!("no account {}", email))
    }
}

#[derive(ProcyonType)]
pub struct Balance {
    pub email: String,
    pub balance: i64,
}

/// The whole table, as a procedure reads it.
#[procedure]
fn accounts(ctx: &mut ProcedureContext) -> Vec<Balance> {
    ctx.with_tx(|tx| {
        let mut all: Vec<Balance> = tx.db.account().iter().map(|a| Balance { email: a.email, balance: a.balance }).collect();
        all.sort_by(|a, b| a.email.cmp(&b.email));
        all
    })
}

#[procedure]
fn account_ids(ctx: &mut ProcedureContext) -> Vec<u64> {
    let mut ids: Vec<u64> = ctx.with_tx(|tx| tx.db.account().iter().map(|a| a.id).collect());
    ids.sort_unstable();
    ids
}

/// A procedure's try_with_tx: an Err rolls back what the closure wrote.
#[procedure]
fn deposit_unless(ctx: &mut ProcedureContext, email: String, amount: i64, refuse: bool) -> String {
    let outcome = ctx.try_with_tx(|tx| {
        let mut account = tx.db.account().email().find(&email).ok_or_else(|| "no account".to_string())?;
        account.balance += amount;
        tx.db.account().email().update(account);
        if refuse {
            Err("refused".to_string())
        } else {
            Ok(())
        }
    });
    match outcome {
        Ok(()) => "deposited".into(),
        Err(reason) => reason,
    }
}

/// Table and column names that are SQL keywords.
#[table(name = select)]
pub struct Select {
    #[primary_key]
    order: u32,
    group: String,
    user: Option<i32>,
}

#[reducer]
fn add_select(ctx: &ReducerContext, order: u32, group: String) {
    ctx.db.select().insert(Select { order, group, user: None });
}

#[procedure]
fn count_selects(ctx: &mut ProcedureContext) -> u64 {
    ctx.with_tx(|tx| tx.db.select().count())
}

/// Adds `by` to counter 1 on every tick of an interval row.
#[table(name = tick, scheduled(on_tick))]
pub struct Tick {
    #[primary_key]
    #[auto_inc]
    scheduled_id: u64,
    scheduled_at: ScheduleAt,
    by: i64,
}

#[reducer]
fn on_tick(ctx: &ReducerContext, tick: Tick) {
    let mut counter = ctx.db.counter().id().find(&1).expect("counter 1");
    counter.value += tick.by;
    ctx.db.counter().id().update(counter);
}

#[reducer]
fn start_ticking(ctx: &ReducerContext, every_ms: u64, by: i64) {
    ctx.db.tick().insert(Tick { scheduled_id: 0, scheduled_at: Duration::from_millis(every_ms).into(), by });
}

#[reducer]
fn stop_ticking(ctx: &ReducerContext) {
    for tick in ctx.db.tick().iter() {
        ctx.db.tick().delete(tick);
    }
}

/// A row on a cron schedule: each run logs the time it ran.
#[table(name = chime, scheduled(on_chime))]
pub struct Chime {
    #[primary_key]
    #[auto_inc]
    scheduled_id: u64,
    scheduled_at: ScheduleAt,
}

#[table(name = chime_log, public)]
pub struct ChimeLog {
    #[primary_key]
    #[auto_inc]
    id: u64,
    chime: u64,
    ran: Timestamp,
}

#[reducer]
fn on_chime(ctx: &ReducerContext, chime: Chime) {
    ctx.db.chime_log().insert(ChimeLog { id: 0, chime: chime.scheduled_id, ran: ctx.timestamp });
}

#[reducer]
fn start_chiming(ctx: &ReducerContext, expression: String) -> Result<(), String> {
    let expression = CronExpression::new(&expression)?;
    ctx.db.chime().insert(Chime { scheduled_id: 0, scheduled_at: ScheduleAt::Cron(expression) });
    Ok(())
}

#[reducer]
fn stop_chiming(ctx: &ReducerContext) {
    for chime in ctx.db.chime().iter() {
        ctx.db.chime().delete(chime);
    }
}

/// A scheduled reducer that always fails, tried again twice: three runs, one failure reported.
#[table(name = doomed_twice, scheduled(fail_retrying, retries = 2, backoff = "20ms"))]
pub struct DoomedTwice {
    #[primary_key]
    #[auto_inc]
    scheduled_id: u64,
    scheduled_at: ScheduleAt,
}

#[reducer]
fn fail_retrying(_ctx: &ReducerContext, row: DoomedTwice) -> Result<(), String> {
    log::info!("retrying doom {}", row.scheduled_id);
    Err("doomed, again".into())
}

#[reducer]
fn schedule_doomed_twice(ctx: &ReducerContext) {
    ctx.db.doomed_twice().insert(DoomedTwice { scheduled_id: 0, scheduled_at: ScheduleAt::Time(ctx.timestamp) });
}

/// A scheduled procedure that panics on its first `fail_times` runs, tried again up to 3 times.
#[table(name = flaky, scheduled(run_flaky, retries = 3, backoff = "20ms"))]
pub struct Flaky {
    #[primary_key]
    #[auto_inc]
    scheduled_id: u64,
    scheduled_at: ScheduleAt,
    fail_times: u32,
}

/// One row per run of a `flaky` row, written before it fails (a procedure's `with_tx` commits).
#[table(name = flaky_run, public)]
pub struct FlakyRun {
    #[primary_key]
    #[auto_inc]
    id: u64,
    flaky: u64,
    at: Timestamp,
}

#[procedure]
fn run_flaky(ctx: &mut ProcedureContext, row: Flaky) -> u32 {
    let runs = ctx.with_tx(|tx| {
        tx.db.flaky_run().insert(FlakyRun { id: 0, flaky: row.scheduled_id, at: tx.timestamp });
        tx.db.flaky_run().iter().filter(|r| r.flaky == row.scheduled_id).count() as u32
    });
    if runs <= row.fail_times {
        panic!("flaky run {} of {}", runs, row.scheduled_id);
    }
    runs
}

#[reducer]
fn schedule_flaky(ctx: &ReducerContext, fail_times: u32) {
    ctx.db.flaky().insert(Flaky { scheduled_id: 0, scheduled_at: ScheduleAt::Time(ctx.timestamp), fail_times });
}

/// An interval row whose target is a procedure: each run logs a beat.
#[table(name = beat, scheduled(on_beat))]
pub struct Beat {
    #[primary_key]
    #[auto_inc]
    scheduled_id: u64,
    scheduled_at: ScheduleAt,
}

#[table(name = beat_log)]
pub struct BeatLog {
    #[primary_key]
    #[auto_inc]
    id: u64,
    beat: u64,
    at: Timestamp,
}

#[procedure]
fn on_beat(ctx: &mut ProcedureContext, beat: Beat) {
    let at = ctx.timestamp;
    ctx.with_tx(|tx| {
        tx.db.beat_log().insert(BeatLog { id: 0, beat: beat.scheduled_id, at });
    });
}

#[reducer]
fn start_beating(ctx: &ReducerContext, every_ms: u64) {
    ctx.db.beat().insert(Beat { scheduled_id: 0, scheduled_at: Duration::from_millis(every_ms).into() });
}

#[reducer]
fn stop_beating(ctx: &ReducerContext) {
    for beat in ctx.db.beat().iter() {
        ctx.db.beat().delete(beat);
    }
}

/// A scheduled reducer that always fails: its row must not be retried forever.
#[table(name = doomed, scheduled(fail_doomed))]
pub struct Doomed {
    #[primary_key]
    #[auto_inc]
    scheduled_id: u64,
    scheduled_at: ScheduleAt,
}

#[reducer]
fn fail_doomed(_ctx: &ReducerContext, _row: Doomed) -> Result<(), String> {
    Err("doomed to fail".into())
}

#[reducer]
fn schedule_doomed(ctx: &ReducerContext) {
    ctx.db.doomed().insert(Doomed { scheduled_id: 0, scheduled_at: ScheduleAt::Time(ctx.timestamp) });
}

/// One row per scheduled hit, for the exactly-once tests.
#[table(name = hit, scheduled(on_hit))]
pub struct Hit {
    #[primary_key]
    #[auto_inc]
    scheduled_id: u64,
    scheduled_at: ScheduleAt,
}

/// What each run of a hit did: a run that happened twice would leave two rows. `due` and `ran`
/// give the scheduler's lateness.
#[table(name = hit_log)]
pub struct HitLog {
    #[primary_key]
    #[auto_inc]
    id: u64,
    hit: u64,
    due: Timestamp,
    ran: Timestamp,
}

#[reducer]
fn on_hit(ctx: &ReducerContext, hit: Hit) {
    let due = match hit.scheduled_at {
        ScheduleAt::Time(at) => at,
        ScheduleAt::Interval(_) | ScheduleAt::Cron(_) => ctx.timestamp,
    };
    ctx.db.hit_log().insert(HitLog { id: 0, hit: hit.scheduled_id, due, ran: ctx.timestamp });
}

/// The time of the `i`th of `count` rows spread evenly over `within_ms`, the first `after_ms` from now.
fn spread(ctx: &ReducerContext, i: u32, count: u32, after_ms: u64, within_ms: u64) -> ScheduleAt {
    let offset = after_ms + within_ms * u64::from(i) / u64::from(count.max(1));
    ScheduleAt::Time(ctx.timestamp + Duration::from_millis(offset))
}

/// Schedules `count` hits spread evenly over `within_ms` milliseconds, the first `after_ms` from now.
#[reducer]
fn schedule_hits(ctx: &ReducerContext, count: u32, after_ms: u64, within_ms: u64) {
    for i in 0..count {
        ctx.db.hit().insert(Hit { scheduled_id: 0, scheduled_at: spread(ctx, i, count, after_ms, within_ms) });
    }
}

/// One row per scheduled job, a procedure target, for the at-least-once tests.
#[table(name = job, scheduled(run_job))]
pub struct Job {
    #[primary_key]
    #[auto_inc]
    scheduled_id: u64,
    scheduled_at: ScheduleAt,
}

/// What each run of a job did: a job run twice leaves two rows.
#[table(name = job_log)]
pub struct JobLog {
    #[primary_key]
    #[auto_inc]
    id: u64,
    job: u64,
}

#[procedure]
fn run_job(ctx: &mut ProcedureContext, job: Job) {
    ctx.with_tx(|tx| {
        tx.db.job_log().insert(JobLog { id: 0, job: job.scheduled_id });
    });
}

/// Schedules `count` jobs spread evenly over `within_ms` milliseconds, the first `after_ms` from now.
#[reducer]
fn schedule_jobs(ctx: &ReducerContext, count: u32, after_ms: u64, within_ms: u64) {
    for i in 0..count {
        ctx.db.job().insert(Job { scheduled_id: 0, scheduled_at: spread(ctx, i, count, after_ms, within_ms) });
    }
}

/// A procedure target that writes, sleeps and writes again, for the lease tests: a run started
/// again while another still sleeps leaves a second `start`.
#[table(name = nap, scheduled(run_nap))]
pub struct Nap {
    #[primary_key]
    #[auto_inc]
    scheduled_id: u64,
    scheduled_at: ScheduleAt,
    sleep_ms: u64,
}

/// Each `start` and `finish` of a nap's runs.
#[table(name = nap_log)]
pub struct NapLog {
    #[primary_key]
    #[auto_inc]
    id: u64,
    nap: u64,
    event: String,
    at: Timestamp,
}

#[procedure]
fn run_nap(ctx: &mut ProcedureContext, nap: Nap) {
    // The server's own log tells a test which server runs the nap.
    log::info!("nap {} starts", nap.scheduled_id);
    log_nap(ctx, nap.scheduled_id, "start");
    let until = ctx.timestamp + Duration::from_millis(nap.sleep_ms);
    ctx.sleep_until(until);
    log_nap(ctx, nap.scheduled_id, "finish");
}

fn log_nap(ctx: &mut ProcedureContext, nap: u64, event: &str) {
    let at = ctx.timestamp;
    ctx.with_tx(|tx| {
        tx.db.nap_log().insert(NapLog { id: 0, nap, event: event.into(), at });
    });
}

/// Schedules `count` naps of `sleep_ms` milliseconds each, due now.
#[reducer]
fn schedule_naps(ctx: &ReducerContext, count: u32, sleep_ms: u64) {
    for _ in 0..count {
        ctx.db.nap().insert(Nap { scheduled_id: 0, scheduled_at: ScheduleAt::Time(ctx.timestamp), sleep_ms });
    }
}

/// A reducer target that keeps the CPU busy, for the lease tests: a batch that outlives its lease.
#[table(name = grind, scheduled(on_grind))]
pub struct Grind {
    #[primary_key]
    #[auto_inc]
    scheduled_id: u64,
    scheduled_at: ScheduleAt,
    spins: u64,
}

/// What each committed run of a grind did.
#[table(name = grind_log)]
pub struct GrindLog {
    #[primary_key]
    #[auto_inc]
    id: u64,
    grind: u64,
    result: u64,
}

#[reducer]
fn on_grind(ctx: &ReducerContext, grind: Grind) {
    // Logged whether or not the run commits: the server's log counts every run.
    log::info!("grind {} runs", grind.scheduled_id);
    let result = spin(grind.spins);
    ctx.db.grind_log().insert(GrindLog { id: 0, grind: grind.scheduled_id, result });
}

#[reducer]
fn schedule_grind(ctx: &ReducerContext, spins: u64) {
    ctx.db.grind().insert(Grind { scheduled_id: 0, scheduled_at: ScheduleAt::Time(ctx.timestamp), spins });
}

/// Spins as a grind does, so a test can tell how many spins take how long here.
#[procedure]
fn spin_for(_ctx: &mut ProcedureContext, spins: u64) -> u64 {
    spin(spins)
}

/// Work the compiler cannot skip: each step depends on the one before, and the result is used.
fn spin(spins: u64) -> u64 {
    let mut x: u64 = 1;
    for i in 0..spins {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i | 1);
    }
    x
}

/// A list that ends, stored in a jsonb column: it must go in and come back at any depth the host
/// allows values to nest.
#[derive(ProcyonType)]
pub struct Link {
    pub depth: u32,
    pub next: Option<Box<Link>>,
}

#[table(name = chain)]
pub struct Chain {
    #[primary_key]
    id: u32,
    head: Link,
}

/// Stores a chain of `length` links (at least one).
#[reducer]
fn store_chain(ctx: &ReducerContext, id: u32, length: u32) {
    let mut head = Link { depth: length - 1, next: None };
    for depth in (0..length - 1).rev() {
        head = Link { depth, next: Some(Box::new(head)) };
    }
    ctx.db.chain().insert(Chain { id, head });
}

/// The number of links of a stored chain, read back from its jsonb column; 0 when there is none.
#[procedure]
fn stored_chain_length(ctx: &mut ProcedureContext, id: u32) -> u32 {
    ctx.with_tx(|tx| {
        tx.db.chain().id().find(&id).map_or(0, |chain| {
            let mut length = 1;
            let mut at = &chain.head;
            while let Some(next) = &at.next {
                length += 1;
                at = next;
            }
            length
        })
    })
}

/// Holds a transaction for as long as the host lets it: table calls in a loop, each short.
#[procedure]
fn hold(ctx: &mut ProcedureContext) {
    ctx.with_tx(|tx| loop {
        tx.db.counter().count();
    })
}

// The host's sleep import declared by hand, as a module that ignores the SDK could: the SDK
// offers sleeping only to procedures, outside `with_tx`.
#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "procyon")]
extern "C" {
    #[link_name = "sleep_until"]
    fn raw_sleep_until(target_micros: i64) -> i64;
}

fn sleep_a_second(now: Timestamp) {
    let target = now.to_micros_since_unix_epoch() + 1_000_000;
    #[cfg(target_arch = "wasm32")]
    unsafe {
        raw_sleep_until(target);
    }
    #[cfg(not(target_arch = "wasm32"))]
    let _ = target;
}

#[reducer]
fn nap_in_reducer(ctx: &ReducerContext) {
    ctx.db.counter().count();
    sleep_a_second(ctx.timestamp);
}

#[procedure]
fn nap_in_tx(ctx: &mut ProcedureContext) {
    ctx.with_tx(|tx| {
        tx.db.counter().count();
        sleep_a_second(tx.timestamp);
    })
}

#[table(name = visit, public)]
pub struct Visit {
    #[primary_key]
    #[auto_inc]
    id: u64,
    phase: String,
    at: Timestamp,
}

/// Writes a row, sleeps `millis`, writes another and returns what its heap held across the
/// sleep: a durable call's work before the sleep must happen once, its state must survive.
#[procedure]
fn visits_twice(ctx: &mut ProcedureContext, millis: u64, heap_kib: u32) -> String {
    let heap: Vec<u32> = (0..heap_kib * 256).collect();
    ctx.with_tx(|tx| tx.db.visit().insert(Visit { id: 0, phase: "before".into(), at: tx.timestamp }));
    let before = ctx.timestamp;
    ctx.sleep_until(before + Duration::from_millis(millis));
    let woke = ctx.timestamp;
    ctx.with_tx(|tx| tx.db.visit().insert(Visit { id: 0, phase: "after".into(), at: tx.timestamp }));
    log::info!("slept from {} to {}", before.to_micros_since_unix_epoch(), woke.to_micros_since_unix_epoch());
    format!("{} {}", heap.iter().map(|&n| u64::from(n)).sum::<u64>(), heap.len())
}
