#include "scenarios.hpp"

#include <algorithm>
#include <sstream>

#include <gtest/gtest.h>

namespace recur::testing {

namespace {

const subscription_id sub{"sub_1"};
const customer_id cus{"cus_1"};

subscription_state S(billing_harness& h) {
  auto s = h.state(sub);
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().detail);
  return s ? *s : subscription_state{};
}

std::string status_of(billing_harness& h) {
  return to_string(S(h).life);
}

std::vector<std::string> invoice_statuses(billing_harness& h) {
  std::vector<std::string> out;
  for (const auto& i : h.invoices(sub))
    out.push_back(i.status);
  return out;
}

void ok(const status& st) {
  ASSERT_TRUE(st.has_value()) << to_string(st.error().code) << ": "
                              << st.error().detail;
}

void create(billing_harness& h, const std::string& pm,
            std::optional<std::int32_t> trial, const std::string& plan = "basic") {
  ok(h.send(sub, sub_in::create{cus, plan_id{plan}, 1, pm, trial}));
}

void plans(billing_harness& h) {
  h.add_flat_plan("basic", 1, 3000, 14);
  h.add_flat_plan("pro", 1, 6000, 14);
}

void no_breaches(billing_harness& h) {
  auto b = check_invariants(h);
  EXPECT_TRUE(b.empty()) << [&] {
    std::string all;
    for (const auto& x : b)
      all += x + "\n";
    return all;
  }();
}

// -- the scenarios --------------------------------------------------------------

void trial_then_twelve_renewals(billing_harness& h) {
  plans(h);
  create(h, "pm_card_visa", std::nullopt); // the plan's 14-day trial
  EXPECT_EQ(status_of(h), "trialing");
  EXPECT_TRUE(h.invoices(sub).empty());
  ok(h.advance_days(14));
  EXPECT_EQ(status_of(h), "active");
  ASSERT_EQ(h.invoices(sub).size(), 1u);
  EXPECT_EQ(h.invoices(sub)[0].status, "paid");
  // Twelve monthly renewals after the first paid period.
  auto first_end = S(h).period.end;
  ok(h.advance_to(first_end));
  for (int i = 0; i < 11; ++i)
    ok(h.advance_to(S(h).period.end));
  auto invs = h.invoices(sub);
  ASSERT_EQ(invs.size(), 13u);
  for (const auto& i : invs) {
    EXPECT_EQ(i.status, "paid") << i.id.value;
    EXPECT_EQ(i.amount_paid_minor, 3000);
  }
  EXPECT_EQ(status_of(h), "active");
  EXPECT_EQ(h.balance(account::cash), 13 * 3000);
  EXPECT_EQ(h.balance(account::receivable), 0);
  EXPECT_EQ(h.gateway().total_collected(currency::of("USD")).amount_minor(),
            13 * 3000);
  no_breaches(h);
}

void soft_decline_then_recovered(billing_harness& h) {
  plans(h);
  create(h, "pm_sandbox_flaky_2", 7);
  ok(h.advance_days(7));
  // Declined once at trial end: still active, the invoice saga retries.
  EXPECT_EQ(status_of(h), "active");
  EXPECT_EQ(invoice_statuses(h), std::vector<std::string>{"open"});
  ok(h.advance_days(4)); // retries after ~1 and ~2 days
  EXPECT_EQ(status_of(h), "active");
  EXPECT_EQ(invoice_statuses(h), std::vector<std::string>{"paid"});
  auto attempts = h.db().list_attempts(h.tenant(), h.invoices(sub)[0].id);
  ASSERT_TRUE(attempts.has_value());
  ASSERT_EQ(attempts->size(), 3u);
  EXPECT_EQ((*attempts)[0].status, "failed_soft");
  EXPECT_EQ((*attempts)[1].status, "failed_soft");
  EXPECT_EQ((*attempts)[2].status, "succeeded");
  EXPECT_EQ(h.balance(account::cash), 3000);
  no_breaches(h);
}

void hard_decline_dunning_suspend_pay(billing_harness& h) {
  plans(h);
  create(h, "pm_card_chargeDeclinedExpiredCard", 7);
  ok(h.advance_days(7));
  EXPECT_EQ(status_of(h), "past_due");
  EXPECT_EQ(invoice_statuses(h), std::vector<std::string>{"open"});
  ok(h.advance_days(13));
  EXPECT_EQ(status_of(h), "past_due");
  ok(h.advance_days(1)); // day 14 of dunning
  EXPECT_EQ(status_of(h), "suspended");
  EXPECT_FALSE(S(h).entitled);
  // The customer brings a working card and pays.
  ok(h.send(sub, sub_in::update_payment_method{"pm_card_visa"}));
  auto inv = h.invoices(sub).at(0).id;
  ok(h.send(sub, sub_in::pay_invoice{inv}));
  EXPECT_EQ(status_of(h), "active");
  EXPECT_TRUE(S(h).entitled);
  EXPECT_EQ(invoice_statuses(h), std::vector<std::string>{"paid"});
  EXPECT_TRUE(S(h).sagas.empty()) << "dunning and suspension ended: " << [&] {
    std::string all;
    for (const auto& [id, t] : S(h).sagas)
      all += id + " ";
    return all;
  }();
  bool dunning_completed = false;
  bool suspension_compensated = false;
  for (const auto& s : h.sagas()) {
    if (s.type == "dunning")
      dunning_completed = s.status == saga_status::completed;
    if (s.type == "suspension")
      suspension_compensated = s.status == saga_status::compensated;
  }
  EXPECT_TRUE(dunning_completed);
  EXPECT_TRUE(suspension_compensated);
  // Paying again is refused and changes nothing.
  auto again = h.send(sub, sub_in::pay_invoice{inv});
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, errc::invalid_transition);
  // The dunning timers are gone: a month later it simply renewed.
  ok(h.advance_days(30));
  EXPECT_EQ(status_of(h), "active");
  no_breaches(h);
}

