// A tenant's whole journey through recurd over real HTTP, on a fresh
// PostgreSQL database: a test-mode tenant, its gateway config, a plan
// (3000 USD a month, 14-day trial), customers with a good and an expiring
// card, subscriptions with trials; then the test clock through the trial
// (the good card pays, the bad one goes past_due), dunning retries,
// suspension, a new card and the invoice paid (active again), a renewal and
// a cancellation. States, invoices, the ledger and the event log are checked
// at each step; an invalid transition is 409 with nothing changed.

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "domain/time.hpp"
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

  // A test-mode tenant whose key the calls that follow use.
  void become_test_tenant(const std::string& name) {
    auto t = ok("POST", "/v1/tenants",
                json{{"name", name}, {"test_mode", true}}.dump(), 201);
    key_ = t["api_key"].get<std::string>();
  }

  // A monthly USD plan at a flat `minor`, no trial.
  void flat_plan(const std::string& id, std::int64_t minor) {
    ok("POST", "/v1/plans",
       json{{"id", id},
            {"currency", "USD"},
            {"interval", {{"unit", "month"}, {"count", 1}}},
            {"base", {{"kind", "flat"}, {"flat_amount", minor}}}}
         .dump(),
       201);
  }

  void customer(const std::string& id, const std::string& card) {
    ok("POST", "/v1/customers",
       json{{"id", id}, {"name", id}, {"email", id + "@x.io"},
            {"payment_method", card}}
         .dump(),
       201);
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
  become_test_tenant("Quick");
  flat_plan("basic", 2500);
  customer("cus_q", "pm_card_visa");
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

TEST_F(journey_pg,
       an_upgrade_mid_cycle_is_invoiced_with_exact_proration_and_charged_once) {
  become_test_tenant("Upgrade");
  flat_plan("basic", 3000);
  flat_plan("pro", 9000);
  customer("cus_u", "pm_card_visa");
  ok("POST", "/v1/subscriptions",
     R"({"id":"sub_u","customer":"cus_u","plan":"basic"})", 201);
  auto s = settled("sub_u");
  ASSERT_EQ(s["status"], "active") << s.dump();
  const auto start = parse_iso8601(s["current_period_start"].get<std::string>());
  const auto end = parse_iso8601(s["current_period_end"].get<std::string>());
  ASSERT_TRUE(start.has_value() && end.has_value());
  const auto length = seconds_between(*start, *end);
  ASSERT_EQ(length % 2, 0);

  // Unknown plan, bad quantity, unknown field: 4xx and nothing changes.
  for (const char* body : {R"({"plan":"nope"})", R"({"plan":"pro","quantity":0})",
                           R"({"plan":7})", R"({"plan":"pro","when":"now"})",
                           "not json"}) {
    auto r = call("POST", "/v1/subscriptions/sub_u/change-plan", body);
    EXPECT_GE(r.status, 400) << body;
    EXPECT_LT(r.status, 500) << body << ": " << r.body;
    EXPECT_EQ(r.header("content-type"), "application/problem+json") << body;
  }
  EXPECT_EQ(sub("sub_u"), s);

  // Half-way through the month: the unused half of basic is credited and
  // the rest of pro charged, exactly (3000 and 9000 are even).
  advance(length / 2);
  ok("POST", "/v1/subscriptions/sub_u/change-plan", R"({"plan":"pro"})");
  auto after = settled("sub_u");
  EXPECT_EQ(after["status"], "active");
  EXPECT_EQ(after["plan"], "pro") << after.dump();
  EXPECT_EQ(after["current_period_end"], s["current_period_end"]);
  auto all = invoices("sub_u");
  ASSERT_EQ(all.size(), 2U) << all.dump();
  std::int64_t total = 0;
  for (const auto& inv : all) {
    EXPECT_EQ(inv["status"], "paid") << inv.dump();
    total += inv["amount_paid_minor"].get<std::int64_t>();
  }
  // 3000 for the first month, then -1500 + 4500.
  EXPECT_EQ(total, 3000 + 3000) << all.dump();
  auto detail = ok("GET", "/v1/invoices/" + all[0]["id"].get<std::string>());
  auto detail2 = ok("GET", "/v1/invoices/" + all[1]["id"].get<std::string>());
  std::vector<std::int64_t> line_amounts;
  for (const auto* d : {&detail, &detail2})
    for (const auto& l : (*d)["lines"])
      line_amounts.push_back(l["amount"].get<std::int64_t>());
  std::sort(line_amounts.begin(), line_amounts.end());
  EXPECT_EQ(line_amounts, (std::vector<std::int64_t>{-1500, 3000, 4500}))
    << detail.dump() << detail2.dump();
  EXPECT_TRUE(contains(event_types("sub_u"), "subscription.plan_changed"));
  expect_ledger_balanced();
  // Changing to the plan it is on is refused with nothing changed.
  auto same = call("POST", "/v1/subscriptions/sub_u/change-plan",
                   R"({"plan":"pro"})");
  EXPECT_EQ(same.status, 422) << same.body;
  EXPECT_EQ(same.json()["type"], "validation_error");
  EXPECT_EQ(sub("sub_u"), after);
}

TEST_F(journey_pg,
       a_lifecycle_command_with_an_idempotency_key_is_applied_once) {
  become_test_tenant("Keys");
  ok("POST", "/v1/plans", plan_body, 201);
  customer("cus_k", "pm_card_visa");
  ok("POST", "/v1/subscriptions",
     R"({"id":"sub_k","customer":"cus_k","plan":"pro"})", 201);
  advance(14 * day_s + 60);
  ASSERT_EQ(settled("sub_k")["status"], "active");
  const headers key{{"Idempotency-Key", "pause-sub_k-1"}};
  auto first = call("POST", "/v1/subscriptions/sub_k/pause", "{}", key);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json()["status"], "paused");
  const auto events = event_types("sub_k");
  // The retry gets the stored answer: not a 409, and no second event.
  auto again = call("POST", "/v1/subscriptions/sub_k/pause", "{}", key);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(event_types("sub_k"), events);
  // The same key on another request is a conflict, and resumes nothing.
  auto other = call("POST", "/v1/subscriptions/sub_k/resume", "{}", key);
  EXPECT_EQ(other.status, 422) << other.body;
  EXPECT_EQ(other.json()["type"], "idempotency_conflict");
  EXPECT_EQ(sub("sub_k")["status"], "paused");
  EXPECT_EQ(event_types("sub_k"), events);
  // Without a key the repeat is the invalid transition it is.
  auto bare = call("POST", "/v1/subscriptions/sub_k/pause", "{}");
  EXPECT_EQ(bare.status, 409);
}

