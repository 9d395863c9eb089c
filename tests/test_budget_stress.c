/* Threads hammer two pools sharing one budget with random sizes: the budget is never exceeded, gets only fail with ENOBUFS, nothing leaks. */
/*
 * usage: test_budget_stress [seconds=2] [threads=4] [seed]
 *
 * Each worker holds up to HOLD buffers of random sizes (1 B .. 3 MiB with
 * max_class 1 MiB, so some are oversize) from either pool, tags each one
 * at both ends, and checks the tags before putting it back. Now and then
 * it uses zp_get_timed with a short timeout, or trims a pool. The main
 * thread reads the budget and both pools' stats all along: reserved and
 * peak never above the max. The test provider charges every region
 * before it is mapped and discharges it after it is unmapped, so the
 * budget also bounds what was really mapped at every instant. At the end
 * everything is put, trimmed and destroyed: nothing outstanding, every
 * region unmapped, the budget back to zero.
 */
#include "zp_test.h"

#define BUDGET (24 * ZPT_MiB)
#define MAX_CLASS ZPT_MiB
#define HOLD 16
#define MAX_THREADS 32

static double g_seconds = 2.0;
static int g_threads = 4;
static uint64_t g_seed = 0x6A09E667F3BCC908ull;

static zp_budget *g_budget;
static zp_pool *g_pools[2];
static atomic_int g_stop;

/* failures seen by workers, asserted by the main thread */
static atomic_long g_gets, g_enobufs, g_timed, g_timeouts, g_trims;
static atomic_long g_bad_errno, g_bad_capacity, g_bad_tag;
static atomic_int g_last_bad_errno;

typedef struct held {
    void *buf;
    size_t size;
    int pool;
    uint64_t tag;
} held;

static size_t random_size(uint64_t *rng)
{
    uint64_t r = zpt_rand(rng) % 100;
    if (r < 50)
        return 1 + zpt_rand(rng) % (64 * ZPT_KiB);
    if (r < 85)
        return 64 * ZPT_KiB + zpt_rand(rng) % (MAX_CLASS - 64 * ZPT_KiB + 1);
    return MAX_CLASS + 1 + zpt_rand(rng) % (2 * MAX_CLASS); /* oversize */
}

static void tag(held *h)
{
    memcpy(h->buf, &h->tag, sizeof(h->tag));
    if (h->size >= 2 * sizeof(h->tag))
        memcpy((char *)h->buf + h->size - sizeof(h->tag), &h->tag, sizeof(h->tag));
}

static int tag_ok(const held *h)
{
    uint64_t a, z;
    memcpy(&a, h->buf, sizeof(a));
    if (a != h->tag)
        return 0;
    if (h->size >= 2 * sizeof(h->tag)) {
        memcpy(&z, (const char *)h->buf + h->size - sizeof(z), sizeof(z));
        if (z != h->tag)
            return 0;
    }
    return 1;
}

static void put_held(held *h)
{
    if (!tag_ok(h))
        atomic_fetch_add(&g_bad_tag, 1);
    zp_put(g_pools[h->pool], h->buf);
    h->buf = NULL;
}

static void *worker(void *arg)
{
    uint64_t rng = g_seed ^ ((uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull);
    held hold[HOLD];
    int n = 0, i;
    uint64_t serial = 0;
    memset(hold, 0, sizeof(hold));

    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        uint64_t r = zpt_rand(&rng) % 1000;
        if (r < 2) {
            zp_trim(g_pools[zpt_rand(&rng) & 1], zpt_rand(&rng) % (4 * ZPT_MiB));
            atomic_fetch_add(&g_trims, 1);
        } else if (n < HOLD && (r < 550 || n == 0)) {
            held *h = &hold[n];
            int timed = zpt_rand(&rng) % 10 == 0, err;
            h->pool = (int)(zpt_rand(&rng) & 1);
            h->size = random_size(&rng);
            errno = 0;
            h->buf = timed ? zp_get_timed(g_pools[h->pool], h->size,
                                          (int)(zpt_rand(&rng) % 4))
                           : zp_get(g_pools[h->pool], h->size);
            err = errno;
            atomic_fetch_add(timed ? &g_timed : &g_gets, 1);
            if (h->buf == NULL) {
                if (err == ENOBUFS) {
                    atomic_fetch_add(&g_enobufs, 1);
                } else if (timed && err == ETIMEDOUT) {
                    atomic_fetch_add(&g_timeouts, 1);
                } else {
                    atomic_fetch_add(&g_bad_errno, 1);
                    atomic_store(&g_last_bad_errno, err);
                }
                /* full: give something back before trying again */
                if (n > 0) {
                    i = (int)(zpt_rand(&rng) % (uint64_t)n);
                    put_held(&hold[i]);
                    hold[i] = hold[--n];
                }
                continue;
            }
            if (zp_capacity(g_pools[h->pool], h->buf) < h->size)
                atomic_fetch_add(&g_bad_capacity, 1);
            h->tag = ((uint64_t)(uintptr_t)arg << 48) ^ ++serial;
            tag(h);
            n++;
        } else if (n > 0) {
            i = (int)(zpt_rand(&rng) % (uint64_t)n);
            put_held(&hold[i]);
            hold[i] = hold[--n];
        }
    }
    while (n > 0)
        put_held(&hold[--n]);
    return NULL;
}

