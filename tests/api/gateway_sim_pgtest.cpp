// Asynchronous settlement end to end, over real HTTP and PostgreSQL:
//  - recurd + recur-gateway-sim as processes: a tenant whose stripe config
//    points at the sim subscribes a customer with pm_sandbox_async; the sim
//    settles it and delivers the webhook (every event duplicated and
//    preceded by a forgery, reordered) and the subscription turns active,
//    its invoice collected exactly once;
//  - recurd alone: a test-mode tenant on the in-process sandbox settles its
//    async charge when its test clock passes the settle time.

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
#ifndef RECUR_GATEWAY_SIM_PATH
#  error "RECUR_GATEWAY_SIM_PATH must name the recur-gateway-sim binary"
#endif

namespace {

using namespace recur;
using namespace recur::apitest;
using nlohmann::json;

constexpr const char* admin_key = "gateway-sim-pgtest-admin-key-0123";
constexpr const char* sim_key = "sk_test_gateway_sim_pgtest";
constexpr const char* hook_secret = "whsec_gateway_sim_pgtest";

const char* plan_body = R"({"id":"basic","currency":"USD",
  "interval":{"unit":"month","count":1},"trial_days":0,
  "base":{"kind":"flat","flat_amount":4200}})";

class gateway_sim_pg : public testing::Test {
protected:
  void SetUp() override {
    db_ = pgtest::scratch_db::create();
    ASSERT_NE(db_, nullptr) << pgtest::missing_db_message();
    ASSERT_TRUE(spawn_listening(
      RECURD_PATH,
      [this](std::uint16_t p) {
        return std::vector<std::string>{"--db", db_->conninfo(), "--kafka",
                                        "none", "--listen",
                                        "127.0.0.1:" + std::to_string(p)};
      },
      {{"RECUR_ADMIN_KEY", admin_key}}, recurd_, port_));
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "recurd log:\n" << recurd_->log() << "\n";
      if (sim_)
        std::cerr << "recur-gateway-sim log:\n" << sim_->log() << "\n";
    }
    if (sim_)
      sim_->terminate();
    if (recurd_)
      recurd_->terminate();
  }

  void start_sim() {
    ASSERT_TRUE(spawn_listening(
      RECUR_GATEWAY_SIM_PATH,
      [this](std::uint16_t p) {
        return std::vector<std::string>{
          "--listen", "127.0.0.1:" + std::to_string(p), "--webhook-url",
          "http://127.0.0.1:" + std::to_string(port_)
            + "/v1/webhooks/stripe/{tenant}",
          "--settle-delay-s", "1", "--duplicate-ppm", "1000000", "--forge-ppm",
          "1000000", "--reorder-ppm", "500000", "--pump-interval-ms", "50",
          "--seed", "7"};
      },
      {{"RECUR_SIM_API_KEY", sim_key}, {"RECUR_SIM_WEBHOOK_SECRET", hook_secret}},
      sim_, sim_port_));
  }

  json ok(const std::string& method, const std::string& target,
          const std::string& body = {}, int status = 200) {
    auto r = request(port_, method, target, key_.empty() ? admin_key : key_,
                     body);
    EXPECT_EQ(r.status, status) << method << " " << target << ": " << r.body;
    return r.json();
  }

  void create_tenant(bool test_mode) {
    auto t = ok("POST", "/v1/tenants",
                std::string{R"({"name":"Async","test_mode":)"}
                  + (test_mode ? "true" : "false") + "}",
                201);
    key_ = t["api_key"].get<std::string>();
    tenant_ = t["id"].get<std::string>();
  }

  void customer_and_plan(const std::string& customer, const std::string& pm) {
    ok("POST", "/v1/plans", plan_body, 201);
    ok("POST", "/v1/customers",
       json{{"id", customer},
            {"email", "a@x.io"},
            {"name", "A"},
            {"payment_method", pm},
            {"currency", "USD"}}
         .dump(),
       201);
  }

  json sub(const std::string& id) {
    return ok("GET", "/v1/subscriptions/" + id);
  }

  /// The subscription once its status is `want` (bounded wait).
  json wait_status(const std::string& id, const std::string& want,
                   steady::duration timeout = 20s) {
    const auto deadline = steady::now() + timeout;
    auto s = sub(id);
    while (s["status"] != want && steady::now() < deadline) {
      std::this_thread::sleep_for(25ms);
      s = sub(id);
    }
    return s;
  }

  void expect_paid_once(const std::string& sub_id) {
    auto inv = ok("GET", "/v1/invoices?subscription=" + sub_id)["data"];
    ASSERT_EQ(inv.size(), 1U) << inv.dump();
    EXPECT_EQ(inv[0]["status"], "paid");
    EXPECT_EQ(inv[0]["total_minor"], 4200);
    EXPECT_EQ(inv[0]["amount_paid_minor"], 4200);
    auto b = ok("GET", "/v1/ledger/balance");
    EXPECT_TRUE(b["balanced"].get<bool>()) << b.dump();
  }

  std::string metrics() { return request(port_, "GET", "/metrics", "").body; }

  std::unique_ptr<pgtest::scratch_db> db_;
  std::unique_ptr<child_process> recurd_;
  std::unique_ptr<child_process> sim_;
  std::uint16_t port_ = 0;
  std::uint16_t sim_port_ = 0;
  std::string key_;
  std::string tenant_;
};

