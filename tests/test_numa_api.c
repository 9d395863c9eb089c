/* Tests the NUMA API on the machine the suite runs on: zp_get_on_node, zp_node_of against the kernel, zp_stats_read_node, zp_provider_node, zp_config.numa validation and struct_size compatibility. */
#include "zp_test.h"

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Works on any machine: the online nodes are read from sysfs here too (no
 * sysfs node directory: one node, 0), and a node id that is surely not
 * online is the largest online id + 1. The multi-node placement itself is
 * proven in the emulated 2-node machine (tests/numa/).
 */

#define NODE_MAX 1024

static int online[NODE_MAX], nonline;

static void read_online(void)
{
    char buf[4096] = "";
    FILE *f = fopen("/sys/devices/system/node/online", "r");
    nonline = 0;
    if (f != NULL) {
        if (fgets(buf, sizeof buf, f) == NULL)
            buf[0] = 0;
        fclose(f);
    }
    for (char *s = buf; *s;) {
        char *end;
        long lo = strtol(s, &end, 10), hi = lo;
        if (end == s)
            break;
        s = end;
        if (*s == '-')
            hi = strtol(s + 1, &s, 10);
        for (long i = lo; i <= hi && i < NODE_MAX && nonline < NODE_MAX; i++)
            online[nonline++] = (int)i;
        while (*s == ',' || *s == '\n')
            s++;
    }
    if (nonline == 0)
        online[nonline++] = 0;
}

static int absent_node(void)
{
    return online[nonline - 1] + 1;
}

/* The node the kernel placed buf's first page on (touching it first), or
 * -1 with the reason printed when the kernel cannot say. */
static int kernel_node(void *buf)
{
    int node = -1;
    ((volatile char *)buf)[0] = 1;
    if (syscall(SYS_get_mempolicy, &node, NULL, 0ul, buf, 3ul /* F_NODE|F_ADDR */) != 0) {
        print_message("# get_mempolicy: %s (no kernel check)\n", strerror(errno));
        return -1;
    }
    return node;
}

static void expect_node(zp_pool *pool, void *buf, int want)
{
    int got = zp_node_of(pool, buf);
    int k = kernel_node(buf);
    if (got != want)
        fail_msg("zp_node_of(%p) = %d, want %d", buf, got, want);
    if (k >= 0 && k != got)
        fail_msg("zp_node_of(%p) = %d but the kernel says node %d", buf, got, k);
}

static void test_get_on_node(void **state)
{
    zp_pool *pool = ZPT_POOL(.max_class = ZPT_MiB);
    void *b[4];
    (void)state;
    for (int i = 0; i < nonline; i++) {
        b[0] = zp_get_on_node(pool, 64 * ZPT_KiB, online[i]);
        b[1] = zp_get_on_node(pool, 1, online[i]);
        b[2] = zp_get_on_node(pool, 3 * ZPT_MiB, online[i]); /* oversize */
        b[3] = zp_get(pool, 64 * ZPT_KiB);
        for (int j = 0; j < 4; j++)
            assert_non_null(b[j]);
        assert_int_equal(zp_capacity(pool, b[0]), 64 * ZPT_KiB);
        assert_true(zp_capacity(pool, b[2]) >= 3 * ZPT_MiB);
        for (int j = 0; j < 3; j++)
            expect_node(pool, b[j], online[i]);
        if (nonline == 1)
            expect_node(pool, b[3], online[0]);
        for (int j = 0; j < 4; j++)
            zp_put(pool, b[j]);
    }
    errno = 0;
    assert_null(zp_get_on_node(pool, 4096, absent_node()));
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(zp_strerror(-EINVAL), "node"));
    errno = 0;
    assert_null(zp_get_on_node(pool, 4096, -1));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(zp_get_on_node(NULL, 4096, online[0]));
    assert_int_equal(errno, EINVAL);
    { zp_stats st = zpt_read(pool); zpt_assert_stats(&st); }
    zp_pool_destroy(pool);
}

static void test_node_of_foreign(void **state)
{
    zp_pool *pool = ZPT_POOL(.max_class = ZPT_MiB);
    zp_pool *other = ZPT_POOL(.max_class = ZPT_MiB);
    char stack[64];
    void *heap = malloc(64);
    void *b = zp_get(pool, 8192), *o = zp_get(other, 8192);
    (void)state;
    assert_int_equal(zp_node_of(pool, NULL), -1);
    assert_int_equal(zp_node_of(NULL, b), -1);
    assert_int_equal(zp_node_of(pool, stack), -1);
    assert_int_equal(zp_node_of(pool, heap), -1);
    assert_int_equal(zp_node_of(pool, o), -1);            /* another pool's */
    assert_int_equal(zp_node_of(pool, (char *)b + 64), -1); /* interior */
    assert_true(zp_node_of(pool, b) >= 0);
    assert_true(zp_node_of(other, o) >= 0);
    zp_put(pool, b);
    zp_put(other, o);
    free(heap);
    zp_pool_destroy(other);
    zp_pool_destroy(pool);
}

