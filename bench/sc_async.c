/*
 * sc_async.c — zp_bench_async: async acquisition (zp_loop, zp_get_async,
 * zp_loop_dispatch, zp_cancel) seen from an event loop. Two scenarios
 * (bench/README.md, "The async rows"), 64 KiB buffers from one pool with a
 * tiny private budget (config.max_bytes), so the loop's gets must wait:
 *
 *   async_wake   put on thread B -> callback on the loop thread A. Each
 *                round, A's zp_get_async returns EINPROGRESS (B holds every
 *                buffer the budget allows); B takes a timestamp and puts one
 *                buffer; A, woken through zp_loop_fd, calls zp_loop_dispatch
 *                and the callback takes the second timestamp. Per repetition
 *                the median (p50) and p99 of the rounds' latencies, in us.
 *                Variants: A sleeping in poll() (poll_block, what an event
 *                loop does) and A spinning on poll() with timeout 0
 *                (poll_spin: the library's share without the kernel's
 *                wake-up of a sleeping thread).
 *   async_stall  the longest single zeropool call on the loop thread while
 *                its requests wait and 1-2 other threads get and put at full
 *                speed on the same pool and budget. The budget holds one
 *                slab of 4 KiB buffers (the other threads': one of them is
 *                held throughout, so the slab is never idle, never
 *                unmapped) and 8 buffers of 64 KiB, 6 of which are held
 *                throughout: 2 circulate among the loop's ASYNC_INFLIGHT
 *                requests, which therefore always wait. Each turn the loop
 *                puts what its callbacks got (each put wakes the next
 *                request), dispatches once its descriptor is readable,
 *                queues new requests in the slots served, and every
 *                ASYNC_CANCEL_EVERY turns cancels one request; every
 *                zp_get_async, zp_loop_dispatch, zp_cancel and zp_put is
 *                timed alone. While requests wait, the budget closes the
 *                pool's gates: every put of the other threads takes the
 *                slow path and wakes the head request (the budget's queue
 *                lock; the head's wake-up), at full speed. They use
 *                another size class so that they keep working: on the
 *                loop's own class every buffer they put would be handed to
 *                the loop's waiting requests and their own gets would fail
 *                with ENOBUFS. (Before puts handed buffers to the first in
 *                line, their gets took every buffer back within a
 *                microsecond of its put: this benchmark once ran 4,000
 *                turns without a callback.)
 *                Per repetition p50, p99, p99.9 and max, in us.
 *
 * Repetitions: team_run (harness.c), the threads pinned one per CPU; a
 * repetition counts only if every thread got >= 90% of a CPU (the loop
 * thread sleeps in poll() on its own: it is judged by its run-queue delay
 * when it was also preempted). In async_stall each call is bracketed by
 * its own sample: a call during which the loop thread was preempted
 * without having gone to sleep itself (CPU share < 90%) measures the
 * scheduler, not the library, and is left out of the percentiles and
 * counted ("excluded_calls"); a call that slept on its own (a lock, the
 * kernel) is kept and counted ("slept_calls"). Never run by ctest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define ASYNC_SIZE ((size_t)64 << 10)
#define HAMMER_SIZE ((size_t)4 << 10) /* async_stall: the other threads' class */
#define ASYNC_MAX_HELD 256       /* buffers a thread may hold */
#define ASYNC_INFLIGHT 4         /* async_stall: requests the loop keeps queued */
#define ASYNC_CANCEL_EVERY 8     /* async_stall: one cancel per this many turns */
#define ASYNC_TARGET_US 50.0     /* issue 12: p99.9 of the longest call */

/* A pool of 64 KiB buffers with a private budget of `budget` bytes. */
static zp_pool *tiny_pool(size_t budget)
{
    zp_config cfg;
    zp_config_init(&cfg);
    cfg.max_bytes = budget;
    zp_pool *p;
    int rc = zp_pool_create(&cfg, &p);
    if (rc != 0) {
        fprintf(stderr, "zp_bench_async: zp_pool_create: %s\n", zp_strerror(rc));
        exit(2);
    }
    return p;
}

