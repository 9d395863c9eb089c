/*
 * debug.c — the checks of debug levels 1 and 2 (see zeropool.h).
 *
 * Level 1 keeps one bit per buffer in the slab metadata, set while the
 * buffer is handed out: a put that finds it clear is a double put. Level 2
 * fills idle buffers with ZP_POISON_BYTE (poisoned for ASan too, so a stray
 * access faults at the instruction that made it), verifies the pattern when
 * the buffer is handed out again, and records which code got each buffer
 * so that destroy can list leaks by call site.
 */
#include "debug/debug.h"
#include "core/radix.h"
#include "os/os.h"

#include <stdio.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(a, n) ASAN_POISON_MEMORY_REGION((a), (n))
#define UNPOISON(a, n) ASAN_UNPOISON_MEMORY_REGION((a), (n))
#else
#define POISON(a, n) ((void)(a), (void)(n))
#define UNPOISON(a, n) ((void)(a), (void)(n))
#endif

size_t zp__debug_meta_words(const zp_pool *p, uint32_t nbufs)
{
    size_t words = 0;
    if (p->debug >= 1)
        words += (nbufs + 63) / 64;
    if (p->debug >= 2)
        words += nbufs; /* one uintptr_t per buffer */
    return words;
}

void zp__debug_poison(zp_pool *p, void *buf, unsigned cls)
{
    size_t size = zp__class_size(p, cls);
    memset(buf, ZP_POISON_BYTE, size);
    POISON(buf, size);
}

void zp__debug_on_carve(zp_pool *p, void *const *bufs, uint32_t n, unsigned cls)
{
    if (!zp__debug_poisons(p))
        return;
    for (uint32_t i = 0; i < n; i++)
        zp__debug_poison(p, bufs[i], cls);
}

void zp__debug_on_get(zp_pool *p, void *buf, unsigned cls, const void *caller)
{
    zp__slab *s = zp__slab_lookup(buf);
    size_t i = zp__slab_index(s, buf);
    /* relaxed: the bit only has to be exact for this buffer; the hand-off
     * of the buffer itself orders it with the next put */
    atomic_fetch_or_explicit(&s->state[i / 64], (uint64_t)1 << (i % 64), memory_order_relaxed);
    if (p->debug < 2)
        return;
    atomic_store_explicit(&s->getters[i], (uintptr_t)caller, memory_order_relaxed);
    if (!zp__debug_poisons(p))
        return;
    size_t size = zp__class_size(p, cls);
    UNPOISON(buf, size);
    const unsigned char *b = buf;
    for (size_t off = 0; off < size; off++) {
        if (b[off] != ZP_POISON_BYTE) {
            zp__misuse(p, ZP_MISUSE_CORRUPTED, buf,
                       "zeropool: zp_get(pool=%p) -> %p: use after put: byte %zu of this "
                       "%zu-byte buffer is 0x%02x, expected 0x%02x: it was written while idle",
                       (void *)p, buf, off, size, b[off], ZP_POISON_BYTE);
            return;
        }
    }
}

bool zp__debug_on_put(zp_pool *p, zp__slab *s, void *buf, const char *op)
{
    size_t i = zp__slab_index(s, buf);
    uint64_t bit = (uint64_t)1 << (i % 64);
    uint64_t old = atomic_fetch_and_explicit(&s->state[i / 64], ~bit, memory_order_relaxed);
    if ((old & bit) == 0) {
        zp__misuse(p, ZP_MISUSE_DOUBLE_PUT, buf,
                   "zeropool: %s(pool=%p, %p): double put: this %zu-byte buffer is not "
                   "handed out (already put and not got again since, or never got)",
                   op, (void *)p, buf, s->stride);
        return false;
    }
    return true;
}

void zp__debug_before_unmap(const zp__slab *s)
{
    /* the region may be mapped again for anyone: no stale ASan poison */
    UNPOISON((void *)s->base, s->size);
    (void)s;
}

static void print_site(const void *buf, size_t size, uintptr_t caller)
{
    zp__os_symbol sym;
    if (caller && zp__os_symbolize((const void *)caller, &sym)) {
        fprintf(stderr, "zeropool:     %p (%zu bytes) got at %p = %s+0x%lx", buf, size,
                (void *)caller, sym.file, (unsigned long)(caller - sym.base));
        if (sym.name)
            fprintf(stderr, " (in %s)", sym.name);
        fputc('\n', stderr);
    } else {
        fprintf(stderr, "zeropool:     %p (%zu bytes) got at %p\n", buf, size, (void *)caller);
    }
}

void zp__debug_leak_report(zp_pool *p)
{
    if (p->debug < 2)
        return;
    unsigned long listed = 0, more = 0;
    for (unsigned c = 0; c < p->nnodes * p->nclasses; c++) {
        for (zp__slab *s = p->depot[c].slabs; s; s = s->next) {
            for (uint32_t i = 0; i < s->nbufs; i++) {
                if (!(atomic_load_explicit(&s->state[i / 64], memory_order_relaxed) &
                      ((uint64_t)1 << (i % 64))))
                    continue;
                if (listed == 0)
                    fprintf(stderr, "zeropool: leaked buffers of pool %s (resolve the offsets "
                                    "with addr2line -e <file> <offset>):\n", p->name);
                if (listed < 1000) {
                    print_site((void *)(s->base + (uintptr_t)i * s->stride), s->stride,
                               atomic_load_explicit(&s->getters[i], memory_order_relaxed));
                    listed++;
                } else {
                    more++;
                }
            }
        }
    }
    if (more)
        fprintf(stderr, "zeropool:     ... and %lu more\n", more);
}
