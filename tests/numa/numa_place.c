/* Proves NUMA placement in a machine with several nodes (run inside the emulated one by run-in-vm.sh): pages on the right node, remote puts going home, zp_node_of and per-node stats agreeing with the kernel. */
/*
 * A plain static program (no cmocka: it runs alone inside a tiny VM whose
 * root holds busybox and this binary). Exits 0 when every check holds, 1
 * on the first failure, 77 when the machine has a single node (nothing to
 * prove). Every page of every buffer is touched, then asked of the kernel
 * with move_pages(2) (nodes NULL: query only), raw system calls, no
 * libnuma. One line per case:
 *   PLACE <case> node=<n> pages=<on node>/<checked>
 * which the lead copies into the release note. ZP_NUMA_BIND with
 * ZP_HUGE_PAGES and ZP_LOCKED also checks VmLck (every slab byte locked
 * while the pool lives, none after), one line LOCKED <case> ...
 *
 * Threads are pinned with sched_setaffinity to the CPUs the guest's sysfs
 * lists for a node; nodes without CPUs (--cpus 1 --nodes 2) are reached
 * only through zp_get_on_node and ZP_NUMA_BIND.
 */
#define _GNU_SOURCE
#include <zeropool.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAXN 8
#define KiB ((size_t)1024)
#define MiB (1024 * KiB)
#define NSMALL 64       /* buffers of 64 KiB per case */
#define NBIG 4          /* buffers of 4 MiB per case */

static int nnodes, node_ids[MAXN];
static cpu_set_t node_cpus[MAXN];
static int node_ncpus[MAXN];
static int failures;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                         \
            printf(__VA_ARGS__);                                                \
            printf("\n");                                                       \
            failures++;                                                         \
        }                                                                       \
    } while (0)

/* ------------------------------------------------------------- topology */

static void parse_list(const char *s, void (*fn)(long, void *), void *arg)
{
    while (*s) {
        char *end;
        long lo = strtol(s, &end, 10), hi = lo;
        if (end == s)
            break;
        s = end;
        if (*s == '-')
            hi = strtol(s + 1, (char **)&s, 10);
        for (long i = lo; i <= hi; i++)
            fn(i, arg);
        while (*s == ',' || *s == '\n')
            s++;
    }
}

static void add_node(long id, void *arg)
{
    (void)arg;
    if (nnodes < MAXN)
        node_ids[nnodes++] = (int)id;
}

static void add_cpu(long cpu, void *arg)
{
    int k = (int)(intptr_t)arg;
    CPU_SET((int)cpu, &node_cpus[k]);
    node_ncpus[k]++;
}

static int read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = 0;
    return 1;
}

static void read_topology(void)
{
    char buf[4096];
    if (read_file("/sys/devices/system/node/online", buf, sizeof buf))
        parse_list(buf, add_node, NULL);
    for (int k = 0; k < nnodes; k++) {
        char path[96];
        CPU_ZERO(&node_cpus[k]);
        snprintf(path, sizeof path, "/sys/devices/system/node/node%d/cpulist", node_ids[k]);
        if (read_file(path, buf, sizeof buf))
            parse_list(buf, add_cpu, (void *)(intptr_t)k);
        printf("# node %d: %d cpus\n", node_ids[k], node_ncpus[k]);
    }
}

/* -------------------------------------------------------------- the kernel */

/* Touches every page of [buf, buf+len) and counts those the kernel has on
 * node; *checked gets the pages asked. */
static void count_pages(void *buf, size_t len, int node, unsigned long *on, unsigned long *checked)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    enum { CHUNK = 512 };
    void *pages[CHUNK];
    int status[CHUNK];
    for (size_t off = 0; off < len; off += page)
        ((volatile char *)buf)[off] = 1;
    for (size_t off = 0; off < len;) {
        int n = 0;
        for (; n < CHUNK && off < len; n++, off += page)
            pages[n] = (char *)buf + off;
        long rc = syscall(SYS_move_pages, 0, (unsigned long)n, pages, NULL, status, 0);
        CHECK(rc == 0, "move_pages: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            *checked += 1;
            *on += status[i] == node;
        }
    }
}

/* The node of buf's first page (touched), as get_mempolicy says. */
static int kernel_node(void *buf)
{
    int node = -1;
    ((volatile char *)buf)[0] = 1;
    if (syscall(SYS_get_mempolicy, &node, NULL, 0ul, buf, 3ul) != 0)
        return -1;
    return node;
}

/* -------------------------------------------------------------- threads */

