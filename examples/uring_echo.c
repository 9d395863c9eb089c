/*
 * uring_echo.c — a TCP echo server on 127.0.0.1 whose receive buffers come
 * from a zeropool pool through libzeropool-uring's provided-buffer ring.
 *
 *   uring_echo PORT [BUDGET_BYTES]
 *
 * PORT 0 picks a free port. Once listening it prints "port N" on a line of
 * its own on stdout (flushed). It runs until SIGINT or SIGTERM, then closes
 * every connection, gives every buffer back and exits 0 — or 1 if a check
 * failed. Exits 77 when io_uring is not permitted here.
 *
 * Each connection has one multishot receive (IOSQE_BUFFER_SELECT on the
 * pool's ring, group 1). A receive's buffer is sent back as it is, from the
 * same buffer, and returned to the pool (zp_bufring_put) once the send
 * completed. With a small budget (BUDGET_BYTES, default 1 MiB) the buffers
 * waiting in send queues take all of it: the ring runs dry, the receives end
 * with -ENOBUFS and are parked (zp_bufring_park); when sends complete and
 * memory comes back, the pool's loop descriptor (watched by a POLL_ADD on
 * the same ring) wakes zp_loop_dispatch, the ring refills and calls back
 * for each parked receive, which is re-armed then.
 *
 * What it checks, and prints on exit ("uring_echo: ..." on stdout):
 * every buffer taken is one it does not hold already and every buffer it
 * gives back is one it holds (a pointer set); exactly one re-arm per
 * exhaustion of each receive; nothing outstanding in the pool at the end;
 * the budget's peak never above its cap.
 *
 *   cc uring_echo.c $(pkg-config --cflags --libs zeropool-uring)
 */
#define _GNU_SOURCE
#include <zeropool.h>
#include <zeropool/uring.h>

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 4096
#define RING_ENTRIES 256
#define BGID 1
#define MAX_CONNS 4096
#define SENDQ 1024 /* buffers one connection may queue (a power of two) */

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_POOL, OP_SIGNAL, OP_CANCEL };

#define UD(op, fd) (((uint64_t)(op) << 32) | (uint32_t)(fd))

typedef struct conn {
    int fd;
    int open;
    int recv_armed;  /* a multishot receive is in flight */
    int sending;     /* a send is in flight */
    int parked;      /* waiting for buffers (zp_bufring_park) */
    zp_bufring_wait wait;
    struct { void *buf; unsigned len, off; } q[SENDQ];
    unsigned qhead, qtail;
    unsigned long exhaustions, rearms, unparked;
} conn;

static struct io_uring ring;
static zp_pool *pool;
static zp_bufring *bufring;
static zp_loop *loop;
static conn *conns[MAX_CONNS];
static int nopen, stopping, accepting, listen_fd;
static unsigned long long bytes_echoed, nconns, problems;
static unsigned long exhaustions, rearms, rearm_mismatch;

/* The buffers held by the application: an open-addressing pointer set. */
#define HELD_SLOTS (1u << 16)
static void *held[HELD_SLOTS];
static unsigned long nheld;

static void fail(const char *what, int err)
{
    /* zp_strerror: the detail of a failed zeropool call, else the errno's */
    fprintf(stderr, "uring_echo: %s: %s\n", what, zp_strerror(err));
    exit(1);
}

static unsigned held_slot(void *p)
{
    uintptr_t h = (uintptr_t)p >> 12;
    return (unsigned)((h * 0x9E3779B97F4A7C15ull) >> 48) & (HELD_SLOTS - 1);
}

static void held_add(void *p)
{
    unsigned i = held_slot(p);
    while (held[i] != NULL) {
        if (held[i] == p) {
            fprintf(stderr, "uring_echo: buffer %p handed out twice\n", p);
            problems++;
            return;
        }
        i = (i + 1) & (HELD_SLOTS - 1);
    }
    held[i] = p;
    nheld++;
}

