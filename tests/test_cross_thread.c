/* Tests buffers got on one thread and put on another, at volume. */
#include "zp_test.h"

#if defined(ZPT_SANITIZED)
#define TOTAL 50000
#else
#define TOTAL 200000
#endif
#define QCAP 256
#define STAMP 256 /* bytes of pattern written at each end of a buffer */

/* A bounded FIFO guarded by a mutex; items move in order. */
typedef struct queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    void *items[QCAP];
    size_t head, count;
} queue;

typedef struct shared {
    zp_pool *pool;
    queue q;
    atomic_ulong get_failures;
    atomic_ulong bad_capacity;
    atomic_ulong bad_sequence;
    atomic_ulong bad_pattern;
    atomic_ulong consumed;
} shared;

/* Header at the start of every buffer. */
typedef struct header {
    uint64_t seq;
    uint64_t size;
} header;

static const size_t g_sizes[] = {1,     100,   4095,  4096,  4097,
                                 16384, 30000, 65536, 100000, 262144};
#define NSIZES (sizeof(g_sizes) / sizeof(g_sizes[0]))

static void q_push(queue *q, void *item)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == QCAP)
        pthread_cond_wait(&q->not_full, &q->lock);
    q->items[(q->head + q->count) % QCAP] = item;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

static void *q_pop(queue *q)
{
    void *item;
    pthread_mutex_lock(&q->lock);
    while (q->count == 0)
        pthread_cond_wait(&q->not_empty, &q->lock);
    item = q->items[q->head];
    q->head = (q->head + 1) % QCAP;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->lock);
    return item;
}

/* Stamps the first and last STAMP bytes of the payload after the header. */
static void stamp(unsigned char *b, size_t size, uint64_t seq)
{
    header h = {seq, size};
    size_t room = size > sizeof(h) ? size - sizeof(h) : 0;
    size_t head = zpt_min_sz(room, STAMP);
    if (size < sizeof(h)) {
        /* tiny request: the capacity (>= min_class) still holds a header */
        memcpy(b, &h, sizeof(h));
        return;
    }
    memcpy(b, &h, sizeof(h));
    zpt_fill(b + sizeof(h), head, seq);
    if (room > STAMP)
        zpt_fill(b + size - zpt_min_sz(room - STAMP, STAMP),
                 zpt_min_sz(room - STAMP, STAMP), ~seq);
}

static int stamp_ok(const unsigned char *b, size_t size, uint64_t seq)
{
    header h;
    size_t room = size > sizeof(h) ? size - sizeof(h) : 0;
    size_t head = zpt_min_sz(room, STAMP);
    memcpy(&h, b, sizeof(h));
    if (h.seq != seq || h.size != size)
        return 0;
    if (size < sizeof(h))
        return 1;
    if (zpt_check(b + sizeof(h), head, seq) != SIZE_MAX)
        return 0;
    if (room > STAMP &&
        zpt_check(b + size - zpt_min_sz(room - STAMP, STAMP),
                  zpt_min_sz(room - STAMP, STAMP), ~seq) != SIZE_MAX)
        return 0;
    return 1;
}

static void *producer(void *arg)
{
    shared *sh = arg;
    uint64_t rng = 12345, seq;
    for (seq = 0; seq < TOTAL; seq++) {
        size_t size = g_sizes[zpt_rand(&rng) % NSIZES];
        unsigned char *b = zp_get(sh->pool, size);
        if (!b) {
            atomic_fetch_add(&sh->get_failures, 1);
            q_push(&sh->q, NULL);
            continue;
        }
        stamp(b, size, seq);
        q_push(&sh->q, b);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    shared *sh = arg;
    uint64_t seq;
    for (seq = 0; seq < TOTAL; seq++) {
        unsigned char *b = q_pop(&sh->q);
        header h;
        if (!b)
            continue;
        memcpy(&h, b, sizeof(h));
        if (h.seq != seq)
            atomic_fetch_add(&sh->bad_sequence, 1);
        else if (!stamp_ok(b, (size_t)h.size, seq))
            atomic_fetch_add(&sh->bad_pattern, 1);
        if (h.seq == seq && zp_capacity(sh->pool, b) < h.size)
            atomic_fetch_add(&sh->bad_capacity, 1);
        zp_put(sh->pool, b);
        atomic_fetch_add(&sh->consumed, 1);
    }
    return NULL;
}

static void run(unsigned cache_depth)
{
    shared *sh = calloc(1, sizeof(*sh));
    zp_stats s;
    pthread_t prod, cons;
    assert_non_null(sh);
    pthread_mutex_init(&sh->q.lock, NULL);
    pthread_cond_init(&sh->q.not_empty, NULL);
    pthread_cond_init(&sh->q.not_full, NULL);
    sh->pool = ZPT_POOL(.cache_depth = ZPT_EXACT(cache_depth));

    assert_int_equal(pthread_create(&cons, NULL, consumer, sh), 0);
    assert_int_equal(pthread_create(&prod, NULL, producer, sh), 0);
    assert_int_equal(pthread_join(prod, NULL), 0);
    assert_int_equal(pthread_join(cons, NULL), 0);

    assert_int_equal(atomic_load(&sh->get_failures), 0);
    assert_int_equal(atomic_load(&sh->bad_sequence), 0);
    assert_int_equal(atomic_load(&sh->bad_pattern), 0);
    assert_int_equal(atomic_load(&sh->bad_capacity), 0);
    assert_int_equal(atomic_load(&sh->consumed), TOTAL);

    assert_int_equal(zpt_stats(sh->pool, &s), 0);
    zpt_stats_print("cross-thread", &s);
    assert_int_equal(s.gets, TOTAL);
    assert_int_equal(s.puts, TOTAL);
    assert_true(zpt_stats_sum_ok(&s));
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.misuse, 0);
    assert_true(s.bytes_reserved >= s.bytes_cached);
    /* buffers were recycled across threads, not leaked into the consumer:
       at most QCAP in flight plus what caches and the depot keep idle */
    assert_true(s.depot_hits > 0);
    assert_true(s.peak_reserved < 256 * ZPT_MiB);

    zp_pool_destroy(sh->pool);
    pthread_cond_destroy(&sh->q.not_empty);
    pthread_cond_destroy(&sh->q.not_full);
    pthread_mutex_destroy(&sh->q.lock);
    free(sh);
}

static void test_cross_thread_cached(void **state)
{
    (void)state;
    run(32);
}

static void test_cross_thread_uncached(void **state)
{
    (void)state;
    run(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_thread_cached),
        cmocka_unit_test(test_cross_thread_uncached),
    };
    return ZPT_RUN(tests);
}
