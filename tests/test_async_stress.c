/* Cancel against grant: a loop issues async requests and cancels them at random while threads put and get on the same budget; every request ends exactly once, no buffer is lost or granted twice, the budget is never exceeded. */
/*
 * usage: test_async_stress [requests=100000] [threads=3] [seed]
 *
 * The main thread is the loop: it keeps up to SLOTS requests in flight on
 * two pools of one small budget (sizes 64 KiB .. 1 MiB), cancels pending
 * ones at random — often right after the descriptor turned readable, when
 * another thread's put may be granting that very request — and dispatches.
 * Every buffer it gets (at once or in a callback) is tagged and handed to
 * the worker threads, which check the tag and put it back (zp_put, batch
 * puts, through a handle), get and put buffers of their own (zp_get, and
 * zp_get_timed, which queues in the same FIFO), and trim.
 *
 * Checked: each request ends exactly once (returned at once, one callback,
 * or one successful cancel); a callback never runs for a request whose
 * cancel returned 0, and always on the loop thread inside dispatch; no
 * buffer is held by two owners at once (a set of outstanding buffers) or
 * changed by anyone else (tags); zp_cancel of a pending request returns
 * 0; the budget's peak and what the provider had mapped at any instant
 * never exceed the budget; after everything is put back nothing is
 * outstanding and every region is unmapped at destroy. A stall (no
 * request ending for STALL_MS) fails with the state printed.
 */
#include "zp_test.h"

#include <poll.h>

#define BUDGET (6 * ZPT_MiB)
#define SLAB (256 * ZPT_KiB) /* the slab of every class used: 64 .. 256 KiB */
#define SLOTS 48
#define MAX_THREADS 16
#define RING 4096     /* hand-off queue: more than can ever be outstanding */
#define SET_MAX 1024  /* outstanding buffers: at most BUDGET / 64 KiB */
#define STALL_MS 20000

static long g_requests = 100000;
static int g_threads = 3;
static uint64_t g_seed = 0x3C6EF372FE94F82Bull;

static zp_budget *g_budget;
static zp_pool *g_pools[2];
static zpt_provider *g_pv;
static pthread_t g_loop_thread;
static _Thread_local int t_in_dispatch;

/* ------------------------------------------------- outstanding buffers */

static pthread_mutex_t g_set_lock = PTHREAD_MUTEX_INITIALIZER;
static void *g_set[SET_MAX];
static int g_set_n;
static atomic_long g_double_grants, g_unknown_puts, g_set_full;

/* Records buf as handed to exactly one owner. */
static void owned(void *buf)
{
    int i;
    pthread_mutex_lock(&g_set_lock);
    for (i = 0; i < g_set_n; i++)
        if (g_set[i] == buf)
            break;
    if (i < g_set_n)
        atomic_fetch_add(&g_double_grants, 1);
    else if (g_set_n == SET_MAX)
        atomic_fetch_add(&g_set_full, 1);
    else
        g_set[g_set_n++] = buf;
    pthread_mutex_unlock(&g_set_lock);
}

/* Its owner is about to put it back. */
static void disowned(void *buf)
{
    int i;
    pthread_mutex_lock(&g_set_lock);
    for (i = 0; i < g_set_n; i++)
        if (g_set[i] == buf)
            break;
    if (i == g_set_n)
        atomic_fetch_add(&g_unknown_puts, 1);
    else
        g_set[i] = g_set[--g_set_n];
    pthread_mutex_unlock(&g_set_lock);
}

/* ------------------------------------------------------------ hand-off */

typedef struct item {
    void *buf;
    size_t size;
    int pool;
    uint64_t tag;
} item;

static pthread_mutex_t g_ring_lock = PTHREAD_MUTEX_INITIALIZER;
static item g_ring[RING];
static size_t g_ring_head, g_ring_tail; /* tail - head items queued */
static atomic_long g_ring_overflow;

static void tag(item *it)
{
    memcpy(it->buf, &it->tag, sizeof it->tag);
    memcpy((char *)it->buf + it->size - sizeof it->tag, &it->tag, sizeof it->tag);
}

static int tag_ok(const item *it)
{
    uint64_t a, b;
    memcpy(&a, it->buf, sizeof a);
    memcpy(&b, (const char *)it->buf + it->size - sizeof b, sizeof b);
    return a == it->tag && b == it->tag;
}

static void hand_off(item it)
{
    owned(it.buf);
    tag(&it);
    pthread_mutex_lock(&g_ring_lock);
    if (g_ring_tail - g_ring_head == RING)
        atomic_fetch_add(&g_ring_overflow, 1); /* cannot happen: see RING */
    else
        g_ring[g_ring_tail++ % RING] = it;
    pthread_mutex_unlock(&g_ring_lock);
}

