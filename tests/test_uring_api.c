/* libzeropool-uring's API: argument errors, the ring filled from the pool, O(1) buffer id <-> pointer, refills in batches at the low-water mark, ENOBUFS parked and re-armed once when memory comes back, unpark, incremental slices, destroy with buffers outstanding counting nothing twice. */
#include "zp_test.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <zeropool/uring.h>

#define BUF 4096
#define BGID 7

static struct io_uring g_ring;
static char g_why[256];
static int g_ring_ok;

typedef struct rearms {
    int calls;
    uint64_t token;
    zp_bufring_wait *w;
} rearms;

static void on_rearm(zp_bufring *br, zp_bufring_wait *w, uint64_t token, void *arg)
{
    rearms *r = arg;
    (void)br;
    r->calls++;
    r->token = token;
    r->w = w;
}

static void need_ring(void)
{
    if (!g_ring_ok)
        zpt_skip("%s", g_why);
}

static zp_bufring_config config(zp_pool *pool, zp_loop *loop, unsigned entries, rearms *r)
{
    zp_bufring_config c;
    zp_bufring_config_init(&c);
    c.ring = &g_ring;
    c.pool = pool;
    c.loop = loop;
    c.bgid = BGID;
    c.buf_size = BUF;
    c.entries = entries;
    c.rearm = on_rearm;
    c.arg = r;
    return c;
}

/* A completion as the kernel writes it for buffer bid (no kernel involved:
 * for the bookkeeping alone). */
static void fake_cqe(struct io_uring_cqe *c, unsigned bid, int res)
{
    memset(c, 0, sizeof *c);
    c->res = res;
    c->flags = IORING_CQE_F_BUFFER | (bid << IORING_CQE_BUFFER_SHIFT);
}

/* One single-shot recv on fd selecting a buffer of BGID; its completion. */
static int recv_one(int fd, struct io_uring_cqe *out)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&g_ring);
    io_uring_prep_recv(s, fd, NULL, BUF, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = BGID;
    io_uring_sqe_set_data64(s, 1);
    return zpt_uring_wait(&g_ring, out, 5000);
}

