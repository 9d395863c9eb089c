/*
 * async_libuv.c — a libuv TCP echo server whose read buffers come from a
 * pool with a tiny budget, and that stops reading a connection, instead of
 * blocking, while no buffer is free.
 *
 * Each connection owns at most one read buffer. When a read fills it, the
 * buffer is written back (the echo) and the connection asks for a new one
 * with zp_get_async: served at once, it keeps reading; EINPROGRESS, it
 * stops reading (uv_read_stop) until the request's callback hands it a
 * buffer and restarts the read. A write's completion puts its buffer back,
 * which makes room for the connections waiting. The pool's loop descriptor
 * sits in a uv_poll_t: readable means callbacks are ready, and
 * zp_loop_dispatch runs them on the libuv thread.
 *
 * The program tests itself: a client thread with its own libuv loop opens
 * NCONN connections to the server on 127.0.0.1 (an ephemeral port), sends
 * PAYLOAD bytes on each and checks every byte echoed. 64 connections share
 * 16 buffers of 16 KiB, so most of them wait at some point. Exits 0 when
 * every byte came back intact within TIMEOUT_MS, 1 otherwise.
 *
 *   cc async_libuv.c $(pkg-config --cflags --libs zeropool libuv) -pthread
 */
#define _GNU_SOURCE
#include <zeropool.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define NCONN 64
#define PAYLOAD (256 * 1024)       /* bytes each client sends */
#define BUF_SIZE (16 * 1024)       /* a read buffer: one pool buffer */
#define BUDGET_BYTES (256 * 1024)  /* one slab of 16 buffers */
#define TIMEOUT_MS 30000

static unsigned char expected(int conn, size_t i)
{
    return (unsigned char)(conn * 37 + i * 13 + (i >> 11));
}

static void fail(const char *what, int err)
{
    fprintf(stderr, "%s: %s\n", what, err < 0 ? uv_strerror(err) : strerror(err));
    exit(1);
}

/* ------------------------------------------------------------ the server */

/* A buffer starts with the write request that echoes it, so a read needs
 * no allocation besides the pool's. */
typedef struct echo {
    uv_write_t wr;
    unsigned char data[];
} echo;
#define DATA_SIZE (BUF_SIZE - sizeof(echo))

typedef struct conn {
    uv_tcp_t tcp;
    zp_request req; /* storage for this connection's buffer request */
    echo *buf;      /* the buffer the next read goes into, or NULL */
    int waiting;    /* its request is queued */
    int reading;
} conn;

static zp_pool *pool;
static zp_loop *zloop;
static uv_poll_t zpoll;
static uv_tcp_t listener;
static uv_timer_t server_timer;
static int server_closed, stalls, served_later;
static uv_thread_t server_thread;

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    conn *c = h->data;
    (void)suggested;
    *out = c->buf ? uv_buf_init((char *)c->buf->data, DATA_SIZE) : uv_buf_init(NULL, 0);
}

static void start_reading(conn *c)
{
    if (!c->reading) {
        int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        if (rc)
            fail("uv_read_start", rc);
        c->reading = 1;
    }
}

/* A buffer for c, from zp_loop_dispatch (on this thread). */
static void on_buffer(void *buf, int err, void *arg)
{
    conn *c = arg;
    uv_thread_t self = uv_thread_self();
    if (buf == NULL)
        fail("zp_get_async callback", err);
    if (!uv_thread_equal(&self, &server_thread))
        fail("callback off the loop thread", EINVAL);
    c->waiting = 0;
    c->buf = buf;
    served_later++;
    start_reading(c);
}

/* c has no buffer: get one now, or stop reading until the pool has room. */
static void need_buffer(conn *c)
{
    void *buf = zp_get_async(pool, BUF_SIZE, zloop, &c->req, on_buffer, c);
    if (buf != NULL) {
        c->buf = buf;
        start_reading(c);
    } else if (errno == EINPROGRESS) {
        c->waiting = 1;
        stalls++;
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = 0;
        }
    } else {
        fail("zp_get_async", errno);
    }
}

