/*
 * zpz: the command line, in the manner of gzip and pigz.
 *
 *   zpz [-d] [-c] [-k] [-f] [-t] [-1..-9] [-p threads] [-b KiB]
 *       [--format gzip|zstd|lz4] [file...]
 *
 * Without files (or with "-") it filters stdin to stdout. A file is
 * replaced by file.gz / .zst / .lz4 (or, with -d, by the name without its
 * suffix), with the input's mode and times; the input is removed unless
 * -k or -c. An existing output is never overwritten without -f. Errors go
 * to stderr as "zpz: <file>: <reason>"; the exit status is 0, 1 if any
 * file failed, 2 for a usage error.
 */
#include "zpz.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct {
    int decompress, to_stdout, keep, force, test, quiet;
    int format, level, threads;
    size_t block;
} opt = {.format = ZPZ_FMT_GZIP, .block = ZPZ_BLOCK_DEFAULT};

static zp_pool *pool;

/* the output being written, removed if a signal ends the process */
static char *volatile partial_out;

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

int zpz_fail(zpz_job *job, int err, const char *fmt, ...)
{
    pthread_mutex_lock(&fail_lock);
    if (job->err[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(job->err, sizeof job->err, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&fail_lock);
    return err;
}

static void say(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "zpz: %s: ", name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void on_signal(int sig)
{
    char *p = partial_out;
    if (p != NULL)
        unlink(p);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void usage(FILE *f)
{
    fputs("usage: zpz [-d] [-c] [-k] [-f] [-t] [-1..-9] [-p threads] [-b KiB]\n"
          "           [--format gzip|zstd|lz4] [file...]\n"
          "  -d, --decompress  decompress (gzip, zstd or lz4, told by the data)\n"
          "  -c, --stdout      write to stdout, keep the input files\n"
          "  -k, --keep        keep the input files\n"
          "  -f, --force       overwrite outputs; write to a terminal\n"
          "  -t, --test        check the compressed files, write nothing\n"
          "  -1 .. -9          compression level (default: the format's)\n"
          "  -p, --processes N worker threads (default: the CPUs online)\n"
          "  -b, --blocksize K block size in KiB, 64 .. 4096 (default 512)\n"
          "  --format F        gzip (default), zstd or lz4\n"
          "  -q, --quiet       no warnings\n"
          "  -h, --help        this text;  -V, --version\n"
          "Without files, or with '-', reads stdin and writes stdout.\n",
          f);
}

/* Runs one coder from in_fd to out_fd; 0, or 1 after printing the error. */
static int run(const char *name, int in_fd, int out_fd)
{
    zpz_job job;
    memset(&job, 0, sizeof job);
    job.format = opt.format;
    job.level = opt.level;
    job.threads = opt.threads;
    job.block = opt.block;
    job.in_fd = in_fd;
    job.out_fd = out_fd;
    job.in_name = name;
    job.pool = pool;
    int rc = opt.decompress || opt.test ? zpz_decompress(&job) : zpz_compress(&job);
    if (rc < 0) {
        say(name, "%s", job.err[0] ? job.err : strerror(-rc));
        return 1;
    }
    return 0;
}

static int do_stdio(void)
{
    int dec = opt.decompress || opt.test;
    if (!opt.force && !dec && isatty(STDOUT_FILENO)) {
        fprintf(stderr, "zpz: compressed data not written to a terminal "
                        "(use -f to force)\n");
        return 1;
    }
    if (!opt.force && dec && isatty(STDIN_FILENO)) {
        fprintf(stderr, "zpz: compressed data not read from a terminal "
                        "(use -f to force)\n");
        return 1;
    }
    return run("stdin", STDIN_FILENO, opt.test ? -1 : STDOUT_FILENO);
}

static int has_suffix(const char *name, const char *suf)
{
    size_t n = strlen(name), k = strlen(suf);
    return n > k && strcmp(name + n - k, suf) == 0 && name[n - k - 1] != '/';
}

/* The output name for a file, or NULL with the reason printed. */
static char *out_name(const char *name)
{
    size_t n = strlen(name);
    char *out;
    if (!opt.decompress) {
        const char *suf = zpz_suffix(opt.format);
        if (has_suffix(name, suf)) {
            say(name, "already has %s suffix -- unchanged", suf);
            return NULL;
        }
        out = malloc(n + strlen(suf) + 1);
        if (out != NULL)
            sprintf(out, "%s%s", name, suf);
    } else {
        static const char *const strip[][2] = {
            {".gz", ""}, {".tgz", ".tar"}, {".zst", ""}, {".tzst", ".tar"},
            {".lz4", ""}, {".z", ""}, {"-gz", ""}};
        size_t i;
        for (i = 0; i < sizeof strip / sizeof strip[0]; i++)
            if (has_suffix(name, strip[i][0]))
                break;
        if (i == sizeof strip / sizeof strip[0]) {
            say(name, "unknown suffix -- ignored");
            return NULL;
        }
        size_t keep = n - strlen(strip[i][0]);
        out = malloc(keep + strlen(strip[i][1]) + 1);
        if (out != NULL)
            sprintf(out, "%.*s%s", (int)keep, name, strip[i][1]);
    }
    if (out == NULL)
        say(name, "out of memory");
    return out;
}

static int do_file(const char *name)
{
    if (strcmp(name, "-") == 0)
        return do_stdio();
    int in_fd = open(name, O_RDONLY | O_NOCTTY | (opt.force ? 0 : O_NOFOLLOW));
    if (in_fd < 0) {
        say(name, "%s", errno == ELOOP ? "is a symbolic link -- ignored (use -f)"
                                       : strerror(errno));
        return 1;
    }
    struct stat st;
    if (fstat(in_fd, &st) < 0) {
        say(name, "%s", strerror(errno));
        close(in_fd);
        return 1;
    }
    if (!S_ISREG(st.st_mode)) {
        say(name, "%s -- ignored",
            S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file");
        close(in_fd);
        return 1;
    }
    if (opt.to_stdout || opt.test) {
        int status = 0;
        if (!opt.force && !opt.decompress && !opt.test && isatty(STDOUT_FILENO)) {
            fprintf(stderr, "zpz: compressed data not written to a terminal "
                            "(use -f to force)\n");
            status = 1;
        } else {
            status = run(name, in_fd, opt.test ? -1 : STDOUT_FILENO);
        }
        close(in_fd);
        return status;
    }

    char *out = out_name(name);
    if (out == NULL) {
        close(in_fd);
        return 1;
    }
    if (opt.force && unlink(out) < 0 && errno != ENOENT) {
        say(out, "%s", strerror(errno));
        goto fail_out;
    }
    int out_fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY, 0600);
    if (out_fd < 0) {
        if (errno == EEXIST)
            say(out, "already exists; not overwritten (use -f)");
        else
            say(out, "%s", strerror(errno));
        goto fail_out;
    }
    partial_out = out;
    int status = run(name, in_fd, out_fd);
    if (status == 0) {
        /* the input's permissions and times, as gzip keeps them */
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        if (fchmod(out_fd, st.st_mode & 07777) < 0 && !opt.quiet)
            say(out, "cannot keep the mode: %s", strerror(errno));
        if (futimens(out_fd, times) < 0 && !opt.quiet)
            say(out, "cannot keep the times: %s", strerror(errno));
    }
    if (close(out_fd) < 0 && status == 0) {
        say(out, "write error: %s", strerror(errno));
        status = 1;
    }
    if (status != 0)
        unlink(out);
    partial_out = NULL;
    if (status == 0 && !opt.keep && unlink(name) < 0) {
        say(name, "cannot remove: %s", strerror(errno));
        status = 1;
    }
    free(out);
    close(in_fd);
    return status;

fail_out:
    free(out);
    close(in_fd);
    return 1;
}

static long parse_num(const char *s, long lo, long hi, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "zpz: invalid %s '%s' (%ld .. %ld)\n", what, s, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    enum { OPT_FORMAT = 256, OPT_FAST, OPT_BEST };
    static const struct option longs[] = {
        {"decompress", no_argument, NULL, 'd'},
        {"uncompress", no_argument, NULL, 'd'},
        {"stdout", no_argument, NULL, 'c'},
        {"to-stdout", no_argument, NULL, 'c'},
        {"keep", no_argument, NULL, 'k'},
        {"force", no_argument, NULL, 'f'},
        {"test", no_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},
        {"processes", required_argument, NULL, 'p'},
        {"blocksize", required_argument, NULL, 'b'},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"fast", no_argument, NULL, OPT_FAST},
        {"best", no_argument, NULL, OPT_BEST},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "dckftqp:b:hV123456789", longs, NULL)) != -1) {
        switch (c) {
        case 'd': opt.decompress = 1; break;
        case 'c': opt.to_stdout = 1; break;
        case 'k': opt.keep = 1; break;
        case 'f': opt.force = 1; break;
        case 't': opt.test = 1; break;
        case 'q': opt.quiet = 1; break;
        case 'p': opt.threads = (int)parse_num(optarg, 1, ZPZ_THREADS_MAX, "thread count"); break;
        case 'b':
            opt.block = (size_t)parse_num(optarg, ZPZ_BLOCK_MIN / ZPZ_KiB,
                                          ZPZ_BLOCK_MAX / ZPZ_KiB, "block size (KiB)") *
                        ZPZ_KiB;
            break;
        case OPT_FORMAT:
            opt.format = zpz_format_by_name(optarg);
            if (opt.format == 0) {
                fprintf(stderr, "zpz: unknown format '%s' (gzip, zstd or lz4)\n", optarg);
                return 2;
            }
            break;
        case OPT_FAST: opt.level = 1; break;
        case OPT_BEST: opt.level = 9; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("zpz (zeropool %s)\n", zp_version_string()); return 0;
        default:
            if (c >= '1' && c <= '9') {
                opt.level = c - '0';
                break;
            }
            usage(stderr);
            return 2;
        }
    }
    if (opt.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        opt.threads = n < 1 ? 1 : n > ZPZ_THREADS_MAX ? ZPZ_THREADS_MAX : (int)n;
    }

    zp_config cfg;
    zp_config_init(&cfg);
    cfg.name = "zpz";
    /* A block's buffers are got on one thread and put on another, a few
     * thousand times a second: thread caches would save nothing, and each
     * could hold up to cache_depth idle blocks (16 MiB at the default 32
     * for 512 KiB blocks), which bounded memory cannot afford. */
    cfg.cache_depth = 2;
    int rc = zp_pool_create(&cfg, &pool);
    if (rc < 0) {
        fprintf(stderr, "zpz: cannot create the buffer pool: %s\n", zp_strerror(rc));
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);

    int status = 0;
    if (optind == argc)
        status = do_stdio();
    for (int i = optind; i < argc; i++)
        status |= do_file(argv[i]);
    zp_pool_destroy(pool);
    return status;
}
