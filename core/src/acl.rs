//! Call masks: which VM calls a process may make, interned in a fixed-size table.
//!
//! Replaces the per-slot `vm_call_mask` bitmap of the 2010 server (`vmproc.h`,
//! `vm_acl_ok` in `main.c`, `GET_BIT` of `include/minix/bitmap.h`) with MINIX 3.4's
//! `acl.c` scheme: every distinct mask is stored once in an [`AclTable`] with a reference
//! count, and a slot holds only its small [`AclId`]. The table has a fixed capacity
//! (`NR_SYS_PROCS`-like); interning one more distinct mask when it is full is an error
//! (`ENOSPC` at the message boundary), never a panic.
//!
//! Bit `c` of a mask allows call `VM_RQ_BASE + c`. On the wire (VM_RS_SET_PRIV) a mask is
//! MINIX's `bitchunk_t vm_call_mask[3]`: three little-endian u16 chunks, 6 bytes.

use crate::message::{
    NR_VM_CALLS, VM_ADDDMA, VM_BRK, VM_DELDMA, VM_DISCARD, VM_EXEC_NEWMEM, VM_EXIT, VM_FORK, VM_GETDMA,
    VM_MAP_PHYS, VM_MMAP, VM_MPROTECT, VM_MREMAP, VM_MUNMAP, VM_MUNMAP_TEXT, VM_NOTIFY_SIG, VM_PUSH_SIG,
    VM_RQ_BASE, VM_RS_SET_PRIV, VM_RS_UPDATE, VM_UNMAP_PHYS, VM_WILLEXIT,
};

/// Bytes of a mask on the wire (`sizeof(vm_call_mask)`: 3 chunks of u16).
pub const CALL_MASK_BYTES: usize = 6;
/// Default capacity of the interning table (MINIX's `NR_SYS_PROCS`).
pub const ACL_CAPACITY: usize = 32;

bitflags::bitflags! {
    /// A set of allowed calls: bit `c` allows `VM_RQ_BASE + c`.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
    pub struct CallMask: u64 {
        /// Any bit may be set (a bit per call index; the named masks are below).
        const _ = !0;
    }
}

impl CallMask {
    /// No call allowed.
    pub const EMPTY: CallMask = CallMask::empty();
    /// Every call number in the table allowed.
    pub const ALL: CallMask = CallMask::from_bits_retain((1 << NR_VM_CALLS) - 1);
    /// `VM_BASIC_CALLS` (mmap, munmap, munmap_text, map_phys, unmap_phys) plus the
    /// extensions every libc needs (mprotect, mremap, discard).
    pub const BASIC: CallMask = CallMask::of(&[
        VM_MMAP,
        VM_MUNMAP,
        VM_MUNMAP_TEXT,
        VM_MAP_PHYS,
        VM_UNMAP_PHYS,
        VM_MPROTECT,
        VM_MREMAP,
        VM_DISCARD,
    ]);
    /// What RS gives PM (`servers/rs/table.c`).
    pub const PM: CallMask = CallMask::BASIC.union(CallMask::of(&[
        VM_EXIT,
        VM_FORK,
        VM_BRK,
        VM_EXEC_NEWMEM,
        VM_PUSH_SIG,
        VM_WILLEXIT,
        VM_ADDDMA,
        VM_DELDMA,
        VM_GETDMA,
        VM_NOTIFY_SIG,
    ]));
    /// What RS gives itself.
    pub const RS: CallMask = CallMask::BASIC.union(CallMask::of(&[VM_RS_SET_PRIV, VM_RS_UPDATE]));

    /// The mask allowing exactly `calls` (call numbers; out-of-range ones are ignored).
    pub const fn of(calls: &[i32]) -> CallMask {
        let mut bits = 0u64;
        let mut i = 0;
        while i < calls.len() {
            let c = calls[i] - VM_RQ_BASE;
            if c >= 0 && (c as usize) < NR_VM_CALLS {
                bits |= 1 << c;
            }
            i += 1;
        }
        CallMask::from_bits_retain(bits)
    }

    /// `GET_BIT(mask, index)`: whether call index `index` (`mtype - VM_RQ_BASE`) is allowed.
    #[inline]
    pub const fn allows(self, index: usize) -> bool {
        index < 64 && self.bits() & (1 << index) != 0
    }

    /// Allows call index `index` too.
    #[inline]
    pub fn allow(&mut self, index: usize) {
        if index < NR_VM_CALLS {
            *self |= CallMask::from_bits_retain(1 << index);
        }
    }

    /// The wire form: three little-endian u16 chunks.
    pub fn to_wire(self) -> [u8; CALL_MASK_BYTES] {
        let b = self.bits().to_le_bytes();
        [b[0], b[1], b[2], b[3], b[4], b[5]]
    }

    /// A mask from its wire form; bits beyond the call table are dropped.
    pub fn from_wire(bytes: [u8; CALL_MASK_BYTES]) -> CallMask {
        let mut b = [0u8; 8];
        b[..CALL_MASK_BYTES].copy_from_slice(&bytes);
        CallMask::from_bits_retain(u64::from_le_bytes(b) & CallMask::ALL.bits())
    }
}