static void on_written(uv_write_t *wr, int status)
{
    (void)status; /* an error closes the connection through its read */
    zp_put(pool, wr); /* the buffer: room for a waiting connection */
}

static void on_conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (c->waiting)
        zp_cancel(&c->req);
    zp_put(pool, c->buf); /* NULL: nothing */
    free(c);
    if (++server_closed == NCONN) {
        uv_close((uv_handle_t *)&listener, NULL);
        uv_close((uv_handle_t *)&zpoll, NULL);
        uv_close((uv_handle_t *)&server_timer, NULL);
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    conn *c = s->data;
    (void)b;
    if (nread > 0) {
        echo *e = c->buf;
        uv_buf_t out = uv_buf_init((char *)e->data, (unsigned)nread);
        c->buf = NULL;
        int rc = uv_write(&e->wr, s, &out, 1, on_written);
        if (rc)
            fail("uv_write", rc);
        need_buffer(c);
    } else if (nread < 0 && nread != UV_ENOBUFS) {
        uv_close((uv_handle_t *)s, on_conn_closed); /* EOF or error */
    }
}

static void on_connection(uv_stream_t *l, int status)
{
    if (status)
        fail("listen", status);
    conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        fail("calloc", ENOMEM);
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    int rc = uv_accept(l, (uv_stream_t *)&c->tcp);
    if (rc)
        fail("uv_accept", rc);
    need_buffer(c);
}

/* The pool's descriptor is readable: run the ready callbacks. */
static void on_pool_ready(uv_poll_t *p, int status, int events)
{
    (void)p;
    (void)events;
    if (status)
        fail("uv_poll", status);
    zp_loop_dispatch(zloop);
}

static void on_server_timeout(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "server: not done within %d ms (%d connections closed)\n",
            TIMEOUT_MS, server_closed);
    exit(1);
}

/* ------------------------------------------------- the client (the test) */

typedef struct client {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t wr;
    int id;
    unsigned char *out;    /* what it sends */
    size_t received;
    unsigned char in[65536];
} client;

static struct sockaddr_in server_addr;
static int clients_done, clients_bad;
static uv_timer_t client_timer;

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    client *cl = h->data;
    (void)suggested;
    *out = uv_buf_init((char *)cl->in, sizeof cl->in);
}

static void client_closed(uv_handle_t *h)
{
    client *cl = h->data;
    free(cl->out);
    free(cl);
    if (++clients_done == NCONN)
        uv_close((uv_handle_t *)&client_timer, NULL);
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    client *cl = s->data;
    (void)b;
    if (nread < 0) {
        fprintf(stderr, "client %d: %s after %zu bytes\n", cl->id, uv_strerror((int)nread),
                cl->received);
        clients_bad++;
        uv_close((uv_handle_t *)s, client_closed);
        return;
    }
    for (ssize_t i = 0; i < nread; i++)
        if (cl->in[i] != expected(cl->id, cl->received + (size_t)i)) {
            fprintf(stderr, "client %d: byte %zu differs\n", cl->id, cl->received + (size_t)i);
            clients_bad++;
            uv_close((uv_handle_t *)s, client_closed);
            return;
        }
    cl->received += (size_t)nread;
    if (cl->received == PAYLOAD)
        uv_close((uv_handle_t *)s, client_closed); /* the server reads EOF */
}

static void client_wrote(uv_write_t *wr, int status)
{
    if (status)
        fail("client write", status);
    (void)wr;
}

static void client_connected(uv_connect_t *req, int status)
{
    client *cl = req->data;
    if (status)
        fail("connect", status);
    uv_buf_t out = uv_buf_init((char *)cl->out, PAYLOAD);
    uv_read_start((uv_stream_t *)&cl->tcp, client_alloc, client_read);
    int rc = uv_write(&cl->wr, (uv_stream_t *)&cl->tcp, &out, 1, client_wrote);
    if (rc)
        fail("uv_write", rc);
}

