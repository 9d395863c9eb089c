/* Streaming: round trips in pieces of 1 byte, odd and random sizes, both directions; multi-member gzip, multi-frame zstd and lz4 (with skippable frames); buffer sizes, totals, finish and errors; memory bounded over a long stream. */
#include "zp_test_codec.h"

static const size_t pieces[] = {1, 7, 4093, 65537, 0 /* random */};
#define NPIECES (sizeof pieces / sizeof pieces[0])

static void test_pieces(void **state)
{
    zp_pool *pool = ZPT_POOL();
    size_t len = 20000;
    unsigned char *text = zpt_text(len, 31);
    (void)state;
    for (int i = 0; i < ZPT_NFORMATS; i++) {
        for (int lv = 0; lv < 2; lv++) {
            int f = zpt_formats[i], level = lv ? 1 : 0;
            zp_codec *c = zpt_codec_new(pool, f, level, 0, NULL, 4096);
            for (size_t pc = 0; pc < NPIECES; pc++) {
                zpt_bytes comp = {0}, plain = {0}, ref = {0};
                uint64_t rng = pc;
                assert_int_equal(zpt_stream(c, ZP_ZSTREAM_COMPRESS, text, len, pieces[pc], &rng, &comp), 0);
                /* decoded by streaming in pieces of every size, and one-shot */
                for (size_t pd = 0; pd < NPIECES; pd++) {
                    plain.len = 0;
                    assert_int_equal(zpt_stream(c, ZP_ZSTREAM_DECOMPRESS, comp.p, comp.len,
                                                pieces[pd], &rng, &plain), 0);
                    if (plain.len != len || memcmp(plain.p, text, len) != 0)
                        zpt_fail("%s level %d: compressed in pieces of %zu, decompressed in "
                                 "pieces of %zu: %zu bytes back", zpt_format_name(f), level,
                                 pieces[pc], pieces[pd], plain.len);
                }
                plain.len = 0;
                assert_int_equal(zpt_oneshot(c, ZP_ZSTREAM_DECOMPRESS, comp.p, comp.len, &plain), 0);
                assert_int_equal(plain.len, len);
                assert_memory_equal(plain.p, text, len);
                /* one-shot output streams back too */
                assert_int_equal(zpt_oneshot(c, ZP_ZSTREAM_COMPRESS, text, len, &ref), 0);
                plain.len = 0;
                assert_int_equal(zpt_stream(c, ZP_ZSTREAM_DECOMPRESS, ref.p, ref.len, pieces[pc],
                                            &rng, &plain), 0);
                assert_int_equal(plain.len, len);
                assert_memory_equal(plain.p, text, len);
                zpt_bytes_free(&comp);
                zpt_bytes_free(&plain);
                zpt_bytes_free(&ref);
            }
            zp_codec_destroy(c);
        }
    }
    zpt_assert_no_outstanding(pool);
    zp_pool_destroy(pool);
    free(text);
}

