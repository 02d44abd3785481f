//! The strategy registry: every choice a server is built with — frame allocator × page-table
//! format (the type parameters of [`Vm`], monomorphized) and fork and zeroing policy
//! (run-time settings) — with their names, parsing, `all`, and the one dispatch from a
//! chosen combination to `Vm<F, P>`.
//!
//! MINIX fixed its allocator and page-table code at build time. Here the command line, the
//! tests ([`crate::every_strategy`]) and the benches name strategies through this module;
//! the allocators themselves are listed once, in [`crate::with_allocators`].
//!
//! About 450 lines because each axis (format, fork, zeroing, hot list, folio size) needs
//! its names, parsing and a line of the dispatch, and the tests that every combination
//! boots the types it names live beside them.

use core::fmt;

use crate::arena::ArenaConfig;
use crate::frames::{AllocJob, AllocKind, FrameAllocator, HotList};
use crate::paging::{ForkPolicy, PagingFormat, I386, X86_64};
use crate::server::{BootError, FolioSize, HugePolicy, Vm, VmConfig, ZeroPolicy};

/// The registry of page-table formats, one line each: `[Type module "cli-name"]` (the
/// default strategy's format is [`Strategy::DEFAULT`]'s). Calls `$cb! { {args} [Type module "name"] ... }` like [`crate::with_allocators`].
#[macro_export]
macro_rules! with_formats {
    ([$($cb:tt)*] { $($args:tt)* }) => {
        $($cb)*! {
            { $($args)* }
            [X86_64 x86_64 "x86-64"]
            [I386 i386 "i386"]
        }
    };
}

macro_rules! declare_paging_kinds {
    ({} $([$ty:ident $module:ident $name:literal])*) => {
        /// A page-table format, as named on the command line.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
        pub enum PagingKind {
            $(
                #[doc = concat!("[`crate::paging::", stringify!($ty), "`].")]
                $ty,
            )*
        }

        impl PagingKind {
            /// Every format, in registry order.
            pub const ALL: &'static [PagingKind] = &[$(PagingKind::$ty),*];

            /// The command-line names, in the order of [`PagingKind::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// The command-line name, equal to the format's [`PagingFormat::NAME`].
            pub const fn name(self) -> &'static str {
                match self {
                    $(PagingKind::$ty => $name,)*
                }
            }

            /// Runs `job` with the format's type.
            #[inline]
            pub fn dispatch<J: PagingJob>(self, job: J) -> J::Output {
                match self {
                    $(PagingKind::$ty => job.run::<$ty>(),)*
                }
            }
        }
    };
}

with_formats!([declare_paging_kinds] {});

/// Work that needs a page-table format's type (see [`PagingKind::dispatch`]).
pub trait PagingJob {
    /// What the job returns.
    type Output;
    /// Runs with format `P`.
    fn run<P: PagingFormat>(self) -> Self::Output;
}

impl ForkPolicy {
    /// Every fork policy, default first.
    pub const ALL: &'static [ForkPolicy] = &[ForkPolicy::Cow, ForkPolicy::Share, ForkPolicy::Copy];

    /// The command-line name: `cow`, `share` or `copy`.
    pub const fn name(self) -> &'static str {
        match self {
            ForkPolicy::Cow => "cow",
            ForkPolicy::Share => "share",
            ForkPolicy::Copy => "copy",
        }
    }
}

impl ZeroPolicy {
    /// Every zeroing policy, default first.
    pub const ALL: &'static [ZeroPolicy] = &[ZeroPolicy::OnFault, ZeroPolicy::Prezeroed];

    /// The command-line name: `on-fault` or `prezeroed`.
    pub const fn name(self) -> &'static str {
        match self {
            ZeroPolicy::OnFault => "on-fault",
            ZeroPolicy::Prezeroed => "prezeroed",
        }
    }
}

/// A named choice of the registry: its values and their command-line names.
pub trait Choice: Copy + 'static {
    /// What is being chosen, for messages (`frame allocator`).
    const WHAT: &'static str;
    /// Every value, in registry order (for fork and zero policies, default first).
    fn all() -> &'static [Self];
    /// The command-line name of this value.
    fn choice_name(self) -> &'static str;

    /// The accepted command-line values: every name, then `all`.
    fn choices() -> Vec<&'static str> {
        Self::all().iter().map(|c| c.choice_name()).chain(["all"]).collect()
    }

    /// The values `name` selects: one, or every value for `all`.
    ///
    /// # Errors
    /// A one-line message naming the accepted values.
    fn select(name: &str) -> Result<Vec<Self>, String> {
        if name == "all" {
            return Ok(Self::all().to_vec());
        }
        Self::all().iter().copied().find(|c| c.choice_name() == name).map(|c| vec![c]).ok_or_else(|| {
            format!("unknown {} '{name}' (expected {})", Self::WHAT, Self::choices().join(", "))
        })
    }
}

