//! A module written as for SpacetimeDB's current Rust bindings, with the crate renamed from
//! `spacetimedb` to `procyon` (and `SpacetimeType` to `ProcyonType`): what a port needs to build
//! and run unchanged. PortingTests call it over HTTP.

use procyon::{duration, procedure, reducer, table, ConnectionId, Identity, ProcedureContext, ProcyonType, ReducerContext, ScheduleAt, Table, Timestamp, TryInsertError, TxContext, Uuid};
use procyon::rand::Rng;
use std::cell::Cell;
use std::fmt;

#[table(accessor = player, public)]
pub struct Player {
    #[primary_key]
    #[auto_inc]
    id: u64,
    name: String,
    score: u32,
}

/// A table without a primary key: its rows are whole values.
#[table(accessor = event)]
pub struct Event {
    text: String,
    at: Timestamp,
}

/// Who is connected: a row per hub connection to the database, kept by the lifecycle reducers.
#[table(accessor = online, public)]
pub struct Online {
    #[primary_key]
    connection: ConnectionId,
    who: Identity,
}

#[table(accessor = banned)]
pub struct Banned {
    #[primary_key]
    who: Identity,
}

#[table(accessor = tick, scheduled(on_tick))]
pub struct Tick {
    #[primary_key]
    #[auto_inc]
    scheduled_id: u64,
    scheduled_at: ScheduleAt,
}

/// A reducer's own error type: any `Display` does.
#[derive(Debug)]
pub enum JoinError {
    Empty,
    Taken(String),
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Empty => write!(f, "a name is needed"),
            JoinError::Taken(name) => write!(f, "{} is taken", name),
        }
    }
}

#[derive(ProcyonType)]
pub struct Standing {
    name: String,
    score: u32,
}

/// Variants with named fields and with several values, as anonymous products.
#[derive(ProcyonType)]
pub enum Shape {
    Circle(u32),
    Rect { w: u16, h: u16 },
    Segment(i32, i32),
    Empty,
}

#[procedure]
fn area(_ctx: &mut ProcedureContext, shape: Shape) -> u64 {
    match shape {
        Shape::Circle(r) => 3 * (r as u64) * (r as u64),
        Shape::Rect { w, h } => (w as u64) * (h as u64),
        Shape::Segment(from, to) => (to - from).unsigned_abs() as u64,
        Shape::Empty => 0,
    }
}

#[procedure]
fn shapes(_ctx: &mut ProcedureContext) -> Vec<Shape> {
    vec![Shape::Circle(2), Shape::Rect { w: 3, h: 4 }, Shape::Segment(-1, 5), Shape::Empty]
}

#[reducer]
fn join(ctx: &ReducerContext, name: String) -> Result<(), JoinError> {
    if name.is_empty() {
        return Err(JoinError::Empty);
    }
    if ctx.db.player().iter().any(|p| p.name == name) {
        return Err(JoinError::Taken(name));
    }
    ctx.db.event().insert(Event { text: format!("{} joined as {}", ctx.sender(), name), at: ctx.timestamp });
    ctx.db.player().insert(Player { id: 0, name, score: 0 });
    Ok(())
}

#[procedure]
fn standings(ctx: &mut ProcedureContext) -> Vec<Standing> {
    ctx.with_tx(|tx: &TxContext| tx.db.player().iter().map(|p| Standing { name: p.name, score: p.score }).collect())
}

#[procedure]
fn whoami(ctx: &mut ProcedureContext) -> Identity {
    ctx.sender()
}

#[procedure]
fn durations(_ctx: &mut ProcedureContext) -> Vec<i64> {
    vec![duration!("1500ms").to_micros(), duration!(2s).to_micros(), duration!("1h").to_micros(), duration!(250us).to_micros()]
}

/// `n` rolls of a die, from the call's host-seeded generator.
#[procedure]
fn dice(ctx: &mut ProcedureContext, n: u32) -> Vec<u32> {
    (0..n).map(|_| ctx.rng().gen_range(1..=6)).collect()
}

#[reducer]
fn random_event(ctx: &ReducerContext) {
    let value: u64 = ctx.rng().gen();
    ctx.db.event().insert(Event { text: format!("random {}", value), at: ctx.timestamp });
}

/// Runs `on_tick` once, 50 ms from now.
#[reducer]
fn start_ticking(ctx: &ReducerContext) {
    let at = ctx.timestamp + duration!("50ms");
    ctx.db.tick().insert(Tick { scheduled_id: 0, scheduled_at: at.into() });
}

/// Run only by the schedule, as SpacetimeDB modules guard their scheduled reducers.
#[reducer]
fn on_tick(ctx: &ReducerContext, tick: Tick) -> Result<(), String> {
    if ctx.sender() != ctx.database_identity() {
        return Err(format!("on_tick is the schedule's, not {}'s", ctx.sender()));
    }
    ctx.db.event().insert(Event { text: format!("tick {}", tick.scheduled_id), at: ctx.timestamp });
    Ok(())
}

