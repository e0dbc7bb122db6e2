#pragma once
/// The OpenAPI 3.0 document served at GET /openapi.json, built from the route
/// table: every route with its auth, parameters, request and response
/// schemas (the field names), and the problem+json errors.

#include <string_view>

#include "api/json_io.hpp"
#include "api/router.hpp"

namespace recur::api {

/// The document for `routes` (info.version = `version`).
ordered_json openapi_document(const router& routes, std::string_view version);

/// The schema of every problem+json error body.
ordered_json problem_schema();

} // namespace recur::api
