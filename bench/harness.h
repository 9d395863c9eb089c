/*
 * bench/harness.h — the measuring half of the benchmarks, shared by every
 * driver (zp_bench, zp_bench_twin, zp_bench_objects, zp_bench_async); the
 * scenarios are the other half, one file per family.
 *
 *   clocks and CPU share   wall and thread CPU clocks; a sample brackets a
 *                          timed region and share() says whether its thread
 *                          got the CPU while it wanted it (>= RELIABLE_CPU)
 *   statistics             series of repetitions, median (min-max), the
 *                          retry with back-off and the refusal of a figure
 *                          that cannot collect its repetitions
 *   repetitions            calibrate + time_single (one thread), team_run
 *                          (pinned threads started together), compare_run
 *                          (variants interleaved over heap layouts)
 *   output                 one JSON object per result on stdout, a readable
 *                          line on stderr; the run's meta line
 *
 * Method and reasons: bench/README.md, "Method". Not part of the library.
 */
#ifndef ZP_BENCH_HARNESS_H
#define ZP_BENCH_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "zeropool.h"

#define NOINLINE __attribute__((noinline))
#define RELIABLE_CPU 0.90 /* a repetition needs this share of a CPU */
#define MAX_REPS 64
#define MAX_THREADS 256

#ifndef ZPB_ESCAPE
/* Keeps p alive and all memory writes before this point in place. */
#define ZPB_ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")
#endif

/* --------------------------------------------------------------- the run */

/* Options every driver shares (set before measuring; see harness_option). */
struct harness_opts {
    const char *prog;  /* the driver's name, for messages */
    int quick;         /* --quick */
    int reps;          /* repetitions per figure (7; 5 with --quick) */
    double rep_ms;     /* length of one repetition (10 ms; 4 with --quick) */
    const char *label; /* the run: "glibc", "jemalloc", "objects", ... */
};
extern struct harness_opts harness;

extern size_t page_size;
extern int ncpus;
extern int cpus[MAX_THREADS]; /* CPUs this process may run on */

/* Fills page_size and the allowed CPUs. Call first. */
void harness_init(void);

/* Parses argv[i] if it is a shared option (--quick, --reps N, --rep-ms MS,
 * --label NAME): returns how many arguments it took (1 or 2), 0 if it is
 * not one, -1 if its value is missing. */
int harness_option(int argc, char **argv, int i);

/* Checks the shared options (0, or -1: out of range), and unsets
 * ZEROPOOL_DEBUG with a note (it would override the debug level of every
 * pool a benchmark configures). prog: the driver's name for messages. */
int harness_check(const char *prog);

/* Prints the run's meta line (the first line of a driver's output). */
void harness_meta(bool multithreaded);

/* The main() of a family's own driver (zp_bench_objects, zp_bench_async):
 * parses the shared options (and accepts --scenarios LIST, whose choice
 * bench/run.sh has already made), sets the run's label, prints the meta
 * line, pins the thread to the first CPU, makes the process multi-threaded
 * (as zp_bench does) and calls run(). Returns main's exit status. */
int harness_main(int argc, char **argv, const char *prog, const char *label,
                 void (*run)(void));

/* Pins the calling thread to the idx-th allowed CPU (modulo their number). */
void pin_self(int idx);

/* Creates and joins one thread: glibc then takes its locks (malloc arenas,
 * mutexes) as in any threaded program. */
void become_multithreaded(void);

/* Prints "<what> failed: <errno text>" and exits 2. */
void die(const char *what);

/* ------------------------------------------------------------ clocks */

static inline uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static inline uint64_t wall_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
static inline uint64_t tcpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
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

int64_t rq_wait_now(void);
void csw_now(tsample *s);

/* The wall clock is read innermost, so the bracket's own cost stays out. */
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

double share(const tsample *a, const tsample *b);

/* ------------------------------------------------------------ statistics */

typedef struct {
    double v[MAX_REPS * 4];
    int n;        /* reliable repetitions kept */
    int attempts; /* repetitions run */
    int misses;   /* unreliable attempts in a row */
    double worst_cpu;
} series;

typedef struct {
    double median, min, max;
    bool refused;
    char note[160];
} summary;

/* Sorts v[0..n) and returns its median. */
double median_of(double *v, int n);
/* The median of v[from..to) (v untouched); NAN when empty. */
double median_range(const double *v, int from, int to);

/* Sorts v[0..n) ascending. */
void sort_doubles(double *v, size_t n);

/* The q-quantile (0 <= q <= 1) of v[0..n) sorted ascending, nearest rank:
 * the smallest value with at least q * n values at or below it. */
double quantile_sorted(const double *v, size_t n, double q);

/* need: repetitions a figure must have kept (harness.reps for most);
 * fewer: refused, with the reason in note. Sorts s->v. */
summary summarize_n(series *s, int need);
summary summarize(series *s);

/* Loop control shared by all timed figures: fewer than reps kept and
 * fewer than 3x reps attempts. */
static inline bool series_more(const series *s)
{
    return s->n < harness.reps && s->attempts < harness.reps * 3;
}

