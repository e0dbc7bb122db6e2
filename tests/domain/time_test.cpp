#include "domain/time.hpp"

#include <gtest/gtest.h>

#include "domain/clock.hpp"

using namespace recur;

TEST(time, the_epoch_and_known_instants_round_trip) {
  EXPECT_EQ(utc(1970, 1, 1).unix_s, 0);
  EXPECT_EQ(utc(2000, 3, 1).unix_s, 951868800);
  EXPECT_EQ(utc(2024, 2, 29, 12).unix_s, 1709208000);
  EXPECT_EQ(format_iso8601(instant{1709208000}), "2024-02-29T12:00:00Z");
  EXPECT_EQ(format_iso8601(instant{-1}), "1969-12-31T23:59:59Z");
}

TEST(time, leap_years_follow_the_gregorian_rules) {
  EXPECT_TRUE(is_leap_year(2024));
  EXPECT_FALSE(is_leap_year(2100));
  EXPECT_TRUE(is_leap_year(2000));
  EXPECT_EQ(days_in_month(2023, 2), 28);
  EXPECT_EQ(days_in_month(2024, 2), 29);
  EXPECT_EQ(days_in_month(2024, 4), 30);
}

TEST(time, parsing_accepts_only_strict_utc_timestamps) {
  EXPECT_EQ(*parse_iso8601("2024-02-29T12:00:00Z"), utc(2024, 2, 29, 12));
  EXPECT_FALSE(parse_iso8601("2023-02-29T12:00:00Z"));
  EXPECT_FALSE(parse_iso8601("2024-02-29T12:00:00+01:00"));
  EXPECT_FALSE(parse_iso8601("2024-02-29 12:00:00Z"));
  EXPECT_FALSE(parse_iso8601("2024-13-01T00:00:00Z"));
  EXPECT_FALSE(parse_iso8601("2024-01-01T24:00:00Z"));
}

TEST(time, property_every_instant_round_trips_through_civil_fields) {
  const std::uint64_t seed = 0x71e;
  rng gen{seed};
  for (int i = 0; i < 10'000; ++i) {
    const instant t{gen.between(utc(1600, 1, 1).unix_s, utc(2400, 12, 31).unix_s)};
    SCOPED_TRACE(testing::Message() << "seed=" << seed << " t=" << t.unix_s);
    ASSERT_EQ(to_instant(to_utc(t)), t);
    ASSERT_EQ(*parse_iso8601(format_iso8601(t)), t);
  }
}

TEST(rng, a_seed_replays_the_same_sequence) {
  rng a{42}, b{42};
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(a.between(-5, 5), b.between(-5, 5));
  rng c{7};
  for (int i = 0; i < 10'000; ++i) {
    auto v = c.between(-3, 3);
    ASSERT_GE(v, -3);
    ASSERT_LE(v, 3);
  }
}
