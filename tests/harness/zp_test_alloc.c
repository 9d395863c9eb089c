/*
 * Allocator counting and failure injection (zp_test.h). Every test program
 * is linked with -Wl,--wrap=<name> for each function below (the list is
 * ZPT_WRAPPED in tests/CMakeLists.txt: keep the two in step), so the calls
 * of the code linked into the program land in __wrap_<name>, which counts
 * (and may refuse) and forwards to __real_<name>: the real function, as the
 * process sees it. Under ASan, TSan or valgrind that is their allocator;
 * nothing here replaces it, so nothing fights it.
 *
 * The wrappers run before main and in every thread: they use nothing but
 * atomics and thread-local variables (static TLS in an executable: no
 * allocation on first access). The __wrap_ and __real_ names are the
 * linker's convention, the one place our code uses a leading "__".
 */
#include "zp_test.h"

#include <malloc.h>
#include <stdarg.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__real_reallocarray(void *p, size_t n, size_t size);
void __real_free(void *p);
void *__real_aligned_alloc(size_t align, size_t size);
int __real_posix_memalign(void **out, size_t align, size_t size);
void *__real_memalign(size_t align, size_t size);
void *__real_valloc(size_t size);
void *__real_pvalloc(size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
void *__real_mremap(void *old, size_t old_len, size_t new_len, int flags, ...);
int __real_madvise(void *addr, size_t len, int advice);
int __real_mprotect(void *addr, size_t len, int prot);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void *__wrap_reallocarray(void *p, size_t n, size_t size);
void __wrap_free(void *p);
void *__wrap_aligned_alloc(size_t align, size_t size);
int __wrap_posix_memalign(void **out, size_t align, size_t size);
void *__wrap_memalign(size_t align, size_t size);
void *__wrap_valloc(size_t size);
void *__wrap_pvalloc(size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);
void *__wrap_mremap(void *old, size_t old_len, size_t new_len, int flags, ...);
int __wrap_madvise(void *addr, size_t len, int advice);
int __wrap_mprotect(void *addr, size_t len, int prot);

/* Counting of every thread (zpt_alloc_count_*). Relaxed is enough: the
 * counts are read after the counted work was joined or synchronised. */
static atomic_int counting;
static atomic_ulong n_allocs, n_frees, n_syscalls;

/* The armed thread's numbering (zpt_alloc_arm). */
static __thread int t_armed;
static __thread long t_calls;
static __thread long t_fail_at;
static __thread int t_injected;

static void count(atomic_ulong *c)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* Counts an allocating call; 1 if it must fail (errno set to ENOMEM). */
static int refuse(void)
{
    count(&n_allocs);
    if (!t_armed)
        return 0;
    if (++t_calls == t_fail_at) {
        t_injected++;
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

void zpt_alloc_count_start(void)
{
    atomic_store(&n_allocs, 0);
    atomic_store(&n_frees, 0);
    atomic_store(&n_syscalls, 0);
    atomic_store(&counting, 1);
}

zpt_alloc_counts zpt_alloc_count_stop(void)
{
    zpt_alloc_counts c;
    atomic_store(&counting, 0);
    c.allocs = atomic_load(&n_allocs);
    c.frees = atomic_load(&n_frees);
    c.syscalls = atomic_load(&n_syscalls);
    return c;
}

void zpt_alloc_arm(long fail_at)
{
    t_calls = 0;
    t_fail_at = fail_at;
    t_injected = 0;
    t_armed = 1;
}

long zpt_alloc_disarm(int *injected)
{
    t_armed = 0;
    if (injected)
        *injected = t_injected;
    return t_calls;
}

/* Address recycling (zpt_alloc_recycle): the address whose next free is
 * kept, then the kept block and its usable size, waiting for the next
 * aligned_alloc it fits. */
static _Atomic(uintptr_t) recycle_target, recycle_held;
static atomic_size_t recycle_size;

void zpt_alloc_recycle(void *addr)
{
    atomic_store(&recycle_held, 0);
    atomic_store(&recycle_target, (uintptr_t)addr);
}

int zpt_alloc_recycle_pending(void)
{
    return atomic_load(&recycle_target) != 0 || atomic_load(&recycle_held) != 0;
}

/* ------------------------------------------------------------ allocator */

void *__wrap_malloc(size_t size)
{
    return refuse() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return refuse() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    return refuse() ? NULL : __real_realloc(p, size);
}

void *__wrap_reallocarray(void *p, size_t n, size_t size)
{
    return refuse() ? NULL : __real_reallocarray(p, n, size);
}

void __wrap_free(void *p)
{
    uintptr_t want = (uintptr_t)p;
    if (p)
        count(&n_frees);
    if (p && atomic_load_explicit(&recycle_target, memory_order_relaxed) == want &&
        atomic_compare_exchange_strong(&recycle_target, &want, 0)) {
        atomic_store(&recycle_size, malloc_usable_size(p));
        atomic_store(&recycle_held, (uintptr_t)p); /* kept, not freed */
        return;
    }
    __real_free(p);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    uintptr_t held = atomic_load_explicit(&recycle_held, memory_order_relaxed);
    size_t room = atomic_load(&recycle_size);
    /* only a request of about the freed block's size: not a smaller object */
    if (held && held % align == 0 && size <= room && room - size < 64 &&
        atomic_compare_exchange_strong(&recycle_held, &held, 0)) {
        count(&n_allocs);
        return (void *)held;
    }
    return refuse() ? NULL : __real_aligned_alloc(align, size);
}

int __wrap_posix_memalign(void **out, size_t align, size_t size)
{
    return refuse() ? ENOMEM : __real_posix_memalign(out, align, size);
}

void *__wrap_memalign(size_t align, size_t size)
{
    return refuse() ? NULL : __real_memalign(align, size);
}

void *__wrap_valloc(size_t size)
{
    return refuse() ? NULL : __real_valloc(size);
}

void *__wrap_pvalloc(size_t size)
{
    return refuse() ? NULL : __real_pvalloc(size);
}

char *__wrap_strdup(const char *s)
{
    return refuse() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return refuse() ? NULL : __real_strndup(s, n);
}

/* ------------------------------------------------------------- mappings */

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    count(&n_syscalls);
    return __real_mmap(addr, len, prot, flags, fd, off);
}

int __wrap_munmap(void *addr, size_t len)
{
    count(&n_syscalls);
    return __real_munmap(addr, len);
}

void *__wrap_mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    void *new_addr = NULL;
    count(&n_syscalls);
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
        return __real_mremap(old, old_len, new_len, flags, new_addr);
    }
    return __real_mremap(old, old_len, new_len, flags);
}

int __wrap_madvise(void *addr, size_t len, int advice)
{
    count(&n_syscalls);
    return __real_madvise(addr, len, advice);
}

int __wrap_mprotect(void *addr, size_t len, int prot)
{
    count(&n_syscalls);
    return __real_mprotect(addr, len, prot);
}
