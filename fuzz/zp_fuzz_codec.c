/*
 * zp_fuzz_codec.c — libFuzzer target for libzeropool-codec's decoders, one
 * binary per format (built with -DZPF_FORMAT=ZP_CODEC_GZIP, ...: zp_fuzz_gzip,
 * zp_fuzz_deflate, zp_fuzz_zlib, zp_fuzz_zstd, zp_fuzz_lz4).
 *
 * Input: one byte of options, then the compressed data. The data is decoded
 * one-shot and streamed (in pieces whose sizes the option byte seeds), with
 * max_output 1 MiB. Checked:
 *   - both results are 0, -EBADMSG, -EFBIG or -ENOTSUP; for lz4 (one code
 *     path both ways) both succeed or fail together; when both succeed
 *     they decoded the same bytes;
 *   - a failed one-shot call hands nothing out;
 *   - whatever decoded compresses and decodes back to the same bytes;
 *   - after every input the pool has nothing outstanding.
 * A broken invariant aborts (libFuzzer saves the input); ASan and UBSan
 * catch the rest. fuzz/replay.c runs the same entry point over the seed
 * corpus in every test build (the fuzz_codec_replay_* tests).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zeropool.h"
#include "zeropool/codec.h"

#ifndef ZPF_FORMAT
#error "build with -DZPF_FORMAT=<ZP_CODEC_*>"
#endif

static zp_pool *pool;
static zp_codec *codec;

static void die(const char *what, int err)
{
    fprintf(stderr, "zp_fuzz_codec (format %d): %s: %d %s\n", ZPF_FORMAT, what, err,
            zp_codec_strerror(err));
    abort();
}

/* A pool and a codec per input, destroyed after it: contexts are made,
 * used and finalised every time (and LeakSanitizer, which does not scan
 * the pool's mappings, sees every context's heap memory freed). */
static void setup(void)
{
    zp_codec_config cfg;
    int err;
    if ((err = zp_pool_create(NULL, &pool)) != 0)
        die("zp_pool_create", err);
    zp_codec_config_init(&cfg, ZPF_FORMAT);
    cfg.level = 1;
    cfg.max_output = 1 << 20;
    cfg.stream_chunk = 4096;
    if ((err = zp_codec_create(pool, &cfg, &codec)) != 0)
        die("zp_codec_create", err);
}

static int allowed(int err)
{
    return err == 0 || err == -EBADMSG || err == -EFBIG || err == -ENOTSUP;
}

/* streams src into out (may be NULL: discard) in pieces seeded by seed */
static int stream(int dir, const uint8_t *src, size_t len, unsigned seed, unsigned char *out,
                  size_t cap, size_t *out_len)
{
    zp_zstream *zs;
    size_t got = 0;
    int err = zp_zstream_open(codec, dir, &zs);
    uint32_t rng = seed * 2654435761u + 1;
    if (err != 0)
        die("zp_zstream_open", err);
    while (len > 0) {
        size_t piece, used, n;
        void *buf;
        rng = rng * 1103515245u + 12345u;
        piece = seed & 0x80 ? 1 + (rng >> 16) % 17 : 1 + (rng >> 8) % 70000;
        if (piece > len)
            piece = len;
        err = zp_zstream_write(zs, src, piece, &used, &buf, &n);
        if (err != 0)
            goto out;
        if (buf != NULL) {
            if (out != NULL && got + n <= cap)
                memcpy(out + got, buf, n);
            got += n;
            zp_put(pool, buf);
        }
        src += used;
        len -= used;
    }
    do {
        void *buf;
        size_t n;
        err = zp_zstream_finish(zs, &buf, &n);
        if (buf != NULL) {
            if (out != NULL && got + n <= cap)
                memcpy(out + got, buf, n);
            got += n;
            zp_put(pool, buf);
        }
    } while (err == 1);
out:
    zp_zstream_close(zs);
    *out_len = got;
    return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void *one = (void *)1;
    size_t one_len = 1, str_len = 0;
    unsigned opt;
    int e1, e2;
    static unsigned char str_out[(1 << 20) + 1];
    zp_stats st;

    if (size < 1)
        return 0;
    setup();
    opt = data[0];
    data++;
    size--;

    e1 = zp_decompress(codec, data, size, &one, &one_len);
    if (!allowed(e1))
        die("zp_decompress: unexpected error", e1);
    if (e1 != 0 && (one != NULL || one_len != 0))
        die("zp_decompress failed but handed out a buffer", e1);
    e2 = stream(ZP_ZSTREAM_DECOMPRESS, data, size, opt, str_out, sizeof str_out, &str_len);
    if (!allowed(e2))
        die("streaming decompression: unexpected error", e2);
    /* lz4 runs the same engine and code both ways: they agree (unless a bomb
     * is caught by either check first). The others may not: gzip/zlib/deflate
     * are libdeflate one-shot and zlib streaming, whose leniencies differ
     * (e.g. the optional gzip header CRC), and zstd's one-shot decoder
     * accepts an RLE block larger than the block maximum that its streaming
     * decoder rejects (found by this fuzzer; streaming zstd also refuses
     * windows above 8 MiB). Their bytes must agree when both succeed. */
    if (ZPF_FORMAT == ZP_CODEC_LZ4 && (e1 == 0) != (e2 == 0) && e1 != -EFBIG && e2 != -EFBIG)
        die("one-shot and streaming disagree", e1 ? e1 : e2);
    if (e1 == 0 && e2 == 0 && (one_len != str_len || (one_len && memcmp(one, str_out, one_len))))
        die("one-shot and streaming decoded different bytes", 0);
    if (e1 == 0 && one_len > 0) {
        /* what decoded round-trips */
        void *comp, *back;
        size_t comp_len, back_len;
        int err = zp_compress(codec, one, one_len, &comp, &comp_len);
        if (err != 0)
            die("zp_compress of decoded data", err);
        err = zp_decompress(codec, comp, comp_len, &back, &back_len);
        if (err != 0 || back_len != one_len || memcmp(back, one, one_len) != 0)
            die("round trip of decoded data", err);
        zp_put(pool, comp);
        zp_put(pool, back);
    }
    zp_put(pool, one);

    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    if (zp_stats_read(pool, &st) != 0 || st.bytes_outstanding != 0)
        die("bytes outstanding after the input", (int)st.bytes_outstanding);
    zp_codec_destroy(codec);
    zp_pool_destroy(pool);
    codec = NULL;
    pool = NULL;
    return 0;
}
