/*
 * zeropool/codec.h — compression on pooled buffers and pooled contexts
 * (libzeropool-codec; pkg-config zeropool-codec; CMake zeropool::codec).
 *
 * Formats: gzip, raw deflate, zlib, zstd and lz4 frames, both directions,
 * one-shot (zp_compress / zp_decompress) and streaming (zp_zstream_*).
 * Every output buffer comes from the codec's pool (zp_get) and is handed to
 * the caller, who owns it and gives it back with zp_put(pool, buf). Every
 * codec context (zstd CCtx/DCtx, zlib z_stream, ISA-L state, lz4 frame
 * context, libdeflate compressor) lives in an object pool the codec owns:
 * built once (the object's init), reset at the start of each use, torn
 * down (fini) only when its pool gives the memory back. Once warm (every
 * context kind made once, the output classes in use cached), compressing
 * and decompressing make no heap allocation and map no memory, in any
 * format, either direction, one-shot or streaming.
 *
 * Which engine serves what (the fastest available, from benchmarks; each
 * engine is optional at build time, see zp_codec_engine()):
 *
 *   format            compress                       decompress
 *   gzip/deflate/zlib one-shot, levels 1-3: ISA-L     one-shot: libdeflate
 *                     one-shot, levels 4-12: libdeflate
 *                     streaming, levels 1-3: ISA-L    streaming: zlib
 *                     streaming, levels 4-9: zlib
 *   zstd              libzstd (static CCtx)           libzstd (static DCtx)
 *   lz4               liblz4 frame API (custom mem)   liblz4 frame API (custom mem)
 *
 * Fallbacks when an engine was not built: ISA-L -> libdeflate (one-shot) or
 * zlib (streaming); libdeflate -> zlib (one-shot runs the streaming engine
 * into a growing buffer), or ISA-L for compression (levels clamped to 3);
 * zlib -> ISA-L for streaming compression (levels clamped to 3); streaming
 * decompression needs zlib.
 * zp_codec_create fails with -ENOTSUP when some direction of the format
 * (one-shot or streaming) has no engine: every codec serves all four.
 *
 * Levels (zp_codec_config.level; 0 is each format's default):
 *   gzip, deflate, zlib: 1..12 (default 6). 1-3 are ISA-L's levels 1-3;
 *                        4-12 are libdeflate's; zlib (streaming) clamps to 9.
 *   zstd: ZSTD_minCLevel()..ZSTD_maxCLevel() except 0 (default 3). Levels
 *         20-22 write windows above 8 MiB, which streaming decompression
 *         refuses unless max_window allows them (-ENOTSUP; one-shot
 *         decompression decodes them); their contexts are hundreds of MB
 *         of (mostly untouched) pooled memory.
 *   lz4:  1..12 (default 1): 1-2 fast, 3-12 high compression (LZ4F levels).
 *
 * Errors: every int function returns 0 (or a documented positive value) or
 * a negative errno:
 *   -EINVAL   bad arguments (NULL, unknown format, level out of range);
 *   -ENOTSUP  the format (or this direction) was not built in; or a zstd
 *             frame needs a window above max_window (default 8 MiB) in
 *             streaming decompression (zstd --ultra / --long; one-shot
 *             decompression has no limit);
 *   -EBADMSG  corrupt or truncated input, or trailing bytes after the last
 *             complete member/frame that do not form another one;
 *   -EFBIG    decompressed output would exceed max_output;
 *   -ENOBUFS  a pool's budget is exhausted;
 *   -ENOMEM   memory could not be had.
 * zp_codec_strerror(err) gives the detail of the calling thread's last
 * failing codec call (the engine's own message, where the input broke),
 * and zp_strerror's text for any other code; zp_strerror(err) gives the
 * same detail until the next failing zeropool call on the thread (the
 * codec records it with zp_error_set).
 *
 * Thread safety: a zp_codec may be used from any number of threads at once
 * (each call takes a context from the codec's object pools, through the
 * calling thread's cache). A zp_zstream has one owner at a time.
 * zp_codec_destroy must not race with other calls on the same codec.
 *
 * Depends on the public zeropool API only (include/zeropool.h).
 */
#ifndef ZEROPOOL_CODEC_H
#define ZEROPOOL_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "zeropool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- formats */

#define ZP_CODEC_GZIP    1 /* RFC 1952; decoding accepts concatenated members */
#define ZP_CODEC_DEFLATE 2 /* raw RFC 1951 */
#define ZP_CODEC_ZLIB    3 /* RFC 1950 */
#define ZP_CODEC_ZSTD    4 /* zstd frames; decoding accepts concatenated frames
                              (skippable frames are skipped; the legacy v0.x
                              formats are refused: -EBADMSG) */
#define ZP_CODEC_LZ4     5 /* LZ4 frame format (what the lz4 tool reads and
                              writes); decoding accepts concatenated frames */

/* ------------------------------------------------------------ the codec */

typedef struct zp_codec zp_codec; /* one codec at one level, on one pool; thread-safe */

