//! vmstorm-loadgen: storms, trace formats, the strace importer, replay into the core, and
//! the comparison reports behind the `vmstorm` command.
//!
//! Layout: [`op`] (the address-independent operation model every storm and trace plays
//! into the VM server) and [`trace`] (the `.vmtrace` text and binary formats, the strace
//! importer, touch synthesis and `record`).

pub mod op;
pub mod trace;
