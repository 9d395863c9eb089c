/*
 * Helpers of the codec tests (zp_test_codec.h): formats and data, codecs on
 * a counting provider, one-shot and streaming runs into plain memory, files
 * and external tools.
 */
#include "zp_test_codec.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>

const int zpt_formats[ZPT_NFORMATS] = {ZP_CODEC_GZIP, ZP_CODEC_DEFLATE, ZP_CODEC_ZLIB,
                                       ZP_CODEC_ZSTD, ZP_CODEC_LZ4};

const char *zpt_format_name(int format)
{
    switch (format) {
    case ZP_CODEC_GZIP: return "gzip";
    case ZP_CODEC_DEFLATE: return "deflate";
    case ZP_CODEC_ZLIB: return "zlib";
    case ZP_CODEC_ZSTD: return "zstd";
    case ZP_CODEC_LZ4: return "lz4";
    default: return "unknown";
    }
}

unsigned char *zpt_text(size_t n, uint64_t seed)
{
    static const char *words[] = {
        "the ", "pool ", "buffer ", "of ", "and ", "compress ", "zero ", "allocation ",
        "context ", "stream ", "member ", "frame ", "a ", "is ", "to ", "in ", "data, ",
        "with ", "every ", "block. ", "\n", "return ", "size_t ", "(void *)", "0x7f3a, "};
    unsigned char *p = malloc(n ? n : 1);
    uint64_t rng = seed;
    size_t i = 0;
    if (p == NULL)
        abort();
    while (i < n) {
        uint64_t r = zpt_rand(&rng);
        if (r % 16 == 0) {
            p[i++] = (unsigned char)(r >> 8); /* some noise */
            continue;
        }
        const char *w = words[(r >> 16) % (sizeof words / sizeof *words)];
        for (; *w && i < n; w++)
            p[i++] = (unsigned char)*w;
    }
    return p;
}

void zpt_bytes_add(zpt_bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (b->p == NULL)
            abort();
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

void zpt_bytes_free(zpt_bytes *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

zp_codec *zpt_codec_new_at(const char *file, int line, zp_pool *pool, int format, int level,
                           size_t max_output, zpt_provider *pv, size_t chunk)
{
    zp_codec_config cfg;
    zp_config pc;
    zp_codec *c = NULL;
    int err;
    zp_codec_config_init(&cfg, format);
    cfg.level = level;
    cfg.max_output = max_output;
    cfg.stream_chunk = chunk;
    if (pv != NULL) {
        zp_config_init(&pc);
        pc.cache_depth = 2;
        zpt_provider_attach(&pc, pv);
        cfg.ctx_config = &pc;
    }
    err = zp_codec_create(pool, &cfg, &c);
    if (err != 0 || c == NULL)
        zpt_fail_at(file, line, "zp_codec_create(%s, level %d): %d %s", zpt_format_name(format),
                    level, err, zp_codec_strerror(err));
    return c;
}

void zpt_assert_no_outstanding_at(const char *file, int line, zp_pool *pool)
{
    zp_stats s = zpt_read(pool);
    if (s.bytes_outstanding != 0)
        zpt_fail_at(file, line, "pool %s: %llu bytes outstanding (a buffer was not given back)",
                    zp_pool_name(pool), (unsigned long long)s.bytes_outstanding);
}

int zpt_oneshot(zp_codec *c, int direction, const void *src, size_t len, zpt_bytes *out)
{
    void *o = NULL;
    size_t n = 0;
    int err = direction == ZP_ZSTREAM_COMPRESS ? zp_compress(c, src, len, &o, &n)
                                                : zp_decompress(c, src, len, &o, &n);
    if (err == 0 && out != NULL)
        zpt_bytes_add(out, o, n);
    if (err != 0 && o != NULL)
        return -EFAULT; /* failure must hand nothing out */
    zp_put(zp_codec_pool(c), o);
    return err;
}

static void take(zp_codec *c, void *buf, size_t len, zpt_bytes *out)
{
    if (buf == NULL)
        return;
    if (out != NULL)
        zpt_bytes_add(out, buf, len);
    zp_put(zp_codec_pool(c), buf);
}

int zpt_stream(zp_codec *c, int direction, const void *src, size_t len, size_t piece,
               uint64_t *rng, zpt_bytes *out)
{
    zp_zstream *zs;
    const unsigned char *p = src;
    int err = zp_zstream_open(c, direction, &zs);
    if (err != 0)
        return err;
    while (len > 0) {
        size_t n = piece ? piece : 1 + (size_t)(zpt_rand(rng) % 65536), used;
        void *buf;
        size_t blen;
        if (n > len)
            n = len;
        err = zp_zstream_write(zs, p, n, &used, &buf, &blen);
        if (err != 0)
            goto out;
        take(c, buf, blen, out);
        p += used;
        len -= used;
    }
    do {
        void *buf;
        size_t blen;
        err = zp_zstream_finish(zs, &buf, &blen);
        if (err < 0)
            goto out;
        take(c, buf, blen, out);
    } while (err == 1);
out:
    zp_zstream_close(zs);
    return err;
}

char *zpt_tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    char *d = malloc(4096);
    if (d == NULL)
        abort();
    snprintf(d, 4096, "%s/zp-codec.XXXXXX", t && *t ? t : "/tmp");
    if (mkdtemp(d) == NULL) {
        free(d);
        return NULL;
    }
    return d;
}

void zpt_tmpdir_remove(char *dir)
{
    DIR *dh;
    struct dirent *e;
    char path[4096];
    if (dir == NULL)
        return;
    dh = opendir(dir);
    while (dh != NULL && (e = readdir(dh)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (dh != NULL)
        closedir(dh);
    rmdir(dir);
    free(dir);
}

int zpt_write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok;
    if (f == NULL)
        return -1;
    ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int zpt_read_file(const char *path, zpt_bytes *out)
{
    FILE *f = fopen(path, "rb");
    unsigned char buf[65536];
    size_t n;
    if (f == NULL)
        return -1;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        zpt_bytes_add(out, buf, n);
    n = (size_t)ferror(f);
    fclose(f);
    return n ? -1 : 0;
}

int zpt_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    int st;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

int zpt_have_tool(const char *name)
{
    return zpt_sh("command -v %s >/dev/null 2>&1", name) == 0;
}
