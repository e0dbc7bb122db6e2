#include "domain/money.hpp"

#include <cinttypes>
#include <limits>
#include <string_view>
#include <utility>

#include <gtest/gtest.h>

#include "domain/arith.hpp"
#include "domain/clock.hpp"

using namespace recur;

namespace {

const currency usd = currency::of("USD");
const currency jpy = currency::of("JPY");
const currency bhd = currency::of("BHD");

constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t i64_min = std::numeric_limits<std::int64_t>::min();

} // namespace

TEST(money, currencies_carry_their_iso_4217_exponent) {
  EXPECT_EQ(jpy.exponent(), 0);
  EXPECT_EQ(usd.exponent(), 2);
  EXPECT_EQ(bhd.exponent(), 3);
  EXPECT_EQ(bhd.minor_per_major(), 1000);
}

TEST(money, an_unknown_or_lower_case_code_is_a_typed_error) {
  EXPECT_EQ(currency::from_code("XYZ").code(), errc::unknown_currency);
  EXPECT_EQ(currency::from_code("usd").code(), errc::unknown_currency);
  EXPECT_EQ(currency::from_code("").code(), errc::unknown_currency);
  EXPECT_EQ(currency::from_code("USDX").code(), errc::unknown_currency);
}

TEST(money, every_accepted_code_reads_back_with_its_exponent) {
  // The ends of the table, its middle and neighbours of each other: the
  // look-up is a binary search, so an entry out of order would vanish.
  const std::pair<const char*, std::int32_t> known[] = {
    {"AED", 2}, {"ARS", 2}, {"AUD", 2}, {"BHD", 3}, {"CLP", 0}, {"EUR", 2},
    {"GBP", 2}, {"ISK", 0}, {"JOD", 3}, {"JPY", 0}, {"KRW", 0}, {"KWD", 3},
    {"OMR", 3}, {"TND", 3}, {"USD", 2}, {"VND", 0}, {"XAF", 0}, {"XOF", 0},
    {"ZAR", 2}};
  for (const auto& [code, exponent] : known) {
    auto c = currency::from_code(code);
    ASSERT_TRUE(c) << code;
    EXPECT_EQ(c->code(), code);
    EXPECT_EQ(c->exponent(), exponent) << code;
  }
  // Before the first, after the last, between two, and a prefix of one.
  for (const char* code : {"AAA", "ZZZ", "USC", "US", "U", "AE"})
    EXPECT_EQ(currency::from_code(code).code(), errc::unknown_currency) << code;
  EXPECT_EQ(currency::from_code(std::string_view{"USD\0", 4}).code(),
            errc::unknown_currency);
}

TEST(money, adding_different_currencies_is_a_currency_mismatch) {
  auto r = money{100, usd}.plus(money{100, jpy});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::currency_mismatch);
  EXPECT_EQ(money(1, usd).minus(money(1, bhd)).code(), errc::currency_mismatch);
}

TEST(money, arithmetic_at_the_int64_edges_reports_overflow) {
  EXPECT_EQ(money(i64_max, usd).plus(money{1, usd}).code(), errc::amount_overflow);
  EXPECT_EQ(money(i64_min, usd).minus(money{1, usd}).code(),
            errc::amount_overflow);
  EXPECT_EQ(money(i64_max / 2 + 1, usd).times(2).code(), errc::amount_overflow);
  EXPECT_EQ(money(i64_min, usd).negated().code(), errc::amount_overflow);
  EXPECT_EQ(money(i64_min, usd).times(-1).code(), errc::amount_overflow);
  EXPECT_EQ(*money(i64_max, usd).minus(money{i64_max, usd}), money::zero(usd));
}

TEST(money, display_uses_the_currency_exponent) {
  EXPECT_EQ(money(1234, usd).to_display(), "12.34 USD");
  EXPECT_EQ(money(-5, usd).to_display(), "-0.05 USD");
  EXPECT_EQ(money(1234, jpy).to_display(), "1234 JPY");
  EXPECT_EQ(money(-5, bhd).to_display(), "-0.005 BHD");
  EXPECT_EQ(money(i64_min, usd).to_display(), "-92233720368547758.08 USD");
}

TEST(money, sum_of_a_list_checks_every_step) {
  std::vector<money> ok{money{1, usd}, money{2, usd}, money{3, usd}};
  EXPECT_EQ(*sum(ok, usd), money(6, usd));
  std::vector<money> mixed{money{1, usd}, money{2, jpy}};
  EXPECT_EQ(sum(mixed, usd).code(), errc::currency_mismatch);
  std::vector<money> big{money{i64_max, usd}, money{1, usd}};
  EXPECT_EQ(sum(big, usd).code(), errc::amount_overflow);
}

TEST(money, half_even_division_rounds_ties_to_even) {
  EXPECT_EQ(div_round_half_even(5, 2), 2);
  EXPECT_EQ(div_round_half_even(7, 2), 4);
  EXPECT_EQ(div_round_half_even(-5, 2), -2);
  EXPECT_EQ(div_round_half_even(-7, 2), -4);
  EXPECT_EQ(div_round_half_even(10, 3), 3);
  EXPECT_EQ(div_round_half_even(11, 3), 4);
  EXPECT_EQ(div_round_half_even(-11, 3), -4);
  EXPECT_EQ(div_round_half_even(5, -2), -2);
}

// Property: checked arithmetic agrees with exact 128-bit arithmetic: it
// returns the exact value when it fits and amount_overflow when it does not.
TEST(money, property_checked_arithmetic_never_silently_overflows) {
  const std::uint64_t seed = 0x5eed'0001;
  rng gen{seed};
  auto pick = [&]() -> std::int64_t {
    switch (gen.below(4)) {
      case 0: return gen.between(-1000, 1000);
      case 1: return gen.between(i64_min, i64_max);
      case 2: return i64_max - gen.between(0, 1000);
      default: return i64_min + gen.between(0, 1000);
    }
  };
  for (int i = 0; i < 20'000; ++i) {
    const std::int64_t a = pick();
    const std::int64_t b = pick();
    const std::int64_t f = gen.below(2) ? gen.between(-3, 3) : pick();
    SCOPED_TRACE(testing::Message() << "seed=" << seed << " case=" << i
                                    << " a=" << a << " b=" << b << " f=" << f);
    auto check = [&](const result<money>& got, int128 exact) {
      const bool fits = exact >= i64_min && exact <= i64_max;
      ASSERT_EQ(got.has_value(), fits);
      if (fits)
        ASSERT_EQ(got->amount_minor(), static_cast<std::int64_t>(exact));
      else
        ASSERT_EQ(got.code(), errc::amount_overflow);
    };
    check(money(a, usd).plus(money(b, usd)), int128{a} + b);
    check(money(a, usd).minus(money(b, usd)), int128{a} - b);
    check(money(a, usd).times(f), int128{a} * f);
    check(money(a, usd).negated(), -int128{a});
  }
}
