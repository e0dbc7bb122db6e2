#include "gateways/sandbox_gateway.hpp"

#include <cstdint>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "workflows/retry_policy.hpp"

using namespace recur;

namespace recur {

// Readable values in failure messages.
void PrintTo(charge_status s, std::ostream* os) {
  *os << to_string(s);
}
void PrintTo(decline_class c, std::ostream* os) {
  *os << to_string(c);
}

} // namespace recur

namespace {

const instant t0 = utc(2024, 3, 1);

money usd(std::int64_t minor) {
  return money{minor, currency::of("USD")};
}

money eur(std::int64_t minor) {
  return money{minor, currency::of("EUR")};
}

charge_request request(std::string key, std::string method,
                       money amount = usd(1999),
                       std::string customer = "cus_1") {
  return charge_request{
    .idempotency_key = std::move(key),
    .tenant = tenant_id{"ten_1"},
    .customer = customer_id{std::move(customer)},
    .payment_method = std::move(method),
    .amount = amount,
    .description = "invoice",
  };
}

refund_request refund_of(std::string key, std::string charge_id, money amount) {
  return refund_request{std::move(key), std::move(charge_id), amount};
}

class sandbox : public ::testing::Test {
protected:
  manual_clock clk{t0};
  sandbox_gateway gw{clk, 42};

  charge_result must_charge(const charge_request& req) {
    auto r = gw.charge(req);
    EXPECT_TRUE(r) << (r ? "" : r.error().detail);
    return r ? *r : charge_result{};
  }
};

struct token_case {
  const char* token;
  charge_status status;
  const char* decline_code;
  decline_class cls;
};

using cs = charge_status;
using dc = decline_class;

// clang-format off
const std::vector<token_case> token_cases = {
  {"pm_card_visa",                                cs::succeeded, "",                       dc::soft},
  {"pm_card_visa_debit",                          cs::succeeded, "",                       dc::soft},
  {"pm_card_mastercard",                          cs::succeeded, "",                       dc::soft},
  {"pm_card_amex",                                cs::succeeded, "",                       dc::soft},
  {"pm_card_discover",                            cs::succeeded, "",                       dc::soft},
  {"pm_card_chargeDeclined",                      cs::declined,  "generic_decline",        dc::soft},
  {"pm_card_chargeDeclinedInsufficientFunds",     cs::declined,  "insufficient_funds",     dc::soft},
  {"pm_card_chargeDeclinedProcessingError",       cs::declined,  "processing_error",       dc::soft},
  {"pm_card_chargeDeclinedVelocityLimitExceeded", cs::declined,  "card_velocity_exceeded", dc::soft},
  {"pm_card_chargeDeclinedExpiredCard",           cs::declined,  "expired_card",           dc::hard},
  {"pm_card_chargeDeclinedIncorrectCvc",          cs::declined,  "incorrect_cvc",          dc::hard},
  {"pm_card_chargeDeclinedFraudulent",            cs::declined,  "fraudulent",             dc::hard},
  {"pm_card_chargeDeclinedLostCard",              cs::declined,  "lost_card",              dc::hard},
  {"pm_card_chargeDeclinedStolenCard",            cs::declined,  "stolen_card",            dc::hard},
  {"pm_sandbox_async",                            cs::pending,   "",                       dc::soft},
  {"pm_sandbox_async_fail",                       cs::pending,   "",                       dc::soft},
  {"pm_sandbox_timeout",                          cs::unknown,   "",                       dc::soft},
  {"pm_sandbox_timeout_after_charge",             cs::unknown,   "",                       dc::soft},
  {"pm_sandbox_flaky_1",                          cs::declined,  "processing_error",       dc::soft},
  {"pm_card_nonexistent",                         cs::declined,  "resource_missing",       dc::hard},
};
// clang-format on

} // namespace

// -- tokens -------------------------------------------------------------------