/* Every node's figures summed give the pool's (and, without a reset in
 * between, each node's figures keep the snapshot invariants). */
static void expect_nodes_add_up(zp_pool *pool, int invariants)
{
    zp_stats t = zpt_read(pool), sum, n;
    memset(&sum, 0, sizeof sum);
    for (int i = 0; i < nonline; i++) {
        n.struct_size = sizeof n;
        assert_int_equal(zp_stats_read_node(pool, online[i], &n), 0);
        if (invariants)
            zpt_assert_stats(&n);
#define ADD(f) sum.f += n.f
        ADD(gets); ADD(puts); ADD(cache_hits); ADD(depot_hits); ADD(allocations);
        ADD(oversize); ADD(discards); ADD(contention); ADD(misuse); ADD(remote_puts);
        ADD(bytes_reserved); ADD(bytes_outstanding); ADD(bytes_cached);
        for (uint32_t c = 0; c < t.nclasses; c++) {
            ADD(classes[c].gets); ADD(classes[c].puts); ADD(classes[c].bytes_reserved);
            ADD(classes[c].bytes_outstanding); ADD(classes[c].bytes_cached);
        }
#undef ADD
    }
#define EQ(f) if (sum.f != t.f) fail_msg(#f ": nodes add up to %llu, the pool says %llu", \
                                         (unsigned long long)sum.f, (unsigned long long)t.f)
    EQ(gets); EQ(puts); EQ(cache_hits); EQ(depot_hits); EQ(allocations); EQ(oversize);
    EQ(discards); EQ(contention); EQ(misuse); EQ(remote_puts); EQ(bytes_reserved);
    EQ(bytes_outstanding); EQ(bytes_cached);
    for (uint32_t c = 0; c < t.nclasses; c++) {
        EQ(classes[c].gets); EQ(classes[c].puts); EQ(classes[c].bytes_reserved);
        EQ(classes[c].bytes_outstanding); EQ(classes[c].bytes_cached);
    }
#undef EQ
}

static void test_stats_node(void **state)
{
    zp_pool *pool = ZPT_POOL(.max_class = ZPT_MiB);
    void *held[40];
    zp_stats s;
    (void)state;
    for (int i = 0; i < 40; i++)
        held[i] = zp_get(pool, (size_t)4096 << (i % 6)); /* 4 .. 128 KiB */
    held[39] = zp_get(pool, 2 * ZPT_MiB);                /* oversize */
    for (int i = 0; i < 20; i++)
        zp_put(pool, held[i]);
    expect_nodes_add_up(pool, 1);
    if (nonline == 1) {
        /* one node: its figures are the pool's */
        zp_stats t = zpt_read(pool);
        s.struct_size = sizeof s;
        assert_int_equal(zp_stats_read_node(pool, online[0], &s), 0);
        assert_int_equal(s.gets, t.gets);
        assert_int_equal(s.puts, t.puts);
        assert_int_equal(s.bytes_reserved, t.bytes_reserved);
        assert_int_equal(s.remote_puts, 0);
    }
    zp_stats_reset(pool);
    for (int i = 20; i < 40; i++)
        zp_put(pool, held[i]);
    expect_nodes_add_up(pool, 0);
    /* errors */
    s.struct_size = sizeof s;
    assert_int_equal(zp_stats_read_node(pool, absent_node(), &s), -EINVAL);
    assert_non_null(strstr(zp_strerror(-EINVAL), "node"));
    assert_int_equal(zp_stats_read_node(pool, -1, &s), -EINVAL);
    assert_int_equal(zp_stats_read_node(NULL, online[0], &s), -EINVAL);
    assert_int_equal(zp_stats_read_node(pool, online[0], NULL), -EINVAL);
    s.struct_size = 8;
    assert_int_equal(zp_stats_read_node(pool, online[0], &s), -EINVAL);
    /* an older zp_stats (without remote_puts) is filled up to its size */
    {
        union {
            zp_stats s;
            unsigned char raw[sizeof(zp_stats)];
        } old;
        size_t size = offsetof(zp_stats, remote_puts);
        memset(&old, 0xA5, sizeof old);
        old.s.struct_size = size;
        assert_int_equal(zp_stats_read_node(pool, online[0], &old.s), 0);
        assert_int_equal(old.s.struct_size, size);
        for (size_t i = size; i < sizeof old; i++)
            assert_int_equal(old.raw[i], 0xA5);
    }
    zp_pool_destroy(pool);
}

/* zp_config.numa and numa_node. */
static void expect_invalid(zp_config *cfg, const char *word)
{
    zp_pool *pool = NULL;
    int rc = zp_pool_create(cfg, &pool);
    if (rc != -EINVAL) {
        if (rc == 0)
            zp_pool_destroy(pool);
        fail_msg("numa %d numa_node %d: zp_pool_create returned %d, want -EINVAL", cfg->numa,
                 cfg->numa_node, rc);
    }
    if (strstr(zp_strerror(-EINVAL), word) == NULL)
        fail_msg("zp_strerror(-EINVAL) = \"%s\" does not mention %s", zp_strerror(-EINVAL),
                 word);
    print_message("# %s\n", zp_strerror(-EINVAL));
}

