/*
 * codec.c — the codec: configuration, which engine serves each kind of
 * context, the object pools the contexts live in, the one-shot entry
 * points, pooled output buffers that grow, the arena behind library
 * allocators, error details, format detection and crc32.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------- error detail */

static __thread int last_err;
static __thread char last_detail[256];

int zpc_error(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_detail, sizeof last_detail, fmt, ap);
    va_end(ap);
    last_err = err;
    /* zp_strerror(err) gives it too */
    (void)zp_error_set(err, "%s", last_detail);
    return err;
}

const char *zp_codec_strerror(int err)
{
    if (err > 0)
        err = -err;
    if (err != 0 && err == last_err && last_detail[0] != '\0')
        return last_detail;
    switch (err) {
    case -EBADMSG: return "corrupt or truncated compressed data";
    case -EFBIG: return "decompressed data exceeds max_output";
    case -ENOTSUP: return "format not built into libzeropool-codec";
    default: return zp_strerror(err);
    }
}

int zpc_get_errno(int e)
{
    switch (e) {
    case ENOBUFS: return -ENOBUFS;
    case EINVAL: return -EINVAL;
    default: return -ENOMEM; /* ENOMEM, EOVERFLOW (a size never served) */
    }
}

/* ------------------------------------------------------ growing buffers */

int zpc_buf_reserve(zpc_buf *b, size_t need)
{
    unsigned char *p;
    if (b->p != NULL && b->cap >= need)
        return 0;
    p = zp_get(b->pool, need);
    if (p == NULL) {
        int e = errno;
        return zpc_error(zpc_get_errno(e), "output buffer of %zu bytes: %s", need,
                         zp_strerror(-e));
    }
    if (b->p != NULL) {
        memcpy(p, b->p, b->len);
        zp_put(b->pool, b->p);
    }
    b->p = p;
    b->cap = zp_capacity(b->pool, p);
    return 0;
}

