/*
 * zp_bench — the benchmark driver. Runs the scenarios of bench/README.md
 * against the backends of backend.h and prints one JSON object per line on
 * stdout (progress goes to stderr). bench/run.sh runs it once per allocator
 * (glibc, then jemalloc/mimalloc/tcmalloc through LD_PRELOAD) and
 * bench/report.py merges the lines into the table, the JSON file and plots.
 *
 * Method (harness.c): each figure is calibrated (iterations chosen so one
 * repetition lasts --rep-ms), warmed up, then repeated --reps times. A
 * repetition whose thread(s) got less than 90% of a CPU (CPU time / wall
 * time, per thread) is thrown away and retried; a figure that cannot collect
 * --reps reliable repetitions within 3x as many attempts is refused
 * ("refused": true, no number) instead of printed.
 *
 * The zeropool-only families (hot_handle, batch, stats_cost, budget_cost,
 * debug_cost, depth) compare zeropool with itself, interleaved and over
 * several heap layouts: see compare_run. hot_handle (run with the hot
 * scenario) and the batch family also measure the cache handle API next
 * to the thread cache. The huge family (huge_cold, huge_touch) measures
 * the cold and touch rows with and without ZP_HUGE_PAGES. stats_cost needs this file built as zp_bench_twin
 * (-DZPB_TWIN, CMakeLists.txt). The object pool and async families have
 * their own drivers (sc_objects.c, sc_async.c), and so have the codec rows
 * (sc_codec.c) and the io_uring rows (sc_uring.c); this one only accepts their
 * names in --scenarios.
 *
 * Never run by ctest: no timing figure is ever a test.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "harness.h"

/* ---------------------------------------------------------------- options */

enum {
    SC_HOT = 1 << 0,
    SC_TOUCH = 1 << 1,
    SC_COLD = 1 << 2,
    SC_SCALE = 1 << 3,
    SC_HANDOFF = 1 << 4,
    SC_MIXED = 1 << 5,
    SC_COUNTS = 1 << 6,
    SC_BATCH = 1 << 7,      /* zeropool only, from here on */
    SC_STATS_COST = 1 << 8, /* zp_bench_twin only */
    SC_BUDGET_COST = 1 << 9,
    SC_DEBUG_COST = 1 << 10,
    SC_DEPTH = 1 << 11,
    SC_OBJECTS = 1 << 12, /* zp_bench_objects (sc_objects.c) */
    SC_ASYNC = 1 << 13,   /* zp_bench_async (sc_async.c) */
    SC_BULK = 1 << 14,    /* every backend again: bulk32, singles32 */
    SC_BURST = 1 << 15,   /* burst16, burst48, burst128 */
    SC_CODEC = 1 << 16,   /* zp_bench_codec (sc_codec.c) */
    SC_URING = 1 << 17,   /* zp_bench_uring (sc_uring.c) */
    SC_HUGE = 1 << 18,    /* huge_cold, huge_touch: ZP_HUGE_PAGES vs not */
    SC_SPREAD = 1 << 19,  /* *_spread: the bytes written spread over cache sets */
    SC_ALL = (1 << 20) - 1,
};

static const struct {
    const char *name;
    int bit;
} sc_names[] = {{"hot", SC_HOT},         {"touch", SC_TOUCH},
                {"cold", SC_COLD},       {"scale", SC_SCALE},
                {"handoff", SC_HANDOFF}, {"mixed", SC_MIXED},
                {"counts", SC_COUNTS},   {"batch", SC_BATCH},
                {"stats_cost", SC_STATS_COST},
                {"budget_cost", SC_BUDGET_COST},
                {"debug_cost", SC_DEBUG_COST},
                {"depth", SC_DEPTH},     {"objects", SC_OBJECTS},
                {"async", SC_ASYNC},     {"bulk", SC_BULK},
                {"burst", SC_BURST},     {"codec", SC_CODEC},
                {"uring", SC_URING},     {"huge", SC_HUGE},
                {"spread", SC_SPREAD},   {"all", SC_ALL}};

/* quick, reps, rep_ms and label (the allocator of this process: glibc,
 * jemalloc, ...) are the harness's (harness.h) */
static struct {
    int scenarios;
    int backends[BE_COUNT];
    int nbackends;
    size_t sizes[16];
    int nsizes;
    int cold_n;
    int max_threads;
    const char *mcount_lib;
    const char *verify_symbol;
    int st; /* keep the process single-threaded where possible */
} opt;

static long minflt_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static long majflt_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_majflt;
}

/* ------------------------------------------------------------------ output */

static const char *competitor(int be)
{
    if (be_is_zeropool(be))
        return "zeropool"; /* the twins: builds and copies of the library */
    return be == BE_MALLOC ? harness.label : be_names[be];
}

/* One result line. variant, config: for the zeropool-only families (which
 * measure one pool in several configurations), else NULL. extra: more
 * ",\"key\":value" text, or NULL. */
static void emit_v(const char *scenario, size_t size, int threads, int be,
                   const char *variant, const char *config, const char *unit,
                   const summary *s, const series *ser, uint64_t iters,
                   const char *extra)
{
    emit_line(scenario, size, threads, competitor(be), be_names[be], variant,
              config, unit, s, ser, iters, extra);
}

static void emit(const char *scenario, size_t size, int threads, int be,
                 const char *unit, const summary *s, const series *ser,
                 uint64_t iters, const char *extra)
{
    emit_v(scenario, size, threads, be, NULL, NULL, unit, s, ser, iters, extra);
}

/* ------------------------------------------------------- measured loops */

enum { MODE_HOT, MODE_TOUCH };

/* get, write one byte (hot) or one byte in every page (touch), put. */
ZPB_INLINE void loop_body(int be, int mode, size_t size, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        char *p = be_get(be, size);
        if (__builtin_expect(p == NULL, 0))
            abort();
        if (mode == MODE_HOT) {
            ((volatile char *)p)[0] = (char)i;
        } else {
            for (size_t off = 0; off < size; off += page_size)
                ((volatile char *)p)[off] = (char)i;
        }
        ZPB_ESCAPE(p);
        be_put(be, p);
    }
}

/* One specialised copy per backend and mode: direct calls, no dispatch. */
static NOINLINE void run_loop(int be, int mode, size_t size, uint64_t n)
{
#define CASE(B, M)                                                             \
    if (be == B && mode == M) {                                                \
        loop_body(B, M, size, n);                                              \
        return;                                                                \
    }
    CASE(BE_ZEROPOOL, MODE_HOT)
    CASE(BE_ZEROPOOL, MODE_TOUCH)
    CASE(BE_MALLOC, MODE_HOT)
    CASE(BE_MALLOC, MODE_TOUCH)
    CASE(BE_NAIVE, MODE_HOT)
    CASE(BE_NAIVE, MODE_TOUCH)
    CASE(BE_ZPCACHE, MODE_HOT) /* hot_handle only */
#ifdef ZPB_HAVE_DPDK
    CASE(BE_DPDK32, MODE_HOT)
    CASE(BE_DPDK32, MODE_TOUCH)
    CASE(BE_DPDK256, MODE_HOT)
    CASE(BE_DPDK256, MODE_TOUCH)
#endif
#ifdef ZPB_TWIN
    CASE(BE_ZPNC, MODE_HOT)
    CASE(BE_ZPNC, MODE_TOUCH)
    CASE(BE_ZPAA, MODE_HOT)
    CASE(BE_ZPAA, MODE_TOUCH)
#endif
#undef CASE
    fprintf(stderr, "zp_bench: no loop for %s, mode %d\n", be_names[be], mode);
    abort();
}

/* ------------------------------------------------------- 1, 2: hot, touch */

typedef struct {
    int be, mode;
    size_t size;
} loop_ctx;

static void loop_fn(void *p, uint64_t n)
{
    loop_ctx *c = p;
    run_loop(c->be, c->mode, c->size, n);
}

static void sc_single(int be, int mode, size_t size)
{
    loop_ctx c = {be, mode, size};
    if (be_setup(be, size) != 0)
        exit(2);
    uint64_t n = calibrate(loop_fn, &c);
    series s = time_single(loop_fn, &c, n);
    summary sm = summarize(&s);
    emit(mode == MODE_HOT ? "hot" : "touch", size, 1, be, "ns/op", &sm, &s, n,
         NULL);
    be_teardown(be);
}

/* ------------------------------------------------- 6: mixed (Zipf) sizes */

#define MIX_SEQ 4096 /* power of two; a repetition replays it whole */
#define MIX_LIVE 32
#define MIX_CLASSES 14 /* 512 B << 0..13 = 512 B .. 4 MiB */

static uint32_t mix_size[MIX_SEQ];
static uint8_t mix_slot[MIX_SEQ];

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* Size class k (512 B << k) has weight 1/(k+1): small requests are common,
 * 4 MiB ones rare (about 3%). Sizes are spread inside the class. */
static void mix_init(void)
{
    double w[MIX_CLASSES], total = 0;
    for (int k = 0; k < MIX_CLASSES; k++)
        total += w[k] = 1.0 / (k + 1);
    for (int i = 0; i < MIX_SEQ; i++) {
        double u = (double)(rng() >> 11) / 9007199254740992.0 * total;
        int k = 0;
        while (k < MIX_CLASSES - 1 && u >= w[k])
            u -= w[k++];
        uint32_t hi = 512u << k, lo = hi / 2;
        mix_size[i] = k == 0 ? 512 : lo + 1 + (uint32_t)(rng() % (hi - lo));
        mix_slot[i] = (uint8_t)(rng() % MIX_LIVE);
    }
}

