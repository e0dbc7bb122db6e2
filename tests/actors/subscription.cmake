recur_test(actors_subscription_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/subscription_actor_test.cpp
  DEPS recur::actors recur::gateways recur::persistence recur_billing_harness CAF::core
    nlohmann_json::nlohmann_json)
