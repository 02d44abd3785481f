/* mthp-probe: page faults the host kernel takes for small anonymous-memory patterns, one line
 * each, to check the rules in docs/large-folios.md against the running kernel. Build with
 * `cc -O1 -o mthp-probe bench/mthp-probe.c` and run it under each folio size (bench/mthp-host.sh
 * sets the knobs; PROBE=1 there runs this program too). Counts come from getrusage's minor
 * faults of this process (or of the child for the fork case). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define KIB 1024UL
#define MIB (1024UL * KIB)
#define PAGE 4096UL

static long minflt(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static char *anon(size_t len, int extra) {
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    return p;
}

static void write_pages(volatile char *p, size_t len, size_t step) {
    for (size_t off = 0; off < len; off += step) p[off] = 1;
}

static unsigned read_pages(volatile char *p, size_t len) {
    unsigned s = 0;
    for (size_t off = 0; off < len; off += PAGE) s += (unsigned)p[off];
    return s;
}

static void report(const char *what, long faults, size_t len) {
    printf("%-44s %6ld faults for %5lu pages\n", what, faults, (unsigned long)(len / PAGE));
}

int main(void) {
    long f;
    /* Where mmap puts lengths that are and are not multiples of 2 MiB. */
    char *m4 = anon(4 * MIB, 0), *m23 = anon(23 * MIB / 10, 0);
    printf("4 MiB mmap at offset %lu KiB in its 2 MiB block; 2.3 MiB mmap at offset %lu KiB\n",
           (unsigned long)(((uintptr_t)m4 % (2 * MIB)) / KIB), (unsigned long)(((uintptr_t)m23 % (2 * MIB)) / KIB));

    f = minflt(); write_pages(m4, 4 * MIB, PAGE); report("write 4 MiB mmap", minflt() - f, 4 * MIB);
    f = minflt(); write_pages(m23, 23 * MIB / 10, PAGE); report("write 2.3 MiB mmap", minflt() - f, 23 * MIB / 10);

    char *r = anon(4 * MIB, 0);
    f = minflt(); unsigned s = read_pages(r, 4 * MIB); report("read 4 MiB mmap (zero page)", minflt() - f, 4 * MIB);
    f = minflt(); write_pages(r, 4 * MIB, PAGE); report("  then write it", minflt() - f, 4 * MIB);

    char *st = anon(1 * MIB, MAP_STACK);
    f = minflt(); write_pages(st, 1 * MIB, PAGE); report("write 1 MiB MAP_STACK mmap", minflt() - f, 1 * MIB);

    char *t = anon(1 * MIB, 0);
    f = minflt(); write_pages(t, 1 * MIB, 3 * PAGE); report("write every 3rd page of 1 MiB", minflt() - f, 1 * MIB);
    f = minflt(); write_pages(t, 1 * MIB, PAGE); report("  then every page", minflt() - f, 1 * MIB);

    char *d = anon(1 * MIB, 0);
    write_pages(d, 1 * MIB, PAGE);
    madvise(d + 4 * PAGE, 1 * MIB - 8 * PAGE, MADV_DONTNEED);
    f = minflt(); write_pages(d, 1 * MIB, PAGE); report("rewrite 1 MiB after DONTNEED of its middle", minflt() - f, 1 * MIB);

    char *c = anon(4 * MIB, 0);
    write_pages(c, 4 * MIB, PAGE);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        long g = minflt();
        write_pages(c, 4 * MIB, 64 * KIB);
        long one = minflt() - g;
        g = minflt();
        write_pages(c, 4 * MIB, PAGE);
        report("child: write 1 page per 64 KiB of 4 MiB", one, 4 * MIB);
        report("  then every page", minflt() - g, 4 * MIB);
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    f = minflt(); write_pages(c, 4 * MIB, PAGE); report("parent after the child exited: write all", minflt() - f, 4 * MIB);
    return (int)(s & 1);
}
