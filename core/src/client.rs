//! What PM, libc and the kernel send: message builders and reply decoders.
//!
//! Replaces the client stubs of MINIX (`lib/libsys/vm_*.c`, `lib/libc/posix/_mmap.c`,
//! `lib/libc/other/_vm_*.c`) and the kernel's side of page faults
//! (`kernel/arch/i386/exception.c`). Each function builds the message exactly as its MINIX
//! caller would — the right source endpoint (PM for fork/exec/exit/brk, the process itself
//! for mmap and friends, the kernel for page faults), the fields through the call's
//! request type declared beside its handler in [`crate::calls`] — sends it through [`Vm::handle`] and decodes the reply. Exec writes
//! its `exec_newmem` block into PM's memory and passes the pointer, as PM does.

use crate::acl::CallMask;
use crate::addr::{Frame, VirtAddr};
use crate::calls::brk::BrkRequest;
use crate::calls::discard::DiscardRequest;
use crate::calls::exec::{ExecNewmem, ExecReply, ExecRequest, EXEC_NEWMEM_BYTES};
use crate::calls::exit::{ExitRequest, WillExitRequest};
use crate::calls::fault::PagefaultRequest;
use crate::calls::fork::{ForkReply, ForkRequest};
use crate::calls::mmap::{MmapReply, MmapRequest, MunmapRequest};
use crate::calls::mprotect::MprotectRequest;
use crate::calls::mremap::{MremapReply, MremapRequest, MREMAP_MAYMOVE};
use crate::calls::privileges::SetPrivRequest;
use crate::endpoint::{Endpoint, PM_PROC_NR, RS_PROC_NR};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::layout::BOOT_DATA_VA;
use crate::message::{Fields, Message, VM_PAGEFAULT};
use crate::mmu::walk_pages;
use crate::paging::{Access, FaultCode, Mapping, PagingFormat};
use crate::server::Vm;
use core::fmt;

pub use crate::calls::mmap::MapFlags;
pub use crate::region::MapProt;

/// Sends `msg` from a process and turns the reply into a result.
///
/// # Errors
/// The reply's error; `ENOSYS` if no reply came (cannot happen for a request).
#[inline(always)]
pub fn call<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, msg: &Message) -> Result<Message, Errno> {
    let reply = vm.handle(msg, false).ok_or(Errno::ENOSYS)?;
    if reply.mtype < 0 {
        Err(Errno::from_code(reply.mtype).unwrap_or(Errno::EINVAL))
    } else {
        Ok(reply)
    }
}

/// Sends `req` from `from` (its call number, its fields) and turns the reply into a result.
///
/// # Errors
/// The reply's error.
#[inline(always)]
pub fn send<F: FrameAllocator, P: PagingFormat, R: Fields>(
    vm: &mut Vm<F, P>,
    from: Endpoint,
    req: &R,
) -> Result<Message, Errno> {
    let mut m = Message::new(from, R::CALL);
    req.encode(&mut m);
    call(vm, &m)
}

/// PM's `vm_fork`: forks `parent` into the lowest free slot; returns the child.
///
/// # Errors
/// `EAGAIN` when no slot is free; the reply's error.
pub fn fork<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    parent: Endpoint,
) -> Result<Endpoint, Errno> {
    let slot = vm.find_free_slot().ok_or(Errno::EAGAIN)?;
    fork_into(vm, parent, slot)
}

/// PM's `vm_fork` into a given slot.
///
/// # Errors
/// The reply's error.
pub fn fork_into<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    parent: Endpoint,
    slot: usize,
) -> Result<Endpoint, Errno> {
    let req = ForkRequest { parent, child_slot: i32::try_from(slot).unwrap_or(-1) };
    Ok(ForkReply::decode(&send(vm, PM_PROC_NR, &req)?).child)
}

/// The sizes of an executable image.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ExecImage {
    /// Text bytes.
    pub text_bytes: u64,
    /// Initialized data bytes.
    pub data_bytes: u64,
    /// Bss bytes.
    pub bss_bytes: u64,
    /// Stack bytes (the stack region is at least 64 MiB, demand-zero).
    pub stack_bytes: u64,
}

/// Where exec put an image.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExecLayout {
    /// Text start.
    pub text: VirtAddr,
    /// Data start.
    pub data: VirtAddr,
    /// Initial break.
    pub brk: VirtAddr,
    /// First byte above the stack.
    pub stack_top: VirtAddr,
    /// Lowest byte of the stack region.
    pub stack_bottom: VirtAddr,
}