void dunning_exhausted(billing_harness& h) {
  plans(h);
  create(h, "pm_card_chargeDeclined", 7); // soft, but it never succeeds
  ok(h.advance_days(7));
  EXPECT_EQ(status_of(h), "active"); // retrying
  ok(h.advance_days(10));            // 4 attempts spent → dunning
  EXPECT_EQ(status_of(h), "past_due");
  ok(h.advance_days(45));
  auto s = S(h);
  EXPECT_EQ(to_string(s.life), "canceled(nonpayment)");
  EXPECT_FALSE(s.entitled);
  auto invs = h.invoices(sub);
  ASSERT_GE(invs.size(), 1u);
  EXPECT_EQ(invs[0].status, "uncollectible");
  std::int64_t written_off = 0;
  for (const auto& i : invs)
    if (i.status == "uncollectible")
      written_off += i.amount_due_minor;
  EXPECT_EQ(h.balance(account::bad_debt), written_off);
  EXPECT_EQ(h.balance(account::receivable), 0);
  EXPECT_EQ(h.balance(account::cash), 0);
  no_breaches(h);
}

void incomplete_expires(billing_harness& h) {
  plans(h);
  create(h, "pm_card_chargeDeclinedExpiredCard", 0);
  EXPECT_EQ(status_of(h), "incomplete");
  EXPECT_EQ(invoice_statuses(h), std::vector<std::string>{"open"});
  ok(h.advance_to(scenario_start().plus_seconds(22 * seconds_per_hour)));
  EXPECT_EQ(status_of(h), "incomplete");
  ok(h.advance_to(scenario_start().plus_seconds(23 * seconds_per_hour)));
  EXPECT_EQ(status_of(h), "canceled(incomplete_expired)");
  EXPECT_EQ(invoice_statuses(h), std::vector<std::string>{"void"});
  EXPECT_EQ(h.balance(account::receivable), 0);
  EXPECT_EQ(h.balance(account::deferred_revenue), 0);
  no_breaches(h);
}

