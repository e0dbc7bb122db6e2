#pragma once
/// recurd's HTTP API: the route table with every request's path through it —
/// route (404/405), authenticate (401/403), rate-limit per tenant (429),
/// check the media type (415), honour Idempotency-Key on POSTs, run the
/// handler, count it in /metrics. Also serves /healthz, /readyz, /metrics
/// and /openapi.json.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/health.hpp"
#include "api/http_server.hpp"
#include "api/metrics.hpp"
#include "api/rate_limit.hpp"
#include "api/router.hpp"
#include "api/routes.hpp"
#include "domain/clock.hpp"
#include "sagas/store.hpp"

namespace recur::api {

struct app_config {
  store* db = nullptr;                  // required
  const clock* clk = nullptr;           // required
  readiness_probe* readiness = nullptr; // required: /healthz and /readyz
  /// The admin key (RECUR_ADMIN_KEY); empty: POST /v1/tenants always 401.
  std::string admin_key;
  rate_limit_config rate_limit;
  millis_clock monotonic_ms = steady_now_ms; // the rate limiter's time
  /// A tenant's time (test clocks); null: `clk->now()` for everyone.
  std::function<instant(const tenant_record&)> now_for;
  /// Routes of later features (subscriptions, invoices, sagas, webhooks,
  /// test clocks), registered after this library's own.
  std::vector<route_registrar> extra_routes;
};

class app {
public:
  /// Builds the route table; a config without db, clk or readiness is a
  /// programmer error (asserts).
  explicit app(app_config config);
  ~app();

  app(const app&) = delete;
  app& operator=(const app&) = delete;

  /// Answers one request. Thread-safe.
  http_response handle(const http_request& req);

  /// `handle` bound to this app, for http_server (the app must outlive it).
  http_handler handler();

  /// Answers without blocking what can be: a GET of a route with a fast
  /// handler (router::set_fast) by a live tenant whose key the auth cache
  /// holds. std::nullopt: `handle` must answer it (on a pool thread). The
  /// answer, metrics and rate limit are those `handle` would give.
  std::optional<http_response> try_handle_fast(const http_request& req);

  /// `try_handle_fast` bound to this app, for http_server_config.
  http_fast_handler fast_handler();

  const router& routes() const;
  metrics_registry& metrics();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace recur::api
