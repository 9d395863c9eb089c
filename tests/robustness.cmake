# Robustness: misuse detection at every debug level, fault injection,
# thread churn, fork, wipe on put (tests/test_{debug,fault,churn,fork,wipe}*.c),
# the fuzz corpus replayed as a test, and valgrind memcheck over the quick
# tests. Included by tests/CMakeLists.txt, which defines zp_test().

zp_test(test_debug quick 60)
zp_test(test_fault quick 120)
zp_test(test_fault_malloc quick 120)
zp_test(test_churn quick 120)
zp_test(test_fork quick 120)
zp_test(test_wipe quick 60)

# ZP_WIPE_ON_PUT uses a wipe the compiler cannot remove: the library's code
# calls explicit_bzero (glibc's fortified builds: __explicit_bzero_chk)
# rather than a memset that dead-store elimination may drop.
find_program(ZP_NM NAMES nm llvm-nm)
if(ZP_NM)
  add_test(NAME test_wipe_symbol
    COMMAND sh -c "'${ZP_NM}' -A '$<TARGET_FILE:zeropool_static>' | grep -E ' U (__)?explicit_bzero(_chk)?$'")
  set_tests_properties(test_wipe_symbol PROPERTIES LABELS "quick;novalgrind" TIMEOUT 30)
endif()

# The fuzz target's entry point, built without libFuzzer, replays the
# committed seed corpus and every regression input (fuzz/regressions/: one
# file per finding) in this build, whichever compiler and sanitizer it has.
set(ZP_FUZZ_DIR ${PROJECT_SOURCE_DIR}/fuzz)
if(EXISTS ${ZP_FUZZ_DIR}/zp_fuzz.c)
  add_executable(zp_fuzz_replay ${ZP_FUZZ_DIR}/zp_fuzz.c ${ZP_FUZZ_DIR}/replay.c)
  target_compile_definitions(zp_fuzz_replay PRIVATE _GNU_SOURCE)
  target_link_libraries(zp_fuzz_replay PRIVATE zeropool_static Threads::Threads)
  set(ZP_FUZZ_INPUTS ${ZP_FUZZ_DIR}/corpus)
  if(IS_DIRECTORY ${ZP_FUZZ_DIR}/regressions)
    list(APPEND ZP_FUZZ_INPUTS ${ZP_FUZZ_DIR}/regressions)
  endif()
  add_test(NAME fuzz_replay COMMAND zp_fuzz_replay ${ZP_FUZZ_INPUTS})
  set_tests_properties(fuzz_replay PROPERTIES LABELS quick TIMEOUT 120)
endif()

# Valgrind memcheck runs over the quick tests (ctest -T memcheck -L quick
# -LE novalgrind; see the valgrind target below). Excluded, with the reason:
#   test_fork         the child of a multi-threaded fork() has lost the other
#                     threads' stacks and TLS, so memcheck's leak check in
#                     each child reports their thread caches as definitely
#                     lost: the documented fork contract, not a leak.
#   test_fault_malloc interposes malloc, which valgrind replaces with its
#                     own (the test would skip itself).
#   test_wipe_symbol  inspects the library with nm: no program to check.
# Other areas label their own tests novalgrind when they must (timing
# that cannot hold at valgrind's speed).
set_property(TEST test_fork test_fault_malloc APPEND PROPERTY LABELS novalgrind)

# `cmake --build <dir> --target valgrind` (make valgrind): every quick test
# but those labelled novalgrind, under memcheck. A test fails on any
# memcheck error or definite leak (reachable memory at exit is fine: the
# radix map and thread caches live as long as the process). install_consumer
# is a shell script, not a program to check.
find_program(ZP_VALGRIND_EXE valgrind)
if(ZP_VALGRIND_EXE AND "${ZP_SANITIZE}" STREQUAL "")
  add_custom_target(valgrind
    COMMAND ${CMAKE_CTEST_COMMAND} -T memcheck -L quick -LE novalgrind
            -E install_consumer --output-on-failure -j2
            --overwrite "MemoryCheckCommand=${ZP_VALGRIND_EXE}"
            --overwrite "MemoryCheckCommandOptions=--error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-possibly-lost=no --num-callers=30"
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
    COMMENT "quick tests under valgrind memcheck"
    VERBATIM USES_TERMINAL)
endif()
