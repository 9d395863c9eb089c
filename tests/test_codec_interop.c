/* Interop with the real tools: our gzip/zlib/deflate/zstd/lz4 output passes gzip -t, zstd -t, lz4 -t and python3's zlib/gzip; their output (multi-member, multi-frame, linked blocks, unknown sizes, long windows) decodes with ours byte-exact. */
#include "zp_test_codec.h"

/* Tools are installed by scripts/deps.sh: a missing one fails the test. */
static const char *tools[] = {"gzip", "zstd", "lz4", "python3", "cmp"};

static char *dir;
static char in_path[512], in2_path[512];

/* python3 checks every file of the manifest (argv[1]: format, our file,
 * the original, a description; tab-separated), requiring zlib and deflate
 * streams to end exactly at the end of the file: one python3 run for all */
static const char *py_check =
    "import sys, zlib, gzip\n"
    "bad = 0\n"
    "for line in open(sys.argv[1]):\n"
    "    fmt, ours, want, what = line.rstrip('\\n').split('\\t')\n"
    "    a, b = open(ours, 'rb').read(), open(want, 'rb').read()\n"
    "    if fmt == 'gzip':\n"
    "        d = gzip.decompress(a)\n"
    "        ok = True\n"
    "    else:\n"
    "        o = zlib.decompressobj(-15 if fmt == 'deflate' else 15)\n"
    "        d = o.decompress(a) + o.flush()\n"
    "        ok = o.eof and o.unused_data == b''\n"
    "    if d != b or not ok:\n"
    "        print('python3 rejects our', what, file=sys.stderr)\n"
    "        bad += 1\n"
    "sys.exit(1 if bad else 0)\n";

/* python3 writers (argv: the input, an empty file, the output folder): zlib
 * level 9, zlib of nothing, raw deflate level 6, gzip level 5 */
static const char *py_write =
    "import sys, zlib, gzip\n"
    "a, e, d = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read(), sys.argv[3]\n"
    "def z(data, lvl, wbits):\n"
    "    o = zlib.compressobj(lvl, zlib.DEFLATED, wbits)\n"
    "    return o.compress(data) + o.flush()\n"
    "open(d + '/py.zlib9', 'wb').write(z(a, 9, 15))\n"
    "open(d + '/py.zlib-empty', 'wb').write(z(e, 1, 15))\n"
    "open(d + '/py.deflate6', 'wb').write(z(a, 6, -15))\n"
    "open(d + '/py.gzip5', 'wb').write(gzip.compress(a, 5))\n";

static FILE *manifest;
static int nours;

static void write_or_fail(const char *path, const void *p, size_t n)
{
    if (zpt_write_file(path, p, n) != 0)
        zpt_fail("cannot write %s", path);
}

/* our output of src in format at level, one-shot and streaming, checked
 * by the tools */
