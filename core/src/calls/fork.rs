//! VM_FORK: copy a process into a free slot.
//!
//! Replaces `servers/vm/fork.c` (`do_fork`) and `region.c`'s `map_proc_copy`. The page
//! tables are copied by the format's `fork_copy` (copy-on-write per page for
//! [`crate::paging::ForkPolicy::Cow`], an eager copy for [`crate::paging::ForkPolicy::Copy`], shared leaf tables for
//! [`crate::paging::ForkPolicy::Share`]); shared and direct regions
//! stay shared and writable in the child. The child inherits the parent's regions, break
//! and call mask (one more reference to the interned mask) and gets the slot's next
//! generation. Fixes of §21: the child slot must be free (the seed did not check), and a
//! failure (ENOMEM) leaves no half-built child behind (§21.23).

use crate::endpoint::Endpoint;
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::message::{call_fields, Fields, Message, VM_FORK};
use crate::paging::PagingFormat;
use crate::server::{CallResult, Reply, Vm};

call_fields! {
    /// `VM_FORK` from PM: fork `parent` into slot `child_slot`.
    pub struct ForkRequest for VM_FORK {
        /// The parent (`VMF_ENDPOINT`).
        parent: Endpoint = m1_i1 / set_m1_i1,
        /// The child's slot (`VMF_SLOTNO`).
        child_slot: i32 = m1_i2 / set_m1_i2,
    }
}

call_fields! {
    /// `VM_FORK`'s reply: the child's endpoint.
    pub struct ForkReply for VM_FORK {
        /// The child (`VMF_CHILD_ENDPOINT`).
        child: Endpoint = m1_i3 / set_m1_i3,
    }
}

/// `do_fork`: m1_i1 parent endpoint, m1_i2 child slot → m1_i3 child endpoint.
///
/// # Errors
/// `EINVAL` for a bad parent, a slot out of range or in use, a parent with DMA buffers;
/// `ENOMEM`.
pub(crate) fn do_fork<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    _caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = ForkRequest::decode(msg);
    let parent = vm.proc_slot(req.parent)?;
    let child = req.child_slot as usize;
    if req.child_slot < 0 || child >= vm.slots.len() || vm.slots.is_in_use(child) {
        return Err(Errno::EINVAL);
    }
    let p = vm.slots.get(parent);
    if p.has_dma {
        return Err(Errno::EINVAL);
    }
    let root = P::fork_copy(&mut vm.mem, p.root, vm.fork_policy)?;
    // The free child slot may keep a region buffer from its last tenant: reuse it.
    let mut regions = core::mem::take(&mut vm.slots.get_mut(child).regions);
    let p = vm.slots.get(parent);
    regions.copy_from(&p.regions);
    let endpoint = vm.slots.next_endpoint(child);
    let state = p.child(endpoint, root, regions);
    vm.acl.share(p.acl);
    vm.slots.occupy(child, state);
    ForkReply { child: endpoint }.encode(msg);
    Ok(Reply::Now)
}
