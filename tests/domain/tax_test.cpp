#include "domain/tax.hpp"

#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "domain/arith.hpp"
#include "domain/clock.hpp"

using namespace recur;

namespace {

const currency usd = currency::of("USD");
const currency jpy = currency::of("JPY");
const currency bhd = currency::of("BHD");

constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();

tax_split split(std::int64_t amount_minor, std::int64_t rate_ppm, tax_mode mode,
                currency cur = usd) {
  auto r = apply_tax(money{amount_minor, cur}, rate_ppm, mode);
  RECUR_ASSERT(r.has_value());
  return *r;
}

int128 abs128(int128 v) { return v < 0 ? -v : v; }

} // namespace

// -- apply_tax: hand-computed cases ------------------------------------------

TEST(tax, twenty_percent_exclusive_adds_tax_on_top) {
  // 10000 * 200000 / 10^6 = 2000 exactly.
  const auto s = split(10000, 200'000, tax_mode::exclusive);
  EXPECT_EQ(s.net, money(10000, usd));
  EXPECT_EQ(s.tax, money(2000, usd));
  EXPECT_EQ(s.gross, money(12000, usd));
}

TEST(tax, twenty_percent_inclusive_extracts_tax_from_the_gross) {
  // net = 12000 * 10^6 / 1200000 = 10000 exactly; tax = 12000 - 10000.
  const auto s = split(12000, 200'000, tax_mode::inclusive);
  EXPECT_EQ(s.net, money(10000, usd));
  EXPECT_EQ(s.tax, money(2000, usd));
  EXPECT_EQ(s.gross, money(12000, usd));
}

TEST(tax, new_york_rate_on_an_odd_amount_rounds_to_the_nearest_minor_unit) {
  // Exclusive: 999 * 88750 = 88'661'250; / 10^6 = 88.66125 -> 89.
  const auto ex = split(999, 88'750, tax_mode::exclusive);
  EXPECT_EQ(ex.tax, money(89, usd));
  EXPECT_EQ(ex.gross, money(1088, usd));
  // Inclusive: net = 999'000'000 / 1'088'750.
  //   917 * 1'088'750 = 998'383'750 (616'250 short)
  //   918 * 1'088'750 = 999'472'500 (472'500 over)  -> 918 is nearer.
  // tax = 999 - 918 = 81.
  const auto in = split(999, 88'750, tax_mode::inclusive);
  EXPECT_EQ(in.net, money(918, usd));
  EXPECT_EQ(in.tax, money(81, usd));
  EXPECT_EQ(in.gross, money(999, usd));
}

TEST(tax, exclusive_ties_round_to_the_even_minor_unit) {
  // 10% of 5 = 0.5 -> 0; of 15 = 1.5 -> 2; of 25 = 2.5 -> 2; of 35 = 3.5 -> 4.
  EXPECT_EQ(split(5, 100'000, tax_mode::exclusive).tax, money(0, usd));
  EXPECT_EQ(split(15, 100'000, tax_mode::exclusive).tax, money(2, usd));
  EXPECT_EQ(split(25, 100'000, tax_mode::exclusive).tax, money(2, usd));
  EXPECT_EQ(split(35, 100'000, tax_mode::exclusive).tax, money(4, usd));
  EXPECT_EQ(split(-25, 100'000, tax_mode::exclusive).tax, money(-2, usd));
}

TEST(tax, inclusive_ties_round_the_net_to_even) {
  // At 100% the net is half the gross: 5 / 2 = 2.5 -> 2 (tax 3);
  // 7 / 2 = 3.5 -> 4 (tax 3).
  const auto five = split(5, 1'000'000, tax_mode::inclusive);
  EXPECT_EQ(five.net, money(2, usd));
  EXPECT_EQ(five.tax, money(3, usd));
  const auto seven = split(7, 1'000'000, tax_mode::inclusive);
  EXPECT_EQ(seven.net, money(4, usd));
  EXPECT_EQ(seven.tax, money(3, usd));
}

TEST(tax, credits_split_symmetrically_with_charges) {
  // -999 @ 8.875%: the mirror of the 999 case.
  const auto ex = split(-999, 88'750, tax_mode::exclusive);
  EXPECT_EQ(ex.tax, money(-89, usd));
  EXPECT_EQ(ex.gross, money(-1088, usd));
  const auto in = split(-999, 88'750, tax_mode::inclusive);
  EXPECT_EQ(in.net, money(-918, usd));
  EXPECT_EQ(in.tax, money(-81, usd));
}

TEST(tax, a_zero_rate_or_zero_amount_yields_zero_tax) {
  EXPECT_EQ(split(12345, 0, tax_mode::exclusive).tax, money(0, usd));
  EXPECT_EQ(split(12345, 0, tax_mode::inclusive).net, money(12345, usd));
  EXPECT_EQ(split(0, 200'000, tax_mode::inclusive).tax, money(0, usd));
}

TEST(tax, the_split_keeps_the_currency_of_the_amount) {
  // JPY has no minor unit: 1000 yen @ 10% inclusive -> net 909.09.. -> 909.
  const auto s = split(1000, 100'000, tax_mode::inclusive, jpy);
  EXPECT_EQ(s.net, money(909, jpy));
  EXPECT_EQ(s.tax, money(91, jpy));
}

TEST(tax, negative_or_absurd_rates_are_rejected) {
  const money m{1000, usd};
  EXPECT_EQ(apply_tax(m, -1, tax_mode::exclusive).code(), errc::invalid_argument);
  EXPECT_EQ(apply_tax(m, 1'000'001, tax_mode::inclusive).code(),
            errc::invalid_argument);
  EXPECT_TRUE(apply_tax(m, 1'000'000, tax_mode::exclusive).has_value());
}

TEST(tax, exclusive_tax_that_pushes_the_gross_past_int64_is_an_overflow) {
  EXPECT_EQ(apply_tax(money{i64_max, usd}, 1, tax_mode::exclusive).code(),
            errc::amount_overflow);
  // Inclusive never grows the amount, so the same input splits fine.
  const auto s = split(i64_max, 1'000'000, tax_mode::inclusive);
  EXPECT_EQ(*s.net.plus(s.tax), s.gross);
}

// -- tax_table ----------------------------------------------------------------

TEST(tax, an_empty_table_knows_no_region) {
  tax_table table;
  EXPECT_EQ(table.rate_for("DE").code(), errc::not_found);
  EXPECT_EQ(table.size(), 0u);
}

TEST(tax, the_table_returns_the_latest_rate_set_for_a_region) {
  tax_table table;
  ASSERT_TRUE(table.set_rate("DE", 190'000));
  ASSERT_TRUE(table.set_rate("US-NY", 88'750));
  ASSERT_TRUE(table.set_rate("DE", 160'000));
  EXPECT_EQ(*table.rate_for("DE"), 160'000);
  EXPECT_EQ(*table.rate_for("US-NY"), 88'750);
  EXPECT_EQ(table.rate_for("de").code(), errc::not_found);
  EXPECT_EQ(table.size(), 2u);
}

TEST(tax, malformed_region_codes_and_rates_leave_the_table_unchanged) {
  tax_table table;
  EXPECT_EQ(table.set_rate("", 1).code(), errc::invalid_argument);
  EXPECT_EQ(table.set_rate("de", 1).code(), errc::invalid_argument);
  EXPECT_EQ(table.set_rate("US NY", 1).code(), errc::invalid_argument);
  EXPECT_EQ(table.set_rate(std::string(17, 'A'), 1).code(),
            errc::invalid_argument);
  EXPECT_EQ(table.set_rate("FR", -1).code(), errc::invalid_argument);
  EXPECT_EQ(table.set_rate("FR", 1'000'001).code(), errc::invalid_argument);
  EXPECT_EQ(table.size(), 0u);
}

TEST(tax, the_table_refuses_regions_beyond_its_limit) {
  tax_table table;
  for (std::size_t i = 0; i < tax_table::regions_max; ++i)
    ASSERT_TRUE(table.set_rate("R" + std::to_string(i), 1));
  EXPECT_EQ(table.set_rate("ONE-MORE", 1).code(), errc::invalid_argument);
  // Updating an existing region is still allowed when full.
  EXPECT_TRUE(table.set_rate("R0", 2));
  EXPECT_EQ(*table.rate_for("R0"), 2);
}

TEST(tax, an_exempt_customer_pays_no_tax_in_either_mode) {
  tax_table table;
  ASSERT_TRUE(table.set_rate("DE", 190'000));
  const tax_profile exempt{"DE", true};
  EXPECT_EQ(*table.rate_for(exempt), 0);
  const auto ex = table.apply(money{10000, usd}, exempt, tax_mode::exclusive);
  ASSERT_TRUE(ex);
  EXPECT_EQ(ex->tax, money(0, usd));
  EXPECT_EQ(ex->gross, money(10000, usd));
  // Inclusive: the whole gross counts as net.
  const auto in = table.apply(money{11900, usd}, exempt, tax_mode::inclusive);
  ASSERT_TRUE(in);
  EXPECT_EQ(in->net, money(11900, usd));
  EXPECT_EQ(in->tax, money(0, usd));
  // Exempt customers need no configured region.
  EXPECT_EQ(*table.rate_for(tax_profile{"XX", true}), 0);
}

TEST(tax, a_taxable_customer_pays_the_rate_of_their_region) {
  tax_table table;
  ASSERT_TRUE(table.set_rate("DE", 190'000));
  const auto s = table.apply(money{11900, usd}, tax_profile{"DE", false},
                             tax_mode::inclusive);
  ASSERT_TRUE(s);
  // 11900 * 10^6 / 1'190'000 = 10000 exactly.
  EXPECT_EQ(s->net, money(10000, usd));
  EXPECT_EQ(s->tax, money(1900, usd));
  EXPECT_EQ(table.apply(money{1, usd}, tax_profile{"FR", false},
                        tax_mode::exclusive)
              .code(),
            errc::not_found);
}

// -- properties -----------------------------------------------------------------

// Property: both modes round exactly once, to the nearest minor unit, ties to
// even, and the split is exact.
//
// Exclusive: tax is nearest to net*r/10^6, i.e. |tax*10^6 - net*r| <= 10^6/2,
// and a tie (equality) leaves tax even.
//
// Inclusive, with D = 10^6 + r: net = round(G*10^6/D), so
// |net*D - G*10^6| <= D/2 (tie: net even). Since tax = G - net,
//   tax*D - G*r = G*D - net*D - G*r = G*10^6 - net*D,
// hence 2*|tax*D - G*r| <= D: the tax is within half a minor unit of the exact
// G*r/D, which is the best any integer split can do.
TEST(tax, property_splits_are_exact_and_correctly_rounded) {
  const std::uint64_t seed = 0x7a8'0001;
  rng gen{seed};
  const currency currencies[] = {usd, jpy, bhd};
  constexpr std::int64_t amount_max = 1'000'000'000'000;
  for (int i = 0; i < 20'000; ++i) {
    const currency cur = currencies[gen.below(3)];
    const std::int64_t g = gen.below(4) == 0 ? gen.between(-1000, 1000)
                                             : gen.between(-amount_max, amount_max);
    const std::int64_t r = gen.between(0, 300'000);
    SCOPED_TRACE(testing::Message() << "seed=" << seed << " case=" << i
                                    << " amount=" << g << " rate_ppm=" << r
                                    << " currency=" << cur.code());
    const money amount{g, cur};

    auto ex = apply_tax(amount, r, tax_mode::exclusive);
    ASSERT_TRUE(ex);
    ASSERT_EQ(ex->net, amount);
    ASSERT_EQ(ex->tax.currency(), cur);
    ASSERT_EQ(int128{ex->net.amount_minor()} + ex->tax.amount_minor(),
              int128{ex->gross.amount_minor()});
    const int128 ex_err = int128{ex->tax.amount_minor()} * ppm_one - int128{g} * r;
    ASSERT_LE(abs128(ex_err) * 2, int128{ppm_one});
    if (abs128(ex_err) * 2 == ppm_one) {
      ASSERT_EQ(ex->tax.amount_minor() % 2, 0);
    }

    auto in = apply_tax(amount, r, tax_mode::inclusive);
    ASSERT_TRUE(in);
    ASSERT_EQ(in->gross, amount);
    ASSERT_EQ(in->net.currency(), cur);
    ASSERT_EQ(int128{in->net.amount_minor()} + in->tax.amount_minor(), int128{g});
    const int128 d = ppm_one + r;
    const int128 in_err = int128{in->tax.amount_minor()} * d - int128{g} * r;
    ASSERT_LE(abs128(in_err) * 2, d);
    if (abs128(in_err) * 2 == d) {
      ASSERT_EQ(in->net.amount_minor() % 2, 0);
    }

    // Credits mirror charges exactly.
    auto neg = apply_tax(money{-g, cur}, r, tax_mode::inclusive);
    ASSERT_TRUE(neg);
    ASSERT_EQ(neg->tax.amount_minor(), -in->tax.amount_minor());
  }
}
