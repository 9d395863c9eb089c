/* Object pools under threads: objects handed between threads through every door while others trim, retention and decay release slabs; counts exact, state intact. */
/*
 * Each object carries `resets` (bumped by reset) and `tag` (bumped by
 * whoever puts it, just before the put). Whoever gets an object checks it
 * is constructed and that resets == tag: the reset of every put ran before
 * the object came out again, on whatever thread. Payload bytes written by
 * the holder are checked before it lets the object go, so an object
 * handed to two holders at once, or finalised while out, shows. Under
 * TSan the same checks prove the hand-over orders the callbacks' writes
 * with the next holder's reads.
 */
#include "zp_test.h"

typedef struct obj {
    unsigned char stamp[ZPT_OBJ_STAMP];
    uint64_t resets;
    uint64_t tag;
    uint64_t holder;   /* thread id + 1 of its holder while out, 0 idle */
    unsigned char payload[64];
} obj;

#define SIZE 200
enum { THREADS = 4, EXCHANGE = 1024, BURST = 2000 };

static int hook_init(void *p, zpt_objtype *ot)
{
    obj *o = p;
    (void)ot;
    o->resets = 0;
    o->tag = 0;
    o->holder = 0;
    return 0;
}

static void hook_reset(void *p, zpt_objtype *ot)
{
    obj *o = p;
    (void)ot;
    o->resets++;
    o->holder = 0;
}

typedef struct shared {
    zp_pool *pool;
    zpt_objtype *ot;
    pthread_mutex_t lock;
    void *items[EXCHANGE];
    size_t n;
    unsigned long rounds;
    int trims;                 /* threads may trim */
    atomic_ulong gets, puts;
    atomic_int bad;
    char why[160];
    atomic_int why_claimed;
} shared;

static void bad(shared *s, const char *what, const void *p)
{
    atomic_fetch_add(&s->bad, 1);
    if (atomic_exchange(&s->why_claimed, 1) == 0)
        snprintf(s->why, sizeof s->why, "%s (object %p)", what, p);
}

typedef struct worker_arg {
    shared *s;
    int id;
    uint64_t seed;
} worker_arg;

static void took(shared *s, worker_arg *w, obj *o)
{
    if (o == NULL) {
        bad(s, "a get failed", NULL);
        return;
    }
    if (!zpt_obj_constructed(s->ot, o))
        bad(s, "an object handed out unconstructed", o);
    if (o->resets != o->tag)
        bad(s, "an object came out without the reset of its last put", o);
    if (o->holder != 0)
        bad(s, "an object handed out while someone holds it", o);
    o->holder = (uint64_t)w->id + 1;
    memset(o->payload, w->id + 1, sizeof o->payload);
    atomic_fetch_add(&s->gets, 1);
}

/* The holder lets o go (to the exchange or back to the pool). */
static void *release(shared *s, obj *o)
{
    if (!zpt_obj_constructed(s->ot, o))
        bad(s, "an object lost its constructed state while out", o);
    if (o->holder == 0 || !zpt_all_bytes(o->payload, sizeof o->payload,
                                         (unsigned char)o->holder))
        bad(s, "an object's payload changed while out", o);
    return o;
}

/* About to put o. */
static void *putting(shared *s, obj *o)
{
    o->tag++;
    atomic_fetch_add(&s->puts, 1);
    return o;
}

