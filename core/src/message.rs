//! The 64-byte message every call travels in, and the VM call numbers.
//!
//! Replaces MINIX's `message` (`include/minix/ipc.h`: `m_source`, `m_type`, and the
//! `mess_1`/`mess_2`/`mess_5` union members) and the `VM_*` numbers of
//! `include/minix/com.h`. A [`Message`] is `#[repr(C)]`, `Copy` and exactly 64 bytes:
//! `source` (4), `mtype` (4) and a 56-byte payload read through typed accessors.
//!
//! Payload layouts (byte offsets; little endian). MINIX's `char *` and `long` fields are
//! 64 bits wide here so that one message carries an x86-64 address; where MINIX put an
//! address into an `int` (`VPF_ADDR`, `VMMP_LEN`), the server reads the 64-bit field of the
//! same layout instead (documented per call in [`crate::calls`]).
//!
//! | layout | fields |
//! |---|---|
//! | m1 | `i1`@0 `i2`@4 `i3`@8 (i32), `p1`@16 `p2`@24 `p3`@32 (u64) |
//! | m2 | `i1`@0 `i2`@4 `i3`@8 (i32), `l1`@16 `l2`@24 (i64), `p1`@32 (u64), `s1`@40 (i16) |
//! | m5 | `s1`@0 `s2`@2 (i16), `i1`@4 `i2`@8 (i32), `l1`@16 `l2`@24 `l3`@32 (i64) |
//!
//! Any 64 bytes are a valid message value ([`Message::from_bytes`]).

use crate::addr::VirtAddr;
use crate::endpoint::Endpoint;

/// First VM call number.
pub const VM_RQ_BASE: i32 = 0xC00;
/// PM: a process has exited; free its memory (`do_exit`).
pub const VM_EXIT: i32 = VM_RQ_BASE;
/// PM: fork a process into a given slot (`do_fork`).
pub const VM_FORK: i32 = VM_RQ_BASE + 1;
/// PM: set a process's break (`do_brk`).
pub const VM_BRK: i32 = VM_RQ_BASE + 2;
/// PM: replace a process's memory image for exec (`do_exec_newmem`).
pub const VM_EXEC_NEWMEM: i32 = VM_RQ_BASE + 3;
/// PM: room for a signal frame on a process's stack (`do_push_sig`).
pub const VM_PUSH_SIG: i32 = VM_RQ_BASE + 4;
/// PM: a process is about to exit (`do_willexit`).
pub const VM_WILLEXIT: i32 = VM_RQ_BASE + 5;
/// Anyone: map anonymous memory (`do_mmap`).
pub const VM_MMAP: i32 = VM_RQ_BASE + 10;
/// Defined by MINIX but not registered (answers ENOSYS).
pub const VM_UMAP: i32 = VM_RQ_BASE + 11;
/// PM: record a DMA buffer (`do_adddma`).
pub const VM_ADDDMA: i32 = VM_RQ_BASE + 12;
/// PM: forget a DMA buffer (`do_deldma`).
pub const VM_DELDMA: i32 = VM_RQ_BASE + 13;
/// PM: a DMA buffer to release (`do_getdma`).
pub const VM_GETDMA: i32 = VM_RQ_BASE + 14;
/// Drivers: map physical (device) memory (`do_map_phys`).
pub const VM_MAP_PHYS: i32 = VM_RQ_BASE + 15;
/// Drivers: unmap physical memory (`do_unmap_phys`).
pub const VM_UNMAP_PHYS: i32 = VM_RQ_BASE + 16;
/// Anyone: unmap memory (`do_munmap`).
pub const VM_MUNMAP: i32 = VM_RQ_BASE + 17;
/// Anyone: unmap text memory (`do_munmap` with the text base; flat here).
pub const VM_MUNMAP_TEXT: i32 = VM_RQ_BASE + 19;
/// IPC: map a shared region of one process into another (`do_remap`).
pub const VM_REMAP: i32 = VM_RQ_BASE + 33;
/// IPC: unmap a shared region (`do_shared_unmap`).
pub const VM_SHM_UNMAP: i32 = VM_RQ_BASE + 34;
/// IPC: physical address of a shared region (`do_get_phys`).
pub const VM_GETPHYS: i32 = VM_RQ_BASE + 35;
/// IPC: reference count of a shared region (`do_get_refcount`).
pub const VM_GETREF: i32 = VM_RQ_BASE + 36;
/// RS: set a process's VM call mask (`do_rs_set_priv`).
pub const VM_RS_SET_PRIV: i32 = VM_RQ_BASE + 37;
/// IPC: which processes exited (`do_query_exit`).
pub const VM_QUERY_EXIT: i32 = VM_RQ_BASE + 38;
/// PM: queue an exit notice for IPC (`do_notify_sig`).
pub const VM_NOTIFY_SIG: i32 = VM_RQ_BASE + 39;
/// IS: statistics, usage and region listings (`do_info`).
pub const VM_INFO: i32 = VM_RQ_BASE + 40;
/// RS: swap two processes' memory for live update (`do_rs_update`).
pub const VM_RS_UPDATE: i32 = VM_RQ_BASE + 41;
/// Extension (after MINIX's last call): change protection (`mprotect`).
pub const VM_MPROTECT: i32 = VM_RQ_BASE + 42;
/// Extension: grow, shrink or move a mapping (`mremap`).
pub const VM_MREMAP: i32 = VM_RQ_BASE + 43;
/// Extension: drop pages, refault as zero (`madvise(MADV_DONTNEED)`).
pub const VM_DISCARD: i32 = VM_RQ_BASE + 44;
/// Number of call numbers from [`VM_RQ_BASE`] (MINIX's 42 plus 3 extensions).
pub const NR_VM_CALLS: usize = 45;
/// Kernel: a page fault of the message's source (special: no table entry, no reply).
pub const VM_PAGEFAULT: i32 = VM_RQ_BASE + 0xff;
/// Bit that marks a notification (`NOTIFY_MESSAGE`); notifications are ignored.
pub const NOTIFY_MESSAGE: i32 = 0x1000;

