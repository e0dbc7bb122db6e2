#include "domain/proration.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <ostream>
#include <vector>

#include <gtest/gtest.h>

#include "domain/arith.hpp"
#include "domain/clock.hpp"

namespace recur {
// Readable gtest failures: "2024-02-29T00:00:00Z" instead of raw bytes.
inline void PrintTo(instant t, std::ostream* os) { *os << format_iso8601(t); }
inline void PrintTo(const money& m, std::ostream* os) { *os << m.to_display(); }
} // namespace recur

using namespace recur;

namespace {

const currency usd = currency::of("USD");
const currency jpy = currency::of("JPY");
const currency bhd = currency::of("BHD");

constexpr std::int64_t day_s = 86400;

money usd_minor(std::int64_t minor) { return money{minor, usd}; }

billing_period days_from(instant start, std::int64_t days) {
  return {start, start.plus_seconds(days * day_s)};
}

} // namespace

// -- hand-computed shares
// ------------------------------------------------------

TEST(proration, ten_days_of_a_thirty_day_period_is_a_third) {
  // 3000 * 10 / 30 = 1000 exactly.
  const billing_period april{utc(2024, 4, 1), utc(2024, 5, 1)};
  EXPECT_EQ(*prorate(usd_minor(3000), april, utc(2024, 4, 1), utc(2024, 4, 11)),
            usd_minor(1000));
  EXPECT_EQ(*prorate(usd_minor(3000), april, utc(2024, 4, 11), utc(2024, 5, 1)),
            usd_minor(2000));
}

TEST(proration, an_exact_half_rounds_to_the_even_neighbour) {
  // 5 JPY over 30 days, first 15 days: R(5 * 15 / 30) = R(2.5) = 2 (even),
  // so the second half carries the remainder: 5 - 2 = 3.
  const billing_period p = days_from(utc(2024, 6, 1), 30);
  const money five{5, jpy};
  EXPECT_EQ(*prorate(five, p, p.start, utc(2024, 6, 16)), money(2, jpy));
  EXPECT_EQ(*prorate(five, p, utc(2024, 6, 16), p.end), money(3, jpy));
  // 7 JPY: R(3.5) = 4 (even), then 7 - 4 = 3.
  EXPECT_EQ(*prorate(money{7, jpy}, p, p.start, utc(2024, 6, 16)),
            money(4, jpy));
  // 3 JPY: R(1.5) = 2 (even), then 3 - 2 = 1.
  EXPECT_EQ(*prorate(money{3, jpy}, p, p.start, utc(2024, 6, 16)),
            money(2, jpy));
  // Credits mirror charges: R(-2.5) = -2.
  EXPECT_EQ(*prorate(money{-5, jpy}, p, p.start, utc(2024, 6, 16)),
            money(-2, jpy));
  EXPECT_EQ(*prorate(money{-5, jpy}, p, utc(2024, 6, 16), p.end),
            money(-3, jpy));
}

TEST(proration, a_split_into_thirds_carries_the_rounding_remainder) {
  // 100 over three equal days: running totals R(33.33) = 33, R(66.67) = 67,
  // 100, so the pieces are 33, 34, 33 (rounding each piece alone gives 99).
  const billing_period p = days_from(utc(2024, 1, 1), 3);
  const std::vector<instant> cuts{utc(2024, 1, 2), utc(2024, 1, 3)};
  const auto pieces = split(usd_minor(100), p, cuts);
  ASSERT_TRUE(pieces);
  EXPECT_EQ(*pieces,
            (std::vector<money>{usd_minor(33), usd_minor(34), usd_minor(33)}));
}

TEST(proration, proration_is_exact_to_the_second) {
  // 86400 minor units over one day: each second is worth exactly 1.
  const billing_period p = days_from(utc(2024, 1, 1), 1);
  EXPECT_EQ(*prorate(money{86400, bhd}, p, utc(2024, 1, 1, 12),
                     utc(2024, 1, 1, 12, 0, 1)),
            money(1, bhd));
  // 1 unit over a day, from 11:59:59 to 12:00:00: running totals R(0.49999) = 0
  // and R(0.5) = 0 (even), so that second is worth 0; the next one gets it.
  EXPECT_EQ(*prorate(money{1, bhd}, p, utc(2024, 1, 1, 11, 59, 59),
                     utc(2024, 1, 1, 12)),
            money(0, bhd));
  EXPECT_EQ(*prorate(money{1, bhd}, p, utc(2024, 1, 1, 12),
                     utc(2024, 1, 1, 12, 0, 1)),
            money(1, bhd));
}

TEST(proration, a_plan_change_in_a_31_day_month_credits_and_charges_the_rest) {
  // January 2024 has 31 days; the change is after 20 of them.
  // Used share of 1000: R(1000 * 20 / 31) = R(645.16) = 645, rest 355.
  // New price 2000: used R(1290.32) = 1290, rest 710.
  const billing_period jan{utc(2024, 1, 1), utc(2024, 2, 1)};
  const instant at = utc(2024, 1, 21);
  EXPECT_EQ(*unused_credit(usd_minor(1000), jan, at), usd_minor(-355));
  EXPECT_EQ(*remaining_charge(usd_minor(2000), jan, at), usd_minor(710));
  EXPECT_EQ(*prorate(usd_minor(1000), jan, jan.start, at), usd_minor(645));
}

