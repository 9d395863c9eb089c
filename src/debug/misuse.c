/*
 * misuse.c — reporting misuse: the process-wide handler and the messages
 * that name the pointer, the pool and what was expected.
 */
#include "debug/debug.h"
#include "core/radix.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static zp_misuse_fn handler_fn;
static void *handler_arg;

void zp_set_misuse_handler(zp_misuse_fn fn, void *arg)
{
    pthread_mutex_lock(&handler_lock);
    handler_fn = fn;
    handler_arg = arg;
    pthread_mutex_unlock(&handler_lock);
}

void zp__misuse_fork_child(void)
{
    pthread_mutex_init(&handler_lock, NULL);
}

void zp__misuse(zp_pool *p, int kind, const void *ptr, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    atomic_fetch_add_explicit(&p->misuse, 1, memory_order_relaxed);

    pthread_mutex_lock(&handler_lock);
    zp_misuse_fn fn = handler_fn;
    void *arg = handler_arg;
    pthread_mutex_unlock(&handler_lock);
    if (fn != NULL) {
        fn(p, kind, ptr, msg, arg);
        return;
    }
    fprintf(stderr, "%s\n", msg);
    abort();
}

void zp__report_bad_pointer(zp_pool *p, const zp__slab *s, const void *ptr, int why,
                            const char *op)
{
    switch (why) {
    case ZP__PTR_OTHER_POOL:
        zp__misuse(p, p->debug >= 1 ? ZP_MISUSE_WRONG_POOL : ZP_MISUSE_FOREIGN, ptr,
                   "zeropool: %s(pool=%p, %p): wrong pool: it is a buffer of pool %s "
                   "(%p), not of this one (%s)",
                   op, (void *)p, ptr, s->pool->name, (void *)s->pool, p->name);
        break;
    case ZP__PTR_INTERIOR:
        zp__misuse(p, ZP_MISUSE_FOREIGN, ptr,
                   "zeropool: %s(pool=%p, %p): foreign pointer: it points %zu bytes into "
                   "the buffer at %p; expected the address zp_get returned",
                   op, (void *)p, ptr,
                   (size_t)(((uintptr_t)ptr - s->base) & (s->mask ? s->mask : SIZE_MAX)),
                   (void *)(s->base + (((uintptr_t)ptr - s->base) & ~s->mask) *
                                          (s->mask != 0)));
        break;
    case ZP__PTR_UNCARVED:
        zp__misuse(p, ZP_MISUSE_FOREIGN, ptr,
                   "zeropool: %s(pool=%p, %p): foreign pointer: it lies in this pool's "
                   "memory but was never handed out by zp_get",
                   op, (void *)p, ptr);
        break;
    case ZP__PTR_RELEASED:
        zp__misuse(p, ZP_MISUSE_DOUBLE_PUT, ptr,
                   "zeropool: %s(pool=%p, %p): double put: this oversize buffer was "
                   "already put (its region is unmapped)",
                   op, (void *)p, ptr);
        break;
    default:
        zp__misuse(p, ZP_MISUSE_FOREIGN, ptr,
                   "zeropool: %s(pool=%p, %p): foreign pointer: not a buffer of any "
                   "zeropool pool (stack, heap or another allocator?); expected a pointer "
                   "returned by zp_get on this pool",
                   op, (void *)p, ptr);
        break;
    }
}
