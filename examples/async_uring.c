/*
 * async_uring.c — an io_uring loop that reads a file into pool buffers
 * and learns through the ring itself when the pool has room.
 *
 * The loop reads NCHUNKS chunks of a file, each into a buffer from a pool
 * whose budget holds only 16 of them. For each chunk it asks for a buffer
 * with zp_get_async; when the pool has room at once, a READ is submitted
 * into it; when not (EINPROGRESS), the chunk waits. The pool's loop
 * descriptor is watched by a POLL_ADD on the same ring: its completion
 * means callbacks are ready, and zp_loop_dispatch runs them, which submit
 * the waiting READs. Worker threads check each chunk read and put its
 * buffer back, which makes room.
 *
 * Exits 0 when every chunk was read and verified, 1 on failure, and 77
 * (skipped) when the kernel or a sandbox refuses io_uring.
 *
 *   cc async_uring.c $(pkg-config --cflags --libs zeropool liburing) -pthread
 */
#define _GNU_SOURCE
#include <zeropool.h>

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NCHUNKS 1024
#define CHUNK (64 * 1024)
#define BUDGET_BYTES (1024 * 1024) /* 16 buffers of 64 KiB */
#define MAX_WAITING 64
#define NWORKERS 2
#define POOL_READY UINT64_MAX      /* user_data of the POLL_ADD */

typedef struct chunk {
    zp_request req;
    int id;
    int queued;
    void *buf;
} chunk;

static zp_pool *pool;
static struct io_uring ring;
static chunk chunks[NCHUNKS];
static int file_fd, waiting, reads_in_flight;

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static chunk *queue[NCHUNKS];
static int q_head, q_tail, q_closed;
static atomic_int done, bad;

static void fail(const char *what, int err)
{
    fprintf(stderr, "%s: %s\n", what, strerror(err < 0 ? -err : err));
    exit(1);
}

static unsigned char pattern(int id, size_t i)
{
    return (unsigned char)(id * 29 + i * 11 + (i >> 10));
}

static struct io_uring_sqe *sqe(void)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&ring);
    if (s == NULL) { /* full: hand the queued ones to the kernel first */
        io_uring_submit(&ring);
        s = io_uring_get_sqe(&ring);
    }
    if (s == NULL)
        fail("io_uring_get_sqe", EBUSY);
    return s;
}

/* A buffer for chunk c (at once, or from zp_loop_dispatch): read into it. */
static void on_buffer(void *buf, int err, void *arg)
{
    chunk *c = arg;
    if (buf == NULL)
        fail("zp_get_async", err);
    if (c->queued)
        waiting--;
    c->buf = buf;
    struct io_uring_sqe *s = sqe();
    io_uring_prep_read(s, file_fd, buf, CHUNK, (uint64_t)c->id * CHUNK);
    io_uring_sqe_set_data64(s, (uint64_t)c->id);
    reads_in_flight++;
}

static void watch_pool(zp_loop *loop)
{
    struct io_uring_sqe *s = sqe();
    io_uring_prep_poll_add(s, zp_loop_fd(loop), POLLIN);
    io_uring_sqe_set_data64(s, POOL_READY);
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&q_lock);
        while (q_head == q_tail && !q_closed)
            pthread_cond_wait(&q_cond, &q_lock);
        if (q_head == q_tail) {
            pthread_mutex_unlock(&q_lock);
            return NULL;
        }
        chunk *c = queue[q_head++];
        pthread_mutex_unlock(&q_lock);
        for (size_t i = 0; i < CHUNK; i++)
            if (((unsigned char *)c->buf)[i] != pattern(c->id, i)) {
                atomic_fetch_add(&bad, 1);
                break;
            }
        zp_put(pool, c->buf); /* room: the ring's POLL_ADD completes */
        atomic_fetch_add(&done, 1);
    }
}

/* A file of NCHUNKS chunks, each filled with its pattern. */
static int make_file(void)
{
    FILE *f = tmpfile();
    static unsigned char data[CHUNK];
    if (f == NULL)
        fail("tmpfile", errno);
    for (int id = 0; id < NCHUNKS; id++) {
        for (size_t i = 0; i < CHUNK; i++)
            data[i] = pattern(id, i);
        if (fwrite(data, 1, CHUNK, f) != CHUNK)
            fail("fwrite", errno);
    }
    fflush(f);
    int fd = dup(fileno(f));
    fclose(f);
    return fd;
}

