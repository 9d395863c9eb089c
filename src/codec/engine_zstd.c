/*
 * engine_zstd.c — libzstd, both directions, one-shot and streaming.
 *
 * Every context is a static one (ZSTD_initStaticCCtx / ZSTD_initStaticDCtx)
 * on a workspace inside the pooled context object, sized by zstd's own
 * estimates for the largest input the context can see at this level:
 * ZSTD_estimateCCtxSize(level) (every source size) for one-shot
 * compression, ZSTD_estimateCStreamSize(level) for streaming,
 * ZSTD_estimateDCtxSize() for one-shot decompression (whole frames into a
 * whole buffer need no window) and ZSTD_estimateDStreamSize(max_window,
 * default 8 MiB) for streaming decompression. A static context cannot grow
 * nor shrink, so the traps of a reused heap context (it grows when a bigger input arrives and
 * frees and reallocates its workspace on the 129th call that finds it more
 * than 3x too big) cannot happen, and ZSTD_compress()/ZSTD_decompress()
 * (a context per call) are never used.
 *
 * Streaming decompression accepts windows up to max_window (default 8 MiB:
 * every level up to 19; --ultra and --long frames need more and give
 * -ENOTSUP unless the codec was configured for them).
 */
#include "internal.h"

#ifdef ZPC_HAVE_ZSTD

#define ZSTD_STATIC_LINKING_ONLY
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

typedef struct zs_state {
    union {
        ZSTD_CCtx *cctx;
        ZSTD_DCtx *dctx;
    } u;
    size_t ws_size;
    int in_frame; /* streaming decompression: inside a frame */
    size_t head_len;            /* streaming: bytes of a frame's magic seen */
    unsigned char head[4];
    _Alignas(64) unsigned char ws[];
} zs_state;

/* Only zstd frames (magic 28 b5 2f fd) and skippable frames: the legacy
 * v0.x formats that libzstd may also decode make it malloc a legacy context
 * per call (and fail in a static one), so they are refused as unknown. */
static int magic_ok(const unsigned char *p)
{
    uint32_t m = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    return m == ZSTD_MAGICNUMBER || (m & ZSTD_MAGIC_SKIPPABLE_MASK) == ZSTD_MAGIC_SKIPPABLE_START;
}

static int map_error(size_t r, const char *what)
{
    ZSTD_ErrorCode e = ZSTD_getErrorCode(r);
    if (e == ZSTD_error_memory_allocation)
        return zpc_error(-ENOMEM, "zstd: %s: %s", what, ZSTD_getErrorName(r));
    if (e == ZSTD_error_frameParameter_windowTooLarge)
        return zpc_error(-ENOTSUP, "zstd: %s: frame window above the codec's max_window for "
                         "streaming (zp_codec_config.max_window; default 8 MiB)", what);
    return zpc_error(-EBADMSG, "zstd: %s: %s", what, ZSTD_getErrorName(r));
}

/* ----------------------------------------------------------- compression */

static size_t c1_size(const zp_codec *c)
{
    return sizeof(zs_state) + ZSTD_estimateCCtxSize(c->level);
}

static size_t cs_size(const zp_codec *c)
{
    return sizeof(zs_state) + ZSTD_estimateCStreamSize(c->level);
}

static int c_init_ws(zs_state *z, const zp_codec *c, size_t ws)
{
    z->ws_size = ws;
    z->u.cctx = ZSTD_initStaticCCtx(z->ws, ws);
    if (z->u.cctx == NULL)
        return ENOMEM;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(z->u.cctx, ZSTD_c_compressionLevel, c->level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z->u.cctx, ZSTD_c_checksumFlag, 1)))
        return EINVAL;
    return 0;
}

static int c1_init(void *st, const zp_codec *c)
{
    return c_init_ws(st, c, c1_size(c) - sizeof(zs_state));
}

static int cs_init(void *st, const zp_codec *c)
{
    return c_init_ws(st, c, cs_size(c) - sizeof(zs_state));
}

static int c1_oneshot(void *st, const zp_codec *c, const unsigned char *src, size_t len,
                      zpc_buf *b)
{
    zs_state *z = st;
    size_t n;
    int err;
    (void)c;
    if ((err = zpc_buf_reserve(b, ZSTD_compressBound(len))) < 0)
        return err;
    n = ZSTD_compress2(z->u.cctx, b->p, b->cap, src, len);
    if (ZSTD_isError(n)) {
        ZSTD_CCtx_reset(z->u.cctx, ZSTD_reset_session_only);
        return map_error(n, "ZSTD_compress2");
    }
    b->len = n;
    return 0;
}