static void ours_to_tools(zp_pool *pool, int format, int level, const unsigned char *src,
                          size_t len, const char *src_path)
{
    zp_codec *c = zpt_codec_new(pool, format, level, 0, NULL, 0);
    static char out[8192];
    for (int mode = 0; mode < 2; mode++) {
        zpt_bytes comp = {0};
        uint64_t rng = 5;
        int err = mode ? zpt_stream(c, ZP_ZSTREAM_COMPRESS, src, len, 0, &rng, &comp)
                       : zpt_oneshot(c, ZP_ZSTREAM_COMPRESS, src, len, &comp);
        const char *name = zpt_format_name(format);
        if (err != 0)
            zpt_fail("%s level %d %s: %d %s", name, level, mode ? "stream" : "one-shot", err,
                     zp_codec_strerror(err));
        snprintf(out, sizeof out, "%s/ours%d.%s", dir, nours++, name);
        write_or_fail(out, comp.p, comp.len);
        switch (format) {
        case ZP_CODEC_GZIP:
            if (zpt_sh("gzip -t '%s' && gzip -dc '%s' | cmp -s - '%s'", out, out, src_path) != 0)
                zpt_fail("gzip rejects our gzip (level %d, %s, %zu bytes)", level,
                         mode ? "stream" : "one-shot", len);
            /* and python3's gzip module, below */
            fprintf(manifest, "%s\t%s\t%s\t%s level %d %s %zu bytes\n", name, out, src_path,
                    name, level, mode ? "stream" : "one-shot", len);
            break;
        case ZP_CODEC_DEFLATE:
        case ZP_CODEC_ZLIB:
            fprintf(manifest, "%s\t%s\t%s\t%s level %d %s %zu bytes\n", name, out, src_path,
                    name, level, mode ? "stream" : "one-shot", len);
            break;
        case ZP_CODEC_ZSTD:
            if (zpt_sh("zstd -q -t '%s' && zstd -q -dc '%s' | cmp -s - '%s'", out, out,
                       src_path) != 0)
                zpt_fail("zstd rejects our zstd (level %d, %s, %zu bytes)", level,
                         mode ? "stream" : "one-shot", len);
            break;
        default:
            if (zpt_sh("lz4 -q -t '%s' && lz4 -q -dc '%s' | cmp -s - '%s'", out, out,
                       src_path) != 0)
                zpt_fail("lz4 rejects our lz4 (level %d, %s, %zu bytes)", level,
                         mode ? "stream" : "one-shot", len);
            break;
        }
        zpt_bytes_free(&comp);
    }
    zp_codec_destroy(c);
}

/* the file at path (written by a tool) decodes with ours to want */
static void tools_to_ours(zp_pool *pool, int format, const char *path, const unsigned char *want,
                          size_t want_len, const char *what)
{
    zp_codec *c = zpt_codec_new(pool, format, 0, 0, NULL, 4096);
    zpt_bytes comp = {0};
    if (zpt_read_file(path, &comp) != 0)
        zpt_fail("%s: cannot read %s", what, path);
    for (int mode = 0; mode < 3; mode++) {
        zpt_bytes plain = {0};
        uint64_t rng = 9;
        int err = mode == 0 ? zpt_oneshot(c, ZP_ZSTREAM_DECOMPRESS, comp.p, comp.len, &plain)
                : mode == 1 ? zpt_stream(c, ZP_ZSTREAM_DECOMPRESS, comp.p, comp.len, 0, &rng, &plain)
                            : zpt_stream(c, ZP_ZSTREAM_DECOMPRESS, comp.p, comp.len, 4093, NULL,
                                         &plain);
        if (err != 0)
            zpt_fail("%s (%s): %d %s", what, mode ? "stream" : "one-shot", err,
                     zp_codec_strerror(err));
        if (plain.len != want_len || (want_len && memcmp(plain.p, want, want_len) != 0))
            zpt_fail("%s (%s): %zu bytes decoded, %zu expected, or other bytes", what,
                     mode ? "stream" : "one-shot", plain.len, want_len);
        zpt_bytes_free(&plain);
    }
    zpt_bytes_free(&comp);
    zp_codec_destroy(c);
}