/// PM's `vm_exec_newmem` for `proc`: writes the argument block into PM's memory, sends
/// the pointer.
///
/// # Errors
/// The reply's error (`ENOEXEC`/`ENOMEM` when the image does not fit).
pub fn exec<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    image: &ExecImage,
) -> Result<ExecLayout, Errno> {
    let args = ExecNewmem {
        text_bytes: image.text_bytes,
        data_bytes: image.data_bytes,
        bss_bytes: image.bss_bytes,
        stack_bytes: image.stack_bytes,
        args_bytes: 0,
    };
    vm.write_process(PM_PROC_NR, BOOT_DATA_VA, &args.to_bytes())?;
    let req = ExecRequest { proc, args: BOOT_DATA_VA, args_size: EXEC_NEWMEM_BYTES as i32 };
    let reply = ExecReply::decode(&send(vm, PM_PROC_NR, &req)?);
    let l = args.layout::<P>()?;
    Ok(ExecLayout {
        text: l.text.start,
        data: l.data.start,
        brk: l.brk,
        stack_top: reply.stack_top,
        stack_bottom: l.stack.start,
    })
}

/// PM's exit sequence: `vm_willexit` then `vm_exit`.
///
/// # Errors
/// The first reply's error.
pub fn exit<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, proc: Endpoint) -> Result<(), Errno> {
    send(vm, PM_PROC_NR, &WillExitRequest { proc })?;
    send(vm, PM_PROC_NR, &ExitRequest { proc }).map(|_| ())
}

/// PM's `vm_brk` for `proc`.
///
/// # Errors
/// The reply's error.
pub fn brk<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    new_brk: VirtAddr,
) -> Result<(), Errno> {
    send(vm, PM_PROC_NR, &BrkRequest { proc, addr: new_brk }).map(|_| ())
}

/// mmap arguments.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MmapArgs {
    /// Hint (or the exact address with `MapFlags::FIXED`).
    pub addr: Option<VirtAddr>,
    /// Length in bytes.
    pub len: u64,
    /// Protection.
    pub prot: MapProt,
    /// Flags.
    pub flags: MapFlags,
}

impl MmapArgs {
    /// Private anonymous read/write memory of `len` bytes anywhere.
    pub fn anon(len: u64) -> MmapArgs {
        MmapArgs { addr: None, len, prot: MapProt::RW, flags: MapFlags::ANON | MapFlags::PRIVATE }
    }
}

/// libc's `mmap` (anonymous: fd -1), sent by `proc` itself.
///
/// # Errors
/// The reply's error.
pub fn mmap<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    args: &MmapArgs,
) -> Result<VirtAddr, Errno> {
    let req = MmapRequest {
        addr: args.addr.map_or(0, |a| a.0),
        len: args.len,
        prot: args.prot,
        flags: args.flags,
        fd: -1,
        offset: 0,
    };
    Ok(MmapReply::decode(&send(vm, proc, &req)?).addr)
}

/// libc's `munmap`.
///
/// # Errors
/// The reply's error.
pub fn munmap<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    va: VirtAddr,
    len: u64,
) -> Result<(), Errno> {
    send(vm, proc, &MunmapRequest { addr: va.0, len }).map(|_| ())
}

/// `mprotect` (extension call).
///
/// # Errors
/// The reply's error.
pub fn mprotect<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    va: VirtAddr,
    len: u64,
    prot: MapProt,
) -> Result<(), Errno> {
    send(vm, proc, &MprotectRequest { addr: va.0, len, prot }).map(|_| ())
}

/// `mremap` (extension call).
///
/// # Errors
/// The reply's error.
pub fn mremap<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    old: VirtAddr,
    old_len: u64,
    new_len: u64,
    may_move: bool,
) -> Result<VirtAddr, Errno> {
    let flags = if may_move { MREMAP_MAYMOVE } else { 0 };
    let req = MremapRequest { addr: old.0, old_len, new_len, flags };
    Ok(MremapReply::decode(&send(vm, proc, &req)?).addr)
}

/// `madvise(MADV_DONTNEED)` (extension call).
///
/// # Errors
/// The reply's error.
pub fn discard<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    va: VirtAddr,
    len: u64,
) -> Result<(), Errno> {
    send(vm, proc, &DiscardRequest { addr: va.0, len }).map(|_| ())
}

