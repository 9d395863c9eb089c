/*
 * The zeropool test harness: everything the test programs share, built once
 * as the static library zp_test and linked into every test (see
 * tests/CMakeLists.txt, which also lists every test).
 *
 * A test program includes only this header (it brings <cmocka.h>), owns one
 * concern, and exits ZPT_EXIT_PASS, ZPT_EXIT_FAIL or ZPT_EXIT_SKIP (77, which
 * ctest reports as skipped).
 *
 * Two kinds of helpers:
 *   - zpt_assert_* and the other helpers marked "asserts" fail the running
 *     cmocka case at the caller's file and line: main thread only;
 *   - everything else returns what it found and uses no cmocka, so worker
 *     threads and forked children may call it.
 *
 * A new test is tests/test_<concern>.c plus its one line in
 * tests/CMakeLists.txt (zp_test(test_<concern> quick 30)):
 *
 *     <its concern in a one-line comment>
 *     #include "zp_test.h"
 *
 *     static void test_round_trip(void **state)
 *     {
 *         zpt_provider *pv = zpt_provider_new();
 *         zp_pool *pool = ZPT_POOL(.max_class = ZPT_MiB, .pv = pv);
 *         zp_stats s;
 *         (void)state;
 *         zp_put(pool, zp_get(pool, 4096));
 *         s = zpt_read(pool);
 *         zpt_assert_stats_mapped(&s, atomic_load(&pv->bytes_live));
 *         zp_pool_destroy(pool);
 *         assert_int_equal(atomic_load(&pv->bytes_live), 0);
 *         zpt_provider_free(pv);
 *     }
 *
 *     int main(void)
 *     {
 *         const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trip)};
 *         return ZPT_RUN(tests);
 *     }
 *
 * Sections: running and skipping; build and environment; numbers and
 * patterns; time; threads; child processes and stderr; stats; pools;
 * object pools; misuse handlers; the test provider; budgets and waiters;
 * async requests; resident memory; allocator counting and failure
 * injection.
 */
#ifndef ZP_TEST_H
#define ZP_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "zeropool.h"

/* ------------------------------------------------- running and skipping */

#define ZPT_EXIT_PASS 0
#define ZPT_EXIT_FAIL 1
#define ZPT_EXIT_SKIP 77

/* Runs the cmocka cases of `tests` (an array); returns main's exit code:
 * 0 when all passed, ZPT_EXIT_SKIP when every case skipped itself with
 * zpt_skip, else the number of cases that failed. */
#define ZPT_RUN(tests) zpt_run((tests), sizeof(tests) / sizeof((tests)[0]))
int zpt_run(const struct CMUnitTest *tests, size_t n);

/* Skips the running case and says why (printf format). Main thread. */
#define zpt_skip(...) zpt_skip_at(__FILE__, __LINE__, __VA_ARGS__)
void zpt_skip_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* For a program that cannot run at all: prints why and returns
 * ZPT_EXIT_SKIP, for main to return. */
