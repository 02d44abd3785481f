//! VM_EXEC_NEWMEM: replace a process's memory image.
//!
//! Replaces `servers/vm/exec.c` (`do_exec_newmem`, `new_mem`, `proc_new`). As in the seed,
//! PM copies a `struct exec_newmem` into its own memory and passes a pointer and size; VM
//! copies it from PM. The new image (text and data+bss preallocated, stack demand-zero) is
//! built under a fresh page-table root while the old image stays untouched; only when
//! everything is allocated is the old image released and the new one installed. On any
//! failure the new root is destroyed and the process keeps its old image (§20.8), without
//! the seed's panicking undo path (§21.8).

use crate::addr::VirtAddr;
use crate::endpoint::Endpoint;
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::layout::ImageLayout;
use crate::message::{call_fields, Fields, Message, VM_EXEC_NEWMEM};
use crate::paging::PagingFormat;
use crate::server::{CallResult, Reply, Vm};

/// Size of the argument block on the wire.
pub const EXEC_NEWMEM_BYTES: usize = 40;
/// `EXC_NM_RF_LOAD_TEXT`: the caller must load the text (always, with paging).
pub const EXC_NM_RF_LOAD_TEXT: i32 = 1;

/// `struct exec_newmem`, reduced to what a flat image needs. Wire form: five
/// little-endian u64 fields in this order.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ExecNewmem {
    /// Text size in bytes.
    pub text_bytes: u64,
    /// Initialized data size in bytes.
    pub data_bytes: u64,
    /// Bss size in bytes.
    pub bss_bytes: u64,
    /// Stack size in bytes (`tot_bytes`; the region is at least 64 MiB).
    pub stack_bytes: u64,
    /// Argument and environment bytes (`args_bytes`; informational).
    pub args_bytes: u64,
}

impl ExecNewmem {
    /// The wire form.
    pub fn to_bytes(&self) -> [u8; EXEC_NEWMEM_BYTES] {
        let mut b = [0u8; EXEC_NEWMEM_BYTES];
        for (i, v) in [self.text_bytes, self.data_bytes, self.bss_bytes, self.stack_bytes, self.args_bytes]
            .iter()
            .enumerate()
        {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// From the wire form.
    pub fn from_bytes(b: &[u8; EXEC_NEWMEM_BYTES]) -> ExecNewmem {
        let f = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        ExecNewmem {
            text_bytes: f(0),
            data_bytes: f(1),
            bss_bytes: f(2),
            stack_bytes: f(3),
            args_bytes: f(4),
        }
    }

    /// The image layout these sizes give.
    ///
    /// # Errors
    /// As [`ImageLayout::compute`].
    pub fn layout<P: PagingFormat>(&self) -> Result<ImageLayout, Errno> {
        ImageLayout::compute::<P>(self.text_bytes, self.data_bytes, self.bss_bytes, self.stack_bytes)
    }
}

call_fields! {
    /// `VM_EXEC_NEWMEM` from PM: a new image for `proc`, described by the [`ExecNewmem`]
    /// block at `args` in PM's memory.
    pub struct ExecRequest for VM_EXEC_NEWMEM {
        /// The process (`VMEN_ENDPOINT`).
        proc: Endpoint = m1_i1 / set_m1_i1,
        /// The argument block in the caller's memory (`VMEN_ARGSPTR`).
        args: VirtAddr = m1_p1 / set_m1_p1,
        /// Its size, [`EXEC_NEWMEM_BYTES`] (`VMEN_ARGSSIZE`).
        args_size: i32 = m1_i2 / set_m1_i2,
    }
}

call_fields! {
    /// `VM_EXEC_NEWMEM`'s reply.
    pub struct ExecReply for VM_EXEC_NEWMEM {
        /// First byte above the new stack (`VMEN_STACK_TOP`).
        stack_top: VirtAddr = m1_p2 / set_m1_p2,
        /// Exec flags (`VMEN_FLAGS`).
        flags: i32 = m1_i3 / set_m1_i3,
    }
}

/// `do_exec_newmem`: m1_i1 endpoint, m1_p1 args pointer, m1_i2 args size → m1_p2 stack
/// top, m1_i3 flags.
///
/// # Errors
/// `ESRCH` bad endpoint; `EINVAL` bad size; `EFAULT` unreadable argument block;
/// `ENOEXEC`/`ENOMEM` when the image does not fit; `ENOMEM` out of frames.
pub(crate) fn do_exec_newmem<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    caller: usize,
    msg: &mut Message,
) -> CallResult {
    let req = ExecRequest::decode(msg);
    // MINIX's exec answers a bad endpoint ESRCH where the other handlers answer EINVAL.
    let Ok(target) = vm.slots.lookup(req.proc) else {
        return Err(Errno::ESRCH);
    };
    if usize::try_from(req.args_size) != Ok(EXEC_NEWMEM_BYTES) {
        return Err(Errno::EINVAL);
    }
    let mut raw = [0u8; EXEC_NEWMEM_BYTES];
    vm.copy_from_user(caller, req.args, &mut raw)?;
    let args = ExecNewmem::from_bytes(&raw);
    let layout = args.layout::<P>()?;
    let root = P::new_root(&mut vm.mem)?;
    // The new image is built beside the old one (whose slot is untouched until the end);
    // the region list is the server's spare buffer, swapped with the old one on success.
    let old = vm.slots.get(target);
    let mut new = old.with_space(root, core::mem::take(&mut vm.spare_regions));
    if let Err(e) = vm.install_image(&mut new, &layout, target as u8) {
        vm.destroy_space(root, new.regions.as_slice());
        new.regions.clear();
        vm.spare_regions = new.regions;
        return Err(e);
    }
    let mut old = core::mem::replace(vm.slots.get_mut(target), new);
    vm.destroy_space(old.root, old.regions.as_slice());
    old.regions.clear();
    vm.spare_regions = old.regions;
    ExecReply { stack_top: layout.stack.end(), flags: EXC_NM_RF_LOAD_TEXT }.encode(msg);
    Ok(Reply::Now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip() {
        let a = ExecNewmem { text_bytes: 1, data_bytes: 2, bss_bytes: 3, stack_bytes: 4, args_bytes: 5 };
        assert_eq!(ExecNewmem::from_bytes(&a.to_bytes()), a);
    }
}
