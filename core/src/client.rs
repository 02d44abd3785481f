//! What PM, libc and the kernel send: message builders and reply decoders.
//!
//! Replaces the client stubs of MINIX (`lib/libsys/vm_*.c`, `lib/libc/posix/_mmap.c`,
//! `lib/libc/other/_vm_*.c`) and the kernel's side of page faults
//! (`kernel/arch/i386/exception.c`). Each function builds the message exactly as its MINIX
//! caller would — the right source endpoint (PM for fork/exec/exit/brk, the process itself
//! for mmap and friends, the kernel for page faults), the fields of
//! [`crate::calls`] — sends it through [`Vm::handle`] and decodes the reply. Exec writes
//! its `exec_newmem` block into PM's memory and passes the pointer, as PM does.

use crate::acl::CallMask;
use crate::addr::{VirtAddr, PAGE_SIZE};
use crate::calls::exec::{ExecNewmem, EXEC_NEWMEM_BYTES};
use crate::calls::mremap::MREMAP_MAYMOVE;
use crate::endpoint::{Endpoint, PM_PROC_NR, RS_PROC_NR};
use crate::errno::Errno;
use crate::frames::FrameAllocator;
use crate::layout::BOOT_DATA_VA;
use crate::message::*;
use crate::paging::{Access, FaultCode, PagingFormat};
use crate::server::Vm;
use core::fmt;

pub use crate::calls::mmap::MapFlags;
pub use crate::region::MapProt;

/// Sends `msg` from a process and turns the reply into a result.
///
/// # Errors
/// The reply's error; `ENOSYS` if no reply came (cannot happen for a request).
pub fn call<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, msg: &Message) -> Result<Message, Errno> {
    let reply = vm.handle(msg, false).ok_or(Errno::ENOSYS)?;
    if reply.mtype < 0 {
        Err(Errno::from_code(reply.mtype).unwrap_or(Errno::EINVAL))
    } else {
        Ok(reply)
    }
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
    let mut m = Message::new(PM_PROC_NR, VM_FORK);
    m.set_m1_i1(parent.0).set_m1_i2(i32::try_from(slot).unwrap_or(-1));
    Ok(Endpoint(call(vm, &m)?.m1_i3()))
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
    let mut m = Message::new(PM_PROC_NR, VM_EXEC_NEWMEM);
    m.set_m1_i1(proc.0).set_m1_p1(BOOT_DATA_VA.0).set_m1_i2(EXEC_NEWMEM_BYTES as i32);
    let reply = call(vm, &m)?;
    let l = args.layout::<P>()?;
    Ok(ExecLayout {
        text: l.text.start,
        data: l.data.start,
        brk: l.brk,
        stack_top: VirtAddr(reply.m1_p2()),
        stack_bottom: l.stack.start,
    })
}

/// PM's exit sequence: `vm_willexit` then `vm_exit`.
///
/// # Errors
/// The first reply's error.
pub fn exit<F: FrameAllocator, P: PagingFormat>(vm: &mut Vm<F, P>, proc: Endpoint) -> Result<(), Errno> {
    let mut m = Message::new(PM_PROC_NR, VM_WILLEXIT);
    m.set_m1_i1(proc.0);
    call(vm, &m)?;
    let mut m = Message::new(PM_PROC_NR, VM_EXIT);
    m.set_m1_i1(proc.0);
    call(vm, &m).map(|_| ())
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
    let mut m = Message::new(PM_PROC_NR, VM_BRK);
    m.set_m1_i1(proc.0).set_m1_p1(new_brk.0);
    call(vm, &m).map(|_| ())
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
    let mut m = Message::new(proc, VM_MMAP);
    m.set_m5_l1(args.addr.map_or(0, |a| a.0) as i64)
        .set_m5_l2(args.len as i64)
        .set_m5_s1(args.prot.0 as i16)
        .set_m5_s2(args.flags.0 as i16)
        .set_m5_i1(-1)
        .set_m5_i2(0);
    Ok(VirtAddr(call(vm, &m)?.m5_l1() as u64))
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
    let mut m = Message::new(proc, VM_MUNMAP);
    m.set_m1_p1(va.0).set_m1_p2(len);
    call(vm, &m).map(|_| ())
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
    let mut m = Message::new(proc, VM_MPROTECT);
    m.set_m5_l1(va.0 as i64).set_m5_l2(len as i64).set_m5_s1(prot.0 as i16);
    call(vm, &m).map(|_| ())
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
    let mut m = Message::new(proc, VM_MREMAP);
    m.set_m5_l1(old.0 as i64).set_m5_l2(old_len as i64).set_m5_l3(new_len as i64).set_m5_s2(if may_move {
        MREMAP_MAYMOVE
    } else {
        0
    });
    Ok(VirtAddr(call(vm, &m)?.m5_l1() as u64))
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
    let mut m = Message::new(proc, VM_DISCARD);
    m.set_m5_l1(va.0 as i64).set_m5_l2(len as i64);
    call(vm, &m).map(|_| ())
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
    let mut m = Message::new(RS_PROC_NR, VM_RS_SET_PRIV);
    m.set_m2_i1(target.0).set_m2_l1(BOOT_DATA_VA.0 as i64);
    call(vm, &m).map(|_| ())
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
    let Ok(slot) = vm.check_endpoint(proc) else {
        return Err(TouchError::BadEndpoint);
    };
    match vm.mmu_translate_slot(slot, va, access) {
        Ok(_) => Ok(Touch::Hit),
        Err(code) => {
            let mut m = Message::new(proc, VM_PAGEFAULT);
            m.set_m1_p1(va.0).set_m1_i2(code.0 as i32);
            vm.handle_mut(&mut m, true);
            // Handling a fault never ends or replaces a process: the slot still holds it.
            match vm.mmu_translate_slot(slot, va, access) {
                Ok(_) => Ok(Touch::Faulted),
                Err(code) => Err(TouchError::Signalled(code)),
            }
        }
    }
}

const USER_READ: Access = Access { write: false, user: true };
const USER_WRITE: Access = Access { write: true, user: true };

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
    let mut done = 0usize;
    while done < buf.len() {
        let at = VirtAddr(va.0.wrapping_add(done as u64));
        touch(vm, proc, at, USER_READ)?;
        let m = vm.mmu_translate(proc, at, USER_READ).map_err(TouchError::Signalled)?;
        if !vm.arena().contains(m.frame) {
            return Err(TouchError::NotMemory(at));
        }
        let off = at.page_offset() as usize;
        let n = (PAGE_SIZE as usize - off).min(buf.len() - done);
        buf[done..done + n].copy_from_slice(&vm.arena().frame(m.frame)[off..off + n]);
        done += n;
    }
    Ok(())
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
    let mut done = 0usize;
    while done < data.len() {
        let at = VirtAddr(va.0.wrapping_add(done as u64));
        touch(vm, proc, at, USER_WRITE)?;
        let m = vm.mmu_translate(proc, at, USER_WRITE).map_err(TouchError::Signalled)?;
        if !vm.arena().contains(m.frame) {
            return Err(TouchError::NotMemory(at));
        }
        let off = at.page_offset() as usize;
        let n = (PAGE_SIZE as usize - off).min(data.len() - done);
        vm.arena_mut().frame_mut(m.frame)[off..off + n].copy_from_slice(&data[done..done + n]);
        done += n;
    }
    Ok(())
}
