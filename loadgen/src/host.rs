//! The host under the load generator: how much memory is available and how many cores there
//! are, checked once at start-up so that a request that cannot fit fails in one line before
//! any work instead of being killed (or thrashing) half-way.
//!
//! MINIX's VM owned the machine's memory; here every server's "physical memory" is an arena
//! mapped from the host, so `--mem` × `--shards` (and a storm's ops, held in memory) must fit
//! in what the host has.

use std::fmt;

/// What the host offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    /// Bytes of memory available for new work (`MemAvailable`), when known.
    pub available: Option<u64>,
    /// Cores this process may run on.
    pub cores: usize,
}

impl Host {
    /// The running host (`/proc/meminfo` and the scheduler's CPU set).
    pub fn current() -> Host {
        let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| mem_available(&t));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Host { available, cores }
    }

    /// Refuses `what` of `bytes` when more than the available memory.
    ///
    /// # Errors
    /// One line naming the request, the memory available and what to change.
    pub fn check_memory(&self, bytes: u64, what: &str, fix: &str) -> Result<(), String> {
        match self.available {
            Some(avail) if bytes > avail => Err(format!(
                "{what} needs {} but the host has {} of memory available; {fix}",
                Bytes(bytes),
                Bytes(avail)
            )),
            _ => Ok(()),
        }
    }

    /// A warning when `shards` threads exceed the cores.
    pub fn shard_warning(&self, shards: u64) -> Option<String> {
        (shards > self.cores as u64).then(|| {
            format!(
                "--shards {shards} exceeds the {} core(s) of this host: shards share cores, so the aggregate \
                 and the speed-up understate what {shards} cores would do",
                self.cores
            )
        })
    }
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// A byte count in the largest binary unit that keeps it readable.
#[derive(Clone, Copy, Debug)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        if self.0 >= 1 << 40 {
            write!(f, "{:.1} TiB", b / (1u64 << 40) as f64)
        } else if self.0 >= 1 << 30 {
            write!(f, "{:.1} GiB", b / (1u64 << 30) as f64)
        } else {
            write!(f, "{:.0} MiB", b / (1u64 << 20) as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_available() {
        let t = "MemTotal:       24683664 kB\nMemFree:  1 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(mem_available(t), Some(2 << 20));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn refuses_what_does_not_fit_and_warns_past_the_cores() {
        let h = Host { available: Some(3 << 30), cores: 2 };
        assert!(h.check_memory(2 << 30, "x", "y").is_ok());
        let e = h.check_memory(4 << 30, "--mem 1G × --shards 4", "use fewer shards").unwrap_err();
        assert_eq!(e, "--mem 1G × --shards 4 needs 4.0 GiB but the host has 3.0 GiB of memory available; use fewer shards");
        assert!(Host { available: None, cores: 1 }.check_memory(u64::MAX, "x", "y").is_ok());
        assert!(h.shard_warning(2).is_none());
        assert!(h.shard_warning(3).unwrap().starts_with("--shards 3 exceeds the 2 core(s)"));
    }
}
