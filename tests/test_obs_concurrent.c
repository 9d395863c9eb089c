/* Tests that stats read from a third thread add up at every read while two threads get and put. */
#include "zp_test.h"

/*
 * Two workers get and put (singles, batches through the cache and past it,
 * mixed-class put_batch with NULL entries, oversize now and then), each
 * holding at most HOLD buffers; a third thread reads the stats in a loop.
 *
 * Asserted at EVERY read, exactly (no slack):
 *   - gets == cache_hits + depot_hits + allocations (+ oversize in total),
 *     per class and in total, and the classes add up to the totals;
 *   - per class, outstanding + cached <= reserved, both multiples of the
 *     class size; pool-wide, outstanding + cached <= reserved and the
 *     classes' reserved bytes <= the pool's;
 *   - discards <= oversize gets, and oversize buffers counted out
 *     (oversize - discards) <= 2 * HOLD: both are counted under one lock;
 *   - no counter goes back between two reads; peak >= reserved.
 *
 * Asserted with the documented in-flight slack (zeropool.h: a read may miss
 * the operations in flight). The per-thread counters are read one thread
 * after another while the threads keep running, so one read is not a single
 * instant: it can see a put whose get it missed (puts > gets as read), or
 * count fewer outstanding buffers than are out. So puts <= gets is NOT
 * asserted within one read. What does hold, given that a thread's counter
 * stores become visible in program order (x86-TSO; asserted only there):
 *   - per class, bytes_outstanding / size <= 2 * HOLD: each worker's own
 *     gets minus its own puts, read gets-first, never exceeds what it holds
 *     (a worker only puts buffers it got itself);
 *   - every put counted by one read has its get counted by the next read:
 *     puts(read k) <= gets(read k + 1), per class and in total.
 * Once the workers are joined every figure is exact again.
 *
 * test_gauges_under_trim adds slabs that are unmapped while the reader
 * reads (gets, puts and zp_trim in a loop, through the syscall-free arena
 * provider so it happens thousands of times a second) and checks the gauge
 * invariants above at every read, until a violation or a bound of reads.
 *
 * argv[1]: operations per worker (default 200000; 30000 under sanitizers).
 */
#if defined(__x86_64__) || defined(__i386__)
#define ORDERED_STORES 1
#endif

#define MAXC (1 * ZPT_MiB)
#define NCLASSES 9
#define HOLD 128
#define NWORKERS 2

static long ops_per_worker;

typedef struct shared {
    zp_pool *pool;
    pthread_barrier_t start;
    atomic_int workers_done;
    atomic_int failures;     /* worker-side: a get failed, contents broken */
    atomic_long reads;
    atomic_long violations;
    pthread_mutex_t msg_lock;
    char msg[512];           /* the first violation */
    long read_bound;         /* trim variant: stop after this many reads */
    atomic_int stop;         /* trim variant: the reader is done */
} shared;

typedef struct worker {
    shared *sh;
    int id;
    /* tallies, read by main after join */
    uint64_t gets[NCLASSES], puts[NCLASSES], oversize, discards;
} worker;

static void violation(shared *sh, long read, const char *why)
{
    pthread_mutex_lock(&sh->msg_lock);
    if (sh->msg[0] == 0)
        snprintf(sh->msg, sizeof sh->msg, "read %ld: %s", read, why);
    pthread_mutex_unlock(&sh->msg_lock);
    atomic_fetch_add(&sh->violations, 1);
}

/* --------------------------------------------------------------- workers */

typedef struct slot {
    void *buf;
    int cls;     /* class index, -1 for oversize */
    uint64_t seed;
} slot;

static int class_of(size_t size)
{
    int c = 0;
    while (((size_t)4096 << c) < size)
        c++;
    return c;
}

static void tally_put(worker *w, const slot *s)
{
    if (s->cls < 0) {
        w->discards++;
    } else {
        w->puts[s->cls]++;
    }
}