static void test_members_and_frames(void **state)
{
    zp_pool *pool = ZPT_POOL();
    unsigned char *a = zpt_text(30000, 32), *b = zpt_text(50001, 33);
    /* a skippable frame (zstd and lz4 share the magic range 0x184D2A5x) */
    static const unsigned char skip[] = {0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'z', 'p', '!'};
    (void)state;
    for (int i = 0; i < ZPT_NFORMATS; i++) {
        int f = zpt_formats[i];
        zp_codec *c;
        zpt_bytes cat = {0}, plain = {0};
        uint64_t rng = 3;
        if (f != ZP_CODEC_GZIP && f != ZP_CODEC_ZSTD && f != ZP_CODEC_LZ4)
            continue;
        c = zpt_codec_new(pool, f, 1, 0, NULL, 4096);
        /* cat a.gz b.gz a.gz: one-shot, streamed, and empty members */
        assert_int_equal(zpt_oneshot(c, ZP_ZSTREAM_COMPRESS, a, 30000, &cat), 0);
        assert_int_equal(zpt_stream(c, ZP_ZSTREAM_COMPRESS, b, 50001, 0, &rng, &cat), 0);
        assert_int_equal(zpt_stream(c, ZP_ZSTREAM_COMPRESS, "", 0, 1, NULL, &cat), 0);
        if (f != ZP_CODEC_GZIP)
            zpt_bytes_add(&cat, skip, sizeof skip);
        assert_int_equal(zpt_oneshot(c, ZP_ZSTREAM_COMPRESS, a, 30000, &cat), 0);
        for (size_t pd = 0; pd < NPIECES + 1; pd++) {
            plain.len = 0;
            if (pd == NPIECES)
                assert_int_equal(zpt_oneshot(c, ZP_ZSTREAM_DECOMPRESS, cat.p, cat.len, &plain), 0);
            else
                assert_int_equal(zpt_stream(c, ZP_ZSTREAM_DECOMPRESS, cat.p, cat.len, pieces[pd],
                                            &rng, &plain), 0);
            if (plain.len != 110001 || memcmp(plain.p, a, 30000) != 0 ||
                memcmp(plain.p + 30000, b, 50001) != 0 || memcmp(plain.p + 80001, a, 30000) != 0)
                zpt_fail("%s: concatenated members/frames decoded to %zu bytes (pieces %zu)",
                         zpt_format_name(f), plain.len, pd < NPIECES ? pieces[pd] : (size_t)-1);
        }
        zpt_bytes_free(&cat);
        zpt_bytes_free(&plain);
        zp_codec_destroy(c);
    }
    zpt_assert_no_outstanding(pool);
    zp_pool_destroy(pool);
    free(a);
    free(b);
}

static void test_semantics(void **state)
{
    zp_pool *pool = ZPT_POOL();
    size_t len = 300000;
    unsigned char *text = zpt_text(len, 34);
    (void)state;
    for (int i = 0; i < ZPT_NFORMATS; i++) {
        int f = zpt_formats[i];
        zp_codec *c = zpt_codec_new(pool, f, 1, 0, NULL, 4096);
        zpt_bytes comp = {0};
        for (int dir = ZP_ZSTREAM_COMPRESS; dir <= ZP_ZSTREAM_DECOMPRESS; dir++) {
            const unsigned char *src = dir == ZP_ZSTREAM_COMPRESS ? text : comp.p;
            size_t src_len = dir == ZP_ZSTREAM_COMPRESS ? len : comp.len, off = 0, used, n;
            uint64_t produced = 0;
            zpt_bytes out = {0};
            zp_zstream *zs;
            void *buf;
            int err, last_short = 0;
            assert_int_equal(zp_zstream_open(c, dir, &zs), 0);
            while (off < src_len) {
                assert_int_equal(zp_zstream_write(zs, src + off, src_len - off, &used, &buf, &n), 0);
                off += used;
                if (buf != NULL) {
                    /* every buffer handed out before the last is full */
                    assert_int_equal(n, 4096);
                    assert_true(zp_capacity(pool, buf) >= n);
                    produced += n;
                    zpt_bytes_add(&out, buf, n);
                    zp_put(pool, buf);
                } else {
                    assert_int_equal(n, 0);
                    assert_int_equal(used, src_len - off + used); /* took all it was given */
                }
            }
            do {
                err = zp_zstream_finish(zs, &buf, &n);
                assert_true(err == 0 || err == 1);
                if (buf != NULL) {
                    assert_false(last_short);
                    last_short = n < 4096;
                    assert_true(n > 0 && n <= 4096);
                    produced += n;
                    zpt_bytes_add(&out, buf, n);
                    zp_put(pool, buf);
                }
            } while (err == 1);
            assert_int_equal(zp_zstream_total_in(zs), src_len);
            assert_int_equal(zp_zstream_total_out(zs), produced);
            /* finished: finish again gives nothing, write is refused */
            assert_int_equal(zp_zstream_finish(zs, &buf, &n), 0);
            assert_null(buf);
            assert_int_equal(zp_zstream_write(zs, "x", 1, &used, &buf, &n), -EINVAL);
            zp_zstream_close(zs);
            if (dir == ZP_ZSTREAM_COMPRESS) {
                comp = out;
            } else {
                assert_int_equal(out.len, len);
                assert_memory_equal(out.p, text, len);
                zpt_bytes_free(&out);
            }
        }
        /* errors are sticky; closing mid-stream gives everything back */
        {
            zp_zstream *zs;
            void *buf;
            size_t used, n;
            assert_int_equal(zp_zstream_open(c, ZP_ZSTREAM_DECOMPRESS, &zs), 0);
            assert_int_equal(zp_zstream_write(zs, "\xff\xff\xff\xff\xff\xff\xff\xff", 8, &used, &buf, &n),
                             -EBADMSG);
            assert_int_equal(zp_zstream_write(zs, comp.p, comp.len, &used, &buf, &n), -EBADMSG);
            assert_int_equal(zp_zstream_finish(zs, &buf, &n), -EBADMSG);
            zp_zstream_close(zs);
            assert_int_equal(zp_zstream_open(c, ZP_ZSTREAM_DECOMPRESS, &zs), 0);
            assert_int_equal(zp_zstream_write(zs, comp.p, comp.len / 2, &used, &buf, &n), 0);
            zp_put(pool, buf);
            zp_zstream_close(zs); /* holds a partial buffer: goes back */
        }
        zpt_bytes_free(&comp);
        zp_codec_destroy(c);
        zpt_assert_no_outstanding(pool);
    }
    zp_pool_destroy(pool);
    free(text);
}

