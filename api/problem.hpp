#pragma once
/// Builds RFC 9457 `application/problem+json` error responses, the one error
/// format of the HTTP API.

#include <string>
#include <string_view>

#include "api/http_server.hpp"

namespace recur::api {

/// The JSON document {"type","title","status","detail"}. `type` is a stable
/// snake_case name that clients branch on; `detail` is for humans.
std::string problem_json(unsigned status, std::string_view type,
                         std::string_view title, std::string_view detail);

/// A response carrying `problem_json(...)` with the problem+json media type.
http_response problem_response(unsigned status, std::string_view type,
                               std::string_view title, std::string_view detail);

} // namespace recur::api
