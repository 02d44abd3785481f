//! The host kernel's multi-size THP knobs, set for one Linux measurement and put back:
//! `/sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/enabled`.
//!
//! Replaces nothing in MINIX (it has 4 KiB pages only). The `linux` side of the folio
//! benches times the host's write fault with one anonymous folio size enabled, beside the
//! server's fault path with the same [`vmstorm_core::FolioSize`]. Changing the knobs needs
//! root and changes the whole machine, so it happens only when asked (`VMSTORM_MTHP=1`)
//! and every knob touched is restored when the [`MthpSetting`] is dropped — also when the
//! bench panics (unwinding). A Ctrl-C kills the process without unwinding: restore then
//! with `bench/mthp-host.sh`'s printed originals, or by hand.

use std::fs;
use std::path::{Path, PathBuf};

/// Where the per-size knobs live.
const THP: &str = "/sys/kernel/mm/transparent_hugepage";

/// One size enabled (`always`), every other size `never`, until dropped.
#[derive(Debug)]
pub struct MthpSetting {
    /// Each knob touched, with the value it had.
    saved: Vec<(PathBuf, String)>,
}

/// The selected value of a sysfs multiple-choice knob (`always [never] madvise` → `never`).
fn selected(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(text[start..end].to_string())
}

impl MthpSetting {
    /// Whether the user asked for the host's knobs to be changed and may change them.
    ///
    /// # Errors
    /// Why not, as a message to print beside the skipped rows.
    pub fn allowed() -> Result<(), String> {
        if std::env::var("VMSTORM_MTHP").as_deref() != Ok("1") {
            return Err("set VMSTORM_MTHP=1 (as root) to time the host at each mTHP size".into());
        }
        if effective_uid() != 0 {
            return Err("changing the host's mTHP knobs needs root".into());
        }
        if !Path::new(THP).join("hugepages-16kB/enabled").exists() {
            return Err("this kernel has no multi-size THP knobs (Linux 6.8+)".into());
        }
        Ok(())
    }

    /// Enables anonymous folios of `kib` KiB only (`always`), every other size `never`.
    ///
    /// # Errors
    /// A knob that cannot be read or written (what was changed so far is restored).
    pub fn only(kib: u64) -> Result<MthpSetting, String> {
        let mut s = MthpSetting { saved: Vec::new() };
        let entries = fs::read_dir(THP).map_err(|e| format!("{THP}: {e}"))?;
        let mut knobs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("hugepages-"))
            .map(|e| e.path().join("enabled"))
            // Some sizes exist for the page cache only and have no anonymous knob.
            .filter(|k| k.exists())
            .collect();
        knobs.sort();
        for k in knobs {
            let old = fs::read_to_string(&k).map_err(|e| format!("{}: {e}", k.display()))?;
            let old = selected(&old).ok_or_else(|| format!("{}: no selected value", k.display()))?;
            let want = if k.parent().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned())
                == Some(format!("hugepages-{kib}kB"))
            {
                "always"
            } else {
                "never"
            };
            fs::write(&k, want).map_err(|e| format!("{}: {e}", k.display()))?;
            s.saved.push((k, old));
        }
        Ok(s)
    }
}

impl Drop for MthpSetting {
    fn drop(&mut self) {
        for (k, old) in self.saved.drain(..).rev() {
            if let Err(e) = fs::write(&k, &old) {
                eprintln!("warning: could not restore {} to {old}: {e}", k.display());
            }
        }
    }
}

/// The effective user id, read from `/proc/self/status` (no libc call needed).
fn effective_uid() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selected_value_is_the_bracketed_one() {
        assert_eq!(selected("always inherit madvise [never]\n").as_deref(), Some("never"));
        assert_eq!(selected("[always] madvise never").as_deref(), Some("always"));
        assert_eq!(selected("always never"), None);
    }
}
