#include "domain/pricing.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "domain/clock.hpp"

using namespace recur;

namespace {

const currency usd = currency::of("USD");

constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();

// The reference table for the graduated-vs-volume tests:
//   tier 1: units    1..10  at 500 each, flat fee 1000
//   tier 2: units   11..50  at 400 each, flat fee 2000
//   tier 3: units   51..inf at 300 each, flat fee 5000
std::vector<price_tier> reference_tiers() {
  return {{10, 500, 1000}, {50, 400, 2000}, {std::nullopt, 300, 5000}};
}

std::int64_t price_of(const pricing& p, std::int64_t quantity) {
  auto r = price_for_quantity(p, usd, quantity);
  EXPECT_TRUE(r.has_value()) << "quantity " << quantity;
  return r ? r->amount_minor() : -1;
}

errc error_of(const pricing& p, std::int64_t quantity = 1) {
  auto r = price_for_quantity(p, usd, quantity);
  EXPECT_FALSE(r.has_value());
  return r ? errc::not_found : r.code();
}

} // namespace

// -- kinds --------------------------------------------------------------------

TEST(pricing, kinds_have_stable_names) {
  EXPECT_EQ(to_string(pricing_kind::flat), "flat");
  EXPECT_EQ(to_string(pricing_kind::per_unit), "per_unit");
  EXPECT_EQ(to_string(pricing_kind::tiered), "tiered");
  EXPECT_EQ(to_string(pricing_kind::volume), "volume");
}

TEST(pricing, named_constructors_set_only_the_fields_of_their_kind) {
  auto t = pricing::tiered(reference_tiers());
  EXPECT_EQ(t.kind, pricing_kind::tiered);
  EXPECT_EQ(t.tiers.size(), 3u);
  EXPECT_EQ(t.flat_amount_minor, 0);
  EXPECT_EQ(pricing::volume(reference_tiers()).kind, pricing_kind::volume);
  EXPECT_EQ(pricing::flat(700).flat_amount_minor, 700);
  EXPECT_EQ(pricing::per_unit(25).unit_amount_minor, 25);
  EXPECT_TRUE(pricing::flat(700).tiers.empty());
}

// -- flat and per unit --------------------------------------------------------

TEST(pricing, a_flat_price_is_the_same_fee_for_any_quantity) {
  const auto p = pricing::flat(2900);
  EXPECT_EQ(price_of(p, 0), 2900);
  EXPECT_EQ(price_of(p, 1), 2900);
  EXPECT_EQ(price_of(p, 1'000'000), 2900);
  EXPECT_EQ(price_of(p, i64_max), 2900);
  EXPECT_EQ(price_for_quantity(p, usd, 3)->currency(), usd);
}

TEST(pricing, a_per_unit_price_multiplies_by_the_quantity) {
  const auto p = pricing::per_unit(1250);
  EXPECT_EQ(price_of(p, 0), 0);
  EXPECT_EQ(price_of(p, 1), 1250);
  EXPECT_EQ(price_of(p, 7), 8750);
  EXPECT_EQ(price_of(pricing::per_unit(0), 1'000'000), 0);
}

// -- graduated vs volume ------------------------------------------------------

// Graduated (tiered), by hand from the reference table:
//   q=0    tier 1 reached, 0 units            = 1000
//   q=1    1x500 + 1000                       = 1500
//   q=10   10x500 + 1000                      = 6000
//   q=11   6000 + 1x400 + 2000                = 8400
//   q=50   6000 + 40x400 + 2000               = 24000
//   q=51   24000 + 1x300 + 5000               = 29300
//   q=1000 24000 + 950x300 + 5000             = 314000
TEST(pricing, graduated_tiers_price_each_unit_by_its_own_tier) {
  const auto p = pricing::tiered(reference_tiers());
  EXPECT_EQ(price_of(p, 0), 1000);
  EXPECT_EQ(price_of(p, 1), 1500);
  EXPECT_EQ(price_of(p, 10), 6000);
  EXPECT_EQ(price_of(p, 11), 8400);
  EXPECT_EQ(price_of(p, 50), 24000);
  EXPECT_EQ(price_of(p, 51), 29300);
  EXPECT_EQ(price_of(p, 1000), 314000);
}

