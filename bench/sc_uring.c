/*
 * sc_uring.c — zp_bench_uring: a loopback TCP echo server on io_uring with
 * multishot receives on a provided-buffer ring, fed two ways with the same
 * memory (bench/README.md, "The uring rows"):
 *
 *   pool    libzeropool-uring: a zp_bufring of 4 KiB buffers from a pool
 *           whose budget (max_bytes) is URING_MEM; ENOBUFS parked and
 *           re-armed when memory comes back (zp_bufring_park, the pool's
 *           loop watched by a POLL_ADD on the same ring);
 *   static  the usual hand-written ring: URING_MEM / 4 KiB buffers carved
 *           from one aligned_alloc, registered once; a buffer goes back into the ring
 *           when its send completed, and receives that ended with ENOBUFS
 *           are re-armed then (all of them, as soon as one buffer is back).
 *
 * Both: ring of URING_ENTRIES entries, one multishot receive per
 * connection, the echo sent from the receive's buffer. The client (another
 * thread, epoll) keeps one URING_MSG-byte message in flight on each of C
 * connections (C = 64 and 1,024) and times each round trip. Per repetition:
 * messages per second and the p50 / p99 round trip. Each repetition runs
 * in a child process of its own (server, client, fresh pool or static
 * ring), the two rings alternating, so that drift on a shared machine hits
 * both alike; the highest peak RSS of a ring's children (ru_maxrss, client
 * included) is reported with the pool's peak_reserved.
 *
 * Both threads block in the kernel by design, so the CPU-share check of
 * the other families does not apply: every repetition is kept. Never run
 * by ctest.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zeropool/uring.h>

#include "harness.h"

#define URING_BUF 4096
#define URING_ENTRIES 256
#define URING_MEM ((size_t)1 << 20) /* 256 buffers of 4 KiB, both variants */
#define URING_MSG 1024
#define URING_BGID 3
#define URING_MAX_CONNS 1024
#define URING_QUEUE 16 /* buffers one connection may have queued to send */
#define MAX_SAMPLES (1 << 21)

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_POOL, OP_STOP };
#define UD(op, i) (((uint64_t)(op) << 32) | (uint32_t)(i))

typedef struct sconn {
    int fd, idx;
    int armed, sending, parked, dead;
    zp_bufring_wait wait;
    struct { void *buf; unsigned len, off; } q[URING_QUEUE];
    unsigned qh, qt;
    struct sconn *next_parked; /* static variant */
} sconn;

typedef struct server {
    int pool_fed;
    struct io_uring ring;
    int lfd, stop_fd, nconns, want;
    sconn *c[URING_MAX_CONNS];
    /* pool variant */
    zp_pool *pool;
    zp_loop *loop;
    zp_bufring *br;
    /* static variant */
    struct io_uring_buf_ring *sring;
    unsigned char *sbase; /* URING_MEM bytes: buffer i at sbase + i * URING_BUF */
    uint16_t stail;
    int savail;
    sconn *parked;
    /* counters */
    unsigned long long exhaustions;
    atomic_int ready;
} server;

static struct io_uring_sqe *get_sqe(server *s)
{
    struct io_uring_sqe *q = io_uring_get_sqe(&s->ring);
    if (q == NULL) {
        io_uring_submit(&s->ring);
        q = io_uring_get_sqe(&s->ring);
    }
    if (q == NULL)
        die("io_uring_get_sqe");
    return q;
}

static void arm(server *s, sconn *c)
{
    struct io_uring_sqe *q = get_sqe(s);
    io_uring_prep_recv_multishot(q, c->fd, NULL, 0, 0);
    q->flags |= IOSQE_BUFFER_SELECT;
    q->buf_group = URING_BGID;
    io_uring_sqe_set_data64(q, UD(OP_RECV, c->idx));
    c->armed = 1;
}