TEST_F(journey_pg,
       metrics_report_sagas_by_type_and_status_timers_and_gateway_outcomes) {
  become_test_tenant("Metrics");
  ok("POST", "/v1/plans", plan_body, 201);
  customer("cus_g", "pm_card_visa");
  customer("cus_b", "pm_card_chargeDeclinedExpiredCard");
  ok("POST", "/v1/subscriptions",
     R"({"id":"sub_g","customer":"cus_g","plan":"pro"})", 201);
  ok("POST", "/v1/subscriptions",
     R"({"id":"sub_b","customer":"cus_b","plan":"pro"})", 201);
  auto metric = [this](const std::string& series) -> std::optional<double> {
    auto r = call("GET", "/metrics");
    EXPECT_EQ(r.status, 200);
    auto at = r.body.find("\n" + series + " ");
    if (at == std::string::npos)
      return std::nullopt;
    return std::stod(r.body.substr(at + series.size() + 2));
  };
  // Two trials, each with a pending trial-end timer due in 14 days.
  EXPECT_EQ(metric("recur_timers_pending"), 2.0);
  EXPECT_EQ(metric("recur_timers_due"), 0.0);
  EXPECT_EQ(metric(R"(recur_gateway_outcomes_total{call="charge",outcome="succeeded"})"),
            0.0);
  advance(14 * day_s + 60);
  ASSERT_EQ(settled("sub_g")["status"], "active");
  ASSERT_EQ(settled("sub_b")["status"], "past_due");
  // The figures agree with what the API shows: the sagas by type and
  // status, and the attempts at the gateway (one paid, the bad card's
  // hard-declined ones).
  auto sagas_in = [this](const std::string& type, const std::string& status) {
    return static_cast<double>(
      ok("GET", "/v1/sagas?limit=100&type=" + type + "&status=" + status)["data"]
        .size());
  };
  EXPECT_EQ(sagas_in("invoice", "completed"), 2.0); // both handed on
  EXPECT_EQ(metric(R"(recur_sagas{type="invoice",status="completed"})"),
            sagas_in("invoice", "completed"));
  EXPECT_EQ(sagas_in("dunning", "waiting"), 1.0);
  EXPECT_EQ(metric(R"(recur_sagas{type="dunning",status="waiting"})"),
            sagas_in("dunning", "waiting"));
  EXPECT_EQ(metric(R"(recur_gateway_outcomes_total{call="charge",outcome="succeeded"})"),
            1.0);
  auto bad_invoice = invoices("sub_b").at(0)["id"].get<std::string>();
  double hard = 0;
  const auto bad_detail = ok("GET", "/v1/invoices/" + bad_invoice);
  for (const auto& a : bad_detail["attempts"])
    hard += a["status"] == "failed_hard" ? 1 : 0;
  EXPECT_GE(hard, 1.0);
  EXPECT_EQ(metric(R"(recur_gateway_outcomes_total{call="charge",outcome="declined_hard"})"),
            hard);
  EXPECT_EQ(metric(R"(recur_gateway_outcomes_total{call="refund",outcome="refunded"})"),
            0.0);
  // Test-mode timers are due by their tenant's clock, not the wall's.
  EXPECT_EQ(metric("recur_timers_due"), 0.0);
  EXPECT_GE(metric("recur_timers_pending").value_or(0), 2.0);
  EXPECT_EQ(metric("recur_store_stats_errors_total"), 0.0);
  EXPECT_GE(metric("recur_subscription_actors").value_or(0), 1.0);
}

