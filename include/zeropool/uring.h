/*
 * zeropool/uring.h — io_uring provided-buffer rings fed from a zeropool pool
 * (libzeropool-uring: pkg-config zeropool-uring, CMake zeropool::uring).
 *
 * A zp_bufring is a provided-buffer ring (IORING_REGISTER_PBUF_RING) of one
 * buffer group on the caller's struct io_uring. Its buffers come from a pool
 * (one size class, through a cache handle the ring owns), count against the
 * pool's budget and go back to the pool: the kernel picks one per receive
 * (IOSQE_BUFFER_SELECT), zp_bufring_take turns the completion into the
 * buffer in O(1), and from then on the buffer is the application's, to be
 * put back with zp_put from any thread (or zp_bufring_put on the owner
 * thread) when it is done with it — the ring never needs it back.
 *
 * The ring refills itself on the owner's thread when it falls to its
 * low-water mark, in batches (zp_cache_get_batch), publishing each batch to
 * the kernel with one store: no system call per buffer, no system call at
 * all once the pool is warm.
 *
 * When the ring runs dry, a multishot receive ends with -ENOBUFS and must be
 * re-armed once the ring has buffers again. zp_bufring_park tells the ring
 * about such a receive: if the ring can be refilled at once it says so (the
 * caller re-arms now); otherwise, with the pool's budget exhausted, it keeps
 * an async request (zp_get_async) on the owner's zp_loop, and when memory
 * really comes back (a put of that class, a trim...) the loop's descriptor
 * becomes readable, zp_loop_dispatch refills the ring and the ring calls the
 * rearm callback once for each parked receive. Never a timer, never polling.
 * "The ring has buffers" is the ring's own count (added minus taken by
 * the completions reaped so far): with many receives and few buffers, a
 * re-armed receive may find the ring dry again at once (another took the
 * buffer first, or the kernel picked it for a completion not reaped yet):
 * that is a new exhaustion, parked again; each exhaustion gets exactly one
 * re-arm.
 *
 * Error convention: as zeropool's: 0 or a negative errno; nothing global.
 * After a failed zp_bufring_create, zp_strerror(err) on the same thread
 * gives the precise reason (which field, which kernel feature).
 *
 * Threading: a ring belongs to its owner thread, the one that reaps the
 * io_uring's completions and dispatches the zp_loop. Every function is
 * owner-only except zp_bufring_release, which any thread may call. Buffers
 * the application took are ordinary pool buffers: zp_put on any thread.
 *
 * Lifetime: destroy the ring before its loop and its pool (its async
 * request lives on the loop; its buffers in the pool), and while the
 * struct io_uring is still initialised.
 *
 * Requirements: liburing; a kernel with ring-provided buffers (5.19+),
 * incremental consumption (ZP_BUFRING_INCREMENTAL) needs 6.12+.
 *
 * This module is EXPERIMENTAL, like the cache handles and async requests it
 * is built on: names stay, arguments and struct layouts may change in a
 * minor release.
 */
#ifndef ZEROPOOL_URING_H
#define ZEROPOOL_URING_H

#include <stddef.h>
#include <stdint.h>

#include <liburing.h>
#include <zeropool.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ZP_STATIC_DEFINE)
#define ZP_URING_API
#else
#define ZP_URING_API __attribute__((visibility("default")))
#endif

/* ----------------------------------------------------------- opaque types */

typedef struct zp_bufring zp_bufring;

/* Caller-owned storage for one parked receive (zp_bufring_park): no
 * allocation per park. Zero it once before its first use (= {0}, calloc,
 * or ZP_BUFRING_WAIT_INIT); keep it alive and unmoved while it is parked.
 * It may be parked again any number of times after its rearm ran or it was
 * unparked. */
typedef struct zp_bufring_wait {
    void *priv[6];
} zp_bufring_wait;
#define ZP_BUFRING_WAIT_INIT {{0}}

/*
 * Runs once for each parked receive when the ring has buffers again: the
 * application re-arms that receive (token is what it gave zp_bufring_park).
 * Runs on the owner thread, inside zp_loop_dispatch, zp_bufring_take or
 * zp_bufring_refill, never under a library lock: it may get SQEs, submit,
 * park or unpark (any wait) and take; it must not destroy the ring. The
 * wait is no longer parked when it runs and may be parked again.
 */
typedef void (*zp_bufring_rearm_fn)(zp_bufring *br, zp_bufring_wait *w, uint64_t token,
                                    void *arg);

/* ------------------------------------------------------------- lifecycle */

