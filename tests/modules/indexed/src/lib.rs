//! B-tree indexes for IndexTests: range filters and deletes on single-column indexes (`value: u32`,
//! `big: u64`) and a two-column one (`sensor: String, at: i64`), and scans of a table larger than
//! the module's memory.

use procyon::{procedure, table, ProcedureContext, ProcyonType, Table, Uuid};

#[table(
    accessor = reading,
    public,
    index(accessor = by_sensor_at, btree(columns = [sensor, at])),
    index(accessor = by_id, btree(columns = [id]))
)]
pub struct Reading {
    #[primary_key]
    #[auto_inc]
    id: u64,
    sensor: String,
    at: i64,
    #[index(btree)]
    value: u32,
    #[index(btree)]
    big: u64,
    /// Indexed, but not filterable: Postgres does not order floats as Rust does.
    #[index(btree)]
    score: f64,
}

#[derive(ProcyonType)]
pub struct NewReading {
    sensor: String,
    at: i64,
    value: u32,
    big: u64,
}

#[procedure]
fn add(ctx: &mut ProcedureContext, readings: Vec<NewReading>) {
    ctx.with_tx(|tx| {
        for r in &readings {
            tx.db.reading().insert(Reading { id: 0, sensor: r.sensor.clone(), at: r.at, value: r.value, big: r.big, score: f64::from(r.value) });
        }
    });
}

/// Runs `$body` with `$bounds` the range form named `$form` (`exact`, `ref`, `range` (a..b),
/// `inclusive` (a..=b), `to` (..b), `to_inclusive` (..=b), `from` (a..)) of `$from` and `$to`.
macro_rules! with_form {
    ($form:expr, $from:expr, $to:expr, |$bounds:ident| $body:expr) => {
        match $form.as_str() {
            "exact" => { let $bounds = $from; $body }
            "ref" => { let $bounds = &$from; $body }
            "range" => { let $bounds = $from..$to; $body }
            "inclusive" => { let $bounds = $from..=$to; $body }
            "to" => { let $bounds = ..$to; $body }
            "to_inclusive" => { let $bounds = ..=$to; $body }
            "from" => { let $bounds = $from..; $body }
            other => panic!("unknown form {}", other),
        }
    };
}

/// The values `value().filter(..)` yields, in the order it yields them.
#[procedure]
fn values(ctx: &mut ProcedureContext, form: String, from: u32, to: u32) -> Vec<u32> {
    ctx.with_tx(|tx| with_form!(form, from, to, |bounds| tx.db.reading().value().filter(bounds).map(|r| r.value).collect()))
}

#[procedure]
fn delete_values(ctx: &mut ProcedureContext, form: String, from: u32, to: u32) -> u64 {
    ctx.with_tx(|tx| with_form!(form, from, to, |bounds| tx.db.reading().value().delete(bounds)))
}

#[procedure]
fn bigs(ctx: &mut ProcedureContext, form: String, from: u64, to: u64) -> Vec<u64> {
    ctx.with_tx(|tx| with_form!(form, from, to, |bounds| tx.db.reading().big().filter(bounds).map(|r| r.big).collect()))
}

/// How many readings `by_id().filter(..)` yields: `id` is an `#[auto_inc]` u64, stored as bigint.
#[procedure]
fn ids(ctx: &mut ProcedureContext, form: String, from: u64, to: u64) -> u64 {
    ctx.with_tx(|tx| with_form!(form, from, to, |bounds| tx.db.reading().by_id().filter(bounds).count() as u64))
}

/// `by_sensor_at().filter((sensor, <form of at>))`: the `at`s, in index order.
#[procedure]
fn sensor_ats(ctx: &mut ProcedureContext, sensor: String, form: String, from: i64, to: i64) -> Vec<i64> {
    ctx.with_tx(|tx| with_form!(form, from, to, |bounds| tx.db.reading().by_sensor_at().filter((sensor.as_str(), bounds)).map(|r| r.at).collect()))
}

/// A prefix: every reading of one sensor, as `(sensor,)` and as the bare value, which must agree.
#[procedure]
fn sensor_prefix(ctx: &mut ProcedureContext, sensor: String) -> Vec<i64> {
    ctx.with_tx(|tx| {
        let bare: Vec<i64> = tx.db.reading().by_sensor_at().filter(&sensor).map(|r| r.at).collect();
        let tuple: Vec<i64> = tx.db.reading().by_sensor_at().filter((sensor.as_str(),)).map(|r| r.at).collect();
        assert_eq!(bare, tuple, "filter(value) and filter((value,)) differ");
        bare
    })
}

