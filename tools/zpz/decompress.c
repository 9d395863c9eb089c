/*
 * zpz: decompression. The format comes from the first bytes. A gzip stream
 * whose members carry zpz's extra field (format.c) is inflated in
 * parallel: the reader takes whole members by the size in their header,
 * workers inflate them with zp_decompress, the writer writes them in
 * order; each member's output must have the size its header announced.
 * Everything else — gzip from gzip or pigz, a zpz stream followed by
 * members of another writer, zstd, lz4 — is decoded as one stream through
 * the codec library's streaming decoder (stream.c), with bounded memory.
 */
#include "zpz.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define IN_BUF (256 * ZPZ_KiB)

typedef struct dctx {
    zpz_job *job;
    zp_codec *codec;
    zpz_in *in;
    int foreign; /* the reader stopped at a member that is not zpz's */
} dctx;

static int d_read(void *ctx, zpz_slot *s)
{
    dctx *d = ctx;
    zpz_job *job = d->job;
    zpz_in *in = d->in;
    ssize_t a = zpz_in_fill(in, ZPZ_GZ_HDR_LEN);
    if (a < 0)
        return zpz_fail(job, (int)a, "read error: %s", strerror((int)-a));
    if (a == 0)
        return 0;
    uint32_t msize, isize;
    if (!zpz_gz_parse_zp(in->buf + in->pos, (size_t)a, &msize, &isize)) {
        d->foreign = 1; /* the rest goes to the streaming decoder */
        return 0;
    }
    if (msize < ZPZ_GZ_HDR_LEN + 2 + 8 || msize > ZPZ_MEMBER_MAX || isize > ZPZ_MEMBER_MAX)
        return zpz_fail(job, -EBADMSG,
                        "corrupt zpz member header at byte %" PRIu64, in->consumed);
    s->in = zp_get(job->pool, msize);
    if (s->in == NULL)
        return zpz_fail(job, -errno, "out of memory: %s", strerror(errno));
    uint64_t at = in->consumed;
    int rc = zpz_in_take(in, s->in, msize);
    if (rc == -EBADMSG)
        return zpz_fail(job, rc, "unexpected end of file (member at byte %" PRIu64 ")", at);
    if (rc < 0)
        return zpz_fail(job, rc, "read error: %s", strerror(-rc));
    s->in_len = msize;
    s->expect = isize;
    s->out_off = at; /* the member's offset, for messages, until work() */
    return 1;
}

static int d_work(void *ctx, zpz_slot *s)
{
    dctx *d = ctx;
    zpz_job *job = d->job;
    uint64_t at = s->out_off;
    void *out = NULL;
    size_t out_len = 0;
    int rc = zp_decompress(d->codec, s->in, s->in_len, &out, &out_len);
    if (rc < 0)
        return zpz_fail(job, rc, "member at byte %" PRIu64 ": %s", at, zp_codec_strerror(rc));
    zp_put(job->pool, s->in);
    s->in = NULL;
    s->out = out;
    s->out_off = 0;
    s->out_len = out_len;
    s->hdr_len = 0;
    if (out_len != s->expect)
        return zpz_fail(job, -EBADMSG,
                        "member at byte %" PRIu64 ": %zu bytes, its header says %" PRIu32,
                        at, out_len, s->expect);
    return 0;
}

static void d_release(void *ctx, zpz_slot *s)
{
    dctx *d = ctx;
    zp_put(d->job->pool, s->in);
    zp_put(d->job->pool, s->out);
    s->in = s->out = NULL;
}

static int parallel_gzip(zpz_job *job, zpz_in *in)
{
    dctx d = {.job = job, .in = in};
    zp_codec_config cfg;
    zp_codec_config_init(&cfg, ZP_CODEC_GZIP);
    cfg.max_output = ZPZ_MEMBER_MAX;
    int rc = zp_codec_create(job->pool, &cfg, &d.codec);
    if (rc < 0)
        return zpz_fail(job, rc, "cannot create the gzip decoder: %s", zp_codec_strerror(rc));
    zpz_stage st = {d_read, d_work, d_release, &d};
    rc = zpz_pipeline_run(job, &st);
    zp_codec_destroy(d.codec);
    if (rc == 0 && d.foreign)
        rc = zpz_stream_decode(job, in, ZPZ_FMT_GZIP);
    return rc;
}

int zpz_decompress(zpz_job *job)
{
    zpz_in in;
    int rc = zpz_in_open(&in, job->pool, job->in_fd, IN_BUF);
    if (rc < 0)
        return zpz_fail(job, rc, "out of memory: %s", strerror(-rc));
    ssize_t a = zpz_in_fill(&in, ZPZ_GZ_HDR_LEN);
    if (a < 0) {
        rc = zpz_fail(job, (int)a, "read error: %s", strerror((int)-a));
    } else if (a == 0) {
        rc = zpz_fail(job, -EBADMSG, "unexpected end of file (empty input)");
    } else {
        int fmt = zpz_detect(in.buf + in.pos, (size_t)a);
        uint32_t msize, isize;
        if (fmt == 0)
            rc = zpz_fail(job, -EBADMSG, "not in gzip, zstd or lz4 format");
        else if (fmt == ZPZ_FMT_GZIP &&
                 zpz_gz_parse_zp(in.buf + in.pos, (size_t)a, &msize, &isize))
            rc = parallel_gzip(job, &in);
        else
            rc = zpz_stream_decode(job, &in, fmt);
    }
    zpz_in_close(&in, job->pool);
    return rc;
}