int main(void)
{
    zp_budget *budget;
    zp_loop *loop;
    zp_config cfg;
    pthread_t workers[NWORKERS];
    int rc, next = 0, polls = 0;

    rc = io_uring_queue_init(64, &ring, 0);
    if (rc == -EPERM || rc == -ENOSYS || rc == -EACCES) {
        printf("SKIP: io_uring is not permitted here (io_uring_queue_init: %s)\n",
               strerror(-rc));
        return 77;
    }
    if (rc < 0)
        fail("io_uring_queue_init", rc);
    if ((rc = zp_budget_create(BUDGET_BYTES, &budget)) != 0)
        fail("zp_budget_create", rc);
    zp_config_init(&cfg);
    cfg.budget = budget;
    cfg.name = "chunks";
    if ((rc = zp_pool_create(&cfg, &pool)) != 0 || (rc = zp_loop_create(&loop)) != 0)
        fail("zeropool setup", rc);
    file_fd = make_file();
    for (int i = 0; i < NWORKERS; i++)
        if (pthread_create(&workers[i], NULL, worker, NULL) != 0)
            fail("pthread_create", EAGAIN);

    watch_pool(loop);
    while (next < NCHUNKS || waiting > 0 || reads_in_flight > 0) {
        while (next < NCHUNKS && waiting < MAX_WAITING) {
            chunk *c = &chunks[next];
            c->id = next++;
            void *buf = zp_get_async(pool, CHUNK, loop, &c->req, on_buffer, c);
            if (buf != NULL) {
                on_buffer(buf, 0, c);
            } else if (errno == EINPROGRESS) {
                c->queued = 1;
                waiting++;
            } else {
                fail("zp_get_async", errno);
            }
        }
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 10};
        io_uring_submit(&ring);
        rc = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
        if (rc == -EINTR)
            continue;
        if (rc < 0)
            fail("no completion within 10 s", rc);
        uint64_t what = io_uring_cqe_get_data64(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&ring, cqe);
        if (what == POOL_READY) { /* the pool's descriptor is readable */
            if (res < 0)
                fail("POLL_ADD on the loop descriptor", res);
            polls++;
            zp_loop_dispatch(loop); /* the callbacks submit their READs */
            watch_pool(loop);       /* one-shot: arm it again */
        } else {
            chunk *c = &chunks[what];
            reads_in_flight--;
            if (res != CHUNK)
                fail("read", res < 0 ? res : EIO);
            pthread_mutex_lock(&q_lock);
            queue[q_tail++] = c;
            pthread_cond_signal(&q_cond);
            pthread_mutex_unlock(&q_lock);
        }
    }

    pthread_mutex_lock(&q_lock);
    q_closed = 1;
    pthread_cond_broadcast(&q_cond);
    pthread_mutex_unlock(&q_lock);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(workers[i], NULL);

    int queued = 0;
    for (int i = 0; i < NCHUNKS; i++)
        queued += chunks[i].queued;
    zp_stats st = {.struct_size = sizeof st};
    zp_budget_stats bs = {.struct_size = sizeof bs};
    zp_stats_read(pool, &st);
    zp_budget_read(budget, &bs);
    printf("%d chunks of %d KiB read and verified (%d waited for a buffer, %d pool "
           "wake-ups through the ring); budget peak %llu of %llu; %llu bytes outstanding\n",
           atomic_load(&done), CHUNK / 1024, queued, polls,
           (unsigned long long)bs.peak_reserved, (unsigned long long)bs.max_bytes,
           (unsigned long long)st.bytes_outstanding);
    int ok = atomic_load(&done) == NCHUNKS && atomic_load(&bad) == 0 && queued > 0 &&
             st.bytes_outstanding == 0 && bs.peak_reserved <= bs.max_bytes;
    io_uring_queue_exit(&ring);
    close(file_fd);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
    zp_budget_destroy(budget);
    if (!ok)
        fprintf(stderr, "FAILED: %d chunks differ\n", atomic_load(&bad));
    return ok ? 0 : 1;
}
