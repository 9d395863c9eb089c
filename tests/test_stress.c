/* Stress: random sizes, buffers handed between threads, never two owners at once. */
/*
 * usage: test_stress [seconds=3] [threads=4] [seed]
 *
 * Each thread gets buffers of random sizes (1 B .. 2 x max_class, so some
 * are oversize), tags each with its owner and a fill pattern, keeps up to
 * HOLD of them, puts some back and mails others to random threads. Every
 * buffer is checked (tag, pattern) when it changes hands and before it is
 * put. A global set of live pointers catches a pointer handed out while
 * still held. At the end the stats must add up and nothing be outstanding.
 */
#include "zp_test.h"

#define MAX_CLASS (256 * ZPT_KiB)
#define MIN_CLASS 64
#define HOLD 48
#define MAILBOX 64
#define MAX_THREADS 64
#define MAGIC 0x5A505354u /* "ZPST" */

static double g_seconds = 3.0;
static int g_threads = 4;
static uint64_t g_seed = 0x2545F4914F6CDD1Dull;

/* ------------------------------------------------------ live pointer set */

#define LIVE_BUCKETS 8192
#define LIVE_SLOTS 8

typedef struct live_bucket {
    pthread_mutex_t lock;
    void *slot[LIVE_SLOTS];
} live_bucket;

static live_bucket g_live[LIVE_BUCKETS];

static live_bucket *live_bucket_of(const void *p)
{
    uint64_t h = ((uint64_t)(uintptr_t)p >> 6) * 0x9E3779B97F4A7C15ull;
    return &g_live[h >> (64 - 13)];
}

/* 0 ok, 1 already live (a second owner), 2 bucket full (test limit). */
static int live_insert(void *p)
{
    live_bucket *b = live_bucket_of(p);
    int i, free_slot = -1, rc = 0;
    pthread_mutex_lock(&b->lock);
    for (i = 0; i < LIVE_SLOTS; i++) {
        if (b->slot[i] == p)
            rc = 1;
        else if (!b->slot[i] && free_slot < 0)
            free_slot = i;
    }
    if (rc == 0) {
        if (free_slot < 0)
            rc = 2;
        else
            b->slot[free_slot] = p;
    }
    pthread_mutex_unlock(&b->lock);
    return rc;
}

/* 1 if p was live (and is now removed). */
static int live_remove(void *p)
{
    live_bucket *b = live_bucket_of(p);
    int i, found = 0;
    pthread_mutex_lock(&b->lock);
    for (i = 0; i < LIVE_SLOTS; i++)
        if (b->slot[i] == p) {
            b->slot[i] = NULL;
            found = 1;
            break;
        }
    pthread_mutex_unlock(&b->lock);
    return found;
}

/* ------------------------------------------------------------- buffers */

typedef struct tag {
    uint32_t magic;
    uint32_t owner;
    uint64_t seed;
    uint64_t size;
} tag;

typedef struct item {
    unsigned char *ptr;
    size_t size;
    uint64_t seed;
} item;

/* Writes (or checks) the pattern of a buffer of `size` requested bytes:
 * all of it up to 8 KiB; beyond that the head, the tail and one word in
 * every 4 KiB, so that overlapping buffers are caught at page granularity.
 * Returns 1 if intact (always 1 when writing). */
static int pattern(unsigned char *b, size_t size, uint64_t seed, int write)
{
    size_t lo = sizeof(tag), off;
    if (size <= lo)
        return 1;
    if (size <= 8192) {
        if (write) {
            zpt_fill(b + lo, size - lo, seed);
            return 1;
        }
        return zpt_check(b + lo, size - lo, seed) == SIZE_MAX;
    }
    if (write) {
        zpt_fill(b + lo, 512, seed);
        zpt_fill(b + size - 512, 512, seed ^ 1);
        for (off = 4096; off + 8 <= size - 512; off += 4096)
            zpt_fill(b + off, 8, seed ^ off);
        return 1;
    }
    if (zpt_check(b + lo, 512, seed) != SIZE_MAX ||
        zpt_check(b + size - 512, 512, seed ^ 1) != SIZE_MAX)
        return 0;
    for (off = 4096; off + 8 <= size - 512; off += 4096)
        if (zpt_check(b + off, 8, seed ^ off) != SIZE_MAX)
            return 0;
    return 1;
}

/* --------------------------------------------------------------- threads */

typedef struct mailbox {
    pthread_mutex_t lock;
    item items[MAILBOX];
    int count;
} mailbox;

typedef struct worker {
    int id;
    uint64_t rng;
    pthread_t thread;
    mailbox box;
    /* results, read by main after join */
    uint64_t gets, puts, sent, received, oversize, verified;
    uint64_t null_gets, double_owner, set_full, not_live, bad_tag,
        bad_pattern, bad_capacity;
} worker;