TEST_F(gateway_sim_pg,
       an_async_stripe_charge_settles_by_the_sims_webhook_exactly_once) {
  start_sim();
  create_tenant(false);
  auto cfg
    = ok("PUT", "/v1/gateways/stripe",
         json{{"api_key", sim_key},
              {"base_url", "http://127.0.0.1:" + std::to_string(sim_port_)},
              {"webhook_secret", hook_secret}}
           .dump());
  EXPECT_TRUE(cfg["api_key_set"].get<bool>());
  EXPECT_EQ(cfg.dump().find(sim_key), std::string::npos); // never shown
  customer_and_plan("cus_async", "pm_sandbox_async");
  ok("POST", "/v1/customers",
     R"({"id":"cus_visa","email":"v@x.io","name":"V",
         "payment_method":"pm_card_visa","currency":"USD"})",
     201);

  auto created
    = ok("POST", "/v1/subscriptions",
         R"({"id":"sub_async","customer":"cus_async","plan":"basic"})", 201);
  EXPECT_EQ(created["status"], "incomplete");
  auto visa = ok("POST", "/v1/subscriptions",
                 R"({"id":"sub_visa","customer":"cus_visa","plan":"basic"})",
                 201);

  auto active = wait_status("sub_async", "active");
  ASSERT_EQ(active["status"], "active") << active.dump();
  expect_paid_once("sub_async");
  EXPECT_EQ(wait_status("sub_visa", "active")["status"], "active");
  expect_paid_once("sub_visa");

  // The sim collected each invoice once, for this tenant.
  auto charges = request(sim_port_, "GET", "/sim/charges", sim_key).json();
  ASSERT_EQ(charges["data"].size(), 2U) << charges.dump();
  for (const auto& c : charges["data"]) {
    EXPECT_EQ(c["tenant_id"], tenant_);
    EXPECT_EQ(c["status"], "succeeded");
    EXPECT_EQ(c["times_collected"], 1);
    EXPECT_EQ(c["amount"], 4200);
  }

  // Every webhook came with a forgery (refused) and a duplicate (a replay).
  const auto deadline = steady::now() + 10s;
  std::string m = metrics();
  while ((m.find(R"(gateway="stripe",outcome="duplicate")") == std::string::npos
          || m.find(R"(gateway="stripe",outcome="invalid_signature")")
               == std::string::npos)
         && steady::now() < deadline) {
    std::this_thread::sleep_for(25ms);
    m = metrics();
  }
  EXPECT_NE(m.find(R"(gateway="stripe",outcome="invalid_signature")"),
            std::string::npos)
    << m;
  EXPECT_NE(m.find(R"(gateway="stripe",outcome="duplicate")"),
            std::string::npos)
    << m;
  // Replays and forgeries changed nothing.
  expect_paid_once("sub_async");
  EXPECT_EQ(sub("sub_async")["status"], "active");
}

TEST_F(gateway_sim_pg,
       a_test_mode_tenants_async_sandbox_charge_settles_by_its_test_clock) {
  create_tenant(true);
  ok("PUT", "/v1/gateways/sandbox", R"({"webhook_secret":"whsec_inproc01"})");
  customer_and_plan("cus_async", "pm_sandbox_async");
  auto created
    = ok("POST", "/v1/subscriptions",
         R"({"id":"sub_async","customer":"cus_async","plan":"basic"})", 201);
  EXPECT_EQ(created["status"], "incomplete");
  // Real time alone does not settle it: the sandbox is on the test clock.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(sub("sub_async")["status"], "incomplete");

  // Past the sandbox's settle delay (60 s), well before the saga's own
  // pending timeout (1 h): only the webhook can settle it.
  auto moved = ok("POST", "/v1/test-clock/advance", R"({"seconds":120})");
  EXPECT_EQ(moved["timers_fired"], 0) << moved.dump();
  auto active = wait_status("sub_async", "active", 10s);
  ASSERT_EQ(active["status"], "active") << active.dump();
  expect_paid_once("sub_async");
  EXPECT_NE(metrics().find(R"(gateway="sandbox",outcome="applied")"),
            std::string::npos);
}

} // namespace
