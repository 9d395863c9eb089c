/*
 * The harness's general part: running and skipping cases, the build and
 * the environment, numbers and fill patterns, time, threads, child
 * processes and stderr capture (zp_test.h).
 */
#include "zp_test.h"

#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#if defined(ZPT_ASAN)
#include <sanitizer/asan_interface.h>
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

/* ------------------------------------------------- running and skipping */

/* Cases skipped through zpt_skip: main thread only, like cmocka. */
static size_t skipped;

int zpt_run(const struct CMUnitTest *tests, size_t n)
{
    int failed;
    skipped = 0;
    failed = _cmocka_run_group_tests(program_invocation_short_name, tests, n, NULL, NULL);
    if (failed == 0 && n > 0 && skipped == n) {
        fprintf(stderr, "# every case skipped itself: reporting the program as skipped\n");
        return ZPT_EXIT_SKIP;
    }
    return failed;
}

void zpt_skip_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    print_message("# skipped: ");
    va_start(ap, fmt);
    vprint_message(fmt, ap);
    va_end(ap);
    print_message("\n");
    skipped++;
    _skip(file, line);
    abort(); /* _skip jumps out of the case */
}

int zpt_skip_all(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "SKIP: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return ZPT_EXIT_SKIP;
}

void zpt_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint_error(fmt, ap);
    va_end(ap);
    print_error("\n");
    _fail(file, line);
    abort(); /* _fail jumps out of the case */
}

int zpt_stress_args(int argc, char **argv, double *seconds, int *threads,
                    uint64_t *seed, int min_threads, int max_threads)
{
    if (argc > 1)
        *seconds = atof(argv[1]);
    if (argc > 2)
        *threads = atoi(argv[2]);
    if (argc > 3)
        *seed = strtoull(argv[3], NULL, 0);
    if (!(*seconds > 0 && *seconds <= 3600) || *threads < min_threads ||
        *threads > max_threads) {
        fprintf(stderr, "usage: %s [seconds 0..3600] [threads %d..%d] [seed]\n", argv[0],
                min_threads, max_threads);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------ build and environment */

int zpt_env_debug(void)
{
    const char *e = getenv("ZEROPOOL_DEBUG");
    return e && *e ? atoi(e) : 0;
}

unsigned long zpt_scaled(unsigned long n)
{
    return zpt_env_debug() >= 2 ? (n / 100 ? n / 100 : 1) : n;
}

int zpt_under_valgrind(void)
{
    const char *pre = getenv("LD_PRELOAD");
    return pre && strstr(pre, "vgpreload") != NULL;
}

int zpt_asan_poisoned(const void *p, size_t n)
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

void zpt_asan_unpoison(const void *p, size_t n)
{
#if defined(ZPT_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
    (void)p;
    (void)n;
#endif
}

void zpt_asan_poison(const void *p, size_t n)
{
#if defined(ZPT_ASAN)
    ASAN_POISON_MEMORY_REGION(p, n);
#else
    (void)p;
    (void)n;
#endif
}

/* ------------------------------------------------ numbers and patterns */

size_t zpt_page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

size_t zpt_min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

int zpt_is_pow2(size_t x)
{
    return x && !(x & (x - 1));
}

size_t zpt_alignment_of(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (a == 0)
        return (size_t)1 << (sizeof(size_t) * 8 - 1);
    return (size_t)(a & (~a + 1));
}

size_t zpt_class_for(size_t x, size_t lo)
{
    size_t c = lo;
    while (c < x)
        c <<= 1;
    return c;
}

/* The 64-bit word at word index i of the pattern of seed. */
static uint64_t pattern_word(uint64_t seed, size_t i)
{
    uint64_t x = seed ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return x;
}

void zpt_fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = (unsigned char *)p;
    size_t words = n / 8, i;
    for (i = 0; i < words; i++) {
        uint64_t w = pattern_word(seed, i);
        memcpy(b + i * 8, &w, 8);
    }
    if (n % 8) {
        uint64_t w = pattern_word(seed, words);
        memcpy(b + words * 8, &w, n % 8);
    }
}

size_t zpt_check(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t words = n / 8, i, j;
    for (i = 0; i < words; i++) {
        uint64_t w = pattern_word(seed, i), got;
        memcpy(&got, b + i * 8, 8);
        if (got != w) {
            const unsigned char *e = (const unsigned char *)&w;
            for (j = 0; j < 8; j++)
                if (b[i * 8 + j] != e[j])
                    return i * 8 + j;
        }
    }
    if (n % 8) {
        uint64_t w = pattern_word(seed, words);
        const unsigned char *e = (const unsigned char *)&w;
        for (j = 0; j < n % 8; j++)
            if (b[words * 8 + j] != e[j])
                return words * 8 + j;
    }
    return SIZE_MAX;
}

#define SPARSE_ABOVE ZPT_MiB
#define SPARSE_EDGE ((size_t)64 * 1024)

static int use_sparse(size_t n)
{
#if defined(ZPT_SANITIZED)
    return n > SPARSE_ABOVE;
#else
    (void)n;
    return 0;
#endif
}

void zpt_fill_big(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = (unsigned char *)p;
    size_t off;
    if (!use_sparse(n)) {
        zpt_fill(p, n, seed);
        return;
    }
    zpt_fill(b, SPARSE_EDGE, seed);
    zpt_fill(b + n - SPARSE_EDGE, SPARSE_EDGE, ~seed);
    for (off = SPARSE_EDGE; off + 64 <= n - SPARSE_EDGE; off += 4096)
        zpt_fill(b + off, 64, seed ^ off);
}

size_t zpt_check_big(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t off, bad;
    if (!use_sparse(n))
        return zpt_check(p, n, seed);
    if ((bad = zpt_check(b, SPARSE_EDGE, seed)) != SIZE_MAX)
        return bad;
    if ((bad = zpt_check(b + n - SPARSE_EDGE, SPARSE_EDGE, ~seed)) != SIZE_MAX)
        return n - SPARSE_EDGE + bad;
    for (off = SPARSE_EDGE; off + 64 <= n - SPARSE_EDGE; off += 4096)
        if ((bad = zpt_check(b + off, 64, seed ^ off)) != SIZE_MAX)
            return off + bad;
    return SIZE_MAX;
}

int zpt_all_bytes(const void *p, size_t n, unsigned char v)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++)
        if (b[i] != v)
            return 0;
    return 1;
}

