# In-memory store.
target_sources(recur_persistence PRIVATE ${CMAKE_CURRENT_LIST_DIR}/memory_store.cpp)