TEST(proration, a_change_at_the_period_edges_credits_all_or_nothing) {
  const billing_period jan{utc(2024, 1, 1), utc(2024, 2, 1)};
  EXPECT_EQ(*unused_credit(usd_minor(1000), jan, jan.start), usd_minor(-1000));
  EXPECT_EQ(*unused_credit(usd_minor(1000), jan, jan.end), usd_minor(0));
  EXPECT_EQ(*remaining_charge(usd_minor(1000), jan, jan.start),
            usd_minor(1000));
  EXPECT_EQ(*remaining_charge(usd_minor(1000), jan, jan.end), usd_minor(0));
}

TEST(proration, the_currency_of_the_amount_is_kept) {
  const billing_period p = days_from(utc(2024, 1, 1), 2);
  EXPECT_EQ(prorate(money{1000, bhd}, p, p.start, utc(2024, 1, 2))->currency(),
            bhd);
}

TEST(proration, the_extreme_int64_amounts_prorate_without_overflow) {
  constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t min = std::numeric_limits<std::int64_t>::min();
  const billing_period p = days_from(utc(2024, 1, 1), 2);
  // max is odd: max / 2 = 4611686018427387903.5, a tie, to the even ...904.
  EXPECT_EQ(*prorate(usd_minor(max), p, p.start, utc(2024, 1, 2)),
            usd_minor(4611686018427387904));
  EXPECT_EQ(*prorate(usd_minor(min), p, p.start, p.end), usd_minor(min));
  // Negating the full credit of min does not fit int64.
  EXPECT_EQ(unused_credit(usd_minor(min), p, p.start).code(),
            errc::amount_overflow);
}

// -- rejected inputs
// -------------------------------------------------------------

TEST(proration, a_span_outside_the_period_or_reversed_is_an_invalid_period) {
  const billing_period p = days_from(utc(2024, 1, 1), 10);
  const money m = usd_minor(1000);
  EXPECT_EQ(prorate(m, p, utc(2023, 12, 31), utc(2024, 1, 5)).code(),
            errc::invalid_period);
  EXPECT_EQ(prorate(m, p, utc(2024, 1, 5), utc(2024, 1, 11, 0, 0, 1)).code(),
            errc::invalid_period);
  EXPECT_EQ(prorate(m, p, utc(2024, 1, 6), utc(2024, 1, 5)).code(),
            errc::invalid_period);
  EXPECT_EQ(prorate(m, {p.start, p.start}, p.start, p.start).code(),
            errc::invalid_period);
  EXPECT_EQ(prorate(m, {p.end, p.start}, p.start, p.start).code(),
            errc::invalid_period);
  EXPECT_EQ(unused_credit(m, p, p.end.plus_seconds(1)).code(),
            errc::invalid_period);
  EXPECT_EQ(remaining_charge(m, p, p.start.plus_seconds(-1)).code(),
            errc::invalid_period);
  EXPECT_EQ(*prorate(m, p, utc(2024, 1, 5), utc(2024, 1, 5)), usd_minor(0));
}

TEST(proration, cuts_must_increase_strictly_inside_the_period) {
  const billing_period p = days_from(utc(2024, 1, 1), 10);
  const money m = usd_minor(1000);
  const auto bad
      = [&](std::vector<instant> cuts) { return split(m, p, cuts).code(); };
  EXPECT_EQ(bad({p.start}), errc::invalid_period);
  EXPECT_EQ(bad({p.end}), errc::invalid_period);
  EXPECT_EQ(bad({utc(2024, 1, 3), utc(2024, 1, 3)}), errc::invalid_period);
  EXPECT_EQ(bad({utc(2024, 1, 4), utc(2024, 1, 3)}), errc::invalid_period);
  EXPECT_EQ(bad({utc(2024, 1, 12)}), errc::invalid_period);
  EXPECT_EQ(*split(m, p, {}), std::vector<money>{m});
}

// -- properties
// ----------------------------------------------------------------------