/// `CALLNUMBER(c)`: the table index of a call number, if it is in range.
#[inline]
pub const fn call_index(mtype: i32) -> Option<usize> {
    let c = mtype.wrapping_sub(VM_RQ_BASE);
    if c >= 0 && (c as usize) < NR_VM_CALLS {
        Some(c as usize)
    } else {
        None
    }
}

/// A MINIX message: source endpoint, type (call number or result), 56-byte payload.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(C)]
pub struct Message {
    /// The sender, as filled in by the kernel.
    pub source: Endpoint,
    /// The call number in a request; the result (0 or a negative errno) in a reply.
    pub mtype: i32,
    /// The call's fields, read through the accessors.
    pub payload: [u8; 56],
}

const _: () = assert!(core::mem::size_of::<Message>() == 64);

macro_rules! field {
    ($get:ident, $set:ident, $ty:ty, $off:expr, $doc:expr) => {
        #[doc = concat!("Field `", $doc, "`.")]
        #[inline]
        pub fn $get(&self) -> $ty {
            const N: usize = core::mem::size_of::<$ty>();
            let mut b = [0u8; N];
            b.copy_from_slice(&self.payload[$off..$off + N]);
            <$ty>::from_le_bytes(b)
        }
        #[doc = concat!("Sets field `", $doc, "`.")]
        #[inline]
        pub fn $set(&mut self, v: $ty) -> &mut Self {
            const N: usize = core::mem::size_of::<$ty>();
            self.payload[$off..$off + N].copy_from_slice(&v.to_le_bytes());
            self
        }
    };
}

impl Message {
    /// A message of type `mtype` from `source` with an all-zero payload.
    #[inline]
    pub const fn new(source: Endpoint, mtype: i32) -> Message {
        Message { source, mtype, payload: [0; 56] }
    }

    /// The message these 64 bytes encode (any bytes are valid).
    pub fn from_bytes(bytes: &[u8; 64]) -> Message {
        let mut payload = [0u8; 56];
        payload.copy_from_slice(&bytes[8..]);
        Message {
            source: Endpoint(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
            mtype: i32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            payload,
        }
    }

    /// The 64 bytes of this message.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[..4].copy_from_slice(&self.source.0.to_le_bytes());
        b[4..8].copy_from_slice(&self.mtype.to_le_bytes());
        b[8..].copy_from_slice(&self.payload);
        b
    }

    /// The result of a reply: `Ok(())` for 0 and positive values, else the error code.
    pub fn result(&self) -> Result<(), i32> {
        if self.mtype >= 0 {
            Ok(())
        } else {
            Err(self.mtype)
        }
    }

    field!(m1_i1, set_m1_i1, i32, 0, "m1_i1");
    field!(m1_i2, set_m1_i2, i32, 4, "m1_i2");
    field!(m1_i3, set_m1_i3, i32, 8, "m1_i3");
    field!(m1_p1, set_m1_p1, u64, 16, "m1_p1");
    field!(m1_p2, set_m1_p2, u64, 24, "m1_p2");
    field!(m1_p3, set_m1_p3, u64, 32, "m1_p3");

