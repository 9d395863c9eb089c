/* Object life cycles: exact init, reset and fini counts through get/put, batches, handles, other threads, trim, decay, the retention cap and destroy. */
/*
 * Every pool here has the harness's counting type (init stamps, reset and
 * fini check the stamp). On top of it the objects carry what a user would
 * look at: `resets`, bumped by the reset hook, must equal `tag`, the puts
 * the user made of that object, whenever it is got (reset ran on every put
 * before the object came back); `user`, set by the user once, must survive
 * every later put and get (no second init). At quiet points, the objects
 * constructed in the pool's slabs (read from their stamps) must be
 * exactly inits - finis, and after destroy, inits == finis + outstanding.
 */
#include "zp_test.h"

typedef struct obj {
    unsigned char stamp[ZPT_OBJ_STAMP]; /* the counting type's */
    uint64_t resets;                    /* bumped by reset */
    uint64_t tag;                       /* puts the user made */
    uint64_t user;                      /* the user's state, or 0 before its first get */
} obj;

#define OBJ_SIZE 200
#define USER_MARK 0x5EED000000000000ull

static int hook_init(void *p, zpt_objtype *ot)
{
    obj *o = p;
    (void)ot;
    o->resets = 0;
    o->tag = 0;
    o->user = 0;
    return 0;
}

static void hook_reset(void *p, zpt_objtype *ot)
{
    (void)ot;
    ((obj *)p)->resets++;
}

/* Objects outstanding at destroy: fini must never see them. */
static void *g_outstanding[64];
static size_t g_noutstanding;
static atomic_int g_fini_of_outstanding;

static void hook_fini(void *p, zpt_objtype *ot)
{
    size_t i;
    (void)ot;
    for (i = 0; i < g_noutstanding; i++)
        if (g_outstanding[i] == p)
            atomic_fetch_add(&g_fini_of_outstanding, 1);
}

static zpt_objtype *new_type(void)
{
    zpt_objtype *ot = zpt_objtype_new(OBJ_SIZE, 8, ZPT_OBJ_ALL);
    ot->on_init = hook_init;
    ot->on_reset = hook_reset;
    ot->on_fini = hook_fini;
    g_noutstanding = 0;
    atomic_store(&g_fini_of_outstanding, 0);
    return ot;
}

static unsigned long inits(zpt_objtype *ot)
{
    return atomic_load(&ot->inits);
}

static unsigned long resets(zpt_objtype *ot)
{
    return atomic_load(&ot->resets);
}

static unsigned long finis(zpt_objtype *ot)
{
    return atomic_load(&ot->finis);
}

/* What the user checks on every object it gets (main thread). */
#define got(ot, p) got_at(__FILE__, __LINE__, (ot), (p))
static obj *got_at(const char *file, int line, zpt_objtype *ot, void *p)
{
    obj *o = p;
    if (o == NULL)
        zpt_fail_at(file, line, "get failed: errno %d", errno);
    if (!zpt_obj_constructed(ot, o))
        zpt_fail_at(file, line, "object %p handed out without init", p);
    if (o->resets != o->tag)
        zpt_fail_at(file, line, "object %p: put %llu times, reset %llu times", p,
                    (unsigned long long)o->tag, (unsigned long long)o->resets);
    if (o->user == 0)
        o->user = USER_MARK ^ (uint64_t)(uintptr_t)o;
    else if (o->user != (USER_MARK ^ (uint64_t)(uintptr_t)o))
        zpt_fail_at(file, line, "object %p: the state the user set is gone (0x%llx)", p,
                    (unsigned long long)o->user);
    return o;
}

/* The user is about to put o. */
static void *putting(void *p)
{
    ((obj *)p)->tag++;
    return p;
}

/* At a quiet point: every constructed object in the slabs is accounted
 * for by inits - finis. */
#define check_quiet(ot, pv) check_quiet_at(__FILE__, __LINE__, (ot), (pv))
static void check_quiet_at(const char *file, int line, zpt_objtype *ot, zpt_provider *pv)
{
    size_t live = zpt_obj_constructed_in(pv, ot);
    if (inits(ot) != finis(ot) + live) {
        zpt_objtype_print("counts", ot);
        zpt_fail_at(file, line, "inits %lu != finis %lu + %zu constructed objects in the slabs",
                    inits(ot), finis(ot), live);
    }
    zpt_assert_objtype_clean_at(file, line, ot);
}

