//! One module per subcommand: its `Args`, its option
//! table (`CLI`, see cli.rs) and its `run`.
pub mod check;
pub mod checkpoint;
pub mod completion;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod restore;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;
pub mod validate;
