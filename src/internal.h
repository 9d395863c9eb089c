/*
 * internal.h — types and helpers shared by the engine's files (zp__ names).
 *
 * Layers, top to bottom (see DESIGN.md):
 *   pool.c      public entry points: config, create/destroy, the get/put hot
 *               paths and their out-of-line slow paths
 *   tcache.c    per-thread, per-pool, per-class LIFO caches in initial-exec
 *               TLS; thread exit; the registry of live pools (slots)
 *   depot.c     per-class shared depot of magazines, exchanged under one
 *               lock per refill or flush; carving fresh buffers out of slabs
 *   slab.c      regions from the provider, out-of-line metadata, the radix
 *               map from any address to its slab (O(1) foreign detection)
 *   trim.c      giving idle memory back: zp_trim, retention cap, decay
 *   budget.c    byte budgets shared by pools, and waiting for room
 *   batch.c     zp_get_batch / zp_put_batch
 *   provider.c  the default provider (anonymous mmap)
 *   stats.c     summing per-thread and per-depot counters
 *   stats_export.c  text, JSON and Prometheus output
 *   misuse.c    the misuse handler and its messages
 *   error.c     zp_strerror, per-thread error detail, version
 */
#ifndef ZP_INTERNAL_H
#define ZP_INTERNAL_H

#include "zeropool.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZP_LIKELY(x) __builtin_expect(!!(x), 1)
#define ZP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define ZP_NOINLINE __attribute__((noinline))
#define ZP_COLD __attribute__((cold))
#define ZP_TLS_IE __attribute__((tls_model("initial-exec")))
#define ZP_CACHELINE 64

/* Limits of the configuration. */
#define ZP__MIN_CLASS_SHIFT 6   /* 64 B */
#define ZP__MAX_CLASS_SHIFT 30  /* 1 GiB */
#define ZP__MAX_CLASSES (ZP__MAX_CLASS_SHIFT - ZP__MIN_CLASS_SHIFT + 1)
#define ZP__MAX_CACHE_DEPTH 65536u
#define ZP__MAX_POOLS 65536u    /* live pools with thread caches */
#define ZP__NO_SLOT UINT32_MAX

/* Slabs: every region is aligned to and sized in grains, so no two regions
 * share a grain and the radix map can key on the grain number. */
#define ZP__GRAIN_SHIFT 16
#define ZP__GRAIN ((size_t)1 << ZP__GRAIN_SHIFT)
#define ZP__SLAB_MIN_BYTES ((size_t)256 << 10)
#define ZP__ADDR_BITS 48
#define ZP__LEAF_BITS 16
#define ZP__ROOT_BITS (ZP__ADDR_BITS - ZP__GRAIN_SHIFT - ZP__LEAF_BITS)
/* Largest oversize request: beyond this no provider can serve it. */
#define ZP__MAX_REQUEST ((size_t)1 << 46)

#define ZP__CLASS_OVERSIZE 0xFFu

/* ------------------------------------------------------------------ slab */

typedef struct zp__slab {
    /* read on every put (hot), written only when the slab is set up */
    zp_pool *pool;
    uintptr_t base;
    uintptr_t mask;             /* class size - 1 (oversize: 0) */
    _Atomic uintptr_t carve_end; /* buffers below this were handed out by
                                    the depot at least once */
    uint32_t cls;               /* class index or ZP__CLASS_OVERSIZE */
    uint32_t nbufs;
    size_t size;                /* bytes mapped */
    /* the depot's slab list (depot lock) or the pool's oversize and spare
     * lists (pool lock) */
    struct zp__slab *next, *prev;
    uint32_t trim_idle;         /* scratch for trim (depot lock): idle */
    uint32_t trim_unpurged;     /* ... and of those, not purged */
    size_t meta_words;          /* capacity of the trailing debug area */
    /* debug >= 1: one bit per buffer, set while handed out */
    _Atomic uint64_t *state;
    /* debug >= 2: per buffer, the code address that got it */
    _Atomic uintptr_t *getters;
} zp__slab;

typedef _Atomic(zp__slab *) zp__radix_leaf[(size_t)1 << ZP__LEAF_BITS];
extern zp__radix_leaf *_Atomic zp__radix_root[(size_t)1 << ZP__ROOT_BITS];

