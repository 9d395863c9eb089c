# Thin wrapper over CMake; the build itself lives in CMakeLists.txt.
#
#   make test    [CMAKE_FLAGS=...] [CTEST_ARGS="-L ^quick$"]  build/ + ctest
#   make bench   [BENCH_ARGS=...]                             build-bench/ + bench/run.sh
#   make asan | make tsan  [CTEST_ARGS=...]                   sanitizer builds + ctest
#   make numa    [CTEST_ARGS=...]                             build/ + the NUMA VM tests
#   make install [PREFIX=/usr/local]                          installs build/ (with the manual)
#   make abi                                                  build/ against the last release's ABI
#   make clean

CMAKE_FLAGS ?=
CTEST_ARGS ?=
BENCH_ARGS ?=
FUZZ_SECONDS ?= 60
FUZZ_ARGS ?=
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

MAKEFLAGS += --no-print-directory

# Under a sanitizer every test runs but those labelled no_asan / no_tsan
# (each says why in tests/CMakeLists.txt). Anchored: -L and -LE take
# regular expressions.
# The NUMA tests (label numa) boot an emulated machine: `make numa` runs
# them, the other targets leave them out (sanitizer builds cannot link them
# statically anyway).
SAN_CTEST_ARGS_asan = -LE '^(no_asan|numa)$$'
SAN_CTEST_ARGS_tsan = -LE '^(no_tsan|numa)$$'

.PHONY: all build test bench asan tsan install clean fuzz valgrind abi numa

all: build

build:
	cmake -S . -B build $(CMAKE_FLAGS)
	cmake --build build -j$(JOBS)

test:
	scripts/deps.sh test
	cmake -S . -B build -DZP_BUILD_TESTS=ON $(CMAKE_FLAGS)
	cmake --build build -j$(JOBS)
	ctest --test-dir build --output-on-failure -j2 -LE '^numa$$' $(CTEST_ARGS)

# The NUMA placement proof: static test programs run inside a 2-node qemu
# machine (../shared/tools/numa-vm, or $$NUMA_VM; it installs qemu once,
# ~4 min). Reported skipped (77) where qemu cannot run.
numa:
	scripts/deps.sh numa
	cmake -S . -B build -DZP_BUILD_TESTS=ON $(CMAKE_FLAGS)
	cmake --build build -j$(JOBS) --target numa_place
	ctest --test-dir build --output-on-failure -L '^numa$$' $(CTEST_ARGS)

bench:
	scripts/deps.sh bench
	@test -e bench/run.sh || { echo "make bench: bench/run.sh does not exist yet" >&2; exit 1; }
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DZP_BUILD_BENCH=ON \
		-DZP_BUILD_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build build-bench -j$(JOBS)
	bench/run.sh build-bench $(BENCH_ARGS)

asan tsan:
	scripts/deps.sh test
	cmake -S . -B build-$@ -DZP_BUILD_TESTS=ON \
		-DZP_SANITIZE=$(if $(filter asan,$@),address,thread) $(CMAKE_FLAGS)
	cmake --build build-$@ -j$(JOBS)
	ctest --test-dir build-$@ --output-on-failure -j2 $(SAN_CTEST_ARGS_$@) $(CTEST_ARGS)

# The libFuzzer target (clang, ASan+UBSan) for FUZZ_SECONDS, from the
# committed corpus (fuzz/run.sh; fuzz/README.md for longer runs).
fuzz:
	scripts/deps.sh fuzz
	fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_ARGS)

# The quick tests under valgrind memcheck (those labelled no_valgrind skipped).
valgrind:
	scripts/deps.sh test
	cmake -S . -B build -DZP_BUILD_TESTS=ON $(CMAKE_FLAGS)
	cmake --build build -j$(JOBS)
	cmake --build build --target valgrind

# The built libraries against the committed ABI of the last release (abi/):
# scripts/abi-check.sh says what it allows.
abi: build
	scripts/deps.sh test
	scripts/abi-check.sh build

install: build
	cmake --install build --prefix "$(PREFIX)"

clean:
	rm -rf build build-bench build-asan build-tsan build-fuzz