static void test_interop(void **state)
{
    zp_pool *pool = ZPT_POOL();
    size_t len = zpt_under_valgrind() ? 200007 : ZPT_MiB + 7, len2 = 70001; /* valgrind: smaller */
    unsigned char *text = zpt_text(len, 11), *text2 = zpt_text(len2, 12), *both;
    static char p[8192], q[8192];
    char empty_path[512], tiny_path[512];
    static const unsigned char tiny[] = "hello, hello, hello\n";
    (void)state;

    for (size_t i = 0; i < sizeof tools / sizeof *tools; i++)
        if (!zpt_have_tool(tools[i]))
            zpt_fail("%s is not installed (scripts/deps.sh test installs it)", tools[i]);
    dir = zpt_tmpdir();
    assert_non_null(dir);
    snprintf(in_path, sizeof in_path, "%s/in", dir);
    snprintf(in2_path, sizeof in2_path, "%s/in2", dir);
    snprintf(empty_path, sizeof empty_path, "%s/empty", dir);
    snprintf(tiny_path, sizeof tiny_path, "%s/tiny", dir);
    write_or_fail(in_path, text, len);
    write_or_fail(in2_path, text2, len2);
    write_or_fail(empty_path, "", 0);
    write_or_fail(tiny_path, tiny, sizeof tiny - 1);
    snprintf(p, sizeof p, "%s/check.py", dir);
    write_or_fail(p, py_check, strlen(py_check));
    snprintf(p, sizeof p, "%s/write.py", dir);
    write_or_fail(p, py_write, strlen(py_write));

    /* ours -> tools: every format, the levels that pick each engine */
    snprintf(p, sizeof p, "%s/manifest", dir);
    manifest = fopen(p, "w");
    assert_non_null(manifest);
    for (int i = 0; i < ZPT_NFORMATS; i++) {
        int f = zpt_formats[i];
        int levels[2] = {1, f == ZP_CODEC_LZ4 ? 9 : f == ZP_CODEC_ZSTD ? 3 : 6};
        for (int l = 0; l < 2; l++) {
            ours_to_tools(pool, f, levels[l], text, len, in_path);
            ours_to_tools(pool, f, levels[l], tiny, sizeof tiny - 1, tiny_path);
        }
        ours_to_tools(pool, f, 0, (const unsigned char *)"", 0, empty_path);
    }
    assert_int_equal(fclose(manifest), 0);
    if (zpt_sh("python3 '%s/check.py' '%s/manifest'", dir, dir) != 0)
        zpt_fail("python3's zlib/gzip modules reject our output (see above)");

    /* tools -> ours */
    both = malloc(len + len2);
    memcpy(both, text, len);
    memcpy(both + len, text2, len2);
#define TOOL(fmt, cmd, want, want_len, what)                                   \
    do {                                                                       \
        snprintf(q, sizeof q, "%s/theirs", dir);                               \
        if (zpt_sh("%s", cmd) != 0)                                            \
            zpt_fail("could not run: %s", cmd);                               \
        tools_to_ours(pool, fmt, q, want, want_len, what);                     \
    } while (0)
    snprintf(p, sizeof p, "gzip -1 -c '%s' > '%s/theirs'", in_path, dir);
    TOOL(ZP_CODEC_GZIP, p, text, len, "gzip -1");
    snprintf(p, sizeof p, "gzip -9 -c < '%s' > '%s/theirs'", in_path, dir);
    TOOL(ZP_CODEC_GZIP, p, text, len, "gzip -9 (stdin)");
    snprintf(p, sizeof p, "gzip -c '%s' > '%s/theirs' && gzip -c '%s' >> '%s/theirs'", in_path,
             dir, in2_path, dir);
    TOOL(ZP_CODEC_GZIP, p, both, len + len2, "cat a.gz b.gz (two members)");
    snprintf(p, sizeof p, "gzip -c '%s' > '%s/theirs'", empty_path, dir);
    TOOL(ZP_CODEC_GZIP, p, text, 0, "gzip of an empty file");
    snprintf(p, sizeof p, "python3 '%s/write.py' '%s' '%s' '%s'", dir, in_path, empty_path, dir);
    if (zpt_sh("%s", p) != 0)
        zpt_fail("could not run: %s", p);
    snprintf(q, sizeof q, "%s/py.zlib9", dir);
    tools_to_ours(pool, ZP_CODEC_ZLIB, q, text, len, "python3 zlib level 9");
    snprintf(q, sizeof q, "%s/py.zlib-empty", dir);
    tools_to_ours(pool, ZP_CODEC_ZLIB, q, text, 0, "python3 zlib of nothing");
    snprintf(q, sizeof q, "%s/py.deflate6", dir);
    tools_to_ours(pool, ZP_CODEC_DEFLATE, q, text, len, "python3 raw deflate");
    snprintf(q, sizeof q, "%s/py.gzip5", dir);
    tools_to_ours(pool, ZP_CODEC_GZIP, q, text, len, "python3 gzip");
    snprintf(p, sizeof p, "zstd -q -12 -c '%s' > '%s/theirs'", in_path, dir);
    TOOL(ZP_CODEC_ZSTD, p, text, len, "zstd -12");
    snprintf(p, sizeof p, "zstd -q -1 --no-check -c < '%s' > '%s/theirs'", in_path, dir);
    TOOL(ZP_CODEC_ZSTD, p, text, len, "zstd -1 from stdin (no content size, no checksum)");
    snprintf(p, sizeof p, "zstd -q -c '%s' > '%s/theirs' && zstd -q -c '%s' >> '%s/theirs'",
             in_path, dir, in2_path, dir);
    TOOL(ZP_CODEC_ZSTD, p, both, len + len2, "two zstd frames");
    snprintf(p, sizeof p, "zstd -q -c '%s' > '%s/theirs'", empty_path, dir);
    TOOL(ZP_CODEC_ZSTD, p, text, 0, "zstd of an empty file");
    /* zstd --long=24 from stdin declares a 16 MiB window: one-shot decodes
     * it; streaming refuses it (-ENOTSUP) unless max_window allows it */
    snprintf(p, sizeof p, "zstd -q --long=24 -c < '%s' > '%s/theirs'", in_path, dir);
    if (zpt_sh("%s", p) != 0)
        zpt_fail("could not run: %s", p);
    {
        zpt_bytes comp = {0}, plain = {0};
        zp_codec *narrow = zpt_codec_new(pool, ZP_CODEC_ZSTD, 0, 0, NULL, 0), *wide;
        zp_codec_config cfg;
        snprintf(q, sizeof q, "%s/theirs", dir);
        assert_int_equal(zpt_read_file(q, &comp), 0);
        assert_int_equal(zpt_oneshot(narrow, ZP_ZSTREAM_DECOMPRESS, comp.p, comp.len, &plain), 0);
        assert_int_equal(plain.len, len);
        assert_memory_equal(plain.p, text, len);
        assert_int_equal(zpt_stream(narrow, ZP_ZSTREAM_DECOMPRESS, comp.p, comp.len, 4096, NULL,
                                    NULL), -ENOTSUP);
        assert_true(zpt_contains_nocase(zp_codec_strerror(-ENOTSUP), "max_window"));
        zp_codec_config_init(&cfg, ZP_CODEC_ZSTD);
        cfg.max_window = 16 * ZPT_MiB;
        assert_int_equal(zp_codec_create(pool, &cfg, &wide), 0);
        plain.len = 0;
        assert_int_equal(zpt_stream(wide, ZP_ZSTREAM_DECOMPRESS, comp.p, comp.len, 4096, NULL,
                                    &plain), 0);
        assert_int_equal(plain.len, len);
        assert_memory_equal(plain.p, text, len);
        zp_codec_destroy(wide);
        zp_codec_destroy(narrow);
        zpt_bytes_free(&comp);
        zpt_bytes_free(&plain);
    }
    snprintf(p, sizeof p, "lz4 -q -c '%s' > '%s/theirs'", in_path, dir);
    TOOL(ZP_CODEC_LZ4, p, text, len, "lz4 (4 MiB blocks)");
    snprintf(p, sizeof p, "lz4 -q -9 -BD -B4 -c < '%s' > '%s/theirs'", in_path, dir);
    TOOL(ZP_CODEC_LZ4, p, text, len, "lz4 -9 linked 64 KiB blocks from stdin");
    snprintf(p, sizeof p, "lz4 -q --content-size -BX -c '%s' > '%s/theirs' && lz4 -q -c '%s' >> '%s/theirs'",
             in_path, dir, in2_path, dir);
    TOOL(ZP_CODEC_LZ4, p, both, len + len2, "two lz4 frames (content size, block checksums)");
    snprintf(p, sizeof p, "lz4 -q -c '%s' > '%s/theirs'", empty_path, dir);
    TOOL(ZP_CODEC_LZ4, p, text, 0, "lz4 of an empty file");
#undef TOOL

    zpt_assert_no_outstanding(pool);
    zp_pool_destroy(pool);
    zpt_tmpdir_remove(dir);
    free(both);
    free(text);
    free(text2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_interop)};
    return ZPT_RUN(tests);
}