void upgrade_and_downgrade(billing_harness& h) {
  plans(h); // April has 30 days
  create(h, "pm_card_visa", 0);
  EXPECT_EQ(status_of(h), "active");
  ok(h.advance_days(10));
  ok(h.send(sub, sub_in::change_plan{plan_id{"pro"}, 1}));
  auto s = S(h);
  EXPECT_EQ(s.plan.value, "pro");
  auto invs = h.invoices(sub);
  ASSERT_EQ(invs.size(), 2u);
  // 20 of 30 days left: -3000*20/30 + 6000*20/30 = -2000 + 4000.
  const auto& pr = invs[1].period_start == invs[0].period_start
                     ? (invs[1].id.value.find("_pc") != std::string::npos
                          ? invs[1]
                          : invs[0])
                     : invs[1];
  EXPECT_EQ(pr.total_minor, 2000);
  EXPECT_EQ(pr.status, "paid");
  ok(h.advance_days(10));
  ok(h.send(sub, sub_in::change_plan{plan_id{"basic"}, 1}));
  s = S(h);
  EXPECT_EQ(s.plan.value, "basic");
  // 10 of 30 days left: -6000*10/30 + 3000*10/30 = -1000: a credit.
  EXPECT_EQ(s.credit_minor, 1000);
  ok(h.advance_to(s.period.end));
  invs = h.invoices(sub);
  const auto& may = invs.back();
  EXPECT_EQ(may.total_minor, 3000);
  EXPECT_EQ(may.amount_due_minor, 2000);
  EXPECT_EQ(may.status, "paid");
  EXPECT_NE(may.lines_json.find(R"({"amount":-1000,"kind":"credit_applied"})"),
            std::string::npos)
    << may.lines_json;
  EXPECT_EQ(S(h).credit_minor, 0);
  EXPECT_EQ(h.balance(account::cash), 3000 + 2000 + 2000);
  EXPECT_EQ(h.balance(account::receivable), 0);
  // A plan change to an unknown plan is refused and changes nothing.
  auto before = S(h);
  auto bad = h.send(sub, sub_in::change_plan{plan_id{"nope"}, 1});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, errc::not_found);
  EXPECT_EQ(S(h), before);
  no_breaches(h);
}

void cancel_immediately_with_credit(billing_harness& h) {
  plans(h);
  create(h, "pm_card_visa", 0);
  ok(h.advance_days(15)); // 15 of 30 days used
  ok(h.send(sub, sub_in::cancel{false}));
  auto s = S(h);
  EXPECT_EQ(to_string(s.life), "canceled(requested)");
  EXPECT_FALSE(s.entitled);
  EXPECT_EQ(h.gateway().total_refunded(currency::of("USD")).amount_minor(),
            1500);
  EXPECT_EQ(h.balance(account::cash), 1500);
  EXPECT_EQ(h.balance(account::receivable), 0);
  // Nothing renews afterwards.
  ok(h.advance_days(40));
  EXPECT_EQ(h.invoices(sub).size(), 1u);
  auto again = h.send(sub, sub_in::cancel{false});
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, errc::invalid_transition);
  no_breaches(h);
}

void cancel_at_period_end(billing_harness& h) {
  plans(h);
  create(h, "pm_card_visa", 0);
  ok(h.advance_days(5));
  ok(h.send(sub, sub_in::cancel{true}));
  EXPECT_EQ(status_of(h), "active+cancel_at_period_end");
  ok(h.advance_days(30));
  EXPECT_EQ(status_of(h), "canceled(requested)");
  EXPECT_EQ(h.invoices(sub).size(), 1u);
  EXPECT_EQ(h.gateway().total_refunded(currency::of("USD")).amount_minor(), 0);
  EXPECT_EQ(h.balance(account::cash), 3000);
  no_breaches(h);
}

void pause_and_resume(billing_harness& h) {
  plans(h);
  create(h, "pm_card_visa", 0);
  ok(h.send(sub, sub_in::pause{}));
  EXPECT_EQ(status_of(h), "paused(requested)");
  ok(h.advance_days(35)); // the period rolls, nothing is billed
  EXPECT_EQ(h.invoices(sub).size(), 1u);
  ok(h.send(sub, sub_in::resume{}));
  EXPECT_EQ(status_of(h), "active");
  ok(h.advance_to(S(h).period.end));
  EXPECT_EQ(h.invoices(sub).size(), 2u);
  EXPECT_EQ(invoice_statuses(h).back(), "paid");
  no_breaches(h);
}

