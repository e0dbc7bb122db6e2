# Durable timer service and store writer (group commit). The store writer owns
# a recur::group_commit_writer, so the actors library links the persistence
# library (the writer is written against the store port only).
target_sources(recur_actors PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/timer_service.cpp
  ${CMAKE_CURRENT_LIST_DIR}/store_writer.cpp
)
target_link_libraries(recur_actors PUBLIC recur::persistence)