static zp_loop *new_loop(void)
{
    zp_loop *l;
    int rc = zp_loop_create(&l);
    if (rc != 0) {
        fprintf(stderr, "zp_bench_async: zp_loop_create: %s\n", zp_strerror(rc));
        exit(2);
    }
    return l;
}

/* Gets buffers until the budget says no (ENOBUFS); returns how many. */
static int take_all(zp_pool *p, void **held, int have)
{
    void *b;
    while (have < ASYNC_MAX_HELD && (b = zp_get(p, ASYNC_SIZE)) != NULL)
        held[have++] = b;
    if (have == ASYNC_MAX_HELD || errno != ENOBUFS) {
        fprintf(stderr, "zp_bench_async: the budget did not run out (%d buffers,"
                        " %s)\n", have, strerror(errno));
        exit(2);
    }
    return have;
}

/* Waits until the loop's descriptor is readable: asleep in poll(), or
 * spinning on poll() with timeout 0. */
static void wait_readable(int fd, bool spin, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (!spin) {
        (void)poll(&pfd, 1, timeout_ms);
        return;
    }
    uint64_t until = wall_ns() + (uint64_t)timeout_ms * 1000000u;
    while (poll(&pfd, 1, 0) == 0 && wall_ns() < until)
        cpu_relax();
}

/* Per repetition: sorts v[0..n) and gives its quantiles. */
static double q_of(double *v, size_t n, double q, bool sorted)
{
    if (!sorted)
        sort_doubles(v, n);
    return quantile_sorted(v, n, q);
}

/* ",\"key\":{\"median\":..,\"min\":..,\"max\":..}" of a series, or null. */
static int json_summary(char *buf, size_t len, const char *key, series *s,
                        int need)
{
    summary sm = summarize_n(s, need);
    if (sm.refused)
        return snprintf(buf, len, ",\"%s\":null", key);
    return snprintf(buf, len, ",\"%s\":{\"median\":%.6g,\"min\":%.6g,\"max\":%.6g}",
                    key, sm.median, sm.min, sm.max);
}

/* Keeps value in s when the attempt was reliable (the series that drives
 * the attempts goes through series_add, the others through this). */
static void series_keep(series *s, double value, bool reliable)
{
    s->attempts++;
    if (reliable && s->n < MAX_REPS * 4)
        s->v[s->n++] = value;
}

/* --------------------------------------------- async_wake: put -> callback */

typedef struct {
    zp_pool *pool;
    zp_loop *loop;
    bool spin;
    uint64_t rounds;           /* per timed attempt */
    /* thread A (the loop) */
    zp_request req;
    uint64_t a_calls, a_seq;
    uint64_t t_cb;             /* callback: wall ns when it ran */
    void *got;
    bool ran;
    double *lat;               /* this attempt's latencies, us */
    uint64_t nlat;
    /* thread B */
    void *held[ASYNC_MAX_HELD];
    int nheld;
    uint64_t b_calls, b_seq;
    /* between them */
    alignas(64) atomic_uint_fast64_t b_ready; /* B holds the budget, call k */
    alignas(64) atomic_uint_fast64_t queued;  /* A's request of round s is queued */
    alignas(64) atomic_uint_fast64_t t_put;   /* B: wall ns before its put */
    alignas(64) _Atomic(void *) back;         /* A -> B: the buffer got */
} wake_ctx;

static void wake_cb(void *buf, int err, void *arg)
{
    wake_ctx *c = arg;
    c->t_cb = wall_ns();
    if (buf == NULL) {
        fprintf(stderr, "zp_bench_async: callback without a buffer: %s\n",
                strerror(err));
        exit(2);
    }
    c->got = buf;
    c->ran = true;
}

