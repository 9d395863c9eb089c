/*
 * bufring.c — libzeropool-uring: an io_uring provided-buffer ring whose
 * buffers come from a zeropool pool (include/zeropool/uring.h).
 *
 * Built only on the public zeropool API (a cache handle for the refills,
 * zp_get_async on the owner's loop when the budget is exhausted, zp_put /
 * zp_cache_put for the way back) and on liburing. One file, one concern:
 * the ring's bookkeeping.
 *
 * State, all owned by the owner thread unless marked:
 *   slots[bid]   the buffer under each id, whether the kernel holds it
 *                (in_kernel), and in incremental mode the offset the next
 *                receive starts at and the references (the kernel's while
 *                it holds the buffer, plus one per slice taken: atomic,
 *                released from any thread);
 *   free_ids     ids with no buffer, ready for the next refill (a stack);
 *   remote_head  incremental mode: ids freed by zp_bufring_release on any
 *                thread, a lock-free stack the owner empties whole;
 *   parked       receives waiting for buffers, an intrusive list in the
 *                callers' zp_bufring_wait storage;
 *   req          the one async request, pending while req_pending.
 */
#define _GNU_SOURCE
#include "zeropool/uring.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Incremental consumption: liburing 2.3 (Debian 12) predates it; the kernel
 * ABI values are fixed (include/uapi/linux/io_uring.h), so they are used by
 * value when the header lacks them. IOU_PBUF_RING_INC is an enum constant
 * (no #ifdef possible): liburing >= 2.8 has it and its version header. */
#ifdef IORING_CQE_F_BUF_MORE
#define BR_CQE_F_BUF_MORE IORING_CQE_F_BUF_MORE
#else
#define BR_CQE_F_BUF_MORE (1U << 4)
#endif
#if defined(IO_URING_VERSION_MAJOR) && defined(IO_URING_VERSION_MINOR) &&        \
    (IO_URING_VERSION_MAJOR > 2 || (IO_URING_VERSION_MAJOR == 2 && IO_URING_VERSION_MINOR >= 8))
#define BR_PBUF_RING_INC IOU_PBUF_RING_INC
#define BR_REG_FLAGS(reg) ((reg).flags)
#else
#define BR_PBUF_RING_INC 2
#define BR_REG_FLAGS(reg) ((reg).pad) /* the 16 bits newer headers call flags */
#endif

#define BR_MAX_ENTRIES 32768u
#define BR_KREF (1u << 31) /* the kernel's reference in slot.refs */
#define BR_MAX_BATCH 1024u

typedef struct slot {
    void *buf;           /* NULL: the id is free */
    uint32_t off;        /* incremental: where the next receive starts */
    uint8_t in_kernel;   /* given to the kernel, not finished by it */
    atomic_uint refs;    /* incremental: BR_KREF while the kernel holds
                            the buffer, + 1 per slice held */
    atomic_uint next;    /* incremental: remote free stack link (id + 1) */
} slot;

/* A parked receive, laid over zp_bufring_wait.priv. */
typedef struct wait_node {
    struct wait_node *next, *prev;
    struct wait_list *list; /* the list it is on; NULL: not parked */
    uint64_t token;
} wait_node;

typedef struct wait_list {
    wait_node *head, *tail;
    unsigned n;
} wait_list;

_Static_assert(sizeof(wait_node) <= sizeof(zp_bufring_wait),
               "zp_bufring_wait must hold a wait_node");

struct zp_bufring {
    struct io_uring *ring;
    zp_pool *pool;
    zp_cache *cache;
    zp_loop *loop;
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    size_t buf_size;
    unsigned entries, mask, low_water, batch, flags;
    uint16_t bgid;
    uint16_t tail;      /* our copy of the ring's tail */
    unsigned in_ring;   /* given to the kernel, not finished */
    slot *slots;
    uint16_t *free_ids;
    unsigned nfree;
    void **scratch;     /* batch buffer */
    atomic_uint remote_head; /* incremental: freed ids, id + 1; 0: empty */
    atomic_uint slices_held; /* incremental */
    atomic_ullong returned_remote; /* buffers zp_bufring_release put back */
    zp_request req;
    bool req_pending;
    wait_list parked;   /* waiting for buffers */
    wait_list firing;   /* detached while their callbacks run */
    zp_bufring_rearm_fn rearm;
    void *arg;
    int last_error;     /* of the last failed refill (not ENOBUFS) */
    zp_bufring_stats st;
};

static bool incremental(const zp_bufring *br)
{
    return (br->flags & ZP_BUFRING_INCREMENTAL) != 0;
}

/* ---------------------------------------------------------------- waits */

static void list_push(wait_list *l, wait_node *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
    n->list = l;
    l->n++;
}

static void list_unlink(wait_node *n)
{
    wait_list *l = n->list;
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->next = n->prev = NULL;
    n->list = NULL;
    l->n--;
}

/* Whether the ring holds buffers, by our count: what we added minus what
 * the completions we have seen took. Buffers the kernel picked for
 * completions not reaped yet still count, so a receive re-armed on that
 * word may find the ring dry at once: one more exhaustion, parked again,
 * and by then those completions are reaped. Asking the kernel for its head
 * instead (IORING_REGISTER_PBUF_STATUS, 6.8+) costs a system call per
 * exhaustion: with 1,024 connections on 256 buffers (zp_bench_uring) it
 * cost 12% of the throughput (56k vs 64k msgs/s, static ring 64-65k),
 * more than the re-arms it saved. */
static bool ring_has_buffers(const zp_bufring *br)
{
    return br->in_ring > 0;
}

/* The ring holds buffers: every parked receive is re-armed, once. The list
 * is detached first, so a callback that parks again (the ring ran dry at
 * once) lands on the fresh list and is not called twice here, and one that
 * unparks a wait not yet called removes it from the detached list. */
static void fire_parked(zp_bufring *br)
{
    if (br->parked.n == 0 || br->firing.n != 0 || !ring_has_buffers(br))
        return;
    br->firing = br->parked;
    for (wait_node *n = br->firing.head; n != NULL; n = n->next)
        n->list = &br->firing;
    br->parked = (wait_list){0};
    while (br->firing.head != NULL) {
        wait_node *n = br->firing.head;
        list_unlink(n);
        br->st.rearms++;
        br->rearm(br, (zp_bufring_wait *)n, n->token, br->arg);
    }
}

/* ------------------------------------------------------------- refilling */

/* Incremental mode: takes back, whole, the ids other threads freed. The
 * exchange takes the stack in one step, so no id is seen twice and no
 * ABA can arise (the owner is the only consumer). Acquire: pairs with the
 * release of the push, so the pusher's slot updates are visible. */
static void drain_remote(zp_bufring *br)
{
    unsigned id1 = atomic_exchange_explicit(&br->remote_head, 0, memory_order_acquire);
    while (id1 != 0) {
        slot *s = &br->slots[id1 - 1];
        unsigned next = atomic_load_explicit(&s->next, memory_order_relaxed);
        s->buf = NULL;
        br->free_ids[br->nfree++] = (uint16_t)(id1 - 1);
        id1 = next;
    }
}

/* Gives n buffers to the kernel: one entry each, then one release store of
 * the tail (the kernel reads the tail with acquire, so it sees the entries
 * and the buffers' addresses). No system call. */
static void publish(zp_bufring *br, void *const *bufs, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        uint16_t bid = br->free_ids[--br->nfree];
        slot *s = &br->slots[bid];
        struct io_uring_buf *e = &br->br->bufs[(uint16_t)(br->tail + i) & br->mask];
        s->buf = bufs[i];
        s->off = 0;
        s->in_kernel = 1;
        atomic_store_explicit(&s->refs, BR_KREF, memory_order_relaxed);
        e->addr = (uint64_t)(uintptr_t)bufs[i];
        e->len = (uint32_t)br->buf_size;
        e->bid = bid;
    }
    br->tail = (uint16_t)(br->tail + n);
    __atomic_store_n(&br->br->tail, br->tail, __ATOMIC_RELEASE);
    br->in_ring += n;
    br->st.added += n;
}

