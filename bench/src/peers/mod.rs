//! Adapters that drive the peer crates of `reference/anchors.md` §3 through the benches'
//! interfaces ([`crate::frame_workload::Frames`] and [`crate::paging_workload::PageTables`]),
//! over the same frame counts and workloads as our strategies, so every comparison is a
//! ratio from one run.
//!
//! The peers are kernel crates whose APIs take raw physical addresses and pointers, so
//! these adapters are the one place of the benches that needs `unsafe`; each block says why
//! it holds. The page-table peers see an anonymous mapping as "physical memory", with the
//! mapping's address as the phys→virt offset ([`phys_window::PhysWindow`]).

pub mod bitmap;
pub mod buddy_system;
pub mod frame_alloc;
pub mod multiarch;
pub mod offset_page_table;
pub mod phys_window;

pub use bitmap::BitmapAllocator;
pub use buddy_system::BuddySystem;
pub use frame_alloc::SummaryBuddy;
pub use multiarch::Multiarch;
pub use offset_page_table::OffsetPt;