static void client_timeout(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "clients: %d of %d done within %d ms\n", clients_done, NCONN, TIMEOUT_MS);
    exit(1);
}

static void clients_main(void *arg)
{
    uv_loop_t loop;
    (void)arg;
    uv_loop_init(&loop);
    for (int i = 0; i < NCONN; i++) {
        client *cl = calloc(1, sizeof *cl);
        if (cl == NULL || (cl->out = malloc(PAYLOAD)) == NULL)
            fail("malloc", ENOMEM);
        cl->id = i;
        for (size_t k = 0; k < PAYLOAD; k++)
            cl->out[k] = expected(i, k);
        uv_tcp_init(&loop, &cl->tcp);
        cl->tcp.data = cl;
        cl->connect.data = cl;
        int rc = uv_tcp_connect(&cl->connect, &cl->tcp, (const struct sockaddr *)&server_addr,
                                client_connected);
        if (rc)
            fail("uv_tcp_connect", rc);
    }
    uv_timer_init(&loop, &client_timer);
    uv_timer_start(&client_timer, client_timeout, TIMEOUT_MS, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

/* ------------------------------------------------------------------ main */

int main(void)
{
    zp_budget *budget;
    zp_config cfg;
    uv_loop_t *loop = uv_default_loop();
    uv_thread_t clients;
    int rc, namelen = sizeof server_addr;

    if ((rc = zp_budget_create(BUDGET_BYTES, &budget)) != 0)
        fail("zp_budget_create", -rc);
    zp_config_init(&cfg);
    cfg.budget = budget;
    cfg.name = "echo";
    if ((rc = zp_pool_create(&cfg, &pool)) != 0 || (rc = zp_loop_create(&zloop)) != 0)
        fail("zeropool setup", -rc);
    server_thread = uv_thread_self();

    uv_tcp_init(loop, &listener);
    uv_ip4_addr("127.0.0.1", 0, &server_addr);
    if ((rc = uv_tcp_bind(&listener, (const struct sockaddr *)&server_addr, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&listener, NCONN, on_connection)) != 0 ||
        (rc = uv_tcp_getsockname(&listener, (struct sockaddr *)&server_addr, &namelen)) != 0)
        fail("listen on 127.0.0.1", rc);
    uv_poll_init(loop, &zpoll, zp_loop_fd(zloop));
    uv_poll_start(&zpoll, UV_READABLE, on_pool_ready);
    uv_timer_init(loop, &server_timer);
    uv_timer_start(&server_timer, on_server_timeout, TIMEOUT_MS + 5000, 0);

    if ((rc = uv_thread_create(&clients, clients_main, NULL)) != 0)
        fail("uv_thread_create", rc);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_thread_join(&clients);

    zp_stats st = {.struct_size = sizeof st};
    zp_budget_stats bs = {.struct_size = sizeof bs};
    zp_stats_read(pool, &st);
    zp_budget_read(budget, &bs);
    printf("%d connections echoed %d KiB each through %llu-byte buffers (budget %llu, "
           "peak %llu): %d reads waited for a buffer, %d resumed by a callback; "
           "%d clients failed; %llu bytes outstanding\n",
           NCONN, PAYLOAD / 1024, (unsigned long long)BUF_SIZE,
           (unsigned long long)bs.max_bytes, (unsigned long long)bs.peak_reserved, stalls,
           served_later, clients_bad, (unsigned long long)st.bytes_outstanding);
    int ok = clients_done == NCONN && clients_bad == 0 && stalls > 0 &&
             served_later == stalls && st.bytes_outstanding == 0 &&
             bs.peak_reserved <= bs.max_bytes;
    uv_loop_close(loop);
    zp_loop_destroy(zloop);
    zp_pool_destroy(pool);
    zp_budget_destroy(budget);
    return ok ? 0 : 1;
}
