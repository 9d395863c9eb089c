/*
 * zp_fuzz.c — libFuzzer target for zeropool.
 *
 * The input is decoded into one or two pool configurations (optionally
 * drawing from one shared budget) and a sequence of operations on them:
 * get, put, batch get/put, timed get, gets and puts on a helper thread,
 * stats reads and resets, trim, provider failures, pool destroy and
 * re-create, and misuse the contract handles (foreign and interior
 * pointers, another pool's buffers, and at debug >= 1 double puts). A model of what the application holds is checked against the pool
 * after every operation:
 *   - every held buffer keeps its contents and capacity, and no two overlap;
 *   - stats: gets, puts and misuse are exactly the model's; the sums add
 *     up; bytes_outstanding is exactly what is held; outstanding + cached
 *     <= reserved == what the provider has mapped (<= the budget; with a
 *     shared budget, its bytes_reserved is both pools' mappings);
 *   - a failed get says why: ENOMEM only when a provider failure was
 *     injected during it, ENOBUFS only with a budget, EOVERFLOW only for an
 *     impossible size;
 *   - misuse is reported exactly once per bad call, with the right kind,
 *     and never otherwise (no CORRUPTED at debug 2: nothing writes idle
 *     buffers);
 *   - ZP_ZERO_ON_GET buffers come zeroed; ZP_WIPE_ON_PUT buffers read zero
 *     right after the put;
 *   - at the end, every byte the provider mapped is unmapped, exactly once.
 * A broken invariant aborts with a message (libFuzzer saves the input).
 *
 * Built with -fsanitize=fuzzer,address,undefined by fuzz/CMakeLists.txt;
 * fuzz/replay.c runs the same entry point over files without libFuzzer
 * (the fuzz_replay test).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "zeropool.h"

/* ------------------------------------------------------------ failures */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "zp_fuzz: invariant broken: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond))                                                         \
            die(__VA_ARGS__);                                                \
    } while (0)