/* Adds buffers until the ring holds `target` or the pool says no.
 * Returns 0 or the error that stopped it (-ENOBUFS: the budget). */
static int top_up(zp_bufring *br, unsigned target)
{
    int err = 0;
    unsigned added = 0;
    if (incremental(br))
        drain_remote(br);
    while (br->in_ring < target && br->nfree > 0) {
        unsigned n = target - br->in_ring, got = 0;
        if (n > br->batch)
            n = br->batch;
        if (n > br->nfree)
            n = br->nfree;
        int rc = zp_cache_get_batch(br->cache, br->buf_size, br->scratch, n);
        if (rc == 0) {
            got = n;
            br->st.batches++;
        } else if (rc == -ENOBUFS) {
            /* all or nothing failed: what does fit, one by one (each a
             * cache or depot hit, or a slab mapped for many buffers) */
            void *b;
            while (got < n && (b = zp_cache_get(br->cache, br->buf_size)) != NULL)
                br->scratch[got++] = b;
            if (got < n)
                rc = errno == ENOBUFS ? -ENOBUFS : -errno;
        }
        if (got > 0) {
            publish(br, br->scratch, got);
            added += got;
        }
        if (rc != 0) {
            err = rc;
            break;
        }
    }
    if (added > 0)
        br->st.refills++;
    if (err == -ENOBUFS)
        br->st.exhausted++;
    else if (err != 0)
        br->last_error = err;
    return err;
}

