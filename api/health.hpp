#pragma once
/// The routes recurd serves before the billing API exists: /healthz, /readyz,
/// and problem+json for everything else.

#include "api/http_server.hpp"

namespace recur::api {

/// Answers "can the server reach its database right now?". The PostgreSQL
/// probe implements it; route tests use a fake.
class readiness_probe {
public:
  virtual ~readiness_probe() = default;
  virtual bool database_ok() = 0;
};

/// Routes one request: GET /healthz and GET /readyz answer 200 or 503 after
/// asking the probe; a known path with another method is 405; anything else
/// is 404.
http_response route_health(const http_request& req, readiness_probe& probe);

/// `route_health` bound to a probe that must outlive the handler.
http_handler make_health_handler(readiness_probe& probe);

} // namespace recur::api
