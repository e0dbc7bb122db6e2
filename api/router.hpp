#pragma once
/// The API's route table: method + path pattern ("/v1/customers/{id}") →
/// handler, with what the app does around each handler (auth, idempotency)
/// and the route's OpenAPI description. Routes of later features register
/// into the same table from their own files (see api/routes.hpp).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/http_server.hpp"
#include "api/json_io.hpp"
#include "domain/time.hpp"
#include "sagas/store.hpp"

namespace recur::api {

using param_list = std::vector<std::pair<std::string, std::string>>;

/// Who may call a route.
enum class auth_kind : std::uint8_t {
  none,   // anyone: health, metrics, the OpenAPI document, webhooks
  admin,  // `Authorization: Bearer <admin key>` (RECUR_ADMIN_KEY)
  tenant, // `Authorization: Bearer <tenant API key>`
};

/// What one request carries into its handler once routed and authenticated.
struct request_context {
  const http_request& req;
  param_list path_params;              // percent-decoded
  param_list query;                    // percent-decoded, in order
  std::optional<tenant_record> tenant; // set for auth_kind::tenant routes
  instant now; // the tenant's clock for tenant routes, else the server's

  /// A path parameter of the route's pattern (asserts that it exists).
  const std::string& param(std::string_view name) const;
  /// The first query parameter of that name.
  std::optional<std::string_view> query_value(std::string_view name) const;
  /// The authenticated tenant (asserts that the route is a tenant route).
  const recur::tenant_id& tid() const;
};

using route_handler = std::function<http_response(request_context&)>;

/// A route's optional non-blocking variant, run on an HTTP I/O thread: it
/// answers from memory when it can and returns std::nullopt otherwise (the
/// request then runs `route::handler` on the pool). It must not block, and
/// it gets the server's time in `now`.
using route_fast_handler
  = std::function<std::optional<http_response>(request_context&)>;

/// A route's entry in /openapi.json. Schemas are OpenAPI 3.0 schema objects.
struct route_doc {
  std::string summary;
  ordered_json request_schema;  // null: the route reads no body
  ordered_json response_schema; // the success body
  unsigned success_status = 200;
  std::vector<std::string> query_params; // documented query parameters
  std::string response_media_type = "application/json";
};

struct route {
  std::string method;  // "GET", "POST", "PUT", "PATCH", "DELETE"
  std::string pattern; // "/v1/customers/{id}": literal or {param} segments
  auth_kind auth = auth_kind::tenant;
  route_handler handler;
  route_doc doc;
  /// POSTs honour Idempotency-Key unless this is false (webhooks dedupe by
  /// event id instead).
  bool idempotent = true;
  /// What an Idempotency-Key stores of a response body, when not all of it
  /// (POST /v1/tenants leaves out the API key). Null: the whole body.
  std::function<std::string(std::string_view body)> stored_body;
};

/// The outcome of routing one request.
struct route_match {
  const route* found = nullptr; // null: no route for this method and path
  param_list path_params;
  /// When the path matched but the method did not: the methods it has
  /// (sorted, for the Allow header). Empty: the path is unknown (404).
  std::vector<std::string> allowed;
};

/// Routes are matched segment by segment; when several patterns match a
/// path, the one with a literal segment where the others have a parameter
/// wins (leftmost first). Not thread-safe to add to; safe to match from any
/// number of threads once built.
class router {
public:
  /// Adds a route; a second route with the same method and pattern, or a
  /// malformed pattern, is a programmer error (asserts).
  void add(route r);

  route_match match(std::string_view method, std::string_view path) const;

  /// Gives the route `method` `pattern` (added before) a fast handler;
  /// an unknown route is a programmer error (asserts).
  void set_fast(std::string_view method, std::string_view pattern,
                route_fast_handler fast);

  /// The fast handler of a route of this table; null when it has none.
  const route_fast_handler* fast_for(const route* r) const;

  const std::vector<route>& routes() const noexcept { return routes_; }

private:
  struct segment {
    std::string text;
    bool is_param = false;
  };
  std::vector<route> routes_;
  std::vector<std::vector<segment>> patterns_; // parallel to routes_
  std::vector<route_fast_handler> fast_;       // parallel to routes_
};

// -- URLs ---------------------------------------------------------------------

/// Percent-decodes (and '+' → ' ' when `plus_is_space`); nullopt for a
/// malformed escape.
std::optional<std::string> percent_decode(std::string_view s,
                                          bool plus_is_space);

/// The query parameters of a request target ("a=1&b=x%20y"); nullopt when an
/// escape is malformed. At most `max_params` are read (more: nullopt).
std::optional<param_list> parse_query(std::string_view target,
                                      std::size_t max_params = 32);

} // namespace recur::api