int zpt_skip_all(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Fails the running case at the caller's line (printf format). */
#define zpt_fail(...) zpt_fail_at(__FILE__, __LINE__, __VA_ARGS__)
void zpt_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* Reads a stress test's arguments: [seconds] [threads] [seed], each kept
 * at the default it holds when absent. 0, or -1 after printing the usage
 * when seconds is outside (0, 3600] or threads outside min .. max. */
int zpt_stress_args(int argc, char **argv, double *seconds, int *threads,
                    uint64_t *seed, int min_threads, int max_threads);

/* ------------------------------------------------ build and environment */

#define ZPT_KiB ((size_t)1024)
#define ZPT_MiB ((size_t)1024 * 1024)
#define ZPT_GiB ((size_t)1024 * 1024 * 1024)

/* Sanitizer builds (gcc defines the macros, clang has __has_feature). */
#if defined(__SANITIZE_ADDRESS__)
#define ZPT_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define ZPT_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(ZPT_ASAN)
#define ZPT_ASAN 1
#endif
#if __has_feature(thread_sanitizer) && !defined(ZPT_TSAN)
#define ZPT_TSAN 1
#endif
#endif
#if defined(ZPT_ASAN) || defined(ZPT_TSAN)
#define ZPT_SANITIZED 1
#endif

/* The debug level ZEROPOOL_DEBUG imposes on every pool (0 when unset). */
int zpt_env_debug(void);

/* n, or n / 100 (at least 1) under ZEROPOOL_DEBUG >= 2, whose fill and
 * scan of every buffer on every get and put makes long loops crawl. */
unsigned long zpt_scaled(unsigned long n);

/* 1 when running under valgrind (its core is preloaded). */
int zpt_under_valgrind(void);

/* 1 if [p, p + n) is all ASan-poisoned (always 0 without ASan). */
int zpt_asan_poisoned(const void *p, size_t n);

/* Makes [p, p + n) addressable for a deliberate raw access, as a device or
 * uninstrumented code would make (no-op without ASan). */
void zpt_asan_unpoison(const void *p, size_t n);

/* Poisons [p, p + n) again (no-op without ASan). */
void zpt_asan_poison(const void *p, size_t n);

/* ------------------------------------------------ numbers and patterns */

size_t zpt_page_size(void);
size_t zpt_min_sz(size_t a, size_t b);
int zpt_is_pow2(size_t x);

/* The largest power of two dividing the address (its alignment). */
size_t zpt_alignment_of(const void *p);

/* The smallest power of two >= x and >= lo. */
size_t zpt_class_for(size_t x, size_t lo);

/* splitmix64: deterministic randomness from a per-thread state. */
static inline uint64_t zpt_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Fills n bytes at p with the pattern of seed. */
void zpt_fill(void *p, size_t n, uint64_t seed);

/* SIZE_MAX if the n bytes at p hold the pattern of seed, else the offset of
 * the first byte that differs. */
size_t zpt_check(const void *p, size_t n, uint64_t seed);

/* Like zpt_fill / zpt_check, but above 1 MiB in sanitizer builds (where
 * every access is instrumented) only the first and last 64 KiB and 64 bytes
 * of every other page carry the pattern: still every page, at a fraction of
 * the cost. */
void zpt_fill_big(void *p, size_t n, uint64_t seed);
size_t zpt_check_big(const void *p, size_t n, uint64_t seed);

/* 1 if all n bytes at p are zero / equal v. */
int zpt_all_zero(const void *p, size_t n);
int zpt_all_bytes(const void *p, size_t n, unsigned char v);

/* 1 if msg names pointer p in hex (any case, with or without 0x). */
int zpt_mentions_ptr(const char *msg, const void *p);

/* 1 if text (NULL: no) contains word, ignoring ASCII case. */
int zpt_contains_nocase(const char *text, const char *word);

/* Light marks for loops that get and put many buffers of any size: the
 * pattern of seed on the first and last 64 bytes and on 16 bytes every
 * 64 KiB (all n bytes when n <= 128). They catch a buffer handed out twice
 * or overlapping another at a fraction of a full fill, and fault in no
 * more than a page per 64 KiB of a fresh mapping. zpt_marked: 1 if the
 * marks of zpt_mark(p, n, seed) are intact. */
void zpt_mark(void *p, size_t n, uint64_t seed);
int zpt_marked(const void *p, size_t n, uint64_t seed);

/* ---------------------------------------------------------------- time */

/* Monotonic nanoseconds (the clock of zp_get_timed's deadlines). */
uint64_t zpt_now_ns(void);
double zpt_ms_since(uint64_t start_ns);
void zpt_sleep_ms(unsigned ms);

/* Bytes as MiB, for messages. */
double zpt_mib(uint64_t bytes);

/* ------------------------------------------------------------- threads */

/* Starts n threads, thread i running fn((char *)args + i * stride), or
 * fn((void *)(intptr_t)i) when args is NULL. Asserts. */
#define zpt_threads_start(t, n, fn, args, stride)                             \
    zpt_threads_start_at(__FILE__, __LINE__, (t), (n), (fn), (args), (stride))
void zpt_threads_start_at(const char *file, int line, pthread_t *t, int n,
                          void *(*fn)(void *), void *args, size_t stride);

/* Joins n threads. Asserts. */
#define zpt_threads_join(t, n) zpt_threads_join_at(__FILE__, __LINE__, (t), (n))
void zpt_threads_join_at(const char *file, int line, pthread_t *t, int n);

/* Polls until *counter >= n or timeout_ms passed: 1 if it got there. */
int zpt_wait_count(atomic_int *counter, int n, unsigned timeout_ms);

/* A hang guard: unless zpt_watchdog_off is called within `seconds`, the
 * process prints "FAIL: watchdog: <what>" on stderr and exits
 * ZPT_EXIT_FAIL, a failure that says what hung instead of a ctest
 * timeout. The seconds are taken as given in every build. One guard at a
 * time (it owns SIGALRM and alarm()); what must stay valid until it is
 * off. Main thread. */
void zpt_watchdog(unsigned seconds, const char *what);
void zpt_watchdog_off(void);

/* A one-slot mailbox handing pointers from one thread to another: send
 * waits while the slot is full, recv while it is empty. Its mutex orders
 * everything the sender did before zpt_mail_send before what the receiver
 * does after zpt_mail_recv (what handing over a buffer or a cache handle
 * needs). Uses no cmocka: any thread. */
typedef struct zpt_mailbox {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    void *item;
    int full;
} zpt_mailbox;

void zpt_mail_init(zpt_mailbox *m);
void zpt_mail_fini(zpt_mailbox *m);
void zpt_mail_send(zpt_mailbox *m, void *item);
void *zpt_mail_recv(zpt_mailbox *m);

/* --------------------------------------------- child processes, stderr */

typedef struct zpt_child {
    int status;      /* as waitpid reports it */
    int timed_out;   /* killed after the timeout */
    char out[16384]; /* its stdout and stderr, interleaved, truncated */
} zpt_child;

/* Runs fn(arg) in a forked child that exits with fn's return value (or
 * dies), its stdout and stderr going to c->out; killed with SIGKILL after
 * timeout_s seconds. SIGABRT and SIGSEGV start at their defaults in the
 * child (cmocka traps them). 0, or -1 if fork or pipe failed. */
int zpt_run_child(int (*fn)(void *), void *arg, int timeout_s, zpt_child *c);

/* 1 if the child exited normally with code. */
int zpt_child_exited(const zpt_child *c, int code);

/* For a child forked while other threads ran (first thing in it): what
 * those threads held is lost to the child by design (the fork contract),
 * so under valgrind this turns off the leak check of the child process;
 * every other memcheck check stays on, and the parent's leak check too.
 * No-op elsewhere. */
void zpt_child_no_leak_check(void);

/* A program started with zpt_spawn: its pid and a stream on its stdout. */
typedef struct zpt_proc {
    pid_t pid;
    FILE *out; /* its stdout (stderr stays the test's) */
} zpt_proc;

/* Starts argv[0] (a path) with argv, its stdout piped to p->out. 0, or -1
 * with errno if pipe, fork or exec failed (exec failing: the child exits
 * 127). */
int zpt_spawn(zpt_proc *p, char *const argv[]);

/* Reads p's stdout until a line starting with prefix (at most timeout_s
 * seconds): copies that line (without its newline) into line and returns
 * 1, or 0 on EOF or timeout. */
int zpt_proc_line(zpt_proc *p, const char *prefix, char *line, size_t len,
                  int timeout_s);

/* Waits for p to exit, at most timeout_s seconds (then kills it with
 * SIGKILL and returns -1); closes p->out. Returns the status as waitpid
 * reports it. */
int zpt_proc_wait(zpt_proc *p, int timeout_s);

/* In a "key value key value ..." line, the number after the word key:
 * 1 with *v set, or 0 if the key is absent. */
int zpt_line_value(const char *line, const char *key, unsigned long long *v);

typedef struct zpt_capture {
    FILE *file;
    int saved;
} zpt_capture;

/* Sends fd 2 to a temporary file until zpt_capture_end: 0 or -1. */
int zpt_capture_begin(zpt_capture *c);

/* Restores stderr; returns what was written to it (malloc'd,
 * NUL-terminated, the caller frees), or NULL if it cannot be read back. */
char *zpt_capture_end(zpt_capture *c);

/* ---------------------------------------------------------------- stats */

/* Reads the pool's stats into *s: zp_stats_read's result. */
int zpt_stats(zp_pool *pool, zp_stats *s);

/* The pool's stats; aborts if the read itself fails (never expected). */
zp_stats zpt_read(zp_pool *pool);

/* bytes_reserved of a pool (UINT64_MAX if the read fails). */
uint64_t zpt_reserved(zp_pool *pool);

/* Index in zp_stats.classes of the class of exactly `size`, or -1. */
int zpt_class(const zp_stats *s, size_t size);

/* Index of the class serving `size` in a pool whose min_class is given. */
unsigned zpt_class_index(size_t min_class, size_t size);

/* 1 if gets == cache_hits + depot_hits + allocations + oversize. */
int zpt_stats_sum_ok(const zp_stats *s);

/* 1 if each class's gets is the sum of its parts, class sizes double, and
 * the classes plus oversize make the totals. */
int zpt_stats_classes_ok(const zp_stats *s);

/* The invariants of every snapshot, quiet pool or not: 1, or 0 with the
 * first one broken described in why. Sums per class and in total; the
 * classes make the totals; per class, the gauges are multiples of the size
 * and outstanding + cached <= reserved; pool-wide, outstanding + cached <=
 * reserved and the classes' reserved <= the pool's; discards <= oversize
 * and <= puts; peak_reserved >= bytes_reserved. */
int zpt_stats_ok(const zp_stats *s, char *why, size_t len);

/* 1 if no counter of b (read after a, no reset between) is below a's;
 * else 0 with the reason. */
int zpt_stats_monotonic(const zp_stats *a, const zp_stats *b, char *why, size_t len);

/* Compares the event counters of two snapshots (gets, puts, cache_hits,
 * depot_hits, allocations, oversize, discards, misuse): prints each one
 * that differs on stderr and returns how many differ (0: all equal). */
int zpt_stats_counters_differ(const zp_stats *a, const zp_stats *b);

/* Prints the totals / the totals and the non-empty classes on stderr. */
void zpt_stats_print(const char *what, const zp_stats *s);
void zpt_stats_print_classes(const char *what, const zp_stats *s);

/* Asserts zpt_stats_ok(s), printing the classes if not. */
#define zpt_assert_stats(s) zpt_assert_stats_at(__FILE__, __LINE__, (s), SIZE_MAX)
/* ... and that bytes_reserved is `mapped`, what the provider had mapped. */
#define zpt_assert_stats_mapped(s, mapped)                                    \
    zpt_assert_stats_at(__FILE__, __LINE__, (s), (mapped))
void zpt_assert_stats_at(const char *file, int line, const zp_stats *s, size_t mapped);

struct zpt_provider;

/* Reads the pool's stats (into *out if not NULL) and checks zpt_stats_ok
 * and, pv given, that bytes_reserved is what pv has mapped: 1, or 0 after
 * printing what is wrong on stderr. For worker threads and children. */
int zpt_stats_consistent(zp_pool *pool, struct zpt_provider *pv, zp_stats *out);

/* ---------------------------------------------------------------- pools */

/* ZPT_ZERO in a zpt_pool_opts field where 0 would mean "the default": an
 * explicit 0 (no thread cache, no byte cap, keep nothing idle). */
#define ZPT_ZERO SIZE_MAX
/* The value v as given, 0 included (for a variable that may be 0). */
#define ZPT_EXACT(v) ((v) ? (size_t)(v) : ZPT_ZERO)

/* How to build a pool. Fields left 0 keep zp_config_init's defaults. */
typedef struct zpt_pool_opts {
    int defaults;            /* leave 0: lets ZPT_POOL() take no option */
    const char *name;
    size_t min_class;
    size_t max_class;
    size_t cache_depth;      /* ZPT_ZERO: 0 */
    size_t cache_bytes;      /* ZPT_ZERO: 0 */
    unsigned flags;
    int debug;
    zp_budget *budget;
    size_t max_bytes;
    size_t max_cached_bytes; /* ZPT_ZERO: 0 */
    unsigned decay_ms;
    struct zpt_provider *pv;     /* the test provider, or NULL */
    const zp_provider *provider; /* another provider, or NULL: mmap */
    const zp_obj_type *type;     /* an object pool of this type
                                    (zp_objpool_create), or NULL */
} zpt_pool_opts;

/* A pool built from options given as designated initializers, e.g.
 * ZPT_POOL(.max_class = ZPT_MiB, .pv = pv), or an object pool with
 * ZPT_POOL(.type = &type, .pv = pv) (min_class and max_class, if given,
 * are passed on: an object pool ignores them); asserts that it was
 * created. */
#define ZPT_POOL(...)                                                          \
    zpt_pool_at(__FILE__, __LINE__, &(const zpt_pool_opts){0, __VA_ARGS__})
zp_pool *zpt_pool_at(const char *file, int line, const zpt_pool_opts *o);

/* The configuration ZPT_POOL would create the pool from, for a test that
 * calls zp_pool_create (or zp_objpool_create) itself (to check its result,
 * or off the main thread): ZPT_CONFIG(&cfg, .debug = 1). A .type is not
 * part of the configuration: it is ignored here. */
#define ZPT_CONFIG(cfg, ...) zpt_config((cfg), &(const zpt_pool_opts){0, __VA_ARGS__})
void zpt_config(zp_config *cfg, const zpt_pool_opts *o);

/* --------------------------------------------------------- object pools */

/* The stride objects of type are packed at: type->size rounded up to
 * type->align (0: alignof(max_align_t)). */
size_t zpt_obj_stride(const zp_obj_type *type);

/* zpt_stats_ok for an object pool of type: the invariants of every
 * snapshot, with one class of type->size whose byte gauges count whole
 * strides. 1, or 0 with the first one broken described in why. */
int zpt_obj_stats_ok(const zp_stats *s, const zp_obj_type *type, char *why, size_t len);

/* Asserts zpt_obj_stats_ok(s, type) and, unless mapped is SIZE_MAX, that
 * bytes_reserved is `mapped`, what the provider had mapped. */
#define zpt_assert_obj_stats(s, type, mapped)                                  \
    zpt_assert_obj_stats_at(__FILE__, __LINE__, (s), (type), (mapped))
void zpt_assert_obj_stats_at(const char *file, int line, const zp_stats *s,
                             const zp_obj_type *type, size_t mapped);

/* Which callbacks a counting type has (zpt_objtype_new). */
#define ZPT_OBJ_INIT 0x1u
#define ZPT_OBJ_RESET 0x2u
#define ZPT_OBJ_FINI 0x4u
#define ZPT_OBJ_ALL (ZPT_OBJ_INIT | ZPT_OBJ_RESET | ZPT_OBJ_FINI)

/* Bytes at the start of an object that a counting type's init stamps (all
 * of a smaller object): a test may use the rest freely. */
#define ZPT_OBJ_STAMP 8

/*
 * A counting object type: pass &ot->type to zp_objpool_create (or
 * .type = &ot->type to ZPT_POOL). Its callbacks count every call and check
 * each object's life:
 *   init  stamps the object's first ZPT_OBJ_STAMP bytes with a mark of
 *         this type and address ("constructed"); an init on an object
 *         already stamped is a second init of it (counted in `bad`);
 *   reset and fini (in a type with init) expect the stamp; fini then
 *         stamps the object "finalised";
 *   all three check the object's alignment.
 * Failure injection: init call k (1-based, all threads) fails with
 * fail_errno when fail_every divides k. Hooks, if set, run last (init's
 * only if it has not failed; a non-zero return from on_init fails the
 * init with that value). Counters are read with atomic_load, knobs set
 * with atomic_store, at any time; callbacks use no cmocka (any thread).
 */
typedef struct zpt_objtype {
    zp_obj_type type;          /* arg is this zpt_objtype */
    uint64_t mark;             /* the stamp of this type (per instance) */
    /* counts */
    atomic_ulong init_calls;   /* every call of init */
    atomic_ulong inits;        /* inits that succeeded */
    atomic_ulong init_fails;   /* inits that failed (injected or by on_init) */
    atomic_ulong resets;
    atomic_ulong finis;
    atomic_ulong bad;          /* broken life cycles or misaligned objects */
    char bad_first[160];       /* what the first of them was */
    atomic_int bad_claimed;
    /* failure injection */
    atomic_ulong fail_every;   /* 0: init never fails on purpose */
    atomic_int fail_errno;     /* what a failing init returns (default EMFILE) */
    /* hooks, and their argument */
    int (*on_init)(void *obj, struct zpt_objtype *ot);
    void (*on_reset)(void *obj, struct zpt_objtype *ot);
    void (*on_fini)(void *obj, struct zpt_objtype *ot);
    void *hook_arg;
} zpt_objtype;

/* A counting type of objects of size bytes aligned to align (0: the
 * default) with the callbacks in `which` (ZPT_OBJ_*). Never NULL (aborts
 * if out of memory). Free after the pools using it are destroyed. */
zpt_objtype *zpt_objtype_new(size_t size, size_t align, unsigned which);
void zpt_objtype_free(zpt_objtype *ot);

/* 1 if obj carries ot's "constructed" stamp (init ran, fini has not). */
int zpt_obj_constructed(const zpt_objtype *ot, const void *obj);

/* How many objects of ot are constructed right now in the regions pv has
 * mapped, read from their stamps (objects lie at whole strides from their
 * slab's base: metadata is out of line). For a quiet pool whose slabs all
 * come from pv (call it when no thread uses the pool): inits - finis. */
size_t zpt_obj_constructed_in(struct zpt_provider *pv, const zpt_objtype *ot);

/* Asserts that no callback of ot saw a broken life cycle (bad == 0). */
#define zpt_assert_objtype_clean(ot) zpt_assert_objtype_clean_at(__FILE__, __LINE__, (ot))
void zpt_assert_objtype_clean_at(const char *file, int line, zpt_objtype *ot);

/* Prints ot's counts on stderr (for messages). */
void zpt_objtype_print(const char *what, zpt_objtype *ot);

/* ------------------------------------------------------ misuse handlers */

#define ZPT_MISUSE_KEEP 64

typedef struct zpt_misuse_report {
    int kind;
    const void *ptr;
    zp_pool *pool;
    char msg[512];    /* "" when the handler got NULL */
    int msg_was_null;
} zpt_misuse_report;

/* Every report counted, the first ZPT_MISUSE_KEEP and the last kept.
 * Define one with ZPT_MISUSE_LOG_INIT. */
typedef struct zpt_misuse_log {
    pthread_mutex_t lock;
    int count;
    zpt_misuse_report last;
    zpt_misuse_report first[ZPT_MISUSE_KEEP];
} zpt_misuse_log;

#define ZPT_MISUSE_LOG_INIT {.lock = PTHREAD_MUTEX_INITIALIZER}

/* A misuse handler (zp_set_misuse_handler) recording into the
 * zpt_misuse_log passed as its argument. */
void zpt_misuse_record(zp_pool *pool, int kind, const void *ptr, const char *msg,
                       void *log);

/* A misuse handler that takes no lock (for fork tests: a parent thread may
 * hold a lock at fork time): counts into the atomic_int passed as its
 * argument, or ignores the report when that is NULL. */
void zpt_misuse_tally(zp_pool *pool, int kind, const void *ptr, const char *msg,
                      void *counter);

void zpt_misuse_reset(zpt_misuse_log *log);
int zpt_misuse_count(zpt_misuse_log *log);

/* The count, with the last report copied to *last (if any). */
int zpt_misuse_last(zpt_misuse_log *log, zpt_misuse_report *last);

/* Report i (0-based, i < ZPT_MISUSE_KEEP) since the last reset. */
zpt_misuse_report zpt_misuse_nth(zpt_misuse_log *log, int i);

/* "FOREIGN", "DOUBLE_PUT", "WRONG_POOL", "CORRUPTED", or "none" for a
 * kind that is none of the ZP_MISUSE_* values (a report never made). */
const char *zpt_misuse_kind_name(int kind);

/* The harness's own log, for tests that record through the pair below. */
extern zpt_misuse_log zpt_g_misuse;

/* A cmocka setup/teardown pair: zpt_misuse_setup resets zpt_g_misuse and
 * installs zpt_misuse_record over it; zpt_misuse_teardown restores the
 * default handler (zp_set_misuse_handler(NULL, NULL)). Both ignore state
 * and return 0. zpt_misuse_unit_test(f) is cmocka's unit test f run
 * between them. */
int zpt_misuse_setup(void **state);
int zpt_misuse_teardown(void **state);
#define zpt_misuse_unit_test(f)                                                \
    cmocka_unit_test_setup_teardown(f, zpt_misuse_setup, zpt_misuse_teardown)

/* Asserts that log holds exactly n reports since its last reset, the last
 * of `kind` about ptr in pool; what names the step in the failure. */
#define zpt_assert_misuse(log, n, kind, ptr, pool, what)                       \
    zpt_assert_misuse_at(__FILE__, __LINE__, (log), (n), (kind), (ptr), (pool), (what))
void zpt_assert_misuse_at(const char *file, int line, zpt_misuse_log *log, int n,
                          int kind, const void *ptr, zp_pool *pool, const char *what);

/* ---------------------------------------------------- the test provider */

#define ZPT_MAX_REGIONS 16384

typedef struct zpt_region {
    void *ptr;
    size_t size;
} zpt_region;

/*
 * The provider of the tests: maps with mmap (or from an arena), records
 * every live region, counts, fails or blocks on demand, and bounds what is
 * mapped. Create with zpt_provider_new, give to a pool with .pv = pv (or
 * zpt_provider_attach), free after the pool is destroyed. The counters are
 * read with atomic_load; the knobs are set with atomic_store, at any time.
 */
typedef struct zpt_provider {
    /* counts */
    atomic_size_t maps;       /* successful maps */
    atomic_size_t unmaps;     /* unmaps of a region it mapped */
    atomic_size_t map_calls;  /* every map call, failed or not */
    atomic_size_t injected;   /* map calls failed on purpose */
    atomic_size_t bad_unmaps; /* unmap of an unknown pointer or a wrong size */
    atomic_size_t bad_args;   /* map with size 0 or a bad alignment; or the
                                 region table was full */
    atomic_size_t bytes_live; /* mapped now */

    /* failure injection */
    atomic_int fail_all;      /* nonzero: every map fails */
    atomic_size_t fail_nth;   /* the nth map call (1-based) fails; 0: off */
    atomic_size_t fail_from;  /* every map call from the nth (1-based) on
                                 fails; 0: off. To let exactly k more maps
                                 through: map_calls + k + 1 */
    atomic_size_t block_nth;  /* the nth map call (1-based) waits until
                                 `release` is set (then maps, or fails if it
                                 is also fail_nth); 0: off */
    atomic_int blocked;       /* that call is waiting now, or has waited */
    atomic_int release;

    /* bound: every region is charged before it is mapped and discharged
     * after it is unmapped, an upper bound of what is mapped at any
     * instant; `over` counts charges that took it above `bound` */
    uint64_t bound;           /* 0: none (set before the pool maps) */
    atomic_uint_fast64_t charged;
    atomic_uint_fast64_t peak;
    atomic_int over;

    /* called with each region the pool unmaps, before it is unmapped */
    void (*before_unmap)(void *ptr, size_t size, void *arg);
    void *before_unmap_arg;

    /* private: the arena (zpt_provider_arena) and the region table */
    unsigned char *arena;
    size_t chunk, nchunks;
    unsigned char *chunk_used;
    pthread_mutex_t lock;
    size_t nlive;
    zpt_region live[ZPT_MAX_REGIONS];
} zpt_provider;

/* A provider (never NULL: aborts if out of memory). */
zpt_provider *zpt_provider_new(void);

/* Frees pv (NULL: nothing), and its arena. */
void zpt_provider_free(zpt_provider *pv);

/* Serves regions of exactly `chunk` bytes (alignment <= chunk) from an
 * arena of nchunks mapped up front, with no system call: slabs mapped and
 * unmapped in a loop then churn at memory speed. Other sizes are mmapped.
 * Call before the pool maps anything. Arena memory is not zeroed on reuse. */
void zpt_provider_arena(zpt_provider *pv, size_t chunk, size_t nchunks);

/* The zp_provider callbacks (ctx: the zpt_provider). */
void *zpt_provider_map(size_t size, size_t align, void *ctx);
void zpt_provider_unmap(void *ptr, size_t size, void *ctx);

/* Makes cfg use pv. */
void zpt_provider_attach(zp_config *cfg, zpt_provider *pv);

/* 1 if p lies in a region pv mapped and has not unmapped. */
int zpt_provider_owns(zpt_provider *pv, const void *p);

/* The live region holding p: 1 with *base and *size set, or 0. */
int zpt_provider_region(zpt_provider *pv, const void *p, unsigned char **base,
                        size_t *size);

/* Calls fn on every live region under the provider's lock until fn returns
 * nonzero; returns that value, or 0. fn must not call back into pv. */
int zpt_provider_each(zpt_provider *pv, int (*fn)(void *ptr, size_t size, void *arg),
                      void *arg);

/* mmap of size bytes aligned to align (the excess trimmed), or NULL. */
void *zpt_raw_map(size_t size, size_t align);

/* -------------------------------------------------- budgets and waiters */

/* A budget of max bytes. Asserts. */
#define zpt_budget_new(max) zpt_budget_new_at(__FILE__, __LINE__, (max))
zp_budget *zpt_budget_new_at(const char *file, int line, size_t max);

/* Reads the budget's stats into *s: zp_budget_read's result. */
int zpt_budget_stats(zp_budget *b, zp_budget_stats *s);

/* Gets waiting right now (0 if the read fails). */
uint64_t zpt_waiters(zp_budget *b);

/* Polls until the budget has at least n waiters or timeout_ms passed: 1 if
 * it got there. */
int zpt_wait_waiters(zp_budget *b, uint64_t n, unsigned timeout_ms);

/* Gets n 1 MiB buffers of pool into bufs. Asserts. */
#define zpt_get_mib(pool, bufs, n) zpt_get_mib_at(__FILE__, __LINE__, (pool), (bufs), (n))
void zpt_get_mib_at(const char *file, int line, zp_pool *pool, void **bufs, int n);

/* A thread body: gets up to four 1 MiB buffers of the pool `arg`, puts them
 * into its cache and exits with them there; returns how many it got, as an
 * intptr_t. */
void *zpt_get_put_exit(void *arg);

/* A thread blocked in zp_get_timed: what it got and when it returned. */
typedef struct zpt_waiter {
    pthread_t thread;
    zp_pool *pool;
    size_t size;
    int timeout_ms;
    int id;                                 /* the caller's tag */
    void (*on_return)(struct zpt_waiter *); /* run by the waiter's thread
                                               once zp_get_timed returned */
    void *buf;            /* zp_get_timed's result */
    int err;              /* its errno if NULL, else 0 */
    uint64_t returned_ns; /* when it returned (zpt_now_ns) */
    atomic_int started;   /* its thread is about to call zp_get_timed */
    atomic_int done;
} zpt_waiter;

/* Starts a thread calling zp_get_timed(pool, size, timeout_ms) into w;
 * on_return (or NULL) runs on that thread after the call. Asserts. Join
 * with pthread_join(w->thread, NULL). */
#define zpt_waiter_start(w, pool, size, timeout_ms)                           \
    zpt_waiter_start_at(__FILE__, __LINE__, (w), (pool), (size), (timeout_ms), NULL, 0)
#define zpt_waiter_start_then(w, pool, size, timeout_ms, on_return, id)       \
    zpt_waiter_start_at(__FILE__, __LINE__, (w), (pool), (size), (timeout_ms),  \
                        (on_return), (id))
void zpt_waiter_start_at(const char *file, int line, zpt_waiter *w, zp_pool *pool,
                         size_t size, int timeout_ms,
                         void (*on_return)(zpt_waiter *), int id);

/* Waits until w is (very likely) blocked in its wait. With a zp_budget
 * (budget not NULL): until the budget counts a waiter, at most 2 s, then
 * asserts it counts exactly one. Without (a pool's private budget, whose
 * waiters cannot be read): until w's thread has started, then 100 ms more
 * to reach the wait (not a pass criterion). */
void zpt_waiter_settle(zpt_waiter *w, zp_budget *budget);

/* A putter thread for cross-thread tests: the test gets batches of
 * ZPT_XFER_BATCH pointers from pool and hands them over one at a time
 * through a one-batch slot; the putter puts each into pool on its own
 * thread. */
#define ZPT_XFER_BATCH 32
typedef struct zpt_xfer {
    zp_pool *pool;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    void *slot[ZPT_XFER_BATCH];
    int full; /* slot holds a batch for the putter */
    int stop;
    unsigned long put_batches; /* batches the putter has wholly put */
} zpt_xfer;

/* Zeroes x and starts its putter on pool. Asserts. */
void zpt_xfer_start(zpt_xfer *x, zp_pool *pool);

/* Waits until the slot is empty, then hands the putter batch (copied). */
void zpt_xfer_hand(zpt_xfer *x, void *const *batch);

/* Waits until the putter has taken the last batch handed over (it may
 * still be putting it). */
void zpt_xfer_wait_taken(zpt_xfer *x);

/* Waits until the putter has wholly put n batches. */
void zpt_xfer_wait_put(zpt_xfer *x, unsigned long n);

/* Stops the putter once the slot is empty, joins it, and destroys x's lock
 * and condition variable. Asserts. */
void zpt_xfer_stop(zpt_xfer *x);

/* ------------------------------------------------------- async requests */

/* Whether fd is readable (POLLIN) within timeout_ms (0: right now, without
 * waiting): 1 or 0; -1 with errno if poll failed. */
int zpt_fd_readable(int fd, int timeout_ms);

/* The counter of an eventfd as the kernel shows it in /proc/self/fdinfo
 * (without reading the descriptor), or -1 if it cannot be read. */
long long zpt_eventfd_count(int fd);

/* One async request and what its callback saw. Pass it to zpt_get_async;
 * the callback (zpt_async_cb) records into it. Keep it unmoved while the
 * request is pending. */
typedef struct zpt_async {
    zp_request req;
    int id;               /* the caller's tag */
    int calls;            /* times the callback ran (must end 0 or 1) */
    void *buf;            /* what it got */
    int err;              /* the err it got */
    long seq;             /* the order callbacks ran in, process-wide, from 1 */
    pthread_t thread;     /* the thread it ran on */
    int in_dispatch;      /* it ran inside zpt_dispatch on that thread */
    void (*then)(struct zpt_async *); /* run by the callback after recording,
                                         or NULL */
    void *ctx;            /* for then */
} zpt_async;

/* The zp_ready_fn recording into the zpt_async passed as its arg. */
void zpt_async_cb(void *buf, int err, void *arg);

/* zp_get_async(pool, size, loop, &a->req, zpt_async_cb, a) after resetting
 * what a recorded (id, then and ctx are kept); errno as it left it. */
void *zpt_get_async(zp_pool *pool, size_t size, zp_loop *loop, zpt_async *a);

/* zp_loop_dispatch(loop), marking the calling thread as inside it for
 * zpt_async_cb. */
int zpt_dispatch(zp_loop *loop);

/* Dispatches until at least n callbacks ran in total or timeout_ms passed,
 * waiting on the loop's descriptor in between; returns the callbacks run. */
int zpt_dispatch_until(zp_loop *loop, int n, unsigned timeout_ms);

/* A loop. Asserts. */
#define zpt_loop_new() zpt_loop_new_at(__FILE__, __LINE__)
zp_loop *zpt_loop_new_at(const char *file, int line);

/* ------------------------------------------------------ resident memory */

/* Resident bytes of the whole process (/proc/self/statm), 0 if unknown. */
size_t zpt_rss_bytes(void);

/* Resident bytes of [p, p + n) by mincore, SIZE_MAX if mincore failed. */
size_t zpt_resident_in(const void *p, size_t n);

/* Writes every byte of a buffer so all its pages are resident. */
void zpt_touch(void *p, size_t n, unsigned char byte);

/* A /proc/self/status field in kB (e.g. "VmLck", "VmRSS"), -1 if absent or
 * unreadable. Uses no cmocka: any thread or child. */
long long zpt_status_kib(const char *field);

/* What /proc/self/smaps says of the mappings (VMAs) that intersect any of
 * the n ranges [ptrs[i], ptrs[i] + lens[i]), each mapping counted once:
 * their bytes, resident bytes, and bytes in huge pages (AnonHugePages plus
 * Private_Hugetlb and Shared_Hugetlb). Adjacent regions with the same
 * flags are one mapping, so a mapping may hold more than the ranges: a
 * test compares huge with bytes of mappings it knows it fully touched. */
typedef struct zpt_smaps {
    size_t vmas;
    size_t bytes;
    size_t rss;
    size_t huge;
} zpt_smaps;

/* 0 with *out filled, or -1 if smaps cannot be read. Any thread. */
int zpt_smaps_sum(void *const *ptrs, const size_t *lens, size_t n, zpt_smaps *out);

/* The transparent huge page mode ("always", "madvise", "never"; "" if the
 * kernel has none) and free reserved (hugetlb) huge pages of the default
 * size, or -1 if unknown. */
const char *zpt_thp_mode(void);
long zpt_hugetlb_free(void);

/* RSS must drop by at least this share of what the pool released. */
#ifdef ZPT_ASAN
/* Under ASan the shadow of an unmapped region (1 byte per 8) may stay
 * resident: measured here, 64 unmapped 1 MiB slabs left 8 MiB of shadow
 * (RSS dropped by 87% of what was released). */
#define ZPT_RSS_SHARE 0.75
#else
#define ZPT_RSS_SHARE 0.9
#endif

/* 1 if RSS dropped from peak to after by at least share x released. */
int zpt_rss_dropped(size_t peak, size_t after, uint64_t released, double share);

/* Asserts that RSS dropped by ZPT_RSS_SHARE of `released` from peak to
 * after; if before is 0 (/proc/self/statm unreadable) it says so and
 * checks nothing. Holds under the sanitizers too: ASan keeps the shadow of
 * released memory resident, but that shadow was resident at the peak as
 * well, so the drop from the peak is still what the pool released. */
#define zpt_check_rss(before, peak, after, released)                          \
    zpt_check_rss_at(__FILE__, __LINE__, (before), (peak), (after), (released))
void zpt_check_rss_at(const char *file, int line, size_t before, size_t peak,
                      size_t after, uint64_t released);

/* A burst of n 1 MiB buffers: each got into bufs[i] and written (byte
 * i + 1), then all put back. *before is the RSS before the first get,
 * *peak with all n held. Asserts. */
#define zpt_rss_burst(pool, bufs, n, before, peak)                            \
    zpt_rss_burst_at(__FILE__, __LINE__, (pool), (bufs), (n), (before), (peak))
void zpt_rss_burst_at(const char *file, int line, zp_pool *pool, void **bufs, int n,
                      size_t *before, size_t *peak);

/* ------------------------------------------------------------- io_uring */

/* Built only where liburing is (the zp_test_uring library, for the
 * libzeropool-uring tests; ZPT_WITH_URING is defined for them). */
#ifdef ZPT_WITH_URING
#include <liburing.h>

/* io_uring_queue_init(entries, ring, 0): 0, or the reason io_uring cannot
 * be used here written into why (EPERM / ENOSYS / EACCES: refused by the
 * kernel or a sandbox) and -errno. */
int zpt_uring_init(struct io_uring *ring, unsigned entries, char *why, size_t len);

/* Submits and waits for one completion, at most timeout_ms: copies it into
 * *out and marks it seen. 0, or -ETIME / the error of the wait. */
int zpt_uring_wait(struct io_uring *ring, struct io_uring_cqe *out, int timeout_ms);
#endif

/* ------------------------------- allocator counting and failure injection */

/*
 * Every test program is linked with -Wl,--wrap for the allocator (malloc,
 * calloc, realloc, reallocarray, free, aligned_alloc, posix_memalign,
 * memalign, valloc, pvalloc, strdup, strndup) and the mapping calls (mmap,
 * munmap, mremap, madvise, mprotect): the calls made by the code linked
 * into the program (the static library and the test) go through counting
 * wrappers that forward to the real functions, so the sanitizers' and
 * valgrind's allocators stay in charge. Calls libc makes internally, and
 * those of shared libraries (cmocka), are not seen.
 */
typedef struct zpt_alloc_counts {
    unsigned long allocs;   /* allocator calls that allocate */
    unsigned long frees;    /* free of a non-NULL pointer */
    unsigned long syscalls; /* mmap-family calls */
} zpt_alloc_counts;

/* Zeroes the counts and counts the calls of every thread from now on. */
void zpt_alloc_count_start(void);

/* Stops counting; returns the counts since zpt_alloc_count_start. */
zpt_alloc_counts zpt_alloc_count_stop(void);

/* Arms the calling thread: its allocator calls are numbered from 1 and the
 * nth (fail_at; 0: none) fails as if memory ran out (NULL or ENOMEM, errno
 * ENOMEM). Other threads are never refused. */
void zpt_alloc_arm(long fail_at);

/* Makes the next free of addr (by any thread) keep the block instead of
 * freeing it, and the first aligned_alloc after that of its size (within
 * 64 bytes) and alignment return it: a new object lands at the address of one just
 * freed, as glibc often but not always arranges by itself. */
void zpt_alloc_recycle(void *addr);

/* 1 while a zpt_alloc_recycle block is still awaited or kept. */
int zpt_alloc_recycle_pending(void);

/* Disarms the calling thread; returns how many allocator calls it made
 * while armed, and (if not NULL) how many were refused in *injected. */
long zpt_alloc_disarm(int *injected);

#endif /* ZP_TEST_H */
