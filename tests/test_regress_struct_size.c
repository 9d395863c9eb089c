/* Regression (defect 5): zp_config.struct_size must end at a field boundary of a known layout; fields past it take their defaults and are never read. */
#include "zp_test.h"

#define GARBAGE 0xA5
#define EXTRA 32 /* bytes beyond sizeof(zp_config) a newer header might add */

typedef struct field {
    const char *name;
    size_t off, size;
} field;

#define FIELD(f) {#f, offsetof(zp_config, f), sizeof(((zp_config *)0)->f)}

/* Every field a config may end at (the oldest known layout ends after
 * provider). */
static const field fields[] = {
    FIELD(provider),  FIELD(name),             FIELD(budget),
    FIELD(max_bytes), FIELD(max_cached_bytes), FIELD(decay_ms),
    FIELD(numa), /* 0.1.0's sizeof: decay_ms and its padding */
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* Room for a config from a newer header: sizeof(zp_config) + EXTRA. */
typedef union cfg_mem {
    zp_config cfg;
    unsigned char raw[sizeof(zp_config) + EXTRA];
} cfg_mem;

static zpt_provider *g_pv;

/* The values a test sets: name and max_bytes distinguish honoured fields
 * from defaults; budget stays NULL (setting it with max_bytes is invalid,
 * and GARBAGE there would be a wild pointer if read). */
static void values(zp_config *v)
{
    ZPT_CONFIG(v, .max_class = 4 * ZPT_MiB, .name = "sized",
               .max_bytes = 512 * ZPT_KiB, .pv = g_pv);
}

/* Lays out a config of struct_size size in m: the first size bytes from v
 * (the first sizeof(zp_config) of them), then `extra_byte` up to size if
 * size is larger, GARBAGE everywhere after. */
static void lay_out(cfg_mem *m, const zp_config *v, size_t size,
                    unsigned char extra_byte)
{
    memset(m->raw, GARBAGE, sizeof(m->raw));
    memcpy(m->raw, v, size < sizeof(*v) ? size : sizeof(*v));
    if (size > sizeof(*v))
        memset(m->raw + sizeof(*v), extra_byte, size - sizeof(*v));
    m->cfg.struct_size = size;
}

static void expect_rejected(size_t size, const char *why)
{
    cfg_mem m;
    zp_config v;
    zp_pool *pool = NULL;
    const char *msg;
    int rc;
    values(&v);
    lay_out(&m, &v, size, 0);
    rc = zp_pool_create(&m.cfg, &pool);
    msg = zp_strerror(rc);
    if (rc != -EINVAL) {
        if (rc == 0)
            zp_pool_destroy(pool);
        fail_msg("struct_size %zu (%s): zp_pool_create returned %d, expected "
                 "-EINVAL", size, why, rc);
    }
    if (msg == NULL || strstr(msg, "struct_size") == NULL)
        fail_msg("struct_size %zu (%s): zp_strerror(-EINVAL) does not mention "
                 "struct_size: \"%s\"", size, why, msg ? msg : "(null)");
}

/* Creates a pool from a config of struct_size size and checks which
 * fields it honoured. */
static void expect_accepted(size_t size, unsigned char extra_byte)
{
    cfg_mem m;
    zp_config v;
    zp_pool *pool = NULL;
    const char *name;
    int has_name = size >= offsetof(zp_config, name) + sizeof(v.name);
    int has_max_bytes =
        size >= offsetof(zp_config, max_bytes) + sizeof(v.max_bytes);
    size_t maps0 = atomic_load(&g_pv->maps);
    void *b;
    int rc;
    values(&v);
    lay_out(&m, &v, size, extra_byte);
    rc = zp_pool_create(&m.cfg, &pool);
    if (rc != 0)
        fail_msg("struct_size %zu (a field boundary): zp_pool_create "
                 "returned %d (%s), expected 0", size, rc, zp_strerror(rc));
    name = zp_pool_name(pool);
    assert_non_null(name);
    if (has_name ? strcmp(name, "sized") != 0 : strncmp(name, "pool", 4) != 0)
        fail_msg("struct_size %zu: pool name \"%s\", expected %s", size, name,
                 has_name ? "\"sized\"" : "the default \"poolN\"");
    /* the provider (always inside struct_size) is the one used */
    b = zp_get(pool, 256 * ZPT_KiB);
    assert_non_null(b);
    assert_true(atomic_load(&g_pv->maps) > maps0);
    assert_true(zpt_provider_owns(g_pv, b));
    zp_put(pool, b);
    /* max_bytes honoured (512 KiB) inside struct_size, unbounded past it */
    errno = 0;
    b = zp_get(pool, ZPT_MiB);
    if (has_max_bytes && (b != NULL || errno != ENOBUFS))
        fail_msg("struct_size %zu: a 1 MiB get with max_bytes 512 KiB "
                 "returned %p (errno %d), expected ENOBUFS", size, b, errno);
    if (!has_max_bytes && b == NULL)
        fail_msg("struct_size %zu: max_bytes lies past struct_size, yet a "
                 "1 MiB get failed with errno %d", size, errno);
    zp_put(pool, b);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&g_pv->bytes_live), 0);
}

