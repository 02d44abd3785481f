//! The server's message boundary: sequences of raw 64-byte messages from any endpoint
//! (live, stale, boot servers, kernel tasks, magic, garbage; as the kernel or not),
//! interleaved with client calls (fork, exit, exec, mmap), soft-MMU touches, idle-time
//! pool refills (pre-zeroed policy), and writes and
//! reads of per-process secrets. After every step the server must have answered without
//! panicking and its invariants must hold; and no process may ever read a secret it could
//! not know: its own writes, and what its parent knew when it was forked (live update
//! swaps what two processes know). A secret from an exited process showing up in a new
//! one (a frame reused without zeroing), or a write leaking through a shared copy-on-write
//! frame, is a crash. The first input byte picks the server (every allocator × paging
//! format × fork policy × zeroing policy); `VMSTORM_FUZZ_PAIR` pins the allocator × format
//! pair so a run can be spent on one of them.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use libfuzzer_sys::fuzz_target;
use vmstorm_core::client::{self, ExecImage, MapFlags, MapProt, MmapArgs};
use vmstorm_core::endpoint::{Endpoint, ANY, INIT_PROC_NR, KERNEL, NR_BOOT_PROCS, RS_PROC_NR, SELF, SYSTEM};
use vmstorm_core::message::{
    Message, NOTIFY_MESSAGE, NR_VM_CALLS, VM_FORK, VM_PAGEFAULT, VM_RQ_BASE, VM_RS_UPDATE,
};
use vmstorm_core::Errno;
use vmstorm_core::{
    Access, ArenaConfig, Bitset, Buddy, FolioSize, ForkPolicy, FrameAllocator, HoleList, HugePolicy,
    PagingFormat, SanityLevel, VirtAddr, Vm, VmConfig, ZeroPolicy, I386, PAGE_SIZE, X86_64,
};

/// Totals over a fuzzing process, printed after each input when `VMSTORM_FUZZ_STATS` is
/// set (for replaying a corpus with `-runs=0`): messages the server handled, secrets
/// written, and secrets found by reads (own or inherited).
static MESSAGES: AtomicU64 = AtomicU64::new(0);
static WRITTEN: AtomicU64 = AtomicU64::new(0);
static SEEN: AtomicU64 = AtomicU64::new(0);

/// Marks a secret record in memory: magic, then writer id and record id (u32 each).
const MAGIC: [u8; 8] = *b"\xA5SECRET\x5A";
const RECORD: usize = 16;

/// Reads the input as a stream of small numbers.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn raw64(&mut self) -> [u8; 64] {
        let mut out = [0u8; 64];
        let n = self.0.len().min(64);
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
}

#[derive(Default)]
struct Proc {
    /// Record ids this process may legitimately see.
    known: HashSet<u32>,
    /// Private mappings the harness made and may write secrets into: (address, pages).
    mine: Vec<(u64, u64)>,
}

struct Harness<F: FrameAllocator, P: PagingFormat> {
    vm: Vm<F, P>,
    procs: HashMap<Endpoint, Proc>,
    /// Every endpoint that was live once and is not now.
    dead: Vec<Endpoint>,
    /// Every page address a secret was written to (by anyone).
    pages: Vec<u64>,
    next_record: u32,
    steps: u32,
}

impl<F: FrameAllocator, P: PagingFormat> Harness<F, P> {
    fn live(&self) -> Vec<Endpoint> {
        let mut v: Vec<Endpoint> = self.procs.keys().copied().collect();
        v.sort();
        v
    }

    fn pick_live(&self, b: u8) -> Endpoint {
        let live = self.live();
        if live.is_empty() {
            return INIT_PROC_NR;
        }
        live[b as usize % live.len()]
    }

    /// Forgets processes the server no longer has (exited through a raw message).
    fn resync(&mut self) {
        let gone: Vec<Endpoint> = self
            .procs
            .keys()
            .copied()
            .filter(|ep| self.vm.endpoint_of_slot(ep.slot() as usize) != Some(*ep))
            .collect();
        for ep in gone {
            self.procs.remove(&ep);
            self.dead.push(ep);
        }
    }

