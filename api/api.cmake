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
  routes_catalog.cpp
  routes_customers.cpp
  routes_ledger.cpp
  routes_tenants.cpp
  routes_usage.cpp)
target_link_libraries(recur_api
  PUBLIC recur::sagas nlohmann_json::nlohmann_json
  PRIVATE OpenSSL::Crypto)
# recurd opens the PostgreSQL store.
target_link_libraries(recurd PRIVATE recur::persistence)
