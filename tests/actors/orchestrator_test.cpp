// The orchestrator facade: commands answered after their commit, timers fired
// on demand and the runtime settled, a second process on the same store, and
// configuration errors. Real threads (2), bounded waits.

// GCC 12 reports a false maybe-uninitialized on variant temporaries of
// subscription_input built inline at -O2; nothing here is uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <chrono>

#include <gtest/gtest.h>

#include "actors/orchestrator.hpp"
#include "gateways/sandbox_gateway.hpp"
#include "persistence/memory_store.hpp"

namespace recur {
namespace {

const tenant_id tenant{"t_1"};
const instant t0 = utc(2026, 4, 1);

struct world {
  memory_store st;
  manual_clock clk{t0};
  sandbox_gateway gw{clk, 7};
  memory_plan_catalog plans;
  billing_env env;

  world() {
    plan_version basic{1, instant{0}, currency::of("USD"),
                       billing_interval{interval_unit::month, 1}, 14,
                       pricing::flat(3000), {}};
    EXPECT_TRUE(plans.add(plan_id{"basic"}, basic).has_value());
    env.plans = &plans;
  }

  orchestrator_config config(bool commit_in_actor) {
    orchestrator_config c;
    c.db = &st;
    c.clk = &clk;
    c.gateway = &gw;
    c.env_for = [this](const tenant_id& t) -> const billing_env* {
      return t == tenant ? &env : nullptr;
    };
    c.threads = 2;
    c.idle_passivation_ms = 0;
    c.commit_in_actor = commit_in_actor;
    c.run_timer_service = false; // timers only through fire_due
    return c;
  }
};

command_reply call(orchestrator& o, const std::string& sub,
                   subscription_input in) {
  return o.call({tenant, subscription_id{sub}, std::move(in)}).get();
}

class orchestrator_test : public ::testing::TestWithParam<bool> {};

TEST_P(orchestrator_test, a_trial_becomes_active_once_its_timer_fires_and_settles) {
  world w;
  auto o = orchestrator::start(w.config(GetParam()));
  ASSERT_TRUE(o.has_value()) << o.error().detail;
  for (int k = 0; k < 20; ++k) {
    auto r = call(**o, "sub_" + std::to_string(k),
                  sub_in::create{customer_id{"c"}, plan_id{"basic"}, 1,
                                 "pm_card_visa", std::nullopt});
    ASSERT_TRUE(r.ok()) << r.failure->detail;
    EXPECT_EQ(r.state.life.status, sub_status::trialing);
  }
  // Stored before the answer: the read model already has it.
  EXPECT_TRUE(w.st.get_subscription(tenant, subscription_id{"sub_3"}).has_value());
  // Nothing is due yet.
  auto none = (*o)->fire_due(w.clk.now());
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(*none, 0u);
  w.clk.advance_seconds(14 * seconds_per_day);
  auto fired = (*o)->fire_due(w.clk.now());
  ASSERT_TRUE(fired.has_value()) << fired.error().detail;
  EXPECT_EQ(*fired, 20u);
  ASSERT_TRUE((*o)->settle().has_value());
  EXPECT_EQ((*o)->counters().in_progress.load(), 0);
  EXPECT_EQ((*o)->counters().sagas_completed.load(), 20u);
  for (int k = 0; k < 20; ++k) {
    auto row = w.st.get_subscription(tenant, subscription_id{"sub_" + std::to_string(k)});
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(row->status, "active") << k;
  }
  EXPECT_EQ(w.gw.total_collected(currency::of("USD")).amount_minor(), 20 * 3000);
}

TEST_P(orchestrator_test, an_invalid_command_is_answered_with_the_state_unchanged) {
  world w;
  auto o = orchestrator::start(w.config(GetParam()));
  ASSERT_TRUE(o.has_value());
  ASSERT_TRUE(call(**o, "sub_1",
                   sub_in::create{customer_id{"c"}, plan_id{"basic"}, 1,
                                  "pm_card_visa", std::nullopt})
                .ok());
  auto before = w.st.get_subscription(tenant, subscription_id{"sub_1"});
  auto r = call(**o, "sub_1", sub_in::resume{}); // trialing: not paused
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure->code, errc::invalid_transition);
  EXPECT_EQ(r.state.life.status, sub_status::trialing);
  auto after = w.st.get_subscription(tenant, subscription_id{"sub_1"});
  ASSERT_TRUE(before.has_value() && after.has_value());
  EXPECT_EQ(after->version, before->version);
  ASSERT_TRUE((*o)->settle().has_value());
}

TEST_P(orchestrator_test, a_second_process_on_the_same_store_continues_the_history) {
  world w;
  {
    auto o = orchestrator::start(w.config(GetParam()));
    ASSERT_TRUE(o.has_value());
    ASSERT_TRUE(call(**o, "sub_1",
                     sub_in::create{customer_id{"c"}, plan_id{"basic"}, 1,
                                    "pm_card_visa", std::nullopt})
                  .ok());
  } // the first process stops
  auto o = orchestrator::start(w.config(GetParam()));
  ASSERT_TRUE(o.has_value());
  auto r = call(**o, "sub_1", sub_in::cancel{true});
  ASSERT_TRUE(r.ok()) << r.failure->detail;
  EXPECT_TRUE(r.state.life.cancel_at_period_end);
  EXPECT_EQ(r.state.version, 2);
  EXPECT_EQ((*o)->stats().actors, 1);
}

INSTANTIATE_TEST_SUITE_P(writer_and_in_actor_commits, orchestrator_test,
                         ::testing::Bool());

TEST(orchestrator_config, missing_parts_are_named) {
  world w;
  auto c = w.config(false);
  c.db = nullptr;
  auto o = orchestrator::start(c);
  ASSERT_FALSE(o.has_value());
  EXPECT_EQ(o.error().code, errc::invalid_argument);
  EXPECT_NE(o.error().detail.find("db"), std::string::npos);
  c = w.config(false);
  c.env_for = nullptr;
  o = orchestrator::start(c);
  ASSERT_FALSE(o.has_value());
  EXPECT_NE(o.error().detail.find("env_for"), std::string::npos);
}

} // namespace
} // namespace recur
