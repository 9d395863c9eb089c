/* Bad input: truncation at every byte gives -EBADMSG, corrupt bytes give an error and never a crash, trailing garbage gives -EBADMSG, a 1 GiB zero stream stops at max_output with -EFBIG, an exhausted budget gives -ENOBUFS. */
#include "zp_test_codec.h"

#define LZ4F_STATIC_LINKING_ONLY
#include <lz4frame.h>
#include <zlib.h>

/* one-shot and streaming decompression of src: both results */
static void both(zp_codec *c, const void *src, size_t len, int *one, int *str, zpt_bytes *out)
{
    uint64_t rng = len;
    *one = zpt_oneshot(c, ZP_ZSTREAM_DECOMPRESS, src, len, out);
    *str = zpt_stream(c, ZP_ZSTREAM_DECOMPRESS, src, len, 0, &rng, NULL);
}

static void test_truncation(void **state)
{
    zp_pool *pool = ZPT_POOL();
    unsigned char *text = zpt_text(3000, 21);
    (void)state;
    for (int i = 0; i < ZPT_NFORMATS; i++) {
        int f = zpt_formats[i];
        zp_codec *c = zpt_codec_new(pool, f, 0, 0, NULL, 4096);
        for (int mode = 0; mode < 2; mode++) {
            zpt_bytes comp = {0};
            uint64_t rng = 1;
            size_t k0 = f == ZP_CODEC_ZLIB || f == ZP_CODEC_DEFLATE ? 0 : 1;
            assert_int_equal(mode ? zpt_stream(c, ZP_ZSTREAM_COMPRESS, text, 3000, 0, &rng, &comp)
                                  : zpt_oneshot(c, ZP_ZSTREAM_COMPRESS, text, 3000, &comp), 0);
            for (size_t k = k0; k < comp.len; k++) {
                int one, str;
                both(c, comp.p, k, &one, &str, NULL);
                if (one != -EBADMSG || str != -EBADMSG)
                    zpt_fail("%s: %s-compressed stream of %zu bytes cut at %zu: one-shot %d, "
                             "streaming %d, expected -EBADMSG", zpt_format_name(f),
                             mode ? "stream" : "one-shot", comp.len, k, one, str);
            }
            zpt_bytes_free(&comp);
        }
        zp_codec_destroy(c);
    }
    zpt_assert_no_outstanding(pool);
    zp_pool_destroy(pool);
    free(text);
}

static void test_corruption(void **state)
{
    zp_pool *pool = ZPT_POOL();
    unsigned char *text = zpt_text(20000, 22);
    int rounds = zpt_under_valgrind() ? 60 : 400;
    (void)state;
    for (int i = 0; i < ZPT_NFORMATS; i++) {
        int f = zpt_formats[i];
        zp_codec *c = zpt_codec_new(pool, f, 0, 4 * ZPT_MiB, NULL, 4096);
        zpt_bytes comp = {0};
        uint64_t rng = 77 + (uint64_t)f;
        int errors = 0;
        assert_int_equal(zpt_oneshot(c, ZP_ZSTREAM_COMPRESS, text, 20000, &comp), 0);
        for (int r = 0; r < rounds; r++) {
            unsigned char *bad = malloc(comp.len);
            int one, str, flips = 1 + (int)(zpt_rand(&rng) % 4);
            memcpy(bad, comp.p, comp.len);
            for (int k = 0; k < flips; k++)
                bad[zpt_rand(&rng) % comp.len] ^= (unsigned char)(1 + zpt_rand(&rng) % 255);
            both(c, bad, comp.len, &one, &str, NULL);
            for (int k = 0; k < 2; k++) {
                int e = k ? str : one;
                if (e != 0 && e != -EBADMSG && e != -EFBIG && e != -ENOTSUP)
                    zpt_fail("%s: corrupt input gave %d (%s)", zpt_format_name(f), e,
                             zp_codec_strerror(e));
                errors += e != 0;
            }
            free(bad);
        }
        /* with checksums nearly every corruption is caught; raw deflate has none */
        if (f != ZP_CODEC_DEFLATE && errors < rounds)
            zpt_fail("%s: only %d of %d corrupt inputs were rejected", zpt_format_name(f),
                     errors, 2 * rounds);
        zpt_bytes_free(&comp);
        zp_codec_destroy(c);
    }
    zpt_assert_no_outstanding(pool);
    zp_pool_destroy(pool);
    free(text);
}

