/*
 * sc_codec.c — zp_bench_codec: the compression rows (bench/README.md, "The
 * codec rows").
 *
 *   codec   MB/s of uncompressed data, one thread, at 4 KiB, 64 KiB and
 *           1 MiB chunks, for every codec (gzip, deflate, zlib at levels 1
 *           and 6; zstd level 1; lz4) and direction, three variants:
 *             zeropool  zp_compress / zp_decompress, the output put back;
 *             fresh     the engine's library with a fresh context and a
 *                       malloc'd output per chunk;
 *             reused    the best library call with a context made once
 *                       and an output buffer allocated once;
 *           and for the deflate formats a fourth, zlib: zlib with a reused
 *           z_stream (deflateReset / inflateReset), the usual baseline.
 *           The "library" is the engine the table names fastest
 *           for that format, level and direction: ISA-L for levels 1-3,
 *           libdeflate above and for decompression, zstd, lz4 frames.
 *   zpz     whole-process wall time of zpz against pigz, gzip and zstd -T
 *           on a 64 MiB corpus file, median (min-max) of 3 runs, each
 *           writing to /dev/null, after one untimed run into a file (the
 *           compressed size); with the peak RSS of all four runs (the
 *           driver's own few MiB included: see zpz_rows) and the median
 *           CPU time (user + sys), steadier than wall time on a busy machine.
 *
 * The corpus (made here, the same bytes on the same system): the regular
 * files under /usr/share/doc that are not already compressed (*.gz, *.xz,
 * *.bz2, *.zst skipped), sorted by path, and the files under
 * /usr/lib/x86_64-linux-gnu (or /usr/lib) named *.so*, sorted, read in
 * 1 MiB pieces taken alternately from the two lists until 64 MiB; a list
 * that runs out starts again. The codec rows use its first 16 MiB.
 *
 * A library that was not found at configure time (ZPB_HAVE_*) or a tool
 * not installed gives its rows "skipped" with the reason. Run by
 * bench/run.sh (--scenarios codec); never by ctest.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zeropool/codec.h>

#include "harness.h"

#ifdef ZPB_HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef ZPB_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif
#ifdef ZPB_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif
#ifdef ZPB_HAVE_ZSTD
#include <zstd.h>
#endif
#ifdef ZPB_HAVE_LZ4
#include <lz4frame.h>
#endif

#define MiB ((size_t)1 << 20)
#define CORPUS_BYTES (64 * MiB)
#define CODEC_BYTES (16 * MiB)
#define PIECE MiB
#define ZPZ_RUNS 3

/* ------------------------------------------------------------ the corpus */

typedef struct { char **v; size_t n, cap; } paths;

static paths doc_files, so_files;
static paths *walk_into;

static int skip_compressed(const char *p)
{
    static const char *const ext[] = {".gz", ".xz", ".bz2", ".zst", ".lz4", ".Z"};
    size_t n = strlen(p);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t k = strlen(ext[i]);
        if (n > k && strcmp(p + n - k, ext[i]) == 0)
            return 1;
    }
    return 0;
}

static int walk_fn(const char *p, const struct stat *st, int type, struct FTW *f)
{
    (void)f;
    if (type != FTW_F || !S_ISREG(st->st_mode) || st->st_size == 0)
        return 0;
    if (walk_into == &doc_files && skip_compressed(p))
        return 0;
    if (walk_into == &so_files && strstr(strrchr(p, '/'), ".so") == NULL)
        return 0;
    paths *ps = walk_into;
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 256;
        ps->v = realloc(ps->v, ps->cap * sizeof *ps->v);
        if (ps->v == NULL)
            die("realloc");
    }
    ps->v[ps->n++] = strdup(p);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* reads the next bytes of list ps (cursor: file i, offset off) into dst */
typedef struct { paths *ps; size_t i; off_t off; } cursor;

static size_t cursor_read(cursor *c, unsigned char *dst, size_t n)
{
    size_t got = 0;
    for (int turns = 0; got < n && c->ps->n > 0 && turns < 100000; turns++) {
        int fd = open(c->ps->v[c->i], O_RDONLY);
        ssize_t r = fd < 0 ? -1 : pread(fd, dst + got, n - got, c->off);
        if (fd >= 0)
            close(fd);
        if (r > 0) {
            got += (size_t)r;
            c->off += r;
        }
        if (r <= 0 || got < n) { /* next file (or the first again) */
            c->i = (c->i + 1) % c->ps->n;
            c->off = 0;
        }
    }
    return got;
}

static unsigned char *corpus;
static size_t corpus_len;