/* The first 64 bytes of each held buffer carry a pattern: checked on put. */
static void check_slot(worker *w, const slot *s)
{
    if (zpt_check(s->buf, 64, s->seed) != SIZE_MAX)
        atomic_fetch_add(&w->sh->failures, 1);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    zp_pool *pool = sh->pool;
    slot held[HOLD];
    void *bufs[64];
    int idx[64];
    uint64_t rng = 0x5eed0000u + (uint64_t)w->id, seed = (uint64_t)w->id << 40;
    long op;
    int i, k, n;
    memset(held, 0, sizeof held);
    pthread_barrier_wait(&sh->start);
    for (op = 0; op < ops_per_worker; op++) {
        unsigned r = (unsigned)(zpt_rand(&rng) % 20);
        int at = (int)(zpt_rand(&rng) % HOLD);
        if (r < 7) { /* single get */
            unsigned c = (unsigned)(zpt_rand(&rng) % 16);
            size_t size;
            c = c < 6 ? 0 : c < 9 ? 1 : c - 7; /* 0..8, mostly small */
            size = ((size_t)4096 << c) - (size_t)(zpt_rand(&rng) % 1000);
            if (r == 0 && zpt_rand(&rng) % 16 == 0)
                size = MAXC + 1 + (size_t)(zpt_rand(&rng) % MAXC);
            for (k = 0; k < HOLD && held[(at + k) % HOLD].buf; k++)
                ;
            if (k == HOLD)
                continue;
            at = (at + k) % HOLD;
            held[at].buf = zp_get(pool, size);
            if (!held[at].buf) {
                atomic_fetch_add(&sh->failures, 1);
                break;
            }
            held[at].cls = size > MAXC ? -1 : class_of(size);
            held[at].seed = seed++;
            zpt_fill(held[at].buf, 64, held[at].seed);
            if (held[at].cls < 0)
                w->oversize++;
            else
                w->gets[held[at].cls]++;
        } else if (r < 13) { /* single put */
            if (!held[at].buf)
                continue;
            check_slot(w, &held[at]);
            zp_put(pool, held[at].buf);
            tally_put(w, &held[at]);
            held[at].buf = NULL;
        } else if (r < 16) { /* get_batch into free slots */
            int c = (int)(zpt_rand(&rng) % 4);
            int want = 1 + (int)(zpt_rand(&rng) % 64);
            for (n = 0, k = 0; k < HOLD && n < want; k++)
                if (!held[(at + k) % HOLD].buf)
                    idx[n++] = (at + k) % HOLD;
            if (n == 0)
                continue;
            if (zp_get_batch(pool, (size_t)4096 << c, bufs, (size_t)n) != 0) {
                atomic_fetch_add(&sh->failures, 1);
                break;
            }
            for (i = 0; i < n; i++) {
                slot *s = &held[idx[i]];
                s->buf = bufs[i];
                s->cls = c;
                s->seed = seed++;
                zpt_fill(s->buf, 64, s->seed);
            }
            w->gets[c] += (uint64_t)n;
        } else { /* put_batch of a run of slots: mixed classes, NULLs */
            int len = 1 + (int)(zpt_rand(&rng) % 64);
            for (n = 0, k = 0; k < len; k++) {
                slot *s = &held[(at + k) % HOLD];
                if (s->buf) {
                    check_slot(w, s);
                    tally_put(w, s);
                }
                bufs[n++] = s->buf; /* NULL entries too */
                s->buf = NULL;
            }
            zp_put_batch(pool, bufs, (size_t)n);
        }
    }
    for (i = 0; i < HOLD; i++) {
        if (held[i].buf) {
            check_slot(w, &held[i]);
            zp_put(pool, held[i].buf);
            tally_put(w, &held[i]);
        }
    }
    atomic_fetch_add(&sh->workers_done, 1);
    return NULL;
}

/* ---------------------------------------------------------------- reader */

