/*
 * budget.c — byte budgets shared by pools, and waiting for room.
 *
 * A budget is a counter of reserved bytes with a hard maximum. Pools reserve
 * before mapping a region and release after unmapping it, so the sum of
 * their bytes_reserved never exceeds the maximum, even for an instant.
 *
 * zp_get_timed waiters queue in arrival order. Only the head of the queue
 * may take new bytes from the budget while anyone waits (a plain get that
 * would need them fails with ENOBUFS instead), so a waiter for a big buffer
 * cannot be starved by a stream of small ones. While the queue is not
 * empty, every pool on the budget routes puts through its slow path, which
 * returns the buffer to the depot, unmaps slabs that became wholly idle and
 * wakes the head.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct zp__waiter {
    struct zp__waiter *next;
    pthread_cond_t cv;
    bool woken;
} zp__waiter;

struct zp_budget {
    uint64_t max;
    _Atomic uint64_t reserved;
    _Atomic uint64_t peak;
    _Atomic uint64_t failed;
    _Atomic uint64_t waited;
    _Atomic uint32_t refs;       /* creator + pools */
    _Atomic uint32_t nwaiters;
    _Atomic(zp__waiter *) head_hint; /* head of the queue, for reserve */
    pthread_mutex_t lock;        /* queue and pool list */
    zp__waiter *head, *tail;
    zp_pool *pools;
};

/* The waiter the calling thread is retrying for, if any. */
static __thread zp__waiter *my_waiter;

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
    if (pthread_mutex_init(&b->lock, NULL) != 0) {
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
        pthread_mutex_destroy(&b->lock);
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
    st.waiters = atomic_load_explicit(&b->nwaiters, memory_order_relaxed);
    memcpy(out, &st, want < sizeof st ? want : sizeof st);
    out->struct_size = want;
    return 0;
}

void zp__budget_after_fork_child(zp_budget *b)
{
    /* waiters were other threads: gone. Reinitialising twice (a budget
     * shared by several pools) is harmless here: nothing holds it. */
    pthread_mutex_init(&b->lock, NULL);
    b->head = b->tail = NULL;
    atomic_store_explicit(&b->head_hint, NULL, memory_order_relaxed);
    atomic_store_explicit(&b->nwaiters, 0, memory_order_relaxed);
    for (zp_pool *p = b->pools; p; p = p->budget_next)
        atomic_store_explicit(&p->hot_classes, p->hot_default, memory_order_relaxed);
}

size_t zp__budget_max(const zp_budget *b)
{
    return b ? b->max : SIZE_MAX;
}

/* > 0 while the calling thread is inside zp_get_timed */
static __thread int in_timed;

void zp__budget_count_failure(zp_pool *p, int err)
{
    if (p->budget && err == ENOBUFS && !in_timed)
        atomic_fetch_add_explicit(&p->budget->failed, 1, memory_order_relaxed);
}

bool zp__budget_has_waiters(const zp_budget *b)
{
    return atomic_load_explicit(&b->nwaiters, memory_order_relaxed) != 0;
}

bool zp__budget_reserve(zp_budget *b, size_t size)
{
    /* acquire: pairs with the release in get_timed's enqueue, so a thread
     * that sees waiters also sees who is first */
    if (atomic_load_explicit(&b->nwaiters, memory_order_acquire) != 0 &&
        atomic_load_explicit(&b->head_hint, memory_order_relaxed) != my_waiter)
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
    if (zp__budget_has_waiters(b))
        zp__budget_notify(b);
}

void zp__budget_notify(zp_budget *b)
{
    pthread_mutex_lock(&b->lock);
    if (b->head) {
        b->head->woken = true;
        pthread_cond_signal(&b->head->cv);
    }
    pthread_mutex_unlock(&b->lock);
}

/* Budget lock held: while anyone waits, puts must reach the slow path. */
static void pools_route_puts(zp_budget *b, bool slow)
{
    for (zp_pool *p = b->pools; p; p = p->budget_next)
        atomic_store_explicit(&p->hot_classes, slow ? 0 : p->hot_default,
                              memory_order_relaxed);
}

void zp__budget_attach(zp_budget *b, zp_pool *p)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    pthread_mutex_lock(&b->lock);
    p->budget_next = b->pools;
    b->pools = p;
    if (b->head)
        atomic_store_explicit(&p->hot_classes, 0, memory_order_relaxed);
    pthread_mutex_unlock(&b->lock);
}

