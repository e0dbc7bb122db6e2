#include "workflows/payment_attempt.hpp"

#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

using namespace recur;

namespace {

using as = attempt_status;
using go = gateway_outcome;

struct legal_move {
  as from;
  go on;
  as to;
};

/// The expected machine: every legal move; everything else is rejected.
const std::vector<legal_move> legal_moves = {
  {as::pending, go::succeeded, as::succeeded},
  {as::pending, go::processing, as::pending},
  {as::pending, go::declined_soft, as::failed_soft},
  {as::pending, go::declined_hard, as::failed_hard},
  {as::pending, go::timed_out, as::unknown},
  // resolution of a timeout by lookup or webhook
  {as::unknown, go::succeeded, as::succeeded},
  {as::unknown, go::declined_soft, as::failed_soft},
  {as::unknown, go::declined_hard, as::failed_hard},
  // an inconclusive lookup leaves it unknown (never pending again)
  {as::unknown, go::processing, as::unknown},
  {as::unknown, go::timed_out, as::unknown},
};

} // namespace

TEST(payment_attempt, every_status_and_outcome_matches_the_expected_machine) {
  int legal = 0;
  for (auto from : all_attempt_statuses)
    for (auto on : all_gateway_outcomes) {
      SCOPED_TRACE(std::string{to_string(from)} + " on "
                   + std::string{to_string(on)});
      const legal_move* want = nullptr;
      for (const auto& m : legal_moves)
        if (m.from == from && m.on == on)
          want = &m;
      auto got = apply(from, on);
      if (want) {
        ASSERT_TRUE(got);
        EXPECT_EQ(*got, want->to);
        ++legal;
      } else {
        ASSERT_FALSE(got);
        EXPECT_EQ(got.code(), errc::invalid_transition);
      }
    }
  EXPECT_EQ(legal, 10);
}

TEST(payment_attempt, settled_attempts_are_terminal_and_reject_every_outcome) {
  for (auto s : all_attempt_statuses) {
    const bool settled
      = s == as::succeeded || s == as::failed_soft || s == as::failed_hard;
    EXPECT_EQ(is_terminal(s), settled) << to_string(s);
    if (!settled)
      continue;
    for (auto on : all_gateway_outcomes)
      EXPECT_EQ(apply(s, on).code(), errc::invalid_transition);
  }
}

TEST(payment_attempt, a_timeout_is_never_turned_back_into_pending) {
  for (auto on : all_gateway_outcomes) {
    auto r = apply(as::unknown, on);
    ASSERT_TRUE(r);
    EXPECT_NE(*r, as::pending) << to_string(on);
  }
}

TEST(payment_attempt, an_async_charge_stays_pending_until_the_webhook_settles_it) {
  auto s = apply(as::pending, go::processing);
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, as::pending);
  s = apply(*s, go::timed_out);
  EXPECT_EQ(*s, as::unknown);
  s = apply(*s, go::succeeded);
  EXPECT_EQ(*s, as::succeeded);
  auto again = apply(*s, go::succeeded);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().detail,
            "payment attempt: no transition from succeeded on succeeded");
}

TEST(payment_attempt, names_are_stable_and_unique) {
  EXPECT_EQ(to_string(as::failed_soft), "failed_soft");
  EXPECT_EQ(to_string(as::unknown), "unknown");
  EXPECT_EQ(to_string(go::declined_hard), "declined_hard");
  EXPECT_EQ(to_string(go::timed_out), "timed_out");
  std::set<std::string_view> statuses, outcomes;
  for (auto s : all_attempt_statuses)
    statuses.insert(to_string(s));
  for (auto o : all_gateway_outcomes)
    outcomes.insert(to_string(o));
  EXPECT_EQ(statuses.size(), 5u);
  EXPECT_EQ(outcomes.size(), 5u);
}
