/*
 * The harness for the codec tests (libzeropool-codec): built as the static
 * library zp_test_codec on top of zp_test, linked by the tests registered
 * with LIBS zp_test_codec. Everything in zp_test.h is available.
 *
 * Sections: whole-process heap counting (zp_test_interpose.c); formats and
 * data; codecs on a counting provider; running one-shot and streaming
 * operations into plain memory; files and external tools.
 */
#ifndef ZP_TEST_CODEC_H
#define ZP_TEST_CODEC_H

#include "zp_test.h"
#include "zeropool/codec.h"

/* ------------------------------------------ whole-process heap counting */

/* malloc, calloc, realloc, reallocarray, free, posix_memalign,
 * aligned_alloc, memalign, valloc and pvalloc are defined in the test
 * executable (zp_test_interpose.c) and forward to the real allocator: every
 * call of every thread and every shared library is seen. */
typedef struct zpt_heap_counts {
    unsigned long allocs; /* calls that allocate (or reallocate) */
    unsigned long frees;  /* free of a non-NULL pointer */
} zpt_heap_counts;

/* Zeroes the counts and counts from now on. */
void zpt_heap_count_start(void);
/* Stops counting; returns the counts since zpt_heap_count_start. */
zpt_heap_counts zpt_heap_count_stop(void);

/* ------------------------------------------------------ formats and data */

#define ZPT_NFORMATS 5
extern const int zpt_formats[ZPT_NFORMATS]; /* ZP_CODEC_GZIP .. ZP_CODEC_LZ4 */
const char *zpt_format_name(int format);    /* "gzip", "deflate", ... */

/* n bytes of deterministic pseudo-text (words, numbers, some noise) that
 * compresses about as well as real text; malloc'd, the caller frees. */
unsigned char *zpt_text(size_t n, uint64_t seed);

/* A growable malloc'd byte vector. */
typedef struct zpt_bytes {
    unsigned char *p;
    size_t len, cap;
} zpt_bytes;
void zpt_bytes_add(zpt_bytes *b, const void *p, size_t n);
void zpt_bytes_free(zpt_bytes *b);

/* ------------------------------------------------------------- codecs */

/* A codec of format at level on pool; its context pools on provider pv
 * (NULL: mmap). max_output / chunk 0: defaults. Asserts. */
#define zpt_codec_new(pool, format, level, max_output, pv, chunk)              \
    zpt_codec_new_at(__FILE__, __LINE__, (pool), (format), (level), (max_output), (pv), (chunk))
zp_codec *zpt_codec_new_at(const char *file, int line, zp_pool *pool, int format, int level,
                           size_t max_output, zpt_provider *pv, size_t chunk);

/* Asserts that the pool holds no outstanding bytes (every buffer the codec
 * handed out went back). */
#define zpt_assert_no_outstanding(pool)                                        \
    zpt_assert_no_outstanding_at(__FILE__, __LINE__, (pool))
void zpt_assert_no_outstanding_at(const char *file, int line, zp_pool *pool);

/* zp_compress / zp_decompress (direction ZP_ZSTREAM_COMPRESS or
 * _DECOMPRESS) of src, its output appended to *out and the pooled buffer
 * put back. Returns the call's result. No cmocka: any thread. */
int zpt_oneshot(zp_codec *c, int direction, const void *src, size_t len, zpt_bytes *out);

/* The same through a zp_zstream: src written in pieces of `piece` bytes
 * (0: random sizes 1 .. 65536 from *rng), then finished; every buffer
 * handed out is appended to *out (if not NULL) and put back. Returns 0 or
 * the first error. No cmocka. */
int zpt_stream(zp_codec *c, int direction, const void *src, size_t len, size_t piece,
               uint64_t *rng, zpt_bytes *out);

/* ------------------------------------------------- files and tools */

/* A fresh temporary directory (malloc'd path); zpt_tmpdir_remove deletes it
 * and its files and frees the path. */
char *zpt_tmpdir(void);
void zpt_tmpdir_remove(char *dir);

/* Writes / reads a whole file: 0 or -1. */
int zpt_write_file(const char *path, const void *p, size_t n);
int zpt_read_file(const char *path, zpt_bytes *out);

/* Runs a shell command (printf format) with stdin from /dev/null; returns
 * its exit status (-1 if it could not run or died of a signal). */
int zpt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* 1 if the program is on PATH. */
int zpt_have_tool(const char *name);

#endif /* ZP_TEST_CODEC_H */
