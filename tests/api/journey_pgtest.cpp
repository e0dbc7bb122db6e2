// A tenant's whole journey through recurd over real HTTP, on a fresh
// PostgreSQL database: a test-mode tenant, its gateway config, a plan
// (3000 USD a month, 14-day trial), customers with a good and an expiring
// card, subscriptions with trials; then the test clock through the trial
// (the good card pays, the bad one goes past_due), dunning retries,
// suspension, a new card and the invoice paid (active again), a renewal and
// a cancellation. States, invoices, the ledger and the event log are checked
// at each step; an invalid transition is 409 with nothing changed.

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/api/recurd_process.hpp"
#include "tests/persistence/pg_testdb.hpp"

#ifndef RECURD_PATH
#  error "RECURD_PATH must name the recurd binary"
#endif

namespace {

using namespace recur;
using namespace recur::apitest;
using nlohmann::json;
using headers = std::vector<std::pair<std::string, std::string>>;

constexpr const char* admin_key = "journey-pgtest-admin-key-0123456789";
constexpr std::int64_t day_s = 86'400;
constexpr std::int64_t plan_minor = 300'000; // 3000 USD

const char* plan_body = R"({"id":"pro","currency":"USD",
  "interval":{"unit":"month","count":1},"trial_days":14,
  "base":{"kind":"flat","flat_amount":300000}})";

class journey_pg : public testing::Test {
protected:
  void SetUp() override {
    db_ = pgtest::scratch_db::create();
    ASSERT_NE(db_, nullptr) << pgtest::missing_db_message();
    ASSERT_TRUE(start());
  }

  void TearDown() override {
    if (server_) {
      if (HasFailure())
        std::cerr << "recurd log:\n" << server_->log() << "\n";
      server_->terminate();
    }
  }

  testing::AssertionResult start() {
    return spawn_listening(
      RECURD_PATH,
      [this](std::uint16_t p) {
        return std::vector<std::string>{"--db", db_->conninfo(), "--kafka",
                                        "none", "--listen",
                                        "127.0.0.1:" + std::to_string(p)};
      },
      {{"RECUR_ADMIN_KEY", admin_key}}, server_, port_);
  }

  http_reply call(const std::string& method, const std::string& target,
                  const std::string& body = {}, headers extra = {}) {
    return request(port_, method, target, key_.empty() ? admin_key : key_,
                   body, std::move(extra));
  }

  json ok(const std::string& method, const std::string& target,
          const std::string& body = {}, int status = 200) {
    auto r = call(method, target, body);
    EXPECT_EQ(r.status, status) << method << " " << target << ": " << r.body;
    return r.json();
  }

  json sub(const std::string& id) { return ok("GET", "/v1/subscriptions/" + id); }

  // The subscription once none of its sagas is live (bounded wait).
  json settled(const std::string& id) {
    const auto deadline = steady::now() + 10s;
    auto s = sub(id);
    while (!s["live_sagas"].empty() && steady::now() < deadline) {
      std::this_thread::sleep_for(10ms);
      s = sub(id);
    }
    return s;
  }

  json invoices(const std::string& sub_id) {
    return ok("GET", "/v1/invoices?subscription=" + sub_id)["data"];
  }

  std::vector<std::string> event_types(const std::string& sub_id) {
    std::vector<std::string> out;
    std::string cursor;
    for (int pages = 0; pages < 50; ++pages) {
      auto page = ok("GET", "/v1/subscriptions/" + sub_id + "/events?limit=10"
                              + (cursor.empty() ? "" : "&cursor=" + cursor));
      for (const auto& e : page["data"])
        out.push_back(e["type"].get<std::string>());
      if (!page["has_more"].get<bool>())
        break;
      cursor = page["next_cursor"].get<std::string>();
    }
    return out;
  }

  json advance(std::int64_t seconds) {
    return ok("POST", "/v1/test-clock/advance",
              R"({"seconds":)" + std::to_string(seconds) + "}");
  }

