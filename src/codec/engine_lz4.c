/*
 * engine_lz4.c — liblz4's frame API (the format the lz4 tool reads and
 * writes), both directions, one-shot and streaming.
 *
 * Contexts are made with LZ4F_createCompressionContext_advanced /
 * LZ4F_createDecompressionContext_advanced and an LZ4F_CustomMem whose
 * callbacks serve an arena inside the pooled context object. That covers
 * the traps of liblz4 1.9.4: a reused compression context callocs and
 * frees its 64 KiB buffer on every frame, and the decompression context
 * allocates its block buffers (up to 4 MiB + 4 MiB + 128 KiB for 4 MiB
 * linked blocks) on its first frame and again when a frame needs bigger
 * ones: all of it now comes from the arena (sized for the largest block
 * size the format has), never from malloc.
 *
 * Our frames: independent 64 KiB blocks with a content checksum; one-shot
 * frames carry the content size. Streaming compression stages each
 * LZ4F_compressUpdate's output in the context (LZ4F wants room for a whole
 * block's bound) and copies it out as the caller's buffers have room.
 */
#include "internal.h"

#ifdef ZPC_HAVE_LZ4

#define LZ4F_STATIC_LINKING_ONLY
#include <lz4frame.h>
#include <string.h>

#define C_ARENA (640 * ZPC_KiB)                  /* cctx, LZ4_streamHC_t (256 KiB), 64 KiB buffer */
#define D_ARENA (8 * ZPC_MiB + 512 * ZPC_KiB)   /* dctx, 4 MiB + 4 MiB + 128 KiB block buffers */
#define BLOCK (64 * ZPC_KiB)

typedef struct l4 {
    zpc_arena arena;
    LZ4F_cctx *cctx;
    LZ4F_dctx *dctx;
    LZ4F_preferences_t prefs;
    /* streaming compression: staged output */
    unsigned char *stage;
    size_t stage_cap, stage_pos, stage_len;
    int begun, ended;
    /* decompression: inside a frame */
    int in_frame;
    _Alignas(64) unsigned char mem[];
} l4;

static void *a_alloc(void *opaque, size_t n)
{
    return zpc_arena_alloc(opaque, n);
}

static void *a_calloc(void *opaque, size_t n)
{
    return zpc_arena_calloc(opaque, n);
}

static void a_free(void *opaque, void *p)
{
    zpc_arena_free(opaque, p);
}

static LZ4F_CustomMem cmem(l4 *z)
{
    LZ4F_CustomMem m;
    m.customAlloc = a_alloc;
    m.customCalloc = a_calloc;
    m.customFree = a_free;
    m.opaqueState = &z->arena;
    return m;
}

static void set_prefs(l4 *z, const zp_codec *c)
{
    memset(&z->prefs, 0, sizeof z->prefs);
    z->prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    z->prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    z->prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    z->prefs.compressionLevel = c->level;
}

static int lz4_err(size_t r, const char *what)
{
    if (LZ4F_getErrorCode(r) == LZ4F_ERROR_allocation_failed)
        return zpc_error(-ENOMEM, "lz4: %s: %s (context arena)", what, LZ4F_getErrorName(r));
    return zpc_error(-EBADMSG, "lz4: %s: %s", what, LZ4F_getErrorName(r));
}

/* ----------------------------------------------------------- compression */

static size_t stage_size(const zp_codec *c)
{
    l4 z;
    set_prefs(&z, c);
    return LZ4F_compressBound(BLOCK, &z.prefs) + LZ4F_HEADER_SIZE_MAX + 64;
}

static size_t c_size(const zp_codec *c)
{
    return sizeof(l4) + C_ARENA + stage_size(c);
}

static int c_init(void *st, const zp_codec *c)
{
    l4 *z = st;
    memset(z, 0, sizeof *z);
    zpc_arena_init(&z->arena, z->mem, C_ARENA);
    z->stage = z->mem + C_ARENA;
    z->stage_cap = stage_size(c);
    set_prefs(z, c);
    z->cctx = LZ4F_createCompressionContext_advanced(cmem(z), LZ4F_VERSION);
    return z->cctx ? 0 : ENOMEM;
}

static void c_fini(void *st, const zp_codec *c)
{
    l4 *z = st;
    (void)c;
    LZ4F_freeCompressionContext(z->cctx); /* frees into the arena */
}

static int c_oneshot(void *st, const zp_codec *c, const unsigned char *src, size_t len,
                     zpc_buf *b)
{
    l4 *z = st;
    LZ4F_preferences_t p = z->prefs;
    size_t n;
    int err;
    (void)c;
    p.frameInfo.contentSize = len;
    if ((err = zpc_buf_reserve(b, LZ4F_compressFrameBound(len, &p))) < 0)
        return err;
    n = LZ4F_compressFrame_usingCDict(z->cctx, b->p, b->cap, src, len, NULL, &p);
    if (LZ4F_isError(n))
        return lz4_err(n, "LZ4F_compressFrame_usingCDict");
    b->len = n;
    return 0;
}

