/* Zero allocations: every format x direction x one-shot and streaming x 1 KiB, 64 KiB, 1 MiB and mixed sizes — once warm, 0 heap calls anywhere in the process and 0 provider maps. */
#include "zp_test_codec.h"

#include <zlib.h>

/*
 * The codecs cover every engine in every format: gzip, deflate and zlib at
 * level 1 (ISA-L compression) and level 6 (libdeflate one-shot, zlib
 * streaming compression); decompression by libdeflate (one-shot) and zlib
 * (streaming); zstd and lz4 both ways. Each of the 4 context kinds of each
 * codec (one-shot / streaming x compress / decompress) serves 1 KiB,
 * 64 KiB and 1 MiB inputs and more than 200 calls of mixed sizes (100 B ..
 * 30 KiB, interleaved: zstd's shrink trap needs a workspace 3x too big for
 * 128 calls in a row). The whole sequence runs once to warm up, then again
 * with counting armed: no malloc/calloc/realloc/free in the process
 * (interposed: calls from libz, libzstd, liblz4, libdeflate and libisal
 * are seen), no mmap of the library's own code (--wrap), no provider map.
 * Under valgrind the 1 MiB and 64 KiB inputs run fewer times and the mixed
 * sizes stop at 10 KB (every combination stays, so do the 10,000
 * operations and the mixed calls above 200 per context). valgrind must run with
 * --soname-synonyms=somalloc=nouserintercepts (the valgrind target does):
 * otherwise it replaces this executable's malloc with its own and nothing
 * is counted, which the check of zlib's mallocs below reports.
 */

enum { SZ_1K, SZ_64K, SZ_1M, NFIXED };
static const size_t fixed_size[NFIXED] = {1024, 65536, 1048576};
#define NMIX 6
static const size_t mix_size[NMIX] = {100, 300, 1000, 3000, 10000, 30000};
#define MIX_CALLS 210

typedef struct combo {
    int format, level;
    const char *engines[4]; /* expected: C1, CS, D1, DS */
    zp_codec *c;
    zpt_bytes comp[NFIXED + NMIX]; /* one-shot compressed inputs */
} combo;

static combo combos[] = {
    {ZP_CODEC_GZIP, 1, {"isal", "isal", "libdeflate", "zlib"}, NULL, {{0}}},
    {ZP_CODEC_GZIP, 6, {"libdeflate", "zlib", "libdeflate", "zlib"}, NULL, {{0}}},
    {ZP_CODEC_DEFLATE, 1, {"isal", "isal", "libdeflate", "zlib"}, NULL, {{0}}},
    {ZP_CODEC_DEFLATE, 6, {"libdeflate", "zlib", "libdeflate", "zlib"}, NULL, {{0}}},
    {ZP_CODEC_ZLIB, 1, {"isal", "isal", "libdeflate", "zlib"}, NULL, {{0}}},
    {ZP_CODEC_ZLIB, 6, {"libdeflate", "zlib", "libdeflate", "zlib"}, NULL, {{0}}},
    {ZP_CODEC_ZSTD, 3, {"zstd", "zstd", "zstd", "zstd"}, NULL, {{0}}},
    {ZP_CODEC_LZ4, 1, {"lz4", "lz4", "lz4", "lz4"}, NULL, {{0}}},
};
#define NCOMBOS (sizeof combos / sizeof combos[0])

static const int kind_what[4] = {ZP_CODEC_COMPRESS, ZP_CODEC_COMPRESS | ZP_CODEC_STREAMING,
                                 ZP_CODEC_DECOMPRESS, ZP_CODEC_DECOMPRESS | ZP_CODEC_STREAMING};

static int at_combo, at_kind, at_size; /* where the last operation ran */
static unsigned char *text; /* the uncompressed data: every input is a prefix */
static size_t text_len;

/* One operation, allocation-free itself: returns 0 or a description of the
 * failure (a static string). */
