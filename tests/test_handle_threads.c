/* Tests cache handles across threads: a handle migrating between owners, buffers crossing between handles and zp_put/zp_put_batch, and exact stats with handles, thread caches and batches in use at once (run under TSan too). */
#include "zp_test.h"

#if defined(ZPT_SANITIZED)
#define SCALE 5
#else
#define SCALE 1
#endif

#define MIN_CLASS ((size_t)4096)
#define MAX_CLASS ((size_t)1 << 20)

static zp_pool *make_pool(int debug)
{
    return ZPT_POOL(.max_class = MAX_CLASS, .debug = debug);
}

/* A size from 1 byte to 2 x MAX_CLASS, mostly small; about 1 in 64 is
 * oversize. */
static size_t pick_size(uint64_t *rng)
{
    uint64_t r = zpt_rand(rng);
    if (r % 64 == 0)
        return MAX_CLASS + 1 + (size_t)(r >> 20) % MAX_CLASS;
    return (size_t)1 + (size_t)((r >> 8) % ((MIN_CLASS << (r >> 40) % 7)));
}

/* Per-thread tally of what a thread did (plain fields: read after join). */
typedef struct tally {
    uint64_t gets, puts, oversize_gets, oversize_puts;
    uint64_t class_gets[ZP_MAX_CLASSES];
    uint64_t failures;  /* NULL gets, failed batches */
    uint64_t corrupted; /* patterns found changed */
} tally;

static void tally_get(tally *t, size_t size)
{
    t->gets++;
    if (size > MAX_CLASS)
        t->oversize_gets++;
    else
        t->class_gets[zpt_class_index(MIN_CLASS, size ? size : 1)]++;
}

static void tally_put(tally *t, size_t size)
{
    t->puts++;
    if (size > MAX_CLASS)
        t->oversize_puts++;
}

static void tally_add(tally *sum, const tally *t)
{
    int i;
    sum->gets += t->gets;
    sum->puts += t->puts;
    sum->oversize_gets += t->oversize_gets;
    sum->oversize_puts += t->oversize_puts;
    sum->failures += t->failures;
    sum->corrupted += t->corrupted;
    for (i = 0; i < ZP_MAX_CLASSES; i++)
        sum->class_gets[i] += t->class_gets[i];
}

/* What the pool must say once every thread has stopped. */
static void expect_exact(zp_pool *pool, const tally *sum, const char *what)
{
    zp_stats s;
    uint32_t c;
    assert_int_equal(zpt_stats(pool, &s), 0);
    zpt_stats_print(what, &s);
    if (sum->failures || sum->corrupted)
        fail_msg("%s: %llu failed gets, %llu corrupted buffers", what,
                 (unsigned long long)sum->failures,
                 (unsigned long long)sum->corrupted);
    if (s.gets != sum->gets || s.puts != sum->puts ||
        s.oversize != sum->oversize_gets || s.discards != sum->oversize_puts)
        fail_msg("%s: pool counts gets %llu puts %llu oversize %llu discards "
                 "%llu; the threads made %llu, %llu, %llu, %llu", what,
                 (unsigned long long)s.gets, (unsigned long long)s.puts,
                 (unsigned long long)s.oversize, (unsigned long long)s.discards,
                 (unsigned long long)sum->gets, (unsigned long long)sum->puts,
                 (unsigned long long)sum->oversize_gets,
                 (unsigned long long)sum->oversize_puts);
    for (c = 0; c < s.nclasses; c++)
        if (s.classes[c].gets != sum->class_gets[c])
            fail_msg("%s: class %llu counts %llu gets, the threads made %llu",
                     what, (unsigned long long)s.classes[c].size,
                     (unsigned long long)s.classes[c].gets,
                     (unsigned long long)sum->class_gets[c]);
    if (!zpt_stats_sum_ok(&s) || !zpt_stats_classes_ok(&s))
        fail_msg("%s: gets are not the sum of their parts", what);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.misuse, 0);
}

/* ------------------------------------------------- a migrating handle */

enum { MIG_THREADS = 4, MIG_CARRY = 12 };

