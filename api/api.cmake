# The HTTP API (issue 5): router, auth, idempotency, rate limits, pagination,
# metrics, the OpenAPI document and the tenant-level routes. Public headers
# of these parts (router.hpp, json_io.hpp) use nlohmann_json, so it is a
# public dependency; OpenSSL stays private (auth.cpp).
target_sources(recur_api PRIVATE
  app.cpp
  auth.cpp
  idempotency.cpp
  json_io.cpp
  metrics.cpp
  openapi.cpp
  pagination.cpp
  rate_limit.cpp
  router.cpp
  store_metrics.cpp
  subscription_cache.cpp
  routes_catalog.cpp
  routes_customers.cpp
  routes_ledger.cpp
  routes_tenants.cpp
  routes_usage.cpp
  tenant_env.cpp
  test_clocks.cpp)
target_link_libraries(recur_api
  PUBLIC recur::sagas nlohmann_json::nlohmann_json
  PRIVATE OpenSSL::Crypto)
# recurd opens the PostgreSQL store.
target_link_libraries(recurd PRIVATE recur::persistence)

# recur::api_webhooks — POST /v1/webhooks/{gateway}/{tenant_id}: Stripe-signed
# gateway events verified, de-duplicated (inbox) and dispatched to their
# subscription (routes_webhooks.hpp). Its own target so that recur::api does
# not link the actor layer; recurd registers it through extra_routes.
recur_library(api_webhooks
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/routes_webhooks.cpp
  DEPS recur_api recur::actors recur::gateways_stripe
  PRIVATE_DEPS nlohmann_json::nlohmann_json spdlog::spdlog
)
# recur::api_events — recurd's Kafka wiring: the embedded mock cluster, the
# publisher and the outbox relay thread behind one object (events_wiring.hpp).
recur_library(api_events
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/events_wiring.cpp
  DEPS recur_api recur::outbox_relay recur::gateways_kafka
  PRIVATE_DEPS spdlog::spdlog
)
target_link_libraries(recurd PRIVATE recur::api_webhooks recur::api_events)

# recur::api_billing — the routes that drive the subscription actors:
# subscriptions, invoices, sagas and the test clock (registered by recurd
# through extra_routes with billing_routes()). Its own target, like the
# webhooks, so that recur::api does not link the actor layer.
recur_library(api_billing
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/billing_common.cpp
    ${CMAKE_CURRENT_LIST_DIR}/routes_subscriptions.cpp
    ${CMAKE_CURRENT_LIST_DIR}/routes_invoices.cpp
    ${CMAKE_CURRENT_LIST_DIR}/routes_sagas.cpp
    ${CMAKE_CURRENT_LIST_DIR}/routes_test_clock.cpp
  DEPS recur_api recur::actors
  PRIVATE_DEPS nlohmann_json::nlohmann_json spdlog::spdlog
)
# recurd runs the orchestrator with the sandbox gateway.
target_link_libraries(recurd PRIVATE recur::api_billing recur::actors
                      recur::gateways)

# recur::gateways_tenant — the payment gateway recurd gives the orchestrator:
# each call routed by its tenant's gateway config to a Stripe-API adapter or
# the sandbox (gateways/tenant_gateways.hpp). CAF-free; its source lives with
# the other adapters in gateways/.
recur_library(gateways_tenant
  SOURCES ${PROJECT_SOURCE_DIR}/gateways/tenant_gateways.cpp
  DEPS recur::domain recur::gateways_stripe
  PRIVATE_DEPS nlohmann_json::nlohmann_json spdlog::spdlog
)
# recur::api_sandbox_pump — the sandboxes of a process (one per test-mode
# tenant on its test clock) and the thread that settles their async charges
# by signed webhook (sandbox_pump.hpp).
recur_library(api_sandbox_pump
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/sandbox_pump.cpp
  DEPS recur::domain recur::gateways recur::gateways_sandbox_webhooks
  PRIVATE_DEPS spdlog::spdlog Threads::Threads
)
target_link_libraries(recurd PRIVATE recur::gateways_tenant
                      recur::api_sandbox_pump)

# recur::api_gateway_sim and recur-gateway-sim — the sandbox gateway behind
# Stripe's REST API, with its webhook pump (gateway_sim.hpp).
recur_library(api_gateway_sim
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/gateway_sim.cpp
    ${CMAKE_CURRENT_LIST_DIR}/gateway_sim_options.cpp
  DEPS recur_api recur::api_sandbox_pump
  PRIVATE_DEPS nlohmann_json::nlohmann_json spdlog::spdlog
)
add_executable(recur-gateway-sim gateway_sim_main.cpp)
target_compile_options(recur-gateway-sim PRIVATE ${RECUR_WARNINGS})
target_compile_definitions(recur-gateway-sim PRIVATE
  RECUR_VERSION="${PROJECT_VERSION}")
target_link_libraries(recur-gateway-sim PRIVATE recur::api_gateway_sim
                      recur::api spdlog::spdlog Threads::Threads)
