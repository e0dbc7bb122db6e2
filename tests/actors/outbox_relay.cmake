# The outbox relay with librdkafka's mock cluster (in process, loopback
# sockets): over the in-memory store (label unit) and over PostgreSQL (label
# pg: needs RECUR_TEST_DB, as scripts/test.sh sets it).
recur_test(outbox_relay_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/outbox_relay_test.cpp
  DEPS recur::outbox_relay recur::gateways_kafka recur::persistence
    nlohmann_json::nlohmann_json Threads::Threads)

recur_test(outbox_relay_pgtest LABEL pg
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/outbox_relay_pgtest.cpp
    ${PROJECT_SOURCE_DIR}/tests/persistence/pg_testdb.cpp
  DEPS recur::outbox_relay recur::gateways_kafka recur::persistence
    PkgConfig::PQXX nlohmann_json::nlohmann_json Threads::Threads)
