# Group-commit writer.
target_sources(recur_persistence PRIVATE ${CMAKE_CURRENT_LIST_DIR}/group_commit.cpp)
