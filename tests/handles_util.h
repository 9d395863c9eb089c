/*
 * Small helpers local to the cache-handle and defect-regression tests
 * (tests/test_handle_*.c, tests/test_regress_*.c): a monotonic clock, a
 * watchdog that turns a hang into a failure, stderr capture, and a one-slot
 * mailbox for handing pointers between threads. Meant to be folded into the
 * shared test harness; nothing here uses cmocka, so it is safe on workers.
 */
#ifndef ZP_HANDLES_UTIL_H
#define ZP_HANDLES_UTIL_H

#include "test_util.h"

#include <ctype.h>
#include <signal.h>
#include <time.h>

/* ------------------------------------------------------------------ time */

static inline uint64_t hu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double hu_ms_since(uint64_t start_ns)
{
    return (double)(hu_now_ns() - start_ns) / 1e6;
}

static inline void hu_sleep_ms(unsigned ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* -------------------------------------------------------------- watchdog */

static const char *volatile hu_watchdog_what = "";

static void hu_watchdog_fire(int sig)
{
    static const char head[] = "FAIL: watchdog: hung in ";
    const char *what = hu_watchdog_what;
    (void)sig;
    if (write(2, head, sizeof(head) - 1) < 0 ||
        write(2, what, strlen(what)) < 0 || write(2, "\n", 1) < 0)
        _exit(1);
    _exit(1);
}

/* Arms a watchdog: if it is not disarmed within seconds, the process
 * prints what hung and exits 1 (a failure, not a ctest timeout). */
static inline void hu_watchdog_arm(unsigned seconds, const char *what)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = hu_watchdog_fire;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    hu_watchdog_what = what;
    alarm(seconds);
}

static inline void hu_watchdog_disarm(void)
{
    alarm(0);
}

/* --------------------------------------------------------- stderr capture */

typedef struct hu_capture {
    FILE *file;
    int saved;
} hu_capture;

/* Redirects fd 2 to a temporary file; 0 or -1. */
static inline int hu_capture_begin(hu_capture *c)
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

/* Restores fd 2; returns what was written meanwhile (malloc'd, never
 * NULL unless out of memory). */
static inline char *hu_capture_end(hu_capture *c)
{
    long n;
    char *text;
    fflush(stderr);
    if (c->saved >= 0) {
        dup2(c->saved, 2);
        close(c->saved);
    }
    n = (long)lseek(fileno(c->file), 0, SEEK_END);
    if (n < 0)
        n = 0;
    text = (char *)calloc(1, (size_t)n + 1);
    if (text != NULL && n > 0) {
        if (lseek(fileno(c->file), 0, SEEK_SET) != 0 ||
            read(fileno(c->file), text, (size_t)n) != n)
            text[0] = 0;
    }
    fclose(c->file);
    return text;
}

/* 1 if text contains word, ignoring case. */
static inline int hu_contains_nocase(const char *text, const char *word)
{
    size_t n = strlen(word), i, j;
    if (text == NULL)
        return 0;
    for (i = 0; text[i]; i++) {
        for (j = 0; j < n && text[i + j]; j++)
            if (tolower((unsigned char)text[i + j]) !=
                tolower((unsigned char)word[j]))
                break;
        if (j == n)
            return 1;
    }
    return 0;
}

/* ------------------------------------------------- one-slot mailbox */

/* Hands one pointer at a time from a producer to a consumer. The mutex
 * gives the consumer a happens-before edge with everything the producer
 * did before hu_mail_send (what a handle or buffer hand-over needs). */
typedef struct hu_mailbox {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    void *item;
    int full;
} hu_mailbox;

static inline void hu_mail_init(hu_mailbox *m)
{
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    m->item = NULL;
    m->full = 0;
}

static inline void hu_mail_fini(hu_mailbox *m)
{
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
}

static inline void hu_mail_send(hu_mailbox *m, void *item)
{
    pthread_mutex_lock(&m->lock);
    while (m->full)
        pthread_cond_wait(&m->cond, &m->lock);
    m->item = item;
    m->full = 1;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static inline void *hu_mail_recv(hu_mailbox *m)
{
    void *item;
    pthread_mutex_lock(&m->lock);
    while (!m->full)
        pthread_cond_wait(&m->cond, &m->lock);
    item = m->item;
    m->full = 0;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    return item;
}

/* ----------------------------------------------------------- light marks */

/* A cheap pattern for stress loops: the first and last 64 bytes and 16
 * bytes at every 64 KiB of a buffer. Enough to catch a buffer handed out
 * twice or overlapping another, at a fraction of a full fill (and without
 * faulting in every page of a fresh oversize mapping). */
static inline void hu_mark(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = (unsigned char *)p;
    size_t off;
    if (n <= 128) {
        zpt_fill(b, n, seed);
        return;
    }
    zpt_fill(b, 64, seed);
    zpt_fill(b + n - 64, 64, ~seed);
    for (off = 65536; off + 16 <= n - 64; off += 65536)
        zpt_fill(b + off, 16, seed ^ off);
}

/* 1 if the marks of hu_mark(p, n, seed) are intact. */
static inline int hu_marked(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t off;
    if (n <= 128)
        return zpt_check(b, n, seed) == SIZE_MAX;
    if (zpt_check(b, 64, seed) != SIZE_MAX ||
        zpt_check(b + n - 64, 64, ~seed) != SIZE_MAX)
        return 0;
    for (off = 65536; off + 16 <= n - 64; off += 65536)
        if (zpt_check(b + off, 16, seed ^ off) != SIZE_MAX)
            return 0;
    return 1;
}

/* ------------------------------------------------------------- stats */

/* Index of the class of size in zp_stats.classes (size <= max_class). */
static inline unsigned hu_class_index(size_t min_class, size_t size)
{
    unsigned i = 0;
    while ((min_class << i) < size)
        i++;
    return i;
}

/* Prints the lines of both snapshots that differ in a counter a handle
 * must not lose; returns the number of differences. */
static inline int hu_counters_differ(const zp_stats *a, const zp_stats *b)
{
    int d = 0;
#define HU_CMP(f)                                                           \
    if (a->f != b->f) {                                                     \
        fprintf(stderr, "# %s: %llu then %llu\n", #f,                       \
                (unsigned long long)a->f, (unsigned long long)b->f);        \
        d++;                                                                \
    }
    HU_CMP(gets)
    HU_CMP(puts)
    HU_CMP(cache_hits)
    HU_CMP(depot_hits)
    HU_CMP(allocations)
    HU_CMP(oversize)
    HU_CMP(discards)
    HU_CMP(misuse)
#undef HU_CMP
    return d;
}

#endif /* ZP_HANDLES_UTIL_H */
