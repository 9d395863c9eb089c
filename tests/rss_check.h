/* rss_check.h — the RSS burst and assertion shared by the trim, retention
 * and decay tests. Include after <cmocka.h> and budget_util.h. */
#ifndef ZP_RSS_CHECK_H
#define ZP_RSS_CHECK_H

#define RSS_SHARE 0.9

/* RSS must have dropped by RSS_SHARE of what was released (skipped, with
 * a message, where RSS cannot tell: see budget_util.h). */
static inline void check_rss(size_t before, size_t peak, size_t after, uint64_t released)
{
    if (!ZBT_RSS_RELIABLE || before == 0) {
        print_message("RSS assertion skipped: %s\n",
                      before == 0 ? "/proc/self/statm unreadable" : ZBT_RSS_WHY);
        return;
    }
    if (!zbt_rss_dropped(peak, after, released, RSS_SHARE))
        fail_msg("RSS dropped %.1f MiB (peak %.1f -> %.1f MiB), less than %.0f%% of the "
                 "%.1f MiB released",
                 zbt_mib(peak > after ? peak - after : 0), zbt_mib(peak), zbt_mib(after),
                 100.0 * RSS_SHARE, zbt_mib(released));
}

/* A burst of n 1 MiB buffers: each got into bufs[i] and written (byte
 * i + 1) so it is resident, then all put back. *before is the process RSS
 * before the first get, *peak with all n held. */
static inline void rss_burst(zp_pool *pool, void **bufs, int n, size_t *before,
                             size_t *peak)
{
    int i;
    *before = zbt_rss_bytes();
    for (i = 0; i < n; i++) {
        bufs[i] = zp_get(pool, ZPT_MiB);
        assert_non_null(bufs[i]);
        zbt_touch(bufs[i], ZPT_MiB, (unsigned char)(i + 1));
    }
    *peak = zbt_rss_bytes();
    for (i = 0; i < n; i++)
        zp_put(pool, bufs[i]);
}

#endif