#[reducer(client_connected)]
fn identity_connected(ctx: &ReducerContext) -> Result<(), String> {
    if ctx.db.banned().who().find(&ctx.sender()).is_some() {
        return Err(format!("{} is banned", ctx.sender()));
    }
    let connection = ctx.connection_id().ok_or("a connection without an id")?;
    ctx.db.online().insert(Online { connection, who: ctx.sender() });
    Ok(())
}

#[reducer(client_disconnected)]
fn identity_disconnected(ctx: &ReducerContext) {
    if let Some(connection) = ctx.connection_id() {
        ctx.db.online().connection().delete(&connection);
    }
}

/// `try_insert` with SpacetimeDB's typed error.
#[reducer]
fn ban(ctx: &ReducerContext, who: Identity) -> Result<(), String> {
    match ctx.db.banned().try_insert(Banned { who }) {
        Ok(_) => Ok(()),
        Err(TryInsertError::UniqueConstraintViolation(_)) => Err(format!("{} is banned already", who)),
        Err(TryInsertError::AutoIncOverflow(overflow)) => Err(overflow.to_string()),
    }
}

/// The connection this call came over (none over HTTP), as seen inside a transaction too.
#[procedure]
fn my_connection(ctx: &mut ProcedureContext) -> Option<ConnectionId> {
    let outside = ctx.connection_id();
    let inside = ctx.with_tx(|tx| tx.connection_id());
    assert_eq!(outside, inside);
    outside
}

#[procedure]
fn online(ctx: &mut ProcedureContext) -> Vec<String> {
    ctx.with_tx(|tx| tx.db.online().iter().map(|o| format!("{} {}", o.connection, o.who)).collect())
}

#[procedure]
fn database(ctx: &mut ProcedureContext) -> Identity {
    ctx.database_identity()
}

#[procedure]
fn events(ctx: &mut ProcedureContext) -> Vec<String> {
    ctx.with_tx(|tx| tx.db.event().iter().map(|e| e.text).collect())
}

/// Deletes the first event by value (a table without a primary key).
#[reducer]
fn forget_first_event(ctx: &ReducerContext) -> Result<(), String> {
    let first = ctx.db.event().iter().next().ok_or_else(|| "no events".to_string())?;
    ctx.db.event().delete(first).then(|| ()).ok_or_else(|| "the event was not deleted".into())
}

/// A table keyed by a time-ordered UUID, with a unique random one and an indexed one.
#[table(accessor = ticket, public)]
pub struct Ticket {
    #[primary_key]
    id: Uuid,
    #[unique]
    token: Uuid,
    #[index(btree)]
    batch: Uuid,
    holder: String,
}

/// Issues `count` tickets, keyed in the order they were made, as SpacetimeDB's docs write it.
#[reducer]
fn issue_tickets(ctx: &ReducerContext, holder: String, count: u32) -> Result<(), Box<dyn std::error::Error>> {
    let batch = ctx.new_uuid_v4()?;
    for _ in 0..count {
        ctx.db.ticket().insert(Ticket { id: ctx.new_uuid_v7()?, token: ctx.new_uuid_v4()?, batch, holder: holder.clone() });
    }
    Ok(())
}

#[procedure]
fn ticket(ctx: &mut ProcedureContext, id: Uuid) -> Option<String> {
    ctx.with_tx(|tx| tx.db.ticket().id().find(&id).map(|t| t.holder))
}

#[procedure]
fn ticket_by_token(ctx: &mut ProcedureContext, token: Uuid) -> Option<Uuid> {
    ctx.with_tx(|tx| tx.db.ticket().token().find(&token).map(|t| t.id))
}

/// Every ticket's id, in the table's order.
#[procedure]
fn ticket_ids(ctx: &mut ProcedureContext) -> Vec<Uuid> {
    ctx.with_tx(|tx| tx.db.ticket().iter().map(|t| t.id).collect())
}

#[procedure]
fn uuids_v4(ctx: &mut ProcedureContext, count: u32) -> Vec<Uuid> {
    (0..count).map(|_| ctx.new_uuid_v4().unwrap()).collect()
}

thread_local! {
    /// Tells one instance of this module from another: drawn on an instance's first `uuids_v7`.
    static INSTANCE: Cell<Option<Uuid>> = Cell::new(None);
}

#[derive(ProcyonType)]
pub struct Minted {
    instance: Uuid,
    ids: Vec<Uuid>,
}

/// `count` v7 UUIDs, made one after another (half in a procedure's transaction), and which
/// instance made them.
#[procedure]
fn uuids_v7(ctx: &mut ProcedureContext, count: u32) -> Minted {
    let instance = INSTANCE.with(|tag| {
        let instance = tag.get().unwrap_or_else(|| ctx.new_uuid_v4().unwrap());
        tag.set(Some(instance));
        instance
    });
    let mut ids: Vec<Uuid> = (0..count / 2).map(|_| ctx.new_uuid_v7().unwrap()).collect();
    ids.extend(ctx.with_tx(|tx| (count / 2..count).map(|_| tx.new_uuid_v7().unwrap()).collect::<Vec<_>>()));
    Minted { instance, ids }
}

#[procedure]
fn echo_uuid(_ctx: &mut ProcedureContext, id: Uuid) -> Uuid {
    id
}
