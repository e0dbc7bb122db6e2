# PostgreSQL store, migrations.
target_sources(recur_persistence PRIVATE ${CMAKE_CURRENT_LIST_DIR}/pg_store.cpp)