static void wake_loop(wake_ctx *c, uint64_t n)
{
    uint64_t k = ++c->a_calls;
    /* acquire: B's gets happened before; the budget is exhausted */
    while (atomic_load_explicit(&c->b_ready, memory_order_acquire) != k)
        cpu_relax();
    int fd = zp_loop_fd(c->loop);
    for (uint64_t r = 0; r < n; r++) {
        c->ran = false;
        void *b = zp_get_async(c->pool, ASYNC_SIZE, c->loop, &c->req, wake_cb, c);
        if (b != NULL || errno != EINPROGRESS) {
            fprintf(stderr, "zp_bench_async: zp_get_async did not queue (%s)\n",
                    b ? "a buffer at once" : strerror(errno));
            exit(2);
        }
        /* release: the request is queued before B puts */
        atomic_store_explicit(&c->queued, ++c->a_seq, memory_order_release);
        while (!c->ran) {
            wait_readable(fd, c->spin, 1000);
            zp_loop_dispatch(c->loop);
        }
        uint64_t t0 = atomic_load_explicit(&c->t_put, memory_order_acquire);
        if (r < c->rounds)
            c->lat[r] = (double)(c->t_cb - t0) / 1e3;
        c->nlat = r + 1;
        /* release: the buffer goes back to B, who holds the budget again */
        atomic_store_explicit(&c->back, c->got, memory_order_release);
    }
}

static void wake_putter(wake_ctx *c, uint64_t n)
{
    uint64_t k = ++c->b_calls;
    c->nheld = take_all(c->pool, c->held, c->nheld);
    atomic_store_explicit(&c->b_ready, k, memory_order_release);
    for (uint64_t r = 0; r < n; r++) {
        uint64_t s = ++c->b_seq;
        while (atomic_load_explicit(&c->queued, memory_order_acquire) != s)
            cpu_relax();
        /* release, with A's acquire after its callback ran: the put's own
         * wake-up (locks, eventfd) orders it already; this says so */
        atomic_store_explicit(&c->t_put, wall_ns(), memory_order_release);
        zp_put(c->pool, c->held[--c->nheld]);
        void *b;
        while ((b = atomic_exchange_explicit(&c->back, NULL,
                                             memory_order_acquire)) == NULL)
            cpu_relax();
        c->held[c->nheld++] = b;
    }
}

static void wake_role(void *ctx, int idx, uint64_t n)
{
    if (idx == 0)
        wake_loop(ctx, n);
    else
        wake_putter(ctx, n);
}

typedef struct {
    series p50, p99;
    wake_ctx *c;
} wake_acc;

static bool wake_attempt(team *t, void *p)
{
    wake_acc *a = p;
    double worst;
    (void)team_wall(t, &worst);
    size_t n = a->c->nlat < a->c->rounds ? a->c->nlat : a->c->rounds;
    double p50 = q_of(a->c->lat, n, 0.50, false);
    double p99 = q_of(a->c->lat, n, 0.99, true);
    series_keep(&a->p99, p99, worst >= RELIABLE_CPU);
    series_add(&a->p50, p50, worst); /* drives the attempts */
    return series_more(&a->p50);
}