/* Slab of any address, or NULL. Addresses above 2^48 alias lower ones here;
 * callers always bound-check the address against the slab they get. The
 * acquire loads pair with the release stores in zp__slab_register(), so a
 * slab seen here is fully initialised. */
static inline zp__slab *zp__slab_lookup(const void *ptr)
{
    uintptr_t a = (uintptr_t)ptr;
    zp__radix_leaf *leaf = atomic_load_explicit(
        &zp__radix_root[(a >> (ZP__GRAIN_SHIFT + ZP__LEAF_BITS)) &
                        (((uintptr_t)1 << ZP__ROOT_BITS) - 1)],
        memory_order_acquire);
    if (ZP_UNLIKELY(leaf == NULL))
        return NULL;
    return atomic_load_explicit(
        &(*leaf)[(a >> ZP__GRAIN_SHIFT) & (((uintptr_t)1 << ZP__LEAF_BITS) - 1)],
        memory_order_acquire);
}

zp__slab *zp__slab_create(zp_pool *p, unsigned cls, size_t size);
void zp__slab_list_push(zp__slab **head, zp__slab *s);
void zp__slab_list_unlink(zp__slab **head, zp__slab *s);
void zp__slab_release(zp_pool *p, zp__slab *s);
/* Oversize buffers; count: whether the get/put counts in the stats (a batch
 * counts its gets only once they all succeeded). */
void *zp__oversize_get(zp_pool *p, size_t size, bool count);
void zp__oversize_put(zp_pool *p, void *buf, bool count);
/* Counts n oversize gets made uncounted (a batch that succeeded). */
void zp__oversize_count_gets(zp_pool *p, size_t n);
void zp__slabs_destroy_all(zp_pool *p);

/* Why a pointer is not a live buffer of a pool (0 = it is one). */
enum {
    ZP__PTR_OK = 0,
    ZP__PTR_UNKNOWN,    /* not from any zeropool pool */
    ZP__PTR_OTHER_POOL, /* a buffer of another pool */
    ZP__PTR_INTERIOR,   /* inside a buffer, not at its start */
    ZP__PTR_UNCARVED,   /* in a slab, but never handed out */
};
int zp__classify(const zp_pool *p, const zp__slab *s, const void *ptr);

/* ---------------------------------------------------------------- depot */

/* Counters of one class. Thread caches keep their own (written only by the
 * owner); the depot keeps those of calls made without a thread cache. */
typedef struct zp__counts {
    uint64_t hits;
    uint64_t depot_hits;
    uint64_t allocations;
    uint64_t puts;
} zp__counts;

typedef struct zp__mag {
    struct zp__mag *next;
    uint32_t count;
    void *items[];
} zp__mag;

/* One per class. Invariant: every magazine except `partial` is full (count
 * == batch) or empty, and nmags * batch >= carved, so buffers coming back
 * always find room without allocating. */
typedef struct zp__depot {
    alignas(ZP_CACHELINE) pthread_mutex_t lock;
    zp__mag *full;
    zp__mag *partial;
    zp__mag *empty;
    uint32_t batch;      /* buffers moved per exchange */
    uint32_t cache_cap;  /* thread cache capacity for this class */
    uint64_t nmags;
    uint64_t nfree;      /* buffers idle in the depot */
    zp__slab *carving;   /* slab being carved, or NULL */
    zp__slab *slabs;     /* every slab of this class */
    uint64_t npurged;    /* the bottom npurged idle buffers have had their
                            pages released (madvise) */
    uint64_t low_water;  /* fewest unpurged idle buffers this decay epoch */
    uint64_t carved;     /* buffers carved from slabs so far */
    uint64_t slab_bytes; /* bytes of this class's slabs */
    /* gets and puts made without a thread cache, and conflicts: under lock */
    zp__counts direct;
    uint64_t contention;
} zp__depot;

int zp__depot_init(zp__depot *d, uint32_t batch, uint32_t cache_cap);
void zp__depot_fini(zp__depot *d);
/* Takes up to `want` buffers of class cls into out, from the depot or, when
 * it is empty, freshly carved (*carved set); counts `count_gets` of them as
 * direct depot hits or allocations. Returns how many were taken; 0 means
 * failure (ENOMEM, detail recorded). One lock acquisition. */
uint32_t zp__depot_take(zp_pool *p, unsigned cls, void **out, uint32_t want,
                        uint32_t count_gets, bool *carved);