    field!(m2_i1, set_m2_i1, i32, 0, "m2_i1");
    field!(m2_i2, set_m2_i2, i32, 4, "m2_i2");
    field!(m2_i3, set_m2_i3, i32, 8, "m2_i3");
    field!(m2_l1, set_m2_l1, i64, 16, "m2_l1");
    field!(m2_l2, set_m2_l2, i64, 24, "m2_l2");
    field!(m2_p1, set_m2_p1, u64, 32, "m2_p1");
    field!(m2_s1, set_m2_s1, i16, 40, "m2_s1");

    field!(m5_s1, set_m5_s1, i16, 0, "m5_s1");
    field!(m5_s2, set_m5_s2, i16, 2, "m5_s2");
    field!(m5_i1, set_m5_i1, i32, 4, "m5_i1");
    field!(m5_i2, set_m5_i2, i32, 8, "m5_i2");
    field!(m5_l1, set_m5_l1, i64, 16, "m5_l1");
    field!(m5_l2, set_m5_l2, i64, 24, "m5_l2");
    field!(m5_l3, set_m5_l3, i64, 32, "m5_l3");
}

/// A value carried in one message field: how a typed request field is read from and
/// written to the raw field (a free conversion: a newtype or a sign reinterpretation).
pub trait FieldValue<Raw>: Sized {
    /// The value a raw field holds.
    fn from_raw(raw: Raw) -> Self;
    /// The raw field for this value.
    fn to_raw(self) -> Raw;
}

macro_rules! same_field {
    ($($t:ty),*) => {$(
        impl FieldValue<$t> for $t {
            #[inline(always)]
            fn from_raw(raw: $t) -> $t {
                raw
            }
            #[inline(always)]
            fn to_raw(self) -> $t {
                self
            }
        }
    )*};
}
same_field!(i16, i32, i64, u64);

impl FieldValue<i32> for Endpoint {
    #[inline(always)]
    fn from_raw(raw: i32) -> Endpoint {
        Endpoint(raw)
    }
    #[inline(always)]
    fn to_raw(self) -> i32 {
        self.0
    }
}

impl FieldValue<i64> for u64 {
    #[inline(always)]
    fn from_raw(raw: i64) -> u64 {
        raw as u64
    }
    #[inline(always)]
    fn to_raw(self) -> i64 {
        self as i64
    }
}

impl FieldValue<u64> for VirtAddr {
    #[inline(always)]
    fn from_raw(raw: u64) -> VirtAddr {
        VirtAddr(raw)
    }
    #[inline(always)]
    fn to_raw(self) -> u64 {
        self.0
    }
}

impl FieldValue<i64> for VirtAddr {
    #[inline(always)]
    fn from_raw(raw: i64) -> VirtAddr {
        VirtAddr(raw as u64)
    }
    #[inline(always)]
    fn to_raw(self) -> i64 {
        self.0 as i64
    }
}

/// The fields of one direction of a call (a request, or the fields a reply adds): the
/// message-field contract of the call, said once. Handlers decode their request (and
/// encode their reply) with it, the clients ([`crate::client`]) encode requests (and
/// decode replies) with it.
pub trait Fields: Sized {
    /// The call number.
    const CALL: i32;
    /// The fields of `m`.
    fn decode(m: &Message) -> Self;
    /// Writes the fields into `m`.
    fn encode(&self, m: &mut Message);
}

