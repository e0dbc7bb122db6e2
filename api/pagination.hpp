#pragma once
/// Cursor pagination of list routes: `limit` (1..100, default 20) and an
/// opaque cursor (`cursor`, or its alias `starting_after`) in; the body
/// {"data": [...], "has_more": bool, "next_cursor": string|null} out.

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "api/json_io.hpp"
#include "api/router.hpp"

namespace recur::api {

inline constexpr std::size_t default_page_limit = 20;
inline constexpr std::size_t max_page_limit = 100;
/// Longest opaque cursor accepted.
inline constexpr std::size_t max_cursor_bytes = 1024;

/// What a list request asks for, in the store's terms.
struct page_request {
  std::size_t limit = default_page_limit;
  std::string store_cursor; // empty: from the start
};

/// Reads `limit`, `cursor` and `starting_after` from the query. A bad limit
/// or a cursor that is not one of ours is a 400 validation_error; so is
/// giving both cursor names with different values.
std::optional<page_request> read_page_request(const param_list& query,
                                              api_error& err);

/// The opaque form of a store cursor ("c1" + base64url), and back (nullopt
/// when `opaque` is not one of ours).
std::string encode_cursor(std::string_view store_cursor);
std::optional<std::string> decode_cursor(std::string_view opaque);

/// {"data": data, "has_more": …, "next_cursor": …} for a store page whose
/// next cursor is `store_next_cursor` (empty: the last page).
ordered_json list_body(ordered_json data, std::string_view store_next_cursor);

/// A 400 validation_error naming the first query parameter not in
/// `allowed`, or nullopt when every one is allowed.
std::optional<api_error>
unknown_query_param(const param_list& query,
                    std::initializer_list<std::string_view> allowed);

} // namespace recur::api
