/*
 * zp_bench — the benchmark driver. Runs the scenarios of bench/README.md
 * against the backends of backend.h and prints one JSON object per line on
 * stdout (progress goes to stderr). bench/run.sh runs it once per allocator
 * (glibc, then jemalloc/mimalloc/tcmalloc through LD_PRELOAD) and
 * bench/report.py merges the lines into the table, the JSON file and plots.
 *
 * Method: each figure is calibrated (iterations chosen so one repetition
 * lasts --rep-ms), warmed up, then repeated --reps times. A repetition whose
 * thread(s) got less than 90% of a CPU (CPU time / wall time, per thread) is
 * thrown away and retried; a figure that cannot collect --reps reliable
 * repetitions within 3x as many attempts is refused ("refused": true, no
 * number) instead of printed.
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

#define NOINLINE __attribute__((noinline))
#define RELIABLE_CPU 0.90 /* a repetition needs this share of a CPU */
#define MAX_REPS 64
#define MAX_THREADS 256

/* ---------------------------------------------------------------- options */

enum {
    SC_HOT = 1 << 0,
    SC_TOUCH = 1 << 1,
    SC_COLD = 1 << 2,
    SC_SCALE = 1 << 3,
    SC_HANDOFF = 1 << 4,
    SC_MIXED = 1 << 5,
    SC_COUNTS = 1 << 6,
    SC_ALL = (1 << 7) - 1,
};

static const struct {
    const char *name;
    int bit;
} sc_names[] = {{"hot", SC_HOT},         {"touch", SC_TOUCH},
                {"cold", SC_COLD},       {"scale", SC_SCALE},
                {"handoff", SC_HANDOFF}, {"mixed", SC_MIXED},
                {"counts", SC_COUNTS},   {"all", SC_ALL}};

static struct {
    int quick;
    int reps;
    double rep_ms;
    int scenarios;
    int backends[BE_COUNT];
    int nbackends;
    const char *label; /* allocator of this process: glibc, jemalloc, ... */
    size_t sizes[16];
    int nsizes;
    int cold_n;
    int max_threads;
    const char *mcount_lib;
    const char *verify_symbol;
    int st; /* keep the process single-threaded where possible */
} opt;

static size_t page_size;
static int ncpus;
static int cpus[MAX_THREADS]; /* CPUs this process may run on */

/* ------------------------------------------------------------------ clocks */

static inline uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static inline uint64_t wall_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
static inline uint64_t tcpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

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

/*
 * Did a thread get the CPU while it wanted one? A sample brackets a timed
 * region. If the thread never went to sleep on its own (no voluntary context
 * switch), its CPU time must be >= 90% of the wall time: anything less means
 * it was preempted or its vCPU was stolen. If it did sleep on its own (the
 * allocator blocked on a lock or in the kernel: a real cost, measured as
 * such), it is judged only if it was also preempted (involuntary switches),
 * by the time it spent runnable but waiting for a CPU (schedstat run delay).
 * share() returns the resulting CPU share, 0..1.
 */
typedef struct {
    uint64_t wall, cpu;
    long nvcsw, nivcsw;
    int64_t rq_wait; /* ns runnable but not running; -1 unknown */
} tsample;

static int64_t rq_wait_now(void)
{
    char buf[128];
    int fd = open("/proc/thread-self/schedstat", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    unsigned long long run, wait;
    if (sscanf(buf, "%llu %llu", &run, &wait) != 2)
        return -1;
    return (int64_t)wait;
}

static void csw_now(tsample *s)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    s->nvcsw = ru.ru_nvcsw;
    s->nivcsw = ru.ru_nivcsw;
}

static inline void sample_begin(tsample *s)
{
    csw_now(s);
    s->rq_wait = rq_wait_now();
    s->cpu = tcpu_ns();
    s->wall = wall_ns();
}

static inline void sample_end(tsample *s)
{
    s->wall = wall_ns();
    s->cpu = tcpu_ns();
    s->rq_wait = rq_wait_now();
    csw_now(s);
}

