/*
 * zpz — a parallel gzip / zstd / lz4 compressor on zeropool and
 * libzeropool-codec. This header is private to the tool: the pieces it is
 * made of and the few types they share.
 *
 *   cli.c         options, file names, -k/-f/-c, error messages, exit status
 *   io.c          whole reads and writes (EINTR, short counts), the buffered
 *                 input the decoders parse
 *   format.c      magic bytes, suffixes, zpz's gzip member header (the
 *                 extra field that carries each member's sizes)
 *   pipeline.c    the ordered pipeline: one reader (the calling thread), N
 *                 workers, one writer, a ring of slots bounding the blocks
 *                 in flight
 *   compress.c    blocks -> gzip members / zstd frames / lz4 frames
 *   decompress.c  format detection; zpz's own gzip in parallel (sizes
 *                 from the extra field)
 *   stream.c      everything else, streaming through the codec library
 *                 (zp_zstream)
 *
 * Every buffer comes from one zeropool pool; every codec context from the
 * codec library's pooled contexts. Functions return 0 or a negative errno
 * and leave a message in the job's error text.
 */
#ifndef ZPZ_H
#define ZPZ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <zeropool.h>
#include <zeropool/codec.h>

#define ZPZ_FMT_GZIP 1
#define ZPZ_FMT_ZSTD 2
#define ZPZ_FMT_LZ4 3

#define ZPZ_KiB ((size_t)1024)
#define ZPZ_MiB ((size_t)1024 * 1024)
#define ZPZ_BLOCK_DEFAULT (512 * ZPZ_KiB)
#define ZPZ_BLOCK_MIN (64 * ZPZ_KiB)
#define ZPZ_BLOCK_MAX (4 * ZPZ_MiB)
/* largest member, and largest uncompressed block, zpz -d decodes in
 * parallel: zpz writes blocks of at most ZPZ_BLOCK_MAX, whose members are
 * at most a little larger (stored blocks); a zpz extra field announcing
 * more is corrupt. Also the one-shot decoder's max_output. */
#define ZPZ_MEMBER_MAX (ZPZ_BLOCK_MAX + ZPZ_BLOCK_MAX / 8)
#define ZPZ_THREADS_MAX 256

/* ------------------------------------------------------------------ job */

/* One file's (or stdin's) run: what it reads, where it writes, with what. */
typedef struct zpz_job {
    /* settings */
    int format;         /* ZPZ_FMT_* (compression) */
    int level;          /* 0: the codec's default */
    int threads;        /* workers */
    size_t block;       /* uncompressed bytes per block */
    /* files */
    int in_fd;
    int out_fd;         /* -1: discard (zpz -t) */
    const char *in_name;  /* for messages */
    /* shared machinery */
    zp_pool *pool;
    const char *err_format; /* the format being decoded, for messages */
    /* the first error: its text (without "zpz: <file>: ") */
    char err[256];
} zpz_job;

/* Sets job->err (printf format) unless an error is already recorded;
 * returns err (a negative errno) for convenience. Thread-safe. */
