/*
 * bench/backend.h — the three "backends" every benchmark runs against, as
 * always-inline get/put pairs so each measured loop is compiled once per
 * backend with direct calls (no function pointer in the timed path):
 *
 *   BE_ZEROPOOL  zp_get / zp_put on one pool with the default config;
 *   BE_MALLOC    malloc / free of whichever allocator the process runs with
 *                (glibc, or the one LD_PRELOADed by bench/run.sh);
 *   BE_NAIVE     one global mutex over power-of-two free lists, refilled
 *                from malloc and never trimmed: the floor a pool must beat.
 *
 * Shared by zp_bench.c and zp_icount.c. Not part of the library.
 */
#ifndef ZP_BENCH_BACKEND_H
#define ZP_BENCH_BACKEND_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zeropool.h"

#define ZPB_INLINE static inline __attribute__((always_inline))

/* Keeps p alive and all memory writes before this point in place. */
#define ZPB_ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

enum { BE_ZEROPOOL, BE_MALLOC, BE_NAIVE, BE_COUNT };

static const char *const be_names[BE_COUNT] = {"zeropool", "malloc", "naive"};

static inline int be_parse(const char *s)
{
    for (int i = 0; i < BE_COUNT; i++)
        if (strcmp(s, be_names[i]) == 0)
            return i;
    return -1;
}

/* ------------------------------------------------------------ zeropool */

static zp_pool *zpb_pool;

/* ------------------------------------------------ naive mutex free list */

#define NAIVE_HDR 64 /* header before each buffer: keeps it 64-aligned */
#define NAIVE_MIN_SHIFT 12
#define NAIVE_CLASSES 48

typedef struct naive_hdr {
    struct naive_hdr *next;
    unsigned cls;
} naive_hdr;

static pthread_mutex_t naive_mu = PTHREAD_MUTEX_INITIALIZER;
static naive_hdr *naive_free[NAIVE_CLASSES];

ZPB_INLINE unsigned naive_class(size_t size)
{
    if (size <= ((size_t)1 << NAIVE_MIN_SHIFT))
        return NAIVE_MIN_SHIFT;
    return (unsigned)(64 - __builtin_clzll((unsigned long long)(size - 1)));
}

ZPB_INLINE void *naive_get(size_t size)
{
    unsigned cls = naive_class(size);
    naive_hdr *h;
    pthread_mutex_lock(&naive_mu);
    h = naive_free[cls];
    if (h)
        naive_free[cls] = h->next;
    pthread_mutex_unlock(&naive_mu);
    if (!h) {
        h = malloc(((size_t)1 << cls) + NAIVE_HDR);
        if (!h)
            return NULL;
        h->cls = cls;
    }
    return (char *)h + NAIVE_HDR;
}

ZPB_INLINE void naive_put(void *p)
{
    naive_hdr *h = (naive_hdr *)((char *)p - NAIVE_HDR);
    pthread_mutex_lock(&naive_mu);
    h->next = naive_free[h->cls];
    naive_free[h->cls] = h;
    pthread_mutex_unlock(&naive_mu);
}

static void naive_drain(void)
{
    pthread_mutex_lock(&naive_mu);
    for (unsigned c = 0; c < NAIVE_CLASSES; c++) {
        while (naive_free[c]) {
            naive_hdr *h = naive_free[c];
            naive_free[c] = h->next;
            free(h);
        }
    }
    pthread_mutex_unlock(&naive_mu);
}

/* ------------------------------------------------------------ dispatch */

ZPB_INLINE void *be_get(int be, size_t size)
{
    switch (be) {
    case BE_ZEROPOOL:
        return zp_get(zpb_pool, size);
    case BE_MALLOC:
        return malloc(size);
    default:
        return naive_get(size);
    }
}

ZPB_INLINE void be_put(int be, void *p)
{
    switch (be) {
    case BE_ZEROPOOL:
        zp_put(zpb_pool, p);
        break;
    case BE_MALLOC:
        free(p);
        break;
    default:
        naive_put(p);
        break;
    }
}

/* Fresh state for one measurement: a new pool, an empty naive list. */
static inline int be_setup(int be)
{
    if (be == BE_ZEROPOOL) {
        int rc = zp_pool_create(NULL, &zpb_pool);
        if (rc != 0) {
            fprintf(stderr, "zp_bench: zp_pool_create: %s\n", zp_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static inline void be_teardown(int be)
{
    if (be == BE_ZEROPOOL) {
        zp_pool_destroy(zpb_pool);
        zpb_pool = NULL;
    } else if (be == BE_NAIVE) {
        naive_drain();
    }
}

#endif /* ZP_BENCH_BACKEND_H */