typedef struct {
    int be, mode;
    void *live[MIX_LIVE];
    uint64_t pos;
} mix_ctx;

ZPB_INLINE void mix_body(int be, int mode, mix_ctx *c, uint64_t n)
{
    uint64_t pos = c->pos;
    for (uint64_t i = 0; i < n; i++, pos++) {
        uint32_t j = (uint32_t)(pos & (MIX_SEQ - 1));
        size_t size = mix_size[j];
        unsigned s = mix_slot[j];
        be_put(be, c->live[s]);
        char *p = be_get(be, size);
        if (__builtin_expect(p == NULL, 0))
            abort();
        if (mode == MODE_HOT) {
            ((volatile char *)p)[0] = (char)i;
        } else {
            for (size_t off = 0; off < size; off += page_size)
                ((volatile char *)p)[off] = (char)i;
        }
        ZPB_ESCAPE(p);
        c->live[s] = p;
    }
    c->pos = pos;
}

static NOINLINE void mix_fn(void *p, uint64_t n)
{
    mix_ctx *c = p;
    c->pos = 0; /* every call replays the sequence from its start */
#define CASE(B, M)                                                             \
    if (c->be == B && c->mode == M) {                                          \
        mix_body(B, M, c, n);                                                  \
        return;                                                                \
    }
    CASE(BE_ZEROPOOL, MODE_HOT)
    CASE(BE_ZEROPOOL, MODE_TOUCH)
    CASE(BE_MALLOC, MODE_HOT)
    CASE(BE_MALLOC, MODE_TOUCH)
    CASE(BE_NAIVE, MODE_HOT)
    CASE(BE_NAIVE, MODE_TOUCH)
#undef CASE
}

static void sc_mixed(int be, int mode)
{
    mix_ctx c = {.be = be, .mode = mode};
    if (be_setup(be, 0) != 0)
        exit(2);
    for (int i = 0; i < MIX_LIVE; i++)
        c.live[i] = be_get(be, 4096);
    uint64_t n = calibrate(mix_fn, &c);
    n = (n + MIX_SEQ - 1) / MIX_SEQ * MIX_SEQ;
    mix_fn(&c, n); /* warm-up over the whole sequence */
    series s = time_single(mix_fn, &c, n);
    summary sm = summarize(&s);
    for (int i = 0; i < MIX_LIVE; i++)
        be_put(be, c.live[i]);
    emit(mode == MODE_HOT ? "mixed_hot" : "mixed_touch", 0, 1, be, "ns/op",
         &sm, &s, n, ",\"sizes\":\"zipf 512B-4MiB\"");
    be_teardown(be);
}

/* ------------------------------- bulk, 32 singles, bursts: every backend */

/*
 * Where a round writes in a buffer: byte 0, or with spread a byte of the
 * first page picked from the buffer's address (the same buffer, the same
 * byte; 64 cache lines, one per L1 set of a 4 KiB way). Page-aligned
 * buffers (zeropool's promise; tcmalloc and mimalloc give them too) have
 * byte 0 in one L1 set: 32 of them are 32 lines for that set's 8 ways, and
 * each round misses L1 on them, where DPDK's objects (64 KiB + a header)
 * and malloc's chunks start in different sets. The *_spread rows measure
 * the pools without that effect (bench/README.md, "Reading the spread
 * rows").
 */
ZPB_INLINE size_t write_off(const void *p, int spread)
{
    uintptr_t a = (uintptr_t)p;
    return spread ? (size_t)(((a >> 12) ^ (a >> 16)) & 63) * 64 : 0;
}

/*
 * Rounds of k buffers, one thread: k gets (one byte written in each), then
 * the k puts in the order got. bulk: one batch call each way where the
 * backend has one (be_get_bulk / be_put_bulk: zp_get_batch / zp_put_batch,
 * rte_mempool_get_bulk / rte_mempool_put_bulk; malloc and naive have none
 * and make k single calls); else k single calls each way. Value: ns per
 * buffer (its get and its put).
 */
typedef struct {
    int be;
    size_t size;
    unsigned k;
    int bulk;
    int spread; /* write_off */
} round_ctx;

ZPB_INLINE void round_body(int be, int bulk, int spread, const round_ctx *c, uint64_t n)
{
    void *b[ZPB_BURST_MAX];
    const unsigned k = c->k;
    for (uint64_t r = 0; r < n; r++) {
        if (bulk) {
            if (__builtin_expect(be_get_bulk(be, c->size, b, k) != 0, 0))
                abort();
            for (unsigned i = 0; i < k; i++)
                ((volatile char *)b[i])[write_off(b[i], spread)] = (char)r;
        } else {
            for (unsigned i = 0; i < k; i++) {
                char *p = be_get(be, c->size);
                if (__builtin_expect(p == NULL, 0))
                    abort();
                ((volatile char *)p)[write_off(p, spread)] = (char)r;
                b[i] = p;
            }
        }
        ZPB_ESCAPE(b);
        if (bulk) {
            be_put_bulk(be, b, k);
        } else {
            for (unsigned i = 0; i < k; i++)
                be_put(be, b[i]);
        }
    }
}

static NOINLINE void round_fn(void *p, uint64_t n)
{
    const round_ctx *c = p;
#define CASE(B)                                                                \
    if (c->be == B) {                                                          \
        if (c->bulk)                                                           \
            c->spread ? round_body(B, 1, 1, c, n) : round_body(B, 1, 0, c, n); \
        else                                                                   \
            c->spread ? round_body(B, 0, 1, c, n) : round_body(B, 0, 0, c, n); \
        return;                                                                \
    }
    CASE(BE_ZEROPOOL)
    CASE(BE_MALLOC)
    CASE(BE_NAIVE)
#ifdef ZPB_HAVE_DPDK
    CASE(BE_DPDK32)
    CASE(BE_DPDK256)
#endif
#undef CASE
    fprintf(stderr, "zp_bench: no round loop for %s\n", be_names[c->be]);
    abort();
}

/* scenario: "bulk32", "singles32", "burst16", ... */
static void sc_rounds(const char *scenario, int be, size_t size, unsigned k,
                      int bulk, int spread)
{
    round_ctx c = {be, size, k, bulk, spread};
    if (be_setup(be, size) != 0)
        exit(2);
    uint64_t n = calibrate(round_fn, &c);
    series s = time_single(round_fn, &c, n);
    for (int i = 0; i < s.n; i++)
        s.v[i] /= k; /* ns per round -> per buffer */
    summary sm = summarize(&s);
    char extra[64];
    snprintf(extra, sizeof extra, ",\"burst\":%u,\"bulk_calls\":%s", k,
             bulk ? "true" : "false");
    emit(scenario, size, 1, be, "ns/buffer", &sm, &s, n * k, extra);
    be_teardown(be);
}

static void sc_bulk(int be)
{
    const size_t sizes[2] = {4096, 65536};
    for (int i = 0; i < 2; i++) {
        sc_rounds("bulk32", be, sizes[i], ZPB_BULK, 1, 0);
        sc_rounds("singles32", be, sizes[i], ZPB_BULK, 0, 0);
    }
}

static void sc_burst(int be)
{
    static const unsigned ks[3] = {16, 48, ZPB_BURST_MAX};
    for (int j = 0; j < 3; j++) {
        char name[32];
        snprintf(name, sizeof name, "burst%u", ks[j]);
        sc_rounds(name, be, ZPB_BURST_SIZE, ks[j], 0, 0);
    }
}

/* The rows where zeropool trails DPDK at 64 KiB, written spread (write_off):
 * bulk32_spread, singles32_spread, burst128_spread. */
static void sc_spread(int be)
{
    sc_rounds("bulk32_spread", be, ZPB_BURST_SIZE, ZPB_BULK, 1, 1);
    sc_rounds("singles32_spread", be, ZPB_BURST_SIZE, ZPB_BULK, 0, 1);
    sc_rounds("burst128_spread", be, ZPB_BURST_SIZE, ZPB_BURST_MAX, 0, 1);
}

/* ------------------------------------------------------------ 4: scaling */

typedef struct {
    series per_thread; /* ns per op, median over threads */
    series total;      /* total ops per second */
} scale_acc;

static void scale_role(void *ctx, int idx, uint64_t n)
{
    (void)idx;
    loop_ctx *c = ctx;
    be_thread_enter(c->be);
    run_loop(c->be, c->mode, c->size, n);
}

static bool scale_attempt(team *t, void *p)
{
    scale_acc *acc = p;
    double worst, per[MAX_THREADS];
    double wall = team_wall(t, &worst);
    for (int i = 0; i < t->nthreads; i++)
        per[i] = (double)(t->t1[i] - t->t0[i]) / (double)t->n;
    double pt = median_of(per, t->nthreads);
    series_add(&acc->per_thread, pt, worst);
    series_add(&acc->total, (double)t->n * t->nthreads / wall * 1e9, worst);
    return series_more(&acc->per_thread);
}

