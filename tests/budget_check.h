/* budget_check.h — making a budget and a pool on it, shared by the budget
 * tests (limit, zp_get_timed, FIFO). Include after <cmocka.h> and
 * budget_util.h. */
#ifndef ZP_BUDGET_CHECK_H
#define ZP_BUDGET_CHECK_H

/* A budget of max bytes. */
static inline zp_budget *budget_of(size_t max)
{
    zp_budget *b = NULL;
    assert_int_equal(zp_budget_create(max, &b), 0);
    return b;
}

/* A pool on budget b; max_class 0 keeps the default, pv NULL the default
 * provider. */
static inline zp_pool *pool_on(zp_budget *b, size_t max_class, zpt_provider *pv)
{
    zp_config cfg;
    zp_pool *pool = NULL;
    zp_config_init(&cfg);
    cfg.budget = b;
    if (max_class)
        cfg.max_class = max_class;
    if (pv)
        zpt_provider_attach(&cfg, pv);
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    return pool;
}

/* Gets n 1 MiB buffers of pool into bufs, each one asserted. */
static inline void get_mib(zp_pool *pool, void **bufs, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        bufs[i] = zp_get(pool, ZPT_MiB);
        assert_non_null(bufs[i]);
    }
}

#endif