static zp_pool *g_pool;
static worker g_workers[MAX_THREADS];
static atomic_int g_stop;
static pthread_barrier_t g_done;

static size_t random_size(uint64_t *rng)
{
    uint64_t k = zpt_rand(rng);
    if (k % 100 < 4) /* oversize: (max, 2 x max] */
        return MAX_CLASS + 1 + (size_t)(zpt_rand(rng) % MAX_CLASS);
    /* log-uniform 1 B .. max_class */
    return 1 + (size_t)(zpt_rand(rng) % ((size_t)1 << (zpt_rand(rng) % 19)));
}

/* Checks an item this worker is about to own or release. */
static void verify(worker *w, const item *it)
{
    tag t;
    memcpy(&t, it->ptr, sizeof(t));
    w->verified++;
    if (t.magic != MAGIC || t.owner != (uint32_t)w->id || t.seed != it->seed ||
        t.size != it->size) {
        w->bad_tag++;
        return;
    }
    if (!pattern(it->ptr, it->size, it->seed, 0))
        w->bad_pattern++;
}

static void set_owner(item *it, int owner)
{
    tag t;
    memcpy(&t, it->ptr, sizeof(t));
    t.owner = (uint32_t)owner;
    memcpy(it->ptr, &t, sizeof(t));
}

static int get_one(worker *w, item *it)
{
    tag t;
    size_t cap;
    int rc;
    it->size = random_size(&w->rng);
    it->ptr = zp_get(g_pool, it->size);
    if (!it->ptr) {
        w->null_gets++;
        return 0;
    }
    w->gets++;
    w->oversize += it->size > MAX_CLASS;
    rc = live_insert(it->ptr);
    if (rc == 1)
        w->double_owner++;
    else if (rc == 2)
        w->set_full++;
    cap = zp_capacity(g_pool, it->ptr);
    if (cap < it->size || cap < MIN_CLASS)
        w->bad_capacity++;
    it->seed = zpt_rand(&w->rng);
    t.magic = MAGIC;
    t.owner = (uint32_t)w->id;
    t.seed = it->seed;
    t.size = it->size;
    memcpy(it->ptr, &t, sizeof(t));
    pattern(it->ptr, it->size, it->seed, 1);
    return 1;
}

static void put_one(worker *w, item *it)
{
    verify(w, it);
    /* scrub the tag so a stale copy can never pass for a live one */
    memset(it->ptr, 0, sizeof(tag));
    if (!live_remove(it->ptr))
        w->not_live++;
    zp_put(g_pool, it->ptr);
    w->puts++;
}

/* Moves everything in the mailbox into held (or puts it if full). */
static void drain(worker *w, item *held, int *nheld)
{
    item in[MAILBOX];
    int n, i;
    pthread_mutex_lock(&w->box.lock);
    n = w->box.count;
    memcpy(in, w->box.items, (size_t)n * sizeof(item));
    w->box.count = 0;
    pthread_mutex_unlock(&w->box.lock);
    for (i = 0; i < n; i++) {
        w->received++;
        verify(w, &in[i]);
        if (*nheld < HOLD)
            held[(*nheld)++] = in[i];
        else
            put_one(w, &in[i]);
    }
}

static int send_to(worker *to, const item *it)
{
    int ok = 0;
    pthread_mutex_lock(&to->box.lock);
    if (to->box.count < MAILBOX) {
        to->box.items[to->box.count++] = *it;
        ok = 1;
    }
    pthread_mutex_unlock(&to->box.lock);
    return ok;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    item held[HOLD];
    int nheld = 0, i;
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        uint64_t r = zpt_rand(&w->rng) % 100;
        drain(w, held, &nheld);
        if (r < 45) {
            if (nheld < HOLD && get_one(w, &held[nheld]))
                nheld++;
        } else if (r < 80) {
            if (nheld > 0) {
                i = (int)(zpt_rand(&w->rng) % (uint64_t)nheld);
                put_one(w, &held[i]);
                held[i] = held[--nheld];
            }
        } else if (r < 95) {
            if (nheld > 0 && g_threads > 1) {
                int to = (int)(zpt_rand(&w->rng) % (uint64_t)g_threads);
                if (to == w->id)
                    to = (to + 1) % g_threads;
                i = (int)(zpt_rand(&w->rng) % (uint64_t)nheld);
                verify(w, &held[i]);
                set_owner(&held[i], to);
                if (send_to(&g_workers[to], &held[i])) {
                    w->sent++;
                    held[i] = held[--nheld];
                } else {
                    set_owner(&held[i], w->id); /* mailbox full: keep it */
                }
            }
        } else if (nheld > 0) {
            /* check one held buffer in place */
            verify(w, &held[zpt_rand(&w->rng) % (uint64_t)nheld]);
        }
    }
    /* every thread has stopped sending once all pass the barrier */
    pthread_barrier_wait(&g_done);
    drain(w, held, &nheld);
    for (i = 0; i < nheld; i++)
        put_one(w, &held[i]);
    return NULL;
}

