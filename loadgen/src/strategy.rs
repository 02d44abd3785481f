//! Picking a server strategy at start-up: frame allocator × page-table format (the two type
//! parameters of `Vm<F, P>`, monomorphized) and fork and zeroing policy (run-time settings).
//!
//! MINIX fixed its allocator and page-table code at build time; the seed had one of each.
//! Here the command line names a combination and [`with_vm`] boots the matching
//! monomorphized server through one `match` and hands it to a generic job, so the hot path
//! has no dynamic dispatch.

use std::fmt;

use vmstorm_core::{
    AllocKind, Bitset, BootError, Buddy, FrameAllocator, HoleList, HotList, PagingFormat, Vm, VmConfig, I386,
    X86_64,
};
use vmstorm_core::{ArenaConfig, ForkPolicy, ZeroPolicy};

use crate::metrics::StrategyNames;

/// The page-table formats, a closed set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum PagingKind {
    /// 4-level, 48-bit ([`X86_64`]).
    X86_64,
    /// 2-level, 32-bit ([`I386`]).
    I386,
}

impl PagingKind {
    /// Every format, default first.
    pub const ALL: [PagingKind; 2] = [PagingKind::X86_64, PagingKind::I386];

    /// The command-line name, equal to the format's `PagingFormat::NAME`.
    pub const fn name(self) -> &'static str {
        match self {
            PagingKind::X86_64 => X86_64::NAME,
            PagingKind::I386 => I386::NAME,
        }
    }
}

fn fork_name(f: ForkPolicy) -> &'static str {
    match f {
        ForkPolicy::Cow => "cow",
        ForkPolicy::Copy => "copy",
        ForkPolicy::Share => "share",
    }
}

fn zero_name(z: ZeroPolicy) -> &'static str {
    match z {
        ZeroPolicy::OnFault => "on-fault",
        ZeroPolicy::Prezeroed => "prezeroed",
    }
}

/// One server configuration to run.
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
    /// A hot list of recently freed frames in front of the allocator
    /// ([`vmstorm_core::HotList`]).
    pub hot: bool,
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy {
            alloc: AllocKind::Bitset,
            paging: PagingKind::X86_64,
            fork: ForkPolicy::Cow,
            zero: ZeroPolicy::OnFault,
            hot: false,
        }
    }
}

impl Strategy {
    /// The names used in reports and JSON.
    pub fn names(&self) -> StrategyNames {
        StrategyNames {
            alloc: format!("{}{}", if self.hot { "hot+" } else { "" }, self.alloc.name()),
            paging: self.paging.name().to_string(),
            fork: fork_name(self.fork).to_string(),
            zero: zero_name(self.zero).to_string(),
        }
    }

    /// A short label: `alloc/paging`, plus the fork and zero policies when they are not the
    /// defaults (`buddy/i386/copy/prezeroed`); `hot+` before the allocator when a hot list
    /// sits in front of it (`hot+bitset/x86-64`).
    pub fn label(&self) -> String {
        let hot = if self.hot { "hot+" } else { "" };
        let mut s = format!("{hot}{}/{}", self.alloc.name(), self.paging.name());
        if self.fork != ForkPolicy::Cow {
            s.push('/');
            s.push_str(fork_name(self.fork));
        }
        if self.zero != ZeroPolicy::OnFault {
            s.push('/');
            s.push_str(zero_name(self.zero));
        }
        s
    }

    /// The server configuration over an arena of `mem` bytes.
    pub fn config(&self, mem: u64) -> VmConfig {
        VmConfig {
            arena: ArenaConfig { bytes: mem, ..ArenaConfig::default() },
            fork: self.fork,
            zero: self.zero,
            ..VmConfig::default()
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

fn pick<T: Copy>(name: &str, what: &str, all: &[(&str, T)]) -> Result<Vec<T>, String> {
    if name == "all" {
        return Ok(all.iter().map(|a| a.1).collect());
    }
    all.iter().find(|a| a.0 == name).map(|a| vec![a.1]).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|a| a.0).collect();
        format!("unknown {what} '{name}' (expected {} or all)", names.join(", "))
    })
}

/// Every combination of the named choices (`all` expands to every value), allocator
/// varying fastest... in report order: fork, zero, paging, then allocator innermost.
pub fn matrix(alloc: &str, paging: &str, fork: &str, zero: &str) -> Result<Vec<Strategy>, String> {
    let allocs = pick(alloc, "allocator", &AllocKind::ALL.map(|k| (k.name(), k)))?;
    let pagings = pick(paging, "paging format", &PagingKind::ALL.map(|k| (k.name(), k)))?;
    let forks = pick(
        fork,
        "fork policy",
        &[("cow", ForkPolicy::Cow), ("share", ForkPolicy::Share), ("copy", ForkPolicy::Copy)],
    )?;
    let zeros = pick(
        zero,
        "zero policy",
        &[("on-fault", ZeroPolicy::OnFault), ("prezeroed", ZeroPolicy::Prezeroed)],
    )?;
    let mut out = Vec::new();
    for &fork in &forks {
        for &zero in &zeros {
            for &paging in &pagings {
                for &alloc in &allocs {
                    out.push(Strategy { alloc, paging, fork, zero, hot: false });
                }
            }
        }
    }
    Ok(out)
}