    fn source(&self, sel: u8, raw: Endpoint) -> Endpoint {
        match sel % 8 {
            0..=2 => self.pick_live(sel / 8),
            3 => Endpoint((sel / 8) as i32 % NR_BOOT_PROCS as i32),
            4 if !self.dead.is_empty() => self.dead[(sel / 8) as usize % self.dead.len()],
            5 => [KERNEL, SYSTEM, Endpoint(-3), ANY, SELF, Endpoint(-1023)][(sel / 8) as usize % 6],
            _ => raw,
        }
    }

    fn raw_message(&mut self, input: &mut Bytes<'_>) {
        let sel = input.u8().unwrap_or(0);
        let kind = input.u8().unwrap_or(0);
        let mut msg = Message::from_bytes(&input.raw64());
        msg.source = self.source(sel, msg.source);
        // Mostly real call numbers, so the handlers are reached; sometimes the raw one.
        match kind % 4 {
            0 | 1 => msg.mtype = VM_RQ_BASE + (kind / 4) as i32 % NR_VM_CALLS as i32,
            2 if kind & 0x80 != 0 => msg.mtype = VM_PAGEFAULT,
            _ => {}
        }
        // Fields naming processes: often a live one, so calls get past endpoint checks.
        if kind & 0x40 != 0 {
            let a = self.pick_live(kind);
            let b = self.pick_live(sel);
            msg.set_m1_i1(a.0).set_m1_i2(b.0);
        }
        let from_kernel = kind & 0x20 != 0 && sel & 1 == 0;
        let reply = self.vm.handle(&msg, from_kernel);
        // Every request is answered, except a kernel page fault and a notification.
        let silent = (msg.mtype == VM_PAGEFAULT && from_kernel)
            || (NOTIFY_MESSAGE..NOTIFY_MESSAGE + 0x100).contains(&msg.mtype);
        let Some(reply) = reply else {
            assert!(silent, "no reply to {:#x} from {:?} (kernel: {from_kernel})", msg.mtype, msg.source);
            return;
        };
        assert!(!silent || msg.mtype == VM_PAGEFAULT, "a notification was answered");
        assert!(
            reply.mtype >= 0 || Errno::from_code(reply.mtype).is_some(),
            "reply {} to {:#x} is not an errno",
            reply.mtype,
            msg.mtype
        );
        if reply.mtype < 0 {
            return;
        }
        // What a successful call legitimately changes in the secret model.
        match msg.mtype {
            VM_FORK => {
                let parent = Endpoint(msg.m1_i1());
                let child = Endpoint(reply.m1_i3());
                let known = self.procs.get(&parent).map(|p| p.known.clone()).unwrap_or_default();
                self.procs.insert(child, Proc { known, mine: Vec::new() });
            }
            VM_RS_UPDATE => {
                let (a, b) = (Endpoint(msg.m1_i1()), Endpoint(msg.m1_i2()));
                if let (Some(pa), Some(pb)) = (self.procs.remove(&a), self.procs.remove(&b)) {
                    self.procs.insert(a, pb);
                    self.procs.insert(b, pa);
                }
            }
            _ => {}
        }
        // Any other successful call of a process may have remapped its own memory: the
        // harness stops writing secrets into its old mappings.
        if let Some(p) = self.procs.get_mut(&msg.source) {
            p.mine.clear();
        }
        // An exec replaced the target's memory.
        if msg.mtype == VM_RQ_BASE + 3 {
            if let Some(p) = self.procs.get_mut(&Endpoint(msg.m1_i1())) {
                p.mine.clear();
            }
        }
    }

    fn write_secret(&mut self, who: Endpoint, at: u8, off: u8) {
        let Some(p) = self.procs.get(&who) else { return };
        if p.mine.is_empty() {
            return;
        }
        let (va, pages) = p.mine[at as usize % p.mine.len()];
        // Spread over a large region (one secret may land in each huge page of it).
        let page = va + (off as u64 * pages.div_ceil(256) % pages) * PAGE_SIZE;
        let addr = page + (off as u64 * RECORD as u64) % (PAGE_SIZE - RECORD as u64);
        let id = self.next_record;
        self.next_record += 1;
        let mut rec = [0u8; RECORD];
        rec[..8].copy_from_slice(&MAGIC);
        rec[8..12].copy_from_slice(&(who.0 as u32).to_le_bytes());
        rec[12..].copy_from_slice(&id.to_le_bytes());
        // Known before the write: a fault inside it must not make the data "foreign".
        self.procs.get_mut(&who).expect("live").known.insert(id);
        if client::write_user(&mut self.vm, who, VirtAddr(addr), &rec).is_ok() {
            WRITTEN.fetch_add(1, Relaxed);
            self.pages.push(page);
        }
    }

