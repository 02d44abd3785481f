//! The command line's view of the core's strategy registry ([`vmstorm_core::strategy`]):
//! the `--alloc`/`--paging`/`--fork`/`--zero`/`--folio`/`--huge` choices and help, the names reports
//! carry, and booting a strategy's server over `--mem` bytes.
//!
//! Nothing here lists strategies: the registry in the core does, so a new allocator shows up
//! in `--alloc`, `all`, reports and `compare` without a change to this file.

use clap::builder::PossibleValuesParser;
use vmstorm_core::strategy::Choice;
use vmstorm_core::BootError;

pub use vmstorm_core::strategy::{PagingKind, Strategy, VmJob};
pub use vmstorm_core::{AllocKind, FolioSize, HugePolicy};

use crate::metrics::StrategyNames;

/// The names of a strategy as reports and JSON carry them.
pub trait ReportNames {
    /// The names used in reports and JSON.
    fn names(&self) -> StrategyNames;
}

impl ReportNames for Strategy {
    fn names(&self) -> StrategyNames {
        StrategyNames {
            alloc: format!("{}{}", if self.hot { "hot+" } else { "" }, self.alloc.name()),
            paging: self.paging.name().to_string(),
            fork: self.fork.name().to_string(),
            zero: self.zero.name().to_string(),
            folio: self.folio.name().to_string(),
            huge: self.huge.name().to_string(),
        }
    }
}

/// The clap parser of one choice: its registry names and `all`.
pub fn choice_parser<C: Choice>() -> PossibleValuesParser {
    PossibleValuesParser::new(C::choices())
}

/// The `--alloc` help: every allocator of the registry with its one-line description.
pub fn alloc_help() -> String {
    let each: Vec<String> =
        AllocKind::ALL.iter().map(|k| format!("`{}` ({})", k.name(), k.about())).collect();
    format!("Frame allocator: {}, or `all`", each.join(", "))
}

/// Every combination of the named choices (`all` expands to every value); see
/// [`Strategy::matrix`].
///
/// # Errors
/// A name that is not a choice.
pub fn matrix(alloc: &str, paging: &str, fork: &str, zero: &str) -> Result<Vec<Strategy>, String> {
    Strategy::matrix(alloc, paging, fork, zero)
}

/// `strategies` with the hot-list axis applied: `off` takes the hot list away from every
/// allocator, `on` puts one in front of each (the default), `all` gives each without and
/// then with one.
///
/// # Errors
/// A name other than `off`, `on` or `all`.
pub fn with_hot(strategies: Vec<Strategy>, hot: &str) -> Result<Vec<Strategy>, String> {
    let choices: &[bool] = match hot {
        "off" => &[false],
        "on" => &[true],
        "all" => &[false, true],
        other => return Err(format!("unknown hot-list setting '{other}' (expected off, on or all)")),
    };
    Ok(strategies.into_iter().flat_map(|s| choices.iter().map(move |&hot| Strategy { hot, ..s })).collect())
}

/// `strategies` with the folio axis applied: each strategy once per size `folio` names
/// (`4k` … `1m`, or `all`), sizes innermost.
///
/// # Errors
/// A name that is not a folio size.
pub fn with_folio(strategies: Vec<Strategy>, folio: &str) -> Result<Vec<Strategy>, String> {
    let sizes = FolioSize::select(folio)?;
    Ok(strategies.into_iter().flat_map(|s| sizes.iter().map(move |&folio| Strategy { folio, ..s })).collect())
}

/// `strategies` with the huge-page axis applied: each strategy once per policy `huge`
/// names (`never`, `always`, or `all`), policies innermost.
///
/// # Errors
/// A name that is not a huge-page policy.
pub fn with_huge(strategies: Vec<Strategy>, huge: &str) -> Result<Vec<Strategy>, String> {
    let policies = HugePolicy::select(huge)?;
    Ok(strategies
        .into_iter()
        .flat_map(|s| policies.iter().map(move |&huge| Strategy { huge, ..s }))
        .collect())
}

