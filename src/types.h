/*
 * types.h — the engine's data: slabs, magazines, depots, caches and the
 * pool that holds them, with the class arithmetic every layer shares.
 * Prototypes live in each module's own header (core/, policy/, debug/,
 * stats/); see docs/design.md for the layers and the lock order.
 */
#ifndef ZP_TYPES_H
#define ZP_TYPES_H

#include "base.h"
#include "os/os.h"
#include "policy/budget.h"

#include <pthread.h>

#define ZP__CLASS_OVERSIZE 0xFFu

/* ------------------------------------------------------------------ slab */

typedef struct zp__slab {
    /* read on every put (hot), written only when the slab is set up */
    uintptr_t key;              /* the pool's address | the node index its
                                   depot is (0 unless per-node depots): the
                                   bare put compares it with its cache's
                                   key, so a buffer of another node takes
                                   the slow path at no extra compare */
    zp_pool *pool;
    uintptr_t base;
    uintptr_t mask;             /* for the hot path: stride - 1 when the
                                   stride is a power of two; UINTPTR_MAX
                                   otherwise (then only base passes, and
                                   such pools' puts take the checked path);
                                   oversize: 0 */
    _Atomic uintptr_t carve_end; /* buffers below this were handed out by
                                    the depot at least once; oversize:
                                    base, so the bare put path refuses
                                    them */
    union {
        struct {
            uint32_t cls;       /* class index or ZP__CLASS_OVERSIZE */
            uint32_t node;      /* index of the depot's node (oversize: of
                                   the node it was bound to) */
        };
        uint64_t cls_node;      /* both, compared at once by batch puts */
    };
    uint32_t nbufs;
    int home;                   /* node id its pages were bound to, or -1
                                   (not bound: ZP_NUMA_NONE, one node) */
    size_t size;                /* bytes mapped */
    size_t stride;              /* bytes between buffers (oversize: size) */
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
    /* object pools with init or fini: one bit per object, set while it is
     * constructed (init succeeded, fini not run) */
    _Atomic uint64_t *built;
} zp__slab;

/* ---------------------------------------------------------------- depot */

/* Counters of one class. Caches keep their own (written only by their
 * owner); the depot keeps those of calls made without a cache. */
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
    /* geometry, fixed at creation: a class is a table row, not a power of
     * two (object pools pack objects at their size rounded up to their
     * alignment) */
    size_t stride;       /* bytes per buffer, and between buffers */
    size_t slab_len;     /* bytes of one slab */
    zp__mag *full;
    zp__mag *partial;
    zp__mag *empty;
    uint32_t batch;      /* buffers moved per exchange */
    uint32_t cache_cap;  /* most a cache's bin of this class may hold */
    uint32_t cache_start; /* what a bin holds before it adapts (<= cap) */
    /* a cache's first single refill of this class (then doubling): 1, or
     * for classes of 32 KiB and up enough buffers to span 128 KiB, so two
     * threads' first buffers are not neighbours (lifecycle.c says why) */
    uint32_t first_refill;
    uint64_t nmags;
    uint64_t nfree;      /* buffers idle in the depot */
    zp__slab *carving;   /* slab being carved, or NULL */
    zp__slab *slabs;     /* every slab of this class */
    uint64_t npurged;    /* the bottom npurged idle buffers have had their
                            pages released */
    uint64_t low_water;  /* fewest unpurged idle buffers this decay epoch */
    uint64_t carved;     /* buffers carved from slabs so far */
    uint64_t slab_bytes; /* bytes of this class's slabs */
    /* gets and puts made without a cache, and conflicts: under lock */
    zp__counts direct;
    uint64_t contention;
    uint64_t remote_puts; /* buffers put on a thread of another node and
                             sent home here (also counted in direct.puts) */
    /* counters of retired caches that last refilled here, and of caches
     * that moved to another node (depot lock) */
    zp__counts retired;
} zp__depot;

/* ---------------------------------------------------------------- cache */

typedef struct zp__bin {
    uint32_t count;           /* owner only */
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
    /* buffers the next single refill takes (0: the depot's first_refill):
     * doubles per miss up to the depot's batch, so a short-lived owner does
     * not hoard a magazine of every class it touches (owner only) */
    uint32_t refill;
    /* the bin was refilled since its last flush (owner only): a flush now
     * means a burst did not fit, and the bin grows instead (cache.c) */
    bool refilled;
    /* the bin was flushed since its last refill (owner only): a refill
     * with none between keeps doubling past a magazine (cache.c) */
    bool flushed;
    /* its last depot exchange found the lock held, and came soon after
     * the one before (owner only): a one-way streak grows the bin then
     * (cache.c, busy_streak) */
    bool contended;
    uint64_t exchange_ns; /* when the last exchange was (coarse clock) */
} zp__bin_misses;

/* The one cache: a LIFO bin per class. Its owner is a thread (reached
 * through TLS, core/thread.c) or the caller of a handle (api/handle.c);
 * the code that serves it (core/cache.c) does not know which. */
struct zp_cache {
    zp_pool *pool;            /* NULL once the pool is destroyed (thread
                                 caches only: handles are freed then) */
    uintptr_t key;            /* pool address | node: what its bare put
                                 compares a slab's key with (owner only) */
    struct zp_cache *next, *prev; /* the pool's caches (registry lock) */
    /* thread exit only: the pool it gave buffers back to while budget
     * waiters queued, and those classes, to trim after the registry lock */
    zp_pool *exit_pool;
    zp__bin_misses *misses;   /* [nclasses], after the bins */
    /* per-node depots only (else NULL): buffers of other nodes put here,
     * [pool's nnodes], sent home a batch at a time (owner only) */
    struct zp__stash *stash;
    uint32_t nclasses;
    uint32_t exit_classes;
    _Atomic uint32_t node;    /* index of the node it refills from (written
                                 by the owner, read by stats) */
    bool handle;              /* owned by a zp_cache handle */
    /* cache-line aligned (so is the cache): a bin (32 bytes) never
     * straddles two lines, and the hit path touches one line of it */
    alignas(ZP_CACHELINE) zp__bin bins[];
};
typedef struct zp_cache zp__cache;

