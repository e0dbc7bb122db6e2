#pragma once
/// The PostgreSQL connection recurd checks its health with; libpqxx stays
/// inside database.cpp.

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "api/health.hpp"
#include "domain/error.hpp"

namespace recur::api {

/// The connection string with every password replaced by "***", for logs and
/// error messages. Handles both `key=value` strings and postgresql:// URIs.
std::string redact_conninfo(std::string_view conninfo);

/// Adds `connect_timeout=<s>` to a `key=value` connection string that has
/// none, so an unroutable host fails in bounded time. URIs pass unchanged.
std::string with_connect_timeout(std::string_view conninfo, int timeout_s);

/// One libpq connection guarded by a mutex. A failed probe drops the
/// connection; the next probe opens a new one.
class database_probe final : public readiness_probe {
public:
  ~database_probe() override;

  /// Connects and runs `SELECT 1`. On failure, `invalid_argument` whose detail
  /// is libpq's message on one line (no password in it).
  static result<std::unique_ptr<database_probe>>
  connect(const std::string& conninfo);

  /// Runs `SELECT 1`, reconnecting first if the previous probe failed.
  bool database_ok() override;

private:
  struct impl;
  explicit database_probe(std::unique_ptr<impl> impl);

  std::mutex mutex_;
  std::unique_ptr<impl> impl_;
};

} // namespace recur::api