typedef struct zp_codec_config {
    size_t struct_size; /* set by zp_codec_config_init(); lets the struct grow */
    int codec;          /* ZP_CODEC_* */
    int level;          /* 0: the codec's default; otherwise the codec's own scale */
    size_t max_output;  /* zp_decompress never produces more: -EFBIG (0: 1 GiB).
                           Streaming decompression stops at it too (SIZE_MAX:
                           no limit; a stream's memory is bounded anyway). */
    /* --- fields after max_output: older callers leave them at 0 --- */
    size_t stream_chunk; /* capacity of each output buffer a zp_zstream hands
                            out (0: 256 KiB; at least 4 KiB). */
    const zp_config *ctx_config; /* tuning of the object pools that hold the
                            contexts (provider, budget or max_bytes, cache
                            depth, name, ...), copied; NULL: defaults. The
                            object type is the codec's own. */
    size_t max_window;   /* zstd: the largest window streaming decompression
                            accepts, rounded up to a power of two, 1 KiB ..
                            2 GiB (0: 8 MiB, every level up to 19; the zstd
                            tool's own limit is 128 MiB, for --long and
                            --ultra frames). Each streaming decompression
                            context is that big (pooled; pages the frames do
                            not use stay untouched). One-shot decompression
                            has no window limit; other formats ignore it. */
} zp_codec_config;

/* Fills *cfg for codec (ZP_CODEC_*) with the defaults above. Thread-safe. */
ZP_API void zp_codec_config_init(zp_codec_config *cfg, int codec);

/*
 * Creates a codec whose output buffers come from pool (which must outlive
 * it). Builds the codec's context object pools (no context yet: each is
 * made on first use, in pooled memory). Returns 0 and sets *out; -EINVAL
 * (NULL argument, unknown codec, bad level, struct_size unknown),
 * -ENOTSUP (an engine this format needs was not built), -ENOMEM.
 * Thread-safe.
 * The caller owns the codec.
 */
ZP_API int zp_codec_create(zp_pool *pool, const zp_codec_config *cfg, zp_codec **out);

/*
 * Destroys the codec and its context pools (every context torn down). All
 * its streams must be closed first. Buffers it handed out stay valid: they
 * belong to the caller's pool. NULL is a no-op. Must not race with other
 * calls on the codec.
 */
ZP_API void zp_codec_destroy(zp_codec *codec);

/* The pool the codec's output buffers come from; NULL for a NULL codec.
 * Thread-safe. */
ZP_API zp_pool *zp_codec_pool(const zp_codec *codec);

/* ---------------------------------------------------------------- one-shot */

/*
 * One-shot. On success *out is a buffer of the codec's pool holding
 * *out_len bytes: the caller owns it and gives it back with
 * zp_put(pool, *out). An empty result may be *out NULL with *out_len 0.
 * On failure nothing is allocated and *out is NULL.
 * errors: -EINVAL (bad arguments: codec, out or out_len NULL, src NULL with
 * len > 0), -EBADMSG (corrupt or truncated input, trailing garbage),
 * -EFBIG (above max_output), -ENOBUFS (the pool's budget is exhausted),
 * -ENOMEM; zp_codec_strerror gives the detail. Thread-safe.
 *
 * zp_compress writes one complete member/frame (gzip: a generic header,
 * no name or time; lz4: independent 64 KiB blocks, content size and
 * content checksum present). zp_decompress decodes every concatenated
 * gzip member / zstd frame / lz4 frame of src; zlib and deflate input must
 * be exactly one stream.
 */
ZP_API int zp_compress(zp_codec *codec, const void *src, size_t len, void **out,
                       size_t *out_len);
ZP_API int zp_decompress(zp_codec *codec, const void *src, size_t len, void **out,
                         size_t *out_len);

/* --------------------------------------------------------------- streaming
 *
 * A stream compresses or decompresses input given in pieces of any size
 * (1 byte included) and hands its output out as pooled buffers of
 * stream_chunk capacity, each owned by the caller once handed out (zp_put
 * on the codec's pool). A stream holds at most one partly filled output
 * buffer and its context: memory stays bounded whatever the stream's
 * length, because zp_zstream_write stops consuming input as soon as it
 * has a full buffer to hand out.
 *
 * Typical loop:
 *
 *     zp_zstream *zs;
 *     zp_zstream_open(codec, ZP_ZSTREAM_COMPRESS, &zs);
 *     while ((n = read(fd, in, sizeof in)) > 0) {
 *         const char *p = in;
 *         while (n > 0) {
 *             size_t used; void *buf; size_t len;
 *             if ((err = zp_zstream_write(zs, p, n, &used, &buf, &len)) < 0) goto fail;
 *             p += used; n -= used;
 *             if (buf) { write(out, buf, len); zp_put(pool, buf); }
 *         }
 *     }
 *     do {
 *         void *buf; size_t len;
 *         if ((err = zp_zstream_finish(zs, &buf, &len)) < 0) goto fail;
 *         if (buf) { write(out, buf, len); zp_put(pool, buf); }
 *     } while (err == 1);
 *     zp_zstream_close(zs);
 *
 * A stream object and its context come from the codec's object pools
 * (nothing is allocated per stream once warm). Compression writes one
 * member/frame per stream; decompression accepts concatenated gzip members,
 * zstd frames (skippable frames skipped) and lz4 frames, and checks every
 * member's checksum.
 *
 * Errors are sticky: after a stream returned an error, every further call
 * on it but zp_zstream_close returns the same error. Owner only (one thread
 * at a time; the stream may move between threads between calls).
 */