static void test_errors(void **state)
{
    (void)state;
    need_ring();
    zp_pool *pool = ZPT_POOL(.max_class = 64 * ZPT_KiB);
    zp_loop *loop = zpt_loop_new();
    rearms r = {0};
    zp_bufring *br = (zp_bufring *)&r; /* must be cleared on failure */
    zp_bufring_config c = config(pool, loop, 64, &r);

    assert_int_equal(zp_bufring_create(NULL, &br), -EINVAL);
    assert_null(br);
    assert_int_equal(zp_bufring_create(&c, NULL), -EINVAL);
#define BAD(field, value)                                                     \
    do {                                                                      \
        zp_bufring_config b = c;                                              \
        b.field = value;                                                      \
        assert_int_equal(zp_bufring_create(&b, &br), -EINVAL);                \
        assert_null(br);                                                      \
    } while (0)
    BAD(struct_size, 8);
    BAD(ring, NULL);
    BAD(pool, NULL);
    BAD(loop, NULL);
    BAD(rearm, NULL);
    BAD(bgid, 65536);
    BAD(entries, 0);
    BAD(entries, 48);
    BAD(entries, 65536);
    BAD(buf_size, 3000);
    BAD(buf_size, 1024); /* below min_class: the pool serves 4 KiB, not a class of it */
    BAD(buf_size, 128 * ZPT_KiB); /* above max_class: oversize, no class */
    BAD(low_water, 64);
    BAD(batch, 0);
    BAD(batch, 4096);
    BAD(flags, 0x80);
#undef BAD
    /* the reason is there for zp_strerror */
    zp_bufring_config odd = c;
    odd.buf_size = 3000;
    assert_int_equal(zp_bufring_create(&odd, &br), -EINVAL);
    assert_true(zpt_contains_nocase(zp_strerror(-EINVAL), "buf_size 3000"));
    /* no failure left anything behind */
    zp_stats s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 0);

    /* a group taken twice on one ring: the kernel's -EEXIST, nothing held */
    assert_int_equal(zp_bufring_create(&c, &br), 0);
    zp_bufring *second = NULL;
    assert_int_equal(zp_bufring_create(&c, &second), -EEXIST);
    assert_null(second);
    assert_true(zpt_contains_nocase(zp_strerror(-EEXIST), "already registered"));
    assert_int_equal(zpt_read(pool).bytes_outstanding, 64 * BUF);
    assert_int_equal(zp_bufring_bgid(br), BGID);
    assert_int_equal(zp_bufring_buf_size(br), BUF);
    assert_ptr_equal(zp_bufring_pool(br), pool);

    /* completions that are not this ring's */
    struct io_uring_cqe none, far;
    fake_cqe(&none, 0, 10);
    none.flags = 0;
    zp_bufring_buf b;
    assert_int_equal(zp_bufring_take(br, &none, &b), -ENOENT);
    fake_cqe(&far, 64, 10);
    assert_int_equal(zp_bufring_take(br, &far, &b), -EINVAL);
    assert_int_equal(zp_bufring_take(NULL, &far, &b), -EINVAL);
    assert_int_equal(zp_bufring_take(br, NULL, &b), -EINVAL);
    assert_int_equal(zp_bufring_release(br, 0), -EINVAL); /* not incremental */
    assert_null(zp_bufring_buffer(br, 64));
    assert_int_equal(zp_bufring_park(br, NULL, 0), -EINVAL);
    zp_bufring_wait w = ZP_BUFRING_WAIT_INIT;
    assert_int_equal(zp_bufring_unpark(br, &w), -ENOENT);
    zp_bufring_stats st = {.struct_size = 8};
    assert_int_equal(zp_bufring_stats_read(br, &st), -EINVAL);
    assert_int_equal(zp_bufring_refill(NULL), -EINVAL);

    assert_int_equal(zp_bufring_destroy(br), 0);
    assert_int_equal(zp_bufring_destroy(NULL), 0);
    assert_int_equal(zpt_read(pool).bytes_outstanding, 0);

    /* a budget that can never hold one buffer (nor the slab it is carved
     * from): -ENOBUFS, nothing registered (the group is free again) */
    zp_pool *tiny = ZPT_POOL(.max_class = 64 * ZPT_KiB, .max_bytes = 64 * ZPT_KiB);
    zp_bufring_config t = config(tiny, loop, 64, &r);
    assert_int_equal(zp_bufring_create(&t, &br), -ENOBUFS);
    assert_null(br);
    assert_int_equal(zp_bufring_create(&c, &br), 0);
    assert_int_equal(zp_bufring_destroy(br), 0);
    zp_pool_destroy(tiny);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
}

/* Filled from the pool; every id maps to its own buffer, in O(1) both ways;
 * refills in batches at the low-water mark. */