/// A range on the first column of the two: the sensors, in index order.
#[procedure]
fn sensors_between(ctx: &mut ProcedureContext, from: String, to: String) -> Vec<String> {
    ctx.with_tx(|tx| tx.db.reading().by_sensor_at().filter(from.as_str()..to.as_str()).map(|r| r.sensor).collect())
}

#[procedure]
fn delete_sensor_ats(ctx: &mut ProcedureContext, sensor: String, form: String, from: i64, to: i64) -> u64 {
    ctx.with_tx(|tx| with_form!(form, from, to, |bounds| tx.db.reading().by_sensor_at().delete((sensor.clone(), bounds))))
}

/// Rows the test fills with SQL: `code` is a Postgres `uuid`, which orders by its bytes as `Uuid` does.
#[table(accessor = ticket)]
pub struct Ticket {
    #[primary_key]
    n: u32,
    #[index(btree)]
    code: Uuid,
}

/// The tickets whose code is at least `from`, in code order.
#[procedure]
fn tickets_from(ctx: &mut ProcedureContext, from: Uuid) -> Vec<u32> {
    ctx.with_tx(|tx| tx.db.ticket().code().filter(from..).map(|t| t.n).collect())
}

/// Rows the test fills with SQL: more than the module's memory holds at once.
#[table(accessor = blob)]
pub struct Blob {
    #[primary_key]
    id: u32,
    payload: String,
}

#[derive(ProcyonType)]
pub struct BlobStats {
    rows: u64,
    bytes: u64,
    id_sum: u64,
}

/// Walks every row with `iter()`, holding one chunk at a time.
#[procedure]
fn blob_stats(ctx: &mut ProcedureContext) -> BlobStats {
    ctx.with_tx(|tx| {
        let mut stats = BlobStats { rows: 0, bytes: 0, id_sum: 0 };
        for blob in tx.db.blob().iter() {
            stats.rows += 1;
            stats.bytes += blob.payload.len() as u64;
            stats.id_sum += u64::from(blob.id);
        }
        stats
    })
}

/// Holds every row at once: what `iter()` must not do by itself.
#[procedure]
fn blob_collect(ctx: &mut ProcedureContext) -> u64 {
    ctx.with_tx(|tx| tx.db.blob().iter().collect::<Vec<_>>().len() as u64)
}

/// Reads the first `n` rows of each of two scans, dropping both early, then counts.
#[procedure]
fn blob_heads(ctx: &mut ProcedureContext, n: u32) -> Vec<u64> {
    ctx.with_tx(|tx| {
        let first = tx.db.blob().iter().take(n as usize).count() as u64;
        let second = tx.db.blob().iter().take(n as usize).count() as u64;
        vec![first, second, tx.db.blob().count()]
    })
}

/// Leaves `n` iterators open (never dropped), then reads the table again.
#[procedure]
fn leak_iterators(ctx: &mut ProcedureContext, n: u32) -> u64 {
    ctx.with_tx(|tx| {
        for _ in 0..n {
            std::mem::forget(tx.db.blob().iter());
        }
        tx.db.blob().iter().count() as u64
    })
}

/// Keeps an iterator past its transaction and reads it in the next one.
#[procedure]
fn stale_iterator(ctx: &mut ProcedureContext) -> u64 {
    let iterator = std::cell::RefCell::new(ctx.with_tx(|tx| tx.db.blob().iter()));
    ctx.with_tx(|_| iterator.borrow_mut().by_ref().count() as u64)
}

#[link(wasm_import_module = "procyon")]
extern "C" {
    /// The SDK's import, declared again to send bounds the SDK would never encode.
    fn table_iter(table: *const u8, table_len: usize, index: i32, bounds: *const u8, bounds_len: usize) -> i64;
}

/// Opens a cursor on `reading` with raw `bounds`, as a module not built with the SDK might.
#[procedure]
fn raw_filter(ctx: &mut ProcedureContext, index: i32, bounds: Vec<u8>) -> i64 {
    ctx.with_tx(|_| unsafe { table_iter("reading".as_ptr(), "reading".len(), index, bounds.as_ptr(), bounds.len()) })
}