static void sc_scale(int be, int mode, size_t size, int nthreads)
{
    loop_ctx c = {be, mode, size};
    if (be_setup(be, size) != 0)
        exit(2);
    team t = {.nthreads = nthreads, .role = scale_role, .ctx = &c};
    t.n = calibrate(loop_fn, &c); /* single-thread calibration */
    be_quiesce(c.be); /* DPDK: the main thread's cache back to the pool */
    scale_acc acc = {0};
    team_run(&t, scale_attempt, &acc);
    summary pt = summarize(&acc.per_thread);
    summary tot = summarize(&acc.total);
    char extra[256];
    snprintf(extra, sizeof extra,
             ",\"total_ops_per_s\":{\"median\":%.6g,\"min\":%.6g,\"max\":%.6g}",
             tot.refused ? 0 : tot.median, tot.refused ? 0 : tot.min,
             tot.refused ? 0 : tot.max);
    emit(mode == MODE_HOT ? "scale_hot" : "scale_touch", size, nthreads, be,
         "ns/op/thread", &pt, &acc.per_thread, t.n,
         tot.refused ? ",\"total_ops_per_s\":null" : extra);
    be_teardown(be);
}

/* ---------------------------------------------------- 5: cross-thread */

#define RING 32 /* power of two; bounds buffers in flight */

typedef struct {
    alignas(64) atomic_size_t head; /* written by the producer */
    size_t cached_tail;
    alignas(64) atomic_size_t tail; /* written by the consumer */
    size_t cached_head;
    alignas(64) void *slot[RING];
} spsc_ring;

static inline void ring_push(spsc_ring *r, void *p)
{
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    while (h - r->cached_tail == RING) {
        /* acquire: the consumer has finished reading the slot it freed */
        r->cached_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (h - r->cached_tail == RING)
            cpu_relax();
    }
    r->slot[h & (RING - 1)] = p;
    /* release: the slot (and the buffer's contents) are visible first */
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
}

static inline void *ring_pop(spsc_ring *r)
{
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    while (r->cached_head == t) {
        /* acquire: pairs with the producer's release on head */
        r->cached_head = atomic_load_explicit(&r->head, memory_order_acquire);
        if (r->cached_head == t)
            cpu_relax();
    }
    void *p = r->slot[t & (RING - 1)];
    /* release: our read of the slot happens before the producer reuses it */
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return p;
}

typedef struct {
    int be;
    size_t size;
    bool ring_only;
    spsc_ring ring;
} handoff_ctx;

ZPB_INLINE void handoff_body(int be, handoff_ctx *c, int idx, uint64_t n)
{
    if (idx == 0) { /* producer: get, write one byte, pass on */
        for (uint64_t i = 0; i < n; i++) {
            char *p;
            if (c->ring_only) {
                p = (char *)(uintptr_t)((i << 6) | 64);
            } else {
                p = be_get(be, c->size);
                if (__builtin_expect(p == NULL, 0))
                    abort();
                ((volatile char *)p)[0] = (char)i;
            }
            ring_push(&c->ring, p);
        }
    } else { /* consumer: take, put */
        for (uint64_t i = 0; i < n; i++) {
            void *p = ring_pop(&c->ring);
            ZPB_ESCAPE(p);
            if (!c->ring_only)
                be_put(be, p);
        }
    }
}

static NOINLINE void handoff_role(void *ctx, int idx, uint64_t n)
{
    handoff_ctx *c = ctx;
    be_thread_enter(c->be);
    switch (c->be) {
#ifdef ZPB_HAVE_DPDK
    case BE_DPDK32:
        handoff_body(BE_DPDK32, c, idx, n);
        break;
    case BE_DPDK256:
        handoff_body(BE_DPDK256, c, idx, n);
        break;
#endif
    case BE_ZEROPOOL:
        handoff_body(BE_ZEROPOOL, c, idx, n);
        break;
    case BE_MALLOC:
        handoff_body(BE_MALLOC, c, idx, n);
        break;
    default:
        handoff_body(BE_NAIVE, c, idx, n);
        break;
    }
}

static bool handoff_attempt(team *t, void *p)
{
    series *s = p;
    double worst, wall = team_wall(t, &worst);
    series_add(s, wall / (double)t->n, worst);
    return series_more(s);
}

/* Iterations for one repetition of about rep_ms, from one short team run
 * (which also warms both threads up). */
static uint64_t handoff_n(handoff_ctx *c)
{
    const uint64_t n = 512;
    team t = {.nthreads = 2, .role = handoff_role, .ctx = c, .n = n};
    series s = {0};
    int saved = harness.reps;
    harness.reps = 1;
    team_run(&t, handoff_attempt, &s);
    harness.reps = saved;
    double per = s.attempts ? s.v[0] : 0; /* v[0]: the first kept, if any */
    if (s.n == 0 || per <= 0)
        per = 1000; /* nothing reliable: assume 1 us per buffer */
    double m = harness.rep_ms * 1e6 / per;
    if (m < 256)
        m = 256;
    if (m > 1e8)
        m = 1e8;
    return (uint64_t)m;
}

static void sc_handoff(int be, size_t size)
{
    summary sm = {0};
    series full = {0}, ring = {0};
    uint64_t n = 0;
    if (ncpus < 2) {
        sm.refused = true;
        snprintf(sm.note, sizeof sm.note,
                 "refused: cross-thread needs 2 CPUs, this process has 1");
        emit("handoff", size, 2, be, "ns/buffer", &sm, &full, 0, NULL);
        return;
    }
    if (be_setup(be, size) != 0)
        exit(2);
    handoff_ctx *c = aligned_alloc(64, sizeof *c);
    memset(c, 0, sizeof *c);
    c->be = be;
    c->size = size;

    c->ring_only = true;
    n = handoff_n(c);
    team tr = {.nthreads = 2, .role = handoff_role, .ctx = c, .n = n};
    team_run(&tr, handoff_attempt, &ring);

    c->ring_only = false;
    n = handoff_n(c);
    team tf = {.nthreads = 2, .role = handoff_role, .ctx = c, .n = n};
    team_run(&tf, handoff_attempt, &full);

    summary sf = summarize(&full), sr = summarize(&ring);
    char extra[200] = "";
    if (sf.refused || sr.refused) {
        sm = sf.refused ? sf : sr;
    } else {
        sm.median = sf.median - sr.median;
        sm.min = sf.min - sr.median;
        sm.max = sf.max - sr.median;
        snprintf(extra, sizeof extra, ",\"raw_median\":%.6g,\"ring_ns\":%.6g",
                 sf.median, sr.median);
    }
    emit("handoff", size, 2, be, "ns/buffer", &sm, &full, n, extra);
    free(c);
    be_teardown(be);
}

/* ------------------------------------------- zeropool-only families */

/*
 * These measure zeropool against itself: one pool in several
 * configurations (batch, budget_cost, debug_cost, depth), through a cache
 * handle or the thread's cache (hot_handle, batch), or two builds of the
 * library (stats_cost). Each result carries "variant" and "config". The
 * single-thread ones run their variants interleaved over heap layouts
 * (compare_run, harness.c).
 */

static zp_pool *pool_new(const char *spec)
{
    zp_config cfg;
    zp_pool *p;
    if (zpb_config_parse(spec, &cfg) != 0) {
        fprintf(stderr, "zp_bench: bad pool config '%s'\n", spec);
        exit(2);
    }
    int rc = zp_pool_create(&cfg, &p);
    if (rc != 0) {
        fprintf(stderr, "zp_bench: zp_pool_create(%s): %s\n", spec,
                zp_strerror(rc));
        exit(2);
    }
    return p;
}

/* ------------------------------------- hot-path costs: counters, budget, debug */

#define COST_LAYOUTS 4

typedef struct {
    int be;
    size_t size;
    const char *spec; /* pool config */
    zp_pool *pool;
    zp_cache *cache; /* BE_ZPCACHE: the handle the loop goes through */
    int mode;        /* MODE_HOT (0) or MODE_TOUCH */
} hot_ctx;

/* The hot loop (get, write one byte, put) on c->pool (through c->cache for
 * BE_ZPCACHE), or the touch loop (every page written) for MODE_TOUCH. */
static void hot_fn(void *p, uint64_t n)
{
    hot_ctx *c = p;
    be_bind(c->be, c->pool, c->cache);
    run_loop(c->be, c->mode, c->size, n);
}

static void hot_open(variant *v)
{
    hot_ctx *c = v->ctx;
    zp_config cfg;
    int rc = zpb_config_parse(c->spec, &cfg);
    if (rc == 0)
        rc = be_open(c->be, &cfg, &c->pool, &c->cache);
    if (rc != 0) {
        fprintf(stderr, "zp_bench: %s pool (%s): %s\n", be_names[c->be],
                c->spec, rc < -1 ? zp_strerror(rc) : "bad config");
        exit(2);
    }
}

static void hot_close(variant *v)
{
    hot_ctx *c = v->ctx;
    be_close(c->be, c->pool, c->cache);
    c->pool = NULL;
    c->cache = NULL;
    be_bind(c->be, NULL, NULL);
}

/* The hot (or touch) loop on each variant's pool, over COST_LAYOUTS
 * layouts of reps rounds each. */