TEST_F(sandbox, every_documented_token_answers_its_outcome_and_decline_class) {
  for (const auto& c : token_cases) {
    SCOPED_TRACE(c.token);
    const std::string key = std::string{"key_"} + c.token;
    const charge_result r = must_charge(request(key, c.token));
    EXPECT_EQ(r.status, c.status);
    EXPECT_EQ(r.decline_code, c.decline_code);
    if (r.status == cs::declined) {
      EXPECT_EQ(r.decline, c.cls);
      if (c.decline_code != std::string{"resource_missing"}) {
        EXPECT_EQ(classify_decline(r.decline_code), c.cls);
      }
    }
    EXPECT_EQ(r.charge_id.empty(), r.status == cs::unknown);
    const bool collected = c.status == cs::succeeded
                           || std::string{c.token}
                                == "pm_sandbox_timeout_after_charge";
    EXPECT_EQ(gw.times_collected(key), collected ? 1 : 0);
  }
}

TEST_F(sandbox, charge_ids_are_numbered_in_the_order_charges_are_made) {
  EXPECT_EQ(must_charge(request("a", "pm_card_visa")).charge_id, "ch_sbx_1");
  EXPECT_EQ(must_charge(request("b", "pm_card_chargeDeclined")).charge_id,
            "ch_sbx_2");
  EXPECT_EQ(must_charge(request("c", "pm_sandbox_async")).charge_id,
            "ch_sbx_3");
  const auto all = gw.charges();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].idempotency_key, "a");
  EXPECT_EQ(all[0].status, cs::succeeded);
  EXPECT_EQ(all[0].amount, usd(1999));
  EXPECT_EQ(all[0].created, t0);
  EXPECT_EQ(all[1].decline_code, "generic_decline");
  EXPECT_EQ(all[2].status, cs::pending);
}

TEST_F(sandbox, malformed_flaky_tokens_are_unknown_payment_methods) {
  for (const char* token : {"pm_sandbox_flaky_0", "pm_sandbox_flaky_",
                            "pm_sandbox_flaky_x", "pm_sandbox_flaky_01",
                            "pm_sandbox_flaky_1001", "pm_sandbox_flaky_2x"}) {
    SCOPED_TRACE(token);
    const auto r = must_charge(request(std::string{"k_"} + token, token));
    EXPECT_EQ(r.status, cs::declined);
    EXPECT_EQ(r.decline_code, "resource_missing");
    EXPECT_EQ(r.decline, dc::hard);
  }
}

TEST_F(sandbox, malformed_requests_are_rejected_and_nothing_is_recorded) {
  const std::vector<charge_request> bad = {
    request("", "pm_card_visa"),
    request(std::string(256, 'k'), "pm_card_visa"),
    request("k1", ""),
    request("k2", "pm_card_visa", usd(0)),
    request("k3", "pm_card_visa", usd(-5)),
  };
  for (const auto& req : bad) {
    auto r = gw.charge(req);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.code(), errc::invalid_argument);
  }
  EXPECT_TRUE(gw.charge(request(std::string(255, 'k'), "pm_card_visa")));
  EXPECT_EQ(gw.charges().size(), 1u);
}

TEST_F(sandbox, the_sandbox_is_named_sandbox_and_statuses_have_stable_names) {
  EXPECT_EQ(gw.name(), "sandbox");
  EXPECT_EQ(to_string(cs::succeeded), "succeeded");
  EXPECT_EQ(to_string(cs::pending), "pending");
  EXPECT_EQ(to_string(cs::declined), "declined");
  EXPECT_EQ(to_string(cs::unknown), "unknown");
}

// -- idempotency --------------------------------------------------------------

