/*
 * zeropool — a C11 buffer pool: reusable memory buffers handed out faster than
 * any general allocator, with out-of-line metadata, per-thread caches over a
 * shared depot, and misuse detection.
 *
 * Error convention (the same everywhere in this library):
 *   - functions that create or configure things return 0 on success or a
 *     negative errno value (-EINVAL, -ENOMEM, ...). zp_strerror() turns any of
 *     them into text; after a failed call, zp_strerror() on the same thread
 *     returns the precise reason (e.g. which config field was wrong).
 *   - zp_get() returns NULL and sets errno (ENOMEM: the provider/OS refused
 *     memory; EOVERFLOW: the size can never be served, e.g. SIZE_MAX).
 *   - misuse that would corrupt memory (a pointer that is not the pool's own,
 *     a buffer put twice) is never trusted: it is reported to the misuse
 *     handler (zp_set_misuse_handler), whose default prints the details and
 *     aborts. If a handler returns, the offending call is ignored and the pool
 *     stays consistent.
 *
 * A NULL pool (or cache handle) is an invalid argument everywhere and is
 * never dereferenced: functions returning int return -EINVAL, zp_get,
 * zp_get_timed and zp_cache_get return NULL with errno EINVAL, zp_capacity
 * and zp_trim return 0, zp_pool_name returns NULL, and functions returning
 * nothing (zp_put, zp_put_batch, zp_stats_reset, zp_pool_destroy and their
 * zp_cache_* twins) do nothing: a buffer passed with a NULL pool stays the
 * caller's, still valid, to be put on its own pool.
 *
 * Thread safety: every function taking a zp_pool may be called from any
 * thread concurrently, except zp_pool_destroy(), which must not race with
 * other calls on the same pool (threads that used the pool may still be alive;
 * they must simply have stopped using it).
 *
 * fork(): in the child, the forking thread may keep using every pool and
 * create new ones (pthread_atfork handlers hold the pools' locks across the
 * fork); buffers cached or held by the parent's other threads are lost to
 * the child, not corrupted; budget waiters and decay threads of the parent
 * do not exist in the child.
 */
#ifndef ZEROPOOL_H
#define ZEROPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- version
 *
 * The version of this header. The library (zp_version), its pkg-config
 * files, its CMake package and its manual pages carry the same. Before 1.0
 * a minor release may change the ABI, so the soname carries the minor
 * (libzeropool.so.0.2); from 1.0 on, the major. Every function is exported
 * under the symbol version of the release that added it (ZEROPOOL_0.1,
 * ZEROPOOL_0.2, ...). CHANGELOG.md says what each release changed.
 */

#define ZP_VERSION_MAJOR 0
#define ZP_VERSION_MINOR 2
#define ZP_VERSION_PATCH 0
#define ZP_VERSION_NUMBER \
    (ZP_VERSION_MAJOR * 10000 + ZP_VERSION_MINOR * 100 + ZP_VERSION_PATCH)
#define ZP_VERSION_STRING "0.2.0"

/* ----------------------------------------------------------- export macro */

#if defined(ZP_STATIC_DEFINE)
#define ZP_API
#elif defined(_WIN32)
#define ZP_API __declspec(dllimport)
#else
#define ZP_API __attribute__((visibility("default")))
#endif

/* Version of the library actually linked (compare with ZP_VERSION_NUMBER). */
ZP_API unsigned zp_version(void);
ZP_API const char *zp_version_string(void);

/* ----------------------------------------------------------- opaque types */

typedef struct zp_pool zp_pool;
typedef struct zp_budget zp_budget;

/* ------------------------------------------------------------ lifecycle */

/*
 * Provider: how the pool obtains and releases regions (slabs and oversize
 * buffers). Every byte the pool holds comes from map() and goes back through
 * unmap() with the same size. map() must return memory aligned to `align`
 * (a power of two, at least the page size) or NULL on failure; it is called
 * on slow paths only, possibly from several threads at once. Leave map and
 * unmap NULL for the default (anonymous mmap).
 */
typedef struct zp_provider {
    void *(*map)(size_t size, size_t align, void *ctx); /* may call
                               zp_provider_node() for the NUMA node the
                               region is for */
    void (*unmap)(void *ptr, size_t size, void *ctx);
    void *ctx;
} zp_provider;

/* Flags for zp_config.flags. */
#define ZP_ZERO_ON_GET 0x1u /* every buffer's full capacity is zeroed on get */
#define ZP_WIPE_ON_PUT 0x2u /* every buffer's full capacity is wiped on put
                               (a wipe the compiler cannot remove) */
#define ZP_DECAY_THREAD 0x4u /* a background thread drives decay (see
                                decay_ms) even when the pool is idle */
#define ZP_HUGE_PAGES 0x8u /* slabs on huge pages (see below) */
#define ZP_LOCKED 0x10u     /* slabs locked in RAM (mlock, see below) */

