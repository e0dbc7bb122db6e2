#pragma once
/// JSON in and out for the API's routes: a strict body parser, typed field
/// readers that turn the first bad field into one `validation_error` problem
/// naming it, the mapping of store and domain errors to problems, and JSON
/// responses.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/http_server.hpp"
#include "domain/error.hpp"
#include "domain/time.hpp"

namespace recur::api {

using json = nlohmann::json;                 // request bodies (read)
using ordered_json = nlohmann::ordered_json; // responses (field order kept)

// -- limits -------------------------------------------------------------------

/// Nesting depth of a request body; deeper documents are refused unparsed.
inline constexpr std::size_t max_json_depth = 32;
/// Longest string field any route accepts, unless it says less.
inline constexpr std::size_t max_string_bytes = 4096;

// -- problems -----------------------------------------------------------------

/// A request the API refuses: the HTTP status, the stable problem `type` and
/// a detail for humans (for validation errors it starts with the field).
struct api_error {
  unsigned status = 422;
  std::string type = "validation_error";
  std::string detail;
};

/// 422 validation_error (400 when the body is not JSON at all).
api_error validation_error(std::string detail, unsigned status = 422);

/// A store or domain error as the client sees it:
/// not_found → 404 not_found; invalid_transition → 409 invalid_transition;
/// version_conflict, already_exists → 409 conflict; idempotency_conflict →
/// 422 idempotency_conflict; unavailable → 503 unavailable; storage_error →
/// 500 internal_error; every validation code (invalid_argument,
/// unknown_currency, currency_mismatch, negative_amount, amount_overflow,
/// invalid_price, no_price_version, invalid_period, invalid_policy,
/// constraint_violation, unbalanced_transaction) → 422 validation_error.
api_error to_api_error(const error& e);

/// The problem+json response of `e`; 503s carry `Retry-After: 1`.
http_response problem(const api_error& e);
http_response error_response(const error& e);

/// The title of a problem type ("Not Found", "Validation Error", …).
std::string_view problem_title(std::string_view type);

// -- responses ----------------------------------------------------------------

/// `body` as compact JSON (invalid UTF-8 replaced, never thrown).
http_response json_response(unsigned status, const ordered_json& body);

/// Compact JSON text of `body`, as json_response writes it.
std::string dump(const ordered_json& body);

// -- request bodies -----------------------------------------------------------

/// Parses a body that must be one JSON object: malformed JSON, a duplicate
/// key or nesting deeper than `max_json_depth` is 400, another JSON type 422.
/// An empty body is an empty object when `empty_is_object`.
std::optional<json> parse_object(std::string_view body, api_error& err,
                                 bool empty_is_object = false);

/// Reads the fields of one JSON object, remembering the first problem:
/// every reader returns std::nullopt (or a default) once a problem is
/// recorded, so a handler reads all it needs and checks `failed()` once.
/// Paths in details are dotted: "records[2].quantity".
class object_reader {
public:
  explicit object_reader(const json& object, std::string path = {});

  // -- fields -----------------------------------------------------------------

  /// A string of min_bytes..max_bytes bytes, or nullopt when absent/null
  /// (then `required` records a problem).
  std::optional<std::string> string(std::string_view name, bool required,
                                    std::size_t min_bytes = 1,
                                    std::size_t max_bytes = max_string_bytes);

  /// An integer within [min, max] (floats and numeric strings are refused).
  std::optional<std::int64_t> integer(std::string_view name, bool required,
                                      std::int64_t min, std::int64_t max);

  std::optional<bool> boolean(std::string_view name, bool required);

  /// An ISO-8601 UTC timestamp ("2024-03-01T00:00:00Z").
  std::optional<instant> timestamp(std::string_view name, bool required);

  /// An id: 1..max_bytes of [A-Za-z0-9_-].
  std::optional<std::string> id(std::string_view name, bool required,
                                std::size_t max_bytes = 64);

  /// The raw value of an array field, for the caller to walk.
  const json* array(std::string_view name, bool required,
                    std::size_t max_items);

  /// Whether the field is present with a non-null value.
  bool has(std::string_view name) const;

  /// Records a problem at `name` (for checks only the caller can make).
  void fail(std::string_view name, std::string message);

  /// Records a problem for every field that no reader asked for.
  void reject_unknown();

  // -- outcome ----------------------------------------------------------------

  bool failed() const noexcept { return error_.has_value(); }
  const api_error& error() const { return *error_; }
  /// The path of `name` inside this object ("records[2].quantity").
  std::string field(std::string_view name) const;

private:
  const json* find(std::string_view name, bool required);

  const json& object_;
  std::string path_;
  std::set<std::string, std::less<>> seen_;
  std::optional<api_error> error_;
};

/// True for ids of [A-Za-z0-9_-], 1..max_bytes long.
bool is_valid_id(std::string_view s, std::size_t max_bytes = 64);

} // namespace recur::api