static void make_corpus(void)
{
    walk_into = &doc_files;
    nftw("/usr/share/doc", walk_fn, 16, FTW_PHYS);
    walk_into = &so_files;
    if (nftw("/usr/lib/x86_64-linux-gnu", walk_fn, 16, FTW_PHYS) != 0 || so_files.n == 0)
        nftw("/usr/lib", walk_fn, 16, FTW_PHYS);
    qsort(doc_files.v, doc_files.n, sizeof(char *), cmp_str);
    qsort(so_files.v, so_files.n, sizeof(char *), cmp_str);
    corpus = malloc(CORPUS_BYTES);
    if (corpus == NULL)
        die("malloc");
    cursor cd = {&doc_files, 0, 0}, cs = {&so_files, 0, 0};
    for (int turn = 0; corpus_len < CORPUS_BYTES; turn ^= 1) {
        size_t got = cursor_read(turn ? &cs : &cd, corpus + corpus_len, PIECE);
        if (got == 0 && (turn ? cd : cs).ps->n == 0)
            break;
        corpus_len += got;
    }
    if (corpus_len < CORPUS_BYTES) { /* no files at all: a made-up text */
        for (size_t i = corpus_len; i < CORPUS_BYTES; i++)
            corpus[i] = (unsigned char)("zeropool corpus "[i % 16] ^ (i >> 12 & 7));
        corpus_len = CORPUS_BYTES;
    }
    fprintf(stderr, "zp_bench_codec: corpus %zu MiB from %zu files under /usr/share/doc "
            "and %zu shared objects\n", corpus_len / MiB, doc_files.n, so_files.n);
}

/* ------------------------------------------------------------ the rows */

typedef struct row {
    const char *codec_name; /* gzip, deflate, zlib, zstd, lz4 */
    int codec, level;       /* ZP_CODEC_*, level (0: default) */
    int decompress;
} row;

/* what one figure needs */
typedef struct bctx {
    const row *r;
    size_t chunk, nchunks;
    const unsigned char *src;           /* corpus slice */
    unsigned char **comp;               /* decompression: compressed chunks */
    size_t *comp_len;
    size_t pos;
    zp_codec *zc;
    zp_pool *pool;
    /* library side */
    void *lib_ctx, *lib_ctx2;
    unsigned char *out;
    size_t out_cap;
    int fail;
} bctx;

static inline void next_chunk(bctx *b, const void **in, size_t *in_len)
{
    size_t k = b->pos++ % b->nchunks;
    if (b->r->decompress) {
        *in = b->comp[k];
        *in_len = b->comp_len[k];
    } else {
        *in = b->src + k * b->chunk;
        *in_len = b->chunk;
    }
}

static void run_zeropool(void *ctx, uint64_t n)
{
    bctx *b = ctx;
    for (uint64_t i = 0; i < n; i++) {
        const void *in;
        size_t in_len, out_len = 0;
        void *out = NULL;
        next_chunk(b, &in, &in_len);
        int rc = b->r->decompress ? zp_decompress(b->zc, in, in_len, &out, &out_len)
                                  : zp_compress(b->zc, in, in_len, &out, &out_len);
        if (rc < 0)
            b->fail = rc;
        ZPB_ESCAPE(out);
        zp_put(b->pool, out);
    }
}

/* ---- the libraries: one call compresses or decompresses one chunk. A
 * context argument NULL means: make one for this call (the fresh
 * variant); out NULL: malloc the output. Each returns the output length,
 * 0 on failure. */

enum { ENG_NONE, ENG_ISAL, ENG_LIBDEFLATE, ENG_ZLIB, ENG_ZSTD, ENG_LZ4 };

static int engine_for(const row *r)
{
    switch (r->codec) {
    case ZP_CODEC_ZSTD:
#ifdef ZPB_HAVE_ZSTD
        return ENG_ZSTD;
#else
        return ENG_NONE;
#endif
    case ZP_CODEC_LZ4:
#ifdef ZPB_HAVE_LZ4
        return ENG_LZ4;
#else
        return ENG_NONE;
#endif
    }
#ifdef ZPB_HAVE_ISAL
    if (!r->decompress && r->level >= 1 && r->level <= 3)
        return ENG_ISAL;
#endif
#ifdef ZPB_HAVE_LIBDEFLATE
    return ENG_LIBDEFLATE;
#elif defined(ZPB_HAVE_ZLIB)
    return ENG_ZLIB;
#else
    return ENG_NONE;
#endif
}

static const char *engine_name(int e)
{
    static const char *const names[] = {"none", "isa-l", "libdeflate", "zlib", "zstd", "lz4"};
    return names[e];
}

static size_t out_bound(size_t n) { return n + n / 8 + 65536; }

#ifdef ZPB_HAVE_ZLIB
static int zlib_bits(int codec)
{
    return codec == ZP_CODEC_GZIP ? 31 : codec == ZP_CODEC_ZLIB ? 15 : -15;
}

