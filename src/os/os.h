/*
 * os.h — everything the engine asks of the operating system, and nothing
 * else: no file outside src/os/ makes a system call or uses a libc wrapper
 * of one (mmap, madvise, sysconf, clock_gettime, eventfd, dladdr, ...).
 *
 * The contract, stated once:
 *   - functions that can fail return 0 or a negative errno (pointers: NULL)
 *     and never print, abort or set a detail for zp_strerror: callers decide
 *     what a failure means;
 *   - every function is thread-safe and async-signal-unsafe;
 *   - sizes passed to map/unmap/purge are multiples of the page size and
 *     addresses are page-aligned (the engine only deals in slabs and
 *     grains, which are).
 * One implementation: src/os/linux.c (Linux, glibc or musl).
 */
#ifndef ZP_OS_H
#define ZP_OS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- memory */

/* The page size (cached after the first call). */
size_t zp__os_page_size(void);

/* Anonymous, private, read-write memory of size bytes, aligned to align (a
 * power of two >= the page size), zero-filled; NULL on failure. Costs one
 * system call when the kernel's placement is already aligned, three
 * otherwise. */
void *zp__os_map(size_t size, size_t align);

/* Returns what zp__os_map gave (any page-aligned part of it). */
void zp__os_unmap(void *ptr, size_t size);

/* Releases the pages of [ptr, ptr+size) but keeps the range mapped: the next
 * touch faults in zero pages. 0 or -errno. */
int zp__os_purge(void *ptr, size_t size);

/* ------------------------------------------------------------ huge pages */

/* The size of a transparent huge page (a PMD mapping: 2 MiB on x86-64),
 * read once from /sys/kernel/mm/transparent_hugepage/hpage_pmd_size; 2 MiB
 * when that cannot be read. */
size_t zp__os_huge_page_size(void);

/* Memory as zp__os_map gives it, for a region meant to be backed by huge
 * pages: size and align are multiples of zp__os_huge_page_size(). First
 * tries reserved huge pages of that size (MAP_HUGETLB, all reserved at the
 * call: no fault can fail later); when none are free it maps ordinary memory and
 * advises it MADV_HUGEPAGE (transparent huge pages, the kernel's
 * "madvise" mode). After a MAP_HUGETLB refusal it does not try again for
 * a second, so a machine without reserved pages pays one failed call per
 * second at most, not one per region. NULL on failure. */
void *zp__os_map_huge(size_t size, size_t align);

/* Advises [ptr, ptr+size) MADV_HUGEPAGE (ptr aligned to the huge page
 * size, before any page is touched): with transparent huge pages in
 * "always" or "madvise" mode each aligned huge page is then faulted in
 * whole. 0 or -errno (EINVAL: a kernel without THP). */
int zp__os_advise_huge(void *ptr, size_t size);

/* ---------------------------------------------------------- locked memory */

/* Locks [ptr, ptr+size) in RAM (mlock: every page faulted in now and never
 * swapped out) until zp__os_unlock or unmap. 0 or -errno (ENOMEM or
 * EAGAIN: RLIMIT_MEMLOCK refuses, or the system cannot; EPERM: locking
 * not allowed). */
int zp__os_lock(void *ptr, size_t size);
void zp__os_unlock(void *ptr, size_t size);

/* The calling process's RLIMIT_MEMLOCK soft limit in bytes (SIZE_MAX:
 * unlimited or unreadable): for error messages. */
size_t zp__os_lock_limit(void);

/* ------------------------------------------------------------------ time */

/* Monotonic nanoseconds, coarse (a few ms resolution) and cheap (vDSO, no
 * system call): for decay epochs. */
uint64_t zp__os_now_coarse_ns(void);

/* Monotonic nanoseconds, precise: for deadlines. */
uint64_t zp__os_now_ns(void);

/* --------------------------------------------------------------- mutexes */