typedef struct baton {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int turn;          /* whose turn: turn % MIG_THREADS */
    int turns;         /* turns in all */
    zp_pool *pool;
    zp_cache *cache;   /* owned by whoever has the turn */
    /* buffers the previous owner got through the handle and left for the
       next owner to check and put */
    void *carry[MIG_CARRY];
    size_t carry_size[MIG_CARRY];
    uint64_t carry_seed[MIG_CARRY];
} baton;

typedef struct mig_worker {
    baton *b;
    int id;
    tally t;
} mig_worker;

static void *mig_main(void *arg)
{
    mig_worker *w = arg;
    baton *b = w->b;
    uint64_t rng = 0x1234u + (uint64_t)w->id;
    for (;;) {
        zp_cache *c;
        int i, r;
        pthread_mutex_lock(&b->lock);
        while (b->turn < b->turns && b->turn % MIG_THREADS != w->id)
            pthread_cond_wait(&b->cond, &b->lock);
        if (b->turn >= b->turns) {
            pthread_mutex_unlock(&b->lock);
            break;
        }
        pthread_mutex_unlock(&b->lock);
        /* the lock hand-over orders the previous owner's calls before ours */
        c = b->cache;
        for (i = 0; i < MIG_CARRY; i++) {
            if (b->carry[i] == NULL)
                continue;
            if (!zpt_marked(b->carry[i], b->carry_size[i],
                              b->carry_seed[i]))
                w->t.corrupted++;
            if (i % 3 == 0)
                zp_put(b->pool, b->carry[i]); /* this thread's cache */
            else
                zp_cache_put(c, b->carry[i]);
            tally_put(&w->t, b->carry_size[i]);
            b->carry[i] = NULL;
        }
        for (r = 0; r < 20; r++) {
            void *bufs[8];
            size_t sizes[8];
            for (i = 0; i < 8; i++) {
                sizes[i] = pick_size(&rng);
                bufs[i] = zp_cache_get(c, sizes[i]);
                if (bufs[i] == NULL) {
                    w->t.failures++;
                    continue;
                }
                tally_get(&w->t, sizes[i]);
                zpt_mark(bufs[i], sizes[i], (uint64_t)r * 8 + (uint64_t)i);
            }
            for (i = 0; i < 8; i++) {
                if (bufs[i] == NULL)
                    continue;
                if (!zpt_marked(bufs[i], sizes[i],
                                  (uint64_t)r * 8 + (uint64_t)i))
                    w->t.corrupted++;
                zp_cache_put(c, bufs[i]);
                tally_put(&w->t, sizes[i]);
            }
            /* a batch through the handle */
            if (zp_cache_get_batch(c, 32 * ZPT_KiB, bufs, 8) != 0) {
                w->t.failures++;
            } else {
                for (i = 0; i < 8; i++)
                    tally_get(&w->t, 32 * ZPT_KiB);
                zp_cache_put_batch(c, bufs, 8);
                for (i = 0; i < 8; i++)
                    tally_put(&w->t, 32 * ZPT_KiB);
            }
        }
        for (i = 0; i < MIG_CARRY; i++) {
            size_t sz = pick_size(&rng);
            void *p = zp_cache_get(c, sz);
            if (p == NULL) {
                w->t.failures++;
                continue;
            }
            tally_get(&w->t, sz);
            b->carry_seed[i] = zpt_rand(&rng);
            zpt_mark(p, sz, b->carry_seed[i]);
            b->carry_size[i] = sz;
            b->carry[i] = p;
        }
        pthread_mutex_lock(&b->lock);
        b->turn++;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
    }
    return NULL;
}

