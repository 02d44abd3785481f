//! Boot: the arena, the allocator, the slot table and the boot image's processes.
//!
//! Replaces `sef_cb_init_fresh` of `servers/vm/main.c` (VM's own initialisation and the
//! boot processes' address spaces).

use super::{BootError, Vm, VmConfig, ZeroPool};
use crate::acl::{AclTable, CallMask, ACL_CAPACITY};
use crate::arena::Arena;
use crate::endpoint::{Endpoint, MAX_SLOTS, NR_BOOT_PROCS, PM_PROC_NR, RS_PROC_NR, VM_PROC_NR};
use crate::frames::{FrameAllocator, PhysMem};
use crate::layout::ImageLayout;
use crate::paging::PagingFormat;
use crate::region::RegionMap;
use crate::server::{DmaTable, ExitQueue};
use crate::slots::{ProcSlot, Slots};
use crate::stats::VmStats;
use core::marker::PhantomData;

impl<F: FrameAllocator, P: PagingFormat> Vm<F, P> {
    /// Boots a server (`sef_cb_init_fresh`) with a fresh allocator over the arena.
    ///
    /// # Errors
    /// See [`BootError`].
    pub fn boot(config: VmConfig) -> Result<Self, BootError> {
        Self::check_slots(config.slots)?;
        let arena = Arena::new(&config.arena)?;
        let alloc = F::with_frames(arena.frames());
        Self::boot_in(config, arena, alloc)
    }

    /// Boots a server with a given allocator, which must manage exactly the arena's
    /// frames, all free (used with `FailingAllocator` in tests).
    ///
    /// # Errors
    /// See [`BootError`].
    pub fn boot_with(config: VmConfig, alloc: F) -> Result<Self, BootError> {
        Self::check_slots(config.slots)?;
        let arena = Arena::new(&config.arena)?;
        if alloc.free_count() != arena.frames() {
            return Err(BootError::AllocatorMismatch {
                arena: arena.frames(),
                allocator: alloc.free_count(),
            });
        }
        Self::boot_in(config, arena, alloc)
    }

    fn check_slots(n: usize) -> Result<(), BootError> {
        if !(NR_BOOT_PROCS..=MAX_SLOTS).contains(&n) {
            return Err(BootError::TooManySlots(n));
        }
        Ok(())
    }

    fn boot_in(config: VmConfig, arena: Arena, alloc: F) -> Result<Self, BootError> {
        let mut vm = Vm {
            mem: PhysMem::with_allocator(arena, alloc),
            slots: Slots::new(config.slots),
            acl: AclTable::new(ACL_CAPACITY),
            dma: DmaTable::default(),
            exits: ExitQueue::new(config.slots),
            fork_policy: config.fork,
            folio: config.folio,
            huge: config.huge,
            huge_zero: None,
            pool: ZeroPool::new(config.zero),
            spare_regions: RegionMap::new(),
            stats: VmStats::default(),
            sanity: config.sanity,
            sanity_error: None,
            _format: PhantomData,
        };
        let layout = ImageLayout::boot::<P>();
        for slot in 0..NR_BOOT_PROCS {
            let mask = match Endpoint(slot as i32) {
                PM_PROC_NR => CallMask::PM,
                RS_PROC_NR => CallMask::RS,
                VM_PROC_NR => CallMask::EMPTY,
                _ => CallMask::BASIC,
            };
            let acl = vm.acl.intern(mask)?;
            let root = P::new_root(&mut vm.mem)?;
            let mut p = ProcSlot {
                endpoint: Endpoint::new(0, slot as i32),
                acl,
                root,
                heap_start: layout.data.start,
                brk: layout.brk,
                stack_top: layout.stack.end(),
                ..Default::default()
            };
            vm.install_image(&mut p, &layout, slot as u8)?;
            vm.slots.occupy(slot, p);
        }
        vm.idle();
        vm.note_peaks();
        Ok(vm)
    }
}