static size_t zlib_call(bctx *b, z_stream *zs, const void *in, size_t n, unsigned char *out,
                        size_t cap)
{
    z_stream fresh;
    int own = zs == NULL;
    if (own) {
        memset(&fresh, 0, sizeof fresh);
        zs = &fresh;
        int rc = b->r->decompress
                     ? inflateInit2(zs, zlib_bits(b->r->codec))
                     : deflateInit2(zs, b->r->level, Z_DEFLATED, zlib_bits(b->r->codec), 8,
                                    Z_DEFAULT_STRATEGY);
        if (rc != Z_OK)
            return 0;
    } else if (b->r->decompress) {
        inflateReset(zs);
    } else {
        deflateReset(zs);
    }
    zs->next_in = (void *)in;
    zs->avail_in = (uInt)n;
    zs->next_out = out;
    zs->avail_out = (uInt)cap;
    int rc = b->r->decompress ? inflate(zs, Z_FINISH) : deflate(zs, Z_FINISH);
    size_t got = cap - zs->avail_out;
    if (own) {
        if (b->r->decompress)
            inflateEnd(zs);
        else
            deflateEnd(zs);
    }
    return rc == Z_STREAM_END ? got : 0;
}
#endif

#ifdef ZPB_HAVE_ISAL
typedef struct { struct isal_zstream zs; unsigned char *level_buf; } isal_ctx;

static int isal_flag(int codec)
{
    return codec == ZP_CODEC_GZIP ? IGZIP_GZIP : codec == ZP_CODEC_ZLIB ? IGZIP_ZLIB
                                                                      : IGZIP_DEFLATE;
}

static size_t level_buf_size(int level)
{
    return level <= 1 ? ISAL_DEF_LVL1_DEFAULT : level == 2 ? ISAL_DEF_LVL2_DEFAULT
                                                           : ISAL_DEF_LVL3_DEFAULT;
}

static isal_ctx *isal_new(int level)
{
    isal_ctx *c = malloc(sizeof *c);
    if (c == NULL)
        return NULL;
    c->level_buf = malloc(level_buf_size(level));
    isal_deflate_init(&c->zs);
    return c;
}

static void isal_free(isal_ctx *c)
{
    if (c != NULL)
        free(c->level_buf);
    free(c);
}

static size_t isal_call(bctx *b, isal_ctx *c, const void *in, size_t n, unsigned char *out,
                        size_t cap)
{
    isal_ctx *own = c == NULL ? (c = isal_new(b->r->level)) : NULL;
    if (c == NULL)
        return 0;
    if (own == NULL)
        isal_deflate_reset(&c->zs);
    c->zs.level = (uint32_t)b->r->level;
    c->zs.level_buf = c->level_buf;
    c->zs.level_buf_size = (uint32_t)level_buf_size(b->r->level);
    c->zs.gzip_flag = (uint16_t)isal_flag(b->r->codec);
    c->zs.end_of_stream = 1;
    c->zs.flush = NO_FLUSH;
    c->zs.next_in = (uint8_t *)in;
    c->zs.avail_in = (uint32_t)n;
    c->zs.next_out = out;
    c->zs.avail_out = (uint32_t)cap;
    int rc = isal_deflate(&c->zs);
    size_t got = rc == COMP_OK && c->zs.internal_state.state == ZSTATE_END ? c->zs.total_out : 0;
    isal_free(own);
    return got;
}
#endif

#ifdef ZPB_HAVE_LIBDEFLATE
static size_t libdeflate_call(bctx *b, void *ctx, const void *in, size_t n, unsigned char *out,
                              size_t cap)
{
    size_t got = 0;
    if (b->r->decompress) {
        struct libdeflate_decompressor *d = ctx ? ctx : libdeflate_alloc_decompressor();
        enum libdeflate_result rc = LIBDEFLATE_BAD_DATA;
        if (d == NULL)
            return 0;
        if (b->r->codec == ZP_CODEC_GZIP)
            rc = libdeflate_gzip_decompress(d, in, n, out, cap, &got);
        else if (b->r->codec == ZP_CODEC_ZLIB)
            rc = libdeflate_zlib_decompress(d, in, n, out, cap, &got);
        else
            rc = libdeflate_deflate_decompress(d, in, n, out, cap, &got);
        if (ctx == NULL)
            libdeflate_free_decompressor(d);
        return rc == LIBDEFLATE_SUCCESS ? got : 0;
    }
    struct libdeflate_compressor *c = ctx ? ctx : libdeflate_alloc_compressor(b->r->level);
    if (c == NULL)
        return 0;
    if (b->r->codec == ZP_CODEC_GZIP)
        got = libdeflate_gzip_compress(c, in, n, out, cap);
    else if (b->r->codec == ZP_CODEC_ZLIB)
        got = libdeflate_zlib_compress(c, in, n, out, cap);
    else
        got = libdeflate_deflate_compress(c, in, n, out, cap);
    if (ctx == NULL)
        libdeflate_free_compressor(c);
    return got;
}
#endif