TEST_F(journey_pg, the_served_openapi_document_has_every_route_and_no_other) {
  auto doc = ok("GET", "/openapi.json");
  std::set<std::string> served;
  for (const auto& [path, ops] : doc["paths"].items())
    for (const auto& [method, op] : ops.items())
      served.insert(method + " " + path);
  // ARCHITECTURE.md section 7, every route recurd implements (the console,
  // GET /, comes with the console's issue).
  const std::set<std::string> section7{
    "post /v1/tenants",
    "put /v1/gateways/{gateway}",
    "post /v1/plans",
    "get /v1/plans",
    "post /v1/customers",
    "get /v1/customers/{id}",
    "patch /v1/customers/{id}",
    "post /v1/subscriptions",
    "get /v1/subscriptions",
    "get /v1/subscriptions/{id}",
    "get /v1/subscriptions/{id}/events",
    "post /v1/subscriptions/{id}/cancel",
    "post /v1/subscriptions/{id}/pause",
    "post /v1/subscriptions/{id}/resume",
    "post /v1/subscriptions/{id}/change-plan",
    "get /v1/invoices",
    "get /v1/invoices/{id}",
    "post /v1/invoices/{id}/pay",
    "post /v1/invoices/{id}/void",
    "post /v1/usage",
    "get /v1/sagas",
    "get /v1/sagas/{id}",
    "post /v1/sagas/{id}/retry",
    "post /v1/sagas/{id}/compensate",
    "post /v1/test-clock/advance",
    "get /v1/ledger/balance",
    "get /v1/reconciliation",
    "post /v1/webhooks/{gateway}/{tenant_id}",
    "get /metrics",
    "get /healthz",
    "get /readyz",
  };
  for (const auto& r : section7)
    EXPECT_TRUE(served.contains(r)) << "not documented: " << r;
  // What recurd serves beyond section 7, each documented too.
  const std::set<std::string> beyond{
    "get /openapi.json",
    "get /v1/gateways/{gateway}",
    "get /v1/plans/{id}",
  };
  for (const auto& r : beyond)
    EXPECT_TRUE(served.contains(r)) << "not documented: " << r;
  for (const auto& r : served)
    EXPECT_TRUE(section7.contains(r) || beyond.contains(r))
      << "documented, but neither in section 7 nor expected: " << r;
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