TEST_F(sandbox, replaying_a_key_returns_the_first_answer_and_collects_once) {
  const auto first = must_charge(request("inv_1/attempt-1", "pm_card_visa"));
  for (int i = 0; i < 5; ++i) {
    const auto again = must_charge(request("inv_1/attempt-1", "pm_card_visa"));
    EXPECT_EQ(again, first);
  }
  EXPECT_EQ(gw.times_collected("inv_1/attempt-1"), 1);
  EXPECT_EQ(gw.charges().size(), 1u);
  EXPECT_EQ(gw.total_collected(currency::of("USD")), usd(1999));
}

TEST_F(sandbox, replaying_a_declined_key_returns_the_same_decline) {
  const auto first
    = must_charge(request("k", "pm_card_chargeDeclinedExpiredCard"));
  const auto again
    = must_charge(request("k", "pm_card_chargeDeclinedExpiredCard"));
  EXPECT_EQ(again, first);
  EXPECT_EQ(gw.charges().size(), 1u);
  EXPECT_EQ(gw.times_collected("k"), 0);
}

TEST_F(sandbox, reusing_a_key_for_a_different_request_is_a_conflict) {
  ASSERT_TRUE(gw.charge(request("k", "pm_card_visa", usd(1000))));
  std::vector<charge_request> different = {
    request("k", "pm_card_visa", usd(1001)),
    request("k", "pm_card_visa", eur(1000)),
    request("k", "pm_card_mastercard", usd(1000)),
    request("k", "pm_card_visa", usd(1000), "cus_2"),
  };
  auto other_tenant = request("k", "pm_card_visa", usd(1000));
  other_tenant.tenant = tenant_id{"ten_2"};
  different.push_back(other_tenant);
  for (const auto& req : different) {
    auto r = gw.charge(req);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.code(), errc::idempotency_conflict);
  }
  EXPECT_EQ(gw.times_collected("k"), 1);
  EXPECT_EQ(gw.charges().size(), 1u);
  EXPECT_EQ(gw.total_collected(currency::of("USD")), usd(1000));
}

TEST_F(sandbox, charge_and_refund_keys_share_one_namespace) {
  const auto c = must_charge(request("charge-key", "pm_card_visa"));
  ASSERT_TRUE(gw.refund(refund_of("refund-key", c.charge_id, usd(100))));
  auto r1 = gw.charge(request("refund-key", "pm_card_visa"));
  ASSERT_FALSE(r1);
  EXPECT_EQ(r1.code(), errc::idempotency_conflict);
  auto r2 = gw.refund(refund_of("charge-key", c.charge_id, usd(100)));
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.code(), errc::idempotency_conflict);
}

// -- timeouts -----------------------------------------------------------------

TEST_F(sandbox, a_timeout_before_processing_is_not_found_and_charges_nothing) {
  const auto r = must_charge(request("k", "pm_sandbox_timeout"));
  EXPECT_EQ(r.status, cs::unknown);
  auto found = gw.retrieve("k");
  ASSERT_FALSE(found);
  EXPECT_EQ(found.code(), errc::not_found);
  EXPECT_EQ(gw.times_collected("k"), 0);
  EXPECT_TRUE(gw.charges().empty());
  EXPECT_TRUE(gw.poll_events(t0.plus_seconds(3600)).empty());
  // Charging again with the same key is safe: the key still guards it.
  EXPECT_EQ(must_charge(request("k", "pm_sandbox_timeout")).status,
            cs::unknown);
  EXPECT_TRUE(gw.charges().empty());
}

TEST_F(sandbox, a_timeout_after_charging_is_resolved_by_retrieve_as_succeeded) {
  const auto r = must_charge(request("k", "pm_sandbox_timeout_after_charge"));
  EXPECT_EQ(r.status, cs::unknown);
  EXPECT_TRUE(r.charge_id.empty());
  auto found = gw.retrieve("k");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->status, cs::succeeded);
  EXPECT_EQ(found->charge_id, "ch_sbx_1");
  EXPECT_EQ(gw.times_collected("k"), 1);
  // Replaying the key returns the stored answer and collects nothing more.
  const auto again
    = must_charge(request("k", "pm_sandbox_timeout_after_charge"));
  EXPECT_EQ(again, *found);
  EXPECT_EQ(gw.times_collected("k"), 1);
  // The webhook resolves it too.
  const auto events = gw.poll_events(t0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "payment_intent.succeeded");
  EXPECT_EQ(events[0].idempotency_key, "k");
  EXPECT_EQ(events[0].charge_id, "ch_sbx_1");
}

