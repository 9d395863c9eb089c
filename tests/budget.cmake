# Budgets, zp_get_timed waiters, trim, retention cap and decay (one concern
# per program; helpers in budget_util.h).
zp_test(test_trim quick 30)
zp_test(test_budget_api quick 30)
zp_test(test_budget_limit quick 30)
zp_test(test_budget_timed quick 60)
zp_test(test_budget_fifo quick 60)
zp_test(test_budget_stress stress 60)
zp_test(test_budget_stress stress 60 ARGS 2 8)
zp_test(test_trim_rss quick 60)
zp_test(test_retention quick 60)
zp_test(test_decay quick 60)
zp_test(test_decay_thread quick 60)