static void *worker(void *arg)
{
    worker_arg *w = arg;
    shared *s = w->s;
    zp_cache *h = NULL;
    void *held[64], *got[32], **burst = malloc(BURST * sizeof *burst);
    size_t nheld = 0, k;
    unsigned long r;
    if (burst == NULL || zp_cache_create(s->pool, &h) != 0) {
        bad(s, "out of memory", NULL);
        free(burst);
        return NULL;
    }
    for (r = 0; r < s->rounds; r++) {
        uint64_t x = zpt_rand(&w->seed);
        size_t n = 1 + (size_t)(x >> 16) % 16;
        switch (x % 10) {
        case 0: /* single gets */
        case 1:
            for (k = 0; k < n && nheld < 64; k++) {
                obj *o = zp_get(s->pool, 1 + (size_t)(x >> 24) % SIZE);
                took(s, w, o);
                if (o)
                    held[nheld++] = o;
            }
            break;
        case 2: /* a batch */
            if (nheld + n <= 64) {
                if (zp_get_batch(s->pool, SIZE, got, n) != 0) {
                    bad(s, "a batch get failed", NULL);
                    break;
                }
                for (k = 0; k < n; k++) {
                    took(s, w, got[k]);
                    held[nheld++] = got[k];
                }
            }
            break;
        case 3: /* the handle */
            for (k = 0; k < n && nheld < 64; k++) {
                obj *o = zp_cache_get(h, SIZE);
                took(s, w, o);
                if (o)
                    held[nheld++] = o;
            }
            break;
        case 4: /* hand some to other threads */
            pthread_mutex_lock(&s->lock);
            for (k = 0; k < n && nheld > 0 && s->n < EXCHANGE; k++)
                s->items[s->n++] = release(s, held[--nheld]);
            pthread_mutex_unlock(&s->lock);
            break;
        case 5: /* take some from others: they are ours to hold now */
            pthread_mutex_lock(&s->lock);
            for (k = 0; k < n && s->n > 0 && nheld < 64; k++) {
                obj *o = s->items[--s->n];
                o->holder = (uint64_t)w->id + 1;
                memset(o->payload, w->id + 1, sizeof o->payload);
                held[nheld++] = o;
            }
            pthread_mutex_unlock(&s->lock);
            break;
        case 6: /* single puts */
            for (k = 0; k < n && nheld > 0; k++)
                zp_put(s->pool, putting(s, release(s, held[--nheld])));
            break;
        case 7: /* a batch put, by the thread or the handle */
            n = n < nheld ? n : nheld;
            for (k = 0; k < n; k++)
                got[k] = putting(s, release(s, held[--nheld]));
            if (x & 0x100)
                zp_put_batch(s->pool, got, n);
            else
                zp_cache_put_batch(h, got, n);
            break;
        case 8: /* handle puts */
            for (k = 0; k < n && nheld > 0; k++)
                zp_cache_put(h, putting(s, release(s, held[--nheld])));
            break;
        case 9: /* now and then: a burst, flush the handle, or trim */
            if ((x >> 8) % 64 == 0) { /* more slabs, idle again at once */
                for (k = 0; k < BURST; k++) {
                    obj *o = zp_get(s->pool, SIZE);
                    took(s, w, o);
                    burst[k] = o;
                }
                for (k = 0; k < BURST; k++)
                    if (burst[k])
                        zp_put(s->pool, putting(s, release(s, burst[k])));
            } else if ((x >> 8) % 8 == 0)
                zp_cache_flush(h);
            else if (s->trims && (x >> 8) % 8 == 1)
                zp_trim(s->pool, (x >> 12) % 2 ? 0 : 256 * ZPT_KiB);
            break;
        }
    }
    while (nheld > 0)
        zp_put(s->pool, putting(s, release(s, held[--nheld])));
    zp_cache_destroy(h);
    free(burst);
    return NULL;
}

static void run(const char *what, size_t max_cached, unsigned decay_ms, unsigned flags,
                int trims, size_t depth)
{
    static shared s;
    static worker_arg args[THREADS];
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = zpt_objtype_new(SIZE, 8, ZPT_OBJ_ALL);
    pthread_t t[THREADS];
    zp_stats st;
    uint64_t start = zpt_now_ns();
    int i;
    ot->on_init = hook_init;
    ot->on_reset = hook_reset;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.lock, NULL);
    s.ot = ot;
    s.pool = ZPT_POOL(.type = &ot->type, .pv = pv, .max_cached_bytes = max_cached,
                      .decay_ms = decay_ms, .flags = flags, .cache_depth = depth);
    s.rounds = zpt_scaled(20000);
