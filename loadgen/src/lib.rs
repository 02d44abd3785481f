//! vmstorm-loadgen: storms, trace formats, the strace importer, replay into the core, and
//! the comparison reports behind the `vmstorm` command.