/* ---------------------------------------------------------------- input */

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static unsigned rd8(reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static unsigned rd16(reader *r)
{
    unsigned lo = rd8(r);
    return lo | rd8(r) << 8;
}

/* Sizes: mostly around the classes, sometimes odd, oversize, 0 or
 * impossible. */
static size_t rd_size(reader *r)
{
    unsigned v = rd16(r);
    if (v == 0xFFFF)
        return SIZE_MAX; /* can never be served: EOVERFLOW */
    unsigned shift = (v >> 12) % 12;         /* 2^6 .. 2^17 */
    size_t base = (size_t)64 << shift;       /* 64 B .. 8 MiB */
    size_t size = base + (v & 0xFFF) * (base / 4096 + 1) - (v & 0x800 ? base / 2 : 0);
    return size > ((size_t)6 << 20) ? (size_t)6 << 20 : size;
}

/* ------------------------------------------------------------ provider */

#define MAX_REGIONS 4096

typedef struct provider {
    pthread_mutex_t lock;
    struct {
        void *ptr;
        size_t size;
    } live[MAX_REGIONS];
    size_t nlive;
    size_t bytes_live;
    size_t map_calls;
    size_t fail_at;    /* the map call (1-based) that fails, 0: none */
    size_t injected;   /* failures injected so far */
    size_t bad;        /* unmaps of unknown regions or sizes, bad aligns */
} provider;

static void *pv_map(size_t size, size_t align, void *ctx)
{
    provider *pv = ctx;
    void *p = NULL;
    pthread_mutex_lock(&pv->lock);
    size_t call = ++pv->map_calls;
    if (size == 0 || align < 4096 || (align & (align - 1)))
        pv->bad++;
    if (pv->fail_at == call) {
        pv->injected++;
        pthread_mutex_unlock(&pv->lock);
        return NULL;
    }
    pthread_mutex_unlock(&pv->lock);
    size_t total = size + align;
    unsigned char *m = mmap(NULL, total, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    unsigned char *start = (unsigned char *)(((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1));
    if (start > m)
        munmap(m, (size_t)(start - m));
    if (m + total > start + size)
        munmap(start + size, (size_t)(m + total - (start + size)));
    p = start;
    pthread_mutex_lock(&pv->lock);
    if (pv->nlive < MAX_REGIONS) {
        pv->live[pv->nlive].ptr = p;
        pv->live[pv->nlive].size = size;
        pv->nlive++;
        pv->bytes_live += size;
    } else {
        pv->bad++;
    }
    pthread_mutex_unlock(&pv->lock);
    return p;
}

static void pv_unmap(void *ptr, size_t size, void *ctx)
{
    provider *pv = ctx;
    int found = 0;
    pthread_mutex_lock(&pv->lock);
    for (size_t i = 0; i < pv->nlive; i++) {
        if (pv->live[i].ptr == ptr && pv->live[i].size == size) {
            pv->live[i] = pv->live[--pv->nlive];
            pv->bytes_live -= size;
            found = 1;
            break;
        }
    }
    if (!found)
        pv->bad++;
    pthread_mutex_unlock(&pv->lock);
    if (found)
        munmap(ptr, size);
}

/* --------------------------------------------------------------- misuse */

static atomic_int misuse_count;
static atomic_int misuse_kind;
static const void *_Atomic misuse_ptr;

static void on_misuse(zp_pool *pool, int kind, const void *ptr, const char *msg, void *arg)
{
    (void)pool;
    (void)arg;
    if (msg == NULL || msg[0] == 0)
        die("misuse reported without a message");
    atomic_store(&misuse_kind, kind);
    atomic_store(&misuse_ptr, ptr);
    atomic_fetch_add(&misuse_count, 1);
}

/* ---------------------------------------------------------------- model */

#define MAX_HELD 64
#define MAX_IDLE 32
#define NPOOLS 2

typedef struct held {
    unsigned char *ptr;
    size_t cap;
    uint64_t serial;
} held;

typedef struct pool_model {
    zp_pool *pool;
    provider *pv;
    zp_config cfg;
    size_t budget;          /* max_bytes, 0: none */
    held h[MAX_HELD];
    size_t nheld;
    void *idle[MAX_IDLE];   /* recently put pointers (for double puts) */
    size_t nidle;
    uint64_t gets, puts, misuse; /* what stats must say */
} pool_model;

static pool_model pools[NPOOLS];
static zp_budget *shared_budget; /* both pools draw from it, or NULL */
static uint64_t serial;
static FILE *devnull;

static uint64_t marker(const held *h)
{
    return (h->serial * 0x9E3779B97F4A7C15ull) ^ (uint64_t)(uintptr_t)h->ptr;
}

static void mark(const held *h)
{
    uint64_t m = marker(h), n = ~m;
    memcpy(h->ptr, &m, 8);
    memcpy(h->ptr + h->cap - 8, &n, 8);
}

static void check_mark(const held *h)
{
    uint64_t m, n;
    memcpy(&m, h->ptr, 8);
    memcpy(&n, h->ptr + h->cap - 8, 8);
    CHECK(m == marker(h) && n == ~marker(h),
          "buffer %p (capacity %zu) lost its contents", (void *)h->ptr, h->cap);
}

static int is_held(const void *p)
{
    for (int i = 0; i < NPOOLS; i++)
        for (size_t k = 0; k < pools[i].nheld; k++)
            if (pools[i].h[k].ptr == p)
                return 1;
    return 0;
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Takes a buffer just got from pool m for `size` bytes into the model. */
static void take(pool_model *m, void *buf, size_t size)
{
    size_t cap = zp_capacity(m->pool, buf);
    size_t size1 = size ? size : 1;
    CHECK(cap >= size1, "capacity %zu of %p < size %zu", cap, buf, size);
    CHECK(((uintptr_t)buf & (4096 - 1)) == 0 || ((uintptr_t)buf & (cap - 1)) == 0,
          "buffer %p of capacity %zu is misaligned", buf, cap);
    if (m->cfg.flags & ZP_ZERO_ON_GET) {
        const unsigned char *b = buf;
        if (cap <= 65536)
            CHECK(all_zero(b, cap), "ZERO_ON_GET buffer %p is not zeroed", buf);
        else
            CHECK(all_zero(b, 4096) && all_zero(b + cap - 4096, 4096),
                  "ZERO_ON_GET buffer %p is not zeroed", buf);
    }
    /* no overlap with anything held, in either pool */
    for (int i = 0; i < NPOOLS; i++)
        for (size_t k = 0; k < pools[i].nheld; k++) {
            const held *o = &pools[i].h[k];
            CHECK((unsigned char *)buf + cap <= o->ptr || o->ptr + o->cap <= (unsigned char *)buf,
                  "buffer %p+%zu overlaps held %p+%zu", buf, cap, (void *)o->ptr, o->cap);
        }
    if (m->nheld == MAX_HELD) {
        /* full: give the oldest back first */
        held *o = &m->h[0];
        check_mark(o);
        zp_put(m->pool, o->ptr);
        m->puts++;
        memmove(m->h, m->h + 1, (MAX_HELD - 1) * sizeof(held));
        m->nheld--;
    }
    held *h = &m->h[m->nheld++];
    h->ptr = buf;
    h->cap = cap;
    h->serial = ++serial;
    mark(h);
    m->gets++;
}

/* Removes held[k] from the model (its buffer is about to be put). */
static void *release(pool_model *m, size_t k)
{
    held *h = &m->h[k];
    void *p = h->ptr;
    check_mark(h);
    CHECK(zp_capacity(m->pool, p) == h->cap, "capacity of %p changed", p);
    m->h[k] = m->h[--m->nheld];
    if (m->nidle < MAX_IDLE) {
        m->idle[m->nidle++] = p;
    } else {
        memmove(m->idle, m->idle + 1, (MAX_IDLE - 1) * sizeof(void *));
        m->idle[MAX_IDLE - 1] = p;
    }
    return p;
}

/* A failed get: errno must say why, and be justified. */
static void check_failure(pool_model *m, int err, size_t size, size_t injected_before)
{
    size_t injected;
    pthread_mutex_lock(&m->pv->lock);
    injected = m->pv->injected;
    pthread_mutex_unlock(&m->pv->lock);
    if (size == SIZE_MAX) {
        CHECK(err == EOVERFLOW, "get of SIZE_MAX: errno %d, want EOVERFLOW", err);
        return;
    }
    if (err == ENOMEM)
        CHECK(injected > injected_before,
              "get of %zu failed with ENOMEM, but the provider refused nothing", size);
    else if (err == ENOBUFS)
        CHECK(m->budget != 0, "get of %zu failed with ENOBUFS without a budget", size);
    else
        die("get of %zu failed with errno %d", size, err);
}

/* ---------------------------------------------------------- invariants */

static void check_pool(pool_model *m)
{
    zp_stats s;
    memset(&s, 0, sizeof(s));
    s.struct_size = sizeof(s);
    CHECK(zp_stats_read(m->pool, &s) == 0, "zp_stats_read failed");
    CHECK(s.gets == m->gets, "stats gets %llu, model %llu", (unsigned long long)s.gets,
          (unsigned long long)m->gets);
    CHECK(s.puts == m->puts, "stats puts %llu, model %llu", (unsigned long long)s.puts,
          (unsigned long long)m->puts);
    CHECK(s.misuse == m->misuse, "stats misuse %llu, model %llu",
          (unsigned long long)s.misuse, (unsigned long long)m->misuse);
    CHECK(s.gets == s.cache_hits + s.depot_hits + s.allocations + s.oversize,
          "gets is not the sum of its parts");
    uint64_t g = 0, p = 0;
    for (uint32_t c = 0; c < s.nclasses; c++) {
        const zp_class_stats *k = &s.classes[c];
        CHECK(k->gets == k->cache_hits + k->depot_hits + k->allocations,
              "class %llu: gets is not the sum of its parts", (unsigned long long)k->size);
        g += k->gets;
        p += k->puts;
    }
    CHECK(g + s.oversize == s.gets && p + s.discards == s.puts,
          "classes do not add up to the totals");
    uint64_t held_bytes = 0;
    for (size_t k = 0; k < m->nheld; k++) {
        held_bytes += m->h[k].cap;
        check_mark(&m->h[k]);
    }
    CHECK(s.bytes_outstanding == held_bytes, "bytes_outstanding %llu, held %llu",
          (unsigned long long)s.bytes_outstanding, (unsigned long long)held_bytes);
    CHECK(s.bytes_outstanding + s.bytes_cached <= s.bytes_reserved,
          "outstanding %llu + cached %llu > reserved %llu",
          (unsigned long long)s.bytes_outstanding, (unsigned long long)s.bytes_cached,
          (unsigned long long)s.bytes_reserved);
    pthread_mutex_lock(&m->pv->lock);
    size_t live = m->pv->bytes_live, bad = m->pv->bad;
    pthread_mutex_unlock(&m->pv->lock);
    CHECK(s.bytes_reserved == live, "bytes_reserved %llu, provider has %zu mapped",
          (unsigned long long)s.bytes_reserved, live);
    CHECK(bad == 0, "provider saw %zu bad calls", bad);
    if (m->budget)
        CHECK(s.bytes_reserved <= m->budget, "reserved %llu above the budget %zu",
              (unsigned long long)s.bytes_reserved, m->budget);
    CHECK(s.peak_reserved >= s.bytes_reserved, "peak below reserved");
}

/* Both pools on one budget: together they never hold more than it. */
static void check_shared_budget(size_t max)
{
    zp_budget_stats bs;
    size_t live = 0;
    memset(&bs, 0, sizeof(bs));
    bs.struct_size = sizeof(bs);
    CHECK(zp_budget_read(shared_budget, &bs) == 0, "zp_budget_read failed");
    for (int i = 0; i < NPOOLS; i++) {
        pthread_mutex_lock(&pools[i].pv->lock);
        live += pools[i].pv->bytes_live;
        pthread_mutex_unlock(&pools[i].pv->lock);
    }
    CHECK(bs.max_bytes == max, "budget max %llu, want %zu", (unsigned long long)bs.max_bytes,
          max);
    CHECK(bs.bytes_reserved == live && live <= max,
          "shared budget: reserved %llu, the pools have %zu mapped, max %zu",
          (unsigned long long)bs.bytes_reserved, live, max);
    CHECK(bs.waiters == 0, "a waiter that never waited");
}

/* ------------------------------------------------------- helper thread */

enum { HELP_NONE, HELP_PUT, HELP_GET };

static struct helper {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int cmd;
    zp_pool *pool;
    size_t size, n;
    void *bufs[16];
    int rc;
    int err;
} helper = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, HELP_NONE, NULL, 0, 0,
            {0}, 0, 0};

static void *helper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&helper.lock);
    for (;;) {
        while (helper.cmd == HELP_NONE)
            pthread_cond_wait(&helper.cond, &helper.lock);
        if (helper.cmd == HELP_PUT) {
            for (size_t i = 0; i < helper.n; i++)
                zp_put(helper.pool, helper.bufs[i]);
        } else {
            errno = 0;
            helper.rc = zp_get_batch(helper.pool, helper.size, helper.bufs, helper.n);
            helper.err = errno;
        }
        helper.cmd = HELP_NONE;
        pthread_cond_broadcast(&helper.cond);
    }
    return NULL;
}

static void helper_run(int cmd)
{
    pthread_mutex_lock(&helper.lock);
    helper.cmd = cmd;
    pthread_cond_broadcast(&helper.cond);
    while (helper.cmd != HELP_NONE)
        pthread_cond_wait(&helper.cond, &helper.lock);
    pthread_mutex_unlock(&helper.lock);
}

/* -------------------------------------------------------------- setup */

static void decode_config(reader *r, pool_model *m)
{
    unsigned b0 = rd8(r), b1 = rd8(r), b2 = rd8(r), b3 = rd8(r), b4 = rd8(r), b5 = rd8(r);
    static const unsigned depths[8] = {0, 1, 2, 4, 8, 16, 32, 64};
    static const size_t cache_bytes[4] = {(size_t)64 << 20, 0, 65536, 1 << 20};
    zp_config *c = &m->cfg;
    zp_config_init(c);
    unsigned min_shift = 6 + b0 % 8;            /* 64 B .. 8 KiB */
    unsigned max_shift = min_shift + b1 % 10;   /* .. 1 MiB at most */
    if (max_shift > 20)
        max_shift = 20;
    c->min_class = (size_t)1 << min_shift;
    c->max_class = (size_t)1 << max_shift;
    c->cache_depth = depths[b2 % 8];
    c->cache_bytes = cache_bytes[(b2 >> 3) % 4];
    c->flags = b3 & (ZP_ZERO_ON_GET | ZP_WIPE_ON_PUT);
    c->debug = (int)((b3 >> 2) % 3);
    m->budget = b4 % 4 == 0 ? 0 : (size_t)(b4 / 4 + 1) << 20; /* 1 .. 64 MiB */
    c->max_bytes = m->budget;
    if (b5 & 1)
        c->max_cached_bytes = (size_t)(b5 >> 1) << 16;
    c->provider.map = pv_map;
    c->provider.unmap = pv_unmap;
    c->provider.ctx = m->pv;
}

static void create(pool_model *m)
{
    int rc = zp_pool_create(&m->cfg, &m->pool);
    CHECK(rc == 0, "zp_pool_create: %s", zp_strerror(rc));
    m->nheld = m->nidle = 0;
    m->gets = m->puts = m->misuse = 0;
}

/* Puts back everything held and destroys the pool. */
static void destroy(pool_model *m)
{
    while (m->nheld) {
        void *p = release(m, m->nheld - 1);
        zp_put(m->pool, p);
        m->puts++;
    }
    check_pool(m);
    zp_pool_destroy(m->pool);
    m->pool = NULL;
    m->nidle = 0;
}

/* ---------------------------------------------------------- operations */

/* Expects exactly one misuse report since `before`, of `kind` (0: any of
 * the kinds a stale pointer may earn) about ptr. */
static void expect_misuse(pool_model *m, int before, int kind, const void *ptr,
                          const char *what)
{
    int n = atomic_load(&misuse_count) - before;
    CHECK(n == 1, "%s %p: %d misuse reports, want 1", what, ptr, n);
    int k = atomic_load(&misuse_kind);
    if (kind)
        CHECK(k == kind, "%s %p: misuse kind %d, want %d", what, ptr, k, kind);
    else
        CHECK(k == ZP_MISUSE_FOREIGN || k == ZP_MISUSE_DOUBLE_PUT || k == ZP_MISUSE_WRONG_POOL,
              "%s %p: misuse kind %d", what, ptr, k);
    CHECK(atomic_load(&misuse_ptr) == ptr, "%s: the report names another pointer", what);
    m->misuse++;
}

static size_t injected_now(pool_model *m)
{
    pthread_mutex_lock(&m->pv->lock);
    size_t n = m->pv->injected;
    pthread_mutex_unlock(&m->pv->lock);
    return n;
}

static void op_get(pool_model *m, reader *r, int timed)
{
    size_t size = rd_size(r), inj = injected_now(m);
    errno = 0;
    void *b = timed ? zp_get_timed(m->pool, size, 0) : zp_get(m->pool, size);
    if (b)
        take(m, b, size);
    else
        check_failure(m, errno, size, inj);
}

static void op_put(pool_model *m, reader *r)
{
    if (m->nheld == 0)
        return;
    size_t k = rd8(r) % m->nheld;
    size_t cap = m->h[k].cap;
    unsigned char *p = release(m, k);
    int before = atomic_load(&misuse_count);
    zp_put(m->pool, p);
    m->puts++;
    CHECK(atomic_load(&misuse_count) == before, "a clean put of %p was reported", (void *)p);
    /* the wipe is visible right away (no trim can unmap the buffer here:
     * no retention cap, and oversize buffers are gone) */
    if ((m->cfg.flags & ZP_WIPE_ON_PUT) && m->cfg.debug < 2 &&
        m->cfg.max_cached_bytes == SIZE_MAX && cap <= m->cfg.max_class)
        CHECK(all_zero(p, 64) && all_zero(p + cap - 64, 64),
              "WIPE_ON_PUT: %p not wiped after its put", (void *)p);
}

static void op_get_batch(pool_model *m, reader *r)
{
    void *bufs[40];
    size_t n = rd8(r) % 41, size = rd_size(r), inj = injected_now(m);
    for (size_t i = 0; i < n; i++)
        bufs[i] = (void *)(uintptr_t)0x5a5a; /* must not be mistaken for buffers */
    int rc = zp_get_batch(m->pool, size, bufs, n);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            take(m, bufs[i], size);
    } else {
        CHECK(n > 0, "zp_get_batch of 0 failed");
        check_failure(m, -rc, size, inj);
    }
}