// -- asynchronous payments ----------------------------------------------------

TEST_F(sandbox,
       an_async_payment_settles_after_the_delay_and_is_announced_once) {
  const auto r = must_charge(request("k", "pm_sandbox_async"));
  ASSERT_EQ(r.status, cs::pending);
  EXPECT_TRUE(gw.poll_events(t0).empty());
  clk.advance_seconds(59);
  EXPECT_TRUE(gw.poll_events(clk.now()).empty());
  EXPECT_EQ(gw.retrieve("k")->status, cs::pending);
  EXPECT_EQ(gw.times_collected("k"), 0);

  clk.advance_seconds(1);
  const auto events = gw.poll_events(clk.now());
  ASSERT_EQ(events.size(), 1u);
  const gateway_event& e = events[0];
  EXPECT_EQ(e.id, "evt_sbx_1");
  EXPECT_EQ(e.type, "payment_intent.succeeded");
  EXPECT_EQ(e.tenant, tenant_id{"ten_1"});
  EXPECT_EQ(e.idempotency_key, "k");
  EXPECT_EQ(e.charge_id, r.charge_id);
  EXPECT_EQ(e.amount, usd(1999));
  EXPECT_EQ(e.created, t0.plus_seconds(60));
  EXPECT_EQ(gw.retrieve("k")->status, cs::succeeded);
  EXPECT_EQ(gw.times_collected("k"), 1);
  EXPECT_TRUE(gw.poll_events(clk.now().plus_seconds(3600)).empty());
  // A replay returns the first answer, as Stripe does; retrieve is current.
  EXPECT_EQ(must_charge(request("k", "pm_sandbox_async")).status, cs::pending);
  EXPECT_EQ(gw.times_collected("k"), 1);
}

TEST_F(sandbox, a_failing_async_payment_settles_to_insufficient_funds) {
  must_charge(request("k", "pm_sandbox_async_fail"));
  clk.advance_seconds(60);
  const auto events = gw.poll_events(clk.now());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "payment_intent.payment_failed");
  EXPECT_EQ(events[0].decline_code, "insufficient_funds");
  const auto r = gw.retrieve("k");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, cs::declined);
  EXPECT_EQ(r->decline_code, "insufficient_funds");
  EXPECT_EQ(r->decline, dc::soft);
  EXPECT_EQ(gw.times_collected("k"), 0);
}

TEST_F(sandbox, retrieve_settles_by_the_clock_before_anyone_polls) {
  must_charge(request("k", "pm_sandbox_async"));
  clk.advance_seconds(120);
  EXPECT_EQ(gw.retrieve("k")->status, cs::succeeded);
  const auto events = gw.poll_events(clk.now());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].created, t0.plus_seconds(60));
}

TEST_F(sandbox, events_come_in_due_order_with_ids_in_delivery_order) {
  must_charge(request("async", "pm_sandbox_async")); // due t0 + 60
  clk.advance_seconds(10);
  must_charge(request("sync", "pm_card_visa")); // due t0 + 10
  clk.advance_seconds(90);
  must_charge(request("declined", "pm_card_chargeDeclined")); // due t0 + 100
  const auto events = gw.poll_events(clk.now());
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].idempotency_key, "sync");
  EXPECT_EQ(events[0].id, "evt_sbx_1");
  EXPECT_EQ(events[1].idempotency_key, "async");
  EXPECT_EQ(events[1].id, "evt_sbx_2");
  EXPECT_EQ(events[2].idempotency_key, "declined");
  EXPECT_EQ(events[2].type, "payment_intent.payment_failed");
  EXPECT_EQ(events[2].decline_code, "generic_decline");
  EXPECT_EQ(events[2].id, "evt_sbx_3");
}