static void send_next(server *s, sconn *c)
{
    if (c->sending || c->qh == c->qt)
        return;
    unsigned i = c->qh % URING_QUEUE;
    struct io_uring_sqe *q = get_sqe(s);
    io_uring_prep_send(q, c->fd, (char *)c->q[i].buf + c->q[i].off, c->q[i].len - c->q[i].off,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(q, UD(OP_SEND, c->idx));
    c->sending = 1;
}

/* ------------------------------------------------- the static ring */

static void static_add(server *s, void *buf, unsigned bid)
{
    io_uring_buf_ring_add(s->sring, buf, URING_BUF, (unsigned short)bid,
                          io_uring_buf_ring_mask(URING_ENTRIES), 0);
    io_uring_buf_ring_advance(s->sring, 1);
    s->savail++;
}

static void static_setup(server *s)
{
    void *mem;
    size_t bytes = URING_ENTRIES * sizeof(struct io_uring_buf);
    if (posix_memalign(&mem, page_size, (bytes + page_size - 1) & ~(page_size - 1)) != 0)
        die("posix_memalign");
    memset(mem, 0, bytes);
    s->sring = mem;
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)mem,
                                   .ring_entries = URING_ENTRIES, .bgid = URING_BGID};
    int rc = io_uring_register_buf_ring(&s->ring, &reg, 0);
    if (rc != 0) {
        errno = -rc;
        die("io_uring_register_buf_ring");
    }
    io_uring_buf_ring_init(s->sring);
    s->sbase = aligned_alloc(URING_BUF, URING_MEM);
    if (s->sbase == NULL)
        die("aligned_alloc");
    memset(s->sbase, 0, URING_MEM); /* resident from the start */
    for (unsigned i = 0; i < URING_MEM / URING_BUF; i++)
        static_add(s, s->sbase + (size_t)i * URING_BUF, i);
}

/* A buffer is back: into the ring, and every parked receive re-armed. */
static void static_done(server *s, void *buf)
{
    static_add(s, buf, (unsigned)(((unsigned char *)buf - s->sbase) / URING_BUF));
    while (s->parked != NULL) {
        sconn *c = s->parked;
        s->parked = c->next_parked;
        c->parked = 0;
        if (!c->dead)
            arm(s, c);
    }
}

/* ------------------------------------------------- the pool ring */

static void pool_rearm(zp_bufring *br, zp_bufring_wait *w, uint64_t token, void *arg)
{
    server *s = arg;
    sconn *c = s->c[token];
    (void)br;
    (void)w;
    c->parked = 0;
    if (!c->dead)
        arm(s, c);
}

static void watch_pool(server *s)
{
    struct io_uring_sqe *q = get_sqe(s);
    io_uring_prep_poll_add(q, zp_loop_fd(s->loop), POLLIN);
    io_uring_sqe_set_data64(q, UD(OP_POOL, 0));
}

static void pool_setup(server *s)
{
    zp_config cfg;
    zp_config_init(&cfg);
    cfg.max_bytes = URING_MEM;
    cfg.name = "uring_bench";
    if (zp_pool_create(&cfg, &s->pool) != 0 || zp_loop_create(&s->loop) != 0)
        die("zeropool setup");
    zp_bufring_config bc;
    zp_bufring_config_init(&bc);
    bc.ring = &s->ring;
    bc.pool = s->pool;
    bc.loop = s->loop;
    bc.bgid = URING_BGID;
    bc.buf_size = URING_BUF;
    bc.entries = URING_ENTRIES;
    bc.rearm = pool_rearm;
    bc.arg = s;
    int rc = zp_bufring_create(&bc, &s->br);
    if (rc != 0) {
        errno = -rc;
        die("zp_bufring_create");
    }
    watch_pool(s);
}

/* ------------------------------------------------- the server thread */

static void done_with(server *s, void *buf)
{
    if (s->pool_fed)
        zp_bufring_put(s->br, buf);
    else
        static_done(s, buf);
}

static void on_recv(server *s, sconn *c, struct io_uring_cqe *cqe)
{
    int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (!more)
        c->armed = 0;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        void *buf;
        unsigned len = cqe->res > 0 ? (unsigned)cqe->res : 0;
        if (s->pool_fed) {
            zp_bufring_buf b;
            if (zp_bufring_take(s->br, cqe, &b) != 0)
                die("zp_bufring_take");
            buf = b.buf;
        } else {
            buf = s->sbase + (size_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT) * URING_BUF;
            s->savail--;
        }
        if (len == 0 || c->qt - c->qh == URING_QUEUE) {
            done_with(s, buf);
        } else {
            unsigned i = c->qt++ % URING_QUEUE;
            c->q[i].buf = buf;
            c->q[i].len = len;
            c->q[i].off = 0;
            send_next(s, c);
        }
    }
    if (more || c->dead)
        return;
    if (cqe->res == -ENOBUFS) {
        s->exhaustions++;
        if (s->pool_fed) {
            int rc = zp_bufring_park(s->br, &c->wait, (uint64_t)c->idx);
            if (rc == 1)
                arm(s, c);
            else if (rc == 0)
                c->parked = 1;
            else
                die("zp_bufring_park");
        } else if (s->savail > 0) {
            arm(s, c);
        } else {
            c->parked = 1;
            c->next_parked = s->parked;
            s->parked = c;
        }
    } else if (cqe->res > 0) {
        arm(s, c);
    } else {
        c->dead = 1;
    }
}