static void sc_async_wake(bool spin)
{
    const char *name = spin ? "poll_spin" : "poll_block";
    uint64_t rounds = harness.quick ? 500 : 2000;
    wake_acc acc;
    memset(&acc, 0, sizeof acc);
    char extra[512];
    if (ncpus < 2) {
        summary sm = {.refused = true};
        snprintf(sm.note, sizeof sm.note,
                 "refused: needs 2 CPUs, this process has 1");
        emit_line("async_wake", ASYNC_SIZE, 2, "zeropool", "zeropool", name,
                  "max_bytes=256k", "us", &sm, NULL, 0, NULL);
        return;
    }
    wake_ctx *c = aligned_alloc(64, sizeof *c);
    memset(c, 0, sizeof *c);
    c->pool = tiny_pool((size_t)256 << 10); /* one slab: 4 buffers */
    c->loop = new_loop();
    c->spin = spin;
    c->rounds = rounds;
    c->lat = malloc(rounds * sizeof *c->lat);
    if (c->lat == NULL)
        die("malloc");
    acc.c = c;
    team t = {.nthreads = 2, .role = wake_role, .ctx = c, .n = rounds};
    team_run(&t, wake_attempt, &acc);

    int held = c->nheld;
    for (int i = 0; i < c->nheld; i++)
        zp_put(c->pool, c->held[i]);
    summary sm = summarize(&acc.p50);
    int k = snprintf(extra, sizeof extra, ",\"rounds\":%llu,\"budget_buffers\":%d",
                     (unsigned long long)rounds, held);
    k += json_summary(extra + k, sizeof extra - (size_t)k, "p50", &acc.p50,
                      harness.reps);
    json_summary(extra + k, sizeof extra - (size_t)k, "p99", &acc.p99,
                 harness.reps);
    emit_line("async_wake", ASYNC_SIZE, 2, "zeropool", "zeropool", name,
              "max_bytes=256k", "us", &sm, &acc.p50, rounds, extra);
    zp_loop_destroy(c->loop);
    zp_pool_destroy(c->pool);
    free(c->lat);
    free(c);
}

/* ----------------------------------- async_stall: the longest loop call */

enum { CALL_GET_ASYNC, CALL_DISPATCH, CALL_CANCEL, CALL_PUT, CALL_KINDS };
#define CALL_SLEPT 0x80 /* or-ed into a call's kind: it slept on its own */
static const char *const call_names[CALL_KINDS] = {
    "zp_get_async", "zp_loop_dispatch", "zp_cancel", "zp_put"};

typedef struct stall_ctx stall_ctx;

typedef struct {
    stall_ctx *c;
    int j;
} stall_slot;

struct stall_ctx {
    zp_pool *pool;
    zp_loop *loop;
    int nhammers;
    uint64_t calls;          /* per timed attempt, recorded */
    /* the loop thread */
    zp_request req[ASYNC_INFLIGHT];
    stall_slot slot[ASYNC_INFLIGHT];
    bool pending[ASYNC_INFLIGHT];
    void *held[2 * ASYNC_INFLIGHT + 2];
    int nheld;
    uint64_t loop_calls;
    double *dur;             /* this attempt's kept calls, us */
    uint8_t *kind;
    uint64_t ndur, excluded, slept;
    uint64_t callbacks, immediate, cancels, queued, turns;
    /* the hammers */
    uint64_t hammer_calls[MAX_THREADS];
    alignas(64) atomic_uint_fast64_t loop_done; /* the loop's role call k ended */
    alignas(64) atomic_uint_fast64_t hammer_ops;
};

static void stall_cb(void *buf, int err, void *arg)
{
    stall_slot *s = arg;
    stall_ctx *c = s->c;
    if (buf == NULL) {
        fprintf(stderr, "zp_bench_async: callback without a buffer: %s\n",
                strerror(err));
        exit(2);
    }
    c->pending[s->j] = false;
    c->held[c->nheld++] = buf;
    c->callbacks++;
}

/* Times one call: kept if the loop thread had the CPU during it. */
#define TIMED(c, k, call)                                                      \
    do {                                                                       \
        tsample a_, b_;                                                        \
        sample_begin(&a_);                                                     \
        call;                                                                  \
        sample_end(&b_);                                                       \
        stall_record((c), (k), &a_, &b_);                                      \
    } while (0)

static void stall_record(stall_ctx *c, int kind, const tsample *a,
                         const tsample *b)
{
    if (share(a, b) < RELIABLE_CPU) {
        c->excluded++;
        return;
    }
    bool slept = b->nvcsw != a->nvcsw;
    c->slept += slept;
    if (c->ndur < c->calls) {
        c->dur[c->ndur] = (double)(b->wall - a->wall) / 1e3;
        c->kind[c->ndur] = (uint8_t)(kind | (slept ? CALL_SLEPT : 0));
        c->ndur++;
    }
}