    /// `who` reads a page some process wrote a secret to; every record in it must be one
    /// `who` may know.
    fn read_check(&mut self, who: Endpoint, at: u8) {
        if self.pages.is_empty() {
            return;
        }
        let page = self.pages[at as usize % self.pages.len()];
        let mut buf = vec![0u8; PAGE_SIZE as usize];
        if client::read_user(&mut self.vm, who, VirtAddr(page), &mut buf).is_err() {
            return;
        }
        let known = &self.procs[&who].known;
        for (i, w) in buf.windows(RECORD).enumerate() {
            if w[..8] == MAGIC {
                let writer = u32::from_le_bytes(w[8..12].try_into().expect("4"));
                let id = u32::from_le_bytes(w[12..16].try_into().expect("4"));
                SEEN.fetch_add(1, Relaxed);
                assert!(
                    known.contains(&id),
                    "{who:?} read secret {id} of writer {writer} at {:#x}: not its own and not inherited",
                    page + i as u64
                );
            }
        }
    }

    fn step(&mut self, input: &mut Bytes<'_>) -> Option<()> {
        let op = input.u8()?;
        let a = input.u8().unwrap_or(0);
        let b = input.u8().unwrap_or(0);
        match op % 10 {
            0..=2 => self.raw_message(input),
            3 => {
                let parent = self.pick_live(a);
                if let Ok(child) = client::fork(&mut self.vm, parent) {
                    let known = self.procs[&parent].known.clone();
                    let mine = self.procs[&parent].mine.clone();
                    self.procs.insert(child, Proc { known, mine });
                }
            }
            4 => {
                let who = self.pick_live(a);
                if who.slot() >= NR_BOOT_PROCS as i32 && client::exit(&mut self.vm, who).is_ok() {
                    self.procs.remove(&who);
                    self.dead.push(who);
                }
            }
            5 => {
                let who = self.pick_live(a);
                // Mostly a few pages; with huge pages on, one in eight is 4–10 MiB, large
                // enough to hold whole 2 MiB (x86-64) or 4 MiB (i386) blocks.
                let pages = if self.vm.huge_policy() == HugePolicy::Always && b >= 224 {
                    1024 + (b as u64 % 4) * 512
                } else {
                    1 + b as u64 % 4
                };
                let args = MmapArgs {
                    addr: None,
                    len: pages * PAGE_SIZE,
                    prot: MapProt::RW,
                    flags: MapFlags::ANON | MapFlags::PRIVATE,
                };
                if let Ok(va) = client::mmap(&mut self.vm, who, &args) {
                    self.procs.get_mut(&who).expect("live").mine.push((va.0, pages));
                }
            }
            6 => {
                let who = self.pick_live(a);
                self.write_secret(who, b, input.u8().unwrap_or(0));
            }
            7 => {
                let who = self.pick_live(a);
                self.read_check(who, b);
            }
            8 => self.vm.idle(),
            _ => {
                let who = self.pick_live(a);
                if b & 1 == 0 {
                    if let Some(&page) = self.pages.get(b as usize % self.pages.len().max(1)) {
                        let _ = client::touch(
                            &mut self.vm,
                            who,
                            VirtAddr(page),
                            Access { write: b & 2 != 0, user: true },
                        );
                    }
                } else {
                    let image = ExecImage {
                        text_bytes: (b as u64 % 5) * PAGE_SIZE,
                        data_bytes: PAGE_SIZE,
                        bss_bytes: b as u64 * 17,
                        stack_bytes: 8192,
                    };
                    if client::exec(&mut self.vm, who, &image).is_ok() {
                        self.procs.get_mut(&who).expect("live").mine.clear();
                    }
                }
            }
        }
        self.resync();
        // The cheap check after every step, the full one every few steps (it walks every
        // page table, which dominates the run time).
        self.steps += 1;
        let level = if self.steps.is_multiple_of(8) { SanityLevel::Detail } else { SanityLevel::Top };
        self.check(level, op);
        Some(())
    }