typedef struct job {
    int cpu_node;          /* index of the node to run on, or -1: anywhere */
    void (*fn)(struct job *);
    zp_pool *pool;
    int node;              /* node id the buffers should be on */
    int ask;               /* zp_get_on_node(ask), or -1: zp_get */
    const char *name;
    void **bufs;           /* in/out */
    int n;
    size_t size;
} job;

static void *job_main(void *arg)
{
    job *j = arg;
    if (j->cpu_node >= 0) {
        int rc = sched_setaffinity(0, sizeof(cpu_set_t), &node_cpus[j->cpu_node]);
        CHECK(rc == 0, "sched_setaffinity to node %d: %s", node_ids[j->cpu_node],
              strerror(errno));
        sched_yield();
    }
    j->fn(j);
    return NULL;
}

static void run_on(int cpu_node, void (*fn)(job *), job *j)
{
    pthread_t t;
    j->cpu_node = cpu_node;
    j->fn = fn;
    if (pthread_create(&t, NULL, job_main, j) != 0) {
        printf("FAIL pthread_create\n");
        exit(1);
    }
    pthread_join(t, NULL);
}

/* Gets NSMALL x 64 KiB and NBIG x 4 MiB (zp_get or zp_get_on_node), checks
 * every page and zp_node_of, prints the figures, puts them back. */
static void place(job *j)
{
    void *small[NSMALL], *big[NBIG];
    unsigned long on = 0, checked = 0;
    int agree = 0;
    for (int i = 0; i < NSMALL; i++) {
        small[i] = j->ask >= 0 ? zp_get_on_node(j->pool, 64 * KiB, j->ask)
                               : zp_get(j->pool, 64 * KiB);
        CHECK(small[i] != NULL, "%s: get of 64 KiB failed: %s", j->name, strerror(errno));
    }
    for (int i = 0; i < NBIG; i++) {
        big[i] = j->ask >= 0 ? zp_get_on_node(j->pool, 4 * MiB, j->ask)
                             : zp_get(j->pool, 4 * MiB);
        CHECK(big[i] != NULL, "%s: get of 4 MiB failed: %s", j->name, strerror(errno));
    }
    if (failures)
        return;
    for (int i = 0; i < NSMALL; i++) {
        count_pages(small[i], 64 * KiB, j->node, &on, &checked);
        agree += zp_node_of(j->pool, small[i]) == kernel_node(small[i]);
    }
    for (int i = 0; i < NBIG; i++) {
        count_pages(big[i], 4 * MiB, j->node, &on, &checked);
        agree += zp_node_of(j->pool, big[i]) == kernel_node(big[i]);
    }
    printf("PLACE %s node=%d pages=%lu/%lu node_of_agrees=%d/%d\n", j->name, j->node, on,
           checked, agree, NSMALL + NBIG);
    CHECK(on == checked, "%s: %lu of %lu pages on node %d", j->name, on, checked, j->node);
    CHECK(agree == NSMALL + NBIG, "%s: zp_node_of disagrees with the kernel for %d buffers",
          j->name, NSMALL + NBIG - agree);
    for (int i = 0; i < NSMALL; i++)
        zp_put(j->pool, small[i]);
    for (int i = 0; i < NBIG; i++)
        zp_put(j->pool, big[i]);
}

/* As place, 64 KiB buffers only. */
static void place_small(job *j)
{
    void *small[NSMALL];
    unsigned long on = 0, checked = 0;
    for (int i = 0; i < NSMALL; i++) {
        small[i] = zp_get(j->pool, 64 * KiB);
        CHECK(small[i] != NULL, "%s: get failed", j->name);
        if (small[i] == NULL)
            return;
    }
    for (int i = 0; i < NSMALL; i++)
        count_pages(small[i], 64 * KiB, j->node, &on, &checked);
    printf("PLACE %s node=%d pages=%lu/%lu\n", j->name, j->node, on, checked);
    CHECK(on == checked, "%s: %lu of %lu pages on node %d", j->name, on, checked, j->node);
    for (int i = 0; i < NSMALL; i++)
        zp_put(j->pool, small[i]);
}

static void get_many(job *j)
{
    for (int i = 0; i < j->n; i++)
        j->bufs[i] = zp_get(j->pool, j->size);
}

static void put_many(job *j)
{
    for (int i = 0; i < j->n; i++)
        zp_put(j->pool, j->bufs[i]);
}

static void flush(job *j)
{
    zp_trim(j->pool, SIZE_MAX); /* the thread's cache (and stash) back */
}

