/*
 * sc_objects.c — zp_bench_objects: object pools (zp_objpool_create, typed
 * with ZP_OBJPOOL_DEFINE) against what a program does without one, malloc +
 * init (+ fini) + free per object. Scenarios (bench/README.md, "The object
 * pool rows"):
 *
 *   objects_trivial  a 200-byte struct whose init sets a few fields, reset
 *                    NULL: pool get+put vs malloc + init + free;
 *   objects_zlib     a struct holding a zlib z_stream: init deflateInit2
 *                    (level 1, gzip wrapper, memLevel 8), reset
 *                    deflateReset, fini deflateEnd; pool get+put vs malloc +
 *                    deflateInit2 + deflateEnd + free. Built only when CMake
 *                    found zlib (ZPB_HAVE_ZLIB); otherwise its rows say
 *                    "skipped" and carry no figure;
 *   objects_packing  bytes_reserved / (live objects x object size) for
 *                    100,000 live 200-byte objects (align 8), from zp_stats,
 *                    and glibc's figure for 100,000 malloc(200) (mallinfo2).
 *
 * The two variants of a row (pool, then malloc) are measured in alternating
 * rounds over 4 heap layouts (compare_run in harness.c); each round also
 * gives the ratio malloc / pool of that round. One thread. Run by
 * bench/run.sh (--scenarios objects); never by ctest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "harness.h"

#ifdef ZPB_HAVE_ZLIB
#include <zlib.h>
#endif

#define OBJ_LAYOUTS 4
#define PACK_LIVE 100000

/* The malloc side's column: glibc unless another allocator was preloaded
 * (bench/run.sh runs this driver without LD_PRELOAD). */
static const char *malloc_name(void)
{
    const char *pre = getenv("LD_PRELOAD");
    return pre && *pre ? "malloc" : "glibc";
}

/* ------------------------------------------------- a: a 200-byte struct */

struct small_obj {
    uint64_t id;
    uint32_t state, flags;
    void *owner;
    uint64_t created_ns;
    unsigned char payload[168];
};
_Static_assert(sizeof(struct small_obj) == 200, "the trivial object is 200 bytes");

ZP_OBJPOOL_DEFINE(small, struct small_obj)

static uint64_t small_serial;

/* The trivial constructor: a few fields, as a program would set them. */
static int small_init(void *obj, void *arg)
{
    struct small_obj *o = obj;
    (void)arg;
    o->id = ++small_serial;
    o->state = 0;
    o->flags = 0;
    o->owner = NULL;
    o->created_ns = 0;
    return 0;
}

static const zp_obj_type small_type = {.struct_size = sizeof(zp_obj_type),
                                       .size = sizeof(struct small_obj),
                                       .align = 8,
                                       .init = small_init};

/* ------------------------------------- b: a struct holding a z_stream */

#ifdef ZPB_HAVE_ZLIB
struct zobj {
    z_stream zs;
    uint64_t uses;
};

ZP_OBJPOOL_DEFINE(zobj, struct zobj)

/* deflateInit2 allocates the stream's state, window, hash chains and
 * pending buffer (some 270 KiB at memLevel 8) through malloc. */
