/*
 * zp_icount — the hot path as a tiny program for instruction counting.
 *
 *   zp_icount BACKEND SIZE ITERS [CONFIG]
 *     BACKEND: zeropool | zeropool_handle | malloc | naive | none
 *              (zeropool_handle: the same pool through one cache handle,
 *              zp_cache_get / zp_cache_put; zp_icount_twin: also
 *              zeropool_nc, the library built without its counters, and
 *              zeropool_copy, a second copy of the library; zp_icount_dpdk:
 *              also dpdk32 and dpdk256, DPDK's rte_mempool_get / _put on
 *              the EAL main lcore, as in zp_bench_dpdk)
 *     CONFIG:  zeropool's pool config, as zpb_config_parse reads it:
 *              default, max_bytes=1g, debug=2, depth=16, ... (default: default)
 *   With ZPB_ICOUNT_BULK=K in the environment, each iteration is one bulk
 *   get of K buffers, one byte written in each, and one bulk put of them
 *   (zp_get_batch / zp_put_batch, rte_mempool_get_bulk / _put_bulk, or K
 *   singles for the allocators): bench/run.sh divides by K for the
 *   instructions per buffer of the bulk32 row.
 *
 * Warms the backend up (1,000 iterations, or ITERS if fewer), then calls
 * zpb_icount_loop(ITERS): get, write one byte, put. bench/run.sh runs it under
 *   valgrind --tool=callgrind --collect-atstart=no \
 *            --toggle-collect=zpb_icount_loop
 * with two ITERS values; the difference in instructions divided by the
 * difference in ITERS is the cost of one get+put pair (plus the loop's own
 * few instructions), free of start-up and warm-up. Backend "none" runs the
 * same loop on one static buffer with no allocator at all: what it counts is
 * the loop and the byte write, subtracted to give the allocator's share.
 * Unlike nanoseconds these numbers are the same from run to run.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"

#define NOINLINE __attribute__((noinline))

NOINLINE void zpb_icount_loop(int be, size_t size, unsigned long n);

#define LOOP(B)                                                                \
    for (unsigned long i = 0; i < n; i++) {                                    \
        char *p = be_get(B, size);                                             \
        ((volatile char *)p)[0] = (char)i;                                     \
        ZPB_ESCAPE(p);                                                         \
        be_put(B, p);                                                          \
    }

#define BE_NONE BE_COUNT

static char none_buf[64];

static unsigned bulk; /* ZPB_ICOUNT_BULK, 0: singles */

#define BULK_MAX 256

static NOINLINE int bulk_loop(int be, size_t size, unsigned long n)
{
    void *bufs[BULK_MAX];
    for (unsigned long i = 0; i < n; i++) {
        if (be_get_bulk(be, size, bufs, bulk) != 0)
            return -1;
        for (unsigned k = 0; k < bulk; k++)
            ((volatile char *)bufs[k])[0] = (char)i;
        ZPB_ESCAPE(bufs);
        be_put_bulk(be, bufs, bulk);
    }
    return 0;
}

NOINLINE void zpb_icount_loop(int be, size_t size, unsigned long n)
{
    if (bulk != 0 && be != BE_NONE) {
        if (bulk_loop(be, size, n) != 0)
            abort();
        return;
    }
    switch (be) {
    case BE_NONE:
        if (bulk != 0) { /* the bulk loop's own share: writes, no allocator */
            static char none_bufs[BULK_MAX][64];
            for (unsigned long i = 0; i < n; i++) {
                for (unsigned k = 0; k < bulk; k++)
                    ((volatile char *)none_bufs[k])[0] = (char)i;
                ZPB_ESCAPE(none_bufs);
            }
            break;
        }
        for (unsigned long i = 0; i < n; i++) {
            char *p = none_buf;
            ZPB_ESCAPE(p);
            ((volatile char *)p)[0] = (char)i;
            ZPB_ESCAPE(p);
        }
        break;
    case BE_ZEROPOOL:
        LOOP(BE_ZEROPOOL)
        break;
    case BE_ZPCACHE:
        LOOP(BE_ZPCACHE)
        break;
    case BE_MALLOC:
        LOOP(BE_MALLOC)
        break;
#ifdef ZPB_HAVE_DPDK
    case BE_DPDK32:
        LOOP(BE_DPDK32)
        break;
    case BE_DPDK256:
        LOOP(BE_DPDK256)
        break;
#endif
#ifdef ZPB_TWIN
    case BE_ZPNC:
        LOOP(BE_ZPNC)
        break;
    case BE_ZPAA:
        LOOP(BE_ZPAA)
        break;
#endif
    default:
        LOOP(BE_NAIVE)
        break;
    }
}

static void *idle_thread(void *arg) { return arg; }

int main(int argc, char **argv)
{
    /* like zp_bench: a threaded process, where glibc takes its locks */
    pthread_t t;
    if (pthread_create(&t, NULL, idle_thread, NULL) == 0)
        pthread_join(t, NULL);

    int ok = argc == 4 || argc == 5;
    int be = ok ? be_parse(argv[1]) : -1;
    if (ok && strcmp(argv[1], "none") == 0)
        be = BE_NONE;
    static zp_config cfg;
    if (be >= 0 && argc == 5 && zpb_config_parse(argv[4], &cfg) != 0)
        be = -1;
    if (be < 0) {
#ifdef ZPB_TWIN
        const char *twins = "|zeropool_nc|zeropool_copy";
#elif defined(ZPB_HAVE_DPDK)
        const char *twins = "|dpdk32|dpdk256";
#else
        const char *twins = "";
#endif
        fprintf(stderr, "usage: zp_icount zeropool|zeropool_handle|malloc|"
                        "naive|none%s SIZE ITERS [CONFIG]\n",
                twins);
        return 2;
    }
    if (argc == 5)
        zpb_cfg = &cfg;
    unsetenv("ZEROPOOL_DEBUG"); /* would override config.debug */
    const char *bk = getenv("ZPB_ICOUNT_BULK");
    bulk = bk ? (unsigned)strtoul(bk, NULL, 0) : 0;
    if (bulk > BULK_MAX) {
        fprintf(stderr, "zp_icount: ZPB_ICOUNT_BULK is at most %d\n", BULK_MAX);
        return 2;
    }
    size_t size = (size_t)strtoull(argv[2], NULL, 0);
    unsigned long n = strtoul(argv[3], NULL, 0);
    unsigned long warm = n < 1000 ? n : 1000;
    if (be == BE_NONE) {
        zpb_icount_loop(be, size, n);
        return 0;
    }
#ifdef ZPB_HAVE_DPDK
    if (be_is_dpdk(be)) { /* the EAL first: this thread is its main lcore */
        char why[512];
        if (zpb_dpdk_init(&size, 1, why, sizeof why) != 0) {
            fprintf(stderr, "zp_icount: %s\n", why);
            return 2;
        }
    }
#endif
    if (be_setup(be, size) != 0)
        return 2;
    /* warm-up: outside the collected function */
    for (unsigned long i = 0; i < warm; i++) {
        char *p = be_get(be, size);
        if (!p)
            return 1;
        ((volatile char *)p)[0] = 1;
        be_put(be, p);
    }
    zpb_icount_loop(be, size, n);
    be_teardown(be);
    return 0;
}
