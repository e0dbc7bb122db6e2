#pragma once
/// Replies the route files share: a store read that failed (404 when the
/// record does not exist), a store page as a list body, and the check of a
/// command whose body must be empty or {}. Internal to recur::api.

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "api/json_io.hpp"
#include "api/pagination.hpp"

namespace recur::api {

/// 404 not_found "no <what> '<id>'".
inline http_response no_such(std::string_view what, const std::string& id) {
  return problem({404, "not_found", "no " + std::string{what} + " '" + id + "'"});
}

/// The answer to a store read that failed: 404 when the record does not
/// exist, else the store's error as it is (503 unavailable, …).
inline http_response read_failure(const error& e, std::string_view what,
                                  const std::string& id) {
  return e.code == errc::not_found ? no_such(what, id) : error_response(e);
}

/// 200 {"data": [view(item)…], "has_more", "next_cursor"} for a store page,
/// or the store's error when the page could not be read.
template <class Page, class View>
http_response list_response(const result<Page>& page, View&& view) {
  if (!page)
    return error_response(page.error());
  ordered_json data = ordered_json::array();
  for (const auto& item : page->items)
    data.push_back(view(item));
  return json_response(200, list_body(std::move(data), page->next_cursor));
}

/// nullopt when the body is empty or an object without fields; else the
/// 400/422 problem that says what is wrong (malformed JSON, a field this
/// command does not take).
inline std::optional<http_response> refuse_fields(const http_request& req) {
  api_error err;
  auto body = parse_object(req.body, err, true);
  if (!body)
    return problem(err);
  object_reader in{*body};
  in.reject_unknown();
  if (in.failed())
    return problem(in.error());
  return std::nullopt;
}

} // namespace recur::api
