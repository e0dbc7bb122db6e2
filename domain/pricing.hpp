#pragma once
/// Pricing models (flat, per-unit, graduated tiers, volume tiers) and the exact
/// price of a quantity under one of them.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "domain/error.hpp"
#include "domain/money.hpp"

namespace recur {

/// How a quantity turns into an amount, with Stripe's meanings:
/// - flat: a fixed fee per period, whatever the quantity (even 0);
/// - per_unit: unit amount x quantity;
/// - tiered: graduated; each unit is priced by the tier it falls in, plus the
///   flat fee of every tier reached (Stripe `tiers_mode=graduated`);
/// - volume: every unit is priced at the tier the total quantity falls in,
///   plus that tier's flat fee (Stripe `tiers_mode=volume`).
enum class pricing_kind : std::uint8_t { flat, per_unit, tiered, volume };

/// "flat", "per_unit", "tiered" or "volume".
std::string_view to_string(pricing_kind kind) noexcept;

/// Our limit on tiers per price: a table, not a curve.
inline constexpr std::size_t max_price_tiers = 100;

/// One tier: the units from the previous tier's `up_to` + 1 up to and
/// including `up_to`. The first tier starts at quantity 0, so it is always
/// reached (its flat fee is charged even for quantity 0, as in Stripe's
/// "flat fee and overages" model). `nullopt` = unbounded, last tier only.
struct price_tier {
  std::optional<std::int64_t> up_to;
  std::int64_t unit_amount_minor = 0;
  std::int64_t flat_amount_minor = 0;

  friend bool operator==(const price_tier&, const price_tier&) = default;
};

/// A pricing model. Only the fields of its kind may be set: `flat_amount_minor`
/// for flat, `unit_amount_minor` for per_unit, `tiers` for tiered and volume;
/// the others stay zero/empty (`validate` rejects a mix as `invalid_price`).
struct pricing {
  pricing_kind kind = pricing_kind::flat;
  std::int64_t flat_amount_minor = 0;
  std::int64_t unit_amount_minor = 0;
  std::vector<price_tier> tiers;

  // -- named constructors -----------------------------------------------------

  static pricing flat(std::int64_t amount_minor);
  static pricing per_unit(std::int64_t unit_amount_minor);
  static pricing tiered(std::vector<price_tier> tiers);
  static pricing volume(std::vector<price_tier> tiers);

  friend bool operator==(const pricing&, const pricing&) = default;
};

/// Negative amounts are `negative_amount`. Fields foreign to the kind, no
/// tiers, more than `max_price_tiers`, a non-positive or non-increasing
/// `up_to`, or an unbounded tier anywhere but last (or none) are
/// `invalid_price`.
status validate(const pricing& p);

/// The price of `quantity` units for one period. A negative quantity is
/// `invalid_argument`; an invalid pricing returns its `validate` error;
/// int64 overflow anywhere is `amount_overflow`.
result<money> price_for_quantity(const pricing& p, currency cur,
                                 std::int64_t quantity);

} // namespace recur
