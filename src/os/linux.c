/*
 * linux.c — the OS contract of os.h on Linux: mmap/munmap/madvise,
 * huge pages (MAP_HUGETLB, MADV_HUGEPAGE), mlock, clock_gettime, pthread
 * condition variables on CLOCK_MONOTONIC, eventfd, sched_getcpu/getcpu, the
 * NUMA topology from sysfs with raw mbind(2), and dladdr.
 */
#define _GNU_SOURCE
#include "os/os.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- memory */

static _Atomic size_t page_size;

size_t zp__os_page_size(void)
{
    /* relaxed: every thread computes the same value; a race only repeats
     * the sysconf call */
    size_t ps = atomic_load_explicit(&page_size, memory_order_relaxed);
    if (ps == 0) {
        long v = sysconf(_SC_PAGESIZE);
        ps = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&page_size, ps, memory_order_relaxed);
    }
    return ps;
}

static void *map_anon(size_t size)
{
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

void *zp__os_map(size_t size, size_t align)
{
    if (size == 0 || size > SIZE_MAX - align)
        return NULL;
    /* The kernel places new mappings next to the previous ones, so once
     * one region is aligned the next exact-size one usually is too: try
     * that first (one system call), and over-map and trim only if not. */
    char *m = map_anon(size);
    if (m == NULL || ((uintptr_t)m & (align - 1)) == 0)
        return m;
    munmap(m, size);
    size_t span = size + align;
    if ((m = map_anon(span)) == NULL)
        return NULL;
    uintptr_t start = ((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)m;
    size_t tail = span - head - size;
    if (head)
        munmap(m, head);
    if (tail)
        munmap((char *)start + size, tail);
    return (void *)start;
}

void zp__os_unmap(void *ptr, size_t size)
{
    munmap(ptr, size);
}

int zp__os_purge(void *ptr, size_t size)
{
    return madvise(ptr, size, MADV_DONTNEED) == 0 ? 0 : -errno;
}

/* ------------------------------------------------------------ huge pages */

static _Atomic size_t huge_page_size;

size_t zp__os_huge_page_size(void)
{
    /* relaxed: as page_size, every thread reads the same value */
    size_t hs = atomic_load_explicit(&huge_page_size, memory_order_relaxed);
    if (hs == 0) {
        hs = (size_t)2 << 20;
        int fd = open("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
                      O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char buf[32];
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (n > 0) {
                buf[n] = '\0';
                unsigned long long v = strtoull(buf, NULL, 10);
                if (v >= zp__os_page_size() && (v & (v - 1)) == 0)
                    hs = (size_t)v;
            }
        }
        atomic_store_explicit(&huge_page_size, hs, memory_order_relaxed);
    }
    return hs;
}

/* When MAP_HUGETLB last failed (monotonic ns), 0 if never: relaxed, a
 * hint only (a race makes one more attempt or one fewer). */
static _Atomic uint64_t hugetlb_failed_ns;

void *zp__os_map_huge(size_t size, size_t align)
{
#ifdef MAP_HUGETLB
    uint64_t failed = atomic_load_explicit(&hugetlb_failed_ns, memory_order_relaxed);
    uint64_t now = zp__os_now_coarse_ns();
    if (align <= zp__os_huge_page_size() &&
        (failed == 0 || now - failed >= 1000000000u)) {
        /* the kernel aligns hugetlb mappings to their page size; name
         * that size, the default hugetlb size may be another (1 GiB) */
        int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB;
#ifdef MAP_HUGE_SHIFT
        flags |= __builtin_ctzll((unsigned long long)zp__os_huge_page_size()) << MAP_HUGE_SHIFT;
#endif
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, -1, 0);
        if (m != MAP_FAILED)
            return m;
        atomic_store_explicit(&hugetlb_failed_ns, now ? now : 1, memory_order_relaxed);
    }
#endif
    void *m = zp__os_map(size, align);
    /* before any page is touched, so the first fault of each aligned huge
     * page already takes a huge page; a kernel without THP says EINVAL,
     * and the region simply stays in small pages */
    if (m != NULL)
        (void)zp__os_advise_huge(m, size);
    return m;
}

int zp__os_advise_huge(void *ptr, size_t size)
{
#ifdef MADV_HUGEPAGE
    if (size == 0)
        return 0;
    return madvise(ptr, size, MADV_HUGEPAGE) == 0 ? 0 : -errno;
#else
    (void)ptr;
    (void)size;
    return -EINVAL;
#endif
}

/* ---------------------------------------------------------- locked memory */

/* The system calls themselves, not the libc wrappers: the ASan and TSan
 * runtimes intercept mlock and munlock as no-ops (sanitizer_common's
 * "mlock is unsupported"), and a pool asked to lock its memory must lock it,
 * and meet RLIMIT_MEMLOCK, in those builds too. */
int zp__os_lock(void *ptr, size_t size)
{
    return syscall(SYS_mlock, ptr, size) == 0 ? 0 : -errno;
}

void zp__os_unlock(void *ptr, size_t size)
{
    (void)syscall(SYS_munlock, ptr, size);
}

size_t zp__os_lock_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > SIZE_MAX)
        return SIZE_MAX;
    return (size_t)rl.rlim_cur;
}

