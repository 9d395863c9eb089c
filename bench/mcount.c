/*
 * libzpb_mcount.so — counts calls into the malloc family. zp_bench preloads
 * it (ahead of any other preloaded allocator) into its "counts" child only,
 * so timed runs never pay for it. Each wrapper bumps a counter and forwards
 * to the next definition (RTLD_NEXT): glibc, jemalloc, mimalloc or tcmalloc.
 * zpb_mcount_read() reports the totals.
 *
 * While dlsym itself is resolving the real functions, allocations are served
 * from a small static arena (and frees of arena memory are ignored).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

static uint64_t n_allocs, n_frees;

static void *(*real_malloc)(size_t);
static void (*real_free)(void *);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);

static _Alignas(64) char arena[1 << 16];
static size_t arena_used;
static int resolving;

static void *arena_alloc(size_t n)
{
    size_t at = (arena_used + 63) & ~(size_t)63;
    if (at + n > sizeof arena)
        return NULL;
    arena_used = at + n;
    return arena + at;
}

static int in_arena(const void *p)
{
    return (const char *)p >= arena && (const char *)p < arena + sizeof arena;
}

/* dlsym returns an object pointer; copy it into the function pointer. */
#define SYM(var, name)                                                         \
    do {                                                                       \
        void *sym_ = dlsym(RTLD_NEXT, name);                                   \
        memcpy(&(var), &sym_, sizeof(var));                                    \
    } while (0)

static void resolve(void)
{
    if (real_malloc || resolving)
        return;
    resolving = 1;
    SYM(real_free, "free");
    SYM(real_calloc, "calloc");
    SYM(real_realloc, "realloc");
    SYM(real_posix_memalign, "posix_memalign");
    SYM(real_aligned_alloc, "aligned_alloc");
    SYM(real_memalign, "memalign");
    SYM(real_malloc, "malloc"); /* last: it ends the bootstrap */
    resolving = 0;
}

static inline void count(uint64_t *c)
{
    __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

EXPORT void zpb_mcount_read(uint64_t *allocs, uint64_t *frees)
{
    *allocs = __atomic_load_n(&n_allocs, __ATOMIC_RELAXED);
    *frees = __atomic_load_n(&n_frees, __ATOMIC_RELAXED);
}

EXPORT void *malloc(size_t n)
{
    resolve();
    if (!real_malloc)
        return arena_alloc(n);
    count(&n_allocs);
    return real_malloc(n);
}

EXPORT void free(void *p)
{
    if (!p || in_arena(p))
        return;
    resolve();
    count(&n_frees);
    real_free(p);
}

EXPORT void *calloc(size_t a, size_t b)
{
    resolve();
    if (!real_calloc) {
        if (b && a > SIZE_MAX / b)
            return NULL;
        return arena_alloc(a * b); /* static arena is zeroed */
    }
    count(&n_allocs);
    return real_calloc(a, b);
}

EXPORT void *realloc(void *p, size_t n)
{
    resolve();
    if (!real_realloc || in_arena(p)) {
        void *q = real_malloc ? real_malloc(n) : arena_alloc(n);
        if (q && p) {
            size_t room = (size_t)(arena + sizeof arena - (char *)p);
            memcpy(q, p, n < room ? n : room);
        }
        return q;
    }
    count(&n_allocs);
    return real_realloc(p, n);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    resolve();
    count(&n_allocs);
    return real_posix_memalign(out, align, n);
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
    resolve();
    count(&n_allocs);
    return real_aligned_alloc(align, n);
}

EXPORT void *memalign(size_t align, size_t n)
{
    resolve();
    count(&n_allocs);
    return real_memalign(align, n);
}
