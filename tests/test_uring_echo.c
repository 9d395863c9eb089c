/* examples/uring_echo under load: many loopback connections, a budget small enough to force ENOBUFS and re-arms; every byte echoed in order, no buffer lost or doubled, nothing outstanding, one re-arm per exhaustion. */
#include "zp_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* argv: the example, connections, bytes per connection, budget in bytes */
static char *g_prog;
static int g_conns;
static size_t g_bytes, g_budget;

typedef struct client {
    int fd;
    size_t sent, got;
} client;

static unsigned char pattern(int conn, size_t off)
{
    return (unsigned char)(conn * 131 + off * 7 + (off >> 12));
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    /* a small receive buffer: the server's sends stall early, so its
     * buffers wait in send queues and the budget runs out */
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void test_echo(void **state)
{
    (void)state;
    char budget[32], line[1024];
    snprintf(budget, sizeof budget, "%zu", g_budget);
    char *argv[] = {g_prog, "0", budget, NULL};
    /* under valgrind (make valgrind) the server runs under memcheck too:
     * it is the program that uses the library; any error fails its exit */
    char *vg_argv[] = {"/usr/bin/env", "valgrind", "-q", "--error-exitcode=99",
                       "--leak-check=full", "--errors-for-leak-kinds=definite",
                       "--show-possibly-lost=no", g_prog, "0", budget, NULL};
    zpt_proc p;
    zpt_watchdog(120, "uring_echo test");
    if (zpt_under_valgrind())
        printf("the server runs under valgrind memcheck as well\n");
    if (zpt_spawn(&p, zpt_under_valgrind() ? vg_argv : argv) != 0)
        zpt_fail("cannot start %s: %s", g_prog, strerror(errno));
    if (!zpt_proc_line(&p, "port ", line, sizeof line, 20)) {
        int st = zpt_proc_wait(&p, 10);
        if (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 77) {
            zpt_watchdog_off();
            zpt_skip("uring_echo skipped itself (io_uring unavailable here)");
        }
        zpt_fail("uring_echo printed no port line (status %d)", st);
    }
    int port = atoi(line + 5);
    assert_true(port > 0);

    client *c = calloc((size_t)g_conns, sizeof *c);
    struct pollfd *pfd = calloc((size_t)g_conns, sizeof *pfd);
    unsigned char *chunk = malloc(16384), *in = malloc(65536);
    assert_non_null(c);
    assert_non_null(pfd);
    for (int i = 0; i < g_conns; i++) {
        c[i].fd = connect_to(port);
        if (c[i].fd < 0)
            zpt_fail("connect %d: %s", i, strerror(errno));
    }

    /* every connection writes its pattern and reads it back, in order.
     * For the first moments nothing is read: the server's echoes stall
     * (the small receive buffers fill), its buffers wait in send queues
     * and the budget runs out whatever the speed of either side (under
     * TSan the server was sometimes quick enough to keep its ring full).
     * The hold grows with the connections the server must accept first
     * (1024 of them under TSan took longer than a flat 500 ms). */
    uint64_t start = zpt_now_ns();
    unsigned hold_ms = (500 + 2 * (unsigned)g_conns) * (zpt_under_valgrind() ? 6 : 1);
    int done = 0;
    size_t mismatch_conn = SIZE_MAX, mismatch_off = 0;
    while (done < g_conns && zpt_ms_since(start) < 60000 && mismatch_conn == SIZE_MAX) {
        int reading = zpt_ms_since(start) >= hold_ms;
        for (int i = 0; i < g_conns; i++) {
            pfd[i].fd = c[i].got < g_bytes ? c[i].fd : -1;
            pfd[i].events = (reading ? POLLIN : 0) | (c[i].sent < g_bytes ? POLLOUT : 0);
            pfd[i].revents = 0;
        }
        if (poll(pfd, (nfds_t)g_conns, 1000) < 0 && errno != EINTR)
            zpt_fail("poll: %s", strerror(errno));
        for (int i = 0; i < g_conns; i++) {
            if (pfd[i].revents & POLLOUT) {
                size_t n = g_bytes - c[i].sent;
                if (n > 16384)
                    n = 16384;
                for (size_t k = 0; k < n; k++)
                    chunk[k] = pattern(i, c[i].sent + k);
                ssize_t w = send(c[i].fd, chunk, n, MSG_NOSIGNAL);
                if (w > 0)
                    c[i].sent += (size_t)w;
                else if (w < 0 && errno != EAGAIN)
                    zpt_fail("send on connection %d: %s", i, strerror(errno));
            }
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = recv(c[i].fd, in, 65536, 0);
                if (r == 0)
                    zpt_fail("connection %d closed by the server after %zu of %zu bytes", i,
                             c[i].got, g_bytes);
                if (r < 0 && errno != EAGAIN)
                    zpt_fail("recv on connection %d: %s", i, strerror(errno));
                for (ssize_t k = 0; k < r; k++)
                    if (in[k] != pattern(i, c[i].got + (size_t)k)) {
                        mismatch_conn = (size_t)i;
                        mismatch_off = c[i].got + (size_t)k;
                        break;
                    }
                if (r > 0) {
                    c[i].got += (size_t)r;
                    if (c[i].got > g_bytes)
                        zpt_fail("connection %d: more bytes back than sent", i);
                    if (c[i].got == g_bytes)
                        done++;
                }
            }
        }
    }
    double ms = zpt_ms_since(start);
    if (mismatch_conn != SIZE_MAX)
        zpt_fail("connection %zu: byte %zu echoed wrong (out of order or corrupt)",
                 mismatch_conn, mismatch_off);
    if (done < g_conns)
        zpt_fail("only %d of %d connections got all their bytes back in 60 s", done, g_conns);
    printf("%d connections x %zu bytes echoed in order in %.0f ms\n", g_conns, g_bytes, ms);
    for (int i = 0; i < g_conns; i++)
        close(c[i].fd);
    zpt_sleep_ms(50);

    kill(p.pid, SIGTERM);
    int found = zpt_proc_line(&p, "uring_echo: ", line, sizeof line, 30);
    int st = zpt_proc_wait(&p, 30);
    zpt_watchdog_off();
    if (!found)
        zpt_fail("uring_echo printed no summary (status %d)", st);
    printf("%s\n", line);
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        zpt_fail("uring_echo did not exit 0 after SIGTERM (status %d)", st);

    unsigned long long v[16];
    const char *keys[] = {"connections", "bytes", "exhaustions", "rearms", "rearm_mismatch",
                          "parks", "rearm_callbacks", "async_grants", "held", "problems",
                          "outstanding", "peak_reserved", "max_bytes"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (!zpt_line_value(line, keys[k], &v[k]))
            zpt_fail("summary without %s", keys[k]);
    assert_int_equal(v[0], (unsigned long long)g_conns);          /* connections */
    assert_int_equal(v[1], (unsigned long long)g_conns * g_bytes); /* bytes echoed */
    if (v[2] == 0)
        zpt_fail("the budget never ran out: no ENOBUFS, nothing tested");
    assert_int_equal(v[3], v[2]); /* one re-arm per exhaustion, in total */
    assert_int_equal(v[4], 0);    /* ... and per connection */
    if (v[5] == 0 || v[6] != v[5] || v[7] == 0)
        zpt_fail("no receive waited for memory to come back (parks %llu, callbacks %llu, "
                 "grants %llu)", v[5], v[6], v[7]);
    assert_int_equal(v[8], 0);  /* no buffer still held */
    assert_int_equal(v[9], 0);  /* no buffer doubled or unknown */
    assert_int_equal(v[10], 0); /* bytes_outstanding */
    assert_true(v[11] <= v[12]); /* peak within the budget */
    free(c);
    free(pfd);
    free(chunk);
    free(in);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return zpt_skip_all("SKIP: examples/uring_echo was not built (liburing missing?)");
    g_prog = argv[1];
    g_conns = argc > 2 ? atoi(argv[2]) : 64;
    g_bytes = argc > 3 ? strtoull(argv[3], NULL, 0) : 256 * 1024;
    g_budget = argc > 4 ? strtoull(argv[4], NULL, 0) : 256 * 1024;
    if (access(g_prog, X_OK) != 0)
        return zpt_skip_all("SKIP: %s: %s", g_prog, strerror(errno));
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_echo)};
    return ZPT_RUN(tests);
}