static void on_memory(void *buf, int err, void *arg);

/* The budget stopped a refill with the ring low: ask the loop to tell us
 * when memory is back (one request at a time). A buffer available at once
 * goes straight into the ring. Returns 1 if it added one, 0 if waiting or
 * nothing to do, or a negative errno. */
static int want_memory(zp_bufring *br)
{
    if (br->req_pending || br->nfree == 0)
        return 0;
    void *b = zp_get_async(br->pool, br->buf_size, br->loop, &br->req, on_memory, br);
    if (b != NULL) {
        publish(br, &b, 1);
        return 1;
    }
    if (errno == EINPROGRESS) {
        br->req_pending = true;
        br->st.async_waits++;
        return 0;
    }
    return -errno;
}

/* Tops the ring up to full; when the budget stops it with the ring at or
 * below its low-water mark (or receives parked), waits on the loop; when
 * the ring is comfortably full again, stops waiting. Then re-arms the
 * parked receives if the ring holds buffers. Returns 0 or the refill's
 * error other than ENOBUFS. */
static int refill_and_fire(zp_bufring *br)
{
    int err = 0;
    for (int round = 0; round < 4; round++) {
        err = top_up(br, br->entries);
        if (err != -ENOBUFS)
            break;
        if (br->in_ring > br->low_water && br->parked.n == 0)
            break;
        int rc = want_memory(br);
        if (rc <= 0) {
            if (rc < 0)
                err = rc;
            break;
        }
    }
    if (err == -ENOBUFS)
        err = 0;
    if (br->req_pending && br->in_ring > br->low_water && br->parked.n == 0) {
        /* enough buffers: stop holding a place in the budget's queue
         * (a waiter closes the pool's fast puts). A buffer already handed
         * to the request is given back by the cancel. */
        if (zp_cancel(&br->req) == 0)
            br->req_pending = false;
    }
    fire_parked(br);
    return err;
}

/* zp_loop_dispatch on the owner thread: memory came back. */
static void on_memory(void *buf, int err, void *arg)
{
    zp_bufring *br = arg;
    br->req_pending = false;
    if (buf == NULL) {
        br->last_error = -err;
        return;
    }
    br->st.async_grants++;
    if (incremental(br))
        drain_remote(br);
    if (br->nfree > 0) {
        publish(br, &buf, 1);
    } else {
        zp_cache_put(br->cache, buf);
        br->st.returned++;
    }
    (void)refill_and_fire(br);
}

/* ------------------------------------------------------------- lifecycle */

