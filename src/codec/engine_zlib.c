/*
 * engine_zlib.c — zlib: streaming deflate at levels 4-9 and streaming
 * inflate of gzip (every member), zlib and raw deflate; the fallback for
 * what faster engines do not serve.
 *
 * zlib allocates through zalloc/zfree; both are served from an arena inside
 * the context object, so deflateInit2's five blocks (about 268 KB) and the
 * 32 KiB window inflate allocates lazily (the first time a stream spans
 * several calls) come from pooled memory, once per context: a context is
 * made once (deflateInit2 / inflateInit2) and reset per stream.
 */
#include "internal.h"

#ifdef ZPC_HAVE_ZLIB

#include <limits.h>
#include <string.h>
#include <zlib.h>

#define DEFLATE_ARENA (400 * ZPC_KiB) /* deflateInit2(15, memLevel 8): ~268 KB */
#define INFLATE_ARENA (64 * ZPC_KiB)  /* state ~7 KB + window 32 KiB */

typedef struct zst {
    z_stream zs;
    zpc_arena arena;
    int in_member; /* decompression: bytes of a member were consumed */
    int ended;     /* decompression, zlib/deflate: the one stream ended */
    int any;       /* decompression: a stream ended at least once */
    _Alignas(64) unsigned char mem[];
} zst;

static voidpf za(voidpf opaque, uInt items, uInt size)
{
    zpc_arena *a = opaque;
    if (size != 0 && items > SIZE_MAX / size)
        return Z_NULL;
    return zpc_arena_alloc(a, (size_t)items * size);
}

static void zf(voidpf opaque, voidpf p)
{
    zpc_arena_free(opaque, p);
}

static int wbits(int format)
{
    return format == ZP_CODEC_GZIP ? 15 + 16 : format == ZP_CODEC_ZLIB ? 15 : -15;
}