// Volume, by hand from the reference table:
//   q=0    tier 1: 0x500 + 1000               = 1000
//   q=1    tier 1: 1x500 + 1000               = 1500
//   q=10   tier 1: 10x500 + 1000              = 6000
//   q=11   tier 2: 11x400 + 2000              = 6400
//   q=50   tier 2: 50x400 + 2000              = 22000
//   q=51   tier 3: 51x300 + 5000              = 20300
//   q=1000 tier 3: 1000x300 + 5000            = 305000
TEST(pricing, volume_tiers_price_every_unit_at_the_tier_of_the_total) {
  const auto p = pricing::volume(reference_tiers());
  EXPECT_EQ(price_of(p, 0), 1000);
  EXPECT_EQ(price_of(p, 1), 1500);
  EXPECT_EQ(price_of(p, 10), 6000);
  EXPECT_EQ(price_of(p, 11), 6400);
  EXPECT_EQ(price_of(p, 50), 22000);
  EXPECT_EQ(price_of(p, 51), 20300);
  EXPECT_EQ(price_of(p, 1000), 305000);
}

TEST(pricing, a_single_unbounded_tier_behaves_like_per_unit_plus_a_fee) {
  const std::vector<price_tier> one{{std::nullopt, 40, 100}};
  EXPECT_EQ(price_of(pricing::tiered(one), 0), 100);
  EXPECT_EQ(price_of(pricing::tiered(one), 25), 1100);
  EXPECT_EQ(price_of(pricing::volume(one), 25), 1100);
}

TEST(pricing, a_free_first_tier_with_a_fee_models_a_base_fee_plus_overage) {
  // Stripe's "flat fee and overages": 20000 covers up to 100 units,
  // then 150 per unit. q=0 and q=100 -> 20000; q=130 -> 20000 + 30x150 = 24500.
  const auto p =
    pricing::tiered({{100, 0, 20000}, {std::nullopt, 150, 0}});
  EXPECT_EQ(price_of(p, 0), 20000);
  EXPECT_EQ(price_of(p, 100), 20000);
  EXPECT_EQ(price_of(p, 130), 24500);
}

// -- errors -------------------------------------------------------------------

TEST(pricing, a_negative_quantity_is_an_invalid_argument) {
  EXPECT_EQ(error_of(pricing::flat(100), -1), errc::invalid_argument);
  EXPECT_EQ(error_of(pricing::per_unit(100), -5), errc::invalid_argument);
  EXPECT_EQ(error_of(pricing::tiered(reference_tiers()), -1),
            errc::invalid_argument);
}

TEST(pricing, huge_quantities_report_overflow_instead_of_wrapping) {
  EXPECT_EQ(error_of(pricing::per_unit(2), i64_max / 2 + 1),
            errc::amount_overflow);
  EXPECT_EQ(error_of(pricing::tiered(reference_tiers()), i64_max),
            errc::amount_overflow);
  EXPECT_EQ(error_of(pricing::volume(reference_tiers()), i64_max),
            errc::amount_overflow);
  // The units alone fit, the flat fee on top does not.
  const std::vector<price_tier> big_fee{{std::nullopt, 1, i64_max}};
  EXPECT_EQ(error_of(pricing::volume(big_fee), 1), errc::amount_overflow);
  EXPECT_EQ(error_of(pricing::tiered(big_fee), 1), errc::amount_overflow);
  // Graduated: each tier fits, their sum does not.
  const std::vector<price_tier> two_big{{1, i64_max / 2 + 1, 0},
                                        {std::nullopt, i64_max / 2 + 1, 0}};
  EXPECT_EQ(price_of(pricing::tiered(two_big), 1), i64_max / 2 + 1);
  EXPECT_EQ(error_of(pricing::tiered(two_big), 2), errc::amount_overflow);
}

TEST(pricing, the_largest_price_that_fits_is_exact) {
  EXPECT_EQ(price_of(pricing::per_unit(1), i64_max), i64_max);
  const std::vector<price_tier> tiers{{1, i64_max - 10, 5},
                                      {std::nullopt, 5, 0}};
  EXPECT_EQ(price_of(pricing::tiered(tiers), 2), i64_max);
}

