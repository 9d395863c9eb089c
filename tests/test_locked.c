/* ZP_LOCKED: slabs and oversize regions are mlocked while mapped (VmLck), never purged, and an RLIMIT_MEMLOCK refusal fails the get with ENOMEM, a detail naming the limit, and nothing leaked. */
#include "zp_test.h"

#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define KiB ZPT_KiB
#define MiB ZPT_MiB

static long long vmlck(void)
{
    return zpt_status_kib("VmLck") * 1024;
}

/* Slabs (1 MiB, 256 KiB) and an oversize region are locked at once, fully
 * resident before any touch, and unlocked when trim and put unmap them;
 * idle buffers of a slab still used are not purged. */
static void test_locked_lifecycle(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool;
    void *one, *small[4], *over;
    long long base = vmlck(), now;
    size_t reserved, released;
    int i;
    (void)state;
    pool = ZPT_POOL(.flags = ZP_LOCKED, .max_class = MiB, .pv = pv, .name = "locked");
    assert_true(base >= 0);
    one = zp_get(pool, MiB);
    assert_non_null(one);
    for (i = 0; i < 4; i++) {
        small[i] = zp_get(pool, 64 * KiB);
        assert_non_null(small[i]);
    }
    over = zp_get(pool, MiB + 512 * KiB); /* oversize: its own region */
    assert_non_null(over);
    reserved = zpt_reserved(pool);
    assert_int_equal(reserved, MiB + 256 * KiB + MiB + 512 * KiB);
    now = vmlck();
    print_message("VmLck: %lld kB before, %lld kB with %zu bytes reserved (1 MiB slab, "
                  "256 KiB slab, 1.5 MiB oversize)\n",
                  base / 1024, now / 1024, reserved);
    assert_int_equal(now - base, (long long)reserved);
    /* locked means resident, before any touch */
    assert_int_equal(zpt_resident_in(one, MiB), MiB);
    assert_int_equal(zpt_resident_in(over, MiB + 512 * KiB), MiB + 512 * KiB);
    zpt_stats_consistent(pool, pv, NULL);

    /* two idle 64 KiB buffers in a slab still used: trim may not purge
     * them (that would drop locked pages) */
    zpt_touch(small[0], 64 * KiB, 0xA5);
    zp_put(pool, small[0]);
    zp_put(pool, small[1]);
    released = zp_trim(pool, 0);
    assert_int_equal(released, 0);
    assert_int_equal(zpt_resident_in(small[0], 64 * KiB), 64 * KiB);
    assert_int_equal(vmlck() - base, (long long)reserved);

    /* the oversize region is unmapped (and unlocked) on put, the slabs by
     * trim once wholly idle */
    zp_put(pool, over);
    assert_int_equal(vmlck() - base, (long long)(reserved - (MiB + 512 * KiB)));
    zp_put(pool, small[2]);
    zp_put(pool, small[3]);
    zp_put(pool, one);
    released = zp_trim(pool, 0);
    assert_int_equal(released, MiB + 256 * KiB);
    assert_int_equal(zpt_reserved(pool), 0);
    now = vmlck();
    print_message("VmLck after put and zp_trim: %lld kB\n", now / 1024);
    assert_int_equal(now, base);

    /* destroy unlocks what is still mapped (an idle slab) */
    one = zp_get(pool, MiB);
    assert_non_null(one);
    assert_int_equal(vmlck() - base, (long long)MiB);
    zp_put(pool, one);
    zp_pool_destroy(pool);
    assert_int_equal(vmlck(), base);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

/* Both flags: a 4 MiB slab is locked and, locked before any touch of an
 * aligned region advised MADV_HUGEPAGE, faulted in as huge pages. */
static void test_locked_huge(void **state)
{
    zp_pool *pool;
    void *b;
    long long base = vmlck();
    zpt_smaps s;
    size_t len = 4 * MiB;
    (void)state;
    pool = ZPT_POOL(.flags = ZP_LOCKED | ZP_HUGE_PAGES, .name = "locked_huge");
    b = zp_get(pool, 4 * MiB);
    assert_non_null(b);
    assert_int_equal(vmlck() - base, (long long)(4 * MiB));
    assert_int_equal(zpt_smaps_sum(&b, &len, 1, &s), 0);
    print_message("locked huge slab: VmLck +%lld kB; its mapping %.1f MiB, in huge pages "
                  "%.1f MiB (THP mode %s)\n",
                  (vmlck() - base) / 1024, zpt_mib(s.bytes), zpt_mib(s.huge), zpt_thp_mode());
    if (strcmp(zpt_thp_mode(), "never") != 0 && s.huge < s.bytes * 95 / 100)
        zpt_fail("a locked 4 MiB huge slab: %.1f of %.1f MiB in huge pages", zpt_mib(s.huge),
                 zpt_mib(s.bytes));
    zp_put(pool, b);
    assert_int_equal(zp_trim(pool, 0), 4 * MiB);
    assert_int_equal(vmlck(), base);
    zp_pool_destroy(pool);
}

/* ---------------------------------------------- RLIMIT_MEMLOCK refusals */

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            printf("FAIL line %d: %s: ", __LINE__, #cond);                     \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
            return 1;                                                          \
        }                                                                      \
    } while (0)

/* Drops CAP_IPC_LOCK (which lets root lock past RLIMIT_MEMLOCK) from this
 * process: capget/capset system calls, no libcap. 0 or -1. */