#ifdef ZPB_HAVE_LZ4
/* the frames zp_compress writes (codec.h): independent 64 KiB blocks,
 * content size and content checksum present */
static LZ4F_preferences_t lz4_prefs_for(size_t n)
{
    LZ4F_preferences_t p;
    memset(&p, 0, sizeof p);
    p.frameInfo.blockSizeID = LZ4F_max64KB;
    p.frameInfo.blockMode = LZ4F_blockIndependent;
    p.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    p.frameInfo.contentSize = n;
    p.compressionLevel = 1;
    return p;
}

static size_t lz4_call(bctx *b, void *ctx, const void *in, size_t n, unsigned char *out,
                       size_t cap)
{
    if (b->r->decompress) {
        LZ4F_dctx *d = ctx;
        if (d == NULL && LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)))
            return 0;
        if (ctx != NULL)
            LZ4F_resetDecompressionContext(d);
        size_t dst = cap, srcn = n;
        size_t rc = LZ4F_decompress(d, out, &dst, in, &srcn, NULL);
        if (ctx == NULL)
            LZ4F_freeDecompressionContext(d);
        return rc == 0 ? dst : 0;
    }
    LZ4F_preferences_t prefs = lz4_prefs_for(n);
    if (ctx == NULL) { /* the one-call API: a context per call inside */
        size_t rc = LZ4F_compressFrame(out, cap, in, n, &prefs);
        return LZ4F_isError(rc) ? 0 : rc;
    }
    LZ4F_cctx *c = ctx;
    size_t h = LZ4F_compressBegin(c, out, cap, &prefs);
    if (LZ4F_isError(h))
        return 0;
    size_t u = LZ4F_compressUpdate(c, out + h, cap - h, in, n, NULL);
    if (LZ4F_isError(u))
        return 0;
    size_t e = LZ4F_compressEnd(c, out + h + u, cap - h - u, NULL);
    return LZ4F_isError(e) ? 0 : h + u + e;
}
#endif

/* one chunk through the row's library; fresh: make everything per call */
static size_t lib_call(bctx *b, int eng, int fresh, const void *in, size_t n)
{
    unsigned char *out = fresh ? malloc(b->out_cap) : b->out;
    size_t got = 0;
    void *ctx = fresh ? NULL : b->lib_ctx;
    if (out == NULL)
        return 0;
    switch (eng) {
#ifdef ZPB_HAVE_ISAL
    case ENG_ISAL: got = isal_call(b, ctx, in, n, out, b->out_cap); break;
#endif
#ifdef ZPB_HAVE_LIBDEFLATE
    case ENG_LIBDEFLATE: got = libdeflate_call(b, ctx, in, n, out, b->out_cap); break;
#endif
#ifdef ZPB_HAVE_ZLIB
    case ENG_ZLIB: got = zlib_call(b, ctx, in, n, out, b->out_cap); break;
#endif
#ifdef ZPB_HAVE_ZSTD
    case ENG_ZSTD:
        if (b->r->decompress)
            got = ctx ? ZSTD_decompressDCtx(ctx, out, b->out_cap, in, n)
                      : ZSTD_decompress(out, b->out_cap, in, n);
        else
            got = ctx ? ZSTD_compressCCtx(ctx, out, b->out_cap, in, n, b->r->level)
                      : ZSTD_compress(out, b->out_cap, in, n, b->r->level);
        if (ZSTD_isError(got))
            got = 0;
        break;
#endif
#ifdef ZPB_HAVE_LZ4
    case ENG_LZ4: got = lz4_call(b, ctx, in, n, out, b->out_cap); break;
#endif
    default: break;
    }
    ZPB_ESCAPE(out);
    if (fresh)
        free(out);
    return got;
}

static int lib_open(bctx *b, int eng)
{
    b->lib_ctx = NULL;
    switch (eng) {
#ifdef ZPB_HAVE_ISAL
    case ENG_ISAL: b->lib_ctx = isal_new(b->r->level); break;
#endif
#ifdef ZPB_HAVE_LIBDEFLATE
    case ENG_LIBDEFLATE:
        b->lib_ctx = b->r->decompress ? (void *)libdeflate_alloc_decompressor()
                                      : (void *)libdeflate_alloc_compressor(b->r->level);
        break;
#endif
#ifdef ZPB_HAVE_ZLIB
    case ENG_ZLIB: {
        z_stream *zs = calloc(1, sizeof *zs);
        int rc = zs == NULL ? Z_MEM_ERROR
                 : b->r->decompress ? inflateInit2(zs, zlib_bits(b->r->codec))
                                    : deflateInit2(zs, b->r->level, Z_DEFLATED,
                                                   zlib_bits(b->r->codec), 8, Z_DEFAULT_STRATEGY);
        if (rc != Z_OK) {
            free(zs);
            zs = NULL;
        }
        b->lib_ctx = zs;
        break;
    }
#endif
#ifdef ZPB_HAVE_ZSTD
    case ENG_ZSTD:
        b->lib_ctx = b->r->decompress ? (void *)ZSTD_createDCtx() : (void *)ZSTD_createCCtx();
        break;
#endif
#ifdef ZPB_HAVE_LZ4
    case ENG_LZ4:
        if (b->r->decompress) {
            LZ4F_dctx *d;
            if (!LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)))
                b->lib_ctx = d;
        } else {
            LZ4F_cctx *c;
            if (!LZ4F_isError(LZ4F_createCompressionContext(&c, LZ4F_VERSION)))
                b->lib_ctx = c;
        }
        break;