void invalid_commands_change_nothing(billing_harness& h) {
  plans(h);
  auto missing = h.send(sub, sub_in::pause{});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, errc::not_found);
  create(h, "pm_card_visa", std::nullopt);
  auto before = S(h);
  auto events_before = h.db().load_events(h.tenant(), sub, 1)->size();
  struct bad {
    subscription_input in;
    errc code;
  };
  std::vector<bad> cases{
    {sub_in::resume{}, errc::invalid_transition},
    {sub_in::pause{}, errc::invalid_transition}, // trialing cannot pause
    {sub_in::uncancel{}, errc::invalid_transition},
    {sub_in::change_plan{plan_id{"pro"}, 1}, errc::invalid_transition},
    {sub_in::change_plan{plan_id{"pro"}, 0}, errc::invalid_argument},
    {sub_in::update_payment_method{""}, errc::invalid_argument},
    {sub_in::pay_invoice{invoice_id{"inv_nope"}}, errc::invalid_transition},
    {sub_in::create{cus, plan_id{"basic"}, 1, "pm_card_visa", 0},
     errc::already_exists},
  };
  for (const auto& c : cases) {
    auto r = h.send(sub, c.in);
    ASSERT_FALSE(r.has_value()) << input_name(c.in);
    EXPECT_EQ(r.error().code, c.code) << input_name(c.in);
    EXPECT_EQ(S(h), before) << input_name(c.in);
  }
  EXPECT_EQ(h.db().load_events(h.tenant(), sub, 1)->size(), events_before);
  auto other = h.send(subscription_id{"sub_2"},
                      sub_in::create{cus, plan_id{"gold"}, 1, "pm_card_visa", 0});
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().code, errc::not_found);
  EXPECT_EQ(h.db().load_history(h.tenant(), subscription_id{"sub_2"})->version,
            0);
  no_breaches(h);
}

void async_and_timeouts(billing_harness& h) {
  plans(h);
  // Pending: settled later by the gateway's event.
  create(h, "pm_sandbox_async", 0);
  EXPECT_EQ(status_of(h), "incomplete");
  ok(h.advance_days(1));
  EXPECT_EQ(status_of(h), "active");
  EXPECT_EQ(invoice_statuses(h), std::vector<std::string>{"paid"});
  // A lost answer: resolved by asking under the same key, collected once.
  ok(h.send(sub, sub_in::update_payment_method{"pm_sandbox_timeout_after_charge"}));
  ok(h.advance_to(S(h).period.end));
  ok(h.advance_days(1));
  auto invs = h.invoices(sub);
  ASSERT_EQ(invs.size(), 2u);
  EXPECT_EQ(invs[1].status, "paid");
  EXPECT_EQ(h.gateway().times_collected(invs[1].id.value + "/attempt-1"), 1);
  EXPECT_EQ(h.balance(account::cash), 6000);
  no_breaches(h);
}

// -- gateway events, void, operator commands (session 9) ---------------------

/// The live saga of `type` (its id), "" when none.
std::string live_saga(billing_harness& h, const std::string& type) {
  for (const auto& [id, t] : S(h).sagas)
    if (t == type)
      return id;
  return {};
}

