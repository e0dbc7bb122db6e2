#include "actors/circuit_breaker.hpp"

#include <cstdint>
#include <ostream>
#include <string>

#include <gtest/gtest.h>

using namespace recur;

namespace recur {

// Readable values in failure messages.
inline void PrintTo(breaker_state s, std::ostream* os) {
  *os << to_string(s);
}

} // namespace recur

namespace {

const instant t0 = utc(2024, 3, 1);

circuit_breaker_config cfg(std::int32_t threshold, std::int64_t open_s) {
  return circuit_breaker_config{threshold, open_s};
}

/// A breaker with threshold 3 and a 30 s cooldown, opened at t0.
circuit_breaker opened_at_t0() {
  circuit_breaker b{cfg(3, 30)};
  for (int i = 0; i < 3; ++i)
    b.on_failure(t0);
  return b;
}

// -- configuration ------------------------------------------------------------

TEST(circuit_breaker, the_default_config_opens_after_5_failures_for_30_s) {
  circuit_breaker_config c;
  EXPECT_EQ(c.failure_threshold, 5);
  EXPECT_EQ(c.open_s, 30);
  EXPECT_TRUE(validate(c));
}

TEST(circuit_breaker, validate_accepts_the_bounds_and_rejects_beyond_them) {
  EXPECT_TRUE(validate(cfg(1, 0)));
  EXPECT_TRUE(validate(cfg(breaker_failure_threshold_max, breaker_open_s_max)));
  for (auto bad : {cfg(0, 30), cfg(-1, 30), cfg(5, -1),
                   cfg(breaker_failure_threshold_max + 1, 30),
                   cfg(5, breaker_open_s_max + 1)}) {
    auto st = validate(bad);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.code(), errc::invalid_argument);
  }
}

TEST(circuit_breaker, states_have_stable_names) {
  EXPECT_EQ(to_string(breaker_state::closed), "closed");
  EXPECT_EQ(to_string(breaker_state::open), "open");
  EXPECT_EQ(to_string(breaker_state::half_open), "half_open");
}

// -- closed -------------------------------------------------------------------

TEST(circuit_breaker, a_new_breaker_is_closed_and_allows_every_call) {
  circuit_breaker b;
  EXPECT_EQ(b.state(), breaker_state::closed);
  EXPECT_EQ(b.consecutive_failures(), 0);
  EXPECT_EQ(b.times_opened(), 0);
  for (int i = 0; i < 100; ++i)
    EXPECT_TRUE(b.allow(t0.plus_seconds(i)));
  EXPECT_EQ(b.state(), breaker_state::closed);
}

TEST(circuit_breaker, failures_below_the_threshold_keep_it_closed) {
  circuit_breaker b{cfg(3, 30)};
  b.on_failure(t0);
  b.on_failure(t0);
  EXPECT_EQ(b.state(), breaker_state::closed);
  EXPECT_EQ(b.consecutive_failures(), 2);
  EXPECT_EQ(b.times_opened(), 0);
  EXPECT_TRUE(b.allow(t0));
}

TEST(circuit_breaker,
     a_success_resets_the_count_so_only_consecutive_ones_open) {
  circuit_breaker b{cfg(3, 30)};
  for (int round = 0; round < 10; ++round) {
    b.on_failure(t0);
    b.on_failure(t0);
    b.on_success();
    EXPECT_EQ(b.consecutive_failures(), 0);
  }
  EXPECT_EQ(b.state(), breaker_state::closed);
  EXPECT_EQ(b.times_opened(), 0);
}

TEST(circuit_breaker, the_threshold_th_consecutive_failure_opens_it_at_now) {
  circuit_breaker b{cfg(3, 30)};
  b.on_failure(t0);
  b.on_failure(t0.plus_seconds(1));
  b.on_failure(t0.plus_seconds(2));
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_EQ(b.opened_at(), t0.plus_seconds(2));
  EXPECT_EQ(b.probe_at(), t0.plus_seconds(32));
  EXPECT_EQ(b.consecutive_failures(), 3);
  EXPECT_EQ(b.times_opened(), 1);
}

TEST(circuit_breaker, a_threshold_of_one_opens_on_the_first_failure) {
  circuit_breaker b{cfg(1, 30)};
  b.on_failure(t0);
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_EQ(b.times_opened(), 1);
}

// -- open ---------------------------------------------------------------------

TEST(circuit_breaker, open_refuses_calls_until_the_cooldown_has_passed) {
  auto b = opened_at_t0();
  EXPECT_FALSE(b.allow(t0));
  EXPECT_FALSE(b.allow(t0.plus_seconds(29)));
  EXPECT_EQ(b.state(), breaker_state::open);
  // A clock that went backwards does not open the gate either.
  EXPECT_FALSE(b.allow(t0.plus_seconds(-100)));
  EXPECT_EQ(b.state(), breaker_state::open);
}

TEST(circuit_breaker,
     open_grants_one_probe_exactly_at_the_end_of_the_cooldown) {
  auto b = opened_at_t0();
  EXPECT_TRUE(b.allow(t0.plus_seconds(30)));
  EXPECT_EQ(b.state(), breaker_state::half_open);
}

TEST(circuit_breaker, open_grants_the_probe_long_after_the_cooldown_too) {
  auto b = opened_at_t0();
  EXPECT_TRUE(b.allow(t0.plus_seconds(seconds_per_day)));
  EXPECT_EQ(b.state(), breaker_state::half_open);
}

