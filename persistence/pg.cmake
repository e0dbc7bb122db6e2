# PostgreSQL store: libpqxx implementation of the store port, its connection
# pool, and the migration runner with the migrations embedded at build time.
set(RECUR_PG_MIGRATIONS_DIR ${CMAKE_CURRENT_LIST_DIR}/migrations)
# CONFIGURE_DEPENDS: adding a .sql file re-runs the configure step, which
# picks it up in the generator's dependencies below.
file(GLOB RECUR_PG_MIGRATIONS CONFIGURE_DEPENDS
  ${RECUR_PG_MIGRATIONS_DIR}/*.sql)
set(RECUR_PG_EMBEDDED ${CMAKE_CURRENT_BINARY_DIR}/pg_migrations_embedded.cpp)
add_custom_command(
  OUTPUT ${RECUR_PG_EMBEDDED}
  COMMAND ${CMAKE_COMMAND}
    -DMIGRATIONS_DIR=${RECUR_PG_MIGRATIONS_DIR}
    -DOUT=${RECUR_PG_EMBEDDED}
    -P ${CMAKE_CURRENT_LIST_DIR}/pg_embed_migrations.cmake
  DEPENDS ${RECUR_PG_MIGRATIONS} ${CMAKE_CURRENT_LIST_DIR}/pg_embed_migrations.cmake
  COMMENT "Embedding PostgreSQL migrations"
  VERBATIM)
target_sources(recur_persistence PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/pg_store.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pg_commit.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pg_pool.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pg_migrations.cpp
  ${RECUR_PG_EMBEDDED})
