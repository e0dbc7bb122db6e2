#include "api/health.hpp"

#include <array>
#include <string>

#include <nlohmann/json.hpp>

#include "api/problem.hpp"

#ifndef RECUR_VERSION
#  define RECUR_VERSION "0.0.0"
#endif

namespace recur::api {

namespace {

// /healthz and /readyz mean the same until the actors exist: the process is
// up and its database answers. Readiness will later also wait for recovery.
constexpr std::array<std::string_view, 2> health_paths = {"/healthz",
                                                          "/readyz"};

http_response health_response(readiness_probe& probe) {
  const bool db_ok = probe.database_ok();
  const nlohmann::ordered_json doc = {
    {"status", db_ok ? "ok" : "unavailable"},
    {"database", db_ok ? "ok" : "unavailable"},
    {"version", RECUR_VERSION},
  };
  http_response res{db_ok ? 200u : 503u, "application/json", doc.dump(), {}};
  // A health answer is only true at the moment it is given.
  res.headers.emplace_back("Cache-Control", "no-store");
  return res;
}

bool is_health_path(std::string_view path) {
  for (const auto known : health_paths)
    if (path == known)
      return true;
  return false;
}

} // namespace

http_response route_health(const http_request& req, readiness_probe& probe) {
  const auto path = req.path();
  if (!is_health_path(path))
    return problem_response(404, "not_found", "Not Found",
                            "no route for " + std::string{path});
  if (req.method != "GET") {
    auto res = problem_response(405, "method_not_allowed", "Method Not Allowed",
                                std::string{path} + " only answers GET, not "
                                  + req.method);
    res.headers.emplace_back("Allow", "GET");
    return res;
  }
  return health_response(probe);
}

http_handler make_health_handler(readiness_probe& probe) {
  return [&probe](const http_request& req) { return route_health(req, probe); };
}

} // namespace recur::api
