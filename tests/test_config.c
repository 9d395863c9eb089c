/* Tests configuration validation, defaults, version and error strings. */
#include "zp_test.h"

/* Creates a pool from cfg, expects -EINVAL and a detail from zp_strerror
 * that mentions one of the given words. */
static void expect_invalid(const zp_config *cfg, const char *what,
                           const char *word1, const char *word2)
{
    zp_pool *pool = NULL;
    const char *msg;
    int rc = zp_pool_create(cfg, &pool);
    if (rc != -EINVAL) {
        if (rc == 0)
            zp_pool_destroy(pool);
        fail_msg("%s: zp_pool_create returned %d, want -EINVAL", what, rc);
    }
    msg = zp_strerror(-EINVAL);
    assert_non_null(msg);
    if (!strstr(msg, word1) && !(word2 && strstr(msg, word2)))
        fail_msg("%s: zp_strerror(-EINVAL) = \"%s\" does not mention %s%s%s",
                 what, msg, word1, word2 ? " or " : "", word2 ? word2 : "");
    print_message("# %s -> \"%s\"\n", what, msg);
}

static void expect_valid(const zp_config *cfg, const char *what)
{
    zp_pool *pool = NULL;
    void *b;
    int rc = zp_pool_create(cfg, &pool);
    if (rc != 0)
        fail_msg("%s: zp_pool_create returned %d (%s), want 0", what, rc,
                 zp_strerror(rc));
    assert_non_null(pool);
    b = zp_get(pool, cfg->min_class);
    assert_non_null(b);
    assert_int_equal(zp_capacity(pool, b), cfg->min_class);
    zp_put(pool, b);
    zp_pool_destroy(pool);
}

static void test_defaults(void **state)
{
    zp_config cfg;
    (void)state;
    memset(&cfg, 0xEE, sizeof(cfg));
    zp_config_init(&cfg);
    assert_int_equal(cfg.struct_size, sizeof(zp_config));
    assert_int_equal(cfg.min_class, 4096);
    assert_int_equal(cfg.max_class, 64 * ZPT_MiB);
    assert_int_equal(cfg.cache_depth, 256);
    assert_int_equal(cfg.cache_bytes, 64 * ZPT_MiB);
    assert_int_equal(cfg.flags, 0);
    assert_int_equal(cfg.debug, 0);
    assert_null(cfg.provider.map);
    assert_null(cfg.provider.unmap);
    assert_null(cfg.provider.ctx);
}

static void test_null_config(void **state)
{
    zp_pool *pool = NULL;
    void *b;
    (void)state;
    assert_int_equal(zp_pool_create(NULL, &pool), 0);
    assert_non_null(pool);
    b = zp_get(pool, 1);
    assert_non_null(b);
    assert_int_equal(zp_capacity(pool, b), 4096); /* default min_class */
    b = (zp_put(pool, b), zp_get(pool, 64 * ZPT_MiB));
    assert_non_null(b);
    assert_int_equal(zp_capacity(pool, b), 64 * ZPT_MiB); /* default max */
    zp_put(pool, b);
    zp_pool_destroy(pool);
    zp_pool_destroy(NULL); /* no-op */
}

static void test_invalid_classes(void **state)
{
    zp_config cfg;
    (void)state;

    zp_config_init(&cfg);
    cfg.min_class = 8192;
    cfg.max_class = 4096;
    expect_invalid(&cfg, "min_class > max_class", "min_class", "max_class");

    zp_config_init(&cfg);
    cfg.min_class = 3000;
    expect_invalid(&cfg, "min_class 3000", "min_class", NULL);

    zp_config_init(&cfg);
    cfg.max_class = 3 * ZPT_MiB;
    expect_invalid(&cfg, "max_class 3 MiB", "max_class", NULL);

    zp_config_init(&cfg);
    cfg.min_class = 32;
    expect_invalid(&cfg, "min_class 32", "min_class", NULL);

    zp_config_init(&cfg);
    cfg.min_class = 0;
    expect_invalid(&cfg, "min_class 0", "min_class", NULL);

    zp_config_init(&cfg);
    cfg.min_class = 1;
    expect_invalid(&cfg, "min_class 1", "min_class", NULL);

    zp_config_init(&cfg);
    cfg.max_class = 2 * ZPT_GiB;
    expect_invalid(&cfg, "max_class 2 GiB", "max_class", NULL);

    zp_config_init(&cfg);
    cfg.max_class = 0;
    expect_invalid(&cfg, "max_class 0", "max_class", NULL);
}

