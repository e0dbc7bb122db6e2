recur_test(actors_allocator_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/allocator_test.cpp
  DEPS recur::actors)
