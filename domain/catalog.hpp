#pragma once
/// Versioned price books: a tenant's plans, each an append-only list of
/// immutable plan versions with effective dates, and "the price of plan P at
/// instant T".

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/error.hpp"
#include "domain/ids.hpp"
#include "domain/interval.hpp"
#include "domain/money.hpp"
#include "domain/pricing.hpp"
#include "domain/time.hpp"

namespace recur {

// -- limits -------------------------------------------------------------------

inline constexpr std::int32_t max_trial_days = 730;
inline constexpr std::size_t max_metered_components = 50;
inline constexpr std::size_t max_meter_name_length = 100;
inline constexpr std::size_t max_plan_versions = 1000;

// -- metered usage ------------------------------------------------------------

/// A usage-priced part of a plan. The first `included_quantity` units of a
/// period are free; `overage` prices only the units above them, so its tiers
/// count overage units (tier 1 starts at the first unit over the allowance).
struct metered_component {
  std::string meter;
  std::int64_t included_quantity = 0;
  pricing overage;

  friend bool operator==(const metered_component&, const metered_component&)
    = default;
};

/// Empty or over-long meter name, negative included quantity →
/// `invalid_argument`; a bad overage pricing → its `validate` error.
status validate(const metered_component& c);

/// The charge for `used_quantity` units in one period. Usage within the
/// allowance charges nothing at all: the overage pricing (flat fees included)
/// applies only once there is overage. Negative usage is `invalid_argument`.
result<money> usage_charge(const metered_component& c, currency cur,
                           std::int64_t used_quantity);

// -- plan versions ------------------------------------------------------------

/// One immutable price of a plan, in force from `effective_at` until the next
/// version's `effective_at`.
struct plan_version {
  std::int32_t version = 0; // 1, 2, 3, … within its plan
  instant effective_at;
  recur::currency currency; // no default: a price must name its currency
  billing_interval interval;
  std::int32_t trial_days = 0;
  pricing base; // priced by the subscription's quantity (seats)
  std::vector<metered_component> metered;

  friend bool operator==(const plan_version&, const plan_version&) = default;
};

/// version >= 1, 0 <= trial_days <= 730, interval count >= 1 and at most three
/// years long, at most `max_metered_components` meters with unique non-empty
/// names → else `invalid_argument`; pricing errors keep their own codes.
status validate(const plan_version& v);

/// The metered component named `meter`, or `not_found`.
result<const metered_component*> find_meter(const plan_version& v,
                                            std::string_view meter);

// -- plans --------------------------------------------------------------------

/// A plan: an id, a name and an append-only history of versions. A version,
/// once added, never changes, and pointers to it stay valid for the plan's
/// lifetime (versions live in a deque, which never relocates on append).
class plan {
public:
  plan(plan_id id, std::string name);

  // -- properties -------------------------------------------------------------

  const plan_id& id() const noexcept { return id_; }
  const std::string& name() const noexcept { return name_; }
  const std::deque<plan_version>& versions() const noexcept {
    return versions_;
  }

  // -- mutation ---------------------------------------------------------------

  /// Appends the next version. It must be valid, numbered versions().size()+1,
  /// effective strictly after the previous version and in the same currency
  /// (`currency_mismatch`); otherwise nothing changes. Numbering and dates are
  /// `invalid_argument`.
  status add_version(plan_version v);

  // -- lookup -----------------------------------------------------------------

  /// The version with the greatest effective_at <= t, or `no_price_version`.
  result<const plan_version*> version_at(instant t) const;

  /// Version number n (1-based), or `not_found`.
  result<const plan_version*> version(std::int32_t n) const;

private:
  plan_id id_;
  std::string name_;
  std::deque<plan_version> versions_;
};

// -- price books --------------------------------------------------------------

/// One tenant's catalog. Plans may differ in currency; a plan's versions all
/// share one. Plans are kept by id (a std::map: stable addresses and a
/// deterministic listing order).
class price_book {
public:
  explicit price_book(tenant_id tenant) : tenant_(std::move(tenant)) {}

  const tenant_id& tenant() const noexcept { return tenant_; }
  const std::map<plan_id, plan>& plans() const noexcept { return plans_; }

  /// Adds a plan (with whatever versions it already holds). An empty id or
  /// name, or an id already in the book, is `invalid_argument`.
  status add_plan(plan p);

  /// Appends a version to a plan: `not_found` for an unknown plan, otherwise
  /// as `plan::add_version`.
  status add_version(const plan_id& id, plan_version v);

  /// The plan with this id, or `not_found`.
  result<const plan*> find(const plan_id& id) const;

  /// The price of plan `id` at instant `t`: `not_found` for an unknown plan,
  /// `no_price_version` before its first version.
  result<const plan_version*> resolve(const plan_id& id, instant t) const;

private:
  tenant_id tenant_;
  std::map<plan_id, plan> plans_;
};

} // namespace recur
