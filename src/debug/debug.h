/*
 * debug.h — the checks of debug levels 1 and 2 (debug.c) and misuse
 * reporting (misuse.c).
 */
#ifndef ZP_DEBUG_H
#define ZP_DEBUG_H

#include "types.h"

/* Words of trailing metadata a slab of nbufs buffers needs at p's level. */
size_t zp__debug_meta_words(const zp_pool *p, uint32_t nbufs);
void zp__debug_on_carve(zp_pool *p, void *const *bufs, uint32_t n, unsigned cls);
void zp__debug_on_get(zp_pool *p, void *buf, unsigned cls, const void *caller);
/* Clears the buffer's handed-out bit; false: misuse reported (double put),
 * the put must be ignored. */
bool zp__debug_on_put(zp_pool *p, zp__slab *s, void *buf, const char *op);
/* debug >= 2: fills an idle buffer with the poison pattern. */
void zp__debug_poison(zp_pool *p, void *buf, unsigned cls);
void zp__debug_before_unmap(const zp__slab *s);
void zp__debug_leak_report(zp_pool *p);

/* Reports misuse to the handler (default: print and abort). */
void zp__misuse(zp_pool *p, int kind, const void *ptr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Reports why ptr (slab s, from zp__classify) is not a live buffer of p. */
void zp__report_bad_pointer(zp_pool *p, const zp__slab *s, const void *ptr, int why,
                            const char *op);
void zp__misuse_fork_child(void);

#endif /* ZP_DEBUG_H */