macro_rules! choice {
    ($ty:ty, $what:literal) => {
        impl Choice for $ty {
            const WHAT: &'static str = $what;
            fn all() -> &'static [Self] {
                <$ty>::ALL
            }
            fn choice_name(self) -> &'static str {
                self.name()
            }
        }
    };
}

choice!(AllocKind, "frame allocator");
choice!(PagingKind, "paging format");
choice!(ForkPolicy, "fork policy");
choice!(ZeroPolicy, "zero policy");
impl Choice for FolioSize {
    const WHAT: &'static str = "folio size";
    fn all() -> &'static [Self] {
        &FolioSize::ALL
    }
    fn choice_name(self) -> &'static str {
        self.name()
    }
}
impl Choice for HugePolicy {
    const WHAT: &'static str = "huge page policy";
    fn all() -> &'static [Self] {
        &HugePolicy::ALL
    }
    fn choice_name(self) -> &'static str {
        self.name()
    }
}

/// One server configuration. The default is [`Strategy::DEFAULT`]: `hot+buddy/i386`, `cow`,
/// `on-fault`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Strategy {
    /// Frame allocator.
    pub alloc: AllocKind,
    /// Page-table format.
    pub paging: PagingKind,
    /// Fork policy.
    pub fork: ForkPolicy,
    /// Zeroing policy.
    pub zero: ZeroPolicy,
    /// A hot list of recently freed (cache-hot) frames in front of the allocator
    /// ([`HotList`]), as Linux's per-cpu page lists sit in front of its buddy allocator.
    /// On in [`Strategy::DEFAULT`].
    pub hot: bool,
    /// Anonymous folio size of demand-zero write faults (`4k`: large folios off).
    pub folio: FolioSize,
    /// Huge (page-directory-level) pages on demand-zero faults (`never`: off).
    pub huge: HugePolicy,
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy::DEFAULT
    }
}

impl Default for PagingKind {
    /// The default strategy's format.
    fn default() -> Self {
        Strategy::DEFAULT.paging
    }
}

impl Strategy {
    /// The default strategy, the one place it is chosen (the command line's defaults follow
    /// it): a hot list of recently freed frames in front of the buddy allocator, as Linux's
    /// per-cpu page lists sit in front of its buddy allocator, over MINIX 3's own 2-level
    /// i386 tables, forking copy-on-write and zeroing in the fault.
    ///
    /// Chosen by `vmstorm compare --quick` (every storm and the `make` trace, 16 strategies,
    /// median of 5 to 9 rounds): without a hot list the next-fit bitset (the earlier
    /// default) zeroes and copies into frames that have left the caches, 30-60 % behind the
    /// fastest on the exec and cow storms and in some runs on the fault storm; a 256-frame
    /// hot list mends exec and cow, but the fault storm's 1,200 frames overflow it into the
    /// sweep (p50 up to 370 ns against 140 ns), where buddy hands back the frames just
    /// freed. The 2-level format forks and execs with
    /// half the table levels of x86-64: 20-30 % ahead there and up to 15 % on most other
    /// storms, so no x86-64 default could come within 5 % of the fastest on every row.
    /// `--paging x86-64` remains the choice for 64-bit address spaces, and `--hot off` the
    /// cold variant the reports set beside it.
    pub const DEFAULT: Strategy = Strategy {
        alloc: AllocKind::Buddy,
        paging: PagingKind::I386,
        fork: ForkPolicy::Cow,
        zero: ZeroPolicy::OnFault,
        hot: true,
        folio: FolioSize::K4,
        huge: HugePolicy::Never,
    };

    /// Every combination of the named choices (`all` expands to every value), in report
    /// order: fork, zero, paging, then allocator innermost; each with the default strategy's
    /// hot-list setting.
    ///
    /// # Errors
    /// A name that is not a choice, with the accepted ones.
    pub fn matrix(alloc: &str, paging: &str, fork: &str, zero: &str) -> Result<Vec<Strategy>, String> {
        let allocs = AllocKind::select(alloc)?;
        let pagings = PagingKind::select(paging)?;
        let forks = ForkPolicy::select(fork)?;
        let zeros = ZeroPolicy::select(zero)?;
        let mut out = Vec::with_capacity(allocs.len() * pagings.len() * forks.len() * zeros.len());
        for &fork in &forks {
            for &zero in &zeros {
                for &paging in &pagings {
                    for &alloc in &allocs {
                        out.push(Strategy { alloc, paging, fork, zero, ..Strategy::default() });
                    }
                }
            }
        }
        Ok(out)
    }