TEST(pricing, negative_amounts_are_rejected) {
  EXPECT_EQ(validate(pricing::flat(-1)).code(), errc::negative_amount);
  EXPECT_EQ(validate(pricing::per_unit(-1)).code(), errc::negative_amount);
  EXPECT_EQ(validate(pricing::tiered({{10, -1, 0}, {std::nullopt, 1, 0}}))
              .code(),
            errc::negative_amount);
  EXPECT_EQ(validate(pricing::volume({{10, 1, 0}, {std::nullopt, 1, -3}}))
              .code(),
            errc::negative_amount);
  EXPECT_EQ(error_of(pricing::flat(-1)), errc::negative_amount);
}

TEST(pricing, malformed_tiers_are_an_invalid_price) {
  const auto bad = [](std::vector<price_tier> tiers) {
    return validate(pricing::tiered(std::move(tiers))).code();
  };
  EXPECT_EQ(bad({}), errc::invalid_price);
  EXPECT_EQ(bad({{10, 1, 0}}), errc::invalid_price); // last tier bounded
  EXPECT_EQ(bad({{10, 1, 0}, {10, 1, 0}, {std::nullopt, 1, 0}}),
            errc::invalid_price); // not strictly increasing
  EXPECT_EQ(bad({{10, 1, 0}, {5, 1, 0}, {std::nullopt, 1, 0}}),
            errc::invalid_price); // decreasing
  EXPECT_EQ(bad({{std::nullopt, 1, 0}, {std::nullopt, 1, 0}}),
            errc::invalid_price); // unbounded tier before the last
  EXPECT_EQ(bad({{0, 1, 0}, {std::nullopt, 1, 0}}),
            errc::invalid_price); // up_to must be positive
  EXPECT_EQ(bad({{-4, 1, 0}, {std::nullopt, 1, 0}}), errc::invalid_price);
  EXPECT_EQ(validate(pricing::volume({})).code(), errc::invalid_price);
  EXPECT_EQ(error_of(pricing::volume({{5, 1, 0}})), errc::invalid_price);
}

TEST(pricing, more_tiers_than_the_limit_are_an_invalid_price) {
  std::vector<price_tier> tiers;
  for (std::size_t i = 1; i < max_price_tiers; ++i)
    tiers.push_back({static_cast<std::int64_t>(i), 1, 0});
  tiers.push_back({std::nullopt, 1, 0});
  EXPECT_TRUE(validate(pricing::tiered(tiers)));
  tiers.back().up_to = static_cast<std::int64_t>(max_price_tiers);
  tiers.push_back({std::nullopt, 1, 0});
  EXPECT_EQ(validate(pricing::tiered(tiers)).code(), errc::invalid_price);
}

TEST(pricing, fields_foreign_to_the_kind_are_an_invalid_price) {
  auto flat_with_tiers = pricing::flat(100);
  flat_with_tiers.tiers = reference_tiers();
  EXPECT_EQ(validate(flat_with_tiers).code(), errc::invalid_price);
  auto flat_with_unit = pricing::flat(100);
  flat_with_unit.unit_amount_minor = 5;
  EXPECT_EQ(validate(flat_with_unit).code(), errc::invalid_price);
  auto per_unit_with_fee = pricing::per_unit(5);
  per_unit_with_fee.flat_amount_minor = 100;
  EXPECT_EQ(validate(per_unit_with_fee).code(), errc::invalid_price);
  auto tiered_with_unit = pricing::tiered(reference_tiers());
  tiered_with_unit.unit_amount_minor = 5;
  EXPECT_EQ(validate(tiered_with_unit).code(), errc::invalid_price);
  EXPECT_EQ(error_of(tiered_with_unit), errc::invalid_price);
}

TEST(pricing, well_formed_prices_validate) {
  EXPECT_TRUE(validate(pricing::flat(0)));
  EXPECT_TRUE(validate(pricing::per_unit(0)));
  EXPECT_TRUE(validate(pricing::tiered(reference_tiers())));
  EXPECT_TRUE(validate(pricing::volume(reference_tiers())));
  EXPECT_TRUE(validate(pricing{}));
}

