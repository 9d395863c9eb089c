/*
 * bench/harness.c — clocks, CPU share, statistics, repetitions (one thread,
 * teams of pinned threads, interleaved variants over heap layouts) and the
 * JSON output, for every benchmark driver. The scenarios live in their own
 * files (zp_bench.c, sc_objects.c, sc_async.c); harness.h says what each
 * piece does, bench/README.md ("Method") why.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct harness_opts harness = {
    .prog = "zp_bench", .reps = 7, .rep_ms = 10, .label = "glibc"};

size_t page_size;
int ncpus;
int cpus[MAX_THREADS];

/* ------------------------------------------------------------------ the run */

static void setup_cpus(void);

void harness_init(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    setup_cpus();
}

int harness_option(int argc, char **argv, int i)
{
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--quick") == 0) {
        harness.quick = 1;
        harness.reps = 5;
        harness.rep_ms = 4;
        return 1;
    }
    if (strcmp(a, "--reps") != 0 && strcmp(a, "--rep-ms") != 0 &&
        strcmp(a, "--label") != 0)
        return 0;
    if (!v)
        return -1;
    if (strcmp(a, "--reps") == 0)
        harness.reps = atoi(v);
    else if (strcmp(a, "--rep-ms") == 0)
        harness.rep_ms = atof(v);
    else
        harness.label = v;
    return 2;
}

int harness_check(const char *prog)
{
    harness.prog = prog;
    if (harness.reps < 1 || harness.reps > MAX_REPS || harness.rep_ms <= 0)
        return -1;
    if (getenv("ZEROPOOL_DEBUG")) {
        fprintf(stderr, "%s: ignoring ZEROPOOL_DEBUG=%s\n", prog,
                getenv("ZEROPOOL_DEBUG"));
        unsetenv("ZEROPOOL_DEBUG");
    }
    return 0;
}

void harness_meta(bool multithreaded)
{
    printf("{\"meta\":{\"run\":\"%s\",\"cpus\":%d,\"reps\":%d,\"rep_ms\":%g,"
           "\"quick\":%s,\"page_size\":%zu,\"zeropool\":\"%s\","
           "\"multithreaded_process\":%s}}\n",
           harness.label, ncpus, harness.reps, harness.rep_ms,
           harness.quick ? "true" : "false", page_size, zp_version_string(),
           multithreaded ? "true" : "false");
    fflush(stdout);
}

int harness_main(int argc, char **argv, const char *prog, const char *label,
                 void (*run)(void))
{
    harness_init();
    harness.label = label;
    for (int i = 1; i < argc; i++) {
        int took = harness_option(argc, argv, i);
        if (took == 0 && strcmp(argv[i], "--scenarios") == 0 && i + 1 < argc)
            took = 2;
        if (took <= 0) {
            fprintf(stderr,
                    "usage: %s [--quick] [--reps N] [--rep-ms MS] [--label NAME]"
                    " [--scenarios LIST]\n"
                    "Prints one JSON object per result on stdout. See "
                    "bench/README.md.\n",
                    prog);
            return 2;
        }
        i += took - 1;
    }
    if (harness_check(prog) != 0) {
        fprintf(stderr, "%s: --reps must be 1..%d and --rep-ms > 0\n", prog,
                MAX_REPS);
        return 2;
    }
    pin_self(0);
    fprintf(stderr, "%s: run %s, %d CPUs, %d reps of ~%.0f ms\n", prog,
            harness.label, ncpus, harness.reps, harness.rep_ms);
    harness_meta(true);
    become_multithreaded();
    run();
    return 0;
}

/* ------------------------------------------------------- clocks, CPU share */

int64_t rq_wait_now(void)
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

void csw_now(tsample *s)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    s->nvcsw = ru.ru_nvcsw;
    s->nivcsw = ru.ru_nivcsw;
}

double share(const tsample *a, const tsample *b)
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

void pin_self(int idx)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpus[idx % ncpus], &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort */
}

/* --------------------------------------------------------------- statistics */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void sort_doubles(double *v, size_t n) { qsort(v, n, sizeof *v, cmp_double); }

double quantile_sorted(const double *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    double r = ceil(q * (double)n);
    size_t i = r < 1 ? 0 : (size_t)r - 1;
    return v[i < n ? i : n - 1];
}