static double share(const tsample *a, const tsample *b)
{
    double wall = (double)(b->wall - a->wall);
    if (wall <= 0)
        return 1;
    if (b->nvcsw == a->nvcsw)
        return (double)(b->cpu - a->cpu) / wall;
    if (b->nivcsw == a->nivcsw)
        return 1; /* only slept on its own, never preempted */
    if (a->rq_wait >= 0 && b->rq_wait >= 0)
        return 1 - (double)(b->rq_wait - a->rq_wait) / wall;
    return (double)(b->cpu - a->cpu) / wall;
}

static void pin_self(int idx)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpus[idx % ncpus], &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort */
}

/* ------------------------------------------------------------------ stats */

typedef struct {
    double v[MAX_REPS * 3];
    int n;        /* reliable repetitions kept */
    int attempts; /* repetitions run */
    int misses;   /* unreliable attempts in a row */
    double worst_cpu;
} series;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct {
    double median, min, max;
    bool refused;
    char note[160];
} summary;

static summary summarize(series *s)
{
    summary r = {0};
    if (s->n < opt.reps) {
        r.refused = true;
        snprintf(r.note, sizeof r.note,
                 "refused: only %d of %d attempts got >= %.0f%% of a CPU "
                 "(worst %.0f%%)",
                 s->n, s->attempts, RELIABLE_CPU * 100, s->worst_cpu * 100);
        return r;
    }
    r.median = median_of(s->v, s->n);
    r.min = s->v[0];
    r.max = s->v[s->n - 1];
    return r;
}

/* Loop control shared by all timed figures. */
static inline bool series_more(const series *s)
{
    return s->n < opt.reps && s->attempts < opt.reps * 3;
}

/* Keeps a reliable repetition; after an unreliable one, backs off (5, 10,
 * 20, 40, 80 ms, ...) so that a burst of other load can pass before the
 * next attempt. */
static void series_add(series *s, double value, double cpu_ratio)
{
    if (s->attempts == 0 || cpu_ratio < s->worst_cpu)
        s->worst_cpu = cpu_ratio;
    s->attempts++;
    if (cpu_ratio >= RELIABLE_CPU) {
        s->v[s->n++] = value;
        s->misses = 0;
    } else if (series_more(s)) {
        long ms = 5L << (s->misses < 4 ? s->misses : 4);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        s->misses++;
        nanosleep(&ts, NULL);
    }
}

/* ------------------------------------------------------------------ output */

static const char *competitor(int be)
{
    return be == BE_MALLOC ? opt.label : be_names[be];
}

static void json_num(FILE *f, const char *key, double v, bool valid)
{
    if (valid && isfinite(v))
        fprintf(f, ",\"%s\":%.6g", key, v);
    else
        fprintf(f, ",\"%s\":null", key);
}

/* One result line. extra: more ",\"key\":value" text, or NULL. */
static void emit(const char *scenario, size_t size, int threads, int be,
                 const char *unit, const summary *s, const series *ser,
                 uint64_t iters, const char *extra)
{
    printf("{\"scenario\":\"%s\",\"size\":%zu,\"threads\":%d,"
           "\"competitor\":\"%s\",\"backend\":\"%s\",\"run\":\"%s\","
           "\"unit\":\"%s\"",
           scenario, size, threads, competitor(be), be_names[be], opt.label,
           unit);
    json_num(stdout, "median", s->median, !s->refused);
    json_num(stdout, "min", s->min, !s->refused);
    json_num(stdout, "max", s->max, !s->refused);
    printf(",\"reps\":%d,\"attempts\":%d,\"iters\":%llu,\"refused\":%s",
           ser ? ser->n : 0, ser ? ser->attempts : 0, (unsigned long long)iters,
           s->refused ? "true" : "false");
    if (extra)
        fputs(extra, stdout);
    printf(",\"note\":\"%s\"}\n", s->note);
    fflush(stdout);
    if (s->refused)
        fprintf(stderr, "  %-12s %8zu %2dT %-9s %s\n", scenario, size, threads,
                competitor(be), s->note);
    else
        fprintf(stderr, "  %-12s %8zu %2dT %-9s %10.1f %s  [%.1f-%.1f]\n",
                scenario, size, threads, competitor(be), s->median, unit,
                s->min, s->max);
}

