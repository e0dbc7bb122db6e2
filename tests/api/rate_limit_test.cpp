#include "api/rate_limit.hpp"

#include <gtest/gtest.h>

using namespace recur::api;

namespace {

struct fake_time {
  std::int64_t ms = 1'000'000;
  millis_clock clock() {
    return [this] { return ms; };
  }
};

} // namespace

TEST(rate_limiter, a_full_bucket_allows_the_burst_then_refuses) {
  fake_time t;
  rate_limiter limiter{{2, 3, 100}, t.clock()};
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(limiter.take("ten_a").allowed) << i;
  const auto refused = limiter.take("ten_a");
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_s, 1); // 2 tokens/s: one more in 500 ms
}

TEST(rate_limiter, tokens_come_back_at_the_configured_rate) {
  fake_time t;
  rate_limiter limiter{{2, 1, 100}, t.clock()};
  EXPECT_TRUE(limiter.take("k").allowed);
  EXPECT_FALSE(limiter.take("k").allowed);
  t.ms += 499;
  EXPECT_FALSE(limiter.take("k").allowed);
  t.ms += 1;
  EXPECT_TRUE(limiter.take("k").allowed);
  EXPECT_FALSE(limiter.take("k").allowed);
}

TEST(rate_limiter, a_slow_rate_asks_for_a_longer_wait) {
  fake_time t;
  rate_limiter limiter{{1, 1, 100}, t.clock()};
  EXPECT_TRUE(limiter.take("k").allowed);
  t.ms += 200;
  const auto refused = limiter.take("k");
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_s, 1); // 800 ms, rounded up
}

TEST(rate_limiter, tenants_have_separate_buckets) {
  fake_time t;
  rate_limiter limiter{{1, 1, 100}, t.clock()};
  EXPECT_TRUE(limiter.take("a").allowed);
  EXPECT_FALSE(limiter.take("a").allowed);
  EXPECT_TRUE(limiter.take("b").allowed);
}

TEST(rate_limiter, a_bucket_never_holds_more_than_the_burst) {
  fake_time t;
  rate_limiter limiter{{10, 2, 100}, t.clock()};
  t.ms += 3'600'000; // an hour idle
  EXPECT_TRUE(limiter.take("k").allowed);
  EXPECT_TRUE(limiter.take("k").allowed);
  EXPECT_FALSE(limiter.take("k").allowed);
}

TEST(rate_limiter, remaining_counts_down) {
  fake_time t;
  rate_limiter limiter{{1, 3, 100}, t.clock()};
  EXPECT_EQ(limiter.take("k").remaining, 2);
  EXPECT_EQ(limiter.take("k").remaining, 1);
  EXPECT_EQ(limiter.take("k").remaining, 0);
}

TEST(rate_limiter, rate_zero_means_no_limit) {
  fake_time t;
  rate_limiter limiter{{0, 1, 100}, t.clock()};
  for (int i = 0; i < 1000; ++i)
    ASSERT_TRUE(limiter.take("k").allowed);
}

TEST(rate_limiter, the_bucket_table_stays_bounded_and_keeps_partial_buckets) {
  fake_time t;
  rate_limiter limiter{{1, 2, 3}, t.clock()};
  EXPECT_TRUE(limiter.take("a").allowed);
  EXPECT_TRUE(limiter.take("a").allowed); // a is empty now
  for (int i = 0; i < 50; ++i)
    EXPECT_TRUE(limiter.take("t" + std::to_string(i)).allowed);
  // However many tenants passed through, refusals stay correct for a fresh
  // drain.
  EXPECT_TRUE(limiter.take("z").allowed);
  EXPECT_TRUE(limiter.take("z").allowed);
  EXPECT_FALSE(limiter.take("z").allowed);
}