/*
 * ZP_HUGE_PAGES: the pool's memory is laid out for huge pages, whose size H
 * is the kernel's PMD huge page (2 MiB on x86-64, read from
 * /sys/kernel/mm/transparent_hugepage/hpage_pmd_size):
 *   - every slab is a whole number of H and aligned to H: a class of H or
 *     more has slabs of one buffer (its size, a multiple of H); smaller
 *     classes are grouped so that each slab fills exactly one H (e.g. eight
 *     256 KiB buffers, 512 of 4 KiB), so a class in use costs at least H;
 *     an object pool's slab is its usual length rounded up to a multiple
 *     of H. Oversize regions of H or more are aligned to H (their length
 *     is not rounded: a tail below a multiple of H stays in small pages);
 *   - the provider is asked for that alignment (zp_provider.map's align is
 *     H): a custom provider decides itself how to back the region. The
 *     default provider first tries reserved huge pages (MAP_HUGETLB of size
 *     H, when the system has free ones in /proc/sys/vm/nr_hugepages), and
 *     otherwise maps ordinary memory advised MADV_HUGEPAGE, so that with
 *     transparent huge pages in "always" or "madvise" mode each aligned H
 *     is faulted in as one huge page at its first touch (if the kernel has
 *     a free one; else in small pages, collapsed later by khugepaged). With
 *     THP "never" and no reserved pages the flag changes only the layout;
 *   - idle memory never splits a huge page the pool still uses: a buffer's
 *     pages are released (madvise MADV_DONTNEED by zp_trim, the retention
 *     cap and decay) only when the buffer is whole huge pages (classes of H
 *     and more); smaller classes give memory back only by unmapping wholly
 *     idle slabs, which are one H each.
 * Budgets, stats and zp_capacity count bytes as without the flag (a slab
 * counts its full length). The hot path is unchanged.
 *
 * ZP_LOCKED: every slab and oversize region is locked in RAM with mlock
 * right after it is mapped (all its pages faulted in then: the get that
 * maps a slab pays for the whole slab) and stays locked until it is
 * unmapped (munlock, then unmap; also with a custom provider). Idle pages
 * of a locked pool are never released by madvise: only wholly idle slabs
 * go back (zp_trim, retention cap, decay). When the lock is refused
 * (RLIMIT_MEMLOCK, see ulimit -l, without CAP_IPC_LOCK) the region is
 * unmapped and its budget released at once, and the get fails with
 * ENOMEM; zp_strerror(ENOMEM) then names the limit and the bytes asked
 * for. Locked pages are not inherited by a fork()ed child.
 */

/*
 * Debug levels (zp_config.debug; the environment variable ZEROPOOL_DEBUG=N,
 * read at pool creation, overrides it):
 *   0  release: the O(1) foreign-pointer check on every put stays on
 *      (pointers not from this pool, interior pointers, another pool's
 *      buffers, and slots of a slab the pool never carved:
 *      ZP_MISUSE_FOREIGN). A slot carved into a thread cache but never got,
 *      like a buffer put twice, is only caught from level 1.
 *   1  also: a buffer put while not handed out (put twice, or carved but
 *      never got) is ZP_MISUSE_DOUBLE_PUT, using one bit of per-buffer state
 *      in the slab metadata; an oversize buffer put twice is DOUBLE_PUT too
 *      (the pool remembers the last 1024 oversize buffers it released);
 *      another pool's buffer is ZP_MISUSE_WRONG_POOL.
 *      Gets and puts take the checked path (one atomic bit operation each).
 *      At level 0 a double put is NOT detected: the buffer would later be
 *      handed out twice.
 *   2  also: use after put. A put buffer is filled with the poison byte
 *      ZP_POISON_BYTE (and, in ASan builds, poisoned so a stray access
 *      faults at the offending instruction); the next get of it verifies
 *      the pattern and reports ZP_MISUSE_CORRUPTED with the first modified
 *      offset. Pages of idle buffers are never released (madvise would
 *      erase the pattern); only wholly idle slabs are unmapped. At destroy,
 *      every outstanding buffer is listed with the code address that got it
 *      (resolve it with addr2line -e <binary> <offset>). Costs a fill and a
 *      scan of the whole buffer per put/get, and 8 bytes per buffer.
 */
#define ZP_DEBUG_MAX 2
#define ZP_POISON_BYTE 0xDB