    fn check(&self, level: SanityLevel, op: u8) {
        if let Err(e) = self.vm.check_invariants(level) {
            panic!("invariants broken after step {} (op {op}): {e}", self.steps);
        }
    }
}

fn run<F: FrameAllocator, P: PagingFormat>(
    fork: ForkPolicy,
    zero: ZeroPolicy,
    (folio, huge): (FolioSize, HugePolicy),
    data: &[u8],
) {
    let config = VmConfig {
        zero,
        folio,
        huge,
        arena: ArenaConfig {
            bytes: if huge == HugePolicy::Always { 12 << 20 } else { 4 << 20 },
            ..Default::default()
        },
        slots: 24,
        fork,
        ..Default::default()
    };
    let vm = Vm::<F, P>::boot(config).expect("boot");
    let mut h =
        Harness { vm, procs: HashMap::new(), dead: Vec::new(), pages: Vec::new(), next_record: 0, steps: 0 };
    for slot in 0..NR_BOOT_PROCS {
        if let Some(ep) = h.vm.endpoint_of_slot(slot) {
            h.procs.insert(ep, Proc::default());
        }
    }
    assert!(h.procs.contains_key(&INIT_PROC_NR) && h.procs.contains_key(&RS_PROC_NR));
    let mut input = Bytes(data);
    while h.steps < 200 && h.step(&mut input).is_some() {}
    h.check(SanityLevel::Detail, 0);
    MESSAGES.fetch_add(h.vm.stats().calls, Relaxed);
    if std::env::var_os("VMSTORM_FUZZ_STATS").is_some() {
        let (m, w, s) = (MESSAGES.load(Relaxed), WRITTEN.load(Relaxed), SEEN.load(Relaxed));
        eprintln!("vm_messages totals: {m} messages handled, {w} secrets written, {s} secrets read back");
    }
}

/// The allocator × paging format pairs, in the order the first input byte picks them.
const PAIRS: [&str; 6] =
    ["bitset-x86_64", "bitset-i386", "buddy-x86_64", "buddy-i386", "holelist-x86_64", "holelist-i386"];

/// The pair `VMSTORM_FUZZ_PAIR` pins (one of [`PAIRS`]), read once; `None` lets the input choose.
fn pinned_pair() -> Option<usize> {
    static PINNED: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *PINNED.get_or_init(|| {
        let name = std::env::var("VMSTORM_FUZZ_PAIR").ok()?;
        let i = PAIRS.iter().position(|p| *p == name);
        assert!(i.is_some(), "VMSTORM_FUZZ_PAIR={name}: not one of {PAIRS:?}");
        i
    })
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the server: allocator × format (6), fork policy (3), zeroing
    // policy (2), anonymous folio size (4) and huge pages (values 144 and up: 2 MiB / 4 MiB
    // pages on, over an arena large enough to hold a block or two), every one of the 288.
    let Some((&config, rest)) = data.split_first() else { return };
    let pair = pinned_pair().unwrap_or(config as usize % 6);
    let fork = [ForkPolicy::Cow, ForkPolicy::Copy, ForkPolicy::Share][(config as usize / 6) % 3];
    // Pre-zeroed frames come from a pool refilled by `idle`: a frame that went back
    // to it unzeroed would leak a secret.
    let zero = if (config as usize / 18) % 2 == 0 { ZeroPolicy::OnFault } else { ZeroPolicy::Prezeroed };
    // A large folio's pages are zeroed on the fault too: one left unzeroed would leak.
    let folio = [FolioSize::K4, FolioSize::K16, FolioSize::K64, FolioSize::M1][(config as usize / 36) % 4];
    // A huge page (and the huge zero page) is zeroed once for all its 4 KiB pages.
    let huge = if config >= 144 { HugePolicy::Always } else { HugePolicy::Never };
    let large = (folio, huge);
    match pair {
        0 => run::<Bitset, X86_64>(fork, zero, large, rest),
        1 => run::<Bitset, I386>(fork, zero, large, rest),
        2 => run::<Buddy, X86_64>(fork, zero, large, rest),
        3 => run::<Buddy, I386>(fork, zero, large, rest),
        4 => run::<HoleList, X86_64>(fork, zero, large, rest),
        _ => run::<HoleList, I386>(fork, zero, large, rest),
    }
});