int zpt_all_zero(const void *p, size_t n)
{
    return zpt_all_bytes(p, n, 0);
}

int zpt_mentions_ptr(const char *msg, const void *p)
{
    char hex[32], low[1024];
    size_t i;
    if (!msg)
        return 0;
    snprintf(hex, sizeof hex, "%llx", (unsigned long long)(uintptr_t)p);
    for (i = 0; msg[i] && i < sizeof(low) - 1; i++)
        low[i] = (char)((msg[i] >= 'A' && msg[i] <= 'F') ? msg[i] - 'A' + 'a' : msg[i]);
    low[i] = 0;
    return strstr(low, hex) != NULL;
}

int zpt_contains_nocase(const char *text, const char *word)
{
    size_t n = strlen(word), i, j;
    if (text == NULL)
        return 0;
    for (i = 0; text[i]; i++) {
        for (j = 0; j < n && text[i + j]; j++)
            if (tolower((unsigned char)text[i + j]) != tolower((unsigned char)word[j]))
                break;
        if (j == n)
            return 1;
    }
    return n == 0;
}

/* Where the light marks lie: the edges, and MARK_SPOT bytes every
 * MARK_STEP in between. */
#define MARK_EDGE 64
#define MARK_STEP ((size_t)64 * 1024)
#define MARK_SPOT 16

void zpt_mark(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = (unsigned char *)p;
    size_t off;
    if (n <= 2 * MARK_EDGE) {
        zpt_fill(b, n, seed);
        return;
    }
    zpt_fill(b, MARK_EDGE, seed);
    zpt_fill(b + n - MARK_EDGE, MARK_EDGE, ~seed);
    for (off = MARK_STEP; off + MARK_SPOT <= n - MARK_EDGE; off += MARK_STEP)
        zpt_fill(b + off, MARK_SPOT, seed ^ off);
}

int zpt_marked(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t off;
    if (n <= 2 * MARK_EDGE)
        return zpt_check(b, n, seed) == SIZE_MAX;
    if (zpt_check(b, MARK_EDGE, seed) != SIZE_MAX ||
        zpt_check(b + n - MARK_EDGE, MARK_EDGE, ~seed) != SIZE_MAX)
        return 0;
    for (off = MARK_STEP; off + MARK_SPOT <= n - MARK_EDGE; off += MARK_STEP)
        if (zpt_check(b + off, MARK_SPOT, seed ^ off) != SIZE_MAX)
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- time */

uint64_t zpt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double zpt_ms_since(uint64_t start_ns)
{
    return (double)(zpt_now_ns() - start_ns) / 1e6;
}

void zpt_sleep_ms(unsigned ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

double zpt_mib(uint64_t bytes)
{
    return (double)bytes / (double)ZPT_MiB;
}

/* ------------------------------------------------------------- threads */

void zpt_threads_start_at(const char *file, int line, pthread_t *t, int n,
                          void *(*fn)(void *), void *args, size_t stride)
{
    int i, rc;
    for (i = 0; i < n; i++) {
        void *arg = args ? (void *)((char *)args + (size_t)i * stride)
                         : (void *)(intptr_t)i;
        if ((rc = pthread_create(&t[i], NULL, fn, arg)) != 0)
            zpt_fail_at(file, line, "pthread_create of thread %d of %d: %s", i, n,
                        strerror(rc));
    }
}

void zpt_threads_join_at(const char *file, int line, pthread_t *t, int n)
{
    int i, rc;
    for (i = 0; i < n; i++)
        if ((rc = pthread_join(t[i], NULL)) != 0)
            zpt_fail_at(file, line, "pthread_join of thread %d of %d: %s", i, n,
                        strerror(rc));
}

int zpt_wait_count(atomic_int *counter, int n, unsigned timeout_ms)
{
    uint64_t start = zpt_now_ns();
    while (atomic_load(counter) < n) {
        if (zpt_ms_since(start) > timeout_ms)
            return 0;
        zpt_sleep_ms(1);
    }
    return 1;
}

/* What the armed watchdog guards (read by its signal handler). */
static const char *volatile watchdog_what = "";

/* SIGALRM: async-signal-safe calls only. */
static void watchdog_fire(int sig)
{
    static const char head[] = "FAIL: watchdog: ";
    const char *what = watchdog_what;
    (void)sig;
    if (write(2, head, sizeof(head) - 1) >= 0 && write(2, what, strlen(what)) >= 0)
        (void)!write(2, "\n", 1);
    _exit(ZPT_EXIT_FAIL);
}

void zpt_watchdog(unsigned seconds, const char *what)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = watchdog_fire;
    sigemptyset(&sa.sa_mask);
    watchdog_what = what ? what : "";
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds);
}