static void test_bounded(void **state)
{
    zp_pool *pool = ZPT_POOL();
    size_t unit = ZPT_MiB, total = (zpt_under_valgrind() ? 4 : 16) * ZPT_MiB;
    unsigned char *text = zpt_text(unit, 35);
    (void)state;
    for (int i = 0; i < ZPT_NFORMATS; i++) {
        int f = zpt_formats[i];
        zp_codec *c = zpt_codec_new(pool, f, 1, SIZE_MAX, NULL, 64 * ZPT_KiB);
        zp_zstream *zc, *zd;
        uint64_t peak = 0, back = 0;
        size_t fed = 0;
        int err = 0, calls = 0;
        /* compress a long stream and decompress it on the fly, every buffer
         * given back at once: the pool never holds more than a few buffers */
        assert_int_equal(zp_zstream_open(c, ZP_ZSTREAM_COMPRESS, &zc), 0);
        assert_int_equal(zp_zstream_open(c, ZP_ZSTREAM_DECOMPRESS, &zd), 0);
        for (int finishing = 0; finishing < 2; finishing++) {
            do {
                void *cb = NULL, *db;
                size_t cn = 0, used, dn;
                if (!finishing) {
                    size_t piece = 100000 < total - fed ? 100000 : total - fed;
                    const unsigned char *src = text + fed % unit;
                    if (piece > unit - fed % unit)
                        piece = unit - fed % unit;
                    assert_int_equal(zp_zstream_write(zc, src, piece, &used, &cb, &cn), 0);
                    fed += used;
                } else {
                    err = zp_zstream_finish(zc, &cb, &cn);
                    assert_true(err >= 0);
                }
                for (size_t off = 0; cb != NULL && off < cn;) {
                    assert_int_equal(zp_zstream_write(zd, (char *)cb + off, cn - off, &used, &db, &dn), 0);
                    off += used;
                    if (db != NULL) {
                        assert_memory_equal(db, text + back % unit, zpt_min_sz(dn, unit - back % unit));
                        back += dn;
                        zp_put(pool, db);
                    }
                }
                zp_put(pool, cb);
                if (++calls % 8 == 0) {
                    zp_stats s = zpt_read(pool);
                    if (s.bytes_outstanding > peak)
                        peak = s.bytes_outstanding;
                }
            } while (finishing ? err == 1 : fed < total);
        }
        for (;;) {
            void *db;
            size_t dn;
            err = zp_zstream_finish(zd, &db, &dn);
            assert_true(err >= 0);
            if (db != NULL) {
                back += dn;
                zp_put(pool, db);
            }
            if (err == 0)
                break;
        }
        assert_int_equal(back, total);
        zp_zstream_close(zc);
        zp_zstream_close(zd);
        if (peak > 4 * 64 * ZPT_KiB)
            zpt_fail("%s: %llu bytes outstanding at the peak of a %zu-byte stream", zpt_format_name(f),
                     (unsigned long long)peak, total);
        zp_codec_destroy(c);
    }
    zpt_assert_no_outstanding(pool);
    zp_pool_destroy(pool);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_members_and_frames),
        cmocka_unit_test(test_semantics),
        cmocka_unit_test(test_bounded),
    };
    return ZPT_RUN(tests);
}
