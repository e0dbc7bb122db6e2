#include "api/health.hpp"

#include <array>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "api/problem.hpp"

#ifndef RECUR_VERSION
#  define RECUR_VERSION "0.0.0"
#endif

namespace recur::api {

namespace {

constexpr std::array<std::string_view, 2> health_paths = {"/healthz",
                                                          "/readyz"};

const char* word(bool ok) {
  return ok ? "ok" : "unavailable";
}

// /healthz is liveness: the process is up and its database answers. A Kafka
// outage must not get the process restarted (the outbox keeps the events),
// so only /readyz — "send me traffic" — also asks about the event log.
http_response health_response(readiness_probe& probe, bool readiness) {
  const bool db_ok = probe.database_ok();
  // Plain flags rather than an optional<bool> copy: GCC 12 warns about the
  // latter (maybe-uninitialized) at -O2.
  bool kafka_checked = false;
  bool kafka_ok = true;
  if (readiness) {
    if (const auto k = probe.kafka_ok(); k.has_value()) {
      kafka_checked = true;
      kafka_ok = *k;
    }
  }
  const bool ok = db_ok && kafka_ok;
  nlohmann::ordered_json doc = {
    {"status", word(ok)},
    {"database", word(db_ok)},
  };
  if (readiness)
    doc["kafka"] = kafka_checked ? word(kafka_ok) : "not_configured";
  doc["version"] = RECUR_VERSION;
  if (!ok) {
    auto failing = nlohmann::json::array();
    if (!db_ok)
      failing.push_back("database");
    if (!kafka_ok)
      failing.push_back("kafka");
    doc["failing"] = std::move(failing);
  }
  http_response res{ok ? 200u : 503u, "application/json", doc.dump(), {}};
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
  return health_response(probe, path == "/readyz");
}

combined_readiness::combined_readiness(
  readiness_probe& database, std::function<std::optional<bool>()> kafka)
  : database_(database), kafka_(std::move(kafka)) {}

bool combined_readiness::database_ok() {
  return database_.database_ok();
}

std::optional<bool> combined_readiness::kafka_ok() {
  return kafka_ ? kafka_() : std::nullopt;
}

http_handler make_health_handler(readiness_probe& probe) {
  return [&probe](const http_request& req) { return route_health(req, probe); };
}

} // namespace recur::api
