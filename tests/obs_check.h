/* obs_check.h — the snapshot check shared by the batch and stats
 * observability tests. Include after <cmocka.h> and obs_util.h. */
#ifndef ZP_OBS_CHECK_H
#define ZP_OBS_CHECK_H

/* Fails the test, printing the classes, if a snapshot breaks an invariant
 * (zpo_snapshot_ok, zpo_gauges_ok). */
static inline void check(const zp_stats *s)
{
    char why[256];
    if (!zpo_snapshot_ok(s, why, sizeof why) || !zpo_gauges_ok(s, why, sizeof why)) {
        zpo_print_classes("stats", s);
        fail_msg("stats invariant broken: %s", why);
    }
}

#endif
