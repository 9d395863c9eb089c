/*
 * waitq.h — a FIFO queue of waiters for room, each told through its own
 * notify method.
 *
 * A waiter is a request that could not be served and asked to be told when
 * it may try again. Whoever returns memory calls zp__waitq_wake(), which
 * marks the head of the queue woken and runs its notify method (today: a
 * condition variable a blocked thread sleeps on; an event loop's eventfd
 * plugs in the same way). Only the head retries: arrival order is kept, and
 * one return never stampedes the whole queue. The owner of the queue is told
 * when it turns busy (first waiter) or idle (last one left), so it can route
 * returns through the path that wakes.
 */
#ifndef ZP_WAITQ_H
#define ZP_WAITQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define ZP__WAITER_NO_HANDOVER UINT32_MAX

typedef struct zp__waiter zp__waiter;
struct zp__waiter {
    zp__waiter *next;
    /* runs with the queue lock held; must not block or call back into the
     * engine (a condition variable's signal, an eventfd's write) */
    void (*notify)(zp__waiter *w);
    /* What a returned buffer must be to be handed straight to this waiter
     * (zp__waitq_hand_over): the pool it waits on and the class it needs,
     * or ZP__WAITER_NO_HANDOVER. Set by the owner before queuing. */
    const void *owner;
    uint32_t cls;
    bool woken;                 /* queue lock: set by wake, cleared by owner */
    bool queued;                /* queue lock: linked in a queue */
    /* A buffer handed over (the waiter is then out of the queue, and woken).
     * Written under the queue lock just after notify returned; release/
     * acquire, so an owner that reads it without that lock knows notify is
     * done with the waiter. The owner takes it (exchange with NULL). */
    _Atomic(void *) granted;
};

/* A waiter told through a condition variable (a blocked thread). */
typedef struct zp__cond_waiter {
    zp__waiter w;
    pthread_cond_t cv;
} zp__cond_waiter;

typedef struct zp__waitq {
    pthread_mutex_t lock;
    zp__waiter *head, *tail;
    _Atomic uint32_t n;         /* waiters queued */
    _Atomic(const zp__waiter *) head_hint; /* head, readable without lock */
    /* what the head waits for (its owner and cls), readable without the
     * lock: a put whose buffers the head cannot take skips the lock */
    _Atomic(const void *) head_owner;
    _Atomic uint32_t head_cls;
    /* told (queue lock held) when the queue turns busy or idle */
    void (*on_busy)(void *arg, bool busy);
    void *on_busy_arg;
} zp__waitq;

int zp__waitq_init(zp__waitq *q, void (*on_busy)(void *, bool), void *arg);
void zp__waitq_fini(zp__waitq *q);
/* fork child: the other threads' waiters are gone */
void zp__waitq_fork_child(zp__waitq *q);

/* Whether anyone waits (a hint: relaxed, may be stale by a moment). */
static inline bool zp__waitq_busy(const zp__waitq *q)
{
    return atomic_load_explicit(&q->n, memory_order_relaxed) != 0;
}

/* Whether w may take new room now: nobody waits, or w is the head. The
 * acquire pairs with the release in zp__waitq_push so a thread that sees a
 * waiter also sees who is first. */
static inline bool zp__waitq_may_take(const zp__waitq *q, const zp__waiter *w)
{
    return atomic_load_explicit(&q->n, memory_order_acquire) == 0 ||
           atomic_load_explicit(&q->head_hint, memory_order_relaxed) == w;
}

/* Marks the head woken and notifies it, if there is one. */
void zp__waitq_wake(zp__waitq *q);

/* Buffers came back (bufs[0..n), all of class cls of owner): while the
 * head waits for exactly that, hands it one (from the end of bufs), takes
 * it out of the queue and notifies it; the next head likewise. Returns how
 * many were handed over; the caller keeps bufs[0..n - that). A returned
 * buffer thus goes to the first in line, never to whoever gets next. */
size_t zp__waitq_hand_over(zp__waitq *q, const void *owner, uint32_t cls, void *const *bufs,
                           size_t n);

/* A waiter told through a condition variable (monotonic clock), waiting
 * for `cls` of `owner` (see zp__waiter). 0 or -errno. */
int zp__waiter_init_cond(zp__cond_waiter *cw, const void *owner, uint32_t cls);
void zp__waiter_fini_cond(zp__cond_waiter *cw);

/* Queue lock held for the calls below. */
void zp__waitq_lock(zp__waitq *q);
void zp__waitq_unlock(zp__waitq *q);
void zp__waitq_push(zp__waitq *q, zp__waiter *w);
/* Unlinks w if it is queued (true), and wakes the new head, if any, so it
 * tries at once. */
bool zp__waitq_remove(zp__waitq *q, zp__waiter *w);
static inline bool zp__waitq_is_head(const zp__waitq *q, const zp__waiter *w)
{
    return q->head == w;
}
/* Sleeps (a condition-variable waiter) until woken or the monotonic clock
 * reaches deadline_ns (UINT64_MAX: no deadline); returns w.woken. */
bool zp__waiter_sleep(zp__waitq *q, zp__cond_waiter *cw, uint64_t deadline_ns);

#endif /* ZP_WAITQ_H */