/* Buffers of one remote node waiting to go home (cache.c). */
#define ZP__STASH_MAX 32u
typedef struct zp__stash {
    uint32_t count;
    uint8_t cls[ZP__STASH_MAX];
    void *items[ZP__STASH_MAX];
} zp__stash;

/* Oversize figures of one node (pool lock). */
typedef struct zp__over {
    uint64_t gets;
    uint64_t puts;
    uint64_t live;        /* oversize buffers mapped right now */
    uint64_t bytes;       /* outstanding oversize bytes */
} zp__over;

/* ----------------------------------------------------------------- pool */

/* What an object pool does with its objects (all NULL for a buffer pool). */
typedef struct zp__objtype {
    size_t size;              /* bytes per object (0: a buffer pool) */
    int (*init)(void *obj, void *arg);
    void (*reset)(void *obj, void *arg);
    void (*fini)(void *obj, void *arg);
    void *arg;
    bool built;               /* init or fini: slabs track constructed
                                 objects, idle pages are never purged */
} zp__objtype;

struct zp_pool {
    /* read-only after creation (but put_mask); read by the hot paths */
    alignas(ZP_CACHELINE) uint32_t slot; /* thread cache index or NO_SLOT */
    uint32_t class_bias;   /* min_shift - 1: zp__class_of */
    _Atomic uintptr_t put_mask; /* the bare put compares a slab's key with
                              its cache's key & put_mask: all ones
                              (put_mask_open), or 0 while budget waiters
                              need every put to reach the slow path (the
                              budget closes this gate, see gate below) */
    uintptr_t put_mask_open; /* all ones, or 0 when flags, debug or an
                              object type's reset need the checked path
                              always */
    size_t hot_get;        /* gets of 1 .. hot_get bytes may take the bare
                              path: max_class, or 0 when flags or debug
                              need the checked path always */
    uint32_t min_shift;
    uint32_t nclasses;
    size_t min_mask;       /* min_class - 1 */
    size_t max_class;
    unsigned flags;
    int debug;
    unsigned cache_depth;
    size_t page_size;
    size_t huge_size;      /* ZP_HUGE_PAGES: the huge page size, which
                              slabs are sized and aligned in; else 0 */
    zp_provider provider;
    uint64_t id;           /* unique per process, for messages */
    char name[ZP_NAME_MAX];
    zp__objtype obj;       /* object pools: the type */
    zp_budget *budget;     /* shared or private, or NULL */
    zp__gate gate;         /* put_mask, as the budget sees it */
    struct zp_pool *live_next, *live_prev; /* registry's live list (registry
                                              lock) */
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
    zp__slab *oversize;    /* live oversize buffers */
    zp__slab *spare_meta;  /* recycled slab metadata */
    uint64_t bytes_reserved;
    uint64_t peak_reserved;
    zp__over over[ZP__MAX_NODES]; /* oversize buffers, per node index */
    /* debug >= 1: bases of the last ZP__RELEASED_MAX oversize buffers put
     * (a ring), so a second put of one is told apart from a foreign
     * pointer */
    uintptr_t *released;
    uint32_t released_next;
    _Atomic uint64_t misuse;

    /* exiting threads still trimming this pool for waiters (registry lock to
     * take one; destroy waits for none) */
    _Atomic uint32_t pins;

    /* registry lock: caches of this pool (counters of retired ones: in
     * the depot of the node they last refilled on) */
    zp__cache *caches;

    /* zp_stats_reset's starting point, subtracted on read: stats lock */
    pthread_mutex_t stats_lock;
    zp_stats baseline;
    zp_stats *node_baseline; /* [nnodes]: each node's (per-node depots) */

    /* NUMA: ZP_NUMA_*; depots per node (nnodes > 1 only for
     * ZP_NUMA_LOCAL on a machine with several nodes); bind_node: node id
     * every slab is bound to (ZP_NUMA_BIND), else -1 */
    int numa;
    int bind_node;
    uint32_t nnodes;
    int node_ids[ZP__MAX_NODES]; /* node id of each depot index */

    /* [nnodes * nclasses]: node n's depot of class c at n * nclasses + c,
     * so depot[c] is node 0's (and holds the class geometry) */
    zp__depot *depot;
};

/* The depot of class cls on node index node. */
static inline zp__depot *zp__depot_of(zp_pool *p, unsigned node, unsigned cls)
{
    return &p->depot[node * p->nclasses + cls];
}

#define ZP__RELEASED_MAX 1024u

/* Bytes per buffer of class cls (its stride). */
static inline size_t zp__class_size(const zp_pool *p, unsigned cls)
{
    return p->depot[cls].stride;
}

/* Bytes of one slab of class cls. */
static inline size_t zp__slab_bytes(const zp_pool *p, unsigned cls)
{
    return p->depot[cls].slab_len;
}

/* Class index for 1 <= size <= max_class (the hot path checks the size
 * against hot_get first). */
static inline unsigned zp__class_of(const zp_pool *p, size_t size)
{
    size_t s = (size - 1) | p->min_mask;
    /* 63 ^ clz is the index of the top bit (one bsr) */
    return (unsigned)(63 ^ __builtin_clzll((unsigned long long)s)) - p->class_bias;
}

static inline uint64_t zp__counts_gets(const zp__counts *c)
{
    return c->hits + c->depot_hits + c->allocations;
}

#endif /* ZP_TYPES_H */
