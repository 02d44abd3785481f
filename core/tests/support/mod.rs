//! Test support shared by the core's integration tests: [`alloc`] (allocators with
//! predictable choices), [`tables`] (page-table dumps and the reference-count checker) and
//! [`server`] (booting servers, processes, messages, snapshot comparison).
//!
//! The strategy matrix is the core's own `vmstorm_core::every_strategy!` (from the
//! registry), fault injection is `vmstorm_core::FailingAllocator`, and random numbers come
//! from `vmstorm_core::rng`.
#![allow(dead_code, unused_imports)]

pub mod alloc;
pub mod server;
pub mod tables;

pub use alloc::{TopDown, VecAlloc};
pub use server::*;
pub use tables::{check_refs, dump, phys, Dump};
pub use vmstorm_core::every_strategy;