static void op_put_batch(pool_model *m, reader *r)
{
    void *bufs[40];
    size_t n = rd8(r) % 41, k = 0;
    unsigned nulls = rd8(r);
    int before = atomic_load(&misuse_count);
    for (size_t i = 0; i < n && m->nheld; i++) {
        if (nulls & (1u << (i % 8)))
            bufs[k++] = NULL;
        bufs[k++] = release(m, m->nheld - 1 - (rd8(r) % m->nheld));
        m->puts++;
        if (k >= 38)
            break;
    }
    zp_put_batch(m->pool, bufs, k);
    CHECK(atomic_load(&misuse_count) == before, "a clean batch put was reported");
}

static void op_cross_put(pool_model *m, reader *r)
{
    size_t n = rd8(r) % 9, k = 0;
    for (size_t i = 0; i < n && m->nheld; i++) {
        helper.bufs[k++] = release(m, rd8(r) % m->nheld);
        m->puts++;
    }
    int before = atomic_load(&misuse_count);
    helper.pool = m->pool;
    helper.n = k;
    helper_run(HELP_PUT);
    CHECK(atomic_load(&misuse_count) == before, "a clean put on the helper was reported");
}

static void op_cross_get(pool_model *m, reader *r)
{
    size_t inj = injected_now(m);
    helper.pool = m->pool;
    helper.n = rd8(r) % 9;
    helper.size = rd_size(r);
    helper_run(HELP_GET);
    if (helper.rc == 0) {
        for (size_t i = 0; i < helper.n; i++)
            take(m, helper.bufs[i], helper.size);
    } else {
        check_failure(m, -helper.rc, helper.size, inj);
    }
}

