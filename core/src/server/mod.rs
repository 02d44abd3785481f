//! The VM server: its state, boot, the message loop and what the call handlers share.
//!
//! Replaces `servers/vm/main.c` (`main`'s loop body, `sef_cb_init_fresh`, the `vm_calls`
//! table, `vm_acl_ok`) and the global state of `glo.h`. One file per concept:
//! [`config`] (boot configuration and policies), [`state`] (the [`Vm`] and its
//! accessors), [`boot`], [`dispatch`] (the call table and the loop body), [`handler`]
//! (the handler signature), [`image`] (the exec image builder), [`usercopy`] (copies to
//! and from a process's memory), [`pool`] (the pre-zeroed frames), and the small tables
//! some calls keep: [`dma_table`] and [`exits`]. Handlers (`crate::calls`) depend on these
//! files; of them only [`dispatch`] and [`usercopy`] reach back into the handlers.

pub mod boot;
pub mod config;
pub mod dispatch;
pub mod dma_table;
pub mod exits;
pub mod handler;
pub mod image;
pub mod pool;
pub mod state;
pub mod usercopy;

pub use self::config::{BootError, FolioSize, HugePolicy, SanityError, SanityLevel, VmConfig, ZeroPolicy};
pub use self::dma_table::{DmaEntry, DmaTable, NR_DMA};
pub use self::exits::ExitQueue;
pub(crate) use self::handler::{CallResult, Handler, Reply};
pub use self::pool::{ZeroPool, PREZERO_POOL};
pub use self::state::Vm;
