/*
 * The harness's async part: a loop's descriptor, and requests whose
 * callback records what it saw, where and when (zp_test.h).
 */
#include "zp_test.h"

#include <poll.h>

static atomic_long g_seq;            /* callbacks run, process-wide */
static _Thread_local int t_dispatching; /* inside zpt_dispatch */

int zpt_fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc;
    do
        rc = poll(&p, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -1;
    return rc > 0 && (p.revents & POLLIN) != 0;
}

long long zpt_eventfd_count(int fd)
{
    char path[64], line[256];
    unsigned long long v;
    long long count = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "eventfd-count: %llx", &v) == 1) {
            count = (long long)v;
            break;
        }
    fclose(f);
    return count;
}

void zpt_async_cb(void *buf, int err, void *arg)
{
    zpt_async *a = (zpt_async *)arg;
    a->calls++;
    a->buf = buf;
    a->err = err;
    a->seq = atomic_fetch_add(&g_seq, 1) + 1;
    a->thread = pthread_self();
    a->in_dispatch = t_dispatching;
    if (a->then != NULL)
        a->then(a);
}

void *zpt_get_async(zp_pool *pool, size_t size, zp_loop *loop, zpt_async *a)
{
    a->calls = 0;
    a->buf = NULL;
    a->err = 0;
    a->seq = 0;
    a->in_dispatch = 0;
    return zp_get_async(pool, size, loop, &a->req, zpt_async_cb, a);
}

int zpt_dispatch(zp_loop *loop)
{
    int saved = t_dispatching, rc;
    t_dispatching = 1;
    rc = zp_loop_dispatch(loop);
    t_dispatching = saved;
    return rc;
}

int zpt_dispatch_until(zp_loop *loop, int n, unsigned timeout_ms)
{
    uint64_t start = zpt_now_ns();
    int ran = 0;
    for (;;) {
        int rc = zpt_dispatch(loop);
        double left;
        if (rc > 0)
            ran += rc;
        if (ran >= n)
            break;
        left = (double)timeout_ms - zpt_ms_since(start);
        if (left <= 0)
            break;
        zpt_fd_readable(zp_loop_fd(loop), left < 50 ? (int)left + 1 : 50);
    }
    return ran;
}

zp_loop *zpt_loop_new_at(const char *file, int line)
{
    zp_loop *loop = NULL;
    int rc = zp_loop_create(&loop);
    if (rc != 0 || loop == NULL)
        zpt_fail_at(file, line, "zp_loop_create: %s", zp_strerror(rc));
    return loop;
}