// -- properties ---------------------------------------------------------------

namespace {

constexpr std::uint64_t property_seed = 0x5eed'0000'ca7a'1006;
constexpr int property_cases = 10'000;

std::vector<price_tier> random_tiers(rng& r) {
  std::vector<price_tier> tiers;
  const auto count = r.between(1, 6);
  std::int64_t up_to = 0;
  for (std::int64_t i = 0; i < count; ++i) {
    price_tier tier{std::nullopt, r.between(0, 10'000), r.between(0, 100'000)};
    if (i + 1 < count) {
      up_to += r.between(1, 60);
      tier.up_to = up_to;
    }
    tiers.push_back(tier);
  }
  return tiers;
}

// The tier that holds unit number `unit` (1-based): the first whose up_to
// reaches it.
std::size_t tier_of_unit(const std::vector<price_tier>& tiers,
                         std::int64_t unit) {
  for (std::size_t i = 0; i < tiers.size(); ++i) {
    if (!tiers[i].up_to || unit <= *tiers[i].up_to)
      return i;
  }
  return tiers.size() - 1;
}

// Graduated price, one unit at a time: each unit pays its tier's unit amount,
// and each tier that received a unit (plus tier 1, always) pays its fee once.
std::int64_t naive_graduated(const std::vector<price_tier>& tiers,
                             std::int64_t quantity) {
  std::vector<bool> reached(tiers.size(), false);
  reached[0] = true;
  std::int64_t total = 0;
  for (std::int64_t unit = 1; unit <= quantity; ++unit) {
    const auto i = tier_of_unit(tiers, unit);
    total += tiers[i].unit_amount_minor;
    reached[i] = true;
  }
  for (std::size_t i = 0; i < tiers.size(); ++i)
    total += reached[i] ? tiers[i].flat_amount_minor : 0;
  return total;
}

std::int64_t naive_volume(const std::vector<price_tier>& tiers,
                          std::int64_t quantity) {
  const auto& tier = tiers[tier_of_unit(tiers, quantity)];
  return quantity * tier.unit_amount_minor + tier.flat_amount_minor;
}

} // namespace

TEST(pricing_property, graduated_price_equals_the_unit_by_unit_sum) {
  rng r{property_seed};
  SCOPED_TRACE("seed " + std::to_string(r.seed()));
  for (int n = 0; n < property_cases; ++n) {
    const auto tiers = random_tiers(r);
    const auto quantity = r.between(0, 400);
    auto got = price_for_quantity(pricing::tiered(tiers), usd, quantity);
    ASSERT_TRUE(got) << "case " << n;
    ASSERT_EQ(got->amount_minor(), naive_graduated(tiers, quantity))
      << "case " << n << " quantity " << quantity;
  }
}

TEST(pricing_property, volume_price_is_the_quantity_at_the_selected_tier) {
  rng r{property_seed + 1};
  SCOPED_TRACE("seed " + std::to_string(r.seed()));
  for (int n = 0; n < property_cases; ++n) {
    const auto tiers = random_tiers(r);
    const auto quantity = r.between(0, 400);
    auto got = price_for_quantity(pricing::volume(tiers), usd, quantity);
    ASSERT_TRUE(got) << "case " << n;
    ASSERT_EQ(got->amount_minor(), naive_volume(tiers, quantity))
      << "case " << n << " quantity " << quantity;
  }
}

TEST(pricing_property, graduated_price_never_falls_as_quantity_grows) {
  rng r{property_seed + 2};
  SCOPED_TRACE("seed " + std::to_string(r.seed()));
  for (int n = 0; n < property_cases; ++n) {
    const auto p = pricing::tiered(random_tiers(r));
    const auto q = r.between(0, 1'000'000'000);
    const auto step = r.between(1, 500);
    auto lo = price_for_quantity(p, usd, q);
    auto hi = price_for_quantity(p, usd, q + step);
    ASSERT_TRUE(lo && hi) << "case " << n;
    ASSERT_LE(lo->amount_minor(), hi->amount_minor())
      << "case " << n << " q " << q << " step " << step;
  }
}
