# The gateway actor and its circuit breaker (see actors/gateway_actor.cpp).
target_sources(recur_actors PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/circuit_breaker.cpp
  ${CMAKE_CURRENT_LIST_DIR}/gateway_actor.cpp
)