#endif
    default: break;
    }
    return b->lib_ctx != NULL ? 0 : -1;
}

static void lib_close(bctx *b, int eng)
{
    void *c = b->lib_ctx;
    if (c == NULL)
        return;
    switch (eng) {
#ifdef ZPB_HAVE_ISAL
    case ENG_ISAL: isal_free(c); break;
#endif
#ifdef ZPB_HAVE_LIBDEFLATE
    case ENG_LIBDEFLATE:
        if (b->r->decompress)
            libdeflate_free_decompressor(c);
        else
            libdeflate_free_compressor(c);
        break;
#endif
#ifdef ZPB_HAVE_ZLIB
    case ENG_ZLIB:
        if (b->r->decompress)
            inflateEnd(c);
        else
            deflateEnd(c);
        free(c);
        break;
#endif
#ifdef ZPB_HAVE_ZSTD
    case ENG_ZSTD:
        if (b->r->decompress)
            ZSTD_freeDCtx(c);
        else
            ZSTD_freeCCtx(c);
        break;
#endif
#ifdef ZPB_HAVE_LZ4
    case ENG_LZ4:
        if (b->r->decompress)
            LZ4F_freeDecompressionContext(c);
        else
            LZ4F_freeCompressionContext(c);
        break;
#endif
    default: break;
    }
    b->lib_ctx = NULL;
}

static int cur_engine;

static void run_lib(bctx *b, uint64_t n, int fresh)
{
    for (uint64_t i = 0; i < n; i++) {
        const void *in;
        size_t in_len;
        next_chunk(b, &in, &in_len);
        if (lib_call(b, cur_engine, fresh, in, in_len) == 0)
            b->fail = -EIO;
    }
}
static void run_fresh(void *ctx, uint64_t n) { run_lib(ctx, n, 1); }
static void run_reused(void *ctx, uint64_t n) { run_lib(ctx, n, 0); }

/* MB/s from a series of ns per chunk */
static void emit_mbs(const row *r, size_t chunk, const char *variant, const char *engine,
                     series *s, uint64_t n, int fail, const char *skip)
{
    summary m;
    char extra[256], config[32];
    memset(&m, 0, sizeof m);
    snprintf(config, sizeof config, "level=%d", r->level);
    if (skip != NULL) {
        m.median = m.min = m.max = NAN;
        m.refused = false;
        snprintf(m.note, sizeof m.note, "%s", skip);
        snprintf(extra, sizeof extra,
                 ",\"codec\":\"%s\",\"level\":%d,\"direction\":\"%s\",\"engine\":\"%s\","
                 "\"skipped\":true",
                 r->codec_name, r->level, r->decompress ? "decompress" : "compress", engine);
        emit_line("codec", chunk, 1, variant, variant, variant, config, "MB/s", &m, NULL, 0,
                  extra);
        return;
    }
    summary ns = summarize(s);
    m = ns;
    if (fail) {
        m.refused = true;
        snprintf(m.note, sizeof m.note, "a call failed (%d)", fail);
    }
    m.median = chunk / ns.median * 1e3; /* bytes per ns * 1e3 = MB/s */
    m.min = chunk / ns.max * 1e3;
    m.max = chunk / ns.min * 1e3;
    snprintf(extra, sizeof extra,
             ",\"codec\":\"%s\",\"level\":%d,\"direction\":\"%s\",\"engine\":\"%s\"",
             r->codec_name, r->level, r->decompress ? "decompress" : "compress", engine);
    emit_line("codec", chunk, 1, variant, variant, variant, config, "MB/s", &m, s, n, extra);
}

static void measure(bctx *b, const char *variant, const char *engine,
                    void (*fn)(void *, uint64_t))
{
    b->fail = 0;
    b->pos = 0;
    uint64_t n = calibrate(fn, b);
    series s = time_single(fn, b, n);
    emit_mbs(b->r, b->chunk, variant, engine, &s, n, b->fail, NULL);
}