static void stall_loop(stall_ctx *c, uint64_t n)
{
    uint64_t k = ++c->loop_calls;
    int fd = zp_loop_fd(c->loop);
    c->ndur = c->excluded = c->slept = 0;
    c->callbacks = c->immediate = c->cancels = c->queued = c->turns = 0;
    int victim = 0;
    while (c->ndur < n && c->ndur < c->calls) {
        /* what the callbacks got goes back: each put wakes the next
         * request (queued first, served first) */
        while (c->nheld > 0) {
            void *b = c->held[--c->nheld];
            TIMED(c, CALL_PUT, zp_put(c->pool, b));
        }
        wait_readable(fd, false, 1);
        TIMED(c, CALL_DISPATCH, zp_loop_dispatch(c->loop));
        /* queue new requests in the slots served (or cancelled): no buffer
         * is idle now, so they wait behind the others */
        for (int j = 0; j < ASYNC_INFLIGHT; j++) {
            if (c->pending[j])
                continue;
            void *b;
            int e;
            TIMED(c, CALL_GET_ASYNC,
                  (b = zp_get_async(c->pool, ASYNC_SIZE, c->loop, &c->req[j],
                                    stall_cb, &c->slot[j]),
                   e = errno));
            if (b != NULL) {
                c->held[c->nheld++] = b;
                c->immediate++;
            } else if (e == EINPROGRESS) {
                c->pending[j] = true;
                c->queued++;
            } else {
                fprintf(stderr, "zp_bench_async: zp_get_async: %s\n",
                        strerror(e));
                exit(2);
            }
        }
        if (++c->turns % ASYNC_CANCEL_EVERY == 0) {
            for (int i = 0; i < ASYNC_INFLIGHT; i++) {
                int j = (victim + i) % ASYNC_INFLIGHT;
                if (!c->pending[j])
                    continue;
                int rc;
                TIMED(c, CALL_CANCEL, rc = zp_cancel(&c->req[j]));
                if (rc == 0) {
                    c->pending[j] = false;
                    c->cancels++;
                }
                victim = j + 1;
                break;
            }
        }
    }
    /* untimed: nothing of this loop stays queued between attempts */
    for (int j = 0; j < ASYNC_INFLIGHT; j++)
        if (c->pending[j] && zp_cancel(&c->req[j]) == 0)
            c->pending[j] = false;
    while (c->nheld > 0)
        zp_put(c->pool, c->held[--c->nheld]);
    atomic_store_explicit(&c->loop_done, k, memory_order_release);
}

/* get, write one byte, put (4 KiB), at full speed, until the loop's call
 * ends */
static void stall_hammer(stall_ctx *c, int idx)
{
    uint64_t k = ++c->hammer_calls[idx];
    uint64_t ops = 0;
    while (atomic_load_explicit(&c->loop_done, memory_order_acquire) < k) {
        for (int i = 0; i < 64; i++) {
            char *b = zp_get(c->pool, HAMMER_SIZE);
            if (b != NULL) {
                ((volatile char *)b)[0] = (char)i;
                zp_put(c->pool, b);
                ops++;
            }
        }
    }
    atomic_fetch_add_explicit(&c->hammer_ops, ops, memory_order_relaxed);
}

static void stall_role(void *ctx, int idx, uint64_t n)
{
    if (idx == 0)
        stall_loop(ctx, n);
    else
        stall_hammer(ctx, idx);
}

typedef struct {
    series p50, p99, p999, max;
    stall_ctx *c;
    double *all;       /* kept attempts' calls, us */
    uint8_t *all_kind;
    size_t nall, cap;
    uint64_t excluded, slept, calls_seen, callbacks, immediate, cancels, queued;
    uint64_t hammer_ops;
    double hammer_s;
} stall_acc;

