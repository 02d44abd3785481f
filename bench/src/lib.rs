//! Shared set-up for the vmstorm benches: workloads run the same way over our strategies
//! and the peer crates, the adapters that drive the peers, the host-kernel (`linux`)
//! measurements, and the ratio-table generator behind `results/RATIOS.md`. Everything
//! expensive is built outside the measured closures.

pub mod frame_workload;
pub mod linux;
pub mod mthp;
pub mod ours_paging;
pub mod paging_workload;
pub mod peers;
pub mod ratios;
pub mod vm_workload;
