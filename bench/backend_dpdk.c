/*
 * bench/backend_dpdk.c — DPDK's rte_mempool as a competitor (zp_bench_dpdk
 * only, built when CMake finds libdpdk): starting the EAL, one mempool per
 * buffer size and cache size, and the lcore registration of the threads
 * that use them. The get/put calls themselves are inline in backend.h, as
 * a DPDK program compiles them.
 *
 * EAL. Started once per process (zpb_dpdk_init) with
 *   --no-huge --no-pci --no-shconf --no-telemetry -l CPU -m MB
 *   --log-level=lib.eal:error
 * no hugepages, no devices, no shared config files: it runs unprivileged
 * and beside other processes. CPU is the first CPU the calling thread may
 * use (zp_bench's main thread, pinned there already, becomes the main
 * lcore). MB covers the
 * pools the run can make (below) plus 128 MiB for the EAL's own structures;
 * with --no-huge it is one anonymous mapping that costs memory only where
 * it is written. (--in-memory is refused with --no-huge by this DPDK,
 * 22.11: "--legacy-mem is not compatible with --in-memory".)
 *
 * Pools. One rte_mempool per (cache size, buffer size), made on first use
 * and kept for the process (freeing one would make DPDK's allocator zero
 * the whole area). Elements: n = held + 1.5 * cache + 1 + 16, where held
 * is what a scenario can keep out of the pool at once (ZPB_HANDOFF_HELD,
 * or ZPB_BURST_MAX at ZPB_BURST_SIZE: backend.h). A cache holds at most
 * 1.5 * its size (DPDK's flush threshold) and a get fails when the common
 * ring is short even if another lcore's cache is full, so this is enough as
 * long as at most one cache other than the getter's holds buffers: a
 * thread's cache is flushed when it exits, and the main thread's when it
 * hands a pool to a team (be_setup, be_quiesce). The +16 is slack.
 * Objects are cache-line aligned, not page aligned (DPDK puts a 64-byte
 * header before each), with DPDK's default object spreading.
 *
 * Threads. Non-EAL threads get a cache only once registered
 * (rte_thread_register); the driver's team threads register at the start
 * of their role (be_thread_enter) and, through a thread-specific key's
 * destructor, flush their caches and unregister when they exit, so lcore
 * ids are reused team after team.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>

#include "backend_dpdk.h"

struct rte_mempool *zpb_mp;

#define MAX_POOLS 32

static struct {
    unsigned cache;
    size_t size;
    struct rte_mempool *mp;
} pools[MAX_POOLS];
static int npools;
static pthread_mutex_t pools_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t exit_key;
static _Thread_local int registered; /* by zpb_dpdk_thread_enter */

static unsigned pool_elements(unsigned cache, size_t size)
{
    unsigned held = ZPB_HANDOFF_HELD;
    if (size == ZPB_BURST_SIZE && held < ZPB_BURST_MAX)
        held = ZPB_BURST_MAX;
    if (held < ZPB_BULK)
        held = ZPB_BULK;
    return held + cache * 3 / 2 + 1 + 16;
}

void zpb_dpdk_flush(void)
{
    unsigned lc = rte_lcore_id();
    if (lc == LCORE_ID_ANY)
        return;
    pthread_mutex_lock(&pools_mu);
    for (int i = 0; i < npools; i++) {
        struct rte_mempool_cache *c = rte_mempool_default_cache(pools[i].mp, lc);
        if (c)
            rte_mempool_cache_flush(c, pools[i].mp);
    }
    pthread_mutex_unlock(&pools_mu);
}

/* The exit of a registered thread: its caches back to the pools, its lcore
 * id free for the next thread. */
static void thread_exit(void *arg)
{
    (void)arg;
    zpb_dpdk_flush();
    rte_thread_unregister();
}

