# Memory per subscription actor (issue 4): bench/memory_bench.cpp. The figures
# come from full runs (`memory_bench`, N = 1,000,000, and `--n 100000`); see
# bench/RESULTS.md. CTest runs a small N as `memory_bench_smoke`: it fails if
# any of the bench's own checks fails (every command answered ok, N actors live
# at the measurement, all of them passivated within the bound, RSS after
# passivation under the limit).
add_executable(memory_bench ${CMAKE_CURRENT_LIST_DIR}/memory_bench.cpp)
target_compile_options(memory_bench PRIVATE ${RECUR_WARNINGS})
target_link_libraries(memory_bench PRIVATE recur::actors recur::persistence
  recur::gateways CAF::core Threads::Threads)

if(RECUR_BUILD_TESTS)
  add_test(NAME memory_bench_smoke
    COMMAND memory_bench --n 2000 --window 500 --idle-ms 1500
      --passivation-wait-s 60 --alloc-profile)
  set_tests_properties(memory_bench_smoke PROPERTIES LABELS unit TIMEOUT 120)
endif()
