# The HTTP API (issue 5). Unit: router, rate limiter, pagination, JSON
# readers, auth, metrics, the OpenAPI document and the whole request path
# in process on the in-memory store. pg: recurd spawned on a fresh
# PostgreSQL database, over real HTTP.
recur_test(api_app_test LABEL unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/router_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/rate_limit_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/pagination_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/json_io_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/auth_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/metrics_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/openapi_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/app_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/billing_parts_test.cpp
  DEPS recur::api recur::persistence nlohmann_json::nlohmann_json)

recur_test(api_pgtest LABEL pg
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/api_pgtest.cpp
    ${CMAKE_CURRENT_LIST_DIR}/../persistence/pg_testdb.cpp
  DEPS recur::persistence nlohmann_json::nlohmann_json PkgConfig::PQXX
    Threads::Threads)
add_dependencies(api_pgtest recurd)
target_compile_definitions(api_pgtest PRIVATE
  RECURD_PATH="$<TARGET_FILE:recurd>")

# Gateway webhooks (unit: in process, loopback sockets and librdkafka's mock
# cluster only): the route with a recording dispatch, the sandbox's webhook
# sender against a local server, sandbox → HTTP → orchestrator end to end,
# and the --kafka wiring.
recur_test(api_webhooks_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/webhooks_test.cpp
  DEPS recur::api_webhooks recur::api_events recur::gateways_sandbox_webhooks
    recur::gateways_kafka recur::actors recur::gateways recur::persistence
    nlohmann_json::nlohmann_json Threads::Threads)

# The tenant journey through the subscription engine (test clock, dunning,
# recovery, renewal, cancellation) against a spawned recurd.
recur_test(journey_pgtest LABEL pg
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/journey_pgtest.cpp
    ${CMAKE_CURRENT_LIST_DIR}/../persistence/pg_testdb.cpp
  DEPS recur::persistence nlohmann_json::nlohmann_json PkgConfig::PQXX
    Threads::Threads)
add_dependencies(journey_pgtest recurd)
target_compile_definitions(journey_pgtest PRIVATE
  RECURD_PATH="$<TARGET_FILE:recurd>")

# The webhook route and the --kafka wiring over PostgreSQL (label pg: needs
# RECUR_TEST_DB, as scripts/test.sh sets it).
recur_test(api_webhooks_pgtest LABEL pg
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/webhooks_pgtest.cpp
    ${CMAKE_CURRENT_LIST_DIR}/kafka_pgtest.cpp
    ${PROJECT_SOURCE_DIR}/tests/persistence/pg_testdb.cpp
  DEPS recur::api_webhooks recur::api_events recur::gateways_sandbox_webhooks
    recur::gateways_kafka recur::persistence PkgConfig::PQXX
    nlohmann_json::nlohmann_json Threads::Threads)

# Domain events from a running recurd to Kafka (issue 5): recurd spawned with
# --kafka host:port of a mock cluster the test owns; after a journey the
# topic is compared with the outbox table (exactly once, order per key), then
# again after a SIGKILL in the middle of a burst of commands and a restart.
recur_test(kafka_journey_pgtest LABEL pg
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/kafka_journey_pgtest.cpp
    ${PROJECT_SOURCE_DIR}/tests/persistence/pg_testdb.cpp
  DEPS recur::gateways_kafka recur::persistence PkgConfig::PQXX
    nlohmann_json::nlohmann_json Threads::Threads)
add_dependencies(kafka_journey_pgtest recurd)
target_compile_definitions(kafka_journey_pgtest PRIVATE
  RECURD_PATH="$<TARGET_FILE:recurd>")

# recur-gateway-sim's REST mapping against the real Stripe adapter over
# loopback, its options, the per-tenant gateway router and the sandbox pump
# (unit: sockets only).
recur_test(gateway_sim_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/gateway_sim_test.cpp
  DEPS recur::api_gateway_sim recur::gateways_tenant recur::gateways_stripe
    recur::api nlohmann_json::nlohmann_json Threads::Threads)

# Async settlement end to end (label pg): recurd + recur-gateway-sim as
# processes (Stripe config → the sim → signed webhooks with duplicates and
# forgeries), and recurd's in-process sandbox on a tenant's test clock.
recur_test(gateway_sim_pgtest LABEL pg
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/gateway_sim_pgtest.cpp
    ${PROJECT_SOURCE_DIR}/tests/persistence/pg_testdb.cpp
  DEPS recur::persistence nlohmann_json::nlohmann_json PkgConfig::PQXX
    Threads::Threads)
add_dependencies(gateway_sim_pgtest recurd recur-gateway-sim)
target_compile_definitions(gateway_sim_pgtest PRIVATE
  RECURD_PATH="$<TARGET_FILE:recurd>"
  RECUR_GATEWAY_SIM_PATH="$<TARGET_FILE:recur-gateway-sim>")

# The subscription read-model cache behind GET /v1/subscriptions/{id}
# (api/subscription_cache.hpp): unit (newest wins, bounded, miss → store,
# failed commits) and over real HTTP against a spawned recurd (pg).
recur_test(api_serving_test LABEL unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/subscription_cache_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/http_server_fast_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/app_fast_test.cpp
  DEPS recur::api recur::persistence nlohmann_json::nlohmann_json
    Threads::Threads)

recur_test(api_subscription_cache_pgtest LABEL pg
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/subscription_cache_pgtest.cpp
    ${CMAKE_CURRENT_LIST_DIR}/../persistence/pg_testdb.cpp
  DEPS recur::persistence nlohmann_json::nlohmann_json PkgConfig::PQXX
    Threads::Threads)
add_dependencies(api_subscription_cache_pgtest recurd)
target_compile_definitions(api_subscription_cache_pgtest PRIVATE
  RECURD_PATH="$<TARGET_FILE:recurd>")