static void test_stress(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_stats s;
    uint64_t gets = 0, puts = 0, sent = 0, received = 0, oversize = 0;
    uint64_t verified = 0, stats_reads = 0, bad_reads = 0;
    uint64_t start;
    int i;
    (void)state;

    for (i = 0; i < LIVE_BUCKETS; i++)
        pthread_mutex_init(&g_live[i].lock, NULL);
    g_pool = ZPT_POOL(.min_class = MIN_CLASS, .max_class = MAX_CLASS, .pv = pv);
    pthread_barrier_init(&g_done, NULL, (unsigned)g_threads);
    atomic_store(&g_stop, 0);

    for (i = 0; i < g_threads; i++) {
        worker *w = &g_workers[i];
        memset(w, 0, sizeof(*w));
        w->id = i;
        w->rng = g_seed + (uint64_t)i * 0x632BE59BD9B4E019ull;
        pthread_mutex_init(&w->box.lock, NULL);
    }
    for (i = 0; i < g_threads; i++)
        assert_int_equal(
            pthread_create(&g_workers[i].thread, NULL, worker_main,
                           &g_workers[i]),
            0);

    /* read stats concurrently while the workers run */
    start = zpt_now_ns();
    while (zpt_ms_since(start) < g_seconds * 1000.0) {
        zp_stats live;
        stats_reads++;
        /* exact at every read, even concurrent with gets and puts (no
           assertion while the workers run: count, assert after joining) */
        if (zpt_stats(g_pool, &live) != 0 || !zpt_stats_sum_ok(&live) ||
            !zpt_stats_classes_ok(&live)) {
            if (!bad_reads)
                zpt_stats_print("concurrent read that does not add up",
                                &live);
            bad_reads++;
        }
        zpt_sleep_ms(20);
    }
    atomic_store(&g_stop, 1);
    for (i = 0; i < g_threads; i++)
        assert_int_equal(pthread_join(g_workers[i].thread, NULL), 0);

    for (i = 0; i < g_threads; i++) {
        worker *w = &g_workers[i];
        if (w->null_gets || w->double_owner || w->set_full || w->not_live ||
            w->bad_tag || w->bad_pattern || w->bad_capacity)
            fail_msg("thread %d: %llu NULL gets, %llu pointers handed out "
                     "while live, %llu live-set overflows, %llu puts of "
                     "non-live pointers, %llu bad tags, %llu bad patterns, "
                     "%llu bad capacities",
                     i, (unsigned long long)w->null_gets,
                     (unsigned long long)w->double_owner,
                     (unsigned long long)w->set_full,
                     (unsigned long long)w->not_live,
                     (unsigned long long)w->bad_tag,
                     (unsigned long long)w->bad_pattern,
                     (unsigned long long)w->bad_capacity);
        gets += w->gets;
        puts += w->puts;
        sent += w->sent;
        received += w->received;
        oversize += w->oversize;
        verified += w->verified;
    }
    assert_int_equal(zpt_stats(g_pool, &s), 0);
    print_message("# %d threads, %.1f s, seed %llu: %llu gets, %llu handed "
                  "over, %llu checks, %llu oversize, %llu stats reads\n",
                  g_threads, g_seconds, (unsigned long long)g_seed,
                  (unsigned long long)gets, (unsigned long long)sent,
                  (unsigned long long)verified, (unsigned long long)oversize,
                  (unsigned long long)stats_reads);
    zpt_stats_print("final", &s);
    assert_int_equal(bad_reads, 0);
    assert_true(zpt_stats_classes_ok(&s));
    assert_int_equal(sent, received);
    assert_int_equal(gets, puts);
    assert_int_equal(s.gets, gets);
    assert_int_equal(s.puts, puts);
    assert_true(zpt_stats_sum_ok(&s));
    assert_int_equal(s.oversize, oversize);
    assert_int_equal(s.discards, oversize);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.misuse, 0);
    assert_true(s.bytes_reserved >= s.bytes_cached);
    assert_true(s.peak_reserved >= s.bytes_reserved);
    assert_int_equal(s.bytes_reserved, atomic_load(&pv->bytes_live));
    if (g_threads > 1 && g_seconds >= 0.5)
        assert_true(sent > 0);

    zp_pool_destroy(g_pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    assert_int_equal(atomic_load(&pv->bad_args), 0);
    zpt_provider_free(pv);
    for (i = 0; i < g_threads; i++)
        pthread_mutex_destroy(&g_workers[i].box.lock);
    pthread_barrier_destroy(&g_done);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress),
    };
    if (zpt_stress_args(argc, argv, &g_seconds, &g_threads, &g_seed, 1, MAX_THREADS))
        return 2;
    return ZPT_RUN(tests);
}