typedef struct zp_config {
    size_t struct_size;  /* set by zp_config_init(); lets the struct grow */
    size_t min_class;    /* smallest buffer class in bytes: power of two,
                            64 .. max_class. Default 4096 (one page: every
                            buffer page-aligned, O_DIRECT ready). */
    size_t max_class;    /* largest class: power of two, <= 1 GiB. Larger
                            requests are oversize: mapped on get, unmapped on
                            put. Default 64 MiB. */
    unsigned cache_depth; /* most buffers kept per class in each cache
                             (thread cache or handle); 0 disables thread
                             caches (every get/put then takes the depot
                             lock). Max 65536. Default 256. A cache's bin
                             holds up to 32 (or cache_depth, if smaller)
                             and adapts: a bin that overflows right after
                             it was refilled (a burst of gets then puts
                             larger than it) grows by a magazine (16), up to
                             cache_depth (and cache_bytes), instead of
                             giving to the depot what the next burst would
                             take back; a drain (zp_trim, zp_cache_flush,
                             thread exit) shrinks it to its start. From the
                             bench's depth sweep (64 KiB buffers, bursts of
                             k gets then k puts, median ns per op, 2-core
                             VM) at fixed depth 16 / 32 / 64: k=16: 5.7 /
                             5.6 / 5.6; k=48: 10.4 / 7.1 / 6.1; k=128:
                             11.7 / 8.5 / 7.2: a deep bin helps bursts, a
                             small one saves memory where there are none. */
    size_t cache_bytes;  /* byte cap per class per thread cache: a class of
                            size S keeps at most max(1, cache_bytes / S)
                            buffers (and never more than cache_depth).
                            0 = no byte cap. Default 64 MiB, so one thread
                            keeps 16 x 4 MiB or 1 x 64 MiB, not 32 x 64 MiB. */
    unsigned flags;      /* ZP_ZERO_ON_GET | ZP_WIPE_ON_PUT |
                            ZP_DECAY_THREAD | ZP_HUGE_PAGES | ZP_LOCKED;
                            default 0; unknown bits are -EINVAL */
    int debug;           /* debug level, see above; default 0 */
    zp_provider provider; /* default: mmap */
    const char *name;    /* label in stats output, copied: 1 .. ZP_NAME_MAX-1
                            characters of [A-Za-z0-9_.:-]; NULL: "poolN"
                            with N unique in the process */
    zp_budget *budget;   /* shared byte budget (zp_budget_create), or NULL.
                            The pool holds a reference: the budget lives
                            until it is destroyed and all its pools are. */
    size_t max_bytes;    /* without `budget`: a private budget of this many
                            bytes; 0 = unbounded. Setting both is -EINVAL. */
    size_t max_cached_bytes; /* retention cap: idle bytes resident in the
                            depot above this are given back to the provider
                            (slabs unmapped, or pages of idle buffers
                            released with madvise). Each thread cache keeps
                            its own at most cache_bytes per class on top.
                            Default SIZE_MAX (no cap). */
    unsigned decay_ms;   /* idle memory untouched for this long is given
                            back, driven from the pool's slow paths (and by
                            a background thread with ZP_DECAY_THREAD).
                            0 = off (default). */
    int numa;            /* memory placement on NUMA machines (0.2):
                            ZP_NUMA_LOCAL (default): a depot set per node;
                            a thread gets buffers of the node it runs on,
                            slabs are bound (MPOL_PREFERRED) to the node
                            whose thread needs them, and a buffer put on
                            another node goes back to its own; on a
                            one-node machine nothing changes. ZP_NUMA_NONE:
                            one depot set, no binding (the kernel's first
                            touch). ZP_NUMA_BIND: one depot set, every slab
                            bound (MPOL_BIND) to numa_node. See the NUMA
                            section below. */
    int numa_node;       /* ZP_NUMA_BIND: the node id (an online node);
                            ignored otherwise. Default 0. */
} zp_config;

/* zp_config.numa */
#define ZP_NUMA_LOCAL 0
#define ZP_NUMA_NONE 1
#define ZP_NUMA_BIND 2

#define ZP_NAME_MAX 64

/* Fills *cfg with the defaults above (and struct_size). Thread-safe. */
ZP_API void zp_config_init(zp_config *cfg);

/*
 * Creates a pool. cfg NULL means defaults; cfg must otherwise come from
 * zp_config_init(). Returns 0 and sets *out, or -EINVAL (invalid config: the
 * reason is in zp_strerror(-EINVAL) on this thread; nothing is silently
 * adjusted) or -ENOMEM. Thread-safe. The caller owns the pool.
 *
 * cfg->struct_size must be the size of a zp_config this library knows: the
 * current one, or an older header's (which ends after provider, name,
 * budget, max_bytes, max_cached_bytes or decay_ms; the fields after it take
 * their defaults, so a 0.1 caller gets ZP_NUMA_LOCAL), or a newer header's
 * whose extra fields are all zero. A numa value other than ZP_NUMA_*, or
 * ZP_NUMA_BIND with a numa_node that is not an online node, is -EINVAL.
 * Any other size (one ending inside a field) is -EINVAL.
 *
 * At most 65536 pools with thread caches (cache_depth > 0) can be live at
 * once in a process (each takes a slot in every thread's cache table);
 * beyond that zp_pool_create returns -ENOMEM and zp_strerror says so.
 * Destroying a pool frees its slot. Pools with cache_depth 0 do not count.
 */
ZP_API int zp_pool_create(const zp_config *cfg, zp_pool **out);

/*
 * Destroys a pool: reclaims every thread's cached buffers and unmaps every
 * slab. Buffers still outstanding are reported on stderr (count and bytes per
 * class) and become invalid. Must not race with any other call on this pool;
 * threads that used it may still be alive. NULL is a no-op.
 */
ZP_API void zp_pool_destroy(zp_pool *pool);

/* ---------------------------------------------------------------- budget */

/*
 * A byte budget that one or more pools draw from (zp_config.budget).
 * bytes_reserved of all its pools together never exceeds max_bytes, not even
 * for a moment: bytes are reserved before the provider maps them and
 * released after it unmaps them. When a get would exceed it, the pool first
 * gives back its own idle memory (depot and the calling thread's cache) and
 * retries; then zp_get fails with ENOBUFS (zp_get_timed waits instead).
 * Memory idle in ANOTHER live thread's cache (put there before anyone
 * waited) stays out of reach until that thread returns it: its next slow
 * path, zp_trim, or its exit. Where threads that go idle share a tight
 * budget with waiters, give them handles and zp_cache_flush, or use
 * cache_depth 0.
 *
 * zp_budget_create returns 0 and sets *out, -EINVAL (out NULL or max_bytes
 * 0) or -ENOMEM. Thread-safe. The caller owns the budget.
 */
ZP_API int zp_budget_create(size_t max_bytes, zp_budget **out);
/* Drops the creator's reference; the budget is freed once no pool uses it.
 * NULL is a no-op. */
ZP_API void zp_budget_destroy(zp_budget *budget);

