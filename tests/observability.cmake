# Batch get/put and observability: per-class stats, hit rates, contention,
# JSON and Prometheus output, stats read under concurrency.
zp_test(test_batch          quick 90)
zp_test(test_obs_stats      quick 60)
zp_test(test_obs_contention quick 120)
zp_test(test_obs_export     quick 120)
zp_test(test_obs_concurrent quick 120)
# the same invariants over a longer run (argv: operations per worker)
zp_test(test_obs_concurrent stress 300 ARGS 2000000)