static bool stall_attempt(team *t, void *p)
{
    stall_acc *a = p;
    stall_ctx *c = a->c;
    double worst, wall = team_wall(t, &worst);
    bool ok = worst >= RELIABLE_CPU;
    uint64_t hops = atomic_exchange(&c->hammer_ops, 0);
    if (ok) { /* pooled for the per-call figures */
        for (uint64_t i = 0; i < c->ndur && a->nall < a->cap; i++) {
            a->all[a->nall] = c->dur[i];
            a->all_kind[a->nall++] = c->kind[i];
        }
        a->excluded += c->excluded;
        a->slept += c->slept;
        a->calls_seen += c->ndur + c->excluded;
        a->callbacks += c->callbacks;
        a->immediate += c->immediate;
        a->cancels += c->cancels;
        a->queued += c->queued;
        a->hammer_ops += hops;
        a->hammer_s += wall / 1e9;
    }
    size_t n = c->ndur;
    sort_doubles(c->dur, n); /* the kinds are not needed past this point */
    series_keep(&a->p50, quantile_sorted(c->dur, n, 0.50), ok);
    series_keep(&a->p99, quantile_sorted(c->dur, n, 0.99), ok);
    series_keep(&a->max, n ? c->dur[n - 1] : NAN, ok);
    series_add(&a->p999, quantile_sorted(c->dur, n, 0.999), worst);
    return series_more(&a->p999);
}

/* ",\"by_call\":{...}": per kind of call, over the kept attempts */
static int by_call_json(char *buf, size_t len, stall_acc *a)
{
    int k = snprintf(buf, len, ",\"by_call\":{");
    double *tmp = malloc((a->nall ? a->nall : 1) * sizeof *tmp);
    if (tmp == NULL)
        die("malloc");
    for (int kind = 0; kind < CALL_KINDS; kind++) {
        size_t n = 0, slept = 0;
        for (size_t i = 0; i < a->nall; i++)
            if ((a->all_kind[i] & ~CALL_SLEPT) == kind) {
                tmp[n++] = a->all[i];
                slept += (a->all_kind[i] & CALL_SLEPT) != 0;
            }
        sort_doubles(tmp, n);
        k += snprintf(buf + k, len - (size_t)k,
                      "%s\"%s\":{\"calls\":%zu,\"slept\":%zu",
                      kind ? "," : "", call_names[kind], n, slept);
        if (n > 0)
            k += snprintf(buf + k, len - (size_t)k,
                          ",\"p50\":%.6g,\"p99\":%.6g,\"p99.9\":%.6g,\"max\":%.6g",
                          quantile_sorted(tmp, n, 0.50),
                          quantile_sorted(tmp, n, 0.99),
                          quantile_sorted(tmp, n, 0.999), tmp[n - 1]);
        k += snprintf(buf + k, len - (size_t)k, "}");
    }
    k += snprintf(buf + k, len - (size_t)k, "}");
    free(tmp);
    return k;
}

