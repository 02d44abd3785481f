//! Dispatch: the call table and the message loop body.
//!
//! Replaces `servers/vm/main.c`'s `main` loop body, the `vm_calls` table filled by
//! `CALLMAP` and `vm_acl_ok`. Notifications are ignored; `VM_PAGEFAULT` is accepted only
//! from the kernel (a faked one is refused with EPERM and counted, §21.1) and never
//! answered; other numbers are range checked, the caller is checked (`vm_isokendpt`: a
//! dead or stale caller is answered `EDEADSRCDST`, a non-process endpoint `EINVAL`) and ACL
//! checked (ENOSYS, as the seed answers), then dispatched through an array of
//! handlers indexed by `mtype - VM_RQ_BASE`; the reply is the request with `mtype` set to
//! the result, unless the handler suspends.

use super::{CallResult, Handler, Reply, Vm};
use crate::acl::CallMask;
use crate::calls;
use crate::endpoint::Endpoint;
use crate::errno::{Errno, OK};
use crate::frames::FrameAllocator;
use crate::message::{
    call_index, Message, NOTIFY_MESSAGE, NR_VM_CALLS, VM_ADDDMA, VM_BRK, VM_DELDMA, VM_DISCARD, VM_EXIT,
    VM_GETDMA, VM_GETPHYS, VM_GETREF, VM_MPROTECT, VM_MUNMAP, VM_MUNMAP_TEXT, VM_NOTIFY_SIG, VM_PAGEFAULT,
    VM_PUSH_SIG, VM_QUERY_EXIT, VM_RS_UPDATE, VM_SHM_UNMAP, VM_UNMAP_PHYS, VM_WILLEXIT,
};
use crate::paging::PagingFormat;

/// Calls that never take a frame (they only free, look up or edit tables of the server):
/// the peaks cannot rise during them, so the loop does not sample them.
const NO_FRAMES: CallMask = CallMask::of(&[
    VM_EXIT,
    VM_WILLEXIT,
    VM_MUNMAP,
    VM_MUNMAP_TEXT,
    VM_UNMAP_PHYS,
    VM_SHM_UNMAP,
    VM_GETPHYS,
    VM_GETREF,
    VM_QUERY_EXIT,
    VM_NOTIFY_SIG,
    VM_PUSH_SIG,
    VM_ADDDMA,
    VM_DELDMA,
    VM_GETDMA,
    VM_DISCARD,
    VM_MPROTECT,
    VM_BRK,
    VM_RS_UPDATE,
]);