static void loop_compare(const char *scenario, size_t size, int mode, const int *bes,
                         const char *const *names, const char *const *configs,
                         int nv)
{
    hot_ctx c[MAX_VARIANTS];
    variant v[MAX_VARIANTS];
    memset(v, 0, sizeof v);
    for (int i = 0; i < nv; i++) {
        c[i] = (hot_ctx){bes[i], size, configs[i], NULL, NULL, mode};
        v[i].name = names[i];
        v[i].config = configs[i];
        v[i].backend = be_names[bes[i]];
        v[i].fn = hot_fn;
        v[i].ctx = &c[i];
        v[i].per_iter = 1;
        v[i].open = hot_open;
        v[i].close = hot_close;
    }
    compare_run(v, nv, harness.reps, COST_LAYOUTS);
    compare_emit(scenario, size, v, nv, harness.reps * COST_LAYOUTS,
                 mode == MODE_HOT ? "ns/pair" : "ns/op", NULL);
}

static void hot_compare(const char *scenario, size_t size, const int *bes,
                        const char *const *names, const char *const *configs,
                        int nv)
{
    loop_compare(scenario, size, MODE_HOT, bes, names, configs, nv);
}

#ifdef ZPB_TWIN
/* Counters compiled out (zeropool_nc) vs in (zeropool, the same sources),
 * and a second copy of the latter (zeropool_copy): the placement control. */
static void sc_stats_cost(size_t size)
{
    const int bes[3] = {BE_ZPNC, BE_ZEROPOOL, BE_ZPAA};
    const char *const names[3] = {"no_counters", "counters", "counters_copy"};
    const char *const configs[3] = {"default", "default", "default"};
    hot_compare("stats_cost", size, bes, names, configs, 3);
}
#endif

/* A private 1 GiB budget (config.max_bytes) vs none: the hit path. A second
 * pool without a budget is the control: what placement alone moves. */
static void sc_budget_cost(size_t size)
{
    const char *const configs[3] = {"default", "max_bytes=1g", "default"};
    const char *const names[3] = {"no_budget", "budget_1GiB", "no_budget_2"};
    const int bes[3] = {BE_ZEROPOOL, BE_ZEROPOOL, BE_ZEROPOOL};
    hot_compare("budget_cost", size, bes, names, configs, 3);
}

/* config.debug = 0, 1, 2 on the hot loop. */
static void sc_debug_cost(size_t size)
{
    const char *const configs[3] = {"debug=0", "debug=1", "debug=2"};
    const char *const names[3] = {"debug0", "debug1", "debug2"};
    const int bes[3] = {BE_ZEROPOOL, BE_ZEROPOOL, BE_ZEROPOOL};
    hot_compare("debug_cost", size, bes, names, configs, 3);
}

/*
 * The hot loop through a cache handle (zp_cache_get / zp_cache_put, one
 * handle, made warm like the pool) vs through the thread's cache (zp_get /
 * zp_put), in alternating rounds over COST_LAYOUTS layouts, with a second
 * thread-cache pool as the placement control. Run with the hot scenario.
 */
static void sc_hot_handle(size_t size)
{
    const char *const configs[3] = {"default", "default", "default"};
    const char *const names[3] = {"thread_cache", "handle", "thread_cache_2"};
    const int bes[3] = {BE_ZEROPOOL, BE_ZPCACHE, BE_ZEROPOOL};
    hot_compare("hot_handle", size, bes, names, configs, 3);
}

/* ------------------------------------------------------------- batch */

#define BATCH 32
#define MSG_SLOTS 8 /* messages of BATCH pointers in the cross-thread ring */

/* Single-producer/single-consumer ring of whole batches: one message is
 * BATCH pointers, written in place by the producer and read in place by
 * the consumer; one acquire/release pair per message. */
typedef struct {
    alignas(64) atomic_size_t head; /* written by the producer */
    size_t cached_tail;
    alignas(64) atomic_size_t tail; /* written by the consumer */
    size_t cached_head;
    alignas(64) void *msg[MSG_SLOTS][BATCH];
} msg_ring;

typedef struct {
    zp_pool *pool; /* first: pool_open sets it */
    size_t size;
    int batch; /* 1: zp_get_batch/zp_put_batch; 0: BATCH zp_get/zp_put */
    int handles; /* 1: through one cache handle per thread (cache[idx]) */
    zp_cache *cache[2]; /* thread idx's handle, or NULL: its thread cache */
    msg_ring ring;
} batch_ctx;

/* h: the calling thread's handle, or NULL for its thread cache. Callers
 * pass a NULL constant or a pointer known non-NULL, so each loop is
 * compiled once per kind of cache, without a test per call. */
ZPB_INLINE void batch_take(batch_ctx *c, zp_cache *h, void **bufs, uint64_t r)
{
    if (c->batch) {
        int rc = h ? zp_cache_get_batch(h, c->size, bufs, BATCH)
                   : zp_get_batch(c->pool, c->size, bufs, BATCH);
        if (__builtin_expect(rc != 0, 0))
            abort();
        for (int i = 0; i < BATCH; i++)
            ((volatile char *)bufs[i])[0] = (char)r;
    } else {
        for (int i = 0; i < BATCH; i++) {
            char *p = h ? zp_cache_get(h, c->size) : zp_get(c->pool, c->size);
            if (__builtin_expect(p == NULL, 0))
                abort();
            ((volatile char *)p)[0] = (char)r;
            bufs[i] = p;
        }
    }
    ZPB_ESCAPE(bufs);
}

ZPB_INLINE void batch_give(batch_ctx *c, zp_cache *h, void **bufs)
{
    ZPB_ESCAPE(bufs);
    if (c->batch) {
        if (h)
            zp_cache_put_batch(h, bufs, BATCH);
        else
            zp_put_batch(c->pool, bufs, BATCH);
    } else {
        for (int i = 0; i < BATCH; i++) {
            if (h)
                zp_cache_put(h, bufs[i]);
            else
                zp_put(c->pool, bufs[i]);
        }
    }
}

/* n rounds of BATCH gets (one byte written in each), then the BATCH puts,
 * in the order got. */
ZPB_INLINE void batch_rounds(batch_ctx *c, zp_cache *h, uint64_t n)
{
    void *bufs[BATCH];
    for (uint64_t r = 0; r < n; r++) {
        batch_take(c, h, bufs, r);
        batch_give(c, h, bufs);
    }
}

/* Thread idx's rounds, through its handle if it has one. */
static NOINLINE void batch_run(batch_ctx *c, int idx, uint64_t n)
{
    zp_cache *h = c->cache[idx];
    if (h)
        batch_rounds(c, h, n);
    else
        batch_rounds(c, NULL, n);
}

/* One thread (variant of compare_run, or calibration): thread 0's rounds. */
static void batch_fn(void *p, uint64_t n) { batch_run(p, 0, n); }

static void batch_mt_role(void *ctx, int idx, uint64_t n)
{
    batch_run(ctx, idx, n);
}

/* Thread 0 gets BATCH buffers into a ring message, thread 1 puts them. */
ZPB_INLINE void batch_x_body(batch_ctx *c, zp_cache *h, int idx, uint64_t n)
{
    msg_ring *q = &c->ring;
    if (idx == 0) {
        for (uint64_t r = 0; r < n; r++) {
            size_t hd = atomic_load_explicit(&q->head, memory_order_relaxed);
            while (hd - q->cached_tail == MSG_SLOTS) {
                q->cached_tail = atomic_load_explicit(&q->tail, memory_order_acquire);
                if (hd - q->cached_tail == MSG_SLOTS)
                    cpu_relax();
            }
            batch_take(c, h, q->msg[hd % MSG_SLOTS], r);
            atomic_store_explicit(&q->head, hd + 1, memory_order_release);
        }
    } else {
        for (uint64_t r = 0; r < n; r++) {
            size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
            while (q->cached_head == t) {
                q->cached_head = atomic_load_explicit(&q->head, memory_order_acquire);
                if (q->cached_head == t)
                    cpu_relax();
            }
            batch_give(c, h, q->msg[t % MSG_SLOTS]);
            atomic_store_explicit(&q->tail, t + 1, memory_order_release);
        }
    }
}

static NOINLINE void batch_x_role(void *ctx, int idx, uint64_t n)
{
    batch_ctx *c = ctx;
    zp_cache *h = c->cache[idx];
    if (h)
        batch_x_body(c, h, idx, n);
    else
        batch_x_body(c, NULL, idx, n);
}

/* With c->handles, one handle per thread (nthreads of them) on c->pool. */
static void batch_handles_open(batch_ctx *c, int nthreads)
{
    for (int i = 0; c->handles && i < nthreads; i++) {
        int rc = zp_cache_create(c->pool, &c->cache[i]);
        if (rc != 0) {
            fprintf(stderr, "zp_bench: zp_cache_create: %s\n", zp_strerror(rc));
            exit(2);
        }
    }
}

/* Destroys c's handles (before its pool). */
static void batch_handles_close(batch_ctx *c)
{
    for (int i = 0; i < 2; i++) {
        zp_cache_destroy(c->cache[i]);
        c->cache[i] = NULL;
    }
}

typedef struct {
    series s;       /* all layouts */
    zp_pool *pool;  /* this layout's */
    bool xthread;
    int goal;       /* s.n to reach in this layout */
    int tries;      /* attempts in this layout */
    int limit;      /* at most this many */
    zstat last;
    zsum z;
} batch_acc;