/* Flags for zp_bufring_config.flags. */
#define ZP_BUFRING_INCREMENTAL 0x1u /* incremental consumption (kernel 6.12+,
                                       IOU_PBUF_RING_INC): several receives
                                       share one buffer, each from where the
                                       previous one ended; the application
                                       takes slices and gives each back with
                                       zp_bufring_release */

typedef struct zp_bufring_config {
    size_t struct_size;   /* set by zp_bufring_config_init */
    struct io_uring *ring; /* the caller's ring; must outlive the zp_bufring */
    zp_pool *pool;        /* where the buffers come from and go back to */
    zp_loop *loop;        /* the owner's loop: waits for memory go through it */
    unsigned bgid;        /* buffer group id, 0 .. 65535, free on `ring` */
    size_t buf_size;      /* bytes per buffer: exactly one of the pool's size
                             classes (a power of two, <= 2 GiB) */
    unsigned entries;     /* ring entries: power of two, 1 .. 32768 */
    unsigned low_water;   /* refill when the ring holds this many or fewer;
                             default entries / 4; < entries */
    unsigned batch;       /* buffers per refill batch: 1 .. 1024; default 32
                             (a zp_get_batch, one magazine of the pool) */
    unsigned flags;       /* ZP_BUFRING_INCREMENTAL; default 0 */
    zp_bufring_rearm_fn rearm; /* required: re-arms a parked receive */
    void *arg;            /* passed to rearm */
} zp_bufring_config;

/* Fills *cfg with the defaults (and struct_size); the caller then sets
 * ring, pool, loop, bgid, buf_size, entries and rearm. Thread-safe. */
ZP_URING_API void zp_bufring_config_init(zp_bufring_config *cfg);

/*
 * Creates the ring: allocates and registers the buffer ring for cfg->bgid on
 * cfg->ring, creates its cache handle on cfg->pool and fills it with as many
 * buffers as the budget allows (all entries when it can; when the budget is
 * short, an async request waits on cfg->loop for the rest). Returns 0 and
 * sets *out, or -EINVAL (a NULL or invalid field; buf_size not a class of
 * the pool), -ENOMEM, -EEXIST (bgid already registered on that ring),
 * -EOPNOTSUPP (the kernel has no ring-provided buffers, or no incremental
 * consumption for ZP_BUFRING_INCREMENTAL), -ENOBUFS (not one buffer fits
 * the whole budget), or another error of io_uring_register. A ring the
 * budget cannot fill at all right now is created empty, waiting on the
 * loop. Nothing is left
 * registered or held on failure. Owner thread. The caller owns the ring.
 */
ZP_URING_API int zp_bufring_create(const zp_bufring_config *cfg, zp_bufring **out);

/*
 * Unregisters the buffer ring and gives every buffer still in it back to the
 * pool (once: buffers the application took are its own and are not
 * touched), cancels the async request, forgets every parked receive (their
 * rearm callbacks never run), destroys the cache handle and frees the ring.
 * Cancel or let finish the receives that use the group first: after this
 * their buffer selection fails with -ENOBUFS. Returns 0, or -EBUSY with
 * nothing done when incremental slices are still held (release them
 * first). NULL: 0. Owner thread.
 */
ZP_URING_API int zp_bufring_destroy(zp_bufring *br);

/* ------------------------------------------------------------- hot path */

/* What a completion carried (zp_bufring_take). */
typedef struct zp_bufring_buf {
    void *data;   /* the received bytes (buf + offset in incremental mode) */
    size_t len;   /* how many: cqe->res */
    void *buf;    /* the pool buffer holding them */
    unsigned bid; /* its buffer id */
    int more;     /* incremental mode: the kernel goes on filling buf after
                     data (IORING_CQE_F_BUF_MORE); 0 otherwise */
} zp_bufring_buf;

/*
 * Turns a completion of a receive that selected a buffer from this ring's
 * group into its buffer, in O(1) (buffer id -> pointer, one table read),
 * then refills the ring if it is at its low-water mark (a batch from the
 * cache handle; no system call), which may run rearm callbacks.
 * Without ZP_BUFRING_INCREMENTAL: out->buf (== out->data) is the
 * application's from now on: give it back with zp_put from any thread, or
 * zp_bufring_put on this one. With it: out->data .. + len is a slice of
 * out->buf, which stays the ring's; give the slice back with
 * zp_bufring_release (the buffer returns to the pool when the kernel is
 * done with it and every slice of it was released).
 * Returns 0, -ENOENT (the completion carries no buffer:
 * IORING_CQE_F_BUFFER is clear; nothing changed), -EINVAL (br or cqe NULL,
 * or a buffer id this ring has not given the kernel: the completion is not
 * of this group). Owner thread.
 */