void zpt_watchdog_off(void)
{
    alarm(0);
}

void zpt_mail_init(zpt_mailbox *m)
{
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    m->item = NULL;
    m->full = 0;
}

void zpt_mail_fini(zpt_mailbox *m)
{
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
}

void zpt_mail_send(zpt_mailbox *m, void *item)
{
    pthread_mutex_lock(&m->lock);
    while (m->full)
        pthread_cond_wait(&m->cond, &m->lock);
    m->item = item;
    m->full = 1;
    pthread_cond_broadcast(&m->cond); /* one slot, two waiting sides */
    pthread_mutex_unlock(&m->lock);
}

void *zpt_mail_recv(zpt_mailbox *m)
{
    void *item;
    pthread_mutex_lock(&m->lock);
    while (!m->full)
        pthread_cond_wait(&m->cond, &m->lock);
    item = m->item;
    m->item = NULL;
    m->full = 0;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    return item;
}

/* --------------------------------------------- child processes, stderr */

int zpt_run_child(int (*fn)(void *), void *arg, int timeout_s, zpt_child *c)
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
        if (waitpid(pid, &c->status, WNOHANG) == pid) {
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

int zpt_child_exited(const zpt_child *c, int code)
{
    return !c->timed_out && WIFEXITED(c->status) && WEXITSTATUS(c->status) == code;
}

void zpt_child_no_leak_check(void)
{
#if defined(HAVE_VALGRIND_H)
    VALGRIND_CLO_CHANGE("--leak-check=no");
#endif
}

int zpt_capture_begin(zpt_capture *c)
{
    fflush(stderr);
    c->saved = -1;
    c->file = tmpfile();
    if (c->file == NULL)
        return -1;
    c->saved = dup(2);
    if (c->saved < 0 || dup2(fileno(c->file), 2) < 0) {
        if (c->saved >= 0)
            close(c->saved);
        c->saved = -1;
        fclose(c->file);
        c->file = NULL;
        return -1;
    }
    return 0;
}

char *zpt_capture_end(zpt_capture *c)
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

/* ------------------------------------------------ spawned programs */

int zpt_spawn(zpt_proc *p, char *const argv[])
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    p->pid = pid;
    p->out = fdopen(fds[0], "r");
    return p->out == NULL ? -1 : 0;
}

int zpt_proc_line(zpt_proc *p, const char *prefix, char *line, size_t len, int timeout_s)
{
    uint64_t deadline = zpt_now_ns() + (uint64_t)timeout_s * 1000000000u;
    size_t plen = strlen(prefix);
    for (;;) {
        /* the stream may have a line buffered already: poll only when not */
        int ms = (int)((deadline - zpt_now_ns()) / 1000000u);
        if (zpt_now_ns() >= deadline)
            return 0;
        struct pollfd pfd = {.fd = fileno(p->out), .events = POLLIN};
        if (poll(&pfd, 1, ms) <= 0)
            continue;
        if (fgets(line, (int)len, p->out) == NULL)
            return 0;
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, prefix, plen) == 0)
            return 1;
        printf("  | %s\n", line); /* other output: shown, not matched */
    }
}

int zpt_proc_wait(zpt_proc *p, int timeout_s)
{
    int status = 0;
    uint64_t deadline = zpt_now_ns() + (uint64_t)timeout_s * 1000000000u;
    pid_t r;
    while ((r = waitpid(p->pid, &status, WNOHANG)) == 0 && zpt_now_ns() < deadline)
        zpt_sleep_ms(10);
    if (r == 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &status, 0);
        status = -1;
    }
    if (p->out != NULL)
        fclose(p->out);
    p->out = NULL;
    return status;
}

int zpt_line_value(const char *line, const char *key, unsigned long long *v)
{
    size_t klen = strlen(key);
    const char *at = line;
    while ((at = strstr(at, key)) != NULL) {
        int starts = at == line || at[-1] == ' ';
        if (starts && at[klen] == ' ') {
            char *end;
            unsigned long long x = strtoull(at + klen + 1, &end, 10);
            if (end != at + klen + 1) {
                *v = x;
                return 1;
            }
        }
        at += klen;
    }
    return 0;
}
