#pragma once
/// Idempotency-Key on POST requests, on top of the store's idempotency API:
/// the first request with a key runs and its answer is stored; a repeat with
/// the same method, target and body gets the stored answer (header
/// `Idempotent-Replayed: true`); a repeat with anything else is 422
/// idempotency_conflict; a repeat while the first still runs is 409 conflict.
/// Answers with a 5xx status are not stored: the reservation is given back
/// so that the client's retry runs again.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "api/http_server.hpp"
#include "domain/time.hpp"
#include "sagas/store.hpp"

namespace recur::api {

inline constexpr std::size_t max_idempotency_key_bytes = 255;

/// 1..255 bytes of printable ASCII without spaces (0x21..0x7e).
bool valid_idempotency_key(std::string_view key);

/// SHA-256 hex of method, target and body: what "the same request" means.
std::string request_fingerprint(const http_request& req);

/// The stored answer as a response, marked as replayed.
http_response replayed_response(const idempotency_record& r);

/// Keys are scoped to a tenant; admin requests (which have none) use this
/// pseudo-tenant, which no real tenant id can equal (those are "ten_…").
inline constexpr std::string_view admin_idempotency_scope = "_admin";

/// Runs `run` under `key` for `scope` (see the file comment). `stored_body`
/// picks what of a response body is stored (null: all of it). Store failures
/// become 503 problems before `run`; after it they are logged and the answer
/// still goes out.
http_response
run_idempotent(store& db, const tenant_id& scope, std::string_view key,
               const http_request& req, instant now,
               const std::function<http_response()>& run,
               const std::function<std::string(std::string_view)>& stored_body);

} // namespace recur::api
