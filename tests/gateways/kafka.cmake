# The Kafka publisher and mock cluster (label unit: librdkafka's mock cluster
# runs in process on loopback sockets, so these need nothing outside).
recur_test(gateways_kafka_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kafka_test.cpp
  DEPS recur::gateways_kafka nlohmann_json::nlohmann_json Threads::Threads)
