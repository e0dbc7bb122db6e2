// The webhook route over the PostgreSQL store (label pg): the tenant's
// secret read from gateway_configs, the inbox (processed_webhooks) written
// once per event id under row-level security, and nothing stored for a
// refused delivery. A recording dispatch stands in for the orchestrator.
// Each test gets a migrated, empty database (tests/persistence/pg_testdb.hpp).

#include <memory>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/app.hpp"
#include "api/routes_webhooks.hpp"
#include "gateways/sandbox_webhooks.hpp"
#include "gateways/webhook_signature.hpp"
#include "persistence/pg_store.hpp"
#include "tests/persistence/pg_testdb.hpp"

using namespace recur;
using namespace recur::api;
using nlohmann::json;

namespace {

constexpr const char* secret = "whsec_pg_secret";
const tenant_id tenant_a{"ten_a"};
const tenant_id tenant_b{"ten_b"};

struct always_ready final : readiness_probe {
  bool database_ok() override { return true; }
};

gateway_event paid(std::string id, const tenant_id& t) {
  return gateway_event{.id = std::move(id),
                       .type = "payment_intent.succeeded",
                       .tenant = t,
                       .idempotency_key = "inv_" + t.value + "/attempt-1",
                       .charge_id = "ch_sbx_1",
                       .amount = money{3000, currency::of("USD")},
                       .decline_code = {},
                       .created = utc(2024, 3, 1)};
}

class webhooks_pg : public ::testing::Test {
protected:
  void SetUp() override {
    db_ = pgtest::scratch_db::create();
    ASSERT_NE(db_, nullptr);
    auto opened = open_pg_store(db_->config());
    ASSERT_TRUE(opened.has_value()) << opened.error().detail;
    st_ = std::move(*opened);
    for (const auto* t : {&tenant_a, &tenant_b}) {
      ASSERT_TRUE(
        st_
          ->create_tenant(tenant_record{
            *t, t->value, std::string(64, t->value.back()), false, clk_.now()})
          .has_value());
      ASSERT_TRUE(
        st_
          ->put_gateway_config(
            *t,
            gateway_config_record{
              "sandbox", json{{"webhook_secret", secret + t->value}}.dump(),
              clk_.now()})
          .has_value());
      unit_of_work w;
      w.tenant = *t;
      invoice_record inv;
      inv.id = invoice_id{"inv_" + t->value};
      inv.subscription = subscription_id{"sub_" + t->value};
      inv.idempotency_key = t->value + "/sub/0";
      inv.status = "open";
      inv.currency = "USD";
      inv.total_minor = inv.amount_due_minor = 3000;
      inv.lines_json = "[]";
      inv.version = 1;
      inv.period_start = clk_.now();
      inv.period_end = clk_.now().plus_seconds(86'400);
      inv.created_at = inv.updated_at = clk_.now();
      w.new_invoices.push_back(inv);
      auto done = st_->commit(w);
      ASSERT_TRUE(done.has_value()) << done.error().detail;
    }
    app_config c;
    c.db = st_.get();
    c.clk = &clk_;
    c.readiness = &probe_;
    c.extra_routes.push_back([this](router& r, services& s) {
      add_webhook_routes(r, s.db, s.clk,
                         [this](subscription_command cmd, auto done) {
                           {
                             std::lock_guard lock{mutex_};
                             commands_.push_back(cmd);
                           }
                           done(apply_like_the_engine(cmd));
                         });
    });
    app_ = std::make_unique<app>(std::move(c));
  }

  http_response deliver(const gateway_event& e, const tenant_id& to,
                        const std::string& key) {
    const auto body = stripe_event_json(e);
    return app_->handle(http_request{
      "POST",
      "/v1/webhooks/sandbox/" + to.value,
      {{"Content-Type", "application/json"},
       {"Stripe-Signature", sign_stripe_payload(key, clk_.now(), body)}},
      body});
  }
  // The engine commits a notice's inbox entry with its effects (here
  // alone), under the command's tenant.
  command_reply apply_like_the_engine(const subscription_command& c) {
    command_reply reply;
    const auto* n = std::get_if<sub_in::gateway_notice>(&c.input);
    if (n == nullptr || n->gateway.empty())
      return reply;
    unit_of_work w;
    w.tenant = c.tenant;
    w.inbox.push_back(inbox_entry{n->gateway, n->event.id, clk_.now()});
    if (auto done = st_->commit(w); !done)
      reply.failure = done.error();
    return reply;
  }
  bool in_inbox(const tenant_id& t, const std::string& id) {
    auto r = st_->inbox_contains(t, "sandbox", id);
    EXPECT_TRUE(r.has_value()) << r.error().detail;
    return r.has_value() && *r;
  }
  std::size_t dispatched() {
    std::lock_guard lock{mutex_};
    return commands_.size();
  }

  std::unique_ptr<pgtest::scratch_db> db_;
  std::unique_ptr<store> st_;
  manual_clock clk_{utc(2024, 3, 1, 12)};
  always_ready probe_;
  std::unique_ptr<app> app_;
  std::mutex mutex_;
  std::vector<subscription_command> commands_;
};

} // namespace

TEST_F(webhooks_pg,
       a_valid_event_is_applied_once_and_its_replay_changes_nothing) {
  const std::string key = secret + tenant_a.value;
  auto first = deliver(paid("evt_1", tenant_a), tenant_a, key);
  ASSERT_EQ(first.status, 200U) << first.body;
  EXPECT_TRUE(in_inbox(tenant_a, "evt_1"));
  ASSERT_EQ(dispatched(), 1U);
  EXPECT_EQ(commands_[0].subscription, subscription_id{"sub_ten_a"});
  auto replay = deliver(paid("evt_1", tenant_a), tenant_a, key);
  EXPECT_EQ(replay.status, 200U);
  EXPECT_EQ(json::parse(replay.body).value("duplicate", false), true);
  EXPECT_EQ(dispatched(), 1U);
  // Event ids are per tenant: another tenant's inbox does not have it.
  EXPECT_FALSE(in_inbox(tenant_b, "evt_1"));
}

TEST_F(webhooks_pg,
       a_delivery_signed_with_another_tenants_secret_stores_nothing) {
  auto res = deliver(paid("evt_1", tenant_a), tenant_a,
                     secret + tenant_b.value);
  EXPECT_EQ(res.status, 400U);
  EXPECT_EQ(json::parse(res.body).value("type", ""), "invalid_signature");
  EXPECT_FALSE(in_inbox(tenant_a, "evt_1"));
  EXPECT_EQ(dispatched(), 0U);
}

TEST_F(webhooks_pg,
       an_invoice_of_another_tenant_is_not_found_through_this_tenants_url) {
  // Signed with b's secret for b's URL, but the key names a's invoice: RLS
  // keeps it invisible, so nothing is dispatched.
  auto e = paid("evt_1", tenant_b);
  e.idempotency_key = "inv_ten_a/attempt-1";
  auto res = deliver(e, tenant_b, secret + tenant_b.value);
  EXPECT_EQ(res.status, 200U);
  EXPECT_EQ(json::parse(res.body).value("ignored", false), true);
  EXPECT_EQ(dispatched(), 0U);
}

TEST_F(webhooks_pg,
       a_dispute_is_routed_by_the_charge_id_its_payment_recorded_within_the_tenant) {
  // tenant_a's attempt of inv_ten_a was charged as ch_disputed.
  unit_of_work w;
  w.tenant = tenant_a;
  payment_attempt_record a;
  a.id = payment_attempt_id{"inv_ten_a/pa-1"};
  a.invoice = invoice_id{"inv_ten_a"};
  a.idempotency_key = "inv_ten_a/attempt-1";
  a.status = "pending";
  a.amount_minor = 3000;
  a.currency = "USD";
  a.version = 1;
  a.created_at = a.updated_at = clk_.now();
  w.new_attempts.push_back(a);
  w.attempt_updates.push_back(payment_attempt_update{
    a.id, 1, "succeeded", "", clk_.now(), "ch_disputed"});
  auto done = st_->commit(w);
  ASSERT_TRUE(done.has_value()) << done.error().detail;

  auto dispute = paid("evt_dp", tenant_a);
  dispute.type = "charge.dispute.created";
  dispute.idempotency_key.clear();
  dispute.tenant = tenant_id{};
  dispute.charge_id = "ch_disputed";
  // Through b's endpoint the charge is invisible (RLS): nothing applied.
  auto foreign = deliver(dispute, tenant_b, secret + tenant_b.value);
  EXPECT_EQ(foreign.status, 200U);
  EXPECT_EQ(json::parse(foreign.body).value("ignored", false), true);
  EXPECT_EQ(dispatched(), 0U);
  // Through a's: routed to its subscription with the invoice, and the
  // inbox entry committed by the (stand-in) engine.
  auto res = deliver(dispute, tenant_a, secret + tenant_a.value);
  ASSERT_EQ(res.status, 200U) << res.body;
  ASSERT_EQ(dispatched(), 1U);
  EXPECT_EQ(commands_[0].subscription, subscription_id{"sub_ten_a"});
  const auto* n = std::get_if<sub_in::gateway_notice>(&commands_[0].input);
  ASSERT_NE(n, nullptr);
  ASSERT_TRUE(n->invoice.has_value());
  EXPECT_EQ(*n->invoice, invoice_id{"inv_ten_a"});
  EXPECT_EQ(n->ref_id, "dp_evt_dp");
  EXPECT_TRUE(in_inbox(tenant_a, "evt_dp"));
  auto replay = deliver(dispute, tenant_a, secret + tenant_a.value);
  EXPECT_EQ(json::parse(replay.body).value("duplicate", false), true);
  EXPECT_EQ(dispatched(), 1U);
}
