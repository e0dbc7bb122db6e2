// The engine's session-9 inputs on the billing harness (memory store):
// the webhook inbox entry committed with the event's effects, invoice
// void, and operator retries of a pending charge. The lifecycle scenarios
// with refunds, disputes, void and operator commands run in scenarios.cpp
// (also under the crash matrix and on PostgreSQL).

#include <gtest/gtest.h>

#include "billing_harness.hpp"
#include "persistence/forwarding_store.hpp"
#include "persistence/memory_store.hpp"
#include "scenarios.hpp"

namespace recur::testing {
namespace {

const subscription_id sub{"sub_1"};
const customer_id cus{"cus_1"};

/// Refuses every commit that carries an inbox entry while `fail_inbox`,
/// as an unreachable database would, and remembers the entry.
class inbox_failing_store final : public forwarding_store {
public:
  using forwarding_store::forwarding_store;
  bool fail_inbox = false;
  std::vector<inbox_entry> refused;

  result<commit_receipt> commit(const unit_of_work& w) override {
    if (fail_inbox && !w.inbox.empty()) {
      refused.insert(refused.end(), w.inbox.begin(), w.inbox.end());
      return make_error(errc::unavailable, "store down");
    }
    return forwarding_store::commit(w);
  }
};

void ok(const status& st) {
  ASSERT_TRUE(st.has_value()) << to_string(st.error().code) << ": "
                              << st.error().detail;
}

std::string status_of(billing_harness& h) {
  auto s = h.state(sub);
  return s ? to_string(s->life) : "?";
}

std::vector<std::string> breaches(billing_harness& h) {
  return check_invariants(h);
}

gateway_event paid_event(billing_harness& h, const std::string& id) {
  const auto c = h.gateway().charges().at(0);
  return gateway_event{.id = id,
                       .type = "payment_intent.succeeded",
                       .tenant = h.tenant(),
                       .idempotency_key = c.idempotency_key,
                       .charge_id = c.charge_id,
                       .amount = c.amount,
                       .decline_code = {},
                       .created = h.clock().now()};
}

TEST(gateway_events,
     a_webhook_and_its_effects_commit_together_or_not_at_all) {
  memory_store inner;
  inbox_failing_store st{inner};
  billing_harness h(st, scenario_start(), 42);
  h.add_flat_plan("basic", 1, 3000);
  ok(h.send(sub, sub_in::create{cus, plan_id{"basic"}, 1, "pm_sandbox_async",
                                0}));
  ASSERT_EQ(status_of(h), "incomplete");
  // The payment's webhook arrives while the store is down: nothing of it
  // is stored, neither the inbox entry nor the payment.
  st.fail_inbox = true;
  EXPECT_FALSE(h.advance_days(1).has_value());
  ASSERT_EQ(st.refused.size(), 1U);
  const auto event_id = st.refused[0].event_id;
  EXPECT_EQ(st.refused[0].gateway, "sandbox");
  EXPECT_FALSE(*inner.inbox_contains(h.tenant(), "sandbox", event_id));
  EXPECT_EQ(h.invoices(sub).at(0).status, "open");
  EXPECT_EQ(status_of(h), "incomplete");
  // The gateway delivers it again: applied, with its inbox entry.
  st.fail_inbox = false;
  ok(h.deliver(paid_event(h, event_id)));
  EXPECT_TRUE(*inner.inbox_contains(h.tenant(), "sandbox", event_id));
  EXPECT_EQ(h.invoices(sub).at(0).status, "paid");
  EXPECT_EQ(status_of(h), "active");
  // A replay commits nothing: the inbox refuses its unit of work.
  const auto version = h.state(sub)->version;
  auto replay = h.deliver(paid_event(h, event_id));
  ASSERT_FALSE(replay.has_value());
  EXPECT_EQ(replay.error().code, errc::already_exists);
  EXPECT_EQ(h.state(sub)->version, version);
  EXPECT_EQ(h.balance(account::cash), 3000);
  EXPECT_TRUE(breaches(h).empty());
}

TEST(gateway_events, an_event_that_changes_nothing_commits_its_inbox_entry_alone) {
  memory_store st;
  billing_harness h(st, scenario_start(), 42);
  h.add_flat_plan("basic", 1, 3000);
  ok(h.send(sub, sub_in::create{cus, plan_id{"basic"}, 1, "pm_card_visa", 0}));
  auto agg = h.aggregate(sub);
  ASSERT_TRUE(agg.has_value());
  rng gen{1};
  // A late outcome of a charge already settled.
  sub_in::gateway_notice late{paid_event(h, "evt_late"), "sandbox", {},
                              std::nullopt};
  auto d = handle(*agg, h.tenant(), sub, late, h.env(), h.clock().now(), gen);
  ASSERT_TRUE(d.has_value()) << d.error().detail;
  ASSERT_EQ(d->work.inbox.size(), 1U);
  EXPECT_EQ(d->work.inbox[0].event_id, "evt_late");
  EXPECT_TRUE(d->work.events.empty());
  EXPECT_TRUE(d->work.ledger.empty());
  EXPECT_TRUE(d->work.outbox.empty());
  // One about a subscription that does not exist: the entry alone too.
  auto none = handle(subscription_aggregate{}, h.tenant(),
                     subscription_id{"sub_gone"}, late, h.env(),
                     h.clock().now(), gen);
  ASSERT_TRUE(none.has_value()) << none.error().detail;
  EXPECT_EQ(none->work.inbox.size(), 1U);
  EXPECT_TRUE(none->work.events.empty());
}

TEST(timers, a_delivered_timer_the_store_no_longer_has_pending_changes_and_completes_nothing) {
  memory_store st;
  billing_harness h(st, scenario_start(), 42);
  h.add_flat_plan("basic", 1, 3000);
  ok(h.send(sub, sub_in::create{cus, plan_id{"basic"}, 1, "pm_card_visa", 14}));
  auto agg = h.aggregate(sub);
  ASSERT_TRUE(agg.has_value());
  h.clock().advance_seconds(14 * seconds_per_day);
  auto claimed = st.claim_due_timers(h.clock().now(), 10, 60, "test");
  ASSERT_TRUE(claimed.has_value());
  ASSERT_EQ(claimed->size(), 1U);
  const timer_record& t = claimed->front().timer;
  rng gen{1};
  // Still pending: the trial ends, and the timer is completed.
  auto due = handle(*agg, h.tenant(), sub, sub_in::timer_due{t},
                    h.env(), h.clock().now(), gen);
  ASSERT_TRUE(due.has_value()) << due.error().detail;
  EXPECT_EQ(due->work.timers_to_complete, std::vector<std::string>{t.id});
  EXPECT_FALSE(due->work.events.empty());
  // No longer pending (cancelled after its claim): nothing at all.
  auto gone = handle(*agg, h.tenant(), sub, sub_in::timer_due{t, false},
                     h.env(), h.clock().now(), gen);
  ASSERT_TRUE(gone.has_value()) << gone.error().detail;
  EXPECT_TRUE(gone->work.empty());
  EXPECT_TRUE(gone->calls.empty());
  EXPECT_EQ(gone->next.sub, agg->sub);
}

TEST(invoice_void, voiding_the_first_invoice_of_an_incomplete_subscription_expires_it) {
  memory_store st;
  billing_harness h(st, scenario_start(), 42);
  h.add_flat_plan("basic", 1, 3000);
  ok(h.send(sub, sub_in::create{cus, plan_id{"basic"}, 1,
                                "pm_card_chargeDeclined", 0}));
  ASSERT_EQ(status_of(h), "incomplete");
  const auto inv = h.invoices(sub).at(0).id;
  ok(h.send(sub, sub_in::void_invoice{inv}));
  EXPECT_EQ(status_of(h), "canceled(incomplete_expired)");
  EXPECT_EQ(h.invoices(sub).at(0).status, "void");
  EXPECT_EQ(h.balance(account::receivable), 0);
  // The invoice saga's retry timer is gone with it.
  ok(h.advance_days(3));
  EXPECT_EQ(h.db().list_attempts(h.tenant(), inv)->size(), 1U);
  EXPECT_TRUE(breaches(h).empty());
}

TEST(invoice_void, an_invoice_with_a_charge_in_flight_is_not_voided) {
  memory_store st;
  billing_harness h(st, scenario_start(), 42);
  h.add_flat_plan("basic", 1, 3000);
  ok(h.send(sub, sub_in::create{cus, plan_id{"basic"}, 1, "pm_sandbox_async",
                                0}));
  const auto before = h.state(sub);
  const auto inv = h.invoices(sub).at(0).id;
  auto refused = h.send(sub, sub_in::void_invoice{inv});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, errc::invalid_transition);
  EXPECT_EQ(*h.state(sub), *before);
  EXPECT_EQ(h.invoices(sub).at(0).status, "open");
  ok(h.advance_days(1));
  EXPECT_EQ(h.invoices(sub).at(0).status, "paid");
  EXPECT_TRUE(breaches(h).empty());
}

TEST(invoice_void, voiding_a_proration_invoice_compensates_its_plan_change) {
  memory_store st;
  billing_harness h(st, scenario_start(), 42);
  h.add_flat_plan("basic", 1, 3000);
  h.add_flat_plan("pro", 1, 6000);
  ok(h.send(sub, sub_in::create{cus, plan_id{"basic"}, 1, "pm_card_visa", 0}));
  ok(h.advance_days(10));
  ok(h.send(sub, sub_in::update_payment_method{"pm_card_chargeDeclined"}));
  ok(h.send(sub, sub_in::change_plan{plan_id{"pro"}, 1}));
  auto invs = h.invoices(sub);
  ASSERT_EQ(invs.size(), 2U);
  std::string proration;
  for (const auto& i : invs)
    if (i.status == "open")
      proration = i.id.value;
  ASSERT_FALSE(proration.empty());
  ok(h.send(sub, sub_in::void_invoice{invoice_id{proration}}));
  const auto after = h.state(sub);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->plan.value, "basic");
  EXPECT_EQ(status_of(h), "active");
  EXPECT_TRUE(after->sagas.empty());
  for (const auto& i : h.invoices(sub)) {
    if (i.id.value == proration) {
      EXPECT_EQ(i.status, "void");
    }
  }
  EXPECT_EQ(h.balance(account::receivable), 0);
  bool compensated = false;
  for (const auto& g : h.sagas())
    if (g.type == "plan_change")
      compensated = g.status == saga_status::compensated;
  EXPECT_TRUE(compensated);
  EXPECT_TRUE(breaches(h).empty());
}