ZP_URING_API void zp_bufring_config_init(zp_bufring_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->struct_size = sizeof *cfg;
    cfg->low_water = UINT32_MAX; /* entries / 4 */
    cfg->batch = 32;
}

static bool pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

static void free_ring(zp_bufring *br)
{
    if (br->br != NULL)
        munmap(br->br, br->br_bytes);
    free(br->slots);
    free(br->free_ids);
    free(br->scratch);
    free(br);
}

ZP_URING_API int zp_bufring_create(const zp_bufring_config *cfg, zp_bufring **out)
{
    if (out != NULL)
        *out = NULL;
    if (cfg == NULL || out == NULL)
        return zp_error_set(EINVAL, "zp_bufring_create: %s is NULL", cfg == NULL ? "cfg" : "out");
    if (cfg->struct_size != sizeof *cfg)
        return zp_error_set(EINVAL, "zp_bufring_create: struct_size %zu, expected %zu "
                            "(use zp_bufring_config_init)", cfg->struct_size, sizeof *cfg);
    if (cfg->ring == NULL || cfg->pool == NULL || cfg->loop == NULL || cfg->rearm == NULL)
        return zp_error_set(EINVAL, "zp_bufring_create: %s is NULL",
                            cfg->ring == NULL ? "ring" : cfg->pool == NULL ? "pool"
                            : cfg->loop == NULL ? "loop" : "rearm");
    if (cfg->bgid > 0xffff)
        return zp_error_set(EINVAL, "zp_bufring_create: bgid %u is above 65535", cfg->bgid);
    if (!pow2(cfg->entries) || cfg->entries > BR_MAX_ENTRIES)
        return zp_error_set(EINVAL, "zp_bufring_create: entries %u is not a power of two "
                            "in 1 .. %u", cfg->entries, BR_MAX_ENTRIES);
    if (!pow2(cfg->buf_size) || cfg->buf_size > ((size_t)1 << 31))
        return zp_error_set(EINVAL, "zp_bufring_create: buf_size %zu is not a power of two "
                            "up to 2 GiB", cfg->buf_size);
    if (cfg->batch == 0 || cfg->batch > BR_MAX_BATCH)
        return zp_error_set(EINVAL, "zp_bufring_create: batch %u is not in 1 .. %u",
                            cfg->batch, BR_MAX_BATCH);
    if ((cfg->flags & ~ZP_BUFRING_INCREMENTAL) != 0)
        return zp_error_set(EINVAL, "zp_bufring_create: unknown flags 0x%x",
                            cfg->flags & ~ZP_BUFRING_INCREMENTAL);
    unsigned low = cfg->low_water == UINT32_MAX ? cfg->entries / 4 : cfg->low_water;
    if (low >= cfg->entries)
        return zp_error_set(EINVAL, "zp_bufring_create: low_water %u is not below entries %u",
                            low, cfg->entries);

    zp_bufring *br = calloc(1, sizeof *br);
    if (br == NULL)
        return -ENOMEM;
    br->ring = cfg->ring;
    br->pool = cfg->pool;
    br->loop = cfg->loop;
    br->buf_size = cfg->buf_size;
    br->entries = cfg->entries;
    br->mask = cfg->entries - 1;
    br->low_water = low;
    br->batch = cfg->batch;
    br->flags = cfg->flags;
    br->bgid = (uint16_t)cfg->bgid;
    br->rearm = cfg->rearm;
    br->arg = cfg->arg;
    br->st.struct_size = sizeof br->st;
    br->st.entries = cfg->entries;
    br->slots = calloc(cfg->entries, sizeof *br->slots);
    br->free_ids = malloc(cfg->entries * sizeof *br->free_ids);
    br->scratch = malloc(cfg->batch * sizeof *br->scratch);
    long page = sysconf(_SC_PAGESIZE);
    br->br_bytes = (cfg->entries * sizeof(struct io_uring_buf) + (size_t)page - 1) &
                   ~((size_t)page - 1);
    /* The ring memory must be page-aligned (the kernel pins its pages): an
     * anonymous mapping of its own, zeroed, so the tail starts at 0. */
    void *mem = mmap(NULL, br->br_bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    br->br = mem == MAP_FAILED ? NULL : mem;
    if (br->slots == NULL || br->free_ids == NULL || br->scratch == NULL || br->br == NULL) {
        free_ring(br);
        return -ENOMEM;
    }
    /* ids handed out smallest first (popped from the top) */
    for (unsigned i = 0; i < cfg->entries; i++)
        br->free_ids[i] = (uint16_t)(cfg->entries - 1 - i);
    br->nfree = cfg->entries;

    /* buf_size must be one of the pool's classes (not a smaller size the
     * class above serves, not an oversize buffer mapped per get) */
    zp_stats ps;
    memset(&ps, 0, sizeof ps);
    ps.struct_size = sizeof ps;
    bool is_class = false;
    if (zp_stats_read(cfg->pool, &ps) == 0)
        for (uint32_t i = 0; i < ps.nclasses && i < ZP_MAX_CLASSES; i++)
            is_class |= ps.classes[i].size == cfg->buf_size;
    if (!is_class) {
        free_ring(br);
        return zp_error_set(EINVAL, "zp_bufring_create: buf_size %zu is not one of the "
                            "pool's size classes", cfg->buf_size);
    }

    int rc = zp_cache_create(cfg->pool, &br->cache);
    if (rc != 0) {
        free_ring(br);
        return rc;
    }

    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)br->br;
    reg.ring_entries = cfg->entries;
    reg.bgid = (uint16_t)cfg->bgid;
    if (cfg->flags & ZP_BUFRING_INCREMENTAL)
        BR_REG_FLAGS(reg) = BR_PBUF_RING_INC;
    rc = io_uring_register_buf_ring(cfg->ring, &reg, 0);
    if (rc != 0) {
        zp_cache_destroy(br->cache);
        free_ring(br);
        /* EINVAL after our own checks: the kernel does not know the
         * opcode or the flag */
        if (rc == -EINVAL)
            return zp_error_set(EOPNOTSUPP, "zp_bufring_create: the kernel refused the "
                                "buffer ring%s", (cfg->flags & ZP_BUFRING_INCREMENTAL)
                                ? " with incremental consumption (kernel 6.12+)" : " (5.19+)");
        if (rc == -EEXIST)
            return zp_error_set(EEXIST, "zp_bufring_create: buffer group %u is already "
                                "registered on this ring", cfg->bgid);
        return zp_error_set(rc, "zp_bufring_create: io_uring_register_buf_ring failed");
    }

    rc = refill_and_fire(br);
    if (rc == 0 && br->in_ring == 0 && !br->req_pending)
        rc = -ENOBUFS; /* not one buffer, and no wait possible */
    if (rc != 0) {
        br->last_error = 0;
        (void)zp_bufring_destroy(br);
        return rc == -ENOBUFS
                   ? zp_error_set(ENOBUFS, "zp_bufring_create: not one buffer of %zu bytes "
                                  "fits the pool's budget", cfg->buf_size)
                   : zp_error_set(rc, "zp_bufring_create: filling the ring failed");
    }
    *out = br;
    return 0;
}

