/*
 * Whole-process heap counting (zp_test_codec.h): this file DEFINES malloc,
 * calloc, realloc, reallocarray, free, posix_memalign, aligned_alloc,
 * memalign, valloc and pvalloc in the test executable, so every call in
 * the process lands here — the calls of shared libraries (libz.so,
 * libzstd.so, liblz4.so, libdeflate.so, libisal.so) and of libc itself
 * included, which the --wrap counting of zp_test_alloc.c cannot see. Each
 * counts (when armed) and forwards to the next definition in the lookup
 * order (dlsym RTLD_NEXT): libc's, or the sanitizer's or valgrind's
 * allocator, which stays in charge. While dlsym itself runs, requests are
 * served from a small static buffer (never freed).
 *
 * Linked only into the tests that use it (zp_test(... LIBS zp_test_codec)).
 */
#include "zp_test_codec.h"

#include <dlfcn.h>

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void *(*reallocarray_fn)(void *, size_t, size_t);
typedef void (*free_fn)(void *);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);
typedef void *(*memalign_fn)(size_t, size_t);
typedef void *(*valloc_fn)(size_t);

static malloc_fn next_malloc;
static calloc_fn next_calloc;
static realloc_fn next_realloc;
static reallocarray_fn next_reallocarray;
static free_fn next_free;
static posix_memalign_fn next_posix_memalign;
static memalign_fn next_aligned_alloc, next_memalign;
static valloc_fn next_valloc, next_pvalloc;

static atomic_int armed;
static atomic_ulong n_alloc, n_free;
static atomic_int resolved;
static __thread int resolving;

/* bootstrap memory while dlsym runs */
static _Alignas(64) unsigned char boot[16384];
static atomic_size_t boot_used;

static void *boot_alloc(size_t n)
{
    size_t need = (n + 63) & ~(size_t)63;
    size_t off = atomic_fetch_add(&boot_used, need);
    if (off + need > sizeof boot)
        return NULL;
    return boot + off;
}

static int is_boot(const void *p)
{
    return (const unsigned char *)p >= boot && (const unsigned char *)p < boot + sizeof boot;
}

/* dlsym's object pointer into a function pointer (ISO C has no cast) */
#define LOOKUP(var, name)                                                      \
    do {                                                                       \
        void *sym_ = dlsym(RTLD_NEXT, name);                                   \
        memcpy(&(var), &sym_, sizeof(var));                                    \
    } while (0)

static void resolve(void)
{
    if (atomic_load_explicit(&resolved, memory_order_acquire))
        return;
    resolving = 1;
    LOOKUP(next_malloc, "malloc");
    LOOKUP(next_calloc, "calloc");
    LOOKUP(next_realloc, "realloc");
    LOOKUP(next_reallocarray, "reallocarray");
    LOOKUP(next_free, "free");
    LOOKUP(next_posix_memalign, "posix_memalign");
    LOOKUP(next_aligned_alloc, "aligned_alloc");
    LOOKUP(next_memalign, "memalign");
    LOOKUP(next_valloc, "valloc");
    LOOKUP(next_pvalloc, "pvalloc");
    resolving = 0;
    atomic_store_explicit(&resolved, 1, memory_order_release);
}

static void count(atomic_ulong *c)
{
    if (atomic_load_explicit(&armed, memory_order_relaxed))
        atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void *malloc(size_t n)
{
    if (resolving)
        return boot_alloc(n);
    resolve();
    count(&n_alloc);
    return next_malloc(n);
}

void *calloc(size_t k, size_t n)
{
    if (resolving) {
        void *p = (n && k > SIZE_MAX / n) ? NULL : boot_alloc(k * n);
        if (p)
            memset(p, 0, k * n);
        return p;
    }
    resolve();
    count(&n_alloc);
    return next_calloc(k, n);
}

void *realloc(void *p, size_t n)
{
    resolve();
    count(&n_alloc);
    if (is_boot(p)) {
        void *q = next_malloc(n);
        if (q)
            memcpy(q, p, zpt_min_sz(n, sizeof boot - (size_t)((unsigned char *)p - boot)));
        return q;
    }
    return next_realloc(p, n);
}

void *reallocarray(void *p, size_t k, size_t n)
{
    resolve();
    count(&n_alloc);
    return next_reallocarray(p, k, n);
}

void free(void *p)
{
    if (p == NULL || is_boot(p))
        return;
    resolve();
    count(&n_free);
    next_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    resolve();
    count(&n_alloc);
    return next_posix_memalign(out, align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    resolve();
    count(&n_alloc);
    return next_aligned_alloc(align, n);
}

void *memalign(size_t align, size_t n)
{
    resolve();
    count(&n_alloc);
    return next_memalign(align, n);
}

void *valloc(size_t n)
{
    resolve();
    count(&n_alloc);
    return next_valloc(n);
}

void *pvalloc(size_t n)
{
    resolve();
    count(&n_alloc);
    return next_pvalloc(n);
}

void zpt_heap_count_start(void)
{
    resolve();
    atomic_store(&n_alloc, 0);
    atomic_store(&n_free, 0);
    atomic_store(&armed, 1);
}

zpt_heap_counts zpt_heap_count_stop(void)
{
    zpt_heap_counts c;
    atomic_store(&armed, 0);
    c.allocs = atomic_load(&n_alloc);
    c.frees = atomic_load(&n_free);
    return c;
}