/* ------------------------------------------------------------------ time */

static uint64_t ts_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

uint64_t zp__os_now_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* vDSO: no system call */
    return ts_ns(&ts);
}

uint64_t zp__os_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts_ns(&ts);
}

/* ------------------------------------------------ condition variables */

int zp__os_mutex_init_short(pthread_mutex_t *m)
{
    pthread_mutexattr_t attr;
    int rc = pthread_mutexattr_init(&attr);
    if (rc)
        return -rc;
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    (void)pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    rc = pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    return -rc;
}

int zp__os_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc)
        return -rc;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
    return -rc;
}

int zp__os_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mutex, uint64_t deadline_ns)
{
    if (deadline_ns == UINT64_MAX)
        return -pthread_cond_wait(cv, mutex);
    struct timespec ts = {(time_t)(deadline_ns / 1000000000u),
                          (long)(deadline_ns % 1000000000u)};
    int rc = pthread_cond_timedwait(cv, mutex, &ts);
    return rc == ETIMEDOUT ? -ETIMEDOUT : 0;
}

/* --------------------------------------------------------------- eventfd */

int zp__os_event_open(void)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

int zp__os_event_signal(int fd)
{
    uint64_t one = 1;
    for (;;) {
        if (write(fd, &one, sizeof one) == (ssize_t)sizeof one)
            return 0;
        if (errno == EAGAIN)
            return 0; /* the counter is at its maximum: still readable */
        if (errno != EINTR)
            return -errno;
    }
}

uint64_t zp__os_event_drain(int fd)
{
    uint64_t n = 0;
    for (;;) {
        if (read(fd, &n, sizeof n) == (ssize_t)sizeof n)
            return n;
        if (errno != EINTR)
            return 0; /* EAGAIN: nothing pending */
    }
}