static void run_migrating(int debug)
{
    static baton b;
    static mig_worker w[MIG_THREADS];
    pthread_t th[MIG_THREADS];
    tally sum;
    int i;
    memset(&b, 0, sizeof(b));
    memset(w, 0, sizeof(w));
    memset(&sum, 0, sizeof(sum));
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    b.turns = 200 / SCALE;
    b.pool = make_pool(debug);
    assert_int_equal(zp_cache_create(b.pool, &b.cache), 0);
    for (i = 0; i < MIG_THREADS; i++) {
        w[i].b = &b;
        w[i].id = i;
    }
    zpt_threads_start(th, MIG_THREADS, mig_main, w, sizeof(w[0]));
    zpt_threads_join(th, MIG_THREADS);
    for (i = 0; i < MIG_THREADS; i++)
        tally_add(&sum, &w[i].t);
    /* the handle comes back to this thread with the joins */
    for (i = 0; i < MIG_CARRY; i++) {
        if (b.carry[i] == NULL)
            continue;
        if (!zpt_marked(b.carry[i], b.carry_size[i], b.carry_seed[i]))
            sum.corrupted++;
        zp_cache_put(b.cache, b.carry[i]);
        tally_put(&sum, b.carry_size[i]);
    }
    expect_exact(b.pool, &sum, "migrating handle, handle alive");
    zp_cache_destroy(b.cache);
    expect_exact(b.pool, &sum, "migrating handle, handle destroyed");
    zp_pool_destroy(b.pool);
    pthread_cond_destroy(&b.cond);
    pthread_mutex_destroy(&b.lock);
}

static void test_migrating_handle(void **state)
{
    (void)state;
    run_migrating(0);
}

static void test_migrating_handle_debug1(void **state)
{
    (void)state;
    run_migrating(1);
}

/* ------------------------------------ a handle outlives its creator */

typedef struct creator {
    zp_pool *pool;
    zp_cache *cache;
    void *held[16];  /* got through the handle, still out */
    int failures;
} creator;

static void *creator_main(void *arg)
{
    creator *cr = arg;
    void *bufs[16];
    int i;
    if (zp_cache_create(cr->pool, &cr->cache) != 0) {
        cr->failures++;
        return NULL;
    }
    for (i = 0; i < 16; i++) {
        bufs[i] = zp_cache_get(cr->cache, 8192);
        cr->held[i] = zp_cache_get(cr->cache, 16384);
        if (bufs[i] == NULL || cr->held[i] == NULL) {
            cr->failures++;
            return NULL;
        }
        zpt_mark(cr->held[i], 16384, (uint64_t)i);
    }
    for (i = 0; i < 16; i++)
        zp_cache_put(cr->cache, bufs[i]); /* cached in the handle */
    return NULL; /* the thread exits; the handle is not its cache */
}

/* A handle created (and filled) on a thread that then exits keeps its
 * cache: the next owner's gets are hits on it. */
static void test_handle_outlives_creator(void **state)
{
    static creator cr;
    pthread_t t;
    void *bufs[16];
    zp_stats s0, s1;
    int i, j;
    (void)state;
    memset(&cr, 0, sizeof(cr));
    cr.pool = make_pool(0);
    zpt_threads_start(&t, 1, creator_main, &cr, 0);
    zpt_threads_join(&t, 1);
    assert_int_equal(cr.failures, 0);
    assert_int_equal(zpt_stats(cr.pool, &s0), 0);
    assert_true(s0.bytes_cached >= 16 * 8192);
    for (i = 0; i < 16; i++) {
        bufs[i] = zp_cache_get(cr.cache, 8192);
        assert_non_null(bufs[i]);
        for (j = 0; j < 16; j++)
            assert_ptr_not_equal(bufs[i], cr.held[j]);
    }
    assert_int_equal(zpt_stats(cr.pool, &s1), 0);
    if (s1.cache_hits - s0.cache_hits != 16)
        fail_msg("after its creator thread exited, 16 gets through the handle "
                 "made %llu cache hits (expected 16): the handle lost its "
                 "cache with the thread",
                 (unsigned long long)(s1.cache_hits - s0.cache_hits));
    for (i = 0; i < 16; i++) {
        assert_true(zpt_marked(cr.held[i], 16384, (uint64_t)i));
        zp_cache_put(cr.cache, bufs[i]);
        zp_put(cr.pool, cr.held[i]);
    }
    zp_cache_destroy(cr.cache);
    assert_int_equal(zpt_stats(cr.pool, &s1), 0);
    assert_int_equal(s1.gets, 48);
    assert_int_equal(s1.puts, 48);
    assert_int_equal(s1.bytes_outstanding, 0);
    assert_true(zpt_stats_sum_ok(&s1) && zpt_stats_classes_ok(&s1));
    zp_pool_destroy(cr.pool);
}

