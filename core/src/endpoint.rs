//! Endpoints: MINIX's `generation * GENERATION_SIZE + slot` encoding.
//!
//! Replaces `include/minix/endpoint.h` (`_ENDPOINT`, `_ENDPOINT_G`, `_ENDPOINT_P`) and the
//! generation bump of `kernel/system/do_fork.c`. The formulas are MINIX's; the generation
//! size is widened from 36,558 to [`GENERATION_SIZE`] = 2^17 = 131,072 so that a server
//! with up to 65,536 slots (plus the 1,023 kernel tasks below slot 0: 66,560 endpoints at
//! least) still has one endpoint space per generation, and so that a process slot is the
//! low 17 bits of its endpoint: the message loop finds the caller's slot with one AND
//! instead of a remainder by 66,560 (a multiply, a shift, a multiply and subtractions).
//! The price is the number of generations before a slot's endpoints repeat: 16,382 instead
//! of the 32,262 a size of 66,560 would give (MINIX: 58,743); the wrap rule is MINIX's
//! (back to 1, never 0). The magic endpoints [`ANY`], [`NONE`] and [`SELF`] keep their
//! values: they decode to generation 0, which only the boot processes (slots 0..=10) ever
//! carry, so they never equal a live endpoint. Validation (`vm_isokendpt`) is arithmetic
//! plus one array read, in [`crate::slots`].

use core::fmt;

/// Number of kernel task slots below slot 0 (`MAX_NR_TASKS`).
pub const MAX_NR_TASKS: i32 = 1023;
/// The most process slots a server may have.
pub const MAX_SLOTS: usize = 65_536;
/// Endpoints per generation (`_ENDPOINT_GENERATION_SIZE`, widened to a power of two; see
/// the module docs).
pub const GENERATION_SIZE: i32 = 1 << 17;
const _: () = assert!(GENERATION_SIZE as i64 > MAX_NR_TASKS as i64 + MAX_SLOTS as i64);
const _: () = assert!(GENERATION_SIZE.count_ones() == 1);
/// The first generation that is never used (`_ENDPOINT_MAX_GENERATION`): the generation
/// after `MAX_GENERATION - 1` is 1.
pub const MAX_GENERATION: i32 = i32::MAX / GENERATION_SIZE - 1;

/// A process endpoint: a slot number and the generation of that slot's current tenant.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(transparent)]
pub struct Endpoint(pub i32);

/// "Any sender" (`ANY`, 0x7ace).
pub const ANY: Endpoint = Endpoint(0x7ace);
/// "No process" (`NONE`, 0x6ace).
pub const NONE: Endpoint = Endpoint(0x6ace);
/// "The caller itself" (`SELF`, 0x8ace).
pub const SELF: Endpoint = Endpoint(0x8ace);
/// The kernel (`KERNEL`/`HARDWARE`, task -1): the source of page faults.
pub const KERNEL: Endpoint = Endpoint(-1);
/// The system task (`SYSTEM`, -2).
pub const SYSTEM: Endpoint = Endpoint(-2);

/// Process manager.
pub const PM_PROC_NR: Endpoint = Endpoint(0);
/// Virtual file system.
pub const VFS_PROC_NR: Endpoint = Endpoint(1);
/// Reincarnation server.
pub const RS_PROC_NR: Endpoint = Endpoint(2);
/// Memory driver.
pub const MEM_PROC_NR: Endpoint = Endpoint(3);
/// Log driver.
pub const LOG_PROC_NR: Endpoint = Endpoint(4);
/// Terminal driver.
pub const TTY_PROC_NR: Endpoint = Endpoint(5);
/// Data store.
pub const DS_PROC_NR: Endpoint = Endpoint(6);
/// Root file system server.
pub const MFS_PROC_NR: Endpoint = Endpoint(7);
/// The VM server itself.
pub const VM_PROC_NR: Endpoint = Endpoint(8);
/// Pipe file system.
pub const PFS_PROC_NR: Endpoint = Endpoint(9);
/// The first user process.
pub const INIT_PROC_NR: Endpoint = Endpoint(10);
/// Number of boot processes with a slot (`LAST_SPECIAL_PROC_NR + 1`).
pub const NR_BOOT_PROCS: usize = 11;

impl Endpoint {
    /// `_ENDPOINT(generation, slot)`.
    #[inline]
    pub const fn new(generation: i32, slot: i32) -> Endpoint {
        Endpoint(generation * GENERATION_SIZE + slot)
    }

