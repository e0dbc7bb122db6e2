#include "api/problem.hpp"

#include <nlohmann/json.hpp>

namespace recur::api {

std::string problem_json(unsigned status, std::string_view type,
                         std::string_view title, std::string_view detail) {
  const nlohmann::ordered_json doc = {
    {"type", type},
    {"title", title},
    {"status", status},
    {"detail", detail},
  };
  // `replace` keeps a stray invalid UTF-8 byte in a detail (e.g. an echoed
  // request target) from turning an error report into an exception.
  return doc.dump(-1, ' ', false,
                  nlohmann::ordered_json::error_handler_t::replace);
}

http_response problem_response(unsigned status, std::string_view type,
                               std::string_view title,
                               std::string_view detail) {
  return http_response{status,
                       "application/problem+json",
                       problem_json(status, type, title, detail),
                       {}};
}

} // namespace recur::api