static void batch_ready(team *t, void *p)
{
    (void)t;
    batch_acc *a = p;
    zstat_read(a->pool, &a->last);
}

static bool batch_attempt(team *t, void *p)
{
    batch_acc *a = p;
    double worst, wall = team_wall(t, &worst), v, units;
    zstat now;
    zstat_read(a->pool, &now);
    if (a->xthread) { /* buffers moved through the pair of threads */
        units = (double)t->n * BATCH;
        v = wall / units;
    } else { /* each thread's own cost per buffer, median over threads */
        double per[MAX_THREADS];
        for (int i = 0; i < t->nthreads; i++)
            per[i] = (double)(t->t1[i] - t->t0[i]) / ((double)t->n * BATCH);
        v = median_of(per, t->nthreads);
        units = (double)t->n * BATCH * t->nthreads;
    }
    int before = a->s.n;
    a->tries++;
    if (a->s.attempts == 0 || worst < a->s.worst_cpu)
        a->s.worst_cpu = worst;
    a->s.attempts++;
    if (worst >= RELIABLE_CPU) {
        a->s.v[a->s.n++] = v;
        a->s.misses = 0;
    }
    if (a->s.n > before)
        zsum_add(&a->z, &a->last, &now, units);
    a->last = now;
    bool more = a->s.n < a->goal && a->tries < a->limit;
    if (more && a->s.n == before)
        backoff(a->s.misses++);
    return more;
}

/* Iterations for a team repetition of about rep_ms, from short team runs:
 * a first one (cold: it maps and faults in memory) sizes a second one of
 * about a quarter repetition, which gives the answer. */
static uint64_t team_calibrate(role_fn role, void *ctx, int nthreads)
{
    uint64_t n = 64, m = 16;
    for (int pass = 0; pass < 2; pass++) {
        team t = {.nthreads = nthreads, .role = role, .ctx = ctx, .n = n};
        series s = {0};
        int saved = harness.reps;
        harness.reps = 1;
        team_run(&t, handoff_attempt, &s); /* value: wall ns per iteration */
        harness.reps = saved;
        double per = s.n ? s.v[0] : 0;
        if (per <= 0)
            per = 20000; /* nothing reliable: assume 20 us per round */
        double x = harness.rep_ms * 1e6 / per;
        m = x < 16 ? 16 : x > 1e8 ? (uint64_t)1e8 : (uint64_t)x;
        if (m / 4 <= n)
            break;
        n = m / 4;
    }
    return m;
}

static const char *const batch_configs[2] = {"default", "depth=16"};
#define BATCH_LAYOUTS 4

/* a fresh pool (v->config) for each layout of compare_run */
static void pool_open(variant *v)
{
    zp_pool **pool = v->ctx; /* the context's first member */
    *pool = v->stats = pool_new(v->config);
}

static void pool_close(variant *v)
{
    zp_pool **pool = v->ctx;
    zp_pool_destroy(*pool);
    *pool = v->stats = NULL;
}

/* The batch modes: mode & 1 batch calls (else singles), mode & 2 through
 * cache handles (else the threads' caches). */
#define BATCH_MODES 4
static const char *const batch_mode_names[BATCH_MODES] = {
    "single", "batch", "handle_single", "handle_batch"};

/* a fresh pool (v->config) and, for the handle modes, its handle */
static void batch_open(variant *v)
{
    pool_open(v);
    batch_handles_open(v->ctx, 1);
}

static void batch_close(variant *v)
{
    batch_handles_close(v->ctx);
    pool_close(v);
}

static void sc_batch_st(size_t size, const char *config)
{
    batch_ctx *c[BATCH_MODES];
    variant v[BATCH_MODES];
    memset(v, 0, sizeof v);
    for (int i = 0; i < BATCH_MODES; i++) {
        c[i] = aligned_alloc(64, sizeof *c[i]);
        memset(c[i], 0, sizeof *c[i]);
        c[i]->size = size;
        c[i]->batch = i & 1;
        c[i]->handles = i >> 1;
        v[i].name = batch_mode_names[i];
        v[i].config = config;
        v[i].backend = be_names[c[i]->handles ? BE_ZPCACHE : BE_ZEROPOOL];
        v[i].fn = batch_fn;
        v[i].ctx = c[i];
        v[i].per_iter = BATCH;
        v[i].open = batch_open;
        v[i].close = batch_close;
    }
    compare_run(v, BATCH_MODES, harness.reps, BATCH_LAYOUTS);
    compare_emit("batch_st", size, v, BATCH_MODES, harness.reps * BATCH_LAYOUTS,
                 "ns/buffer", ",\"batch\":32");
    for (int i = 0; i < BATCH_MODES; i++)
        free(c[i]);
}

/*
 * xthread 0: both threads get and put their own buffers; 1: A gets, B puts.
 * The modes (singles or batch calls, through the threads' caches or one
 * handle per thread) take turns by layout (BATCH_LAYOUTS of them, reps
 * repetitions each): each layout has fresh pools, fresh threads and a
 * different heap spacer in each thread (see compare_run).
 */
static void sc_batch_team(size_t size, const char *config, int xthread)
{
    const char *scen = xthread ? "batch_xthread" : "batch_mt";
    if (ncpus < 2) {
        for (int b = 0; b < BATCH_MODES; b++) {
            summary sm = {.refused = true};
            snprintf(sm.note, sizeof sm.note,
                     "refused: needs 2 CPUs, this process has 1");
            emit_v(scen, size, 2, b >> 1 ? BE_ZPCACHE : BE_ZEROPOOL,
                   batch_mode_names[b], config, "ns/buffer", &sm, NULL, 0,
                   NULL);
        }
        return;
    }
    batch_ctx *c = aligned_alloc(64, sizeof *c);
    role_fn role = xthread ? batch_x_role : batch_mt_role;
    batch_acc acc[BATCH_MODES];
    uint64_t n[BATCH_MODES] = {0};
    double by_layout[BATCH_MODES][MAX_LAYOUTS];
    int nl[BATCH_MODES] = {0};
    bool failed = false;
    memset(acc, 0, sizeof acc);
    for (int l = 0; l < BATCH_LAYOUTS && !failed; l++) {
        for (int j = 0; j < BATCH_MODES && !failed; j++) {
            int b = (j + l) % BATCH_MODES;
            memset(c, 0, sizeof *c);
            c->size = size;
            c->batch = b & 1;
            c->handles = b >> 1;
            c->pool = pool_new(config);
            batch_handles_open(c, 2);
            if (n[b] == 0)
                n[b] = xthread ? team_calibrate(role, c, 2) : calibrate(batch_fn, c);
            team t = {.nthreads = 2, .role = role, .ctx = c, .n = n[b],
                      .on_ready = batch_ready, .spacer = layout_spacer(l)};
            batch_acc *a = &acc[b];
            int first = a->s.n;
            a->pool = c->pool;
            a->xthread = xthread;
            a->goal = first + harness.reps;
            a->tries = 0;
            a->limit = harness.reps * 3;
            team_run(&t, batch_attempt, a);
            if (a->s.n > first)
                by_layout[b][nl[b]++] = median_range(a->s.v, first, a->s.n);
            failed = a->s.n < a->goal;
            batch_handles_close(c);
            zp_pool_destroy(c->pool);
        }
    }
    for (int b = 0; b < BATCH_MODES; b++) {
        summary sm = summarize_n(&acc[b].s, harness.reps * BATCH_LAYOUTS);
        char extra[512];
        int k = snprintf(extra, sizeof extra, ",\"layouts\":%d", nl[b]);
        if (!sm.refused)
            k += json_list(extra + k, sizeof extra - (size_t)k, "by_layout",
                           by_layout[b], nl[b]);
        k += zsum_json(extra + k, sizeof extra - (size_t)k, &acc[b].z);
        snprintf(extra + k, sizeof extra - (size_t)k, ",\"batch\":32");
        emit_v(scen, size, 2, b >> 1 ? BE_ZPCACHE : BE_ZEROPOOL,
               batch_mode_names[b], config, "ns/buffer", &sm, &acc[b].s, n[b],
               extra);
    }
    free(c);
}

static void sc_batch(size_t size)
{
    for (int i = 0; i < 2; i++) {
        sc_batch_st(size, batch_configs[i]);
        sc_batch_team(size, batch_configs[i], 0);
        sc_batch_team(size, batch_configs[i], 1);
    }
}

/* ------------------------------------------------------- depth sweep */

/*
 * cache_depth 4 .. 128 with 64 KiB buffers: bursts of k gets (one byte
 * written in each) then the k puts in the order got, one thread, ns per
 * buffer (one get + one put), median of 5 — the workload behind the
 * cache_depth default in zeropool.h. Each of the 5 repetitions has its own
 * pool in its own heap layout (compare_run), so that the median is not one
 * layout's figure.
 */
#define DEPTH_SIZE 65536
#define DEPTH_REPS 5

typedef struct {
    zp_pool *pool; /* first: pool_open sets it */
    int k;
} burst_ctx;

static NOINLINE void burst_fn(void *p, uint64_t n)
{
    burst_ctx *c = p;
    void *b[128];
    for (uint64_t r = 0; r < n; r++) {
        for (int i = 0; i < c->k; i++) {
            char *q = zp_get(c->pool, DEPTH_SIZE);
            if (__builtin_expect(q == NULL, 0))
                abort();
            ((volatile char *)q)[0] = 1;
            b[i] = q;
        }
        ZPB_ESCAPE(b);
        for (int i = 0; i < c->k; i++)
            zp_put(c->pool, b[i]);
    }
}

