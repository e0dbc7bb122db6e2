#include "api/json_io.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include "api/problem.hpp"

namespace recur::api {

namespace {

// Nesting depth of JSON text, counted outside strings; stops counting once
// over `limit` (the text is refused then anyway).
std::size_t nesting_depth(std::string_view text, std::size_t limit) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit)
        return deepest;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

std::string_view type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_float:
      return "a decimal number";
    default:
      return "a number";
  }
}

} // namespace

// -- problems -----------------------------------------------------------------

api_error validation_error(std::string detail, unsigned status) {
  return api_error{status, "validation_error", std::move(detail)};
}

api_error to_api_error(const error& e) {
  switch (e.code) {
    case errc::not_found:
      return {404, "not_found", e.detail};
    case errc::invalid_transition:
      return {409, "invalid_transition", e.detail};
    case errc::version_conflict:
    case errc::already_exists:
      return {409, "conflict", e.detail};
    case errc::idempotency_conflict:
      return {422, "idempotency_conflict", e.detail};
    case errc::unavailable:
      return {503, "unavailable", e.detail};
    case errc::storage_error:
      return {500, "internal_error", e.detail};
    default:
      return validation_error(e.detail);
  }
}

std::string_view problem_title(std::string_view type) {
  static constexpr std::pair<std::string_view, std::string_view> titles[] = {
    {"validation_error", "Validation Error"},
    {"not_found", "Not Found"},
    {"invalid_transition", "Invalid Transition"},
    {"conflict", "Conflict"},
    {"idempotency_conflict", "Idempotency Conflict"},
    {"unauthorized", "Unauthorized"},
    {"forbidden", "Forbidden"},
    {"rate_limited", "Too Many Requests"},
    {"payload_too_large", "Payload Too Large"},
    {"unsupported_media_type", "Unsupported Media Type"},
    {"method_not_allowed", "Method Not Allowed"},
    {"unavailable", "Service Unavailable"},
    {"internal_error", "Internal Server Error"},
  };
  for (const auto& [t, title] : titles)
    if (t == type)
      return title;
  return "Error";
}

http_response problem(const api_error& e) {
  auto res = problem_response(e.status, e.type, problem_title(e.type),
                              e.detail);
  if (e.status == 503)
    res.headers.emplace_back("Retry-After", "1");
  return res;
}

http_response error_response(const error& e) {
  return problem(to_api_error(e));
}

// -- responses ----------------------------------------------------------------

std::string dump(const ordered_json& body) {
  return body.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

http_response json_response(unsigned status, const ordered_json& body) {
  return http_response{status, "application/json", dump(body), {}};
}

// -- request bodies -----------------------------------------------------------

std::optional<json> parse_object(std::string_view body, api_error& err,
                                 bool empty_is_object) {
  if (body.empty() && empty_is_object)
    return json::object();
  if (nesting_depth(body, max_json_depth) > max_json_depth) {
    err = validation_error("body: nested deeper than "
                             + std::to_string(max_json_depth) + " levels",
                           400);
    return std::nullopt;
  }
  // No duplicate keys: nlohmann would silently keep the last one.
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  auto on_event = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start)
      open_objects.emplace_back();
    else if (event == json::parse_event_t::object_end)
      open_objects.pop_back();
    else if (event == json::parse_event_t::key
             && !open_objects.back().insert(parsed.get<std::string>()).second
             && !duplicate)
      duplicate = parsed.get<std::string>();
    return true;
  };
  json doc;
  try {
    doc = json::parse(body, on_event, true, false);
  } catch (const json::exception& e) {
    err = validation_error(std::string{"body: malformed JSON: "} + e.what(),
                           400);
    return std::nullopt;
  }
  if (duplicate) {
    err = validation_error("body: duplicate key '" + *duplicate + "'", 400);
    return std::nullopt;
  }
  if (!doc.is_object()) {
    err = validation_error(std::string{"body: expected a JSON object, got "}
                           + std::string{type_name(doc)});
    return std::nullopt;
  }
  return doc;
}

