# recur::gateways_kafka — the Kafka side of the outbox: the idempotent
# librdkafka publisher (the event_publisher port of domain/) and librdkafka's
# mock cluster for `recurd --kafka embedded` and the tests. librdkafka stays
# behind these headers.
recur_library(gateways_kafka
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/kafka_publisher.cpp
    ${CMAKE_CURRENT_LIST_DIR}/kafka_mock_cluster.cpp
  DEPS recur::domain
  PRIVATE_DEPS PkgConfig::RDKAFKA spdlog::spdlog nlohmann_json::nlohmann_json
    Threads::Threads
)
