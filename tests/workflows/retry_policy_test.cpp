#include "workflows/retry_policy.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "domain/arith.hpp"

using namespace recur;

namespace {

constexpr std::int64_t day_s = 86'400;
constexpr std::int32_t i32_max = std::numeric_limits<std::int32_t>::max();

retry_policy no_jitter(std::int64_t initial_s, std::int32_t coeff_permille,
                       std::int64_t cap_s, std::int32_t attempts) {
  return retry_policy{initial_s, coeff_permille, cap_s, attempts, 0};
}

/// Delays before attempts 2..max_attempts, then one more call that must say
/// the attempts are spent.
std::vector<std::int64_t> delays(const retry_policy& p, rng& gen) {
  std::vector<std::int64_t> out;
  for (std::int32_t made = 1;; ++made) {
    auto d = next_delay_s(p, made, gen);
    if (!d)
      break;
    out.push_back(*d);
  }
  return out;
}

} // namespace

// -- backoff by hand ----------------------------------------------------------

TEST(retry_policy, delays_double_until_the_cap_without_jitter) {
  rng gen{1};
  const auto p = no_jitter(3600, 2000, day_s, 8);
  EXPECT_EQ(delays(p, gen), (std::vector<std::int64_t>{
                              3600, 7200, 14400, 28800, 57600, 86400, 86400}));
}

TEST(retry_policy, fractional_coefficients_round_half_even_at_each_step) {
  rng gen{1};
  // 1000 ×1.5: 1500, 2250, 3375, 5062.5 → 5062 (even), 7593, 11389.5 → 11390.
  const auto p = no_jitter(1000, 1500, day_s, 8);
  EXPECT_EQ(delays(p, gen), (std::vector<std::int64_t>{
                              1000, 1500, 2250, 3375, 5062, 7593, 11390}));
}

TEST(retry_policy, a_coefficient_of_one_keeps_the_delay_constant) {
  rng gen{1};
  const auto p = no_jitter(600, 1000, day_s, 5);
  EXPECT_EQ(delays(p, gen), (std::vector<std::int64_t>{600, 600, 600, 600}));
}

TEST(retry_policy, attempts_are_spent_at_max_attempts) {
  rng gen{1};
  const auto p = no_jitter(60, 2000, day_s, 3);
  EXPECT_EQ(next_delay_s(p, 1, gen), std::optional<std::int64_t>{60});
  EXPECT_EQ(next_delay_s(p, 2, gen), std::optional<std::int64_t>{120});
  EXPECT_EQ(next_delay_s(p, 3, gen), std::nullopt);
  EXPECT_EQ(next_delay_s(p, 4, gen), std::nullopt);
  EXPECT_EQ(next_delay_s(p, i32_max, gen), std::nullopt);
  const auto single = no_jitter(60, 2000, day_s, 1);
  EXPECT_EQ(next_delay_s(single, 1, gen), std::nullopt);
}

TEST(retry_policy, a_huge_coefficient_saturates_at_the_cap) {
  rng gen{1};
  const auto p = no_jitter(day_s, i32_max, retry_interval_limit_s, 100);
  EXPECT_EQ(next_delay_s(p, 1, gen), std::optional<std::int64_t>{day_s});
  EXPECT_EQ(next_delay_s(p, 2, gen),
            std::optional<std::int64_t>{retry_interval_limit_s});
  EXPECT_EQ(next_delay_s(p, 99, gen),
            std::optional<std::int64_t>{retry_interval_limit_s});
}

TEST(retry_policy, the_default_is_four_attempts_a_day_apart_doubling) {
  const auto p = default_retry_policy();
  EXPECT_TRUE(validate(p));
  EXPECT_EQ(p.initial_interval_s, day_s);
  EXPECT_EQ(p.coefficient_permille, 2000);
  EXPECT_EQ(p.max_interval_s, 7 * day_s);
  EXPECT_EQ(p.max_attempts, 4);
  EXPECT_EQ(p.jitter_permille, 100);
  auto flat = p;
  flat.jitter_permille = 0;
  rng gen{1};
  EXPECT_EQ(delays(flat, gen),
            (std::vector<std::int64_t>{day_s, 2 * day_s, 4 * day_s}));
}

// -- jitter -------------------------------------------------------------------