static void codec_rows(void)
{
    static const row rows[] = {
        {"gzip", ZP_CODEC_GZIP, 1, 0},    {"gzip", ZP_CODEC_GZIP, 6, 0},
        {"gzip", ZP_CODEC_GZIP, 6, 1},    {"deflate", ZP_CODEC_DEFLATE, 1, 0},
        {"deflate", ZP_CODEC_DEFLATE, 6, 0}, {"deflate", ZP_CODEC_DEFLATE, 6, 1},
        {"zlib", ZP_CODEC_ZLIB, 1, 0},    {"zlib", ZP_CODEC_ZLIB, 6, 0},
        {"zlib", ZP_CODEC_ZLIB, 6, 1},    {"zstd", ZP_CODEC_ZSTD, 1, 0},
        {"zstd", ZP_CODEC_ZSTD, 1, 1},    {"lz4", ZP_CODEC_LZ4, 1, 0},
        {"lz4", ZP_CODEC_LZ4, 1, 1},
    };
    static const size_t chunks[] = {4096, 65536, MiB};
    zp_pool *pool;
    if (zp_pool_create(NULL, &pool) != 0)
        die("zp_pool_create");
    for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
        const row *r = &rows[ri];
        zp_codec_config cfg;
        zp_codec *zc = NULL;
        zp_codec_config_init(&cfg, r->codec);
        cfg.level = r->level;
        int zrc = zp_codec_create(pool, &cfg, &zc);
        int eng = engine_for(r);
        for (size_t ci = 0; ci < sizeof chunks / sizeof chunks[0]; ci++) {
            bctx b;
            memset(&b, 0, sizeof b);
            b.r = r;
            b.chunk = chunks[ci];
            b.nchunks = CODEC_BYTES / b.chunk;
            b.src = corpus;
            b.zc = zc;
            b.pool = pool;
            b.out_cap = out_bound(b.chunk);
            if (zrc < 0) {
                emit_mbs(r, b.chunk, "zeropool", "zeropool", NULL, 0, 0,
                         "zp_codec_create failed: the codec library lacks this codec");
                continue;
            }
            if (r->decompress) { /* the inputs: every chunk compressed once */
                b.comp = calloc(b.nchunks, sizeof *b.comp);
                b.comp_len = calloc(b.nchunks, sizeof *b.comp_len);
                zp_codec_config ccfg;
                zp_codec *cc;
                zp_codec_config_init(&ccfg, r->codec);
                ccfg.level = r->level;
                if (b.comp == NULL || b.comp_len == NULL || zp_codec_create(pool, &ccfg, &cc) < 0)
                    die("preparing the compressed chunks");
                for (size_t k = 0; k < b.nchunks; k++)
                    if (zp_compress(cc, corpus + k * b.chunk, b.chunk, (void **)&b.comp[k],
                                    &b.comp_len[k]) < 0)
                        die("zp_compress");
                zp_codec_destroy(cc);
            }
            measure(&b, "zeropool", "zeropool", run_zeropool);
            cur_engine = eng;
            b.out = malloc(b.out_cap);
            if (eng == ENG_NONE) {
                emit_mbs(r, b.chunk, "fresh", "none", NULL, 0, 0,
                         "no library for this codec was found at configure time");
                emit_mbs(r, b.chunk, "reused", "none", NULL, 0, 0,
                         "no library for this codec was found at configure time");
            } else {
                measure(&b, "fresh", engine_name(eng), run_fresh);
                if (lib_open(&b, eng) == 0) {
                    measure(&b, "reused", engine_name(eng), run_reused);
                    lib_close(&b, eng);
                }
            }
#ifdef ZPB_HAVE_ZLIB
            if (r->codec <= ZP_CODEC_ZLIB && eng != ENG_ZLIB) {
                cur_engine = ENG_ZLIB;
                if (lib_open(&b, ENG_ZLIB) == 0) {
                    measure(&b, "zlib", "zlib", run_reused);
                    lib_close(&b, ENG_ZLIB);
                }
            }
#endif
            free(b.out);
            if (b.comp != NULL)
                for (size_t k = 0; k < b.nchunks; k++)
                    zp_put(pool, b.comp[k]);
            free(b.comp);
            free(b.comp_len);
        }
        zp_codec_destroy(zc);
    }
    zp_pool_destroy(pool);
}

/* ------------------------------------------------- zpz vs the tools */

static char tmpdir[256], corpus_path[300];

/* Runs argv with stdin from `in` and stdout to `out`, on every CPU the
 * process may use (the driver pins itself to one). Returns the wall
 * seconds, or -1; *rss_kib: the child's peak RSS. */