static int setup(void **state)
{
    (void)state;
    g_pv = zpt_provider_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(atomic_load(&g_pv->bad_unmaps), 0);
    zpt_provider_free(g_pv);
    return 0;
}

/* The case of the report: struct_size ending 4 bytes into name. */
static void test_inside_name(void **state)
{
    (void)state;
    expect_rejected(offsetof(zp_config, name) + 4, "4 bytes into name");
}

/* Every offset strictly inside every field from provider on. */
static void test_inside_every_field(void **state)
{
    size_t f, k;
    char why[64];
    (void)state;
    for (f = 0; f < NFIELDS; f++)
        for (k = 1; k < fields[f].size; k++) {
            snprintf(why, sizeof(why), "%zu bytes into %s", k, fields[f].name);
            expect_rejected(fields[f].off + k, why);
        }
}

/* Ending exactly at the end of each field, or at sizeof(zp_config). */
static void test_field_ends_accepted(void **state)
{
    size_t f;
    (void)state;
    for (f = 0; f < NFIELDS; f++)
        expect_accepted(fields[f].off + fields[f].size, 0);
    expect_accepted(sizeof(zp_config), 0);
}

/* A newer header's config: extra bytes all zero are fine, any nonzero
 * extra byte is a field this library does not know. */
static void test_larger_than_known(void **state)
{
    size_t k;
    char why[64];
    (void)state;
    expect_accepted(sizeof(zp_config) + 8, 0);
    expect_accepted(sizeof(zp_config) + EXTRA, 0);
    for (k = 1; k <= EXTRA; k += 7) {
        cfg_mem m;
        zp_config v;
        zp_pool *pool = NULL;
        const char *msg;
        int rc;
        values(&v);
        lay_out(&m, &v, sizeof(zp_config) + EXTRA, 0);
        m.raw[sizeof(zp_config) + k - 1] = 1;
        rc = zp_pool_create(&m.cfg, &pool);
        msg = zp_strerror(rc);
        snprintf(why, sizeof(why), "nonzero byte %zu past sizeof", k);
        if (rc != -EINVAL) {
            if (rc == 0)
                zp_pool_destroy(pool);
            fail_msg("struct_size %zu (%s): %d, expected -EINVAL",
                     sizeof(zp_config) + EXTRA, why, rc);
        }
        if (msg == NULL || strstr(msg, "struct_size") == NULL)
            fail_msg("%s: zp_strerror does not mention struct_size: \"%s\"",
                     why, msg ? msg : "(null)");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inside_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inside_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_ends_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_larger_than_known, setup, teardown),
    };
    return ZPT_RUN(tests);
}
