/*
 * waitq.c — the FIFO waiter queue (see waitq.h).
 */
#include "policy/waitq.h"
#include "os/os.h"

#include <errno.h>
#include <stddef.h>

int zp__waitq_init(zp__waitq *q, void (*on_busy)(void *, bool), void *arg)
{
    q->head = q->tail = NULL;
    atomic_init(&q->n, 0);
    atomic_init(&q->head_hint, NULL);
    atomic_init(&q->head_owner, NULL);
    atomic_init(&q->head_cls, ZP__WAITER_NO_HANDOVER);
    q->on_busy = on_busy;
    q->on_busy_arg = arg;
    return zp__os_mutex_init_short(&q->lock);
}

void zp__waitq_fini(zp__waitq *q)
{
    pthread_mutex_destroy(&q->lock);
}

void zp__waitq_fork_child(zp__waitq *q)
{
    /* Waiters were other threads: gone. Reinitialising is harmless even if
     * called twice: nothing holds the lock in the child. */
    (void)zp__os_mutex_init_short(&q->lock);
    q->head = q->tail = NULL;
    atomic_store_explicit(&q->head_hint, NULL, memory_order_relaxed);
    atomic_store_explicit(&q->head_owner, NULL, memory_order_relaxed);
    atomic_store_explicit(&q->head_cls, ZP__WAITER_NO_HANDOVER, memory_order_relaxed);
    atomic_store_explicit(&q->n, 0, memory_order_relaxed);
    if (q->on_busy)
        q->on_busy(q->on_busy_arg, false);
}

/* Queue lock held: the head changed. The hints are read without the
 * lock; relaxed: a reader acting on a stale hint only skips a hand-over
 * (the buffer then goes to the depot, whose give wakes the head) or takes
 * the lock for nothing. */
static void publish_head(zp__waitq *q)
{
    const zp__waiter *h = q->head;
    atomic_store_explicit(&q->head_hint, h, memory_order_relaxed);
    atomic_store_explicit(&q->head_owner, h ? h->owner : NULL, memory_order_relaxed);
    atomic_store_explicit(&q->head_cls, h ? h->cls : ZP__WAITER_NO_HANDOVER,
                          memory_order_relaxed);
}

void zp__waitq_lock(zp__waitq *q)
{
    pthread_mutex_lock(&q->lock);
}

void zp__waitq_unlock(zp__waitq *q)
{
    pthread_mutex_unlock(&q->lock);
}

/* Tells the head, unless it was told and has not tried since (it clears
 * `woken` under this lock before it tries): one notify per try, so a
 * stream of returns does not keep ringing a head that knows. */
static void wake_head(zp__waitq *q)
{
    if (q->head && !q->head->woken) {
        q->head->woken = true;
        q->head->notify(q->head);
    }
}

void zp__waitq_wake(zp__waitq *q)
{
    if (!zp__waitq_busy(q))
        return;
    pthread_mutex_lock(&q->lock);
    wake_head(q);
    pthread_mutex_unlock(&q->lock);
}

void zp__waitq_push(zp__waitq *q, zp__waiter *w)
{
    w->next = NULL;
    w->woken = false;
    w->queued = true;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    publish_head(q);
    /* release: pairs with the acquire in zp__waitq_may_take */
    if (atomic_fetch_add_explicit(&q->n, 1, memory_order_release) == 0 && q->on_busy)
        q->on_busy(q->on_busy_arg, true);
}

/* Unlinks the queued waiter w (queue lock held). */
static void unlink_waiter(zp__waitq *q, zp__waiter *w)
{
    zp__waiter **link = &q->head, *prev = NULL;
    while (*link != w) {
        prev = *link;
        link = &(*link)->next;
    }
    *link = w->next;
    w->queued = false;
    if (q->tail == w)
        q->tail = prev;
    publish_head(q);
    /* relaxed: the queue itself is read under the lock; n is a hint */
    if (atomic_fetch_sub_explicit(&q->n, 1, memory_order_relaxed) == 1 && q->on_busy)
        q->on_busy(q->on_busy_arg, false);
}

bool zp__waitq_remove(zp__waitq *q, zp__waiter *w)
{
    if (!w->queued)
        return false;
    unlink_waiter(q, w);
    wake_head(q);
    return true;
}

size_t zp__waitq_hand_over(zp__waitq *q, const void *owner, uint32_t cls, void *const *bufs,
                           size_t n)
{
    size_t handed = 0;
    if (!zp__waitq_busy(q) ||
        atomic_load_explicit(&q->head_owner, memory_order_relaxed) != owner ||
        atomic_load_explicit(&q->head_cls, memory_order_relaxed) != cls)
        return 0; /* the head cannot take these (or nobody waits) */
    pthread_mutex_lock(&q->lock);
    zp__waiter *w;
    while (handed < n && (w = q->head) != NULL && w->owner == owner && w->cls == cls) {
        unlink_waiter(q, w);
        w->woken = true;
        w->notify(w);
        /* After notify: an owner that finds the buffer without the queue
         * lock knows notify is done with w (and may end it). Release:
         * pairs with its acquire exchange. An owner told by notify before
         * the store takes the queue lock, held here, and finds it then. */
        atomic_store_explicit(&w->granted, bufs[n - 1 - handed], memory_order_release);
        handed++;
    }
    pthread_mutex_unlock(&q->lock);
    return handed;
}

static void notify_cond(zp__waiter *w)
{
    pthread_cond_signal(&((zp__cond_waiter *)w)->cv); /* w is the first member */
}

int zp__waiter_init_cond(zp__cond_waiter *cw, const void *owner, uint32_t cls)
{
    cw->w.next = NULL;
    cw->w.woken = cw->w.queued = false;
    cw->w.owner = owner;
    cw->w.cls = cls;
    atomic_init(&cw->w.granted, NULL);
    cw->w.notify = notify_cond;
    return zp__os_cond_init(&cw->cv);
}

void zp__waiter_fini_cond(zp__cond_waiter *cw)
{
    pthread_cond_destroy(&cw->cv);
}

bool zp__waiter_sleep(zp__waitq *q, zp__cond_waiter *cw, uint64_t deadline_ns)
{
    while (!cw->w.woken && zp__os_cond_wait(&cw->cv, &q->lock, deadline_ns) == 0)
        ;
    return cw->w.woken;
}