TEST(circuit_breaker, open_ignores_outcomes_of_calls_sent_before_it_opened) {
  auto b = opened_at_t0();
  b.on_success();
  EXPECT_EQ(b.state(), breaker_state::open);
  b.on_failure(t0.plus_seconds(20));
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_EQ(b.opened_at(), t0); // the cooldown is not extended
  EXPECT_EQ(b.consecutive_failures(), 3);
  EXPECT_EQ(b.times_opened(), 1);
  EXPECT_TRUE(b.allow(t0.plus_seconds(30)));
}

TEST(circuit_breaker, a_zero_cooldown_probes_on_the_next_call) {
  circuit_breaker b{cfg(1, 0)};
  b.on_failure(t0);
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_TRUE(b.allow(t0));
  EXPECT_EQ(b.state(), breaker_state::half_open);
  EXPECT_FALSE(b.allow(t0));
}

// -- half-open ----------------------------------------------------------------

TEST(circuit_breaker, half_open_refuses_everything_while_the_probe_is_out) {
  auto b = opened_at_t0();
  ASSERT_TRUE(b.allow(t0.plus_seconds(30)));
  EXPECT_FALSE(b.allow(t0.plus_seconds(30)));
  EXPECT_FALSE(b.allow(t0.plus_seconds(seconds_per_day)));
  EXPECT_EQ(b.state(), breaker_state::half_open);
}

TEST(circuit_breaker, a_successful_probe_closes_it_and_resets_the_count) {
  auto b = opened_at_t0();
  ASSERT_TRUE(b.allow(t0.plus_seconds(30)));
  b.on_success();
  EXPECT_EQ(b.state(), breaker_state::closed);
  EXPECT_EQ(b.consecutive_failures(), 0);
  EXPECT_EQ(b.times_opened(), 1);
  EXPECT_TRUE(b.allow(t0.plus_seconds(30)));
  EXPECT_TRUE(b.allow(t0.plus_seconds(30)));
}

TEST(circuit_breaker, after_closing_it_takes_a_full_threshold_to_open_again) {
  auto b = opened_at_t0();
  ASSERT_TRUE(b.allow(t0.plus_seconds(30)));
  b.on_success();
  b.on_failure(t0.plus_seconds(40));
  b.on_failure(t0.plus_seconds(41));
  EXPECT_EQ(b.state(), breaker_state::closed);
  b.on_failure(t0.plus_seconds(42));
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_EQ(b.opened_at(), t0.plus_seconds(42));
  EXPECT_EQ(b.times_opened(), 2);
}

TEST(circuit_breaker, a_failed_probe_reopens_it_and_restarts_the_cooldown) {
  auto b = opened_at_t0();
  ASSERT_TRUE(b.allow(t0.plus_seconds(30)));
  b.on_failure(t0.plus_seconds(35));
  EXPECT_EQ(b.state(), breaker_state::open);
  EXPECT_EQ(b.opened_at(), t0.plus_seconds(35));
  EXPECT_EQ(b.times_opened(), 2);
  EXPECT_EQ(b.consecutive_failures(), 4);
  EXPECT_FALSE(b.allow(t0.plus_seconds(64)));
  EXPECT_TRUE(b.allow(t0.plus_seconds(65)));
  EXPECT_EQ(b.state(), breaker_state::half_open);
}

TEST(circuit_breaker, probes_can_fail_many_times_and_one_success_still_closes) {
  auto b = opened_at_t0();
  auto now = t0;
  for (int i = 0; i < 5; ++i) {
    now = now.plus_seconds(30);
    ASSERT_TRUE(b.allow(now));
    b.on_failure(now);
    ASSERT_EQ(b.state(), breaker_state::open);
  }
  EXPECT_EQ(b.times_opened(), 6);
  ASSERT_TRUE(b.allow(now.plus_seconds(30)));
  b.on_success();
  EXPECT_EQ(b.state(), breaker_state::closed);
}

// -- what counts as a failure -------------------------------------------------

TEST(circuit_breaker, only_unavailable_errors_count_as_failures) {
  EXPECT_TRUE(is_breaker_failure(make_error(errc::unavailable)));
  for (auto code :
       {errc::invalid_argument, errc::not_found, errc::idempotency_conflict,
        errc::invalid_transition, errc::currency_mismatch, errc::storage_error})
    EXPECT_FALSE(is_breaker_failure(make_error(code))) << to_string(code);
}

TEST(circuit_breaker, an_unknown_charge_counts_and_a_decline_does_not) {
  auto with = [](charge_status s) {
    charge_result r;
    r.status = s;
    return r;
  };
  EXPECT_TRUE(is_breaker_failure(with(charge_status::unknown)));
  EXPECT_FALSE(is_breaker_failure(with(charge_status::succeeded)));
  EXPECT_FALSE(is_breaker_failure(with(charge_status::pending)));
  EXPECT_FALSE(is_breaker_failure(with(charge_status::declined)));
  EXPECT_TRUE(
    is_breaker_failure(result<charge_result>{with(charge_status::unknown)}));
  EXPECT_FALSE(
    is_breaker_failure(result<charge_result>{with(charge_status::declined)}));
  EXPECT_TRUE(
    is_breaker_failure(result<charge_result>{make_error(errc::unavailable)}));
  EXPECT_FALSE(is_breaker_failure(
    result<charge_result>{make_error(errc::idempotency_conflict)}));
}

TEST(circuit_breaker, a_refund_counts_only_when_the_gateway_was_unavailable) {
  refund_result ok{"re_1", money{100, currency::of("USD")}};
  EXPECT_FALSE(is_breaker_failure(result<refund_result>{ok}));
  EXPECT_TRUE(
    is_breaker_failure(result<refund_result>{make_error(errc::unavailable)}));
  EXPECT_FALSE(
    is_breaker_failure(result<refund_result>{make_error(errc::not_found)}));
}

} // namespace