/* ------------------------ buffers crossing between a handle and zp_put */

enum { XN = 8 };

typedef struct xmsg {
    void *bufs[XN];
    size_t sizes[XN];
    uint64_t seed;
} xmsg;

typedef struct xpair {
    zp_pool *pool;
    zpt_mailbox to_plain;  /* handle thread -> plain thread */
    zpt_mailbox to_handle; /* plain thread -> handle thread */
    int rounds;
    tally th, tp;         /* tallies of the handle and the plain thread */
} xpair;

static void check_msg(xmsg *m, tally *t)
{
    int i;
    for (i = 0; i < XN; i++)
        if (m->bufs[i] != NULL &&
            !zpt_marked(m->bufs[i], m->sizes[i], m->seed + (uint64_t)i))
            t->corrupted++;
}

static void fill_msg(xmsg *m, uint64_t seed)
{
    int i;
    m->seed = seed;
    for (i = 0; i < XN; i++)
        if (m->bufs[i] != NULL)
            zpt_mark(m->bufs[i], m->sizes[i], seed + (uint64_t)i);
}

static void *x_handle_main(void *arg)
{
    xpair *x = arg;
    zp_cache *c = NULL;
    uint64_t rng = 77;
    int r, i;
    if (zp_cache_create(x->pool, &c) != 0) {
        x->th.failures++;
        c = NULL; /* zp_cache_* with NULL: every get fails, counted */
    }
    for (r = 0; r < x->rounds; r++) {
        xmsg *out = calloc(1, sizeof(*out)), *in;
        if (out == NULL)
            abort();
        if (r % 2 == 0) {
            for (i = 0; i < XN; i++) {
                out->sizes[i] = pick_size(&rng);
                out->bufs[i] = zp_cache_get(c, out->sizes[i]);
                if (out->bufs[i] == NULL)
                    x->th.failures++;
                else
                    tally_get(&x->th, out->sizes[i]);
            }
        } else {
            size_t sz = (size_t)1 << (12 + r % 8); /* 4 KiB .. 512 KiB */
            for (i = 0; i < XN; i++)
                out->sizes[i] = sz;
            if (zp_cache_get_batch(c, sz, out->bufs, XN) != 0) {
                x->th.failures++;
                memset(out->bufs, 0, sizeof(out->bufs));
            } else {
                for (i = 0; i < XN; i++)
                    tally_get(&x->th, sz);
            }
        }
        fill_msg(out, (uint64_t)r << 8);
        zpt_mail_send(&x->to_plain, out);

        in = zpt_mail_recv(&x->to_handle);
        check_msg(in, &x->th);
        if (r % 3 == 0) {
            zp_cache_put_batch(c, in->bufs, XN);
        } else {
            for (i = 0; i < XN; i++)
                zp_cache_put(c, in->bufs[i]);
        }
        for (i = 0; i < XN; i++)
            if (in->bufs[i] != NULL)
                tally_put(&x->th, in->sizes[i]);
        free(in);
    }
    zp_cache_destroy(c);
    return NULL;
}

static void *x_plain_main(void *arg)
{
    xpair *x = arg;
    uint64_t rng = 99;
    int r, i;
    for (r = 0; r < x->rounds; r++) {
        xmsg *in = zpt_mail_recv(&x->to_plain), *out;
        check_msg(in, &x->tp);
        if (r % 2 == 0)
            zp_put_batch(x->pool, in->bufs, XN);
        else
            for (i = 0; i < XN; i++)
                zp_put(x->pool, in->bufs[i]);
        for (i = 0; i < XN; i++)
            if (in->bufs[i] != NULL)
                tally_put(&x->tp, in->sizes[i]);
        free(in);

        out = calloc(1, sizeof(*out));
        if (out == NULL)
            abort();
        if (r % 3 == 1) {
            size_t sz = (size_t)1 << (12 + r % 7);
            for (i = 0; i < XN; i++)
                out->sizes[i] = sz;
            if (zp_get_batch(x->pool, sz, out->bufs, XN) != 0) {
                x->tp.failures++;
                memset(out->bufs, 0, sizeof(out->bufs));
            } else {
                for (i = 0; i < XN; i++)
                    tally_get(&x->tp, sz);
            }
        } else {
            for (i = 0; i < XN; i++) {
                out->sizes[i] = pick_size(&rng);
                out->bufs[i] = zp_get(x->pool, out->sizes[i]);
                if (out->bufs[i] == NULL)
                    x->tp.failures++;
                else
                    tally_get(&x->tp, out->sizes[i]);
            }
        }
        fill_msg(out, ((uint64_t)r << 8) | 0x80);
        zpt_mail_send(&x->to_handle, out);
    }
    return NULL;
}

