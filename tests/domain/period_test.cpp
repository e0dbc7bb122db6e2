#include "domain/period.hpp"

#include <algorithm>
#include <cstdint>
#include <ostream>

#include <gtest/gtest.h>

#include "domain/clock.hpp"

namespace recur {
// Readable gtest failures: "2024-02-29T00:00:00Z" instead of raw bytes.
inline void PrintTo(instant t, std::ostream* os) { *os << format_iso8601(t); }
inline void PrintTo(const billing_period& p, std::ostream* os) {
  *os << "[" << format_iso8601(p.start) << ", " << format_iso8601(p.end) << ")";
}
} // namespace recur

using namespace recur;

namespace {

constexpr billing_interval monthly{interval_unit::month, 1};
constexpr billing_interval quarterly{interval_unit::month, 3};
constexpr billing_interval yearly{interval_unit::year, 1};
constexpr billing_interval weekly{interval_unit::week, 1};

billing_anchor schedule(instant anchor, billing_interval interval) {
  auto made = make_billing_anchor(anchor, interval);
  RECUR_ASSERT(made.has_value());
  return *made;
}

std::string iso(instant t) { return format_iso8601(t); }

} // namespace

// -- validation
// ----------------------------------------------------------------

TEST(period, an_interval_count_below_one_is_an_invalid_period) {
  EXPECT_EQ(
      make_billing_anchor(utc(2024, 1, 1), {interval_unit::month, 0}).code(),
      errc::invalid_period);
  EXPECT_EQ(validate({interval_unit::day, -3}).code(), errc::invalid_period);
  EXPECT_TRUE(validate({interval_unit::day, 1}));
}

TEST(period, intervals_longer_than_three_years_are_rejected) {
  EXPECT_TRUE(validate({interval_unit::year, 3}));
  EXPECT_EQ(validate({interval_unit::year, 4}).code(), errc::invalid_period);
  EXPECT_TRUE(validate({interval_unit::month, 36}));
  EXPECT_EQ(validate({interval_unit::month, 37}).code(), errc::invalid_period);
  EXPECT_TRUE(validate({interval_unit::week, 156}));
  EXPECT_EQ(validate({interval_unit::week, 157}).code(), errc::invalid_period);
  EXPECT_TRUE(validate({interval_unit::day, 1095}));
  EXPECT_EQ(validate({interval_unit::day, 1096}).code(), errc::invalid_period);
}

TEST(period, a_billing_period_is_half_open) {
  const billing_period p{utc(2024, 4, 1), utc(2024, 5, 1)};
  EXPECT_EQ(p.length_s(), 30 * 86400);
  EXPECT_TRUE(p.contains(utc(2024, 4, 1)));
  EXPECT_TRUE(p.contains(utc(2024, 4, 30, 23, 59, 59)));
  EXPECT_FALSE(p.contains(utc(2024, 5, 1)));
  EXPECT_FALSE(p.contains(utc(2024, 3, 31, 23, 59, 59)));
  EXPECT_EQ(p, (billing_period{utc(2024, 4, 1), utc(2024, 5, 1)}));
  EXPECT_FALSE(p == (billing_period{utc(2024, 4, 1), utc(2024, 5, 2)}));
}

// -- boundaries
// ------------------------------------------------------------------

TEST(period,
     a_month_end_anchor_clamps_to_short_months_and_returns_to_the_31st) {
  const auto s = schedule(utc(2023, 1, 31), monthly);
  EXPECT_EQ(boundary(s, 0), utc(2023, 1, 31));
  EXPECT_EQ(boundary(s, 1), utc(2023, 2, 28));
  EXPECT_EQ(boundary(s, 2), utc(2023, 3, 31));
  EXPECT_EQ(boundary(s, 3), utc(2023, 4, 30));
  EXPECT_EQ(boundary(s, 4), utc(2023, 5, 31));
  EXPECT_EQ(boundary(s, 13), utc(2024, 2, 29)); // leap year
  EXPECT_EQ(boundary(s, 14), utc(2024, 3, 31));
}