static int zobj_init(void *obj, void *arg)
{
    struct zobj *o = obj;
    (void)arg;
    memset(o, 0, sizeof *o);
    int rc = deflateInit2(&o->zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    return rc == Z_OK ? 0 : rc == Z_MEM_ERROR ? ENOMEM : EINVAL;
}

/* Ready for the next stream: keeps the allocations, clears the hash. */
static void zobj_reset(void *obj, void *arg)
{
    (void)arg;
    if (deflateReset(&((struct zobj *)obj)->zs) != Z_OK)
        abort();
}

static void zobj_fini(void *obj, void *arg)
{
    (void)arg;
    deflateEnd(&((struct zobj *)obj)->zs);
}

static const zp_obj_type zobj_type = {.struct_size = sizeof(zp_obj_type),
                                      .size = sizeof(struct zobj),
                                      .align = 0,
                                      .init = zobj_init,
                                      .reset = zobj_reset,
                                      .fini = zobj_fini};
#endif

/* ------------------------------------------------------ measured loops */

typedef struct {
    zp_pool *pool; /* first: obj_open sets it */
    const zp_obj_type *type;
} obj_ctx;

/* One operation = one object got, one field written, the object put back
 * (the pool runs reset, if any). */
static NOINLINE void small_pool_fn(void *p, uint64_t n)
{
    obj_ctx *c = p;
    for (uint64_t i = 0; i < n; i++) {
        struct small_obj *o = small_get(c->pool);
        if (__builtin_expect(o == NULL, 0))
            abort();
        ((volatile struct small_obj *)o)->state = (uint32_t)i;
        ZPB_ESCAPE(o);
        small_put(c->pool, o);
    }
}

/* The same without a pool: malloc, init, the field, free. */
static NOINLINE void small_malloc_fn(void *p, uint64_t n)
{
    (void)p;
    for (uint64_t i = 0; i < n; i++) {
        struct small_obj *o = malloc(sizeof *o);
        if (__builtin_expect(o == NULL || small_init(o, NULL) != 0, 0))
            abort();
        ((volatile struct small_obj *)o)->state = (uint32_t)i;
        ZPB_ESCAPE(o);
        free(o);
    }
}

#ifdef ZPB_HAVE_ZLIB
static NOINLINE void zobj_pool_fn(void *p, uint64_t n)
{
    obj_ctx *c = p;
    for (uint64_t i = 0; i < n; i++) {
        struct zobj *o = zobj_get(c->pool);
        if (__builtin_expect(o == NULL, 0))
            abort();
        ((volatile struct zobj *)o)->uses = i;
        ZPB_ESCAPE(o);
        zobj_put(c->pool, o); /* deflateReset */
    }
}

static NOINLINE void zobj_malloc_fn(void *p, uint64_t n)
{
    (void)p;
    for (uint64_t i = 0; i < n; i++) {
        struct zobj *o = malloc(sizeof *o);
        if (__builtin_expect(o == NULL || zobj_init(o, NULL) != 0, 0))
            abort();
        ((volatile struct zobj *)o)->uses = i;
        ZPB_ESCAPE(o);
        zobj_fini(o, NULL);
        free(o);
    }
}
#endif

/* A fresh object pool (default config) for each layout of compare_run. */
static void obj_open(variant *v)
{
    obj_ctx *c = v->ctx;
    int rc = zp_objpool_create(NULL, c->type, &c->pool);
    if (rc != 0) {
        fprintf(stderr, "zp_bench_objects: zp_objpool_create: %s\n",
                zp_strerror(rc));
        exit(2);
    }
    v->stats = c->pool;
}

static void obj_close(variant *v)
{
    obj_ctx *c = v->ctx;
    zp_pool_destroy(c->pool); /* fini runs for every idle object */
    c->pool = NULL;
    v->stats = NULL;
}

/* ------------------------------------------------------------- scenarios */

static long minflt_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* Page faults per operation of fn, after a warm-up (untimed, outside the
 * comparison): what the malloc side's cost is mostly made of when the
 * allocator gives the memory back between operations. */
static double faults_per_op(void (*fn)(void *, uint64_t), void *ctx)
{
    const uint64_t n = 64;
    fn(ctx, n);
    long f0 = minflt_now();
    fn(ctx, n);
    return (double)(minflt_now() - f0) / (double)n;
}

/* Pool (variant 0, the baseline) against malloc (variant 1), interleaved;
 * `more` gets the per-round ratio malloc / pool. */
static void obj_compare(const char *scenario, const zp_obj_type *type,
                        void (*pool_fn)(void *, uint64_t),
                        void (*malloc_fn)(void *, uint64_t), const char *what)
{
    obj_ctx c = {NULL, type};
    variant v[2];
    memset(v, 0, sizeof v);
    v[0] = (variant){.name = "pool", .config = "default", .backend = "zeropool",
                     .fn = pool_fn, .ctx = &c, .per_iter = 1,
                     .open = obj_open, .close = obj_close};
    v[1] = (variant){.name = "malloc", .config = "default", .backend = "malloc",
                     .competitor = malloc_name(), .fn = malloc_fn, .ctx = NULL,
                     .per_iter = 1};
    compare_run(v, 2, harness.reps, OBJ_LAYOUTS);
    int need = harness.reps * OBJ_LAYOUTS;

    /* round k of both variants sits at index k until compare_emit sorts */
    series ratio = {0};
    for (int k = 0; k < v[0].s.n && k < MAX_REPS * 4; k++)
        if (v[0].s.v[k] > 0)
            ratio.v[ratio.n++] = v[1].s.v[k] / v[0].s.v[k];
    ratio.attempts = v[0].s.attempts;
    ratio.worst_cpu = v[0].s.worst_cpu;
    summary r = summarize_n(&ratio, need);
    variant probe = {.ctx = &c};
    obj_open(&probe);
    double pool_flt = faults_per_op(pool_fn, &c);
    obj_close(&probe);
    double malloc_flt = faults_per_op(malloc_fn, NULL);
    char more[512];
    int k = snprintf(more, sizeof more,
                     ",\"object\":\"%s\",\"object_size\":%zu,\"align\":%zu,"
                     "\"minflt_per_op\":{\"pool\":%.3g,\"malloc\":%.3g}",
                     what, type->size, type->align, pool_flt, malloc_flt);
    if (r.refused)
        snprintf(more + k, sizeof more - (size_t)k, ",\"ratio\":null");
    else
        snprintf(more + k, sizeof more - (size_t)k,
                 ",\"ratio\":{\"median\":%.6g,\"min\":%.6g,\"max\":%.6g}",
                 r.median, r.min, r.max);
    compare_emit(scenario, type->size, v, 2, need, "ns/op", more);
    if (!r.refused)
        fprintf(stderr, "  %-12s malloc / pool: %.2fx [%.2f-%.2f]\n", scenario,
                r.median, r.min, r.max);
}

static void sc_objects_trivial(void)
{
    obj_compare("objects_trivial", &small_type, small_pool_fn, small_malloc_fn,
                "200-byte struct, trivial init, no reset");
}

static void sc_objects_zlib(void)
{
#ifdef ZPB_HAVE_ZLIB
    obj_compare("objects_zlib", &zobj_type, zobj_pool_fn, zobj_malloc_fn,
                "z_stream: deflateInit2 (level 1, windowBits 31, memLevel 8), "
                "reset deflateReset, fini deflateEnd");
#else
    /* never a number: the row says why it is missing */
    summary sm = {.median = NAN, .min = NAN, .max = NAN};
    snprintf(sm.note, sizeof sm.note,
             "skipped: zlib was not found when bench/ was configured "
             "(Debian: zlib1g-dev)");
    const char *extra = ",\"skipped\":true";
    emit_line("objects_zlib", 0, 1, "zeropool", "zeropool", "pool", "default",
              "ns/op", &sm, NULL, 0, extra);
    emit_line("objects_zlib", 0, 1, malloc_name(), "malloc", "malloc",
              "default", "ns/op", &sm, NULL, 0, extra);
#endif
}

/* Packing: PACK_LIVE live 200-byte objects (align 8); zeropool's
 * bytes_reserved over the bytes of the objects, and glibc's bytes in use
 * (mallinfo2: chunks with their headers, mapped chunks) for as many
 * malloc(200). Counts, not times: no repetitions. */
static void sc_objects_packing(void)
{
    void **objs = malloc(PACK_LIVE * sizeof *objs);
    if (objs == NULL)
        die("malloc");
    const double bytes = (double)PACK_LIVE * (double)sizeof(struct small_obj);
    char extra[512];

    zp_pool *pool;
    int rc = zp_objpool_create(NULL, &small_type, &pool);
    if (rc != 0) {
        fprintf(stderr, "zp_bench_objects: zp_objpool_create: %s\n",
                zp_strerror(rc));
        exit(2);
    }
    for (int i = 0; i < PACK_LIVE; i++)
        if ((objs[i] = small_get(pool)) == NULL)
            die("small_get");
    zp_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    if (zp_stats_read(pool, &st) != 0)
        die("zp_stats_read");
    summary sm = {0};
    sm.median = sm.min = sm.max = (double)st.bytes_reserved / bytes;
    snprintf(extra, sizeof extra,
             ",\"live_objects\":%d,\"object_size\":%zu,\"align\":8,"
             "\"bytes_reserved\":%llu,\"bytes_outstanding\":%llu,"
             "\"bytes_objects\":%.0f,\"measure\":\"zp_stats.bytes_reserved\"",
             PACK_LIVE, sizeof(struct small_obj),
             (unsigned long long)st.bytes_reserved,
             (unsigned long long)st.bytes_outstanding, bytes);
    emit_line("objects_packing", sizeof(struct small_obj), 1, "zeropool",
              "zeropool", "live=100000", "default", "ratio", &sm, NULL,
              PACK_LIVE, extra);
    for (int i = 0; i < PACK_LIVE; i++)
        small_put(pool, objs[i]);
    zp_pool_destroy(pool);

    /* the same count of malloc(200), with glibc's own accounting */
    struct mallinfo2 m0 = mallinfo2();
    for (int i = 0; i < PACK_LIVE; i++)
        if ((objs[i] = malloc(sizeof(struct small_obj))) == NULL)
            die("malloc");
    struct mallinfo2 m1 = mallinfo2();
    double used = (double)(m1.uordblks - m0.uordblks) +
                  (double)(m1.hblkhd - m0.hblkhd);
    summary sg = {0};
    sg.median = sg.min = sg.max = used / bytes;
    if (strcmp(malloc_name(), "glibc") != 0) { /* mallinfo2 is glibc's */
        sg.median = sg.min = sg.max = NAN;
        snprintf(sg.note, sizeof sg.note,
                 "not measured: mallinfo2 describes glibc malloc only");
    }
    snprintf(extra, sizeof extra,
             ",\"live_objects\":%d,\"object_size\":%zu,\"bytes_used\":%.0f,"
             "\"bytes_objects\":%.0f,\"measure\":\"mallinfo2 uordblks+hblkhd\"",
             PACK_LIVE, sizeof(struct small_obj), used, bytes);
    emit_line("objects_packing", sizeof(struct small_obj), 1, malloc_name(),
              "malloc", "live=100000", "default", "ratio", &sg, NULL,
              PACK_LIVE, extra);
    for (int i = 0; i < PACK_LIVE; i++)
        free(objs[i]);
    free(objs);
}

static void run(void)
{
    sc_objects_trivial();
    sc_objects_zlib();
    sc_objects_packing();
}

int main(int argc, char **argv)
{
    return harness_main(argc, argv, "zp_bench_objects", "objects", run);
}
