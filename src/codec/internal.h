/*
 * internal.h — what the files of libzeropool-codec share (zpc_ names):
 * the codec, the engine contract, the context objects, the pooled output
 * buffer that grows, the per-context arena that serves library allocators,
 * and the error detail. Only the public zeropool API is used: nothing here
 * knows the core's internals.
 */
#ifndef ZPC_INTERNAL_H
#define ZPC_INTERNAL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "zeropool.h"
#include "zeropool/codec.h"

#define ZPC_KiB ((size_t)1024)
#define ZPC_MiB ((size_t)1024 * 1024)
#define ZPC_GiB ((size_t)1024 * 1024 * 1024)

/* Context kinds: one object pool per kind and codec. */
enum {
    ZPC_C1, /* one-shot compression */
    ZPC_CS, /* streaming compression */
    ZPC_D1, /* one-shot decompression */
    ZPC_DS, /* streaming decompression */
    ZPC_NKINDS
};

typedef struct zpc_ops zpc_ops;
typedef struct zpc_kind zpc_kind;

/* A pooled output buffer that grows: a bigger buffer is got from the pool,
 * the bytes copied, the old one put back. No malloc. */
typedef struct zpc_buf {
    zp_pool *pool;
    unsigned char *p;
    size_t len; /* bytes written */
    size_t cap; /* zp_capacity of p */
} zpc_buf;

/* Makes cap >= need (need > 0), keeping the first len bytes. 0, -ENOBUFS,
 * -ENOMEM. */
int zpc_buf_reserve(zpc_buf *b, size_t need);
/* Gives the buffer back (if any). */
void zpc_buf_drop(zpc_buf *b);

/* The input and output of one streaming step; the engine advances them. */
typedef struct zpc_io {
    const unsigned char *in;
    size_t in_len;
    unsigned char *out;
    size_t out_avail;
} zpc_io;

/* Streaming step results (besides negative errors). */
#define ZPC_MORE 0 /* wants more input or more output space */
#define ZPC_DONE 1 /* finish: everything is out */

/*
 * An engine serving one kind. state is `state_size` bytes, aligned to 64,
 * inside the context object (pooled memory). Return values: 0 or a
 * negative errno, except init (0 or a positive errno, as object pools
 * want) and step (ZPC_MORE, ZPC_DONE or a negative errno).
 */
struct zpc_ops {
    const char *name;
    size_t (*state_size)(const zp_codec *c);
    int (*init)(void *state, const zp_codec *c);
    void (*fini)(void *state, const zp_codec *c);
    /* one-shot kinds */
    int (*oneshot)(void *state, const zp_codec *c, const unsigned char *src, size_t len,
                   zpc_buf *out);
    /* streaming kinds: begin starts a stream (the context may have served
     * another before); step consumes io->in and fills io->out; with finish
     * set, no more input will come. */
    int (*begin)(void *state, const zp_codec *c);
    int (*step)(void *state, const zp_codec *c, zpc_io *io, int finish);
};

/* One kind of context of one codec: its engine and its object pool. */
struct zpc_kind {
    zp_codec *codec;
    const zpc_ops *ops;
    zp_pool *objs;        /* object pool of zpc_ctx + state */
    size_t state_off;     /* offset of the engine state in the object */
    size_t obj_size;
};

struct zp_codec {
    zp_pool *pool;        /* output buffers */
    int format;           /* ZP_CODEC_* */
    int level;            /* resolved (never 0) */
    size_t max_output;    /* resolved (never 0) */
    size_t stream_chunk;  /* resolved */
    int window_log;       /* zstd streaming decompression: log2 of max_window */
    zpc_kind kinds[ZPC_NKINDS];
};

/* The head of every context object; the engine state follows at
 * kind->state_off. For streaming kinds this is also the zp_zstream. */
typedef struct zpc_ctx {
    zpc_kind *kind;
    /* streaming state (unused by one-shot kinds) */
    zpc_buf out;          /* the output buffer being filled */
    uint64_t total_in, total_out;
    int err;              /* sticky error */
    int finished;         /* the engine said ZPC_DONE */
} zpc_ctx;

static inline void *zpc_state(zpc_ctx *ctx)
{
    return (unsigned char *)ctx + ctx->kind->state_off;
}

/* Takes a context of kind k (NULL with *err set) / gives it back. */
zpc_ctx *zpc_ctx_get(zpc_kind *k, int *err);
void zpc_ctx_put(zpc_ctx *ctx);

/* Records the detail of a failure for zp_codec_strerror; returns err. */
int zpc_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Maps zp_get's errno to a negative code. */
int zpc_get_errno(int e);

/* ------------------------------------------------------------- the arena
 *
 * Serves a library's allocator callbacks (zlib zalloc/zfree, lz4's
 * LZ4F_CustomMem) from memory inside the context object: blocks are bumped
 * off the arena; a freed block is reused by a later request it fits, and
 * freed blocks at the top are given back to the bump pointer. Never calls
 * malloc; a request that does not fit fails (NULL), and the library reports
 * out of memory.
 */
typedef struct zpc_arena {
    unsigned char *base;
    size_t size;
    size_t used;
    size_t peak;
    unsigned long failures;
} zpc_arena;

void zpc_arena_init(zpc_arena *a, void *base, size_t size);
void *zpc_arena_alloc(zpc_arena *a, size_t n);
void *zpc_arena_calloc(zpc_arena *a, size_t n);
void zpc_arena_free(zpc_arena *a, void *p);

/* --------------------------------------------------------------- engines */

/* Each returns the ops for (format, kind) or NULL when it cannot serve it;
 * defined whether or not the engine was built (NULL when not). */
const zpc_ops *zpc_isal_ops(int format, int kind, int level);
const zpc_ops *zpc_deflate_ops(int format, int kind, int level);
const zpc_ops *zpc_zlib_ops(int format, int kind, int level);
const zpc_ops *zpc_zstd_ops(int format, int kind, int level);
const zpc_ops *zpc_lz4_ops(int format, int kind, int level);

/* crc32 by an engine that has one (0 and *ok = 0 if none was built). */
uint32_t zpc_isal_crc32(uint32_t crc, const void *p, size_t n, int *ok);
uint32_t zpc_deflate_crc32(uint32_t crc, const void *p, size_t n, int *ok);
uint32_t zpc_zlib_crc32(uint32_t crc, const void *p, size_t n, int *ok);

/* Round up to a multiple of 64. */
static inline size_t zpc_align64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* A deflate-family format's output bound for len input bytes (generous:
 * stored blocks plus header and trailer). */
static inline size_t zpc_deflate_bound(size_t len)
{
    return len + (len >> 10) * 8 + 1024;
}

#endif /* ZPC_INTERNAL_H */