TEST(period,
     a_leap_day_anchor_with_a_yearly_interval_uses_feb_28_in_common_years) {
  const auto s = schedule(utc(2024, 2, 29, 9, 30), yearly);
  EXPECT_EQ(boundary(s, 1), utc(2025, 2, 28, 9, 30));
  EXPECT_EQ(boundary(s, 2), utc(2026, 2, 28, 9, 30));
  EXPECT_EQ(boundary(s, 3), utc(2027, 2, 28, 9, 30));
  EXPECT_EQ(boundary(s, 4), utc(2028, 2, 29, 9, 30));
  EXPECT_EQ(boundary(s, 76), utc(2100, 2, 28, 9, 30)); // 2100 is not leap
  EXPECT_EQ(boundary(s, -4), utc(2020, 2, 29, 9, 30));
  EXPECT_EQ(boundary(s, -1), utc(2023, 2, 28, 9, 30));
}

TEST(period, a_quarterly_interval_steps_three_calendar_months) {
  const auto s = schedule(utc(2023, 11, 30), quarterly);
  EXPECT_EQ(boundary(s, 1), utc(2024, 2, 29));
  EXPECT_EQ(boundary(s, 2), utc(2024, 5, 30));
  EXPECT_EQ(boundary(s, 3), utc(2024, 8, 30));
  EXPECT_EQ(boundary(s, 4), utc(2024, 11, 30));
  EXPECT_EQ(boundary(s, 5), utc(2025, 2, 28));
}