ZP_URING_API int zp_bufring_destroy(zp_bufring *br)
{
    if (br == NULL)
        return 0;
    if (atomic_load_explicit(&br->slices_held, memory_order_acquire) != 0)
        return -EBUSY;
    if (br->req_pending) {
        (void)zp_cancel(&br->req); /* gives back a buffer it was handed */
        br->req_pending = false;
    }
    /* the kernel lets go of the ring's memory and buffers first */
    (void)io_uring_unregister_buf_ring(br->ring, br->bgid);
    /* forgotten waits: not parked any more (their storage may be reused) */
    while (br->parked.head != NULL)
        list_unlink(br->parked.head);
    if (incremental(br))
        drain_remote(br);
    unsigned n = 0;
    for (unsigned bid = 0; bid < br->entries; bid++) {
        slot *s = &br->slots[bid];
        if (s->buf == NULL || !s->in_kernel)
            continue;
        br->scratch[n++] = s->buf;
        s->buf = NULL;
        s->in_kernel = 0;
        br->st.returned++;
        if (n == br->batch) {
            zp_cache_put_batch(br->cache, br->scratch, n);
            n = 0;
        }
    }
    zp_cache_put_batch(br->cache, br->scratch, n);
    br->in_ring = 0;
    zp_cache_destroy(br->cache); /* its cached buffers go to the depot */
    free_ring(br);
    return 0;
}

