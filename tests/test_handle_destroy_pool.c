/* Tests destroying a pool whose cache handles are still alive: the handles are reported on stderr, their buffers reclaimed, every mapped byte unmapped. */
#include "zp_test.h"

/* 1 if the report mentions handles. This program's own name (which the
 * debug 2 leak report prints beside each call site) is blanked first: it
 * contains the word too. */
static int mentions_handle(char *out)
{
    const char *self = program_invocation_short_name;
    size_t n = strlen(self);
    char *at;
    while (n > 0 && (at = strstr(out, self)) != NULL)
        memset(at, '_', n);
    return zpt_contains_nocase(out, "handle");
}

static zp_pool *make_pool(zpt_provider *pv, int debug)
{
    return ZPT_POOL(.max_class = 4 * ZPT_MiB, .debug = debug, .pv = pv);
}

/* Fills handle c with cached buffers of several classes (got and put
 * through it), and leaves `held` more outstanding. */
static void fill_handle(zp_cache *c, int held)
{
    void *bufs[30];
    int i;
    for (i = 0; i < 30; i++) {
        bufs[i] = zp_cache_get(c, (size_t)4096 << (i % 8));
        assert_non_null(bufs[i]);
        zpt_fill(bufs[i], (size_t)4096 << (i % 8), (uint64_t)i);
    }
    for (i = held; i < 30; i++)
        zp_cache_put(c, bufs[i]);
}

static void run_destroy_with_live_handles(int debug, int held)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = make_pool(pv, debug);
    zp_cache *full = NULL, *empty = NULL;
    zpt_capture cap;
    zp_stats s;
    char *out;
    assert_int_equal(zp_cache_create(pool, &full), 0);
    assert_int_equal(zp_cache_create(pool, &empty), 0);
    fill_handle(full, held);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_true(s.bytes_cached > 0);
    assert_true(atomic_load(&pv->bytes_live) > 0);

    assert_int_equal(zpt_capture_begin(&cap), 0);
    zp_pool_destroy(pool); /* the handles are gone with it: not touched again */
    out = zpt_capture_end(&cap);
    assert_non_null(out);
    print_message("# stderr of zp_pool_destroy (debug %d, %d held):\n%s",
                  debug, held, out);
    if (!mentions_handle(out))
        fail_msg("zp_pool_destroy with two live cache handles did not "
                 "mention them on stderr; it printed:\n%s", out);
    free(out);
    if (atomic_load(&pv->bytes_live) != 0 ||
        atomic_load(&pv->maps) != atomic_load(&pv->unmaps))
        fail_msg("after zp_pool_destroy %zu bytes are still mapped (%zu maps, "
                 "%zu unmaps): the handles' buffers were not reclaimed",
                 atomic_load(&pv->bytes_live), atomic_load(&pv->maps),
                 atomic_load(&pv->unmaps));
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    zpt_provider_free(pv);
}

static void test_live_handles_reported_and_reclaimed(void **state)
{
    (void)state;
    run_destroy_with_live_handles(0, 0);
}

/* the handle also has buffers out (outstanding) */
static void test_live_handles_with_buffers_out(void **state)
{
    (void)state;
    run_destroy_with_live_handles(0, 5);
}

static void test_live_handles_debug2(void **state)
{
    (void)state;
    run_destroy_with_live_handles(2, 3);
}

/* A live handle whose owner is another (still running) thread: destroy
 * reclaims it all the same; the owner just stops using it. */
typedef struct owner {
    zp_pool *pool;
    zp_cache *cache;
    zpt_mailbox ready, go;
} owner;

static void *owner_main(void *arg)
{
    owner *o = arg;
    void *bufs[16];
    int i;
    if (zp_cache_create(o->pool, &o->cache) == 0) {
        for (i = 0; i < 16; i++)
            bufs[i] = zp_cache_get(o->cache, 65536);
        for (i = 0; i < 16; i++)
            zp_cache_put(o->cache, bufs[i]);
    }
    zpt_mail_send(&o->ready, o);
    (void)zpt_mail_recv(&o->go); /* parked until the pool is gone */
    return NULL;
}

static void test_live_handle_of_other_thread(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    static owner o;
    pthread_t t;
    zpt_capture cap;
    char *out;
    (void)state;
    memset(&o, 0, sizeof(o));
    o.pool = make_pool(pv, 0);
    zpt_mail_init(&o.ready);
    zpt_mail_init(&o.go);
    zpt_threads_start(&t, 1, owner_main, &o, 0);
    (void)zpt_mail_recv(&o.ready);
    assert_non_null(o.cache);
    assert_int_equal(zpt_capture_begin(&cap), 0);
    zp_pool_destroy(o.pool);
    out = zpt_capture_end(&cap);
    assert_non_null(out);
    if (!mentions_handle(out))
        fail_msg("destroy with another thread's live handle did not mention "
                 "it:\n%s", out);
    free(out);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_mail_send(&o.go, NULL);
    zpt_threads_join(&t, 1);
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    zpt_mail_fini(&o.ready);
    zpt_mail_fini(&o.go);
    zpt_provider_free(pv);
}

/* Handles destroyed before their pool: nothing to report. */
static void test_clean_destroy_is_silent(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = make_pool(pv, 0);
    zp_cache *c = NULL;
    zpt_capture cap;
    char *out;
    (void)state;
    assert_int_equal(zp_cache_create(pool, &c), 0);
    fill_handle(c, 0);
    zp_cache_destroy(c);
    assert_int_equal(zpt_capture_begin(&cap), 0);
    zp_pool_destroy(pool);
    out = zpt_capture_end(&cap);
    assert_non_null(out);
    if (out[0] != 0)
        fail_msg("destroy after every handle was destroyed printed:\n%s", out);
    free(out);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_handles_reported_and_reclaimed),
        cmocka_unit_test(test_live_handles_with_buffers_out),
        cmocka_unit_test(test_live_handles_debug2),
        cmocka_unit_test(test_live_handle_of_other_thread),
        cmocka_unit_test(test_clean_destroy_is_silent),
    };
    return ZPT_RUN(tests);
}