static uInt clamp_uint(size_t n)
{
    return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

/* -------------------------------------------------------------- compress */

static size_t c_size(const zp_codec *c)
{
    (void)c;
    return sizeof(zst) + DEFLATE_ARENA;
}

static int c_init(void *st, const zp_codec *c)
{
    zst *z = st;
    int level = c->level > 9 ? 9 : c->level;
    memset(z, 0, sizeof *z);
    zpc_arena_init(&z->arena, z->mem, DEFLATE_ARENA);
    z->zs.zalloc = za;
    z->zs.zfree = zf;
    z->zs.opaque = &z->arena;
    if (deflateInit2(&z->zs, level, Z_DEFLATED, wbits(c->format), 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return ENOMEM;
    return 0;
}

static void fini(void *st, const zp_codec *c)
{
    (void)c;
    (void)st; /* everything zlib holds lives in the arena, freed with the object */
}

static int c_begin(void *st, const zp_codec *c)
{
    zst *z = st;
    (void)c;
    return deflateReset(&z->zs) == Z_OK ? 0 : zpc_error(-ENOMEM, "zlib: deflateReset failed");
}

static int c_step(void *st, const zp_codec *c, zpc_io *io, int finish)
{
    zst *z = st;
    int flush, r;
    uInt in = clamp_uint(io->in_len), out = clamp_uint(io->out_avail);
    (void)c;
    flush = finish && in == io->in_len ? Z_FINISH : Z_NO_FLUSH;
    z->zs.next_in = (Bytef *)io->in;
    z->zs.avail_in = in;
    z->zs.next_out = io->out;
    z->zs.avail_out = out;
    r = deflate(&z->zs, flush);
    io->in += in - z->zs.avail_in;
    io->in_len -= in - z->zs.avail_in;
    io->out += out - z->zs.avail_out;
    io->out_avail -= out - z->zs.avail_out;
    if (r == Z_STREAM_END)
        return ZPC_DONE;
    if (r == Z_OK || r == Z_BUF_ERROR)
        return ZPC_MORE;
    return zpc_error(-ENOMEM, "zlib: deflate: %s", z->zs.msg ? z->zs.msg : "error");
}

static const zpc_ops zlib_compress = {
    .name = "zlib", .state_size = c_size, .init = c_init, .fini = fini,
    .begin = c_begin, .step = c_step,
};

/* ------------------------------------------------------------ decompress */

static size_t d_size(const zp_codec *c)
{
    (void)c;
    return sizeof(zst) + INFLATE_ARENA;
}

static int d_init(void *st, const zp_codec *c)
{
    zst *z = st;
    memset(z, 0, sizeof *z);
    zpc_arena_init(&z->arena, z->mem, INFLATE_ARENA);
    z->zs.zalloc = za;
    z->zs.zfree = zf;
    z->zs.opaque = &z->arena;
    if (inflateInit2(&z->zs, wbits(c->format)) != Z_OK)
        return ENOMEM;
    return 0;
}

static int d_begin(void *st, const zp_codec *c)
{
    zst *z = st;
    (void)c;
    z->in_member = z->ended = z->any = 0;
    return inflateReset(&z->zs) == Z_OK ? 0 : zpc_error(-ENOMEM, "zlib: inflateReset failed");
}

static int d_step(void *st, const zp_codec *c, zpc_io *io, int finish)
{
    zst *z = st;
    for (;;) {
        uInt in, out;
        int r;
        if (z->ended) {
            if (io->in_len > 0)
                return zpc_error(-EBADMSG, "zlib: %zu bytes of trailing garbage after the %s "
                                 "stream", io->in_len, c->format == ZP_CODEC_ZLIB ? "zlib" : "deflate");
            return finish ? ZPC_DONE : ZPC_MORE;
        }
        if (io->in_len == 0 && !z->in_member) {
            if (!finish)
                return ZPC_MORE;
            if (c->format == ZP_CODEC_GZIP)
                return ZPC_DONE; /* at a member boundary (or no member at all) */
            return zpc_error(-EBADMSG, "zlib: empty input");
        }
        if (io->out_avail == 0)
            return ZPC_MORE;
        in = clamp_uint(io->in_len);
        out = clamp_uint(io->out_avail);
        z->zs.next_in = (Bytef *)io->in;
        z->zs.avail_in = in;
        z->zs.next_out = io->out;
        z->zs.avail_out = out;
        r = inflate(&z->zs, Z_NO_FLUSH);
        if (z->zs.avail_in != in)
            z->in_member = 1;
        io->in += in - z->zs.avail_in;
        io->in_len -= in - z->zs.avail_in;
        io->out += out - z->zs.avail_out;
        io->out_avail -= out - z->zs.avail_out;
        switch (r) {
        case Z_STREAM_END:
            z->in_member = 0;
            z->any = 1;
            if (c->format == ZP_CODEC_GZIP) {
                if (inflateReset(&z->zs) != Z_OK)
                    return zpc_error(-ENOMEM, "zlib: inflateReset failed");
            } else {
                z->ended = 1;
            }
            continue;
        case Z_OK:
            return ZPC_MORE;
        case Z_BUF_ERROR: /* no progress possible: more input or output needed */
            return ZPC_MORE;
        case Z_MEM_ERROR:
            return zpc_error(-ENOMEM, "zlib: inflate: out of memory (arena)");
        default: /* Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR */
            return zpc_error(-EBADMSG, "zlib: inflate: %s",
                             z->zs.msg ? z->zs.msg : r == Z_NEED_DICT ? "needs a dictionary"
                                                                      : "corrupt data");
        }
    }
}

static const zpc_ops zlib_decompress = {
    .name = "zlib", .state_size = d_size, .init = d_init, .fini = fini,
    .begin = d_begin, .step = d_step,
};

const zpc_ops *zpc_zlib_ops(int format, int kind, int level)
{
    (void)level;
    if (format != ZP_CODEC_GZIP && format != ZP_CODEC_DEFLATE && format != ZP_CODEC_ZLIB)
        return NULL;
    return kind == ZPC_C1 || kind == ZPC_CS ? &zlib_compress : &zlib_decompress;
}

uint32_t zpc_zlib_crc32(uint32_t crc, const void *p, size_t n, int *ok)
{
    const unsigned char *b = p;
    *ok = 1;
    while (n > 0) {
        uInt k = clamp_uint(n);
        crc = (uint32_t)crc32(crc, b, k);
        b += k;
        n -= k;
    }
    return crc;
}

#else /* !ZPC_HAVE_ZLIB */

const zpc_ops *zpc_zlib_ops(int format, int kind, int level)
{
    (void)format, (void)kind, (void)level;
    return NULL;
}

uint32_t zpc_zlib_crc32(uint32_t crc, const void *p, size_t n, int *ok)
{
    (void)p, (void)n;
    *ok = 0;
    return crc;
}

#endif