typedef struct zp_zstream zp_zstream;

#define ZP_ZSTREAM_COMPRESS   1
#define ZP_ZSTREAM_DECOMPRESS 2

/*
 * Opens a stream on codec in direction ZP_ZSTREAM_COMPRESS or
 * ZP_ZSTREAM_DECOMPRESS. Returns 0 and sets *out; -EINVAL, -ENOTSUP (no
 * streaming engine for this format and direction was built), -ENOBUFS,
 * -ENOMEM. Thread-safe. The caller owns the stream (zp_zstream_close).
 */
ZP_API int zp_zstream_open(zp_codec *codec, int direction, zp_zstream **out);

/*
 * Feeds up to len bytes of src. Consumes input until all of it is consumed
 * or an output buffer is full; *consumed says how many bytes were taken
 * (call again with the rest). When an output buffer is full it is handed
 * out in *out (*out_len bytes, the caller owns it); otherwise *out is NULL
 * and *out_len 0. Never blocks. Returns 0, or -EINVAL (NULL arguments),
 * -EBADMSG (corrupt input, trailing garbage after the last member/frame),
 * -EFBIG (decompressed total above max_output), -ENOBUFS, -ENOMEM.
 * On error *out is NULL and nothing is handed out.
 */
ZP_API int zp_zstream_write(zp_zstream *zs, const void *src, size_t len, size_t *consumed,
                            void **out, size_t *out_len);

/*
 * Ends the input. Compression: flushes and ends the member/frame.
 * Decompression: checks that the input ended at the end of a complete
 * member/frame (-EBADMSG if it was truncated; an empty input is an empty
 * result, not an error). Each call hands out at most one buffer in *out
 * (or NULL) and returns 1 if more output follows (call again) or 0 when
 * the stream is complete; negative errors as zp_zstream_write. After 0 the
 * stream may only be closed: zp_zstream_write then returns -EINVAL, and
 * zp_zstream_finish returns 0 again with nothing handed out.
 */
ZP_API int zp_zstream_finish(zp_zstream *zs, void **out, size_t *out_len);

/*
 * Closes the stream at any point: its partial output buffer goes back to
 * the pool, its context back to the codec's object pool (reset). Buffers
 * already handed out stay the caller's. NULL is a no-op.
 */
ZP_API void zp_zstream_close(zp_zstream *zs);

/* Bytes consumed / produced by the stream so far (compressed and
 * uncompressed sides); 0 for a NULL stream. Owner only. */
ZP_API uint64_t zp_zstream_total_in(const zp_zstream *zs);
ZP_API uint64_t zp_zstream_total_out(const zp_zstream *zs);

/* ------------------------------------------------------------ information */

/* 1 if the library was built with an engine for codec (ZP_CODEC_*) in
 * both directions, one-shot and streaming; 0 otherwise. Thread-safe. */
ZP_API int zp_codec_available(int codec);

/* Flags for zp_codec_engine. */
#define ZP_CODEC_COMPRESS   1
#define ZP_CODEC_DECOMPRESS 2
#define ZP_CODEC_STREAMING  4

/* The engine serving the codec for what (ZP_CODEC_COMPRESS or
 * ZP_CODEC_DECOMPRESS, optionally | ZP_CODEC_STREAMING): "isal",
 * "libdeflate", "zlib", "zstd", "lz4", or NULL if none (or bad arguments).
 * The string is static. Thread-safe. */
ZP_API const char *zp_codec_engine(const zp_codec *codec, int what);

/* The format the data starts with, from its magic bytes: ZP_CODEC_GZIP
 * (1f 8b), ZP_CODEC_ZSTD (a zstd or skippable frame), ZP_CODEC_LZ4
 * (04 22 4d 18), ZP_CODEC_ZLIB (a valid RFC 1950 header), or 0 if none is
 * recognised (raw deflate has no magic). Thread-safe. */
ZP_API int zp_codec_detect(const void *src, size_t len);

/* CRC-32 as gzip uses it (start with crc 0): the fastest engine built.
 * Thread-safe. */
ZP_API uint32_t zp_codec_crc32(uint32_t crc, const void *src, size_t len);

/* Text for err: the detail of the calling thread's last failing codec call
 * if it failed with err (e.g. "zp_decompress: gzip member 2: invalid
 * block type"), else zp_strerror(err). Valid until the next codec call on
 * this thread. */
ZP_API const char *zp_codec_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* ZEROPOOL_CODEC_H */