static int take(item *it)
{
    int got = 0;
    pthread_mutex_lock(&g_ring_lock);
    if (g_ring_head != g_ring_tail) {
        *it = g_ring[g_ring_head++ % RING];
        got = 1;
    }
    pthread_mutex_unlock(&g_ring_lock);
    return got;
}

/* -------------------------------------------------------------- workers */

static atomic_int g_stop;
static atomic_long g_bad_tags, g_bad_errno, g_own_gets, g_timed_gets, g_timed_out;
static atomic_int g_last_errno;

#define HOLD 6

typedef struct worker {
    int id;
    uint64_t rng;
    zp_cache *h[2];
    item held[HOLD];
    int n;
    pthread_t thread;
} worker;

static size_t random_size(uint64_t *rng)
{
    static const size_t sizes[] = {64 * ZPT_KiB, 100 * ZPT_KiB, 128 * ZPT_KiB,
                                   200 * ZPT_KiB, 256 * ZPT_KiB};
    return sizes[zpt_rand(rng) % (sizeof sizes / sizeof sizes[0])];
}

/* Puts the oldest held buffer back, one of several ways. */
static void release_one(worker *w)
{
    item it = w->held[0];
    uint64_t how = zpt_rand(&w->rng) % 8;
    memmove(w->held, w->held + 1, (size_t)(w->n - 1) * sizeof(item));
    w->n--;
    if (!tag_ok(&it))
        atomic_fetch_add(&g_bad_tags, 1);
    disowned(it.buf);
    if (how < 4) {
        zp_put(g_pools[it.pool], it.buf);
    } else if (how < 6) {
        void *batch[3] = {NULL, it.buf, NULL};
        zp_put_batch(g_pools[it.pool], batch, 3);
    } else {
        zp_cache_put(w->h[it.pool], it.buf);
        if (how == 7)
            zp_cache_flush(w->h[it.pool]);
    }
}

/* A get of the worker's own: plain, or timed (queued behind requests). */
static void own_get(worker *w)
{
    item it;
    it.pool = (int)(zpt_rand(&w->rng) % 2);
    it.size = random_size(&w->rng);
    it.tag = ((uint64_t)w->id << 56) | zpt_rand(&w->rng) >> 8;
    errno = 0;
    if (zpt_rand(&w->rng) % 4 == 0) {
        it.buf = zp_get_timed(g_pools[it.pool], it.size, 2);
        if (it.buf != NULL)
            atomic_fetch_add(&g_timed_gets, 1);
        else if (errno == ETIMEDOUT || errno == ENOBUFS)
            atomic_fetch_add(&g_timed_out, 1);
    } else {
        it.buf = zp_get(g_pools[it.pool], it.size);
    }
    if (it.buf == NULL) {
        if (errno != ENOBUFS && errno != ETIMEDOUT) {
            atomic_fetch_add(&g_bad_errno, 1);
            atomic_store(&g_last_errno, errno);
        }
        return;
    }
    atomic_fetch_add(&g_own_gets, 1);
    owned(it.buf);
    tag(&it);
    w->held[w->n++] = it;
}

static void *worker_main(void *arg)
{
    worker *w = (worker *)arg;
    int p;
    for (p = 0; p < 2; p++)
        if (zp_cache_create(g_pools[p], &w->h[p]) != 0)
            abort();
    while (!atomic_load(&g_stop) || w->n > 0) {
        int stop = atomic_load(&g_stop);
        item it;
        uint64_t r = zpt_rand(&w->rng) % 16;
        if (!stop && w->n < HOLD && take(&it)) {
            w->held[w->n++] = it;
        } else if (!stop && w->n < HOLD && r < 2) {
            own_get(w);
        } else if (w->n > 0) {
            release_one(w);
        } else {
            /* idle: give back what this thread caches, then let others run */
            for (p = 0; p < 2; p++) {
                zp_cache_flush(w->h[p]);
                (void)zp_trim(g_pools[p], r < 8 ? 0 : SIZE_MAX);
            }
            sched_yield();
        }
        if (w->n > 0 && r >= 12) /* hold buffers a random while */
            release_one(w);
    }
    for (p = 0; p < 2; p++)
        zp_cache_destroy(w->h[p]);
    return NULL;
}

/* ------------------------------------------------------------ the loop */

enum { IDLE, PENDING };

typedef struct slot {
    zp_request req;
    int state;
    uint64_t id;
    int pool;
    size_t size;
} slot;

static slot g_slots[SLOTS];
static unsigned char *g_ended;  /* per request id: how many times it ended */
static long g_ended_total, g_immediate, g_callbacks, g_cancelled;
static long g_bad_callbacks, g_bad_thread, g_bad_cancel, g_bad_async_errno, g_cb_errors;
static int g_last_async_errno;