/* After destroy: the identity, and no fini of an outstanding object. */
#define check_destroyed(ot, pv, outstanding)                                     \
    check_destroyed_at(__FILE__, __LINE__, (ot), (pv), (outstanding))
static void check_destroyed_at(const char *file, int line, zpt_objtype *ot, zpt_provider *pv,
                               unsigned long outstanding)
{
    if (inits(ot) != finis(ot) + outstanding) {
        zpt_objtype_print("counts", ot);
        zpt_fail_at(file, line, "after destroy: inits %lu != finis %lu + %lu outstanding",
                    inits(ot), finis(ot), outstanding);
    }
    if (atomic_load(&g_fini_of_outstanding))
        zpt_fail_at(file, line, "fini ran on %d objects outstanding at destroy",
                    atomic_load(&g_fini_of_outstanding));
    if (atomic_load(&pv->bytes_live) != 0)
        zpt_fail_at(file, line, "%zu bytes still mapped after destroy",
                    (size_t)atomic_load(&pv->bytes_live));
    zpt_assert_objtype_clean_at(file, line, ot);
}

/* The usual end of a test: destroys pool, checks as check_destroyed with
 * nothing outstanding, frees ot and pv. */
#define destroy_clean(pool, ot, pv) destroy_clean_at(__FILE__, __LINE__, (pool), (ot), (pv))
static void destroy_clean_at(const char *file, int line, zp_pool *pool, zpt_objtype *ot,
                             zpt_provider *pv)
{
    zp_pool_destroy(pool);
    check_destroyed_at(file, line, ot, pv, 0);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

/* -------------------------------------------------------- get and put */

/* Without a cache every get of a fresh object is one init, every put one
 * reset; objects got again are not initialised again. */
static void test_single_uncached(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .cache_depth = ZPT_ZERO);
    void *o[100];
    zp_stats s;
    int i, round;
    (void)state;
    for (i = 0; i < 100; i++) {
        o[i] = got(ot, zp_get(pool, OBJ_SIZE));
        assert_int_equal(inits(ot), i + 1);
        assert_int_equal(atomic_load(&ot->init_calls), i + 1);
    }
    for (round = 1; round <= 3; round++) {
        for (i = 0; i < 100; i++) {
            zp_put(pool, putting(o[i]));
            assert_int_equal(resets(ot), (round - 1) * 100 + i + 1);
        }
        check_quiet(ot, pv);
        assert_int_equal(finis(ot), 0);
        for (i = 0; i < 100; i++)
            o[i] = got(ot, zp_get(pool, OBJ_SIZE));
        assert_int_equal(inits(ot), 100);
    }
    s = zpt_read(pool);
    zpt_assert_obj_stats(&s, &ot->type, atomic_load(&pv->bytes_live));
    assert_int_equal(s.gets, 400);
    assert_int_equal(s.puts, 300);
    for (i = 0; i < 100; i++)
        zp_put(pool, putting(o[i]));
    assert_int_equal(resets(ot), 400);
    zp_pool_destroy(pool);
    assert_int_equal(finis(ot), 100);
    check_destroyed(ot, pv, 0);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

/* With the thread's cache: refills construct what they take (at most a
 * cache's worth beyond what was got); the second round constructs nothing. */
static void test_single_cached(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv);
    void *o[100];
    obj *one;
    unsigned long first, r0;
    int i;
    (void)state;
    for (i = 0; i < 100; i++)
        o[i] = got(ot, zp_get(pool, OBJ_SIZE));
    first = inits(ot);
    if (first < 100 || first > 100 + 32)
        fail_msg("100 gets with a 32-deep cache ran init %lu times", first);
    for (i = 0; i < 100; i++)
        zp_put(pool, putting(o[i]));
    assert_int_equal(resets(ot), 100);
    for (i = 0; i < 100; i++)
        o[i] = got(ot, zp_get(pool, OBJ_SIZE));
    assert_int_equal(inits(ot), first);
    for (i = 0; i < 100; i++)
        zp_put(pool, putting(o[i]));
    assert_int_equal(resets(ot), 200);

    /* one object round and round: reset every time, init never */
    r0 = resets(ot);
    one = got(ot, zp_get(pool, OBJ_SIZE));
    for (i = 0; i < 1000; i++) {
        zp_put(pool, putting(one));
        one = got(ot, zp_get(pool, OBJ_SIZE));
    }
    assert_int_equal(resets(ot), r0 + 1000);
    assert_int_equal(inits(ot), first);
    zp_put(pool, putting(one));
    destroy_clean(pool, ot, pv);
}