static void check_read(shared *sh, long n, const zp_stats *prev, const zp_stats *cur)
{
    char why[300];
    uint32_t c;
    if (!zpt_stats_ok(cur, why, sizeof why) ||
        (prev && !zpt_stats_monotonic(prev, cur, why, sizeof why))) {
        violation(sh, n, why);
        return;
    }
    if (cur->oversize - cur->discards > (uint64_t)NWORKERS * HOLD) {
        snprintf(why, sizeof why, "%llu oversize buffers counted out, at most %d are",
                 (unsigned long long)(cur->oversize - cur->discards), NWORKERS * HOLD);
        violation(sh, n, why);
        return;
    }
#ifdef ORDERED_STORES
    for (c = 0; c < cur->nclasses; c++) {
        const zp_class_stats *k = &cur->classes[c];
        if (k->bytes_outstanding / k->size > (uint64_t)NWORKERS * HOLD) {
            snprintf(why, sizeof why,
                     "class %llu: %llu buffers counted out, the workers hold at most %d",
                     (unsigned long long)k->size,
                     (unsigned long long)(k->bytes_outstanding / k->size), NWORKERS * HOLD);
            violation(sh, n, why);
            return;
        }
        if (prev && prev->classes[c].puts > k->gets) {
            snprintf(why, sizeof why,
                     "class %llu: the previous read counted %llu puts, this one only %llu "
                     "gets",
                     (unsigned long long)k->size, (unsigned long long)prev->classes[c].puts,
                     (unsigned long long)k->gets);
            violation(sh, n, why);
            return;
        }
    }
    if (prev && prev->puts > cur->gets) {
        snprintf(why, sizeof why, "the previous read counted %llu puts, this one %llu gets",
                 (unsigned long long)prev->puts, (unsigned long long)cur->gets);
        violation(sh, n, why);
    }
#else
    (void)c;
#endif
}

static void *reader_main(void *arg)
{
    shared *sh = arg;
    zp_stats prev, cur;
    long n = 0;
    prev = zpt_read(sh->pool);
    check_read(sh, n++, NULL, &prev);
    pthread_barrier_wait(&sh->start);
    while (atomic_load(&sh->workers_done) < NWORKERS) {
        cur = zpt_read(sh->pool);
        check_read(sh, n++, &prev, &cur);
        prev = cur;
    }
    cur = zpt_read(sh->pool);
    check_read(sh, n++, &prev, &cur);
    atomic_store(&sh->reads, n);
    return NULL;
}

static void shared_init(shared *sh, zp_pool *pool, int parties)
{
    memset(sh, 0, sizeof *sh);
    sh->pool = pool;
    pthread_barrier_init(&sh->start, NULL, (unsigned)parties);
    pthread_mutex_init(&sh->msg_lock, NULL);
    atomic_init(&sh->workers_done, 0);
    atomic_init(&sh->failures, 0);
    atomic_init(&sh->reads, 0);
    atomic_init(&sh->violations, 0);
    atomic_init(&sh->stop, 0);
}

static void shared_fini(shared *sh)
{
    pthread_barrier_destroy(&sh->start);
    pthread_mutex_destroy(&sh->msg_lock);
}

