/*
 * async.c — zp_loop and zp_get_async: waiting for room without blocking.
 *
 * A request is a waiter in its budget's FIFO queue (policy/waitq.c), like a
 * zp_get_timed caller, whose notify method marks it ready on its loop and
 * makes the loop's eventfd readable. The buffer is taken later, on the loop
 * thread, by zp_loop_dispatch: the thread that returned memory only rings
 * the bell (never a get, never a callback, inside someone else's put).
 *
 * Who touches what:
 *   - the request's queue link and its woken/queued flags: the queue lock;
 *   - the loop's ready list, the request's `ready` flag and whether the
 *     eventfd holds a signal: the loop lock (taken by notify with the queue
 *     lock held: queue -> loop, a leaf);
 *   - everything else (pending list, state, fields): the loop thread only.
 * Because a cancel unlinks the request under the queue lock before it
 * looks at the ready list, no notify can re-add a request once cancelled.
 */
#include "api/api.h"
#include "core/cache.h"
#include "core/thread.h"
#include "os/os.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define REQ_MAGIC 0x7a70a5c1u

typedef struct zp__request zp__request;
struct zp__request {
    zp__waiter w; /* first: the queue's notify gets it back by a cast */
    uint32_t magic;
    bool pending; /* loop thread: queued and not ended */
    bool ready;   /* loop lock: on the loop's ready list */
    size_t size;  /* the pool: w.owner */
    zp_loop *loop;
    zp_ready_fn cb;
    void *arg;
    const void *caller;
    uint64_t gen;                         /* the loop's dispatch count when
                                             it was made (loop thread) */
    zp__request *pend_prev, *pend_next;   /* loop thread */
    zp__request *ready_prev, *ready_next; /* loop lock */
};
_Static_assert(sizeof(zp__request) <= sizeof(zp_request), "zp_request is too small");
_Static_assert(_Alignof(zp__request) <= _Alignof(zp_request), "zp_request is misaligned");

struct zp_loop {
    int fd;
    pthread_mutex_t lock;              /* the ready list, signalled */
    zp__request *ready_head, *ready_tail;
    bool signalled;                    /* the eventfd has an unread signal */
    zp__request *pending;              /* loop thread */
    uint64_t gen;                      /* dispatches begun (loop thread) */
};

/* ---------------------------------------------------------- ready list */

/* Loop lock held. */
static void ready_unlink(zp_loop *l, zp__request *r)
{
    if (!r->ready)
        return;
    if (r->ready_prev)
        r->ready_prev->ready_next = r->ready_next;
    else
        l->ready_head = r->ready_next;
    if (r->ready_next)
        r->ready_next->ready_prev = r->ready_prev;
    else
        l->ready_tail = r->ready_prev;
    r->ready = false;
}

/* The notify method: the queue lock is held, on whatever thread returned
 * memory. Appends r to its loop's ready list and rings the eventfd once
 * per dispatch (wake-ups coalesce). */
static void notify_loop(zp__waiter *w)
{
    zp__request *r = (zp__request *)w;
    zp_loop *l = r->loop;
    pthread_mutex_lock(&l->lock);
    if (!r->ready) {
        r->ready = true;
        r->ready_next = NULL;
        r->ready_prev = l->ready_tail;
        if (l->ready_tail)
            l->ready_tail->ready_next = r;
        else
            l->ready_head = r;
        l->ready_tail = r;
    }
    if (!l->signalled) {
        /* under the lock, so `signalled` and the counter agree for settle;
         * non-blocking, and a full counter is still readable */
        (void)zp__os_event_signal(l->fd);
        l->signalled = true;
    }
    pthread_mutex_unlock(&l->lock);
}

/* ------------------------------------------------------------ requests */

static zp_pool *pool_of(const zp__request *r)
{
    return (zp_pool *)r->w.owner;
}

static zp__waitq *queue_of(const zp__request *r)
{
    return zp__budget_waitq(pool_of(r)->budget);
}

/* Loop lock held: the descriptor is readable exactly while something is
 * ready; with nothing left, the pending signal is consumed. */
static void settle(zp_loop *l)
{
    if (l->ready_head == NULL && l->signalled) {
        (void)zp__os_event_drain(l->fd);
        l->signalled = false;
    }
}

/* Loop thread: the request is over (served or cancelled; already out of
 * its queue): off the ready and pending lists. */
