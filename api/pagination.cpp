#include "api/pagination.hpp"

#include <algorithm>
#include <charconv>

namespace recur::api {

namespace {

constexpr std::string_view cursor_prefix = "c1";
constexpr std::string_view alphabet
  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0)
    out.push_back(alphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

std::optional<std::string> unbase64url(std::string_view in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    const auto v = alphabet.find(c);
    if (v == std::string_view::npos)
      return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits must be padding zeros, or the text is not ours.
  if (bits >= 6 || (acc & ((1u << bits) - 1)) != 0)
    return std::nullopt;
  return out;
}

std::optional<std::string_view> first(const param_list& query,
                                      std::string_view name) {
  for (const auto& [k, v] : query)
    if (k == name)
      return std::string_view{v};
  return std::nullopt;
}

} // namespace

std::string encode_cursor(std::string_view store_cursor) {
  return std::string{cursor_prefix} + base64url(store_cursor);
}

std::optional<std::string> decode_cursor(std::string_view opaque) {
  if (opaque.size() > max_cursor_bytes || !opaque.starts_with(cursor_prefix))
    return std::nullopt;
  auto decoded = unbase64url(opaque.substr(cursor_prefix.size()));
  if (!decoded || decoded->empty())
    return std::nullopt;
  return decoded;
}

std::optional<page_request> read_page_request(const param_list& query,
                                              api_error& err) {
  page_request out;
  if (auto limit = first(query, "limit")) {
    std::size_t n = 0;
    const auto* end = limit->data() + limit->size();
    const auto [ptr, ec] = std::from_chars(limit->data(), end, n);
    if (ec != std::errc{} || ptr != end || n < 1 || n > max_page_limit) {
      err = validation_error("limit: must be an integer in 1.."
                               + std::to_string(max_page_limit),
                             400);
      return std::nullopt;
    }
    out.limit = n;
  }
  const auto cursor = first(query, "cursor");
  const auto after = first(query, "starting_after");
  if (cursor && after && *cursor != *after) {
    err = validation_error("cursor: give cursor or starting_after, not both",
                           400);
    return std::nullopt;
  }
  if (const auto opaque = cursor ? cursor : after) {
    auto decoded = decode_cursor(*opaque);
    if (!decoded) {
      err = validation_error(
        std::string{cursor ? "cursor" : "starting_after"}
          + ": not a cursor this API returned (pass next_cursor back as is)",
        400);
      return std::nullopt;
    }
    out.store_cursor = std::move(*decoded);
  }
  return out;
}

ordered_json list_body(ordered_json data, std::string_view store_next_cursor) {
  ordered_json body = ordered_json::object();
  body["data"] = std::move(data);
  body["has_more"] = !store_next_cursor.empty();
  body["next_cursor"] = store_next_cursor.empty()
                          ? ordered_json(nullptr)
                          : ordered_json(encode_cursor(store_next_cursor));
  return body;
}

std::optional<api_error>
unknown_query_param(const param_list& query,
                    std::initializer_list<std::string_view> allowed) {
  for (const auto& [k, v] : query)
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end())
      return validation_error("query parameter '" + k + "' is not known here",
                              400);
  return std::nullopt;
}

} // namespace recur::api