/* ------------------------------------------------------------- hot path */

ZP_URING_API int zp_bufring_take(zp_bufring *br, const struct io_uring_cqe *cqe,
                                 zp_bufring_buf *out)
{
    if (br == NULL || cqe == NULL)
        return -EINVAL;
    if (!(cqe->flags & IORING_CQE_F_BUFFER))
        return -ENOENT;
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    if (bid >= br->entries || br->slots[bid].buf == NULL || !br->slots[bid].in_kernel)
        return -EINVAL;
    slot *s = &br->slots[bid];
    size_t len = cqe->res > 0 ? (size_t)cqe->res : 0;
    zp_bufring_buf b = {.buf = s->buf, .bid = bid, .len = len};
    if (!incremental(br)) {
        b.data = s->buf;
        s->buf = NULL;
        s->in_kernel = 0;
        br->free_ids[br->nfree++] = (uint16_t)bid;
        br->in_ring--;
    } else {
        /* one slice: the data starts where the previous receive of this
         * buffer ended. A zero-length completion is not taken as the end
         * of the buffer (the kernel may still hold it); it is finished
         * only when a completion with data comes without BUF_MORE. */
        b.data = (unsigned char *)s->buf + s->off;
        b.more = (cqe->flags & BR_CQE_F_BUF_MORE) != 0 || len == 0;
        s->off += (uint32_t)len;
        /* relaxed: the owner is the only one adding; the slice reaches
         * another thread through the application's own hand-over */
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&br->slices_held, 1, memory_order_relaxed);
        if (!b.more) {
            s->in_kernel = 0;
            br->in_ring--;
            /* drop the kernel's reference; the slice just taken keeps the
             * count above zero, so the last release frees it. Release:
             * orders the owner's slot writes before that release's
             * acquire. */
            atomic_fetch_sub_explicit(&s->refs, BR_KREF, memory_order_release);
        }
    }
    br->st.taken++;
    if (out != NULL)
        *out = b;
    /* Low: refill, unless the async request waits: then the budget is
     * known to be spent, a get would only fail (after the pool tried to
     * trim), and the refill comes with the request's grant, when memory
     * is really back. */
    if (br->in_ring <= br->low_water && !br->req_pending)
        (void)refill_and_fire(br);
    else if (br->parked.n != 0)
        fire_parked(br); /* this completion was one the kernel had picked
                            before a receive found the ring empty */
    return 0;
}

ZP_URING_API void *zp_bufring_buffer(const zp_bufring *br, unsigned bid)
{
    if (br == NULL || bid >= br->entries || !br->slots[bid].in_kernel)
        return NULL;
    return br->slots[bid].buf;
}

ZP_URING_API void zp_bufring_put(zp_bufring *br, void *buf)
{
    if (br == NULL || buf == NULL)
        return;
    /* Into the handle: the next refill takes it from there. Not straight
     * into the ring: tried, and no faster (zp_bench_uring, 1,024
     * connections: 64-70k msgs/s either way), while this way a buffer
     * coming back while the ring waits for memory goes through the pool,
     * to the first in its budget's line. */
    zp_cache_put(br->cache, buf);
}

