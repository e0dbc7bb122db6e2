# group-commit writer and fault tests (owner: group-commit engineer)

# The writer against a fake store (and the in-memory store): pure, seconds.
recur_test(group_commit_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/group_commit_test.cpp
  DEPS recur::persistence Threads::Threads)

# Faults against the real server: killed sessions and a server restart. They
# stop other sessions or the whole cluster, so no other test runs beside them
# (RUN_SERIAL); hence not recur_test(), which cannot pass that property.
add_executable(pg_fault_pgtest ${CMAKE_CURRENT_LIST_DIR}/pg_fault_pgtest.cpp)
target_compile_options(pg_fault_pgtest PRIVATE ${RECUR_WARNINGS})
target_link_libraries(pg_fault_pgtest PRIVATE recur::persistence
  PkgConfig::PQXX Threads::Threads GTest::gtest GTest::gtest_main)
gtest_discover_tests(pg_fault_pgtest
  PROPERTIES LABELS pg RUN_SERIAL TRUE TIMEOUT 120
  DISCOVERY_TIMEOUT 60)