static const char *op(combo *cb, int kind, int size_idx, uint64_t *rng)
{
    zp_pool *pool = zp_codec_pool(cb->c);
    size_t len = size_idx < NFIXED ? fixed_size[size_idx] : mix_size[size_idx - NFIXED];
    const zpt_bytes *comp = &cb->comp[size_idx];
    void *o;
    at_combo = (int)(cb - combos);
    at_kind = kind;
    at_size = (int)len;
    size_t n;
    int err;

    switch (kind) {
    case 0:
        err = zp_compress(cb->c, text, len, &o, &n);
        if (err != 0 || o == NULL || n == 0)
            return "zp_compress failed";
        zp_put(pool, o);
        return NULL;
    case 2:
        err = zp_decompress(cb->c, comp->p, comp->len, &o, &n);
        if (err != 0 || n != len || memcmp(o, text, len) != 0) {
            if (getenv("ZPT_DEBUG"))
                fprintf(stderr, "err %d (%s) n %zu len %zu\n", err, zp_codec_strerror(err), n, len);
            return "zp_decompress failed or gave other bytes";
        }
        zp_put(pool, o);
        return NULL;
    default: {
        int dir = kind == 1 ? ZP_ZSTREAM_COMPRESS : ZP_ZSTREAM_DECOMPRESS;
        const unsigned char *src = dir == ZP_ZSTREAM_COMPRESS ? text : comp->p;
        size_t src_len = dir == ZP_ZSTREAM_COMPRESS ? len : comp->len, got = 0;
        zp_zstream *zs;
        void *buf;
        size_t blen, used;
        if (zp_zstream_open(cb->c, dir, &zs) != 0)
            return "zp_zstream_open failed";
        while (src_len > 0) {
            size_t piece = 1 + (size_t)(zpt_rand(rng) % 16384);
            if (piece > src_len)
                piece = src_len;
            if (zp_zstream_write(zs, src, piece, &used, &buf, &blen) != 0) {
                zp_zstream_close(zs);
                return "zp_zstream_write failed";
            }
            if (buf != NULL) {
                if (dir == ZP_ZSTREAM_DECOMPRESS && (got + blen > len ||
                                                     memcmp(buf, text + got, blen) != 0)) {
                    zp_put(pool, buf);
                    zp_zstream_close(zs);
                    return "streamed decompression gave other bytes";
                }
                got += blen;
                zp_put(pool, buf);
            }
            src += used;
            src_len -= used;
        }
        do {
            err = zp_zstream_finish(zs, &buf, &blen);
            if (buf != NULL) {
                if (dir == ZP_ZSTREAM_DECOMPRESS &&
                    (got + blen > len || memcmp(buf, text + got, blen) != 0))
                    err = -1000;
                got += blen;
                zp_put(pool, buf);
            }
        } while (err == 1);
        zp_zstream_close(zs);
        if (err != 0)
            return "zp_zstream_finish failed";
        if (dir == ZP_ZSTREAM_DECOMPRESS ? got != len : got == 0)
            return "streamed output has the wrong length";
        return NULL;
    }
    }
}

typedef struct plan {
    int n_fixed[NFIXED];
    int n_mix;
    int n_mix_sizes; /* the first n of mix_size */
} plan;

/* Runs the plan on every combo and kind; returns the number of operations,
 * or fails the test (outside counting, it may print). */
static unsigned long run_all(const plan *pl, uint64_t seed, const char **failure)
{
    unsigned long ops = 0;
    for (size_t ci = 0; ci < NCOMBOS; ci++) {
        for (int kind = 0; kind < 4; kind++) {
            uint64_t rng = seed + ci * 16 + (uint64_t)kind;
            /* fixed sizes first, then mixed sizes interleaved at random */
            for (int s = 0; s < NFIXED; s++)
                for (int i = 0; i < pl->n_fixed[s]; i++, ops++)
                    if ((*failure = op(&combos[ci], kind, s, &rng)) != NULL)
                        goto fail;
            for (int i = 0; i < pl->n_mix; i++, ops++) {
                int s = NFIXED + (int)(zpt_rand(&rng) % (uint64_t)pl->n_mix_sizes);
                if ((*failure = op(&combos[ci], kind, s, &rng)) != NULL)
                    goto fail;
            }
        }
    }
    return ops;
fail:
    return ops;
}