static void test_trailing_garbage(void **state)
{
    zp_pool *pool = ZPT_POOL();
    unsigned char *text = zpt_text(5000, 23);
    (void)state;
    for (int i = 0; i < ZPT_NFORMATS; i++) {
        int f = zpt_formats[i], one, str;
        int concat = f == ZP_CODEC_GZIP || f == ZP_CODEC_ZSTD || f == ZP_CODEC_LZ4;
        zp_codec *c = zpt_codec_new(pool, f, 1, 0, NULL, 4096);
        zpt_bytes comp = {0};
        static const char *tails[] = {"garbage!", "\0", "\x1f\x8b\x08", "\x28\xb5\x2f",
                                      "\x04\x22\x4d\x18\x64"};
        static const size_t tail_len[] = {8, 1, 3, 3, 5};
        assert_int_equal(zpt_oneshot(c, ZP_ZSTREAM_COMPRESS, text, 5000, &comp), 0);
        size_t base = comp.len;
        for (size_t t = 0; t < sizeof tails / sizeof *tails; t++) {
            comp.len = base;
            zpt_bytes_add(&comp, tails[t], tail_len[t]);
            both(c, comp.p, comp.len, &one, &str, NULL);
            if (one != -EBADMSG || str != -EBADMSG)
                zpt_fail("%s + %zu bytes of garbage (#%zu): one-shot %d, streaming %d, expected "
                         "-EBADMSG", zpt_format_name(f), tail_len[t], t, one, str);
        }
        /* a second complete member/frame: decoded for gzip, zstd, lz4; garbage
         * for zlib and deflate (one stream) */
        comp.len = base;
        {
            unsigned char *copy = malloc(base);
            memcpy(copy, comp.p, base);
            zpt_bytes_add(&comp, copy, base); /* not from itself: add may move it */
            free(copy);
        }
        {
            zpt_bytes plain = {0};
            both(c, comp.p, comp.len, &one, &str, &plain);
            if (concat) {
                assert_int_equal(one, 0);
                assert_int_equal(str, 0);
                assert_int_equal(plain.len, 10000);
                assert_memory_equal(plain.p + 5000, text, 5000);
            } else {
                assert_int_equal(one, -EBADMSG);
                assert_int_equal(str, -EBADMSG);
            }
            zpt_bytes_free(&plain);
        }
        zpt_bytes_free(&comp);
        zp_codec_destroy(c);
    }
    zpt_assert_no_outstanding(pool);
    zp_pool_destroy(pool);
    free(text);
}

/* ------------------------------------------------------------- bombs */

/* n MiB of zeros in a deflate-family format, made of one compressed MiB
 * repeated (each ends with a full flush, so every repeat is the same
 * bytes), with the right trailer: megabytes of input, kilobytes of work */
static void deflate_bomb(int format, size_t mib, zpt_bytes *out)
{
    static unsigned char zeros[1 << 20];
    int wbits = format == ZP_CODEC_GZIP ? 31 : format == ZP_CODEC_ZLIB ? 15 : -15;
    unsigned char buf[1 << 16];
    zpt_bytes first = {0}, unit = {0};
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, wbits, 9, Z_DEFAULT_STRATEGY), Z_OK);
    for (int round = 0; round < 2; round++) {
        zs.next_in = zeros;
        zs.avail_in = sizeof zeros;
        do {
            zs.next_out = buf;
            zs.avail_out = sizeof buf;
            assert_int_not_equal(deflate(&zs, Z_FULL_FLUSH), Z_STREAM_ERROR);
            zpt_bytes_add(round ? &unit : &first, buf, sizeof buf - zs.avail_out);
        } while (zs.avail_out == 0);
    }
    zpt_bytes_add(out, first.p, first.len);
    for (size_t i = 1; i < mib; i++)
        zpt_bytes_add(out, unit.p, unit.len);
    /* final empty block, then the trailer for mib MiB of zeros */
    zs.next_in = zeros;
    zs.avail_in = 0;
    zs.next_out = buf;
    zs.avail_out = sizeof buf;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    {
        size_t tail = sizeof buf - zs.avail_out, trailer = format == ZP_CODEC_GZIP ? 8
                                                          : format == ZP_CODEC_ZLIB ? 4 : 0;
        uLong crc = crc32(0, zeros, sizeof zeros), adl = adler32(1, zeros, sizeof zeros);
        uLong crc_all = crc, adl_all = adl;
        for (size_t i = 1; i < mib; i++) {
            crc_all = crc32_combine(crc_all, crc, sizeof zeros);
            adl_all = adler32_combine(adl_all, adl, sizeof zeros);
        }
        zpt_bytes_add(out, buf, tail - trailer);
        if (format == ZP_CODEC_GZIP) {
            uint32_t isize = (uint32_t)(mib << 20);
            unsigned char t[8] = {(unsigned char)crc_all, (unsigned char)(crc_all >> 8),
                                  (unsigned char)(crc_all >> 16), (unsigned char)(crc_all >> 24),
                                  (unsigned char)isize, (unsigned char)(isize >> 8),
                                  (unsigned char)(isize >> 16), (unsigned char)(isize >> 24)};
            zpt_bytes_add(out, t, 8);
        } else if (format == ZP_CODEC_ZLIB) {
            unsigned char t[4] = {(unsigned char)(adl_all >> 24), (unsigned char)(adl_all >> 16),
                                  (unsigned char)(adl_all >> 8), (unsigned char)adl_all};
            zpt_bytes_add(out, t, 4);
        }
    }
    deflateEnd(&zs);
    zpt_bytes_free(&first);
    zpt_bytes_free(&unit);
}