static void request_end(zp__request *r)
{
    zp_loop *l = r->loop;
    pthread_mutex_lock(&l->lock);
    ready_unlink(l, r);
    settle(l);
    pthread_mutex_unlock(&l->lock);
    if (r->pending) {
        if (r->pend_prev)
            r->pend_prev->pend_next = r->pend_next;
        else
            l->pending = r->pend_next;
        if (r->pend_next)
            r->pend_next->pend_prev = r->pend_prev;
        r->pending = false;
    }
}

static void *fail(zp_budget *b, int err)
{
    if (b != NULL && err == ZP__EBUDGET)
        zp__budget_count_failure(b);
    errno = -zp__public_err(err);
    return NULL;
}

void *zp_get_async(zp_pool *p, size_t size, zp_loop *l, zp_request *req, zp_ready_fn cb,
                   void *arg)
{
    const void *caller = ZP_CALLER();
    zp__request *r = (zp__request *)req;
    if (r != NULL) {
        memset(r, 0, sizeof *r);
        r->magic = REQ_MAGIC;
    }
    if (p == NULL || l == NULL || r == NULL || cb == NULL)
        return fail(NULL, zp__null_arg("zp_get_async", p == NULL   ? "pool"
                                                       : l == NULL ? "loop"
                                                       : r == NULL ? "req"
                                                                   : "cb"));
    zp__cache *c = zp__thread_cache(p);
    int err;
    void *buf = zp__cache_get_slow(p, c, size, caller, NULL, &err);
    zp_budget *b = p->budget;
    if (buf != NULL)
        return buf;
    if (b == NULL || err != ZP__EBUDGET)
        return fail(b, err);
    if (zp__request_bytes(p, size) > zp__budget_max(b))
        return fail(b, zp__error(ZP__EBUDGET, "zp_get_async: %zu bytes can never fit the "
                                           "budget of %zu bytes", size, zp__budget_max(b)));
    r->w.notify = notify_loop;
    r->w.owner = p;
    r->w.cls = zp__waiter_class(p, size);
    r->size = size;
    r->loop = l;
    r->cb = cb;
    r->arg = arg;
    r->caller = caller;
    r->gen = l->gen;

    zp__waitq *q = queue_of(r);
    zp__waitq_lock(q);
    zp__waitq_push(q, &r->w);
    if (zp__waitq_is_head(q, &r->w)) {
        /* first in line: room may have come back since the try above (its
         * wake-up found nobody to tell), so try once more as the head */
        r->w.woken = false;
        zp__waitq_unlock(q);
        buf = zp__cache_get_slow(p, c, size, caller, &r->w, &err);
        zp__waitq_lock(q);
        if (buf != NULL || err != ZP__EBUDGET ||
            atomic_load_explicit(&r->w.granted, memory_order_relaxed) != NULL) {
            /* served (by the try, or by a put that handed one over
             * meanwhile: one is given back) */
            zp__waitq_remove(q, &r->w);
            zp__waitq_unlock(q);
            request_end(r); /* a notify may have marked it ready meanwhile */
            buf = zp__cache_keep_one(p, c, &r->w, buf, caller);
            return buf != NULL ? buf : fail(b, err);
        }
    }
    zp__waitq_unlock(q);
    r->pending = true;
    r->pend_prev = NULL;
    r->pend_next = l->pending;
    if (l->pending)
        l->pending->pend_prev = r;
    l->pending = r;
    zp__budget_count_wait(b);
    errno = EINPROGRESS;
    return NULL;
}

int zp_cancel(zp_request *req)
{
    zp__request *r = (zp__request *)req;
    if (r == NULL)
        return zp__null_arg("zp_cancel", "req");
    if (r->magic != REQ_MAGIC || !r->pending)
        return -ENOENT;
    zp__waitq *q = queue_of(r);
    zp__waitq_lock(q);
    zp__waitq_remove(q, &r->w); /* the next one is told at once */
    zp__waitq_unlock(q);
    request_end(r);
    /* handed a buffer before the cancel: it goes on to the next in line */
    zp__cache_return_granted(pool_of(r), zp__thread_cache(pool_of(r)), &r->w);
    return 0;
}

/* --------------------------------------------------------------- loops */