    /// A short label: `alloc/paging`, plus the fork and zero policies when they are not the
    /// defaults (`buddy/i386/copy/prezeroed`); `hot+` before the allocator when a hot list
    /// sits in front of it (`hot+bitset/x86-64`); `+<size>` after the format when large
    /// folios are on (`bitset/x86-64+64k`), then `+huge` when huge pages are
    /// (`bitset/x86-64+64k+huge`).
    pub fn label(&self) -> String {
        let hot = if self.hot { "hot+" } else { "" };
        let mut s = format!("{hot}{}/{}", self.alloc.name(), self.paging.name());
        if self.folio != FolioSize::K4 {
            s.push('+');
            s.push_str(self.folio.name());
        }
        if self.huge == HugePolicy::Always {
            s.push_str("+huge");
        }
        if self.fork != ForkPolicy::default() {
            s.push('/');
            s.push_str(self.fork.name());
        }
        if self.zero != ZeroPolicy::default() {
            s.push('/');
            s.push_str(self.zero.name());
        }
        s
    }

    /// The server configuration over an arena of `mem` bytes.
    pub fn config(&self, mem: u64) -> VmConfig {
        VmConfig {
            arena: ArenaConfig { bytes: mem, ..ArenaConfig::default() },
            fork: self.fork,
            zero: self.zero,
            folio: self.folio,
            huge: self.huge,
            ..VmConfig::default()
        }
    }

    /// Runs `job` with the strategy's allocator and format types.
    #[inline]
    pub fn dispatch<J: StrategyJob>(&self, job: J) -> J::Output {
        struct ByAlloc<J>(PagingKind, bool, J);
        struct ByPaging<F, J>(J, core::marker::PhantomData<F>);
        impl<J: StrategyJob> AllocJob for ByAlloc<J> {
            type Output = J::Output;
            fn run<F: FrameAllocator>(self) -> J::Output {
                if self.1 {
                    self.0.dispatch(ByPaging::<HotList<F>, J>(self.2, core::marker::PhantomData))
                } else {
                    self.0.dispatch(ByPaging::<F, J>(self.2, core::marker::PhantomData))
                }
            }
        }
        impl<F: FrameAllocator, J: StrategyJob> PagingJob for ByPaging<F, J> {
            type Output = J::Output;
            fn run<P: PagingFormat>(self) -> J::Output {
                self.0.run::<F, P>()
            }
        }
        self.alloc.dispatch(ByAlloc(self.paging, self.hot, job))
    }