/* ---------------------------------------------------------------- stats */

static void nodes_add_up(zp_pool *pool, const char *what)
{
    zp_stats t, n;
    uint64_t gets = 0, puts = 0, remote = 0, reserved = 0, out = 0, cached = 0;
    t.struct_size = sizeof t;
    CHECK(zp_stats_read(pool, &t) == 0, "zp_stats_read");
    for (int k = 0; k < nnodes; k++) {
        n.struct_size = sizeof n;
        CHECK(zp_stats_read_node(pool, node_ids[k], &n) == 0, "zp_stats_read_node(%d)",
              node_ids[k]);
        printf("# %s: node %d: gets %llu puts %llu remote_puts %llu reserved %llu "
               "outstanding %llu cached %llu\n",
               what, node_ids[k], (unsigned long long)n.gets, (unsigned long long)n.puts,
               (unsigned long long)n.remote_puts, (unsigned long long)n.bytes_reserved,
               (unsigned long long)n.bytes_outstanding, (unsigned long long)n.bytes_cached);
        gets += n.gets;
        puts += n.puts;
        remote += n.remote_puts;
        reserved += n.bytes_reserved;
        out += n.bytes_outstanding;
        cached += n.bytes_cached;
    }
    int ok = gets == t.gets && puts == t.puts && remote == t.remote_puts &&
             reserved == t.bytes_reserved && out == t.bytes_outstanding &&
             cached == t.bytes_cached;
    printf("STATS %s nodes_add_up=%s (gets %llu/%llu puts %llu/%llu remote %llu/%llu "
           "reserved %llu/%llu)\n",
           what, ok ? "yes" : "NO", (unsigned long long)gets, (unsigned long long)t.gets,
           (unsigned long long)puts, (unsigned long long)t.puts, (unsigned long long)remote,
           (unsigned long long)t.remote_puts, (unsigned long long)reserved,
           (unsigned long long)t.bytes_reserved);
    CHECK(ok, "%s: per-node stats do not add up to the totals", what);
}

/* ---------------------------------------------------------------- cases */

static zp_pool *pool_new(int numa, int node)
{
    zp_config cfg;
    zp_pool *pool;
    zp_config_init(&cfg);
    cfg.numa = numa;
    cfg.numa_node = node;
    int rc = zp_pool_create(&cfg, &pool);
    if (rc != 0) {
        printf("FAIL zp_pool_create(numa %d, node %d): %s\n", numa, node, zp_strerror(rc));
        exit(1);
    }
    return pool;
}

/* A thread on each node with CPUs gets memory of its node. */
static void case_local(void)
{
    zp_pool *pool = pool_new(ZP_NUMA_LOCAL, 0);
    for (int k = 0; k < nnodes; k++) {
        if (node_ncpus[k] == 0)
            continue;
        char name[32];
        snprintf(name, sizeof name, "local-thread-on-%d", node_ids[k]);
        job j = {.pool = pool, .node = node_ids[k], .ask = -1, .name = name};
        run_on(k, place, &j);
    }
    nodes_add_up(pool, "local");
    zp_pool_destroy(pool);
}

/* zp_get_on_node(n) from a thread of every node with CPUs. */
static void case_on_node(void)
{
    zp_pool *pool = pool_new(ZP_NUMA_LOCAL, 0);
    for (int from = 0; from < nnodes; from++) {
        if (node_ncpus[from] == 0)
            continue;
        for (int k = 0; k < nnodes; k++) {
            char name[48];
            snprintf(name, sizeof name, "get_on_node-%d-from-%d", node_ids[k], node_ids[from]);
            job j = {.pool = pool, .node = node_ids[k], .ask = node_ids[k], .name = name};
            run_on(from, place, &j);
        }
    }
    nodes_add_up(pool, "get_on_node");
    zp_pool_destroy(pool);
}

/* ZP_NUMA_BIND to each node, the caller on each node with CPUs. */
static void case_bind(void)
{
    for (int k = 0; k < nnodes; k++) {
        zp_pool *pool = pool_new(ZP_NUMA_BIND, node_ids[k]);
        for (int from = 0; from < nnodes; from++) {
            if (node_ncpus[from] == 0)
                continue;
            char name[48];
            snprintf(name, sizeof name, "bind-%d-from-%d", node_ids[k], node_ids[from]);
            job j = {.pool = pool, .node = node_ids[k], .ask = -1, .name = name};
            run_on(from, place, &j);
        }
        nodes_add_up(pool, "bind");
        zp_pool_destroy(pool);
    }
}