void zp__budget_detach(zp_budget *b, zp_pool *p)
{
    pthread_mutex_lock(&b->lock);
    for (zp_pool **link = &b->pools; *link; link = &(*link)->budget_next) {
        if (*link == p) {
            *link = p->budget_next;
            break;
        }
    }
    pthread_mutex_unlock(&b->lock);
    budget_unref(b);
}

size_t zp__request_bytes(const zp_pool *p, size_t size)
{
    if (size == 0)
        size = 1;
    if (size > p->max_class)
        return size > ZP__MAX_REQUEST ? SIZE_MAX : (size + ZP__GRAIN - 1) & ~(ZP__GRAIN - 1);
    return zp__slab_bytes(p, zp__class_of(p, size));
}

void *zp_get_timed(zp_pool *p, size_t size, int timeout_ms)
{
    if (p == NULL || timeout_ms < -1) {
        zp__error(-EINVAL, "zp_get_timed: %s", p ? "timeout_ms below -1" : "pool is NULL");
        errno = EINVAL;
        return NULL;
    }
    zp_budget *b = p->budget;
    in_timed++;
    void *buf = zp_get(p, size);
    in_timed--;
    if (buf != NULL || b == NULL || errno != ENOBUFS) {
        if (buf == NULL)
            zp__budget_count_failure(p, errno);
        return buf;
    }
    if (timeout_ms == 0 || zp__request_bytes(p, size) > b->max) {
        atomic_fetch_add_explicit(&b->failed, 1, memory_order_relaxed);
        errno = ENOBUFS;
        return NULL;
    }
    atomic_fetch_add_explicit(&b->waited, 1, memory_order_relaxed);

    struct timespec deadline;
    if (timeout_ms > 0)
        zp__deadline_after(&deadline, (uint64_t)timeout_ms * 1000000u);
    zp__waiter w;
    w.next = NULL;
    w.woken = false;
    if (zp__cond_init_monotonic(&w.cv) != 0) {
        zp__error(-ENOMEM, "zp_get_timed: cannot initialise a condition variable");
        atomic_fetch_add_explicit(&b->failed, 1, memory_order_relaxed);
        errno = ENOMEM;
        return NULL;
    }

    pthread_mutex_lock(&b->lock);
    if (b->tail)
        b->tail->next = &w;
    else
        b->head = &w;
    b->tail = &w;
    atomic_store_explicit(&b->head_hint, b->head, memory_order_relaxed);
    /* release: pairs with the acquire in zp__budget_reserve */
    if (atomic_fetch_add_explicit(&b->nwaiters, 1, memory_order_release) == 0)
        pools_route_puts(b, true);

    int err = ETIMEDOUT;
    for (;;) {
        if (b->head == &w) {
            w.woken = false;
            pthread_mutex_unlock(&b->lock);
            my_waiter = &w;
            in_timed++;
            buf = zp_get(p, size);
            err = errno;
            in_timed--;
            my_waiter = NULL;
            pthread_mutex_lock(&b->lock);
            if (buf != NULL || err != ENOBUFS)
                break;
            if (w.woken)
                continue; /* room was made while we tried */
        }
        int rc = 0;
        while (!w.woken && rc == 0) {
            if (timeout_ms < 0)
                rc = pthread_cond_wait(&w.cv, &b->lock);
            else
                rc = pthread_cond_timedwait(&w.cv, &b->lock, &deadline);
        }
        if (!w.woken) {
            err = ETIMEDOUT;
            break;
        }
    }

    /* leave the queue; wake the next one so it tries at once */
    zp__waiter **link = &b->head, *prev = NULL;
    while (*link != &w) {
        prev = *link;
        link = &(*link)->next;
    }
    *link = w.next;
    if (b->tail == &w)
        b->tail = prev;
    atomic_store_explicit(&b->head_hint, b->head, memory_order_relaxed);
    if (atomic_fetch_sub_explicit(&b->nwaiters, 1, memory_order_relaxed) == 1)
        pools_route_puts(b, false);
    if (b->head) {
        b->head->woken = true;
        pthread_cond_signal(&b->head->cv);
    }
    pthread_mutex_unlock(&b->lock);
    pthread_cond_destroy(&w.cv);
    if (buf == NULL) {
        atomic_fetch_add_explicit(&b->failed, 1, memory_order_relaxed);
        if (err == ETIMEDOUT)
            zp__error(-ETIMEDOUT, "zp_get_timed: no room in the budget within %d ms",
                      timeout_ms);
        errno = err;
    }
    return buf;
}