void zpb_dpdk_thread_enter(void)
{
    if (registered)
        return;
    registered = 1;
    if (rte_lcore_id() != LCORE_ID_ANY)
        return; /* the EAL main thread */
    if (rte_thread_register() != 0) {
        fprintf(stderr, "zp_bench: rte_thread_register: %s\n",
                rte_strerror(rte_errno));
        abort(); /* measuring without a cache would be another backend */
    }
    pthread_setspecific(exit_key, &registered);
}

int zpb_dpdk_init(const size_t *sizes, int nsizes, char *why, size_t len)
{
    /* memory: both cache sizes, every size the run may use: its --sizes and
     * the fixed ones (bulk: 4 KiB, 64 KiB; bursts: 64 KiB; scaling: 64 KiB
     * and 1 MiB) */
    size_t all[24];
    int na = 0;
    const size_t fixed[3] = {4096, ZPB_BURST_SIZE, 1048576};
    for (int i = 0; i < nsizes + 3 && na < 24; i++) {
        size_t size = i < nsizes ? sizes[i] : fixed[i - nsizes];
        int dup = 0;
        for (int j = 0; j < na; j++)
            dup |= all[j] == size;
        if (!dup)
            all[na++] = size;
    }
    double mb = 128;
    for (int i = 0; i < na; i++)
        for (unsigned cache = 32; cache <= 256; cache *= 8)
            mb += (double)pool_elements(cache, all[i]) * (double)(all[i] + 256) /
                  1048576.0;
    char mem[32], core[16];
    snprintf(mem, sizeof mem, "%.0f", mb * 1.1);
    int cpu = 0; /* the first CPU this thread may run on */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &set))
            cpu++;
    snprintf(core, sizeof core, "%d", cpu);
    char *args[] = {"zp_bench_dpdk", "--no-huge", "--no-pci", "--no-shconf",
                    "--no-telemetry", "-l", core, "-m", mem,
                    "--log-level=lib.eal:error", NULL};
    int argc = (int)(sizeof args / sizeof args[0]) - 1;
    fprintf(stderr, "zp_bench: EAL:");
    for (int i = 1; i < argc; i++)
        fprintf(stderr, " %s", args[i]);
    fprintf(stderr, "\n");
    if (rte_eal_init(argc, args) < 0) {
        snprintf(why, len, "rte_eal_init failed: %s (EAL arguments:"
                           " --no-huge --no-pci --no-shconf -l %s -m %s)",
                 rte_strerror(rte_errno), core, mem);
        return -1;
    }
    if (pthread_key_create(&exit_key, thread_exit) != 0) {
        snprintf(why, len, "pthread_key_create failed");
        return -1;
    }
    registered = 1; /* this thread is the main lcore */
    return 0;
}

int zpb_dpdk_bind(unsigned cache, size_t size)
{
    pthread_mutex_lock(&pools_mu);
    for (int i = 0; i < npools; i++) {
        if (pools[i].cache == cache && pools[i].size == size) {
            zpb_mp = pools[i].mp;
            pthread_mutex_unlock(&pools_mu);
            return 0;
        }
    }
    struct rte_mempool *mp = NULL;
    unsigned n = pool_elements(cache, size);
    char name[RTE_MEMPOOL_NAMESIZE];
    snprintf(name, sizeof name, "zpb_%u_%zu", cache, size);
    if (npools < MAX_POOLS)
        mp = rte_mempool_create(name, n, (unsigned)size, cache, 0, NULL, NULL,
                                NULL, NULL, SOCKET_ID_ANY, 0);
    if (mp == NULL) {
        fprintf(stderr, "zp_bench: rte_mempool_create(%s, %u x %zu B, cache %u): %s\n",
                name, n, size, cache,
                npools < MAX_POOLS ? rte_strerror(rte_errno) : "too many pools");
        pthread_mutex_unlock(&pools_mu);
        return -1;
    }
    pools[npools].cache = cache;
    pools[npools].size = size;
    pools[npools].mp = mp;
    npools++;
    zpb_mp = mp;
    pthread_mutex_unlock(&pools_mu);
    fprintf(stderr, "zp_bench: mempool %s: %u elements of %zu B, cache %u\n",
            name, n, size, cache);
    return 0;
}