typedef struct zp_budget_stats {
    size_t struct_size;     /* set by the caller to sizeof(zp_budget_stats) */
    uint64_t max_bytes;
    uint64_t bytes_reserved;
    uint64_t peak_reserved;
    uint64_t failed_gets;   /* gets that failed with ENOBUFS or ETIMEDOUT */
    uint64_t waited_gets;   /* zp_get_timed calls and zp_get_async requests
                               that had to wait */
    uint64_t waiters;       /* waiting right now */
} zp_budget_stats;

/* Reads a budget's figures; out->struct_size must be set (fields beyond it
 * are not written). Returns 0 or -EINVAL (a NULL argument, or a struct_size
 * that does not reach waited_gets). Thread-safe. */
ZP_API int zp_budget_read(zp_budget *budget, zp_budget_stats *out);

/* ------------------------------------------------------------- hot path */

/*
 * Returns a buffer of capacity >= size (size 0: the smallest class), aligned
 * to min(capacity, page size) at least. Sizes above max_class are served as
 * oversize straight from the provider. On failure returns NULL with errno
 * ENOMEM, EOVERFLOW, ENOBUFS (budget) or EINVAL (pool NULL). Thread-safe;
 * no malloc and no system call once the thread's cache and the depot are
 * warm. The caller owns the buffer until zp_put().
 */
ZP_API void *zp_get(zp_pool *pool, size_t size);

/*
 * Returns a buffer to its pool. NULL is a no-op. Any buffer of the pool may
 * be put from any thread. A pointer that is not a live buffer of this pool
 * goes to the misuse handler and is otherwise ignored. Thread-safe.
 */
ZP_API void zp_put(zp_pool *pool, void *buf);

/*
 * Takes n buffers of capacity >= size, all or nothing: returns 0 with
 * bufs[0..n) filled, or a negative errno (-ENOMEM, -ENOBUFS when the budget
 * has no room even after giving back the pool's idle memory, -EOVERFLOW,
 * -EINVAL for bufs NULL with n > 0) with no buffer taken. Served from the calling
 * thread's cache, refilled from the depot with one lock acquisition per
 * batch; a batch larger than the cache goes to the depot directly. Sizes
 * above max_class are mapped one by one. n == 0 returns 0. Thread-safe.
 */
ZP_API int zp_get_batch(zp_pool *pool, size_t size, void **bufs, size_t n);

/*
 * Returns n buffers (of any classes, got on any threads) to the pool. NULL
 * entries are skipped; a pointer that is not a live buffer of this pool goes
 * to the misuse handler and the rest are still returned. At most one depot
 * lock acquisition per run of same-class buffers. Thread-safe.
 */
ZP_API void zp_put_batch(zp_pool *pool, void *const *bufs, size_t n);

/*
 * Like zp_get, but when the pool's budget is exhausted waits (sleeping, no
 * spinning) until a put or a trim on the same budget makes room, at most
 * timeout_ms milliseconds (-1: forever; 0: never waits). Waiters are served
 * in arrival order: while any wait, plain gets that need new memory from
 * the budget fail with ENOBUFS instead of overtaking them, and a buffer put
 * (zp_put, zp_put_batch, zp_cache_put) of the size class the first waiter
 * needs from that pool is handed to it, not to whoever gets next. Returns NULL
 * with errno ETIMEDOUT when the time passed, ENOBUFS at once when the
 * request is larger than the whole budget or timeout_ms is 0 (no wait), or
 * as zp_get. Thread-safe.
 */
ZP_API void *zp_get_timed(zp_pool *pool, size_t size, int timeout_ms);

/*
 * Gives idle memory back until at most keep_bytes of idle memory stays
 * resident in the depot (the calling thread's cache for this pool is
 * flushed to the depot first; other threads' caches are not touched).
 * Slabs whose buffers are all idle are unmapped; idle buffers of at least a
 * page in other slabs have their pages released (madvise). Returns the
 * bytes given back. Thread-safe.
 */
ZP_API size_t zp_trim(zp_pool *pool, size_t keep_bytes);

/*
 * Makes count buffers of size ready before they are needed: idle ones
 * are used first, the rest are mapped and carved (an object pool's are
 * constructed), and every page of each is written, so the gets that take
 * them cost no mapping and no page fault. The calling thread's cache for
 * the pool is made too (its memory written) and keeps as many of them as
 * its bin holds (32 to start with; none while budget waiters queue), so
 * this thread's first gets are cache hits that fault on nothing; the rest
 * wait in the pool's depot for any thread. Counted as
 * neither gets nor puts; the buffers stay idle (the retention cap, decay
 * and zp_trim apply to them as to any idle buffer). All or nothing:
 * returns 0, or a negative errno with nothing reserved: -EINVAL (pool
 * NULL, or size above the pool's largest class: such buffers are mapped
 * for each get), -EOVERFLOW (larger than an object pool's objects),
 * -ENOBUFS (count buffers do not fit the pool's budget, or waiters queue
 * for it; memory this call had mapped, and the class's other wholly idle
 * slabs, are given back), -ENOMEM, or what an object type's init returned.
 * count 0 does nothing and returns 0. Thread-safe.
 */
ZP_API int zp_reserve(zp_pool *pool, size_t size, size_t count);

/* Usable bytes of buf (its class size, or the mapped size of an oversize
 * buffer); 0 if buf is not a buffer of this pool. Thread-safe. */
ZP_API size_t zp_capacity(const zp_pool *pool, const void *buf);

/* ---------------------------------------------------------------- stats */

/* Most size classes a pool can have (64 B .. 1 GiB). */
#define ZP_MAX_CLASSES 25