TEST(operator_commands, retrying_a_pending_charge_asks_the_gateway_under_the_same_key) {
  memory_store st;
  billing_harness h(st, scenario_start(), 42);
  h.add_flat_plan("basic", 1, 3000);
  ok(h.send(sub, sub_in::create{cus, plan_id{"basic"}, 1, "pm_sandbox_async",
                                0}));
  std::string saga;
  const auto state = h.state(sub);
  ASSERT_TRUE(state.has_value());
  for (const auto& [id, type] : state->sagas)
    if (type == "invoice")
      saga = id;
  ASSERT_FALSE(saga.empty());
  ok(h.send(sub, sub_in::retry_saga{saga_id{saga}}));
  // Still pending at the gateway: the same single attempt, waiting again.
  const auto inv = h.invoices(sub).at(0).id;
  EXPECT_EQ(h.db().list_attempts(h.tenant(), inv)->size(), 1U);
  EXPECT_EQ(h.invoices(sub).at(0).status, "open");
  // Compensating it now would lose track of the charge.
  auto refused = h.send(sub, sub_in::compensate_saga{saga_id{saga}});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, errc::invalid_transition);
  ok(h.advance_days(1));
  EXPECT_EQ(h.invoices(sub).at(0).status, "paid");
  EXPECT_EQ(h.gateway().times_collected(inv.value + "/attempt-1"), 1);
  EXPECT_EQ(h.db().list_attempts(h.tenant(), inv)->size(), 1U);
  // An unknown saga: not live.
  auto unknown = h.send(sub, sub_in::retry_saga{saga_id{"sub_1/invoice/99"}});
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, errc::invalid_transition);
  EXPECT_TRUE(breaches(h).empty());
}

} // namespace
} // namespace recur::testing