static void test_fill_and_ids(void **state)
{
    (void)state;
    need_ring();
    zp_pool *pool = ZPT_POOL(.max_class = 64 * ZPT_KiB);
    zp_loop *loop = zpt_loop_new();
    rearms r = {0};
    zp_bufring_config c = config(pool, loop, 128, &r);
    c.low_water = 32;
    c.batch = 16;
    zp_bufring *br;
    assert_int_equal(zp_bufring_create(&c, &br), 0);
    zp_bufring_stats st = {.struct_size = sizeof st};
    assert_int_equal(zp_bufring_stats_read(br, &st), 0);
    assert_int_equal(st.entries, 128);
    assert_int_equal(st.in_ring, 128);
    assert_int_equal(st.added, 128);
    assert_int_equal(st.batches, 128 / 16);
    assert_int_equal(zpt_read(pool).bytes_outstanding, 128 * BUF);

    void *by_id[128];
    for (unsigned i = 0; i < 128; i++) {
        by_id[i] = zp_bufring_buffer(br, i);
        assert_non_null(by_id[i]);
        assert_int_equal(zp_capacity(pool, by_id[i]), BUF);
        for (unsigned j = 0; j < i; j++)
            assert_ptr_not_equal(by_id[i], by_id[j]);
    }

    /* take 96 (ids in any order): each the buffer its id named, now ours */
    void *taken[96];
    for (unsigned k = 0; k < 96; k++) {
        unsigned bid = (k * 37) % 128;
        struct io_uring_cqe cqe;
        fake_cqe(&cqe, bid, 100 + (int)k);
        zp_bufring_buf b;
        assert_int_equal(zp_bufring_take(br, &cqe, &b), 0);
        assert_ptr_equal(b.buf, by_id[bid]);
        assert_ptr_equal(b.data, b.buf);
        assert_int_equal(b.len, 100 + k);
        assert_int_equal(b.bid, bid);
        assert_int_equal(b.more, 0);
        taken[k] = b.buf;
        if (k < 95) {
            /* the same id again before the kernel got it back: not ours */
            assert_int_equal(zp_bufring_take(br, &cqe, &b), -EINVAL);
        }
    }
    /* at 32 left (the low-water mark) it topped up, in batches of 16 */
    assert_int_equal(zp_bufring_stats_read(br, &st), 0);
    assert_int_equal(st.taken, 96);
    assert_int_equal(st.in_ring, 128);
    assert_int_equal(st.added, 128 + 96);
    assert_int_equal(st.batches, 128 / 16 + 96 / 16);
    assert_int_equal(zpt_read(pool).bytes_outstanding, (128 + 96) * BUF);

    /* the application puts them back from another thread */
    zpt_xfer x;
    zpt_xfer_start(&x, pool);
    for (unsigned k = 0; k < 96; k += ZPT_XFER_BATCH)
        zpt_xfer_hand(&x, &taken[k]);
    zpt_xfer_wait_put(&x, 96 / ZPT_XFER_BATCH);
    zpt_xfer_stop(&x);
    assert_int_equal(zpt_read(pool).bytes_outstanding, 128 * BUF);

    assert_int_equal(zp_bufring_destroy(br), 0);
    zp_stats s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.gets, s.puts); /* nothing counted twice */
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
}

/* Real receives; destroy while the application holds some buffers: the
 * ring's own go back, the held ones stay valid and are put later. */
static void test_destroy_outstanding(void **state)
{
    (void)state;
    need_ring();
    zp_pool *pool = ZPT_POOL(.max_class = 64 * ZPT_KiB);
    zp_loop *loop = zpt_loop_new();
    rearms r = {0};
    zp_bufring_config c = config(pool, loop, 16, &r);
    zp_bufring *br;
    assert_int_equal(zp_bufring_create(&c, &br), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);

    void *held[5];
    for (int k = 0; k < 5; k++) {
        char msg[64];
        int n = snprintf(msg, sizeof msg, "message %d", k);
        assert_int_equal(write(sv[1], msg, (size_t)n), n);
        struct io_uring_cqe cqe;
        assert_int_equal(recv_one(sv[0], &cqe), 0);
        assert_int_equal(cqe.res, n);
        assert_true(cqe.flags & IORING_CQE_F_BUFFER);
        unsigned bid = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
        void *expect = zp_bufring_buffer(br, bid);
        zp_bufring_buf b;
        assert_int_equal(zp_bufring_take(br, &cqe, &b), 0);
        assert_ptr_equal(b.buf, expect);
        assert_memory_equal(b.data, msg, (size_t)n);
        held[k] = b.buf;
    }
    /* outstanding: what the ring holds (not refilled above the low-water
     * mark, 4) and the 5 taken */
    zp_bufring_stats st = {.struct_size = sizeof st};
    assert_int_equal(zp_bufring_stats_read(br, &st), 0);
    assert_int_equal(st.in_ring, 11);
    assert_int_equal(zpt_read(pool).bytes_outstanding, (11 + 5) * BUF);
    assert_int_equal(zp_bufring_destroy(br), 0);
    /* only the 5 held remain outstanding; they are still ours to use */
    zp_stats s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 5 * BUF);
    for (int k = 0; k < 5; k++) {
        memset(held[k], k, BUF);
        zp_put(pool, held[k]);
    }
    s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.gets, s.puts);
    assert_int_equal(s.misuse, 0);
    close(sv[0]);
    close(sv[1]);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
}