static void test_invalid_other(void **state)
{
    zp_config cfg;
    zpt_provider *pv = zpt_provider_new();
    zp_provider both = {zpt_provider_map, zpt_provider_unmap, pv};
    (void)state;

    zp_config_init(&cfg);
    cfg.cache_depth = 65537;
    expect_invalid(&cfg, "cache_depth 65537", "cache_depth", NULL);

    zp_config_init(&cfg);
    cfg.cache_depth = 0xFFFFFFFFu;
    expect_invalid(&cfg, "cache_depth UINT_MAX", "cache_depth", NULL);

    zp_config_init(&cfg);
    cfg.struct_size = 0;
    expect_invalid(&cfg, "struct_size 0", "struct_size", NULL);

    zp_config_init(&cfg);
    cfg.debug = ZP_DEBUG_MAX + 1;
    expect_invalid(&cfg, "debug too high", "debug", NULL);

    zp_config_init(&cfg);
    cfg.debug = -1;
    expect_invalid(&cfg, "debug -1", "debug", NULL);

    zp_config_init(&cfg);
    cfg.provider = both;
    cfg.provider.unmap = NULL;
    expect_invalid(&cfg, "provider map without unmap", "unmap", "provider");

    zp_config_init(&cfg);
    cfg.provider = both;
    cfg.provider.map = NULL;
    expect_invalid(&cfg, "provider unmap without map", "map", "provider");
    assert_int_equal(atomic_load(&pv->map_calls), 0);
    zpt_provider_free(pv);
}

static void test_invalid_newer_fields(void **state)
{
    zp_config cfg;
    zp_budget *budget = NULL;
    char longname[ZP_NAME_MAX + 1];
    (void)state;

    zp_config_init(&cfg);
    cfg.flags = 0x80u;
    expect_invalid(&cfg, "unknown flag bit", "flags", NULL);

    zp_config_init(&cfg); /* the bit just above ZP_LOCKED */
    cfg.flags = ZP_HUGE_PAGES | ZP_LOCKED | (ZP_LOCKED << 1);
    expect_invalid(&cfg, "unknown flag bit next to the known ones", "flags", NULL);

    zp_config_init(&cfg);
    cfg.flags = ZP_DECAY_THREAD;
    cfg.decay_ms = 0;
    expect_invalid(&cfg, "decay thread without decay_ms", "decay", NULL);

    assert_int_equal(zp_budget_create(ZPT_GiB, &budget), 0);
    zp_config_init(&cfg);
    cfg.budget = budget;
    cfg.max_bytes = ZPT_MiB;
    expect_invalid(&cfg, "budget and max_bytes", "budget", "max_bytes");
    zp_budget_destroy(budget);

    zp_config_init(&cfg);
    cfg.name = "";
    expect_invalid(&cfg, "empty name", "name", NULL);

    memset(longname, 'a', ZP_NAME_MAX);
    longname[ZP_NAME_MAX] = 0;
    zp_config_init(&cfg);
    cfg.name = longname;
    expect_invalid(&cfg, "name of ZP_NAME_MAX characters", "name", NULL);

    zp_config_init(&cfg);
    cfg.name = "two words";
    expect_invalid(&cfg, "name with a space", "name", NULL);

    zp_config_init(&cfg);
    cfg.name = "a/b";
    expect_invalid(&cfg, "name with a slash", "name", NULL);

    zp_config_init(&cfg);
    cfg.name = "quote\"";
    expect_invalid(&cfg, "name with a quote", "name", NULL);
}

