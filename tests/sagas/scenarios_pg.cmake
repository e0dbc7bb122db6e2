# The lifecycle scenarios and the crash matrix on PostgreSQL (label pg: needs
# the cluster that scripts/test.sh starts). Each run gets a database of its
# own (tests/persistence/pg_testdb.hpp); every digest is compared with the
# in-memory store's.
recur_test(sagas_scenarios_pgtest LABEL pg
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/scenarios_pgtest.cpp
    ${PROJECT_SOURCE_DIR}/tests/persistence/pg_testdb.cpp
  DEPS recur_billing_harness recur::persistence PkgConfig::PQXX
    Threads::Threads)
