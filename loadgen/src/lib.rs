//! vmstorm-loadgen: storms, trace formats, the strace importer, replay into the core, and
//! the comparison reports behind the `vmstorm` command.
//!
//! Layout: [`op`] (the address-independent operation model every storm and trace plays
//! into the VM server), [`trace`] (the `.vmtrace` text and binary formats, the strace
//! importer, touch synthesis and `record`) and [`storms`]
//! (synthetic workloads mirroring known benchmarks; their seeded generator is
//! `vmstorm_core::rng`).

#![forbid(unsafe_code)]

pub mod bloat;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod host;
pub mod metrics;
pub mod op;
pub mod progress;
pub mod replay;
pub mod run;
pub mod shards;
pub mod storms;
pub mod strategy;
pub mod trace;
pub mod verify;