static void check_reads(uint64_t *reads, uint64_t *max_seen)
{
    zp_budget_stats s;
    zp_stats ps;
    int p;
    assert_int_equal(zpt_budget_stats(g_budget, &s), 0);
    if (s.bytes_reserved > BUDGET || s.peak_reserved > BUDGET)
        fail_msg("budget read: reserved %llu peak %llu above max %llu",
                 (unsigned long long)s.bytes_reserved,
                 (unsigned long long)s.peak_reserved, (unsigned long long)BUDGET);
    if (s.bytes_reserved > *max_seen)
        *max_seen = s.bytes_reserved;
    for (p = 0; p < 2; p++) {
        assert_int_equal(zpt_stats(g_pools[p], &ps), 0);
        if (ps.bytes_reserved > BUDGET || ps.peak_reserved > BUDGET)
            fail_msg("pool %d read: reserved %llu peak %llu above max %llu", p,
                     (unsigned long long)ps.bytes_reserved,
                     (unsigned long long)ps.peak_reserved, (unsigned long long)BUDGET);
    }
    (*reads)++;
}

static void test_hammer(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    pthread_t threads[MAX_THREADS];
    zp_budget_stats s;
    zp_stats ps[2];
    uint64_t t0, reads = 0, max_seen = 0;
    int i, p;
    (void)state;

    pv->bound = BUDGET; /* what is mapped, not only reserved, stays within */
    g_budget = zpt_budget_new(BUDGET);
    g_pools[0] = ZPT_POOL(.name = "stress_a", .budget = g_budget, .max_class = MAX_CLASS,
                          .pv = pv);
    g_pools[1] = ZPT_POOL(.name = "stress_b", .budget = g_budget, .max_class = MAX_CLASS,
                          .pv = pv, .cache_depth = 4); /* the second pool caches little */

    atomic_store(&g_stop, 0);
    for (i = 0; i < g_threads; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, worker,
                                        (void *)(uintptr_t)(i + 1)), 0);
    t0 = zpt_now_ns();
    while (zpt_ms_since(t0) < g_seconds * 1000.0) {
        check_reads(&reads, &max_seen);
        zpt_sleep_ms(1);
    }
    atomic_store(&g_stop, 1);
    for (i = 0; i < g_threads; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    check_reads(&reads, &max_seen);

    assert_int_equal(zpt_budget_stats(g_budget, &s), 0);
    print_message("%d threads, %.1f s: %ld gets (%ld ENOBUFS), %ld timed (%ld ETIMEDOUT), "
                  "%ld trims; %llu stats reads, highest reserved seen %.2f MiB, "
                  "peak %.2f MiB of %.0f MiB; mapped at most %.2f MiB; "
                  "failed_gets %llu waited_gets %llu\n",
                  g_threads, g_seconds, atomic_load(&g_gets), atomic_load(&g_enobufs),
                  atomic_load(&g_timed), atomic_load(&g_timeouts), atomic_load(&g_trims),
                  (unsigned long long)reads, zpt_mib(max_seen), zpt_mib(s.peak_reserved),
                  zpt_mib(BUDGET), zpt_mib(atomic_load(&pv->peak)),
                  (unsigned long long)s.failed_gets, (unsigned long long)s.waited_gets);

    if (atomic_load(&g_bad_errno))
        fail_msg("%ld gets failed with errno %d (expected ENOBUFS / ETIMEDOUT)",
                 atomic_load(&g_bad_errno), atomic_load(&g_last_bad_errno));
    assert_int_equal(atomic_load(&g_bad_capacity), 0);
    assert_int_equal(atomic_load(&g_bad_tag), 0);
    assert_true(s.peak_reserved <= BUDGET);
    assert_int_equal(atomic_load(&pv->over), 0);
    assert_true(atomic_load(&pv->peak) <= BUDGET);
    assert_true(atomic_load(&g_enobufs) > 0); /* the budget was really hit */
    /* every failed get is counted once, whether plain or timed */
    assert_int_equal(s.failed_gets, atomic_load(&g_enobufs) + atomic_load(&g_timeouts));

    /* nothing outstanding; every thread's cache came back when it exited */
    for (p = 0; p < 2; p++) {
        assert_int_equal(zpt_stats(g_pools[p], &ps[p]), 0);
        assert_true(zpt_stats_sum_ok(&ps[p]));
        assert_int_equal(ps[p].bytes_outstanding, 0);
        assert_int_equal(ps[p].gets, ps[p].puts);
    }
    assert_int_equal(zpt_budget_stats(g_budget, &s), 0);
    assert_int_equal(s.bytes_reserved, ps[0].bytes_reserved + ps[1].bytes_reserved);
    assert_int_equal(s.waiters, 0);

    /* trimming everything gives every byte back */
    for (p = 0; p < 2; p++)
        zp_trim(g_pools[p], 0);
    for (p = 0; p < 2; p++) {
        assert_int_equal(zpt_stats(g_pools[p], &ps[p]), 0);
        if (ps[p].bytes_reserved != 0)
            print_message("pool %d still reserves %.2f MiB after zp_trim(0) with "
                          "nothing outstanding\n", p, zpt_mib(ps[p].bytes_reserved));
    }
    assert_int_equal(zpt_budget_stats(g_budget, &s), 0);
    assert_int_equal(s.bytes_reserved, ps[0].bytes_reserved + ps[1].bytes_reserved);
    assert_int_equal(ps[0].bytes_reserved, 0);
    assert_int_equal(ps[1].bytes_reserved, 0);

    zp_pool_destroy(g_pools[0]);
    zp_pool_destroy(g_pools[1]);
    assert_int_equal(zpt_budget_stats(g_budget, &s), 0);
    assert_int_equal(s.bytes_reserved, 0);
    zp_budget_destroy(g_budget);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    assert_int_equal(atomic_load(&pv->bad_args), 0);
    assert_int_equal(atomic_load(&pv->charged), 0);
    zpt_provider_free(pv);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hammer),
    };
    if (zpt_stress_args(argc, argv, &g_seconds, &g_threads, &g_seed, 2, MAX_THREADS))
        return 2;
    return ZPT_RUN(tests);
}
