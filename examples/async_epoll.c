/*
 * async_epoll.c — an epoll loop that never blocks on memory.
 *
 * The loop thread turns NJOBS jobs into buffers: for each one it asks the
 * pool for a buffer with zp_get_async, fills it and hands it to a worker
 * thread, which checks it and puts it back. The pool's budget is tiny (16
 * buffers for 2000 jobs), so most requests cannot be served at once:
 * zp_get_async says EINPROGRESS and the loop goes on with its other work
 * (here: waiting in epoll). When a worker's zp_put makes room, the loop's
 * descriptor (zp_loop_fd) turns readable; zp_loop_dispatch then runs the
 * request's callback on the loop thread, with the buffer.
 *
 * Exits 0 when every job was done and verified, 1 otherwise.
 *
 *   cc async_epoll.c $(pkg-config --cflags --libs zeropool) -pthread
 */
#define _GNU_SOURCE
#include <zeropool.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define NJOBS 2000
#define JOB_BYTES (64 * 1024)
#define BUDGET_BYTES (1024 * 1024) /* 4 slabs of 256 KiB: 16 buffers */
#define MAX_WAITING 64             /* requests in flight */
#define NWORKERS 2

typedef struct job {
    zp_request req; /* the request's storage: no allocation per request */
    int id;
    int queued;     /* zp_get_async said EINPROGRESS */
    void *buf;
} job;

static zp_pool *pool;
static job jobs[NJOBS];
static int waiting;             /* requests queued now (loop thread) */
static pthread_t loop_thread;

/* the hand-off to the workers: a queue of jobs */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static job *queue[NJOBS];
static int q_head, q_tail, q_closed;
static atomic_int done, bad;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", what, zp_strerror(rc));
        exit(1);
    }
}

static unsigned char pattern(int id, size_t i)
{
    return (unsigned char)(id * 31 + i * 7 + (i >> 9));
}

/* A buffer for job j: at once from the loop, or from zp_loop_dispatch. */
static void on_buffer(void *buf, int err, void *arg)
{
    job *j = arg;
    if (buf == NULL) {
        fprintf(stderr, "job %d: %s\n", j->id, strerror(err));
        exit(1);
    }
    if (!pthread_equal(pthread_self(), loop_thread))
        atomic_fetch_add(&bad, 1); /* never: callbacks run in dispatch */
    if (j->queued)
        waiting--;
    j->buf = buf;
    for (size_t i = 0; i < JOB_BYTES; i += 64)
        ((unsigned char *)buf)[i] = pattern(j->id, i);
    pthread_mutex_lock(&q_lock);
    queue[q_tail++] = j;
    pthread_cond_signal(&q_cond);
    pthread_mutex_unlock(&q_lock);
}

/* A worker: checks each job's buffer, then gives it back to the pool. */
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
        job *j = queue[q_head++];
        pthread_mutex_unlock(&q_lock);
        for (size_t i = 0; i < JOB_BYTES; i += 64)
            if (((unsigned char *)j->buf)[i] != pattern(j->id, i))
                atomic_fetch_add(&bad, 1);
        usleep(50); /* the work */
        zp_put(pool, j->buf); /* may make room: the loop's fd turns readable */
        atomic_fetch_add(&done, 1);
    }
}

int main(void)
{
    zp_budget *budget;
    zp_loop *loop;
    zp_config cfg;
    pthread_t workers[NWORKERS];
    int next = 0, dispatches = 0;

    check(zp_budget_create(BUDGET_BYTES, &budget), "zp_budget_create");
    zp_config_init(&cfg);
    cfg.budget = budget;
    cfg.name = "jobs";
    /* No thread caches: a worker's put goes straight to the shared depot,
     * where the loop's request finds it. (With caches, a buffer a worker
     * put before the loop waited would sit in that idle worker's cache, out
     * of the loop's reach: see "budgets" in zeropool.h.) */
    cfg.cache_depth = 0;
    check(zp_pool_create(&cfg, &pool), "zp_pool_create");
    check(zp_loop_create(&loop), "zp_loop_create");
    loop_thread = pthread_self();
    for (int i = 0; i < NWORKERS; i++)
        if (pthread_create(&workers[i], NULL, worker, NULL) != 0)
            die("pthread_create");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, zp_loop_fd(loop), &ev) != 0)
        die("epoll");
    while (next < NJOBS || waiting > 0) {
        while (next < NJOBS && waiting < MAX_WAITING) {
            job *j = &jobs[next];
            j->id = next++;
            void *buf = zp_get_async(pool, JOB_BYTES, loop, &j->req, on_buffer, j);
            if (buf != NULL)
                on_buffer(buf, 0, j);       /* served at once: no callback */
            else if (errno == EINPROGRESS) {
                j->queued = 1;              /* on_buffer runs from dispatch */
                waiting++;
            } else
                die("zp_get_async");
        }
        if (waiting == 0)
            continue;                       /* all served at once: nothing to wait for */
        int n = epoll_wait(ep, &ev, 1, 10000);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        if (n == 0) {
            fprintf(stderr, "no buffer came back within 10 s\n");
            return 1;
        }
        if (n > 0 && zp_loop_dispatch(loop) > 0) /* runs ready callbacks here */
            dispatches++;
    }

    pthread_mutex_lock(&q_lock);
    q_closed = 1;
    pthread_cond_broadcast(&q_cond);
    pthread_mutex_unlock(&q_lock);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(workers[i], NULL);

    int queued = 0;
    for (int i = 0; i < NJOBS; i++)
        queued += jobs[i].queued;
    zp_stats st = {.struct_size = sizeof st};
    zp_budget_stats bs = {.struct_size = sizeof bs};
    if (zp_stats_read(pool, &st) != 0 || zp_budget_read(budget, &bs) != 0)
        die("stats");
    printf("%d jobs done (%d waited for a buffer, served by %d dispatches); "
           "budget peak %llu of %llu bytes; %llu bytes outstanding\n",
           atomic_load(&done), queued, dispatches, (unsigned long long)bs.peak_reserved,
           (unsigned long long)bs.max_bytes, (unsigned long long)st.bytes_outstanding);
    int ok = atomic_load(&done) == NJOBS && atomic_load(&bad) == 0 && queued > 0 &&
             st.bytes_outstanding == 0 && bs.peak_reserved <= bs.max_bytes;
    close(ep);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
    zp_budget_destroy(budget);
    if (!ok)
        fprintf(stderr, "FAILED: %d bad buffers or callbacks\n", atomic_load(&bad));
    return ok ? 0 : 1;
}