/* ----------------------------------------------------------- batches */

static void batches(size_t depth, size_t n)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .cache_depth = ZPT_EXACT(depth));
    void *b[200];
    unsigned long first;
    size_t i;
    int round;
    assert_true(n <= 200);
    assert_int_equal(zp_get_batch(pool, OBJ_SIZE, b, n), 0);
    for (i = 0; i < n; i++)
        got(ot, b[i]);
    first = inits(ot);
    if (depth == 0 && first != n)
        fail_msg("an uncached batch of %zu ran init %lu times", n, first);
    if (first < n || first > n + depth)
        fail_msg("a batch of %zu with a %zu-deep cache ran init %lu times", n, depth, first);
    for (round = 1; round <= 3; round++) {
        for (i = 0; i < n; i++)
            putting(b[i]);
        zp_put_batch(pool, b, n);
        assert_int_equal(resets(ot), round * n);
        assert_int_equal(zp_get_batch(pool, OBJ_SIZE, b, n), 0);
        for (i = 0; i < n; i++)
            got(ot, b[i]);
        assert_int_equal(inits(ot), first);
    }
    /* singles and batches mix */
    for (i = 0; i < n; i++)
        zp_put(pool, putting(b[i]));
    assert_int_equal(resets(ot), 4 * n);
    check_quiet(ot, pv);
    destroy_clean(pool, ot, pv);
}

static void test_batches(void **state)
{
    (void)state;
    batches(0, 64);
    batches(32, 16);  /* within the cache */
    batches(32, 100); /* larger than the cache: straight from the depot */
}

/* ------------------------------------------------------------ handles */

static void test_handles(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv);
    zp_cache *h = NULL, *left = NULL;
    zpt_capture cap;
    char *err;
    void *o[50];
    unsigned long first, r;
    int i;
    (void)state;
    assert_int_equal(zp_cache_create(pool, &h), 0);
    for (i = 0; i < 50; i++)
        o[i] = got(ot, zp_cache_get(h, OBJ_SIZE));
    first = inits(ot);
    assert_true(first >= 50 && first <= 50 + 32);
    for (i = 0; i < 50; i++)
        zp_cache_put(h, putting(o[i]));
    assert_int_equal(resets(ot), 50);
    assert_int_equal(zp_cache_get_batch(h, OBJ_SIZE, o, 20), 0);
    for (i = 0; i < 20; i++)
        putting(got(ot, o[i]));
    zp_cache_put_batch(h, o, 20);
    assert_int_equal(resets(ot), 70);
    assert_int_equal(inits(ot), first);

    /* a handle's objects go to the depot on flush: the thread gets them
     * without init; objects cross freely between handle and thread */
    zp_cache_flush(h);
    for (i = 0; i < 50; i++)
        o[i] = got(ot, zp_get(pool, OBJ_SIZE));
    assert_int_equal(inits(ot), first);
    r = resets(ot);
    for (i = 0; i < 25; i++)
        zp_cache_put(h, putting(o[i]));
    for (i = 25; i < 50; i++)
        zp_put(pool, putting(o[i]));
    assert_int_equal(resets(ot), r + 50);
    zp_cache_destroy(h);
    check_quiet(ot, pv);

    /* a handle still alive at destroy: reported, its objects finalised */
    assert_int_equal(zp_cache_create(pool, &left), 0);
    for (i = 0; i < 40; i++)
        o[i] = got(ot, zp_cache_get(left, OBJ_SIZE));
    for (i = 0; i < 40; i++)
        zp_cache_put(left, putting(o[i]));
    assert_int_equal(zpt_capture_begin(&cap), 0);
    zp_pool_destroy(pool);
    err = zpt_capture_end(&cap);
    assert_non_null(err);
    if (!strstr(err, "cache handle"))
        fail_msg("destroy with a live handle did not report it: \"%s\"", err);
    free(err);
    check_destroyed(ot, pv, 0);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

