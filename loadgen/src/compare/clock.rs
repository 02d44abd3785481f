//! The clock `compare` times its cells with: the calling thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`).
//!
//! A cell is one thread driving one server, so the time the server worked is the time that
//! thread ran. The wall clock also counts the time the thread sat descheduled while other
//! work had the cores; on a small shared machine that is most of the difference between two
//! rounds of the same cell, and it falls on whichever strategy happens to be running. MINIX
//! measured its servers with the kernel's per-process cycle accounting for the same reason.

use std::time::Duration;

use rustix::time::{clock_gettime, ClockId};

/// CPU time the calling thread has used so far.
pub fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec.max(0) as u64, t.tv_nsec.clamp(0, 999_999_999) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_advances_with_work_not_with_sleep() {
        let t0 = thread_cpu();
        std::thread::sleep(Duration::from_millis(30));
        let slept = thread_cpu() - t0;
        let t1 = thread_cpu();
        let mut x = 0u64;
        while thread_cpu() - t1 < Duration::from_millis(5) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let worked = thread_cpu() - t1;
        assert!(worked >= Duration::from_millis(5), "{worked:?}");
        assert!(slept < Duration::from_millis(30), "sleeping counted as CPU time: {slept:?}");
        assert!(x > 0);
    }
}
