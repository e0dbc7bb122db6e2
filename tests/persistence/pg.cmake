# PostgreSQL store tests (label pg): the store contract suite against
# PostgreSQL, and what only the PostgreSQL store promises (migrations,
# row-level security, the ledger trigger, fault mapping and retries, group
# commit). Each test gets a migrated, empty database of its own
# (pg_testdb.*).
recur_test(pg_store_pgtest LABEL pg
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/store_contract.cpp
    ${CMAKE_CURRENT_LIST_DIR}/pg_testdb.cpp
    ${CMAKE_CURRENT_LIST_DIR}/pg_contract_pgtest.cpp
    ${CMAKE_CURRENT_LIST_DIR}/pg_rls_pgtest.cpp
    ${CMAKE_CURRENT_LIST_DIR}/pg_store_pgtest.cpp
  DEPS recur::persistence PkgConfig::PQXX Threads::Threads)
