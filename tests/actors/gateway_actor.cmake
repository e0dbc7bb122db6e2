# The gateway actor (CAF's deterministic test coordinator, inline calls; one
# threaded test of bounded concurrency) and its pure circuit breaker.
recur_test(actors_gateway_test LABEL unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/circuit_breaker_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/gateway_actor_test.cpp
  DEPS recur::actors recur::gateways CAF::core)