/// Declares a call's request or reply fields: a struct with one typed member per message
/// field and its [`Fields`] impl (decode and encode: plain field reads and writes,
/// inlined into the handler).
macro_rules! call_fields {
    (
        $(#[$meta:meta])*
        pub struct $name:ident for $call:ident {
            $( $(#[$fmeta:meta])* $field:ident: $ty:ty = $get:ident / $set:ident, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::message::Fields for $name {
            const CALL: i32 = $call;
            #[inline(always)]
            fn decode(_m: &$crate::message::Message) -> Self {
                $name { $( $field: $crate::message::FieldValue::from_raw(_m.$get()), )* }
            }
            #[inline(always)]
            fn encode(&self, _m: &mut $crate::message::Message) {
                $( _m.$set($crate::message::FieldValue::to_raw(self.$field)); )*
            }
        }
    };
}
pub(crate) use call_fields;

/// The name of a call number (`"VM_MMAP"`), or `None` for an unknown number.
pub fn call_name(mtype: i32) -> Option<&'static str> {
    Some(match mtype {
        VM_EXIT => "VM_EXIT",
        VM_FORK => "VM_FORK",
        VM_BRK => "VM_BRK",
        VM_EXEC_NEWMEM => "VM_EXEC_NEWMEM",
        VM_PUSH_SIG => "VM_PUSH_SIG",
        VM_WILLEXIT => "VM_WILLEXIT",
        VM_MMAP => "VM_MMAP",
        VM_UMAP => "VM_UMAP",
        VM_ADDDMA => "VM_ADDDMA",
        VM_DELDMA => "VM_DELDMA",
        VM_GETDMA => "VM_GETDMA",
        VM_MAP_PHYS => "VM_MAP_PHYS",
        VM_UNMAP_PHYS => "VM_UNMAP_PHYS",
        VM_MUNMAP => "VM_MUNMAP",
        VM_MUNMAP_TEXT => "VM_MUNMAP_TEXT",
        VM_REMAP => "VM_REMAP",
        VM_SHM_UNMAP => "VM_SHM_UNMAP",
        VM_GETPHYS => "VM_GETPHYS",
        VM_GETREF => "VM_GETREF",
        VM_RS_SET_PRIV => "VM_RS_SET_PRIV",
        VM_QUERY_EXIT => "VM_QUERY_EXIT",
        VM_NOTIFY_SIG => "VM_NOTIFY_SIG",
        VM_INFO => "VM_INFO",
        VM_RS_UPDATE => "VM_RS_UPDATE",
        VM_MPROTECT => "VM_MPROTECT",
        VM_MREMAP => "VM_MREMAP",
        VM_DISCARD => "VM_DISCARD",
        VM_PAGEFAULT => "VM_PAGEFAULT",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip() {
        let mut raw = [0u8; 64];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = (i * 37 + 11) as u8;
        }
        let m = Message::from_bytes(&raw);
        assert_eq!(m.to_bytes(), raw);
    }

    #[test]
    fn fields_do_not_overlap_within_a_layout() {
        let mut m = Message::new(Endpoint(7), VM_MMAP);
        m.set_m1_i1(-1).set_m1_i2(2).set_m1_i3(3).set_m1_p1(u64::MAX).set_m1_p2(5).set_m1_p3(6);
        assert_eq!((m.m1_i1(), m.m1_i2(), m.m1_i3()), (-1, 2, 3));
        assert_eq!((m.m1_p1(), m.m1_p2(), m.m1_p3()), (u64::MAX, 5, 6));
        let mut m = Message::new(Endpoint(7), VM_INFO);
        m.set_m2_i1(1).set_m2_i2(2).set_m2_i3(3).set_m2_l1(-4).set_m2_l2(5).set_m2_p1(6).set_m2_s1(-7);
        assert_eq!((m.m2_i1(), m.m2_i2(), m.m2_i3(), m.m2_l1(), m.m2_l2()), (1, 2, 3, -4, 5));
        assert_eq!((m.m2_p1(), m.m2_s1()), (6, -7));
        let mut m = Message::new(Endpoint(7), VM_MMAP);
        m.set_m5_s1(1).set_m5_s2(-2).set_m5_i1(3).set_m5_i2(4).set_m5_l1(5).set_m5_l2(6).set_m5_l3(-7);
        assert_eq!((m.m5_s1(), m.m5_s2(), m.m5_i1(), m.m5_i2()), (1, -2, 3, 4));
        assert_eq!((m.m5_l1(), m.m5_l2(), m.m5_l3()), (5, 6, -7));
        assert_eq!(m.source, Endpoint(7));
    }

    #[test]
    fn call_numbers_are_minix_numbers() {
        assert_eq!(VM_MMAP, 0xC0A);
        assert_eq!(VM_RS_UPDATE, 0xC29);
        assert_eq!((VM_MPROTECT, VM_MREMAP, VM_DISCARD), (0xC2A, 0xC2B, 0xC2C));
        assert_eq!(VM_PAGEFAULT, 0xCFF);
        assert_eq!(call_index(VM_EXIT), Some(0));
        assert_eq!(call_index(VM_DISCARD), Some(NR_VM_CALLS - 1));
        assert_eq!(call_index(VM_DISCARD + 1), None);
        assert_eq!(call_index(VM_PAGEFAULT), None);
        assert_eq!(call_index(i32::MIN), None);
        assert_eq!(call_name(VM_FORK), Some("VM_FORK"));
        assert_eq!(call_name(0xC06), None);
    }
}