static void on_send(server *s, sconn *c, int res)
{
    unsigned i = c->qh % URING_QUEUE;
    c->sending = 0;
    if (res <= 0) {
        c->dead = 1;
        while (c->qh != c->qt)
            done_with(s, c->q[c->qh++ % URING_QUEUE].buf);
        return;
    }
    c->q[i].off += (unsigned)res;
    if (c->q[i].off == c->q[i].len) {
        done_with(s, c->q[i].buf);
        c->qh++;
    }
    send_next(s, c);
}

static void *server_main(void *arg)
{
    server *s = arg;
    pin_self(0);
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = 16384;
    if (io_uring_queue_init_params(2048, &s->ring, &p) != 0)
        die("io_uring_queue_init");
    if (s->pool_fed)
        pool_setup(s);
    else
        static_setup(s);
    struct io_uring_sqe *q = get_sqe(s);
    io_uring_prep_multishot_accept(q, s->lfd, NULL, NULL, 0);
    io_uring_sqe_set_data64(q, UD(OP_ACCEPT, 0));
    q = get_sqe(s);
    io_uring_prep_poll_add(q, s->stop_fd, POLLIN);
    io_uring_sqe_set_data64(q, UD(OP_STOP, 0));
    atomic_store(&s->ready, 1);
    int stop = 0;
    while (!stop) {
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait(&s->ring, 1);
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&s->ring, head, cqe) {
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            int op = (int)(ud >> 32), i = (int)(uint32_t)ud;
            seen++;
            if (op == OP_ACCEPT && cqe->res >= 0 && s->nconns < URING_MAX_CONNS) {
                sconn *c = calloc(1, sizeof *c);
                c->fd = cqe->res;
                c->idx = s->nconns;
                int one = 1;
                setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                s->c[s->nconns++] = c;
                arm(s, c);
            } else if (op == OP_RECV) {
                on_recv(s, s->c[i], cqe);
            } else if (op == OP_SEND) {
                on_send(s, s->c[i], cqe->res);
            } else if (op == OP_POOL) {
                zp_loop_dispatch(s->loop);
                watch_pool(s);
            } else if (op == OP_STOP) {
                stop = 1;
            }
        }
        io_uring_cq_advance(&s->ring, seen);
    }
    return NULL;
}

/* ------------------------------------------------- the client */

typedef struct client {
    int n, port;
    int fd[URING_MAX_CONNS];
    uint64_t t0[URING_MAX_CONNS];
    unsigned got[URING_MAX_CONNS];
    double *lat;  /* us */
    size_t nlat;
    uint64_t msgs;
    int record;
} client;

static void client_send(client *cl, int i)
{
    static const char msg[URING_MSG];
    cl->t0[i] = wall_ns();
    cl->got[i] = 0;
    size_t off = 0;
    while (off < URING_MSG) { /* 1 KiB always fits a fresh socket buffer */
        ssize_t w = send(cl->fd[i], msg + off, URING_MSG - off, MSG_NOSIGNAL);
        if (w <= 0)
            die("client send");
        off += (size_t)w;
    }
}

/* Runs the closed loop for ms milliseconds (recording when cl->record). */
static void client_run(client *cl, int ep, double ms)
{
    struct epoll_event ev[256];
    char in[65536];
    uint64_t end = wall_ns() + (uint64_t)(ms * 1e6);
    while (wall_ns() < end) {
        int n = epoll_wait(ep, ev, 256, 100);
        for (int k = 0; k < n; k++) {
            int i = (int)ev[k].data.u32;
            ssize_t r = recv(cl->fd[i], in, sizeof in, MSG_DONTWAIT);
            if (r <= 0)
                continue;
            cl->got[i] += (unsigned)r;
            if (cl->got[i] >= URING_MSG) {
                if (cl->record) {
                    if (cl->nlat < MAX_SAMPLES)
                        cl->lat[cl->nlat++] = (double)(wall_ns() - cl->t0[i]) / 1e3;
                    cl->msgs++;
                }
                client_send(cl, i);
            }
        }
    }
}