/* Returns n buffers of class cls to the depot. Never fails. */
void zp__depot_give(zp_pool *p, unsigned cls, void *const *items, uint32_t n,
                    bool count_as_puts);
void zp__depot_lock(zp__depot *d);

/* --------------------------------------------------------------- tcache */

typedef struct zp__bin {
    uint32_t count;           /* owner thread only */
    uint32_t cap;
    void **items;
    /* written by the owner (plain load + store, no RMW), read by stats */
    _Atomic uint64_t hits;
    _Atomic uint64_t puts;
} zp__bin; /* 32 bytes: what the hit paths touch */

/* Miss counters of a bin, kept apart so the hit path's bins stay small. */
typedef struct zp__bin_misses {
    _Atomic uint64_t depot_hits;
    _Atomic uint64_t allocations;
    /* buffers the next refill takes: starts at 1 and doubles per miss up
     * to the depot's batch, so a short-lived thread does not hoard a
     * magazine of every class it touches (owner only) */
    uint32_t refill;
} zp__bin_misses;

typedef struct zp__tcache {
    zp_pool *pool;            /* NULL once the pool is destroyed */
    struct zp__tcache *next, *prev; /* pool's list, registry lock */
    uint32_t nclasses;
    zp__bin_misses *misses;   /* [nclasses], after the bins */
    zp__bin bins[];
} zp__tcache;

typedef struct zp__thread {
    uint32_t cap;             /* entries in caches */
    zp__tcache **caches;      /* indexed by pool slot */
} zp__thread;

extern __thread zp__thread *zp__tls ZP_TLS_IE;

/* The calling thread's cache for p, created on first use; NULL if p has no
 * thread caches or memory is short. */
zp__tcache *zp__tcache_get(zp_pool *p);
/* Gives every cached buffer of tc back to p's depot (owner thread, or the
 * registry lock at exit) and restarts its refills at 1. */
void zp__tcache_drain(zp_pool *p, zp__tcache *tc);
/* Moves the `batch` oldest buffers of a full bin to the depot. */
void zp__tcache_flush(zp_pool *p, unsigned cls, zp__bin *b);
/* Registry of live pools: slot allocation, detaching caches at destroy. */
/* Registers a live pool (and gives it a thread cache slot if want_slot);
 * -1 when no slot is left. */
int zp__registry_add(zp_pool *p, bool want_slot);
void zp__registry_remove(zp_pool *p);
void zp__registry_lock(void);
void zp__registry_unlock(void);

/* Owner-only counter increment: a plain load and store (no lock prefix);
 * relaxed atomics only so that concurrent readers are well defined. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ZP__TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define ZP__TSAN 1
#endif

static inline void zp__counter_add(_Atomic uint64_t *c, uint64_t n)
{
#if defined(ZP_BENCH_NO_COUNTERS)
    /* bench/ only: measures what counting costs; stats are wrong */
    (void)c;
    (void)n;
#elif defined(__x86_64__) && !defined(ZP__TSAN)
    /* One add to memory, without a lock prefix: only the owner writes, and
     * an aligned 8-byte store is never torn on x86-64, so a concurrent
     * relaxed load sees the old or the new value. (The portable form below
     * costs a load, an add and a store, about 0.3 ns per counter more on
     * the hit path; TSan builds keep it so TSan sees the accesses.) */
    __asm__("addq %1, %0" : "+m"(*(uint64_t *)c) : "er"(n));
#else
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
#endif
}

static inline void zp__counter_inc(_Atomic uint64_t *c)
{
    zp__counter_add(c, 1);
}

/* Adds a cache's counters of class cls to *sum (any thread; relaxed). */
void zp__tcache_counts(const zp__tcache *tc, unsigned cls, zp__counts *sum);

/* ----------------------------------------------------------------- pool */

struct zp_pool {
    /* read-only after creation (but hot_classes); read by the hot paths */
    alignas(ZP_CACHELINE) uint32_t slot; /* thread cache index or NO_SLOT */
    _Atomic uint32_t hot_classes; /* classes the bare hit path may serve:
                              hot_default, or 0 while budget waiters need
                              every put to reach the slow path */
    uint32_t hot_default;  /* nclasses, or 0 when flags/debug need the
                              checked path always */
    uint32_t min_shift;
    uint32_t nclasses;
    size_t min_mask;       /* min_class - 1 */
    size_t max_class;
    unsigned flags;
    int debug;
    unsigned cache_depth;
    size_t page_size;
    zp_provider provider;
    uint64_t id;           /* unique per process, for messages */
    char name[ZP_NAME_MAX];
    zp_budget *budget;     /* shared or private, or NULL */
    struct zp_pool *live_next;   /* registry's live list (registry lock) */
    struct zp_pool *budget_next; /* the budget's pool list (budget lock) */
    size_t max_cached;     /* retention cap, bytes */
    unsigned decay_ms;