summary summarize_n(series *s, int need)
{
    summary r = {0};
    if (s->n < need || s->n == 0) {
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

summary summarize(series *s) { return summarize_n(s, harness.reps); }

/* The pause after the misses-th unreliable attempt in a row. */
void backoff(int misses)
{
    long ms = 5L << (misses < 4 ? misses : 4);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Keeps a reliable repetition; after an unreliable one, backs off (5, 10,
 * 20, 40, 80 ms, ...) so that a burst of other load can pass before the
 * next attempt. */
void series_add(series *s, double value, double cpu_ratio)
{
    if (s->attempts == 0 || cpu_ratio < s->worst_cpu)
        s->worst_cpu = cpu_ratio;
    s->attempts++;
    if (cpu_ratio >= RELIABLE_CPU) {
        s->v[s->n++] = value;
        s->misses = 0;
    } else if (series_more(s)) {
        backoff(s->misses++);
    }
}

/* -------------------------------------------------------------- repetitions */

uint64_t calibrate(void (*fn)(void *, uint64_t), void *ctx)
{
    uint64_t n = 8;
    double target = harness.rep_ms * 1e6;
    fn(ctx, n); /* untimed: the first calls may map and fault in memory */
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

series time_single(void (*fn)(void *, uint64_t), void *ctx, uint64_t n)
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

/* ------------------------------------------------ teams of pinned threads */

typedef struct {
    team *t;
    int idx;
} team_arg;

static void *team_main(void *p)
{
    team_arg *a = p;
    team *t = a->t;
    pin_self(a->idx);
    char *spacer = t->spacer ? malloc(t->spacer) : NULL;
    if (spacer)
        spacer[0] = spacer[t->spacer - 1] = 1;
    ZPB_ESCAPE(spacer);
    t->role(t->ctx, a->idx, t->n / 4 + 1); /* warm-up on this thread */
    pthread_barrier_wait(&t->ready);
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
        if (!atomic_load(&t->go_on)) {
            free(spacer);
            return NULL;
        }
    }
}

void team_run(team *t, attempt_fn attempt, void *acc)
{
    pthread_t th[MAX_THREADS];
    team_arg args[MAX_THREADS];
    pthread_barrier_init(&t->ready, NULL, (unsigned)t->nthreads + 1);
    pthread_barrier_init(&t->start, NULL, (unsigned)t->nthreads + 1);
    pthread_barrier_init(&t->end, NULL, (unsigned)t->nthreads + 1);
    pthread_barrier_init(&t->next, NULL, (unsigned)t->nthreads + 1);
    atomic_store(&t->go_on, 1);
    for (int i = 0; i < t->nthreads; i++) {
        args[i] = (team_arg){t, i};
        if (pthread_create(&th[i], NULL, team_main, &args[i]) != 0)
            die("pthread_create");
    }
    pthread_barrier_wait(&t->ready);
    if (t->on_ready)
        t->on_ready(t, acc);
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
    pthread_barrier_destroy(&t->ready);
    pthread_barrier_destroy(&t->start);
    pthread_barrier_destroy(&t->end);
    pthread_barrier_destroy(&t->next);
}

double team_wall(const team *t, double *worst_cpu)
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

/* ----------------------------------- interleaved variants over heap layouts */

void zstat_read(zp_pool *p, zstat *z)
{
    zp_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    if (zp_stats_read(p, &st) != 0) {
        z->contention = z->depot = 0;
        return;
    }
    z->contention = st.contention;
    z->depot = st.depot_hits + st.allocations;
}

void zsum_add(zsum *s, const zstat *a, const zstat *b, double units)
{
    s->contention += (double)(b->contention - a->contention);
    s->depot += (double)(b->depot - a->depot);
    s->units += units;
}

int zsum_json(char *buf, size_t len, const zsum *s)
{
    if (s->units <= 0)
        return snprintf(buf, len, ",\"contention_per_1k_ops\":null"
                                  ",\"depot_per_1k_ops\":null");
    return snprintf(buf, len,
                    ",\"contention_per_1k_ops\":%.6g,\"depot_per_1k_ops\":%.6g",
                    1000 * s->contention / s->units, 1000 * s->depot / s->units);
}

/*
 * Interleaved comparison of single-thread variants, over several heap
 * layouts.
 *
 * Layouts: where the pool's structures and the calling thread's cache land
 * in the heap (relative to page boundaries, and so to the buffers, which
 * are all page-aligned) moves the hot path by up to a nanosecond or more, and
 * a 64 KiB burst by 2x: a figure from one pool measures one layout. So a
 * comparison runs `layouts` times, each time with fresh pools created behind
 * a heap spacer of a different size (8 KiB + 1,088 B per layout), and pools
 * all its repetitions.
 *
 * Within a layout, each variant is warmed up on its own (and calibrated in
 * the first layout); then every round runs one repetition of each variant,
 * in an order that rotates from round to round, so that drift on a shared
 * machine hits all variants alike. A round counts only if every repetition
 * in it got >= 90% of a CPU; a layout tries up to 3x its rounds. Per
 * variant: the median (min-max) over all kept rounds and, against variant 0
 * (the baseline), the median (min-max) of the per-round differences, with
 * the medians per layout alongside.
 */
size_t layout_spacer(int l) { return 8192 + (size_t)l * 1088; }

/* Runs fn(ctx, n) with the stack moved down by `shift` bytes: a loop's
 * local arrays land elsewhere relative to page boundaries. */
static NOINLINE void call_shifted(void (*fn)(void *, uint64_t), void *ctx,
                                  uint64_t n, size_t shift)
{
    volatile char *pad = __builtin_alloca(shift + 1);
    pad[0] = 0;
    fn(ctx, n);
    ZPB_ESCAPE(pad);
}

double median_range(const double *v, int from, int to)
{
    double tmp[MAX_REPS * 4];
    int n = to - from;
    if (n <= 0)
        return NAN;
    memcpy(tmp, v + from, (size_t)n * sizeof *tmp);
    return median_of(tmp, n);
}

void compare_run(variant *v, int nv, int rounds, int layouts)
{
    if (layouts > MAX_LAYOUTS)
        layouts = MAX_LAYOUTS;
    if (rounds * layouts > MAX_REPS * 4)
        rounds = MAX_REPS * 4 / layouts;
    for (int i = 0; i < nv; i++) {
        memset(&v[i].s, 0, sizeof v[i].s);
        memset(&v[i].delta, 0, sizeof v[i].delta);
        memset(&v[i].z, 0, sizeof v[i].z);
        v[i].nlayouts = 0;
    }
    int kept = 0, attempts = 0;
    double worst = 1;
    for (int l = 0; l < layouts; l++) {
        size_t spacer_size = layout_spacer(l);
        size_t stack_shift = (size_t)l * 1104; /* and the loop's stack */
        char *spacer = malloc(spacer_size);
        if (spacer)
            spacer[0] = spacer[spacer_size - 1] = 1;
        ZPB_ESCAPE(spacer);
        for (int i = 0; i < nv; i++)
            if (v[i].open)
                v[i].open(&v[i]);
        for (int i = 0; i < nv; i++) {
            if (l == 0) {
                v[i].n = calibrate(v[i].fn, v[i].ctx);
            } else {
                v[i].fn(v[i].ctx, 8);
                call_shifted(v[i].fn, v[i].ctx, v[i].n, stack_shift); /* warm-up */
            }
        }
        int first = kept, kept_l = 0, tries = 0, misses = 0;
        while (kept_l < rounds && tries < rounds * 3) {
            double val[MAX_VARIANTS], cpu = 1;
            zstat z0[MAX_VARIANTS] = {{0}}, z1[MAX_VARIANTS] = {{0}};
            for (int j = 0; j < nv; j++) {
                int i = (j + attempts) % nv;
                if (v[i].stats)
                    zstat_read(v[i].stats, &z0[i]);
                tsample a, b;
                sample_begin(&a);
                call_shifted(v[i].fn, v[i].ctx, v[i].n, stack_shift);
                sample_end(&b);
                if (v[i].stats)
                    zstat_read(v[i].stats, &z1[i]);
                val[i] = (double)(b.wall - a.wall) /
                         ((double)v[i].n * v[i].per_iter);
                double sh = share(&a, &b);
                if (sh < cpu)
                    cpu = sh;
            }
            attempts++;
            tries++;
            if (cpu < worst)
                worst = cpu;
            if (cpu >= RELIABLE_CPU) {
                for (int i = 0; i < nv; i++) {
                    v[i].s.v[kept] = val[i];
                    v[i].delta.v[kept] = val[i] - val[0];
                    if (v[i].stats)
                        zsum_add(&v[i].z, &z0[i], &z1[i],
                                 (double)v[i].n * v[i].per_iter);
                }
                kept++;
                kept_l++;
                misses = 0;
            } else if (tries < rounds * 3) {
                backoff(misses++);
            }
        }
        for (int i = 0; i < nv; i++) {
            if (v[i].close)
                v[i].close(&v[i]);
            if (kept_l > 0) {
                v[i].by_layout[v[i].nlayouts] = median_range(v[i].s.v, first, kept);
                v[i].delta_by_layout[v[i].nlayouts] =
                    median_range(v[i].delta.v, first, kept);
                v[i].nlayouts++;
            }
        }
        free(spacer);
        if (kept_l < rounds)
            break; /* the comparison is refused: no use going on */
    }
    for (int i = 0; i < nv; i++) {
        v[i].s.n = v[i].delta.n = kept;
        v[i].s.attempts = v[i].delta.attempts = attempts;
        v[i].s.worst_cpu = v[i].delta.worst_cpu = worst;
    }
}

int json_list(char *buf, size_t len, const char *key, const double *v, int n)
{
    int k = snprintf(buf, len, ",\"%s\":[", key);
    for (int i = 0; i < n && (size_t)k < len; i++)
        k += snprintf(buf + k, len - (size_t)k, "%s%.6g", i ? "," : "", v[i]);
    if ((size_t)k < len)
        k += snprintf(buf + k, len - (size_t)k, "]");
    return k;
}

void compare_emit(const char *scenario, size_t size, variant *v, int nv,
                  int need, const char *unit, const char *more)
{
    for (int i = 0; i < nv; i++) {
        summary sm = summarize_n(&v[i].s, need);
        char extra[1024] = "";
        int k = snprintf(extra, sizeof extra, ",\"layouts\":%d", v[i].nlayouts);
        if (!sm.refused)
            k += json_list(extra + k, sizeof extra - (size_t)k, "by_layout",
                           v[i].by_layout, v[i].nlayouts);
        if (i > 0 && !sm.refused) {
            summary d = summarize_n(&v[i].delta, need);
            k += snprintf(extra + k, sizeof extra - (size_t)k,
                          ",\"baseline\":\"%s\",\"delta\":{\"median\":%.6g,"
                          "\"min\":%.6g,\"max\":%.6g}",
                          v[0].name, d.median, d.min, d.max);
            k += json_list(extra + k, sizeof extra - (size_t)k,
                           "delta_by_layout", v[i].delta_by_layout,
                           v[i].nlayouts);
        }
        if (v[i].stats || v[i].z.units > 0)
            k += zsum_json(extra + k, sizeof extra - (size_t)k, &v[i].z);
        if (more)
            snprintf(extra + k, sizeof extra - (size_t)k, "%s", more);
        emit_line(scenario, size, 1,
                  v[i].competitor ? v[i].competitor : "zeropool", v[i].backend,
                  v[i].name, v[i].config, unit, &sm, &v[i].s, v[i].n, extra);
    }
}

/* ------------------------------------------------------------------- output */

void json_num(FILE *f, const char *key, double v, bool valid)
{
    if (valid && isfinite(v))
        fprintf(f, ",\"%s\":%.6g", key, v);
    else
        fprintf(f, ",\"%s\":null", key);
}

void emit_line(const char *scenario, size_t size, int threads,
               const char *competitor, const char *backend,
               const char *variant, const char *config, const char *unit,
               const summary *s, const series *ser, uint64_t iters,
               const char *extra)
{
    printf("{\"scenario\":\"%s\",\"size\":%zu,\"threads\":%d,"
           "\"competitor\":\"%s\",\"backend\":\"%s\",\"run\":\"%s\","
           "\"unit\":\"%s\"",
           scenario, size, threads, competitor, backend, harness.label,
           unit);
    if (variant)
        printf(",\"variant\":\"%s\",\"config\":\"%s\"", variant,
               config ? config : "default");
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
    char who[96];
    if (variant)
        snprintf(who, sizeof who, "%s %s", variant, config ? config : "");
    else
        snprintf(who, sizeof who, "%s", competitor);
    if (s->refused || !isfinite(s->median)) /* refused, or not measured */
        fprintf(stderr, "  %-12s %8zu %2dT %-9s %s\n", scenario, size, threads,
                who, s->note);
    else
        fprintf(stderr, "  %-12s %8zu %2dT %-9s %10.2f %s  [%.2f-%.2f]\n",
                scenario, size, threads, who, s->median, unit, s->min, s->max);
}

void die(const char *what)
{
    fprintf(stderr, "%s: %s failed: %s\n", harness.prog, what, strerror(errno));
    exit(2);
}

/* ---------------------------------------------------------------- processes */

static void *idle_thread(void *arg) { return arg; }

void become_multithreaded(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, idle_thread, NULL) == 0)
        pthread_join(t, NULL);
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
