//! Shared set-up for the vmstorm benches: prebuilt arenas, servers and workloads, built
//! outside the measured closures.