static void test_buffers_cross(void **state)
{
    static xpair x;
    pthread_t t[2];
    tally sum;
    (void)state;
    memset(&x, 0, sizeof(x));
    memset(&sum, 0, sizeof(sum));
    x.pool = make_pool(0);
    x.rounds = 4000 / SCALE;
    zpt_mail_init(&x.to_plain);
    zpt_mail_init(&x.to_handle);
    zpt_threads_start(&t[0], 1, x_handle_main, &x, 0);
    zpt_threads_start(&t[1], 1, x_plain_main, &x, 0);
    zpt_threads_join(t, 2);
    tally_add(&sum, &x.th);
    tally_add(&sum, &x.tp);
    expect_exact(x.pool, &sum, "buffers crossing");
    zp_pool_destroy(x.pool);
    zpt_mail_fini(&x.to_plain);
    zpt_mail_fini(&x.to_handle);
}

/* --------------------------- everything at once, then exact counts */

enum { MIX_WORKERS = 4, STASH = 64 };

typedef struct mix {
    zp_pool *pool;
    long ops;
    atomic_int running;     /* workers not finished */
    atomic_ulong reads;     /* stats reads made while they ran */
    atomic_ulong bad_reads; /* reads whose gets were not the sum of parts */
    int trim;               /* the reader also trims every 64 reads */
    pthread_mutex_t lock;   /* guards the stash */
    void *stash[STASH];
    size_t stash_size[STASH];
    int nstash;
} mix;

typedef struct mix_worker {
    mix *m;
    int kind;        /* 0, 1: handle; 2: thread cache; 3: batches */
    zp_cache *cache; /* handed back to main at join, still alive */
    tally t;
} mix_worker;

/* Swaps a held buffer with one from the stash (so buffers cross threads
 * and put styles); returns the one to put, or NULL. */
static void *stash_swap(mix *m, void *buf, size_t size, size_t *out_size)
{
    void *other = NULL;
    pthread_mutex_lock(&m->lock);
    if (m->nstash > 0 && (buf == NULL || (((uintptr_t)buf >> 12) & 1))) {
        m->nstash--;
        other = m->stash[m->nstash];
        *out_size = m->stash_size[m->nstash];
    }
    if (buf != NULL && m->nstash < STASH) {
        m->stash[m->nstash] = buf;
        m->stash_size[m->nstash] = size;
        m->nstash++;
        buf = NULL;
    }
    pthread_mutex_unlock(&m->lock);
    if (buf != NULL) { /* stash full and nothing taken: put our own */
        *out_size = size;
        return buf;
    }
    return other;
}

static void mix_put(mix_worker *w, void *buf, size_t size)
{
    if (w->cache != NULL)
        zp_cache_put(w->cache, buf);
    else
        zp_put(w->m->pool, buf);
    tally_put(&w->t, size);
}