int zp_loop_create(zp_loop **out)
{
    if (out == NULL)
        return zp__null_arg("zp_loop_create", "out");
    *out = NULL;
    zp_loop *l = calloc(1, sizeof *l);
    if (l == NULL)
        return zp__error(-ENOMEM, "zp_loop_create: out of memory");
    int fd = zp__os_event_open();
    if (fd < 0) {
        free(l);
        return zp__error(fd, "zp_loop_create: cannot open an eventfd");
    }
    int rc = -zp__os_mutex_init_short(&l->lock);
    if (rc) {
        zp__os_event_close(fd);
        free(l);
        return zp__error(-rc, "zp_loop_create: cannot initialise the lock");
    }
    l->fd = fd;
    *out = l;
    return 0;
}

void zp_loop_destroy(zp_loop *l)
{
    if (l == NULL)
        return;
    while (l->pending)
        zp_cancel((zp_request *)l->pending);
    /* no request of this loop is queued any more, so no notify can run */
    zp__os_event_close(l->fd);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

int zp_loop_fd(const zp_loop *l)
{
    return l ? l->fd : zp__null_arg("zp_loop_fd", "loop");
}

/* Loop thread: runs r's callback with buf (or the error) once r is over. */
static void finish(zp__request *r, void *buf, int err)
{
    request_end(r);
    r->cb(buf, buf != NULL ? 0 : -zp__public_err(err), r->arg); /* r may be reused from here */
}

/* Loop thread: r was told it may try (it is the head, or was), or a put
 * handed it a buffer. Returns whether its callback ran. */
static bool serve(zp__request *r)
{
    zp_pool *p = pool_of(r);
    /* handed over: already out of the queue, and its notify is done (the
     * buffer is published after it), so nothing to lock */
    void *buf = zp__cache_take_granted(p, &r->w, r->caller);
    if (buf != NULL) {
        finish(r, buf, 0);
        return true;
    }
    zp__waitq *q = queue_of(r);
    zp__waitq_lock(q);
    if (atomic_load_explicit(&r->w.granted, memory_order_relaxed) != NULL) {
        /* handed over just now, by a put that held this lock */
        zp__waitq_unlock(q);
        finish(r, zp__cache_take_granted(p, &r->w, r->caller), 0);
        return true;
    }
    if (!r->w.queued || !r->w.woken) {
        zp__waitq_unlock(q); /* cancelled, or a stale mark */
        return false;
    }
    r->w.woken = false;
    zp__waitq_unlock(q);
    int err = 0;
    zp__cache *c = zp__thread_cache(p);
    buf = zp__cache_get_slow(p, c, r->size, r->caller, &r->w, &err);
    zp__waitq_lock(q);
    if (buf == NULL && err == ZP__EBUDGET &&
        atomic_load_explicit(&r->w.granted, memory_order_relaxed) == NULL) {
        /* taken by someone else meanwhile: it stays first in line; if
         * more came back while we tried, notify has marked it ready again */
        zp__waitq_unlock(q);
        return false;
    }
    zp__waitq_remove(q, &r->w);
    zp__waitq_unlock(q);
    /* got two: one goes on (finish reads err only without a buffer) */
    finish(r, zp__cache_keep_one(p, c, &r->w, buf, r->caller), err);
    return true;
}

int zp_loop_dispatch(zp_loop *l)
{
    if (l == NULL)
        return zp__null_arg("zp_loop_dispatch", "loop");
    /* Requests are taken one at a time from the ready list's head (a
     * callback may cancel or reuse any request), until the list is empty:
     * serving a request passes the turn to the next one of its budget,
     * which joins the list at once, so one dispatch serves every request
     * that memory already came back for. Two bounds keep it short while
     * other threads churn: a request made during this dispatch (by a
     * callback) waits for the next one, and after as many misses (a try
     * that finds the memory gone again) as there were requests at the
     * start, plus a few, the rest waits too. Whatever waits keeps the
     * descriptor readable. */
    uint64_t gen = ++l->gen;
    pthread_mutex_lock(&l->lock);
    size_t budget_misses = 8;
    for (zp__request *r = l->ready_head; r; r = r->ready_next)
        budget_misses++;
    pthread_mutex_unlock(&l->lock);
    int ran = 0;
    for (;;) {
        pthread_mutex_lock(&l->lock);
        zp__request *r = l->ready_head;
        if (r == NULL || budget_misses == 0 || r->gen >= gen) {
            /* Consume the signal only when nothing is left: a notify after
             * this finds `signalled` false and rings again. */
            settle(l);
            pthread_mutex_unlock(&l->lock);
            return ran;
        }
        ready_unlink(l, r);
        pthread_mutex_unlock(&l->lock);
        if (serve(r))
            ran++;
        else
            budget_misses--;
    }
}