  void expect_ledger_balanced() {
    auto b = ok("GET", "/v1/ledger/balance");
    EXPECT_TRUE(b["balanced"].get<bool>()) << b.dump();
    std::map<std::string, std::int64_t> sums;
    for (const auto& row : b["balances"])
      sums[row["currency"].get<std::string>()]
        += row["balance_minor"].get<std::int64_t>();
    for (const auto& [cur, sum] : sums)
      EXPECT_EQ(sum, 0) << cur;
  }

  std::unique_ptr<pgtest::scratch_db> db_;
  std::unique_ptr<child_process> server_;
  std::uint16_t port_ = 0;
  std::string key_; // the tenant's, once created
};

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST_F(journey_pg,
       a_test_mode_tenant_goes_through_trial_dunning_recovery_renewal_and_cancel) {
  // -- set-up: tenant, gateway, plan, customers ------------------------------
  auto tenant = ok("POST", "/v1/tenants",
                   R"({"name":"Journey","test_mode":true})", 201);
  key_ = tenant["api_key"].get<std::string>();
  ok("PUT", "/v1/gateways/sandbox", R"({"webhook_secret":"whsec_journey01"})");
  ok("POST", "/v1/plans", plan_body, 201);
  ok("POST", "/v1/customers",
     R"({"id":"cus_good","email":"g@x.io","name":"Good",
         "payment_method":"pm_card_visa","currency":"USD"})",
     201);
  ok("POST", "/v1/customers",
     R"({"id":"cus_bad","email":"b@x.io","name":"Bad",
         "payment_method":"pm_card_chargeDeclinedExpiredCard"})",
     201);

  // -- subscriptions with a trial --------------------------------------------
  auto good = ok("POST", "/v1/subscriptions",
                 R"({"id":"sub_good","customer":"cus_good","plan":"pro"})", 201);
  EXPECT_EQ(good["status"], "trialing");
  EXPECT_EQ(good["payment_method"], "pm_card_visa");
  EXPECT_FALSE(good["trial_end"].is_null());
  auto bad = ok("POST", "/v1/subscriptions",
                R"({"id":"sub_bad","customer":"cus_bad","plan":"pro"})", 201);
  EXPECT_EQ(bad["status"], "trialing");
  EXPECT_TRUE(invoices("sub_good").empty());
  EXPECT_FALSE(event_types("sub_good").empty());

  // An invalid transition: 409 and nothing changes.
  auto refused = call("POST", "/v1/subscriptions/sub_good/resume", "{}");
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_EQ(refused.json()["type"], "invalid_transition");
  EXPECT_EQ(sub("sub_good"), good);

  // -- through the trial: the good card pays, the bad one goes past_due ------
  auto moved = advance(14 * day_s + 3600);
  EXPECT_GE(moved["timers_fired"].get<int>(), 2);
  good = sub("sub_good");
  EXPECT_EQ(good["status"], "active");
  auto good_invoices = invoices("sub_good");
  ASSERT_EQ(good_invoices.size(), 1U);
  EXPECT_EQ(good_invoices[0]["status"], "paid");
  EXPECT_EQ(good_invoices[0]["total_minor"], plan_minor);
  EXPECT_EQ(good_invoices[0]["amount_paid_minor"], plan_minor);
  EXPECT_TRUE(contains(event_types("sub_good"), "subscription.activated"))
    << json(event_types("sub_good")).dump();

  bad = sub("sub_bad");
  EXPECT_EQ(bad["status"], "past_due");
  auto bad_invoices = invoices("sub_bad");
  ASSERT_EQ(bad_invoices.size(), 1U);
  const auto bad_invoice = bad_invoices[0]["id"].get<std::string>();
  EXPECT_EQ(bad_invoices[0]["status"], "open");
  auto detail = ok("GET", "/v1/invoices/" + bad_invoice);
  ASSERT_FALSE(detail["attempts"].empty());
  EXPECT_EQ(detail["attempts"][0]["status"], "failed_hard");
  EXPECT_FALSE(detail["attempts"][0]["decline_code"].is_null());
  expect_ledger_balanced();

  // -- dunning: retries, then suspension on day 14 ---------------------------
  advance(8 * day_s); // day 3 and day 7 retries
  EXPECT_EQ(sub("sub_bad")["status"], "past_due");
  detail = ok("GET", "/v1/invoices/" + bad_invoice);
  EXPECT_GE(detail["attempts"].size(), 3U) << detail.dump();
  advance(7 * day_s); // day 15 of dunning
  bad = sub("sub_bad");
  EXPECT_EQ(bad["status"], "suspended");
  EXPECT_FALSE(bad["entitled"].get<bool>());
  EXPECT_EQ(ok("GET", "/v1/invoices/" + bad_invoice)["status"], "open");
  auto dunning = ok("GET", "/v1/sagas?type=dunning");
  ASSERT_FALSE(dunning["data"].empty());
  EXPECT_EQ(dunning["data"][0]["subscription"], "sub_bad");
  expect_ledger_balanced();

  // -- a new card: the customer is patched, the invoice paid -----------------
  auto cust = ok("GET", "/v1/customers/cus_bad");
  ok("PATCH", "/v1/customers/cus_bad",
     R"({"version":)" + std::to_string(cust["version"].get<int>())
       + R"(,"payment_method":"pm_card_visa"})");
  auto paid = ok("POST", "/v1/invoices/" + bad_invoice + "/pay", "{}");
  EXPECT_EQ(paid["status"], "paid");
  EXPECT_EQ(paid["amount_paid_minor"], plan_minor);
  bad = sub("sub_bad");
  EXPECT_EQ(bad["status"], "active");
  EXPECT_TRUE(bad["entitled"].get<bool>());
  EXPECT_EQ(bad["payment_method"], "pm_card_visa");
  const auto bad_events = event_types("sub_bad");
  EXPECT_TRUE(contains(bad_events, "subscription.payment_method_updated"))
    << json(bad_events).dump();
  // Paying again is refused and changes nothing.
  auto again = call("POST", "/v1/invoices/" + bad_invoice + "/pay", "{}");
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_EQ(sub("sub_bad"), bad);
  expect_ledger_balanced();

  // -- a renewal --------------------------------------------------------------
  const auto before_renewal = sub("sub_good")["current_period_end"];
  advance(16 * day_s); // past the first month's end
  good = sub("sub_good");
  EXPECT_EQ(good["status"], "active");
  EXPECT_NE(good["current_period_end"], before_renewal);
  good_invoices = invoices("sub_good");
  ASSERT_EQ(good_invoices.size(), 2U);
  for (const auto& inv : good_invoices)
    EXPECT_EQ(inv["status"], "paid") << inv.dump();
  expect_ledger_balanced();

  // -- cancellation -----------------------------------------------------------
  auto canceled = ok("POST", "/v1/subscriptions/sub_good/cancel", "{}");
  EXPECT_EQ(canceled["status"], "canceled");
  EXPECT_EQ(canceled["cancel_reason"], "requested");
  // The cancellation saga refunds the unused part after the reply.
  const auto quiet = settled("sub_good");
  EXPECT_EQ(quiet["status"], "canceled");
  EXPECT_TRUE(quiet["live_sagas"].empty()) << quiet.dump();
  auto pause = call("POST", "/v1/subscriptions/sub_good/pause", "{}");
  EXPECT_EQ(pause.status, 409);
  EXPECT_EQ(pause.json()["type"], "invalid_transition");
  EXPECT_EQ(sub("sub_good"), quiet);
  const auto listed = ok("GET", "/v1/subscriptions?status=canceled")["data"];
  ASSERT_EQ(listed.size(), 1U);
  EXPECT_EQ(listed[0]["id"], "sub_good");
  expect_ledger_balanced();

  // Sagas are inspectable with their step log.
  auto sagas = ok("GET", "/v1/sagas?type=invoice&status=completed");
  ASSERT_FALSE(sagas["data"].empty());
  std::string saga_id = sagas["data"][0]["id"].get<std::string>();
  std::string encoded;
  for (char c : saga_id)
    encoded += c == '/' ? std::string{"%2F"} : std::string(1, c);
  auto saga = ok("GET", "/v1/sagas/" + encoded);
  EXPECT_FALSE(saga["steps"].empty());
  auto retry = call("POST", "/v1/sagas/" + encoded + "/retry", "{}");
  EXPECT_EQ(retry.status, 409); // a completed saga has nothing to retry
  EXPECT_EQ(retry.json()["type"], "invalid_transition");
}

