//! `union sandbox`: FlyteAdmin's API as the real Python clients use it (`api`), the web console
//! in a real browser (`console`), executions in
//! containers (`executions`), the wire types it speaks (`idl`), union's secrets (`secrets`) and
//! scheduled launch plans (`schedules`).

// Tests and examples show what they ran; the print lints are for library code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../support/mod.rs"]
mod support;

mod api;
mod auth;
mod binary;
mod console;
mod executions;
mod idl;
mod registry;
mod schedules;
mod secrets;
mod uploads;