/// `strategies` with the hot-list axis applied: `off` keeps them as they are, `on` puts a
/// hot list in front of every allocator, `all` gives each without and then with one.
///
/// # Errors
/// A name other than `off`, `on` or `all`.
pub fn with_hot(strategies: Vec<Strategy>, hot: &str) -> Result<Vec<Strategy>, String> {
    let choices = pick(hot, "hot-list setting", &[("off", false), ("on", true)])?;
    Ok(strategies.into_iter().flat_map(|s| choices.iter().map(move |&hot| Strategy { hot, ..s })).collect())
}

/// Work to do on a booted server of any strategy.
pub trait VmJob {
    /// What the job returns.
    type Output;
    /// Runs on the server.
    fn run<F: FrameAllocator, P: PagingFormat>(self, vm: &mut Vm<F, P>) -> Self::Output;
}

/// Boots the server `strategy` names over `mem` bytes and runs `job` on it.
///
/// # Errors
/// The boot error (arena too small or too large, ...).
pub fn with_vm<J: VmJob>(strategy: &Strategy, mem: u64, job: J) -> Result<J::Output, BootError> {
    let config = strategy.config(mem);
    fn go<F: FrameAllocator, P: PagingFormat, J: VmJob>(
        config: VmConfig,
        job: J,
    ) -> Result<J::Output, BootError> {
        let mut vm = Box::new(Vm::<F, P>::boot(config)?);
        Ok(job.run(&mut vm))
    }
    match (strategy.hot, strategy.alloc, strategy.paging) {
        (true, AllocKind::Bitset, PagingKind::X86_64) => go::<HotList<Bitset>, X86_64, J>(config, job),
        (true, AllocKind::Bitset, PagingKind::I386) => go::<HotList<Bitset>, I386, J>(config, job),
        (true, AllocKind::Buddy, PagingKind::X86_64) => go::<HotList<Buddy>, X86_64, J>(config, job),
        (true, AllocKind::Buddy, PagingKind::I386) => go::<HotList<Buddy>, I386, J>(config, job),
        (true, AllocKind::HoleList, PagingKind::X86_64) => go::<HotList<HoleList>, X86_64, J>(config, job),
        (true, AllocKind::HoleList, PagingKind::I386) => go::<HotList<HoleList>, I386, J>(config, job),
        (false, AllocKind::Bitset, PagingKind::X86_64) => go::<Bitset, X86_64, J>(config, job),
        (false, AllocKind::Bitset, PagingKind::I386) => go::<Bitset, I386, J>(config, job),
        (false, AllocKind::Buddy, PagingKind::X86_64) => go::<Buddy, X86_64, J>(config, job),
        (false, AllocKind::Buddy, PagingKind::I386) => go::<Buddy, I386, J>(config, job),
        (false, AllocKind::HoleList, PagingKind::X86_64) => go::<HoleList, X86_64, J>(config, job),
        (false, AllocKind::HoleList, PagingKind::I386) => go::<HoleList, I386, J>(config, job),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Describe;
    impl VmJob for Describe {
        type Output = (String, String, u64);
        fn run<F: FrameAllocator, P: PagingFormat>(self, vm: &mut Vm<F, P>) -> Self::Output {
            (std::any::type_name::<F>().to_string(), P::NAME.to_string(), vm.total_frames())
        }
    }

    #[test]
    fn matrix_expands_all() {
        assert_eq!(matrix("all", "all", "all", "all").unwrap().len(), 36);
        let one = matrix("buddy", "i386", "copy", "prezeroed").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].label(), "buddy/i386/copy/prezeroed");
        assert_eq!(Strategy::default().label(), "bitset/x86-64");
        assert!(matrix("slab", "all", "cow", "on-fault").unwrap_err().contains("bitset, buddy, holelist"));
    }

    #[test]
    fn every_combination_boots_the_named_types() {
        for s in matrix("all", "all", "cow", "on-fault").unwrap() {
            let (alloc, paging, frames) = with_vm(&s, 16 << 20, Describe).unwrap();
            assert!(alloc.to_lowercase().contains(&s.alloc.name().to_lowercase()), "{alloc} for {s}");
            assert_eq!(paging, s.paging.name());
            assert_eq!(frames, 4096);
        }
    }

    #[test]
    fn hot_axis_doubles_the_matrix_and_boots_the_wrapper() {
        let base = matrix("all", "x86-64", "cow", "on-fault").unwrap();
        let both = with_hot(base.clone(), "all").unwrap();
        assert_eq!(both.len(), 2 * base.len());
        assert_eq!(with_hot(base.clone(), "off").unwrap(), base);
        let hot = with_hot(base, "on").unwrap();
        assert!(hot.iter().all(|s| s.hot && s.label().starts_with("hot+")), "{hot:?}");
        let (alloc, _, frames) = with_vm(&hot[0], 16 << 20, Describe).unwrap();
        assert!(alloc.contains("HotList") && alloc.contains("Bitset"), "{alloc}");
        assert_eq!(frames, 4096);
        assert!(with_hot(Vec::new(), "maybe").unwrap_err().contains("off, on"));
    }

    #[test]
    fn tiny_arena_is_a_boot_error() {
        assert!(with_vm(&Strategy::default(), 4096, Describe).is_err());
    }
}