static void *mix_main(void *arg)
{
    mix_worker *w = arg;
    mix *m = w->m;
    uint64_t rng = 0xABCDu + (uint64_t)w->kind;
    long op;
    if (w->kind != 2 && zp_cache_create(m->pool, &w->cache) != 0)
        w->t.failures++;
    for (op = 0; op < m->ops; op++) {
        if (w->kind == 3 && op % 4 == 0) {
            void *bufs[16];
            size_t sz = (size_t)1 << (12 + op % 9);
            int i, via_handle = (op / 4) % 2;
            int rc = via_handle ? zp_cache_get_batch(w->cache, sz, bufs, 16)
                                : zp_get_batch(m->pool, sz, bufs, 16);
            if (rc != 0) {
                w->t.failures++;
                continue;
            }
            for (i = 0; i < 16; i++)
                tally_get(&w->t, sz);
            if ((op / 8) % 2)
                zp_cache_put_batch(w->cache, bufs, 16);
            else
                zp_put_batch(m->pool, bufs, 16);
            for (i = 0; i < 16; i++)
                tally_put(&w->t, sz);
        } else {
            size_t sz = pick_size(&rng), osz = 0;
            void *p = w->cache && w->kind != 3 ? zp_cache_get(w->cache, sz)
                                               : zp_get(m->pool, sz), *q;
            if (p == NULL) {
                w->t.failures++;
                continue;
            }
            tally_get(&w->t, sz);
            *(volatile unsigned char *)p = 1;
            if (op % 5 == 0) {
                q = stash_swap(m, p, sz, &osz);
                if (q != NULL)
                    mix_put(w, q, osz);
            } else {
                mix_put(w, p, sz);
            }
        }
    }
    atomic_fetch_sub(&m->running, 1);
    return NULL;
}

static void *reader_main(void *arg)
{
    mix *m = arg;
    while (atomic_load(&m->running) > 0) {
        zp_stats s;
        if (zpt_stats(m->pool, &s) != 0 || !zpt_stats_sum_ok(&s) ||
            !zpt_stats_classes_ok(&s))
            atomic_fetch_add(&m->bad_reads, 1);
        if (m->trim && atomic_fetch_add(&m->reads, 1) % 64 == 0)
            (void)zp_trim(m->pool, 0);
        else if (!m->trim)
            atomic_fetch_add(&m->reads, 1);
    }
    return NULL;
}

/* Several handles, a thread cache and batches at once, buffers swapped
 * between them, stats read all along; with `busy`, the reader also trims
 * and a decay thread gives idle memory back meanwhile. */
static void run_everything(int busy)
{
    static mix m;
    static mix_worker w[MIX_WORKERS];
    pthread_t th[MIX_WORKERS], rd;
    tally sum;
    int i;
    memset(&m, 0, sizeof(m));
    memset(w, 0, sizeof(w));
    memset(&sum, 0, sizeof(sum));
    pthread_mutex_init(&m.lock, NULL);
    if (busy) {
        m.pool = ZPT_POOL(.max_class = MAX_CLASS, .decay_ms = 1,
                          .flags = ZP_DECAY_THREAD);
        m.trim = 1;
    } else {
        m.pool = make_pool(0);
    }
    m.ops = 200000 / (SCALE * 4);
    atomic_store(&m.running, MIX_WORKERS);
    for (i = 0; i < MIX_WORKERS; i++) {
        w[i].m = &m;
        w[i].kind = i;
    }
    zpt_threads_start(th, MIX_WORKERS, mix_main, w, sizeof(w[0]));
    zpt_threads_start(&rd, 1, reader_main, &m, 0);
    zpt_threads_join(th, MIX_WORKERS);
    for (i = 0; i < MIX_WORKERS; i++)
        tally_add(&sum, &w[i].t);
    zpt_threads_join(&rd, 1);
    print_message("# %lu stats reads during the run, %lu did not add up\n",
                  atomic_load(&m.reads), atomic_load(&m.bad_reads));
    /* what is left in the stash goes back on this thread */
    for (i = 0; i < m.nstash; i++) {
        zp_put(m.pool, m.stash[i]);
        tally_put(&sum, m.stash_size[i]);
    }
    /* quiescent, handles still alive (owned by this thread since the
       joins): the counts are exact */
    expect_exact(m.pool, &sum, "everything at once, handles alive");
    for (i = 0; i < MIX_WORKERS; i++)
        zp_cache_destroy(w[i].cache);
    expect_exact(m.pool, &sum, "everything at once, handles destroyed");
    if (atomic_load(&m.bad_reads) != 0)
        fail_msg("%lu of %lu stats reads during the run had gets != the sum "
                 "of their parts", atomic_load(&m.bad_reads),
                 atomic_load(&m.reads));
    zp_pool_destroy(m.pool);
    pthread_mutex_destroy(&m.lock);
}