static int drop_ipc_lock(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &hdr, data) != 0)
        return -1;
    data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &= ~CAP_TO_MASK(CAP_IPC_LOCK);
    data[CAP_TO_INDEX(CAP_IPC_LOCK)].permitted &= ~CAP_TO_MASK(CAP_IPC_LOCK);
    data[CAP_TO_INDEX(CAP_IPC_LOCK)].inheritable &= ~CAP_TO_MASK(CAP_IPC_LOCK);
    return syscall(SYS_capset, &hdr, data) == 0 ? 0 : -1;
}

/* In a child: CAP_IPC_LOCK dropped, RLIMIT_MEMLOCK lowered to 1 MiB. A 2 MiB
 * slab and a 3 MiB oversize region are refused with ENOMEM and a detail
 * naming the limit; the pool, its budget and the provider hold nothing
 * afterwards; a 256 KiB slab, under the limit, still works. */
static int child_refused(void *arg)
{
    struct rlimit rl = {MiB, MiB};
    zpt_provider *pv = zpt_provider_new();
    zp_budget *budget = NULL;
    zp_budget_stats bs;
    zp_config cfg;
    zp_pool *pool = NULL;
    zp_stats st;
    long long base;
    const char *why;
    void *raw, *b;
    (void)arg;
    setvbuf(stdout, NULL, _IONBF, 0); /* the child may end without flushing */
    if (drop_ipc_lock() != 0)
        printf("note: capset could not drop CAP_IPC_LOCK: %s\n", strerror(errno));
    CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0, "setrlimit: %s", strerror(errno));
    /* is the limit really enforced on us now? */
    raw = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(raw != MAP_FAILED, "mmap");
    /* the system call: the sanitizers' mlock interceptors do nothing */
    if (syscall(SYS_mlock, raw, 2 * MiB) == 0) {
        printf("SKIP: RLIMIT_MEMLOCK of 1 MiB does not stop a 2 MiB mlock here "
               "(CAP_IPC_LOCK could not be dropped?)\n");
        return ZPT_EXIT_SKIP;
    }
    munmap(raw, 2 * MiB);

    base = vmlck();
    CHECK(zp_budget_create(64 * MiB, &budget) == 0, "budget");
    ZPT_CONFIG(&cfg, .flags = ZP_LOCKED, .max_class = 2 * MiB, .budget = budget,
               .name = "locked_limit");
    zpt_provider_attach(&cfg, pv);
    CHECK(zp_pool_create(&cfg, &pool) == 0, "pool");

    errno = 0;
    b = zp_get(pool, 2 * MiB); /* a 2 MiB slab */
    CHECK(b == NULL && errno == ENOMEM, "slab get: %p, errno %d", b, errno);
    why = zp_strerror(ENOMEM);
    printf("slab refused: %s\n", why);
    CHECK(strstr(why, "RLIMIT_MEMLOCK") && strstr(why, "2097152") && strstr(why, "1048576"),
          "detail: %s", why);

    errno = 0;
    b = zp_get(pool, 3 * MiB); /* oversize */
    CHECK(b == NULL && errno == ENOMEM, "oversize get: %p, errno %d", b, errno);
    why = zp_strerror(-ENOMEM);
    printf("oversize refused: %s\n", why);
    CHECK(strstr(why, "RLIMIT_MEMLOCK") && strstr(why, "3145728"), "detail: %s", why);

    /* nothing leaked: no reservation, no region, no lock */
    CHECK(zpt_stats_consistent(pool, pv, &st), "stats");
    CHECK(st.bytes_reserved == 0, "bytes_reserved %llu", (unsigned long long)st.bytes_reserved);
    CHECK(atomic_load(&pv->bytes_live) == 0, "provider holds %zu bytes",
          atomic_load(&pv->bytes_live));
    CHECK(atomic_load(&pv->maps) == atomic_load(&pv->unmaps), "maps %zu unmaps %zu",
          atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    bs.struct_size = sizeof bs;
    CHECK(zp_budget_read(budget, &bs) == 0 && bs.bytes_reserved == 0,
          "budget reserved %llu", (unsigned long long)bs.bytes_reserved);
    CHECK(vmlck() == base, "VmLck %lld, was %lld", vmlck(), base);

    /* under the limit, the pool works */
    b = zp_get(pool, 64 * KiB);
    CHECK(b != NULL, "64 KiB get: %s", zp_strerror(errno));
    CHECK(vmlck() - base == (long long)(256 * KiB), "VmLck +%lld", vmlck() - base);
    zp_put(pool, b);
    zp_pool_destroy(pool);
    CHECK(vmlck() == base, "VmLck %lld after destroy, was %lld", vmlck(), base);
    CHECK(atomic_load(&pv->bytes_live) == 0, "provider holds %zu bytes after destroy",
          atomic_load(&pv->bytes_live));
    zp_budget_destroy(budget);
    zpt_provider_free(pv);
    printf("PASS\n");
    return 0;
}

static void test_limit_refused(void **state)
{
    zpt_child c;
    (void)state;
    assert_int_equal(zpt_run_child(child_refused, NULL, 30, &c), 0);
    print_message("child (CAP_IPC_LOCK dropped, RLIMIT_MEMLOCK 1 MiB):\n%s", c.out);
    if (zpt_child_exited(&c, ZPT_EXIT_SKIP))
        zpt_skip("%s", c.out);
    if (!zpt_child_exited(&c, 0))
        zpt_fail("the child failed (status 0x%x):\n%s", c.status, c.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_locked_lifecycle),
        cmocka_unit_test(test_locked_huge),
        cmocka_unit_test(test_limit_refused),
    };
    if (zpt_status_kib("VmLck") < 0)
        return zpt_skip_all("/proc/self/status has no VmLck");
    return ZPT_RUN(tests);
}