/* A field of /proc/self/status in KiB ("VmLck"), or -1. */
static long status_kib(const char *field)
{
    char buf[8192];
    if (!read_file("/proc/self/status", buf, sizeof buf))
        return -1;
    size_t len = strlen(field);
    for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, field, len) == 0 && l[len] == ':')
            return strtol(l + len + 1, NULL, 10);
    return -1;
}

/* ZP_NUMA_BIND with ZP_HUGE_PAGES and ZP_LOCKED: the slabs are bound
 * before mlock faults them in, so every page is on the node asked for,
 * and locked (VmLck) until the pool is destroyed. */
static void case_bind_huge_locked(int from)
{
    for (int k = 0; k < nnodes; k++) {
        zp_config cfg;
        zp_pool *pool;
        zp_config_init(&cfg);
        cfg.numa = ZP_NUMA_BIND;
        cfg.numa_node = node_ids[k];
        cfg.flags = ZP_HUGE_PAGES | ZP_LOCKED;
        int rc = zp_pool_create(&cfg, &pool);
        CHECK(rc == 0, "zp_pool_create(bind %d, huge, locked): %s", node_ids[k],
              zp_strerror(rc));
        if (rc != 0)
            return;
        long lck0 = status_kib("VmLck");
        char name[48];
        snprintf(name, sizeof name, "bind-huge-locked-%d-from-%d", node_ids[k],
                 node_ids[from]);
        job j = {.pool = pool, .node = node_ids[k], .ask = -1, .name = name};
        run_on(from, place, &j);
        long lck1 = status_kib("VmLck");
        zp_stats st = {.struct_size = sizeof st};
        CHECK(zp_stats_read(pool, &st) == 0, "zp_stats_read");
        printf("LOCKED %s VmLck +%ld KiB, slabs %llu KiB\n", name, lck1 - lck0,
               (unsigned long long)(st.bytes_reserved >> 10));
        /* every mapped byte is locked (in whole huge pages) */
        CHECK(lck1 - lck0 >= (long)(st.bytes_reserved >> 10) &&
                  st.bytes_reserved >= (uint64_t)(NSMALL * 64 * KiB + NBIG * 4 * MiB),
              "%s: VmLck grew by %ld KiB for %llu KiB of slabs", name, lck1 - lck0,
              (unsigned long long)(st.bytes_reserved >> 10));
        zp_pool_destroy(pool);
        long lck2 = status_kib("VmLck");
        CHECK(lck2 == lck0, "%s: VmLck %ld KiB after destroy, %ld before", name, lck2, lck0);
    }
}

static int count_in(void **set, int n, void **bufs, int m)
{
    int hits = 0;
    for (int i = 0; i < m; i++)
        for (int k = 0; k < n; k++)
            if (bufs[i] == set[k]) {
                hits++;
                break;
            }
    return hits;
}

/* Buffers got on node A and put by a thread of node B go home to A: the
 * next gets on A find them, those on B never do. */
