/* The codec API: arguments, configuration, engines, detection, crc32, empty inputs, error details, and one codec shared by threads. */
#include "zp_test_codec.h"

#include <zlib.h>

static void test_config_errors(void **state)
{
    zp_pool *pool = ZPT_POOL();
    zp_codec_config cfg;
    zp_codec *c = (zp_codec *)&cfg;
    (void)state;

    zp_codec_config_init(&cfg, ZP_CODEC_GZIP);
    assert_int_equal(cfg.struct_size, sizeof cfg);
    assert_int_equal(cfg.level, 0);
    assert_int_equal(zp_codec_create(NULL, &cfg, &c), -EINVAL);
    assert_null(c);
    assert_int_equal(zp_codec_create(pool, NULL, &c), -EINVAL);
    assert_int_equal(zp_codec_create(pool, &cfg, NULL), -EINVAL);

    cfg.codec = 0;
    assert_int_equal(zp_codec_create(pool, &cfg, &c), -EINVAL);
    assert_true(zpt_contains_nocase(zp_codec_strerror(-EINVAL), "unknown codec"));
    cfg.codec = 6;
    assert_int_equal(zp_codec_create(pool, &cfg, &c), -EINVAL);
    for (int i = 0; i < ZPT_NFORMATS; i++) {
        zp_codec_config_init(&cfg, zpt_formats[i]);
        cfg.level = 13;
        if (zpt_formats[i] == ZP_CODEC_ZSTD)
            cfg.level = 23;
        assert_int_equal(zp_codec_create(pool, &cfg, &c), -EINVAL);
        assert_true(zpt_contains_nocase(zp_codec_strerror(-EINVAL), "level"));
        cfg.level = -1;
        if (zpt_formats[i] != ZP_CODEC_ZSTD) /* zstd's negative levels are its fast modes */
            assert_int_equal(zp_codec_create(pool, &cfg, &c), -EINVAL);
    }
    zp_codec_config_init(&cfg, ZP_CODEC_LZ4);
    cfg.stream_chunk = 100;
    assert_int_equal(zp_codec_create(pool, &cfg, &c), -EINVAL);
    zp_codec_config_init(&cfg, ZP_CODEC_ZSTD);
    cfg.max_window = 512;
    assert_int_equal(zp_codec_create(pool, &cfg, &c), -EINVAL);
    assert_true(zpt_contains_nocase(zp_codec_strerror(-EINVAL), "max_window"));
    zp_codec_config_init(&cfg, ZP_CODEC_LZ4);
    cfg.struct_size = 3;
    assert_int_equal(zp_codec_create(pool, &cfg, &c), -EINVAL);
    assert_true(zpt_contains_nocase(zp_codec_strerror(-EINVAL), "struct_size"));
    /* an older caller's struct (ends after max_output) is fine */
    zp_codec_config_init(&cfg, ZP_CODEC_LZ4);
    cfg.struct_size = offsetof(zp_codec_config, max_output) + sizeof(size_t);
    cfg.stream_chunk = 12345; /* beyond its size: ignored */
    assert_int_equal(zp_codec_create(pool, &cfg, &c), 0);
    zp_codec_destroy(c);
    zp_codec_destroy(NULL);
    zp_pool_destroy(pool);
}

static void test_null_arguments(void **state)
{
    zp_pool *pool = ZPT_POOL();
    zp_codec *c = zpt_codec_new(pool, ZP_CODEC_ZSTD, 0, 0, NULL, 0);
    void *o = (void *)1;
    size_t n = 1, used;
    zp_zstream *zs = (zp_zstream *)1;
    (void)state;

    assert_int_equal(zp_compress(NULL, "x", 1, &o, &n), -EINVAL);
    assert_null(o);
    assert_int_equal(n, 0);
    assert_int_equal(zp_compress(c, NULL, 1, &o, &n), -EINVAL);
    assert_int_equal(zp_compress(c, "x", 1, NULL, &n), -EINVAL);
    assert_int_equal(zp_decompress(c, "x", 1, &o, NULL), -EINVAL);
    assert_int_equal(zp_zstream_open(NULL, ZP_ZSTREAM_COMPRESS, &zs), -EINVAL);
    assert_null(zs);
    assert_int_equal(zp_zstream_open(c, 3, &zs), -EINVAL);
    assert_int_equal(zp_zstream_open(c, ZP_ZSTREAM_COMPRESS, NULL), -EINVAL);
    assert_int_equal(zp_zstream_write(NULL, "x", 1, &used, &o, &n), -EINVAL);
    assert_int_equal(zp_zstream_finish(NULL, &o, &n), -EINVAL);
    zp_zstream_close(NULL);
    assert_int_equal(zp_zstream_open(c, ZP_ZSTREAM_COMPRESS, &zs), 0);
    assert_int_equal(zp_zstream_write(zs, NULL, 1, &used, &o, &n), -EINVAL);
    assert_int_equal(zp_zstream_write(zs, "x", 1, NULL, &o, &n), -EINVAL);
    assert_int_equal(zp_zstream_finish(zs, NULL, &n), -EINVAL);
    zp_zstream_close(zs);
    assert_null(zp_codec_engine(NULL, ZP_CODEC_COMPRESS));
    assert_null(zp_codec_engine(c, 99));
    assert_null(zp_codec_pool(NULL));
    assert_ptr_equal(zp_codec_pool(c), pool);
    assert_int_equal(zp_zstream_total_in(NULL), 0);
    zp_codec_destroy(c);
    zpt_assert_no_outstanding(pool);
    zp_pool_destroy(pool);
}