static int cs_begin(void *st, const zp_codec *c)
{
    zs_state *z = st;
    (void)c;
    ZSTD_CCtx_reset(z->u.cctx, ZSTD_reset_session_only);
    return 0;
}

static int cs_step(void *st, const zp_codec *c, zpc_io *io, int finish)
{
    zs_state *z = st;
    ZSTD_inBuffer in = {io->in, io->in_len, 0};
    ZSTD_outBuffer out = {io->out, io->out_avail, 0};
    size_t r;
    (void)c;
    r = ZSTD_compressStream2(z->u.cctx, &out, &in, finish ? ZSTD_e_end : ZSTD_e_continue);
    io->in += in.pos;
    io->in_len -= in.pos;
    io->out += out.pos;
    io->out_avail -= out.pos;
    if (ZSTD_isError(r))
        return map_error(r, "ZSTD_compressStream2");
    return finish && r == 0 ? ZPC_DONE : ZPC_MORE;
}

static const zpc_ops zstd_c1 = {
    .name = "zstd", .state_size = c1_size, .init = c1_init, .oneshot = c1_oneshot,
};
static const zpc_ops zstd_cs = {
    .name = "zstd", .state_size = cs_size, .init = cs_init, .begin = cs_begin, .step = cs_step,
};

/* --------------------------------------------------------- decompression */

static size_t d1_size(const zp_codec *c)
{
    (void)c;
    return sizeof(zs_state) + ZSTD_estimateDCtxSize();
}

static size_t ds_size(const zp_codec *c)
{
    return sizeof(zs_state) + ZSTD_estimateDStreamSize((size_t)1 << c->window_log);
}

static int d1_init(void *st, const zp_codec *c)
{
    zs_state *z = st;
    z->ws_size = d1_size(c) - sizeof(zs_state);
    z->u.dctx = ZSTD_initStaticDCtx(z->ws, z->ws_size);
    return z->u.dctx ? 0 : ENOMEM;
}

static int ds_init(void *st, const zp_codec *c)
{
    zs_state *z = st;
    z->ws_size = ds_size(c) - sizeof(zs_state);
    z->u.dctx = ZSTD_initStaticDCtx(z->ws, z->ws_size);
    if (z->u.dctx == NULL)
        return ENOMEM;
    if (ZSTD_isError(ZSTD_DCtx_setParameter(z->u.dctx, ZSTD_d_windowLogMax, c->window_log)))
        return EINVAL;
    return 0;
}

static int d1_oneshot(void *st, const zp_codec *c, const unsigned char *src, size_t len,
                      zpc_buf *b)
{
    zs_state *z = st;
    const size_t limit = c->max_output;
    size_t pos = 0;
    int frame = 0, err;
    while (pos < len) {
        size_t rem = len - pos, fsz, space;
        unsigned long long cs;
        frame++;
        if (rem < 4 || !magic_ok(src + pos))
            return zpc_error(-EBADMSG, "zstd: frame %d: %s", frame,
                             rem < 4 ? "truncated" : "not a zstd frame (legacy formats are not decoded)");
        fsz = ZSTD_findFrameCompressedSize(src + pos, rem);
        if (ZSTD_isError(fsz))
            return zpc_error(-EBADMSG, "zstd: frame %d: %s", frame, ZSTD_getErrorName(fsz));
        cs = ZSTD_getFrameContentSize(src + pos, rem);
        if (cs == ZSTD_CONTENTSIZE_ERROR)
            return zpc_error(-EBADMSG, "zstd: frame %d: bad frame header", frame);
        if (cs != ZSTD_CONTENTSIZE_UNKNOWN) {
            if (cs > limit - b->len)
                return zpc_error(-EFBIG, "zstd: frame %d: content size %llu exceeds max_output "
                                 "(%zu bytes)", frame, cs, limit);
            space = (size_t)cs;
        } else {
            space = fsz < SIZE_MAX / 4 && fsz * 4 > 65536 ? fsz * 4 : 65536;
            if (space > limit - b->len)
                space = limit - b->len;
        }
        for (;;) {
            size_t r;
            if ((err = zpc_buf_reserve(b, b->len + (space ? space : 1))) < 0)
                return err;
            r = ZSTD_decompressDCtx(z->u.dctx, b->p + b->len, space, src + pos, fsz);
            if (!ZSTD_isError(r)) {
                b->len += r;
                pos += fsz;
                break;
            }
            if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall &&
                cs == ZSTD_CONTENTSIZE_UNKNOWN) {
                if (space >= limit - b->len)
                    return zpc_error(-EFBIG, "zstd: frame %d: decompressed data exceeds "
                                     "max_output (%zu bytes)", frame, limit);
                space = space > (limit - b->len) / 2 ? limit - b->len : space * 2;
                continue;
            }
            ZSTD_DCtx_reset(z->u.dctx, ZSTD_reset_session_only);
            return map_error(r, "ZSTD_decompressDCtx");
        }
    }
    return 0;
}