static void case_remote_put(int a, int b)
{
    enum { N = 64, M = 192 };
    static void *orig[N], *got_a[M], *got_b[M];
    zp_pool *pool = pool_new(ZP_NUMA_LOCAL, 0);
    job j = {.pool = pool, .bufs = orig, .n = N, .size = 64 * KiB};
    run_on(a, get_many, &j);              /* A's buffers */
    run_on(b, put_many, &j);              /* put on B, thread exits */
    job gb = {.pool = pool, .bufs = got_b, .n = M, .size = 64 * KiB};
    run_on(b, get_many, &gb);             /* B gets: none of A's */
    job ga = {.pool = pool, .bufs = got_a, .n = M, .size = 64 * KiB};
    run_on(a, get_many, &ga);             /* A gets: all of them back */
    int on_b = count_in(orig, N, got_b, M), on_a = count_in(orig, N, got_a, M);
    zp_stats s;
    s.struct_size = sizeof s;
    CHECK(zp_stats_read_node(pool, node_ids[a], &s) == 0, "zp_stats_read_node");
    printf("REMOTE got-on-%d put-on-%d: back to node-%d threads %d/%d, to node-%d threads "
           "%d/%d, remote_puts on node %d: %llu\n",
           node_ids[a], node_ids[b], node_ids[a], on_a, N, node_ids[b], on_b, N, node_ids[a],
           (unsigned long long)s.remote_puts);
    CHECK(on_b == 0, "%d buffers of node %d went to a node-%d thread", on_b, node_ids[a],
          node_ids[b]);
    CHECK(on_a == N, "only %d of %d buffers came back to node-%d threads", on_a, N,
          node_ids[a]);
    CHECK(s.remote_puts == N, "remote_puts on node %d is %llu, want %d", node_ids[a],
          (unsigned long long)s.remote_puts, N);
    /* every page of what node A got is on A, of what B got on B */
    unsigned long on = 0, checked = 0;
    for (int i = 0; i < M; i++)
        count_pages(got_a[i], 64 * KiB, node_ids[a], &on, &checked);
    printf("PLACE remote-put-back-on-%d node=%d pages=%lu/%lu\n", node_ids[a], node_ids[a], on,
           checked);
    CHECK(on == checked, "pages of node-%d gets: %lu/%lu", node_ids[a], on, checked);
    on = checked = 0;
    for (int i = 0; i < M; i++)
        count_pages(got_b[i], 64 * KiB, node_ids[b], &on, &checked);
    printf("PLACE remote-put-gets-on-%d node=%d pages=%lu/%lu\n", node_ids[b], node_ids[b], on,
           checked);
    CHECK(on == checked, "pages of node-%d gets: %lu/%lu", node_ids[b], on, checked);
    /* a thread still alive: its stash goes home on zp_trim */
    job p2 = {.pool = pool, .bufs = got_a, .n = M, .size = 64 * KiB};
    run_on(b, put_many, &p2);
    job pb = {.pool = pool, .bufs = got_b, .n = M, .size = 64 * KiB};
    run_on(b, put_many, &pb);
    run_on(b, flush, &pb);
    nodes_add_up(pool, "remote-put");
    zp_stats t;
    t.struct_size = sizeof t;
    zp_stats_read(pool, &t);
    CHECK(t.gets == t.puts, "after every put: gets %llu, puts %llu", (unsigned long long)t.gets,
          (unsigned long long)t.puts);
    zp_pool_destroy(pool);
}

/* Threads on every node with CPUs, migrating between nodes now and then,
 * get buffers of mixed sizes, write a stamp, and hand them to each other
 * through shared slots; every buffer is checked by whoever puts it. At the
 * end everything is back: gets == puts, nothing outstanding, the nodes add
 * up, every idle page still on its buffer's node. */
#define STRESS_THREADS 4
#define STRESS_SLOTS 256
#define STRESS_ITERS 20000

static _Atomic(uintptr_t) slots[STRESS_SLOTS];
static zp_pool *stress_pool;
static _Atomic int stress_bad;

typedef struct stress_arg {
    int id;
    int cpu_nodes[MAXN], ncpu_nodes;
} stress_arg;

static void stamp_check(void *b)
{
    size_t cap = zp_capacity(stress_pool, b);
    uint64_t want = (uint64_t)(uintptr_t)b ^ 0x5a5a5a5a5a5a5a5aull;
    uint64_t got, tail;
    memcpy(&got, b, sizeof got);
    memcpy(&tail, (char *)b + cap - sizeof tail, sizeof tail);
    if (got != want || tail != want)
        atomic_fetch_add(&stress_bad, 1);
}

static void stamp(void *b)
{
    size_t cap = zp_capacity(stress_pool, b);
    uint64_t v = (uint64_t)(uintptr_t)b ^ 0x5a5a5a5a5a5a5a5aull;
    memcpy(b, &v, sizeof v);
    memcpy((char *)b + cap - sizeof v, &v, sizeof v);
}

static void *stress_main(void *arg)
{
    stress_arg *a = arg;
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(a->id + 1);
    for (int i = 0; i < STRESS_ITERS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (i % 2000 == 0) { /* migrate */
            int k = a->cpu_nodes[(x >> 8) % (uint64_t)a->ncpu_nodes];
            sched_setaffinity(0, sizeof(cpu_set_t), &node_cpus[k]);
        }
        size_t size = (size_t)4096 << ((x >> 20) % 6); /* 4 .. 128 KiB */
        if ((x >> 40) % 64 == 0)
            size = 2 * MiB; /* now and then an oversize one (max_class 1 MiB) */
        void *b = (x >> 30) % 5 == 0 ? zp_get_on_node(stress_pool, size,
                                                      node_ids[(x >> 33) % (uint64_t)nnodes])
                                     : zp_get(stress_pool, size);
        if (b == NULL) {
            atomic_fetch_add(&stress_bad, 1);
            continue;
        }
        stamp(b);
        uintptr_t old = atomic_exchange(&slots[(x >> 44) % STRESS_SLOTS], (uintptr_t)b);
        if (old) {
            stamp_check((void *)old);
            zp_put(stress_pool, (void *)old);
        }
    }
    return NULL;
}

