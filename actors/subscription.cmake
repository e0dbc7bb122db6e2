target_sources(recur_actors PRIVATE ${CMAKE_CURRENT_LIST_DIR}/subscription_actor.cpp)
# The allocator shim (actors/allocator.hpp): the registry hands freed memory
# back after passivations.
target_sources(recur_actors PRIVATE ${CMAKE_CURRENT_LIST_DIR}/allocator.cpp)
if(RECUR_ALLOCATOR STREQUAL "tcmalloc")
  target_compile_definitions(recur_actors PRIVATE RECUR_TCMALLOC=1)
endif()