TEST_F(journey_pg,
       an_advance_right_after_a_create_waits_for_the_first_payment_to_settle) {
  // The create answers before its invoice saga has charged; an advance at
  // once used to claim the incomplete-expiry timer that the payment then
  // cancelled, and failed with 404. Several rounds: the race was timing.
  auto tenant = ok("POST", "/v1/tenants",
                   R"({"name":"Quick","test_mode":true})", 201);
  key_ = tenant["api_key"].get<std::string>();
  ok("POST", "/v1/plans", R"({"id":"basic","currency":"USD",
    "interval":{"unit":"month","count":1},
    "base":{"kind":"flat","flat_amount":2500}})", 201);
  ok("POST", "/v1/customers", R"({"id":"cus_q","name":"Q","email":"q@x.io",
    "payment_method":"pm_card_visa"})", 201);
  for (int i = 0; i < 5; ++i) {
    const std::string id = "sub_q" + std::to_string(i);
    auto created = ok("POST", "/v1/subscriptions",
                      R"({"id":")" + id + R"(","customer":"cus_q","plan":"basic"})",
                      201);
    EXPECT_EQ(created["status"], "incomplete");
    auto moved = advance(day_s); // past the 23 h incomplete expiry
    EXPECT_EQ(moved["timers_fired"].is_number(), true) << moved.dump();
    auto s = settled(id);
    EXPECT_EQ(s["status"], "active") << s.dump();
    auto inv = invoices(id);
    ASSERT_EQ(inv.size(), 1U);
    EXPECT_EQ(inv[0]["status"], "paid");
    EXPECT_EQ(inv[0]["amount_paid_minor"], 2500);
  }
  expect_ledger_balanced();
}

