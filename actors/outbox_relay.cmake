# recur::outbox_relay — the transactional-outbox relay: store outbox rows to
# the event publisher port (Kafka in production). A plain class with its own
# thread, no CAF, so it has a target of its own and links neither CAF nor
# librdkafka (the composition root hands it a gateways_kafka publisher).
recur_library(outbox_relay
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/outbox_relay.cpp
  DEPS recur::sagas recur::domain
  PRIVATE_DEPS spdlog::spdlog Threads::Threads
)
