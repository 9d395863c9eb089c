/*
 * Helpers of the robustness tests (test_debug*, test_fault*, test_churn*,
 * test_fork*, test_wipe*): stderr capture, running a function in a forked
 * child with a timeout, a misuse recorder that keeps every report, and
 * small pool/stat shortcuts. Builds on test_util.h; nothing here uses
 * cmocka, so worker threads and forked children may call all of it.
 */
#ifndef ZP_ROBUST_UTIL_H
#define ZP_ROBUST_UTIL_H

#include "test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#if defined(ZPT_ASAN)
#include <sanitizer/asan_interface.h>
#endif

/* ------------------------------------------------------- stderr capture */

typedef struct zpr_capture {
    FILE *file;
    int saved;
} zpr_capture;

/* Redirects fd 2 to a temporary file until zpr_capture_end. 0 or -1. */
static inline int zpr_capture_begin(zpr_capture *c)
{
    fflush(stderr);
    c->saved = -1;
    c->file = tmpfile();
    if (c->file == NULL)
        return -1;
    c->saved = dup(2);
    if (c->saved < 0 || dup2(fileno(c->file), 2) < 0) {
        fclose(c->file);
        return -1;
    }
    return 0;
}

/* Restores stderr; returns what was written (malloc'd, NUL-terminated; the
 * caller frees it), or NULL if it cannot be read back. */
static inline char *zpr_capture_end(zpr_capture *c)
{
    long n;
    char *text;
    if (c->file == NULL || c->saved < 0)
        return NULL;
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    n = (long)lseek(fileno(c->file), 0, SEEK_END);
    text = n >= 0 ? (char *)calloc(1, (size_t)n + 1) : NULL;
    if (text && n > 0 &&
        (lseek(fileno(c->file), 0, SEEK_SET) != 0 ||
         read(fileno(c->file), text, (size_t)n) != n)) {
        free(text);
        text = NULL;
    }
    fclose(c->file);
    return text;
}

/* --------------------------------------------------- child with timeout */

typedef struct zpr_child {
    int status;      /* as waitpid reports it */
    int timed_out;   /* the child was killed after the timeout */
    char out[16384]; /* its stdout and stderr, interleaved, truncated */
} zpr_child;

/* Runs fn(arg) in a forked child whose stdout and stderr go to c->out;
 * the child exits with fn's return value (or dies). After timeout_s
 * seconds it is killed with SIGKILL (c->timed_out set). Returns 0, or -1 if
 * fork or pipe failed. The child starts with SIGABRT at its default (a
 * cmocka parent traps it). */
static inline int zpr_run_child(int (*fn)(void *), void *arg, int timeout_s,
                                zpr_child *c)
{
    int fds[2];
    pid_t pid;
    size_t used = 0;
    struct timespec start, now;
    memset(c, 0, sizeof(*c));
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        signal(SIGSEGV, SIG_DFL);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        _exit(fn(arg));
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        ssize_t n;
        char sink[4096];
        int done;
        if (used < sizeof(c->out) - 1)
            n = read(fds[0], c->out + used, sizeof(c->out) - 1 - used);
        else
            n = read(fds[0], sink, sizeof(sink));
        if (n > 0) {
            if (used < sizeof(c->out) - 1)
                used += (size_t)n;
            continue;
        }
        if (n == 0)
            break; /* every writer closed: the child (and its children) ended */
        done = waitpid(pid, &c->status, WNOHANG) == pid;
        if (done) {
            pid = 0;
            /* drain what is left without blocking */
            while (used < sizeof(c->out) - 1 &&
                   (n = read(fds[0], c->out + used, sizeof(c->out) - 1 - used)) > 0)
                used += (size_t)n;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= timeout_s) {
            kill(pid, SIGKILL);
            c->timed_out = 1;
            waitpid(pid, &c->status, 0);
            pid = 0;
            break;
        }
        usleep(2000);
    }
    if (pid > 0)
        waitpid(pid, &c->status, 0);
    close(fds[0]);
    c->out[used] = 0;
    return 0;
}

/* 1 if the child exited normally with code. */
static inline int zpr_child_exited(const zpr_child *c, int code)
{
    return !c->timed_out && WIFEXITED(c->status) && WEXITSTATUS(c->status) == code;
}

/* ------------------------------------------- misuse recorder with history */

#define ZPR_MISUSE_MAX 64

typedef struct zpr_misuse_rec {
    int kind;
    const void *ptr;
    zp_pool *pool;
    char msg[512];
} zpr_misuse_rec;

