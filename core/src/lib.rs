//! vmstorm-core: the MINIX 3 VM server rebuilt as a fast user-space core.
//!
//! The crate owns the memory manager of a microkernel — process slots, call masks,
//! physical frames, x86 page tables, fork/exec/mmap/brk/exit and page faults — running
//! over an mmap'd "physical memory" [`arena::Arena`]. It does no I/O, reads no clock and
//! starts no thread; the load generator and the benches drive it through messages.
//!
//! Layout: [`addr`] (units), [`arena`] (the only `unsafe`), [`bits`] (bit tricks),
//! [`frames`] (allocator strategies and reference counts), [`paging`] (page-table formats),
//! [`mmu`] (the software MMU), and the server: [`server`] (state, boot, dispatch),
//! [`calls`] (one file per call family), [`client`] (what PM, libc and the kernel send),
//! [`message`], [`endpoint`], [`errno`], [`slots`], [`acl`], [`region`], [`layout`],
//! [`sanity`], [`snapshot`], [`stats`]; [`rng`] is the seeded generator the load
//! generator, benches and tests share; [`strategy`] names every strategy and dispatches to
//! the matching `Vm<F, P>`.

// The unsafe fence: only the arena may hold `unsafe` (each block with a `// SAFETY:`
// comment); the compiler refuses it anywhere else in the crate.
#![deny(unsafe_code)]

pub mod acl;
pub mod addr;
#[allow(unsafe_code)]
pub mod arena;
pub mod bits;
pub mod calls;
pub mod client;
pub mod endpoint;
pub mod errno;
pub mod frames;
pub mod layout;
pub mod message;
pub mod mmu;
pub mod paging;
pub mod region;
pub mod rng;
pub mod sanity;
pub mod server;
pub mod slots;
pub mod snapshot;
pub mod stats;
pub mod strategy;

pub use addr::{Frame, PageSpan, PhysAddr, VirtAddr, PAGE_SIZE};
pub use arena::{Arena, ArenaConfig, ArenaError};
pub use endpoint::Endpoint;
pub use errno::Errno;
pub use frames::{
    AllocKind, Bitset, Buddy, FailingAllocator, FrameAllocator, FrameRefs, HoleList, HotList, Lifo, PhysMem,
};
pub use message::Message;
pub use mmu::CopyError;
pub use paging::{
    Access, FaultCode, ForkPolicy, LeafLink, Mapping, PageFlags, PagingError, PagingFormat, I386, X86_64,
};
pub use sanity::{SanityError, SanityLevel};
pub use server::{BootError, FolioSize, HugePolicy, Vm, VmConfig, ZeroPolicy};
pub use snapshot::VmSnapshot;
pub use stats::VmStats;
pub use strategy::{PagingKind, Strategy, StrategyJob, VmJob};
