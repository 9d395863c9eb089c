/*
 * The harness's object-pool part: the stride of a type and the counting
 * object type, whose init, reset and fini count every call, stamp and
 * check each object's life, and fail or call hooks on demand (zp_test.h).
 * Stats invariants of object pools are with the others in zp_test_pool.c.
 */
#include "zp_test.h"

#include <stdalign.h>

size_t zpt_obj_stride(const zp_obj_type *type)
{
    size_t align = type->align ? type->align : alignof(max_align_t);
    return (type->size + align - 1) / align * align;
}

/* Every byte non-zero, so even a 1-byte object's stamp differs from the
 * zero bytes of fresh memory; the "finalised" stamp differs from it in
 * every byte. */
static uint64_t stamp_of(const zpt_objtype *ot, const void *obj)
{
    uint64_t x = ot->mark ^ ((uint64_t)(uintptr_t)obj * 0x9E3779B97F4A7C15ull);
    x ^= x >> 31;
    return x | 0x0101010101010101ull;
}

static size_t stamp_len(const zpt_objtype *ot)
{
    return ot->type.size < ZPT_OBJ_STAMP ? ot->type.size : ZPT_OBJ_STAMP;
}

static int has_stamp(const zpt_objtype *ot, const void *obj, uint64_t v)
{
    return memcmp(obj, &v, stamp_len(ot)) == 0; /* little or big endian: same bytes */
}

int zpt_obj_constructed(const zpt_objtype *ot, const void *obj)
{
    return has_stamp(ot, obj, stamp_of(ot, obj));
}

/* Counts a broken life cycle; the first one is described. */
static void bad(zpt_objtype *ot, const char *what, const void *obj)
{
    atomic_fetch_add(&ot->bad, 1);
    if (atomic_exchange(&ot->bad_claimed, 1) == 0)
        snprintf(ot->bad_first, sizeof ot->bad_first, "%s (object %p)", what, obj);
}

static void check_aligned(zpt_objtype *ot, const char *fn, const void *obj)
{
    size_t align = ot->type.align ? ot->type.align : alignof(max_align_t);
    if ((uintptr_t)obj % align != 0) {
        char what[64];
        snprintf(what, sizeof what, "%s on an object not aligned to %zu", fn, align);
        bad(ot, what, obj);
    }
}

static int count_init(void *obj, void *arg)
{
    zpt_objtype *ot = (zpt_objtype *)arg;
    unsigned long k = atomic_fetch_add(&ot->init_calls, 1) + 1;
    unsigned long every = atomic_load(&ot->fail_every);
    uint64_t live = stamp_of(ot, obj);
    int rc = 0;
    check_aligned(ot, "init", obj);
    if (has_stamp(ot, obj, live))
        bad(ot, "init on an object already constructed", obj);
    if (every && k % every == 0)
        rc = atomic_load(&ot->fail_errno);
    else if (ot->on_init)
        rc = ot->on_init(obj, ot);
    if (rc != 0) {
        atomic_fetch_add(&ot->init_fails, 1);
        return rc;
    }
    memcpy(obj, &live, stamp_len(ot));
    atomic_fetch_add(&ot->inits, 1);
    return 0;
}

static void count_reset(void *obj, void *arg)
{
    zpt_objtype *ot = (zpt_objtype *)arg;
    atomic_fetch_add(&ot->resets, 1);
    check_aligned(ot, "reset", obj);
    if (ot->type.init && !zpt_obj_constructed(ot, obj))
        bad(ot, "reset on an object that is not constructed", obj);
    if (ot->on_reset)
        ot->on_reset(obj, ot);
}

static void count_fini(void *obj, void *arg)
{
    zpt_objtype *ot = (zpt_objtype *)arg;
    atomic_fetch_add(&ot->finis, 1);
    check_aligned(ot, "fini", obj);
    if (ot->type.init && !zpt_obj_constructed(ot, obj))
        bad(ot, "fini on an object that is not constructed", obj);
    if (ot->on_fini)
        ot->on_fini(obj, ot);
    if (ot->type.init) {
        uint64_t dead = ~stamp_of(ot, obj);
        memcpy(obj, &dead, stamp_len(ot));
    }
}

zpt_objtype *zpt_objtype_new(size_t size, size_t align, unsigned which)
{
    static atomic_ulong instances;
    zpt_objtype *ot = (zpt_objtype *)calloc(1, sizeof(*ot));
    if (ot == NULL)
        abort();
    ot->type.struct_size = sizeof(ot->type);
    ot->type.size = size;
    ot->type.align = align;
    ot->type.init = (which & ZPT_OBJ_INIT) ? count_init : NULL;
    ot->type.reset = (which & ZPT_OBJ_RESET) ? count_reset : NULL;
    ot->type.fini = (which & ZPT_OBJ_FINI) ? count_fini : NULL;
    ot->type.arg = ot;
    ot->mark = 0xC0DEFACE00000000ull ^ ((uint64_t)(atomic_fetch_add(&instances, 1) + 1) << 8);
    atomic_init(&ot->fail_errno, EMFILE);
    return ot;
}

void zpt_objtype_free(zpt_objtype *ot)
{
    free(ot);
}

typedef struct scan {
    const zpt_objtype *ot;
    size_t stride, found;
} scan;

static int scan_region(void *ptr, size_t size, void *arg)
{
    scan *sc = (scan *)arg;
    unsigned char *p = (unsigned char *)ptr;
    size_t off;
    for (off = 0; off + sc->ot->type.size <= size; off += sc->stride)
        sc->found += (size_t)zpt_obj_constructed(sc->ot, p + off);
    return 0;
}

size_t zpt_obj_constructed_in(zpt_provider *pv, const zpt_objtype *ot)
{
    scan sc;
    sc.ot = ot;
    sc.stride = zpt_obj_stride(&ot->type);
    sc.found = 0;
    zpt_provider_each(pv, scan_region, &sc);
    return sc.found;
}

void zpt_assert_objtype_clean_at(const char *file, int line, zpt_objtype *ot)
{
    unsigned long n = atomic_load(&ot->bad);
    if (n != 0) {
        zpt_objtype_print("object type", ot);
        zpt_fail_at(file, line, "%lu broken object life cycles; the first: %s", n,
                    ot->bad_first);
    }
}

void zpt_objtype_print(const char *what, zpt_objtype *ot)
{
    fprintf(stderr,
            "# %s: objects of %zu bytes (align %zu): init calls %lu, inits %lu, init "
            "failures %lu, resets %lu, finis %lu, broken %lu\n",
            what, ot->type.size, ot->type.align, atomic_load(&ot->init_calls),
            atomic_load(&ot->inits), atomic_load(&ot->init_fails), atomic_load(&ot->resets),
            atomic_load(&ot->finis), atomic_load(&ot->bad));
}