/* ZEROPOOL_DEBUG overrides config.debug; a value that is no debug level is
 * refused, not silently ignored. */
static void test_env_debug(void **state)
{
    zp_config cfg;
    zp_pool *pool = NULL;
    (void)state;
    zp_config_init(&cfg);
    setenv("ZEROPOOL_DEBUG", "7", 1);
    expect_invalid(&cfg, "ZEROPOOL_DEBUG=7", "ZEROPOOL_DEBUG", NULL);
    setenv("ZEROPOOL_DEBUG", "yes", 1);
    expect_invalid(&cfg, "ZEROPOOL_DEBUG=yes", "ZEROPOOL_DEBUG", NULL);
    setenv("ZEROPOOL_DEBUG", "1", 1);
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    zp_pool_destroy(pool);
    unsetenv("ZEROPOOL_DEBUG");
}

/* Names: copied, listed as given; NULL gives a unique default. */
static void test_names(void **state)
{
    zp_config cfg;
    zp_pool *a = NULL, *b = NULL;
    char name[ZP_NAME_MAX];
    char first[ZP_NAME_MAX];
    (void)state;
    memset(name, 'x', ZP_NAME_MAX - 1);
    memcpy(name, "Net.rx:0_-", 10);
    name[ZP_NAME_MAX - 1] = 0;
    zp_config_init(&cfg);
    cfg.name = name;
    assert_int_equal(zp_pool_create(&cfg, &a), 0);
    name[0] = 'Z'; /* the pool keeps its own copy */
    assert_non_null(zp_pool_name(a));
    assert_int_equal(strlen(zp_pool_name(a)), ZP_NAME_MAX - 1);
    assert_int_equal(strncmp(zp_pool_name(a), "Net.rx:0_-", 10), 0);
    zp_pool_destroy(a);

    assert_int_equal(zp_pool_create(NULL, &a), 0);
    assert_int_equal(zp_pool_create(NULL, &b), 0);
    assert_true(strlen(zp_pool_name(a)) > 0);
    snprintf(first, sizeof(first), "%s", zp_pool_name(a));
    assert_string_not_equal(first, zp_pool_name(b));
    zp_pool_destroy(a);
    zp_pool_destroy(b);
}

/* A config from an older, shorter zp_config (before `name`) still works. */
static void test_older_struct_size(void **state)
{
    zp_config cfg;
    zp_pool *pool = NULL;
    void *b;
    (void)state;
    zp_config_init(&cfg);
    cfg.struct_size = offsetof(zp_config, name);
    cfg.min_class = 8192;
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    b = zp_get(pool, 1);
    assert_non_null(b);
    assert_int_equal(zp_capacity(pool, b), 8192);
    zp_put(pool, b);
    zp_pool_destroy(pool);
}

/* The boundaries of the valid ranges are accepted. */
static void test_valid_edges(void **state)
{
    zp_config cfg;
    zpt_provider *pv = zpt_provider_new();
    zp_provider both = {zpt_provider_map, zpt_provider_unmap, pv};
    (void)state;

    zp_config_init(&cfg);
    cfg.min_class = 64;
    cfg.max_class = 64;
    expect_valid(&cfg, "min = max = 64");

    zp_config_init(&cfg);
    cfg.max_class = ZPT_GiB;
    expect_valid(&cfg, "max_class 1 GiB");

    zp_config_init(&cfg);
    cfg.cache_depth = 0;
    expect_valid(&cfg, "cache_depth 0");

    zp_config_init(&cfg);
    cfg.cache_depth = 65536;
    expect_valid(&cfg, "cache_depth 65536");

    zp_config_init(&cfg);
    cfg.cache_bytes = 0;
    expect_valid(&cfg, "cache_bytes 0");

    zp_config_init(&cfg);
    cfg.debug = ZP_DEBUG_MAX;
    expect_valid(&cfg, "debug max");

    zp_config_init(&cfg);
    cfg.flags = ZP_ZERO_ON_GET | ZP_WIPE_ON_PUT;
    expect_valid(&cfg, "both flags");

    zp_config_init(&cfg);
    cfg.flags = ZP_HUGE_PAGES | ZP_LOCKED;
    expect_valid(&cfg, "huge pages and locked memory");

    zp_config_init(&cfg);
    cfg.provider = both;
    expect_valid(&cfg, "custom provider");
    assert_true(atomic_load(&pv->maps) >= 1);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(zp_version(), ZP_VERSION_NUMBER);
    assert_non_null(zp_version_string());
    assert_string_equal(zp_version_string(), ZP_VERSION_STRING);
}