TEST_F(sandbox, poll_events_returns_only_what_is_due_by_the_given_instant) {
  must_charge(request("sync", "pm_card_visa"));
  must_charge(request("async", "pm_sandbox_async"));
  ASSERT_EQ(gw.poll_events(t0.plus_seconds(-1)).size(), 0u);
  ASSERT_EQ(gw.poll_events(t0).size(), 1u);
  // `now` ahead of the clock settles what is due by then.
  const auto later = gw.poll_events(t0.plus_seconds(60));
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].idempotency_key, "async");
  EXPECT_EQ(gw.retrieve("async")->status, cs::succeeded);
}

TEST(sandbox_config_test, synchronous_events_can_be_turned_off) {
  manual_clock clk{t0};
  sandbox_gateway gw{clk, 1, {.events_for_sync_outcomes = false}};
  ASSERT_TRUE(gw.charge(request("a", "pm_card_visa")));
  ASSERT_TRUE(gw.charge(request("b", "pm_sandbox_async")));
  const auto events = gw.poll_events(t0.plus_seconds(60));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].idempotency_key, "b");
}

TEST(sandbox_config_test, a_lost_answer_is_announced_even_without_sync_events) {
  manual_clock clk{t0};
  sandbox_gateway gw{clk,
                     1,
                     {.timeout_after_commit_ppm = ppm_max,
                      .events_for_sync_outcomes = false}};
  ASSERT_EQ(gw.charge(request("a", "pm_card_visa"))->status, cs::unknown);
  const auto events = gw.poll_events(t0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "payment_intent.succeeded");
  EXPECT_EQ(events[0].idempotency_key, "a");
}

TEST(sandbox_config_test, the_settle_delay_is_configurable) {
  manual_clock clk{t0};
  sandbox_gateway gw{clk, 1, {.settle_delay_s = 3 * seconds_per_day}};
  ASSERT_TRUE(gw.charge(request("a", "pm_sandbox_async")));
  EXPECT_TRUE(gw.poll_events(t0.plus_seconds(3 * seconds_per_day - 1)).empty());
  EXPECT_EQ(gw.poll_events(t0.plus_seconds(3 * seconds_per_day)).size(), 1u);
}

TEST(sandbox_config_test, out_of_range_rates_and_delays_are_invalid) {
  EXPECT_TRUE(validate(sandbox_config{}));
  EXPECT_TRUE(validate(sandbox_config{.timeout_ppm = ppm_max}));
  EXPECT_EQ(validate(sandbox_config{.timeout_ppm = ppm_max + 1}).code(),
            errc::invalid_argument);
  EXPECT_EQ(
    validate(sandbox_config{.timeout_after_commit_ppm = ppm_max + 1}).code(),
    errc::invalid_argument);
  EXPECT_EQ(validate(sandbox_config{.decline_soft_ppm = ppm_max + 1}).code(),
            errc::invalid_argument);
  EXPECT_EQ(validate(sandbox_config{.pending_ppm = ppm_max + 1}).code(),
            errc::invalid_argument);
  EXPECT_EQ(validate(sandbox_config{.settle_delay_s = -1}).code(),
            errc::invalid_argument);
  EXPECT_EQ(
    validate(sandbox_config{.settle_delay_s = settle_delay_s_max + 1}).code(),
    errc::invalid_argument);
}

// -- flaky --------------------------------------------------------------------