#if defined(ZPT_SANITIZED)
    s.rounds /= 4;
#endif
    s.trims = trims;
    for (i = 0; i < THREADS; i++) {
        args[i].s = &s;
        args[i].id = i;
        args[i].seed = 1000 + (uint64_t)i;
    }
    zpt_threads_start(t, THREADS, worker, args, sizeof args[0]);
    zpt_threads_join(t, THREADS);
    /* what is left in the exchange goes back from here */
    while (s.n > 0)
        zp_put(s.pool, putting(&s, s.items[--s.n]));
    if (atomic_load(&s.bad))
        fail_msg("%s: %d broken hand-overs; the first: %s", what, atomic_load(&s.bad), s.why);
    zpt_assert_objtype_clean(ot);
    st = zpt_read(s.pool);
    /* the decay thread may unmap at any moment: no snapshot of the provider */
    zpt_assert_obj_stats(&st, &ot->type,
                         (flags & ZP_DECAY_THREAD) ? SIZE_MAX : atomic_load(&pv->bytes_live));
    if (st.gets != atomic_load(&s.gets) || st.puts != atomic_load(&s.puts))
        fail_msg("%s: stats count %llu gets and %llu puts, the threads made %lu and %lu", what,
                 (unsigned long long)st.gets, (unsigned long long)st.puts,
                 atomic_load(&s.gets), atomic_load(&s.puts));
    assert_int_equal(st.bytes_outstanding, 0);
    if (atomic_load(&ot->resets) != atomic_load(&s.puts))
        fail_msg("%s: %lu puts, %lu resets", what, atomic_load(&s.puts),
                 atomic_load(&ot->resets));
    if (!(flags & ZP_DECAY_THREAD) &&
        zpt_obj_constructed_in(pv, ot) != atomic_load(&ot->inits) - atomic_load(&ot->finis))
        fail_msg("%s: %zu objects constructed in the slabs, inits - finis is %lu", what,
                 zpt_obj_constructed_in(pv, ot),
                 atomic_load(&ot->inits) - atomic_load(&ot->finis));
    zp_pool_destroy(s.pool);
    if (atomic_load(&ot->finis) != atomic_load(&ot->inits))
        fail_msg("%s: after destroy %lu inits, %lu finis", what, atomic_load(&ot->inits),
                 atomic_load(&ot->finis));
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    print_message("# %s: %lu gets, %lu puts, %lu inits, %lu finis (%.0f ms)\n", what,
                  atomic_load(&s.gets), atomic_load(&s.puts), atomic_load(&ot->inits),
                  atomic_load(&ot->finis), zpt_ms_since(start));
    pthread_mutex_destroy(&s.lock);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

static void test_exchange(void **state)
{
    (void)state;
    run("caches", 0, 0, 0, 0, 0);
}

static void test_exchange_with_trims(void **state)
{
    (void)state;
    run("caches and concurrent trims", 0, 0, 0, 1, 0);
}

static void test_exchange_retention(void **state)
{
    (void)state;
    run("retention cap 0", ZPT_ZERO, 0, 0, 1, 0);
}

static void test_exchange_decay_thread(void **state)
{
    (void)state;
    run("decay thread", 0, 1, ZP_DECAY_THREAD, 0, 0);
}

static void test_exchange_no_cache(void **state)
{
    (void)state;
    run("no caches", 0, 0, 0, 1, ZPT_ZERO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exchange),
        cmocka_unit_test(test_exchange_with_trims),
        cmocka_unit_test(test_exchange_retention),
        cmocka_unit_test(test_exchange_decay_thread),
        cmocka_unit_test(test_exchange_no_cache),
    };
    return ZPT_RUN(tests);
}