static void sc_depth(void)
{
    static const int depths[] = {4, 8, 16, 32, 64, 128};
    static const int ks[] = {16, 48, 128};
    for (size_t d = 0; d < sizeof depths / sizeof depths[0]; d++) {
        for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
            char config[32], name[32], more[96];
            snprintf(config, sizeof config, "depth=%d", depths[d]);
            snprintf(name, sizeof name, "k=%d", ks[j]);
            snprintf(more, sizeof more, ",\"cache_depth\":%d,\"burst\":%d",
                     depths[d], ks[j]);
            burst_ctx c = {NULL, ks[j]};
            variant v = {.name = name, .config = config,
                         .backend = be_names[BE_ZEROPOOL],
                         .fn = burst_fn, .ctx = &c, .per_iter = ks[j],
                         .open = pool_open, .close = pool_close};
            compare_run(&v, 1, 1, DEPTH_REPS);
            compare_emit("depth", DEPTH_SIZE, &v, 1, DEPTH_REPS, "ns/op", more);
        }
    }
}

/* ------------------------------------------------ children (fresh processes) */

static char self_exe[4096];
static char **saved_argv;

/*
 * Cold start, in a fresh process: the first N gets (each buffer kept, every
 * page written: page faults included). With prefill, zeropool first
 * reserves N buffers with zp_reserve (mapped, carved, every page written,
 * idle in the depot); the other backends have N buffers got, touched and
 * put back (for malloc it shows what the allocator keeps). prefill 3: the
 * same, every page written at write_off instead of its byte 0
 * (cold_prefill_spread). Prints: ns_per_get minflt_per_get cpu_share.
 */
static int child_cold(int be, size_t size, int n, int prefill)
{
    int spread = prefill & 2; /* cold_prefill_spread: every page at write_off */
    prefill &= 1;
    char **bufs = calloc((size_t)n, sizeof *bufs);
    if (!bufs || be_setup(be, size) != 0)
        return 2;
    if (prefill && be == BE_ZEROPOOL) {
        if (zp_reserve(zpb_pool, size, (size_t)n) != 0)
            return 2;
    } else if (prefill) {
        for (int i = 0; i < n; i++) {
            bufs[i] = be_get(be, size);
            for (size_t off = 0; off < size; off += page_size)
                ((volatile char *)bufs[i])[off + write_off(bufs[i], spread)] = 1;
        }
        for (int i = n - 1; i >= 0; i--)
            be_put(be, bufs[i]);
    }
    long f0 = minflt_now();
    tsample a, b;
    sample_begin(&a);
    for (int i = 0; i < n; i++) {
        char *p = be_get(be, size);
        if (!p)
            abort();
        for (size_t off = 0; off < size; off += page_size)
            ((volatile char *)p)[off + write_off(p, spread)] = (char)i;
        ZPB_ESCAPE(p);
        bufs[i] = p;
    }
    sample_end(&b);
    long f1 = minflt_now();
    printf("%.6g %.6g %.6g\n", (double)(b.wall - a.wall) / n,
           (double)(f1 - f0) / n, share(&a, &b));
    return 0;
}