/* The same counters for one size class. */
typedef struct zp_class_stats {
    uint64_t size;         /* class size in bytes */
    uint64_t gets;         /* = cache_hits + depot_hits + allocations */
    uint64_t puts;
    uint64_t cache_hits;
    uint64_t depot_hits;
    uint64_t allocations;
    uint64_t contention;
    uint64_t bytes_outstanding;
    uint64_t bytes_cached;
    uint64_t bytes_reserved;  /* slabs of this class */
} zp_class_stats;

typedef struct zp_stats {
    size_t struct_size;    /* set by the caller to sizeof(zp_stats) */
    /* counters since the pool was created (or since zp_stats_reset) */
    uint64_t gets;         /* = cache_hits + depot_hits + allocations + oversize */
    uint64_t puts;         /* successful puts (misuse is not counted) */
    uint64_t cache_hits;   /* gets served by the calling thread's cache */
    uint64_t depot_hits;   /* gets served from the shared depot: one per
                              single get that refilled the thread cache,
                              one per buffer of a batch that needed it */
    uint64_t allocations;  /* gets that needed fresh buffers carved from a
                              slab (possibly mapping a new slab), counted
                              like depot_hits */
    uint64_t oversize;     /* gets above max_class, mapped directly */
    uint64_t discards;     /* puts whose buffer was released to the provider
                              instead of kept (oversize puts) */
    uint64_t contention;   /* depot lock acquisitions that found it held */
    uint64_t misuse;       /* calls reported to the misuse handler */
    /* gauges, bytes (zp_stats_reset leaves them alone) */
    uint64_t bytes_reserved;    /* mapped from the provider right now */
    uint64_t bytes_outstanding; /* held by the application right now */
    uint64_t bytes_cached;      /* idle in thread caches and the depot */
    uint64_t peak_reserved;     /* highest bytes_reserved so far (since
                                   zp_stats_reset) */
    /* per class: classes[0 .. nclasses), smallest first */
    uint32_t nclasses;
    zp_class_stats classes[ZP_MAX_CLASSES];
    /* 0.2: puts on a thread of another node than the buffer's, sent back
     * to their own node's depot (included in puts; per node from
     * zp_stats_read_node: the buffers of that node that came home) */
    uint64_t remote_puts;
} zp_stats;

/*
 * Reads the pool's statistics into *out. out->struct_size must be set by the
 * caller (sizeof(zp_stats)); fields beyond it are not written. Returns 0 or
 * -EINVAL. Thread-safe. Hits are counted per thread without shared writes
 * and summed here; gets is exactly the sum of its parts at every read, per
 * class and in total. A read concurrent with gets and puts on other threads
 * may miss the operations in flight: bytes_outstanding and bytes_cached may
 * be off by the buffers those operations move (never negative, and their
 * sum plus uncarved slab space is bytes_reserved).
 */
ZP_API int zp_stats_read(zp_pool *pool, zp_stats *out);

/* Starts the counters (and peak_reserved) afresh; gauges are unaffected.
 * Thread-safe: operations in flight are counted before or after. */
ZP_API void zp_stats_reset(zp_pool *pool);

/* Fractions of gets (0.0 when there were none): served by the thread cache;
 * served by the depot; served without fresh memory (cache or depot). */
ZP_API double zp_stats_cache_hit_rate(const zp_stats *stats);
ZP_API double zp_stats_depot_hit_rate(const zp_stats *stats);
ZP_API double zp_stats_hit_rate(const zp_stats *stats);

#define ZP_FORMAT_TEXT 0       /* human summary */
#define ZP_FORMAT_JSON 1       /* one JSON object (fields as in zp_stats) */
#define ZP_FORMAT_PROMETHEUS 2 /* text exposition format: zeropool_ prefix,
                                  labels pool and class, counters _total */

/*
 * Writes the pool's statistics to out in the given format. Returns 0, or
 * -EINVAL (NULL argument, unknown format) or -EIO (the stream failed).
 * Thread-safe (reads as zp_stats_read does).
 */
ZP_API int zp_stats_write(zp_pool *pool, FILE *out, int format);

/* The pool's name as used in stats output; valid while the pool lives. */
ZP_API const char *zp_pool_name(const zp_pool *pool);

/* ----------------------------------------------------------------- NUMA */

/*
 * Node placement (zp_config.numa). With ZP_NUMA_LOCAL on a machine with
 * several nodes each node has its own depots: a thread's cache refills from
 * the depot of the node it runs on (read with getcpu on each refill, so a
 * thread that migrated follows within a refill), and slabs are bound to
 * their node with mbind(MPOL_PREFERRED) before they are touched: the node's
 * memory while it has some, another node's rather than a failed get when it
 * is full. A buffer put on a thread of another node goes back to its own
 * node's depot, a batch at a time (counted in zp_stats.remote_puts), never
 * into that thread's cache. Oversize buffers are bound to the caller's
 * node. ZP_NUMA_BIND binds every slab and oversize buffer with MPOL_BIND to
 * numa_node (one depot set). ZP_NUMA_NONE, and ZP_NUMA_LOCAL on a
 * one-node machine (or without /sys/devices/system/node: containers), keep
 * one depot set and no binding: the hit paths run the same instructions as
 * without NUMA support but one load (the put compares its slab's key with
 * the cache's instead of the pool pointer). Topology: sysfs, read once; no libnuma. Node
 * arguments below are the kernel's node ids (as in
 * /sys/devices/system/node/nodeN); CPU-less nodes are valid nodes.
 */

