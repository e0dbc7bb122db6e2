#pragma once
/// Opens the PostgreSQL implementation of the store port (sagas/store.hpp).
///
/// Two database roles are involved. Migrations run as the user of `conninfo`
/// (the schema owner; a superuser in test clusters), who also owns the
/// SECURITY DEFINER functions behind the port's cross-tenant calls. Every
/// other statement runs on working connections as `recur_app`, a role that
/// row-level security binds: each tenant-scoped call sets app.tenant_id in its
/// transaction, and the database itself refuses rows of any other tenant.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "domain/error.hpp"
#include "sagas/store.hpp"

namespace recur {

struct pg_store_config {
  /// libpq connection string of the migration user: `key=value` pairs or a
  /// postgresql:// URI.
  std::string conninfo;

  /// Connection string of the working connections. Empty: `conninfo` with
  /// " user=recur_app" appended (libpq takes the last value of a repeated
  /// key), which needs `conninfo` in key=value form and an authentication
  /// method that admits recur_app (trust or peer in test clusters; give a
  /// full app_conninfo with its own password in production).
  std::string app_conninfo;

  /// Working connections, opened on first use (1..64).
  std::size_t pool_size = 4;

  /// How often one call runs again after a retryable fault (serialization
  /// failure, deadlock, lost connection) before it reports `unavailable`;
  /// waits double from retry_backoff_min up to retry_backoff_max between runs.
  std::int32_t max_retries = 5;
  std::chrono::milliseconds retry_backoff_min{5};
  std::chrono::milliseconds retry_backoff_max{500};

  /// How long a call waits for a free working connection.
  std::chrono::milliseconds borrow_timeout{10'000};

  /// Units of work per database transaction in commit_many; a longer span is
  /// committed in several transactions.
  std::size_t commit_batch_max = 512;
};

/// The connection string of the working connections for `config` (see
/// pg_store_config::app_conninfo); `invalid_argument` for a URI without an
/// explicit app_conninfo.
result<std::string> pg_app_conninfo(const pg_store_config& config);

/// Applies the embedded migrations (persistence/pg_migrations.hpp), then
/// checks that the working role can connect. Errors: `unavailable` (the
/// database cannot be reached), `invalid_argument` (bad configuration),
/// `storage_error` (a migration failed or was edited after it ran).
///
/// The store is thread-safe: each call borrows one working connection for one
/// transaction. Calls never throw.
result<std::unique_ptr<store>> open_pg_store(const pg_store_config& config);

} // namespace recur