TEST(retry_policy, jitter_stays_within_ten_percent_and_varies) {
  rng gen{42};
  const auto p = default_retry_policy();
  std::int64_t lo = std::numeric_limits<std::int64_t>::max();
  std::int64_t hi = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::int64_t d = *next_delay_s(p, 1, gen);
    ASSERT_GE(d, 77'760); // 86400 - 8640
    ASSERT_LE(d, 95'040); // 86400 + 8640
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, 80'000);
  EXPECT_GT(hi, 93'000);
}

TEST(retry_policy, jitter_never_pushes_a_delay_past_the_cap) {
  rng gen{7};
  const auto p = retry_policy{day_s, 2000, 7 * day_s, 10, 100};
  bool below_cap_seen = false;
  for (int i = 0; i < 2000; ++i) {
    const std::int64_t d = *next_delay_s(p, 5, gen); // 16 days before the cap
    ASSERT_LE(d, 7 * day_s);
    ASSERT_GE(d, 7 * day_s - 60'480);
    below_cap_seen = below_cap_seen || d < 7 * day_s;
  }
  EXPECT_TRUE(below_cap_seen);
}

TEST(retry_policy, jitter_never_brings_a_delay_below_one_second) {
  rng gen{9};
  const auto p = retry_policy{1, 1000, 10, 3, 1000}; // ±100% of 1 s
  bool one = false;
  bool two = false;
  for (int i = 0; i < 1000; ++i) {
    const std::int64_t d = *next_delay_s(p, 1, gen);
    ASSERT_GE(d, 1);
    ASSERT_LE(d, 2);
    one = one || d == 1;
    two = two || d == 2;
  }
  EXPECT_TRUE(one && two);
}

TEST(retry_policy, without_jitter_the_generator_is_left_untouched) {
  rng used{5};
  rng fresh{5};
  (void) next_delay_s(no_jitter(60, 2000, day_s, 5), 2, used);
  EXPECT_EQ(used.next(), fresh.next());
}

TEST(retry_policy, the_same_seed_gives_the_same_delays) {
  const auto p = retry_policy{3600, 1700, 5 * day_s, 50, 250};
  rng a{123};
  rng b{123};
  rng c{124};
  const auto first = delays(p, a);
  EXPECT_EQ(first, delays(p, b));
  EXPECT_NE(first, delays(p, c));
  EXPECT_EQ(first.size(), 49u);
}

// -- validation ---------------------------------------------------------------

TEST(retry_policy, invalid_policies_are_rejected_with_a_reason) {
  const auto ok = default_retry_policy();
  auto expect_invalid = [](retry_policy p, std::string_view field) {
    auto st = validate(p);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.code(), errc::invalid_policy);
    EXPECT_NE(st.error().detail.find(field), std::string::npos)
      << st.error().detail;
  };
  auto p = ok;
  p.initial_interval_s = 0;
  expect_invalid(p, "initial_interval_s");
  p = ok;
  p.initial_interval_s = -5;
  expect_invalid(p, "initial_interval_s");
  p = ok;
  p.max_interval_s = p.initial_interval_s - 1;
  expect_invalid(p, "max_interval_s");
  p = ok;
  p.max_interval_s = retry_interval_limit_s + 1;
  expect_invalid(p, "max_interval_s");
  p = ok;
  p.coefficient_permille = 999;
  expect_invalid(p, "coefficient_permille");
  p = ok;
  p.max_attempts = 0;
  expect_invalid(p, "max_attempts");
  p = ok;
  p.max_attempts = retry_attempts_limit + 1;
  expect_invalid(p, "max_attempts");
  p = ok;
  p.jitter_permille = -1;
  expect_invalid(p, "jitter_permille");
  p = ok;
  p.jitter_permille = 1001;
  expect_invalid(p, "jitter_permille");
}

TEST(retry_policy, policies_at_the_limits_are_valid) {
  EXPECT_TRUE(validate(retry_policy{1, 1000, 1, 1, 0}));
  EXPECT_TRUE(validate(retry_policy{retry_interval_limit_s, i32_max,
                                    retry_interval_limit_s,
                                    retry_attempts_limit, 1000}));
}

TEST(retry_policy, asking_before_the_first_attempt_is_a_programmer_error) {
  rng gen{1};
  EXPECT_DEATH((void) next_delay_s(default_retry_policy(), 0, gen),
               "attempts_made >= 1");
  EXPECT_DEATH((void) next_delay_s(retry_policy{0, 2000, 10, 3, 0}, 1, gen),
               "validate");
}

// -- property -----------------------------------------------------------------

// Property: for random valid policies (huge coefficients and caps included),
// every delay lies in [1, cap]; attempts run out exactly at max_attempts;
// without jitter the delays never decrease and, for whole coefficients,
// equal min(cap, initial × k^(n-1)); the same seed replays the same delays.
TEST(retry_policy, property_delays_are_bounded_monotone_and_replayable) {
  const std::uint64_t seed = 0x5eed'0d1e;
  rng gen{seed};
  for (int i = 0; i < 10'000; ++i) {
    retry_policy p{};
    const bool whole = gen.below(2) == 0;
    p.coefficient_permille
      = whole ? static_cast<std::int32_t>(1000 * gen.between(1, 10))
              : static_cast<std::int32_t>(gen.below(2) ? gen.between(1000, 3000)
                                                       : gen.between(1000, i32_max));
    p.initial_interval_s = gen.below(2) ? gen.between(1, 1000)
                                        : gen.between(1, retry_interval_limit_s);
    p.max_interval_s = gen.between(p.initial_interval_s, retry_interval_limit_s);
    p.max_attempts = static_cast<std::int32_t>(gen.between(1, retry_attempts_limit));
    p.jitter_permille = static_cast<std::int32_t>(gen.between(0, 1000));
    const std::uint64_t case_seed = gen.next();
    SCOPED_TRACE(testing::Message()
                 << "seed=" << seed << " case=" << i << " initial="
                 << p.initial_interval_s << " coeff=" << p.coefficient_permille
                 << " cap=" << p.max_interval_s << " attempts="
                 << p.max_attempts << " jitter=" << p.jitter_permille);
    ASSERT_TRUE(validate(p));

    rng a{case_seed};
    rng b{case_seed};
    const auto jittered = delays(p, a);
    ASSERT_EQ(jittered, delays(p, b));
    ASSERT_EQ(jittered.size(), static_cast<std::size_t>(p.max_attempts - 1));
    for (std::int64_t d : jittered) {
      ASSERT_GE(d, 1);
      ASSERT_LE(d, p.max_interval_s);
    }
    const auto far = static_cast<std::int32_t>(gen.between(p.max_attempts, i32_max));
    ASSERT_EQ(next_delay_s(p, far, a), std::nullopt);

    auto flat = p;
    flat.jitter_permille = 0;
    rng unused{case_seed};
    const auto plain = delays(flat, unused);
    int128 oracle = flat.initial_interval_s; // initial × k^(n-1), saturated
    for (std::size_t n = 0; n < plain.size(); ++n) {
      ASSERT_GE(plain[n], 1);
      ASSERT_LE(plain[n], flat.max_interval_s);
      if (n > 0) {
        ASSERT_GE(plain[n], plain[n - 1]);
      }
      if (whole) {
        ASSERT_EQ(plain[n], static_cast<std::int64_t>(
                              std::min<int128>(oracle, flat.max_interval_s)));
        oracle = std::min<int128>(oracle, flat.max_interval_s)
                 * (flat.coefficient_permille / 1000);
      }
    }
  }
}

// -- decline classification ---------------------------------------------------

TEST(retry_policy, stripe_decline_codes_are_classified_by_whether_a_retry_can_help) {
  const std::vector<std::pair<std::string_view, decline_class>> expected = {
    // the customer must act
    {"expired_card", decline_class::hard},
    {"incorrect_number", decline_class::hard},
    {"invalid_number", decline_class::hard},
    {"invalid_expiry_month", decline_class::hard},
    {"invalid_expiry_year", decline_class::hard},
    {"incorrect_cvc", decline_class::hard},
    {"invalid_cvc", decline_class::hard},
    {"stolen_card", decline_class::hard},
    {"lost_card", decline_class::hard},
    {"pickup_card", decline_class::hard},
    {"fraudulent", decline_class::hard},
    {"restricted_card", decline_class::hard},
    {"card_not_supported", decline_class::hard},
    {"currency_not_supported", decline_class::hard},
    {"invalid_account", decline_class::hard},
    {"new_account_information_available", decline_class::hard},
    {"revocation_of_authorization", decline_class::hard},
    {"revocation_of_all_authorizations", decline_class::hard},
    {"stop_payment_order", decline_class::hard},
    {"do_not_try_again", decline_class::hard},
    {"authentication_required", decline_class::hard},
    {"transaction_not_allowed", decline_class::hard},
    {"security_violation", decline_class::hard},
    {"no_action_taken", decline_class::hard},
    {"not_permitted", decline_class::hard},
    {"merchant_blacklist", decline_class::hard},
    {"testmode_decline", decline_class::hard},
    // may succeed later
    {"insufficient_funds", decline_class::soft},
    {"generic_decline", decline_class::soft},
    {"do_not_honor", decline_class::soft},
    {"processing_error", decline_class::soft},
    {"try_again_later", decline_class::soft},
    {"card_velocity_exceeded", decline_class::soft},
    {"withdrawal_count_limit_exceeded", decline_class::soft},
    {"issuer_not_available", decline_class::soft},
    {"reenter_transaction", decline_class::soft},
    {"approve_with_id", decline_class::soft},
    {"call_issuer", decline_class::soft},
  };
  for (const auto& [code, cls] : expected)
    EXPECT_EQ(classify_decline(code), cls) << code;
}

TEST(retry_policy, unknown_decline_codes_are_soft) {
  EXPECT_EQ(classify_decline("some_future_code"), decline_class::soft);
  EXPECT_EQ(classify_decline(""), decline_class::soft);
  // exact match only: Stripe's codes are lower case
  EXPECT_EQ(classify_decline("EXPIRED_CARD"), decline_class::soft);
  EXPECT_EQ(classify_decline("expired_card "), decline_class::soft);
  EXPECT_EQ(to_string(decline_class::soft), "soft");
  EXPECT_EQ(to_string(decline_class::hard), "hard");
}