static int c_begin(void *st, const zp_codec *c)
{
    l4 *z = st;
    (void)c;
    z->stage_pos = z->stage_len = 0;
    z->begun = z->ended = 0;
    return 0;
}

static int c_step(void *st, const zp_codec *c, zpc_io *io, int finish)
{
    l4 *z = st;
    (void)c;
    for (;;) {
        size_t n;
        if (z->stage_pos < z->stage_len) {
            size_t k = z->stage_len - z->stage_pos;
            if (k > io->out_avail)
                k = io->out_avail;
            memcpy(io->out, z->stage + z->stage_pos, k);
            io->out += k;
            io->out_avail -= k;
            z->stage_pos += k;
            if (z->stage_pos < z->stage_len)
                return ZPC_MORE; /* the caller's buffer is full */
        }
        z->stage_pos = z->stage_len = 0;
        if (!z->begun) {
            n = LZ4F_compressBegin(z->cctx, z->stage, z->stage_cap, &z->prefs);
            if (LZ4F_isError(n))
                return lz4_err(n, "LZ4F_compressBegin");
            z->begun = 1;
        } else if (io->in_len > 0) {
            size_t piece = io->in_len < BLOCK ? io->in_len : BLOCK;
            n = LZ4F_compressUpdate(z->cctx, z->stage, z->stage_cap, io->in, piece, NULL);
            if (LZ4F_isError(n))
                return lz4_err(n, "LZ4F_compressUpdate");
            io->in += piece;
            io->in_len -= piece;
        } else if (finish && !z->ended) {
            n = LZ4F_compressEnd(z->cctx, z->stage, z->stage_cap, NULL);
            if (LZ4F_isError(n))
                return lz4_err(n, "LZ4F_compressEnd");
            z->ended = 1;
        } else {
            return z->ended ? ZPC_DONE : ZPC_MORE;
        }
        z->stage_len = n;
    }
}

static const zpc_ops lz4_c1 = {
    .name = "lz4", .state_size = c_size, .init = c_init, .fini = c_fini, .oneshot = c_oneshot,
};
static const zpc_ops lz4_cs = {
    .name = "lz4", .state_size = c_size, .init = c_init, .fini = c_fini,
    .begin = c_begin, .step = c_step,
};

/* --------------------------------------------------------- decompression */

static size_t d_size(const zp_codec *c)
{
    (void)c;
    return sizeof(l4) + D_ARENA;
}

static int d_init(void *st, const zp_codec *c)
{
    l4 *z = st;
    (void)c;
    memset(z, 0, sizeof *z);
    zpc_arena_init(&z->arena, z->mem, D_ARENA);
    z->dctx = LZ4F_createDecompressionContext_advanced(cmem(z), LZ4F_VERSION);
    return z->dctx ? 0 : ENOMEM;
}

static void d_fini(void *st, const zp_codec *c)
{
    l4 *z = st;
    (void)c;
    LZ4F_freeDecompressionContext(z->dctx);
}

static int d_begin(void *st, const zp_codec *c)
{
    l4 *z = st;
    (void)c;
    LZ4F_resetDecompressionContext(z->dctx);
    z->in_frame = 0;
    return 0;
}

static int d_step(void *st, const zp_codec *c, zpc_io *io, int finish)
{
    l4 *z = st;
    LZ4F_decompressOptions_t opt;
    (void)c;
    memset(&opt, 0, sizeof opt); /* stableDst 0: LZ4F keeps its own history */
    for (;;) {
        size_t in = io->in_len, out = io->out_avail, r;
        if (io->in_len == 0 && !z->in_frame)
            return finish ? ZPC_DONE : ZPC_MORE;
        if (io->out_avail == 0)
            return ZPC_MORE;
        r = LZ4F_decompress(z->dctx, io->out, &out, io->in, &in, &opt);
        io->in += in;
        io->in_len -= in;
        io->out += out;
        io->out_avail -= out;
        if (LZ4F_isError(r)) {
            LZ4F_resetDecompressionContext(z->dctx);
            return lz4_err(r, "LZ4F_decompress");
        }
        if (r == 0) {
            z->in_frame = 0; /* a frame ended, all flushed */
            continue;
        }
        if (in > 0)
            z->in_frame = 1;
        return ZPC_MORE;
    }
}

static const zpc_ops lz4_d = {
    .name = "lz4", .state_size = d_size, .init = d_init, .fini = d_fini,
    .begin = d_begin, .step = d_step,
};

const zpc_ops *zpc_lz4_ops(int format, int kind, int level)
{
    (void)level;
    if (format != ZP_CODEC_LZ4)
        return NULL;
    switch (kind) {
    case ZPC_C1: return &lz4_c1;
    case ZPC_CS: return &lz4_cs;
    default: return &lz4_d;
    }
}

#else

const zpc_ops *zpc_lz4_ops(int format, int kind, int level)
{
    (void)format, (void)kind, (void)level;
    return NULL;
}

#endif
