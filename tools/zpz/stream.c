/*
 * zpz: streaming decompression through the codec library (zp_zstream), for
 * every input zpz cannot split into blocks itself: gzip from gzip or pigz
 * (one member or many), the rest of a zpz stream after a member of another
 * writer, zstd and lz4 frames. The input is fed as read, 256 KiB at a time;
 * the stream hands out its output in pooled buffers, written and put back
 * at once: memory stays bounded whatever the length.
 */
#include "zpz.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

static int emit(zpz_job *job, zp_pool *pool, void *buf, size_t len)
{
    int rc = 0;
    if (buf == NULL)
        return 0;
    if (job->out_fd >= 0)
        rc = zpz_write_full(job->out_fd, buf, len);
    zp_put(pool, buf);
    return rc < 0 ? zpz_fail(job, rc, "write error: %s", strerror(-rc)) : 0;
}

static int bad_input(zpz_job *job, int rc, uint64_t at)
{
    if (rc == -EBADMSG)
        return zpz_fail(job, rc, "corrupt or truncated %s data near byte %" PRIu64 ": %s",
                        job->err_format, at, zp_codec_strerror(rc));
    return zpz_fail(job, rc, "decompression failed near byte %" PRIu64 ": %s", at,
                    zp_codec_strerror(rc));
}

int zpz_stream_decode(zpz_job *job, zpz_in *in, int format)
{
    zp_codec_config cfg;
    zp_codec *codec;
    zp_zstream *zs;
    zp_codec_config_init(&cfg, zpz_codec_of(format));
    cfg.max_output = SIZE_MAX; /* a stream: no limit, memory bounded anyway */
    /* zstd: windows up to 128 MiB, as the zstd tool accepts (--long,
     * --ultra); the context's pages beyond a frame's window stay untouched,
     * so ordinary files cost no more */
    if (format == ZPZ_FMT_ZSTD)
        cfg.max_window = 128 * ZPZ_MiB;
    job->err_format = zpz_format_name(format);
    int rc = zp_codec_create(job->pool, &cfg, &codec);
    if (rc < 0)
        return zpz_fail(job, rc, "cannot create the %s decoder: %s", zpz_format_name(format),
                        zp_codec_strerror(rc));
    rc = zp_zstream_open(codec, ZP_ZSTREAM_DECOMPRESS, &zs);
    if (rc < 0) {
        zp_codec_destroy(codec);
        return zpz_fail(job, rc, "cannot open a %s stream: %s", zpz_format_name(format),
                        zp_codec_strerror(rc));
    }
    for (;;) {
        ssize_t a = zpz_in_fill(in, 1);
        if (a < 0) {
            rc = zpz_fail(job, (int)a, "read error: %s", strerror((int)-a));
            goto out;
        }
        if (a == 0)
            break;
        while (in->pos < in->len) {
            size_t used = 0, len = 0;
            void *buf = NULL;
            rc = zp_zstream_write(zs, in->buf + in->pos, in->len - in->pos, &used, &buf, &len);
            if (rc < 0) {
                rc = bad_input(job, rc, in->consumed + used);
                goto out;
            }
            in->pos += used;
            in->consumed += used;
            if ((rc = emit(job, job->pool, buf, len)) < 0)
                goto out;
        }
    }
    do {
        size_t len = 0;
        void *buf = NULL;
        rc = zp_zstream_finish(zs, &buf, &len);
        if (rc < 0) {
            rc = rc == -EBADMSG ? zpz_fail(job, rc, "unexpected end of file (%s data "
                                                    "truncated after %" PRIu64 " bytes)",
                                           zpz_format_name(format), in->consumed)
                                : bad_input(job, rc, in->consumed);
            goto out;
        }
        int more = rc;
        if ((rc = emit(job, job->pool, buf, len)) < 0)
            goto out;
        rc = more;
    } while (rc == 1);
out:
    zp_zstream_close(zs);
    zp_codec_destroy(codec);
    return rc < 0 ? rc : 0;
}