/* A mutex for short critical sections (a few list or counter updates): on
 * contention it spins a little before sleeping (glibc's adaptive kind),
 * so a thread rarely goes to sleep on a lock its holder is about to drop.
 * 0 or -errno. */
int zp__os_mutex_init_short(pthread_mutex_t *m);

/* ------------------------------------------------ condition variables */

/* A condition variable whose timed waits use the monotonic clock, so a
 * change of wall-clock time does not stretch or cut a wait. 0 or -errno. */
int zp__os_cond_init(pthread_cond_t *cv);

/* Waits on cv (mutex held) until signalled or the monotonic clock reaches
 * deadline_ns (UINT64_MAX: no deadline). 0, or -ETIMEDOUT. Spurious wake-ups
 * return 0: callers re-check their condition. */
int zp__os_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mutex, uint64_t deadline_ns);

/* --------------------------------------------------------------- eventfd */

/* A non-blocking, close-on-exec event counter an event loop can poll
 * (readable while signalled). The descriptor, or -errno. */
int zp__os_event_open(void);
/* Makes it readable (adds 1). 0 or -errno (never blocks). */
int zp__os_event_signal(int fd);
/* Consumes every pending signal; returns how many there were (0 if none). */
uint64_t zp__os_event_drain(int fd);
void zp__os_event_close(int fd);

/* ------------------------------------------------------------ processor */

/* Lets another thread run (a short wait for one that holds something). */
void zp__os_yield(void);

/* The CPU the calling thread runs on right now (a hint), or -1. */
int zp__os_current_cpu(void);

/* ------------------------------------------------------------------ NUMA */

/* Most NUMA nodes a pool keeps apart (node indexes are tagged into the low
 * bits of a cache-line-aligned pool pointer: 6 bits). A machine with more
 * online nodes is served as one node. */
#define ZP__MAX_NODES 64

/* The machine's online NUMA nodes, read once from sysfs
 * (/sys/devices/system/node/online and node<N>/cpulist): ids[0 .. n) in
 * ascending order (not necessarily contiguous: 0, 2, 5 is fine), and the
 * dense index of a node id. Nodes without CPUs are listed (memory-only
 * nodes). Without the sysfs directory (containers, non-NUMA kernels) the
 * machine is one node, id 0. */
typedef struct zp__os_topology {
    int nnodes;                  /* >= 1 */
    int ids[ZP__MAX_NODES];      /* node id of each index */
    int ncpus;                   /* entries in cpu_index */
    const uint8_t *cpu_index;    /* CPU number -> node index (0 when unknown) */
} zp__os_topology;
const zp__os_topology *zp__os_topology_get(void);

/* Index (into the topology's ids) of node id, or -1 if it is not online. */
int zp__os_node_index(int node);

/* Index of the node the calling thread runs on right now (a hint: the
 * thread may migrate); 0 when unknown. No system call where the vDSO
 * serves getcpu (x86-64, arm64). */
unsigned zp__os_current_node_index(void);

/* Sets the memory policy of [ptr, ptr+size) before its first touch so its
 * pages are placed on node id: strict = MPOL_BIND (the pages come from that
 * node or the fault fails), else MPOL_PREFERRED (that node while it has free
 * memory, another otherwise). Raw mbind(2); no libnuma. 0 or -errno (a
 * kernel without NUMA support: -ENOSYS). */
int zp__os_bind(void *ptr, size_t size, int node, bool strict);

/* The node id the page at ptr is on (get_mempolicy(MPOL_F_NODE |
 * MPOL_F_ADDR): faults the page in if it was never touched), or -errno. */
int zp__os_node_of_addr(const void *ptr);

/* ----------------------------------------------------------- debugging */

/* Where code address addr lies: the object file, its load base and the
 * nearest symbol (NULL when unknown). false if nothing is known. */
typedef struct zp__os_symbol {
    const char *file;
    uintptr_t base;
    const char *name;
} zp__os_symbol;
bool zp__os_symbolize(const void *addr, zp__os_symbol *out);

#endif /* ZP_OS_H */