bool is_valid_id(std::string_view s, std::size_t max_bytes) {
  if (s.empty() || s.size() > max_bytes)
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// -- object_reader ------------------------------------------------------------

object_reader::object_reader(const json& object, std::string path)
  : object_(object), path_(std::move(path)) {}

std::string object_reader::field(std::string_view name) const {
  if (path_.empty())
    return std::string{name};
  return path_ + "." + std::string{name};
}

void object_reader::fail(std::string_view name, std::string message) {
  if (!error_)
    error_ = validation_error(field(name) + ": " + std::move(message));
}

const json* object_reader::find(std::string_view name, bool required) {
  seen_.emplace(name);
  if (error_)
    return nullptr;
  auto it = object_.find(name);
  if (it == object_.end() || it->is_null()) {
    if (required)
      fail(name, "is required");
    return nullptr;
  }
  return &*it;
}

bool object_reader::has(std::string_view name) const {
  auto it = object_.find(name);
  return it != object_.end() && !it->is_null();
}

std::optional<std::string>
object_reader::string(std::string_view name, bool required,
                      std::size_t min_bytes, std::size_t max_bytes) {
  const json* v = find(name, required);
  if (v == nullptr)
    return std::nullopt;
  if (!v->is_string()) {
    fail(name, "must be a string, got " + std::string{type_name(*v)});
    return std::nullopt;
  }
  auto s = v->get<std::string>();
  if (s.size() < min_bytes || s.size() > max_bytes) {
    fail(name, "must be " + std::to_string(min_bytes) + ".."
                 + std::to_string(max_bytes) + " bytes long");
    return std::nullopt;
  }
  return s;
}

std::optional<std::int64_t>
object_reader::integer(std::string_view name, bool required, std::int64_t min,
                       std::int64_t max) {
  const json* v = find(name, required);
  if (v == nullptr)
    return std::nullopt;
  const auto range = std::to_string(min) + ".." + std::to_string(max);
  if (v->is_number_unsigned()
      && v->get<std::uint64_t>() > static_cast<std::uint64_t>(
           std::numeric_limits<std::int64_t>::max())) {
    fail(name, "must be an integer in " + range);
    return std::nullopt;
  }
  if (!v->is_number_integer()) {
    fail(name, "must be an integer, got " + std::string{type_name(*v)});
    return std::nullopt;
  }
  const auto n = v->get<std::int64_t>();
  if (n < min || n > max) {
    fail(name, (n < 0 && min >= 0 ? "must not be negative, got "
                                  : "must be in " + range + ", got ")
                 + std::to_string(n));
    return std::nullopt;
  }
  return n;
}

std::optional<bool> object_reader::boolean(std::string_view name,
                                           bool required) {
  const json* v = find(name, required);
  if (v == nullptr)
    return std::nullopt;
  if (!v->is_boolean()) {
    fail(name, "must be true or false, got " + std::string{type_name(*v)});
    return std::nullopt;
  }
  return v->get<bool>();
}

std::optional<instant> object_reader::timestamp(std::string_view name,
                                                bool required) {
  auto text = string(name, required, 1, 64);
  if (!text)
    return std::nullopt;
  auto t = parse_iso8601(*text);
  if (!t) {
    fail(name, "must be an ISO-8601 UTC timestamp such as "
               "2024-03-01T00:00:00Z");
    return std::nullopt;
  }
  return *t;
}

std::optional<std::string>
object_reader::id(std::string_view name, bool required, std::size_t max_bytes) {
  auto s = string(name, required, 1, max_bytes);
  if (s && !is_valid_id(*s, max_bytes)) {
    fail(name, "must be 1.." + std::to_string(max_bytes)
                 + " characters of A-Z, a-z, 0-9, '_' and '-'");
    return std::nullopt;
  }
  return s;
}

const json* object_reader::array(std::string_view name, bool required,
                                 std::size_t max_items) {
  const json* v = find(name, required);
  if (v == nullptr)
    return nullptr;
  if (!v->is_array()) {
    fail(name, "must be an array, got " + std::string{type_name(*v)});
    return nullptr;
  }
  if (v->size() > max_items) {
    fail(name, "holds more than " + std::to_string(max_items) + " items");
    return nullptr;
  }
  return v;
}

void object_reader::reject_unknown() {
  if (error_)
    return;
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (!seen_.contains(it.key())) {
      fail(it.key(), "is not a known field");
      return;
    }
  }
}

} // namespace recur::api
