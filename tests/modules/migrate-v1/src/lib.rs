//! One module in two versions, for automatic migrations: `migrate_v1` as first published, and
//! `migrate_v2` (this source with the feature `v2`) as republished over it: its table turns
//! public, gets an index on an existing column and columns added at the end with defaults.

use procyon::{procedure, reducer, table, ProcedureContext, ReducerContext, Table};
use std::time::Duration;

#[cfg(not(feature = "v2"))]
#[table(accessor = player)]
pub struct Player {
    #[primary_key]
    #[auto_inc]
    id: u64,
    name: String,
}

#[cfg(feature = "v2")]
#[table(accessor = player, public)]
pub struct Player {
    #[primary_key]
    #[auto_inc]
    id: u64,
    #[index(btree)]
    name: String,
    #[default(100)]
    score: u32,
    #[default("rookie")]
    title: String,
    #[default(None)]
    rival: Option<i64>,
    #[default(vec!["new".to_string()])]
    tags: Vec<String>,
}

#[cfg(not(feature = "v2"))]
fn player(name: String) -> Player {
    Player { id: 0, name }
}

#[cfg(feature = "v2")]
fn player(name: String) -> Player {
    Player { id: 0, name, score: 7, title: "pro".into(), rival: Some(-1), tags: vec![] }
}

#[reducer]
fn add_player(ctx: &ReducerContext, name: String) {
    ctx.db.player().insert(player(name));
}

/// Sleeps (durably, past a second), then adds the player: on the code it went to sleep in.
#[procedure]
fn add_player_later(ctx: &mut ProcedureContext, name: String, millis: u64) {
    ctx.sleep_until(ctx.timestamp + Duration::from_millis(millis));
    ctx.with_tx(|tx| {
        tx.db.player().insert(player(name.clone()));
    });
}

#[procedure]
fn players(ctx: &mut ProcedureContext) -> Vec<Player> {
    ctx.with_tx(|tx| tx.db.player().iter().collect())
}