static void test_zero_alloc(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.pv = pv, .max_class = 64 * ZPT_MiB);
    int valgrind = zpt_under_valgrind();
    plan pl = {{103, valgrind ? 2 : 8, valgrind ? 1 : 2}, MIX_CALLS, valgrind ? NMIX - 1 : NMIX};
    const char *failure = NULL;
    unsigned long ops;
    size_t maps_before, unmaps_before;
    zpt_heap_counts heap;
    zpt_alloc_counts wrapped;
    (void)state;

    text_len = fixed_size[SZ_1M];
    text = zpt_text(text_len, 42);

    /* codecs, the expected engine for every kind, and compressed inputs */
    for (size_t ci = 0; ci < NCOMBOS; ci++) {
        combo *cb = &combos[ci];
        cb->c = zpt_codec_new(pool, cb->format, cb->level, 0, pv, 0);
        for (int k = 0; k < 4; k++) {
            const char *e = zp_codec_engine(cb->c, kind_what[k]);
            if (e == NULL || strcmp(e, cb->engines[k]) != 0)
                zpt_fail("%s level %d kind %d: engine %s, expected %s (an engine was not built?)",
                         zpt_format_name(cb->format), cb->level, k, e ? e : "none",
                         cb->engines[k]);
        }
        for (int s = 0; s < NFIXED + NMIX; s++) {
            size_t len = s < NFIXED ? fixed_size[s] : mix_size[s - NFIXED];
            memset(&cb->comp[s], 0, sizeof cb->comp[s]);
            assert_int_equal(zpt_oneshot(cb->c, ZP_ZSTREAM_COMPRESS, text, len, &cb->comp[s]), 0);
        }
    }

    /* the interposer sees what shared libraries allocate: zlib's deflateInit2
     * with its default allocator makes several mallocs */
    {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        zpt_heap_count_start();
        assert_int_equal(deflateInit(&zs, 1), Z_OK);
        deflateEnd(&zs);
        heap = zpt_heap_count_stop();
        if (heap.allocs < 4 || heap.frees < 4)
            zpt_fail("interposition does not see libz.so's mallocs (%lu allocs, %lu frees)",
                     heap.allocs, heap.frees);
    }

    /* warm-up: every context made, every size seen, every class cached */
    ops = run_all(&pl, 1, &failure);
    if (failure != NULL)
        zpt_fail("warm-up: %s (%s level %d, kind %d, %d bytes)", failure,
                 zpt_format_name(combos[at_combo].format), combos[at_combo].level, at_kind, at_size);

    maps_before = atomic_load(&pv->maps);
    unmaps_before = atomic_load(&pv->unmaps);
    zpt_alloc_count_start();
    zpt_heap_count_start();
    ops = run_all(&pl, 2, &failure);
    heap = zpt_heap_count_stop();
    wrapped = zpt_alloc_count_stop();

    if (failure != NULL)
        zpt_fail("measured run: %s (%s level %d, kind %d, %d bytes)", failure,
                 zpt_format_name(combos[at_combo].format), combos[at_combo].level, at_kind, at_size);
    fprintf(stderr, "%lu operations over %zu codecs x 4 kinds: %lu heap allocations, %lu frees, "
            "%lu mmap-family calls, %zu provider maps, %zu unmaps\n", ops, NCOMBOS, heap.allocs,
            heap.frees, wrapped.syscalls, atomic_load(&pv->maps) - maps_before,
            atomic_load(&pv->unmaps) - unmaps_before);
    assert_true(ops >= 10000);
    assert_int_equal(heap.allocs, 0);
    assert_int_equal(heap.frees, 0);
    assert_int_equal(wrapped.allocs, 0);
    assert_int_equal(wrapped.syscalls, 0);
    assert_int_equal(atomic_load(&pv->maps), maps_before);
    assert_int_equal(atomic_load(&pv->unmaps), unmaps_before);

    for (size_t ci = 0; ci < NCOMBOS; ci++) {
        for (int s = 0; s < NFIXED + NMIX; s++)
            zpt_bytes_free(&combos[ci].comp[s]);
        zp_codec_destroy(combos[ci].c);
    }
    zpt_assert_no_outstanding(pool);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_zero_alloc)};
    return ZPT_RUN(tests);
}