TEST(period, weekly_and_daily_intervals_are_exact_multiples_of_a_day) {
  const auto w = schedule(utc(2023, 12, 28, 15), weekly);
  EXPECT_EQ(boundary(w, 1), utc(2024, 1, 4, 15));
  EXPECT_EQ(boundary(w, 9), utc(2024, 2, 29, 15));
  EXPECT_EQ(boundary(w, -1), utc(2023, 12, 21, 15));
  const auto d = schedule(utc(2024, 2, 25, 6), {interval_unit::day, 10});
  EXPECT_EQ(boundary(d, 1), utc(2024, 3, 6, 6)); // Feb 2024 has 29 days
  EXPECT_EQ(boundary(d, 2), utc(2024, 3, 16, 6));
  EXPECT_EQ(period_at(d, 0).length_s(), 864'000);
}

TEST(period, monthly_boundaries_cross_the_year_end) {
  const auto s = schedule(utc(2023, 11, 15), monthly);
  EXPECT_EQ(boundary(s, 1), utc(2023, 12, 15));
  EXPECT_EQ(boundary(s, 2), utc(2024, 1, 15));
  EXPECT_EQ(boundary(s, -11), utc(2022, 12, 15));
  EXPECT_EQ(boundary(s, -12), utc(2022, 11, 15));
  EXPECT_EQ(period_at(s, 1),
            (billing_period{utc(2023, 12, 15), utc(2024, 1, 15)}));
}

TEST(period, the_time_of_day_of_the_anchor_is_preserved) {
  const auto s = schedule(utc(2023, 1, 31, 23, 59, 59), monthly);
  EXPECT_EQ(iso(boundary(s, 1)), "2023-02-28T23:59:59Z");
  EXPECT_EQ(iso(boundary(s, 2)), "2023-03-31T23:59:59Z");
  const auto y = schedule(utc(2024, 2, 29, 0, 0, 1), {interval_unit::year, 2});
  EXPECT_EQ(iso(boundary(y, 1)), "2026-02-28T00:00:01Z");
  EXPECT_EQ(iso(boundary(y, 2)), "2028-02-29T00:00:01Z");
}

// -- finding the period of an instant
// -------------------------------------------

TEST(period, a_boundary_belongs_to_the_period_it_starts) {
  const auto s = schedule(utc(2023, 1, 31, 12), monthly);
  EXPECT_EQ(period_containing(s, utc(2023, 2, 28, 12)),
            (billing_period{utc(2023, 2, 28, 12), utc(2023, 3, 31, 12)}));
  EXPECT_EQ(period_containing(s, utc(2023, 2, 28, 11, 59, 59)),
            (billing_period{utc(2023, 1, 31, 12), utc(2023, 2, 28, 12)}));
  EXPECT_EQ(period_index(s, utc(2023, 1, 31, 12)), 0);
  EXPECT_EQ(period_index(s, utc(2023, 3, 31, 11, 59, 59)), 1);
  EXPECT_EQ(period_index(s, utc(2023, 3, 31, 12)), 2);
  // Same month as boundary 2 but before it: still period 1.
  EXPECT_EQ(period_index(s, utc(2023, 3, 1)), 1);
}

TEST(period, an_instant_before_the_anchor_falls_in_a_negative_period) {
  const auto s = schedule(utc(2024, 3, 31), monthly);
  EXPECT_EQ(period_index(s, utc(2024, 3, 30, 23, 59, 59)), -1);
  EXPECT_EQ(period_containing(s, utc(2024, 3, 1)),
            (billing_period{utc(2024, 2, 29), utc(2024, 3, 31)}));
  EXPECT_EQ(period_index(s, utc(2024, 2, 28)), -2);
  const auto d = schedule(utc(2024, 1, 10), {interval_unit::day, 3});
  EXPECT_EQ(period_index(d, utc(2024, 1, 9, 23)), -1);
  EXPECT_EQ(period_index(d, utc(2024, 1, 4)), -2);
  EXPECT_EQ(period_index(d, utc(2024, 1, 3, 23, 59, 59)), -3);
}

TEST(period, a_far_instant_is_found_directly) {
  const auto s = schedule(utc(1970, 1, 31), monthly);
  // 2999-12 is (2999 - 1970) * 12 + 11 = 12359 months after 1970-01.
  EXPECT_EQ(period_index(s, utc(2999, 12, 31)), 12359);
  EXPECT_EQ(period_index(s, utc(2999, 12, 30)), 12358);
  const auto d = schedule(utc(1970, 1, 1), {interval_unit::day, 1});
  EXPECT_EQ(period_index(d, utc(2000, 1, 1, 1)), 10957);
}

// -- billing cycle day
// -------------------------------------------------------------

TEST(period, the_billing_day_is_the_first_matching_day_at_or_after_the_start) {
  EXPECT_EQ(*anchor_on_billing_day(utc(2024, 1, 10, 8), 15),
            utc(2024, 1, 15, 8));
  EXPECT_EQ(*anchor_on_billing_day(utc(2024, 1, 20, 8), 15),
            utc(2024, 2, 15, 8));
  EXPECT_EQ(*anchor_on_billing_day(utc(2024, 1, 15, 8), 15),
            utc(2024, 1, 15, 8));
  EXPECT_EQ(*anchor_on_billing_day(utc(2024, 12, 20), 1), utc(2025, 1, 1));
}

TEST(period, a_billing_day_past_the_month_end_clamps_to_the_last_day) {
  EXPECT_EQ(*anchor_on_billing_day(utc(2023, 2, 10, 7), 31),
            utc(2023, 2, 28, 7));
  EXPECT_EQ(*anchor_on_billing_day(utc(2024, 2, 10, 7), 31),
            utc(2024, 2, 29, 7));
  EXPECT_EQ(*anchor_on_billing_day(utc(2024, 4, 30, 7), 31),
            utc(2024, 4, 30, 7));
  EXPECT_EQ(*anchor_on_billing_day(utc(2024, 5, 1, 7), 31),
            utc(2024, 5, 31, 7));
}

TEST(period, a_billing_day_outside_1_to_31_is_an_invalid_argument) {
  EXPECT_EQ(anchor_on_billing_day(utc(2024, 1, 1), 0).code(),
            errc::invalid_argument);
  EXPECT_EQ(anchor_on_billing_day(utc(2024, 1, 1), 32).code(),
            errc::invalid_argument);
  EXPECT_EQ(schedule_on_billing_day(utc(2024, 1, 1), -1, monthly).code(),
            errc::invalid_argument);
  EXPECT_EQ(
      schedule_on_billing_day(utc(2024, 1, 1), 5, {interval_unit::week, 0})
          .code(),
      errc::invalid_period);
}

TEST(period, a_billing_day_schedule_returns_to_the_31st_after_february) {
  const auto s = *schedule_on_billing_day(utc(2023, 2, 10, 7), 31, monthly);
  const std::int64_t n = period_index(s, utc(2023, 2, 28, 7));
  EXPECT_EQ(boundary(s, n), utc(2023, 2, 28, 7));
  EXPECT_EQ(boundary(s, n + 1), utc(2023, 3, 31, 7));
  EXPECT_EQ(boundary(s, n + 2), utc(2023, 4, 30, 7));
  EXPECT_EQ(boundary(s, n + 3), utc(2023, 5, 31, 7));
}

TEST(period, a_yearly_billing_day_29_in_february_returns_to_the_leap_day) {
  // Billing day 29 from 2023-02-05: the first boundary is clamped to Feb 28.
  const auto s = *schedule_on_billing_day(utc(2023, 2, 5), 29,
                                          {interval_unit::month, 12});
  const std::int64_t n = period_index(s, utc(2023, 2, 28));
  EXPECT_EQ(boundary(s, n), utc(2023, 2, 28));
  EXPECT_EQ(boundary(s, n + 1), utc(2024, 2, 29));
  // Every-two-years from 2023 never meets a leap year: Feb 28 throughout.
  const auto odd
      = *schedule_on_billing_day(utc(2023, 2, 5), 29, {interval_unit::year, 2});
  EXPECT_EQ(odd.anchor, utc(2023, 2, 28));
  EXPECT_EQ(boundary(odd, 1), utc(2025, 2, 28));
}

TEST(period, a_daily_billing_day_schedule_anchors_at_the_first_boundary) {
  const auto s = *schedule_on_billing_day(utc(2024, 3, 2, 4), 5,
                                          {interval_unit::day, 7});
  EXPECT_EQ(s.anchor, utc(2024, 3, 5, 4));
  EXPECT_EQ(boundary(s, 1), utc(2024, 3, 12, 4));
}

// -- properties
// ---------------------------------------------------------------------

namespace {

// Anchors biased towards month ends and leap days, 1900..2199 (which crosses
// the non-leap century years 1900 and 2100).
instant random_anchor(rng& gen) {
  auto year = static_cast<std::int32_t>(gen.between(1900, 2199));
  if (gen.below(4) == 0) {
    while (!is_leap_year(year))
      --year;
    return utc(year, 2, 29, static_cast<std::int32_t>(gen.between(0, 23)));
  }
  const auto month = static_cast<std::int32_t>(gen.between(1, 12));
  const std::int32_t dim = days_in_month(year, month);
  const std::int64_t first_day = gen.below(3) == 0 ? 1 : 28;
  return utc(year, month,
             static_cast<std::int32_t>(gen.between(first_day, dim)),
             static_cast<std::int32_t>(gen.between(0, 23)),
             static_cast<std::int32_t>(gen.between(0, 59)),
             static_cast<std::int32_t>(gen.between(0, 59)));
}

billing_interval random_interval(rng& gen) {
  const auto unit = static_cast<interval_unit>(gen.below(4));
  const auto count = static_cast<std::int32_t>(
      unit == interval_unit::year ? gen.between(1, 3) : gen.between(1, 12));
  return {unit, count};
}

} // namespace

// Property: calendar boundaries keep the anchor's day (clamped) and time of day
// and land exactly n * step months away.
TEST(period,
     property_calendar_boundaries_clamp_the_anchor_day_and_keep_its_time) {
  const std::uint64_t seed = 0x5eed'0101;
  rng gen{seed};
  for (int i = 0; i < 20'000; ++i) {
    const instant anchor = random_anchor(gen);
    const billing_interval iv{gen.below(2) ? interval_unit::month
                                           : interval_unit::year,
                              static_cast<std::int32_t>(gen.between(1, 3))};
    const std::int64_t n = gen.between(-60, 60);
    SCOPED_TRACE(testing::Message() << "seed=" << seed << " case=" << i
                                    << " anchor=" << iso(anchor) << " n=" << n);
    const utc_date_time a = to_utc(anchor);
    const utc_date_time b = to_utc(boundary(schedule(anchor, iv), n));
    const std::int64_t step
        = (iv.unit == interval_unit::year ? 12 : 1) * iv.count;
    ASSERT_EQ(std::int64_t{b.year} * 12 + b.month
                  - (std::int64_t{a.year} * 12 + a.month),
              n * step);
    ASSERT_EQ(b.day, std::min(a.day, days_in_month(b.year, b.month)));
    ASSERT_EQ(b.hour, a.hour);
    ASSERT_EQ(b.minute, a.minute);
    ASSERT_EQ(b.second, a.second);
  }
}

// Property: the period found for t contains t, and consecutive periods tile
// the timeline (end of n == start of n + 1, each non-empty).
TEST(period, property_periods_contain_their_instant_and_tile_the_timeline) {
  const std::uint64_t seed = 0x5eed'0102;
  rng gen{seed};
  for (int i = 0; i < 20'000; ++i) {
    const auto s = schedule(random_anchor(gen), random_interval(gen));
    // Within about 40 years either side of the anchor.
    const instant t
        = s.anchor.plus_seconds(gen.between(-1'262'304'000, 1'262'304'000));
    SCOPED_TRACE(testing::Message()
                 << "seed=" << seed << " case=" << i << " anchor="
                 << iso(s.anchor) << " unit=" << to_string(s.interval.unit)
                 << " count=" << s.interval.count << " t=" << iso(t));
    const std::int64_t n = period_index(s, t);
    const billing_period p = period_containing(s, t);
    ASSERT_TRUE(p.contains(t));
    ASSERT_EQ(p, period_at(s, n));
    ASSERT_EQ(period_at(s, n - 1).end, p.start);
    ASSERT_EQ(period_at(s, n + 1).start, p.end);
    ASSERT_GT(p.length_s(), 0);
    ASSERT_EQ(period_index(s, p.start), n);
    ASSERT_EQ(period_index(s, p.end.plus_seconds(-1)), n);
    ASSERT_EQ(period_index(s, p.end), n + 1);
  }
}

// Property: a billing-day schedule has a boundary at anchor_on_billing_day and
// every boundary after it lands on the billing day, clamped.
TEST(period, property_billing_day_schedules_land_on_the_billing_day) {
  const std::uint64_t seed = 0x5eed'0103;
  rng gen{seed};
  for (int i = 0; i < 10'000; ++i) {
    const instant start = random_anchor(gen);
    const auto day = static_cast<std::int32_t>(gen.between(1, 31));
    const billing_interval iv
        = gen.below(2)
              ? billing_interval{interval_unit::month,
                                 static_cast<std::int32_t>(gen.between(1, 12))}
              : billing_interval{interval_unit::year,
                                 static_cast<std::int32_t>(gen.between(1, 3))};
    SCOPED_TRACE(testing::Message()
                 << "seed=" << seed << " case=" << i << " start=" << iso(start)
                 << " day=" << day << " unit=" << to_string(iv.unit)
                 << " count=" << iv.count);
    const instant first = *anchor_on_billing_day(start, day);
    ASSERT_GE(first, start);
    ASSERT_LT(seconds_between(start, first), 31 * seconds_per_day);
    const auto s = *schedule_on_billing_day(start, day, iv);
    const std::int64_t n = period_index(s, first);
    ASSERT_EQ(boundary(s, n), first);
    for (std::int64_t k = 1; k <= 24; ++k) {
      // Every other year from an odd year never meets a leap year, so
      // Feb 28 is then right for days 29..31 too.
      const utc_date_time b = to_utc(boundary(s, n + k));
      ASSERT_EQ(b.day, std::min(day, days_in_month(b.year, b.month)));
    }
  }
}

TEST(interval_unit, spellings_read_back_and_nothing_else_does) {
  for (recur::interval_unit u : recur::all_interval_units)
    EXPECT_EQ(recur::interval_unit_from(recur::to_string(u)), u);
  EXPECT_FALSE(recur::interval_unit_from("Month"));
  EXPECT_FALSE(recur::interval_unit_from("months"));
  EXPECT_FALSE(recur::interval_unit_from(""));
  EXPECT_FALSE(recur::interval_unit_from("unknown"));
}