namespace {

struct split_case {
  money amount;
  billing_period period;
  std::vector<instant> cuts;
};

std::int64_t random_amount(rng& gen) {
  switch (gen.below(3)) {
    case 0: return gen.between(-1000, 1000);
    case 1: return gen.between(-1'000'000, 1'000'000);
    default: return gen.between(-1'000'000'000'000'000, 1'000'000'000'000'000);
  }
}

currency random_currency(rng& gen) {
  const currency all[] = {jpy, usd, bhd};
  return all[gen.below(3)];
}

// Periods from real schedules: anchors on the 28th..31st or Feb 29, every
// interval unit, counts 1..12 (1..3 years).
billing_period random_period(rng& gen) {
  auto year = static_cast<std::int32_t>(gen.between(1999, 2101));
  instant anchor;
  if (gen.below(4) == 0) {
    while (!is_leap_year(year))
      --year;
    anchor = utc(year, 2, 29, static_cast<std::int32_t>(gen.between(0, 23)));
  } else {
    const auto month = static_cast<std::int32_t>(gen.between(1, 12));
    const auto day = static_cast<std::int32_t>(
        gen.between(28, days_in_month(year, month)));
    anchor
        = utc(year, month, day, static_cast<std::int32_t>(gen.between(0, 23)),
              static_cast<std::int32_t>(gen.between(0, 59)));
  }
  const auto unit = static_cast<interval_unit>(gen.below(4));
  const auto count = static_cast<std::int32_t>(
      unit == interval_unit::year ? gen.between(1, 3) : gen.between(1, 12));
  return period_at(billing_anchor{anchor, {unit, count}}, gen.between(-3, 3));
}

// Up to 12 distinct cuts strictly inside the period, sorted; clustered near
// the start half the time so that one-second pieces occur.
std::vector<instant> random_cuts(rng& gen, const billing_period& p) {
  const std::int64_t wanted = gen.between(0, 12);
  const std::int64_t span_s
      = gen.below(2) ? p.length_s() - 1
                     : std::min<std::int64_t>(p.length_s() - 1, 30);
  std::vector<instant> cuts;
  for (std::int64_t i = 0; i < wanted; ++i)
    cuts.push_back(p.start.plus_seconds(gen.between(1, span_s)));
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  return cuts;
}

split_case random_split(rng& gen) {
  const money amount{random_amount(gen), random_currency(gen)};
  const billing_period period = random_period(gen);
  return {amount, period, random_cuts(gen, period)};
}

testing::Message describe(std::uint64_t seed, int i, const split_case& c) {
  testing::Message m;
  m << "seed=" << seed << " case=" << i << " amount=" << c.amount.to_display()
    << " period=" << format_iso8601(c.period.start) << ".."
    << format_iso8601(c.period.end) << " cuts=" << c.cuts.size();
  return m;
}

} // namespace

// Property: the pieces of any split sum exactly to the whole, keep its
// currency, and number cuts + 1.
TEST(proration, property_split_pieces_sum_exactly_to_the_whole) {
  const std::uint64_t seed = 0x5eed'0201;
  rng gen{seed};
  for (int i = 0; i < 20'000; ++i) {
    const split_case c = random_split(gen);
    SCOPED_TRACE(describe(seed, i, c));
    const auto pieces = split(c.amount, c.period, c.cuts);
    ASSERT_TRUE(pieces);
    ASSERT_EQ(pieces->size(), c.cuts.size() + 1);
    int128 total = 0;
    for (const money& piece : *pieces) {
      ASSERT_EQ(piece.currency(), c.amount.currency());
      total += piece.amount_minor();
    }
    ASSERT_EQ(total, int128{c.amount.amount_minor()});
  }
}

// Property: each piece is within one minor unit of its exact rational share
// amount * len / T, i.e. |piece * T - amount * len| <= T; and a credit is the
// mirror image of the charge.
TEST(proration, property_each_piece_is_within_one_unit_of_its_exact_share) {
  const std::uint64_t seed = 0x5eed'0202;
  rng gen{seed};
  for (int i = 0; i < 20'000; ++i) {
    const split_case c = random_split(gen);
    SCOPED_TRACE(describe(seed, i, c));
    const auto pieces = split(c.amount, c.period, c.cuts);
    const auto mirrored = split(*c.amount.negated(), c.period, c.cuts);
    ASSERT_TRUE(pieces && mirrored);
    const int128 t_s = c.period.length_s();
    instant from = c.period.start;
    for (std::size_t k = 0; k < pieces->size(); ++k) {
      const instant to = k < c.cuts.size() ? c.cuts[k] : c.period.end;
      const int128 exact
          = int128{c.amount.amount_minor()} * seconds_between(from, to);
      const int128 error = int128{(*pieces)[k].amount_minor()} * t_s - exact;
      ASSERT_LE(error < 0 ? -error : error, t_s) << "piece " << k;
      ASSERT_EQ((*mirrored)[k].amount_minor(), -(*pieces)[k].amount_minor());
      from = to;
    }
  }
}

// Property: prorating the whole period gives the amount back, and a credit at
// `at` plus the used share [start, at) nets out exactly.
TEST(proration, property_the_whole_period_prorates_to_the_amount) {
  const std::uint64_t seed = 0x5eed'0203;
  rng gen{seed};
  for (int i = 0; i < 20'000; ++i) {
    const money amount{random_amount(gen), random_currency(gen)};
    const billing_period p = random_period(gen);
    const instant at = p.start.plus_seconds(gen.between(0, p.length_s()));
    SCOPED_TRACE(testing::Message()
                 << "seed=" << seed << " case=" << i
                 << " amount=" << amount.to_display()
                 << " period=" << format_iso8601(p.start) << ".."
                 << format_iso8601(p.end) << " at=" << format_iso8601(at));
    ASSERT_EQ(*prorate(amount, p, p.start, p.end), amount);
    const money used = *prorate(amount, p, p.start, at);
    ASSERT_EQ(*amount.plus(*unused_credit(amount, p, at)), used);
    ASSERT_EQ(*used.plus(*remaining_charge(amount, p, at)), amount);
  }
}
