# The CAF-free facade over the whole actor layer, on real threads.
recur_test(actors_orchestrator_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/orchestrator_test.cpp
  DEPS recur::actors recur::gateways recur::persistence)