static void test_stats_exact_with_everything(void **state)
{
    (void)state;
    run_everything(0);
}

static void test_everything_with_trim_and_decay(void **state)
{
    (void)state;
    run_everything(1);
}

/* ------------------------------- short-lived handles, folded on destroy */

typedef struct churn {
    zp_pool *pool;
    int cycles;
    atomic_int running;
    atomic_ulong reads, bad_reads;
} churn;

typedef struct churn_worker {
    churn *ch;
    int id;
    tally t;
} churn_worker;

static void *churn_main(void *arg)
{
    churn_worker *w = arg;
    uint64_t rng = 0x5EEDu + (uint64_t)w->id;
    int cycle, k, i;
    for (cycle = 0; cycle < w->ch->cycles; cycle++) {
        zp_cache *c = NULL;
        if (zp_cache_create(w->ch->pool, &c) != 0) {
            w->t.failures++;
            continue;
        }
        for (k = 0; k < 20; k++) {
            void *b[8];
            size_t sz[8];
            for (i = 0; i < 8; i++) {
                sz[i] = (size_t)4096 << (zpt_rand(&rng) % 5);
                b[i] = zp_cache_get(c, sz[i]);
                if (b[i] == NULL)
                    w->t.failures++;
                else
                    tally_get(&w->t, sz[i]);
            }
            for (i = 0; i < 8; i++)
                if (b[i] != NULL) {
                    zp_cache_put(c, b[i]);
                    tally_put(&w->t, sz[i]);
                }
        }
        zp_cache_destroy(c); /* its counts fold into the pool */
    }
    atomic_fetch_sub(&w->ch->running, 1);
    return NULL;
}

static void *churn_reader(void *arg)
{
    churn *ch = arg;
    while (atomic_load(&ch->running) > 0) {
        zp_stats s;
        if (zpt_stats(ch->pool, &s) != 0 || !zpt_stats_sum_ok(&s) ||
            !zpt_stats_classes_ok(&s))
            atomic_fetch_add(&ch->bad_reads, 1);
        atomic_fetch_add(&ch->reads, 1);
    }
    return NULL;
}

/* Threads create a handle, use it briefly and destroy it, over and over,
 * while another reads the stats: every read adds up, and at the end every
 * destroyed handle's counts are in the pool, exactly. */
static void test_short_lived_handles(void **state)
{
    enum { NW = 3 };
    static churn ch;
    static churn_worker w[NW];
    pthread_t th[NW], rd;
    tally sum;
    int i;
    (void)state;
    memset(&ch, 0, sizeof(ch));
    memset(w, 0, sizeof(w));
    memset(&sum, 0, sizeof(sum));
    ch.pool = make_pool(0);
    ch.cycles = 2000 / SCALE;
    atomic_store(&ch.running, NW);
    for (i = 0; i < NW; i++) {
        w[i].ch = &ch;
        w[i].id = i;
    }
    zpt_threads_start(th, NW, churn_main, w, sizeof(w[0]));
    zpt_threads_start(&rd, 1, churn_reader, &ch, 0);
    zpt_threads_join(th, NW);
    for (i = 0; i < NW; i++)
        tally_add(&sum, &w[i].t);
    zpt_threads_join(&rd, 1);
    print_message("# %lu stats reads during the run, %lu did not add up\n",
                  atomic_load(&ch.reads), atomic_load(&ch.bad_reads));
    expect_exact(ch.pool, &sum, "short-lived handles");
    if (atomic_load(&ch.bad_reads) != 0)
        fail_msg("%lu of %lu stats reads while handles were created and "
                 "destroyed had gets != the sum of their parts",
                 atomic_load(&ch.bad_reads), atomic_load(&ch.reads));
    zp_pool_destroy(ch.pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrating_handle),
        cmocka_unit_test(test_migrating_handle_debug1),
        cmocka_unit_test(test_handle_outlives_creator),
        cmocka_unit_test(test_buffers_cross),
        cmocka_unit_test(test_stats_exact_with_everything),
        cmocka_unit_test(test_everything_with_trim_and_decay),
        cmocka_unit_test(test_short_lived_handles),
    };
    return ZPT_RUN(tests);
}