static int ds_begin(void *st, const zp_codec *c)
{
    zs_state *z = st;
    (void)c;
    ZSTD_DCtx_reset(z->u.dctx, ZSTD_reset_session_only);
    z->in_frame = 0;
    z->head_len = 0;
    return 0;
}

/* At a frame boundary: takes the next frame's magic (it may come a byte at a
 * time), checks it and hands it to the decoder, which buffers the header. */
static int ds_start_frame(zs_state *z, zpc_io *io)
{
    while (z->head_len < 4 && io->in_len > 0) {
        z->head[z->head_len++] = *io->in++;
        io->in_len--;
    }
    z->in_frame = 1;
    if (z->head_len < 4)
        return ZPC_MORE;
    if (!magic_ok(z->head))
        return zpc_error(-EBADMSG, "zstd: not a zstd frame (legacy formats are not decoded)");
    {
        ZSTD_inBuffer in = {z->head, 4, 0};
        ZSTD_outBuffer out = {io->out, 0, 0};
        size_t r = ZSTD_decompressStream(z->u.dctx, &out, &in);
        if (ZSTD_isError(r))
            return map_error(r, "ZSTD_decompressStream");
        if (in.pos != 4)
            return zpc_error(-EBADMSG, "zstd: frame header not taken");
    }
    z->head_len = 0;
    return 1;
}

static int ds_step(void *st, const zp_codec *c, zpc_io *io, int finish)
{
    zs_state *z = st;
    (void)c;
    for (;;) {
        ZSTD_inBuffer in = {io->in, io->in_len, 0};
        ZSTD_outBuffer out = {io->out, io->out_avail, 0};
        size_t r;
        if (io->in_len == 0 && !z->in_frame)
            return finish ? ZPC_DONE : ZPC_MORE;
        if (z->head_len > 0 || !z->in_frame) {
            int s = ds_start_frame(z, io);
            if (s <= 0)
                return s;
            in.src = io->in;
            in.size = io->in_len;
        }
        if (io->out_avail == 0)
            return ZPC_MORE;
        r = ZSTD_decompressStream(z->u.dctx, &out, &in);
        io->in += in.pos;
        io->in_len -= in.pos;
        io->out += out.pos;
        io->out_avail -= out.pos;
        if (ZSTD_isError(r))
            return map_error(r, "ZSTD_decompressStream");
        if (r == 0) {
            z->in_frame = 0; /* a frame ended, all flushed */
            continue;
        }
        return ZPC_MORE;
    }
}

static const zpc_ops zstd_d1 = {
    .name = "zstd", .state_size = d1_size, .init = d1_init, .oneshot = d1_oneshot,
};
static const zpc_ops zstd_ds = {
    .name = "zstd", .state_size = ds_size, .init = ds_init, .begin = ds_begin, .step = ds_step,
};

const zpc_ops *zpc_zstd_ops(int format, int kind, int level)
{
    if (format != ZP_CODEC_ZSTD || level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
        return NULL;
    switch (kind) {
    case ZPC_C1: return &zstd_c1;
    case ZPC_CS: return &zstd_cs;
    case ZPC_D1: return &zstd_d1;
    default: return &zstd_ds;
    }
}

#else

const zpc_ops *zpc_zstd_ops(int format, int kind, int level)
{
    (void)format, (void)kind, (void)level;
    return NULL;
}

#endif