/*
 * Returns a buffer of capacity >= size whose memory is on node: taken from
 * that node's depot (not from the calling thread's cache, unless the thread
 * runs on that node), or for an oversize size mapped and bound to it. With
 * ZP_NUMA_NONE or ZP_NUMA_BIND the pool has one depot set and its placement
 * is the pool's; only oversize buffers are bound to node. On failure NULL
 * with errno EINVAL (pool NULL, or node not an online node) or as zp_get.
 * Thread-safe. The caller owns the buffer until zp_put() (from any thread:
 * it goes back to node's depot).
 */
ZP_API void *zp_get_on_node(zp_pool *pool, size_t size, int node);

/*
 * The node id a buffer of this pool belongs to: its slab's (or oversize
 * region's) node, the one its pages were bound to; with one depot set and
 * no binding, the node of the pool's depots (0 on a one-node machine).
 * Returns -1 if buf is not a live buffer of this pool (or either argument
 * is NULL). Thread-safe; reads no page and makes no system call.
 */
ZP_API int zp_node_of(const zp_pool *pool, const void *buf);

/*
 * Reads the statistics of one node's depots into *out, like zp_stats_read:
 * gets and hits of the caches that last refilled on node, that node's
 * depots' counters and bytes, its oversize buffers, and the remote puts
 * that brought its buffers home. Summed over the online nodes every field
 * but peak_reserved (the pool's) and misuse (counted on node 0) equals
 * zp_stats_read's, when no thread migrates between nodes during the read.
 * Returns 0, or -EINVAL (a NULL argument, a struct_size too small, or node
 * not an online node; detail in zp_strerror). Thread-safe.
 */
ZP_API int zp_stats_read_node(zp_pool *pool, int node, zp_stats *out);

/*
 * For a custom provider's map(): the node id the region being mapped is
 * for (the provider may place it there itself, e.g. with mbind or a
 * per-node hugetlbfs); -1 when the pool asks for no node or when called
 * outside a map() call of this thread. The pool also applies its own
 * mbind to the region after map() returns; memory the provider already
 * touched stays where it is. Thread-safe.
 */
ZP_API int zp_provider_node(void);

/* --------------------------------------------------------------- misuse */

#define ZP_MISUSE_FOREIGN 1    /* pointer is not a buffer of this pool: not
                                  from zeropool, from another pool, interior,
                                  or never handed out */
#define ZP_MISUSE_DOUBLE_PUT 2 /* buffer not handed out: already put, or
                                  never got (debug >= 1) */
#define ZP_MISUSE_WRONG_POOL 3 /* a buffer of another zeropool pool
                                  (debug >= 1; FOREIGN at debug 0) */
#define ZP_MISUSE_CORRUPTED 4  /* an idle buffer was written after its put
                                  (debug >= 2) */

typedef void (*zp_misuse_fn)(zp_pool *pool, int kind, const void *ptr,
                             const char *msg, void *arg);

/*
 * Sets the process-wide misuse handler (NULL restores the default, which
 * prints msg on stderr and aborts). msg names the pointer, the pool and what
 * was expected. If the handler returns, the offending call is ignored.
 * Thread-safe.
 */
ZP_API void zp_set_misuse_handler(zp_misuse_fn fn, void *arg);

/* ---------------------------------------------------------------- errors */

/*
 * Text for an error code (negative or positive errno). If the calling
 * thread's last failing zeropool call returned this code with a detail, the
 * detail is returned (e.g. "zp_pool_create: min_class 3000 is not a power of
 * two"). The string is valid until the next zeropool call on this thread.
 */
ZP_API const char *zp_strerror(int err);

/*
 * For libraries built on zeropool (libzeropool-codec, libzeropool-uring, or
 * a user's): records a printf-style detail for err (negative or positive
 * errno; 0 or a NULL fmt records nothing) as the calling thread's last
 * failure, so that zp_strerror(err) returns it until the next failing
 * zeropool call on this thread. Returns err as a negative errno (0 for 0).
 * Thread-safe (the detail is per thread).
 */
