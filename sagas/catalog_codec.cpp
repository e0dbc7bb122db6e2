#include "sagas/catalog_codec.hpp"

#include <cstdint>
#include <exception>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace recur {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

bool is_tiered(pricing_kind kind) {
  return kind == pricing_kind::tiered || kind == pricing_kind::volume;
}

// -- encoding -----------------------------------------------------------------

ordered_json encode_tier(const price_tier& t) {
  ordered_json j = ordered_json::object();
  j["up_to"] = t.up_to ? ordered_json(*t.up_to) : ordered_json(nullptr);
  j["unit_amount"] = t.unit_amount_minor;
  j["flat_amount"] = t.flat_amount_minor;
  return j;
}

ordered_json encode_pricing(const pricing& p) {
  ordered_json j = ordered_json::object();
  j["kind"] = std::string{to_string(p.kind)};
  if (p.kind == pricing_kind::flat || p.flat_amount_minor != 0)
    j["flat_amount"] = p.flat_amount_minor;
  if (p.kind == pricing_kind::per_unit || p.unit_amount_minor != 0)
    j["unit_amount"] = p.unit_amount_minor;
  if (is_tiered(p.kind) || !p.tiers.empty()) {
    ordered_json tiers = ordered_json::array();
    for (const auto& t : p.tiers)
      tiers.push_back(encode_tier(t));
    j["tiers"] = std::move(tiers);
  }
  return j;
}

ordered_json encode_meter(const metered_component& c) {
  ordered_json j = ordered_json::object();
  j["meter"] = c.meter;
  j["included_quantity"] = c.included_quantity;
  j["overage"] = encode_pricing(c.overage);
  return j;
}

// -- decoding: paths and errors -----------------------------------------------

std::string child(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string{key} : parent + "." + std::string{key};
}

std::string element(const std::string& parent, std::size_t i) {
  return parent + "[" + std::to_string(i) + "]";
}

error at(errc code, const std::string& path, std::string_view what) {
  return make_error(code, (path.empty() ? std::string{"document"} : path) + ": "
                            + std::string{what});
}

error bad(const std::string& path, std::string_view what) {
  return at(errc::invalid_argument, path, what);
}

/// "an object", "a float", … for "expected X, got Y" messages.
std::string_view describe(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a float or an integer out of range";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "an unexpected value";
  }
}

error wrong_type(const std::string& path, std::string_view expected,
                 const json& got) {
  return bad(path, "expected " + std::string{expected} + ", got "
                     + std::string{describe(got)});
}

// -- decoding: typed values ---------------------------------------------------

result<std::int64_t> as_int64(const json& j, const std::string& path) {
  if (!j.is_number_integer())
    return wrong_type(path, "an integer", j);
  if (j.is_number_unsigned()
      && j.get<std::uint64_t>() > static_cast<std::uint64_t>(
           std::numeric_limits<std::int64_t>::max()))
    return bad(path, "integer out of int64 range");
  return j.get<std::int64_t>();
}

result<std::int32_t> as_int32(const json& j, const std::string& path) {
  auto v = as_int64(j, path);
  if (!v)
    return v.error();
  if (*v < std::numeric_limits<std::int32_t>::min()
      || *v > std::numeric_limits<std::int32_t>::max())
    return bad(path, "integer out of int32 range");
  return static_cast<std::int32_t>(*v);
}

result<std::string> as_string(const json& j, const std::string& path) {
  if (!j.is_string())
    return wrong_type(path, "a string", j);
  return j.get<std::string>();
}

/// Checks that `j` is an object whose keys are all among `known`.
status check_object(const json& j, const std::string& path,
                    std::initializer_list<std::string_view> known) {
  if (!j.is_object())
    return wrong_type(path, "an object", j);
  for (const auto& [key, value] : j.items()) {
    bool found = false;
    for (auto k : known)
      found = found || k == key;
    if (!found)
      return bad(child(path, key), "unknown field");
  }
  return {};
}

result<const json*> require(const json& obj, const std::string& path,
                            std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end())
    return bad(child(path, key), "missing field");
  return &*it;
}

result<std::int64_t> field_int64(const json& obj, const std::string& path,
                                 std::string_view key) {
  auto j = require(obj, path, key);
  if (!j)
    return j.error();
  return as_int64(**j, child(path, key));
}

