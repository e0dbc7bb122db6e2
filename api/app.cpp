#include "api/app.hpp"

#include <cctype>
#include <chrono>
#include <utility>

#include <spdlog/spdlog.h>

#include "api/auth.hpp"
#include "api/idempotency.hpp"
#include "api/json_io.hpp"
#include "api/openapi.hpp"
#include "api/problem.hpp"

#ifndef RECUR_VERSION
#  define RECUR_VERSION "0.0.0"
#endif

namespace recur::api {

namespace {

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_json_media_type(std::string_view content_type) {
  auto media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && media.back() == ' ')
    media.remove_suffix(1);
  return lower(media) == "application/json";
}

bool has_body_method(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

http_response unauthorized(std::string detail) {
  auto res = problem({401, "unauthorized", std::move(detail)});
  res.headers.emplace_back("WWW-Authenticate", "Bearer");
  return res;
}

std::optional<http_response> rate_limited(const rate_decision& decision) {
  if (decision.allowed)
    return std::nullopt;
  auto res = problem({429, "rate_limited",
                      "too many requests for this tenant; retry after "
                        + std::to_string(decision.retry_after_s) + " s"});
  res.headers.emplace_back("Retry-After",
                           std::to_string(decision.retry_after_s));
  return res;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items)
    out += (out.empty() ? "" : ", ") + s;
  return out;
}

} // namespace

struct app::impl {
  explicit impl(app_config c)
    : config(std::move(c)),
      admin(config.admin_key),
      authenticator(*config.db),
      limiter(config.rate_limit, config.monotonic_ms),
      svc{*config.db, *config.clk, metrics, nullptr} {
    const clock* clk = config.clk;
    svc.now_for = config.now_for
                    ? config.now_for
                    : [clk](const tenant_record&) { return clk->now(); };
  }

  app_config config;
  admin_key admin;
  tenant_authenticator authenticator;
  rate_limiter limiter;
  metrics_registry metrics;
  services svc;
  router routes;
  std::string openapi_text; // built once every route is in

  void add_system_routes();
  http_response dispatch(const http_request& req, const route_match& m);
  void record(const http_request& req, const route_match& m,
              const http_response& res,
              std::chrono::steady_clock::time_point started);
  std::optional<http_response>
  authenticate(const route& r, const http_request& req, request_context& ctx);
};

void app::impl::add_system_routes() {
  readiness_probe* probe = config.readiness;
  const ordered_json health_schema = {
    {"type", "object"},
    {"properties",
     {{"status", {{"type", "string"}, {"enum", {"ok", "unavailable"}}}},
      {"database", {{"type", "string"}, {"enum", {"ok", "unavailable"}}}},
      {"kafka",
       {{"type", "string"}, {"enum", {"ok", "unavailable", "not_configured"}}}},
      {"version", {{"type", "string"}}},
      {"failing",
       {{"type", "array"},
        {"items", {{"type", "string"}, {"enum", {"database", "kafka"}}}}}}}}};
  for (const char* path : {"/healthz", "/readyz"}) {
    routes.add(route{
      "GET", path, auth_kind::none,
      [probe](request_context& ctx) { return route_health(ctx.req, *probe); },
      route_doc{std::string{path == std::string_view{"/healthz"}
                              ? "liveness: the process is up and its "
                                "database answers"
                              : "readiness: the database and the event "
                                "log (Kafka, unless --kafka none) answer"},
                nullptr,
                health_schema,
                200,
                {},
                "application/json"},
      true, nullptr});
  }
  metrics_registry* reg = &metrics;
  routes.add(route{
    "GET", "/metrics", auth_kind::none,
    [reg](request_context&) {
      return http_response{
        200, std::string{metrics_registry::content_type}, reg->render(), {}};
    },
    route_doc{"Prometheus metrics (text format 0.0.4)",
              nullptr,
              {{"type", "string"}},
              200,
              {},
              "text/plain"},
    true, nullptr});
  const std::string* doc = &openapi_text;
  routes.add(route{"GET", "/openapi.json", auth_kind::none,
                   [doc](request_context&) {
                     return http_response{200, "application/json", *doc, {}};
                   },
                   route_doc{"this OpenAPI 3.0 document",
                             nullptr,
                             {{"type", "object"}},
                             200,
                             {},
                             "application/json"},
                   true, nullptr});
}

std::optional<http_response> app::impl::authenticate(const route& r,
                                                     const http_request& req,
                                                     request_context& ctx) {
  if (r.auth == auth_kind::none)
    return std::nullopt;
  const auto token = bearer_token(req.header("Authorization"));
  if (!token)
    return unauthorized("this route needs 'Authorization: Bearer <key>'");
  if (r.auth == auth_kind::admin) {
    if (!admin.configured())
      return unauthorized("no admin key is configured on this server (set "
                          "RECUR_ADMIN_KEY)");
    if (!admin.matches(*token))
      return unauthorized("the admin key is wrong");
    return std::nullopt;
  }
  auto tenant = authenticator.authenticate(*token, config.clk->now());
  if (!tenant) {
    if (tenant.code() != errc::not_found)
      return error_response(tenant.error());
    if (admin.matches(*token))
      return problem({403, "forbidden",
                      "the admin key cannot call tenant routes: use the "
                      "tenant's API key"});
    return unauthorized("unknown API key");
  }
  ctx.tenant = std::move(*tenant);
  return std::nullopt;
}

