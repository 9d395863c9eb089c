/*
 * objpool.c — pooling a server's connection objects.
 *
 * A connection owns a 16 KiB receive buffer from a byte pool and a small
 * parser state. init builds it once (takes the buffer), reset makes it fresh
 * for the next client on every put (cheap: no allocation), fini gives the
 * buffer back when the pool releases the object's memory. The typed
 * wrappers from ZP_OBJPOOL_DEFINE make conn_get / conn_put.
 *
 *   ./example_objpool          serves 100000 simulated clients, 64 at a time
 */
#include <zeropool.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum parse_state { PARSE_METHOD, PARSE_HEADERS, PARSE_BODY, PARSE_DONE };

struct conn {
    int fd;
    char *rxbuf;               /* 16 KiB, from the byte pool */
    size_t rxlen;
    enum parse_state state;
    unsigned requests;
    uint64_t bytes_in;
};

ZP_OBJPOOL_DEFINE(conn, struct conn)

#define RXBUF_SIZE (16 * 1024)

static unsigned long built; /* objects initialised (one thread here) */

static int conn_init(void *obj, void *arg)
{
    struct conn *c = obj;
    zp_pool *buffers = arg;
    built++;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->rxbuf = zp_get(buffers, RXBUF_SIZE);
    return c->rxbuf ? 0 : errno; /* the get fails with this errno */
}

static void conn_reset(void *obj, void *arg)
{
    struct conn *c = obj;
    (void)arg;
    c->fd = -1;
    c->rxlen = 0;
    c->state = PARSE_METHOD;
    c->requests = 0;
    c->bytes_in = 0; /* the receive buffer stays: that is the point */
}

static void conn_fini(void *obj, void *arg)
{
    struct conn *c = obj;
    zp_put(arg, c->rxbuf);
}

/* A stand-in for reading and parsing one request. */
static void serve(struct conn *c, int fd)
{
    c->fd = fd;
    int n = snprintf(c->rxbuf, RXBUF_SIZE, "GET /item/%d HTTP/1.1\r\nHost: x\r\n\r\n", fd);
    c->rxlen = (size_t)n;
    c->bytes_in += (uint64_t)n;
    c->state = PARSE_DONE;
    c->requests++;
}

int main(void)
{
    zp_pool *buffers, *conns;
    int rc = zp_pool_create(NULL, &buffers);
    if (rc) {
        fprintf(stderr, "zp_pool_create: %s\n", zp_strerror(rc));
        return 1;
    }
    zp_obj_type type = {
        .struct_size = sizeof type,
        .size = sizeof(struct conn),
        .align = _Alignof(struct conn),
        .init = conn_init,
        .reset = conn_reset,
        .fini = conn_fini,
        .arg = buffers,
    };
    zp_config cfg;
    zp_config_init(&cfg);
    cfg.name = "conns";
    if ((rc = zp_objpool_create(&cfg, &type, &conns)) != 0) {
        fprintf(stderr, "zp_objpool_create: %s\n", zp_strerror(rc));
        return 1;
    }

    struct conn *live[64];
    uint64_t served = 0;
    for (int round = 0; round < 100000 / 64; round++) {
        for (int i = 0; i < 64; i++) {
            live[i] = conn_get(conns);
            if (live[i] == NULL) {
                perror("conn_get");
                return 1;
            }
            serve(live[i], round * 64 + i);
        }
        for (int i = 0; i < 64; i++) {
            served += live[i]->requests;
            conn_put(conns, live[i]);
        }
    }

    zp_stats st = {.struct_size = sizeof st};
    zp_stats_read(conns, &st);
    printf("served %llu clients with %lu connection objects built "
           "(%.1f%% of gets from the cache)\n",
           (unsigned long long)served, built, 100.0 * zp_stats_cache_hit_rate(&st));
    zp_pool_destroy(conns); /* fini gives every receive buffer back */
    zp_stats_read(buffers, &st);
    printf("receive buffers outstanding after destroy: %llu bytes\n",
           (unsigned long long)st.bytes_outstanding);
    zp_pool_destroy(buffers);
    return st.bytes_outstanding == 0 ? 0 : 1;
}
