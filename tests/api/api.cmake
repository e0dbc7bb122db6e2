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