ZP_URING_API int zp_bufring_release(zp_bufring *br, unsigned bid)
{
    if (br == NULL || !incremental(br) || bid >= br->entries)
        return -EINVAL;
    slot *s = &br->slots[bid];
    unsigned held = atomic_load_explicit(&s->refs, memory_order_relaxed);
    do {
        /* no slice held: nothing to release */
        if ((held & ~BR_KREF) == 0)
            return -EINVAL;
        /* acq_rel: release orders this thread's use of the slice before
         * the buffer's reuse; acquire lets the last releaser see the
         * owner's writes (buf) and the other releasers' */
    } while (!atomic_compare_exchange_weak_explicit(&s->refs, &held, held - 1,
                                                    memory_order_acq_rel,
                                                    memory_order_relaxed));
    atomic_fetch_sub_explicit(&br->slices_held, 1, memory_order_release);
    if (held == 1) {
        /* the last reference, the kernel done with it: back to the pool,
         * and its id back to the owner through the lock-free stack */
        zp_put(br->pool, s->buf);
        atomic_fetch_add_explicit(&br->returned_remote, 1, memory_order_relaxed);
        unsigned head = atomic_load_explicit(&br->remote_head, memory_order_relaxed);
        do
            atomic_store_explicit(&s->next, head, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&br->remote_head, &head, bid + 1,
                                                      memory_order_release,
                                                      memory_order_relaxed));
    }
    return 0;
}

ZP_URING_API int zp_bufring_refill(zp_bufring *br)
{
    if (br == NULL)
        return -EINVAL;
    uint64_t before = br->st.added;
    int rc = refill_and_fire(br);
    if (rc < 0)
        return rc;
    return (int)(br->st.added - before);
}

ZP_URING_API int zp_bufring_park(zp_bufring *br, zp_bufring_wait *w, uint64_t token)
{
    if (br == NULL || w == NULL)
        return -EINVAL;
    wait_node *n = (wait_node *)w;
    /* A wait is parked when it is on one of our lists; its storage is the
     * caller's, so only ours is trusted: a wait never parked must be zeroed
     * (ZP_BUFRING_WAIT_INIT semantics: the caller zero-initialises it). */
    if (n->list == &br->parked || n->list == &br->firing)
        return -EALREADY;
    int rc = 0;
    if (br->in_ring <= br->low_water && !br->req_pending)
        rc = top_up(br, br->entries);
    if (ring_has_buffers(br)) {
        br->st.rearm_now++;
        return 1;
    }
    if (rc != 0 && rc != -ENOBUFS)
        return rc;
    n->token = token;
    list_push(&br->parked, n);
    br->st.parks++;
    rc = want_memory(br);
    if (rc < 0) {
        list_unlink(n);
        br->st.parks--;
        return rc;
    }
    if (rc > 0) {
        /* room came back between the refill and the request */
        list_unlink(n);
        br->st.parks--;
        br->st.rearm_now++;
        (void)top_up(br, br->entries);
        return 1;
    }
    return 0;
}

ZP_URING_API int zp_bufring_unpark(zp_bufring *br, zp_bufring_wait *w)
{
    if (br == NULL || w == NULL)
        return -EINVAL;
    wait_node *n = (wait_node *)w;
    if (n->list != &br->parked && n->list != &br->firing)
        return -ENOENT;
    list_unlink(n);
    br->st.unparks++;
    return 0;
}

/* ----------------------------------------------------------------- stats */

ZP_URING_API int zp_bufring_stats_read(const zp_bufring *br, zp_bufring_stats *out)
{
    if (br == NULL || out == NULL || out->struct_size < sizeof *out)
        return -EINVAL;
    *out = br->st;
    out->in_ring = br->in_ring;
    out->parked = br->parked.n + br->firing.n;
    out->slices_held = atomic_load_explicit(&br->slices_held, memory_order_relaxed);
    out->returned += atomic_load_explicit(&br->returned_remote, memory_order_relaxed);
    return 0;
}

ZP_URING_API unsigned zp_bufring_bgid(const zp_bufring *br)
{
    return br == NULL ? 0 : br->bgid;
}

ZP_URING_API size_t zp_bufring_buf_size(const zp_bufring *br)
{
    return br == NULL ? 0 : br->buf_size;
}

ZP_URING_API zp_pool *zp_bufring_pool(const zp_bufring *br)
{
    return br == NULL ? NULL : br->pool;
}
