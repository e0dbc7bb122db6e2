#pragma once
/// The JSON form of a plan version: what `plan_version_record::data_json`
/// stores and what `POST /v1/plans` accepts.
///
/// Shape (snake_case; money as integer minor units, never floats):
///
///   {"version":1,"effective_at":"2024-01-01T00:00:00Z","currency":"USD",
///    "interval":{"unit":"month","count":1},"trial_days":14,
///    "base":{"kind":"flat","flat_amount":2000},
///    "metered":[{"meter":"api_calls","included_quantity":1000,
///                "overage":{"kind":"tiered","tiers":[
///                  {"up_to":10000,"unit_amount":2,"flat_amount":0},
///                  {"up_to":null,"unit_amount":1,"flat_amount":0}]}}]}
///
/// A pricing object carries `kind` ("flat", "per_unit", "tiered", "volume")
/// and only the field(s) of its kind: `flat_amount`, `unit_amount` or `tiers`.
/// A tier's `up_to` is null for the unbounded last tier.

#include <cstddef>
#include <string>
#include <string_view>

#include "domain/catalog.hpp"
#include "domain/error.hpp"

namespace recur {

/// Our limit on the size of one plan version document. The largest valid plan
/// (50 meters plus the base, 100 tiers each) is about 0.5 MiB compact.
inline constexpr std::size_t max_plan_json_bytes = std::size_t{2} * 1024 * 1024;

/// Compact JSON text of a plan version, keys in the order shown above, so that
/// equal versions always encode to equal text. Fields foreign to a pricing's
/// kind are written only when set (which makes the version invalid), so that
/// decoding such text fails rather than silently yielding a different price.
/// Invalid UTF-8 in a meter name is replaced by U+FFFD.
std::string plan_version_to_json(const plan_version& v);

/// Parses and validates one plan version (as domain `validate(plan_version)`
/// does). `trial_days` defaults to 0 and `metered` to [] when absent; every
/// other field is required. Errors carry a detail that starts with the path of
/// the offending field, e.g. "metered[1].overage.tiers[0].up_to: ...":
/// - malformed JSON, a document over `max_plan_json_bytes`, a duplicate key,
///   a missing, unknown or wrongly typed field, a float or an out-of-range
///   integer, an unknown interval unit, a bad timestamp → `invalid_argument`;
/// - an unknown currency → `unknown_currency`;
/// - a field foreign to the pricing kind, bad tiers → `invalid_price`;
/// - a negative amount → `negative_amount`;
/// - other domain rules (version, trial_days, interval length, meter names)
///   → `invalid_argument`.
result<plan_version> plan_version_from_json(std::string_view json);

} // namespace recur