ZP_API int zp_error_set(int err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ==================================================================
 * EXPERIMENTAL API
 *
 * Everything below this line may still change in a minor release (names
 * stay; arguments, semantics and struct layouts may not). It is declared by
 * a plain #include <zeropool.h> and exported like the stable API above, but
 * it is not part of the ABI promise: programs that use it should be rebuilt
 * against each new minor release.
 * ================================================================== */

/* --------------------------------------------------------- cache handles
 *
 * A cache handle is a cache that belongs to its caller rather than to the
 * calling thread: an event loop, a coroutine scheduler or a fiber keeps one
 * and passes it explicitly. It behaves exactly like a thread's cache (the
 * same code serves both): per class a LIFO of up to cache_depth buffers (and
 * cache_bytes), refilled from and flushed to the pool's shared depot one
 * magazine at a time. A handle never touches thread-local storage.
 *
 * Ownership: a handle has one owner at a time and is NOT thread-safe; it may
 * move between threads between calls (a migrating coroutine), with the usual
 * happens-before of the hand-over (a mutex, a queue). Buffers flow freely: a
 * buffer got from a handle may be put with zp_put on any thread, into
 * another handle of the same pool, or with zp_put_batch, and vice versa.
 *
 * Accounting: handle hits count in cache_hits, refills in depot_hits or
 * allocations, as for thread caches, so stats add up. Budgets, the retention
 * cap, trim, decay and debug levels apply as to thread caches (zp_trim
 * flushes only the calling thread's own cache; flush a handle with
 * zp_cache_flush). A pool with cache_depth 0 gives handles that cache
 * nothing: every call goes to the depot.
 *
 * Lifetime: destroy every handle before its pool. zp_pool_destroy with live
 * handles reports them on stderr (like outstanding buffers), reclaims their
 * cached buffers and frees them: using such a handle afterwards (even
 * zp_cache_destroy) is undefined, as with any destroyed object.
 */
typedef struct zp_cache zp_cache;

/* Creates a handle for pool. Returns 0 and sets *out, -EINVAL (pool or out
 * NULL) or -ENOMEM. Thread-safe. The caller owns the handle. */
ZP_API int zp_cache_create(zp_pool *pool, zp_cache **out);

/* Gives every cached buffer back to the pool's depot (waking zp_get_timed
 * waiters as any put does), folds the handle's counters into the pool and
 * frees the handle. NULL is a no-op. Owner only. */
ZP_API void zp_cache_destroy(zp_cache *cache);

/* As zp_get / zp_put on the handle's pool, served by the handle's cache.
 * zp_cache_put takes any buffer of the handle's pool (got anywhere); another
 * pool's buffer is misuse, as for zp_put. Owner only; a NULL cache: NULL
 * with errno EINVAL / no-op. */
ZP_API void *zp_cache_get(zp_cache *cache, size_t size);
ZP_API void zp_cache_put(zp_cache *cache, void *buf);

/* As zp_get_batch / zp_put_batch, through the handle's cache. Owner only. */
ZP_API int zp_cache_get_batch(zp_cache *cache, size_t size, void **bufs, size_t n);
ZP_API void zp_cache_put_batch(zp_cache *cache, void *const *bufs, size_t n);

/* Gives every buffer the handle caches back to the depot, where any thread
 * or handle of the pool finds them (as depot hits). NULL is a no-op. Owner
 * only. */
ZP_API void zp_cache_flush(zp_cache *cache);

/* ------------------------------------------------------ async acquisition
 *
 * For event loops, which must never block: a get that cannot be served now
 * (the pool's budget is exhausted) queues a request and returns at once; the
 * loop learns through a file descriptor when it may run the request's
 * callback, which receives the buffer.
 *
 * Threading: a zp_loop belongs to one thread at a time; zp_get_async,
 * zp_cancel, zp_loop_dispatch and zp_loop_destroy for it are called on that
 * thread. The puts, trims and thread exits that make room happen on any
 * thread; they only mark requests ready and make the descriptor readable.
 * Callbacks run only inside zp_loop_dispatch, never inside another thread's
 * zp_put and never under a library lock: a callback may call any zeropool
 * function, including zp_get_async and zp_cancel.
 *
 * Order: requests and zp_get_timed waiters of one budget form one FIFO: a
 * request is served before any later one, sync or async, and a plain get
 * that needs new budget bytes does not overtake them. A buffer put of the
 * size class the first in line needs from that pool is handed to it (it is
 * the request's from then on: zp_cancel or zp_loop_destroy give it back),
 * so gets on other threads cannot take it first. The head of the queue
 * is told when memory comes back (by a put, batch put, handle flush or
 * destroy, thread exit, trim, decay, the retention cap, or another pool of
 * the budget being destroyed); dispatch then gets its buffer (it may map a
 * slab: a bounded call, never a sleep). Cancelling the head passes the turn
 * to the next request at once.
 *
 * Lifetime: every queued request ends exactly once: its callback runs (once)
 * or it is cancelled (zp_cancel, zp_loop_destroy). Destroy a pool only when
 * none of its requests is pending.
 */
typedef struct zp_loop zp_loop;

/* buf: the buffer, now the callback's (it owns it until zp_put); err 0. If
 * a pending request's get fails for another reason than room (ENOMEM from
 * the provider), the callback runs once with buf NULL and err that errno. */
typedef void (*zp_ready_fn)(void *buf, int err, void *arg);

/* Caller-owned storage for one request: no allocation per request. Keep it
 * alive and unmoved while the request is pending. */
typedef struct zp_request {
    void *priv[16];
} zp_request;

/* A loop with its own eventfd. 0, -EINVAL (out NULL), -ENOMEM, or the
 * eventfd error (e.g. -EMFILE). */
ZP_API int zp_loop_create(zp_loop **out);

/* Cancels every pending request (their callbacks never run) and frees the
 * loop, closing its descriptor. NULL: no-op. Loop thread. */
ZP_API void zp_loop_destroy(zp_loop *loop);

/* The descriptor to poll: readable (POLLIN / EPOLLIN) while callbacks are
 * ready to run. Owned by the loop: do not close or read it. -EINVAL for
 * NULL. */
ZP_API int zp_loop_fd(const zp_loop *loop);

/* Runs the ready callbacks on the calling thread, in the order the requests
 * were granted, and clears the readiness; never blocks. Returns how many
 * callbacks ran (0 when none was ready), or -EINVAL for NULL. Wake-ups
 * coalesce: one readiness may cover many requests, and one dispatch runs
 * all that are ready. Two bounds keep one call short while other threads
 * churn: a request made by a callback during this dispatch is served by a
 * later one, and once tries that found the memory taken again outnumber
 * the requests ready at the start (plus a few), the rest waits for the
 * next call; whatever waits keeps the descriptor readable. Loop thread. */
ZP_API int zp_loop_dispatch(zp_loop *loop);

/*
 * A buffer at once if one is available without waiting: returned, and cb
 * never runs. Otherwise NULL, and errno says:
 *   EINPROGRESS  queued: cb(buf, 0, arg) will run from zp_loop_dispatch on
 *                the loop's thread once the budget has room;
 *   ENOBUFS      the request can never fit (larger than the whole budget);
 *                nothing queued;
 *   EOVERFLOW / ENOMEM as zp_get; EINVAL for a NULL pool, loop, req or cb;
 *                nothing queued.
 * Whatever it returns, *req is initialised (when req is not NULL), so
 * zp_cancel on it is always defined. Loop thread.
 */
ZP_API void *zp_get_async(zp_pool *pool, size_t size, zp_loop *loop, zp_request *req,
                          zp_ready_fn cb, void *arg);

/* Loop thread. 0: the request was pending and is cancelled: its callback
 * will never run. -ENOENT: not pending (its callback already ran, or it was
 * never queued). -EINVAL: req NULL. */
ZP_API int zp_cancel(zp_request *req);

/* --------------------------------------------------------- object pools
 *
 * A pool of objects of one type, with a constructor and destructors: the
 * same engine as a buffer pool (caches, handles, depot, budgets, trim,
 * stats, debug levels), configured with one class whose size is the
 * object's. An object pool IS a zp_pool: every function taking a zp_pool
 * works on it unchanged.
 *
 *   zp_get(pool, size)   one object, for any 1 <= size <= type->size (a
 *                        larger size: NULL, errno EOVERFLOW); likewise
 *                        zp_get_batch, zp_get_timed, zp_cache_get;
 *   zp_put(pool, obj)    and every other put: the object goes back;
 *   zp_capacity          type->size;  stats: one class of type->size (its
 *                        byte gauges count the stride, see below).
 *
 * Lifetimes, each exact:
 *   init   runs exactly once on memory before it is first handed out as an
 *          object, on the thread that gets it, with no library lock held
 *          (it may use other pools). A non-zero return fails that get: NULL
 *          with errno set to the value returned (a batch get fails whole,
 *          and objects it already initialised stay pooled, initialised);
 *          the memory stays in the pool and is offered to init again later.
 *          An object put and got again is NOT initialised again.
 *   reset  runs on every put (single, batch, any thread, through a handle),
 *          before the object can be handed out again, with no library lock
 *          held. Pools with a reset take the checked path on every put.
 *   fini   runs exactly once for every successfully initialised object,
 *          before its memory goes back to the provider: when trim, decay or
 *          the retention cap release a slab whose objects are all idle, and
 *          at zp_pool_destroy for every idle object (cached by any thread
 *          or handle, or in the depot), with no library lock held. Objects
 *          still outstanding at destroy are reported (as buffers are) and
 *          are not finalised. Over a pool's life: successful inits == finis
 *          + objects outstanding at destroy. (With init NULL, every object
 *          the pool has made ready — handed out, or cached for that — counts
 *          as initialised.)
 * Memory: objects are packed at type->size rounded up to align (the
 * stride), in slabs of at least 256 KiB; every object address is a multiple
 * of align. Idle objects' pages are never released while they hold state
 * (pools with init or fini only give memory back by whole slabs).
 * Debug levels: 1 as for buffers (double put, wrong pool; an interior
 * pointer of an object is FOREIGN). Level 2 never poisons an object that
 * has (or will get) constructed state: for a type with init, reset or fini
 * it adds only the leak report by call site; without them it poisons idle
 * objects as it does buffers.
 * Flags: ZP_ZERO_ON_GET and ZP_WIPE_ON_PUT would destroy constructed state:
 * with init, reset or fini they are -EINVAL.
 */
typedef struct zp_obj_type {
    size_t struct_size;                 /* sizeof(zp_obj_type): lets the struct grow */
    size_t size;                        /* bytes per object, 1 .. 1 GiB */
    size_t align;                       /* power of two up to the page size;
                                           0: alignof(max_align_t) */
    int (*init)(void *obj, void *arg);  /* NULL, or makes fresh memory into an
                                           object: 0 or a positive errno */
    void (*reset)(void *obj, void *arg); /* NULL, or runs on every put */
    void (*fini)(void *obj, void *arg); /* NULL, or runs once before an object's
                                           memory is released */
    void *arg;                          /* passed to the three */
} zp_obj_type;

/*
 * Creates an object pool. cfg: the pool's tuning as for zp_pool_create
 * (cache_depth, cache_bytes, budget or max_bytes, max_cached_bytes,
 * decay_ms, debug, name, provider, flags); NULL: defaults; min_class and
 * max_class are ignored. The type is copied. Returns 0 and sets *out, or
 * -EINVAL (invalid cfg or type: the reason is in zp_strerror(-EINVAL)) or
 * -ENOMEM. Thread-safe. The caller owns the pool (zp_pool_destroy).
 */
ZP_API int zp_objpool_create(const zp_config *cfg, const zp_obj_type *type, zp_pool **out);

/*
 * Typed wrappers: ZP_OBJPOOL_DEFINE(conn, struct conn) defines
 *   static inline struct conn *conn_get(zp_pool *pool);
 *   static inline void conn_put(zp_pool *pool, struct conn *obj);
 */
#define ZP_OBJPOOL_DEFINE(prefix, type)                                             \
    static inline type *prefix##_get(zp_pool *pool)                                \
    {                                                                              \
        return (type *)zp_get(pool, sizeof(type));                                 \
    }                                                                              \
    static inline void prefix##_put(zp_pool *pool, type *obj)                      \
    {                                                                              \
        zp_put(pool, (void *)obj);                                                 \
    }

#ifdef __cplusplus
}
#endif

#endif /* ZEROPOOL_H */