/* Budget of 64 buffers, ring of 128: a multishot receive drains it and
 * ends with ENOBUFS; park waits; one put makes the loop readable; the
 * dispatch refills and re-arms exactly once. */
static void test_enobufs_park(void **state)
{
    (void)state;
    need_ring();
    zp_pool *pool = ZPT_POOL(.max_class = 64 * ZPT_KiB, .max_bytes = 256 * ZPT_KiB);
    zp_loop *loop = zpt_loop_new();
    rearms r = {0};
    zp_bufring_config c = config(pool, loop, 128, &r);
    zp_bufring *br;
    assert_int_equal(zp_bufring_create(&c, &br), 0);
    zp_bufring_stats st = {.struct_size = sizeof st};
    assert_int_equal(zp_bufring_stats_read(br, &st), 0);
    assert_int_equal(st.in_ring, 64); /* what the budget holds */
    assert_true(st.exhausted >= 1);

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* the writer never blocks: the receives progress only while this
     * thread waits in io_uring */
    assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
    int big = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    /* 64 full buffers of data and then some */
    unsigned char *data = malloc(65 * BUF);
    zpt_fill(data, 65 * BUF, 15);
    size_t sent = 0;
    ssize_t w0 = write(sv[1], data, 65 * BUF); /* the rest as receives drain it */
    assert_true(w0 > 0);
    sent = (size_t)w0;

    struct io_uring_sqe *s = io_uring_get_sqe(&g_ring);
    io_uring_prep_recv_multishot(s, sv[0], NULL, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = BGID;
    io_uring_sqe_set_data64(s, 2);

    void *held[80];
    int nheld = 0, enobufs = 0;
    size_t got = 0;
    while (!enobufs) {
        if (sent < 65 * BUF) {
            ssize_t w = write(sv[1], data + sent, 65 * BUF - sent);
            if (w > 0)
                sent += (size_t)w;
        }
        struct io_uring_cqe cqe;
        assert_int_equal(zpt_uring_wait(&g_ring, &cqe, 5000), 0);
        if (cqe.flags & IORING_CQE_F_BUFFER) {
            zp_bufring_buf b;
            assert_int_equal(zp_bufring_take(br, &cqe, &b), 0);
            assert_memory_equal(b.data, data + got, b.len);
            got += b.len;
            assert_true(nheld < 80);
            held[nheld++] = b.buf;
        }
        if (!(cqe.flags & IORING_CQE_F_MORE)) {
            assert_int_equal(cqe.res, -ENOBUFS);
            enobufs = 1;
        }
    }
    assert_int_equal(nheld, 64); /* the whole budget, all ours now */
    assert_true(got < 65 * BUF);

    /* the ring is dry and the budget spent: park */
    zp_bufring_wait w = ZP_BUFRING_WAIT_INIT;
    assert_int_equal(zp_bufring_park(br, &w, 42), 0);
    assert_int_equal(zp_bufring_park(br, &w, 42), -EALREADY);
    assert_int_equal(zp_bufring_stats_read(br, &st), 0);
    assert_int_equal(st.parked, 1);
    assert_int_equal(st.async_waits, 1);
    assert_int_equal(zpt_fd_readable(zp_loop_fd(loop), 0), 0);
    assert_int_equal(zpt_dispatch(loop), 0); /* nothing yet */
    assert_int_equal(r.calls, 0);
    /* a second receive parks and goes away: its callback never runs */
    zp_bufring_wait w2 = ZP_BUFRING_WAIT_INIT;
    assert_int_equal(zp_bufring_park(br, &w2, 9), 0);
    assert_int_equal(zp_bufring_unpark(br, &w2), 0);
    assert_int_equal(zp_bufring_unpark(br, &w2), -ENOENT);

    /* memory comes back (another thread's put): the loop says so */
    zpt_xfer x;
    zpt_xfer_start(&x, pool);
    void *batch[ZPT_XFER_BATCH];
    memcpy(batch, held, sizeof batch);
    zpt_xfer_hand(&x, batch);
    zpt_xfer_wait_put(&x, 1);
    zpt_xfer_stop(&x);
    assert_int_equal(zpt_fd_readable(zp_loop_fd(loop), 2000), 1);
    assert_int_equal(zpt_dispatch(loop), 1);
    assert_int_equal(r.calls, 1); /* exactly once, with our token */
    assert_int_equal(r.token, 42);
    assert_ptr_equal(r.w, &w);
    assert_int_equal(zp_bufring_stats_read(br, &st), 0);
    assert_int_equal(st.parked, 0);
    assert_int_equal(st.rearms, 1);
    assert_int_equal(st.async_grants, 1);
    assert_true(st.in_ring >= 1);
    assert_int_equal(zpt_dispatch(loop), 0);
    assert_int_equal(r.calls, 1);

    /* re-armed, the receive gets the rest */
    s = io_uring_get_sqe(&g_ring);
    io_uring_prep_recv_multishot(s, sv[0], NULL, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = BGID;
    io_uring_sqe_set_data64(s, 3);
    while (got < 65 * BUF) {
        if (sent < 65 * BUF) {
            ssize_t wr = write(sv[1], data + sent, 65 * BUF - sent);
            if (wr > 0)
                sent += (size_t)wr;
        }
        struct io_uring_cqe cqe;
        assert_int_equal(zpt_uring_wait(&g_ring, &cqe, 5000), 0);
        if (cqe.flags & IORING_CQE_F_BUFFER) {
            zp_bufring_buf b;
            assert_int_equal(zp_bufring_take(br, &cqe, &b), 0);
            assert_memory_equal(b.data, data + got, b.len);
            got += b.len;
            zp_bufring_put(br, b.buf);
        }
        if (!(cqe.flags & IORING_CQE_F_MORE))
            break;
    }
    assert_int_equal(got, 65 * BUF);

    /* with buffers in the ring, park says: re-arm now */
    assert_int_equal(zp_bufring_park(br, &w2, 7), 1);

    shutdown(sv[1], SHUT_WR); /* ends the multishot receive (EOF) */
    struct io_uring_cqe cqe;
    do {
        assert_int_equal(zpt_uring_wait(&g_ring, &cqe, 5000), 0);
        if (cqe.flags & IORING_CQE_F_BUFFER) {
            zp_bufring_buf b;
            assert_int_equal(zp_bufring_take(br, &cqe, &b), 0);
            zp_bufring_put(br, b.buf);
        }
    } while (cqe.flags & IORING_CQE_F_MORE);
    for (int k = ZPT_XFER_BATCH; k < nheld; k++)
        zp_put(pool, held[k]);
    assert_int_equal(zp_bufring_destroy(br), 0);
    assert_int_equal(r.calls, 1);
    zp_stats ps = zpt_read(pool);
    assert_int_equal(ps.bytes_outstanding, 0);
    assert_true(ps.peak_reserved <= 256 * ZPT_KiB);
    assert_int_equal(ps.gets, ps.puts);
    free(data);
    close(sv[0]);
    close(sv[1]);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
}

/* Incremental consumption: several receives share one buffer, each where
 * the previous one ended; slices released on another thread. */
typedef struct rel {
    zp_bufring *br;
    unsigned bid[8];
    int n, rc;
} rel;

static void *release_all(void *arg)
{
    rel *r = arg;
    for (int i = 0; i < r->n; i++)
        if (zp_bufring_release(r->br, r->bid[i]) != 0)
            r->rc = -1;
    return NULL;
}

static void test_incremental(void **state)
{
    (void)state;
    need_ring();
    zp_pool *pool = ZPT_POOL(.max_class = 64 * ZPT_KiB);
    zp_loop *loop = zpt_loop_new();
    rearms r = {0};
    zp_bufring_config c = config(pool, loop, 8, &r);
    c.flags = ZP_BUFRING_INCREMENTAL;
    c.buf_size = 64 * ZPT_KiB;
    zp_bufring *br;
    int rc = zp_bufring_create(&c, &br);
    if (rc == -EOPNOTSUPP) {
        zp_loop_destroy(loop);
        zp_pool_destroy(pool);
        zpt_skip("the kernel has no incremental buffer consumption (6.12+)");
    }
    assert_int_equal(rc, 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);

    rel rl = {.br = br};
    void *first = NULL;
    for (int k = 0; k < 3; k++) {
        char msg[100];
        memset(msg, 'a' + k, sizeof msg);
        assert_int_equal(write(sv[1], msg, sizeof msg), (ssize_t)sizeof msg);
        struct io_uring_sqe *s = io_uring_get_sqe(&g_ring);
        io_uring_prep_recv(s, sv[0], NULL, 0, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = BGID;
        struct io_uring_cqe cqe;
        assert_int_equal(zpt_uring_wait(&g_ring, &cqe, 5000), 0);
        assert_int_equal(cqe.res, 100);
        zp_bufring_buf b;
        assert_int_equal(zp_bufring_take(br, &cqe, &b), 0);
        if (first == NULL)
            first = b.buf;
        assert_ptr_equal(b.buf, first);                      /* one buffer */
        assert_ptr_equal(b.data, (char *)first + 100 * k);   /* each after the last */
        assert_int_equal(b.more, 1);
        assert_memory_equal(b.data, msg, sizeof msg);
        rl.bid[rl.n++] = b.bid;
    }
    zp_bufring_stats st = {.struct_size = sizeof st};
    assert_int_equal(zp_bufring_stats_read(br, &st), 0);
    assert_int_equal(st.slices_held, 3);
    assert_int_equal(st.in_ring, 8); /* the buffer is still the kernel's */
    assert_int_equal(zp_bufring_destroy(br), -EBUSY);

    pthread_t t;
    zpt_threads_start(&t, 1, release_all, &rl, 0);
    zpt_threads_join(&t, 1);
    assert_int_equal(rl.rc, 0);
    assert_int_equal(zp_bufring_release(br, rl.bid[0]), -EINVAL); /* none held */
    assert_int_equal(zp_bufring_stats_read(br, &st), 0);
    assert_int_equal(st.slices_held, 0);
    assert_int_equal(zp_bufring_destroy(br), 0);
    zp_stats s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.gets, s.puts);
    close(sv[0]);
    close(sv[1]);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_fill_and_ids),
        cmocka_unit_test(test_destroy_outstanding),
        cmocka_unit_test(test_enobufs_park),
        cmocka_unit_test(test_incremental),
    };
    int rc = zpt_uring_init(&g_ring, 64, g_why, sizeof g_why);
    if (rc == -EPERM || rc == -ENOSYS || rc == -EACCES)
        return zpt_skip_all("SKIP: %s", g_why);
    if (rc < 0) {
        fprintf(stderr, "FAIL: %s\n", g_why);
        return ZPT_EXIT_FAIL;
    }
    g_ring_ok = 1;
    rc = ZPT_RUN(tests);
    io_uring_queue_exit(&g_ring);
    return rc;
}