TEST_F(journey_pg, a_live_tenant_cannot_advance_a_test_clock_and_bad_input_changes_nothing) {
  auto tenant = ok("POST", "/v1/tenants", R"({"name":"Live"})", 201);
  key_ = tenant["api_key"].get<std::string>();
  auto r = call("POST", "/v1/test-clock/advance", R"({"seconds":60})");
  EXPECT_EQ(r.status, 403) << r.body;
  ok("POST", "/v1/plans", plan_body, 201);
  ok("POST", "/v1/customers",
     R"({"id":"cus_eur","email":"e@x.io","name":"E","currency":"EUR"})", 201);
  ok("POST", "/v1/customers", R"({"id":"cus_1","email":"c@x.io","name":"C"})",
     201);
  for (const char* body :
       {R"({"customer":"cus_nope","plan":"pro"})",
        R"({"customer":"cus_1","plan":"nope"})",
        R"({"customer":"cus_eur","plan":"pro"})",
        R"({"customer":"cus_1","plan":"pro","quantity":0})",
        R"({"customer":"cus_1","plan":"pro","quantity":"2"})",
        R"({"customer":"cus_1","plan":"pro","color":"red"})"}) {
    auto res = call("POST", "/v1/subscriptions", body);
    EXPECT_EQ(res.status, 422) << body << ": " << res.body;
  }
  EXPECT_TRUE(ok("GET", "/v1/subscriptions")["data"].empty());
  // Without a trial and without a card the subscription is incomplete.
  auto s = ok("POST", "/v1/subscriptions",
              R"({"customer":"cus_1","plan":"pro","trial_days":0})", 201);
  EXPECT_EQ(s["status"], "incomplete");
  EXPECT_EQ(call("GET", "/v1/subscriptions/sub_missing").status, 404);
  EXPECT_EQ(call("POST", "/v1/subscriptions/sub_missing/pause", "{}").status,
            404);
  EXPECT_EQ(call("GET", "/v1/invoices/inv_missing").status, 404);
}

} // namespace
