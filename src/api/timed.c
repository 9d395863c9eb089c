/*
 * timed.c — zp_get_timed: a get that waits for room in the pool's budget.
 *
 * The waiter is a value on this stack, queued in the budget's FIFO queue
 * and passed down the get as an argument (so only the head may take new
 * bytes); it sleeps on its own condition variable until a return of memory
 * wakes it (core/depot.c gives buffers back, policy/budget.c gives bytes
 * back: both wake through zp__budget_wake) or its deadline passes.
 */
#include "api/api.h"
#include "core/cache.h"
#include "core/thread.h"
#include "os/os.h"

#include <errno.h>

static void *fail(zp_budget *b, int err)
{
    if (b != NULL && (err == ZP__EBUDGET || err == -ETIMEDOUT))
        zp__budget_count_failure(b);
    errno = -zp__public_err(err);
    return NULL;
}

void *zp_get_timed(zp_pool *p, size_t size, int timeout_ms)
{
    const void *caller = ZP_CALLER();
    if (p == NULL)
        return fail(NULL, zp__null_arg("zp_get_timed", "pool"));
    if (timeout_ms < -1)
        return fail(NULL, zp__error(-EINVAL, "zp_get_timed: timeout_ms %d is below -1",
                                    timeout_ms));
    zp_budget *b = p->budget;
    zp__cache *c = zp__thread_cache(p);
    int err;
    void *buf = zp__cache_get_slow(p, c, size, caller, NULL, &err);
    if (buf != NULL)
        return buf;
    if (b == NULL || err != ZP__EBUDGET)
        return fail(b, err);
    if (timeout_ms == 0 || zp__request_bytes(p, size) > zp__budget_max(b))
        return fail(b, ZP__EBUDGET);
    zp__budget_count_wait(b);

    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : zp__os_now_ns() + (uint64_t)timeout_ms * 1000000u;
    zp__cond_waiter cw;
    zp__waiter *w = &cw.w;
    if (zp__waiter_init_cond(&cw, p, zp__waiter_class(p, size)) != 0)
        return fail(b, zp__error(-ENOMEM,
                                 "zp_get_timed: cannot initialise a condition variable"));
    zp__waitq *q = zp__budget_waitq(b);
    zp__waitq_lock(q);
    zp__waitq_push(q, w);
    err = -ETIMEDOUT;
    for (;;) {
        if (atomic_load_explicit(&w->granted, memory_order_relaxed) != NULL)
            break; /* a put handed us a buffer (queue lock held: no race) */
        if (zp__waitq_is_head(q, w)) {
            w->woken = false;
            zp__waitq_unlock(q);
            buf = zp__cache_get_slow(p, c, size, caller, w, &err);
            zp__waitq_lock(q);
            if (buf != NULL || err != ZP__EBUDGET)
                break;
            if (w->woken)
                continue; /* room was made while we tried */
        }
        if (!zp__waiter_sleep(q, &cw, deadline)) {
            err = -ETIMEDOUT;
            break;
        }
    }
    zp__waitq_remove(q, w); /* wakes the next one so it tries at once */
    zp__waitq_unlock(q);
    zp__waiter_fini_cond(&cw);
    /* a buffer handed over while we also got one (or failed) */
    if ((buf = zp__cache_keep_one(p, c, w, buf, caller)) != NULL)
        return buf;
    if (err == -ETIMEDOUT)
        zp__error(-ETIMEDOUT, "zp_get_timed: no room in the budget within %d ms", timeout_ms);
    return fail(b, err);
}
