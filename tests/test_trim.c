/* zp_trim: releases idle memory down to keep_bytes, unmaps idle slabs, purges pages, says how much. */
#include "zp_test.h"

#define NBIG 16

/* Gets n buffers of size, every page written. */
static void get_touched(zp_pool *pool, size_t size, void **bufs, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        bufs[i] = zp_get(pool, size);
        assert_non_null(bufs[i]);
        zpt_touch(bufs[i], size, (unsigned char)(i + 1));
    }
}

/* Slabs whose buffers are all idle are unmapped; zp_trim returns their
 * bytes; the calling thread's cache is included. */
static void test_unmaps_idle_slabs(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.min_class = 4096, .pv = pv);
    void *bufs[NBIG];
    int i;
    (void)state;

    get_touched(pool, ZPT_MiB, bufs, NBIG);
    assert_int_equal(zpt_reserved(pool), NBIG * ZPT_MiB);
    for (i = 0; i < NBIG; i++)
        zp_put(pool, bufs[i]); /* all still in this thread's cache */
    assert_int_equal(zpt_reserved(pool), NBIG * ZPT_MiB);

    assert_int_equal(zp_trim(pool, 0), NBIG * ZPT_MiB);
    assert_int_equal(zpt_reserved(pool), 0);
    assert_int_equal(atomic_load(&pv->unmaps), NBIG);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    assert_int_equal(zp_trim(pool, 0), 0); /* nothing left to give */

    /* the pool still works: fresh memory is mapped */
    bufs[0] = zp_get(pool, ZPT_MiB);
    assert_non_null(bufs[0]);
    zpt_touch(bufs[0], ZPT_MiB, 7);
    zp_put(pool, bufs[0]);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    zpt_provider_free(pv);
}

/* keep_bytes of idle memory stay: 16 idle 1 MiB buffers, keep 4 MiB ->
 * 12 MiB released, 4 MiB still mapped; a second trim to 4 MiB gives
 * nothing; a trim to 0 gives the rest. */
static void test_keeps_keep_bytes(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.min_class = 4096, .pv = pv);
    void *bufs[NBIG];
    size_t r;
    int i;
    (void)state;

    get_touched(pool, ZPT_MiB, bufs, NBIG);
    for (i = 0; i < NBIG; i++)
        zp_put(pool, bufs[i]);

    r = zp_trim(pool, 4 * ZPT_MiB);
    print_message("zp_trim(keep 4 MiB) of %d idle 1 MiB buffers released %.1f MiB, "
                  "%.1f MiB still reserved\n",
                  NBIG, zpt_mib(r), zpt_mib(zpt_reserved(pool)));
    assert_int_equal(r, (NBIG - 4) * ZPT_MiB);
    assert_int_equal(zpt_reserved(pool), 4 * ZPT_MiB);
    assert_int_equal(zp_trim(pool, 4 * ZPT_MiB), 0);
    assert_int_equal(zp_trim(pool, 0), 4 * ZPT_MiB);
    assert_int_equal(zpt_reserved(pool), 0);

    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

/* A slab with a buffer still in use is not unmapped, but the pages of its
 * idle buffers (>= a page) are released; buffers in use keep their pages
 * and contents. Once the last buffer comes back the slab goes too. */