static void sc_async_stall(void)
{
    int nh = ncpus - 1 < 2 ? ncpus - 1 : 2;
    char variant_name[32], extra[2048];
    snprintf(variant_name, sizeof variant_name, "hammers=%d", nh);
    if (nh < 1) {
        summary sm = {.refused = true};
        snprintf(sm.note, sizeof sm.note,
                 "refused: needs 2 CPUs, this process has 1");
        emit_line("async_stall", ASYNC_SIZE, 2, "zeropool", "zeropool",
                  variant_name, "max_bytes=768k", "us", &sm, NULL, 0, NULL);
        return;
    }
    uint64_t calls = harness.quick ? 5000 : 20000;
    stall_ctx *c = aligned_alloc(64, sizeof *c);
    memset(c, 0, sizeof *c);
    /* one slab of 4 KiB buffers and two of 64 KiB (4 buffers each) */
    c->pool = tiny_pool((size_t)768 << 10);
    c->loop = new_loop();
    c->nhammers = nh;
    c->calls = calls;
    c->dur = malloc(calls * sizeof *c->dur);
    c->kind = malloc(calls);
    for (int j = 0; j < ASYNC_INFLIGHT; j++)
        c->slot[j] = (stall_slot){c, j};
    /* the other threads' slab, kept mapped by one buffer held throughout */
    void *anchor = zp_get(c->pool, HAMMER_SIZE);
    if (anchor == NULL)
        die("zp_get");
    /* the rest of the budget in 64 KiB buffers, all but two held
     * throughout: the loop's requests wait while two circulate */
    void *kept[ASYNC_MAX_HELD];
    int nkept = take_all(c->pool, kept, 0);
    int circulate = nkept > 2 ? 2 : 1;
    for (int i = 0; i < circulate; i++)
        zp_put(c->pool, kept[--nkept]);
    /* from this thread's cache to the depot, where the loop finds them */
    (void)zp_trim(c->pool, SIZE_MAX);

    stall_acc acc;
    memset(&acc, 0, sizeof acc);
    acc.c = c;
    acc.cap = calls * (size_t)harness.reps;
    acc.all = malloc(acc.cap * sizeof *acc.all);
    acc.all_kind = malloc(acc.cap);
    if (!c->dur || !c->kind || !acc.all || !acc.all_kind)
        die("malloc");
    team t = {.nthreads = 1 + nh, .role = stall_role, .ctx = c, .n = calls};
    team_run(&t, stall_attempt, &acc);

    summary sm = summarize(&acc.p999);
    int need = harness.reps;
    int k = snprintf(extra, sizeof extra,
                     ",\"hammers\":%d,\"inflight\":%d,\"cancel_every\":%d,"
                     "\"budget_buffers\":%d,\"circulating\":%d",
                     nh, ASYNC_INFLIGHT, ASYNC_CANCEL_EVERY, nkept + circulate,
                     circulate);
    k += json_summary(extra + k, sizeof extra - (size_t)k, "p50", &acc.p50, need);
    k += json_summary(extra + k, sizeof extra - (size_t)k, "p99", &acc.p99, need);
    k += json_summary(extra + k, sizeof extra - (size_t)k, "p99.9", &acc.p999,
                      need);
    k += json_summary(extra + k, sizeof extra - (size_t)k, "max", &acc.max, need);
    if (!sm.refused) {
        double max_all = 0;
        for (size_t i = 0; i < acc.nall; i++)
            if (acc.all[i] > max_all)
                max_all = acc.all[i];
        k += snprintf(extra + k, sizeof extra - (size_t)k,
                      ",\"max_all\":%.6g,\"target_us\":%g,\"target_met\":%s",
                      max_all, ASYNC_TARGET_US,
                      sm.median < ASYNC_TARGET_US ? "true" : "false");
        k += by_call_json(extra + k, sizeof extra - (size_t)k, &acc);
    }
    snprintf(extra + k, sizeof extra - (size_t)k,
             ",\"calls\":%llu,\"excluded_calls\":%llu,\"slept_calls\":%llu,"
             "\"callbacks\":%llu,\"immediate\":%llu,\"queued\":%llu,"
             "\"cancels\":%llu,\"hammer_ops_per_s\":%.6g",
             (unsigned long long)acc.calls_seen, (unsigned long long)acc.excluded,
             (unsigned long long)acc.slept, (unsigned long long)acc.callbacks,
             (unsigned long long)acc.immediate, (unsigned long long)acc.queued,
             (unsigned long long)acc.cancels,
             acc.hammer_s > 0 ? (double)acc.hammer_ops / acc.hammer_s : 0.0);
    emit_line("async_stall", ASYNC_SIZE, 1 + nh, "zeropool", "zeropool",
              variant_name, "max_bytes=768k", "us", &sm, &acc.p999, calls, extra);

    zp_put(c->pool, anchor);
    while (nkept > 0)
        zp_put(c->pool, kept[--nkept]);
    zp_loop_destroy(c->loop);
    zp_pool_destroy(c->pool);
    free(acc.all);
    free(acc.all_kind);
    free(c->dur);
    free(c->kind);
    free(c);
}

static void run(void)
{
    sc_async_wake(false);
    sc_async_wake(true);
    sc_async_stall();
}

int main(int argc, char **argv)
{
    return harness_main(argc, argv, "zp_bench_async", "async", run);
}