ZP_URING_API int zp_bufring_take(zp_bufring *br, const struct io_uring_cqe *cqe,
                                 zp_bufring_buf *out);

/* The buffer the kernel holds under bid right now (given to the kernel and
 * not yet taken), or NULL. O(1). For checks; owner thread. */
ZP_URING_API void *zp_bufring_buffer(const zp_bufring *br, unsigned bid);

/* Gives a taken buffer back to the pool through the ring's cache handle,
 * where the next refill finds it (the cheapest way back; zp_put works
 * too). While the ring waits for memory, it is handed to the first waiter
 * of the pool's budget, as any put is. buf NULL, or br NULL: no-op (buf
 * stays the caller's). A pointer that is not a buffer of the ring's pool
 * goes to the misuse handler, as with zp_cache_put, and stays the
 * caller's. Owner thread. */
ZP_URING_API void zp_bufring_put(zp_bufring *br, void *buf);

/*
 * Incremental mode: releases one slice of buffer bid (one zp_bufring_take
 * of it). The buffer goes back to the pool with the last release after the
 * kernel finished with it. Any thread (a release is one atomic decrement;
 * the last one puts the buffer with zp_put and hands the buffer id back to
 * the owner lock-free). 0, -EINVAL (not incremental, bid out of range, or
 * no slice of bid is held).
 */
ZP_URING_API int zp_bufring_release(zp_bufring *br, unsigned bid);

/*
 * Tops the ring up now, whatever the low-water mark: batches from the cache
 * handle until every entry holds a buffer or the budget says no (then the
 * async request waits on the loop). Runs the rearm callbacks of parked
 * receives if the ring holds buffers afterwards. Returns how many buffers
 * it added (>= 0), or -ENOMEM (the provider failed), -EINVAL. Owner thread.
 */
ZP_URING_API int zp_bufring_refill(zp_bufring *br);

/*
 * A multishot receive of this group ended with -ENOBUFS (the ring ran dry).
 * Returns 1 when the ring holds buffers (it refills first): re-arm now,
 * nothing is parked. Returns 0 when it parked w: the budget has no room;
 * rearm(br, w, token, arg) runs exactly once, on the owner thread, as soon
 * as memory came back and the ring holds buffers again (unless unparked or
 * the ring destroyed first). -EALREADY if w is parked already; -ENOMEM if
 * the provider failed; -EINVAL for NULL. Owner thread.
 */
ZP_URING_API int zp_bufring_park(zp_bufring *br, zp_bufring_wait *w, uint64_t token);

/* Forgets a parked receive (its connection closed): its rearm never runs.
 * 0, or -ENOENT if w is not parked. Owner thread. */
ZP_URING_API int zp_bufring_unpark(zp_bufring *br, zp_bufring_wait *w);

/* ----------------------------------------------------------------- stats */

typedef struct zp_bufring_stats {
    size_t struct_size;   /* set by the caller to sizeof(zp_bufring_stats) */
    uint32_t entries;
    uint32_t in_ring;     /* buffers given to the kernel, not yet taken */
    uint32_t parked;      /* receives parked right now */
    uint32_t slices_held; /* incremental: slices taken, not released */
    uint64_t added;       /* buffers given to the kernel, ever */
    uint64_t taken;       /* completions turned into buffers (or slices) */
    uint64_t refills;     /* refill rounds that added buffers */
    uint64_t batches;     /* batch gets from the cache handle */
    uint64_t exhausted;   /* refills the budget stopped short */
    uint64_t async_waits; /* async requests that had to wait */
    uint64_t async_grants; /* of them, served (memory came back) */
    uint64_t parks;       /* zp_bufring_park calls that parked */
    uint64_t rearm_now;   /* zp_bufring_park calls that said "re-arm now" */
    uint64_t rearms;      /* rearm callbacks run */
    uint64_t unparks;     /* zp_bufring_unpark that removed a wait */
    uint64_t returned;    /* buffers given back to the pool by the ring
                             itself (incremental mode, and destroy) */
} zp_bufring_stats;

/* Reads the ring's counters. 0 or -EINVAL (NULL, struct_size too small).
 * Owner thread. */
ZP_URING_API int zp_bufring_stats_read(const zp_bufring *br, zp_bufring_stats *out);

/* The buffer group id, buffer size and pool the ring was created with (0,
 * 0 and NULL for a NULL ring). Any thread. */
ZP_URING_API unsigned zp_bufring_bgid(const zp_bufring *br);
ZP_URING_API size_t zp_bufring_buf_size(const zp_bufring *br);
ZP_URING_API zp_pool *zp_bufring_pool(const zp_bufring *br);

#ifdef __cplusplus
}
#endif

#endif /* ZEROPOOL_URING_H */