static void test_counters_add_up(void **state)
{
    zp_pool *pool;
    shared sh;
    worker w[NWORKERS];
    pthread_t t[NWORKERS], rt;
    uint64_t gets = 0, puts = 0, oversize = 0, discards = 0;
    zp_stats s;
    int i, c;
    (void)state;
    pool = ZPT_POOL(.max_class = MAXC);
    shared_init(&sh, pool, NWORKERS + 1);
    assert_int_equal(pthread_create(&rt, NULL, reader_main, &sh), 0);
    for (i = 0; i < NWORKERS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].sh = &sh;
        w[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (i = 0; i < NWORKERS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(pthread_join(rt, NULL), 0);

    s = zpt_read(pool);
    zpt_stats_print_classes("after the run", &s);
    fprintf(stderr, "# %ld reads while %d workers ran %ld operations each\n",
            atomic_load(&sh.reads), NWORKERS, ops_per_worker);
    if (atomic_load(&sh.violations))
        fail_msg("%ld of %ld reads broke an invariant; first: %s", atomic_load(&sh.violations),
                 atomic_load(&sh.reads), sh.msg);
    assert_int_equal(atomic_load(&sh.failures), 0);
    assert_true(atomic_load(&sh.reads) >= 2);

    /* quiet again: every figure exact */
    for (c = 0; c < NCLASSES; c++) {
        uint64_t cg = 0, cp = 0;
        for (i = 0; i < NWORKERS; i++) {
            cg += w[i].gets[c];
            cp += w[i].puts[c];
        }
        assert_int_equal(s.classes[c].gets, cg);
        assert_int_equal(s.classes[c].puts, cp);
        assert_int_equal(s.classes[c].bytes_outstanding, 0);
        gets += cg;
        puts += cp;
    }
    for (i = 0; i < NWORKERS; i++) {
        oversize += w[i].oversize;
        discards += w[i].discards;
    }
    assert_int_equal(s.oversize, oversize);
    assert_int_equal(s.discards, discards);
    assert_int_equal(s.gets, gets + oversize);
    assert_int_equal(s.puts, puts + discards);
    assert_int_equal(s.gets, s.puts);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.misuse, 0);
    assert_true(s.cache_hits > 0 && s.depot_hits > 0 && s.allocations > 0);
    shared_fini(&sh);
    zp_pool_destroy(pool);
}

/* ------------------------------------------------------- with unmapping */

static void *trim_worker(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    void *bufs[48];
    uint64_t rng = 77 + (uint64_t)w->id;
    pthread_barrier_wait(&sh->start);
    while (!atomic_load(&sh->stop)) {
        size_t size = (size_t)64 << (zpt_rand(&rng) % 4);
        size_t n = 1 + (size_t)(zpt_rand(&rng) % 48);
        if (zp_get_batch(sh->pool, size, bufs, n) != 0) {
            atomic_fetch_add(&sh->failures, 1);
            break;
        }
        zp_put_batch(sh->pool, bufs, n);
        bufs[0] = zp_get(sh->pool, size);
        zp_put(sh->pool, bufs[0]);
        zp_trim(sh->pool, 0);
    }
    atomic_fetch_add(&sh->workers_done, 1);
    return NULL;
}

static void *trim_reader(void *arg)
{
    shared *sh = arg;
    char why[300];
    long n;
    pthread_barrier_wait(&sh->start);
    for (n = 0; n < sh->read_bound; n++) {
        zp_stats s = zpt_read(sh->pool);
        if (!zpt_stats_ok(&s, why, sizeof why)) {
            violation(sh, n, why);
            n++;
            break;
        }
    }
    atomic_store(&sh->reads, n);
    atomic_store(&sh->stop, 1);
    return NULL;
}

/* Slabs mapped and unmapped while stats are read: the gauges still fit in
 * bytes_reserved at every read (a pool with every class 64 B .. 1 GiB, so
 * one read is long). */
static void test_gauges_under_trim(void **state)
{
#ifdef ZPT_SANITIZED
    const long bound = 20000;
#else
    const long bound = 150000;
#endif
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool;
    shared sh;
    worker w[NWORKERS];
    pthread_t t[NWORKERS], rt;
    zp_stats s;
    int i;
    (void)state;
    zpt_provider_arena(pv, 256 * ZPT_KiB, 256); /* the slabs of classes <= 256 KiB */
    pool = ZPT_POOL(.min_class = 64, .max_class = ZPT_GiB, .pv = pv);
    shared_init(&sh, pool, NWORKERS + 1);
    sh.read_bound = bound;
    assert_int_equal(pthread_create(&rt, NULL, trim_reader, &sh), 0);
    for (i = 0; i < NWORKERS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].sh = &sh;
        w[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, trim_worker, &w[i]), 0);
    }
    assert_int_equal(pthread_join(rt, NULL), 0);
    for (i = 0; i < NWORKERS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    s = zpt_read(pool);
    fprintf(stderr, "# %ld reads, %llu gets\n", atomic_load(&sh.reads),
            (unsigned long long)s.gets);
    if (atomic_load(&sh.violations))
        fail_msg("a read while slabs were unmapped broke an invariant: %s", sh.msg);
    assert_int_equal(atomic_load(&sh.failures), 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.gets, s.puts);
    shared_fini(&sh);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    zpt_provider_free(pv);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_add_up),
        cmocka_unit_test(test_gauges_under_trim),
    };
#ifdef ZPT_SANITIZED
    ops_per_worker = 30000;
#else
    ops_per_worker = 200000;
#endif
    if (argc > 1)
        ops_per_worker = atol(argv[1]);
    if (ops_per_worker <= 0) {
        fprintf(stderr, "usage: %s [operations per worker]\n", argv[0]);
        return 2;
    }
    return ZPT_RUN(tests);
}