/// The index of an interned mask in an [`AclTable`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct AclId(pub u16);

/// Why a mask could not be interned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AclFull;

/// Interned call masks with reference counts, fixed capacity.
#[derive(Clone, Debug)]
pub struct AclTable {
    masks: Vec<CallMask>,
    refs: Vec<u32>,
    capacity: usize,
}

impl AclTable {
    /// A table holding at most `capacity` distinct masks (at least 1). Entry 0 is the empty
    /// mask and is never freed.
    pub fn new(capacity: usize) -> AclTable {
        let capacity = capacity.max(1);
        let mut masks = Vec::with_capacity(capacity);
        masks.push(CallMask::EMPTY);
        AclTable { masks, refs: vec![1], capacity }
    }

    /// The mask of `id`.
    #[inline]
    pub fn mask(&self, id: AclId) -> CallMask {
        self.masks.get(id.0 as usize).copied().unwrap_or(CallMask::EMPTY)
    }

    /// Whether `id` allows call index `index`: one array read and a bit test.
    #[inline]
    pub fn allows(&self, id: AclId, index: usize) -> bool {
        self.mask(id).allows(index)
    }

    /// Interns `mask` and takes a reference to it.
    ///
    /// # Errors
    /// [`AclFull`] when the mask is new and every entry is referenced.
    pub fn intern(&mut self, mask: CallMask) -> Result<AclId, AclFull> {
        if let Some(i) = self.masks.iter().position(|&m| m == mask) {
            self.refs[i] += 1;
            return Ok(AclId(i as u16));
        }
        if let Some(i) = self.refs.iter().position(|&r| r == 0) {
            self.masks[i] = mask;
            self.refs[i] = 1;
            return Ok(AclId(i as u16));
        }
        if self.masks.len() >= self.capacity {
            return Err(AclFull);
        }
        self.masks.push(mask);
        self.refs.push(1);
        Ok(AclId((self.masks.len() - 1) as u16))
    }

    /// Takes one more reference to an interned mask (a forked child inherits its parent's).
    #[inline]
    pub fn share(&mut self, id: AclId) {
        if let Some(r) = self.refs.get_mut(id.0 as usize) {
            *r += 1;
        }
    }

    /// Drops a reference; the entry becomes reusable at zero (entry 0 never does).
    #[inline]
    pub fn release(&mut self, id: AclId) {
        if id.0 == 0 {
            return;
        }
        if let Some(r) = self.refs.get_mut(id.0 as usize) {
            *r = r.saturating_sub(1);
        }
    }

    /// The reference count of `id`.
    pub fn refs(&self, id: AclId) -> u32 {
        self.refs.get(id.0 as usize).copied().unwrap_or(0)
    }

    /// The number of entries in use (referenced), entry 0 included.
    pub fn in_use(&self) -> usize {
        self.refs.iter().filter(|&&r| r > 0).count()
    }

    /// The fixed capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{call_index, VM_INFO};

    #[test]
    fn masks_match_rs_table() {
        let mmap = call_index(VM_MMAP).unwrap();
        let fork = call_index(VM_FORK).unwrap();
        assert!(CallMask::BASIC.allows(mmap) && !CallMask::BASIC.allows(fork));
        assert!(CallMask::PM.allows(fork) && CallMask::PM.allows(mmap));
        assert!(CallMask::RS.allows(call_index(VM_RS_UPDATE).unwrap()));
        assert!(!CallMask::PM.allows(call_index(VM_RS_SET_PRIV).unwrap()));
        assert!(!CallMask::PM.allows(call_index(VM_INFO).unwrap()));
        assert!(!CallMask::ALL.allows(NR_VM_CALLS) && !CallMask::ALL.allows(1000));
    }

    #[test]
    fn wire_form_round_trips_and_drops_excess_bits() {
        assert_eq!(CallMask::from_wire(CallMask::PM.to_wire()), CallMask::PM);
        assert_eq!(CallMask::from_wire([0xff; 6]), CallMask::ALL);
    }

    #[test]
    fn interning_shares_and_reuses_entries() {
        let mut t = AclTable::new(3);
        let a = t.intern(CallMask::BASIC).unwrap();
        let b = t.intern(CallMask::BASIC).unwrap();
        assert_eq!(a, b);
        assert_eq!(t.refs(a), 2);
        let c = t.intern(CallMask::PM).unwrap();
        assert_ne!(a, c);
        assert_eq!(t.intern(CallMask::RS), Err(AclFull));
        t.release(c);
        let d = t.intern(CallMask::RS).unwrap();
        assert_eq!(d, c);
        assert_eq!(t.mask(d), CallMask::RS);
        assert!(t.allows(a, call_index(VM_MMAP).unwrap()));
        assert_eq!(t.mask(AclId(99)), CallMask::EMPTY);
        assert_eq!(t.in_use(), 3);
    }
}