static void test_strerror_codes(void **state)
{
    int codes[] = {EINVAL, ENOMEM, EOVERFLOW, EBUSY, 12345, 0};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *neg = zp_strerror(-codes[i]);
        assert_non_null(neg);
        assert_true(strlen(neg) > 0);
        const char *pos = zp_strerror(codes[i]);
        assert_non_null(pos);
        assert_true(strlen(pos) > 0);
    }
}

/* The failure detail belongs to the thread that failed. */
static void *other_thread_strerror(void *arg)
{
    char *out = arg;
    const char *msg = zp_strerror(-EINVAL);
    snprintf(out, 512, "%s", msg ? msg : "(null)");
    return NULL;
}

static void test_detail_is_per_thread(void **state)
{
    zp_config cfg;
    zp_pool *pool = NULL;
    char other[512];
    pthread_t t;
    (void)state;
    zp_config_init(&cfg);
    cfg.min_class = 3000;
    assert_int_equal(zp_pool_create(&cfg, &pool), -EINVAL);
    assert_non_null(strstr(zp_strerror(-EINVAL), "min_class"));

    assert_int_equal(pthread_create(&t, NULL, other_thread_strerror, other), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(strlen(other) > 0);
    assert_null(strstr(other, "min_class"));
    assert_null(strstr(other, "3000"));
}

/* zp_error_set: a module's detail for a code is what zp_strerror gives for
 * that code on this thread, until the next failure; other codes and 0 keep
 * their fixed texts. */
static void test_error_set(void **state)
{
    (void)state;
    assert_int_equal(zp_error_set(EBADMSG, "mod: block %d is bad", 7), -EBADMSG);
    assert_string_equal(zp_strerror(-EBADMSG), "mod: block 7 is bad");
    assert_string_equal(zp_strerror(EBADMSG), "mod: block 7 is bad");
    assert_string_equal(zp_strerror(-EFBIG), "result too large");
    assert_int_equal(zp_error_set(0, "nothing"), 0);
    assert_string_equal(zp_strerror(0), "success");
    assert_int_equal(zp_error_set(-ENOMEM, NULL), -ENOMEM);
    assert_string_equal(zp_strerror(-EBADMSG), "mod: block 7 is bad");
    /* a later failure of the library replaces it */
    assert_int_equal(zp_pool_create(NULL, NULL), -EINVAL);
    assert_string_equal(zp_strerror(-EBADMSG), "corrupt or truncated data");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_error_set),
        cmocka_unit_test(test_null_config),
        cmocka_unit_test(test_invalid_classes),
        cmocka_unit_test(test_invalid_other),
        cmocka_unit_test(test_invalid_newer_fields),
        cmocka_unit_test(test_env_debug),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_older_struct_size),
        cmocka_unit_test(test_valid_edges),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_strerror_codes),
        cmocka_unit_test(test_detail_is_per_thread),
    };
    /* the environment would override config.debug */
    unsetenv("ZEROPOOL_DEBUG");
    return ZPT_RUN(tests);
}
