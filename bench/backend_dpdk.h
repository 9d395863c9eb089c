/*
 * bench/backend_dpdk.h — what backend.h and backend_dpdk.c share: the
 * buffers a scenario may hold at once (they size the DPDK pools) and, in
 * zp_bench_dpdk (-DZPB_HAVE_DPDK), the DPDK backend's setup calls. The
 * get/put calls are inline in backend.h. Not part of the library.
 */
#ifndef ZP_BENCH_BACKEND_DPDK_H
#define ZP_BENCH_BACKEND_DPDK_H

#include <stddef.h>

/* The hand-off ring's 32 slots plus one buffer on each side; 32 for the
 * bulk rows; 128 for the longest burst, at 64 KiB. */
#define ZPB_BULK 32
#define ZPB_BURST_SIZE 65536
#define ZPB_BURST_MAX 128
#define ZPB_HANDOFF_HELD 34

#ifdef ZPB_HAVE_DPDK
#include <rte_lcore.h>
#include <rte_mempool.h>

/* The pool the DPDK loops use (zpb_dpdk_bind sets it). */
extern struct rte_mempool *zpb_mp;

/* Starts the EAL once (arguments: backend_dpdk.c) with memory for pools of
 * the given sizes. 0, or -1 with the reason in why. */
int zpb_dpdk_init(const size_t *sizes, int nsizes, char *why, size_t len);

/* Points zpb_mp at the mempool of this size with this cache (made on first
 * use). 0, or -1 with a message on stderr. */
int zpb_dpdk_bind(unsigned cache, size_t size);

/* Registers the calling thread as a non-EAL lcore once (it then has a cache
 * in every pool); undone, after a flush of its caches, when it exits. */
void zpb_dpdk_thread_enter(void);

/* Returns what the calling lcore's caches hold to their pools. */
void zpb_dpdk_flush(void);
#endif

#endif /* ZP_BENCH_BACKEND_DPDK_H */