/* Runs this program again with args; returns its stdout (static buffer). */
static const char *run_child(char *const args[], const char *preload)
{
    static char out[4096];
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (preload)
            setenv("LD_PRELOAD", preload, 1);
        execv(self_exe, args);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t r;
    while ((r = read(fds[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = 0;
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return NULL;
    return out;
}

/* The cold row of backend be; for the huge family, of a zeropool pool of
 * config spec, emitted as scenario/variant (scenario NULL: cold or
 * cold_prefill, the default config). */
static void sc_cold_as(int be, size_t size, int prefill, const char *scenario,
                       const char *variant, const char *spec)
{
    char bes[16], sz[32], nn[16], pf[4];
    snprintf(bes, sizeof bes, "%s", be_names[be]);
    snprintf(sz, sizeof sz, "%zu", size);
    snprintf(nn, sizeof nn, "%d", opt.cold_n);
    snprintf(pf, sizeof pf, "%d", prefill);
    char *args[] = {saved_argv[0], "--child", "cold", bes, sz, nn, pf,
                    opt.st ? "st" : "mt", (char *)spec, NULL};
    if (scenario == NULL)
        scenario = prefill ? "cold_prefill" : "cold";
    series s = {0};
    double flt[MAX_REPS * 3];
    int nflt = 0;
    summary sm = {0};
    while (series_more(&s)) {
        const char *o = run_child(args, NULL);
        double ns, f, cpu;
        if (!o || sscanf(o, "%lf %lf %lf", &ns, &f, &cpu) != 3) {
            sm.refused = true;
            snprintf(sm.note, sizeof sm.note, "child process failed");
            emit_v(scenario, size, 1, be, variant, spec, "ns/get", &sm, &s,
                   (uint64_t)opt.cold_n, NULL);
            return;
        }
        int before = s.n;
        series_add(&s, ns, cpu);
        if (s.n > before)
            flt[nflt++] = f;
    }
    sm = summarize(&s);
    char extra[96] = "";
    if (nflt)
        snprintf(extra, sizeof extra, ",\"minflt_per_get\":%.6g",
                 median_of(flt, nflt));
    emit_v(scenario, size, 1, be, variant, spec, "ns/get", &sm, &s,
           (uint64_t)opt.cold_n, extra);
}

static void sc_cold(int be, size_t size, int prefill)
{
    sc_cold_as(be, size, prefill, NULL, NULL, NULL);
}

/*
 * ZP_HUGE_PAGES against the default config, zeropool only, at 64 KiB and
 * 4 MiB:
 *   huge_cold   the cold row (a fresh process and pool, the first N gets,
 *               every page written, buffers kept) per config;
 *   huge_touch  the touch loop (get, write every page, put) on a warm
 *               pool, the configs interleaved over heap layouts.
 * With transparent huge pages in madvise mode, a huge pool's first touch
 * of each 2 MiB faults in one huge page (zeroing 2 MiB at once) instead of
 * 512 small ones, and its TLB covers 2 MiB per entry.
 */
static void sc_huge(void)
{
    const size_t sizes[2] = {65536, 4194304};
    const char *const configs[2] = {"default", "huge=1"};
    const char *const names[2] = {"small_pages", "huge_pages"};
    const int bes[2] = {BE_ZEROPOOL, BE_ZEROPOOL};
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++)
            sc_cold_as(BE_ZEROPOOL, sizes[i], 0, "huge_cold", names[k], configs[k]);
    for (int i = 0; i < 2; i++)
        loop_compare("huge_touch", sizes[i], MODE_TOUCH, bes, names, configs, 2);
}

/* ------------------------------------------------ 7: counts per operation */

/*
 * The counts child runs traced by its parent (ptrace, PTRACE_SYSCALL): the
 * parent counts syscall entries between marker signals the child sends
 * itself with one tgkill. Each window's count includes that one tgkill, so
 * the parent subtracts 1. Window 0 is empty and checks exactly that.
 * Malloc calls are counted by libzpb_mcount.so, preloaded into the child
 * only. Page faults come from getrusage inside the child.
 */
typedef void (*mcount_fn)(uint64_t *allocs, uint64_t *frees);

static pid_t marker_pid, marker_tid;

static void marker(void)
{
    syscall(SYS_tgkill, marker_pid, marker_tid, SIGUSR1);
}

typedef struct {
    long flt, majflt;
    uint64_t allocs, frees;
} counters;

static void counters_read(counters *c, mcount_fn mc)
{
    c->flt = minflt_now();
    c->majflt = majflt_now();
    c->allocs = c->frees = 0;
    if (mc)
        mc(&c->allocs, &c->frees);
}

static int child_counts(int be, size_t size, int ncold, long nsteady)
{
    mcount_fn mc = (mcount_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "zpb_mcount_read");
    char **bufs = calloc((size_t)ncold, sizeof *bufs);
    counters a[3], b[3];
    if (!bufs || be_setup(be, size) != 0)
        return 2;
    marker_pid = getpid();
    marker_tid = (pid_t)syscall(SYS_gettid);
    signal(SIGUSR1, SIG_IGN); /* untraced run: markers are harmless */

    counters_read(&a[0], mc); /* window 0: empty */
    marker();
    marker();
    counters_read(&b[0], mc);

    counters_read(&a[1], mc); /* window 1: cold gets */
    marker();
    for (int i = 0; i < ncold; i++) {
        bufs[i] = be_get(be, size);
        for (size_t off = 0; off < size; off += page_size)
            ((volatile char *)bufs[i])[off] = 1;
    }
    marker();
    counters_read(&b[1], mc);
    for (int i = ncold - 1; i >= 0; i--)
        be_put(be, bufs[i]);
    run_loop(be, MODE_TOUCH, size, (uint64_t)nsteady); /* warm-up */

    counters_read(&a[2], mc); /* window 2: steady state */
    marker();
    run_loop(be, MODE_TOUCH, size, (uint64_t)nsteady);
    marker();
    counters_read(&b[2], mc);
    for (int w = 0; w < 3; w++)
        printf("%ld %ld %llu %llu\n", b[w].flt - a[w].flt,
               b[w].majflt - a[w].majflt,
               (unsigned long long)(b[w].allocs - a[w].allocs),
               (unsigned long long)(b[w].frees - a[w].frees));
    printf("%d\n", mc != NULL);
    be_teardown(be);
    return 0;
}

/* Traces the counts child; fills syscalls[3] (-1: unknown). */
static const char *run_traced(char *const args[], const char *preload,
                              long syscalls[3])
{
    static char out[4096];
    int fds[2];
    syscalls[0] = syscalls[1] = syscalls[2] = -1;
    if (pipe(fds) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (preload)
            setenv("LD_PRELOAD", preload, 1);
        ptrace(PTRACE_TRACEME, 0, NULL, NULL); /* may fail: then untraced */
        execv(self_exe, args);
        _exit(127);
    }
    close(fds[1]);
    /* the pipe is drained after the child exits: output is small */
    int st, window = -1, in_syscall = 0, traced = 0;
    long count = 0;
    for (;;) {
        if (waitpid(pid, &st, 0) < 0)
            die("waitpid");
        if (WIFEXITED(st) || WIFSIGNALED(st))
            break;
        if (!WIFSTOPPED(st))
            continue;
        int sig = WSTOPSIG(st), inject = 0;
        if (!traced) { /* the stop after execve */
            traced = 1;
            ptrace(PTRACE_SETOPTIONS, pid, NULL,
                   (void *)(uintptr_t)(PTRACE_O_TRACESYSGOOD |
                                       PTRACE_O_EXITKILL));
        } else if (sig == (SIGTRAP | 0x80)) {
            in_syscall = !in_syscall;
            if (in_syscall && window >= 0 && window % 2 == 0)
                count++;
        } else if (sig == SIGUSR1) {
            window++;
            if (window % 2 == 0)
                count = 0;
            else if (window / 2 < 3)
                syscalls[window / 2] = count - 1; /* minus the marker */
        } else {
            inject = sig;
        }
        ptrace(PTRACE_SYSCALL, pid, NULL, (void *)(uintptr_t)inject);
    }
    size_t len = 0;
    ssize_t r;
    while ((r = read(fds[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = 0;
    close(fds[0]);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return NULL;
    return out;
}

static void sc_counts(int be, size_t size)
{
    char bes[16], sz[32], nc[16], ns[16];
    long nsteady = size >= (1u << 20) ? 200 : 2000;
    snprintf(bes, sizeof bes, "%s", be_names[be]);
    snprintf(sz, sizeof sz, "%zu", size);
    snprintf(nc, sizeof nc, "%d", opt.cold_n);
    snprintf(ns, sizeof ns, "%ld", nsteady);
    char *args[] = {saved_argv[0], "--child", "counts", bes, sz, nc, ns,
                    opt.st ? "st" : "mt", NULL};
    char preload[8192] = "";
    const char *cur = getenv("LD_PRELOAD");
    if (opt.mcount_lib && access(opt.mcount_lib, R_OK) == 0)
        snprintf(preload, sizeof preload, "%s%s%s", opt.mcount_lib,
                 cur && *cur ? " " : "", cur ? cur : "");
    long sys[3];
    const char *o = run_traced(args, preload[0] ? preload : NULL, sys);
    long flt[3] = {0}, maj[3] = {0};
    unsigned long long al[3] = {0}, fr[3] = {0};
    int have_mc = 0;
    summary sm = {0};
    if (!o || sscanf(o, "%ld %ld %llu %llu %ld %ld %llu %llu %ld %ld %llu %llu %d",
                     &flt[0], &maj[0], &al[0], &fr[0], &flt[1], &maj[1], &al[1],
                     &fr[1], &flt[2], &maj[2], &al[2], &fr[2], &have_mc) != 13) {
        sm.refused = true;
        snprintf(sm.note, sizeof sm.note, "counts child failed");
        emit("counts_steady", size, 1, be, "per op", &sm, NULL, 0, NULL);
        return;
    }
    if (sys[0] != 0)
        fprintf(stderr, "zp_bench: syscall counting off (%ld): %s\n", sys[0],
                sys[0] < 0 ? "ptrace unavailable" : "marker check failed");
    bool sys_ok = sys[0] == 0;
    const long ops[3] = {1, opt.cold_n, nsteady};
    for (int w = 1; w < 3; w++) {
        char extra[512];
        int k = snprintf(extra, sizeof extra, ",\"ops\":%ld", ops[w]);
        k += snprintf(extra + k, sizeof extra - (size_t)k,
                      ",\"minflt_per_op\":%.6g", (double)flt[w] / ops[w]);
        if (sys_ok)
            k += snprintf(extra + k, sizeof extra - (size_t)k,
                          ",\"syscalls_per_op\":%.6g", (double)sys[w] / ops[w]);
        else
            k += snprintf(extra + k, sizeof extra - (size_t)k,
                          ",\"syscalls_per_op\":null");
        if (have_mc)
            snprintf(extra + k, sizeof extra - (size_t)k,
                     ",\"malloc_calls_per_op\":%.6g,\"free_calls_per_op\":%.6g",
                     (double)al[w] / ops[w], (double)fr[w] / ops[w]);
        else
            snprintf(extra + k, sizeof extra - (size_t)k,
                     ",\"malloc_calls_per_op\":null,\"free_calls_per_op\":null");
        summary s = {.median = NAN, .min = NAN, .max = NAN};
        snprintf(s.note, sizeof s.note, "%s",
                 !sys_ok ? "syscalls not counted (ptrace unavailable)"
                 : !have_mc ? "malloc calls not counted (no libzpb_mcount.so)"
                            : "");
        printf("{\"scenario\":\"%s\",\"size\":%zu,\"threads\":1,"
               "\"competitor\":\"%s\",\"backend\":\"%s\",\"run\":\"%s\","
               "\"unit\":\"per op\"%s,\"refused\":false,\"note\":\"%s\"}\n",
               w == 1 ? "counts_cold" : "counts_steady", size, competitor(be),
               be_names[be], harness.label, extra, s.note);
        fflush(stdout);
        fprintf(stderr, "  %-13s %-8zu %-9s faults %.3g  syscalls %.3g  "
                        "mallocs %.3g /op\n",
                w == 1 ? "counts_cold" : "counts_steady", size, competitor(be),
                (double)flt[w] / ops[w],
                sys_ok ? (double)sys[w] / ops[w] : -1.0,
                have_mc ? (double)al[w] / ops[w] : -1.0);
    }
}

/* ------------------------------------------------------------------- main */

/*
 * glibc skips its atomic instructions (malloc arena locks, pthread mutexes)
 * while a process has never created a thread. The programs zeropool is for
 * are multi-threaded, so by default every measurement runs in a process that
 * has created (and joined) one thread (become_multithreaded, harness.c).
 * --st keeps the single-thread scenarios in a never-threaded process instead.
 */

static void usage(void)
{
    fprintf(stderr,
            "usage: zp_bench [--quick] [--reps N] [--rep-ms MS]\n"
            "                [--scenarios hot,touch,cold,scale,handoff,mixed,"
            "counts,\n"
            "                 batch,stats_cost,budget_cost,debug_cost,depth,\n"
            "                 objects,async,bulk,burst,spread,codec,uring,huge|all]\n"
            "                [--backends zeropool,malloc,naive"
#ifdef ZPB_HAVE_DPDK
            ",dpdk32,dpdk256"
#endif
            "] [--label NAME]\n"
            "                [--sizes 4096,65536,...] [--cold-n N]"
            " [--max-threads N]\n"
            "                [--mcount-lib PATH] [--verify-symbol NAME] [--st]\n"
            "Prints one JSON object per result on stdout. See bench/README.md.\n");
    exit(2);
}

static void parse_sizes(const char *s)
{
    opt.nsizes = 0;
    while (*s && opt.nsizes < 16) {
        char *end;
        unsigned long long v = strtoull(s, &end, 0);
        if (*end == 'k' || *end == 'K')
            v <<= 10, end++;
        else if (*end == 'm' || *end == 'M')
            v <<= 20, end++;
        if (v == 0)
            usage();
        opt.sizes[opt.nsizes++] = (size_t)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            usage();
    }
}

static void parse_list(const char *s, int scen)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    if (scen)
        opt.scenarios = 0;
    else
        opt.nbackends = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (scen) {
            int found = 0;
            for (size_t i = 0; i < sizeof sc_names / sizeof sc_names[0]; i++)
                if (strcmp(tok, sc_names[i].name) == 0)
                    opt.scenarios |= sc_names[i].bit, found = 1;
            if (!found)
                usage();
        } else {
            int b = be_parse(tok);
            if (b < 0 || b == BE_ZPCACHE) /* a handle is owner-only: it is
                                             measured inside hot and batch */
                usage();
            opt.backends[opt.nbackends++] = b;
        }
    }
}

int main(int argc, char **argv)
{
    saved_argv = argv;
    harness_init();
    ssize_t len = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (len <= 0)
        snprintf(self_exe, sizeof self_exe, "%s", argv[0]);
    else
        self_exe[len] = 0;

    if (argc >= 8 && strcmp(argv[1], "--child") == 0) {
        static zp_config child_cfg;
        if (strcmp(argv[7], "mt") == 0)
            become_multithreaded();
        if (argc >= 9) { /* the pool's config (huge_cold) */
            if (zpb_config_parse(argv[8], &child_cfg) != 0)
                return 2;
            zpb_cfg = &child_cfg;
        }
        int be = be_parse(argv[3]);
        size_t size = (size_t)strtoull(argv[4], NULL, 0);
        if (be < 0)
            return 2;
        if (strcmp(argv[2], "cold") == 0)
            return child_cold(be, size, atoi(argv[5]), atoi(argv[6]));
        if (strcmp(argv[2], "counts") == 0)
            return child_counts(be, size, atoi(argv[5]), atol(argv[6]));
        return 2;
    }

    opt.scenarios = SC_ALL;
    opt.cold_n = 64;
    opt.max_threads = 0;
    parse_list("zeropool,malloc,naive", 0);
    parse_sizes("4096,65536,1048576,4194304");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int took = harness_option(argc, argv, i); /* --quick, --reps, ... */
        if (took < 0) {
            usage();
        } else if (took > 0) {
            if (strcmp(a, "--quick") == 0)
                opt.cold_n = 32;
            i += took - 1;
        } else if (strcmp(a, "--st") == 0) {
            opt.st = 1;
        } else if (!v) {
            usage();
        } else if (strcmp(a, "--scenarios") == 0) {
            parse_list(v, 1), i++;
        } else if (strcmp(a, "--backends") == 0) {
            parse_list(v, 0), i++;
        } else if (strcmp(a, "--sizes") == 0) {
            parse_sizes(v), i++;
        } else if (strcmp(a, "--cold-n") == 0) {
            opt.cold_n = atoi(v), i++;
        } else if (strcmp(a, "--max-threads") == 0) {
            opt.max_threads = atoi(v), i++;
        } else if (strcmp(a, "--mcount-lib") == 0) {
            opt.mcount_lib = v, i++;
        } else if (strcmp(a, "--verify-symbol") == 0) {
            opt.verify_symbol = v, i++;
        } else {
            usage();
        }
    }
    /* (and ZEROPOOL_DEBUG is unset: it would override config.debug in
     * every pool the benchmark configures) */
    if (harness_check("zp_bench") != 0 || opt.cold_n < 1)
        usage();
    /* a preloaded allocator really is the one this process calls */
    if (opt.verify_symbol && !dlsym(RTLD_DEFAULT, opt.verify_symbol)) {
        fprintf(stderr, "zp_bench: %s not found: the %s allocator is not "
                        "loaded (LD_PRELOAD=%s)\n",
                opt.verify_symbol, harness.label,
                getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "");
        return 3;
    }
    static char mcount_default[4200];
    if (!opt.mcount_lib) { /* built next to the driver */
        snprintf(mcount_default, sizeof mcount_default, "%s", self_exe);
        char *slash = strrchr(mcount_default, '/');
        if (slash) {
            snprintf(slash + 1, sizeof mcount_default - (size_t)(slash + 1 - mcount_default),
                     "libzpb_mcount.so");
            opt.mcount_lib = mcount_default;
        }
    }
    int maxt = opt.max_threads > 0 ? opt.max_threads : ncpus;
    if (maxt > MAX_THREADS)
        maxt = MAX_THREADS;

    pin_self(0);
    mix_init();
    fprintf(stderr, "zp_bench: run %s, backends", harness.label);
    for (int b = 0; b < opt.nbackends; b++)
        fprintf(stderr, " %s", competitor(opt.backends[b]));
    fprintf(stderr, ", %d CPUs, %d reps of ~%.0f ms\n", ncpus, harness.reps,
            harness.rep_ms);
    harness_meta(!opt.st);
#ifdef ZPB_HAVE_DPDK
    /* DPDK: the EAL, once, on this (pinned) thread; if it cannot start, the
     * run says why on stdout and bench/run.sh skips the DPDK columns */
    bool want_dpdk = false;
    for (int b = 0; b < opt.nbackends; b++)
        want_dpdk |= be_is_dpdk(opt.backends[b]);
    if (want_dpdk) {
        char why[512];
        if (zpb_dpdk_init(opt.sizes, opt.nsizes, why, sizeof why) != 0) {
            fprintf(stderr, "zp_bench: DPDK skipped: %s\n", why);
            for (char *q = why; *q; q++)
                if (*q == '"' || *q == '\\')
                    *q = '\'';
            printf("{\"skipped_run\":\"%s\"}\n", why);
            return 4;
        }
    }
#endif

    if (!opt.st)
        become_multithreaded();
    /* single-thread scenarios first, for every backend: with --st the
     * process has created no thread yet */
    for (int b = 0; b < opt.nbackends; b++) {
        int be = opt.backends[b];
        if (opt.scenarios & SC_HOT)
            for (int i = 0; i < opt.nsizes; i++)
                sc_single(be, MODE_HOT, opt.sizes[i]);
        if (opt.scenarios & SC_TOUCH)
            for (int i = 0; i < opt.nsizes; i++)
                sc_single(be, MODE_TOUCH, opt.sizes[i]);
        /* DPDK: one fixed-size mempool per size, no mixed sizes */
        if ((opt.scenarios & SC_MIXED) && !be_is_dpdk(be)) {
            sc_mixed(be, MODE_HOT);
            sc_mixed(be, MODE_TOUCH);
        }
        if (opt.scenarios & SC_BULK)
            sc_bulk(be);
        if (opt.scenarios & SC_BURST)
            sc_burst(be);
        if (opt.scenarios & SC_SPREAD)
            sc_spread(be);
    }
    for (int b = 0; b < opt.nbackends; b++) {
        int be = opt.backends[b];
        if (be_is_dpdk(be))
            continue; /* a fresh process each: the EAL would start in each */
        if (opt.scenarios & SC_COLD) /* fresh child processes */
            for (int i = 0; i < opt.nsizes; i++) {
                sc_cold(be, opt.sizes[i], 0);
                sc_cold(be, opt.sizes[i], 1);
            }
        if (opt.scenarios & SC_SPREAD) /* prefilled, every page at write_off */
            sc_cold_as(be, ZPB_BURST_SIZE, 3, "cold_prefill_spread", NULL, NULL);
        if (opt.scenarios & SC_COUNTS)
            for (int i = 0; i < opt.nsizes; i++)
                sc_counts(be, opt.sizes[i]);
    }
    for (int b = 0; b < opt.nbackends; b++) {
        int be = opt.backends[b];
        if (opt.scenarios & SC_HANDOFF)
            for (int i = 0; i < opt.nsizes; i++)
                sc_handoff(be, opt.sizes[i]);
        if (opt.scenarios & SC_SCALE) {
            const size_t ss[2] = {65536, 1048576};
            for (int m = MODE_HOT; m <= MODE_TOUCH; m++)
                for (int i = 0; i < 2; i++)
                    for (int t = 1; t <= maxt; t = t * 2 > maxt && t < maxt
                                                         ? maxt
                                                         : t * 2)
                        sc_scale(be, m, ss[i], t);
        }
    }

    /* zeropool against itself: only in the run that measures zeropool */
    int has_zp = 0;
    for (int b = 0; b < opt.nbackends; b++)
        has_zp |= opt.backends[b] == BE_ZEROPOOL;
    if (has_zp) {
        const size_t two[2] = {4096, 65536};
        if (opt.scenarios & SC_STATS_COST) {
#ifdef ZPB_TWIN
            for (int i = 0; i < 2; i++)
                sc_stats_cost(two[i]);
#else
            if (opt.scenarios != SC_ALL)
                fprintf(stderr, "zp_bench: stats_cost is measured by "
                                "zp_bench_twin (bench/run.sh runs it)\n");
#endif
        }
        /* the object pool and async families have drivers of their own */
        if ((opt.scenarios & SC_OBJECTS) && opt.scenarios != SC_ALL)
            fprintf(stderr, "zp_bench: objects is measured by zp_bench_objects "
                            "(bench/run.sh runs it)\n");
        if ((opt.scenarios & SC_ASYNC) && opt.scenarios != SC_ALL)
            fprintf(stderr, "zp_bench: async is measured by zp_bench_async "
                            "(bench/run.sh runs it)\n");
        if ((opt.scenarios & SC_CODEC) && opt.scenarios != SC_ALL)
            fprintf(stderr, "zp_bench: codec is measured by zp_bench_codec "
                            "(bench/run.sh runs it)\n");
        if ((opt.scenarios & SC_URING) && opt.scenarios != SC_ALL)
            fprintf(stderr, "zp_bench: uring is measured by zp_bench_uring "
                            "(bench/run.sh runs it)\n");
        if (opt.scenarios & SC_HOT) /* the hot rows through a handle */
            for (int i = 0; i < opt.nsizes; i++)
                sc_hot_handle(opt.sizes[i]);
        if (opt.scenarios & SC_BUDGET_COST)
            sc_budget_cost(65536);
        if (opt.scenarios & SC_DEBUG_COST)
            for (int i = 0; i < 2; i++)
                sc_debug_cost(two[i]);
        if (opt.scenarios & SC_DEPTH)
            sc_depth();
        if (opt.scenarios & SC_BATCH)
            for (int i = 0; i < 2; i++)
                sc_batch(two[i]);
        if (opt.scenarios & SC_HUGE)
            sc_huge();
    }
    return 0;
}