impl<F: FrameAllocator, P: PagingFormat> Vm<F, P> {
    /// The call table (`vm_calls[]` filled by `CALLMAP`): handler and name per index.
    const CALLS: [(Option<Handler<F, P>>, &'static str); NR_VM_CALLS] = [
        (Some(calls::exit::do_exit), "VM_EXIT"),
        (Some(calls::fork::do_fork), "VM_FORK"),
        (Some(calls::brk::do_brk), "VM_BRK"),
        (Some(calls::exec::do_exec_newmem), "VM_EXEC_NEWMEM"),
        (Some(calls::signals::do_push_sig), "VM_PUSH_SIG"),
        (Some(calls::exit::do_willexit), "VM_WILLEXIT"),
        (None, "6"),
        (None, "7"),
        (None, "8"),
        (None, "9"),
        (Some(calls::mmap::do_mmap), "VM_MMAP"),
        (None, "VM_UMAP"),
        (Some(calls::dma::do_adddma), "VM_ADDDMA"),
        (Some(calls::dma::do_deldma), "VM_DELDMA"),
        (Some(calls::dma::do_getdma), "VM_GETDMA"),
        (Some(calls::phys::do_map_phys), "VM_MAP_PHYS"),
        (Some(calls::phys::do_unmap_phys), "VM_UNMAP_PHYS"),
        (Some(calls::mmap::do_munmap), "VM_MUNMAP"),
        (None, "18"),
        (Some(calls::mmap::do_munmap), "VM_MUNMAP_TEXT"),
        (None, "20"),
        (None, "21"),
        (None, "22"),
        (None, "23"),
        (None, "24"),
        (None, "25"),
        (None, "26"),
        (None, "27"),
        (None, "28"),
        (None, "29"),
        (None, "VM_VFS_REPLY_OPEN"),
        (None, "VM_VFS_REPLY_MMAP"),
        (None, "VM_VFS_REPLY_CLOSE"),
        (Some(calls::shared::do_remap), "VM_REMAP"),
        (Some(calls::shared::do_shared_unmap), "VM_SHM_UNMAP"),
        (Some(calls::shared::do_get_phys), "VM_GETPHYS"),
        (Some(calls::shared::do_get_refcount), "VM_GETREF"),
        (Some(calls::privileges::do_rs_set_priv), "VM_RS_SET_PRIV"),
        (Some(calls::signals::do_query_exit), "VM_QUERY_EXIT"),
        (Some(calls::signals::do_notify_sig), "VM_NOTIFY_SIG"),
        (Some(calls::info::do_info), "VM_INFO"),
        (Some(calls::privileges::do_rs_update), "VM_RS_UPDATE"),
        (Some(calls::mprotect::do_mprotect), "VM_MPROTECT"),
        (Some(calls::mremap::do_mremap), "VM_MREMAP"),
        (Some(calls::discard::do_discard), "VM_DISCARD"),
    ];

    /// The seed's loop body: one message in, the reply (or none) out.
    #[inline]
    pub fn handle(&mut self, msg: &Message, from_kernel: bool) -> Option<Message> {
        let mut out = Some(*msg);
        if let Some(m) = out.as_mut() {
            if !self.handle_mut(m, from_kernel) {
                out = None;
            }
        }
        out
    }

    /// The loop body in place, as MINIX's VM answers with the buffer it received into:
    /// `msg` is the request on entry and the reply on return when the result is `true`
    /// (`false`: no reply; `msg` is then unspecified).
    ///
    /// The request path is: range check of `mtype`, handler table read, endpoint check
    /// (arithmetic and one slot read), ACL bit test, call, result into `mtype`. Refusals,
    /// page faults and notifications leave that path early; peaks are sampled only after
    /// work that can change them.
    #[inline(always)]
    pub fn handle_mut(&mut self, msg: &mut Message, from_kernel: bool) -> bool {
        self.stats.calls += 1;
        let replied = match call_index(msg.mtype) {
            Some(c) => self.request(c, msg),
            None => self.special(msg, from_kernel),
        };
        if self.sanity.is_some() {
            self.check_after_message();
        }
        replied
    }

    /// A request with call index `c`: ACL, call, result.
    #[inline(always)]
    fn request(&mut self, c: usize, msg: &mut Message) -> bool {
        let Some((caller, proc)) = self.slots.live_slot(msg.source) else {
            msg.mtype = self.refuse_caller(msg.source);
            return true;
        };
        // Allowed and implemented: one bit test of the caller's mask restricted to the
        // table's registered calls.
        let allowed = self.acl.mask(proc.acl).bits() & Self::IMPLEMENTED.bits();
        if allowed & (1 << c) == 0 {
            msg.mtype = self.refuse(Errno::ENOSYS);
            return true;
        }
        self.stats.per_call[c] += 1;
        let result = (Self::HANDLERS[c])(self, caller, msg);
        if !NO_FRAMES.allows(c) {
            self.note_peaks();
        }
        msg.mtype = match result {
            Ok(Reply::Now) => OK,
            Ok(Reply::Suspend) => return false,
            Err(e) => e.code(),
        };
        true
    }

    /// Counts a refusal; returns the code of `e`.
    #[cold]
    #[inline(never)]
    fn refuse(&mut self, e: Errno) -> i32 {
        self.stats.refused += 1;
        e.code()
    }

    /// Refuses a request whose sender is not a live process with `vm_isokendpt`'s answer
    /// (`EDEADSRCDST` for an exited or stale endpoint, `EINVAL` for one that names no
    /// process slot), not the ACL's ENOSYS: MINIX checks the caller with `vm_isokendpt`
    /// before the ACL. Counted as a refusal.
    #[cold]
    #[inline(never)]
    fn refuse_caller(&mut self, source: Endpoint) -> i32 {
        let e = self.slots.lookup(source).err().unwrap_or(Errno::EDEADSRCDST);
        self.refuse(e)
    }

    /// Messages outside the call table: page faults (kernel only), notifications, unknown
    /// numbers.
    #[inline]
    fn special(&mut self, msg: &mut Message, from_kernel: bool) -> bool {
        if msg.mtype == VM_PAGEFAULT {
            if !from_kernel {
                self.stats.faked_faults += 1;
                msg.mtype = self.refuse(Errno::EPERM);
                return true;
            }
            calls::fault::do_pagefault(self, msg);
            self.note_peaks();
            return false;
        }
        if (NOTIFY_MESSAGE..NOTIFY_MESSAGE + 0x100).contains(&msg.mtype) {
            self.stats.notifications += 1;
            return false;
        }
        msg.mtype = self.refuse(Errno::ENOSYS);
        true
    }

    /// Per-message sanity checking ([`VmConfig::sanity`]).
    #[cold]
    #[inline(never)]
    fn check_after_message(&mut self) {
        if let Some(level) = self.sanity {
            if let Err(e) = self.check_invariants(level) {
                self.stats.sanity_failures += 1;
                self.sanity_error.get_or_insert(e);
            }
        }
    }

    /// The name of call index `c` in the dispatch table.
    pub fn call_table_name(c: usize) -> Option<&'static str> {
        Self::CALLS.get(c).map(|e| e.1)
    }

    /// The handlers alone (one word per entry), read on the request path; entries without
    /// a handler hold one that is never called (their bit is clear in [`Self::IMPLEMENTED`]).
    const HANDLERS: [Handler<F, P>; NR_VM_CALLS] = {
        let mut h: [Handler<F, P>; NR_VM_CALLS] = [Self::unregistered; NR_VM_CALLS];
        let mut i = 0;
        while i < NR_VM_CALLS {
            if let Some(f) = Self::CALLS[i].0 {
                h[i] = f;
            }
            i += 1;
        }
        h
    };

    /// The call indices that have a handler.
    const IMPLEMENTED: CallMask = {
        let mut m = 0u64;
        let mut i = 0;
        while i < NR_VM_CALLS {
            if Self::CALLS[i].0.is_some() {
                m |= 1 << i;
            }
            i += 1;
        }
        CallMask::from_bits_retain(m)
    };

    /// The handler of an unregistered call number: never reached (the request path checks
    /// [`Self::IMPLEMENTED`]); answers ENOSYS should it ever be.
    fn unregistered(_vm: &mut Self, _caller: usize, _msg: &mut Message) -> CallResult {
        Err(Errno::ENOSYS)
    }
}