/* a zstd frame of mib MiB of zeros: RLE blocks of 128 KiB, by hand (with or
 * without the content size in the header) */
static void zstd_bomb(size_t mib, int with_size, zpt_bytes *out)
{
    unsigned char hdr[14] = {0x28, 0xb5, 0x2f, 0xfd};
    size_t n = 4, blocks = mib * 8;
    uint64_t size = (uint64_t)mib << 20;
    hdr[n++] = with_size ? 0xC0 : 0x00; /* FCS 8 bytes or none; not single segment */
    hdr[n++] = 0x38;                    /* window 128 KiB */
    if (with_size)
        for (int i = 0; i < 8; i++)
            hdr[n++] = (unsigned char)(size >> (8 * i));
    zpt_bytes_add(out, hdr, n);
    for (size_t b = 0; b < blocks; b++) {
        uint32_t h = (131072u << 3) | (1u << 1) | (b + 1 == blocks ? 1u : 0u);
        unsigned char blk[4] = {(unsigned char)h, (unsigned char)(h >> 8), (unsigned char)(h >> 16), 0};
        zpt_bytes_add(out, blk, 4);
    }
}

/* an lz4 frame of n4 x 4 MiB of zeros: one compressed 4 MiB block repeated */
static void lz4_bomb(size_t n4, zpt_bytes *out)
{
    LZ4F_cctx *cctx;
    LZ4F_preferences_t p;
    size_t cap = LZ4F_compressBound(4 << 20, NULL) + 64, n;
    unsigned char *buf = malloc(cap), *zeros = calloc(1, 4 << 20);
    static const unsigned char endmark[4] = {0, 0, 0, 0};
    memset(&p, 0, sizeof p);
    p.frameInfo.blockSizeID = LZ4F_max4MB;
    p.frameInfo.blockMode = LZ4F_blockIndependent;
    p.autoFlush = 1;
    assert_false(LZ4F_isError(LZ4F_createCompressionContext(&cctx, LZ4F_VERSION)));
    n = LZ4F_compressBegin(cctx, buf, cap, &p);
    assert_false(LZ4F_isError(n));
    zpt_bytes_add(out, buf, n);
    n = LZ4F_compressUpdate(cctx, buf, cap, zeros, 4 << 20, NULL);
    assert_false(LZ4F_isError(n));
    for (size_t i = 0; i < n4; i++)
        zpt_bytes_add(out, buf, n);
    zpt_bytes_add(out, endmark, 4);
    LZ4F_freeCompressionContext(cctx);
    free(buf);
    free(zeros);
}

static void make_bomb(int format, size_t mib, int variant, zpt_bytes *out)
{
    if (format == ZP_CODEC_ZSTD)
        zstd_bomb(mib, variant, out);
    else if (format == ZP_CODEC_LZ4)
        lz4_bomb(mib / 4, out);
    else
        deflate_bomb(format, mib, out);
}

