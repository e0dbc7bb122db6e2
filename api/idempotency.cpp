#include "api/idempotency.hpp"

#include <spdlog/spdlog.h>

#include "api/auth.hpp"
#include "api/json_io.hpp"

namespace recur::api {

bool valid_idempotency_key(std::string_view key) {
  if (key.empty() || key.size() > max_idempotency_key_bytes)
    return false;
  for (const char c : key)
    if (c < 0x21 || c > 0x7e)
      return false;
  return true;
}

std::string request_fingerprint(const http_request& req) {
  std::string material;
  material.reserve(req.method.size() + req.target.size() + req.body.size() + 2);
  material.append(req.method).append("\n").append(req.target).append("\n");
  material.append(req.body);
  return sha256_hex(material);
}

http_response replayed_response(const idempotency_record& r) {
  http_response res;
  res.status = static_cast<unsigned>(r.response_status);
  res.content_type = res.status >= 400 ? "application/problem+json"
                                       : "application/json";
  res.body = r.response_body;
  res.headers.emplace_back("Idempotent-Replayed", "true");
  return res;
}

namespace {

// Gives the reservation back; logged when even that fails (the key then
// answers 409 until an operator clears it).
void release(store& db, const tenant_id& scope, const std::string& key,
             const std::string& hash) {
  if (auto st = db.release_idempotent(scope, key, hash); !st)
    spdlog::error("event=idempotency_release_failed tenant={} key=\"{}\" "
                  "error={} detail=\"{}\"",
                  scope.value, key, to_string(st.code()), st.error().detail);
}

void complete(store& db, const tenant_id& scope, const std::string& key,
              const std::string& hash, const http_response& res,
              std::string body, instant now) {
  unit_of_work w;
  w.tenant = scope;
  w.idempotency_responses.push_back(idempotency_record{
    key, hash, static_cast<std::int32_t>(res.status), std::move(body), now});
  if (auto done = db.commit(w); !done) {
    spdlog::error("event=idempotency_store_failed tenant={} key=\"{}\" "
                  "error={} detail=\"{}\"",
                  scope.value, key, to_string(done.code()),
                  done.error().detail);
    release(db, scope, key, hash);
  }
}

} // namespace

http_response run_idempotent(
  store& db, const tenant_id& scope, std::string_view key_view,
  const http_request& req, instant now,
  const std::function<http_response()>& run,
  const std::function<std::string(std::string_view)>& stored_body) {
  const std::string key{key_view};
  const auto hash = request_fingerprint(req);
  auto begun = db.begin_idempotent(scope, key, hash, now);
  if (!begun) {
    if (begun.code() == errc::idempotency_conflict)
      return problem({422, "idempotency_conflict",
                      "Idempotency-Key '" + key
                        + "' was used with a different request (method, "
                          "path or body)"});
    return error_response(begun.error());
  }
  switch (begun->state) {
    case idempotency_state::replay:
      return replayed_response(*begun->stored);
    case idempotency_state::in_flight:
      return problem({409, "conflict",
                      "a request with Idempotency-Key '" + key
                        + "' is still in progress; retry later"});
    case idempotency_state::new_request:
      break;
  }
  http_response res;
  try {
    res = run();
  } catch (...) {
    release(db, scope, key, hash); // the server answers 500 for it
    throw;
  }
  if (res.status >= 500) {
    release(db, scope, key, hash);
    return res;
  }
  complete(db, scope, key, hash, res,
           stored_body ? stored_body(res.body) : res.body, now);
  return res;
}

} // namespace recur::api
