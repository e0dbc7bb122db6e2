#include "domain/pricing.hpp"

#include <algorithm>
#include <string>
#include <utility>

namespace recur {

namespace {

bool is_tiered(pricing_kind kind) {
  return kind == pricing_kind::tiered || kind == pricing_kind::volume;
}

error invalid(std::string detail) {
  return make_error(errc::invalid_price, std::move(detail));
}

// A field that does not belong to the kind is a caller's mistake: silently
// ignoring it would bill something other than what the tenant thinks it set.
status check_no_foreign_fields(const pricing& p) {
  if (p.kind != pricing_kind::flat && p.flat_amount_minor != 0)
    return invalid("flat_amount_minor is only for flat pricing");
  if (p.kind != pricing_kind::per_unit && p.unit_amount_minor != 0)
    return invalid("unit_amount_minor is only for per_unit pricing");
  if (!is_tiered(p.kind) && !p.tiers.empty())
    return invalid("tiers are only for tiered or volume pricing");
  return {};
}

status check_tier_shape(const std::vector<price_tier>& tiers) {
  if (tiers.empty())
    return invalid("tiered pricing needs at least one tier");
  if (tiers.size() > max_price_tiers)
    return invalid("too many tiers");
  std::int64_t previous_up_to = 0;
  for (std::size_t i = 0; i < tiers.size(); ++i) {
    const auto& up_to = tiers[i].up_to;
    const bool last = i + 1 == tiers.size();
    if (!up_to.has_value())
      return last ? status{} : invalid("only the last tier may be unbounded");
    if (*up_to <= previous_up_to)
      return invalid("tier up_to must be positive and strictly increasing");
    previous_up_to = *up_to;
  }
  return invalid("the last tier must be unbounded");
}

status check_tier_amounts(const std::vector<price_tier>& tiers) {
  for (const auto& tier : tiers) {
    if (tier.unit_amount_minor < 0 || tier.flat_amount_minor < 0)
      return make_error(errc::negative_amount, "negative tier amount");
  }
  return {};
}

// unit x units + flat, every step checked.
result<money> line(currency cur, std::int64_t unit_minor, std::int64_t units,
                   std::int64_t flat_minor) {
  auto variable = money{unit_minor, cur}.times(units);
  if (!variable)
    return variable;
  return variable->plus(money{flat_minor, cur});
}

// Graduated: tier i covers (lower_i, up_to_i]; it is reached when the
// quantity exceeds lower_i, and the first tier (lower 0) always is.
result<money> graduated_price(const std::vector<price_tier>& tiers,
                              currency cur, std::int64_t quantity) {
  money total = money::zero(cur);
  std::int64_t lower = 0;
  for (const auto& tier : tiers) {
    const std::int64_t upper =
      tier.up_to ? std::min(*tier.up_to, quantity) : quantity;
    auto part = line(cur, tier.unit_amount_minor, upper - lower,
                     tier.flat_amount_minor);
    if (!part)
      return part;
    auto next = total.plus(*part);
    if (!next)
      return next;
    total = *next;
    if (!tier.up_to || quantity <= *tier.up_to)
      break;
    lower = *tier.up_to;
  }
  return total;
}

// Volume: the whole quantity at the first tier whose up_to holds it.
result<money> volume_price(const std::vector<price_tier>& tiers, currency cur,
                           std::int64_t quantity) {
  for (const auto& tier : tiers) {
    if (!tier.up_to || quantity <= *tier.up_to)
      return line(cur, tier.unit_amount_minor, quantity,
                  tier.flat_amount_minor);
  }
  RECUR_ASSERT(false); // validate() guarantees an unbounded last tier
  return money::zero(cur);
}

} // namespace

std::string_view to_string(pricing_kind kind) noexcept {
  switch (kind) {
    case pricing_kind::flat: return "flat";
    case pricing_kind::per_unit: return "per_unit";
    case pricing_kind::tiered: return "tiered";
    case pricing_kind::volume: return "volume";
  }
  return "unknown";
}

pricing pricing::flat(std::int64_t amount_minor) {
  return pricing{pricing_kind::flat, amount_minor, 0, {}};
}

pricing pricing::per_unit(std::int64_t unit_amount_minor) {
  return pricing{pricing_kind::per_unit, 0, unit_amount_minor, {}};
}

pricing pricing::tiered(std::vector<price_tier> tiers) {
  return pricing{pricing_kind::tiered, 0, 0, std::move(tiers)};
}

pricing pricing::volume(std::vector<price_tier> tiers) {
  return pricing{pricing_kind::volume, 0, 0, std::move(tiers)};
}

status validate(const pricing& p) {
  if (p.flat_amount_minor < 0 || p.unit_amount_minor < 0)
    return make_error(errc::negative_amount, "negative price amount");
  if (auto st = check_no_foreign_fields(p); !st)
    return st;
  if (!is_tiered(p.kind))
    return {};
  if (auto st = check_tier_amounts(p.tiers); !st)
    return st;
  return check_tier_shape(p.tiers);
}

result<money> price_for_quantity(const pricing& p, currency cur,
                                 std::int64_t quantity) {
  if (quantity < 0)
    return make_error(errc::invalid_argument, "negative quantity");
  if (auto st = validate(p); !st)
    return st.error();
  switch (p.kind) {
    case pricing_kind::flat: return money{p.flat_amount_minor, cur};
    case pricing_kind::per_unit:
      return money{p.unit_amount_minor, cur}.times(quantity);
    case pricing_kind::tiered: return graduated_price(p.tiers, cur, quantity);
    case pricing_kind::volume: return volume_price(p.tiers, cur, quantity);
  }
  RECUR_ASSERT(false);
  return money::zero(cur);
}

} // namespace recur