static void test_bomb(void **state)
{
    zp_pool *pool = ZPT_POOL();
    (void)state;
    for (int i = 0; i < ZPT_NFORMATS; i++) {
        int f = zpt_formats[i];
        for (int variant = 0; variant < (f == ZP_CODEC_ZSTD ? 2 : 1); variant++) {
            zpt_bytes small = {0}, bomb = {0}, plain = {0};
            zp_codec *roomy = zpt_codec_new(pool, f, 0, 16 * ZPT_MiB, NULL, 0);
            zp_codec *tight = zpt_codec_new(pool, f, 0, ZPT_MiB, NULL, 0);
            int one, str;
            /* the construction is right: 8 MiB of it decodes to 8 MiB of zeros */
            make_bomb(f, 8, variant, &small);
            both(roomy, small.p, small.len, &one, &str, &plain);
            if (one != 0 || str != 0 || plain.len != 8 * ZPT_MiB || !zpt_all_zero(plain.p, plain.len))
                zpt_fail("%s: the 8 MiB zero stream does not decode (%d, %d, %zu bytes)",
                         zpt_format_name(f), one, str, plain.len);
            /* 1 GiB of zeros against max_output 1 MiB */
            make_bomb(f, 1024, variant, &bomb);
            both(tight, bomb.p, bomb.len, &one, &str, NULL);
            if (one != -EFBIG || str != -EFBIG)
                zpt_fail("%s: 1 GiB zero stream (%zu bytes) with max_output 1 MiB: one-shot %d, "
                         "streaming %d, expected -EFBIG", zpt_format_name(f), bomb.len, one, str);
            /* exactly max_output is fine, one byte less is not */
            zp_codec_destroy(tight);
            tight = zpt_codec_new(pool, f, 0, 8 * ZPT_MiB, NULL, 0);
            both(tight, small.p, small.len, &one, &str, NULL);
            assert_int_equal(one, 0);
            assert_int_equal(str, 0);
            zp_codec_destroy(tight);
            tight = zpt_codec_new(pool, f, 0, 8 * ZPT_MiB - 1, NULL, 0);
            both(tight, small.p, small.len, &one, &str, NULL);
            assert_int_equal(one, -EFBIG);
            assert_int_equal(str, -EFBIG);
            zp_codec_destroy(tight);
            zp_codec_destroy(roomy);
            zpt_bytes_free(&small);
            zpt_bytes_free(&bomb);
            zpt_bytes_free(&plain);
        }
    }
    zpt_assert_no_outstanding(pool);
    zp_pool_destroy(pool);
}

static void test_budget(void **state)
{
    zp_pool *pool = ZPT_POOL(.max_bytes = ZPT_MiB);
    unsigned char *text = zpt_text(2 * ZPT_MiB, 24);
    zp_config tiny;
    (void)state;
    zp_config_init(&tiny);
    tiny.max_bytes = 64 * ZPT_KiB;
    for (int i = 0; i < ZPT_NFORMATS; i++) {
        int f = zpt_formats[i];
        zp_codec *c = zpt_codec_new(pool, f, 1, 0, NULL, 256 * ZPT_KiB);
        zp_codec_config cfg;
        zp_codec *starved;
        zp_zstream *zs;
        void *held[8] = {0}, *o = (void *)1, *buf;
        zpt_bytes zeros = {0};
        size_t n, used, off = 0;
        int nheld = 0, err = 0;

        /* the output of 2 MiB of text does not fit a 1 MiB budget */
        assert_int_equal(zp_compress(c, text, 2 * ZPT_MiB, &o, &n), -ENOBUFS);
        assert_null(o);
        /* streaming: 8 MiB of zeros decoded while the caller holds every
         * buffer handed out: the fifth 256 KiB buffer is over the budget */
        make_bomb(f, 8, 1, &zeros);
        assert_int_equal(zp_zstream_open(c, ZP_ZSTREAM_DECOMPRESS, &zs), 0);
        while (off < zeros.len && err == 0) {
            err = zp_zstream_write(zs, zeros.p + off, zeros.len - off, &used, &buf, &n);
            off += used;
            if (buf != NULL)
                held[nheld++] = buf;
            assert_true(nheld < 8);
        }
        assert_int_equal(err, -ENOBUFS);
        assert_int_equal(zp_zstream_write(zs, zeros.p, 1, &used, &buf, &n), -ENOBUFS); /* sticky */
        zp_zstream_close(zs);
        for (int k = 0; k < nheld; k++)
            zp_put(pool, held[k]);
        zpt_bytes_free(&zeros);
        /* contexts from a pool whose budget is too small for one */
        zp_codec_config_init(&cfg, f);
        cfg.level = 1;
        cfg.ctx_config = &tiny;
        assert_int_equal(zp_codec_create(pool, &cfg, &starved), 0);
        assert_int_equal(zp_compress(starved, text, 1000, &o, &n), -ENOBUFS);
        assert_int_equal(zp_decompress(starved, text, 1000, &o, &n), -ENOBUFS);
        assert_int_equal(zp_zstream_open(starved, ZP_ZSTREAM_DECOMPRESS, &zs), -ENOBUFS);
        assert_null(zs);
        zp_codec_destroy(starved);
        zp_codec_destroy(c);
    }
    zpt_assert_no_outstanding(pool);
    zp_pool_destroy(pool);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_bomb),
        cmocka_unit_test(test_budget),
    };
    return ZPT_RUN(tests);
}
