/*
 * engine_deflate.c — libdeflate: one-shot gzip, zlib and raw deflate
 * compression at levels 4-12 and one-shot decompression of all three (gzip:
 * every concatenated member), the fastest for whole buffers.
 *
 * libdeflate 1.14's only allocator hook is process-wide with no context
 * pointer (libdeflate_set_memory_allocator), so it is left alone: each
 * pooled context allocates its compressor (200-670 KB) or decompressor once
 * with libdeflate's own malloc when the context is built, and frees it when
 * the object pool finalises the context. Nothing is allocated per call.
 * Output: compression writes into a buffer of the format's bound;
 * decompression guesses the size (gzip: the last member's ISIZE), and on
 * LIBDEFLATE_INSUFFICIENT_SPACE takes a buffer twice as large and decodes
 * the member again, up to max_output (then -EFBIG).
 */
#include "internal.h"

#ifdef ZPC_HAVE_LIBDEFLATE

#include <libdeflate.h>
#include <string.h>

typedef struct dst_c {
    struct libdeflate_compressor *comp;
} dst_c;

typedef struct dst_d {
    struct libdeflate_decompressor *dec;
} dst_d;

static size_t c_size(const zp_codec *c)
{
    (void)c;
    return sizeof(dst_c);
}

static int c_init(void *st, const zp_codec *c)
{
    dst_c *z = st;
    int level = c->level < 1 ? 1 : c->level > 12 ? 12 : c->level;
    z->comp = libdeflate_alloc_compressor(level);
    return z->comp ? 0 : ENOMEM;
}

static void c_fini(void *st, const zp_codec *c)
{
    dst_c *z = st;
    (void)c;
    libdeflate_free_compressor(z->comp);
}

static int c_oneshot(void *st, const zp_codec *c, const unsigned char *src, size_t len,
                     zpc_buf *b)
{
    dst_c *z = st;
    size_t bound, n;
    int err;
    switch (c->format) {
    case ZP_CODEC_GZIP: bound = libdeflate_gzip_compress_bound(z->comp, len); break;
    case ZP_CODEC_ZLIB: bound = libdeflate_zlib_compress_bound(z->comp, len); break;
    default: bound = libdeflate_deflate_compress_bound(z->comp, len); break;
    }
    if ((err = zpc_buf_reserve(b, bound)) < 0)
        return err;
    switch (c->format) {
    case ZP_CODEC_GZIP: n = libdeflate_gzip_compress(z->comp, src, len, b->p, b->cap); break;
    case ZP_CODEC_ZLIB: n = libdeflate_zlib_compress(z->comp, src, len, b->p, b->cap); break;
    default: n = libdeflate_deflate_compress(z->comp, src, len, b->p, b->cap); break;
    }
    if (n == 0)
        return zpc_error(-ENOMEM, "libdeflate: output did not fit its bound");
    b->len = n;
    return 0;
}

static const zpc_ops deflate_compress = {
    .name = "libdeflate", .state_size = c_size, .init = c_init, .fini = c_fini,
    .oneshot = c_oneshot,
};

static size_t d_size(const zp_codec *c)
{
    (void)c;
    return sizeof(dst_d);
}

static int d_init(void *st, const zp_codec *c)
{
    dst_d *z = st;
    (void)c;
    z->dec = libdeflate_alloc_decompressor();
    return z->dec ? 0 : ENOMEM;
}

static void d_fini(void *st, const zp_codec *c)
{
    dst_d *z = st;
    (void)c;
    libdeflate_free_decompressor(z->dec);
}

static enum libdeflate_result run(dst_d *z, int format, const unsigned char *in, size_t in_len,
                                  unsigned char *out, size_t out_len, size_t *used, size_t *got)
{
    switch (format) {
    case ZP_CODEC_GZIP:
        return libdeflate_gzip_decompress_ex(z->dec, in, in_len, out, out_len, used, got);
    case ZP_CODEC_ZLIB:
        return libdeflate_zlib_decompress_ex(z->dec, in, in_len, out, out_len, used, got);
    default:
        return libdeflate_deflate_decompress_ex(z->dec, in, in_len, out, out_len, used, got);
    }
}

static int d_oneshot(void *st, const zp_codec *c, const unsigned char *src, size_t len,
                     zpc_buf *b)
{
    dst_d *z = st;
    const size_t limit = c->max_output;
    size_t pos = 0;
    int member = 0, err;

    if (len == 0 && c->format != ZP_CODEC_GZIP)
        return zpc_error(-EBADMSG, "libdeflate: empty input");
    while (pos < len) {
        size_t rem = len - pos, guess, space;
        member++;
        if (c->format == ZP_CODEC_GZIP && rem >= 18) {
            const unsigned char *t = src + len - 4;
            guess = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
            if (guess < 4096)
                guess = 4096;
            if (rem < SIZE_MAX / 1032 && guess > rem * 1032) /* deflate's densest ratio */
                guess = rem * 1032;
        } else {
            guess = rem < 1024 ? 4096 : rem * 4;
        }
        space = guess < limit - b->len ? guess : limit - b->len;
        for (;;) {
            size_t used = 0, got = 0;
            enum libdeflate_result r;
            if ((err = zpc_buf_reserve(b, b->len + (space ? space : 1))) < 0)
                return err;
            r = run(z, c->format, src + pos, rem, b->p + b->len, space, &used, &got);
            if (r == LIBDEFLATE_SUCCESS) {
                b->len += got;
                pos += used;
                break;
            }
            if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
                if (space >= limit - b->len)
                    return zpc_error(-EFBIG, "libdeflate: member %d: decompressed data exceeds "
                                     "max_output (%zu bytes)", member, limit);
                space = space > (limit - b->len) / 2 ? limit - b->len : space * 2;
                continue;
            }
            return zpc_error(-EBADMSG, "libdeflate: %s%d: corrupt or truncated data",
                             c->format == ZP_CODEC_GZIP ? "member " : "stream ", member);
        }
        if (c->format != ZP_CODEC_GZIP) {
            if (pos < len)
                return zpc_error(-EBADMSG, "libdeflate: %zu bytes of trailing garbage",
                                 len - pos);
            break;
        }
    }
    return 0;
}

static const zpc_ops deflate_decompress = {
    .name = "libdeflate", .state_size = d_size, .init = d_init, .fini = d_fini,
    .oneshot = d_oneshot,
};

const zpc_ops *zpc_deflate_ops(int format, int kind, int level)
{
    (void)level;
    if (format != ZP_CODEC_GZIP && format != ZP_CODEC_DEFLATE && format != ZP_CODEC_ZLIB)
        return NULL;
    if (kind == ZPC_C1)
        return &deflate_compress;
    if (kind == ZPC_D1)
        return &deflate_decompress;
    return NULL;
}

uint32_t zpc_deflate_crc32(uint32_t crc, const void *p, size_t n, int *ok)
{
    *ok = 1;
    return libdeflate_crc32(crc, p, n);
}

#else

const zpc_ops *zpc_deflate_ops(int format, int kind, int level)
{
    (void)format, (void)kind, (void)level;
    return NULL;
}

uint32_t zpc_deflate_crc32(uint32_t crc, const void *p, size_t n, int *ok)
{
    (void)p, (void)n;
    *ok = 0;
    return crc;
}

#endif