static double run_tool(char *const argv[], const char *in, const char *out, long *rss_kib,
                       double *cpu_s)
{
    uint64_t t0 = wall_ns();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        cpu_set_t all;
        CPU_ZERO(&all);
        for (int i = 0; i < ncpus; i++)
            CPU_SET(cpus[i], &all);
        sched_setaffinity(0, sizeof all, &all);
        int fi = open(in, O_RDONLY), fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open("/dev/null", O_WRONLY);
        if (fi < 0 || fo < 0 || fe < 0)
            _exit(126);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0)
        return -1;
    double s = (double)(wall_ns() - t0) / 1e9;
    *rss_kib = ru.ru_maxrss;
    *cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
             (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? s : -1;
}

static int have_tool(const char *name)
{
    if (strchr(name, '/'))
        return access(name, X_OK) == 0;
    const char *path = getenv("PATH");
    char buf[4096];
    if (path == NULL)
        return 0;
    for (const char *p = path; *p;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, name);
        if (access(buf, X_OK) == 0)
            return 1;
        p += n + (e != NULL);
    }
    return 0;
}

static char zpz_path[4096];

static void find_zpz(void)
{
    const char *env = getenv("ZPB_ZPZ");
    if (env && *env) {
        snprintf(zpz_path, sizeof zpz_path, "%s", env);
        return;
    }
    char self[2048];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0; /* .../bench */
    snprintf(zpz_path, sizeof zpz_path, "%s/../tools/zpz/zpz", self);
}

typedef struct tool_row {
    const char *tool;      /* the column: zpz, pigz, gzip, zstd */
    const char *format;    /* gzip, zstd */
    const char *direction; /* compress, decompress */
    int level;
    const char *input;     /* decompression: which compressed file */
    const char *args[12];  /* after the program */
} tool_row;

static void write_corpus(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/zpb-codec.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        die("mkdtemp");
    snprintf(corpus_path, sizeof corpus_path, "%s/corpus", tmpdir);
    int fd = open(corpus_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, corpus, corpus_len) != (ssize_t)corpus_len)
        die("writing the corpus");
    close(fd);
}

/* The children's peak RSS (wait4) counts what the forked child held before
 * its exec: the driver's own pages. The zpz rows therefore run after the
 * codec rows, with the corpus freed, from a driver of a few MiB. */