/* ------------------------------------------------------ other threads */

typedef struct putter_arg {
    zp_pool *pool;
    void **objs;
    int n;
} putter_arg;

static void *put_them(void *arg)
{
    putter_arg *a = arg;
    int i;
    for (i = 0; i < a->n / 2; i++)
        zp_put(a->pool, a->objs[i]);
    zp_put_batch(a->pool, a->objs + a->n / 2, (size_t)(a->n - a->n / 2));
    return NULL;
}

/* Puts on another thread reset each object there; when that thread has
 * exited its objects are got again without init. */
static void test_cross_thread_puts(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv);
    void *o[64];
    putter_arg a = {pool, o, 64};
    pthread_t t;
    unsigned long first;
    int i, round;
    (void)state;
    for (i = 0; i < 64; i++)
        o[i] = got(ot, zp_get(pool, OBJ_SIZE));
    first = inits(ot);
    for (round = 1; round <= 4; round++) {
        for (i = 0; i < 64; i++)
            putting(o[i]);
        zpt_threads_start(&t, 1, put_them, &a, 0);
        zpt_threads_join(&t, 1);
        assert_int_equal(resets(ot), round * 64);
        for (i = 0; i < 64; i++)
            o[i] = got(ot, zp_get(pool, OBJ_SIZE));
        assert_int_equal(inits(ot), first);
    }
    for (i = 0; i < 64; i++)
        zp_put(pool, putting(o[i]));
    destroy_clean(pool, ot, pv);
}

/* --------------------------------------------------------------- trim */

#define MANY 3000 /* about three 256 KiB slabs of 200-byte objects */

static void **get_many(zp_pool *pool, zpt_objtype *ot, size_t n)
{
    void **o = malloc(n * sizeof *o);
    size_t i;
    assert_non_null(o);
    for (i = 0; i < n; i++)
        o[i] = got(ot, zp_get(pool, OBJ_SIZE));
    return o;
}

/* Puts o[0] .. o[n - 1]. */
static void put_many(zp_pool *pool, void **o, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        zp_put(pool, putting(o[i]));
}

static void test_trim(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv);
    void **o = get_many(pool, ot, MANY);
    size_t i, released;
    unsigned long before;
    zp_stats s;
    (void)state;
    put_many(pool, o, MANY);
    assert_int_equal(zp_trim(pool, SIZE_MAX), 0); /* keeps everything */
    assert_int_equal(finis(ot), 0);
    released = zp_trim(pool, 0);
    assert_true(released > 0);
    assert_int_equal(finis(ot), inits(ot));
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    s = zpt_read(pool);
    zpt_assert_obj_stats(&s, &ot->type, 0);
    check_quiet(ot, pv);
    free(o);

    /* fresh memory is constructed afresh; one object kept out keeps its
     * slab, whose constructed objects stay */
    before = inits(ot);
    o = get_many(pool, ot, MANY);
    assert_true(inits(ot) >= before + MANY);
    for (i = 1; i < MANY; i++)
        zp_put(pool, putting(o[i]));
    zp_trim(pool, 0);
    assert_true(finis(ot) < inits(ot));
    assert_true(atomic_load(&pv->bytes_live) > 0);
    check_quiet(ot, pv);
    zp_put(pool, putting(o[0]));
    zp_trim(pool, 0);
    assert_int_equal(finis(ot), inits(ot));
    check_quiet(ot, pv);
    free(o);

    o = get_many(pool, ot, 10);
    put_many(pool, o, 10);
    free(o);
    destroy_clean(pool, ot, pv);
}

/* Objects of a page or more in a slab that stays (one object out): trim,
 * the retention cap and decay may release idle pages of buffers, never of
 * constructed objects: every idle object comes back with its state. */