static void die(const char *what)
{
    fprintf(stderr, "zp_bench: %s failed: %s\n", what, strerror(errno));
    exit(2);
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
#undef CASE
}

/* Iterations for one repetition of about rep_ms; also warms up. */
static uint64_t calibrate(void (*fn)(void *, uint64_t), void *ctx)
{
    uint64_t n = 8;
    double target = opt.rep_ms * 1e6;
    for (;;) {
        uint64_t t0 = wall_ns();
        fn(ctx, n);
        double dt = (double)(wall_ns() - t0);
        if (dt >= target / 8 || n >= (1ull << 40)) {
            uint64_t m = (uint64_t)((double)n * target / (dt > 1 ? dt : 1));
            if (m < 4)
                m = 4;
            fn(ctx, m); /* warm-up at full length */
            return m;
        }
        n *= 4;
    }
}

/* Times fn(ctx, n) repeatedly on this thread. Value: ns per iteration. */
static series time_single(void (*fn)(void *, uint64_t), void *ctx, uint64_t n)
{
    series s = {0};
    while (series_more(&s)) {
        tsample a, b;
        sample_begin(&a);
        fn(ctx, n);
        sample_end(&b);
        series_add(&s, (double)(b.wall - a.wall) / (double)n, share(&a, &b));
    }
    return s;
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
    if (be_setup(be) != 0)
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
    if (be_setup(be) != 0)
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

/* ------------------------------------------------ teams of pinned threads */

/*
 * A team runs `role(ctx, thread index, iterations)` on T pinned threads, all
 * started together, once per attempt. Per attempt it records each thread's
 * start, end and CPU time; the main thread decides after each attempt whether
 * more are needed (series_more).
 */
typedef struct team team;
typedef void (*role_fn)(void *ctx, int idx, uint64_t n);

struct team {
    int nthreads;
    role_fn role;
    void *ctx;
    uint64_t n;
    pthread_barrier_t start, end, next;
    atomic_int go_on;
    uint64_t t0[MAX_THREADS], t1[MAX_THREADS];
    double share[MAX_THREADS];
};

typedef struct {
    team *t;
    int idx;
} team_arg;

static void *team_main(void *p)
{
    team_arg *a = p;
    team *t = a->t;
    pin_self(a->idx);
    t->role(t->ctx, a->idx, t->n / 4 + 1); /* warm-up on this thread */
    for (;;) {
        pthread_barrier_wait(&t->start);
        tsample s0, s1;
        sample_begin(&s0);
        t->role(t->ctx, a->idx, t->n);
        sample_end(&s1);
        t->t0[a->idx] = s0.wall;
        t->t1[a->idx] = s1.wall;
        t->share[a->idx] = share(&s0, &s1);
        pthread_barrier_wait(&t->end);
        pthread_barrier_wait(&t->next);
        if (!atomic_load(&t->go_on))
            return NULL;
    }
}

/* Runs attempts until `done` says enough; `attempt` reads the timings. */
typedef bool (*attempt_fn)(team *t, void *acc);

static void team_run(team *t, attempt_fn attempt, void *acc)
{
    pthread_t th[MAX_THREADS];
    team_arg args[MAX_THREADS];
    pthread_barrier_init(&t->start, NULL, (unsigned)t->nthreads + 1);
    pthread_barrier_init(&t->end, NULL, (unsigned)t->nthreads + 1);
    pthread_barrier_init(&t->next, NULL, (unsigned)t->nthreads + 1);
    atomic_store(&t->go_on, 1);
    for (int i = 0; i < t->nthreads; i++) {
        args[i] = (team_arg){t, i};
        if (pthread_create(&th[i], NULL, team_main, &args[i]) != 0)
            die("pthread_create");
    }
    for (;;) {
        pthread_barrier_wait(&t->start);
        pthread_barrier_wait(&t->end);
        bool more = attempt(t, acc);
        atomic_store(&t->go_on, more);
        pthread_barrier_wait(&t->next);
        if (!more)
            break;
    }
    for (int i = 0; i < t->nthreads; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&t->start);
    pthread_barrier_destroy(&t->end);
    pthread_barrier_destroy(&t->next);
}

/* Wall time of the attempt (first start to last end) and worst CPU share. */
static double team_wall(const team *t, double *worst_cpu)
{
    uint64_t a = t->t0[0], b = t->t1[0];
    double worst = 1e9;
    for (int i = 0; i < t->nthreads; i++) {
        if (t->t0[i] < a)
            a = t->t0[i];
        if (t->t1[i] > b)
            b = t->t1[i];
        if (t->share[i] < worst)
            worst = t->share[i];
    }
    *worst_cpu = worst;
    return (double)(b - a);
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
    if (be_setup(be) != 0)
        exit(2);
    team t = {.nthreads = nthreads, .role = scale_role, .ctx = &c};
    t.n = calibrate(loop_fn, &c); /* single-thread calibration */
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

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

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
    switch (c->be) {
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
    int saved = opt.reps;
    opt.reps = 1;
    team_run(&t, handoff_attempt, &s);
    opt.reps = saved;
    double per = s.attempts ? s.v[0] : 0; /* v[0]: the first kept, if any */
    if (s.n == 0 || per <= 0)
        per = 1000; /* nothing reliable: assume 1 us per buffer */
    double m = opt.rep_ms * 1e6 / per;
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
    if (be_setup(be) != 0)
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

/* ------------------------------------------------ children (fresh processes) */

static char self_exe[4096];
static char **saved_argv;

/*
 * Cold start, in a fresh process: the first N gets (each buffer kept, every
 * page written: page faults included). With prefill, N buffers are first got,
 * touched and put back (zeropool has no reserve call: this is how a user
 * prefills it; for malloc it shows what the allocator keeps).
 * Prints: ns_per_get minflt_per_get cpu_share.
 */
static int child_cold(int be, size_t size, int n, int prefill)
{
    char **bufs = calloc((size_t)n, sizeof *bufs);
    if (!bufs || be_setup(be) != 0)
        return 2;
    if (prefill) {
        for (int i = 0; i < n; i++) {
            bufs[i] = be_get(be, size);
            for (size_t off = 0; off < size; off += page_size)
                ((volatile char *)bufs[i])[off] = 1;
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
            ((volatile char *)p)[off] = (char)i;
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

static void sc_cold(int be, size_t size, int prefill)
{
    char bes[16], sz[32], nn[16], pf[4];
    snprintf(bes, sizeof bes, "%s", be_names[be]);
    snprintf(sz, sizeof sz, "%zu", size);
    snprintf(nn, sizeof nn, "%d", opt.cold_n);
    snprintf(pf, sizeof pf, "%d", prefill);
    char *args[] = {saved_argv[0], "--child", "cold", bes, sz, nn, pf,
                    opt.st ? "st" : "mt", NULL};
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
            emit(prefill ? "cold_prefill" : "cold", size, 1, be, "ns/get", &sm,
                 &s, (uint64_t)opt.cold_n, NULL);
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
    emit(prefill ? "cold_prefill" : "cold", size, 1, be, "ns/get", &sm, &s,
         (uint64_t)opt.cold_n, extra);
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
    if (!bufs || be_setup(be) != 0)
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
               be_names[be], opt.label, extra, s.note);
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
 * has created (and joined) one thread. --st keeps the single-thread
 * scenarios in a never-threaded process instead.
 */
static void *idle_thread(void *arg) { return arg; }

static void become_multithreaded(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, idle_thread, NULL) == 0)
        pthread_join(t, NULL);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: zp_bench [--quick] [--reps N] [--rep-ms MS]\n"
            "                [--scenarios hot,touch,cold,scale,handoff,mixed,"
            "counts|all]\n"
            "                [--backends zeropool,malloc,naive] [--label NAME]\n"
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
            if (b < 0)
                usage();
            opt.backends[opt.nbackends++] = b;
        }
    }
}

static void setup_cpus(void)
{
    cpu_set_t set;
    ncpus = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int c = 0; c < CPU_SETSIZE && ncpus < MAX_THREADS; c++)
            if (CPU_ISSET(c, &set))
                cpus[ncpus++] = c;
    }
    if (ncpus == 0) {
        ncpus = 1;
        cpus[0] = 0;
    }
}

