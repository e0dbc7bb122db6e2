#pragma once
/// Versioned SQL migrations of the PostgreSQL store, embedded at build time
/// from persistence/migrations/NNNN_name.sql, and the runner that applies them.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "domain/error.hpp"

namespace recur {

struct pg_migration {
  std::int32_t version = 0; // NNNN of the file name; unique, increasing
  std::string_view name;    // the rest of the file name, without ".sql"
  std::string_view sql;
};

/// The migrations of persistence/migrations/, in version order (generated
/// into the build by persistence/pg_embed_migrations.cmake).
std::span<const pg_migration> pg_embedded_migrations() noexcept;

/// Applies each migration of `migrations` (in version order) that
/// `schema_migrations` does not record yet, each in its own transaction
/// together with its record (version, name, sha256 checksum, applied_at).
/// Runs as the connection-string user, who then owns what the migrations
/// create. Concurrent runners on one database are serialised by an advisory
/// lock: each migration is applied exactly once. Errors: `unavailable` (cannot
/// connect), `storage_error` (a migration failed, or an applied migration's
/// checksum differs from the one given: its file was edited after it ran).
/// Versions recorded but not given (a newer release ran here) are left alone,
/// so that an older release can still start during a rolling deploy.
/// Returns how many migrations this call applied.
result<std::size_t>
apply_pg_migrations(const std::string& conninfo,
                    std::span<const pg_migration> migrations);

} // namespace recur