TEST_F(sandbox, a_flaky_method_declines_n_fresh_attempts_then_succeeds) {
  const std::string pm = "pm_sandbox_flaky_2";
  const auto a1 = must_charge(request("inv/attempt-1", pm));
  EXPECT_EQ(a1.status, cs::declined);
  EXPECT_EQ(a1.decline_code, "processing_error");
  EXPECT_EQ(a1.decline, dc::soft);
  // A replay is not a new attempt.
  EXPECT_EQ(must_charge(request("inv/attempt-1", pm)), a1);
  const auto a2 = must_charge(request("inv/attempt-2", pm));
  EXPECT_EQ(a2.status, cs::declined);
  const auto a3 = must_charge(request("inv/attempt-3", pm));
  EXPECT_EQ(a3.status, cs::succeeded);
  EXPECT_EQ(gw.times_collected("inv/attempt-3"), 1);
  EXPECT_EQ(must_charge(request("inv2/attempt-1", pm)).status, cs::succeeded);
  // Counted per customer.
  EXPECT_EQ(must_charge(request("other", pm, usd(1999), "cus_2")).status,
            cs::declined);
}

// -- refunds ------------------------------------------------------------------

TEST_F(sandbox, a_charge_can_be_refunded_in_parts_up_to_its_amount) {
  const auto c = must_charge(request("k", "pm_card_visa", usd(1000)));
  auto r1 = gw.refund(refund_of("r1", c.charge_id, usd(300)));
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->refund_id, "re_sbx_1");
  EXPECT_EQ(r1->amount, usd(300));
  auto over = gw.refund(refund_of("r2", c.charge_id, usd(701)));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.code(), errc::invalid_argument);
  auto r2 = gw.refund(refund_of("r2", c.charge_id, usd(700)));
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->refund_id, "re_sbx_2");
  auto more = gw.refund(refund_of("r3", c.charge_id, usd(1)));
  ASSERT_FALSE(more);
  EXPECT_EQ(more.code(), errc::invalid_argument);

  EXPECT_EQ(gw.total_collected(currency::of("USD")), usd(1000));
  EXPECT_EQ(gw.total_refunded(currency::of("USD")), usd(1000));
  EXPECT_EQ(gw.charges()[0].refunded, usd(1000));
  const auto refunds = gw.refunds();
  ASSERT_EQ(refunds.size(), 2u);
  EXPECT_EQ(refunds[1].idempotency_key, "r2");
  EXPECT_EQ(refunds[1].charge_id, c.charge_id);
}

TEST_F(sandbox, a_full_refund_at_once_is_allowed_and_announced) {
  const auto c = must_charge(request("k", "pm_card_visa", usd(1000)));
  ASSERT_TRUE(gw.refund(refund_of("r", c.charge_id, usd(1000))));
  const auto events = gw.poll_events(t0);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].type, "charge.refunded");
  EXPECT_EQ(events[1].idempotency_key, "r");
  EXPECT_EQ(events[1].charge_id, c.charge_id);
  EXPECT_EQ(events[1].amount, usd(1000));
}

TEST_F(sandbox,
       a_refund_key_is_idempotent_and_conflicts_on_a_different_amount) {
  const auto c = must_charge(request("k", "pm_card_visa", usd(1000)));
  auto first = gw.refund(refund_of("r", c.charge_id, usd(400)));
  ASSERT_TRUE(first);
  for (int i = 0; i < 3; ++i) {
    auto again = gw.refund(refund_of("r", c.charge_id, usd(400)));
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *first);
  }
  auto conflict = gw.refund(refund_of("r", c.charge_id, usd(500)));
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.code(), errc::idempotency_conflict);
  EXPECT_EQ(gw.refunds().size(), 1u);
  EXPECT_EQ(gw.total_refunded(currency::of("USD")), usd(400));
}