void zp__os_event_close(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* ------------------------------------------------------------ processor */

void zp__os_yield(void)
{
    sched_yield();
}

int zp__os_current_cpu(void)
{
    return sched_getcpu();
}

/* ------------------------------------------------------------------ NUMA */

#define NODE_ID_MAX 1024  /* node ids above this are ignored (none exist) */
#define CPU_MAX 8192      /* CPUs above this count as node index 0 */

static zp__os_topology topo;
static int8_t node_index_of[NODE_ID_MAX]; /* node id -> index, or -1 */
static bool topo_truncated;               /* more online nodes than indexes */
static uint8_t cpu_node_index[CPU_MAX];
static pthread_once_t topo_once = PTHREAD_ONCE_INIT;

/* Reads a small sysfs file into buf (NUL-terminated); false if absent. */
static bool read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n;
    do
        n = read(fd, buf, len - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* Calls fn(i, arg) for every number of a sysfs list ("0-3,8,10-11"). */
static void each_in_list(const char *s, void (*fn)(long i, void *arg), void *arg)
{
    while (*s) {
        char *end;
        long lo = strtol(s, &end, 10), hi = lo;
        if (end == s)
            break;
        s = end;
        if (*s == '-') {
            hi = strtol(s + 1, &end, 10);
            if (end == s + 1)
                break;
            s = end;
        }
        for (long i = lo; i <= hi && i >= 0; i++)
            fn(i, arg);
        while (*s == ',' || *s == '\n' || *s == ' ')
            s++;
    }
}

static void add_node(long id, void *arg)
{
    (void)arg;
    if (id < NODE_ID_MAX && topo.nnodes == ZP__MAX_NODES && node_index_of[id] < 0)
        topo_truncated = true;
    if (id < NODE_ID_MAX && topo.nnodes < ZP__MAX_NODES && node_index_of[id] < 0) {
        node_index_of[id] = (int8_t)topo.nnodes;
        topo.ids[topo.nnodes++] = (int)id;
    }
}

static void add_cpu(long cpu, void *arg)
{
    if (cpu < CPU_MAX) {
        cpu_node_index[cpu] = (uint8_t)(uintptr_t)arg;
        if (cpu + 1 > topo.ncpus)
            topo.ncpus = (int)cpu + 1;
    }
}

/* Once per process: the online nodes and which CPUs each has (online or
 * not: an offline CPU runs nothing, and a CPU outside the calling thread's
 * cpuset is still on its node). A node whose cpulist is empty or missing
 * has no CPUs: listed all the same. Too many nodes: one node. */
static void topology_read(void)
{
    static char buf[16384];
    memset(node_index_of, -1, sizeof node_index_of);
    if (read_small("/sys/devices/system/node/online", buf, sizeof buf))
        each_in_list(buf, add_node, NULL);
    if (topo.nnodes == 0 || topo_truncated) {
        memset(node_index_of, -1, sizeof node_index_of);
        topo.nnodes = 1;
        topo.ids[0] = 0;
        node_index_of[0] = 0;
        topo.ncpus = 0;
        topo.cpu_index = cpu_node_index;
        return;
    }
    for (int k = 0; k < topo.nnodes; k++) {
        char path[80];
        snprintf(path, sizeof path, "/sys/devices/system/node/node%d/cpulist", topo.ids[k]);
        if (read_small(path, buf, sizeof buf))
            each_in_list(buf, add_cpu, (void *)(uintptr_t)k);
    }
    topo.cpu_index = cpu_node_index;
}

const zp__os_topology *zp__os_topology_get(void)
{
    pthread_once(&topo_once, topology_read);
    return &topo;
}

int zp__os_node_index(int node)
{
    zp__os_topology_get();
    return node >= 0 && node < NODE_ID_MAX ? node_index_of[node] : -1;
}

unsigned zp__os_current_node_index(void)
{
    const zp__os_topology *t = zp__os_topology_get();
    if (t->nnodes == 1)
        return 0;
    unsigned cpu = 0, node = 0;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    /* the vDSO's getcpu: the kernel's own CPU -> node answer */
    if (getcpu(&cpu, &node) == 0)
        return node < NODE_ID_MAX && node_index_of[node] >= 0 ? (unsigned)node_index_of[node]
                                                              : 0;
#endif
    int c = sched_getcpu();
    (void)node;
    cpu = c >= 0 ? (unsigned)c : 0;
    return cpu < (unsigned)t->ncpus ? t->cpu_index[cpu] : 0;
}

/* mbind(2)'s modes and flags (numaif.h is libnuma's header, not needed) */
#define ZP_MPOL_PREFERRED 1
#define ZP_MPOL_BIND 2

int zp__os_bind(void *ptr, size_t size, int node, bool strict)
{
#ifdef SYS_mbind
    unsigned long mask[NODE_ID_MAX / (8 * sizeof(unsigned long))] = {0};
    if (node < 0 || node >= NODE_ID_MAX)
        return -EINVAL;
    mask[node / (8 * sizeof(unsigned long))] |= 1ul << (node % (8 * sizeof(unsigned long)));
    long rc = syscall(SYS_mbind, ptr, size, strict ? ZP_MPOL_BIND : ZP_MPOL_PREFERRED, mask,
                      (unsigned long)NODE_ID_MAX, 0u);
    return rc == 0 ? 0 : -errno;
#else
    (void)ptr, (void)size, (void)node, (void)strict;
    return -ENOSYS;
#endif
}

int zp__os_node_of_addr(const void *ptr)
{
#ifdef SYS_get_mempolicy
    int node = -1;
    /* MPOL_F_NODE (1) | MPOL_F_ADDR (2) */
    if (syscall(SYS_get_mempolicy, &node, NULL, 0ul, ptr, 3ul) != 0)
        return -errno;
    return node;
#else
    (void)ptr;
    return -ENOSYS;
#endif
}

/* ----------------------------------------------------------- debugging */

bool zp__os_symbolize(const void *addr, zp__os_symbol *out)
{
    Dl_info info;
    if (addr == NULL || !dladdr((void *)(uintptr_t)addr, &info) || info.dli_fname == NULL)
        return false;
    out->file = info.dli_fname;
    out->base = (uintptr_t)info.dli_fbase;
    out->name = info.dli_sname;
    return true;
}