static void keeps_idle_pages(size_t max_cached, unsigned decay_ms)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = zpt_objtype_new(4000, 4096, ZPT_OBJ_ALL); /* stride: a page */
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .cache_depth = ZPT_ZERO,
                             .max_cached_bytes = max_cached, .decay_ms = decay_ms);
    unsigned char *o[40];
    unsigned long first;
    size_t i, bad;
    int round;
    for (i = 0; i < 40; i++) {
        assert_non_null(o[i] = zp_get(pool, 4000));
        assert_true(zpt_obj_constructed(ot, o[i]));
        zpt_fill(o[i] + ZPT_OBJ_STAMP, 4000 - ZPT_OBJ_STAMP, i + 1);
    }
    first = inits(ot);
    for (round = 0; round < 3; round++) {
        for (i = 1; i < 40; i++) /* o[0] stays out: its slab stays */
            zp_put(pool, o[i]);
        zp_trim(pool, 0);
        if (decay_ms) { /* two epochs and a slow path end each */
            zpt_sleep_ms(2 * decay_ms + 5);
            zp_put(pool, zp_get(pool, 4000));
            zpt_sleep_ms(2 * decay_ms + 5);
            zp_put(pool, zp_get(pool, 4000));
        }
        assert_int_equal(finis(ot), 0);
        for (i = 1; i < 40; i++) {
            size_t k;
            unsigned char *p = zp_get(pool, 4000);
            assert_non_null(p);
            for (k = 1; k < 40 && o[k] != p; k++)
                ;
            if (k == 40)
                fail_msg("round %d: a different object came back", round);
            if (!zpt_obj_constructed(ot, p))
                fail_msg("round %d: idle object %p lost its constructed state (pages "
                         "released?)", round, (void *)p);
            if ((bad = zpt_check(p + ZPT_OBJ_STAMP, 4000 - ZPT_OBJ_STAMP, k + 1)) != SIZE_MAX)
                fail_msg("round %d: idle object %p changed at byte %zu", round, (void *)p,
                         ZPT_OBJ_STAMP + bad);
        }
        assert_int_equal(inits(ot), first);
    }
    for (i = 0; i < 40; i++)
        zp_put(pool, o[i]);
    destroy_clean(pool, ot, pv);
}

static void test_idle_pages_keep_state(void **state)
{
    (void)state;
    keeps_idle_pages(0, 0);        /* zp_trim */
    keeps_idle_pages(ZPT_ZERO, 0); /* the retention cap */
    keeps_idle_pages(0, 10);       /* decay */
}

/* -------------------------------------------------------------- decay */

/* The background thread gives back what stayed idle: finalised, all. */
static void test_decay_thread(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .cache_depth = ZPT_ZERO,
                             .decay_ms = 20, .flags = ZP_DECAY_THREAD);
    void **o = get_many(pool, ot, MANY);
    uint64_t start = zpt_now_ns();
    (void)state;
    put_many(pool, o, MANY);
    while (atomic_load(&pv->bytes_live) != 0 && zpt_ms_since(start) < 20000)
        zpt_sleep_ms(5);
    if (atomic_load(&pv->bytes_live) != 0)
        fail_msg("decay left %zu bytes mapped after 20 s idle",
                 (size_t)atomic_load(&pv->bytes_live));
    assert_int_equal(finis(ot), inits(ot));
    check_quiet(ot, pv);
    free(o);
    destroy_clean(pool, ot, pv);
}

static int largest_region(void *ptr, size_t size, void *arg)
{
    (void)ptr;
    if (size > *(size_t *)arg)
        *(size_t *)arg = size;
    return 0;
}

/* Decay driven by the pool's own slow paths (no thread): every later
 * call finds the epoch over; what was idle goes, finalised. */
static void test_decay_slow_path(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .cache_depth = ZPT_ZERO,
                             .decay_ms = 20);
    void **o = get_many(pool, ot, MANY);
    uint64_t start = zpt_now_ns();
    size_t slab = 0;
    (void)state;
    zpt_provider_each(pv, largest_region, &slab);
    put_many(pool, o, MANY);
    /* a get and a put now and then, each a slow path (no cache): at most
     * the slab of that one object stays */
    while (atomic_load(&pv->bytes_live) > slab && zpt_ms_since(start) < 20000) {
        zpt_sleep_ms(25);
        zp_put(pool, putting(got(ot, zp_get(pool, OBJ_SIZE))));
    }
    if (atomic_load(&pv->bytes_live) > slab)
        fail_msg("decay left %zu bytes mapped after 20 s idle",
                 (size_t)atomic_load(&pv->bytes_live));
    assert_true(finis(ot) > 0);
    check_quiet(ot, pv);
    free(o);
    destroy_clean(pool, ot, pv);
}