std::int64_t outbox_count(billing_harness& h, const std::string& type) {
  std::int64_t n = 0;
  auto rows = h.db().fetch_unpublished(0, 10'000);
  if (rows)
    for (const auto& r : *rows)
      if (r.tenant == h.tenant() && r.message.type == type)
        ++n;
  return n;
}

std::optional<errc> code_of(const status& st) {
  if (st)
    return std::nullopt;
  return st.error().code;
}

void refund_and_dispute_at_the_gateway(billing_harness& h) {
  plans(h);
  create(h, "pm_card_visa", 0);
  ASSERT_EQ(status_of(h), "active");
  const auto usd = currency::of("USD");
  const auto charge = h.gateway().charges().at(0);
  const auto inv = h.invoices(sub).at(0).id;
  // A refund made in the gateway's dashboard: no key of ours, found by its
  // charge id; the invoice stays paid (as in Stripe).
  auto refunded = h.gateway().refund(
    refund_request{"dashboard/refund-1", charge.charge_id, money{1000, usd}});
  ASSERT_TRUE(refunded.has_value());
  ok(h.advance_to(h.clock().now()));
  EXPECT_EQ(h.balance(account::refunds), 1000);
  EXPECT_EQ(h.balance(account::cash), 2000);
  EXPECT_EQ(invoice_statuses(h), std::vector<std::string>{"paid"});
  EXPECT_EQ(h.invoices(sub).at(0).amount_paid_minor, 3000);
  EXPECT_EQ(outbox_count(h, "payment.refunded"), 1);
  // The same refund told again by another event (refund.created after
  // charge.refunded): nothing more.
  gateway_event again{.id = "evt_refund_created",
                      .type = "charge.refunded",
                      .tenant = h.tenant(),
                      .idempotency_key = "dashboard/refund-1",
                      .charge_id = charge.charge_id,
                      .amount = money{1000, usd},
                      .decline_code = {},
                      .created = h.clock().now()};
  ok(h.deliver(again));
  EXPECT_EQ(h.balance(account::refunds), 1000);
  EXPECT_EQ(outbox_count(h, "payment.refunded"), 1);
  // A dispute (Stripe copies no key to it): DR disputes / CR cash, the
  // lifecycle unchanged; the same dispute id again changes nothing.
  gateway_event dispute{.id = "evt_dispute_1",
                        .type = "charge.dispute.created",
                        .tenant = h.tenant(),
                        .idempotency_key = {},
                        .charge_id = charge.charge_id,
                        .amount = money{2000, usd},
                        .decline_code = {},
                        .created = h.clock().now()};
  ok(h.send(sub, sub_in::gateway_notice{dispute, "sandbox", "dp_1", inv}));
  dispute.id = "evt_dispute_1_again";
  ok(h.send(sub, sub_in::gateway_notice{dispute, "sandbox", "dp_1", inv}));
  EXPECT_EQ(h.balance(account::disputes), 2000);
  EXPECT_EQ(h.balance(account::cash), 0);
  EXPECT_EQ(outbox_count(h, "invoice.disputed"), 1);
  EXPECT_EQ(status_of(h), "active");
  EXPECT_TRUE(S(h).entitled);
  // A cancellation credits nothing more: the payment is refunded or held.
  ok(h.send(sub, sub_in::cancel{false}));
  EXPECT_EQ(status_of(h), "canceled(requested)");
  EXPECT_EQ(h.balance(account::refunds), 1000);
  no_breaches(h);
}

void void_of_a_past_due_invoice_recovers(billing_harness& h) {
  plans(h);
  create(h, "pm_card_chargeDeclinedExpiredCard", 7);
  ok(h.advance_days(7));
  ASSERT_EQ(status_of(h), "past_due");
  const auto inv = h.invoices(sub).at(0).id;
  const auto dunning = live_saga(h, "dunning");
  ASSERT_FALSE(dunning.empty());
  // Dunning is the lifecycle's to undo, and it waits on its schedule.
  EXPECT_EQ(code_of(h.send(sub, sub_in::compensate_saga{saga_id{dunning}})),
            errc::invalid_transition);
  EXPECT_EQ(code_of(h.send(sub, sub_in::retry_saga{saga_id{dunning}})),
            errc::invalid_transition);
  ok(h.send(sub, sub_in::void_invoice{inv}));
  EXPECT_EQ(status_of(h), "active");
  EXPECT_TRUE(S(h).entitled);
  EXPECT_TRUE(S(h).sagas.empty());
  EXPECT_EQ(invoice_statuses(h), std::vector<std::string>{"void"});
  EXPECT_EQ(h.balance(account::receivable), 0);
  EXPECT_EQ(outbox_count(h, "invoice.voided"), 1);
  EXPECT_EQ(code_of(h.send(sub, sub_in::void_invoice{inv})),
            errc::invalid_transition);
  // The ladder's timers are gone: no suspension on day 14.
  ok(h.advance_days(20));
  EXPECT_EQ(status_of(h), "active");
  no_breaches(h);
}

void operator_retry_and_compensate(billing_harness& h) {
  plans(h);
  // Fails twice, then succeeds.
  create(h, "pm_sandbox_flaky_2", 7);
  ok(h.advance_days(7));
  ASSERT_EQ(invoice_statuses(h), std::vector<std::string>{"open"});
  const auto inv = h.invoices(sub).at(0).id;
  const auto saga = live_saga(h, "invoice");
  ASSERT_FALSE(saga.empty());
  // Retry now: the next attempts run at once, each under a new key.
  ok(h.send(sub, sub_in::retry_saga{saga_id{saga}}));
  EXPECT_EQ(invoice_statuses(h), std::vector<std::string>{"open"});
  ok(h.send(sub, sub_in::retry_saga{saga_id{saga}}));
  EXPECT_EQ(invoice_statuses(h), std::vector<std::string>{"paid"});
  auto attempts = h.db().list_attempts(h.tenant(), inv);
  ASSERT_TRUE(attempts.has_value());
  ASSERT_EQ(attempts->size(), 3u);
  EXPECT_EQ(attempts->back().status, "succeeded");
  EXPECT_FALSE(attempts->back().charge_id.empty());
  EXPECT_EQ(h.gateway().times_collected(inv.value + "/attempt-3"), 1);
  // A finished saga takes no operator command.
  EXPECT_EQ(code_of(h.send(sub, sub_in::retry_saga{saga_id{saga}})),
            errc::invalid_transition);
  EXPECT_EQ(code_of(h.send(sub, sub_in::compensate_saga{saga_id{saga}})),
            errc::invalid_transition);
  // Next period: a soft decline, and the operator gives up on the invoice.
  ok(h.send(sub, sub_in::update_payment_method{"pm_card_chargeDeclined"}));
  ok(h.advance_to(S(h).period.end));
  ASSERT_EQ(h.invoices(sub).size(), 2u);
  const auto second = live_saga(h, "invoice");
  ASSERT_FALSE(second.empty());
  ok(h.send(sub, sub_in::compensate_saga{saga_id{second}}));
  EXPECT_EQ(h.invoices(sub).at(1).status, "void");
  EXPECT_EQ(status_of(h), "active");
  EXPECT_EQ(h.balance(account::receivable), 0);
  bool compensated = false;
  for (const auto& g : h.sagas())
    if (g.id.value == second)
      compensated = g.status == saga_status::compensated;
  EXPECT_TRUE(compensated);
  no_breaches(h);
}

} // namespace