/* Reads every node's stats and the pool's while the stress runs (the
 * per-node attribution of caches that move is read concurrently). */
static _Atomic int stress_done;

static void *stress_reader(void *arg)
{
    (void)arg;
    unsigned long reads = 0;
    while (!atomic_load(&stress_done)) {
        zp_stats st;
        st.struct_size = sizeof st;
        zp_stats_read(stress_pool, &st);
        for (int k = 0; k < nnodes; k++) {
            st.struct_size = sizeof st;
            if (zp_stats_read_node(stress_pool, node_ids[k], &st) != 0)
                atomic_fetch_add(&stress_bad, 1);
        }
        reads++;
    }
    printf("# stress: %lu concurrent stats reads\n", reads);
    return NULL;
}

static void case_stress(const int *with_cpus, int nc)
{
    zp_config cfg;
    zp_config_init(&cfg);
    cfg.max_class = MiB;
    if (zp_pool_create(&cfg, &stress_pool) != 0) {
        printf("FAIL zp_pool_create\n");
        exit(1);
    }
    pthread_t t[STRESS_THREADS], reader;
    stress_arg args[STRESS_THREADS];
    pthread_create(&reader, NULL, stress_reader, NULL);
    for (int i = 0; i < STRESS_THREADS; i++) {
        args[i].id = i;
        args[i].ncpu_nodes = nc;
        memcpy(args[i].cpu_nodes, with_cpus, sizeof(int) * (size_t)nc);
        pthread_create(&t[i], NULL, stress_main, &args[i]);
    }
    for (int i = 0; i < STRESS_THREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&stress_done, 1);
    pthread_join(reader, NULL);
    for (int i = 0; i < STRESS_SLOTS; i++) {
        uintptr_t b = atomic_exchange(&slots[i], 0);
        if (b) {
            stamp_check((void *)b);
            zp_put(stress_pool, (void *)b);
        }
    }
    zp_trim(stress_pool, SIZE_MAX);
    zp_stats st;
    st.struct_size = sizeof st;
    zp_stats_read(stress_pool, &st);
    printf("STRESS threads=%d iters=%d: gets %llu puts %llu remote_puts %llu outstanding %llu "
           "bad %d\n",
           STRESS_THREADS, STRESS_ITERS, (unsigned long long)st.gets, (unsigned long long)st.puts,
           (unsigned long long)st.remote_puts, (unsigned long long)st.bytes_outstanding,
           atomic_load(&stress_bad));
    CHECK(atomic_load(&stress_bad) == 0, "stress: %d corrupted or failed buffers",
          atomic_load(&stress_bad));
    CHECK(st.gets == st.puts, "stress: gets %llu != puts %llu", (unsigned long long)st.gets,
          (unsigned long long)st.puts);
    CHECK(st.bytes_outstanding == 0, "stress: %llu bytes outstanding",
          (unsigned long long)st.bytes_outstanding);
    nodes_add_up(stress_pool, "stress");
    /* what is idle now is in its node's depots: the next gets of a thread
     * on each node are of its node, page by page */
    for (int k = 0; k < nc; k++) {
        char name[32];
        snprintf(name, sizeof name, "after-stress-on-%d", node_ids[with_cpus[k]]);
        job j = {.pool = stress_pool, .node = node_ids[with_cpus[k]], .ask = -1, .name = name};
        run_on(with_cpus[k], place_small, &j);
    }
    zp_pool_destroy(stress_pool);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    read_topology();
    if (nnodes < 2) {
        printf("SKIP: %d NUMA node(s): run me in a machine with several (run-in-vm.sh)\n",
               nnodes);
        return 77;
    }
    int with_cpus[MAXN], nc = 0;
    for (int k = 0; k < nnodes; k++)
        if (node_ncpus[k] > 0)
            with_cpus[nc++] = k;
    case_local();
    case_on_node();
    case_bind();
    case_bind_huge_locked(with_cpus[0]);
    if (nc >= 2) {
        case_remote_put(with_cpus[0], with_cpus[1]);
        case_remote_put(with_cpus[1], with_cpus[0]);
        case_stress(with_cpus, nc);
    } else {
        printf("# one node with CPUs: no remote-put case\n");
    }
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