typedef struct zpr_misuse_hist {
    pthread_mutex_t lock;
    int count;                          /* every report */
    zpr_misuse_rec rec[ZPR_MISUSE_MAX]; /* the first ZPR_MISUSE_MAX */
} zpr_misuse_hist;

static inline void zpr_misuse_hist_record(zp_pool *pool, int kind, const void *ptr,
                                          const char *msg, void *arg)
{
    zpr_misuse_hist *h = (zpr_misuse_hist *)arg;
    pthread_mutex_lock(&h->lock);
    if (h->count < ZPR_MISUSE_MAX) {
        zpr_misuse_rec *r = &h->rec[h->count];
        r->kind = kind;
        r->ptr = ptr;
        r->pool = pool;
        snprintf(r->msg, sizeof(r->msg), "%s", msg ? msg : "(null)");
    }
    h->count++;
    pthread_mutex_unlock(&h->lock);
}

static inline void zpr_misuse_hist_reset(zpr_misuse_hist *h)
{
    pthread_mutex_lock(&h->lock);
    h->count = 0;
    memset(h->rec, 0, sizeof(h->rec));
    pthread_mutex_unlock(&h->lock);
}

static inline int zpr_misuse_hist_count(zpr_misuse_hist *h)
{
    int n;
    pthread_mutex_lock(&h->lock);
    n = h->count;
    pthread_mutex_unlock(&h->lock);
    return n;
}

/* ------------------------------------------------------------ shortcuts */

/* A pool with cfg's defaults changed by the arguments (pv may be NULL). */
static inline zp_pool *zpr_pool(int debug, unsigned flags, zpt_provider *pv)
{
    zp_config cfg;
    zp_pool *pool = NULL;
    zp_config_init(&cfg);
    cfg.debug = debug;
    cfg.flags = flags;
    if (pv)
        zpt_provider_attach(&cfg, pv);
    if (zp_pool_create(&cfg, &pool) != 0)
        return NULL;
    return pool;
}

/* 1 if the pool's stats are internally consistent: sums add up, the gauges
 * fit in bytes_reserved, and (pv given) bytes_reserved is what the
 * provider has mapped for it. Prints the first broken rule on stderr. */
static inline int zpr_stats_consistent(zp_pool *pool, zpt_provider *pv,
                                       zp_stats *out)
{
    zp_stats s;
    if (zpt_stats(pool, &s) != 0) {
        fprintf(stderr, "# zp_stats_read failed\n");
        return 0;
    }
    if (out)
        *out = s;
    if (!zpt_stats_sum_ok(&s) || !zpt_stats_classes_ok(&s)) {
        zpt_stats_print("sums do not add up", &s);
        return 0;
    }
    if (s.bytes_outstanding + s.bytes_cached > s.bytes_reserved) {
        zpt_stats_print("outstanding + cached > reserved", &s);
        return 0;
    }
    if (s.peak_reserved < s.bytes_reserved) {
        zpt_stats_print("peak below reserved", &s);
        return 0;
    }
    if (pv && s.bytes_reserved != atomic_load(&pv->bytes_live)) {
        fprintf(stderr, "# provider has %zu bytes mapped\n",
                (size_t)atomic_load(&pv->bytes_live));
        zpt_stats_print("reserved differs from the provider", &s);
        return 0;
    }
    return 1;
}

/* 1 if the whole region [p, p + n) is ASan-poisoned (always 0 without
 * ASan). */
static inline int zpr_asan_poisoned(const void *p, size_t n)
{
#if defined(ZPT_ASAN)
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++)
        if (!__asan_address_is_poisoned(b + i))
            return 0;
    return 1;
#else
    (void)p;
    (void)n;
    return 0;
#endif
}

/* Makes [p, p + n) addressable again for a deliberate raw write (stands in
 * for a write ASan cannot see: a device, the kernel, uninstrumented code). */
static inline void zpr_asan_unpoison(const void *p, size_t n)
{
#if defined(ZPT_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
    (void)p;
    (void)n;
#endif
}

/* Valgrind detection without its headers: RUNNING_ON_VALGRIND is not
 * available everywhere, but valgrind always preloads its core. */
static inline int zpr_under_valgrind(void)
{
    const char *pre = getenv("LD_PRELOAD");
    return pre && strstr(pre, "vgpreload") != NULL;
}

#endif /* ZP_ROBUST_UTIL_H */