/// RS's `vm_set_priv`: writes `mask` into RS's memory and sends its address.
///
/// # Errors
/// The reply's error.
pub fn rs_set_priv<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    target: Endpoint,
    mask: CallMask,
) -> Result<(), Errno> {
    vm.write_process(RS_PROC_NR, BOOT_DATA_VA, &mask.to_wire())?;
    send(vm, RS_PROC_NR, &SetPrivRequest { proc: target, mask: BOOT_DATA_VA }).map(|_| ())
}

/// The result of a user access through the soft MMU.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Touch {
    /// The access hit a present, permitted page.
    Hit,
    /// It faulted; VM resolved the fault and the retry hit.
    Faulted,
}

/// Why a user access failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TouchError {
    /// VM could not resolve the fault: the process is signalled (SIGSEGV, or out of
    /// memory on the fault path). The fault code of the retried access.
    Signalled(FaultCode),
    /// The endpoint is not a live process.
    BadEndpoint,
    /// The page is device memory outside the arena (no contents to read or write).
    NotMemory(VirtAddr),
}

impl fmt::Display for TouchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TouchError::Signalled(c) => write!(f, "process signalled after a fault (code {:#x})", c.0),
            TouchError::BadEndpoint => write!(f, "not a live endpoint"),
            TouchError::NotMemory(va) => write!(f, "{va:?} is device memory"),
        }
    }
}

impl std::error::Error for TouchError {}

/// A user access: translate through the soft MMU; on a fault send the kernel's
/// VM_PAGEFAULT and retry once.
///
/// # Errors
/// See [`TouchError`].
pub fn touch<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    va: VirtAddr,
    access: Access,
) -> Result<Touch, TouchError> {
    touch_mapping(vm, proc, va, access).map(|(t, _)| t)
}

/// [`touch`], also returning the mapping the (retried) access hit.
#[inline]
fn touch_mapping<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    va: VirtAddr,
    access: Access,
) -> Result<(Touch, Mapping), TouchError> {
    let Ok(slot) = vm.check_endpoint(proc) else {
        return Err(TouchError::BadEndpoint);
    };
    match vm.mmu_translate_slot(slot, va, access) {
        Ok(m) => Ok((Touch::Hit, m)),
        Err(code) => {
            let mut m = Message::new(proc, VM_PAGEFAULT);
            PagefaultRequest { addr: va, code: code.0 as i32 }.encode(&mut m);
            vm.handle_mut(&mut m, true);
            // Handling a fault never ends or replaces a process: the slot still holds it.
            match vm.mmu_translate_slot(slot, va, access) {
                Ok(m) => Ok((Touch::Faulted, m)),
                Err(code) => Err(TouchError::Signalled(code)),
            }
        }
    }
}

const USER_READ: Access = Access { write: false, user: true };
const USER_WRITE: Access = Access { write: true, user: true };

/// One page of a user access: touch it (resolving a fault), then the frame behind it.
fn user_frame<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    at: VirtAddr,
    access: Access,
) -> Result<Frame, TouchError> {
    let (_, m) = touch_mapping(vm, proc, at, access)?;
    if !vm.arena().contains(m.frame) {
        return Err(TouchError::NotMemory(at));
    }
    Ok(m.frame)
}

/// The fault code of an access that runs past the top of the address space.
fn overflow(access: Access) -> TouchError {
    TouchError::Signalled(FaultCode(FaultCode::USER | if access.write { FaultCode::WRITE } else { 0 }))
}

/// Reads user memory as the process would (faults resolved).
///
/// # Errors
/// See [`TouchError`].
pub fn read_user<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    va: VirtAddr,
    buf: &mut [u8],
) -> Result<(), TouchError> {
    walk_pages(
        vm,
        va,
        buf.len(),
        || overflow(USER_READ),
        |vm, at| user_frame(vm, proc, at, USER_READ),
        |vm, frame, off, at, n| buf[at..at + n].copy_from_slice(&vm.arena().frame(frame)[off..off + n]),
    )
}

/// Writes user memory as the process would (faults resolved, copy-on-write broken).
///
/// # Errors
/// See [`TouchError`].
pub fn write_user<F: FrameAllocator, P: PagingFormat>(
    vm: &mut Vm<F, P>,
    proc: Endpoint,
    va: VirtAddr,
    data: &[u8],
) -> Result<(), TouchError> {
    walk_pages(
        vm,
        va,
        data.len(),
        || overflow(USER_WRITE),
        |vm, at| user_frame(vm, proc, at, USER_WRITE),
        |vm, frame, off, at, n| {
            vm.arena_mut().frame_mut(frame)[off..off + n].copy_from_slice(&data[at..at + n])
        },
    )
}