int zpz_fail(zpz_job *job, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* -------------------------------------------------------------------- io */

/* Reads up to n bytes, retrying short reads until n or end of file.
 * Returns the bytes read (< n only at end of file) or -errno. */
ssize_t zpz_read_full(int fd, void *buf, size_t n);
/* Writes all n bytes (EINTR and short writes retried): 0 or -errno. */
int zpz_write_full(int fd, const void *buf, size_t n);
/* Writes a + b back to back with writev: 0 or -errno. */
int zpz_write2(int fd, const void *a, size_t alen, const void *b, size_t blen);

/* Buffered input over a descriptor, for the decoders. The buffer is a
 * pooled buffer of `cap` bytes. */
typedef struct zpz_in {
    int fd;
    unsigned char *buf;
    size_t cap, pos, len; /* unread bytes: buf[pos .. len) */
    int eof;              /* read() returned 0 */
    uint64_t consumed;    /* bytes handed out so far (offsets in messages) */
} zpz_in;

int zpz_in_open(zpz_in *in, zp_pool *pool, int fd, size_t cap);
void zpz_in_close(zpz_in *in, zp_pool *pool);
/* Makes at least n (<= cap) unread bytes available unless the input ends
 * first; returns the unread bytes available, or -errno. */
ssize_t zpz_in_fill(zpz_in *in, size_t n);
/* Copies n unread bytes to dst, reading as needed: 0, -EBADMSG (the input
 * ended first) or -errno. */
int zpz_in_take(zpz_in *in, void *dst, size_t n);

/* ---------------------------------------------------------------- format */

/* Format of a compressed stream from its first bytes (n of them): a
 * ZPZ_FMT_* or 0 when none matches. */
int zpz_detect(const unsigned char *p, size_t n);
/* ".gz", ".zst", ".lz4" */
const char *zpz_suffix(int format);
/* The format named by "gzip", "gz", "zstd", "zst", "lz4"; 0 if unknown. */
int zpz_format_by_name(const char *name);
const char *zpz_format_name(int format);
/* ZP_CODEC_* for a ZPZ_FMT_* */
int zpz_codec_of(int format);

/*
 * zpz's gzip members. Every block is one complete RFC 1952 member whose
 * header carries FEXTRA with one subfield, as BGZF does for its blocks:
 *
 *   1f 8b 08 04  00000000  00 03   XLEN=12 (2 bytes)
 *   'Z' 'P'  LEN=8 (2 bytes)  member size (u32 LE)  uncompressed size (u32 LE)
 *
 * The member size counts every byte of the member (header to trailer), so
 * a reader finds where the next member starts without inflating this one,
 * and hands whole members to several threads. Readers that do not know
 * the subfield skip it (RFC 1952 2.3.1.1).
 */
#define ZPZ_GZ_HDR_LEN 24
/* Writes the header of a member of msize bytes holding isize bytes. */
void zpz_gz_header(unsigned char hdr[ZPZ_GZ_HDR_LEN], uint32_t msize, uint32_t isize);
/* Length of the gzip header at p (n bytes available): > 0, 0 if more bytes
 * are needed, -EBADMSG if it is not a gzip header. */
int zpz_gz_header_len(const unsigned char *p, size_t n);
/* If the n bytes at p start a zpz member header, sets its sizes and
 * returns 1; 0 if they start another gzip header (or too few bytes). */
int zpz_gz_parse_zp(const unsigned char *p, size_t n, uint32_t *msize, uint32_t *isize);

/* -------------------------------------------------------------- pipeline */

/* One block in flight. The reader fills `in`; a worker turns it into the
 * output: hdr[0..hdr_len) then out[out_off .. out_off + out_len); the
 * writer writes both and the release hook gives the buffers back. */
typedef struct zpz_slot {
    uint64_t seq;
    void *in;
    size_t in_len;
    uint32_t expect;     /* decompression: the size the block must have */
    void *out;
    size_t out_off, out_len;
    unsigned char hdr[ZPZ_GZ_HDR_LEN];
    size_t hdr_len;
    int state;           /* pipeline.c */
} zpz_slot;

typedef struct zpz_stage {
    /* reader, on the calling thread: fills s->in; 1 a block, 0 the end, or
     * -errno (with zpz_fail). A block whose input the reader could not
     * use stays the reader's to release. */
    int (*read)(void *ctx, zpz_slot *s);
    /* worker: sets s->out and friends; 0 or -errno (with zpz_fail) */
    int (*work)(void *ctx, zpz_slot *s);
    /* gives back whatever s holds (in, out): any thread */
    void (*release)(void *ctx, zpz_slot *s);
    void *ctx;
} zpz_stage;

/* Runs the pipeline to the end of the input or the first error. Output
 * goes to job->out_fd in the order read. Returns 0 or the first error. */
int zpz_pipeline_run(zpz_job *job, const zpz_stage *st);

/* ------------------------------------------------------------ the coders */

int zpz_compress(zpz_job *job);
int zpz_decompress(zpz_job *job);
/* Decodes the rest of `in` (starting with the unread buffered bytes) as
 * one stream of `format` through the codec library's streaming decoder,
 * writing to job->out_fd: 0 or -errno (with zpz_fail). stream.c */
int zpz_stream_decode(zpz_job *job, zpz_in *in, int format);

#endif /* ZPZ_H */
