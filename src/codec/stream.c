/*
 * stream.c — zp_zstream: input in pieces of any size, output handed out
 * as pooled buffers of stream_chunk capacity. A stream IS its context
 * object (zpc_ctx heads it): opening one is a get from the codec's object
 * pool, closing it a put.
 */
#include "internal.h"

#include <string.h>

int zp_zstream_open(zp_codec *codec, int direction, zp_zstream **out)
{
    zpc_kind *k;
    zpc_ctx *ctx;
    int err;
    if (out != NULL)
        *out = NULL;
    if (codec == NULL || out == NULL ||
        (direction != ZP_ZSTREAM_COMPRESS && direction != ZP_ZSTREAM_DECOMPRESS))
        return zpc_error(-EINVAL, "zp_zstream_open: %s",
                         codec == NULL || out == NULL ? "NULL argument" : "unknown direction");
    k = &codec->kinds[direction == ZP_ZSTREAM_COMPRESS ? ZPC_CS : ZPC_DS];
    ctx = zpc_ctx_get(k, &err);
    if (ctx == NULL)
        return err;
    ctx->out.pool = codec->pool;
    ctx->out.p = NULL;
    ctx->out.len = ctx->out.cap = 0;
    ctx->total_in = ctx->total_out = 0;
    ctx->err = 0;
    ctx->finished = 0;
    err = k->ops->begin(zpc_state(ctx), codec);
    if (err < 0) {
        zpc_ctx_put(ctx);
        return err;
    }
    *out = (zp_zstream *)ctx;
    return 0;
}

static int is_decompress(const zpc_ctx *ctx)
{
    return ctx->kind == &ctx->kind->codec->kinds[ZPC_DS];
}

static int sticky(zpc_ctx *ctx, int err)
{
    ctx->err = err;
    zpc_buf_drop(&ctx->out);
    return err;
}

/* One step of the engine into the current output buffer. *progress: bytes
 * were consumed or produced. Returns the step's result or an error. */
static int run(zpc_ctx *ctx, zpc_io *io, int finish, int *progress)
{
    const zp_codec *c = ctx->kind->codec;
    size_t room, in_before;
    int r;
    if (ctx->out.p == NULL) {
        if ((r = zpc_buf_reserve(&ctx->out, c->stream_chunk)) < 0)
            return r;
        if (ctx->out.cap > c->stream_chunk)
            ctx->out.cap = c->stream_chunk; /* every buffer handed out is the same size */
    }
    room = ctx->out.cap - ctx->out.len;
    if (is_decompress(ctx) && c->max_output != SIZE_MAX) {
        uint64_t left = ctx->total_out <= c->max_output ? c->max_output - ctx->total_out : 0;
        if (room > left + 1)
            room = (size_t)left + 1;
    }
    io->out = ctx->out.p + ctx->out.len;
    io->out_avail = room;
    in_before = io->in_len;
    r = ctx->kind->ops->step(zpc_state(ctx), c, io, finish);
    ctx->out.len += room - io->out_avail;
    ctx->total_out += room - io->out_avail;
    ctx->total_in += in_before - io->in_len;
    *progress = io->out_avail != room || io->in_len != in_before;
    if (is_decompress(ctx) && ctx->total_out > c->max_output)
        return zpc_error(-EFBIG, "zp_zstream: decompressed data exceeds max_output (%zu bytes)",
                         c->max_output);
    return r;
}

static void hand_out(zpc_ctx *ctx, void **out, size_t *out_len)
{
    *out = ctx->out.p;
    *out_len = ctx->out.len;
    ctx->out.p = NULL;
    ctx->out.len = ctx->out.cap = 0;
}

int zp_zstream_write(zp_zstream *zs, const void *src, size_t len, size_t *consumed, void **out,
                     size_t *out_len)
{
    zpc_ctx *ctx = (zpc_ctx *)zs;
    zpc_io io;
    if (consumed != NULL)
        *consumed = 0;
    if (out != NULL)
        *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    if (ctx == NULL || consumed == NULL || out == NULL || out_len == NULL ||
        (src == NULL && len > 0))
        return zpc_error(-EINVAL, "zp_zstream_write: NULL argument");
    if (ctx->err)
        return ctx->err;
    if (ctx->finished)
        return zpc_error(-EINVAL, "zp_zstream_write: the stream was finished");
    io.in = src ? src : (const void *)"";
    io.in_len = len;
    for (;;) {
        int progress, r = run(ctx, &io, 0, &progress);
        if (r < 0)
            return sticky(ctx, r);
        if (ctx->out.len == ctx->out.cap) {
            hand_out(ctx, out, out_len);
            break;
        }
        if (!progress || r == ZPC_DONE)
            break;
    }
    *consumed = len - io.in_len;
    return 0;
}

int zp_zstream_finish(zp_zstream *zs, void **out, size_t *out_len)
{
    zpc_ctx *ctx = (zpc_ctx *)zs;
    zpc_io io;
    if (out != NULL)
        *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    if (ctx == NULL || out == NULL || out_len == NULL)
        return zpc_error(-EINVAL, "zp_zstream_finish: NULL argument");
    if (ctx->err)
        return ctx->err;
    io.in = (const unsigned char *)"";
    io.in_len = 0;
    while (!ctx->finished) {
        int progress, r = run(ctx, &io, 1, &progress);
        if (r < 0)
            return sticky(ctx, r);
        if (r == ZPC_DONE) {
            ctx->finished = 1;
            break;
        }
        if (ctx->out.len == ctx->out.cap) {
            hand_out(ctx, out, out_len);
            return 1;
        }
        if (!progress)
            return sticky(ctx, zpc_error(-EBADMSG, "zp_zstream_finish: %s: input ends inside a "
                                         "stream (truncated)", ctx->kind->ops->name));
    }
    if (ctx->out.len > 0)
        hand_out(ctx, out, out_len);
    else
        zpc_buf_drop(&ctx->out);
    return 0;
}

void zp_zstream_close(zp_zstream *zs)
{
    zpc_ctx *ctx = (zpc_ctx *)zs;
    if (ctx == NULL)
        return;
    zpc_buf_drop(&ctx->out);
    zpc_ctx_put(ctx);
}

uint64_t zp_zstream_total_in(const zp_zstream *zs)
{
    return zs ? ((const zpc_ctx *)zs)->total_in : 0;
}

uint64_t zp_zstream_total_out(const zp_zstream *zs)
{
    return zs ? ((const zpc_ctx *)zs)->total_out : 0;
}
