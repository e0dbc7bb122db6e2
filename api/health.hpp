#pragma once
/// The routes recurd serves before the billing API exists: /healthz, /readyz,
/// and problem+json for everything else.

#include <functional>
#include <optional>

#include "api/http_server.hpp"

namespace recur::api {

/// Answers "can the server reach its database (and its event log) right
/// now?". The PostgreSQL probe implements it; route tests use a fake.
class readiness_probe {
public:
  virtual ~readiness_probe() = default;
  virtual bool database_ok() = 0;
  /// Whether the event log (Kafka) answers; nullopt when none is configured
  /// (`--kafka none`), so it is not checked. Only /readyz asks.
  virtual std::optional<bool> kafka_ok() { return std::nullopt; }
};

/// A probe that asks `database` about the database and `kafka` about the
/// event log: how recurd adds its Kafka check to the PostgreSQL probe.
/// `database` must outlive it; `kafka` may be empty (not checked).
class combined_readiness final : public readiness_probe {
public:
  combined_readiness(readiness_probe& database,
                     std::function<std::optional<bool>()> kafka);
  bool database_ok() override;
  std::optional<bool> kafka_ok() override;

private:
  readiness_probe& database_;
  std::function<std::optional<bool>()> kafka_;
};

/// Routes one request. GET /healthz (liveness) answers 200 or 503 after
/// asking the probe about the database; GET /readyz (readiness) asks about
/// the database and the event log, and its 503 body names every failing
/// check in `failing` (e.g. ["kafka"]). A known path with another method is
/// 405; anything else is 404.
http_response route_health(const http_request& req, readiness_probe& probe);

/// `route_health` bound to a probe that must outlive the handler.
http_handler make_health_handler(readiness_probe& probe);

} // namespace recur::api