#define NSMALL 16
static void test_purges_partially_idle_slabs(void **state)
{
    const size_t size = 64 * ZPT_KiB; /* 4 per 256 KiB slab */
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.min_class = 4096, .pv = pv);
    void *bufs[NSMALL], *kept[NSMALL], *idle[NSMALL];
    unsigned char *seen[NSMALL];
    int i, j, nkept = 0, nidle = 0, nslabs = 0;
    uint64_t reserved;
    size_t r;
    (void)state;

    get_touched(pool, size, bufs, NSMALL);
    reserved = zpt_reserved(pool);
    assert_int_equal(reserved, NSMALL / 4 * 256 * ZPT_KiB);
    /* keep the first buffer of each slab (region), put the others */
    for (i = 0; i < NSMALL; i++) {
        unsigned char *base = NULL;
        size_t rsize;
        int first = 1;
        assert_true(zpt_provider_region(pv, bufs[i], &base, &rsize));
        for (j = 0; j < nslabs; j++)
            if (seen[j] == base)
                first = 0;
        if (first) {
            seen[nslabs++] = base;
            kept[nkept] = bufs[i];
            zpt_fill(kept[nkept], size, 100 + (uint64_t)nkept);
            nkept++;
        } else {
            idle[nidle++] = bufs[i];
        }
    }
    assert_int_equal(nslabs, NSMALL / 4);
    for (i = 0; i < nidle; i++) {
        assert_int_equal(zpt_resident_in(idle[i], size), size);
        zp_put(pool, idle[i]);
    }

    r = zp_trim(pool, 0);
    assert_int_equal(r, (size_t)nidle * size);
    assert_int_equal(zpt_reserved(pool), reserved); /* nothing unmapped */
    assert_int_equal(atomic_load(&pv->unmaps), 0);
    for (i = 0; i < nidle; i++)
        assert_int_equal(zpt_resident_in(idle[i], size), 0);
    for (i = 0; i < nkept; i++) {
        assert_int_equal(zpt_resident_in(kept[i], size), size);
        assert_int_equal(zpt_check(kept[i], size, 100 + (uint64_t)i), SIZE_MAX);
    }
    assert_int_equal(zp_trim(pool, 0), 0); /* already purged */

    /* the purged buffers are usable again */
    for (i = 0; i < nidle; i++) {
        idle[i] = zp_get(pool, size);
        assert_non_null(idle[i]);
        zpt_fill(idle[i], size, 7);
        assert_int_equal(zpt_check(idle[i], size, 7), SIZE_MAX);
    }
    for (i = 0; i < nidle; i++)
        zp_put(pool, idle[i]);
    for (i = 0; i < nkept; i++)
        zp_put(pool, kept[i]);
    r = zp_trim(pool, 0);
    assert_int_equal(r, reserved);
    assert_int_equal(zpt_reserved(pool), 0);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);

    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    zpt_provider_free(pv);
}

/* Buffers smaller than a page share pages with buffers in use: a slab
 * that is not wholly idle gives nothing back. */
static void test_small_buffers_not_purged(void **state)
{
    const size_t size = 1024;
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.min_class = 1024, .pv = pv);
    void *bufs[8];
    int i;
    (void)state;

    for (i = 0; i < 8; i++) {
        bufs[i] = zp_get(pool, size);
        assert_non_null(bufs[i]);
        memset(bufs[i], 0x5A, size);
    }
    assert_int_equal(zpt_reserved(pool), 256 * ZPT_KiB);
    for (i = 1; i < 8; i++)
        zp_put(pool, bufs[i]);
    assert_int_equal(zp_trim(pool, 0), 0);
    assert_int_equal(zpt_reserved(pool), 256 * ZPT_KiB);
    for (i = 0; i < (int)size; i++)
        assert_int_equal(((unsigned char *)bufs[0])[i], 0x5A);
    zp_put(pool, bufs[0]);
    assert_int_equal(zp_trim(pool, 0), 256 * ZPT_KiB);
    assert_int_equal(zpt_reserved(pool), 0);

    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

/* Buffers cached by a thread that has exited are trimmed. */
static void test_exited_thread_buffers(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool;
    pthread_t t;
    void *rv;
    (void)state;
    pool = ZPT_POOL(.min_class = 4096, .pv = pv);
    assert_int_equal(pthread_create(&t, NULL, zpt_get_put_exit, pool), 0);
    assert_int_equal(pthread_join(t, &rv), 0);
    assert_int_equal((intptr_t)rv, 4);
    assert_int_equal(zpt_reserved(pool), 4 * ZPT_MiB);
    assert_int_equal(zp_trim(pool, 0), 4 * ZPT_MiB);
    assert_int_equal(zpt_reserved(pool), 0);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

static void test_null_pool(void **state)
{
    (void)state;
    assert_int_equal(zp_trim(NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unmaps_idle_slabs),
        cmocka_unit_test(test_keeps_keep_bytes),
        cmocka_unit_test(test_purges_partially_idle_slabs),
        cmocka_unit_test(test_small_buffers_not_purged),
        cmocka_unit_test(test_exited_thread_buffers),
        cmocka_unit_test(test_null_pool),
    };
    return ZPT_RUN(tests);
}