typedef struct result {
    double tput[MAX_REPS], p99[MAX_REPS], p50[MAX_REPS];
    int reps;
    unsigned long long exhaustions, peak_reserved;
} result;

/* One repetition of (connections, ring), in this (child) process. */
static void measure(int conns, int pool_fed, result *res)
{
    server *s = calloc(1, sizeof *s);
    client *cl = calloc(1, sizeof *cl);
    cl->lat = malloc(MAX_SAMPLES * sizeof(double));
    s->pool_fed = pool_fed;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 4096) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0)
        die("listen");
    int sp[2];
    if (pipe(sp) != 0)
        die("pipe");
    s->stop_fd = sp[0];
    pthread_t t;
    pthread_create(&t, NULL, server_main, s);
    while (!atomic_load(&s->ready))
        usleep(1000);

    pin_self(1);
    int ep = epoll_create1(0);
    cl->n = conns;
    for (int i = 0; i < conns; i++) {
        cl->fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(cl->fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(cl->fd[i], (struct sockaddr *)&a, sizeof a) != 0)
            die("connect");
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, cl->fd[i], &ev);
    }
    for (int i = 0; i < conns; i++)
        client_send(cl, i);
    double rep_ms = harness.quick ? 150 : 500;
    client_run(cl, ep, rep_ms / 2); /* warm-up */
    res->reps = 1; /* one repetition per child: run_pair alternates the rings */
    for (int r = 0; r < res->reps; r++) {
        cl->record = 1;
        cl->nlat = 0;
        cl->msgs = 0;
        uint64_t t0 = wall_ns();
        client_run(cl, ep, rep_ms);
        double sec = (double)(wall_ns() - t0) / 1e9;
        cl->record = 0;
        sort_doubles(cl->lat, cl->nlat);
        res->tput[r] = (double)cl->msgs / sec;
        res->p99[r] = quantile_sorted(cl->lat, cl->nlat, 0.99);
        res->p50[r] = quantile_sorted(cl->lat, cl->nlat, 0.50);
    }
    if (write(sp[1], "x", 1) != 1)
        die("write");
    pthread_join(t, NULL);
    res->exhaustions = s->exhaustions;
    if (pool_fed) {
        zp_stats st = {.struct_size = sizeof st};
        zp_stats_read(s->pool, &st);
        res->peak_reserved = st.peak_reserved;
        zp_bufring_stats bs = {.struct_size = sizeof bs};
        zp_bufring_stats_read(s->br, &bs);
        if (getenv("ZPB_URING_VERBOSE"))
            fprintf(stderr, "    ring: taken %llu refills %llu batches %llu exhausted %llu "
                    "async waits %llu grants %llu parks %llu rearm_now %llu callbacks %llu\n",
                    (unsigned long long)bs.taken, (unsigned long long)bs.refills,
                    (unsigned long long)bs.batches, (unsigned long long)bs.exhausted,
                    (unsigned long long)bs.async_waits, (unsigned long long)bs.async_grants,
                    (unsigned long long)bs.parks, (unsigned long long)bs.rearm_now,
                    (unsigned long long)bs.rearms);
    } else {
        res->peak_reserved = URING_MEM;
    }
}

/* One repetition of (connections, ring) in a child process of its own:
 * 0 with *r and the child's peak RSS filled, or -1 (the child failed). */
static int run_child(int conns, int pool_fed, result *r, long *maxrss_kib)
{
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(fds[0]);
        result cr;
        memset(&cr, 0, sizeof cr);
        measure(conns, pool_fed, &cr);
        if (write(fds[1], &cr, sizeof cr) != (ssize_t)sizeof cr)
            _exit(3);
        _exit(0);
    }
    close(fds[1]);
    ssize_t got = 0, n;
    while (got < (ssize_t)sizeof *r &&
           (n = read(fds[0], (char *)r + got, sizeof *r - (size_t)got)) > 0)
        got += n;
    close(fds[0]);
    int status;
    struct rusage ru;
    wait4(pid, &status, 0, &ru);
    *maxrss_kib = ru.ru_maxrss;
    return got == (ssize_t)sizeof *r && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Both rings at one connection count, their repetitions alternating (the
 * order swapped every round) so drift on the machine hits both alike. */