    /// `_ENDPOINT_P(e)`: the slot (negative for kernel tasks).
    #[inline]
    pub const fn slot(self) -> i32 {
        (self.0.wrapping_add(MAX_NR_TASKS)).rem_euclid(GENERATION_SIZE) - MAX_NR_TASKS
    }

    /// `_ENDPOINT_G(e)`: the generation.
    #[inline]
    pub const fn generation(self) -> i32 {
        (self.0.wrapping_add(MAX_NR_TASKS)).div_euclid(GENERATION_SIZE)
    }

    /// The slot as an index if it is a process slot below `slots`, else `None`
    /// (`vm_isokendpt`'s EINVAL case).
    #[inline]
    pub const fn slot_index(self, slots: usize) -> Option<usize> {
        let w = self.0.wrapping_add(MAX_NR_TASKS);
        // Every endpoint a caller can hold has `w >= 0`: an unsigned remainder by the
        // constant (a multiply and a shift) instead of the signed Euclidean one.
        let s = if w >= 0 { (w as u32 % GENERATION_SIZE as u32) as i32 - MAX_NR_TASKS } else { self.slot() };
        if s >= 0 && (s as usize) < slots {
            Some(s as usize)
        } else {
            None
        }
    }

    /// The low bits of the endpoint: `_ENDPOINT_P(e)` for every endpoint of a process slot
    /// (`e >= 0`, slot `>= 0`); for a kernel task's endpoint a value of at least
    /// `GENERATION_SIZE - MAX_NR_TASKS` (above every slot index), and for other values some
    /// number that means nothing until the slot's endpoint is compared with `self`.
    #[inline(always)]
    pub const fn slot_bits(self) -> usize {
        (self.0 as u32 & (GENERATION_SIZE as u32 - 1)) as usize
    }
}

/// The generation a slot's next tenant gets (`do_fork`: wraps to 1, never 0 again).
#[inline]
pub const fn next_generation(generation: i32) -> i32 {
    let g = generation + 1;
    if g >= MAX_GENERATION {
        1
    } else {
        g
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ANY => write!(f, "ANY"),
            NONE => write!(f, "NONE"),
            SELF => write!(f, "SELF"),
            e => write!(f, "Endpoint({}: slot {} gen {})", e.0, e.slot(), e.generation()),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        for g in [0, 1, 2, 1000, MAX_GENERATION - 1] {
            for s in [-4, -1, 0, 10, 255, 65_535] {
                let e = Endpoint::new(g, s);
                assert_eq!((e.generation(), e.slot()), (g, s), "{e:?}");
            }
        }
        assert_eq!(Endpoint::new(0, 10), INIT_PROC_NR);
        assert_eq!(KERNEL.slot(), -1);
        assert_eq!(KERNEL.generation(), 0);
    }

    #[test]
    fn magic_endpoints_are_generation_zero_and_not_boot_slots() {
        for m in [ANY, NONE, SELF] {
            assert_eq!(m.generation(), 0);
            assert!(m.slot() as usize >= NR_BOOT_PROCS);
        }
    }

    #[test]
    fn generation_wraps_to_one() {
        assert_eq!(next_generation(0), 1);
        assert_eq!(next_generation(MAX_GENERATION - 1), 1);
        assert_eq!(next_generation(5), 6);
        assert!(Endpoint::new(MAX_GENERATION - 1, 65_535).0 > 0);
    }

    #[test]
    fn slot_index_checks_range() {
        assert_eq!(Endpoint::new(3, 7).slot_index(256), Some(7));
        assert_eq!(Endpoint::new(3, 256).slot_index(256), None);
        assert_eq!(KERNEL.slot_index(256), None);
        for (g, s) in [(0, 0), (0, 10), (1, 0), (7, 65_535), (MAX_GENERATION - 1, 300)] {
            assert_eq!(Endpoint::new(g, s).slot_bits(), s as usize);
        }
        for (g, s) in [(1, -1), (5, -MAX_NR_TASKS)] {
            assert!(Endpoint::new(g, s).slot_bits() >= MAX_SLOTS);
        }
        assert_eq!(ANY.slot_bits(), ANY.slot() as usize);
        for e in [i32::MIN, i32::MAX, -1024, 0x7ace] {
            let s = Endpoint(e).slot();
            assert!((-MAX_NR_TASKS..GENERATION_SIZE - MAX_NR_TASKS).contains(&s));
            assert_eq!(Endpoint(e).slot_index(256).is_some(), (0..256).contains(&s));
        }
    }
}