/* ---------------------------------------------------- retention cap */

/* Nothing idle is kept: each slab goes (finalised) as soon as it is idle. */
static void test_retention_zero(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .cache_depth = ZPT_ZERO,
                             .max_cached_bytes = ZPT_ZERO);
    void **o = get_many(pool, ot, MANY);
    size_t i;
    (void)state;
    for (i = 0; i < MANY; i++) {
        zp_put(pool, putting(o[i]));
        if (i % 500 == 0)
            check_quiet(ot, pv);
    }
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    assert_int_equal(finis(ot), inits(ot));
    free(o);
    destroy_clean(pool, ot, pv);
}

/* A cap of one slab's bytes, with the thread's cache in front: whatever
 * is released is finalised, whatever stays is still constructed. */
static void test_retention_cap(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .max_cached_bytes = 256 * ZPT_KiB);
    void **o = get_many(pool, ot, MANY);
    int round;
    (void)state;
    for (round = 0; round < 3; round++) {
        put_many(pool, o, MANY);
        check_quiet(ot, pv);
        assert_true(finis(ot) > 0);
        free(o);
        o = get_many(pool, ot, MANY);
        check_quiet(ot, pv);
    }
    put_many(pool, o, MANY);
    free(o);
    destroy_clean(pool, ot, pv);
}

/* ------------------------------------------------------------ destroy */

typedef struct parked {
    zp_pool *pool;
    zpt_objtype *ot;
    pthread_barrier_t filled, go;
} parked;

/* Gets and puts 40 objects, then stays alive with them in its cache
 * until the pool is gone. */
static void *park_objects(void *arg)
{
    parked *p = arg;
    void *o[40];
    int i;
    for (i = 0; i < 40; i++)
        o[i] = zp_get(p->pool, OBJ_SIZE);
    for (i = 0; i < 40; i++)
        if (o[i])
            zp_put(p->pool, putting(o[i]));
    pthread_barrier_wait(&p->filled);
    pthread_barrier_wait(&p->go);
    return NULL;
}

/* Idle objects everywhere at destroy — this thread's cache, a live
 * thread's cache, a live handle, the depot — are all finalised. */
static void test_destroy_idle_everywhere(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv);
    static parked p;
    zp_cache *h = NULL;
    zpt_capture cap;
    pthread_t t;
    void **o;
    size_t i;
    char *err;
    (void)state;
    p.pool = pool;
    p.ot = ot;
    pthread_barrier_init(&p.filled, NULL, 2);
    pthread_barrier_init(&p.go, NULL, 2);
    zpt_threads_start(&t, 1, park_objects, &p, 0);
    pthread_barrier_wait(&p.filled);
    assert_int_equal(zp_cache_create(pool, &h), 0);
    o = get_many(pool, ot, 200);
    for (i = 0; i < 20; i++)
        zp_cache_put(h, putting(o[i]));
    for (i = 20; i < 200; i++)
        zp_put(pool, putting(o[i])); /* the cache's 32, the rest to the depot */
    assert_int_equal(finis(ot), 0);
    assert_int_equal(zpt_capture_begin(&cap), 0);
    zp_pool_destroy(pool);
    err = zpt_capture_end(&cap);
    free(err);
    pthread_barrier_wait(&p.go);
    zpt_threads_join(&t, 1);
    assert_true(inits(ot) >= 200); /* the thread's overflow may have served some */
    check_destroyed(ot, pv, 0);
    pthread_barrier_destroy(&p.filled);
    pthread_barrier_destroy(&p.go);
    free(o);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

/* Objects outstanding at destroy are reported and not finalised. */
static void test_destroy_outstanding(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv);
    void **o = get_many(pool, ot, 100);
    zpt_capture cap;
    char *err;
    size_t i;
    (void)state;
    for (i = 0; i < 7; i++)
        g_outstanding[g_noutstanding++] = o[i * 13];
    for (i = 0; i < 100; i++)
        if (i % 13 != 0 || i / 13 >= 7)
            zp_put(pool, putting(o[i]));
    assert_int_equal(zpt_capture_begin(&cap), 0);
    zp_pool_destroy(pool);
    err = zpt_capture_end(&cap);
    assert_non_null(err);
    if (!strstr(err, "objects of 200 bytes: 7 buffers"))
        fail_msg("destroy did not report 7 outstanding objects of 200 bytes: \"%s\"", err);
    free(err);
    check_destroyed(ot, pv, 7);
    free(o);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