    /* idle memory accounting for retention and decay */
    _Atomic uint64_t idle_resident; /* unpurged idle bytes in the depots */
    _Atomic uint64_t decay_epoch_ns;
    pthread_t decay_thread;
    bool decay_thread_on;
    bool decay_stop;       /* decay lock */
    pthread_mutex_t decay_lock;
    pthread_cond_t decay_cv;

    /* slabs, oversize buffers, reservation: pool lock */
    alignas(ZP_CACHELINE) pthread_mutex_t lock;
    zp__slab *slabs;       /* class slabs */
    zp__slab *oversize;    /* live oversize buffers */
    zp__slab *spare_meta;  /* recycled oversize metadata */
    uint64_t bytes_reserved;
    uint64_t peak_reserved;
    uint64_t oversize_gets;
    uint64_t oversize_puts;
    uint64_t oversize_live;    /* oversize buffers mapped right now */
    uint64_t oversize_bytes;   /* outstanding oversize bytes */
    _Atomic uint64_t misuse;

    /* registry lock: thread caches of this pool, counters of exited ones */
    zp__tcache *tcaches;
    zp__counts retired[ZP__MAX_CLASSES];

    /* zp_stats_reset's starting point, subtracted on read: stats lock */
    pthread_mutex_t stats_lock;
    zp_stats baseline;

    zp__depot depot[ZP__MAX_CLASSES];
};

static inline size_t zp__class_size(const zp_pool *p, unsigned cls)
{
    return (size_t)1 << (p->min_shift + cls);
}

/* Bytes of one slab of class cls. */
static inline size_t zp__slab_bytes(const zp_pool *p, unsigned cls)
{
    size_t csize = zp__class_size(p, cls);
    return csize > ZP__SLAB_MIN_BYTES ? csize : ZP__SLAB_MIN_BYTES;
}

/* Class index for size >= 1; size 0 (and anything above max_class) yields
 * an index >= nclasses, which the hot path leaves to the slow path. */
static inline unsigned zp__class_of(const zp_pool *p, size_t size)
{
    size_t s = (size - 1) | p->min_mask;
    return (unsigned)(64 - __builtin_clzll((unsigned long long)s)) - p->min_shift;
}

/* The slab of buf if it is a buffer of p that may take the bare hit path:
 * the O(1) foreign check (right pool, start of a buffer, handed out before:
 * a >= base holds since the slab covers a's grain) and no debug, flags or
 * budget waiters asking for the checked path. NULL otherwise (including
 * buf NULL and oversize buffers). */
static inline zp__slab *zp__hot_slab(zp_pool *p, const void *buf)
{
    zp__slab *s = zp__slab_lookup(buf);
    if (ZP_UNLIKELY(s == NULL || s->pool != p))
        return NULL;
    uintptr_t a = (uintptr_t)buf;
    if (ZP_UNLIKELY(s->cls >= atomic_load_explicit(&p->hot_classes, memory_order_relaxed) ||
                    ((a - s->base) & s->mask) != 0 ||
                    a >= atomic_load_explicit(&s->carve_end, memory_order_relaxed)))
        return NULL;
    return s;
}

void *zp__get_slow(zp_pool *p, size_t size, const void *caller);
/* fork child: reinitialises what other (now absent) threads may have held */
void zp__pool_after_fork_child(zp_pool *p);
void zp__budget_after_fork_child(zp_budget *b);
void zp__put_slow(zp_pool *p, void *buf);

/* Counters of class cls summed over every thread; the registry lock and the
 * class's depot lock must be held. */
zp__counts zp__class_counts(zp_pool *p, unsigned cls);
static inline uint64_t zp__counts_gets(const zp__counts *c)
{
    return c->hits + c->depot_hits + c->allocations;
}

/* The budget is full: gives back this pool's idle memory (tc: the calling
 * thread's cache, or NULL) so a retry can map. */
