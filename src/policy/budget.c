/*
 * budget.c — byte budgets shared by pools (see budget.h).
 *
 * A budget is a counter of reserved bytes with a hard maximum. Pools reserve
 * before mapping a region and release after unmapping it, so the sum of
 * their bytes_reserved never exceeds the maximum, even for an instant.
 *
 * Waiters (zp_get_timed) queue in arrival order in the budget's waiter
 * queue. Only the head may take new bytes while anyone waits (a plain get
 * that would need them fails with ENOBUFS instead), so a waiter for a big
 * buffer cannot be starved by a stream of small ones.
 */
#include "policy/budget.h"
#include "base.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct zp_budget {
    uint64_t max;
    _Atomic uint64_t reserved;
    _Atomic uint64_t peak;
    _Atomic uint64_t failed;
    _Atomic uint64_t waited;
    _Atomic uint32_t refs;       /* creator + pools */
    zp__waitq waiters;           /* its lock also guards gates */
    zp__gate *gates;
};

/* Queue lock held: while anyone waits, puts must reach the slow path. */
static void gates_set(void *arg, bool busy)
{
    zp_budget *b = arg;
    for (zp__gate *g = b->gates; g; g = g->next)
        /* relaxed: a put that still sees the gate open lands in a cache;
         * the waiter then retries on the next return or its own reclaim */
        atomic_store_explicit(g->word, busy ? 0 : g->open, memory_order_relaxed);
}

int zp_budget_create(size_t max_bytes, zp_budget **out)
{
    if (out == NULL)
        return zp__error(-EINVAL, "zp_budget_create: out is NULL");
    *out = NULL;
    if (max_bytes == 0)
        return zp__error(-EINVAL, "zp_budget_create: max_bytes is 0");
    zp_budget *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return zp__error(-ENOMEM, "zp_budget_create: out of memory");
    b->max = max_bytes;
    atomic_init(&b->refs, 1);
    if (zp__waitq_init(&b->waiters, gates_set, b) != 0) {
        free(b);
        return zp__error(-ENOMEM, "zp_budget_create: cannot initialise the lock");
    }
    *out = b;
    return 0;
}

static void budget_unref(zp_budget *b)
{
    /* acq_rel: the last owner sees every other owner's writes before free */
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        zp__waitq_fini(&b->waiters);
        free(b);
    }
}

void zp_budget_destroy(zp_budget *b)
{
    if (b != NULL)
        budget_unref(b);
}

int zp_budget_read(zp_budget *b, zp_budget_stats *out)
{
    if (b == NULL || out == NULL)
        return zp__error(-EINVAL, "zp_budget_read: %s is NULL", b ? "out" : "budget");
    size_t want = out->struct_size;
    if (want < offsetof(zp_budget_stats, waited_gets) + sizeof(uint64_t))
        return zp__error(-EINVAL, "zp_budget_read: struct_size %zu is too small", want);
    zp_budget_stats st;
    memset(&st, 0, sizeof st);
    st.max_bytes = b->max;
    st.bytes_reserved = atomic_load_explicit(&b->reserved, memory_order_relaxed);
    st.peak_reserved = atomic_load_explicit(&b->peak, memory_order_relaxed);
    st.failed_gets = atomic_load_explicit(&b->failed, memory_order_relaxed);
    st.waited_gets = atomic_load_explicit(&b->waited, memory_order_relaxed);
    st.waiters = atomic_load_explicit(&b->waiters.n, memory_order_relaxed);
    memcpy(out, &st, want < sizeof st ? want : sizeof st);
    out->struct_size = want;
    return 0;
}

void zp__budget_fork_child(zp_budget *b)
{
    zp__waitq_fork_child(&b->waiters); /* reopens the gates too */
}

size_t zp__budget_max(const zp_budget *b)
{
    return b ? b->max : SIZE_MAX;
}

void zp__budget_count_failure(zp_budget *b)
{
    atomic_fetch_add_explicit(&b->failed, 1, memory_order_relaxed);
}

void zp__budget_count_wait(zp_budget *b)
{
    atomic_fetch_add_explicit(&b->waited, 1, memory_order_relaxed);
}

bool zp__budget_has_waiters(const zp_budget *b)
{
    return zp__waitq_busy(&b->waiters);
}

zp__waitq *zp__budget_waitq(zp_budget *b)
{
    return &b->waiters;
}

bool zp__budget_reserve(zp_budget *b, size_t size, const zp__waiter *w)
{
    if (!zp__waitq_may_take(&b->waiters, w))
        return false; /* someone waits longer: do not overtake */
    uint64_t r = atomic_load_explicit(&b->reserved, memory_order_relaxed);
    do {
        if (size > b->max || r > b->max - size)
            return false;
        /* relaxed suffices: the counter itself is the only shared state;
         * the region is mapped after, by this thread */
    } while (!atomic_compare_exchange_weak_explicit(&b->reserved, &r, r + size,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed));
    uint64_t now = r + size, peak = atomic_load_explicit(&b->peak, memory_order_relaxed);
    while (now > peak && !atomic_compare_exchange_weak_explicit(
                             &b->peak, &peak, now, memory_order_relaxed, memory_order_relaxed))
        ;
    return true;
}

void zp__budget_release(zp_budget *b, size_t size)
{
    atomic_fetch_sub_explicit(&b->reserved, size, memory_order_relaxed);
    zp__budget_wake(b);
}

void zp__budget_wake(zp_budget *b)
{
    zp__waitq_wake(&b->waiters);
}

void zp__budget_attach(zp_budget *b, zp__gate *g)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    zp__waitq_lock(&b->waiters);
    g->next = b->gates;
    b->gates = g;
    if (zp__waitq_busy(&b->waiters))
        atomic_store_explicit(g->word, 0, memory_order_relaxed);
    zp__waitq_unlock(&b->waiters);
}

void zp__budget_detach(zp_budget *b, zp__gate *g)
{
    zp__waitq_lock(&b->waiters);
    for (zp__gate **link = &b->gates; *link; link = &(*link)->next) {
        if (*link == g) {
            *link = g->next;
            break;
        }
    }
    zp__waitq_unlock(&b->waiters);
    budget_unref(b);
}