static void *encode(uint64_t id, int s)
{
    return (void *)(uintptr_t)((id << 8) | (uint64_t)s);
}

static void end_request(uint64_t id)
{
    g_ended[id]++;
    g_ended_total++;
}

static void granted(void *buf, int err, void *arg)
{
    uint64_t v = (uint64_t)(uintptr_t)arg, id = v >> 8;
    slot *s = &g_slots[v & 0xff];
    if (!pthread_equal(pthread_self(), g_loop_thread) || !t_in_dispatch)
        g_bad_thread++;
    if (s->state != PENDING || s->id != id) {
        g_bad_callbacks++; /* cancelled, or already ended */
        if (buf != NULL)
            zp_put(g_pools[s->pool], buf);
        return;
    }
    s->state = IDLE;
    end_request(id);
    g_callbacks++;
    if (buf == NULL) {
        g_cb_errors++;
        g_last_async_errno = err;
        return;
    }
    hand_off((item){.buf = buf, .size = s->size, .pool = s->pool, .tag = id});
}

static void print_state(const char *why, zp_loop *loop)
{
    zp_budget_stats bs;
    int i, pending = 0;
    for (i = 0; i < SLOTS; i++)
        pending += g_slots[i].state == PENDING;
    zpt_budget_stats(g_budget, &bs);
    print_message("%s: ended %ld of %ld (at once %ld, callbacks %ld, cancelled %ld), "
                  "pending %d, budget %.2f of %.2f MiB, waiters %llu, fd %s\n",
                  why, g_ended_total, g_requests, g_immediate, g_callbacks, g_cancelled,
                  pending, zpt_mib(bs.bytes_reserved), zpt_mib(bs.max_bytes),
                  (unsigned long long)bs.waiters,
                  zpt_fd_readable(zp_loop_fd(loop), 0) ? "readable" : "quiet");
}

static void run_loop(zp_loop *loop)
{
    uint64_t rng = g_seed;
    uint64_t next_id = 0, last_progress = zpt_now_ns();
    long last_ended = 0;
    int fd = zp_loop_fd(loop);
    while (g_ended_total < g_requests) {
        int i, n;
        /* fill free slots */
        for (i = 0; i < SLOTS && next_id < (uint64_t)g_requests; i++) {
            slot *s = &g_slots[i];
            void *buf;
            if (s->state != IDLE)
                continue;
            s->id = next_id++;
            s->pool = (int)(zpt_rand(&rng) % 2);
            s->size = random_size(&rng);
            errno = 0;
            buf = zp_get_async(g_pools[s->pool], s->size, loop, &s->req, granted,
                               encode(s->id, i));
            if (buf != NULL) {
                g_immediate++;
                end_request(s->id);
                hand_off((item){.buf = buf, .size = s->size, .pool = s->pool, .tag = s->id});
            } else if (errno == EINPROGRESS) {
                s->state = PENDING;
            } else {
                g_bad_async_errno++;
                g_last_async_errno = errno;
                end_request(s->id);
            }
        }
        /* wait a little; cancel at random, most often just as the
         * descriptor turned readable (a grant may be racing) */
        n = zpt_fd_readable(fd, 1);
        for (i = 0; i < (n == 1 ? 3 : 1); i++) {
            slot *s = &g_slots[zpt_rand(&rng) % SLOTS];
            if (s->state == PENDING && zpt_rand(&rng) % 8 == 0) {
                int rc = zp_cancel(&s->req);
                if (rc == 0) {
                    s->state = IDLE;
                    g_cancelled++;
                    end_request(s->id);
                } else {
                    g_bad_cancel++;
                }
            }
        }
        t_in_dispatch = 1;
        if (zp_loop_dispatch(loop) < 0)
            g_bad_callbacks++;
        t_in_dispatch = 0;

        if (g_ended_total != last_ended) {
            last_ended = g_ended_total;
            last_progress = zpt_now_ns();
        } else if (zpt_ms_since(last_progress) > STALL_MS) {
            print_state("STALL", loop);
            fail_msg("no request ended for %d ms", STALL_MS);
        }
    }
}