static void test_engines(void **state)
{
    static const struct {
        int format, level;
        const char *c1, *cs, *d1, *ds;
    } want[] = {
        {ZP_CODEC_GZIP, 1, "isal", "isal", "libdeflate", "zlib"},
        {ZP_CODEC_GZIP, 3, "isal", "isal", "libdeflate", "zlib"},
        {ZP_CODEC_GZIP, 0, "libdeflate", "zlib", "libdeflate", "zlib"},
        {ZP_CODEC_DEFLATE, 12, "libdeflate", "zlib", "libdeflate", "zlib"},
        {ZP_CODEC_ZLIB, 2, "isal", "isal", "libdeflate", "zlib"},
        {ZP_CODEC_ZSTD, 0, "zstd", "zstd", "zstd", "zstd"},
        {ZP_CODEC_ZSTD, -5, "zstd", "zstd", "zstd", "zstd"},
        {ZP_CODEC_LZ4, 9, "lz4", "lz4", "lz4", "lz4"},
    };
    zp_pool *pool = ZPT_POOL();
    (void)state;
    for (int i = 0; i < ZPT_NFORMATS; i++)
        if (!zp_codec_available(zpt_formats[i]))
            zpt_fail("%s is not built (scripts/deps.sh installs every engine)",
                     zpt_format_name(zpt_formats[i]));
    assert_int_equal(zp_codec_available(0), 0);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        zp_codec *c = zpt_codec_new(pool, want[i].format, want[i].level, 0, NULL, 0);
        assert_string_equal(zp_codec_engine(c, ZP_CODEC_COMPRESS), want[i].c1);
        assert_string_equal(zp_codec_engine(c, ZP_CODEC_COMPRESS | ZP_CODEC_STREAMING), want[i].cs);
        assert_string_equal(zp_codec_engine(c, ZP_CODEC_DECOMPRESS), want[i].d1);
        assert_string_equal(zp_codec_engine(c, ZP_CODEC_DECOMPRESS | ZP_CODEC_STREAMING), want[i].ds);
        zp_codec_destroy(c);
    }
    zp_pool_destroy(pool);
}

