//! The host kernel's own costs for the operations the server replaces, measured through
//! libc in the same run as ours so "vmstorm vs Linux" is a ratio from one run: demand-zero
//! faults (will-it-scale page_fault1), COW faults after fork, mmap+munmap of untouched
//! memory (mmap1), a brk grow/shrink pair (brk1), fork+exit+wait and fork+exec+wait
//! (lmbench lat_proc), and a null system call: the price of one kernel entry and exit,
//! which every Linux figure includes and vmstorm, called in-process, does not pay. Each
//! function returns the time of the measured part only: mappings are made, and children
//! reaped, outside it.

use std::time::{Duration, Instant};

const PAGE: usize = 4096;
/// Pages per mapping in the fault benches: 128 MiB, as page_fault1 maps.
pub const CHUNK_PAGES: u64 = 32_768;

fn map_anon(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address the kernel picks; no existing
    // memory is affected. The result is checked before use.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(p != libc::MAP_FAILED, "mmap of {len} bytes failed");
    p.cast()
}

fn unmap(p: *mut u8, len: usize) {
    // SAFETY: `p..p+len` is a mapping made by `map_anon` that no reference points into.
    let rc = unsafe { libc::munmap(p.cast(), len) };
    assert_eq!(rc, 0, "munmap failed");
}

/// Writes one byte into each of `pages` pages from `p` (each write faults when the page is
/// absent or shared).
#[inline(never)]
fn touch_pages(p: *mut u8, pages: usize) {
    for i in 0..pages {
        // SAFETY: `p` heads a live writable mapping of at least `pages` pages that nothing
        // else references; volatile keeps every store (and so every fault).
        unsafe { p.add(i * PAGE).write_volatile(1) };
    }
}

/// Time of `n` null system calls (`getppid`, which the C library neither caches nor serves
/// from the vDSO): one kernel entry and exit each.
pub fn null_syscalls(n: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        // SAFETY: getppid(2) takes no arguments, touches no memory and cannot fail.
        std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid) });
    }
    t.elapsed()
}

/// Time of `pages` demand-zero write faults on fresh anonymous memory.
pub fn demand_zero_faults(pages: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = pages;
    while left > 0 {
        let n = left.min(CHUNK_PAGES) as usize;
        let p = map_anon(n * PAGE);
        let t = Instant::now();
        touch_pages(p, n);
        total += t.elapsed();
        unmap(p, n * PAGE);
        left -= n as u64;
    }
    total
}

/// Time of `pages` copy-on-write faults: the parent touches its pages and forks; the child
/// writes one byte per page (each a COW fault with a 4 KiB copy), timing itself.
pub fn cow_faults(pages: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = pages;
    while left > 0 {
        let n = left.min(CHUNK_PAGES) as usize;
        let p = map_anon(n * PAGE);
        touch_pages(p, n);
        total += Duration::from_nanos(in_child(|| {
            let t = Instant::now();
            touch_pages(p, n);
            t.elapsed().as_nanos() as u64
        }));
        unmap(p, n * PAGE);
        left -= n as u64;
    }
    total
}

/// Forks; the child runs `f` and sends its result back through a pipe; the parent reaps it.
fn in_child(f: impl FnOnce() -> u64) -> u64 {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid two-int array for pipe(2).
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe failed");
    // SAFETY: fork(2); the child only writes to memory it owns, reads the clock (vDSO),
    // write(2)s and _exit(2)s: all async-signal-safe, so other threads' locks don't matter.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let v = f().to_ne_bytes();
        // SAFETY: in the child: write 8 bytes from a live buffer, then exit without
        // running the parent's destructors.
        unsafe {
            libc::write(fds[1], v.as_ptr().cast(), v.len());
            libc::_exit(0);
        }
    }
    let mut buf = [0u8; 8];
    // SAFETY: read into a live 8-byte buffer, close our pipe ends, reap the child.
    unsafe {
        libc::close(fds[1]);
        let got = libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len());
        libc::close(fds[0]);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        assert_eq!(got, 8, "the child sent no result");
    }
    u64::from_ne_bytes(buf)
}

/// Time of `n` mmap+munmap pairs of `len` bytes of anonymous memory, never touched.
pub fn mmap_munmap(n: u64, len: usize) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        let p = map_anon(len);
        unmap(p, len);
    }
    t.elapsed()
}

fn sys_brk(addr: usize) -> usize {
    // SAFETY: brk(2) only moves this process's break; we move it up by a page and back to
    // where it was, so malloc's view of the heap is unchanged afterwards.
    unsafe { libc::syscall(libc::SYS_brk, addr) as usize }
}

/// Time of `n` brk pairs: grow the break by 4 KiB, shrink it back (will-it-scale brk1).
pub fn brk_pairs(n: u64) -> Duration {
    let base = sys_brk(0);
    let t = Instant::now();
    for _ in 0..n {
        sys_brk(base + PAGE);
        sys_brk(base);
    }
    let d = t.elapsed();
    assert_eq!(sys_brk(0), base, "the break was restored");
    d
}

/// Time of `n` fork + child `_exit(0)` + waitpid.
pub fn fork_exit_wait(n: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        // SAFETY: fork(2); the child calls only _exit(2).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: leave the child at once.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: reap our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    t.elapsed()
}

/// Time of `n` fork + execv(`/bin/true`) + waitpid (lmbench lat_proc exec).
pub fn fork_exec_wait(n: u64) -> Duration {
    let path = c"/bin/true";
    let argv = [path.as_ptr(), core::ptr::null()];
    let t = Instant::now();
    for _ in 0..n {
        // SAFETY: fork(2); the child calls only execv(2) and _exit(2), with pointers to
        // static, NUL-terminated data prepared before the fork.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                libc::execv(path.as_ptr(), argv.as_ptr());
                libc::_exit(127);
            }
        }
        let mut status = 0;
        // SAFETY: reap our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    t.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_measurement_runs_and_restores_the_process() {
        let brk = sys_brk(0);
        assert!(demand_zero_faults(64) > Duration::ZERO);
        assert!(cow_faults(16) > Duration::ZERO);
        assert!(mmap_munmap(4, 1 << 20) > Duration::ZERO);
        assert!(brk_pairs(4) > Duration::ZERO);
        assert_eq!(sys_brk(0), brk);
        assert!(fork_exit_wait(2) > Duration::ZERO);
        assert!(fork_exec_wait(1) > Duration::ZERO);
    }
}
