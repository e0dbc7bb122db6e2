#include "domain/catalog.hpp"

#include <algorithm>
#include <iterator>
#include <set>
#include <string>

namespace recur {

namespace {

error bad(std::string detail) {
  return make_error(errc::invalid_argument, std::move(detail));
}

// Stripe allows intervals of up to three years; longer ones are almost
// certainly a unit mistake (36 years instead of 36 months).
std::int32_t max_interval_count(interval_unit unit) {
  switch (unit) {
    case interval_unit::day: return 3 * 365;
    case interval_unit::week: return 3 * 52;
    case interval_unit::month: return 3 * 12;
    case interval_unit::year: return 3;
  }
  return 0;
}

status check_interval(const billing_interval& interval) {
  if (interval.count < 1)
    return bad("interval count must be at least 1");
  if (interval.count > max_interval_count(interval.unit))
    return bad("interval longer than three years");
  return {};
}

status check_meters(const std::vector<metered_component>& metered) {
  if (metered.size() > max_metered_components)
    return bad("too many metered components");
  std::set<std::string_view> seen;
  for (const auto& c : metered) {
    if (auto st = validate(c); !st)
      return st;
    if (!seen.insert(c.meter).second)
      return bad("duplicate meter '" + c.meter + "'");
  }
  return {};
}

} // namespace

// -- metered usage ------------------------------------------------------------

status validate(const metered_component& c) {
  if (c.meter.empty() || c.meter.size() > max_meter_name_length)
    return bad("meter name must be 1.." + std::to_string(max_meter_name_length)
               + " characters");
  if (c.included_quantity < 0)
    return bad("negative included quantity for meter '" + c.meter + "'");
  return validate(c.overage);
}

result<money> usage_charge(const metered_component& c, currency cur,
                           std::int64_t used_quantity) {
  if (used_quantity < 0)
    return make_error(errc::invalid_argument, "negative usage");
  if (auto st = validate(c); !st)
    return st.error();
  if (used_quantity <= c.included_quantity)
    return money::zero(cur);
  // Both are non-negative here, so the difference cannot overflow.
  const std::int64_t overage_quantity = used_quantity - c.included_quantity;
  return price_for_quantity(c.overage, cur, overage_quantity);
}

// -- plan versions ------------------------------------------------------------

status validate(const plan_version& v) {
  if (v.version < 1)
    return bad("version numbers start at 1");
  if (v.trial_days < 0 || v.trial_days > max_trial_days)
    return bad("trial_days must be 0.." + std::to_string(max_trial_days));
  if (auto st = check_interval(v.interval); !st)
    return st;
  if (auto st = validate(v.base); !st)
    return st;
  return check_meters(v.metered);
}

result<const metered_component*> find_meter(const plan_version& v,
                                            std::string_view meter) {
  for (const auto& c : v.metered) {
    if (c.meter == meter)
      return &c;
  }
  return make_error(errc::not_found, "no meter '" + std::string{meter} + "'");
}

// -- plans --------------------------------------------------------------------

plan::plan(plan_id id, std::string name)
  : id_(std::move(id)), name_(std::move(name)) {}

status plan::add_version(plan_version v) {
  if (auto st = validate(v); !st)
    return st;
  if (versions_.size() >= max_plan_versions)
    return bad("too many versions of plan '" + id_.value + "'");
  if (static_cast<std::size_t>(v.version) != versions_.size() + 1)
    return bad("expected version " + std::to_string(versions_.size() + 1));
  if (!versions_.empty()) {
    const plan_version& last = versions_.back();
    if (v.effective_at <= last.effective_at)
      return bad("a version must take effect after the previous one");
    if (!(v.currency == last.currency))
      return make_error(errc::currency_mismatch,
                        "a plan keeps one currency across its versions");
  }
  versions_.push_back(std::move(v));
  return {};
}

result<const plan_version*> plan::version_at(instant t) const {
  // Versions are sorted by strictly increasing effective_at.
  auto after = std::upper_bound(
    versions_.begin(), versions_.end(), t,
    [](instant x, const plan_version& v) { return x < v.effective_at; });
  if (after == versions_.begin())
    return make_error(errc::no_price_version,
                      "plan '" + id_.value + "' has no version in force at "
                        + format_iso8601(t));
  return &*std::prev(after);
}

result<const plan_version*> plan::version(std::int32_t n) const {
  if (n < 1 || static_cast<std::size_t>(n) > versions_.size())
    return make_error(errc::not_found, "plan '" + id_.value
                                         + "' has no version "
                                         + std::to_string(n));
  return &versions_[static_cast<std::size_t>(n) - 1];
}

// -- price books --------------------------------------------------------------

status price_book::add_plan(plan p) {
  if (p.id().empty() || p.name().empty())
    return bad("a plan needs an id and a name");
  if (plans_.contains(p.id()))
    return bad("plan '" + p.id().value + "' already exists");
  plan_id key = p.id();
  plans_.emplace(std::move(key), std::move(p));
  return {};
}

status price_book::add_version(const plan_id& id, plan_version v) {
  auto it = plans_.find(id);
  if (it == plans_.end())
    return make_error(errc::not_found, "no plan '" + id.value + "'");
  return it->second.add_version(std::move(v));
}

result<const plan*> price_book::find(const plan_id& id) const {
  auto it = plans_.find(id);
  if (it == plans_.end())
    return make_error(errc::not_found, "no plan '" + id.value + "'");
  return &it->second;
}

result<const plan_version*> price_book::resolve(const plan_id& id,
                                                instant t) const {
  auto p = find(id);
  if (!p)
    return p.error();
  return (*p)->version_at(t);
}

} // namespace recur