static void test_detect_crc_empty(void **state)
{
    zp_pool *pool = ZPT_POOL();
    unsigned char *text = zpt_text(100000, 7);
    uint32_t ref = (uint32_t)crc32(0, text, 100000);
    (void)state;

    assert_int_equal(zp_codec_crc32(0, text, 100000), ref);
    assert_int_equal(zp_codec_crc32(zp_codec_crc32(0, text, 33333), text + 33333, 66667), ref);
    assert_int_equal(zp_codec_crc32(0, NULL, 0), 0);
    assert_int_equal(zp_codec_detect(NULL, 10), 0);
    assert_int_equal(zp_codec_detect("ab", 2), 0);

    for (int i = 0; i < ZPT_NFORMATS; i++) {
        int f = zpt_formats[i];
        zp_codec *c = zpt_codec_new(pool, f, 0, 0, NULL, 0);
        zpt_bytes comp = {0}, plain = {0};
        void *o = (void *)1;
        size_t n = 1;
        assert_int_equal(zpt_oneshot(c, ZP_ZSTREAM_COMPRESS, text, 100000, &comp), 0);
        if (f != ZP_CODEC_DEFLATE)
            assert_int_equal(zp_codec_detect(comp.p, comp.len), f);
        /* empty input compresses to a valid stream of nothing */
        comp.len = 0;
        assert_int_equal(zpt_oneshot(c, ZP_ZSTREAM_COMPRESS, "", 0, &comp), 0);
        assert_true(comp.len > 0);
        assert_int_equal(zp_decompress(c, comp.p, comp.len, &o, &n), 0);
        assert_null(o);
        assert_int_equal(n, 0);
        comp.len = 0;
        assert_int_equal(zpt_stream(c, ZP_ZSTREAM_COMPRESS, "", 0, 1, NULL, &comp), 0);
        assert_int_equal(zpt_stream(c, ZP_ZSTREAM_DECOMPRESS, comp.p, comp.len, 1, NULL, &plain), 0);
        assert_int_equal(plain.len, 0);
        /* empty compressed input: no member at all for the formats that
         * concatenate; one stream is required for zlib and deflate */
        if (f == ZP_CODEC_ZLIB || f == ZP_CODEC_DEFLATE) {
            assert_int_equal(zp_decompress(c, "", 0, &o, &n), -EBADMSG);
            assert_int_equal(zpt_stream(c, ZP_ZSTREAM_DECOMPRESS, "", 0, 1, NULL, NULL), -EBADMSG);
        } else {
            assert_int_equal(zp_decompress(c, "", 0, &o, &n), 0);
            assert_null(o);
            assert_int_equal(zpt_stream(c, ZP_ZSTREAM_DECOMPRESS, "", 0, 1, NULL, NULL), 0);
        }
        /* a failure explains itself */
        assert_int_equal(zp_decompress(c, "not compressed at all", 21, &o, &n), -EBADMSG);
        assert_null(o);
        assert_string_not_equal(zp_codec_strerror(-EBADMSG), "corrupt or truncated data");
        assert_string_equal(zp_strerror(-EBADMSG), zp_codec_strerror(-EBADMSG));
        zpt_bytes_free(&comp);
        zpt_bytes_free(&plain);
        zp_codec_destroy(c);
    }
    zpt_assert_no_outstanding(pool);
    zp_pool_destroy(pool);
    free(text);
}

/* one codec per format, shared by threads doing round trips */
typedef struct shared {
    zp_codec *codecs[ZPT_NFORMATS];
    const unsigned char *text;
    atomic_int failures;
} shared;

static shared g_shared;

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t rng = 1000 + (uint64_t)id;
    for (int round = 0; round < 12; round++) {
        zp_codec *c = g_shared.codecs[(id + round) % ZPT_NFORMATS];
        size_t len = 1 + (size_t)(zpt_rand(&rng) % 100000);
        zpt_bytes comp = {0}, plain = {0};
        int err = round % 2 ? zpt_oneshot(c, ZP_ZSTREAM_COMPRESS, g_shared.text, len, &comp)
                            : zpt_stream(c, ZP_ZSTREAM_COMPRESS, g_shared.text, len, 0, &rng, &comp);
        if (err == 0)
            err = round % 3 ? zpt_oneshot(c, ZP_ZSTREAM_DECOMPRESS, comp.p, comp.len, &plain)
                            : zpt_stream(c, ZP_ZSTREAM_DECOMPRESS, comp.p, comp.len, 0, &rng, &plain);
        if (err != 0 || plain.len != len || memcmp(plain.p, g_shared.text, len) != 0)
            atomic_fetch_add(&g_shared.failures, 1);
        zpt_bytes_free(&comp);
        zpt_bytes_free(&plain);
    }
    return NULL;
}

static void test_threads(void **state)
{
    zp_pool *pool = ZPT_POOL();
    unsigned char *text = zpt_text(100000, 3);
    pthread_t t[4];
    (void)state;
    g_shared.text = text;
    atomic_store(&g_shared.failures, 0);
    for (int i = 0; i < ZPT_NFORMATS; i++)
        g_shared.codecs[i] = zpt_codec_new(pool, zpt_formats[i], i % 2 ? 1 : 0, 0, NULL, 0);
    zpt_threads_start(t, 4, worker, NULL, 0);
    zpt_threads_join(t, 4);
    assert_int_equal(atomic_load(&g_shared.failures), 0);
    for (int i = 0; i < ZPT_NFORMATS; i++)
        zp_codec_destroy(g_shared.codecs[i]);
    zpt_assert_no_outstanding(pool);
    zp_pool_destroy(pool);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_engines),
        cmocka_unit_test(test_detect_crc_empty),
        cmocka_unit_test(test_threads),
    };
    return ZPT_RUN(tests);
}