http_response app::impl::dispatch(const http_request& req,
                                  const route_match& m) {
  const route& r = *m.found;
  auto query = parse_query(req.target);
  if (!query)
    return problem(validation_error(
      "query: a malformed %-escape, or more than 32 parameters", 400));
  request_context ctx{req, m.path_params, std::move(*query), std::nullopt,
                      config.clk->now()};
  if (auto refused = authenticate(r, req, ctx))
    return std::move(*refused);
  if (ctx.tenant) {
    if (auto refused = rate_limited(limiter.take(ctx.tenant->id.value)))
      return std::move(*refused);
    ctx.now = svc.now_for(*ctx.tenant);
  }
  if (has_body_method(req.method) && !req.body.empty()
      && !is_json_media_type(req.header("Content-Type")))
    return problem({415, "unsupported_media_type",
                    "send the body as Content-Type: application/json"});
  const auto key = req.header("Idempotency-Key");
  if (req.method != "POST" || !r.idempotent || key.empty())
    return r.handler(ctx);
  if (!valid_idempotency_key(key))
    return problem(validation_error(
      "Idempotency-Key: must be 1..255 printable characters without spaces",
      400));
  const tenant_id scope = ctx.tenant
                            ? ctx.tenant->id
                            : tenant_id{std::string{admin_idempotency_scope}};
  return run_idempotent(
    *config.db, scope, key, req, ctx.now, [&] { return r.handler(ctx); },
    r.stored_body);
}

// -- app ----------------------------------------------------------------------

app::app(app_config config) {
  RECUR_ASSERT(config.db != nullptr);
  RECUR_ASSERT(config.clk != nullptr);
  RECUR_ASSERT(config.readiness != nullptr);
  impl_ = std::make_unique<impl>(std::move(config));
  auto& i = *impl_;
  i.add_system_routes();
  add_tenant_routes(i.routes, i.svc);
  add_catalog_routes(i.routes, i.svc);
  add_customer_routes(i.routes, i.svc);
  add_usage_routes(i.routes, i.svc);
  add_ledger_routes(i.routes, i.svc);
  for (const auto& extra : i.config.extra_routes)
    extra(i.routes, i.svc);
  i.openapi_text = dump(openapi_document(i.routes, RECUR_VERSION));
}

app::~app() = default;

http_response app::handle(const http_request& req) {
  const auto started = std::chrono::steady_clock::now();
  const auto m = impl_->routes.match(req.method, req.path());
  http_response res;
  if (m.found != nullptr) {
    res = impl_->dispatch(req, m);
  } else if (!m.allowed.empty()) {
    res = problem({405, "method_not_allowed",
                   std::string{req.path()} + " answers " + join(m.allowed)
                     + ", not " + req.method});
    res.headers.emplace_back("Allow", join(m.allowed));
  } else {
    res
      = problem({404, "not_found", "no route for " + std::string{req.path()}});
  }
  impl_->record(req, m, res, started);
  return res;
}

std::optional<http_response> app::try_handle_fast(const http_request& req) {
  const auto started = std::chrono::steady_clock::now();
  if (req.method != "GET")
    return std::nullopt;
  auto& i = *impl_;
  const auto m = i.routes.match(req.method, req.path());
  const auto* fast = i.routes.fast_for(m.found);
  if (fast == nullptr || m.found->auth != auth_kind::tenant)
    return std::nullopt;
  const auto token = bearer_token(req.header("Authorization"));
  if (!token)
    return std::nullopt;
  const auto now = i.config.clk->now();
  auto tenant = i.authenticator.cached(*token, now);
  // A test-mode tenant's time may need its test clock read from the store.
  if (!tenant || tenant->test_mode)
    return std::nullopt;
  auto query = parse_query(req.target);
  if (!query)
    return std::nullopt;
  request_context ctx{req, m.path_params, std::move(*query),
                      std::move(*tenant), now};
  auto res = (*fast)(ctx);
  if (!res)
    return std::nullopt;
  // Taken only once the request is answered here, so that one handed to
  // the pool is not counted twice.
  if (auto refused = rate_limited(i.limiter.take(ctx.tenant->id.value)))
    res = std::move(*refused);
  i.record(req, m, *res, started);
  return res;
}

void app::impl::record(const http_request& req, const route_match& m,
                       const http_response& res,
                       std::chrono::steady_clock::time_point started) {
  const auto elapsed = std::chrono::steady_clock::now() - started;
  const std::string_view route
    = m.found != nullptr ? std::string_view{m.found->pattern} : "unmatched";
  metrics.observe_request(route, req.method, res.status, elapsed);
  if (res.status >= 500)
    spdlog::warn(
      "event=http_request method={} route={} status={} "
      "duration_us={} detail=\"{}\"",
      req.method, route, res.status,
      std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count(),
      res.body.substr(0, 300));
  else
    spdlog::debug(
      "event=http_request method={} route={} status={} "
      "duration_us={}",
      req.method, route, res.status,
      std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count());
}

http_handler app::handler() {
  return [this](const http_request& req) { return handle(req); };
}

http_fast_handler app::fast_handler() {
  return [this](const http_request& req) { return try_handle_fast(req); };
}

const router& app::routes() const {
  return impl_->routes;
}

metrics_registry& app::metrics() {
  return impl_->metrics;
}

} // namespace recur::api