result<std::int32_t> field_int32(const json& obj, const std::string& path,
                                 std::string_view key) {
  auto j = require(obj, path, key);
  if (!j)
    return j.error();
  return as_int32(**j, child(path, key));
}

result<std::string> field_string(const json& obj, const std::string& path,
                                 std::string_view key) {
  auto j = require(obj, path, key);
  if (!j)
    return j.error();
  return as_string(**j, child(path, key));
}

/// A money amount in minor units: an int64 that is not negative.
result<std::int64_t> field_amount(const json& obj, const std::string& path,
                                  std::string_view key) {
  auto v = field_int64(obj, path, key);
  if (v && *v < 0)
    return at(errc::negative_amount, child(path, key), "negative amount");
  return v;
}

/// An array of at most `max_size` elements (larger ones are rejected before
/// any element is read).
result<const json*> field_array(const json& obj, const std::string& path,
                                std::string_view key, std::size_t max_size,
                                errc too_long_code) {
  auto j = require(obj, path, key);
  if (!j)
    return j;
  if (!(*j)->is_array())
    return wrong_type(child(path, key), "an array", **j);
  if ((*j)->size() > max_size)
    return at(too_long_code, child(path, key),
              "more than " + std::to_string(max_size) + " elements");
  return j;
}

// -- decoding: pricing --------------------------------------------------------

result<pricing_kind> field_kind(const json& obj, const std::string& path) {
  auto text = field_string(obj, path, "kind");
  if (!text)
    return text.error();
  for (auto k : {pricing_kind::flat, pricing_kind::per_unit,
                 pricing_kind::tiered, pricing_kind::volume}) {
    if (to_string(k) == *text)
      return k;
  }
  return bad(child(path, "kind"),
             "unknown pricing kind (flat, per_unit, tiered or volume)");
}

/// A pricing carries exactly the field of its kind: a foreign field, even 0,
/// would bill something other than what the tenant thinks it set.
status check_kind_fields(const json& obj, const std::string& path,
                         pricing_kind kind) {
  const std::pair<std::string_view, bool> fields[] = {
    {"flat_amount", kind == pricing_kind::flat},
    {"unit_amount", kind == pricing_kind::per_unit},
    {"tiers", is_tiered(kind)},
  };
  for (const auto& [key, belongs] : fields) {
    const bool present = obj.contains(key);
    if (belongs && !present)
      return bad(child(path, key), "missing field");
    if (!belongs && present)
      return at(errc::invalid_price, child(path, key),
                "not allowed in " + std::string{to_string(kind)} + " pricing");
  }
  return {};
}

result<price_tier> decode_tier(const json& j, const std::string& path) {
  if (auto st = check_object(j, path, {"up_to", "unit_amount", "flat_amount"});
      !st)
    return st.error();
  price_tier t;
  auto up_to = require(j, path, "up_to");
  if (!up_to)
    return up_to.error();
  if (!(*up_to)->is_null()) {
    auto v = as_int64(**up_to, child(path, "up_to"));
    if (!v)
      return v.error();
    t.up_to = *v;
  }
  auto unit = field_amount(j, path, "unit_amount");
  if (!unit)
    return unit.error();
  auto flat = field_amount(j, path, "flat_amount");
  if (!flat)
    return flat.error();
  t.unit_amount_minor = *unit;
  t.flat_amount_minor = *flat;
  return t;
}

/// Mirrors the domain's tier rules, naming the tier at fault.
status check_tier_shape(const std::vector<price_tier>& tiers,
                        const std::string& path) {
  if (tiers.empty())
    return at(errc::invalid_price, path, "at least one tier is needed");
  std::int64_t previous_up_to = 0;
  for (std::size_t i = 0; i < tiers.size(); ++i) {
    const auto where = child(element(path, i), "up_to");
    const auto& up_to = tiers[i].up_to;
    const bool last = i + 1 == tiers.size();
    if (!up_to.has_value())
      return last ? status{}
                  : at(errc::invalid_price, where,
                       "only the last tier may be unbounded (null)");
    if (*up_to <= previous_up_to)
      return at(errc::invalid_price, where,
                "must be positive and strictly increasing");
    previous_up_to = *up_to;
  }
  return at(errc::invalid_price,
            child(element(path, tiers.size() - 1), "up_to"),
            "the last tier must be unbounded (null)");
}

