//! `union sandbox`: FlyteAdmin's API as the real Python clients use it (`api`), executions in
//! containers (`executions`), and the wire types it speaks (`idl`).

#[path = "../support/mod.rs"]
mod support;

mod api;
mod executions;
mod idl;