static void run_pair(int conns)
{
    series tp[2], p99[2], p50[2];
    memset(tp, 0, sizeof tp);
    memset(p99, 0, sizeof p99);
    memset(p50, 0, sizeof p50);
    long rss[2] = {0, 0};
    unsigned long long exh[2] = {0, 0}, peak[2] = {0, 0};
    int failed[2] = {0, 0};
    for (int rep = 0; rep < harness.reps; rep++)
        for (int k = 0; k < 2; k++) {
            int v = (rep + k) % 2; /* 0: pool, 1: static */
            result r;
            long kib;
            memset(&r, 0, sizeof r);
            if (run_child(conns, v == 0, &r, &kib) != 0) {
                failed[v]++;
                continue;
            }
            if (getenv("ZPB_URING_VERBOSE"))
                fprintf(stderr, "    rep %d %s: %.0f msgs/s, p50 %.0f us, p99 %.0f us\n", rep,
                        v == 0 ? "pool" : "static", r.tput[0], r.p50[0], r.p99[0]);
            series_add(&tp[v], r.tput[0], 1.0);
            series_add(&p99[v], r.p99[0], 1.0);
            series_add(&p50[v], r.p50[0], 1.0);
            rss[v] = kib > rss[v] ? kib : rss[v];
            exh[v] += r.exhaustions;
            peak[v] = r.peak_reserved > peak[v] ? r.peak_reserved : peak[v];
        }
    for (int v = 0; v < 2; v++) {
        const char *name = v == 0 ? "pool" : "static";
        char config[64];
        snprintf(config, sizeof config, "conns=%d", conns);
        if (tp[v].n == 0) {
            summary sm = {.refused = true};
            snprintf(sm.note, sizeof sm.note, "every echo child failed (%d)", failed[v]);
            emit_line("uring_echo", URING_BUF, conns, "zeropool", "zeropool", name, config,
                      "msgs/s", &sm, NULL, 0, NULL);
            continue;
        }
        int n = tp[v].n;
        summary st = summarize_n(&tp[v], n), s99 = summarize_n(&p99[v], n),
                s50 = summarize_n(&p50[v], n);
        char extra[512];
        snprintf(extra, sizeof extra,
                 ",\"connections\":%d,\"message\":%d,\"memory\":%zu,"
                 "\"p99_us\":{\"median\":%.2f,\"min\":%.2f,\"max\":%.2f},"
                 "\"p50_us\":{\"median\":%.2f,\"min\":%.2f,\"max\":%.2f},"
                 "\"maxrss_kib\":%ld,\"peak_reserved\":%llu,\"exhaustions\":%llu,"
                 "\"failed_children\":%d",
                 conns, URING_MSG, URING_MEM, s99.median, s99.min, s99.max, s50.median,
                 s50.min, s50.max, rss[v], peak[v], exh[v], failed[v]);
        emit_line("uring_echo", URING_BUF, conns, "zeropool", "zeropool", name, config,
                  "msgs/s", &st, &tp[v], 0, extra);
        fprintf(stderr, "    p99 %.1f us, p50 %.1f us, max RSS %ld KiB, ENOBUFS %llu\n",
                s99.median, s50.median, rss[v], exh[v]);
    }
}

static void run(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4 * URING_MAX_CONNS) {
        rl.rlim_cur = rl.rlim_max < 4 * URING_MAX_CONNS ? rl.rlim_max : 4 * URING_MAX_CONNS;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct io_uring probe;
    if (io_uring_queue_init(8, &probe, 0) != 0) {
        summary sm = {.refused = true};
        snprintf(sm.note, sizeof sm.note, "io_uring unavailable here");
        emit_line("uring_echo", URING_BUF, 0, "zeropool", "zeropool", "pool", "skipped",
                  "msgs/s", &sm, NULL, 0, ",\"skipped\":true");
        return;
    }
    io_uring_queue_exit(&probe);
    static const int conns[] = {64, 1024};
    for (int k = 0; k < 2; k++)
        run_pair(conns[k]);
}

int main(int argc, char **argv)
{
    return harness_main(argc, argv, "zp_bench_uring", "uring", run);
}