void zpc_buf_drop(zpc_buf *b)
{
    if (b->p != NULL)
        zp_put(b->pool, b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------- the arena */

/* Each block: a header of 16 bytes (size, free flag), then the memory. */
typedef struct arena_hdr {
    size_t size; /* bytes after the header, a multiple of 16 */
    size_t free;
} arena_hdr;

void zpc_arena_init(zpc_arena *a, void *base, size_t size)
{
    a->base = base;
    a->size = size & ~(size_t)15;
    a->used = 0;
    a->peak = 0;
    a->failures = 0;
}

void *zpc_arena_alloc(zpc_arena *a, size_t n)
{
    size_t off = 0, need;
    if (n > a->size)
        goto fail;
    need = (n + 15) & ~(size_t)15;
    /* first fit among freed blocks (a context makes a handful) */
    while (off < a->used) {
        arena_hdr *h = (arena_hdr *)(a->base + off);
        if (h->free && h->size >= need) {
            h->free = 0;
            return h + 1;
        }
        off += sizeof *h + h->size;
    }
    if (a->size - a->used < sizeof(arena_hdr) + need)
        goto fail;
    {
        arena_hdr *h = (arena_hdr *)(a->base + a->used);
        h->size = need;
        h->free = 0;
        a->used += sizeof *h + need;
        if (a->used > a->peak)
            a->peak = a->used;
        return h + 1;
    }
fail:
    a->failures++;
    return NULL;
}

void *zpc_arena_calloc(zpc_arena *a, size_t n)
{
    void *p = zpc_arena_alloc(a, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

void zpc_arena_free(zpc_arena *a, void *p)
{
    arena_hdr *h;
    if (p == NULL)
        return;
    h = (arena_hdr *)p - 1;
    h->free = 1;
    /* give trailing free blocks back to the bump pointer */
    for (;;) {
        size_t off = 0, last = SIZE_MAX;
        while (off < a->used) {
            last = off;
            off += sizeof(arena_hdr) + ((arena_hdr *)(a->base + off))->size;
        }
        if (last == SIZE_MAX || !((arena_hdr *)(a->base + last))->free)
            break;
        a->used = last;
    }
}

/* ------------------------------------------------------ engine choice */

static int is_deflate_family(int f)
{
    return f == ZP_CODEC_GZIP || f == ZP_CODEC_DEFLATE || f == ZP_CODEC_ZLIB;
}

typedef const zpc_ops *(*ops_fn)(int format, int kind, int level);

/* The engines that can serve (format, kind, level), fastest first. */
static const zpc_ops *choose(int format, int kind, int level)
{
    ops_fn order[4] = {NULL, NULL, NULL, NULL};
    if (is_deflate_family(format)) {
        switch (kind) {
        case ZPC_C1:
            if (level <= 3) {
                order[0] = zpc_isal_ops, order[1] = zpc_deflate_ops, order[2] = zpc_zlib_ops;
            } else {
                order[0] = zpc_deflate_ops, order[1] = zpc_zlib_ops, order[2] = zpc_isal_ops;
            }
            break;
        case ZPC_CS:
            if (level <= 3) {
                order[0] = zpc_isal_ops, order[1] = zpc_zlib_ops;
            } else {
                order[0] = zpc_zlib_ops, order[1] = zpc_isal_ops;
            }
            break;
        case ZPC_D1:
            order[0] = zpc_deflate_ops, order[1] = zpc_zlib_ops;
            break;
        default:
            order[0] = zpc_zlib_ops;
            break;
        }
    } else if (format == ZP_CODEC_ZSTD) {
        order[0] = zpc_zstd_ops;
    } else if (format == ZP_CODEC_LZ4) {
        order[0] = zpc_lz4_ops;
    }
    for (int i = 0; i < 4 && order[i] != NULL; i++) {
        const zpc_ops *ops = order[i](format, kind, level);
        if (ops != NULL)
            return ops;
    }
    return NULL;
}

/* ------------------------------------------------------------ the codec */

#define ZPC_CONFIG_V1_SIZE (offsetof(zp_codec_config, max_output) + sizeof(size_t))

void zp_codec_config_init(zp_codec_config *cfg, int codec)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->struct_size = sizeof *cfg;
    cfg->codec = codec;
}

static int level_ok(int format, int level, int *resolved)
{
    if (is_deflate_family(format)) {
        *resolved = level ? level : 6;
        return level >= 0 && level <= 12;
    }
    if (format == ZP_CODEC_LZ4) {
        *resolved = level ? level : 1;
        return level >= 0 && level <= 12;
    }
    /* zstd: checked by its engine's range below */
    *resolved = level ? level : 3;
    return level >= -131072 && level <= 22;
}

static int obj_init(void *obj, void *arg)
{
    zpc_kind *k = arg;
    zpc_ctx *ctx = obj;
    int err;
    memset(ctx, 0, sizeof *ctx);
    ctx->kind = k;
    err = k->ops->init((unsigned char *)obj + k->state_off, k->codec);
    return err < 0 ? -err : err;
}

static void obj_fini(void *obj, void *arg)
{
    zpc_kind *k = arg;
    if (k->ops->fini != NULL)
        k->ops->fini((unsigned char *)obj + k->state_off, k->codec);
}

int zp_codec_create(zp_pool *pool, const zp_codec_config *cfg, zp_codec **out)
{
    zp_codec_config c;
    zp_codec *codec;
    zp_config pc;
    int level, err = 0;

    if (out != NULL)
        *out = NULL;
    if (pool == NULL || cfg == NULL || out == NULL)
        return zpc_error(-EINVAL, "zp_codec_create: NULL argument");
    if (cfg->struct_size < ZPC_CONFIG_V1_SIZE || cfg->struct_size > 4096)
        return zpc_error(-EINVAL, "zp_codec_create: struct_size %zu is not a zp_codec_config's"
                         " (use zp_codec_config_init)", cfg->struct_size);
    memset(&c, 0, sizeof c);
    memcpy(&c, cfg, cfg->struct_size < sizeof c ? cfg->struct_size : sizeof c);
    if (cfg->struct_size > sizeof c) {
        const unsigned char *extra = (const unsigned char *)cfg + sizeof c;
        for (size_t i = 0; i < cfg->struct_size - sizeof c; i++)
            if (extra[i] != 0)
                return zpc_error(-EINVAL, "zp_codec_create: fields unknown to this library are set");
    }
    if (c.codec < ZP_CODEC_GZIP || c.codec > ZP_CODEC_LZ4)
        return zpc_error(-EINVAL, "zp_codec_create: unknown codec %d", c.codec);
    if (!level_ok(c.codec, c.level, &level))
        return zpc_error(-EINVAL, "zp_codec_create: level %d out of range for this format",
                         c.level);
    if (c.max_window != 0 && (c.max_window < 1024 || c.max_window > 2 * ZPC_GiB))
        return zpc_error(-EINVAL, "zp_codec_create: max_window %zu is not in 1 KiB .. 2 GiB",
                         c.max_window);
    if (c.stream_chunk != 0 && (c.stream_chunk < 4096 || c.stream_chunk > ZPC_GiB))
        return zpc_error(-EINVAL, "zp_codec_create: stream_chunk %zu is not in 4 KiB .. 1 GiB",
                         c.stream_chunk);

    codec = calloc(1, sizeof *codec);
    if (codec == NULL)
        return zpc_error(-ENOMEM, "zp_codec_create: out of memory");
    codec->pool = pool;
    codec->format = c.codec;
    codec->level = level;
    codec->max_output = c.max_output ? c.max_output : ZPC_GiB;
    codec->stream_chunk = c.stream_chunk ? c.stream_chunk : 256 * ZPC_KiB;
    codec->window_log = 23; /* 8 MiB */
    if (c.max_window != 0)
        for (codec->window_log = 10; ((size_t)1 << codec->window_log) < c.max_window;)
            codec->window_log++;

    if (c.ctx_config != NULL) {
        /* as the caller's header knows it: an older zp_config is shorter */
        size_t n = c.ctx_config->struct_size;
        zp_config_init(&pc);
        memcpy(&pc, c.ctx_config, n < sizeof pc ? n : sizeof pc);
    } else {
        zp_config_init(&pc);
        pc.cache_depth = 2; /* contexts are big: a thread keeps two per kind */
    }
    for (int k = 0; k < ZPC_NKINDS; k++) {
        zpc_kind *kd = &codec->kinds[k];
        zp_obj_type type;
        kd->codec = codec;
        kd->ops = choose(codec->format, k, level);
        if (kd->ops == NULL) {
            err = zpc_error(-ENOTSUP, "zp_codec_create: no engine built for format %d, %s%s",
                            codec->format, k == ZPC_C1 || k == ZPC_CS ? "compression" : "decompression",
                            k == ZPC_CS || k == ZPC_DS ? " (streaming)" : "");
            goto fail;
        }
        kd->state_off = zpc_align64(sizeof(zpc_ctx));
        kd->obj_size = kd->state_off + zpc_align64(kd->ops->state_size(codec));
        memset(&type, 0, sizeof type);
        type.struct_size = sizeof type;
        type.size = kd->obj_size;
        type.align = 64;
        type.init = obj_init;
        type.fini = obj_fini;
        type.arg = kd;
        err = zp_objpool_create(&pc, &type, &kd->objs);
        if (err < 0) {
            err = zpc_error(err, "zp_codec_create: context pool: %s", zp_strerror(err));
            goto fail;
        }
    }
    *out = codec;
    return 0;
fail:
    zp_codec_destroy(codec);
    return err;
}

void zp_codec_destroy(zp_codec *codec)
{
    if (codec == NULL)
        return;
    for (int k = 0; k < ZPC_NKINDS; k++)
        zp_pool_destroy(codec->kinds[k].objs);
    free(codec);
}

zp_pool *zp_codec_pool(const zp_codec *codec)
{
    return codec ? codec->pool : NULL;
}

/* ------------------------------------------------------------- contexts */

zpc_ctx *zpc_ctx_get(zpc_kind *k, int *err)
{
    zpc_ctx *ctx = zp_get(k->objs, k->obj_size);
    if (ctx == NULL) {
        int e = errno;
        *err = zpc_error(zpc_get_errno(e), "%s context: %s", k->ops->name, zp_strerror(-e));
        return NULL;
    }
    return ctx;
}

void zpc_ctx_put(zpc_ctx *ctx)
{
    zp_put(ctx->kind->objs, ctx);
}

/* ------------------------------------------------------------- one-shot */

/* One-shot on a streaming engine: all input at once, finish, the output
 * buffer grown until the engine is done (decompression: at most
 * max_output bytes). */
static int via_stream(const zpc_ops *ops, void *st, const zp_codec *c, const unsigned char *src,
                      size_t len, zpc_buf *b, int decompress)
{
    size_t limit = decompress ? c->max_output : SIZE_MAX;
    size_t guess = decompress ? (len < 1024 ? 4096 : len * 4) : zpc_deflate_bound(len);
    zpc_io io;
    int r = ops->begin(st, c);
    if (r < 0)
        return r;
    io.in = src;
    io.in_len = len;
    for (;;) {
        size_t before_in, before_out, room;
        if (b->p == NULL || b->len == b->cap) {
            size_t want = b->cap ? b->cap * 2 : guess;
            if (decompress) {
                if (b->len > limit)
                    return zpc_error(-EFBIG, "decompressed data exceeds max_output (%zu bytes)", limit);
                if (limit != SIZE_MAX && want > limit + 1)
                    want = limit + 1;
            }
            if ((r = zpc_buf_reserve(b, want)) < 0)
                return r;
        }
        room = b->cap - b->len;
        if (decompress && limit != SIZE_MAX && room > limit + 1 - b->len)
            room = limit + 1 - b->len;
        io.out = b->p + b->len;
        io.out_avail = room;
        before_in = io.in_len;
        before_out = room;
        r = ops->step(st, c, &io, 1);
        b->len += room - io.out_avail;
        if (decompress && b->len > limit)
            return zpc_error(-EFBIG, "decompressed data exceeds max_output (%zu bytes)", limit);
        if (r < 0)
            return r;
        if (r == ZPC_DONE)
            return 0;
        if (io.in_len == before_in && io.out_avail == before_out)
            return zpc_error(-EBADMSG, "%s: input ends inside a stream (truncated)", ops->name);
    }
}

static int oneshot(zp_codec *codec, int kind, const void *src, size_t len, void **out,
                   size_t *out_len, const char *fn)
{
    zpc_kind *k;
    zpc_ctx *ctx;
    zpc_buf b;
    int err;

    if (out != NULL)
        *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    if (codec == NULL || out == NULL || out_len == NULL || (src == NULL && len > 0))
        return zpc_error(-EINVAL, "%s: NULL argument", fn);
    k = &codec->kinds[kind];
    ctx = zpc_ctx_get(k, &err);
    if (ctx == NULL)
        return err;
    b.pool = codec->pool;
    b.p = NULL;
    b.len = b.cap = 0;
    if (src == NULL)
        src = "";
    if (k->ops->oneshot != NULL)
        err = k->ops->oneshot(zpc_state(ctx), codec, src, len, &b);
    else
        err = via_stream(k->ops, zpc_state(ctx), codec, src, len, &b, kind == ZPC_D1);
    zpc_ctx_put(ctx);
    if (err < 0) {
        zpc_buf_drop(&b);
        if (last_err != err)
            zpc_error(err, "%s: %s", fn, zp_codec_strerror(err));
        return err;
    }
    if (b.len == 0) {
        zpc_buf_drop(&b);
        return 0;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}

int zp_compress(zp_codec *codec, const void *src, size_t len, void **out, size_t *out_len)
{
    return oneshot(codec, ZPC_C1, src, len, out, out_len, "zp_compress");
}

int zp_decompress(zp_codec *codec, const void *src, size_t len, void **out, size_t *out_len)
{
    return oneshot(codec, ZPC_D1, src, len, out, out_len, "zp_decompress");
}

/* ---------------------------------------------------------- information */

int zp_codec_available(int codec)
{
    if (codec < ZP_CODEC_GZIP || codec > ZP_CODEC_LZ4)
        return 0;
    for (int k = 0; k < ZPC_NKINDS; k++)
        if (choose(codec, k, 1) == NULL || choose(codec, k, 9) == NULL)
            return 0;
    return 1;
}

const char *zp_codec_engine(const zp_codec *codec, int what)
{
    int kind;
    if (codec == NULL)
        return NULL;
    switch (what) {
    case ZP_CODEC_COMPRESS: kind = ZPC_C1; break;
    case ZP_CODEC_COMPRESS | ZP_CODEC_STREAMING: kind = ZPC_CS; break;
    case ZP_CODEC_DECOMPRESS: kind = ZPC_D1; break;
    case ZP_CODEC_DECOMPRESS | ZP_CODEC_STREAMING: kind = ZPC_DS; break;
    default: return NULL;
    }
    return codec->kinds[kind].ops ? codec->kinds[kind].ops->name : NULL;
}

int zp_codec_detect(const void *src, size_t len)
{
    const unsigned char *p = src;
    if (p == NULL || len < 2)
        return 0;
    if (p[0] == 0x1f && p[1] == 0x8b)
        return ZP_CODEC_GZIP;
    if (len >= 4) {
        uint32_t m = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
        if (m == 0xFD2FB528u || (m & 0xFFFFFFF0u) == 0x184D2A50u)
            return ZP_CODEC_ZSTD;
        if (m == 0x184D2204u)
            return ZP_CODEC_LZ4;
    }
    if ((p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 && ((unsigned)p[0] << 8 | p[1]) % 31 == 0)
        return ZP_CODEC_ZLIB;
    return 0;
}

uint32_t zp_codec_crc32(uint32_t crc, const void *src, size_t len)
{
    int ok = 0;
    uint32_t r;
    if (src == NULL)
        return crc;
    r = zpc_isal_crc32(crc, src, len, &ok);
    if (!ok)
        r = zpc_deflate_crc32(crc, src, len, &ok);
    if (!ok)
        r = zpc_zlib_crc32(crc, src, len, &ok);
    if (!ok) { /* bitwise, when no engine is built */
        const unsigned char *p = src;
        r = ~crc;
        for (size_t i = 0; i < len; i++) {
            r ^= p[i];
            for (int k = 0; k < 8; k++)
                r = (r >> 1) ^ (0xEDB88320u & (0u - (r & 1)));
        }
        r = ~r;
    }
    return r;
}