static void op_stats(pool_model *m, reader *r)
{
    unsigned how = rd8(r);
    if (how % 8 == 0) {
        zp_stats_reset(m->pool);
        m->gets = m->puts = m->misuse = 0;
    } else if (how % 8 == 1 && devnull) {
        CHECK(zp_stats_write(m->pool, devnull, (int)(how / 8) % 3) == 0,
              "zp_stats_write failed");
    }
    check_pool(m);
}

static void op_trim(pool_model *m, reader *r)
{
    zp_trim(m->pool, (size_t)rd8(r) << 16);
}

static void op_fail_map(pool_model *m, reader *r)
{
    pthread_mutex_lock(&m->pv->lock);
    m->pv->fail_at = m->pv->map_calls + 1 + rd8(r) % 4;
    pthread_mutex_unlock(&m->pv->lock);
}

static void op_foreign(pool_model *m, int which, reader *r)
{
    char stackbuf[64];
    void *p = NULL;
    int kind = ZP_MISUSE_FOREIGN;
    pool_model *other = &pools[1 - which];
    unsigned how = rd8(r) % 4;
    if (how == 0) {
        p = stackbuf;
    } else if (how == 1) {
        static char heapish[4096]; /* not from any pool */
        p = heapish + rd8(r) % 64 * 64;
    } else if (how == 2 && m->nheld) {
        const held *h = &m->h[rd8(r) % m->nheld];
        size_t off = 1 + (size_t)rd16(r) % (h->cap - 1);
        p = h->ptr + off; /* interior */
    } else if (how == 3 && other->pool && other->nheld) {
        p = other->h[rd8(r) % other->nheld].ptr;
        kind = m->cfg.debug >= 1 ? ZP_MISUSE_WRONG_POOL : ZP_MISUSE_FOREIGN;
    } else {
        return;
    }
    int before = atomic_load(&misuse_count);
    zp_put(m->pool, p);
    expect_misuse(m, before, kind, p, "foreign put");
    CHECK(zp_capacity(m->pool, p) == 0, "zp_capacity of foreign %p is not 0", p);
}

