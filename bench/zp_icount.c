/*
 * zp_icount — the hot path as a tiny program for instruction counting.
 *
 *   zp_icount BACKEND SIZE ITERS  (BACKEND: zeropool | malloc | naive | none)
 *
 * Warms the backend up, then calls zpb_icount_loop(ITERS): get, write one
 * byte, put. bench/run.sh runs it under
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

NOINLINE void zpb_icount_loop(int be, size_t size, unsigned long n)
{
    switch (be) {
    case BE_NONE:
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
    case BE_MALLOC:
        LOOP(BE_MALLOC)
        break;
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

    int be = argc == 4 ? be_parse(argv[1]) : -1;
    if (argc == 4 && strcmp(argv[1], "none") == 0)
        be = BE_NONE;
    if (be < 0) {
        fprintf(stderr,
                "usage: zp_icount zeropool|malloc|naive|none SIZE ITERS\n");
        return 2;
    }
    size_t size = (size_t)strtoull(argv[2], NULL, 0);
    unsigned long n = strtoul(argv[3], NULL, 0);
    if (be == BE_NONE) {
        zpb_icount_loop(be, size, n);
        return 0;
    }
    if (be_setup(be) != 0)
        return 2;
    /* warm-up: outside the collected function */
    for (unsigned long i = 0; i < 1000; i++) {
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