TEST_F(sandbox, only_a_succeeded_charge_in_its_own_currency_can_be_refunded) {
  const auto ok = must_charge(request("ok", "pm_card_visa", usd(1000)));
  const auto no = must_charge(request("no", "pm_card_chargeDeclined"));
  const auto later = must_charge(request("later", "pm_sandbox_async"));
  auto missing = gw.refund(refund_of("r1", "ch_nope", usd(1)));
  EXPECT_EQ(missing.code(), errc::not_found);
  EXPECT_EQ(gw.refund(refund_of("r2", no.charge_id, usd(1))).code(),
            errc::invalid_transition);
  EXPECT_EQ(gw.refund(refund_of("r3", later.charge_id, usd(1))).code(),
            errc::invalid_transition);
  EXPECT_EQ(gw.refund(refund_of("r4", ok.charge_id, eur(1))).code(),
            errc::currency_mismatch);
  EXPECT_EQ(gw.refund(refund_of("r5", ok.charge_id, usd(0))).code(),
            errc::invalid_argument);
  EXPECT_EQ(gw.refund(refund_of("", ok.charge_id, usd(1))).code(),
            errc::invalid_argument);
  EXPECT_TRUE(gw.refunds().empty());
  // Once the async charge settles it can be refunded.
  clk.advance_seconds(60);
  EXPECT_TRUE(gw.refund(refund_of("r3", later.charge_id, usd(1))));
}

// -- outages ------------------------------------------------------------------

TEST_F(sandbox, an_unavailable_gateway_answers_unavailable_and_does_nothing) {
  const auto c = must_charge(request("before", "pm_card_visa"));
  gw.set_available(false);
  EXPECT_EQ(gw.charge(request("k", "pm_card_visa")).code(), errc::unavailable);
  EXPECT_EQ(gw.retrieve("before").code(), errc::unavailable);
  EXPECT_EQ(gw.refund(refund_of("r", c.charge_id, usd(1))).code(),
            errc::unavailable);
  EXPECT_EQ(gw.charges().size(), 1u);
  gw.set_available(true);
  EXPECT_EQ(must_charge(request("k", "pm_card_visa")).status, cs::succeeded);
}

// -- seeded faults ------------------------------------------------------------