instant scenario_start() { return utc(2026, 4, 1); }

std::vector<scenario> all_scenarios(bool) {
  return {
    {"trial_then_twelve_renewals", trial_then_twelve_renewals},
    {"soft_decline_then_recovered", soft_decline_then_recovered},
    {"hard_decline_dunning_suspend_pay", hard_decline_dunning_suspend_pay},
    {"dunning_exhausted", dunning_exhausted},
    {"incomplete_expires", incomplete_expires},
    {"upgrade_and_downgrade", upgrade_and_downgrade},
    {"cancel_immediately_with_credit", cancel_immediately_with_credit},
    {"cancel_at_period_end", cancel_at_period_end},
    {"pause_and_resume", pause_and_resume},
    {"invalid_commands_change_nothing", invalid_commands_change_nothing},
    {"async_and_timeouts", async_and_timeouts},
    {"refund_and_dispute_at_the_gateway", refund_and_dispute_at_the_gateway},
    {"void_of_a_past_due_invoice_recovers",
     void_of_a_past_due_invoice_recovers},
    {"operator_retry_and_compensate", operator_retry_and_compensate},
  };
}

std::string digest(billing_harness& h) {
  std::ostringstream out;
  auto subs = h.db().list_subscriptions(h.tenant(), std::nullopt, std::nullopt,
                                        "", 10'000);
  if (subs)
    for (const auto& row : subs->items) {
      auto s = h.state(row.id);
      if (!s)
        continue;
      out << row.id.value << ' ' << to_string(s->life) << ' ' << s->plan.value
          << ' ' << s->quantity << " credit=" << s->credit_minor
          << " entitled=" << s->entitled << " period=" << s->period.start.unix_s
          << '-' << s->period.end.unix_s << " live=" << s->sagas.size()
          << '\n';
      for (const auto& i : h.invoices(row.id))
        out << "  " << i.id.value << ' ' << i.status << ' ' << i.total_minor
            << ' ' << i.amount_due_minor << ' ' << i.amount_paid_minor << '\n';
    }
  auto bal = h.db().ledger_balances(h.tenant());
  if (bal) {
    std::vector<std::string> lines; // the port leaves the order open
    for (const auto& b : *bal)
      lines.push_back(std::string{to_string(b.account_name)} + ' ' + b.currency
                      + ' ' + std::to_string(b.balance_minor));
    std::sort(lines.begin(), lines.end());
    for (const auto& l : lines)
      out << l << '\n';
  }
  auto usd = currency::of("USD");
  out << "collected=" << h.gateway().total_collected(usd).amount_minor()
      << " refunded=" << h.gateway().total_refunded(usd).amount_minor() << '\n';
  std::vector<std::string> sagas;
  for (const auto& s : h.sagas())
    sagas.push_back(s.id.value + ' ' + std::string{to_string(s.status)});
  std::sort(sagas.begin(), sagas.end());
  for (const auto& s : sagas)
    out << s << '\n';
  return out.str();
}

} // namespace recur::testing
