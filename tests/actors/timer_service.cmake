# Durable timer service and store writer, on CAF's deterministic test
# coordinator (and a threaded actor system for group commit), over the
# in-memory store.
recur_test(actors_timer_writer_test LABEL unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/timer_service_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/store_writer_test.cpp
  DEPS recur::actors recur::persistence CAF::core Threads::Threads)

# The same two actors over PostgreSQL (label pg: needs the cluster that
# scripts/test.sh starts); each test gets a database of its own.
recur_test(actors_timer_writer_pgtest LABEL pg
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/timer_writer_pgtest.cpp
    ${PROJECT_SOURCE_DIR}/tests/persistence/pg_testdb.cpp
  DEPS recur::actors recur::persistence PkgConfig::PQXX CAF::core
    Threads::Threads)