result<std::vector<price_tier>> decode_tiers(const json& obj,
                                             const std::string& path) {
  auto arr = field_array(obj, path, "tiers", max_price_tiers,
                         errc::invalid_price);
  if (!arr)
    return arr.error();
  const auto tiers_path = child(path, "tiers");
  std::vector<price_tier> tiers;
  tiers.reserve((*arr)->size());
  for (std::size_t i = 0; i < (*arr)->size(); ++i) {
    auto t = decode_tier((**arr)[i], element(tiers_path, i));
    if (!t)
      return t.error();
    tiers.push_back(*t);
  }
  if (auto st = check_tier_shape(tiers, tiers_path); !st)
    return st.error();
  return tiers;
}

result<pricing> decode_pricing(const json& j, const std::string& path) {
  if (auto st = check_object(j, path,
                             {"kind", "flat_amount", "unit_amount", "tiers"});
      !st)
    return st.error();
  auto kind = field_kind(j, path);
  if (!kind)
    return kind.error();
  if (auto st = check_kind_fields(j, path, *kind); !st)
    return st.error();
  pricing p;
  p.kind = *kind;
  if (is_tiered(*kind)) {
    auto tiers = decode_tiers(j, path);
    if (!tiers)
      return tiers.error();
    p.tiers = std::move(*tiers);
    return p;
  }
  const bool flat = *kind == pricing_kind::flat;
  auto amount = field_amount(j, path, flat ? "flat_amount" : "unit_amount");
  if (!amount)
    return amount.error();
  (flat ? p.flat_amount_minor : p.unit_amount_minor) = *amount;
  return p;
}

// -- decoding: meters ---------------------------------------------------------

result<metered_component> decode_meter(const json& j, const std::string& path) {
  if (auto st = check_object(j, path,
                             {"meter", "included_quantity", "overage"});
      !st)
    return st.error();
  auto name = field_string(j, path, "meter");
  if (!name)
    return name.error();
  if (name->empty() || name->size() > max_meter_name_length)
    return bad(child(path, "meter"), "must be 1.."
                                       + std::to_string(max_meter_name_length)
                                       + " characters");
  auto included = field_int64(j, path, "included_quantity");
  if (!included)
    return included.error();
  if (*included < 0)
    return bad(child(path, "included_quantity"), "must not be negative");
  auto overage_json = require(j, path, "overage");
  if (!overage_json)
    return overage_json.error();
  auto overage = decode_pricing(**overage_json, child(path, "overage"));
  if (!overage)
    return overage.error();
  return metered_component{std::move(*name), *included, std::move(*overage)};
}

result<std::vector<metered_component>> decode_meters(const json& obj) {
  if (!obj.contains("metered"))
    return std::vector<metered_component>{};
  auto arr = field_array(obj, "", "metered", max_metered_components,
                         errc::invalid_argument);
  if (!arr)
    return arr.error();
  std::vector<metered_component> meters;
  std::set<std::string> names;
  for (std::size_t i = 0; i < (*arr)->size(); ++i) {
    const auto path = element("metered", i);
    auto c = decode_meter((**arr)[i], path);
    if (!c)
      return c.error();
    if (!names.insert(c->meter).second)
      return bad(child(path, "meter"), "duplicate meter '" + c->meter + "'");
    meters.push_back(std::move(*c));
  }
  return meters;
}

// -- decoding: the plan version -----------------------------------------------

result<billing_interval> decode_interval(const json& obj) {
  auto j = require(obj, "", "interval");
  if (!j)
    return j.error();
  const std::string path = "interval";
  if (auto st = check_object(**j, path, {"unit", "count"}); !st)
    return st.error();
  auto unit = field_string(**j, path, "unit");
  if (!unit)
    return unit.error();
  billing_interval interval;
  const auto known = interval_unit_from(*unit);
  if (!known)
    return bad(child(path, "unit"),
               "unknown interval unit (day, week, month or year)");
  interval.unit = *known;
  auto count = field_int32(**j, path, "count");
  if (!count)
    return count.error();
  interval.count = *count;
  // The interval rules (count >= 1, at most three years) are the domain's:
  // ask it about a version that differs from a valid one only here.
  const plan_version probe{
    1, instant{}, currency::of("USD"), interval, 0, pricing::flat(0), {}};
  if (auto st = validate(probe); !st)
    return at(st.code(), child(path, "count"), st.error().detail);
  return interval;
}

