# Cache handles (zp_cache_*, issue 9) and regression tests for five engine
# defects, one concern per program; local helpers in handles_util.h.
# Included by tests/CMakeLists.txt, which defines zp_test().

zp_test(test_handle_api          quick 60)
zp_test(test_handle_flush        quick 60)
zp_test(test_handle_zero_alloc   quick 120)
zp_test(test_handle_threads      quick 180)
zp_test(test_handle_destroy_pool quick 60)
zp_test(test_handle_misuse       quick 60)
zp_test(test_handle_budget       quick 120)

zp_test(test_regress_exit_wake          quick 120)
zp_test(test_regress_oversize_double_put quick 60)
zp_test(test_regress_pool_cap           quick 120)
zp_test(test_regress_null_args          quick 30)
zp_test(test_regress_struct_size        quick 30)