void zp__reclaim_for_budget(zp_pool *p, zp__tcache *tc);
/* While the budget has waiters, puts go straight to the depot, wholly idle
 * slabs are unmapped and the first waiter retries: returns true if it did
 * that with bufs[0..n), all of class cls. */
bool zp__put_to_waiters(zp_pool *p, unsigned cls, void *const *bufs, uint32_t n);
/* Takes one buffer of class cls for a get (slow path), NULL on failure. */
void *zp__take_one(zp_pool *p, unsigned cls);
/* Stamps a buffer being handed out (debug state, ZP_ZERO_ON_GET). */
void *zp__finish_get(zp_pool *p, void *buf, unsigned cls, const void *caller);
/* Checks a buffer being put and prepares it (debug state, wipe): returns
 * its slab and class, or NULL after reporting misuse / releasing an
 * oversize buffer. */
zp__slab *zp__accept_put(zp_pool *p, void *buf, const char *op);

/* ---------------------------------------------------------------- debug */

/* Words of trailing metadata a slab of nbufs buffers needs at p's level. */
size_t zp__debug_meta_words(const zp_pool *p, uint32_t nbufs);
void zp__debug_on_carve(zp_pool *p, void *const *bufs, uint32_t n, unsigned cls);
void zp__debug_on_get(zp_pool *p, void *buf, unsigned cls, const void *caller);
/* Clears the buffer's handed-out bit; false: misuse reported (double put),
 * the put must be ignored. */
bool zp__debug_on_put(zp_pool *p, zp__slab *s, void *buf, const char *op);
/* debug >= 2: fills an idle buffer with the poison pattern. */
void zp__debug_poison(zp_pool *p, void *buf, unsigned cls);
void zp__debug_before_unmap(const zp__slab *s);
void zp__debug_leak_report(zp_pool *p);

/* --------------------------------------------------------------- misuse */

void zp__misuse_after_fork_child(void);
void zp__misuse(zp_pool *p, int kind, const void *ptr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void zp__report_bad_pointer(zp_pool *p, const zp__slab *s, const void *ptr,
                            int why, const char *op);

/* ---------------------------------------------------------------- error */

/* Records a detail for err (negative errno) for zp_strerror on this thread
 * and returns err. */
int zp__error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ----------------------------------------------------------------- trim */

/* Gives back idle memory of class cls until `drop` bytes of resident idle
 * memory are gone (or nothing more can go): unmaps slabs whose buffers are
 * all idle in the depot, then, if purge, releases the pages of the coldest
 * idle buffers. Takes the depot lock. Returns the bytes given back. */
size_t zp__trim_class(zp_pool *p, unsigned cls, uint64_t drop, bool purge);
/* Pool-wide: down to keep resident idle bytes. */
size_t zp__trim_pool(zp_pool *p, uint64_t keep, bool purge);
/* Called on slow paths: enforces the retention cap, runs decay when due. */
void zp__idle_check(zp_pool *p);
int zp__decay_start(zp_pool *p);
void zp__decay_stop(zp_pool *p);
uint64_t zp__now_ns(void);
/* A condition variable whose timed waits use CLOCK_MONOTONIC; 0 or -errno. */
int zp__cond_init_monotonic(pthread_cond_t *cv);
/* *ts = CLOCK_MONOTONIC now + ns, for those timed waits. */
void zp__deadline_after(struct timespec *ts, uint64_t ns);

/* --------------------------------------------------------------- budget */

bool zp__budget_reserve(zp_budget *b, size_t size);
/* Counts a get that failed for lack of budget (not while zp_get_timed is
 * still trying: it counts its own outcome). */
void zp__budget_count_failure(zp_pool *p, int err);
void zp__budget_release(zp_budget *b, size_t size);
size_t zp__budget_max(const zp_budget *b); /* SIZE_MAX for NULL */
bool zp__budget_has_waiters(const zp_budget *b);
/* Wakes the first waiter so it retries (a put may have made room). */
void zp__budget_notify(zp_budget *b);
void zp__budget_attach(zp_budget *b, zp_pool *p);
void zp__budget_detach(zp_budget *b, zp_pool *p);
/* Bytes a get of size would need to map (a slab or an oversize region). */
size_t zp__request_bytes(const zp_pool *p, size_t size);

/* ------------------------------------------------------------- provider */

extern const zp_provider zp__default_provider;

#endif /* ZP_INTERNAL_H */