TEST(sandbox_faults, half_the_charges_time_out_at_500000_ppm) {
  manual_clock clk{t0};
  sandbox_gateway gw{clk, 7, {.timeout_ppm = 500'000}};
  int unknown = 0;
  for (int i = 0; i < 10'000; ++i) {
    const std::string key = "k" + std::to_string(i);
    auto r = gw.charge(request(key, "pm_card_visa"));
    ASSERT_TRUE(r);
    if (r->status == cs::unknown) {
      ++unknown;
      ASSERT_EQ(gw.retrieve(key).code(), errc::not_found);
    } else {
      ASSERT_EQ(r->status, cs::succeeded);
    }
  }
  EXPECT_GE(unknown, 4'500);
  EXPECT_LE(unknown, 5'500);
  EXPECT_EQ(gw.charges().size(), static_cast<std::size_t>(10'000 - unknown));
}

TEST(sandbox_faults, a_lost_answer_after_commit_is_told_by_retrieve) {
  manual_clock clk{t0};
  sandbox_gateway gw{clk, 7, {.timeout_after_commit_ppm = ppm_max}};
  for (const char* pm : {"pm_card_visa", "pm_card_chargeDeclinedExpiredCard"}) {
    SCOPED_TRACE(pm);
    const std::string key = std::string{"k_"} + pm;
    auto r = gw.charge(request(key, pm));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, cs::unknown);
    auto found = gw.retrieve(key);
    ASSERT_TRUE(found);
    EXPECT_NE(found->status, cs::unknown);
  }
  EXPECT_EQ(gw.retrieve("k_pm_card_visa")->status, cs::succeeded);
  EXPECT_EQ(gw.times_collected("k_pm_card_visa"), 1);
  EXPECT_EQ(gw.retrieve("k_pm_card_chargeDeclinedExpiredCard")->decline_code,
            "expired_card");
}

TEST(sandbox_faults,
     seeded_soft_declines_and_pending_apply_to_would_be_successes) {
  manual_clock clk{t0};
  sandbox_gateway soft{clk, 7, {.decline_soft_ppm = ppm_max}};
  const auto d = soft.charge(request("a", "pm_card_visa"));
  EXPECT_EQ(d->status, cs::declined);
  EXPECT_EQ(d->decline_code, "processing_error");
  EXPECT_EQ(d->decline, dc::soft);
  // A card decline keeps its own code.
  EXPECT_EQ(
    soft.charge(request("b", "pm_card_chargeDeclinedFraudulent"))->decline_code,
    "fraudulent");

  sandbox_gateway pend{clk, 7, {.pending_ppm = ppm_max}};
  EXPECT_EQ(pend.charge(request("a", "pm_card_visa"))->status, cs::pending);
  clk.advance_seconds(60);
  EXPECT_EQ(pend.retrieve("a")->status, cs::succeeded);
  EXPECT_EQ(pend.times_collected("a"), 1);
}

namespace {

using outcome = std::tuple<cs, std::string, std::string>;

std::vector<outcome> run_faulty_workload(std::uint64_t seed) {
  manual_clock clk{t0};
  sandbox_gateway gw{clk,
                     seed,
                     {.timeout_ppm = 100'000,
                      .timeout_after_commit_ppm = 100'000,
                      .decline_soft_ppm = 100'000,
                      .pending_ppm = 100'000}};
  const char* methods[] = {"pm_card_visa", "pm_card_chargeDeclined",
                           "pm_sandbox_async", "pm_sandbox_flaky_3"};
  std::vector<outcome> out;
  for (int i = 0; i < 2'000; ++i) {
    // Every fifth call replays an earlier key.
    const int n = i % 5 == 4 ? i - 4 : i;
    auto r = gw.charge(request("k" + std::to_string(n), methods[n % 4]));
    out.emplace_back(r->status, r->decline_code, r->charge_id);
    clk.advance_seconds(7);
    for (const auto& e : gw.poll_events(clk.now()))
      out.emplace_back(cs::unknown, e.type, e.id + "/" + e.charge_id);
  }
  return out;
}

} // namespace

TEST(sandbox_faults,
     the_same_seed_replays_the_same_outcomes_and_others_differ) {
  const auto a = run_faulty_workload(2024);
  const auto b = run_faulty_workload(2024);
  const auto c = run_faulty_workload(2025);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

// -- concurrency --------------------------------------------------------------

TEST(sandbox_concurrency,
     eight_threads_with_overlapping_keys_collect_each_key_once) {
  manual_clock clk{t0};
  sandbox_gateway gw{
    clk, 11, {.timeout_ppm = 50'000, .timeout_after_commit_ppm = 50'000}};
  constexpr int threads = 8;
  constexpr int per_thread = 1'000;
  constexpr int keys = 1'500;
  std::vector<std::map<std::string, std::string>> seen(threads);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const std::string key = "k" + std::to_string((t * 331 + i * 7) % keys);
        auto r = gw.charge(request(key, "pm_card_visa"));
        if (r && r->status == cs::succeeded)
          seen[t][key] = r->charge_id;
      }
    });
  }
  for (auto& th : pool)
    th.join();

  std::map<std::string, std::string> id_of;
  for (const auto& m : seen)
    for (const auto& [key, id] : m) {
      const auto it = id_of.emplace(key, id).first;
      EXPECT_EQ(it->second, id) << key;
    }
  std::set<std::string> recorded;
  for (const auto& rec : gw.charges()) {
    EXPECT_TRUE(recorded.insert(rec.idempotency_key).second);
    EXPECT_EQ(rec.times_collected, 1);
  }
  for (int k = 0; k < keys; ++k)
    EXPECT_LE(gw.times_collected("k" + std::to_string(k)), 1);
  EXPECT_GE(recorded.size(), id_of.size());
  EXPECT_EQ(gw.total_collected(currency::of("USD")),
            usd(1999 * static_cast<std::int64_t>(recorded.size())));
}