static void held_remove(void *p)
{
    unsigned i = held_slot(p);
    while (held[i] != p) {
        if (held[i] == NULL) {
            fprintf(stderr, "uring_echo: giving back %p, which is not held\n", p);
            problems++;
            return;
        }
        i = (i + 1) & (HELD_SLOTS - 1);
    }
    held[i] = NULL;
    nheld--;
    /* re-insert the cluster after i (linear probing deletion) */
    for (unsigned j = (i + 1) & (HELD_SLOTS - 1); held[j] != NULL;
         j = (j + 1) & (HELD_SLOTS - 1)) {
        void *q = held[j];
        held[j] = NULL;
        unsigned k = held_slot(q);
        while (held[k] != NULL)
            k = (k + 1) & (HELD_SLOTS - 1);
        held[k] = q;
    }
}

static void give_back(void *buf)
{
    held_remove(buf);
    zp_bufring_put(bufring, buf);
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

static void arm_recv(conn *c)
{
    struct io_uring_sqe *s = sqe();
    io_uring_prep_recv_multishot(s, c->fd, NULL, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = BGID;
    io_uring_sqe_set_data64(s, UD(OP_RECV, c->fd));
    c->recv_armed = 1;
}

static void send_next(conn *c)
{
    if (c->sending || c->qhead == c->qtail)
        return;
    unsigned i = c->qhead & (SENDQ - 1);
    struct io_uring_sqe *s = sqe();
    io_uring_prep_send(s, c->fd, (char *)c->q[i].buf + c->q[i].off,
                       c->q[i].len - c->q[i].off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, UD(OP_SEND, c->fd));
    c->sending = 1;
}

static void watch_pool(void)
{
    struct io_uring_sqe *s = sqe();
    io_uring_prep_poll_add(s, zp_loop_fd(loop), POLLIN);
    io_uring_sqe_set_data64(s, UD(OP_POOL, 0));
}

/* The ring has buffers again: re-arm a receive parked on ENOBUFS. */
static void on_rearm(zp_bufring *br, zp_bufring_wait *w, uint64_t token, void *arg)
{
    (void)br;
    (void)w;
    (void)arg;
    conn *c = token < MAX_CONNS ? conns[token] : NULL;
    if (c == NULL || !c->parked) {
        fprintf(stderr, "uring_echo: re-arm of fd %llu, which is not parked\n",
                (unsigned long long)token);
        problems++;
        return;
    }
    c->parked = 0;
    c->rearms++;
    rearms++;
    arm_recv(c);
}

static void maybe_close(conn *c)
{
    if (c->recv_armed || c->sending || c->parked)
        return;
    while (c->qhead != c->qtail)
        give_back(c->q[c->qhead++ & (SENDQ - 1)].buf);
    if (c->rearms + c->unparked != c->exhaustions) {
        fprintf(stderr, "uring_echo: fd %d: %lu exhaustions, %lu re-arms, %lu unparked\n",
                c->fd, c->exhaustions, c->rearms, c->unparked);
        rearm_mismatch++;
    }
    conns[c->fd] = NULL;
    close(c->fd);
    free(c);
    nopen--;
}

static void on_recv(conn *c, struct io_uring_cqe *cqe)
{
    int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (!more)
        c->recv_armed = 0;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        zp_bufring_buf b;
        int rc = zp_bufring_take(bufring, cqe, &b);
        if (rc != 0)
            fail("zp_bufring_take", rc);
        held_add(b.buf);
        if (c->qtail - c->qhead == SENDQ) {
            fprintf(stderr, "uring_echo: fd %d: send queue full\n", c->fd);
            problems++;
            give_back(b.buf);
            shutdown(c->fd, SHUT_RDWR);
        } else if (b.len == 0 || stopping) {
            give_back(b.buf);
        } else {
            unsigned i = c->qtail++ & (SENDQ - 1);
            c->q[i].buf = b.buf;
            c->q[i].len = (unsigned)b.len;
            c->q[i].off = 0;
            bytes_echoed += b.len;
            send_next(c);
        }
    }
    if (more)
        return;
    if (cqe->res == -ENOBUFS && !stopping) {
        /* the ring ran dry: re-arm now if it has buffers again, else once
         * memory is back (on_rearm) */
        c->exhaustions++;
        exhaustions++;
        int rc = zp_bufring_park(bufring, &c->wait, (uint64_t)c->fd);
        if (rc == 1) {
            c->rearms++;
            rearms++;
            arm_recv(c);
        } else if (rc == 0) {
            c->parked = 1;
        } else {
            fail("zp_bufring_park", rc);
        }
    } else if (cqe->res > 0 && !stopping) {
        arm_recv(c); /* ended for another reason (e.g. the CQ overflowed) */
    } else {
        shutdown(c->fd, SHUT_RDWR); /* EOF, an error, or stopping */
        maybe_close(c);
    }
}

static void on_send(conn *c, int res)
{
    unsigned i = c->qhead & (SENDQ - 1);
    c->sending = 0;
    if (res < 0) {
        while (c->qhead != c->qtail)
            give_back(c->q[c->qhead++ & (SENDQ - 1)].buf);
        shutdown(c->fd, SHUT_RDWR);
    } else {
        c->q[i].off += (unsigned)res;
        if (c->q[i].off == c->q[i].len) {
            give_back(c->q[i].buf); /* memory back: may wake the pool's loop */
            c->qhead++;
        }
        send_next(c);
    }
    maybe_close(c);
}

static void on_accept(struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        accepting = 0;
    if (cqe->res < 0) {
        if (!stopping && cqe->res != -ECANCELED)
            fprintf(stderr, "uring_echo: accept: %s\n", strerror(-cqe->res));
    } else if (stopping || cqe->res >= MAX_CONNS) {
        close(cqe->res);
    } else {
        conn *c = calloc(1, sizeof *c);
        if (c == NULL)
            fail("calloc", ENOMEM);
        c->fd = cqe->res;
        c->open = 1;
        conns[c->fd] = c;
        nopen++;
        nconns++;
        arm_recv(c);
    }
    if (!accepting && !stopping) { /* the multishot accept ended: again */
        struct io_uring_sqe *s = sqe();
        io_uring_prep_multishot_accept(s, listen_fd, NULL, NULL, 0);
        io_uring_sqe_set_data64(s, UD(OP_ACCEPT, 0));
        accepting = 1;
    }
}

static void begin_stop(void)
{
    stopping = 1;
    if (accepting) {
        struct io_uring_sqe *s = sqe();
        io_uring_prep_cancel64(s, UD(OP_ACCEPT, 0), 0);
        io_uring_sqe_set_data64(s, UD(OP_CANCEL, 0));
    }
    for (int fd = 0; fd < MAX_CONNS; fd++) {
        conn *c = conns[fd];
        if (c == NULL)
            continue;
        if (c->parked) {
            zp_bufring_unpark(bufring, &c->wait);
            c->parked = 0;
            c->unparked++; /* stopping: this exhaustion ends without a re-arm */
        }
        shutdown(fd, SHUT_RDWR); /* receives end, sends fail */
        maybe_close(c);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: uring_echo PORT [BUDGET_BYTES]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    size_t budget = argc > 2 ? strtoull(argv[2], NULL, 0) : (size_t)1 << 20;

    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = 16384;
    int rc = io_uring_queue_init_params(1024, &ring, &p);
    if (rc == -EPERM || rc == -ENOSYS || rc == -EACCES) {
        printf("SKIP: io_uring is not permitted here (io_uring_queue_init: %s)\n",
               strerror(-rc));
        return 77;
    }
    if (rc < 0)
        fail("io_uring_queue_init", rc);

    /* SIGINT and SIGTERM arrive through a descriptor the ring polls */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    if (sfd < 0)
        fail("signalfd", errno);

    zp_config cfg;
    zp_config_init(&cfg);
    cfg.max_bytes = budget;
    cfg.name = "uring_echo";
    if ((rc = zp_pool_create(&cfg, &pool)) != 0)
        fail("zp_pool_create", rc);
    if ((rc = zp_loop_create(&loop)) != 0)
        fail("zp_loop_create", rc);
    zp_bufring_config bc;
    zp_bufring_config_init(&bc);
    bc.ring = &ring;
    bc.pool = pool;
    bc.loop = loop;
    bc.bgid = BGID;
    bc.buf_size = BUF_SIZE;
    bc.entries = RING_ENTRIES;
    bc.rearm = on_rearm;
    rc = zp_bufring_create(&bc, &bufring);
    if (rc == -EOPNOTSUPP) {
        printf("SKIP: this kernel has no ring-provided buffers\n");
        return 77;
    }
    if (rc != 0)
        fail("zp_bufring_create", rc);

    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(listen_fd, 4096) != 0 ||
        getsockname(listen_fd, (struct sockaddr *)&a, &alen) != 0)
        fail("listen", errno);
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);

    struct io_uring_sqe *s = sqe();
    io_uring_prep_multishot_accept(s, listen_fd, NULL, NULL, 0);
    io_uring_sqe_set_data64(s, UD(OP_ACCEPT, 0));
    accepting = 1;
    s = sqe();
    io_uring_prep_poll_add(s, sfd, POLLIN);
    io_uring_sqe_set_data64(s, UD(OP_SIGNAL, 0));
    watch_pool();

    unsigned long wakeups = 0;
    while (!stopping || nopen > 0 || accepting) {
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 10};
        io_uring_submit(&ring);
        rc = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
        if (rc == -EINTR || (rc == -ETIME && !stopping))
            continue;
        if (rc < 0)
            fail("waiting for completions (10 s)", rc);
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            int op = (int)(ud >> 32), fd = (int)(uint32_t)ud;
            seen++;
            switch (op) {
            case OP_ACCEPT: on_accept(cqe); break;
            case OP_RECV:   if (conns[fd]) on_recv(conns[fd], cqe); break;
            case OP_SEND:   if (conns[fd]) on_send(conns[fd], cqe->res); break;
            case OP_POOL:   /* memory came back: refill, re-arm (on_rearm) */
                wakeups++;
                zp_loop_dispatch(loop);
                watch_pool();
                break;
            case OP_SIGNAL:
                if (!stopping)
                    begin_stop();
                break;
            default: break;
            }
        }
        io_uring_cq_advance(&ring, seen);
    }

    zp_bufring_stats bs = {.struct_size = sizeof bs};
    zp_bufring_stats_read(bufring, &bs);
    rc = zp_bufring_destroy(bufring);
    if (rc != 0)
        fail("zp_bufring_destroy", rc);
    io_uring_queue_exit(&ring);
    close(listen_fd);
    close(sfd);

    zp_stats st = {.struct_size = sizeof st};
    zp_stats_read(pool, &st);
    /* the budget's figures: a private budget is the pool's own bytes */
    int ok = problems == 0 && rearm_mismatch == 0 && nheld == 0 &&
             st.bytes_outstanding == 0 && (budget == 0 || st.peak_reserved <= budget);
    printf("uring_echo: connections %llu bytes %llu exhaustions %lu rearms %lu "
           "rearm_mismatch %lu parks %llu rearm_now %llu rearm_callbacks %llu "
           "async_waits %llu async_grants %llu pool_wakeups %lu refills %llu "
           "batches %llu added %llu taken %llu returned %llu held %lu "
           "problems %llu outstanding %llu peak_reserved %llu max_bytes %zu %s\n",
           nconns, bytes_echoed, exhaustions, rearms, rearm_mismatch,
           (unsigned long long)bs.parks, (unsigned long long)bs.rearm_now,
           (unsigned long long)bs.rearms, (unsigned long long)bs.async_waits,
           (unsigned long long)bs.async_grants, wakeups,
           (unsigned long long)bs.refills, (unsigned long long)bs.batches,
           (unsigned long long)bs.added, (unsigned long long)bs.taken,
           (unsigned long long)bs.returned, nheld, problems,
           (unsigned long long)st.bytes_outstanding,
           (unsigned long long)st.peak_reserved, budget, ok ? "ok" : "FAILED");
    fflush(stdout);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
    return ok ? 0 : 1;
}