/* ------------------------------------------------- a whole life, mixed */

/* Random traffic through every door, with trims, handle flushes and
 * other threads' puts; quiet points check the count of constructed
 * objects; destroy leaves some outstanding. */
static void test_mixed_life(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .max_cached_bytes = ZPT_MiB);
    enum { CAP = 4000 };
    void **held = malloc(CAP * sizeof *held), *tmp[64];
    size_t nheld = 0, i, k;
    uint64_t seed = 42;
    unsigned long puts = 0, step, steps = zpt_scaled(4000);
    zp_cache *h = NULL;
    zpt_capture cap;
    char *err;
    (void)state;
    assert_non_null(held);
    assert_int_equal(zp_cache_create(pool, &h), 0);
    for (step = 0; step < steps; step++) {
        uint64_t r = zpt_rand(&seed);
        size_t n = 1 + (size_t)(r >> 8) % 64;
        switch (r % 8) {
        case 0: /* single gets */
        case 1:
            for (k = 0; k < n && nheld < CAP; k++)
                held[nheld++] = got(ot, zp_get(pool, 1 + (size_t)(r >> 20) % OBJ_SIZE));
            break;
        case 2: /* a batch get */
            if (nheld + n <= CAP && zp_get_batch(pool, OBJ_SIZE, held + nheld, n) == 0) {
                for (k = 0; k < n; k++)
                    got(ot, held[nheld + k]);
                nheld += n;
            }
            break;
        case 3: /* handle gets */
            for (k = 0; k < n && nheld < CAP; k++)
                held[nheld++] = got(ot, zp_cache_get(h, OBJ_SIZE));
            break;
        case 4: /* single puts */
        case 5:
            for (k = 0; k < n && nheld > 0; k++, puts++)
                zp_put(pool, putting(held[--nheld]));
            break;
        case 6: /* a batch put, through the thread or the handle */
            n = n < nheld ? n : nheld;
            for (k = 0; k < n; k++)
                tmp[k] = putting(held[--nheld]);
            if (r & 0x100)
                zp_put_batch(pool, tmp, n);
            else
                zp_cache_put_batch(h, tmp, n);
            puts += n;
            break;
        case 7: /* now and then: trim, flush, or a quiet-point check */
            if ((r >> 8) % 4 == 0)
                zp_trim(pool, (r >> 12) % 2 ? 0 : 512 * ZPT_KiB);
            else if ((r >> 8) % 4 == 1)
                zp_cache_flush(h);
            check_quiet(ot, pv);
            break;
        }
        if (resets(ot) != puts)
            fail_msg("step %lu: %lu puts, %lu resets", step, puts, resets(ot));
    }
    zp_cache_destroy(h);
    check_quiet(ot, pv);
    /* a few stay out at destroy */
    while (nheld > 5)
        zp_put(pool, putting(held[--nheld]));
    g_noutstanding = 0;
    for (i = 0; i < nheld; i++)
        g_outstanding[g_noutstanding++] = held[i];
    assert_int_equal(zpt_capture_begin(&cap), 0);
    zp_pool_destroy(pool);
    err = zpt_capture_end(&cap);
    free(err);
    check_destroyed(ot, pv, nheld);
    print_message("# %lu steps: %lu inits, %lu resets, %lu finis\n", steps, inits(ot),
                  resets(ot), finis(ot));
    free(held);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_uncached),
        cmocka_unit_test(test_single_cached),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_handles),
        cmocka_unit_test(test_cross_thread_puts),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_idle_pages_keep_state),
        cmocka_unit_test(test_decay_thread),
        cmocka_unit_test(test_decay_slow_path),
        cmocka_unit_test(test_retention_zero),
        cmocka_unit_test(test_retention_cap),
        cmocka_unit_test(test_destroy_idle_everywhere),
        cmocka_unit_test(test_destroy_outstanding),
        cmocka_unit_test(test_mixed_life),
    };
    return ZPT_RUN(tests);
}