int main(int argc, char **argv)
{
    saved_argv = argv;
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    ssize_t len = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (len <= 0)
        snprintf(self_exe, sizeof self_exe, "%s", argv[0]);
    else
        self_exe[len] = 0;
    setup_cpus();

    if (argc >= 8 && strcmp(argv[1], "--child") == 0) {
        if (strcmp(argv[7], "mt") == 0)
            become_multithreaded();
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

    opt.reps = 7;
    opt.rep_ms = 10;
    opt.scenarios = SC_ALL;
    opt.label = "glibc";
    opt.cold_n = 64;
    opt.max_threads = 0;
    parse_list("zeropool,malloc,naive", 0);
    parse_sizes("4096,65536,1048576,4194304");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--st") == 0) {
            opt.st = 1;
        } else if (strcmp(a, "--quick") == 0) {
            opt.quick = 1;
            opt.reps = 5;
            opt.rep_ms = 4;
            opt.cold_n = 32;
        } else if (!v) {
            usage();
        } else if (strcmp(a, "--reps") == 0) {
            opt.reps = atoi(v), i++;
        } else if (strcmp(a, "--rep-ms") == 0) {
            opt.rep_ms = atof(v), i++;
        } else if (strcmp(a, "--scenarios") == 0) {
            parse_list(v, 1), i++;
        } else if (strcmp(a, "--backends") == 0) {
            parse_list(v, 0), i++;
        } else if (strcmp(a, "--label") == 0) {
            opt.label = v, i++;
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
    if (opt.reps < 1 || opt.reps > MAX_REPS || opt.rep_ms <= 0 ||
        opt.cold_n < 1)
        usage();
    /* a preloaded allocator really is the one this process calls */
    if (opt.verify_symbol && !dlsym(RTLD_DEFAULT, opt.verify_symbol)) {
        fprintf(stderr, "zp_bench: %s not found: the %s allocator is not "
                        "loaded (LD_PRELOAD=%s)\n",
                opt.verify_symbol, opt.label,
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
    fprintf(stderr, "zp_bench: run %s, backends", opt.label);
    for (int b = 0; b < opt.nbackends; b++)
        fprintf(stderr, " %s", competitor(opt.backends[b]));
    fprintf(stderr, ", %d CPUs, %d reps of ~%.0f ms\n", ncpus, opt.reps,
            opt.rep_ms);
    printf("{\"meta\":{\"run\":\"%s\",\"cpus\":%d,\"reps\":%d,\"rep_ms\":%g,"
           "\"quick\":%s,\"page_size\":%zu,\"zeropool\":\"%s\","
           "\"multithreaded_process\":%s}}\n",
           opt.label, ncpus, opt.reps, opt.rep_ms,
           opt.quick ? "true" : "false", page_size, zp_version_string(),
           opt.st ? "false" : "true");

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
        if (opt.scenarios & SC_MIXED) {
            sc_mixed(be, MODE_HOT);
            sc_mixed(be, MODE_TOUCH);
        }
    }
    for (int b = 0; b < opt.nbackends; b++) {
        int be = opt.backends[b];
        if (opt.scenarios & SC_COLD) /* fresh child processes */
            for (int i = 0; i < opt.nsizes; i++) {
                sc_cold(be, opt.sizes[i], 0);
                sc_cold(be, opt.sizes[i], 1);
            }
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
    return 0;
}