    /// Boots the server this strategy names with `config` (its `fork`, `zero`, `folio` and
    /// `huge` are replaced by the strategy's) and runs `job` on it.
    ///
    /// # Errors
    /// The boot error (arena too small or too large, ...).
    pub fn with_vm<J: VmJob>(&self, config: VmConfig, job: J) -> Result<J::Output, BootError> {
        struct Boot<J>(VmConfig, J);
        impl<J: VmJob> StrategyJob for Boot<J> {
            type Output = Result<J::Output, BootError>;
            fn run<F: FrameAllocator, P: PagingFormat>(self) -> Self::Output {
                let mut vm = Box::new(Vm::<F, P>::boot(self.0)?);
                Ok(self.1.run(&mut vm))
            }
        }
        let config =
            VmConfig { fork: self.fork, zero: self.zero, folio: self.folio, huge: self.huge, ..config };
        self.dispatch(Boot(config, job))
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// Work that needs a strategy's allocator and format types (see [`Strategy::dispatch`]).
pub trait StrategyJob {
    /// What the job returns.
    type Output;
    /// Runs with allocator `F` and format `P`.
    fn run<F: FrameAllocator, P: PagingFormat>(self) -> Self::Output;
}

/// Work to do on a booted server of any strategy (see [`Strategy::with_vm`]).
pub trait VmJob {
    /// What the job returns.
    type Output;
    /// Runs on the server.
    fn run<F: FrameAllocator, P: PagingFormat>(self, vm: &mut Vm<F, P>) -> Self::Output;
}

/// Defines a module `$name` holding one `#[test]` per allocator × page-table format × fork
/// policy of the registry, each calling `$body::<Alloc, Format>(policy)`; `$body` is a
/// function at the place of the call. The tests are named
/// `$name::<allocator>::<format>::<policy>` (e.g. `mmap_all::buddy::i386::share`).
#[macro_export]
macro_rules! every_strategy {
    ($name:ident, $body:ident) => {
        mod $name {
            $crate::with_allocators!([$crate::__every_strategy_allocators] { $body });
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __every_strategy_allocators {
    ({ $body:ident } $([$ty:ident $module:ident $name:literal $doc:literal])*) => {
        $(
            mod $module {
                $crate::with_formats!([$crate::__every_strategy_formats] { $body $ty });
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __every_strategy_formats {
    ({ $body:ident $alloc:ident } $([$ty:ident $module:ident $name:literal])*) => {
        $(
            mod $module {
                #[test]
                fn cow() {
                    super::super::super::$body::<$crate::frames::$alloc, $crate::$ty>($crate::ForkPolicy::Cow)
                }
                #[test]
                fn share() {
                    super::super::super::$body::<$crate::frames::$alloc, $crate::$ty>($crate::ForkPolicy::Share)
                }
                #[test]
                fn copy() {
                    super::super::super::$body::<$crate::frames::$alloc, $crate::$ty>($crate::ForkPolicy::Copy)
                }
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Describe;
    impl VmJob for Describe {
        type Output = (&'static str, &'static str, u64);
        fn run<F: FrameAllocator, P: PagingFormat>(self, vm: &mut Vm<F, P>) -> Self::Output {
            (F::with_frames(1).name(), P::NAME, vm.total_frames())
        }
    }

    #[test]
    fn matrix_expands_all() {
        let n = AllocKind::ALL.len() * PagingKind::ALL.len() * 3 * 2;
        assert_eq!(Strategy::matrix("all", "all", "all", "all").unwrap().len(), n);
        let one = Strategy::matrix("buddy", "i386", "copy", "prezeroed").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].label(), "hot+buddy/i386/copy/prezeroed");
        assert_eq!(Strategy { hot: false, ..one[0] }.label(), "buddy/i386/copy/prezeroed");
        assert_eq!(Strategy::default().label(), "hot+buddy/i386");
        assert_eq!(Strategy::matrix("buddy", "i386", "cow", "on-fault").unwrap(), [Strategy::default()]);
        assert_eq!(Strategy::default().config(1 << 20).fork, ForkPolicy::default());
        assert_eq!(Strategy::default().config(1 << 20).zero, ZeroPolicy::default());
        let e = Strategy::matrix("slab", "all", "cow", "on-fault").unwrap_err();
        assert_eq!(
            e,
            format!("unknown frame allocator 'slab' (expected {}, all)", AllocKind::NAMES.join(", "))
        );
        assert!(e.starts_with("unknown frame allocator 'slab' (expected bitset, buddy, holelist, lifo"));
        assert!(Strategy::matrix("all", "arm", "cow", "on-fault").is_err());
        assert!(Strategy::matrix("all", "all", "vfork", "on-fault").is_err());
        assert!(Strategy::matrix("all", "all", "cow", "never").is_err());
        assert_eq!(ForkPolicy::choices(), ["cow", "share", "copy", "all"]);
        assert_eq!(PagingKind::choices(), ["x86-64", "i386", "all"]);
        assert_eq!(FolioSize::select("all").unwrap().len(), FolioSize::ALL.len());
        assert!(FolioSize::select("8k")
            .unwrap_err()
            .starts_with("unknown folio size '8k' (expected 4k, 16k"));
        let big = Strategy { folio: FolioSize::K64, ..Strategy::default() };
        assert_eq!(big.label(), "hot+buddy/i386+64k");
        assert_eq!(big.config(16 << 20).folio, FolioSize::K64);
        assert_eq!(HugePolicy::select("all").unwrap(), HugePolicy::ALL);
        assert_eq!(HugePolicy::choices(), ["never", "always", "all"]);
        assert!(HugePolicy::select("madvise").unwrap_err().starts_with("unknown huge page policy 'madvise'"));
        let huge = Strategy { huge: HugePolicy::Always, ..big };
        assert_eq!(huge.label(), "hot+buddy/i386+64k+huge");
        assert_eq!(huge.config(16 << 20).huge, HugePolicy::Always);
        assert_eq!(Strategy::default().config(1 << 20).huge, HugePolicy::Never);
    }

    #[test]
    fn every_combination_boots_the_named_types() {
        for s in Strategy::matrix("all", "all", "cow", "on-fault").unwrap() {
            for hot in [false, true] {
                let s = Strategy { hot, ..s };
                let (alloc, paging, frames) = s.with_vm(VmConfig::with_bytes(16 << 20), Describe).unwrap();
                let want = if hot { format!("hot+{}", s.alloc.name()) } else { s.alloc.name().to_string() };
                assert_eq!(alloc, want);
                assert_eq!(paging, s.paging.name());
                assert_eq!(frames, 4096);
            }
        }
        assert_eq!(PagingKind::X86_64.name(), X86_64::NAME);
        assert_eq!(PagingKind::I386.name(), I386::NAME);
    }

    #[test]
    fn tiny_arena_is_a_boot_error() {
        assert!(Strategy::default().with_vm(VmConfig::with_bytes(4096), Describe).is_err());
    }
}