static void op_double_put(pool_model *m, reader *r)
{
    /* at debug 0 a double put is not detected (documented): never there */
    if (m->cfg.debug < 1 || m->nidle == 0)
        return;
    void *p = m->idle[rd8(r) % m->nidle];
    if (is_held(p))
        return; /* handed out again since: a put would be legitimate */
    int before = atomic_load(&misuse_count);
    if (rd8(r) & 1) {
        zp_put(m->pool, p);
    } else {
        void *two[2] = {p, NULL};
        zp_put_batch(m->pool, two, 2);
    }
    /* DOUBLE_PUT, or FOREIGN / WRONG_POOL if its memory was unmapped and
     * mapped again since: once, and ignored */
    expect_misuse(m, before, 0, p, "double put");
}

static void op_recreate(int which)
{
    pool_model *m = &pools[which];
    destroy(m);
    create(m);
}

/* ------------------------------------------------------------- driver */

static void init_once(void)
{
    static pthread_t t;
    unsetenv("ZEROPOOL_DEBUG"); /* the input chooses the levels */
    zp_set_misuse_handler(on_misuse, NULL);
    devnull = fopen("/dev/null", "w");
    if (pthread_create(&t, NULL, helper_main, NULL) != 0)
        die("cannot start the helper thread");
    pthread_detach(t);
    for (int i = 0; i < NPOOLS; i++) {
        pools[i].pv = calloc(1, sizeof(provider));
        if (pools[i].pv == NULL)
            die("out of memory");
        pthread_mutex_init(&pools[i].pv->lock, NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    reader r = {data, size};
    int npools;
    pthread_once(&once, init_once);
    atomic_store(&misuse_count, 0);

    unsigned first = rd8(&r);
    npools = 1 + (first & 1);
    size_t shared = (first & 2) && npools == 2 ? (size_t)((first >> 2) + 1) << 20 : 0;
    shared_budget = NULL;
    if (shared)
        CHECK(zp_budget_create(shared, &shared_budget) == 0, "zp_budget_create failed");
    for (int i = 0; i < npools; i++) {
        provider *pv = pools[i].pv;
        pv->nlive = pv->bytes_live = pv->map_calls = pv->fail_at = pv->injected = pv->bad = 0;
        decode_config(&r, &pools[i]);
        if (shared_budget) {
            pools[i].cfg.budget = shared_budget;
            pools[i].cfg.max_bytes = 0;
            pools[i].budget = shared;
        }
        create(&pools[i]);
    }
    if (shared_budget)
        zp_budget_destroy(shared_budget); /* the pools keep it alive */
    for (int steps = 0; r.n > 0 && steps < 4000; steps++) {
        unsigned op = rd8(&r);
        int which = npools > 1 ? (int)(op >> 7) : 0;
        pool_model *m = &pools[which];
        unsigned k = op & 0x7F;
        if (k < 20)
            op_get(m, &r, 0);
        else if (k < 40)
            op_put(m, &r);
        else if (k < 50)
            op_get_batch(m, &r);
        else if (k < 60)
            op_put_batch(m, &r);
        else if (k < 66)
            op_get(m, &r, 1);
        else if (k < 72)
            op_cross_put(m, &r);
        else if (k < 78)
            op_cross_get(m, &r);
        else if (k < 90)
            op_stats(m, &r);
        else if (k < 96)
            op_trim(m, &r);
        else if (k < 100)
            op_fail_map(m, &r);
        else if (k < 110)
            op_foreign(m, which, &r);
        else if (k < 120)
            op_double_put(m, &r);
        else if (k < 123)
            op_recreate(which);
        check_pool(m);
        if (shared_budget)
            check_shared_budget(shared);
    }
    for (int i = 0; i < npools; i++) {
        provider *pv = pools[i].pv;
        destroy(&pools[i]);
        CHECK(pv->nlive == 0 && pv->bytes_live == 0,
              "after destroy the provider still has %zu regions, %zu bytes", pv->nlive,
              pv->bytes_live);
        CHECK(pv->bad == 0, "provider saw %zu bad calls", pv->bad);
    }
    return 0;
}