static void test_config(void **state)
{
    zp_config cfg;
    zp_pool *pool;
    void *b;
    (void)state;
    zp_config_init(&cfg);
    assert_int_equal(cfg.numa, ZP_NUMA_LOCAL);
    assert_int_equal(cfg.numa_node, 0);
    cfg.numa = 3;
    expect_invalid(&cfg, "numa");
    cfg.numa = -1;
    expect_invalid(&cfg, "numa");
    cfg.numa = ZP_NUMA_BIND;
    cfg.numa_node = absent_node();
    expect_invalid(&cfg, "numa_node");
    cfg.numa_node = -1;
    expect_invalid(&cfg, "numa_node");
    /* numa_node is only read by ZP_NUMA_BIND */
    cfg.numa = ZP_NUMA_NONE;
    cfg.numa_node = absent_node();
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    b = zp_get(pool, 3 * 65536);
    assert_non_null(b);
    expect_node(pool, b, kernel_node(b) >= 0 ? kernel_node(b) : online[0]);
    zp_put(pool, b);
    zp_pool_destroy(pool);
    /* every online node binds */
    for (int i = 0; i < nonline; i++) {
        cfg.numa = ZP_NUMA_BIND;
        cfg.numa_node = online[i];
        assert_int_equal(zp_pool_create(&cfg, &pool), 0);
        b = zp_get(pool, 65536);
        assert_non_null(b);
        expect_node(pool, b, online[i]);
        zp_put(pool, b);
        b = zp_get(pool, 128 * ZPT_MiB); /* oversize */
        assert_non_null(b);
        expect_node(pool, b, online[i]);
        zp_put(pool, b);
        zp_pool_destroy(pool);
    }
}

/* A config from 0.1.0's header ends where numa does (decay_ms and its
 * padding): those bytes, whatever they hold, are not read as numa. */
static void test_struct_size(void **state)
{
    union {
        zp_config cfg;
        unsigned char raw[sizeof(zp_config)];
    } m;
    size_t old = offsetof(zp_config, numa) + sizeof(int);
    zp_pool *pool = NULL;
    (void)state;
    zp_config_init(&m.cfg);
    memset(m.raw + offsetof(zp_config, numa), 0xA5, sizeof(zp_config) - offsetof(zp_config, numa));
    m.cfg.struct_size = old;
    assert_int_equal(zp_pool_create(&m.cfg, &pool), 0);
    void *b = zp_get(pool, 4096);
    assert_non_null(b);
    assert_true(zp_node_of(pool, b) >= 0);
    zp_put(pool, b);
    zp_pool_destroy(pool);
    /* the same bytes in a current config are rejected */
    m.cfg.struct_size = sizeof(zp_config);
    expect_invalid(&m.cfg, "numa");
}

/* What a custom provider learns from zp_provider_node(). */
static _Atomic int seen_node = -2;

static void *node_map(size_t size, size_t align, void *ctx)
{
    (void)ctx;
    atomic_store(&seen_node, zp_provider_node());
    void *m = NULL;
    if (posix_memalign(&m, align, size) != 0)
        return NULL;
    return m;
}

static void node_unmap(void *ptr, size_t size, void *ctx)
{
    (void)size, (void)ctx;
    free(ptr);
}

static void test_provider_node(void **state)
{
    zp_config cfg;
    zp_pool *pool;
    (void)state;
    assert_int_equal(zp_provider_node(), -1); /* outside a map call */
    zp_config_init(&cfg);
    cfg.provider.map = node_map;
    cfg.provider.unmap = node_unmap;
    cfg.numa = ZP_NUMA_BIND;
    cfg.numa_node = online[nonline - 1];
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    void *b = zp_get(pool, 4096);
    assert_non_null(b);
    assert_int_equal(atomic_load(&seen_node), online[nonline - 1]);
    assert_int_equal(zp_node_of(pool, b), online[nonline - 1]);
    zp_put(pool, b);
    zp_pool_destroy(pool);
    /* ZP_NUMA_NONE: no node asked for */
    cfg.numa = ZP_NUMA_NONE;
    cfg.numa_node = 0;
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    b = zp_get(pool, 4096);
    assert_non_null(b);
    assert_int_equal(atomic_load(&seen_node), -1);
    zp_put(pool, b);
    zp_pool_destroy(pool);
    assert_int_equal(zp_provider_node(), -1);
}

int main(void)
{
    read_online();
    print_message("# online nodes: %d (first %d, last %d)\n", nonline, online[0],
                  online[nonline - 1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_on_node),   cmocka_unit_test(test_node_of_foreign),
        cmocka_unit_test(test_stats_node),    cmocka_unit_test(test_config),
        cmocka_unit_test(test_struct_size),   cmocka_unit_test(test_provider_node),
    };
    return ZPT_RUN(tests);
}