result<instant> decode_effective_at(const json& obj) {
  auto text = field_string(obj, "", "effective_at");
  if (!text)
    return text.error();
  auto t = parse_iso8601(*text);
  if (!t)
    return bad("effective_at", t.error().detail);
  return t;
}

result<currency> decode_currency(const json& obj) {
  auto code = field_string(obj, "", "currency");
  if (!code)
    return code.error();
  auto cur = currency::from_code(*code);
  if (!cur)
    return at(cur.code(), "currency",
              "unknown ISO-4217 currency '" + *code + "'");
  return cur;
}

result<std::int32_t> decode_version(const json& obj) {
  auto v = field_int32(obj, "", "version");
  if (v && *v < 1)
    return bad("version", "version numbers start at 1");
  return v;
}

result<std::int32_t> decode_trial_days(const json& obj) {
  if (!obj.contains("trial_days"))
    return 0;
  auto v = field_int32(obj, "", "trial_days");
  if (v && (*v < 0 || *v > max_trial_days))
    return bad("trial_days", "must be 0.." + std::to_string(max_trial_days));
  return v;
}

result<pricing> decode_base(const json& obj) {
  auto j = require(obj, "", "base");
  if (!j)
    return j.error();
  return decode_pricing(**j, "base");
}

result<plan_version> decode_plan_version(const json& j) {
  if (auto st = check_object(j, "",
                             {"version", "effective_at", "currency", "interval",
                              "trial_days", "base", "metered"});
      !st)
    return st.error();
  auto version = decode_version(j);
  if (!version)
    return version.error();
  auto effective_at = decode_effective_at(j);
  if (!effective_at)
    return effective_at.error();
  auto cur = decode_currency(j);
  if (!cur)
    return cur.error();
  auto interval = decode_interval(j);
  if (!interval)
    return interval.error();
  auto trial_days = decode_trial_days(j);
  if (!trial_days)
    return trial_days.error();
  auto base = decode_base(j);
  if (!base)
    return base.error();
  auto meters = decode_meters(j);
  if (!meters)
    return meters.error();
  return plan_version{*version,          *effective_at, *cur,
                      *interval,         *trial_days,   std::move(*base),
                      std::move(*meters)};
}

/// Parses strictly: one JSON value, no comments, no duplicate keys (which
/// nlohmann would otherwise resolve silently, last one wins).
result<json> parse_strict(std::string_view text) {
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  auto on_event = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.back().insert(parsed.get<std::string>()).second
            && !duplicate)
          duplicate = parsed.get<std::string>();
        break;
      default:
        break;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text, on_event, /*allow_exceptions=*/true,
                    /*ignore_comments=*/false);
  } catch (const json::parse_error& e) {
    return make_error(errc::invalid_argument,
                      std::string{"document: malformed JSON: "} + e.what());
  }
  if (duplicate)
    return make_error(errc::invalid_argument,
                      "document: duplicate key '" + *duplicate + "'");
  return j;
}

} // namespace

std::string plan_version_to_json(const plan_version& v) {
  ordered_json j = ordered_json::object();
  j["version"] = v.version;
  j["effective_at"] = format_iso8601(v.effective_at);
  j["currency"] = std::string{v.currency.code()};
  j["interval"]
    = ordered_json{{"unit", std::string{to_string(v.interval.unit)}},
                   {"count", v.interval.count}};
  j["trial_days"] = v.trial_days;
  j["base"] = encode_pricing(v.base);
  ordered_json meters = ordered_json::array();
  for (const auto& c : v.metered)
    meters.push_back(encode_meter(c));
  j["metered"] = std::move(meters);
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

result<plan_version> plan_version_from_json(std::string_view text) {
  if (text.size() > max_plan_json_bytes)
    return make_error(errc::invalid_argument,
                      "document: larger than "
                        + std::to_string(max_plan_json_bytes) + " bytes");
  auto j = parse_strict(text);
  if (!j)
    return j.error();
  auto v = decode_plan_version(*j);
  if (!v)
    return v;
  // The checks above name the field at fault; the domain has the last word.
  if (auto st = validate(*v); !st)
    return make_error(st.code(), "document: " + st.error().detail);
  return v;
}

} // namespace recur
