/*
 * engine_isal.c — ISA-L (igzip): gzip, zlib and raw deflate compression at
 * levels 1-3, one-shot and streaming, the fastest there is for them.
 *
 * ISA-L never allocates: the caller provides struct isal_zstream (about
 * 82 KB) and the level buffer (ISAL_DEF_LVLn_DEFAULT, 283-348 KB); both sit
 * inside the pooled context object, initialised for every stream (see
 * begin). One-shot calls run the same stateful engine with all input and
 * end_of_stream set, into an output buffer that grows if it must.
 */
#include "internal.h"

#ifdef ZPC_HAVE_ISAL

#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <string.h>

typedef struct ist {
    struct isal_zstream s;
    uint32_t level_buf_size;
    _Alignas(64) unsigned char level_buf[];
} ist;

static int isal_level(const zp_codec *c)
{
    return c->level > ISAL_DEF_MAX_LEVEL ? ISAL_DEF_MAX_LEVEL : c->level;
}

static uint32_t level_buf_size(int level)
{
    switch (level) {
    case 1: return ISAL_DEF_LVL1_DEFAULT;
    case 2: return ISAL_DEF_LVL2_DEFAULT;
    default: return ISAL_DEF_LVL3_DEFAULT;
    }
}

static size_t size(const zp_codec *c)
{
    return sizeof(ist) + level_buf_size(isal_level(c));
}

static int init(void *st, const zp_codec *c)
{
    ist *z = st;
    memset(&z->s, 0, sizeof z->s);
    isal_deflate_init(&z->s);
    z->level_buf_size = level_buf_size(isal_level(c));
    z->s.level = (uint32_t)isal_level(c);
    z->s.level_buf = z->level_buf;
    z->s.level_buf_size = z->level_buf_size;
    z->s.gzip_flag = c->format == ZP_CODEC_GZIP ? IGZIP_GZIP
                     : c->format == ZP_CODEC_ZLIB ? IGZIP_ZLIB : 0;
    z->s.flush = NO_FLUSH;
    return 0;
}

/* A stream starts from isal_deflate_init again, not isal_deflate_reset:
 * libisal 2.30's reset leaves the "wrapper header written" state set, so
 * a second gzip or zlib stream from a reset context has no header. Both
 * cost the same (a few fields; the level buffer's hash table is set up on
 * first use either way). */
static int begin(void *st, const zp_codec *c)
{
    return init(st, c);
}

static uint32_t clamp32(size_t n)
{
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static int step(void *st, const zp_codec *c, zpc_io *io, int finish)
{
    ist *z = st;
    uint32_t in = clamp32(io->in_len), out = clamp32(io->out_avail);
    int r;
    (void)c;
    if (z->s.internal_state.state == ZSTATE_END)
        return ZPC_DONE;
    z->s.next_in = (uint8_t *)io->in;
    z->s.avail_in = in;
    z->s.next_out = io->out;
    z->s.avail_out = out;
    if (finish && in == io->in_len)
        z->s.end_of_stream = 1;
    r = isal_deflate(&z->s);
    io->in += in - z->s.avail_in;
    io->in_len -= in - z->s.avail_in;
    io->out += out - z->s.avail_out;
    io->out_avail -= out - z->s.avail_out;
    if (r != COMP_OK)
        return zpc_error(-EINVAL, "isa-l: isal_deflate returned %d", r);
    return z->s.internal_state.state == ZSTATE_END ? ZPC_DONE : ZPC_MORE;
}

static const zpc_ops isal_compress = {
    .name = "isal", .state_size = size, .init = init, .begin = begin, .step = step,
};

const zpc_ops *zpc_isal_ops(int format, int kind, int level)
{
    (void)level;
    if (format != ZP_CODEC_GZIP && format != ZP_CODEC_DEFLATE && format != ZP_CODEC_ZLIB)
        return NULL;
    return kind == ZPC_C1 || kind == ZPC_CS ? &isal_compress : NULL;
}

uint32_t zpc_isal_crc32(uint32_t crc, const void *p, size_t n, int *ok)
{
    *ok = 1;
    return crc32_gzip_refl(crc, p, n);
}

#else

const zpc_ops *zpc_isal_ops(int format, int kind, int level)
{
    (void)format, (void)kind, (void)level;
    return NULL;
}

uint32_t zpc_isal_crc32(uint32_t crc, const void *p, size_t n, int *ok)
{
    (void)p, (void)n;
    *ok = 0;
    return crc;
}

#endif