static void zpz_rows(void)
{
    find_zpz();
    char zpz_gz[320], pigz_gz[320], zpz_zst[320];
    snprintf(zpz_gz, sizeof zpz_gz, "%s/zpz.gz", tmpdir);
    snprintf(pigz_gz, sizeof pigz_gz, "%s/pigz.gz", tmpdir);
    snprintf(zpz_zst, sizeof zpz_zst, "%s/zpz.zst", tmpdir);

    /* the decompression inputs, made untimed */
    const char *zpz = zpz_path;
    const tool_row rows[] = {
        {"zpz", "gzip", "compress", 1, NULL, {"-1", "-p", "2", "-c"}},
        {"pigz", "gzip", "compress", 1, NULL, {"-1", "-p", "2", "-c"}},
        {"gzip", "gzip", "compress", 1, NULL, {"-1", "-c"}},
        {"zpz", "gzip", "compress", 6, NULL, {"-6", "-p", "2", "-c"}},
        {"pigz", "gzip", "compress", 6, NULL, {"-6", "-p", "2", "-c"}},
        {"gzip", "gzip", "compress", 6, NULL, {"-6", "-c"}},
        {"zpz", "zstd", "compress", 1, NULL, {"--format", "zstd", "-1", "-p", "2", "-c"}},
        {"zstd", "zstd", "compress", 1, NULL, {"-1", "-T2", "-q", "-c"}},
        {"zpz", "gzip", "decompress", 6, zpz_gz, {"-d", "-p", "2", "-c"}},
        {"pigz", "gzip", "decompress", 6, zpz_gz, {"-d", "-p", "2", "-c"}},
        {"gzip", "gzip", "decompress", 6, zpz_gz, {"-d", "-c"}},
        {"zpz", "gzip", "decompress (pigz's file)", 6, pigz_gz, {"-d", "-p", "2", "-c"}},
        {"pigz", "gzip", "decompress (pigz's file)", 6, pigz_gz, {"-d", "-p", "2", "-c"}},
        {"zpz", "zstd", "decompress", 1, zpz_zst, {"-d", "-p", "2", "-c"}},
        {"zstd", "zstd", "decompress", 1, zpz_zst, {"-d", "-T2", "-q", "-c"}},
    };
    int have_zpz = zpz_path[0] && access(zpz_path, X_OK) == 0;
    if (have_zpz) {
        long rss;
        double cpu;
        char *a1[] = {zpz_path, "-6", "-p", "2", "-c", NULL};
        char *a2[] = {zpz_path, "--format", "zstd", "-1", "-p", "2", "-c", NULL};
        run_tool(a1, corpus_path, zpz_gz, &rss, &cpu);
        run_tool(a2, corpus_path, zpz_zst, &rss, &cpu);
    }
    if (have_tool("pigz")) {
        long rss;
        double cpu;
        char *a[] = {"pigz", "-6", "-p", "2", "-c", NULL};
        run_tool(a, corpus_path, pigz_gz, &rss, &cpu);
    }
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const tool_row *t = &rows[i];
        const char *prog = strcmp(t->tool, "zpz") == 0 ? zpz : t->tool;
        char config[64], extra[512], variant[96];
        summary m;
        memset(&m, 0, sizeof m);
        snprintf(config, sizeof config, "level=%d", t->level);
        snprintf(variant, sizeof variant, "%s", t->direction);
        const char *skip = NULL;
        struct stat st;
        if (strcmp(t->tool, "zpz") == 0 ? !have_zpz : !have_tool(t->tool))
            skip = strcmp(t->tool, "zpz") == 0 ? "zpz was not built (needs the codec library)"
                                               : "tool not installed";
        else if (t->input && (stat(t->input, &st) != 0 || st.st_size == 0))
            skip = "its input could not be made (zpz or pigz missing or failed)";
        if (skip) {
            m.median = m.min = m.max = NAN;
            snprintf(m.note, sizeof m.note, "%s: %s", t->tool, skip);
            snprintf(extra, sizeof extra,
                     ",\"tool\":\"%s\",\"format\":\"%s\",\"direction\":\"%s\",\"level\":%d,"
                     "\"skipped\":true",
                     t->tool, t->format, t->direction, t->level);
            emit_line("zpz", corpus_len, 2, t->tool, "process", variant, config, "s", &m,
                      NULL, 0, extra);
            continue;
        }
        char *argv[16];
        int k = 0;
        argv[k++] = (char *)prog;
        for (int j = 0; t->args[j]; j++)
            argv[k++] = (char *)t->args[j];
        argv[k] = NULL;
        char out[320];
        snprintf(out, sizeof out, "%s/out", tmpdir);
        double v[ZPZ_RUNS], cpu[ZPZ_RUNS], cpu0;
        long rss_max = 0;
        /* an untimed run first: warms the page cache, gives the output size */
        int ok = run_tool(argv, t->input ? t->input : corpus_path, out, &rss_max, &cpu0) >= 0;
        long long out_bytes = ok && stat(out, &st) == 0 ? (long long)st.st_size : -1;
        unlink(out);
        for (int r = 0; r < ZPZ_RUNS && ok; r++) {
            long rss = 0;
            v[r] = run_tool(argv, t->input ? t->input : corpus_path, "/dev/null", &rss, &cpu[r]);
            ok = v[r] >= 0;
            if (rss > rss_max)
                rss_max = rss;
        }
        double cpu_med = ok ? median_of(cpu, ZPZ_RUNS) : NAN;
        if (!ok) {
            m.median = m.min = m.max = NAN;
            m.refused = true;
            snprintf(m.note, sizeof m.note, "%s failed", t->tool);
        } else {
            m.median = median_of(v, ZPZ_RUNS); /* sorts v */
            m.min = v[0];
            m.max = v[ZPZ_RUNS - 1];
        }
        snprintf(extra, sizeof extra,
                 ",\"tool\":\"%s\",\"format\":\"%s\",\"direction\":\"%s\",\"level\":%d,"
                 "\"threads_asked\":2,\"runs\":%d,\"max_rss_kib\":%ld,\"output_bytes\":%lld,"
                 "\"cpu_s\":%.4f,\"input_bytes\":%lld",
                 t->tool, t->format, t->direction, t->level, ZPZ_RUNS, rss_max, out_bytes,
                 isfinite(cpu_med) ? cpu_med : -1.0,
                 t->input && stat(t->input, &st) == 0 ? (long long)st.st_size
                                                      : (long long)corpus_len);
        emit_line("zpz", corpus_len, 2, t->tool, "process", variant, config, "s", &m, NULL,
                  ZPZ_RUNS, extra);
    }
}

static int want_codec = 1, want_zpz = 1;

static void run(void)
{
    make_corpus();
    write_corpus();
    if (want_codec)
        codec_rows();
    free(corpus); /* a 64 MiB malloc: mapped alone, unmapped here */
    corpus = NULL;
    if (want_zpz)
        zpz_rows();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "zp_bench_codec: could not remove %s\n", tmpdir);
}

int main(int argc, char **argv)
{
    /* ZPB_CODEC_ONLY=codec|zpz picks one half (a quick check by hand) */
    const char *only = getenv("ZPB_CODEC_ONLY");
    if (only && strcmp(only, "codec") == 0)
        want_zpz = 0;
    if (only && strcmp(only, "zpz") == 0)
        want_codec = 0;
    return harness_main(argc, argv, "zp_bench_codec", "codec", run);
}