static void test_cancel_vs_grant(void **state)
{
    zp_loop *loop = zpt_loop_new();
    worker w[MAX_THREADS];
    zp_budget_stats bs;
    zp_stats s[2];
    uint64_t t0 = zpt_now_ns();
    long i, not_once = 0;
    int t;
    (void)state;
    g_loop_thread = pthread_self();
    g_ended = calloc((size_t)g_requests, 1);
    assert_non_null(g_ended);
    g_budget = zpt_budget_new(BUDGET);
    g_pv = zpt_provider_new();
    g_pv->bound = BUDGET;
    zpt_provider_arena(g_pv, SLAB, BUDGET / SLAB);
    /* pool 0 caches per thread (bounded), pool 1 caches nothing */
    g_pools[0] = ZPT_POOL(.name = "cached", .budget = g_budget, .pv = g_pv,
                          .cache_depth = 4, .cache_bytes = ZPT_MiB);
    g_pools[1] = ZPT_POOL(.name = "direct", .budget = g_budget, .pv = g_pv,
                          .cache_depth = ZPT_ZERO);
    for (t = 0; t < g_threads; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].id = t + 1;
        w[t].rng = g_seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(t + 1));
        assert_int_equal(pthread_create(&w[t].thread, NULL, worker_main, &w[t]), 0);
    }

    run_loop(loop);
    atomic_store(&g_stop, 1);
    for (t = 0; t < g_threads; t++)
        assert_int_equal(pthread_join(w[t].thread, NULL), 0);
    /* what the loop handed off after the workers stopped taking */
    {
        item it;
        while (take(&it)) {
            if (!tag_ok(&it))
                atomic_fetch_add(&g_bad_tags, 1);
            disowned(it.buf);
            zp_put(g_pools[it.pool], it.buf);
        }
    }

    print_state("done", loop);
    print_message("%ld requests in %.2f s with %d threads: %ld at once, %ld callbacks, "
                  "%ld cancelled; workers: %ld own gets (%ld timed), %ld timed out\n",
                  g_requests, zpt_ms_since(t0) / 1000, g_threads, g_immediate, g_callbacks,
                  g_cancelled, atomic_load(&g_own_gets), atomic_load(&g_timed_gets),
                  atomic_load(&g_timed_out));
    for (i = 0; i < g_requests; i++)
        not_once += g_ended[i] != 1;
    assert_int_equal(not_once, 0);
    assert_int_equal(g_immediate + g_callbacks + g_cancelled, g_requests);
    assert_int_equal(g_bad_callbacks, 0);
    assert_int_equal(g_bad_thread, 0);
    assert_int_equal(g_bad_cancel, 0);
    if (g_bad_async_errno || g_cb_errors)
        print_message("unexpected errno %d\n", g_last_async_errno);
    assert_int_equal(g_bad_async_errno, 0);
    assert_int_equal(g_cb_errors, 0);
    if (atomic_load(&g_bad_errno))
        print_message("workers: unexpected errno %d\n", atomic_load(&g_last_errno));
    assert_int_equal(atomic_load(&g_bad_errno), 0);
    assert_int_equal(atomic_load(&g_bad_tags), 0);
    assert_int_equal(atomic_load(&g_double_grants), 0);
    assert_int_equal(atomic_load(&g_unknown_puts), 0);
    assert_int_equal(atomic_load(&g_set_full), 0);
    assert_int_equal(atomic_load(&g_ring_overflow), 0);
    assert_int_equal(g_set_n, 0);
    assert_true(g_cancelled > 0);
    assert_true(g_callbacks > 0);

    assert_int_equal(zpt_budget_stats(g_budget, &bs), 0);
    assert_int_equal(bs.waiters, 0);
    assert_true(bs.peak_reserved <= BUDGET);
    assert_int_equal(atomic_load(&g_pv->over), 0);
    assert_true(atomic_load(&g_pv->peak) <= BUDGET);
    for (t = 0; t < 2; t++) {
        s[t] = zpt_read(g_pools[t]);
        assert_int_equal(s[t].bytes_outstanding, 0);
        zpt_assert_stats(&s[t]);
    }
    zp_loop_destroy(loop);
    zp_pool_destroy(g_pools[0]);
    zp_pool_destroy(g_pools[1]);
    assert_int_equal(atomic_load(&g_pv->bytes_live), 0);
    assert_int_equal(atomic_load(&g_pv->bad_unmaps), 0);
    zpt_provider_free(g_pv);
    zp_budget_destroy(g_budget);
    free(g_ended);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cancel_vs_grant)};
    if (argc > 1)
        g_requests = atol(argv[1]);
    else if (zpt_under_valgrind())
        g_requests = 5000; /* memcheck runs threads one at a time, ~50x slower */
    if (argc > 2)
        g_threads = atoi(argv[2]);
    if (argc > 3)
        g_seed = strtoull(argv[3], NULL, 0);
    if (g_requests < 1 || g_requests > 100000000 || g_threads < 1 ||
        g_threads > MAX_THREADS) {
        fprintf(stderr, "usage: %s [requests 1..1e8] [threads 1..%d] [seed]\n", argv[0],
                MAX_THREADS);
        return ZPT_EXIT_FAIL;
    }
    return ZPT_RUN(tests);
}
