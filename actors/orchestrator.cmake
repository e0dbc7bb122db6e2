target_sources(recur_actors PRIVATE ${CMAKE_CURRENT_LIST_DIR}/orchestrator.cpp)
