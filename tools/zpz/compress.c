/*
 * zpz: compression. The input is cut into blocks of job->block bytes; each
 * block becomes one complete gzip member, zstd frame or lz4 frame, made by
 * zp_compress on a worker thread with one of the codec library's pooled
 * contexts, into a buffer of the pool. Members and frames may be
 * concatenated (RFC 1952 2.2; the zstd and lz4 frame formats), so the
 * output is one valid stream that any decoder reads.
 *
 * gzip members get zpz's header (format.c: the extra field with the
 * member's sizes) instead of the codec's: the codec's member is written
 * from the end of its header on (same deflate data, same CRC-32 and size
 * trailer), after zpz's 24 bytes, in one writev.
 */
#include "zpz.h"

#include <errno.h>
#include <string.h>

typedef struct cctx {
    zpz_job *job;
    zp_codec *codec;
    uint64_t blocks; /* blocks read so far */
} cctx;

static int c_read(void *ctx, zpz_slot *s)
{
    cctx *c = ctx;
    zpz_job *job = c->job;
    s->in = zp_get(job->pool, job->block);
    if (s->in == NULL)
        return zpz_fail(job, -errno, "out of memory: %s", strerror(errno));
    ssize_t n = zpz_read_full(job->in_fd, s->in, job->block);
    if (n < 0)
        return zpz_fail(job, (int)n, "read error: %s", strerror((int)-n));
    if (n == 0 && c->blocks > 0) {
        zp_put(job->pool, s->in);
        s->in = NULL;
        return 0;
    }
    /* an empty input still makes one (empty) member or frame, as gzip,
     * zstd and lz4 write for an empty file */
    s->in_len = (size_t)n;
    c->blocks++;
    return 1;
}

static int c_work(void *ctx, zpz_slot *s)
{
    cctx *c = ctx;
    zpz_job *job = c->job;
    void *out = NULL;
    size_t out_len = 0;
    int rc = zp_compress(c->codec, s->in, s->in_len, &out, &out_len);
    if (rc < 0)
        return zpz_fail(job, rc, "compression failed: %s", zp_codec_strerror(rc));
    zp_put(job->pool, s->in); /* free the input as soon as possible */
    s->in = NULL;
    s->out = out;
    s->out_off = 0;
    s->out_len = out_len;
    s->hdr_len = 0;
    if (zpz_codec_of(job->format) != ZP_CODEC_GZIP)
        return 0;

    /* The codec's member: its header (skipped: zpz writes its own), the
     * deflate data, CRC-32 and ISIZE. The codec once left the header out
     * on a reused ISA-L context (NEEDS-FROM-CODEC.md, fixed there since);
     * a member without one is still taken: deflate data never starts with
     * 1f 8b (a first block of type 3 is invalid), so the two cases are
     * told apart safely. The trailer's ISIZE is checked either way. */
    const unsigned char *m = out;
    int h = 0;
    if (m != NULL && out_len >= 2 && m[0] == 0x1f && m[1] == 0x8b)
        h = zpz_gz_header_len(m, out_len);
    if (m == NULL || h < 0 || out_len - (size_t)h < 10 ||
        ((uint32_t)m[out_len - 4] | (uint32_t)m[out_len - 3] << 8 |
         (uint32_t)m[out_len - 2] << 16 | (uint32_t)m[out_len - 1] << 24) !=
            (uint32_t)s->in_len)
        return zpz_fail(job, -EPROTO, "the codec's gzip member is malformed");
    uint64_t msize = ZPZ_GZ_HDR_LEN + (out_len - (size_t)h);
    if (msize > UINT32_MAX)
        return zpz_fail(job, -EFBIG, "block too large");
    zpz_gz_header(s->hdr, (uint32_t)msize, (uint32_t)s->in_len);
    s->hdr_len = ZPZ_GZ_HDR_LEN;
    s->out_off = (size_t)h;
    s->out_len = out_len - (size_t)h;
    return 0;
}

static void c_release(void *ctx, zpz_slot *s)
{
    cctx *c = ctx;
    zp_put(c->job->pool, s->in); /* NULL: no-op */
    zp_put(c->job->pool, s->out);
    s->in = s->out = NULL;
}

int zpz_compress(zpz_job *job)
{
    cctx c = {.job = job};
    zp_codec_config cfg;
    zp_codec_config_init(&cfg, zpz_codec_of(job->format));
    cfg.level = job->level;
    int rc = zp_codec_create(job->pool, &cfg, &c.codec);
    if (rc < 0)
        return zpz_fail(job, rc, "cannot create the %s codec (level %d): %s",
                        zpz_format_name(job->format), job->level, zp_codec_strerror(rc));
    zpz_stage st = {c_read, c_work, c_release, &c};
    rc = zpz_pipeline_run(job, &st);
    zp_codec_destroy(c.codec);
    return rc;
}