/* The pause after the misses-th unreliable attempt in a row. */
void backoff(int misses);

/* Keeps a reliable repetition (cpu_ratio >= RELIABLE_CPU); after an
 * unreliable one, backs off (5, 10, 20, 40, 80 ms, ...). */
void series_add(series *s, double value, double cpu_ratio);

/* ------------------------------------------------------- repetitions */

/* Iterations of fn for one repetition of about rep_ms; also warms up. */
uint64_t calibrate(void (*fn)(void *, uint64_t), void *ctx);

/* Times fn(ctx, n) repeatedly on this thread. Value: ns per iteration. */
series time_single(void (*fn)(void *, uint64_t), void *ctx, uint64_t n);

/*
 * A team runs `role(ctx, thread index, iterations)` on T pinned threads, all
 * started together, once per attempt. Per attempt it records each thread's
 * start, end and CPU share; the main thread decides after each attempt
 * whether more are needed. Before the first attempt each thread runs its
 * role once untimed with n / 4 + 1 iterations (warm-up).
 */
typedef struct team team;
typedef void (*role_fn)(void *ctx, int idx, uint64_t n);

struct team {
    int nthreads;
    role_fn role;
    void *ctx;
    uint64_t n;
    /* called on the main thread once every thread has warmed up, before
     * the first timed attempt (NULL: nothing) */
    void (*on_ready)(team *t, void *acc);
    size_t spacer; /* > 0: each thread first allocates this many heap bytes
                      (kept until it ends): moves what it allocates next */
    pthread_barrier_t ready, start, end, next;
    atomic_int go_on;
    uint64_t t0[MAX_THREADS], t1[MAX_THREADS];
    double share[MAX_THREADS];
};

/* Runs attempts until `attempt` (which reads the timings) returns false. */
typedef bool (*attempt_fn)(team *t, void *acc);
void team_run(team *t, attempt_fn attempt, void *acc);

/* Wall time of the attempt (first start to last end) and worst CPU share. */
double team_wall(const team *t, double *worst_cpu);

/* ------------------------------------- interleaved variants, heap layouts */

/* The pool counters the families report (read outside the timed region). */
typedef struct {
    uint64_t contention, depot; /* depot: depot_hits + allocations */
} zstat;

void zstat_read(zp_pool *p, zstat *z);

/* Sums over the kept repetitions of a figure. */
typedef struct {
    double contention, depot, units; /* units: buffers (or pairs) moved */
} zsum;

void zsum_add(zsum *s, const zstat *a, const zstat *b, double units);
/* ",\"contention_per_1k_ops\":x,\"depot_per_1k_ops\":y" */
int zsum_json(char *buf, size_t len, const zsum *s);

#define MAX_VARIANTS 4
#define MAX_LAYOUTS 8

/* The heap spacer of layout l. */
size_t layout_spacer(int l);

typedef struct variant variant;
struct variant {
    const char *name, *config;
    const char *backend;             /* the JSON "backend" field */
    const char *competitor;          /* the JSON "competitor"; NULL: zeropool */
    void (*fn)(void *ctx, uint64_t n);
    void *ctx;
    double per_iter;                 /* units (buffers, pairs) per iteration */
    /* creates / destroys the variant's pool for a layout (sets ctx's pool
     * and stats) */
    void (*open)(variant *v);
    void (*close)(variant *v);
    zp_pool *stats;                  /* read around each repetition, or NULL */
    uint64_t n;                      /* iterations per repetition */
    series s, delta;                 /* values; differences to variant 0 */
    int nlayouts;                    /* layouts measured */
    double by_layout[MAX_LAYOUTS], delta_by_layout[MAX_LAYOUTS]; /* medians */
    zsum z;
};

/* Interleaved comparison of nv single-thread variants: `rounds` kept rounds
 * in each of `layouts` heap layouts (see harness.c). Fills each variant's
 * s, delta, by_layout and z; s.v and delta.v hold the kept rounds in
 * order (round k of every variant at index k) until summarized. */
void compare_run(variant *v, int nv, int rounds, int layouts);

/* One result per variant; more: extra JSON for every variant, or NULL. */
void compare_emit(const char *scenario, size_t size, variant *v, int nv,
                  int need, const char *unit, const char *more);

/* ---------------------------------------------------------------- output */

/* ",\"key\":v", or ",\"key\":null" when !valid or v is not finite. */
void json_num(FILE *f, const char *key, double v, bool valid);

/* ",\"key\":[v0,v1,...]" into buf; returns the length written. */
int json_list(char *buf, size_t len, const char *key, const double *v, int n);

/* One result line on stdout (and a readable one on stderr). variant,
 * config: for the families that measure variants, else NULL. ser: the
 * series behind s, or NULL. extra: more ",\"key\":value" text, or NULL. */
void emit_line(const char *scenario, size_t size, int threads,
               const char *competitor, const char *backend,
               const char *variant, const char *config, const char *unit,
               const summary *s, const series *ser, uint64_t iters,
               const char *extra);

#endif /* ZP_BENCH_HARNESS_H */
