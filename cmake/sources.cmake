# The core library's sources, listed by layer, top to bottom (see
# docs/design.md). An optional module adds itself behind its own option.
#
# zp_core_sources(<out var> <source root>): the list, as absolute paths.
function(zp_core_sources out root)
  set(srcs
    # front doors: argument checks, the caller's cache, public entry points
    src/api/config.c
    src/api/lifecycle.c
    src/api/get_put.c
    src/api/handle.c
    src/api/timed.c
    src/api/async.c
    # statistics
    src/stats/stats.c
    src/stats/export.c
    # the engine: cache owners, the one cache, depot, slabs
    src/core/fork.c
    src/core/thread.c
    src/core/registry.c
    src/core/cache.c
    src/core/depot.c
    src/core/slab.c
    src/core/oversize.c
    src/core/object.c
    src/core/radix.c
    src/core/provider.c
    # policies: trim/retention/decay, budgets and their waiter queue
    src/policy/trim.c
    src/policy/budget.c
    src/policy/waitq.c
    # checks and reports
    src/debug/debug.c
    src/debug/misuse.c
    src/util/error.c
    # the OS contract (src/os/os.h), one implementation per platform
    src/os/linux.c
)
  list(TRANSFORM srcs PREPEND "${root}/")
  set(${out} ${srcs} PARENT_SCOPE)
endfunction()