/// Boots the server `strategy` names over `mem` bytes and runs `job` on it.
///
/// # Errors
/// The boot error (arena too small or too large, ...).
pub fn with_vm<J: VmJob>(strategy: &Strategy, mem: u64, job: J) -> Result<J::Output, BootError> {
    with_vm_sized(strategy, mem, vmstorm_core::slots::DEFAULT_SLOTS, job)
}

/// [`with_vm`] with a process table of `slots` slots (`--slots`).
///
/// # Errors
/// The boot error (arena too small or too large, a table size out of range, ...).
pub fn with_vm_sized<J: VmJob>(
    strategy: &Strategy,
    mem: u64,
    slots: usize,
    job: J,
) -> Result<J::Output, BootError> {
    strategy.with_vm(vmstorm_core::VmConfig { slots, ..strategy.config(mem) }, job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_help_follow_the_registry() {
        let s = matrix("lifo", "i386", "share", "prezeroed").unwrap()[0];
        let n = s.names();
        assert_eq!((n.alloc.as_str(), n.paging.as_str()), ("hot+lifo", "i386"));
        assert_eq!(Strategy { hot: false, ..s }.names().alloc, "lifo");
        assert_eq!((n.fork.as_str(), n.zero.as_str()), ("share", "prezeroed"));
        for name in AllocKind::NAMES {
            assert!(alloc_help().contains(&format!("`{name}`")), "{name}");
        }
    }

    #[test]
    fn hot_axis_doubles_the_matrix_and_labels_it() {
        let base = matrix("all", "x86-64", "cow", "on-fault").unwrap();
        let both = with_hot(base.clone(), "all").unwrap();
        assert_eq!(both.len(), 2 * base.len());
        let cold = with_hot(base.clone(), "off").unwrap();
        assert!(cold.iter().all(|s| !s.hot && !s.label().contains("hot")), "{cold:?}");
        assert_eq!(both.iter().filter(|s| s.hot).count(), base.len());
        // The default has a hot list: `on` is what the matrix gives.
        let hot = with_hot(base.clone(), "on").unwrap();
        assert_eq!(hot, base);
        assert!(hot.iter().all(|s| s.hot && s.label().starts_with("hot+")), "{hot:?}");
        assert_eq!(hot[0].names().alloc, format!("hot+{}", hot[0].alloc.name()));
        assert!(with_hot(Vec::new(), "maybe").unwrap_err().contains("off, on"));
    }

    #[test]
    fn folio_axis_multiplies_the_matrix_and_labels_it() {
        let base = matrix("bitset", "all", "cow", "on-fault").unwrap();
        let all = with_folio(base.clone(), "all").unwrap();
        assert_eq!(all.len(), base.len() * FolioSize::ALL.len());
        assert_eq!(with_folio(base.clone(), "4k").unwrap(), base);
        let big = with_folio(base, "64k").unwrap();
        assert!(big.iter().all(|s| s.folio == FolioSize::K64 && s.label().ends_with("+64k")), "{big:?}");
        assert_eq!(big[0].names().folio, "64k");
        assert_eq!(big[0].config(16 << 20).folio, FolioSize::K64);
        assert!(with_folio(Vec::new(), "8k").unwrap_err().contains("folio size"));
    }

    #[test]
    fn huge_axis_doubles_the_matrix_and_labels_it() {
        let base = with_folio(matrix("buddy", "all", "cow", "on-fault").unwrap(), "all").unwrap();
        let all = with_huge(base.clone(), "all").unwrap();
        assert_eq!(all.len(), 2 * base.len());
        assert_eq!(with_huge(base.clone(), "never").unwrap(), base);
        assert_eq!(all.iter().filter(|s| s.huge == HugePolicy::Always).count(), base.len());
        let huge = with_huge(base, "always").unwrap();
        assert!(huge.iter().all(|s| s.label().contains("+huge")), "{huge:?}");
        assert_eq!(huge[0].names().huge, "always");
        assert_eq!(huge[0].config(16 << 20).huge, HugePolicy::Always);
        assert!(with_huge(Vec::new(), "madvise").unwrap_err().contains("huge page policy"));
    }
}
